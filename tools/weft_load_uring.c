/* weft-load: the io_uring worker (--uring). Each connection keeps one
 * receive armed and at most one send in flight; a loop turn handles every
 * completion, then queues the sends for the connections whose responses
 * came in, and one io_uring_enter submits them and waits for the next
 * completions. Against epoll's one recv + one send system call per request
 * (plus the epoll_wait), that is one system call per batch.
 *
 * Where the kernel has them (6.0+), the connections are registered files
 * and the receive is multishot into a ring of provided buffers: it stays
 * armed across responses, so a request costs one send SQE and nothing
 * else. Older kernels get one recv per response, into a buffer per
 * connection. The request bookkeeping is weft_load_worker.c's. */
#include "weft_load.h"

#ifdef WL_HAVE_URING

#include <liburing.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* user_data: the connection's address, low bit set for a send; 0 for a
 * cancel request. */
#define SEND_BIT 1u

#define BUF_GROUP 0
#define BUF_SIZE 16384u
#define MAX_BUFS 4096u

/* The worker's ring and how many of its requests are in flight (a
 * multishot receive counts once, until its last completion). */
typedef struct {
    wl_worker *w;
    struct io_uring ring;
    unsigned inflight;
    int fixed;                    /* connection i is registered file i */
    struct io_uring_buf_ring *br; /* multishot: the provided buffers' ring, or NULL */
    char *bufs;                   /* multishot: nbufs buffers of BUF_SIZE */
    unsigned nbufs;
    char *rx; /* single-shot: rxbuf_len bytes per connection */
} uring_worker;

static struct io_uring_sqe *get_sqe(uring_worker *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) { /* full: hand the queued ones to the kernel first */
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    if (sqe)
        u->inflight++;
    return sqe;
}

/* Point sqe at c's socket: its registered index, or its fd. */
static void set_file(uring_worker *u, struct io_uring_sqe *sqe, wl_conn *c)
{
    if (u->fixed) {
        sqe->fd = (int)(c - u->w->conns);
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

static void arm_recv(uring_worker *u, wl_conn *c)
{
    wl_worker *w = u->w;
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe) {
        wl_conn_fail(w, c);
        return;
    }
    if (u->br) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BUF_GROUP;
    } else {
        /* The response is not there yet: wait for it before trying. */
        io_uring_prep_recv(sqe, c->fd, c->rx, w->rxbuf_len, 0);
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    }
    set_file(u, sqe, c);
    io_uring_sqe_set_data(sqe, c);
}

/* Give provided buffer bid back to the kernel. */
static void recycle(uring_worker *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(u->nbufs), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

/* Send what is queued, from the payload ring, unless a send is in flight. */
static void start_send(uring_worker *u, wl_conn *c)
{
    wl_worker *w = u->w;
    if (c->sending || c->dead || c->tx_pending == 0)
        return;
    size_t n = c->tx_pending;
    if (c->tx_off + n > w->payload_len)
        n = w->payload_len - c->tx_off;
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe) {
        wl_conn_fail(w, c);
        return;
    }
    io_uring_prep_send(sqe, c->fd, w->payload + c->tx_off, n, MSG_NOSIGNAL);
    set_file(u, sqe, c);
    io_uring_sqe_set_data(sqe, (void *)((uintptr_t)c | SEND_BIT));
    c->sending = 1;
}

static void on_cqe(uring_worker *u, struct io_uring_cqe *cqe, int measuring, int sending)
{
    wl_worker *w = u->w;
    uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more)
        u->inflight--;
    if (ud == 0)
        return; /* the cancel request itself */
    wl_conn *c = (wl_conn *)(ud & ~(uintptr_t)SEND_BIT);
    int res = cqe->res;
    if (ud & SEND_BIT) {
        c->sending = 0;
        if (res < 0 && res != -EINTR && res != -EAGAIN) {
            wl_conn_fail(w, c);
            return;
        }
        if (res > 0) {
            c->tx_pending -= (size_t)res;
            c->tx_off = (c->tx_off + (size_t)res) % w->payload_len;
        }
        start_send(u, c);
        return;
    }
    if (res > 0) {
        const char *data = c->rx;
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (u->br)
            data = u->bufs + (size_t)bid * BUF_SIZE;
        if (!c->dead)
            wl_conn_received(w, c, data, (size_t)res, measuring, sending);
        if (u->br)
            recycle(u, bid);
    } else if (res != -EINTR && res != -EAGAIN && res != -ENOBUFS) {
        wl_conn_fail(w, c); /* EOF or an error: the receive has ended */
        return;
    }
    /* A multishot receive ends when the buffers ran out (-ENOBUFS) or
     * the kernel chose to stop it; single-shot ones end every time. */
    if (!more && !c->dead)
        arm_recv(u, c);
}

/* Cancel everything in flight and wait until the kernel gave it all back:
 * the receives point into buffers about to be freed. */
static void drain(uring_worker *u)
{
    struct io_uring_sqe *sqe = get_sqe(u);
    if (sqe) {
        io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data(sqe, NULL);
    }
    uint64_t give_up = wl_now_ns() + 2000000000u;
    while (u->inflight > 0 && wl_now_ns() < give_up) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
        io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            if (!(cqe->flags & IORING_CQE_F_MORE))
                u->inflight--;
            seen++;
        }
        io_uring_cq_advance(&u->ring, seen);
    }
}

