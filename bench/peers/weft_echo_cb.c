/* Echo server on weft in callback style: raw ops, no tasks. Each
 * connection owns one op and its buffer and alternates recv -> send (all
 * of it) -> recv; the listener keeps one accept op in flight. The same
 * program runs on every backend (--backend). */
#include "weft_peer.h"

#include <errno.h>

#ifndef MSG_NOSIGNAL /* Windows: no SIGPIPE to suppress */
#define MSG_NOSIGNAL 0
#endif

typedef struct conn {
    weft_op op;
    size_t len, off;
    char buf[PEER_BUF];
} conn;

static weft_loop *g_loop;
static weft_op g_accept;
static int g_lfd;

static void on_recv(weft_op *op);

static void on_closed(weft_op *op)
{
    free(op->data);
}

static void conn_close(conn *c)
{
    weft_op_prep_close(&c->op, c->op.fd, on_closed, c);
    if (weft_op_submit(g_loop, &c->op) != 0)
        free(c);
}

static void conn_recv(conn *c, int fd)
{
    weft_op_prep_recv(&c->op, fd, c->buf, sizeof c->buf, 0, on_recv, c);
    if (weft_op_submit(g_loop, &c->op) != 0)
        conn_close(c);
}

static void on_sent(weft_op *op)
{
    conn *c = op->data;
    if (op->result < 0) {
        conn_close(c);
        return;
    }
    c->off += (size_t)op->result;
    if (c->off < c->len) {
        weft_op_prep_send(&c->op, op->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL, on_sent,
                          c);
        if (weft_op_submit(g_loop, &c->op) != 0)
            conn_close(c);
        return;
    }
    conn_recv(c, op->fd);
}

static void on_recv(weft_op *op)
{
    conn *c = op->data;
    if (op->result <= 0) {
        conn_close(c);
        return;
    }
    c->len = (size_t)op->result;
    c->off = 0;
    weft_op_prep_send(&c->op, op->fd, c->buf, c->len, MSG_NOSIGNAL, on_sent, c);
    if (weft_op_submit(g_loop, &c->op) != 0)
        conn_close(c);
}

static void on_accept(weft_op *op)
{
    if (op->result >= 0) {
        int fd = (int)op->result;
        conn *c = malloc(sizeof *c);
        if (!c) {
            weft_close(g_loop, fd);
        } else {
            weft_set_nodelay(fd, 1);
            conn_recv(c, fd);
        }
    } else if (op->result != -EAGAIN && op->result != -EINTR && op->result != -ECONNABORTED) {
        fprintf(stderr, "weft_echo_cb: accept: %s\n", weft_strerror((int)op->result));
    }
    weft_op_prep_accept(&g_accept, g_lfd, NULL, 0, on_accept, NULL);
    weft_op_submit(g_loop, &g_accept);
}

int main(int argc, char **argv)
{
    if (weft_peer_start(argc, argv, "weft_echo_cb", &g_loop, &g_lfd) != 0)
        return 1;
    weft_op_prep_accept(&g_accept, g_lfd, NULL, 0, on_accept, NULL);
    weft_op_submit(g_loop, &g_accept);
    return weft_peer_run(g_loop);
}
