/* The epoll limit reference: a minimal echo server on raw epoll, no
 * library, written for the benchmark only. Level-triggered: one read per
 * readiness (into one buffer shared by all connections) and the bytes
 * written back at once, so a message costs epoll_wait's share, a read and a
 * write. Only when the socket is full does the rest go to a buffer of the
 * connection's own, with reading stopped and EPOLLOUT asked for until it is
 * out (back-pressure, as the libuv peer does). */
#include "peer_args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define EVENTS 256

/* What a full socket did not take. */
typedef struct pending {
    size_t off, len;
    char data[];
} pending;

static int ep;
static pending **pend; /* by fd; NULL: nothing waits */
static int nfds_max;
static char buf[PEER_BUF];

static void conn_close(int fd)
{
    free(pend[fd]);
    pend[fd] = NULL;
    close(fd); /* also leaves the epoll set */
}

static void set_events(int fd, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) < 0)
        conn_close(fd);
}

/* Write p[0..n) to fd; keep what the socket does not take. 0, or -1 when
 * the connection is gone. */
static int put(int fd, const char *p, size_t n)
{
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) {
        conn_close(fd);
        return -1;
    }
    if (w < 0)
        w = 0;
    if ((size_t)w == n)
        return 0;
    pending *q = malloc(sizeof *q + (n - (size_t)w));
    if (!q) {
        conn_close(fd);
        return -1;
    }
    q->off = 0;
    q->len = n - (size_t)w;
    memcpy(q->data, p + w, q->len);
    pend[fd] = q;
    set_events(fd, EPOLLOUT);
    return -1;
}

static void on_readable(int fd)
{
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0)
        put(fd, buf, (size_t)n);
    else if (n == 0 || errno != EAGAIN)
        conn_close(fd);
}

static void on_writable(int fd)
{
    pending *q = pend[fd];
    ssize_t w = send(fd, q->data + q->off, q->len - q->off, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) {
        conn_close(fd);
        return;
    }
    if (w > 0)
        q->off += (size_t)w;
    if (q->off < q->len)
        return;
    free(q);
    pend[fd] = NULL;
    set_events(fd, EPOLLIN);
}

static void on_accept(int lfd)
{
    for (int i = 0; i < 64; i++) { /* a burst of connects: take what is queued */
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
        if (fd >= nfds_max || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    peer_args a;
    peer_parse(&a, argc, argv, 0);
    struct rlimit rl;
    nfds_max =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20) ? (int)rl.rlim_cur : 1 << 20;
    pend = calloc((size_t)nfds_max, sizeof *pend);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a.port)};
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.fd = lfd};
    if (!pend || lfd < 0 || ep < 0 || inet_pton(AF_INET, a.host, &sa.sin_addr) != 1 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, PEER_BACKLOG) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le) < 0) {
        fprintf(stderr, "raw_epoll_echo: %s:%d: %s\n", a.host, a.port, strerror(errno));
        return 1;
    }
    print_port(lfd);
    struct epoll_event ev[EVENTS];
    for (;;) {
        int n = epoll_wait(ep, ev, EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "raw_epoll_echo: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == lfd)
                on_accept(lfd);
            else if (pend[fd])
                on_writable(fd);
            else
                on_readable(fd);
        }
    }
}
