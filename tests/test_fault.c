/* Loop-level suite, fault-injection builds only (-Dfault_injection=true):
 * echo through callbacks, through streams and through multishot accept and
 * recv, an HTTP exchange and RESP commands through the example servers,
 * each under many seeded fault schedules (core/sys/fault.h). Odd seeds
 * inject only what a correct program survives (EAGAIN, EINTR, 1-byte
 * transfers, a full SQ, an empty buffer ring, a multishot request ended as
 * on CQ overflow): every byte must arrive once and in order. Even seeds
 * inject everything (resets, EMFILE, ENOMEM...): every byte that arrives
 * must be right, and a connection that does not finish must fail with a
 * negative code, in bounded time. A failing run prints its seed and how to
 * replay it.
 *
 * Seeds: a fixed list; WEFT_FAULT_SEEDS="a-b" or "a,b,c" adds more,
 * WEFT_FAULT_SEED=N runs only N. WEFT_FAULT_RATE (permille) and
 * WEFT_FAULT_KINDS override the rate and the kinds, WEFT_FAULT_VERBOSE=1 prints every run's
 * outcome. Runs once per backend (WEFT_BACKEND). */
#include "http_serve.h"
#include "resp_serve.h"
#include "server_e2e.h"
#include "sys/fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(fault, .timeout = 120);

enum { FIXED_SEEDS = 100, MAX_SEEDS = 4096 };

static uint64_t seeds[MAX_SEEDS];
static size_t nseeds;

static void add_seed(uint64_t s)
{
    if (nseeds < MAX_SEEDS)
        seeds[nseeds++] = s;
}

/* The fixed list, plus WEFT_FAULT_SEEDS; only WEFT_FAULT_SEED when set. */
static void load_seeds(void)
{
    nseeds = 0;
    const char *one = getenv("WEFT_FAULT_SEED");
    if (one && *one) {
        add_seed(strtoull(one, NULL, 0));
        return;
    }
    for (uint64_t s = 1; s <= FIXED_SEEDS; s++)
        add_seed(s);
    const char *more = getenv("WEFT_FAULT_SEEDS");
    while (more && *more) {
        char *end;
        uint64_t a = strtoull(more, &end, 0), b = a;
        if (end == more)
            break;
        if (*end == '-')
            b = strtoull(end + 1, &end, 0);
        for (uint64_t s = a; s <= b && nseeds < MAX_SEEDS; s++)
            add_seed(s);
        more = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            break;
    }
}

static unsigned rate(void)
{
    const char *r = getenv("WEFT_FAULT_RATE");
    return r && *r ? (unsigned)strtoul(r, NULL, 0) : 100;
}

/* The kinds a seed injects: odd seeds the benign ones, even seeds all;
 * WEFT_FAULT_KINDS (names or a mask, fault.h) for every seed. */
static unsigned kinds(uint64_t seed)
{
    const char *k = getenv("WEFT_FAULT_KINDS");
    if (k && *k)
        return weft__fault_parse_kinds(k);
    return seed & 1 ? WEFT__FK_BENIGN : WEFT__FK_ALL;
}

/* Whether every byte must arrive. */
static int benign(uint64_t seed)
{
    return (kinds(seed) & ~(unsigned)WEFT__FK_BENIGN) == 0;
}

/* Turn this seed's schedule on (on this thread: the loop's). */
static void faults_on(uint64_t seed)
{
    weft__fault_config(seed, rate(), kinds(seed));
}

static uint64_t injected; /* by every run of this test */

/* Off; count what the run saw. */
static void faults_off(void)
{
    injected += weft__fault_count();
    weft__fault_config(0, 0, 0);
}

/* A suite whose schedules never fired would prove nothing. */
static void assert_injected(void)
{
    cr_assert_gt(injected, 0, "no fault was injected in %zu runs", nseeds);
}

