/* Helpers shared by the loop-level suites. Each suite runs once per backend:
 * meson sets WEFT_BACKEND, and a backend the OS refuses skips the tests. */
#ifndef WEFT_TEST_COMMON_H
#define WEFT_TEST_COMMON_H

#include "weft.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

static inline weft_loop *test_loop_new(void)
{
    signal(SIGPIPE, SIG_IGN);
    weft_loop *loop = NULL;
    int rc = weft_loop_new(&loop, NULL);
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

/* Run until nothing is pending; hangs are caught by each test's .timeout. */
static inline void test_run(weft_loop *loop)
{
    int rc = weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    cr_assert_eq(rc, 0, "run: %s", weft_strerror(rc));
}

#endif
