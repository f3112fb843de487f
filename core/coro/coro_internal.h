/* Private parts of the coroutine layer: the assembly entry points, the
 * stack pool's internal interface and tool (sanitizer, valgrind) switches. */
#ifndef WEFT_CORO_INTERNAL_H
#define WEFT_CORO_INTERNAL_H

#include "weft/coro.h"
#include "weft_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* --- tools --- */
#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif
#ifndef WEFT__ASAN
#define WEFT__ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif
#ifndef WEFT__TSAN
#define WEFT__TSAN 0
#endif

#if WEFT__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if WEFT__TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* Thread-local storage. On ELF the initial-exec model makes an access one
 * %fs-relative load even from the shared library (no __tls_get_addr). */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define WEFT__TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define WEFT__TLS _Thread_local
#endif

/* --- core/coro/arch/switch_*.S --- */

/* Saves the callee-saved registers of the running context on its stack,
 * stores its stack pointer in *save_sp, loads to_sp and restores the context
 * saved there, where this call returns value (declared int: coro.c passes
 * status codes; a fresh coroutine's trampoline takes the full pointer). */
int weft__switch(void **save_sp, void *to_sp, void *value);
/* The first frame of a fresh coroutine (see the .S files). */
void weft__coro_trampoline(void);

/* Where the first frame calls the body itself, not coro_main (x86-64
 * SysV without ASan/TSan, whose first-entry hook must run before the
 * body): a C frame fewer per coroutine's life. The trampoline then calls
 * weft__coro_finish(co, the body's return value), which never returns. */
#if defined(__x86_64__) && !defined(_WIN32) && !WEFT__ASAN && !WEFT__TSAN
#define WEFT__DIRECT_ENTRY 1
#else
#define WEFT__DIRECT_ENTRY 0
#endif
#if defined(__x86_64__) && !defined(_WIN32)
void weft__coro_finish(weft_coro *co, void *ret);
#endif

/* weft__switch into co (saving the running context in co->ret_sp_) and
 * out of it (saving co's in co->sp_, entering co->ret_sp_). On x86-64
 * SysV they are entry points of their own that read the two pointers from
 * co; elsewhere these wrappers, which the compiler turns into a tail call
 * of weft__switch. */
#if defined(__x86_64__) && !defined(_WIN32)
int weft__switch_in(weft_coro *co, void *value);
int weft__switch_out(weft_coro *co, void *value);
_Static_assert(offsetof(weft_coro, sp_) == 0 && offsetof(weft_coro, ret_sp_) == 8,
               "switch_x86_64_sysv.S reads sp_ at 0 and ret_sp_ at 8");
#else
static inline int weft__switch_in(weft_coro *co, void *value)
{
    return weft__switch(&co->ret_sp_, co->sp_, value);
}
static inline int weft__switch_out(weft_coro *co, void *value)
{
    return weft__switch(&co->sp_, co->ret_sp_, value);
}
#endif

/* --- core/coro.c --- */

/* The coroutine running on this thread (NULL: the thread's own stack). */
extern WEFT__TLS weft_coro *weft__current;

/* Counts the signals whose disposition is weft's handler (delta +1 when it
 * is installed for one, -1 when removed; core/loop/signal_posix.c). Under
 * TSan, fiber switches block the asynchronous signals while the count is
 * not zero (coro.c says why); elsewhere it does nothing. */
void weft__coro_signals_caught(int delta);

/* Takes a stack from pool and places an object of size bytes at its top
 * (64-byte aligned), with a weft_coro at co_offset inside it set up to run
 * fn below it: *obj = the object. It lives until weft_coro_destroy() of that
 * coroutine. Returns 0 or -ENOMEM. */
int weft__coro_place(weft_stack_pool *pool, size_t size, size_t co_offset, weft_coro_fn fn,
                     void **obj);

/* --- core/stack.c --- */

/* Bytes reserved at the top of every stack for the pool's bookkeeping. */
#define WEFT__STACK_HEADER 32

/* The top WEFT__STACK_HEADER bytes of every stack. */
struct weft__stack_header {
    struct weft__stack_header *next; /* free list while cached */
    unsigned vg_id;                  /* valgrind stack id */
    int spent;                       /* Windows: its overflow is being reported */
};

/* Here rather than in stack.c so that taking and giving back a cached
 * stack inlines into coroutine creation and destruction (a call each way
 * was a quarter of create + run + destroy: bench/RESULTS.md "issue 17"). */
struct weft_stack_pool {
    size_t stack_size; /* usable bytes, a multiple of the page size */
    size_t guard;      /* guard bytes below, a multiple of the page size */
    size_t max_cached;
    size_t ncached;
    /* Stacks mapped and not yet unmapped (cached or handed out), counted on
     * the slow paths only: handed out = nmapped - ncached, so the fast get
     * and put keep no count of their own. */
    size_t nmapped;
    struct weft__stack_header *free;
    int is_default;
    /* What the inline put may fill the cache to: max_cached, or 0 in an
     * ASan build or under valgrind, whose puts all take the slow path (it
     * annotates the stack; one compare on the fast path for both). */
    size_t fast_cached;
};

/* The slow paths (stack.c): a fresh mapping (NULL: out of memory), and a
 * stack given back with tool annotations, or past max_cached (unmapped). */
void *weft__stack_map_new(weft_stack_pool *pool);
void weft__stack_put_slow(weft_stack_pool *pool, void *lo);

/* Takes a stack from pool (NULL: the thread's default pool): a cached one or
 * a freshly mapped one. Returns 0 or -ENOMEM. */
static inline int weft__stack_get(weft_stack_pool *pool, weft__stack *out)
{
    if (!pool)
        pool = weft_stack_pool_default();
    void *lo;
    struct weft__stack_header *h = pool->free;
    if (h) {
        pool->free = h->next;
        pool->ncached--;
        lo = (char *)h + WEFT__STACK_HEADER - pool->stack_size;
    } else {
        lo = weft__stack_map_new(pool);
        if (!lo)
            return -ENOMEM;
    }
    out->lo_ = lo;
    out->size_ = pool->stack_size;
    out->pool_ = pool;
    return 0;
}

/* Gives the stack at lo back to pool (cached or unmapped). */
static inline void weft__stack_put(weft_stack_pool *pool, void *lo)
{
    if (pool->ncached >= pool->fast_cached) {
        weft__stack_put_slow(pool, lo);
        return;
    }
    struct weft__stack_header *h =
        (struct weft__stack_header *)((char *)lo + pool->stack_size - WEFT__STACK_HEADER);
    h->next = pool->free;
    pool->free = h;
    pool->ncached++;
}

/* The guard size of the stacks of a pool. */
size_t weft__stack_guard(const weft_stack_pool *pool);

#endif
