/* The executor: a small pool of threads owned by the loop, running blocking
 * functions (asyncio's run_in_executor).
 *
 * Jobs go on a queue under the pool's mutex; a worker runs one, puts it on
 * the done list and, if that list was empty, writes to the pool's own wake
 * descriptor (an eventfd, or a pipe). The loop keeps a POLL_IN op on that
 * descriptor in flight while jobs are outstanding: it wakes the loop, keeps
 * weft_loop_run from going idle with jobs still running, and finishes the
 * futures on the loop thread. Workers touch nothing of the loop, so the
 * loop can be freed at any time: tasks_free joins the workers first (the
 * backend is gone by then, but no worker ever used it). */
#include "task_internal.h"
#include "weft/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

typedef struct job {
    weft_link_ link;
    weft_work_fn fn;
    void *arg;
    weft_future *fut; /* the job's reference */
    intptr_t result;
    int err;
} job;

typedef struct weft_executor {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t threads[WEFT_EXECUTOR_THREADS];
    int nthreads, idle, shutdown; /* under mu */
    size_t queued;                /* under mu */
    weft_list queue, done;        /* under mu */
    /* Loop thread only. */
    weft_loop *loop;
    weft_list free_jobs;
    size_t outstanding; /* submitted, not yet finished on the loop */
    int rfd, wfd;       /* the same eventfd, or a pipe */
    weft_op op;
    int op_inflight;
} weft_executor;

