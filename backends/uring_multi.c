/* io_uring backend: multishot accept and recv (weft/multi.h) and the
 * provided-buffer ring multishot recv reads into. A multishot request is one
 * SQE whose user_data is the weft_multi's address tagged UD_MULTI; it is in
 * no per-fd FIFO. A recv that runs out of buffers (-ENOBUFS) pauses on
 * `starved` until a buffer is released. Results are reaped in poll() and
 * posted (weft__multi_post): their callbacks run in the loop's callback
 * phase, and a chunk is the caller's from its callback until released.
 * Where the kernel has incremental consumption (IOU_PBUF_RING_INC, 6.12) it
 * packs recvs into a buffer one after another; a buffer goes back once the
 * kernel has filled it and every chunk of it is released. Only ring_goal
 * buffers are in the ring at a time, the rest wait on a stack, the last
 * freed on top: recvs keep going to recently used memory (bench/RESULTS.md,
 * "the ring's working set"). */
#include "uring_internal.h"
#include "sys/bigbuf.h"
#include "sys/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
    M_IDLE = 0,
    M_ARMED,
    M_PAUSED,
    M_STOPPING, /* a NOP stands in for a paused recv */
    M_ENDING,   /* the last result is posted, not delivered yet */
};
#define BGID 0
/* Buffers in the ring at first; the goal doubles (at most once per poll)
 * when a recv finds the ring empty while some were held back. */
#define RING_GOAL_START 16

/* Kernel 6.12's incremental consumption, newer than liburing 2.3's headers. */
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif

