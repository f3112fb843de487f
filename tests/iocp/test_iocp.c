/* The IOCP backend under its own tests (Windows; run under wine): the ops
 * over loopback, cancel, close and forget with ops in flight, wake-ups,
 * timers, teardown with ops in flight, a listener another loop's port owns,
 * and the SO_UPDATE_*_CONTEXT calls wine does not need (so only a counter
 * can show they are made). */
#include "weft.h"

#include "harness.h"
#include "iocp_internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

TestSuite(iocp, .timeout = 30);

typedef struct {
    int calls;
    int64_t result;
    int pending_in_cb; /* weft_op_pending() seen from the callback */
} rec;

static void on_done(weft_op *op)
{
    rec *r = op->data;
    r->calls++;
    r->result = op->result;
    r->pending_in_cb = weft_op_pending(op);
}

static weft_loop *loop_new(void)
{
    weft_loop *loop = NULL;
    int rc = weft_loop_new(NULL, &loop);
    cr_assert_eq(rc, 0, "weft_loop_new: %s", weft_strerror(rc));
    cr_assert_str_eq(weft_loop_backend_name(loop), "iocp");
    return loop;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Run until nothing is left, at most ~10 s. */
static void run(weft_loop *loop)
{
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE), 0);
}

/* Run turns until *calls is nonzero (bounded). */
static void run_until(weft_loop *loop, const int *calls)
{
    uint64_t end = now_ns() + 10000000000ull;
    while (!*calls) {
        cr_assert_lt(now_ns(), end, "timed out");
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
}

static int tcp_socket(void)
{
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    cr_assert_neq(s, INVALID_SOCKET);
    return weft__sock_fd(s);
}

/* Bound to 127.0.0.1 and a free port, never listening: a connect to *addr
 * is refused while it stays open. (A closed listener's port would be free
 * for the connecting socket's own bind before ConnectEx: a self-connect.) */
static int refusing(struct sockaddr_in *addr)
{
    int fd = tcp_socket();
    *addr = (struct sockaddr_in){.sin_family = AF_INET};
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(weft__sock(fd), (struct sockaddr *)addr, sizeof *addr), 0);
    int len = sizeof *addr;
    cr_assert_eq(getsockname(weft__sock(fd), (struct sockaddr *)addr, &len), 0);
    return fd;
}

static int listener(struct sockaddr_in *addr)
{
    int fd = refusing(addr);
    cr_assert_eq(listen(weft__sock(fd), 64), 0);
    return fd;
}

