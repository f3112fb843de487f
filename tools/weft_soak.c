/* weft-soak: flags, the loop that keeps the connections churning, and the
 * report. See weft_soak.h. Exit status: 0 when every byte was verified and
 * nothing failed, 1 when something did, 2 for bad flags. */
#include "weft_soak.h"
#include "weft_tool_opts.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fputs("usage: weft-soak [flags]\n"
          "  --host H            server address (127.0.0.1)\n"
          "  --port P            server port (7000)\n"
          "  -c, --connections N connections kept open (1000)\n"
          "  -d, --duration S    seconds of churn (10)\n"
          "  -r, --requests N    requests per connection: 1..N (8)\n"
          "  -s, --size B        echo: bytes per request: 1..B (4096)\n"
          "  --http BODY         HTTP: GET / must answer 200 with BODY (else: echo)\n"
          "  --reset P           percent of connections ending with an RST (20)\n"
          "  --mid-reset P       percent ending with an RST mid-request (10)\n"
          "  --eof P             percent half-closing and waiting for the server's end (30)\n"
          "                      (the rest close after their last response)\n"
          "  --source-ips K      spread connections over 127.0.0.1..K (0: no bind)\n"
          "  --max-connecting N  connects in flight at most (256)\n"
          "  --stall S           seconds without progress that fail a connection (15)\n"
          "  --think MS          a pause of 0..MS ms before each later request (0; at most 4000):\n"
          "                      connections stay open longer, so more are open at once\n"
          "  --seed N            random seed (1)\n"
          "  --json              one JSON object instead of text\n",
          f);
}

static int flag(void *c, const char *a, char *v);
static const char *check(const void *c);

static int parse(ws_config *cfg, int argc, char **argv)
{
    *cfg = (ws_config){.conns = 1000,
                       .max_requests = 8,
                       .max_size = 4096,
                       .duration = 10,
                       .proto = WS_ECHO,
                       .pct_reset = 20,
                       .pct_midreset = 10,
                       .pct_eof = 30,
                       .max_connecting = 256,
                       .stall = 15,
                       .seed = 1};
    const wt_cli cli = {"weft-soak", usage, 0,
                        flag,        check, {&cfg->host, &cfg->port, &cfg->conns, &cfg->json}};
    return wt_parse(&cli, cfg, argc, argv);
}

/* The checks of the values: wt_parse's callback. */
static const char *check(const void *c)
{
    const ws_config *cfg = c;
    const char *bad = NULL;
    if (cfg->max_requests < 1)
        bad = "--requests must be at least 1";
    else if (cfg->max_size < 1 || cfg->max_size > (16u << 20))
        bad = "--size must be 1..16 MiB";
    else if (cfg->duration <= 0 || cfg->stall <= 0)
        bad = "--duration and --stall must be positive";
    else if (cfg->proto == WS_HTTP && !*cfg->body)
        bad = "--http needs a body";
    else if (cfg->pct_reset < 0 || cfg->pct_midreset < 0 || cfg->pct_eof < 0 ||
             cfg->pct_reset + cfg->pct_midreset + cfg->pct_eof > 100)
        bad = "--reset, --mid-reset and --eof are percentages adding up to at most 100";
    else if (cfg->think_ms < 0 || cfg->think_ms > WS_MAX_THINK)
        bad = "--think must be 0..4000";
    else if (cfg->max_connecting < 1)
        bad = "--max-connecting must be at least 1";
    return bad;
}

