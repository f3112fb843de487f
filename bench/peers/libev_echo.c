/* Echo server on libev, the libev way: an ev_io read watcher per
 * connection; read, write back, and when the socket is full switch the
 * watcher to write interest until the rest is out. */
#include "peer_args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct conn {
    ev_io io;
    size_t len, off; /* bytes of buf still to write back */
    char buf[PEER_BUF];
} conn;

static void conn_free(struct ev_loop *loop, conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c);
}

/* Write buf[off, len); returns 1 when all is out, 0 when the socket is full, -1 on error. */
static int conn_flush(conn *c)
{
    while (c->off < c->len) {
        ssize_t w = write(c->io.fd, c->buf + c->off, c->len - c->off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        c->off += (size_t)w;
    }
    return 1;
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)w;
    int done;
    if (revents & EV_READ) {
        ssize_t n = read(w->fd, c->buf, sizeof c->buf);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            conn_free(loop, c);
            return;
        }
        c->len = (size_t)n;
        c->off = 0;
        done = conn_flush(c);
        if (done == 0) { /* full: wait to write, stop reading */
            ev_io_stop(loop, w);
            ev_io_set(w, w->fd, EV_WRITE);
            ev_io_start(loop, w);
        }
    } else {
        done = conn_flush(c);
        if (done == 1) {
            ev_io_stop(loop, w);
            ev_io_set(w, w->fd, EV_READ);
            ev_io_start(loop, w);
        }
    }
    if (done < 0)
        conn_free(loop, c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        ev_io_init(&c->io, on_io, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

int main(int argc, char **argv)
{
    peer_args a;
    peer_parse(&a, argc, argv, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a.port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (inet_pton(AF_INET, a.host, &addr.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, PEER_BACKLOG) < 0) {
        fprintf(stderr, "libev_echo: %s:%d: %s\n", a.host, a.port, strerror(errno));
        return 1;
    }
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    ev_io lw;
    ev_io_init(&lw, on_accept, fd, EV_READ);
    ev_io_start(loop, &lw);
    ev_run(loop, 0);
    return 0;
}
