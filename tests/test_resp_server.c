/* resp_server end to end (examples/resp_serve.c on this suite's backend):
 * plain sockets against the real server. */
#include "resp_serve.h"
#include "server_e2e.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct srv {
    resp_serve r;
    resp_store store;
} srv;

static int start(void *p, weft_loop *loop, int lfd)
{
    srv *s = p;
    return resp_serve_start(&s->r, loop, lfd, &s->store);
}

static int stop(void *p, int64_t grace_ns)
{
    srv *s = p;
    return resp_serve_close(&s->r, grace_ns);
}

#define SET_IN(c, lit) ((c)->in = (lit), (c)->in_len = sizeof(lit) - 1)
#define OUT_IS(c, lit)                                                                             \
    cr_assert((c)->out_len == sizeof(lit) - 1 && memcmp((c)->out, (lit), sizeof(lit) - 1) == 0,    \
              "got %llu bytes: %.*s", (unsigned long long)(c)->out_len, (int)(c)->out_len,         \
              (c)->out)

Test(resp_server, ping_set_get_pipelined_and_errors, .timeout = 60)
{
    srv s = {0};
    cr_assert_eq(resp_db_init(&s.store.db), 0);
    enum { N = 6 };
    e2e_client *c = calloc(N, sizeof *c);
    SET_IN(&c[0], "PING\r\n");
    SET_IN(&c[1], "*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
                  "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
    /* 16 pipelined INCRs of one key, one byte at a time. */
    static char incr[16 * 32 + 1];
    for (int i = 0; i < 16; i++)
        strcat(incr, "*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
    c[2].in = incr;
    c[2].in_len = strlen(incr);
    c[2].bytewise = 1;
    SET_IN(&c[3], "ECHO \"a b\"\r\nNOPE x\r\nGET\r\n");
    SET_IN(&c[4], "PING\r\n*1\r\n$abc\r\nPING\r\n");
    SET_IN(&c[5], "QUIT\r\nPING\r\n");
    srv *sp = &s;
    e2e_server e = {.start = start, .close = stop, .srv = sp, .clients = c, .nclients = N};
    e2e_run(&e);

    OUT_IS(&c[0], "+PONG\r\n");
    OUT_IS(&c[1], "+PONG\r\n+OK\r\n$5\r\nvalue\r\n");
    cr_assert_eq(e2e_count(&c[2], "\r\n"), 16);
    cr_assert_eq(e2e_count(&c[2], ":16\r\n"), 1, "%.*s", (int)c[2].out_len, c[2].out);
    OUT_IS(&c[3], "$3\r\na b\r\n-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n"
                  "-ERR wrong number of arguments for 'get' command\r\n");
    OUT_IS(&c[4], "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    OUT_IS(&c[5], "+OK\r\n");
    size_t vn;
    const char *v = resp_db_get(&s.store.db, "ctr", 3, &vn);
    cr_assert(v && vn == 2 && memcmp(v, "16", 2) == 0);
    resp_db_free(&s.store.db);
    free(c);
}
