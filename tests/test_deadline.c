/* Loop-level suite: stream deadlines and lingering close (hostile and idle
 * peers): the idle timeout, the request deadline, their effect on writes,
 * and weft_stream_linger's bounds. Runs once per backend (WEFT_BACKEND). */
#include "net_common.h"

TestSuite(deadline, .timeout = 60);

typedef struct {
    weft_loop *loop;
    weft_addr addr;
    int lfd;
    int raw;        /* the peer: a plain descriptor */
    weft_stream *s; /* the stream under test */
    weft_stream_opts opts;
    int peer_rc;     /* what the peer task saw */
    size_t peer_got; /* bytes the peer read */
    char peer_buf[256];
    int stop;
} dl_ctx;

static void dl_open(dl_ctx *c)
{
    cr_assert_eq(weft_open_connection(c->loop, &c->addr, &c->opts, 2000 * MS, &c->s), 0);
    c->raw = weft_accept(c->loop, c->lfd, NULL);
    cr_assert_geq(c->raw, 0);
}

static void dl_run(weft_task_fn fn)
{
    weft_loop *loop = test_loop_new();
    dl_ctx c = {.loop = loop, .raw = -1};
    c.lfd = loopback_listener(&c.addr, 16);
    cr_assert_eq(run_task(loop, fn, &c), 0);
    test_run(loop);
    weft_close(loop, c.lfd);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------ */

/* Sends one byte after 120 ms. */
static int late_sender_task(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    weft_sleep(c->loop, 120 * MS);
    return weft_send_all(c->loop, c->raw, "z", 1) == 1 ? 0 : -EIO;
}

static int idle_main(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    dl_open(c);
    char b[8];
    cr_assert_eq(weft_stream_set_timeout(c->s, 50 * MS), 0);
    /* A silent peer: the read fails after the idle time, not before. */
    int64_t t0 = mono_ns();
    cr_assert_eq(weft_stream_read(c->s, b, sizeof b), -ETIMEDOUT);
    int64_t took = mono_ns() - t0;
    cr_assert_geq(took, 40 * MS, "timed out after %lld ns", (long long)took);
    cr_assert_lt(took, 1000 * MS);
    cr_assert(!weft_stream_at_eof(c->s)); /* not sticky: the stream goes on */
    cr_assert_eq(weft_stream_read(c->s, b, sizeof b), -ETIMEDOUT); /* first buffer done too */
    /* A peer that sends a byte every 20 ms is never idle for 50 ms. */
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(weft_send_all(c->loop, c->raw, "x", 1), 1);
        cr_assert_eq(weft_stream_read(c->s, b, 1), 1);
        weft_sleep(c->loop, 20 * MS);
    }
    /* off: a read waits past the old timeout */
    cr_assert_eq(weft_stream_set_timeout(c->s, 0), 0);
    weft_future *t;
    cr_assert_eq(weft_task_spawn(c->loop, late_sender_task, c, &t), 0);
    cr_assert_eq(weft_stream_read(c->s, b, 1), 1);
    cr_assert_eq(weft_await(t, NULL), 0);
    weft_future_unref(t);
    weft_close(c->loop, c->raw);
    cr_assert_eq(weft_stream_read(c->s, b, 1), 0);
    cr_assert_eq(weft_stream_close(c->s), 0);
    return 0;
}

Test(deadline, idle_timeout_fails_a_silent_read_only)
{
    dl_run(idle_main);
}

/* Sends one byte every 20 ms until told to stop or the send fails. */
static int trickle_task(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    while (!c->stop) {
        if (weft_send_all(c->loop, c->raw, "y", 1) != 1)
            break;
        if (weft_sleep(c->loop, 20 * MS))
            break;
    }
    return 0;
}

static int deadline_main(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    dl_open(c);
    weft_future *t;
    cr_assert_eq(weft_task_spawn(c->loop, trickle_task, c, &t), 0);
    /* Each byte arrives within the idle timeout, but the request as a whole
     * takes too long: the deadline ends it. */
    cr_assert_eq(weft_stream_set_timeout(c->s, 200 * MS), 0);
    cr_assert_eq(weft_stream_set_deadline(c->s, 150 * MS), 0);
    char b[1000];
    int64_t t0 = mono_ns();
    cr_assert_eq(weft_stream_readexactly(c->s, b, sizeof b), -ETIMEDOUT);
    int64_t took = mono_ns() - t0;
    cr_assert_geq(took, 120 * MS, "took %lld ns", (long long)took);
    cr_assert_lt(took, 1000 * MS);
    c->stop = 1;
    cr_assert_eq(weft_await(t, NULL), 0);
    weft_future_unref(t);
    /* Past the deadline: a read that must wait fails at once... */
    size_t have;
    weft_stream_peek(c->s, &have);
    weft_stream_consume(c->s, have);
    while (weft_stream_fill(c->s) > 0) /* what trickled in meanwhile */
        weft_stream_consume(c->s, 1);
    t0 = mono_ns();
    cr_assert_eq(weft_stream_fill(c->s), -ETIMEDOUT);
    cr_assert_lt(mono_ns() - t0, 100 * MS);
    /* ... cleared, reading goes on. */
    cr_assert_eq(weft_stream_set_deadline(c->s, -1), 0);
    cr_assert_eq(weft_send_all(c->loop, c->raw, "q", 1), 1);
    cr_assert_eq(weft_stream_read(c->s, b, 1), 1);
    cr_assert_eq(b[0], 'q');
    weft_close(c->loop, c->raw);
    cr_assert_eq(weft_stream_close(c->s), 0);
    return 0;
}

