/* weft-load's and weft-soak's command line: the part both share. */
#include "weft_tool_opts.h"

#include <stdlib.h>
#include <string.h>

/* One of the flags every tool has: as cli->flag answers. */
static int common_flag(const wt_common *c, const char *a, char *v)
{
    if (strcmp(a, "--json") == 0) {
        *c->json = 1;
        return 1;
    }
    if (!v)
        return WT_UNKNOWN;
    if (strcmp(a, "--host") == 0)
        *c->host = v;
    else if (strcmp(a, "--port") == 0)
        *c->port = atoi(v);
    else if (strcmp(a, "-c") == 0 || strcmp(a, "--connections") == 0)
        *c->conns = atoi(v);
    else
        return WT_UNKNOWN;
    return 2;
}

static const char *common_check(const wt_common *c)
{
    if (*c->port <= 0 || *c->port > 65535)
        return "--port must be 1..65535";
    if (*c->conns < 1)
        return "--connections must be at least 1";
    return NULL;
}

int wt_parse(const wt_cli *cli, void *cfg, int argc, char **argv)
{
    *cli->common.host = "127.0.0.1";
    *cli->common.port = 7000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli->usage(stdout);
            return 1;
        }
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int took = common_flag(&cli->common, a, v);
        if (took == WT_UNKNOWN)
            took = cli->flag(cfg, a, v);
        if (took == 1 || took == 2) {
            i += took - 1;
            continue;
        }
        if (took == WT_NO_VALUE)
            fprintf(stderr, "%s: %s needs a value (or is unknown)\n", cli->tool, a);
        else if (took != WT_REFUSED)
            fprintf(stderr, "%s: unknown flag %s\n", cli->tool, a);
        if (took != WT_REFUSED && cli->usage_on_error)
            cli->usage(stderr);
        return -1;
    }
    const char *bad = common_check(&cli->common);
    if (!bad)
        bad = cli->check(cfg);
    if (bad) {
        fprintf(stderr, "%s: %s\n", cli->tool, bad);
        return -1;
    }
    return 0;
}
