/* Loop-level suite: weft's cross-thread paths under many threads at once
 * (issue 15), made for ThreadSanitizer (./dev's TSan stage) and run in
 * every build: call_soon_threadsafe from 8 threads reusing their handles,
 * the executor fed from several threads with cancels racing completions,
 * concurrent getaddrinfo with cancels and the loop freed after,
 * weft_serve_threads started and stopped while clients are busy, and
 * weft_threads with a multishot accept/recv on each thread's loop. Every
 * count is checked; a race shows as a TSan report (the stage fails on any).
 * Runs once per backend; POSIX only (plain pthreads and blocking sockets
 * for the clients). */
#include "net_common.h"
#include "task_internal.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TestSuite(threads, .timeout = 60);

/* Wait (yielding) until *v reaches want, at most ms milliseconds; the
 * value seen. */
static int wait_at_least(atomic_int *v, int want, int ms)
{
    int64_t end = mono_ns() + ms * MS;
    int seen;
    while ((seen = atomic_load(v)) < want && mono_ns() < end)
        sched_yield();
    return seen;
}

/* ------------------------------------------------------------------ */
/* call_soon_threadsafe: 8 threads, handles reused                     */

enum { TS_THREADS = 8, TS_ROUNDS = 40, TS_BATCH = 32 };

typedef struct ts_rec ts_rec;
typedef struct ts_producer {
    weft_loop *loop;
    int *total; /* loop thread only */
    weft_handle h[TS_BATCH];
    ts_rec *rec;    /* TS_ROUNDS * TS_BATCH */
    atomic_int ran; /* callbacks of this producer that ran */
    int busy_seen;  /* -EBUSY answers (a handle still queued) */
    int errors;
} ts_producer;

struct ts_rec {
    ts_producer *p;
    int hits; /* loop thread only */
};

static void ts_count(void *arg)
{
    ts_rec *r = arg;
    r->hits++;
    atomic_fetch_add(&r->p->ran, 1);
    if (++*r->p->total == TS_THREADS * TS_ROUNDS * TS_BATCH)
        weft_loop_stop(r->p->loop);
}

/* Even rounds wait until the batch before ran; odd rounds repost each
 * handle at once, retrying while weft_call_soon_threadsafe says -EBUSY
 * (the loop has not started its callback yet): the handle's state is read
 * here while the loop thread changes it. */
static void *ts_produce(void *arg)
{
    ts_producer *p = arg;
    for (int round = 0; round < TS_ROUNDS; round++) {
        if (round % 2 == 0 && wait_at_least(&p->ran, round * TS_BATCH, 20000) < round * TS_BATCH)
            p->errors++;
        for (int i = 0; i < TS_BATCH; i++) {
            int rc;
            while ((rc = weft_call_soon_threadsafe(p->loop, &p->h[i], ts_count,
                                                   &p->rec[round * TS_BATCH + i])) == -EBUSY) {
                p->busy_seen++;
                sched_yield();
            }
            if (rc != 0)
                p->errors++;
        }
    }
    return NULL;
}

Test(threads, call_soon_threadsafe_from_eight_threads_runs_each_callback_once)
{
    weft_loop *loop = test_loop_new();
    int total = 0;
    ts_producer *p = calloc(TS_THREADS, sizeof *p);
    cr_assert_not_null(p);
    pthread_t th[TS_THREADS];
    for (int t = 0; t < TS_THREADS; t++) {
        p[t].loop = loop;
        p[t].total = &total;
        p[t].rec = calloc(TS_ROUNDS * TS_BATCH, sizeof *p[t].rec);
        cr_assert_not_null(p[t].rec);
        for (int i = 0; i < TS_ROUNDS * TS_BATCH; i++)
            p[t].rec[i].p = &p[t];
        cr_assert_eq(pthread_create(&th[t], NULL, ts_produce, &p[t]), 0);
    }
    /* Nothing else is pending: only the producers' wake-ups move the loop,
     * and the last callback stops it. */
    cr_assert_geq(weft_loop_run(loop, WEFT_RUN_FOREVER), 0);
    int busy = 0;
    for (int t = 0; t < TS_THREADS; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(p[t].errors, 0, "producer %d", t);
        cr_assert_eq(atomic_load(&p[t].ran), TS_ROUNDS * TS_BATCH);
        for (int i = 0; i < TS_ROUNDS * TS_BATCH; i++)
            cr_assert_eq(p[t].rec[i].hits, 1, "producer %d, callback %d ran %d times", t, i,
                         p[t].rec[i].hits);
        busy += p[t].busy_seen;
        free(p[t].rec);
    }
    cr_assert_eq(total, TS_THREADS * TS_ROUNDS * TS_BATCH);
    cr_log_info("handles found still queued: %d", busy);
    /* Nothing is left queued: the loop goes idle at once. */
    cr_assert_eq(weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE), 0);
    free(p);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------ */
