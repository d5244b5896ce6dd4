/* notifier.c - the notifier actor's loop: the webhook outbox (outbox.h) and
 * the realtime hub (hub.h), both fed from the event log.
 *
 * One turn:
 *   1. messages: MSG_EVENTS raises the committed seq we know of,
 *      MSG_WEBHOOK_DUE queues a delivery whose retry time came (or that the
 *      API redelivered), MSG_PROGRESS goes straight to the hub;
 *   2. one write transaction (group commit): the next events after the
 *      cursor become deliveries and the cursor moves, and the outcomes of
 *      the attempts that finished are recorded; after the commit the events
 *      go to the hub, the new deliveries are queued and retry times are
 *      armed on the timer wheel (the timers record is in the transaction);
 *   3. queued deliveries are sent (libcurl multi on this loop), at most
 *      MAX_INFLIGHT at once and MAX_PER_ENDPOINT per endpoint (slots freed
 *      by finished attempts are refilled before the commit too, so new
 *      requests travel while it fsyncs);
 *   4. sleep on the doorbell, curl's and the hub's sockets and timers.
 *
 * In memory only: the queue of due deliveries and the set of those queued
 * or in flight. LMDB's deliv_due index is the truth: at start (and every
 * SCAN_EVERY_MS, and when the queue overflowed) every pending delivery that
 * is due is found there, so a delivery in flight when the actor died is
 * sent again with the same id, and a lost wake-up only delays. */
#include "jobring/actor.h"
#include "jobring/curlio.h"
#include "jobring/hub.h"
#include "jobring/log.h"
#include "jobring/metrics.h"
#include "jobring/outbox.h"
#include "jobring/strmap.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENTS_PER_TURN 1024
#define MAX_INFLIGHT 256
#define MAX_PER_ENDPOINT 64
#define QUEUE_MAX 65536
#define EXAMINE_PER_TURN 1024
#define DEFER_PER_TURN 64	/* endpoint at its limit: stop looking after this many */
#define SCAN_EVERY_MS 5000
#define RETRY_MS 1000
#define RESPONSE_MAX 1024

struct call {
	struct notif *n;
	char id[WH_ID_MAX], endpoint[WH_ID_MAX];
	uint32_t attempt;
};

struct evcopy {
	uint64_t seq;
	struct event_rec ev;
	size_t off;		/* data in evdata */
};

struct notif {
	struct actor *a;
	struct curlio *curl;
	struct hub *hub;
	struct outbox ob;
	struct strmap known;	/* delivery id → its struct call in flight, else &mark
				 * (queued, or finished and not yet recorded) */
	struct strmap busy;	/* endpoint id → unsigned: transfers in flight */
	char (*q)[WH_ID_MAX];	/* due deliveries, FIFO */
	size_t qhead, qn, qcap;
	struct wh_outcome *out;	/* finished attempts not yet recorded */
	size_t nout, capout;
	struct wh_next *next;
	struct wh_ids made;
	struct evcopy *evs;
	size_t nevs, capevs;
	struct buf evdata;
	struct wh_request rq;
	uint64_t seen_seq;	/* events up to here are committed */
	uint64_t done_seq;	/* events up to here are consumed */
	int backlog;		/* the last turn stopped at EVENTS_PER_TURN */
	int more;		/* the queue has sendable entries left */
	int scan;		/* look through deliv_due now */
	uint64_t next_scan, retry_at;	/* monotonic ms */
	unsigned inflight;
	uint64_t sent, delivered, failed, retries, disabled;
};

static char mark;

static uint64_t mono_ms(void)
{
	return (uint64_t)mono_ns() / 1000000u;
}

/* ---- the due queue ------------------------------------------------------------ */

static int enqueue(struct notif *n, const char *id, int front)
{
	if (strmap_get(&n->known, id))
		return 0;	/* queued or in flight already */
	if (n->qn == QUEUE_MAX) {
		n->scan = 1;	/* deliv_due still has it */
		return 0;
	}
	if (n->qn == n->qcap) {
		size_t ncap = n->qcap ? n->qcap * 2 : 256;
		char (*nq)[WH_ID_MAX] = xmalloc(ncap * sizeof(*nq));
		for (size_t i = 0; i < n->qn; i++)
			memcpy(nq[i], n->q[(n->qhead + i) % n->qcap], WH_ID_MAX);
		free(n->q);
		n->q = nq;
		n->qcap = ncap;
		n->qhead = 0;
	}
	if (front) {
		n->qhead = (n->qhead + n->qcap - 1) % n->qcap;
		snprintf(n->q[n->qhead], WH_ID_MAX, "%s", id);
	} else {
		snprintf(n->q[(n->qhead + n->qn) % n->qcap], WH_ID_MAX, "%s", id);
	}
	n->qn++;
	strmap_put(&n->known, id, &mark);
	return 1;
}

