/* Networking: addresses, TCP / Unix stream / UDP sockets, buffered streams,
 * servers, and thread-per-core serving, over the loop's ops (op.h) and
 * tasks (task.h).
 *
 * Two styles, one set of descriptors:
 *
 * - Task style (this header): functions marked "task only" suspend the
 *   calling task (else -EPERM) on an op kept in the task's frame or in the
 *   object they work on; a cancelled task gets -ECANCELED once the backend
 *   has given the op back. Sockets are plain int descriptors, non-blocking
 *   and close-on-exec.
 *
 * - Callback style (no tasks): make the socket with weft_listen() /
 *   weft_socket() / weft_udp_bind(), then drive it with raw ops:
 *   weft_op_prep_accept(&op, lfd, ...), weft_op_prep_connect(&op, fd,
 *   &addr.ss, addr.len, ...), weft_op_prep_recv / _send, and close it with
 *   a WEFT_OP_CLOSE op (or weft_close() outside tasks). For UDP, wait with a
 *   WEFT_OP_POLL_IN / POLL_OUT op and call recvfrom / sendto (non-blocking)
 *   when it completes. Every non-"task only" function here works from a
 *   plain callback.
 *
 * Errors are negative errno values. Input from a caller or a peer never
 * crashes: NULL or malformed arguments give -EINVAL, a hostile peer gives
 * an error code on that connection only.
 *
 * Windows: a descriptor is the SOCKET's value as an int (64-bit Windows
 * keeps socket handles within 32 bits; -1 is INVALID_SOCKET), made
 * overlapped (for IOCP), non-blocking and not inherited by child processes
 * (close-on-exec); use it with Winsock as (SOCKET)(intptr_t)fd, never with
 * the C runtime's close() or read(). Winsock is started by the first weft
 * call that makes a socket or resolves a name. Error codes are mingw's
 * <errno.h> values (compare with the E* names, never numbers); would-block
 * is -EAGAIN as on POSIX. Unix-domain sockets give -EAFNOSUPPORT (wine has
 * none; the addresses themselves can still be built and formatted). There
 * is no SO_REUSEPORT (-ENOTSUP) and no SIGPIPE.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include "base.h"
#include "loop.h"
#include "op.h"
#include "task.h"

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
/* weft_shutdown's how, as on POSIX (mingw's <unistd.h> has the same). */
#ifndef SHUT_RDWR
#define SHUT_RD 0x00   /* SD_RECEIVE */
#define SHUT_WR 0x01   /* SD_SEND */
#define SHUT_RDWR 0x02 /* SD_BOTH */
#endif
#else
#include <sys/socket.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Addresses                                                           */
/* ------------------------------------------------------------------ */

/* An IPv4, IPv6 or Unix-domain socket address. ss and len are what the
 * socket calls take: (struct sockaddr *)&a.ss, a.len. Plain data: copy it
 * freely. */
typedef struct weft_addr {
    struct sockaddr_storage ss;
    uint32_t len; /* 0: no address */
} weft_addr;

/* Longest string weft_addr_format() writes for IP addresses (with the NUL);
 * Unix paths may need up to 5 + 108. */
#define WEFT_ADDR_STRLEN 128

/* Parse a numeric address into *out: "1.2.3.4:80", "[::1]:80",
 * "unix:/path/to/sock" (or "unix:@name" for a Linux abstract socket). No
 * name lookups (see weft_getaddrinfo). Returns 0, or -EINVAL (NULL, no
 * port, bad host, port out of 0..65535, trailing junk) or -ENAMETOOLONG (a
 * Unix path longer than sun_path). */
int weft_addr_parse(weft_addr *out, const char *str);

/* Build an IPv4 or IPv6 address from a numeric host ("127.0.0.1", "::1",
 * "0.0.0.0", "::") and a port. 0 or -EINVAL. */
int weft_addr_ip(weft_addr *out, const char *ip, int port);

/* Build a Unix-domain address for path (a leading '@' gives a Linux
 * abstract name). 0, -EINVAL, -ENAMETOOLONG. Windows: the address is built,
 * but every call that makes a socket for it gives -EAFNOSUPPORT. */
