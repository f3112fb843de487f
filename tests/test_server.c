/* Loop-level suite: servers (start_server, a task per connection, the
 * connection limit, graceful close with live clients: deadline, then
 * cancel), open_connection, and thread-per-core serving. Runs once per
 * backend (WEFT_BACKEND). */
#include "net_common.h"

#include <stdatomic.h>
#include <stdio.h>
#ifndef _WIN32
#include <unistd.h>
#endif

TestSuite(server, .timeout = 60);

typedef struct {
    weft_stream *s;
    const unsigned char *p;
    size_t n;
    int rc;
} writer;

static int writer_task(void *arg, intptr_t *result)
{
    (void)result;
    writer *w = arg;
    int64_t r = weft_stream_write(w->s, w->p, w->n);
    w->rc = r == (int64_t)w->n ? weft_stream_write_eof(w->s) : (int)r;
    return 0;
}

/* Echo one message of n bytes over a fresh connection (task only);
 * 1 when it came back intact. */
static int echo_once(weft_loop *loop, const weft_addr *addr, size_t n)
{
    weft_stream *s;
    int rc = weft_open_connection(loop, addr, NULL, 5000 * MS, &s);
    if (rc)
        return 0;
    unsigned char *out = malloc(n), *in = malloc(n);
    fill_pattern(out, n);
    /* Write from a task of its own while this one reads: an echo of more
     * than the socket buffers hold needs both at once. */
    writer w = {s, out, n, -1};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(loop, writer_task, &w, &f), 0);
    int ok = weft_stream_readexactly(s, in, n) == (int64_t)n && check_pattern(in, n);
    char extra;
    ok = ok && weft_stream_read(s, &extra, 1) == 0;
    weft_await(f, NULL);
    weft_future_unref(f);
    ok = ok && w.rc == 0;
    weft_stream_close(s);
    free(out);
    free(in);
    return ok;
}

typedef struct {
    weft_loop *loop;
    weft_server *srv;
    weft_addr addr;
    atomic_int served;
    int ok, failed, forced;
} srv_ctx;

static void start(srv_ctx *c, const char *where, const weft_server_opts *opts)
{
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, where), 0);
    int rc = weft_start_server(c->loop, &a, test_echo_handler, &c->served, opts, &c->srv);
    cr_assert_eq(rc, 0, "start_server: %s", weft_strerror(rc));
    cr_assert_eq(weft_server_addr(c->srv, &c->addr), 0);
}

static int sizes_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    const size_t sizes[] = {1, 4096, 100000, 1 << 20, 16 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        cr_assert(echo_once(c->loop, &c->addr, sizes[i]), "size %llu",
                  (unsigned long long)sizes[i]);
    cr_assert_eq(weft_server_close(c->srv, 1000 * MS), 0);
    return 0;
}

Test(server, echo_1_byte_to_16_mib)
{
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    start(&c, "127.0.0.1:0", NULL);
    cr_assert_neq(weft_addr_port(&c.addr), 0);
    cr_assert_eq(run_task(loop, sizes_main, &c), 0);
    cr_assert_eq(atomic_load(&c.served), 5);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------ */

#define NCLIENTS 1000

static int many_client(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    if (echo_once(c->loop, &c->addr, 200))
        c->ok++;
    else
        c->failed++;
    return 0;
}

static int many_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    static weft_future *f[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        cr_assert_eq(weft_task_spawn(c->loop, many_client, c, &f[i]), 0);
    for (int i = 0; i < NCLIENTS; i++) {
        weft_await(f[i], NULL);
        weft_future_unref(f[i]);
    }
    cr_assert_eq(weft_server_close(c->srv, 1000 * MS), 0);
    return 0;
}

Test(server, thousand_concurrent_clients)
{
    raise_nofile();
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    weft_server_opts o = {.listen.backlog = 4096};
    start(&c, "127.0.0.1:0", &o);
    cr_assert_eq(run_task(loop, many_main, &c), 0);
    cr_assert_eq(c.failed, 0);
    cr_assert_eq(c.ok, NCLIENTS);
    cr_assert_eq(atomic_load(&c.served), NCLIENTS);
    test_loop_free(loop);
}

/* A burst of connections already queued is taken in a few loop turns,
 * not one turn each (the last of 512 wrk connections used to wait ~15 ms),
 * and the connection limit still holds while taking them. */
static void queue_connections(const weft_addr *addr, int n, int *fds)
{
    for (int i = 0; i < n; i++) {
        fds[i] = net_raw_socket(addr->ss.ss_family, SOCK_STREAM);
        cr_assert_geq(fds[i], 0);
        /* Blocking: the kernel completes it into the listen queue. */
        cr_assert_eq(net_connect(fds[i], addr), 0, "connect: %s", weft_strerror(-net_errno()));
    }
}

static int turns_to_accept(weft_loop *loop, weft_server *srv, size_t want)
{
    int turns = 0;
    while (weft_server_connections(srv) < want && turns < 1000) {
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
        turns++;
    }
    return turns;
}

enum { BURST = 200 };

static int close_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    cr_assert_geq(weft_server_close(c->srv, 0), 0);
    return 0;
}

