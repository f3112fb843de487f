/* http_server: HTTP/1.1 "Hello, World!" (TechEmpower's plaintext test) with
 * keep-alive and pipelining; 400 for malformed requests, 431 for oversized
 * heads, 501 for chunked bodies; an error response is followed by a
 * lingering close (the client sees it even while it is still sending). Each thread's loop has its
 * own responses and Date timer (weft_serve_threads' per-thread setup).
 *
 *   http_server [--host 127.0.0.1] [--port 8080] [--backend auto] [--threads 1]
 *               [--busy-poll US] [--max-connections N] [--idle-timeout 75]
 *               [--header-timeout 60] [--tls-cert FILE --tls-key FILE] (https)
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
    static http_limits lim; /* read by each thread's setup */
    lim = http_limits_default();
    if (c.idle_timeout_ns >= 0)
        lim.idle_timeout_ns = c.idle_timeout_ns;
    if (c.header_timeout_ns >= 0)
        lim.header_timeout_ns = c.header_timeout_ns;
    so.server.idle_timeout_ns = http_limits_first_wait(&lim);
    return server_cli_run(&c, http_serve_conn, &lim, &so);
}
