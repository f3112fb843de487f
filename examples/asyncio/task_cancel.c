/* Cancelling a task (asyncio_cancel_task2): the task's suspension point
 * returns -ECANCELED, the task cleans up and ends cancelled, and whoever
 * awaits it sees -ECANCELED too.
 *
 *   async def task_func():
 *       print('in task_func, sleeping')
 *       try:
 *           await asyncio.sleep(1)
 *       except asyncio.CancelledError:
 *           print('task_func was canceled')
 *           raise
 *       return 'the result'
 *
 *   def task_canceller(t):
 *       print('in task_canceller')
 *       t.cancel()
 *       print('canceled the task')
 *
 *   async def main(loop):
 *       print('creating task')
 *       task = loop.create_task(task_func())
 *       loop.call_soon(task_canceller, task)
 *       try:
 *           await task
 *       except asyncio.CancelledError:
 *           print('main() also sees task as canceled')
 */
#include <weft.h>

#include <errno.h>
#include <stdio.h>

static weft_loop *loop;

static int task_func(void *arg, intptr_t *result)
{
    (void)arg;
    printf("in task_func, sleeping\n");
    int rc = weft_sleep(loop, 1000000000);
    if (rc == -ECANCELED) {
        printf("task_func was canceled\n");
        return rc;
    }
    *result = (intptr_t) "the result";
    return rc;
}

static void task_canceller(void *arg)
{
    printf("in task_canceller\n");
    weft_future_cancel(arg);
    printf("canceled the task\n");
}

static int run(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    static weft_handle h;
    weft_future *task;
    printf("creating task\n");
    int rc = weft_task_spawn(loop, task_func, NULL, &task);
    if (rc < 0)
        return rc;
    weft_call_soon(loop, &h, task_canceller, task);
    rc = weft_await(task, NULL);
    if (rc == -ECANCELED)
        printf("main() also sees task as canceled\n");
    weft_future_unref(task);
    return rc == -ECANCELED ? 0 : -1;
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
