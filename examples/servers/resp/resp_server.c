/* resp_server: a subset of Redis (PING, ECHO, SET, GET, DEL, EXISTS, INCR,
 * plus DBSIZE, FLUSHALL, COMMAND, CONFIG GET, QUIT) over an in-memory
 * keyspace; inline and multibulk commands, pipelining, errors as RESP
 * errors. Good enough for redis-cli and redis-benchmark.
 *
 *   resp_server [--host 127.0.0.1] [--port 6379] [--backend auto] [--threads 1]
 *               [--busy-poll US] [--max-connections N] [--idle-timeout 0]
 *
 * With several threads the keyspace is shared under one lock, taken once
 * per batch of pipelined commands.
 */
#include "cli.h"
#include "resp_serve.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    server_cli c;
    int rc = server_cli_parse(&c, "resp_server", argc, argv, 6379);
    if (rc)
        return rc == 1 ? 0 : rc;
    static resp_store store;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (resp_db_init(&store.db) < 0) {
        fprintf(stderr, "resp_server: out of memory\n");
        return 1;
    }
    store.lock = c.threads > 1 ? &lock : NULL;
    store.idle_timeout_ns = c.idle_timeout_ns > 0 ? c.idle_timeout_ns : 0;
    weft_serve_opts so = {.grace_ns = 1000000000};
    resp_serve_server_opts(&so.server);
    so.server.idle_timeout_ns = store.idle_timeout_ns; /* also before the first command */
    rc = server_cli_run(&c, resp_serve_conn, &store, &so);
    resp_db_free(&store.db);
    return rc;
}