/* A connected pair made with the loop's ACCEPT and CONNECT. */
static void tcp_pair(weft_loop *loop, int *client, int *server)
{
    struct sockaddr_in addr, peer;
    memset(&peer, 0, sizeof peer);
    int lfd = listener(&addr);
    int cfd = tcp_socket();
    weft_op acc, con;
    rec ra = {0}, rc = {0};
    weft_op_prep_accept(&acc, lfd, &peer, sizeof peer, on_done, &ra);
    weft_op_prep_connect(&con, cfd, &addr, sizeof addr, on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    cr_assert_eq(weft_op_submit(loop, &con), 0);
    run(loop);
    cr_assert_eq(ra.calls, 1);
    cr_assert_eq(rc.calls, 1);
    cr_assert_eq(rc.result, 0, "connect: %s", weft_strerror((int)rc.result));
    cr_assert_geq(ra.result, 0, "accept: %s", weft_strerror((int)ra.result));
    cr_assert_eq(acc.addrlen, sizeof peer);
    cr_assert_eq(peer.sin_family, AF_INET);
    cr_assert_eq(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    /* The peer address is the client's own. */
    struct sockaddr_in local;
    int len = sizeof local;
    cr_assert_eq(getsockname(weft__sock(cfd), (struct sockaddr *)&local, &len), 0);
    cr_assert_eq(peer.sin_port, local.sin_port);
    /* The loop knew lfd: tell it before the close, or a socket that gets the
     * number next would be taken for one already associated with the port. */
    cr_assert_eq(weft_loop_forget_fd(loop, lfd), 0);
    weft__sock_close(lfd);
    *client = cfd;
    *server = (int)ra.result;
}

Test(iocp, accept_connect_send_recv_counts_bytes)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    enum { N = 1 << 20 };
    static char out[N], in[N];
    for (int i = 0; i < N; i++)
        out[i] = (char)(i * 7 + 3);
    size_t sent = 0, got = 0;
    while (got < N) {
        weft_op so, ro;
        rec rs = {0}, rr = {0};
        if (sent < N) {
            weft_op_prep_send(&so, c, out + sent, N - sent, 0, on_done, &rs);
            cr_assert_eq(weft_op_submit(loop, &so), 0);
        }
        weft_op_prep_recv(&ro, s, in + got, N - got, 0, on_done, &rr);
        cr_assert_eq(weft_op_submit(loop, &ro), 0);
        run(loop);
        if (sent < N) {
            cr_assert_gt(rs.result, 0, "send: %s", weft_strerror((int)rs.result));
            sent += (size_t)rs.result;
        }
        cr_assert_gt(rr.result, 0, "recv: %s", weft_strerror((int)rr.result));
        got += (size_t)rr.result;
    }
    cr_assert_eq(sent, (size_t)N);
    cr_assert_eq(memcmp(in, out, N), 0);
    weft__sock_close(c);
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

/* Wine lets getpeername work without them, so only the backend's own
 * count shows that the calls are made (and accepted by the system). */
Test(iocp, accept_and_connect_update_their_context)
{
    weft_loop *loop = loop_new();
    uint64_t a = 9, k = 9;
    cr_assert_eq(weft__iocp_counts(loop, &a, &k), 0);
    cr_assert_eq(a, 0);
    cr_assert_eq(k, 0);
    int c, s;
    tcp_pair(loop, &c, &s);
    cr_assert_eq(weft__iocp_counts(loop, &a, &k), 0);
    cr_assert_eq(a, 1, "SO_UPDATE_ACCEPT_CONTEXT calls: %llu", (unsigned long long)a);
    cr_assert_eq(k, 1, "SO_UPDATE_CONNECT_CONTEXT calls: %llu", (unsigned long long)k);
    /* What the calls are for: the sockets know their peers. */
    struct sockaddr_in sa;
    int len = sizeof sa;
    cr_assert_eq(getpeername(weft__sock(s), (struct sockaddr *)&sa, &len), 0);
    len = sizeof sa;
    cr_assert_eq(getpeername(weft__sock(c), (struct sockaddr *)&sa, &len), 0);
    cr_assert_eq(shutdown(weft__sock(c), SD_SEND), 0);
    weft__sock_close(c);
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, recv_sees_eof)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    char buf[16];
    weft_op ro;
    rec rr = {0};
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(rr.calls, 0, "completed with no data");
    cr_assert_eq(shutdown(weft__sock(c), SD_SEND), 0);
    run(loop);
    cr_assert_eq(rr.calls, 1);
    cr_assert_eq(rr.result, 0);
    weft__sock_close(c);
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, connect_refused)
{
    weft_loop *loop = loop_new();
    struct sockaddr_in addr;
    int bound = refusing(&addr);
    int cfd = tcp_socket();
    weft_op con;
    rec rc = {0};
    weft_op_prep_connect(&con, cfd, &addr, sizeof addr, on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &con), 0);
    run(loop);
    cr_assert_eq(rc.calls, 1);
    cr_assert_eq(rc.result, -ECONNREFUSED, "got %s", weft_strerror((int)rc.result));
    uint64_t k = 9;
    cr_assert_eq(weft__iocp_counts(loop, NULL, &k), 0);
    cr_assert_eq(k, 0, "no context update for a failed connect");
    weft__sock_close(cfd);
    weft__sock_close(bound);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, peer_reset_during_recv)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    char buf[16];
    weft_op ro;
    rec rr = {0};
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(rr.calls, 0);
    struct linger lg = {1, 0}; /* close with an RST */
    cr_assert_eq(setsockopt(weft__sock(c), SOL_SOCKET, SO_LINGER, (char *)&lg, sizeof lg), 0);
    weft__sock_close(c);
    run(loop);
    cr_assert_eq(rr.calls, 1);
    cr_assert_eq(rr.result, -ECONNRESET, "got %s", weft_strerror((int)rr.result));
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, poll_in_waits_for_data_poll_out_is_ready)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    weft_op pin, pout;
    rec ri = {0}, ro = {0};
    weft_op_prep_poll_in(&pin, s, on_done, &ri);
    weft_op_prep_poll_out(&pout, s, on_done, &ro);
    cr_assert_eq(weft_op_submit(loop, &pin), 0);
    cr_assert_eq(weft_op_submit(loop, &pout), 0);
    run_until(loop, &ro.calls);
    cr_assert_eq(ro.result, 0, "poll_out: %s", weft_strerror((int)ro.result));
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(ri.calls, 0, "poll_in ready with no data");
    cr_assert_eq(send(weft__sock(c), "x", 1, 0), 1);
    run(loop);
    cr_assert_eq(ri.calls, 1);
    cr_assert_eq(ri.result, 0);
    /* The byte is still there for a recv. */
    char b = 0;
    cr_assert_eq(recv(weft__sock(s), &b, 1, 0), 1);
    cr_assert_eq(b, 'x');
    char info[256];
    cr_assert_geq(weft_loop_backend_info(loop, info, sizeof info), 0);
    cr_assert(strstr(info, "AFD poll open"), "info: %s", info);
    weft__sock_close(c);
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, immediate_success_is_not_run_inline)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    cr_assert_eq(send(weft__sock(c), "abc", 3, 0), 3);
    Sleep(50); /* the bytes are queued on s: WSARecv succeeds at once */
    char buf[8];
    weft_op ro;
    rec rr = {0};
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(rr.calls, 0, "callback ran inside submit");
    cr_assert(weft_op_pending(&ro));
    run(loop);
    cr_assert_eq(rr.calls, 1);
    cr_assert_eq(rr.result, 3);
    cr_assert_eq(rr.pending_in_cb, 0);
    weft__sock_close(c);
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, cancel_recv_in_flight)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    char buf[8];
    weft_op ro;
    rec rr = {0};
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_op_cancel(loop, &ro), 0);
    cr_assert_eq(weft_op_cancel(loop, &ro), -EALREADY);
    /* Still the system's until its packet: not reusable yet. */
    cr_assert(weft_op_pending(&ro));
    cr_assert_eq(weft_op_submit(loop, &ro), -EBUSY);
    cr_assert_eq(rr.calls, 0);
    run(loop);
    cr_assert_eq(rr.calls, 1);
    cr_assert_eq(rr.result, -ECANCELED, "got %s", weft_strerror((int)rr.result));
    /* The socket still works. */
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(send(weft__sock(c), "hi", 2, 0), 2);
    run(loop);
    cr_assert_eq(rr.calls, 2);
    cr_assert_eq(rr.result, 2);
    weft__sock_close(c);
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, cancel_poll_and_accept)
{
    weft_loop *loop = loop_new();
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    weft_op acc, pin;
    rec ra = {0}, ri = {0};
    weft_op_prep_accept(&acc, lfd, NULL, 0, on_done, &ra);
    weft_op_prep_poll_in(&pin, lfd, on_done, &ri);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    cr_assert_eq(weft_op_submit(loop, &pin), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_op_cancel(loop, &acc), 0);
    cr_assert_eq(weft_op_cancel(loop, &pin), 0);
    run(loop);
    cr_assert_eq(ra.calls, 1);
    cr_assert_eq(ra.result, -ECANCELED, "accept: %s", weft_strerror((int)ra.result));
    cr_assert_eq(ri.calls, 1);
    cr_assert_eq(ri.result, -ECANCELED, "poll: %s", weft_strerror((int)ri.result));
    weft__sock_close(lfd);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, close_op_cancels_pending_ops)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    char buf[8];
    weft_op ro, pin, cl;
    rec rr = {0}, ri = {0}, rc = {0};
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    weft_op_prep_poll_in(&pin, s, on_done, &ri);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(weft_op_submit(loop, &pin), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    weft_op_prep_close(&cl, s, on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    run(loop);
    cr_assert_eq(rc.calls, 1);
    cr_assert_eq(rc.result, 0);
    cr_assert_eq(rr.calls, 1);
    cr_assert_eq(rr.result, -ECANCELED, "recv: %s", weft_strerror((int)rr.result));
    cr_assert_eq(ri.calls, 1);
    cr_assert_eq(ri.result, -ECANCELED, "poll: %s", weft_strerror((int)ri.result));
    /* The socket is gone. */
    cr_assert_eq(send(weft__sock(s), "x", 1, 0), SOCKET_ERROR);
    weft__sock_close(c);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, forget_fd_cancels_pending_ops)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    char buf[8];
    weft_op ro, so;
    rec rr = {0}, rs = {0};
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_loop_forget_fd(loop, s), 0);
    weft__sock_close(s);
    run(loop);
    cr_assert_eq(rr.calls, 1);
    cr_assert_eq(rr.result, -ECANCELED, "recv: %s", weft_strerror((int)rr.result));
    /* A new socket (perhaps the same number) starts afresh. */
    int c2, s2;
    tcp_pair(loop, &c2, &s2);
    weft_op_prep_send(&so, c2, "ok", 2, 0, on_done, &rs);
    weft_op_prep_recv(&ro, s2, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &so), 0);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    run(loop);
    cr_assert_eq(rs.result, 2);
    cr_assert_eq(rr.result, 2);
    weft__sock_close(c);
    weft__sock_close(c2);
    weft__sock_close(s2);
    cr_assert_eq(weft_loop_free(loop), 0);
}

