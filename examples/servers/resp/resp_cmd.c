/* The resp_server's commands: see resp_cmd.h. */
#include "resp_cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int resp_out_reserve(resp_out *o, size_t n)
{
    if (o->cap - o->len >= n)
        return 0;
    size_t want = o->len + n;
    if (want < o->len)
        return -ENOMEM;
    size_t ncap = o->cap ? o->cap : 4096;
    while (ncap < want) {
        if (ncap > SIZE_MAX / 2)
            return -ENOMEM;
        ncap *= 2;
    }
    char *nb = realloc(o->buf, ncap);
    if (!nb)
        return -ENOMEM;
    o->buf = nb;
    o->cap = ncap;
    return 0;
}

int resp_out_put(resp_out *o, const char *s, size_t n)
{
    int rc = resp_out_reserve(o, n);
    if (rc < 0)
        return rc;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

void resp_out_free(resp_out *o)
{
    free(o->buf);
    o->buf = NULL;
    o->len = o->cap = 0;
}

#define PUT_LIT(o, s) resp_out_put((o), (s), sizeof(s) - 1)

/* Decimal digits of v into the end of a 24-byte buffer; returns the start. */
static char *fmt_i64(char tmp[24], int64_t v)
{
    char *p = tmp + 24;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
}

/* ":<v>\r\n" */
static int put_int(resp_out *o, int64_t v)
{
    char tmp[24];
    char *s = fmt_i64(tmp, v);
    size_t n = (size_t)(tmp + 24 - s);
    int rc = resp_out_reserve(o, n + 3);
    if (rc < 0)
        return rc;
    char *w = o->buf + o->len;
    *w++ = ':';
    memcpy(w, s, n);
    w += n;
    *w++ = '\r';
    *w++ = '\n';
    o->len = (size_t)(w - o->buf);
    return 0;
}

/* "$<n>\r\n<bytes>\r\n" */
static int put_bulk(resp_out *o, const char *p, size_t n)
{
    char tmp[24];
    char *s = fmt_i64(tmp, (int64_t)n);
    size_t dn = (size_t)(tmp + 24 - s);
    int rc = resp_out_reserve(o, dn + n + 5);
    if (rc < 0)
        return rc;
    char *w = o->buf + o->len;
    *w++ = '$';
    memcpy(w, s, dn);
    w += dn;
    *w++ = '\r';
    *w++ = '\n';
    memcpy(w, p, n);
    w += n;
    *w++ = '\r';
    *w++ = '\n';
    o->len = (size_t)(w - o->buf);
    return 0;
}

/* Append bytes of an error text, with CR, LF and other controls as spaces
 * (an error line must stay one line). */
static int put_err_text(resp_out *o, const char *p, size_t n)
{
    int rc = resp_out_reserve(o, n);
    if (rc < 0)
        return rc;
    char *w = o->buf + o->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        w[i] = c < 0x20 ? ' ' : (char)c;
    }
    o->len += n;
    return 0;
}

/* A strict decimal int64 as redis reads one: no spaces, no '+', no leading
 * zeros, no "-0", within range. 1 with *v, or 0. */
static int parse_i64(const char *s, size_t n, int64_t *v)
{
    if (n == 0 || n > 20)
        return 0;
    if (n == 1 && s[0] == '0') {
        *v = 0;
        return 1;
    }
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1)
            return 0;
    }
    if (s[i] < '1' || s[i] > '9')
        return 0;
    uint64_t u = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return 0;
        if (u > (UINT64_MAX - d) / 10)
            return 0;
        u = u * 10 + d;
    }
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1)
            return 0;
        *v = (int64_t)(0 - u);
    } else {
        if (u > (uint64_t)INT64_MAX)
            return 0;
        *v = (int64_t)u;
    }
    return 1;
}

static int arg_is_n(const resp_arg *a, const char *lower, size_t n)
{
    if (a->n != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = a->p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != lower[i])
            return 0;
    }
    return 1;
}

static int arg_is(const resp_arg *a, const char *lower)
{
    return arg_is_n(a, lower, strlen(lower));
}

typedef int (*cmd_fn)(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out);

static int cmd_ping(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)db;
    if (argc == 1)
        return PUT_LIT(out, "+PONG\r\n");
    if (argc > 2)
        return PUT_LIT(out, "-ERR wrong number of arguments for 'ping' command\r\n");
    return put_bulk(out, argv[1].p, argv[1].n);
}

static int cmd_echo(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)db;
    (void)argc;
    return put_bulk(out, argv[1].p, argv[1].n);
}

static int cmd_get(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)argc;
    size_t vn;
    const char *v = resp_db_get(db, argv[1].p, argv[1].n, &vn);
    if (!v)
        return PUT_LIT(out, "$-1\r\n");
    return put_bulk(out, v, vn);
}

static int cmd_set(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    int nx = 0, xx = 0, get = 0;
    for (uint32_t i = 3; i < argc; i++) {
        if (arg_is(&argv[i], "nx"))
            nx = 1;
        else if (arg_is(&argv[i], "xx"))
            xx = 1;
        else if (arg_is(&argv[i], "get"))
            get = 1;
        else
            return PUT_LIT(out, "-ERR syntax error\r\n");
    }
    if (nx && xx)
        return PUT_LIT(out, "-ERR syntax error\r\n");
    size_t on;
    const char *old = resp_db_get(db, argv[1].p, argv[1].n, &on);
    int rc = 0;
    if (get)
        rc = old ? put_bulk(out, old, on) : PUT_LIT(out, "$-1\r\n");
    if (rc < 0)
        return rc;
    if ((nx && old) || (xx && !old))
        return get ? 0 : PUT_LIT(out, "$-1\r\n");
    rc = resp_db_set(db, argv[1].p, argv[1].n, argv[2].p, argv[2].n);
    if (rc < 0) {
        if (get) /* the old value went out already; nothing else to say */
            return 0;
        return PUT_LIT(out, "-ERR out of memory\r\n");
    }
    return get ? 0 : PUT_LIT(out, "+OK\r\n");
}

