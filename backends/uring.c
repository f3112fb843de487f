/* io_uring backend (liburing, Linux 5.19 or later).
 *
 * Every op is one SQE whose user_data is the op's address. The op belongs
 * to the ring until its own CQE is reaped, so a CQE never points at memory
 * the caller has reused, and no generation counter is needed. submit() and
 * cancel() only queue SQEs; poll() hands them to the kernel and waits for
 * completions in one io_uring_enter. When the SQ is full, what is queued is
 * submitted early and queueing goes on: nothing is dropped.
 *
 * Ring setup tries SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then
 * no flags, with a CQ much larger than the SQ; info() says what it got. A
 * SINGLE_ISSUER ring is created disabled and enabled by the first thread
 * that enters it, so a loop may be created on one thread and run on another.
 *
 * Order: io_uring wakes requests parked on one file in no useful order
 * (the newest poll waiter first), so, as on the readiness backends, each fd
 * has a FIFO of readers (poll-in, accept, recv) and one of writers (poll-out,
 * send, connect), and only the head of each is with the kernel. Two sends
 * on a socket therefore never overtake each other; one recv and one send
 * per socket, the common case, never wait in a FIFO.
 *
 * Deferred recvs: a recv submitted on a socket whose send is in flight
 * (a server that answers, then reads the next request) goes to the kernel
 * one enter later, after the send's completion is reaped. Issued at once,
 * it nearly always finds no data yet (the peer has not seen the answer),
 * and the kernel then arms an internal poll on the socket and retries the
 * recv on wake-up: about 1.5 us of kernel time per message on loopback
 * (io_uring_poll_arm once per message instead of once per ten). Held back
 * one enter, the peer's next request has usually arrived. The wait is
 * bounded: the next poll() enters without blocking while recvs are held,
 * then queues them, and blocks (with them in the SQ) only if that enter
 * brought nothing back.
 *
 * Sends at submit: a send of 8 KiB or more (WEFT__SEND_NOW_MIN) on a
 * socket with no other writer goes out with send(MSG_DONTWAIT) inside
 * submit(), while the caller's data is still in the cache; it completes
 * through the loop like any op. Queued, its copy ran one enter later,
 * after the batch's other recvs had pushed the data out of the cache (at
 * 16 KiB echo the send's copy cost twice libuv's). A full socket or a
 * non-socket goes through the ring as before; a short send completes
 * short. A recv submitted on that fd before the next poll() is held back
 * as above: the peer has not seen the answer yet. Shorter sends stay in
 * the ring, where a batch of them costs one enter, not a call each.
 *
 * Late recvs: a recv of 8 KiB or more (WEFT__LATE_READ_MIN) on a socket
 * whose recvs bring as many goes to the kernel as a POLL_ADD. When
 * the fd is readable the op completes with its data still in the socket,
 * and ur_late (the loop's vt->late) reads it with recv() just before the
 * callback runs. A callback that sends the data on then copies it while
 * it is in the cache: in the ring, one enter's recvs all copied first (64
 * connections of 64 KiB: 4 MiB, twice the L2), and the send's copy cost
 * twice libuv's. Until the read, the fd takes no other reader to the
 * kernel (slot->late); a close cancels the op; a read that finds nothing
 * sends it back to the kernel, unless a cancel was asked for meanwhile.
 * Short recvs stay in the ring, where a batch of them costs one enter,
 * not a call each.
 *
 * Multishot requests and the provided-buffer ring: uring_multi.c.
 *
 * Cross-thread wake-ups: an eventfd with a read SQE always armed on it.
 *
 * Closing: a WEFT_OP_CLOSE is an ASYNC_CANCEL of everything on the fd
 * (IORING_ASYNC_CANCEL_FD|ALL) hard-linked to an IORING_OP_CLOSE, because
 * close() alone does not cancel requests that hold the file. forget_fd()
 * submits the same cancel at once, before the caller's close().
 *
 * Environment: WEFT_URING_DISABLE=1 makes init fail with WEFT_EUNAVAILABLE,
 * as if io_uring_setup had been refused (ENOSYS, EPERM, io_uring_disabled,
 * seccomp), so AUTO falls back to epoll. For tests and for users who want
 * to rule io_uring out without rebuilding.
 */
#include "uring_internal.h"
#include "loop_internal.h"
#include "sys/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif
#ifndef IORING_ASYNC_CANCEL_ANY
#define IORING_ASYNC_CANCEL_ANY (1U << 2)
#endif

#define DEFAULT_ENTRIES 256
#define MIN_CQ_ENTRIES 4096
#define MAX_RW 0x7ffff000u /* the kernel's MAX_RW_COUNT: larger lengths are cut anyway */

_Static_assert(sizeof(socklen_t) == sizeof(uint32_t), "accept writes its length into addrlen");
_Static_assert(_Alignof(weft_op) >= 4 && _Alignof(weft_multi) >= 4,
               "user_data tags live in the low bits");

/* ---- per-fd FIFOs ---- */

/* The FIFO of an op that went through submit(); CLOSE has none. */
static weft__list *fifo_of(weft__uring *u, const weft_op *op)
{
    return weft__fd_fifo(&u->fds.slots[op->fd], op);
}

/* Whether op is the head of its FIFO, i.e. the one with the kernel. A head
 * detached by a close (see detach_fd) is with the kernel too but no longer
 * in the FIFO. */
