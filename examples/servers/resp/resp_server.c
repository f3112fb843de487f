/* resp_server: a subset of Redis (PING, ECHO, SET, GET, DEL, EXISTS, INCR,
 * plus DBSIZE, FLUSHALL, COMMAND, CONFIG GET, QUIT) over an in-memory
 * keyspace; inline and multibulk commands, pipelining, errors as RESP
 * errors. Good enough for redis-cli and redis-benchmark.
 *
 *   resp_server [--host 127.0.0.1] [--port 6379] [--backend auto] [--threads 1]
 *
 * With several threads the keyspace is shared under one lock, taken once
 * per batch of pipelined commands.
 */
#include "resp_serve.h"
#include "serve_cli.h"

#include <stdio.h>

static int serve(weft_loop *loop, int lfd, int index, void *arg)
{
    (void)index;
    resp_serve r;
    int rc = resp_serve_start(&r, loop, lfd, arg);
    if (rc < 0) {
        fprintf(stderr, "resp_server: %s\n", weft_strerror(rc));
        return rc;
    }
    serve_wait_cancel(loop);
    resp_serve_close(&r, 1000000000);
    return 0;
}

int main(int argc, char **argv)
{
    serve_cli c;
    int rc = serve_cli_parse(&c, argc, argv, 6379);
    if (rc)
        return rc == 1 ? 0 : rc;
    static resp_store store;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (resp_db_init(&store.db) < 0) {
        fprintf(stderr, "resp_server: out of memory\n");
        return 1;
    }
    store.lock = c.threads > 1 ? &lock : NULL;
    rc = serve_cli_run(&c, "resp_server", serve, &store);
    resp_db_free(&store.db);
    return rc;
}
