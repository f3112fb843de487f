/* weft-load: drive an echo (or simple request/response) server with N
 * connections and report requests/s, MB/s and latency percentiles.
 * Built for speed: one edge-triggered epoll loop per thread, no allocation
 * once running, a log-linear histogram instead of a sample list. Its own
 * CPU use is reported ("client cpu"), so a run shows whether the client or
 * the server was the limit. */
#include "weft_load.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

/* Sleep until `until` (monotonic ns), or an interrupt. */
static void sleep_until(uint64_t until)
{
    for (;;) {
        uint64_t now = wl_now_ns();
        if (now >= until || g_interrupted)
            return;
        uint64_t step = until - now;
        sleep_ns(step > 100000000u ? 100000000u : step);
    }
}

static void raise_nofile(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static uint64_t total_done(wl_worker *w, int n)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += atomic_load_explicit(&w[i].done, memory_order_relaxed);
    return s;
}

/* Whether every worker thread has ended. */
static int all_finished(wl_worker *w, int n)
{
    for (int i = 0; i < n; i++)
        if (!atomic_load(&w[i].finished))
            return 0;
    return 1;
}

/* Close the connections that were opened (-1: never) and free the array. */
static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

static int hold(const wl_config *cfg, const int *fds)
{
    (void)fds;
    printf("held %d\n", cfg->conns);
    fflush(stdout);
    sleep_until(wl_now_ns() + (uint64_t)(cfg->hold * 1e9));
    return 0;
}