static int is_head(weft__uring *u, const weft_op *op)
{
    return fifo_of(u, op)->first == &op->link_;
}

/* ---- talking to the kernel ---- */

/* A SINGLE_ISSUER ring belongs to the thread that enables it: do that at
 * the first real use, not in init(), which may run on another thread. */
int weft__uring_enable(weft__uring *u)
{
    if (u->enabled)
        return 0;
    /* io_uring_enable_rings() is missing from liburing 2.3's shared library. */
    int rc = io_uring_register(u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    if (rc < 0)
        return rc;
    u->enabled = 1;
    /* The ring is bound to this thread anyway: skip the fd lookup per enter. */
    if (u->flags & IORING_SETUP_SINGLE_ISSUER)
        io_uring_register_ring_fd(&u->ring);
    return 0;
}

static void handle_cqe(weft__uring *u, uint64_t ud, int res, unsigned flags);

enum { FLUSH_TRIES = 16 }; /* submits refused in a row before flush() gives up */

/* Copy up to WEFT__REAP_BATCH CQEs off the ring into u->reaped and give
 * their slots back with one head store. */
static unsigned take_cqes(weft__uring *u)
{
    struct io_uring_cq *cq = &u->ring.cq;
    unsigned head = *cq->khead;
    unsigned avail = io_uring_smp_load_acquire(cq->ktail) - head;
    unsigned n = avail < WEFT__REAP_BATCH ? avail : WEFT__REAP_BATCH;
    for (unsigned i = 0; i < n; i++) {
        const struct io_uring_cqe *cqe = &cq->cqes[(head + i) & cq->ring_mask];
        u->reaped[i].ud = cqe->user_data;
        u->reaped[i].res = cqe->res;
        u->reaped[i].flags = cqe->flags;
    }
    if (n)
        io_uring_cq_advance(&u->ring, n);
    u->reaped_pos = 0;
    u->reaped_len = n;
    return n;
}

/* Reap every CQE, flushing what the kernel kept back on overflow. CQEs are
 * consumed before they are handled, so handling may queue SQEs, submit,
 * and even reap again: a nested reap goes on from the same batch, so CQEs
 * are handled in ring order (a multishot recv's data stays in order). */
static unsigned reap(weft__uring *u)
{
    unsigned handled = 0;
    for (;;) {
        do {
            while (u->reaped_pos < u->reaped_len) {
                const struct weft__reaped *e = &u->reaped[u->reaped_pos++];
                handle_cqe(u, e->ud, e->res, e->flags);
                handled++;
            }
        } while (take_cqes(u));
        /* FEAT_NODROP: the kernel holds overflowed CQEs until we enter. */
        if (!io_uring_cq_has_overflow(&u->ring))
            return handled;
        int rc = io_uring_get_events(&u->ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            return handled;
    }
}

/* Hand the queued SQEs to the kernel now (SQ full, or an fd about to be
 * closed). 0 only once they are with the kernel: a cancel by fd must be
 * issued before the caller closes that fd. */
static int flush(weft__uring *u)
{
    int rc = weft__uring_enable(u);
    if (rc)
        return rc;
    u->entered = 1;
    for (int tries = 0;; tries++) {
        /* Fault injection: the kernel refuses the batch (its CQ backed up). */
        rc = WEFT__FAULT(u, -1, WEFT__FS_SQE, NULL) ? -EBUSY : io_uring_submit(&u->ring);
        if (rc >= 0)
            return 0;
        if ((rc != -EBUSY && rc != -EAGAIN && rc != -EINTR) || tries == FLUSH_TRIES)
            return rc;
        /* Completions are backed up: reap them (that makes room), then
         * submit again (nothing was submitted). */
        reap(u);
    }
}

struct io_uring_sqe *weft__uring_get_sqe_slow(weft__uring *u, int *err)
{
    struct io_uring_sqe *sqe;
    int tries = 0;
    /* An injected full SQ takes no SQE: the flush below is the real path. */
    while ((sqe = WEFT__FAULT(u, -1, WEFT__FS_SQE, NULL) ? NULL : io_uring_get_sqe(&u->ring)) ==
           NULL) {
        int rc = flush(u);
        if (rc == 0 && ++tries > 64)
            rc = -EAGAIN; /* the kernel takes nothing: give up */
        if (rc) {
            *err = rc;
            return NULL;
        }
    }
    return sqe;
}

/* ---- ops ---- */

static unsigned rw_len(size_t len)
{
    return len > MAX_RW ? MAX_RW : (unsigned)len;
}

#if WEFT_FAULT_INJECTION
/* Fault injection (fault.h): an op whose call is to fail goes to the kernel
 * as a NOP whose completion op_cqe() turns into the errno (nothing was
 * transferred); a short one asks for 1 byte. 1 when sqe became that NOP. */
static int fault_op(weft_op *op, struct io_uring_sqe *sqe, size_t *len)
{
    int site = op->opcode == WEFT_OP_RECV     ? WEFT__FS_RECV
               : op->opcode == WEFT_OP_SEND   ? WEFT__FS_SEND
               : op->opcode == WEFT_OP_ACCEPT ? WEFT__FS_ACCEPT
               : op->opcode == WEFT_OP_CONNECT && !(op->opflags_ & WEFT__OPFLAG_STARTED)
                   ? WEFT__FS_CONNECT
                   : -1;
    int err = site < 0 ? 0 : weft__fault_at(WEFT__FAULT_NO_OWE, op->fd, site, len);
    if (!err)
        return 0;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op);
    op->opflags_ |= WEFT__OPFLAG_FAULT;
    op->pad_ = (uint16_t)err;
    return 1;
}
#else
#define fault_op(op, sqe, len) ((void)(len), 0)
#endif

/* Queue op's SQE for its current stage (a connect in progress waits for
 * POLLOUT; recv/send on a non-socket is read/write). */
static int queue_op(weft__uring *u, weft_op *op)
{
    int err = 0;
    struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
    if (!sqe)
        return err;
    size_t len = op->len;
    if (fault_op(op, sqe, &len))
        return 0;
    /* Socket recv and send first: nearly every op. */
    if (op->opcode == WEFT_OP_RECV &&
        !(op->opflags_ & (WEFT__OPFLAG_READ_WRITE | WEFT__OPFLAG_LATE))) {
        io_uring_prep_recv(sqe, op->fd, op->buf, rw_len(len), op->flags);
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op);
        return 0;
    }
    if (op->opcode == WEFT_OP_SEND && !(op->opflags_ & WEFT__OPFLAG_READ_WRITE)) {
        io_uring_prep_send(sqe, op->fd, op->buf, rw_len(len), op->flags | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op);
        return 0;
    }
    switch (op->opcode) {
    case WEFT_OP_POLL_IN:
        io_uring_prep_poll_add(sqe, op->fd, POLLIN);
        break;
    case WEFT_OP_POLL_OUT:
        io_uring_prep_poll_add(sqe, op->fd, POLLOUT);
        break;
    case WEFT_OP_ACCEPT:
        /* The kernel writes the peer address length back into op->addrlen. */
        op->addrlen = op->buf ? (uint32_t)(op->len > INT32_MAX ? INT32_MAX : op->len) : 0;
        io_uring_prep_accept(sqe, op->fd, op->buf, op->buf ? (socklen_t *)&op->addrlen : NULL,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case WEFT_OP_RECV:
        if (op->opflags_ & WEFT__OPFLAG_LATE)
            io_uring_prep_poll_add(sqe, op->fd, POLLIN); /* see "late recvs" */
        else if (op->opflags_ & WEFT__OPFLAG_READ_WRITE)
            io_uring_prep_read(sqe, op->fd, op->buf, rw_len(len), (uint64_t)-1);
        else
            io_uring_prep_recv(sqe, op->fd, op->buf, rw_len(len), op->flags);
        break;
    case WEFT_OP_SEND:
        if (op->opflags_ & WEFT__OPFLAG_READ_WRITE)
            io_uring_prep_write(sqe, op->fd, op->buf, rw_len(len), (uint64_t)-1);
        else
            io_uring_prep_send(sqe, op->fd, op->buf, rw_len(len), op->flags | MSG_NOSIGNAL);
        break;
    case WEFT_OP_CONNECT:
        if (op->opflags_ & WEFT__OPFLAG_STARTED)
            io_uring_prep_poll_add(sqe, op->fd, POLLOUT);
        else
            io_uring_prep_connect(sqe, op->fd, op->buf,
                                  (socklen_t)(op->len > INT32_MAX ? INT32_MAX : op->len));
        break;
    case WEFT_OP_CLOSE:
        io_uring_prep_close(sqe, op->fd);
        break;
    default:
        /* weft_op_submit() checked the opcode: give the slot back as a no-op. */
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, UD_IGNORE);
        return -EINVAL;
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op);
    return 0;
}

