/* Signals in the loop (weft/signal.h): the per-loop state shared by the
 * portable part (signal.c) and the OS part (signal_posix.c, signal_win.c).
 *
 * A signal reaches a loop through weft__sig_post() from any thread: a bit
 * in `pending` and one threadsafe handle per batch; the handle runs the
 * handlers and wakes the waiters on the loop's thread. The OS part decides
 * where signals come from and, since dispositions are process-wide, keeps
 * the one process-wide registry of loops that want each signal. */
#ifndef WEFT_SIGNAL_INTERNAL_H
#define WEFT_SIGNAL_INTERNAL_H

#include "loop_internal.h"

#include <stdatomic.h>

/* Signal numbers 1..WEFT__NSIG-1: a bit each in a uint64_t. */
#define WEFT__NSIG 65

/* A task waiting for a signal (core/task/signal_wait.c): fire() runs on the
 * loop's thread, in the handle phase; w is unlinked before. */
typedef struct weft__sigwaiter {
    weft__link link;
    int signo;
    int linked; /* registered: not yet fired nor removed */
    void (*fire)(struct weft__sigwaiter *w);
} weft__sigwaiter;

typedef struct weft__sigloop {
    weft_loop *loop;
    /* What the loop wants (a handler or waiters), one bit per signal:
     * written on the loop's thread under the registry's lock, which
     * fan-out reads under. */
    uint64_t want;
    weft__link reg;                /* the registry's list of loops */
    int registered;                /* in the registry's list */
    atomic_uint_least64_t pending; /* arrived, not yet handled */
    atomic_int post_queued;        /* post_h is queued, or about to be */
    weft_handle post_h;
    struct {
        weft_signal_cb cb;
        void *arg;
        uint32_t waiters;
    } sig[WEFT__NSIG];
    weft__list waiters;
    /* The OS part's own state (signal_posix.c). */
    uint64_t blocked_by_us, unblocked_by_us; /* the loop thread's mask changes */
    int via_kqueue;                          /* the backend's signal_add */
    int sfd;                                 /* signalfd, -1 */
    weft_op sfd_op, pipe_op;
    int pipe_watched; /* pipe_op submitted on the registry's pipe */
} weft__sigloop;

static inline uint64_t weft__sigbit(int signo)
{
    return (uint64_t)1 << (signo - 1);
}

/* Any thread: signo arrived for s's loop. */
void weft__sig_post(weft__sigloop *s, int signo);

/* The OS part. check: 0 when signo may be handled, else -EINVAL. add: s
 * wants signo now (first handler or waiter on this loop); 0 or an error,
 * nothing changed. del: s no longer wants signo. rearm: the loop's wants
 * went from none to some (ops to resubmit). detach: the loop is being freed,
 * before the backend's fini: leave the registry, restore what was changed.
 * free: after the backend's fini: close what the loop holds. */
int weft__sig_os_check(int signo);
int weft__sig_os_add(weft__sigloop *s, int signo);
void weft__sig_os_del(weft__sigloop *s, int signo);
void weft__sig_os_detach(weft__sigloop *s);
void weft__sig_os_free(weft__sigloop *s);

#ifdef _WIN32
/* The console control handler's body (signal_win.c), for the tests: post
 * the event's signal to the loops that want it; 0 when none does. */
int weft__sig_console_event(unsigned long type);
#endif

/* The loop's state, made on first use; NULL and -ENOMEM. */
weft__sigloop *weft__sig_get(weft_loop *loop);
/* Task layer: register / unregister a waiter (signal.c). add: 0 or the
 * errors of weft_loop_add_signal_handler. */
int weft__sig_waiter_add(weft_loop *loop, weft__sigwaiter *w);
void weft__sig_waiter_del(weft_loop *loop, weft__sigwaiter *w);

#endif