int weft_addr_unix(weft_addr *out, const char *path);

/* Format a as "1.2.3.4:80", "[::1]:80" or "unix:/path" into buf
 * (NUL-terminated, truncated to size). Returns the length it wanted
 * (like snprintf), or -EINVAL (NULL a, NULL buf with size > 0) /
 * -EAFNOSUPPORT (a family weft does not know). */
int weft_addr_format(const weft_addr *a, char *buf, size_t size);

/* The port of an IP address (0..65535), or -EINVAL / -EAFNOSUPPORT. */
int weft_addr_port(const weft_addr *a);

/* The address family (AF_INET, AF_INET6, AF_UNIX), or -EINVAL. */
int weft_addr_family(const weft_addr *a);

/* Task only: resolve host and port (a service name or a number) with the
 * system's getaddrinfo on the loop's executor thread pool (the loop keeps
 * running). family: AF_UNSPEC, AF_INET or AF_INET6; socktype: SOCK_STREAM,
 * SOCK_DGRAM or 0 (both). Up to max results are copied into out[] in the
 * resolver's order. host NULL means the wildcard address (AI_PASSIVE).
 * Returns the number of addresses (>= 1), or -EINVAL (bad argument, max 0),
 * -ENOENT (no such host or service), -EAGAIN (temporary resolver failure),
 * -EAFNOSUPPORT, -ENOMEM, -EIO (resolver failure), -ECANCELED, -EPERM. If
 * the task is cancelled the lookup still runs to its end on the pool; its
 * result is dropped. */
int weft_getaddrinfo(weft_loop *loop, const char *host, const char *port, int family, int socktype,
                     weft_addr *out, size_t max);

/* ------------------------------------------------------------------ */
/* Sockets: TCP and Unix stream                                         */
/* ------------------------------------------------------------------ */

/* Options for weft_listen(); zero-initialise, then set what you need. */
typedef struct weft_listen_opts {
    int backlog;     /* listen() backlog; 0: 511 (negative gives -EINVAL) */
    int reuseport;   /* nonzero: SO_REUSEPORT (Linux, BSD); several sockets share a port;
                        -ENOTSUP where there is none (Windows) */
    int v6only;      /* nonzero: IPV6_V6ONLY on an IPv6 listener (default: dual stack) */
    int unlink_path; /* Unix: remove a stale socket file at the path before binding */
} weft_listen_opts;

/* Create a listening stream socket bound to addr (IPv4/IPv6 with
 * SO_REUSEADDR, or a Unix path), non-blocking and close-on-exec. opts may
 * be NULL. Returns the descriptor (the caller owns it; close it with
 * weft_close), or -EINVAL, or the failing system call's error
 * (-EADDRINUSE, -EACCES, ...). Port 0 binds an ephemeral port: read it
 * back with weft_sockname(). Also reserves the spare descriptor that
 * weft_accept() uses to survive EMFILE. Windows: no SO_REUSEADDR (there it
 * would let another socket take a port in use; rebinding over TIME_WAIT is
 * Windows' default), no spare descriptor, and a Unix path gives
 * -EAFNOSUPPORT. */
int weft_listen(const weft_addr *addr, const weft_listen_opts *opts);

/* A new non-blocking, close-on-exec socket of family (AF_INET, AF_INET6,
 * AF_UNIX) and type (SOCK_STREAM, SOCK_DGRAM), for callback-style use.
 * The descriptor, or -EINVAL / the socket() error. Windows: an overlapped
 * socket (WSASocketW), ready for the IOCP backend; AF_UNIX gives
 * -EAFNOSUPPORT. */
int weft_socket(int family, int type);

