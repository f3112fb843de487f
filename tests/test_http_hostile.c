/* http_server against hostile and idle peers (examples/http_serve.c on
 * this suite's backend, clients as tasks on the same loop): slowloris
 * against the connection limit, the header and idle timeouts, and the
 * error response a client still sending gets to see (lingering close). */
#include "http_serve.h"
#include "net_common.h"

#include <stdio.h>
#include <stdlib.h>

TestSuite(http_hostile, .timeout = 60);

static const char get[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

typedef struct hx {
    weft_loop *loop;
    weft_addr addr;
    http_serve h;
    http_limits lim;
    size_t max_conns;
    weft_task_fn body;
} hx;

/* One client: connect, send `send` (or none), read until the server
 * closes or `until` shows up, with `pause_ns` then `send2` after a first
 * response. */
typedef struct client {
    hx *x;
    const char *send;
    size_t send_len;
    int64_t pause_ns; /* after the first response: wait, then send again */
    const char *until;
    char out[4096];
    size_t out_len;
    int rc;          /* how reading ended: 0 closed, 1 `until` seen, or an error */
    int64_t done_ns; /* when, from the client's start */
} client;

static int seen(const client *c, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= c->out_len; i++)
        if (memcmp(c->out + i, s, n) == 0)
            return 1;
    return 0;
}

static int count(const client *c, const char *s)
{
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i + n <= c->out_len; i++)
        if (memcmp(c->out + i, s, n) == 0)
            k++;
    return (int)k;
}

static int client_task(void *arg, intptr_t *result)
{
    (void)result;
    client *c = arg;
    int64_t t0 = mono_ns();
    int fd = weft_connect(c->x->loop, &c->x->addr, 2000 * MS);
    if (fd < 0) {
        c->rc = fd;
        return 0;
    }
    if (c->send_len && weft_send_all(c->x->loop, fd, c->send, c->send_len) < 0) {
        c->rc = -EPIPE;
        weft_close(c->x->loop, fd);
        return 0;
    }
    int paused = 0;
    for (;;) {
        int64_t n = weft_recv(c->x->loop, fd, c->out + c->out_len, sizeof c->out - 1 - c->out_len);
        if (n <= 0) {
            c->rc = (int)n;
            break;
        }
        c->out_len += (size_t)n;
        c->out[c->out_len] = 0;
        if (c->pause_ns && !paused && seen(c, "Hello, World!")) {
            paused = 1;
            weft_sleep(c->x->loop, c->pause_ns);
            weft_send_all(c->x->loop, fd, get, sizeof get - 1);
            continue;
        }
        if (c->until && (paused ? count(c, c->until) >= 2 : seen(c, c->until))) {
            c->rc = 1;
            break;
        }
    }
    c->done_ns = mono_ns() - t0;
    weft_close(c->x->loop, fd);
    return 0;
}

static weft_future *spawn(client *c)
{
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->x->loop, client_task, c, &f), 0);
    return f;
}

static void join(weft_future *f)
{
    cr_assert_eq(weft_wait_for(f, 10000 * MS, NULL), 0, "a client hangs");
    weft_future_unref(f);
}

static int hx_main(void *arg, intptr_t *result)
{
    (void)result;
    hx *x = arg;
    int lfd = loopback_listener(&x->addr, 1024);
    cr_assert_eq(http_serve_start_limits(&x->h, x->loop, lfd, &x->lim, x->max_conns), 0);
    int rc = x->body(x, NULL);
    cr_assert_eq(http_serve_close(&x->h, 0), 0);
    return rc;
}

static void hx_run(http_limits lim, size_t max_conns, weft_task_fn body)
{
    raise_nofile();
    weft_loop *loop = test_loop_new();
    hx *x = calloc(1, sizeof *x);
    x->loop = loop;
    x->lim = lim;
    x->max_conns = max_conns;
    x->body = body;
    cr_assert_eq(run_task(loop, hx_main, x), 0);
    test_run(loop);
    test_loop_free(loop);
    free(x);
}

/* ------------------------------------------------------------------ */

enum { SLOW = 200, LIMIT = 100 };

/* 200 half-sent heads against 100 connection slots and a 1 s header
 * timeout: at the limit each new connection reclaims the oldest one with no
 * request under way, so the 100 past the limit and a normal client behind
 * them take the slots of the oldest 101 at once; the normal client is
 * served before any header timeout could have freed a slot (it used to
 * wait for two timeouts), the other 99 slow ones end by their timeout.
 * Under wine the 200 connections alone can take a second to be accepted:
 * the timeout is scaled so that no timeout is due before they are. */
#define SLOW_HT (1000 * MS * test_time_scale())

