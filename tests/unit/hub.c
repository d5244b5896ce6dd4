/* Unit test for the realtime hub: a real LMDB store in a temp dir, the hub on
 * a loop in this process, clients handed over through the real handoff
 * socketpair, raw WebSocket/SSE clients reading what they get. Checks order,
 * org isolation, resume with no gap and no duplicate while events keep being
 * published, the WebSocket init message, the per-job socket (snapshot, only
 * its job), progress, replay truncation, the client limit and bad handoffs. */
#include "jobring/hub.h"
#include "jobring/job.h"
#include "ws_client.h"

#include <cjson/cJSON.h>
#include <signal.h>

static struct loop L;
static struct store ST;
static struct hub *H, *H2;	/* H2: replay_max 3, max_clients 2 */
static int SP[2], SP2[2];	/* handoff socketpairs: intake end [0] */
static uint64_t published;	/* last seq given to hub_publish (both hubs) */

static void pump(void)
{
	CHECK(loop_wait(&L, 2) >= 0);
	if (H)
		hub_tick(H, mono_ns());
	if (H2)
		hub_tick(H2, mono_ns());
}

/* ---- the event log ---------------------------------------------------------- */

static uint64_t add_event(const char *org, int kind, const char *job, int status)
{
	struct event_rec ev;
	MDB_txn *t;
	uint64_t seq;
	const char *data = status == JOB_FAILED ? "{\"code\":\"BOOM\"}" : NULL;

	memset(&ev, 0, sizeof(ev));
	ev.kind = (uint8_t)kind;
	ev.status = (uint8_t)status;
	ev.prev_status = JOB_RUNNING;
	snprintf(ev.org, sizeof(ev.org), "%s", org);
	snprintf(ev.job, sizeof(ev.job), "%s", job ? job : "");
	snprintf(ev.type, sizeof(ev.type), "fake");
	ev.at = now_ms();
	ev.amount = 1230000000;
	ev.progress = kind == EV_JOB_PROGRESS ? 250000 : 0;
	CHECK(store_begin(&ST, 0, &t) == 0);
	CHECK(event_append(&ST, t, &ev, data, data ? strlen(data) : 0, &seq) == 0);
	CHECK(store_commit(t) == 0);
	return seq;
}

/* What the notifier does: read committed events in seq order, publish them. */
static void publish_upto(uint64_t upto)
{
	MDB_txn *t;

	CHECK(store_begin(&ST, 1, &t) == 0);
	for (uint64_t s = published + 1; s <= upto; s++) {
		unsigned char k[8];
		MDB_val v;
		struct event_rec ev;
		be64_put(k, s);
		CHECK(store_get(&ST, t, DB_EVENTS, k, 8, &v) == 0);
		memcpy(&ev, v.mv_data, sizeof(ev));
		hub_publish(H, s, &ev, (const char *)v.mv_data + sizeof(ev), ev.data_len);
		hub_publish(H2, s, &ev, (const char *)v.mv_data + sizeof(ev), ev.data_len);
	}
	store_abort(t);
	published = MAX(published, upto);
}

static uint64_t log_end(void)
{
	MDB_txn *t;
	uint64_t end;
	CHECK(store_begin(&ST, 1, &t) == 0);
	CHECK(store_peek_seq(&ST, t, "event", &end) == 0);
	store_abort(t);
	return end;
}

/* ---- clients ------------------------------------------------------------------- */

static void hand_over(int sock, struct hub *h, struct wsc *cl, int kind, const char *org,
		      const char *job, uint64_t last, const char *left)
{
	struct hub_handoff ho;
	struct hub_stats st0, st;
	int sv[2];

	hub_stats(h, &st0);
	memset(&ho, 0, sizeof(ho));
	ho.kind = (uint32_t)kind;
	snprintf(ho.org, sizeof(ho.org), "%s", org);
	snprintf(ho.job, sizeof(ho.job), "%s", job ? job : "");
	ho.last_event_id = last;
	ho.leftover_len = left ? (uint32_t)strlen(left) : 0;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(hub_handoff_send(sock, sv[0], &ho, left) == 0);
	close(sv[0]);	/* as intake does: the hub has its own */
	wsc_init(cl, sv[1]);
	for (int i = 0;; i++) {
		hub_stats(h, &st);
		if (st.adopted + st.refused > st0.adopted + st0.refused)
			break;
		CHECK(i < WSC_WAIT_PUMPS);
		pump();
	}
}

