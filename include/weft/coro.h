/* Stackful coroutines, their stacks, and generators built on them.
 *
 * A coroutine runs a function on its own stack. weft_coro_resume() switches
 * into it; weft_coro_yield() switches back to whoever resumed it. A value
 * passes each way on every switch. The switch is a few instructions of
 * assembly (core/coro/arch/) that save only the callee-saved registers of the ABI;
 * resume and yield never allocate.
 *
 * Stacks come from a weft_stack_pool: mmap'ed (VirtualAlloc on Windows) with
 * a no-access guard page below, recycled on destroy. Each thread has a
 * default pool (pass NULL); a loop or a program that wants its own sizes or
 * limits makes one with weft_stack_pool_new(). Running past the end of a
 * stack hits the guard page, and weft prints which coroutine overflowed on
 * stderr before the process dies: of SIGSEGV on POSIX; on Windows of
 * EXCEPTION_STACK_OVERFLOW, raised as a fail-fast exception (no handler
 * runs; Windows Error Reporting sees it). On Windows the guard is three
 * pages: two PAGE_GUARD pages, which the system lends the exception
 * dispatcher on overflow, above one no-access page.
 *
 * Floating point: by default the FP environment (rounding mode, exception
 * masks: MXCSR and the x87 control word, FPCR on AArch64) belongs to the
 * thread, not the coroutine, so a coroutine that changes it must restore it
 * before it yields. Building with -Dfp_control=true carries it per
 * coroutine instead, at about 3 ns per switch (bench/RESULTS.md).
 *
 * Threads: a coroutine, a pool and a generator belong to one thread. A
 * coroutine may be resumed only on the thread that created it.
 *
 * The coroutine layer knows nothing of the loop; tasks are built on it.
 */
#ifndef WEFT_CORO_H
#define WEFT_CORO_H
#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default usable stack size of a pool: 64 KiB (plus the guard).
 * Enough for ordinary C with buffers of a few KiB on the stack; code that
 * calls getaddrinfo, printf of long doubles, or deep recursion wants more. */
#define WEFT_STACK_DEFAULT_SIZE (64 * 1024)
/* The default number of free stacks a pool keeps for reuse. */
#define WEFT_STACK_DEFAULT_CACHE 64
/* The smallest stack a pool accepts. */
#define WEFT_STACK_MIN_SIZE (16 * 1024)

typedef struct weft_coro weft_coro;
typedef struct weft_stack_pool weft_stack_pool;

/* Options of a stack pool; zero fields take the defaults. */
typedef struct weft_stack_pool_options {
    size_t stack_size; /* usable bytes per stack, rounded up to pages */
    size_t max_cached; /* free stacks kept for reuse; more are unmapped */
} weft_stack_pool_options;

/* A coroutine's body. `self` is the coroutine; `arg` is the value passed to
 * the first weft_coro_resume(). Its return value goes to the resume that sees
 * it finish. Returning is how a coroutine ends. */
typedef void *(*weft_coro_fn)(weft_coro *self, void *arg);

/* Coroutine states (weft_coro_state()). */
enum weft_coro_state {
    WEFT_CORO_CREATED = 0,   /* made, never resumed */
    WEFT_CORO_SUSPENDED = 1, /* stopped in weft_coro_yield() */
    WEFT_CORO_RUNNING = 2,   /* executing now on this thread */
    WEFT_CORO_NORMAL = 3,    /* resumed another coroutine and waits for it */
    WEFT_CORO_DEAD = 4,      /* its function returned */
};

/* Returned by weft_coro_resume() and weft_gen_next/send() when the body
 * returned (rather than yielded); *out holds its return value. */
#define WEFT_CORO_DONE 1

/* A stack handed out by a pool. Fields are private. */
typedef struct weft__stack {
    /* Private to weft. */
    void *lo_;              /* lowest usable byte, just above the guard */
    size_t size_;           /* usable bytes */
    weft_stack_pool *pool_; /* owner */
} weft__stack;

/* A coroutine. Embed it in your own struct (weft_coro_init) or let a pool
 * place it at the top of its stack (weft_coro_create). Fields are private;
 * the struct has the same layout in every build of weft (sanitizer builds
 * included). */
struct weft_coro {
    /* Private to weft. */
    void *sp_;           /* saved stack pointer while not running */
    void *ret_sp_;       /* the resumer's saved stack pointer while running */
    weft_coro *resumer_; /* who resumed it; NULL: the thread's own stack */
    void **out_;         /* where the resumer wants the yielded value */
    void **in_;          /* where the yield wants the resumed value */
    weft_coro_fn fn_;
    int state_; /* enum weft_coro_state */
    unsigned flags_;
    const char *name_; /* for messages; not owned */
    void *user_;       /* weft_coro_set_user() */
    weft__stack stack_;
    /* tool support: used only in ASan / TSan builds */
    void *asan_fake_;
    const void *asan_from_lo_;
    size_t asan_from_size_;
    void *tsan_fiber_;
    void *tsan_from_;
    void *tsan_mask_; /* the signal mask the side that switched saved (coro.c) */
};

