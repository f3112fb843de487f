/* Readiness backends' shared half: see readiness.h. */
#include "readiness.h"
#include "loop_internal.h"
#include "sys/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PARK WEFT__READY_PARK

static int64_t poll_now(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (p.revents & POLLNVAL)
        return -EBADF;
    return n > 0 ? 0 : PARK;
}

static int64_t sys_result(ssize_t n)
{
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return PARK;
    return -errno;
}

/* Only on a byte stream does a short read prove the input empty (a
 * datagram socket returns one datagram however many wait). */
static int is_stream(int fd, weft__fdslot *slot)
{
    if (!slot->kind) {
        int type = 0;
        socklen_t len = sizeof type;
        slot->kind = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM
                         ? FD_STREAM
                         : FD_OTHER;
    }
    return slot->kind == FD_STREAM;
}

static int64_t try_recv(weft__readiness *r, weft__fdslot *slot, weft_op *op)
{
    ssize_t n;
    if (slot->drained)
        return PARK; /* nothing came since the last short read */
    size_t len = op->len;
    int ferr;
    if (!(slot->marks & WEFT__MARK_NOT_SOCKET)) {
        do {
            len = op->len;
            ferr = WEFT__FAULT(r, op->fd, WEFT__FS_RECV, &len);
            n = ferr ? (errno = ferr, -1) : recv(op->fd, op->buf, len, op->flags);
        } while (n < 0 && errno == EINTR);
        /* Against len, not op->len: a cut-down call proves nothing. */
        if (n > 0 && (size_t)n < len && !slot->hup_seen && !(op->flags & MSG_PEEK) &&
            is_stream(op->fd, slot))
            slot->drained = 1;
        if (n >= WEFT__LATE_READ_MIN)
            slot->marks |= WEFT__MARK_BIG_READS; /* see "late recvs" */
        if (!(n < 0 && errno == ENOTSOCK && op->flags == 0))
            return sys_result(n);
        slot->marks |= WEFT__MARK_NOT_SOCKET;
    }
    do {
        len = op->len;
        ferr = WEFT__FAULT(r, op->fd, WEFT__FS_RECV, &len);
        n = ferr ? (errno = ferr, -1) : read(op->fd, op->buf, len);
    } while (n < 0 && errno == EINTR);
    return sys_result(n);
}