static void connect_c(struct wsc *cl, int kind, const char *org, const char *job, uint64_t last)
{
	hand_over(SP[0], H, cl, kind, org, job, last, NULL);
}

struct m {
	char type[32], job[32], status[16];
	uint64_t id;
	int snapshot, live;
	double progress;
};

static void parse_json(const char *s, struct m *m)
{
	cJSON *j = cJSON_Parse(s);
	const cJSON *x;

	CHECK(j != NULL);
	memset(m, 0, sizeof(*m));
	x = cJSON_GetObjectItemCaseSensitive(j, "type");
	CHECK(cJSON_IsString(x));
	snprintf(m->type, sizeof(m->type), "%s", x->valuestring);
	x = cJSON_GetObjectItemCaseSensitive(j, "id");
	CHECK(cJSON_IsNumber(x));
	m->id = (uint64_t)x->valuedouble;
	if (cJSON_IsString(x = cJSON_GetObjectItemCaseSensitive(j, "jobId")))
		snprintf(m->job, sizeof(m->job), "%s", x->valuestring);
	if (cJSON_IsString(x = cJSON_GetObjectItemCaseSensitive(j, "status")))
		snprintf(m->status, sizeof(m->status), "%s", x->valuestring);
	if (cJSON_IsNumber(x = cJSON_GetObjectItemCaseSensitive(j, "progress")))
		m->progress = x->valuedouble;
	m->snapshot = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "snapshot"));
	m->live = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "live"));
	cJSON_Delete(j);
}

static void next_ws(struct wsc *cl, struct m *m)
{
	static char out[16384];
	wsc_read_text(cl, out, sizeof(out));
	parse_json(out, m);
}

/* An SSE event: "id: N\nevent: T\ndata: J\n\n" (id optional), comments skipped. */
static void next_sse(struct wsc *cl, struct m *m)
{
	static char out[16384];
	char *id = NULL, *ev = NULL, *data = NULL, *line, *save;

	do
		wsc_read_event(cl, out, sizeof(out));
	while (out[0] == ':');
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "id: ", 4))
			id = line + 4;
		else if (!strncmp(line, "event: ", 7))
			ev = line + 7;
		else if (!strncmp(line, "data: ", 6))
			data = line + 6;
		else
			CHECK(!"an unexpected SSE line");
	}
	CHECK(ev && data);
	parse_json(data, m);
	CHECK_STR(ev, m->type);
	if (id)
		CHECK_EQ(strtoull(id, NULL, 10), m->id);
	else
		CHECK(m->live);	/* only progress goes without an id */
}

