/* The resp_server on one loop: a weft server (a task per connection, on a
 * buffered stream) running RESP commands against a keyspace. Several loops
 * (threads) may share one keyspace: give them the same lock.
 */
#ifndef RESP_SERVE_H
#define RESP_SERVE_H

#include "resp_db.h"
#include "weft.h"
#include "weft/net.h"

#include <pthread.h>

/* The keyspace and, when threads share it, its lock (NULL: one thread). */
typedef struct resp_store {
    resp_db db;
    pthread_mutex_t *lock;
    int64_t idle_timeout_ns; /* close a connection silent this long (0: never, as redis) */
} resp_store;

typedef struct resp_serve {
    weft_loop *loop;
    weft_server *server;
    resp_store *store;
} resp_serve;

/* The connection handler; arg is the resp_store. With the store as its
 * argument and resp_serve_server_opts' buffer sizes it serves on
 * weft_serve_threads' threads too (they share the store: give it a lock). */
int resp_serve_conn(weft_stream *s, void *arg);
void resp_serve_server_opts(weft_server_opts *so);

/* Start serving the listening socket lfd (owned from now on, also on
 * failure) on loop with the keyspace store. 0, or weft_start_server_fd's
 * error. */
int resp_serve_start(resp_serve *r, weft_loop *loop, int lfd, resp_store *store);

/* Task only: stop accepting, give live connections up to grace_ns, close
 * them. 0 or an error of weft_server_close. */
int resp_serve_close(resp_serve *r, int64_t grace_ns);

#endif
