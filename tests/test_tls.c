/* Loop-level suite: TLS streams (weft/tls.h) over every backend. The
 * certificates are made at run time with OpenSSL's API (a self-signed
 * one for localhost and 127.0.0.1, an expired one, an unrelated one):
 * none is committed. Covers the stream calls over TLS, a 100 MB
 * byte-exact echo, and the failures: wrong host name, expired or unknown
 * certificate, a truncated handshake, random bytes instead of a
 * ClientHello, handshake timeouts, a truncated stream. Built without
 * OpenSSL, the suite checks -ENOTSUP and says it skipped. */
#include "net_common.h"
#include "weft_config.h"

#include <stdio.h>
#include <string.h>

TestSuite(tls, .timeout = 120);

#if !WEFT_HAVE_TLS

Test(tls, not_built_answers_enotsup)
{
    weft_tls_ctx_opts o = {.server = 0};
    weft_tls_ctx *ctx = NULL;
    char why[128];
    cr_assert_eq(weft_tls_available(), 0);
    cr_assert_eq(weft_tls_ctx_new(&o, &ctx, why, sizeof why), -ENOTSUP);
    cr_assert(strstr(why, "without TLS") != NULL);
    cr_assert_eq(weft_stream_start_tls(NULL, NULL, NULL), -ENOTSUP);
    /* Criterion prints skips only with --verbose: say it in the log too. */
    fprintf(stderr, "tls: skipped: weft was built without OpenSSL (libssl-dev not found)\n");
    cr_skip_test("TLS skipped: weft was built without OpenSSL (libssl-dev not found)");
}

#else

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <unistd.h>

/* --- certificates, made per test in a temporary directory --- */

/* GOOD: CN=localhost, SAN localhost + 127.0.0.1; EXPIRED: the same names,
 * expired yesterday; OTHER: an unrelated self-signed certificate. */
enum { GOOD, EXPIRED, OTHER, NCERTS };

typedef struct {
    char dir[64];
    char cert[NCERTS][128], key[NCERTS][128];
} certs;

static EVP_PKEY *gen_key(void)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    cr_assert(kc && EVP_PKEY_keygen_init(kc) == 1);
    cr_assert(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) == 1);
    cr_assert(EVP_PKEY_keygen(kc, &k) == 1);
    EVP_PKEY_CTX_free(kc);
    return k;
}

