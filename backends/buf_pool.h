/* The loop's receive buffers for multishot recv (weft_loop_buffers_setup)
 * where the kernel does not keep them: the readiness emulation and IOCP.
 * One allocation of count x size bytes and a stack of free indexes. */
#ifndef WEFT_BUF_POOL_H
#define WEFT_BUF_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct weft__buf_pool {
    unsigned char *bufs; /* NULL until set up */
    uint32_t *free;      /* a stack of free buffer indexes */
    unsigned count, size, nfree;
} weft__buf_pool;

/* Allocate count buffers of size bytes. 0, -EBUSY (already set up), -ENOMEM. */
int weft__buf_pool_setup(weft__buf_pool *p, unsigned count, unsigned size);
/* A free buffer, or NULL when every one is out. */
void *weft__buf_pool_take(weft__buf_pool *p);
/* Give back a buffer weft__buf_pool_owned() accepted. */
void weft__buf_pool_give(weft__buf_pool *p, void *buf);
/* Whether buf is the start of one of the pool's buffers. */
int weft__buf_pool_owned(const weft__buf_pool *p, const void *buf);
/* Free the buffers; the pool can be set up again. */
void weft__buf_pool_fini(weft__buf_pool *p);

#endif
