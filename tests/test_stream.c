/* Loop-level suite: buffered streams (read, readexactly, readline,
 * readuntil with limits; write, drain, flush with water marks; the slow
 * reader keeps memory bounded). Runs once per backend (WEFT_BACKEND). */
#include "net_common.h"
#include "sys/bigbuf.h"

TestSuite(stream, .timeout = 60);

typedef struct {
    weft_loop *loop;
    weft_addr addr;
    int lfd;
    int raw;        /* the peer: a plain descriptor */
    weft_stream *s; /* the stream under test */
    weft_stream_opts opts;
} st_ctx;

/* Connect a stream to a raw accepted peer (task only). */
static void st_open(st_ctx *c)
{
    cr_assert_eq(weft_open_connection(c->loop, &c->addr, &c->opts, 2000 * MS, &c->s), 0);
    c->raw = weft_accept(c->loop, c->lfd, NULL);
    cr_assert_geq(c->raw, 0);
}

static void st_close(st_ctx *c)
{
    cr_assert_eq(weft_stream_close(c->s), 0);
    if (c->raw >= 0)
        weft_close(c->loop, c->raw);
}

static void st_run(weft_stream_opts opts, weft_task_fn fn)
{
    weft_loop *loop = test_loop_new();
    st_ctx c = {.loop = loop, .opts = opts, .raw = -1};
    c.lfd = loopback_listener(&c.addr, 16);
    cr_assert_eq(run_task(loop, fn, &c), 0);
    test_run(loop); /* stream closes finish */
    weft_close(loop, c.lfd);
    test_loop_free(loop);
}

static void peer_send(st_ctx *c, const char *text)
{
    size_t n = strlen(text);
    cr_assert_eq(weft_send_all(c->loop, c->raw, text, n), (int64_t)n);
}

/* ------------------------------------------------------------------ */

static int lines_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    const char *line;
    peer_send(c, "first\nsec");
    cr_assert_eq(weft_stream_readline(c->s, &line), 6);
    cr_assert_eq(memcmp(line, "first\n", 6), 0);
    peer_send(c, "ond\r\nthird");
    cr_assert_eq(weft_stream_readline(c->s, &line), 8);
    cr_assert_eq(memcmp(line, "second\r\n", 8), 0);
    /* readuntil with a multi-byte delimiter split across sends */
    peer_send(c, "\r\n\r");
    weft_sleep(c->loop, 2 * MS);
    peer_send(c, "\nrest");
    cr_assert_eq(weft_stream_readuntil(c->s, "\r\n\r\n", 4, &line), 9);
    cr_assert_eq(memcmp(line, "third\r\n\r\n", 9), 0);
    /* end of stream: readuntil refuses an incomplete record ... */
    cr_assert_eq(weft_shutdown(c->raw, SHUT_WR), 0);
    cr_assert_eq(weft_stream_readuntil(c->s, "\n", 1, &line), -ENODATA);
    /* ... readline hands out the last line without its newline */
    cr_assert_eq(weft_stream_readline(c->s, &line), 4);
    cr_assert_eq(memcmp(line, "rest", 4), 0);
    cr_assert_eq(weft_stream_readline(c->s, &line), 0);
    cr_assert(weft_stream_at_eof(c->s));
    char b[4];
    cr_assert_eq(weft_stream_read(c->s, b, sizeof b), 0);
    st_close(c);
    return 0;
}

Test(stream, readline_and_readuntil)
{
    st_run((weft_stream_opts){0}, lines_main);
}

