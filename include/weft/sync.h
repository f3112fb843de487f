/* Synchronization primitives, composition of futures, and the executor:
 * asyncio's Lock, Semaphore, BoundedSemaphore, Event, Condition, Queue,
 * gather, wait, wait_for, shield and run_in_executor, over futures and tasks
 * (task.h).
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

/* --- composition --- */

/* weft_gather flags. */
enum { WEFT_GATHER_RETURN_ERRORS = 1 };

/* A future finishing when all n futures are done (asyncio.gather). *out
 * gets a reference for the caller. The gather keeps its own references to
 * the children until they finish; the caller keeps its own. By default the
 * first child to fail (an error, or cancelled: -ECANCELED) cancels the
 * others still pending and the gather finishes with that error at once;
 * with WEFT_GATHER_RETURN_ERRORS the gather waits for all and succeeds.
 * On success the gather's result is n; read the children's outcomes, in
 * order, with weft_gather_results(). Cancelling the gather (also by
 * cancelling a task awaiting it) cancels the pending children; the gather
 * is cancelled at once, the children finish in their own time. n == 0 gives
 * a gather that is already done. Errors: -EINVAL (NULL loop, out or child,
 * a child of another loop, unknown flags), -ENOMEM. */
int weft_gather(weft_loop *loop, weft_future *const *futures, size_t n, int flags,
                weft_future **out);

/* The children's outcomes in order: results[i] (if results is not NULL)
 * and errors[i] (if errors is not NULL) as weft_future_result gives them
 * (0, the child's error, -ECANCELED, -EAGAIN if pending). Marks the errors
 * retrieved. Returns 0 if all succeeded, else the first child's error in
 * order; -EINVAL for a NULL array or child. */
int weft_gather_results(weft_future *const *futures, size_t n, intptr_t *results, int *errors);

/* weft_wait modes. */
enum weft_wait_mode {
    WEFT_WAIT_FIRST_COMPLETED = 0, /* one is done */
    WEFT_WAIT_FIRST_ERROR,         /* one failed or was cancelled, or all are done */
    WEFT_WAIT_ALL_COMPLETED,       /* all are done */
};

/* Task only: wait until the mode's condition holds for the n futures, or
 * timeout_ns passes (-1: no timeout; 0: just check). Nothing is cancelled:
 * tell done from pending with weft_future_state(). *done_count (if not
 * NULL) gets the number done. 0 (condition met), -ETIMEDOUT, -ECANCELED,
 * -EPERM, -EINVAL (n == 0 as asyncio, NULL, another loop, bad mode or
 * timeout), -ENOMEM. */
int weft_wait(weft_loop *loop, weft_future *const *futures, size_t n, int mode, int64_t timeout_ns,
              size_t *done_count);

/* Task only: await f for at most timeout_ns (-1: no limit). On timeout f is
 * cancelled and the call waits until f has really finished (a task runs its
 * clean-up), then returns -ETIMEDOUT (or f's outcome, if it finished anyway
 * instead of being cancelled). If the caller is cancelled, f is cancelled
 * and waited for too, and -ECANCELED is returned. Otherwise f's outcome as
 * weft_await gives it. Errors also -EPERM, -EINVAL, -ENOMEM. */
int weft_wait_for(weft_future *f, int64_t timeout_ns, intptr_t *result);

/* An outer future that finishes as f does (asyncio.shield); cancelling the
 * outer one leaves f running. *out gets a reference for the caller.
 * 0, -EINVAL, -ENOMEM. */
int weft_shield(weft_future *f, weft_future **out);

/* --- executor --- */

/* Blocking work for the executor: runs on a pool thread. Return 0 and set
 * *result, or a negative error code. */
typedef int (*weft_work_fn)(void *arg, intptr_t *result);

/* Loop thread only: run fn(arg) on the loop's thread pool (asyncio's
 * run_in_executor; up to WEFT_EXECUTOR_THREADS threads, started on demand)
 * and finish a future with its outcome on the loop's thread. *out (if not
 * NULL) gets a reference. A pending job keeps the loop busy (weft_loop_run
 * does not become idle). Cancelling the future does not stop a job: the job
 * still runs and its result is dropped. weft_loop_free waits for running
 * jobs to return and drops queued ones. Errors: -EINVAL, -ENOMEM, or the
 * error of creating the first thread. */
int weft_run_in_executor(weft_loop *loop, weft_work_fn fn, void *arg, weft_future **out);

#define WEFT_EXECUTOR_THREADS 4

#ifdef __cplusplus
}
#endif
#endif
