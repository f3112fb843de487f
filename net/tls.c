/* TLS over OpenSSL under a weft_stream (weft/tls.h).
 *
 * Each stream gets an SSL object whose I/O is a BIO pair with fixed
 * buffers: SSL reads ciphertext from, and writes it to, memory, never the
 * socket, so the stream's own receive op and background send carry the
 * bytes on every backend (completion or readiness alike). Receives go
 * straight into the pair's free space (BIO_nwrite0: no copy, no
 * allocation per operation); what SSL writes is moved into the stream's
 * write buffer (BIO_read), which the background send pushes out.
 *
 * Several tasks may use a stream (one reader, one writer): SSL calls never
 * suspend, and whoever moves the pair's output into the write buffer
 * keeps its order, so the reader may queue what SSL_read produced (a
 * KeyUpdate answer, an alert) while the writer waits for room. */
#include "net_internal.h"
#include "stream_tls.h"
#include "weft/tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <arpa/inet.h>
#endif

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Ciphertext buffers of the pair: a whole record (16 KiB + 2 KiB expansion
 * + header) fits in each, and the incoming one takes two per receive. */
#define IN_BUF (40 * 1024)
#define OUT_BUF (20 * 1024)
/* Plaintext per SSL_write: one record. */
#define RECORD 16384

struct weft_tls_ctx {
    SSL_CTX *ssl;
    int server;
};

struct weft__tls {
    SSL *ssl;
    BIO *net; /* our end of the pair: ciphertext in (nwrite), out (read) */
    int err;  /* lasting failure (0: none) */
    char why[256];
};

int weft_tls_available(void)
{
    return 1;
}

/* OpenSSL's reasons for the last failure (or `what` when it gave none). */
static void reason(char *why, size_t len, const char *what)
{
    if (!why || !len)
        return;
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(why, len, "%s", what);
        return;
    }
    char buf[200];
    ERR_error_string_n(e, buf, sizeof buf);
    snprintf(why, len, "%s: %s", what, buf);
    ERR_clear_error();
}

static int ctx_fail(SSL_CTX *c, int code, char *why, size_t len, const char *what)
{
    reason(why, len, what);
    SSL_CTX_free(c);
    return code;
}

/* A file that cannot be opened is -ENOENT; one OpenSSL rejects, -EPROTO. */
static int file_code(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -ENOENT;
    fclose(f);
    return -EPROTO;
}

int weft_tls_ctx_new(const weft_tls_ctx_opts *o, weft_tls_ctx **out, char *why, size_t why_len)
{
    if (why && why_len)
        why[0] = '\0';
    if (!o || !out || (o->server && (!o->cert_file || !o->key_file)) ||
        (o->verify == WEFT_TLS_VERIFY_PEER && o->server && !o->ca_file)) {
        if (why && why_len)
            snprintf(why, why_len, "invalid options");
        return -EINVAL;
    }
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    if (!c)
        return ctx_fail(c, -ENOMEM, why, why_len, "SSL_CTX_new");
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->cert_file && SSL_CTX_use_certificate_chain_file(c, o->cert_file) != 1)
        return ctx_fail(c, file_code(o->cert_file), why, why_len, o->cert_file);
    if (o->key_file && SSL_CTX_use_PrivateKey_file(c, o->key_file, SSL_FILETYPE_PEM) != 1)
        return ctx_fail(c, file_code(o->key_file), why, why_len, o->key_file);
    if (o->cert_file && o->key_file && SSL_CTX_check_private_key(c) != 1)
        return ctx_fail(c, -EPROTO, why, why_len, "the key does not match the certificate");
    if (o->ciphers && SSL_CTX_set_cipher_list(c, o->ciphers) != 1)
        return ctx_fail(c, -EPROTO, why, why_len, "cipher list");
    if (o->ciphersuites && SSL_CTX_set_ciphersuites(c, o->ciphersuites) != 1)
        return ctx_fail(c, -EPROTO, why, why_len, "TLS 1.3 cipher suites");
    if (o->ca_file && SSL_CTX_load_verify_locations(c, o->ca_file, NULL) != 1)
        return ctx_fail(c, file_code(o->ca_file), why, why_len, o->ca_file);
    int verify = SSL_VERIFY_NONE;
    if (!o->server && o->verify != WEFT_TLS_VERIFY_NONE) {
        verify = SSL_VERIFY_PEER;
        if (!o->ca_file && SSL_CTX_set_default_verify_paths(c) != 1)
            return ctx_fail(c, -EPROTO, why, why_len, "the system's certificate store");
    } else if (o->server && o->verify == WEFT_TLS_VERIFY_PEER) {
        verify = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(c, verify, NULL);
    weft_tls_ctx *x = malloc(sizeof *x);
    if (!x)
        return ctx_fail(c, -ENOMEM, why, why_len, "out of memory");
    x->ssl = c;
    x->server = o->server != 0;
    *out = x;
    return 0;
}

