/* Synchronization primitives: Lock, Semaphore, Event, Condition, Queue.
 *
 * Each waiter is a node in the waiting task's frame, linked on the
 * primitive's FIFO, plus a future from the loop's free lists that the task
 * awaits. A wakeup pops the first node whose future is still pending and
 * finishes that future, handing over what was freed (the lock, a unit, an
 * item or a slot) at that moment, so a newcomer cannot take it first (FIFO
 * fairness, as asyncio gets by checking its waiter list). A task cancelled
 * after it was handed something gives it on to the next waiter. */
#include "task_internal.h"
#include "weft/sync.h"

#include <errno.h>
#include <stdlib.h>

typedef struct sync_waiter {
    weft__link link;
    weft_future *fut;
    int linked;
} sync_waiter;

/* Suspend the current task on q until woken or cancelled. *woken tells
 * whether a wakeup was handed to it (also when the result is -ECANCELED). */
static int wait_in(weft_loop *loop, weft__list *q, int *woken)
{
    sync_waiter w = {0};
    *woken = 0;
    int rc = weft_future_new(loop, &w.fut);
    if (rc)
        return rc;
    weft__list_push(q, &w.link);
    w.linked = 1;
    rc = weft_await(w.fut, NULL);
    if (w.linked)
        weft__list_remove(q, &w.link);
    *woken = weft_future_state(w.fut) == WEFT_FUTURE_DONE;
    weft_future_unref(w.fut);
    return rc;
}

/* Wake the first waiter still waiting; 1 if there was one. */
static int wake_one(weft__list *q)
{
    weft__link *n;
    while ((n = weft__list_pop(q)) != NULL) {
        sync_waiter *w = weft__container_of(n, sync_waiter, link);
        w->linked = 0;
        if (weft_future_state(w->fut) == WEFT_FUTURE_PENDING) {
            weft_future_set_result(w->fut, 0);
            return 1;
        }
    }
    return 0;
}

static int in_task(weft_loop *loop)
{
    return weft_task_current(loop) != NULL;
}

/* --- Lock --- */

int weft_lock_init(weft_lock *l, weft_loop *loop)
{
    if (!l || !loop)
        return -EINVAL;
    *l = (weft_lock){.loop_ = loop};
    return 0;
}

int weft_lock_acquire(weft_lock *l)
{
    if (!l || !l->loop_)
        return -EINVAL;
    if (!in_task(l->loop_))
        return -EPERM;
    if (!l->locked_) {
        l->locked_ = 1;
        return 0;
    }
    int woken;
    int rc = wait_in(l->loop_, &l->waiters_, &woken);
    if (woken && rc) /* handed the lock, then cancelled: pass it on */
        weft_lock_release(l);
    return rc;
}

int weft_lock_try_acquire(weft_lock *l)
{
    if (!l || !l->loop_)
        return -EINVAL;
    if (l->locked_)
        return -EBUSY;
    l->locked_ = 1;
    return 0;
}

int weft_lock_release(weft_lock *l)
{
    if (!l || !l->loop_)
        return -EINVAL;
    if (!l->locked_)
        return -EPERM;
    if (!wake_one(&l->waiters_))
        l->locked_ = 0; /* else it stays locked: the woken waiter owns it */
    return 0;
}

int weft_lock_locked(const weft_lock *l)
{
    return l ? l->locked_ : -EINVAL;
}

/* --- Semaphore --- */

static int sem_init(weft_semaphore *s, weft_loop *loop, int64_t value, int64_t bound)
{
    if (!s || !loop || value < 0)
        return -EINVAL;
    *s = (weft_semaphore){.loop_ = loop, .value_ = value, .bound_ = bound};
    return 0;
}

int weft_semaphore_init(weft_semaphore *s, weft_loop *loop, int64_t value)
{
    return sem_init(s, loop, value, -1);
}

int weft_bounded_semaphore_init(weft_semaphore *s, weft_loop *loop, int64_t value)
{
    return sem_init(s, loop, value, value);
}

