/* Loop-level suite: futures and tasks (await, sleep, yield, cancel at every
 * suspension point, errors, run_until_complete, many tasks). Runs once per
 * backend. */
#include "common.h"
#include "weft_config.h"

#if WEFT_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include <string.h>

#define MS 1000000LL

TestSuite(task, .timeout = 30);

typedef struct {
    int hits[16];
    int n;
} log_t;

static void log_cb(weft_future *f, void *arg)
{
    log_t *l = arg;
    intptr_t v = -1;
    weft_future_result(f, &v);
    l->hits[l->n++] = (int)v;
}

Test(task, done_callbacks_run_in_order_through_the_loop)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    cr_assert_eq(weft_future_new(loop, &f), 0);
    log_t l = {0};
    cr_assert_eq(weft_future_add_done_callback(f, log_cb, &l), 0);
    cr_assert_eq(weft_future_add_done_callback(f, log_cb, &l), 0);
    cr_assert_eq(weft_future_set_result(f, 7), 0);
    cr_assert_eq(l.n, 0, "done-callbacks must not run inline");
    cr_assert_eq(weft_future_set_result(f, 8), -EALREADY);
    cr_assert_eq(weft_future_set_error(f, -EIO), -EALREADY);
    /* Added after completion: scheduled at once, after the others. */
    cr_assert_eq(weft_future_add_done_callback(f, log_cb, &l), 0);
    cr_assert_eq(weft_future_unref(f), 0); /* the callbacks keep it alive */
    test_run(loop);
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.hits[0], 7);
    cr_assert_eq(l.hits[2], 7);
    test_loop_free(loop);
}

Test(task, future_states_and_results)
{
    weft_loop *loop = test_loop_new();
    weft_future *a, *b, *c;
    cr_assert_eq(weft_future_new(loop, &a), 0);
    cr_assert_eq(weft_future_new(loop, &b), 0);
    cr_assert_eq(weft_future_new(loop, &c), 0);
    intptr_t v = 0;
    cr_assert_eq(weft_future_result(a, &v), -EAGAIN);
    cr_assert_eq(weft_future_state(a), WEFT_FUTURE_PENDING);
    cr_assert_eq(weft_future_set_error(a, 5), -EINVAL, "an error must be negative");
    cr_assert_eq(weft_future_set_error(a, -EIO), 0);
    cr_assert_eq(weft_future_result(a, &v), -EIO);
    cr_assert_eq(weft_future_cancel(b), 0);
    cr_assert_eq(weft_future_cancel(b), -EALREADY);
    cr_assert_eq(weft_future_state(b), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(weft_future_result(b, &v), -ECANCELED);
    log_t l = {0};
    cr_assert_eq(weft_future_add_done_callback(c, log_cb, &l), 0);
    cr_assert_eq(weft_future_add_done_callback(c, log_cb, &l), 0);
    cr_assert_eq(weft_future_remove_done_callback(c, log_cb, &l), 2);
    cr_assert_eq(weft_future_set_result(c, 1), 0);
    test_run(loop);
    cr_assert_eq(l.n, 0);
    weft_future_unref(a);
    weft_future_unref(b);
    weft_future_unref(c);
    test_loop_free(loop);
}

static int return_42(void *arg, intptr_t *result)
{
    (void)arg;
    *result = 42;
    return 0;
}

Test(task, run_until_complete_returns_the_result)
{
    weft_loop *loop = test_loop_new();
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, return_42, NULL, &t), 0);
    cr_assert(weft_future_is_task(t));
    intptr_t v = 0;
    cr_assert_eq(weft_run_until_complete(loop, t, &v), 0);
    cr_assert_eq(v, 42);
    weft_future_unref(t);
    test_loop_free(loop);
}

