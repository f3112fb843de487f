/* weft-load: command-line flags. */
#include "weft_load.h"
#include "weft_tool_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: weft-load [flags]\n"
          "  --host H          server address (127.0.0.1)\n"
          "  --port P          server port (7000)\n"
          "  -c, --connections N   connections (64)\n"
          "  -s, --size B      echo: bytes per message (64)\n"
          "  -p, --pipeline D  requests in flight per connection (1)\n"
          "  -d, --duration S  seconds to measure (5)\n"
          "  -n, --requests N  measure N requests instead of a duration\n"
          "  -w, --warmup S    seconds of load before measuring (1)\n"
          "  -t, --threads T   worker threads (1)\n"
          "  --request STR     request mode: send STR (C escapes \\r \\n \\t \\\\) per request\n"
          "  --expect STR      request mode: a response contains STR once (escapes as above)\n"
          "  --response-len B  request mode: every response is B bytes\n"
          "  --source-ips K    spread connections over source addresses 127.0.0.1..K\n"
          "  --hold S          connect, then hold the connections idle for S seconds\n"
          "                    (prints \"held N\" once all are connected)\n"
          "  --label NAME      a name for the report (the server under test)\n"
          "  --server-pid PID  also report that process's CPU use while measuring\n"
          "  --spin            busy-poll instead of sleeping in epoll_wait (a core per thread)\n"
          "  --interleave      send each replacement request as soon as its response is\n"
          "                    read (default: read every ready connection, then send)\n"
          "  --uring           io_uring instead of epoll: one system call per batch\n"
          "  --json            one JSON object instead of text\n",
          f);
}

/* Decode \r \n \t \\ in place; returns the length. */
static size_t unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            *o++ = *p == 'r' ? '\r' : *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return (size_t)(o - s);
}

static int is(const char *a, const char *s, const char *l)
{
    return (s && strcmp(a, s) == 0) || strcmp(a, l) == 0;
}

static int flag(void *c, const char *a, char *v);
static const char *check(const void *c);

int wl_parse(wl_config *cfg, int argc, char **argv)
{
    *cfg = (wl_config){.conns = 64,
                       .size = 64,
                       .depth = 1,
                       .duration = 5,
                       .warmup = 1,
                       .threads = 1,
                       .mode = WL_ECHO,
                       .label = ""};
    const wt_cli cli = {"weft-load", usage, 1,
                        flag,        check, {&cfg->host, &cfg->port, &cfg->conns, &cfg->json}};
    int rc = wt_parse(&cli, cfg, argc, argv);
    if (rc == 0 && cfg->threads > cfg->conns)
        cfg->threads = cfg->conns;
    return rc;
}

/* weft-load's flags: wt_parse's callback. */
static int flag(void *c, const char *a, char *v)
{
    wl_config *cfg = c;
    if (strcmp(a, "--spin") == 0) {
        cfg->spin = 1;
        return 1;
    }
    if (strcmp(a, "--interleave") == 0) {
        cfg->interleave = 1;
        return 1;
    }
    if (strcmp(a, "--uring") == 0) {
#ifdef WL_HAVE_URING
        cfg->uring = 1;
        return 1;
#else
        fprintf(stderr, "weft-load: --uring: built without liburing\n");
        return WT_REFUSED;
#endif
    }
    if (v) {
        if (is(a, "-s", "--size"))
            cfg->size = (size_t)strtoull(v, NULL, 10);
        else if (is(a, "-p", "--pipeline"))
            cfg->depth = atoi(v);
        else if (is(a, "-d", "--duration"))
            cfg->duration = atof(v);
        else if (is(a, "-n", "--requests"))
            cfg->requests = strtoull(v, NULL, 10);
        else if (is(a, "-w", "--warmup"))
            cfg->warmup = atof(v);
        else if (is(a, "-t", "--threads"))
            cfg->threads = atoi(v);
        else if (strcmp(a, "--request") == 0) {
            cfg->mode = WL_REQUEST;
            cfg->request = v;
            cfg->request_len = unescape(v);
        } else if (strcmp(a, "--expect") == 0) {
            cfg->expect = v;
            cfg->expect_len = unescape(v);
        } else if (strcmp(a, "--response-len") == 0)
            cfg->response_len = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(a, "--source-ips") == 0)
            cfg->source_ips = atoi(v);
        else if (strcmp(a, "--hold") == 0)
            cfg->hold = atof(v);
        else if (strcmp(a, "--label") == 0)
            cfg->label = v;
        else if (strcmp(a, "--server-pid") == 0)
            cfg->server_pid = atoi(v);
        else
            return WT_UNKNOWN;
        return 2;
    }
    return WT_NO_VALUE;
}

/* The checks of the values: wt_parse's callback. */
static const char *check(const void *c)
{
    const wl_config *cfg = c;
    const char *bad = NULL;
    if (cfg->depth < 1 || cfg->depth > 4096)
        bad = "--pipeline must be 1..4096";
    else if (cfg->mode == WL_ECHO && (cfg->size < 1 || cfg->size > (64u << 20)))
        bad = "--size must be 1..64 MiB";
    else if (cfg->mode == WL_REQUEST && cfg->request_len == 0)
        bad = "--request must not be empty";
    else if (cfg->mode == WL_REQUEST && !cfg->response_len && !cfg->expect_len)
        bad = "request mode needs --expect or --response-len";
    else if (cfg->threads < 1 || cfg->threads > 256)
        bad = "--threads must be 1..256";
    else if (cfg->duration <= 0 && !cfg->requests && cfg->hold <= 0)
        bad = "--duration must be positive";
    else if (cfg->warmup < 0)
        bad = "--warmup must not be negative";
    return bad;
}
