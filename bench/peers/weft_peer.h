/* What the weft peers share: the flags (peer_args.h), a loop on the
 * backend asked for, and the listening socket. Header-only, as
 * peer_args.h. */
#ifndef WEFT_PEER_H
#define WEFT_PEER_H

#include "peer_args.h"

#include <weft.h>

/* Parse the flags, make *loop on the backend they name and listen on their
 * address (*lfd); with --port 0 the port is printed (print_port). 0, or -1
 * after saying why on stderr, `name` first. */
static inline int weft_peer_start(int argc, char **argv, const char *name, weft_loop **loop,
                                  int *lfd)
{
    peer_args a;
    peer_parse(&a, argc, argv, 1);
    weft_loop_opts opts = {0};
    int kind = weft_backend_from_name(a.backend);
    weft_addr addr;
    int rc = kind < 0 ? kind : weft_addr_ip(&addr, a.host, a.port);
    opts.backend = kind < 0 ? WEFT_BACKEND_AUTO : (weft_backend_kind)kind;
    if (rc == 0)
        rc = weft_loop_new(&opts, loop);
    weft_listen_opts lo = {.backlog = PEER_BACKLOG};
    if (rc == 0)
        rc = *lfd = weft_listen(&addr, &lo);
    if (rc < 0) {
        fprintf(stderr, "%s: %s:%d (%s): %s\n", name, a.host, a.port, a.backend, weft_strerror(rc));
        return -1;
    }
#ifndef _WIN32
    if (a.port == 0)
        print_port(*lfd);
#endif
    return 0;
}

/* Run the loop until it stops, free it; the exit status for main. */
static inline int weft_peer_run(weft_loop *loop)
{
    int rc = weft_loop_run(loop, WEFT_RUN_FOREVER);
    weft_loop_free(loop);
    return rc < 0 ? 1 : 0;
}

#endif
