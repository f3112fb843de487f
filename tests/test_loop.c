/* Loop-level suite: scheduling plain functions, stop/re-run, cross-thread
 * wake-ups. Runs once per backend (WEFT_BACKEND). */
#include "common.h"

#include <pthread.h>
#include <string.h>

#define MS 1000000LL

typedef struct {
    int order[64];
    int n;
    weft_loop *loop;
} trace;

typedef struct {
    trace *t;
    int id;
    weft_handle h;
} rec;

static void record(void *arg)
{
    rec *r = arg;
    r->t->order[r->t->n++] = r->id;
}

static void expect_order(const trace *t, const int *want, int n)
{
    cr_assert_eq(t->n, n, "ran %d callbacks, want %d", t->n, n);
    for (int i = 0; i < n; i++)
        cr_assert_eq(t->order[i], want[i], "position %d: %d, want %d", i, t->order[i], want[i]);
}

TestSuite(loop, .timeout = 20);

Test(loop, call_soon_runs_fifo)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec r[5];
    for (int i = 0; i < 5; i++) {
        r[i] = (rec){.t = &t, .id = i};
        cr_assert_eq(weft_call_soon(loop, &r[i].h, record, &r[i]), 0);
    }
    test_run(loop);
    expect_order(&t, (int[]){0, 1, 2, 3, 4}, 5);
    test_loop_free(loop);
}

typedef struct {
    trace *t;
    weft_handle self, child;
    rec child_rec;
} reentrant;

static void schedule_child(void *arg)
{
    reentrant *re = arg;
    re->t->order[re->t->n++] = 1;
    cr_assert_eq(weft_call_soon(re->t->loop, &re->child_rec.h, record, &re->child_rec), 0);
}

Test(loop, callback_scheduled_by_callback_waits_for_next_iteration)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    reentrant re = {.t = &t, .child_rec = {.t = &t, .id = 3}};
    rec after = {.t = &t, .id = 2};
    cr_assert_eq(weft_call_soon(loop, &re.self, schedule_child, &re), 0);
    cr_assert_eq(weft_call_soon(loop, &after.h, record, &after), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_ONCE), 1); /* the child is still pending */
    expect_order(&t, (int[]){1, 2}, 2);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    expect_order(&t, (int[]){1, 2, 3}, 3);
    test_loop_free(loop);
}

Test(loop, call_later_fires_in_deadline_order)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec r[3] = {{.t = &t, .id = 1}, {.t = &t, .id = 2}, {.t = &t, .id = 3}};
    /* The lecture's call_later: 3 after 0.1 s... here 3, 2, 1 by delay. */
    cr_assert_eq(weft_call_later(loop, &r[0].h, 30 * MS, record, &r[0]), 0);
    cr_assert_eq(weft_call_later(loop, &r[1].h, 20 * MS, record, &r[1]), 0);
    cr_assert_eq(weft_call_later(loop, &r[2].h, 10 * MS, record, &r[2]), 0);
    uint64_t start = weft_loop_now(loop);
    test_run(loop);
    expect_order(&t, (int[]){3, 2, 1}, 3);
    cr_assert_geq(weft_loop_update_time(loop) - start, (uint64_t)30 * MS, "fired early");
    test_loop_free(loop);
}

Test(loop, equal_deadlines_run_in_scheduling_order)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec r[8];
    uint64_t when = weft_loop_now(loop) + 5 * MS;
    for (int i = 0; i < 8; i++) {
        r[i] = (rec){.t = &t, .id = i};
        cr_assert_eq(weft_call_at(loop, &r[i].h, when, record, &r[i]), 0);
    }
    test_run(loop);
    expect_order(&t, (int[]){0, 1, 2, 3, 4, 5, 6, 7}, 8);
    test_loop_free(loop);
}

Test(loop, call_later_zero_and_past_deadline_run_next_iteration)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec a = {.t = &t, .id = 1}, b = {.t = &t, .id = 2};
    cr_assert_eq(weft_call_later(loop, &a.h, 0, record, &a), 0);
    cr_assert_eq(weft_call_at(loop, &b.h, 1, record, &b), 0); /* long past: earlier deadline */
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    expect_order(&t, (int[]){2, 1}, 2);
    test_loop_free(loop);
}

Test(loop, cancel_before_fire)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec a = {.t = &t, .id = 1}, b = {.t = &t, .id = 2}, c = {.t = &t, .id = 3};
    cr_assert_eq(weft_call_later(loop, &a.h, 1 * MS, record, &a), 0);
    cr_assert_eq(weft_call_later(loop, &b.h, 2 * MS, record, &b), 0);
    cr_assert_eq(weft_call_soon(loop, &c.h, record, &c), 0);
    cr_assert_eq(weft_handle_cancel(loop, &a.h), 0);
    cr_assert_eq(weft_handle_cancel(loop, &c.h), 0);
    cr_assert_not(weft_handle_pending(&a.h));
    test_run(loop);
    expect_order(&t, (int[]){2}, 1);
    test_loop_free(loop);
}

