/* io_uring backend: what the shared loop suites cannot see. Cancel races,
 * close and forget with ops in flight, 10,000 ops in flight (CQ overflow),
 * a full SQ, ring setup and info, the WEFT_URING_DISABLE fallback, pipes,
 * wake-ups, a loop created on one thread and run on another, and that no
 * request outlives weft_loop_free(). Multishot requests are tested on every
 * backend by test_multi.c. */
#include "backend.h"
#include "common.h"

#include <arpa/inet.h>
#include "harness.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void init(void)
{
    signal(SIGPIPE, SIG_IGN);
    unsetenv("WEFT_BACKEND");
    unsetenv("WEFT_URING_DISABLE");
}

TestSuite(uring, .init = init, .timeout = 30);

static weft_loop *ring_loop(uint32_t entries)
{
    weft_loop *loop = NULL;
    weft_loop_opts o = {.backend = WEFT_BACKEND_IO_URING, .ring_entries = entries};
    int rc = weft_loop_new(&o, &loop);
    if (rc == WEFT_EUNAVAILABLE)
        cr_skip_test("io_uring unavailable here");
    cr_assert_eq(rc, 0, "weft_loop_new: %s", weft_strerror(rc));
    cr_assert_str_eq(weft_loop_backend_name(loop), "io_uring");
    return loop;
}

static void run(weft_loop *loop)
{
    int rc = weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    cr_assert_eq(rc, 0, "run: %s", weft_strerror(rc));
}

/* ---- setup, info, fallback ---- */

Test(uring, info_reports_the_ring_setup)
{
    weft_loop *loop = ring_loop(0);
    char info[256];
    int n = weft_loop_backend_info(loop, info, sizeof info);
    cr_assert_gt(n, 0);
    cr_log_info("io_uring: %s", info);
    cr_assert(strstr(info, "sq 256"), "%s", info);
    cr_assert(strstr(info, "TASKRUN") || strstr(info, "no flags"), "%s", info);
    weft_loop_free(loop);

    loop = ring_loop(8);
    weft_loop_backend_info(loop, info, sizeof info);
    cr_assert(strstr(info, "sq 8,"), "%s", info);
    weft_loop_free(loop);
}

Test(uring, disable_switch_falls_back_to_epoll)
{
    if (weft_backend_probe(WEFT_BACKEND_IO_URING) != 0)
        cr_skip_test("io_uring unavailable here");
    setenv("WEFT_URING_DISABLE", "1", 1);
    weft_loop *loop = NULL;
    cr_assert_eq(weft_loop_new(NULL, &loop), 0);
    cr_assert_str_eq(weft_loop_backend_name(loop), "epoll");
    weft_loop_free(loop);
    cr_assert_eq(weft_backend_auto(), WEFT_BACKEND_EPOLL);

    weft_loop_opts o = {.backend = WEFT_BACKEND_IO_URING};
    loop = (weft_loop *)1;
    cr_assert_eq(weft_loop_new(&o, &loop), WEFT_EUNAVAILABLE);
    cr_assert_null(loop);
    cr_assert_eq(weft_backend_probe(WEFT_BACKEND_IO_URING), WEFT_EUNAVAILABLE);

    /* WEFT_BACKEND=io_uring asks for it explicitly: refused too. */
    setenv("WEFT_BACKEND", "io_uring", 1);
    cr_assert_eq(weft_loop_new(NULL, &loop), WEFT_EUNAVAILABLE);

    setenv("WEFT_URING_DISABLE", "0", 1);
    unsetenv("WEFT_BACKEND");
    cr_assert_eq(weft_loop_new(NULL, &loop), 0);
    cr_assert_str_eq(weft_loop_backend_name(loop), "io_uring");
    weft_loop_free(loop);
}

/* ---- cancel races ---- */

