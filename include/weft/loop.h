/* The event loop: scheduling plain functions (call_soon, call_later,
 * call_at, call_soon_threadsafe), running, stopping, and the clock. */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_loop weft_loop;

/* A plain callback: the function and the argument given when it was
 * scheduled. */
typedef void (*weft_callback)(void *arg);

/* Which backend a loop runs on. AUTO takes the best one compiled in that
 * works here: io_uring, then epoll, then poll on Linux; kqueue, then poll on
 * BSD and macOS; poll on other POSIX systems; IOCP on Windows. KQUEUE is
 * native on BSD and macOS; on Linux it runs over libkqueue (an emulation over
 * epoll), which AUTO never picks: it is chosen only by name. IOCP is compiled
 * only on Windows: asking for it elsewhere gives WEFT_ENOT_COMPILED, as does
 * asking for KQUEUE in a build without it. The
 * environment variable WEFT_BACKEND=<name> overrides AUTO (not an explicit
 * choice); an unknown name makes weft_loop_new() fail with
 * WEFT_EUNKNOWN_BACKEND, never fall back. */
typedef enum weft_backend_kind {
    WEFT_BACKEND_AUTO = 0,
    WEFT_BACKEND_IO_URING,
    WEFT_BACKEND_EPOLL,
    WEFT_BACKEND_KQUEUE,
    WEFT_BACKEND_IOCP,
    WEFT_BACKEND_POLL,
    WEFT_BACKEND__COUNT
} weft_backend_kind;

/* Options for weft_loop_new(). Zero-initialise, then set what you need. */
typedef struct weft_loop_opts {
    weft_backend_kind backend; /* default AUTO */
    uint32_t timer_capacity;   /* timers to reserve room for up front (0: grow on demand) */
    uint32_t ring_entries;     /* io_uring submission queue size (0: 256) */
    /* Busy polling: before the loop would sleep waiting for I/O, it polls the
     * backend without blocking for up to this many microseconds (0: off, the
     * default; at most WEFT_BUSY_POLL_MAX_US). It trades CPU for the cost of
     * being woken: an idle thread is woken with an inter-processor interrupt,
     * which in a virtual machine is an exit to the hypervisor, paid by the
     * CPU that sent the data (bench/RESULTS.md, "resp"). Timers and
     * call_soon_threadsafe still run on time: the spin ends at the next
     * deadline or as soon as anything is ready. */
    uint32_t busy_poll_us;
} weft_loop_opts;

#define WEFT_BUSY_POLL_MAX_US 1000000u

/* A scheduled callback: storage owned by the caller, no allocation inside
 * weft. Zero-initialise it (or use WEFT_HANDLE_INIT) before first use. It
 * must stay valid (not freed, not moved) while it is scheduled, i.e. from a
 * successful weft_call_* until its callback starts or weft_handle_cancel()
 * returns 0. Once the callback runs (or the cancel returns) the handle is
 * idle again and may be rescheduled or freed, also from inside its own
 * callback. The fields are private. */
typedef struct weft_handle {
    /* Private to weft. */
    weft__link link_; /* ready list, or the threadsafe queue */
    weft_callback cb_;
    void *arg_;
    uint64_t when_;       /* deadline (timers) */
    uint64_t seq_;        /* scheduling order, breaks deadline ties */
    uint32_t heap_index_; /* position in the timer heap */
    uint8_t state_;
    uint8_t pad_[3];
} weft_handle;

#define WEFT_HANDLE_INIT                                                                           \
    {                                                                                              \
        0                                                                                          \
    }

/* How weft_loop_run() runs. */
typedef enum weft_run_mode {
    WEFT_RUN_FOREVER = 0, /* until weft_loop_stop() (asyncio's run_forever) */
    WEFT_RUN_ONCE,        /* one iteration; waits for I/O or a timer if nothing is ready */
    WEFT_RUN_NOWAIT,      /* one iteration that never blocks */
    WEFT_RUN_UNTIL_IDLE,  /* until no callback, timer or operation is pending (or stop) */
} weft_run_mode;

/* Create a loop. opts may be NULL for the defaults. On success stores the
 * new loop in *out and returns 0; the caller owns it and frees it with
 * weft_loop_free(). Errors: -EINVAL (out is NULL or a bad option, such as
 * busy_poll_us above WEFT_BUSY_POLL_MAX_US),
 * WEFT_EUNKNOWN_BACKEND (WEFT_BACKEND names no backend), WEFT_ENOT_COMPILED
 * (a backend this build lacks: iocp off Windows, or kqueue without it),
 * WEFT_EUNAVAILABLE (that backend cannot run here), -ENOMEM, or the error of
 * the system call that failed. */
int weft_loop_new(const weft_loop_opts *opts, weft_loop **out);

/* Free a loop that is not running. Callbacks still scheduled are dropped
 * without running; operations still in flight are cancelled first (their
 * memory must stay valid until this returns). Returns 0, -EINVAL for NULL,
 * or -EBUSY when called from inside weft_loop_run() (the loop is kept). */
