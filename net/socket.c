/* Stream sockets, task style: listen, connect (with a timeout), recv,
 * send, send_all, shutdown, close, and small socket helpers. accept is in
 * accept.c. */
#include "net_internal.h"

#include <string.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

int weft_socket(int family, int type)
{
    if ((family != AF_INET && family != AF_INET6 && family != AF_UNIX) ||
        (type != SOCK_STREAM && type != SOCK_DGRAM))
        return -EINVAL;
#ifdef _WIN32
    if (family == AF_UNIX)
        return -EAFNOSUPPORT;
    int rc = weft__net_startup();
    if (rc)
        return rc;
    /* Overlapped, for the IOCP backend; not inherited by child processes
     * (close-on-exec); non-blocking for the calls net/ makes itself. */
    SOCKET s =
        WSASocketW(family, type, 0, NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET)
        return weft__sock_error();
    int fd = weft__sock_fd(s);
    rc = weft__sock_nonblock(fd);
    if (rc) {
        weft__sock_close(fd);
        return rc;
    }
    return fd;
#else
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
#endif
}

void weft__tune_stream(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(NET_SOCK(fd), (struct sockaddr *)&ss, &len) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
        weft_set_nodelay(fd, 1);
}

int weft_set_nodelay(int fd, int on)
{
    if (fd < 0)
        return -EBADF;
    return weft__setopt_int(fd, IPPROTO_TCP, TCP_NODELAY, on != 0);
}

#ifndef _WIN32
/* Remove a stale Unix socket file at a's path (only a socket, never a
 * regular file). */
static void unlink_stale(const weft_addr *a)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
    if (un->sun_path[0] == '\0')
        return; /* abstract */
    char path[sizeof un->sun_path + 1];
    size_t n = strnlen(un->sun_path, sizeof un->sun_path);
    memcpy(path, un->sun_path, n);
    path[n] = '\0';
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
}
#endif

int weft_listen(const weft_addr *addr, const weft_listen_opts *opts)
{
    static const weft_listen_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!weft__addr_ok(addr) || opts->backlog < 0)
        return -EINVAL;
    int family = addr->ss.ss_family;
    int fd = weft_socket(family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    int rc = 0;
#ifdef _WIN32
    /* Windows' SO_REUSEADDR lets another socket take a port in use; what
     * POSIX's gives (rebinding over TIME_WAIT) is Windows' default. */
    if (opts->reuseport)
        rc = -ENOTSUP;
#else
    if (family != AF_UNIX)
        rc = weft__setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (!rc && opts->reuseport) {
#ifdef SO_REUSEPORT
        rc = weft__setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
#else
        rc = -ENOTSUP;
#endif
    }
    if (!rc && family == AF_UNIX && opts->unlink_path)
        unlink_stale(addr);
#endif
    if (!rc && family == AF_INET6)
        weft__setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, opts->v6only != 0);
    if (!rc && bind(NET_SOCK(fd), (const struct sockaddr *)&addr->ss, (socklen_t)addr->len) < 0)
        rc = weft__sock_error();
    if (!rc && listen(NET_SOCK(fd), opts->backlog ? opts->backlog : 511) < 0)
        rc = weft__sock_error();
    if (rc) {
        weft__sock_close(fd);
        return rc;
    }
    weft__accept_reserve();
    return fd;
}

typedef struct connect_timer {
    weft_loop *loop;
    weft_op *op;
    int fired;
} connect_timer;

static void connect_timeout(void *arg)
{
    connect_timer *ct = arg;
    ct->fired = 1;
    weft_op_cancel(ct->loop, ct->op);
}

