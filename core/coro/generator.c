/* Generators (the lecture's first section) over coroutines: next, send,
 * close, yield and yield-from, with Python's rules:
 *
 * - the first next() runs the body up to its first yield; a value can be
 *   sent only after that;
 * - close() makes the pending yield return WEFT_ECLOSED (GeneratorExit); a
 *   body that yields again instead makes close() fail with -EPROTO;
 * - a finished or closed generator refuses next/send with WEFT_ECLOSED. */
#include "coro_internal.h"

#include <errno.h>
#include <stddef.h>

static void *gen_entry(weft_coro *co, void *arg)
{
    (void)co;
    weft_gen *g = arg; /* the first resume passes the generator */
    return g->fn_(g, g->arg_);
}

static void gen_setup(weft_gen *g, weft_gen_fn fn, void *arg)
{
    g->fn_ = fn;
    g->arg_ = arg;
    g->closing_ = 0;
    g->closed_ = 0;
}

int weft_gen_init(weft_gen *gen, weft_stack_pool *pool, weft_gen_fn fn, void *arg)
{
    if (!gen || !fn)
        return -EINVAL;
    int rc = weft_coro_init(&gen->co_, pool, gen_entry);
    if (rc == 0)
        gen_setup(gen, fn, arg);
    return rc;
}

int weft_gen_create(weft_stack_pool *pool, weft_gen_fn fn, void *arg, weft_gen **out)
{
    if (!out || !fn)
        return -EINVAL;
    void *obj;
    int rc = weft__coro_place(pool, sizeof(weft_gen), offsetof(weft_gen, co_), gen_entry, &obj);
    if (rc < 0)
        return rc;
    gen_setup(obj, fn, arg);
    *out = obj;
    return 0;
}

int weft_gen_destroy(weft_gen *gen)
{
    if (!gen)
        return -EINVAL;
    return weft_coro_destroy(&gen->co_);
}

int weft_gen_send(weft_gen *gen, void *value, void **out)
{
    if (!gen)
        return -EINVAL;
    int st = gen->co_.state_;
    if (st == WEFT_CORO_RUNNING) /* or NORMAL (coro.c: "states") */
        return -EBUSY;
    if (gen->closed_ || st == WEFT_CORO_DEAD)
        return WEFT_ECLOSED;
    if (st == WEFT_CORO_CREATED) {
        if (value)
            return -EINVAL; /* "can't send non-None value to a just-started generator" */
        value = gen;
    }
    void *v = NULL;
    int rc = weft_coro_resume(&gen->co_, value, &v);
    if (rc < 0)
        return rc;
    if (rc == WEFT_CORO_DONE)
        gen->closed_ = 1;
    if (out)
        *out = v;
    return rc;
}

int weft_gen_next(weft_gen *gen, void **out)
{
    return weft_gen_send(gen, NULL, out);
}

int weft_gen_close(weft_gen *gen)
{
    if (!gen)
        return -EINVAL;
    int st = gen->co_.state_;
    if (st == WEFT_CORO_RUNNING) /* or NORMAL (coro.c: "states") */
        return -EBUSY;
    gen->closed_ = 1;
    if (st != WEFT_CORO_SUSPENDED)
        return 0; /* not started, or finished: nothing to run */
    gen->closing_ = 1;
    int rc = weft_coro_resume(&gen->co_, NULL, NULL);
    if (rc == WEFT_CORO_DONE)
        return 0;
    return rc < 0 ? rc : -EPROTO; /* it yielded instead of returning */
}

int weft_gen_yield(weft_gen *gen, void *value, void **sent)
{
    if (!gen)
        return -EINVAL;
    /* While closing, this switch goes back to weft_gen_close, which reports
     * the yield as an error; the value is dropped. */
    void *in = NULL;
    int rc = weft_coro_yield(&gen->co_, value, &in);
    if (rc < 0)
        return rc;
    if (gen->closing_)
        return WEFT_ECLOSED;
    if (sent)
        *sent = in;
    return 0;
}

int weft_gen_yield_from(weft_gen *gen, weft_gen *sub, void **result)
{
    if (!gen || !sub || gen == sub || weft_coro_current() != &gen->co_)
        return -EINVAL;
    void *v = NULL;
    int rc = weft_gen_next(sub, &v);
    for (;;) {
        if (rc < 0)
            return rc;
        if (rc == WEFT_CORO_DONE) {
            if (result)
                *result = v;
            return 0;
        }
        void *sent = NULL;
        rc = weft_gen_yield(gen, v, &sent);
        if (rc == WEFT_ECLOSED) {
            int crc = weft_gen_close(sub);
            return crc < 0 ? crc : WEFT_ECLOSED;
        }
        if (rc < 0)
            return rc;
        rc = weft_gen_send(sub, sent, &v);
    }
}

int weft_gen_state(const weft_gen *gen)
{
    if (!gen)
        return -EINVAL;
    int st = weft_coro_state(&gen->co_);
    if (gen->closed_ && (st == WEFT_CORO_CREATED || st == WEFT_CORO_DEAD))
        return WEFT_CORO_DEAD;
    return st;
}
