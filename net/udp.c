/* UDP: the backend contract has no sendto/recvfrom ops, so each call tries
 * the non-blocking system call and, when it would block, waits with a
 * POLL_IN / POLL_OUT op and tries again (works on every backend). */
#include "net_internal.h"

#include <limits.h>
#include <string.h>
#ifdef _WIN32
#include <mswsock.h>
#endif

int weft_udp_bind(const weft_addr *addr, int reuseport)
{
    if (!weft__addr_ok(addr) || addr->ss.ss_family == AF_UNIX)
        return -EINVAL;
    int fd = weft_socket(addr->ss.ss_family, SOCK_DGRAM);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (reuseport) {
#if defined(SO_REUSEPORT) && !defined(_WIN32)
        rc = weft__setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
#else
        rc = -ENOTSUP;
#endif
    }
#ifdef _WIN32
    if (!rc) {
        /* Windows fails the next recvfrom with WSAECONNRESET when an
         * earlier datagram met a closed port (ICMP port unreachable); POSIX
         * reports that only on connected sockets. Turned off, as libuv
         * does; an error here leaves the default (wine may not know it). */
        BOOL off = FALSE;
        DWORD got;
        WSAIoctl(NET_SOCK(fd), SIO_UDP_CONNRESET, &off, sizeof off, NULL, 0, &got, NULL, NULL);
    }
#endif
    if (!rc && bind(NET_SOCK(fd), (const struct sockaddr *)&addr->ss, (socklen_t)addr->len) < 0)
        rc = weft__sock_error();
    if (rc) {
        weft__sock_close(fd);
        return rc;
    }
    return fd;
}

/* Wait for fd to become readable (in) or writable; 0 or an error. */
static int wait_fd(weft_loop *loop, int fd, int in)
{
    weft_op op;
    if (in)
        weft_op_prep_poll_in(&op, fd, NULL, NULL);
    else
        weft_op_prep_poll_out(&op, fd, NULL, NULL);
    int64_t r = weft_await_op(loop, &op);
    return r < 0 ? (int)r : 0;
}

#ifdef _WIN32
typedef int io_len; /* Winsock counts bytes in an int */
#define IO_LEN_MAX INT_MAX
#else
typedef size_t io_len;
#define IO_LEN_MAX SIZE_MAX
#endif

int64_t weft_sendto(weft_loop *loop, int fd, const void *buf, size_t len, const weft_addr *to)
{
    if (!loop || (!buf && len) || (to && !weft__addr_ok(to)))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (!weft__in_task(loop))
        return -EPERM;
    if (len > IO_LEN_MAX)
        return -EMSGSIZE;
    for (;;) {
        int64_t n =
            sendto(NET_SOCK(fd), buf, (io_len)len, NET_MSG_NOSIGNAL | NET_MSG_DONTWAIT,
                   to ? (const struct sockaddr *)&to->ss : NULL, to ? (socklen_t)to->len : 0);
        if (n >= 0)
            return n;
        int err = weft__sock_error();
        if (err == -EINTR)
            continue;
        if (err != -EAGAIN && err != -EWOULDBLOCK && err != -ENOBUFS)
            return err;
        int rc = wait_fd(loop, fd, 0);
        if (rc)
            return rc;
    }
}

int64_t weft_recvfrom(weft_loop *loop, int fd, void *buf, size_t len, weft_addr *from)
{
    if (!loop || (!buf && len))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (!weft__in_task(loop))
        return -EPERM;
    if (len > IO_LEN_MAX)
        len = IO_LEN_MAX;
    for (;;) {
        weft_addr tmp;
        weft_addr *pa = from ? from : &tmp;
        socklen_t alen = sizeof pa->ss;
        int64_t n = recvfrom(NET_SOCK(fd), buf, (io_len)len, NET_MSG_DONTWAIT,
                             (struct sockaddr *)&pa->ss, &alen);
        int err = n >= 0 ? 0 : weft__sock_error();
#ifdef _WIN32
        if (err == -EMSGSIZE) { /* Windows fails a truncated datagram; POSIX returns len */
            n = (int64_t)len;
            err = 0;
        }
#endif
        if (!err) {
            pa->len = (uint32_t)alen;
            return n;
        }
        if (err == -EINTR)
            continue;
        if (err != -EAGAIN && err != -EWOULDBLOCK)
            return err;
        int rc = wait_fd(loop, fd, 1);
        if (rc)
            return rc;
    }
}
