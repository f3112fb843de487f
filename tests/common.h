/* Helpers shared by the loop-level suites. Each suite runs once per backend:
 * meson sets WEFT_BACKEND, and a backend the OS refuses skips the tests.
 *
 * The suites also build for Windows (mingw-w64, run under wine): a socket
 * is an int there too (the SOCKET's value, core/sys/sys.h), and the few
 * calls that differ go through the test_* helpers below. Error codes are
 * compared by their E* names: mingw's numbers differ from Linux's. */
#ifndef WEFT_TEST_COMMON_H
#define WEFT_TEST_COMMON_H

#include "weft.h"

#include "harness.h"
#include <errno.h>
#include <stdlib.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include "sys.h"

/* POSIX's name for what Windows calls SD_SEND. */
#ifndef SHUT_WR
#define SHUT_WR SD_SEND
#endif
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

/* Sockets may be made before any loop exists: start Winsock first. */
static inline void test_net_start(void)
{
#ifdef _WIN32
    cr_assert_eq(weft__net_startup(), 0, "WSAStartup failed");
#else
    signal(SIGPIPE, SIG_IGN);
#endif
}

/* WEFT_TEST_TIMEOUT_SCALE (set for the wine and qemu runs): how much
 * slower than a native run this one may be. A test whose assertions race
 * a deadline of its own (a server timeout it configures) stretches that
 * deadline by it, as the harness stretches each test's timeout. */
static inline int64_t test_time_scale(void)
{
    const char *s = getenv("WEFT_TEST_TIMEOUT_SCALE");
    int k = s ? atoi(s) : 1;
    return k > 1 ? k : 1;
}

static inline weft_loop *test_loop_new(void)
{
    test_net_start();
    weft_loop *loop = NULL;
    int rc = weft_loop_new(NULL, &loop);
    if (rc == WEFT_EUNAVAILABLE)
        cr_skip_test("backend %s unavailable here", getenv("WEFT_BACKEND"));
    cr_assert_eq(rc, 0, "weft_loop_new: %s", weft_strerror(rc));
    const char *want = getenv("WEFT_BACKEND");
    if (want && *want)
        cr_assert_str_eq(weft_loop_backend_name(loop), want);
    return loop;
}

static inline void test_loop_free(weft_loop *loop)
{
    cr_assert_eq(weft_loop_free(loop), 0);
}

/* What an op's completion callback saw: use test_on_done as the callback
 * and a test_rec as its data. `clock`, when set, numbers completions in order. */
typedef struct {
    int calls;
    int64_t result;
    int order;
    int *clock;
} test_rec;

static inline void test_on_done(weft_op *op)
{
    test_rec *r = op->data;
    r->calls++;
    r->result = op->result;
    if (r->clock)
        r->order = ++*r->clock;
}

/* An error code's name (EBADF), or its message if it has none: for
 * assertion messages (mingw's strerror knows no socket errors). */
static inline const char *test_err(int64_t rc)
{
    const char *name = weft_err_name((int)rc);
    return name ? name : weft_strerror((int)rc);
}

/* ---- sockets, the same on every system ---- */

/* The last socket call's error as a positive errno (E* names). */
static inline int test_sock_errno(void)
{
#ifdef _WIN32
    return -weft__sock_error();
#else
    return errno;
#endif
}

static inline int test_close(int fd)
{
#ifdef _WIN32
    return weft__sock_close(fd);
#else
    return close(fd);
#endif
}

/* write()/read() on a socket: send()/recv() on Windows, where a socket is
 * no C runtime descriptor. */
static inline long test_write(int fd, const void *buf, size_t n)
{
#ifdef _WIN32
    return send(weft__sock(fd), buf, (int)n, 0);
#else
    return (long)write(fd, buf, n);
#endif
}

static inline long test_read(int fd, void *buf, size_t n)
{
#ifdef _WIN32
    return recv(weft__sock(fd), buf, (int)n, 0);
#else
    return (long)read(fd, buf, n);
#endif
}

/* A non-blocking send()/recv() outside the loop (no SIGPIPE on POSIX):
 * -1 and test_sock_errno() EAGAIN when it would block. */
static inline long test_send(int fd, const void *buf, size_t n)
{
#ifdef _WIN32
    return send(weft__sock(fd), buf, (int)n, 0);
#else
    return (long)send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
#endif
}

static inline long test_recv(int fd, void *buf, size_t n)
{
#ifdef _WIN32
    return recv(weft__sock(fd), buf, (int)n, 0);
#else
    return (long)recv(fd, buf, n, MSG_DONTWAIT);
#endif
}

/* accept() without the loop: the new socket, or -1 (test_sock_errno()). */
static inline int test_accept(int lfd)
{
#ifdef _WIN32
    return weft__sock_fd(accept(weft__sock(lfd), NULL, NULL));
#else
    return accept(lfd, NULL, NULL);
#endif
}

/* A blocking connect() to addr; 0 or -1 (test_sock_errno()). */
static inline int test_connect(int fd, const struct sockaddr_in *addr)
{
#ifdef _WIN32
    return connect(weft__sock(fd), (const struct sockaddr *)addr, sizeof *addr) == 0 ? 0 : -1;
#else
    return connect(fd, (const struct sockaddr *)addr, sizeof *addr);
#endif
}

/* A TCP socket; non-blocking unless `blocking`. On Windows it is made for
 * overlapped I/O (WSA_FLAG_OVERLAPPED), as IOCP needs. */