Test(loop, cancel_twice_is_an_error)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec a = {.t = &t, .id = 1};
    cr_assert_eq(weft_call_later(loop, &a.h, MS, record, &a), 0);
    cr_assert_eq(weft_handle_cancel(loop, &a.h), 0);
    cr_assert_eq(weft_handle_cancel(loop, &a.h), -EALREADY);
    /* Never scheduled, and already run. */
    rec b = {.t = &t, .id = 2};
    cr_assert_eq(weft_handle_cancel(loop, &b.h), -EALREADY);
    cr_assert_eq(weft_call_soon(loop, &b.h, record, &b), 0);
    test_run(loop);
    cr_assert_eq(weft_handle_cancel(loop, &b.h), -EALREADY);
    expect_order(&t, (int[]){2}, 1);
    test_loop_free(loop);
}

typedef struct {
    trace *t;
    weft_handle h;
    weft_handle *victim;
} canceller;

static void cancel_victim(void *arg)
{
    canceller *c = arg;
    c->t->order[c->t->n++] = 0;
    cr_assert_eq(weft_handle_cancel(c->t->loop, c->victim), 0);
}

Test(loop, cancel_from_inside_a_callback)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec same_batch = {.t = &t, .id = 1}, timer = {.t = &t, .id = 2}, kept = {.t = &t, .id = 3};
    canceller c1 = {.t = &t, .victim = &same_batch.h};
    canceller c2 = {.t = &t, .victim = &timer.h};
    cr_assert_eq(weft_call_soon(loop, &c1.h, cancel_victim, &c1), 0);
    cr_assert_eq(weft_call_soon(loop, &same_batch.h, record, &same_batch), 0);
    cr_assert_eq(weft_call_soon(loop, &c2.h, cancel_victim, &c2), 0);
    cr_assert_eq(weft_call_later(loop, &timer.h, 5 * MS, record, &timer), 0);
    cr_assert_eq(weft_call_soon(loop, &kept.h, record, &kept), 0);
    test_run(loop);
    expect_order(&t, (int[]){0, 0, 3}, 3);
    test_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    weft_handle h;
    int fired;
    int limit;
} periodic;

static void tick(void *arg)
{
    periodic *p = arg;
    /* Rescheduling the handle from its own callback is allowed. */
    if (++p->fired < p->limit)
        cr_assert_eq(weft_call_later(p->loop, &p->h, MS / 10, tick, p), 0);
}

Test(loop, handle_reschedules_itself)
{
    weft_loop *loop = test_loop_new();
    periodic p = {.loop = loop, .limit = 20};
    cr_assert_eq(weft_call_later(loop, &p.h, 0, tick, &p), 0);
    test_run(loop);
    cr_assert_eq(p.fired, 20);
    test_loop_free(loop);
}

Test(loop, busy_handle_is_refused)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec a = {.t = &t, .id = 1};
    cr_assert_eq(weft_call_soon(loop, &a.h, record, &a), 0);
    cr_assert_eq(weft_call_soon(loop, &a.h, record, &a), -EBUSY);
    cr_assert_eq(weft_call_later(loop, &a.h, 1, record, &a), -EBUSY);
    cr_assert_eq(weft_call_soon_threadsafe(loop, &a.h, record, &a), -EBUSY);
    test_run(loop);
    expect_order(&t, (int[]){1}, 1);
    test_loop_free(loop);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct {
    weft_loop *loop;
    weft_handle h;
    uint64_t when;
    uint64_t *last;
    int *count;
} ordered;

static void check_order(void *arg)
{
    ordered *o = arg;
    cr_assert_geq(o->when, *o->last, "timer out of order");
    cr_assert_geq(weft_loop_now(o->loop), o->when, "timer fired before its deadline");
    *o->last = o->when;
    (*o->count)++;
}

Test(loop, ten_thousand_scattered_timers_fire_sorted_with_cancels)
{
    weft_loop *loop = test_loop_new();
    enum { N = 10000 };
    ordered *o = calloc(N, sizeof *o);
    uint64_t last = 0, seed = 88172645463325252ull;
    int count = 0;
    uint64_t base = weft_loop_now(loop);
    for (int i = 0; i < N; i++) {
        o[i] = (ordered){.loop = loop, .last = &last, .count = &count};
        o[i].when = base + rng_next(&seed) % (20 * MS);
        cr_assert_eq(weft_call_at(loop, &o[i].h, o[i].when, check_order, &o[i]), 0);
    }
    for (int i = 0; i < N; i += 3)
        cr_assert_eq(weft_handle_cancel(loop, &o[i].h), 0);
    test_run(loop);
    cr_assert_eq(count, N - (N + 2) / 3);
    free(o);
    test_loop_free(loop);
}

static void stop_loop(void *arg)
{
    trace *t = arg;
    t->order[t->n++] = 100;
    cr_assert_eq(weft_loop_stop(t->loop), 0);
}

