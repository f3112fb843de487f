/* Loop-level suite: the backend ops against real loopback sockets and
 * pipes: data, EOF, peer reset, refused connect, cancel and close of parked
 * ops. Runs once per backend (WEFT_BACKEND). */
#include "common.h"
#include "weft_config.h"

#include <string.h>
#include <unistd.h>
#ifndef _WIN32
#include <netinet/tcp.h>
#endif

TestSuite(ops, .timeout = 20);

/* A connected loopback TCP pair made with the loop's own accept/connect. */
static void tcp_pair(weft_loop *loop, int *client, int *server)
{
    struct sockaddr_in addr, peer;
    int lfd = test_tcp_listener(&addr);
    int cfd = test_tcp_socket();
    weft_op acc, con;
    test_rec da = {0}, dc = {0};
    weft_op_prep_accept(&acc, lfd, &peer, sizeof peer, test_on_done, &da);
    weft_op_prep_connect(&con, cfd, &addr, sizeof addr, test_on_done, &dc);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    cr_assert_eq(weft_op_submit(loop, &con), 0);
    test_run(loop);
    cr_assert_eq(da.calls, 1);
    cr_assert_eq(dc.calls, 1);
    cr_assert_eq(dc.result, 0, "connect: %s", weft_strerror((int)dc.result));
    cr_assert_geq(da.result, 0, "accept: %s", weft_strerror((int)da.result));
    cr_assert_eq(acc.addrlen, sizeof peer);
    cr_assert_eq(peer.sin_family, AF_INET);
    cr_assert_eq(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    test_close(lfd);
    *client = cfd;
    *server = (int)da.result;
}

Test(ops, recv_parks_until_data_arrives)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    char buf[16] = {0};
    weft_op op;
    test_rec d = {0};
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert(weft_op_pending(&op));
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(d.calls, 0, "completed with no data");
    cr_assert_eq(test_write(sv[1], "hello", 5), 5);
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.result, 5);
    cr_assert_str_eq(buf, "hello");
    cr_assert_not(weft_op_pending(&op));
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

/* Also an op done at submit (the data is there): plain callback users
 * always complete through the callback phase; only weft_await_op takes a
 * result inline. */
Test(ops, callback_never_runs_inside_submit)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(test_write(sv[1], "x", 1), 1);
    char c;
    weft_op op;
    test_rec d = {0};
    weft_op_prep_recv(&op, sv[0], &c, 1, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(d.calls, 0);
    cr_assert(weft_op_pending(&op));
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.result, 1);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

/* prep writes every field (core/loop/op.c sets them one by one rather than
 * memset): an op reused after a completion, with its public fields
 * scribbled on, is prepared as new and runs again. */
Test(ops, prep_resets_a_used_op)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    weft_op op;
    memset(&op, 0xa5, sizeof op);
    char c;
    test_rec d = {0};
    for (int round = 0; round < 2; round++) {
        weft_op_prep_recv(&op, sv[0], &c, 1, 0, test_on_done, &d);
        cr_assert_eq(op.result, 0);
        cr_assert_eq(op.addrlen, 0);
        cr_assert_not(weft_op_pending(&op));
        cr_assert_eq(test_write(sv[1], "y", 1), 1);
        cr_assert_eq(weft_op_submit(loop, &op), 0);
        test_run(loop);
        cr_assert_eq(d.calls, round + 1);
        cr_assert_eq(d.result, 1);
        op.result = -1;
        op.addrlen = 77;
    }
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, recv_sees_end_of_stream)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    char buf[8];
    weft_op op;
    test_rec d = {0};
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    test_close(sv[1]);
    test_run(loop);
    cr_assert_eq(d.result, 0);
    test_close(sv[0]);
    test_loop_free(loop);
}

