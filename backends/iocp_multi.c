/* IOCP backend: multishot accept and recv (weft/multi.h).
 *
 * Accept: ACCEPT_SLOTS AcceptEx kept outstanding on the listener, each in
 * an accept slot with its own OVERLAPPED, re-armed as each completes.
 * Recv: a zero-byte WSARecv (pins no buffer while the socket is idle); when
 * it completes, non-blocking recv() into the loop's buffers until
 * WSAEWOULDBLOCK, then another zero-byte WSARecv (libuv's way). A socket
 * another port owns is served with an AFD poll instead of the overlapped
 * call, for both kinds.
 *
 * Every result is posted (weft__multi_post): callbacks run in the loop's
 * callback phase. A drain hands over at most DRAIN_MAX results, then goes
 * on from m->kick_ in the next callback phase, so one busy socket cannot
 * starve the loop. The last result is posted only once the system holds
 * none of m's requests (win_nout_ == 0), so m may be freed in its last
 * callback. */
#include "iocp_internal.h"
#include "loop_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { ACCEPT_SLOTS = 8, DRAIN_MAX = 64 };
enum {
    M_RUN = 1,
    M_PAUSED, /* recv: no buffer; on u->starved */
    M_ENDING, /* the last result waits for m's requests to come back */
    M_DONE,   /* the last result is posted */
};

static weft__iocp_op *mpriv(weft_multi *m)
{
    return (weft__iocp_op *)(void *)m->op_.win_.bytes_;
}

static void maybe_final(weft__iocp *u, weft_multi *m)
{
    if (m->state_ == M_ENDING && m->win_nout_ == 0 && !weft_handle_pending(&m->kick_)) {
        m->state_ = M_DONE;
        weft__list_remove(&u->multis, &m->win_link_);
        weft__multi_post(u->base.loop, m, m->final_, NULL, 0);
    }
}

/* End m with res: what the system holds is cancelled, and the last result
 * follows when it has all come back. */
static void end(weft__iocp *u, weft_multi *m, int64_t res)
{
    if (m->state_ == M_ENDING || m->state_ == M_DONE)
        return;
    if (m->state_ == M_PAUSED)
        weft__list_remove(&u->starved, &m->link_);
    m->state_ = M_ENDING;
    m->final_ = res;
    weft_handle_cancel(u->base.loop, &m->kick_);
    SOCKET s = weft__sock(m->fd_);
    for (weft__accept_slot *sl = m->win_slots_; sl; sl = sl->next)
        CancelIoEx((HANDLE)s, &sl->req.ov);
    weft__iocp_op *p = mpriv(m);
    if (p->req.kind == WEFT__REQ_MULTI && p->req.stage) { /* stage: m->op_ is out */
        if (p->req.how == WEFT__HOW_AFD)
            weft__iocp_afd_cancel(u, &m->op_);
        else
            CancelIoEx((HANDLE)s, &p->req.ov);
    }
    maybe_final(u, m);
}

static void kick(void *arg);

static void schedule(weft__iocp *u, weft_multi *m)
{
    if (!weft_handle_pending(&m->kick_))
        weft_call_soon(u->base.loop, &m->kick_, kick, m);
}

/* m's socket was closed or forgotten since m started. */
static int orphaned(weft__iocp *u, weft_multi *m)
{
    weft__sock_ent *e = weft__iocp_sock(u, weft__sock(m->fd_));
    return !e || e->gen != m->win_gen_;
}

/* Wait for m's socket to be ready again: a zero-byte WSARecv (recv on a
 * socket of this port) or an AFD poll. 0 or a negative error. */
