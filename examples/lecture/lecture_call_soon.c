/* Scheduling plain functions, the section the lecture announces at its end
 * (asyncio's call_soon example):
 *
 *   def callback(arg, *, kwarg='default'):
 *       print('callback invoked with {} and {}'.format(arg, kwarg))
 *   async def main(loop):
 *       print('registering callbacks')
 *       loop.call_soon(callback, 1)
 *       wrapped = functools.partial(callback, kwarg='not default')
 *       loop.call_soon(wrapped, 2)
 *       await asyncio.sleep(0.1)
 */
#include <weft.h>

#include <stdio.h>

typedef struct {
    int arg;
    const char *kwarg;
    weft_handle handle;
} call;

static void callback(void *p)
{
    call *c = p;
    printf("callback invoked with %d and %s\n", c->arg, c->kwarg);
}

static int main_task(void *arg, intptr_t *result)
{
    (void)result;
    weft_loop *loop = arg;
    static call first = {.arg = 1, .kwarg = "default"};
    static call wrapped = {.arg = 2, .kwarg = "not default"}; /* the "partial" */
    printf("registering callbacks\n");
    weft_call_soon(loop, &first.handle, callback, &first);
    weft_call_soon(loop, &wrapped.handle, callback, &wrapped);
    return weft_sleep(loop, 100 * 1000000);
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
