/* weft-load: one worker thread driving its connections with edge-triggered
 * epoll. Each connection keeps `depth` requests in flight; a response
 * completes the oldest one (echo and pipelined protocols answer in order),
 * records its latency and queues the next request. The queued requests go
 * out after every ready connection was read (as wrk and redis-benchmark
 * do): the server then wakes once for the whole burst instead of once for
 * its first few requests (bench/RESULTS.md, "load client"). */
#include "weft_load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint64_t wl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t wl_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t wl_process_cpu_ns(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* utime and stime are fields 14 and 15, counted after the ")" that
     * ends the command name (which may hold spaces). */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    return (ut + st) * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
}

int wl_worker_init(wl_worker *w, const wl_config *cfg, _Atomic int *phase, const int *fds, int nfds)
{
    w->cfg = cfg;
    w->phase = phase;
    w->nconns = nfds;
    w->msg_len = cfg->mode == WL_ECHO ? cfg->size : cfg->request_len;
    w->payload_len = w->msg_len * (size_t)cfg->depth;
    w->payload = malloc(w->payload_len);
    w->rxbuf_len = w->payload_len > 65536 ? w->payload_len : 65536;
    w->rxbuf = malloc(w->rxbuf_len);
    w->conns = calloc((size_t)(nfds ? nfds : 1), sizeof *w->conns);
    w->flushq = calloc((size_t)(nfds ? nfds : 1), sizeof *w->flushq);
    uint64_t *stamps = calloc((size_t)(nfds ? nfds : 1) * (size_t)cfg->depth, sizeof *stamps);
    if (!w->payload || !w->rxbuf || !w->conns || !w->flushq || !stamps) {
        fprintf(stderr, "weft-load: out of memory\n");
        free(stamps);
        return -1;
    }
    if (cfg->mode == WL_ECHO) {
        for (size_t i = 0; i < w->payload_len; i++)
            w->payload[i] = (char)('a' + i % 26);
    } else {
        for (int i = 0; i < cfg->depth; i++)
            memcpy(w->payload + (size_t)i * w->msg_len, cfg->request, w->msg_len);
    }
    if (cfg->uring) { /* weft_load_uring.c sets up its ring in its thread */
        w->epfd = -1;
        for (int i = 0; i < nfds; i++) {
            w->conns[i].fd = fds[i];
            w->conns[i].sent_at = stamps + (size_t)i * (size_t)cfg->depth;
        }
        wl_hist_reset(&w->hist);
        return 0;
    }
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        perror("weft-load: epoll_create1");
        free(stamps);
        return -1;
    }
    for (int i = 0; i < nfds; i++) {
        wl_conn *c = &w->conns[i];
        c->fd = fds[i];
        c->sent_at = stamps + (size_t)i * (size_t)cfg->depth;
        /* Write interest only while a send waits for room (conn_interest):
         * with it always on, every ACK that frees send space would wake
         * the loop and make the kernel do that work too. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            perror("weft-load: epoll_ctl");
            return -1;
        }
    }
    wl_hist_reset(&w->hist);
    return 0;
}

void wl_worker_free(wl_worker *w)
{
    if (w->conns && w->nconns)
        free(w->conns[0].sent_at);
    free(w->conns);
    free(w->flushq);
    free(w->payload);
    free(w->rxbuf);
    if (w->epfd > 0)
        close(w->epfd);
}

void wl_conn_fail(wl_worker *w, wl_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    w->errors++;
    if (w->epfd >= 0)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

/* Turn write interest on or off. */
static void conn_interest(wl_worker *w, wl_conn *c, int out)
{
    if (c->want_out == out)
        return;
    c->want_out = out;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (out ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        wl_conn_fail(w, c);
}

/* Write what is queued; at a full socket, wait for EPOLLOUT to resume. */
static void conn_flush(wl_worker *w, wl_conn *c)
{
    while (c->tx_pending > 0) {
        size_t n = c->tx_pending;
        if (c->tx_off + n > w->payload_len)
            n = w->payload_len - c->tx_off;
        ssize_t r = send(c->fd, w->payload + c->tx_off, n, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                wl_conn_fail(w, c);
            else
                conn_interest(w, c, 1);
            return;
        }
        c->tx_pending -= (size_t)r;
        c->tx_off = (c->tx_off + (size_t)r) % w->payload_len;
    }
    if (c->want_out)
        conn_interest(w, c, 0);
}

/* Queue up to n new requests stamped `now`, within the quota. */
static void conn_queue(wl_worker *w, wl_conn *c, unsigned n, uint64_t now, int measuring)
{
    if (w->quota && measuring) {
        uint64_t left = w->quota > w->sent ? w->quota - w->sent : 0;
        if (n > left)
            n = (unsigned)left;
    }
    unsigned depth = (unsigned)w->cfg->depth;
    for (unsigned i = 0; i < n; i++)
        c->sent_at[(c->head + c->inflight + i) % depth] = now;
    c->inflight += n;
    if (measuring)
        w->sent += n;
    c->tx_pending += (size_t)n * w->msg_len;
}

/* How many responses the bytes in buf complete, advancing c's parse state. */
static unsigned count_responses(const wl_worker *w, wl_conn *c, const char *buf, size_t len)
{
    const wl_config *cfg = w->cfg;
    if (cfg->mode == WL_ECHO || cfg->response_len) {
        size_t unit = cfg->mode == WL_ECHO ? cfg->size : cfg->response_len;
        size_t total = c->rx_partial + len;
        c->rx_partial = total % unit;
        return (unsigned)(total / unit);
    }
    /* A marker that occurs once per response; markers of a few bytes, so a
     * restart from scratch on a mismatch is fine (no self-overlap needed for
     * "+PONG\r\n", "HTTP/1.1 200", ...). */
    unsigned n = 0;
    const char *m = cfg->expect;
    size_t ml = cfg->expect_len, k = c->match;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == m[k]) {
            if (++k == ml) {
                n++;
                k = 0;
            }
        } else {
            k = buf[i] == m[0];
        }
    }
    c->match = k;
    return n;
}