/* The executor: jobs asked for from several threads, cancels racing    */

enum { EX_THREADS = 4, EX_PER_THREAD = 60, EX_TOTAL = EX_THREADS * EX_PER_THREAD };

typedef struct ex_ctx ex_ctx;
typedef struct ex_req {
    ex_ctx *c;
    int id;
    weft_handle ask;     /* posted by a submitting thread */
    weft_handle cancel;  /* loop thread: a cancel one iteration later */
    weft_future *f;      /* loop thread only */
    int input;           /* written on the loop thread before the job starts */
    int output;          /* written by the job on a pool thread */
    int done_calls;      /* loop thread only */
    int done_on_loop;    /* the done callback ran on the loop's thread */
    int result_ok;       /* a result arrived and was input * 3 + 1 */
    atomic_int job_runs; /* how many times the job ran */
} ex_req;

struct ex_ctx {
    weft_loop *loop;
    pthread_t loop_thread;
    ex_req req[EX_TOTAL];
    int asked, finished; /* loop thread only */
    int errors;          /* loop thread only */
};

static int ex_job(void *arg, intptr_t *result)
{
    ex_req *r = arg;
    atomic_fetch_add(&r->job_runs, 1);
    if (r->id % 7 == 0)
        usleep(200); /* some jobs take a while: later ones queue */
    r->output = r->input * 3 + 1;
    *result = r->output;
    return r->id % 11 == 0 ? -EIO : 0;
}

static void ex_done(weft_future *f, void *arg)
{
    ex_req *r = arg;
    ex_ctx *c = r->c;
    r->done_calls++;
    r->done_on_loop = pthread_equal(pthread_self(), c->loop_thread) != 0;
    intptr_t v = 0;
    int rc = weft_future_result(f, &v);
    if (rc == 0)
        r->result_ok = v == r->input * 3 + 1 && r->output == r->input * 3 + 1;
    else if (rc == -EIO)
        r->result_ok = r->id % 11 == 0;
    else if (rc != -ECANCELED)
        c->errors++;
    if (++c->finished == EX_TOTAL)
        weft_loop_stop(c->loop);
}

static void ex_cancel_later(void *arg)
{
    ex_req *r = arg;
    weft_future_cancel(r->f); /* may find it done: the job won the race */
}

/* On the loop thread: submit the job a thread asked for; some are
 * cancelled at once, some one iteration later (racing the pool). */
static void ex_ask(void *arg)
{
    ex_req *r = arg;
    ex_ctx *c = r->c;
    c->asked++;
    r->input = r->id * 5;
    if (weft_run_in_executor(c->loop, ex_job, r, &r->f) != 0 ||
        weft_future_add_done_callback(r->f, ex_done, r) != 0) {
        c->errors++;
        return;
    }
    if (r->id % 4 == 1)
        weft_future_cancel(r->f);
    else if (r->id % 4 == 2 && weft_call_soon(c->loop, &r->cancel, ex_cancel_later, r) != 0)
        c->errors++;
}

typedef struct {
    ex_ctx *c;
    int first;
    int errors;
} ex_submitter;

static void *ex_submit(void *arg)
{
    ex_submitter *s = arg;
    for (int i = 0; i < EX_PER_THREAD; i++) {
        ex_req *r = &s->c->req[s->first + i];
        if (weft_call_soon_threadsafe(s->c->loop, &r->ask, ex_ask, r) != 0)
            s->errors++;
        if (i % 16 == 0)
            usleep(100);
    }
    return NULL;
}

