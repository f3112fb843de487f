/* The sync primitives, each in a short scene with a deterministic trace:
 * Lock, Semaphore, BoundedSemaphore, Event, Condition and Queue (asyncio's
 * asyncio_lock, asyncio_event, asyncio_condition and asyncio_queue
 * programs, condensed). Wakeups are FIFO: tasks get their turn in the order
 * they started waiting.
 */
#include <weft.h>

#include <errno.h>
#include <stdio.h>

static weft_loop *loop;

/* Spawn one task per name running fn(name) and wait for all of them. */
static int run_all(weft_task_fn fn, const char *const *names, int n)
{
    weft_future *t[8];
    int rc = 0, spawned = 0;
    for (; spawned < n && rc == 0; spawned++)
        rc = weft_task_spawn(loop, fn, (void *)names[spawned], &t[spawned]);
    if (rc < 0)
        spawned--;
    weft_future *all;
    if (rc == 0 && (rc = weft_gather(loop, t, (size_t)n, 0, &all)) == 0) {
        rc = weft_await(all, NULL);
        weft_future_unref(all);
    }
    for (int i = 0; i < spawned; i++)
        weft_future_unref(t[i]);
    return rc;
}

static const char *const abc[] = {"a", "b", "c", "d"};

/* --- Lock: one task at a time, in arrival order --- */

static weft_lock lock;

static int lock_user(void *arg, intptr_t *result)
{
    (void)result;
    printf("%s: waiting for the lock\n", (const char *)arg);
    int rc = weft_lock_acquire(&lock);
    if (rc < 0)
        return rc;
    printf("%s: holds the lock\n", (const char *)arg);
    weft_yield(loop);
    printf("%s: releases the lock\n", (const char *)arg);
    return weft_lock_release(&lock);
}

/* --- Semaphore: two at a time --- */

static weft_semaphore sem;

static int sem_user(void *arg, intptr_t *result)
{
    (void)result;
    int rc = weft_semaphore_acquire(&sem);
    if (rc < 0)
        return rc;
    printf("%s: enters (%d free)\n", (const char *)arg, (int)weft_semaphore_value(&sem));
    weft_yield(loop);
    printf("%s: leaves\n", (const char *)arg);
    return weft_semaphore_release(&sem);
}

/* --- Event: waiters wake together when it is set --- */

static weft_event event;

static int event_user(void *arg, intptr_t *result)
{
    (void)result;
    const char *name = arg;
    if (*name == 's') {
        weft_yield(loop);
        printf("setter: setting the event\n");
        return weft_event_set(&event);
    }
    printf("%s: waiting for the event\n", name);
    int rc = weft_event_wait(&event);
    printf("%s: the event is set\n", name);
    return rc;
}

/* --- Condition: notify(1), then notify_all --- */

static weft_cond cond;

static int cond_user(void *arg, intptr_t *result)
{
    (void)result;
    const char *name = arg;
    weft_lock *l = weft_cond_lock(&cond);
    int rc = weft_lock_acquire(l);
    if (rc < 0)
        return rc;
    if (*name == 'n') {
        weft_lock_release(l);
        weft_yield(loop);
        weft_lock_acquire(l);
        printf("notifier: notify(1)\n");
        weft_cond_notify(&cond, 1);
        weft_lock_release(l);
        weft_yield(loop);
        weft_yield(loop);
        weft_lock_acquire(l);
        printf("notifier: notify_all()\n");
        weft_cond_notify_all(&cond);
        return weft_lock_release(l);
    }
    printf("%s: waiting on the condition\n", name);
    rc = weft_cond_wait(&cond);
    printf("%s: notified, holds the lock\n", name);
    weft_lock_release(l);
    return rc;
}

/* --- Queue: a producer and two consumers over a queue of 2 --- */

static weft_queue queue;

static int queue_user(void *arg, intptr_t *result)
{
    (void)result;
    const char *name = arg;
    if (*name == 'p') {
        for (intptr_t i = 1; i <= 5; i++) {
            weft_queue_put(&queue, i);
            printf("producer: put %d (size %d)\n", (int)i, (int)weft_queue_size(&queue));
        }
        for (int i = 0; i < 2; i++)
            weft_queue_put(&queue, 0); /* one "stop" per consumer */
        printf("producer: waiting for the queue to drain\n");
        weft_queue_join(&queue);
        printf("producer: all items processed\n");
        return 0;
    }
    for (;;) {
        intptr_t item;
        int rc = weft_queue_get(&queue, &item);
        if (rc < 0)
            return rc;
        weft_queue_task_done(&queue);
        if (item == 0)
            return 0;
        printf("%s: got %d\n", name, (int)item);
        weft_yield(loop);
    }
}

static int run(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    int rc;
    printf("== Lock\n");
    weft_lock_init(&lock, loop);
    if ((rc = run_all(lock_user, abc, 3)) < 0)
        return rc;

    printf("== Semaphore(2)\n");
    weft_semaphore_init(&sem, loop, 2);
    if ((rc = run_all(sem_user, abc, 4)) < 0)
        return rc;

    printf("== BoundedSemaphore(1)\n");
    weft_bounded_semaphore_init(&sem, loop, 1);
    printf("acquire: %d\n", weft_semaphore_acquire(&sem));
    printf("release: %d\n", weft_semaphore_release(&sem));
    printf("release again: %s\n",
           weft_semaphore_release(&sem) == -EOVERFLOW ? "-EOVERFLOW" : "accepted?");

    printf("== Event\n");
    weft_event_init(&event, loop);
    static const char *const ev[] = {"a", "b", "setter"};
    if ((rc = run_all(event_user, ev, 3)) < 0)
        return rc;

    printf("== Condition\n");
    weft_cond_init(&cond, loop, NULL);
    static const char *const cv[] = {"a", "b", "c", "notifier"};
    if ((rc = run_all(cond_user, cv, 4)) < 0)
        return rc;

    printf("== Queue(2)\n");
    if ((rc = weft_queue_init(&queue, loop, 2)) < 0)
        return rc;
    static const char *const qv[] = {"consumer a", "consumer b", "producer"};
    rc = run_all(queue_user, qv, 3);
    weft_queue_destroy(&queue);
    return rc;
}

int main(void)
{
    if (weft_loop_new(NULL, &loop) < 0)
        return 1;
    weft_future *task;
    int rc = weft_task_spawn(loop, run, NULL, &task);
    if (rc == 0) {
        rc = weft_run_until_complete(loop, task, NULL);
        weft_future_unref(task);
    }
    weft_loop_free(loop);
    return rc < 0;
}