/* Task only: accept one connection on the listening socket lfd. Returns the
 * new connected descriptor (non-blocking, close-on-exec, TCP_NODELAY on for
 * TCP; the caller owns it) and stores the peer address in *peer (may be
 * NULL). When the process is out of descriptors (EMFILE / ENFILE), the
 * pending connection is accepted on a reserved spare descriptor and closed
 * at once, so the listener does not spin; the condition is logged once to
 * stderr and accepting goes on (the call does not return that error).
 * Out of kernel memory (ENOBUFS / ENOMEM) it backs off 50 ms and retries.
 * Windows has no per-process descriptor limit of that kind and so no spare:
 * there a WSAEMFILE backs off 50 ms and retries as well.
 * Errors: -EINVAL (NULL loop), -EBADF, -ENOTSOCK, -EINVAL (not listening),
 * -ECANCELED, -EPERM. */
int weft_accept(weft_loop *loop, int lfd, weft_addr *peer);

/* Task only: connect a new stream socket to addr (TCP: TCP_NODELAY on),
 * giving up after timeout_ns (< 0: no timeout; the connect op is cancelled
 * and waited for). Returns the connected descriptor (the caller owns it),
 * or -EINVAL, -ETIMEDOUT, -ECONNREFUSED, -ENETUNREACH, -ENOENT (no Unix
 * socket there), -ECANCELED, -EPERM, or another connect error. Windows: a
 * Unix address gives -EAFNOSUPPORT. */
int weft_connect(weft_loop *loop, const weft_addr *addr, int64_t timeout_ns);

/* Task only: receive up to len bytes into buf. Returns the count (0: the
 * peer closed its side), or -EINVAL, -ECONNRESET, -ECANCELED, -EPERM, ... */
int64_t weft_recv(weft_loop *loop, int fd, void *buf, size_t len);

/* Task only: wait until fd is readable (data, end of stream or an error
 * to collect), or writable, without moving any bytes: a connection can
 * take its buffer only once the peer speaks. 0, or -EINVAL, -ECANCELED,
 * -EPERM (outside a task), -EBADF, ... */
int weft_wait_readable(weft_loop *loop, int fd);
int weft_wait_writable(weft_loop *loop, int fd);

/* Task only: send up to len bytes (one send: may be short). Returns the
 * count, or -EINVAL, -EPIPE, -ECONNRESET, -ECANCELED, -EPERM, ...
 * SIGPIPE is never raised. */
int64_t weft_send(weft_loop *loop, int fd, const void *buf, size_t len);

/* Task only: send all len bytes, looping over short sends. Returns len, or
 * the first error (how much went out before it is then unknown). */
int64_t weft_send_all(weft_loop *loop, int fd, const void *buf, size_t len);

/* Half-close: how is SHUT_RD, SHUT_WR or SHUT_RDWR (Windows: SD_RECEIVE,
 * SD_SEND, SD_BOTH, the same values). After SHUT_WR the peer reads
 * end-of-stream and can still send. 0, or -EINVAL / -EBADF / -ENOTCONN /
 * -ENOTSOCK. */
int weft_shutdown(int fd, int how);

/* Close fd. In a task: through a WEFT_OP_CLOSE op (ops on fd complete with
 * -ECANCELED); the fd is closed also when the call returns -ECANCELED (a
 * cancel of the task that was pending). Outside a task: the loop forgets
 * the fd (parked ops complete with -ECANCELED), then close() (Windows:
 * closesocket()). Returns 0 or -EINVAL / -EBADF / -EIO (Windows: -ENOTSOCK
 * for a value that is no socket). */
int weft_close(weft_loop *loop, int fd);

/* The local / peer address of a socket into *out. 0, -EINVAL, -EBADF,
 * -ENOTSOCK, -ENOTCONN. */
int weft_sockname(int fd, weft_addr *out);
int weft_peername(int fd, weft_addr *out);

/* Turn TCP_NODELAY on (on != 0) or off. 0 or the setsockopt error. */
int weft_set_nodelay(int fd, int on);

/* ------------------------------------------------------------------ */
/* UDP                                                                 */
/* ------------------------------------------------------------------ */

/* A UDP socket bound to addr (port 0: ephemeral), non-blocking and
 * close-on-exec; reuseport nonzero sets SO_REUSEPORT. The descriptor or
 * -EINVAL (also for a Unix address) / the failing call's error. Windows:
 * reuseport gives -ENOTSUP; a datagram to a closed port does not fail the
 * next weft_recvfrom (SIO_UDP_CONNRESET off, as on POSIX). */
