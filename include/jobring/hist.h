/* hist.h - a log-linear latency histogram (HdrHistogram-style) with fixed
 * memory, for `jobring bench` and the /metrics latency histograms.
 *
 * Layout. Values are uint64 in any unit (we use nanoseconds); the whole range
 * 0..UINT64_MAX is covered. Values below 2^(s+1) get one bucket each (exact).
 * Above that, each power-of-two range [2^k, 2^(k+1)) is cut into 2^s linear
 * sub-buckets of width 2^(k-s). With s = HIST_SUB_BITS = 6 that is 64
 * sub-buckets per octave and HIST_NBUCKETS = 59 * 64 = 3776 counters
 * (about 30 KB per histogram).
 *
 * Error bound. A bucket [lo, lo + w) with w > 1 has lo >= 2^s * w, and a
 * quantile is reported as its midpoint lo + w/2 (clamped to [min, max]), so
 * for the exact order statistic v in that bucket |reported - v| <= w/2 <=
 * v / 2^(s+1): the relative error is at most HIST_REL_ERR = 1/128 (0.78%).
 * Values below 128 are exact; min, max, count and mean are exact.
 *
 * Memory and threads. struct hist is plain data (no pointers, no allocation
 * after init): it can be embedded, copied with memcpy or put in shared
 * memory. It is not thread-safe: keep one per writer and hist_merge() them.
 * Counts wrap at 2^64, which a real run never reaches. */
#ifndef JOBRING_HIST_H
#define JOBRING_HIST_H

#include <stdbool.h>
#include <stdint.h>

/** log2 of the number of linear sub-buckets per power of two. */
#define HIST_SUB_BITS 6
/** Number of counters: one group of 2^s exact values, then 2^s per octave. */
#define HIST_NBUCKETS ((65 - HIST_SUB_BITS) << HIST_SUB_BITS)
/** Bound on the relative error of hist_quantile(): 2^-(HIST_SUB_BITS + 1). */
#define HIST_REL_ERR (1.0 / (2 << HIST_SUB_BITS))

struct hist {
	uint64_t count;
	uint64_t min;    /* UINT64_MAX while empty */
	uint64_t max;
	uint64_t sum_lo; /* exact 128-bit sum of all values, low word */
	uint64_t sum_hi;
	uint64_t buckets[HIST_NBUCKETS];
};

/** One non-empty bucket: it holds the values lo..hi (both inclusive). */
struct hist_bucket {
	uint64_t lo;
	uint64_t hi;
	uint64_t count;
	uint64_t cumulative; /* values <= hi: the Prometheus le="hi" count */
};

/** Iterator over non-empty buckets in increasing order. It borrows the
 *  histogram, which must not change while iterating. */
struct hist_iter {
	const struct hist *h;
	uint32_t next;
	uint64_t cumulative;
};

/** Empty histogram (same as hist_reset). */
void hist_init(struct hist *h);
/** Forget every value. */
void hist_reset(struct hist *h);
/** Record one value. O(1), no allocation. */
void hist_record(struct hist *h, uint64_t v);
/** Record v n times (n = 0 does nothing). */
void hist_record_n(struct hist *h, uint64_t v, uint64_t n);
/** Add src's values into dst: the same result as recording both streams
 *  into one histogram. dst == src doubles every count. */
void hist_merge(struct hist *dst, const struct hist *src);

uint64_t hist_count(const struct hist *h);
/** Exact smallest and largest recorded value; 0 when empty. */
uint64_t hist_min(const struct hist *h);
uint64_t hist_max(const struct hist *h);
/** Exact arithmetic mean (from a 128-bit sum, rounded to double); 0 when
 *  empty. */
double hist_mean(const struct hist *h);
/** The q-quantile by the nearest-rank rule: the rank-th smallest value with
 *  rank = ceil(q * count) clamped to [1, count], within HIST_REL_ERR of it.
 *  q <= 0 (or NaN) gives the exact min, and any q whose rank is count (so
 *  q >= 1) gives the exact max. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/** Start iterating over h's non-empty buckets. */
void hist_iter_init(struct hist_iter *it, const struct hist *h);
/** Store the next non-empty bucket in *ret and return true, or return false
 *  at the end. */
bool hist_iter_next(struct hist_iter *it, struct hist_bucket *ret);

#endif