/* --- stack pools --- */

/* Makes a pool of coroutine stacks of opt->stack_size usable bytes (NULL or
 * zero: WEFT_STACK_DEFAULT_SIZE) keeping at most opt->max_cached free stacks
 * (zero: WEFT_STACK_DEFAULT_CACHE). The caller owns *out and frees it with
 * weft_stack_pool_free() on the same thread. Stacks are mapped lazily, on
 * first use. Errors: -EINVAL (out NULL, size below WEFT_STACK_MIN_SIZE or
 * absurdly large), -ENOMEM. */
int weft_stack_pool_new(const weft_stack_pool_options *opt, weft_stack_pool **out);

/* Unmaps the cached stacks and frees the pool. Every coroutine that took a
 * stack from it must be destroyed first. Errors: -EINVAL (NULL or the
 * thread's default pool), -EBUSY (stacks still in use; nothing is freed). */
int weft_stack_pool_free(weft_stack_pool *pool);

/* The calling thread's default pool (default size and cache), used where a
 * pool argument is NULL. Owned by weft: its cached stacks are unmapped when
 * the thread exits, so destroy the thread's coroutines before it exits.
 * Never NULL. */
weft_stack_pool *weft_stack_pool_default(void);

/* The usable size in bytes of the stacks pool hands out (NULL: the
 * thread's default pool). */
size_t weft_stack_pool_stack_size(const weft_stack_pool *pool);

/* --- coroutines --- */

/* Prepares the caller-owned *co to run fn on a stack from pool (NULL: the
 * thread's default pool). Nothing runs until the first weft_coro_resume().
 * Release with weft_coro_destroy(). Errors: -EINVAL (co or fn NULL),
 * -ENOMEM (no stack could be mapped). */
int weft_coro_init(weft_coro *co, weft_stack_pool *pool, weft_coro_fn fn);

/* Like weft_coro_init(), but the weft_coro lives at the top of its own
 * stack: no other allocation. *out is valid until weft_coro_destroy().
 * Errors: -EINVAL (out or fn NULL), -ENOMEM. */
int weft_coro_create(weft_stack_pool *pool, weft_coro_fn fn, weft_coro **out);

/* Gives the stack back to its pool (and, for weft_coro_create, the struct
 * with it). A coroutine that is still suspended is abandoned: its frames are
 * dropped without running any cleanup, so whatever it holds leaks. Errors:
 * -EINVAL (NULL), -EBUSY (it is running or waiting on one it resumed: a
 * coroutine cannot free the stack it is on). */
int weft_coro_destroy(weft_coro *co);

/* Switches into co, passing value: the first resume passes it as fn's arg,
 * later ones as the result of the weft_coro_yield() where co stopped. Returns
 * when co yields (returns 0, *out = the yielded value) or returns (returns
 * WEFT_CORO_DONE, *out = fn's return value). out may be NULL. Callable from
 * the thread's own stack or from inside another coroutine (nesting). Errors:
 * -EINVAL (co NULL), -EBUSY (co is running or waiting for one it resumed),
 * WEFT_ECLOSED (co is dead). */
int weft_coro_resume(weft_coro *co, void *value, void **out);

/* From inside self, switches back to whoever resumed it, handing it value;
 * returns 0 when self is resumed again, with *in (may be NULL) = the value
 * passed to that resume. Errors: -EINVAL (self NULL, or not the coroutine
 * running now). */
int weft_coro_yield(weft_coro *self, void *value, void **in);

/* The coroutine running on this thread, or NULL on the thread's own stack. */
weft_coro *weft_coro_current(void);

/* The state of co (enum weft_coro_state), or -EINVAL if co is NULL. */
int weft_coro_state(const weft_coro *co);

/* Names co in diagnostics such as the stack-overflow message. The string is
 * not copied: it must outlive co (a literal is typical). Returns 0 or
 * -EINVAL (co NULL). */
int weft_coro_set_name(weft_coro *co, const char *name);

/* Stores / returns one pointer of user data with co (NULL by default).
 * weft_coro_set_user returns 0 or -EINVAL (co NULL); weft_coro_user returns
 * NULL for a NULL co. */
int weft_coro_set_user(weft_coro *co, void *user);
void *weft_coro_user(const weft_coro *co);

