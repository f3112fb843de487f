/* Composition of futures: gather, wait, wait_for, shield (asyncio's tasks.py
 * functions), built on done-callbacks.
 *
 * A suspended wait registers a done-callback on each future it watches,
 * with a private "wake" future as the argument, and awaits that future; a
 * timer finishes it on timeout. Each registration holds a reference to the
 * wake future, so a callback already scheduled when the wait ends is
 * harmless: it only drops its reference. */
#include "task_internal.h"
#include "weft/compose.h"

#include <errno.h>
#include <stdlib.h>

#define NO_DEADLINE UINT64_MAX

static int is_pending(const weft_future *f)
{
    return f->state == WEFT_FUTURE_PENDING;
}

/* Failed: cancelled, or done with an error (read without retrieving it). */
static int is_failed(const weft_future *f)
{
    return f->state == WEFT_FUTURE_CANCELLED || (f->state == WEFT_FUTURE_DONE && f->err);
}

static int check_list(weft_loop *loop, weft_future *const *fs, size_t n)
{
    if (!loop || (n && !fs))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i] || !fs[i]->refs || fs[i]->loop != loop)
            return -EINVAL;
    return 0;
}

/* --- suspend until one of a set is done --- */

static void wake_on_done(weft_future *f, void *arg)
{
    (void)f;
    weft_future *w = arg;
    if (is_pending(w))
        weft_future_set_result(w, 0);
    weft_future_unref(w);
}

static void wake_on_timeout(void *arg)
{
    weft_future *w = arg;
    if (is_pending(w))
        weft_future_set_result(w, 1);
}

/* Task only: suspend until one of the pending futures in fs[0..n) is done,
 * or the loop clock reaches deadline. 0, -ETIMEDOUT, -ECANCELED, -ENOMEM. */
static int wait_any(weft_loop *loop, weft_future *const *fs, size_t n, uint64_t deadline)
{
    weft_future *w;
    int rc = weft_future_new(loop, &w);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!is_pending(fs[i]))
            continue;
        weft_future_ref(w);
        rc = weft_future_add_done_callback(fs[i], wake_on_done, w);
        if (rc)
            weft_future_unref(w);
    }
    weft_handle timer = WEFT_HANDLE_INIT;
    if (!rc && deadline != NO_DEADLINE)
        rc = weft_call_at(loop, &timer, deadline, wake_on_timeout, w);
    intptr_t timed_out = 0;
    if (!rc)
        rc = weft_await(w, &timed_out);
    weft_handle_cancel(loop, &timer); /* -EALREADY when it ran or never started */
    for (size_t i = 0; i < n; i++)
        for (int k = weft_future_remove_done_callback(fs[i], wake_on_done, w); k > 0; k--)
            weft_future_unref(w);
    weft_future_unref(w);
    if (!rc && timed_out)
        rc = -ETIMEDOUT;
    return rc;
}

static uint64_t deadline_of(weft_loop *loop, int64_t timeout_ns)
{
    return timeout_ns < 0 ? NO_DEADLINE : weft_loop_now(loop) + (uint64_t)timeout_ns;
}

/* --- gather --- */

typedef struct gather gather;

typedef struct gather_slot {
    gather *g;
    weft_future *f; /* NULL once its done-callback ran */
} gather_slot;

struct gather {
    weft__link link; /* the loop's pending gathers */
    weft_future *outer;
    size_t n, pending;
    size_t callbacks; /* still to run: one per child, one for outer */
    int flags;
    gather_slot slots[];
};

static void gather_release(gather *g)
{
    if (--g->callbacks)
        return;
    weft__loop_tasks *ts = weft__tasks(g->outer->loop);
    weft__list_remove(&ts->gathers, &g->link);
    weft_future_unref(g->outer);
    free(g);
}

static void gather_cancel_rest(gather *g)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->slots[i].f && is_pending(g->slots[i].f))
            weft_future_cancel(g->slots[i].f);
}

static void gather_child_done(weft_future *f, void *arg)
{
    gather_slot *s = arg;
    gather *g = s->g;
    s->f = NULL;
    g->pending--;
    if (!is_pending(g->outer)) {
        weft_future_result(f, NULL); /* its error goes nowhere: mark it retrieved */
    } else if (!(g->flags & WEFT_GATHER_RETURN_ERRORS) && is_failed(f)) {
        weft_future_set_error(g->outer, weft_future_result(f, NULL));
        gather_cancel_rest(g);
    } else if (g->pending == 0) {
        weft_future_set_result(g->outer, (intptr_t)g->n);
    }
    gather_release(g);
}

static void gather_outer_done(weft_future *outer, void *arg)
{
    gather *g = arg;
    if (outer->state == WEFT_FUTURE_CANCELLED)
        gather_cancel_rest(g);
    gather_release(g);
}

int weft_gather(weft_loop *loop, weft_future *const *futures, size_t n, int flags,
                weft_future **out)
{
    if (!out || (flags & ~WEFT_GATHER_RETURN_ERRORS) || check_list(loop, futures, n))
        return -EINVAL;
    if (n > (SIZE_MAX - sizeof(gather)) / sizeof(gather_slot))
        return -ENOMEM;
    weft_future *outer;
    int rc = weft_future_new(loop, &outer);
    if (rc)
        return rc;
    if (n == 0) {
        weft_future_set_result(outer, 0);
        *out = outer;
        return 0;
    }
    gather *g = malloc(sizeof *g + n * sizeof g->slots[0]);
    if (!g) {
        weft_future_unref(outer);
        return -ENOMEM;
    }
    *g = (gather){.outer = outer, .n = n, .pending = n, .callbacks = n + 1, .flags = flags};
    size_t added = 0;
    for (; added < n; added++) {
        g->slots[added] = (gather_slot){g, futures[added]};
        if ((rc = weft_future_add_done_callback(futures[added], gather_child_done,
                                                &g->slots[added])) != 0)
            break;
    }
    if (!rc)
        rc = weft_future_add_done_callback(outer, gather_outer_done, g);
    if (rc) {
        for (size_t i = 0; i < added; i++)
            weft_future_remove_done_callback(futures[i], gather_child_done, &g->slots[i]);
        free(g);
        weft_future_unref(outer);
        return rc;
    }
    weft_future_ref(outer); /* the gather's own, dropped when its last callback ran */
    weft__list_push(&weft__tasks(loop)->gathers, &g->link);
    *out = outer;
    return 0;
}