static void *worker(void *arg)
{
    weft_executor *ex = arg;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        while (!ex->shutdown && weft_list_empty(&ex->queue)) {
            ex->idle++;
            pthread_cond_wait(&ex->cv, &ex->mu);
            ex->idle--;
        }
        if (ex->shutdown)
            break;
        job *j = weft_container_of(weft_list_pop(&ex->queue), job, link);
        ex->queued--;
        pthread_mutex_unlock(&ex->mu);
        j->result = 0;
        j->err = j->fn(j->arg, &j->result);
        pthread_mutex_lock(&ex->mu);
        int was_empty = weft_list_empty(&ex->done);
        weft_list_push(&ex->done, &j->link);
        if (was_empty) {
            /* The loop reads the descriptor before it takes the done list,
             * so a job pushed after its read is seen by the next wakeup. */
            uint64_t one = 1;
            ssize_t w = write(ex->wfd, &one, ex->rfd == ex->wfd ? sizeof one : 1);
            (void)w; /* full pipe: a wakeup is pending already */
        }
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

static void wake_done(weft_op *op);

static int arm(weft_executor *ex)
{
    if (ex->op_inflight || !ex->outstanding)
        return 0;
    weft_op_prep_poll_in(&ex->op, ex->rfd, wake_done, ex);
    int rc = weft_op_submit(ex->loop, &ex->op);
    if (rc == 0)
        ex->op_inflight = 1;
    return rc;
}

/* On the loop thread: finish the futures of the jobs done so far. */
static void wake_done(weft_op *op)
{
    weft_executor *ex = op->data;
    ex->op_inflight = 0;
    char buf[64];
    while (read(ex->rfd, buf, sizeof buf) > 0 && ex->rfd != ex->wfd)
        ;
    weft_list done = {0};
    pthread_mutex_lock(&ex->mu);
    weft_list_splice(&done, &ex->done);
    pthread_mutex_unlock(&ex->mu);
    weft_link_ *n;
    while ((n = weft_list_pop(&done)) != NULL) {
        job *j = weft_container_of(n, job, link);
        ex->outstanding--;
        if (weft_future_state(j->fut) == WEFT_FUTURE_PENDING) { /* else cancelled: dropped */
            if (j->err < 0)
                weft_future_set_error(j->fut, j->err);
            else
                weft_future_set_result(j->fut, j->result);
        }
        weft_future_unref(j->fut);
        weft_list_push(&ex->free_jobs, &j->link);
    }
    arm(ex); /* more outstanding: keep listening (a failure leaves them hanging) */
}

static int open_wake_fd(weft_executor *ex)
{
#ifdef __linux__
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    ex->rfd = ex->wfd = fd;
#else
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    ex->rfd = p[0];
    ex->wfd = p[1];
#endif
    return 0;
}

static int executor_get(weft_loop *loop, weft_executor **out)
{
    weft_tasks *ts = weft__tasks(loop);
    if (!ts)
        return -ENOMEM;
    if (ts->executor) {
        *out = ts->executor;
        return 0;
    }
    weft_executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return -ENOMEM;
    ex->loop = loop;
    int rc = open_wake_fd(ex);
    if (rc) {
        free(ex);
        return rc;
    }
    if ((rc = -pthread_mutex_init(&ex->mu, NULL)) == 0 &&
        (rc = -pthread_cond_init(&ex->cv, NULL)) != 0)
        pthread_mutex_destroy(&ex->mu);
    if (rc) {
        close(ex->rfd);
        if (ex->wfd != ex->rfd)
            close(ex->wfd);
        free(ex);
        return rc;
    }
    ts->executor = ex;
    *out = ex;
    return 0;
}

int weft_run_in_executor(weft_loop *loop, weft_work_fn fn, void *arg, weft_future **out)
{
    if (!loop || !fn)
        return -EINVAL;
    weft_executor *ex;
    int rc = executor_get(loop, &ex);
    if (rc)
        return rc;
    weft_link_ *n = weft_list_pop(&ex->free_jobs);
    job *j = n ? weft_container_of(n, job, link) : malloc(sizeof *j);
    if (!j)
        return -ENOMEM;
    rc = weft_future_new(loop, &j->fut);
    if (rc) {
        weft_list_push(&ex->free_jobs, &j->link);
        return rc;
    }
    j->fn = fn;
    j->arg = arg;
    ex->outstanding++;
    rc = arm(ex);
    if (rc) {
        ex->outstanding--;
        weft_future_unref(j->fut);
        weft_list_push(&ex->free_jobs, &j->link);
        return rc;
    }
    pthread_mutex_lock(&ex->mu);
    weft_list_push(&ex->queue, &j->link);
    ex->queued++;
    if (ex->queued > (size_t)ex->idle && ex->nthreads < WEFT_EXECUTOR_THREADS) {
        int e = pthread_create(&ex->threads[ex->nthreads], NULL, worker, ex);
        if (e == 0) {
            ex->nthreads++;
        } else if (ex->nthreads == 0) { /* nobody could ever run it */
            weft_list_remove(&ex->queue, &j->link);
            ex->queued--;
            pthread_mutex_unlock(&ex->mu);
            ex->outstanding--;
            weft_future_unref(j->fut);
            weft_list_push(&ex->free_jobs, &j->link);
            return -e;
        }
    }
    pthread_cond_signal(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
    if (out) {
        weft_future_ref(j->fut);
        *out = j->fut;
    }
    return 0;
}

static void free_jobs(weft_list *l)
{
    weft_link_ *n;
    while ((n = weft_list_pop(l)) != NULL)
        free(weft_container_of(n, job, link)); /* futures are freed with the loop */
}

void weft__executor_free(weft_tasks *ts)
{
    weft_executor *ex = ts->executor;
    if (!ex)
        return;
    pthread_mutex_lock(&ex->mu);
    ex->shutdown = 1;
    pthread_cond_broadcast(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
    for (int i = 0; i < ex->nthreads; i++)
        pthread_join(ex->threads[i], NULL); /* running jobs finish; queued ones never start */
    free_jobs(&ex->queue);
    free_jobs(&ex->done);
    free_jobs(&ex->free_jobs);
    pthread_cond_destroy(&ex->cv);
    pthread_mutex_destroy(&ex->mu);
    close(ex->rfd);
    if (ex->wfd != ex->rfd)
        close(ex->wfd);
    free(ex);
    ts->executor = NULL;
}