void weft_tls_ctx_free(weft_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl); /* each SSL holds its own reference */
    free(ctx);
}

void weft__tls_free(weft__tls *t)
{
    SSL_free(t->ssl); /* frees its end of the pair */
    BIO_free(t->net);
    free(t);
}

/* Record a lasting failure with OpenSSL's reason (or the verification
 * result) and return its code. */
static int fail(weft__tls *t, int code, const char *what)
{
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK && !SSL_is_init_finished(t->ssl)) {
        snprintf(t->why, sizeof t->why, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else {
        reason(t->why, sizeof t->why, what);
    }
    t->err = code;
    return code;
}

/* Move what SSL wrote into the stream's write buffer; with may_wait until
 * all of it is there, else as much as fits now. 0 or an error. */
static int pump_out(weft_stream *s, weft__tls *t, int may_wait)
{
    for (;;) {
        size_t pend = BIO_ctrl_pending(t->net);
        if (!pend)
            return 0;
        char *at;
        int64_t room = weft__stream_wroom(s, pend, may_wait, &at);
        if (room <= 0)
            return (int)room;
        int k = BIO_read(t->net, at, (int)(pend < (size_t)room ? pend : (size_t)room));
        if (k <= 0)
            return 0;
        int rc = weft__stream_wcommit(s, (size_t)k);
        if (rc)
            return rc;
    }
}

/* Receive ciphertext into the pair's free space: bytes, or 0 at the end of
 * the connection, or an error. */
static int64_t feed(weft_stream *s, weft__tls *t)
{
    char *at;
    int room = BIO_nwrite0(t->net, &at);
    if (room <= 0)
        return -ENOBUFS; /* SSL wants more yet holds a full buffer: cannot be */
    int64_t n = weft__stream_recv_raw(s, at, (size_t)room);
    if (n > 0)
        BIO_nwrite(t->net, &at, (int)n);
    return n;
}

int64_t weft__tls_recv(weft_stream *s, weft__tls *t, void *buf, size_t len)
{
    if (t->err)
        return t->err;
    if (len > INT_MAX)
        len = INT_MAX;
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(t->ssl, buf, (int)len);
        int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
        int rc = pump_out(s, t, 0); /* tickets, KeyUpdate answers, alerts */
        if (r > 0)
            return r;
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0; /* close_notify */
        if (e == SSL_ERROR_WANT_WRITE)
            return rc ? rc : -ENOBUFS; /* the write buffer is full at its limit */
        if (e != SSL_ERROR_WANT_READ)
            return fail(t, -EPROTO, "TLS read");
        int64_t n = feed(s, t);
        if (n == 0)
            return fail(t, -ECONNRESET, "the peer closed the connection without close_notify");
        if (n < 0)
            return n;
    }
}

int64_t weft__tls_write(weft_stream *s, weft__tls *t, const void *buf, size_t n)
{
    if (t->err)
        return t->err;
    const char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < RECORD ? n - done : RECORD;
        ERR_clear_error();
        int r = SSL_write(t->ssl, p + done, (int)k);
        if (r > 0) {
            done += (size_t)r;
        } else {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN)
                return -EPIPE;
            if (e != SSL_ERROR_WANT_WRITE)
                return fail(t, -EPROTO, "TLS write");
        }
        int rc = pump_out(s, t, 1);
        if (rc)
            return rc;
    }
    return (int64_t)n;
}

int weft__tls_pump(weft_stream *s, weft__tls *t)
{
    return t->err ? t->err : pump_out(s, t, 1);
}

int weft__tls_close_notify(weft_stream *s, weft__tls *t)
{
    if (t->err)
        return t->err;
    ERR_clear_error();
    if (SSL_shutdown(t->ssl) < 0) {
        int e = SSL_get_error(t->ssl, -1);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            ERR_clear_error(); /* already sent, or the peer's went first */
    }
    return pump_out(s, t, 1);
}

int weft__tls_pending(const weft__tls *t)
{
    return SSL_has_pending(t->ssl) || BIO_ctrl_wpending(t->net) > 0;
}

