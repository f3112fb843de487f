/* One HTTP connection's protocol state: see http_session.h. */
#include "http_session.h"

#include <string.h>

void http_session_init(http_session *s, uint32_t max_head)
{
    memset(s, 0, sizeof *s);
    http_parser_init(&s->parser, max_head);
}

static int is_head(const http_request *q)
{
    return q->method_len == 4 && memcmp(q->method, "HEAD", 4) == 0;
}

size_t http_session_feed(http_session *s, const http_responses *r, const char *in, size_t len,
                         char *out, size_t *out_len, size_t out_cap, int *more)
{
    size_t off = 0;
    *more = 0;
    while (!s->closing) {
        if (s->body_left) {
            size_t skip = len - off < s->body_left ? len - off : (size_t)s->body_left;
            off += skip;
            s->body_left -= skip;
            if (s->body_left)
                break;
        }
        if (off == len)
            break;
        if (out_cap - *out_len < HTTP_SESSION_RESPONSE_MAX) {
            *more = 1;
            break;
        }
        long used = http_parse_request(&s->parser, in + off, len - off, &s->req);
        if (used == HTTP_INCOMPLETE)
            break;
        if (used < 0) {
            *out_len += http_error_response(r, (int)-used, out + *out_len, out_cap - *out_len);
            s->closing = 1;
            break;
        }
        off += (size_t)used;
        s->requests++;
        if (s->req.chunked) { /* bodies in chunks are not taken */
            *out_len += http_error_response(r, 501, out + *out_len, out_cap - *out_len);
            s->closing = 1;
            break;
        }
        if (s->req.content_length > 0)
            s->body_left = (uint64_t)s->req.content_length;
        http_conn mode = HTTP_CONN_CLOSE;
        if (s->req.keep_alive)
            mode = s->req.minor >= 1 ? HTTP_CONN_DEFAULT : HTTP_CONN_KEEP;
        size_t n;
        const char *resp = http_hello(r, mode, is_head(&s->req), &n);
        memcpy(out + *out_len, resp, n);
        *out_len += n;
        if (mode == HTTP_CONN_CLOSE)
            s->closing = 1;
    }
    return off;
}
