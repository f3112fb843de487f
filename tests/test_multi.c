/* Loop-level suite: multishot accept and recv (weft/multi.h) on every
 * backend: io_uring's own multishot requests, the emulation elsewhere. */
#include "common.h"
#include "loop_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

TestSuite(multi, .timeout = 60);

static void run_until(weft_loop *loop, const int *flag, int want)
{
    for (int i = 0; i < 1000 && *flag < want; i++)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
}

typedef struct {
    weft_loop *loop;
    int calls, finals, target, accepted;
    int64_t last;
    int fds[1100];
} acceptor;

static void on_accept(weft_multi *m, int64_t res, void *buf, int more)
{
    acceptor *a = m->data;
    cr_assert_null(buf);
    a->calls++;
    if (res >= 0)
        a->fds[a->accepted++] = (int)res;
    if (!more) {
        a->finals++;
        a->last = res;
    }
    if (a->accepted == a->target)
        weft_loop_stop(a->loop);
}

Test(multi, multishot_accept_of_a_thousand_connections)
{
    enum { N = 1000 };
    int limit = test_raise_nofile(2 * N + 100);
    if (limit < 2 * N + 64)
        cr_skip_test("RLIMIT_NOFILE %d too low", limit);
    weft_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    static acceptor a;
    a = (acceptor){.loop = loop, .target = N};
    static int clients[N];
    weft_multi m = {0};
    cr_assert_eq(weft_accept_multi(loop, &m, lfd, on_accept, &a), 0);
    cr_assert_eq(weft_accept_multi(loop, &m, lfd, on_accept, &a), -EBUSY);
    /* Connect in rounds, the loop accepting in between (the backlog is finite). */
    for (int i = 0; i < N; i++) {
        clients[i] = test_tcp_socket();
        cr_assert(test_connect_started(clients[i], &addr), "connect %d: %s", i,
                  strerror(test_sock_errno()));
        if (i % 100 == 99)
            weft_loop_run(loop, WEFT_RUN_NOWAIT);
    }
    while (a.accepted < N)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(a.accepted, N);
    cr_assert_eq(a.finals, 0, "still accepting");
    for (int i = 0; i < N; i++) {
        cr_assert(test_is_nonblocking(a.fds[i]));
        test_close(a.fds[i]);
        test_close(clients[i]);
    }
    cr_assert_eq(weft_multi_cancel(loop, &m), 0);
    cr_assert_eq(weft_multi_cancel(loop, &m), -EALREADY);
    test_run(loop); /* a running multishot request keeps the loop going until its last call */
    cr_assert_eq(a.finals, 1);
    cr_assert_eq(a.last, -ECANCELED);
    test_close(lfd);
    test_loop_free(loop);
}

typedef struct {
    weft_loop *loop;
    char data[4096];
    size_t got;
    int calls, finals, hold, nheld, errors;
    int64_t last;
    void *held[64];
    void *last_buf; /* the latest chunk's start */
} receiver;

static void on_recv(weft_multi *m, int64_t res, void *buf, int more)
{
    receiver *r = m->data;
    r->calls++;
    if (res > 0) {
        cr_assert_not_null(buf);
        cr_assert_leq(r->got + (size_t)res, sizeof r->data);
        memcpy(r->data + r->got, buf, (size_t)res);
        r->got += (size_t)res;
        r->last_buf = buf;
        if (r->hold)
            r->held[r->nheld++] = buf;
        else
            weft_loop_buffer_release(r->loop, buf);
    } else {
        cr_assert_null(buf);
    }
    if (res == -ENOBUFS)
        r->errors++;
    if (!more) {
        r->finals++;
        r->last = res;
    }
}

/* Run the loop until r has `want` bytes or 50 turns found nothing more,
 * then once again after 10 ms: what a paused recv would let through. */
static void run_until_dry(weft_loop *loop, const receiver *r, size_t want)
{
    for (int i = 0; i < 50 && r->got < want; i++)
        weft_loop_run(loop, WEFT_RUN_NOWAIT);
    usleep(10 * 1000);
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
}

