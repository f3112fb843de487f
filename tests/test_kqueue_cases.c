/* Loop-level suite: the traps other kqueue users fell into (libuv, libxev,
 * mio, redis, libkqueue; docs in ../shared/notes/kqueue.md, section 4),
 * as weft ops against real sockets and pipes. They were collected for the
 * kqueue backend but hold for every backend, so the suite runs on each
 * (WEFT_BACKEND): fd reuse after close, a reader and a writer parked on one
 * fd, EOF after buffered data whichever side registered first, reset,
 * refused connect, more ready fds than event-list slots, wake-ups, a bad fd,
 * and 0 / sub-millisecond / huge / interrupted timeouts. */
#include "common.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

TestSuite(kqcases, .timeout = 30);

#define MS 1000000LL

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A connected loopback TCP pair made with blocking calls (no loop
 * involved), both ends non-blocking afterwards. sndbuf > 0 shrinks the
 * client's send buffer and the server's receive buffer. */
static void tcp_pair(int *client, int *server, int sndbuf)
{
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    int cfd = test_tcp_socket_blocking();
    if (sndbuf > 0) {
        cr_assert_eq(setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, (void *)&sndbuf, sizeof sndbuf), 0);
        cr_assert_eq(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, (void *)&sndbuf, sizeof sndbuf), 0);
    }
    cr_assert_eq(test_connect(cfd, &addr), 0);
    int sfd;
    do
        sfd = test_accept(lfd);
    while (sfd < 0 && test_sock_errno() == EAGAIN);
    cr_assert_geq(sfd, 0);
    test_close(lfd);
    test_nonblock(cfd);
    test_nonblock(sfd);
    *client = cfd;
    *server = sfd;
}

/* Write to fd until the kernel refuses more; returns the bytes written. */
static size_t fill(int fd)
{
    static const char chunk[4096];
    size_t total = 0;
    for (;;) {
        long n = test_send(fd, chunk, sizeof chunk);
        if (n < 0) {
            int e = test_sock_errno();
            cr_assert(e == EAGAIN || e == EWOULDBLOCK, "fill: %s", strerror(e));
            return total;
        }
        total += (size_t)n;
    }
}

/* Fill fd's send buffer, then park an 8 KiB send behind it. The kernel can
 * free send space after fill() saw EAGAIN (a delayed ACK, a receive buffer
 * that grew; valgrind's slowness makes it likely): the send then completes
 * at once, and the buffer is filled again until one stays parked. */
static void park_send(weft_loop *loop, weft_op *snd, int fd, test_rec *rec)
{
    static char big[8192];
    for (int tries = 0;; tries++) {
        cr_assert_lt(tries, 50, "no send stayed parked behind a full buffer");
        fill(fd);
        *rec = (test_rec){0};
        weft_op_prep_send(snd, fd, big, sizeof big, 0, test_on_done, rec);
        cr_assert_eq(weft_op_submit(loop, snd), 0);
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
        if (!rec->calls)
            return;
        usleep(10000);
    }
}

/* Read and drop what fd holds now (non-blocking). */
static size_t drain(int fd)
{
    char buf[65536];
    size_t total = 0;
    long n;
    while ((n = test_recv(fd, buf, sizeof buf)) > 0)
        total += (size_t)n;
    return total;
}

