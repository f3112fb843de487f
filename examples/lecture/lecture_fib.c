/* The lecture's Fibonacci generator:
 *
 *     def fib():
 *         a, b = 0, 1
 *         while True:
 *             yield a
 *             a, b = b, a + b
 *
 * Prints the first 10 numbers, one per line, then closes the generator. */
#include "weft.h"

#include <stdio.h>

static void *fib(weft_gen *gen, void *arg)
{
    (void)arg;
    long a = 0, b = 1;
    /* The yielded pointer stays valid until the next resume. */
    while (weft_gen_yield(gen, &a, NULL) == 0) {
        long next = a + b;
        a = b;
        b = next;
    }
    return NULL; /* closed */
}

int main(void)
{
    weft_gen gen;
    int rc = weft_gen_init(&gen, NULL, fib, NULL);
    if (rc < 0) {
        fprintf(stderr, "weft_gen_init: %s\n", weft_strerror(rc));
        return 1;
    }
    for (int i = 0; i < 10; i++) {
        void *value;
        if (weft_gen_next(&gen, &value) != 0)
            break;
        printf("%ld\n", *(long *)value);
    }
    weft_gen_close(&gen);
    weft_gen_destroy(&gen);
    return 0;
}
