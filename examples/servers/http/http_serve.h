/* The http_server on one loop: a weft server (a task per connection, on a
 * buffered stream) answering every request with "Hello, World!", and a 1 s
 * timer keeping the Date header current. Used by http_server's threads
 * (through weft_serve_threads: http_serve_threads_opts) and by the
 * end-to-end test (http_serve_start on one listener).
 */
#ifndef HTTP_SERVE_H
#define HTTP_SERVE_H

#include "http_response.h"
#include "weft.h"
#include "weft/net.h"

/* Hostile and idle peers (nginx's defaults): a connection that has not
 * sent a complete request head header_timeout_ns after it opened or after
 * its previous response, or that sends nothing for idle_timeout_ns between
 * requests (keep-alive), is closed. 0 turns one off. */
#define HTTP_DEFAULT_HEADER_TIMEOUT_NS (60 * 1000000000LL)
#define HTTP_DEFAULT_IDLE_TIMEOUT_NS (75 * 1000000000LL)
/* After an error response (400, 431...): read and discard for at most this
 * long / this much before closing, so the peer sees the response. */
#define HTTP_LINGER_NS (5 * 1000000000LL)
#define HTTP_LINGER_BYTES (1024 * 1024)

typedef struct http_limits {
    int64_t header_timeout_ns;
    int64_t idle_timeout_ns;
} http_limits;

typedef struct http_serve {
    http_limits lim;
    weft_loop *loop;
    weft_server *server;
    weft_handle date_timer;
    http_responses resp;
} http_serve;

/* For weft_serve_threads(..., http_serve_conn, lim, opts, ...) (lim: an
 * http_limits, NULL for the defaults, read during the call): fills
 * opts with the connections' buffer sizes and per-thread hooks that give
 * each thread an http_serve of its own (its responses and Date timer). */
void http_serve_threads_opts(weft_serve_opts *opts);

/* The defaults above. */
http_limits http_limits_default(void);

/* How long a connection may stay silent after accept before it is closed,
 * for weft_server_opts.idle_timeout_ns: the earlier of lim's two timeouts
 * (the first request's head is due within both), 0 when both are off.
 * The weft server waits for the first bytes without a task; the handler's
 * deadlines count from when it starts. */
int64_t http_limits_first_wait(const http_limits *lim);

/* The connection handler; arg is the thread's http_serve. */
int http_serve_conn(weft_stream *s, void *arg);

/* Start serving the listening socket lfd (owned from now on, also on
 * failure) on loop. h must stay valid until http_serve_close returns.
 * 0, or the error of weft_start_server_fd / the timer. */
int http_serve_start(http_serve *h, weft_loop *loop, int lfd);

/* http_serve_start with lim (NULL: the defaults) and at most
 * max_connections live connections (0: the server's default). */
int http_serve_start_limits(http_serve *h, weft_loop *loop, int lfd, const http_limits *lim,
                            size_t max_connections);

/* Task only: stop accepting, give live connections up to grace_ns, close
 * them, and stop the timer. 0 or an error of weft_server_close. */
int http_serve_close(http_serve *h, int64_t grace_ns);

#endif
