/* The backend contract: how the loop talks to an I/O backend.
 *
 * Completion-based. The loop hands a backend a caller-owned weft_op; the
 * backend finishes it some time later by calling weft__op_done(), which
 * queues the op's callback on the loop (never runs it inline). io_uring
 * maps an op to one kernel request, IOCP to one overlapped call; readiness
 * backends (epoll, kqueue, poll) try the system call
 * first and park the op on its fd until the fd is ready (see readiness.h).
 * Backends know nothing of coroutines, futures or tasks. docs/design.md
 * has the whole contract and a checklist for a new backend.
 */
#ifndef WEFT_BACKEND_H
#define WEFT_BACKEND_H

#include "weft_config.h"
#include "weft/loop.h"
#include "weft/op.h"
#include "weft/multi.h"

typedef struct weft__backend weft__backend;

typedef struct weft__vtable {
    const char *name;
    weft_backend_kind kind;
    size_t size; /* bytes of the backend's state, which starts with weft__backend */
    /* Set up in memory the loop allocated (zeroed). 0 or a negative error;
     * on error the backend has released what it took. */
    int (*init)(weft__backend *be, const weft_loop_opts *opts);
    /* Release everything; ops still in flight have been cancelled and reaped. */
    void (*fini)(weft__backend *be);
    /* Start op (weft_op_submit marked it in flight and tail-calls this).
     * 0, or a negative error returned through weft__op_refused(), which
     * makes the op idle again. */
    int (*submit)(weft__backend *be, weft_op *op);
    /* Ask op to stop; it still completes through weft__op_done(). 0 or
     * -EALREADY. */
    int (*cancel)(weft__backend *be, weft_op *op);
    /* The caller is about to close fd: complete what is parked on it with
     * -ECANCELED and forget it. 0 or a negative error. */
    int (*forget_fd)(weft__backend *be, int fd);
    /* Wait for completions up to timeout_ns (-1: no limit, 0: do not block)
     * and hand them to weft__op_done(). Returns 0 or a negative error; a
     * wake-up or a signal is not an error. */
    int (*poll)(weft__backend *be, int64_t timeout_ns);
    /* The loop is about to run the callback of op, which completed with
     * WEFT__OPFLAG_LATE set: do op's I/O now, next to the callback that
     * uses its data (late recvs: io_uring, readiness.c; NULL for IOCP). 0:
     * op->result is final, the callback runs; 1: op went back in flight
     * (never once a cancel was asked for: WEFT__OPFLAG_CANCEL, set by
     * weft_op_cancel on a late op whose callback has not run). */
    int (*late)(weft__backend *be, weft_op *op);
    /* Make a poll() blocked in another thread return. Thread-safe. */
    int (*wake)(weft__backend *be);
    /* What the backend found at setup, for weft-info (may be NULL). */
    int (*info)(const weft__backend *be, char *buf, size_t size);
    /* Multishot (weft/multi.h). m->kind_ is WEFT__MULTI_ACCEPT or _RECV and
     * m->fd_, cb, data are set; every result goes to weft__multi_event(). */
    int (*multi_start)(weft__backend *be, weft_multi *m);
    int (*multi_cancel)(weft__backend *be, weft_multi *m); /* 0 or -EALREADY */
    int (*bufs_setup)(weft__backend *be, unsigned count, unsigned size);
    /* Give back a chunk of the loop's buffers (a pointer into it); what
     * points into none of them is ignored. */
    void (*buf_put)(weft__backend *be, void *buf);
    /* Signals, only where the backend's kernel object must deliver them
     * (kqueue's EVFILT_SIGNAL; NULL elsewhere: core/loop/signal_posix.c
     * reads them itself). add: report signo through weft__signal_event()
     * from poll() from now on; 0 or an error. del: stop. */
    int (*signal_add)(weft__backend *be, int signo);
    void (*signal_del)(weft__backend *be, int signo);
} weft__vtable;

enum { WEFT__MULTI_ACCEPT = 1, WEFT__MULTI_RECV = 2 };

/* A result of m; more == 0 on the last one, after which m is idle.
 * Multishot callbacks, like op callbacks, run only in the loop's callback
 * phase, never while a backend polls. From poll() (or anywhere), a backend
 * posts: weft__multi_post() queues the result and a call_soon handle hands
 * it over in the next callback phase, results in the order they were
 * posted. weft__multi_event() runs m's callback at once: only for a backend
 * already in the callback phase (the readiness emulation's kick handle).
 * Until the last result is delivered m stays active (m->state_ != 0). */
void weft__multi_post(weft_loop *loop, weft_multi *m, int64_t res, void *buf, int more);
void weft__multi_event(weft_loop *loop, weft_multi *m, int64_t res, void *buf, int more);

struct weft__backend {
    const weft__vtable *vt;
    weft_loop *loop;
};

/* Called by a backend (signal_add): signo arrived for loop. */
void weft__signal_event(weft_loop *loop, int signo);

/* weft__op_done(loop, op, result), which a backend calls when op finished,
 * is an inline in core/loop/loop_internal.h (it runs once per op). */

/* The vtable for a kind, or NULL when it is not compiled in. */
const weft__vtable *weft__backend_vtable(weft_backend_kind kind);

/* The one AUTO search (select.c): try start(kind, ctx) on each compiled
 * backend in order of preference (io_uring, kqueue, IOCP, epoll, poll) and
 * stop at the first that returns 0. Returns that kind, or the first real
 * error (WEFT_EUNAVAILABLE when nothing is compiled). Used by
 * weft_loop_new() and weft_backend_auto(). */
int weft__backend_search(int (*start)(weft_backend_kind kind, void *ctx), void *ctx);

/* Op states (weft_op.state_). */
enum { WEFT__OPSTATE_IDLE = 0, WEFT__OPSTATE_INFLIGHT, WEFT__OPSTATE_DONE };
/* Op flags (weft_op.opflags_), for the loop and backends. */
enum {
    WEFT__OPFLAG_CANCEL = 1,     /* a cancel was asked for */
    WEFT__OPFLAG_STARTED = 2,    /* connect: the system call was made, wait for SO_ERROR */
    WEFT__OPFLAG_READ_WRITE = 4, /* fd is not a socket: use read/write */
    WEFT__OPFLAG_MULTI = 8,      /* the op inside a weft_multi (readiness emulation) */
    WEFT__OPFLAG_FAULT = 16,     /* io_uring, fault injection: a NOP carrying the errno in pad_ */
    WEFT__OPFLAG_DEFERRED = 32,  /* io_uring: a recv held back until the next enter */
    WEFT__OPFLAG_LATE = 64,      /* a recv done when its fd turned readable; its data is read
                                    just before its callback runs (vt->late) */
};

/* Declared only where compiled (weft_config.h): a reference to a backend
 * this build lacks fails to compile rather than to link. */
#if WEFT_HAVE_EPOLL
extern const weft__vtable weft__epoll_vtable;
#endif
#if WEFT_HAVE_POLL
extern const weft__vtable weft__poll_vtable;
#endif
#if WEFT_HAVE_IO_URING
extern const weft__vtable weft__uring_vtable;
#endif
#if WEFT_HAVE_KQUEUE
extern const weft__vtable weft__kqueue_vtable;
#endif
#if WEFT_HAVE_IOCP
extern const weft__vtable weft__iocp_vtable;
#endif

#endif
