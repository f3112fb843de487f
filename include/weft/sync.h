/* Synchronization primitives: asyncio's Lock, Semaphore, BoundedSemaphore,
 * Event, Condition and Queue, over futures and tasks (task.h). Composition
 * of futures (gather, wait, wait_for, shield) is in compose.h, the executor
 * (run_in_executor) in executor.h.
 *
 * Primitives are caller-owned structs: init one for a loop, use it from that
 * loop's tasks, and drop it once no task waits on it (only a queue holds
 * memory: free it with weft_queue_destroy). Their fields are private.
 *
 * Every waiting call is "task only" (else -EPERM) and suspends on a future
 * from the loop's free lists (no malloc per wait once warm). Wakeups are FIFO
 * and cancellation-safe: a waiter cancelled while suspended gets -ECANCELED,
 * and if it had already been handed the lock, a unit, an item, a slot or a
 * notification, it passes that on to the next waiter, so nothing is lost.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include "base.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- Lock (asyncio.Lock): not owned by a task, not reentrant --- */

typedef struct weft_lock {
    /* Private to weft. */
    weft_loop *loop_;
    weft__list waiters_; /* FIFO of waiters in their tasks' frames */
    int locked_;
} weft_lock;

/* Initialise an unlocked lock for loop. 0 or -EINVAL (NULL). */
int weft_lock_init(weft_lock *l, weft_loop *loop);

/* Task only: take the lock, waiting in FIFO order while it is held.
 * 0, -ECANCELED (the lock is not held by the caller then), -EPERM, -EINVAL,
 * -ENOMEM. */
int weft_lock_acquire(weft_lock *l);

/* Take the lock if it is free now, from anywhere. 0, -EBUSY, -EINVAL. */
int weft_lock_try_acquire(weft_lock *l);

/* Release the lock, handing it to the first waiter if any. 0, -EPERM (not
 * locked), -EINVAL. */
int weft_lock_release(weft_lock *l);

/* 1 if locked, 0 if not, -EINVAL for NULL. */
int weft_lock_locked(const weft_lock *l);

/* --- Semaphore and BoundedSemaphore (asyncio.Semaphore) --- */

typedef struct weft_semaphore {
    /* Private to weft. */
    weft_loop *loop_;
    weft__list waiters_; /* FIFO of waiters in their tasks' frames */
    int64_t value_;
    int64_t bound_; /* -1: unbounded */
} weft_semaphore;

/* Initialise a semaphore holding value units (value >= 0). The bounded
 * variant refuses a release that would take it above value. 0 or -EINVAL. */
int weft_semaphore_init(weft_semaphore *s, weft_loop *loop, int64_t value);
int weft_bounded_semaphore_init(weft_semaphore *s, weft_loop *loop, int64_t value);

/* Task only: take one unit, waiting in FIFO order while there is none.
 * 0, -ECANCELED (no unit taken), -EPERM, -EINVAL, -ENOMEM. */
int weft_semaphore_acquire(weft_semaphore *s);

/* Take one unit if one is free now, from anywhere. 0, -EBUSY, -EINVAL. */
int weft_semaphore_try_acquire(weft_semaphore *s);

/* Give one unit back (to the first waiter if any). 0, -EOVERFLOW (bounded:
 * more releases than acquires), -EINVAL. */
int weft_semaphore_release(weft_semaphore *s);

/* The free units now (>= 0), or -EINVAL. */
int64_t weft_semaphore_value(const weft_semaphore *s);

/* --- Event (asyncio.Event) --- */

typedef struct weft_event {
    /* Private to weft. */
    weft_loop *loop_;
    weft__list waiters_; /* FIFO of waiters in their tasks' frames */
    int set_;
} weft_event;

/* Initialise a cleared event. 0 or -EINVAL. */
int weft_event_init(weft_event *e, weft_loop *loop);

/* Set the flag and wake every waiter. 0 or -EINVAL. */
int weft_event_set(weft_event *e);

/* Clear the flag (later waits suspend again). 0 or -EINVAL. */
int weft_event_clear(weft_event *e);

/* 1 if set, 0 if not, -EINVAL. */
int weft_event_is_set(const weft_event *e);