static int fail_eio(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

typedef struct {
    weft_loop *loop;
    weft_future *inner;
    intptr_t got;
    int rc;
    int steps;
} awaiter;

static int await_inner(void *arg, intptr_t *result)
{
    awaiter *a = arg;
    a->rc = weft_await(a->inner, &a->got);
    *result = a->got + 1;
    return a->rc;
}

Test(task, a_task_error_reaches_its_awaiter)
{
    weft_loop *loop = test_loop_new();
    awaiter a = {.loop = loop};
    cr_assert_eq(weft_task_spawn(loop, fail_eio, NULL, &a.inner), 0);
    weft_future *outer;
    cr_assert_eq(weft_task_spawn(loop, await_inner, &a, &outer), 0);
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, outer, &v), -EIO);
    cr_assert_eq(a.rc, -EIO);
    weft_future_unref(a.inner);
    weft_future_unref(outer);
    test_loop_free(loop);
}

Test(task, await_of_an_already_done_future_does_not_suspend)
{
    weft_loop *loop = test_loop_new();
    awaiter a = {.loop = loop};
    cr_assert_eq(weft_future_new(loop, &a.inner), 0);
    cr_assert_eq(weft_future_set_result(a.inner, 9), 0);
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, await_inner, &a, &t), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_ONCE), 0, "finished in its first step");
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_DONE);
    intptr_t v;
    cr_assert_eq(weft_future_result(t, &v), 0);
    cr_assert_eq(v, 10);
    weft_future_unref(a.inner);
    weft_future_unref(t);
    test_loop_free(loop);
}

typedef struct {
    int calls;
    int err;
} err_seen;

static void on_unretrieved(weft_loop *loop, weft_future *f, int err, void *arg)
{
    (void)loop;
    (void)f;
    err_seen *e = arg;
    e->calls++;
    e->err = err;
}

Test(task, an_error_nobody_awaited_is_reported)
{
    weft_loop *loop = test_loop_new();
    err_seen e = {0};
    cr_assert_eq(weft_loop_set_error_handler(loop, on_unretrieved, &e), 0);
    cr_assert_eq(weft_task_spawn(loop, fail_eio, NULL, NULL), 0); /* detached */
    weft_future *kept;
    cr_assert_eq(weft_task_spawn(loop, fail_eio, NULL, &kept), 0); /* never awaited */
    test_run(loop);
    cr_assert_eq(e.calls, 1, "the detached one, when freed");
    test_loop_free(loop); /* the kept one, at loop close */
    cr_assert_eq(e.calls, 2);
    cr_assert_eq(e.err, -EIO);
}

static int sleeper(void *arg, intptr_t *result)
{
    awaiter *a = arg;
    uint64_t t0 = weft_loop_update_time(a->loop);
    a->rc = weft_sleep(a->loop, 20 * MS);
    *result = (intptr_t)(weft_loop_update_time(a->loop) - t0);
    return a->rc;
}

Test(task, sleep_and_cancel_during_sleep)
{
    weft_loop *loop = test_loop_new();
    awaiter a = {.loop = loop}, b = {.loop = loop};
    weft_future *ta, *tb;
    cr_assert_eq(weft_task_spawn(loop, sleeper, &a, &ta), 0);
    cr_assert_eq(weft_task_spawn(loop, sleeper, &b, &tb), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1); /* both asleep */
    cr_assert_eq(weft_future_cancel(tb), 0);
    intptr_t slept;
    cr_assert_eq(weft_run_until_complete(loop, ta, &slept), 0);
    cr_assert_geq(slept, 20 * MS);
    cr_assert_eq(b.rc, -ECANCELED);
    cr_assert_eq(weft_future_state(tb), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(weft_future_cancel(tb), -EALREADY);
    weft_future_unref(ta);
    weft_future_unref(tb);
    test_loop_free(loop);
}

static int never_runs(void *arg, intptr_t *result)
{
    (void)result;
    ++*(int *)arg;
    return 0;
}

Test(task, cancel_before_start_never_runs_the_body)
{
    weft_loop *loop = test_loop_new();
    int ran = 0;
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, never_runs, &ran, &t), 0);
    cr_assert_eq(weft_future_cancel(t), 0);
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, t, &v), -ECANCELED);
    cr_assert_eq(ran, 0);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(task, cancel_while_awaiting_a_future_cancels_it)
{
    weft_loop *loop = test_loop_new();
    awaiter a = {.loop = loop};
    cr_assert_eq(weft_future_new(loop, &a.inner), 0);
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, await_inner, &a, &t), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0); /* suspended on a future */
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_PENDING);
    cr_assert_eq(weft_future_cancel(t), 0);
    intptr_t v;
    /* The body swallows nothing: it returns the -ECANCELED it got. */
    cr_assert_eq(weft_run_until_complete(loop, t, &v), -ECANCELED);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(weft_future_state(a.inner), WEFT_FUTURE_CANCELLED);
    weft_future_unref(a.inner);
    weft_future_unref(t);
    test_loop_free(loop);
}