int weft_gather_results(weft_future *const *futures, size_t n, intptr_t *results, int *errors)
{
    if (n && !futures)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!futures[i])
            return -EINVAL;
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        intptr_t v = 0;
        int rc = weft_future_result(futures[i], &v);
        if (results)
            results[i] = rc ? 0 : v;
        if (errors)
            errors[i] = rc;
        if (rc && !first)
            first = rc;
    }
    return first;
}

void weft__gathers_free(weft__loop_tasks *ts)
{
    weft__link *n;
    while ((n = weft__list_pop(&ts->gathers)) != NULL)
        free(weft__container_of(n, gather, link)); /* its futures are gone already */
}

/* --- wait --- */

static int wait_met(weft_future *const *fs, size_t n, int mode, size_t *done)
{
    size_t d = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        d += !is_pending(fs[i]);
        failed += is_failed(fs[i]);
    }
    *done = d;
    switch (mode) {
    case WEFT_WAIT_FIRST_COMPLETED:
        return d > 0;
    case WEFT_WAIT_FIRST_ERROR:
        return failed > 0 || d == n;
    default:
        return d == n;
    }
}

int weft_wait(weft_loop *loop, weft_future *const *futures, size_t n, int mode, int64_t timeout_ns,
              size_t *done_count)
{
    if (n == 0 || check_list(loop, futures, n) || mode < WEFT_WAIT_FIRST_COMPLETED ||
        mode > WEFT_WAIT_ALL_COMPLETED || timeout_ns < -1)
        return -EINVAL;
    if (!weft_task_current(loop))
        return -EPERM;
    uint64_t deadline = deadline_of(loop, timeout_ns);
    size_t done;
    int rc;
    for (;;) {
        if (wait_met(futures, n, mode, &done)) {
            rc = 0;
            break;
        }
        if (timeout_ns == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        if (mode == WEFT_WAIT_ALL_COMPLETED) {
            /* One at a time: each registration is made once. */
            size_t i = 0;
            while (!is_pending(futures[i]))
                i++;
            rc = wait_any(loop, &futures[i], 1, deadline);
        } else {
            rc = wait_any(loop, futures, n, deadline);
        }
        if (rc)
            break;
    }
    if (done_count) {
        wait_met(futures, n, mode, &done);
        *done_count = done;
    }
    return rc;
}

/* --- wait_for --- */

int weft_wait_for(weft_future *f, int64_t timeout_ns, intptr_t *result)
{
    if (!f || !f->refs || timeout_ns < -1)
        return -EINVAL;
    weft_loop *loop = f->loop;
    weft_future *self = weft_task_current(loop);
    if (!self)
        return -EPERM;
    if (f == self)
        return -EDEADLK;
    if (!is_pending(f))
        return weft_future_result(f, result);
    weft_future_ref(f);
    int rc = timeout_ns == 0 ? -ETIMEDOUT : wait_any(loop, &f, 1, deadline_of(loop, timeout_ns));
    if (rc == -ETIMEDOUT || rc == -ECANCELED) {
        /* Cancel f and wait until it has really finished (a task may take
         * time to clean up). Cancelled again meanwhile: stop waiting. */
        weft_future_cancel(f);
        while (is_pending(f)) {
            int r = wait_any(loop, &f, 1, NO_DEADLINE);
            if (r) {
                rc = r;
                break;
            }
        }
        if (rc == -ETIMEDOUT && f->state == WEFT_FUTURE_DONE)
            rc = weft_future_result(f, result); /* it finished instead of cancelling */
    } else if (rc == 0) {
        rc = weft_future_result(f, result);
    }
    weft_future_unref(f);
    return rc;
}

/* --- shield --- */

static void copy_outcome(weft_future *from, weft_future *to)
{
    intptr_t v = 0;
    int rc = weft_future_result(from, &v); /* marks an error retrieved: `to` carries it */
    if (!is_pending(to))
        return;
    if (from->state == WEFT_FUTURE_CANCELLED)
        weft_future_cancel(to);
    else if (rc)
        weft_future_set_error(to, rc);
    else
        weft_future_set_result(to, v);
}

static void shield_done(weft_future *f, void *arg)
{
    weft_future *outer = arg;
    copy_outcome(f, outer);
    weft_future_unref(outer);
}

int weft_shield(weft_future *f, weft_future **out)
{
    if (!f || !f->refs || !out)
        return -EINVAL;
    weft_future *outer;
    int rc = weft_future_new(f->loop, &outer);
    if (rc)
        return rc;
    if (!is_pending(f)) {
        copy_outcome(f, outer);
    } else {
        weft_future_ref(outer);
        rc = weft_future_add_done_callback(f, shield_done, outer);
        if (rc) {
            weft_future_unref(outer);
            weft_future_unref(outer);
            return rc;
        }
    }
    *out = outer;
    return 0;
}