static void dequeue(struct notif *n, char *id)
{
	memcpy(id, n->q[n->qhead], WH_ID_MAX);
	n->qhead = (n->qhead + 1) % n->qcap;
	n->qn--;
}

static int scan_take(void *user, const char *id)
{
	return enqueue(user, id, 0);
}

/* Every pending delivery that is due and not known yet goes in the queue. */
static void scan(struct notif *n)
{
	MDB_txn *t;
	int r;

	if (!n->scan && mono_ms() < n->next_scan)
		return;
	if (store_begin(&n->a->store, 1, &t) < 0)
		return;
	r = outbox_due(&n->ob, t, now_ms(), (unsigned)(QUEUE_MAX - n->qn), 2 * QUEUE_MAX, scan_take, n);
	store_abort(t);
	if (r > 0)
		log_info("found %d due deliveries", r);
	n->scan = 0;
	n->next_scan = mono_ms() + SCAN_EVERY_MS;
}

/* ---- sending ------------------------------------------------------------------------ */

static unsigned *busy_of(struct notif *n, const char *endpoint)
{
	unsigned *b = strmap_get(&n->busy, endpoint);
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		strmap_put(&n->busy, endpoint, b);
	}
	return b;
}

static struct wh_outcome *outcome_push(struct notif *n, const char *id, uint32_t attempt)
{
	struct wh_outcome *o;
	if (n->nout == n->capout) {
		n->capout = n->capout ? n->capout * 2 : 64;
		n->out = xrealloc(n->out, n->capout * sizeof(*n->out));
		n->next = xrealloc(n->next, n->capout * sizeof(*n->next));
	}
	o = &n->out[n->nout++];
	memset(o, 0, sizeof(*o));
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->attempt = attempt;
	o->retry_after_s = -1;
	return o;
}

static void on_done(const struct curlio_result *r, void *user)
{
	struct call *c = user;
	struct notif *n = c->n;
	struct wh_outcome *o = outcome_push(n, c->id, c->attempt);

	if (r->code == 0) {
		o->status = r->status;
		o->retry_after_s = r->retry_after_s;
		if (r->status / 100 != 2)
			snprintf(o->error, sizeof(o->error), "receiver answered %d", r->status);
	} else {
		snprintf(o->error, sizeof(o->error), "%s", r->code == 28 ? "timed out" : r->error);
		o->final = strcmp(r->error, "refused: private address") == 0;
	}
	strmap_put(&n->known, c->id, &mark);
	if (c->endpoint[0]) {
		unsigned *b = busy_of(n, c->endpoint);
		if (*b)
			(*b)--;
	}
	n->inflight--;
	n->sent++;
	free(c);
}