Test(server, a_queued_burst_is_accepted_in_a_few_turns)
{
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    start(&c, "127.0.0.1:0", NULL);
    int fds[BURST];
    queue_connections(&c.addr, BURST, fds);
    int turns = turns_to_accept(loop, c.srv, BURST);
    cr_assert_eq(weft_server_connections(c.srv), BURST);
    cr_assert_leq(turns, 20, "%d loop turns for %d queued connections", turns, BURST);
    for (int i = 0; i < BURST; i++)
        net_close(fds[i]);
    cr_assert_eq(run_task(loop, close_main, &c), 0);
    test_loop_free(loop);
}

Test(server, a_queued_burst_respects_the_limit)
{
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    weft_server_opts o = {.max_connections = 5};
    start(&c, "127.0.0.1:0", &o);
    int fds[20];
    queue_connections(&c.addr, 20, fds);
    turns_to_accept(loop, c.srv, 5);
    for (int i = 0; i < 10; i++)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    cr_assert_eq(weft_server_connections(c.srv), 5);
    for (int i = 0; i < 20; i++)
        net_close(fds[i]);
    cr_assert_eq(run_task(loop, close_main, &c), 0);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------ */
/* connection limit                                                    */

static int limit_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    weft_stream *s[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_open_connection(c->loop, &c->addr, NULL, 1000 * MS, &s[i]), 0);
    weft_sleep(c->loop, 20 * MS);
    /* Two are served, the third waits in the listen queue. */
    cr_assert_eq(weft_server_connections(c->srv), 2);
    char b[2];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_stream_write(s[i], "x", 1), 1);
    cr_assert_eq(weft_stream_readexactly(s[0], b, 1), 1);
    cr_assert_eq(weft_stream_readexactly(s[1], b, 1), 1);
    weft_stream_close(s[0]);
    /* A slot frees: the third is served now. */
    cr_assert_eq(weft_stream_readexactly(s[2], b, 1), 1);
    weft_stream_close(s[1]);
    weft_stream_close(s[2]);
    weft_sleep(c->loop, 10 * MS);
    cr_assert_eq(weft_server_connections(c->srv), 0);
    cr_assert_eq(weft_server_close(c->srv, 0), 0);
    return 0;
}

Test(server, connection_limit)
{
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    weft_server_opts o = {.max_connections = 2};
    start(&c, "127.0.0.1:0", &o);
    cr_assert_eq(run_task(loop, limit_main, &c), 0);
    test_loop_free(loop);
}

/* reclaim_silent: at the limit, the connection silent longest since
 * accept is closed for the new one; a connection that spoke stays. */