int weft_udp_bind(const weft_addr *addr, int reuseport);

/* Task only: send one datagram of len bytes to *to (NULL: the connected
 * peer). Waits with a POLL_OUT op while the socket buffer is full. Returns
 * len, or -EINVAL, -EMSGSIZE, -ECONNREFUSED (an earlier datagram was
 * refused), -ECANCELED, -EPERM, ... */
int64_t weft_sendto(weft_loop *loop, int fd, const void *buf, size_t len, const weft_addr *to);

/* Task only: receive one datagram into buf (a longer one is truncated to
 * len, also on Windows); the sender goes to *from (may be NULL). Waits with a POLL_IN op.
 * Returns the datagram's bytes stored, or -EINVAL, -ECANCELED, -EPERM,
 * -ECONNREFUSED, ... */
int64_t weft_recvfrom(weft_loop *loop, int fd, void *buf, size_t len, weft_addr *from);

/* ------------------------------------------------------------------ */
/* Streams (asyncio's StreamReader + StreamWriter, on one descriptor)  */
/* ------------------------------------------------------------------ */

/* A buffered stream over a connected descriptor. One task reads and one
 * task writes at a time (a second concurrent reader or writer gets
 * -EBUSY). Its two buffers are allocated when first needed, at 4 KiB (or
 * the cap if smaller; the read buffer once the descriptor first becomes
 * readable, so an idle connection holds none), and grow by doubling, never
 * past their caps (read_limit, write_limit below): the read buffer after a
 * receive that filled all the room it had, or when less than half of it is
 * free after compacting; the write buffer when a write does not fit. They
 * never shrink and are freed with the stream: growth happens at most
 * log2(cap / 4 KiB) times per buffer, never per operation. */
typedef struct weft_stream weft_stream;

/* Stream options; zero fields take the defaults. */
typedef struct weft_stream_opts {
    size_t read_limit;  /* the read buffer's cap = the longest line/chunk readline and
                           readuntil accept; default 64 KiB */
    size_t write_high;  /* drain() waits while more than this is buffered; default 64 KiB */
    size_t write_low;   /* ... until no more than this is; default write_high / 4 */
    size_t write_limit; /* the write buffer's cap (>= write_high); default 2 * write_high */
} weft_stream_opts;

#define WEFT_STREAM_DEFAULT_LIMIT (64 * 1024)

/* Wrap the connected descriptor fd in a stream; the stream owns fd from
 * now on (also when this fails: fd is then closed). opts may be NULL.
 * 0 with *out set, or -EINVAL (NULL, negative fd, low > high, high > limit),
 * -ENOMEM. */
int weft_stream_new(weft_loop *loop, int fd, const weft_stream_opts *opts, weft_stream **out);

/* Task only: connect to addr (as weft_connect, with timeout_ns) and wrap
 * the socket in a new stream (asyncio's open_connection). opts may be NULL.
 * 0 with *out set (the caller closes it), or an error of weft_connect /
 * weft_stream_new. */
int weft_open_connection(weft_loop *loop, const weft_addr *addr, const weft_stream_opts *opts,
                         int64_t timeout_ns, weft_stream **out);

/* Close the stream now, from a task or a plain callback (never blocks):
 * unsent buffered data is dropped (weft_stream_flush() first to send it),
 * the loop forgets the fd and it is closed, and the memory is freed at
 * once, or, when a background send was in flight, as soon as the backend
 * gives it back (a later loop iteration: run the loop once more before
 * weft_loop_free, or that stream leaks). No task may be inside a call on
 * the stream. 0 or -EINVAL. */
int weft_stream_close(weft_stream *s);

/* The stream's descriptor, loop; -EINVAL / NULL for NULL. */
int weft_stream_fd(const weft_stream *s);
weft_loop *weft_stream_loop(const weft_stream *s);

/* --- reading --- */

