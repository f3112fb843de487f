/* The http_server's request parser, responses and per-connection session
 * (examples/http_*.c): no loop involved. */
#include "http_parser.h"
#include "http_response.h"
#include "http_session.h"

#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static http_responses resp;

static void setup(void)
{
    http_responses_update(&resp, 784111777); /* Sun, 06 Nov 1994 08:49:37 GMT */
}

/* Parse one head from an exactly sized heap copy (ASan sees any overread). */
static long parse1(const char *s, size_t n, http_request *req)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    http_parser p;
    http_parser_init(&p, 1024);
    long rc = http_parse_request(&p, b, n, req);
    if (rc > 0) { /* slices must point into b: rebase them onto s */
        req->method = s + (req->method - b);
        req->target = s + (req->target - b);
        for (uint32_t i = 0; i < req->nheaders; i++) {
            req->headers[i].name = s + (req->headers[i].name - b);
            req->headers[i].value = s + (req->headers[i].value - b);
        }
    }
    free(b);
    return rc;
}

#define PARSE(lit, req) parse1((lit), sizeof(lit) - 1, (req))

/* A connection without a socket. */
typedef struct conn {
    http_session s;
    char in[1 << 16];
    size_t have;
    char out[1 << 16];
    size_t out_len;
} conn;

static conn *conn_new(void)
{
    conn *c = calloc(1, sizeof *c);
    http_session_init(&c->s, 1024);
    return c;
}

static void conn_feed(conn *c, const char *data, size_t n)
{
    cr_assert_leq(c->have + n, sizeof c->in);
    memcpy(c->in + c->have, data, n);
    c->have += n;
    size_t off = 0;
    for (;;) {
        int more;
        char out[4096];
        size_t out_len = 0;
        off += http_session_feed(&c->s, &resp, c->in + off, c->have - off, out, &out_len,
                                 sizeof out, &more);
        cr_assert_leq(off, c->have);
        cr_assert_leq(c->out_len + out_len, sizeof c->out);
        memcpy(c->out + c->out_len, out, out_len);
        c->out_len += out_len;
        if (!more)
            break;
    }
    memmove(c->in, c->in + off, c->have - off);
    c->have -= off;
}

/* The status codes in c's output, as "200 200 400". */
static void statuses(const conn *c, char *dst, size_t room)
{
    size_t w = 0;
    dst[0] = 0;
    for (size_t i = 0; i + 12 <= c->out_len; i++) {
        if (memcmp(c->out + i, "HTTP/1.1 ", 9) == 0 && w + 5 < room) {
            if (w)
                dst[w++] = ' ';
            memcpy(dst + w, c->out + i + 9, 3);
            w += 3;
            dst[w] = 0;
        }
    }
}

/* Feed one input; expect these statuses and whether the session closes. */
static void expect(const char *in, size_t n, const char *want, int closing)
{
    conn *c = conn_new();
    conn_feed(c, in, n);
    char got[512];
    statuses(c, got, sizeof got);
    cr_assert_str_eq(got, want, "input: %.*s", (int)n, in);
    cr_assert_eq(c->s.closing, closing, "closing for input: %.*s", (int)n, in);
    free(c);
}

#define EXPECT(lit, want, closing) expect((lit), sizeof(lit) - 1, (want), (closing))

TestSuite(http_parser, .init = setup);

