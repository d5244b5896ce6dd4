/* dispatcher.c - the dispatcher actor's loop: waiting jobs → providers.
 *
 * In memory (rebuilt from LMDB at every start): the fair queue of waiting
 * jobs, the set of active jobs (dispatched or running) with their provider
 * and org, so capacity and per-org concurrency can be enforced, and each
 * provider's health. Requests go out through libcurl multi on this actor's
 * io_uring loop; their outcomes are applied in one write transaction per
 * turn (group commit), then the timer wheel is asked for the execution
 * timeout or the backoff, and the notifier is told about new events. */
#include "jobring/actor.h"
#include "jobring/curlio.h"
#include "jobring/dispatch.h"
#include "jobring/fairq.h"
#include "jobring/lifecycle.h"
#include "jobring/log.h"
#include "jobring/metrics.h"
#include "jobring/strmap.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POPS_PER_TURN 512
/* Dispatch requests in flight at once. More than the connections curl may
 * open only queue inside curl, whose per-handle bookkeeping grows with the
 * queue (curl_multi_remove_handle was most of this actor's CPU at 4,000). */
#define MAX_INFLIGHT 128
#define RETRY_MS 500	/* after a store error (e.g. a full map) */
#define ORG_CACHE_NS (2LL * 1000000000)

struct provider {
	const struct provider_cfg *cfg;
	unsigned busy;		/* active jobs + dispatches in flight */
	unsigned fails;		/* consecutive failed dispatches */
	int64_t unhealthy_until;	/* mono ns */
};

struct active {
	char org[STRMAP_KEY_MAX];
	int prov;
};

struct orginfo {
	int priority;
	int concurrent;
	unsigned busy;		/* active + in flight */
	int64_t loaded_ns;
};

enum call_kind { CALL_DISPATCH, CALL_CANCEL };

struct call {
	struct disp *d;
	enum call_kind kind;
	char job[32], org[STRMAP_KEY_MAX];
	int prov;
	uint32_t attempt;
};

struct outcome {
	char job[32], org[STRMAP_KEY_MAX];
	int prov;
	uint32_t attempt;
	int ok;
	char run_id[72];
	char why[160];
};

struct disp {
	struct actor *a;
	struct curlio *curl;
	struct fairq q;
	struct strmap active;	/* job → struct active */
	struct strmap orgs;	/* org → struct orginfo */
	struct strmap inflight;	/* job → struct call (dispatches in flight) */
	struct provider prov[CONFIG_MAX_PROVIDERS];
	int nprov;
	struct outcome *out;
	size_t nout, capout;
	char (*parked)[2][STRMAP_KEY_MAX];	/* job, org: no provider free for its type */
	size_t nparked, capparked;
	int capacity_changed;
	uint64_t rng;
	uint64_t dispatched, failed;
	struct buf url, body;
	int64_t retry_at;	/* mono ns: after a store error, the next try */
	int64_t scanned_at;	/* wall ms when the start-up scan began */
	unsigned store_failing;	/* consecutive failed tries (logged once) */
};

/* ---- bookkeeping ----------------------------------------------------------- */

static struct orginfo *org_info(struct disp *d, const char *org, MDB_txn *t)
{
	struct orginfo *o = strmap_get(&d->orgs, org);
	int64_t now = mono_ns();

	if (!o) {
		o = xcalloc(1, sizeof(*o));
		o->concurrent = 1;
		strmap_put(&d->orgs, org, o);
	}
	if (t && now - o->loaded_ns > ORG_CACHE_NS) {
		struct org_rec rec;
		if (org_get(&d->a->store, t, org, &rec) == 0) {
			const struct plan_cfg *p = config_plan(d->a->cfg, rec.plan);
			if (!p)
				p = config_plan(d->a->cfg, "free");
			o->priority = p ? p->priority : 0;
			o->concurrent = p ? p->concurrent_jobs : 1;
			o->loaded_ns = now;
		}
	}
	return o;
}

