/* Unit test for outbox.c against a real store in a temp dir:
 *  1. the event → webhook mapping table, and which endpoints get what
 *     (subscriptions, inactive endpoints, other orgs);
 *  2. the cursor: an aborted turn leaves nothing, a committed one is not
 *     repeated (no loss, no duplicates);
 *  3. the envelope and headers of an attempt, both signature schemes
 *     verified with whsign's verify functions, and the rotation window;
 *  4. the backoff schedule, Retry-After, retry / maxAttempts / 410 /
 *     refused target, auto-disable after consecutive failures and its reset;
 *  5. per-job callbacks (signed with the org's callback secret when verify),
 *     balance.low once per descent, redeliver, the due index, deleting an
 *     endpoint, and URL checks (SSRF). */
#include "jobring/account.h"
#include "jobring/config.h"
#include "jobring/job.h"
#include "jobring/lifecycle.h"
#include "jobring/outbox.h"
#include "jobring/store.h"
#include "jobring/util.h"
#include "jobring/whsign.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[256];
static struct store st;
static struct config cfg;
static struct outbox ob;
static char org_a[ORG_ID_MAX], org_b[ORG_ID_MAX];
static int64_t T0;

static void make_org(char *out, int64_t credits)
{
	MDB_txn *t;
	struct org_rec o;
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(account_org_create(&st, t, "org", "pro", T0, &o), 0);
	if (credits)
		CHECK_EQ(account_grant(&st, t, o.id, credits, T0, NULL), 0);
	CHECK_EQ(store_commit(t), 0);
	snprintf(out, ORG_ID_MAX, "%s", o.id);
}

static void make_endpoint(struct wh_endpoint *e, const char *org, uint32_t events, int active)
{
	MDB_txn *t;
	memset(e, 0, sizeof(*e));
	id_new(e->id, sizeof(e->id), "we_", 20);
	snprintf(e->org, sizeof(e->org), "%s", org);
	snprintf(e->name, sizeof(e->name), "ep");
	snprintf(e->url, sizeof(e->url), "https://hooks.example.com/%s", e->id);
	CHECK(whsign_new_secret(e->secret, sizeof(e->secret)) > 0);
	e->events = events;
	e->active = (uint32_t)active;
	e->created_at = e->updated_at = T0;
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(wh_endpoint_put(&st, t, e), 0);
	CHECK_EQ(store_commit(t), 0);
}

static void get_endpoint(const char *id, struct wh_endpoint *e)
{
	MDB_txn *t;
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	CHECK_EQ(wh_endpoint_get(&st, t, id, e), 0);
	store_abort(t);
}

static void get_delivery(const char *id, struct wh_delivery *d)
{
	MDB_txn *t;
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	CHECK_EQ(wh_delivery_get(&st, t, id, d, NULL, NULL), 0);
	store_abort(t);
}

static void new_job(const char *org, char *id, const char *callback)
{
	MDB_txn *t;
	struct job j;
	memset(&j, 0, sizeof(j));
	id_new(j.id, sizeof(j.id), "job_", 20);
	snprintf(j.org, sizeof(j.org), "%s", org);
	snprintf(j.type, sizeof(j.type), "sleep");
	j.created_at = T0;
	j.hold = 1000000;
	j.timeout_ms = 60000;
	if (callback) {
		j.callback.p = callback;
		j.callback.n = (uint32_t)strlen(callback);
	}
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(lc_create(&st, t, &j), 0);
	CHECK_EQ(store_commit(t), 0);
	strcpy(id, j.id);
}

static void move(const char *id, enum lc_op op, uint32_t attempt)
{
	MDB_txn *t;
	struct lc_move m;
	memset(&m, 0, sizeof(m));
	m.op = op;
	m.job_id = id;
	m.attempt = attempt;
	m.at = T0;
	m.provider = "p";
	m.run_id = "r";
	m.price = 500000;
	m.output = "{}";
	m.error_code = "INPUT_FETCH_FAILED";
	m.error_message = "could not fetch \"input\"";
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(lc_apply(&st, t, &m, NULL), 0);
	CHECK_EQ(store_commit(t), 0);
}

/* One notifier turn's event half: returns deliveries made, ids in *made. */
static size_t advance(struct wh_ids *made, int commit)
{
	MDB_txn *t;
	uint64_t cur;
	int n;
	made->n = 0;
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	n = outbox_advance(&ob, t, 1000, T0, made, NULL, NULL, &cur);
	CHECK(n >= 0);
	if (commit)
		CHECK_EQ(store_commit(t), 0);
	else
		store_abort(t);
	return made->n;
}

