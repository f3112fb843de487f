/* Generators: the lecture's fib and grep, next/send/close with Python's
 * rules, yield-after-close, and delegation (yield from). */
#include "harness.h"
#include "weft/coro.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

TestSuite(gen, .timeout = 60);

static void *fib(weft_gen *g, void *arg)
{
    (void)arg;
    long a = 0, b = 1;
    while (weft_gen_yield(g, &a, NULL) == 0) {
        long t = a + b;
        a = b;
        b = t;
    }
    return NULL;
}

Test(gen, fib_first_ten)
{
    static const long want[10] = {0, 1, 1, 2, 3, 5, 8, 13, 21, 34};
    weft_gen g;
    cr_assert_eq(weft_gen_init(&g, NULL, fib, NULL), 0);
    cr_assert_eq(weft_gen_state(&g), WEFT_CORO_CREATED);
    for (int i = 0; i < 10; i++) {
        void *v = NULL;
        cr_assert_eq(weft_gen_next(&g, &v), 0);
        cr_assert_eq(*(long *)v, want[i]);
    }
    cr_assert_eq(weft_gen_state(&g), WEFT_CORO_SUSPENDED);
    cr_assert_eq(weft_gen_close(&g), 0);
    cr_assert_eq(weft_gen_state(&g), WEFT_CORO_DEAD);
    cr_assert_eq(weft_gen_next(&g, NULL), WEFT_ECLOSED);
    cr_assert_eq(weft_gen_close(&g), 0); /* idempotent */
    cr_assert_eq(weft_gen_destroy(&g), 0);
}

struct grep_state {
    const char *pattern;
    const char *printed[8];
    int nprinted;
    int cleaned;
};

static void *grep(weft_gen *g, void *arg)
{
    struct grep_state *s = arg;
    s->printed[s->nprinted++] = s->pattern; /* "Searching for <pattern>" */
    for (;;) {
        void *line = NULL;
        if (weft_gen_yield(g, NULL, &line) == WEFT_ECLOSED)
            break;
        if (line && strstr(line, s->pattern))
            s->printed[s->nprinted++] = line;
    }
    s->cleaned = 1;
    return NULL;
}

Test(gen, grep_send_close)
{
    struct grep_state s = {.pattern = "coroutine"};
    weft_gen *g = NULL;
    cr_assert_eq(weft_gen_create(NULL, grep, &s, &g), 0);
    cr_assert_eq(s.nprinted, 0); /* not started yet */
    cr_assert_eq(weft_gen_send(g, "too early", NULL), -EINVAL);
    cr_assert_eq(weft_gen_next(g, NULL), 0);
    cr_assert_eq(s.nprinted, 1);
    cr_assert_eq(weft_gen_send(g, "I love you", NULL), 0);
    cr_assert_eq(weft_gen_send(g, "Don't you love me?", NULL), 0);
    cr_assert_eq(weft_gen_send(g, "I love coroutines instead!", NULL), 0);
    cr_assert_eq(s.nprinted, 2);
    cr_assert(strcmp(s.printed[1], "I love coroutines instead!") == 0);
    cr_assert_eq(s.cleaned, 0);
    cr_assert_eq(weft_gen_close(g), 0);
    cr_assert_eq(s.cleaned, 1);
    cr_assert_eq(weft_gen_send(g, "after", NULL), WEFT_ECLOSED);
    cr_assert_eq(weft_gen_destroy(g), 0);
}

static void *never_runs(weft_gen *g, void *arg)
{
    (void)g;
    *(int *)arg = 1;
    return NULL;
}

Test(gen, close_before_start)
{
    int ran = 0;
    weft_gen g;
    cr_assert_eq(weft_gen_init(&g, NULL, never_runs, &ran), 0);
    cr_assert_eq(weft_gen_close(&g), 0);
    cr_assert_eq(weft_gen_state(&g), WEFT_CORO_DEAD);
    cr_assert_eq(weft_gen_next(&g, NULL), WEFT_ECLOSED);
    cr_assert_eq(ran, 0);
    cr_assert_eq(weft_gen_destroy(&g), 0);
}

static void *counts_to(weft_gen *g, void *arg)
{
    intptr_t n = (intptr_t)arg;
    for (intptr_t i = 0; i < n; i++)
        if (weft_gen_yield(g, (void *)i, NULL) != 0)
            return (void *)-1;
    return (void *)(n * 100);
}

