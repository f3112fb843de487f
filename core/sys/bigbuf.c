/* Large buffers from the system's pages, small ones from malloc, the
 * per-loop cache of freed large ones, and receive pools (see bigbuf.h).
 * Crossing the threshold copies; a buffer grows only a few times in its
 * life (doubling), so the copy is not on a per-op path. */
#include "bigbuf.h"

#include "fault.h"

#include <stdint.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <sys/mman.h>
#endif

static int is_big(size_t size)
{
    return size >= WEFT__BIGBUF_MIN;
}

/* The cache's class of a buffer of size bytes, or -1 if not cached. */
static int size_class(size_t size)
{
    for (int i = 0; i < WEFT__BIGBUF_CLASSES; i++)
        if (size == WEFT__BIGBUF_MIN << i)
            return i;
    return -1;
}

static void *map_pages(size_t n)
{
#ifdef _WIN32
    return VirtualAlloc(NULL, n, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
#else
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#endif
}

static void unmap_pages(void *p, size_t n)
{
#ifdef _WIN32
    (void)n;
    VirtualFree(p, 0, MEM_RELEASE);
#else
    munmap(p, n);
#endif
}

static void *big_alloc(weft__bigbuf_cache *c, size_t n)
{
    int k = c ? size_class(n) : -1;
    if (k >= 0 && c->free[k]) {
        void *p = c->free[k];
        memcpy(&c->free[k], p, sizeof(void *));
        c->bytes -= n;
        return p;
    }
    return map_pages(n);
}

void *weft__bigbuf_resize(weft__bigbuf_cache *c, void *p, size_t size, size_t n)
{
    if (!is_big(n) && !is_big(size))
        return WEFT__REALLOC(p, n);
    if (WEFT__FAULT(NULL, -1, WEFT__FS_ALLOC, NULL))
        return NULL;
    void *q = is_big(n) ? big_alloc(c, n) : malloc(n);
    if (!q)
        return NULL;
    if (p)
        memcpy(q, p, size < n ? size : n);
    weft__bigbuf_free(c, p, size);
    return q;
}

void weft__bigbuf_free(weft__bigbuf_cache *c, void *p, size_t size)
{
    if (!p)
        return;
    if (!is_big(size)) {
        free(p);
        return;
    }
    int k = c ? size_class(size) : -1;
    if (k >= 0 && c->bytes + size <= WEFT__BIGBUF_CACHE_MAX) {
        memcpy(p, &c->free[k], sizeof(void *));
        c->free[k] = p;
        c->bytes += size;
        return;
    }
    unmap_pages(p, size);
}

void weft__bigbuf_cache_drain(weft__bigbuf_cache *c)
{
    for (int k = 0; k < WEFT__BIGBUF_CLASSES; k++) {
        while (c->free[k]) {
            void *p = c->free[k];
            memcpy(&c->free[k], p, sizeof(void *));
            unmap_pages(p, WEFT__BIGBUF_MIN << k);
        }
    }
    c->bytes = 0;
}

/* Huge pages only where they can be asked for; elsewhere plain pages. */
static int pool_is_huge(size_t n)
{
#ifdef MADV_HUGEPAGE
    return n >= WEFT__POOL_HUGE;
#else
    (void)n;
    return 0;
#endif
}

/* n rounded up to whole huge pages: what a huge pool keeps mapped. */
static size_t pool_huge_bytes(size_t n)
{
    return (n + WEFT__POOL_HUGE - 1) & ~(WEFT__POOL_HUGE - 1);
}

#ifdef MADV_HUGEPAGE
/* n bytes aligned to a huge page and advised for them: map one huge page
 * more, then cut the mapping down to an aligned run. */
static void *map_huge(size_t n)
{
    size_t keep = pool_huge_bytes(n);
    char *raw = map_pages(keep + WEFT__POOL_HUGE);
    if (!raw)
        return NULL;
    uintptr_t at = ((uintptr_t)raw + WEFT__POOL_HUGE - 1) & ~(uintptr_t)(WEFT__POOL_HUGE - 1);
    char *p = (char *)at;
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    munmap(p + keep, (size_t)(raw + WEFT__POOL_HUGE - p)); /* the rest, never empty */
    madvise(p, keep, MADV_HUGEPAGE);                       /* advice: without it, plain pages */
    return p;
}
#endif

void *weft__pool_pages_map(size_t n)
{
#ifdef MADV_HUGEPAGE
    if (pool_is_huge(n))
        return map_huge(n);
#endif
    return map_pages(n);
}

void weft__pool_pages_unmap(void *p, size_t n)
{
    if (p)
        unmap_pages(p, pool_is_huge(n) ? pool_huge_bytes(n) : n);
}