/* Event of each made delivery, as a bit set, counted per endpoint. */
static unsigned events_for(const struct wh_ids *made, const char *endpoint, int *count)
{
	unsigned bits = 0;
	*count = 0;
	for (size_t i = 0; i < made->n; i++) {
		struct wh_delivery d;
		get_delivery(made->v[i], &d);
		CHECK_EQ(d.status, WH_PENDING);
		if (strcmp(d.endpoint, endpoint) == 0) {
			bits |= WH_BIT(d.event);
			(*count)++;
		}
	}
	return bits;
}

/* One advance over the events of more orgs than the endpoint cache of a
 * turn holds, interleaved: every delivery goes to its own org's endpoint. */
static void test_many_orgs(struct wh_ids *made)
{
	enum { ORGS = 20, ROUNDS = 3 };
	char orgs[ORGS][ORG_ID_MAX], job[32];
	struct wh_endpoint eps[ORGS];
	struct wh_delivery d;

	advance(made, 1);	/* earlier events out of the way */
	for (int i = 0; i < ORGS; i++) {
		make_org(orgs[i], 10000000000);
		make_endpoint(&eps[i], orgs[i], WH_BIT(WH_JOB_CREATED), 1);
	}
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < ORGS; i++)
			new_job(orgs[(i * 7 + r) % ORGS], job, NULL);
	CHECK_EQ(advance(made, 1), ORGS * ROUNDS);
	int per[ORGS] = { 0 };
	for (size_t k = 0; k < made->n; k++) {
		get_delivery(made->v[k], &d);
		int i = 0;
		while (i < ORGS && strcmp(orgs[i], d.org))
			i++;
		CHECK(i < ORGS);
		CHECK_STR(d.endpoint, eps[i].id);
		per[i]++;
	}
	for (int i = 0; i < ORGS; i++)
		CHECK_EQ(per[i], ROUNDS);
}

static void test_map(void)
{
	struct event_rec ev;
	int out[2];
	memset(&ev, 0, sizeof(ev));
	ev.kind = EV_JOB_CREATED;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 1);
	CHECK_EQ(out[0], WH_JOB_CREATED);
	ev.kind = EV_JOB_STATUS;
	ev.status = JOB_RUNNING;
	ev.prev_status = JOB_DISPATCHED;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 1);
	CHECK_EQ(out[0], WH_JOB_STARTED);
	ev.status = JOB_COMPLETE;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 2);
	CHECK(out[0] == WH_JOB_STARTED && out[1] == WH_JOB_COMPLETED);
	ev.prev_status = JOB_RUNNING;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 1);
	CHECK_EQ(out[0], WH_JOB_COMPLETED);
	ev.status = JOB_FAILED;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 1);
	CHECK_EQ(out[0], WH_JOB_FAILED);
	ev.status = JOB_CANCELLED;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 1);
	CHECK_EQ(out[0], WH_JOB_CANCELLED);
	ev.status = JOB_WAITING;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 0);
	ev.status = JOB_DISPATCHED;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 0);
	ev.kind = EV_JOB_PROGRESS;
	ev.status = JOB_RUNNING;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 0);
	ev.kind = EV_BALANCE;
	CHECK_EQ(outbox_map(&ev, NULL, 0, out), 0);
	CHECK_EQ(outbox_map(&ev, "{\"low\":true}", 12, out), 1);
	CHECK_EQ(out[0], WH_BALANCE_LOW);
	CHECK_EQ(outbox_map(&ev, "{\"low\":false}", 13, out), 0);
	for (int e = 1; e < WH_EVENT_MAX; e++)
		CHECK_EQ(wh_event_parse(wh_event_name(e)), e);
	CHECK_EQ(wh_event_parse("job.running"), 0);
}

