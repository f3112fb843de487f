/* Loop-level suite: sync primitives (Lock, Semaphore, Event, Condition,
 * Queue), composition (gather, wait, wait_for, shield) and the executor:
 * FIFO wakeups, cancel at every suspension point (also after a wakeup was
 * handed over), edge cases, bad input. Runs once per backend.
 *
 * Most tests drive the loop from the test body: tasks block, the loop goes
 * idle, the body changes something (release, set, put, cancel) and runs the
 * loop again. */
#include "common.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000LL

TestSuite(sync, .timeout = 30);

static char trace[256];

static void note(const char *s)
{
    strncat(trace, s, sizeof trace - strlen(trace) - 1);
}

/* One task's part: what it waits on, its name in the trace, its outcome. */
typedef struct actor {
    weft_loop *loop;
    void *obj;
    const char *name;
    intptr_t item;
    int rc;
    int hold_yields; /* yields while holding a lock / unit */
    weft_future *task;
} actor;

static void spawn(actor *a, weft_task_fn fn)
{
    cr_assert_eq(weft_task_spawn(a->loop, fn, a, &a->task), 0);
}

static void drop(actor *a, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].task)
            weft_future_unref(a[i].task);
}

/* --- Lock --- */

static int lock_user(void *arg, intptr_t *result)
{
    (void)result;
    actor *a = arg;
    a->rc = weft_lock_acquire(a->obj);
    if (a->rc)
        return a->rc;
    note(a->name);
    for (int i = 0; i < a->hold_yields; i++)
        weft_yield(a->loop);
    cr_assert_eq(weft_lock_release(a->obj), 0);
    return 0;
}

Test(sync, lock_wakes_waiters_in_fifo_order)
{
    weft_loop *loop = test_loop_new();
    weft_lock l;
    cr_assert_eq(weft_lock_init(&l, loop), 0);
    actor a[4] = {{loop, &l, "a", 0, 0, 3, NULL},
                  {loop, &l, "b", 0, 0, 0, NULL},
                  {loop, &l, "c", 0, 0, 1, NULL},
                  {loop, &l, "d", 0, 0, 0, NULL}};
    for (int i = 0; i < 4; i++)
        spawn(&a[i], lock_user);
    test_run(loop);
    cr_assert_str_eq(trace, "abcd");
    cr_assert_eq(weft_lock_locked(&l), 0);
    drop(a, 4);
    test_loop_free(loop);
}