Test(deadline, request_deadline_beats_a_trickling_peer)
{
    dl_run(deadline_main);
}

/* Write chunks of n bytes to a peer that never reads until the stream's
 * timeout ends a wait: -ETIMEDOUT, in well under 5 s. */
static void write_until_timeout(dl_ctx *c, const char *chunk, size_t n)
{
    int64_t r = 0;
    int64_t t0 = mono_ns();
    for (int i = 0; i < 100000 && r >= 0; i++)
        r = weft_stream_write(c->s, chunk, n);
    cr_assert_eq(r, -ETIMEDOUT);
    cr_assert_lt(mono_ns() - t0, 5000 * MS);
}

static int write_timeout_main(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    c->opts.write_limit = 4096;
    dl_open(c);
    /* The peer never reads: writing blocks once the kernel's buffers and
     * ours are full, and the idle timeout ends that wait. */
    cr_assert_eq(weft_stream_set_timeout(c->s, 100 * MS), 0);
    static char chunk[1024];
    write_until_timeout(c, chunk, sizeof chunk);
    /* Winsock (wine) may still take the queued bytes: then the flush ends
     * without waiting; where they stay queued it times out too. */
    int fr = weft_stream_flush(c->s);
    cr_assert(fr == -ETIMEDOUT || (fr == 0 && weft_stream_write_buffered(c->s) == 0), "flush %d",
              fr);
    weft_close(c->loop, c->raw);
    cr_assert_eq(weft_stream_close(c->s), 0);
    return 0;
}

Test(deadline, a_peer_that_never_reads_times_out_writes)
{
    dl_run(write_timeout_main);
}

static int drain_task(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    static char sink[64 * 1024];
    while (weft_recv(c->loop, c->raw, sink, sizeof sink) > 0) {
    }
    return 0;
}

static int direct_write_timeout_main(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    dl_open(c);
    /* Writes of 16 KiB on an empty buffer go from the caller's memory,
     * awaited by the task: the timeout must end that wait too. */
    cr_assert_eq(weft_stream_set_timeout(c->s, 100 * MS), 0);
    static char chunk[16 * 1024];
    write_until_timeout(c, chunk, sizeof chunk);
    /* Not a lasting error: once the peer reads, writes go through. */
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, drain_task, c, &f), 0);
    cr_assert_eq(weft_stream_write(c->s, chunk, sizeof chunk), (int64_t)sizeof chunk);
    cr_assert_eq(weft_stream_flush(c->s), 0);
    cr_assert_eq(weft_stream_close(c->s), 0);
    cr_assert_eq(weft_await(f, NULL), 0);
    weft_future_unref(f);
    weft_close(c->loop, c->raw);
    return 0;
}

Test(deadline, a_large_write_to_a_peer_that_never_reads_times_out)
{
    dl_run(direct_write_timeout_main);
}

/* ------------------------------------------------------------------ */
/* Lingering close                                                     */

/* The hostile client: send 100 KB (a header line far too long) without
 * reading, then end and read what came back. */
static int big_sender_task(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    static char junk[100 * 1024];
    memset(junk, 'h', sizeof junk);
    int64_t r = weft_send_all(c->loop, c->raw, junk, sizeof junk);
    if (r != (int64_t)sizeof junk) {
        c->peer_rc = (int)r;
        return 0;
    }
    weft_shutdown(c->raw, SHUT_WR);
    for (;;) {
        int64_t n = weft_recv(c->loop, c->raw, c->peer_buf + c->peer_got,
                              sizeof c->peer_buf - 1 - c->peer_got);
        if (n <= 0) {
            c->peer_rc = (int)n;
            break;
        }
        c->peer_got += (size_t)n;
    }
    return 0;
}

