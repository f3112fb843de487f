/* The harness checking itself: tests that must pass, fail, skip or time out,
 * run by tests/harness/meson.build with a filter each and an expected
 * outcome (expect.sh also reads the summary line). */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static int inited;

static void suite_init(void)
{
    inited = 1;
}

static void test_init(void)
{
    inited = 2;
}

TestSuite(selfcheck, .init = suite_init, .timeout = 10);

Test(selfcheck, pass_all_macros)
{
    const char *s = "abc";
    int *none = NULL;
    cr_assert(1);
    cr_assert(s[0] == 'a', "with a message %d", 1);
    cr_assert_not(0);
    cr_assert_null(none);
    cr_assert_not_null(s);
    cr_assert_eq(2 + 2, 4);
    cr_assert_neq(2, 3, "msg");
    cr_assert_lt(1, 2);
    cr_assert_leq(2, 2);
    cr_assert_gt(3, 2);
    cr_assert_geq(3, 3);
    cr_assert_str_eq(s, "abc");
    cr_assert_str_neq(s, "abd");
    cr_log_info("a log line %s", "here");
}

Test(selfcheck, pass_suite_init)
{
    cr_assert_eq(inited, 1, "the suite's .init ran");
}

Test(selfcheck, pass_test_init, .init = test_init)
{
    cr_assert_eq(inited, 2, "the test's .init replaces the suite's");
}

Test(selfcheck, fail_eq)
{
    cr_assert_eq(1, 2, "one is not two");
}

Test(selfcheck, fail_str)
{
    cr_assert_str_eq("abc", "abd");
}

Test(selfcheck, fail_null_str)
{
    cr_assert_str_eq(NULL, "x");
}

Test(selfcheck, fail_assert_not)
{
    cr_assert_not(1);
}

Test(selfcheck, fail_crash)
{
    abort();
}

Test(selfcheck, fail_exit)
{
    exit(3);
}

Test(selfcheck, fail_timeout, .timeout = 1)
{
    for (;;)
        ;
}

Test(selfcheck, skip_me)
{
    cr_skip_test("skipped on purpose (%d)", 77);
    cr_assert(0, "a skipped test goes no further");
}

Test(selfcheck, skip_disabled, .disabled = 1)
{
    cr_assert(0, "a disabled test does not run");
}