Test(gen, return_value_is_stop_iteration)
{
    weft_gen g;
    void *v = NULL;
    cr_assert_eq(weft_gen_init(&g, NULL, counts_to, (void *)2), 0);
    cr_assert_eq(weft_gen_next(&g, &v), 0);
    cr_assert_eq((intptr_t)v, 0);
    cr_assert_eq(weft_gen_next(&g, &v), 0);
    cr_assert_eq((intptr_t)v, 1);
    cr_assert_eq(weft_gen_next(&g, &v), WEFT_CORO_DONE);
    cr_assert_eq((intptr_t)v, 200);
    cr_assert_eq(weft_gen_state(&g), WEFT_CORO_DEAD);
    cr_assert_eq(weft_gen_next(&g, &v), WEFT_ECLOSED);
    cr_assert_eq(weft_gen_close(&g), 0);
    cr_assert_eq(weft_gen_destroy(&g), 0);
}

/* A body that ignores the close and yields again: close reports -EPROTO;
 * a second close finds it willing. */
static void *stubborn(weft_gen *g, void *arg)
{
    int *closes = arg;
    while (*closes < 2) {
        if (weft_gen_yield(g, NULL, NULL) == WEFT_ECLOSED)
            (*closes)++;
    }
    return NULL;
}

Test(gen, yield_after_close_is_an_error)
{
    int closes = 0;
    weft_gen g;
    cr_assert_eq(weft_gen_init(&g, NULL, stubborn, &closes), 0);
    cr_assert_eq(weft_gen_next(&g, NULL), 0);
    cr_assert_eq(weft_gen_close(&g), -EPROTO);
    cr_assert_eq(closes, 1);
    cr_assert_eq(weft_gen_state(&g), WEFT_CORO_SUSPENDED);
    cr_assert_eq(weft_gen_next(&g, NULL), WEFT_ECLOSED); /* refused: it is closed */
    cr_assert_eq(weft_gen_close(&g), 0);
    cr_assert_eq(closes, 2);
    cr_assert_eq(weft_gen_state(&g), WEFT_CORO_DEAD);
    cr_assert_eq(weft_gen_destroy(&g), 0);
}

static void *self_advance(weft_gen *g, void *arg)
{
    (void)arg;
    cr_assert_eq(weft_gen_next(g, NULL), -EBUSY);
    cr_assert_eq(weft_gen_close(g), -EBUSY);
    cr_assert_eq(weft_gen_destroy(g), -EBUSY);
    cr_assert_eq(weft_gen_yield_from(g, g, NULL), -EINVAL);
    return NULL;
}

