/* Suite server (with test_server.c): a connection that has not spoken yet
 * holds no task and no stack; its handler starts with the peer's first
 * bytes or end; server close and the idle timeout end a waiting one
 * without its handler; speak_first starts the handler at accept. Runs
 * once per backend (WEFT_BACKEND). */
#include "net_common.h"
#include "task_internal.h"

#include <string.h>

#define N_IDLE 8

/* Tasks alive on the loop now (the loop's live futures that are tasks). */
static int live_tasks(weft_loop *loop)
{
    int n = 0;
    for (weft__link *l = weft__tasks(loop)->live.first; l; l = l->next)
        n += weft__container_of(l, weft_future, live)->is_task;
    return n;
}

typedef struct {
    weft_loop *loop;
    weft_server *srv;
    weft_addr addr;
    int started; /* handlers that ran */
} idle_ctx;

/* Echo until the end; counts its start. */
static int counting_echo(weft_stream *s, void *arg)
{
    idle_ctx *c = arg;
    c->started++;
    char buf[256];
    int64_t n;
    while ((n = weft_stream_read(s, buf, sizeof buf)) > 0)
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            break;
    return 0;
}

/* A handler that speaks first: a greeting, then it waits for the end. */
static int greeter(weft_stream *s, void *arg)
{
    idle_ctx *c = arg;
    c->started++;
    char b;
    if (weft_stream_write(s, "hello", 5) == 5 && weft_stream_drain(s) == 0)
        weft_stream_read(s, &b, 1);
    return 0;
}

static void start_idle(idle_ctx *c, weft_conn_handler h, const weft_server_opts *o)
{
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    cr_assert_eq(weft_start_server(c->loop, &a, h, c, o, &c->srv), 0);
    cr_assert_eq(weft_server_addr(c->srv, &c->addr), 0);
}

/* Poll (task only) until the server holds want connections, 2 s at most. */
static void wait_conns(idle_ctx *c, size_t want)
{
    for (int ms = 0; ms < 2000 && weft_server_connections(c->srv) != want; ms++)
        weft_sleep(c->loop, 1 * MS);
    cr_assert_eq(weft_server_connections(c->srv), want, "%zu connections, want %zu",
                 weft_server_connections(c->srv), want);
}

/* 1 when the server ended fd's connection (end of stream or reset). */
static int peer_ended(weft_loop *loop, int fd)
{
    char b;
    int64_t n = weft_recv(loop, fd, &b, 1);
    return n == 0 || n == -ECONNRESET;
}

static int idle_main(void *arg, intptr_t *result)
{
    (void)result;
    idle_ctx *c = arg;
    weft_sleep(c->loop, 1 * MS); /* the acceptor is up */
    int base = live_tasks(c->loop);
    int fd[N_IDLE];
    for (int i = 0; i < N_IDLE; i++)
        cr_assert_geq(fd[i] = weft_connect(c->loop, &c->addr, 1000 * MS), 0);
    wait_conns(c, N_IDLE);
    weft_sleep(c->loop, 20 * MS); /* time enough for a handler, were there one */
    cr_assert_eq(live_tasks(c->loop), base, "silent connections hold tasks");
    cr_assert_eq(c->started, 0);
    /* One speaks: it is served, by a task of its own. */
    cr_assert_eq(weft_send_all(c->loop, fd[0], "ping", 4), 4);
    char b[4];
    int64_t got = 0;
    while (got < 4) {
        int64_t n = weft_recv(c->loop, fd[0], b + got, (size_t)(4 - got));
        cr_assert_gt(n, 0);
        got += n;
    }
    cr_assert_eq(memcmp(b, "ping", 4), 0);
    cr_assert_eq(c->started, 1);
    cr_assert_eq(live_tasks(c->loop), base + 1);
    /* One ends while waiting: its handler sees the end, and it is gone. */
    cr_assert_eq(weft_close(c->loop, fd[1]), 0);
    wait_conns(c, N_IDLE - 1);
    cr_assert_eq(c->started, 2);
    /* Close: the six still waiting end at once, without handlers and
     * without the grace; the speaking one is cancelled after the grace. */
    int64_t t0 = mono_ns();
    cr_assert_eq(weft_server_close(c->srv, 50 * MS), 1);
    cr_assert_lt(mono_ns() - t0, 1000 * MS);
    cr_assert_eq(c->started, 2);
    cr_assert_eq(live_tasks(c->loop), base - 1); /* the acceptor has ended too */
    for (int i = 0; i < N_IDLE; i++) {
        if (i == 1)
            continue;
        cr_assert(peer_ended(c->loop, fd[i]), "connection %d still open", i);
        weft_close(c->loop, fd[i]);
    }
    return 0;
}

