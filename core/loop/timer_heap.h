/* The loop's timers: an intrusive 4-ary min-heap ordered by (deadline,
 * scheduling order). The entries keep the deadline and order next to the
 * handle pointer, so sifting compares without touching the handles. Insert and cancel are O(log n);
 * the array grows by doubling (amortised, never per timer once reserved). */
#ifndef WEFT_TIMER_HEAP_H
#define WEFT_TIMER_HEAP_H

#include "weft/loop.h"

typedef struct weft__heap_entry {
    uint64_t when;
    uint64_t seq; /* a copy of h->seq_: ties are common and must not chase h */
    weft_handle *h;
} weft__heap_entry;

typedef struct weft__timer_heap {
    weft__heap_entry *v;
    uint32_t len, cap;
} weft__timer_heap;

/* Make room for cap entries. 0 or -ENOMEM. */
int weft__heap_reserve(weft__timer_heap *heap, uint32_t cap);
void weft__heap_free(weft__timer_heap *heap);
/* Add h, whose when_ and seq_ are set. 0 or -ENOMEM. */
int weft__heap_insert(weft__timer_heap *heap, weft_handle *h);
/* Remove h, which must be in the heap. */
void weft__heap_remove(weft__timer_heap *heap, weft_handle *h);

static inline weft_handle *weft__heap_min(const weft__timer_heap *heap)
{
    return heap->len ? heap->v[0].h : NULL;
}

#endif