static void busy_add(struct disp *d, const char *org, int prov)
{
	struct orginfo *o = org_info(d, org, NULL);
	o->busy++;
	if (prov >= 0)
		metrics_provider_busy(prov, ++d->prov[prov].busy);
}

static void busy_del(struct disp *d, const char *org, int prov)
{
	struct orginfo *o = org_info(d, org, NULL);
	if (o->busy)
		o->busy--;
	if (prov >= 0 && d->prov[prov].busy)
		metrics_provider_busy(prov, --d->prov[prov].busy);
	d->capacity_changed = 1;
}

static int prov_index(struct disp *d, const char *id)
{
	for (int i = 0; i < d->nprov; i++)
		if (strcmp(d->prov[i].cfg->id, id) == 0)
			return i;
	return -1;
}

static void active_add(struct disp *d, const char *job, const char *org, int prov)
{
	struct active *x = xcalloc(1, sizeof(*x));
	snprintf(x->org, sizeof(x->org), "%s", org);
	x->prov = prov;
	if (strmap_put(&d->active, job, x))
		abort();	/* a job is active once: the lifecycle guarantees it */
	busy_add(d, org, prov);
}

/* A job left dispatched/running (terminal): free its capacity. */
static void active_del(struct disp *d, const char *job)
{
	struct active *x = strmap_del(&d->active, job);
	if (!x)
		return;
	busy_del(d, x->org, x->prov);
	free(x);
}

/* ---- start: rebuild from LMDB ------------------------------------------------- */

/* 1 if a dispatch of job has answered and waits in d->out for its commit. */
static int outcome_pending(const struct disp *d, const char *job)
{
	for (size_t i = 0; i < d->nout; i++)
		if (!strcmp(d->out[i].job, job))
			return 1;
	return 0;
}

/* Queue the waiting jobs of LMDB (at start, and on MSG_RESCAN: a producer
 * restarted and its last messages may be lost), and with `active` also
 * count the dispatched and running ones as active. Jobs queued, in flight
 * or with an answered dispatch are left alone; a job in backoff comes back
 * when its timer fires. */
static void scan_jobs(struct disp *d, int active_too)
{
	MDB_txn *t;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned char key[1];
	int rc;
	size_t waiting = 0, active = 0;
	int64_t now = now_ms();

	if (store_begin(&d->a->store, 1, &t) < 0)
		return;
	mdb_cursor_open(t, d->a->store.dbi[DB_BY_STATUS], &cur);
	for (int st = JOB_WAITING; st <= (active_too ? JOB_RUNNING : JOB_WAITING); st++) {
		key[0] = (unsigned char)st;
		k.mv_data = key;
		k.mv_size = 1;
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		     rc == 0 && ((unsigned char *)k.mv_data)[0] == st;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			char id[40];
			struct job j;
			snprintf(id, sizeof(id), "%.*s", (int)MIN(k.mv_size - 9, 39),
				 (const char *)k.mv_data + 9);
			if (job_get(&d->a->store, t, id, &j) < 0)
				continue;
			if (st == JOB_WAITING) {
				if (j.next_try_at <= now && !strmap_get(&d->inflight, j.id) &&
				    !outcome_pending(d, j.id)) {
					struct orginfo *o = org_info(d, j.org, t);
					waiting += (size_t)fairq_push(&d->q, j.org, o->priority, j.id, 0);
				}
			} else {
				active_add(d, j.id, j.org, prov_index(d, j.provider));
				active++;
			}
		}
	}
	mdb_cursor_close(cur);
	store_abort(t);
	if (active_too)
		log_info("rebuilt: %zu waiting, %zu active", waiting, active);
	else if (waiting)
		log_info("rescan: %zu waiting job(s) were not queued", waiting);
}

/* ---- sending ------------------------------------------------------------------ */

static void on_done(const struct curlio_result *r, void *user);

