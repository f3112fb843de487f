/* bench/tasks: what the coroutine path costs next to plain callbacks doing
 * the same work, in one process, medians of several runs (wall clock; the
 * loop never sleeps here).
 *
 *   spawn      spawn + finish of an empty task   vs  call_soon + dispatch of a callback
 *   await      await of a ready future (no suspension)
 *   hop        two callbacks re-scheduling each other (the loop's floor)
 *   pingpong   two tasks handing a future back and forth (suspend + wake per
 *              hop)                               vs  the same hand-over with done-callbacks
 *   queue      two tasks bouncing a value through two Queues of capacity 1
 *              (per hand-over)                    vs  the same callback hop
 *   sockpp     two tasks echoing 64-byte messages over a socketpair with
 *              weft_await_op, 1 or 8 in flight (per message; n / 10 messages)
 *
 *   tasks [--n N] [--reps R] [--json]
 *   tasks --count [--n N] [--depth 1|8]   no timing: loop iterations (backend
 *       waits) per sockpp message, for strace -c and the await fast path
 */
#include "bench_util.h"
#include "weft.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static weft_loop *new_loop(void)
{
    weft_loop *loop;
    int rc = weft_loop_new(NULL, &loop);
    if (rc) {
        fprintf(stderr, "weft_loop_new: %s\n", weft_strerror(rc));
        exit(1);
    }
    return loop;
}

/* --- spawn: empty tasks vs plain callbacks --- */

static int empty_task(void *arg, intptr_t *result)
{
    (void)arg;
    *result = 0;
    return 0;
}

static uint64_t run_spawn_tasks(int n)
{
    weft_loop *loop = new_loop();
    /* Warm the free lists and the stack pool, as a long-running server is. */
    for (int i = 0; i < 64; i++)
        weft_task_spawn(loop, empty_task, NULL, NULL);
    weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    uint64_t t0 = bench_wall_ns();
    for (int done = 0; done < n; done += 64) {
        for (int i = 0; i < 64; i++)
            weft_task_spawn(loop, empty_task, NULL, NULL);
        weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    }
    uint64_t t = bench_wall_ns() - t0;
    weft_loop_free(loop);
    return t;
}

static void empty_cb(void *arg)
{
    (void)arg;
}

static uint64_t run_spawn_callbacks(int n)
{
    weft_loop *loop = new_loop();
    weft_handle h[64] = {0};
    uint64_t t0 = bench_wall_ns();
    for (int done = 0; done < n; done += 64) {
        for (int i = 0; i < 64; i++)
            weft_call_soon(loop, &h[i], empty_cb, NULL);
        weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    }
    uint64_t t = bench_wall_ns() - t0;
    weft_loop_free(loop);
    return t;
}

/* --- await of a ready future --- */

typedef struct {
    weft_loop *loop;
    weft_future *f;
    int n;
    uint64_t ns;
} await_ctx;

static int await_ready_task(void *arg, intptr_t *result)
{
    await_ctx *c = arg;
    intptr_t v, sum = 0;
    uint64_t t0 = bench_wall_ns();
    for (int i = 0; i < c->n; i++) {
        weft_await(c->f, &v);
        sum += v;
    }
    c->ns = bench_wall_ns() - t0;
    *result = sum;
    return 0;
}

static uint64_t run_await_ready(int n)
{
    weft_loop *loop = new_loop();
    await_ctx c = {.loop = loop, .n = n};
    weft_future_new(loop, &c.f);
    weft_future_set_result(c.f, 1);
    weft_future *t;
    weft_task_spawn(loop, await_ready_task, &c, &t);
    weft_run_until_complete(loop, t, NULL);
    weft_future_unref(t);
    weft_future_unref(c.f);
    weft_loop_free(loop);
    return c.ns;
}

/* --- ping-pong: one hop = one side wakes the other and waits --- */

typedef struct {
    weft_loop *loop;
    weft_future *mine, *theirs; /* replaced after every hop */
    int hops;
    struct pp_pair *pair;
} pp_side;

typedef struct pp_pair {
    pp_side a, b;
    int remaining;
} pp_pair;

