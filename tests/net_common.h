/* Helpers shared by the networking suites (test_net, test_stream,
 * test_server, test_threads): run a task to completion, an echo handler,
 * loopback listeners, patterns,
 * and the few socket calls a test makes itself, spelled for POSIX and for
 * Windows (where a socket is the SOCKET's value as an int: core/sys/sys.h). */
#ifndef WEFT_TEST_NET_COMMON_H
#define WEFT_TEST_NET_COMMON_H

#include "common.h"

#include "sys.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#define MS 1000000LL

/* A server handler (weft_start_server, weft_serve_threads): echo bytes back
 * until end of stream; arg, when not NULL, is an atomic_int counting the
 * connections served. */
static inline int test_echo_handler(weft_stream *s, void *arg)
{
    atomic_int *served = arg;
    char buf[4096];
    for (;;) {
        int64_t n = weft_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            break;
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            break;
    }
    if (served)
        atomic_fetch_add(served, 1);
    return 0;
}

/* Spawn fn(arg) on loop, run the loop until it is done, return its result
 * (its error code, or 0). */
static inline int run_task(weft_loop *loop, weft_task_fn fn, void *arg)
{
    weft_future *f;
    cr_assert_eq(weft_task_spawn(loop, fn, arg, &f), 0);
    intptr_t r = 0;
    int rc = weft_run_until_complete(loop, f, &r);
    weft_future_unref(f);
    return rc;
}

/* A TCP listener on 127.0.0.1 with an ephemeral port; its address in *a. */
static inline int loopback_listener(weft_addr *a, int backlog)
{
    cr_assert_eq(weft_addr_parse(a, "127.0.0.1:0"), 0);
    weft_listen_opts o = {.backlog = backlog};
    int fd = weft_listen(a, &o);
    cr_assert_geq(fd, 0, "listen: %s", weft_strerror(fd));
    cr_assert_eq(weft_sockname(fd, a), 0);
    return fd;
}

/* *a is refused while the returned socket stays open (test_tcp_refusing). */
static inline int refusing_addr(weft_addr *a)
{
    struct sockaddr_in in;
    int fd = test_tcp_refusing(&in);
    *a = (weft_addr){.len = sizeof in};
    memcpy(&a->ss, &in, sizeof in);
    return fd;
}

/* The byte at offset i of a test message: a pattern that shows shifts. */
static inline unsigned char pattern_at(size_t i)
{
    return (unsigned char)((i * 7 + (i >> 8) * 13) & 0xff);
}

static inline void fill_pattern(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pattern_at(i);
}

static inline int check_pattern(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern_at(i))
            return 0;
    return 1;
}

/* Raise the soft descriptor limit to the hard one (Windows has no such
 * limit on sockets). */
static inline void raise_nofile(void)
{
#ifndef _WIN32
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
#endif
}

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- a test's own socket calls, outside the loop ---- */

#ifdef _WIN32
#define NET_T_SOCK(fd) weft__sock(fd)
#else
#define NET_T_SOCK(fd) (fd)
#endif

/* The last socket call's error as a positive errno (compare with E*). */
static inline int net_errno(void)
{
    return -weft__sock_error();
}

/* A plain socket of family and type (blocking); -1 on failure. On Windows
 * it is overlapped, as every Winsock socket() is. */
static inline int net_raw_socket(int family, int type)
{
#ifdef _WIN32
    cr_assert_eq(weft__net_startup(), 0);
    return weft__sock_fd(socket(family, type, 0));
#else
    return socket(family, type | SOCK_CLOEXEC, 0);
#endif
}

static inline int net_close(int fd)
{
    return weft__sock_close(fd);
}

static inline int net_setsockopt(int fd, int level, int name, const void *val, size_t len)
{
    return setsockopt(NET_T_SOCK(fd), level, name, val, (socklen_t)len);
}

/* connect(); 0, or -1 with net_errno(). */
static inline int net_connect(int fd, const weft_addr *a)
{
    return connect(NET_T_SOCK(fd), (const struct sockaddr *)&a->ss, (socklen_t)a->len) == 0 ? 0
                                                                                            : -1;
}

/* Non-blocking receive of up to n bytes: the count, or -1 with net_errno()
 * (EAGAIN when nothing is there). The socket must be non-blocking on
 * Windows, which has no per-call flag. */
static inline long net_recv_now(int fd, void *buf, size_t n)
{
#ifdef _WIN32
    return recv(weft__sock(fd), buf, (int)n, 0);
#else
    return (long)recv(fd, buf, n, MSG_DONTWAIT);
#endif
}

static inline void net_sleep_ms(int ms)
{
#ifdef _WIN32
    Sleep((DWORD)ms);
#else
    usleep((useconds_t)ms * 1000);
#endif
}

static inline int net_getpid(void)
{
#ifdef _WIN32
    return (int)GetCurrentProcessId();
#else
    return (int)getpid();
#endif
}

#endif
