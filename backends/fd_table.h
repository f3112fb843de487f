/* The per-fd table every backend keeps: for each fd, a FIFO of readers
 * (poll-in, accept, recv) and one of writers (poll-out, send, connect), so
 * ops on one fd never overtake each other, plus what the backend learnt
 * about the fd. io_uring uses the FIFOs, marks, late and the fields marked
 * io_uring; the readiness backends (readiness.c) use the rest too. Indexed
 * by fd; grows on demand. */
#ifndef WEFT_FD_TABLE_H
#define WEFT_FD_TABLE_H

#include "backend.h"
#include "list.h"

#include <errno.h>

typedef struct weft__fdslot {
    weft__list readers;  /* FIFO; io_uring: the head is with the kernel */
    weft__list writers;  /* FIFO */
    uint32_t mech_index; /* readiness: the mechanism's own bookkeeping (poll: pollfd index + 1) */
    uint8_t want;        /* readiness: WEFT__WANT_* the mechanism was last told */
    uint8_t registered;  /* readiness: the mechanism watches this fd */
    uint8_t kind;      /* readiness: 0 not known yet, FD_STREAM (a SOCK_STREAM socket), FD_OTHER */
    uint8_t drained;   /* readiness: a short read emptied the input: until the mechanism says
                          readable, a recv parks without trying (saves an EAGAIN call) */
    uint8_t hup_seen;  /* readiness: the mechanism reported end of stream or an error: a short
                          read no longer proves there is nothing to report */
    uint16_t sent_gen; /* io_uring: u->poll_gen when a send last went out at submit */
    uint8_t marks;     /* WEFT__MARK_*, 0 nearly always */
    weft_op *late;     /* a late recv whose fd is readable, its data not read yet */
} weft__fdslot;

enum { FD_STREAM = 1, FD_OTHER = 2 };

/* A recv of at least this many bytes, on a socket whose recvs bring as
 * many, is a late recv: it completes when the fd is readable and reads
 * just before its callback runs (vt->late; uring.c, readiness.c). */
enum { WEFT__LATE_READ_MIN = 8192 };
/* What the backend knows of an fd (weft__fdslot.marks): submit looks
 * closer only when one is set. */
enum {
    WEFT__MARK_NOT_SOCKET = 1, /* recv/send said ENOTSOCK: use read/write */
    WEFT__MARK_BIG_READS = 2,  /* a recv brought WEFT__LATE_READ_MIN or more, and no late
                                  recv since came back shorter */
    WEFT__MARK_LATE_WAITS = 4, /* slot->late is set: no other reader goes ahead of it */
};

/* A late recv's bookkeeping, the same on every backend that has them.
 * Its fd turned readable: op completes unread, and no other reader goes
 * ahead of it until vt->late takes it to read. */
static inline void weft__fd_late_wait(weft__fdslot *s, weft_op *op)
{
    op->opflags_ |= WEFT__OPFLAG_LATE;
    s->late = op;
    s->marks |= WEFT__MARK_LATE_WAITS;
}

static inline void weft__fd_late_take(weft__fdslot *s, weft_op *op)
{
    op->opflags_ &= (uint8_t)~WEFT__OPFLAG_LATE;
    s->late = NULL;
    s->marks &= (uint8_t)~WEFT__MARK_LATE_WAITS;
}

/* The fd is being closed: a late recv waiting for its read never gets it. */
static inline void weft__fd_late_cancel(weft__fdslot *s)
{
    if (s->late) {
        s->late->result = -ECANCELED;
        weft__fd_late_take(s, s->late);
    }
}

typedef struct weft__fd_table {
    weft__fdslot *slots;
    int nslots;
} weft__fd_table;

/* fd's slot, or NULL when the table has never grown that far. */
static inline weft__fdslot *weft__fd_slot(weft__fd_table *t, int fd)
{
    return fd < t->nslots ? &t->slots[fd] : NULL;
}

/* Make room for fd (>= 0). Only a real descriptor may grow the table, so a
 * bogus huge number allocates nothing: its F_GETFD error (-EBADF) comes
 * back. 0, that error, or -ENOMEM. */
int weft__fd_table_extend(weft__fd_table *t, int fd); /* the slow half: a new high fd */
static inline int weft__fd_table_grow(weft__fd_table *t, int fd)
{
    return fd < t->nslots ? 0 : weft__fd_table_extend(t, fd);
}

void weft__fd_table_free(weft__fd_table *t);

/* One bit per opcode: POLL_IN, ACCEPT and RECV read (a shift, not three
 * compares: this runs twice per op). */
#define WEFT__READER_OPS ((1u << WEFT_OP_POLL_IN) | (1u << WEFT_OP_ACCEPT) | (1u << WEFT_OP_RECV))

static inline int weft__op_is_reader(const weft_op *op)
{
    return (WEFT__READER_OPS >> (op->opcode & 31u)) & 1u;
}

/* The FIFO op belongs in (not for CLOSE). */
static inline weft__list *weft__fd_fifo(weft__fdslot *slot, const weft_op *op)
{
    return weft__op_is_reader(op) ? &slot->readers : &slot->writers;
}

#endif