static int pp_task(void *arg, intptr_t *result)
{
    pp_side *s = arg;
    pp_side *other = s == &s->pair->a ? &s->pair->b : &s->pair->a;
    (void)result;
    while (s->pair->remaining > 0) {
        s->pair->remaining--;
        /* Hand the ball over: finish the other side's future, wait for mine. */
        weft_future *next;
        weft_future_new(s->loop, &next);
        weft_future *wake = other->mine;
        other->mine = next;
        weft_future_set_result(wake, 0);
        weft_future_unref(wake);
        if (weft_await(s->mine, NULL) < 0)
            break;
    }
    /* Release the other side for good. */
    weft_future_set_result(other->mine, 0);
    return 0;
}

static uint64_t run_pingpong_tasks(int n)
{
    weft_loop *loop = new_loop();
    pp_pair p = {.remaining = n};
    p.a = (pp_side){.loop = loop, .pair = &p};
    p.b = (pp_side){.loop = loop, .pair = &p};
    weft_future_new(loop, &p.a.mine);
    weft_future_new(loop, &p.b.mine);
    weft_future *ta, *tb;
    uint64_t t0 = bench_wall_ns();
    weft_task_spawn(loop, pp_task, &p.a, &ta);
    weft_task_spawn(loop, pp_task, &p.b, &tb);
    weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    uint64_t t = bench_wall_ns() - t0;
    weft_future_unref(ta);
    weft_future_unref(tb);
    weft_future_unref(p.a.mine);
    weft_future_unref(p.b.mine);
    weft_loop_free(loop);
    return t;
}

typedef struct {
    weft_loop *loop;
    weft_handle h[2];
    int remaining;
} cb_pp;

static void cb_hop_b(void *arg);

static void cb_hop_a(void *arg)
{
    cb_pp *p = arg;
    if (p->remaining-- > 0)
        weft_call_soon(p->loop, &p->h[1], cb_hop_b, p);
}

static void cb_hop_b(void *arg)
{
    cb_pp *p = arg;
    if (p->remaining-- > 0)
        weft_call_soon(p->loop, &p->h[0], cb_hop_a, p);
}

static uint64_t run_pingpong_callbacks(int n)
{
    weft_loop *loop = new_loop();
    cb_pp p = {.loop = loop, .remaining = n};
    uint64_t t0 = bench_wall_ns();
    weft_call_soon(loop, &p.h[0], cb_hop_a, &p);
    weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    uint64_t t = bench_wall_ns() - t0;
    weft_loop_free(loop);
    return t;
}

/* The same hand-over in callback style: each side finishes a future whose
 * done-callback is the other side. */
typedef struct {
    weft_loop *loop;
    int remaining;
} fcb_pp;

static void fcb_hop(weft_future *f, void *arg)
{
    fcb_pp *p = arg;
    (void)f;
    if (p->remaining-- <= 0)
        return;
    weft_future *next;
    weft_future_new(p->loop, &next);
    weft_future_add_done_callback(next, fcb_hop, p);
    weft_future_set_result(next, 0);
    weft_future_unref(next);
}

static uint64_t run_pingpong_future_callbacks(int n)
{
    weft_loop *loop = new_loop();
    fcb_pp p = {.loop = loop, .remaining = n};
    uint64_t t0 = bench_wall_ns();
    fcb_hop(NULL, &p);
    weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    uint64_t t = bench_wall_ns() - t0;
    weft_loop_free(loop);
    return t;
}

/* --- queue ping-pong: two tasks, two Queues of capacity 1 --- */

typedef struct {
    weft_queue *in, *out;
    int n;
} q_side;

static int q_task(void *arg, intptr_t *result)
{
    q_side *s = arg;
    intptr_t v = 0;
    (void)result;
    for (int i = 0; i < s->n; i++) {
        if (s->out && weft_queue_put(s->out, v + 1) < 0)
            return -EIO;
        if (weft_queue_get(s->in, &v) < 0)
            return -EIO;
    }
    return 0;
}

static int q_echo_task(void *arg, intptr_t *result)
{
    q_side *s = arg;
    intptr_t v;
    (void)result;
    for (int i = 0; i < s->n; i++) {
        if (weft_queue_get(s->in, &v) < 0 || weft_queue_put(s->out, v) < 0)
            return -EIO;
    }
    return 0;
}

