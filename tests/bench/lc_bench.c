/* lc_bench - committed lifecycle transitions per second with group commit.
 *
 *   lc_bench [DIR] [TRANSITIONS]
 *
 * Creates jobs, then moves them waiting → dispatched in write transactions
 * of B moves each (B = 1, 10, 100, 1000), with sync=full (fsync at every
 * commit), and prints transitions/s and commits/s for each B. DIR must be on
 * the disk being measured (not tmpfs). Each transition writes the job, two
 * index entries, the org record, an event and a timer record. */
#include "jobring/account.h"
#include "jobring/job.h"
#include "jobring/lifecycle.h"
#include "jobring/store.h"
#include "jobring/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store st;
static char org[ORG_ID_MAX];

static void die(const char *what, int r)
{
	fprintf(stderr, "lc_bench: %s: %d\n", what, r);
	exit(1);
}

static char (*make_jobs(size_t n))[32]
{
	char (*ids)[32] = xmalloc(n * sizeof(*ids));
	for (size_t i = 0; i < n;) {
		MDB_txn *t;
		int r;
		if ((r = store_begin(&st, 0, &t)) < 0)
			die("begin", r);
		for (size_t k = 0; k < 1000 && i < n; k++, i++) {
			struct job j;
			memset(&j, 0, sizeof(j));
			id_new(j.id, sizeof(j.id), "job_", 20);
			snprintf(j.org, sizeof(j.org), "%s", org);
			snprintf(j.type, sizeof(j.type), "sleep");
			j.created_at = now_ms();
			j.hold = 1000;
			j.timeout_ms = 60000;
			j.params.p = "{\"seconds\":1}";
			j.params.n = 13;
			if ((r = lc_create(&st, t, &j)) < 0)
				die("create", r);
			memcpy(ids[i], j.id, 32);
		}
		if ((r = store_commit(t)) < 0)
			die("commit", r);
	}
	return ids;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "./lc-bench-data";
	size_t total = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
	static const size_t batches[] = { 1, 10, 100, 1000 };
	char cmd[512];
	MDB_txn *t;
	struct org_rec o;
	int r;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	if ((r = store_open(&st, dir, 4096, 1)) < 0)
		die("open", r);
	store_begin(&st, 0, &t);
	account_org_create(&st, t, "bench", "pro", now_ms(), &o);
	account_grant(&st, t, o.id, (int64_t)1 << 50, now_ms(), NULL);
	store_commit(t);
	snprintf(org, sizeof(org), "%s", o.id);

	printf("%-8s %14s %12s %10s\n", "batch", "transitions/s", "commits/s", "n");
	for (size_t b = 0; b < ARRAY_SIZE(batches); b++) {
		size_t n = batches[b] == 1 ? MIN(total, 3000) : total;
		char (*ids)[32] = make_jobs(n);
		int64_t t0 = mono_ns();
		size_t commits = 0;
		for (size_t i = 0; i < n;) {
			if ((r = store_begin(&st, 0, &t)) < 0)
				die("begin", r);
			for (size_t k = 0; k < batches[b] && i < n; k++, i++) {
				struct lc_move m = { .op = LC_DISPATCHED, .job_id = ids[i], .attempt = 1,
						     .at = now_ms(), .provider = "p", .run_id = "r" };
				if ((r = lc_apply(&st, t, &m, NULL)) < 0)
					die("apply", r);
			}
			if ((r = store_commit(t)) < 0)
				die("commit", r);
			commits++;
		}
		double s = (double)(mono_ns() - t0) / 1e9;
		printf("%-8zu %14.0f %12.0f %10zu\n", batches[b], (double)n / s, (double)commits / s, n);
		free(ids);
	}
	store_close(&st);
	if (system(cmd) != 0)
		return 1;
	return 0;
}
