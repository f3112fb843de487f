/* Loop-level suite: multishot accept and recv (weft/multi.h) on every
 * backend: io_uring's own multishot requests, the emulation elsewhere. */
#include "common.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

TestSuite(multi, .timeout = 60);

static void run_until(weft_loop *loop, const int *flag, int want)
{
    for (int i = 0; i < 1000 && *flag < want; i++)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
}

typedef struct {
    weft_loop *loop;
    int calls, finals, target, accepted;
    int64_t last;
    int fds[1100];
} acceptor;

static void on_accept(weft_multi *m, int64_t res, void *buf, int more)
{
    acceptor *a = m->data;
    cr_assert_null(buf);
    a->calls++;
    if (res >= 0)
        a->fds[a->accepted++] = (int)res;
    if (!more) {
        a->finals++;
        a->last = res;
    }
    if (a->accepted == a->target)
        weft_loop_stop(a->loop);
}

Test(multi, multishot_accept_of_a_thousand_connections)
{
    enum { N = 1000 };
    int limit = test_raise_nofile(2 * N + 100);
    if (limit < 2 * N + 64)
        cr_skip_test("RLIMIT_NOFILE %d too low", limit);
    weft_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    static acceptor a;
    a = (acceptor){.loop = loop, .target = N};
    static int clients[N];
    weft_multi m = {0};
    cr_assert_eq(weft_accept_multi(loop, &m, lfd, on_accept, &a), 0);
    cr_assert_eq(weft_accept_multi(loop, &m, lfd, on_accept, &a), -EBUSY);
    /* Connect in rounds, the loop accepting in between (the backlog is finite). */
    for (int i = 0; i < N; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int rc = connect(clients[i], (struct sockaddr *)&addr, sizeof addr);
        cr_assert(rc == 0 || errno == EINPROGRESS, "connect %d: %s", i, strerror(errno));
        if (i % 100 == 99)
            weft_loop_run(loop, WEFT_RUN_NOWAIT);
    }
    while (a.accepted < N)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(a.accepted, N);
    cr_assert_eq(a.finals, 0, "still accepting");
    for (int i = 0; i < N; i++) {
        cr_assert(fcntl(a.fds[i], F_GETFL) & O_NONBLOCK);
        close(a.fds[i]);
        close(clients[i]);
    }
    cr_assert_eq(weft_multi_cancel(loop, &m), 0);
    cr_assert_eq(weft_multi_cancel(loop, &m), -EALREADY);
    test_run(loop); /* a running multishot request keeps the loop going until its last call */
    cr_assert_eq(a.finals, 1);
    cr_assert_eq(a.last, -ECANCELED);
    close(lfd);
    test_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    char data[4096];
    size_t got;
    int calls, finals, hold, nheld, errors;
    int64_t last;
    void *held[64];
} receiver;

static void on_recv(weft_multi *m, int64_t res, void *buf, int more)
{
    receiver *r = m->data;
    r->calls++;
    if (res > 0) {
        cr_assert_not_null(buf);
        cr_assert_leq(r->got + (size_t)res, sizeof r->data);
        memcpy(r->data + r->got, buf, (size_t)res);
        r->got += (size_t)res;
        if (r->hold)
            r->held[r->nheld++] = buf;
        else
            weft_loop_buffer_release(r->loop, buf);
    } else {
        cr_assert_null(buf);
    }
    if (res == -ENOBUFS)
        r->errors++;
    if (!more) {
        r->finals++;
        r->last = res;
    }
}

Test(multi, multishot_recv_into_loop_buffers_until_end_of_stream)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    r = (receiver){.loop = loop};
    weft_multi m = {0};
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), -ENOBUFS, "no buffers yet");
    cr_assert_eq(weft_loop_buffers_setup(loop, 8, 64), 0);
    cr_assert_eq(weft_loop_buffers_setup(loop, 8, 64), -EBUSY);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), 0);
    const char *msgs[] = {"alpha ", "beta ", "gamma ", "delta"};
    size_t want = 0;
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(msgs[i]);
        cr_assert_eq(write(sv[1], msgs[i], n), (ssize_t)n);
        want += n;
        while (r.got < want)
            cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
    cr_assert_eq(r.finals, 0);
    close(sv[1]);
    run_until(loop, &r.finals, 1);
    cr_assert_eq(r.finals, 1);
    cr_assert_eq(r.last, 0, "end of stream");
    cr_assert_eq(memcmp(r.data, "alpha beta gamma delta", want), 0);
    close(sv[0]);
    test_loop_free(loop);
}

