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

typedef struct http_serve {
    weft_loop *loop;
    weft_server *server;
    weft_handle date_timer;
    http_responses resp;
} http_serve;

/* For weft_serve_threads(..., http_serve_conn, NULL, opts, ...): fills
 * opts with the connections' buffer sizes and per-thread hooks that give
 * each thread an http_serve of its own (its responses and Date timer). */
void http_serve_threads_opts(weft_serve_opts *opts);

/* The connection handler; arg is the thread's http_serve. */
int http_serve_conn(weft_stream *s, void *arg);

/* Start serving the listening socket lfd (owned from now on, also on
 * failure) on loop. h must stay valid until http_serve_close returns.
 * 0, or the error of weft_start_server_fd / the timer. */
int http_serve_start(http_serve *h, weft_loop *loop, int lfd);

/* Task only: stop accepting, give live connections up to grace_ns, close
 * them, and stop the timer. 0 or an error of weft_server_close. */
int http_serve_close(http_serve *h, int64_t grace_ns);

#endif