static int cleans_up_after_cancel(void *arg, intptr_t *result)
{
    awaiter *a = arg;
    a->rc = weft_sleep(a->loop, 10 * 1000 * MS);
    /* Cancelled: clean up (which may suspend again) and finish normally. */
    cr_assert_eq(weft_sleep(a->loop, 1 * MS), 0);
    *result = 99;
    return 0;
}

Test(task, a_cancelled_task_may_clean_up_and_finish)
{
    weft_loop *loop = test_loop_new();
    awaiter a = {.loop = loop};
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, cleans_up_after_cancel, &a, &t), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_future_cancel(t), 0);
    intptr_t v = 0;
    cr_assert_eq(weft_run_until_complete(loop, t, &v), 0);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(v, 99);
    weft_future_unref(t);
    test_loop_free(loop);
}

static int cancel_self_then_yield(void *arg, intptr_t *result)
{
    awaiter *a = arg;
    (void)result;
    cr_assert_eq(weft_future_cancel(weft_task_current(a->loop)), 0);
    a->steps++;
    a->rc = weft_yield(a->loop); /* the pending cancel is delivered here */
    return a->rc;
}

Test(task, cancel_of_a_running_task_is_delivered_at_its_next_suspension)
{
    weft_loop *loop = test_loop_new();
    awaiter a = {.loop = loop};
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, cancel_self_then_yield, &a, &t), 0);
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, t, &v), -ECANCELED);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(a.steps, 1);
    weft_future_unref(t);
    test_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    int fd;
    char buf[8];
    int64_t got;
} reader;

static int read_one(void *arg, intptr_t *result)
{
    reader *r = arg;
    weft_op op; /* lives in this frame until the backend hands it back */
    weft_op_prep_recv(&op, r->fd, r->buf, sizeof r->buf, 0, NULL, NULL);
    r->got = weft_await_op(r->loop, &op);
    *result = (intptr_t)r->got;
    return r->got < 0 ? (int)r->got : 0;
}

