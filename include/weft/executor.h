/* The executor: blocking functions on a small thread pool owned by the
 * loop (asyncio's run_in_executor), finishing a future (task.h) on the
 * loop's thread. */
#ifndef WEFT_EXECUTOR_H
#define WEFT_EXECUTOR_H

#include "base.h"
#include "loop.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

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