Test(uring, cancel_right_after_submit)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    char buf[8];
    weft_op op;
    test_rec r = {0};
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    /* Both SQEs go to the kernel in one batch, the recv first. */
    cr_assert_eq(weft_op_cancel(loop, &op), 0);
    cr_assert_eq(weft_op_cancel(loop, &op), -EALREADY);
    run(loop);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.result, -ECANCELED);
    /* The socket is intact: the next recv gets the data. */
    cr_assert_eq(write(sv[1], "abc", 3), 3);
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    run(loop);
    cr_assert_eq(r.result, 3);
    close(sv[0]);
    close(sv[1]);
    weft_loop_free(loop);
}

Test(uring, cancel_loses_to_data_already_there)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(write(sv[1], "abc", 3), 3);
    char buf[8];
    weft_op op;
    test_rec r = {0};
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(weft_op_cancel(loop, &op), 0);
    run(loop);
    /* The recv completed inline at submission; the cancel found nothing. */
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.result, 3);
    close(sv[0]);
    close(sv[1]);
    weft_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    weft_op *other;
    int cancel_rc;
    test_rec r;
} canceller;

static void cancel_other(weft_op *op)
{
    canceller *c = op->data;
    c->r.calls++;
    c->r.result = op->result;
    c->cancel_rc = weft_op_cancel(c->loop, c->other);
}

Test(uring, cancel_after_completion_is_ealready_and_keeps_the_result)
{
    weft_loop *loop = ring_loop(0);
    int a[2], b[2];
    test_unix_pair(a);
    test_unix_pair(b);
    cr_assert_eq(write(a[1], "1", 1), 1);
    cr_assert_eq(write(b[1], "22", 2), 2);
    char ba[4], bb[4];
    weft_op oa, ob;
    test_rec rb = {0};
    canceller c = {.loop = loop, .other = &ob};
    weft_op_prep_recv(&oa, a[0], ba, sizeof ba, 0, cancel_other, &c);
    weft_op_prep_recv(&ob, b[0], bb, sizeof bb, 0, test_on_done, &rb);
    cr_assert_eq(weft_op_submit(loop, &oa), 0);
    cr_assert_eq(weft_op_submit(loop, &ob), 0);
    run(loop);
    /* Both CQEs were reaped in one batch: ob was done when oa's callback ran. */
    cr_assert_eq(c.r.result, 1);
    cr_assert_eq(c.cancel_rc, -EALREADY);
    cr_assert_eq(rb.calls, 1);
    cr_assert_eq(rb.result, 2);
    cr_assert_eq(weft_op_cancel(loop, &ob), -EINVAL, "idle op");
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    weft_loop_free(loop);
}

Test(uring, cancel_an_op_waiting_behind_the_head)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    char b1[4] = {0}, b2[4] = {0}, b3[4] = {0};
    weft_op o1, o2, o3;
    int clock = 0;
    test_rec r1 = {.clock = &clock}, r2 = {.clock = &clock}, r3 = {.clock = &clock};
    weft_op_prep_recv(&o1, sv[0], b1, 1, 0, test_on_done, &r1);
    weft_op_prep_recv(&o2, sv[0], b2, 1, 0, test_on_done, &r2);
    weft_op_prep_recv(&o3, sv[0], b3, 1, 0, test_on_done, &r3);
    cr_assert_eq(weft_op_submit(loop, &o1), 0);
    cr_assert_eq(weft_op_submit(loop, &o2), 0);
    cr_assert_eq(weft_op_submit(loop, &o3), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_op_cancel(loop, &o2), 0);
    cr_assert_eq(write(sv[1], "xy", 2), 2);
    run(loop);
    cr_assert_eq(r2.result, -ECANCELED);
    cr_assert_str_eq(b1, "x");
    cr_assert_str_eq(b3, "y");
    cr_assert_lt(r1.order, r3.order);
    close(sv[0]);
    close(sv[1]);
    weft_loop_free(loop);
}

/* ---- close and forget with ops in flight ---- */

/* Fill fd's send buffer (with scratch bytes from buf) so that a send parks. */
static void fill_send_buffer(int fd, const char *buf, size_t len)
{
    while (send(fd, buf, len, MSG_DONTWAIT) > 0) {
    }
}