void wl_conn_received(wl_worker *w, wl_conn *c, const char *buf, size_t len, int measuring,
                      int sending)
{
    unsigned depth = (unsigned)w->cfg->depth;
    unsigned n = count_responses(w, c, buf, len);
    if (n > c->inflight)
        n = c->inflight; /* a peer answering more than asked */
    uint64_t now = w->now;
    if (measuring) {
        unsigned counted = n;
        if (w->quota && w->done_local + counted > w->quota)
            counted = (unsigned)(w->quota - w->done_local);
        for (unsigned i = 0; i < counted; i++)
            wl_hist_add(&w->hist, now - c->sent_at[(c->head + i) % depth], 1);
        w->done_local += counted;
        w->rx_bytes += (uint64_t)len;
    }
    c->head = (c->head + n) % depth;
    c->inflight -= n;
    if (sending && n) {
        conn_queue(w, c, n, now, measuring);
        if (w->cfg->interleave && w->epfd >= 0) {
            conn_flush(w, c);
        } else if (!c->flush_queued) {
            c->flush_queued = 1;
            w->flushq[w->nflush++] = c;
        }
    }
}

/* Read everything the socket has, complete responses, queue replacements. */
static void conn_readable(wl_worker *w, wl_conn *c, int measuring, int sending)
{
    for (;;) {
        ssize_t r = recv(c->fd, w->rxbuf, w->rxbuf_len, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                wl_conn_fail(w, c);
            return;
        }
        if (r == 0) {
            wl_conn_fail(w, c);
            return;
        }
        if (w->cfg->interleave) /* its replacement leaves now, not at the batch's end */
            w->now = wl_now_ns();
        wl_conn_received(w, c, w->rxbuf, (size_t)r, measuring, sending);
        /* A short read drained the socket: the next arrival is a new edge. */
        if ((size_t)r < w->rxbuf_len)
            return;
    }
}

/* The start of every run, and the measuring switch: shared by both workers. */
void wl_worker_start(wl_worker *w)
{
    uint64_t now = wl_now_ns();
    for (int i = 0; i < w->nconns; i++)
        conn_queue(w, &w->conns[i], (unsigned)w->cfg->depth, now, 0);
}

void wl_worker_begin_measuring(wl_worker *w)
{
    w->cpu_start = wl_thread_cpu_ns();
    /* Requests already in flight are answered while measuring: they count
     * against the quota (-n), or it would overshoot. */
    for (int i = 0; i < w->nconns; i++)
        w->sent += w->conns[i].inflight;
}

void wl_worker_end(wl_worker *w, int measuring)
{
    w->cpu_end = wl_thread_cpu_ns();
    if (!measuring)
        w->cpu_start = w->cpu_end;
    w->end_ns = wl_now_ns();
    atomic_store_explicit(&w->done, w->done_local, memory_order_relaxed);
    atomic_store(&w->finished, 1);
}

void *wl_worker_run(void *arg)
{
    wl_worker *w = arg;
    struct epoll_event evs[256];
    int phase = atomic_load(w->phase);
    int measuring = 0;
    wl_worker_start(w);
    for (int i = 0; i < w->nconns; i++)
        conn_flush(w, &w->conns[i]);
    for (;;) {
        phase = atomic_load_explicit(w->phase, memory_order_relaxed);
        if (phase == WL_STOP)
            break;
        if (phase == WL_MEASURE && !measuring) {
            measuring = 1;
            wl_worker_begin_measuring(w);
        }
        if (w->errors == (uint64_t)w->nconns)
            break; /* every connection lost: nothing left to measure */
        int sending = !(measuring && w->quota && w->sent >= w->quota);
        if (!sending && w->done_local >= w->quota)
            break;
        int n = epoll_wait(w->epfd, evs, 256, w->cfg->spin ? 0 : 50);
        w->now = wl_now_ns();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("weft-load: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            wl_conn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
                conn_readable(w, c, measuring, sending);
            if (!c->dead && (evs[i].events & EPOLLOUT) && c->tx_pending)
                conn_flush(w, c);
        }
        for (int i = 0; i < w->nflush; i++) {
            wl_conn *c = w->flushq[i];
            c->flush_queued = 0;
            if (!c->dead)
                conn_flush(w, c);
        }
        w->nflush = 0;
        atomic_store_explicit(&w->done, w->done_local, memory_order_relaxed);
    }
    wl_worker_end(w, measuring);
    return NULL;
}
