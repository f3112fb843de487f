/* TLS streams over OpenSSL (built with -Dtls=auto when libssl is found;
 * WEFT_HAVE_TLS in weft_config.h). Without OpenSSL every call here
 * returns -ENOTSUP (weft_tls_available() says which).
 *
 * The TLS layer sits under a weft_stream, driven through memory BIOs, so
 * it works on every backend: the stream's reads see plaintext, its writes
 * are encrypted into the write buffer (which then holds ciphertext:
 * weft_stream_write_buffered and the water marks count ciphertext), and
 * readline, readexactly, readuntil, drain, flush, timeouts and deadlines
 * behave as on a plain stream. weft_stream_write_eof sends close_notify,
 * then shuts the socket's write side.
 *
 * Errors: -EPROTO for a failed handshake or a bad record (a protocol
 * error, an alert from the peer, a certificate that failed verification:
 * expired, unknown issuer, wrong host name), -ECONNRESET when the peer
 * closed the connection without close_notify (a truncated handshake or
 * stream), -ETIMEDOUT for the handshake timeout or a stream deadline,
 * -ENOTSUP without TLS. -EPROTO and -ECONNRESET are lasting: every later
 * read returns them. weft_stream_tls_error() gives OpenSSL's reason. */
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include "weft/net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when weft was built with TLS, 0 when not. */
int weft_tls_available(void);

/* How a context checks the peer's certificate. */
enum {
    /* client: verify the server against ca_file (or the system's store);
     * server: ask for no client certificate */
    WEFT_TLS_VERIFY_DEFAULT = 0,
    WEFT_TLS_VERIFY_NONE = 1, /* client: accept any server certificate (tests only) */
    WEFT_TLS_VERIFY_PEER = 2, /* server: require a client certificate signed by ca_file */
};

typedef struct weft_tls_ctx_opts {
    int server;               /* 1: accept side (cert_file and key_file required) */
    const char *cert_file;    /* PEM certificate chain (server; client for client auth) */
    const char *key_file;     /* PEM private key of cert_file */
    const char *ca_file;      /* PEM certificates to verify the peer against */
    int verify;               /* WEFT_TLS_VERIFY_* */
    const char *ciphers;      /* TLS 1.2 cipher list (OpenSSL syntax); NULL: OpenSSL's */
    const char *ciphersuites; /* TLS 1.3 suites; NULL: OpenSSL's */
} weft_tls_ctx_opts;

/* Make a context (an SSL_CTX: TLS 1.2 and 1.3, no renegotiation) and load
 * its files now (blocking file reads: do it before serving). Shared by any
 * number of streams, also on several threads. 0 with *out set, or -EINVAL
 * (NULL, a server without cert/key, a VERIFY_PEER server without ca_file),
 * -ENOENT (a file cannot be read), -EPROTO (a bad certificate, key, cipher
 * list, or key not matching the certificate), -ENOMEM, -ENOTSUP (no TLS).
 * When why is not NULL, the reason of a failure is written there
 * (NUL-terminated, cut at why_len). */
int weft_tls_ctx_new(const weft_tls_ctx_opts *opts, weft_tls_ctx **out, char *why, size_t why_len);

/* Drop the caller's reference; streams started with ctx keep it alive
 * until they close. NULL is ignored. */
void weft_tls_ctx_free(weft_tls_ctx *ctx);

typedef struct weft_tls_opts {
    /* client: the server's name, sent as SNI (when not an IP literal) and
     * checked against the certificate (DNS name or IP address) unless the
     * context verifies nothing; NULL: no SNI, no name check */
    const char *server_name;
    /* the whole handshake's limit (> 0), or none (0: only the stream's own
     * timeout and deadline apply) */
    int64_t handshake_timeout_ns;
} weft_tls_opts;

/* Task only: start TLS on a connected stream and run the handshake (the
 * client or server side, as ctx says); bytes the stream had received and
 * not yet handed out are taken as the start of the handshake (STARTTLS).
 * opts may be NULL. 0 when the handshake is done; on failure the stream is
 * left unusable (reads and writes return the error) and the caller closes
 * it. Errors: -EINVAL (NULL, already TLS, closing), -EPERM, -EBUSY (a read
 * or write in progress), -ENOMEM, -ENOTSUP, and the handshake's: -EPROTO,
 * -ECONNRESET, -ETIMEDOUT, -ECANCELED, or a socket error. */
int weft_stream_start_tls(weft_stream *s, weft_tls_ctx *ctx, const weft_tls_opts *opts);

/* Task only: weft_open_connection, then weft_stream_start_tls. 0 with *out
 * set, or an error of either (the stream is then closed; when why is not
 * NULL, the TLS reason is written there as by weft_tls_ctx_new). */
int weft_open_connection_tls(weft_loop *loop, const weft_addr *addr, const weft_stream_opts *sopts,
                             int64_t timeout_ns, weft_tls_ctx *ctx, const weft_tls_opts *topts,
                             weft_stream **out, char *why, size_t why_len);

/* The reason of the stream's last TLS failure (OpenSSL's error string, or
 * the certificate verification result), "" when none, NULL when s is not
 * a TLS stream. Valid until the stream's next call or its close. */
const char *weft_stream_tls_error(const weft_stream *s);

/* The negotiated protocol version ("TLSv1.3") and cipher of a TLS stream
 * after its handshake; NULL otherwise. Static strings. */
const char *weft_stream_tls_version(const weft_stream *s);
const char *weft_stream_tls_cipher(const weft_stream *s);

#ifdef __cplusplus
}
#endif
#endif