Test(ops, tcp_accept_connect_send_recv)
{
    weft_loop *loop = test_loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    int one = 1;
    int nodelay = 0;
    socklen_t len = sizeof nodelay;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, (void *)&one, sizeof one);
    getsockopt(c, IPPROTO_TCP, TCP_NODELAY, (void *)&nodelay, &len);
    cr_assert(nodelay);
    char out[] = "ping over tcp", in[32] = {0};
    weft_op snd, rcv;
    test_rec ds = {0}, dr = {0};
    weft_op_prep_recv(&rcv, s, in, sizeof in, 0, test_on_done, &dr);
    weft_op_prep_send(&snd, c, out, sizeof out, 0, test_on_done, &ds);
    cr_assert_eq(weft_op_submit(loop, &rcv), 0);
    cr_assert_eq(weft_op_submit(loop, &snd), 0);
    test_run(loop);
    cr_assert_eq(ds.result, (int64_t)sizeof out);
    cr_assert_eq(dr.result, (int64_t)sizeof out);
    cr_assert_str_eq(in, out);
    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

Test(ops, peer_reset_fails_the_parked_recv)
{
    weft_loop *loop = test_loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    char buf[8];
    weft_op op;
    test_rec d = {0};
    weft_op_prep_recv(&op, s, buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    /* Unread data plus SO_LINGER 0 makes close send an RST. */
    struct linger lg = {1, 0};
    cr_assert_eq(setsockopt(c, SOL_SOCKET, SO_LINGER, (void *)&lg, sizeof lg), 0);
    test_close(c);
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.result, -ECONNRESET, "got %lld", (long long)d.result);
    test_close(s);
    test_loop_free(loop);
}

Test(ops, send_to_reset_peer_fails)
{
    weft_loop *loop = test_loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    struct linger lg = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, (void *)&lg, sizeof lg);
    test_close(s);
    usleep(10000);
    static char big[1 << 16];
    int64_t last = 0;
    for (int i = 0; i < 4 && last >= 0; i++) {
        weft_op op;
        test_rec d = {0};
        weft_op_prep_send(&op, c, big, sizeof big, 0, test_on_done, &d);
        cr_assert_eq(weft_op_submit(loop, &op), 0);
        test_run(loop);
        last = d.result;
    }
    cr_assert(last == -ECONNRESET || last == -EPIPE, "got %lld", (long long)last);
    test_close(c);
    test_loop_free(loop);
}

Test(ops, connect_refused)
{
    weft_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int bound = test_tcp_refusing(&addr); /* bound, never listening */
    int fd = test_tcp_socket();
    weft_op op;
    test_rec d = {0};
    weft_op_prep_connect(&op, fd, &addr, sizeof addr, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.result, -ECONNREFUSED, "got %lld", (long long)d.result);
    test_close(fd);
    test_close(bound);
    test_loop_free(loop);
}

Test(ops, send_parks_when_the_socket_buffer_is_full)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    static char chunk[65536];
    /* Fill the socket until send would block. */
    while (test_send(sv[0], chunk, sizeof chunk) > 0) {
    }
    weft_op op;
    test_rec d = {0};
    weft_op_prep_send(&op, sv[0], chunk, sizeof chunk, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(d.calls, 0);
    static char sink[1 << 20];
    while (test_recv(sv[1], sink, sizeof sink) > 0) {
    }
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert_gt(d.result, 0);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, pipes_work_with_recv_and_send)
{
#ifdef _WIN32
    cr_skip_test("POSIX only: ops take sockets on Windows, and a pipe is no socket there");
#else
    weft_loop *loop = test_loop_new();
    int p[2];
    cr_assert_eq(pipe(p), 0);
    test_nonblock(p[0]);
    test_nonblock(p[1]);
    char in[8] = {0};
    weft_op rd, wr;
    test_rec dr = {0}, dw = {0};
    weft_op_prep_recv(&rd, p[0], in, sizeof in, 0, test_on_done, &dr);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    weft_op_prep_send(&wr, p[1], "pipe", 4, 0, test_on_done, &dw);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    test_run(loop);
    cr_assert_eq(dw.result, 4);
    cr_assert_eq(dr.result, 4);
    cr_assert_str_eq(in, "pipe");
    /* EOF on the pipe. */
    close(p[1]);
    weft_op_prep_recv(&rd, p[0], in, sizeof in, 0, test_on_done, &dr);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    test_run(loop);
    cr_assert_eq(dr.result, 0);
    close(p[0]);
    test_loop_free(loop);
#endif
}

