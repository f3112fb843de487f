/* Built without OpenSSL (-Dtls=disabled, or libssl not found): the TLS
 * API answers -ENOTSUP, and no stream ever has a TLS layer. */
#include "net_internal.h"
#include "stream_tls.h"
#include "weft/tls.h"

#include <stdio.h>

int weft_tls_available(void)
{
    return 0;
}

int weft_tls_ctx_new(const weft_tls_ctx_opts *opts, weft_tls_ctx **out, char *why, size_t why_len)
{
    (void)opts;
    (void)out;
    if (why && why_len)
        snprintf(why, why_len, "weft was built without TLS (OpenSSL not found)");
    return -ENOTSUP;
}

void weft_tls_ctx_free(weft_tls_ctx *ctx)
{
    (void)ctx;
}

int weft_stream_start_tls(weft_stream *s, weft_tls_ctx *ctx, const weft_tls_opts *opts)
{
    (void)s;
    (void)ctx;
    (void)opts;
    return -ENOTSUP;
}

int weft_open_connection_tls(weft_loop *loop, const weft_addr *addr, const weft_stream_opts *sopts,
                             int64_t timeout_ns, weft_tls_ctx *ctx, const weft_tls_opts *topts,
                             weft_stream **out, char *why, size_t why_len)
{
    (void)loop;
    (void)addr;
    (void)sopts;
    (void)timeout_ns;
    (void)ctx;
    (void)topts;
    (void)out;
    return weft_tls_ctx_new(NULL, NULL, why, why_len);
}

const char *weft_stream_tls_error(const weft_stream *s)
{
    (void)s;
    return NULL;
}

const char *weft_stream_tls_version(const weft_stream *s)
{
    (void)s;
    return NULL;
}

const char *weft_stream_tls_cipher(const weft_stream *s)
{
    (void)s;
    return NULL;
}

int weft__server_tls_handshake(weft_stream *s, weft_tls_ctx *ctx, int64_t timeout_ns)
{
    (void)s;
    (void)ctx;
    (void)timeout_ns;
    return -ENOTSUP;
}

/* Never called: no stream has a TLS layer here. */
int64_t weft__tls_recv(weft_stream *s, weft__tls *t, void *buf, size_t len)
{
    (void)s;
    (void)t;
    (void)buf;
    (void)len;
    return -ENOTSUP;
}

int64_t weft__tls_write(weft_stream *s, weft__tls *t, const void *buf, size_t n)
{
    (void)s;
    (void)t;
    (void)buf;
    (void)n;
    return -ENOTSUP;
}

int weft__tls_pump(weft_stream *s, weft__tls *t)
{
    (void)s;
    (void)t;
    return -ENOTSUP;
}

int weft__tls_close_notify(weft_stream *s, weft__tls *t)
{
    (void)s;
    (void)t;
    return -ENOTSUP;
}

int weft__tls_pending(const weft__tls *t)
{
    (void)t;
    return 0;
}

void weft__tls_free(weft__tls *t)
{
    (void)t;
}