int weft_semaphore_acquire(weft_semaphore *s)
{
    if (!s || !s->loop_)
        return -EINVAL;
    if (!in_task(s->loop_))
        return -EPERM;
    if (s->value_ > 0) {
        s->value_--;
        return 0;
    }
    int woken;
    int rc = wait_in(s->loop_, &s->waiters_, &woken);
    if (woken && rc) /* handed a unit, then cancelled: give it back */
        weft_semaphore_release(s);
    return rc;
}

int weft_semaphore_try_acquire(weft_semaphore *s)
{
    if (!s || !s->loop_)
        return -EINVAL;
    if (s->value_ == 0)
        return -EBUSY;
    s->value_--;
    return 0;
}

int weft_semaphore_release(weft_semaphore *s)
{
    if (!s || !s->loop_)
        return -EINVAL;
    if (s->bound_ >= 0 && s->value_ >= s->bound_)
        return -EOVERFLOW;
    if (!wake_one(&s->waiters_))
        s->value_++; /* else the unit went straight to the woken waiter */
    return 0;
}

int64_t weft_semaphore_value(const weft_semaphore *s)
{
    return s ? s->value_ : -EINVAL;
}

/* --- Event --- */

int weft_event_init(weft_event *e, weft_loop *loop)
{
    if (!e || !loop)
        return -EINVAL;
    *e = (weft_event){.loop_ = loop};
    return 0;
}

int weft_event_set(weft_event *e)
{
    if (!e || !e->loop_)
        return -EINVAL;
    e->set_ = 1;
    while (wake_one(&e->waiters_))
        ;
    return 0;
}

int weft_event_clear(weft_event *e)
{
    if (!e || !e->loop_)
        return -EINVAL;
    e->set_ = 0;
    return 0;
}

int weft_event_is_set(const weft_event *e)
{
    return e ? e->set_ : -EINVAL;
}

int weft_event_wait(weft_event *e)
{
    if (!e || !e->loop_)
        return -EINVAL;
    if (!in_task(e->loop_))
        return -EPERM;
    if (e->set_)
        return 0;
    int woken;
    return wait_in(e->loop_, &e->waiters_, &woken);
}

/* --- Condition --- */

int weft_cond_init(weft_cond *c, weft_loop *loop, weft_lock *lock)
{
    if (!c || !loop || (lock && lock->loop_ != loop))
        return -EINVAL;
    *c = (weft_cond){.loop_ = loop};
    weft_lock_init(&c->own_, loop);
    c->lock_ = lock ? lock : &c->own_;
    return 0;
}

weft_lock *weft_cond_lock(weft_cond *c)
{
    return c ? c->lock_ : NULL;
}

static int notify(weft_cond *c, int n)
{
    int woken = 0;
    while (woken < n && wake_one(&c->waiters_))
        woken++;
    return woken;
}

int weft_cond_wait(weft_cond *c)
{
    if (!c || !c->loop_)
        return -EINVAL;
    if (!in_task(c->loop_) || !c->lock_->locked_)
        return -EPERM;
    weft_lock_release(c->lock_);
    int woken;
    int rc = wait_in(c->loop_, &c->waiters_, &woken);
    /* Take the lock again whatever happened; a cancel meanwhile is kept. */
    for (;;) {
        int r = weft_lock_acquire(c->lock_);
        if (r == 0)
            break;
        if (r != -ECANCELED)
            return r;
        rc = -ECANCELED;
    }
    if (rc && woken) /* notified, but not returning 0: wake another one */
        notify(c, 1);
    return rc;
}

int weft_cond_wait_for(weft_cond *c, weft_predicate pred, void *arg)
{
    if (!c || !c->loop_ || !pred)
        return -EINVAL;
    if (!in_task(c->loop_) || !c->lock_->locked_)
        return -EPERM;
    while (!pred(arg)) {
        int rc = weft_cond_wait(c);
        if (rc)
            return rc;
    }
    return 0;
}

int weft_cond_notify(weft_cond *c, int n)
{
    if (!c || !c->loop_ || n < 0)
        return -EINVAL;
    if (!c->lock_->locked_)
        return -EPERM;
    return notify(c, n);
}

int weft_cond_notify_all(weft_cond *c)
{
    return weft_cond_notify(c, 0x7fffffff);
}

/* --- Queue --- */