/* Run one loop iteration at a time until *flag is set (at most ~5 s). */
static void run_until(weft_loop *loop, const int *flag)
{
    int64_t end = now_ns(CLOCK_MONOTONIC) + 5000 * MS;
    while (!*flag) {
        cr_assert_lt(now_ns(CLOCK_MONOTONIC), end, "gave up waiting");
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
}

static void set_flag(void *arg)
{
    (*(int *)arg)++;
}

/* ---- 1. an fd number reused after close ---- */

#ifdef _WIN32
/* A loopback pair whose sv[0] is the first handle made (test_unix_pair
 * makes its listener first). */
static void pair_made_first(int sv[2])
{
    int c = test_tcp_socket_blocking();
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    cr_assert_eq(test_connect(c, &addr), 0);
    int a;
    do
        a = test_accept(lfd);
    while (a < 0 && test_sock_errno() == EAGAIN);
    cr_assert_geq(a, 0);
    test_close(lfd);
    test_nonblock(c);
    test_nonblock(a);
    sv[0] = c;
    sv[1] = a;
}

/* The same, with sv[0] on the handle value want if the system hands out
 * the lowest free value first (wine does): sockets fill the lower free
 * values until one gets want, which is freed again for the pair. */
static void pair_on_value(int sv[2], int want)
{
    enum { MAX_FILL = 256 };
    int fill[MAX_FILL], n = 0;
    while (n < MAX_FILL) {
        int f = test_tcp_socket_blocking();
        if (f == want) {
            test_close(f);
            break;
        }
        fill[n++] = f;
    }
    pair_made_first(sv);
    while (n > 0)
        test_close(fill[--n]);
}
#endif

/* libkqueue keeps knotes across close(): without the backend's EV_DELETE
 * a new socket with the same number never got an event (libuv#968). */
static void reuse_after(int by_close_op)
{
    weft_loop *loop = test_loop_new();
    int a[2], b[2];
    test_unix_pair(a);
    char buf[8] = {0};
    weft_op rd, cl;
    test_rec d = {0}, dc = {0};
    weft_op_prep_recv(&rd, a[0], buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1); /* parked: registered */
    int old = a[0];
    if (by_close_op) {
        weft_op_prep_close(&cl, a[0], test_on_done, &dc);
        cr_assert_eq(weft_op_submit(loop, &cl), 0);
        test_run(loop);
        cr_assert_eq(dc.calls, 1);
        cr_assert_eq(dc.result, 0);
    } else {
        cr_assert_eq(weft_loop_forget_fd(loop, a[0]), 0);
        cr_assert_eq(test_close(a[0]), 0);
        test_run(loop);
    }
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.result, -ECANCELED);
#ifndef _WIN32
    test_unix_pair(b);
    if (b[0] != old) { /* make sure the new socket has the old number */
        cr_assert_eq(dup2(b[0], old), old);
        close(b[0]);
        b[0] = old;
    }
#else
    /* No dup2 for sockets: place the new socket on the old value by the
     * order handles are handed out. */
    pair_on_value(b, old);
    if (b[0] != old)
        cr_log_info("the new socket got %d, not the old %d: reuse not exercised", b[0], old);
#endif
    d = (test_rec){0};
    weft_op_prep_recv(&rd, b[0], buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(d.calls, 0);
    cr_assert_eq(test_write(b[1], "again", 5), 5);
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.result, 5);
    cr_assert_str_eq(buf, "again");
    test_close(a[1]);
    test_close(b[0]);
    test_close(b[1]);
    test_loop_free(loop);
}

Test(kqcases, fd_reused_after_close_op_gets_events)
{
    reuse_after(1);
}

Test(kqcases, fd_reused_after_forget_and_close_gets_events)
{
    reuse_after(0);
}

Test(kqcases, forgetting_an_unknown_or_forgotten_fd_succeeds)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_loop_forget_fd(loop, sv[0]), 0); /* never seen */
    char c;
    weft_op rd;
    test_rec d = {0};
    weft_op_prep_recv(&rd, sv[0], &c, 1, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_forget_fd(loop, sv[0]), 0);
    cr_assert_eq(weft_loop_forget_fd(loop, sv[0]), 0); /* already gone */
    test_run(loop);
    cr_assert_eq(d.result, -ECANCELED);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

/* ---- 2. a reader and a writer parked on one fd ---- */

/* One registration serves both directions: a per-op udata breaks this
 * (libxev#125). Two queued recvs complete in FIFO order. */
