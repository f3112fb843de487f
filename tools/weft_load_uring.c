/* weft-load: the io_uring worker (--uring). Each connection keeps one
 * receive in flight into its own buffer and at most one send; a loop turn
 * handles every completion, then queues the sends for the connections
 * whose responses came in, and one io_uring_enter submits them and waits
 * for the next completions. Against epoll's one recv + one send system
 * call per request (plus the epoll_wait), that is one system call per
 * batch. The request bookkeeping is weft_load_worker.c's. */
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

/* The worker's ring and how many of its requests are in flight. */
typedef struct {
    wl_worker *w;
    struct io_uring ring;
    unsigned inflight;
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

static void arm_recv(uring_worker *u, wl_conn *c)
{
    wl_worker *w = u->w;
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe) {
        wl_conn_fail(w, c);
        return;
    }
    io_uring_prep_recv(sqe, c->fd, c->rx, w->rxbuf_len, 0);
    io_uring_sqe_set_data(sqe, c);
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
    io_uring_sqe_set_data(sqe, (void *)((uintptr_t)c | SEND_BIT));
    c->sending = 1;
}

static void on_cqe(uring_worker *u, struct io_uring_cqe *cqe, int measuring, int sending)
{
    wl_worker *w = u->w;
    uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
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
    if (res == -EINTR || res == -EAGAIN) {
        arm_recv(u, c);
        return;
    }
    if (res <= 0) {
        wl_conn_fail(w, c);
        return;
    }
    wl_conn_received(w, c, c->rx, (size_t)res, measuring, sending);
    if (!c->dead)
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
            u->inflight--;
            seen++;
        }
        io_uring_cq_advance(&u->ring, seen);
    }
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
    char *rx = rc < 0 ? NULL : malloc((size_t)(w->nconns ? w->nconns : 1) * w->rxbuf_len);
    if (rc < 0 || !rx) {
        fprintf(stderr, "weft-load: io_uring: %s\n", rc < 0 ? strerror(-rc) : "out of memory");
        if (rc >= 0)
            io_uring_queue_exit(&u.ring);
        for (int i = 0; i < w->nconns; i++)
            wl_conn_fail(w, &w->conns[i]);
        wl_worker_end(w, 0);
        return NULL;
    }
    int measuring = 0;
    wl_worker_start(w);
    for (int i = 0; i < w->nconns; i++) {
        wl_conn *c = &w->conns[i];
        c->rx = rx + (size_t)i * w->rxbuf_len;
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
    free(rx);
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