/* Cancel r's running recv m, check its last call, close the pair, free the loop. */
static void cancel_and_close(weft_loop *loop, weft_multi *m, receiver *r, int sv[2])
{
    cr_assert_eq(r->finals, 0);
    cr_assert_eq(weft_multi_cancel(loop, m), 0);
    run_until(loop, &r->finals, 1);
    cr_assert_eq(r->last, -ECANCELED);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

/* Run the loop until *got reaches want, at most 1000 turns. */
static void run_until_got(weft_loop *loop, const size_t *got, size_t want)
{
    for (int turns = 0; *got < want; turns++) {
        cr_assert_lt(turns, 1000);
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
}

/* Cancel m and run until its last call, close the pair, free the loop. */
static void stop_close_free(weft_loop *loop, weft_multi *m, int sv[2])
{
    cr_assert_eq(weft_multi_cancel(loop, m), 0);
    for (int i = 0; i < 100 && weft_multi_active(m); i++)
        weft_loop_run(loop, WEFT_RUN_ONCE);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

Test(multi, multishot_recv_into_loop_buffers_until_end_of_stream)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    r = (receiver){.loop = loop};
    weft_multi m = {0};
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), -ENOBUFS, "no buffers yet");
    cr_assert_eq(weft_loop_buffers_setup(loop, 8, 64), 0);
    cr_assert_eq(weft_loop_buffers_setup(loop, 8, 64), -EBUSY);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), 0);
    const char *msgs[] = {"alpha ", "beta ", "gamma ", "delta"};
    size_t want = 0;
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(msgs[i]);
        cr_assert_eq(test_write(sv[1], msgs[i], n), (ssize_t)n);
        want += n;
        while (r.got < want)
            cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
    cr_assert_eq(r.finals, 0);
    test_close(sv[1]);
    run_until(loop, &r.finals, 1);
    cr_assert_eq(r.finals, 1);
    cr_assert_eq(r.last, 0, "end of stream");
    cr_assert_eq(memcmp(r.data, "alpha beta gamma delta", want), 0);
    test_close(sv[0]);
    test_loop_free(loop);
}

Test(multi, multishot_recv_recovers_from_running_out_of_buffers)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    r = (receiver){.loop = loop, .hold = 1};
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 16), 0);
    weft_multi m = {0};
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), 0);
    char msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    cr_assert_eq(test_write(sv[1], msg, sizeof msg), (ssize_t)sizeof msg);
    /* Four buffers of 16 bytes: 64 bytes arrive, then the kernel runs dry. */
    run_until_dry(loop, &r, 64);
    cr_assert_eq(r.got, 64);
    cr_assert_eq(r.nheld, 4);
    /* Give them back one round at a time: the recv resumes by itself. */
    r.hold = 0;
    while (r.got < sizeof msg) {
        while (r.nheld)
            weft_loop_buffer_release(loop, r.held[--r.nheld]);
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
    cr_assert_eq(r.got, sizeof msg);
    cr_assert_eq(memcmp(r.data, msg, sizeof msg), 0);
    cr_assert_eq(r.errors, 0, "-ENOBUFS is not the caller's business");
    cancel_and_close(loop, &m, &r, sv);
}

static int in_buffer(const void *chunk, const char *buffer, size_t size)
{
    return (const char *)chunk >= buffer && (const char *)chunk < buffer + size;
}

/* Short messages share a buffer, one after the other; a buffer is used
 * again only once the last chunk of it is back (io_uring: where the kernel
 * has IOU_PBUF_RING_INC; the emulation always packs). */
Test(multi, multishot_recv_packs_chunks_and_reuses_a_buffer_once_all_are_back)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    r = (receiver){.loop = loop, .hold = 1};
    cr_assert_eq(weft_loop_buffers_setup(loop, 2, 256), 0);
    char info[256];
    cr_assert_geq(weft_loop_backend_info(loop, info, sizeof info), 0);
    if (strstr(info, "recv buffers whole"))
        cr_skip_test("this kernel gives each recv a whole buffer: %s", info);
    weft_multi m = {0};
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), 0);
    char msg[608];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 23);
    cr_assert_eq(test_write(sv[1], msg, 3), 3);
    while (r.got < 3)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(test_write(sv[1], msg + 3, 5), 5);
    while (r.got < 8)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(r.nheld, 2);
    cr_assert_eq((char *)r.held[1], (char *)r.held[0] + 3, "the second message follows the first");
    char *first = r.held[0];
    /* 600 more: the first buffer's last 248 bytes, the second's 256, then
     * no room is left. */
    cr_assert_eq(test_write(sv[1], msg + 8, 600), 600);
    run_until_dry(loop, &r, 512);
    cr_assert_eq(r.got, 512);
    /* Every chunk of the first buffer back but its first: it stays out. */
    int kept = 0;
    for (int i = 0; i < r.nheld; i++) {
        if (in_buffer(r.held[i], first, 256) && r.held[i] != first)
            weft_loop_buffer_release(loop, r.held[i]);
        else
            r.held[kept++] = r.held[i];
    }
    r.nheld = kept;
    run_until_dry(loop, &r, 513);
    cr_assert_eq(r.got, 512, "a buffer with a chunk out is not filled again");
    /* The last one back: the rest arrives, at the buffer's start. */
    int before = r.nheld;
    weft_loop_buffer_release(loop, first);
    weft_loop_buffer_release(loop, first); /* a second release is ignored */
    while (r.got < sizeof msg)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(r.got, sizeof msg);
    cr_assert_eq(memcmp(r.data, msg, sizeof msg), 0);
    cr_assert_eq((char *)r.held[before], first, "the freed buffer is filled from its start");
    cr_assert_eq(r.errors, 0);
    while (r.nheld)
        weft_loop_buffer_release(loop, r.held[--r.nheld]);
    cancel_and_close(loop, &m, &r, sv);
}

