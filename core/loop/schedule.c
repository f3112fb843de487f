/* Scheduling plain functions: call_soon, call_later, call_at,
 * call_soon_threadsafe, and cancelling them. */
#include "loop_internal.h"

#include <errno.h>

static int check(weft_loop *loop, weft_handle *h, weft_callback cb)
{
    if (!loop || !h || !cb)
        return -EINVAL;
    if (h->state_ != WEFT__HS_IDLE)
        return -EBUSY;
    return 0;
}

int weft_call_soon(weft_loop *loop, weft_handle *h, weft_callback cb, void *arg)
{
    int rc = check(loop, h, cb);
    if (rc)
        return rc;
    h->cb_ = cb;
    h->arg_ = arg;
    h->state_ = WEFT__HS_READY;
    weft__list_push(&loop->ready, &h->link_);
    return 0;
}

int weft_call_at(weft_loop *loop, weft_handle *h, uint64_t when_ns, weft_callback cb, void *arg)
{
    int rc = check(loop, h, cb);
    if (rc)
        return rc;
    h->cb_ = cb;
    h->arg_ = arg;
    h->when_ = when_ns;
    h->seq_ = loop->seq++;
    rc = weft__heap_insert(&loop->timers, h);
    if (rc)
        return rc;
    h->state_ = WEFT__HS_TIMER;
    return 0;
}

int weft_call_later(weft_loop *loop, weft_handle *h, int64_t delay_ns, weft_callback cb, void *arg)
{
    if (!loop || delay_ns < 0)
        return -EINVAL;
    uint64_t when = loop->now + (uint64_t)delay_ns;
    if (when < loop->now)
        when = UINT64_MAX; /* saturate: "never" rather than "now" */
    return weft_call_at(loop, h, when, cb, arg);
}

int weft_call_soon_threadsafe(weft_loop *loop, weft_handle *h, weft_callback cb, void *arg)
{
    if (!loop || !h || !cb)
        return -EINVAL;
    pthread_mutex_lock(&loop->ts_lock);
    /* Acquire: pairs with the loop's release when h turned idle, after
     * which the loop no longer reads h's fields (core/loop/loop.c). */
    if (__atomic_load_n(&h->state_, __ATOMIC_ACQUIRE) != WEFT__HS_IDLE) {
        pthread_mutex_unlock(&loop->ts_lock);
        return -EBUSY;
    }
    h->cb_ = cb;
    h->arg_ = arg;
    h->state_ = WEFT__HS_THREADSAFE;
    weft__list_push(&loop->ts_queue, &h->link_);
    atomic_store_explicit(&loop->ts_pending, 1, memory_order_release);
    pthread_mutex_unlock(&loop->ts_lock);
    /* One wake-up per batch: later producers see the flag set. */
    if (!atomic_exchange_explicit(&loop->wake_pending, 1, memory_order_seq_cst))
        return loop->backend->vt->wake(loop->backend);
    return 0;
}

int weft_handle_cancel(weft_loop *loop, weft_handle *h)
{
    if (!loop || !h)
        return -EINVAL;
    switch (h->state_) {
    case WEFT__HS_READY:
        weft__list_remove(&loop->ready, &h->link_);
        break;
    case WEFT__HS_RUNNING:
        weft__list_remove(&loop->running, &h->link_);
        break;
    case WEFT__HS_TIMER:
        weft__heap_remove(&loop->timers, h);
        break;
    case WEFT__HS_THREADSAFE:
        return -EPERM;
    default:
        return -EALREADY;
    }
    h->state_ = WEFT__HS_IDLE;
    return 0;
}

int weft_handle_pending(const weft_handle *h)
{
    return h && h->state_ != WEFT__HS_IDLE;
}

uint64_t weft_handle_when(const weft_handle *h)
{
    return h && h->state_ == WEFT__HS_TIMER ? h->when_ : 0;
}
