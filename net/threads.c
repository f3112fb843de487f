/* Thread-per-core: N threads, each with its own loop running a main task;
 * and weft_serve_threads, which gives each thread a server on its own
 * SO_REUSEPORT listener (Linux: the kernel spreads connections), with
 * per-thread state made by a setup hook before the main task exists and
 * undone by a teardown hook after the loop stopped. Elsewhere the threads
 * share one listener: a duplicate each on POSIX; on Windows the one socket
 * itself (a duplicate would be the same socket to IOCP, and a handle is
 * closed once), which stays open until every loop is gone. */
#include "net_internal.h"
#include "weft/signal.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <unistd.h>
#endif

#define MAX_THREADS 1024

typedef struct thr {
    weft_threads *t;
    pthread_t th;
    int index, created;
    weft_loop *loop;    /* under t->mu; NULL once the loop stops running */
    weft_future *main;  /* the main task */
    weft_handle stop_h; /* for weft_call_soon_threadsafe */
    void *conn_arg;     /* weft_serve_threads: this thread's handler argument */
    int result;
    int init_done, init_err; /* under t->mu */
} thr;

struct weft_threads {
    int n;
    weft_thread_fn fn;
    void *arg;
    weft_loop_opts lopts;
    int has_lopts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping; /* under mu */
    thr *thr;
    /* weft_serve_threads */
    int serving;
    weft_addr addr;
    int *lfds;
    int shared_lfd; /* Windows: the one listener every thread accepts on; -1 */
    weft_conn_handler handler;
    void *harg;
    weft_serve_opts sopts;
    atomic_int signalled; /* a stop signal arrived (on_stop_signal ran) */
};

static void stop_cb(void *arg)
{
    thr *h = arg;
    weft_future_cancel(h->main);
}

static void report_init(thr *h, int err)
{
    pthread_mutex_lock(&h->t->mu);
    h->init_done = 1;
    h->init_err = err;
    pthread_cond_broadcast(&h->t->cv);
    pthread_mutex_unlock(&h->t->mu);
}

static int main_task(void *arg, intptr_t *result)
{
    (void)result;
    thr *h = arg;
    return h->t->fn(weft_future_loop(h->main), h->index, h->t->arg);
}

/* weft_serve_threads' per-thread state: made before the main task exists,
 * undone after the loop stopped, so a setup always meets its teardown. */
static int thread_setup(thr *h, weft_loop *loop)
{
    weft_threads *t = h->t;
    h->conn_arg = t->harg;
    if (!t->serving || !t->sopts.thread_setup)
        return 0;
    int rc = t->sopts.thread_setup(loop, h->index, t->harg, &h->conn_arg);
    return rc > 0 ? -EINVAL : rc; /* a positive "error" is no error code */
}

/* weft_serve_opts.stop_signals: every loop handles them (each sees every
 * signal, weft/signal.h), the first to run calls on_stop_signal, and all
 * stop every thread (weft_threads_stop does it once). */
static const int stop_signals[] = {
    SIGINT,
    SIGTERM,
#ifdef _WIN32
    SIGBREAK,
#endif
};

static void on_stop_signal(weft_loop *loop, int signo, void *arg)
{
    (void)loop;
    weft_threads *t = arg;
    if (!atomic_exchange(&t->signalled, 1) && t->sopts.on_stop_signal)
        t->sopts.on_stop_signal(signo, t->sopts.stop_signal_arg);
    weft_threads_stop(t);
}

static int add_stop_signals(thr *h, weft_loop *loop)
{
    weft_threads *t = h->t;
    if (!t->serving || !t->sopts.stop_signals)
        return 0;
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++) {
        int rc = weft_loop_add_signal_handler(loop, stop_signals[i], on_stop_signal, t);
        if (rc)
            return rc; /* weft_loop_free removes those added */
    }
    return 0;
}

static void thread_teardown(thr *h, weft_loop *loop)
{
    weft_threads *t = h->t;
    if (t->serving && t->sopts.thread_teardown)
        t->sopts.thread_teardown(loop, h->index, h->conn_arg);
}