static int limit_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    const char *line;
    char big[100];
    memset(big, 'a', sizeof big);
    cr_assert_eq(weft_send_all(c->loop, c->raw, big, sizeof big), 100);
    /* 64 bytes of buffer and no newline: a clear error, no growth. */
    cr_assert_eq(weft_stream_readline(c->s, &line), -EMSGSIZE);
    size_t have;
    weft_stream_peek(c->s, &have);
    cr_assert_eq(have, 64);
    cr_assert_eq(weft_stream_readline(c->s, &line), -EMSGSIZE);
    /* The caller drops the junk and goes on. */
    cr_assert_eq(weft_stream_consume(c->s, have), 0);
    cr_assert_eq(weft_stream_consume(c->s, 1), -EINVAL);
    peer_send(c, "\nok\n");
    cr_assert_eq(weft_stream_readline(c->s, &line), 37); /* the other 36 'a' and '\n' */
    cr_assert_eq(weft_stream_readline(c->s, &line), 3);
    cr_assert_eq(memcmp(line, "ok\n", 3), 0);
    cr_assert_eq(weft_stream_readuntil(c->s, "x", 0, &line), -EINVAL);
    cr_assert_eq(weft_stream_readuntil(c->s, NULL, 1, &line), -EINVAL);
    cr_assert_eq(weft_stream_readuntil(c->s, "\n", 1, NULL), -EINVAL);
    char longdelim[65];
    memset(longdelim, 'd', sizeof longdelim);
    cr_assert_eq(weft_stream_readuntil(c->s, longdelim, sizeof longdelim, &line), -EINVAL);
    st_close(c);
    return 0;
}

Test(stream, readline_limit_exceeded)
{
    st_run((weft_stream_opts){.read_limit = 64}, limit_main);
}

typedef struct {
    st_ctx *c;
    const unsigned char *p;
    size_t n;
} sender_job;

static int st_sender(void *arg, intptr_t *result)
{
    (void)result;
    sender_job *j = arg;
    cr_assert_eq(weft_send_all(j->c->loop, j->c->raw, j->p, j->n), (int64_t)j->n);
    return 0;
}

static int exactly_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    /* readexactly of 1 MiB through a 4 KiB buffer */
    size_t n = 1 << 20;
    unsigned char *out = malloc(n), *in = malloc(n);
    fill_pattern(out, n);
    weft_future *f;
    cr_assert_eq(weft_send_all(c->loop, c->raw, "hdr:", 4), 4);
    char hdr[4];
    cr_assert_eq(weft_stream_readexactly(c->s, hdr, 4), 4);
    cr_assert_eq(memcmp(hdr, "hdr:", 4), 0);
    /* the peer sends from another task while we read */
    sender_job sj = {c, out, n};
    cr_assert_eq(weft_task_spawn(c->loop, st_sender, &sj, &f), 0);
    cr_assert_eq(weft_stream_readexactly(c->s, in, n), (int64_t)n);
    cr_assert(check_pattern(in, n));
    weft_await(f, NULL);
    weft_future_unref(f);
    /* small reads come from the buffer */
    peer_send(c, "abcdef");
    char b[3];
    cr_assert_eq(weft_stream_read(c->s, b, 3), 3);
    cr_assert_eq(memcmp(b, "abc", 3), 0);
    cr_assert_eq(weft_stream_read(c->s, b, 3), 3);
    cr_assert_eq(memcmp(b, "def", 3), 0);
    /* fill / peek / consume for in-place parsers */
    peer_send(c, "xyz");
    cr_assert_eq(weft_stream_fill(c->s), 3);
    size_t have;
    const char *p = weft_stream_peek(c->s, &have);
    cr_assert_eq(have, 3);
    cr_assert_eq(memcmp(p, "xyz", 3), 0);
    cr_assert_eq(weft_stream_consume(c->s, 2), 0);
    /* end of stream in the middle of readexactly */
    weft_close(c->loop, c->raw);
    c->raw = -1;
    cr_assert_eq(weft_stream_readexactly(c->s, b, 3), -ENODATA);
    cr_assert_eq(weft_stream_read(c->s, b, 3), 0);
    free(out);
    free(in);
    st_close(c);
    return 0;
}

Test(stream, readexactly_read_fill_peek)
{
    st_run((weft_stream_opts){.read_limit = 4096}, exactly_main);
}

/* ------------------------------------------------------------------ */
/* writing: backpressure                                               */

typedef struct {
    st_ctx *c;
    size_t total, got;
    int ok, reads;
} slow_reader;

