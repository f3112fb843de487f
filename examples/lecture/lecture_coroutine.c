/* The lecture's first asyncio program: run_until_complete of a coroutine.
 *
 *   async def coroutine():
 *       print('in coroutine')
 *   ...
 *   coro = coroutine()          # this does NOT run the coroutine yet
 *   event_loop.run_until_complete(coro)
 */
#include <weft.h>

#include <stdio.h>

static int coroutine(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    printf("in coroutine\n");
    return 0;
}

int main(void)
{
    weft_loop *loop;
    int rc = weft_loop_new(NULL, &loop);
    if (rc < 0) {
        fprintf(stderr, "weft_loop_new: %s\n", weft_strerror(rc));
        return 1;
    }
    printf("starting coroutine\n");
    weft_future *coro;
    rc = weft_task_spawn(loop, coroutine, NULL, &coro); /* scheduled, not run */
    if (rc == 0) {
        printf("entering event loop\n");
        rc = weft_run_until_complete(loop, coro, NULL);
        weft_future_unref(coro);
    }
    printf("closing event loop\n");
    weft_loop_free(loop);
    return rc < 0;
}
