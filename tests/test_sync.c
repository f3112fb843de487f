/* Loop-level suite: sync primitives (Lock, Semaphore, Event, Condition,
 * Queue), composition (gather, wait, wait_for, shield) and the executor:
 * FIFO wakeups, cancel at every suspension point (also after a wakeup was
 * handed over), edge cases, bad input. Runs once per backend.
 *
 * Most tests drive the loop from the test body: tasks block, the loop goes
 * idle, the body changes something (release, set, put, cancel) and runs the
 * loop again. */
#include "common.h"

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
