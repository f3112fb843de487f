/* Private helpers shared by the net/ files. */
#ifndef WEFT_NET_INTERNAL_H
#define WEFT_NET_INTERNAL_H

#include "weft/net.h"

#include <errno.h>

/* Nonzero when the caller runs inside a task of loop. */
static inline int weft__in_task(weft_loop *loop)
{
    return loop && weft_task_current(loop) != NULL;
}

/* A valid-looking address: non-NULL, a length that fits, a known family. */
int weft__addr_ok(const weft_addr *a);

/* Open the process-wide spare descriptor weft_accept() sheds connections
 * with when out of descriptors (once; later calls do nothing). */
void weft__accept_reserve(void);

/* Take a connection already queued on the non-blocking listener lfd,
 * without waiting: its fd (tuned as weft_accept's are), -EAGAIN when none
 * is queued, or another accept error, which the caller leaves to
 * weft_accept() (it knows how to survive EMFILE and the rest). */
int weft__accept_queued(int lfd);

/* Mark a stream socket: non-blocking is set by the caller; TCP_NODELAY for
 * TCP families. */
void weft__tune_stream(int fd);

#endif
