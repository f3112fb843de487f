/* The example servers' command line and main loop: see cli.h. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <signal.h>
#else
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#endif

static void usage(FILE *f, const char *prog, int default_port)
{
    fprintf(f,
            "usage: %s [--host H] [--port N] [--backend NAME] [--threads N] [--busy-poll US]\n"
            "          [--max-connections N] [--idle-timeout S] [--header-timeout S]\n"
            "          [--tls-cert FILE --tls-key FILE]\n"
            "  --host H        address to listen on: numeric IPv4/IPv6, a name, or unix:/path\n"
            "                  (default 127.0.0.1)\n"
            "  --port N        TCP port (default %d; 0 picks a free one)\n"
            "  --backend NAME  auto, io_uring, epoll, poll, kqueue, iocp (default auto)\n"
            "  --threads N     loops on N threads (default 1); one SO_REUSEPORT listener each\n"
            "                  where the system has it, else one listener they share\n"
            "  --busy-poll US  poll without sleeping for up to US microseconds before each\n"
            "                  wait for I/O (default 0: off; costs CPU, saves wake-ups)\n"
            "  --max-connections N  live connections per thread (default 0: the server's\n"
            "                  10000; --max-conns is the same); at the limit http_server and\n"
            "                  resp_server close a silent or idle connection for the new\n"
            "                  one, echo_server pauses accepting until a connection ends\n"
            "  --idle-timeout S  close a connection silent for S seconds between requests\n"
            "                  (0: never; http_server default 75, resp_server 0 as redis)\n"
            "  --header-timeout S  http_server: close a connection whose request head is\n"
            "                  not complete S seconds after it began (0: never; default 60)\n"
            "  --tls-cert FILE --tls-key FILE  serve TLS (https for http_server) with this PEM\n"
            "                  certificate chain and key (needs weft built with OpenSSL)\n",
            prog, default_port);
}

/* Seconds (a decimal, >= 0, at most a year) to nanoseconds. */
static int parse_seconds(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 31536000.0)
        return -1;
    *out = (int64_t)(v * 1e9);
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int server_cli_parse(server_cli *c, const char *prog, int argc, char **argv, int default_port)
{
    memset(c, 0, sizeof *c);
    c->prog = prog;
    c->host = "127.0.0.1";
    c->port = default_port;
    c->threads = 1;
    c->idle_timeout_ns = -1;
    c->header_timeout_ns = -1;
    const char *a = "";
    for (int i = 1; i < argc; i += 2) {
        a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, prog, default_port);
            return 1;
        }
        if (!v)
            goto bad;
        if (!strcmp(a, "--host")) {
            c->host = v;
        } else if (!strcmp(a, "--port")) {
            if (parse_long(v, 0, 65535, &n) < 0)
                goto bad;
            c->port = (int)n;
        } else if (!strcmp(a, "--threads")) {
            if (parse_long(v, 1, 1024, &n) < 0)
                goto bad;
            c->threads = (int)n;
        } else if (!strcmp(a, "--busy-poll")) {
            if (parse_long(v, 0, (long)WEFT_BUSY_POLL_MAX_US, &n) < 0)
                goto bad;
            c->loop_opts.busy_poll_us = (uint32_t)n;
        } else if (!strcmp(a, "--idle-timeout")) {
            if (parse_seconds(v, &c->idle_timeout_ns) < 0)
                goto bad;
        } else if (!strcmp(a, "--header-timeout")) {
            if (parse_seconds(v, &c->header_timeout_ns) < 0)
                goto bad;
        } else if (!strcmp(a, "--max-conns") || !strcmp(a, "--max-connections")) {
            if (parse_long(v, 0, 1000000000L, &n) < 0)
                goto bad;
            c->max_conns = (size_t)n;
        } else if (!strcmp(a, "--tls-cert")) {
            c->tls_cert = v;
        } else if (!strcmp(a, "--tls-key")) {
            c->tls_key = v;
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
    if (!c->tls_cert != !c->tls_key) {
        fprintf(stderr, "%s: --tls-cert and --tls-key go together\n", prog);
        usage(stderr, prog, default_port);
        return 2;
    }
    return 0;
bad:
    fprintf(stderr, "%s: bad or incomplete argument '%s'\n", prog, a);
    usage(stderr, prog, default_port);
    return 2;
}

/* host:port into an address: unix:/path, numeric, then the system
 * resolver (at startup, before any loop runs). */
