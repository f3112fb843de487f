/* Multishot requests of the io_uring backend: private for now.
 *
 * One request, many completions: a multishot accept gives a new fd per
 * connection, a multishot recv gives data in buffers the loop owns (a
 * provided-buffer ring) which the callback hands back. This does not fit
 * the one-op-one-callback model of weft_op, so it lives here until the
 * loop grows a way to queue repeated completions (see the report in
 * backends/uring.c's history); the callbacks run from inside the backend's
 * poll(), i.e. during weft_loop_run(), on the loop's thread.
 *
 * All functions return 0 or a negative error; -EOPNOTSUPP when the loop
 * does not run on io_uring.
 */
#ifndef WEFT_URING_H
#define WEFT_URING_H

#include "backend.h"

typedef struct weft_uring_multi weft_uring_multi;

/* res: accept: the new fd (non-blocking, close-on-exec); recv: bytes in
 * buf (give buf back with weft__uring_buf_put), 0 at end of stream; or a
 * negative error. more == 0 on the last call for m, after which m is idle
 * and may be freed or started again. */
typedef void (*weft_uring_multi_cb)(weft_uring_multi *m, int res, void *buf, int more);

struct weft_uring_multi {
    weft_uring_multi_cb cb;
    void *data; /* the caller's */
    /* Private. */
    int fd;
    uint8_t kind;
    uint8_t state;
    uint8_t cancel;
    uint8_t single;  /* the kernel refused multishot: one accept per SQE */
    weft_link_ link; /* the list of recvs waiting for buffers */
};

/* Accept every connection on listening socket fd until cancelled or an
 * error. Falls back to re-armed single-shot accepts on kernels without
 * multishot accept. */
int weft__uring_accept_multi(weft_loop *loop, weft_uring_multi *m, int fd, weft_uring_multi_cb cb,
                             void *data);

/* Give the loop `count` buffers of `size` bytes (count a power of two, at
 * most 32768) for multishot recvs. Once per loop. */
int weft__uring_bufs_setup(weft_loop *loop, unsigned count, unsigned size);

/* Receive on fd into loop-owned buffers until cancelled, end of stream or
 * an error. When the buffers run out (the kernel says -ENOBUFS) the recv
 * pauses and resumes by itself once a buffer is given back. */
int weft__uring_recv_multi(weft_loop *loop, weft_uring_multi *m, int fd, weft_uring_multi_cb cb,
                           void *data);

/* Give a buffer from a recv callback back to the loop. */
void weft__uring_buf_put(weft_loop *loop, void *buf);

/* Stop m: its last callback comes with more == 0 (-ECANCELED, or whatever
 * ended it first). -EALREADY when it is not running or already stopping. */
int weft__uring_multi_cancel(weft_loop *loop, weft_uring_multi *m);

#endif
