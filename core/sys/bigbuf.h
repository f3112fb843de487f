/* Buffers that may grow large (the stream buffers): small ones come from
 * malloc, large ones (WEFT__BIGBUF_MIN bytes and more) straight from the
 * system in whole pages, so that freeing one gives its memory back at once.
 *
 * Why: glibc serves 64-128 KiB blocks from its heap once its dynamic mmap
 * threshold has risen, and keeps them when they are freed. After a burst
 * of large messages over 10,000 connections, echo_server held 0.9 GB of
 * freed stream buffers (bench/RESULTS.md, the soak with 64 KiB messages).
 *
 * The caller keeps each buffer's size and passes it back. */
#ifndef WEFT_BIGBUF_H
#define WEFT_BIGBUF_H

#include <stddef.h>

/* From this size on, a buffer is mapped from the system. */
#define WEFT__BIGBUF_MIN ((size_t)32 * 1024)

/* Resize buffer p (size bytes; NULL and 0 for none) to n bytes (n > 0),
 * keeping the first min(size, n) bytes. The new buffer, or NULL (p is
 * then unchanged and still owned by the caller). An allocation fault
 * site. */
void *weft__bigbuf_resize(void *p, size_t size, size_t n);

/* Free buffer p of size bytes (NULL is ignored). */
void weft__bigbuf_free(void *p, size_t size);

#endif