static int silent_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    weft_stream *spoke, *silent, *third;
    char b[1];
    cr_assert_eq(weft_open_connection(c->loop, &c->addr, NULL, 1000 * MS, &spoke), 0);
    cr_assert_eq(weft_stream_write(spoke, "x", 1), 1);
    cr_assert_eq(weft_stream_readexactly(spoke, b, 1), 1);
    cr_assert_eq(weft_open_connection(c->loop, &c->addr, NULL, 1000 * MS, &silent), 0);
    weft_sleep(c->loop, 20 * MS);
    cr_assert_eq(weft_server_connections(c->srv), 2);
    /* The third takes the silent one's slot, though that one is younger. */
    cr_assert_eq(weft_open_connection(c->loop, &c->addr, NULL, 1000 * MS, &third), 0);
    cr_assert_eq(weft_stream_write(third, "y", 1), 1);
    weft_stream_set_deadline(third, 5000 * MS);
    cr_assert_eq(weft_stream_readexactly(third, b, 1), 1, "the third was not served");
    cr_assert_eq(b[0], 'y');
    weft_stream_set_deadline(silent, 5000 * MS);
    int64_t n = weft_stream_read(silent, b, 1);
    cr_assert(n == 0 || n == -ECONNRESET, "the silent connection was not closed: %lld",
              (long long)n);
    cr_assert_eq(weft_stream_write(spoke, "z", 1), 1);
    cr_assert_eq(weft_stream_readexactly(spoke, b, 1), 1, "the one that spoke was closed");
    weft_stream_close(spoke);
    weft_stream_close(silent);
    weft_stream_close(third);
    cr_assert_geq(weft_server_close(c->srv, 1000 * MS), 0);
    return 0;
}

Test(server, reclaim_silent_closes_the_silent_connection_at_the_limit)
{
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    weft_server_opts o = {.max_connections = 2, .reclaim_silent = 1};
    start(&c, "127.0.0.1:0", &o);
    cr_assert_eq(run_task(loop, silent_main, &c), 0);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------ */
/* reclaiming idle connections at the limit                            */

/* Each byte read is a command, echoed once done: 'r' marks the connection
 * reclaimable, anything else busy. Counts the handlers whose read timed
 * out (reclaimed: they have no timeout of their own). */
static int reclaim_handler(weft_stream *s, void *arg)
{
    int *timedout = arg;
    char b;
    int64_t n;
    while ((n = weft_stream_read(s, &b, 1)) == 1) {
        cr_assert_eq(weft_stream_set_reclaimable(s, b == 'r'), 0);
        if (weft_stream_write(s, &b, 1) != 1)
            break;
    }
    if (n == -ETIMEDOUT)
        (*timedout)++;
    return 0;
}

typedef struct {
    weft_loop *loop;
    weft_server *srv;
    weft_addr addr;
    int timedout;
} reclaim_ctx;

/* Send command c on s and wait for its echo (5 s at most): 1 when it came. */
static int command(reclaim_ctx *c, weft_stream *s, char cmd)
{
    char b = 0;
    if (weft_stream_write(s, &cmd, 1) != 1)
        return 0;
    weft_stream_set_deadline(s, 5000 * MS);
    int ok = weft_stream_readexactly(s, &b, 1) == 1 && b == cmd;
    weft_stream_set_deadline(s, -1);
    (void)c;
    return ok;
}

static weft_stream *dial(reclaim_ctx *c)
{
    weft_stream *s;
    int rc = weft_open_connection(c->loop, &c->addr, NULL, 1000 * MS, &s);
    cr_assert_eq(rc, 0, "connect: %s", weft_strerror(rc));
    return s;
}

/* 1 when the server closed s (end of stream or a reset) within 5 s. */
static int closed_by_server(weft_stream *s)
{
    char b;
    weft_stream_set_deadline(s, 5000 * MS);
    int64_t n = weft_stream_read(s, &b, 1);
    return n == 0 || n == -ECONNRESET;
}

static int reclaim_main(void *arg, intptr_t *result)
{
    (void)result;
    reclaim_ctx *c = arg;
    /* Limit 2: an idle connection and a busy one; a third connection
     * reclaims the idle one, not the busy one, though that is older. */
    weft_stream *busy = dial(c);
    cr_assert(command(c, busy, 'b'));
    weft_stream *idle = dial(c);
    cr_assert(command(c, idle, 'r'));
    weft_stream *third = dial(c);
    cr_assert(command(c, third, 'b'), "the third connection was not served");
    cr_assert(closed_by_server(idle));
    weft_stream_close(idle);
    cr_assert(command(c, busy, 'b'), "the busy connection was reclaimed");
    cr_assert_eq(c->timedout, 1);
    /* None reclaimable: a fourth waits for a slot... */
    weft_stream *fourth = dial(c);
    cr_assert_eq(weft_stream_write(fourth, "b", 1), 1);
    weft_sleep(c->loop, 50 * MS);
    cr_assert_eq(weft_server_connections(c->srv), 2);
    cr_assert_eq(c->timedout, 1);
    /* ...until one becomes reclaimable: that one goes at once (its
     * command is answered, then it is closed) and the fourth is served. */
    cr_assert(command(c, busy, 'r'));
    cr_assert(closed_by_server(busy));
    char b = 0;
    weft_stream_set_deadline(fourth, 5000 * MS);
    cr_assert_eq(weft_stream_readexactly(fourth, &b, 1), 1, "the fourth was not served");
    cr_assert_eq(b, 'b');
    cr_assert_eq(c->timedout, 2);
    /* A reclaimable connection stays while slots are free. */
    weft_stream_close(busy);
    weft_stream_close(third);
    cr_assert(command(c, fourth, 'r'));
    weft_stream *fifth = dial(c);
    cr_assert(command(c, fifth, 'r'));
    weft_sleep(c->loop, 20 * MS);
    cr_assert(command(c, fourth, 'r'), "reclaimed below the limit");
    cr_assert_eq(c->timedout, 2);
    weft_stream_close(fourth);
    weft_stream_close(fifth);
    cr_assert_geq(weft_server_close(c->srv, 1000 * MS), 0);
    return 0;
}

Test(server, at_the_limit_the_oldest_reclaimable_connection_gives_way)
{
    weft_loop *loop = test_loop_new();
    reclaim_ctx c = {.loop = loop};
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    weft_server_opts o = {.max_connections = 2};
    cr_assert_eq(weft_start_server(loop, &a, reclaim_handler, &c.timedout, &o, &c.srv), 0);
    cr_assert_eq(weft_server_addr(c.srv, &c.addr), 0);
    cr_assert_eq(run_task(loop, reclaim_main, &c), 0);
    test_loop_free(loop);
}

/* Marking a stream no server owns does nothing; bad input is refused. */
static int unowned_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    weft_stream *s;
    cr_assert_eq(weft_open_connection(c->loop, &c->addr, NULL, 1000 * MS, &s), 0);
    cr_assert_eq(weft_stream_set_reclaimable(s, 1), 0);
    cr_assert_eq(weft_stream_set_reclaimable(s, 0), 0);
    cr_assert_eq(weft_stream_set_reclaimable(NULL, 1), -EINVAL);
    weft_stream_close(s);
    cr_assert_geq(weft_server_close(c->srv, 1000 * MS), 0);
    return 0;
}