Test(kqcases, reader_and_writer_parked_on_one_fd)
{
    weft_loop *loop = test_loop_new();
    int c, s;
    tcp_pair(&c, &s, 4096);
    size_t filled = fill(c);
    cr_assert_gt(filled, 0);
    static char big[8192];
    char r1 = 0, r2 = 0;
    int clock = 0;
    weft_op snd, rv1, rv2;
    test_rec ds = {.clock = &clock}, d1 = {.clock = &clock}, d2 = {.clock = &clock};
    weft_op_prep_send(&snd, c, big, sizeof big, 0, test_on_done, &ds);
    weft_op_prep_recv(&rv1, c, &r1, 1, 0, test_on_done, &d1);
    weft_op_prep_recv(&rv2, c, &r2, 1, 0, test_on_done, &d2);
    cr_assert_eq(weft_op_submit(loop, &snd), 0);
    cr_assert_eq(weft_op_submit(loop, &rv1), 0);
    cr_assert_eq(weft_op_submit(loop, &rv2), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(ds.calls + d1.calls + d2.calls, 0, "nothing is ready yet");
    /* Reading side first: both recvs, in order, while the send still waits. */
    cr_assert_eq(test_send(s, "xy", 2), 2);
    run_until(loop, &d2.calls);
    cr_assert_eq(d1.result, 1);
    cr_assert_eq(d2.result, 1);
    cr_assert_eq(r1, 'x');
    cr_assert_eq(r2, 'y');
    cr_assert_lt(d1.order, d2.order);
    cr_assert_eq(ds.calls, 0);
    /* Then the writing side: the peer drains, the send goes out. */
    int64_t end = now_ns(CLOCK_MONOTONIC) + 5000 * MS;
    while (!ds.calls) {
        cr_assert_lt(now_ns(CLOCK_MONOTONIC), end, "send never completed");
        drain(s);
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    }
    cr_assert_gt(ds.result, 0, "send: %s", test_err(ds.result));
    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

/* ---- 3. EOF after buffered data, whichever registered first ---- */

/* libkqueue drops EV_EOF when READ was registered before WRITE; a backend
 * that trusted EV_EOF, or a short read that "proved" the input empty, would
 * then hang on the second recv. */
enum { EOF_BEFORE_REGISTER, EOF_READER_PARKED, EOF_WRITER_PARKED_FIRST };

static void eof_after_data(int order)
{
    weft_loop *loop = test_loop_new();
    int c, s;
    tcp_pair(&c, &s, 4096);
    weft_op snd, rv;
    test_rec ds = {0}, d = {0};
    char buf[100];
    if (order == EOF_WRITER_PARKED_FIRST)
        park_send(loop, &snd, s, &ds);
    if (order == EOF_BEFORE_REGISTER) {
        cr_assert_eq(test_send(c, "z", 1), 1);
        cr_assert_eq(shutdown(c, SHUT_WR), 0);
        usleep(10000);
    }
    weft_op_prep_recv(&rv, s, buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rv), 0);
    if (order != EOF_BEFORE_REGISTER) {
        cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
        cr_assert_eq(d.calls, 0);
        cr_assert_eq(test_send(c, "z", 1), 1);
        cr_assert_eq(shutdown(c, SHUT_WR), 0);
    }
    run_until(loop, &d.calls);
    cr_assert_eq(d.result, 1, "first recv: %lld", (long long)d.result);
    cr_assert_eq(buf[0], 'z');
    d = (test_rec){0};
    weft_op_prep_recv(&rv, s, buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rv), 0);
    run_until(loop, &d.calls);
    cr_assert_eq(d.result, 0, "end of stream: %lld", (long long)d.result);
    if (order == EOF_WRITER_PARKED_FIRST) {
        /* The peer never reads, but its buffers may still grow (io_uring
         * then sends part): either way the send ends cleanly. */
        if (!ds.calls)
            cr_assert_eq(weft_op_cancel(loop, &snd), 0);
        test_run(loop);
        cr_assert(ds.result == -ECANCELED || ds.result > 0, "send: %lld", (long long)ds.result);
    }
    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

Test(kqcases, eof_after_data_that_came_before_registration)
{
    eof_after_data(EOF_BEFORE_REGISTER);
}

Test(kqcases, eof_after_data_with_the_reader_parked)
{
    eof_after_data(EOF_READER_PARKED);
}

Test(kqcases, eof_after_data_with_a_writer_parked_first)
{
    eof_after_data(EOF_WRITER_PARKED_FIRST);
}

/* ---- 4. reset, refused connect ---- */

/* With only a timer left, one blocking iteration ends on the timer: no
 * leftover event makes the loop spin. */
static void assert_quiet(weft_loop *loop)
{
    int fired = 0;
    weft_handle h = {0};
    int64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID), t0 = now_ns(CLOCK_MONOTONIC);
    weft_loop_update_time(loop); /* its cached clock may lag (slow runs, valgrind) */
    cr_assert_eq(weft_call_later(loop, &h, 50 * MS, set_flag, &fired), 0);
    test_run(loop);
    int64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0, wall = now_ns(CLOCK_MONOTONIC) - t0;
    cr_assert_eq(fired, 1);
    cr_assert_geq(wall, 45 * MS);
    cr_assert_lt(cpu, 25 * MS, "the loop spun: %lld ns of CPU in %lld ns", (long long)cpu,
                 (long long)wall);
}

