/* Multishot operations (weft/multi.h): argument checks and bookkeeping;
 * the backend does the work. */
#include "loop_internal.h"
#include "sys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MQ_MIN = 64 };

/* Make room for one more posted result. Grows by doubling, so the queue
 * allocates only while it reaches its high-water mark. */
static int mq_reserve(weft_loop *loop, uint32_t want)
{
    if (want <= loop->mq_cap)
        return 0;
    uint32_t cap = loop->mq_cap ? loop->mq_cap : MQ_MIN;
    while (cap < want) {
        if (cap > UINT32_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    weft__multi_ev *v = malloc((size_t)cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    for (uint32_t i = 0; i < loop->mq_len; i++) /* unwrap the old ring */
        v[i] = loop->mq[(loop->mq_head + i) & (loop->mq_cap - 1)];
    free(loop->mq);
    loop->mq = v;
    loop->mq_head = 0;
    loop->mq_cap = cap;
    return 0;
}

static int start(weft_loop *loop, weft_multi *m, int fd, weft_multi_cb cb, void *data, uint8_t kind)
{
    if (!loop || !m || !cb)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (m->state_ != 0 && m->cb)
        return -EBUSY;
    weft__backend *be = loop->backend;
    if (!be->vt->multi_start)
        return -EOPNOTSUPP;
    /* The queue posted results wait in: its first slots now, so a
     * backend rarely has to grow it while it polls. */
    int rc = mq_reserve(loop, MQ_MIN);
    if (rc)
        return rc;
    memset(m, 0, sizeof *m);
    m->cb = cb;
    m->data = data;
    m->fd_ = fd;
    m->kind_ = kind;
    rc = be->vt->multi_start(be, m);
    if (rc == 0)
        loop->ops_inflight++; /* until its last callback */
    else
        m->state_ = 0;
    return rc;
}

int weft_accept_multi(weft_loop *loop, weft_multi *m, int fd, weft_multi_cb cb, void *data)
{
    return start(loop, m, fd, cb, data, WEFT__MULTI_ACCEPT);
}

int weft_recv_multi(weft_loop *loop, weft_multi *m, int fd, weft_multi_cb cb, void *data)
{
    return start(loop, m, fd, cb, data, WEFT__MULTI_RECV);
}

int weft_multi_cancel(weft_loop *loop, weft_multi *m)
{
    if (!loop || !m)
        return -EINVAL;
    if (m->state_ == 0 || m->cancel_)
        return -EALREADY;
    return loop->backend->vt->multi_cancel(loop->backend, m);
}

int weft_multi_active(const weft_multi *m)
{
    return m && m->state_ != 0;
}

int weft_loop_buffers_setup(weft_loop *loop, unsigned count, unsigned size)
{
    if (!loop || !count || count > 32768 || (count & (count - 1)) || !size)
        return -EINVAL;
    weft__backend *be = loop->backend;
    return be->vt->bufs_setup ? be->vt->bufs_setup(be, count, size) : -EOPNOTSUPP;
}

int weft_loop_buffer_release(weft_loop *loop, void *buf)
{
    if (!loop || !buf)
        return -EINVAL;
    weft__backend *be = loop->backend;
    if (be->vt->buf_put)
        be->vt->buf_put(be, buf);
    return 0;
}

void weft__multi_event(weft_loop *loop, weft_multi *m, int64_t res, void *buf, int more)
{
    if (!more) {
        m->state_ = 0;
        loop->ops_inflight--;
    }
    m->cb(m, res, buf, more); /* may reuse or free m when more == 0 */
}

/* The callback phase: hand over the results queued when it was scheduled;
 * what their callbacks post waits for the next phase. */
static void deliver(void *arg)
{
    weft_loop *loop = arg;
    for (uint32_t n = loop->mq_len; n; n--) {
        weft__multi_ev ev = loop->mq[loop->mq_head];
        loop->mq_head = (loop->mq_head + 1) & (loop->mq_cap - 1);
        loop->mq_len--;
        weft__multi_event(loop, ev.m, ev.res, ev.buf, ev.more);
    }
}

void weft__multi_post(weft_loop *loop, weft_multi *m, int64_t res, void *buf, int more)
{
    if (mq_reserve(loop, loop->mq_len + 1)) {
        /* Out of memory with the queue at its high-water mark: deliver now
         * rather than lose the result (the only way a multishot callback
         * can run inside a backend's poll). */
        weft__multi_event(loop, m, res, buf, more);
        return;
    }
    loop->mq[(loop->mq_head + loop->mq_len) & (loop->mq_cap - 1)] =
        (weft__multi_ev){.m = m, .res = res, .buf = buf, .more = more};
    loop->mq_len++;
    if (!weft_handle_pending(&loop->mq_deliver))
        weft_call_soon(loop, &loop->mq_deliver, deliver, loop);
}

void weft__multi_queue_free(weft_loop *loop)
{
    for (; loop->mq_len; loop->mq_len--) {
        weft__multi_ev *ev = &loop->mq[loop->mq_head];
        loop->mq_head = (loop->mq_head + 1) & (loop->mq_cap - 1);
        if (ev->m->kind_ == WEFT__MULTI_ACCEPT && ev->res >= 0)
            weft__sock_close((int)ev->res); /* nobody will take it */
        ev->m->state_ = 0;
    }
    free(loop->mq);
    loop->mq = NULL;
    loop->mq_cap = 0;
}