/* Send what the queue holds, within the limits. */
static void start_due(struct notif *n)
{
	char id[WH_ID_MAX];
	char (*deferred)[WH_ID_MAX] = NULL;
	size_t ndef = 0, examined = 0;
	int64_t now = now_ms();
	MDB_txn *t;
	int r;

	n->more = 0;
	if (!n->qn || n->inflight >= MAX_INFLIGHT || store_begin(&n->a->store, 1, &t) < 0)
		return;
	while (n->qn && n->inflight < MAX_INFLIGHT && examined++ < EXAMINE_PER_TURN &&
	       ndef < DEFER_PER_TURN) {
		struct wh_delivery d;
		unsigned *b = NULL;
		dequeue(n, id);
		/* the endpoint's limit first: building a request costs two HMACs */
		if (wh_delivery_get(&n->a->store, t, id, &d, NULL, NULL) == 0 && d.endpoint[0] &&
		    d.status == WH_PENDING && *(b = busy_of(n, d.endpoint)) >= MAX_PER_ENDPOINT) {
			if (!deferred)
				deferred = xmalloc(DEFER_PER_TURN * sizeof(*deferred));
			memcpy(deferred[ndef++], id, WH_ID_MAX);
			continue;
		}
		r = outbox_request(&n->ob, t, id, now, &n->rq);
		if (r == -EPERM) {
			struct wh_outcome *o = outcome_push(n, id, n->rq.attempt);
			o->final = 1;
			snprintf(o->error, sizeof(o->error), "%s", n->rq.why);
			continue;
		}
		if (r == -ESTALE || r == -ENOENT || r == -EBADMSG) {
			strmap_del(&n->known, id);	/* done, not due, or gone */
			continue;
		}
		if (r < 0) {
			strmap_del(&n->known, id);
			enqueue(n, id, 1);
			break;
		}
		b = n->rq.endpoint[0] ? busy_of(n, n->rq.endpoint) : NULL;
		struct call *c = xcalloc(1, sizeof(*c));
		struct curlio_req req = {
			.method = CURLIO_POST,
			.url = buf_cstr(&n->rq.url),
			.headers = n->rq.hp,
			.nheaders = n->rq.nh,
			.body = n->rq.body.data,
			.body_len = n->rq.body.len,
			.timeout_ms = (unsigned)n->a->cfg->webhooks.timeout_ms,
			.max_body = RESPONSE_MAX,
			.done = on_done,
			.user = c,
		};
		c->n = n;
		c->attempt = n->rq.attempt;
		memcpy(c->id, id, WH_ID_MAX);
		memcpy(c->endpoint, n->rq.endpoint, WH_ID_MAX);
		if ((r = curlio_start(n->curl, &req)) < 0) {
			free(c);
			if (r == -EAGAIN || r == -ENOMEM) {
				strmap_del(&n->known, id);
				enqueue(n, id, 1);
				break;
			}
			struct wh_outcome *o = outcome_push(n, id, n->rq.attempt);
			o->final = 1;
			snprintf(o->error, sizeof(o->error), "the request cannot be made (%s)", strerror(-r));
			continue;
		}
		if (b)
			(*b)++;
		n->inflight++;
		strmap_put(&n->known, id, c);
	}
	store_abort(t);
	/* deferred ones wait at the back; a finishing transfer wakes us */
	for (size_t i = 0; i < ndef; i++) {
		strmap_del(&n->known, deferred[i]);
		enqueue(n, deferred[i], 0);
	}
	free(deferred);
	/* look again at once only when the examination budget ran out; when
	 * endpoints are at their limit, a finishing transfer wakes us */
	n->more = examined > EXAMINE_PER_TURN && ndef < DEFER_PER_TURN && n->inflight < MAX_INFLIGHT;
}

/* ---- the write transaction of a turn ------------------------------------------------------ */

static void copy_event(void *user, uint64_t seq, const struct event_rec *ev, const char *data,
		       size_t data_len)
{
	struct notif *n = user;
	struct evcopy *c;

	if (!n->hub)
		return;
	if (n->nevs == n->capevs) {
		n->capevs = n->capevs ? n->capevs * 2 : 256;
		n->evs = xrealloc(n->evs, n->capevs * sizeof(*n->evs));
	}
	c = &n->evs[n->nevs++];
	c->seq = seq;
	c->ev = *ev;
	c->off = n->evdata.len;
	buf_append(&n->evdata, data, data_len);
}

static void arm(struct notif *n, const char *id, const struct wh_next *x)
{
	struct msg m;
	memset(&m, 0, sizeof(m));
	m.kind = MSG_TIMER_ARM;
	m.timer_kind = TIMER_WEBHOOK;
	m.attempt = x->attempt;
	m.due = x->due;
	m.at = now_ms();
	snprintf(m.job, sizeof(m.job), "%s", id);
	actor_send(n->a, ACTOR_TIMER, &m);
}

