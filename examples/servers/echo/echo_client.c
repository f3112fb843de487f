/* echo_client: the classic echo client (asyncio's TCP echo client). It
 * resolves the host with weft_getaddrinfo, opens a connection (a stream),
 * sends a message, reads the same number of bytes back, checks them, and
 * prints what came back. With --size it sends a generated message of that
 * many bytes (a writer task and a reader run at once); --connections runs
 * that many clients concurrently, --count repeats each one.
 *
 *   echo_client [--host H] [--port P] [--backend NAME] [--message TEXT]
 *               [--size BYTES] [--count N] [--connections N]
 *               [--tls-ca FILE [--tls-name NAME] | --tls-insecure]
 *
 * With --tls-ca (or --tls-insecure) it speaks TLS: the server's
 * certificate is checked against FILE and the name NAME (default: the
 * host), or not at all with --tls-insecure.
 */
#include "weft.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    weft_loop *loop;
    const char *host, *message;
    int port, count, connections, verbose;
    size_t size;
    weft_addr addr;
    int ok, failed;
    weft_tls_ctx *tls;    /* NULL: plain TCP */
    const char *tls_name; /* the server name checked (and sent as SNI) */
} client_cfg;

typedef struct {
    weft_stream *s;
    const char *p;
    size_t n;
    int rc;
} writer;

static int writer_task(void *arg, intptr_t *result)
{
    (void)result;
    writer *w = arg;
    int64_t r = weft_stream_write(w->s, w->p, w->n);
    w->rc = r < 0 ? (int)r : weft_stream_flush(w->s);
    return 0;
}

/* One exchange over stream s: 0, or an error code. */
static int exchange(client_cfg *c, weft_stream *s, const char *out, char *in, size_t n)
{
    writer w = {s, out, n, 0};
    weft_future *f;
    int rc = weft_task_spawn(c->loop, writer_task, &w, &f);
    if (rc)
        return rc;
    int64_t r = weft_stream_readexactly(s, in, n);
    weft_await(f, NULL);
    weft_future_unref(f);
    if (r < 0)
        return (int)r;
    if (w.rc)
        return w.rc;
    return memcmp(out, in, n) == 0 ? 0 : -EIO;
}

static int client_task(void *arg, intptr_t *result)
{
    (void)result;
    client_cfg *c = arg;
    size_t n = c->size ? c->size : strlen(c->message);
    char *out = malloc(n ? n : 1), *in = malloc(n ? n : 1);
    if (!out || !in) {
        free(out);
        free(in);
        c->failed++;
        return -ENOMEM;
    }
    if (c->size)
        for (size_t i = 0; i < n; i++)
            out[i] = (char)('a' + i % 26);
    else
        memcpy(out, c->message, n);
    weft_stream *s = NULL;
    char why[256] = "";
    weft_tls_opts to = {.server_name = c->tls_name, .handshake_timeout_ns = 5000000000LL};
    int rc = c->tls ? weft_open_connection_tls(c->loop, &c->addr, NULL, 5000000000LL, c->tls, &to,
                                               &s, why, sizeof why)
                    : weft_open_connection(c->loop, &c->addr, NULL, 5000000000LL, &s);
    for (int i = 0; rc == 0 && i < c->count; i++)
        rc = exchange(c, s, out, in, n);
    if (rc == 0 && c->verbose && !c->size)
        printf("received: %.*s\n", (int)n, in);
    if (s)
        weft_stream_close(s);
    if (rc) {
        if (why[0])
            fprintf(stderr, "echo_client: %s (%s)\n", weft_strerror(rc), why);
        else
            fprintf(stderr, "echo_client: %s\n", weft_strerror(rc));
        c->failed++;
    } else {
        c->ok++;
    }
    free(out);
    free(in);
    return 0;
}