int weft_loop_free(weft_loop *loop);

/* Run the loop in the given mode. Returns 1 when work is still pending
 * (callbacks, timers or operations), 0 when none is, or a negative error:
 * -EINVAL (NULL loop, bad mode), -EBUSY (already running: no recursion), or
 * a backend failure. */
int weft_loop_run(weft_loop *loop, weft_run_mode mode);

/* Ask a running loop to return from weft_loop_run() after the callbacks of
 * the current iteration (asyncio's stop). Called while the loop is not
 * running, the next run does one iteration and returns. Loop thread only.
 * Returns 0 or -EINVAL. */
int weft_loop_stop(weft_loop *loop);

/* The loop's monotonic clock in nanoseconds, cached like libuv's (reading it
 * costs nothing): read when weft_loop_run() starts and each time the backend
 * poll returns, before that iteration's callbacks. Returns 0 for a NULL
 * loop. */
uint64_t weft_loop_now(const weft_loop *loop);

/* Refresh the cached clock from the OS and return it. */
uint64_t weft_loop_update_time(weft_loop *loop);

/* The name of the backend the loop runs on: "io_uring", "epoll", "kqueue",
 * "iocp" or "poll". NULL for a NULL loop. */
const char *weft_loop_backend_name(const weft_loop *loop);

/* Schedule cb(arg) to run after the callbacks already scheduled (FIFO), in
 * the loop's next handle phase: one scheduled from a call_soon/later/at
 * callback waits for the next iteration, one scheduled from an op callback
 * runs in the same iteration, after the op callbacks (docs/design.md,
 * section 3). Errors: -EINVAL (NULL argument), -EBUSY (h is already
 * scheduled). */
int weft_call_soon(weft_loop *loop, weft_handle *h, weft_callback cb, void *arg);

/* Schedule cb(arg) to run delay_ns nanoseconds from weft_loop_now().
 * Timers with equal deadlines run in the order they were scheduled.
 * Errors: -EINVAL (NULL argument, negative delay), -EBUSY (h is scheduled),
 * -ENOMEM (the timer heap could not grow; reserve with timer_capacity). */
int weft_call_later(weft_loop *loop, weft_handle *h, int64_t delay_ns, weft_callback cb, void *arg);

/* Schedule cb(arg) at the absolute time when_ns of the loop's clock; a time
 * in the past runs on the next iteration. Errors as weft_call_later(). */
int weft_call_at(weft_loop *loop, weft_handle *h, uint64_t when_ns, weft_callback cb, void *arg);

/* Schedule cb(arg) on the loop from any thread, waking the loop if it is
 * blocked in the kernel. The callback runs on the loop's thread. h must
 * stay valid until the callback starts; it cannot be cancelled.
 * Errors: -EINVAL (NULL argument), -EBUSY (h is already queued). */
int weft_call_soon_threadsafe(weft_loop *loop, weft_handle *h, weft_callback cb, void *arg);

/* Cancel a callback scheduled with weft_call_soon/later/at. On 0 it will
 * not run and h is idle again. Errors: -EINVAL (NULL argument),
 * -EALREADY (h is not scheduled: it already ran, was cancelled, or was never
 * scheduled), -EPERM (h was queued with weft_call_soon_threadsafe). */
int weft_handle_cancel(weft_loop *loop, weft_handle *h);

/* Nonzero while h is scheduled and has not started. */
int weft_handle_pending(const weft_handle *h);

/* The deadline of a scheduled timer handle on the loop clock, or 0. */
uint64_t weft_handle_when(const weft_handle *h);

/* Backends: the name of a kind ("io_uring", "epoll", "kqueue", "iocp", ...),
 * NULL when out of range. */
const char *weft_backend_name(weft_backend_kind kind);

/* The kind whose name is `name`, or WEFT_EUNKNOWN_BACKEND. "auto" gives AUTO. */
int weft_backend_from_name(const char *name);

/* Whether the backend was compiled into this build of weft (1) or not (0;
 * IOCP is compiled on Windows only). */
int weft_backend_compiled(weft_backend_kind kind);

/* Whether the backend actually works on this machine now: it is created and
 * torn down once. Returns 0 when it works, or why not (WEFT_ENOT_COMPILED,
 * WEFT_EUNAVAILABLE, or the failing system call's error). */
int weft_backend_probe(weft_backend_kind kind);

/* The kind AUTO resolves to here (ignoring WEFT_BACKEND), or a negative
 * error when no backend works. */
int weft_backend_auto(void);

/* A short description of what the backend found at setup (for io_uring the
 * ring flags it got and, once weft_loop_buffers_setup() is done, whether
 * the kernel packs recvs into its buffers: "recv buffers packed"), written
 * into buf (NUL-terminated, truncated to size).
 * Returns the length it wanted, or -EINVAL. */
int weft_loop_backend_info(const weft_loop *loop, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
