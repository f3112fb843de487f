/* One HTTP connection's protocol state, without I/O: bytes in, responses
 * out. The http_server reads into a buffer, calls http_session_feed(),
 * writes what it produced in one send, and keeps the unconsumed rest for
 * the next read. Tests and the fuzzer drive the same code.
 */
#ifndef HTTP_SESSION_H
#define HTTP_SESSION_H

#include "http_parser.h"
#include "http_response.h"

#include <stddef.h>
#include <stdint.h>

/* Room one response needs in the output buffer. */
#define HTTP_SESSION_RESPONSE_MAX 512

typedef struct http_session {
    http_parser parser;
    http_request req;   /* the request being answered (scratch) */
    uint64_t body_left; /* bytes of a request body still to skip */
    int closing;        /* the last response closes the connection: read no more */
    uint64_t requests;  /* answered so far */
} http_session;

/* Set up s; max_head 0 means HTTP_DEFAULT_MAX_HEAD. */
void http_session_init(http_session *s, uint32_t max_head);

/* Consume requests from in[0..len), appending a response for each to
 * out[*out_len..out_cap). Returns the bytes consumed. It stops when the rest
 * is an incomplete request (read more, keep the rest in front of it), when
 * the output has less than HTTP_SESSION_RESPONSE_MAX room left (*more is set:
 * flush, then call again with the rest), or when s->closing is set (flush and
 * close; input after that is ignored). */
size_t http_session_feed(http_session *s, const http_responses *r, const char *in, size_t len,
                         char *out, size_t *out_len, size_t out_cap, int *more);

#endif