static int start_call(struct disp *d, struct call *c, const char *const *hdrs, unsigned nh,
		      unsigned timeout_ms)
{
	struct curlio_req req = {
		.method = CURLIO_POST,
		.url = buf_cstr(&d->url),
		.headers = hdrs,
		.nheaders = nh,
		.body = d->body.data,
		.body_len = d->body.len,
		.timeout_ms = timeout_ms,
		.max_body = 8192,
		.done = on_done,
		.user = c,
	};
	return curlio_start(d->curl, &req);
}

static void send_cancel(struct disp *d, const char *job, uint32_t attempt, const char *provider,
			const char *run_id)
{
	char hdrs[4][512];
	const char *hp[4];
	unsigned nh;
	struct dispatch_ctx dc = { d->a->cfg, d->a->signing_key, now_ms() };
	int p = prov_index(d, provider);
	struct call *c;

	if (p < 0 || dispatch_cancel_build(&dc, d->prov[p].cfg, job, attempt, run_id, &d->url, hdrs,
					   &nh, &d->body) < 0)
		return;
	for (unsigned i = 0; i < nh; i++)
		hp[i] = hdrs[i];
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->kind = CALL_CANCEL;
	snprintf(c->job, sizeof(c->job), "%s", job);
	c->prov = p;
	c->attempt = attempt;
	if (start_call(d, c, hp, nh, (unsigned)d->a->cfg->dispatch.timeout_ms) < 0)
		free(c);
}

static int pick_provider(struct disp *d, const char *type)
{
	int64_t now = mono_ns();
	int best = -1;

	for (int i = 0; i < d->nprov; i++) {
		struct provider *p = &d->prov[i];
		if (!config_provider_serves(p->cfg, type) || p->busy >= (unsigned)p->cfg->capacity ||
		    p->unhealthy_until > now)
			continue;
		if (best < 0 || p->busy < d->prov[best].busy)
			best = i;
	}
	return best;
}

static int any_capacity(struct disp *d)
{
	int64_t now = mono_ns();
	for (int i = 0; i < d->nprov; i++)
		if (d->prov[i].busy < (unsigned)d->prov[i].cfg->capacity &&
		    d->prov[i].unhealthy_until <= now)
			return 1;
	return 0;
}

static int org_eligible(void *ctx, const char *org)
{
	struct disp *d = ctx;
	struct orginfo *o = org_info(d, org, NULL);
	return o->busy < (unsigned)o->concurrent;
}

static void park(struct disp *d, const char *job, const char *org)
{
	if (d->nparked == d->capparked) {
		d->capparked = d->capparked ? d->capparked * 2 : 64;
		d->parked = xrealloc(d->parked, d->capparked * sizeof(*d->parked));
	}
	snprintf(d->parked[d->nparked][0], STRMAP_KEY_MAX, "%s", job);
	snprintf(d->parked[d->nparked][1], STRMAP_KEY_MAX, "%s", org);
	d->nparked++;
}

/* Capacity freed or a provider recovered: parked jobs go back to the front. */
static void unpark(struct disp *d)
{
	while (d->nparked) {
		d->nparked--;
		struct orginfo *o = org_info(d, d->parked[d->nparked][1], NULL);
		fairq_push(&d->q, d->parked[d->nparked][1], o->priority, d->parked[d->nparked][0], 1);
	}
	d->capacity_changed = 0;
}