static int slow_read_task(void *arg, intptr_t *result)
{
    (void)result;
    slow_reader *r = arg;
    unsigned char *buf = malloc(64 * 1024);
    for (;;) {
        int64_t n = weft_recv(r->c->loop, r->c->raw, buf, 64 * 1024);
        if (n <= 0)
            break;
        for (int64_t i = 0; i < n; i++)
            if (buf[i] != pattern_at(r->got + (size_t)i)) {
                free(buf);
                return -EIO;
            }
        r->got += (size_t)n;
        if (++r->reads % 2 == 0)
            weft_sleep(r->c->loop, 1 * MS); /* slow */
    }
    free(buf);
    r->ok = r->got == r->total;
    return 0;
}

/* End the writing side and check that the slow reader f got every byte. */
static void end_and_check_reader(st_ctx *c, weft_future *f, const slow_reader *r)
{
    cr_assert_eq(weft_stream_write_eof(c->s), 0);
    cr_assert_eq(weft_await(f, NULL), 0);
    weft_future_unref(f);
    cr_assert(r->ok, "reader got %llu of %llu", (unsigned long long)r->got,
              (unsigned long long)r->total);
}

static int backpressure_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    /* Small kernel buffers make the reader's slowness visible at once. */
    int small = 16 * 1024;
    net_setsockopt(weft_stream_fd(c->s), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    slow_reader r = {.c = c, .total = 1 << 20};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, slow_read_task, &r, &f), 0);
    unsigned char chunk[3000];
    size_t sent = 0, max_buffered = 0;
    int waited = 0;
    while (sent < r.total) {
        size_t k = r.total - sent < sizeof chunk ? r.total - sent : sizeof chunk;
        for (size_t i = 0; i < k; i++)
            chunk[i] = pattern_at(sent + i);
        cr_assert_eq(weft_stream_write(c->s, chunk, k), (int64_t)k);
        sent += k;
        size_t b = weft_stream_write_buffered(c->s);
        if (b > max_buffered)
            max_buffered = b;
        cr_assert_leq(b, c->opts.write_limit);
        if (b > c->opts.write_high)
            waited++;
        cr_assert_eq(weft_stream_drain(c->s), 0);
        cr_assert_leq(weft_stream_write_buffered(c->s), c->opts.write_high);
    }
    cr_assert_gt(waited, 0, "the writer never had to wait: no backpressure seen");
    cr_assert_eq(weft_stream_write_eof(c->s), 0);
    cr_assert_eq(weft_stream_write_buffered(c->s), 0);
    cr_assert_eq(weft_await(f, NULL), 0);
    weft_future_unref(f);
    cr_assert(r.ok, "reader got %llu of %llu", (unsigned long long)r.got,
              (unsigned long long)r.total);
    cr_assert_leq(max_buffered, c->opts.write_limit);
    st_close(c);
    return 0;
}

Test(stream, slow_reader_backpressure_bounds_memory)
{
    st_run((weft_stream_opts){.write_high = 8192, .write_low = 2048, .write_limit = 16384},
           backpressure_main);
}

static int big_write_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    slow_reader r = {.c = c, .total = 3 << 20};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, slow_read_task, &r, &f), 0);
    unsigned char *big = malloc(r.total);
    fill_pattern(big, r.total);
    /* a small write, then one larger than the buffer (sent straight) */
    cr_assert_eq(weft_stream_write(c->s, big, 10), 10);
    cr_assert_eq(weft_stream_write(c->s, big + 10, r.total - 10), (int64_t)(r.total - 10));
    cr_assert_eq(weft_stream_flush(c->s), 0);
    end_and_check_reader(c, f, &r);
    free(big);
    st_close(c);
    return 0;
}

Test(stream, write_larger_than_the_buffer)
{
    st_run((weft_stream_opts){0}, big_write_main);
}

