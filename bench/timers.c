/* bench/timers: the "million timers" workload, weft against libuv in one
 * process. Deadlines are scattered (uniform random whole milliseconds in
 * [1, SPREAD]), the same for both; libuv's API takes milliseconds, so that
 * is the common unit. Workloads:
 *   fire    start N timers, then run the loop until every one has fired
 *   cancel  start N timers, then cancel them all in random order
 * Times are the loop thread's CPU time (waiting for deadlines is free), the
 * median of several repetitions run alternately (A B A B ...).
 *
 *   timers [--n N] [--reps R] [--spread MS] [--json]
 */
#include "bench_util.h"
#include "weft.h"

#ifdef HAVE_LIBUV
#include <uv.h>
#endif

typedef struct {
    uint64_t start, finish; /* CPU ns: starting the timers; running or cancelling them */
} phase;

typedef struct {
    const uint32_t *timeout_ms;
    const uint32_t *perm; /* cancel order */
    int n;
} workload;

static void count_fired(void *arg)
{
    ++*(int *)arg;
}

static phase weft_run(const workload *w, int cancel)
{
    weft_loop *loop;
    int rc = weft_loop_new(NULL, &loop);
    if (rc) {
        fprintf(stderr, "weft_loop_new: %s\n", weft_strerror(rc));
        exit(1);
    }
    weft_handle *h = calloc((size_t)w->n, sizeof *h);
    int fired = 0;
    phase p;
    uint64_t t0 = bench_cpu_ns();
    for (int i = 0; i < w->n; i++)
        weft_call_later(loop, &h[i], (int64_t)w->timeout_ms[i] * 1000000, count_fired, &fired);
    uint64_t t1 = bench_cpu_ns();
    if (cancel) {
        for (int i = 0; i < w->n; i++)
            weft_handle_cancel(loop, &h[w->perm[i]]);
    } else {
        weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    }
    uint64_t t2 = bench_cpu_ns();
    if (fired != (cancel ? 0 : w->n)) {
        fprintf(stderr, "weft: %d of %d timers fired\n", fired, w->n);
        exit(1);
    }
    p.start = t1 - t0;
    p.finish = t2 - t1;
    weft_loop_free(loop);
    free(h);
    return p;
}

#ifdef HAVE_LIBUV
static void uv_fired(uv_timer_t *t)
{
    ++*(int *)t->data;
}

static phase uv_run_workload(const workload *w, int cancel)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_t *t = calloc((size_t)w->n, sizeof *t);
    int fired = 0;
    phase p;
    uint64_t t0 = bench_cpu_ns();
    for (int i = 0; i < w->n; i++) {
        uv_timer_init(&loop, &t[i]);
        t[i].data = &fired;
        uv_timer_start(&t[i], uv_fired, w->timeout_ms[i], 0);
    }
    uint64_t t1 = bench_cpu_ns();
    if (cancel) {
        for (int i = 0; i < w->n; i++)
            uv_timer_stop(&t[w->perm[i]]);
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uint64_t t2 = bench_cpu_ns();
    if (fired != (cancel ? 0 : w->n)) {
        fprintf(stderr, "libuv: %d of %d timers fired\n", fired, w->n);
        exit(1);
    }
    p.start = t1 - t0;
    p.finish = t2 - t1;
    for (int i = 0; i < w->n; i++)
        uv_close((uv_handle_t *)&t[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(t);
    return p;
}
#endif

enum { MAX_REPS = 31, IMPLS = 2 };

typedef struct {
    const char *name;
    phase (*run)(const workload *, int);
    uint64_t start[MAX_REPS], finish[MAX_REPS], total[MAX_REPS];
} impl;

int main(int argc, char **argv)
{
    int n = (int)bench_opt(argc, argv, "--n", 1000000);
    int reps = (int)bench_opt(argc, argv, "--reps", 5);
    int spread = (int)bench_opt(argc, argv, "--spread", 500);
    int json = bench_has_flag(argc, argv, "--json");
    if (n < 1 || reps < 1 || reps > MAX_REPS || spread < 1) {
        fprintf(stderr, "usage: timers [--n N] [--reps 1..%d] [--spread MS] [--json]\n", MAX_REPS);
        return 2;
    }
    uint32_t *timeout = malloc((size_t)n * sizeof *timeout);
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        timeout[i] = 1 + (uint32_t)(bench_rand(&seed) % (uint64_t)spread);
        perm[i] = (uint32_t)i;
    }
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates: a scattered cancel order */
        int j = (int)(bench_rand(&seed) % (uint64_t)(i + 1));
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    workload w = {timeout, perm, n};

    weft_loop *probe;
    if (weft_loop_new(NULL, &probe) != 0)
        return 1;
    char weft_name[64];
    snprintf(weft_name, sizeof weft_name, "weft (%s)", weft_loop_backend_name(probe));
    weft_loop_free(probe);

    impl impls[IMPLS] = {{.name = weft_name, .run = weft_run}};
    int nimpl = 1;
#ifdef HAVE_LIBUV
    impls[nimpl++] = (impl){.name = "libuv", .run = uv_run_workload};
#endif
    const char *workloads[2] = {"fire", "cancel"};
    if (!json) {
        printf("timers: %d timers, deadlines scattered over 1..%d ms; thread CPU time, median of "
               "%d runs (A B A B ...)\n\n",
               n, spread, reps);
        printf("%-8s %-16s %10s %12s %10s %9s %9s\n", "workload", "impl", "start ms", "fire/cancel",
               "total ms", "ns/timer", "vs libuv");
    }
    for (int wl = 0; wl < 2; wl++) {
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < nimpl; i++) {
                phase p = impls[i].run(&w, wl == 1);
                impls[i].start[r] = p.start;
                impls[i].finish[r] = p.finish;
                impls[i].total[r] = p.start + p.finish;
            }
        uint64_t base = nimpl > 1 ? bench_median(impls[nimpl - 1].total, reps) : 0;
        for (int i = 0; i < nimpl; i++) {
            uint64_t s = bench_median(impls[i].start, reps);
            uint64_t f = bench_median(impls[i].finish, reps);
            uint64_t t = bench_median(impls[i].total, reps);
            double ratio = base ? (double)t / (double)base : 0;
            if (json)
                printf("{\"bench\":\"timers\",\"workload\":\"%s\",\"impl\":\"%s\",\"n\":%d,"
                       "\"reps\":%d,\"start_ms\":%.2f,\"finish_ms\":%.2f,\"total_ms\":%.2f,"
                       "\"ns_per_timer\":%.1f,\"ratio_to_libuv\":%.3f}\n",
                       workloads[wl], impls[i].name, n, reps, s / 1e6, f / 1e6, t / 1e6,
                       (double)t / n, ratio);
            else
                printf("%-8s %-16s %10.1f %12.1f %10.1f %9.1f %8.2fx\n", workloads[wl],
                       impls[i].name, s / 1e6, f / 1e6, t / 1e6, (double)t / n, ratio);
        }
    }
    free(timeout);
    free(perm);
    return 0;
}