int weft_queue_init(weft_queue *q, weft_loop *loop, size_t capacity)
{
    if (!q || !loop || capacity == 0 || capacity > SIZE_MAX / sizeof(intptr_t))
        return -EINVAL;
    intptr_t *ring = malloc(capacity * sizeof *ring);
    if (!ring)
        return -ENOMEM;
    *q = (weft_queue){.loop_ = loop, .ring_ = ring, .cap_ = capacity};
    return 0;
}

int weft_queue_destroy(weft_queue *q)
{
    if (!q || !q->loop_)
        return -EINVAL;
    if (!weft__list_empty(&q->getters_) || !weft__list_empty(&q->putters_) ||
        !weft__list_empty(&q->joiners_))
        return -EBUSY;
    free(q->ring_);
    *q = (weft_queue){0};
    return 0;
}

/* A slot was freed (or a promised one given back): promise it to the first
 * waiting putter, if any. */
static void slot_freed(weft_queue *q)
{
    if (wake_one(&q->putters_))
        q->slots_promised_++;
}

/* An item arrived (or a promised one was given back): promise it to the
 * first waiting getter, if any. */
static void item_added(weft_queue *q)
{
    if (wake_one(&q->getters_))
        q->items_promised_++;
}

static void push_item(weft_queue *q, intptr_t item)
{
    q->ring_[(q->head_ + q->count_) % q->cap_] = item;
    q->count_++;
    q->unfinished_++;
    item_added(q);
}

static intptr_t pop_item(weft_queue *q)
{
    intptr_t item = q->ring_[q->head_];
    q->head_ = (q->head_ + 1) % q->cap_;
    q->count_--;
    slot_freed(q);
    return item;
}

static int can_put(const weft_queue *q)
{
    return q->count_ + q->slots_promised_ < q->cap_;
}

static int can_get(const weft_queue *q)
{
    return q->count_ > q->items_promised_;
}

int weft_queue_try_put(weft_queue *q, intptr_t item)
{
    if (!q || !q->loop_)
        return -EINVAL;
    if (!can_put(q))
        return -EAGAIN;
    push_item(q, item);
    return 0;
}

int weft_queue_try_get(weft_queue *q, intptr_t *item)
{
    if (!q || !q->loop_ || !item)
        return -EINVAL;
    if (!can_get(q))
        return -EAGAIN;
    *item = pop_item(q);
    return 0;
}

int weft_queue_put(weft_queue *q, intptr_t item)
{
    if (!q || !q->loop_)
        return -EINVAL;
    if (!in_task(q->loop_))
        return -EPERM;
    if (can_put(q)) {
        push_item(q, item);
        return 0;
    }
    int woken;
    int rc = wait_in(q->loop_, &q->putters_, &woken);
    if (!woken)
        return rc;
    q->slots_promised_--; /* the slot promised to us */
    if (rc) {
        slot_freed(q); /* cancelled: the next putter gets it */
        return rc;
    }
    push_item(q, item);
    return 0;
}

int weft_queue_get(weft_queue *q, intptr_t *item)
{
    if (!q || !q->loop_ || !item)
        return -EINVAL;
    if (!in_task(q->loop_))
        return -EPERM;
    if (can_get(q)) {
        *item = pop_item(q);
        return 0;
    }
    int woken;
    int rc = wait_in(q->loop_, &q->getters_, &woken);
    if (!woken)
        return rc;
    q->items_promised_--; /* the item promised to us */
    if (rc) {
        item_added(q); /* cancelled: the next getter gets it */
        return rc;
    }
    *item = pop_item(q);
    return 0;
}

int64_t weft_queue_size(const weft_queue *q)
{
    return q && q->loop_ ? (int64_t)q->count_ : -EINVAL;
}

int weft_queue_task_done(weft_queue *q)
{
    if (!q || !q->loop_)
        return -EINVAL;
    if (q->unfinished_ == 0)
        return -EOVERFLOW;
    if (--q->unfinished_ == 0)
        while (wake_one(&q->joiners_))
            ;
    return 0;
}

int weft_queue_join(weft_queue *q)
{
    if (!q || !q->loop_)
        return -EINVAL;
    if (!in_task(q->loop_))
        return -EPERM;
    if (q->unfinished_ == 0)
        return 0;
    int woken;
    return wait_in(q->loop_, &q->joiners_, &woken);
}
