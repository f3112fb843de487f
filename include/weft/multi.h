/* Multishot operations: one request, many completions.
 *
 * A multishot accept hands over every new connection on a listener; a
 * multishot recv hands over chunks of data in buffers the loop owns, which
 * the callback gives back with weft_loop_buffer_release(). On io_uring they are
 * the kernel's multishot requests (one SQE for many connections / reads, a
 * provided-buffer ring); on epoll, kqueue and poll the loop emulates them
 * with the same semantics, so a program needs no second code path.
 *
 * The callback runs on the loop thread in the loop's callback phase, like
 * op callbacks and call_soon callbacks: never while the loop polls its
 * backend, never inside weft_accept_multi(), weft_recv_multi() or
 * weft_multi_cancel(). Results found by one poll are delivered in order,
 * after the callbacks scheduled before that poll. It gets `more` = 1 while the
 * request goes on, and one last call with more = 0 (an error, end of
 * stream, or -ECANCELED), after which m is idle and may be reused or freed.
 * The caller owns m; it must stay valid until that last call. A running
 * multishot request keeps weft_loop_run(WEFT_RUN_UNTIL_IDLE) going.
 */
#ifndef WEFT_MULTI_H
#define WEFT_MULTI_H

#include "base.h"
#include "loop.h"
#include "op.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_multi weft_multi;

/* res: accept: the new fd (non-blocking, close-on-exec); recv: the byte count
 * of the chunk at buf (release buf when done with it), 0 at end of stream
 * (last call); or a negative error (last call). buf is NULL except for recv
 * data. */
typedef void (*weft_multi_cb)(weft_multi *m, int64_t res, void *buf, int more);

struct weft_multi {
    weft_multi_cb cb;
    void *data; /* the caller's, untouched by weft */
    /* Private to weft. */
    int fd_;
    uint8_t kind_;
    uint8_t state_;
    uint8_t cancel_;
    uint8_t single_; /* io_uring: the kernel refused multishot accept */
    weft__link link_;
    weft_op op_;       /* readiness backends: parked like an op */
    weft_handle kick_; /* readiness backends: first look, resume, last call */
    int64_t final_;    /* readiness backends: the result of the last call */
#ifdef _WIN32
    /* IOCP (backends/iocp_multi.c): the loop's list of running requests,
     * the accept slots with the system, how many requests it holds, the
     * socket's generation. */
    weft__link win_link_;
    void *win_slots_;
    uint32_t win_gen_;
    uint32_t win_nout_;
#endif
};

/* Give the loop `count` receive buffers of `size` bytes each (count a power
 * of two, at most 32768), for weft_recv_multi. Once per loop; the loop owns
 * and frees them. Chunks are packed: each recv goes where the one before it
 * (on any connection) ended, so a 64-byte message takes 64 bytes, and a
 * buffer is filled again once every chunk of it is released. io_uring packs
 * where the kernel can (IOU_PBUF_RING_INC, Linux 6.12;
 * weft_loop_backend_info() says "recv buffers packed"); before, each recv
 * takes a whole buffer. A recv never spans two buffers: a message longer
 * than the room left arrives in several chunks, each its own callback (and,
 * echoed, its own send), so buffers much larger than the messages cost
 * fewer system calls (bench/RESULTS.md, the multishot peer). Recvs go to
 * the most recently freed buffers first, so a large pool costs memory but
 * not cache misses (io_uring: weft_loop_backend_info() says how many of
 * them the kernel's ring holds; it grows when a burst needs more). A pool
 * of 2 MiB or more is advised for transparent huge pages where the system
 * has them (Linux), since the kernel copies every byte into it; its
 * resident memory then grows in 2 MiB steps. Errors: -EINVAL, -EBUSY
 * (already done), -ENOMEM. */
int weft_loop_buffers_setup(weft_loop *loop, unsigned count, unsigned size);

/* Give back a chunk a weft_recv_multi callback received (its buf). Release
 * each chunk once: a second release of the same chunk is ignored only while
 * no other chunk of its buffer is out. Releasing what is not in a loop
 * buffer is ignored. Returns 0 or -EINVAL. */
int weft_loop_buffer_release(weft_loop *loop, void *buf);

/* Accept every connection on the listening socket fd, one callback each,
 * until cancelled or an error. Errors: -EINVAL (NULL loop, m or cb),
 * -EBADF (fd < 0), -EBUSY (m is running), -ENOMEM. */
int weft_accept_multi(weft_loop *loop, weft_multi *m, int fd, weft_multi_cb cb, void *data);

/* Receive on fd into the loop's buffers, one callback per chunk, until end
 * of stream, an error or a cancel. When every buffer is out the recv pauses,
 * and resumes by itself once one is released. Errors as weft_accept_multi,
 * plus -ENOBUFS (weft_loop_buffers_setup was not called). */
int weft_recv_multi(weft_loop *loop, weft_multi *m, int fd, weft_multi_cb cb, void *data);

/* Stop m: its last callback follows (-ECANCELED, or whatever ended it
 * first). Errors: -EINVAL, -EALREADY (not running, or already stopping). */
int weft_multi_cancel(weft_loop *loop, weft_multi *m);

/* Nonzero while m runs (started, last callback not yet made). */
int weft_multi_active(const weft_multi *m);

#ifdef __cplusplus
}
#endif
#endif