Test(server, reclaimable_on_a_client_stream_is_harmless)
{
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    start(&c, "127.0.0.1:0", NULL);
    cr_assert_eq(run_task(loop, unowned_main, &c), 0);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------ */
/* graceful close                                                      */

typedef struct {
    srv_ctx *c;
    weft_stream *s;
    int64_t quit_after; /* ns after `go` is set; < 0: stay until the server goes */
    weft_event *go;     /* set once the server holds every connection */
    int saw_eof;
    int echoed; /* its handler runs: "hi" came back */
} client;

static int client_task(void *arg, intptr_t *result)
{
    (void)result;
    client *k = arg;
    cr_assert_eq(weft_stream_write(k->s, "hi", 2), 2);
    char b[2];
    cr_assert_eq(weft_stream_readexactly(k->s, b, 2), 2);
    k->echoed = 1;
    if (k->quit_after >= 0) {
        cr_assert_eq(weft_event_wait(k->go), 0);
        weft_sleep(k->c->loop, k->quit_after);
        weft_stream_write_eof(k->s); /* the handler sees end of stream and returns */
    }
    k->saw_eof = weft_stream_read(k->s, b, 1) == 0;
    return 0;
}

static int graceful_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    client k[4];
    weft_future *f[4];
    weft_event go;
    cr_assert_eq(weft_event_init(&go, c->loop), 0);
    for (int i = 0; i < 4; i++) {
        k[i] = (client){.c = c, .quit_after = i < 2 ? 20 * MS : -1, .go = &go};
        cr_assert_eq(weft_open_connection(c->loop, &c->addr, NULL, 1000 * MS, &k[i].s), 0);
        cr_assert_eq(weft_task_spawn(c->loop, client_task, &k[i], &f[i]), 0);
    }
    /* Wait until the server has all four, each in its handler (a
     * connection that has not spoken yet would be closed without one;
     * slow under TSan or valgrind). */
    int echoed = 0;
    for (int ms = 0; ms < 2000 && echoed < 4; ms++) {
        weft_sleep(c->loop, 1 * MS);
        echoed = k[0].echoed + k[1].echoed + k[2].echoed + k[3].echoed;
    }
    cr_assert_eq(echoed, 4);
    cr_assert_eq(weft_server_connections(c->srv), 4);
    cr_assert_eq(weft_event_set(&go), 0);
    int64_t t0 = mono_ns();
    /* Two clients finish within the deadline, two idle ones are cancelled. */
    c->forced = weft_server_close(c->srv, 100 * MS);
    int64_t took = mono_ns() - t0;
    cr_assert_eq(c->forced, 2, "forced %d", c->forced);
    cr_assert_geq(took, 90 * MS);
    cr_assert_lt(took, 1000 * MS);
    /* No new connections once closed. */
    weft_stream *s;
    cr_assert_eq(weft_open_connection(c->loop, &c->addr, NULL, 1000 * MS, &s), -ECONNREFUSED);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(weft_await(f[i], NULL), 0);
        weft_future_unref(f[i]);
        cr_assert(k[i].saw_eof, "client %d did not see its connection end", i);
        weft_stream_close(k[i].s);
    }
    return 0;
}