static int direct_write_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    slow_reader r = {.c = c, .total = 40110};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, slow_read_task, &r, &f), 0);
    unsigned char *p = malloc(r.total);
    fill_pattern(p, r.total);
    /* small (buffered), large behind it (copied: a send is in flight) */
    cr_assert_eq(weft_stream_write(c->s, p, 10), 10);
    cr_assert_eq(weft_stream_write(c->s, p + 10, 10000), 10000);
    cr_assert_eq(weft_stream_flush(c->s), 0);
    /* large on an empty buffer: sent from p, taken by the kernel on return */
    cr_assert_eq(weft_stream_write(c->s, p + 10010, 10000), 10000);
    cr_assert_eq(weft_stream_write_buffered(c->s), 0, "the 10,000 bytes were not copied");
    cr_assert_eq(weft_stream_write(c->s, p + 20010, 100), 100);
    cr_assert_eq(weft_stream_write(c->s, p + 20110, 20000), 20000);
    end_and_check_reader(c, f, &r);
    free(p);
    st_close(c);
    return 0;
}

Test(stream, large_writes_on_an_empty_buffer_skip_the_copy)
{
    st_run((weft_stream_opts){0}, direct_write_main);
}

static int reset_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    struct linger lg = {1, 0};
    net_setsockopt(c->raw, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    weft_close(c->loop, c->raw);
    c->raw = -1;
    weft_sleep(c->loop, 5 * MS);
    /* Writes fail once the background send sees the reset; the error sticks. */
    char buf[1024] = {0};
    int64_t rc = 0;
    for (int i = 0; i < 1000 && rc >= 0; i++) {
        rc = weft_stream_write(c->s, buf, sizeof buf);
        if (rc >= 0)
            rc = weft_stream_drain(c->s);
        if (rc >= 0)
            weft_yield(c->loop);
    }
    cr_assert(rc == -ECONNRESET || rc == -EPIPE, "got %s", weft_strerror((int)rc));
    cr_assert_eq(weft_stream_write(c->s, buf, 1), rc);
    cr_assert_eq(weft_stream_flush(c->s), rc);
    int64_t r = weft_stream_read(c->s, buf, sizeof buf);
    cr_assert(r == -ECONNRESET || r == 0, "read after reset: %s", weft_strerror((int)r));
    st_close(c);
    return 0;
}

Test(stream, peer_reset_fails_writes_for_good)
{
    st_run((weft_stream_opts){0}, reset_main);
}

/* ------------------------------------------------------------------ */
/* concurrency and bad input                                           */

static int reader_task(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    char b[4];
    return (int)weft_stream_read(c->s, b, sizeof b);
}

static int busy_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, reader_task, c, &f), 0);
    weft_yield(c->loop); /* the reader parks in its receive */
    char b[4];
    const char *line;
    cr_assert_eq(weft_stream_read(c->s, b, sizeof b), -EBUSY);
    cr_assert_eq(weft_stream_readline(c->s, &line), -EBUSY);
    cr_assert_eq(weft_stream_fill(c->s), -EBUSY);
    peer_send(c, "data");
    intptr_t r;
    cr_assert_eq(weft_await(f, &r), 0);
    weft_future_unref(f);
    st_close(c);
    return 0;
}

Test(stream, one_reader_at_a_time)
{
    st_run((weft_stream_opts){0}, busy_main);
}

static int refused_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    weft_stream *s = NULL;
    weft_addr a;
    int bound = refusing_addr(&a);
    cr_assert_eq(weft_open_connection(c->loop, &a, NULL, 1000 * MS, &s), -ECONNREFUSED);
    test_close(bound);
    cr_assert_null(s);
    cr_assert_eq(weft_open_connection(c->loop, NULL, NULL, 0, &s), -EINVAL);
    return 0;
}

Test(stream, open_connection_refused)
{
    st_run((weft_stream_opts){0}, refused_main);
}

