/* Signals in the loop, the portable part (weft/signal.h): per-loop
 * handlers and waiters, and the one threadsafe handle that hands arrived
 * signals to them on the loop's thread. Where signals come from is the OS
 * part's (signal_internal.h). */
#include "signal_internal.h"

#include <errno.h>
#include <stdlib.h>

weft__sigloop *weft__sig_get(weft_loop *loop)
{
    if (loop->sig)
        return loop->sig;
    weft__sigloop *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->sfd = -1;
    atomic_init(&s->pending, 0);
    atomic_init(&s->post_queued, 0);
    loop->sig = s;
    return s;
}

/* On the loop's thread: run the handlers and wake the waiters of every
 * signal that arrived. The flag is cleared before the bits are taken, so a
 * signal posted after the exchange queues the handle again. */
static void deliver(void *arg)
{
    weft__sigloop *s = arg;
    atomic_store(&s->post_queued, 0);
    uint64_t bits = atomic_exchange(&s->pending, 0);
    for (int signo = 1; signo < WEFT__NSIG && bits; signo++) {
        uint64_t bit = weft__sigbit(signo);
        if (!(bits & bit))
            continue;
        bits &= ~bit;
        if (!(s->want & bit))
            continue; /* removed since it arrived */
        if (s->sig[signo].cb)
            s->sig[signo].cb(s->loop, signo, s->sig[signo].arg);
        /* Only the waiters there now: one that a fire() adds waits for the
         * next signal. fire() may free the waiter's memory (the task goes
         * on), so each is unlinked first. */
        uint32_t n = s->sig[signo].waiters;
        for (weft__link *l = s->waiters.first; l && n;) {
            weft__sigwaiter *w = weft__container_of(l, weft__sigwaiter, link);
            l = l->next;
            if (w->signo != signo)
                continue;
            n--;
            weft__sig_waiter_del(s->loop, w);
            w->fire(w);
        }
    }
}

void weft__sig_post(weft__sigloop *s, int signo)
{
    atomic_fetch_or(&s->pending, weft__sigbit(signo));
    if (!atomic_exchange(&s->post_queued, 1))
        weft_call_soon_threadsafe(s->loop, &s->post_h, deliver, s);
}

void weft__signal_event(weft_loop *loop, int signo)
{
    weft__sigloop *s = loop->sig;
    if (s && signo > 0 && signo < WEFT__NSIG && (s->want & weft__sigbit(signo)))
        weft__sig_post(s, signo);
}

static int check(weft_loop *loop, int signo)
{
    if (!loop || signo < 1 || signo >= WEFT__NSIG)
        return -EINVAL;
    return weft__sig_os_check(signo);
}

/* signo is wanted once more on s's loop: the first want asks the OS. */
static int want(weft__sigloop *s, int signo)
{
    if (s->sig[signo].cb || s->sig[signo].waiters)
        return 0;
    int rc = weft__sig_os_add(s, signo);
    if (rc == 0)
        s->loop->sig_wants++;
    return rc;
}

static void unwant(weft__sigloop *s, int signo)
{
    if (s->sig[signo].cb || s->sig[signo].waiters)
        return;
    weft__sig_os_del(s, signo);
    s->loop->sig_wants--;
}

int weft_loop_add_signal_handler(weft_loop *loop, int signo, weft_signal_cb cb, void *arg)
{
    int rc = check(loop, signo);
    if (rc)
        return rc;
    if (!cb)
        return -EINVAL;
    weft__sigloop *s = weft__sig_get(loop);
    if (!s)
        return -ENOMEM;
    rc = want(s, signo);
    if (rc)
        return rc;
    s->sig[signo].cb = cb;
    s->sig[signo].arg = arg;
    return 0;
}

int weft_loop_remove_signal_handler(weft_loop *loop, int signo)
{
    int rc = check(loop, signo);
    if (rc)
        return rc;
    weft__sigloop *s = loop->sig;
    if (!s || !s->sig[signo].cb)
        return 0;
    s->sig[signo].cb = NULL;
    s->sig[signo].arg = NULL;
    unwant(s, signo);
    return 1;
}

int weft__sig_waiter_add(weft_loop *loop, weft__sigwaiter *w)
{
    int rc = check(loop, w->signo);
    if (rc)
        return rc;
    weft__sigloop *s = weft__sig_get(loop);
    if (!s)
        return -ENOMEM;
    rc = want(s, w->signo);
    if (rc)
        return rc;
    s->sig[w->signo].waiters++;
    weft__list_push(&s->waiters, &w->link);
    w->linked = 1;
    return 0;
}

void weft__sig_waiter_del(weft_loop *loop, weft__sigwaiter *w)
{
    weft__sigloop *s = loop->sig;
    if (!s || !w->linked)
        return;
    w->linked = 0;
    weft__list_remove(&s->waiters, &w->link);
    s->sig[w->signo].waiters--;
    unwant(s, w->signo);
}

void weft__sig_detach(weft_loop *loop)
{
    if (loop->sig)
        weft__sig_os_detach(loop->sig);
}

void weft__sig_free(weft_loop *loop)
{
    if (!loop->sig)
        return;
    weft__sig_os_free(loop->sig);
    free(loop->sig);
    loop->sig = NULL;
}
