/* The resp_server's parser, commands and keyspace (examples/resp_*.c): no
 * loop involved. */
#include "resp_cmd.h"
#include "resp_db.h"
#include "resp_parser.h"
#include "resp_session.h"

#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A connection without a socket: bytes go in (in pieces of any size), the
 * replies come out; a protocol error appends its message and stops. */
typedef struct conn {
    resp_session s;
    resp_db db;
    resp_out out;
    char in[1 << 20];
    size_t have;
} conn;

static conn *conn_new(void)
{
    conn *c = calloc(1, sizeof *c);
    cr_assert(c);
    resp_limits lim = {.max_args = 16, .max_bulk = 4096, .max_inline = 1024};
    resp_session_init(&c->s, &lim);
    cr_assert_eq(resp_db_init(&c->db), 0);
    return c;
}

static void conn_free(conn *c)
{
    resp_db_free(&c->db);
    resp_out_free(&c->out);
    free(c);
}

static void conn_feed(conn *c, const char *data, size_t n)
{
    if (c->s.closing)
        return;
    cr_assert(c->have + n <= sizeof c->in);
    memcpy(c->in + c->have, data, n);
    c->have += n;
    size_t off = 0;
    int more;
    do {
        /* A small soft limit exercises the flush-and-continue path. */
        off += resp_session_feed(&c->s, &c->db, c->in + off, c->have - off, &c->out,
                                 c->out.len + 16, &more);
        cr_assert_leq(off, c->have);
    } while (more);
    /* Move the unparsed rest to the front, as a server does. */
    memmove(c->in, c->in + off, c->have - off);
    c->have -= off;
}

/* The replies to `in` fed in one piece, as a NUL-terminated string. */
static char *run(const char *in, size_t n)
{
    conn *c = conn_new();
    conn_feed(c, in, n);
    resp_out_put(&c->out, "", 1);
    char *s = strdup(c->out.buf);
    conn_free(c);
    return s;
}

#define RUN(lit) run((lit), sizeof(lit) - 1)

static void expect(const char *in, size_t n, const char *want)
{
    char *got = run(in, n);
    cr_assert_str_eq(got, want, "input %.*s", (int)n, in);
    free(got);
}

#define EXPECT(lit, want) expect((lit), sizeof(lit) - 1, (want))

Test(resp_parser, ping_inline_and_multibulk)
{
    EXPECT("PING\r\n", "+PONG\r\n");
    EXPECT("ping\n", "+PONG\r\n");
    EXPECT("*1\r\n$4\r\nPING\r\n", "+PONG\r\n");
    EXPECT("*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n", "$5\r\nhello\r\n");
    EXPECT("PING hi\r\n", "$2\r\nhi\r\n");
    EXPECT("PING a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n");
}

Test(resp_parser, set_get_del_exists)
{
    EXPECT("SET k v\r\nGET k\r\nGET nope\r\n", "+OK\r\n$1\r\nv\r\n$-1\r\n");
    EXPECT("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
           "+OK\r\n$5\r\nvalue\r\n");
    EXPECT("SET a 1\r\nSET b 2\r\nEXISTS a b c a\r\nDEL a b c a\r\nEXISTS a b\r\n",
           "+OK\r\n+OK\r\n:3\r\n:2\r\n:0\r\n");
    EXPECT("SET k v1\r\nSET k v2-longer-than-before-by-far-yes\r\nGET k\r\n",
           "+OK\r\n+OK\r\n$32\r\nv2-longer-than-before-by-far-yes\r\n");
    EXPECT("ECHO \"hi there\"\r\n", "$8\r\nhi there\r\n");
    EXPECT("SET k v NX\r\nSET k w NX\r\nGET k\r\nSET k w XX GET\r\nSET z w XX\r\nGET z\r\n",
           "+OK\r\n$-1\r\n$1\r\nv\r\n$1\r\nv\r\n$-1\r\n$-1\r\n");
    EXPECT("SET k v EX 10\r\n", "-ERR syntax error\r\n");
    EXPECT("DBSIZE\r\nSET a 1\r\nDBSIZE\r\nFLUSHALL\r\nDBSIZE\r\n",
           ":0\r\n+OK\r\n:1\r\n+OK\r\n:0\r\n");
}

Test(resp_parser, binary_safe_values)
{
    static const char in[] = "*3\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$6\r\na\r\n\0b\n\r\n"
                             "*2\r\n$3\r\nGET\r\n$3\r\nk\0y\r\n"
                             "*2\r\n$3\r\nGET\r\n$2\r\nk\0\r\n";
    conn *c = conn_new();
    conn_feed(c, in, sizeof in - 1);
    static const char want[] = "+OK\r\n$6\r\na\r\n\0b\n\r\n$-1\r\n";
    cr_assert_eq(c->out.len, sizeof want - 1);
    cr_assert(memcmp(c->out.buf, want, sizeof want - 1) == 0);
    conn_free(c);
    /* Quoted inline arguments with escapes. */
    EXPECT("SET k \"a\\x41\\n\\\"\"\r\nGET k\r\nECHO 'it\\'s'\r\n",
           "+OK\r\n$4\r\naA\n\"\r\n$4\r\nit's\r\n");
}

