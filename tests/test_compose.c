/* Loop-level suite: composition of futures (include/weft/compose.h):
 * gather (order, first error, return-errors, cancel), wait (modes,
 * timeout, cancel), wait_for (timeout cancels and waits for the inner
 * task), shield, bad input. Runs once per backend. */
#include "common.h"

#define MS 1000000LL

TestSuite(compose, .timeout = 30);

/* --- gather --- */

typedef struct {
    weft_loop *loop;
    int yields;
    intptr_t value;
    int err;
    int cleaned; /* set when a cancel was seen and the body cleaned up */
    int64_t sleep_ns;
} job_spec;

/* Yield `yields` times (or sleep), then return value or err. A cancel makes
 * it clean up over two more yields and return -ECANCELED. */
static int worker_task(void *arg, intptr_t *result)
{
    job_spec *j = arg;
    int rc = 0;
    for (int i = 0; i < j->yields && !rc; i++)
        rc = weft_yield(j->loop);
    if (!rc && j->sleep_ns)
        rc = weft_sleep(j->loop, j->sleep_ns);
    if (rc == -ECANCELED) {
        weft_yield(j->loop);
        weft_yield(j->loop);
        j->cleaned = 1;
        return rc;
    }
    *result = j->value;
    return j->err;
}

Test(compose, gather_keeps_results_in_order)
{
    weft_loop *loop = test_loop_new();
    job_spec js[3] = {{loop, 3, 10, 0, 0, 0}, {loop, 1, 20, 0, 0, 0}, {loop, 2, 30, 0, 0, 0}};
    weft_future *t[3], *g;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_task_spawn(loop, worker_task, &js[i], &t[i]), 0);
    cr_assert_eq(weft_gather(loop, t, 3, 0, &g), 0);
    intptr_t v = 0;
    cr_assert_eq(weft_run_until_complete(loop, g, &v), 0);
    cr_assert_eq(v, 3);
    intptr_t r[3];
    int e[3];
    cr_assert_eq(weft_gather_results(t, 3, r, e), 0);
    cr_assert_eq(r[0], 10);
    cr_assert_eq(r[1], 20);
    cr_assert_eq(r[2], 30);
    cr_assert_eq(e[0] | e[1] | e[2], 0);
    for (int i = 0; i < 3; i++)
        weft_future_unref(t[i]);
    weft_future_unref(g);
    test_loop_free(loop);
}

Test(compose, gather_of_nothing_and_of_done_futures)
{
    weft_loop *loop = test_loop_new();
    weft_future *g;
    cr_assert_eq(weft_gather(loop, NULL, 0, 0, &g), 0);
    cr_assert_eq(weft_future_state(g), WEFT_FUTURE_DONE);
    weft_future_unref(g);
    weft_future *f[2];
    weft_future_new(loop, &f[0]);
    weft_future_new(loop, &f[1]);
    weft_future_set_result(f[0], 1);
    weft_future_set_result(f[1], 2);
    cr_assert_eq(weft_gather(loop, f, 2, 0, &g), 0);
    test_run(loop);
    intptr_t v;
    cr_assert_eq(weft_future_result(g, &v), 0);
    cr_assert_eq(v, 2);
    intptr_t r[2];
    cr_assert_eq(weft_gather_results(f, 2, r, NULL), 0);
    cr_assert_eq(r[1], 2);
    weft_future_unref(g);
    weft_future_unref(f[0]);
    weft_future_unref(f[1]);
    test_loop_free(loop);
}

