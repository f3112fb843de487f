/* Helpers shared by the networking suites (test_net, test_stream,
 * test_server): run a task to completion, loopback listeners, patterns. */
#ifndef WEFT_TEST_NET_COMMON_H
#define WEFT_TEST_NET_COMMON_H

#include "common.h"

#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MS 1000000LL

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

/* Raise the soft descriptor limit to the hard one. */
static inline void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
