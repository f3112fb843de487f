/* Large buffers from the system's pages, small ones from malloc (see
 * bigbuf.h). Crossing the threshold copies; a buffer grows only a few
 * times in its life (doubling), so the copy is not on a per-op path. */
#include "bigbuf.h"

#include "fault.h"

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

void *weft__bigbuf_resize(void *p, size_t size, size_t n)
{
    if (!is_big(n) && !is_big(size))
        return WEFT__REALLOC(p, n);
    if (WEFT__FAULT(NULL, -1, WEFT__FS_ALLOC, NULL))
        return NULL;
    void *q = is_big(n) ? map_pages(n) : malloc(n);
    if (!q)
        return NULL;
    if (p)
        memcpy(q, p, size < n ? size : n);
    weft__bigbuf_free(p, size);
    return q;
}

void weft__bigbuf_free(void *p, size_t size)
{
    if (!p)
        return;
    if (is_big(size))
        unmap_pages(p, size);
    else
        free(p);
}
