/* 4-ary min-heap of timer handles; see timer_heap.h. */
#include "timer_heap.h"

#include <errno.h>
#include <stdlib.h>

#define ARITY 4

static inline int before(const weft__heap_entry *a, const weft__heap_entry *b)
{
    if (a->when != b->when)
        return a->when < b->when;
    return a->seq < b->seq; /* equal deadlines: scheduling order */
}

static inline void place(weft__timer_heap *heap, uint32_t i, weft__heap_entry e)
{
    heap->v[i] = e;
    e.h->heap_index_ = i;
}

static void sift_up(weft__timer_heap *heap, uint32_t i, weft__heap_entry e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;
        if (!before(&e, &heap->v[parent]))
            break;
        place(heap, i, heap->v[parent]);
        i = parent;
    }
    place(heap, i, e);
}

static void sift_down(weft__timer_heap *heap, uint32_t i, weft__heap_entry e)
{
    uint32_t len = heap->len;
    for (;;) {
        uint32_t first = i * ARITY + 1;
        if (first >= len)
            break;
        uint32_t end = first + ARITY < len ? first + ARITY : len;
        uint32_t best = first;
        for (uint32_t c = first + 1; c < end; c++)
            if (before(&heap->v[c], &heap->v[best]))
                best = c;
        if (!before(&heap->v[best], &e))
            break;
        place(heap, i, heap->v[best]);
        i = best;
    }
    place(heap, i, e);
}

int weft__heap_reserve(weft__timer_heap *heap, uint32_t cap)
{
    if (cap <= heap->cap)
        return 0;
    if (cap > UINT32_MAX / 2)
        return -ENOMEM;
    weft__heap_entry *v = realloc(heap->v, (size_t)cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    heap->v = v;
    heap->cap = cap;
    return 0;
}

void weft__heap_free(weft__timer_heap *heap)
{
    free(heap->v);
    heap->v = NULL;
    heap->len = heap->cap = 0;
}

int weft__heap_insert(weft__timer_heap *heap, weft_handle *h)
{
    if (heap->len == heap->cap) {
        int rc = weft__heap_reserve(heap, heap->cap ? heap->cap * 2 : 64);
        if (rc)
            return rc;
    }
    weft__heap_entry e = {h->when_, h->seq_, h};
    sift_up(heap, heap->len++, e);
    return 0;
}

void weft__heap_remove(weft__timer_heap *heap, weft_handle *h)
{
    uint32_t i = h->heap_index_;
    weft__heap_entry last = heap->v[--heap->len];
    if (i == heap->len)
        return;
    /* Put the last entry in the hole and restore order in whichever
     * direction it is out of place. */
    if (i > 0 && before(&last, &heap->v[(i - 1) / ARITY]))
        sift_up(heap, i, last);
    else
        sift_down(heap, i, last);
}