static void test_urls(void)
{
	char why[128];
	static const char *const good[] = {
		"https://hooks.example.com/x", "https://example.com:8443/a?b=c#d",
		"https://[2001:4860::8888]/x", "https://8.8.8.8/hook", "https://1a2b.example.de/",
	};
	static const char *const bad[] = {
		"http://hooks.example.com/x", "ftp://example.com/", "https://localhost/x",
		"https://LOCALHOST./x", "https://a.localhost/", "https://printer.local/",
		"https://metadata.google.internal/", "https://127.0.0.1/", "https://10.1.2.3/",
		"https://172.20.0.1/", "https://192.168.1.1/", "https://169.254.169.254/latest",
		"https://100.100.100.200/", "https://0.0.0.0/", "https://2130706433/",
		"https://0x7f.1/", "https://017700000001/", "https://[::1]/", "https://[::]/",
		"https://[fe80::1]/", "https://[fd00::1]/", "https://[::ffff:127.0.0.1]/",
		"https://224.0.0.1/", "https://user:pw@example.com/", "https://exa mple.com/",
		"https://example.com:0/", "https://example.com:70000/", "https:///x",
		"https://1.2.3.4.5/", "https://ex\xc3\xa4mple.com/",
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		if (wh_url_check(good[i], 0, why, sizeof(why)) != 0)
			fprintf(stderr, "refused %s: %s\n", good[i], why);
		CHECK_EQ(wh_url_check(good[i], 0, why, sizeof(why)), 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (wh_url_check(bad[i], 0, why, sizeof(why)) != -EINVAL)
			fprintf(stderr, "accepted %s\n", bad[i]);
		CHECK_EQ(wh_url_check(bad[i], 0, why, sizeof(why)), -EINVAL);
		CHECK(why[0]);
	}
	/* allowPrivateTargets: http and loopback are fine, syntax still checked */
	CHECK_EQ(wh_url_check("http://127.0.0.1:8080/hook", 1, why, sizeof(why)), 0);
	CHECK_EQ(wh_url_check("https://localhost/x", 1, why, sizeof(why)), 0);
	CHECK_EQ(wh_url_check("ftp://127.0.0.1/", 1, why, sizeof(why)), -EINVAL);
	CHECK_EQ(wh_url_check("http://u@127.0.0.1/", 1, why, sizeof(why)), -EINVAL);
}

/* A header's value in rq, or NULL. */
static const char *hdr(const struct wh_request *rq, const char *name)
{
	size_t n = strlen(name);
	for (unsigned i = 0; i < rq->nh; i++)
		if (strncasecmp(rq->hp[i], name, n) == 0 && rq->hp[i][n] == ':')
			return rq->hp[i] + n + 2;
	return NULL;
}

static void build_at(int line, const char *id, int64_t now, struct wh_request *rq, int want)
{
	MDB_txn *t;
	int r;
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	r = outbox_request(&ob, t, id, now, rq);
	store_abort(t);
	if (r != want)
		fprintf(stderr, "line %d: outbox_request: %d, want %d (%s)\n", line, r, want, rq->why);
	CHECK_EQ(r, want);
}
#define build(id, now, rq, want) build_at(__LINE__, id, now, rq, want)

static void verify_both(const struct wh_request *rq, const char *secret, int64_t now, int want)
{
	const char *ts = hdr(rq, "X-Rendobar-Timestamp");
	CHECK(ts && hdr(rq, "webhook-timestamp") && !strcmp(ts, hdr(rq, "webhook-timestamp")));
	CHECK_EQ(whsign_rendobar_verify(secret, ts, rq->body.data, rq->body.len,
					hdr(rq, "X-Rendobar-Signature"), now / 1000), want);
	CHECK_EQ(whsign_std_verify(secret, hdr(rq, "webhook-id"), ts, rq->body.data, rq->body.len,
				   hdr(rq, "webhook-signature"), now / 1000), want);
}

static void outcome(const char *id, uint32_t attempt, int status, int64_t ra, int final,
		    int64_t now, struct wh_next *x)
{
	MDB_txn *t;
	struct wh_outcome o;
	memset(&o, 0, sizeof(o));
	snprintf(o.id, sizeof(o.id), "%s", id);
	o.attempt = attempt;
	o.status = status;
	o.retry_after_s = ra;
	o.final = final;
	CHECK_EQ(store_begin(&st, 0, &t), 0);
	CHECK_EQ(outbox_outcome(&ob, t, &o, now, x), 0);
	CHECK_EQ(store_commit(t), 0);
}

static int has_timer(int64_t due, const char *id, uint32_t attempt)
{
	unsigned char k[64];
	size_t n = strlen(id);
	MDB_txn *t;
	MDB_val v;
	int r;
	be64_put(k, (uint64_t)due);
	k[8] = TIMER_WEBHOOK;
	memcpy(k + 9, id, n);
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	r = store_get(&st, t, DB_TIMERS, k, 9 + n, &v) == 0 && v.mv_size == 4 &&
	    be32_get(v.mv_data) == attempt;
	store_abort(t);
	return r;
}

static int take_count;
static char taken[1000][WH_ID_MAX];
static int take(void *u, const char *id)
{
	(void)u;
	CHECK(take_count < 1000);
	snprintf(taken[take_count++], WH_ID_MAX, "%s", id);
	return 1;
}

/* Due deliveries of an endpoint (after due_now). */
static int taken_of(const char *endpoint)
{
	struct wh_delivery d;
	int n = 0;
	for (int i = 0; i < take_count; i++) {
		get_delivery(taken[i], &d);
		n += !strcmp(d.endpoint, endpoint);
	}
	return n;
}

static int due_now(int64_t now)
{
	MDB_txn *t;
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	take_count = 0;
	CHECK(outbox_due(&ob, t, now, 1000, 10000, take, NULL) >= 0);
	store_abort(t);
	return take_count;
}

static void test_backoff(void)
{
	/* backoffMs 200, backoffMaxMs 1000 */
	CHECK_EQ(outbox_backoff_ms(&cfg, 1, -1, NULL), 200);
	CHECK_EQ(outbox_backoff_ms(&cfg, 2, -1, NULL), 400);
	CHECK_EQ(outbox_backoff_ms(&cfg, 3, -1, NULL), 800);
	CHECK_EQ(outbox_backoff_ms(&cfg, 4, -1, NULL), 1000);
	CHECK_EQ(outbox_backoff_ms(&cfg, 60, -1, NULL), 1000);
	CHECK_EQ(outbox_backoff_ms(&cfg, 1, 0, NULL), 200);	/* smaller Retry-After */
	CHECK_EQ(outbox_backoff_ms(&cfg, 1, 7, NULL), 7000);	/* larger one wins */
	CHECK_EQ(outbox_backoff_ms(&cfg, 1, 10000000, NULL), WH_RETRY_AFTER_MAX_S * 1000LL);
	uint64_t rng = 12345;
	int jittered = 0;
	for (int i = 0; i < 1000; i++) {
		int64_t d1 = outbox_backoff_ms(&cfg, 1, -1, &rng);
		int64_t d3 = outbox_backoff_ms(&cfg, 3, -1, &rng);
		CHECK(d1 >= 200 && d1 <= 250);
		CHECK(d3 >= 800 && d3 <= 1000);
		jittered |= d1 != 200;
	}
	CHECK(jittered);
}

int main(void)
{
	char err[256], job1[32], job2[32], job3[32], job4[32];
	struct wh_endpoint all, fin, off, other, e;
	struct wh_ids made = { 0 };
	struct wh_request rq;
	struct wh_delivery d;
	struct wh_next x;
	int cnt;
	MDB_txn *t;
	uint64_t cur;

	T0 = now_ms();
	CHECK_EQ(config_load_text(&cfg, "{\"webhooks\":{\"backoffMs\":200,\"backoffMaxMs\":1000,"
				  "\"maxAttempts\":3,\"disableAfterFailures\":2}}", err, sizeof(err)), 0);
	snprintf(dir, sizeof(dir), "/tmp/jobring-outbox-XXXXXX");
	CHECK(mkdtemp(dir));
	CHECK_EQ(store_open(&st, dir, 256, 0), 0);
	ob.s = &st;
	ob.cfg = &cfg;
	ob.rng = 99;
	wh_request_init(&rq);

	test_map();
	test_urls();
	test_backoff();

	/* ---- mapping to endpoints, cursor -------------------------------------- */
	make_org(org_a, 10000000000);
	make_org(org_b, 10000000000);
	make_endpoint(&all, org_a, WH_ALL_EVENTS & ~WH_BIT(WH_BALANCE_LOW), 1);
	make_endpoint(&fin, org_a, WH_DEFAULT_EVENTS, 1);
	make_endpoint(&off, org_a, WH_ALL_EVENTS, 0);
	make_endpoint(&other, org_b, WH_ALL_EVENTS, 1);
	{
		struct wh_endpoint l[WH_MAX_ENDPOINTS];
		CHECK_EQ(store_begin(&st, 1, &t), 0);
		CHECK_EQ(wh_endpoint_list(&st, t, org_a, l), 3);
		CHECK_EQ(wh_endpoint_list(&st, t, org_b, l), 1);
		CHECK_STR(l[0].id, other.id);
		store_abort(t);
	}
	/* grants so far (no endpoints subscribed to balance.low yet for org_a
	 * as "all" excludes it): nothing */
	CHECK_EQ(advance(&made, 1), 0);

	new_job(org_a, job1, NULL);
	move(job1, LC_DISPATCHED, 1);
	move(job1, LC_RUNNING, 1);
	move(job1, LC_COMPLETE, 1);
	/* an aborted turn leaves nothing behind */
	CHECK_EQ(advance(&made, 0), 4);
	CHECK_EQ(store_begin(&st, 1, &t), 0);
	CHECK_EQ(wh_delivery_get(&st, t, made.v[0], &d, NULL, NULL), -ENOENT);
	CHECK_EQ(outbox_cursor(&st, t, &cur), 0);
	store_abort(t);
	CHECK_EQ(due_now(T0), 0);
	/* the committed one: created, started, completed for "all"; completed for "fin" */
	CHECK_EQ(advance(&made, 1), 4);
	CHECK_EQ(events_for(&made, all.id, &cnt), WH_BIT(WH_JOB_CREATED) | WH_BIT(WH_JOB_STARTED) |
						       WH_BIT(WH_JOB_COMPLETED));
	CHECK_EQ(cnt, 3);
	CHECK_EQ(events_for(&made, fin.id, &cnt), WH_BIT(WH_JOB_COMPLETED));
	CHECK_EQ(events_for(&made, off.id, &cnt), 0);
	CHECK_EQ(events_for(&made, other.id, &cnt), 0);
	CHECK_EQ(advance(&made, 1), 0);	/* not again */
	CHECK_EQ(due_now(T0), 4);
	CHECK_EQ(due_now(T0 - 1), 0);

	/* dispatched → complete: started is made up; failed; cancelled; other org */
	new_job(org_a, job2, NULL);
	move(job2, LC_DISPATCHED, 1);
	move(job2, LC_COMPLETE, 1);
	new_job(org_a, job3, NULL);
	move(job3, LC_DISPATCHED, 1);
	move(job3, LC_FAILED, 1);
	new_job(org_a, job4, NULL);
	move(job4, LC_CANCEL, 0);
	{
		char jb[32];
		new_job(org_b, jb, NULL);
	}
	CHECK_EQ(advance(&made, 1), 3 + 2 + 2 + 3 + 1);
	CHECK_EQ(events_for(&made, all.id, &cnt), WH_ALL_EVENTS & ~WH_BIT(WH_BALANCE_LOW));
	CHECK_EQ(cnt, 7);
	CHECK_EQ(events_for(&made, fin.id, &cnt), WH_DEFAULT_EVENTS);
	CHECK_EQ(cnt, 3);
	CHECK_EQ(events_for(&made, other.id, &cnt), WH_BIT(WH_JOB_CREATED));

	/* ---- the envelope and the headers --------------------------------------------------- */
	{
		const char *failed_id = NULL;
		for (size_t i = 0; i < made.n; i++) {
			get_delivery(made.v[i], &d);
			if (d.event == WH_JOB_FAILED && !strcmp(d.endpoint, fin.id))
				failed_id = made.v[i];
		}
		CHECK(failed_id);
		build(failed_id, T0, &rq, 0);
		CHECK_STR(buf_cstr(&rq.url), fin.url);
		CHECK_STR(hdr(&rq, "Content-Type"), "application/json");
		CHECK_STR(hdr(&rq, "X-Rendobar-Event"), "job.failed");
		CHECK_STR(hdr(&rq, "X-Rendobar-Delivery"), failed_id);
		CHECK_STR(hdr(&rq, "webhook-id"), failed_id);
		CHECK_STR(hdr(&rq, "X-Rendobar-Attempt"), "1");
		CHECK(!hdr(&rq, "X-Rendobar-Signature-Previous"));
		CHECK(!strncmp(hdr(&rq, "X-Rendobar-Signature"), "sha256=", 7));
		CHECK(!strncmp(hdr(&rq, "webhook-signature"), "v1,", 3));
		verify_both(&rq, fin.secret, T0, 0);
		verify_both(&rq, all.secret, T0, -EACCES);
		cJSON *b = cJSON_ParseWithLength(rq.body.data, rq.body.len), *dt;
		CHECK(b);
		CHECK_STR(cJSON_GetObjectItem(b, "version")->valuestring, "1");
		CHECK_STR(cJSON_GetObjectItem(b, "event")->valuestring, "job.failed");
		CHECK_STR(cJSON_GetObjectItem(b, "deliveryId")->valuestring, failed_id);
		CHECK_STR(cJSON_GetObjectItem(b, "orgId")->valuestring, org_a);
		CHECK_STR(cJSON_GetObjectItem(b, "jobId")->valuestring, job3);
		CHECK_EQ((int64_t)cJSON_GetObjectItem(b, "timestamp")->valuedouble, T0);
		dt = cJSON_GetObjectItem(b, "data");
		CHECK_STR(cJSON_GetObjectItem(dt, "jobId")->valuestring, job3);
		CHECK_STR(cJSON_GetObjectItem(dt, "jobType")->valuestring, "sleep");
		CHECK_STR(cJSON_GetObjectItem(dt, "status")->valuestring, "failed");
		dt = cJSON_GetObjectItem(dt, "error");
		CHECK_STR(cJSON_GetObjectItem(dt, "code")->valuestring, "INPUT_FETCH_FAILED");
		CHECK_STR(cJSON_GetObjectItem(dt, "message")->valuestring, "could not fetch \"input\"");
		cJSON_Delete(b);

		/* ---- retries, stale outcomes, maxAttempts (3), disable after 2 ---------------- */
		outcome(failed_id, 1, 500, -1, 0, T0, &x);
		CHECK(!x.stale && !x.failed && !x.delivered);
		CHECK(x.due >= T0 + 200 && x.due <= T0 + 250 && x.attempt == 2);
		CHECK(has_timer(x.due, failed_id, 2));
		get_delivery(failed_id, &d);
		CHECK(d.status == WH_PENDING && d.attempts == 1 && d.last_status == 500 &&
		      d.next_at == x.due);
		int64_t due2 = x.due;
		build(failed_id, T0, &rq, -ESTALE);		/* not due yet */
		outcome(failed_id, 1, 500, -1, 0, T0, &x);	/* the same attempt again */
		CHECK(x.stale);
		build(failed_id, due2, &rq, 0);
		CHECK_STR(hdr(&rq, "X-Rendobar-Attempt"), "2");
		CHECK_STR(hdr(&rq, "webhook-id"), failed_id);	/* same id every attempt */
		outcome(failed_id, 2, 0, 9, 0, T0, &x);		/* timeout with Retry-After 9 s */
		CHECK_EQ(x.due, T0 + 9000);
		outcome(failed_id, 3, 503, -1, 0, T0, &x);
		CHECK(x.failed && !x.due && !x.disabled);
		get_delivery(failed_id, &d);
		CHECK(d.status == WH_FAILED && d.attempts == 3 && d.last_status == 503);
		get_endpoint(fin.id, &e);
		CHECK(e.active && e.failures == 1);

		/* redeliver: pending again, the count goes on; a 2xx resets failures */
		CHECK_EQ(store_begin(&st, 0, &t), 0);
		CHECK_EQ(wh_redeliver(&st, t, failed_id, T0 + 5, &d), 0);
		CHECK_EQ(store_commit(t), 0);
		CHECK(d.status == WH_PENDING && d.next_at == T0 + 5);
		build(failed_id, T0 + 5, &rq, 0);
		CHECK_STR(hdr(&rq, "X-Rendobar-Attempt"), "4");
		outcome(failed_id, 4, 204, -1, 0, T0 + 6, &x);
		CHECK(x.delivered);
		get_delivery(failed_id, &d);
		CHECK(d.status == WH_DELIVERED && d.delivered_at == T0 + 6);
		get_endpoint(fin.id, &e);
		CHECK_EQ(e.failures, 0);
		build(failed_id, T0 + 10, &rq, -ESTALE);
	}
	/* two final failures in a row disable "fin" */
	{
		int finals = 0;
		for (size_t i = 0; i < made.n && finals < 2; i++) {
			get_delivery(made.v[i], &d);
			if (strcmp(d.endpoint, fin.id) || d.status != WH_PENDING)
				continue;
			outcome(d.id, 1, 0, -1, 1, T0, &x);	/* refused target: final at once */
			CHECK(x.failed);
			finals++;
			CHECK_EQ(x.disabled, finals == 2);
		}
		CHECK_EQ(finals, 2);
		get_endpoint(fin.id, &e);
		CHECK(!e.active && e.disabled == WH_DISABLED_FAILURES);
	}
	/* a 410 disables at once; the pending ones of a disabled endpoint are refused */
	{
		const char *a1 = NULL, *a2 = NULL;
		for (size_t i = 0; i < made.n; i++) {
			get_delivery(made.v[i], &d);
			if (strcmp(d.endpoint, all.id) || d.status != WH_PENDING)
				continue;
			if (!a1)
				a1 = made.v[i];
			else if (!a2)
				a2 = made.v[i];
		}
		CHECK(a1 && a2);
		outcome(a1, 1, 410, -1, 0, T0, &x);
		CHECK(x.failed && x.disabled);
		get_endpoint(all.id, &e);
		CHECK(!e.active && e.disabled == WH_DISABLED_GONE);
		build(a2, T0, &rq, -EPERM);
		CHECK_STR(rq.why, "endpoint disabled");
		CHECK_EQ(rq.attempt, 1);
		/* re-enable "all" for the rest */
		e.active = 1;
		e.disabled = WH_ENABLED;
		CHECK_EQ(store_begin(&st, 0, &t), 0);
		CHECK_EQ(wh_endpoint_put(&st, t, &e), 0);
		CHECK_EQ(store_commit(t), 0);
		all = e;
		build(a2, T0, &rq, 0);

		/* ---- the rotation window -------------------------------------------------- */
		char old[WH_SECRET_MAX];
		memcpy(old, e.secret, sizeof(old));
		memcpy(e.prev_secret, e.secret, sizeof(e.prev_secret));
		e.prev_until = T0 + WH_ROTATE_MS;
		CHECK(whsign_new_secret(e.secret, sizeof(e.secret)) > 0);
		CHECK_EQ(store_begin(&st, 0, &t), 0);
		CHECK_EQ(wh_endpoint_put(&st, t, &e), 0);
		CHECK_EQ(store_commit(t), 0);
		build(a2, T0, &rq, 0);
		verify_both(&rq, e.secret, T0, 0);
		CHECK_EQ(whsign_rendobar_verify(old, hdr(&rq, "X-Rendobar-Timestamp"), rq.body.data,
						rq.body.len, hdr(&rq, "X-Rendobar-Signature-Previous"),
						T0 / 1000), 0);
		CHECK_EQ(whsign_std_verify(old, a2, hdr(&rq, "webhook-timestamp"), rq.body.data,
					   rq.body.len, hdr(&rq, "webhook-signature"), T0 / 1000), 0);
		CHECK(strchr(hdr(&rq, "webhook-signature"), ' '));
		/* after 24 h only the new one signs */
		build(a2, T0 + WH_ROTATE_MS + 1, &rq, 0);
		CHECK(!hdr(&rq, "X-Rendobar-Signature-Previous"));
		verify_both(&rq, e.secret, T0 + WH_ROTATE_MS + 1, 0);
		verify_both(&rq, old, T0 + WH_ROTATE_MS + 1, -EACCES);
	}

	/* ---- per-job callbacks ----------------------------------------------------------- */
	{
		char cbj[40], cbn[40], sec[WH_SECRET_MAX];
		const char *signed_cb = "{\"url\":\"https://cb.example.com/done\",\"headers\":"
			"{\"X-Token\":\"abc\",\"X-Rendobar-Event\":\"forged\",\"Content-Type\":\"x\"},"
			"\"verify\":true}";
		new_job(org_b, cbj, signed_cb);
		new_job(org_b, cbn, "{\"url\":\"https://cb.example.com/plain\"}");
		move(cbj, LC_CANCEL, 0);
		move(cbn, LC_DISPATCHED, 1);
		move(cbn, LC_RUNNING, 1);
		move(cbn, LC_COMPLETE, 1);
		CHECK(advance(&made, 1) > 0);
		const char *c1 = NULL, *c2 = NULL;
		int ncb = 0;
		for (size_t i = 0; i < made.n; i++) {
			get_delivery(made.v[i], &d);
			if (!d.callback)
				continue;
			ncb++;
			CHECK(!d.endpoint[0] && !strcmp(d.org, org_b));
			if (!strcmp(d.job, cbj)) {
				c1 = made.v[i];
				CHECK_EQ(d.event, WH_JOB_CANCELLED);
			}
			if (!strcmp(d.job, cbn)) {
				c2 = made.v[i];
				CHECK_EQ(d.event, WH_JOB_COMPLETED);
			}
		}
		CHECK(ncb == 2 && c1 && c2);	/* terminal events only, once each */
		CHECK_EQ(store_begin(&st, 1, &t), 0);
		CHECK_EQ(outbox_callback_secret(&st, t, org_a, 0, sec), -ENOENT);
		CHECK_EQ(outbox_callback_secret(&st, t, org_b, 0, sec), 0);
		CHECK(!strncmp(sec, "whsec_", 6));
		store_abort(t);
		build(c1, T0, &rq, 0);
		CHECK_STR(buf_cstr(&rq.url), "https://cb.example.com/done");
		CHECK_STR(hdr(&rq, "X-Token"), "abc");
		CHECK_STR(hdr(&rq, "X-Rendobar-Event"), "job.cancelled");
		CHECK_STR(hdr(&rq, "Content-Type"), "application/json");
		for (unsigned i = 0; i < rq.nh; i++)
			CHECK(!strstr(rq.hp[i], "forged") && strcmp(rq.hp[i], "Content-Type: x"));
		verify_both(&rq, sec, T0, 0);
		build(c2, T0, &rq, 0);
		CHECK(!hdr(&rq, "X-Rendobar-Signature") && !hdr(&rq, "webhook-signature"));
		CHECK_STR(hdr(&rq, "X-Rendobar-Delivery"), c2);
		cJSON *b = cJSON_ParseWithLength(rq.body.data, rq.body.len);
		cJSON *dt = cJSON_GetObjectItem(b, "data");
		CHECK_STR(cJSON_GetObjectItem(dt, "status")->valuestring, "complete");
		CHECK_EQ((int64_t)cJSON_GetObjectItem(cJSON_GetObjectItem(dt, "cost"), "amount")->valuedouble,
			 500000);
		cJSON_Delete(b);
		/* at most WH_CB_MAX_HEADERS of the callback's headers are sent */
		{
			char many[2048], cbm[40];
			size_t o = (size_t)snprintf(many, sizeof(many),
						    "{\"url\":\"https://cb.example.com/m\",\"headers\":{");
			for (int i = 0; i < WH_CB_MAX_HEADERS + 5; i++)
				o += (size_t)snprintf(many + o, sizeof(many) - o, "%s\"X-H%d\":\"v\"",
						      i ? "," : "", i);
			snprintf(many + o, sizeof(many) - o, "}}");
			new_job(org_b, cbm, many);
			move(cbm, LC_CANCEL, 0);
			advance(&made, 1);
			const char *cm = NULL;
			for (size_t i = 0; i < made.n; i++) {
				get_delivery(made.v[i], &d);
				if (d.callback && !strcmp(d.job, cbm))
					cm = made.v[i];
			}
			CHECK(cm);
			build(cm, T0, &rq, 0);
			int custom = 0;
			for (unsigned i = 0; i < rq.nh; i++)
				custom += !strncmp(rq.hp[i], "X-H", 3);
			CHECK_EQ(custom, WH_CB_MAX_HEADERS);
			CHECK(hdr(&rq, "X-H0") && !hdr(&rq, "X-H20"));
		}
		/* a callback to a private address is refused when not allowed */
		char cbp[40];
		new_job(org_b, cbp, "{\"url\":\"http://127.0.0.1:9/x\"}");
		move(cbp, LC_CANCEL, 0);
		advance(&made, 1);
		const char *c3 = NULL;
		for (size_t i = 0; i < made.n; i++) {
			get_delivery(made.v[i], &d);
			if (d.callback && !strcmp(d.job, cbp))
				c3 = made.v[i];
		}
		CHECK(c3);
		build(c3, T0, &rq, -EPERM);
		CHECK(!strncmp(rq.why, "url ", 4));
	}

	/* ---- balance.low: once per descent ------------------------------------------------------ */
	{
		struct wh_endpoint low;
		struct event_rec ev;
		make_endpoint(&low, org_b, WH_BIT(WH_BALANCE_LOW), 1);
		memset(&ev, 0, sizeof(ev));
		ev.kind = EV_BALANCE;
		memcpy(ev.org, org_b, sizeof(ev.org));
		ev.at = T0;
		ev.amount = 12345;
		static const char *const seq[] = { "{\"low\":true}", "{\"low\":true}", NULL,
						   "{\"low\":true}" };
		static const int want[] = { 1, 0, 0, 1 };
		for (int i = 0; i < 4; i++) {
			CHECK_EQ(store_begin(&st, 0, &t), 0);
			CHECK_EQ(event_append(&st, t, &ev, seq[i], seq[i] ? strlen(seq[i]) : 0, NULL), 0);
			CHECK_EQ(store_commit(t), 0);
			advance(&made, 1);
			CHECK_EQ(events_for(&made, low.id, &cnt), want[i] ? WH_BIT(WH_BALANCE_LOW) : 0);
			CHECK_EQ(cnt, want[i]);
		}
		build(made.v[0], T0, &rq, 0);
		cJSON *b = cJSON_ParseWithLength(rq.body.data, rq.body.len);
		CHECK(cJSON_IsNull(cJSON_GetObjectItem(b, "jobId")));
		CHECK_EQ((int64_t)cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "data"),
					"balance"), "amount")->valuedouble, 12345);
		cJSON_Delete(b);
	}

	/* ---- the due index; deleting an endpoint takes its deliveries ---------------- */
	{
		int64_t first;
		CHECK_EQ(store_begin(&st, 1, &t), 0);
		first = outbox_next_due(&ob, t);
		store_abort(t);
		CHECK(first <= T0 + 10);
		CHECK_EQ(due_now(first - 1), 0);
		CHECK(due_now(INT64_MAX / 2) > 0);
		CHECK(taken_of(all.id) > 0);
		int before = take_count, mine = taken_of(all.id);
		CHECK_EQ(store_begin(&st, 0, &t), 0);
		CHECK_EQ(wh_endpoint_del(&st, t, &all), 0);
		CHECK_EQ(store_commit(t), 0);
		CHECK_EQ(store_begin(&st, 1, &t), 0);
		CHECK_EQ(wh_endpoint_get(&st, t, all.id, &e), -ENOENT);
		{
			struct wh_endpoint l[WH_MAX_ENDPOINTS];
			int n = wh_endpoint_list(&st, t, org_a, l);
			CHECK_EQ(n, 2);
			for (int i = 0; i < n; i++)
				CHECK(strcmp(l[i].id, all.id) != 0);
		}
		store_abort(t);
		CHECK_EQ(due_now(INT64_MAX / 2), before - mine);
		CHECK_EQ(taken_of(all.id), 0);
		for (size_t i = 0; i < made.n; i++) {
			CHECK_EQ(store_begin(&st, 1, &t), 0);
			if (wh_delivery_get(&st, t, made.v[i], &d, NULL, NULL) == 0)
				CHECK(strcmp(d.endpoint, all.id) != 0);
			store_abort(t);
		}
	}

	test_many_orgs(&made);

	wh_request_free(&rq);
	free(made.v);
	store_close(&st);
	config_free(&cfg);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	printf("outbox: ok\n");
	return T_PASS;
}
