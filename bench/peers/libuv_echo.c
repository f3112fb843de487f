/* Echo server on libuv, written the way libuv wants it: one uv_tcp_t per
 * connection with its read buffer; uv_try_write answers at once, and only
 * when the socket is full does a uv_write_t carry the rest, with reading
 * stopped until it is done (back-pressure). */
#include "peer_args.h"

#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    uv_write_t wr;
    char buf[PEER_BUF];
} conn;

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_write(uv_write_t *wr, int status)
{
    conn *c = wr->data;
    if (status < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (n == 0)
        return;
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
    int w = uv_try_write(s, &out, 1);
    if (w == n)
        return;
    if (w < 0 && w != UV_EAGAIN) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (w < 0)
        w = 0;
    /* The socket is full: send the rest, read nothing more until it is out. */
    uv_read_stop(s);
    out = uv_buf_init(buf->base + w, (unsigned)(n - w));
    c->wr.data = c;
    if (uv_write(&c->wr, s, &out, 1, on_write) < 0)
        uv_close((uv_handle_t *)s, on_close);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    conn *c = malloc(sizeof *c);
    if (!c)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    peer_args a;
    peer_parse(&a, argc, argv, 0);
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr(a.host, a.port, &addr);
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, PEER_BACKLOG, on_connection);
    if (rc != 0) {
        fprintf(stderr, "libuv_echo: %s:%d: %s\n", a.host, a.port, uv_strerror(rc));
        return 1;
    }
    return uv_run(loop, UV_RUN_DEFAULT);
}
