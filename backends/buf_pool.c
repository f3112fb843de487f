/* The loop's receive buffers where the kernel does not keep them. */
#include "buf_pool.h"
#include "sys/bigbuf.h"

#include <errno.h>
#include <stdlib.h>

#define NONE UINT32_MAX

int weft__buf_pool_setup(weft__buf_pool *p, unsigned count, unsigned size)
{
    if (p->bufs)
        return -EBUSY;
    p->bufs = weft__pool_pages_map((size_t)count * size);
    p->free = malloc(count * sizeof *p->free);
    p->refs = calloc(count, sizeof *p->refs);
    if (!p->bufs || !p->free || !p->refs) {
        p->count = count;
        p->size = size;
        weft__buf_pool_fini(p);
        return -ENOMEM;
    }
    p->count = p->nfree = count;
    p->size = size;
    p->cur = NONE;
    for (unsigned i = 0; i < count; i++)
        p->free[i] = count - 1 - i;
    return 0;
}

void *weft__buf_pool_room(weft__buf_pool *p, size_t *room)
{
    if (p->cur == NONE) {
        if (!p->nfree)
            return NULL;
        p->cur = p->free[--p->nfree];
        p->cur_off = 0;
    }
    *room = p->size - p->cur_off;
    return p->bufs + (size_t)p->cur * p->size + p->cur_off;
}

void weft__buf_pool_commit(weft__buf_pool *p, size_t n)
{
    p->refs[p->cur]++;
    p->cur_off += (unsigned)n;
    if (p->cur_off == p->size)
        p->cur = NONE; /* full: free again when its chunks are back */
}

int weft__buf_pool_give(weft__buf_pool *p, const void *chunk)
{
    const unsigned char *c = chunk;
    if (!p->bufs || c < p->bufs || c >= p->bufs + (size_t)p->count * p->size)
        return 0;
    uint32_t i = (uint32_t)((size_t)(c - p->bufs) / p->size);
    if (!p->refs[i] || --p->refs[i])
        return 0;
    if (i == p->cur) {
        p->cur_off = 0; /* still being filled, and empty now: fill it from the start */
        return 0;
    }
    p->free[p->nfree++] = i;
    return 1;
}

void weft__buf_pool_fini(weft__buf_pool *p)
{
    weft__pool_pages_unmap(p->bufs, (size_t)p->count * p->size);
    free(p->free);
    free(p->refs);
    p->bufs = NULL;
    p->free = NULL;
    p->refs = NULL;
}