#define REPLAY_FMT                                                                                 \
    "seed %llu (%s faults) failed: %s; replay: WEFT_FAULT_SEED=%llu WEFT_BACKEND=%s "              \
    "tests/test_fault --filter 'fault/%s' (portable runner: --weft-run fault/%s)"
#define FAIL_SEED(seed, test, why)                                                                 \
    cr_assert(0, REPLAY_FMT, (unsigned long long)(seed), benign(seed) ? "benign" : "all", (why),   \
              (unsigned long long)(seed), getenv("WEFT_BACKEND") ? getenv("WEFT_BACKEND") : "",    \
              (test), (test))

/* A run passes when it delivered everything, or (all kinds) when it
 * failed with a negative code; never with wrong bytes. */
static void judge(uint64_t seed, const char *test, int delivered, int rc, int corrupt)
{
    char why[128];
    const char *v = getenv("WEFT_FAULT_VERBOSE");
    if (v && *v)
        fprintf(stderr, "fault/%s seed %llu: delivered %d, code %d (%s), corrupt %d, %llu faults\n",
                test, (unsigned long long)seed, delivered, rc, weft_strerror(rc), corrupt,
                (unsigned long long)injected);
    if (corrupt) {
        FAIL_SEED(seed, test, "bytes lost, duplicated or out of order");
    } else if (!delivered && benign(seed)) {
        snprintf(why, sizeof why, "not delivered under benign faults (%d: %s)", rc,
                 weft_strerror(rc));
        FAIL_SEED(seed, test, why);
    } else if (!delivered && rc >= 0) {
        snprintf(why, sizeof why, "not delivered, yet no error code (%d)", rc);
        FAIL_SEED(seed, test, why);
    }
}

/* The byte at offset i of seed's stream. */
static unsigned char byte_at(uint64_t seed, size_t i)
{
    return (unsigned char)((i * 131 + seed * 7 + (i >> 7)) & 0xff);
}

/* ---- echo through callbacks (raw ops) ---- */

/* LONG_PIECE: odd seeds send this first, above io_uring's send-at-submit
 * threshold (WEFT__SEND_NOW_MIN), and their server reads up to CB_LEN at
 * once (even seeds: SMALL_READ), so that a read brings more than
 * WEFT__LATE_READ_MIN and the next ones are late recvs (every POSIX
 * backend): those paths meet the faults too. */
enum { CB_LEN = 15000, LONG_PIECE = 9000, SMALL_READ = 512 };

typedef struct cb_run {
    weft_loop *loop;
    uint64_t seed;
    int lfd;
    weft_op accept_op;
    /* server side */
    int sfd;
    weft_op srecv, ssend;
    unsigned char sbuf[CB_LEN];
    size_t sfill, ssent;
    int s_closed;
    /* client side */
    int cfd;
    weft_op connect_op, csend, crecv;
    weft_addr addr;
    unsigned char out[CB_LEN], in[CB_LEN];
    size_t csent, cgot;
    int err, corrupt, done;
    weft_handle bound;
} cb_run;

static void cb_fail(cb_run *r, int64_t err)
{
    if (!r->err)
        r->err = err < 0 ? (int)err : -EPROTO;
    r->done = 1;
}

static void server_recv(cb_run *r);

static void on_server_send(weft_op *op)
{
    cb_run *r = op->data;
    if (r->done)
        return;
    if (op->result < 0)
        return cb_fail(r, op->result);
    r->ssent += (size_t)op->result;
    if (r->ssent < r->sfill) {
        weft_op_prep_send(&r->ssend, r->sfd, r->sbuf + r->ssent, r->sfill - r->ssent, 0,
                          on_server_send, r);
        if (weft_op_submit(r->loop, &r->ssend) < 0)
            cb_fail(r, -EIO);
        return;
    }
    server_recv(r);
}

