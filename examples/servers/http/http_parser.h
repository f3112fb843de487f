/* An incremental HTTP/1.x request-head parser. Pure C, no I/O, no
 * allocation: the request line and headers become slices into the caller's
 * buffer.
 *
 * The caller keeps the bytes received in one buffer and calls
 * http_parse_request() with everything not consumed yet; the parser first
 * looks for the end of the head (an empty line), remembering how far it
 * searched, so a head arriving in many pieces costs linear time. Then it
 * parses the whole head in one pass. What follows the head (a body of
 * content_length bytes) is the caller's to consume or skip.
 *
 * Accepted: "METHOD SP target SP HTTP/d.d" with CRLF or bare LF line ends,
 * empty lines before a request line, field names that are tokens followed
 * directly by ':'. Rejected (400): anything else, including bare CR,
 * whitespace before ':', obsolete line folding, control bytes, a bad or
 * repeated-but-different Content-Length, Content-Length with
 * Transfer-Encoding, a missing or repeated Host in HTTP/1.1.
 */
#ifndef HTTP_PARSER_H
#define HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_header {
    const char *name;
    const char *value; /* leading and trailing blanks trimmed */
    uint32_t name_len, value_len;
} http_header;

#define HTTP_MAX_HEADERS 64
#define HTTP_DEFAULT_MAX_HEAD 8192

typedef struct http_request {
    const char *method, *target;
    uint32_t method_len, target_len;
    int minor;              /* HTTP/1.<minor> */
    int keep_alive;         /* after the Connection header and the version's default */
    int chunked;            /* Transfer-Encoding: chunked */
    int64_t content_length; /* -1 when absent */
    uint32_t nheaders;
    http_header headers[HTTP_MAX_HEADERS];
} http_request;

/* Results: > 0 is the length of a complete head. */
enum {
    HTTP_INCOMPLETE = 0,
    HTTP_E_BAD = -400,       /* malformed: answer 400 and close */
    HTTP_E_TOO_LARGE = -431, /* head over the limit or too many headers */
    HTTP_E_NOT_IMPL = -501,  /* a transfer coding we do not take */
    HTTP_E_VERSION = -505,   /* HTTP major version other than 1 */
};

typedef struct http_parser {
    uint32_t max_head; /* bytes of request line + headers (HTTP_DEFAULT_MAX_HEAD) */
    uint32_t scan_;    /* private: bytes already searched for the head's end */
} http_parser;

/* Set up p. max_head 0 means HTTP_DEFAULT_MAX_HEAD. */
void http_parser_init(http_parser *p, uint32_t max_head);

/* Parse the head at the start of buf[0..len). Returns the head's length
 * (request line, headers and the empty line; the body starts there) with
 * *req filled, HTTP_INCOMPLETE (call again with the same bytes, possibly
 * moved, followed by more), or an HTTP_E_* error (-status). buf must start
 * where the previous request (head and body) ended. */
long http_parse_request(http_parser *p, const char *buf, size_t len, http_request *req);

/* The value of the first header named `name` (case-insensitive), or NULL. */
const http_header *http_find_header(const http_request *req, const char *name);

#endif
