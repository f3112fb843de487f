/* http_server: HTTP/1.1 "Hello, World!" (TechEmpower's plaintext test) with
 * keep-alive and pipelining; 400 for malformed requests, 431 for oversized
 * heads, 501 for chunked bodies. Each thread's loop has its own responses
 * and Date timer (weft_serve_threads' per-thread setup).
 *
 *   http_server [--host 127.0.0.1] [--port 8080] [--backend auto] [--threads 1]
 *               [--busy-poll US] [--max-conns N]
 */
#include "cli.h"
#include "http_serve.h"

int main(int argc, char **argv)
{
    server_cli c;
    int rc = server_cli_parse(&c, "http_server", argc, argv, 8080);
    if (rc)
        return rc == 1 ? 0 : rc;
    weft_serve_opts so = {.grace_ns = 1000000000};
    http_serve_threads_opts(&so);
    return server_cli_run(&c, http_serve_conn, NULL, &so);
}