/* weft-soak's flags: wt_parse's callback. */
static int flag(void *c, const char *a, char *v)
{
    ws_config *cfg = c;
    if (v) {
        if (!strcmp(a, "-d") || !strcmp(a, "--duration"))
            cfg->duration = atof(v);
        else if (!strcmp(a, "-r") || !strcmp(a, "--requests"))
            cfg->max_requests = atoi(v);
        else if (!strcmp(a, "-s") || !strcmp(a, "--size"))
            cfg->max_size = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--http")) {
            cfg->proto = WS_HTTP;
            cfg->body = v;
        } else if (!strcmp(a, "--reset"))
            cfg->pct_reset = atoi(v);
        else if (!strcmp(a, "--mid-reset"))
            cfg->pct_midreset = atoi(v);
        else if (!strcmp(a, "--eof"))
            cfg->pct_eof = atoi(v);
        else if (!strcmp(a, "--source-ips"))
            cfg->source_ips = atoi(v);
        else if (!strcmp(a, "--max-connecting"))
            cfg->max_connecting = atoi(v);
        else if (!strcmp(a, "--stall"))
            cfg->stall = atof(v);
        else if (!strcmp(a, "--think"))
            cfg->think_ms = atoi(v);
        else if (!strcmp(a, "--seed"))
            cfg->seed = strtoull(v, NULL, 10);
        else
            return WT_UNKNOWN;
        return 2;
    }
    return WT_NO_VALUE;
}

