/* Unit test for hist.c: bucket layout, quantiles against a sorted oracle on
 * several distributions, exact min/max/mean, merge and record_n. */
#include "jobring/hist.h"
#include "jobring/util.h"
#include "test.h"

#include <math.h>

#define NMAX 200000

static uint64_t vals[NMAX], sorted[NMAX];
static struct hist h, a, c;

static int cmp_u64(const void *x, const void *y)
{
	uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;
	return p < q ? -1 : p > q;
}

static double unit_rand(uint64_t *rs)
{
	return ((double)(rand_next(rs) >> 11) + 1.0) / 9007199254740992.0; /* (0,1] */
}

/* Compare every quantile of h (holding vals[0..n)) with the exact order
 * statistic, and min/max/mean with their exact values. */
static void check_against_oracle(const char *name, size_t n)
{
	static const double qs[] = { 0, 1e-9, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75,
				     0.9, 0.95, 0.99, 0.999, 0.9999, 0.99999, 1 };
	long double sum = 0;
	double worst = 0;

	memcpy(sorted, vals, n * sizeof(*vals));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (long double)sorted[i];

	CHECK_EQ(hist_count(&h), n);
	CHECK(hist_min(&h) == sorted[0]);
	CHECK(hist_max(&h) == sorted[n - 1]);
	CHECK(fabs(hist_mean(&h) - (double)(sum / n)) <= 1e-12 * (double)(sum / n));
	CHECK(hist_quantile(&h, 0) == sorted[0]);
	CHECK(hist_quantile(&h, 1) == sorted[n - 1]);
	CHECK(hist_quantile(&h, 2) == sorted[n - 1]);
	CHECK(hist_quantile(&h, -1) == sorted[0]);
	CHECK(hist_quantile(&h, NAN) == sorted[0]);

	for (size_t i = 0; i < ARRAY_SIZE(qs); i++) {
		double r = ceil(qs[i] * (double)n);
		size_t rank = r < 1 ? 1 : r > (double)n ? n : (size_t)r;
		uint64_t want = sorted[rank - 1], got = hist_quantile(&h, qs[i]);
		uint64_t diff = got > want ? got - want : want - got;

		/* |got - want| <= want * 2^-(s+1), in integers: diff is whole,
		 * so diff * 2^(s+1) <= want iff diff <= want >> (s+1). */
		if (diff > want >> (HIST_SUB_BITS + 1)) {
			fprintf(stderr, "%s q=%g rank=%zu: got %" PRIu64 " want %" PRIu64 "\n",
				name, qs[i], rank, got, want);
			CHECK(0);
		}
		if (want && (double)diff / (double)want > worst)
			worst = (double)diff / (double)want;
		/* Ranks 1 and n are exact. */
		if (rank == 1 || rank == n)
			CHECK(got == want);
	}
	if (*name)
		printf("%-12s n=%-7zu worst relative error %.5f%% (bound %.5f%%)\n", name, n,
	       worst * 100, HIST_REL_ERR * 100);
}

static void record_all(size_t n)
{
	hist_reset(&h);
	for (size_t i = 0; i < n; i++)
		hist_record(&h, vals[i]);
}

static void test_distributions(void)
{
	uint64_t rs = 12345;
	size_t n;

	n = NMAX;
	for (size_t i = 0; i < n; i++)
		vals[i] = rand_next(&rs) % 1000000000;
	record_all(n);
	check_against_oracle("uniform", n);

	for (size_t i = 0; i < n; i++)
		vals[i] = (uint64_t)(-log(unit_rand(&rs)) * 1e6);
	record_all(n);
	check_against_oracle("exponential", n);

	for (size_t i = 0; i < n; i++)
		vals[i] = rand_next(&rs) & 1 ? 100000 + rand_next(&rs) % 5000
					     : 500000000 + rand_next(&rs) % 50000000;
	record_all(n);
	check_against_oracle("bimodal", n);

	for (size_t i = 0; i < 1000; i++)
		vals[i] = 12345;
	record_all(1000);
	check_against_oracle("constant", 1000);
	CHECK(hist_quantile(&h, 0.5) == 12345);

	/* Small values are exact. */
	for (size_t i = 0; i < 10000; i++)
		vals[i] = rand_next(&rs) % 200;
	record_all(10000);
	check_against_oracle("small", 10000);

	/* Tiny counts, with random values of every magnitude. */
	for (n = 1; n <= 5; n++) {
		for (int rep = 0; rep < 200; rep++) {
			for (size_t i = 0; i < n; i++)
				vals[i] = rand_next(&rs) >> (rand_next(&rs) % 64);
			record_all(n);
			check_against_oracle(rep || n < 5 ? "" : "tiny(n<=5)", n);
		}
	}

	/* Huge values, up to UINT64_MAX. */
	n = 50000;
	for (size_t i = 0; i < n; i++)
		vals[i] = (1ull << 62) + rand_next(&rs) % (3ull << 62);
	vals[0] = UINT64_MAX;
	vals[1] = 1ull << 63;
	vals[2] = (1ull << 63) - 1;
	record_all(n);
	check_against_oracle("huge", n);

	/* Log-uniform over the whole range: every octave is used. */
	n = NMAX;
	for (size_t i = 0; i < n; i++)
		vals[i] = rand_next(&rs) >> (rand_next(&rs) % 64);
	record_all(n);
	check_against_oracle("log-uniform", n);

	/* Empty. */
	hist_reset(&h);
	CHECK_EQ(hist_count(&h), 0);
	CHECK_EQ(hist_min(&h), 0);
	CHECK_EQ(hist_max(&h), 0);
	CHECK_EQ(hist_quantile(&h, 0.5), 0);
	CHECK(hist_mean(&h) == 0);
}

