/* What every readiness backend (epoll, kqueue, poll) shares: the per-fd
 * wait lists (fd_table.h, the table io_uring uses too), the "try the system call first, park on
 * EAGAIN" rule, and finishing parked ops when their fd becomes ready (a long recv: just before
 * its callback, see "late recvs" in readiness.c). A backend adds only its
 * notification mechanism: how to watch an fd and how to wait. */
#ifndef WEFT_READINESS_H
#define WEFT_READINESS_H

#include "backend.h"
#include "buf_pool.h"
#include "fd_table.h"
#include "list.h"
#include "sys/fault.h"

#include <errno.h>

enum { WEFT__WANT_IN = 1, WEFT__WANT_OUT = 2 };

typedef struct weft__readiness weft__readiness;

typedef struct weft__readiness_mech {
    /* slot->want changed (from the value in `old`): watch fd accordingly.
     * Called only on a real change. 0 or a negative error. */
    int (*update)(weft__readiness *r, int fd, weft__fdslot *slot, uint8_t old);
    /* fd is about to be closed: stop watching it. */
    void (*drop)(weft__readiness *r, int fd, weft__fdslot *slot);
    /* 1: update() registers an fd once for both directions (epoll and
     * kqueue, edge-triggered) and does nothing once slot->registered, so a
     * registered fd's want changes skip the call. 0: every change (poll). */
    int register_once;
} weft__readiness_mech;

struct weft__readiness {
    weft__backend base;
    const weft__readiness_mech *mech;
    weft__fd_table fds;
    /* Multishot emulation (readiness_multi.c): the loop's receive buffers. */
    weft__buf_pool bufs;
    weft__list starved; /* recvs paused until a buffer comes back */
};

/* What weft__ready_try returns when the call would block. */
#define WEFT__READY_PARK (-(int64_t)EAGAIN)

/* One non-blocking attempt at op's system call (WEFT__READY_PARK if it
 * would block); park op on its fd, or take it off again. */
int64_t weft__ready_try(weft__readiness *r, weft_op *op);
int weft__ready_park(weft__readiness *r, weft_op *op);
void weft__ready_unpark(weft__readiness *r, weft_op *op);

/* Multishot emulation (readiness_multi.c). */
int weft__ready_multi_start(weft__backend *be, weft_multi *m);
int weft__ready_multi_cancel(weft__backend *be, weft_multi *m);
int weft__ready_bufs_setup(weft__backend *be, unsigned count, unsigned size);
void weft__ready_buf_put(weft__backend *be, void *buf);
void weft__ready_multi_kick(weft__readiness *r, weft_multi *m); /* its fd is ready */
void weft__ready_multi_end(weft__readiness *r, weft_multi *m, int64_t res);
void weft__ready_multi_forget(weft__readiness *r, int fd); /* paused recvs on fd end */
void weft__ready_multi_fini(weft__readiness *r);

/* The vtable entries every readiness backend shares. */
#define WEFT__READINESS_OPS                                                                        \
    .submit = weft__ready_submit, .cancel = weft__ready_cancel,                                    \
    .forget_fd = weft__ready_forget_fd, .multi_start = weft__ready_multi_start,                    \
    .multi_cancel = weft__ready_multi_cancel, .bufs_setup = weft__ready_bufs_setup,                \
    .buf_put = weft__ready_buf_put, .late = weft__ready_late

int weft__ready_submit(weft__backend *be, weft_op *op);
int weft__ready_cancel(weft__backend *be, weft_op *op);
int weft__ready_forget_fd(weft__backend *be, int fd);
/* vt->late: read a late recv's data (readiness.c, "late recvs"). */
int weft__ready_late(weft__backend *be, weft_op *op);
/* The mechanism saw fd ready: finish the parked ops that can finish now. */
void weft__ready_event(weft__readiness *r, int fd, int readable, int writable, int hup);
/* Fault injection (core/sys/fault.h): an injected EAGAIN owes its fd a
 * readiness event, as a real one would; the backend's wait must not block
 * while one is owed (WEFT__READY_FAULT_TIMEOUT) and replays them after it
 * (WEFT__READY_FAULT_REPLAY), as spurious readable+writable events. */
#if WEFT_FAULT_INJECTION
void weft__ready_fault_replay(weft__readiness *r);
#define WEFT__READY_FAULT_REPLAY(r) weft__ready_fault_replay(r)
#else
#define WEFT__READY_FAULT_REPLAY(r) ((void)(r))
#endif
#define WEFT__READY_FAULT_TIMEOUT(r, t) (WEFT__FAULT_OWED(r) ? 0 : (t))

/* Drop all parked ops (their callbacks will not run) and the slot table. */
void weft__ready_fini(weft__readiness *r);

static inline weft__fdslot *weft__ready_slot(weft__readiness *r, int fd)
{
    return weft__fd_slot(&r->fds, fd);
}

#endif
