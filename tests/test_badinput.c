/* Every public entry point of the loop and ops with invalid arguments: each
 * returns an error and leaves the loop usable. Runs once per backend. */
#include "common.h"
#include "weft_config.h"

#include <string.h>

TestSuite(badinput, .timeout = 20);

static void nop(void *arg)
{
    (void)arg;
}

static void op_nop(weft_op *op)
{
    (void)op;
}

static void count(void *arg)
{
    ++*(int *)arg;
}

/* After the bad calls, the loop must still run callbacks. */
static void assert_usable(weft_loop *loop)
{
    int n = 0;
    weft_handle h = WEFT_HANDLE_INIT;
    cr_assert_eq(weft_call_soon(loop, &h, count, &n), 0);
    test_run(loop);
    cr_assert_eq(n, 1);
}

Test(badinput, loop_functions_reject_null)
{
    weft_handle h = WEFT_HANDLE_INIT;
    cr_assert_eq(weft_loop_new(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_loop_free(NULL), -EINVAL);
    cr_assert_eq(weft_loop_run(NULL, WEFT_RUN_NOWAIT), -EINVAL);
    cr_assert_eq(weft_loop_stop(NULL), -EINVAL);
    cr_assert_eq(weft_loop_now(NULL), 0);
    cr_assert_eq(weft_loop_update_time(NULL), 0);
    cr_assert_null(weft_loop_backend_name(NULL));
    cr_assert_eq(weft_loop_backend_info(NULL, NULL, 0), -EINVAL);
    cr_assert_eq(weft_call_soon(NULL, &h, nop, NULL), -EINVAL);
    cr_assert_eq(weft_call_later(NULL, &h, 0, nop, NULL), -EINVAL);
    cr_assert_eq(weft_call_at(NULL, &h, 0, nop, NULL), -EINVAL);
    cr_assert_eq(weft_call_soon_threadsafe(NULL, &h, nop, NULL), -EINVAL);
    cr_assert_eq(weft_handle_cancel(NULL, &h), -EINVAL);
    cr_assert_not(weft_handle_pending(NULL));
    cr_assert_eq(weft_handle_when(NULL), 0);
    cr_assert_eq(weft_op_submit(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_op_cancel(NULL, NULL), -EINVAL);
    cr_assert_not(weft_op_pending(NULL));
    cr_assert_eq(weft_loop_forget_fd(NULL, 0), -EINVAL);
}

Test(badinput, scheduling_rejects_bad_arguments)
{
    weft_loop *loop = test_loop_new();
    weft_handle h = WEFT_HANDLE_INIT;
    cr_assert_eq(weft_call_soon(loop, NULL, nop, NULL), -EINVAL);
    cr_assert_eq(weft_call_soon(loop, &h, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_call_later(loop, &h, -1, nop, NULL), -EINVAL);
    cr_assert_eq(weft_call_later(loop, &h, INT64_MIN, nop, NULL), -EINVAL);
    cr_assert_eq(weft_call_later(loop, NULL, 5, nop, NULL), -EINVAL);
    cr_assert_eq(weft_call_at(loop, &h, 0, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_call_soon_threadsafe(loop, &h, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_call_soon_threadsafe(loop, NULL, nop, NULL), -EINVAL);
    cr_assert_eq(weft_handle_cancel(loop, NULL), -EINVAL);
    cr_assert_eq(weft_handle_cancel(loop, &h), -EALREADY);
    cr_assert_not(weft_handle_pending(&h));
    /* A huge delay saturates instead of wrapping to "now". */
    cr_assert_eq(weft_call_later(loop, &h, INT64_MAX, nop, NULL), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert(weft_handle_pending(&h));
    cr_assert_eq(weft_handle_cancel(loop, &h), 0);
    cr_assert_eq(weft_loop_run(loop, (weft_run_mode)42), -EINVAL);
    cr_assert_eq(weft_loop_run(loop, (weft_run_mode)-1), -EINVAL);
    assert_usable(loop);
    test_loop_free(loop);
}

Test(badinput, ops_reject_bad_arguments)
{
    weft_loop *loop = test_loop_new();
    weft_op op;
    char buf[4];
    cr_assert_eq(weft_op_submit(loop, NULL), -EINVAL);
    memset(&op, 0, sizeof op);
    cr_assert_eq(weft_op_submit(loop, &op), -EINVAL, "WEFT_OP_NONE");
    weft_op_prep_recv(&op, 0, buf, sizeof buf, 0, NULL, NULL);
    cr_assert_eq(weft_op_submit(loop, &op), -EINVAL, "no callback");
    weft_op_prep_recv(&op, -1, buf, sizeof buf, 0, op_nop, NULL);
    cr_assert_eq(weft_op_submit(loop, &op), -EBADF);
    weft_op_prep_recv(&op, 0, NULL, 8, 0, op_nop, NULL);
    cr_assert_eq(weft_op_submit(loop, &op), -EINVAL, "NULL buffer with a length");
    weft_op_prep_connect(&op, 0, NULL, 0, op_nop, NULL);
    cr_assert_eq(weft_op_submit(loop, &op), -EINVAL, "connect without an address");
    weft_op_prep_recv(&op, 0, buf, sizeof buf, 0, op_nop, NULL);
    op.opcode = WEFT_OP__COUNT;
    cr_assert_eq(weft_op_submit(loop, &op), -EINVAL, "unknown opcode");
    cr_assert_eq(weft_op_cancel(loop, NULL), -EINVAL);
    weft_op_prep_recv(&op, 0, buf, sizeof buf, 0, op_nop, NULL);
    cr_assert_eq(weft_op_cancel(loop, &op), -EINVAL, "cancel of an op never submitted");
    cr_assert_eq(weft_loop_forget_fd(loop, -3), -EBADF);
    cr_assert_eq(weft_loop_forget_fd(loop, 12345), 0, "an fd the loop never saw");
    assert_usable(loop);
    test_loop_free(loop);
}

Test(badinput, submitting_an_op_twice_is_refused)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    char buf[4];
    weft_op op;
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, op_nop, NULL);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(weft_op_submit(loop, &op), -EBUSY);
    cr_assert_eq(weft_op_cancel(loop, &op), 0);
    test_run(loop);
    assert_usable(loop);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(badinput, backend_selection_errors)
{
    weft_loop *loop = NULL;
    weft_loop_opts opts = {.backend = (weft_backend_kind)99};
    cr_assert_eq(weft_loop_new(&opts, &loop), -EINVAL);
    cr_assert_null(loop);
    cr_assert_eq(weft_backend_from_name("nope"), WEFT_EUNKNOWN_BACKEND);
    cr_assert_eq(weft_backend_from_name(NULL), WEFT_EUNKNOWN_BACKEND);
    cr_assert_eq(weft_backend_from_name("epoll"), WEFT_BACKEND_EPOLL);
    cr_assert_null(weft_backend_name((weft_backend_kind)77));
    cr_assert_eq(weft_backend_probe(WEFT_BACKEND_AUTO), -EINVAL);
    cr_assert_eq(weft_backend_probe((weft_backend_kind)77), -EINVAL);
    cr_assert_eq(weft_backend_compiled((weft_backend_kind)77), 0);
#if WEFT_HAVE_IOCP
    /* epoll exists only on Linux. */
    opts.backend = WEFT_BACKEND_EPOLL;
    cr_assert_eq(weft_loop_new(&opts, &loop), WEFT_ENOT_COMPILED);
    cr_assert_eq(weft_backend_probe(WEFT_BACKEND_EPOLL), WEFT_ENOT_COMPILED);
#else
    /* IOCP exists only on Windows. */
    opts.backend = WEFT_BACKEND_IOCP;
    cr_assert_eq(weft_loop_new(&opts, &loop), WEFT_ENOT_COMPILED);
    cr_assert_eq(weft_backend_probe(WEFT_BACKEND_IOCP), WEFT_ENOT_COMPILED);
#endif
}

Test(badinput, unknown_backend_in_the_environment_is_an_error)
{
    test_setenv("WEFT_BACKEND", "bogus");
    weft_loop *loop = NULL;
    cr_assert_eq(weft_loop_new(NULL, &loop), WEFT_EUNKNOWN_BACKEND);
    cr_assert_null(loop);
#if WEFT_HAVE_IOCP
    /* Windows: IOCP is the one backend; the environment names another. */
    test_setenv("WEFT_BACKEND", "epoll");
    cr_assert_eq(weft_loop_new(NULL, &loop), WEFT_ENOT_COMPILED);
    weft_loop_opts opts = {.backend = WEFT_BACKEND_IOCP};
    const char *explicit_name = "iocp";
#else
    test_setenv("WEFT_BACKEND", "iocp");
    cr_assert_eq(weft_loop_new(NULL, &loop), WEFT_ENOT_COMPILED);
    weft_loop_opts opts = {.backend = WEFT_BACKEND_POLL};
    const char *explicit_name = "poll";
#endif
    /* An explicit choice in the options is not overridden. */
    test_net_start();
    cr_assert_eq(weft_loop_new(&opts, &loop), 0);
    cr_assert_str_eq(weft_loop_backend_name(loop), explicit_name);
    weft_loop_free(loop);
}

Test(badinput, strerror_explains_every_code)
{
    int codes[] = {0,
                   -EINVAL,
                   -ECANCELED,
                   -ECONNRESET,
                   WEFT_EUNKNOWN_BACKEND,
                   WEFT_ENOT_COMPILED,
                   WEFT_EUNAVAILABLE,
                   WEFT_ECLOSED,
                   -99999,
                   12345};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = weft_strerror(codes[i]);
        cr_assert_not_null(s);
        cr_assert_gt(strlen(s), 0);
    }
    cr_assert_str_eq(weft_strerror(-99999), "unknown error");
    cr_assert_str_neq(weft_strerror(-EINVAL), "unknown error");
    cr_assert_not_null(weft_version());
}
