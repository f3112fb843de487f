/* libFuzzer target: the HTTP request parser and session (examples/http_*.c).
 *
 * The input is fed twice: in one piece, and in chunks whose sizes come from
 * the input's first bytes. Both must give the same responses and consume
 * the same bytes (the parser is incremental, not order-sensitive), and the
 * parser must never read past the bytes it is given (ASan checks: every
 * chunk is an exactly sized heap copy).
 */
#include "http_parser.h"
#include "http_response.h"
#include "http_session.h"
#include "tight_buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEAD 512
#define IN_CAP 4096
#define OUT_CAP (1 << 16)

typedef struct run {
    http_session s;
    char *in;
    size_t have;
    char out[OUT_CAP];
    size_t out_len;
} run;

static http_responses resp;

/* Feed n more bytes; what is not consumed stays at the front of r->in. */
static void feed(run *r, const uint8_t *data, size_t n)
{
    if (r->s.closing)
        return;
    if (r->have + n > IN_CAP) /* a server's buffer is bounded too */
        n = IN_CAP - r->have;
    tight_append(&r->in, &r->have, data, n);
    size_t off = 0;
    int more;
    do {
        char out[1024];
        size_t out_len = 0;
        off += http_session_feed(&r->s, &resp, r->in + off, r->have - off, out, &out_len,
                                 sizeof out, &more);
        if (off > r->have || out_len > sizeof out)
            __builtin_trap();
        if (r->out_len + out_len > OUT_CAP)
            __builtin_trap();
        memcpy(r->out + r->out_len, out, out_len);
        r->out_len += out_len;
    } while (more);
    tight_consume(&r->in, &r->have, off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_responses_update(&resp, 784111777);
    if (size < 1)
        return 0;
    unsigned seed = data[0];
    data++;
    size--;
    if (size > IN_CAP) /* both runs then see every byte */
        size = IN_CAP;

    static run whole, split;
    http_session_init(&whole.s, MAX_HEAD);
    whole.in = NULL;
    whole.have = whole.out_len = 0;
    feed(&whole, data, size);

    http_session_init(&split.s, MAX_HEAD);
    split.in = NULL;
    split.have = split.out_len = 0;
    size_t pos = 0, k = 0;
    while (pos < size) {
        size_t chunk = 1 + ((seed + k * 7) % 13) * ((k % 3) + 1);
        if (chunk > size - pos)
            chunk = size - pos;
        feed(&split, data + pos, chunk);
        pos += chunk;
        k++;
    }
    if (split.out_len != whole.out_len || memcmp(split.out, whole.out, whole.out_len) != 0)
        __builtin_trap();
    if (split.s.closing != whole.s.closing || split.s.requests != whole.s.requests)
        __builtin_trap();
    free(whole.in);
    free(split.in);

    /* The bare parser on the raw input (no blank-line or body handling). */
    char *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    http_parser p;
    http_parser_init(&p, MAX_HEAD);
    http_request q;
    long rc = http_parse_request(&p, b, size, &q);
    if (rc > 0) {
        if ((size_t)rc > size || q.method < b || q.method + q.method_len > b + rc ||
            q.target + q.target_len > b + rc || q.nheaders > HTTP_MAX_HEADERS)
            __builtin_trap();
        for (uint32_t i = 0; i < q.nheaders; i++)
            if (q.headers[i].value + q.headers[i].value_len > b + rc)
                __builtin_trap();
    }
    free(b);
    return 0;
}