/* Walk every bucket from 0 up: each holds exactly the values lo..hi, they
 * tile 0..UINT64_MAX without gaps, and widths respect the error bound. */
static void test_layout(void)
{
	uint64_t v = 0, rs = 99;
	size_t nb = 0;

	for (;;) {
		struct hist_iter it;
		struct hist_bucket bk;
		uint64_t w, mid;

		hist_reset(&h);
		hist_record(&h, v);
		hist_iter_init(&it, &h);
		CHECK(hist_iter_next(&it, &bk));
		CHECK(bk.lo == v);
		CHECK(bk.count == 1 && bk.cumulative == 1);
		CHECK(!hist_iter_next(&it, &bk));
		w = bk.hi - bk.lo + 1;
		if (v < (2u << HIST_SUB_BITS))
			CHECK(w == 1);
		else
			CHECK(w <= bk.lo >> HIST_SUB_BITS);
		/* The last value and a random one land in the same bucket. */
		mid = bk.lo + rand_next(&rs) % w;
		hist_record(&h, bk.hi);
		hist_record(&h, mid);
		hist_iter_init(&it, &h);
		CHECK(hist_iter_next(&it, &bk));
		CHECK(bk.count == 3 && bk.lo == v);
		CHECK(!hist_iter_next(&it, &bk));
		nb++;
		if (bk.hi == UINT64_MAX)
			break;
		v = bk.hi + 1;
	}
	CHECK_EQ(nb, HIST_NBUCKETS);
}

/* Iterating a full histogram: increasing disjoint buckets whose counts add
 * up, cumulative counts as Prometheus wants them. */
static void test_iter(void)
{
	struct hist_iter it;
	struct hist_bucket bk;
	uint64_t rs = 7, total = 0, prev_hi = 0;
	bool first = true;
	size_t n = 100000;

	for (size_t i = 0; i < n; i++)
		vals[i] = rand_next(&rs) >> (rand_next(&rs) % 64);
	record_all(n);
	memcpy(sorted, vals, n * sizeof(*vals));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	hist_iter_init(&it, &h);
	while (hist_iter_next(&it, &bk)) {
		size_t le;

		CHECK(bk.count > 0 && bk.lo <= bk.hi);
		CHECK(first || bk.lo > prev_hi);
		total += bk.count;
		CHECK(bk.cumulative == total);
		/* Exactly `cumulative` values are <= hi. */
		le = 0;
		for (size_t lo = 0, hi = n; lo < hi;) {
			size_t m = lo + (hi - lo) / 2;
			if (sorted[m] <= bk.hi)
				lo = le = m + 1;
			else
				hi = m;
		}
		CHECK_EQ(le, bk.cumulative);
		prev_hi = bk.hi;
		first = false;
	}
	CHECK_EQ(total, n);
}

static void test_merge(void)
{
	uint64_t rs = 4242;
	size_t n = 100000;

	hist_reset(&h);
	hist_reset(&a);
	hist_reset(&c);
	for (size_t i = 0; i < n; i++) {
		uint64_t v = rand_next(&rs) >> (rand_next(&rs) % 64);

		hist_record(&c, v);
		hist_record(rand_next(&rs) % 3 ? &h : &a, v);
	}
	hist_merge(&h, &a);
	CHECK(memcmp(&h, &c, sizeof(h)) == 0);

	/* Merging an empty histogram changes nothing, into one copies. */
	hist_reset(&a);
	hist_merge(&h, &a);
	CHECK(memcmp(&h, &c, sizeof(h)) == 0);
	hist_merge(&a, &c);
	CHECK(memcmp(&a, &c, sizeof(a)) == 0);

	/* Self-merge doubles every count and keeps min and max. */
	hist_merge(&a, &a);
	CHECK_EQ(hist_count(&a), 2 * n);
	CHECK(hist_min(&a) == hist_min(&c) && hist_max(&a) == hist_max(&c));
	CHECK(fabs(hist_mean(&a) - hist_mean(&c)) <= 1e-9 * hist_mean(&c));
	CHECK(hist_quantile(&a, 0.5) == hist_quantile(&c, 0.5));

	/* record_n is n records, including a sum that overflows 64 bits. */
	hist_reset(&a);
	hist_reset(&c);
	for (uint64_t i = 0; i < 7; i++)
		hist_record(&a, UINT64_MAX - 3);
	hist_record_n(&c, UINT64_MAX - 3, 7);
	hist_record_n(&c, 5, 0);
	CHECK(memcmp(&a, &c, sizeof(a)) == 0);
	CHECK(hist_mean(&c) == (double)(UINT64_MAX - 3));
	hist_record_n(&c, 1, 3);
	CHECK_EQ(hist_count(&c), 10);
	CHECK_EQ(hist_min(&c), 1);
	CHECK(fabs(hist_mean(&c) - (7.0 * (double)(UINT64_MAX - 3) + 3) / 10) <= 1e-12 * hist_mean(&c));
}

int main(void)
{
	test_layout();
	test_iter();
	test_distributions();
	test_merge();
	return T_PASS;
}
