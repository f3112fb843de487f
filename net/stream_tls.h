/* The seam between a stream (net/stream.c) and its TLS layer (net/tls.c,
 * or net/tls_none.c without OpenSSL). The stream keeps its buffers,
 * deadlines and background send; the TLS layer sits between the
 * descriptor and them: it receives ciphertext through
 * weft__stream_recv_raw and hands plaintext to the read buffer, and it
 * encrypts writes into the write buffer (weft__stream_wroom/wcommit). */
#ifndef WEFT_NET_STREAM_TLS_H
#define WEFT_NET_STREAM_TLS_H

#include "weft/net.h"

#include <stddef.h>
#include <stdint.h>

typedef struct weft__tls weft__tls;

/* --- stream.c, for the TLS layer --- */

/* Task only: one receive from the descriptor under the stream's deadlines
 * (bytes, 0 at end, -ETIMEDOUT, -ECANCELED or an error); records nothing. */
int64_t weft__stream_recv_raw(weft_stream *s, void *buf, size_t len);

/* Room at the end of the write buffer for up to `want` bytes (compacting
 * or growing it); with may_wait, waits for sends (under the write
 * deadlines) until there is some. The room (*at points to it; 0 only
 * without may_wait) or an error. */
int64_t weft__stream_wroom(weft_stream *s, size_t want, int may_wait, char **at);

/* n bytes were put at *at: queue them and start the send. 0 or the
 * stream's write error. */
int weft__stream_wcommit(weft_stream *s, size_t n);

/* Task only: wait until everything buffered is sent. 0 or an error. */
int weft__stream_flush_raw(weft_stream *s);

/* Task only: make t the stream's TLS layer (it frees t with the stream).
 * 0, -EINVAL (closing, has one), -EPERM, -EBUSY (a read or write in
 * progress), or the error that ended the read side. */
int weft__stream_attach_tls(weft_stream *s, weft__tls *t);

weft__tls *weft__stream_tls(const weft_stream *s);

/* Take the unread bytes of the read buffer (bytes received before TLS
 * started: the start of the handshake); valid until the next read. */
const char *weft__stream_take_buffered(weft_stream *s, size_t *len);

/* Set the absolute deadline (loop clock, 0: none); the previous one. */
uint64_t weft__stream_swap_deadline(weft_stream *s, uint64_t deadline);

/* --- tls.c, for the stream --- */

/* Task only: up to len bytes of plaintext: a count, 0 at the peer's
 * close_notify, or an error (-EPROTO, -ECONNRESET lasting; -ETIMEDOUT,
 * -ECANCELED not). */
int64_t weft__tls_recv(weft_stream *s, weft__tls *t, void *buf, size_t len);

/* Task only: encrypt n bytes into the write buffer (waiting for room);
 * n or an error. */
int64_t weft__tls_write(weft_stream *s, weft__tls *t, const void *buf, size_t n);

/* Task only: move the ciphertext TLS holds into the write buffer (what a
 * write that timed out left behind), waiting for room. 0 or an error. */
int weft__tls_pump(weft_stream *s, weft__tls *t);

/* Task only: queue the close_notify alert. 0 or an error. */
int weft__tls_close_notify(weft_stream *s, weft__tls *t);

/* Nonzero when plaintext or unprocessed ciphertext is buffered. */
int weft__tls_pending(const weft__tls *t);

void weft__tls_free(weft__tls *t);

/* A server's handshake timeout when its options say 0. */
#define WEFT__TLS_SERVER_HANDSHAKE_NS (10LL * 1000000000)

/* Task only: the server side's handshake on an accepted stream, with the
 * server's timeout (0: 10 s, < 0: none). As weft_stream_start_tls. */
int weft__server_tls_handshake(weft_stream *s, weft_tls_ctx *ctx, int64_t timeout_ns);

#endif
