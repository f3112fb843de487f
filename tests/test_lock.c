/* Loop-level suite: Lock, Semaphore and BoundedSemaphore (include/weft/
 * sync.h): FIFO wakeups, cancel at every suspension point (also after the
 * lock or a unit was handed over), edge cases, bad input. Runs once per backend.
 *
 * Most tests drive the loop from the test body: tasks block, the loop goes
 * idle, the body changes something (release, set, put, cancel) and runs the
 * loop again. */
#include "sync_actors.h"

TestSuite(lock, .timeout = 30);

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

Test(lock, lock_wakes_waiters_in_fifo_order)
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

Test(lock, lock_cancel_while_waiting)
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

Test(lock, lock_cancel_after_handover_passes_the_lock_on)
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

Test(lock, lock_bad_input)
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

Test(lock, semaphore_admits_value_holders_in_fifo_order)
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

Test(lock, semaphore_cancel_while_waiting_and_after_handover)
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

Test(lock, semaphore_handed_unit_returns_when_nobody_else_waits)
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

Test(lock, bounded_semaphore_refuses_extra_release)
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

Test(lock, semaphore_bad_input)
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

/* A waiter's future comes from the loop's free lists: a loop freed while
 * tasks still wait on a lock leaks nothing. */
Test(lock, loop_free_with_tasks_waiting)
{
    weft_loop *loop = test_loop_new();
    weft_lock l;
    weft_lock_init(&l, loop);
    weft_lock_try_acquire(&l);
    actor a = {loop, &l, "a", 0, 0, 0, NULL};
    actor b = {loop, &l, "b", 0, 0, 0, NULL};
    spawn(&a, lock_user);
    spawn(&b, lock_user);
    test_run(loop);
    drop(&a, 1);
    drop(&b, 1);
    test_loop_free(loop);
}
