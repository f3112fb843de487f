/* The HTTP/1.x request-head parser: see http_parser.h. */
#include "http_parser.h"

#include <string.h>

/* Byte classes: C_TCHAR (token), C_TARGET (visible ASCII), C_VALUE (VCHAR,
 * SP, HTAB, obs-text). */
enum { C_TCHAR = 1, C_TARGET = 2, C_VALUE = 4 };

static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6,
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

void http_parser_init(http_parser *p, uint32_t max_head)
{
    p->max_head = max_head ? max_head : HTTP_DEFAULT_MAX_HEAD;
    p->scan_ = 0;
}

static int lower_eq(const char *s, size_t n, const char *lower)
{
    size_t i = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != lower[i]) /* also stops at lower's NUL */
            return 0;
    }
    return lower[i] == 0;
}

const http_header *http_find_header(const http_request *req, const char *name)
{
    char low[64];
    size_t n = strlen(name);
    if (n >= sizeof low)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    for (uint32_t i = 0; i < req->nheaders; i++)
        if (lower_eq(req->headers[i].name, req->headers[i].name_len, low))
            return &req->headers[i];
    return NULL;
}

/* Skip blank lines (CRLF or LF) before a request line. Returns how many
 * bytes, or -1 when the last byte is a CR that may start one more. */
static long skip_blank_lines(const char *buf, size_t len)
{
    size_t k = 0;
    for (;;) {
        if (k < len && buf[k] == '\n') {
            k++;
        } else if (k < len && buf[k] == '\r') {
            if (k + 1 == len)
                return -1;
            if (buf[k + 1] != '\n')
                return (long)k; /* a bare CR: the head parse rejects it */
            k += 2;
        } else {
            return (long)k;
        }
    }
}

/* The end of a line starting at s (the index of its LF), with the line's
 * content length in *n (without CR). The head buf[..end) ends with an LF. */
static size_t line_end(const char *buf, size_t s, size_t end, size_t *n)
{
    const char *nl = memchr(buf + s, '\n', end - s);
    size_t e = (size_t)(nl - buf);
    *n = e - s;
    if (*n && buf[e - 1] == '\r')
        (*n)--;
    return e;
}

static long parse_uint(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        v = v * 10 + (int64_t)d;
    }
    *out = v;
    return 0;
}

/* Connection: a comma-separated list of tokens. */
static void scan_connection(const char *v, size_t n, int *close, int *keep)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (lower_eq(v + s, i - s, "close"))
            *close = 1;
        else if (lower_eq(v + s, i - s, "keep-alive"))
            *keep = 1;
    }
}

/* Parse the head buf[start..end) (it ends with the LF of its empty line). */
static long parse_head(const char *buf, size_t start, size_t end, http_request *req)
{
    /* Request line. */
    size_t n;
    size_t e = line_end(buf, start, end, &n);
    const char *l = buf + start;
    size_t i = 0;
    while (i < n && (cls[(unsigned char)l[i]] & C_TCHAR))
        i++;
    if (i == 0 || i == n || l[i] != ' ')
        return HTTP_E_BAD;
    req->method = l;
    req->method_len = (uint32_t)i;
    size_t t = ++i;
    while (i < n && (cls[(unsigned char)l[i]] & C_TARGET))
        i++;
    if (i == t || i == n || l[i] != ' ')
        return HTTP_E_BAD; /* no target, a bad byte in it, or no version */
    req->target = l + t;
    req->target_len = (uint32_t)(i - t);
    i++;
    if (n - i != 8 || memcmp(l + i, "HTTP/", 5) != 0 || l[i + 6] != '.')
        return HTTP_E_BAD;
    unsigned maj = (unsigned char)l[i + 5] - '0', min = (unsigned char)l[i + 7] - '0';
    if (maj > 9 || min > 9)
        return HTTP_E_BAD;
    if (maj != 1)
        return HTTP_E_VERSION;
    req->minor = (int)min;

    /* Header fields. */
    int close = 0, keep = 0, hosts = 0, te = 0;
    req->content_length = -1;
    req->chunked = 0;
    req->nheaders = 0;
    for (;;) {
        size_t s = e + 1;
        e = line_end(buf, s, end, &n);
        l = buf + s;
        if (n == 0)
            break;
        i = 0;
        while (i < n && (cls[(unsigned char)l[i]] & C_TCHAR))
            i++;
        if (i == 0 || i == n || l[i] != ':')
            return HTTP_E_BAD; /* no name (or folding), no colon, blank before it */
        size_t nl = i++;
        while (i < n && (l[i] == ' ' || l[i] == '\t'))
            i++;
        size_t vs = i;
        for (; i < n; i++)
            if (!(cls[(unsigned char)l[i]] & C_VALUE))
                return HTTP_E_BAD; /* a control byte, bare CR included */
        size_t ve = n;
        while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
            ve--;
        if (req->nheaders == HTTP_MAX_HEADERS)
            return HTTP_E_TOO_LARGE;
        http_header *h = &req->headers[req->nheaders++];
        h->name = l;
        h->name_len = (uint32_t)nl;
        h->value = l + vs;
        h->value_len = (uint32_t)(ve - vs);
        switch (nl) {
        case 4:
            if (lower_eq(l, nl, "host"))
                hosts++;
            break;
        case 10:
            if (lower_eq(l, nl, "connection"))
                scan_connection(h->value, h->value_len, &close, &keep);
            break;
        case 14:
            if (lower_eq(l, nl, "content-length")) {
                int64_t v;
                if (parse_uint(h->value, h->value_len, &v) < 0)
                    return HTTP_E_BAD;
                if (req->content_length >= 0 && req->content_length != v)
                    return HTTP_E_BAD;
                req->content_length = v;
            }
            break;
        case 17:
            if (lower_eq(l, nl, "transfer-encoding")) {
                if (te++ || !lower_eq(h->value, h->value_len, "chunked"))
                    return req->minor == 0 ? HTTP_E_BAD : HTTP_E_NOT_IMPL;
                req->chunked = 1;
            }
            break;
        default:
            break;
        }
    }
    if (req->chunked && (req->content_length >= 0 || req->minor == 0))
        return HTTP_E_BAD;
    if (req->minor >= 1 && hosts != 1)
        return HTTP_E_BAD;
    if (hosts > 1)
        return HTTP_E_BAD;
    req->keep_alive = req->minor >= 1 ? !close : (keep && !close);
    return (long)(e + 1);
}

long http_parse_request(http_parser *p, const char *buf, size_t len, http_request *req)
{
    /* Blank lines before the request count towards the limit too. */
    size_t limit = len < p->max_head ? len : p->max_head;
    long k = skip_blank_lines(buf, limit);
    if (k < 0 || (size_t)k == limit)
        return len >= p->max_head ? HTTP_E_BAD : HTTP_INCOMPLETE;
    size_t start = (size_t)k;
    size_t i = p->scan_ > start ? p->scan_ : start;
    /* The head ends at an LF that closes an empty line. */
    for (;;) {
        const char *nl = i < limit ? memchr(buf + i, '\n', limit - i) : NULL;
        if (!nl) {
            if (len >= p->max_head) {
                p->scan_ = 0;
                return HTTP_E_TOO_LARGE;
            }
            p->scan_ = (uint32_t)limit;
            return HTTP_INCOMPLETE;
        }
        i = (size_t)(nl - buf);
        if ((i >= start + 1 && buf[i - 1] == '\n') ||
            (i >= start + 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n'))
            break;
        i++;
    }
    p->scan_ = 0;
    return parse_head(buf, start, i + 1, req);
}
