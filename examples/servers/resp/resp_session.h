/* One RESP connection's protocol state, without I/O: bytes in, replies
 * out. The resp_server reads into a buffer, calls resp_session_feed(),
 * writes the replies of the whole batch in one send, and keeps the
 * unconsumed rest for the next read. Tests and the fuzzer drive the same
 * code.
 */
#ifndef RESP_SESSION_H
#define RESP_SESSION_H

#include "resp_cmd.h"
#include "resp_db.h"
#include "resp_parser.h"

#include <stddef.h>
#include <stdint.h>

#define RESP_SESSION_MAX_ARGS 512

typedef struct resp_session {
    resp_parser parser;
    int closing;       /* a protocol error or QUIT: flush and close, read no more */
    uint64_t commands; /* commands parsed (empty ones included) */
    resp_arg argv[RESP_SESSION_MAX_ARGS];
} resp_session;

/* Set up s; lim may be NULL for the defaults (max_args RESP_SESSION_MAX_ARGS). */
void resp_session_init(resp_session *s, const resp_limits *lim);

/* Run the commands in in[0..len) against db, appending replies to out.
 * Returns the bytes consumed. Stops when the rest is an incomplete command
 * (read more, keep the rest in front), when out holds more than out_soft_max
 * bytes (*more is set: flush, then call again with the rest), or when
 * s->closing gets set (after a protocol error's reply, or QUIT's). Arguments
 * quoted in inline commands are unescaped in place (in is not const). */
size_t resp_session_feed(resp_session *s, resp_db *db, char *in, size_t len, resp_out *out,
                         size_t out_soft_max, int *more);

#endif
