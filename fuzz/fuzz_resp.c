/* libFuzzer target: the RESP parser, the commands and the keyspace
 * (examples/resp_*.c).
 *
 * The input is fed twice, each time to a fresh keyspace: in one piece, and
 * in chunks whose sizes come from the input's first byte. Both must give the
 * same replies (the parser is incremental and the commands deterministic),
 * and nothing may read past the bytes given (every chunk is an exactly sized
 * heap copy, for ASan).
 */
#include "resp_cmd.h"
#include "resp_db.h"
#include "resp_parser.h"
#include "resp_session.h"
#include "tight_buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IN_CAP (1 << 16)

typedef struct run {
    resp_session s;
    resp_db db;
    resp_out out;
    char *in;
    size_t have;
} run;

static const resp_limits lim = {.max_args = 64, .max_bulk = 4096, .max_inline = 1024};

static void run_init(run *r)
{
    resp_session_init(&r->s, &lim);
    if (resp_db_init(&r->db) < 0)
        abort();
    memset(&r->out, 0, sizeof r->out);
    r->in = NULL;
    r->have = 0;
}

static void run_free(run *r)
{
    resp_db_free(&r->db);
    resp_out_free(&r->out);
    free(r->in);
}

static void feed(run *r, const uint8_t *data, size_t n)
{
    if (r->s.closing)
        return;
    if (r->have + n > IN_CAP)
        n = IN_CAP - r->have;
    tight_append(&r->in, &r->have, data, n);
    size_t off = 0;
    int more;
    do {
        off += resp_session_feed(&r->s, &r->db, r->in + off, r->have - off, &r->out,
                                 r->out.len + 256, &more);
        if (off > r->have)
            __builtin_trap();
    } while (more);
    tight_consume(&r->in, &r->have, off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned seed = data[0];
    data++;
    size--;
    if (size > IN_CAP) /* both runs then see every byte */
        size = IN_CAP;

    static run whole, split;
    run_init(&whole);
    feed(&whole, data, size);

    run_init(&split);
    size_t pos = 0, k = 0;
    while (pos < size) {
        size_t chunk = 1 + ((seed + k * 5) % 11) * ((k % 4) + 1);
        if (chunk > size - pos)
            chunk = size - pos;
        feed(&split, data + pos, chunk);
        pos += chunk;
        k++;
    }
    if (split.out.len != whole.out.len ||
        (whole.out.len && memcmp(split.out.buf, whole.out.buf, whole.out.len) != 0))
        __builtin_trap();
    if (split.s.closing != whole.s.closing || split.s.commands != whole.s.commands ||
        split.db.count != whole.db.count)
        __builtin_trap();
    run_free(&whole);
    run_free(&split);
    return 0;
}