Test(ops, poll_in_and_poll_out)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    weft_op pin, pout;
    test_rec di = {0}, dout = {0};
    weft_op_prep_poll_in(&pin, sv[0], test_on_done, &di);
    weft_op_prep_poll_out(&pout, sv[0], test_on_done, &dout);
    cr_assert_eq(weft_op_submit(loop, &pin), 0);
    cr_assert_eq(weft_op_submit(loop, &pout), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(dout.calls, 1, "a fresh socket is writable");
    cr_assert_geq(dout.result, 0);
    cr_assert_eq(di.calls, 0, "not readable yet");
    cr_assert_eq(test_write(sv[1], "r", 1), 1);
    test_run(loop);
    cr_assert_eq(di.calls, 1);
    cr_assert_geq(di.result, 0);
    /* Poll does not consume: the byte is still there. */
    char c;
    cr_assert_eq(test_read(sv[0], &c, 1), 1);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, parked_recvs_complete_in_submission_order)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    int clock = 0;
    char a[2] = {0}, b[2] = {0};
    weft_op oa, ob;
    test_rec da = {.clock = &clock}, db = {.clock = &clock};
    weft_op_prep_recv(&oa, sv[0], a, 1, 0, test_on_done, &da);
    weft_op_prep_recv(&ob, sv[0], b, 1, 0, test_on_done, &db);
    cr_assert_eq(weft_op_submit(loop, &oa), 0);
    cr_assert_eq(weft_op_submit(loop, &ob), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(test_write(sv[1], "12", 2), 2);
    test_run(loop);
    cr_assert_str_eq(a, "1");
    cr_assert_str_eq(b, "2");
    cr_assert_lt(da.order, db.order);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, cancel_a_parked_op)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    char buf[4];
    weft_op op;
    test_rec d = {0};
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_op_cancel(loop, &op), 0);
    int again = weft_op_cancel(loop, &op);
    cr_assert(again == -EALREADY, "second cancel: %d", again);
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.result, -ECANCELED);
    /* The op is idle again and can be reused; data sent now still arrives. */
    cr_assert_eq(weft_op_cancel(loop, &op), -EINVAL);
    cr_assert_eq(test_write(sv[1], "ok", 2), 2);
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    test_run(loop);
    cr_assert_eq(d.result, 2);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, cancel_after_completion_keeps_the_result)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(test_write(sv[1], "abc", 3), 3);
    char buf[4];
    weft_op op;
    test_rec d = {0};
    weft_op_prep_recv(&op, sv[0], buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    /* Let the backend finish it without running callbacks yet. */
    int rc = weft_op_cancel(loop, &op);
    cr_assert(rc == 0 || rc == -EALREADY);
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert(d.result == 3 || d.result == -ECANCELED, "result %lld", (long long)d.result);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, close_op_cancels_parked_ops)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    char buf[4];
    weft_op rd, cl;
    test_rec dr = {0}, dc = {0};
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &dr);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    weft_op_prep_close(&cl, sv[0], test_on_done, &dc);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    test_run(loop);
    cr_assert_eq(dr.calls, 1);
    cr_assert_eq(dr.result, -ECANCELED);
    cr_assert_eq(dc.calls, 1);
    cr_assert_eq(dc.result, 0);
    cr_assert_not(test_fd_is_open(sv[0]), "fd still open");
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, forget_fd_cancels_parked_ops)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    char buf[4];
    weft_op rd;
    test_rec dr = {0};
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &dr);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_loop_forget_fd(loop, sv[0]), 0);
    test_run(loop);
    cr_assert_eq(dr.result, -ECANCELED);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, ops_on_a_closed_fd_fail_with_ebadf)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    test_close(sv[0]);
    test_close(sv[1]);
    char buf[4];
    weft_op rd, wr, cl;
    test_rec dr = {0}, dw = {0}, dc = {0};
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &dr);
    weft_op_prep_send(&wr, sv[1], "x", 1, 0, test_on_done, &dw);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_op_submit(loop, &wr), 0);
    test_run(loop);
    cr_assert_eq(dr.result, -EBADF, "recv: %s", test_err(dr.result));
    cr_assert_eq(dw.result, -EBADF, "send: %s", test_err(dw.result));
    weft_op_prep_close(&cl, sv[0], test_on_done, &dc);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    test_run(loop);
    cr_assert_eq(dc.result, -EBADF, "close: %s", test_err(dc.result));
    test_loop_free(loop);
}

