/* I/O operations: one completion-based model on every backend.
 *
 * A weft_op is memory owned by the caller (no allocation per operation).
 * Prepare it with a weft_op_prep_*() helper, submit it, and its callback
 * runs on the loop thread once it completes, with op->result holding the
 * byte count / new fd / 0, or a negative error. The op and its buffer must
 * stay valid and untouched from submit until the callback starts, also
 * after weft_op_cancel(): the kernel may still be writing into the buffer.
 * Completion callbacks never run from inside weft_op_submit().
 *
 * File descriptors used with ops must be non-blocking on readiness backends
 * (epoll, kqueue, poll) and closed with a WEFT_OP_CLOSE op (or announced
 * with weft_loop_forget_fd() before a plain close()), so the loop can drop
 * what it registered for that fd.
 */
#ifndef WEFT_OP_H
#define WEFT_OP_H

#include "base.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum weft_opcode {
    WEFT_OP_NONE = 0,
    WEFT_OP_POLL_IN,  /* wait until fd is readable; result: 0 */
    WEFT_OP_POLL_OUT, /* wait until fd is writable; result: 0 */
    WEFT_OP_ACCEPT,   /* accept a connection; result: the new fd (non-blocking, close-on-exec) */
    WEFT_OP_RECV,     /* receive up to len bytes; result: bytes (0 = end of stream) */
    WEFT_OP_SEND,     /* send up to len bytes; result: bytes sent (may be short) */
    WEFT_OP_CONNECT,  /* connect a non-blocking socket; result: 0 */
    WEFT_OP_CLOSE,    /* close fd; ops parked on it complete with -ECANCELED; result: 0 */
    WEFT_OP__COUNT
} weft_opcode;

typedef struct weft_op weft_op;

/* Completion callback; op->result holds the outcome, op->data is yours. */
typedef void (*weft_op_cb)(weft_op *op);

struct weft_op {
    /* Set by the caller (the prep helpers do it). */
    uint8_t opcode;
    int fd;
    void *buf;  /* recv/send: data; accept: where the peer address goes (may be NULL); connect: the
                   address */
    size_t len; /* recv/send: bytes; accept: room at buf; connect: address length */
    int flags;  /* recv/send: MSG_* flags */
    weft_op_cb cb;
    void *data; /* the caller's, untouched by weft */
    /* Set by weft. */
    int64_t result;   /* >= 0 success (see the opcode), < 0 an error code */
    uint32_t addrlen; /* accept: the length of the peer address written to buf */
    /* Private to weft. */
    uint8_t state_;
    uint8_t opflags_; /* WEFT__OPFLAG_* */
    uint16_t pad_;
    weft__link link_; /* the loop's completion list or a backend's wait list */
    void *backend_;
#ifdef _WIN32
    /* IOCP (backends/iocp.c): the OVERLAPPED and what its call needs. */
    union {
        unsigned char bytes_[96];
        void *align_;
        uint64_t align64_;
    } win_;
#endif
};

/* Prepare op (all earlier content is overwritten). None of them fail. */
void weft_op_prep_poll_in(weft_op *op, int fd, weft_op_cb cb, void *data);
void weft_op_prep_poll_out(weft_op *op, int fd, weft_op_cb cb, void *data);
void weft_op_prep_accept(weft_op *op, int fd, void *addr, size_t addr_room, weft_op_cb cb,
                         void *data);
void weft_op_prep_recv(weft_op *op, int fd, void *buf, size_t len, int flags, weft_op_cb cb,
                       void *data);
void weft_op_prep_send(weft_op *op, int fd, const void *buf, size_t len, int flags, weft_op_cb cb,
                       void *data);
void weft_op_prep_connect(weft_op *op, int fd, const void *addr, size_t addr_len, weft_op_cb cb,
                          void *data);
void weft_op_prep_close(weft_op *op, int fd, weft_op_cb cb, void *data);

/* Start op on loop. Returns 0 (the callback will run exactly once), or
 * -EINVAL (NULL loop/op/callback, unknown opcode), -EBADF (negative fd),
 * -EBUSY (op is already in flight). Errors of the operation itself (closed
 * fd, reset peer, refused connect) arrive in op->result. */
int weft_op_submit(weft_loop *loop, weft_op *op);

/* Ask for an in-flight op to stop. The callback still runs exactly once:
 * with -ECANCELED, or with the op's real result if it finished first.
 * Returns 0 when the cancel was started, -EALREADY when the op has already
 * completed or a cancel is already under way, -EINVAL when op is NULL or
 * not in flight on this loop. */
int weft_op_cancel(weft_loop *loop, weft_op *op);

/* Nonzero while op is in flight (submitted, callback not yet started). */
int weft_op_pending(const weft_op *op);

/* Tell the loop that fd is about to be closed by the caller (not through a
 * WEFT_OP_CLOSE op): ops parked on it complete with -ECANCELED and the
 * backend forgets the fd. Returns 0 or -EINVAL / -EBADF. */
int weft_loop_forget_fd(weft_loop *loop, int fd);

#ifdef __cplusplus
}
#endif
#endif
