/* The loop's private state, shared by core/ files and backends. */
#ifndef WEFT_LOOP_INTERNAL_H
#define WEFT_LOOP_INTERNAL_H

#include "weft.h"
#include "backend.h"
#include "bigbuf.h"
#include "list.h"
#include "timer_heap.h"

#include <pthread.h>
#include <stdatomic.h>

/* Handle states (weft_handle.state_). */
enum {
    WEFT__HS_IDLE = 0,
    WEFT__HS_READY,      /* in loop->ready */
    WEFT__HS_RUNNING,    /* in loop->running: this iteration's batch */
    WEFT__HS_TIMER,      /* in the timer heap */
    WEFT__HS_THREADSAFE, /* in the cross-thread queue */
};

/* A multishot result waiting for the callback phase (weft__multi_post). */
typedef struct weft__multi_ev {
    weft_multi *m;
    int64_t res;
    void *buf;
    int more;
} weft__multi_ev;

struct weft_loop {
    uint64_t now;        /* cached clock, ns */
    uint64_t seq;        /* scheduling counter: FIFO among equal deadlines */
    weft__list ready;    /* handles for the next callback phase */
    weft__list running;  /* the batch being run now */
    weft__list done_ops; /* completed ops whose callbacks have not run */
    weft__timer_heap timers;
    uint64_t ops_inflight; /* submitted, callback not yet started */
    uint64_t turn;         /* iterations so far (bounds the await fast path per turn) */
    int running_flag;
    int stop_requested;
    uint64_t busy_poll_ns; /* weft_loop_opts.busy_poll_us, 0: block at once */

    /* Cross-thread queue: call_soon_threadsafe. */
    pthread_mutex_t ts_lock;
    weft__list ts_queue;
    atomic_int ts_pending;   /* queue non-empty (read without the lock) */
    atomic_int wake_pending; /* a wake-up was sent and not yet consumed */

    weft__backend *backend;

    /* Multishot results posted by the backend while it polled, in the
     * order they happened (a ring of mq_cap, a power of two), handed to
     * their callbacks by mq_deliver from the callback phase. */
    weft__multi_ev *mq;
    uint32_t mq_head, mq_len, mq_cap;
    weft_handle mq_deliver;

    /* The futures/tasks layer keeps its per-loop state here (the loop does
     * not know what it is); freed last in weft_loop_free(). */
    void *ext;
    void (*ext_free)(weft_loop *loop, void *ext);
    /* Called first in weft_loop_free, before anything is torn down: the
     * layer stops its threads that call into the loop (the executor's). */
    void (*ext_stop)(weft_loop *loop, void *ext);
    /* The layer's work running outside the loop (executor jobs): while
     * nonzero the loop is not idle. Loop thread only. */
    uint64_t ext_pending;

    /* Signals (signal.c), made on first use; NULL before. sig_wants counts
     * the signals with a handler or waiter: while nonzero the loop is not
     * idle. */
    struct weft__sigloop *sig;
    uint32_t sig_wants;

    /* Freed large stream buffers kept for the next connection
     * (core/sys/bigbuf.h); given back in weft_loop_free. */
    weft__bigbuf_cache bigbufs;
};

uint64_t weft__clock_ns(void);

/* Called by a backend's submit() that does not take op: op is idle again,
 * not counted in flight. Returns err (< 0) for the submit to return. */
static inline int weft__op_refused(weft_loop *loop, weft_op *op, int err)
{
    op->state_ = WEFT__OPSTATE_IDLE;
    loop->ops_inflight--;
    return err;
}

/* Called by a backend: op finished with result. Queues its callback on the
 * loop; the callback runs in the loop's next callback phase. */
static inline void weft__op_done(weft_loop *loop, weft_op *op, int64_t result)
{
    op->result = result;
    op->state_ = WEFT__OPSTATE_DONE;
    weft__list_push(&loop->done_ops, &op->link_);
}
/* weft_await_op's fast path: submit op; when the backend finished it
 * inside submit (a readiness backend's first try, an error found at once),
 * take its completion back so its callback never runs. Returns 1 (done:
 * op->result is final, op idle), 0 (in flight: the callback will run), or
 * weft_op_submit's error. */
int weft__op_submit_inline(weft_loop *loop, weft_op *op);
/* weft_loop_free(): drop the multishot results never delivered. */
void weft__multi_queue_free(weft_loop *loop);
/* weft_loop_free(): signals. detach before the backend's fini (no other
 * thread posts to the loop after it), free after. */
void weft__sig_detach(weft_loop *loop);
void weft__sig_free(weft_loop *loop);

#endif