/* Chunks released from their callbacks: the emulation fills the buffer it
 * is filling from its start again (so it keeps touching the same memory);
 * io_uring's kernel goes on where it is, and the buffer goes back into the
 * ring only once full. Either way a kilobyte of short messages passes
 * through two 256-byte buffers intact. */
Test(multi, multishot_recv_chunks_released_at_once)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    r = (receiver){.loop = loop};
    cr_assert_eq(weft_loop_buffers_setup(loop, 2, 256), 0);
    char info[256];
    cr_assert_geq(weft_loop_backend_info(loop, info, sizeof info), 0);
    int kernel = strcmp(weft_loop_backend_name(loop), "io_uring") == 0;
    int whole = strstr(info, "recv buffers whole") != NULL;
    weft_multi m = {0};
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), 0);
    char msg[1008];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('A' + i % 29);
    cr_assert_eq(test_write(sv[1], msg, 3), 3);
    while (r.got < 3)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    char *p0 = r.last_buf;
    cr_assert_eq(test_write(sv[1], msg + 3, 5), 5);
    while (r.got < 8)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    if (!kernel)
        cr_assert_eq((char *)r.last_buf, p0, "refilled from its start");
    else if (!whole)
        cr_assert_eq((char *)r.last_buf, p0 + 3, "the kernel goes on where it is");
    for (size_t off = 8; off < sizeof msg; off += 100) {
        size_t n = sizeof msg - off < 100 ? sizeof msg - off : 100;
        cr_assert_eq(test_write(sv[1], msg + off, n), (ssize_t)n);
        while (r.got < off + n)
            cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    }
    cr_assert_eq(memcmp(r.data, msg, sizeof msg), 0);
    cr_assert_eq(r.errors, 0);
    cancel_and_close(loop, &m, &r, sv);
}

typedef struct {
    weft_loop *loop;
    size_t got;
    int ndistinct;
    void *distinct[256];
} spreader;

/* Count the distinct chunk addresses, and give each chunk back at once. */
static void on_spread_recv(weft_multi *m, int64_t res, void *buf, int more)
{
    spreader *sp = m->data;
    (void)more;
    if (res <= 0)
        return;
    sp->got += (size_t)res;
    int seen = 0;
    for (int i = 0; i < sp->ndistinct && !seen; i++)
        seen = sp->distinct[i] == buf;
    if (!seen && sp->ndistinct < 256)
        sp->distinct[sp->ndistinct++] = buf;
    weft_loop_buffer_release(sp->loop, buf);
}

/* Buffer-sized messages, each given back before the next: recvs keep to
 * the few most recently freed buffers, not the whole pool (on io_uring the
 * ring holds only some of them; it is a FIFO and would cycle through all
 * 256). */
Test(multi, multishot_recv_keeps_to_recently_freed_buffers)
{
    weft_loop *loop = test_loop_new();
    static spreader sp;
    sp = (spreader){.loop = loop};
    cr_assert_eq(weft_loop_buffers_setup(loop, 256, 64), 0);
    weft_multi m = {0};
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_spread_recv, &sp), 0);
    char msg[64];
    memset(msg, 'w', sizeof msg);
    for (int i = 0; i < 600; i++) {
        cr_assert_eq(test_write(sv[1], msg, sizeof msg), (ssize_t)sizeof msg);
        run_until_got(loop, &sp.got, (size_t)(i + 1) * sizeof msg);
    }
    cr_assert_eq(sp.got, 600 * sizeof msg);
    cr_assert_leq(sp.ndistinct, 64, "%d of 256 buffers used", sp.ndistinct);
    stop_close_free(loop, &m, sv);
}