Test(compose, gather_first_error_cancels_the_rest)
{
    weft_loop *loop = test_loop_new();
    job_spec js[2] = {{loop, 1, 0, -EIO, 0, 0}, {loop, 0, 5, 0, 0, 1000 * MS}};
    weft_future *c[3], *g;
    weft_task_spawn(loop, worker_task, &js[0], &c[0]);
    weft_task_spawn(loop, worker_task, &js[1], &c[1]);
    weft_future_new(loop, &c[2]);
    cr_assert_eq(weft_gather(loop, c, 3, 0, &g), 0);
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, g, &v), -EIO);
    test_run(loop); /* the cancelled task cleans up */
    cr_assert_eq(weft_future_state(c[1]), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(js[1].cleaned, 1);
    cr_assert_eq(weft_future_state(c[2]), WEFT_FUTURE_CANCELLED);
    int e[3];
    cr_assert_eq(weft_gather_results(c, 3, NULL, e), -EIO);
    cr_assert_eq(e[1], -ECANCELED);
    for (int i = 0; i < 3; i++)
        weft_future_unref(c[i]);
    weft_future_unref(g);
    test_loop_free(loop);
}

Test(compose, gather_return_errors_waits_for_all)
{
    weft_loop *loop = test_loop_new();
    job_spec js[2] = {{loop, 1, 0, -EIO, 0, 0}, {loop, 3, 5, 0, 0, 0}};
    weft_future *c[3], *g;
    weft_task_spawn(loop, worker_task, &js[0], &c[0]);
    weft_task_spawn(loop, worker_task, &js[1], &c[1]);
    weft_future_new(loop, &c[2]);
    cr_assert_eq(weft_gather(loop, c, 3, WEFT_GATHER_RETURN_ERRORS, &g), 0);
    test_run(loop);
    cr_assert_eq(weft_future_state(g), WEFT_FUTURE_PENDING);
    weft_future_cancel(c[2]); /* a cancelled child is just an outcome here */
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, g, &v), 0);
    cr_assert_eq(v, 3);
    intptr_t r[3];
    int e[3];
    cr_assert_eq(weft_gather_results(c, 3, r, e), -EIO);
    cr_assert_eq(e[0], -EIO);
    cr_assert_eq(e[1], 0);
    cr_assert_eq(r[1], 5);
    cr_assert_eq(e[2], -ECANCELED);
    for (int i = 0; i < 3; i++)
        weft_future_unref(c[i]);
    weft_future_unref(g);
    test_loop_free(loop);
}

Test(compose, gather_child_cancelled_fails_the_gather)
{
    weft_loop *loop = test_loop_new();
    weft_future *c[2], *g;
    weft_future_new(loop, &c[0]);
    weft_future_new(loop, &c[1]);
    weft_gather(loop, c, 2, 0, &g);
    weft_future_cancel(c[0]);
    test_run(loop);
    cr_assert_eq(weft_future_result(g, NULL), -ECANCELED);
    cr_assert_eq(weft_future_state(c[1]), WEFT_FUTURE_CANCELLED);
    weft_future_unref(c[0]);
    weft_future_unref(c[1]);
    weft_future_unref(g);
    test_loop_free(loop);
}

typedef struct {
    weft_future *f;
    int rc;
    intptr_t v;
} await_spec;

static int await_task(void *arg, intptr_t *result)
{
    await_spec *a = arg;
    a->rc = weft_await(a->f, &a->v);
    *result = a->v;
    return a->rc;
}

