/* reporter.c - the reporter actor's loop: the provider-facing HTTP API.
 *
 *   POST /provider/jobs/{jobId}/events   Authorization: Bearer {callbackToken}
 *   body {event: running|progress|complete|failed|log, attempt, progress,
 *         step, message, level, output: {files, data}, error: {code, message,
 *         detail}, computeMs}
 *
 * Answers: 200 {"ok":true} applied, 200 {"ignored":true} for a duplicate,
 * stale or late report, 401 bad token, 404 unknown job, 400 malformed.
 * Moves run in the turn's write transaction and are answered after it
 * commits (group commit). Progress of a running job is written at most every
 * PROGRESS_WRITE_MS per job; every report is still streamed to realtime
 * clients through the notifier. */
#include "jobring/actor.h"
#include "jobring/buf.h"
#include "jobring/config.h"
#include "jobring/durable.h"
#include "jobring/httpd.h"
#include "jobring/lifecycle.h"
#include "jobring/log.h"
#include "jobring/metrics.h"
#include "jobring/presign.h"
#include "jobring/report.h"
#include "jobring/strmap.h"
#include "jobring/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_WRITE_MS 250
#define MAX_LOGS_PER_JOB 2000

struct answer {
	struct httpd_req *req;
	int ignored;
};

/* A report whose body and token checked out, written at the turn's end. */
struct checked {
	struct httpd_req *req;
	char job_id[40];
	struct report rp;	/* owned */
};

struct rep {
	struct actor *a;
	struct httpd *http;
	MDB_txn *wtxn;
	struct checked *checked;	/* this turn's reports, not yet written */
	size_t nchecked, capchecked;
	struct answer *pending;
	size_t npending, cappending;
	struct msg *msgs;
	size_t nmsgs, capmsgs;
	struct strmap last_progress;	/* job → (void *)(intptr_t)mono ms of last write */
	struct durable durable;		/* commits waiting for their fdatasync */
	uint64_t applied, ignored;
};

static const char ok_body[] = "{\"ok\":true}";
static const char ignored_body[] = "{\"ignored\":true}";

static void err(struct httpd_req *req, int status, const char *code, const char *message)
{
	httpd_error(req, status, code, message);
}

static void queue_msg(struct rep *r, const struct msg *m)
{
	if (r->nmsgs == r->capmsgs) {
		r->capmsgs = r->capmsgs ? r->capmsgs * 2 : 64;
		r->msgs = xrealloc(r->msgs, r->capmsgs * sizeof(*r->msgs));
	}
	r->msgs[r->nmsgs++] = *m;
}

static void queue_answer(struct rep *r, struct httpd_req *req, int ignored)
{
	if (r->npending == r->cappending) {
		r->cappending = r->cappending ? r->cappending * 2 : 64;
		r->pending = xrealloc(r->pending, r->cappending * sizeof(*r->pending));
	}
	r->pending[r->npending].req = req;
	r->pending[r->npending].ignored = ignored;
	r->npending++;
}

static void job_msg(struct msg *m, int kind, const struct job *j)
{
	memset(m, 0, sizeof(*m));
	m->kind = (uint8_t)kind;
	m->status = j->status;
	m->attempt = j->attempt;
	m->at = now_ms();
	memcpy(m->job, j->id, sizeof(m->job));
	memcpy(m->org, j->org, sizeof(m->org));
	memcpy(m->provider, j->provider, sizeof(m->provider));
}



static int append_log(struct rep *r, MDB_txn *t, struct job *j, const struct report *rp)
{
	const char *level = rp->level ? rp->level : "info";
	unsigned char key[48];
	size_t kn = strlen(j->id);
	struct buf b;
	struct jw w;
	int rc;

	if (j->log_seq >= MAX_LOGS_PER_JOB)
		return 0;
	buf_init(&b);
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_kv_int(&w, "timestamp", now_ms());
	jw_kv_str(&w, "level", level);
	jw_kv_str(&w, "event", "detail");
	jw_kv_str(&w, "message", rp->message ? rp->message : "");
	if (rp->step)
		jw_kv_str(&w, "step", rp->step);
	jw_kv_uint(&w, "attempt", j->attempt);
	jw_obj_end(&w);
	memcpy(key, j->id, kn);
	key[kn] = 0;
	be32_put(key + kn + 1, j->log_seq);
	rc = store_put(&r->a->store, t, DB_LOGS, key, kn + 5, b.data, b.len);
	buf_free(&b);
	if (rc < 0)
		return rc;
	j->log_seq++;
	j->flags |= JOB_HAS_LOGS;
	return job_put(&r->a->store, t, j);
}

/* Parse and authenticate a report now; it is written with the turn's
 * others at its end (report_apply): the write transaction holds the one
 * LMDB writer lock all actors share, so no parsing happens under it. */