static const char resp431[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                              "Connection: close\r\nContent-Length: 0\r\n\r\n";

static int linger_main(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    c->opts.read_limit = 8192;
    dl_open(c);
    weft_future *t;
    cr_assert_eq(weft_task_spawn(c->loop, big_sender_task, c, &t), 0);
    char b[100];
    cr_assert_eq(weft_stream_readexactly(c->s, b, sizeof b), (int64_t)sizeof b);
    /* The server gives up on the request, answers and lingers. */
    cr_assert_eq(weft_stream_write(c->s, resp431, sizeof resp431 - 1), (int64_t)sizeof resp431 - 1);
    cr_assert_eq(weft_stream_linger_close(c->s, 2000 * MS, 1024 * 1024), 0);
    cr_assert_eq(weft_await(t, NULL), 0);
    weft_future_unref(t);
    cr_assert_eq(c->peer_rc, 0, "the peer saw %d", c->peer_rc);
    cr_assert_eq(c->peer_got, sizeof resp431 - 1);
    cr_assert_eq(memcmp(c->peer_buf, resp431, c->peer_got), 0);
    weft_close(c->loop, c->raw);
    return 0;
}

Test(deadline, linger_close_lets_the_peer_read_the_error_response)
{
    dl_run(linger_main);
}

/* The same without lingering: the client's read meets a reset (the case
 * the helper exists for; shows the test above can fail). */
static int no_linger_main(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    c->opts.read_limit = 8192;
    dl_open(c);
    weft_future *t;
    cr_assert_eq(weft_task_spawn(c->loop, big_sender_task, c, &t), 0);
    char b[100];
    cr_assert_eq(weft_stream_readexactly(c->s, b, sizeof b), (int64_t)sizeof b);
    cr_assert_eq(weft_stream_write(c->s, resp431, sizeof resp431 - 1), (int64_t)sizeof resp431 - 1);
    cr_assert_eq(weft_stream_flush(c->s), 0);
    cr_assert_eq(weft_stream_close(c->s), 0);
    cr_assert_eq(weft_await(t, NULL), 0);
    weft_future_unref(t);
    cr_assert(c->peer_rc < 0 || c->peer_got < sizeof resp431 - 1, "rc %d got %zu", c->peer_rc,
              c->peer_got);
    weft_close(c->loop, c->raw);
    return 0;
}

Test(deadline, closing_with_unread_input_loses_the_response)
{
    dl_run(no_linger_main);
}

/* A peer that never stops sending: 4 KB every 2 ms. */
static int flood_task(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    static char junk[4096];
    while (!c->stop) {
        if (weft_send_all(c->loop, c->raw, junk, sizeof junk) != (int64_t)sizeof junk)
            break;
        if (weft_sleep(c->loop, 2 * MS))
            break;
    }
    return 0;
}

static int linger_bounds_main(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    dl_open(c);
    weft_future *t;
    cr_assert_eq(weft_task_spawn(c->loop, flood_task, c, &t), 0);
    /* bounded by time */
    int64_t t0 = mono_ns();
    cr_assert_eq(weft_stream_linger(c->s, 100 * MS, (size_t)1 << 40), -ETIMEDOUT);
    int64_t took = mono_ns() - t0;
    cr_assert_geq(took, 80 * MS, "took %lld ns", (long long)took);
    cr_assert_lt(took, 2000 * MS);
    /* bounded by bytes (the time limit far away) */
    t0 = mono_ns();
    cr_assert_eq(weft_stream_linger_close(c->s, 60000 * MS, 64 * 1024), -EFBIG);
    cr_assert_lt(mono_ns() - t0, 5000 * MS);
    c->stop = 1;
    weft_future_cancel(t);
    weft_await(t, NULL);
    weft_future_unref(t);
    weft_close(c->loop, c->raw);
    return 0;
}

Test(deadline, linger_ends_after_its_time_or_bytes)
{
    dl_run(linger_bounds_main);
}

static int bad_main(void *arg, intptr_t *result)
{
    (void)result;
    dl_ctx *c = arg;
    dl_open(c);
    cr_assert_eq(weft_stream_set_timeout(NULL, 1), -EINVAL);
    cr_assert_eq(weft_stream_set_deadline(NULL, 1), -EINVAL);
    cr_assert_eq(weft_stream_linger(NULL, 1, 1), -EINVAL);
    cr_assert_eq(weft_stream_linger_close(NULL, 1, 1), -EINVAL);
    cr_assert_eq(weft_stream_linger(c->s, -1, 1), -EINVAL);
    /* a peer that already ended: the linger ends at once with 0 */
    weft_close(c->loop, c->raw);
    cr_assert_eq(weft_stream_linger(c->s, 1000 * MS, 1024), 0);
    /* a closing stream refuses, the negative timeout still closes */
    cr_assert_eq(weft_stream_linger_close(c->s, -1, 1), -EINVAL);
    return 0;
}

Test(deadline, bad_input)
{
    dl_run(bad_main);
}

/* Outside a task: linger refuses, linger_close still closes. */
Test(deadline, linger_outside_a_task)
{
    weft_loop *loop = test_loop_new();
    weft_addr a;
    int lfd = loopback_listener(&a, 4);
    int fd = net_raw_socket(AF_INET, SOCK_STREAM);
    cr_assert_geq(fd, 0);
    weft_stream *s;
    cr_assert_eq(weft_stream_new(loop, fd, NULL, &s), 0);
    cr_assert_eq(weft_stream_linger(s, 1, 1), -EPERM);
    cr_assert_eq(weft_stream_linger_close(s, 1, 1), -EPERM);
    test_run(loop);
    weft_close(loop, lfd);
    test_loop_free(loop);
}
