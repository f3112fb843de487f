/* The command line of weft's client tools (weft-load, weft-soak): the walk
 * over argv, -h/--help, the messages for a bad flag or value, and the
 * checks of the flags every tool has. A tool's own flags and checks are its
 * callbacks. */
#ifndef WEFT_TOOL_OPTS_H
#define WEFT_TOOL_OPTS_H

#include <stdio.h>

/* What a tool's flag callback answers besides 1 and 2 (see wt_cli.flag). */
enum {
    WT_UNKNOWN = 0,   /* not one of its flags */
    WT_NO_VALUE = -1, /* no argument follows: the flag needs one, or is unknown */
    WT_REFUSED = -2   /* refused, and the tool said why on stderr */
};

/* The flags every tool has, alike: where their values go. wt_parse reads
 * them itself: --host H (default 127.0.0.1), --port P (7000, 1..65535),
 * -c/--connections N (at least 1), --json. */
typedef struct {
    const char **host;
    int *port;
    int *conns;
    int *json;
} wt_common;

typedef struct {
    const char *tool;       /* the prefix of its messages: "weft-load" */
    void (*usage)(FILE *f); /* prints the tool's usage */
    int usage_on_error;     /* print it on stderr after a bad flag too */
    /* Its own flag a, with v the argument after it (NULL: none): writes the
     * value into cfg; returns 1 (a takes no value), 2 (a took v) or a code
     * above. */
    int (*flag)(void *cfg, const char *a, char *v);
    /* After the last flag: the first complaint about cfg's values, or NULL. */
    const char *(*check)(const void *cfg);
    wt_common common;
} wt_cli;

/* Set the common flags' defaults, walk argv[1..argc) (the common flags
 * here, the others through cli->flag into cfg), then check the common
 * values and call cli->check. Returns
 * 0; 1 after -h or --help (the usage printed on stdout); -1 after a flag
 * that is unknown, lacks its value or was refused, or a complaint from
 * check (the reason on stderr; the flags before it written). */
int wt_parse(const wt_cli *cli, void *cfg, int argc, char **argv);

#endif
