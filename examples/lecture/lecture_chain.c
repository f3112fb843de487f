/* The lecture's chain of coroutines: outer awaits phase1, then phase2 with
 * phase1's result.
 *
 *   async def outer():
 *       print('in outer')
 *       print('waiting for result1')
 *       result1 = await phase1()
 *       print('waiting for result2')
 *       result2 = await phase2(result1)
 *       return (result1, result2)
 */
#include <weft.h>

#include <stdio.h>

typedef struct {
    weft_loop *loop;
    const char *result1;
    char result2[64];
} chain;

static int phase1(void *arg, intptr_t *result)
{
    (void)arg;
    printf("in phase1\n");
    *result = (intptr_t) "result1";
    return 0;
}

static int phase2(void *arg, intptr_t *result)
{
    chain *c = arg;
    printf("in phase2\n");
    snprintf(c->result2, sizeof c->result2, "result2 derived from %s", c->result1);
    *result = (intptr_t)c->result2;
    return 0;
}

/* Start fn as a task and wait for its result: Python's `await fn()`. */
static int await_call(weft_loop *loop, weft_task_fn fn, void *arg, intptr_t *result)
{
    weft_future *task;
    int rc = weft_task_spawn(loop, fn, arg, &task);
    if (rc < 0)
        return rc;
    rc = weft_await(task, result);
    weft_future_unref(task);
    return rc;
}

static int outer(void *arg, intptr_t *result)
{
    chain *c = arg;
    intptr_t r1, r2;
    printf("in outer\n");
    printf("waiting for result1\n");
    int rc = await_call(c->loop, phase1, c, &r1);
    if (rc < 0)
        return rc;
    c->result1 = (const char *)r1;
    printf("waiting for result2\n");
    rc = await_call(c->loop, phase2, c, &r2);
    *result = (intptr_t)c;
    return rc;
}

int main(void)
{
    weft_loop *loop;
    if (weft_loop_new(NULL, &loop) < 0)
        return 1;
    chain c = {.loop = loop};
    weft_future *task;
    intptr_t value;
    int rc = weft_task_spawn(loop, outer, &c, &task);
    if (rc == 0) {
        rc = weft_run_until_complete(loop, task, &value);
        weft_future_unref(task);
    }
    if (rc == 0)
        printf("return value: ('%s', '%s')\n", c.result1, c.result2);
    weft_loop_free(loop);
    return rc < 0;
}
