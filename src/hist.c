/* hist.c - log-linear histogram; the layout and error bound are in hist.h. */
#include "jobring/hist.h"

#include <math.h>
#include <string.h>

#define SUB_BITS HIST_SUB_BITS
#define SUB_COUNT (1u << SUB_BITS)

/* Bucket of v. Group 0 is the values 0..2^s-1. Group g >= 1 holds the octave
 * [2^(s+g-1), 2^(s+g)) in 2^s buckets of width 2^(g-1); index = g * 2^s +
 * the s bits below the leading one. Group 1 has width 1, so it continues
 * group 0 seamlessly and every value below 2^(s+1) is exact. */
static inline uint32_t bucket_of(uint64_t v)
{
	unsigned k, shift;

	if (v < SUB_COUNT)
		return (uint32_t)v;
	k = 63u - (unsigned)__builtin_clzll(v); /* k >= s */
	shift = k - SUB_BITS;
	return ((shift + 1) << SUB_BITS) + (uint32_t)((v >> shift) - SUB_COUNT);
}

/* The inverse: the first value of bucket i and the log2 of its width. */
static inline uint64_t bucket_lo(uint32_t i, unsigned *ret_shift)
{
	uint32_t g = i >> SUB_BITS, m = i & (SUB_COUNT - 1);

	if (g == 0) {
		*ret_shift = 0;
		return m;
	}
	*ret_shift = g - 1;
	return ((uint64_t)SUB_COUNT + m) << (g - 1);
}

void hist_init(struct hist *h)
{
	hist_reset(h);
}

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static inline void sum_add(struct hist *h, uint64_t lo, uint64_t hi)
{
	h->sum_lo += lo;
	h->sum_hi += hi + (h->sum_lo < lo);
}

void hist_record(struct hist *h, uint64_t v)
{
	h->buckets[bucket_of(v)]++;
	h->count++;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	sum_add(h, v, 0);
}

/* 64 x 64 -> 128-bit product, in halves to stay within ISO C. */
static void mul64(uint64_t a, uint64_t b, uint64_t *ret_lo, uint64_t *ret_hi)
{
	uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;

	*ret_lo = (mid << 32) | (uint32_t)p00;
	*ret_hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

void hist_record_n(struct hist *h, uint64_t v, uint64_t n)
{
	uint64_t lo, hi;

	if (n == 0)
		return;
	h->buckets[bucket_of(v)] += n;
	h->count += n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	mul64(v, n, &lo, &hi);
	sum_add(h, lo, hi);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	/* Read src's scalars first: dst may be src. */
	uint64_t count = src->count, min = src->min, max = src->max;
	uint64_t lo = src->sum_lo, hi = src->sum_hi;

	if (count == 0)
		return;
	for (uint32_t i = 0; i < HIST_NBUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += count;
	if (min < dst->min)
		dst->min = min;
	if (max > dst->max)
		dst->max = max;
	sum_add(dst, lo, hi);
}

uint64_t hist_count(const struct hist *h)
{
	return h->count;
}

uint64_t hist_min(const struct hist *h)
{
	return h->count ? h->min : 0;
}

uint64_t hist_max(const struct hist *h)
{
	return h->max;
}

double hist_mean(const struct hist *h)
{
	if (h->count == 0)
		return 0.0;
	return ((double)h->sum_hi * 18446744073709551616.0 + (double)h->sum_lo) /
	       (double)h->count;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0, v;
	double r;
	unsigned shift;
	uint32_t i;

	if (h->count == 0)
		return 0;
	if (!(q > 0))
		return h->min;
	r = ceil(q * (double)h->count);
	rank = r >= (double)h->count ? h->count : (uint64_t)r;
	if (rank <= 1)
		return h->min;
	if (rank == h->count)
		return h->max;
	for (i = 0; i < HIST_NBUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			break;
	}
	if (i == HIST_NBUCKETS) /* counts inconsistent (racy copy) */
		return h->max;
	v = bucket_lo(i, &shift);
	if (shift > 0)
		v += (uint64_t)1 << (shift - 1); /* midpoint */
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

void hist_iter_init(struct hist_iter *it, const struct hist *h)
{
	it->h = h;
	it->next = 0;
	it->cumulative = 0;
}

bool hist_iter_next(struct hist_iter *it, struct hist_bucket *ret)
{
	while (it->next < HIST_NBUCKETS) {
		uint32_t i = it->next++;
		uint64_t c = it->h->buckets[i];
		unsigned shift;

		if (c == 0)
			continue;
		it->cumulative += c;
		ret->lo = bucket_lo(i, &shift);
		ret->hi = ret->lo + (((uint64_t)1 << shift) - 1);
		ret->count = c;
		ret->cumulative = it->cumulative;
		return true;
	}
	return false;
}
