/* Coroutine stacks: mapped with a no-access guard page below, pooled per
 * thread, and a fault handler that names the coroutine whose stack
 * overflowed: on POSIX a SIGSEGV handler on an alternate signal stack, on
 * Windows a vectored exception handler (see "overflow reporting (Windows)").
 *
 * Mapping a stack costs an mmap, an mprotect and a madvise (21-25 us in our
 * VM, against 16 ns for malloc), so pools keep freed stacks for reuse. A
 * cached stack keeps its bookkeeping in the WEFT__STACK_HEADER bytes at its
 * top: the free-list link and the valgrind stack id.
 *
 * Global state: one process-wide SIGSEGV/SIGBUS handler, installed once
 * (it chains to the handler it replaced); on Windows one vectored exception
 * handler, added once. Per-thread state (_Thread_local): the thread's
 * default pool and the alternate signal stack weft installed, both released
 * at thread exit through a pthread key destructor (Windows: a fiber-local
 * storage callback). */
#include "coro_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>
#else
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#if WEFT_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

#define stack_header weft__stack_header
_Static_assert(sizeof(struct stack_header) <= WEFT__STACK_HEADER, "stack header too big");

/* Per-thread: the default pool and the alternate signal stack. */
struct thread_stacks {
    struct weft_stack_pool pool;
    int ready;        /* pool initialised, exit hook registered */
    int signals_done; /* handler and alternate stack set up */
    void *altstack;   /* the alternate signal stack weft mapped, or NULL */
    size_t altstack_size;
};
static WEFT__TLS struct thread_stacks thread_stacks; /* Windows: see thread_state */

static size_t page_size(void)
{
#if defined(_WIN32)
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize;
#else
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
#endif
}

#if defined(_WIN32)
/* Windows: pages of the guard that Windows may hand to the exception
 * dispatcher (see "overflow reporting (Windows)"); the lowest guard page
 * stays no-access. */
#define WIN_SOFT_GUARD_PAGES 2
#endif

static int pool_setup(struct weft_stack_pool *p, const weft_stack_pool_options *opt)
{
    size_t pg = page_size();
    size_t size = opt && opt->stack_size ? opt->stack_size : WEFT_STACK_DEFAULT_SIZE;
    if (size < WEFT_STACK_MIN_SIZE || size > ((size_t)1 << 40))
        return -EINVAL;
    memset(p, 0, sizeof *p);
    p->stack_size = (size + pg - 1) / pg * pg;
    p->guard = pg;
#if defined(_WIN32)
    p->guard += WIN_SOFT_GUARD_PAGES * pg;
#endif
    p->max_cached = opt && opt->max_cached ? opt->max_cached : WEFT_STACK_DEFAULT_CACHE;
    int tools = WEFT__ASAN;
#if WEFT_HAVE_VALGRIND
    tools |= RUNNING_ON_VALGRIND != 0;
#endif
    p->fast_cached = tools ? 0 : p->max_cached;
    return 0;
}

/* --- mapping --- */

static struct stack_header *header_of(void *lo, size_t size)
{
    return (struct stack_header *)((char *)lo + size - WEFT__STACK_HEADER);
}

#if !defined(_WIN32)
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
/* Make the lowest `size` bytes of m fault on access. Linux 6.13+ installs
 * guard pages without splitting the mapping (MADV_GUARD_INSTALL), so stacks
 * stay one VMA each and neighbours merge: 100,000 stacks fit under the
 * default vm.max_map_count (65530), which mprotect guards (two VMAs per
 * stack) exceed. Elsewhere, mprotect. Returns nonzero on success. */
static int guard_advice_works; /* set once, by probe_guard_advice */

/* MADV_GUARD_INSTALL must be checked, not trusted: qemu-user, for one,
 * answers 0 to advice it does not know and installs nothing. A write()
 * from a real guard region fails with EFAULT. */
static void probe_guard_advice(void)
{
#ifdef __linux__
    size_t pg = page_size();
    char *m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    int fds[2];
    if (madvise(m, pg, MADV_GUARD_INSTALL) == 0 && pipe(fds) == 0) {
        guard_advice_works = write(fds[1], m, 1) < 0 && errno == EFAULT;
        close(fds[0]);
        close(fds[1]);
    }
    munmap(m, pg);
#endif
}

static int install_guard(char *m, size_t size)
{
    static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
    pthread_once(&probe_once, probe_guard_advice);
    if (guard_advice_works && madvise(m, size, MADV_GUARD_INSTALL) == 0)
        return 1;
    return mprotect(m, size, PROT_NONE) == 0;
}
#endif

