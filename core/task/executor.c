/* The executor: a small pool of threads owned by the loop, running blocking
 * functions (asyncio's run_in_executor).
 *
 * Jobs go on a queue under the pool's mutex; a worker runs one and puts it
 * on the done list. The job that makes that list non-empty posts the pool's
 * wake handle with weft_call_soon_threadsafe, whose callback (on the loop
 * thread) takes the whole list and finishes the futures. Jobs not yet
 * delivered count in the loop's ext_pending, so weft_loop_run does not go
 * idle while they run. weft_loop_free stops the pool first (ext_stop): once
 * shutdown is set under the mutex no worker posts again, and the workers
 * are joined before the loop's cross-thread queue and backend go. */
#include "loop_internal.h"
#include "task_internal.h"
#include "weft/executor.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct job {
    weft__link link;
    weft_work_fn fn;
    void (*drop)(void *arg); /* for a job dropped unrun; may be NULL */
    void *arg;
    weft_future *fut; /* the job's reference */
    intptr_t result;
    int err;
} job;

typedef struct weft__executor {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t threads[WEFT_EXECUTOR_THREADS];
    int nthreads, idle, shutdown; /* under mu */
    size_t queued;                /* under mu */
    weft__list queue, done;       /* under mu */
    /* Posted by the worker that finds done empty. The callback empties done
     * under mu after the loop made the handle idle, so a worker that finds
     * done empty again always finds the handle idle. */
    weft_handle wake;
    /* Loop thread only. */
    weft_loop *loop;
    weft__list free_jobs;
} weft__executor;

static void deliver(void *arg);

static void *worker(void *arg)
{
    weft__executor *ex = arg;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        while (!ex->shutdown && weft__list_empty(&ex->queue)) {
            ex->idle++;
            pthread_cond_wait(&ex->cv, &ex->mu);
            ex->idle--;
        }
        if (ex->shutdown)
            break;
        job *j = weft__container_of(weft__list_pop(&ex->queue), job, link);
        ex->queued--;
        pthread_mutex_unlock(&ex->mu);
        j->result = 0;
        j->err = j->fn(j->arg, &j->result);
        pthread_mutex_lock(&ex->mu);
        int was_empty = weft__list_empty(&ex->done);
        weft__list_push(&ex->done, &j->link);
        /* Under mu: ext_stop, which sets shutdown under mu, cannot overtake
         * a post. A failed wake-up leaves the handle queued: the loop still
         * finds it on its next iteration. */
        if (was_empty && !ex->shutdown)
            (void)weft_call_soon_threadsafe(ex->loop, &ex->wake, deliver, ex);
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

/* On the loop thread: finish the futures of the jobs done so far. */
static void deliver(void *arg)
{
    weft__executor *ex = arg;
    weft__list done = {0};
    pthread_mutex_lock(&ex->mu);
    weft__list_splice(&done, &ex->done);
    pthread_mutex_unlock(&ex->mu);
    weft__link *n;
    while ((n = weft__list_pop(&done)) != NULL) {
        job *j = weft__container_of(n, job, link);
        ex->loop->ext_pending--;
        if (weft_future_state(j->fut) == WEFT_FUTURE_PENDING) { /* else cancelled: dropped */
            if (j->err < 0)
                weft_future_set_error(j->fut, j->err);
            else
                weft_future_set_result(j->fut, j->result);
        }
        weft_future_unref(j->fut);
        weft__list_push(&ex->free_jobs, &j->link);
    }
}

static int executor_get(weft_loop *loop, weft__executor **out)
{
    weft__loop_tasks *ts = weft__tasks(loop);
    if (!ts)
        return -ENOMEM;
    if (ts->executor) {
        *out = ts->executor;
        return 0;
    }
    weft__executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return -ENOMEM;
    ex->loop = loop;
    int rc;
    if ((rc = -pthread_mutex_init(&ex->mu, NULL)) == 0 &&
        (rc = -pthread_cond_init(&ex->cv, NULL)) != 0)
        pthread_mutex_destroy(&ex->mu);
    if (rc) {
        free(ex);
        return rc;
    }
    ts->executor = ex;
    *out = ex;
    return 0;
}

int weft_run_in_executor(weft_loop *loop, weft_work_fn fn, void *arg, weft_future **out)
{
    return weft__run_in_executor_drop(loop, fn, NULL, arg, out);
}

int weft__run_in_executor_drop(weft_loop *loop, weft_work_fn fn, void (*drop)(void *arg), void *arg,
                               weft_future **out)
{
    if (!loop || !fn)
        return -EINVAL;
    weft__executor *ex;
    int rc = executor_get(loop, &ex);
    if (rc)
        return rc;
    weft__link *n = weft__list_pop(&ex->free_jobs);
    job *j = n ? weft__container_of(n, job, link) : malloc(sizeof *j);
    if (!j)
        return -ENOMEM;
    rc = weft_future_new(loop, &j->fut);
    if (rc) {
        weft__list_push(&ex->free_jobs, &j->link);
        return rc;
    }
    j->fn = fn;
    j->drop = drop;
    j->arg = arg;
    pthread_mutex_lock(&ex->mu);
    weft__list_push(&ex->queue, &j->link);
    ex->queued++;
    if (ex->queued > (size_t)ex->idle && ex->nthreads < WEFT_EXECUTOR_THREADS) {
        int e = pthread_create(&ex->threads[ex->nthreads], NULL, worker, ex);
        if (e == 0) {
            ex->nthreads++;
        } else if (ex->nthreads == 0) { /* nobody could ever run it */
            weft__list_remove(&ex->queue, &j->link);
            ex->queued--;
            pthread_mutex_unlock(&ex->mu);
            weft_future_unref(j->fut);
            weft__list_push(&ex->free_jobs, &j->link);
            return -e;
        }
    }
    pthread_cond_signal(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
    loop->ext_pending++;
    if (out) {
        weft_future_ref(j->fut);
        *out = j->fut;
    }
    return 0;
}

void weft__executor_stop(weft__loop_tasks *ts)
{
    weft__executor *ex = ts->executor;
    if (!ex)
        return;
    pthread_mutex_lock(&ex->mu);
    ex->shutdown = 1;
    pthread_cond_broadcast(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
    for (int i = 0; i < ex->nthreads; i++)
        pthread_join(ex->threads[i], NULL); /* running jobs finish; queued ones never start */
    ex->nthreads = 0;
}

/* drop_unrun: the queue, whose jobs never ran: their owners free what the
 * jobs would have (a lookup's request). */
static void free_jobs(weft__list *l, int drop_unrun)
{
    weft__link *n;
    while ((n = weft__list_pop(l)) != NULL) {
        job *j = weft__container_of(n, job, link);
        if (drop_unrun && j->drop)
            j->drop(j->arg);
        free(j); /* futures are freed with the loop */
    }
}

void weft__executor_free(weft__loop_tasks *ts)
{
    weft__executor *ex = ts->executor;
    if (!ex)
        return;
    weft__executor_stop(ts);
    free_jobs(&ex->queue, 1);
    free_jobs(&ex->done, 0);
    free_jobs(&ex->free_jobs, 0);
    pthread_cond_destroy(&ex->cv);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
    ts->executor = NULL;
}
