/* Intrusive doubly linked lists with a head/tail pair (no sentinel node, so
 * a list head is two pointers and the links live in caller-owned structs).
 * O(1) push, pop and remove; removal needs to know the list. */
#ifndef WEFT_LIST_H
#define WEFT_LIST_H

#include "weft/base.h"

#include <stddef.h>

/* The public headers' list head (weft/base.h), so a list embedded in a
 * public struct is this very type: no mirror, no cast. */
typedef weft__list weft_list;

#define weft_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline int weft_list_empty(const weft_list *l)
{
    return l->first == NULL;
}

static inline void weft_list_push(weft_list *l, weft_link_ *n)
{
    n->next = NULL;
    n->prev = l->last;
    if (l->last)
        l->last->next = n;
    else
        l->first = n;
    l->last = n;
}

static inline void weft_list_remove(weft_list *l, weft_link_ *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->last = n->prev;
    n->next = n->prev = NULL;
}

static inline weft_link_ *weft_list_pop(weft_list *l)
{
    weft_link_ *n = l->first;
    if (n)
        weft_list_remove(l, n);
    return n;
}

/* Move every node of src to the end of dst; src ends empty. */
static inline void weft_list_splice(weft_list *dst, weft_list *src)
{
    if (!src->first)
        return;
    if (dst->last) {
        dst->last->next = src->first;
        src->first->prev = dst->last;
    } else {
        dst->first = src->first;
    }
    dst->last = src->last;
    src->first = src->last = NULL;
}

#endif
