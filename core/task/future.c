/* Futures: states, results, done-callbacks, reference counts, and the
 * per-loop free lists that futures, tasks and waiters come from. */
#include "loop_internal.h"
#include "task_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void default_error_handler(weft_loop *loop, weft_future *f, int err, void *arg)
{
    (void)loop;
    (void)arg;
    const char *name = f->is_task && ((weft__task *)f)->name ? ((weft__task *)f)->name : "";
    fprintf(stderr, "weft: %s %s%serror was never retrieved: %s (%d)\n",
            f->is_task ? "task" : "future", name, *name ? " " : "", weft_strerror(err), err);
}

static void free_list(weft__list *l, size_t link_offset)
{
    weft__link *n;
    while ((n = weft__list_pop(l)) != NULL)
        free((char *)n - link_offset);
}

static void report_unretrieved(weft__loop_tasks *ts, weft_future *f)
{
    if (f->state == WEFT_FUTURE_DONE && f->err && !f->retrieved) {
        f->retrieved = 1;
        ts->on_error(f->loop, f, f->err, ts->on_error_arg);
    }
}

/* At loop close: report what nobody retrieved, then free everything this
 * layer holds, suspended tasks included (their stacks are dropped). */
static void tasks_free(weft_loop *loop, void *ext)
{
    (void)loop;
    weft__loop_tasks *ts = ext;
    weft__executor_free(ts);
    weft__link *n;
    for (n = ts->live.first; n; n = n->next) {
        weft_future *f = weft__container_of(n, weft_future, live);
        report_unretrieved(ts, f);
        /* Done-callbacks that never ran. Before any task is destroyed: an
         * await node lives on its task's stack. */
        weft__link *w;
        while ((w = weft__list_pop(&f->waiters)) != NULL)
            if (weft__container_of(w, weft__waiter, link)->pooled)
                free(weft__container_of(w, weft__waiter, link));
    }
    while ((n = weft__list_pop(&ts->live)) != NULL) {
        weft_future *f = weft__container_of(n, weft_future, live);
        if (f->is_task)
            weft__task_destroy((weft__task *)f);
        free(f);
    }
    free_list(&ts->free_futures, offsetof(weft_future, live));
    free_list(&ts->free_tasks, offsetof(weft__task, fut.live));
    free_list(&ts->free_waiters, offsetof(weft__waiter, link));
    free_list(&ts->scheduled_waiters, offsetof(weft__waiter, link));
    weft__gathers_free(ts);
    if (ts->stacks)
        weft_stack_pool_free(ts->stacks);
    free(ts);
}

/* First thing at loop close: no pool thread calls into the loop after. */
static void tasks_stop(weft_loop *loop, void *ext)
{
    (void)loop;
    weft__executor_stop(ext);
}

weft__loop_tasks *weft__tasks(weft_loop *loop)
{
    if (loop->ext)
        return loop->ext;
    weft__loop_tasks *ts = calloc(1, sizeof *ts);
    if (!ts)
        return NULL;
    ts->on_error = default_error_handler;
    loop->ext = ts;
    loop->ext_free = tasks_free;
    loop->ext_stop = tasks_stop;
    return ts;
}

int weft_loop_set_error_handler(weft_loop *loop, weft_error_handler h, void *arg)
{
    weft__loop_tasks *ts = loop ? weft__tasks(loop) : NULL;
    if (!ts)
        return -EINVAL;
    ts->on_error = h ? h : default_error_handler;
    ts->on_error_arg = arg;
    return 0;
}

void weft__future_init(weft_future *f, weft_loop *loop, uint32_t refs)
{
    *f = (weft_future){.loop = loop, .refs = refs};
    weft__list_push(&((weft__loop_tasks *)loop->ext)->live, &f->live);
}

int weft_future_new(weft_loop *loop, weft_future **out)
{
    if (!loop || !out)
        return -EINVAL;
    weft__loop_tasks *ts = weft__tasks(loop);
    if (!ts)
        return -ENOMEM;
    weft__link *n = weft__list_pop(&ts->free_futures);
    weft_future *f = n ? weft__container_of(n, weft_future, live) : malloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    weft__future_init(f, loop, 1);
    *out = f;
    return 0;
}

int weft_future_ref(weft_future *f)
{
    if (!f || !f->refs)
        return -EINVAL;
    f->refs++;
    return 0;
}

void weft__future_free_memory(weft__loop_tasks *ts, weft_future *f)
{
    weft__list_remove(&ts->live, &f->live);
    weft__list_push(f->is_task ? &ts->free_tasks : &ts->free_futures, &f->live);
}