typedef struct {
    weft_loop *loop;
    weft_handle h;
    int ran;
} wake_ctx;

static void on_wake(void *arg)
{
    wake_ctx *w = arg;
    w->ran++;
    weft_loop_stop(w->loop);
}

static void *wake_thread(void *arg)
{
    wake_ctx *w = arg;
    Sleep(100);
    weft_call_soon_threadsafe(w->loop, &w->h, on_wake, w);
    return NULL;
}

static void never(void *arg)
{
    (void)arg;
    cr_assert(0, "the 20 s timer fired");
}

Test(iocp, wake_from_another_thread)
{
    weft_loop *loop = loop_new();
    wake_ctx w = {.loop = loop};
    weft_handle t;
    memset(&t, 0, sizeof t);
    cr_assert_eq(weft_call_later(loop, &t, 20000000000ll, never, NULL), 0);
    pthread_t th;
    uint64_t t0 = now_ns();
    cr_assert_eq(pthread_create(&th, NULL, wake_thread, &w), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_FOREVER), 1);
    uint64_t took = now_ns() - t0;
    pthread_join(th, NULL);
    cr_assert_eq(w.ran, 1);
    cr_assert_lt(took, 5000000000ull, "woke after %llu ns", (unsigned long long)took);
    cr_assert_eq(weft_handle_cancel(loop, &t), 0);
    cr_assert_eq(weft_loop_free(loop), 0);
}

static void on_timer(void *arg)
{
    *(uint64_t *)arg = now_ns();
}

Test(iocp, timer_is_not_early)
{
    weft_loop *loop = loop_new();
    for (int i = 0; i < 3; i++) {
        weft_handle t;
        memset(&t, 0, sizeof t);
        uint64_t fired = 0, t0 = now_ns();
        cr_assert_eq(weft_call_later(loop, &t, 50000000, on_timer, &fired), 0);
        run(loop);
        cr_assert_neq(fired, 0);
        uint64_t took = fired - t0;
        cr_log_info("50 ms timer fired after %.2f ms", took / 1e6);
        cr_assert_geq(took, 50000000ull, "fired after %llu ns", (unsigned long long)took);
        /* Lateness: Windows' ~15.6 ms tick, a loaded machine. */
        cr_assert_lt(took, 1000000000ull, "fired after %llu ns", (unsigned long long)took);
    }
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, free_with_ops_in_flight)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    char buf[8];
    weft_op ro, pin, acc;
    rec rr = {0}, ri = {0}, ra = {0};
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    weft_op_prep_poll_in(&pin, c, on_done, &ri);
    weft_op_prep_accept(&acc, lfd, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(weft_op_submit(loop, &pin), 0);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_loop_free(loop), 0);
    /* Nothing runs, and nothing is left pointing into the ops. */
    cr_assert_eq(rr.calls + ri.calls + ra.calls, 0);
    cr_assert_not(weft_op_pending(&ro));
    cr_assert_not(weft_op_pending(&pin));
    cr_assert_not(weft_op_pending(&acc));
    memset(&ro, 0xa5, sizeof ro); /* would show up if the system wrote here later */
    memset(&acc, 0xa5, sizeof acc);
    Sleep(50);
    weft__sock_close(c);
    weft__sock_close(s);
    weft__sock_close(lfd);
}

/* Two loops, one listener (weft_serve_threads): the listener belongs to the
 * first loop's port, so the second serves its accept readiness-style. */