static void *thread_main(void *arg)
{
    thr *h = arg;
    weft_threads *t = h->t;
    weft_loop *loop;
    int rc = weft_loop_new(t->has_lopts ? &t->lopts : NULL, &loop);
    if (rc) {
        report_init(h, rc);
        return NULL;
    }
    rc = thread_setup(h, loop);
    if (rc) {
        weft_loop_free(loop);
        report_init(h, rc);
        return NULL;
    }
    rc = add_stop_signals(h, loop);
    if (!rc)
        rc = weft_task_spawn(loop, main_task, h, &h->main);
    if (rc) {
        thread_teardown(h, loop);
        weft_loop_free(loop);
        report_init(h, rc);
        return NULL;
    }
    pthread_mutex_lock(&t->mu);
    h->loop = loop;
    h->init_done = 1;
    pthread_cond_broadcast(&t->cv);
    if (t->stopping)
        weft_future_cancel(h->main); /* safe: the loop is not running yet */
    pthread_mutex_unlock(&t->mu);
    h->result = weft_run_until_complete(loop, h->main, NULL);
    pthread_mutex_lock(&t->mu);
    h->loop = NULL; /* weft_threads_stop must not post to it any more */
    pthread_mutex_unlock(&t->mu);
    weft_future_unref(h->main);
    h->main = NULL;
    thread_teardown(h, loop);
    weft_loop_free(loop);
    return NULL;
}

static void threads_free(weft_threads *t)
{
    if (t->lfds) {
        for (int i = 0; i < t->n; i++)
            if (t->lfds[i] >= 0)
                weft__sock_close(t->lfds[i]);
        free(t->lfds);
    }
    if (t->shared_lfd >= 0) /* the threads and their loops are gone */
        weft__sock_close(t->shared_lfd);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->thr);
    free(t);
}

static weft_threads *threads_alloc(int n, const weft_loop_opts *loop_opts, weft_thread_fn fn,
                                   void *arg)
{
    weft_threads *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->thr = calloc((size_t)n, sizeof *t->thr);
    if (!t->thr) {
        free(t);
        return NULL;
    }
    t->n = n;
    t->shared_lfd = -1;
    t->fn = fn;
    t->arg = arg;
    if (loop_opts) {
        t->lopts = *loop_opts;
        t->has_lopts = 1;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    return t;
}

/* Start t's threads and wait until each has its loop; on a failure stop
 * and join them all. */
static int threads_launch(weft_threads *t)
{
    int err = 0;
    for (int i = 0; i < t->n && !err; i++) {
        thr *h = &t->thr[i];
        h->t = t;
        h->index = i;
        int rc = pthread_create(&h->th, NULL, thread_main, h);
        if (rc)
            err = -rc;
        else
            h->created = 1;
    }
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->n; i++) {
        thr *h = &t->thr[i];
        while (h->created && !h->init_done)
            pthread_cond_wait(&t->cv, &t->mu);
        if (!err && h->init_err)
            err = h->init_err;
    }
    pthread_mutex_unlock(&t->mu);
    if (err) {
        weft_threads_stop(t);
        for (int i = 0; i < t->n; i++)
            if (t->thr[i].created)
                pthread_join(t->thr[i].th, NULL);
    }
    return err;
}

