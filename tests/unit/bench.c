/* Unit test for bench_out.c, the harness's own logic: summaries against a
 * sorted oracle, the JSON shape (parsed back with cJSON), the table, the
 * SVG (one <path> per measured hop, well-formed-ish) and the soak verdict. */
#include "jobring/bench.h"
#include "jobring/util.h"
#include "test.h"

#include <cJSON.h>
#include <math.h>

#define N 100000

static uint64_t vals[N], sorted[N];

static int cmp_u64(const void *x, const void *y)
{
	uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;
	return p < q ? -1 : p > q;
}

/* Nearest rank: the ceil(q * n)-th smallest, clamped to [1, n]. */
static uint64_t oracle(size_t n, double q)
{
	double rank = ceil(q * (double)n);
	size_t r = rank < 1 ? 1 : rank > (double)n ? n : (size_t)rank;
	return sorted[r - 1];
}

static void near(uint64_t got, uint64_t want)
{
	double err = fabs((double)got - (double)want);
	if (err > (double)want * HIST_REL_ERR + 0.5) {
		fprintf(stderr, "quantile %llu, oracle %llu\n", (unsigned long long)got,
			(unsigned long long)want);
		CHECK(0);
	}
}

static void test_summary(struct hist *h)
{
	struct bench_summary s;
	uint64_t rs = 42;
	long double sum = 0;

	/* empty */
	hist_init(h);
	bench_summarize(h, &s);
	CHECK_EQ(s.count, 0);
	CHECK_EQ(s.p50, 0);
	CHECK_EQ(s.max, 0);
	CHECK(s.mean == 0);

	/* a latency-like mix: mostly ~1 ms, a tail of ~50 ms, a few seconds */
	for (size_t i = 0; i < N; i++) {
		uint64_t r = rand_next(&rs);
		uint64_t v = 800000 + r % 400000;
		if (i % 97 == 0)
			v = 40000000 + r % 20000000;
		if (i % 9973 == 0)
			v = 2000000000ull + r % 1000000;
		vals[i] = v;
		hist_record(h, v);
		sum += v;
	}
	memcpy(sorted, vals, sizeof(vals));
	qsort(sorted, N, sizeof(*sorted), cmp_u64);
	bench_summarize(h, &s);
	CHECK_EQ(s.count, N);
	CHECK(s.min == sorted[0]);
	CHECK(s.max == sorted[N - 1]);
	near(s.p50, oracle(N, 0.5));
	near(s.p99, oracle(N, 0.99));
	near(s.p999, oracle(N, 0.999));
	CHECK(fabs(s.mean - (double)(sum / N)) < 1.0);
	CHECK(s.min <= s.p50 && s.p50 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);

	/* a single value: every quantile is it */
	hist_init(h);
	hist_record(h, 123456789);
	bench_summarize(h, &s);
	CHECK(s.p50 == 123456789 && s.p999 == 123456789 && s.min == s.max);
}

static void fill(struct bench_result *r, int webhooks)
{
	uint64_t rs = 7;

	memset(r, 0, sizeof(*r));
	r->mode = "lifecycle";
	r->jobs = 1000;
	r->conns = 8;
	r->orgs = 3;
	r->sync = "full";
	r->acked = 1000;
	r->completed = 990;
	r->failed = 10;
	r->webhooks_on = webhooks;
	r->webhooks = webhooks ? 1000 : 0;
	r->elapsed_ns = 2000000000;	/* 2 s */
	r->submit_ns = 1000000000;
	hist_init(&r->total);
	for (int i = 0; i < BENCH_NHOPS; i++) {
		hist_init(&r->hop[i]);
		r->hop_on[i] = i != BENCH_WEBHOOK || webhooks;
		if (!r->hop_on[i])
			continue;
		for (int k = 0; k < 1000; k++) {
			uint64_t v = 100000 * (uint64_t)(i + 1) + rand_next(&rs) % 3000000;
			hist_record(&r->hop[i], v);
			hist_record(&r->total, v * 4);
		}
	}
}

