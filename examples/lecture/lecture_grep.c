/* The lecture's grep coroutine: it consumes the lines sent to it.
 *
 *     def grep(pattern):
 *         print("Searching for", pattern)
 *         while True:
 *             line = (yield)
 *             if pattern in line:
 *                 print(line)
 *
 *     search = grep('coroutine')
 *     next(search)              # Searching for coroutine
 *     search.send("I love you")
 *     search.send("Don't you love me?")
 *     search.send("I love coroutines instead!")   # I love coroutines instead!
 *     search.close()
 */
#include "weft.h"

#include <stdio.h>
#include <string.h>

static void *grep(weft_gen *gen, void *arg)
{
    const char *pattern = arg;
    printf("Searching for %s\n", pattern);
    for (;;) {
        void *line;
        if (weft_gen_yield(gen, NULL, &line) == WEFT_ECLOSED)
            return NULL; /* search.close() */
        if (line && strstr(line, pattern))
            printf("%s\n", (const char *)line);
    }
}

int main(void)
{
    weft_gen search;
    int rc = weft_gen_init(&search, NULL, grep, "coroutine");
    if (rc < 0) {
        fprintf(stderr, "weft_gen_init: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_gen_next(&search, NULL); /* needed to start the coroutine */
    weft_gen_send(&search, "I love you", NULL);
    weft_gen_send(&search, "Don't you love me?", NULL);
    weft_gen_send(&search, "I love coroutines instead!", NULL);
    weft_gen_close(&search);
    weft_gen_destroy(&search);
    return 0;
}