static void reset_by(int peer)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    cr_assert_eq(setsockopt(peer, SOL_SOCKET, SO_LINGER, (void *)&lg, sizeof lg), 0);
    cr_assert_eq(test_close(peer), 0);
}

Test(kqcases, reset_fails_a_parked_recv_without_spinning)
{
    weft_loop *loop = test_loop_new();
    int c, s;
    tcp_pair(&c, &s, 0);
    char buf[16];
    weft_op rv;
    test_rec d = {0};
    weft_op_prep_recv(&rv, s, buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rv), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    reset_by(c);
    run_until(loop, &d.calls);
    cr_assert_eq(d.result, -ECONNRESET, "recv: %s", test_err(d.result));
    /* The socket is dead: later calls fail or read end of stream, at once. */
    d = (test_rec){0};
    weft_op_prep_recv(&rv, s, buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rv), 0);
    run_until(loop, &d.calls);
    cr_assert_leq(d.result, 0);
    assert_quiet(loop);
    test_close(s);
    test_loop_free(loop);
}

/* Data that came just before the reset is still read first (a backend
 * that failed the recv on the event's error would lose it). */
Test(kqcases, data_before_a_reset_is_read_first)
{
    weft_loop *loop = test_loop_new();
    int c, s;
    tcp_pair(&c, &s, 0);
    char buf[16] = {0};
    weft_op rv;
    test_rec d = {0};
    weft_op_prep_recv(&rv, s, buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rv), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(test_send(c, "abc", 3), 3);
    usleep(20000); /* the data lands before the reset */
    reset_by(c);
    usleep(20000);
    run_until(loop, &d.calls);
    cr_assert_eq(d.result, 3, "recv: %lld", (long long)d.result);
    cr_assert_str_eq(buf, "abc");
    test_close(s);
    test_loop_free(loop);
}

Test(kqcases, reset_fails_a_parked_send)
{
    weft_loop *loop = test_loop_new();
    int c, s;
    tcp_pair(&c, &s, 4096);
    weft_op snd;
    test_rec d;
    park_send(loop, &snd, c, &d);
    reset_by(s);
    run_until(loop, &d.calls);
    cr_assert(d.result == -ECONNRESET || d.result == -EPIPE, "send: %s",
              weft_strerror((int)d.result));
    assert_quiet(loop);
    test_close(c);
    test_loop_free(loop);
}

/* A refused connect reports ECONNREFUSED: libkqueue takes the socket error
 * (SO_ERROR) into the event's fflags and clears it. */
Test(kqcases, refused_connect_then_a_good_one_on_the_same_loop)
{
    weft_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int bound = test_tcp_refusing(&addr); /* bound, never listening */
    int fd = test_tcp_socket();
    weft_op con;
    test_rec d = {0};
    weft_op_prep_connect(&con, fd, &addr, sizeof addr, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &con), 0);
    run_until(loop, &d.calls);
    cr_assert_eq(d.result, -ECONNREFUSED, "connect: %s", weft_strerror((int)d.result));
    cr_assert_eq(weft_loop_forget_fd(loop, fd), 0);
    test_close(fd);
    test_close(bound);
    assert_quiet(loop);

    int lfd = test_tcp_listener(&addr);
    fd = test_tcp_socket();
    d = (test_rec){0};
    weft_op_prep_connect(&con, fd, &addr, sizeof addr, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &con), 0);
    run_until(loop, &d.calls);
    cr_assert_eq(d.result, 0, "connect: %s", weft_strerror((int)d.result));
    test_close(fd);
    test_close(lfd);
    test_loop_free(loop);
}

