/* weft-load: a load client for echo and simple request/response servers.
 * Shared between its files: the configuration, the per-thread worker, and
 * the phase every worker follows (warm-up, measure, stop). */
#ifndef WEFT_LOAD_H
#define WEFT_LOAD_H

#include "weft_load_hist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum wl_mode { WL_ECHO, WL_REQUEST };
enum wl_phase { WL_WARMUP, WL_MEASURE, WL_STOP };

typedef struct wl_config {
    const char *host;
    int port;
    int conns;         /* connections */
    size_t size;       /* echo: bytes per message */
    int depth;         /* requests in flight per connection (pipelining) */
    double duration;   /* seconds measured (when requests == 0) */
    double warmup;     /* seconds of load before measuring */
    uint64_t requests; /* measure this many requests instead of a duration */
    int threads;       /* worker threads, connections spread round-robin */
    int json;          /* one JSON object on stdout instead of text */
    int mode;          /* enum wl_mode */
    char *request;     /* request mode: the bytes of one request */
    size_t request_len;
    char *expect; /* request mode: a marker that occurs once per response... */
    size_t expect_len;
    size_t response_len; /* ...or every response has exactly this length */
    int source_ips;      /* bind connection i to 127.0.0.(1 + i % source_ips); 0: no bind */
    double hold;         /* idle mode: connect, then hold the connections this long */
    const char *label;   /* a name echoed in the report (the server under test) */
    int server_pid;      /* report that process's CPU use over the measurement (Linux /proc) */
    int spin;            /* poll without sleeping (epoll_wait timeout 0): the client's CPU never
                            idles, so its wake-up latency stays out of the numbers */
    int interleave;      /* send right after each read instead of after the whole batch */
    int uring;           /* drive the connections with io_uring instead of epoll */
} wl_config;

/* One connection's state; owned by one worker thread. */
typedef struct wl_conn {
    int fd;
    int dead;
    int want_out;      /* EPOLLOUT registered: only while a send is blocked */
    uint64_t *sent_at; /* ring of send times, depth entries */
    unsigned head;     /* oldest request in flight */
    unsigned inflight;
    size_t rx_partial; /* echo: bytes of the oldest response received so far;
                          request mode with response_len: the same */
    size_t match;      /* request mode with a marker: bytes of it matched */
    size_t tx_pending; /* bytes queued but not yet written (socket was full) */
    size_t tx_off;     /* position in the payload of the next byte to write */
    int flush_queued;  /* on the worker's flush list */
    int sending;       /* io_uring: a send of this connection is in flight */
    char *rx;          /* io_uring: this connection's receive buffer */
} wl_conn;

typedef struct wl_worker {
    const wl_config *cfg;
    _Atomic int *phase;
    pthread_t thread;
    int id;
    int epfd;
    wl_conn *conns;
    int nconns;
    wl_conn **flushq; /* connections with requests to send after this batch */
    int nflush;
    char *payload; /* depth requests back to back */
    size_t payload_len;
    size_t msg_len; /* bytes of one request */
    char *rxbuf;
    size_t rxbuf_len;
    uint64_t quota;              /* requests mode: this worker's share (0: unlimited) */
    uint64_t sent;               /* requests sent while measuring */
    uint64_t done_local;         /* responses completed while measuring */
    _Atomic uint64_t done;       /* the same, published for the progress line */
    uint64_t rx_bytes;           /* bytes received while measuring */
    uint64_t errors;             /* connections lost */
    uint64_t cpu_start, cpu_end; /* thread CPU ns over the measurement */
    uint64_t end_ns;             /* when it finished (requests mode) */
    uint64_t now;                /* when the worker's last wait returned: the arrival time
                                    of every response in that batch (one clock read per
                                    batch; a read costs ~28 ns in this VM) */
    _Atomic int finished;        /* the thread is done (quota met, stopped, or all lost) */
    wl_hist hist;
} wl_worker;

uint64_t wl_now_ns(void);
uint64_t wl_thread_cpu_ns(void);
/* CPU time (user + system) of process pid in ns from /proc, or 0. */
uint64_t wl_process_cpu_ns(int pid);

/* Parse argv into cfg; prints usage and returns -1 on a bad flag, 1 for --help. */
int wl_parse(wl_config *cfg, int argc, char **argv);

/* Open cfg->conns connections (blocking connect, then non-blocking with
 * TCP_NODELAY) into fds[]. Returns 0 or -1 with a message on stderr. */
int wl_connect_all(const wl_config *cfg, int *fds);

/* Prepare a worker for its connections (payload, buffers, epoll). 0 or -1. */
int wl_worker_init(wl_worker *w, const wl_config *cfg, _Atomic int *phase, const int *fds,
                   int nfds);
void wl_worker_free(wl_worker *w);
/* The thread body: epoll, or io_uring (weft_load_uring.c; NULL when
 * weft-load was built without liburing). */
void *wl_worker_run(void *arg);
void *wl_worker_run_uring(void *arg);

/* Shared by both thread bodies (weft_load_worker.c). */
void wl_worker_start(wl_worker *w);              /* queue depth requests per connection */
void wl_worker_begin_measuring(wl_worker *w);    /* the warm-up is over */
void wl_worker_end(wl_worker *w, int measuring); /* publish the results */
void wl_conn_fail(wl_worker *w, wl_conn *c);     /* count a lost connection once */
/* len bytes arrived on c: complete responses, record latencies, queue the
 * replacements on the worker's flush list (or send them at once). */
void wl_conn_received(wl_worker *w, wl_conn *c, const char *buf, size_t len, int measuring,
                      int sending);

#endif
