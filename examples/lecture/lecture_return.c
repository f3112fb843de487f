/* The lecture's "returning a result from a coroutine":
 *
 *   async def coroutine():
 *       print('in coroutine')
 *       return 'result'
 *   return_value = event_loop.run_until_complete(coroutine())
 *   print('it returned: {!r}'.format(return_value))
 */
#include <weft.h>

#include <stdio.h>

static int coroutine(void *arg, intptr_t *result)
{
    (void)arg;
    printf("in coroutine\n");
    *result = (intptr_t) "result";
    return 0;
}

int main(void)
{
    weft_loop *loop;
    if (weft_loop_new(NULL, &loop) < 0)
        return 1;
    weft_future *task;
    intptr_t value = 0;
    int rc = weft_task_spawn(loop, coroutine, NULL, &task);
    if (rc == 0) {
        rc = weft_run_until_complete(loop, task, &value);
        weft_future_unref(task);
    }
    if (rc == 0)
        printf("it returned: '%s'\n", (const char *)value);
    weft_loop_free(loop);
    return rc < 0;
}