Test(stream, bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_stream *s = NULL;
    int sv[2];
    test_unix_pair(sv); /* a loopback TCP pair on Windows */
    cr_assert_eq(weft_stream_new(NULL, -1, NULL, &s), -EINVAL);
    cr_assert_eq(weft_stream_new(loop, -1, NULL, &s), -EINVAL);
    weft_stream_opts bad = {.write_high = 100, .write_low = 200};
    cr_assert_eq(weft_stream_new(loop, sv[0], &bad, &s), -EINVAL); /* fd closed */
    bad = (weft_stream_opts){.write_high = 100, .write_limit = 50};
    cr_assert_eq(weft_stream_new(loop, sv[1], &bad, &s), -EINVAL);
    test_unix_pair(sv); /* a loopback TCP pair on Windows */
    cr_assert_eq(weft_stream_new(loop, sv[0], NULL, &s), 0);
    char b[4];
    const char *line;
    /* task-only calls outside a task */
    cr_assert_eq(weft_stream_read(s, b, 4), -EPERM);
    cr_assert_eq(weft_stream_readline(s, &line), -EPERM);
    cr_assert_eq(weft_stream_write(s, "x", 1), -EPERM);
    cr_assert_eq(weft_stream_drain(s), -EPERM);
    cr_assert_eq(weft_stream_flush(s), -EPERM);
    /* NULL everywhere */
    cr_assert_eq(weft_stream_read(NULL, b, 4), -EINVAL);
    cr_assert_eq(weft_stream_readexactly(NULL, b, 4), -EINVAL);
    cr_assert_eq(weft_stream_readuntil(NULL, "\n", 1, &line), -EINVAL);
    cr_assert_eq(weft_stream_readline(NULL, &line), -EINVAL);
    cr_assert_eq(weft_stream_fill(NULL), -EINVAL);
    cr_assert_eq(weft_stream_consume(NULL, 0), -EINVAL);
    cr_assert_eq(weft_stream_write(NULL, "x", 1), -EINVAL);
    cr_assert_eq(weft_stream_drain(NULL), -EINVAL);
    cr_assert_eq(weft_stream_flush(NULL), -EINVAL);
    cr_assert_eq(weft_stream_write_eof(NULL), -EINVAL);
    cr_assert_eq(weft_stream_close(NULL), -EINVAL);
    cr_assert_eq(weft_stream_fd(NULL), -EINVAL);
    cr_assert_null(weft_stream_loop(NULL));
    cr_assert_eq(weft_stream_write_buffered(NULL), 0);
    size_t len = 99;
    cr_assert_null(weft_stream_peek(NULL, &len));
    cr_assert_eq(len, 0);
    cr_assert_eq(weft_stream_at_eof(NULL), 0);
    cr_assert_eq(weft_stream_fd(s), sv[0]);
    cr_assert_eq(weft_stream_loop(s), loop);
    cr_assert_eq(weft_stream_close(s), 0); /* from outside a task */
    test_run(loop);
    net_close(sv[1]);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------ */
/* Buffers start small, at first use, and grow up to their caps. */

static int long_line_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    /* A 40,000-byte line: longer than the first read buffer, within the
     * 64 KiB cap, so the buffer grows and hands the line out whole. */
    size_t n = 40000;
    unsigned char *line = malloc(n);
    fill_pattern(line, n - 1);
    line[n - 1] = '\n';
    for (size_t i = 0; i < n - 1; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    cr_assert_eq(weft_send_all(c->loop, c->raw, line, n), (int64_t)n);
    const char *got;
    cr_assert_eq(weft_stream_readline(c->s, &got), (int64_t)n);
    cr_assert_eq(memcmp(got, line, n), 0);
    free(line);
    st_close(c);
    return 0;
}

Test(stream, read_buffer_grows_to_the_limit)
{
    st_run((weft_stream_opts){0}, long_line_main);
}

static int grow_while_sending_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    int small = 4096;
    net_setsockopt(weft_stream_fd(c->s), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    net_setsockopt(c->raw, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    /* The peer does not read yet: the background send parks on a full
     * socket while writes keep coming, so the buffer grows under a send
     * in flight (the send keeps reading the old copy). */
    size_t total = 100000, chunk = 5000;
    unsigned char *data = malloc(total);
    fill_pattern(data, total);
    for (size_t off = 0; off < total; off += chunk)
        cr_assert_eq(weft_stream_write(c->s, data + off, chunk), (int64_t)chunk);
    cr_assert_gt(weft_stream_write_buffered(c->s), 8192, "the buffer never grew");
    cr_assert_leq(weft_stream_write_buffered(c->s), 128 * 1024);
    slow_reader r = {.c = c, .total = total};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, slow_read_task, &r, &f), 0);
    end_and_check_reader(c, f, &r);
    free(data);
    st_close(c);
    return 0;
}

