/* The event loop: an iteration is poll the backend (blocking only when
 * nothing is ready), move due timers and cross-thread callbacks to the
 * ready list, then run op completions and the ready callbacks scheduled
 * before this phase began (asyncio's _run_once). */
#include "loop_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t weft__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int loop_new_kind(weft_loop **out, const weft_loop_opts *opts, weft_backend_kind kind)
{
    const weft__vtable *vt = weft__backend_vtable(kind);
    if (!vt)
        return WEFT_ENOT_COMPILED;
    weft_loop *loop = calloc(1, sizeof *loop);
    weft__backend *be = calloc(1, vt->size);
    if (!loop || !be) {
        free(loop);
        free(be);
        return -ENOMEM;
    }
    if (opts && opts->timer_capacity && weft__heap_reserve(&loop->timers, opts->timer_capacity)) {
        free(loop);
        free(be);
        return -ENOMEM;
    }
    be->vt = vt;
    be->loop = loop;
    loop->backend = be;
    int rc = vt->init(be, opts);
    if (rc == 0 && (rc = -pthread_mutex_init(&loop->ts_lock, NULL)) != 0)
        vt->fini(be);
    if (rc) {
        weft__heap_free(&loop->timers);
        free(be);
        free(loop);
        return rc;
    }
    loop->now = weft__clock_ns();
    loop->busy_poll_ns = opts ? (uint64_t)opts->busy_poll_us * 1000u : 0;
    *out = loop;
    return 0;
}

struct auto_ctx {
    weft_loop **out;
    const weft_loop_opts *opts;
};

static int auto_start(weft_backend_kind kind, void *arg)
{
    struct auto_ctx *ctx = arg;
    return loop_new_kind(ctx->out, ctx->opts, kind);
}

/* An explicit kind wins; AUTO may be overridden by the WEFT_BACKEND
 * environment variable, else the first backend that starts is taken. */
int weft_loop_new(const weft_loop_opts *opts, weft_loop **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    weft_backend_kind kind = opts ? opts->backend : WEFT_BACKEND_AUTO;
    if ((unsigned)kind >= WEFT_BACKEND__COUNT ||
        (opts && opts->busy_poll_us > WEFT_BUSY_POLL_MAX_US))
        return -EINVAL;
    if (kind == WEFT_BACKEND_AUTO) {
        const char *env = getenv("WEFT_BACKEND");
        if (env && *env && strcmp(env, "auto") != 0) {
            int k = weft_backend_from_name(env);
            if (k < 0)
                return k;
            kind = (weft_backend_kind)k;
        }
    }
    if (kind != WEFT_BACKEND_AUTO)
        return loop_new_kind(out, opts, kind);
    struct auto_ctx ctx = {out, opts};
    int rc = weft__backend_search(auto_start, &ctx);
    return rc < 0 ? rc : 0;
}

/* Run queued op completions. Ops completed by these callbacks wait for the
 * next phase, like callbacks scheduled from callbacks. */
static void run_completions(weft_loop *loop)
{
    /* The batch is this function's alone: walk it without unlinking node
     * by node (each op's next is read before its callback may reuse it). */
    weft__link *n = loop->done_ops.first;
    loop->done_ops.first = loop->done_ops.last = NULL;
    while (n) {
        weft__link *next = n->next;
        n->next = n->prev = NULL;
        weft_op *op = weft__container_of(n, weft_op, link_);
        if ((op->opflags_ & WEFT__OPFLAG_LATE) && loop->backend->vt->late(loop->backend, op)) {
            n = next; /* not ready after all: back in flight */
            continue;
        }
        op->state_ = WEFT__OPSTATE_IDLE;
        loop->ops_inflight--;
        op->cb(op);
        n = next;
    }
}