Test(http_parser, simple_get)
{
    http_request q;
    static const char in[] = "GET /plaintext?x=1 HTTP/1.1\r\nHost: localhost:8080\r\n"
                             "Accept: text/plain,text/html;q=0.9  \r\nX-Empty:\r\n\r\n";
    long rc = PARSE(in, &q);
    cr_assert_eq(rc, (long)sizeof in - 1);
    cr_assert_eq(q.method_len, 3);
    cr_assert(memcmp(q.method, "GET", 3) == 0);
    cr_assert_eq(q.target_len, 14);
    cr_assert(memcmp(q.target, "/plaintext?x=1", 14) == 0);
    cr_assert_eq(q.minor, 1);
    cr_assert_eq(q.keep_alive, 1);
    cr_assert_eq(q.content_length, -1);
    cr_assert_eq(q.nheaders, 3);
    const http_header *h = http_find_header(&q, "ACCEPT");
    cr_assert(h);
    cr_assert_eq(h->value_len, 26);
    cr_assert(memcmp(h->value, "text/plain,text/html;q=0.9", 26) == 0);
    h = http_find_header(&q, "x-empty");
    cr_assert(h);
    cr_assert_eq(h->value_len, 0);
    cr_assert_null(http_find_header(&q, "Cookie"));
}

