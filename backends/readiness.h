/* What every readiness backend (epoll, kqueue, poll) shares: the per-fd
 * wait lists, the "try the system call first, park on EAGAIN" rule, and
 * finishing parked ops when their fd becomes ready. A backend adds only its
 * notification mechanism: how to watch an fd and how to wait. */
#ifndef WEFT_READINESS_H
#define WEFT_READINESS_H

#include "backend.h"
#include "list.h"

enum { WEFT_WANT_IN = 1, WEFT_WANT_OUT = 2 };

typedef struct weft_fdslot {
    weft_list readers;   /* parked poll-in, accept, recv: FIFO */
    weft_list writers;   /* parked poll-out, send, connect: FIFO */
    uint32_t mech_index; /* the mechanism's own bookkeeping (poll: pollfd index + 1) */
    uint8_t want;        /* WEFT_WANT_* the mechanism was last told */
    uint8_t registered;  /* the mechanism watches this fd */
    uint8_t not_socket;  /* recv/send said ENOTSOCK: use read/write */
} weft_fdslot;

typedef struct weft_readiness weft_readiness;

typedef struct weft_readiness_mech {
    /* slot->want changed (from the value in `old`): watch fd accordingly.
     * Called only on a real change. 0 or a negative error. */
    int (*update)(weft_readiness *r, int fd, weft_fdslot *slot, uint8_t old);
    /* fd is about to be closed: stop watching it. */
    void (*drop)(weft_readiness *r, int fd, weft_fdslot *slot);
} weft_readiness_mech;

struct weft_readiness {
    weft_backend base;
    const weft_readiness_mech *mech;
    weft_fdslot *slots;
    int nslots;
};

int weft__ready_submit(weft_backend *be, weft_op *op);
int weft__ready_cancel(weft_backend *be, weft_op *op);
int weft__ready_forget_fd(weft_backend *be, int fd);
/* The mechanism saw fd ready: finish the parked ops that can finish now. */
void weft__ready_event(weft_readiness *r, int fd, int readable, int writable);
/* Drop all parked ops (their callbacks will not run) and the slot table. */
void weft__ready_fini(weft_readiness *r);

static inline weft_fdslot *weft__ready_slot(weft_readiness *r, int fd)
{
    return fd < r->nslots ? &r->slots[fd] : NULL;
}

#endif