Test(sync, lock_cancel_while_waiting)
{
    weft_loop *loop = test_loop_new();
    weft_lock l;
    weft_lock_init(&l, loop);
    cr_assert_eq(weft_lock_try_acquire(&l), 0);
    cr_assert_eq(weft_lock_try_acquire(&l), -EBUSY);
    actor a[2] = {{loop, &l, "a", 0, 0, 0, NULL}, {loop, &l, "b", 0, 0, 0, NULL}};
    spawn(&a[0], lock_user);
    spawn(&a[1], lock_user);
    test_run(loop);
    cr_assert_eq(weft_future_cancel(a[0].task), 0);
    test_run(loop);
    cr_assert_eq(a[0].rc, -ECANCELED);
    cr_assert_eq(weft_future_state(a[0].task), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(weft_lock_release(&l), 0);
    test_run(loop);
    cr_assert_str_eq(trace, "b");
    cr_assert_eq(weft_lock_locked(&l), 0);
    drop(a, 2);
    test_loop_free(loop);
}

Test(sync, lock_cancel_after_handover_passes_the_lock_on)
{
    weft_loop *loop = test_loop_new();
    weft_lock l;
    weft_lock_init(&l, loop);
    weft_lock_try_acquire(&l);
    actor a[2] = {{loop, &l, "a", 0, 0, 0, NULL}, {loop, &l, "b", 0, 0, 0, NULL}};
    spawn(&a[0], lock_user);
    spawn(&a[1], lock_user);
    test_run(loop);
    cr_assert_eq(weft_lock_release(&l), 0); /* handed to a ... */
    cr_assert_eq(weft_lock_try_acquire(&l), -EBUSY, "no barging past the woken waiter");
    cr_assert_eq(weft_future_cancel(a[0].task), 0); /* ... which is cancelled before it runs */
    test_run(loop);
    cr_assert_eq(a[0].rc, -ECANCELED);
    cr_assert_eq(a[1].rc, 0);
    cr_assert_str_eq(trace, "b");
    cr_assert_eq(weft_lock_locked(&l), 0);
    drop(a, 2);
    test_loop_free(loop);
}

Test(sync, lock_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_lock l;
    cr_assert_eq(weft_lock_init(NULL, loop), -EINVAL);
    cr_assert_eq(weft_lock_init(&l, NULL), -EINVAL);
    cr_assert_eq(weft_lock_acquire(NULL), -EINVAL);
    cr_assert_eq(weft_lock_try_acquire(NULL), -EINVAL);
    cr_assert_eq(weft_lock_release(NULL), -EINVAL);
    cr_assert_eq(weft_lock_locked(NULL), -EINVAL);
    weft_lock_init(&l, loop);
    cr_assert_eq(weft_lock_acquire(&l), -EPERM, "task only");
    cr_assert_eq(weft_lock_release(&l), -EPERM, "not locked");
    test_loop_free(loop);
}

/* --- Semaphore --- */

static int sem_user(void *arg, intptr_t *result)
{
    (void)result;
    actor *a = arg;
    a->rc = weft_semaphore_acquire(a->obj);
    if (a->rc)
        return a->rc;
    note(a->name);
    for (int i = 0; i < a->hold_yields; i++)
        weft_yield(a->loop);
    note(a->name);
    cr_assert_eq(weft_semaphore_release(a->obj), 0);
    return 0;
}

Test(sync, semaphore_admits_value_holders_in_fifo_order)
{
    weft_loop *loop = test_loop_new();
    weft_semaphore s;
    cr_assert_eq(weft_semaphore_init(&s, loop, 2), 0);
    actor a[4] = {{loop, &s, "a", 0, 0, 2, NULL},
                  {loop, &s, "b", 0, 0, 4, NULL},
                  {loop, &s, "c", 0, 0, 4, NULL},
                  {loop, &s, "d", 0, 0, 0, NULL}};
    for (int i = 0; i < 4; i++)
        spawn(&a[i], sem_user);
    test_run(loop);
    /* a and b enter; a leaves first and c enters; b leaves, d enters. */
    cr_assert_str_eq(trace, "abacbddc");
    cr_assert_eq(weft_semaphore_value(&s), 2);
    drop(a, 4);
    test_loop_free(loop);
}

Test(sync, semaphore_cancel_while_waiting_and_after_handover)
{
    weft_loop *loop = test_loop_new();
    weft_semaphore s;
    weft_semaphore_init(&s, loop, 1);
    cr_assert_eq(weft_semaphore_try_acquire(&s), 0);
    cr_assert_eq(weft_semaphore_try_acquire(&s), -EBUSY);
    actor a[3] = {{loop, &s, "a", 0, 0, 0, NULL},
                  {loop, &s, "b", 0, 0, 0, NULL},
                  {loop, &s, "c", 0, 0, 0, NULL}};
    for (int i = 0; i < 3; i++)
        spawn(&a[i], sem_user);
    test_run(loop);
    weft_future_cancel(a[0].task); /* waiting: simply leaves */
    test_run(loop);
    cr_assert_eq(weft_semaphore_release(&s), 0); /* unit handed to b */
    cr_assert_eq(weft_semaphore_value(&s), 0);
    weft_future_cancel(a[1].task); /* b cancelled before it runs: c gets it */
    test_run(loop);
    cr_assert_eq(a[0].rc, -ECANCELED);
    cr_assert_eq(a[1].rc, -ECANCELED);
    cr_assert_eq(a[2].rc, 0);
    cr_assert_str_eq(trace, "cc");
    cr_assert_eq(weft_semaphore_value(&s), 1);
    drop(a, 3);
    test_loop_free(loop);
}

Test(sync, semaphore_handed_unit_returns_when_nobody_else_waits)
{
    weft_loop *loop = test_loop_new();
    weft_semaphore s;
    weft_semaphore_init(&s, loop, 0);
    actor a = {loop, &s, "a", 0, 0, 0, NULL};
    spawn(&a, sem_user);
    test_run(loop);
    weft_semaphore_release(&s);
    weft_future_cancel(a.task);
    test_run(loop);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(weft_semaphore_value(&s), 1, "the unit is not lost");
    drop(&a, 1);
    test_loop_free(loop);
}

Test(sync, bounded_semaphore_refuses_extra_release)
{
    weft_loop *loop = test_loop_new();
    weft_semaphore s;
    cr_assert_eq(weft_bounded_semaphore_init(&s, loop, 1), 0);
    cr_assert_eq(weft_semaphore_release(&s), -EOVERFLOW);
    cr_assert_eq(weft_semaphore_try_acquire(&s), 0);
    cr_assert_eq(weft_semaphore_release(&s), 0);
    cr_assert_eq(weft_semaphore_release(&s), -EOVERFLOW);
    cr_assert_eq(weft_semaphore_value(&s), 1);
    /* An unbounded one just grows. */
    weft_semaphore_init(&s, loop, 0);
    cr_assert_eq(weft_semaphore_release(&s), 0);
    cr_assert_eq(weft_semaphore_value(&s), 1);
    test_loop_free(loop);
}

Test(sync, semaphore_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_semaphore s;
    cr_assert_eq(weft_semaphore_init(NULL, loop, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_init(&s, NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_init(&s, loop, -1), -EINVAL);
    cr_assert_eq(weft_bounded_semaphore_init(&s, loop, -1), -EINVAL);
    cr_assert_eq(weft_semaphore_acquire(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_try_acquire(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_release(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_value(NULL), -EINVAL);
    weft_semaphore_init(&s, loop, 1);
    cr_assert_eq(weft_semaphore_acquire(&s), -EPERM);
    test_loop_free(loop);
}

/* --- Event --- */

static int event_user(void *arg, intptr_t *result)
{
    (void)result;
    actor *a = arg;
    a->rc = weft_event_wait(a->obj);
    if (a->rc == 0)
        note(a->name);
    return a->rc;
}

Test(sync, event_set_wakes_all_in_order)
{
    weft_loop *loop = test_loop_new();
    weft_event e;
    cr_assert_eq(weft_event_init(&e, loop), 0);
    actor a[3] = {{loop, &e, "a", 0, 0, 0, NULL},
                  {loop, &e, "b", 0, 0, 0, NULL},
                  {loop, &e, "c", 0, 0, 0, NULL}};
    for (int i = 0; i < 3; i++)
        spawn(&a[i], event_user);
    test_run(loop);
    cr_assert_str_eq(trace, "");
    cr_assert_eq(weft_event_is_set(&e), 0);
    weft_future_cancel(a[1].task);
    cr_assert_eq(weft_event_set(&e), 0);
    test_run(loop);
    cr_assert_str_eq(trace, "ac");
    cr_assert_eq(a[1].rc, -ECANCELED);
    /* Set: a wait returns at once; cleared: it waits again. */
    actor d = {loop, &e, "d", 0, 0, 0, NULL};
    spawn(&d, event_user);
    test_run(loop);
    cr_assert_str_eq(trace, "acd");
    weft_event_clear(&e);
    cr_assert_eq(weft_event_is_set(&e), 0);
    actor f = {loop, &e, "f", 0, 0, 0, NULL};
    spawn(&f, event_user);
    test_run(loop);
    cr_assert_eq(weft_future_state(f.task), WEFT_FUTURE_PENDING);
    weft_event_set(&e);
    test_run(loop);
    cr_assert_str_eq(trace, "acdf");
    drop(a, 3);
    drop(&d, 1);
    drop(&f, 1);
    test_loop_free(loop);
}

Test(sync, event_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_event e;
    cr_assert_eq(weft_event_init(NULL, loop), -EINVAL);
    cr_assert_eq(weft_event_init(&e, NULL), -EINVAL);
    cr_assert_eq(weft_event_set(NULL), -EINVAL);
    cr_assert_eq(weft_event_clear(NULL), -EINVAL);
    cr_assert_eq(weft_event_is_set(NULL), -EINVAL);
    cr_assert_eq(weft_event_wait(NULL), -EINVAL);
    weft_event_init(&e, loop);
    cr_assert_eq(weft_event_wait(&e), -EPERM);
    test_loop_free(loop);
}

/* --- waiting until cancelled --- */

typedef struct until_cancel {
    weft_loop *loop;
    int rc, returned, self_cancel;
} until_cancel;

static int wait_cancel_user(void *arg, intptr_t *result)
{
    (void)result;
    until_cancel *u = arg;
    if (u->self_cancel)
        weft_future_cancel(weft_task_current(u->loop)); /* pending: delivered at the wait */
    u->rc = weft_wait_cancelled(u->loop);
    u->returned = 1;
    return u->rc;
}

static void tick(void *arg)
{
    (*(int *)arg)++;
}

Test(sync, wait_cancelled_returns_only_on_cancel)
{
    weft_loop *loop = test_loop_new();
    until_cancel u = {.loop = loop};
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, wait_cancel_user, &u, &t), 0);
    /* Other callbacks and timers run meanwhile; none ends the wait. */
    weft_handle h[3];
    memset(h, 0, sizeof h);
    int ticks = 0;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_call_later(loop, &h[i], (i + 1) * MS, tick, &ticks), 0);
    test_run(loop);
    cr_assert_eq(ticks, 3);
    cr_assert_eq(u.returned, 0);
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_PENDING);
    cr_assert_eq(weft_future_cancel(t), 0);
    test_run(loop);
    cr_assert_eq(u.returned, 1);
    cr_assert_eq(u.rc, -ECANCELED);
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_CANCELLED);
    weft_future_unref(t);
    /* A cancel that came first is delivered at the wait, which never suspends. */
    until_cancel v = {.loop = loop, .self_cancel = 1};
    cr_assert_eq(weft_task_spawn(loop, wait_cancel_user, &v, &t), 0);
    test_run(loop);
    cr_assert_eq(v.returned, 1);
    cr_assert_eq(v.rc, -ECANCELED);
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_CANCELLED);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(sync, wait_cancelled_alone_is_a_deadlock_and_needs_a_task)
{
    weft_loop *loop = test_loop_new();
    cr_assert_eq(weft_wait_cancelled(loop), -EPERM);
    cr_assert_eq(weft_wait_cancelled(NULL), -EPERM);
    until_cancel u = {.loop = loop};
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, wait_cancel_user, &u, &t), 0);
    cr_assert_eq(weft_run_until_complete(loop, t, NULL), -EDEADLK,
                 "nothing else pending: the wait can never end");
    cr_assert_eq(u.returned, 0);
    weft_future_cancel(t);
    test_run(loop);
    cr_assert_eq(u.rc, -ECANCELED);
    weft_future_unref(t);
    test_loop_free(loop);
}