static void on_server_recv(weft_op *op)
{
    cb_run *r = op->data;
    if (r->done)
        return;
    if (op->result <= 0)
        return cb_fail(r, op->result ? op->result : -ECONNRESET);
    r->sfill = (size_t)op->result;
    r->ssent = 0;
    weft_op_prep_send(&r->ssend, r->sfd, r->sbuf, r->sfill, 0, on_server_send, r);
    if (weft_op_submit(r->loop, &r->ssend) < 0)
        cb_fail(r, -EIO);
}

static void server_recv(cb_run *r)
{
    size_t room = (r->seed & 1) ? sizeof r->sbuf : SMALL_READ;
    weft_op_prep_recv(&r->srecv, r->sfd, r->sbuf, room, 0, on_server_recv, r);
    if (weft_op_submit(r->loop, &r->srecv) < 0)
        cb_fail(r, -EIO);
}

static void on_accept(weft_op *op)
{
    cb_run *r = op->data;
    if (r->done)
        return;
    if (op->result == -EINTR || op->result == -EMFILE || op->result == -ENFILE) {
        /* Transient (the connection stays queued): accept again. */
        weft_op_prep_accept(&r->accept_op, r->lfd, NULL, 0, on_accept, r);
        if (weft_op_submit(r->loop, &r->accept_op) < 0)
            cb_fail(r, -EIO);
        return;
    }
    if (op->result < 0)
        return cb_fail(r, op->result);
    r->sfd = (int)op->result;
    server_recv(r);
}

static void client_send(cb_run *r);

static void on_client_send(weft_op *op)
{
    cb_run *r = op->data;
    if (r->done)
        return;
    if (op->result < 0)
        return cb_fail(r, op->result);
    r->csent += (size_t)op->result;
    if (r->csent < CB_LEN)
        client_send(r);
}

static void client_send(cb_run *r)
{
    /* Pieces of a seeded size, so the server sees many boundaries. */
    size_t n = 1 + (size_t)byte_at(r->seed, r->csent) * 3;
    if (r->csent == 0 && (r->seed & 1))
        n = LONG_PIECE;
    if (n > CB_LEN - r->csent)
        n = CB_LEN - r->csent;
    weft_op_prep_send(&r->csend, r->cfd, r->out + r->csent, n, 0, on_client_send, r);
    if (weft_op_submit(r->loop, &r->csend) < 0)
        cb_fail(r, -EIO);
}

static void on_client_recv(weft_op *op)
{
    cb_run *r = op->data;
    if (r->done)
        return;
    if (op->result <= 0)
        return cb_fail(r, op->result ? op->result : -ECONNRESET);
    size_t n = (size_t)op->result;
    if (memcmp(r->in + r->cgot, r->out + r->cgot, n) != 0)
        r->corrupt = 1;
    r->cgot += n;
    if (r->cgot == CB_LEN) {
        r->done = 1;
        return;
    }
    weft_op_prep_recv(&r->crecv, r->cfd, r->in + r->cgot, CB_LEN - r->cgot, 0, on_client_recv, r);
    if (weft_op_submit(r->loop, &r->crecv) < 0)
        cb_fail(r, -EIO);
}

static void on_connect(weft_op *op)
{
    cb_run *r = op->data;
    if (r->done)
        return;
    if (op->result < 0)
        return cb_fail(r, op->result);
    client_send(r);
    weft_op_prep_recv(&r->crecv, r->cfd, r->in, CB_LEN, 0, on_client_recv, r);
    if (weft_op_submit(r->loop, &r->crecv) < 0)
        cb_fail(r, -EIO);
}

static void on_bound(void *arg)
{
    cb_fail(arg, -ETIMEDOUT);
}

static void cancel_if_busy(weft_loop *loop, weft_op *op)
{
    if (weft_op_pending(op))
        weft_op_cancel(loop, op);
}

