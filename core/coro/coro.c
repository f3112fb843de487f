/* Stackful coroutines: creation, resume / yield, and the tool annotations
 * (ASan fibers, TSan fibers) around each switch. The switch itself is in
 * core/coro/arch/switch_*.S; this file builds the first frame each of those
 * expects (arch_init_frame) and holds the per-thread "current coroutine".
 *
 * Life of a coroutine: resume() switches to it with the value as fn's arg;
 * it runs fn (through coro_main() where tools or the ABI need a C entry);
 * yield() switches back; when fn returns, finish() marks it dead and
 * switches back for the last time, never to be entered again. Its stack
 * goes back to the pool in destroy(), on another stack, since a coroutine
 * cannot unmap the stack it runs on.
 *
 * States: state_ holds CREATED, SUSPENDED, RUNNING or DEAD, never NORMAL.
 * A coroutine that resumed another keeps RUNNING; weft_coro_state() tells
 * it from the running one by weft__current (only that one is current). So
 * a resume and a yield store only the state of the coroutine they switch
 * into or out of, not also its resumer's (two stores and tests fewer per
 * round trip), and RUNNING is what "busy" checks test. */
#include "coro_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#if WEFT__TSAN && !defined(_WIN32)
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#endif

WEFT__TLS weft_coro *weft__current;

static void coro_main(weft_coro *co, void *arg);
static inline void leave(weft_coro *self, void *value, int state);

/* --- first frame per ABI (must match core/coro/arch/switch_*.S) --- */

#if defined(__x86_64__) && WEFT_FP_CONTROL
/* The MXCSR control bits (status flags cleared) and the x87 control word
 * of the creating thread, in the slot layout of the switch. */
static uint64_t fp_control_word(void)
{
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return (uint64_t)(mxcsr & 0xffc0) | ((uint64_t)cw << 32);
}
#endif

static void *arch_init_frame(weft_coro *co, weft_coro_fn fn, char *top)
{
    uintptr_t *sp = (uintptr_t *)((uintptr_t)top & ~(uintptr_t)15);
#if defined(__x86_64__) && !defined(_WIN32)
    /* rbp, r13-r15 are left as the stack had them: the trampoline zeroes
     * rbp and the entry never reads the others (4 stores fewer per
     * create). */
    sp[-1] = 0;                                /* the trampoline's null return address */
    sp[-2] = (uintptr_t)weft__coro_trampoline; /* where the switch jumps */
    /* rbx: the C entry (see WEFT__DIRECT_ENTRY) */
    sp[-4] = WEFT__DIRECT_ENTRY ? (uintptr_t)fn : (uintptr_t)coro_main;
    sp[-5] = (uintptr_t)co; /* r12: its argument */
    sp -= 8;                /* and rbp, r13, r14, r15 */
#if WEFT_FP_CONTROL
    *--sp = fp_control_word();
#endif
#elif defined(__x86_64__) && defined(_WIN32)
    char *lo = co->stack_.lo_;
    (void)fn;
    /* A switch frame has its return address at 8 mod 16, so that the xmm
     * area below is 16-byte aligned; the trampoline starts at 0 mod 16, on
     * a null return address. */
    *--sp = 0;                                  /* padding */
    *--sp = 0;                                  /* the trampoline's null return address */
    *--sp = (uintptr_t)weft__coro_trampoline;   /* where the switch jumps */
    *--sp = 0;                                  /* rbp */
    *--sp = (uintptr_t)coro_main;               /* rbx: the C entry */
    *--sp = 0;                                  /* rdi */
    *--sp = 0;                                  /* rsi */
    *--sp = (uintptr_t)co;                      /* r12: its argument */
    *--sp = 0;                                  /* r13 */
    *--sp = 0;                                  /* r14 */
    *--sp = 0;                                  /* r15 */
    *--sp = (uintptr_t)(lo + co->stack_.size_); /* TEB StackBase */
    *--sp = (uintptr_t)lo;                      /* TEB StackLimit */
    *--sp = (uintptr_t)(lo - weft__stack_guard(co->stack_.pool_)); /* DeallocationStack */
    *--sp = 0;                                                     /* FiberData */
#if WEFT_FP_CONTROL
    *--sp = fp_control_word();
#else
    *--sp = 0;
#endif
    sp -= 20; /* xmm6-xmm15 */
    memset(sp, 0, 20 * sizeof *sp);
#elif defined(__aarch64__)
    (void)fn;
    sp -= 22; /* x19-x28, x29, x30, d8-d15, fpcr, pad: 176 bytes */
    memset(sp, 0, 22 * sizeof *sp);
    sp[0] = (uintptr_t)coro_main;              /* x19: the C entry */
    sp[1] = (uintptr_t)co;                     /* x20: its argument */
    sp[11] = (uintptr_t)weft__coro_trampoline; /* x30: where the switch returns */
#if WEFT_FP_CONTROL
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    sp[20] = fpcr;
#endif
#else
#error "weft: no context switch for this CPU / ABI"
#endif
    return sp;
}

