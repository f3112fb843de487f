/* The RESP request parser: see resp_parser.h. */
#include "resp_parser.h"

#include <string.h>

enum { PH_START = 0, PH_BULK_HDR, PH_BULK_DATA };

/* "*N" and "$len" lines are short; a longer one is malformed. */
#define HDR_LINE_MAX 24
/* Keep every offset well inside uint32_t and long. */
#define CMD_MAX ((uint32_t)0x7fff0000)

void resp_parser_init(resp_parser *p, resp_arg *argv, uint32_t argv_cap, const resp_limits *lim)
{
    memset(p, 0, sizeof *p);
    p->argv = argv;
    p->argv_cap = argv_cap;
    if (lim)
        p->lim = *lim;
    if (p->lim.max_args == 0 || p->lim.max_args > argv_cap)
        p->lim.max_args = argv_cap;
    if (p->lim.max_bulk == 0)
        p->lim.max_bulk = RESP_DEFAULT_MAX_BULK;
    if (p->lim.max_bulk > CMD_MAX / 2)
        p->lim.max_bulk = CMD_MAX / 2;
    if (p->lim.max_inline == 0)
        p->lim.max_inline = RESP_DEFAULT_MAX_INLINE;
    if (p->lim.max_inline > CMD_MAX / 2)
        p->lim.max_inline = CMD_MAX / 2;
}

/* A header line at s (s[0] is '*' or '$') holding a decimal number and CRLF.
 * Returns 1 with *num and *linelen (CRLF included), 0 when incomplete, -1
 * when malformed (not a number, no CRLF, too long). */
static int parse_hdr_line(const char *s, size_t avail, int64_t *num, uint32_t *linelen)
{
    size_t lim = avail < HDR_LINE_MAX ? avail : HDR_LINE_MAX;
    size_t i = 1;
    while (i < lim && s[i] != '\r')
        i++;
    if (i == lim)
        return avail < HDR_LINE_MAX ? 0 : -1;
    if (i + 1 >= avail)
        return 0;
    if (s[i + 1] != '\n')
        return -1;
    size_t j = 1;
    int neg = 0;
    if (s[j] == '-') {
        neg = 1;
        j++;
    }
    if (j == i || i - j > 18) /* no digits, or more than int64 can surely hold */
        return -1;
    int64_t v = 0;
    for (; j < i; j++) {
        unsigned d = (unsigned char)s[j] - '0';
        if (d > 9)
            return -1;
        v = v * 10 + (int64_t)d;
    }
    *num = neg ? -v : v;
    *linelen = (uint32_t)(i + 2);
    return 1;
}

static long finish(resp_parser *p, char *buf, uint32_t n, uint32_t *argc)
{
    for (uint32_t i = 0; i < n; i++)
        p->argv[i].p = buf + p->argv[i].off_;
    *argc = n;
    long used = (long)p->pos_;
    p->phase_ = PH_START;
    p->argc_ = p->nargs_ = p->pos_ = p->bulk_ = p->scan_ = 0;
    return used;
}

