/* Tasks: a future that drives a coroutine. The loop resumes the task's
 * coroutine from a call_soon callback (its `step` handle); the task runs
 * until it suspends (await, sleep, yield, an op) and switches back. Each
 * suspension records where it waits, so a cancel can interrupt it. */
#include "sys/fault.h"
#include "coro_internal.h"
#include "loop_internal.h"
#include "task_internal.h"

#include <errno.h>
#include <stdlib.h>

static void task_step(void *arg);

static void *task_body(weft_coro *self, void *arg)
{
    (void)self;
    weft__task *t = arg;
    intptr_t result = 0;
    int err = t->fn(t->arg, &result);
    t->fut.result = result;
    t->fut.err = err < 0 ? err : 0;
    return NULL;
}

int weft_task_spawn(weft_loop *loop, weft_task_fn fn, void *arg, weft_future **out)
{
    if (!loop || !fn)
        return -EINVAL;
    weft__loop_tasks *ts = weft__tasks(loop);
    if (!ts)
        return -ENOMEM;
    if (!ts->stacks) {
        int rc = weft_stack_pool_new(NULL, &ts->stacks);
        if (rc)
            return rc;
    }
    weft__link *n = weft__list_pop(&ts->free_tasks);
    weft__task *t = n ? weft__container_of(n, weft__task, fut.live) : malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    /* A fault site for the stack weft_coro_init() takes (core/coro sees no fault.h). */
    int rc = WEFT__FAULT(NULL, -1, WEFT__FS_ALLOC, NULL)
                 ? -ENOMEM
                 : weft_coro_init(&t->co, ts->stacks, task_body);
    if (rc) {
        weft__list_push(&ts->free_tasks, &t->fut.live);
        return rc;
    }
    weft__future_init(&t->fut, loop, out ? 2 : 1); /* the running task holds one */
    t->fut.is_task = 1;
    t->fn = fn;
    t->arg = arg;
    t->step = (weft_handle)WEFT_HANDLE_INIT;
    t->timer = (weft_handle)WEFT_HANDLE_INIT;
    t->name = NULL;
    t->wait = WAIT_NONE;
    t->awaiting = NULL;
    t->op = NULL;
    t->cancel_pending = t->cancel_delivery = t->cancel_requested = t->started = 0;
    t->coro_live = 1;
    t->inline_ops = 0;
    t->inline_turn = 0;
    weft_coro_set_user(&t->co, t);
    weft_call_soon(loop, &t->step, task_step, t);
    if (out)
        *out = &t->fut;
    return 0;
}

void weft__task_destroy(weft__task *t)
{
    if (t->coro_live)
        weft_coro_destroy(&t->co); /* a suspended task at loop close: abandoned */
    t->coro_live = 0;
}

/* The body returned (or never started, when cancelled first): settle the
 * future and drop the running task's reference. */
static void task_finish(weft__task *t, int cancelled)
{
    weft__task_destroy(t); /* the stack goes back to the pool now */
    int err = t->fut.err;
    if (cancelled || (err == -ECANCELED && t->cancel_requested))
        weft__future_finish(&t->fut, WEFT_FUTURE_CANCELLED, 0, -ECANCELED);
    else
        weft__future_finish(&t->fut, WEFT_FUTURE_DONE, t->fut.result, err);
    weft_future_unref(&t->fut);
}

static void task_step(void *arg)
{
    weft__task *t = arg;
    weft__loop_tasks *ts = t->fut.loop->ext;
    if (!t->started && t->cancel_pending) {
        task_finish(t, 1); /* cancelled before it ran: the body never starts */
        return;
    }
    t->started = 1;
    weft__task *prev = ts->current;
    ts->current = t;
    int rc = weft_coro_resume(&t->co, t, NULL);
    ts->current = prev;
    if (rc == WEFT_CORO_DONE)
        task_finish(t, 0);
}

/* Schedule t to resume on the next callback phase (from any context). */
static void wake(weft__task *t)
{
    if (t->step.state_ == 0) /* idle: not already scheduled */
        weft_call_soon(t->fut.loop, &t->step, task_step, t);
}

void weft__task_wake(weft__task *t)
{
    wake(t);
}

/* Resume t right now. Only from a loop callback (we are then on the loop's
 * own stack): saves a trip through the ready list per wake-up. */
static void resume_now(weft__task *t)
{
    /* Usually not scheduled: skip the call (one per awaited op that
     * suspended; bench/RESULTS.md "issue 17"). */
    if (t->step.state_ != WEFT__HS_IDLE)
        weft_handle_cancel(t->fut.loop, &t->step);
    task_step(t);
}

static weft__task *current_task(weft_loop *loop)
{
    weft__loop_tasks *ts = loop ? loop->ext : NULL;
    weft__task *t = ts ? ts->current : NULL;
    /* Only the task's own coroutine may suspend it (not a generator nested
     * inside it). */
    return t && weft__current == &t->co ? t : NULL; /* weft_coro_current(), without the call */
}

weft_future *weft_task_current(weft_loop *loop)
{
    weft__task *t = current_task(loop);
    return t ? &t->fut : NULL;
}

int weft_task_set_name(weft_future *task, const char *name)
{
    if (!task || !task->is_task)
        return -EINVAL;
    ((weft__task *)task)->name = name;
    weft_coro_set_name(&((weft__task *)task)->co, name);
    return 0;
}

/* Switch back to the loop until woken. Returns -ECANCELED when a cancel
 * ended the wait, else 0. */
static int suspend(weft__task *t, int wait)
{
    t->wait = wait;
    weft_coro_yield(&t->co, NULL, NULL);
    t->wait = WAIT_NONE;
    if (t->cancel_delivery) {
        t->cancel_delivery = 0;
        return -ECANCELED;
    }
    return 0;
}