Test(iocp, second_loop_accepts_on_a_listener_the_first_owns)
{
    weft_loop *a = loop_new(), *b = loop_new();
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    weft_op acc_a, acc_b;
    rec ra = {0}, rb = {0};
    weft_op_prep_accept(&acc_a, lfd, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(a, &acc_a), 0); /* associates lfd with a's port */
    cr_assert_eq(weft_op_cancel(a, &acc_a), 0);
    cr_assert_eq(weft_loop_run(a, WEFT_RUN_UNTIL_IDLE), 0);
    cr_assert_eq(ra.result, -ECANCELED);
    struct sockaddr_in peer;
    memset(&peer, 0, sizeof peer);
    weft_op_prep_accept(&acc_b, lfd, &peer, sizeof peer, on_done, &rb);
    cr_assert_eq(weft_op_submit(b, &acc_b), 0);
    cr_assert_eq(weft_loop_run(b, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(rb.calls, 0);
    int cfd = tcp_socket();
    weft_op con;
    rec rc = {0};
    weft_op_prep_connect(&con, cfd, &addr, sizeof addr, on_done, &rc);
    cr_assert_eq(weft_op_submit(a, &con), 0);
    cr_assert_eq(weft_loop_run(a, WEFT_RUN_UNTIL_IDLE), 0);
    cr_assert_eq(rc.result, 0);
    run_until(b, &rb.calls);
    cr_assert_geq(rb.result, 0, "accept: %s", weft_strerror((int)rb.result));
    cr_assert_eq(acc_b.addrlen, sizeof peer);
    cr_assert_eq(peer.sin_family, AF_INET);
    /* The accepted socket is b's to use like any other. */
    int s = (int)rb.result;
    char buf[4];
    weft_op ro;
    rec rr = {0};
    weft_op_prep_recv(&ro, s, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(b, &ro), 0);
    cr_assert_eq(send(weft__sock(cfd), "abc", 3, 0), 3);
    run(b);
    cr_assert_eq(rr.result, 3);
    /* And a's own accepts on it still work. */
    weft_op_prep_accept(&acc_a, lfd, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(a, &acc_a), 0);
    int cfd2 = tcp_socket();
    cr_assert_eq(connect(weft__sock(cfd2), (struct sockaddr *)&addr, sizeof addr), 0);
    run(a);
    cr_assert_geq(ra.result, 0, "accept on a: %s", weft_strerror((int)ra.result));
    weft__sock_close((int)ra.result);
    weft__sock_close(cfd2);
    weft__sock_close(s);
    weft__sock_close(cfd);
    weft__sock_close(lfd);
    cr_assert_eq(weft_loop_free(a), 0);
    cr_assert_eq(weft_loop_free(b), 0);
}

Test(iocp, no_handle_is_ebadf_a_non_socket_is_enotsock)
{
    weft_loop *loop = loop_new();
    char buf[4];
    weft_op ro;
    rec rr = {0};
    weft_op_prep_recv(&ro, 0x7ffffff0, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(rr.calls, 0);
    run(loop);
    cr_assert_eq(rr.calls, 1);
    cr_assert_eq(rr.result, -EBADF, "got %s", weft_strerror((int)rr.result));
    /* A live handle that is no socket: ENOTSOCK. */
    HANDLE ev = CreateEventA(NULL, FALSE, FALSE, NULL);
    cr_assert_not_null(ev);
    weft_op_prep_recv(&ro, (int)(intptr_t)ev, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    run(loop);
    cr_assert_eq(rr.calls, 2);
    cr_assert_eq(rr.result, -ENOTSOCK, "got %s", weft_strerror((int)rr.result));
    CloseHandle(ev);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, auto_picks_iocp)
{
    cr_assert(weft_backend_compiled(WEFT_BACKEND_IOCP));
    cr_assert_eq(weft_backend_auto(), WEFT_BACKEND_IOCP);
    cr_assert_eq(weft_backend_probe(WEFT_BACKEND_IOCP), 0);
    char info[256];
    weft_loop *loop = loop_new();
    cr_assert_gt(weft_loop_backend_info(loop, info, sizeof info), 0);
    cr_assert(strstr(info, "skip-on-success on"), "info: %s", info);
    cr_assert_eq(weft_loop_free(loop), 0);
}

/* A caller who closes a socket without CLOSE or forget_fd, then gets its
 * number back for a new listener: the loop must not take the new socket for
 * the old one (which was associated with its port), or the accept would
 * never complete. */
Test(iocp, reused_number_after_a_plain_close)
{
    weft_loop *loop = loop_new();
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    weft_op acc;
    rec ra = {0};
    weft_op_prep_accept(&acc, lfd, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    cr_assert_eq(weft_op_cancel(loop, &acc), 0);
    run(loop);
    cr_assert_eq(ra.result, -ECANCELED);
    weft__sock_close(lfd); /* no forget_fd: the caller's mistake */
    int again = -1, others[64], nothers = 0;
    for (int i = 0; i < 64 && again < 0; i++) {
        struct sockaddr_in a2;
        int fd = listener(&a2);
        if (fd == lfd) {
            again = fd;
            addr = a2;
        } else {
            others[nothers++] = fd;
        }
    }
    for (int i = 0; i < nothers; i++)
        weft__sock_close(others[i]);
    if (again < 0)
        cr_skip_test("the socket number was not handed out again");
    ra = (rec){0};
    weft_op_prep_accept(&acc, again, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    int cfd = tcp_socket();
    cr_assert_eq(connect(weft__sock(cfd), (struct sockaddr *)&addr, sizeof addr), 0);
    run_until(loop, &ra.calls);
    cr_assert_geq(ra.result, 0, "accept: %s", weft_strerror((int)ra.result));
    weft__sock_close((int)ra.result);
    weft__sock_close(cfd);
    cr_assert_eq(weft_loop_forget_fd(loop, again), 0);
    weft__sock_close(again);
    cr_assert_eq(weft_loop_free(loop), 0);
}

/* ---- multishot ---- */

typedef struct {
    weft_loop *loop;
    int n, last, calls_after_last;
    int64_t final;
    int fds[256];
    size_t bytes;
    char data[8192];
    int hold; /* recv: keep buffers instead of releasing them */
    void *held[16];
    int nheld;
} mrec;

static void on_multi(weft_multi *m, int64_t res, void *buf, int more)
{
    mrec *r = m->data;
    if (r->last)
        r->calls_after_last++;
    if (!more) {
        r->last = 1;
        r->final = res;
        return;
    }
    if (buf) {
        cr_assert_gt(res, 0);
        if (r->bytes + (size_t)res <= sizeof r->data)
            memcpy(r->data + r->bytes, buf, (size_t)res);
        r->bytes += (size_t)res;
        if (r->hold)
            r->held[r->nheld++] = buf;
        else
            cr_assert_eq(weft_loop_buffer_release(r->loop, buf), 0);
    } else {
        cr_assert_lt(r->n, 256);
        r->fds[r->n] = (int)res;
    }
    r->n++;
}

Test(iocp, multishot_accept_takes_every_connection)
{
    weft_loop *loop = loop_new();
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    weft_multi m;
    memset(&m, 0, sizeof m);
    mrec r = {.loop = loop};
    cr_assert_eq(weft_accept_multi(loop, &m, lfd, on_multi, &r), 0);
    cr_assert_eq(weft_accept_multi(loop, &m, lfd, on_multi, &r), -EBUSY);
    enum { N = 40 };
    int clients[N];
    for (int i = 0; i < N; i++) {
        clients[i] = tcp_socket();
        cr_assert_eq(connect(weft__sock(clients[i]), (struct sockaddr *)&addr, sizeof addr), 0);
        if (i % 10 == 9)
            cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    }
    uint64_t end = now_ns() + 10000000000ull;
    while (r.n < N && now_ns() < end)
        cr_assert_eq(weft_loop_run(loop, WEFT_RUN_ONCE), 1);
    cr_assert_eq(r.n, N);
    cr_assert_not(r.last);
    for (int i = 0; i < N; i++) {
        struct sockaddr_in sa;
        int len = sizeof sa;
        cr_assert_eq(getpeername(weft__sock(r.fds[i]), (struct sockaddr *)&sa, &len), 0);
    }
    uint64_t a = 0;
    cr_assert_eq(weft__iocp_counts(loop, &a, NULL), 0);
    cr_assert_eq(a, (uint64_t)N, "SO_UPDATE_ACCEPT_CONTEXT calls: %llu", (unsigned long long)a);
    cr_assert_eq(weft_multi_cancel(loop, &m), 0);
    cr_assert_eq(weft_multi_cancel(loop, &m), -EALREADY);
    cr_assert(weft_multi_active(&m));
    run(loop);
    cr_assert(r.last);
    cr_assert_eq(r.final, -ECANCELED, "got %s", weft_strerror((int)r.final));
    cr_assert_eq(r.calls_after_last, 0);
    cr_assert_not(weft_multi_active(&m));
    for (int i = 0; i < N; i++) {
        weft__sock_close(r.fds[i]);
        weft__sock_close(clients[i]);
    }
    cr_assert_eq(weft_loop_forget_fd(loop, lfd), 0);
    weft__sock_close(lfd);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, multishot_recv_until_end_of_stream)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    weft_multi m;
    memset(&m, 0, sizeof m);
    mrec r = {.loop = loop};
    cr_assert_eq(weft_recv_multi(loop, &m, s, on_multi, &r), -ENOBUFS, "no buffers yet");
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 64), 0);
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 64), -EBUSY);
    cr_assert_eq(weft_recv_multi(loop, &m, s, on_multi, &r), 0);
    char out[5000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 13 + 1);
    size_t sent = 0;
    while (sent < sizeof out) {
        int chunk = sizeof out - sent < 700 ? (int)(sizeof out - sent) : 700;
        int n = send(weft__sock(c), out + sent, chunk, 0);
        cr_assert_gt(n, 0);
        sent += (size_t)n;
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    }
    cr_assert_eq(shutdown(weft__sock(c), SD_SEND), 0);
    run(loop);
    cr_assert(r.last);
    cr_assert_eq(r.final, 0, "got %s", weft_strerror((int)r.final));
    cr_assert_eq(r.bytes, sizeof out);
    cr_assert_eq(memcmp(r.data, out, sizeof out), 0);
    cr_assert_not(weft_multi_active(&m));
    weft__sock_close(c);
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, multishot_recv_pauses_without_buffers_and_resumes)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    cr_assert_eq(weft_loop_buffers_setup(loop, 2, 8), 0);
    weft_multi m;
    memset(&m, 0, sizeof m);
    mrec r = {.loop = loop, .hold = 1};
    cr_assert_eq(weft_recv_multi(loop, &m, s, on_multi, &r), 0);
    cr_assert_eq(send(weft__sock(c), "0123456789abcdefghijklmnopqrstuv", 32, 0), 32);
    uint64_t end = now_ns() + 5000000000ull;
    while (r.bytes < 16 && now_ns() < end)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(r.bytes, 16, "both buffers filled");
    for (int i = 0; i < 5; i++)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    cr_assert_eq(r.bytes, 16, "paused with no buffer");
    cr_assert_not(r.last);
    /* Release them (and the next ones as they come). */
    r.hold = 0;
    for (int i = 0; i < r.nheld; i++)
        cr_assert_eq(weft_loop_buffer_release(loop, r.held[i]), 0);
    end = now_ns() + 5000000000ull;
    while (r.bytes < 32 && now_ns() < end)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(r.bytes, 32);
    cr_assert_eq(memcmp(r.data, "0123456789abcdefghijklmnopqrstuv", 32), 0);
    cr_assert_eq(weft_multi_cancel(loop, &m), 0);
    run(loop);
    cr_assert_eq(r.final, -ECANCELED);
    weft__sock_close(c);
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, multishot_recv_paused_cancelled_and_armed_closed)
{
    weft_loop *loop = loop_new();
    int c, s, c2, s2;
    tcp_pair(loop, &c, &s);
    tcp_pair(loop, &c2, &s2);
    cr_assert_eq(weft_loop_buffers_setup(loop, 1, 4), 0);
    weft_multi m1, m2;
    memset(&m1, 0, sizeof m1);
    memset(&m2, 0, sizeof m2);
    mrec r1 = {.loop = loop, .hold = 1}, r2 = {.loop = loop};
    cr_assert_eq(weft_recv_multi(loop, &m1, s, on_multi, &r1), 0);
    cr_assert_eq(send(weft__sock(c), "abcdefgh", 8, 0), 8);
    uint64_t end = now_ns() + 5000000000ull;
    while (r1.bytes < 4 && now_ns() < end)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(r1.bytes, 4); /* and paused: the one buffer is held */
    cr_assert_eq(weft_multi_cancel(loop, &m1), 0);
    run(loop);
    cr_assert_eq(r1.final, -ECANCELED);
    cr_assert_eq(weft_loop_buffer_release(loop, r1.held[0]), 0);
    /* A CLOSE op on the socket of an armed multishot recv ends it. */
    cr_assert_eq(weft_recv_multi(loop, &m2, s2, on_multi, &r2), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    weft_op cl;
    rec rc = {0};
    weft_op_prep_close(&cl, s2, on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    run(loop);
    cr_assert_eq(rc.result, 0);
    cr_assert(r2.last);
    cr_assert_eq(r2.final, -ECANCELED, "got %s", weft_strerror((int)r2.final));
    cr_assert_not(weft_multi_active(&m2));
    weft__sock_close(c);
    weft__sock_close(s);
    weft__sock_close(c2);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, free_with_multishot_requests_in_flight)
{
    weft_loop *loop = loop_new();
    int c, s;
    tcp_pair(loop, &c, &s);
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 64), 0);
    weft_multi ma, mr;
    memset(&ma, 0, sizeof ma);
    memset(&mr, 0, sizeof mr);
    mrec ra = {.loop = loop}, rr = {.loop = loop};
    cr_assert_eq(weft_accept_multi(loop, &ma, lfd, on_multi, &ra), 0);
    cr_assert_eq(weft_recv_multi(loop, &mr, s, on_multi, &rr), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(weft_loop_free(loop), 0);
    cr_assert_not(weft_multi_active(&ma));
    cr_assert_not(weft_multi_active(&mr));
    cr_assert_eq(ra.n + rr.n + ra.last + rr.last, 0);
    memset(&ma, 0xa5, sizeof ma);
    memset(&mr, 0xa5, sizeof mr);
    Sleep(50);
    weft__sock_close(c);
    weft__sock_close(s);
    weft__sock_close(lfd);
}

/* A multishot accept on a listener another loop's port owns: AFD polls and
 * non-blocking accepts. */
Test(iocp, multishot_accept_on_a_listener_another_loop_owns)
{
    weft_loop *a = loop_new(), *b = loop_new();
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    weft_op acc;
    rec ra = {0};
    weft_op_prep_accept(&acc, lfd, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(a, &acc), 0);
    cr_assert_eq(weft_op_cancel(a, &acc), 0);
    run(a);
    weft_multi m;
    memset(&m, 0, sizeof m);
    mrec r = {.loop = b};
    cr_assert_eq(weft_accept_multi(b, &m, lfd, on_multi, &r), 0);
    enum { N = 10 };
    int clients[N];
    for (int i = 0; i < N; i++) {
        clients[i] = tcp_socket();
        cr_assert_eq(connect(weft__sock(clients[i]), (struct sockaddr *)&addr, sizeof addr), 0);
    }
    uint64_t end = now_ns() + 10000000000ull;
    while (r.n < N && now_ns() < end)
        cr_assert_eq(weft_loop_run(b, WEFT_RUN_ONCE), 1);
    cr_assert_eq(r.n, N);
    cr_assert_eq(weft_multi_cancel(b, &m), 0);
    run(b);
    cr_assert_eq(r.final, -ECANCELED, "got %s", weft_strerror((int)r.final));
    for (int i = 0; i < N; i++) {
        weft__sock_close(r.fds[i]);
        weft__sock_close(clients[i]);
    }
    weft__sock_close(lfd);
    cr_assert_eq(weft_loop_free(a), 0);
    cr_assert_eq(weft_loop_free(b), 0);
}

/* A client socket another loop's port owns connects readiness-style:
 * connect(), an AFD poll, then SO_ERROR. */
Test(iocp, connect_on_a_socket_another_loop_owns)
{
    weft_loop *a = loop_new(), *b = loop_new();
    struct sockaddr_in addr, gone;
    int lfd = listener(&addr);
    int bound = refusing(&gone);
    int fds[2] = {tcp_socket(), tcp_socket()};
    for (int i = 0; i < 2; i++) {
        /* Any op associates the socket with a's port (this one fails: not connected). */
        char x;
        weft_op ro;
        rec rr = {0};
        weft_op_prep_recv(&ro, fds[i], &x, 1, 0, on_done, &rr);
        cr_assert_eq(weft_op_submit(a, &ro), 0);
        run(a);
        cr_assert_lt(rr.result, 0);
    }
    weft_op c1, c2, acc;
    rec r1 = {0}, r2 = {0}, ra = {0};
    weft_op_prep_connect(&c1, fds[0], &addr, sizeof addr, on_done, &r1);
    weft_op_prep_connect(&c2, fds[1], &gone, sizeof gone, on_done, &r2);
    weft_op_prep_accept(&acc, lfd, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(b, &c1), 0);
    cr_assert_eq(weft_op_submit(b, &c2), 0);
    cr_assert_eq(weft_op_submit(b, &acc), 0);
    run(b);
    cr_assert_eq(r1.result, 0, "connect: %s", weft_strerror((int)r1.result));
    cr_assert_eq(r2.result, -ECONNREFUSED, "refused: %s", weft_strerror((int)r2.result));
    cr_assert_geq(ra.result, 0, "accept: %s", weft_strerror((int)ra.result));
    weft__sock_close((int)ra.result);
    weft__sock_close(fds[0]);
    weft__sock_close(fds[1]);
    weft__sock_close(lfd);
    weft__sock_close(bound);
    cr_assert_eq(weft_loop_free(a), 0);
    cr_assert_eq(weft_loop_free(b), 0);
}

/* Many connections at once, each echoing 64 KiB in pieces through chained
 * callbacks: batches of packets, immediate successes and short sends mixed. */
enum { EC_N = 32, EC_BYTES = 65536 };

typedef struct echo_conn {
    weft_loop *loop;
    int c, s;
    weft_op cs, cr, ss, sr; /* client send/recv, server send/recv */
    char out[EC_BYTES], in[EC_BYTES], mid[4096];
    size_t sent, got, mid_len, mid_sent;
    int err;
} echo_conn;

static void ec_client_send(weft_op *op);
static void ec_server_recv(weft_op *op);

static void ec_start_client_send(echo_conn *e)
{
    size_t n = EC_BYTES - e->sent < 5000 ? EC_BYTES - e->sent : 5000;
    weft_op_prep_send(&e->cs, e->c, e->out + e->sent, n, 0, ec_client_send, e);
    cr_assert_eq(weft_op_submit(e->loop, &e->cs), 0);
}

static void ec_client_send(weft_op *op)
{
    echo_conn *e = op->data;
    if (op->result <= 0) {
        e->err = (int)op->result ? (int)op->result : -EIO;
        return;
    }
    e->sent += (size_t)op->result;
    if (e->sent < EC_BYTES)
        ec_start_client_send(e);
}

static void ec_client_recv(weft_op *op)
{
    echo_conn *e = op->data;
    if (op->result <= 0) {
        e->err = (int)op->result ? (int)op->result : -EIO;
        return;
    }
    e->got += (size_t)op->result;
    if (e->got < EC_BYTES) {
        weft_op_prep_recv(&e->cr, e->c, e->in + e->got, EC_BYTES - e->got, 0, ec_client_recv, e);
        cr_assert_eq(weft_op_submit(e->loop, &e->cr), 0);
    }
}

static void ec_server_send(weft_op *op)
{
    echo_conn *e = op->data;
    if (op->result <= 0) {
        e->err = (int)op->result ? (int)op->result : -EIO;
        return;
    }
    e->mid_sent += (size_t)op->result;
    if (e->mid_sent < e->mid_len) {
        weft_op_prep_send(&e->ss, e->s, e->mid + e->mid_sent, e->mid_len - e->mid_sent, 0,
                          ec_server_send, e);
        cr_assert_eq(weft_op_submit(e->loop, &e->ss), 0);
        return;
    }
    weft_op_prep_recv(&e->sr, e->s, e->mid, sizeof e->mid, 0, ec_server_recv, e);
    cr_assert_eq(weft_op_submit(e->loop, &e->sr), 0);
}

static void ec_server_recv(weft_op *op)
{
    echo_conn *e = op->data;
    if (op->result == 0)
        return; /* the client is done */
    if (op->result < 0) {
        e->err = (int)op->result;
        return;
    }
    e->mid_len = (size_t)op->result;
    e->mid_sent = 0;
    weft_op_prep_send(&e->ss, e->s, e->mid, e->mid_len, 0, ec_server_send, e);
    cr_assert_eq(weft_op_submit(e->loop, &e->ss), 0);
}

Test(iocp, many_connections_echo, .timeout = 60)
{
    weft_loop *loop = loop_new();
    static echo_conn conns[EC_N];
    for (int i = 0; i < EC_N; i++) {
        echo_conn *e = &conns[i];
        e->loop = loop;
        tcp_pair(loop, &e->c, &e->s);
        for (int k = 0; k < EC_BYTES; k++)
            e->out[k] = (char)(k * 31 + i);
    }
    for (int i = 0; i < EC_N; i++) {
        echo_conn *e = &conns[i];
        ec_start_client_send(e);
        weft_op_prep_recv(&e->cr, e->c, e->in, EC_BYTES, 0, ec_client_recv, e);
        cr_assert_eq(weft_op_submit(loop, &e->cr), 0);
        weft_op_prep_recv(&e->sr, e->s, e->mid, sizeof e->mid, 0, ec_server_recv, e);
        cr_assert_eq(weft_op_submit(loop, &e->sr), 0);
    }
    int done = 0;
    uint64_t end = now_ns() + 40000000000ull;
    while (done < EC_N && now_ns() < end) {
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
        done = 0;
        for (int i = 0; i < EC_N; i++) {
            cr_assert_eq(conns[i].err, 0, "conn %d: %s", i, weft_strerror(conns[i].err));
            done += conns[i].got == EC_BYTES;
        }
    }
    cr_assert_eq(done, EC_N);
    for (int i = 0; i < EC_N; i++)
        cr_assert_eq(memcmp(conns[i].in, conns[i].out, EC_BYTES), 0, "conn %d", i);
    /* The servers' recvs are still out: the loop's teardown takes them back. */
    cr_assert_eq(weft_loop_free(loop), 0);
    for (int i = 0; i < EC_N; i++) {
        cr_assert_not(weft_op_pending(&conns[i].sr));
        weft__sock_close(conns[i].c);
        weft__sock_close(conns[i].s);
    }
}

/* Datagram sockets keep the port packet for immediate successes (no
 * skip-on-success): the other completion path. */
Test(iocp, udp_recv_send_through_the_port)
{
    weft_loop *loop = loop_new();
    SOCKET a = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP),
           b = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    cr_assert_neq(a, INVALID_SOCKET);
    cr_assert_neq(b, INVALID_SOCKET);
    struct sockaddr_in aa = {.sin_family = AF_INET}, ba = {.sin_family = AF_INET};
    aa.sin_addr.s_addr = ba.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(a, (struct sockaddr *)&aa, sizeof aa), 0);
    cr_assert_eq(bind(b, (struct sockaddr *)&ba, sizeof ba), 0);
    int len = sizeof aa;
    cr_assert_eq(getsockname(a, (struct sockaddr *)&aa, &len), 0);
    len = sizeof ba;
    cr_assert_eq(getsockname(b, (struct sockaddr *)&ba, &len), 0);
    cr_assert_eq(connect(a, (struct sockaddr *)&ba, sizeof ba), 0);
    cr_assert_eq(connect(b, (struct sockaddr *)&aa, sizeof aa), 0);
    int fa = weft__sock_fd(a), fb = weft__sock_fd(b);
    /* A recv waiting, then a send. */
    char buf[64];
    weft_op ro, so;
    rec rr = {0}, rs = {0};
    weft_op_prep_recv(&ro, fb, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
    cr_assert_eq(rr.calls, 0);
    weft_op_prep_send(&so, fa, "datagram", 8, 0, on_done, &rs);
    cr_assert_eq(weft_op_submit(loop, &so), 0);
    run(loop);
    cr_assert_eq(rs.result, 8);
    cr_assert_eq(rr.result, 8);
    cr_assert_eq(memcmp(buf, "datagram", 8), 0);
    /* Data queued before the recv: done at once, still through the port. */
    cr_assert_eq(send(a, "second", 6, 0), 6);
    Sleep(50);
    weft_op_prep_recv(&ro, fb, buf, sizeof buf, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    cr_assert_eq(rr.calls, 1, "callback ran inside submit");
    run(loop);
    cr_assert_eq(rr.calls, 2);
    cr_assert_eq(rr.result, 6);
    /* A datagram larger than the buffer: cut to the buffer, as on POSIX. */
    cr_assert_eq(send(a, "0123456789", 10, 0), 10);
    Sleep(50);
    weft_op_prep_recv(&ro, fb, buf, 4, 0, on_done, &rr);
    cr_assert_eq(weft_op_submit(loop, &ro), 0);
    run(loop);
    cr_assert_eq(rr.calls, 3);
    cr_assert_eq(rr.result, 4, "got %lld", (long long)rr.result);
    cr_assert_eq(memcmp(buf, "0123", 4), 0);
    cr_assert_eq(weft_loop_forget_fd(loop, fa), 0);
    cr_assert_eq(weft_loop_forget_fd(loop, fb), 0);
    closesocket(a);
    closesocket(b);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, ipv6_accept_connect)
{
    weft_loop *loop = loop_new();
    SOCKET l = socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP);
    if (l == INVALID_SOCKET)
        cr_skip_test("no IPv6 here");
    struct sockaddr_in6 addr;
    memset(&addr, 0, sizeof addr);
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) != 0) {
        closesocket(l);
        cr_skip_test("no IPv6 loopback here");
    }
    int len = sizeof addr;
    cr_assert_eq(getsockname(l, (struct sockaddr *)&addr, &len), 0);
    cr_assert_eq(listen(l, 8), 0);
    SOCKET c = socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP);
    cr_assert_neq(c, INVALID_SOCKET);
    struct sockaddr_in6 peer;
    memset(&peer, 0, sizeof peer);
    weft_op acc, con;
    rec ra = {0}, rc = {0};
    weft_op_prep_accept(&acc, weft__sock_fd(l), &peer, sizeof peer, on_done, &ra);
    weft_op_prep_connect(&con, weft__sock_fd(c), &addr, sizeof addr, on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    cr_assert_eq(weft_op_submit(loop, &con), 0);
    run(loop);
    cr_assert_eq(rc.result, 0, "connect: %s", weft_strerror((int)rc.result));
    cr_assert_geq(ra.result, 0, "accept: %s", weft_strerror((int)ra.result));
    cr_assert_eq(acc.addrlen, sizeof peer);
    cr_assert_eq(peer.sin6_family, AF_INET6);
    cr_assert_eq(memcmp(&peer.sin6_addr, &in6addr_loopback, sizeof peer.sin6_addr), 0);
    weft__sock_close((int)ra.result);
    closesocket(c);
    cr_assert_eq(weft_loop_forget_fd(loop, weft__sock_fd(l)), 0);
    closesocket(l);
    cr_assert_eq(weft_loop_free(loop), 0);
}

