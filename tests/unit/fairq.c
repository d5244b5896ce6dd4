/* Unit test for fairq.c: FIFO per org, round-robin across orgs, priority,
 * eligibility, dedupe, and the fairness bound the dispatcher relies on. */
#include "jobring/fairq.h"
#include "test.h"

static int not_b(void *ctx, const char *org)
{
	(void)ctx;
	return strcmp(org, "B") != 0;
}

int main(void)
{
	struct fairq q;
	char org[STRMAP_KEY_MAX], job[STRMAP_KEY_MAX], id[32];

	fairq_init(&q);
	/* Org A floods 2,000 jobs, then B submits one: B's job comes within 2 pops. */
	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		CHECK_EQ(fairq_push(&q, "A", 0, id, 0), 1);
	}
	CHECK_EQ(fairq_push(&q, "A", 0, "a0", 0), 0);	/* dedupe */
	CHECK_EQ(fairq_pop(&q, NULL, NULL, org, job), 1);
	CHECK_STR(job, "a0");
	CHECK_EQ(fairq_push(&q, "B", 0, "b0", 0), 1);
	int pops = 0, a_next = 1;
	for (;;) {
		CHECK_EQ(fairq_pop(&q, NULL, NULL, org, job), 1);
		pops++;
		if (!strcmp(job, "b0"))
			break;
		snprintf(id, sizeof(id), "a%d", a_next++);
		CHECK_STR(job, id);	/* A stays FIFO */
	}
	printf("B's first job after %d pops behind A's 2,000\n", pops);
	CHECK(pops <= 2);
	/* three orgs alternate */
	fairq_push(&q, "B", 0, "b1", 0);
	fairq_push(&q, "B", 0, "b2", 0);
	fairq_push(&q, "C", 0, "c1", 0);
	int seen_a = 0, seen_b = 0, seen_c = 0;
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(fairq_pop(&q, NULL, NULL, org, job), 1);
		seen_a += org[0] == 'A';
		seen_b += org[0] == 'B';
		seen_c += org[0] == 'C';
	}
	CHECK(seen_a >= 2 && seen_b == 2 && seen_c == 1);
	/* eligibility: B at its limit is skipped, not lost */
	fairq_push(&q, "B", 0, "b3", 0);
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(fairq_pop(&q, not_b, NULL, org, job), 1);
		CHECK(org[0] != 'B');
	}
	CHECK_EQ(fairq_remove(&q, "b3"), 1);
	CHECK_EQ(fairq_remove(&q, "b3"), 0);
	/* priority: P (10) before everyone */
	fairq_push(&q, "P", 10, "p1", 0);
	fairq_push(&q, "P", 10, "p2", 0);
	CHECK_EQ(fairq_pop(&q, NULL, NULL, org, job), 1);
	CHECK_STR(job, "p1");
	CHECK_EQ(fairq_pop(&q, NULL, NULL, org, job), 1);
	CHECK_STR(job, "p2");
	/* front push puts a job back first */
	fairq_push(&q, "Z", 20, "z1", 0);
	fairq_push(&q, "Z", 20, "z0", 1);
	CHECK_EQ(fairq_pop(&q, NULL, NULL, org, job), 1);
	CHECK_STR(job, "z0");
	CHECK_EQ(fairq_pop(&q, NULL, NULL, org, job), 1);
	CHECK_STR(job, "z1");
	/* drain everything: the count matches and nothing is left */
	size_t left = fairq_len(&q), n = 0;
	while (fairq_pop(&q, NULL, NULL, org, job))
		n++;
	CHECK_EQ(n, left);
	CHECK_EQ(fairq_len(&q), 0);
	CHECK_EQ(fairq_pop(&q, NULL, NULL, org, job), 0);
	fairq_free(&q);
	printf("fairq: ok\n");
	return T_PASS;
}