int weft_connect(weft_loop *loop, const weft_addr *addr, int64_t timeout_ns)
{
    if (!loop || !weft__addr_ok(addr))
        return -EINVAL;
    if (!weft__in_task(loop))
        return -EPERM;
    int fd = weft_socket(addr->ss.ss_family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    weft_op op;
    weft_op_prep_connect(&op, fd, &addr->ss, addr->len, NULL, NULL);
    weft_handle timer = WEFT_HANDLE_INIT;
    connect_timer ct = {loop, &op, 0};
    if (timeout_ns >= 0) {
        int rc = weft_call_later(loop, &timer, timeout_ns, connect_timeout, &ct);
        if (rc) {
            weft_close(loop, fd);
            return rc;
        }
    }
    int64_t res = weft_await_op(loop, &op);
    if (weft_handle_pending(&timer))
        weft_handle_cancel(loop, &timer);
    if (res == -ECANCELED && ct.fired)
        res = -ETIMEDOUT;
    if (res < 0) {
        weft_close(loop, fd);
        return (int)res;
    }
    weft__tune_stream(fd);
    return fd;
}

int64_t weft_recv(weft_loop *loop, int fd, void *buf, size_t len)
{
    if (!loop || (!buf && len))
        return -EINVAL;
    weft_op op;
    weft_op_prep_recv(&op, fd, buf, len, 0, NULL, NULL);
    return weft_await_op(loop, &op);
}

/* Await a readiness op (poll in or out) on fd. */
static int wait_ready(weft_loop *loop, int fd, int out)
{
    if (!loop)
        return -EINVAL;
    weft_op op;
    if (out)
        weft_op_prep_poll_out(&op, fd, NULL, NULL);
    else
        weft_op_prep_poll_in(&op, fd, NULL, NULL);
    return (int)weft_await_op(loop, &op);
}

int weft_wait_readable(weft_loop *loop, int fd)
{
    return wait_ready(loop, fd, 0);
}

int weft_wait_writable(weft_loop *loop, int fd)
{
    return wait_ready(loop, fd, 1);
}

int64_t weft_send(weft_loop *loop, int fd, const void *buf, size_t len)
{
    if (!loop || (!buf && len))
        return -EINVAL;
    weft_op op;
    weft_op_prep_send(&op, fd, buf, len, NET_MSG_NOSIGNAL, NULL, NULL);
    return weft_await_op(loop, &op);
}

int64_t weft_send_all(weft_loop *loop, int fd, const void *buf, size_t len)
{
    if (!loop || (!buf && len))
        return -EINVAL;
    const char *p = buf;
    size_t left = len;
    do {
        int64_t n = weft_send(loop, fd, p, left);
        if (n < 0)
            return n;
        p += n;
        left -= (size_t)n;
    } while (left);
    return (int64_t)len;
}

int weft_shutdown(int fd, int how)
{
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    /* SD_RECEIVE, SD_SEND, SD_BOTH have SHUT_*'s values. */
    return shutdown(NET_SOCK(fd), how) < 0 ? weft__sock_error() : 0;
}

int weft_close(weft_loop *loop, int fd)
{
    if (!loop)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (weft__in_task(loop)) {
        weft_op op;
        weft_op_prep_close(&op, fd, NULL, NULL);
        int64_t rc = weft_await_op(loop, &op);
        if (rc == -ECANCELED) {
            /* A cancel of the task stopped the close before it ran (a
             * pending cancel skips the submit; io_uring may cancel a close
             * still linked behind its cancel-by-fd): close it here; the
             * cancel is still reported. close() itself never gives
             * ECANCELED. */
            weft_loop_forget_fd(loop, fd);
            weft__sock_close(fd);
        }
        return (int)rc;
    }
    weft_loop_forget_fd(loop, fd);
    int rc = weft__sock_close(fd);
    return rc == -EINTR ? 0 : rc;
}

/* getsockname (peer 0) or getpeername into out. */
static int sock_addr(int fd, weft_addr *out, int peer)
{
    if (!out)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    memset(out, 0, sizeof *out);
    socklen_t len = sizeof out->ss;
    struct sockaddr *sa = (struct sockaddr *)&out->ss;
    int rc = peer ? getpeername(NET_SOCK(fd), sa, &len) : getsockname(NET_SOCK(fd), sa, &len);
    if (rc < 0)
        return weft__sock_error();
    out->len = (uint32_t)len;
    return 0;
}

int weft_sockname(int fd, weft_addr *out)
{
    return sock_addr(fd, out, 0);
}

int weft_peername(int fd, weft_addr *out)
{
    return sock_addr(fd, out, 1);
}
