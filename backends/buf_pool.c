/* The loop's receive buffers where the kernel does not keep them. */
#include "buf_pool.h"

#include <errno.h>
#include <stdlib.h>

int weft__buf_pool_setup(weft__buf_pool *p, unsigned count, unsigned size)
{
    if (p->bufs)
        return -EBUSY;
    p->bufs = malloc((size_t)count * size);
    p->free = malloc(count * sizeof *p->free);
    if (!p->bufs || !p->free) {
        weft__buf_pool_fini(p);
        return -ENOMEM;
    }
    p->count = p->nfree = count;
    p->size = size;
    for (unsigned i = 0; i < count; i++)
        p->free[i] = count - 1 - i;
    return 0;
}

void *weft__buf_pool_take(weft__buf_pool *p)
{
    return p->nfree ? p->bufs + (size_t)p->free[--p->nfree] * p->size : NULL;
}

void weft__buf_pool_give(weft__buf_pool *p, void *buf)
{
    p->free[p->nfree++] = (uint32_t)(((unsigned char *)buf - p->bufs) / p->size);
}

int weft__buf_pool_owned(const weft__buf_pool *p, const void *buf)
{
    const unsigned char *b = buf;
    return p->bufs && b >= p->bufs && b < p->bufs + (size_t)p->count * p->size &&
           (size_t)(b - p->bufs) % p->size == 0;
}

void weft__buf_pool_fini(weft__buf_pool *p)
{
    free(p->bufs);
    free(p->free);
    p->bufs = NULL;
    p->free = NULL;
}
