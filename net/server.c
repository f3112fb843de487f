/* Servers (asyncio's start_server): an accept task, a task per connection
 * once its peer first speaks (until then a poll op, no stack), a
 * connection limit (a semaphore the accept task takes for each
 * connection; at the limit a new connection reclaims the oldest silent or
 * reclaimable one, as nginx drains its reusable connections), and a
 * graceful close. */
#include "sys/fault.h"
#include "net_internal.h"
#include "list.h"
#include "stream_tls.h"
#include "weft/compose.h"
#include "weft/sync.h"
#include "weft/tls.h"

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
    weft_tls_ctx *tls;
    int64_t tls_timeout;
    size_t tls_failures;
    weft_semaphore slots;
    weft_future *acceptor;
    weft_future *idle; /* while closing: done once no connection is live */
    weft__list conns;
    size_t live;
    int closing;
    int shared;              /* lfd belongs to the caller (weft__start_server_shared) */
    int speak_first;         /* opts: the handler starts at accept */
    int64_t idle_timeout_ns; /* opts: how long a connection may wait silent for its handler */
    int reclaim_silent;      /* opts: silent connections give way at the limit */
    weft__reclaim rec;       /* the handlers' reclaimable streams */
};

/* A connection is in WAIT (a POLL_IN op until the peer first speaks: no
 * task, no stack, no stream), then in TASK (the handler's task), unless
 * the server's close or the idle timeout ends the wait first (the fd is
 * then closed with no handler). It is live from accept to its end. */
enum { CONN_WAIT, CONN_TASK };

typedef struct conn {
    weft__link link;
    weft_server *srv;
    int fd;
    int state; /* CONN_* */
    int cancelled;
    int reclaimed; /* WAIT: ended at the limit; its poll closes it without a handler */
    int timed_out; /* WAIT: its first bytes did not come in time */
    weft_stream *s;
    weft_future *task;
    weft_op op;          /* WAIT: the poll */
    weft_handle timeout; /* WAIT with an idle timeout */
} conn;

/* A connection has ended: free it, give back its slot, wake a closer. */
static void conn_gone(conn *c)
{
    weft_server *srv = c->srv;
    weft__list_remove(&srv->conns, &c->link);
    free(c);
    srv->live--;
    srv->rec.wanted = 0; /* the slot goes to the waiting acceptor: reclaim none */
    weft_semaphore_release(&srv->slots);
    if (srv->live == 0 && srv->idle && weft_future_state(srv->idle) == WEFT_FUTURE_PENDING)
        weft_future_set_result(srv->idle, 0);
}

static int conn_main(void *arg, intptr_t *result)
{
    (void)result;
    conn *c = arg;
    weft_server *srv = c->srv;
    /* TLS: the handshake first; the handler sees only a secured stream. */
    int hs = srv->tls ? weft__server_tls_handshake(c->s, srv->tls, srv->tls_timeout) : 0;
    if (hs == 0)
        srv->handler(c->s, srv->arg);
    else if (hs != -ECANCELED) /* not a failure: the server is closing */
        srv->tls_failures++;
    if (!c->cancelled && weft_stream_tls_error(c->s) && !weft_stream_tls_error(c->s)[0])
        weft_stream_write_eof(c->s); /* TLS: close_notify, then the flush */
    else if (!c->cancelled)
        weft_stream_flush(c->s);
    weft_stream_close(c->s);
    weft_future_unref(c->task);
    conn_gone(c);
    return 0;
}

/* End a waiting connection without its handler (its poll has completed):
 * close the fd as a stream would, at once, from this callback. */
static void conn_close_waiting(conn *c)
{
    weft_loop_forget_fd(c->srv->loop, c->fd);
    weft__sock_close(c->fd);
    conn_gone(c);
}

/* The peer spoke (or ended, or failed: the handler's first read says
 * which): now the stream and the task. Cancelled (server close, idle
 * timeout): close without the handler. */
static void conn_readable(weft_op *op)
{
    conn *c = op->data;
    weft_server *srv = c->srv;
    if (weft_handle_pending(&c->timeout))
        weft_handle_cancel(srv->loop, &c->timeout);
    if (op->result == -ECANCELED || srv->closing || c->reclaimed) {
        if (c->timed_out && srv->tls)
            srv->tls_failures++; /* its handshake never began */
        conn_close_waiting(c);
        return;
    }
    int fd = c->fd;
    c->fd = -1;
    if (weft_stream_new(srv->loop, fd, &srv->sopts, &c->s) != 0) {
        conn_gone(c); /* the stream closed fd */
        return;
    }
    weft__stream_attach_reclaim(c->s, &srv->rec);
    if (weft_task_spawn(srv->loop, conn_main, c, &c->task) != 0) {
        weft_stream_close(c->s);
        conn_gone(c);
        return;
    }
    c->state = CONN_TASK;
}

static void conn_timed_out(void *arg)
{
    conn *c = arg;
    c->timed_out = 1;
    weft_op_cancel(c->srv->loop, &c->op); /* conn_readable sees -ECANCELED */
}

/* How long a connection may wait for its first bytes: the idle timeout,
 * and on a TLS server the handshake's too (it begins with the peer's
 * ClientHello, so a silent peer is a handshake that timed out). 0: no limit. */
static int64_t first_wait_ns(const weft_server *srv)
{
    int64_t t = srv->idle_timeout_ns > 0 ? srv->idle_timeout_ns : 0;
    if (srv->tls && srv->tls_timeout >= 0) {
        int64_t hs = srv->tls_timeout ? srv->tls_timeout : WEFT__TLS_SERVER_HANDSHAKE_NS;
        if (!t || hs < t)
            t = hs;
    }
    return t;
}