/* --- generators (the lecture's first section) ---
 *
 * A generator is a coroutine that yields values to its consumer (next) and
 * takes values from it (send), like Python's:
 *
 *     static void *fib(weft_gen *g, void *arg) {
 *         long a = 0, b = 1;
 *         while (weft_gen_yield(g, &a, NULL) == 0) { long t = a + b; a = b; b = t; }
 *         return NULL;      // closed: clean up and return
 *     }
 *
 * weft_gen_close() makes the pending weft_gen_yield() return WEFT_ECLOSED so
 * the body can clean up and return; yielding again after that is an error.
 */

typedef struct weft_gen weft_gen;

/* A generator's body: gen is the generator, arg the one given at creation.
 * The return value is handed to the next/send that sees it finish. */
typedef void *(*weft_gen_fn)(weft_gen *gen, void *arg);

/* A generator; embed it (weft_gen_init) or let a pool hold it
 * (weft_gen_create). Fields are private. */
struct weft_gen {
    /* Private to weft. */
    weft_coro co_;
    weft_gen_fn fn_;
    void *arg_;
    int closing_; /* close() is delivering WEFT_ECLOSED */
    int closed_;  /* finished or closed: next/send refuse */
};

/* Prepares the caller-owned *gen to run fn(gen, arg) on a stack from pool
 * (NULL: the default pool). The body first runs at the first next/send.
 * Release with weft_gen_destroy(). Errors: -EINVAL (gen or fn NULL),
 * -ENOMEM. */
int weft_gen_init(weft_gen *gen, weft_stack_pool *pool, weft_gen_fn fn, void *arg);

/* Like weft_gen_init(), with the weft_gen placed at the top of its own stack
 * (no other allocation). Errors: -EINVAL (out or fn NULL), -ENOMEM. */
int weft_gen_create(weft_stack_pool *pool, weft_gen_fn fn, void *arg, weft_gen **out);

/* Releases the generator and its stack. A generator suspended at a yield is
 * abandoned without cleanup: call weft_gen_close() first if its body must
 * clean up. Errors: -EINVAL (NULL), -EBUSY (it is executing). */
int weft_gen_destroy(weft_gen *gen);

/* Runs the generator to its next yield: returns 0 with *out (may be NULL) =
 * the yielded value, or WEFT_CORO_DONE with *out = the body's return value
 * (Python's StopIteration). Same as weft_gen_send(gen, NULL, out). Errors:
 * -EINVAL (gen NULL), -EBUSY (it is executing: a generator cannot advance
 * itself), WEFT_ECLOSED (already finished or closed). */
int weft_gen_next(weft_gen *gen, void **out);

/* Resumes the generator with value as the result of its pending yield (the
 * lecture's `line = (yield)`), then like weft_gen_next(). A generator that
 * has not started yet takes only NULL (start it with weft_gen_next first),
 * as in Python. Errors: as weft_gen_next, plus -EINVAL (non-NULL value to a
 * generator that has not started). */
int weft_gen_send(weft_gen *gen, void *value, void **out);

/* Closes the generator. Not started, finished or closed: just marks it
 * closed (returns 0). Suspended: resumes it with WEFT_ECLOSED as the result
 * of its pending yield, and returns 0 once the body returns. If the body
 * yields again instead, it stays suspended (abandon it with
 * weft_gen_destroy, or close again) and close returns -EPROTO (Python's
 * "generator ignored GeneratorExit"). Errors: -EINVAL (NULL), -EBUSY (it is
 * executing), -EPROTO. */
int weft_gen_close(weft_gen *gen);

/* From the body of gen: yields value to the consumer and waits. Returns 0
 * when resumed by next/send, with *sent (may be NULL) = the value sent (NULL
 * for next), or WEFT_ECLOSED when the generator is being closed: clean up
 * and return from the body. Errors: -EINVAL (gen NULL, or gen is not the
 * coroutine running now). */
int weft_gen_yield(weft_gen *gen, void *value, void **sent);

/* Python's `result = yield from sub`, from the body of gen: runs sub to
 * completion, passing each value it yields out to gen's consumer and each
 * value the consumer sends into sub. Returns 0 with *result (may be NULL) =
 * sub's return value, or WEFT_ECLOSED if gen was closed meanwhile (sub is
 * closed first, then gen's body should clean up and return). sub stays owned
 * by the caller. Errors: -EINVAL (gen or sub NULL, the same, or gen not
 * running), any error of weft_gen_send on sub (WEFT_ECLOSED if sub was
 * already finished; -EPROTO if sub ignored a close). */
int weft_gen_yield_from(weft_gen *gen, weft_gen *sub, void **result);

/* The coroutine state of gen (enum weft_coro_state; WEFT_CORO_DEAD once it
 * finished or was closed), or -EINVAL if gen is NULL. */
int weft_gen_state(const weft_gen *gen);

#ifdef __cplusplus
}
#endif
#endif