/* --- Condition --- */

static int cond_user(void *arg, intptr_t *result)
{
    (void)result;
    actor *a = arg;
    weft_cond *c = a->obj;
    cr_assert_eq(weft_lock_acquire(weft_cond_lock(c)), 0);
    a->rc = weft_cond_wait(c);
    cr_assert_eq(weft_lock_locked(weft_cond_lock(c)), 1, "the lock is held again");
    if (a->rc == 0)
        note(a->name);
    weft_lock_release(weft_cond_lock(c));
    return a->rc;
}

/* Notify n (or all, n < 0) waiters from a task, holding the lock. */
typedef struct {
    weft_cond *c;
    int n;
    int woken;
} notifier;

static int notify_task(void *arg, intptr_t *result)
{
    (void)result;
    notifier *nt = arg;
    weft_lock_acquire(weft_cond_lock(nt->c));
    nt->woken = nt->n < 0 ? weft_cond_notify_all(nt->c) : weft_cond_notify(nt->c, nt->n);
    weft_lock_release(weft_cond_lock(nt->c));
    return 0;
}

Test(sync, condition_notify_wakes_in_fifo_order)
{
    weft_loop *loop = test_loop_new();
    weft_cond c;
    cr_assert_eq(weft_cond_init(&c, loop, NULL), 0);
    actor a[4] = {{loop, &c, "a", 0, 0, 0, NULL},
                  {loop, &c, "b", 0, 0, 0, NULL},
                  {loop, &c, "c", 0, 0, 0, NULL},
                  {loop, &c, "d", 0, 0, 0, NULL}};
    for (int i = 0; i < 4; i++)
        spawn(&a[i], cond_user);
    test_run(loop);
    notifier n1 = {&c, 1, 0};
    cr_assert_eq(weft_task_spawn(loop, notify_task, &n1, NULL), 0);
    test_run(loop);
    cr_assert_eq(n1.woken, 1);
    cr_assert_str_eq(trace, "a");
    notifier n2 = {&c, 2, 0};
    weft_task_spawn(loop, notify_task, &n2, NULL);
    test_run(loop);
    cr_assert_str_eq(trace, "abc");
    notifier n3 = {&c, -1, 0};
    weft_task_spawn(loop, notify_task, &n3, NULL);
    test_run(loop);
    cr_assert_eq(n3.woken, 1);
    cr_assert_str_eq(trace, "abcd");
    cr_assert_eq(weft_lock_locked(weft_cond_lock(&c)), 0);
    drop(a, 4);
    test_loop_free(loop);
}

Test(sync, condition_cancel_while_waiting_reacquires_the_lock)
{
    weft_loop *loop = test_loop_new();
    weft_lock l;
    weft_lock_init(&l, loop);
    weft_cond c;
    cr_assert_eq(weft_cond_init(&c, loop, &l), 0);
    cr_assert_eq(weft_cond_lock(&c), &l);
    actor a = {loop, &c, "a", 0, 0, 0, NULL};
    spawn(&a, cond_user);
    test_run(loop);
    cr_assert_eq(weft_lock_try_acquire(&l), 0); /* someone else holds it now */
    weft_future_cancel(a.task);
    test_run(loop);
    cr_assert_eq(weft_future_state(a.task), WEFT_FUTURE_PENDING, "waits for the lock");
    weft_lock_release(&l);
    test_run(loop);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(weft_lock_locked(&l), 0);
    drop(&a, 1);
    test_loop_free(loop);
}

Test(sync, condition_cancel_after_notify_passes_the_notification_on)
{
    weft_loop *loop = test_loop_new();
    weft_cond c;
    weft_cond_init(&c, loop, NULL);
    actor a[2] = {{loop, &c, "a", 0, 0, 0, NULL}, {loop, &c, "b", 0, 0, 0, NULL}};
    spawn(&a[0], cond_user);
    spawn(&a[1], cond_user);
    test_run(loop);
    weft_lock_try_acquire(weft_cond_lock(&c));
    cr_assert_eq(weft_cond_notify(&c, 1), 1); /* a is notified ... */
    weft_future_cancel(a[0].task);            /* ... and cancelled */
    weft_lock_release(weft_cond_lock(&c));
    test_run(loop);
    cr_assert_eq(a[0].rc, -ECANCELED);
    cr_assert_eq(a[1].rc, 0);
    cr_assert_str_eq(trace, "b");
    drop(a, 2);
    test_loop_free(loop);
}

static int counter_at_least_3(void *arg)
{
    return *(int *)arg >= 3;
}

typedef struct {
    weft_cond *c;
    int *counter;
    int rc;
} pred_waiter;

static int wait_for_counter(void *arg, intptr_t *result)
{
    (void)result;
    pred_waiter *p = arg;
    weft_lock_acquire(weft_cond_lock(p->c));
    p->rc = weft_cond_wait_for(p->c, counter_at_least_3, p->counter);
    weft_lock_release(weft_cond_lock(p->c));
    return p->rc;
}

