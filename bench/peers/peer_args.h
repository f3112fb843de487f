/* The flags every echo peer takes: --host H --port P [--backend NAME]
 * [--backlog N]. Unknown flags are an error (exit 2). Header-only: each
 * peer is one small program. */
#ifndef PEER_ARGS_H
#define PEER_ARGS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every peer reads into a buffer of this size per connection (libuv's
 * suggested read size), and listens with this backlog. */
#define PEER_BUF 65536
#define PEER_BACKLOG 1024

typedef struct peer_args {
    const char *host;
    int port;
    const char *backend; /* weft peers: io_uring, epoll, poll, auto */
} peer_args;

static inline void peer_parse(peer_args *a, int argc, char **argv, int with_backend)
{
    *a = (peer_args){.host = "127.0.0.1", .port = 7000, .backend = "auto"};
    for (int i = 1; i < argc; i += 2) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && strcmp(f, "--host") == 0)
            a->host = v;
        else if (v && strcmp(f, "--port") == 0)
            a->port = atoi(v);
        else if (v && with_backend && strcmp(f, "--backend") == 0)
            a->backend = v;
        else {
            fprintf(stderr, "usage: %s --host H --port P%s\n", argv[0],
                    with_backend ? " [--backend io_uring|epoll|poll|auto]" : "");
            exit(2);
        }
    }
}

/* "listening on HOST:PORT" on stderr, for a peer started with --port 0
 * (the raw peers' test reads it). POSIX only. */
#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static inline void print_port(int lfd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    char host[INET_ADDRSTRLEN] = "?";
    if (getsockname(lfd, (struct sockaddr *)&sa, &len) == 0 && sa.sin_family == AF_INET)
        inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
    fprintf(stderr, "listening on %s:%d\n", host, ntohs(sa.sin_port));
}
#endif

#endif
