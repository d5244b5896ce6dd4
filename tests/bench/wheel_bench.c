/* wheel_bench - timing wheel cost with 1,000,000 timers due 1 s .. 1 day
 * ahead: memory (struct sizes, RSS delta), ns/op of arm, re-arm, cancel
 * and expire. Prints numbers, asserts nothing about time. Build it
 * optimised without sanitizers. Usage: wheel_bench [count] [seed] */
#include "jobring/util.h"
#include "jobring/wheel.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC_MS UINT64_C(1000)
#define DAY_MS UINT64_C(86400000)
#define BATCH 256

static struct wheel w;
static struct wheel_entry *out[BATCH];

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * 4; /* 4 KiB pages */
}

static double ns_per(int64_t t0, size_t n)
{
	return n ? (double)(mono_ns() - t0) / (double)n : 0.0;
}

/* Advance from now to end in steps of step ms, draining everything due. */
static size_t drain(uint64_t now, uint64_t end, uint64_t step, size_t *calls)
{
	size_t fired = 0, got;

	*calls = 0;
	for (;;) {
		now = now + step > end ? end : now + step;
		do {
			got = wheel_advance(&w, now, out, BATCH);
			fired += got;
			++*calls;
		} while (got == BATCH);
		if (now == end)
			return fired;
	}
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 42;
	const uint64_t start = 1000000000;
	const uint64_t end = start + DAY_MS + SEC_MS;
	uint64_t *due, *due2;
	uint32_t *perm;
	struct wheel_entry *e;
	size_t fired, calls;
	long rss0, rss1;
	int64_t t0;

	if (!n || !seed)
		return 2;
	/* Inputs first, so the RSS delta below is the entries alone. */
	due = xmalloc(n * sizeof(*due));
	due2 = xmalloc(n * sizeof(*due2));
	perm = xmalloc(n * sizeof(*perm));
	for (size_t i = 0; i < n; i++) {
		due[i] = start + SEC_MS + rand_next(&seed) % (DAY_MS - SEC_MS);
		due2[i] = start + SEC_MS + rand_next(&seed) % (DAY_MS - SEC_MS);
		perm[i] = (uint32_t)i;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rand_next(&seed) % (i + 1);
		uint32_t tmp = perm[i];

		perm[i] = perm[j];
		perm[j] = tmp;
	}

	rss0 = rss_kib();
	e = xcalloc(n, sizeof(*e));
	memset(e, 0, n * sizeof(*e)); /* fault the pages in outside the timing */
	wheel_init(&w, start);
	t0 = mono_ns();
	for (size_t i = 0; i < n; i++)
		wheel_arm(&w, &e[i], due[i]);
	printf("arm      %8.1f ns/op  (%zu timers, dues 1 s .. 1 day)\n",
	       ns_per(t0, n), n);
	rss1 = rss_kib();
	printf("memory   sizeof(struct wheel)=%zu B, sizeof(struct wheel_entry)=%zu B,"
	       " RSS delta %ld KiB (%.1f B/timer)\n",
	       sizeof(struct wheel), sizeof(struct wheel_entry), rss1 - rss0,
	       (double)(rss1 - rss0) * 1024.0 / (double)n);

	t0 = mono_ns();
	for (size_t i = 0; i < n; i++)
		wheel_arm(&w, &e[perm[i]], due2[perm[i]]);
	printf("re-arm   %8.1f ns/op  (armed entry moved, random order)\n",
	       ns_per(t0, n));

	t0 = mono_ns();
	for (size_t i = 0; i < n; i++)
		wheel_cancel(&w, &e[perm[i]]);
	printf("cancel   %8.1f ns/op  (random order)\n", ns_per(t0, n));
	if (wheel_count(&w) != 0)
		return 1;

	/* Expire: one jump over the whole day, drained in batches. */
	for (size_t i = 0; i < n; i++)
		wheel_arm(&w, &e[i], due[i]);
	t0 = mono_ns();
	fired = drain(start, end, end - start, &calls);
	printf("expire   %8.1f ns/op  (one jump of a day, %zu fired, %zu advance calls of <= %d)\n",
	       ns_per(t0, fired), fired, calls, BATCH);
	if (fired != n)
		return 1;

	/* Expire as a timer actor would see it: wake every 10 ms. */
	wheel_init(&w, start);
	for (size_t i = 0; i < n; i++)
		wheel_arm(&w, &e[i], due[i]);
	t0 = mono_ns();
	fired = drain(start, end, 10, &calls);
	printf("expire   %8.1f ns/op  (10 ms steps: %zu fired, %zu advance calls, %.1f ns/call)\n",
	       ns_per(t0, fired), fired, calls,
	       (double)(mono_ns() - t0) / (double)calls);
	if (fired != n)
		return 1;

	free(e);
	free(perm);
	free(due2);
	free(due);
	return 0;
}