Test(sync, condition_wait_for_checks_the_predicate)
{
    weft_loop *loop = test_loop_new();
    weft_cond c;
    weft_cond_init(&c, loop, NULL);
    int counter = 0;
    pred_waiter p = {&c, &counter, 1};
    weft_future *t;
    weft_task_spawn(loop, wait_for_counter, &p, &t);
    for (int i = 0; i < 3; i++) {
        test_run(loop);
        cr_assert_eq(weft_future_state(t), WEFT_FUTURE_PENDING);
        counter++;
        weft_lock_try_acquire(weft_cond_lock(&c));
        weft_cond_notify_all(&c);
        weft_lock_release(weft_cond_lock(&c));
    }
    test_run(loop);
    cr_assert_eq(p.rc, 0);
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_DONE);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(sync, condition_bad_input)
{
    weft_loop *loop = test_loop_new(), *other = test_loop_new();
    weft_cond c;
    weft_lock foreign;
    weft_lock_init(&foreign, other);
    cr_assert_eq(weft_cond_init(NULL, loop, NULL), -EINVAL);
    cr_assert_eq(weft_cond_init(&c, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_cond_init(&c, loop, &foreign), -EINVAL);
    cr_assert_null(weft_cond_lock(NULL));
    cr_assert_eq(weft_cond_wait(NULL), -EINVAL);
    cr_assert_eq(weft_cond_wait_for(NULL, counter_at_least_3, NULL), -EINVAL);
    cr_assert_eq(weft_cond_notify(NULL, 1), -EINVAL);
    cr_assert_eq(weft_cond_notify_all(NULL), -EINVAL);
    weft_cond_init(&c, loop, NULL);
    cr_assert_eq(weft_cond_wait_for(&c, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_cond_notify(&c, -1), -EINVAL);
    cr_assert_eq(weft_cond_notify(&c, 1), -EPERM, "lock not held");
    cr_assert_eq(weft_cond_wait(&c), -EPERM);
    test_loop_free(loop);
    test_loop_free(other);
}

/* --- Queue --- */

static int getter(void *arg, intptr_t *result)
{
    actor *a = arg;
    a->rc = weft_queue_get(a->obj, &a->item);
    if (a->rc == 0) {
        char s[8];
        s[0] = a->name[0];
        s[1] = (char)('0' + a->item);
        s[2] = 0;
        note(s);
    }
    *result = a->item;
    return a->rc;
}

static int putter(void *arg, intptr_t *result)
{
    (void)result;
    actor *a = arg;
    a->rc = weft_queue_put(a->obj, a->item);
    if (a->rc == 0)
        note(a->name);
    return a->rc;
}

Test(sync, queue_items_and_getters_are_fifo)
{
    weft_loop *loop = test_loop_new();
    weft_queue q;
    cr_assert_eq(weft_queue_init(&q, loop, 4), 0);
    actor g[3] = {{loop, &q, "a", 0, 0, 0, NULL},
                  {loop, &q, "b", 0, 0, 0, NULL},
                  {loop, &q, "c", 0, 0, 0, NULL}};
    for (int i = 0; i < 3; i++)
        spawn(&g[i], getter);
    test_run(loop);
    cr_assert_eq(weft_queue_try_put(&q, 1), 0);
    cr_assert_eq(weft_queue_try_put(&q, 2), 0);
    intptr_t v;
    cr_assert_eq(weft_queue_try_get(&q, &v), -EAGAIN, "both items promised to woken getters");
    cr_assert_eq(weft_queue_try_put(&q, 3), 0);
    cr_assert_eq(weft_queue_try_put(&q, 4), 0);
    test_run(loop);
    cr_assert_str_eq(trace, "a1b2c3");
    cr_assert_eq(weft_queue_size(&q), 1);
    cr_assert_eq(weft_queue_try_get(&q, &v), 0);
    cr_assert_eq(v, 4);
    cr_assert_eq(weft_queue_try_get(&q, &v), -EAGAIN);
    drop(g, 3);
    cr_assert_eq(weft_queue_destroy(&q), 0);
    test_loop_free(loop);
}

Test(sync, queue_putters_wait_when_full_in_fifo_order)
{
    weft_loop *loop = test_loop_new();
    weft_queue q;
    weft_queue_init(&q, loop, 2);
    cr_assert_eq(weft_queue_try_put(&q, 1), 0);
    cr_assert_eq(weft_queue_try_put(&q, 2), 0);
    cr_assert_eq(weft_queue_try_put(&q, 9), -EAGAIN);
    actor p[2] = {{loop, &q, "x", 3, 0, 0, NULL}, {loop, &q, "y", 4, 0, 0, NULL}};
    spawn(&p[0], putter);
    spawn(&p[1], putter);
    test_run(loop);
    cr_assert_str_eq(trace, "");
    intptr_t v;
    cr_assert_eq(weft_queue_try_get(&q, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(weft_queue_try_put(&q, 9), -EAGAIN, "the free slot is promised to x");
    test_run(loop);
    cr_assert_str_eq(trace, "x");
    weft_queue_try_get(&q, &v);
    cr_assert_eq(v, 2);
    test_run(loop);
    cr_assert_str_eq(trace, "xy");
    weft_queue_try_get(&q, &v);
    cr_assert_eq(v, 3);
    weft_queue_try_get(&q, &v);
    cr_assert_eq(v, 4);
    drop(p, 2);
    weft_queue_destroy(&q);
    test_loop_free(loop);
}

Test(sync, queue_cancel_get_and_put_while_waiting)
{
    weft_loop *loop = test_loop_new();
    weft_queue q;
    weft_queue_init(&q, loop, 1);
    actor g = {loop, &q, "g", 0, 0, 0, NULL};
    spawn(&g, getter);
    test_run(loop);
    cr_assert_eq(weft_queue_destroy(&q), -EBUSY);
    weft_future_cancel(g.task);
    test_run(loop);
    cr_assert_eq(g.rc, -ECANCELED);
    weft_queue_try_put(&q, 5);
    actor p = {loop, &q, "p", 6, 0, 0, NULL};
    spawn(&p, putter);
    test_run(loop);
    weft_future_cancel(p.task);
    test_run(loop);
    cr_assert_eq(p.rc, -ECANCELED);
    cr_assert_eq(weft_queue_size(&q), 1);
    intptr_t v;
    weft_queue_try_get(&q, &v);
    cr_assert_eq(v, 5);
    cr_assert_str_eq(trace, "");
    drop(&g, 1);
    drop(&p, 1);
    cr_assert_eq(weft_queue_destroy(&q), 0);
    test_loop_free(loop);
}

Test(sync, queue_cancel_after_handover_loses_no_item_or_slot)
{
    weft_loop *loop = test_loop_new();
    weft_queue q;
    weft_queue_init(&q, loop, 1);
    actor g[2] = {{loop, &q, "a", 0, 0, 0, NULL}, {loop, &q, "b", 0, 0, 0, NULL}};
    spawn(&g[0], getter);
    spawn(&g[1], getter);
    test_run(loop);
    weft_queue_try_put(&q, 7);     /* promised to a ... */
    weft_future_cancel(g[0].task); /* ... cancelled before it takes it */
    test_run(loop);
    cr_assert_eq(g[0].rc, -ECANCELED);
    cr_assert_str_eq(trace, "b7");

    /* The same for a slot: full queue, two putters, a get frees a slot. */
    weft_queue_try_put(&q, 1);
    actor p[2] = {{loop, &q, "x", 2, 0, 0, NULL}, {loop, &q, "y", 3, 0, 0, NULL}};
    spawn(&p[0], putter);
    spawn(&p[1], putter);
    test_run(loop);
    intptr_t v;
    weft_queue_try_get(&q, &v); /* slot promised to x ... */
    weft_future_cancel(p[0].task);
    test_run(loop);
    cr_assert_eq(p[0].rc, -ECANCELED);
    cr_assert_eq(p[1].rc, 0);
    weft_queue_try_get(&q, &v);
    cr_assert_eq(v, 3);

    /* And with nobody next in line, the promise is simply dropped. */
    actor h = {loop, &q, "h", 0, 0, 0, NULL};
    spawn(&h, getter);
    test_run(loop);
    weft_queue_try_put(&q, 8);
    weft_future_cancel(h.task);
    test_run(loop);
    cr_assert_eq(weft_queue_try_get(&q, &v), 0);
    cr_assert_eq(v, 8);
    drop(g, 2);
    drop(p, 2);
    drop(&h, 1);
    weft_queue_destroy(&q);
    test_loop_free(loop);
}

static int joiner(void *arg, intptr_t *result)
{
    (void)result;
    actor *a = arg;
    a->rc = weft_queue_join(a->obj);
    if (a->rc == 0)
        note(a->name);
    return a->rc;
}

Test(sync, queue_task_done_and_join)
{
    weft_loop *loop = test_loop_new();
    weft_queue q;
    weft_queue_init(&q, loop, 4);
    cr_assert_eq(weft_queue_task_done(&q), -EOVERFLOW);
    actor j0 = {loop, &q, "0", 0, 0, 0, NULL};
    spawn(&j0, joiner);
    test_run(loop);
    cr_assert_str_eq(trace, "0", "nothing unfinished: join returns at once");
    weft_queue_try_put(&q, 1);
    weft_queue_try_put(&q, 2);
    actor j[2] = {{loop, &q, "j", 0, 0, 0, NULL}, {loop, &q, "k", 0, 0, 0, NULL}};
    spawn(&j[0], joiner);
    spawn(&j[1], joiner);
    test_run(loop);
    intptr_t v;
    weft_queue_try_get(&q, &v);
    weft_queue_try_get(&q, &v);
    cr_assert_eq(weft_queue_task_done(&q), 0);
    test_run(loop);
    cr_assert_str_eq(trace, "0");
    weft_future_cancel(j[1].task);
    cr_assert_eq(weft_queue_task_done(&q), 0);
    test_run(loop);
    cr_assert_str_eq(trace, "0j");
    cr_assert_eq(j[1].rc, -ECANCELED);
    cr_assert_eq(weft_queue_task_done(&q), -EOVERFLOW);
    drop(&j0, 1);
    drop(j, 2);
    weft_queue_destroy(&q);
    test_loop_free(loop);
}

Test(sync, queue_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_queue q;
    intptr_t v;
    cr_assert_eq(weft_queue_init(NULL, loop, 1), -EINVAL);
    cr_assert_eq(weft_queue_init(&q, NULL, 1), -EINVAL);
    cr_assert_eq(weft_queue_init(&q, loop, 0), -EINVAL);
    cr_assert_eq(weft_queue_init(&q, loop, SIZE_MAX), -EINVAL);
    cr_assert_eq(weft_queue_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_queue_put(NULL, 1), -EINVAL);
    cr_assert_eq(weft_queue_get(NULL, &v), -EINVAL);
    cr_assert_eq(weft_queue_try_put(NULL, 1), -EINVAL);
    cr_assert_eq(weft_queue_try_get(NULL, &v), -EINVAL);
    cr_assert_eq(weft_queue_size(NULL), -EINVAL);
    cr_assert_eq(weft_queue_task_done(NULL), -EINVAL);
    cr_assert_eq(weft_queue_join(NULL), -EINVAL);
    cr_assert_eq(weft_queue_init(&q, loop, 1), 0);
    cr_assert_eq(weft_queue_try_get(&q, NULL), -EINVAL);
    cr_assert_eq(weft_queue_get(&q, NULL), -EINVAL);
    cr_assert_eq(weft_queue_put(&q, 1), -EPERM);
    cr_assert_eq(weft_queue_get(&q, &v), -EPERM);
    cr_assert_eq(weft_queue_join(&q), -EPERM);
    cr_assert_eq(weft_queue_destroy(&q), 0);
    cr_assert_eq(weft_queue_destroy(&q), -EINVAL, "already destroyed");
    test_loop_free(loop);
}

/* A waiter's future comes from the loop's free lists: many waits, and a
 * loop freed while tasks still wait on a primitive leaks nothing. */
Test(sync, loop_free_with_tasks_waiting)
{
    weft_loop *loop = test_loop_new();
    weft_lock l;
    weft_lock_init(&l, loop);
    weft_lock_try_acquire(&l);
    weft_queue q;
    weft_queue_init(&q, loop, 1);
    actor a = {loop, &l, "a", 0, 0, 0, NULL};
    actor g = {loop, &q, "g", 0, 0, 0, NULL};
    spawn(&a, lock_user);
    spawn(&g, getter);
    test_run(loop);
    drop(&a, 1);
    drop(&g, 1);
    test_loop_free(loop);
    free(q.ring_); /* the queue outlived its loop; its memory is the caller's */
}

/* --- gather --- */

typedef struct {
    weft_loop *loop;
    int yields;
    intptr_t value;
    int err;
    int cleaned; /* set when a cancel was seen and the body cleaned up */
    int64_t sleep_ns;
} job_spec;

/* Yield `yields` times (or sleep), then return value or err. A cancel makes
 * it clean up over two more yields and return -ECANCELED. */
static int worker_task(void *arg, intptr_t *result)
{
    job_spec *j = arg;
    int rc = 0;
    for (int i = 0; i < j->yields && !rc; i++)
        rc = weft_yield(j->loop);
    if (!rc && j->sleep_ns)
        rc = weft_sleep(j->loop, j->sleep_ns);
    if (rc == -ECANCELED) {
        weft_yield(j->loop);
        weft_yield(j->loop);
        j->cleaned = 1;
        return rc;
    }
    *result = j->value;
    return j->err;
}

Test(sync, gather_keeps_results_in_order)
{
    weft_loop *loop = test_loop_new();
    job_spec js[3] = {{loop, 3, 10, 0, 0, 0}, {loop, 1, 20, 0, 0, 0}, {loop, 2, 30, 0, 0, 0}};
    weft_future *t[3], *g;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_task_spawn(loop, worker_task, &js[i], &t[i]), 0);
    cr_assert_eq(weft_gather(loop, t, 3, 0, &g), 0);
    intptr_t v = 0;
    cr_assert_eq(weft_run_until_complete(loop, g, &v), 0);
    cr_assert_eq(v, 3);
    intptr_t r[3];
    int e[3];
    cr_assert_eq(weft_gather_results(t, 3, r, e), 0);
    cr_assert_eq(r[0], 10);
    cr_assert_eq(r[1], 20);
    cr_assert_eq(r[2], 30);
    cr_assert_eq(e[0] | e[1] | e[2], 0);
    for (int i = 0; i < 3; i++)
        weft_future_unref(t[i]);
    weft_future_unref(g);
    test_loop_free(loop);
}

Test(sync, gather_of_nothing_and_of_done_futures)
{
    weft_loop *loop = test_loop_new();
    weft_future *g;
    cr_assert_eq(weft_gather(loop, NULL, 0, 0, &g), 0);
    cr_assert_eq(weft_future_state(g), WEFT_FUTURE_DONE);
    weft_future_unref(g);
    weft_future *f[2];
    weft_future_new(loop, &f[0]);
    weft_future_new(loop, &f[1]);
    weft_future_set_result(f[0], 1);
    weft_future_set_result(f[1], 2);
    cr_assert_eq(weft_gather(loop, f, 2, 0, &g), 0);
    test_run(loop);
    intptr_t v;
    cr_assert_eq(weft_future_result(g, &v), 0);
    cr_assert_eq(v, 2);
    intptr_t r[2];
    cr_assert_eq(weft_gather_results(f, 2, r, NULL), 0);
    cr_assert_eq(r[1], 2);
    weft_future_unref(g);
    weft_future_unref(f[0]);
    weft_future_unref(f[1]);
    test_loop_free(loop);
}

Test(sync, gather_first_error_cancels_the_rest)
{
    weft_loop *loop = test_loop_new();
    job_spec js[2] = {{loop, 1, 0, -EIO, 0, 0}, {loop, 0, 5, 0, 0, 1000 * MS}};
    weft_future *c[3], *g;
    weft_task_spawn(loop, worker_task, &js[0], &c[0]);
    weft_task_spawn(loop, worker_task, &js[1], &c[1]);
    weft_future_new(loop, &c[2]);
    cr_assert_eq(weft_gather(loop, c, 3, 0, &g), 0);
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, g, &v), -EIO);
    test_run(loop); /* the cancelled task cleans up */
    cr_assert_eq(weft_future_state(c[1]), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(js[1].cleaned, 1);
    cr_assert_eq(weft_future_state(c[2]), WEFT_FUTURE_CANCELLED);
    int e[3];
    cr_assert_eq(weft_gather_results(c, 3, NULL, e), -EIO);
    cr_assert_eq(e[1], -ECANCELED);
    for (int i = 0; i < 3; i++)
        weft_future_unref(c[i]);
    weft_future_unref(g);
    test_loop_free(loop);
}

Test(sync, gather_return_errors_waits_for_all)
{
    weft_loop *loop = test_loop_new();
    job_spec js[2] = {{loop, 1, 0, -EIO, 0, 0}, {loop, 3, 5, 0, 0, 0}};
    weft_future *c[3], *g;
    weft_task_spawn(loop, worker_task, &js[0], &c[0]);
    weft_task_spawn(loop, worker_task, &js[1], &c[1]);
    weft_future_new(loop, &c[2]);
    cr_assert_eq(weft_gather(loop, c, 3, WEFT_GATHER_RETURN_ERRORS, &g), 0);
    test_run(loop);
    cr_assert_eq(weft_future_state(g), WEFT_FUTURE_PENDING);
    weft_future_cancel(c[2]); /* a cancelled child is just an outcome here */
    intptr_t v;
    cr_assert_eq(weft_run_until_complete(loop, g, &v), 0);
    cr_assert_eq(v, 3);
    intptr_t r[3];
    int e[3];
    cr_assert_eq(weft_gather_results(c, 3, r, e), -EIO);
    cr_assert_eq(e[0], -EIO);
    cr_assert_eq(e[1], 0);
    cr_assert_eq(r[1], 5);
    cr_assert_eq(e[2], -ECANCELED);
    for (int i = 0; i < 3; i++)
        weft_future_unref(c[i]);
    weft_future_unref(g);
    test_loop_free(loop);
}

Test(sync, gather_child_cancelled_fails_the_gather)
{
    weft_loop *loop = test_loop_new();
    weft_future *c[2], *g;
    weft_future_new(loop, &c[0]);
    weft_future_new(loop, &c[1]);
    weft_gather(loop, c, 2, 0, &g);
    weft_future_cancel(c[0]);
    test_run(loop);
    cr_assert_eq(weft_future_result(g, NULL), -ECANCELED);
    cr_assert_eq(weft_future_state(c[1]), WEFT_FUTURE_CANCELLED);
    weft_future_unref(c[0]);
    weft_future_unref(c[1]);
    weft_future_unref(g);
    test_loop_free(loop);
}

typedef struct {
    weft_future *f;
    int rc;
    intptr_t v;
} await_spec;

static int await_task(void *arg, intptr_t *result)
{
    await_spec *a = arg;
    a->rc = weft_await(a->f, &a->v);
    *result = a->v;
    return a->rc;
}

Test(sync, cancelling_a_task_awaiting_gather_cancels_the_children)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 0, 5, 0, 0, 1000 * MS};
    weft_future *c[2], *g, *t;
    weft_task_spawn(loop, worker_task, &js, &c[0]);
    weft_future_new(loop, &c[1]);
    weft_gather(loop, c, 2, 0, &g);
    await_spec a = {g, 0, 0};
    weft_task_spawn(loop, await_task, &a, &t);
    weft_loop_run(loop, WEFT_RUN_ONCE);
    weft_future_cancel(t);
    test_run(loop);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(weft_future_state(g), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(weft_future_state(c[0]), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(weft_future_state(c[1]), WEFT_FUTURE_CANCELLED);
    cr_assert_eq(js.cleaned, 1);
    weft_future_unref(c[0]);
    weft_future_unref(c[1]);
    weft_future_unref(g);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(sync, gather_bad_input_and_loop_free_while_pending)
{
    weft_loop *loop = test_loop_new(), *other = test_loop_new();
    weft_future *f, *foreign, *g;
    weft_future_new(loop, &f);
    weft_future_new(other, &foreign);
    weft_future *list[2] = {f, NULL};
    cr_assert_eq(weft_gather(NULL, list, 1, 0, &g), -EINVAL);
    cr_assert_eq(weft_gather(loop, list, 1, 0, NULL), -EINVAL);
    cr_assert_eq(weft_gather(loop, NULL, 1, 0, &g), -EINVAL);
    cr_assert_eq(weft_gather(loop, list, 2, 0, &g), -EINVAL);
    cr_assert_eq(weft_gather(loop, list, 1, 0x100, &g), -EINVAL);
    list[1] = foreign;
    cr_assert_eq(weft_gather(loop, list, 2, 0, &g), -EINVAL);
    cr_assert_eq(weft_gather_results(NULL, 1, NULL, NULL), -EINVAL);
    list[1] = NULL;
    cr_assert_eq(weft_gather_results(list, 2, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_gather_results(list, 1, NULL, NULL), -EAGAIN);
    /* A gather still pending at loop close is freed with the loop. */
    cr_assert_eq(weft_gather(loop, list, 1, 0, &g), 0);
    weft_future_unref(g);
    weft_future_unref(f);
    weft_future_unref(foreign);
    test_loop_free(loop);
    test_loop_free(other);
}

/* --- wait --- */

typedef struct {
    weft_loop *loop;
    weft_future **fs;
    size_t n;
    int mode;
    int64_t timeout;
    int rc;
    size_t done;
} wait_spec;

static int wait_task(void *arg, intptr_t *result)
{
    (void)result;
    wait_spec *w = arg;
    w->rc = weft_wait(w->loop, w->fs, w->n, w->mode, w->timeout, &w->done);
    return 0;
}

static void run_task(weft_loop *loop, weft_task_fn fn, void *arg)
{
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, fn, arg, &t), 0);
    cr_assert_eq(weft_run_until_complete(loop, t, NULL), 0);
    weft_future_unref(t);
}

Test(sync, wait_first_completed_and_all_completed)
{
    weft_loop *loop = test_loop_new();
    job_spec js[3] = {{loop, 5, 1, 0, 0, 0}, {loop, 1, 2, 0, 0, 0}, {loop, 3, 3, 0, 0, 0}};
    weft_future *t[3];
    for (int i = 0; i < 3; i++)
        weft_task_spawn(loop, worker_task, &js[i], &t[i]);
    wait_spec w = {loop, t, 3, WEFT_WAIT_FIRST_COMPLETED, -1, 1, 0};
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.done, 1);
    cr_assert_eq(weft_future_state(t[1]), WEFT_FUTURE_DONE);
    cr_assert_eq(weft_future_state(t[0]), WEFT_FUTURE_PENDING, "nothing is cancelled");
    w.mode = WEFT_WAIT_ALL_COMPLETED;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.done, 3);
    /* Already done: returns at once, also with timeout 0. */
    w.timeout = 0;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, 0);
    for (int i = 0; i < 3; i++)
        weft_future_unref(t[i]);
    test_loop_free(loop);
}