Test(uring, close_completes_every_op_on_the_fd_first)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    static char big[1 << 16];
    fill_send_buffer(sv[0], big, sizeof big);
    char buf[4];
    weft_op rd, pin, wr, pout, cl;
    int clock = 0;
    test_rec rr = {.clock = &clock}, rp = {.clock = &clock}, rw = {.clock = &clock},
             ro = {.clock = &clock}, rc = {.clock = &clock};
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &rr);
    weft_op_prep_poll_in(&pin, sv[0], test_on_done, &rp);
    weft_op_prep_send(&wr, sv[0], big, sizeof big, 0, test_on_done, &rw);
    weft_op_prep_poll_out(&pout, sv[0], test_on_done, &ro);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_op_submit(loop, &pin), 0);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    cr_assert_eq(weft_op_submit(loop, &pout), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    weft_op_prep_close(&cl, sv[0], test_on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    run(loop);
    cr_assert_eq(rr.result, -ECANCELED);
    cr_assert_eq(rp.result, -ECANCELED);
    cr_assert_eq(rw.result, -ECANCELED);
    cr_assert_eq(ro.result, -ECANCELED);
    cr_assert_eq(rc.result, 0);
    cr_assert_eq(rc.order, 5, "the close completes last");
    cr_assert_eq(fcntl(sv[0], F_GETFD), -1);
    close(sv[1]);
    weft_loop_free(loop);
}

Test(uring, close_in_the_same_batch_as_the_ops)
{
    weft_loop *loop = ring_loop(0);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    char buf[4];
    weft_op rd, cl;
    test_rec rr = {0}, rc = {0};
    weft_op_prep_recv(&rd, p[0], buf, sizeof buf, 0, test_on_done, &rr);
    weft_op_prep_close(&cl, p[0], test_on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    run(loop);
    cr_assert_eq(rr.result, -ECANCELED);
    cr_assert_eq(rc.result, 0);
    close(p[1]);
    weft_loop_free(loop);
}

Test(uring, forget_fd_then_plain_close)
{
    weft_loop *loop = ring_loop(0);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    char buf[4];
    weft_op rd, pin;
    test_rec rr = {0}, rp = {0};
    weft_op_prep_recv(&rd, p[0], buf, sizeof buf, 0, test_on_done, &rr);
    weft_op_prep_poll_in(&pin, p[0], test_on_done, &rp);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_op_submit(loop, &pin), 0);
    /* Not even submitted to the kernel yet: forget_fd must do it before the
     * close, or the cancel could not find the file. */
    cr_assert_eq(weft_loop_forget_fd(loop, p[0]), 0);
    close(p[0]);
    run(loop); /* would hang if the recv were still armed on the pipe */
    cr_assert_eq(rr.result, -ECANCELED);
    cr_assert_eq(rp.result, -ECANCELED);
    close(p[1]);
    weft_loop_free(loop);
}

/* ---- deferred recvs: a recv behind a send on its socket waits one enter ---- */

/* Deferred recvs: the peer sv[1] wrote "req"; a send on sv[0] is in
 * flight or was sent at submit (its record rw). A recv submitted now is
 * held back for one enter, after which the send has its result `sent` and
 * the recv its data. Closes the pair and frees loop. */
static void expect_recv_held_one_enter(weft_loop *loop, int sv[2], const test_rec *rw, int64_t sent)
{
    char buf[8] = {0};
    weft_op rd;
    test_rec rr = {0};
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(rw->result, sent);
    cr_assert_eq(rr.calls, 0, "the recv was held back");
    run(loop);
    cr_assert_eq(rr.result, 3);
    cr_assert_str_eq(buf, "req");
    close(sv[0]);
    close(sv[1]);
    weft_loop_free(loop);
}

Test(uring, a_recv_behind_a_send_goes_in_one_enter_later_with_its_data)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(write(sv[1], "req", 3), 3); /* the data is there already */
    weft_op wr;
    test_rec rw = {0};
    weft_op_prep_send(&wr, sv[0], "ans", 3, 0, test_on_done, &rw);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    /* The send goes in the next enter; the recv only after its reap. */
    expect_recv_held_one_enter(loop, sv, &rw, 3);
}