int weft_future_unref(weft_future *f)
{
    if (!f || !f->refs)
        return -EINVAL;
    if (--f->refs)
        return 0;
    weft__loop_tasks *ts = f->loop->ext;
    report_unretrieved(ts, f);
    if (f->is_task)
        weft__task_destroy((weft__task *)f);
    weft__future_free_memory(ts, f);
    return 0;
}

static void run_waiter(void *arg)
{
    weft__waiter *w = arg;
    weft_future *f = w->f;
    if (!w->pooled) {
        /* A node in some frame (run_until_complete's): it may be gone once
         * the callback returns. */
        w->cb(f, w->arg);
        return;
    }
    weft__loop_tasks *ts = f->loop->ext;
    weft__list_remove(&ts->scheduled_waiters, &w->link);
    w->cb(f, w->arg);
    weft__list_push(&ts->free_waiters, &w->link);
    weft_future_unref(f); /* the callback's own reference */
}

/* Queue w's callback. A pooled node is also kept on a list until it runs,
 * so a loop freed before then can still free it. */
static void schedule_waiter(weft_future *f, weft__waiter *w)
{
    if (w->pooled)
        weft__list_push(&((weft__loop_tasks *)f->loop->ext)->scheduled_waiters, &w->link);
    weft_call_soon(f->loop, &w->h, run_waiter, w);
}

void weft__future_finish(weft_future *f, uint8_t state, intptr_t result, int err)
{
    f->state = state;
    f->result = result;
    f->err = err;
    weft__link *n;
    while ((n = weft__list_pop(&f->waiters)) != NULL) {
        weft__waiter *w = weft__container_of(n, weft__waiter, link);
        if (w->task)
            weft__task_wake(w->task); /* no detour through the waiter's handle */
        else
            schedule_waiter(f, w);
    }
}

int weft_future_set_result(weft_future *f, intptr_t result)
{
    if (!f || !f->refs)
        return -EINVAL;
    if (f->state != WEFT_FUTURE_PENDING)
        return -EALREADY;
    weft__future_finish(f, WEFT_FUTURE_DONE, result, 0);
    return 0;
}

int weft_future_set_error(weft_future *f, int err)
{
    if (!f || !f->refs || err >= 0)
        return -EINVAL;
    if (f->state != WEFT_FUTURE_PENDING)
        return -EALREADY;
    weft__future_finish(f, WEFT_FUTURE_DONE, 0, err);
    return 0;
}

int weft_future_cancel(weft_future *f)
{
    if (!f || !f->refs)
        return -EINVAL;
    if (f->state != WEFT_FUTURE_PENDING)
        return -EALREADY;
    if (f->is_task) {
        weft__task_cancel((weft__task *)f);
        return 0;
    }
    weft__future_finish(f, WEFT_FUTURE_CANCELLED, 0, -ECANCELED);
    return 0;
}

int weft_future_state(const weft_future *f)
{
    return f ? f->state : -EINVAL;
}

int weft_future_result(weft_future *f, intptr_t *result)
{
    if (!f)
        return -EINVAL;
    if (f->state == WEFT_FUTURE_PENDING)
        return -EAGAIN;
    if (f->state == WEFT_FUTURE_CANCELLED)
        return -ECANCELED;
    if (f->err) {
        f->retrieved = 1;
        return f->err;
    }
    if (result)
        *result = f->result;
    return 0;
}

int weft_future_add_done_callback(weft_future *f, weft_future_cb cb, void *arg)
{
    if (!f || !cb || !f->refs)
        return -EINVAL;
    weft__loop_tasks *ts = f->loop->ext;
    weft__link *n = weft__list_pop(&ts->free_waiters);
    weft__waiter *w = n ? weft__container_of(n, weft__waiter, link) : malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    *w = (weft__waiter){.cb = cb, .arg = arg, .f = f, .pooled = 1};
    f->refs++;
    if (f->state == WEFT_FUTURE_PENDING)
        weft__list_push(&f->waiters, &w->link);
    else
        schedule_waiter(f, w);
    return 0;
}

int weft_future_remove_done_callback(weft_future *f, weft_future_cb cb, void *arg)
{
    if (!f || !cb)
        return -EINVAL;
    int removed = 0;
    weft__link *n = f->waiters.first;
    while (n) {
        weft__link *next = n->next;
        weft__waiter *w = weft__container_of(n, weft__waiter, link);
        if (w->pooled && w->cb == cb && w->arg == arg) {
            weft__list_remove(&f->waiters, n);
            weft__list_push(&((weft__loop_tasks *)f->loop->ext)->free_waiters, &w->link);
            f->refs--; /* the caller still holds one */
            removed++;
        }
        n = next;
    }
    return removed;
}

weft_loop *weft_future_loop(const weft_future *f)
{
    return f ? f->loop : NULL;
}

int weft_future_is_task(const weft_future *f)
{
    return f && f->is_task;
}