static void dispatch_some(struct disp *d)
{
	char org[STRMAP_KEY_MAX], job[STRMAP_KEY_MAX];
	MDB_txn *t = NULL;
	int pops = 0;

	if (d->capacity_changed)
		unpark(d);
	if (!fairq_len(&d->q) || !any_capacity(d) || d->inflight.n >= MAX_INFLIGHT)
		return;
	if (store_begin(&d->a->store, 1, &t) < 0)
		return;
	/* refresh plan limits of the orgs we may serve */
	while (pops++ < MAX_POPS_PER_TURN && d->inflight.n < MAX_INFLIGHT && any_capacity(d) &&
	       fairq_pop(&d->q, org_eligible, d, org, job)) {
		struct job j;
		struct call *c;
		char hdrs[4][512];
		const char *hp[4];
		unsigned nh;
		int p;
		struct dispatch_ctx dc = { d->a->cfg, d->a->signing_key, now_ms() };

		org_info(d, org, t);
		if (strmap_get(&d->inflight, job) || job_get(&d->a->store, t, job, &j) < 0 ||
		    j.status != JOB_WAITING || j.next_try_at > dc.now)
			continue;	/* stale: moved on, or its backoff timer will bring it back */
		if ((p = pick_provider(d, j.type)) < 0) {
			park(d, j.id, j.org);
			continue;
		}
		if (dispatch_build(&dc, d->prov[p].cfg, &j, j.attempt + 1, &d->url, hdrs, &nh,
				   &d->body) < 0) {
			log_warn("job %s: cannot build its dispatch", j.id);
			continue;
		}
		for (unsigned i = 0; i < nh; i++)
			hp[i] = hdrs[i];
		c = xcalloc(1, sizeof(*c));
		c->d = d;
		c->kind = CALL_DISPATCH;
		snprintf(c->job, sizeof(c->job), "%s", j.id);
		snprintf(c->org, sizeof(c->org), "%s", j.org);
		c->prov = p;
		c->attempt = j.attempt + 1;
		if (start_call(d, c, hp, nh, (unsigned)d->a->cfg->dispatch.timeout_ms) < 0) {
			free(c);
			fairq_push(&d->q, org, org_info(d, org, NULL)->priority, job, 1);
			break;
		}
		strmap_put(&d->inflight, c->job, c);
		busy_add(d, c->org, p);
	}
	store_abort(t);
}

static void on_done(const struct curlio_result *r, void *user)
{
	struct call *c = user;
	struct disp *d = c->d;
	struct outcome *o;

	if (c->kind == CALL_CANCEL) {
		if (r->code || r->status / 100 != 2)
			log_info("cancel of %s at %s: %s %d", c->job, d->prov[c->prov].cfg->id,
				 r->code ? r->error : "status", r->status);
		free(c);
		return;
	}
	strmap_del(&d->inflight, c->job);
	if (d->nout == d->capout) {
		d->capout = d->capout ? d->capout * 2 : 64;
		d->out = xrealloc(d->out, d->capout * sizeof(*d->out));
	}
	o = &d->out[d->nout++];
	memset(o, 0, sizeof(*o));
	memcpy(o->job, c->job, sizeof(o->job));
	memcpy(o->org, c->org, sizeof(o->org));
	o->prov = c->prov;
	o->attempt = c->attempt;
	o->ok = r->code == 0 && r->status / 100 == 2;
	if (o->ok)
		dispatch_parse_run_id(r->body, r->body_len, o->run_id, sizeof(o->run_id));
	else if (r->code)
		snprintf(o->why, sizeof(o->why), "%s", r->error);
	else
		snprintf(o->why, sizeof(o->why), "provider answered %d", r->status);
	free(c);
}

/* ---- outcomes: one write transaction per turn ------------------------------------ */

static void send_arm(struct disp *d, int kind, const struct job *j, int64_t due)
{
	struct msg m;
	memset(&m, 0, sizeof(m));
	m.kind = MSG_TIMER_ARM;
	m.timer_kind = (uint8_t)kind;
	m.attempt = j->attempt;
	m.due = due;
	m.at = now_ms();
	memcpy(m.job, j->id, sizeof(m.job));
	memcpy(m.org, j->org, sizeof(m.org));
	actor_send(d->a, ACTOR_TIMER, &m);
}