/* "sends at submit": a long send on a socket with no other writer. */
Test(uring, a_long_send_goes_out_at_submit_and_the_next_recv_waits_one_enter)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(write(sv[1], "req", 3), 3);
    static char big[16384], got[16384];
    memset(big, 'a', sizeof big);
    weft_op wr;
    test_rec rw = {0};
    weft_op_prep_send(&wr, sv[0], big, sizeof big, 0, test_on_done, &rw);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    /* Sent before the loop ran; its callback still comes from the loop. */
    cr_assert_eq(recv(sv[1], got, sizeof got, MSG_DONTWAIT), (ssize_t)sizeof got);
    cr_assert_eq(rw.calls, 0);
    expect_recv_held_one_enter(loop, sv, &rw, (int64_t)sizeof big);
}

Test(uring, a_long_send_at_submit_reports_errors_and_falls_back_on_pipes)
{
    weft_loop *loop = ring_loop(0);
    static char big[16384], got[16384];
    memset(big, 'b', sizeof big);
    weft_op wr;
    test_rec r = {0};
    int sv[2];
    test_unix_pair(sv);
    close(sv[1]);
    weft_op_prep_send(&wr, sv[0], big, sizeof big, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    run(loop);
    cr_assert_eq(r.result, -EPIPE, "%s", weft_strerror((int)r.result));
    close(sv[0]);

    /* A pipe is no socket: the send goes through the ring as a write. */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    r = (test_rec){0};
    weft_op_prep_send(&wr, p[1], big, sizeof big, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    run(loop);
    cr_assert_eq(r.result, (int64_t)sizeof big);
    size_t n = 0;
    while (n < sizeof got) {
        ssize_t k = read(p[0], got + n, sizeof got - n);
        cr_assert_gt(k, 0);
        n += (size_t)k;
    }
    cr_assert_eq(memcmp(got, big, sizeof big), 0);
    close(p[0]);
    close(p[1]);
    weft_loop_free(loop);
}

Test(uring, a_held_recv_behind_a_parked_send_still_completes)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    static char big[1 << 16];
    fill_send_buffer(sv[0], big, sizeof big);
    char buf[8] = {0};
    weft_op wr, rd;
    test_rec rw = {0}, rr = {0};
    weft_op_prep_send(&wr, sv[0], big, sizeof big, 0, test_on_done, &rw);
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(write(sv[1], "hi", 2), 2);
    /* The send never completes (nobody reads sv[1]): a loop that blocked
     * with the recv still held back would never return here. */
    for (int i = 0; i < 4 && !rr.calls; i++)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(rr.result, 2);
    cr_assert_str_eq(buf, "hi");
    cr_assert_eq(rw.calls, 0);
    cr_assert_eq(weft_op_cancel(loop, &wr), 0);
    run(loop);
    cr_assert_eq(rw.result, -ECANCELED);
    close(sv[0]);
    close(sv[1]);
    weft_loop_free(loop);
}

Test(uring, cancel_close_and_free_with_a_held_recv)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    char buf[8];
    weft_op wr, rd, rd2;
    test_rec rw = {0}, rr = {0}, rr2 = {0};
    /* Cancel: the kernel never saw it; the next recv on the fd works. */
    weft_op_prep_send(&wr, sv[0], "a", 1, 0, test_on_done, &rw);
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_op_cancel(loop, &rd), 0);
    run(loop);
    cr_assert_eq(rr.result, -ECANCELED);
    cr_assert_eq(rw.result, 1);
    weft_op_prep_recv(&rd2, sv[0], buf, sizeof buf, 0, test_on_done, &rr2);
    cr_assert_eq(write(sv[1], "b", 1), 1);
    cr_assert_eq(weft_op_submit(loop, &rd2), 0);
    run(loop);
    cr_assert_eq(rr2.result, 1);
    /* Forget (close): the held recv ends at once, nothing is left armed. */
    rr = (test_rec){0};
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_forget_fd(loop, sv[0]), 0);
    close(sv[0]);
    run(loop);
    cr_assert_eq(rr.result, -ECANCELED);
    /* Free: a held recv on a live fd is cancelled, and its memory left alone. */
    int sv2[2];
    test_unix_pair(sv2);
    weft_op_prep_send(&wr, sv2[0], "c", 1, 0, test_on_done, &rw);
    weft_op_prep_recv(&rd, sv2[0], buf, sizeof buf, 0, test_on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    weft_loop_free(loop);
    close(sv[1]);
    close(sv2[0]);
    close(sv2[1]);
}

