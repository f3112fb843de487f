/* The loop's receive buffers for multishot recv (weft_loop_buffers_setup)
 * where the kernel does not keep them: the readiness emulation and IOCP.
 * One allocation of count x size bytes. Receives are packed: each goes into
 * the free part of the buffer being filled (room, then commit), so a short
 * message takes its length, not a buffer. A buffer counts the chunks it
 * handed out and is free again when the last comes back. */
#ifndef WEFT_BUF_POOL_H
#define WEFT_BUF_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct weft__buf_pool {
    unsigned char *bufs; /* NULL until set up */
    uint32_t *free;      /* a stack of free buffer indexes */
    uint32_t *refs;      /* per buffer: chunks handed out, not given back */
    unsigned count, size, nfree;
    uint32_t cur;     /* the buffer being filled, or UINT32_MAX */
    unsigned cur_off; /* where its free part starts */
} weft__buf_pool;

/* Allocate count buffers of size bytes. 0, -EBUSY (already set up), -ENOMEM. */
int weft__buf_pool_setup(weft__buf_pool *p, unsigned count, unsigned size);
/* The free part of the buffer being filled (a fresh one when there is
 * none), its length in *room; NULL when every buffer is out. */
void *weft__buf_pool_room(weft__buf_pool *p, size_t *room);
/* The first n bytes of the room (1 <= n <= room) are now a chunk handed out. */
void weft__buf_pool_commit(weft__buf_pool *p, size_t n);
/* Give back a chunk: a pointer into it, from room or the commit before.
 * Returns 1 when that freed a buffer, 0 otherwise: more chunks of it are
 * out, none was (a second give is ignored), or chunk points into no buffer
 * of the pool. */
int weft__buf_pool_give(weft__buf_pool *p, const void *chunk);
/* Free the buffers; the pool can be set up again. */
void weft__buf_pool_fini(weft__buf_pool *p);

#endif