/* Finish op: it leaves its FIFO (when it was the head, the next op there
 * goes to the kernel) and its callback is queued on the loop. Inlined into
 * every caller (twice per message from op_cqe: called, it costs ~25
 * instructions of register saving), start_head never. */
#define URING_INLINE static inline __attribute__((always_inline))
URING_INLINE void finish(weft__uring *u, weft_op *op, int64_t res);

/* Send the head of a FIFO to the kernel; an op that cannot be queued
 * fails and the next one gets its turn. */
__attribute__((noinline)) static void start_head(weft__uring *u, weft__list *fifo)
{
    weft__link *n;
    while ((n = fifo->first) != NULL) {
        weft_op *op = weft__container_of(n, weft_op, link_);
        int rc = u->closing ? -ECANCELED : queue_op(u, op);
        if (rc == 0)
            return;
        finish(u, op, rc);
    }
}

URING_INLINE void finish(weft__uring *u, weft_op *op, int64_t res)
{
    if (op->opcode != WEFT_OP_CLOSE) {
        weft__list *fifo = fifo_of(u, op);
        if (fifo->first == &op->link_) {
            /* The head leaves; the next in line, if any, goes to the kernel. */
            weft__link *next = op->link_.next;
            fifo->first = next;
            op->link_.next = NULL;
            if (next) {
                next->prev = NULL;
                start_head(u, fifo);
            } else {
                fifo->last = NULL;
            }
        } else if (op->link_.prev) {
            weft__list_remove(fifo, &op->link_); /* waiting behind the head */
        }
    }
    u->nops--;
    weft__op_done(u->base.loop, op, res);
}

/* ---- deferred recvs ---- */

/* Hold a recv back until the next reap when fd has a send in flight (its
 * FIFO of writers is not empty). 1 when held. */
