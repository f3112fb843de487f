/* Streams: asyncio's StreamReader and StreamWriter over one descriptor.
 *
 * Buffers are allocated at first use and grow by doubling up to their
 * limits (asyncio's limits are caps, not preallocations): an idle
 * connection holds no buffer, and a few hundred bytes in all. The read
 * buffer is allocated only once the descriptor first becomes readable
 * (the first receive waits for readiness), so a task parked on a silent
 * peer owns nothing but its struct. Growth happens at most log2(limit /
 * 4 KiB) times per stream, never per operation.
 *
 * Reading: the read buffer [rstart, rend) is filled by a recv op the
 * reading task awaits (kept in the stream). Records handed out in place
 * stay valid until the next call; the buffer is compacted (memmove to the
 * front) only when it must take more.
 *
 * Writing: bytes are copied into the write buffer [wstart, wend) and a
 * background send op (a plain callback op owned by the stream) pushes them
 * out while the task goes on. A write of 8 KiB or more on an empty buffer,
 * or one larger than the buffer's limit, is sent from the caller's memory
 * instead, the task awaiting the same op (no copy). Tasks that must wait (no room, drain, flush)
 * sleep on an event that every send completion sets. A failed send sticks:
 * every later write returns its error.
 *
 * Closing is synchronous: the loop forgets the fd (which also stops an
 * in-flight send on every backend), the fd is closed, and the memory is
 * freed at once, or by the send's completion when one was in flight. */
#include "sys/bigbuf.h"
#include "sys/fault.h"
#include "net_internal.h"
#include "stream_tls.h"
#include "weft/sync.h"

#include <stdlib.h>
#include <string.h>

struct weft_stream {
    weft_loop *loop;
    int fd;
    /* read side */
    char *rbuf;         /* NULL until the first receive */
    size_t rcap, rsize; /* the limit, and what is allocated */
    size_t rstart, rend;
    size_t scanned; /* readuntil: bytes from rstart already searched */
    int rfilled;    /* the last receive filled all the room it was given */
    int eof, rerr, reading;
    weft_op rop;
    /* write side */
    char *wbuf;     /* NULL until the first write */
    char *wretired; /* the buffer an in-flight send reads, after a growth */
    size_t wretired_size;
    size_t wcap, wsize; /* the limit, and what is allocated */
    size_t wstart, wend, high, low;
    int sending, werr, writing;
    int wdirect; /* the writing task awaits wop itself (send_direct) */
    weft_op wop;
    weft_event wev;
    int closing;
    /* deadlines: one timer, armed when a wait starts and not already due
     * sooner, re-armed from its callback; never cancelled per operation */
    uint64_t idle_ns;      /* longest wait for the peer (0: none) */
    uint64_t deadline;     /* absolute, loop clock (0: none) */
    uint64_t rwait, wwait; /* when the current read / write wait began */
    int rtimedout, wtimedout;
    weft_handle timer;
    /* a server's connection: reclaimable at its connection limit */
    weft__reclaim *rec;
    weft__link rlink;
    int reclaimable, reclaimed; /* reclaimed: every wait times out */
    /* TLS (net/tls.c): NULL on a plain stream. With it, the read path's
     * receives go through the TLS layer (ciphertext in, plaintext out) and
     * the write buffer holds ciphertext (weft_stream_write encrypts). */
    weft__tls *tls;
};

/* The first allocation of a buffer; later ones double it. */
#define FIRST_BUF 4096

static void stream_free(weft_stream *s)
{
    if (s->tls)
        weft__tls_free(s->tls);
    weft__bigbuf_cache *c = weft__loop_bigbufs(s->loop);
    weft__bigbuf_free(c, s->rbuf, s->rsize);
    weft__bigbuf_free(c, s->wbuf, s->wsize);
    weft__bigbuf_free(c, s->wretired, s->wretired_size);
    free(s);
}

