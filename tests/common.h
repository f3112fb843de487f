/* Helpers shared by the loop-level suites. Each suite runs once per backend:
 * meson sets WEFT_BACKEND, and a backend the OS refuses skips the tests. */
#ifndef WEFT_TEST_COMMON_H
#define WEFT_TEST_COMMON_H

#include "weft.h"

#include "harness.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

static inline weft_loop *test_loop_new(void)
{
    signal(SIGPIPE, SIG_IGN);
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

/* A connected non-blocking AF_UNIX stream pair. */
static inline void test_unix_pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* A non-blocking TCP listener on 127.0.0.1 and a free port, written to *addr. */
static inline int test_tcp_listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    cr_assert_eq(listen(fd, 1024), 0);
    return fd;
}

/* Raise the soft RLIMIT_NOFILE towards want; returns the limit now. */
static inline int test_raise_nofile(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (int)rl.rlim_cur;
}

/* Run until nothing is pending; hangs are caught by each test's .timeout. */
static inline void test_run(weft_loop *loop)
{
    int rc = weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    cr_assert_eq(rc, 0, "run: %s", weft_strerror(rc));
}

#endif
