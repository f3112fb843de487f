/* Private helpers shared by the net/ files, and the few spellings that
 * differ between POSIX sockets and Winsock. */
#ifndef WEFT_NET_INTERNAL_H
#define WEFT_NET_INTERNAL_H

#include "weft/net.h"
#include "list.h"
#include "sys.h"

#include <errno.h>

#ifdef _WIN32
#include <afunix.h>
#include <ws2tcpip.h>
/* A descriptor as the Winsock calls take it (see core/sys/sys.h). */
#define NET_SOCK(fd) weft__sock(fd)
/* Windows has no SIGPIPE, so no flag to suppress it; a non-blocking socket
 * needs no per-call flag either. */
#define NET_MSG_NOSIGNAL 0
#define NET_MSG_DONTWAIT 0
/* Unix-domain sockets: Windows 10 has some, wine none, and AcceptEx /
 * ConnectEx take none: weft refuses them on Windows. */
#define NET_HAVE_UNIX 0
#else
#include <sys/socket.h>
#include <sys/un.h>
#define NET_SOCK(fd) (fd)
#define NET_MSG_NOSIGNAL MSG_NOSIGNAL
#define NET_MSG_DONTWAIT MSG_DONTWAIT
#define NET_HAVE_UNIX 1
#endif

/* Nonzero when the caller runs inside a task of loop. */
static inline int weft__in_task(weft_loop *loop)
{
    return loop && weft_task_current(loop) != NULL;
}

/* setsockopt with an int value (Winsock takes a char pointer); 0 or a
 * negative errno. */
static inline int weft__setopt_int(int fd, int level, int name, int value)
{
    return setsockopt(NET_SOCK(fd), level, name, (const void *)&value, sizeof value) < 0
               ? weft__sock_error()
               : 0;
}

/* A server's reclaimable connections (weft_stream_set_reclaimable), the
 * one marked longest ago first. `wanted`: the acceptor holds a new
 * connection at the limit and found none to reclaim, so the next stream
 * marked is reclaimed at once. */
typedef struct weft__reclaim {
    weft__list list;
    int wanted;
} weft__reclaim;

/* Make s one of r's connections (a server's stream, before its handler). */
void weft__stream_attach_reclaim(weft_stream *s, weft__reclaim *r);

/* Reclaim the stream marked reclaimable longest ago: its waits, this one
 * and every later one, fail with -ETIMEDOUT. 1, or 0 when none is. */
int weft__reclaim_oldest(weft__reclaim *r);

/* A valid-looking address: non-NULL, a length that fits, a known family. */
int weft__addr_ok(const weft_addr *a);

/* Open the process-wide spare descriptor weft_accept() sheds connections
 * with when out of descriptors (once; later calls do nothing). Nothing on
 * Windows, which has no per-process descriptor limit of that kind. */
void weft__accept_reserve(void);

/* Take a connection already queued on the non-blocking listener lfd,
 * without waiting: its fd (tuned as weft_accept's are), -EAGAIN when none
 * is queued, or another accept error, which the caller leaves to
 * weft_accept() (it knows how to survive EMFILE and the rest). */
int weft__accept_queued(int lfd);

/* Mark a stream socket: non-blocking is set by the caller; TCP_NODELAY for
 * TCP families. */
void weft__tune_stream(int fd);

/* weft_start_server_fd on a listener the server does not own: closing the
 * server stops its accepting and leaves lfd open (and registered nowhere
 * by this loop). weft_serve_threads on Windows shares one listener among
 * its threads this way and closes it once they have all stopped. */
int weft__start_server_shared(weft_loop *loop, int lfd, weft_conn_handler handler, void *arg,
                              const weft_server_opts *opts, weft_server **out);

#endif