/* A pipe's write end learns that the reader went away: EPIPE, no hang. */
Test(kqcases, parked_pipe_write_fails_when_the_reader_closes)
{
#ifdef _WIN32
    cr_skip_test("POSIX only: ops take sockets on Windows, and a pipe is no socket there");
#else
    weft_loop *loop = test_loop_new();
    int p[2];
    cr_assert_eq(pipe(p), 0);
    test_nonblock(p[1]);
    char chunk[4096] = {0};
    while (write(p[1], chunk, sizeof chunk) > 0) {
    }
    weft_op wr;
    test_rec d = {0};
    weft_op_prep_send(&wr, p[1], chunk, sizeof chunk, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(d.calls, 0);
    close(p[0]);
    run_until(loop, &d.calls);
    cr_assert_eq(d.result, -EPIPE, "write: %s", weft_strerror((int)d.result));
    close(p[1]);
    test_loop_free(loop);
#endif
}

/* ---- 5. more ready fds than event-list slots ---- */

/* libkqueue drops what does not fit in the event list (libkqueue#89) and
 * caps a list at 512 entries; every pair here is readable and writable at
 * once, 2 events each, over that cap. */
Test(kqcases, more_ready_fds_than_event_slots, .timeout = 60)
{
    int limit = test_raise_nofile(4096);
    int npairs = 600;
    if (limit < 2 * npairs + 64)
        npairs = (limit - 64) / 2;
    cr_assert_gt(npairs, 100, "RLIMIT_NOFILE %d is too low", limit);
    weft_loop *loop = test_loop_new();
    int(*sv)[2] = calloc((size_t)npairs, sizeof *sv);
    weft_op *ops = calloc((size_t)npairs, sizeof *ops);
    test_rec *d = calloc((size_t)npairs, sizeof *d);
    char *bufs = calloc((size_t)npairs, 4);
    cr_assert(sv && ops && d && bufs);
    for (int i = 0; i < npairs; i++) {
        test_unix_pair(sv[i]);
        weft_op_prep_recv(&ops[i], sv[i][0], bufs + 4 * i, 4, 0, test_on_done, &d[i]);
        cr_assert_eq(weft_op_submit(loop, &ops[i]), 0);
    }
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    for (int i = 0; i < npairs; i++)
        cr_assert_eq(test_write(sv[i][1], "data", 4), 4);
    test_run(loop);
    for (int i = 0; i < npairs; i++) {
        cr_assert_eq(d[i].calls, 1, "recv %d of %d never completed", i, npairs);
        cr_assert_eq(d[i].result, 4);
    }
    /* Again, now that every fd is registered. */
    for (int i = 0; i < npairs; i++) {
        d[i] = (test_rec){0};
        cr_assert_eq(weft_op_submit(loop, &ops[i]), 0);
    }
    for (int i = 0; i < npairs; i++)
        cr_assert_eq(test_write(sv[i][1], "more", 4), 4);
    test_run(loop);
    for (int i = 0; i < npairs; i++) {
        cr_assert_eq(d[i].result, 4, "recv %d: %lld", i, (long long)d[i].result);
        cr_assert_eq(memcmp(bufs + 4 * i, "more", 4), 0);
        test_close(sv[i][0]);
        test_close(sv[i][1]);
    }
    free(sv);
    free(ops);
    free(d);
    free(bufs);
    test_loop_free(loop);
}

/* Many connections pending before the accepts: all are accepted, though
 * libkqueue reports a listener's backlog as 1. */
Test(kqcases, accept_takes_every_pending_connection)
{
    enum { N = 40 };
    weft_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    weft_op acc[N];
    test_rec d[N] = {{0}};
    for (int i = 0; i < N; i++) {
        weft_op_prep_accept(&acc[i], lfd, NULL, 0, test_on_done, &d[i]);
        cr_assert_eq(weft_op_submit(loop, &acc[i]), 0);
    }
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    int cl[N];
    for (int i = 0; i < N; i++) {
        cl[i] = test_tcp_socket_blocking();
        cr_assert_eq(test_connect(cl[i], &addr), 0);
    }
    test_run(loop);
    for (int i = 0; i < N; i++) {
        cr_assert_geq(d[i].result, 0, "accept %d: %s", i, weft_strerror((int)d[i].result));
        test_close((int)d[i].result);
        test_close(cl[i]);
    }
    test_close(lfd);
    test_loop_free(loop);
}

/* ---- 6. wake-ups from other threads ---- */

typedef struct {
    weft_loop *loop;
    int delay_ms;
    int per_thread;
    weft_handle *handles;
    int *count;
} waker;

static void *waker_main(void *arg)
{
    waker *w = arg;
    if (w->delay_ms)
        usleep((useconds_t)w->delay_ms * 1000);
    for (int i = 0; i < w->per_thread; i++)
        if (weft_call_soon_threadsafe(w->loop, &w->handles[i], set_flag, w->count) != 0)
            abort();
    return NULL;
}

/* Run blocking iterations until *count reaches want; wall time taken. */
static int64_t run_to_count(weft_loop *loop, const int *count, int want)
{
    int64_t t0 = now_ns(CLOCK_MONOTONIC), end = t0 + 5000 * MS;
    while (*count < want) {
        cr_assert_lt(now_ns(CLOCK_MONOTONIC), end, "only %d of %d callbacks ran", *count, want);
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
    return now_ns(CLOCK_MONOTONIC) - t0;
}

/* A wake-up before the loop blocks, one while it blocks, many from many
 * threads at once (coalesced by EVFILT_USER), then nothing: no spin. A
 * 10 s timer is pending throughout, so only a wake-up can end a wait. */
static void wake_cases(void)
{
    enum { THREADS = 8, EACH = 50 };
    weft_loop *loop = test_loop_new();
    weft_handle distant = {0};
    int distant_fired = 0, count = 0;
    cr_assert_eq(weft_call_later(loop, &distant, 10000 * MS, set_flag, &distant_fired), 0);
    static weft_handle hs[THREADS * EACH + 2];
    memset(hs, 0, sizeof hs);
    pthread_t t[THREADS];

    waker before = {.loop = loop, .per_thread = 1, .handles = &hs[0], .count = &count};
    cr_assert_eq(pthread_create(&t[0], NULL, waker_main, &before), 0);
    pthread_join(t[0], NULL);
    cr_assert_lt(run_to_count(loop, &count, 1), 2000 * MS);

    waker during = {
        .loop = loop, .delay_ms = 100, .per_thread = 1, .handles = &hs[1], .count = &count};
    cr_assert_eq(pthread_create(&t[0], NULL, waker_main, &during), 0);
    int64_t took = run_to_count(loop, &count, 2);
    pthread_join(t[0], NULL);
    cr_assert_geq(took, 50 * MS, "woke before the other thread asked");
    cr_assert_lt(took, 2000 * MS);

    waker many[THREADS];
    for (int i = 0; i < THREADS; i++) {
        many[i] = (waker){.loop = loop,
                          .delay_ms = 20,
                          .per_thread = EACH,
                          .handles = &hs[2 + i * EACH],
                          .count = &count};
        cr_assert_eq(pthread_create(&t[i], NULL, waker_main, &many[i]), 0);
    }
    run_to_count(loop, &count, 2 + THREADS * EACH);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(distant_fired, 0);
    cr_assert_eq(weft_handle_cancel(loop, &distant), 0);
    /* A wake-up still pending from the burst may end one wait early, not
     * more: then the loop sleeps quietly. */
    cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    assert_quiet(loop);
    test_loop_free(loop);
}

Test(kqcases, wake_before_while_and_after_blocking_from_many_threads)
{
    wake_cases();
}

/* kqueue's fallback where EVFILT_USER is missing: a pipe (forced here; the
 * other backends ignore the variable). */
Test(kqcases, wake_through_the_pipe_fallback)
{
    test_setenv("WEFT_KQUEUE_WAKE", "pipe");
    weft_loop *loop = test_loop_new();
    char info[256] = "";
    weft_loop_backend_info(loop, info, sizeof info);
    if (strcmp(weft_loop_backend_name(loop), "kqueue") == 0)
        cr_assert(strstr(info, "pipe wake-up"), "info: %s", info);
    test_loop_free(loop);
    wake_cases();
    test_unsetenv("WEFT_KQUEUE_WAKE");
}

/* ---- 7. a bad fd ---- */

/* An op on a descriptor that is not open fails with EBADF; nothing hangs
 * and the loop stays usable. */
Test(kqcases, ops_on_a_closed_fd_fail_with_ebadf)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    int bad = sv[0];
    test_close(sv[0]);
    char c;
    weft_op rv, po, sn;
    test_rec d1 = {0}, d2 = {0}, d3 = {0};
    weft_op_prep_recv(&rv, bad, &c, 1, 0, test_on_done, &d1);
    weft_op_prep_poll_in(&po, bad, test_on_done, &d2);
    weft_op_prep_send(&sn, 1 << 20, "x", 1, 0, test_on_done, &d3);
    cr_assert_eq(weft_op_submit(loop, &rv), 0);
    cr_assert_eq(weft_op_submit(loop, &po), 0);
    cr_assert_eq(weft_op_submit(loop, &sn), 0);
    test_run(loop);
    cr_assert_eq(d1.result, -EBADF, "recv: %s", test_err(d1.result));
    cr_assert_eq(d2.result, -EBADF, "poll: %s", test_err(d2.result));
    cr_assert_eq(d3.result, -EBADF, "send: %s", test_err(d3.result));
    /* Still fine afterwards. */
    int p[2];
    test_unix_pair(p);
    test_rec d = {0};
    weft_op_prep_recv(&rv, p[0], &c, 1, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rv), 0);
    cr_assert_eq(test_write(p[1], "k", 1), 1);
    test_run(loop);
    cr_assert_eq(d.result, 1);
    test_close(p[0]);
    test_close(p[1]);
    test_close(sv[1]);
    test_loop_free(loop);
}

