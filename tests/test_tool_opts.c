/* The command line weft-load and weft-soak share (tools/weft_tool_opts.h):
 * the common flags land in their fields with their defaults, the tool's
 * own go through its callback, and a bad command line (unknown flag, a
 * missing value, a refused flag, a bad value) is refused with -1; --help
 * answers 1. */
#include "../tools/weft_tool_opts.h"

#include "harness.h"

#include <stdlib.h>
#include <string.h>

TestSuite(tool_opts);

typedef struct {
    const char *host;
    int port, conns, json;
    int fast;   /* --fast: a switch of the tool's own */
    long depth; /* --depth N */
    int nflags; /* calls of the flag callback */
} tool;

static void usage(FILE *f)
{
    fputs("usage: test [flags]\n", f);
}

static int flag(void *c, const char *a, char *v)
{
    tool *t = c;
    t->nflags++;
    if (strcmp(a, "--fast") == 0) {
        t->fast = 1;
        return 1;
    }
    if (strcmp(a, "--gone") == 0) {
        fprintf(stderr, "test: --gone: not in this build\n");
        return WT_REFUSED;
    }
    if (!v)
        return WT_NO_VALUE;
    if (strcmp(a, "--depth") != 0)
        return WT_UNKNOWN;
    t->depth = atol(v);
    return 2;
}

static const char *check(const void *c)
{
    const tool *t = c;
    return t->depth < 0 ? "--depth must not be negative" : NULL;
}

/* Parse the NULL-ended words (after a program name) into a fresh *t. */
static int parse(tool *t, char **words)
{
    *t = (tool){.conns = 3};
    const wt_cli cli = {"test", usage, 1, flag, check, {&t->host, &t->port, &t->conns, &t->json}};
    char *argv[32] = {"test"};
    int argc = 1;
    while (words[argc - 1]) {
        argv[argc] = words[argc - 1];
        argc++;
    }
    return wt_parse(&cli, t, argc, argv);
}

Test(tool_opts, common_flags_and_their_defaults)
{
    tool t;
    char *none[] = {NULL};
    cr_assert_eq(parse(&t, none), 0);
    cr_assert_str_eq(t.host, "127.0.0.1");
    cr_assert_eq(t.port, 7000);
    cr_assert_eq(t.conns, 3); /* the tool's own default */
    cr_assert_eq(t.json + t.nflags, 0);
    char *w[] = {"--json", "--host", "::1", "--port", "9", "-c", "12", NULL};
    cr_assert_eq(parse(&t, w), 0);
    cr_assert_str_eq(t.host, "::1");
    cr_assert_eq(t.port * 100 + t.conns, 912);
    cr_assert_eq(t.json, 1);
    cr_assert_eq(t.nflags, 0); /* none reached the tool */
    char *l[] = {"--connections", "40", NULL};
    cr_assert_eq(parse(&t, l), 0);
    cr_assert_eq(t.conns, 40);
}

Test(tool_opts, the_tools_own_flags_go_through_its_callback)
{
    tool t;
    char *w[] = {"--depth", "8", "--fast", "--port", "1", NULL};
    cr_assert_eq(parse(&t, w), 0);
    cr_assert_eq(t.depth, 8);
    cr_assert_eq(t.fast, 1);
    cr_assert_eq(t.nflags, 2);
}

Test(tool_opts, help_answers_one_where_it_stands)
{
    tool t;
    char *w[] = {"--depth", "5", "--help", "--nope", NULL};
    cr_assert_eq(parse(&t, w), 1);
    cr_assert_eq(t.depth, 5);
    char *h[] = {"-h", NULL};
    cr_assert_eq(parse(&t, h), 1);
}

Test(tool_opts, bad_flags_are_refused)
{
    tool t;
    char *unknown[] = {"--depth", "2", "--nope", "1", NULL};
    cr_assert_eq(parse(&t, unknown), -1);
    cr_assert_eq(t.depth, 2); /* what came before is written */
    char *no_value[] = {"--depth", NULL};
    cr_assert_eq(parse(&t, no_value), -1);
    char *common_no_value[] = {"--port", NULL};
    cr_assert_eq(parse(&t, common_no_value), -1);
    cr_assert_eq(t.nflags, 1); /* the tool answered for it: no value */
    char *refused[] = {"--gone", "--depth", "3", NULL};
    cr_assert_eq(parse(&t, refused), -1);
    cr_assert_eq(t.depth, 0);
}

Test(tool_opts, bad_values_are_refused)
{
    tool t;
    char *port0[] = {"--port", "0", NULL};
    cr_assert_eq(parse(&t, port0), -1);
    char *port_big[] = {"--port", "65536", NULL};
    cr_assert_eq(parse(&t, port_big), -1);
    char *port_max[] = {"--port", "65535", NULL};
    cr_assert_eq(parse(&t, port_max), 0);
    char *conns0[] = {"-c", "0", NULL};
    cr_assert_eq(parse(&t, conns0), -1);
    char *depth[] = {"--depth", "-1", NULL};
    cr_assert_eq(parse(&t, depth), -1);
    /* the tool's check runs after the common ones, on the final values */
    char *fixed[] = {"--depth", "-1", "--depth", "1", NULL};
    cr_assert_eq(parse(&t, fixed), 0);
}
