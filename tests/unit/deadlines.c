/* Unit test for deadlines.c on a real store and a fake clock (wall and
 * monotonic ms moved by hand):
 *  1. execution timeouts: nothing before its wall-clock due, each exactly
 *     once after, a job completed in time is untouched (stale, erased);
 *  2. the monotonic clock running ahead of the wall clock never fires early;
 *     wall-clock jumps of days forward and an hour back;
 *  3. backoffs wake only jobs still waiting at that attempt; webhook dues;
 *  4. "a crash": a turn aborted and the struct dropped; a new one rebuilt
 *     from the db fires every pending deadline exactly once, none early;
 *  5. a memory window of 8 entries over 300 deadlines (db paging, shedding);
 *  6. the stuck sweep fails exactly the stuck jobs, in bounded calls;
 *  7. the retention purge, then check_store() == 0;
 * and every run ends with nothing in memory and nothing in the timers db. */
#include "jobring/account.h"
#include "jobring/check.h"
#include "jobring/deadlines.h"
#include "jobring/job.h"
#include "jobring/lifecycle.h"
#include "jobring/store.h"
#include "jobring/util.h"
#include "test.h"

#include <errno.h>

#define DAY (86400 * INT64_C(1000))
#define HOLD 5000000
#define MAXJ 1200

static char dir[256];
static struct store st;
static char org_id[ORG_ID_MAX];
static int64_t W = INT64_C(1700000000000);	/* fake wall clock */
static uint64_t M = 5000;			/* fake monotonic clock */

/* The jobs of the current test and what happened to them. */
static char ids[MAXJ][32];
static int64_t dues[MAXJ];
static int fired[MAXJ];
static int njobs;

static void tick(int64_t wall_ms, uint64_t mono_ms)
{
	W += wall_ms;
	M += mono_ms;
}

static void open_fresh(void)
{
	MDB_txn *t;
	struct org_rec o;

	snprintf(dir, sizeof(dir), "/tmp/jobring-dl-XXXXXX");
	CHECK(mkdtemp(dir));
	CHECK_EQ(store_open(&st, dir, 256, 0), 0);
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(account_org_create(&st, t, "test org", "pro", W - 60 * DAY, &o), 0);
	CHECK_EQ(account_grant(&st, t, o.id, INT64_C(1000000000000000), W - 60 * DAY, NULL), 0);
	CHECK_EQ(store_commit(t), 0);
	snprintf(org_id, sizeof(org_id), "%s", o.id);
	njobs = 0;
}

