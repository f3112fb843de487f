/* What the three example servers share: their command line and the body
 * of their main(). The threads, listeners and per-thread state are
 * weft_serve_threads' (include/weft/net.h); this only parses options,
 * prints where it listens and stops gracefully on SIGINT or SIGTERM
 * (Windows: Ctrl-C, Ctrl-Break, the console closing, logoff or shutdown),
 * through the loops' own signal handling (weft_serve_opts.stop_signals).
 *
 *   PROG [--host H] [--port P] [--backend NAME] [--threads N]
 *        [--busy-poll US] [--max-connections N] [--idle-timeout S]
 *        [--header-timeout S] [--tls-cert FILE --tls-key FILE]
 */
#ifndef SERVER_CLI_H
#define SERVER_CLI_H

#include "weft.h"

typedef struct server_cli {
    const char *prog;
    const char *host; /* numeric address, a name, or unix:/path */
    int port;
    int threads;
    size_t max_conns;               /* 0: the server's default */
    int64_t idle_timeout_ns;        /* --idle-timeout; -1: not given (the server's default) */
    int64_t header_timeout_ns;      /* --header-timeout; -1: not given */
    const char *tls_cert, *tls_key; /* --tls-cert, --tls-key: serve TLS (both or neither) */
    weft_loop_opts loop_opts;
} server_cli;

/* Parse argv into c (defaults: 127.0.0.1, default_port, 1 thread, auto
 * backend, no busy polling). Returns 0; 1 after printing the usage to stdout
 * for --help; 2 after printing the problem and the usage to stderr. */
int server_cli_parse(server_cli *c, const char *prog, int argc, char **argv, int default_port);

/* Serve c's address on c->threads loops with weft_serve_threads(handler,
 * arg, opts) (opts may be NULL; --max-conns fills opts->server's limit, a
 * stale Unix socket file is replaced; --tls-cert/--tls-key: a TLS context
 * in opts->server, loaded before serving), print "PROG: listening on ADDR
 * (N thread(s), BACKEND[, busy-poll US us])"; on SIGINT or SIGTERM
 * (Windows: a console control event) a loop prints "PROG: SIGTERM, closing"
 * (or SIGINT, Ctrl-C, Ctrl-Break, "console closed, logoff or shutdown") and
 * every thread closes its server within opts->grace_ns; this joins them.
 * Returns the process's exit status. */
int server_cli_run(const server_cli *c, weft_conn_handler handler, void *arg,
                   const weft_serve_opts *opts);

#endif