Test(server, graceful_close_with_live_clients)
{
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    start(&c, "127.0.0.1:0", NULL);
    cr_assert_eq(run_task(loop, graceful_main, &c), 0);
    cr_assert_eq(atomic_load(&c.served), 4); /* every handler ran to its end */
    test_loop_free(loop);
}

static int idle_close_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    int64_t t0 = mono_ns();
    cr_assert_eq(weft_server_close(c->srv, 5000 * MS), 0);
    cr_assert_lt(mono_ns() - t0, 500 * MS, "close waited with nobody connected");
    return 0;
}

Test(server, close_without_clients_is_prompt)
{
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    start(&c, "[::1]:0", NULL);
    cr_assert_eq(run_task(loop, idle_close_main, &c), 0);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------ */
/* Unix socket server                                                  */

#ifndef _WIN32
static int unix_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    cr_assert(echo_once(c->loop, &c->addr, 5000));
    cr_assert_eq(weft_server_close(c->srv, 100 * MS), 0);
    return 0;
}

#endif

Test(server, unix_socket_server)
{
#ifdef _WIN32
    /* No Unix sockets for weft on Windows: starting such a server says so. */
    weft_loop *loop = test_loop_new();
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "unix:C:\\weft-srv.sock"), 0);
    weft_server *srv = NULL;
    cr_assert_eq(weft_start_server(loop, &a, test_echo_handler, NULL, NULL, &srv), -EAFNOSUPPORT);
    cr_assert_null(srv);
    weft_threads *t = NULL;
    cr_assert_eq(weft_serve_threads(2, NULL, &a, test_echo_handler, NULL, NULL, &t), -EAFNOSUPPORT);
    test_loop_free(loop);
#else
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    char where[64];
    snprintf(where, sizeof where, "unix:/tmp/weft-srv-%d.sock", (int)getpid());
    weft_server_opts o = {.listen.unlink_path = 1};
    start(&c, where, &o);
    cr_assert_eq(run_task(loop, unix_main, &c), 0);
    cr_assert_neq(access(where + 5, F_OK), 0, "socket file left behind");
    test_loop_free(loop);
#endif
}

/* ------------------------------------------------------------------ */
/* thread-per-core                                                     */

static int threads_client_main(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    for (int i = 0; i < 40; i++)
        if (echo_once(c->loop, &c->addr, 1000))
            c->ok++;
    return 0;
}