/* A burst that needs most of the pool, every chunk held: on io_uring the
 * ring runs dry while buffers are still held back, and it takes more of
 * them rather than pausing. */
Test(multi, multishot_recv_burst_larger_than_the_ring_share_arrives_whole)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    r = (receiver){.loop = loop, .hold = 1};
    cr_assert_eq(weft_loop_buffers_setup(loop, 64, 64), 0);
    weft_multi m = {0};
    int sv[2];
    test_unix_pair(sv);
    cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_recv, &r), 0);
    char msg[3840]; /* 60 buffers */
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 19);
    cr_assert_eq(test_write(sv[1], msg, sizeof msg), (ssize_t)sizeof msg);
    run_until_dry(loop, &r, sizeof msg);
    cr_assert_eq(r.got, sizeof msg);
    cr_assert_eq(memcmp(r.data, msg, sizeof msg), 0);
    cr_assert_eq(r.errors, 0);
    /* io_uring: the ring ran dry with buffers held back, and keeps more. */
    char info[256];
    cr_assert_geq(weft_loop_backend_info(loop, info, sizeof info), 0);
    const char *ring = strstr(info, "ring holds ");
    unsigned goal = 0, count = 0;
    if (strcmp(weft_loop_backend_name(loop), "io_uring") == 0) {
        cr_assert_not_null(ring, "%s", info);
        cr_assert_eq(sscanf(ring, "ring holds %u of %u", &goal, &count), 2);
        cr_assert_eq(count, 64);
        cr_assert_gt(goal, 16, "%s", info);
    }
    while (r.nheld)
        weft_loop_buffer_release(loop, r.held[--r.nheld]);
    cancel_and_close(loop, &m, &r, sv);
}

/* Counts what arrives and checks it against the sender's pattern. */
typedef struct {
    weft_loop *loop;
    size_t got;
    int bad;
    void *first; /* the first chunk */
} pattern_counter;

static void on_pattern_recv(weft_multi *m, int64_t res, void *buf, int more)
{
    (void)more;
    pattern_counter *pc = m->data;
    if (res <= 0)
        return;
    if (!pc->first)
        pc->first = buf;
    for (int64_t i = 0; i < res; i++)
        if (((unsigned char *)buf)[i] != (unsigned char)((pc->got + (size_t)i) % 251))
            pc->bad++;
    pc->got += (size_t)res;
    weft_loop_buffer_release(pc->loop, buf);
}

#ifdef __linux__
/* "hg" among the VmFlags of the mapping holding p in /proc/self/smaps
 * (advised for huge pages): 1, 0, or -1 when no mapping holds p. */
static int smaps_says_huge(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int inside = 0, found = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            found = strstr(line, " hg") != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

/* 1 when the mapping holding p is advised for huge pages, 0 when not, -1
 * when this system does not show it: a mapping the test advises itself
 * does not show it either (no transparent huge pages, or qemu-user, which
 * ignores madvise). */
static int advised_huge(const void *p)
{
    size_t n = 2u << 20;
    void *probe = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED)
        return -1;
    int shown = madvise(probe, n, MADV_HUGEPAGE) == 0 && smaps_says_huge(probe) == 1;
    munmap(probe, n);
    return shown ? smaps_says_huge(p) : -1;
}
#endif

/* A pool larger than a huge page and not a whole number of them (64 x
 * 40,000 bytes): everything arrives through it, twice over with a new
 * loop, and on Linux it starts on a 2 MiB boundary (transparent huge pages)
 * and is unmapped whole when the loop is freed. */