/* --- tool annotations --- */

/* TSan pushes a shadow-stack frame on entry to every instrumented function
 * and pops one on return, on whichever TSan fiber is current at the time.
 * A helper that switches TSan fibers must therefore not be a function of
 * its own: out of line (clang -O2 kept tool_leave out of coro_main), it
 * pushes on one fiber and pops on the other, and the resumer's shadow stack
 * underflows by one per finished coroutine until TSan reads below it and
 * dies with SEGV (issue 15: echo_server under load, then SIGINT). */
#if defined(__GNUC__)
#define TOOL_INLINE static inline __attribute__((always_inline))
#else
#define TOOL_INLINE static inline
#endif

/* TSan runs an asynchronous signal's handler at once only while the thread
 * blocks in a call it knows; otherwise it keeps the signal for the current
 * fiber and runs it at that fiber's next intercepted call or atomic. A
 * fiber switched out in between may never make one (a task left waiting
 * for a peer that went quiet), and the signal is lost with it: weft's
 * handler never writes the self-pipe, and a poll loop sleeps on (issue 17:
 * a server on poll that ignored SIGTERM under load). So each switch is done
 * with the asynchronous signals blocked: the side that leaves blocks them
 * (TSan runs what it kept on the way out of pthread_sigmask, still on the
 * leaving fiber), the side that runs next restores the mask through
 * co->tsan_mask_ (a signal that came meanwhile arrives then, on the new
 * fiber, whose pthread_sigmask runs it). Synchronous signals stay open.
 * The two system calls a side cost a third of the TLS suite's time under
 * TSan, so switches pay them only while weft's handler is some signal's
 * disposition (signal_posix.c counts them here): the loss that matters is
 * that handler's write to the self-pipe. Process-wide, like dispositions. */
#if WEFT__TSAN && !defined(_WIN32)
typedef sigset_t tool_sigs;

static atomic_int signals_caught;

void weft__coro_signals_caught(int delta)
{
    atomic_fetch_add(&signals_caught, delta);
}

TOOL_INLINE void tool_hold_signals(weft_coro *co, tool_sigs *held)
{
    static const int sync_signals[] = {SIGSEGV, SIGBUS,  SIGILL, SIGFPE,
                                       SIGTRAP, SIGABRT, SIGSYS, SIGPIPE};
    co->tsan_mask_ = NULL; /* the other side restores only what was held */
    if (!atomic_load_explicit(&signals_caught, memory_order_relaxed))
        return;
    sigset_t set;
    sigfillset(&set);
    for (size_t i = 0; i < sizeof sync_signals / sizeof sync_signals[0]; i++)
        sigdelset(&set, sync_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, held);
    co->tsan_mask_ = held;
}

TOOL_INLINE void tool_release_signals(weft_coro *co)
{
    if (co->tsan_mask_)
        pthread_sigmask(SIG_SETMASK, co->tsan_mask_, NULL);
}
#else
typedef char tool_sigs;

void weft__coro_signals_caught(int delta)
{
    (void)delta;
}
#define tool_hold_signals(co, held) ((void)(co), (void)(held))
#define tool_release_signals(co) ((void)(co))
#endif

#if WEFT__ASAN || WEFT__TSAN
/* Called by the resumer right before switching into co; *fake keeps the
 * resumer's ASan fake stack across the switch, *held the signal mask. */
TOOL_INLINE void tool_enter(weft_coro *co, void **fake, tool_sigs *held)
{
    (void)co;
    (void)fake;
#if WEFT__ASAN
    __sanitizer_start_switch_fiber(fake, co->stack_.lo_, co->stack_.size_);
#endif
#if WEFT__TSAN
    tool_hold_signals(co, held);
    co->tsan_from_ = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(co->tsan_fiber_, 0);
#else
    (void)held;
#endif
}

/* Called by the resumer when co switched back to it. */
TOOL_INLINE void tool_entered_back(weft_coro *co, void *fake)
{
    (void)co;
    (void)fake;
#if WEFT__ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
#if WEFT__TSAN
    tool_release_signals(co);
#endif
}
#endif

/* Called inside co before it switches back to its resumer (dying: for
 * good); *held keeps the signal mask across the switch. */
TOOL_INLINE void tool_leave(weft_coro *co, int dying, tool_sigs *held)
{
    (void)co;
    (void)dying;
    (void)held;
#if WEFT__ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &co->asan_fake_, co->asan_from_lo_,
                                   co->asan_from_size_);
