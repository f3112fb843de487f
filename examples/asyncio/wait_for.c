/* wait_for: await a task with a time limit. In time, its result comes
 * back; on timeout the task is cancelled, wait_for waits until it has
 * cleaned up, and returns -ETIMEDOUT.
 *
 *   async def quick():
 *       print('quick: working')
 *       await asyncio.sleep(0.01)
 *       return 42
 *
 *   async def slow():
 *       print('slow: started, sleeping 1 s')
 *       try:
 *           await asyncio.sleep(1)
 *       except asyncio.CancelledError:
 *           print('slow: cancelled, cleaning up')
 *           raise
 *
 *   async def main():
 *       print('waiting for quick with a 1 s limit')
 *       print('quick returned', await asyncio.wait_for(quick(), 1))
 *       print('waiting for slow with a 50 ms limit')
 *       try:
 *           await asyncio.wait_for(slow(), 0.05)
 *       except asyncio.TimeoutError:
 *           print('slow timed out, and has finished:', task.cancelled())
 */
#include <weft.h>

#include <errno.h>
#include <stdio.h>

#define MS 1000000LL

static weft_loop *loop;

static int quick(void *arg, intptr_t *result)
{
    (void)arg;
    printf("quick: working\n");
    *result = 42;
    return weft_sleep(loop, 10 * MS);
}

static int slow(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    printf("slow: started, sleeping 1 s\n");
    int rc = weft_sleep(loop, 1000 * MS);
    if (rc == -ECANCELED) {
        weft_yield(loop); /* clean-up takes a moment: wait_for waits for it */
        printf("slow: cancelled, cleaning up\n");
    }
    return rc;
}

static int run(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    weft_future *t;
    intptr_t v = 0;
    printf("waiting for quick with a 1 s limit\n");
    int rc = weft_task_spawn(loop, quick, NULL, &t);
    if (rc < 0)
        return rc;
    rc = weft_wait_for(t, 1000 * MS, &v);
    weft_future_unref(t);
    if (rc < 0)
        return rc;
    printf("quick returned %d\n", (int)v);

    printf("waiting for slow with a 50 ms limit\n");
    if ((rc = weft_task_spawn(loop, slow, NULL, &t)) < 0)
        return rc;
    rc = weft_wait_for(t, 50 * MS, &v);
    if (rc == -ETIMEDOUT)
        printf("slow timed out, and has finished: %s\n",
               weft_future_state(t) == WEFT_FUTURE_CANCELLED ? "cancelled" : "not cancelled");
    weft_future_unref(t);
    return rc == -ETIMEDOUT ? 0 : -1;
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
