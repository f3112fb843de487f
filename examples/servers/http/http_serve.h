/* The http_server on one loop: a weft server (a task per connection, on a
 * buffered stream) answering every request with "Hello, World!", and a 1 s
 * timer keeping the Date header current. Used by http_server's threads and
 * by the end-to-end test.
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

/* Start serving the listening socket lfd (owned from now on, also on
 * failure) on loop. h must stay valid until http_serve_close returns.
 * 0, or the error of weft_start_server_fd / the timer. */
int http_serve_start(http_serve *h, weft_loop *loop, int lfd);

/* Task only: stop accepting, give live connections up to grace_ns, close
 * them, and stop the timer. 0 or an error of weft_server_close. */
int http_serve_close(http_serve *h, int64_t grace_ns);

#endif