/* n messages, each a put and a get on each side: 2n hand-overs. */
static uint64_t run_queue_pingpong(int n)
{
    weft_loop *loop = new_loop();
    weft_queue ab, ba;
    weft_queue_init(&ab, loop, 1);
    weft_queue_init(&ba, loop, 1);
    q_side a = {.in = &ba, .out = &ab, .n = n / 2}, b = {.in = &ab, .out = &ba, .n = n / 2};
    uint64_t t0 = bench_wall_ns();
    weft_task_spawn(loop, q_task, &a, NULL);
    weft_task_spawn(loop, q_echo_task, &b, NULL);
    weft_loop_run(loop, WEFT_RUN_UNTIL_IDLE);
    uint64_t t = bench_wall_ns() - t0;
    weft_queue_destroy(&ab);
    weft_queue_destroy(&ba);
    weft_loop_free(loop);
    return t;
}

/* --- sockpp: a client task and an echo task over a socketpair --- */

enum { SP_MSG = 64 };

typedef struct {
    weft_loop *loop;
    int fd;
    int n, depth; /* messages in all, in flight at once */
} sp_side;

/* Send or receive exactly len bytes; 0 or a negative error (-EPIPE at EOF). */
static int sp_full(weft_loop *loop, int fd, char *buf, size_t len, int send)
{
    for (size_t done = 0; done < len;) {
        weft_op op;
        if (send)
            weft_op_prep_send(&op, fd, buf + done, len - done, 0, NULL, NULL);
        else
            weft_op_prep_recv(&op, fd, buf + done, len - done, 0, NULL, NULL);
        int64_t r = weft_await_op(loop, &op);
        if (r <= 0)
            return r < 0 ? (int)r : -EPIPE;
        done += (size_t)r;
    }
    return 0;
}

static int sp_client(void *arg, intptr_t *result)
{
    sp_side *s = arg;
    char buf[SP_MSG] = {0};
    (void)result;
    for (int done = 0; done < s->n; done += s->depth) {
        for (int k = 0; k < s->depth; k++)
            if (sp_full(s->loop, s->fd, buf, sizeof buf, 1))
                return -EIO;
        for (int k = 0; k < s->depth; k++)
            if (sp_full(s->loop, s->fd, buf, sizeof buf, 0))
                return -EIO;
    }
    shutdown(s->fd, SHUT_WR);
    return 0;
}

static int sp_echo(void *arg, intptr_t *result)
{
    sp_side *s = arg;
    char buf[SP_MSG];
    (void)result;
    while (sp_full(s->loop, s->fd, buf, sizeof buf, 0) == 0)
        if (sp_full(s->loop, s->fd, buf, sizeof buf, 1))
            return -EIO;
    return 0;
}

/* n messages, depth in flight; *iters gets the loop iterations it took. */
static uint64_t run_sockpp(int n, int depth, uint64_t *iters)
{
    weft_loop *loop = new_loop();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) {
        perror("socketpair");
        exit(1);
    }
    sp_side c = {loop, sv[0], n - n % depth, depth}, e = {loop, sv[1], 0, depth};
    weft_future *tc, *te;
    uint64_t t0 = bench_wall_ns(), it = 0;
    weft_task_spawn(loop, sp_client, &c, &tc);
    weft_task_spawn(loop, sp_echo, &e, &te);
    while (weft_future_state(tc) == WEFT_FUTURE_PENDING ||
           weft_future_state(te) == WEFT_FUTURE_PENDING) {
        if (weft_loop_run(loop, WEFT_RUN_ONCE) < 0)
            break;
        it++;
    }
    uint64_t t = bench_wall_ns() - t0;
    if (weft_future_result(tc, NULL) || weft_future_result(te, NULL)) {
        fprintf(stderr, "sockpp: a task failed\n");
        exit(1);
    }
    weft_future_unref(tc);
    weft_future_unref(te);
    close(sv[0]);
    close(sv[1]);
    weft_loop_free(loop);
    if (iters)
        *iters = it;
    return t;
}

/* The timed rows: n / 10 messages (each is two system calls a side), the
 * time scaled to n so ns/op is per message. */
static uint64_t run_sockpp_1(int n)
{
    return run_sockpp(n / 10, 1, NULL) * 10;
}