Test(server, serve_on_threads)
{
    atomic_int served = 0;
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    weft_threads *t;
    weft_serve_opts so = {.grace_ns = 500 * MS};
    int rc = weft_serve_threads(3, NULL, &a, test_echo_handler, &served, &so, &t);
    if (rc == WEFT_EUNAVAILABLE)
        cr_skip_test("backend unavailable");
    cr_assert_eq(rc, 0, "serve_threads: %s", weft_strerror(rc));
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    cr_assert_eq(weft_threads_addr(t, &c.addr), 0);
    cr_assert_neq(weft_addr_port(&c.addr), 0);
    cr_assert_eq(run_task(loop, threads_client_main, &c), 0);
    cr_assert_eq(c.ok, 40);
    cr_assert_eq(weft_threads_stop(t), 0);
    cr_assert_eq(weft_threads_stop(t), 0);
    cr_assert_eq(weft_threads_join(t), 0);
    cr_assert_eq(atomic_load(&served), 40);
    test_loop_free(loop);
}

/* Per-thread state through the setup / teardown hooks. */
#define HOOK_THREADS 3

typedef struct hook_log {
    int fail_index; /* setup of this thread fails (-1: none) */
    int fail_rc;
    atomic_int setups, teardowns;
    atomic_int torn[HOOK_THREADS]; /* connections its state saw, at teardown; -1 before */
} hook_log;

typedef struct per_thread {
    hook_log *log;
    weft_loop *loop;
    int index;
    int conns; /* only this thread's loop touches it */
    int wrong_loop;
} per_thread;

static int hook_setup(weft_loop *loop, int index, void *arg, void **conn_arg)
{
    hook_log *log = arg;
    cr_assert_eq(*conn_arg, arg, "conn_arg starts as weft_serve_threads' arg");
    cr_assert_null(weft_task_current(loop), "setup runs outside any task");
    if (index == log->fail_index)
        return log->fail_rc;
    per_thread *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    *p = (per_thread){.log = log, .loop = loop, .index = index};
    *conn_arg = p;
    atomic_fetch_add(&log->setups, 1);
    return 0;
}

static void hook_teardown(weft_loop *loop, int index, void *conn_arg)
{
    per_thread *p = conn_arg;
    cr_assert_eq(p->loop, loop);
    cr_assert_eq(p->index, index);
    cr_assert_eq(p->wrong_loop, 0, "a connection of another thread's loop got this state");
    atomic_store(&p->log->torn[index], p->conns);
    atomic_fetch_add(&p->log->teardowns, 1);
    free(p);
}

/* The echo handler, counting on its thread's own state. */
static int per_thread_echo(weft_stream *s, void *arg)
{
    per_thread *p = arg;
    if (weft_stream_loop(s) != p->loop)
        p->wrong_loop++;
    test_echo_handler(s, NULL);
    p->conns++; /* after the echo: counted only once the client is answered */
    return 0;
}

Test(server, serve_threads_setup_gives_each_thread_its_state)
{
    hook_log log = {.fail_index = -1};
    for (int i = 0; i < HOOK_THREADS; i++)
        atomic_init(&log.torn[i], -1);
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    weft_serve_opts so = {
        .grace_ns = 500 * MS, .thread_setup = hook_setup, .thread_teardown = hook_teardown};
    weft_threads *t;
    int rc = weft_serve_threads(HOOK_THREADS, NULL, &a, per_thread_echo, &log, &so, &t);
    if (rc == WEFT_EUNAVAILABLE)
        cr_skip_test("backend unavailable");
    cr_assert_eq(rc, 0, "serve_threads: %s", weft_strerror(rc));
    cr_assert_eq(atomic_load(&log.setups), HOOK_THREADS, "every setup ran before the return");
    cr_assert_eq(atomic_load(&log.teardowns), 0);
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    cr_assert_eq(weft_threads_addr(t, &c.addr), 0);
    cr_assert_eq(run_task(loop, threads_client_main, &c), 0);
    cr_assert_eq(c.ok, 40);
    cr_assert_eq(weft_threads_stop(t), 0);
    cr_assert_eq(weft_threads_join(t), 0);
    cr_assert_eq(atomic_load(&log.teardowns), HOOK_THREADS);
    int total = 0;
    for (int i = 0; i < HOOK_THREADS; i++) {
        cr_assert_geq(atomic_load(&log.torn[i]), 0, "thread %d not torn down", i);
        total += atomic_load(&log.torn[i]);
    }
    cr_assert_eq(total, 40, "each connection counted once, on its thread's state");
    test_loop_free(loop);
}