static void turn(struct notif *n)
{
	struct store *s = &n->a->store;
	int64_t now = now_ms();
	uint64_t cursor = 0, head = 0;
	size_t nout = n->nout;
	MDB_txn *t;
	int r, nev = 0;

	if (mono_ms() < n->retry_at || (!nout && !n->backlog && n->seen_seq <= n->done_seq))
		return;
	n->made.n = 0;
	n->nevs = 0;
	buf_reset(&n->evdata);
	if ((r = store_begin(s, 0, &t)) < 0)
		goto failed;
	if ((r = store_peek_seq(s, t, "event", &head)) < 0 ||
	    (r = nev = outbox_advance(&n->ob, t, EVENTS_PER_TURN, now, &n->made, copy_event, n,
				      &cursor)) < 0)
		goto abort;
	for (size_t i = 0; i < nout; i++)
		if ((r = outbox_outcome(&n->ob, t, &n->out[i], now, &n->next[i])) < 0)
			goto abort;
	if ((r = store_commit(t)) < 0)
		goto failed;

	n->backlog = nev == EVENTS_PER_TURN;
	n->done_seq = n->backlog ? cursor : MAX(cursor, head);
	for (size_t i = 0; i < n->nevs; i++)
		hub_publish(n->hub, n->evs[i].seq, &n->evs[i].ev, n->evdata.data + n->evs[i].off,
			    n->evs[i].ev.data_len);
	for (size_t i = 0; i < n->made.n; i++)
		enqueue(n, n->made.v[i], 0);
	for (size_t i = 0; i < nout; i++) {
		const struct wh_next *x = &n->next[i];
		strmap_del(&n->known, n->out[i].id);
		if (x->stale)
			continue;
		if (x->due) {
			arm(n, n->out[i].id, x);
			n->retries++;
		}
		n->delivered += (uint64_t)x->delivered;
		n->failed += (uint64_t)x->failed;
		if (x->delivered) {
			metrics_observe_us(MH_WEBHOOK, (uint64_t)MAX(0, now - x->created_at) * 1000);
			metrics_count("webhook_delivered");
		}
		if (x->failed)
			metrics_count("webhook_failed");
		if (x->disabled)
			metrics_count("webhook_endpoint_disabled");
		if (x->failed)
			log_info("delivery %s failed for good after %u attempts: %s", n->out[i].id,
				 n->out[i].attempt, n->out[i].error[0] ? n->out[i].error : "non-2xx");
		if (x->disabled) {
			n->disabled++;
			log_warn("delivery %s: its endpoint was disabled (%s)", n->out[i].id,
				 n->out[i].status == 410 ? "410 Gone" : "consecutive failures");
		}
	}
	/* outcomes that finished during this turn stay for the next one */
	if (n->nout > nout)
		memmove(n->out, n->out + nout, (n->nout - nout) * sizeof(*n->out));
	n->nout -= nout;
	return;
abort:
	store_abort(t);
failed:
	if (r == -ENOSPC)
		log_error("the store is full (MDB_MAP_FULL): webhooks wait; retrying in %d ms", RETRY_MS);
	else
		log_error("notifier turn failed: %s; retrying in %d ms", strerror(-r), RETRY_MS);
	n->retry_at = mono_ms() + RETRY_MS;
}

/* ---- messages and the loop ------------------------------------------------------------------ */

static struct notif *the;

static void on_msg(struct actor *a, enum actor_id from, const struct msg *m)
{
	struct notif *n = the;
	char id[sizeof(m->job) + 1];

	(void)a;
	switch (m->kind) {
	case MSG_EVENTS:
		n->seen_seq = MAX(n->seen_seq, m->seq);
		break;
	case MSG_WEBHOOK_DUE:
		memcpy(id, m->job, sizeof(m->job));
		id[sizeof(m->job)] = '\0';
		enqueue(n, id, 0);
		break;
	case MSG_PROGRESS:
		if (n->hub)
			hub_progress(n->hub, m);
		break;
	default:
		log_debug("ignored message kind %u from %s", m->kind, actor_name(from));
		break;
	}
}

static int64_t wait_ms(struct notif *n)
{
	int64_t now = mono_ns(), ms = 1000, dl;
	uint64_t mono = mono_ms();

	if (n->retry_at > mono)
		return (int64_t)MIN(n->retry_at - mono, (uint64_t)RETRY_MS);
	if (n->nout || n->backlog || n->more || n->scan || n->seen_seq > n->done_seq)
		return 0;
	if (n->next_scan > mono)
		ms = MIN(ms, (int64_t)(n->next_scan - mono));
	dl = curlio_next_deadline_ns(n->curl);
	if (dl != INT64_MAX)
		ms = MIN(ms, dl <= now ? 0 : (dl - now + 999999) / 1000000);
	if (n->hub && (dl = hub_next_deadline(n->hub)) != INT64_MAX)
		ms = MIN(ms, dl <= now ? 0 : (dl - now + 999999) / 1000000);
	return ms;
}