static void echo_callbacks_once(uint64_t seed)
{
    cb_run *r = calloc(1, sizeof *r);
    r->loop = test_loop_new();
    r->seed = seed;
    r->sfd = -1;
    for (size_t i = 0; i < CB_LEN; i++)
        r->out[i] = byte_at(seed, i);
    r->lfd = loopback_listener(&r->addr, 16);
    r->cfd = weft_socket(r->addr.ss.ss_family, SOCK_STREAM);
    cr_assert_geq(r->cfd, 0);
    r->bound = (weft_handle)WEFT_HANDLE_INIT;
    weft_call_later(r->loop, &r->bound, 5000 * MS, on_bound, r);

    faults_on(seed);
    weft_op_prep_accept(&r->accept_op, r->lfd, NULL, 0, on_accept, r);
    cr_assert_eq(weft_op_submit(r->loop, &r->accept_op), 0);
    weft_op_prep_connect(&r->connect_op, r->cfd, &r->addr.ss, r->addr.len, on_connect, r);
    cr_assert_eq(weft_op_submit(r->loop, &r->connect_op), 0);
    while (!r->done)
        cr_assert_geq(weft_loop_run(r->loop, WEFT_RUN_ONCE), 0);
    faults_off();

    /* Tear down: every op still out is cancelled and completes. */
    weft_handle_cancel(r->loop, &r->bound);
    weft_op *ops[] = {&r->accept_op, &r->srecv, &r->ssend, &r->connect_op, &r->csend, &r->crecv};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        cancel_if_busy(r->loop, ops[i]);
    weft_loop_run(r->loop, WEFT_RUN_UNTIL_IDLE);
    weft_close(r->loop, r->cfd);
    if (r->sfd >= 0)
        weft_close(r->loop, r->sfd);
    weft_close(r->loop, r->lfd);
    test_loop_free(r->loop);
    judge(seed, "echo_callbacks", r->cgot == CB_LEN, r->err, r->corrupt);
    free(r);
}

Test(fault, echo_callbacks)
{
    load_seeds();
    for (size_t i = 0; i < nseeds; i++)
        echo_callbacks_once(seeds[i]);
    assert_injected();
}

/* ---- echo through streams: readline, readexactly, write + drain ---- */

enum { MSGS = 12, MSG_MAX = 3000 };

/* "<len>\n" then len bytes; the same back. */
static int framed_echo(weft_stream *s, void *arg)
{
    (void)arg;
    unsigned char *buf = malloc(MSG_MAX);
    for (;;) {
        const char *line;
        int64_t n = weft_stream_readline(s, &line);
        if (n <= 0)
            break;
        size_t len = (size_t)strtoul(line, NULL, 10);
        if (len == 0 || len > MSG_MAX || weft_stream_readexactly(s, buf, len) != (int64_t)len)
            break;
        if (weft_stream_write(s, buf, len) < 0 || weft_stream_drain(s) < 0)
            break;
    }
    free(buf);
    return 0;
}

typedef struct st_run {
    weft_loop *loop;
    uint64_t seed;
    weft_server *srv;
    weft_addr addr;
    size_t delivered; /* messages echoed intact */
    int err, corrupt;
} st_run;

static int stream_client(void *arg, intptr_t *result)
{
    (void)result;
    st_run *r = arg;
    weft_stream *s;
    int rc = weft_open_connection(r->loop, &r->addr, NULL, 5000 * MS, &s);
    if (rc) {
        r->err = rc;
        return 0;
    }
    weft_stream_set_deadline(s, 5000 * MS); /* the run's bound */
    unsigned char out[MSG_MAX], in[MSG_MAX];
    for (int m = 0; m < MSGS; m++) {
        size_t len = 1 + (size_t)(byte_at(r->seed, (size_t)m) * 11) % MSG_MAX;
        for (size_t i = 0; i < len; i++)
            out[i] = byte_at(r->seed + (uint64_t)m, i);
        char head[24];
        int hl = snprintf(head, sizeof head, "%zu\n", len);
        int64_t w = weft_stream_write(s, head, (size_t)hl);
        if (w >= 0)
            w = weft_stream_write(s, out, len);
        if (w >= 0)
            w = weft_stream_drain(s);
        if (w < 0) {
            r->err = (int)w;
            break;
        }
        int64_t got = weft_stream_readexactly(s, in, len);
        if (got != (int64_t)len) {
            r->err = got < 0 ? (int)got : -EPROTO;
            break;
        }
        if (memcmp(in, out, len) != 0) {
            r->corrupt = 1;
            break;
        }
        r->delivered++;
    }
    weft_stream_close(s);
    return 0;
}