static void apply_outcomes(struct disp *d)
{
	MDB_txn *t;
	uint64_t seq = 0;
	int r;

	if (!d->nout || mono_ns() < d->retry_at)
		return;
	if ((r = store_begin(&d->a->store, 0, &t)) < 0) {
		log_error("cannot begin: %s (retrying in %d ms)", strerror(-r), RETRY_MS);
		d->retry_at = mono_ns() + RETRY_MS * 1000000LL;
		return;
	}
	/* Messages are produced only after the commit succeeds. */
	struct { int kind; struct job j; int64_t due; int cancel, reported_first; } *after =
		xcalloc(d->nout, sizeof(*after));
	for (size_t i = 0; i < d->nout; i++) {
		struct outcome *o = &d->out[i];
		struct provider *p = &d->prov[o->prov];
		struct lc_move m = { .job_id = o->job, .attempt = o->attempt, .at = now_ms() };
		struct job j;

		if (o->ok) {
			m.op = LC_DISPATCHED;
			m.provider = p->cfg->id;
			m.run_id = o->run_id;
			p->fails = 0;
		} else {
			m.op = LC_DISPATCH_FAILED;
			m.max_attempts = d->a->cfg->dispatch.max_attempts;
			if (job_get(&d->a->store, t, o->job, &j) == 0)
				m.next_try_at = m.at + dispatch_backoff_ms(d->a->cfg, j.tries + 1u, &d->rng);
			m.error_message = "every dispatch attempt failed";
			m.error_detail = o->why;
			if (++p->fails >= (unsigned)d->a->cfg->dispatch.unhealthy_after &&
			    p->unhealthy_until <= mono_ns()) {
				p->unhealthy_until = mono_ns() + (int64_t)d->a->cfg->dispatch.cooldown_ms * 1000000;
				log_warn("provider %s unhealthy after %u failures; cooling down %d ms",
					 p->cfg->id, p->fails, d->a->cfg->dispatch.cooldown_ms);
			}
		}
		r = lc_apply(&d->a->store, t, &m, &j);
		if (r == -ENOSPC || r == -EIO) {
			/* the txn is unusable now: drop it, keep the outcomes, and
			 * try again later (a full map waits for room, not a spin) */
			store_abort(t);
			free(after);
			if (!d->store_failing++)
				log_error("store error: %s; outcomes kept, retrying every %d ms",
					  strerror(-r), RETRY_MS);
			d->retry_at = mono_ns() + RETRY_MS * 1000000LL;
			return;
		}
		if (r < 0) {
			/* The reporter may have recorded this attempt first (the provider
			 * reported before its 2xx reached us): then it is ours, and only
			 * the provider is missing. Otherwise the job moved on (cancelled
			 * while we dispatched): if the provider took it, tell it to stop. */
			if (o->ok && job_get(&d->a->store, t, o->job, &j) == 0 &&
			    j.attempt == o->attempt && j.status != JOB_WAITING) {
				if (!j.provider[0]) {
					snprintf(j.provider, sizeof(j.provider), "%s", p->cfg->id);
					snprintf(j.run_id, sizeof(j.run_id), "%s", o->run_id);
					if ((r = job_put(&d->a->store, t, &j)) < 0)
						break;
				}
				after[i].reported_first = 1;
				/* cancelled or timed out before we knew the provider: the
				 * cancel could not be sent then, so send it now */
				after[i].cancel = j.status == JOB_CANCELLED ||
						  !strcmp(j.error_code, "PROVIDER_TIMEOUT");
				after[i].j = j;
				after[i].j.inputs.p = after[i].j.params.p = NULL;
				continue;
			}
			after[i].cancel = o->ok;
			continue;
		}
		if (o->ok) {
			after[i].kind = TIMER_EXEC;
			after[i].due = j.dispatched_at + j.timeout_ms;
		} else if (r == 0) {
			after[i].kind = TIMER_BACKOFF;
			after[i].due = j.next_try_at;
		}
		after[i].j = j;
		after[i].j.inputs.p = after[i].j.params.p = NULL;	/* die with the txn */
	}
	store_peek_seq(&d->a->store, t, "event", &seq);
	if ((r = store_commit(t)) < 0) {
		if (!d->store_failing++)
			log_error("commit failed: %s; outcomes kept, retrying every %d ms", strerror(-r),
				  RETRY_MS);
		d->retry_at = mono_ns() + RETRY_MS * 1000000LL;
		free(after);
		return;		/* outcomes stay queued */
	}
	if (d->store_failing) {
		log_info("the store accepts writes again (after %u failed tries)", d->store_failing);
		d->store_failing = 0;
	}
	for (size_t i = 0; i < d->nout; i++) {
		struct outcome *o = &d->out[i];
		busy_del(d, o->org, o->prov);	/* the in-flight slot */
		if (after[i].reported_first) {
			if (JOB_BIT(after[i].j.status) & JOB_ACTIVE_MASK)
				active_add(d, o->job, o->org, o->prov);
			if (after[i].cancel)
				send_cancel(d, o->job, o->attempt, d->prov[o->prov].cfg->id, o->run_id);
			d->dispatched++;
		} else if (after[i].cancel) {
			send_cancel(d, o->job, o->attempt, d->prov[o->prov].cfg->id, o->run_id);
		} else if (after[i].kind == TIMER_EXEC) {
			active_add(d, o->job, o->org, o->prov);
			metrics_observe_us(MH_DISPATCH, (uint64_t)MAX(0, after[i].j.dispatched_at -
							MAX(after[i].j.created_at, after[i].j.next_try_at)) * 1000);
			send_arm(d, TIMER_EXEC, &after[i].j, after[i].due);
			d->dispatched++;
		} else if (after[i].kind == TIMER_BACKOFF) {
			send_arm(d, TIMER_BACKOFF, &after[i].j, after[i].due);
			d->failed++;
		}
	}
	{
		struct msg ev = { .kind = MSG_EVENTS, .seq = seq, .at = now_ms() };
		actor_send(d->a, ACTOR_NOTIFIER, &ev);
	}
	free(after);
	d->nout = 0;
}