Test(sync, wait_first_error)
{
    weft_loop *loop = test_loop_new();
    job_spec js[2] = {{loop, 1, 1, 0, 0, 0}, {loop, 3, 0, -EIO, 0, 0}};
    weft_future *t[3];
    weft_task_spawn(loop, worker_task, &js[0], &t[0]);
    weft_task_spawn(loop, worker_task, &js[1], &t[1]);
    weft_future_new(loop, &t[2]);
    wait_spec w = {loop, t, 3, WEFT_WAIT_FIRST_ERROR, -1, 1, 0};
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.done, 2);
    cr_assert_eq(weft_future_result(t[1], NULL), -EIO);
    cr_assert_eq(weft_future_state(t[2]), WEFT_FUTURE_PENDING);
    for (int i = 0; i < 3; i++)
        weft_future_unref(t[i]);
    test_loop_free(loop);
}

Test(sync, wait_timeout_leaves_futures_pending)
{
    weft_loop *loop = test_loop_new();
    weft_future *f[2];
    weft_future_new(loop, &f[0]);
    weft_future_new(loop, &f[1]);
    wait_spec w = {loop, f, 2, WEFT_WAIT_ALL_COMPLETED, 0, 1, 9};
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -ETIMEDOUT, "timeout 0 only checks");
    cr_assert_eq(w.done, 0);
    weft_future_set_result(f[0], 1);
    w.timeout = 20 * MS;
    uint64_t t0 = weft_loop_update_time(loop);
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -ETIMEDOUT);
    cr_assert_eq(w.done, 1);
    cr_assert_geq(weft_loop_update_time(loop) - t0, (uint64_t)20 * MS);
    cr_assert_eq(weft_future_state(f[1]), WEFT_FUTURE_PENDING);
    weft_future_unref(f[0]);
    weft_future_unref(f[1]);
    test_loop_free(loop);
}