Test(gen, bad_input)
{
    weft_gen g, *gp = NULL;
    cr_assert_eq(weft_gen_init(NULL, NULL, fib, NULL), -EINVAL);
    cr_assert_eq(weft_gen_init(&g, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_gen_create(NULL, fib, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_gen_create(NULL, NULL, NULL, &gp), -EINVAL);
    cr_assert_eq(weft_gen_next(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_gen_send(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_gen_close(NULL), -EINVAL);
    cr_assert_eq(weft_gen_yield(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_gen_yield_from(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_gen_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_gen_state(NULL), -EINVAL);
    cr_assert_eq(weft_gen_init(&g, NULL, self_advance, NULL), 0);
    cr_assert_eq(weft_gen_yield(&g, NULL, NULL), -EINVAL); /* not from inside */
    cr_assert_eq(weft_gen_next(&g, NULL), WEFT_CORO_DONE);
    cr_assert_eq(weft_gen_destroy(&g), 0);
}

/* --- delegation --- */

struct deleg {
    int inner_cleaned, outer_cleaned;
    intptr_t inner_got[4];
    int ngot;
    weft_gen *outer; /* while it delegates to inner */
};

static void *inner(weft_gen *g, void *arg)
{
    struct deleg *d = arg;
    /* outer waits in yield_from: NORMAL, and not the one running. */
    cr_assert_eq(weft_gen_state(d->outer), WEFT_CORO_NORMAL);
    cr_assert_eq(weft_gen_state(g), WEFT_CORO_RUNNING);
    cr_assert_eq(weft_gen_yield_from(d->outer, g, NULL), -EINVAL);
    cr_assert_eq(weft_gen_next(d->outer, NULL), -EBUSY);
    for (intptr_t i = 10; i < 13; i++) {
        void *sent = NULL;
        if (weft_gen_yield(g, (void *)i, &sent) == WEFT_ECLOSED) {
            d->inner_cleaned = 1;
            return NULL;
        }
        d->inner_got[d->ngot++] = (intptr_t)sent;
    }
    return (void *)99;
}

static void *outer(weft_gen *g, void *arg)
{
    struct deleg *d = arg;
    weft_gen sub;
    void *result = NULL;
    if (weft_gen_yield(g, (void *)1, NULL) != 0)
        goto closed;
    cr_assert_eq(weft_gen_init(&sub, NULL, inner, d), 0);
    d->outer = g;
    int rc = weft_gen_yield_from(g, &sub, &result);
    cr_assert_eq(weft_gen_destroy(&sub), 0);
    if (rc == WEFT_ECLOSED)
        goto closed;
    cr_assert_eq(rc, 0);
    if (weft_gen_yield(g, result, NULL) != 0)
        goto closed;
    return (void *)7;
closed:
    d->outer_cleaned = 1;
    return NULL;
}

Test(gen, yield_from)
{
    struct deleg d;
    memset(&d, 0, sizeof d);
    weft_gen g;
    void *v = NULL;
    cr_assert_eq(weft_gen_init(&g, NULL, outer, &d), 0);
    cr_assert_eq(weft_gen_next(&g, &v), 0);
    cr_assert_eq((intptr_t)v, 1);
    cr_assert_eq(weft_gen_next(&g, &v), 0);
    cr_assert_eq((intptr_t)v, 10);
    cr_assert_eq(weft_gen_send(&g, (void *)5, &v), 0); /* goes to inner */
    cr_assert_eq((intptr_t)v, 11);
    cr_assert_eq(weft_gen_send(&g, (void *)6, &v), 0);
    cr_assert_eq((intptr_t)v, 12);
    cr_assert_eq(weft_gen_send(&g, (void *)7, &v), 0);
    cr_assert_eq((intptr_t)v, 99); /* inner's return value, yielded by outer */
    cr_assert_eq(weft_gen_next(&g, &v), WEFT_CORO_DONE);
    cr_assert_eq((intptr_t)v, 7);
    cr_assert_eq(d.ngot, 3);
    cr_assert_eq(d.inner_got[0], 5);
    cr_assert_eq(d.inner_got[1], 6);
    cr_assert_eq(d.inner_got[2], 7);
    cr_assert_eq(d.inner_cleaned + d.outer_cleaned, 0);
    cr_assert_eq(weft_gen_destroy(&g), 0);
}

Test(gen, close_propagates_through_yield_from)
{
    struct deleg d;
    memset(&d, 0, sizeof d);
    weft_gen g;
    void *v = NULL;
    cr_assert_eq(weft_gen_init(&g, NULL, outer, &d), 0);
    cr_assert_eq(weft_gen_next(&g, &v), 0);
    cr_assert_eq(weft_gen_next(&g, &v), 0);
    cr_assert_eq((intptr_t)v, 10);
    cr_assert_eq(weft_gen_close(&g), 0);
    cr_assert_eq(d.inner_cleaned, 1);
    cr_assert_eq(d.outer_cleaned, 1);
    cr_assert_eq(weft_gen_destroy(&g), 0);
}

/* Stackful delegation: a plain helper function yields on the generator's
 * behalf from deeper in its call stack. */
static int yield_range(weft_gen *g, intptr_t from, intptr_t to)
{
    for (intptr_t i = from; i < to; i++) {
        int rc = weft_gen_yield(g, (void *)i, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void *ranges(weft_gen *g, void *arg)
{
    (void)arg;
    if (yield_range(g, 0, 3) == 0)
        yield_range(g, 100, 102);
    return NULL;
}

Test(gen, helper_functions_yield)
{
    static const intptr_t want[] = {0, 1, 2, 100, 101};
    weft_gen g;
    void *v = NULL;
    int n = 0, rc;
    cr_assert_eq(weft_gen_init(&g, NULL, ranges, NULL), 0);
    while ((rc = weft_gen_next(&g, &v)) == 0) {
        cr_assert(n < 5);
        cr_assert_eq((intptr_t)v, want[n]);
        n++;
    }
    cr_assert_eq(rc, WEFT_CORO_DONE);
    cr_assert_eq(n, 5);
    cr_assert_eq(weft_gen_destroy(&g), 0);
}
