/* Futures with done-callbacks (the asyncio_future_callback program of the
 * lecture's source): callbacks run through the loop, in the order added,
 * once the future has a result.
 *
 *   def callback(future, n):
 *       print('{}: future done: {}'.format(n, future.result()))
 *
 *   async def register_callbacks(all_done):
 *       print('registering callbacks on future')
 *       all_done.add_done_callback(functools.partial(callback, n=1))
 *       all_done.add_done_callback(functools.partial(callback, n=2))
 *
 *   async def main(all_done):
 *       await register_callbacks(all_done)
 *       print('setting result of future')
 *       all_done.set_result('the result')
 */
#include <weft.h>

#include <stdio.h>

static void callback(weft_future *f, void *arg)
{
    intptr_t result = 0;
    weft_future_result(f, &result);
    printf("%d: future done: %s\n", (int)(intptr_t)arg, (const char *)result);
}

static int run(void *arg, intptr_t *result)
{
    weft_future *all_done = arg;
    (void)result;
    printf("registering callbacks on future\n");
    weft_future_add_done_callback(all_done, callback, (void *)1);
    weft_future_add_done_callback(all_done, callback, (void *)2);
    printf("setting result of future\n");
    return weft_future_set_result(all_done, (intptr_t) "the result");
}

int main(void)
{
    weft_loop *loop;
    if (weft_loop_new(NULL, &loop) < 0)
        return 1;
    weft_future *all_done, *task;
    int rc = weft_future_new(loop, &all_done);
    if (rc == 0)
        rc = weft_task_spawn(loop, run, all_done, &task);
    if (rc == 0) {
        rc = weft_run_until_complete(loop, task, NULL);
        if (rc == 0)
            rc = weft_run_until_complete(loop, all_done, NULL);
        weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE); /* the callbacks */
        weft_future_unref(task);
        weft_future_unref(all_done);
    }
    weft_loop_free(loop);
    return rc < 0;
}
