/* gather (asyncio_gather): run two phases concurrently and collect their
 * results in the order they were given, whatever order they finish in.
 *
 *   async def phase1():
 *       print('in phase1')
 *       await asyncio.sleep(2)
 *       print('done with phase1')
 *       return 'phase1 result'
 *
 *   async def phase2():
 *       print('in phase2')
 *       await asyncio.sleep(1)
 *       print('done with phase2')
 *       return 'phase2 result'
 *
 *   async def main():
 *       print('starting main')
 *       print('waiting for phases to complete')
 *       results = await asyncio.gather(phase1(), phase2())
 *       print('results: {!r}'.format(results))
 *
 * (the sleeps are 20 ms and 10 ms here)
 */
#include <weft.h>

#include <stdio.h>

#define MS 1000000LL

static weft_loop *loop;

static int phase(void *arg, intptr_t *result)
{
    int n = (int)(intptr_t)arg;
    static const char *names[] = {"", "phase1 result", "phase2 result"};
    printf("in phase%d\n", n);
    int rc = weft_sleep(loop, n == 1 ? 20 * MS : 10 * MS);
    if (rc < 0)
        return rc;
    printf("done with phase%d\n", n);
    *result = (intptr_t)names[n];
    return 0;
}

static int run(void *arg, intptr_t *result)
{
    (void)arg;
    (void)result;
    weft_future *phases[2], *all;
    printf("starting main\n");
    printf("waiting for phases to complete\n");
    int rc = weft_task_spawn(loop, phase, (void *)1, &phases[0]);
    if (rc == 0 && (rc = weft_task_spawn(loop, phase, (void *)2, &phases[1])) != 0)
        weft_future_unref(phases[0]);
    if (rc < 0)
        return rc;
    rc = weft_gather(loop, phases, 2, 0, &all);
    if (rc == 0) {
        rc = weft_await(all, NULL);
        weft_future_unref(all);
    }
    intptr_t r[2];
    if (rc == 0 && (rc = weft_gather_results(phases, 2, r, NULL)) == 0)
        printf("results: ['%s', '%s']\n", (const char *)r[0], (const char *)r[1]);
    weft_future_unref(phases[0]);
    weft_future_unref(phases[1]);
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