static int stream_main(void *arg, intptr_t *result)
{
    (void)result;
    st_run *r = arg;
    faults_on(r->seed);
    weft_future *f;
    int rc = weft_task_spawn(r->loop, stream_client, r, &f);
    if (rc) {
        r->err = rc; /* an injected ENOMEM for the task itself */
    } else {
        weft_await(f, NULL);
        weft_future_unref(f);
    }
    faults_off();
    return weft_server_close(r->srv, 1000 * MS) < 0 ? -EIO : 0;
}

Test(fault, echo_streams)
{
    load_seeds();
    for (size_t i = 0; i < nseeds; i++) {
        st_run r = {.loop = test_loop_new(), .seed = seeds[i]};
        weft_addr a;
        cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
        cr_assert_eq(weft_start_server(r.loop, &a, framed_echo, NULL, NULL, &r.srv), 0);
        cr_assert_eq(weft_server_addr(r.srv, &r.addr), 0);
        cr_assert_eq(run_task(r.loop, stream_main, &r), 0, "seed %llu: server close",
                     (unsigned long long)r.seed);
        test_loop_free(r.loop);
        judge(r.seed, "echo_streams", r.delivered == MSGS, r.err, r.corrupt);
    }
    assert_injected();
}

/* ---- HTTP and RESP through the example servers ---- */

typedef struct proto_srv {
    int (*start)(void *srv, weft_loop *loop, int lfd);
    int (*close)(void *srv, int64_t grace_ns);
    void *srv;
    uint64_t seed;
} proto_srv;

/* Start the server, then turn faults on (clients are plain sockets on
 * their own threads: the schedule is the loop thread's). */
static int faulty_start(void *p, weft_loop *loop, int lfd)
{
    proto_srv *s = p;
    int rc = s->start(s->srv, loop, lfd);
    if (rc >= 0)
        faults_on(s->seed);
    return rc;
}

static int faulty_close(void *p, int64_t grace_ns)
{
    proto_srv *s = p;
    faults_off();
    return s->close(s->srv, grace_ns);
}

/* One client against the server under seed's faults; the server task's
 * result (the close's). */
static int proto_run(proto_srv *s, e2e_client *c)
{
    (void)e2e_run; /* its asserts expect no failure: this is e2e_run without them */
    e2e_server e = {
        .start = faulty_start, .close = faulty_close, .srv = s, .clients = c, .nclients = 1};
    weft_loop *loop = test_loop_new();
    e.loop = loop;
    weft_future *f;
    cr_assert_eq(weft_task_spawn(loop, e2e_task, &e, &f), 0);
    int rc = weft_run_until_complete(loop, f, NULL);
    weft_future_unref(f);
    test_loop_free(loop);
    return rc;
}

/* How a run that did not deliver ended: the server's error, the client's,
 * or the stream cut short (the server closed after a fault of its own). */
static int end_code(int rc, const e2e_client *c)
{
    return rc < 0 ? rc : c->err ? -c->err : -ENODATA;
}

static int http_start(void *srv, weft_loop *loop, int lfd)
{
    return http_serve_start(srv, loop, lfd);
}

static int http_stop(void *srv, int64_t grace_ns)
{
    return http_serve_close(srv, grace_ns);
}

enum { HTTP_REQS = 8, RESP_CMDS = 16 };