static int resolve(ws_client *k)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    char port[16];
    snprintf(port, sizeof port, "%d", k->cfg->port);
    int rc = getaddrinfo(k->cfg->host, port, &hints, &ai);
    if (rc) {
        fprintf(stderr, "weft-soak: %s: %s\n", k->cfg->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&k->addr, ai->ai_addr, ai->ai_addrlen);
    k->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static uint64_t failures(const ws_stats *s)
{
    return s->mismatch + s->connect_err + s->early_end + s->stalled + s->no_eof;
}

static void report(const ws_client *k, double secs, int live_left)
{
    const ws_config *cfg = k->cfg;
    const ws_stats *s = &k->st;
    const char *verdict = failures(s) || live_left ? "FAIL" : "PASS";
    if (cfg->json) {
        printf("{\"tool\":\"weft-soak\",\"proto\":\"%s\",\"connections\":%d,\"seconds\":%.1f,"
               "\"opened\":%llu,\"finished\":%llu,\"requests\":%llu,\"bytes\":%llu,"
               "\"closed\":%llu,\"half_closed\":%llu,\"reset\":%llu,\"mid_reset\":%llu,"
               "\"mismatch\":%llu,\"connect_err\":%llu,\"early_end\":%llu,\"stalled\":%llu,"
               "\"no_eof\":%llu,\"left_open\":%d,\"verdict\":\"%s\"}\n",
               cfg->proto == WS_ECHO ? "echo" : "http", cfg->conns, secs,
               (unsigned long long)s->opened, (unsigned long long)s->finished,
               (unsigned long long)s->requests, (unsigned long long)s->bytes,
               (unsigned long long)s->ends[WS_END_CLOSE], (unsigned long long)s->ends[WS_END_EOF],
               (unsigned long long)s->ends[WS_END_RESET],
               (unsigned long long)s->ends[WS_END_MIDRESET], (unsigned long long)s->mismatch,
               (unsigned long long)s->connect_err, (unsigned long long)s->early_end,
               (unsigned long long)s->stalled, (unsigned long long)s->no_eof, live_left, verdict);
    } else {
        printf("weft-soak %s %s:%d  %d connections  %.1f s\n",
               cfg->proto == WS_ECHO ? "echo" : "http", cfg->host, cfg->port, cfg->conns, secs);
        printf("  connections %llu opened, %llu ended as drawn (%.0f/s): close %llu, half-close "
               "%llu, reset %llu, reset mid-request %llu\n",
               (unsigned long long)s->opened, (unsigned long long)s->finished,
               secs > 0 ? (double)s->finished / secs : 0, (unsigned long long)s->ends[WS_END_CLOSE],
               (unsigned long long)s->ends[WS_END_EOF], (unsigned long long)s->ends[WS_END_RESET],
               (unsigned long long)s->ends[WS_END_MIDRESET]);
        printf("  requests %llu verified (%.0f/s), %llu bytes\n", (unsigned long long)s->requests,
               secs > 0 ? (double)s->requests / secs : 0, (unsigned long long)s->bytes);
        printf("  failures: mismatch %llu, connect %llu, server ended early %llu, stalled %llu, "
               "no end after half-close %llu, left open %d\n",
               (unsigned long long)s->mismatch, (unsigned long long)s->connect_err,
               (unsigned long long)s->early_end, (unsigned long long)s->stalled,
               (unsigned long long)s->no_eof, live_left);
        if (s->first_what[0])
            printf("  first failure: %s: %s\n", s->first_what,
                   s->first_err ? strerror(s->first_err) : "-");
        printf("%s\n", verdict);
    }
}

/* Reopen free slots, at most max_connecting connects in flight. */
static void refill(ws_client *k)
{
    while (!k->stopping && k->nfree && k->connecting < k->cfg->max_connecting) {
        ws_conn *c = &k->c[k->free_slots[--k->nfree]];
        if (ws_conn_open(k, c) < 0) {
            k->free_slots[k->nfree++] = (int)(c - k->c);
            return; /* out of descriptors: try again next turn */
        }
    }
}

static int live(const ws_client *k)
{
    return k->cfg->conns - k->nfree;
}

static void check_stalls(ws_client *k, uint64_t now)
{
    uint64_t limit = (uint64_t)(k->cfg->stall * 1e9);
    for (int i = 0; i < k->cfg->conns; i++) {
        ws_conn *c = &k->c[i];
        if (c->state != WS_FREE && c->state != WS_THINK && now - c->last_ns > limit)
            ws_conn_stall(k, c);
    }
}

int main(int argc, char **argv)
{
    ws_config cfg;
    int rc = parse(&cfg, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)cfg.conns + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)cfg.conns + 64) {
            fprintf(stderr, "weft-soak: %d connections need RLIMIT_NOFILE %d (hard limit %llu)\n",
                    cfg.conns, cfg.conns + 64, (unsigned long long)rl.rlim_max);
            return 2;
        }
    }
    static ws_client k; /* its 64 KiB buffer stays off the stack */
    k.cfg = &cfg;
    k.rng = cfg.seed;
    k.c = calloc((size_t)cfg.conns, sizeof *k.c);
    k.free_slots = calloc((size_t)cfg.conns, sizeof *k.free_slots);
    k.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!k.c || !k.free_slots || k.epfd < 0 || resolve(&k) != 0)
        return 1;
    for (int i = 0; i < WS_WHEEL; i++)
        k.wheel[i] = -1;
    k.wheel_ms = ws_now_ns() / 1000000u;
    for (int i = cfg.conns - 1; i >= 0; i--) {
        k.c[i].fd = -1;
        k.free_slots[k.nfree++] = i;
    }
    struct epoll_event evs[512];
    uint64_t t0 = ws_now_ns(), end = t0 + (uint64_t)(cfg.duration * 1e9);
    uint64_t drain_end = 0, next_check = t0 + 1000000000u;
    for (;;) {
        uint64_t now = ws_now_ns();
        if (!k.stopping && (now >= end || interrupted)) {
            k.stopping = 1; /* connections end after their current request */
            drain_end = now + (uint64_t)(cfg.stall * 1e9);
        }
        if (k.stopping && (live(&k) == 0 || now >= drain_end))
            break;
        if (now >= next_check) {
            check_stalls(&k, now);
            next_check = now + 1000000000u;
        }
        refill(&k);
        int n = epoll_wait(k.epfd, evs, 512, cfg.think_ms ? 1 : 100);
        if (n < 0 && errno != EINTR) {
            perror("weft-soak: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            ws_conn *c = evs[i].data.ptr;
            if (c->state != WS_FREE)
                ws_conn_event(&k, c, evs[i].events);
        }
        ws_wheel_run(&k, ws_now_ns());
    }
    double secs = (double)(ws_now_ns() - t0) / 1e9;
    int left = live(&k);
    for (int i = 0; i < cfg.conns; i++)
        if (k.c[i].state != WS_FREE)
            close(k.c[i].fd);
    report(&k, secs, left);
    free(k.c);
    free(k.free_slots);
    close(k.epfd);
    return failures(&k.st) || left ? 1 : 0;
}