static int defer_recv(weft__uring *u, weft_op *op, const weft__fdslot *s)
{
    if (op->opcode != WEFT_OP_RECV ||
        (weft__list_empty(&s->writers) && s->sent_gen != u->poll_gen) ||
        (op->opflags_ & WEFT__OPFLAG_READ_WRITE) || u->ndeferred == WEFT__DEFER_MAX)
        return 0;
    op->opflags_ |= WEFT__OPFLAG_DEFERRED;
    u->deferred[u->ndeferred++] = op;
    return 1;
}

/* Take a held recv out of the list (cancel, close): the kernel never saw it. */
static void undefer(weft__uring *u, weft_op *op)
{
    for (unsigned i = 0; i < u->ndeferred; i++)
        if (u->deferred[i] == op) {
            memmove(&u->deferred[i], &u->deferred[i + 1],
                    (u->ndeferred - i - 1) * sizeof u->deferred[0]);
            u->ndeferred--;
            break;
        }
    op->opflags_ &= (uint8_t)~WEFT__OPFLAG_DEFERRED;
}

/* Queue the held recvs' SQEs (in the order they were submitted). No
 * callback runs meanwhile, so none can be held anew during the walk. */
static void release_deferred(weft__uring *u)
{
    for (unsigned i = 0; i < u->ndeferred; i++) {
        weft_op *op = u->deferred[i];
        op->opflags_ &= (uint8_t)~WEFT__OPFLAG_DEFERRED;
        int rc = u->closing ? -ECANCELED : queue_op(u, op);
        if (rc)
            finish(u, op, rc);
    }
    u->ndeferred = 0;
}

/* A result that only means "not yet" or "use read/write": queue the op
 * again, unless a cancel was asked for meanwhile (its ASYNC_CANCEL may
 * have found nothing to cancel) or its fd was closed. 1 when queued, else
 * *res is final. */
static int resubmit(weft__uring *u, weft_op *op, int *res)
{
    if ((op->opflags_ & WEFT__OPFLAG_CANCEL) || u->closing || !is_head(u, op)) {
        *res = -ECANCELED;
        return 0;
    }
    int rc = queue_op(u, op);
    if (rc == 0)
        return 1;
    *res = rc;
    return 0;
}

/* ---- late recvs ---- */

/* Read a late recv's data now, with recv(MSG_DONTWAIT): the bytes moved,
 * a final error, or -EAGAIN when the op must wait again (nothing to read
 * after all, or not a socket: it goes on as a read). */
static int64_t late_recv(weft_op *op, weft__fdslot *s)
{
    size_t len = rw_len(op->len);
#if WEFT_FAULT_INJECTION
    int ferr = weft__fault_at(WEFT__FAULT_NO_OWE, op->fd, WEFT__FS_RECV, &len);
#else
    int ferr = 0;
#endif
    ssize_t n = ferr ? (errno = ferr, -1) : recv(op->fd, op->buf, len, MSG_DONTWAIT);
    if (n >= 0) {
        if (n < WEFT__LATE_READ_MIN)
            s->marks &= (uint8_t)~WEFT__MARK_BIG_READS;
        return n;
    }
    if (errno == ENOTSOCK) {
        op->opflags_ = (uint8_t)((op->opflags_ & ~WEFT__OPFLAG_LATE) | WEFT__OPFLAG_READ_WRITE);
        s->marks = (uint8_t)((s->marks & ~WEFT__MARK_BIG_READS) | WEFT__MARK_NOT_SOCKET);
        return -EAGAIN;
    }
    return errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
}

/* A late recv's poll says its fd is readable. Alone in its FIFO, it
 * completes with its data still in the socket: vt->late (ur_late) reads
 * it just before the callback runs, and until then the fd takes no other
 * reader to the kernel (s->late). With readers waiting behind it, it
 * reads now, so that they cannot overtake it. */
static void late_ready(weft__uring *u, weft_op *op)
{
    weft__fdslot *s = &u->fds.slots[op->fd];
    if (op->link_.next == NULL) {
        s->readers.first = s->readers.last = NULL; /* op was the head and the only one */
        weft__fd_late_wait(s, op);
        u->nops--;
        weft__op_done(u->base.loop, op, 0);
        return;
    }
    int res = (int)late_recv(op, s);
    if (res == -EAGAIN && resubmit(u, op, &res))
        return;
    op->opflags_ &= (uint8_t)~WEFT__OPFLAG_LATE; /* read: nothing left for vt->late */
    finish(u, op, res);
}

static int ur_late(weft__backend *be, weft_op *op)
{
    weft__uring *u = (weft__uring *)be;
    weft__fdslot *s = &u->fds.slots[op->fd];
    weft__fd_late_take(s, op);
    int64_t n = late_recv(op, s);
    if (n == -EAGAIN && !u->closing && !(op->opflags_ & WEFT__OPFLAG_CANCEL)) {
        /* Not readable after all: the op goes back to the kernel first in
         * line (readers submitted meanwhile wait behind it). */
        if (!(op->opflags_ & WEFT__OPFLAG_READ_WRITE))
            op->opflags_ |= WEFT__OPFLAG_LATE;
        weft__list_push_front(&s->readers, &op->link_);
        int rc = queue_op(u, op);
        if (rc == 0) {
            op->state_ = WEFT__OPSTATE_INFLIGHT;
            u->nops++;
            return 1;
        }
        weft__list_remove(&s->readers, &op->link_);
        n = rc;
    }
    op->result = n == -EAGAIN ? -ECANCELED : n;
    if (!weft__list_empty(&s->readers))
        start_head(u, &s->readers); /* readers that waited for this one */
    return 0;
}