/* A self-signed certificate valid from `from` to `to` seconds from now. */
static void make_cert(const char *cert_path, const char *key_path, const char *cn, long from,
                      long to)
{
    EVP_PKEY *k = gen_key();
    X509 *x = X509_new();
    cr_assert(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", "DNS:localhost,IP:127.0.0.1"},
                             {"basicConstraints", "critical,CA:TRUE"}};
    for (size_t i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        cr_assert(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    cr_assert(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    cr_assert(f && PEM_write_X509(f, x) == 1);
    fclose(f);
    f = fopen(key_path, "w");
    cr_assert(f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void certs_make(certs *c)
{
    static const char *const names[NCERTS] = {"cert", "old", "other"};
    static const long from[NCERTS] = {-3600, -2 * 86400, -3600};
    static const long to[NCERTS] = {86400, -86400, 86400};
    snprintf(c->dir, sizeof c->dir, "/tmp/weft-tls-XXXXXX");
    cr_assert(mkdtemp(c->dir) != NULL);
    for (int i = 0; i < NCERTS; i++) {
        snprintf(c->cert[i], sizeof c->cert[i], "%s/%s.pem", c->dir, names[i]);
        snprintf(c->key[i], sizeof c->key[i], "%s/%skey.pem", c->dir, names[i]);
        make_cert(c->cert[i], c->key[i], "localhost", from[i], to[i]);
    }
}

static void certs_remove(certs *c)
{
    for (int i = 0; i < NCERTS; i++) {
        unlink(c->cert[i]);
        unlink(c->key[i]);
    }
    rmdir(c->dir);
}

/* A context made from o; the test fails with OpenSSL's reason if it cannot be. */
static weft_tls_ctx *new_ctx(const weft_tls_ctx_opts *o)
{
    weft_tls_ctx *ctx = NULL;
    char why[256];
    int rc = weft_tls_ctx_new(o, &ctx, why, sizeof why);
    cr_assert_eq(rc, 0, "%s ctx: %s", o->server ? "server" : "client", why);
    return ctx;
}

/* --- the fixture: a TLS server in the test's loop, a client task --- */

typedef struct tls_ctx tls_ctx;

/* One test: what it changes from the common case (zero: the server shows
 * GOOD, the client trusts GOOD, line_echo, no server handshake timeout)
 * and what the server must have seen by the end. */
typedef struct {
    void (*main)(tls_ctx *c);  /* the client side, in a task */
    int server_cert;           /* GOOD or EXPIRED */
    int client_ca;             /* the one certificate the client trusts */
    int verify_client;         /* the server requires a client certificate issued by OTHER */
    weft_conn_handler handler; /* NULL: line_echo */
    int64_t hs_timeout;        /* the server's handshake timeout */
    int served;                /* connections the handler served */
    int handler_rc;            /* what the last of them ended with */
    size_t failures;           /* handshakes the server counted as failed */
    const char *name, *expect; /* verify_main: the name asked for, the failure's reason */
} tls_opts;

struct tls_ctx {
    const tls_opts *o;
    weft_loop *loop;
    certs certs;
    weft_tls_ctx *sctx, *cctx;
    weft_server *srv; /* NULL once main closed it itself */
    weft_addr addr;
    int served;
    int handler_rc;
};

/* Lines back until the peer's close_notify (readline gives 0). */
static int line_echo(weft_stream *s, void *arg)
{
    tls_ctx *c = arg;
    const char *line;
    int64_t n;
    while ((n = weft_stream_readline(s, &line)) > 0)
        if (weft_stream_write(s, line, (size_t)n) < 0)
            break;
    c->handler_rc = (int)n;
    c->served++;
    return 0;
}

/* Bytes back, as they come, until the end. */
static int byte_echo(weft_stream *s, void *arg)
{
    tls_ctx *c = arg;
    char buf[16384];
    int64_t n;
    while ((n = weft_stream_read(s, buf, sizeof buf)) > 0)
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            break;
    c->handler_rc = (int)n;
    c->served++;
    return 0;
}

static void close_server(tls_ctx *c)
{
    cr_assert_geq(weft_server_close(c->srv, 2000 * MS), 0);
}

/* Wait (task) until the server counted n failed handshakes. */
static void wait_failures(tls_ctx *c, size_t n)
{
    for (int i = 0; i < 300 && weft_server_tls_failures(c->srv) < n; i++)
        weft_sleep(c->loop, 10 * MS);
    cr_assert_eq(weft_server_tls_failures(c->srv), n);
}

/* The test's task: main, then the failed handshakes, then a graceful close
 * (unless main closed the server in its own way). */
static int case_task(void *arg, intptr_t *result)
{
    (void)result;
    tls_ctx *c = arg;
    c->o->main(c);
    if (c->srv) {
        wait_failures(c, c->o->failures);
        close_server(c);
    }
    return 0;
}

/* The whole of a test: certificates, contexts and server made as o says,
 * o->main run as a task, the server's counts checked, everything freed. */
static void tls_case(const tls_opts *o)
{
    tls_ctx c = {.o = o, .loop = test_loop_new()};
    certs_make(&c.certs);
    weft_tls_ctx_opts so = {.server = 1,
                            .cert_file = c.certs.cert[o->server_cert],
                            .key_file = c.certs.key[o->server_cert]};
    if (o->verify_client) {
        so.ca_file = c.certs.cert[OTHER];
        so.verify = WEFT_TLS_VERIFY_PEER;
    }
    c.sctx = new_ctx(&so);
    c.cctx = new_ctx(&(weft_tls_ctx_opts){.ca_file = c.certs.cert[o->client_ca]});
    weft_addr a;
    cr_assert_eq(weft_addr_parse(&a, "127.0.0.1:0"), 0);
    weft_server_opts sv = {.tls = c.sctx, .tls_handshake_timeout_ns = o->hs_timeout};
    weft_conn_handler h = o->handler ? o->handler : line_echo;
    cr_assert_eq(weft_start_server(c.loop, &a, h, &c, &sv, &c.srv), 0);
    cr_assert_eq(weft_server_addr(c.srv, &c.addr), 0);
    cr_assert_eq(run_task(c.loop, case_task, &c), 0);
    cr_assert_eq(c.served, o->served);
    cr_assert_eq(c.handler_rc, o->handler_rc);
    test_run(c.loop);
    weft_tls_ctx_free(c.sctx);
    weft_tls_ctx_free(c.cctx);
    test_loop_free(c.loop);
    certs_remove(&c.certs);
}

static int connect_tls(tls_ctx *c, const char *name, weft_stream **s, char *why, size_t len)
{
    weft_tls_opts to = {.server_name = name, .handshake_timeout_ns = 5000 * MS};
    return weft_open_connection_tls(c->loop, &c->addr, NULL, 5000 * MS, c->cctx, &to, s, why, len);
}

/* ------------------------------------------------------------------ */

static void lines_main(tls_ctx *c)
{
    const char *names[] = {"localhost", "127.0.0.1"};
    for (int i = 0; i < 2; i++) {
        weft_stream *s;
        char why[256];
        int rc = connect_tls(c, names[i], &s, why, sizeof why);
        cr_assert_eq(rc, 0, "%s: %s (%s)", names[i], weft_strerror(rc), why);
        cr_assert(weft_stream_tls_version(s) != NULL);
        cr_assert(weft_stream_tls_cipher(s) != NULL);
        cr_assert_str_eq(weft_stream_tls_error(s), "");
        const char *msg = "first line\nsecond|third\n";
        cr_assert_eq(weft_stream_write(s, msg, strlen(msg)), (int64_t)strlen(msg));
        cr_assert_eq(weft_stream_drain(s), 0);
        const char *line;
        cr_assert_eq(weft_stream_readline(s, &line), 11);
        cr_assert_eq(memcmp(line, "first line\n", 11), 0);
        cr_assert_eq(weft_stream_readuntil(s, "|", 1, &line), 7);
        cr_assert_eq(memcmp(line, "second|", 7), 0);
        char rest[6];
        cr_assert_eq(weft_stream_readexactly(s, rest, 6), 6);
        cr_assert_eq(memcmp(rest, "third\n", 6), 0);
        /* close_notify: the handler sees the end, returns, the server
         * sends its own close_notify: a clean end here. */
        cr_assert_eq(weft_stream_write_eof(s), 0);
        cr_assert_eq(weft_stream_readline(s, &line), 0);
        cr_assert(weft_stream_at_eof(s));
        cr_assert_eq(weft_stream_close(s), 0);
    }
}

Test(tls, lines_readuntil_readexactly_and_close_notify)
{
    tls_case(&(tls_opts){.main = lines_main, .served = 2});
}

/* ------------------------------------------------------------------ */

/* 100 MB; 8 MB under valgrind, which emulates every AES instruction. */
#if WEFT_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#define BIG ((size_t)(RUNNING_ON_VALGRIND ? 8 : 100) << 20)
#else
#define BIG ((size_t)100 << 20)
#endif

typedef struct {
    weft_stream *s;
    int rc;
} big_writer;

static int big_write_task(void *arg, intptr_t *result)
{
    (void)result;
    big_writer *w = arg;
    unsigned char *chunk = malloc(65536 + 4096); /* not on the task's 64 KiB stack */
    cr_assert(chunk);
    size_t off = 0;
    while (off < BIG) {
        /* Odd sizes, so records and buffers never line up. */
        size_t k = 65536 + (off / 65536 % 7) * 513;
        if (k > BIG - off)
            k = BIG - off;
        for (size_t i = 0; i < k; i++)
            chunk[i] = pattern_at(off + i);
        int64_t r = weft_stream_write(w->s, chunk, k);
        if (r != (int64_t)k) {
            w->rc = (int)r;
            free(chunk);
            return 0;
        }
        off += k;
    }
    free(chunk);
    w->rc = weft_stream_write_eof(w->s);
    return 0;
}

static void big_main(tls_ctx *c)
{
    weft_stream *s;
    char why[256];
    int rc = connect_tls(c, "localhost", &s, why, sizeof why);
    cr_assert_eq(rc, 0, "%s", why);
    big_writer w = {s, -1};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, big_write_task, &w, &f), 0);
    static unsigned char buf[100000];
    size_t got = 0;
    int bad = 0;
    for (;;) {
        int64_t n = weft_stream_read(s, buf, sizeof buf);
        cr_assert_geq(n, 0, "read: %s (%s)", weft_strerror((int)n), weft_stream_tls_error(s));
        if (n == 0)
            break;
        for (int64_t i = 0; i < n && !bad; i++)
            bad = buf[i] != pattern_at(got + (size_t)i);
        got += (size_t)n;
    }
    weft_await(f, NULL);
    weft_future_unref(f);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(got, BIG);
    cr_assert(!bad, "the echo differs");
    weft_stream_close(s);
}

Test(tls, echo_100_mb_byte_exact)
{
    tls_case(&(tls_opts){.main = big_main, .handler = byte_echo, .served = 1});
}

/* ------------------------------------------------------------------ */

/* A handshake the client refuses: -EPROTO, c->o->expect in the reason;
 * the server gets the client's alert (one failure: .failures = 1). */
static void verify_main(tls_ctx *c)
{
    weft_stream *s = NULL;
    char why[256];
    int rc = connect_tls(c, c->o->name, &s, why, sizeof why);
    cr_assert_eq(rc, -EPROTO, "%s: %s", weft_strerror(rc), why);
    cr_assert(strstr(why, c->o->expect) != NULL, "reason: %s", why);
    cr_assert_null(s);
}

Test(tls, wrong_hostname_is_eproto)
{
    tls_case(&(tls_opts){.main = verify_main,
                         .failures = 1,
                         .name = "wrong.example",
                         .expect = "hostname mismatch"});
}

Test(tls, wrong_ip_is_eproto)
{
    tls_case(&(tls_opts){
        .main = verify_main, .failures = 1, .name = "127.0.0.2", .expect = "IP address mismatch"});
}

Test(tls, expired_certificate_is_eproto)
{
    tls_case(&(tls_opts){.main = verify_main,
                         .server_cert = EXPIRED,
                         .client_ca = EXPIRED,
                         .failures = 1,
                         .name = "localhost",
                         .expect = "certificate has expired"});
}

Test(tls, unknown_issuer_is_eproto)
{
    /* the client trusts only another certificate */
    tls_case(&(tls_opts){.main = verify_main,
                         .client_ca = OTHER,
                         .failures = 1,
                         .name = "localhost",
                         .expect = "certificate verify failed"});
}

/* ------------------------------------------------------------------ */

/* Random bytes instead of a ClientHello: the server's handshake fails
 * (-EPROTO, counted), its alert reaches the raw peer, the handler never
 * runs. */
static void garbage_main(tls_ctx *c)
{
    int fd = weft_connect(c->loop, &c->addr, 2000 * MS);
    cr_assert_geq(fd, 0);
    unsigned char junk[517];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    junk[0] = 0x16; /* a handshake record... */
    junk[1] = 0x03; /* ...of TLS 1.x... */
    junk[2] = 0x01;
    junk[3] = 0x02; /* ...512 bytes of nonsense */
    junk[4] = 0x00;
    cr_assert_eq(weft_send_all(c->loop, fd, junk, sizeof junk), (int64_t)sizeof junk);
    char buf[256];
    int64_t n, total = 0;
    while ((n = weft_recv(c->loop, fd, buf, sizeof buf)) > 0)
        total += n;
    cr_assert_geq(total, 7, "an alert record"); /* 5-byte header + 2-byte alert */
    weft_close(c->loop, fd);
}

Test(tls, random_bytes_instead_of_client_hello)
{
    tls_case(&(tls_opts){.main = garbage_main, .failures = 1});
}

/* A peer that closes in the middle of the handshake, either side: the
 * weft client gets -ECONNRESET from a raw server that reads its
 * ClientHello and hangs up; the weft server gets half of that ClientHello
 * and the end (-ECONNRESET, counted). */
typedef struct {
    tls_ctx *c;
    weft_stream *s;
    weft_tls_opts opts;
    int rc;
    char why[256];
} client_hs;

static int client_hs_task(void *arg, intptr_t *result)
{
    (void)result;
    client_hs *h = arg;
    h->rc = weft_stream_start_tls(h->s, h->c->cctx, &h->opts);
    snprintf(h->why, sizeof h->why, "%s", weft_stream_tls_error(h->s));
    return 0;
}

static void truncated_main(tls_ctx *c)
{
    weft_addr raw_addr;
    int lfd = loopback_listener(&raw_addr, 4);
    weft_stream *s;
    cr_assert_eq(weft_open_connection(c->loop, &raw_addr, NULL, 2000 * MS, &s), 0);
    int peer = weft_accept(c->loop, lfd, NULL);
    cr_assert_geq(peer, 0);
    client_hs h = {.c = c, .s = s, .opts = {.server_name = "localhost"}};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, client_hs_task, &h, &f), 0);
    unsigned char hello[4096];
    int64_t n = weft_recv(c->loop, peer, hello, sizeof hello);
    cr_assert_gt(n, 40);
    cr_assert_eq(hello[0], 0x16); /* a handshake record */
    weft_close(c->loop, peer);
    weft_await(f, NULL);
    weft_future_unref(f);
    cr_assert_eq(h.rc, -ECONNRESET, "%s (%s)", weft_strerror(h.rc), h.why);
    cr_assert(strstr(h.why, "closed") != NULL, "reason: %s", h.why);
    /* the stream stays failed */
    char b;
    cr_assert_eq(weft_stream_read(s, &b, 1), -ECONNRESET);
    cr_assert_eq(weft_stream_write(s, "x", 1), -ECONNRESET);
    weft_stream_close(s);
    weft_close(c->loop, lfd);

    /* the server side: half a ClientHello, then the end */
    int fd = weft_connect(c->loop, &c->addr, 2000 * MS);
    cr_assert_geq(fd, 0);
    cr_assert_eq(weft_send_all(c->loop, fd, hello, (size_t)n / 2), n / 2);
    cr_assert_eq(weft_shutdown(fd, SHUT_WR), 0);
    char buf[64];
    while (weft_recv(c->loop, fd, buf, sizeof buf) > 0)
        ;
    weft_close(c->loop, fd);
}

Test(tls, truncated_handshake_is_econnreset)
{
    tls_case(&(tls_opts){.main = truncated_main, .failures = 1});
}

/* A silent peer: the client's handshake timeout, and the server's. */
static void silent_main(tls_ctx *c)
{
    weft_addr raw_addr;
    int lfd = loopback_listener(&raw_addr, 4);
    weft_stream *s;
    char why[256];
    weft_tls_opts to = {.server_name = "localhost", .handshake_timeout_ns = 100 * MS};
    uint64_t t0 = weft_loop_now(c->loop);
    int rc = weft_open_connection_tls(c->loop, &raw_addr, NULL, 2000 * MS, c->cctx, &to, &s, why,
                                      sizeof why);
    uint64_t took = weft_loop_now(c->loop) - t0;
    cr_assert_eq(rc, -ETIMEDOUT, "%s", weft_strerror(rc));
    cr_assert_geq(took, 90 * MS);
    cr_assert_lt(took, 3000 * MS);
    weft_close(c->loop, lfd);

    /* the server's timeout (100 ms: .hs_timeout): it hangs up on us */
    int fd = weft_connect(c->loop, &c->addr, 2000 * MS);
    cr_assert_geq(fd, 0);
    char buf[64];
    t0 = weft_loop_now(c->loop);
    while (weft_recv(c->loop, fd, buf, sizeof buf) > 0)
        ;
    took = weft_loop_now(c->loop) - t0;
    cr_assert_geq(took, 90 * MS);
    cr_assert_lt(took, 3000 * MS);
    weft_close(c->loop, fd);
}

Test(tls, handshake_timeouts)
{
    tls_case(&(tls_opts){.main = silent_main, .hs_timeout = 100 * MS, .failures = 1});
}

/* ------------------------------------------------------------------ */

/* STARTTLS on both sides of a plain connection (weft_stream_start_tls on
 * an accepted stream, the server side without weft_start_server); then a
 * read timeout, data after it, and a server that closes without
 * close_notify: -ECONNRESET, lasting. */
static void starttls_main(tls_ctx *c)
{
    weft_addr raw_addr;
    int lfd = loopback_listener(&raw_addr, 4);
    weft_stream *cs, *ss;
    cr_assert_eq(weft_open_connection(c->loop, &raw_addr, NULL, 2000 * MS, &cs), 0);
    int fd = weft_accept(c->loop, lfd, NULL);
    cr_assert_geq(fd, 0);
    cr_assert_eq(weft_stream_new(c->loop, fd, NULL, &ss), 0);
    cr_assert_eq(weft_stream_write(cs, "STARTTLS\n", 9), 9);
    const char *line;
    cr_assert_eq(weft_stream_readline(ss, &line), 9);
    client_hs h = {.c = c, .s = cs, .opts = {.server_name = "127.0.0.1"}};
    weft_future *f;
    cr_assert_eq(weft_task_spawn(c->loop, client_hs_task, &h, &f), 0);
    weft_tls_opts so = {.handshake_timeout_ns = 2000 * MS};
    cr_assert_eq(weft_stream_start_tls(ss, c->sctx, &so), 0, "%s", weft_stream_tls_error(ss));
    weft_await(f, NULL);
    weft_future_unref(f);
    cr_assert_eq(h.rc, 0, "%s", h.why);
    cr_assert_eq(weft_stream_start_tls(cs, c->cctx, NULL), -EINVAL); /* already TLS */

    /* a read timeout is not lasting */
    cr_assert_eq(weft_stream_set_timeout(cs, 50 * MS), 0);
    cr_assert_eq(weft_stream_readline(cs, &line), -ETIMEDOUT);
    cr_assert_eq(weft_stream_write(ss, "late\n", 5), 5);
    cr_assert_eq(weft_stream_readline(cs, &line), 5);
    cr_assert_eq(memcmp(line, "late\n", 5), 0);
    cr_assert_eq(weft_stream_set_timeout(cs, 0), 0);

    /* the server flushes and closes without close_notify */
    cr_assert_eq(weft_stream_write(ss, "last\n", 5), 5);
    cr_assert_eq(weft_stream_flush(ss), 0);
    weft_stream_close(ss);
    cr_assert_eq(weft_stream_readline(cs, &line), 5);
    cr_assert_eq(weft_stream_readline(cs, &line), -ECONNRESET);
    cr_assert(strstr(weft_stream_tls_error(cs), "close_notify") != NULL);
    cr_assert_eq(weft_stream_readline(cs, &line), -ECONNRESET);
    weft_stream_close(cs);
    weft_close(c->loop, lfd);
}

Test(tls, starttls_timeout_and_truncated_stream)
{
    tls_case(&(tls_opts){.main = starttls_main});
}

/* ------------------------------------------------------------------ */

/* A handler that never reads: the client's writes fill the buffers and
 * its idle timeout ends the wait, as on a plain stream; a deadline too. */
static int no_reader(weft_stream *s, void *arg)
{
    tls_ctx *c = arg;
    c->handler_rc = weft_sleep(weft_stream_loop(s), 5000 * MS);
    c->served++;
    return 0;
}

static void write_timeout_main(tls_ctx *c)
{
    weft_stream *s;
    char why[256];
    cr_assert_eq(connect_tls(c, "localhost", &s, why, sizeof why), 0, "%s", why);
    size_t n = 64 << 20;
    char *big = calloc(1, n);
    cr_assert(big);
    cr_assert_eq(weft_stream_set_timeout(s, 100 * MS), 0);
    uint64_t t0 = weft_loop_now(c->loop);
    cr_assert_eq(weft_stream_write(s, big, n), -ETIMEDOUT);
    uint64_t took = weft_loop_now(c->loop) - t0;
    cr_assert_lt(took, 3000 * MS);
    cr_assert_eq(weft_stream_set_timeout(s, 0), 0);
    /* a deadline: the write that cannot finish ends at it; the flush after
     * it too, unless the socket buffers (autotuned) took the rest */
    cr_assert_eq(weft_stream_set_deadline(s, 100 * MS), 0);
    cr_assert_eq(weft_stream_write(s, big, n), -ETIMEDOUT);
    int rc = weft_stream_flush(s);
    cr_assert(rc == -ETIMEDOUT || rc == 0, "%s", weft_strerror(rc));
    free(big);
    weft_stream_close(s);
    cr_assert_eq(weft_server_close(c->srv, 0), 1); /* the sleeping handler, cancelled */
    c->srv = NULL;
}

Test(tls, write_timeout_and_deadline)
{
    tls_case(&(tls_opts){
        .main = write_timeout_main, .handler = no_reader, .served = 1, .handler_rc = -ECANCELED});
}

/* ------------------------------------------------------------------ */

/* Client certificates: a server that requires one (WEFT_TLS_VERIFY_PEER)
 * serves a client that has it, and refuses one that has none (TLS 1.3:
 * the client's handshake is done before the server checks, so the
 * client's first read gets the server's alert: -EPROTO). */
static void client_cert_main(tls_ctx *c)
{
    weft_tls_ctx_opts o = {.cert_file = c->certs.cert[OTHER],
                           .key_file = c->certs.key[OTHER],
                           .ca_file = c->certs.cert[GOOD]};
    weft_tls_ctx *with = new_ctx(&o);
    char why[256];
    weft_tls_opts to = {.server_name = "localhost"};
    weft_stream *s;
    int rc = weft_open_connection_tls(c->loop, &c->addr, NULL, 2000 * MS, with, &to, &s, why,
                                      sizeof why);
    cr_assert_eq(rc, 0, "%s", why);
    const char *line;
    cr_assert_eq(weft_stream_write(s, "mine\n", 5), 5);
    cr_assert_eq(weft_stream_readline(s, &line), 5);
    cr_assert_eq(weft_stream_write_eof(s), 0);
    cr_assert_eq(weft_stream_readline(s, &line), 0);
    weft_stream_close(s);
    weft_tls_ctx_free(with);

    rc = connect_tls(c, "localhost", &s, why, sizeof why);
    if (rc == 0) { /* TLS 1.3 */
        weft_stream_write(s, "none\n", 5);
        int64_t n = weft_stream_readline(s, &line);
        cr_assert_eq(n, -EPROTO, "%s", weft_strerror((int)n));
        cr_assert(strstr(weft_stream_tls_error(s), "certificate required") != NULL, "%s",
                  weft_stream_tls_error(s));
        weft_stream_close(s);
    } else {
        cr_assert_eq(rc, -EPROTO, "%s", why);
    }
}

Test(tls, client_certificate_required)
{
    tls_case(&(tls_opts){.main = client_cert_main, .verify_client = 1, .served = 1, .failures = 1});
}

/* ------------------------------------------------------------------ */

Test(tls, context_errors)
{
    certs k;
    certs_make(&k);
    weft_tls_ctx *ctx = NULL;
    char why[256];
    cr_assert_eq(weft_tls_available(), 1);
    weft_tls_ctx_opts o = {.server = 1, .cert_file = k.cert[GOOD]};
    cr_assert_eq(weft_tls_ctx_new(&o, &ctx, why, sizeof why), -EINVAL); /* no key */
    cr_assert_eq(weft_tls_ctx_new(NULL, &ctx, why, sizeof why), -EINVAL);
    o.key_file = "/nonexistent/key.pem";
    cr_assert_eq(weft_tls_ctx_new(&o, &ctx, why, sizeof why), -ENOENT);
    cr_assert(strstr(why, "/nonexistent/key.pem") != NULL, "%s", why);
    o.key_file = k.key[OTHER]; /* not the certificate's key */
    cr_assert_eq(weft_tls_ctx_new(&o, &ctx, why, sizeof why), -EPROTO);
    cr_assert(why[0] != '\0');
    o.key_file = k.cert[GOOD]; /* not a key at all */
    cr_assert_eq(weft_tls_ctx_new(&o, &ctx, why, sizeof why), -EPROTO);
    o.key_file = k.key[GOOD];
    o.ciphers = "NO-SUCH-CIPHER";
    cr_assert_eq(weft_tls_ctx_new(&o, &ctx, why, sizeof why), -EPROTO);
    o.ciphers = NULL;
    cr_assert_eq(weft_tls_ctx_new(&o, &ctx, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(why, "");
    weft_tls_ctx_free(ctx);
    o.verify = WEFT_TLS_VERIFY_PEER; /* a server that checks needs its CA */
    cr_assert_eq(weft_tls_ctx_new(&o, &ctx, why, sizeof why), -EINVAL);
    weft_tls_ctx_opts co = {.ca_file = "/nonexistent/ca.pem"};
    cr_assert_eq(weft_tls_ctx_new(&co, &ctx, NULL, 0), -ENOENT);
    weft_tls_ctx_free(NULL);
    cr_assert_eq(weft_stream_start_tls(NULL, NULL, NULL), -EINVAL);
    cr_assert_null(weft_stream_tls_error(NULL));
    certs_remove(&k);
}

#endif