Test(fault, http_pipelined)
{
    load_seeds();
    static char reqs[HTTP_REQS * 64];
    reqs[0] = '\0';
    for (int i = 0; i < HTTP_REQS; i++)
        strcat(reqs, "GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n");
    for (size_t i = 0; i < nseeds; i++) {
        http_serve h;
        proto_srv s = {http_start, http_stop, &h, seeds[i]};
        e2e_client *c = calloc(1, sizeof *c);
        c->in = reqs;
        c->in_len = strlen(reqs);
        int rc = proto_run(&s, c);
        /* Whole responses in order: as many status lines as bodies (the
         * last may be cut), each a 200. */
        size_t heads = e2e_count(c, "HTTP/1.1 "), ok = e2e_count(c, "HTTP/1.1 200 OK\r\n");
        size_t bodies = e2e_count(c, "Hello, World!");
        int corrupt = heads != ok || bodies > heads || heads > bodies + 1 || heads > HTTP_REQS;
        int delivered = bodies == HTTP_REQS && c->err == 0;
        judge(seeds[i], "http_pipelined", delivered, end_code(rc, c), corrupt);
        free(c);
    }
    assert_injected();
}

typedef struct resp_srv {
    resp_serve r;
    resp_store store;
} resp_srv;

static int resp_start(void *p, weft_loop *loop, int lfd)
{
    resp_srv *s = p;
    return resp_serve_start(&s->r, loop, lfd, &s->store);
}

static int resp_stop(void *p, int64_t grace_ns)
{
    resp_srv *s = p;
    return resp_serve_close(&s->r, grace_ns);
}

