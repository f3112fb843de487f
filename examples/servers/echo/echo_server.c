/* echo_server: the classic echo server (asyncio's TCP echo server), a task
 * per connection once its peer speaks (weft_start_server), on one or more threads (one loop per
 * thread, SO_REUSEPORT listeners on Linux). Every byte received is sent back, nothing else, so load
 * clients can drive it. Ctrl-C (SIGINT) or SIGTERM closes it gracefully (Windows: Ctrl-C,
 * Ctrl-Break or closing the console): no new connections, 2 s for live ones, then they are
 * cancelled.
 *
 *   echo_server [--host H] [--port P] [--backend NAME] [--threads N]
 *               [--busy-poll US] [--max-conns N] [--tls-cert FILE --tls-key FILE]
 *
 * --host takes a numeric address, a name ("localhost"), or unix:/path.
 */
#include "cli.h"

/* Echo out of the stream's own read buffer (fill, peek, consume): no copy
 * to the task's stack, and nothing allocated until the peer speaks. */
static int echo(weft_stream *s, void *arg)
{
    (void)arg;
    for (;;) {
        int64_t n = weft_stream_fill(s);
        if (n <= 0)
            return (int)n;
        size_t len;
        const char *data = weft_stream_peek(s, &len);
        /* write queues the bytes; drain waits only when the peer is slow */
        if (weft_stream_write(s, data, len) < 0 || weft_stream_consume(s, len) < 0 ||
            weft_stream_drain(s) < 0)
            return 0;
    }
}

int main(int argc, char **argv)
{
    server_cli c;
    int rc = server_cli_parse(&c, "echo_server", argc, argv, 8888);
    if (rc)
        return rc == 1 ? 0 : rc;
    weft_serve_opts so = {.grace_ns = 2000000000LL};
    return server_cli_run(&c, echo, NULL, &so);
}