static int slowloris_body(void *arg, intptr_t *result)
{
    (void)result;
    hx *x = arg;
    static client slow[SLOW];
    weft_future *f[SLOW];
    for (int i = 0; i < SLOW; i++) {
        slow[i] = (client){.x = x, .send = "GET / HTTP/1.1\r\nHost: a\r\n", .send_len = 25};
        f[i] = spawn(&slow[i]);
    }
    weft_sleep(x->loop, 100 * MS); /* all connected and queued first */
    client ok = {.x = x, .send = get, .send_len = sizeof get - 1, .until = "Hello, World!"};
    weft_future *g = spawn(&ok);
    join(g);
    cr_assert_eq(ok.rc, 1, "rc %d: %s", ok.rc, ok.out);
    cr_assert_lt(ok.done_ns, SLOW_HT, "served after %lld ms", (long long)(ok.done_ns / MS));
    int reclaimed = 0;
    int64_t last_reclaimed = 0, first_timed_out = INT64_MAX;
    for (int i = 0; i < SLOW; i++) {
        join(f[i]);
        /* closed without a response (nginx's behaviour) */
        cr_assert(slow[i].rc == 0 || slow[i].rc == -ECONNRESET, "rc %d", slow[i].rc);
        cr_assert_eq(slow[i].out_len, 0);
        if (slow[i].done_ns < SLOW_HT) { /* no timeout is due before */
            reclaimed++;
            last_reclaimed = slow[i].done_ns > last_reclaimed ? slow[i].done_ns : last_reclaimed;
        } else if (slow[i].done_ns < first_timed_out)
            first_timed_out = slow[i].done_ns;
    }
    cr_assert_eq(reclaimed, SLOW - LIMIT + 1,
                 "%d closed before the header timeout (the last at %lld ms, the first after "
                 "at %lld ms)",
                 reclaimed, (long long)(last_reclaimed / MS), (long long)(first_timed_out / MS));
    return 0;
}

Test(http_hostile, slowloris_cannot_hold_the_connection_limit)
{
    hx_run((http_limits){.header_timeout_ns = SLOW_HT, .idle_timeout_ns = 0}, LIMIT,
           slowloris_body);
}

/* A 100 KB header line from a client that does not read until it has sent
 * it all: it gets its 431, not a reset. */
static int big_header_body(void *arg, intptr_t *result)
{
    (void)result;
    hx *x = arg;
    static char req[100 * 1024];
    int k = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(req + k, 'x', sizeof req - (size_t)k);
    client c = {.x = x, .send = req, .send_len = sizeof req};
    weft_future *f = spawn(&c);
    join(f);
    cr_assert_eq(c.rc, 0, "rc %d (%s)", c.rc, weft_strerror(c.rc));
    cr_assert(seen(&c, "HTTP/1.1 431 Request Header Fields Too Large\r\n"), "got '%s'", c.out);
    return 0;
}

Test(http_hostile, a_huge_header_line_sees_its_431)
{
    hx_run(http_limits_default(), 0, big_header_body);
}

/* The idle timeout closes a kept-alive connection; the header timeout one
 * that never sends; a pause longer than the header timeout but shorter
 * than the idle one between two requests is fine. */
static int idle_body(void *arg, intptr_t *result)
{
    (void)result;
    hx *x = arg;
    client idle = {.x = x, .send = get, .send_len = sizeof get - 1};
    client mute = {.x = x};
    client pause = {.x = x,
                    .send = get,
                    .send_len = sizeof get - 1,
                    .pause_ns = 400 * MS,
                    .until = "Hello, World!"};
    weft_future *f[3] = {spawn(&idle), spawn(&mute), spawn(&pause)};
    for (int i = 0; i < 3; i++)
        join(f[i]);
    cr_assert_eq(idle.rc, 0);
    cr_assert_eq(count(&idle, "Hello, World!"), 1);
    cr_assert_geq(idle.done_ns, 500 * MS, "%lld ms", (long long)(idle.done_ns / MS));
    cr_assert_lt(idle.done_ns, 3000 * MS);
    cr_assert_eq(mute.rc, 0);
    cr_assert_eq(mute.out_len, 0);
    cr_assert_geq(mute.done_ns, 150 * MS);
    cr_assert_lt(mute.done_ns, 500 * MS, "%lld ms", (long long)(mute.done_ns / MS));
    cr_assert_eq(pause.rc, 1, "rc %d: %s", pause.rc, pause.out);
    cr_assert_eq(count(&pause, "Hello, World!"), 2);
    return 0;
}

Test(http_hostile, idle_and_header_timeouts)
{
    hx_run((http_limits){.header_timeout_ns = 200 * MS, .idle_timeout_ns = 600 * MS}, 0, idle_body);
}
