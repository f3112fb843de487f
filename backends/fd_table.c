/* The per-fd table: see fd_table.h. */
#include "fd_table.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int weft__fd_table_extend(weft__fd_table *t, int fd)
{
    if (fcntl(fd, F_GETFD) < 0)
        return -errno;
    size_t n = t->nslots ? (size_t)t->nslots : 64;
    while (n <= (size_t)fd)
        n *= 2;
    if (n > INT_MAX)
        n = (size_t)fd + 1; /* a real fd is below RLIMIT_NOFILE: no overflow */
    weft__fdslot *v = realloc(t->slots, n * sizeof *v);
    if (!v)
        return -ENOMEM;
    memset(v + t->nslots, 0, (n - (size_t)t->nslots) * sizeof *v);
    t->slots = v;
    t->nslots = (int)n;
    return 0;
}

void weft__fd_table_free(weft__fd_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->nslots = 0;
}