Test(http_parser, keep_alive_rules)
{
    http_request q;
    cr_assert_gt(PARSE("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &q), 0);
    cr_assert_eq(q.keep_alive, 1);
    cr_assert_gt(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", &q), 0);
    cr_assert_eq(q.keep_alive, 0);
    cr_assert_gt(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, close\r\n\r\n", &q), 0);
    cr_assert_eq(q.keep_alive, 0);
    cr_assert_gt(PARSE("GET / HTTP/1.0\r\n\r\n", &q), 0);
    cr_assert_eq(q.minor, 0);
    cr_assert_eq(q.keep_alive, 0);
    cr_assert_gt(PARSE("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &q), 0);
    cr_assert_eq(q.keep_alive, 1);

    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "200", 0);
    EXPECT("GET / HTTP/1.0\r\n\r\n", "200", 1);
    EXPECT("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n", "200 200", 1);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n", "200",
           1);
}

Test(http_parser, response_bytes)
{
    conn *c = conn_new();
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                             "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                             "GET / HTTP/1.0\r\n\r\n";
    conn_feed(c, in, sizeof in - 1);
    static const char want[] = "HTTP/1.1 200 OK\r\nServer: weft\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                               "\r\nHello, World!"
                               "HTTP/1.1 200 OK\r\nServer: weft\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                               "Connection: keep-alive\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nServer: weft\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                               "Connection: close\r\n\r\nHello, World!";
    cr_assert_eq(c->out_len, sizeof want - 1, "%.*s", (int)c->out_len, c->out);
    cr_assert(memcmp(c->out, want, sizeof want - 1) == 0, "%.*s", (int)c->out_len, c->out);
    cr_assert(c->s.closing);
    free(c);

    char date[HTTP_DATE_LEN + 1];
    http_format_date(0, date);
    cr_assert_str_eq(date, "Thu, 01 Jan 1970 00:00:00 GMT");
    http_format_date(951782400, date);
    cr_assert_str_eq(date, "Tue, 29 Feb 2000 00:00:00 GMT");
}

Test(http_parser, pipelined_16)
{
    char in[16 * 64];
    size_t n = 0;
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
    conn *c = conn_new();
    conn_feed(c, in, n);
    cr_assert_eq(c->s.requests, 16);
    cr_assert_eq(c->have, 0);
    cr_assert_eq(c->out_len, 16 * resp.hello_len[HTTP_CONN_DEFAULT]);
    free(c);
}

/* Requests of every shape the session handles, pipelined. */
static const char script[] = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
                             "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
                             "GET /bare-lf HTTP/1.1\nHost: a\n\n"
                             "HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
                             "GET /q?a=b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                             "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

Test(http_parser, split_at_every_byte)
{
    size_t n = sizeof script - 1;
    conn *whole = conn_new();
    conn_feed(whole, script, n);
    cr_assert_eq(whole->s.requests, 6);
    cr_assert(whole->s.closing);
    char st[128];
    statuses(whole, st, sizeof st);
    cr_assert_str_eq(st, "200 200 200 200 200 200");
    for (size_t k = 0; k <= n; k++) {
        conn *c = conn_new();
        conn_feed(c, script, k);
        conn_feed(c, script + k, n - k);
        cr_assert_eq(c->out_len, whole->out_len, "split at %zu", k);
        cr_assert(memcmp(c->out, whole->out, c->out_len) == 0, "split at %zu", k);
        free(c);
    }
    conn *c = conn_new();
    for (size_t k = 0; k < n; k++)
        conn_feed(c, script + k, 1);
    cr_assert_eq(c->out_len, whole->out_len);
    cr_assert(memcmp(c->out, whole->out, c->out_len) == 0);
    free(c);
    free(whole);
}

Test(http_parser, malformed_is_400)
{
    static const char *bad[] = {
        "GET\r\n\r\n",
        "GET /\r\n\r\n",                          /* no version (HTTP/0.9) */
        "GET / \r\n\r\n",                         /* empty version */
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",     /* trailing space */
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",     /* two spaces */
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",      /* not a token */
        "G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n",   /* control byte in method */
        "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", /* DEL in target */
        "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.x\r\nHost: a\r\n\r\n",
        "GET / HTTP/11\r\nHost: a\r\n\r\n",
        "GET / HTTPS/1.1\r\nHost: a\r\n\r\n",
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",             /* header without colon */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",           /* blank before colon */
        "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",     /* empty name */
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",      /* bare CR */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00z\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n", /* no Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i]);
        if (i == 18) /* the one with a NUL inside */
            n = sizeof "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00z\r\n\r\n" - 1;
        expect(bad[i], n, "400", 1);
    }
    /* Equal repeated lengths are fine; the body is skipped. */
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nxy"
           "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
           "200 200", 0);
}

Test(http_parser, other_errors)
{
    EXPECT("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505", 1);
    EXPECT("GET / HTTP/0.9\r\nHost: a\r\n\r\n", "505", 1);
    EXPECT(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "501", 1);
    EXPECT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501", 1);
    /* The replies before an error still go out; nothing after it is read. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n\r\nBAD\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
           "200 400", 1);
    /* Incomplete is no error. */
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n", "", 0);
    EXPECT("GET / HTTP/1.1\r\nHost: a\r\n\r", "", 0);
    EXPECT("\r\n\r\n\r\n", "", 0);
}

Test(http_parser, limits_431)
{
    /* A head over the limit (1024 here), complete or not. */
    char in[4096];
    int n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(in + n, 'x', 1100);
    n += 1100;
    expect(in, (size_t)n, "431", 1);
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\n\r\n");
    expect(in, (size_t)n, "431", 1);
    /* A long request line alone. */
    n = snprintf(in, sizeof in, "GET /");
    memset(in + n, 'a', 2000);
    expect(in, (size_t)n + 2000, "431", 1);
    /* Too many headers, each small. */
    n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += snprintf(in + n, sizeof in - (size_t)n, "X%d: y\r\n", i);
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\n");
    expect(in, (size_t)n, "431", 1);
    /* Blank lines forever before a request line. */
    memset(in, '\n', 2000);
    expect(in, 2000, "400", 1);
    /* Exactly at the limit is fine. */
    n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(in + n, 'v', 1024 - (size_t)n - 4);
    memcpy(in + 1024 - 4, "\r\n\r\n", 4);
    expect(in, 1024, "200", 0);
}

Test(http_parser, incremental_scan_is_linear)
{
    /* A head arriving one byte at a time is searched once, not again per byte. */
    http_parser p;
    http_parser_init(&p, 0);
    http_request q;
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: test\r\n\r\n";
    for (size_t k = 1; k < sizeof in - 1; k++) {
        cr_assert_eq(http_parse_request(&p, in, k, &q), HTTP_INCOMPLETE);
        cr_assert_leq(p.scan_, k);
    }
    cr_assert_eq(http_parse_request(&p, in, sizeof in - 1, &q), (long)sizeof in - 1);
}
