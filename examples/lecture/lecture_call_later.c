/* asyncio's call_later example: callbacks 3, 2, 1 run in that order.
 *
 *   loop.call_later(0.2, callback, 1)
 *   loop.call_later(0.1, callback, 2)
 *   loop.call_soon(callback, 3)
 *   await asyncio.sleep(0.4)
 */
#include <weft.h>

#include <stdio.h>

#define MS 1000000LL

typedef struct {
    int n;
    weft_handle handle;
} call;

static void callback(void *p)
{
    printf("callback %d invoked\n", ((call *)p)->n);
}

static int main_task(void *arg, intptr_t *result)
{
    (void)result;
    weft_loop *loop = arg;
    static call c1 = {.n = 1}, c2 = {.n = 2}, c3 = {.n = 3};
    printf("registering callbacks\n");
    weft_call_later(loop, &c1.handle, 200 * MS, callback, &c1);
    weft_call_later(loop, &c2.handle, 100 * MS, callback, &c2);
    weft_call_soon(loop, &c3.handle, callback, &c3);
    return weft_sleep(loop, 400 * MS);
}

int main(void)
{
    weft_loop *loop;
    if (weft_loop_new(NULL, &loop) < 0)
        return 1;
    printf("entering event loop\n");
    weft_future *task;
    int rc = weft_task_spawn(loop, main_task, loop, &task);
    if (rc == 0) {
        rc = weft_run_until_complete(loop, task, NULL);
        weft_future_unref(task);
    }
    printf("closing event loop\n");
    weft_loop_free(loop);
    return rc < 0;
}
