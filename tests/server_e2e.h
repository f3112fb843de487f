/* End-to-end checks of the example servers: the server runs in-process on
 * the test's loop (127.0.0.1, an ephemeral port); clients are plain
 * blocking sockets on threads of their own. Each client sends its bytes
 * (whole, or one byte at a time), half-closes, and reads until the server
 * closes; the test then looks at what came back.
 */
#ifndef WEFT_TEST_SERVER_E2E_H
#define WEFT_TEST_SERVER_E2E_H

#include "net_common.h"
#include "weft/net.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

typedef struct e2e_client {
    /* Set by the test. */
    const char *in;
    size_t in_len;
    int bytewise; /* send one byte at a time, 1 ms apart */
    /* Results. */
    char out[1 << 16];
    size_t out_len;
    int err; /* errno of a failed call, 0 */
    /* Private. */
    int port;
    weft_loop *loop;
    weft_future *done;
    weft_handle done_h;
    pthread_t th;
} e2e_client;

static void e2e_done_cb(void *arg)
{
    e2e_client *c = arg;
    weft_future_set_result(c->done, 0);
}

static void *e2e_client_main(void *arg)
{
    e2e_client *c = arg;
    int fd = net_raw_socket(AF_INET, SOCK_STREAM); /* blocking */
    weft_addr a;
    weft_addr_ip(&a, "127.0.0.1", c->port);
#ifdef _WIN32
    DWORD tv = 10000; /* Winsock takes milliseconds */
    const int send_flags = 0;
#else
    struct timeval tv = {.tv_sec = 10};
    const int send_flags = MSG_NOSIGNAL;
#endif
    net_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    net_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (net_connect(fd, &a) < 0) {
        c->err = net_errno();
        goto out;
    }
    for (size_t off = 0; off < c->in_len;) {
        size_t n = c->bytewise ? 1 : c->in_len - off;
        long w = send(NET_T_SOCK(fd), c->in + off, n, send_flags);
        if (w < 0) {
            c->err = net_errno(); /* the server may close early on bad input: read what it said */
            break;
        }
        off += (size_t)w;
        if (c->bytewise)
            net_sleep_ms(1);
    }
    shutdown(NET_T_SOCK(fd), SHUT_WR);
    for (;;) {
        long r = recv(NET_T_SOCK(fd), c->out + c->out_len, sizeof c->out - c->out_len, 0);
        int err = r < 0 ? net_errno() : 0;
        if (r < 0 && err == ECONNRESET)
            break;
        if (r < 0) {
            c->err = err;
            break;
        }
        if (r == 0 || c->out_len + (size_t)r == sizeof c->out)
            break;
        c->out_len += (size_t)r;
    }
out:
    net_close(fd);
    weft_call_soon_threadsafe(c->loop, &c->done_h, e2e_done_cb, c);
    return NULL;
}

/* A server under test: start on lfd (owning it), close (task only). */
typedef struct e2e_server {
    int (*start)(void *srv, weft_loop *loop, int lfd);
    int (*close)(void *srv, int64_t grace_ns);
    void *srv;
    e2e_client *clients;
    size_t nclients;
    weft_loop *loop;
    int start_rc;
} e2e_server;

static int e2e_task(void *arg, intptr_t *result)
{
    (void)result;
    e2e_server *s = arg;
    weft_addr a;
    weft_addr_ip(&a, "127.0.0.1", 0);
    int lfd = weft_listen(&a, NULL);
    if (lfd < 0)
        return lfd;
    weft_sockname(lfd, &a);
    s->start_rc = s->start(s->srv, s->loop, lfd);
    if (s->start_rc < 0)
        return s->start_rc;
    /* Every client at once, then wait for each. */
    for (size_t i = 0; i < s->nclients; i++) {
        e2e_client *c = &s->clients[i];
        c->port = weft_addr_port(&a);
        c->loop = s->loop;
        c->done_h = (weft_handle)WEFT_HANDLE_INIT;
        weft_future_new(s->loop, &c->done);
        pthread_create(&c->th, NULL, e2e_client_main, c);
    }
    for (size_t i = 0; i < s->nclients; i++) {
        e2e_client *c = &s->clients[i];
        weft_await(c->done, NULL);
        pthread_join(c->th, NULL);
        weft_future_unref(c->done);
    }
    return s->close(s->srv, 1000000000);
}

/* Run the server with these clients on a fresh loop of the suite's backend. */
static void e2e_run(e2e_server *s)
{
    weft_loop *loop = test_loop_new();
    s->loop = loop;
    weft_future *f;
    cr_assert_eq(weft_task_spawn(loop, e2e_task, s, &f), 0);
    int rc = weft_run_until_complete(loop, f, NULL);
    weft_future_unref(f);
    cr_assert_eq(rc, 0, "server task: %s", weft_strerror(rc));
    test_loop_free(loop);
    for (size_t i = 0; i < s->nclients; i++)
        cr_assert_eq(s->clients[i].err, 0, "client %llu: %s", (unsigned long long)i,
                     strerror(s->clients[i].err));
}

/* How often needle occurs in c's output. */
static size_t e2e_count(const e2e_client *c, const char *needle)
{
    size_t n = 0, k = strlen(needle);
    for (size_t i = 0; i + k <= c->out_len; i++)
        if (memcmp(c->out + i, needle, k) == 0)
            n++;
    return n;
}

#endif
