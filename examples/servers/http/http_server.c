/* http_server: HTTP/1.1 "Hello, World!" (TechEmpower's plaintext test) with
 * keep-alive and pipelining; 400 for malformed requests, 431 for oversized
 * heads, 501 for chunked bodies.
 *
 *   http_server [--host 127.0.0.1] [--port 8080] [--backend auto] [--threads 1]
 */
#include "http_serve.h"
#include "serve_cli.h"

#include <stdio.h>

static int serve(weft_loop *loop, int lfd, int index, void *arg)
{
    (void)index;
    (void)arg;
    http_serve h;
    int rc = http_serve_start(&h, loop, lfd);
    if (rc < 0) {
        fprintf(stderr, "http_server: %s\n", weft_strerror(rc));
        return rc;
    }
    serve_wait_cancel(loop);
    http_serve_close(&h, 1000000000);
    return 0;
}

int main(int argc, char **argv)
{
    serve_cli c;
    int rc = serve_cli_parse(&c, argc, argv, 8080);
    if (rc)
        return rc == 1 ? 0 : rc;
    return serve_cli_run(&c, "http_server", serve, NULL);
}
