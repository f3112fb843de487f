/* weft_accept, and surviving EMFILE / ENFILE.
 *
 * Out of descriptors, accept fails while the connection stays queued: a
 * readiness loop would report the listener ready forever (a busy spin),
 * and clients would wait for nothing. As libuv does, weft keeps one spare
 * descriptor per process: on EMFILE it closes the spare, accepts the
 * pending connection into the freed slot and closes it at once (the client
 * sees its connection closed), then takes the spare again. Without a spare
 * (another thread holds it, or it could not be opened) the task backs off
 * with a timer instead.
 *
 * Windows has no per-process descriptor limit of that kind (sockets are
 * handles, limited by memory): there is no spare, and a WSAEMFILE from the
 * system backs off with the timer too. */
#include "sys/fault.h"
#include "net_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#ifndef _WIN32
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#endif

#define BACKOFF_NS (50 * 1000000LL)

static atomic_int logged;

#ifdef _WIN32
#define SHED_WHAT "retrying every 50 ms until sockets are free" /* no spare to shed with */
#else
#define SHED_WHAT "closing new connections until descriptors are free"
#endif

static void log_once(int err)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&logged, &expected, 1))
        fprintf(stderr, "weft: accept: %s; " SHED_WHAT " (logged once)\n", weft_strerror(err));
}

#ifdef _WIN32
void weft__accept_reserve(void) {}

static int shed_one(int lfd)
{
    (void)lfd;
    return -1; /* no spare: back off */
}

int weft__accept_queued(int lfd)
{
    SOCKET s = accept(NET_SOCK(lfd), NULL, NULL);
    if (s == INVALID_SOCKET)
        return weft__sock_error();
    int fd = weft__sock_fd(s);
    /* accept() copies the listener's non-blocking mode, not necessarily
     * its inheritance flag: set both, as weft_socket() has them. */
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    int rc = weft__sock_nonblock(fd);
    if (rc) {
        weft__sock_close(fd);
        return rc;
    }
    weft__tune_stream(fd);
    return fd;
}
#else
static pthread_mutex_t reserve_mu = PTHREAD_MUTEX_INITIALIZER;
static int reserve_fd = -1; /* under reserve_mu */

static int open_spare(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void weft__accept_reserve(void)
{
    pthread_mutex_lock(&reserve_mu);
    if (reserve_fd < 0)
        reserve_fd = open_spare();
    pthread_mutex_unlock(&reserve_mu);
}

/* Accept one pending connection on the spare slot and close it. 0 when a
 * connection was shed, 1 when none was pending (the kernel checks for a
 * free descriptor before it looks at the queue), -1 when there is no
 * spare. */
static int shed_one(int lfd)
{
    pthread_mutex_lock(&reserve_mu);
    if (reserve_fd < 0) {
        reserve_fd = open_spare(); /* descriptors may have been freed meanwhile */
        pthread_mutex_unlock(&reserve_mu);
        return -1;
    }
    close(reserve_fd);
    reserve_fd = -1;
    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int rc = c >= 0 ? 0 : (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
    if (c >= 0)
        close(c);
    reserve_fd = open_spare();
    pthread_mutex_unlock(&reserve_mu);
    return rc;
}

int weft__accept_queued(int lfd)
{
    int ferr = WEFT__FAULT(NULL, lfd, WEFT__FS_ACCEPT, NULL);
    int fd = ferr ? (errno = ferr, -1) : accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return -errno;
    weft__tune_stream(fd);
    return fd;
}
#endif

int weft_accept(weft_loop *loop, int lfd, weft_addr *peer)
{
    if (!loop)
        return -EINVAL;
    if (lfd < 0)
        return -EBADF;
    weft_addr tmp;
    weft_addr *pa = peer ? peer : &tmp;
    for (;;) {
        weft_op op;
        weft_op_prep_accept(&op, lfd, &pa->ss, sizeof pa->ss, NULL, NULL);
        int64_t r = weft_await_op(loop, &op);
        if (r >= 0) {
            pa->len = op.addrlen;
            weft__tune_stream((int)r);
            return (int)r;
        }
        int rc = 0;
        switch (r) {
        case -EMFILE:
        case -ENFILE:
            log_once((int)r);
            switch (shed_one(lfd)) {
            case 0:
                break;
            case 1: { /* wait for a connection before trying again */
                weft_op wait;
                weft_op_prep_poll_in(&wait, lfd, NULL, NULL);
                int64_t w = weft_await_op(loop, &wait);
                rc = w == -ECANCELED ? -ECANCELED : 0;
                break;
            }
            default:
                rc = weft_sleep(loop, BACKOFF_NS);
            }
            break;
        case -ENOBUFS:
        case -ENOMEM:
            rc = weft_sleep(loop, BACKOFF_NS);
            break;
        case -ECONNABORTED: /* the peer gave up while queued: next one */
        case -EINTR:
        case -EPROTO:
        case -EPERM:               /* a firewall refused this one */
            rc = weft_yield(loop); /* let the loop breathe */
            break;
        default:
            return (int)r;
        }
        if (rc < 0)
            return rc;
    }
}
