/* bench/switch: the cost of a context switch and of a coroutine's life,
 * weft against boost.context's fcontext (libboost_context) and glibc's
 * ucontext, in one process.
 *
 *   switch   two contexts switching back and forth (resume + yield is two
 *            switches); ns per switch
 *   life     create + run to completion + destroy, with a pooled stack
 *            (weft: weft_coro_create from a warm pool; fcontext:
 *            make_fcontext on a reused stack + in + out; ucontext:
 *            makecontext on a reused stack + swapcontext in + out)
 *
 * Wall-clock time on one thread, the median of --reps repetitions, each
 * run alternately (weft, fcontext, ucontext, weft, ...).
 *
 *   switch [--n N] [--reps R] [--json]
 *   switch --count IMPL:WHAT [--n N]    (IMPL weft|fcontext, WHAT switch|life)
 *
 * --count runs one loop of n, untimed, for instruction counters: under
 * `valgrind --tool=callgrind`, the difference between two values of n
 * divided by their difference is the instructions per switch (x2: the loop
 * counts round trips) or per life (bench/RESULTS.md "issue 17").
 *
 * fcontext's entry points are plain C symbols in libboost_context
 * (jump_fcontext, make_fcontext: `nm -D` shows them unmangled), so they are
 * declared here; no C++ shim is needed. */
#include "bench_util.h"
#include "weft.h"
#include "weft_config.h"

#ifdef HAVE_FCONTEXT
typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));
#endif

#if defined(__linux__) && defined(__GLIBC__)
#define HAVE_UCONTEXT 1
#include <ucontext.h>
#endif

#define UCTX_DIV 50 /* ucontext is ~1 us per switch: N / UCTX_DIV iterations */
#define STACK (64 * 1024)

enum { IMPL_WEFT, IMPL_FCONTEXT, IMPL_UCONTEXT, NIMPL };
static const char *const impl_name[NIMPL] = {"weft", "fcontext", "ucontext"};

/* --- weft --- */

static void *weft_pingpong(weft_coro *self, void *arg)
{
    (void)arg;
    for (;;)
        weft_coro_yield(self, NULL, NULL);
    return NULL;
}

static void *weft_empty(weft_coro *self, void *arg)
{
    (void)self;
    return arg;
}

static double weft_switch(long n)
{
    weft_coro co;
    if (weft_coro_init(&co, NULL, weft_pingpong) != 0)
        exit(1);
    weft_coro_resume(&co, NULL, NULL);
    uint64_t t0 = bench_wall_ns();
    for (long i = 0; i < n; i++)
        weft_coro_resume(&co, NULL, NULL);
    uint64_t t1 = bench_wall_ns();
    weft_coro_destroy(&co);
    return (double)(t1 - t0) / (2.0 * (double)n);
}

static double weft_life(long n, weft_stack_pool *pool)
{
    uint64_t t0 = bench_wall_ns();
    for (long i = 0; i < n; i++) {
        weft_coro *co;
        if (weft_coro_create(pool, weft_empty, &co) != 0)
            exit(1);
        weft_coro_resume(co, NULL, NULL);
        weft_coro_destroy(co);
    }
    uint64_t t1 = bench_wall_ns();
    return (double)(t1 - t0) / (double)n;
}

/* --- boost fcontext --- */

#ifdef HAVE_FCONTEXT
static void fctx_pingpong(transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, NULL);
}

static void fctx_empty(transfer_t t)
{
    jump_fcontext(t.fctx, NULL); /* an fcontext function must not return */
}

static double fctx_switch(long n, char *stack)
{
    fcontext_t ctx = make_fcontext(stack + STACK, STACK, fctx_pingpong);
    transfer_t t = jump_fcontext(ctx, NULL);
    uint64_t t0 = bench_wall_ns();
    for (long i = 0; i < n; i++)
        t = jump_fcontext(t.fctx, NULL);
    uint64_t t1 = bench_wall_ns();
    return (double)(t1 - t0) / (2.0 * (double)n);
}

static double fctx_life(long n, char *stack)
{
    uint64_t t0 = bench_wall_ns();
    for (long i = 0; i < n; i++) {
        fcontext_t ctx = make_fcontext(stack + STACK, STACK, fctx_empty);
        jump_fcontext(ctx, NULL);
    }
    uint64_t t1 = bench_wall_ns();
    return (double)(t1 - t0) / (double)n;
}
#endif

/* --- glibc ucontext --- */

#ifdef HAVE_UCONTEXT
static ucontext_t uc_main, uc_co;

static void uc_pingpong(void)
{
    for (;;)
        swapcontext(&uc_co, &uc_main);
}

static void uc_empty(void)
{
    /* returning follows uc_link back to uc_main */
}

/* uc_co, ready to run fn on stack and come back to uc_main at its end. */
static void uc_make(void (*fn)(void), char *stack)
{
    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = STACK;
    uc_co.uc_link = &uc_main;
    makecontext(&uc_co, fn, 0);
}

static double uc_switch(long n, char *stack)
{
    uc_make(uc_pingpong, stack);
    swapcontext(&uc_main, &uc_co);
    uint64_t t0 = bench_wall_ns();
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_co);
    uint64_t t1 = bench_wall_ns();
    return (double)(t1 - t0) / (2.0 * (double)n);
}