/* ---- 8. timeouts: 0, under 1 ms, huge, interrupted ---- */

Test(kqcases, zero_timeout_never_blocks)
{
    weft_loop *loop = test_loop_new();
    weft_handle distant = {0};
    int fired = 0;
    cr_assert_eq(weft_call_later(loop, &distant, 10000 * MS, set_flag, &fired), 0);
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 100; i++)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    cr_assert_lt(now_ns(CLOCK_MONOTONIC) - t0, 500 * MS);
    weft_handle now = {0};
    cr_assert_eq(weft_call_later(loop, &now, 0, set_flag, &fired), 0);
    cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(fired, 1, "a 0 ns timer waits for nothing");
    cr_assert_eq(weft_handle_cancel(loop, &distant), 0);
    test_loop_free(loop);
}

Test(kqcases, sub_millisecond_timer_is_not_early)
{
    weft_loop *loop = test_loop_new();
    for (int i = 0; i < 20; i++) {
        int fired = 0;
        weft_handle h = {0};
        int64_t t0 = now_ns(CLOCK_MONOTONIC);
        weft_loop_update_time(loop);
        cr_assert_eq(weft_call_later(loop, &h, 300000, set_flag, &fired), 0); /* 0.3 ms */
        test_run(loop);
        int64_t took = now_ns(CLOCK_MONOTONIC) - t0;
        cr_assert_eq(fired, 1);
        cr_assert_geq(took, 300000, "fired after %lld ns", (long long)took);
        cr_assert_lt(took, 200 * MS);
    }
    test_loop_free(loop);
}

