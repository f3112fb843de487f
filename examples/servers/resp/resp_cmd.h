/* The resp_server's commands: PING, ECHO, SET, GET, DEL, EXISTS, INCR (and
 * the few a client asks on connect: COMMAND, CONFIG GET, QUIT, DBSIZE,
 * FLUSHALL), run against a resp_db, each appending its RESP reply to an
 * output buffer, with redis's error messages.
 */
#ifndef RESP_CMD_H
#define RESP_CMD_H

#include "resp_db.h"
#include "resp_parser.h"

#include <stddef.h>

/* A growable output buffer, kept per connection: it grows (doubling) and is
 * reused, so replies cost no allocation once it is big enough. */
typedef struct resp_out {
    char *buf;
    size_t len, cap;
} resp_out;

/* Make room for n more bytes. 0 or -ENOMEM. */
int resp_out_reserve(resp_out *o, size_t n);

/* Append bytes (0 or -ENOMEM). */
int resp_out_put(resp_out *o, const char *s, size_t n);

/* Free the buffer. */
void resp_out_free(resp_out *o);

/* What resp_exec() asks of the connection. */
enum { RESP_EXEC_OK = 0, RESP_EXEC_CLOSE = 1 /* QUIT: close after the reply */ };

/* Run the command argv[0..argc) (argc >= 1) and append its reply to out.
 * Returns RESP_EXEC_OK, RESP_EXEC_CLOSE, or -ENOMEM (out could not grow;
 * the reply may be partial and the connection should close). */
int resp_exec(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out);

#endif