static void report(struct rep *r, struct httpd_req *req, const char *job_id)
{
	struct report rp;
	const char *why;
	char token[128];
	size_t tl;
	const char *auth = httpd_header(req, "Authorization", &tl);

	if (report_parse(req->body, req->body_len, &rp, &why) < 0) {
		err(req, 400, "VALIDATION_ERROR", why);
		return;
	}
	if (!auth || tl < 8 || strncasecmp(auth, "Bearer ", 7) || tl - 7 >= sizeof(token)) {
		err(req, 401, "UNAUTHORIZED", "a Bearer callback token is required");
		report_free(&rp);
		return;
	}
	memcpy(token, auth + 7, tl - 7);
	token[tl - 7] = '\0';
	if (presign_callback_verify(r->a->signing_key, strlen(r->a->signing_key), job_id,
				    rp.attempt, token) < 0) {
		err(req, 401, "UNAUTHORIZED", "bad callback token for this job and attempt");
		report_free(&rp);
		return;
	}
	if (r->nchecked == r->capchecked) {
		r->capchecked = r->capchecked ? r->capchecked * 2 : 64;
		r->checked = xrealloc(r->checked, r->capchecked * sizeof(*r->checked));
	}
	r->checked[r->nchecked].req = req;
	snprintf(r->checked[r->nchecked].job_id, sizeof(r->checked[0].job_id), "%s", job_id);
	r->checked[r->nchecked].rp = rp;
	r->nchecked++;
}

static void store_failed(struct httpd_req *req, int rc)
{
	err(req, rc == -ENOSPC ? 507 : 500, rc == -ENOSPC ? "STORAGE_FULL" : "INTERNAL_ERROR",
	    "cannot write now");
}

/* A write failed halfway: abort the turn's transaction; every answer queued
 * for it (none was sent) gets the error, its messages are dropped. */
static void abort_turn(struct rep *r, int rc)
{
	store_abort(r->wtxn);
	r->wtxn = NULL;
	for (size_t i = 0; i < r->npending; i++)
		store_failed(r->pending[i].req, rc);
	r->npending = 0;
	r->nmsgs = 0;
}

/* Write one checked report into the turn's write transaction. No nested
 * transaction per report (LMDB's costs ~3 MB of bookkeeping each): lc_apply
 * refuses a stale move before it writes anything, and a write that fails
 * halfway aborts the turn (abort_turn). */
