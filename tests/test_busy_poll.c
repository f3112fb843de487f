/* Busy polling (weft_loop_opts.busy_poll_us): the loop spins instead of
 * sleeping, yet timers, I/O and cross-thread callbacks end the spin at
 * once. Runs once per backend (WEFT_BACKEND). */
#include "common.h"
#include "loop_internal.h"

#include <pthread.h>
#include <time.h>
#ifndef _WIN32
#include <sys/resource.h>
#endif

#define MS 1000000LL

TestSuite(busy_poll, .timeout = 30);

static weft_loop *loop_with_spin(uint32_t us)
{
    weft_loop_opts opts = {.busy_poll_us = us};
    weft_loop *loop = NULL;
    int rc = weft_loop_new(&opts, &loop);
    if (rc == WEFT_EUNAVAILABLE)
        cr_skip_test("backend %s unavailable here", getenv("WEFT_BACKEND"));
    cr_assert_eq(rc, 0, "weft_loop_new: %s", weft_strerror(rc));
    return loop;
}

static int64_t clock_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set_flag(void *arg)
{
    *(int *)arg = 1;
}

/* How often this thread went to sleep of its own accord so far, or -1
 * where the system does not count it per thread (Windows: no getrusage). */
static long voluntary_sleeps(void)
{
#ifdef RUSAGE_THREAD
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0)
        return ru.ru_nvcsw;
#endif
    return -1;
}

typedef struct {
    int64_t cpu;        /* CPU time the thread used, ns */
    long sleeps;        /* voluntary context switches, -1 if unknown */
    long zero_polls;    /* backend polls that could not block */
    int64_t longest_ns; /* the longest timeout a backend poll was given */
} wait_cost;

/* A spy on the backend's poll: the spin is a run of polls with timeout 0,
 * whatever the system says about the thread. (Under wine each poll is a
 * call to the wine server, whose CPU time is not the thread's, and Windows
 * counts no voluntary switches per thread.) */
static const weft__vtable *real_vt;
static weft__vtable spy_vt;
static wait_cost *spied;

static int spy_poll(weft__backend *be, int64_t timeout_ns)
{
    if (timeout_ns == 0)
        spied->zero_polls++;
    if (timeout_ns > spied->longest_ns)
        spied->longest_ns = timeout_ns;
    return real_vt->poll(be, timeout_ns);
}

/* Wait 100 ms for a timer; returns what the wait cost the thread. */
static wait_cost cost_of_waiting_for_a_timer(weft_loop *loop)
{
    int fired = 0;
    weft_handle h = WEFT_HANDLE_INIT;
    wait_cost cost = {0};
    spied = &cost;
    real_vt = loop->backend->vt;
    spy_vt = *real_vt;
    spy_vt.poll = spy_poll;
    loop->backend->vt = &spy_vt;
    /* The deadline counts from the loop's clock: read it after t0, so the
     * timer cannot be due before t0 + 100 ms (valgrind makes the gap long). */
    long sleeps0 = voluntary_sleeps();
    int64_t cpu0 = clock_of(CLOCK_THREAD_CPUTIME_ID), t0 = clock_of(CLOCK_MONOTONIC);
    weft_loop_update_time(loop);
    cr_assert_eq(weft_call_later(loop, &h, 100 * MS, set_flag, &fired), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE), 0);
    int64_t wall = clock_of(CLOCK_MONOTONIC) - t0;
    cr_assert_eq(fired, 1);
    cr_assert_geq(wall, 99 * MS, "the timer fired after %lld ns", (long long)wall);
    cr_assert_lt(wall, 600 * MS, "the spin ran past the timer: %lld ns", (long long)wall);
    cost.cpu = clock_of(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    cost.sleeps = -1;
    loop->backend->vt = real_vt;
    long sleeps1 = voluntary_sleeps();
    if (sleeps0 >= 0 && sleeps1 >= 0)
        cost.sleeps = sleeps1 - sleeps0;
    return cost;
}

Test(busy_poll, rejects_a_spin_above_the_limit)
{
    weft_loop_opts opts = {.busy_poll_us = WEFT_BUSY_POLL_MAX_US + 1};
    weft_loop *loop = (weft_loop *)&opts;
    cr_assert_eq(weft_loop_new(&opts, &loop), -EINVAL);
    cr_assert_null(loop);
    test_loop_free(loop_with_spin(WEFT_BUSY_POLL_MAX_US));
}