/* A cancel that arrived while the task was not suspended is delivered at
 * its next suspension point, without suspending. */
static int take_pending_cancel(weft__task *t)
{
    if (!t->cancel_pending)
        return 0;
    t->cancel_pending = 0;
    return -ECANCELED;
}

void weft__task_cancel(weft__task *t)
{
    t->cancel_requested = 1;
    switch (t->wait) {
    case WAIT_FUTURE:
        t->cancel_delivery = 1;
        /* As asyncio: cancel what it awaits. A plain future finishes now
         * and its waiter wakes this task; an awaited task finishes when its
         * body has returned. */
        weft_future_cancel(t->awaiting);
        break;
    case WAIT_OP:
        t->cancel_delivery = 1; /* woken by the op's completion, not before */
        weft_op_cancel(t->fut.loop, t->op);
        break;
    case WAIT_SLEEP:
        weft_handle_cancel(t->fut.loop, &t->timer);
        t->cancel_delivery = 1;
        wake(t);
        break;
    case WAIT_YIELD:
        t->cancel_delivery = 1;
        break;
    case WAIT_CANCEL:
        t->cancel_delivery = 1;
        wake(t);
        break;
    default:
        t->cancel_pending = 1; /* running, or not started yet */
    }
}

int weft_await(weft_future *f, intptr_t *result)
{
    if (!f || !f->refs)
        return -EINVAL;
    weft__task *t = current_task(f->loop);
    if (!t)
        return -EPERM;
    if (f == &t->fut)
        return -EDEADLK;
    if (f->state != WEFT_FUTURE_PENDING)
        return weft_future_result(f, result);
    int rc = take_pending_cancel(t);
    if (rc)
        return rc;
    weft__waiter w = {.task = t, .f = f};
    f->refs++;
    weft__list_push(&f->waiters, &w.link);
    t->awaiting = f;
    rc = suspend(t, WAIT_FUTURE);
    t->awaiting = NULL;
    if (f->state == WEFT_FUTURE_PENDING)
        weft__list_remove(&f->waiters, &w.link); /* woken by a cancel */
    if (rc == 0)
        rc = weft_future_result(f, result);
    weft_future_unref(f);
    return rc;
}

static void wake_timer(void *arg)
{
    resume_now(arg);
}

int weft_sleep(weft_loop *loop, int64_t delay_ns)
{
    weft__task *t = current_task(loop);
    if (!t)
        return -EPERM;
    if (delay_ns < 0)
        return -EINVAL;
    int rc = take_pending_cancel(t);
    if (rc)
        return rc;
    rc = weft_call_later(loop, &t->timer, delay_ns, wake_timer, t);
    if (rc)
        return rc;
    return suspend(t, WAIT_SLEEP);
}

int weft_yield(weft_loop *loop)
{
    weft__task *t = current_task(loop);
    if (!t)
        return -EPERM;
    int rc = take_pending_cancel(t);
    if (rc)
        return rc;
    wake(t);
    return suspend(t, WAIT_YIELD);
}

int weft_wait_cancelled(weft_loop *loop)
{
    weft__task *t = current_task(loop);
    if (!t)
        return -EPERM;
    int rc = take_pending_cancel(t);
    while (rc == 0) /* only a cancel wakes it */
        rc = suspend(t, WAIT_CANCEL);
    return rc;
}

static void op_done(weft_op *op)
{
    resume_now(op->data);
}

int64_t weft_await_op(weft_loop *loop, weft_op *op)
{
    weft__task *t = current_task(loop);
    if (!t)
        return -EPERM;
    if (!op)
        return -EINVAL;
    int rc = take_pending_cancel(t);
    if (rc)
        return rc;
    op->cb = op_done;
    op->data = t;
    /* Fast path (asyncio's sock_recv): an op that completes at submit
     * returns to the task without suspending or a loop turn, up to
     * WEFT__AWAIT_INLINE_MAX times per loop turn. */
    if (t->inline_turn != loop->turn) {
        t->inline_turn = loop->turn;
        t->inline_ops = 0;
    }
    if ((int)t->inline_ops < WEFT__AWAIT_INLINE_MAX) {
        rc = weft__op_submit_inline(loop, op);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            t->inline_ops++;
            return op->result;
        }
    } else if ((rc = weft_op_submit(loop, op)) != 0) {
        return rc;
    }
    t->op = op;
    rc = suspend(t, WAIT_OP);
    t->op = NULL;
    if (rc == -ECANCELED && op->result != -ECANCELED)
        t->cancel_pending = 1; /* too late to stop the op: keep it for the next suspension */
    return op->result;
}

static void stop_loop(weft_future *f, void *arg)
{
    (void)f;
    weft_loop_stop(arg);
}

int weft_run_until_complete(weft_loop *loop, weft_future *f, intptr_t *result)
{
    if (!loop || !f || f->loop != loop)
        return -EINVAL;
    if (loop->running_flag)
        return -EBUSY;
    weft__waiter w = {.cb = stop_loop, .arg = loop, .f = f};
    f->refs++;
    if (f->state == WEFT_FUTURE_PENDING)
        weft__list_push(&f->waiters, &w.link);
    int rc = 0;
    while (f->state == WEFT_FUTURE_PENDING) {
        rc = weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
        if (rc < 0)
            break;
        if (rc == 0 && f->state == WEFT_FUTURE_PENDING) {
            rc = -EDEADLK; /* nothing left that could finish it */
            break;
        }
    }
    if (f->state == WEFT_FUTURE_PENDING)
        weft__list_remove(&f->waiters, &w.link);
    else
        weft_handle_cancel(loop, &w.h);
    if (rc >= 0)
        rc = weft_future_result(f, result);
    weft_future_unref(f);
    return rc;
}