/* 4294968 s is where libkqueue's 1000 * tv_sec overflows an int into a
 * 705 ms wait: the backend clamps below 2^31 ms, so the loop sleeps until
 * the wake-up at 1 s instead of returning early. */
Test(kqcases, huge_timeout_does_not_wrap)
{
    weft_loop *loop = test_loop_new();
    weft_handle distant = {0};
    int fired = 0, count = 0;
    cr_assert_eq(weft_call_later(loop, &distant, 4294968LL * 1000 * MS, set_flag, &fired), 0);
    weft_handle h = {0};
    waker w = {.loop = loop, .delay_ms = 1000, .per_thread = 1, .handles = &h, .count = &count};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, waker_main, &w), 0);
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    int64_t took = now_ns(CLOCK_MONOTONIC) - t0;
    pthread_join(t, NULL);
    cr_assert_geq(took, 900 * MS, "the wait ended after %lld ms", (long long)(took / MS));
    run_to_count(loop, &count, 1);
    cr_assert_eq(fired, 0);
    cr_assert_eq(weft_handle_cancel(loop, &distant), 0);
    test_loop_free(loop);
}

#ifndef _WIN32
static void on_sigusr1(int sig)
{
    (void)sig;
}

typedef struct {
    pthread_t target;
} signaller;

static void *signal_main(void *arg)
{
    signaller *s = arg;
    usleep(50000);
    pthread_kill(s->target, SIGUSR1);
    return NULL;
}

#endif

/* A signal during the wait (EINTR) does not lose the timer or end the run. */
Test(kqcases, interrupted_wait_keeps_the_timer)
{
#ifdef _WIN32
    cr_skip_test("POSIX only: Windows has no signals to interrupt a wait (no EINTR)");
#else
    struct sigaction sa = {.sa_handler = on_sigusr1}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    weft_loop *loop = test_loop_new();
    int fired = 0;
    weft_handle h = {0};
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    weft_loop_update_time(loop);
    cr_assert_eq(weft_call_later(loop, &h, 200 * MS, set_flag, &fired), 0);
    signaller s = {.target = pthread_self()};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, signal_main, &s), 0);
    test_run(loop);
    int64_t took = now_ns(CLOCK_MONOTONIC) - t0;
    pthread_join(t, NULL);
    cr_assert_eq(fired, 1);
    cr_assert_geq(took, 190 * MS);
    test_loop_free(loop);
#endif
}