/* Every thread takes connections. Each connection blocks its thread's loop
 * for a while after the echo (a handler that hogs its thread), so the
 * connections arriving meanwhile must be taken by the other threads: on
 * Linux from their own SO_REUSEPORT listeners, on Windows from the one
 * listener they share (the loop that holds it in its port cannot take
 * them while blocked). */
#define SPREAD_CLIENTS 12

static int hogging_echo(weft_stream *s, void *arg)
{
    per_thread_echo(s, arg);
    net_sleep_ms(30); /* blocks this thread's loop, not the task */
    return 0;
}

static int spread_client(void *arg, intptr_t *result)
{
    (void)result;
    srv_ctx *c = arg;
    if (echo_once(c->loop, &c->addr, 100))
        c->ok++;
    return 0;
}

static int spread_main(void *arg, intptr_t *result)
{
    (void)result;
    weft_future *f[SPREAD_CLIENTS];
    /* 10 ms apart: a client arrives while the loop that took the one
     * before it is still blocked, whichever threads have the listener. */
    for (int i = 0; i < SPREAD_CLIENTS; i++) {
        cr_assert_eq(weft_task_spawn(((srv_ctx *)arg)->loop, spread_client, arg, &f[i]), 0);
        cr_assert_eq(weft_sleep(((srv_ctx *)arg)->loop, 10 * MS), 0);
    }
    for (int i = 0; i < SPREAD_CLIENTS; i++) {
        weft_await(f[i], NULL);
        weft_future_unref(f[i]);
    }
    return 0;
}

Test(server, serve_threads_every_thread_accepts)
{
    hook_log log = {.fail_index = -1};
    for (int i = 0; i < HOOK_THREADS; i++)
        atomic_init(&log.torn[i], -1);
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    weft_serve_opts so = {
        .grace_ns = 2000 * MS, .thread_setup = hook_setup, .thread_teardown = hook_teardown};
    weft_threads *t;
    int rc = weft_serve_threads(HOOK_THREADS, NULL, &a, hogging_echo, &log, &so, &t);
    if (rc == WEFT_EUNAVAILABLE)
        cr_skip_test("backend unavailable");
    cr_assert_eq(rc, 0, "serve_threads: %s", weft_strerror(rc));
    weft_loop *loop = test_loop_new();
    srv_ctx c = {.loop = loop};
    cr_assert_eq(weft_threads_addr(t, &c.addr), 0);
    cr_assert_eq(run_task(loop, spread_main, &c), 0);
    cr_assert_eq(c.ok, SPREAD_CLIENTS);
    cr_assert_eq(weft_threads_stop(t), 0);
    cr_assert_eq(weft_threads_join(t), 0);
    int total = 0, busy = 0;
    for (int i = 0; i < HOOK_THREADS; i++) {
        total += atomic_load(&log.torn[i]);
        busy += atomic_load(&log.torn[i]) > 0;
    }
    cr_assert_eq(total, SPREAD_CLIENTS);
    cr_assert_geq(busy, 2, "connections per thread: %d %d %d", atomic_load(&log.torn[0]),
                  atomic_load(&log.torn[1]), atomic_load(&log.torn[2]));
    test_loop_free(loop);
}

Test(server, serve_threads_failing_setup_fails_the_start)
{
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    weft_serve_opts so = {.thread_setup = hook_setup, .thread_teardown = hook_teardown};
    const int fails[2] = {-EIO, 1}; /* an error code, and a positive value (-EINVAL) */
    for (int k = 0; k < 2; k++) {
        int fail_rc = fails[k];
        hook_log log = {.fail_index = 1, .fail_rc = fail_rc};
        for (int i = 0; i < HOOK_THREADS; i++)
            atomic_init(&log.torn[i], -1);
        weft_threads *t = NULL;
        int rc = weft_serve_threads(HOOK_THREADS, NULL, &a, per_thread_echo, &log, &so, &t);
        if (rc == WEFT_EUNAVAILABLE)
            cr_skip_test("backend unavailable");
        cr_assert_eq(rc, fail_rc < 0 ? fail_rc : -EINVAL, "got %d", rc);
        cr_assert_null(t);
        /* The threads were joined before the return: every state made was
         * torn down, and thread 1 had none. */
        cr_assert_eq(atomic_load(&log.setups), HOOK_THREADS - 1);
        cr_assert_eq(atomic_load(&log.teardowns), HOOK_THREADS - 1);
        cr_assert_eq(atomic_load(&log.torn[0]), 0);
        cr_assert_eq(atomic_load(&log.torn[1]), -1, "no teardown without a setup");
        cr_assert_eq(atomic_load(&log.torn[2]), 0);
    }
}