Test(ops, a_huge_bogus_fd_fails_with_ebadf)
{
    weft_loop *loop = test_loop_new();
    char buf[4];
    weft_op op;
    test_rec d = {0};
    weft_op_prep_recv(&op, 0x7fffffff, buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &op), 0);
    test_run(loop);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.result, -EBADF, "recv: %s", test_err(d.result));
    test_loop_free(loop);
}

Test(ops, accept_many_connections)
{
    weft_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    enum { N = 64 };
    int clients[N], accepted = 0;
    weft_op acc;
    test_rec d = {0};
    for (int i = 0; i < N; i++) {
        clients[i] = test_tcp_socket_blocking();
        cr_assert_eq(test_connect(clients[i], &addr), 0);
    }
    while (accepted < N) {
        weft_op_prep_accept(&acc, lfd, NULL, 0, test_on_done, &d);
        cr_assert_eq(weft_op_submit(loop, &acc), 0);
        test_run(loop);
        cr_assert_geq(d.result, 0, "accept: %s", weft_strerror((int)d.result));
        test_close((int)d.result);
        accepted++;
    }
    for (int i = 0; i < N; i++)
        test_close(clients[i]);
    test_close(lfd);
    test_loop_free(loop);
}

Test(ops, free_with_ops_in_flight)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    char buf[4];
    weft_op rd;
    test_rec d = {0};
    weft_op_prep_recv(&rd, sv[0], buf, sizeof buf, 0, test_on_done, &d);
    cr_assert_eq(weft_op_submit(loop, &rd), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    test_loop_free(loop);
    cr_assert_eq(d.calls, 0);
    cr_assert_not(weft_op_pending(&rd));
    test_close(sv[0]);
    test_close(sv[1]);
}

/* IOCP is compiled only on Windows, and kqueue only where it is found:
 * where one is not compiled, asking for it by name says so instead of
 * failing to link or falling back. */