int weft_loop_free(weft_loop *loop)
{
    if (!loop)
        return -EINVAL;
    if (loop->running_flag)
        return -EBUSY;
    if (loop->ext_stop)
        loop->ext_stop(loop, loop->ext); /* no other thread calls into the loop past this */
    weft__sig_detach(loop);
    weft__backend *be = loop->backend;
    /* Cancel what is in flight and reap it, so no backend still points into
     * caller memory; the callbacks do not run. */
    be->vt->fini(be);
    weft__multi_queue_free(loop);
    weft__link *n;
    while ((n = weft__list_pop(&loop->done_ops)) != NULL)
        weft__container_of(n, weft_op, link_)->state_ = WEFT__OPSTATE_IDLE;
    while ((n = weft__list_pop(&loop->ready)) != NULL)
        weft__container_of(n, weft_handle, link_)->state_ = WEFT__HS_IDLE;
    for (uint32_t i = 0; i < loop->timers.len; i++)
        loop->timers.v[i].h->state_ = WEFT__HS_IDLE;
    pthread_mutex_lock(&loop->ts_lock);
    while ((n = weft__list_pop(&loop->ts_queue)) != NULL)
        weft__container_of(n, weft_handle, link_)->state_ = WEFT__HS_IDLE;
    pthread_mutex_unlock(&loop->ts_lock);
    pthread_mutex_destroy(&loop->ts_lock);
    weft__sig_free(loop); /* after the queues: its handle may have been in one */
    if (loop->ext_free)
        loop->ext_free(loop, loop->ext); /* task stacks go last: ops lived on them */
    weft__heap_free(&loop->timers);
    weft__bigbuf_cache_drain(&loop->bigbufs);
    free(be);
    free(loop);
    return 0;
}

weft__bigbuf_cache *weft__loop_bigbufs(weft_loop *loop)
{
    return &loop->bigbufs;
}

uint64_t weft_loop_now(const weft_loop *loop)
{
    return loop ? loop->now : 0;
}

uint64_t weft_loop_update_time(weft_loop *loop)
{
    if (!loop)
        return 0;
    loop->now = weft__clock_ns();
    return loop->now;
}

const char *weft_loop_backend_name(const weft_loop *loop)
{
    return loop ? loop->backend->vt->name : NULL;
}

int weft_loop_backend_info(const weft_loop *loop, char *buf, size_t size)
{
    if (!loop || (!buf && size))
        return -EINVAL;
    const weft__backend *be = loop->backend;
    if (be->vt->info)
        return be->vt->info(be, buf, size);
    if (size)
        buf[0] = '\0';
    return 0;
}

int weft_loop_stop(weft_loop *loop)
{
    if (!loop)
        return -EINVAL;
    loop->stop_requested = 1;
    return 0;
}

/* Move cross-thread callbacks to the ready list. The wake flag is cleared
 * before the queue is taken, so a callback queued after this point sends a
 * new wake-up. */
static void drain_threadsafe(weft_loop *loop)
{
    atomic_store_explicit(&loop->wake_pending, 0, memory_order_seq_cst);
    if (!atomic_load_explicit(&loop->ts_pending, memory_order_acquire))
        return;
    pthread_mutex_lock(&loop->ts_lock);
    for (weft__link *n = loop->ts_queue.first; n; n = n->next)
        weft__container_of(n, weft_handle, link_)->state_ = WEFT__HS_READY;
    weft__list_splice(&loop->ready, &loop->ts_queue);
    atomic_store_explicit(&loop->ts_pending, 0, memory_order_release);
    pthread_mutex_unlock(&loop->ts_lock);
}

static void move_due_timers(weft_loop *loop)
{
    weft_handle *h;
    while ((h = weft__heap_min(&loop->timers)) != NULL && h->when_ <= loop->now) {
        weft__heap_remove(&loop->timers, h);
        h->state_ = WEFT__HS_READY;
        weft__list_push(&loop->ready, &h->link_);
    }
}

static int has_work(const weft_loop *loop)
{
    return !weft__list_empty(&loop->ready) || !weft__list_empty(&loop->done_ops) ||
           loop->timers.len || loop->ops_inflight || loop->ext_pending || loop->sig_wants ||
           atomic_load_explicit(&loop->ts_pending, memory_order_acquire);
}