Test(server, a_silent_connection_holds_no_task)
{
    weft_loop *loop = test_loop_new();
    idle_ctx c = {.loop = loop};
    start_idle(&c, counting_echo, NULL);
    cr_assert_eq(run_task(loop, idle_main, &c), 0);
    test_loop_free(loop);
}

static int timeout_main(void *arg, intptr_t *result)
{
    (void)result;
    idle_ctx *c = arg;
    int64_t t0 = mono_ns(); /* before the accept: its timeout ends 50 ms after this, or later */
    int silent = weft_connect(c->loop, &c->addr, 1000 * MS);
    int talker = weft_connect(c->loop, &c->addr, 1000 * MS);
    cr_assert_geq(silent, 0);
    cr_assert_geq(talker, 0);
    cr_assert_eq(weft_send_all(c->loop, talker, "x", 1), 1);
    char b;
    cr_assert_eq(weft_recv(c->loop, talker, &b, 1), 1);
    cr_assert(peer_ended(c->loop, silent), "the silent connection outlived its timeout");
    cr_assert_geq(mono_ns() - t0, 45 * MS);
    wait_conns(c, 1);
    /* The talker's handler runs on past the timeout (it is its own now). */
    weft_sleep(c->loop, 80 * MS);
    cr_assert_eq(weft_send_all(c->loop, talker, "y", 1), 1);
    cr_assert_eq(weft_recv(c->loop, talker, &b, 1), 1);
    cr_assert_eq(b, 'y');
    cr_assert_eq(c->started, 1);
    weft_close(c->loop, silent);
    weft_close(c->loop, talker);
    wait_conns(c, 0);
    cr_assert_eq(weft_server_close(c->srv, 1000 * MS), 0);
    return 0;
}

Test(server, idle_timeout_closes_a_silent_connection)
{
    weft_loop *loop = test_loop_new();
    idle_ctx c = {.loop = loop};
    weft_server_opts o = {.idle_timeout_ns = 50 * MS};
    start_idle(&c, counting_echo, &o);
    cr_assert_eq(run_task(loop, timeout_main, &c), 0);
    test_loop_free(loop);
}

static int greet_main(void *arg, intptr_t *result)
{
    (void)result;
    idle_ctx *c = arg;
    int fd = weft_connect(c->loop, &c->addr, 1000 * MS);
    cr_assert_geq(fd, 0);
    char b[5];
    int64_t got = 0;
    while (got < 5) {
        int64_t n = weft_recv(c->loop, fd, b + got, (size_t)(5 - got));
        cr_assert_gt(n, 0);
        got += n;
    }
    cr_assert_eq(memcmp(b, "hello", 5), 0);
    weft_close(c->loop, fd);
    wait_conns(c, 0);
    cr_assert_eq(weft_server_close(c->srv, 1000 * MS), 0);
    cr_assert_eq(c->started, 1);
    return 0;
}

Test(server, speak_first_starts_the_handler_at_accept)
{
    weft_loop *loop = test_loop_new();
    idle_ctx c = {.loop = loop};
    weft_server_opts o = {.speak_first = 1};
    start_idle(&c, greeter, &o);
    cr_assert_eq(run_task(loop, greet_main, &c), 0);
    test_loop_free(loop);
}