/* Task only: read up to n bytes into buf: what is buffered, else one
 * receive. Returns the count, 0 at end of stream, or -EINVAL, -EBUSY,
 * -ECONNRESET, -ECANCELED, -EPERM, ... */
int64_t weft_stream_read(weft_stream *s, void *buf, size_t n);

/* Task only: read exactly n bytes into buf (n may exceed the read limit:
 * past the buffered bytes it receives straight into buf). Returns n, or
 * -ENODATA when the stream ended first (asyncio's IncompleteReadError; the
 * bytes read are lost), or the errors of weft_stream_read. */
int64_t weft_stream_readexactly(weft_stream *s, void *buf, size_t n);

/* Task only: read until delim (dlen >= 1 bytes) and point *out at the data,
 * delimiter included, inside the stream's buffer: valid until the next
 * call on the stream. Returns the length (> 0), 0 at end of stream with
 * nothing buffered, -EMSGSIZE when read_limit bytes are buffered with no
 * delimiter (the data stays buffered: weft_stream_consume() drops it),
 * -ENODATA when the stream ended with an incomplete record buffered (it
 * stays buffered), or the errors of weft_stream_read. */
int64_t weft_stream_readuntil(weft_stream *s, const void *delim, size_t dlen, const char **out);

/* Task only: weft_stream_readuntil(s, "\n", 1, out), except that at end of
 * stream a last line without '\n' is returned (asyncio's readline). */
int64_t weft_stream_readline(weft_stream *s, const char **out);

/* Parser-friendly access to the read buffer. peek: the buffered bytes (in
 * place, valid until the next reading call on the stream: writes leave
 * them alone) and their count in *len.
 * consume: drop n buffered bytes (0, or -EINVAL when n > buffered). fill
 * (task only): receive more into the buffer; returns the bytes received
 * (> 0), 0 at end of stream, -EMSGSIZE when the buffer is full, or the
 * errors of weft_stream_read. */
const char *weft_stream_peek(const weft_stream *s, size_t *len);
int weft_stream_consume(weft_stream *s, size_t n);
int64_t weft_stream_fill(weft_stream *s);

/* Nonzero once the reader has seen end of stream (or a read error). */
int weft_stream_at_eof(const weft_stream *s);

/* --- writing --- */

/* Task only: queue n bytes for sending. Bytes go into the write buffer and
 * out through a background send op while the task goes on; when the buffer
 * is full the call waits for room (memory stays bounded by write_limit); a
 * write larger than the buffer, or of 8 KiB or more while nothing is
 * buffered, is sent straight from buf and the call returns once the kernel
 * has taken all of it (no copy). Returns n, or the
 * connection's error (-EPIPE, -ECONNRESET: a failed background send fails
 * every later write), -ETIMEDOUT (the stream's timeout or deadline passed
 * while waiting), -EBUSY, -ECANCELED (some bytes may be queued), -EPERM,
 * -EINVAL. */
int64_t weft_stream_write(weft_stream *s, const void *buf, size_t n);

/* Task only: backpressure (asyncio's drain): if more than write_high bytes
 * are buffered, wait until at most write_low are. 0, or the connection's
 * error, -ECANCELED, -EPERM, -EINVAL. */
int weft_stream_drain(weft_stream *s);

/* Task only: wait until every buffered byte is sent. Errors as drain. */
int weft_stream_flush(weft_stream *s);

/* Task only: flush, then shut down the sending side (the peer reads end of
 * stream; reading goes on). Errors as drain, plus those of weft_shutdown. */
int weft_stream_write_eof(weft_stream *s);

/* Bytes in the write buffer not yet sent (0 for NULL). */
size_t weft_stream_write_buffered(const weft_stream *s);

/* --- deadlines (slowloris, idle peers) --- */

