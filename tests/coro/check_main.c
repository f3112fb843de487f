/* The standalone runner behind check.h (no Criterion): see there. */
#define WEFT_CHECK_STANDALONE 1
#include "check.h"

#include <stdarg.h>
#include <string.h>

static struct check_test *first, *last;
static const struct check_test *running;
static int skipped;

void check_register(struct check_test *t)
{
    if (last)
        last->next = t;
    else
        first = t;
    last = t;
}

void check_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s:%d: %s/%s: ", file, line, running ? running->suite : "?",
            running ? running->name : "?");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nFAILED\n");
    exit(1);
}

void check_skip(const char *reason)
{
    printf("  skipped: %s\n", reason);
    skipped = 1;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int ran = 0, skips = 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    for (const struct check_test *t = first; t; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (filter && !strstr(full, filter))
            continue;
        printf("[ RUN  ] %s\n", full);
        running = t;
        skipped = 0;
        t->fn();
        running = NULL;
        if (skipped)
            skips++;
        else
            printf("[  OK  ] %s\n", full);
        ran++;
    }
    printf("%d tests, %d passed, %d skipped\n", ran, ran - skips, skips);
    return ran > 0 ? 0 : 1;
}