Test(multi, multishot_recv_through_a_pool_of_huge_pages)
{
    for (int round = 0; round < 2; round++) {
        weft_loop *loop = test_loop_new();
        static pattern_counter pc;
        pc = (pattern_counter){.loop = loop};
        cr_assert_eq(weft_loop_buffers_setup(loop, 64, 40000), 0);
        weft_multi m = {0};
        int sv[2];
        test_unix_pair(sv);
        cr_assert_eq(weft_recv_multi(loop, &m, sv[0], on_pattern_recv, &pc), 0);
        static unsigned char block[4096];
        size_t sent = 0, total = 300 * 1000;
        while (sent < total) {
            size_t n = total - sent < sizeof block ? total - sent : sizeof block;
            for (size_t i = 0; i < n; i++)
                block[i] = (unsigned char)((sent + i) % 251);
            cr_assert_eq(test_write(sv[1], block, n), (long)n);
            sent += n;
            run_until_got(loop, &pc.got, sent);
        }
        cr_assert_eq(pc.got, total);
        cr_assert_eq(pc.bad, 0);
#ifdef __linux__
        int shown = advised_huge(pc.first);
        cr_assert_neq(shown, 0, "pool not advised for huge pages");
#endif
        char *base = pc.first;
        stop_close_free(loop, &m, sv);
#ifdef __linux__
        cr_assert_eq((uintptr_t)base % (2u << 20), 0, "pool at %p", (void *)base);
        /* Unmapped, up to its last huge page: no mapping advised for huge
         * pages is left there (another thread, libkqueue's, may map the
         * freed range again, but without the advice). */
        if (shown == 1) {
            cr_assert_neq(smaps_says_huge(base), 1, "pool still mapped");
            cr_assert_neq(smaps_says_huge(base + (4u << 20) - 4096), 1, "pool's end still mapped");
        }
#else
        (void)base;
#endif
    }
}

Test(multi, multishot_recv_paused_then_cancelled_or_closed)
{
    weft_loop *loop = test_loop_new();
    static receiver r1, r2;
    r1 = (receiver){.loop = loop, .hold = 1};
    r2 = (receiver){.loop = loop, .hold = 1};
    cr_assert_eq(weft_loop_buffers_setup(loop, 2, 8), 0);
    weft_multi m1 = {0}, m2 = {0};
    int a[2], b[2];
    test_unix_pair(a);
    test_unix_pair(b);
    cr_assert_eq(weft_recv_multi(loop, &m1, a[0], on_recv, &r1), 0);
    cr_assert_eq(test_write(a[1], "0123456789abcdefXYZ", 19), 19);
    for (int i = 0; i < 10; i++)
        weft_loop_run(loop, WEFT_RUN_NOWAIT);
    cr_assert_eq(r1.got, 16);
    /* m1 is paused (both buffers held). */
    cr_assert_eq(weft_multi_cancel(loop, &m1), 0);
    cr_assert_eq(r1.finals, 0, "the last callback never runs inside cancel");
    run_until(loop, &r1.finals, 1);
    cr_assert_eq(r1.last, -ECANCELED);
    while (r1.nheld)
        weft_loop_buffer_release(loop, r1.held[--r1.nheld]);

    /* A CLOSE op on the fd of an armed multishot recv ends it. */
    cr_assert_eq(weft_recv_multi(loop, &m2, b[0], on_recv, &r2), 0);
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    weft_op cl;
    test_rec rc = {0};
    weft_op_prep_close(&cl, b[0], test_on_done, &rc);
    cr_assert_eq(weft_op_submit(loop, &cl), 0);
    run_until(loop, &r2.finals, 1);
    test_run(loop);
    cr_assert_eq(r2.last, -ECANCELED);
    cr_assert_eq(rc.result, 0);
    test_close(a[0]);
    test_close(a[1]);
    test_close(b[1]);
    test_loop_free(loop);
}

Test(multi, free_with_multishot_requests_in_flight)
{
    weft_loop *loop = test_loop_new();
    static receiver r;
    static acceptor a;
    r = (receiver){.loop = loop};
    a = (acceptor){.loop = loop, .target = -1};
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 64), 0);
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    int sv[2];
    test_unix_pair(sv);
    weft_multi ma = {0}, mr = {0};
    cr_assert_eq(weft_accept_multi(loop, &ma, lfd, on_accept, &a), 0);
    cr_assert_eq(weft_recv_multi(loop, &mr, sv[0], on_recv, &r), 0);
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    cr_assert_eq(weft_loop_free(loop), 0);
    cr_assert_eq(a.calls + r.calls, 0);
    /* Nothing is armed any more: the connection waits in the backlog. */
    int c = test_tcp_socket_blocking();
    cr_assert_eq(test_connect(c, &addr), 0);
    usleep(10 * 1000);
    int s = test_accept(lfd);
    cr_assert_geq(s, 0, "accept: %s", strerror(test_sock_errno()));
    test_close(s);
    test_close(c);
    test_close(lfd);
    test_close(sv[0]);
    test_close(sv[1]);
}