static inline int test_tcp_socket_mode(int blocking)
{
    test_net_start();
#ifdef _WIN32
    SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    cr_assert_neq(s, INVALID_SOCKET, "WSASocketW: %d", WSAGetLastError());
    int fd = weft__sock_fd(s);
    if (!blocking)
        cr_assert_eq(weft__sock_nonblock(fd), 0);
#else
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
    cr_assert_geq(fd, 0);
#endif
    return fd;
}

static inline int test_tcp_socket(void)
{
    return test_tcp_socket_mode(0);
}

/* For connect()/accept() made with blocking calls, outside the loop. */
static inline int test_tcp_socket_blocking(void)
{
    return test_tcp_socket_mode(1);
}

static inline void test_nonblock(int fd)
{
#ifdef _WIN32
    cr_assert_eq(weft__sock_nonblock(fd), 0);
#else
    cr_assert_geq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
#endif
}

/* A non-blocking connect() that may be in progress: true if it started. */
static inline int test_connect_started(int fd, const struct sockaddr_in *addr)
{
#ifdef _WIN32
    if (connect(weft__sock(fd), (const struct sockaddr *)addr, sizeof *addr) == 0)
        return 1;
    return WSAGetLastError() == WSAEWOULDBLOCK;
#else
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0)
        return 1;
    return errno == EINPROGRESS;
#endif
}

/* Is fd an open socket? (After a CLOSE op it must not be.) */
static inline int test_fd_is_open(int fd)
{
#ifdef _WIN32
    int type = 0, len = sizeof type;
    return getsockopt(weft__sock(fd), SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0;
#else
    return fcntl(fd, F_GETFD) >= 0;
#endif
}

/* Is the socket non-blocking? Windows cannot tell directly: a receive on a
 * socket with nothing to read says WSAEWOULDBLOCK only when it is (a
 * blocking one would hang, and the test time out). */
static inline int test_is_nonblocking(int fd)
{
#ifdef _WIN32
    char c;
    return recv(weft__sock(fd), &c, 1, MSG_PEEK) < 0 && WSAGetLastError() == WSAEWOULDBLOCK;
#else
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
#endif
}

/* A TCP socket bound to 127.0.0.1 and a free port, written to *addr, that
 * never listens: a connect to *addr is refused while it stays open. A
 * closed listener's port would be free for the next bind(0), even for the
 * connecting socket's own (IOCP binds it before ConnectEx), which then
 * connects to itself and succeeds. */
static inline int test_tcp_refusing(struct sockaddr_in *addr)
{
    int fd = test_tcp_socket();
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
#ifdef _WIN32
    SOCKET s = weft__sock(fd);
#else
    int s = fd;
#endif
    cr_assert_eq(bind(s, (struct sockaddr *)addr, sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    cr_assert_eq(getsockname(s, (struct sockaddr *)addr, &len), 0);
    return fd;
}

/* A non-blocking TCP listener on 127.0.0.1 and a free port, written to *addr. */
static inline int test_tcp_listener(struct sockaddr_in *addr)
{
    int fd = test_tcp_refusing(addr);
#ifdef _WIN32
    cr_assert_eq(listen(weft__sock(fd), 1024), 0);
#else
    cr_assert_eq(listen(fd, 1024), 0);
#endif
    return fd;
}

/* A connected non-blocking stream pair: AF_UNIX on POSIX; on Windows
 * (where the suites must not depend on AF_UNIX) a loopback TCP pair made
 * with a listener, both ends overlapped and non-blocking. */
static inline void test_unix_pair(int sv[2])
{
#ifdef _WIN32
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int lfd = test_tcp_socket_blocking();
    SOCKET l = weft__sock(lfd);
    cr_assert_eq(bind(l, (struct sockaddr *)&addr, sizeof addr), 0);
    int len = sizeof addr;
    cr_assert_eq(getsockname(l, (struct sockaddr *)&addr, &len), 0);
    cr_assert_eq(listen(l, 1), 0);
    int c = test_tcp_socket_blocking();
    cr_assert_eq(connect(weft__sock(c), (struct sockaddr *)&addr, sizeof addr), 0, "connect: %d",
                 WSAGetLastError());
    /* accept() makes a socket like the listener: overlapped too. */
    SOCKET a = accept(l, NULL, NULL);
    cr_assert_neq(a, INVALID_SOCKET, "accept: %d", WSAGetLastError());
    weft__sock_close(lfd);
    /* Small writes go out at once, as on a Unix socket. */
    int one = 1;
    setsockopt(weft__sock(c), IPPROTO_TCP, TCP_NODELAY, (char *)&one, sizeof one);
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, (char *)&one, sizeof one);
    sv[0] = weft__sock_fd(a);
    sv[1] = c;
    test_nonblock(sv[0]);
    test_nonblock(sv[1]);
#else
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
#endif
}

/* Raise the soft RLIMIT_NOFILE towards want; returns the limit now.
 * Windows has no such limit on sockets. */
static inline int test_raise_nofile(int want)
{
#ifdef _WIN32
    return want;
#else
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (int)rl.rlim_cur;
#endif
}

/* setenv/unsetenv (mingw has _putenv_s, where "" removes the variable). */
static inline void test_setenv(const char *name, const char *value)
{
#ifdef _WIN32
    cr_assert_eq(_putenv_s(name, value), 0);
#else
    cr_assert_eq(setenv(name, value, 1), 0);
#endif
}

static inline void test_unsetenv(const char *name)
{
#ifdef _WIN32
    cr_assert_eq(_putenv_s(name, ""), 0);
#else
    cr_assert_eq(unsetenv(name), 0);
#endif
}

/* Run until nothing is pending; hangs are caught by each test's .timeout. */
static inline void test_run(weft_loop *loop)
{
    int rc = weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    cr_assert_eq(rc, 0, "run: %s", weft_strerror(rc));
}

#endif
