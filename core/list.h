/* Intrusive doubly linked lists with a head/tail pair (no sentinel node, so
 * a list head is two pointers and the links live in caller-owned structs).
 * O(1) push, pop and remove; removal needs to know the list. */
#ifndef WEFT_LIST_H
#define WEFT_LIST_H

#include "weft/base.h"

#include <stddef.h>

/* The public headers' list head (weft/base.h), so a list embedded in a
 * public struct is this very type: no mirror, no cast. */

#define weft__container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline int weft__list_empty(const weft__list *l)
{
    return l->first == NULL;
}

static inline void weft__list_push(weft__list *l, weft__link *n)
{
    n->next = NULL;
    n->prev = l->last;
    if (l->last)
        l->last->next = n;
    else
        l->first = n;
    l->last = n;
}

static inline void weft__list_push_front(weft__list *l, weft__link *n)
{
    n->prev = NULL;
    n->next = l->first;
    if (l->first)
        l->first->prev = n;
    else
        l->last = n;
    l->first = n;
}

static inline void weft__list_remove(weft__list *l, weft__link *n)
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

static inline weft__link *weft__list_pop(weft__list *l)
{
    weft__link *n = l->first;
    if (n)
        weft__list_remove(l, n);
    return n;
}

/* Move every node of src to the end of dst; src ends empty. */
static inline void weft__list_splice(weft__list *dst, weft__list *src)
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