Test(ops, backends_without_a_source_are_not_compiled)
{
    cr_assert_eq(weft_backend_compiled(WEFT_BACKEND_KQUEUE), WEFT_HAVE_KQUEUE);
    cr_assert_eq(weft_backend_compiled(WEFT_BACKEND_IOCP), WEFT_HAVE_IOCP);
    char *saved = getenv("WEFT_BACKEND") ? strdup(getenv("WEFT_BACKEND")) : NULL;
    weft_loop *loop = (weft_loop *)1;
#if !WEFT_HAVE_KQUEUE
    cr_assert_eq(weft_backend_probe(WEFT_BACKEND_KQUEUE), WEFT_ENOT_COMPILED);
    test_setenv("WEFT_BACKEND", "kqueue");
    cr_assert_eq(weft_loop_new(NULL, &loop), WEFT_ENOT_COMPILED);
    cr_assert_null(loop);
#endif
#if !WEFT_HAVE_IOCP
    test_setenv("WEFT_BACKEND", "iocp");
    cr_assert_eq(weft_loop_new(NULL, &loop), WEFT_ENOT_COMPILED);
#endif
    /* AUTO: the loop and weft_backend_auto() run the same search. */
    test_unsetenv("WEFT_BACKEND");
    int picked = weft_backend_auto();
    cr_assert_geq(picked, 0, "%s", weft_strerror(picked));
    cr_assert(weft_backend_compiled((weft_backend_kind)picked));
    if (WEFT_KQUEUE_LIBKQUEUE) /* emulated kqueue: only by name */
        cr_assert_neq(picked, WEFT_BACKEND_KQUEUE);
    cr_assert_eq(weft_loop_new(NULL, &loop), 0);
    cr_assert_str_eq(weft_loop_backend_name(loop), weft_backend_name((weft_backend_kind)picked));
    weft_loop_free(loop);
    if (saved)
        test_setenv("WEFT_BACKEND", saved);
    free(saved);
}

/* ---- weft_await_op's fast path ---- */

#include "loop_internal.h"
#include "task_internal.h"

/* Does a recv with data waiting complete inside submit? Readiness
 * backends (their first try) and IOCP (an immediate success posts no
 * packet) do; io_uring goes through the ring. */
static int done_at_submit(weft_loop *loop)
{
    return strcmp(weft_loop_backend_name(loop), "io_uring") != 0;
}

typedef struct {
    weft_loop *loop;
    int fd;
    char buf[64];
    int64_t got;
    int marker_ran_before; /* the call_soon marker had run when the op returned */
    int marker;
    uint64_t turns; /* loop turns the await took */
    weft_handle h;
} inline_rec;

static void set_marker(void *arg)
{
    ((inline_rec *)arg)->marker = 1;
}

/* Queue a callback, then await a recv: if the await returned without
 * suspending, the callback has not run yet. */
static int await_recv_task(void *arg, intptr_t *result)
{
    inline_rec *r = arg;
    (void)result;
    weft_call_soon(r->loop, &r->h, set_marker, r);
    uint64_t t0 = r->loop->turn;
    weft_op op;
    weft_op_prep_recv(&op, r->fd, r->buf, sizeof r->buf, 0, NULL, NULL);
    r->got = weft_await_op(r->loop, &op);
    r->turns = r->loop->turn - t0;
    r->marker_ran_before = r->marker;
    cr_assert_not(weft_op_pending(&op));
    return 0;
}

Test(ops, await_of_an_op_done_at_submit_returns_without_a_loop_turn)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(test_write(sv[1], "ready", 5), 5);
    static inline_rec r;
    r = (inline_rec){.loop = loop, .fd = sv[0]};
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, await_recv_task, &r, &t), 0);
    cr_assert_eq(weft_run_until_complete(loop, t, NULL), 0);
    weft_future_unref(t);
    cr_assert_eq(r.got, 5);
    cr_assert_eq(memcmp(r.buf, "ready", 5), 0);
    if (done_at_submit(loop)) {
        /* The recv succeeds at submit: no suspension, no loop turn. */
        cr_assert_eq(r.turns, 0);
        cr_assert_not(r.marker_ran_before);
    } else {
        /* io_uring completes it through the ring: a normal suspension. */
        cr_assert_geq(r.turns, 1);
    }
    cr_assert_eq(loop->ops_inflight, 0);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(ops, await_of_an_op_failing_at_submit_returns_the_error_at_once)
{
    weft_loop *loop = test_loop_new();
    static inline_rec r;
    /* No such fd, and beyond any table: every backend fails it in submit. */
    r = (inline_rec){.loop = loop, .fd = 1 << 20};
    weft_future *t;
    cr_assert_eq(weft_task_spawn(loop, await_recv_task, &r, &t), 0);
    cr_assert_eq(weft_run_until_complete(loop, t, NULL), 0);
    weft_future_unref(t);
    cr_assert_eq(r.got, -EBADF, "recv: %s", test_err(r.got));
    cr_assert_eq(r.turns, 0);
    cr_assert_not(r.marker_ran_before);
    cr_assert_eq(loop->ops_inflight, 0);
    test_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    int fd;
    int received;    /* bytes the greedy task has taken */
    int other_runs;  /* times the other task ran */
    int first_other; /* bytes received when the other task first ran */
    int max_streak;  /* most recvs in a row with no other task running */
    uint64_t turns;  /* loop turns the greedy task took */
} greedy_rec;