static int thread_fails(weft_loop *loop, int index, void *arg)
{
    (void)loop;
    (void)arg;
    return index == 1 ? -EIO : 0;
}

static int thread_waits(weft_loop *loop, int index, void *arg)
{
    (void)index;
    atomic_int *started = arg;
    atomic_fetch_add(started, 1);
    /* keep the loop busy until stopped: sleep in a loop */
    for (;;) {
        int rc = weft_sleep(loop, 10 * MS);
        if (rc)
            return rc;
    }
}

Test(server, threads_start_stop_join)
{
    weft_threads *t;
    int rc = weft_threads_start(2, NULL, thread_fails, NULL, &t);
    if (rc == WEFT_EUNAVAILABLE)
        cr_skip_test("backend unavailable");
    cr_assert_eq(rc, 0);
    cr_assert_eq(weft_threads_join(t), -EIO);
    atomic_int started = 0;
    cr_assert_eq(weft_threads_start(4, NULL, thread_waits, &started, &t), 0);
    while (atomic_load(&started) < 4)
        net_sleep_ms(1);
    cr_assert_eq(weft_threads_stop(t), 0);
    cr_assert_eq(weft_threads_join(t), 0); /* -ECANCELED is the expected end */
    weft_addr a;
    cr_assert_eq(weft_threads_addr(NULL, &a), -EINVAL);
}

/* ------------------------------------------------------------------ */

static int bad_in_task(void *arg, intptr_t *result)
{
    (void)result;
    (void)arg;
    cr_assert_eq(weft_server_close(NULL, 0), -EINVAL);
    return 0;
}

static int close_task(void *arg, intptr_t *result)
{
    (void)result;
    return weft_server_close(arg, 0);
}

Test(server, bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_server *srv = NULL;
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    cr_assert_eq(weft_start_server(NULL, &a, test_echo_handler, NULL, NULL, &srv), -EINVAL);
    cr_assert_eq(weft_start_server(loop, NULL, test_echo_handler, NULL, NULL, &srv), -EINVAL);
    cr_assert_eq(weft_start_server(loop, &a, NULL, NULL, NULL, &srv), -EINVAL);
    cr_assert_eq(weft_start_server(loop, &a, test_echo_handler, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_start_server_fd(loop, -1, test_echo_handler, NULL, NULL, &srv), -EINVAL);
    weft_addr junk;
    memset(&junk, 0x77, sizeof junk);
    cr_assert_eq(weft_start_server(loop, &junk, test_echo_handler, NULL, NULL, &srv), -EINVAL);
    cr_assert_eq(weft_server_addr(NULL, &a), -EINVAL);
    cr_assert_eq(weft_server_connections(NULL), 0);
    /* close outside a task: refused, nothing done */
    cr_assert_eq(weft_start_server(loop, &a, test_echo_handler, NULL, NULL, &srv), 0);
    cr_assert_eq(weft_server_close(srv, 0), -EPERM);
    cr_assert_eq(run_task(loop, bad_in_task, loop), 0);
    weft_threads *t;
    cr_assert_eq(weft_threads_start(0, NULL, thread_fails, NULL, &t), -EINVAL);
    cr_assert_eq(weft_threads_start(2, NULL, NULL, NULL, &t), -EINVAL);
    cr_assert_eq(weft_threads_start(100000, NULL, thread_fails, NULL, &t), -EINVAL);
    cr_assert_eq(weft_serve_threads(2, NULL, NULL, test_echo_handler, NULL, NULL, &t), -EINVAL);
    cr_assert_eq(weft_serve_threads(2, NULL, &a, NULL, NULL, NULL, &t), -EINVAL);
    cr_assert_eq(weft_threads_stop(NULL), -EINVAL);
    cr_assert_eq(weft_threads_join(NULL), -EINVAL);
    /* the server is still usable: close it for real */
    cr_assert_eq(run_task(loop, close_task, srv), 0);
    test_loop_free(loop);
}