static int64_t try_send(weft__readiness *r, weft__fdslot *slot, weft_op *op)
{
    ssize_t n;
    size_t len;
    int ferr;
    if (!(slot->marks & WEFT__MARK_NOT_SOCKET)) {
        do {
            len = op->len;
            ferr = WEFT__FAULT(r, op->fd, WEFT__FS_SEND, &len);
            n = ferr ? (errno = ferr, -1) : send(op->fd, op->buf, len, op->flags | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (!(n < 0 && errno == ENOTSOCK && op->flags == 0))
            return sys_result(n);
        slot->marks |= WEFT__MARK_NOT_SOCKET;
    }
    do {
        len = op->len;
        ferr = WEFT__FAULT(r, op->fd, WEFT__FS_SEND, &len);
        n = ferr ? (errno = ferr, -1) : write(op->fd, op->buf, len);
    } while (n < 0 && errno == EINTR);
    return sys_result(n);
}

static int64_t try_accept(weft__readiness *r, weft_op *op)
{
    socklen_t len = (socklen_t)op->len;
    int fd, ferr;
    do {
        ferr = WEFT__FAULT(r, op->fd, WEFT__FS_ACCEPT, NULL);
        fd = ferr ? (errno = ferr, -1)
                  : accept4(op->fd, op->buf, op->buf ? &len : NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0)
        op->addrlen = op->buf ? (uint32_t)len : 0;
    return sys_result(fd);
}

static int64_t try_connect(weft_op *op)
{
    if (op->opflags_ & WEFT__OPFLAG_STARTED) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            return -errno;
        return err == EINPROGRESS ? PARK : -(int64_t)err;
    }
    int rc, ferr;
    do {
        ferr = WEFT__FAULT(NULL, op->fd, WEFT__FS_CONNECT, NULL);
        rc = ferr ? (errno = ferr, -1) : connect(op->fd, op->buf, (socklen_t)op->len);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return 0;
    if (errno == EINPROGRESS || errno == EAGAIN) {
        op->opflags_ |= WEFT__OPFLAG_STARTED;
        return PARK;
    }
    return -errno;
}

/* One attempt at op's system call; PARK when it would block. `ready` says
 * the mechanism just reported the fd ready, which is all a poll op waits
 * for. */
static int64_t try_other(weft__readiness *r, weft__fdslot *slot, weft_op *op, int ready)
{
    switch (op->opcode) {
    case WEFT_OP_POLL_IN:
        return ready ? 0 : poll_now(op->fd, POLLIN);
    case WEFT_OP_POLL_OUT:
        return ready ? 0 : poll_now(op->fd, POLLOUT);
    case WEFT_OP_ACCEPT:
        return try_accept(r, op);
    case WEFT_OP_RECV:
        return try_recv(r, slot, op);
    case WEFT_OP_SEND:
        return try_send(r, slot, op);
    case WEFT_OP_CONNECT:
        return try_connect(op);
    }
    return -EINVAL;
}

/* recv and send, nearly every op, are tried inline where try_op is called;
 * the rest go through the switch. */
static inline int64_t try_op(weft__readiness *r, weft__fdslot *slot, weft_op *op, int ready)
{
    if (op->opcode == WEFT_OP_RECV)
        return try_recv(r, slot, op);
    if (op->opcode == WEFT_OP_SEND)
        return try_send(r, slot, op);
    return try_other(r, slot, op, ready);
}

static uint8_t want_of(const weft__fdslot *slot)
{
    return (uint8_t)((weft__list_empty(&slot->readers) ? 0 : WEFT__WANT_IN) |
                     (weft__list_empty(&slot->writers) ? 0 : WEFT__WANT_OUT));
}

/* Tell the mechanism when the wanted interest really changed. */
static int sync_want(weft__readiness *r, int fd, weft__fdslot *slot)
{
    uint8_t old = slot->want, want = want_of(slot);
    if (old == want)
        return 0;
    slot->want = want;
    if (slot->registered && r->mech->register_once)
        return 0; /* watched for both directions already */
    return r->mech->update(r, fd, slot, old);
}

static void finish_all(weft__readiness *r, weft__list *list, int64_t result)
{
    weft__link *n;
    while ((n = weft__list_pop(list)) != NULL) {
        weft_op *op = weft__container_of(n, weft_op, link_);
        if (op->opflags_ & WEFT__OPFLAG_MULTI)
            weft__ready_multi_end(r, op->data, result);
        else
            weft__op_done(r->base.loop, op, result);
    }
}

int64_t weft__ready_try(weft__readiness *r, weft_op *op)
{
    weft__fdslot *slot = weft__ready_slot(r, op->fd);
    return slot ? try_op(r, slot, op, 0) : -EBADF;
}

int weft__ready_park(weft__readiness *r, weft_op *op)
{
    int rc = weft__fd_table_grow(&r->fds, op->fd);
    if (rc)
        return rc;
    weft__fdslot *slot = &r->fds.slots[op->fd];
    weft__list *list = weft__fd_fifo(slot, op);
    weft__list_push(list, &op->link_);
    rc = sync_want(r, op->fd, slot);
    if (rc) {
        weft__list_remove(list, &op->link_);
        slot->want = want_of(slot);
    }
    return rc;
}

void weft__ready_unpark(weft__readiness *r, weft_op *op)
{
    weft__fdslot *slot = &r->fds.slots[op->fd];
    weft__list_remove(weft__fd_fifo(slot, op), &op->link_);
    sync_want(r, op->fd, slot);
}

static void close_op(weft__readiness *r, weft_op *op)
{
    weft__ready_forget_fd(&r->base, op->fd);
    int rc = close(op->fd);
    weft__op_done(r->base.loop, op, rc < 0 && errno != EINTR ? -errno : 0);
}

int weft__ready_submit(weft__backend *be, weft_op *op)
{
    weft__readiness *r = (weft__readiness *)be;
    if (op->opcode == WEFT_OP_CLOSE) {
        close_op(r, op);
        return 0;
    }
    int rc = weft__fd_table_grow(&r->fds, op->fd);
    if (rc) {
        weft__op_done(be->loop, op, rc); /* e.g. -EBADF: the op fails, not the submit */
        return 0;
    }
    weft__fdslot *slot = &r->fds.slots[op->fd];
    weft__list *list = weft__fd_fifo(slot, op);
    /* Ops already waiting go first: never overtake them (nor a late recv
     * whose read is still to come). */
    if (weft__list_empty(list) &&
        !((slot->marks & WEFT__MARK_LATE_WAITS) && weft__op_is_reader(op))) {
        int64_t res = try_op(r, slot, op, 0);
        if (res != PARK) {
            weft__op_done(be->loop, op, res);
            return 0;
        }
    }
    weft__list_push(list, &op->link_);
    rc = sync_want(r, op->fd, slot);
    if (rc) {
        /* Cannot watch the fd (EBADF, EPERM for regular files, ENOMEM):
         * the op fails, the loop stays usable. */
        weft__list_remove(list, &op->link_);
        slot->want = want_of(slot);
        weft__op_done(be->loop, op, rc);
    }
    return 0;
}

int weft__ready_cancel(weft__backend *be, weft_op *op)
{
    weft__readiness *r = (weft__readiness *)be;
    weft__fdslot *slot = weft__ready_slot(r, op->fd);
    if (!slot)
        return -EALREADY;
    weft__list_remove(weft__fd_fifo(slot, op), &op->link_);
    weft__op_done(be->loop, op, -ECANCELED);
    sync_want(r, op->fd, slot);
    return 0;
}

int weft__ready_forget_fd(weft__backend *be, int fd)
{
    weft__readiness *r = (weft__readiness *)be;
    weft__fdslot *slot = weft__ready_slot(r, fd);
    if (!slot)
        return 0;
    weft__fd_late_cancel(slot);
    finish_all(r, &slot->readers, -ECANCELED);
    finish_all(r, &slot->writers, -ECANCELED);
    weft__ready_multi_forget(r, fd);
    if (slot->registered || slot->want)
        r->mech->drop(r, fd, slot);
    memset(slot, 0, sizeof *slot);
    return 0;
}

/* Late recvs: a parked recv of WEFT__LATE_READ_MIN or more on a socket
 * whose recvs bring as many, alone in its FIFO, is not tried when its fd
 * turns readable: it completes with its data still in the socket, and
 * weft__ready_late (the loop's vt->late) reads it just before its
 * callback runs. A callback that sends the data on then copies it while
 * it is in the cache; tried here, every ready fd's data was copied before
 * the first callback ran (64 connections of 64 KiB: 4 MiB, twice the L2).
 * Until the read no other reader of the fd is tried (LATE_WAITS). */
static int goes_late(const weft__fdslot *slot, const weft_op *op)
{
    return (slot->marks & WEFT__MARK_BIG_READS) && op->opcode == WEFT_OP_RECV &&
           op->len >= WEFT__LATE_READ_MIN && op->flags == 0 &&
           !(slot->marks & WEFT__MARK_NOT_SOCKET) && op->link_.next == NULL;
}

static void run_list(weft__readiness *r, weft__fdslot *slot, weft__list *list)
{
    weft__link *n;
    while ((n = list->first) != NULL) {
        weft_op *op = weft__container_of(n, weft_op, link_);
        if (op->opflags_ & WEFT__OPFLAG_MULTI) {
            /* Its callbacks run from the loop's callback phase, not here. */
            weft__ready_multi_kick(r, op->data);
            break;
        }
        if (__builtin_expect(slot->marks != 0, 0) && list == &slot->readers &&
            goes_late(slot, op)) {
            weft__list_remove(list, n);
            weft__fd_late_wait(slot, op);
            weft__op_done(r->base.loop, op, 0);
            break;
        }
        int64_t res = try_op(r, slot, op, 1);
        if (res == PARK)
            break;
        weft__list_remove(list, n);
        weft__op_done(r->base.loop, op, res);
    }
}

void weft__ready_event(weft__readiness *r, int fd, int readable, int writable, int hup)
{
    weft__fdslot *slot = weft__ready_slot(r, fd);
    if (!slot)
        return;
    if (hup)
        slot->hup_seen = 1; /* an edge-triggered mechanism will not say it again */
    if (readable) {
        slot->drained = 0;
        if (slot->readers.first && !(slot->marks & WEFT__MARK_LATE_WAITS))
            run_list(r, slot, &slot->readers);
    }
    if (writable && slot->writers.first) /* edge-triggered: writable comes with most events */
        run_list(r, slot, &slot->writers);
    sync_want(r, fd, slot);
}

int weft__ready_late(weft__backend *be, weft_op *op)
{
    weft__readiness *r = (weft__readiness *)be;
    weft__fdslot *slot = &r->fds.slots[op->fd];
    weft__fd_late_take(slot, op);
    int64_t res = try_recv(r, slot, op);
    if (res >= 0 && res < WEFT__LATE_READ_MIN)
        slot->marks &= (uint8_t)~WEFT__MARK_BIG_READS;
    if (res == PARK && !(op->opflags_ & WEFT__OPFLAG_CANCEL)) {
        /* Nothing to read after all: parked again, first in line. */
        weft__list_push_front(&slot->readers, &op->link_);
        int rc = sync_want(r, op->fd, slot);
        if (rc == 0) {
            op->state_ = WEFT__OPSTATE_INFLIGHT;
            return 1;
        }
        weft__list_remove(&slot->readers, &op->link_);
        slot->want = want_of(slot);
        res = rc;
    }
    op->result = res == PARK ? -ECANCELED : res;
    /* Readers that waited for this one: the fd may have said readable
     * meanwhile, and an edge-triggered mechanism will not say it again. */
    if (slot->readers.first)
        run_list(r, slot, &slot->readers);
    sync_want(r, op->fd, slot);
    return 0;
}

#if WEFT_FAULT_INJECTION
void weft__ready_fault_replay(weft__readiness *r)
{
    int fd;
    while ((fd = weft__fault_owed_pop(r)) >= 0)
        weft__ready_event(r, fd, 1, 1, 0);
}
#endif

static void drop_all(weft__list *list)
{
    weft__link *n;
    while ((n = weft__list_pop(list)) != NULL)
        weft__container_of(n, weft_op, link_)->state_ = WEFT__OPSTATE_IDLE;
}

void weft__ready_fini(weft__readiness *r)
{
    for (int fd = 0; fd < r->fds.nslots; fd++) {
        drop_all(&r->fds.slots[fd].readers);
        drop_all(&r->fds.slots[fd].writers);
    }
    weft__fd_table_free(&r->fds);
    weft__ready_multi_fini(r);
}
