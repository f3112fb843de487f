/* The per-fd table every backend keeps: for each fd, a FIFO of readers
 * (poll-in, accept, recv) and one of writers (poll-out, send, connect), so
 * ops on one fd never overtake each other, plus what the backend learnt
 * about the fd. io_uring uses the FIFOs and not_socket; the readiness
 * backends (readiness.c) use the rest too. Indexed by fd; grows on demand. */
#ifndef WEFT_FD_TABLE_H
#define WEFT_FD_TABLE_H

#include "backend.h"
#include "list.h"

typedef struct weft__fdslot {
    weft__list readers;  /* FIFO; io_uring: the head is with the kernel */
    weft__list writers;  /* FIFO */
    uint32_t mech_index; /* readiness: the mechanism's own bookkeeping (poll: pollfd index + 1) */
    uint8_t not_socket;  /* recv/send said ENOTSOCK: use read/write */
    uint8_t want;        /* readiness: WEFT__WANT_* the mechanism was last told */
    uint8_t registered;  /* readiness: the mechanism watches this fd */
    uint8_t kind;     /* readiness: 0 not known yet, FD_STREAM (a SOCK_STREAM socket), FD_OTHER */
    uint8_t drained;  /* readiness: a short read emptied the input: until the mechanism says
                         readable, a recv parks without trying (saves an EAGAIN call) */
    uint8_t hup_seen; /* readiness: the mechanism reported end of stream or an error: a short
                         read no longer proves there is nothing to report */
} weft__fdslot;

enum { FD_STREAM = 1, FD_OTHER = 2 };

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