static int arm(weft__iocp *u, weft_multi *m)
{
    weft__sock_ent *e = weft__iocp_sock(u, weft__sock(m->fd_));
    weft__iocp_op *p = mpriv(m);
    p->req.kind = WEFT__REQ_MULTI;
    if (e->mode == WEFT__SOCK_FOREIGN) {
        int rc = weft__iocp_afd_arm(u, &m->op_, e->base, WEFT__AFD_IN);
        if (rc == 0) {
            p->req.stage = 1;
            m->win_nout_++;
        }
        return rc;
    }
    memset(&p->req.ov, 0, sizeof p->req.ov);
    p->req.how = WEFT__HOW_SOCK;
    p->u.io.wb.buf = NULL;
    p->u.io.wb.len = 0;
    p->u.io.flags = 0;
    DWORD bytes = 0;
    if (WSARecv(e->s, &p->u.io.wb, 1, &bytes, &p->u.io.flags, &p->req.ov, NULL) == 0) {
        if (e->skip) {
            schedule(u, m); /* readable now, and no packet will say so */
            return 0;
        }
    } else {
        int err = WSAGetLastError();
        if (err != WSA_IO_PENDING)
            return weft__win_error((unsigned long)err);
    }
    p->req.stage = 1;
    m->win_nout_++;
    u->nreqs++;
    return 0;
}

/* Accept or receive with the non-blocking call until it would block. */
static void drain(weft__iocp *u, weft_multi *m)
{
    if (m->state_ != M_RUN)
        return;
    if (orphaned(u, m)) {
        end(u, m, -ECANCELED);
        return;
    }
    weft_op *op = &m->op_;
    for (int n = 0; n < DRAIN_MAX; n++) {
        void *buf = NULL;
        size_t room = 0;
        if (m->kind_ == WEFT__MULTI_RECV) {
            if (!(buf = weft__buf_pool_room(&u->bufs, &room))) {
                m->state_ = M_PAUSED;
                weft__list_push(&u->starved, &m->link_);
                return;
            }
            op->buf = buf;
            op->len = room;
        }
        int64_t res = weft__iocp_try_now(u, op);
        if (buf && res > 0)
            weft__buf_pool_commit(&u->bufs, (size_t)res);
        if (res == -EAGAIN) {
            int rc = arm(u, m);
            if (rc)
                end(u, m, rc);
            return;
        }
        if (m->kind_ == WEFT__MULTI_ACCEPT && (res == -ECONNRESET || res == -ECONNABORTED))
            continue; /* that connection is gone; the next one may be there */
        if (res < 0 || (res == 0 && m->kind_ == WEFT__MULTI_RECV)) {
            end(u, m, res); /* an error, or end of stream */
            return;
        }
        weft__multi_post(u->base.loop, m, res, buf, 1);
    }
    schedule(u, m);
}

static void kick(void *arg)
{
    weft_multi *m = arg;
    weft__iocp *u = (weft__iocp *)m->op_.backend_;
    if (m->state_ == M_ENDING)
        maybe_final(u, m);
    else
        drain(u, m);
}

/* Keep slot's AcceptEx outstanding for m, taking what completes at once.
 * 0, or a negative error (the slot is then back in the pool). */
static int arm_slot(weft__iocp *u, weft_multi *m, weft__sock_ent *e, weft__accept_slot *slot)
{
    for (;;) {
        memset(&slot->req, 0, sizeof slot->req);
        slot->req.kind = WEFT__REQ_SLOT;
        slot->m = m;
        int rc = weft__iocp_acceptex(u, e, slot);
        if (rc == 0) {
            slot->next = m->win_slots_;
            m->win_slots_ = slot;
            m->win_nout_++;
            u->nreqs++;
            return 0;
        }
        if (rc == 1) {
            int64_t fd = weft__iocp_accept_done(u, e->s, slot, NULL, 0, NULL);
            if (fd >= 0)
                weft__multi_post(u->base.loop, m, fd, NULL, 1);
        } else if (rc != -ECONNRESET) {
            weft__iocp_slot_put(u, slot);
            return rc;
        }
        if (slot->sock != INVALID_SOCKET) { /* a failed AcceptEx's socket is spent */
            closesocket(slot->sock);
            slot->sock = INVALID_SOCKET;
        }
    }
}

