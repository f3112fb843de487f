/* http_server end to end (examples/http_serve.c on this suite's backend):
 * plain sockets against the real server. */
#include "http_serve.h"
#include "server_e2e.h"

#include <stdio.h>
#include <stdlib.h>

static int start(void *srv, weft_loop *loop, int lfd)
{
    return http_serve_start(srv, loop, lfd);
}

static int stop(void *srv, int64_t grace_ns)
{
    return http_serve_close(srv, grace_ns);
}

static void run(e2e_client *clients, size_t n)
{
    http_serve h;
    e2e_server s = {.start = start, .close = stop, .srv = &h, .clients = clients, .nclients = n};
    e2e_run(&s);
}

#define SET_IN(c, lit) ((c)->in = (lit), (c)->in_len = sizeof(lit) - 1)

Test(http_server, hello_keepalive_pipelined_and_errors, .timeout = 60)
{
    enum { N = 7 };
    e2e_client *c = calloc(N, sizeof *c);
    SET_IN(&c[0], "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    /* 16 pipelined requests in one send. */
    static char pipe16[16 * 40 + 1];
    for (int i = 0; i < 16; i++)
        strcat(pipe16, "GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n");
    c[1].in = pipe16;
    c[1].in_len = strlen(pipe16);
    /* One byte at a time. */
    SET_IN(&c[2], "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    c[2].bytewise = 1;
    /* HTTP/1.0 closes after one response, whatever follows. */
    SET_IN(&c[3], "GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    SET_IN(&c[4], "GET / HTTP/1.1\r\nHost a\r\n\r\n");
    SET_IN(&c[5], "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbodyHEAD / HTTP/1.1\r\n"
                  "Host: a\r\nConnection: close\r\n\r\n");
    /* A head far over the limit. */
    static char big[12000];
    int k = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big + k, 'x', sizeof big - (size_t)k - 5);
    memcpy(big + sizeof big - 5, "\r\n\r\n", 4);
    c[6].in = big;
    c[6].in_len = sizeof big - 1;
    run(c, N);

    cr_assert_eq(e2e_count(&c[0], "HTTP/1.1 200 OK\r\n"), 1, "%.*s", (int)c[0].out_len, c[0].out);
    cr_assert_eq(e2e_count(&c[0], "\r\nServer: weft\r\n"), 1);
    cr_assert_eq(e2e_count(&c[0], "\r\nContent-Type: text/plain\r\n"), 1);
    cr_assert_eq(e2e_count(&c[0], "\r\nContent-Length: 13\r\n"), 1);
    cr_assert_eq(e2e_count(&c[0], " GMT\r\n"), 1);
    cr_assert(c[0].out_len > 13 &&
              memcmp(c[0].out + c[0].out_len - 17, "\r\n\r\nHello, World!", 17) == 0);
    cr_assert_eq(e2e_count(&c[1], "HTTP/1.1 200 OK\r\n"), 16);
    cr_assert_eq(e2e_count(&c[1], "Hello, World!"), 16);
    cr_assert_eq(e2e_count(&c[2], "Hello, World!"), 2);
    cr_assert_eq(e2e_count(&c[3], "HTTP/1.1 200 OK\r\n"), 1);
    cr_assert_eq(e2e_count(&c[3], "Connection: close\r\n"), 1);
    cr_assert_eq(e2e_count(&c[4], "HTTP/1.1 400 Bad Request\r\n"), 1);
    cr_assert_eq(e2e_count(&c[5], "HTTP/1.1 200 OK\r\n"), 2);
    cr_assert_eq(e2e_count(&c[5], "Hello, World!"), 1); /* HEAD has no body */
    cr_assert_eq(e2e_count(&c[6], "HTTP/1.1 431 Request Header Fields Too Large\r\n"), 1, "%.*s",
                 (int)c[6].out_len, c[6].out);
    free(c);
}