static uint64_t run_sockpp_8(int n)
{
    return run_sockpp(n / 10, 8, NULL) * 10;
}

/* --count: loop iterations per message, no clock involved. */
static int count_sockpp(int n, int only_depth)
{
    weft_loop *probe = new_loop();
    printf("sockpp: %d messages of %d bytes, backend %s\n", n, SP_MSG,
           weft_loop_backend_name(probe));
    weft_loop_free(probe);
    int depths[] = {1, 8};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        if (only_depth && depths[i] != only_depth)
            continue;
        uint64_t it;
        run_sockpp(n, depths[i], &it);
        printf("  %d in flight: %llu loop iterations, %.3f per message\n", depths[i],
               (unsigned long long)it, (double)it / (n - n % depths[i]));
    }
    return 0;
}

/* --- driver --- */

enum { MAX_REPS = 31 };

typedef struct {
    const char *workload, *path;
    uint64_t (*run)(int n);
    const char *baseline; /* the callback path it is compared with */
    double ns;
} row;

int main(int argc, char **argv)
{
    int n = (int)bench_opt(argc, argv, "--n", 1000000);
    int reps = (int)bench_opt(argc, argv, "--reps", 5);
    int json = bench_has_flag(argc, argv, "--json");
    if (bench_has_flag(argc, argv, "--count"))
        return count_sockpp(n, (int)bench_opt(argc, argv, "--depth", 0));
    if (n < 64 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "usage: tasks [--n N>=64] [--reps 1..%d] [--json]\n", MAX_REPS);
        return 2;
    }
    row rows[] = {
        {"spawn", "callback: call_soon + dispatch", run_spawn_callbacks, NULL, 0},
        {"spawn", "task: spawn + finish", run_spawn_tasks, "spawn", 0},
        {"await", "task: await a ready future", run_await_ready, NULL, 0},
        {"hop", "callback: bare call_soon hop", run_pingpong_callbacks, NULL, 0},
        {"pingpong", "callback: future + done-callback", run_pingpong_future_callbacks, NULL, 0},
        {"pingpong", "task: future + await (suspend+wake)", run_pingpong_tasks, "pingpong", 0},
        {"queue", "task: Queue(1) hand-over", run_queue_pingpong, "hop", 0},
        {"sockpp", "task: socketpair echo, 1 in flight", run_sockpp_1, NULL, 0},
        {"sockpp", "task: socketpair echo, 8 in flight", run_sockpp_8, NULL, 0},
    };
    int nrows = (int)(sizeof rows / sizeof rows[0]);
    uint64_t samples[sizeof rows / sizeof rows[0]][MAX_REPS];
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < nrows; i++)
            samples[i][r] = rows[i].run(n);
    weft_loop *probe = new_loop();
    const char *backend = weft_loop_backend_name(probe);
    if (!json)
        printf("tasks: %d operations per run, median of %d runs, backend %s\n\n%-9s %-36s "
               "%9s %14s\n",
               n, reps, backend, "workload", "path", "ns/op", "vs callback");
    for (int i = 0; i < nrows; i++) {
        rows[i].ns = (double)bench_median(samples[i], reps) / n;
        double base = 0;
        for (int j = 0; j < i; j++)
            if (rows[i].baseline && strcmp(rows[j].workload, rows[i].baseline) == 0 &&
                strncmp(rows[j].path, "callback", 8) == 0)
                base = rows[j].ns;
        double ratio = base > 0 ? rows[i].ns / base : 0;
        if (json)
            printf("{\"bench\":\"tasks\",\"workload\":\"%s\",\"path\":\"%s\",\"backend\":\"%s\","
                   "\"n\":%d,\"reps\":%d,\"ns_per_op\":%.2f,\"ratio_to_callback\":%.3f}\n",
                   rows[i].workload, rows[i].path, backend, n, reps, rows[i].ns, ratio);
        else if (ratio > 0)
            printf("%-9s %-36s %9.1f %13.2fx\n", rows[i].workload, rows[i].path, rows[i].ns, ratio);
        else
            printf("%-9s %-36s %9.1f %14s\n", rows[i].workload, rows[i].path, rows[i].ns, "");
    }
    weft_loop_free(probe);
    return 0;
}
