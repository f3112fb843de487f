/* Futures and tasks: asyncio's model in C.
 *
 * A future is the result of work not finished yet: pending, then done with
 * a result (an intptr_t, which may hold a pointer) or an error code, or
 * cancelled. A task is a future that drives a coroutine on the loop: the
 * coroutine runs until it awaits something, the loop runs other work, and
 * the task resumes when what it awaited is done.
 *
 * Ownership: futures and tasks are reference counted. Whoever gets one from
 * weft_future_new() or weft_task_spawn(..., &out) owns one reference and
 * drops it with weft_future_unref(); a running task and a pending done-
 * callback hold their own, so a waiter and the setter may finish in either
 * order. Memory comes from per-loop free lists, not from malloc per task.
 *
 * Functions marked "task only" suspend the calling task and must be called
 * from inside a task (else -EPERM). While suspended, a task can be cancelled:
 * the call it is suspended in returns -ECANCELED, and the task may clean up
 * and finish as it likes.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include "base.h"
#include "loop.h"
#include "op.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_future weft_future;

/* A done-callback: runs on the loop (through call_soon) once f is done. */
typedef void (*weft_future_cb)(weft_future *f, void *arg);

/* A task's body. Return 0 and store the result in *result, or return a
 * negative error code: whoever awaits the task gets it. */
typedef int (*weft_task_fn)(void *arg, intptr_t *result);

/* Future states. */
enum weft_future_state { WEFT_FUTURE_PENDING = 0, WEFT_FUTURE_DONE, WEFT_FUTURE_CANCELLED };

/* --- futures --- */

/* Create a pending future on loop; *out holds one reference for the caller.
 * Errors: -EINVAL (NULL), -ENOMEM. */
int weft_future_new(weft_loop *loop, weft_future **out);

/* Take / drop a reference. The future is freed when the last one goes; an
 * error in it that nobody retrieved is then reported (see
 * weft_loop_set_error_handler). Both return 0 or -EINVAL (NULL). */
int weft_future_ref(weft_future *f);
int weft_future_unref(weft_future *f);

/* Finish f with a result, or with an error (err < 0), and schedule its
 * done-callbacks and waiters. Errors: -EINVAL (NULL; err >= 0),
 * -EALREADY (f is already done or cancelled: setting twice is an error). */
int weft_future_set_result(weft_future *f, intptr_t result);
int weft_future_set_error(weft_future *f, int err);

/* Cancel f: for a plain future it becomes CANCELLED now; for a task, the
 * cancel is delivered to the task (its current suspension returns
 * -ECANCELED) and the task finishes when its body returns. Returns 0, or
 * -EALREADY (already done) / -EINVAL. */
int weft_future_cancel(weft_future *f);

/* The state (enum weft_future_state), or -EINVAL for NULL. */
int weft_future_state(const weft_future *f);

/* The outcome of a finished future: 0 with *result set (result may be
 * NULL), the error it finished with, -ECANCELED if cancelled, or -EAGAIN if
 * still pending (-EINVAL for NULL). Marks an error as retrieved. */
int weft_future_result(weft_future *f, intptr_t *result);

/* Run cb(f, arg) through call_soon once f is done (at once-scheduled if it
 * is done already), in the order added. Errors: -EINVAL, -ENOMEM. */
int weft_future_add_done_callback(weft_future *f, weft_future_cb cb, void *arg);

/* Remove every pending registration of (cb, arg); returns how many. */
int weft_future_remove_done_callback(weft_future *f, weft_future_cb cb, void *arg);

/* The loop the future belongs to (NULL for NULL). */
weft_loop *weft_future_loop(const weft_future *f);

/* --- tasks --- */

/* Spawn fn(arg) as a task (asyncio's create_task): it starts in the loop's
 * next handle phase (never inside this call; docs/design.md, section 3), on
 * a coroutine stack from the loop's stack pool. If out is not NULL it
 * receives a reference to the task (a future whose result is fn's);
 * otherwise the task runs detached. Errors: -EINVAL, -ENOMEM. */
int weft_task_spawn(weft_loop *loop, weft_task_fn fn, void *arg, weft_future **out);

/* The task running now on loop, or NULL outside tasks. */
weft_future *weft_task_current(weft_loop *loop);

/* Nonzero if f is a task. */
int weft_future_is_task(const weft_future *f);

/* Name a task for diagnostics (the string is not copied). 0 or -EINVAL. */
int weft_task_set_name(weft_future *task, const char *name);

/* Task only: suspend until f is done and return its outcome as
 * weft_future_result() does. Returns at once if f is already done. If the
 * waiting task is cancelled meanwhile, f is cancelled too (as in asyncio;
 * use weft_shield to prevent it) and -ECANCELED is returned. Errors also
 * -EPERM (not in a task), -EDEADLK (a task awaiting itself), -EINVAL. */
int weft_await(weft_future *f, intptr_t *result);

/* Task only: suspend for delay_ns (asyncio.sleep). 0, -ECANCELED, -EINVAL
 * (negative delay), -EPERM. */
int weft_sleep(weft_loop *loop, int64_t delay_ns);

/* Task only: let every other ready callback and task run once, then resume
 * (asyncio.sleep(0)). 0, -ECANCELED, -EPERM. */
int weft_yield(weft_loop *loop);

/* Task only: suspend until the task is cancelled (asyncio's `await
 * asyncio.Future()`, a future nobody finishes; no future is made here).
 * Returns -ECANCELED, or -EPERM (not in a task, or loop is NULL). Like any
 * wait it keeps nothing pending on the loop: something else must (a
 * server's accept, a timer), else weft_run_until_complete gives -EDEADLK. */
int weft_wait_cancelled(weft_loop *loop);

/* Task only: submit op and suspend until it completes; returns op->result.
 * An op that completes at submit (a readiness backend's first try, an error
 * found at once) returns without suspending, as asyncio's sock_recv does,
 * up to 16 times in a row per loop turn; then the task suspends once so
 * others run. The op lives in the caller's frame until its completion arrives, also
 * after a cancel: a cancelled task waits for the backend to give the op
 * back, then gets -ECANCELED (or the op's real result if it finished first;
 * the cancel then stays pending for the task's next suspension). op's
 * callback and data are overwritten. Errors of submit are returned as is;
 * -EPERM outside a task. */
int64_t weft_await_op(weft_loop *loop, weft_op *op);

/* Run the loop until f is done and return its outcome (as
 * weft_future_result). Must not be called from inside the loop. Errors also
 * -EBUSY (the loop is running), or a loop error. */
int weft_run_until_complete(weft_loop *loop, weft_future *f, intptr_t *result);

/* Called for an error nobody retrieved (a failed task nobody awaited), when
 * the future is freed or at loop close. The default prints one line to
 * stderr, like asyncio's "Task exception was never retrieved". */
typedef void (*weft_error_handler)(weft_loop *loop, weft_future *f, int err, void *arg);

/* Replace the handler (NULL restores the default). 0 or -EINVAL. */
int weft_loop_set_error_handler(weft_loop *loop, weft_error_handler h, void *arg);

#ifdef __cplusplus
}
#endif
#endif