Test(stream, write_buffer_grows_while_a_send_is_in_flight)
{
    st_run((weft_stream_opts){0}, grow_while_sending_main);
}

static int idle_reader_task(void *arg, intptr_t *result)
{
    st_ctx *c = arg;
    char b[8];
    *result = (intptr_t)weft_stream_read(c->s, b, sizeof b);
    return 0;
}

static int cancel_first_read_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    /* Cancel a reader parked in the stream's very first receive (the
     * wait for readability that comes before the buffer): the stream
     * stays usable. */
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, idle_reader_task, c, &f), 0);
    weft_sleep(c->loop, 2 * MS);
    cr_assert_eq(weft_future_cancel(f), 0);
    intptr_t r = 0;
    cr_assert_eq(weft_await(f, &r), 0);
    cr_assert_eq(r, -ECANCELED);
    weft_future_unref(f);
    peer_send(c, "late");
    char b[8];
    cr_assert_eq(weft_stream_read(c->s, b, sizeof b), 4);
    cr_assert_eq(memcmp(b, "late", 4), 0);
    st_close(c);
    return 0;
}

Test(stream, cancel_during_the_first_read)
{
    st_run((weft_stream_opts){0}, cancel_first_read_main);
}

static int fill_grows_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    st_open(c);
    /* A peer that sends more than fits at once: receives that fill the
     * whole room make the buffer double, so later ones take more than the
     * first 4 KiB (an echo out of the buffer moves 16 KiB messages in one
     * piece, not four). */
    size_t total = 256 * 1024;
    unsigned char *data = malloc(total);
    fill_pattern(data, total);
    sender_job job = {.c = c, .p = data, .n = total};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, st_sender, &job, &f), 0);
    weft_sleep(c->loop, 5 * MS); /* let the peer's bytes pile up */
    size_t got = 0, biggest = 0;
    while (got < total) {
        int64_t n = weft_stream_fill(c->s);
        cr_assert_gt(n, 0);
        size_t len;
        const char *p = weft_stream_peek(c->s, &len);
        cr_assert_eq(memcmp(p, data + got, len), 0, "bytes at %llu", (unsigned long long)got);
        got += len;
        if (len > biggest)
            biggest = len;
        cr_assert_eq(weft_stream_consume(c->s, len), 0);
    }
    cr_assert_gt(biggest, 4096, "the read buffer never grew");
    cr_assert_leq(biggest, 64 * 1024);
    cr_assert_eq(weft_await(f, NULL), 0);
    weft_future_unref(f);
    free(data);
    st_close(c);
    return 0;
}

Test(stream, read_buffer_grows_when_receives_fill_it)
{
    st_run((weft_stream_opts){0}, fill_grows_main);
}

/* The stream buffers' allocator (sys/bigbuf.h): growing from malloc's
 * sizes to mapped pages and on keeps every byte, and a large buffer is
 * writable to its last byte; with and without a cache. */
static void grow_and_check(weft__bigbuf_cache *c)
{
    size_t size = 0;
    unsigned char *p = NULL;
    for (size_t n = 4096; n <= 4 * WEFT__BIGBUF_MIN; n *= 2) {
        unsigned char *q = weft__bigbuf_resize(c, p, size, n);
        cr_assert_not_null(q, "resize to %zu", n);
        for (size_t i = 0; i < size; i++)
            cr_assert_eq(q[i], (unsigned char)(i * 7 + 1), "byte %zu after %zu -> %zu", i, size, n);
        for (size_t i = size; i < n; i++)
            q[i] = (unsigned char)(i * 7 + 1);
        p = q;
        size = n;
    }
    /* Shrinking back under the threshold keeps the head. */
    unsigned char *q = weft__bigbuf_resize(c, p, size, 4096);
    cr_assert_not_null(q);
    for (size_t i = 0; i < 4096; i++)
        cr_assert_eq(q[i], (unsigned char)(i * 7 + 1));
    weft__bigbuf_free(c, q, 4096);
    weft__bigbuf_free(c, NULL, 0);
}