/* Idle timeout: from now on every wait of the stream for its peer (a
 * receive of a reading call; a write, drain or flush waiting for the
 * peer to take bytes) fails with -ETIMEDOUT once it has waited timeout_ns
 * without progress, i.e. no byte received (or sent) for that long.
 * timeout_ns <= 0 turns it off (the default). The stream stays usable
 * after a timeout (answer 408, then close). Implemented with one loop
 * timer per stream, re-armed lazily: no allocation or timer per read.
 * Not covered: a single write larger than write_limit (it bypasses the
 * buffer). The timer stays scheduled after a wait ends (until it is due or
 * the stream closes), so weft_loop_run(WEFT_RUN_UNTIL_IDLE) may wait for
 * it. Loop thread only. 0, -EINVAL, -ENOMEM (the timer heap). */
int weft_stream_set_timeout(weft_stream *s, int64_t timeout_ns);

/* Deadline: waits as above fail with -ETIMEDOUT once timeout_ns from now
 * has passed, however much trickles in meanwhile (a time limit for a
 * whole request: set it when a request starts, clear it with a negative
 * timeout_ns when it is read). Reads served from the buffer do not wait
 * and never time out. Combines with the idle timeout (the earlier wins).
 * Loop thread only. 0, -EINVAL, -ENOMEM. */
int weft_stream_set_deadline(weft_stream *s, int64_t timeout_ns);

/* Marks a server's connection as reclaimable (on != 0) or not: whether it
 * has no request under way (no byte of one yet, a request head still
 * arriving, or idle between requests), so that closing it loses no work.
 * A server at its connection limit that accepts a new connection, with no
 * silent connection to close first (reclaim_silent), reclaims the
 * connection marked reclaimable longest ago (nginx drains its reusable
 * connections so): every wait of that stream, the one in progress and all
 * later ones, fails with -ETIMEDOUT as if its deadline had passed, so its
 * handler ends as on its own timeout. If none is marked, the new
 * connection waits for a slot and the next one marked is reclaimed. Not
 * marked by default (an echo handler is never reclaimed); marking again
 * keeps the connection's place in line. No effect on a stream not
 * served by a weft server, or one already reclaimed. Loop thread only;
 * O(1), no allocation. 0, -EINVAL (NULL or closed). */
int weft_stream_set_reclaimable(weft_stream *s, int on);

/* Task only: lingering close's first half (RFC 9112 9.6, nginx's
 * lingering_close), for after an error response sent while the peer may
 * still be sending: flush, shut down the sending side, then read and
 * discard until the peer ends, timeout_ns passes (this replaces the
 * stream's deadline) or max_bytes have been discarded. Closing with
 * unread input makes the kernel send a reset that destroys the response
 * before the peer reads it; this gives the peer time to read it. The
 * caller still owns and closes s (a server's handler just returns).
 * 0 when the peer ended; -ETIMEDOUT; -EFBIG (max_bytes reached); or a
 * read/write error; -EINVAL (NULL, closed, negative timeout), -EPERM. */
int weft_stream_linger(weft_stream *s, int64_t timeout_ns, size_t max_bytes);

/* Task only: weft_stream_linger, then weft_stream_close (also when the
 * linger failed; s is gone on return unless -EINVAL for NULL or closed).
 * Not for a server's stream (the server closes it). Returns what the
 * linger returned. */
int weft_stream_linger_close(weft_stream *s, int64_t timeout_ns, size_t max_bytes);

/* ------------------------------------------------------------------ */
/* Servers                                                             */
/* ------------------------------------------------------------------ */

typedef struct weft_server weft_server;
typedef struct weft_tls_ctx weft_tls_ctx; /* weft/tls.h */

/* A connection handler: runs as its own task with the connection's stream.
 * The stream belongs to the server: after the handler returns, what it left
 * buffered is flushed (unless it was cancelled) and the stream is closed.
 * The return value is ignored (an error is not reported). */
typedef int (*weft_conn_handler)(weft_stream *s, void *arg);