/* The control: without the option the loop sleeps through the wait. */
Test(busy_poll, off_by_default_the_loop_sleeps)
{
    weft_loop *loop = test_loop_new();
    wait_cost cost = cost_of_waiting_for_a_timer(loop);
    cr_assert_lt(cost.cpu, 50 * MS, "%lld ns of CPU while sleeping", (long long)cost.cpu);
    if (cost.sleeps >= 0)
        cr_assert_geq(cost.sleeps, 1, "the thread never slept");
    cr_assert_geq(cost.longest_ns, 50 * MS, "the longest wait asked was %lld ns",
                  (long long)cost.longest_ns);
    test_loop_free(loop);
}

/* A 1 s spin ends at the timer's deadline, and the thread never sleeps.
 * CPU time alone cannot show it on a loaded machine (CI ran this beside
 * other tests on 2 cores and the spinning thread got 19 ms of 100), so a
 * wait that used little CPU passes if the thread never blocked; and the
 * backend's polls show the spin on every system (Windows cannot count the
 * thread's sleeps). */
Test(busy_poll, spins_until_the_next_timer)
{
    weft_loop *loop = loop_with_spin(WEFT_BUSY_POLL_MAX_US);
    wait_cost cost = cost_of_waiting_for_a_timer(loop);
    /* The spin polls without blocking; what is left of the timeout after
     * it is a sliver, never the 100 ms a sleeping loop asks for. */
    cr_assert_gt(cost.zero_polls, 1, "%ld polls with timeout 0", cost.zero_polls);
    cr_assert_lt(cost.longest_ns, 50 * MS, "a poll was asked to wait %lld ns",
                 (long long)cost.longest_ns);
    if (cost.cpu <= 20 * MS && cost.sleeps >= 0)
        cr_assert_eq(cost.sleeps, 0, "only %lld ns of CPU and %ld sleeps: no spin",
                     (long long)cost.cpu, cost.sleeps);
    test_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    int fd;        /* write a byte here after the delay, or -1 */
    weft_handle h; /* else post this callback */
    int ran;
} later;

static void stop_loop(void *arg)
{
    later *l = arg;
    l->ran = 1;
    weft_loop_stop(l->loop);
}

static void *act_after_20ms(void *arg)
{
    later *l = arg;
    struct timespec ts = {0, 20 * MS};
    nanosleep(&ts, NULL);
    if (l->fd >= 0)
        cr_assert_eq(test_write(l->fd, "x", 1), 1);
    else
        cr_assert_eq(weft_call_soon_threadsafe(l->loop, &l->h, stop_loop, l), 0);
    return NULL;
}

/* Runs the loop until `l` stops it; returns the wall time it took. */
static int64_t run_until_stopped(later *l)
{
    pthread_t th;
    int64_t t0 = clock_of(CLOCK_MONOTONIC);
    pthread_create(&th, NULL, act_after_20ms, l);
    cr_assert_geq(weft_loop_run(l->loop, WEFT_RUN_FOREVER), 0);
    pthread_join(th, NULL);
    return clock_of(CLOCK_MONOTONIC) - t0;
}

Test(busy_poll, a_threadsafe_callback_ends_the_spin)
{
    later l = {.loop = loop_with_spin(WEFT_BUSY_POLL_MAX_US), .fd = -1};
    int64_t wall = run_until_stopped(&l);
    cr_assert_eq(l.ran, 1);
    cr_assert_lt(wall, 600 * MS, "stopped after %lld ns", (long long)wall);
    test_loop_free(l.loop);
}

static void stop_on_recv(weft_op *op)
{
    later *l = op->data;
    l->ran = op->result == 1 ? 1 : -1;
    weft_loop_stop(l->loop);
}

Test(busy_poll, io_completes_during_the_spin)
{
    int sv[2];
    test_unix_pair(sv);
    later l = {.loop = loop_with_spin(WEFT_BUSY_POLL_MAX_US), .fd = sv[1]};
    char c = 0;
    weft_op op;
    weft_op_prep_recv(&op, sv[0], &c, 1, 0, stop_on_recv, &l);
    cr_assert_eq(weft_op_submit(l.loop, &op), 0);
    int64_t wall = run_until_stopped(&l);
    cr_assert_eq(l.ran, 1);
    cr_assert_eq(c, 'x');
    cr_assert_lt(wall, 600 * MS, "received after %lld ns", (long long)wall);
    test_loop_free(l.loop);
    test_close(sv[0]);
    test_close(sv[1]);
}