static double uc_life(long n, char *stack)
{
    uint64_t t0 = bench_wall_ns();
    for (long i = 0; i < n; i++) {
        uc_make(uc_empty, stack);
        swapcontext(&uc_main, &uc_co);
    }
    uint64_t t1 = bench_wall_ns();
    return (double)(t1 - t0) / (double)n;
}
#endif

static int available(int impl)
{
    switch (impl) {
    case IMPL_WEFT:
        return 1;
    case IMPL_FCONTEXT:
#ifdef HAVE_FCONTEXT
        return 1;
#else
        return 0;
#endif
    default:
#ifdef HAVE_UCONTEXT
        return 1;
#else
        return 0;
#endif
    }
}

/* One measurement: ns per switch (life = 0) or per life (life = 1). */
static double measure(int impl, int life, long n, char *stack, weft_stack_pool *pool)
{
    (void)stack;
    switch (impl) {
    case IMPL_WEFT:
        return life ? weft_life(n, pool) : weft_switch(n);
#ifdef HAVE_FCONTEXT
    case IMPL_FCONTEXT:
        return life ? fctx_life(n, stack) : fctx_switch(n, stack);
#endif
#ifdef HAVE_UCONTEXT
    case IMPL_UCONTEXT:
        n /= UCTX_DIV;
        return life ? uc_life(n, stack) : uc_switch(n, stack);
#endif
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    enum { MAXREPS = 99 };
    long n = bench_opt(argc, argv, "--n", 5000000);
    int reps = (int)bench_opt(argc, argv, "--reps", 7);
    int json = bench_has_flag(argc, argv, "--json");
    if (n < UCTX_DIV || reps < 1 || reps > MAXREPS) {
        fprintf(stderr, "usage: switch [--n N>=%d] [--reps 1..%d] [--json]\n", UCTX_DIV, MAXREPS);
        return 2;
    }
    char *stack = malloc(STACK);
    weft_stack_pool *pool;
    if (!stack || weft_stack_pool_new(NULL, &pool) != 0)
        return 1;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--count") == 0) {
            const char *what = argv[i + 1];
            int impl = strncmp(what, "weft:", 5) == 0       ? IMPL_WEFT
                       : strncmp(what, "fcontext:", 9) == 0 ? IMPL_FCONTEXT
                                                            : -1;
            const char *colon = strchr(what, ':');
            if (impl < 0 || !available(impl) || !colon ||
                (strcmp(colon, ":switch") != 0 && strcmp(colon, ":life") != 0)) {
                fprintf(stderr, "switch: --count weft|fcontext:switch|life\n");
                return 2;
            }
            measure(impl, strcmp(colon, ":life") == 0, n, stack, pool);
            weft_stack_pool_free(pool);
            free(stack);
            return 0;
        }

    static double samples[2][NIMPL][MAXREPS];
    /* Warm up: map the pool's stack, fault in the pages, settle clocks. */
    for (int impl = 0; impl < NIMPL; impl++)
        if (available(impl)) {
            measure(impl, 0, n / 10, stack, pool);
            measure(impl, 1, n / 10, stack, pool);
        }
    for (int r = 0; r < reps; r++)
        for (int life = 0; life < 2; life++)
            for (int impl = 0; impl < NIMPL; impl++)
                if (available(impl))
                    samples[life][impl][r] = measure(impl, life, n, stack, pool);

    double med[2][NIMPL];
    for (int life = 0; life < 2; life++)
        for (int impl = 0; impl < NIMPL; impl++) {
            qsort(samples[life][impl], (size_t)reps, sizeof(double), cmp_double);
            med[life][impl] = samples[life][impl][reps / 2];
        }

    if (!json) {
        printf("switch: ns per switch (resume+yield = 2) and per create+run+destroy (pooled "
               "stack);\nwall clock, median of %d reps, n = %ld (ucontext n/%d); fp_control=%d\n",
               reps, n, UCTX_DIV, WEFT_FP_CONTROL);
        printf("%-10s %12s %12s %14s\n", "impl", "switch ns", "life ns", "switch vs weft");
    }
    for (int impl = 0; impl < NIMPL; impl++) {
        if (!available(impl))
            continue;
        if (json)
            printf("{\"bench\":\"switch\",\"impl\":\"%s\",\"fp_control\":%d,\"n\":%ld,\"reps\":%d,"
                   "\"switch_ns\":%.2f,\"life_ns\":%.2f}\n",
                   impl_name[impl], WEFT_FP_CONTROL, impl == IMPL_UCONTEXT ? n / UCTX_DIV : n, reps,
                   med[0][impl], med[1][impl]);
        else
            printf("%-10s %12.2f %12.2f %13.2fx\n", impl_name[impl], med[0][impl], med[1][impl],
                   med[0][impl] / med[0][IMPL_WEFT]);
    }
    if (!json && available(IMPL_FCONTEXT))
        printf("weft switch / fcontext switch = %.2f (target <= 0.6); weft life %.1f ns (target "
               "< 50)\n",
               med[0][IMPL_WEFT] / med[0][IMPL_FCONTEXT], med[1][IMPL_WEFT]);
    weft_stack_pool_free(pool);
    free(stack);
    return 0;
}
