/* run_in_executor: blocking work on the loop's thread pool. The task awaits
 * the job's future while the loop keeps running other tasks (here a ticker
 * that stops once the job is done).
 *
 *   def blocking(n):
 *       time.sleep(0.05)
 *       return n * n
 *
 *   async def main(loop):
 *       print('handing blocking work to the executor')
 *       result = await loop.run_in_executor(None, blocking, 7)
 *       print('blocking work returned', result)
 */
#include <weft.h>

#include <stdio.h>
#include <unistd.h>

static weft_loop *loop;
static int job_done;

static int blocking(void *arg, intptr_t *result)
{
    usleep(50000); /* blocks this pool thread, not the loop */
    intptr_t n = (intptr_t)arg;
    *result = n * n;
    return 0;
}

static int ticker(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    int ticks = 0;
    while (!job_done && weft_sleep(loop, 1000000) == 0)
        ticks++;
    printf("the loop kept running meanwhile: %s\n", ticks > 0 ? "yes" : "no");
    return 0;
}

static int run(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    weft_future *job, *tick;
    int rc = weft_task_spawn(loop, ticker, NULL, &tick);
    if (rc < 0)
        return rc;
    printf("handing blocking work to the executor\n");
    if ((rc = weft_run_in_executor(loop, blocking, (void *)7, &job)) == 0) {
        intptr_t v = 0;
        rc = weft_await(job, &v);
        job_done = 1;
        if (rc == 0)
            printf("blocking work returned %d\n", (int)v);
        weft_future_unref(job);
    }
    weft_await(tick, NULL);
    weft_future_unref(tick);
    return rc;
}

int main(void)
{
    if (weft_loop_new(NULL, &loop) < 0)
        return 1;
    weft_future *task;
    int rc = weft_task_spawn(loop, run, NULL, &task);
    if (rc == 0) {
        rc = weft_run_until_complete(loop, task, NULL);
        weft_future_unref(task);
    }
    weft_loop_free(loop);
    return rc < 0;
}