static int main_task(void *arg, intptr_t *result)
{
    (void)result;
    client_cfg *c = arg;
    if (strncmp(c->host, "unix:", 5) == 0) {
        int rc = weft_addr_parse(&c->addr, c->host);
        if (rc)
            return rc;
    } else {
        char port[8];
        snprintf(port, sizeof port, "%d", c->port);
        int n = weft_getaddrinfo(c->loop, c->host, port, AF_UNSPEC, SOCK_STREAM, &c->addr, 1);
        if (n < 0) {
            fprintf(stderr, "echo_client: %s: %s\n", c->host, weft_strerror(n));
            return n;
        }
    }
    weft_future **f = calloc((size_t)c->connections, sizeof *f);
    if (!f)
        return -ENOMEM;
    for (int i = 0; i < c->connections; i++)
        if (weft_task_spawn(c->loop, client_task, c, &f[i]) != 0)
            c->failed++;
    for (int i = 0; i < c->connections; i++)
        if (f[i]) {
            weft_await(f[i], NULL);
            weft_future_unref(f[i]);
        }
    free(f);
    return 0;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--host H] [--port P] [--backend NAME] [--message TEXT] [--size BYTES]\n"
            "          [--count N] [--connections N]\n"
            "          [--tls-ca FILE [--tls-name NAME] | --tls-insecure]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    client_cfg c = {.host = "127.0.0.1",
                    .message = "Hello, World!",
                    .port = 8888,
                    .count = 1,
                    .connections = 1};
    const char *backend = "auto", *ca = NULL;
    int insecure = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--tls-insecure") == 0) {
            insecure = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage(argv[0]);
        if (strcmp(a, "--host") == 0)
            c.host = argv[++i];
        else if (strcmp(a, "--port") == 0)
            c.port = atoi(argv[++i]);
        else if (strcmp(a, "--backend") == 0)
            backend = argv[++i];
        else if (strcmp(a, "--message") == 0)
            c.message = argv[++i];
        else if (strcmp(a, "--size") == 0)
            c.size = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--count") == 0)
            c.count = atoi(argv[++i]);
        else if (strcmp(a, "--connections") == 0)
            c.connections = atoi(argv[++i]);
        else if (strcmp(a, "--tls-ca") == 0)
            ca = argv[++i];
        else if (strcmp(a, "--tls-name") == 0)
            c.tls_name = argv[++i];
        else
            usage(argv[0]);
    }
    if (c.port < 0 || c.port > 65535 || c.count < 1 || c.connections < 1 ||
        c.connections > 100000 || (!c.size && !*c.message))
        usage(argv[0]);
    c.verbose = c.connections == 1;
    int kind = weft_backend_from_name(backend);
    if (kind < 0) {
        fprintf(stderr, "echo_client: --backend %s: %s\n", backend, weft_strerror(kind));
        return 2;
    }
    if (ca || insecure) {
        weft_tls_ctx_opts to = {
            .ca_file = ca, .verify = insecure ? WEFT_TLS_VERIFY_NONE : WEFT_TLS_VERIFY_DEFAULT};
        char why[256];
        int trc = weft_tls_ctx_new(&to, &c.tls, why, sizeof why);
        if (trc) {
            fprintf(stderr, "echo_client: TLS: %s (%s)\n", weft_strerror(trc), why);
            return 1;
        }
        if (!c.tls_name && strncmp(c.host, "unix:", 5) != 0)
            c.tls_name = c.host;
    }
#ifdef SIGPIPE /* Windows has no SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
#endif
    weft_loop_opts lo = {.backend = (weft_backend_kind)kind};
    int rc = weft_loop_new(&lo, &c.loop);
    if (rc) {
        fprintf(stderr, "echo_client: loop: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_future *f;
    intptr_t r;
    rc = weft_task_spawn(c.loop, main_task, &c, &f);
    if (!rc) {
        rc = weft_run_until_complete(c.loop, f, &r);
        weft_future_unref(f);
    }
    weft_loop_free(c.loop);
    weft_tls_ctx_free(c.tls);
    if (c.connections > 1)
        printf("echo_client: %d ok, %d failed\n", c.ok, c.failed);
    return rc || c.failed ? 1 : 0;
}
