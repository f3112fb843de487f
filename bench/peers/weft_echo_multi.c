/* Echo server on weft's multishot operations, callback style: one
 * multishot accept on the listener, one multishot recv per connection
 * into the loop's buffers (weft_loop_buffers_setup), and each chunk sent
 * back from the loop's buffer itself, which goes back to the loop when its
 * send completes. Chunks that arrive while a send is in flight wait in the
 * connection's queue, in order (it grows by doubling; the loop's buffers
 * bound it: the recv pauses while all of them are out). On io_uring these
 * are the kernel's multishot requests and provided-buffer ring, the
 * design of raw_uring_echo; on epoll, kqueue and poll the loop's emulation
 * of them. The same program runs on every backend (--backend). The loop
 * packs chunks into its buffers (512 of 32 KiB, 16 MiB), so a 16 KiB
 * message is mostly one recv and one send, and a 64 B one takes 64 bytes. */
#include "weft_peer.h"

#include <errno.h>

#ifndef MSG_NOSIGNAL /* Windows: no SIGPIPE to suppress */
#define MSG_NOSIGNAL 0
#endif

#ifndef NBUF /* -DNBUF=... -DBUFSZ=...: other sizes, to compare */
#define NBUF 512
#endif
#ifndef BUFSZ
#define BUFSZ 32768
#endif

typedef struct chunk {
    char *buf;
    size_t len;
} chunk;

typedef struct conn {
    weft_multi recv;
    weft_op send;
    int fd;
    int recv_ended; /* the multishot recv made its last call */
    int sending;
    int stopping; /* no more echoing: waiting for the recv's last call */
    size_t off;   /* bytes of the head chunk already sent */
    /* the queue: q[head], q[head + 1], ... (mod cap, a power of two) */
    unsigned head, len, cap;
    chunk *q;
    chunk first[4]; /* the queue until it needs more */
} conn;

static weft_loop *g_loop;
static weft_multi g_accept;
static int g_lfd;

/* Give the queued chunks back to the loop, all but the head while a send
 * reads it. */
static void drop_queue(conn *c)
{
    unsigned keep = c->sending && c->len ? 1 : 0;
    while (c->len > keep) {
        c->len--;
        weft_loop_buffer_release(g_loop, c->q[(c->head + c->len) & (c->cap - 1)].buf);
    }
}

/* Close the connection once neither its recv nor a send uses it. */
static void maybe_free(conn *c)
{
    if (!c->recv_ended || c->sending)
        return;
    drop_queue(c);
    weft_close(g_loop, c->fd);
    if (c->q != c->first)
        free(c->q);
    free(c);
}

/* Stop echoing (an error, or a peer that does not read): what is queued
 * goes back, and the recv's last call frees the connection. */
static void stop(conn *c)
{
    c->stopping = 1;
    drop_queue(c);
    if (!c->recv_ended)
        weft_multi_cancel(g_loop, &c->recv);
}

static void on_sent(weft_op *op);

static void send_head(conn *c)
{
    chunk *h = &c->q[c->head];
    weft_op_prep_send(&c->send, c->fd, h->buf + c->off, h->len - c->off, MSG_NOSIGNAL, on_sent, c);
    if (weft_op_submit(g_loop, &c->send) != 0) {
        stop(c);
        maybe_free(c); /* frees c if its recv has ended */
        return;
    }
    c->sending = 1;
}

static void on_sent(weft_op *op)
{
    conn *c = op->data;
    c->sending = 0;
    if (op->result < 0 || c->stopping) {
        stop(c); /* now without a send: the head goes back too */
        maybe_free(c);
        return;
    }
    chunk *h = &c->q[c->head];
    c->off += (size_t)op->result;
    if (c->off == h->len) {
        weft_loop_buffer_release(g_loop, h->buf);
        c->off = 0;
        c->head = (c->head + 1) & (c->cap - 1);
        c->len--;
    }
    if (c->len)
        send_head(c);
    else
        maybe_free(c);
}

/* Double c's queue, keeping its order. 0 or -ENOMEM. */
static int grow_queue(conn *c)
{
    chunk *q = malloc(2 * c->cap * sizeof *q);
    if (!q)
        return -ENOMEM;
    for (unsigned i = 0; i < c->len; i++)
        q[i] = c->q[(c->head + i) & (c->cap - 1)];
    if (c->q != c->first)
        free(c->q);
    c->q = q;
    c->head = 0;
    c->cap *= 2;
    return 0;
}

static void on_recv(weft_multi *m, int64_t res, void *buf, int more)
{
    conn *c = m->data;
    if (res > 0) {
        if (c->stopping || (c->len == c->cap && grow_queue(c) != 0)) {
            weft_loop_buffer_release(g_loop, buf);
            stop(c);
        } else {
            c->q[(c->head + c->len) & (c->cap - 1)] = (chunk){buf, (size_t)res};
            if (c->len++ == 0 && !c->sending)
                send_head(c);
        }
    }
    if (!more) {
        c->recv_ended = 1;
        maybe_free(c);
    }
}

static void on_accept(weft_multi *m, int64_t res, void *buf, int more)
{
    (void)m;
    (void)buf;
    if (res >= 0) {
        int fd = (int)res;
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            weft_close(g_loop, fd);
        } else {
            c->fd = fd;
            c->q = c->first;
            c->cap = sizeof c->first / sizeof c->first[0];
            weft_set_nodelay(fd, 1);
            if (weft_recv_multi(g_loop, &c->recv, fd, on_recv, c) != 0) {
                weft_close(g_loop, fd);
                free(c);
            }
        }
    } else if (res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
        fprintf(stderr, "weft_echo_multi: accept: %s\n", weft_strerror((int)res));
    }
    if (!more && weft_accept_multi(g_loop, &g_accept, g_lfd, on_accept, NULL) != 0)
        weft_loop_stop(g_loop);
}

int main(int argc, char **argv)
{
    if (weft_peer_start(argc, argv, "weft_echo_multi", &g_loop, &g_lfd) != 0)
        return 1;
    int rc = weft_loop_buffers_setup(g_loop, NBUF, BUFSZ);
    if (rc == 0)
        rc = weft_accept_multi(g_loop, &g_accept, g_lfd, on_accept, NULL);
    if (rc < 0) {
        fprintf(stderr, "weft_echo_multi: %s\n", weft_strerror(rc));
        return 1;
    }
    return weft_peer_run(g_loop);
}