/* Grow *buf (now *size bytes) to hold at least `need`, doubling, at most
 * `limit`; the contents are kept. 0, or -ENOMEM (the buffer unchanged).
 * Large buffers are mapped pages (sys/bigbuf.h): a closed connection's
 * go to the loop's capped cache or back to the system, not into malloc's
 * heap. */
static int grow(weft_stream *s, char **buf, size_t *size, size_t need, size_t limit)
{
    size_t n = *size ? *size : FIRST_BUF;
    while (n < need && n < limit)
        n *= 2;
    if (n > limit)
        n = limit;
    if (n <= *size)
        return 0;
    char *p = weft__bigbuf_resize(weft__loop_bigbufs(s->loop), *buf, *size, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *size = n;
    return 0;
}

/* Grow the write buffer to hold `need` bytes (at most its cap). A send in
 * flight points into the old buffer: that one is kept until the send
 * completes (on_sent frees it), the data continues in the copy. */
static int grow_wbuf(weft_stream *s, size_t need)
{
    if (!s->sending)
        return grow(s, &s->wbuf, &s->wsize, need, s->wcap);
    char *copy = NULL;
    size_t size = s->wsize;
    int rc = grow(s, &copy, &size, need, s->wcap);
    if (rc || !copy)
        return rc;
    memcpy(copy, s->wbuf, s->wend);
    if (s->wretired) { /* then this one is not the one the send reads from */
        weft__bigbuf_free(weft__loop_bigbufs(s->loop), s->wbuf, s->wsize);
    } else {
        s->wretired = s->wbuf;
        s->wretired_size = s->wsize;
    }
    s->wbuf = copy;
    s->wsize = size;
    return 0;
}

static size_t wbuffered(const weft_stream *s)
{
    return s->wend - s->wstart;
}

static void on_sent(weft_op *op);

/* Start the background send if there is something to send. */
static void kick(weft_stream *s)
{
    if (s->sending || s->werr || s->closing || s->wend == s->wstart)
        return;
    weft_op_prep_send(&s->wop, s->fd, s->wbuf + s->wstart, s->wend - s->wstart, NET_MSG_NOSIGNAL,
                      on_sent, s);
    int rc = weft_op_submit(s->loop, &s->wop);
    if (rc) {
        s->werr = rc;
        weft_event_set(&s->wev);
        return;
    }
    s->sending = 1;
}

static void on_sent(weft_op *op)
{
    weft_stream *s = op->data;
    s->sending = 0;
    if (s->wretired) { /* a buffer replaced while this send used it */
        weft__bigbuf_free(weft__loop_bigbufs(s->loop), s->wretired, s->wretired_size);
        s->wretired = NULL;
    }
    if (s->closing) {
        stream_free(s); /* closed while this send was in flight */
        return;
    }
    if (op->result < 0) {
        s->werr = (int)op->result;
    } else {
        s->wstart += (size_t)op->result;
        if (s->wstart == s->wend) {
            s->wstart = s->wend = 0;
        } else if (s->wend - s->wstart <= s->wstart) {
            /* Move the rest to the front when that copies less than what
             * was just sent (amortised O(1) per byte). */
            memmove(s->wbuf, s->wbuf + s->wstart, s->wend - s->wstart);
            s->wend -= s->wstart;
            s->wstart = 0;
        }
        kick(s);
    }
    if (s->writing) /* only wait_sent waits on wev, and it sets writing first */
        weft_event_set(&s->wev);
}

int weft_stream_new(weft_loop *loop, int fd, const weft_stream_opts *opts, weft_stream **out)
{
    if (!loop || fd < 0 || !out) {
        if (loop && fd >= 0)
            weft_close(loop, fd);
        return -EINVAL;
    }
    weft_stream_opts o = opts ? *opts : (weft_stream_opts){0};
    if (!o.read_limit)
        o.read_limit = WEFT_STREAM_DEFAULT_LIMIT;
    if (!o.write_high)
        o.write_high = o.write_limit ? o.write_limit / 2 : WEFT_STREAM_DEFAULT_LIMIT;
    if (!o.write_high)
        o.write_high = 1;
    if (!o.write_limit)
        o.write_limit = o.write_high * 2;
    if (!opts || !opts->write_low)
        o.write_low = o.write_high / 4;
    const size_t max = (size_t)1 << 40;
    if (o.write_low > o.write_high || o.write_high > o.write_limit || o.read_limit > max ||
        o.write_limit > max) {
        weft_close(loop, fd);
        return -EINVAL;
    }
    weft_stream *s = WEFT__CALLOC(1, sizeof *s);
    if (!s) {
        weft_close(loop, fd);
        return -ENOMEM;
    }
    s->loop = loop;
    s->fd = fd;
    s->rcap = o.read_limit;
    s->wcap = o.write_limit;
    s->high = o.write_high;
    s->low = o.write_low;
    weft_event_init(&s->wev, loop);
    *out = s;
    return 0;
}

int weft_open_connection(weft_loop *loop, const weft_addr *addr, const weft_stream_opts *opts,
                         int64_t timeout_ns, weft_stream **out)
{
    if (!loop || !addr || !out)
        return -EINVAL;
    int fd = weft_connect(loop, addr, timeout_ns);
    if (fd < 0)
        return fd;
    return weft_stream_new(loop, fd, opts, out);
}

int weft_stream_close(weft_stream *s)
{
    if (!s || s->closing)
        return -EINVAL;
    s->closing = 1;
    if (s->reclaimable)
        weft__list_remove(&s->rec->list, &s->rlink);
    if (weft_handle_pending(&s->timer))
        weft_handle_cancel(s->loop, &s->timer);
    /* The loop forgets the fd first: a parked background send completes
     * with -ECANCELED (io_uring: its cancel is issued before the close). */
    weft_loop_forget_fd(s->loop, s->fd);
    weft__sock_close(s->fd);
    if (s->sending)
        weft_op_cancel(s->loop, &s->wop); /* on_sent frees the stream */
    else
        stream_free(s);
    return 0;
}

int weft_stream_fd(const weft_stream *s)
{
    return s ? s->fd : -EINVAL;
}

weft_loop *weft_stream_loop(const weft_stream *s)
{
    return s ? s->loop : NULL;
}

/* --- deadlines --- */

/* When a wait that began at `start` times out (UINT64_MAX: never). */
static uint64_t expiry(const weft_stream *s, uint64_t start)
{
    if (s->reclaimed)
        return 0; /* due already */
    uint64_t e = s->idle_ns ? start + s->idle_ns : UINT64_MAX;
    if (s->deadline && s->deadline < e)
        e = s->deadline;
    return e;
}

/* The earliest expiry of the waits in progress. */
static uint64_t next_expiry(const weft_stream *s)
{
    uint64_t e = UINT64_MAX, w;
    if (s->reading && !s->rtimedout && (w = expiry(s, s->rwait)) < e)
        e = w;
    if (s->writing && !s->wtimedout && (w = expiry(s, s->wwait)) < e)
        e = w;
    return e;
}

static void on_timer(void *arg);

/* Make sure the timer fires no later than the next expiry. A timer due
 * sooner is left alone (it re-arms itself), so steady traffic costs one
 * timer per idle period, not one per operation. 0 or -ENOMEM. */
static int arm(weft_stream *s)
{
    uint64_t e = next_expiry(s);
    if (e == UINT64_MAX)
        return 0;
    if (weft_handle_pending(&s->timer)) {
        if (weft_handle_when(&s->timer) <= e)
            return 0;
        weft_handle_cancel(s->loop, &s->timer);
    }
    return weft_call_at(s->loop, &s->timer, e, on_timer, s);
}

/* arm(), skipped when no wait of the stream can expire (no timeout, no
 * deadline: the common case, once per read). */
static inline int arm_if_timed(weft_stream *s)
{
    return s->idle_ns || s->deadline || s->reclaimed ? arm(s) : 0;
}

static void on_timer(void *arg)
{
    weft_stream *s = arg;
    uint64_t now = weft_loop_now(s->loop);
    if (s->reading && !s->rtimedout && expiry(s, s->rwait) <= now) {
        s->rtimedout = 1;
        weft_op_cancel(s->loop, &s->rop); /* the read gets -ECANCELED: -ETIMEDOUT */
    }
    if (s->writing && !s->wtimedout && expiry(s, s->wwait) <= now) {
        s->wtimedout = 1;
        if (s->wdirect)
            weft_op_cancel(s->loop, &s->wop); /* the send gets -ECANCELED: -ETIMEDOUT */
        else
            weft_event_set(&s->wev);
    }
    arm(s);
}

int weft_stream_set_timeout(weft_stream *s, int64_t timeout_ns)
{
    if (!s || s->closing)
        return -EINVAL;
    s->idle_ns = timeout_ns > 0 ? (uint64_t)timeout_ns : 0;
    return arm(s);
}

int weft_stream_set_deadline(weft_stream *s, int64_t timeout_ns)
{
    if (!s || s->closing)
        return -EINVAL;
    if (timeout_ns < 0)
        s->deadline = 0;
    else
        s->deadline = weft_loop_now(s->loop) + (uint64_t)timeout_ns + 1; /* never 0 */
    return arm(s);
}

/* --- reclaiming (a server at its connection limit) --- */

void weft__stream_attach_reclaim(weft_stream *s, weft__reclaim *r)
{
    s->rec = r;
}

/* Every wait, the ones in progress too, times out from now on. */
static void reclaim(weft_stream *s)
{
    if (s->reclaimable)
        weft__list_remove(&s->rec->list, &s->rlink);
    s->reclaimable = 0;
    s->reclaimed = 1;
    on_timer(s);
}

int weft__reclaim_oldest(weft__reclaim *r)
{
    if (weft__list_empty(&r->list))
        return 0;
    reclaim(weft__container_of(r->list.first, weft_stream, rlink));
    return 1;
}

int weft_stream_set_reclaimable(weft_stream *s, int on)
{
    if (!s || s->closing)
        return -EINVAL;
    if (!s->rec || s->reclaimed || !on == !s->reclaimable)
        return 0;
    if (!on) {
        weft__list_remove(&s->rec->list, &s->rlink);
        s->reclaimable = 0;
    } else if (s->rec->wanted) {
        s->rec->wanted = 0;
        reclaim(s);
    } else {
        weft__list_push(&s->rec->list, &s->rlink);
        s->reclaimable = 1;
    }
    return 0;
}

/* Await the read op under the stream's deadlines. */
static int64_t await_read(weft_stream *s)
{
    s->reading = 1;
    s->rtimedout = 0;
    s->rwait = weft_loop_now(s->loop);
    int rc = arm_if_timed(s);
    if (rc) {
        s->reading = 0;
        return rc;
    }
    int64_t n = weft_await_op(s->loop, &s->rop);
    s->reading = 0;
    if (n == -ECANCELED && s->rtimedout)
        n = -ETIMEDOUT;
    s->rtimedout = 0;
    return n;
}

/* --- reading --- */

/* Common checks of the reading calls. */
static int read_enter(weft_stream *s)
{
    if (!s || s->closing)
        return -EINVAL;
    if (!weft__in_task(s->loop))
        return -EPERM;
    if (s->reading)
        return -EBUSY;
    return 0;
}

int64_t weft__stream_recv_raw(weft_stream *s, void *buf, size_t len)
{
    weft_op_prep_recv(&s->rop, s->fd, buf, len, 0, NULL, NULL);
    return await_read(s);
}

/* One receive into buf (TLS: plaintext); records end of stream and
 * lasting errors. */
static int64_t recv_into(weft_stream *s, void *buf, size_t len)
{
    int64_t n = s->tls ? weft__tls_recv(s, s->tls, buf, len) : weft__stream_recv_raw(s, buf, len);
    if (n == 0) {
        s->eof = 1;
    } else if (n < 0 && n != -ECANCELED && n != -EAGAIN && n != -EINTR && n != -ETIMEDOUT &&
               n != -ENOMEM) {
        s->eof = 1;
        s->rerr = (int)n;
    }
    return n;
}

/* The first receive: wait until the descriptor is readable, then
 * allocate the buffer, so that a connection that never speaks costs none.
 * 0, or what the wait returned (-ECANCELED, ...), or -ENOMEM. */
static int first_buffer(weft_stream *s)
{
    /* TLS may hold plaintext already (it came with the handshake). */
    if (!s->tls || !weft__tls_pending(s->tls)) {
        weft_op_prep_poll_in(&s->rop, s->fd, NULL, NULL);
        int64_t r = await_read(s);
        if (r < 0)
            return (int)r;
    }
    return grow(s, &s->rbuf, &s->rsize, FIRST_BUF, s->rcap);
}

/* Receive once into the free end of the read buffer, compacting or
 * growing it first when it is full. Bytes received, 0 at end of stream,
 * -EMSGSIZE when full at the limit, or an error. */
static int64_t fill(weft_stream *s)
{
    if (s->eof)
        return s->rerr;
    if (!s->rbuf) {
        int rc = first_buffer(s);
        if (rc)
            return rc;
    }
    if (s->rstart == s->rend)
        s->rstart = s->rend = 0;
    if (s->rend == s->rsize && s->rstart > 0) {
        memmove(s->rbuf, s->rbuf + s->rstart, s->rend - s->rstart);
        s->rend -= s->rstart;
        s->rstart = 0;
    }
    /* Grow (double) when the last receive filled all the room it had,
     * which says the peer sends more at once than fits, or when less than
     * half is free after compacting: rather than receive in small pieces. */
    if ((s->rfilled || s->rsize - s->rend < s->rsize / 2) &&
        grow(s, &s->rbuf, &s->rsize, s->rsize + 1, s->rcap))
        return -ENOMEM;
    if (s->rend == s->rsize)
        return -EMSGSIZE;
    size_t room = s->rsize - s->rend;
    int64_t n = recv_into(s, s->rbuf + s->rend, room);
    s->rfilled = n > 0 && (size_t)n == room;
    if (n > 0)
        s->rend += (size_t)n;
    return n;
}

/* Move up to n buffered bytes to buf; the count. */
static size_t take(weft_stream *s, void *buf, size_t n)
{
    size_t have = s->rend - s->rstart;
    if (n > have)
        n = have;
    if (n) {
        memcpy(buf, s->rbuf + s->rstart, n);
        s->rstart += n;
        s->scanned = 0;
    }
    return n;
}

int64_t weft_stream_read(weft_stream *s, void *buf, size_t n)
{
    int rc = read_enter(s);
    if (rc)
        return rc;
    if ((!buf && n) || n > INT64_MAX)
        return -EINVAL;
    if (n == 0)
        return 0;
    if (s->rend > s->rstart)
        return (int64_t)take(s, buf, n);
    if (s->eof)
        return s->rerr;
    if (n >= s->rcap)
        return recv_into(s, buf, n); /* large reads bypass the buffer */
    int64_t got = fill(s);
    if (got <= 0)
        return got;
    return (int64_t)take(s, buf, n);
}

int64_t weft_stream_readexactly(weft_stream *s, void *buf, size_t n)
{
    int rc = read_enter(s);
    if (rc)
        return rc;
    if ((!buf && n) || n > INT64_MAX)
        return -EINVAL;
    char *p = buf;
    size_t got = take(s, p, n);
    while (got < n) {
        if (s->eof)
            return s->rerr ? s->rerr : -ENODATA;
        size_t left = n - got;
        int64_t r;
        if (left >= s->rcap / 2) {
            r = recv_into(s, p + got, left);
            if (r > 0)
                got += (size_t)r;
        } else {
            r = fill(s);
            if (r > 0)
                got += take(s, p + got, left);
        }
        if (r == 0)
            return -ENODATA;
        if (r < 0)
            return r;
    }
    return (int64_t)n;
}

/* Search the buffered bytes for delim, resuming where the last search
 * stopped. The offset from rstart just past the delimiter, or 0. */
static size_t find_delim(weft_stream *s, const char *delim, size_t dlen)
{
    size_t have = s->rend - s->rstart;
    if (!have)
        return 0;
    size_t from = s->scanned >= dlen ? s->scanned - dlen + 1 : 0;
    const char *base = s->rbuf + s->rstart;
    while (from + dlen <= have) {
        const char *hit = memchr(base + from, delim[0], have - from - dlen + 1);
        if (!hit)
            break;
        size_t at = (size_t)(hit - base);
        if (memcmp(hit, delim, dlen) == 0)
            return at + dlen;
        from = at + 1;
    }
    s->scanned = have;
    return 0;
}

int64_t weft_stream_readuntil(weft_stream *s, const void *delim, size_t dlen, const char **out)
{
    int rc = read_enter(s);
    if (rc)
        return rc;
    if (!delim || !dlen || !out || dlen > s->rcap)
        return -EINVAL;
    for (;;) {
        size_t end = find_delim(s, delim, dlen);
        if (end) {
            *out = s->rbuf + s->rstart;
            s->rstart += end;
            s->scanned = 0;
            return (int64_t)end;
        }
        if (s->rend - s->rstart >= s->rcap)
            return -EMSGSIZE;
        if (s->eof)
            return s->rend > s->rstart ? -ENODATA : s->rerr;
        int64_t n = fill(s);
        if (n == -EMSGSIZE || n < 0)
            return n;
        if (n == 0)
            return s->rend > s->rstart ? -ENODATA : 0;
    }
}

int64_t weft_stream_readline(weft_stream *s, const char **out)
{
    int64_t n = weft_stream_readuntil(s, "\n", 1, out);
    if (n == -ENODATA && s->rerr == 0) {
        /* The last line has no newline: hand it out as it is. */
        *out = s->rbuf + s->rstart;
        n = (int64_t)(s->rend - s->rstart);
        s->rstart = s->rend;
        s->scanned = 0;
    }
    return n;
}

const char *weft_stream_peek(const weft_stream *s, size_t *len)
{
    if (!s) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = s->rend - s->rstart;
    return s->rbuf ? s->rbuf + s->rstart : "";
}

int weft_stream_consume(weft_stream *s, size_t n)
{
    if (!s || n > s->rend - s->rstart)
        return -EINVAL;
    s->rstart += n;
    s->scanned = 0;
    return 0;
}

int64_t weft_stream_fill(weft_stream *s)
{
    int rc = read_enter(s);
    if (rc)
        return rc;
    s->scanned = 0;
    return fill(s);
}

int weft_stream_at_eof(const weft_stream *s)
{
    return s ? s->eof : 0;
}

/* --- writing --- */

static int write_enter(weft_stream *s)
{
    if (!s || s->closing)
        return -EINVAL;
    if (!weft__in_task(s->loop))
        return -EPERM;
    if (s->writing)
        return -EBUSY;
    return s->werr;
}

/* A write wait begins: the stream's deadlines start to count for it.
 * 0, or arm()'s error (the wait must not start). */
static int write_wait_begin(weft_stream *s)
{
    s->writing = 1;
    s->wtimedout = 0;
    s->wwait = weft_loop_now(s->loop);
    return arm_if_timed(s);
}

/* The wait has ended: rc, or -ETIMEDOUT when the timer ended it (it sets
 * wev for wait_sent, which then sees 0; it cancels send_direct's op). */
static int64_t write_wait_end(weft_stream *s, int64_t rc)
{
    if (s->wtimedout && rc == (s->wdirect ? -ECANCELED : 0))
        rc = -ETIMEDOUT;
    s->writing = 0;
    s->wdirect = 0;
    s->wtimedout = 0;
    return rc;
}

/* Wait for the next send completion (or a write error). */
static int wait_sent(weft_stream *s)
{
    weft_event_clear(&s->wev);
    int rc = write_wait_begin(s);
    if (!rc)
        rc = weft_event_wait(&s->wev);
    return (int)write_wait_end(s, rc);
}

/* Wait until at most `level` bytes are buffered. */
static int wait_level(weft_stream *s, size_t level)
{
    while (!s->werr && (wbuffered(s) > level || (level == 0 && s->sending))) {
        kick(s);
        int rc = wait_sent(s);
        if (rc)
            return rc;
    }
    return s->werr;
}

/* weft__stream_wroom, inlined into weft_stream_write (once per write). */
static inline int64_t wroom(weft_stream *s, size_t want, int may_wait, char **at)
{
    for (;;) {
        if (!s->sending && s->wstart > 0) {
            memmove(s->wbuf, s->wbuf + s->wstart, s->wend - s->wstart);
            s->wend -= s->wstart;
            s->wstart = 0;
        }
        /* When growing fails, wait for room as at the limit. */
        if (s->wsize - s->wend < want && grow_wbuf(s, s->wend + want) && !s->wbuf)
            return -ENOMEM;
        size_t room = s->wsize - s->wend;
        if (room || !may_wait) {
            *at = s->wbuf + s->wend;
            return (int64_t)room;
        }
        kick(s);
        if (s->werr)
            return s->werr;
        int rc = wait_sent(s);
        if (rc)
            return rc;
        if (s->werr)
            return s->werr;
    }
}

static inline int wcommit(weft_stream *s, size_t n)
{
    s->wend += n;
    kick(s);
    return s->werr;
}

int64_t weft__stream_wroom(weft_stream *s, size_t want, int may_wait, char **at)
{
    return wroom(s, want, may_wait, at);
}

int weft__stream_wcommit(weft_stream *s, size_t n)
{
    return wcommit(s, n);
}

/* Send p[0, n) straight from the caller's memory, the task waiting for it
 * under the stream's deadlines; the buffer is empty and no send is in
 * flight. n, or an error (lasting, but for -ETIMEDOUT and -ECANCELED). */
static int64_t send_direct(weft_stream *s, const char *p, size_t n)
{
    s->wdirect = 1;
    int64_t r = write_wait_begin(s);
    for (size_t done = 0; r == 0 && done < n;) {
        weft_op_prep_send(&s->wop, s->fd, p + done, n - done, NET_MSG_NOSIGNAL, NULL, NULL);
        r = weft_await_op(s->loop, &s->wop);
        if (r < 0 && r != -ECANCELED)
            s->werr = (int)r;
        if (r > 0) {
            done += (size_t)r;
            r = 0;
        }
    }
    r = write_wait_end(s, r);
    return r < 0 ? r : (int64_t)n;
}

/* Writes of at least this many bytes on an empty buffer skip the copy:
 * one loop turn of waiting costs less than copying them. */
#define DIRECT_MIN 8192

int64_t weft_stream_write(weft_stream *s, const void *buf, size_t n)
{
    int rc = write_enter(s);
    if (rc)
        return rc;
    if ((!buf && n) || n > INT64_MAX)
        return -EINVAL;
    if (s->tls)
        return weft__tls_write(s, s->tls, buf, n);
    const char *p = buf;
    size_t left = n;
    if (n >= s->wcap || (n >= DIRECT_MIN && !s->sending && wbuffered(s) == 0)) {
        /* Larger than the buffer, or large with nothing queued: send what
         * is queued, then straight from the caller's memory. */
        rc = wait_level(s, 0);
        return rc ? rc : send_direct(s, p, n);
    }
    while (left) {
        char *at = NULL; /* set by wroom whenever it returns >= 0 */
        int64_t room = wroom(s, left, 1, &at);
        if (room < 0)
            return room;
        size_t k = left < (size_t)room ? left : (size_t)room;
        memcpy(at, p, k);
        p += k;
        left -= k;
        rc = wcommit(s, k);
        if (rc)
            return rc;
    }
    return (int64_t)n;
}

int weft_stream_drain(weft_stream *s)
{
    int rc = write_enter(s);
    if (!rc && s->tls)
        rc = weft__tls_pump(s, s->tls); /* what a timed-out write left in TLS */
    if (rc)
        return rc;
    if (wbuffered(s) <= s->high)
        return 0;
    return wait_level(s, s->low);
}

int weft_stream_flush(weft_stream *s)
{
    int rc = write_enter(s);
    if (!rc && s->tls)
        rc = weft__tls_pump(s, s->tls);
    if (rc)
        return rc;
    return wait_level(s, 0);
}

int weft_stream_write_eof(weft_stream *s)
{
    int rc = write_enter(s);
    if (!rc && s->tls)
        rc = weft__tls_close_notify(s, s->tls);
    if (!rc)
        rc = weft_stream_flush(s);
    if (rc)
        return rc;
    return weft_shutdown(s->fd, SHUT_WR);
}

size_t weft_stream_write_buffered(const weft_stream *s)
{
    return s ? wbuffered(s) : 0;
}

/* --- lingering close --- */

int weft_stream_linger(weft_stream *s, int64_t timeout_ns, size_t max_bytes)
{
    if (!s || s->closing || timeout_ns < 0)
        return -EINVAL;
    if (!weft__in_task(s->loop))
        return -EPERM;
    int rc = weft_stream_set_deadline(s, timeout_ns);
    if (!rc)
        rc = weft_stream_write_eof(s);
    size_t seen = 0;
    while (!rc) {
        seen += s->rend - s->rstart;
        s->rstart = s->rend = 0; /* discard */
        s->scanned = 0;
        if (seen >= max_bytes) {
            rc = -EFBIG;
            break;
        }
        int64_t n = weft_stream_fill(s);
        if (n == 0)
            break; /* the peer ended: it has read what we sent */
        if (n < 0)
            rc = (int)n;
    }
    return rc;
}

int weft_stream_linger_close(weft_stream *s, int64_t timeout_ns, size_t max_bytes)
{
    if (!s || s->closing)
        return -EINVAL;
    int rc = timeout_ns < 0 ? -EINVAL : weft_stream_linger(s, timeout_ns, max_bytes);
    weft_stream_close(s);
    return rc;
}

/* --- the TLS layer's view (stream_tls.h) --- */

int weft__stream_attach_tls(weft_stream *s, weft__tls *t)
{
    if (!s || s->closing || s->tls)
        return -EINVAL;
    if (!weft__in_task(s->loop))
        return -EPERM;
    if (s->reading || s->writing)
        return -EBUSY;
    if (s->eof)
        return s->rerr ? s->rerr : -ENOTCONN;
    s->tls = t;
    return 0;
}

weft__tls *weft__stream_tls(const weft_stream *s)
{
    return s ? s->tls : NULL;
}

const char *weft__stream_take_buffered(weft_stream *s, size_t *len)
{
    const char *p = s->rbuf ? s->rbuf + s->rstart : "";
    *len = s->rend - s->rstart;
    s->rstart = s->rend = 0;
    s->scanned = 0;
    return p;
}

uint64_t weft__stream_swap_deadline(weft_stream *s, uint64_t deadline)
{
    uint64_t old = s->deadline;
    s->deadline = deadline;
    arm(s);
    return old;
}

int weft__stream_flush_raw(weft_stream *s)
{
    return wait_level(s, 0);
}
