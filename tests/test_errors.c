/* Loop-level suite: error codes by name (weft_err_name) beside their
 * messages (weft_strerror), also for errors a loop really returns. Runs
 * once per backend. */
#include "common.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

TestSuite(errors, .timeout = 30);

Test(errors, errno_codes_have_their_names)
{
    cr_assert_str_eq(weft_err_name(-EAGAIN), "EAGAIN");
    if (EWOULDBLOCK == EAGAIN) /* Linux */
        cr_assert_str_eq(weft_err_name(-EWOULDBLOCK), "EAGAIN", "an alias gives the first name");
    else /* mingw: two codes */
        cr_assert_str_eq(weft_err_name(-EWOULDBLOCK), "EWOULDBLOCK");
    cr_assert_str_eq(weft_err_name(-EINVAL), "EINVAL");
    cr_assert_str_eq(weft_err_name(-ECANCELED), "ECANCELED");
    cr_assert_str_eq(weft_err_name(-ECONNREFUSED), "ECONNREFUSED");
    cr_assert_str_eq(weft_err_name(-ETIMEDOUT), "ETIMEDOUT");
    cr_assert_str_eq(weft_err_name(-EMSGSIZE), "EMSGSIZE");
    cr_assert_str_eq(weft_err_name(-ENOMEM), "ENOMEM");
    cr_assert_str_eq(weft_err_name(-EDEADLK), "EDEADLK");
}

Test(errors, weft_codes_have_their_names)
{
    cr_assert_str_eq(weft_err_name(WEFT_EUNKNOWN_BACKEND), "WEFT_EUNKNOWN_BACKEND");
    cr_assert_str_eq(weft_err_name(WEFT_ENOT_COMPILED), "WEFT_ENOT_COMPILED");
    cr_assert_str_eq(weft_err_name(WEFT_EUNAVAILABLE), "WEFT_EUNAVAILABLE");
    cr_assert_str_eq(weft_err_name(WEFT_ECLOSED), "WEFT_ECLOSED");
    /* Every code of weft's own that has a message has a name too (a new
     * WEFT_E* code must be added to both). */
    for (int e = -4000; e > -4100; e--) {
        int has_message = strcmp(weft_strerror(e), "unknown error") != 0;
        const char *name = weft_err_name(e);
        cr_assert_eq(has_message, name != NULL, "code %d: message and name disagree", e);
        if (name)
            cr_assert_eq(strncmp(name, "WEFT_E", 6), 0, "code %d: %s", e, name);
    }
}

Test(errors, no_name_for_what_is_not_an_error_code)
{
    cr_assert_null(weft_err_name(0));
    cr_assert_null(weft_err_name(EINVAL), "weft's codes are negative");
    cr_assert_null(weft_err_name(-3999), "no errno that large");
    cr_assert_null(weft_err_name(-4999));
    cr_assert_null(weft_err_name(INT_MIN));
    cr_assert_null(weft_err_name(INT_MAX));
}

/* Every name is unique to its code and looks like a constant. */
Test(errors, names_are_distinct_constants)
{
    const char *seen[4000] = {0};
    for (int e = 1; e < 4000; e++) { /* errno values; weft's own start at -4001 */
        const char *name = weft_err_name(-e);
        seen[e] = name;
        if (!name)
            continue;
        cr_assert_eq(name[0], 'E', "code %d: %s", -e, name);
        /* glibc says "Unknown error N", mingw "Unknown error". */
        cr_assert_neq(strncasecmp(weft_strerror(-e), "unknown error", 13), 0, "%s has no message",
                      name);
        for (int k = 1; k < e; k++)
            if (seen[k])
                cr_assert_str_neq(seen[k], name, "%s names both %d and %d", name, -k, -e);
    }
}

/* What a loop and a task really return, by name. */
static int cancelled_wait(void *arg, intptr_t *result)
{
    (void)result;
    return weft_wait_cancelled(arg);
}

Test(errors, names_of_errors_a_loop_returns)
{
    weft_loop *loop = NULL;
    weft_loop_opts bad = {.backend = WEFT_BACKEND__COUNT};
    cr_assert_str_eq(weft_err_name(weft_loop_new(&bad, &loop)), "EINVAL");
    cr_assert_str_eq(weft_err_name(weft_backend_from_name("no-such-backend")),
                     "WEFT_EUNKNOWN_BACKEND");
    loop = test_loop_new();
    cr_assert_str_eq(weft_err_name(weft_wait_cancelled(loop)), "EPERM", "not in a task");
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, cancelled_wait, loop, &t), 0);
    cr_assert_str_eq(weft_err_name(weft_run_until_complete(loop, t, NULL)), "EDEADLK");
    weft_future_cancel(t);
    cr_assert_str_eq(weft_err_name(weft_run_until_complete(loop, t, NULL)), "ECANCELED");
    weft_future_unref(t);
    test_loop_free(loop);
}
