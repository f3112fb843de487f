/* One RESP connection's protocol state: see resp_session.h. */
#include "resp_session.h"

#include <string.h>

void resp_session_init(resp_session *s, const resp_limits *lim)
{
    s->closing = 0;
    s->commands = 0;
    resp_parser_init(&s->parser, s->argv, RESP_SESSION_MAX_ARGS, lim);
}

size_t resp_session_feed(resp_session *s, resp_db *db, char *in, size_t len, resp_out *out,
                         size_t out_soft_max, int *more)
{
    size_t off = 0;
    *more = 0;
    while (!s->closing && off < len) {
        if (out->len > out_soft_max) {
            *more = 1;
            break;
        }
        uint32_t argc;
        long used = resp_parse(&s->parser, in + off, len - off, &argc);
        if (used == RESP_INCOMPLETE)
            break;
        if (used < 0) {
            const char *e = resp_strerror(used);
            if (resp_out_put(out, e, strlen(e)) < 0)
                out->len = 0; /* no room even for the error: just close */
            s->closing = 1;
            break;
        }
        off += (size_t)used;
        s->commands++;
        if (argc == 0)
            continue;
        int rc = resp_exec(db, s->argv, argc, out);
        if (rc != RESP_EXEC_OK)
            s->closing = 1; /* QUIT, or out of memory */
    }
    return off;
}