static void test_json(struct bench_result *r)
{
	struct buf b;
	cJSON *j, *hops, *h;
	int n = 0;

	fill(r, 0);
	bench_note(r, "a note with \"quotes\"");
	buf_init(&b);
	CHECK(bench_json(r, &b) == 0);
	CHECK((j = cJSON_Parse(buf_cstr(&b))) != NULL);
	CHECK_STR(cJSON_GetObjectItem(j, "mode")->valuestring, "lifecycle");
	CHECK_EQ(cJSON_GetObjectItem(j, "jobs")->valuedouble, 1000);
	CHECK_EQ(cJSON_GetObjectItem(j, "connections")->valuedouble, 8);
	CHECK_EQ(cJSON_GetObjectItem(j, "orgs")->valuedouble, 3);
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "rate")));
	CHECK_STR(cJSON_GetObjectItem(j, "sync")->valuestring, "full");
	CHECK_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "submitted"), "acked")->valuedouble, 1000);
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "submitted"), "rejected"));
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "submitted"), "errors"));
	CHECK_EQ(cJSON_GetObjectItem(j, "completed")->valuedouble, 990);
	CHECK_EQ(cJSON_GetObjectItem(j, "failed")->valuedouble, 10);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "webhooks"), "enabled")));
	/* 1000 terminal jobs in 2 s, 1000 acked in 1 s */
	CHECK(fabs(cJSON_GetObjectItem(j, "jobsPerSecond")->valuedouble - 500) < 0.1);
	CHECK(fabs(cJSON_GetObjectItem(j, "submitPerSecond")->valuedouble - 1000) < 0.1);
	CHECK(fabs(cJSON_GetObjectItem(j, "elapsedSeconds")->valuedouble - 2) < 1e-9);
	hops = cJSON_GetObjectItem(j, "hops");
	CHECK(cJSON_IsArray(hops));
	cJSON_ArrayForEach(h, hops) {
		struct bench_summary s;
		static const char *const keys[] = { "name", "label", "count", "minMs", "p50Ms",
						    "p99Ms", "p999Ms", "maxMs", "meanMs" };
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
			CHECK(cJSON_GetObjectItem(h, keys[k]) != NULL);
		CHECK_STR(cJSON_GetObjectItem(h, "name")->valuestring, bench_hop_name((enum bench_hop)n));
		bench_summarize(&r->hop[n], &s);
		CHECK_EQ(cJSON_GetObjectItem(h, "count")->valuedouble, 1000);
		CHECK(fabs(cJSON_GetObjectItem(h, "p99Ms")->valuedouble - (double)s.p99 / 1e6) < 1e-3);
		CHECK(cJSON_GetObjectItem(h, "p50Ms")->valuedouble <=
		      cJSON_GetObjectItem(h, "p99Ms")->valuedouble);
		n++;
	}
	CHECK_EQ(n, 4);	/* no webhook hop when webhooks are off */
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "total"), "p999Ms"));
	CHECK(!cJSON_GetObjectItem(j, "soak") && !cJSON_GetObjectItem(j, "crash"));
	CHECK_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "notes")), 1);
	CHECK_STR(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "notes"), 0)->valuestring,
		  "a note with \"quotes\"");
	cJSON_Delete(j);

	/* crash and soak sections, with the webhook hop */
	fill(r, 1);
	r->mode = "crash";
	r->crash = true;
	r->killed_at = 400;
	r->complete_on_get = 1000;
	r->check_exit = 0;
	for (int i = 0; i < 6; i++)
		r->samples[r->nsamples++] = (struct bench_sample){ i * 5.0, (uint64_t)i * 100,
								   3000000, 50000 + i * 9000, 20000 };
	buf_reset(&b);
	CHECK(bench_json(r, &b) == 0);
	CHECK((j = cJSON_Parse(buf_cstr(&b))) != NULL);
	CHECK_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "hops")), 5);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "crash"), "ok")));
	CHECK_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "crash"), "killedAtAcked")->valuedouble, 400);
	CHECK_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "soak"), "samples")), 6);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "soak"), "flat")));
	cJSON_Delete(j);
	r->duplicates = 1;	/* one job completed twice: the crash check fails */
	CHECK(!bench_crash_ok(r));
	r->duplicates = 0;
	r->killed_at = 0;	/* never killed: nothing was shown */
	CHECK(!bench_crash_ok(r));
	r->killed_at = 400;
	r->check_exit = 1;	/* jobring check found a problem */
	CHECK(!bench_crash_ok(r));
	r->check_exit = 0;
	CHECK(bench_crash_ok(r));
	buf_free(&b);
}

