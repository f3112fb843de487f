/* Loop-level suite: Event and Condition (include/weft/sync.h), and
 * weft_wait_cancelled (task.h): FIFO wakeups, cancel while waiting and after
 * a notification was handed over, predicates, bad input. Runs once per backend.
 *
 * Most tests drive the loop from the test body: tasks block, the loop goes
 * idle, the body changes something (release, set, put, cancel) and runs the
 * loop again. */
#include "sync_actors.h"

#define MS 1000000LL

TestSuite(event_cond, .timeout = 30);

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

Test(event_cond, event_set_wakes_all_in_order)
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

Test(event_cond, event_bad_input)
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

Test(event_cond, wait_cancelled_returns_only_on_cancel)
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

Test(event_cond, wait_cancelled_alone_is_a_deadlock_and_needs_a_task)
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

Test(event_cond, condition_notify_wakes_in_fifo_order)
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

Test(event_cond, condition_cancel_while_waiting_reacquires_the_lock)
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

Test(event_cond, condition_cancel_after_notify_passes_the_notification_on)
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

Test(event_cond, condition_wait_for_checks_the_predicate)
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

Test(event_cond, condition_bad_input)
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