/* fini: m is idle once the system gives back its last request. */
static void closing_done(weft__iocp *u, weft_multi *m)
{
    if (m->win_nout_ == 0 && m->state_ != 0 && m->state_ != M_DONE) {
        weft__list_remove(&u->multis, &m->win_link_);
        m->state_ = 0;
    }
}

static void slot_unlink(weft_multi *m, weft__accept_slot *slot)
{
    for (weft__accept_slot **pp = (weft__accept_slot **)&m->win_slots_; *pp; pp = &(*pp)->next)
        if (*pp == slot) {
            *pp = slot->next;
            slot->next = NULL;
            return;
        }
}

static void slot_packet(weft__iocp *u, weft__accept_slot *slot)
{
    weft_multi *m = slot->m;
    slot_unlink(m, slot);
    m->win_nout_--;
    int64_t res = weft__nt_error(weft__iocp_status(&slot->req.ov));
    if (u->closing) {
        weft__iocp_slot_put(u, slot); /* closes an accepted socket nobody will take */
        closing_done(u, m);
        return;
    }
    if (m->state_ == M_RUN && orphaned(u, m))
        end(u, m, -ECANCELED);
    if (m->state_ != M_RUN) {
        weft__iocp_slot_put(u, slot);
        maybe_final(u, m);
        return;
    }
    if (res == 0) {
        int64_t fd = weft__iocp_accept_done(u, weft__sock(m->fd_), slot, NULL, 0, NULL);
        if (fd >= 0)
            weft__multi_post(u->base.loop, m, fd, NULL, 1);
    } else if (res != -ECONNRESET) {
        weft__iocp_slot_put(u, slot);
        end(u, m, res);
        return;
    }
    if (slot->sock != INVALID_SOCKET) {
        closesocket(slot->sock);
        slot->sock = INVALID_SOCKET;
    }
    int rc = arm_slot(u, m, weft__iocp_sock(u, weft__sock(m->fd_)), slot);
    if (rc)
        end(u, m, rc);
}

/* The packet of m's zero-byte WSARecv or AFD poll. */
static void op_packet(weft__iocp *u, weft_multi *m)
{
    weft__iocp_op *p = mpriv(m);
    p->req.stage = 0;
    m->win_nout_--;
    if (p->req.how == WEFT__HOW_AFD)
        weft__list_remove(&u->afd_ops, &m->op_.link_);
    if (u->closing) {
        closing_done(u, m);
        return;
    }
    if (m->state_ != M_RUN) {
        maybe_final(u, m);
        return;
    }
    int64_t res = weft__nt_error(weft__iocp_status(&p->req.ov));
    if (res == 0 && p->req.how == WEFT__HOW_AFD && p->u.poll.count >= 1 &&
        (p->u.poll.handles[0].events & WEFT__AFD_LOCAL_CLOSE))
        res = -ECANCELED;
    if (res < 0) {
        end(u, m, m->cancel_ && res == -ECONNABORTED ? -ECANCELED : res);
        return;
    }
    drain(u, m);
}

void weft__iocp_multi_packet(weft__iocp *u, weft__iocp_req *req)
{
    if (req->kind == WEFT__REQ_SLOT) {
        slot_packet(u, weft__container_of(req, weft__accept_slot, req));
        return;
    }
    weft_op *op = weft__container_of((unsigned char *)req, weft_op, win_.bytes_);
    op_packet(u, weft__container_of(op, weft_multi, op_));
}