Test(threads, executor_jobs_from_several_threads_and_cancels_racing_completion)
{
    ex_ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->loop = test_loop_new();
    c->loop_thread = pthread_self();
    for (int i = 0; i < EX_TOTAL; i++)
        c->req[i] = (ex_req){.c = c, .id = i};
    ex_submitter s[EX_THREADS];
    pthread_t th[EX_THREADS];
    for (int t = 0; t < EX_THREADS; t++) {
        s[t] = (ex_submitter){.c = c, .first = t * EX_PER_THREAD};
        cr_assert_eq(pthread_create(&th[t], NULL, ex_submit, &s[t]), 0);
    }
    /* Stopped by the last done callback (cancelled futures finish at
     * once); then run until idle: jobs still on the pool keep the loop
     * busy until their results are delivered (and dropped). */
    cr_assert_geq(weft_loop_run(c->loop, WEFT_RUN_FOREVER), 0);
    for (int t = 0; t < EX_THREADS; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(s[t].errors, 0);
    }
    test_run(c->loop);
    cr_assert_eq(c->errors, 0);
    cr_assert_eq(c->asked, EX_TOTAL);
    cr_assert_eq(c->finished, EX_TOTAL);
    int cancelled = 0, results = 0;
    for (int i = 0; i < EX_TOTAL; i++) {
        ex_req *r = &c->req[i];
        cr_assert_eq(r->done_calls, 1, "request %d: %d done callbacks", i, r->done_calls);
        cr_assert(r->done_on_loop, "request %d finished off the loop thread", i);
        cr_assert_eq(atomic_load(&r->job_runs), 1, "request %d: its job ran %d times", i,
                     atomic_load(&r->job_runs));
        /* Every job ran (nothing is dropped before the loop is freed), so
         * its output is there, delivered through the executor's hand-off. */
        cr_assert_eq(r->output, r->input * 3 + 1, "request %d", i);
        int st = weft_future_state(r->f);
        if (st == WEFT_FUTURE_CANCELLED) {
            cancelled++;
            cr_assert(r->id % 4 == 1 || r->id % 4 == 2, "request %d was never cancelled", i);
        } else {
            results++;
            cr_assert(r->result_ok, "request %d: wrong outcome", i);
        }
        weft_future_unref(r->f);
    }
    cr_assert_geq(cancelled, EX_TOTAL / 4, "every id %% 4 == 1 is cancelled before it can run");
    cr_assert_geq(results, EX_TOTAL / 2);
    cr_log_info("executor: %d results, %d cancelled", results, cancelled);
    test_loop_free(c->loop);
    free(c);
}

/* ------------------------------------------------------------------ */
/* getaddrinfo: many at once, some cancelled, the loop freed after      */

enum { GAI_TASKS = 48, GAI_ABANDONED = 24 };

typedef struct {
    weft_loop *loop;
    int rc;
    weft_addr out[4];
} gai_req;

static int gai_task(void *arg, intptr_t *result)
{
    (void)result;
    gai_req *g = arg;
    g->rc = weft_getaddrinfo(g->loop, "localhost", "8080", AF_INET, SOCK_STREAM, g->out, 4);
    return 0;
}

/* A job that holds a pool thread until the gate opens. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, holding;
} gai_gate;

static int gai_hold(void *arg, intptr_t *result)
{
    gai_gate *g = arg;
    pthread_mutex_lock(&g->mu);
    g->holding++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    *result = 0;
    return 0;
}

static void gai_gate_init(gai_gate *g)
{
    *g = (gai_gate){.open = 0};
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

/* Hold every pool thread: what is submitted next stays queued. */
static void gai_gate_hold_pool(weft_loop *loop, gai_gate *g)
{
    for (int i = 0; i < WEFT_EXECUTOR_THREADS; i++)
        cr_assert_eq(weft_run_in_executor(loop, gai_hold, g, NULL), 0);
    pthread_mutex_lock(&g->mu);
    while (g->holding < WEFT_EXECUTOR_THREADS)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gai_gate_open(gai_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void *gai_gate_open_later(void *arg)
{
    usleep(200000);
    gai_gate_open(arg);
    return NULL;
}

/* Free the loop with the pool held: the free stops the pool (nothing
 * queued starts after that) and then joins its threads, which the gate,
 * opened 200 ms later from another thread, lets go. */
static void gai_free_loop_held(weft_loop *loop, gai_gate *g)
{
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, gai_gate_open_later, g), 0);
    test_loop_free(loop);
    pthread_join(th, NULL);
}