/* ---- messages ----------------------------------------------------------------------- */

static struct disp *the;

static void on_msg(struct actor *a, enum actor_id from, const struct msg *m)
{
	struct disp *d = the;
	(void)a;
	(void)from;
	switch (m->kind) {
	case MSG_JOB_WAITING:
		fairq_push(&d->q, m->org, org_info(d, m->org, NULL)->priority, m->job, 0);
		break;
	case MSG_JOB_CANCEL: {
		/* the job ended by cancel or timeout: free its slot, stop the run */
		MDB_txn *t;
		struct job j;
		active_del(d, m->job);
		if (store_begin(&d->a->store, 1, &t) == 0) {
			if (job_get(&d->a->store, t, m->job, &j) == 0 && j.provider[0])
				send_cancel(d, j.id, j.attempt, j.provider, j.run_id);
			store_abort(t);
		}
		break;
	}
	case MSG_JOB_DONE:
		active_del(d, m->job);
		break;
	case MSG_RESCAN:
		/* what a producer lost died with a process that ended before
		 * the producer's restart: our start-up scan, if later, saw it */
		if (m->at > d->scanned_at)
			scan_jobs(d, 0);
		break;
	default:
		break;
	}
}

/* Capacity is freed by MSG_JOB_DONE / MSG_JOB_CANCEL; a message can be lost
 * when its producer is killed between its commit and its ring push. Every
 * few seconds, drop active jobs that LMDB says have finished. */
static void reconcile(struct disp *d)
{
	static int64_t last;
	int64_t now = mono_ns();
	char (*gone)[STRMAP_KEY_MAX] = NULL;
	size_t ngone = 0, pos = 0;
	struct strmap_slot *sl;
	MDB_txn *t;

	if (now - last < 5LL * 1000000000 || !d->active.n)
		return;
	last = now;
	if (store_begin(&d->a->store, 1, &t) < 0)
		return;
	gone = xmalloc(d->active.n * sizeof(*gone));
	while ((sl = strmap_next(&d->active, &pos))) {
		struct job j;
		if (job_get(&d->a->store, t, sl->key, &j) < 0 || !(JOB_BIT(j.status) & JOB_ACTIVE_MASK))
			memcpy(gone[ngone++], sl->key, STRMAP_KEY_MAX);
	}
	store_abort(t);
	for (size_t i = 0; i < ngone; i++)
		active_del(d, gone[i]);
	if (ngone)
		log_info("reconciled %zu finished job(s) whose message was lost", ngone);
	free(gone);
}

