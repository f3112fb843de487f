/* The servers' command line, listeners and threads: see serve_cli.h. */
#include "serve_cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f, const char *prog, int default_port)
{
    fprintf(f,
            "usage: %s [--host ADDR] [--port N] [--backend NAME] [--threads N] [--busy-poll US]\n"
            "  --host ADDR     numeric IPv4/IPv6 address to listen on (default 127.0.0.1)\n"
            "  --port N        TCP port (default %d; 0 picks a free one)\n"
            "  --backend NAME  auto, io_uring, epoll, kqueue, poll (default auto)\n"
            "  --threads N     loops on N threads, one SO_REUSEPORT listener each (default 1)\n"
            "  --busy-poll US  poll without sleeping for up to US microseconds before each\n"
            "                  wait for I/O (default 0: off; costs CPU, saves wake-ups)\n",
            prog, default_port);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int serve_cli_parse(serve_cli *c, int argc, char **argv, int default_port)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = default_port;
    c->threads = 1;
    const char *prog = argc > 0 ? argv[0] : "server";
    const char *a = "";
    for (int i = 1; i < argc; i += 2) {
        a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, prog, default_port);
            return 1;
        }
        if (!v)
            goto bad;
        if (!strcmp(a, "--host")) {
            c->host = strcmp(v, "localhost") ? v : "127.0.0.1";
        } else if (!strcmp(a, "--port")) {
            if (parse_int(v, 0, 65535, &c->port) < 0)
                goto bad;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(v, 1, 1024, &c->threads) < 0)
                goto bad;
        } else if (!strcmp(a, "--busy-poll")) {
            int us;
            if (parse_int(v, 0, (int)WEFT_BUSY_POLL_MAX_US, &us) < 0)
                goto bad;
            c->loop_opts.busy_poll_us = (uint32_t)us;
        } else if (!strcmp(a, "--backend")) {
            int k = weft_backend_from_name(v);
            if (k < 0) {
                fprintf(stderr, "%s: --backend %s: %s\n", prog, v, weft_strerror(k));
                return 2;
            }
            c->loop_opts.backend = (weft_backend_kind)k;
        } else {
            goto bad;
        }
    }
    return 0;
bad:
    fprintf(stderr, "%s: bad or incomplete argument '%s'\n", prog, a);
    usage(stderr, prog, default_port);
    return 2;
}

typedef struct run_ctx {
    serve_fn fn;
    void *arg;
    int *lfds;
} run_ctx;

static int thread_main(weft_loop *loop, int index, void *arg)
{
    run_ctx *r = arg;
    int lfd = r->lfds[index];
    r->lfds[index] = -1; /* fn owns it now */
    return r->fn(loop, lfd, index, r->arg);
}

void serve_wait_cancel(weft_loop *loop)
{
    weft_wait_cancelled(loop);
}

int serve_cli_run(const serve_cli *c, const char *prog, serve_fn fn, void *arg)
{
    signal(SIGPIPE, SIG_IGN);
    weft_addr addr;
    if (weft_addr_ip(&addr, c->host, c->port) < 0) {
        fprintf(stderr, "%s: --host %s: not a numeric IP address\n", prog, c->host);
        return 2;
    }
    int *lfds = calloc((size_t)c->threads, sizeof *lfds);
    if (!lfds)
        return 1;
    weft_listen_opts lo = {.reuseport = c->threads > 1};
    for (int i = 0; i < c->threads; i++) {
        lfds[i] = weft_listen(&addr, &lo);
        if (lfds[i] < 0) {
            fprintf(stderr, "%s: listen on %s:%d: %s\n", prog, c->host, addr.len ? c->port : 0,
                    weft_strerror(lfds[i]));
            for (int j = 0; j < i; j++)
                close(lfds[j]);
            free(lfds);
            return 1;
        }
        if (i == 0) /* port 0: the others share the port the first one got */
            weft_sockname(lfds[0], &addr);
    }
    char name[WEFT_ADDR_STRLEN];
    weft_addr_format(&addr, name, sizeof name);

    /* Threads inherit a mask with the stop signals blocked; this thread
     * waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    run_ctx r = {fn, arg, lfds};
    weft_threads *t;
    int rc = weft_threads_start(c->threads, &c->loop_opts, thread_main, &r, &t);
    if (rc < 0) {
        fprintf(stderr, "%s: starting %d loop(s): %s\n", prog, c->threads, weft_strerror(rc));
        for (int i = 0; i < c->threads; i++)
            if (lfds[i] >= 0)
                close(lfds[i]);
        free(lfds);
        return 1;
    }
    weft_loop *probe = NULL;
    const char *backend = "?";
    if (weft_loop_new(&probe, &c->loop_opts) == 0) /* only to print the backend's name */
        backend = weft_loop_backend_name(probe);
    printf("%s: listening on %s (%d thread%s, %s)\n", prog, name, c->threads,
           c->threads == 1 ? "" : "s", backend);
    fflush(stdout);
    if (probe)
        weft_loop_free(probe);
    int sig;
    sigwait(&stop, &sig);
    weft_threads_stop(t);
    rc = weft_threads_join(t);
    for (int i = 0; i < c->threads; i++)
        if (lfds[i] >= 0)
            close(lfds[i]);
    free(lfds);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, weft_strerror(rc));
        return 1;
    }
    return 0;
}