Test(multi, multishot_recv_recovers_from_running_out_of_buffers)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    r = (receiver){.loop = loop, .hold = 1};
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 16), 0);
    weft_multi m = {0};
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), 0);
    char msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    cr_assert_eq(write(sv[1], msg, sizeof msg), (ssize_t)sizeof msg);
    /* Four buffers of 16 bytes: 64 bytes arrive, then the kernel runs dry. */
    for (int i = 0; i < 20 && r.got < 64; i++)
        weft_loop_run(loop, WEFT_RUN_NOWAIT);
    usleep(10 * 1000);
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    cr_assert_eq(r.got, 64);
    cr_assert_eq(r.nheld, 4);
    /* Give them back one round at a time: the recv resumes by itself. */
    r.hold = 0;
    while (r.got < sizeof msg) {
        while (r.nheld)
            weft_loop_buffer_release(loop, r.held[--r.nheld]);
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
    cr_assert_eq(r.got, sizeof msg);
    cr_assert_eq(memcmp(r.data, msg, sizeof msg), 0);
    cr_assert_eq(r.errors, 0, "-ENOBUFS is not the caller's business");
    cr_assert_eq(r.finals, 0);
    cr_assert_eq(weft_multi_cancel(loop, &m), 0);
    run_until(loop, &r.finals, 1);
    cr_assert_eq(r.last, -ECANCELED);
    close(sv[0]);
    close(sv[1]);
    test_loop_free(loop);
}

Test(multi, multishot_recv_paused_then_cancelled_or_closed)
{
    weft_loop *loop = test_loop_new();
    static receiver r1, r2;
    r1 = (receiver){.loop = loop, .hold = 1};
    r2 = (receiver){.loop = loop, .hold = 1};
    cr_assert_eq(weft_loop_buffers_setup(loop, 2, 8), 0);
    weft_multi m1 = {0}, m2 = {0};
    int a[2], b[2];
    test_unix_pair(a);
    test_unix_pair(b);
    cr_assert_eq(weft_recv_multi(loop, &m1, a[0], on_recv, &r1), 0);
    cr_assert_eq(write(a[1], "0123456789abcdefXYZ", 19), 19);
    for (int i = 0; i < 10; i++)
        weft_loop_run(loop, WEFT_RUN_NOWAIT);
    cr_assert_eq(r1.got, 16);
    /* m1 is paused (both buffers held). */
    cr_assert_eq(weft_multi_cancel(loop, &m1), 0);
    cr_assert_eq(r1.finals, 0, "the last callback never runs inside cancel");
    run_until(loop, &r1.finals, 1);
    cr_assert_eq(r1.last, -ECANCELED);
    while (r1.nheld)
        weft_loop_buffer_release(loop, r1.held[--r1.nheld]);

    /* A CLOSE op on the fd of an armed multishot recv ends it. */
    cr_assert_eq(weft_recv_multi(loop, &m2, b[0], on_recv, &r2), 0);
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    weft_op cl;
    test_rec rc = {0};
    weft_op_prep_close(&cl, b[0], test_on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    run_until(loop, &r2.finals, 1);
    test_run(loop);
    cr_assert_eq(r2.last, -ECANCELED);
    cr_assert_eq(rc.result, 0);
    close(a[0]);
    close(a[1]);
    close(b[1]);
    test_loop_free(loop);
}

Test(multi, free_with_multishot_requests_in_flight)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    static acceptor a;
    r = (receiver){.loop = loop};
    a = (acceptor){.loop = loop, .target = -1};
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 64), 0);
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    int sv[2];
    test_unix_pair(sv);
    weft_multi ma = {0}, mr = {0};
    cr_assert_eq(weft_accept_multi(loop, &ma, lfd, on_accept, &a), 0);
    cr_assert_eq(weft_recv_multi(loop, &mr, sv[0], on_recv, &r), 0);
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    cr_assert_eq(weft_loop_free(loop), 0);
    cr_assert_eq(a.calls + r.calls, 0);
    /* Nothing is armed any more: the connection waits in the backlog. */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
    usleep(10 * 1000);
    int s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    cr_assert_geq(s, 0);
    close(s);
    close(c);
    close(lfd);
    close(sv[0]);
    close(sv[1]);
}

static void noop_multi(weft_multi *m, int64_t res, void *buf, int more)
{
    (void)m;
    (void)res;
    (void)buf;
    (void)more;
}

Test(multi, bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_multi m = {0};
    char x[8];
    cr_assert_eq(weft_accept_multi(NULL, &m, 0, noop_multi, NULL), -EINVAL);
    cr_assert_eq(weft_accept_multi(loop, NULL, 0, noop_multi, NULL), -EINVAL);
    cr_assert_eq(weft_accept_multi(loop, &m, 0, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_accept_multi(loop, &m, -1, noop_multi, NULL), -EBADF);
    cr_assert_eq(weft_recv_multi(loop, &m, 0, noop_multi, NULL), -ENOBUFS, "no buffers yet");
    cr_assert_eq(weft_multi_cancel(loop, &m), -EALREADY, "not running");
    cr_assert_eq(weft_multi_cancel(NULL, &m), -EINVAL);
    cr_assert_not(weft_multi_active(&m));
    cr_assert_not(weft_multi_active(NULL));
    cr_assert_eq(weft_loop_buffers_setup(loop, 3, 64), -EINVAL, "not a power of two");
    cr_assert_eq(weft_loop_buffers_setup(loop, 0, 64), -EINVAL);
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 0), -EINVAL);
    cr_assert_eq(weft_loop_buffers_setup(loop, 65536, 64), -EINVAL);
    cr_assert_eq(weft_loop_buffers_setup(NULL, 4, 64), -EINVAL);
    cr_assert_eq(weft_loop_buffer_release(loop, NULL), -EINVAL);
    cr_assert_eq(weft_loop_buffer_release(loop, x), 0, "not a loop buffer: ignored");
    test_loop_free(loop);
}
