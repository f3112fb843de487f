/* UDP: the backend contract has no sendto/recvfrom ops, so each call tries
 * the non-blocking system call and, when it would block, waits with a
 * POLL_IN / POLL_OUT op and tries again (works on every backend). */
#include "net_internal.h"

#include <string.h>
#include <unistd.h>

int weft_udp_bind(const weft_addr *addr, int reuseport)
{
    if (!weft__addr_ok(addr) || addr->ss.ss_family == AF_UNIX)
        return -EINVAL;
    int fd = weft_socket(addr->ss.ss_family, SOCK_DGRAM);
    if (fd < 0)
        return fd;
    int one = 1;
    if (reuseport) {
#ifdef SO_REUSEPORT
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
            goto fail;
#else
        errno = ENOTSUP;
        goto fail;
#endif
    }
    (void)one;
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0)
        goto fail;
    return fd;
fail:;
    int err = -errno;
    close(fd);
    return err;
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

int64_t weft_sendto(weft_loop *loop, int fd, const void *buf, size_t len, const weft_addr *to)
{
    if (!loop || (!buf && len) || (to && !weft__addr_ok(to)))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (!weft__in_task(loop))
        return -EPERM;
    for (;;) {
        ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT,
                           to ? (const struct sockaddr *)&to->ss : NULL, to ? to->len : 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
            return -errno;
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
    for (;;) {
        weft_addr tmp;
        weft_addr *pa = from ? from : &tmp;
        socklen_t alen = sizeof pa->ss;
        ssize_t n = recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&pa->ss, &alen);
        if (n >= 0) {
            pa->len = alen;
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(loop, fd, 1);
        if (rc)
            return rc;
    }
}
