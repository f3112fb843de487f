/* asyncio's call_at example: prints the wall clock, the loop clock, and the
 * loop time at which each callback runs (in seconds, like loop.time()).
 *
 *   now = loop.time()
 *   loop.call_at(now + 0.2, callback, 1, loop)
 *   loop.call_at(now + 0.1, callback, 2, loop)
 *   loop.call_soon(callback, 3, loop)
 *   await asyncio.sleep(1)
 */
#include <weft.h>

#include <stdio.h>
#include <time.h>

#define MS 1000000LL

typedef struct {
    int n;
    weft_loop *loop;
    weft_handle handle;
} call;

static double seconds(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void callback(void *p)
{
    call *c = p;
    printf("callback %d invoked at %.9f\n", c->n, seconds(weft_loop_update_time(c->loop)));
}

static int main_task(void *arg, intptr_t *result)
{
    (void)result;
    weft_loop *loop = arg;
    static call c1 = {.n = 1}, c2 = {.n = 2}, c3 = {.n = 3};
    c1.loop = c2.loop = c3.loop = loop;
    uint64_t now = weft_loop_update_time(loop);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    printf("clock time: %.6f\n", (double)wall.tv_sec + wall.tv_nsec / 1e9);
    printf("loop  time: %.9f\n", seconds(now));
    printf("registering callbacks\n");
    weft_call_at(loop, &c1.handle, now + 200 * MS, callback, &c1);
    weft_call_at(loop, &c2.handle, now + 100 * MS, callback, &c2);
    weft_call_soon(loop, &c3.handle, callback, &c3);
    return weft_sleep(loop, 1000 * MS);
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