int weft_threads_start(int n, const weft_loop_opts *loop_opts, weft_thread_fn fn, void *arg,
                       weft_threads **out)
{
    if (n < 1 || n > MAX_THREADS || !fn || !out)
        return -EINVAL;
    weft_threads *t = threads_alloc(n, loop_opts, fn, arg);
    if (!t)
        return -ENOMEM;
    int rc = threads_launch(t);
    if (rc) {
        threads_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int weft_threads_stop(weft_threads *t)
{
    if (!t)
        return -EINVAL;
    pthread_mutex_lock(&t->mu);
    if (!t->stopping) {
        t->stopping = 1;
        for (int i = 0; i < t->n; i++)
            if (t->thr[i].loop)
                weft_call_soon_threadsafe(t->thr[i].loop, &t->thr[i].stop_h, stop_cb, &t->thr[i]);
    }
    pthread_mutex_unlock(&t->mu);
    return 0;
}

int weft_threads_join(weft_threads *t)
{
    if (!t)
        return -EINVAL;
    int first = 0;
    for (int i = 0; i < t->n; i++) {
        thr *h = &t->thr[i];
        if (!h->created)
            continue;
        pthread_join(h->th, NULL);
        if (!first && h->result && h->result != -ECANCELED)
            first = h->result;
    }
    threads_free(t);
    return first;
}

/* --- serving --- */

static int serve_main(weft_loop *loop, int index, void *arg)
{
    weft_threads *t = arg;
    weft_server *srv;
    int rc;
    if (t->shared_lfd >= 0) {
        rc = weft__start_server_shared(loop, t->shared_lfd, t->handler, t->thr[index].conn_arg,
                                       &t->sopts.server, &srv);
    } else {
        int lfd = t->lfds[index];
        t->lfds[index] = -1; /* the server owns it now */
        rc = weft_start_server_fd(loop, lfd, t->handler, t->thr[index].conn_arg, &t->sopts.server,
                                  &srv);
    }
    if (rc)
        return rc;
    rc = weft_wait_cancelled(loop); /* until weft_threads_stop cancels us */
    weft_server_close(srv, t->sopts.grace_ns);
    return rc == -ECANCELED ? 0 : rc;
}

int weft_serve_threads(int n, const weft_loop_opts *loop_opts, const weft_addr *addr,
                       weft_conn_handler handler, void *arg, const weft_serve_opts *opts,
                       weft_threads **out)
{
    if (n < 1 || n > MAX_THREADS || !weft__addr_ok(addr) || !handler || !out)
        return -EINVAL;
    weft_threads *t = threads_alloc(n, loop_opts, serve_main, NULL);
    if (!t)
        return -ENOMEM;
    t->arg = t;
    t->serving = 1;
    t->handler = handler;
    t->harg = arg;
    if (opts)
        t->sopts = *opts;
    t->lfds = malloc((size_t)n * sizeof *t->lfds);
    if (!t->lfds) {
        threads_free(t);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++)
        t->lfds[i] = -1;
    weft_listen_opts lo = t->sopts.server.listen;
    int share = 1; /* one listener, duplicated for every thread */
#if defined(__linux__) && defined(SO_REUSEPORT)
    if (addr->ss.ss_family != AF_UNIX && n > 1) {
        lo.reuseport = 1;
        share = 0;
    }
#endif
    int rc = 0;
    weft_addr bound = *addr;
    for (int i = 0; i < n && !rc; i++) {
        if (i > 0 && share) {
#ifdef _WIN32
            break; /* below: lfds[0] becomes the shared listener */
#else
            t->lfds[i] = fcntl(t->lfds[0], F_DUPFD_CLOEXEC, 0);
            if (t->lfds[i] < 0)
                rc = -errno;
            continue;
#endif
        }
        int fd = weft_listen(&bound, &lo);
        if (fd < 0) {
            rc = fd;
            break;
        }
        t->lfds[i] = fd;
        if (i == 0) {
            rc = weft_sockname(fd, &t->addr); /* the real port, for the others to share */
            if (!rc && addr->ss.ss_family != AF_UNIX)
                bound = t->addr;
            if (!rc && addr->ss.ss_family == AF_UNIX)
                t->addr = *addr;
        }
    }
#ifdef _WIN32
    if (!rc) {
        /* One socket for all: each loop's server borrows it (the IOCP
         * backend serves a socket another loop's port holds readiness-style),
         * and threads_free closes it. */
        t->shared_lfd = t->lfds[0];
        t->lfds[0] = -1;
    }
#endif
    if (!rc)
        rc = threads_launch(t);
    if (rc) {
        threads_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int weft_threads_addr(const weft_threads *t, weft_addr *out)
{
    if (!t || !out || !t->serving)
        return -EINVAL;
    *out = t->addr;
    return 0;
}
