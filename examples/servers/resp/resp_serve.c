/* The resp_server on one loop: see resp_serve.h. */
#include "resp_serve.h"

#include "resp_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A command is parsed in place, so the largest one must fit the read buffer
 * (allocated once per connection; the kernel maps its pages as they fill). */
#define READ_BUF (1024 * 1024)
#define MAX_BULK (512 * 1024)
/* Replies of one batch are written together once they pass this. */
#define OUT_FLUSH (64 * 1024)

static const char too_big[] = "-ERR Protocol error: command too large\r\n";

void resp_serve_server_opts(weft_server_opts *so)
{
    so->stream.read_limit = READ_BUF;
    so->stream.write_high = 64 * 1024;
    so->reclaim_silent = 1; /* at the connection limit, silent connections give way */
}

int resp_serve_conn(weft_stream *s, void *arg)
{
    resp_store *store = arg;
    resp_session *sess = malloc(sizeof *sess); /* once per connection */
    if (!sess)
        return -ENOMEM;
    resp_limits lim = {.max_args = RESP_SESSION_MAX_ARGS,
                       .max_bulk = MAX_BULK,
                       .max_inline = RESP_DEFAULT_MAX_INLINE};
    resp_session_init(sess, &lim);
    resp_out out = {0};
    weft_stream_set_timeout(s, store->idle_timeout_ns); /* a read past it fails: close */
    for (;;) {
        size_t len;
        int more;
        /* The stream's buffer is the connection's own memory; quoted inline
         * arguments are unescaped in it before it is consumed. */
        char *in = (char *)weft_stream_peek(s, &len);
        if (store->lock)
            pthread_mutex_lock(store->lock);
        size_t used = resp_session_feed(sess, &store->db, in, len, &out, OUT_FLUSH, &more);
        if (store->lock)
            pthread_mutex_unlock(store->lock);
        weft_stream_consume(s, used);
        if (out.len) {
            if (weft_stream_write(s, out.buf, out.len) < 0)
                break;
            out.len = 0;
        }
        if (sess->closing)
            break;
        if (more)
            continue;
        /* Between commands, at the connection limit the server may close
         * it for a new one; never with a command half received. */
        weft_stream_set_reclaimable(s, used == len);
        int64_t n = weft_stream_fill(s);
        if (n == -EMSGSIZE) {
            weft_stream_write(s, too_big, sizeof too_big - 1);
            break;
        }
        if (n <= 0)
            break;
    }
    resp_out_free(&out);
    free(sess);
    return 0;
}

int resp_serve_start(resp_serve *r, weft_loop *loop, int lfd, resp_store *store)
{
    r->loop = loop;
    r->store = store;
    r->server = NULL;
    weft_server_opts so = {0};
    resp_serve_server_opts(&so);
    so.idle_timeout_ns = store->idle_timeout_ns; /* also before the first command */
    return weft_start_server_fd(loop, lfd, resp_serve_conn, store, &so, &r->server);
}

int resp_serve_close(resp_serve *r, int64_t grace_ns)
{
    int rc = r->server ? weft_server_close(r->server, grace_ns) : 0;
    r->server = NULL;
    return rc < 0 ? rc : 0;
}
