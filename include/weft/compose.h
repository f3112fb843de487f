/* Composition of futures and tasks (task.h): asyncio's gather, wait,
 * wait_for and shield, over plain futures and tasks of one loop. */
#ifndef WEFT_COMPOSE_H
#define WEFT_COMPOSE_H

#include "base.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif
#endif