Test(sync, wait_cancelled_returns_ecanceled_and_cancels_nothing)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    weft_future_new(loop, &f);
    wait_spec w = {loop, &f, 1, WEFT_WAIT_FIRST_COMPLETED, -1, 1, 9};
    weft_future *t;
    weft_task_spawn(loop, wait_task, &w, &t);
    test_run(loop);
    weft_future_cancel(t);
    test_run(loop);
    cr_assert_eq(w.rc, -ECANCELED);
    cr_assert_eq(w.done, 0);
    cr_assert_eq(weft_future_state(f), WEFT_FUTURE_PENDING);
    weft_future_unref(f);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(sync, wait_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    weft_future_new(loop, &f);
    size_t d;
    cr_assert_eq(weft_wait(loop, &f, 1, 0, -1, &d), -EPERM);
    wait_spec w = {loop, &f, 0, WEFT_WAIT_FIRST_COMPLETED, -1, 1, 0};
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -EINVAL, "an empty list, as asyncio");
    w.n = 1;
    w.mode = 7;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -EINVAL);
    w.mode = 0;
    w.timeout = -2;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -EINVAL);
    w.timeout = -1;
    w.fs = NULL;
    run_task(loop, wait_task, &w);
    cr_assert_eq(w.rc, -EINVAL);
    cr_assert_eq(weft_wait(NULL, &f, 1, 0, -1, &d), -EINVAL);
    weft_future_unref(f);
    test_loop_free(loop);
}