Test(task, await_op_suspends_only_that_task)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    reader r = {.loop = loop, .fd = sv[0]};
    weft_future *t, *other;
    cr_assert_eq(weft_task_spawn(loop, read_one, &r, &t), 0);
    cr_assert_eq(weft_task_spawn(loop, return_42, NULL, &other), 0);
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, other, &v), 0, "the reader blocked the loop");
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_PENDING);
    cr_assert_eq(test_write(sv[1], "data", 4), 4);
    cr_assert_eq(weft_run_until_complete(loop, t, &v), 0);
    cr_assert_eq(v, 4);
    cr_assert_eq(memcmp(r.buf, "data", 4), 0);
    weft_future_unref(t);
    weft_future_unref(other);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(task, cancel_with_an_op_in_flight)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    reader r = {.loop = loop, .fd = sv[0]};
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, read_one, &r, &t), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_future_cancel(t), 0);
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, t, &v), -ECANCELED);
    cr_assert_eq(r.got, -ECANCELED);
    weft_future_unref(t);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(task, suspending_calls_outside_a_task_are_refused)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    cr_assert_eq(weft_future_new(loop, &f), 0);
    intptr_t v;
    weft_op op;
    weft_op_prep_poll_in(&op, 0, NULL, NULL);
    cr_assert_eq(weft_await(f, &v), -EPERM);
    cr_assert_eq(weft_sleep(loop, 0), -EPERM);
    cr_assert_eq(weft_yield(loop), -EPERM);
    cr_assert_eq(weft_await_op(loop, &op), -EPERM);
    cr_assert_null(weft_task_current(loop));
    cr_assert_eq(weft_await(NULL, &v), -EINVAL);
    cr_assert_eq(weft_task_spawn(NULL, return_42, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_task_spawn(loop, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_future_new(NULL, &f), -EINVAL);
    cr_assert_eq(weft_run_until_complete(loop, NULL, &v), -EINVAL);
    /* Nothing can ever finish f: run_until_complete says so instead of hanging. */
    cr_assert_eq(weft_run_until_complete(loop, f, &v), -EDEADLK);
    weft_future_unref(f);
    test_loop_free(loop);
}

static int await_self(void *arg, intptr_t *result)
{
    (void)result;
    weft_loop *loop = arg;
    intptr_t v;
    return weft_await(weft_task_current(loop), &v);
}

Test(task, a_task_awaiting_itself_is_an_error)
{
    weft_loop *loop = test_loop_new();
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, await_self, loop, &t), 0);
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, t, &v), -EDEADLK);
    weft_future_unref(t);
    test_loop_free(loop);
}

static int yield_n(void *arg, intptr_t *result)
{
    weft_loop *loop = arg;
    for (int i = 0; i < 3; i++)
        if (weft_yield(loop))
            return -EIO;
    *result = 1;
    return 0;
}

Test(task, one_hundred_thousand_concurrent_tasks)
{
    weft_loop *loop = test_loop_new();
    enum { MAX = 100000 };
    static weft_future *t[MAX];
    /* Under valgrind (run for memory errors, not scale) 2,000 will do. */
    int N = RUNNING_ON_VALGRIND ? 2000 : MAX;
    for (int i = 0; i < N; i++) {
        int rc = weft_task_spawn(loop, yield_n, loop, &t[i]);
        cr_assert_eq(rc, 0, "task %d: %s", i, weft_strerror(rc));
    }
    test_run(loop);
    for (int i = 0; i < N; i++) {
        intptr_t v = 0;
        cr_assert_eq(weft_future_result(t[i], &v), 0);
        cr_assert_eq(v, 1);
        weft_future_unref(t[i]);
    }
    test_loop_free(loop);
}

Test(task, loop_free_with_suspended_tasks)
{
    weft_loop *loop = test_loop_new();
    awaiter a = {.loop = loop};
    cr_assert_eq(weft_future_new(loop, &a.inner), 0);
    cr_assert_eq(weft_task_spawn(loop, await_inner, &a, NULL), 0);
    cr_assert_eq(weft_task_spawn(loop, sleeper, &a, NULL), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    test_loop_free(loop); /* frees the tasks, their stacks and the future */
}

Test(task, loop_free_with_done_callbacks_still_queued)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    log_t l = {0};
    cr_assert_eq(weft_future_new(loop, &f), 0);
    cr_assert_eq(weft_future_add_done_callback(f, log_cb, &l), 0);
    cr_assert_eq(weft_future_set_result(f, 1), 0);                 /* queued, not run */
    cr_assert_eq(weft_future_add_done_callback(f, log_cb, &l), 0); /* queued at once */
    weft_future_unref(f);
    test_loop_free(loop); /* frees the queued nodes too (LeakSanitizer/valgrind check it) */
    cr_assert_eq(l.n, 0);
}