static void report(const wl_config *cfg, wl_worker *w, double secs, uint64_t server_cpu)
{
    wl_hist h;
    wl_hist_reset(&h);
    uint64_t done = 0, bytes = 0, errors = 0, cpu = 0;
    for (int i = 0; i < cfg->threads; i++) {
        wl_hist_merge(&h, &w[i].hist);
        done += w[i].done_local;
        bytes += w[i].rx_bytes;
        errors += w[i].errors;
        cpu += w[i].cpu_end - w[i].cpu_start;
    }
    double rps = secs > 0 ? (double)done / secs : 0;
    double mbps = secs > 0 ? (double)bytes / secs / 1e6 : 0;
    double cpu_pct = secs > 0 ? 100.0 * (double)cpu / 1e9 / secs / cfg->threads : 0;
    double p50 = (double)wl_hist_percentile(&h, 50) / 1e3;
    double p99 = (double)wl_hist_percentile(&h, 99) / 1e3;
    double p999 = (double)wl_hist_percentile(&h, 99.9) / 1e3;
    double srv_pct = secs > 0 ? 100.0 * (double)server_cpu / 1e9 / secs : 0;
    /* Requests per second of server CPU: steadier than requests/s on a
     * machine where something else takes the server's core now and then. */
    double per_cpu = server_cpu ? (double)done / ((double)server_cpu / 1e9) : 0;
    double mean = h.count ? (double)h.sum / (double)h.count / 1e3 : 0;
    double max = (double)h.max / 1e3;
    const char *mode = cfg->mode == WL_ECHO ? "echo" : "request";
    size_t size = cfg->mode == WL_ECHO ? cfg->size : cfg->request_len;
    if (cfg->json) {
        printf("{\"tool\":\"weft-load\",\"label\":\"%s\",\"mode\":\"%s\",\"connections\":%d,"
               "\"size\":%zu,\"pipeline\":%d,\"threads\":%d,\"seconds\":%.3f,"
               "\"requests\":%llu,\"rps\":%.1f,\"mbps\":%.2f,\"mean_us\":%.1f,\"p50_us\":%.1f,"
               "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"errors\":%llu,"
               "\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%.1f,\"rps_per_server_cpu\":%.1f}\n",
               cfg->label, mode, cfg->conns, size, cfg->depth, cfg->threads, secs,
               (unsigned long long)done, rps, mbps, mean, p50, p99, p999, max,
               (unsigned long long)errors, cpu_pct, srv_pct, per_cpu);
    } else {
        printf("%s%s%s %s:%d  %s %zu B  %d conns  pipeline %d  %d thread%s  %.2f s\n", cfg->label,
               *cfg->label ? ": " : "", mode, cfg->host, cfg->port,
               cfg->mode == WL_ECHO ? "size" : "request", size, cfg->conns, cfg->depth,
               cfg->threads, cfg->threads > 1 ? "s" : "", secs);
        printf("  requests/s %12.0f   MB/s %8.2f   requests %llu   errors %llu\n", rps, mbps,
               (unsigned long long)done, (unsigned long long)errors);
        printf("  latency us  p50 %.1f  p99 %.1f  p99.9 %.1f  mean %.1f  max %.1f\n", p50, p99,
               p999, mean, max);
        printf("  client cpu %.0f%% per thread", cpu_pct);
        if (cfg->server_pid)
            printf("   server cpu %.0f%%  (%.0f requests per server cpu second)", srv_pct, per_cpu);
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    wl_config cfg;
    int rc = wl_parse(&cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    raise_nofile(cfg.conns);

    int *fds = malloc((size_t)cfg.conns * sizeof *fds);
    if (!fds)
        return 1;
    for (int i = 0; i < cfg.conns; i++)
        fds[i] = -1;
    rc = wl_connect_all(&cfg, fds) != 0 ? 1 : cfg.hold > 0 ? hold(&cfg, fds) : -1;
    if (rc >= 0) {
        close_all(fds, cfg.conns);
        return rc;
    }

    /* Connections go round-robin to threads: regroup the fds per thread. */
    int *byworker = malloc((size_t)cfg.conns * sizeof *byworker);
    wl_worker *w = calloc((size_t)cfg.threads, sizeof *w);
    if (!byworker || !w)
        return 1;
    _Atomic int phase = WL_WARMUP;
    int off = 0;
    for (int t = 0; t < cfg.threads; t++) {
        int n = 0;
        for (int i = t; i < cfg.conns; i += cfg.threads)
            byworker[off + n++] = fds[i];
        w[t].id = t;
        if (wl_worker_init(&w[t], &cfg, &phase, byworker + off, n) != 0)
            return 1;
        if (cfg.requests)
            w[t].quota = cfg.requests / (uint64_t)cfg.threads +
                         ((uint64_t)t < cfg.requests % (uint64_t)cfg.threads);
        off += n;
    }
    for (int t = 0; t < cfg.threads; t++)
        pthread_create(&w[t].thread, NULL, cfg.uring ? wl_worker_run_uring : wl_worker_run, &w[t]);

    int tty = isatty(STDOUT_FILENO) && !cfg.json;
    sleep_until(wl_now_ns() + (uint64_t)(cfg.warmup * 1e9));
    uint64_t t0 = wl_now_ns();
    uint64_t srv0 = cfg.server_pid ? wl_process_cpu_ns(cfg.server_pid) : 0;
    atomic_store(&phase, WL_MEASURE);
    uint64_t end = cfg.requests ? UINT64_MAX : t0 + (uint64_t)(cfg.duration * 1e9);
    uint64_t last_t = t0, last_n = 0;
    for (;;) {
        uint64_t next = last_t + 1000000000u;
        sleep_until(next < end ? next : end);
        uint64_t now = wl_now_ns();
        if (g_interrupted || now >= end)
            break;
        if (cfg.requests && total_done(w, cfg.threads) >= cfg.requests)
            break;
        if (all_finished(w, cfg.threads))
            break; /* every connection was lost */
        /* last_t moves on with or without a terminal: were it left
         * behind, sleep_until() would return at once and this thread
         * would spin on the workers' core (it did, under --json). */
        uint64_t n = total_done(w, cfg.threads);
        if (tty) {
            printf("\r  %5.1f s  %10.0f requests/s  %llu done   ", (double)(now - t0) / 1e9,
                   (double)(n - last_n) * 1e9 / (double)(now - last_t), (unsigned long long)n);
            fflush(stdout);
        }
        last_n = n;
        last_t = now;
    }
    /* With -n every worker is past its quota here (or has no connection
     * left): stopping them changes nothing that is counted. */
    atomic_store(&phase, WL_STOP);
    uint64_t t1 = wl_now_ns();
    uint64_t srv1 = cfg.server_pid ? wl_process_cpu_ns(cfg.server_pid) : 0;
    for (int t = 0; t < cfg.threads; t++)
        pthread_join(w[t].thread, NULL);
    if (cfg.requests && !g_interrupted) {
        t1 = t0;
        for (int t = 0; t < cfg.threads; t++)
            if (w[t].end_ns > t1)
                t1 = w[t].end_ns;
    }
    if (tty)
        printf("\r%60s\r", "");
    report(&cfg, w, (double)(t1 - t0) / 1e9, srv1 > srv0 ? srv1 - srv0 : 0);
    uint64_t errors = 0;
    for (int t = 0; t < cfg.threads; t++) {
        errors += w[t].errors;
        wl_worker_free(&w[t]);
    }
    close_all(fds, cfg.conns);
    free(w);
    free(byworker);
    return errors == (uint64_t)cfg.conns ? 1 : 0;
}