static void next_m(struct wsc *cl, int sse, struct m *m)
{
	if (sse)
		next_sse(cl, m);
	else
		next_ws(cl, m);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_live_and_orgs(void)
{
	struct wsc a, b;
	struct m m;
	uint64_t a1, b1, a2, a3, a4;

	connect_c(&a, HUB_SSE, "org_a", NULL, log_end());
	connect_c(&b, HUB_WS, "org_b", NULL, log_end());
	wsc_text(&b, "{\"type\":\"init\",\"lastEventId\":0}");	/* no hold */
	a1 = add_event("org_a", EV_JOB_CREATED, "job_a1", JOB_WAITING);
	b1 = add_event("org_b", EV_JOB_CREATED, "job_b1", JOB_WAITING);
	a2 = add_event("org_a", EV_BALANCE, NULL, 0);
	a3 = add_event("org_a", EV_JOB_STATUS, "job_a1", JOB_FAILED);
	publish_upto(a3);
	next_sse(&a, &m);
	CHECK(m.id == a1 && !strcmp(m.type, "job.created") && !strcmp(m.job, "job_a1"));
	CHECK_STR(m.status, "waiting");
	next_sse(&a, &m);
	CHECK(m.id == a2 && !strcmp(m.type, "balance.updated"));
	next_sse(&a, &m);
	CHECK(m.id == a3 && !strcmp(m.type, "job.status") && !strcmp(m.status, "failed"));
	next_ws(&b, &m);
	CHECK(m.id == b1 && !strcmp(m.job, "job_b1"));
	/* more of b's, then a marker for a: a's next is the marker */
	add_event("org_b", EV_JOB_STATUS, "job_b1", JOB_COMPLETE);
	a4 = add_event("org_a", EV_JOB_STATUS, "job_a1", JOB_CANCELLED);
	publish_upto(a4);
	next_sse(&a, &m);
	CHECK_EQ(m.id, a4);
	next_ws(&b, &m);
	CHECK_EQ(m.id, a4 - 1);
	wsc_close(&a);
	wsc_close(&b);
	printf("live: in order, formatted per type, each org sees only its own: ok\n");
}

/* A whole message waiting in the client's buffer? */
static int has_message(const struct wsc *c, int sse)
{
	const unsigned char *p = (const unsigned char *)c->in.data;
	size_t len, h = 2;

	if (sse)
		return c->in.data && memmem(c->in.data, c->in.len, "\n\n", 2) != NULL;
	if (c->in.len < 2)
		return 0;
	len = p[1] & 0x7f;
	if (len == 126) {
		if (c->in.len < 4)
			return 0;
		len = (size_t)p[2] << 8 | p[3];
		h = 4;
	}
	CHECK(len != 127);
	return c->in.len >= h + len;
}

/* The next message while the notifier lags: publish one more committed
 * event each time the client has nothing to read. */
static void next_lagging(struct wsc *c, int sse, struct m *m)
{
	for (int i = 0; !has_message(c, sse); i++) {
		CHECK(i < WSC_WAIT_PUMPS && !c->eof);
		if (published < log_end())
			publish_upto(published + 1);
		wsc_fill(c);
		pump();
	}
	next_m(c, sse, m);
}

/* Resume from `from` while the notifier lags and events keep coming: every
 * org_a event after `from`, once, in order. */
static void resume_case(int sse)
{
	struct wsc c;
	struct m m;
	uint64_t from = 0, want[200], last = 0;
	int nwant = 0, got = 0, added = 0;

	for (int i = 0; i < 60; i++) {
		uint64_t s = add_event(i % 3 ? "org_a" : "org_b", EV_JOB_STATUS, "job_x",
				       JOB_RUNNING);
		if (i == 9)
			from = s;
		if (i > 9 && i % 3)
			want[nwant++] = s;
	}
	publish_upto(from + 20);	/* the notifier is behind the log */
	if (sse) {
		connect_c(&c, HUB_SSE, "org_a", NULL, from);
	} else {
		connect_c(&c, HUB_WS, "org_a", NULL, log_end());
		char init[80];
		snprintf(init, sizeof(init), "{\"type\":\"init\",\"lastEventId\":%" PRIu64 "}", from);
		wsc_text(&c, init);
	}
	/* Read slowly, adding events as we go: the replay (bounded by a small
	 * queue), the lagging publishes and the live stream overlap. */
	while (got < nwant) {
		next_lagging(&c, sse, &m);
		CHECK(m.id > last);	/* strictly increasing: no duplicate */
		last = m.id;
		CHECK_EQ(m.id, want[got]);	/* no gap */
		got++;
		if (added < 40 && got % 2 == 0) {
			want[nwant++] = add_event("org_a", EV_JOB_PROGRESS, "job_x", JOB_RUNNING);
			add_event("org_b", EV_JOB_PROGRESS, "job_y", JOB_RUNNING);
			added++;
		}
	}
	publish_upto(log_end());
	for (int i = 0; i < 50; i++)
		pump();
	CHECK(!has_message(&c, sse) && wsc_fill(&c) == 0);	/* nothing more */
	wsc_close(&c);
	printf("resume (%s) from %" PRIu64 ": %d events, no gap, no duplicate, while the log grew: ok\n",
	       sse ? "SSE Last-Event-ID" : "WebSocket init", from, got);
}

static void test_ws_hold_and_late_init(void)
{
	struct wsc c;
	struct m m;
	uint64_t e1, e2;

	/* no init: the hold ends by itself and the client goes live */
	connect_c(&c, HUB_WS, "org_a", NULL, log_end());
	e1 = add_event("org_a", EV_JOB_CREATED, "job_h", JOB_WAITING);
	publish_upto(e1);
	next_ws(&c, &m);
	CHECK_EQ(m.id, e1);
	/* an init after something was sent changes nothing (no replay, no dup) */
	wsc_text(&c, "{\"type\":\"init\",\"lastEventId\":1}");
	for (int i = 0; i < 20; i++)
		pump();
	e2 = add_event("org_a", EV_JOB_STATUS, "job_h", JOB_DISPATCHED);
	publish_upto(e2);
	next_ws(&c, &m);
	CHECK_EQ(m.id, e2);
	/* garbage and other messages are ignored */
	wsc_text(&c, "not json");
	wsc_text(&c, "{\"type\":\"ping\"}");
	e2 = add_event("org_a", EV_JOB_STATUS, "job_h", JOB_RUNNING);
	publish_upto(e2);
	next_ws(&c, &m);
	CHECK_EQ(m.id, e2);
	wsc_close(&c);
	printf("org WebSocket: hold without init, late init ignored: ok\n");
}

static void put_job(const char *id, const char *org, int status)
{
	struct job j;
	MDB_txn *t;

	memset(&j, 0, sizeof(j));
	snprintf(j.id, sizeof(j.id), "%s", id);
	snprintf(j.org, sizeof(j.org), "%s", org);
	snprintf(j.type, sizeof(j.type), "fake");
	j.status = (uint8_t)status;
	j.progress = 500000;
	j.attempt = 1;
	j.created_at = j.updated_at = now_ms();
	CHECK(store_begin(&ST, 0, &t) == 0);
	CHECK(job_put(&ST, t, &j) == 0);
	CHECK(store_commit(t) == 0);
}

static void test_job_socket(void)
{
	struct wsc c, other;
	struct m m;
	struct msg pm;
	char out[256];
	uint64_t p, s;

	put_job("job_cli0000000000000001", "org_a", JOB_RUNNING);
	connect_c(&c, HUB_WS_JOB, "org_a", "job_cli0000000000000001", log_end());
	next_ws(&c, &m);
	CHECK(m.snapshot && !strcmp(m.type, "job.status") && !strcmp(m.status, "running"));
	CHECK(m.progress == 0.5 && m.id == log_end());
	wsc_text(&c, "{\"type\":\"init\",\"lastEventId\":0}");	/* as the CLI does */
	add_event("org_a", EV_JOB_STATUS, "job_other", JOB_COMPLETE);
	add_event("org_a", EV_BALANCE, NULL, 0);
	add_event("org_a", EV_JOB_CREATED, "job_cli0000000000000001", JOB_WAITING);
	p = add_event("org_a", EV_JOB_PROGRESS, "job_cli0000000000000001", JOB_RUNNING);
	s = add_event("org_a", EV_JOB_STATUS, "job_cli0000000000000001", JOB_COMPLETE);
	publish_upto(s);
	next_ws(&c, &m);
	CHECK(m.id == p && !strcmp(m.type, "job.progress"));
	next_ws(&c, &m);
	CHECK(m.id == s && !strcmp(m.status, "complete"));
	/* streamed progress: only for this job, id = the last seq published */
	memset(&pm, 0, sizeof(pm));
	pm.kind = MSG_PROGRESS;
	pm.status = JOB_RUNNING;
	pm.seq = 750000;
	pm.at = now_ms();
	snprintf(pm.org, sizeof(pm.org), "org_a");
	snprintf(pm.job, sizeof(pm.job), "job_other");
	hub_progress(H, &pm);
	snprintf(pm.job, sizeof(pm.job), "job_cli0000000000000001");
	hub_progress(H, &pm);
	next_ws(&c, &m);
	CHECK(m.live && m.progress == 0.75 && m.id == published &&
	      !strcmp(m.job, "job_cli0000000000000001"));

	/* a job of another org (intake checks too): closed with 1008 */
	connect_c(&other, HUB_WS_JOB, "org_b", "job_cli0000000000000001", log_end());
	wsc_expect_close(&other, 1008, out, sizeof(out));
	wsc_close(&other);
	wsc_close(&c);
	printf("per-job socket: snapshot first, only its job's status/progress, streamed progress: ok\n");
}

static void test_truncate_and_limits(void)
{
	struct wsc c, d, e, f;
	struct m m;
	struct hub_stats st;
	char out[64];
	uint64_t from = log_end(), s = 0;

	for (int i = 0; i < 6; i++)
		s = add_event("org_t", EV_JOB_STATUS, "job_t", JOB_RUNNING);
	publish_upto(s);
	hand_over(SP2[0], H2, &c, HUB_SSE, "org_t", NULL, from, "GET / HTTP/1.1\r\n");
	for (int i = 1; i <= 3; i++) {
		next_sse(&c, &m);
		CHECK_EQ(m.id, from + (uint64_t)i);
	}
	next_sse(&c, &m);
	CHECK(!strcmp(m.type, "replay.truncated") && m.id == s);
	s = add_event("org_t", EV_JOB_STATUS, "job_t", JOB_COMPLETE);
	publish_upto(s);
	next_sse(&c, &m);
	CHECK_EQ(m.id, s);

	/* max_clients 2: the third is refused with close 1013 */
	hand_over(SP2[0], H2, &d, HUB_WS, "org_t", NULL, 0, NULL);
	hand_over(SP2[0], H2, &e, HUB_WS, "org_t", NULL, 0, NULL);
	wsc_expect_close(&e, 1013, out, sizeof(out));
	wsc_expect_eof(&e);
	hub_stats(H2, &st);
	CHECK(st.refused == 1 && st.clients == 2);

	/* a malformed handoff is refused; the hub goes on */
	CHECK(send(SP2[0], "junk", 4, 0) == 4);
	wsc_close(&d);
	for (int i = 0; hub_clients(H2) > 1; i++) {
		CHECK(i < WSC_WAIT_PUMPS);
		pump();
	}
	hand_over(SP2[0], H2, &f, HUB_SSE, "org_t", NULL, 0, NULL);
	hub_stats(H2, &st);
	CHECK(st.refused == 2 && st.clients == 2);
	wsc_close(&e);
	wsc_close(&f);
	CHECK(!c.eof);
	wsc_close(&c);
	printf("replay truncated after replay_max, client limit, malformed handoff: ok\n");
}

int main(void)
{
	struct hub_config cfg = { .max_clients = 64, .max_queue_bytes = 4096, .max_message = 1024,
				  .ping_interval_ms = 3600 * 1000, .replay_max = 1000 };
	char dir[] = "/tmp/jobring-hub-XXXXXX";
	struct hub_stats st;
	struct wsc last;
	int r;

	signal(SIGPIPE, SIG_IGN);
	r = loop_init(&L, 256);
	if (r < 0) {
		fprintf(stderr, "io_uring unavailable: %s\n", strerror(-r));
		return T_SKIP;
	}
	CHECK(mkdtemp(dir));
	CHECK_EQ(store_open(&ST, dir, 64, 0), 0);
	CHECK_EQ(hub_init(&H, &L, &ST, &cfg), 0);
	cfg.replay_max = 3;
	cfg.max_clients = 2;
	CHECK_EQ(hub_init(&H2, &L, &ST, &cfg), 0);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, SP) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, SP2) == 0);
	CHECK_EQ(hub_watch_handoff(H, SP[1]), 0);
	CHECK_EQ(hub_watch_handoff(H, SP[1]), -EBUSY);
	CHECK_EQ(hub_watch_handoff(H2, SP2[1]), 0);

	test_live_and_orgs();
	resume_case(1);
	resume_case(0);
	test_ws_hold_and_late_init();
	test_job_socket();
	test_truncate_and_limits();

	/* closed clients are noticed and forgotten */
	for (int i = 0; hub_clients(H) + hub_clients(H2); i++) {
		CHECK(i < WSC_WAIT_PUMPS);
		pump();
	}
	hub_stats(H, &st);
	CHECK(st.queued == 0 && st.published == published && st.replayed > 0);
	/* hub_free closes whoever is still there */
	connect_c(&last, HUB_SSE, "org_a", NULL, 0);
	CHECK_EQ(hub_clients(H), 1);
	hub_free(H);
	hub_free(H2);
	H = H2 = NULL;
	wsc_expect_eof(&last);
	wsc_close(&last);
	store_close(&ST);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	loop_fini(&L);
	printf("hub: all ok\n");
	return T_PASS;
}