static int so_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

static void op_cqe(weft__uring *u, weft_op *op, int res)
{
#if WEFT_FAULT_INJECTION
    if (op->opflags_ & WEFT__OPFLAG_FAULT) {
        op->opflags_ &= (uint8_t)~WEFT__OPFLAG_FAULT;
        res = -(int)op->pad_; /* the NOP fault_op() sent */
    }
#endif
    switch (op->opcode) {
    case WEFT_OP_POLL_IN:
    case WEFT_OP_POLL_OUT:
        if (res > 0)
            res = 0; /* the poll mask */
        break;
    case WEFT_OP_RECV:
    case WEFT_OP_SEND:
        if (res >= 0) {
            /* Bytes moved (nearly every CQE), or a late recv's poll mask. */
            if (__builtin_expect(op->opflags_ & WEFT__OPFLAG_LATE, 0)) {
                late_ready(u, op);
                return;
            }
            if (res >= WEFT__LATE_READ_MIN && op->opcode == WEFT_OP_RECV)
                u->fds.slots[op->fd].marks |= WEFT__MARK_BIG_READS;
            finish(u, op, res);
            return;
        }
        if (res == -ENOTSOCK && op->flags == 0 && !(op->opflags_ & WEFT__OPFLAG_READ_WRITE)) {
            /* A pipe or a tty: read/write, now and for the next ops on fd. */
            op->opflags_ |= WEFT__OPFLAG_READ_WRITE;
            if (is_head(u, op))
                u->fds.slots[op->fd].marks |= WEFT__MARK_NOT_SOCKET;
            if (resubmit(u, op, &res))
                return;
        } else if ((res == -EAGAIN || res == -EINTR) && resubmit(u, op, &res)) {
            /* O_NONBLOCK sockets can still surface EAGAIN after a spurious wake-up;
             * EINTR (a signalled io-wq worker) means nothing was moved: again */
            return;
        }
        break;
    case WEFT_OP_ACCEPT:
        if ((res == -EAGAIN || res == -EINTR) && resubmit(u, op, &res))
            return;
        if (res >= 0 && res < u->fds.nslots)
            u->fds.slots[res].marks &= WEFT__MARK_LATE_WAITS; /* a reused number */
        if (res < 0 || !op->buf)
            op->addrlen = 0;
        break;
    case WEFT_OP_CONNECT:
        if (op->opflags_ & WEFT__OPFLAG_STARTED) {
            if (res >= 0)
                res = so_error(op->fd);
        } else if (res == -EINTR) {
            /* Interrupted: ask again (a connect under way answers EALREADY). */
            if (resubmit(u, op, &res))
                return;
        } else if (res == -EINPROGRESS || res == -EALREADY || res == -EAGAIN) {
            /* The kernel let a non-blocking connect through unfinished: wait for POLLOUT. */
            op->opflags_ |= WEFT__OPFLAG_STARTED;
            if (resubmit(u, op, &res))
                return;
        }
        break;
    }
    finish(u, op, res);
}

static int arm_wake(weft__uring *u)
{
    int err = 0;
    struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
    if (!sqe)
        return err;
    io_uring_prep_read(sqe, u->wakefd, &u->wake_val, sizeof u->wake_val, 0);
    io_uring_sqe_set_data64(sqe, UD_WAKE);
    u->wake_armed = 1;
    return 0;
}

static void handle_cqe(weft__uring *u, uint64_t ud, int res, unsigned flags)
{
    if (!(ud & 3) && ud != UD_IGNORE) {
        op_cqe(u, (weft_op *)(uintptr_t)ud, res); /* an op: nearly every CQE */
        return;
    }
    if (ud == UD_IGNORE || ud == LIBURING_UDATA_TIMEOUT)
        return; /* cancels, liburing's own */
    if (ud == UD_WAKE) {
        u->wake_armed = 0;
        /* A read error other than these would repeat at once: leave it
         * disarmed (poll() re-arms it next time) rather than spin here. */
        if (!u->closing && (res >= 0 || res == -EINTR || res == -EAGAIN || res == -ECANCELED))
            arm_wake(u);
        return;
    }
    if ((ud & 3) == UD_MULTI)
        weft__uring_multi_cqe(u, (weft_multi *)(uintptr_t)(ud & ~(uint64_t)3), res, flags);
}

/* fd is being closed: the ops waiting behind a head complete with
 * -ECANCELED now; the heads leave their FIFOs and are left to the cancel
 * the caller sends. Returns how many heads are with the kernel. */
