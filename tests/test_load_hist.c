/* weft-load's latency histogram (tools/weft_load_hist.h): every value is
 * known to within 1/64, percentiles come from bucket counts, merging adds. */
#include "../tools/weft_load_hist.h"

#include "harness.h"

#include <stdlib.h>

TestSuite(load_hist);

/* |got - want| within the bucket precision (1/64, and 1 for small values). */
static void assert_close(uint64_t got, uint64_t want)
{
    uint64_t tol = want / 64 + 1;
    uint64_t d = got > want ? got - want : want - got;
    cr_assert_leq(d, tol, "got %llu, want %llu", (unsigned long long)got, (unsigned long long)want);
}

Test(load_hist, exact_below_128_then_within_one_64th)
{
    for (uint64_t v = 0; v < 128; v++)
        cr_assert_eq(wl_hist_index(v), v);
    wl_hist *h = calloc(1, sizeof *h);
    uint64_t vals[] = {1, 127, 128, 1000, 65535, 1000000, 123456789, (uint64_t)1 << 62};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        wl_hist_reset(h);
        wl_hist_add(h, vals[i], 1);
        assert_close(wl_hist_percentile(h, 50), vals[i]);
        cr_assert_lt(wl_hist_index(vals[i]), WL_HIST_BUCKETS);
    }
    free(h);
}

Test(load_hist, percentiles_of_a_uniform_spread)
{
    wl_hist *h = calloc(1, sizeof *h);
    wl_hist_reset(h);
    for (uint64_t v = 1; v <= 100000; v++)
        wl_hist_add(h, v * 10, 1); /* 10 ns .. 1 ms */
    cr_assert_eq(h->count, 100000);
    assert_close(wl_hist_percentile(h, 50), 500000);
    assert_close(wl_hist_percentile(h, 99), 990000);
    assert_close(wl_hist_percentile(h, 99.9), 999000);
    cr_assert_eq(wl_hist_percentile(h, 100), h->max);
    cr_assert_eq(h->max, 1000000);
    free(h);
}

Test(load_hist, merge_adds_counts_and_keeps_extremes)
{
    wl_hist *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    wl_hist_reset(a);
    wl_hist_reset(b);
    wl_hist_add(a, 100, 99);
    wl_hist_add(b, 50000, 1);
    wl_hist_merge(a, b);
    cr_assert_eq(a->count, 100);
    cr_assert_eq(a->max, 50000);
    cr_assert_eq(a->min, 100);
    assert_close(wl_hist_percentile(a, 50), 100);
    assert_close(wl_hist_percentile(a, 99.9), 50000);
    /* an empty histogram has no percentile */
    wl_hist_reset(b);
    cr_assert_eq(wl_hist_percentile(b, 99), 0);
    free(a);
    free(b);
}