static void report_apply(struct rep *r, struct checked *c)
{
	struct httpd_req *req = c->req;
	const char *job_id = c->job_id;
	struct report *rp = &c->rp;
	uint32_t attempt = rp->attempt;
	struct job j;
	struct lc_move m;
	MDB_txn *t;
	int rc;

	memset(&m, 0, sizeof(m));
	m.job_id = job_id;
	m.attempt = attempt;
	m.at = now_ms();
	switch (rp->event) {
	case REPORT_RUNNING:
		m.op = LC_RUNNING;
		break;
	case REPORT_PROGRESS:
		m.op = LC_PROGRESS;
		m.progress = rp->progress;
		m.step = rp->step;
		break;
	case REPORT_COMPLETE:
		m.op = LC_COMPLETE;
		m.output = rp->output;
		m.compute_ms = rp->compute_ms;
		break;
	case REPORT_FAILED:
		m.op = LC_FAILED;
		m.error_code = rp->code;
		m.error_message = rp->message;
		m.error_detail = rp->detail;
		m.compute_ms = rp->compute_ms;
		break;
	case REPORT_LOG:
		m.op = 0;
		break;
	}

	if (!r->wtxn && (rc = store_begin(&r->a->store, 0, &r->wtxn)) < 0) {
		store_failed(req, rc);
		goto out;
	}
	t = r->wtxn;
	if ((rc = job_get(&r->a->store, t, job_id, &j)) < 0) {
		if (rc == -ENOENT)
			err(req, 404, "NOT_FOUND", "no such job");
		else
			err(req, 500, "INTERNAL_ERROR", "cannot read the job");
		goto out;
	}
	/* The provider may report before the dispatcher has recorded its 2xx:
	 * the token proves we sent this attempt, so record the dispatch here
	 * (the dispatcher fills in the provider when its answer comes). */
	if (j.status == JOB_WAITING && attempt == j.attempt + 1) {
		struct lc_move dm = { .op = LC_DISPATCHED, .job_id = job_id, .attempt = attempt,
				      .at = m.at, .provider = "", .run_id = "" };
		rc = lc_apply(&r->a->store, t, &dm, &j);
		if (rc < 0 && rc != -ESTALE) {
			abort_turn(r, rc);
			store_failed(req, rc);
			goto out;
		}
		if (rc == 0) {
			struct msg am;
			job_msg(&am, MSG_TIMER_ARM, &j);
			am.timer_kind = TIMER_EXEC;
			am.due = j.dispatched_at + j.timeout_ms;
			queue_msg(r, &am);
		}
	}
	if (m.op == 0) {	/* log line */
		if (j.attempt != attempt || (JOB_BIT(j.status) & JOB_TERMINAL_MASK)) {
			queue_answer(r, req, 1);
			goto out;
		}
		rc = append_log(r, t, &j, rp);
	} else {
		if (m.op == LC_PROGRESS && j.status == JOB_RUNNING && j.attempt == attempt) {
			intptr_t last = (intptr_t)strmap_get(&r->last_progress, job_id);
			int64_t now = mono_ns() / 1000000;
			struct msg pm;
			job_msg(&pm, MSG_PROGRESS, &j);
			pm.seq = m.progress;
			queue_msg(r, &pm);
			if (last && now - last < PROGRESS_WRITE_MS) {
				/* streamed, not written: answered at once */
				httpd_respond(req, 200, "application/json", NULL, ok_body, strlen(ok_body));
				r->applied++;
				goto out;
			}
			strmap_put(&r->last_progress, job_id, (void *)(intptr_t)now);
		}
		if (m.op == LC_COMPLETE) {
			const struct jobtype_cfg *type = config_type(r->a->cfg, j.type);
			m.price = type ? config_price(type, m.compute_ms, j.hold) : j.hold;
		}
		rc = lc_apply(&r->a->store, t, &m, &j);
	}
	if (rc == -ESTALE) {	/* refused before any write */
		queue_answer(r, req, 1);	/* after the commit: it may depend on this batch */
		r->ignored++;
		goto out;
	}
	if (rc < 0) {
		abort_turn(r, rc);
		store_failed(req, rc);
		goto out;
	}
	if (j.status == JOB_COMPLETE && j.dispatched_at)
		metrics_observe_us(MH_EXEC, (uint64_t)MAX(0, j.completed_at - j.dispatched_at) * 1000);
	if (JOB_BIT(j.status) & JOB_TERMINAL_MASK) {
		struct msg dm;
		job_msg(&dm, MSG_JOB_DONE, &j);
		queue_msg(r, &dm);
		job_msg(&dm, MSG_TIMER_CANCEL, &j);	/* lc_apply erased its record */
		dm.timer_kind = TIMER_EXEC;
		queue_msg(r, &dm);
		strmap_del(&r->last_progress, job_id);
	}
	r->applied++;
	queue_answer(r, req, 0);
out:
	report_free(rp);
}

static void on_request(struct httpd *h, struct httpd_req *req, void *arg)
{
	struct rep *r = arg;
	char id[40];
	const char *p = req->path;
	size_t n = req->path_len;
	(void)h;

	if (n == 7 && !memcmp(p, "/health", 7)) {
		httpd_respond(req, 200, "application/json", NULL, "{\"status\":\"ok\"}", 15);
		return;
	}
	/* /provider/jobs/{id}/events */
	if (n > 22 && !memcmp(p, "/provider/jobs/", 15) && !memcmp(p + n - 7, "/events", 7)) {
		size_t idn = n - 22;
		if (idn == 0 || idn >= sizeof(id) || memchr(p + 15, '/', idn)) {
			err(req, 404, "NOT_FOUND", "no such job");
			return;
		}
		if (req->method_len != 4 || memcmp(req->method, "POST", 4)) {
			err(req, 405, "METHOD_NOT_ALLOWED", "Use POST");
			return;
		}
		memcpy(id, p + 15, idn);
		id[idn] = '\0';
		report(r, req, id);
		return;
	}
	err(req, 404, "NOT_FOUND", "Route not found");
}

/* The answers and messages of one commit, released once it is durable. */
struct rbatch {
	struct rep *r;
	struct answer *ans;
	size_t nans;
	struct msg *msgs;
	size_t nmsgs;
	uint64_t seq;
};

static void release(struct rep *r, struct answer *ans, size_t nans, struct msg *msgs, size_t nmsgs,
		    uint64_t seq, int rc)
{
	for (size_t i = 0; i < nans; i++) {
		struct answer *a = &ans[i];
		if (rc < 0)
			err(a->req, rc == -ENOSPC ? 507 : 500,
			    rc == -ENOSPC ? "STORAGE_FULL" : "INTERNAL_ERROR", "the commit failed");
		else if (a->ignored)
			httpd_respond(a->req, 200, "application/json", NULL, ignored_body,
				      strlen(ignored_body));
		else
			httpd_respond(a->req, 200, "application/json", NULL, ok_body, strlen(ok_body));
	}
	if (rc == 0 || rc == -EIO) {	/* committed (even if the fsync failed) */
		for (size_t i = 0; i < nmsgs; i++)
			actor_send(r->a, msgs[i].kind == MSG_JOB_DONE ? ACTOR_DISPATCHER
					 : msgs[i].kind == MSG_TIMER_ARM ||
					   msgs[i].kind == MSG_TIMER_CANCEL ? ACTOR_TIMER
									    : ACTOR_NOTIFIER, &msgs[i]);
		if (seq) {
			struct msg ev = { .kind = MSG_EVENTS, .seq = seq, .at = now_ms() };
			actor_send(r->a, ACTOR_NOTIFIER, &ev);
		}
	}
}