static int detach_fd(weft__uring *u, int fd)
{
    /* Paused recvs on fd are not with the kernel: stop them here. */
    for (weft__link *n = u->starved.first, *next; n; n = next) {
        next = n->next;
        weft_multi *m = weft__container_of(n, weft_multi, link_);
        if (m->fd_ == fd)
            weft__uring_multi_stop_paused(u, m);
    }
    /* Multishot requests are in no FIFO: any of them may be on fd. */
    int heads = u->nmulti != 0;
    weft__fdslot *s = weft__fd_slot(&u->fds, fd);
    if (!s)
        return heads;
    weft__fd_late_cancel(s);
    weft__list *fifos[2] = {&s->readers, &s->writers};
    for (int i = 0; i < 2; i++) {
        weft__link *head = weft__list_pop(fifos[i]), *n;
        if (!head)
            continue;
        weft_op *op = weft__container_of(head, weft_op, link_);
        if (op->opflags_ & WEFT__OPFLAG_DEFERRED) { /* not with the kernel */
            undefer(u, op);
            u->nops--;
            weft__op_done(u->base.loop, op, -ECANCELED);
        } else {
            heads++;
        }
        while ((n = weft__list_pop(fifos[i])) != NULL) {
            u->nops--;
            weft__op_done(u->base.loop, weft__container_of(n, weft_op, link_), -ECANCELED);
        }
    }
    s->marks = 0;
    return heads;
}

static int queue_cancel_fd(weft__uring *u, int fd, int link)
{
    int err = 0;
    struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
    if (!sqe)
        return err;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    if (link)
        sqe->flags |= IOSQE_IO_HARDLINK;
    return 0;
}

/* ---- sends at submit ---- */

/* A long send on a socket with no other writer: send() now, while the
 * caller's data is in the cache (see "sends at submit"). 1 when op is
 * done; 0 when it goes to the kernel as usual (the socket is full, or not
 * a socket). */
static int send_now(weft__uring *u, weft_op *op, weft__fdslot *s)
{
    if (op->opcode != WEFT_OP_SEND || op->len < WEFT__SEND_NOW_MIN ||
        (op->opflags_ & WEFT__OPFLAG_READ_WRITE))
        return 0;
    size_t len = op->len;
#if WEFT_FAULT_INJECTION
    int ferr = weft__fault_at(WEFT__FAULT_NO_OWE, op->fd, WEFT__FS_SEND, &len);
#else
    int ferr = 0;
#endif
    ssize_t n = ferr ? (errno = ferr, -1)
                     : send(op->fd, op->buf, len, op->flags | MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOTSOCK))
        return 0;
    s->sent_gen = u->poll_gen;
    weft__op_done(u->base.loop, op, n < 0 ? -errno : n);
    return 1;
}

/* What the fd's marks mean for op: a recv or send on a non-socket uses
 * read/write; a long recv on a socket of long reads is a late recv; while
 * a late recv waits for its read, no reader is idle. Returns idle, or 0. */
__attribute__((noinline)) static int apply_marks(weft_op *op, const weft__fdslot *s, int idle)
{
    int rw = op->opcode == WEFT_OP_RECV || op->opcode == WEFT_OP_SEND;
    if ((s->marks & WEFT__MARK_NOT_SOCKET) && op->flags == 0 && rw)
        op->opflags_ |= WEFT__OPFLAG_READ_WRITE;
    else if ((s->marks & WEFT__MARK_BIG_READS) && op->opcode == WEFT_OP_RECV &&
             op->len >= WEFT__LATE_READ_MIN && op->flags == 0)
        op->opflags_ |= WEFT__OPFLAG_LATE;
    if ((s->marks & WEFT__MARK_LATE_WAITS) && weft__op_is_reader(op))
        return 0;
    return idle;
}

/* ---- the vtable ---- */

static int ur_submit(weft__backend *be, weft_op *op)
{
    weft__uring *u = (weft__uring *)be;
    int rc;
    if (op->opcode == WEFT_OP_CLOSE) {
        /* close() does not cancel requests that hold the file: cancel them
         * first. The close waits for the cancel (a hard link: it runs also
         * when the cancel found nothing, -ENOENT). */
        if ((detach_fd(u, op->fd) && (rc = queue_cancel_fd(u, op->fd, 1)) != 0) ||
            (rc = queue_op(u, op)) != 0)
            return weft__op_refused(be->loop, op, rc);
        u->nops++;
        return 0;
    }
    /* A number that is no fd (a bad caller's INT_MAX, say) fails the op,
     * and grows nothing. */
    if ((rc = weft__fd_table_grow(&u->fds, op->fd)) == -ENOMEM)
        return weft__op_refused(be->loop, op, rc);
    if (rc) {
        weft__op_done(be->loop, op, rc);
        return 0;
    }
    weft__fdslot *s = &u->fds.slots[op->fd];
    weft__list *fifo = weft__fd_fifo(s, op);
    /* Idle: nothing of fd's in that direction is with the kernel. */
    int idle = weft__list_empty(fifo);
    if (__builtin_expect(s->marks != 0, 0))
        idle = apply_marks(op, s, idle);
    if (idle && send_now(u, op, s))
        return 0;
    if (idle && !defer_recv(u, op, s) && (rc = queue_op(u, op)) != 0)
        return weft__op_refused(be->loop, op, rc);
    weft__list_push(fifo, &op->link_);
    u->nops++;
    return 0;
}

static int ur_cancel(weft__backend *be, weft_op *op)
{
    weft__uring *u = (weft__uring *)be;
    if (op->opcode != WEFT_OP_CLOSE && (op->link_.prev || (op->opflags_ & WEFT__OPFLAG_DEFERRED))) {
        /* Waiting behind the head, or held back: the kernel never saw it. */
        if (op->opflags_ & WEFT__OPFLAG_DEFERRED)
            undefer(u, op);
        finish(u, op, -ECANCELED);
        return 0;
    }
    int err = 0;
    struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
    if (!sqe)
        return err;
    /* The cancel's own CQE is ignored: the op completes through its own
     * CQE, with -ECANCELED or its real result (-EALREADY: it is running). */
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    return 0;
}