/* ---- failure paths ---- */

Test(uring, closed_fd_reset_peer_refused_connect)
{
    weft_loop *loop = ring_loop(0);
    char buf[8];
    weft_op op;
    test_rec r = {0};

    int sv[2];
    test_unix_pair(sv);
    close(sv[0]);
    close(sv[1]);
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    run(loop);
    cr_assert_eq(r.result, -EBADF);
    /* A number far beyond any open fd: no giant table, just -EBADF. */
    weft_op_prep_recv(&op, 0x7fffffff, buf, sizeof buf, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    run(loop);
    cr_assert_eq(r.result, -EBADF);

    /* Peer reset: an abortive close (linger 0) sends RST. */
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
    weft_op_prep_accept(&op, lfd, NULL, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    run(loop);
    cr_assert_geq(r.result, 0);
    int s = (int)r.result;
    weft_op_prep_recv(&op, s, buf, sizeof buf, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    cr_assert_eq(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(c);
    run(loop);
    cr_assert_eq(r.result, -ECONNRESET, "%s", weft_strerror((int)r.result));
    weft_op_prep_send(&op, s, "x", 1, 0, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    run(loop);
    cr_assert(r.result == -EPIPE || r.result == -ECONNRESET, "%s", weft_strerror((int)r.result));
    close(s);

    /* Refused: the port is bound by a socket that never listens. */
    close(lfd);
    int bound = test_tcp_refusing(&addr);
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    weft_op_prep_connect(&op, c, &addr, sizeof addr, test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    run(loop);
    cr_assert_eq(r.result, -ECONNREFUSED, "%s", weft_strerror((int)r.result));
    close(c);
    close(bound);
    weft_loop_free(loop);
}

Test(uring, accept_reports_the_address_and_a_nonblocking_cloexec_fd)
{
    weft_loop *loop = ring_loop(0);
    struct sockaddr_in addr, peer;
    int lfd = test_tcp_listener(&addr);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    weft_op acc, con;
    test_rec ra = {0}, rc = {0};
    weft_op_prep_accept(&acc, lfd, &peer, sizeof peer, test_on_done, &ra);
    weft_op_prep_connect(&con, c, &addr, sizeof addr, test_on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    cr_assert_eq(weft_op_submit(loop, &con), 0);
    run(loop);
    cr_assert_eq(rc.result, 0, "%s", weft_strerror((int)rc.result));
    cr_assert_geq(ra.result, 0);
    cr_assert_eq(acc.addrlen, sizeof peer);
    cr_assert_eq(peer.sin_family, AF_INET);
    int s = (int)ra.result;
    cr_assert(fcntl(s, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(s, F_GETFD) & FD_CLOEXEC);
    close(s);
    close(c);
    close(lfd);
    weft_loop_free(loop);
}

/* ---- pipes: recv/send fall back to read/write, remembered per fd ---- */

Test(uring, pipes_use_read_write_and_remember_it)
{
    weft_loop *loop = ring_loop(0);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    char buf[8] = {0};
    weft_op rd, wr;
    test_rec rr = {0}, rw = {0};
    weft_op_prep_recv(&rd, p[0], buf, sizeof buf, 0, test_on_done, &rr);
    weft_op_prep_send(&wr, p[1], "pipe", 4, 0, test_on_done, &rw);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    run(loop);
    cr_assert_eq(rw.result, 4);
    cr_assert_eq(rr.result, 4);
    cr_assert_str_eq(buf, "pipe");
    /* The second ops on these fds go straight to read/write. */
    weft_op_prep_recv(&rd, p[0], buf, sizeof buf, 0, test_on_done, &rr);
    weft_op_prep_send(&wr, p[1], "more", 4, 0, test_on_done, &rw);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    cr_assert(rd.opflags_ & WEFT__OPFLAG_READ_WRITE);
    cr_assert(wr.opflags_ & WEFT__OPFLAG_READ_WRITE);
    run(loop);
    cr_assert_eq(rr.result, 4);
    /* MSG_* flags on a pipe stay an error, as on the readiness backends. */
    weft_op_prep_recv(&rd, p[0], buf, sizeof buf, MSG_PEEK, test_on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    run(loop);
    cr_assert_eq(rr.result, -ENOTSOCK);
    /* After a CLOSE the number is forgotten: a socket may get it next. */
    weft_op cl;
    weft_op_prep_close(&cl, p[0], test_on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    run(loop);
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(sv[0], p[0], "fd number reused");
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_not(rd.opflags_ & WEFT__OPFLAG_READ_WRITE);
    cr_assert_eq(weft_op_cancel(loop, &rd), 0);
    run(loop);
    close(sv[0]);
    close(sv[1]);
    close(p[1]);
    weft_loop_free(loop);
}

/* ---- scale: a full SQ, 10,000 ops in flight, CQ overflow ---- */

Test(uring, sq_full_submits_early_and_drops_nothing)
{
    weft_loop *loop = ring_loop(8);
    enum { PAIRS = 500 };
    static int sv[PAIRS][2];
    static char bufs[PAIRS][2][4];
    static weft_op ops[PAIRS][2];
    static test_rec recs[PAIRS][2];
    for (int i = 0; i < PAIRS; i++) {
        test_unix_pair(sv[i]);
        if (i % 2)
            cr_assert_eq(write(sv[i][1], "a", 1), 1); /* half complete at once */
    }
    for (int i = 0; i < PAIRS; i++)
        for (int j = 0; j < 2; j++) {
            memset(&recs[i][j], 0, sizeof recs[i][j]);
            weft_op_prep_recv(&ops[i][j], sv[i][j], bufs[i][j], sizeof bufs[i][j], 0, test_on_done,
                              &recs[i][j]);
            cr_assert_eq(weft_op_submit(loop, &ops[i][j]), 0);
        }
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    for (int i = 0; i < PAIRS; i++) {
        if (!(i % 2))
            cr_assert_eq(write(sv[i][1], "b", 1), 1);
        cr_assert_eq(write(sv[i][0], "c", 1), 1);
    }
    run(loop);
    for (int i = 0; i < PAIRS; i++) {
        cr_assert_eq(recs[i][0].calls, 1);
        cr_assert_eq(recs[i][1].calls, 1);
        cr_assert_eq(recs[i][0].result, 1);
        cr_assert_eq(recs[i][1].result, 1);
        cr_assert_eq(bufs[i][0][0], i % 2 ? 'a' : 'b');
        cr_assert_eq(bufs[i][1][0], 'c');
        close(sv[i][0]);
        close(sv[i][1]);
    }
    weft_loop_free(loop);
}

static int counted;
static void count_done(weft_op *op)
{
    counted++;
    cr_assert_geq(op->result, 0, "%s", weft_strerror((int)op->result));
}

static void submit_all(weft_loop *loop, weft_op *ops, const int *fds, int n, uint8_t opcode,
                       char *bufs)
{
    for (int i = 0; i < n; i++) {
        if (opcode == WEFT_OP_POLL_IN)
            weft_op_prep_poll_in(&ops[i], fds[i], count_done, NULL);
        else
            weft_op_prep_recv(&ops[i], fds[i], &bufs[i], 1, 0, count_done, NULL);
        cr_assert_eq(weft_op_submit(loop, &ops[i]), 0);
    }
}

Test(uring, ten_thousand_ops_in_flight_overflow_the_cq)
{
    enum { OPS = 10000 };
    int limit = test_raise_nofile(OPS + 100);
    if (limit < OPS + 64)
        cr_skip_test("RLIMIT_NOFILE %d too low", limit);
    weft_loop *loop = ring_loop(0); /* sq 256, cq 4096 */
    static int fds[OPS];
    static weft_op ops[OPS];
    static char bufs[OPS];
    for (int i = 0; i < OPS; i += 2)
        test_unix_pair(&fds[i]);

    /* Ready before submission: the polls complete inline while the full SQ
     * is flushed again and again, 10,000 CQEs before the first reap, more
     * than the CQ holds. None may be lost. */
    for (int i = 0; i < OPS; i++)
        cr_assert_eq(write(fds[i], "x", 1), 1);
    counted = 0;
    submit_all(loop, ops, fds, OPS, WEFT_OP_POLL_IN, bufs);
    run(loop);
    cr_assert_eq(counted, OPS);

    /* The same with recvs that consume the bytes. */
    counted = 0;
    submit_all(loop, ops, fds, OPS, WEFT_OP_RECV, bufs);
    run(loop);
    cr_assert_eq(counted, OPS);
    for (int i = 0; i < OPS; i++)
        cr_assert_eq(bufs[i], 'x');

    /* Parked: 10,000 recvs in flight, then all made ready at once. */
    counted = 0;
    submit_all(loop, ops, fds, OPS, WEFT_OP_RECV, bufs);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(counted, 0);
    for (int i = 0; i < OPS; i++)
        cr_assert_eq(write(fds[i], "y", 1), 1);
    run(loop);
    cr_assert_eq(counted, OPS);
    for (int i = 0; i < OPS; i++) {
        cr_assert_eq(bufs[i], 'y');
        close(fds[i]);
    }
    weft_loop_free(loop);
}

Test(uring, ten_thousand_recvs_over_few_fds_keep_fifo_order)
{
    enum { FDS = 16, PER = 625 }; /* 10,000 recvs */
    weft_loop *loop = ring_loop(0);
    static int sv[FDS][2];
    static weft_op ops[FDS][PER];
    static unsigned char bufs[FDS][PER];
    static test_rec recs[FDS][PER];
    int clock = 0;
    for (int f = 0; f < FDS; f++) {
        test_unix_pair(sv[f]);
        for (int i = 0; i < PER; i++) {
            recs[f][i] = (test_rec){.clock = &clock};
            weft_op_prep_recv(&ops[f][i], sv[f][0], &bufs[f][i], 1, 0, test_on_done, &recs[f][i]);
            cr_assert_eq(weft_op_submit(loop, &ops[f][i]), 0);
        }
    }
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    for (int f = 0; f < FDS; f++) {
        unsigned char data[PER];
        for (int i = 0; i < PER; i++)
            data[i] = (unsigned char)i;
        cr_assert_eq(write(sv[f][1], data, PER), PER);
    }
    run(loop);
    for (int f = 0; f < FDS; f++) {
        for (int i = 0; i < PER; i++) {
            cr_assert_eq(recs[f][i].result, 1);
            cr_assert_eq(bufs[f][i], (unsigned char)i);
            if (i)
                cr_assert_lt(recs[f][i - 1].order, recs[f][i].order);
        }
        close(sv[f][0]);
        close(sv[f][1]);
    }
    weft_loop_free(loop);
}

/* ---- polling without blocking, wake-ups, threads ---- */

Test(uring, nowait_iterations_see_completions)
{
    weft_loop *loop = ring_loop(0);
    int sv[2];
    test_unix_pair(sv);
    weft_op op;
    test_rec r = {0};
    weft_op_prep_poll_in(&op, sv[0], test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(write(sv[1], "x", 1), 1);
    /* With DEFER_TASKRUN the completion waits in the kernel until we enter:
     * a non-blocking iteration must notice (IORING_SQ_TASKRUN) and enter. */
    for (int i = 0; i < 1000 && !r.calls; i++) {
        weft_loop_run(loop, WEFT_RUN_NOWAIT);
        if (!r.calls)
            usleep(1000);
    }
    cr_assert_eq(r.calls, 1);
    close(sv[0]);
    close(sv[1]);
    weft_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    weft_handle h;
    int ran;
} waker;

static void woke(void *arg)
{
    waker *w = arg;
    w->ran = 1;
    weft_loop_stop(w->loop);
}

static void *wake_later(void *arg)
{
    waker *w = arg;
    usleep(50 * 1000);
    weft_call_soon_threadsafe(w->loop, &w->h, woke, w);
    return NULL;
}

Test(uring, another_thread_wakes_a_blocked_loop)
{
    weft_loop *loop = ring_loop(0);
    /* Something in flight, so the loop blocks in the kernel. */
    int sv[2];
    test_unix_pair(sv);
    weft_op op;
    test_rec r = {0};
    weft_op_prep_poll_in(&op, sv[0], test_on_done, &r);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    for (int round = 0; round < 3; round++) {
        waker w = {.loop = loop};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, wake_later, &w), 0);
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_FOREVER), 0);
        pthread_join(t, NULL);
        cr_assert_eq(w.ran, 1);
    }
    cr_assert_eq(r.calls, 0);
    close(sv[0]);
    close(sv[1]);
    weft_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    int sv[2];
    test_rec r;
    int rc;
} thread_job;

static void *run_elsewhere(void *arg)
{
    thread_job *j = arg;
    char buf[4];
    weft_op op;
    weft_op_prep_recv(&op, j->sv[0], buf, sizeof buf, 0, test_on_done, &j->r);
    weft_op_submit(j->loop, &op);
    j->rc = weft_loop_run(j->loop, WEFT_RUN_UNTIL_IDLE);
    weft_loop_free(j->loop);
    return NULL;
}

Test(uring, loop_created_on_one_thread_runs_on_another)
{
    thread_job j = {.loop = ring_loop(0)};
    test_unix_pair(j.sv);
    cr_assert_eq(write(j.sv[1], "hi", 2), 2);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_elsewhere, &j), 0);
    pthread_join(t, NULL);
    cr_assert_eq(j.rc, 0, "%s", weft_strerror(j.rc));
    cr_assert_eq(j.r.result, 2);
    close(j.sv[0]);
    close(j.sv[1]);
}

/* ---- lifetime ---- */

Test(uring, nothing_touches_caller_memory_after_free)
{
    weft_loop *loop = ring_loop(0);
    int sv[2], p[2];
    test_unix_pair(sv);
    cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    char *buf = calloc(1, 16), *pbuf = calloc(1, 16);
    struct sockaddr_in *peer = calloc(1, sizeof *peer);
    weft_op *ops = calloc(4, sizeof *ops);
    test_rec r = {0};
    weft_op_prep_recv(&ops[0], sv[0], buf, 16, 0, test_on_done, &r);
    weft_op_prep_recv(&ops[1], p[0], pbuf, 16, 0, test_on_done, &r);
    weft_op_prep_accept(&ops[2], lfd, peer, sizeof *peer, test_on_done, &r);
    weft_op_prep_poll_in(&ops[3], sv[0], test_on_done, &r);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(weft_op_submit(loop, &ops[i]), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_loop_free(loop), 0);
    cr_assert_eq(r.calls, 0, "callbacks do not run on free");
    for (int i = 0; i < 4; i++)
        cr_assert_not(weft_op_pending(&ops[i]));
    /* Had any request survived, these would land in the buffers. */
    cr_assert_eq(write(sv[1], "late", 4), 4);
    cr_assert_eq(write(p[1], "late", 4), 4);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
    usleep(20 * 1000);
    cr_assert_eq(buf[0], 0);
    cr_assert_eq(pbuf[0], 0);
    cr_assert_eq(peer->sin_family, 0);
    char got[8];
    cr_assert_eq(read(sv[0], got, sizeof got), 4);
    cr_assert_eq(read(p[0], got, sizeof got), 4);
    int s = accept(lfd, NULL, NULL);
    cr_assert_geq(s, 0, "the connection is still in the backlog");
    close(s);
    close(c);
    close(lfd);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    free(ops);
    free(buf);
    free(pbuf);
    free(peer);
}

Test(uring, probe_and_free_without_running)
{
    for (int i = 0; i < 100; i++) {
        weft_loop *loop = ring_loop(8);
        cr_assert_eq(weft_loop_free(loop), 0);
    }
    cr_assert_eq(weft_backend_probe(WEFT_BACKEND_IO_URING), 0);
}