static int queue_multi(weft__uring *u, weft_multi *m)
{
    int err = 0;
    struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
    if (!sqe)
        return err;
    if (m->kind_ == WEFT__MULTI_ACCEPT && m->single_) {
        io_uring_prep_accept(sqe, m->fd_, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else if (m->kind_ == WEFT__MULTI_ACCEPT) {
        io_uring_prep_multishot_accept(sqe, m->fd_, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else if (WEFT__FAULT(NULL, m->fd_, WEFT__FS_MULTI, NULL)) {
        /* Fault injection: the kernel found no buffer (the NOP's
         * completion is turned into -ENOBUFS below). */
        io_uring_prep_nop(sqe);
        m->op_.opflags_ |= WEFT__OPFLAG_FAULT;
    } else {
        io_uring_prep_recv_multishot(sqe, m->fd_, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)m | UD_MULTI);
    m->state_ = M_ARMED;
    u->nmulti++;
    return 0;
}

/* Move spare buffers into the ring, the most recently freed (the ones
 * most likely still in the cache) first, until it holds ring_goal. */
static void ring_top_up(weft__uring *u)
{
    int added = 0;
    while (u->ring_bufs < u->ring_goal && u->nspare) {
        unsigned bid = u->buf_spare[--u->nspare];
        io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * u->buf_size, u->buf_size,
                              (unsigned short)bid, io_uring_buf_ring_mask(u->buf_count), added);
        added++;
        u->ring_bufs++;
    }
    if (added)
        io_uring_buf_ring_advance(u->br, added);
}

/* Buffer bid is whole again: on top of the spares, and into the ring if
 * the ring is short of its goal. */
static void buf_recycle(weft__uring *u, unsigned bid)
{
    u->buf_state[bid].off = 0;
    u->buf_spare[u->nspare++] = (uint16_t)bid;
    ring_top_up(u);
}

/* A recv found the ring empty while buffers were held back: keep twice as
 * many in it from now on (once per poll: a burst runs many recvs dry at
 * once), then fill it. */
static void ring_goal_grow(weft__uring *u)
{
    if (u->goal_gen != u->poll_gen && u->ring_goal < u->buf_count) {
        u->goal_gen = u->poll_gen;
        u->ring_goal = u->ring_goal * 2 < u->buf_count ? u->ring_goal * 2 : u->buf_count;
    }
    ring_top_up(u);
}

/* The kernel put res bytes into buffer bid: the chunk's start, or NULL when
 * nobody gets it (nothing in it, or the loop is closing). */
static void *buf_filled(weft__uring *u, unsigned bid, int res)
{
    struct weft__ubuf *b = &u->buf_state[bid];
    char *at = u->bufs + (size_t)bid * u->buf_size + b->off;
    /* Incremental: the kernel took res bytes (none for an error or end of
     * stream). Otherwise the whole buffer, whatever came. */
    if (!u->buf_inc)
        b->off = u->buf_size;
    else if (res > 0)
        b->off += (uint32_t)res;
    int give = res > 0 && !u->closing;
    b->refs += (uint32_t)give;
    if (b->off == u->buf_size) { /* out of the ring */
        u->ring_bufs--;
        if (b->refs)
            ring_top_up(u); /* it is back when its chunks are */
        else
            buf_recycle(u, bid);
    }
    return give ? at : NULL;
}

/* A paused recv is stopped through the ring, so its last callback comes
 * from poll() like every other: a NOP carries it. */
void weft__uring_multi_stop_paused(weft__uring *u, weft_multi *m)
{
    weft__list_remove(&u->starved, &m->link_);
    m->cancel_ = 1;
    int err = 0;
    struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
    if (!sqe) {
        m->state_ = M_ENDING;
        weft__multi_post(u->base.loop, m, err, NULL, 0);
        return;
    }
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)m | UD_MULTI);
    m->state_ = M_STOPPING;
    u->nmulti++;
}

void weft__uring_multi_cqe(weft__uring *u, weft_multi *m, int res, unsigned flags)
{
#if WEFT_FAULT_INJECTION
    if (m->op_.opflags_ & WEFT__OPFLAG_FAULT) {
        m->op_.opflags_ &= (uint8_t)~WEFT__OPFLAG_FAULT; /* unused by io_uring otherwise */
        res = -ENOBUFS;
        flags = 0;
    }
#endif
    int more = (flags & IORING_CQE_F_MORE) != 0;
#if WEFT_FAULT_INJECTION
    /* The kernel stops a multishot request on CQ overflow: simulated by
     * cancelling it (after this result is posted: queueing may reap the
     * request's next results); its final -ECANCELED counts as that stop. */
    int stop = more && !m->op_.pad_ && !m->cancel_ && !u->closing &&
               WEFT__FAULT(NULL, m->fd_, WEFT__FS_MULTI_STOP, NULL);
    if (!more && m->op_.pad_) {
        m->op_.pad_ = 0;
        if (res == -ECANCELED && !m->cancel_ && !u->closing && m->state_ == M_ARMED) {
            u->nmulti--;
            int rc = queue_multi(u, m);
            if (rc == 0)
                return; /* nothing to report: the request goes on */
            m->state_ = M_ENDING;
            weft__multi_post(u->base.loop, m, rc, NULL, 0);
            return;
        }
    }
#endif
    void *buf = NULL;
    if (flags & IORING_CQE_F_BUFFER)
        buf = buf_filled(u, flags >> IORING_CQE_BUFFER_SHIFT, res);
    if (!more) {
        u->nmulti--;
        if (m->state_ == M_STOPPING)
            res = -ECANCELED;
        m->state_ = M_ENDING;
    }
    if (u->closing) {
        if (!more)
            m->state_ = M_IDLE;
        if (m->kind_ == WEFT__MULTI_ACCEPT && res >= 0)
            close(res); /* nobody will take it */
        return;
    }
    if (m->kind_ == WEFT__MULTI_ACCEPT && res >= 0 && res < u->fds.nslots)
        u->fds.slots[res].marks &= WEFT__MARK_LATE_WAITS; /* a reused number */
    if (!more && !m->cancel_) {
        /* The kernel ended the request but the caller did not: carry on. */
        int again = 0;
        if (m->kind_ == WEFT__MULTI_ACCEPT && res == -EINVAL && !m->single_) {
            m->single_ = 1; /* no multishot accept before 5.19 */
            if (queue_multi(u, m) == 0)
                return;
        } else if (m->kind_ == WEFT__MULTI_RECV && res == -ENOBUFS) {
            /* Out of buffers: go on at once if some were held back or
             * came back since the kernel looked, else pause until one
             * comes back. */
            ring_goal_grow(u);
            if (u->ring_bufs && queue_multi(u, m) == 0)
                return;
            if (!u->ring_bufs) {
                m->state_ = M_PAUSED;
                weft__list_push(&u->starved, &m->link_);
                return;
            }
        } else if (res > 0 || (res == 0 && m->kind_ == WEFT__MULTI_ACCEPT)) {
            again = 1; /* single-shot accepts, or the kernel stopped it (CQ overflow) */
        }
        if (again && queue_multi(u, m) == 0)
            more = 1;
    }
    /* Delivered from the callback phase, not from inside poll(). */
    weft__multi_post(u->base.loop, m, res, buf, more);
#if WEFT_FAULT_INJECTION
    if (stop) {
        int err = 0;
        struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
        if (sqe) {
            io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)m | UD_MULTI, 0);
            io_uring_sqe_set_data64(sqe, UD_IGNORE);
            m->op_.pad_ = 1;
        }
    }
#endif
}

int weft__uring_multi_start(weft__backend *be, weft_multi *m)
{
    weft__uring *u = (weft__uring *)be;
    if (m->kind_ == WEFT__MULTI_RECV && !u->br)
        return -ENOBUFS;
    return queue_multi(u, m);
}