Test(resp_parser, incr)
{
    EXPECT("INCR n\r\nINCR n\r\nGET n\r\n", ":1\r\n:2\r\n$1\r\n2\r\n");
    EXPECT("SET n -5\r\nINCR n\r\n", "+OK\r\n:-4\r\n");
    EXPECT("SET n 9223372036854775806\r\nINCR n\r\nINCR n\r\nGET n\r\n",
           "+OK\r\n:9223372036854775807\r\n-ERR increment or decrement would overflow\r\n"
           "$19\r\n9223372036854775807\r\n");
    EXPECT("SET n -9223372036854775808\r\nINCR n\r\n", "+OK\r\n:-9223372036854775807\r\n");
    static const char *bad[] = {
        "abc", "9223372036854775808", "99999999999999999999999", "01", "-0", "+1", " 1", "1 ", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char in[128];
        int n = snprintf(in, sizeof in, "*3\r\n$3\r\nSET\r\n$1\r\nn\r\n$%zu\r\n%s\r\nINCR n\r\n",
                         strlen(bad[i]), bad[i]);
        expect(in, (size_t)n, "+OK\r\n-ERR value is not an integer or out of range\r\n");
    }
}

Test(resp_parser, errors_and_arity)
{
    EXPECT("GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT("get a b\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT("SET k\r\n", "-ERR wrong number of arguments for 'set' command\r\n");
    EXPECT("DEL\r\n", "-ERR wrong number of arguments for 'del' command\r\n");
    EXPECT("EXISTS\r\n", "-ERR wrong number of arguments for 'exists' command\r\n");
    EXPECT("INCR\r\n", "-ERR wrong number of arguments for 'incr' command\r\n");
    EXPECT("ECHO\r\n", "-ERR wrong number of arguments for 'echo' command\r\n");
    EXPECT("FOO\r\n", "-ERR unknown command 'FOO', with args beginning with: \r\n");
    EXPECT("foo a b\r\n", "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
    /* An error stays one line whatever the peer sent. */
    EXPECT("*2\r\n$4\r\nf\r\no\r\n$1\r\n\n\r\n",
           "-ERR unknown command 'f  o', with args beginning with: ' ' \r\n");
    /* Nothing to do for empty commands; the next one is answered. */
    EXPECT("\r\n   \r\n*0\r\n*-1\r\nPING\r\n", "+PONG\r\n");
    EXPECT("QUIT\r\nPING\r\n", "+OK\r\n");
    EXPECT("CONFIG GET save\r\n", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
}

Test(resp_parser, malformed)
{
    EXPECT("*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
    EXPECT("*1x\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
    EXPECT("*\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
    EXPECT("*1\n$4\r\nPING\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
    EXPECT("*99999999999999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
    EXPECT("*1000000000000\r\n", "-ERR Protocol error: too many arguments\r\n");
    EXPECT("*17\r\n", "-ERR Protocol error: too many arguments\r\n");
    EXPECT("*1\r\n+PING\r\n", "-ERR Protocol error: expected '$'\r\n");
    EXPECT("*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT("*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT("*1\r\n$\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT("*1\r\n$4097\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT("*1\r\n$9223372036854775807\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT("*1\r\n$4\r\nPINGxx", "-ERR Protocol error: expected CRLF after bulk\r\n");
    EXPECT("*1\r\n$4\r\nPIN\r\n\r\n", "-ERR Protocol error: expected CRLF after bulk\r\n");
    EXPECT("*1\r\n$1234567890123456789012345", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT("SET k \"v\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
    EXPECT("SET k \"v\"x\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
    EXPECT("a b c d e f g h i j k l m n o p q\r\n", "-ERR Protocol error: too many arguments\r\n");
    /* The replies before a protocol error still go out. */
    EXPECT("PING\r\n*1\r\n$x\r\n", "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    /* An inline line without an end, past the limit. */
    char big[2048];
    memset(big, 'a', sizeof big);
    expect(big, sizeof big, "-ERR Protocol error: too big inline request\r\n");
    /* Incomplete input is no error (and no reply). */
    EXPECT("*2\r\n$3\r\nGET\r\n$1\r\n", "");
    EXPECT("PIN", "");
}

/* A script exercising every command, both syntaxes and pipelining. */
static const char script[] =
    "PING\r\n*1\r\n$4\r\nPING\r\nSET a 10\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$3\r\nx\0y\r\n"
    "INCR a\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\nGET a\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
    "EXISTS a b c\r\nDEL a c\r\nECHO 'q w'\r\n\r\n*0\r\nNOPE x\r\nINCR b\r\n"
    "*2\r\n$4\r\nECHO\r\n$0\r\n\r\nPING\r\n";

Test(resp_parser, split_at_every_byte)
{
    size_t n = sizeof script - 1;
    conn *whole = conn_new();
    conn_feed(whole, script, n);
    cr_assert_eq((int)whole->s.commands, 17);
    cr_assert(!whole->s.closing);
    for (size_t k = 0; k <= n; k++) {
        conn *c = conn_new();
        conn_feed(c, script, k);
        conn_feed(c, script + k, n - k);
        cr_assert_eq(c->out.len, whole->out.len, "split at %zu", k);
        cr_assert(memcmp(c->out.buf, whole->out.buf, c->out.len) == 0, "split at %zu", k);
        conn_free(c);
    }
    /* And one byte at a time. */
    conn *c = conn_new();
    for (size_t k = 0; k < n; k++)
        conn_feed(c, script + k, 1);
    cr_assert_eq(c->out.len, whole->out.len);
    cr_assert(memcmp(c->out.buf, whole->out.buf, c->out.len) == 0);
    conn_free(c);
    conn_free(whole);
}

Test(resp_parser, pipelined_16)
{
    char in[16 * 64];
    size_t n = 0;
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(in + n, sizeof in - n,
                              "*3\r\n$3\r\nSET\r\n$6\r\nkey:%02d\r\n$3\r\nv%02d\r\n", i, i);
    conn *c = conn_new();
    conn_feed(c, in, n);
    cr_assert_eq((int)c->s.commands, 16);
    cr_assert_eq(c->have, 0);
    cr_assert_eq(c->out.len, 16 * 5);
    cr_assert_eq(c->db.count, 16);
    conn_free(c);
}

Test(resp_parser, parse_in_place)
{
    /* Slices point into the caller's buffer. */
    char buf[] = "*2\r\n$3\r\nGET\r\n$5\r\nhello\r\nPING\r\n";
    resp_arg argv[4];
    resp_parser p;
    resp_parser_init(&p, argv, 4, NULL);
    uint32_t argc;
    long used = resp_parse(&p, buf, sizeof buf - 1, &argc);
    cr_assert_eq(used, 24);
    cr_assert_eq(argc, 2);
    cr_assert_eq(argv[0].p, buf + 8);
    cr_assert_eq(argv[1].p, buf + 17);
    cr_assert_eq(argv[1].n, 5);
    used = resp_parse(&p, buf + 24, sizeof buf - 1 - 24, &argc);
    cr_assert_eq(used, 6);
    cr_assert_eq(argc, 1);
    cr_assert_eq(argv[0].p, buf + 24);
}

Test(resp_db, grows_past_100k_keys)
{
    resp_db db;
    cr_assert_eq(resp_db_init(&db), 0);
    char k[32], v[32];
    enum { N = 150000 };
    for (int i = 0; i < N; i++) {
        int kn = snprintf(k, sizeof k, "key:%d", i);
        int vn = snprintf(v, sizeof v, "%d", i * 7);
        cr_assert_eq(resp_db_set(&db, k, (size_t)kn, v, (size_t)vn), 0);
    }
    cr_assert_eq(db.count, N);
    cr_assert_geq(db.cap, N);
    for (int i = 0; i < N; i++) {
        int kn = snprintf(k, sizeof k, "key:%d", i);
        int vn = snprintf(v, sizeof v, "%d", i * 7);
        size_t got;
        const char *val = resp_db_get(&db, k, (size_t)kn, &got);
        cr_assert(val, "key %d missing", i);
        cr_assert_eq(got, (size_t)vn);
        cr_assert(memcmp(val, v, got) == 0);
    }
    /* Delete every other key (backward shift keeps the rest reachable). */
    for (int i = 0; i < N; i += 2) {
        int kn = snprintf(k, sizeof k, "key:%d", i);
        cr_assert_eq(resp_db_del(&db, k, (size_t)kn), 1);
        cr_assert_eq(resp_db_del(&db, k, (size_t)kn), 0);
    }
    cr_assert_eq(db.count, N / 2);
    for (int i = 0; i < N; i++) {
        int kn = snprintf(k, sizeof k, "key:%d", i);
        size_t got;
        cr_assert_eq(resp_db_get(&db, k, (size_t)kn, &got) != NULL, i % 2 == 1, "key %d", i);
    }
    /* Empty and binary keys are keys like any other. */
    cr_assert_eq(resp_db_set(&db, "", 0, "e", 1), 0);
    cr_assert_eq(resp_db_set(&db, "\0\0", 2, "z", 1), 0);
    size_t got;
    cr_assert(resp_db_get(&db, "", 0, &got) && got == 1);
    cr_assert(resp_db_get(&db, "\0\0", 2, &got) && got == 1);
    cr_assert_null(resp_db_get(&db, "\0", 1, &got));
    resp_db_free(&db);
}