/* Start serving fd without a task: wait for its first readability (and
 * for at most first_wait_ns). 0, or an error with fd still the
 * caller's. */
static int conn_wait_first_read(weft_server *srv, conn *c, int fd)
{
    c->srv = srv;
    c->fd = fd;
    c->state = CONN_WAIT;
    weft_op_prep_poll_in(&c->op, fd, conn_readable, c);
    int rc = weft_op_submit(srv->loop, &c->op);
    int64_t limit = first_wait_ns(srv);
    if (rc == 0 && limit > 0 &&
        weft_call_later(srv->loop, &c->timeout, limit, conn_timed_out, c) != 0)
        weft_op_cancel(srv->loop, &c->op); /* no timer, no unbounded wait */
    return rc;
}

/* Serve one accepted descriptor: a connection that waits for its peer
 * (a task at once when the handler speaks first). */
static void serve(weft_server *srv, int fd)
{
    conn *c = WEFT__CALLOC(1, sizeof *c);
    int rc = c ? 0 : -ENOMEM;
    if (!rc && srv->speak_first) {
        rc = weft_stream_new(srv->loop, fd, &srv->sopts, &c->s);
        fd = -1; /* the stream owns it, also on failure */
        if (!rc) {
            weft__stream_attach_reclaim(c->s, &srv->rec);
            c->srv = srv;
            c->state = CONN_TASK;
            if ((rc = weft_task_spawn(srv->loop, conn_main, c, &c->task)) != 0)
                weft_stream_close(c->s); /* the acceptor is a task */
        }
    } else if (!rc) {
        rc = conn_wait_first_read(srv, c, fd);
    }
    if (rc) {
        free(c);
        if (fd >= 0)
            weft_close(srv->loop, fd);
        weft_semaphore_release(&srv->slots);
        return;
    }
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

/* At the limit, end the connection that has waited silent longest (no
 * byte since accept: no request, no handler); 1, or 0 when none waits. */
static int reclaim_waiting(weft_server *srv)
{
    if (!srv->reclaim_silent)
        return 0;
    for (weft__link *n = srv->conns.first; n; n = n->next) { /* oldest first */
        conn *c = weft__container_of(n, conn, link);
        if (c->state == CONN_WAIT && !c->reclaimed) {
            c->reclaimed = 1; /* its poll's callback closes it, cancelled or not */
            weft_op_cancel(srv->loop, &c->op);
            return 1;
        }
    }
    return 0;
}

/* A slot for the connection just accepted: a free one, or at the limit
 * the one the oldest silent connection frees (opts.reclaim_silent), else the oldest
 * reclaimable one (if none is reclaimable, the next one marked; or any
 * that ends). Accepting before taking the slot is what lets idle
 * connections give way to a waiting one (nginx accepts, then drains); it
 * holds one descriptor over the limit. 0 or -ECANCELED. */
static int take_slot(weft_server *srv)
{
    if (weft_semaphore_try_acquire(&srv->slots) == 0)
        return 0;
    if (!reclaim_waiting(srv))
        srv->rec.wanted = !weft__reclaim_oldest(&srv->rec);
    int rc = weft_semaphore_acquire(&srv->slots);
    srv->rec.wanted = 0;
    return rc;
}

static int acceptor(void *arg, intptr_t *result)
{
    (void)result;
    weft_server *srv = arg;
    for (;;) {
        int fd = weft_accept(srv->loop, srv->lfd, NULL);
        if (fd < 0)
            return fd; /* -ECANCELED from close, or the listener is broken */
        int rc = take_slot(srv);
        if (rc) {
            weft__sock_close(fd);
            return rc;
        }
        serve(srv, fd);
        /* A listener shared by several loops (Windows' weft_serve_threads):
         * no batch, and this loop yields (its ready work runs: handlers,
         * first polls) before it accepts again, so a loop with work leaves
         * the queue to the idle ones (an accept completed at submit would
         * otherwise return at once, turn after turn, and one loop would
         * take every connection). */
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
    if (opts) {
        srv->sopts = opts->stream;
        srv->speak_first = opts->speak_first;
        srv->idle_timeout_ns = opts->idle_timeout_ns;
        srv->reclaim_silent = opts->reclaim_silent;
        srv->tls = opts->tls;
        srv->tls_timeout = opts->tls_handshake_timeout_ns;
    }
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
    /* A connection still waiting for its first bytes has no request under
     * way: it ends now, without its handler (not counted as forced). */
    for (weft__link *n = srv->conns.first; n; n = n->next) {
        conn *c = weft__container_of(n, conn, link);
        if (c->state == CONN_WAIT)
            weft_op_cancel(srv->loop, &c->op); /* or done already: it sees closing */
    }
    if (!cancelled && grace_ns != 0)
        wait_idle(srv, grace_ns, &cancelled);
    /* A handler's task spawned this turn (its first poll just completed)
     * has not started: cancelled now, it would never run its body, so
     * never end its connection. Let it start first (the ready list is
     * FIFO); a poll completing meanwhile sees closing and spawns none. */
    if (weft_yield(srv->loop) == -ECANCELED)
        cancelled = 1;
    int forced = 0;
    for (weft__link *n = srv->conns.first; n; n = n->next) {
        conn *c = weft__container_of(n, conn, link);
        if (c->state == CONN_TASK && !c->cancelled) {
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

size_t weft_server_tls_failures(const weft_server *srv)
{
    return srv ? srv->tls_failures : 0;
}
