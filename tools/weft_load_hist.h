/* weft-load: a log-linear latency histogram (HdrHistogram's layout, not a
 * sample list). Values are nanoseconds; each power of two is split into 64
 * linear sub-buckets, so a recorded value is known to within 1/64 (1.6%).
 * Recording is one clz, one shift and one increment. */
#ifndef WEFT_LOAD_HIST_H
#define WEFT_LOAD_HIST_H

#include <stdint.h>

#define WL_HIST_SUB_BITS 6
#define WL_HIST_SUB (1u << WL_HIST_SUB_BITS)
/* Values below 2 * WL_HIST_SUB are exact; then 64 buckets per power of two
 * up to 2^63. */
#define WL_HIST_BUCKETS ((64 - WL_HIST_SUB_BITS) * WL_HIST_SUB + WL_HIST_SUB)

typedef struct wl_hist {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    uint64_t sum;
    uint64_t b[WL_HIST_BUCKETS];
} wl_hist;

static inline unsigned wl_hist_index(uint64_t v)
{
    if (v < 2 * WL_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - WL_HIST_SUB_BITS;
    return (shift + 1) * WL_HIST_SUB + (unsigned)(v >> shift) - WL_HIST_SUB;
}

/* Record n samples of value v. */
static inline void wl_hist_add(wl_hist *h, uint64_t v, uint64_t n)
{
    h->b[wl_hist_index(v)] += n;
    h->count += n;
    h->sum += v * n;
    if (v > h->max)
        h->max = v;
    if (h->min == 0 || v < h->min)
        h->min = v;
}

void wl_hist_reset(wl_hist *h);
/* dst += src. */
void wl_hist_merge(wl_hist *dst, const wl_hist *src);
/* The value at percentile p (0..100): the middle of its bucket; 0 when empty. */
uint64_t wl_hist_percentile(const wl_hist *h, double p);

#endif