Test(compose, cancelling_a_task_awaiting_gather_cancels_the_children)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 0, 5, 0, 0, 1000 * MS};
    weft_future *c[2], *g, *t;
    weft_task_spawn(loop, worker_task, &js, &c[0]);
    weft_future_new(loop, &c[1]);
    weft_gather(loop, c, 2, 0, &g);
    await_spec a = {g, 0, 0};
    weft_task_spawn(loop, await_task, &a, &t);
    weft_loop_run(loop, WEFT_RUN_ONCE);
    weft_future_cancel(t);
    test_run(loop);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(weft_future_state(g), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(weft_future_state(c[0]), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(weft_future_state(c[1]), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(js.cleaned, 1);
    weft_future_unref(c[0]);
    weft_future_unref(c[1]);
    weft_future_unref(g);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(compose, gather_bad_input_and_loop_free_while_pending)
{
    weft_loop *loop = test_loop_new(), *other = test_loop_new();
    weft_future *f, *foreign, *g;
    weft_future_new(loop, &f);
    weft_future_new(other, &foreign);
    weft_future *list[2] = {f, NULL};
    cr_assert_eq(weft_gather(NULL, list, 1, 0, &g), -EINVAL);
    cr_assert_eq(weft_gather(loop, list, 1, 0, NULL), -EINVAL);
    cr_assert_eq(weft_gather(loop, NULL, 1, 0, &g), -EINVAL);
    cr_assert_eq(weft_gather(loop, list, 2, 0, &g), -EINVAL);
    cr_assert_eq(weft_gather(loop, list, 1, 0x100, &g), -EINVAL);
    list[1] = foreign;
    cr_assert_eq(weft_gather(loop, list, 2, 0, &g), -EINVAL);
    cr_assert_eq(weft_gather_results(NULL, 1, NULL, NULL), -EINVAL);
    list[1] = NULL;
    cr_assert_eq(weft_gather_results(list, 2, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_gather_results(list, 1, NULL, NULL), -EAGAIN);
    /* A gather still pending at loop close is freed with the loop. */
    cr_assert_eq(weft_gather(loop, list, 1, 0, &g), 0);
    weft_future_unref(g);
    weft_future_unref(f);
    weft_future_unref(foreign);
    test_loop_free(loop);
    test_loop_free(other);
}

/* --- wait --- */

typedef struct {
    weft_loop *loop;
    weft_future **fs;
    size_t n;
    int mode;
    int64_t timeout;
    int rc;
    size_t done;
} wait_spec;

static int wait_task(void *arg, intptr_t *result)
{
    (void)result;
    wait_spec *w = arg;
    w->rc = weft_wait(w->loop, w->fs, w->n, w->mode, w->timeout, &w->done);
    return 0;
}

static void run_task(weft_loop *loop, weft_task_fn fn, void *arg)
{
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, fn, arg, &t), 0);
    cr_assert_eq(weft_run_until_complete(loop, t, NULL), 0);
    weft_future_unref(t);
}

Test(compose, wait_first_completed_and_all_completed)
{
    weft_loop *loop = test_loop_new();
    job_spec js[3] = {{loop, 5, 1, 0, 0, 0}, {loop, 1, 2, 0, 0, 0}, {loop, 3, 3, 0, 0, 0}};
    weft_future *t[3];
    for (int i = 0; i < 3; i++)
        weft_task_spawn(loop, worker_task, &js[i], &t[i]);
    wait_spec w = {loop, t, 3, WEFT_WAIT_FIRST_COMPLETED, -1, 1, 0};
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.done, 1);
    cr_assert_eq(weft_future_state(t[1]), WEFT_FUTURE_DONE);
    cr_assert_eq(weft_future_state(t[0]), WEFT_FUTURE_PENDING, "nothing is cancelled");
    w.mode = WEFT_WAIT_ALL_COMPLETED;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.done, 3);
    /* Already done: returns at once, also with timeout 0. */
    w.timeout = 0;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, 0);
    for (int i = 0; i < 3; i++)
        weft_future_unref(t[i]);
    test_loop_free(loop);
}

Test(compose, wait_first_error)
{
    weft_loop *loop = test_loop_new();
    job_spec js[2] = {{loop, 1, 1, 0, 0, 0}, {loop, 3, 0, -EIO, 0, 0}};
    weft_future *t[3];
    weft_task_spawn(loop, worker_task, &js[0], &t[0]);
    weft_task_spawn(loop, worker_task, &js[1], &t[1]);
    weft_future_new(loop, &t[2]);
    wait_spec w = {loop, t, 3, WEFT_WAIT_FIRST_ERROR, -1, 1, 0};
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.done, 2);
    cr_assert_eq(weft_future_result(t[1], NULL), -EIO);
    cr_assert_eq(weft_future_state(t[2]), WEFT_FUTURE_PENDING);
    for (int i = 0; i < 3; i++)
        weft_future_unref(t[i]);
    test_loop_free(loop);
}

