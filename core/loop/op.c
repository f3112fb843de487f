/* Operations: preparing, submitting and cancelling them, and queueing
 * their completions. The backend does the I/O (backends/). */
#include "loop_internal.h"

#include <errno.h>
#include <string.h>

static void prep(weft_op *op, uint8_t opcode, int fd, void *buf, size_t len, int flags,
                 weft_op_cb cb, void *data)
{
    /* Field by field, not memset + stores: gcc -O3 made the memset of
     * these 88 bytes a `rep stos`, microcoded and slow to start for so
     * few (bench/RESULTS.md "issue 17"). Padding is left as it was. */
    op->opcode = opcode;
    op->fd = fd;
    op->buf = buf;
    op->len = len;
    op->flags = flags;
    op->cb = cb;
    op->data = data;
    op->result = 0;
    op->addrlen = 0;
    op->state_ = 0;
    op->opflags_ = 0;
    op->pad_ = 0;
    op->link_.next = NULL;
    op->link_.prev = NULL;
    op->backend_ = NULL;
#ifdef _WIN32
    memset(&op->win_, 0, sizeof op->win_);
#endif
}

void weft_op_prep_poll_in(weft_op *op, int fd, weft_op_cb cb, void *data)
{
    prep(op, WEFT_OP_POLL_IN, fd, NULL, 0, 0, cb, data);
}

void weft_op_prep_poll_out(weft_op *op, int fd, weft_op_cb cb, void *data)
{
    prep(op, WEFT_OP_POLL_OUT, fd, NULL, 0, 0, cb, data);
}

void weft_op_prep_accept(weft_op *op, int fd, void *addr, size_t addr_room, weft_op_cb cb,
                         void *data)
{
    prep(op, WEFT_OP_ACCEPT, fd, addr, addr ? addr_room : 0, 0, cb, data);
}

void weft_op_prep_recv(weft_op *op, int fd, void *buf, size_t len, int flags, weft_op_cb cb,
                       void *data)
{
    prep(op, WEFT_OP_RECV, fd, buf, len, flags, cb, data);
}

void weft_op_prep_send(weft_op *op, int fd, const void *buf, size_t len, int flags, weft_op_cb cb,
                       void *data)
{
    prep(op, WEFT_OP_SEND, fd, (void *)buf, len, flags, cb, data);
}

void weft_op_prep_connect(weft_op *op, int fd, const void *addr, size_t addr_len, weft_op_cb cb,
                          void *data)
{
    prep(op, WEFT_OP_CONNECT, fd, (void *)addr, addr_len, 0, cb, data);
}

void weft_op_prep_close(weft_op *op, int fd, weft_op_cb cb, void *data)
{
    prep(op, WEFT_OP_CLOSE, fd, NULL, 0, 0, cb, data);
}

int weft_op_submit(weft_loop *loop, weft_op *op)
{
    /* One unsigned compare covers NONE and past-the-end opcodes. */
    if (!loop || !op || !op->cb || (unsigned)op->opcode - 1u >= WEFT_OP__COUNT - 1u)
        return -EINVAL;
    if (op->state_ != WEFT__OPSTATE_IDLE)
        return -EBUSY;
    if (op->fd < 0)
        return -EBADF;
    if (!op->buf && (op->opcode == WEFT_OP_CONNECT ||
                     ((op->opcode == WEFT_OP_RECV || op->opcode == WEFT_OP_SEND) && op->len)))
        return -EINVAL;
    op->state_ = WEFT__OPSTATE_INFLIGHT;
    op->opflags_ = 0;
    op->result = 0;
    op->addrlen = 0;
    loop->ops_inflight++;
    /* A tail call: a backend that refuses op undoes the two lines above
     * (weft__op_refused). */
    return loop->backend->vt->submit(loop->backend, op);
}

int weft__op_submit_inline(weft_loop *loop, weft_op *op)
{
    int rc = weft_op_submit(loop, op);
    if (rc || op->state_ != WEFT__OPSTATE_DONE)
        return rc;
    weft__list_remove(&loop->done_ops, &op->link_);
    op->state_ = WEFT__OPSTATE_IDLE;
    loop->ops_inflight--;
    return 1;
}

int weft_op_cancel(weft_loop *loop, weft_op *op)
{
    if (!loop || !op)
        return -EINVAL;
    if (op->state_ == WEFT__OPSTATE_IDLE)
        return -EINVAL;
    if (op->state_ == WEFT__OPSTATE_DONE) {
        /* A late op's read is still to come: marked, it ends cancelled
         * rather than go back in flight when it finds nothing (vt->late). */
        if (op->opflags_ & WEFT__OPFLAG_LATE)
            op->opflags_ |= WEFT__OPFLAG_CANCEL;
        return -EALREADY;
    }
    if (op->opflags_ & WEFT__OPFLAG_CANCEL)
        return -EALREADY;
    op->opflags_ |= WEFT__OPFLAG_CANCEL;
    return loop->backend->vt->cancel(loop->backend, op);
}

int weft_op_pending(const weft_op *op)
{
    return op && op->state_ != WEFT__OPSTATE_IDLE;
}

int weft_loop_forget_fd(weft_loop *loop, int fd)
{
    if (!loop)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    return loop->backend->vt->forget_fd(loop->backend, fd);
}