/* Server options; zero fields take the defaults. */
typedef struct weft_server_opts {
    weft_listen_opts listen; /* backlog, reuseport, v6only, unlink_path */
    weft_stream_opts stream; /* buffers of each connection's stream */
    size_t max_connections;  /* live connections; 0: 10000. At the limit a new connection
                              * reclaims a silent one (reclaim_silent), else a reclaimable
                              * one (weft_stream_set_reclaimable), else waits for a slot,
                              * accepting paused */
    int reclaim_silent;      /* nonzero: at the limit, the connection silent longest since
                                accept (no byte yet, no handler) is closed first */
    int speak_first;         /* nonzero: start each handler at accept (the server speaks
                                first); 0: once the peer sends its first bytes (or ends) */
    int64_t idle_timeout_ns; /* > 0: close a connection whose peer sends nothing this long
                                after accept, before its handler starts; 0: no limit */
    /* TLS (weft/tls.h): with a server context, each connection's handshake
     * runs before the handler sees the stream; a connection whose handshake
     * fails is closed without calling the handler (counted by
     * weft_server_tls_failures, as is a peer silent for the handshake
     * timeout). NULL: plain TCP. */
    weft_tls_ctx *tls;
    int64_t tls_handshake_timeout_ns; /* 0: 10 s, < 0: none */
} weft_server_opts;

/* Listen on addr and serve each connection with handler(stream, arg) in a
 * task of its own (asyncio's start_server). Starts accepting when the loop
 * next runs; works from a task or outside. opts may be NULL. Unless
 * opts->speak_first, a connection first waits for its peer's first bytes
 * (or end, or error) with a poll op and no task, stack or stream (a few
 * hundred bytes while idle); its handler's task starts then. It counts as
 * live from accept; weft_server_close ends a connection still waiting, and
 * so does opts->idle_timeout_ns, without calling its handler. 0 with *out
 * set (the caller ends it with weft_server_close), or -EINVAL, -ENOMEM, or
 * weft_listen's errors (Windows: -EAFNOSUPPORT for a Unix address). */
int weft_start_server(weft_loop *loop, const weft_addr *addr, weft_conn_handler handler, void *arg,
                      const weft_server_opts *opts, weft_server **out);

/* The same on a listening descriptor the caller made; the server owns lfd
 * from now on (also on failure, when it is closed). opts->listen is
 * ignored. */
int weft_start_server_fd(weft_loop *loop, int lfd, weft_conn_handler handler, void *arg,
                         const weft_server_opts *opts, weft_server **out);

/* Task only: graceful close. Stops accepting and closes the listener at
 * once, closes the connections still waiting for their peer's first bytes
 * (their handlers never run), lets live handlers run for up to grace_ns (< 0: no limit, 0: none),
 * then cancels those still running and waits for them to finish; frees the
 * server. Returns the number of handlers that had to be cancelled (>= 0),
 * or -EINVAL, -EPERM (not in a task: nothing done). If the calling task is
 * cancelled while waiting, the handlers are cancelled at once and waited
 * for, the server is freed, and -ECANCELED is returned. */
int weft_server_close(weft_server *srv, int64_t grace_ns);

/* The listening address (with the real port after port 0). 0, -EINVAL. */
int weft_server_addr(const weft_server *srv, weft_addr *out);

/* Live connections now (0 for NULL). */
size_t weft_server_connections(const weft_server *srv);

/* Connections closed because their TLS handshake failed (0 for NULL). */
size_t weft_server_tls_failures(const weft_server *srv);

/* ------------------------------------------------------------------ */
/* Thread-per-core                                                     */
/* ------------------------------------------------------------------ */

typedef struct weft_threads weft_threads;

/* The main task of each thread: index is 0..n-1. It runs until it returns
 * or is cancelled by weft_threads_stop(). While it waits it must keep its
 * loop busy (a server's accept, a timer): a loop with nothing pending ends
 * the thread with -EDEADLK, as weft_run_until_complete does. */
typedef int (*weft_thread_fn)(weft_loop *loop, int index, void *arg);

/* Start n threads (1..1024), each with a loop of its own (loop_opts may be
 * NULL) running fn as a task. 0 with *out set (finish with
 * weft_threads_join), or -EINVAL, -ENOMEM, or the error of the first thread
 * or loop that failed to start (the others are stopped and joined). */