static int ur_forget_fd(weft__backend *be, int fd)
{
    weft__uring *u = (weft__uring *)be;
    if (!detach_fd(u, fd))
        return 0;
    int rc = queue_cancel_fd(u, fd, 0);
    /* The kernel resolves the fd when the cancel is issued: that must
     * happen before the caller closes it. The heads complete later. */
    return rc ? rc : flush(u);
}

/* Whether the kernel holds completions we only get by entering it. */
static int cq_needs_enter(const weft__uring *u)
{
    return IO_URING_READ_ONCE(*u->ring.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN);
}

/* Submit what is queued and take what the kernel has finished, without
 * blocking; no system call when there is nothing either way. */
static int enter_nowait(weft__uring *u)
{
    if (!io_uring_sq_ready(&u->ring) && !cq_needs_enter(u))
        return 0;
    u->entered = 1;
    return io_uring_submit_and_get_events(&u->ring);
}

/* Submit what is queued and wait for a completion (timeout_ns < 0: no limit). */
static int enter_wait(weft__uring *u, int64_t timeout_ns)
{
    struct __kernel_timespec ts, *tsp = NULL;
    if (timeout_ns > 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    struct io_uring_cqe *cqe;
    u->entered = 1;
    return io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tsp, NULL);
}

static int enter_failed(int rc)
{
    return rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY;
}

static int ur_poll(weft__backend *be, int64_t timeout_ns)
{
    weft__uring *u = (weft__uring *)be;
    int rc = weft__uring_enable(u);
    if (rc)
        return rc;
    if (!u->wake_armed)
        arm_wake(u); /* a failure is retried next time */
    if (WEFT__FAULT(u, -1, WEFT__FS_WAIT, NULL)) {
        reap(u); /* fault injection: a signal before anything was submitted */
        return 0;
    }
    if (++u->poll_gen == 0)
        u->poll_gen = 1; /* 0 is every fd's "never sent at submit" */
    /* Held recvs: this enter must not block (see "deferred recvs"). */
    int held = u->ndeferred != 0;
    rc = timeout_ns == 0 || held ? enter_nowait(u) : enter_wait(u, timeout_ns);
    if (enter_failed(rc))
        return rc;
    unsigned handled = reap(u);
    if (held) {
        release_deferred(u);
        /* Nothing came back: wait as asked, with the recvs in the SQ. */
        if (!handled && timeout_ns != 0) {
            rc = enter_wait(u, timeout_ns);
            if (enter_failed(rc))
                return rc;
            reap(u);
        }
    }
    return 0;
}

static int ur_wake(weft__backend *be)
{
    weft__uring *u = (weft__uring *)be;
    uint64_t one = 1;
    if (write(u->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

/* Cancel everything in flight and reap until nothing is: the kernel must
 * not touch caller memory once the loop is freed. */
static void drain(weft__uring *u)
{
    u->closing = 1;
    release_deferred(u); /* each fails with -ECANCELED */
    for (int fd = 0; fd < u->fds.nslots; fd++) {
        weft__fdslot *s = &u->fds.slots[fd];
        weft__list *fifos[2] = {&s->readers, &s->writers};
        for (int i = 0; i < 2; i++)
            while (fifos[i]->first && fifos[i]->first->next)
                finish(u, weft__container_of(fifos[i]->first->next, weft_op, link_), -ECANCELED);
    }
    weft__uring_multi_drop_paused(u);
    if (!u->entered && u->nops == 0)
        return;
    if (weft__uring_enable(u))
        return;
    while (u->nops || u->wake_armed || u->nmulti) {
        int err = 0;
        struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
        if (!sqe)
            break;
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, UD_IGNORE);
        /* Cancel again now and then, in case a request slipped past this
         * one (queued behind it by a completion, say). */
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
        struct io_uring_cqe *cqe;
        u->entered = 1;
        int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            break;
        reap(u);
    }
}

#if defined(__SANITIZE_THREAD__)
#define URING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define URING_TSAN 1
#endif
#endif

#ifdef URING_TSAN
#include <sanitizer/tsan_interface.h>

/* liburing maps and unmaps the rings with raw system calls (it imports no
 * mmap), which TSan does not see: a ring mapped where another thread's
 * freed ring was inherited that ring's access history, and TSan reported
 * the new loop's first SQE writes as races with the dead loop's (two loops
 * of weft_threads_start, one freed as the other started: no memory was
 * shared). What TSan misses is the kernel's order, munmap before the mmap
 * that reuses the pages: a release on each page at unmap and an acquire on
 * each at map tell it. */
static void tsan_range(void *p, size_t size, int mapped)
{
    for (size_t off = 0; off < size; off += 4096) {
        if (mapped)
            __tsan_acquire((char *)p + off);
        else
            __tsan_release((char *)p + off);
    }
}

static void tsan_rings(struct io_uring *r, int mapped)
{
    tsan_range(r->sq.ring_ptr, r->sq.ring_sz, mapped);
    if (r->cq.ring_ptr != r->sq.ring_ptr)
        tsan_range(r->cq.ring_ptr, r->cq.ring_sz, mapped);
    tsan_range(r->sq.sqes, r->sq.ring_entries * sizeof(struct io_uring_sqe), mapped);
}
#else
static void tsan_rings(struct io_uring *r, int mapped)
{
    (void)r;
    (void)mapped;
}
#endif

/* io_uring_queue_exit, which unmaps the rings. */
static void ring_exit(struct io_uring *r)
{
    tsan_rings(r, 0);
    io_uring_queue_exit(r);
}

static void ur_fini(weft__backend *be)
{
    weft__uring *u = (weft__uring *)be;
    drain(u);
    ring_exit(&u->ring);
    close(u->wakefd);
    weft__fd_table_free(&u->fds);
    weft__uring_multi_fini(u);
}

static int setup_ring(weft__uring *u, unsigned entries)
{
    /* Best first. TASKRUN_FLAG lets poll(0) skip the syscall when the
     * kernel holds no completions for us. */
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_R_DISABLED,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    unsigned cq = entries * 4 < MIN_CQ_ENTRIES ? MIN_CQ_ENTRIES : entries * 4;
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = modes[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        p.cq_entries = cq;
        rc = io_uring_queue_init_params(entries, &u->ring, &p);
        if (rc == 0) {
            tsan_rings(&u->ring, 1);
            u->flags = modes[i];
            u->sq_size = p.sq_entries;
            u->cq_size = p.cq_entries;
            u->enabled = !(modes[i] & IORING_SETUP_R_DISABLED);
            if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_EXT_ARG))
                break;
            return 0;
        }
        if (rc != -EINVAL)
            return rc; /* EINVAL: an unknown flag, try fewer */
    }
    if (rc == 0) {
        ring_exit(&u->ring);
        return WEFT_EUNAVAILABLE; /* older than 5.11 */
    }
    return rc;
}