static int resolve(const char *host, int port, weft_addr *out)
{
    if (strncmp(host, "unix:", 5) == 0)
        return weft_addr_parse(out, host);
    if (strcmp(host, "localhost") == 0) /* not ::1, whatever the resolver prefers */
        host = "127.0.0.1";
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

/* The stop request comes through the loops (weft_serve_opts.stop_signals:
 * weft/signal.h); this only names it and prepares the process. POSIX: the
 * stop signals are blocked before any thread starts (the loops' threads
 * inherit the mask), so none is taken by a thread without a loop. */
static const char *signal_name(int signo)
{
#ifdef _WIN32
    switch (signo) {
    case SIGINT:
        return "Ctrl-C";
    case SIGBREAK:
        return "Ctrl-Break";
    default:
        return "console closed, logoff or shutdown";
    }
#else
    return signo == SIGINT ? "SIGINT" : "SIGTERM";
#endif
}

/* On the thread of the loop that took the signal first. */
static void on_stop_signal(int signo, void *arg)
{
    const server_cli *c = arg;
    printf("%s: %s, closing\n", c->prog, signal_name(signo));
    fflush(stdout);
}

static int process_init(void)
{
#ifdef _WIN32
    WSADATA wsa; /* getaddrinfo() below needs Winsock; it counts its users */
    return WSAStartup(MAKEWORD(2, 2), &wsa) ? -EIO : 0;
#else
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
#endif
}

static void process_done(void)
{
#ifdef _WIN32
    WSACleanup();
#endif
}

/* --tls-cert/--tls-key: the server context (files read now, before any
 * loop runs). 0 with *ctx set or left NULL without TLS, or 1 after saying why. */
static int tls_context(const server_cli *c, weft_tls_ctx **ctx)
{
    *ctx = NULL;
    if (!c->tls_cert)
        return 0;
    weft_tls_ctx_opts o = {.server = 1, .cert_file = c->tls_cert, .key_file = c->tls_key};
    char why[256];
    int rc = weft_tls_ctx_new(&o, ctx, why, sizeof why);
    if (rc) {
        fprintf(stderr, "%s: TLS: %s (%s)\n", c->prog, weft_strerror(rc), why);
        return 1;
    }
    return 0;
}

int server_cli_run(const server_cli *c, weft_conn_handler handler, void *arg,
                   const weft_serve_opts *opts)
{
    /* Before any thread starts: the loops' threads inherit the mask. */
    int rc = process_init();
    if (rc) {
        fprintf(stderr, "%s: cannot wait for a stop request: %s\n", c->prog, weft_strerror(rc));
        return 1;
    }
    weft_addr addr;
    rc = resolve(c->host, c->port, &addr);
    if (rc) {
        fprintf(stderr, "%s: --host %s: %s\n", c->prog, c->host, weft_strerror(rc));
        process_done();
        return 1;
    }
    weft_serve_opts so = opts ? *opts : (weft_serve_opts){0};
    if (c->max_conns)
        so.server.max_connections = c->max_conns;
    so.server.listen.unlink_path = 1;
    so.stop_signals = 1;
    so.on_stop_signal = on_stop_signal;
    so.stop_signal_arg = (void *)c;
    weft_tls_ctx *tls;
    if (tls_context(c, &tls)) {
        process_done();
        return 1;
    }
    if (tls)
        so.server.tls = tls;

    weft_threads *t;
    rc = weft_serve_threads(c->threads, &c->loop_opts, &addr, handler, arg, &so, &t);
    if (rc) {
        fprintf(stderr, "%s: serving %s on %d thread(s): %s\n", c->prog, c->host, c->threads,
                weft_strerror(rc));
        weft_tls_ctx_free(tls);
        process_done();
        return 1;
    }
    weft_addr bound;
    char name[WEFT_ADDR_STRLEN + 120];
    weft_threads_addr(t, &bound);
    weft_addr_format(&bound, name, sizeof name);
    weft_loop *probe = NULL;
    const char *backend = "?";
    if (weft_loop_new(&c->loop_opts, &probe) == 0) /* only to print the backend's name */
        backend = weft_loop_backend_name(probe);
    printf("%s: listening on %s (%d thread%s, %s%s", c->prog, name, c->threads,
           c->threads == 1 ? "" : "s", backend, tls ? ", TLS" : "");
    if (c->loop_opts.busy_poll_us)
        printf(", busy-poll %u us", (unsigned)c->loop_opts.busy_poll_us);
    printf(")\n");
    fflush(stdout);
    if (probe)
        weft_loop_free(probe);

    rc = weft_threads_join(t); /* until a stop signal has closed every thread's server */
    weft_tls_ctx_free(tls);
    process_done();
    if (rc) {
        fprintf(stderr, "%s: %s\n", c->prog, weft_strerror(rc));
        return 1;
    }
    return 0;
}
