/* Servers (asyncio's start_server): an accept task that spawns a task per
 * connection, a connection limit (a semaphore the accept task takes before
 * each accept), and a graceful close. */
#include "sys/fault.h"
#include "net_internal.h"
#include "list.h"
#include "weft/compose.h"
#include "weft/sync.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#endif

#define DEFAULT_MAX_CONNECTIONS 10000

struct weft_server {
    weft_loop *loop;
    int lfd;
    weft_addr addr;
    weft_conn_handler handler;
    void *arg;
    weft_stream_opts sopts;
    weft_semaphore slots;
    weft_future *acceptor;
    weft_future *idle; /* while closing: done once no connection is live */
    weft__list conns;
    size_t live;
    int closing;
    int shared; /* lfd belongs to the caller (weft__start_server_shared) */
};

typedef struct conn {
    weft__link link;
    weft_server *srv;
    weft_stream *s;
    weft_future *task;
    int cancelled;
} conn;

static int conn_main(void *arg, intptr_t *result)
{
    (void)result;
    conn *c = arg;
    weft_server *srv = c->srv;
    srv->handler(c->s, srv->arg);
    if (!c->cancelled)
        weft_stream_flush(c->s);
    weft_stream_close(c->s);
    weft__list_remove(&srv->conns, &c->link);
    weft_future_unref(c->task);
    free(c);
    srv->live--;
    weft_semaphore_release(&srv->slots);
    if (srv->live == 0 && srv->idle && weft_future_state(srv->idle) == WEFT_FUTURE_PENDING)
        weft_future_set_result(srv->idle, 0);
    return 0;
}

/* Serve one accepted descriptor: a stream and a task. */
static void serve(weft_server *srv, int fd)
{
    weft_stream *s;
    if (weft_stream_new(srv->loop, fd, &srv->sopts, &s) != 0) {
        weft_semaphore_release(&srv->slots); /* fd is closed already */
        return;
    }
    conn *c = WEFT__CALLOC(1, sizeof *c);
    if (!c || weft_task_spawn(srv->loop, conn_main, c, &c->task) != 0) {
        free(c);
        weft_stream_close(s);
        weft_semaphore_release(&srv->slots);
        return;
    }
    c->srv = srv;
    c->s = s;
    weft__list_push(&srv->conns, &c->link);
    srv->live++;
}

/* A burst of connects (a benchmark client opening 512 at once) queues
 * them faster than one accept per loop turn takes them, and the last ones
 * wait for every turn before theirs. So after each accept, take what is
 * already queued, up to a batch, as libuv does. */
#define ACCEPT_BATCH 64

static void take_queued(weft_server *srv)
{
    for (int i = 0; i < ACCEPT_BATCH && weft_semaphore_try_acquire(&srv->slots) == 0; i++) {
        int fd = weft__accept_queued(srv->lfd);
        if (fd < 0) { /* none queued, or an error weft_accept() will meet */
            weft_semaphore_release(&srv->slots);
            return;
        }
        serve(srv, fd);
    }
}

static int acceptor(void *arg, intptr_t *result)
{
    (void)result;
    weft_server *srv = arg;
    for (;;) {
        int rc = weft_semaphore_acquire(&srv->slots);
        if (rc)
            return rc;
        int fd = weft_accept(srv->loop, srv->lfd, NULL);
        if (fd < 0) {
            weft_semaphore_release(&srv->slots);
            return fd; /* -ECANCELED from close, or the listener is broken */
        }
        serve(srv, fd);
        /* A listener shared by several loops (Windows' weft_serve_threads):
         * no batch, and the new connection's handler runs before this loop
         * accepts again, so a loop with work leaves the queue to the idle
         * ones (an accept completed at submit would otherwise return at
         * once, turn after turn, and one loop would take every connection). */
        if (!srv->shared)
            take_queued(srv);
        else if ((rc = weft_yield(srv->loop)) != 0)
            return rc;
    }
}

static int start_server(weft_loop *loop, int lfd, int shared, weft_conn_handler handler, void *arg,
                        const weft_server_opts *opts, weft_server **out)
{
    if (!loop || lfd < 0 || !handler || !out) {
        if (loop && lfd >= 0 && !shared)
            weft_close(loop, lfd);
        return -EINVAL;
    }
    weft_server *srv = calloc(1, sizeof *srv);
    int rc = srv ? 0 : -ENOMEM;
    if (!rc)
        rc = weft_sockname(lfd, &srv->addr);
    if (rc) {
        free(srv);
        if (!shared)
            weft_close(loop, lfd);
        return rc;
    }
    srv->loop = loop;
    srv->lfd = lfd;
    srv->shared = shared;
    srv->handler = handler;
    srv->arg = arg;
    if (opts)
        srv->sopts = opts->stream;
    size_t max = opts && opts->max_connections ? opts->max_connections : DEFAULT_MAX_CONNECTIONS;
    if (max > INT64_MAX)
        max = INT64_MAX;
    weft_semaphore_init(&srv->slots, loop, (int64_t)max);
    rc = weft_task_spawn(loop, acceptor, srv, &srv->acceptor);
    if (rc) {
        free(srv);
        if (!shared)
            weft_close(loop, lfd);
        return rc;
    }
    weft_task_set_name(srv->acceptor, "weft-server-accept");
    *out = srv;
    return 0;
}