Test(fault, resp_incr_pipelined)
{
    load_seeds();
    static char cmds[RESP_CMDS * 32], want[RESP_CMDS * 8];
    cmds[0] = want[0] = '\0';
    for (int i = 0; i < RESP_CMDS; i++) {
        strcat(cmds, "*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
        snprintf(want + strlen(want), sizeof want - strlen(want), ":%d\r\n", i + 1);
    }
    for (size_t i = 0; i < nseeds; i++) {
        resp_srv *s = calloc(1, sizeof *s);
        cr_assert_eq(resp_db_init(&s->store.db), 0);
        proto_srv p = {resp_start, resp_stop, s, seeds[i]};
        e2e_client *c = calloc(1, sizeof *c);
        c->in = cmds;
        c->in_len = strlen(cmds);
        int rc = proto_run(&p, c);
        /* Each INCR once, in order: what came is a prefix of the answers. */
        int corrupt = c->out_len > strlen(want) || memcmp(c->out, want, c->out_len) != 0;
        int delivered = c->out_len == strlen(want) && c->err == 0;
        judge(seeds[i], "resp_incr_pipelined", delivered, end_code(rc, c), corrupt);
        resp_db_free(&s->store.db);
        free(s);
        free(c);
    }
    assert_injected();
}

/* ---- multishot accept and recv (io_uring's provided buffers: ENOBUFS) ---- */

enum { MS_LEN = 20000 };

typedef struct ms_srv {
    weft_loop *loop;
    int lfd, fd;
    weft_multi acc, rcv;
    weft_op send;
    unsigned char *out; /* what came, to send back */
    size_t got, sent;
    int eof, sending, failed;
    weft_handle alive; /* pending work while the client thread runs (else -EDEADLK) */
} ms_srv;

static void ms_alive(void *arg)
{
    (void)arg;
}

static void ms_pump(ms_srv *m);

static void ms_on_send(weft_op *op)
{
    ms_srv *m = op->data;
    m->sending = 0;
    if (op->result < 0) {
        m->failed = 1;
        return;
    }
    m->sent += (size_t)op->result;
    ms_pump(m);
}

/* Send what came and was not sent yet; at the end, close. */
static void ms_pump(ms_srv *m)
{
    if (m->sending || m->failed)
        return;
    if (m->sent < m->got) {
        weft_op_prep_send(&m->send, m->fd, m->out + m->sent, m->got - m->sent, 0, ms_on_send, m);
        m->sending = weft_op_submit(m->loop, &m->send) == 0;
        m->failed = !m->sending;
    } else if (m->eof) {
        weft_shutdown(m->fd, SHUT_WR); /* the client reads to the end */
    }
}

static void ms_on_recv(weft_multi *mu, int64_t res, void *buf, int more)
{
    ms_srv *m = mu->data;
    if (res > 0) {
        size_t n = (size_t)res;
        if (m->got + n > MS_LEN)
            n = MS_LEN - m->got;
        memcpy(m->out + m->got, buf, n);
        m->got += n;
        weft_loop_buffer_release(m->loop, buf);
    } else if (res < 0) {
        m->failed = 1;
    }
    if (!more) {
        m->eof = 1;
        if (m->failed)
            weft_shutdown(m->fd, SHUT_RDWR);
    }
    ms_pump(m);
}

static void ms_on_accept(weft_multi *mu, int64_t res, void *buf, int more)
{
    (void)buf;
    (void)more;
    ms_srv *m = mu->data;
    if (res >= 0 && m->fd >= 0) {
        weft_close(m->loop, (int)res);
        return;
    }
    if (res < 0) {
        /* Ended by a fault before the connection came: closing the
         * listener resets it, so the client need not wait for nothing. */
        if (m->fd < 0 && !more && m->lfd >= 0) {
            weft_close(m->loop, m->lfd);
            m->lfd = -1;
        }
        return;
    }
    m->fd = (int)res;
    if (weft_recv_multi(m->loop, &m->rcv, m->fd, ms_on_recv, m) != 0)
        weft_shutdown(m->fd, SHUT_RDWR);
}

static int ms_start(void *p, weft_loop *loop, int lfd)
{
    ms_srv *m = p;
    m->loop = loop;
    m->lfd = lfd;
    m->fd = -1;
    m->alive = (weft_handle)WEFT_HANDLE_INIT;
    weft_call_later(loop, &m->alive, 60000 * MS, ms_alive, m);
    /* Few small buffers: the recv runs out of them for real, too. */
    int rc = weft_loop_buffers_setup(loop, 4, 256);
    if (rc == 0)
        rc = weft_accept_multi(loop, &m->acc, lfd, ms_on_accept, m);
    return rc;
}

static int ms_close(void *p, int64_t grace_ns)
{
    (void)grace_ns;
    ms_srv *m = p;
    weft_handle_cancel(m->loop, &m->alive);
    weft_multi *mus[] = {&m->acc, &m->rcv};
    for (int i = 0; i < 2; i++) {
        if (weft_multi_active(mus[i]))
            weft_multi_cancel(m->loop, mus[i]);
        while (weft_multi_active(mus[i]))
            weft_sleep(m->loop, 1000000);
    }
    if (m->sending)
        weft_op_cancel(m->loop, &m->send);
    while (m->sending)
        weft_sleep(m->loop, 1000000);
    if (m->fd >= 0)
        weft_close(m->loop, m->fd);
    return m->lfd >= 0 ? weft_close(m->loop, m->lfd) : 0;
}

Test(fault, multishot_echo)
{
    load_seeds();
    unsigned char *in = malloc(MS_LEN);
    for (size_t i = 0; i < nseeds; i++) {
        for (size_t k = 0; k < MS_LEN; k++)
            in[k] = byte_at(seeds[i], k);
        ms_srv *m = calloc(1, sizeof *m);
        m->out = malloc(MS_LEN);
        proto_srv s = {ms_start, ms_close, m, seeds[i]};
        e2e_client *c = calloc(1, sizeof *c);
        c->in = (const char *)in;
        c->in_len = MS_LEN;
        int rc = proto_run(&s, c);
        int corrupt = c->out_len > MS_LEN || memcmp(c->out, in, c->out_len) != 0;
        int delivered = c->out_len == MS_LEN && c->err == 0;
        judge(seeds[i], "multishot_echo", delivered, end_code(rc, c), corrupt);
        free(m->out);
        free(m);
        free(c);
    }
    free(in);
    assert_injected();
}

/* ---- forgetting an fd with an op in flight, under refused submits ---- */

#ifndef _WIN32 /* socketpair; and it is io_uring's contract */

typedef struct fg_run {
    int sv[2]; /* sv[0] is the one read */
    char buf[16];
    weft_op op; /* a recv on sv[0] */
    int done, bound;
    int64_t result;
} fg_run;

static void fg_on_recv(weft_op *op)
{
    fg_run *f = op->data;
    f->done = 1;
    f->result = op->result;
}

/* A socket pair and f->op prepared as a recv on its first end. */
static void fg_open(fg_run *f)
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->sv), 0);
    weft_op_prep_recv(&f->op, f->sv[0], f->buf, sizeof f->buf, 0, fg_on_recv, f);
}

