/* weft-load: histogram merge and percentiles (see weft_load_hist.h). */
#include "weft_load_hist.h"

#include <string.h>

void wl_hist_reset(wl_hist *h)
{
    memset(h, 0, sizeof *h);
}

void wl_hist_merge(wl_hist *dst, const wl_hist *src)
{
    for (unsigned i = 0; i < WL_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
    if (src->min && (dst->min == 0 || src->min < dst->min))
        dst->min = src->min;
}

/* The lowest value of bucket i and its width. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
    if (i < 2 * WL_HIST_SUB) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned shift = i / WL_HIST_SUB - 1;
    uint64_t sub = i % WL_HIST_SUB + WL_HIST_SUB;
    *lo = sub << shift;
    *width = (uint64_t)1 << shift;
}

uint64_t wl_hist_percentile(const wl_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t want = (uint64_t)((double)h->count * p / 100.0 + 0.5);
    if (want < 1)
        want = 1;
    if (want > h->count)
        want = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < WL_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t lo, w;
            bucket_range(i, &lo, &w);
            uint64_t v = lo + w / 2;
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