int weft_start_server_fd(weft_loop *loop, int lfd, weft_conn_handler handler, void *arg,
                         const weft_server_opts *opts, weft_server **out)
{
    return start_server(loop, lfd, 0, handler, arg, opts, out);
}

int weft__start_server_shared(weft_loop *loop, int lfd, weft_conn_handler handler, void *arg,
                              const weft_server_opts *opts, weft_server **out)
{
    return start_server(loop, lfd, 1, handler, arg, opts, out);
}

int weft_start_server(weft_loop *loop, const weft_addr *addr, weft_conn_handler handler, void *arg,
                      const weft_server_opts *opts, weft_server **out)
{
    if (!loop || !addr || !handler || !out)
        return -EINVAL;
    int lfd = weft_listen(addr, opts ? &opts->listen : NULL);
    if (lfd < 0)
        return lfd;
    return weft_start_server_fd(loop, lfd, handler, arg, opts, out);
}

/* Remove the file of a Unix listener we bound (not an abstract name). */
static void unlink_socket_file(const weft_addr *a)
{
#if NET_HAVE_UNIX
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    if (a->ss.ss_family != AF_UNIX || a->len <= off + 1 || un->sun_path[0] == '\0')
        return;
    char path[sizeof un->sun_path + 1];
    size_t n = strnlen(un->sun_path, sizeof un->sun_path);
    memcpy(path, un->sun_path, n);
    path[n] = '\0';
    unlink(path);
#else
    (void)a; /* no Unix listeners here */
#endif
}

/* Await f to its end even if the caller is cancelled meanwhile (noted in
 * *cancelled; the cancel also reaches f, as weft_await does). */
static void await_end(weft_future *f, int *cancelled)
{
    while (weft_future_state(f) == WEFT_FUTURE_PENDING)
        if (weft_await(f, NULL) == -ECANCELED && weft_future_state(f) == WEFT_FUTURE_PENDING)
            *cancelled = 1;
}

/* Wait until no connection is live, for at most timeout_ns (-1: no limit). */
static int wait_idle(weft_server *srv, int64_t timeout_ns, int *cancelled)
{
    while (srv->live) {
        int rc = weft_future_new(srv->loop, &srv->idle);
        if (rc)
            return rc;
        rc = timeout_ns < 0 ? weft_await(srv->idle, NULL)
                            : weft_wait_for(srv->idle, timeout_ns, NULL);
        weft_future_unref(srv->idle);
        srv->idle = NULL;
        if (rc == -ECANCELED && srv->live)
            *cancelled = 1;
        if (rc == -ETIMEDOUT || *cancelled)
            return rc;
    }
    return 0;
}

int weft_server_close(weft_server *srv, int64_t grace_ns)
{
    if (!srv || srv->closing)
        return -EINVAL;
    if (!weft__in_task(srv->loop))
        return -EPERM;
    srv->closing = 1;
    int cancelled = 0;
    weft_future_cancel(srv->acceptor);
    await_end(srv->acceptor, &cancelled);
    weft_future_result(srv->acceptor, NULL); /* its -ECANCELED is expected */
    weft_future_unref(srv->acceptor);
    /* A shared listener stays open for the other loops accepting on it:
     * with the acceptor ended, this loop has no op on it. */
    if (!srv->shared && weft_close(srv->loop, srv->lfd) == -ECANCELED)
        cancelled = 1;
    if (!srv->shared)
        unlink_socket_file(&srv->addr);
    if (!cancelled && grace_ns != 0)
        wait_idle(srv, grace_ns, &cancelled);
    int forced = 0;
    for (weft__link *n = srv->conns.first; n; n = n->next) {
        conn *c = weft__container_of(n, conn, link);
        if (!c->cancelled) {
            c->cancelled = 1;
            weft_future_cancel(c->task);
            forced++;
        }
    }
    int again = 0;
    while (srv->live) {
        wait_idle(srv, -1, &again); /* the handlers are cancelled: this ends */
        if (again)
            cancelled = 1;
        again = 0;
    }
    free(srv);
    return cancelled ? -ECANCELED : forced;
}

int weft_server_addr(const weft_server *srv, weft_addr *out)
{
    if (!srv || !out)
        return -EINVAL;
    *out = srv->addr;
    return 0;
}

size_t weft_server_connections(const weft_server *srv)
{
    return srv ? srv->live : 0;
}
