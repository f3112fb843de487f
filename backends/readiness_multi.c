/* Multishot operations on readiness backends (epoll, kqueue, poll): the
 * loop emulates io_uring's multishot accept and recv. The weft_multi's own
 * op waits on the fd like any other reader; when the fd is ready, the
 * multi's `kick_` handle is scheduled and, from the loop's callback phase,
 * accepts or receives until the call would block, one callback per result.
 * Receives go into the loop's buffers, packed (backends/buf_pool.h); with
 * none left the recv pauses until one is free again. The last callback
 * (error, end of stream, cancel) also comes through `kick_`, never from
 * inside start or cancel. */
#include "readiness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { RM_PARKED = 1, RM_PAUSED, RM_ENDING };

static void kick(void *arg);

static void schedule(weft__readiness *r, weft_multi *m)
{
    if (!weft_handle_pending(&m->kick_))
        weft_call_soon(r->base.loop, &m->kick_, kick, m);
}

int weft__ready_multi_start(weft__backend *be, weft_multi *m)
{
    weft__readiness *r = (weft__readiness *)be;
    if (m->kind_ == WEFT__MULTI_RECV && !r->bufs.bufs)
        return -ENOBUFS;
    weft_op *op = &m->op_;
    memset(op, 0, sizeof *op);
    op->opcode = m->kind_ == WEFT__MULTI_ACCEPT ? WEFT_OP_ACCEPT : WEFT_OP_RECV;
    op->fd = m->fd_;
    op->data = m;
    op->state_ = WEFT__OPSTATE_INFLIGHT;
    op->opflags_ = WEFT__OPFLAG_MULTI;
    op->backend_ = r;
    int rc = weft__ready_park(r, op);
    if (rc)
        return rc;
    m->state_ = RM_PARKED;
    schedule(r, m); /* the fd may be ready already: edge-triggered epoll would not say */
    return 0;
}

/* End m with res: its last callback comes from the callback phase. */
void weft__ready_multi_end(weft__readiness *r, weft_multi *m, int64_t res)
{
    m->state_ = RM_ENDING;
    m->final_ = res;
    schedule(r, m);
}

int weft__ready_multi_cancel(weft__backend *be, weft_multi *m)
{
    weft__readiness *r = (weft__readiness *)be;
    if (m->state_ == RM_ENDING)
        return -EALREADY;
    if (m->state_ == RM_PARKED)
        weft__ready_unpark(r, &m->op_);
    else
        weft__list_remove(&r->starved, &m->link_);
    m->cancel_ = 1;
    weft__ready_multi_end(r, m, -ECANCELED);
    return 0;
}

/* Accept or receive until the call would block or m ends (64 results per
 * turn, so one busy fd cannot starve the loop). */
static void drain(weft__readiness *r, weft_multi *m)
{
    weft_loop *loop = r->base.loop;
    weft_op *op = &m->op_;
    for (int turns = 0; m->state_ == RM_PARKED; turns++) {
        if (turns == 64) {
            schedule(r, m); /* let others run; nothing re-signals an edge, so come back */
            return;
        }
        void *buf = NULL;
        size_t room = 0;
        if (m->kind_ == WEFT__MULTI_RECV) {
            /* A short read emptied the input: wait for the next event
             * rather than try a recv that would park at once. */
            const weft__fdslot *slot = weft__ready_slot(r, op->fd);
            if (slot && slot->drained)
                return;
            if (!(buf = weft__buf_pool_room(&r->bufs, &room))) {
                weft__ready_unpark(r, op);
                m->state_ = RM_PAUSED;
                weft__list_push(&r->starved, &m->link_);
                return;
            }
            op->buf = buf;
            op->len = room;
        }
        int64_t res = weft__ready_try(r, op);
        if (res == WEFT__READY_PARK || res <= 0) {
            if (res == WEFT__READY_PARK)
                return;
            if (res < 0 || m->kind_ == WEFT__MULTI_RECV) { /* error, or end of stream */
                weft__ready_unpark(r, op);
                m->state_ = RM_ENDING;
                weft__multi_event(loop, m, res, NULL, 0);
                return;
            }
        } else if (buf) {
            weft__buf_pool_commit(&r->bufs, (size_t)res);
        }
        weft__multi_event(loop, m, res, buf, 1); /* may cancel m or close its fd */
    }
}

static void kick(void *arg)
{
    weft_multi *m = arg;
    weft__readiness *r = m->op_.backend_;
    if (m->state_ == RM_ENDING)
        weft__multi_event(r->base.loop, m, m->final_, NULL, 0);
    else if (m->state_ == RM_PARKED)
        drain(r, m);
}

void weft__ready_multi_kick(weft__readiness *r, weft_multi *m)
{
    schedule(r, m);
}

/* Paused recvs are on no fd's list: end those on fd here. */
void weft__ready_multi_forget(weft__readiness *r, int fd)
{
    for (weft__link *n = r->starved.first, *next; n; n = next) {
        next = n->next;
        weft_multi *m = weft__container_of(n, weft_multi, link_);
        if (m->fd_ == fd) {
            weft__list_remove(&r->starved, n);
            weft__ready_multi_end(r, m, -ECANCELED);
        }
    }
}

int weft__ready_bufs_setup(weft__backend *be, unsigned count, unsigned size)
{
    return weft__buf_pool_setup(&((weft__readiness *)be)->bufs, count, size);
}

/* A chunk came back; once that frees a buffer, resume the recvs that ran dry. */
void weft__ready_buf_put(weft__backend *be, void *buf)
{
    weft__readiness *r = (weft__readiness *)be;
    if (!weft__buf_pool_give(&r->bufs, buf))
        return;
    weft__link *n;
    while ((n = weft__list_pop(&r->starved)) != NULL) {
        weft_multi *m = weft__container_of(n, weft_multi, link_);
        int rc = weft__ready_park(r, &m->op_);
        if (rc) {
            weft__ready_multi_end(r, m, rc);
            continue;
        }
        m->state_ = RM_PARKED;
        schedule(r, m);
    }
}

void weft__ready_multi_fini(weft__readiness *r)
{
    weft__buf_pool_fini(&r->bufs);
}
