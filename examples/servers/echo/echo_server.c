/* echo_server: the classic echo server (asyncio's TCP echo server), a task
 * per connection, on one or more threads (one loop per thread, SO_REUSEPORT
 * listeners on Linux). Every byte received is sent back, nothing else, so
 * load clients can drive it. Ctrl-C (SIGINT) or SIGTERM closes it
 * gracefully: no new connections, 2 s for live ones, then they are
 * cancelled.
 *
 *   echo_server [--host H] [--port P] [--backend NAME] [--threads N]
 *               [--max-conns N]
 *
 * --host takes a numeric address, a name ("localhost"), or unix:/path.
 */
#include "weft.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Echo out of the stream's own read buffer (fill, peek, consume): no copy
 * to the task's stack, and nothing allocated until the peer speaks. */
static int echo(weft_stream *s, void *arg)
{
    (void)arg;
    for (;;) {
        int64_t n = weft_stream_fill(s);
        if (n <= 0)
            return (int)n;
        size_t len;
        const char *data = weft_stream_peek(s, &len);
        /* write queues the bytes; drain waits only when the peer is slow */
        if (weft_stream_write(s, data, len) < 0 || weft_stream_consume(s, len) < 0 ||
            weft_stream_drain(s) < 0)
            return 0;
    }
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--host H] [--port P] [--backend NAME] [--threads N] [--max-conns N]\n",
            argv0);
    exit(2);
}

/* host:port into an address: numeric first, then the system resolver
 * (startup, before any loop runs). */
static int resolve(const char *host, int port, weft_addr *out)
{
    if (strncmp(host, "unix:", 5) == 0)
        return weft_addr_parse(out, host);
    if (weft_addr_ip(out, host, port) == 0)
        return 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char ps[8];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &res) != 0)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = (uint32_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *backend = "auto";
    int port = 8888, threads = 1;
    long max_conns = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage(argv[0]);
        if (strcmp(a, "--host") == 0)
            host = argv[++i];
        else if (strcmp(a, "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(a, "--backend") == 0)
            backend = argv[++i];
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (strcmp(a, "--max-conns") == 0)
            max_conns = atol(argv[++i]);
        else
            usage(argv[0]);
    }
    weft_loop_opts lo = {0};
    int kind = weft_backend_from_name(backend);
    if (kind < 0) {
        fprintf(stderr, "echo_server: --backend %s: %s\n", backend, weft_strerror(kind));
        return 2;
    }
    lo.backend = (weft_backend_kind)kind;
    if (threads < 1 || threads > 1024 || port < 0 || port > 65535 || max_conns < 0)
        usage(argv[0]);
    weft_addr addr;
    int rc = resolve(host, port, &addr);
    if (rc) {
        fprintf(stderr, "echo_server: %s: %s\n", host, weft_strerror(rc));
        return 1;
    }
    /* Signals go to this thread only (sigwait below), not to the loops. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    weft_server_opts so = {.max_connections = (size_t)max_conns, .listen.unlink_path = 1};
    weft_threads *t;
    rc = weft_serve_threads(threads, &lo, &addr, echo, NULL, &so, 2000000000LL, &t);
    if (rc) {
        fprintf(stderr, "echo_server: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_addr bound;
    char text[WEFT_ADDR_STRLEN + 120];
    weft_threads_addr(t, &bound);
    weft_addr_format(&bound, text, sizeof text);
    printf("echo_server: listening on %s (%d thread%s)\n", text, threads, threads > 1 ? "s" : "");
    fflush(stdout);
    int sig;
    sigwait(&sigs, &sig);
    printf("echo_server: %s, closing\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    weft_threads_stop(t);
    rc = weft_threads_join(t);
    if (rc)
        fprintf(stderr, "echo_server: %s\n", weft_strerror(rc));
    return rc ? 1 : 0;
}
