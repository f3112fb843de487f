/* The fuzz targets' input buffer: always allocated to exactly the bytes it
 * holds, so AddressSanitizer catches a parser reading one byte too far. */
#ifndef WEFT_FUZZ_TIGHT_BUF_H
#define WEFT_FUZZ_TIGHT_BUF_H

#include <stdlib.h>
#include <string.h>

/* Replace *buf by an exact copy of a (na bytes) followed by b (nb bytes). */
static inline void tight_set(char **buf, const void *a, size_t na, const void *b, size_t nb)
{
    char *n = malloc(na + nb ? na + nb : 1);
    if (!n)
        abort();
    if (na)
        memcpy(n, a, na);
    if (nb)
        memcpy(n + na, b, nb);
    free(*buf);
    *buf = n;
}

/* Append n bytes to the *have bytes in *buf. */
static inline void tight_append(char **buf, size_t *have, const void *data, size_t n)
{
    tight_set(buf, *buf, *have, data, n);
    *have += n;
}

/* Drop the first off bytes. */
static inline void tight_consume(char **buf, size_t *have, size_t off)
{
    tight_set(buf, *buf + off, *have - off, NULL, 0);
    *have -= off;
}

#endif