Test(iocp, accept_on_a_socket_that_does_not_listen)
{
    weft_loop *loop = loop_new();
    int s = tcp_socket();
    weft_op acc;
    rec ra = {0};
    weft_op_prep_accept(&acc, s, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(loop, &acc), 0);
    run(loop);
    cr_assert_eq(ra.result, -EINVAL, "got %s", weft_strerror((int)ra.result));
    weft_multi m;
    memset(&m, 0, sizeof m);
    mrec r = {.loop = loop};
    cr_assert_eq(weft_accept_multi(loop, &m, s, on_multi, &r), -EINVAL);
    cr_assert_not(weft_multi_active(&m));
    weft__sock_close(s);
    cr_assert_eq(weft_loop_free(loop), 0);
}

/* Shared listener: while the loop whose port holds it is busy (not polling)
 * with one AcceptEx out, the next connections go to the other loop. */
Test(iocp, shared_listener_other_loop_takes_what_the_busy_one_cannot)
{
    weft_loop *a = loop_new(), *b = loop_new();
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    weft_op acc_a, acc_b;
    rec ra = {0}, rb = {0};
    weft_op_prep_accept(&acc_a, lfd, NULL, 0, on_done, &ra);
    cr_assert_eq(weft_op_submit(a, &acc_a), 0); /* a's AcceptEx is out; a does not run */
    weft_op_prep_accept(&acc_b, lfd, NULL, 0, on_done, &rb);
    cr_assert_eq(weft_op_submit(b, &acc_b), 0);
    cr_assert_eq(weft_loop_run(b, WEFT_RUN_NOWAIT), 1);
    int c1 = tcp_socket(), c2 = tcp_socket();
    cr_assert_eq(connect(weft__sock(c1), (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(connect(weft__sock(c2), (struct sockaddr *)&addr, sizeof addr), 0);
    uint64_t end = now_ns() + 3000000000ull;
    while (!rb.calls && now_ns() < end)
        cr_assert_geq(weft_loop_run(b, WEFT_RUN_NOWAIT), 0);
    cr_log_info("b took %d connection(s) while a was busy", rb.calls);
    run(a);
    cr_assert_eq(ra.calls, 1);
    cr_assert_geq(ra.result, 0);
    cr_assert_eq(rb.calls, 1, "b took nothing while a's AcceptEx held the listener");
    cr_assert_geq(rb.result, 0);
    weft__sock_close((int)ra.result);
    weft__sock_close((int)rb.result);
    weft__sock_close(c1);
    weft__sock_close(c2);
    weft__sock_close(lfd);
    cr_assert_eq(weft_loop_free(a), 0);
    cr_assert_eq(weft_loop_free(b), 0);
}
