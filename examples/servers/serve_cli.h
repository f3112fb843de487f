/* What http_server and resp_server share: the command line (--host, --port,
 * --backend, --threads, --busy-poll), the listeners (one SO_REUSEPORT socket per thread
 * when there are several), one loop per thread, and a clean stop on SIGINT
 * or SIGTERM.
 */
#ifndef SERVE_CLI_H
#define SERVE_CLI_H

#include "weft.h"
#include "weft/net.h"

typedef struct serve_cli {
    const char *host;
    int port;
    int threads;
    weft_loop_opts loop_opts;
} serve_cli;

/* Parse argv into c (defaults: 127.0.0.1, default_port, 1 thread, auto
 * backend). On a bad flag prints the usage to stderr and returns 2; for
 * --help prints it to stdout and returns 1; else 0. */
int serve_cli_parse(serve_cli *c, int argc, char **argv, int default_port);

/* Serve one listener on one loop until cancelled (a task of its own on that
 * loop; index is the thread's number). It owns lfd. Returns 0 or an error. */
typedef int (*serve_fn)(weft_loop *loop, int lfd, int index, void *arg);

/* Bind the listeners, print "<prog>: listening on <addr> (<n> thread(s),
 * <backend>)", run fn on each thread's loop until SIGINT or SIGTERM, then
 * stop the threads and join them. Returns a process exit status. */
int serve_cli_run(const serve_cli *c, const char *prog, serve_fn fn, void *arg);

/* Task only: wait until the running task is cancelled (returns then). */
void serve_wait_cancel(weft_loop *loop);

#endif
