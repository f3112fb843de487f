/* io_uring backend: the state uring.c (ops, ring, wake-ups) and
 * uring_multi.c (multishot requests, the provided-buffer ring) share. */
#ifndef WEFT_URING_INTERNAL_H
#define WEFT_URING_INTERNAL_H

#include "backend.h"
#include "fd_table.h"
#include "list.h"

#include <liburing.h>

/* user_data of the ring's own requests; ops are 8-byte aligned pointers. */
enum { UD_IGNORE = 0, UD_WAKE = 1, UD_MULTI = 2 /* | a weft_multi address */ };

enum { WEFT__REAP_BATCH = 32 };
/* Recvs submit() may hold back for one enter (uring.c, "deferred recvs"). */
enum { WEFT__DEFER_MAX = 256 };
/* Sends at least this long go out with send() at submit (uring.c). */
enum { WEFT__SEND_NOW_MIN = 8192 };

/* A CQE copied off the ring, waiting to be handled (uring.c reap). */
struct weft__reaped {
    uint64_t ud;
    int res;
    unsigned flags;
};

typedef struct weft__uring {
    weft__backend base;
    struct io_uring ring;
    unsigned flags;   /* setup flags the ring got */
    unsigned sq_size; /* entries the kernel gave */
    unsigned cq_size;
    int enabled;   /* the ring accepts submissions (R_DISABLED lifted) */
    int entered;   /* the kernel has seen at least one SQE */
    int closing;   /* fini(): no more re-arming or resubmitting */
    uint64_t nops; /* ops whose final CQE is not reaped yet */
    int wakefd;
    int wake_armed;
    uint64_t wake_val;  /* the armed read's buffer */
    weft__fd_table fds; /* per-fd FIFOs: only the head of each is with the kernel */
    /* Multishot requests (weft/multi.h). */
    uint64_t nmulti;              /* with the kernel */
    struct io_uring_buf_ring *br; /* provided buffers for multishot recv */
    size_t br_bytes;
    char *bufs;
    unsigned buf_count, buf_size;
    int buf_inc;                  /* the kernel packs recvs into buffers (IOU_PBUF_RING_INC) */
    struct weft__ubuf *buf_state; /* per buffer */
    /* Free buffers held back from the ring, the last freed on top: the
     * ring is a FIFO, so with every free buffer in it each recv would go
     * to the least recently used (cold) memory of the whole pool. */
    uint16_t *buf_spare;
    unsigned nspare;
    unsigned ring_bufs; /* buffers in the ring now */
    unsigned ring_goal; /* how many to keep there: grows when a recv runs dry */
    uint16_t goal_gen;  /* poll_gen of the last growth: once per poll */
    weft__list starved; /* recvs paused by -ENOBUFS */
    /* CQEs taken off the ring and not handled yet: [reaped_pos, reaped_len). */
    struct weft__reaped reaped[WEFT__REAP_BATCH];
    unsigned reaped_pos, reaped_len;
    /* Recvs on a socket with a send in flight, for the SQ after the next
     * reap: [0, ndeferred). */
    weft_op *deferred[WEFT__DEFER_MAX];
    unsigned ndeferred;
    uint16_t poll_gen; /* counts polls; see "sends at submit" */
} weft__uring;

/* A provided buffer: the kernel fills it from `off` (all of it at once
 * without buf_inc), and it goes back into the ring once the kernel is done
 * with it (off == buf_size) and its chunks are all given back. */
struct weft__ubuf {
    uint32_t off;  /* where the kernel's next chunk in it starts */
    uint32_t refs; /* chunks delivered, not given back */
};

/* uring.c */
/* Whether environment variable name is set to something other than "" or "0". */
int weft__uring_env_flag(const char *name);
/* Enable a SINGLE_ISSUER ring on first use (from the thread that runs it). */
int weft__uring_enable(weft__uring *u);
/* An SQE, submitting what is queued when the SQ is full; NULL and *err set
 * when the kernel takes nothing. The free-slot case is inline (once per
 * op); _slow flushes, and takes every SQE in fault-injection builds. */
struct io_uring_sqe *weft__uring_get_sqe_slow(weft__uring *u, int *err);
static inline struct io_uring_sqe *weft__uring_get_sqe(weft__uring *u, int *err)
{
#if WEFT_FAULT_INJECTION
    return weft__uring_get_sqe_slow(u, err);
#else
    /* liburing's io_uring_get_sqe, less its SQPOLL and SQE128 cases: the
     * ring is set up with neither (uring.c setup_ring). */
    struct io_uring_sq *sq = &u->ring.sq;
    unsigned tail = sq->sqe_tail;
    if (tail - IO_URING_READ_ONCE(*sq->khead) < sq->ring_entries) {
        sq->sqe_tail = tail + 1;
        return &sq->sqes[tail & sq->ring_mask];
    }
    return weft__uring_get_sqe_slow(u, err);
#endif
}

/* uring_multi.c */
void weft__uring_multi_cqe(weft__uring *u, weft_multi *m, int res, unsigned flags);
/* m is paused (out of buffers) and must stop: its last result goes through
 * the ring like every other. */
void weft__uring_multi_stop_paused(weft__uring *u, weft_multi *m);
/* fini(): paused recvs never reached the kernel; forget them. */
void weft__uring_multi_drop_paused(weft__uring *u);
void weft__uring_multi_fini(weft__uring *u);
int weft__uring_multi_start(weft__backend *be, weft_multi *m);
int weft__uring_multi_cancel(weft__backend *be, weft_multi *m);
int weft__uring_bufs_setup(weft__backend *be, unsigned count, unsigned size);
void weft__uring_buf_put(weft__backend *be, void *buf);

#endif