/* Kernels before 5.19 lack cancel-by-fd, which CLOSE and forget_fd() need;
 * IORING_OP_SOCKET came in the same release. */
static int kernel_ok(weft__uring *u)
{
    if (u->flags & (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN))
        return 1; /* 5.19+ */
    struct io_uring_probe *p = io_uring_get_probe_ring(&u->ring);
    if (!p)
        return 0;
    int ok = io_uring_opcode_supported(p, IORING_OP_SOCKET);
    io_uring_free_probe(p);
    return ok;
}

int weft__uring_env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static int ur_init(weft__backend *be, const weft_loop_opts *opts)
{
    weft__uring *u = (weft__uring *)be;
    u->wakefd = -1;
    u->poll_gen = 1;
    if (weft__uring_env_flag("WEFT_URING_DISABLE"))
        return WEFT_EUNAVAILABLE;
    unsigned entries = opts && opts->ring_entries ? opts->ring_entries : DEFAULT_ENTRIES;
    int rc = setup_ring(u, entries);
    if (rc == -ENOSYS || rc == -EPERM || rc == -EACCES || rc == -EINVAL)
        return WEFT_EUNAVAILABLE;
    if (rc)
        return rc;
    if (!kernel_ok(u)) {
        ring_exit(&u->ring);
        return WEFT_EUNAVAILABLE;
    }
    /* Blocking on purpose: the ring polls it, and a write never blocks in
     * practice (the counter would have to reach 2^64 - 1). */
    u->wakefd = eventfd(0, EFD_CLOEXEC);
    if (u->wakefd < 0) {
        rc = -errno;
        ring_exit(&u->ring);
        return rc;
    }
    rc = arm_wake(u);
    if (rc) {
        close(u->wakefd);
        ring_exit(&u->ring);
    }
    return rc;
}

static int ur_info(const weft__backend *be, char *buf, size_t size)
{
    const weft__uring *u = (const weft__uring *)be;
    const char *mode = (u->flags & IORING_SETUP_DEFER_TASKRUN)
                           ? "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG"
                       : (u->flags & IORING_SETUP_COOP_TASKRUN) ? "COOP_TASKRUN|TASKRUN_FLAG"
                                                                : "no flags";
    const char *bufs = !u->br       ? ""
                       : u->buf_inc ? ", recv buffers packed"
                                    : ", recv buffers whole (no IOU_PBUF_RING_INC)";
    if (!u->br)
        return snprintf(buf, size, "%s, sq %u, cq %u, eventfd wake-up", mode, u->sq_size,
                        u->cq_size);
    return snprintf(buf, size, "%s, sq %u, cq %u, eventfd wake-up%s, ring holds %u of %u", mode,
                    u->sq_size, u->cq_size, bufs, u->ring_goal, u->buf_count);
}

const weft__vtable weft__uring_vtable = {
    .name = "io_uring",
    .kind = WEFT_BACKEND_IO_URING,
    .size = sizeof(weft__uring),
    .init = ur_init,
    .fini = ur_fini,
    .submit = ur_submit,
    .cancel = ur_cancel,
    .forget_fd = ur_forget_fd,
    .poll = ur_poll,
    .late = ur_late,
    .wake = ur_wake,
    .info = ur_info,
    .multi_start = weft__uring_multi_start,
    .multi_cancel = weft__uring_multi_cancel,
    .bufs_setup = weft__uring_bufs_setup,
    .buf_put = weft__uring_buf_put,
};