/* --- wait_for --- */

typedef struct {
    weft_future *f;
    int64_t timeout;
    int rc;
    intptr_t v;
    int inner_cleaned_at_return;
    job_spec *inner;
} wait_for_spec;

static int wait_for_task(void *arg, intptr_t *result)
{
    (void)result;
    wait_for_spec *w = arg;
    w->rc = weft_wait_for(w->f, w->timeout, &w->v);
    if (w->inner)
        w->inner_cleaned_at_return = w->inner->cleaned;
    return 0;
}

Test(sync, wait_for_in_time_returns_the_result)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 2, 77, 0, 0, 0};
    weft_future *t;
    weft_task_spawn(loop, worker_task, &js, &t);
    wait_for_spec w = {t, 1000 * MS, 1, 0, 0, NULL};
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.v, 77);
    /* Done already: even timeout 0 gives the result. */
    w.timeout = 0;
    w.v = 0;
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.v, 77);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(sync, wait_for_timeout_cancels_and_waits_for_the_inner_task)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 0, 5, 0, 0, 1000 * MS};
    weft_future *t;
    weft_task_spawn(loop, worker_task, &js, &t);
    wait_for_spec w = {t, 10 * MS, 1, 0, 0, &js};
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, -ETIMEDOUT);
    cr_assert_eq(w.inner_cleaned_at_return, 1, "returned only after the inner task finished");
    cr_assert_eq(weft_future_state(t), WEFT_FUTURE_CANCELLED);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(sync, wait_for_timeout_zero_on_a_pending_future)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    weft_future_new(loop, &f);
    wait_for_spec w = {f, 0, 1, 0, 0, NULL};
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, -ETIMEDOUT);
    cr_assert_eq(weft_future_state(f), WEFT_FUTURE_CANCELLED);
    weft_future_unref(f);
    test_loop_free(loop);
}