Test(loop, stop_finishes_the_iteration_and_run_again_resumes)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    weft_handle s = WEFT_HANDLE_INIT;
    rec same = {.t = &t, .id = 1}, later = {.t = &t, .id = 2};
    cr_assert_eq(weft_call_soon(loop, &s, stop_loop, &t), 0);
    cr_assert_eq(weft_call_soon(loop, &same.h, record, &same), 0);
    cr_assert_eq(weft_call_later(loop, &later.h, 300 * MS, record, &later), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_FOREVER), 1); /* the timer is still pending */
    expect_order(&t, (int[]){100, 1}, 2);
    test_run(loop);
    expect_order(&t, (int[]){100, 1, 2}, 3);
    test_loop_free(loop);
}

Test(loop, stop_before_run_does_one_iteration)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec a = {.t = &t, .id = 1};
    cr_assert_eq(weft_call_later(loop, &a.h, 60000 * MS, record, &a), 0);
    cr_assert_eq(weft_loop_stop(loop), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_FOREVER), 1);
    cr_assert_eq(t.n, 0);
    cr_assert_eq(weft_handle_cancel(loop, &a.h), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE), 0);
    test_loop_free(loop);
}

Test(loop, run_once_blocks_until_a_timer)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec a = {.t = &t, .id = 7};
    cr_assert_eq(weft_call_later(loop, &a.h, 3 * MS, record, &a), 0);
    /* ONCE may return early (the timeout rounds); it must not busy-spin past it. */
    int spins = 0;
    while (t.n == 0 && spins < 100) {
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
        spins++;
    }
    cr_assert_eq(t.n, 1);
    cr_assert_lt(spins, 5, "RUN_ONCE spun %d times", spins);
    test_loop_free(loop);
}

/* Several threads post callbacks while the loop sleeps in the kernel. */
enum { THREADS = 4, PER_THREAD = 500 };

typedef struct {
    weft_loop *loop;
    weft_handle h[PER_THREAD];
    int *counter;
} poster;

static void count_and_maybe_stop(void *arg)
{
    poster *p = arg;
    if (++*p->counter == THREADS * PER_THREAD)
        weft_loop_stop(p->loop);
}

static void *post_all(void *arg)
{
    poster *p = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        cr_assert_eq(weft_call_soon_threadsafe(p->loop, &p->h[i], count_and_maybe_stop, p), 0);
        if (i % 100 == 0) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL); /* let the loop fall asleep again */
        }
    }
    return NULL;
}

Test(loop, threadsafe_wakeup_from_several_threads)
{
    weft_loop *loop = test_loop_new();
    int counter = 0;
    poster *p = calloc(THREADS, sizeof *p);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        p[i] = (poster){.loop = loop, .counter = &counter};
        pthread_create(&th[i], NULL, post_all, &p[i]);
    }
    /* Nothing else is scheduled: only the wake-ups can end this run. */
    cr_assert_geq(weft_loop_run(loop, WEFT_RUN_FOREVER), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(counter, THREADS * PER_THREAD);
    free(p);
    test_loop_free(loop);
}

Test(loop, threadsafe_handle_cannot_be_cancelled)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec a = {.t = &t, .id = 1};
    cr_assert_eq(weft_call_soon_threadsafe(loop, &a.h, record, &a), 0);
    cr_assert_eq(weft_handle_cancel(loop, &a.h), -EPERM);
    test_run(loop);
    expect_order(&t, (int[]){1}, 1);
    test_loop_free(loop);
}

Test(loop, free_with_pending_callbacks_drops_them)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    rec a = {.t = &t, .id = 1}, b = {.t = &t, .id = 2}, c = {.t = &t, .id = 3};
    cr_assert_eq(weft_call_soon(loop, &a.h, record, &a), 0);
    cr_assert_eq(weft_call_later(loop, &b.h, MS, record, &b), 0);
    cr_assert_eq(weft_call_soon_threadsafe(loop, &c.h, record, &c), 0);
    test_loop_free(loop);
    cr_assert_eq(t.n, 0);
    cr_assert_not(weft_handle_pending(&a.h));
    cr_assert_not(weft_handle_pending(&b.h));
}

static void try_recursive_run(void *arg)
{
    trace *t = arg;
    cr_assert_eq(weft_loop_run(t->loop, WEFT_RUN_NOWAIT), -EBUSY);
    cr_assert_eq(weft_loop_free(t->loop), -EBUSY);
    t->n++;
}

Test(loop, no_recursive_run_or_free_from_a_callback)
{
    weft_loop *loop = test_loop_new();
    trace t = {.loop = loop};
    weft_handle h = WEFT_HANDLE_INIT;
    cr_assert_eq(weft_call_soon(loop, &h, try_recursive_run, &t), 0);
    test_run(loop);
    cr_assert_eq(t.n, 1);
    test_loop_free(loop);
}

Test(loop, clock_is_monotonic_nanoseconds)
{
    weft_loop *loop = test_loop_new();
    uint64_t a = weft_loop_update_time(loop);
    struct timespec ts = {0, 2 * 1000000};
    nanosleep(&ts, NULL);
    uint64_t b = weft_loop_update_time(loop);
    cr_assert_geq(b - a, (uint64_t)2 * MS);
    cr_assert_lt(b - a, (uint64_t)2000 * MS);
    cr_assert_eq(weft_loop_now(loop), b);
    test_loop_free(loop);
}
