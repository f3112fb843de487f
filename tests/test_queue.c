/* Loop-level suite: Queue (include/weft/sync.h): FIFO items, getters and
 * putters, cancel while waiting and after an item or slot was handed over
 * (nothing lost), task_done/join, bad input. Runs once per backend.
 *
 * Most tests drive the loop from the test body: tasks block, the loop goes
 * idle, the body changes something (release, set, put, cancel) and runs the
 * loop again. */
#include "sync_actors.h"

TestSuite(queue, .timeout = 30);

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

Test(queue, queue_items_and_getters_are_fifo)
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

Test(queue, queue_putters_wait_when_full_in_fifo_order)
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

Test(queue, queue_cancel_get_and_put_while_waiting)
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

Test(queue, queue_cancel_after_handover_loses_no_item_or_slot)
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

Test(queue, queue_task_done_and_join)
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

Test(queue, queue_bad_input)
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

/* A waiter's future comes from the loop's free lists: a loop freed while
 * tasks still wait on a queue (to get, to put) leaks nothing. */
Test(queue, loop_free_with_tasks_waiting)
{
    weft_loop *loop = test_loop_new();
    weft_queue empty, full;
    weft_queue_init(&empty, loop, 1);
    weft_queue_init(&full, loop, 1);
    weft_queue_try_put(&full, 1);
    actor g = {loop, &empty, "g", 0, 0, 0, NULL};
    actor p = {loop, &full, "p", 2, 0, 0, NULL};
    spawn(&g, getter);
    spawn(&p, putter);
    test_run(loop);
    drop(&g, 1);
    drop(&p, 1);
    test_loop_free(loop);
    /* the queues outlived their loop; their memory is the caller's */
    free(empty.ring_);
    free(full.ring_);
}