static void gai_gate_fini(gai_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static int count_run(void *arg, intptr_t *result)
{
    atomic_fetch_add((atomic_int *)arg, 1000);
    *result = 0;
    return 0;
}

static void count_drop(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* The loop freed with jobs queued: they never run, and each one's drop
 * hook runs once (the resolver frees its request there). */
Test(threads, executor_jobs_queued_at_loop_free_are_dropped_with_their_hook)
{
    weft_loop *loop = test_loop_new();
    gai_gate gate;
    gai_gate_init(&gate);
    gai_gate_hold_pool(loop, &gate);
    atomic_int seen = 0;
    for (int i = 0; i < 10; i++) {
        weft_future *f;
        cr_assert_eq(weft__run_in_executor_drop(loop, count_run, count_drop, &seen, &f), 0);
        weft_future_unref(f);
    }
    gai_free_loop_held(loop, &gate);
    cr_assert_eq(atomic_load(&seen), 10, "10 drops and no run: %d", atomic_load(&seen));
    gai_gate_fini(&gate);
}

Test(threads, getaddrinfo_many_at_once_some_cancelled_then_loop_freed)
{
    weft_loop *loop = test_loop_new();
    gai_req *g = calloc(GAI_TASKS + GAI_ABANDONED, sizeof *g);
    weft_future **f = calloc(GAI_TASKS + GAI_ABANDONED, sizeof *f);
    cr_assert(g && f);
    for (int i = 0; i < GAI_TASKS; i++) {
        g[i].loop = loop;
        g[i].rc = 1; /* not yet */
        cr_assert_eq(weft_task_spawn(loop, gai_task, &g[i], &f[i]), 0);
    }
    /* One iteration: every task has asked the pool; cancel every third
     * while its lookup is queued or running. */
    cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    for (int i = 0; i < GAI_TASKS; i += 3)
        weft_future_cancel(f[i]);
    test_run(loop); /* the cancelled lookups still finish on the pool */
    int resolved = 0, cancelled = 0;
    for (int i = 0; i < GAI_TASKS; i++) {
        cr_assert_neq(weft_future_state(f[i]), WEFT_FUTURE_PENDING, "task %d", i);
        weft_future_unref(f[i]);
        if (i % 3 == 0) {
            /* Cancelled before any result could be delivered (that takes a
             * loop iteration). */
            cr_assert_eq(g[i].rc, -ECANCELED, "task %d: %d", i, g[i].rc);
            cancelled++;
            continue;
        }
        cr_assert_geq(g[i].rc, 1, "task %d: %s", i, test_err(g[i].rc));
        cr_assert_eq(weft_addr_family(&g[i].out[0]), AF_INET);
        cr_assert_eq(weft_addr_port(&g[i].out[0]), 8080);
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&g[i].out[0].ss;
        cr_assert_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
        resolved++;
    }
    cr_assert_eq(resolved, GAI_TASKS - cancelled);
    /* Then lookups abandoned: every pool thread held, lookups queued
     * behind them, their tasks cancelled, and the loop freed with the
     * lookups still queued: they are dropped, and nothing may leak (ASan)
     * or run after the free. */
    gai_gate gate;
    gai_gate_init(&gate);
    gai_gate_hold_pool(loop, &gate);
    for (int i = GAI_TASKS; i < GAI_TASKS + GAI_ABANDONED; i++) {
        g[i].loop = loop;
        g[i].rc = 1;
        cr_assert_eq(weft_task_spawn(loop, gai_task, &g[i], &f[i]), 0);
    }
    cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    for (int i = GAI_TASKS; i < GAI_TASKS + GAI_ABANDONED; i++)
        weft_future_cancel(f[i]);
    for (int spins = 0; spins < 1000; spins++) {
        int pending = 0;
        for (int i = GAI_TASKS; i < GAI_TASKS + GAI_ABANDONED; i++)
            pending += weft_future_state(f[i]) == WEFT_FUTURE_PENDING;
        if (!pending)
            break;
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
    for (int i = GAI_TASKS; i < GAI_TASKS + GAI_ABANDONED; i++) {
        cr_assert_neq(weft_future_state(f[i]), WEFT_FUTURE_PENDING, "task %d", i);
        cr_assert_eq(g[i].rc, -ECANCELED, "task %d: %d", i, g[i].rc);
        weft_future_unref(f[i]);
    }
    gai_free_loop_held(loop, &gate);
    gai_gate_fini(&gate);
    free(g);
    free(f);
}

/* ------------------------------------------------------------------ */
/* weft_serve_threads: started and stopped while clients are busy       */

enum { SV_ROUNDS = 20, SV_CLIENTS = 4, SV_MSG = 64 };

typedef struct {
    weft_addr addr;
    int idle;             /* one echo, then only wait for the close */
    atomic_int exchanges; /* echoes answered in full */
    int connected, ended_ok, bad_echo;
} sv_client;

/* A blocking client: echo SV_MSG bytes until the server closes; the
 * end must be an end of stream or a reset, never a timeout. */
static void *sv_client_run(void *arg)
{
    sv_client *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (net_connect(fd, &c->addr) != 0) {
        close(fd);
        return NULL;
    }
    c->connected = 1;
    unsigned char out[SV_MSG], in[SV_MSG];
    fill_pattern(out, sizeof out);
    for (int k = 0;; k++) {
        if ((!c->idle || k == 0) && send(fd, out, sizeof out, MSG_NOSIGNAL) != (long)sizeof out)
            break;
        size_t got = 0;
        long n = 1;
        while (got < sizeof in && (n = recv(fd, in + got, sizeof in - got, 0)) > 0)
            got += (size_t)n;
        if (got == sizeof in) {
            if (memcmp(in, out, sizeof in) != 0)
                c->bad_echo++;
            atomic_fetch_add(&c->exchanges, 1);
            continue;
        }
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
            c->ended_ok = 1;
        break;
    }
    if (!c->ended_ok && (errno == ECONNRESET || errno == EPIPE))
        c->ended_ok = 1; /* the send saw the close first */
    close(fd);
    return NULL;
}

Test(threads, serve_threads_stopped_while_clients_are_busy_twenty_rounds)
{
    test_net_start();
    for (int round = 0; round < SV_ROUNDS; round++) {
        atomic_int served = 0;
        weft_addr a;
        cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
        weft_serve_opts so = {.grace_ns = 20 * MS};
        weft_threads *t;
        int n = 2 + round % 3;
        int rc = weft_serve_threads(n, NULL, &a, test_echo_handler, &served, &so, &t);
        if (rc == WEFT_EUNAVAILABLE)
            cr_skip_test("backend unavailable");
        cr_assert_eq(rc, 0, "round %d: serve_threads: %s", round, weft_strerror(rc));
        sv_client c[SV_CLIENTS + 1];
        pthread_t th[SV_CLIENTS + 1];
        for (int i = 0; i <= SV_CLIENTS; i++) {
            c[i] = (sv_client){.idle = i == SV_CLIENTS};
            cr_assert_eq(weft_threads_addr(t, &c[i].addr), 0);
            cr_assert_eq(pthread_create(&th[i], NULL, sv_client_run, &c[i]), 0);
        }
        /* Every busy client mid-conversation, the idle one served once,
         * then stop. */
        for (int i = 0; i <= SV_CLIENTS; i++) {
            int want = c[i].idle ? 1 : 3;
            cr_assert_geq(wait_at_least(&c[i].exchanges, want, 20000), want, "round %d client %d",
                          round, i);
        }
        cr_assert_eq(weft_threads_stop(t), 0);
        cr_assert_eq(weft_threads_join(t), 0, "round %d", round);
        for (int i = 0; i <= SV_CLIENTS; i++) {
            pthread_join(th[i], NULL);
            cr_assert(c[i].connected, "round %d client %d", round, i);
            cr_assert(c[i].ended_ok, "round %d client %d: no close seen (errno %d)", round, i,
                      errno);
            cr_assert_eq(c[i].bad_echo, 0);
        }
        /* Every connection's handler ended before join returned. */
        cr_assert_eq(atomic_load(&served), SV_CLIENTS + 1, "round %d", round);
    }
}

/* ------------------------------------------------------------------ */
/* weft_threads: stop racing the start and the main tasks' own return   */

static void wt_nop(void *arg)
{
    (void)arg;
}

static int wt_main(weft_loop *loop, int index, void *arg)
{
    atomic_int *ran = arg;
    atomic_fetch_add(ran, 1);
    weft_handle keep = {0}; /* keeps the loop busy while the task waits */
    if (index % 2 == 0) {
        /* Waits for weft_threads_stop. */
        int rc = weft_call_later(loop, &keep, 60000 * MS, wt_nop, NULL);
        if (rc)
            return rc;
        rc = weft_wait_cancelled(loop);
        weft_handle_cancel(loop, &keep);
        return rc;
    }
    return weft_sleep(loop, (index % 3) * MS) == -ECANCELED ? -ECANCELED : 0;
}

typedef struct {
    weft_threads *t;
    int rc;
} wt_stopper;

static void *wt_stop(void *arg)
{
    wt_stopper *s = arg;
    s->rc = weft_threads_stop(s->t);
    return NULL;
}

Test(threads, threads_stop_from_another_thread_races_start_and_return)
{
    for (int round = 0; round < 20; round++) {
        atomic_int ran = 0;
        weft_threads *t;
        int n = 2 + round % 3;
        int rc = weft_threads_start(n, NULL, wt_main, &ran, &t);
        if (rc == WEFT_EUNAVAILABLE)
            cr_skip_test("backend unavailable");
        cr_assert_eq(rc, 0, "round %d: %s", round, weft_strerror(rc));
        wt_stopper s = {.t = t};
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, wt_stop, &s), 0);
        if (round % 2)
            usleep(1000); /* sometimes the odd threads return first */
        pthread_join(th, NULL);
        cr_assert_eq(s.rc, 0);
        cr_assert_eq(weft_threads_join(t), 0, "round %d", round);
        cr_assert_leq(atomic_load(&ran), n);
    }
}

/* ------------------------------------------------------------------ */
/* weft_threads: a multishot accept and recv on every thread's loop     */

enum { MS_THREADS = 3, MS_CLIENTS = 6, MS_BYTES = 20000 };

typedef struct ms_ctx {
    atomic_int port[MS_THREADS]; /* 0 until the thread listens */
    atomic_int bytes[MS_THREADS];
    atomic_int conns[MS_THREADS]; /* connections whose recv ended at end of stream */
    atomic_int bad[MS_THREADS];   /* a byte out of pattern, or an error */
    atomic_int accepted[MS_THREADS];
} ms_ctx;

typedef struct ms_conn {
    weft_multi m;
    weft_loop *loop;
    int fd;
    ms_ctx *c;
    int index;
    size_t off; /* bytes so far: the pattern's offset */
} ms_conn;

typedef struct ms_thread {
    weft_loop *loop;
    ms_ctx *c;
    int index;
} ms_thread;

static void ms_recv(weft_multi *m, int64_t res, void *buf, int more)
{
    ms_conn *k = m->data;
    if (res > 0) {
        const unsigned char *p = buf;
        for (int64_t i = 0; i < res; i++)
            if (p[i] != pattern_at(k->off + (size_t)i)) {
                atomic_fetch_add(&k->c->bad[k->index], 1);
                break;
            }
        k->off += (size_t)res;
        atomic_fetch_add(&k->c->bytes[k->index], (int)res);
        weft_loop_buffer_release(k->loop, buf);
    } else if (res < 0) {
        atomic_fetch_add(&k->c->bad[k->index], 1);
    }
    if (!more) {
        if (res == 0)
            atomic_fetch_add(&k->c->conns[k->index], 1);
        weft_loop_forget_fd(k->loop, k->fd); /* the number comes back on the next accept */
        close(k->fd);
        free(k);
    }
}

static void ms_accept(weft_multi *m, int64_t res, void *buf, int more)
{
    (void)buf;
    (void)more;
    ms_thread *w = m->data;
    if (res < 0)
        return; /* the last call: cancelled at stop */
    atomic_fetch_add(&w->c->accepted[w->index], 1);
    ms_conn *k = calloc(1, sizeof *k);
    if (k)
        *k = (ms_conn){.loop = w->loop, .fd = (int)res, .c = w->c, .index = w->index};
    if (!k || weft_recv_multi(w->loop, &k->m, (int)res, ms_recv, k) != 0) {
        atomic_fetch_add(&w->c->bad[w->index], 1);
        close((int)res);
        free(k);
    }
}

static int ms_main(weft_loop *loop, int index, void *arg)
{
    ms_thread w = {.loop = loop, .c = arg, .index = index};
    int rc = weft_loop_buffers_setup(loop, 16, 1024);
    if (rc)
        return rc;
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    int lfd = weft_listen(&a, NULL);
    if (lfd < 0)
        return lfd;
    weft_sockname(lfd, &a);
    weft_multi m = {0};
    rc = weft_accept_multi(loop, &m, lfd, ms_accept, &w);
    if (rc) {
        close(lfd);
        return rc;
    }
    atomic_store(&w.c->port[index], weft_addr_port(&a));
    rc = weft_wait_cancelled(loop); /* the accept keeps the loop busy */
    weft_multi_cancel(loop, &m);
    while (weft_multi_active(&m))
        weft_yield(loop); /* m lives here until its last call */
    weft_loop_forget_fd(loop, lfd);
    close(lfd);
    return rc;
}

Test(threads, threads_each_loop_runs_its_own_multishot_accept_and_recv)
{
    test_net_start();
    ms_ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    weft_threads *t;
    int rc = weft_threads_start(MS_THREADS, NULL, ms_main, c, &t);
    if (rc == WEFT_EUNAVAILABLE)
        cr_skip_test("backend unavailable");
    cr_assert_eq(rc, 0, "%s", weft_strerror(rc));
    static unsigned char out[MS_BYTES];
    fill_pattern(out, sizeof out);
    for (int i = 0; i < MS_THREADS; i++) {
        cr_assert_geq(wait_at_least(&c->port[i], 1, 20000), 1, "thread %d never listened", i);
        weft_addr a;
        cr_assert_eq(weft_addr_ip(&a, "127.0.0.1", atomic_load(&c->port[i])), 0);
        for (int k = 0; k < MS_CLIENTS; k++) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            cr_assert_geq(fd, 0);
            cr_assert_eq(net_connect(fd, &a), 0, "connect: %s", strerror(errno));
            size_t sent = 0;
            while (sent < sizeof out) {
                long n = send(fd, out + sent, sizeof out - sent, MSG_NOSIGNAL);
                cr_assert_gt(n, 0, "send: %s", strerror(errno));
                sent += (size_t)n;
            }
            close(fd);
        }
    }
    for (int i = 0; i < MS_THREADS; i++) {
        cr_assert_eq(wait_at_least(&c->conns[i], MS_CLIENTS, 20000), MS_CLIENTS,
                     "thread %d: %d accepted, %d bytes, %d bad", i, atomic_load(&c->accepted[i]),
                     atomic_load(&c->bytes[i]), atomic_load(&c->bad[i]));
        cr_assert_eq(atomic_load(&c->bytes[i]), MS_CLIENTS * MS_BYTES, "thread %d", i);
        cr_assert_eq(atomic_load(&c->bad[i]), 0, "thread %d", i);
    }
    cr_assert_eq(weft_threads_stop(t), 0);
    cr_assert_eq(weft_threads_join(t), 0);
    free(c);
}