Test(compose, wait_timeout_leaves_futures_pending)
{
    weft_loop *loop = test_loop_new();
    weft_future *f[2];
    weft_future_new(loop, &f[0]);
    weft_future_new(loop, &f[1]);
    wait_spec w = {loop, f, 2, WEFT_WAIT_ALL_COMPLETED, 0, 1, 9};
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -ETIMEDOUT, "timeout 0 only checks");
    cr_assert_eq(w.done, 0);
    weft_future_set_result(f[0], 1);
    w.timeout = 20 * MS;
    uint64_t t0 = weft_loop_update_time(loop);
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -ETIMEDOUT);
    cr_assert_eq(w.done, 1);
    cr_assert_geq(weft_loop_update_time(loop) - t0, (uint64_t)20 * MS);
    cr_assert_eq(weft_future_state(f[1]), WEFT_FUTURE_PENDING);
    weft_future_unref(f[0]);
    weft_future_unref(f[1]);
    test_loop_free(loop);
}

Test(compose, wait_cancelled_returns_ecanceled_and_cancels_nothing)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    weft_future_new(loop, &f);
    wait_spec w = {loop, &f, 1, WEFT_WAIT_FIRST_COMPLETED, -1, 1, 9};
    weft_future *t;
    weft_task_spawn(loop, wait_task, &w, &t);
    test_run(loop);
    weft_future_cancel(t);
    test_run(loop);
    cr_assert_eq(w.rc, -ECANCELED);
    cr_assert_eq(w.done, 0);
    cr_assert_eq(weft_future_state(f), WEFT_FUTURE_PENDING);
    weft_future_unref(f);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(compose, wait_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    weft_future_new(loop, &f);
    size_t d;
    cr_assert_eq(weft_wait(loop, &f, 1, 0, -1, &d), -EPERM);
    wait_spec w = {loop, &f, 0, WEFT_WAIT_FIRST_COMPLETED, -1, 1, 0};
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -EINVAL, "an empty list, as asyncio");
    w.n = 1;
    w.mode = 7;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -EINVAL);
    w.mode = 0;
    w.timeout = -2;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -EINVAL);
    w.timeout = -1;
    w.fs = NULL;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -EINVAL);
    cr_assert_eq(weft_wait(NULL, &f, 1, 0, -1, &d), -EINVAL);
    weft_future_unref(f);
    test_loop_free(loop);
}

/* --- wait_for --- */

typedef struct {
    weft_future *f;
    int64_t timeout;
    int rc;
    intptr_t v;
    int inner_cleaned_at_return;
    job_spec *inner;
} wait_for_spec;

static int wait_for_task(void *arg, intptr_t *result)
{
    (void)result;
    wait_for_spec *w = arg;
    w->rc = weft_wait_for(w->f, w->timeout, &w->v);
    if (w->inner)
        w->inner_cleaned_at_return = w->inner->cleaned;
    return 0;
}

Test(compose, wait_for_in_time_returns_the_result)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 2, 77, 0, 0, 0};
    weft_future *t;
    weft_task_spawn(loop, worker_task, &js, &t);
    wait_for_spec w = {t, 1000 * MS, 1, 0, 0, NULL};
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.v, 77);
    /* Done already: even timeout 0 gives the result. */
    w.timeout = 0;
    w.v = 0;
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.v, 77);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(compose, wait_for_timeout_cancels_and_waits_for_the_inner_task)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 0, 5, 0, 0, 1000 * MS};
    weft_future *t;
    weft_task_spawn(loop, worker_task, &js, &t);
    wait_for_spec w = {t, 10 * MS, 1, 0, 0, &js};
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, -ETIMEDOUT);
    cr_assert_eq(w.inner_cleaned_at_return, 1, "returned only after the inner task finished");
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_CANCELLED);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(compose, wait_for_timeout_zero_on_a_pending_future)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    weft_future_new(loop, &f);
    wait_for_spec w = {f, 0, 1, 0, 0, NULL};
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, -ETIMEDOUT);
    cr_assert_eq(weft_future_state(f), WEFT_FUTURE_CANCELLED);
    weft_future_unref(f);
    test_loop_free(loop);
}

