/* Buffers that may grow large (the stream buffers): small ones come from
 * malloc, large ones (WEFT__BIGBUF_MIN bytes and more) straight from the
 * system in whole pages, so that freeing one can give its memory back.
 *
 * Why: glibc serves 64-128 KiB blocks from its heap once its dynamic mmap
 * threshold has risen, and keeps them when they are freed. After a burst
 * of large messages over 10,000 connections, echo_server held 0.9 GB of
 * freed stream buffers (bench/RESULTS.md, the soak with 64 KiB messages).
 *
 * Mapping fresh pages costs a page fault per page touched, which the
 * heap's reused blocks did not: a cache (one per loop, since a loop is
 * owned by one thread) keeps up to WEFT__BIGBUF_CACHE_MAX bytes of freed
 * buffers of the power-of-two sizes streams grow to, for the next
 * connection. Beyond it, freed buffers go back to the system.
 *
 * The caller keeps each buffer's size and passes it back.
 *
 * Also here: the pages of the loop's multishot receive buffer pools
 * (weft__pool_pages_map), which come from the system in the same way. */
#ifndef WEFT_BIGBUF_H
#define WEFT_BIGBUF_H

#include <stddef.h>

/* From this size on, a buffer is mapped from the system. */
#define WEFT__BIGBUF_MIN ((size_t)32 * 1024)
/* Sizes cached: WEFT__BIGBUF_MIN << 0 .. << (WEFT__BIGBUF_CLASSES - 1). */
#define WEFT__BIGBUF_CLASSES 8
/* Bytes a cache keeps at most. */
#define WEFT__BIGBUF_CACHE_MAX ((size_t)8 * 1024 * 1024)

typedef struct weft__bigbuf_cache {
    void *free[WEFT__BIGBUF_CLASSES]; /* per size: freed buffers, linked through their first word */
    size_t bytes;                     /* kept in all */
} weft__bigbuf_cache;

/* Resize buffer p (size bytes; NULL for none, size then unused) to n bytes (n > 0),
 * keeping the first min(size, n) bytes. Large buffers are taken from and
 * given back to cache c (NULL: none). The new buffer, or NULL (p is then
 * unchanged and still owned by the caller). An allocation fault site. */
void *weft__bigbuf_resize(weft__bigbuf_cache *c, void *p, size_t size, size_t n);

/* Free buffer p of size bytes (NULL is ignored) into cache c (NULL: none)
 * or back to the system. */
void weft__bigbuf_free(weft__bigbuf_cache *c, void *p, size_t size);

/* Give every buffer cache c keeps back to the system. */
void weft__bigbuf_cache_drain(weft__bigbuf_cache *c);

/* From this size on, a receive buffer pool is aligned to and advised for
 * transparent huge pages, where the system has them. */
#define WEFT__POOL_HUGE ((size_t)2 * 1024 * 1024)

/* Memory for a loop's receive buffer pool, n bytes (n > 0), in whole pages
 * from the system. Where the system has transparent huge pages (Linux's
 * MADV_HUGEPAGE), a pool of WEFT__POOL_HUGE bytes or more is aligned to
 * them and advised: the kernel copies every received byte into the pool,
 * and with 4 KiB pages those copies miss the TLB (bench/RESULTS.md,
 * issue 17, "huge pages": 13-17 % less kernel time per 64 KiB message).
 * NULL when out of memory. */
void *weft__pool_pages_map(size_t n);

/* Give back pool memory p of n bytes from weft__pool_pages_map(). */
void weft__pool_pages_unmap(void *p, size_t n);

/* The cache of a loop (defined in core/loop/loop.c; loop thread only). */
struct weft_loop;
weft__bigbuf_cache *weft__loop_bigbufs(struct weft_loop *loop);

#endif