static long fail(resp_parser *p, long err)
{
    p->phase_ = PH_START;
    p->argc_ = p->nargs_ = p->pos_ = p->bulk_ = p->scan_ = 0;
    return err;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Split the inline line buf[0..end) into arguments, unescaping quoted ones
 * in place. Returns the argument count or a RESP_E_* error. */
static long split_inline(resp_parser *p, char *buf, uint32_t end)
{
    uint32_t r = 0, n = 0;
    for (;;) {
        while (r < end && is_blank(buf[r]))
            r++;
        if (r == end)
            return n;
        if (n == p->lim.max_args)
            return RESP_E_TOO_MANY_ARGS;
        uint32_t start = r, w = r;
        char q = buf[r];
        if (q == '"' || q == '\'') {
            r++;
            for (;;) {
                if (r == end)
                    return RESP_E_QUOTES;
                char c = buf[r];
                if (c == q) {
                    r++;
                    if (r < end && !is_blank(buf[r]))
                        return RESP_E_QUOTES; /* closing quote glued to more text */
                    break;
                }
                if (c == '\\' && r + 1 < end) {
                    char e = buf[r + 1];
                    if (q == '\'') {
                        if (e == '\'') {
                            buf[w++] = '\'';
                            r += 2;
                            continue;
                        }
                    } else if (e == 'x' && r + 3 < end && hexval(buf[r + 2]) >= 0 &&
                               hexval(buf[r + 3]) >= 0) {
                        buf[w++] = (char)(hexval(buf[r + 2]) * 16 + hexval(buf[r + 3]));
                        r += 4;
                        continue;
                    } else {
                        switch (e) {
                        case 'n':
                            c = '\n';
                            break;
                        case 'r':
                            c = '\r';
                            break;
                        case 't':
                            c = '\t';
                            break;
                        case 'b':
                            c = '\b';
                            break;
                        case 'a':
                            c = '\a';
                            break;
                        default:
                            c = e;
                            break;
                        }
                        buf[w++] = c;
                        r += 2;
                        continue;
                    }
                }
                buf[w++] = c;
                r++;
            }
        } else {
            while (r < end && !is_blank(buf[r]))
                r++;
            w = r;
        }
        p->argv[n].off_ = start;
        p->argv[n].n = w - start;
        n++;
    }
}

static long parse_inline(resp_parser *p, char *buf, size_t len, uint32_t *argc)
{
    size_t lim = len;
    if (lim > (size_t)p->lim.max_inline + 1)
        lim = (size_t)p->lim.max_inline + 1;
    const char *nl = NULL;
    if (p->scan_ < lim)
        nl = memchr(buf + p->scan_, '\n', lim - p->scan_);
    if (!nl) {
        if (len > p->lim.max_inline)
            return fail(p, RESP_E_INLINE_TOO_BIG);
        p->scan_ = (uint32_t)len;
        return RESP_INCOMPLETE;
    }
    uint32_t end = (uint32_t)(nl - buf);
    long n = split_inline(p, buf, end);
    if (n < 0)
        return fail(p, n);
    p->pos_ = end + 1;
    return finish(p, buf, (uint32_t)n, argc);
}

long resp_parse(resp_parser *p, char *buf, size_t len, uint32_t *argc)
{
    *argc = 0;
    if (len == 0)
        return RESP_INCOMPLETE;
    if (p->phase_ == PH_START) {
        if (buf[0] != '*')
            return parse_inline(p, buf, len, argc);
        int64_t n;
        uint32_t ll;
        int rc = parse_hdr_line(buf, len, &n, &ll);
        if (rc == 0)
            return RESP_INCOMPLETE;
        if (rc < 0)
            return fail(p, RESP_E_MBULK_LEN);
        p->pos_ = ll;
        if (n <= 0) /* "*0" and "*-1": an empty command, no reply */
            return finish(p, buf, 0, argc);
        if (n > (int64_t)p->lim.max_args)
            return fail(p, RESP_E_TOO_MANY_ARGS);
        p->argc_ = (uint32_t)n;
        p->nargs_ = 0;
        p->phase_ = PH_BULK_HDR;
    }
    for (;;) {
        if (p->phase_ == PH_BULK_HDR) {
            if (p->pos_ >= len)
                return RESP_INCOMPLETE;
            if (buf[p->pos_] != '$')
                return fail(p, RESP_E_EXPECTED_DOLLAR);
            int64_t n;
            uint32_t ll;
            int rc = parse_hdr_line(buf + p->pos_, len - p->pos_, &n, &ll);
            if (rc == 0)
                return RESP_INCOMPLETE;
            if (rc < 0 || n < 0 || n > (int64_t)p->lim.max_bulk)
                return fail(p, RESP_E_BULK_LEN);
            if ((uint64_t)p->pos_ + ll + (uint64_t)n + 2 > CMD_MAX)
                return fail(p, RESP_E_BULK_LEN);
            p->pos_ += ll;
            p->bulk_ = (uint32_t)n;
            p->phase_ = PH_BULK_DATA;
        }
        /* PH_BULK_DATA */
        size_t need = (size_t)p->pos_ + p->bulk_ + 2;
        if (need > len)
            return RESP_INCOMPLETE;
        if (buf[need - 2] != '\r' || buf[need - 1] != '\n')
            return fail(p, RESP_E_BULK_CRLF);
        p->argv[p->nargs_].off_ = p->pos_;
        p->argv[p->nargs_].n = p->bulk_;
        p->nargs_++;
        p->pos_ = (uint32_t)need;
        if (p->nargs_ == p->argc_)
            return finish(p, buf, p->argc_, argc);
        p->phase_ = PH_BULK_HDR;
    }
}

const char *resp_strerror(long err)
{
    switch (err) {
    case RESP_E_MBULK_LEN:
        return "-ERR Protocol error: invalid multibulk length\r\n";
    case RESP_E_BULK_LEN:
        return "-ERR Protocol error: invalid bulk length\r\n";
    case RESP_E_EXPECTED_DOLLAR:
        return "-ERR Protocol error: expected '$'\r\n";
    case RESP_E_BULK_CRLF:
        return "-ERR Protocol error: expected CRLF after bulk\r\n";
    case RESP_E_INLINE_TOO_BIG:
        return "-ERR Protocol error: too big inline request\r\n";
    case RESP_E_QUOTES:
        return "-ERR Protocol error: unbalanced quotes in request\r\n";
    case RESP_E_TOO_MANY_ARGS:
        return "-ERR Protocol error: too many arguments\r\n";
    default:
        return "-ERR Protocol error\r\n";
    }
}