static void *map_stack(struct weft_stack_pool *p)
{
    size_t total = p->guard + p->stack_size;
#if defined(_WIN32)
    char *m = VirtualAlloc(NULL, total, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    if (!m)
        return NULL;
    DWORD old;
    size_t hard = p->guard - WIN_SOFT_GUARD_PAGES * page_size();
    if (!VirtualProtect(m, hard, PAGE_NOACCESS, &old) ||
        !VirtualProtect(m + hard, p->guard - hard, PAGE_READWRITE | PAGE_GUARD, &old)) {
        VirtualFree(m, 0, MEM_RELEASE);
        return NULL;
    }
#else
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#ifdef MAP_STACK
    flags |= MAP_STACK;
#endif
#ifdef MAP_NORESERVE
    flags |= MAP_NORESERVE;
#endif
    char *m = mmap(NULL, total, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (!install_guard(m, p->guard)) {
        munmap(m, total);
        return NULL;
    }
#ifdef MADV_NOHUGEPAGE
    /* A huge page would commit 2 MiB for a 64 KiB stack and swallow the
     * guard's neighbourhood; failure here is harmless. */
    (void)madvise(m, total, MADV_NOHUGEPAGE);
#endif
#endif
    char *lo = m + p->guard;
    p->nmapped++;
    struct stack_header *h = header_of(lo, p->stack_size);
    h->next = NULL;
    h->vg_id = 0;
    h->spent = 0;
#if WEFT_HAVE_VALGRIND
    h->vg_id = VALGRIND_STACK_REGISTER(lo, lo + p->stack_size);
#endif
    return lo;
}

static void unmap_stack(struct weft_stack_pool *p, void *lo)
{
#if WEFT_HAVE_VALGRIND
    VALGRIND_STACK_DEREGISTER(header_of(lo, p->stack_size)->vg_id);
#endif
    char *m = (char *)lo - p->guard;
    p->nmapped--;
#if defined(_WIN32)
    VirtualFree(m, 0, MEM_RELEASE);
#else
    munmap(m, p->guard + p->stack_size);
#endif
}

static void drain(struct weft_stack_pool *p)
{
    while (p->free) {
        struct stack_header *h = p->free;
        p->free = h->next;
        unmap_stack(p, (char *)h + WEFT__STACK_HEADER - p->stack_size);
    }
    p->ncached = 0;
}

/* --- per-thread state --- */

static void thread_exit(void *arg)
{
    struct thread_stacks *t = arg;
    drain(&t->pool);
#if !defined(_WIN32)
    if (t->altstack) {
        stack_t ss;
        memset(&ss, 0, sizeof ss);
        ss.ss_flags = SS_DISABLE;
        sigaltstack(&ss, NULL);
        munmap(t->altstack, t->altstack_size);
        t->altstack = NULL;
    }
#endif
}

#if defined(_WIN32)
/* mingw's _Thread_local is emutls. With the posix thread model a winpthreads
 * key destructor frees a thread's emutls block, maybe before ours runs, and
 * winpthreads runs none at the exit of threads it did not create. So on
 * Windows the state lives on the heap, found through TLS, and a fiber-local
 * storage callback, which Windows runs at the exit of every thread,
 * releases it. */
static WEFT__TLS struct thread_stacks *thread_stacks_p;
static INIT_ONCE key_once = INIT_ONCE_STATIC_INIT;
static DWORD exit_key = FLS_OUT_OF_INDEXES;

static void WINAPI fls_exit(void *arg)
{
    thread_exit(arg);
    if (arg != &thread_stacks)
        free(arg);
}

static BOOL CALLBACK make_key(PINIT_ONCE once, void *arg, void **ctx)
{
    (void)once;
    (void)arg;
    (void)ctx;
    exit_key = FlsAlloc(fls_exit);
    return TRUE;
}
#else
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

static void make_key(void)
{
    (void)pthread_key_create(&exit_key, thread_exit);
}
#endif

/* --- overflow message (both) --- */

/* Built without the C library: the faulting context may hold its locks. */
struct msg {
    char buf[512];
    size_t len;
};

static void put_str(struct msg *m, const char *s)
{
    while (*s && m->len < sizeof m->buf)
        m->buf[m->len++] = *s++;
}

static void put_num(struct msg *m, uintptr_t v, unsigned base)
{
    char tmp[32];
    size_t n = 0;
    if (base == 16)
        put_str(m, "0x");
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n && m->len < sizeof m->buf)
        m->buf[m->len++] = tmp[--n];
}

/* Says which coroutine ran past its stack and where; a = the faulting
 * address, guard_lo = the lowest byte of the guard below its stack. */
static void overflow_message(struct msg *m, const weft_coro *co, const char *a,
                             const char *guard_lo)
{
    put_str(m, "weft: coroutine stack overflow: coroutine ");
    put_str(m, co->name_ ? co->name_ : "(unnamed)");
    put_str(m, " at ");
    put_num(m, (uintptr_t)co, 16);
    put_str(m, " ran past the end of its ");
    put_num(m, co->stack_.size_, 10);
    put_str(m, "-byte stack (fault at ");
    put_num(m, (uintptr_t)a, 16);
    put_str(m, ", guard page ");
    put_num(m, (uintptr_t)guard_lo, 16);
    put_str(m, "); give it a bigger stack (weft_stack_pool_options.stack_size)\n");
}

/* --- overflow reporting (POSIX) --- */

#if !defined(_WIN32)
static struct sigaction old_segv, old_bus;

static void chain(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: return and fault again without us. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    weft_coro *co = weft__current;
    char *a = si ? (char *)si->si_addr : NULL;
    if (co && co->stack_.pool_) {
        char *lo = co->stack_.lo_;
        size_t guard = weft__stack_guard(co->stack_.pool_);
        if (a >= lo - guard && a < lo) {
            struct msg m = {.len = 0};
            overflow_message(&m, co, a, lo - guard);
            ssize_t w = write(2, m.buf, m.len);
            (void)w;
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            sigaction(sig, &dfl, NULL); /* returning faults again: core dump */
            errno = saved;
            return;
        }
    }
    chain(sig, si, uc);
    errno = saved;
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
/* The handler needs stack space of its own: the faulting stack has none. */
static void thread_signals(struct thread_stacks *t)
{
    if (t->signals_done)
        return;
    t->signals_done = 1;
    pthread_once(&handler_once, install_handler);
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return; /* the thread (or a sanitizer) already has one */
    size_t size = 64 * 1024;
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = m;
    ss.ss_size = size;
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(m, size);
        return;
    }
    t->altstack = m;
    t->altstack_size = size;
    pthread_once(&key_once, make_key);
    pthread_setspecific(exit_key, t);
}
#endif

/* --- overflow reporting (Windows) ---
 *
 * Windows dispatches an exception on the stack that faulted: the system
 * (under wine, its SIGSEGV handler) writes the context and record, about
 * 2 KB, below the faulting rsp, and the handlers run below that. Behind a
 * bare no-access page there is no room: wine ends the thread silently
 * ("stack overflow N bytes", exit code 1), Windows the process. So the
 * guard is laid out like the end of a thread stack: its lowest page
 * no-access, the WIN_SOFT_GUARD_PAGES above it PAGE_GUARD. The switch puts
 * the coroutine's bounds in the TEB (DeallocationStack = the guard's bottom,
 * StackLimit, StackBase), so the first touch of a PAGE_GUARD page is a
 * thread-stack overflow to the system: it lifts the guard from the
 * guaranteed pages (wine: two on x64, more if SetThreadStackGuarantee asked)
 * and raises EXCEPTION_STACK_OVERFLOW with them to dispatch on. Under wine 8
 * the dispatch takes 2.4 KB of the 8 KB and the handler below some 1 KB.
 *
 * The handler prints the message, then ends the process at once with
 * RaiseFailFastException: no frame handler runs, Windows Error Reporting
 * takes its dump (the core dump of POSIX), and the exit code is the
 * exception's, 0xC00000FD (not verified: no Windows machine here; wine 8
 * ends the process with STATUS_FAIL_FAST_EXCEPTION, 0xC0000602). Letting
 * the exception go on instead leaves its end to chance: the frame walk
 * stops at the coroutine's first frame, and under wine the debugger it then
 * starts has no stack to run on and the process exits with code 0. As on
 * POSIX, an overflow of a weft stack is not survivable.
 *
 * The handler is added once per process and never removed: a vectored
 * handler is process-wide by nature, like the signal handler; it keeps no
 * state of its own and reads only the faulting thread's (weft__current), so
 * every thread can share it, and to other exceptions it costs a compare. */
#if defined(_WIN32)
static LONG CALLBACK on_exception(EXCEPTION_POINTERS *ep)
{
    const EXCEPTION_RECORD *r = ep->ExceptionRecord;
    DWORD code = r->ExceptionCode;
    if (code != EXCEPTION_STACK_OVERFLOW && code != EXCEPTION_ACCESS_VIOLATION &&
        code != EXCEPTION_GUARD_PAGE)
        return EXCEPTION_CONTINUE_SEARCH;
    weft_coro *co = weft__current;
    if (!co || !co->stack_.pool_)
        return EXCEPTION_CONTINUE_SEARCH;
    char *lo = co->stack_.lo_;
    char *guard_lo = lo - weft__stack_guard(co->stack_.pool_);
    char *a = r->NumberParameters >= 2 ? (char *)r->ExceptionInformation[1] : NULL;
    int ours = a >= guard_lo && a < lo;
    /* A stack overflow without an address: ours if the TEB holds our stack. */
    if (!ours && !a && code == EXCEPTION_STACK_OVERFLOW) {
        char *base; /* TEB StackBase (__readgsqword trips -Warray-bounds) */
        __asm__("movq %%gs:0x08, %0" : "=r"(base));
        ours = base == lo + co->stack_.size_;
        a = (char *)ep->ContextRecord->Rsp;
    }
    struct stack_header *h = header_of(lo, co->stack_.size_);
    if (!ours || h->spent)
        return EXCEPTION_CONTINUE_SEARCH;
    /* Once: should this handler run out of stack itself, the second fault
     * goes on to the system. */
    h->spent = 1;
    struct msg m = {.len = 0};
    overflow_message(&m, co, a, guard_lo);
    DWORD w;
    WriteFile(GetStdHandle(STD_ERROR_HANDLE), m.buf, (DWORD)m.len, &w, NULL);
    RaiseFailFastException(ep->ExceptionRecord, ep->ContextRecord, 0);
    TerminateProcess(GetCurrentProcess(), code); /* not reached */
    return EXCEPTION_CONTINUE_SEARCH;
}

static BOOL CALLBACK add_handler(PINIT_ONCE once, void *arg, void **ctx)
{
    (void)once;
    (void)arg;
    (void)ctx;
    /* First: a handler added before ours may swallow the fault. */
    return AddVectoredExceptionHandler(1, on_exception) != NULL;
}

static void thread_signals(struct thread_stacks *t)
{
    static INIT_ONCE handler_once = INIT_ONCE_STATIC_INIT;
    if (t->signals_done)
        return;
    t->signals_done = 1;
    InitOnceExecuteOnce(&handler_once, add_handler, NULL, NULL);
}
#endif

static struct thread_stacks *thread_state(void)
{
#if defined(_WIN32)
    struct thread_stacks *t = thread_stacks_p;
    if (t)
        return t;
    InitOnceExecuteOnce(&key_once, make_key, NULL, NULL);
    t = calloc(1, sizeof *t);
    if (!t || exit_key == FLS_OUT_OF_INDEXES || !FlsSetValue(exit_key, t)) {
        free(t);
        t = &thread_stacks; /* kept for the thread's life, its stacks too */
    }
    thread_stacks_p = t;
#else
    struct thread_stacks *t = &thread_stacks;
    if (t->ready)
        return t;
    pthread_once(&key_once, make_key);
    pthread_setspecific(exit_key, t);
#endif
    pool_setup(&t->pool, NULL);
    t->pool.is_default = 1;
    t->ready = 1;
    return t;
}

/* --- public --- */

int weft_stack_pool_new(const weft_stack_pool_options *opt, weft_stack_pool **out)
{
    if (!out)
        return -EINVAL;
    struct weft_stack_pool tmp;
    int rc = pool_setup(&tmp, opt);
    if (rc < 0)
        return rc;
    struct weft_stack_pool *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    *p = tmp;
    *out = p;
    return 0;
}

int weft_stack_pool_free(weft_stack_pool *pool)
{
    if (!pool || pool->is_default)
        return -EINVAL;
    if (pool->nmapped != pool->ncached)
        return -EBUSY;
    drain(pool);
    free(pool);
    return 0;
}

weft_stack_pool *weft_stack_pool_default(void)
{
    return &thread_state()->pool;
}

size_t weft_stack_pool_stack_size(const weft_stack_pool *pool)
{
    if (!pool)
        pool = weft_stack_pool_default();
    return pool->stack_size;
}

/* --- internal --- */

size_t weft__stack_guard(const weft_stack_pool *pool)
{
    return pool->guard;
}

/* The slow path of weft__stack_get, out of line so the pooled path stays a
 * few instructions inlined in the caller. */
void *weft__stack_map_new(weft_stack_pool *pool)
{
    thread_signals(thread_state());
    return map_stack(pool);
}

void weft__stack_put_slow(weft_stack_pool *pool, void *lo)
{
#if WEFT__ASAN
    /* Frames abandoned on it may leave poisoned redzones behind. */
    ASAN_UNPOISON_MEMORY_REGION(lo, pool->stack_size);
#endif
#if WEFT_HAVE_VALGRIND
    /* memcheck marked what lay below the coroutine's last stack pointer as
     * inaccessible; the next user writes its first frame there. */
    VALGRIND_MAKE_MEM_UNDEFINED(lo, pool->stack_size);
#endif
    if (pool->ncached >= pool->max_cached) {
        unmap_stack(pool, lo);
        return;
    }
    struct stack_header *h = header_of(lo, pool->stack_size);
    h->next = pool->free;
    pool->free = h;
    pool->ncached++;
}