static int cmd_del(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    int64_t n = 0;
    for (uint32_t i = 1; i < argc; i++)
        n += resp_db_del(db, argv[i].p, argv[i].n);
    return put_int(out, n);
}

static int cmd_exists(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    int64_t n = 0;
    size_t vn;
    for (uint32_t i = 1; i < argc; i++)
        n += resp_db_get(db, argv[i].p, argv[i].n, &vn) != NULL;
    return put_int(out, n);
}

static int cmd_incr(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)argc;
    size_t vn;
    const char *v = resp_db_get(db, argv[1].p, argv[1].n, &vn);
    int64_t n = 0;
    if (v && !parse_i64(v, vn, &n))
        return PUT_LIT(out, "-ERR value is not an integer or out of range\r\n");
    if (n == INT64_MAX)
        return PUT_LIT(out, "-ERR increment or decrement would overflow\r\n");
    n++;
    char tmp[24];
    char *s = fmt_i64(tmp, n);
    if (resp_db_set(db, argv[1].p, argv[1].n, s, (size_t)(tmp + 24 - s)) < 0)
        return PUT_LIT(out, "-ERR out of memory\r\n");
    return put_int(out, n);
}

static int cmd_dbsize(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)argv;
    (void)argc;
    return put_int(out, (int64_t)db->count);
}

static int cmd_flushall(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)argv;
    (void)argc;
    resp_db_clear(db);
    return PUT_LIT(out, "+OK\r\n");
}

/* COMMAND [...]: no command table to show; an empty array keeps redis-cli content. */
static int cmd_command(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)db;
    (void)argv;
    (void)argc;
    return PUT_LIT(out, "*0\r\n");
}

/* CONFIG GET <name>: the two settings redis-benchmark asks for, nothing else. */
static int cmd_config(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)db;
    if (!arg_is(&argv[1], "get"))
        return PUT_LIT(out, "-ERR CONFIG subcommand not supported\r\n");
    if (argc != 3)
        return PUT_LIT(out, "-ERR wrong number of arguments for 'config|get' command\r\n");
    if (arg_is(&argv[2], "save"))
        return PUT_LIT(out, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    if (arg_is(&argv[2], "appendonly"))
        return PUT_LIT(out, "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    return PUT_LIT(out, "*0\r\n");
}

static int cmd_quit(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    (void)db;
    (void)argv;
    (void)argc;
    int rc = PUT_LIT(out, "+OK\r\n");
    return rc < 0 ? rc : RESP_EXEC_CLOSE;
}

typedef struct cmd_def {
    const char *name; /* lower case */
    size_t len;
    int arity; /* redis style: n exactly, or -n at least n (the name included) */
    cmd_fn fn;
} cmd_def;

static const cmd_def cmds[] = {
    {"get", 3, 2, cmd_get},
    {"set", 3, -3, cmd_set},
    {"ping", 4, -1, cmd_ping},
    {"incr", 4, 2, cmd_incr},
    {"del", 3, -2, cmd_del},
    {"exists", 6, -2, cmd_exists},
    {"echo", 4, 2, cmd_echo},
    {"dbsize", 6, 1, cmd_dbsize},
    {"flushall", 8, -1, cmd_flushall},
    {"flushdb", 7, -1, cmd_flushall},
    {"command", 7, -1, cmd_command},
    {"config", 6, -2, cmd_config},
    {"quit", 4, -1, cmd_quit},
};

static int unknown(const resp_arg *argv, uint32_t argc, resp_out *out)
{
    int rc = PUT_LIT(out, "-ERR unknown command '");
    if (rc == 0)
        rc = put_err_text(out, argv[0].p, argv[0].n > 128 ? 128 : argv[0].n);
    if (rc == 0)
        rc = PUT_LIT(out, "', with args beginning with: ");
    size_t shown = 0;
    for (uint32_t i = 1; rc == 0 && i < argc && shown < 128; i++) {
        size_t n = argv[i].n < 128 - shown ? argv[i].n : 128 - shown;
        rc = PUT_LIT(out, "'");
        if (rc == 0)
            rc = put_err_text(out, argv[i].p, n);
        if (rc == 0)
            rc = PUT_LIT(out, "' ");
        shown += n + 3;
    }
    return rc == 0 ? PUT_LIT(out, "\r\n") : rc;
}

int resp_exec(resp_db *db, const resp_arg *argv, uint32_t argc, resp_out *out)
{
    if (argc == 0)
        return 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const cmd_def *c = &cmds[i];
        if (!arg_is_n(&argv[0], c->name, c->len))
            continue;
        if ((c->arity > 0 && argc != (uint32_t)c->arity) ||
            (c->arity < 0 && argc < (uint32_t)-c->arity)) {
            int rc = PUT_LIT(out, "-ERR wrong number of arguments for '");
            if (rc == 0)
                rc = resp_out_put(out, c->name, c->len);
            return rc == 0 ? PUT_LIT(out, "' command\r\n") : rc;
        }
        return c->fn(db, argv, argc, out);
    }
    return unknown(argv, argc, out);
}