static void rbatch_durable(void *arg, int rc)
{
	struct rbatch *b = arg;
	release(b->r, b->ans, b->nans, b->msgs, b->nmsgs, b->seq, rc);
	free(b->ans);
	free(b->msgs);
	free(b);
}

/* Commit the turn's reports; answer them (and release the messages) once
 * the commit is durable: at once with sync=full, or after an io_uring
 * fdatasync while the next turn goes on (STORE_SYNC_DEFERRED). */
static void commit(struct rep *r)
{
	uint64_t seq = 0;
	int rc = 0;

	for (size_t i = 0; i < r->nchecked; i++)
		report_apply(r, &r->checked[i]);
	r->nchecked = 0;
	if (r->wtxn) {
		store_peek_seq(&r->a->store, r->wtxn, "event", &seq);
		rc = store_commit(r->wtxn);
		r->wtxn = NULL;
		if (rc < 0)
			log_error("commit failed: %s", strerror(-rc));
		if (rc == 0 && r->a->store.sync_full == STORE_SYNC_DEFERRED) {
			struct rbatch *b = xcalloc(1, sizeof(*b));
			b->r = r;
			b->ans = r->pending;
			b->nans = r->npending;
			b->msgs = r->msgs;
			b->nmsgs = r->nmsgs;
			b->seq = seq;
			r->pending = NULL;
			r->npending = r->cappending = 0;
			r->msgs = NULL;
			r->nmsgs = r->capmsgs = 0;
			durable_after(&r->durable, &r->a->loop, store_fd(&r->a->store), b, rbatch_durable);
			return;
		}
	}
	/* nothing written (only ignored answers or streamed progress), or sync
	 * full/none: answer now; messages of streamed progress go out too */
	release(r, r->pending, r->npending, r->msgs, r->nmsgs, seq, rc);
	r->npending = 0;
	r->nmsgs = 0;
}

static void on_msg(struct actor *a, enum actor_id from, const struct msg *m)
{
	(void)a;
	(void)from;
	(void)m;
}

int reporter_main(struct actor *a)
{
	struct rep r;
	struct httpd_config hc = {
		.listen_fd = a->listen_fd,
		.max_conns = (unsigned)a->cfg->http.max_connections,
		.header_timeout_ms = a->cfg->http.header_timeout_ms,
		.idle_timeout_ms = a->cfg->http.idle_timeout_ms,
		.max_request_line = 8192,
		.max_header_bytes = (size_t)a->cfg->http.max_header_bytes,
		.max_body = 1 << 20,
		.server_name = "jobring",
		.handler = on_request,
		.arg = &r,
	};
	int rc;

	memset(&r, 0, sizeof(r));
	r.a = a;
	strmap_init(&r.last_progress);
	if ((rc = httpd_init(&r.http, &a->loop, &hc)) < 0) {
		log_error("cannot serve HTTP: %s", strerror(-rc));
		return 1;
	}
	log_info("serving the provider API");
	while (!actor_stopping) {
		int64_t d = httpd_next_deadline(r.http), now = mono_ns();
		actor_recv(a, on_msg, 1024);
		actor_wait(a, d == INT64_MAX ? 1000 : d <= now ? 0 : MIN((d - now) / 1000000 + 1, 1000));
		commit(&r);
		httpd_tick(r.http, mono_ns());
	}
	httpd_stop_accepting(r.http);
	for (int64_t end = mono_ns() + 2000000000LL;
	     (httpd_pending(r.http) || durable_pending(&r.durable)) && mono_ns() < end;) {
		actor_wait(a, 10);
		commit(&r);
	}
	commit(&r);
	for (int64_t end = mono_ns() + 30000000000LL; durable_pending(&r.durable) && mono_ns() < end;)
		actor_wait(a, 10);
	actor_flush(a);
	httpd_free(r.http);
	strmap_free(&r.last_progress);
	free(r.pending);
	free(r.msgs);
	free(r.checked);
	log_info("drained: %llu reports applied, %llu ignored", (unsigned long long)r.applied,
		 (unsigned long long)r.ignored);
	return 0;
}