/* Ignores the first cancel and returns a value anyway. */
static int stubborn(void *arg, intptr_t *result)
{
    weft_loop *loop = arg;
    if (weft_sleep(loop, 1000 * MS) == -ECANCELED)
        weft_yield(loop);
    *result = 99;
    return 0;
}

Test(compose, wait_for_returns_the_result_of_an_inner_task_that_ignored_the_cancel)
{
    weft_loop *loop = test_loop_new();
    weft_future *t;
    weft_task_spawn(loop, stubborn, loop, &t);
    wait_for_spec w = {t, 5 * MS, 1, 0, 0, NULL};
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.v, 99);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(compose, wait_for_cancelled_caller_cancels_the_inner_one)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 0, 5, 0, 0, 1000 * MS};
    weft_future *inner, *t;
    weft_task_spawn(loop, worker_task, &js, &inner);
    wait_for_spec w = {inner, -1, 1, 0, 0, &js};
    weft_task_spawn(loop, wait_for_task, &w, &t);
    weft_loop_run(loop, WEFT_RUN_ONCE); /* both suspended now */
    weft_future_cancel(t);
    test_run(loop);
    cr_assert_eq(w.rc, -ECANCELED);
    cr_assert_eq(w.inner_cleaned_at_return, 1);
    cr_assert_eq(weft_future_state(inner), WEFT_FUTURE_CANCELLED);
    weft_future_unref(inner);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(compose, wait_for_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    weft_future_new(loop, &f);
    cr_assert_eq(weft_wait_for(NULL, -1, NULL), -EINVAL);
    cr_assert_eq(weft_wait_for(f, -5, NULL), -EINVAL);
    cr_assert_eq(weft_wait_for(f, -1, NULL), -EPERM);
    weft_future_unref(f);
    test_loop_free(loop);
}

/* --- shield --- */

Test(compose, shield_cancel_of_the_outer_leaves_the_inner_running)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 3, 42, 0, 0, 0};
    weft_future *inner, *outer, *t;
    weft_task_spawn(loop, worker_task, &js, &inner);
    cr_assert_eq(weft_shield(inner, &outer), 0);
    await_spec a = {outer, 0, 0};
    weft_task_spawn(loop, await_task, &a, &t);
    weft_loop_run(loop, WEFT_RUN_ONCE);
    weft_future_cancel(t); /* cancels outer through the await */
    test_run(loop);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(weft_future_state(outer), WEFT_FUTURE_CANCELLED);
    intptr_t v;
    cr_assert_eq(weft_future_result(inner, &v), 0);
    cr_assert_eq(v, 42);
    weft_future_unref(outer);
    weft_future_unref(t);
    /* Outcomes are copied: result, error, cancel, and an already-done one. */
    weft_future *f[3], *o[3];
    for (int i = 0; i < 3; i++) {
        weft_future_new(loop, &f[i]);
        cr_assert_eq(weft_shield(f[i], &o[i]), 0);
    }
    weft_future_set_result(f[0], 7);
    weft_future_set_error(f[1], -EIO);
    weft_future_cancel(f[2]);
    test_run(loop);
    cr_assert_eq(weft_future_result(o[0], &v), 0);
    cr_assert_eq(v, 7);
    cr_assert_eq(weft_future_result(o[1], &v), -EIO);
    cr_assert_eq(weft_future_state(o[2]), WEFT_FUTURE_CANCELLED);
    weft_future *done;
    cr_assert_eq(weft_shield(f[0], &done), 0);
    cr_assert_eq(weft_future_result(done, &v), 0);
    cr_assert_eq(v, 7);
    weft_future_unref(done);
    for (int i = 0; i < 3; i++) {
        weft_future_unref(f[i]);
        weft_future_unref(o[i]);
    }
    cr_assert_eq(weft_shield(NULL, &done), -EINVAL);
    cr_assert_eq(weft_shield(inner, NULL), -EINVAL);
    weft_future_unref(inner);
    test_loop_free(loop);
}