/* Multishot receives into provided buffers (kernel 6.0+), else one recv
 * at a time into a buffer per connection. WEFT_LOAD_SINGLESHOT=1 forces the
 * latter, so the tests cover it on new kernels too. Returns 0 or -1 (no
 * memory). */
static int setup_buffers(uring_worker *u)
{
    wl_worker *w = u->w;
    const char *single = getenv("WEFT_LOAD_SINGLESHOT");
    if (single && *single == '1')
        goto single_shot;
    unsigned want = (unsigned)w->nconns * (unsigned)w->cfg->depth * 2u;
    u->nbufs = 64;
    while (u->nbufs < want && u->nbufs < MAX_BUFS)
        u->nbufs *= 2;
    void *ring_mem = NULL;
    if (posix_memalign(&ring_mem, 4096, u->nbufs * sizeof(struct io_uring_buf)) == 0) {
        u->bufs = malloc((size_t)u->nbufs * BUF_SIZE);
        struct io_uring_buf_reg reg = {
            .ring_addr = (uintptr_t)ring_mem, .ring_entries = u->nbufs, .bgid = BUF_GROUP};
        if (u->bufs && io_uring_register_buf_ring(&u->ring, &reg, 0) == 0) {
            u->br = ring_mem;
            io_uring_buf_ring_init(u->br);
            for (unsigned i = 0; i < u->nbufs; i++)
                recycle(u, i);
            return 0;
        }
        free(u->bufs);
        u->bufs = NULL;
        free(ring_mem);
    }
single_shot:
    u->rx = malloc((size_t)(w->nconns ? w->nconns : 1) * w->rxbuf_len);
    return u->rx ? 0 : -1;
}

/* Register the connections' fds so each operation skips the fd lookup. */
static void register_files(uring_worker *u)
{
    wl_worker *w = u->w;
    int *fds = malloc((size_t)(w->nconns ? w->nconns : 1) * sizeof(int));
    if (!fds)
        return;
    for (int i = 0; i < w->nconns; i++)
        fds[i] = w->conns[i].fd;
    u->fixed = w->nconns > 0 && io_uring_register_files(&u->ring, fds, (unsigned)w->nconns) == 0;
    free(fds);
}

void *wl_worker_run_uring(void *arg)
{
    uring_worker u = {.w = arg};
    wl_worker *w = u.w;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    unsigned entries = (unsigned)(2 * w->nconns + 64);
    int rc = io_uring_queue_init_params(entries, &u.ring, &p);
    if (rc < 0) { /* an older kernel: without the flags */
        p = (struct io_uring_params){0};
        rc = io_uring_queue_init_params(entries, &u.ring, &p);
    }
    if (rc < 0 || setup_buffers(&u) < 0) {
        fprintf(stderr, "weft-load: io_uring: %s\n", rc < 0 ? strerror(-rc) : "out of memory");
        if (rc >= 0)
            io_uring_queue_exit(&u.ring);
        for (int i = 0; i < w->nconns; i++)
            wl_conn_fail(w, &w->conns[i]);
        wl_worker_end(w, 0);
        return NULL;
    }
    register_files(&u);
    int measuring = 0;
    wl_worker_start(w);
    for (int i = 0; i < w->nconns; i++) {
        wl_conn *c = &w->conns[i];
        c->rx = u.rx ? u.rx + (size_t)i * w->rxbuf_len : NULL;
        arm_recv(&u, c);
        start_send(&u, c);
    }
    for (;;) {
        int phase = atomic_load_explicit(w->phase, memory_order_relaxed);
        if (phase == WL_STOP)
            break;
        if (phase == WL_MEASURE && !measuring) {
            measuring = 1;
            wl_worker_begin_measuring(w);
        }
        if (w->errors == (uint64_t)w->nconns)
            break;
        int sending = !(measuring && w->quota && w->sent >= w->quota);
        if (!sending && w->done_local >= w->quota)
            break;
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = w->cfg->spin ? 0 : 50000000};
        rc = io_uring_submit_and_wait_timeout(&u.ring, &cqe, 1, &ts, NULL);
        w->now = wl_now_ns();
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
            fprintf(stderr, "weft-load: io_uring_enter: %s\n", strerror(-rc));
            break;
        }
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&u.ring, head, cqe)
        {
            on_cqe(&u, cqe, measuring, sending);
            seen++;
        }
        io_uring_cq_advance(&u.ring, seen);
        for (int i = 0; i < w->nflush; i++) {
            wl_conn *c = w->flushq[i];
            c->flush_queued = 0;
            start_send(&u, c);
        }
        w->nflush = 0;
        atomic_store_explicit(&w->done, w->done_local, memory_order_relaxed);
    }
    drain(&u);
    io_uring_queue_exit(&u.ring);
    free(u.rx);
    free(u.bufs);
    free(u.br);
    wl_worker_end(w, measuring);
    return NULL;
}

#else

void *wl_worker_run_uring(void *arg)
{
    (void)arg;
    return NULL;
}

#endif