int weft__iocp_multi_start(weft__backend *be, weft_multi *m)
{
    weft__iocp *u = (weft__iocp *)be;
    if (m->kind_ == WEFT__MULTI_RECV && !u->bufs.bufs)
        return -ENOBUFS;
    weft__sock_ent *e;
    int rc = weft__iocp_sock_add(u, weft__sock(m->fd_), 1, m->kind_ == WEFT__MULTI_ACCEPT, &e);
    if (rc)
        return rc;
    weft_op *op = &m->op_;
    memset(op, 0, sizeof *op);
    op->opcode = m->kind_ == WEFT__MULTI_ACCEPT ? WEFT_OP_ACCEPT : WEFT_OP_RECV;
    op->fd = m->fd_;
    op->data = m;
    op->state_ = WEFT__OPSTATE_INFLIGHT;
    op->opflags_ = WEFT__OPFLAG_MULTI;
    op->backend_ = u;
    m->win_slots_ = NULL;
    m->win_nout_ = 0;
    m->win_gen_ = e->gen;
    m->state_ = M_RUN;
    weft__list_push(&u->multis, &m->win_link_);
    if (m->kind_ == WEFT__MULTI_RECV || e->mode == WEFT__SOCK_FOREIGN) {
        schedule(u, m); /* a first look: data or connections may be waiting */
        return 0;
    }
    if ((rc = weft__iocp_listening(e)) != 0) {
        weft__list_remove(&u->multis, &m->win_link_);
        m->state_ = 0;
        return rc;
    }
    uint32_t posted = u->base.loop->mq_len;
    for (int i = 0; i < ACCEPT_SLOTS && m->state_ == M_RUN; i++) {
        weft__accept_slot *slot = weft__iocp_slot_get(u);
        rc = slot ? arm_slot(u, m, weft__iocp_sock(u, weft__sock(m->fd_)), slot) : -ENOMEM;
        if (rc) {
            if (i == 0 && u->base.loop->mq_len == posted) {
                /* Nothing out, nothing posted: the start fails. */
                weft__list_remove(&u->multis, &m->win_link_);
                m->state_ = 0;
                return rc;
            }
            end(u, m, rc);
        }
    }
    return 0;
}

int weft__iocp_multi_cancel(weft__backend *be, weft_multi *m)
{
    weft__iocp *u = (weft__iocp *)be;
    if (m->state_ == M_ENDING || m->state_ == M_DONE)
        return -EALREADY;
    m->cancel_ = 1;
    end(u, m, -ECANCELED);
    return 0;
}

void weft__iocp_multi_forget(weft__iocp *u, int fd)
{
    /* Armed ones see their cancelled requests come back, scheduled ones
     * see the socket gone; paused ones wait for nothing: end them here. */
    for (weft__link *n = u->starved.first, *next; n; n = next) {
        next = n->next;
        weft_multi *m = weft__container_of(n, weft_multi, link_);
        if (m->fd_ == fd)
            end(u, m, -ECANCELED);
    }
}

int weft__iocp_bufs_setup(weft__backend *be, unsigned count, unsigned size)
{
    return weft__buf_pool_setup(&((weft__iocp *)be)->bufs, count, size);
}

/* A chunk came back; once that frees a buffer, the recvs that ran dry go on
 * from the callback phase. */
void weft__iocp_buf_put(weft__backend *be, void *buf)
{
    weft__iocp *u = (weft__iocp *)be;
    if (!weft__buf_pool_give(&u->bufs, buf))
        return;
    weft__link *n;
    while ((n = weft__list_pop(&u->starved)) != NULL) {
        weft_multi *m = weft__container_of(n, weft_multi, link_);
        m->state_ = M_RUN;
        schedule(u, m);
    }
}

void weft__iocp_multi_drop_idle(weft__iocp *u)
{
    weft__link *n;
    while ((n = weft__list_pop(&u->starved)) != NULL)
        weft__container_of(n, weft_multi, link_)->state_ = M_RUN; /* made idle below */
    for (n = u->multis.first; n;) {
        weft__link *next = n->next;
        weft_multi *m = weft__container_of(n, weft_multi, win_link_);
        closing_done(u, m); /* those with requests out end as their packets come */
        n = next;
    }
}

void weft__iocp_multi_fini(weft__iocp *u)
{
    weft__buf_pool_fini(&u->bufs);
}