#endif
#if WEFT__TSAN
    tool_hold_signals(co, held);
    __tsan_switch_to_fiber(co->tsan_from_, 0);
#endif
}

/* Called inside co once it runs again (first: on its first entry). */
TOOL_INLINE void tool_resumed(weft_coro *co, int first)
{
    (void)co;
    (void)first;
#if WEFT__ASAN
    __sanitizer_finish_switch_fiber(first ? NULL : co->asan_fake_, &co->asan_from_lo_,
                                    &co->asan_from_size_);
#endif
#if WEFT__TSAN
    tool_release_signals(co);
#endif
}

/* --- life cycle --- */

/* The end of a coroutine whose body returned ret. */
TOOL_INLINE void finish(weft_coro *co, void *ret)
{
    leave(co, ret, WEFT_CORO_DEAD);
    tool_sigs held; /* on the dead stack: its resumer reads it before any destroy */
    tool_leave(co, 1, &held);
    /* A tail call (nobody resumes a dead coroutine, so this never comes
     * back); the trampoline's ud2 catches it if it ever did. */
    weft__switch_out(co, (void *)WEFT_CORO_DONE);
}

#if defined(__x86_64__) && !defined(_WIN32)
void weft__coro_finish(weft_coro *co, void *ret)
{
    finish(co, ret);
}
#endif

/* The C entry of the first frame where the body is not entered directly
 * (WEFT__DIRECT_ENTRY): finish inline, for TSan's sake (TOOL_INLINE). */
static void coro_main(weft_coro *co, void *arg)
{
    tool_resumed(co, 1);
    finish(co, co->fn_(co, arg));
    abort(); /* unreachable: nobody resumes a dead coroutine */
}

static void coro_setup(weft_coro *co, weft_coro_fn fn, char *top)
{
    if (!WEFT__DIRECT_ENTRY)
        co->fn_ = fn; /* else in the first frame alone */
    co->state_ = WEFT_CORO_CREATED;
    co->flags_ = 0; /* unused; one 8-byte store with state_ */
    /* resumer_, ret_sp_ and out_ are set by each resume (the switch stores
     * ret_sp_), in_ by each yield before anyone reads it: not here. */
    co->name_ = NULL;
    co->user_ = NULL;
#if WEFT__ASAN || WEFT__TSAN
    /* Read only by the tool hooks: other builds leave them unset. */
    co->asan_fake_ = NULL;
    co->asan_from_lo_ = NULL;
    co->asan_from_size_ = 0;
    co->tsan_fiber_ = NULL;
    co->tsan_from_ = NULL;
    co->tsan_mask_ = NULL;
#endif
#if WEFT__TSAN
    co->tsan_fiber_ = __tsan_create_fiber(0);
#endif
    co->sp_ = arch_init_frame(co, fn, top);
}

static char *stack_top(const weft__stack *st)
{
    return (char *)st->lo_ + st->size_ - WEFT__STACK_HEADER;
}

/* weft_coro_init without a cached stack at hand: out of line, as
 * create_slow below. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int
init_slow(weft_coro *co, weft_stack_pool *pool, weft_coro_fn fn)
{
    int rc = weft__stack_get(pool, &co->stack_);
    if (rc < 0)
        return rc;
    coro_setup(co, fn, stack_top(&co->stack_));
    return 0;
}

int weft_coro_init(weft_coro *co, weft_stack_pool *pool, weft_coro_fn fn)
{
    if (!co || !fn)
        return -EINVAL;
    if (!pool || !pool->free)
        return init_slow(co, pool, fn);
    weft__stack_get(pool, &co->stack_); /* a cached stack: cannot fail */
    coro_setup(co, fn, stack_top(&co->stack_));
    return 0;
}

/* weft__coro_place, inlined into weft_coro_create. */
static inline int place(weft_stack_pool *pool, size_t size, size_t co_offset, weft_coro_fn fn,
                        void **obj)
{
    weft__stack st;
    int rc = weft__stack_get(pool, &st);
    if (rc < 0)
        return rc;
    uintptr_t at = ((uintptr_t)stack_top(&st) - size) & ~(uintptr_t)63;
    weft_coro *co = (weft_coro *)(at + co_offset);
    co->stack_ = st;
    coro_setup(co, fn, (char *)at);
    *obj = (void *)at;
    return 0;
}

int weft__coro_place(weft_stack_pool *pool, size_t size, size_t co_offset, weft_coro_fn fn,
                     void **obj)
{
    return place(pool, size, co_offset, fn, obj);
}