static int count(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_svg_and_table(struct bench_result *r)
{
	struct buf b;

	for (int wh = 0; wh <= 1; wh++) {
		fill(r, wh);
		buf_init(&b);
		CHECK(bench_svg(r, 900, 480, &b) == 0);
		CHECK(strncmp(buf_cstr(&b), "<svg ", 5) == 0);
		CHECK(strstr(buf_cstr(&b), "</svg>\n") == b.data + b.len - 7);
		CHECK_EQ(count(buf_cstr(&b), "<path "), wh ? 5 : 4);
		/* balanced: every element is self-closed or closed */
		CHECK_EQ(count(buf_cstr(&b), "<text"), count(buf_cstr(&b), "</text>"));
		CHECK_EQ(count(buf_cstr(&b), "<"), 2 * count(buf_cstr(&b), "</") +
			 count(buf_cstr(&b), "/>"));
		CHECK(!strstr(buf_cstr(&b), "nan") && !strstr(buf_cstr(&b), "inf"));
		buf_free(&b);

		buf_init(&b);
		CHECK(bench_table(r, &b) == 0);
		CHECK(strstr(buf_cstr(&b), "waiting → dispatched"));
		CHECK(strstr(buf_cstr(&b), "p99.9"));
		CHECK((strstr(buf_cstr(&b), "complete → webhook") != NULL) == wh);
		CHECK(strstr(buf_cstr(&b), "500 jobs/s end to end"));
		buf_free(&b);
	}
	/* an empty result still draws a valid frame, with no curve */
	memset(r, 0, sizeof(*r));
	r->mode = "submit";
	buf_init(&b);
	CHECK(bench_svg(r, 0, 0, &b) == 0);
	CHECK_EQ(count(buf_cstr(&b), "<path "), 0);
	buf_free(&b);
}

static void test_soak(void)
{
	struct bench_sample s[12] = { { 0 } };
	char why[200];

	CHECK_EQ(bench_soak_verdict(s, 3, why, sizeof(why)), -1);
	for (int i = 0; i < 12; i++)
		s[i] = (struct bench_sample){ i * 5.0, (uint64_t)i * 1000, 2000000 + (i % 2) * 100000,
					      40000 + (i % 3) * 500, -1 };
	s[0].rss_kb = 10000;	/* warm-up is skipped */
	s[0].p99_ns = 90000000;
	CHECK_EQ(bench_soak_verdict(s, 12, why, sizeof(why)), 1);
	CHECK(strncmp(why, "flat", 4) == 0);
	/* RSS that keeps growing is not flat */
	for (int i = 0; i < 12; i++)
		s[i].rss_kb = 40000 + i * 20000;
	CHECK_EQ(bench_soak_verdict(s, 12, why, sizeof(why)), 0);
	CHECK(strncmp(why, "NOT flat", 8) == 0);
	/* ... unless anonymous memory is known and flat (file pages of the map) */
	for (int i = 0; i < 12; i++)
		s[i].anon_kb = 30000 + (i % 2) * 100;
	CHECK_EQ(bench_soak_verdict(s, 12, why, sizeof(why)), 1);
	for (int i = 0; i < 12; i++)
		s[i].anon_kb = 30000 + i * 10000;
	CHECK_EQ(bench_soak_verdict(s, 12, why, sizeof(why)), 0);
	/* nor is a p99 that climbs */
	for (int i = 0; i < 12; i++) {
		s[i].rss_kb = 40000;
		s[i].anon_kb = -1;
		s[i].p99_ns = 2000000 + (uint64_t)i * 2000000;
	}
	CHECK_EQ(bench_soak_verdict(s, 12, NULL, 0), 0);
	/* unknown RSS only judges p99 */
	for (int i = 0; i < 12; i++) {
		s[i].rss_kb = -1;
		s[i].p99_ns = 2000000;
	}
	CHECK_EQ(bench_soak_verdict(s, 12, why, sizeof(why)), 1);
}

int main(void)
{
	static struct hist h;
	struct bench_result *r = xcalloc(1, sizeof(*r));

	for (int i = 0; i < BENCH_NHOPS; i++)
		CHECK(strcmp(bench_hop_name((enum bench_hop)i), "?") != 0);
	test_summary(&h);
	test_json(r);
	test_svg_and_table(r);
	test_soak();
	free(r);
	printf("bench: ok\n");
	return T_PASS;
}