int weft__uring_multi_cancel(weft__backend *be, weft_multi *m)
{
    weft__uring *u = (weft__uring *)be;
    if (m->state_ == M_ENDING)
        return -EALREADY; /* ended; its last callback is on its way */
    if (m->state_ == M_PAUSED) {
        weft__uring_multi_stop_paused(u, m);
        return 0;
    }
    int err = 0;
    struct io_uring_sqe *sqe = weft__uring_get_sqe(u, &err);
    if (!sqe)
        return err;
    m->cancel_ = 1;
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)m | UD_MULTI, 0);
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    return 0;
}

/* Register the ring at br, with incremental consumption where the kernel
 * has it (older kernels refuse the flag: -EINVAL). WEFT_URING_BUFS_WHOLE=1
 * does without, as those kernels do (the tests reach that path with it).
 * 0 or a negative error. */
static int register_ring(weft__uring *u, void *br, unsigned count)
{
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = count;
    reg.bgid = BGID;
    int inc = !weft__uring_env_flag("WEFT_URING_BUFS_WHOLE");
    for (;;) {
#if WEFT_URING_BUF_REG_FLAGS
        reg.flags = inc ? IOU_PBUF_RING_INC : 0;
#else
        reg.pad = inc ? IOU_PBUF_RING_INC : 0;
#endif
        int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
        if (rc == -EINVAL && inc) {
            inc = 0;
            continue;
        }
        u->buf_inc = rc == 0 && inc;
        return rc;
    }
}

/* liburing 2.3 has no io_uring_setup_buf_ring(): map, register and fill
 * the ring by hand. */
int weft__uring_bufs_setup(weft__backend *be, unsigned count, unsigned size)
{
    weft__uring *u = (weft__uring *)be;
    if (u->br)
        return -EBUSY;
    int rc = weft__uring_enable(u);
    if (rc)
        return rc;
    size_t bytes = (size_t)count * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED)
        return -errno;
    char *bufs = weft__pool_pages_map((size_t)count * size);
    struct weft__ubuf *state = calloc(count, sizeof *state);
    uint16_t *spare = malloc(count * sizeof *spare);
    rc = bufs && state && spare ? register_ring(u, br, count) : -ENOMEM;
    if (rc) {
        weft__pool_pages_unmap(bufs, (size_t)count * size);
        free(state);
        free(spare);
        munmap(br, bytes);
        return rc;
    }
    u->br = br;
    u->br_bytes = bytes;
    u->bufs = bufs;
    u->buf_state = state;
    u->buf_count = count;
    u->buf_size = size;
    u->buf_spare = spare;
    u->ring_goal = count < RING_GOAL_START ? count : RING_GOAL_START;
    io_uring_buf_ring_init(u->br);
    /* All spare, buffer 0 on top; the ring takes its first ring_goal. */
    for (unsigned i = 0; i < count; i++)
        spare[i] = (uint16_t)(count - 1 - i);
    u->nspare = count;
    ring_top_up(u);
    return 0;
}

/* A chunk came back (a pointer into it): once its buffer is done with, the
 * buffer goes back into the ring and the recvs that ran dry resume. */
void weft__uring_buf_put(weft__backend *be, void *buf)
{
    weft__uring *u = (weft__uring *)be;
    if (!u->bufs || (char *)buf < u->bufs ||
        (char *)buf >= u->bufs + (size_t)u->buf_count * u->buf_size)
        return; /* not a loop buffer */
    unsigned bid = (unsigned)(((char *)buf - u->bufs) / u->buf_size);
    struct weft__ubuf *b = &u->buf_state[bid];
    if (!b->refs || --b->refs || b->off != u->buf_size)
        return; /* given back twice, more of it out, or the kernel still fills it */
    buf_recycle(u, bid);
    /* Resume the recvs that ran dry. */
    weft__link *n;
    while ((n = weft__list_pop(&u->starved)) != NULL) {
        weft_multi *m = weft__container_of(n, weft_multi, link_);
        int rc = queue_multi(u, m);
        if (rc) {
            m->state_ = M_ENDING;
            weft__multi_post(u->base.loop, m, rc, NULL, 0);
        }
    }
}

void weft__uring_multi_drop_paused(weft__uring *u)
{
    /* Nothing ever reached the kernel: no request can be in flight. */
    while (u->starved.first) {
        weft_multi *m = weft__container_of(weft__list_pop(&u->starved), weft_multi, link_);
        m->state_ = 0;
    }
}

void weft__uring_multi_fini(weft__uring *u)
{
    if (u->br)
        munmap(u->br, u->br_bytes);
    weft__pool_pages_unmap(u->bufs, (size_t)u->buf_count * u->buf_size);
    free(u->buf_state);
    free(u->buf_spare);
}
