/* libFuzzer target for the stream reader (net/stream.c): the input is a
 * read limit, a script of reads (readline, readuntil "\r\n", readexactly,
 * read) and a payload that arrives through a socketpair. Whatever the
 * script, every byte handed out must be the payload's next byte, in order,
 * no record may be longer than the limit, and nothing may crash or leak. */
#include "weft.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    weft_loop *loop;
    const uint8_t *script, *payload;
    size_t nscript, npayload, limit;
    int fd;
} job;

/* The bytes the stream hands out must be exactly the payload, in order. */
static void expect(const job *j, size_t *off, const void *got, int64_t n)
{
    if (n < 0)
        return;
    if (*off + (size_t)n > j->npayload || memcmp(j->payload + *off, got, (size_t)n) != 0)
        abort();
    *off += (size_t)n;
}

static int reader(void *arg, intptr_t *result)
{
    job *j = arg;
    weft_stream_opts o = {.read_limit = j->limit};
    weft_stream *s;
    int rc = weft_stream_new(j->loop, j->fd, &o, &s);
    if (rc < 0)
        return rc;
    size_t off = 0;
    char buf[256];
    const char *rec;
    for (size_t step = 0; step < 4 * j->nscript + 8; step++) {
        uint8_t op = j->nscript ? j->script[step % j->nscript] : 0;
        size_t n = (size_t)(op >> 2) + 1;
        int64_t got;
        switch (op & 3) {
        case 0:
            got = weft_stream_readline(s, &rec);
            if (got > 0 && (size_t)got > j->limit)
                abort();
            if (got > 0)
                expect(j, &off, rec, got);
            break;
        case 1:
            got = weft_stream_readuntil(s, "\r\n", 2, &rec);
            if (got > 0 && ((size_t)got > j->limit || memcmp(rec + got - 2, "\r\n", 2) != 0))
                abort();
            if (got > 0)
                expect(j, &off, rec, got);
            break;
        case 2:
            got = weft_stream_readexactly(s, buf, n);
            if (got >= 0 && (size_t)got != n)
                abort();
            expect(j, &off, buf, got);
            break;
        default:
            got = weft_stream_read(s, buf, n);
            if (got > (int64_t)n)
                abort();
            expect(j, &off, buf, got);
        }
        if (got == 0 || got == -ENODATA)
            break; /* the end (a partial record may be lost with it) */
        if (got < 0 && got != -EMSGSIZE)
            abort(); /* nothing else can fail on a healthy socketpair */
    }
    *result = (intptr_t)off;
    return weft_stream_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static weft_loop *loop;
    if (!loop && weft_loop_new(NULL, &loop) < 0)
        abort();
    if (size < 2)
        return 0;
    job j = {.loop = loop, .limit = (size_t)16 << (data[0] % 8)};
    j.nscript = data[1] % 32 < size - 2 ? data[1] % 32 : size - 2;
    j.script = data + 2;
    j.payload = data + 2 + j.nscript;
    j.npayload = size - 2 - j.nscript;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    /* Small inputs fit the socket buffer: all of it is there, then EOF. */
    if (j.npayload && write(sv[1], j.payload, j.npayload) != (ssize_t)j.npayload)
        abort();
    shutdown(sv[1], SHUT_WR);
    j.fd = sv[0];
    weft_future *t;
    if (weft_task_spawn(loop, reader, &j, &t) < 0)
        abort();
    intptr_t consumed = 0;
    if (weft_run_until_complete(loop, t, &consumed) < 0)
        abort();
    weft_future_unref(t);
    close(sv[1]);
    return 0;
}
