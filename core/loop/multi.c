/* Multishot operations (weft/multi.h): argument checks and bookkeeping;
 * the backend does the work. */
#include "loop_internal.h"

#include <errno.h>
#include <string.h>

static int start(weft_loop *loop, weft_multi *m, int fd, weft_multi_cb cb, void *data, uint8_t kind)
{
    if (!loop || !m || !cb)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (m->state != 0 && m->cb)
        return -EBUSY;
    weft_backend *be = loop->backend;
    if (!be->vt->multi_start)
        return -EOPNOTSUPP;
    memset(m, 0, sizeof *m);
    m->cb = cb;
    m->data = data;
    m->fd = fd;
    m->kind = kind;
    int rc = be->vt->multi_start(be, m);
    if (rc == 0)
        loop->ops_inflight++; /* until its last callback */
    else
        m->state = 0;
    return rc;
}

int weft_accept_multi(weft_loop *loop, weft_multi *m, int fd, weft_multi_cb cb, void *data)
{
    return start(loop, m, fd, cb, data, WEFT_MULTI_ACCEPT);
}

int weft_recv_multi(weft_loop *loop, weft_multi *m, int fd, weft_multi_cb cb, void *data)
{
    return start(loop, m, fd, cb, data, WEFT_MULTI_RECV);
}

int weft_multi_cancel(weft_loop *loop, weft_multi *m)
{
    if (!loop || !m)
        return -EINVAL;
    if (m->state == 0 || m->cancel)
        return -EALREADY;
    return loop->backend->vt->multi_cancel(loop->backend, m);
}

int weft_multi_active(const weft_multi *m)
{
    return m && m->state != 0;
}

int weft_loop_buffers_setup(weft_loop *loop, unsigned count, unsigned size)
{
    if (!loop || !count || count > 32768 || (count & (count - 1)) || !size)
        return -EINVAL;
    weft_backend *be = loop->backend;
    return be->vt->bufs_setup ? be->vt->bufs_setup(be, count, size) : -EOPNOTSUPP;
}

int weft_loop_buffer_release(weft_loop *loop, void *buf)
{
    if (!loop || !buf)
        return -EINVAL;
    weft_backend *be = loop->backend;
    if (be->vt->buf_owned && be->vt->buf_owned(be, buf))
        be->vt->buf_put(be, buf);
    return 0;
}

void weft__multi_event(weft_loop *loop, weft_multi *m, int64_t res, void *buf, int more)
{
    if (!more) {
        m->state = 0;
        loop->ops_inflight--;
    }
    m->cb(m, res, buf, more); /* may reuse or free m when more == 0 */
}
