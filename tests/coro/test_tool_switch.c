/* The sanitizers' view of switching (coro.c's tool_* helpers). Built and run
 * everywhere; under TSan it is the regression test of issue 15's shutdown
 * SEGV: each finished coroutine used to pop one frame too many off its
 * resumer's TSan shadow stack, and once the stack underflowed, the next
 * switch to a fiber TSan had not seen yet read below the shadow stack and
 * died. Thousands of finished coroutines, then hundreds of new ones live at
 * once (new fibers at new addresses), from a shallow call depth, as a
 * server's loop does at shutdown. */
#include "harness.h"
#include "coro_internal.h"

#include <stdint.h>

enum { FINISHED = 4096, LIVE = 256 };

/* Yields its argument plus one, then returns what the resume sent in. */
static void *yield_then_return(weft_coro *self, void *arg)
{
    void *in = NULL;
    cr_assert_eq(weft_coro_yield(self, (void *)((intptr_t)arg + 1), &in), 0);
    return in;
}

/* Runs co through one yield to its end: value checks on both switches. */
static void run_to_end(weft_coro *co, intptr_t v)
{
    void *out = NULL;
    cr_assert_eq(weft_coro_resume(co, (void *)v, &out), 0);
    cr_assert_eq((intptr_t)out, v + 1);
    cr_assert_eq(weft_coro_resume(co, (void *)(v * 2), &out), WEFT_CORO_DONE);
    cr_assert_eq((intptr_t)out, v * 2);
}

Test(coro, tool_finished_coroutines_then_new_fibers)
{
    for (intptr_t i = 0; i < FINISHED; i++) {
        weft_coro *co = NULL;
        cr_assert_eq(weft_coro_create(NULL, yield_then_return, &co), 0);
        run_to_end(co, i);
        cr_assert_eq(weft_coro_destroy(co), 0);
    }
    /* All live at once: none reuses a fiber another one freed. */
    static weft_coro *live[LIVE];
    for (intptr_t i = 0; i < LIVE; i++)
        cr_assert_eq(weft_coro_create(NULL, yield_then_return, &live[i]), 0);
    for (intptr_t i = 0; i < LIVE; i++) {
        void *out = NULL;
        cr_assert_eq(weft_coro_resume(live[i], (void *)i, &out), 0);
        cr_assert_eq((intptr_t)out, i + 1);
    }
    for (intptr_t i = 0; i < LIVE; i++) {
        void *out = NULL;
        cr_assert_eq(weft_coro_resume(live[i], (void *)(i + 7), &out), WEFT_CORO_DONE);
        cr_assert_eq((intptr_t)out, i + 7);
        cr_assert_eq(weft_coro_destroy(live[i]), 0);
    }
}

/* Three deep: each level resumes the next; the fibers a coroutine returns
 * to (its resumer's) change from run to run. */
static void *nest_body(weft_coro *self, void *arg)
{
    intptr_t depth = (intptr_t)arg;
    if (depth > 0) {
        weft_coro *inner = NULL;
        cr_assert_eq(weft_coro_create(NULL, nest_body, &inner), 0);
        void *out = NULL;
        cr_assert_eq(weft_coro_resume(inner, (void *)(depth - 1), &out), 0);
        cr_assert_eq(weft_coro_yield(self, out, NULL), 0); /* pass the innermost's value up */
        cr_assert_eq(weft_coro_resume(inner, NULL, &out), WEFT_CORO_DONE);
        cr_assert_eq(weft_coro_destroy(inner), 0);
        return (void *)((intptr_t)out + 1);
    }
    cr_assert_eq(weft_coro_yield(self, (void *)100, NULL), 0);
    return (void *)0;
}

Test(coro, tool_nested_resumers_finish_in_turn)
{
    for (int round = 0; round < FINISHED / 4; round++) {
        weft_coro *co = NULL;
        cr_assert_eq(weft_coro_create(NULL, nest_body, &co), 0);
        void *out = NULL;
        cr_assert_eq(weft_coro_resume(co, (void *)3, &out), 0);
        cr_assert_eq((intptr_t)out, 100);
        cr_assert_eq(weft_coro_resume(co, NULL, &out), WEFT_CORO_DONE);
        cr_assert_eq((intptr_t)out, 3); /* 0 at the bottom, +1 per level above */
        cr_assert_eq(weft_coro_destroy(co), 0);
    }
    /* New fibers after all of it. */
    static weft_coro *live[LIVE];
    for (int i = 0; i < LIVE; i++) {
        cr_assert_eq(weft_coro_create(NULL, nest_body, &live[i]), 0);
        void *out = NULL;
        cr_assert_eq(weft_coro_resume(live[i], (void *)0, &out), 0);
        cr_assert_eq((intptr_t)out, 100);
    }
    for (int i = 0; i < LIVE; i++) {
        cr_assert_eq(weft_coro_resume(live[i], NULL, NULL), WEFT_CORO_DONE);
        cr_assert_eq(weft_coro_destroy(live[i]), 0);
    }
}
