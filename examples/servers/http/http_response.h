/* The http_server's responses: "Hello, World!" as TechEmpower's plaintext
 * test wants it (Server, Content-Type, Content-Length and a Date header),
 * and the error responses. The three variants of the hello response are
 * kept prebuilt, with the date, and rebuilt once a second, so answering a
 * request is one memcpy.
 */
#ifndef HTTP_RESPONSE_H
#define HTTP_RESPONSE_H

#include <stddef.h>
#include <time.h>

/* How the connection goes on after the response. */
typedef enum http_conn {
    HTTP_CONN_DEFAULT = 0, /* HTTP/1.1 keep-alive: no Connection header */
    HTTP_CONN_KEEP,        /* HTTP/1.0 that asked for keep-alive */
    HTTP_CONN_CLOSE,       /* Connection: close */
    HTTP_CONN__COUNT
} http_conn;

#define HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */
#define HTTP_HELLO_MAX 192

typedef struct http_responses {
    time_t when;
    char date[HTTP_DATE_LEN + 1];
    char hello[HTTP_CONN__COUNT][HTTP_HELLO_MAX];
    size_t hello_len[HTTP_CONN__COUNT];
} http_responses;

/* Write the IMF-fixdate of t (UTC) into out (HTTP_DATE_LEN bytes + NUL). */
void http_format_date(time_t t, char out[HTTP_DATE_LEN + 1]);

/* Rebuild the responses for time t (does nothing if t is the time they
 * were built for). */
void http_responses_update(http_responses *r, time_t t);

/* The hello response for this connection mode; head != 0 leaves out the
 * body (HEAD). Stores its length in *len. */
const char *http_hello(const http_responses *r, http_conn mode, int head, size_t *len);

/* Write an error response (status 400, 431, 501, 505, with Connection:
 * close) into dst (room for at least 256 bytes); returns its length. */
size_t http_error_response(const http_responses *r, int status, char *dst, size_t room);

#endif