static int64_t poll_timeout(const weft_loop *loop, int may_block)
{
    if (!may_block || loop->stop_requested || !weft__list_empty(&loop->ready) ||
        !weft__list_empty(&loop->done_ops) ||
        atomic_load_explicit(&loop->ts_pending, memory_order_acquire))
        return 0;
    weft_handle *next = weft__heap_min(&loop->timers);
    if (!next)
        return -1;
    return next->when_ > loop->now ? (int64_t)(next->when_ - loop->now) : 0;
}

/* Something for this iteration to run: a completion, a callback, or a
 * callback queued from another thread. */
static int has_ready(const weft_loop *loop)
{
    return !weft__list_empty(&loop->done_ops) || !weft__list_empty(&loop->ready) ||
           atomic_load_explicit(&loop->ts_pending, memory_order_acquire);
}

/* Busy polling: poll without blocking until something is ready, the next
 * timer is due, or busy_poll_ns have passed. *timeout (-1: none) becomes
 * what is left of it for the blocking poll, 0 when the spin found work.
 * Returns 0 or the backend's error. */
static int busy_poll(weft_loop *loop, int64_t *timeout)
{
    weft__backend *be = loop->backend;
    uint64_t start = weft__clock_ns(), now = start;
    uint64_t spin = loop->busy_poll_ns;
    if (*timeout >= 0 && (uint64_t)*timeout < spin)
        spin = (uint64_t)*timeout;
    while (now - start < spin) {
        int rc = be->vt->poll(be, 0);
        if (rc < 0)
            return rc;
        if (has_ready(loop)) {
            *timeout = 0;
            return 0;
        }
        now = weft__clock_ns();
    }
    if (*timeout > 0)
        *timeout = (uint64_t)*timeout > now - start ? *timeout - (int64_t)(now - start) : 0;
    return 0;
}

static int run_once(weft_loop *loop, int may_block)
{
    weft__backend *be = loop->backend;
    loop->turn++;
    int64_t timeout = poll_timeout(loop, may_block);
    if (timeout != 0 && loop->busy_poll_ns) {
        int rc = busy_poll(loop, &timeout);
        if (rc < 0)
            return rc;
    }
    int rc = be->vt->poll(be, timeout);
    if (rc < 0)
        return rc;
    loop->now = weft__clock_ns();
    move_due_timers(loop);
    drain_threadsafe(loop);
    run_completions(loop);

    /* Only the callbacks ready now run; what they schedule waits. */
    weft__list_splice(&loop->running, &loop->ready);
    /* state_ is atomic against weft_call_soon_threadsafe, which reads it
     * from another thread to refuse a handle still queued (-EBUSY). */
    for (weft__link *n = loop->running.first; n; n = n->next)
        __atomic_store_n(&weft__container_of(n, weft_handle, link_)->state_, WEFT__HS_RUNNING,
                         __ATOMIC_RELAXED);
    weft__link *n;
    while ((n = weft__list_pop(&loop->running)) != NULL) {
        weft_handle *h = weft__container_of(n, weft_handle, link_);
        /* Read cb and arg before h turns idle: from then on another thread
         * may requeue h and overwrite them. */
        weft_callback cb = h->cb_;
        void *arg = h->arg_;
        __atomic_store_n(&h->state_, WEFT__HS_IDLE, __ATOMIC_RELEASE);
        cb(arg);
    }
    return 0;
}

int weft_loop_run(weft_loop *loop, weft_run_mode mode)
{
    if (!loop || (unsigned)mode > WEFT_RUN_UNTIL_IDLE)
        return -EINVAL;
    if (loop->running_flag)
        return -EBUSY;
    loop->running_flag = 1;
    loop->now = weft__clock_ns();
    int rc = 0;
    for (;;) {
        if (mode == WEFT_RUN_UNTIL_IDLE && !has_work(loop))
            break;
        rc = run_once(loop, mode != WEFT_RUN_NOWAIT);
        if (rc < 0 || mode == WEFT_RUN_ONCE || mode == WEFT_RUN_NOWAIT)
            break;
        if (loop->stop_requested)
            break;
    }
    loop->stop_requested = 0;
    loop->running_flag = 0;
    return rc < 0 ? rc : has_work(loop);
}
