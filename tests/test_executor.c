/* Loop-level suite: the executor (include/weft/executor.h): results and
 * errors delivered on the loop's thread, the loop kept busy while jobs run,
 * a wake-up every round, cancelled jobs, loop free with jobs running and
 * queued, bad input. Runs once per backend. */
#include "common.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000LL

TestSuite(executor, .timeout = 30);

/* --- executor --- */

static int double_it(void *arg, intptr_t *result)
{
    usleep(2000);
    *result = 2 * (intptr_t)arg;
    return 0;
}

static int fail_blocking(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

static int slow_job(void *arg, intptr_t *result)
{
    usleep((useconds_t)(intptr_t)arg);
    *result = 1;
    return 0;
}

Test(executor, executor_runs_jobs_and_reports_results_and_errors)
{
    weft_loop *loop = test_loop_new();
    weft_future *f[10], *g;
    for (intptr_t i = 0; i < 10; i++)
        cr_assert_eq(weft_run_in_executor(loop, double_it, (void *)i, &f[i]), 0);
    cr_assert_eq(weft_gather(loop, f, 10, 0, &g), 0);
    cr_assert_eq(weft_run_until_complete(loop, g, NULL), 0, "the loop waits for the pool");
    intptr_t r[10];
    cr_assert_eq(weft_gather_results(f, 10, r, NULL), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(r[i], 2 * i);
    weft_future *e;
    cr_assert_eq(weft_run_in_executor(loop, fail_blocking, NULL, &e), 0);
    cr_assert_eq(weft_run_until_complete(loop, e, NULL), -EIO);
    /* Detached job: runs; the loop stays busy until it is done. */
    cr_assert_eq(weft_run_in_executor(loop, slow_job, (void *)(intptr_t)1000, NULL), 0);
    test_run(loop);
    for (int i = 0; i < 10; i++)
        weft_future_unref(f[i]);
    weft_future_unref(g);
    weft_future_unref(e);
    test_loop_free(loop);
}

Test(executor, executor_cancelled_job_result_is_dropped)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    cr_assert_eq(weft_run_in_executor(loop, slow_job, (void *)(intptr_t)20000, &f), 0);
    cr_assert_eq(weft_future_cancel(f), 0);
    test_run(loop); /* returns once the job is back */
    cr_assert_eq(weft_future_state(f), WEFT_FUTURE_CANCELLED);
    weft_future_unref(f);
    test_loop_free(loop);
}

Test(executor, executor_loop_free_with_jobs_running_and_queued)
{
    weft_loop *loop = test_loop_new();
    for (int i = 0; i < 8; i++) {
        weft_future *f;
        cr_assert_eq(weft_run_in_executor(loop, slow_job, (void *)(intptr_t)30000, &f), 0);
        weft_future_unref(f);
    }
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    usleep(5000); /* some start */
    test_loop_free(loop);
}

/* A done-callback runs on the loop's thread: the pool hands results over
 * through weft_call_soon_threadsafe, never finishing a future itself. */
typedef struct on_thread {
    pthread_t loop_thread;
    int calls, on_loop_thread;
} on_thread;

static void note_thread(weft_future *f, void *arg)
{
    (void)f;
    on_thread *o = arg;
    o->calls++;
    o->on_loop_thread += pthread_equal(pthread_self(), o->loop_thread) != 0;
}

Test(executor, executor_results_arrive_on_the_loop_thread)
{
    weft_loop *loop = test_loop_new();
    on_thread o = {.loop_thread = pthread_self()};
    weft_future *f[6];
    for (intptr_t i = 0; i < 6; i++) {
        cr_assert_eq(weft_run_in_executor(loop, double_it, (void *)i, &f[i]), 0);
        cr_assert_eq(weft_future_add_done_callback(f[i], note_thread, &o), 0);
    }
    test_run(loop);
    cr_assert_eq(o.calls, 6);
    cr_assert_eq(o.on_loop_thread, 6);
    for (int i = 0; i < 6; i++) {
        intptr_t r;
        cr_assert_eq(weft_future_result(f[i], &r), 0);
        cr_assert_eq(r, 2 * i);
        weft_future_unref(f[i]);
    }
    test_loop_free(loop);
}

/* One job at a time, many rounds: each round's result must wake the loop
 * again (the wake handle is reposted once the previous batch is taken). */
Test(executor, executor_wakes_the_loop_every_round)
{
    weft_loop *loop = test_loop_new();
    for (intptr_t i = 0; i < 200; i++) {
        weft_future *f;
        cr_assert_eq(weft_run_in_executor(loop, slow_job, (void *)(intptr_t)(i % 3 ? 0 : 100), &f),
                     0);
        intptr_t r = 0;
        cr_assert_eq(weft_run_until_complete(loop, f, &r), 0, "round %d", (int)i);
        cr_assert_eq(r, 1);
        weft_future_unref(f);
    }
    test_loop_free(loop);
}

/* The pool opens no descriptor of its own: the next free descriptor is
 * the same before and while it runs. */
Test(executor, executor_opens_no_descriptor)
{
#ifdef _WIN32
    cr_skip_test("POSIX only: it reads the next free descriptor number (dup), and Windows "
                 "handles are not handed out lowest first");
#else
    weft_loop *loop = test_loop_new();
    int before = dup(0);
    cr_assert_geq(before, 0);
    close(before);
    weft_future *f;
    cr_assert_eq(weft_run_in_executor(loop, slow_job, (void *)(intptr_t)10000, &f), 0);
    int during = dup(0);
    close(during);
    cr_assert_eq(during, before);
    cr_assert_eq(weft_run_until_complete(loop, f, NULL), 0);
    weft_future_unref(f);
    test_loop_free(loop);
#endif
}

Test(executor, executor_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    cr_assert_eq(weft_run_in_executor(NULL, double_it, NULL, &f), -EINVAL);
    cr_assert_eq(weft_run_in_executor(loop, NULL, NULL, &f), -EINVAL);
    test_loop_free(loop);
}