static void cleanup(void)
{
	char cmd[300];
	CHECK_EQ(check_store(&st, stderr), 0);
	store_close(&st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

static int idx(const char *id)
{
	for (int i = 0; i < njobs; i++)
		if (strcmp(ids[i], id) == 0)
			return i;
	return -1;
}

/* A new waiting job created at `created`; returns its index. */
static int new_job(int64_t created, int64_t timeout_ms, const char *idem)
{
	MDB_txn *t;
	struct job j;

	CHECK(njobs < MAXJ);
	memset(&j, 0, sizeof(j));
	id_new(j.id, sizeof(j.id), "job_", 20);
	snprintf(j.org, sizeof(j.org), "%s", org_id);
	snprintf(j.type, sizeof(j.type), "sleep");
	j.created_at = created;
	j.hold = HOLD;
	j.timeout_ms = timeout_ms;
	j.params.p = "{}";
	j.params.n = 2;
	if (idem) {
		j.idem.p = idem;
		j.idem.n = (uint32_t)strlen(idem);
	}
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(lc_create(&st, t, &j), 0);
	CHECK_EQ(store_commit(t), 0);
	strcpy(ids[njobs], j.id);
	dues[njobs] = INT64_MAX;
	fired[njobs] = 0;
	return njobs++;
}

static int apply_at(int i, enum lc_op op, uint32_t attempt, int64_t at, int64_t next_try)
{
	MDB_txn *t;
	struct lc_move m;
	int r;

	memset(&m, 0, sizeof(m));
	m.op = op;
	m.job_id = ids[i];
	m.attempt = attempt;
	m.at = at;
	m.provider = "prov1";
	m.run_id = "run_1";
	m.max_attempts = 3;
	m.next_try_at = next_try;
	m.price = 1000;
	m.hold = HOLD;
	m.output = "{}";
	m.progress = 500000;
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	r = lc_apply(&st, t, &m, NULL);
	if (r >= 0)
		CHECK_EQ(store_commit(t), 0);
	else
		store_abort(t);
	return r;
}

static struct job get(int i)
{
	MDB_txn *t;
	struct job j;
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	CHECK_EQ(job_get(&st, t, ids[i], &j), 0);
	j.idem = j.inputs = j.params = j.output = j.error_message = j.error_detail = j.step =
		j.callback = j.client = (struct jstr){ NULL, 0 };	/* they die with the txn */
	store_abort(t);
	return j;
}

static int gone(int i)
{
	MDB_txn *t;
	struct job j;
	int r;
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	r = job_get(&st, t, ids[i], &j);
	store_abort(t);
	CHECK(r == 0 || r == -ENOENT);
	return r == -ENOENT;
}

static size_t db_count(enum store_db db)
{
	MDB_txn *t;
	MDB_stat s;
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	CHECK_EQ(mdb_stat(t, st.dbi[db], &s), 0);
	store_abort(t);
	return s.ms_entries;
}

/* One timer turn as the actor does it: fire until nothing is due, commit
 * (or abort, to play a crash). Checks every message; returns how many. */
static int turn(struct deadlines *d, int commit)
{
	struct dl_out out;
	MDB_txn *t;
	int n = 0;

	memset(&out, 0, sizeof(out));
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	deadlines_clock(d, W, M);
	for (int k = 0; k < 1000 && deadlines_next_mono(d) <= M; k++)
		CHECK(deadlines_fire(d, &st, t, W, M, &out) >= 0);
	CHECK(deadlines_count(d) <= d->max);
	if (!commit) {
		store_abort(t);
		dl_out_free(&out);
		return 0;
	}
	CHECK_EQ(store_commit(t), 0);
	for (size_t k = 0; k < out.n; k++) {
		const struct msg *m = &out.v[k].m;
		int i = idx(m->job);
		if (m->kind == MSG_WEBHOOK_DUE)
			continue;	/* checked by its test */
		CHECK(i >= 0);
		CHECK_EQ(out.v[k].to, ACTOR_DISPATCHER);
		CHECK_STR(m->org, org_id);
		CHECK(dues[i] <= W);	/* never early */
		CHECK_EQ(fired[i], 0);	/* exactly once */
		fired[i] = 1;
		if (m->kind == MSG_JOB_CANCEL) {
			struct job j = get(i);
			CHECK_EQ(m->status, JOB_FAILED);
			CHECK_EQ(j.status, JOB_FAILED);
			CHECK_STR(j.error_code, "PROVIDER_TIMEOUT");
			CHECK_STR(m->provider, "prov1");
			CHECK_EQ(m->attempt, j.attempt);
		} else {
			CHECK_EQ(m->kind, MSG_JOB_WAITING);
			CHECK_EQ(m->status, JOB_WAITING);
		}
		n++;
	}
	dl_out_free(&out);
	return n;
}

static int count_fired(void)
{
	int n = 0;
	for (int i = 0; i < njobs; i++)
		n += fired[i];
	return n;
}

/* Dispatch job i at `at` (its execution timeout is recorded by lc_apply). */
static void dispatch(int i, int64_t at, uint32_t attempt)
{
	CHECK_EQ(apply_at(i, LC_DISPATCHED, attempt, at, 0), 0);
	dues[i] = at + get(i).timeout_ms;
}

static void test_timeouts(void)
{
	struct deadlines d;
	int64_t w0 = W;
	const int n = 300;

	open_fresh();
	for (int i = 0; i < n; i++) {
		new_job(W, 10000 + i * 37, NULL);
		dispatch(i, W, 1);
	}
	deadlines_init(&d, 0, W, M);
	CHECK_EQ(deadlines_rebuild(&d, &st, W, M), n);
	/* the same deadlines again, as MSG_TIMER_ARM: armed once */
	for (int i = 0; i < n; i++)
		CHECK_EQ(deadlines_arm(&d, TIMER_EXEC, ids[i], 1, dues[i], W, M), 0);
	CHECK_EQ(deadlines_count(&d), n);
	CHECK_EQ(deadlines_arm(&d, TIMER_EXEC, ids[1], 1, W + 1, W, M), 1);	/* no record */
	CHECK_EQ(deadlines_count(&d), n);
	CHECK_EQ(deadlines_arm(&d, 9, ids[0], 1, W, W, M), -EINVAL);
	/* every fifth job completes in time */
	tick(5000, 5000);
	for (int i = 0; i < n; i += 5)
		CHECK_EQ(apply_at(i, LC_COMPLETE, 1, W, 0), 0);
	/* an ended job takes its record with it; the timer is told to forget
	 * it (here for half of them, as if the other messages were lost) */
	CHECK_EQ(db_count(DB_TIMERS), (size_t)(n - n / 5));
	{
		int forgot = 0;
		for (int i = 0; i < n; i += 10)
			forgot += deadlines_forget(&d, TIMER_EXEC, ids[i], 1);
		CHECK_EQ(forgot, n / 10);
		CHECK_EQ(deadlines_forget(&d, TIMER_EXEC, ids[0], 1), 0);	/* gone already */
		CHECK_EQ(deadlines_forget(&d, TIMER_EXEC, ids[5], 2), 0);	/* not that attempt */
		CHECK_EQ(deadlines_forget(&d, TIMER_BACKOFF, ids[5], 1), 0);	/* nor that kind */
		CHECK_EQ(deadlines_count(&d), n - n / 10);
	}
	tick(4999, 4999);
	CHECK_EQ(turn(&d, 1), 0);
	CHECK_EQ(get(1).status, JOB_DISPATCHED);
	while (W < w0 + 25000) {
		tick(250, 250);
		turn(&d, 1);
	}
	for (int i = 0; i < n; i++) {
		CHECK_EQ(fired[i], i % 5 != 0);
		CHECK_EQ(get(i).status, i % 5 ? JOB_FAILED : JOB_COMPLETE);
	}
	CHECK_EQ(d.fired, n - n / 5);
	CHECK_EQ(d.stale, n / 5 - n / 10);	/* the ones not forgotten */
	CHECK_EQ(deadlines_count(&d), 0);
	CHECK_EQ(db_count(DB_TIMERS), 0);
	CHECK(d.nfree <= DL_FREE_KEEP);
	deadlines_free(&d);
	cleanup();
}

/* However an active job ends, its execution deadline's record goes with it;
 * a retried job gets a new one for its new attempt. */
static void test_ended_erase(void)
{
	open_fresh();
	for (int i = 0; i < 4; i++) {
		new_job(W, 60000, NULL);
		dispatch(i, W + i, 1);
	}
	CHECK_EQ(db_count(DB_TIMERS), 4);
	CHECK_EQ(apply_at(0, LC_FAILED, 1, W + 10, 0), 0);
	CHECK_EQ(apply_at(1, LC_CANCEL, 1, W + 10, 0), 0);
	CHECK_EQ(apply_at(2, LC_RUNNING, 1, W + 10, 0), 0);
	CHECK_EQ(apply_at(2, LC_COMPLETE, 1, W + 20, 0), 0);
	CHECK_EQ(db_count(DB_TIMERS), 1);	/* job 3's, still running */
	CHECK_EQ(apply_at(0, LC_RETRY, 0, W + 30, 0), 0);
	dispatch(0, W + 40, 2);
	CHECK_EQ(db_count(DB_TIMERS), 2);
	CHECK_EQ(apply_at(0, LC_COMPLETE, 2, W + 50, 0), 0);
	CHECK_EQ(apply_at(3, LC_COMPLETE, 1, W + 50, 0), 0);
	CHECK_EQ(db_count(DB_TIMERS), 0);
	cleanup();
}

static void test_clocks(void)
{
	struct deadlines d;
	int64_t w0;

	open_fresh();
	deadlines_init(&d, 0, W, M);
	/* The monotonic clock runs 800 ms ahead (below DL_JUMP_MS): the wheel
	 * releases the entries, the wall clock says not yet. */
	for (int i = 0; i < 10; i++) {
		new_job(W, 10000, NULL);
		dispatch(i, W, 1);
		CHECK_EQ(deadlines_arm(&d, TIMER_EXEC, ids[i], 1, dues[i], W, M), 1);
	}
	tick(9700, 10500);
	CHECK_EQ(turn(&d, 1), 0);
	CHECK_EQ(d.early, 10);
	CHECK_EQ(d.rebases, 0);
	tick(299, 299);
	CHECK_EQ(turn(&d, 1), 0);
	tick(1, 1);
	CHECK_EQ(turn(&d, 1), 10);

	/* The wall clock jumps 3 days forward: everything due by it fires. */
	w0 = W;
	for (int i = 10; i < 60; i++) {
		new_job(W, (i - 9) * 60000, NULL);
		dispatch(i, W, 1);
	}
	CHECK_EQ(deadlines_rebuild(&d, &st, W, M), 50);
	tick(10000, 10000);
	CHECK_EQ(turn(&d, 1), 0);
	tick(3 * DAY, 1);
	CHECK_EQ(turn(&d, 1), 50);
	CHECK_EQ(d.rebases, 1);

	/* ... and an hour back: nothing fires until the wall clock says so. */
	w0 = W;
	for (int i = 60; i < 80; i++) {
		new_job(W, 10000, NULL);
		dispatch(i, W, 1);
		CHECK_EQ(deadlines_arm(&d, TIMER_EXEC, ids[i], 1, dues[i], W, M), 1);
	}
	tick(-3600 * 1000, 20000);
	CHECK_EQ(turn(&d, 1), 0);
	tick(3600 * 1000 + 9999, 1);
	CHECK_EQ(turn(&d, 1), 0);
	tick(1, 1);
	CHECK_EQ(turn(&d, 1), 20);
	(void)w0;
	CHECK_EQ(count_fired(), 80);
	CHECK_EQ(deadlines_count(&d), 0);
	CHECK_EQ(db_count(DB_TIMERS), 0);
	deadlines_free(&d);
	cleanup();
}

static void test_backoff_webhook(void)
{
	struct deadlines d;
	struct dl_out out;
	MDB_txn *t;
	const int n = 40;

	open_fresh();
	for (int i = 0; i < n; i++) {
		new_job(W, 600000, NULL);
		CHECK_EQ(apply_at(i, LC_DISPATCH_FAILED, 1, W, W + 5000), 0);
		dues[i] = W + 5000;
	}
	for (int i = 0; i < n; i++) {
		if (i % 4 == 1) {
			CHECK_EQ(apply_at(i, LC_DISPATCHED, 2, W + 1000, 0), 0); /* not waiting */
			fired[i] = -1;
		} else if (i % 4 == 2) {
			CHECK_EQ(apply_at(i, LC_CANCEL, 0, W + 1000, 0), 0);
			fired[i] = -1;
		} else if (i % 4 == 3) {	/* waiting again, at attempt 2 */
			CHECK_EQ(apply_at(i, LC_DISPATCH_FAILED, 2, W + 1000, W + 8000), 0);
			dues[i] = W + 8000;
		}
	}
	/* a webhook delivery's retry time, recorded by the notifier */
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(timer_record(&st, t, W + 3000, TIMER_WEBHOOK, "del_0123456789abcdefghij", 2), 0);
	CHECK_EQ(store_commit(t), 0);

	deadlines_init(&d, 0, W, M);
	CHECK_EQ(deadlines_rebuild(&d, &st, W, M), 40 + 10 + 10 + 1);
	memset(&out, 0, sizeof(out));
	tick(3000, 3000);
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(deadlines_fire(&d, &st, t, W, M, &out), 1);
	CHECK_EQ(store_commit(t), 0);
	CHECK_EQ(out.n, 1);
	CHECK_EQ(out.v[0].to, ACTOR_NOTIFIER);
	CHECK_EQ(out.v[0].m.kind, MSG_WEBHOOK_DUE);
	CHECK_EQ(out.v[0].m.attempt, 2);
	CHECK_STR(out.v[0].m.job, "del_0123456789abcdefghij");
	CHECK_EQ(out.events, 0);
	dl_out_free(&out);

	tick(1999, 1999);
	CHECK_EQ(turn(&d, 1), 0);
	tick(1, 1);
	CHECK_EQ(turn(&d, 1), 10);	/* i % 4 == 0 */
	for (int i = 0; i < n; i++)
		CHECK_EQ(fired[i], i % 4 == 0 ? 1 : i % 4 == 3 ? 0 : -1);
	tick(3000, 3000);
	CHECK_EQ(turn(&d, 1), 10);	/* i % 4 == 3, at attempt 2 */
	for (int i = 0; i < n; i++)
		CHECK(fired[i] != 0);
	CHECK_EQ(d.stale, 30);	/* attempt-1 backoffs of the 1s, 2s and 3s */
	/* the re-dispatched jobs still have their execution timeouts pending */
	CHECK_EQ(deadlines_count(&d), 10);
	CHECK_EQ(db_count(DB_TIMERS), 10);
	deadlines_free(&d);
	cleanup();
}

static void test_crash(void)
{
	struct deadlines d;
	int64_t w0 = W;
	const int n = 1000;
	int before;

	open_fresh();
	for (int i = 0; i < n; i++) {
		new_job(W, 1000 + (i * 7919) % 100000, NULL);
		dispatch(i, W, 1);
	}
	deadlines_init(&d, 0, W, M);
	CHECK_EQ(deadlines_rebuild(&d, &st, W, M), n);
	while (W < w0 + 50000) {
		tick(1000, 1000);
		turn(&d, 1);
	}
	before = count_fired();
	CHECK(before > 0 && before < n);
	/* A turn that never commits, then the process is gone. */
	tick(10000, 10000);
	turn(&d, 0);
	deadlines_free(&d);
	CHECK_EQ(db_count(DB_TIMERS), (size_t)(n - before));

	/* The restarted actor, a few seconds later. */
	tick(3000, 777777);
	deadlines_init(&d, 0, W, M);
	CHECK_EQ(deadlines_rebuild(&d, &st, W, M), n - before);
	CHECK(turn(&d, 1) > 0);	/* everything due during the outage, at once */
	while (W < w0 + 110000) {
		tick(1000, 1000);
		turn(&d, 1);
	}
	CHECK_EQ(count_fired(), n);
	CHECK_EQ(deadlines_count(&d), 0);
	CHECK_EQ(db_count(DB_TIMERS), 0);
	deadlines_free(&d);
	cleanup();
}

/* 300 deadlines through a window of 8 entries: loaded from the db as the
 * window empties (rebuild) and shed when arms overflow it (messages). */
static void test_window(void)
{
	struct deadlines d;
	int64_t w0 = W;

	open_fresh();
	for (int i = 0; i < 150; i++) {
		new_job(W, 1000 + (i * 31) % 30000, NULL);
		dispatch(i, W, 1);
	}
	deadlines_init(&d, 8, W, M);
	CHECK_EQ(deadlines_rebuild(&d, &st, W, M), 6);
	CHECK(d.horizon != UINT64_MAX);
	for (int i = 150; i < 300; i++) {
		new_job(W, 100 + (i * 17) % 1000, NULL);
		dispatch(i, W, 1);
		deadlines_arm(&d, TIMER_EXEC, ids[i], 1, dues[i], W, M);
		CHECK(deadlines_count(&d) <= 8);
	}
	CHECK(d.shed > 0);
	CHECK(d.deferred > 0);
	while (W < w0 + 31000) {
		tick(100, 100);
		turn(&d, 1);
	}
	CHECK_EQ(count_fired(), 300);
	CHECK_EQ(deadlines_count(&d), 0);
	CHECK_EQ(d.horizon, UINT64_MAX);
	CHECK_EQ(db_count(DB_TIMERS), 0);
	deadlines_free(&d);
	cleanup();
}

static void test_sweep(void)
{
	struct deadlines d;
	const int n = 600;
	int stuck = 0, calls = 0;

	open_fresh();
	for (int i = 0; i < n; i++) {
		int64_t at = i % 2 ? W - 600000 : W - 60000;	/* odd: 10 min ago */
		new_job(W - 1200000, 0, NULL);			/* no execution limit */
		dispatch(i, at, 1);
		if (i % 3 == 0)
			CHECK_EQ(apply_at(i, LC_RUNNING, 1, at, 0), 0);
		if (i % 6 == 3)	/* running and reported a minute ago */
			CHECK_EQ(apply_at(i, LC_PROGRESS, 1, W - 60000, 0), 0);
		stuck += i % 2 && i % 6 != 3;
	}
	deadlines_init(&d, 0, W, M);
	/* An arm with no record behind it (a job without an execution limit)
	 * fires nothing; an arm earlier than the record fires at the record. */
	CHECK_EQ(deadlines_arm(&d, TIMER_EXEC, ids[0], 1, W - 60000, W, M), 1);
	CHECK_EQ(turn(&d, 1), 0);
	CHECK_EQ(d.stale, 1);
	do {
		struct dl_out out;
		MDB_txn *t;
		int r;

		memset(&out, 0, sizeof(out));
		CHECK_EQ(store_begin(&st, 0, &t), 0);
		r = deadlines_sweep(&d, &st, t, W, 300000, &out);
		CHECK(r >= 0 && r <= DL_SCAN_BATCH);
		CHECK_EQ(store_commit(t), 0);
		CHECK_EQ((int)out.n, r);
		CHECK_EQ((int)out.events, r);
		for (size_t k = 0; k < out.n; k++) {
			int i = idx(out.v[k].m.job);
			CHECK(i >= 0 && fired[i] == 0);
			CHECK_EQ(out.v[k].m.kind, MSG_JOB_CANCEL);
			CHECK_STR(out.v[k].m.provider, "prov1");
			fired[i] = 1;
		}
		dl_out_free(&out);
		CHECK(++calls < 100);
	} while (d.sweep_status);
	CHECK(calls > 2);	/* 600 jobs in batches of DL_SCAN_BATCH */
	CHECK_EQ((int)d.swept, stuck);
	for (int i = 0; i < n; i++) {
		struct job j = get(i);
		int want = i % 2 && i % 6 != 3;
		CHECK_EQ(fired[i], want);
		CHECK_EQ(j.status, want ? JOB_FAILED : i % 3 == 0 ? JOB_RUNNING : JOB_DISPATCHED);
		if (want)
			CHECK_STR(j.error_code, "PROVIDER_TIMEOUT");
	}
	deadlines_free(&d);
	cleanup();
}

static void put_log(int i, uint32_t seq)
{
	unsigned char k[64];
	size_t n = strlen(ids[i]);
	MDB_txn *t;

	memcpy(k, ids[i], n);
	k[n] = 0;
	be32_put(k + n + 1, seq);
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(store_put(&st, t, DB_LOGS, k, n + 5, "{\"l\":1}", 7), 0);
	CHECK_EQ(store_commit(t), 0);
}

static int idem_exists(const char *key)
{
	unsigned char k[128];
	size_t on = strlen(org_id);
	MDB_txn *t;
	MDB_val v;
	int r;

	memcpy(k, org_id, on);
	k[on] = 0;
	memcpy(k + on + 1, key, strlen(key));
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	r = store_get(&st, t, DB_IDEM, k, on + 1 + strlen(key), &v);
	store_abort(t);
	return r == 0;
}

static void test_purge(void)
{
	struct deadlines d;
	int64_t old = W - 40 * DAY;
	size_t ev_before, ev_after, ledger_before;
	int calls = 0, total = 0, e;

	open_fresh();
	for (int i = 0; i < 60; i++) {		/* 0..59: complete 35 days ago: purged */
		char idem[32];
		snprintf(idem, sizeof(idem), "idem-%d", i);
		new_job(old + i, 0, i % 10 == 0 ? idem : NULL);
		CHECK_EQ(apply_at(i, LC_DISPATCHED, 1, old + DAY, 0), 0);
		CHECK_EQ(apply_at(i, LC_COMPLETE, 1, W - 35 * DAY, 0), 0);
		if (i % 20 == 0)
			for (uint32_t s = 0; s < (i ? 10u : 3000u); s++)
				put_log(i, s);
	}
	for (int i = 60; i < 70; i++) {		/* complete yesterday: kept */
		new_job(old, 0, NULL);
		CHECK_EQ(apply_at(i, LC_DISPATCHED, 1, old, 0), 0);
		CHECK_EQ(apply_at(i, LC_COMPLETE, 1, W - DAY, 0), 0);
	}
	for (int i = 70; i < 75; i++)		/* still waiting after 40 days: kept */
		new_job(old, 0, NULL);
	for (int i = 75; i < 80; i++) {		/* cancelled 31 days ago: purged */
		new_job(old, 0, NULL);
		CHECK_EQ(apply_at(i, LC_CANCEL, 0, W - 31 * DAY, 0), 0);
	}
	e = new_job(old, 0, NULL);		/* 80: exhausted into the dlq: purged */
	for (uint32_t a = 1; a <= 3; a++)
		CHECK(apply_at(e, LC_DISPATCH_FAILED, a, old + a, old + a + 1) >= 0);
	CHECK(get(e).flags & JOB_IN_DLQ);
	e = new_job(old, 0, NULL);		/* 81: failed, retried, done 2 days ago: kept */
	CHECK_EQ(apply_at(e, LC_DISPATCHED, 1, old + DAY, 0), 0);
	CHECK_EQ(apply_at(e, LC_FAILED, 1, old + DAY, 0), 0);
	CHECK_EQ(apply_at(e, LC_RETRY, 0, old + 2 * DAY, 0), 0);
	CHECK_EQ(apply_at(e, LC_DISPATCHED, 2, W - 3 * DAY, 0), 0);
	CHECK_EQ(apply_at(e, LC_COMPLETE, 2, W - 2 * DAY, 0), 0);
	CHECK_EQ(check_store(&st, stderr), 0);
	ev_before = db_count(DB_EVENTS);
	ledger_before = db_count(DB_LEDGER);
	CHECK_EQ(db_count(DB_LOGS), 3000 + 20);
	CHECK(db_count(DB_DLQ) == 1);

	deadlines_init(&d, 0, W, M);
	do {
		MDB_txn *t;
		int r;
		CHECK_EQ(store_begin(&st, 0, &t), 0);
		r = deadlines_purge(&d, &st, t, W, 30 * DAY);
		CHECK(r >= 0);
		CHECK_EQ(store_commit(t), 0);
		total += r;
		CHECK(++calls < 100);
	} while (d.purge_phase);
	CHECK(calls > 3);	/* 3000 log lines take more than one call */
	CHECK_EQ(d.purged_jobs, 60 + 5 + 1);
	for (int i = 0; i < njobs; i++)
		CHECK_EQ(gone(i), i < 60 || (i >= 75 && i < 81));
	CHECK(!idem_exists("idem-0") && !idem_exists("idem-50"));
	CHECK_EQ(db_count(DB_LOGS), 0);
	CHECK_EQ(db_count(DB_DLQ), 0);
	CHECK_EQ(db_count(DB_LEDGER), ledger_before);
	ev_after = db_count(DB_EVENTS);
	CHECK_EQ(ev_before - ev_after, d.purged_events);
	CHECK_EQ((size_t)total, d.purged_jobs + d.purged_events);
	/* the purged jobs' status events (3 or 2 each, 2+3 for the dlq one) and
	 * the old balance events went; the kept jobs' old events did not */
	CHECK(d.purged_events >= 60 * 3 + 5 * 2 + 5);
	CHECK(ev_after >= 10 * 3 + 5 + 6);
	CHECK_EQ(check_store(&st, stderr), 0);
	/* a second pass finds nothing */
	{
		MDB_txn *t;
		CHECK_EQ(store_begin(&st, 0, &t), 0);
		CHECK_EQ(deadlines_purge(&d, &st, t, W, 30 * DAY), 0);
		while (d.purge_phase)
			CHECK_EQ(deadlines_purge(&d, &st, t, W, 30 * DAY), 0);
		CHECK_EQ(store_commit(t), 0);
	}
	deadlines_free(&d);
	cleanup();
}

int main(void)
{
	test_timeouts();
	test_ended_erase();
	test_clocks();
	test_backoff_webhook();
	test_crash();
	test_window();
	test_sweep();
	test_purge();
	return T_PASS;
}
