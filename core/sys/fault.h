/* Fault injection for test builds (meson -Dfault_injection=true): before a
 * system call on a data path, before an io_uring SQE is taken or prepared,
 * and before the library allocates, a seeded schedule may decide that the
 * call fails (EAGAIN, EINTR, ECONNRESET/EPIPE, EMFILE/ENFILE, ENOMEM,
 * ENOBUFS, a full SQ) or moves fewer bytes. Off (the default), every macro
 * below is a constant 0 and the call sites compile to the plain calls.
 *
 * Faults never pretend about data: a short transfer is the real call with
 * a length of 1, a failed call transfers nothing (io_uring: the SQE becomes
 * a NOP whose completion carries the error), a reset really shuts the
 * socket down. An injected EAGAIN on a readiness backend owes the fd a
 * readiness event, as the kernel would owe it one: the backend replays it
 * (WEFT__FAULT_OWED) so edge-triggered waits do not hang on a lie.
 *
 * Configuration: from the environment on a thread's first call
 * (WEFT_FAULT_SEED=N turns it on; WEFT_FAULT_RATE=permille, default 50;
 * WEFT_FAULT_KINDS=a mask of WEFT__FK_* or names like "eagain,short"), or
 * from weft__fault_config(). */
#ifndef WEFT_FAULT_H
#define WEFT_FAULT_H

#include "weft_config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Where a decision is taken: each site allows some kinds. */
enum weft__fault_site {
    WEFT__FS_RECV,       /* recv/read (readiness) or a recv SQE */
    WEFT__FS_SEND,       /* send/write */
    WEFT__FS_ACCEPT,     /* accept4 or an accept SQE */
    WEFT__FS_CONNECT,    /* connect */
    WEFT__FS_WAIT,       /* epoll_wait/poll/kevent: EINTR */
    WEFT__FS_ALLOC,      /* weft's own malloc/calloc/realloc: ENOMEM */
    WEFT__FS_SQE,        /* io_uring_get_sqe: a full SQ */
    WEFT__FS_MULTI,      /* a buffer-select (multishot) recv CQE: ENOBUFS */
    WEFT__FS_IOCP_IO,    /* an overlapped WSARecv/WSASend: what IOCP can report (short, reset) */
    WEFT__FS_MULTI_STOP, /* a running io_uring multishot request: the kernel ends it */
};

/* The kinds of fault (a mask selects which may happen). */
enum {
    WEFT__FK_EAGAIN = 1,
    WEFT__FK_EINTR = 2,
    WEFT__FK_SHORT = 4, /* a 1-byte transfer */
    WEFT__FK_RESET = 8, /* ECONNRESET / EPIPE / ECONNREFUSED: the connection is gone */
    WEFT__FK_EMFILE = 16,
    WEFT__FK_ENOMEM = 32,
    WEFT__FK_ENOBUFS = 64,
    WEFT__FK_SQFULL = 128,
    WEFT__FK_CQOVF = 256, /* the kernel ends a multishot request, as on CQ overflow */
    /* What a correct program survives with every byte delivered. */
    WEFT__FK_BENIGN = WEFT__FK_EAGAIN | WEFT__FK_EINTR | WEFT__FK_SHORT | WEFT__FK_SQFULL |
                      WEFT__FK_ENOBUFS | WEFT__FK_CQOVF,
    WEFT__FK_ALL = 511,
};

#if WEFT_FAULT_INJECTION

/* Set this thread's schedule: seed, rate in permille (0 turns it off),
 * kinds (a WEFT__FK_* mask). Overrides the environment. Resets the
 * counter and forgets owed events. */
void weft__fault_config(uint64_t seed, unsigned rate_permille, unsigned kinds);

/* A WEFT__FK_* mask from a number or names ("eagain,short", "benign",
 * "all"); unknown names count for nothing. */
unsigned weft__fault_parse_kinds(const char *s);

/* Faults injected on this thread since the last weft__fault_config(). */
uint64_t weft__fault_count(void);

/* The owner for a caller that retries an injected EAGAIN itself (io_uring):
 * no event is owed. */
#define WEFT__FAULT_NO_OWE ((const void *)1)

/* Decide for one call at `site` on fd (-1 if none). 0: make the call, with
 * *len (when not NULL) possibly cut to 1. Else the positive errno the call
 * fails with instead (nothing was done, except for a reset, which shuts
 * fd down). EAGAIN is chosen only with an owner (the backend that will
 * replay the owed event). */
int weft__fault_at(const void *owner, int fd, int site, size_t *len);

/* The next fd owed a readiness event by owner, removed from the list; -1
 * when none is owed. */
int weft__fault_owed_pop(const void *owner);

/* Whether owner is owed any event (its wait must not block). */
int weft__fault_owed_any(const void *owner);

#define WEFT__FAULT(owner, fd, site, lenp) weft__fault_at((owner), (fd), (site), (lenp))
#define WEFT__FAULT_OWED(owner) weft__fault_owed_any(owner)
#else
#define WEFT__FAULT(owner, fd, site, lenp) ((void)(owner), (void)(lenp), 0)
#define WEFT__FAULT_OWED(owner) ((void)(owner), 0)
#endif

/* weft's own allocations, each a fault site (ENOMEM). */
#define WEFT__MALLOC(n) (WEFT__FAULT(NULL, -1, WEFT__FS_ALLOC, NULL) ? NULL : malloc(n))
#define WEFT__CALLOC(n, m) (WEFT__FAULT(NULL, -1, WEFT__FS_ALLOC, NULL) ? NULL : calloc((n), (m)))
#define WEFT__REALLOC(p, n) (WEFT__FAULT(NULL, -1, WEFT__FS_ALLOC, NULL) ? NULL : realloc((p), (n)))

#endif