/* Nonzero when name is an IPv4 or IPv6 literal. */
static int is_ip(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static weft__tls *tls_new(weft_tls_ctx *ctx, const char *name)
{
    weft__tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    BIO *inner = NULL;
    t->ssl = SSL_new(ctx->ssl);
    if (!t->ssl || BIO_new_bio_pair(&inner, OUT_BUF, &t->net, IN_BUF) != 1)
        goto fail;
    SSL_set_bio(t->ssl, inner, inner);
    inner = NULL;
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (name && !is_ip(name) && SSL_set_tlsext_host_name(t->ssl, name) != 1)
            goto fail;
        if (name && SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE) {
            int ok = is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name)
                                 : SSL_set1_host(t->ssl, name);
            if (ok != 1)
                goto fail;
        }
    }
    return t;
fail:
    ERR_clear_error();
    BIO_free(inner);
    if (t->ssl)
        SSL_free(t->ssl);
    BIO_free(t->net);
    free(t);
    return NULL;
}

/* The handshake loop: SSL steps, its output queued, input received. */
static int handshake(weft_stream *s, weft__tls *t)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(t->ssl);
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
        int rc = pump_out(s, t, 1);
        if (rc)
            return rc;
        if (r == 1)
            return 0;
        if (e == SSL_ERROR_WANT_WRITE)
            continue; /* pumped */
        if (e != SSL_ERROR_WANT_READ)
            return fail(t, -EPROTO, "TLS handshake");
        int64_t n = feed(s, t);
        if (n == 0)
            return fail(t, -ECONNRESET, "the peer closed the connection during the handshake");
        if (n < 0)
            return (int)n;
    }
}

int weft_stream_start_tls(weft_stream *s, weft_tls_ctx *ctx, const weft_tls_opts *opts)
{
    if (!s || !ctx)
        return -EINVAL;
    weft_tls_opts o = opts ? *opts : (weft_tls_opts){0};
    weft__tls *t = tls_new(ctx, o.server_name);
    if (!t)
        return -ENOMEM;
    int rc = weft__stream_attach_tls(s, t);
    if (rc) {
        weft__tls_free(t);
        return rc;
    }
    size_t have;
    const char *early = weft__stream_take_buffered(s, &have);
    if (have && BIO_write(t->net, early, (int)have) != (int)have)
        return t->err = -EMSGSIZE;
    weft_loop *loop = weft_stream_loop(s);
    uint64_t old = 0, limit = 0;
    if (o.handshake_timeout_ns > 0) {
        limit = weft_loop_now(loop) + (uint64_t)o.handshake_timeout_ns;
        old = weft__stream_swap_deadline(s, limit);
        if (old && old < limit)
            weft__stream_swap_deadline(s, old); /* the stream's own is sooner */
    }
    rc = handshake(s, t);
    if (rc) {
        if (!t->err)
            t->err = rc; /* half a handshake: the stream is unusable */
        if (rc == -EPROTO)
            weft__stream_flush_raw(s); /* our alert, if any, within the limit */
    }
    if (limit && (!old || old >= limit))
        weft__stream_swap_deadline(s, old);
    return rc;
}

int weft_open_connection_tls(weft_loop *loop, const weft_addr *addr, const weft_stream_opts *sopts,
                             int64_t timeout_ns, weft_tls_ctx *ctx, const weft_tls_opts *topts,
                             weft_stream **out, char *why, size_t why_len)
{
    if (why && why_len)
        why[0] = '\0';
    if (!ctx || !out)
        return -EINVAL;
    weft_stream *s;
    int rc = weft_open_connection(loop, addr, sopts, timeout_ns, &s);
    if (rc)
        return rc;
    rc = weft_stream_start_tls(s, ctx, topts);
    if (rc) {
        const char *w = weft_stream_tls_error(s);
        if (why && why_len)
            snprintf(why, why_len, "%s", w ? w : "");
        weft_stream_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

const char *weft_stream_tls_error(const weft_stream *s)
{
    weft__tls *t = weft__stream_tls(s);
    return t ? t->why : NULL;
}

const char *weft_stream_tls_version(const weft_stream *s)
{
    weft__tls *t = weft__stream_tls(s);
    return t && SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : NULL;
}

const char *weft_stream_tls_cipher(const weft_stream *s)
{
    weft__tls *t = weft__stream_tls(s);
    return t && SSL_is_init_finished(t->ssl) ? SSL_get_cipher_name(t->ssl) : NULL;
}

int weft__server_tls_handshake(weft_stream *s, weft_tls_ctx *ctx, int64_t timeout_ns)
{
    weft_tls_opts o = {.handshake_timeout_ns = timeout_ns == 0 ? WEFT__TLS_SERVER_HANDSHAKE_NS
                                                               : (timeout_ns < 0 ? 0 : timeout_ns)};
    return weft_stream_start_tls(s, ctx, &o);
}