static int setup(struct notif *n, struct actor *a)
{
	const struct config *cfg = a->cfg;
	struct curlio_config cc = {
		.max_connections = 256,
		.max_host_connections = MAX_PER_ENDPOINT,
		.connect_timeout_ms = (unsigned)MIN(cfg->webhooks.timeout_ms, 5000),
		.default_timeout_ms = (unsigned)cfg->webhooks.timeout_ms,
		.user_agent = "jobring-webhooks/0.1",
		.deny_private = !cfg->webhooks.allow_private_targets,
	};
	struct hub_config hc;
	MDB_txn *t;
	int r;

	memset(n, 0, sizeof(*n));
	n->a = a;
	n->ob.s = &a->store;
	n->ob.cfg = cfg;
	n->ob.rng = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
	strmap_init(&n->known);
	strmap_init(&n->busy);
	buf_init(&n->evdata);
	wh_request_init(&n->rq);
	n->scan = 1;	/* rebuild: every due pending delivery */
	if ((r = curlio_init(&n->curl, &a->loop, &cc)) < 0) {
		log_error("cannot start the HTTP client: %s", strerror(-r));
		return r;
	}
	memset(&hc, 0, sizeof(hc));
	if ((r = hub_init(&n->hub, &a->loop, &a->store, &hc)) < 0) {
		log_error("realtime hub unavailable: %s (webhooks go on)", strerror(-r));
		n->hub = NULL;
	} else if (a->handoff_fd >= 0 && (r = hub_watch_handoff(n->hub, a->handoff_fd)) < 0) {
		log_error("cannot watch realtime handoffs: %s", strerror(-r));
	}
	if ((r = store_begin(&a->store, 1, &t)) < 0)
		return r;
	if ((r = outbox_cursor(&a->store, t, &n->done_seq)) == 0)
		r = store_peek_seq(&a->store, t, "event", &n->seen_seq);
	store_abort(t);
	if (r < 0)
		return r;
	log_info("started: event cursor %llu of %llu%s", (unsigned long long)n->done_seq,
		 (unsigned long long)n->seen_seq,
		 cfg->webhooks.allow_private_targets ? "; private webhook targets allowed" : "");
	return 0;
}

static void teardown(struct notif *n)
{
	size_t pos = 0;
	struct strmap_slot *sl;

	curlio_free(n->curl);	/* abandons transfers: their calls are freed below */
	if (n->hub)
		hub_free(n->hub);
	while ((sl = strmap_next(&n->known, &pos)))
		if (sl->val != &mark)
			free(sl->val);
	pos = 0;
	while ((sl = strmap_next(&n->busy, &pos)))
		free(sl->val);
	strmap_free(&n->busy);
	strmap_free(&n->known);
	free(n->q);
	free(n->out);
	free(n->next);
	free(n->made.v);
	free(n->evs);
	buf_free(&n->evdata);
	wh_request_free(&n->rq);
}

int notifier_main(struct actor *a)
{
	struct notif n;
	int r;

	the = &n;
	if ((r = setup(&n, a)) < 0) {
		teardown(&n);
		return 1;
	}
	while (!actor_stopping) {
		actor_recv(a, on_msg, 4096);
		start_due(&n);	/* refill freed slots; they run during the commit */
		turn(&n);
		scan(&n);
		start_due(&n);	/* what the turn and the scan queued */
		if (n.hub)
			hub_tick(n.hub, mono_ns());
		actor_wait(a, wait_ms(&n));
		curlio_tick(n.curl, mono_ns());
	}
	/* Drain: let attempts in flight finish (bounded) and record them; the
	 * rest stay pending in LMDB and go out again after the restart. */
	for (int64_t end = mono_ns() + 3000000000LL; n.inflight && mono_ns() < end;) {
		actor_wait(a, 10);
		curlio_tick(n.curl, mono_ns());
		turn(&n);
	}
	turn(&n);
	actor_flush(a);
	log_info("drained: %llu attempts, %llu delivered, %llu failed, %llu retries, "
		 "%llu endpoints disabled, %u abandoned in flight", (unsigned long long)n.sent,
		 (unsigned long long)n.delivered, (unsigned long long)n.failed,
		 (unsigned long long)n.retries, (unsigned long long)n.disabled, n.inflight);
	teardown(&n);
	the = NULL;
	return 0;
}