/* Task only: return at once if set, else wait until it is set.
 * 0, -ECANCELED, -EPERM, -EINVAL, -ENOMEM. */
int weft_event_wait(weft_event *e);

/* --- Condition (asyncio.Condition) --- */

typedef struct weft_cond {
    /* Private to weft. */
    weft_loop *loop_;
    weft__list waiters_; /* FIFO of waiters in their tasks' frames */
    weft_lock *lock_;
    weft_lock own_;
} weft_cond;

/* Initialise a condition over lock (a caller-owned lock of the same loop,
 * which must outlive the condition), or over a lock of its own when lock is
 * NULL. 0 or -EINVAL. */
int weft_cond_init(weft_cond *c, weft_loop *loop, weft_lock *lock);

/* The condition's lock (acquire and release it with weft_lock_*), or NULL. */
weft_lock *weft_cond_lock(weft_cond *c);

/* Task only, with the lock held: release the lock, wait for a notify, and
 * take the lock again before returning, also when cancelled. 0, -ECANCELED
 * (the lock is held again; a notification it had received goes to the next
 * waiter), -EPERM (not in a task, or the lock is not held), -EINVAL, -ENOMEM
 * (the lock is then not held). */
int weft_cond_wait(weft_cond *c);

/* A predicate for weft_cond_wait_for: nonzero when the wait is over. */
typedef int (*weft_predicate)(void *arg);

/* Task only, with the lock held: weft_cond_wait until pred(arg) is true
 * (checked first, then after each wakeup). Errors as weft_cond_wait. */
int weft_cond_wait_for(weft_cond *c, weft_predicate pred, void *arg);

/* With the lock held: wake up to n waiters (all: weft_cond_notify_all), in
 * the order they started waiting. The number woken, -EPERM (the lock is not
 * held), or -EINVAL. */
int weft_cond_notify(weft_cond *c, int n);
int weft_cond_notify_all(weft_cond *c);

/* --- Queue (asyncio.Queue), bounded, of intptr_t items --- */

typedef struct weft_queue {
    /* Private to weft. */
    weft_loop *loop_;
    intptr_t *ring_;
    size_t cap_, head_, count_;
    size_t items_promised_; /* items kept for woken getters */
    size_t slots_promised_; /* free slots kept for woken putters */
    size_t unfinished_;     /* put and not yet task_done */
    weft__list getters_, putters_, joiners_;
} weft_queue;

/* Initialise an empty queue holding at most capacity (>= 1) items; its ring
 * buffer is allocated now, once. The caller frees it with
 * weft_queue_destroy(). 0, -EINVAL, -ENOMEM. */
int weft_queue_init(weft_queue *q, weft_loop *loop, size_t capacity);

/* Free the ring buffer. 0, -EBUSY (a task still waits on it: nothing is
 * freed), -EINVAL. */
int weft_queue_destroy(weft_queue *q);

/* Task only: append item, waiting in FIFO order while the queue is full.
 * 0, -ECANCELED (nothing appended), -EPERM, -EINVAL, -ENOMEM. */
int weft_queue_put(weft_queue *q, intptr_t item);

/* Task only: take the oldest item into *item, waiting in FIFO order while
 * there is none. 0, -ECANCELED (nothing taken), -EPERM, -EINVAL, -ENOMEM. */
int weft_queue_get(weft_queue *q, intptr_t *item);

/* The same without waiting, from anywhere: -EAGAIN when full / empty (an
 * item or slot already promised to a woken waiter does not count). */
int weft_queue_try_put(weft_queue *q, intptr_t item);
int weft_queue_try_get(weft_queue *q, intptr_t *item);

/* Items in the queue now, or -EINVAL. */
int64_t weft_queue_size(const weft_queue *q);

/* Mark one item taken earlier as processed; when every item put has been
 * processed, the tasks in weft_queue_join wake. 0, -EOVERFLOW (more calls
 * than items put), -EINVAL. */
int weft_queue_task_done(weft_queue *q);

/* Task only: wait until every item put has been marked done. 0, -ECANCELED,
 * -EPERM, -EINVAL, -ENOMEM. */
int weft_queue_join(weft_queue *q);

#ifdef __cplusplus
}
#endif
#endif
