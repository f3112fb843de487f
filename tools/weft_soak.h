/* weft-soak: a churn client for soak runs (bench/lib/soak.sh). It keeps N
 * connections open, each doing a few requests and then ending (a graceful
 * close, a half-close that waits for the server's end, or a reset, also in
 * the middle of a request), and replaces each one at once, for a duration.
 * Every byte that comes back is verified: an echo server must return each
 * connection's pseudo-random bytes in order; an HTTP server must answer
 * each request with a 200 carrying the expected body. One thread, epoll,
 * no weft (the server is what is under test). */
#ifndef WEFT_SOAK_H
#define WEFT_SOAK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum ws_proto { WS_ECHO, WS_HTTP };

/* How a connection ends, drawn when it opens. */
enum ws_end {
    WS_END_CLOSE,   /* close() after its last response */
    WS_END_EOF,     /* shutdown(SHUT_WR), wait for the server's end, close */
    WS_END_RESET,   /* SO_LINGER 0 + close after its last response: an RST */
    WS_END_MIDRESET /* an RST with its last request half sent / unanswered */
};

enum ws_state { WS_FREE, WS_CONNECTING, WS_REQUEST, WS_THINK, WS_WAIT_EOF };

/* Think times are at most this many ms: the wheel's slots, one per ms. */
#define WS_WHEEL 4096
#define WS_MAX_THINK 4000

typedef struct ws_config {
    const char *host;
    int port;
    int conns;          /* connections kept open */
    int max_requests;   /* requests per connection: 1..this */
    size_t max_size;    /* echo: bytes per request: 1..this */
    double duration;    /* seconds of churn */
    int proto;          /* enum ws_proto */
    const char *body;   /* http: the expected body */
    int pct_reset;      /* percent of connections ending with an RST */
    int pct_midreset;   /* percent ending with an RST mid-request */
    int pct_eof;        /* percent half-closing and waiting for the server */
    int source_ips;     /* spread over 127.0.0.1..N (ephemeral ports) */
    int max_connecting; /* connects in flight at most (the listen backlog) */
    double stall;       /* seconds without progress that count as a stall */
    int think_ms;       /* a pause of 0..this before each later request */
    uint64_t seed;
    int json;
} ws_config;

typedef struct ws_conn {
    int fd;
    int state;        /* enum ws_state */
    int end;          /* enum ws_end */
    uint64_t serial;  /* the connection's number: its bytes derive from it */
    int requests;     /* to do */
    int done;         /* completed */
    size_t len;       /* this request: bytes to send (echo) */
    size_t tx, rx;    /* sent and verified bytes of this request */
    uint64_t last_ns; /* the last progress */
    uint64_t wake_ms; /* thinking: when the next request goes */
    int next;         /* thinking: the next connection in its wheel slot (-1: none) */
    /* http: the response so far (a head, then the body checked as it comes) */
    char head[512];
    size_t head_len;
    size_t body_len, body_rx;
} ws_conn;

typedef struct ws_stats {
    uint64_t opened, finished, requests, bytes;
    uint64_t ends[4];     /* per enum ws_end */
    uint64_t mismatch;    /* a byte or response that was not what was expected */
    uint64_t connect_err; /* a connect that failed */
    uint64_t early_end;   /* the server ended or reset a connection mid-request */
    uint64_t stalled;     /* no progress for cfg.stall seconds */
    uint64_t no_eof;      /* the server did not end after our half-close */
    int first_err;        /* errno of the first failure, for the report */
    char first_what[96];  /* what the first failure was */
} ws_stats;

typedef struct ws_client {
    const ws_config *cfg;
    ws_stats st;
    ws_conn *c;
    int epfd;
    int connecting;
    int stopping;    /* the duration is over: no new connection or request */
    int *free_slots; /* indices of closed connections, to reopen */
    int nfree;
    int wheel[WS_WHEEL]; /* thinking connections by wake_ms % WS_WHEEL */
    uint64_t wheel_ms;   /* the slots before this ms are done */
    char buf[65536];     /* receive buffer, and the bytes of a send */
    uint64_t rng;
    struct sockaddr_storage addr;
    socklen_t addr_len;
} ws_client;

uint64_t ws_now_ns(void);
uint64_t ws_rand(uint64_t *state);

/* Open connection slot c (a new connection). 0, or -1 when the socket
 * could not even be made (counted). */
int ws_conn_open(ws_client *k, ws_conn *c);
/* An epoll event on c. */
void ws_conn_event(ws_client *k, ws_conn *c, uint32_t events);
/* Start the requests of the connections whose pause is over. */
void ws_wheel_run(ws_client *k, uint64_t now_ns);
/* Stalled for the configured time: count it and drop the connection. */
void ws_conn_stall(ws_client *k, ws_conn *c);
/* Record a failure (kind's counter is incremented by the caller). */
void ws_fail(ws_client *k, ws_conn *c, const char *what, int err);

#endif