static void fg_on_bound(void *arg)
{
    ((fg_run *)arg)->bound = 1;
}

/* io_uring: the cancel weft_loop_forget_fd() queues must reach the kernel
 * before the caller closes fd (the kernel resolves the fd when it issues
 * the cancel; after the close a pending recv would wait forever, holding
 * the socket). Submits refused with -EBUSY (a backed-up CQ) must not lose
 * that ordering. On the other backends the same contract holds trivially. */
Test(fault, forget_fd_with_submits_refused)
{
    load_seeds();
    for (size_t i = 0; i < nseeds; i++) {
        weft_loop *loop = test_loop_new();
        fg_run f = {0};
        fg_open(&f);
        int *sv = f.sv;
        cr_assert_eq(weft_op_submit(loop, &f.op), 0);
        weft_loop_run(loop, WEFT_RUN_NOWAIT); /* the recv is with the kernel */
        weft_handle bound = WEFT_HANDLE_INIT;
        weft_call_later(loop, &bound, 2000 * MS, fg_on_bound, &f);
        weft__fault_config(seeds[i], 500, WEFT__FK_SQFULL);
        int rc = weft_loop_forget_fd(loop, sv[0]);
        faults_off();
        close(sv[0]);
        while (!f.done && !f.bound)
            weft_loop_run(loop, WEFT_RUN_ONCE);
        weft_handle_cancel(loop, &bound);
        close(sv[1]);
        if (!f.done) {
            char why[96];
            snprintf(why, sizeof why, "forget_fd gave %d; the recv never completed", rc);
            FAIL_SEED(seeds[i], "forget_fd_with_submits_refused", why);
        }
        test_loop_free(loop);
    }
}

/* A submit the backend refuses (io_uring: the SQ full and every flush
 * refused) leaves the op idle and not counted in flight
 * (weft__op_refused): it can be submitted again, and the loop goes idle
 * once it is done. The readiness backends never refuse an op (its errors
 * are completions), so there the first submit simply succeeds. */
Test(fault, refused_submit_leaves_the_op_idle)
{
    weft_loop *loop = test_loop_new();
    fg_run f = {0};
    fg_open(&f);
    int *sv = f.sv;
    weft_op *op = &f.op;
    weft__fault_config(1, 1000, WEFT__FK_SQFULL);
    int rc = weft_op_submit(loop, op);
    faults_off();
    if (strcmp(weft_loop_backend_name(loop), "io_uring") == 0)
        cr_assert_lt(rc, 0, "every SQE refused, yet the submit succeeded");
    if (rc < 0) {
        cr_assert_not(weft_op_pending(op), "a refused op still counts as in flight");
        cr_assert_eq(weft_op_submit(loop, op), 0);
    }
    cr_assert_eq(send(sv[1], "x", 1, 0), 1);
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE), 0);
    cr_assert(f.done);
    cr_assert_eq(f.result, 1);
    close(sv[0]);
    close(sv[1]);
    test_loop_free(loop);
}
#endif