int weft_threads_start(int n, const weft_loop_opts *loop_opts, weft_thread_fn fn, void *arg,
                       weft_threads **out);

/* From any thread: cancel every thread's main task (each returns -ECANCELED
 * from where it waits). 0 or -EINVAL; calling it again does nothing. */
int weft_threads_stop(weft_threads *t);

/* Wait for every thread to finish, free t, and return the first nonzero
 * result of a main task other than -ECANCELED (0 if none). -EINVAL for
 * NULL. Not from one of t's threads. */
int weft_threads_join(weft_threads *t);

/* Per-thread state for weft_serve_threads: setup runs on each thread once
 * its loop exists, before its server starts and before weft_serve_threads
 * returns (not in a task; it may schedule callbacks on the loop). It sets
 * *conn_arg, the handler's argument for that thread's connections (on entry
 * the arg given to weft_serve_threads). 0, or a negative error code, which
 * fails that thread and weft_serve_threads with it (a positive value fails
 * it with -EINVAL). */
typedef int (*weft_serve_setup_fn)(weft_loop *loop, int index, void *arg, void **conn_arg);

/* Undoes setup: runs on the thread, for every thread whose setup
 * succeeded, after its server has closed (no handler runs any more) and its
 * loop has stopped; the loop is still valid (not in a task). */
typedef void (*weft_serve_teardown_fn)(weft_loop *loop, int index, void *conn_arg);

/* Called once when a stop signal arrives (weft_serve_opts.stop_signals),
 * on the thread of the first loop that handles it, before the threads are
 * stopped, with weft_serve_opts.stop_signal_arg. */
typedef void (*weft_serve_signal_fn)(int signo, void *arg);

/* Options for weft_serve_threads; zero fields take the defaults. */
typedef struct weft_serve_opts {
    weft_server_opts server; /* each thread's server (listen.reuseport is set where used) */
    int64_t grace_ns; /* at weft_threads_stop: weft_server_close's grace (0: none, < 0: no limit) */
    weft_serve_setup_fn thread_setup;       /* NULL: every thread's handler gets arg */
    weft_serve_teardown_fn thread_teardown; /* NULL: nothing to undo */
    /* Nonzero: SIGINT and SIGTERM (Windows: Ctrl-C, Ctrl-Break, the console
     * closing, logoff, shutdown) stop the threads gracefully, as
     * weft_threads_stop() does (each server closes within grace_ns), through
     * every thread's loop (weft_loop_add_signal_handler, weft/signal.h).
     * Block both signals in the calling thread before weft_serve_threads
     * (the threads inherit the mask), so no other thread takes them. */
    int stop_signals;
    weft_serve_signal_fn on_stop_signal; /* NULL: none; see the type */
    void *stop_signal_arg;
} weft_serve_opts;

/* Serve addr on n threads (Linux, IP addresses: one SO_REUSEPORT listener
 * per thread, the kernel spreads connections; elsewhere one listener
 * shared by all: on POSIX a duplicate per thread, on Windows the one
 * socket, on which every loop accepts and which is closed after the last
 * thread ends;
 * Windows gives -EAFNOSUPPORT for a Unix address).
 * Each thread runs opts->thread_setup, then weft_start_server_fd(handler,
 * its conn_arg, &opts->server) until weft_threads_stop(), then closes the
 * server within opts->grace_ns and runs opts->thread_teardown. opts may be
 * NULL. The listeners are bound and every setup has run before this
 * returns (port 0: one ephemeral port for all; weft_threads_addr gives
 * it). Errors as weft_threads_start and weft_listen, or the first failing
 * setup's error (the other threads are then stopped and torn down). */
int weft_serve_threads(int n, const weft_loop_opts *loop_opts, const weft_addr *addr,
                       weft_conn_handler handler, void *arg, const weft_serve_opts *opts,
                       weft_threads **out);

/* The address weft_serve_threads listens on. 0, or -EINVAL (NULL, or t was
 * made by weft_threads_start). */
int weft_threads_addr(const weft_threads *t, weft_addr *out);

#ifdef __cplusplus
}
#endif
#endif