/* weft_coro_create without a cached stack at hand (pool NULL or empty):
 * out of line, so that the cached path saves no registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int
create_slow(weft_stack_pool *pool, weft_coro_fn fn, weft_coro **out)
{
    void *obj;
    int rc = place(pool, sizeof(weft_coro), 0, fn, &obj);
    if (rc == 0)
        *out = obj;
    return rc;
}

int weft_coro_create(weft_stack_pool *pool, weft_coro_fn fn, weft_coro **out)
{
    if (!out || !fn)
        return -EINVAL;
    if (!pool || !pool->free)
        return create_slow(pool, fn, out);
    void *obj;
    place(pool, sizeof(weft_coro), 0, fn, &obj); /* a cached stack: cannot fail */
    *out = obj;
    return 0;
}

int weft_coro_destroy(weft_coro *co)
{
    if (!co || !co->stack_.pool_)
        return -EINVAL;                  /* NULL, or an embedded coroutine destroyed already */
    if (co->state_ == WEFT_CORO_RUNNING) /* or NORMAL: see "states" */
        return -EBUSY;
#if WEFT__TSAN
    __tsan_destroy_fiber(co->tsan_fiber_);
#endif
    /* Embedded or on its own stack alike: read what the put needs, then
     * mark co destroyed (a placed co goes with its stack, so the stores
     * are harmless there). */
    weft_stack_pool *pool = co->stack_.pool_;
    void *lo = co->stack_.lo_;
    co->state_ = WEFT_CORO_DEAD;
    co->stack_.pool_ = NULL;
    weft__stack_put(pool, lo);
    return 0;
}

/* --- switching --- */

/* Every switch is the last thing resume and yield do: all bookkeeping,
 * including handing the value to the other side (through the out / in
 * pointer it left in the struct), happens before it, and the register
 * value the switch carries is the status the other side's call returns.
 * So the compiler makes the switch a tail call and, since the switch ends
 * in a jmp, no ret runs between leaving one context and running the user's
 * code in the other: the return-stack predictor is never wrong-footed (a
 * mispredicted ret after each switch measured ~6 ns, twice the switch).
 * ASan/TSan builds need work after the switch; they simply lose the tail
 * call. */

/* gcc -O3's SLP vectorizer merges the resumer_ and out_ stores below into
 * one 16-byte store, built through a spill to the stack and an xmm
 * register: 4.5 ns per switch instead of 4.0 in the release build
 * (bench/switch, bench/RESULTS.md "switch"). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
int weft_coro_resume(weft_coro *co, void *value, void **out)
{
    if (!co)
        return -EINVAL;
    int st = co->state_;
    if (st > WEFT_CORO_SUSPENDED)
        return st == WEFT_CORO_DEAD ? WEFT_ECLOSED : -EBUSY;
    weft_coro *prev = weft__current;
    co->resumer_ = prev;
    co->state_ = WEFT_CORO_RUNNING;
    co->out_ = out;
    weft__current = co;
    void *pass = value; /* a fresh coroutine takes it as fn's arg */
    if (st == WEFT_CORO_SUSPENDED) {
        if (co->in_)
            *co->in_ = value;
        pass = (void *)0; /* what its weft_coro_yield returns */
    }
#if WEFT__ASAN || WEFT__TSAN
    void *fake = NULL;
    tool_sigs held;
    tool_enter(co, &fake, &held);
    int rc = weft__switch_in(co, pass);
    tool_entered_back(co, fake);
    return rc;
#else
    return weft__switch_in(co, pass);
#endif
}

/* Hands value to the resumer and makes it current again. */
static inline void leave(weft_coro *self, void *value, int state)
{
    self->state_ = state;
    if (self->out_)
        *self->out_ = value;
    weft__current = self->resumer_;
}

int weft_coro_yield(weft_coro *self, void *value, void **in)
{
    weft_coro *cur = weft__current;
    if (!cur || self != cur)
        return -EINVAL;
    self->in_ = in;
    leave(self, value, WEFT_CORO_SUSPENDED);
#if WEFT__ASAN || WEFT__TSAN
    tool_sigs held;
    tool_leave(self, 0, &held);
    int rc = weft__switch_out(self, (void *)0);
    tool_resumed(self, 0);
    return rc;
#else
    return weft__switch_out(self, (void *)0);
#endif
}

weft_coro *weft_coro_current(void)
{
    return weft__current;
}

int weft_coro_state(const weft_coro *co)
{
    if (!co)
        return -EINVAL;
    int st = co->state_;
    return st == WEFT_CORO_RUNNING && co != weft__current ? WEFT_CORO_NORMAL : st;
}

int weft_coro_set_name(weft_coro *co, const char *name)
{
    if (!co)
        return -EINVAL;
    co->name_ = name;
    return 0;
}

int weft_coro_set_user(weft_coro *co, void *user)
{
    if (!co)
        return -EINVAL;
    co->user_ = user;
    return 0;
}

void *weft_coro_user(const weft_coro *co)
{
    return co ? co->user_ : NULL;
}