Test(stream, big_buffers_keep_their_bytes_across_the_threshold)
{
    grow_and_check(NULL);
    weft__bigbuf_cache c = {0};
    grow_and_check(&c);
    grow_and_check(&c); /* now from the cache */
    weft__bigbuf_cache_drain(&c);
    cr_assert_eq(c.bytes, 0);
}

/* A freed large buffer is the next one of its size; the cache keeps at
 * most its cap, and sizes it does not cache go straight back. */
Test(stream, big_buffer_cache_reuses_and_is_capped)
{
    weft__bigbuf_cache c = {0};
    const size_t n = 2 * WEFT__BIGBUF_MIN;
    void *a = weft__bigbuf_resize(&c, NULL, 0, n);
    cr_assert_not_null(a);
    weft__bigbuf_free(&c, a, n);
    cr_assert_eq(c.bytes, n);
    cr_assert_eq(weft__bigbuf_resize(&c, NULL, 0, n), a, "the freed buffer was not reused");
    cr_assert_eq(c.bytes, 0);
    weft__bigbuf_free(&c, a, n);

    size_t count = WEFT__BIGBUF_CACHE_MAX / n + 4;
    void **v = calloc(count, sizeof *v);
    for (size_t i = 0; i < count; i++)
        cr_assert_not_null(v[i] = weft__bigbuf_resize(&c, NULL, 0, n));
    for (size_t i = 0; i < count; i++)
        weft__bigbuf_free(&c, v[i], n);
    cr_assert_eq(c.bytes, WEFT__BIGBUF_CACHE_MAX, "kept %zu", c.bytes);
    size_t odd = WEFT__BIGBUF_MIN * 3; /* a limit that is not a power of two */
    void *o = weft__bigbuf_resize(&c, NULL, 0, odd);
    cr_assert_not_null(o);
    weft__bigbuf_free(&c, o, odd);
    cr_assert_eq(c.bytes, WEFT__BIGBUF_CACHE_MAX);
    weft__bigbuf_cache_drain(&c);
    cr_assert_eq(c.bytes, 0);
    for (int k = 0; k < WEFT__BIGBUF_CLASSES; k++)
        cr_assert_null(c.free[k]);
    free(v);
}

/* A closed stream's large buffer goes to its loop's cache, and the next
 * stream that grows as large takes it from there: the stream allocates
 * through sys/bigbuf.h. */
static int read_long_line(st_ctx *c, size_t n)
{
    unsigned char *line = malloc(n);
    memset(line, 'x', n - 1);
    line[n - 1] = '\n';
    cr_assert_eq(weft_send_all(c->loop, c->raw, line, n), (int64_t)n);
    const char *got;
    int64_t r = weft_stream_readline(c->s, &got);
    free(line);
    return r == (int64_t)n;
}

static int cache_main(void *arg, intptr_t *result)
{
    (void)result;
    st_ctx *c = arg;
    const weft__bigbuf_cache *cache = weft__loop_bigbufs(c->loop);
    size_t before = cache->bytes;
    st_open(c);
    cr_assert(read_long_line(c, 40000)); /* the read buffer grows 32 KiB -> 64 KiB */
    /* the 32 KiB one went to the cache when it was outgrown */
    cr_assert_eq(cache->bytes, before + 32 * 1024, "cached %zu", cache->bytes);
    st_close(c);
    size_t closed = cache->bytes;
    cr_assert_eq(closed, before + 96 * 1024, "cached %zu", closed);
    st_open(c);
    cr_assert(read_long_line(c, 40000));
    /* Both sizes came from the cache; the outgrown 32 KiB went back. */
    cr_assert_eq(cache->bytes, closed - 64 * 1024, "cached %zu", cache->bytes);
    st_close(c);
    return 0;
}

Test(stream, closed_streams_large_buffers_go_to_the_loops_cache)
{
    st_run((weft_stream_opts){0}, cache_main);
}