static int64_t next_wait_ms(struct disp *d)
{
	int64_t now = mono_ns(), dl = curlio_next_deadline_ns(d->curl), ms = 1000;

	if (d->nout)
		return d->retry_at > now ? MIN(RETRY_MS, (d->retry_at - now) / 1000000 + 1) : 0;
	for (int i = 0; i < d->nprov; i++)
		if (d->prov[i].unhealthy_until > now && d->prov[i].unhealthy_until < now + ms * 1000000)
			ms = (d->prov[i].unhealthy_until - now) / 1000000 + 1;
	if (dl != INT64_MAX)
		ms = MIN(ms, dl <= now ? 0 : (dl - now + 999999) / 1000000);
	return ms;
}

int dispatcher_main(struct actor *a)
{
	struct disp d;
	struct curlio_config cc = {
		.max_connections = 256,
		.max_host_connections = 64,
		.connect_timeout_ms = (unsigned)MIN(a->cfg->dispatch.timeout_ms, 5000),
		.default_timeout_ms = (unsigned)a->cfg->dispatch.timeout_ms,
	};
	int r;

	memset(&d, 0, sizeof(d));
	d.a = a;
	the = &d;
	d.rng = (uint64_t)now_ms() | 1;
	fairq_init(&d.q);
	strmap_init(&d.active);
	strmap_init(&d.orgs);
	strmap_init(&d.inflight);
	buf_init(&d.url);
	buf_init(&d.body);
	for (int i = 0; i < a->cfg->nproviders; i++)
		d.prov[d.nprov++].cfg = &a->cfg->providers[i];
	if ((r = curlio_init(&d.curl, &a->loop, &cc)) < 0) {
		log_error("cannot start the HTTP client: %s", strerror(-r));
		return 1;
	}
	d.scanned_at = now_ms();
	scan_jobs(&d, 1);
	while (!actor_stopping) {
		int64_t wasunhealthy = 0;
		actor_recv(a, on_msg, 4096);
		for (int i = 0; i < d.nprov; i++)
			if (d.prov[i].unhealthy_until && d.prov[i].unhealthy_until <= mono_ns()) {
				d.prov[i].unhealthy_until = 0;
				d.prov[i].fails = 0;
				wasunhealthy = 1;
			}
		if (wasunhealthy)
			d.capacity_changed = 1;
		reconcile(&d);
		dispatch_some(&d);
		actor_wait(a, next_wait_ms(&d));
		curlio_tick(d.curl, mono_ns());
		apply_outcomes(&d);
	}
	/* Drain: let dispatches in flight finish (bounded), record them. */
	for (int64_t end = mono_ns() + 3000000000LL; curlio_active(d.curl) && mono_ns() < end;) {
		actor_wait(a, 10);
		curlio_tick(d.curl, mono_ns());
		apply_outcomes(&d);
	}
	apply_outcomes(&d);
	actor_flush(a);
	curlio_free(d.curl);
	{
		size_t pos = 0;
		struct strmap_slot *s;
		while ((s = strmap_next(&d.active, &pos)))
			free(s->val);
		pos = 0;
		while ((s = strmap_next(&d.orgs, &pos)))
			free(s->val);
		pos = 0;
		while ((s = strmap_next(&d.inflight, &pos)))
			free(s->val);
	}
	strmap_free(&d.active);
	strmap_free(&d.orgs);
	strmap_free(&d.inflight);
	fairq_free(&d.q);
	free(d.out);
	free(d.parked);
	buf_free(&d.url);
	buf_free(&d.body);
	log_info("drained: %llu dispatched, %llu failed attempts", (unsigned long long)d.dispatched,
		 (unsigned long long)d.failed);
	return 0;
}
