/* The lecture's pre-3.5 variant of the chain: generators delegating to each
 * other with `yield from`, driven by a task (asyncio wrapped such a
 * generator in a Task; here a task steps the outer generator).
 *
 *   @asyncio.coroutine
 *   def outer():
 *       print('in outer')
 *       print('waiting for result1')
 *       result1 = yield from phase1()
 *       print('waiting for result2')
 *       result2 = yield from phase2(result1)
 *       return (result1, result2)
 */
#include <weft.h>

#include <errno.h>
#include <stdio.h>

typedef struct {
    const char *result1;
    char result2[64];
} results;

static void *phase1(weft_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    printf("in phase1\n");
    return "result1";
}

static void *phase2(weft_gen *g, void *arg)
{
    (void)g;
    results *r = arg;
    printf("in phase2\n");
    snprintf(r->result2, sizeof r->result2, "result2 derived from %s", r->result1);
    return r->result2;
}

/* `yield from fn(arg)`: run a sub-generator to its return value. */
static int yield_from(weft_gen *g, weft_gen_fn fn, void *arg, void **result)
{
    weft_gen sub;
    int rc = weft_gen_init(&sub, NULL, fn, arg);
    if (rc < 0)
        return rc;
    rc = weft_gen_yield_from(g, &sub, result);
    weft_gen_destroy(&sub);
    return rc;
}

static void *outer(weft_gen *g, void *arg)
{
    results *r = arg;
    void *v;
    printf("in outer\n");
    printf("waiting for result1\n");
    if (yield_from(g, phase1, r, &v) < 0)
        return NULL;
    r->result1 = v;
    printf("waiting for result2\n");
    if (yield_from(g, phase2, r, &v) < 0)
        return NULL;
    return r;
}

typedef struct {
    weft_loop *loop;
    results r;
} job;

/* The task that drives the generator: each value it yields would be
 * something to wait for; between steps the loop runs other work. */
static int drive(void *arg, intptr_t *result)
{
    job *j = arg;
    weft_gen gen;
    int rc = weft_gen_init(&gen, NULL, outer, &j->r);
    if (rc < 0)
        return rc;
    void *v = NULL;
    while ((rc = weft_gen_next(&gen, &v)) == 0)
        weft_yield(j->loop);
    weft_gen_destroy(&gen);
    *result = (intptr_t)v;
    return rc == WEFT_CORO_DONE && v ? 0 : -EPROTO;
}

int main(void)
{
    weft_loop *loop;
    if (weft_loop_new(NULL, &loop) < 0)
        return 1;
    job j = {.loop = loop};
    weft_future *task;
    intptr_t value = 0;
    int rc = weft_task_spawn(loop, drive, &j, &task);
    if (rc == 0) {
        rc = weft_run_until_complete(loop, task, &value);
        weft_future_unref(task);
    }
    if (rc == 0) {
        results *r = (results *)value;
        printf("return value: ('%s', '%s')\n", r->result1, r->result2);
    }
    weft_loop_free(loop);
    return rc < 0;
}