/* Ignores the first cancel and returns a value anyway. */
static int stubborn(void *arg, intptr_t *result)
{
    weft_loop *loop = arg;
    if (weft_sleep(loop, 1000 * MS) == -ECANCELED)
        weft_yield(loop);
    *result = 99;
    return 0;
}

Test(sync, wait_for_returns_the_result_of_an_inner_task_that_ignored_the_cancel)
{
    weft_loop *loop = test_loop_new();
    weft_future *t;
    weft_task_spawn(loop, stubborn, loop, &t);
    wait_for_spec w = {t, 5 * MS, 1, 0, 0, NULL};
    run_task(loop, wait_for_task, &w);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(w.v, 99);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(sync, wait_for_cancelled_caller_cancels_the_inner_one)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 0, 5, 0, 0, 1000 * MS};
    weft_future *inner, *t;
    weft_task_spawn(loop, worker_task, &js, &inner);
    wait_for_spec w = {inner, -1, 1, 0, 0, &js};
    weft_task_spawn(loop, wait_for_task, &w, &t);
    weft_loop_run(loop, WEFT_RUN_ONCE); /* both suspended now */
    weft_future_cancel(t);
    test_run(loop);
    cr_assert_eq(w.rc, -ECANCELED);
    cr_assert_eq(w.inner_cleaned_at_return, 1);
    cr_assert_eq(weft_future_state(inner), WEFT_FUTURE_CANCELLED);
    weft_future_unref(inner);
    weft_future_unref(t);
    test_loop_free(loop);
}

Test(sync, wait_for_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    weft_future_new(loop, &f);
    cr_assert_eq(weft_wait_for(NULL, -1, NULL), -EINVAL);
    cr_assert_eq(weft_wait_for(f, -5, NULL), -EINVAL);
    cr_assert_eq(weft_wait_for(f, -1, NULL), -EPERM);
    weft_future_unref(f);
    test_loop_free(loop);
}

/* --- shield --- */

Test(sync, shield_cancel_of_the_outer_leaves_the_inner_running)
{
    weft_loop *loop = test_loop_new();
    job_spec js = {loop, 3, 42, 0, 0, 0};
    weft_future *inner, *outer, *t;
    weft_task_spawn(loop, worker_task, &js, &inner);
    cr_assert_eq(weft_shield(inner, &outer), 0);
    await_spec a = {outer, 0, 0};
    weft_task_spawn(loop, await_task, &a, &t);
    weft_loop_run(loop, WEFT_RUN_ONCE);
    weft_future_cancel(t); /* cancels outer through the await */
    test_run(loop);
    cr_assert_eq(a.rc, -ECANCELED);
    cr_assert_eq(weft_future_state(outer), WEFT_FUTURE_CANCELLED);
    intptr_t v;
    cr_assert_eq(weft_future_result(inner, &v), 0);
    cr_assert_eq(v, 42);
    weft_future_unref(outer);
    weft_future_unref(t);
    /* Outcomes are copied: result, error, cancel, and an already-done one. */
    weft_future *f[3], *o[3];
    for (int i = 0; i < 3; i++) {
        weft_future_new(loop, &f[i]);
        cr_assert_eq(weft_shield(f[i], &o[i]), 0);
    }
    weft_future_set_result(f[0], 7);
    weft_future_set_error(f[1], -EIO);
    weft_future_cancel(f[2]);
    test_run(loop);
    cr_assert_eq(weft_future_result(o[0], &v), 0);
    cr_assert_eq(v, 7);
    cr_assert_eq(weft_future_result(o[1], &v), -EIO);
    cr_assert_eq(weft_future_state(o[2]), WEFT_FUTURE_CANCELLED);
    weft_future *done;
    cr_assert_eq(weft_shield(f[0], &done), 0);
    cr_assert_eq(weft_future_result(done, &v), 0);
    cr_assert_eq(v, 7);
    weft_future_unref(done);
    for (int i = 0; i < 3; i++) {
        weft_future_unref(f[i]);
        weft_future_unref(o[i]);
    }
    cr_assert_eq(weft_shield(NULL, &done), -EINVAL);
    cr_assert_eq(weft_shield(inner, NULL), -EINVAL);
    weft_future_unref(inner);
    test_loop_free(loop);
}

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

Test(sync, executor_runs_jobs_and_reports_results_and_errors)
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

Test(sync, executor_cancelled_job_result_is_dropped)
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

Test(sync, executor_loop_free_with_jobs_running_and_queued)
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

Test(sync, executor_results_arrive_on_the_loop_thread)
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
Test(sync, executor_wakes_the_loop_every_round)
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
Test(sync, executor_opens_no_descriptor)
{
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
}

Test(sync, executor_bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_future *f;
    cr_assert_eq(weft_run_in_executor(NULL, double_it, NULL, &f), -EINVAL);
    cr_assert_eq(weft_run_in_executor(loop, NULL, NULL, &f), -EINVAL);
    test_loop_free(loop);
}
