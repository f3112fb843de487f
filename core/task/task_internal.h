/* Futures and tasks: private layout, shared by future.c, task.c and the
 * primitives built on them (sync, executor, composition). */
#ifndef WEFT_TASK_INTERNAL_H
#define WEFT_TASK_INTERNAL_H

#include "weft.h"
#include "list.h"

/* Someone waiting for a future: a done-callback, or a task suspended in
 * weft_await (then the node lives on the task's stack). When the future
 * finishes, the node is scheduled with call_soon and runs cb(f, arg). */
typedef struct weft__waiter {
    weft__link link;
    weft_handle h;
    weft_future_cb cb;
    void *arg;
    weft_future *f;
    struct weft__task *task; /* a task's await node: finishing f wakes it directly */
    uint8_t pooled;          /* from the loop's free list: recycle after running */
} weft__waiter;

struct weft_future {
    weft_loop *loop;
    weft__link live; /* the loop's live futures; the free list when unused */
    weft__list waiters;
    intptr_t result;
    int err;
    uint32_t refs;
    uint8_t state; /* enum weft_future_state */
    uint8_t is_task;
    uint8_t retrieved; /* an error was handed to someone */
};

/* Where a suspended task waits, so a cancel knows how to interrupt it. */
enum { WAIT_NONE = 0, WAIT_FUTURE, WAIT_OP, WAIT_SLEEP, WAIT_YIELD, WAIT_CANCEL };

typedef struct weft__task {
    weft_future fut; /* first: a task is a future */
    weft_coro co;
    weft_task_fn fn;
    void *arg;
    weft_handle step;  /* resumes the coroutine */
    weft_handle timer; /* weft_sleep */
    const char *name;
    int wait;                 /* WAIT_* while suspended */
    weft_future *awaiting;    /* WAIT_FUTURE */
    weft_op *op;              /* WAIT_OP */
    uint8_t cancel_pending;   /* deliver -ECANCELED at the next suspension */
    uint8_t cancel_delivery;  /* the current suspension ends with -ECANCELED */
    uint8_t cancel_requested; /* a body returning -ECANCELED ends CANCELLED */
    uint8_t started;
    uint8_t coro_live;    /* co holds a stack */
    uint32_t inline_ops;  /* ops weft_await_op finished without suspending ... */
    uint64_t inline_turn; /* ... in this loop turn */
} weft__task;

/* weft_await_op returns an op that completes at submit without suspending
 * at most this many times per task per loop turn; the next one suspends
 * as usual (its completion waits for the next callback phase), so a task
 * whose socket always has data still lets every other callback run once
 * per WEFT__AWAIT_INLINE_MAX + 1 ops. 16 amortises a loop turn (an
 * epoll_wait) over 16 system calls, i.e. 8 recv+send echo round trips,
 * while keeping what a busy task can delay others by to about 16 system
 * calls' worth (tens of microseconds), a quarter of the 64 results the
 * readiness multishot emulation takes per turn. A build may set it
 * (-DWEFT__AWAIT_INLINE_MAX=0 turns the fast path off, for bench/). */
#ifndef WEFT__AWAIT_INLINE_MAX
#define WEFT__AWAIT_INLINE_MAX 16
#endif

/* Per-loop state of this layer, hung on the loop's extension slot. */
typedef struct weft__loop_tasks {
    weft__list free_futures, free_tasks, free_waiters;
    weft__list scheduled_waiters; /* pooled done-callbacks queued on the loop, not run yet */
    weft__list live;
    weft__task *current;
    weft_stack_pool *stacks;
    weft_error_handler on_error;
    void *on_error_arg;
    weft__list gathers;              /* compose.c: gathers with children pending */
    struct weft__executor *executor; /* executor.c: the thread pool, or NULL */
} weft__loop_tasks;

weft__loop_tasks *weft__tasks(weft_loop *loop); /* creates it on first use; NULL on ENOMEM */
void weft__future_init(weft_future *f, weft_loop *loop, uint32_t refs);
/* Finish f (state DONE or CANCELLED) and schedule its waiters. */
void weft__future_finish(weft_future *f, uint8_t state, intptr_t result, int err);
void weft__future_free_memory(weft__loop_tasks *ts, weft_future *f);
void weft__task_cancel(weft__task *t);
/* Resume t on the next callback phase (its step handle). */
void weft__task_wake(weft__task *t);
void weft__task_destroy(weft__task *t);
/* At loop close: stop joins the pool's threads (first, while the loop is
 * whole); free drops its jobs and memory. Free the gathers still pending. */
void weft__executor_stop(weft__loop_tasks *ts);
void weft__executor_free(weft__loop_tasks *ts);
/* weft_run_in_executor, plus drop(arg) for a job dropped unrun (the loop
 * freed while it was queued), so arg's owner can free what the job would
 * have (net/resolve.c). drop may be NULL. */
int weft__run_in_executor_drop(weft_loop *loop, weft_work_fn fn, void (*drop)(void *arg), void *arg,
                               weft_future **out);
void weft__gathers_free(weft__loop_tasks *ts);

#endif
