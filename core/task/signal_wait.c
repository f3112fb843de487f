/* weft_signal_wait (weft/signal.h): a task waits for a signal through a
 * future that the loop's signal layer finishes. */
#include "signal_internal.h"

#include <errno.h>

typedef struct waiter {
    weft__sigwaiter w;
    weft_future *f;
} waiter;

static void fire(weft__sigwaiter *w)
{
    waiter *x = weft__container_of(w, waiter, w);
    weft_future_set_result(x->f, w->signo); /* -EALREADY once cancelled: nothing to do */
}

int weft_signal_wait(weft_loop *loop, int signo)
{
    if (!loop || !weft_task_current(loop))
        return -EPERM;
    waiter x = {.w = {.signo = signo, .fire = fire}};
    int rc = weft_future_new(loop, &x.f);
    if (rc)
        return rc;
    rc = weft__sig_waiter_add(loop, &x.w);
    if (rc) {
        weft_future_unref(x.f);
        return rc;
    }
    intptr_t res = 0;
    rc = weft_await(x.f, &res);
    weft__sig_waiter_del(loop, &x.w); /* still registered after a cancel */
    weft_future_unref(x.f);
    return rc ? rc : (int)res;
}
