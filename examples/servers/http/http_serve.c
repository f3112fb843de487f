/* The http_server on one loop: see http_serve.h. */
#include "http_serve.h"

#include "http_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Buffers of each connection: a head is at most HTTP_DEFAULT_MAX_HEAD, the
 * read buffer holds it with room for a pipelined batch behind it. */
#define READ_BUF (16 * 1024)
#define OUT_BUF (16 * 1024)

static void date_tick(void *arg)
{
    http_serve *h = arg;
    http_responses_update(&h->resp, time(NULL));
    weft_call_later(h->loop, &h->date_timer, 1000000000, date_tick, h);
}

http_limits http_limits_default(void)
{
    return (http_limits){HTTP_DEFAULT_HEADER_TIMEOUT_NS, HTTP_DEFAULT_IDLE_TIMEOUT_NS};
}

/* One connection: parse what is buffered, answer the whole batch with one
 * write, read more. The server flushes and closes the stream on return.
 * Deadlines as nginx's: from the connection's start, and from the first
 * byte of each later request, the head must be complete within the header
 * timeout; between requests (and in a body) only the idle timeout counts.
 * A wait past them fails with -ETIMEDOUT and the connection closes (no
 * response, as nginx). The deadline changes at those transitions only,
 * never per read. Outside a request's body (a head arriving, or idle) the
 * connection is reclaimable: at the connection limit the server may close
 * it for a new one; a request whose head is complete is never cut. */
int http_serve_conn(weft_stream *s, void *arg)
{
    http_serve *h = arg;
    http_session sess;
    http_session_init(&sess, HTTP_DEFAULT_MAX_HEAD);
    char out[OUT_BUF];
    const http_limits *lim = &h->lim;
    weft_stream_set_timeout(s, lim->idle_timeout_ns);
    int in_head = lim->header_timeout_ns > 0; /* the header deadline is set */
    if (in_head)
        weft_stream_set_deadline(s, lim->header_timeout_ns);
    for (;;) {
        size_t len, out_len = 0;
        int more;
        const char *in = weft_stream_peek(s, &len);
        size_t used = http_session_feed(&sess, &h->resp, in, len, out, &out_len, sizeof out, &more);
        weft_stream_consume(s, used);
        if (out_len && weft_stream_write(s, out, out_len) < 0)
            return 0;
        if (sess.closing) {
            weft_stream_set_reclaimable(s, 0); /* an answer to deliver */
            /* The peer may still be sending (a 100 KB header line): let it
             * read the error response before a close with unread input
             * resets the connection. */
            weft_stream_linger(s, HTTP_LINGER_NS, HTTP_LINGER_BYTES);
            return 0;
        }
        if (more)
            continue;
        int partial = len > used && sess.body_left == 0; /* a head under way */
        if (partial && !in_head && lim->header_timeout_ns > 0) {
            weft_stream_set_deadline(s, lim->header_timeout_ns);
            in_head = 1;
        } else if (!partial && in_head && used) {
            weft_stream_set_deadline(s, -1); /* a request done: idle now */
            in_head = 0;
        }
        weft_stream_set_reclaimable(s, sess.body_left == 0);
        if (weft_stream_fill(s) <= 0) /* end of stream, an error, a timeout (or a full buffer) */
            return 0;
    }
}

int64_t http_limits_first_wait(const http_limits *lim)
{
    int64_t h = lim->header_timeout_ns, i = lim->idle_timeout_ns;
    if (h <= 0)
        return i > 0 ? i : 0;
    return i > 0 && i < h ? i : h;
}

static void server_opts(weft_server_opts *so)
{
    so->stream.read_limit = READ_BUF;
    so->stream.write_high = OUT_BUF;
    so->reclaim_silent = 1; /* at the connection limit, silent connections give way */
}

/* The responses and their Date timer, on loop. */
static int state_init(http_serve *h, weft_loop *loop)
{
    h->loop = loop;
    h->server = NULL;
    h->date_timer = (weft_handle)WEFT_HANDLE_INIT;
    memset(&h->resp, 0, sizeof h->resp); /* the caller's memory: nothing built yet */
    http_responses_update(&h->resp, time(NULL));
    return weft_call_later(loop, &h->date_timer, 1000000000, date_tick, h);
}

static void state_fini(http_serve *h)
{
    if (weft_handle_pending(&h->date_timer))
        weft_handle_cancel(h->loop, &h->date_timer);
}

int http_serve_start(http_serve *h, weft_loop *loop, int lfd)
{
    return http_serve_start_limits(h, loop, lfd, NULL, 0);
}

int http_serve_start_limits(http_serve *h, weft_loop *loop, int lfd, const http_limits *lim,
                            size_t max_connections)
{
    int rc = state_init(h, loop);
    if (rc < 0) {
        weft_close(loop, lfd);
        return rc;
    }
    h->lim = lim ? *lim : http_limits_default();
    weft_server_opts so = {0};
    server_opts(&so);
    so.max_connections = max_connections;
    so.idle_timeout_ns = http_limits_first_wait(&h->lim);
    rc = weft_start_server_fd(loop, lfd, http_serve_conn, h, &so, &h->server);
    if (rc < 0)
        state_fini(h);
    return rc;
}

int http_serve_close(http_serve *h, int64_t grace_ns)
{
    state_fini(h);
    int rc = h->server ? weft_server_close(h->server, grace_ns) : 0;
    h->server = NULL;
    return rc < 0 ? rc : 0;
}

static int thread_setup(weft_loop *loop, int index, void *arg, void **conn_arg)
{
    (void)index;
    http_serve *h = malloc(sizeof *h);
    if (!h)
        return -ENOMEM;
    int rc = state_init(h, loop);
    if (rc < 0) {
        free(h);
        return rc;
    }
    h->lim = arg ? *(const http_limits *)arg : http_limits_default();
    *conn_arg = h;
    return 0;
}

static void thread_teardown(weft_loop *loop, int index, void *conn_arg)
{
    (void)loop;
    (void)index;
    state_fini(conn_arg);
    free(conn_arg);
}

void http_serve_threads_opts(weft_serve_opts *opts)
{
    server_opts(&opts->server);
    opts->thread_setup = thread_setup;
    opts->thread_teardown = thread_teardown;
}