enum { GREEDY_BYTES = 2000 };

/* Receive byte by byte from a socket that always has data. */
static int greedy_task(void *arg, intptr_t *result)
{
    greedy_rec *g = arg;
    (void)result;
    uint64_t t0 = g->loop->turn;
    int streak = 0, seen = 0;
    while (g->received < GREEDY_BYTES) {
        char c;
        weft_op op;
        weft_op_prep_recv(&op, g->fd, &c, 1, 0, NULL, NULL);
        int64_t n = weft_await_op(g->loop, &op);
        cr_assert_eq(n, 1, "recv: %s", test_err(n));
        cr_assert_eq(c, (char)('a' + g->received % 26));
        g->received++;
        streak = g->other_runs == seen ? streak + 1 : 1;
        seen = g->other_runs;
        if (streak > g->max_streak)
            g->max_streak = streak;
    }
    g->turns = g->loop->turn - t0;
    return 0;
}

static int other_task(void *arg, intptr_t *result)
{
    greedy_rec *g = arg;
    (void)result;
    while (g->received < GREEDY_BYTES) {
        if (g->other_runs++ == 0)
            g->first_other = g->received;
        cr_assert_eq(weft_yield(g->loop), 0);
    }
    return 0;
}

Test(ops, a_task_whose_socket_always_has_data_lets_others_run)
{
    weft_loop *loop = test_loop_new();
    int sv[2];
    test_unix_pair(sv);
    char data[GREEDY_BYTES];
    for (int i = 0; i < GREEDY_BYTES; i++)
        data[i] = (char)('a' + i % 26);
    cr_assert_eq(test_write(sv[1], data, sizeof data), (ssize_t)sizeof data);
    static greedy_rec g;
    g = (greedy_rec){.loop = loop, .fd = sv[0]};
    weft_future *tg, *to;
    cr_assert_eq(weft_task_spawn(loop, greedy_task, &g, &tg), 0);
    cr_assert_eq(weft_task_spawn(loop, other_task, &g, &to), 0);
    cr_assert_eq(weft_run_until_complete(loop, tg, NULL), 0);
    cr_assert_eq(weft_run_until_complete(loop, to, NULL), 0);
    weft_future_unref(tg);
    weft_future_unref(to);
    cr_assert_eq(g.received, GREEDY_BYTES);
    /* The other task ran early and kept running while bytes kept coming. */
    cr_assert_leq(g.first_other, WEFT__AWAIT_INLINE_MAX + 1);
    cr_assert_leq(g.max_streak, WEFT__AWAIT_INLINE_MAX + 1, "streak %d", g.max_streak);
    cr_assert_geq(g.other_runs, GREEDY_BYTES / (WEFT__AWAIT_INLINE_MAX + 1));
    if (done_at_submit(loop)) {
        /* ...and the fast path took most recvs: one loop turn per
         * WEFT__AWAIT_INLINE_MAX + 1 of them, not one per recv. */
        cr_assert_leq(g.turns, GREEDY_BYTES / (WEFT__AWAIT_INLINE_MAX + 1) + 2, "turns %llu",
                      (unsigned long long)g.turns);
        cr_assert_eq(g.max_streak, WEFT__AWAIT_INLINE_MAX + 1, "the bound is reached");
    }
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}