static void noop_multi(weft_multi *m, int64_t res, void *buf, int more)
{
    (void)m;
    (void)res;
    (void)buf;
    (void)more;
}

Test(multi, bad_input)
{
    weft_loop *loop = test_loop_new();
    weft_multi m = {0};
    char x[8];
    cr_assert_eq(weft_accept_multi(NULL, &m, 0, noop_multi, NULL), -EINVAL);
    cr_assert_eq(weft_accept_multi(loop, NULL, 0, noop_multi, NULL), -EINVAL);
    cr_assert_eq(weft_accept_multi(loop, &m, 0, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_accept_multi(loop, &m, -1, noop_multi, NULL), -EBADF);
    cr_assert_eq(weft_recv_multi(loop, &m, 0, noop_multi, NULL), -ENOBUFS, "no buffers yet");
    cr_assert_eq(weft_multi_cancel(loop, &m), -EALREADY, "not running");
    cr_assert_eq(weft_multi_cancel(NULL, &m), -EINVAL);
    cr_assert_not(weft_multi_active(&m));
    cr_assert_not(weft_multi_active(NULL));
    cr_assert_eq(weft_loop_buffers_setup(loop, 3, 64), -EINVAL, "not a power of two");
    cr_assert_eq(weft_loop_buffers_setup(loop, 0, 64), -EINVAL);
    cr_assert_eq(weft_loop_buffers_setup(loop, 4, 0), -EINVAL);
    cr_assert_eq(weft_loop_buffers_setup(loop, 65536, 64), -EINVAL);
    cr_assert_eq(weft_loop_buffers_setup(NULL, 4, 64), -EINVAL);
    cr_assert_eq(weft_loop_buffer_release(loop, NULL), -EINVAL);
    cr_assert_eq(weft_loop_buffer_release(loop, x), 0, "not a loop buffer: ignored");
    test_loop_free(loop);
}

/* ---- one completion discipline: multishot results in the callback phase ---- */

/* A spy on the backend's poll: whether a callback runs inside it. */
static const weft__vtable *real_vt;
static weft__vtable spy_vt;
static int in_poll;

static int spy_poll(weft__backend *be, int64_t timeout_ns)
{
    in_poll = 1;
    int rc = real_vt->poll(be, timeout_ns);
    in_poll = 0;
    return rc;
}

static void spy_on_poll(weft_loop *loop)
{
    real_vt = loop->backend->vt;
    spy_vt = *real_vt;
    spy_vt.poll = spy_poll;
    loop->backend->vt = &spy_vt;
}

typedef struct {
    weft_loop *loop;
    weft_multi mr, ma;
    int sv[2], client, lfd;
    struct sockaddr_in addr;
    int clock;      /* numbers the events below in the order they ran */
    int a_at, b_at; /* call_soon callbacks queued before the poll */
    int recv_at, acc_at, final_at;
    int inside_poll; /* callbacks that ran while the backend polled */
    int active_in_b; /* weft_multi_active(mr) seen by b */
    int accepted;
    weft_handle x, a, b;
} phase_rec;

static void on_phase_recv(weft_multi *m, int64_t res, void *buf, int more)
{
    phase_rec *p = m->data;
    p->inside_poll += in_poll;
    if (buf)
        weft_loop_buffer_release(p->loop, buf);
    if (res > 0 && !p->recv_at)
        p->recv_at = ++p->clock;
    if (!more)
        p->final_at = ++p->clock;
}

static void on_phase_accept(weft_multi *m, int64_t res, void *buf, int more)
{
    phase_rec *p = m->data;
    (void)buf;
    (void)more;
    p->inside_poll += in_poll;
    if (res >= 0) {
        p->accepted = (int)res;
        p->acc_at = ++p->clock;
    }
}

static void mark_a(void *arg)
{
    phase_rec *p = arg;
    p->a_at = ++p->clock;
}

static void mark_b(void *arg)
{
    phase_rec *p = arg;
    p->b_at = ++p->clock;
    p->active_in_b = weft_multi_active(&p->mr);
}

/* In one callback phase: make data and a connection arrive, and queue `a`.
 * The next poll finds both; their callbacks must come after `a`. */
static void stir(void *arg)
{
    phase_rec *p = arg;
    cr_assert_eq(test_write(p->sv[1], "x", 1), 1);
    p->client = test_tcp_socket_blocking();
    cr_assert_eq(test_connect(p->client, &p->addr), 0);
    weft_call_soon(p->loop, &p->a, mark_a, p);
}

/* Then end the stream and queue `b`: the last callback comes after it. */
static void hang_up(void *arg)
{
    phase_rec *p = arg;
    cr_assert_eq(shutdown(p->sv[1], SHUT_WR), 0);
    weft_call_soon(p->loop, &p->b, mark_b, p);
}

Test(multi, results_run_in_the_callback_phase_after_earlier_callbacks)
{
    weft_loop *loop = test_loop_new();
    static phase_rec p;
    p = (phase_rec){.loop = loop};
    p.x = p.a = p.b = (weft_handle)WEFT_HANDLE_INIT;
    spy_on_poll(loop);
    cr_assert_eq(weft_loop_buffers_setup(loop, 8, 64), 0);
    test_unix_pair(p.sv);
    p.lfd = test_tcp_listener(&p.addr);
    cr_assert_eq(weft_recv_multi(loop, &p.mr, p.sv[0], on_phase_recv, &p), 0);
    cr_assert_eq(weft_accept_multi(loop, &p.ma, p.lfd, on_phase_accept, &p), 0);
    for (int i = 0; i < 5; i++) /* both armed, nothing to report yet */
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
    cr_assert_eq(p.clock, 0);

    weft_call_soon(loop, &p.x, stir, &p);
    for (int i = 0; i < 1000 && (!p.recv_at || !p.acc_at); i++)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_eq(p.a_at, 1, "a ran first (clock %d)", p.clock);
    cr_assert_gt(p.recv_at, p.a_at);
    cr_assert_gt(p.acc_at, p.a_at);

    weft_call_soon(loop, &p.x, hang_up, &p);
    for (int i = 0; i < 1000 && !p.final_at; i++)
        cr_assert_geq(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
    cr_assert_gt(p.final_at, p.b_at, "the last callback after b");
    cr_assert(p.active_in_b, "active until its last callback ran");
    cr_assert_not(weft_multi_active(&p.mr));
    cr_assert_eq(p.inside_poll, 0, "a multishot callback ran inside the backend's poll");

    cr_assert_eq(weft_multi_cancel(loop, &p.ma), 0);
    test_run(loop);
    loop->backend->vt = real_vt;
    test_close(p.accepted);
    test_close(p.client);
    test_close(p.lfd);
    test_close(p.sv[0]);
    test_close(p.sv[1]);
    test_loop_free(loop);
}

/* Results the backend found but the loop never delivered: freeing the loop
 * drops them, and a connection accepted for nobody is closed. */
Test(multi, free_drops_results_not_delivered)
{
    weft_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    static acceptor a;
    a = (acceptor){.loop = loop, .target = -1};
    weft_multi m = {0};
    cr_assert_eq(weft_accept_multi(loop, &m, lfd, on_accept, &a), 0);
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    int c = test_tcp_socket_blocking();
    cr_assert_eq(test_connect(c, &addr), 0);
#ifndef _WIN32
    int next_fd = dup(c); /* the number an accepted fd would get */
    close(next_fd);
#endif
    usleep(10 * 1000);
    /* Poll the backend alone: results are found, no callback phase runs. */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(loop->backend->vt->poll(loop->backend, 0), 0);
    cr_assert_eq(a.calls, 0, "no callback inside poll");
    cr_assert(weft_multi_active(&m));
    cr_assert_eq(weft_loop_free(loop), 0);
    cr_assert_eq(a.calls, 0);
#ifndef _WIN32
    cr_assert_lt(fcntl(next_fd, F_GETFD), 0, "an fd accepted for nobody was left open");
#else
    /* Windows hands out handle values in no predictable order: the peer
     * shows instead that the connection accepted for nobody was closed (end
     * of stream or a reset, where a socket left open would say nothing). */
    test_nonblock(c);
    char byte;
    long n = -1;
    int err = EAGAIN;
    for (int i = 0; i < 500 && err == EAGAIN; i++) {
        n = test_recv(c, &byte, 1);
        err = n < 0 ? test_sock_errno() : 0;
        if (err == EAGAIN)
            usleep(10 * 1000);
    }
    cr_assert(n == 0 || err != EAGAIN, "the connection accepted for nobody was left open");
#endif
    test_close(c);
    test_close(lfd);
}
