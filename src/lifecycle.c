/* lifecycle.c - the state machine of DESIGN.md §1 as compare-and-set moves
 * inside the caller's write transaction.
 *
 * Order inside a move matters for LMDB: the variable fields of the job we
 * read point into the map, and any write may move pages. So each move first
 * builds the new record, writes it with job_put() (which copies), and only
 * then writes indexes, counters, ledger entries and the event, none of which
 * read the variable fields again. */
#include "jobring/lifecycle.h"
#include "jobring/ledger.h"
#include "jobring/metrics.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The table of DESIGN.md §1: legal[from] is the set of `to` statuses. */
static const unsigned legal[JOB_STATUS_MAX] = {
	[JOB_NONE] = JOB_BIT(JOB_WAITING),
	[JOB_WAITING] = JOB_BIT(JOB_WAITING) | JOB_BIT(JOB_DISPATCHED) | JOB_BIT(JOB_FAILED) |
			JOB_BIT(JOB_CANCELLED),
	[JOB_DISPATCHED] = JOB_BIT(JOB_RUNNING) | JOB_BIT(JOB_COMPLETE) | JOB_BIT(JOB_FAILED) |
			   JOB_BIT(JOB_CANCELLED),
	[JOB_RUNNING] = JOB_BIT(JOB_COMPLETE) | JOB_BIT(JOB_FAILED) | JOB_BIT(JOB_CANCELLED),
	[JOB_COMPLETE] = 0,
	[JOB_FAILED] = JOB_BIT(JOB_WAITING),
	[JOB_CANCELLED] = 0,
};

int lc_legal(int from, int to)
{
	if (from < 0 || from >= JOB_STATUS_MAX || to <= 0 || to >= JOB_STATUS_MAX)
		return 0;
	return (legal[from] & JOB_BIT(to)) != 0;
}

static void set_str(char *dst, size_t dsz, const char *src)
{
	snprintf(dst, dsz, "%s", src ? src : "");
}

static struct jstr jstr_of(const char *s)
{
	struct jstr j = { s, s ? (uint32_t)strlen(s) : 0 };
	return j;
}

static void counters_move(struct org_rec *o, int from, int to)
{
	if (from == JOB_WAITING && o->n_waiting)
		o->n_waiting--;
	if ((JOB_BIT(from) & JOB_ACTIVE_MASK) && o->n_active)
		o->n_active--;
	if (to == JOB_WAITING)
		o->n_waiting++;
	if (JOB_BIT(to) & JOB_ACTIVE_MASK)
		o->n_active++;
}

/* Writes the status event: data is a small JSON object (may be NULL). */
static int status_event(struct store *s, MDB_txn *t, const struct job *j, int prev,
			const char *data)
{
	struct event_rec ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = prev == JOB_NONE ? EV_JOB_CREATED : EV_JOB_STATUS;
	ev.status = j->status;
	ev.prev_status = (uint8_t)prev;
	ev.test = (j->flags & JOB_TEST) != 0;
	memcpy(ev.job, j->id, sizeof(ev.job));
	memcpy(ev.org, j->org, sizeof(ev.org));
	memcpy(ev.type, j->type, sizeof(ev.type));
	ev.at = j->updated_at;
	ev.attempt = j->attempt;
	ev.progress = j->progress;
	return event_append(s, t, &ev, data, data ? strlen(data) : 0, NULL);
}

static int balance_event(struct store *s, MDB_txn *t, const struct org_rec *o, int64_t at)
{
	struct event_rec ev;
	const char *data = o->balance - o->held < o->low_balance ? "{\"low\":true}" : NULL;

	memset(&ev, 0, sizeof(ev));
	ev.kind = EV_BALANCE;
	memcpy(ev.org, o->id, sizeof(ev.org));
	ev.at = at;
	ev.amount = o->balance;
	return event_append(s, t, &ev, data, data ? strlen(data) : 0, NULL);
}

int lc_dlq_remove(struct store *s, MDB_txn *t, const char *job_id)
{
	int r = store_del(s, t, DB_DLQ, job_id, strlen(job_id));
	return r == -ENOENT ? 0 : r;
}

static int dlq_add(struct store *s, MDB_txn *t, const char *job_id, int64_t at)
{
	unsigned char v[8];
	be64_put(v, (uint64_t)at);
	return store_put(s, t, DB_DLQ, job_id, strlen(job_id), v, 8);
}

int lc_create(struct store *s, MDB_txn *t, struct job *j)
{
	struct org_rec org;
	int r;

	if ((r = org_get(s, t, j->org, &org)) < 0)
		return r;
	j->status = JOB_WAITING;
	if (!(j->flags & JOB_TEST))
		j->flags |= JOB_HOLD_OPEN;
	else
		j->hold = 0;
	j->updated_at = j->created_at;
	if ((r = job_put(s, t, j)) < 0 ||
	    (r = job_index_status(s, t, j, JOB_WAITING, 1)) < 0 ||
	    (r = job_index_org(s, t, j, 1)) < 0)
		return r;
	if (j->idem.n) {
		unsigned char k[ORG_ID_MAX + 1 + 256];
		size_t on = strnlen(j->org, ORG_ID_MAX - 1);
		if (j->idem.n > 255)
			return -EINVAL;
		memcpy(k, j->org, on);
		k[on] = 0;
		memcpy(k + on + 1, j->idem.p, j->idem.n);
		if ((r = store_put(s, t, DB_IDEM, k, on + 1 + j->idem.n, j->id, strlen(j->id))) < 0)
			return r;
	}
	counters_move(&org, JOB_NONE, JOB_WAITING);
	org.job_count++;
	metrics_job_created(j->type);
	if (j->flags & JOB_HOLD_OPEN)
		r = ledger_apply(s, t, &org, LEDGER_HOLD, j->id, j->hold, j->created_at);
	else
		r = org_put(s, t, &org);
	if (r < 0)
		return r;
	return status_event(s, t, j, JOB_NONE, NULL);
}

/* Resolve a hold: capture `price` (already ≤ hold) and release the rest. */
static int settle(struct store *s, MDB_txn *t, struct org_rec *org, const struct job *j,
		  int64_t price, int64_t at)
{
	int r;

	if (price > 0 && (r = ledger_apply(s, t, org, LEDGER_CAPTURE, j->id, price, at)) < 0)
		return r;
	return ledger_apply(s, t, org, LEDGER_RELEASE, j->id, j->hold - price, at);
}

int lc_apply(struct store *s, MDB_txn *t, const struct lc_move *m, struct job *ret)
{
	struct job j;
	struct org_rec org;
	unsigned from_mask;
	int r, prev, to, exhausted = 0, money = 0, retake = 0;
	char data[512];
	const char *evdata = NULL;
	int64_t price = 0, at;

	if ((r = job_get(s, t, m->job_id, &j)) < 0)
		return r;
	prev = j.status;

	switch (m->op) {
	case LC_DISPATCHED:
	case LC_DISPATCH_FAILED:
		from_mask = JOB_BIT(JOB_WAITING);
		if (m->attempt != j.attempt + 1)
			return -ESTALE;
		break;
	case LC_RUNNING:
		from_mask = JOB_BIT(JOB_DISPATCHED);
		break;
	case LC_PROGRESS:
	case LC_COMPLETE:
	case LC_FAILED:
	case LC_TIMEOUT:
		from_mask = JOB_ACTIVE_MASK;
		break;
	case LC_CANCEL:
		from_mask = JOB_BIT(JOB_WAITING) | JOB_ACTIVE_MASK;
		break;
	case LC_RETRY:
		from_mask = JOB_BIT(JOB_FAILED);
		break;
	default:
		return -EINVAL;
	}
	if (!(JOB_BIT(prev) & from_mask))
		return -ESTALE;
	if (m->attempt && m->op != LC_DISPATCHED && m->op != LC_DISPATCH_FAILED &&
	    m->attempt != j.attempt)
		return -ESTALE;

	/* A job's times never run backwards: `at` was read before the write lock,
	 * and another actor may have committed a later move meanwhile. */
	at = MAX(m->at, j.updated_at);
	j.updated_at = at;
	switch (m->op) {
	case LC_DISPATCHED:
		to = JOB_DISPATCHED;
		j.attempt = m->attempt;
		j.dispatched_at = at;
		j.next_try_at = 0;
		set_str(j.provider, sizeof(j.provider), m->provider);
		set_str(j.run_id, sizeof(j.run_id), m->run_id);
		break;
	case LC_DISPATCH_FAILED:
		j.attempt = m->attempt;
		j.tries++;
		if (j.tries >= m->max_attempts) {
			to = JOB_FAILED;
			exhausted = 1;
			j.completed_at = at;
			j.flags |= JOB_IN_DLQ;
			set_str(j.error_code, sizeof(j.error_code), "DISPATCH_EXHAUSTED");
			set_str(j.failed_phase, sizeof(j.failed_phase), "preparing");
			j.error_message = jstr_of(m->error_message ? m->error_message
					: "every dispatch attempt failed");
			j.error_detail = jstr_of(m->error_detail);
		} else {
			to = JOB_WAITING;
			j.next_try_at = m->next_try_at;
		}
		break;
	case LC_RUNNING:
		to = JOB_RUNNING;
		j.started_at = at;
		break;
	case LC_PROGRESS:
		to = JOB_RUNNING;
		if (prev == JOB_DISPATCHED)
			j.started_at = at;
		j.progress = m->progress > 1000000 ? 1000000 : m->progress;
		if (m->step)
			j.step = jstr_of(m->step);
		break;
	case LC_COMPLETE:
		to = JOB_COMPLETE;
		if (!j.started_at)
			j.started_at = at;
		j.completed_at = at;
		j.progress = 1000000;
		j.compute_ms = m->compute_ms;
		price = (j.flags & JOB_TEST) ? 0 : m->price;
		if (price > j.hold)
			price = j.hold;
		if (price < 0)
			price = 0;
		j.cost = price;
		j.output = jstr_of(m->output);
		break;
	case LC_FAILED:
	case LC_TIMEOUT:
		to = JOB_FAILED;
		j.completed_at = at;
		j.compute_ms = m->compute_ms;
		set_str(j.error_code, sizeof(j.error_code),
			m->op == LC_TIMEOUT ? "PROVIDER_TIMEOUT"
					    : (m->error_code ? m->error_code : "PROVIDER_ERROR"));
		set_str(j.failed_phase, sizeof(j.failed_phase),
			m->failed_phase ? m->failed_phase : "processing");
		j.error_message = jstr_of(m->error_message ? m->error_message
				: m->op == LC_TIMEOUT ? "the provider did not finish in time"
						      : "the provider reported a failure");
		j.error_detail = jstr_of(m->error_detail);
		break;
	case LC_CANCEL:
		to = JOB_CANCELLED;
		j.completed_at = at;
		break;
	case LC_RETRY:
		to = JOB_WAITING;
		j.retry_count++;
		j.tries = 0;
		j.next_try_at = 0;
		j.progress = 0;
		j.completed_at = 0;
		j.dispatched_at = 0;
		j.started_at = 0;
		j.cost = 0;
		j.compute_ms = 0;
		j.error_code[0] = j.failed_phase[0] = j.provider[0] = j.run_id[0] = '\0';
		j.error_message = j.error_detail = j.output = j.step = jstr_of(NULL);
		j.flags &= (uint8_t)~JOB_IN_DLQ;
		if (!(j.flags & JOB_TEST)) {
			j.hold = m->hold;
			j.flags |= JOB_HOLD_OPEN;
		}
		break;
	default:
		return -EINVAL;
	}
	if (to != prev && !lc_legal(prev, to))
		return -ESTALE;
	j.status = (uint8_t)to;

	/* Money: decide here, so j.flags is final before job_put. */
	if ((to == JOB_COMPLETE || to == JOB_FAILED || to == JOB_CANCELLED) &&
	    (j.flags & JOB_HOLD_OPEN)) {
		j.flags &= (uint8_t)~JOB_HOLD_OPEN;
		money = 1;
	}
	retake = m->op == LC_RETRY && (j.flags & JOB_HOLD_OPEN);

	/* Event data: small facts a consumer needs without re-reading the job. */
	if (to == JOB_FAILED) {
		snprintf(data, sizeof(data), "{\"code\":\"%s\"}", j.error_code);
		evdata = data;
	} else if (to == JOB_COMPLETE) {
		snprintf(data, sizeof(data), "{\"cost\":%lld}", (long long)j.cost);
		evdata = data;
	}

	/* From here on the variable fields of j (which may point into the map)
	 * are not read again: job_put copies them first. */
	if ((r = job_put(s, t, &j)) < 0)
		return r;
	if ((r = org_get(s, t, j.org, &org)) < 0)
		return r;
	if (money && (r = settle(s, t, &org, &j, to == JOB_COMPLETE ? price : 0, at)) < 0)
		return r;
	if (retake && (r = ledger_apply(s, t, &org, LEDGER_HOLD, j.id, j.hold, at)) < 0)
		return r;
	if (to != prev) {
		if ((r = job_index_status(s, t, &j, prev, 0)) < 0 ||
		    (r = job_index_status(s, t, &j, to, 1)) < 0)
			return r;
		counters_move(&org, prev, to);
	}
	if ((r = org_put(s, t, &org)) < 0)
		return r;
	if (exhausted && (r = dlq_add(s, t, j.id, at)) < 0)
		return r;
	if (m->op == LC_RETRY && (r = lc_dlq_remove(s, t, j.id)) < 0)
		return r;
	if (to == JOB_DISPATCHED && j.timeout_ms > 0 &&
	    (r = timer_record(s, t, at + j.timeout_ms, TIMER_EXEC, j.id, j.attempt)) < 0)
		return r;
	/* An active job that ends takes its execution deadline with it, so the
	 * timers db holds only live deadlines (it was erased when it fired). */
	if ((JOB_BIT(prev) & JOB_ACTIVE_MASK) && (JOB_BIT(to) & JOB_TERMINAL_MASK) &&
	    j.timeout_ms > 0 && j.dispatched_at &&
	    (r = timer_erase(s, t, j.dispatched_at + j.timeout_ms, TIMER_EXEC, j.id)) < 0)
		return r;
	if (m->op == LC_DISPATCH_FAILED && !exhausted &&
	    (r = timer_record(s, t, j.next_try_at, TIMER_BACKOFF, j.id, j.attempt)) < 0)
		return r;

	if (m->op == LC_PROGRESS) {
		struct event_rec ev;
		if (prev != to && (r = status_event(s, t, &j, prev, NULL)) < 0)
			return r;
		memset(&ev, 0, sizeof(ev));
		ev.kind = EV_JOB_PROGRESS;
		ev.status = j.status;
		ev.test = (j.flags & JOB_TEST) != 0;
		memcpy(ev.job, j.id, sizeof(ev.job));
		memcpy(ev.org, j.org, sizeof(ev.org));
		memcpy(ev.type, j.type, sizeof(ev.type));
		ev.at = at;
		ev.attempt = j.attempt;
		ev.progress = j.progress;
		if ((r = event_append(s, t, &ev, NULL, 0, NULL)) < 0)
			return r;
	} else if (to != prev || m->op == LC_RETRY) {
		if ((r = status_event(s, t, &j, prev, evdata)) < 0)
			return r;
	}
	if (money && !(j.flags & JOB_TEST) && (r = balance_event(s, t, &org, at)) < 0)
		return r;
	if (ret && (r = job_get(s, t, j.id, ret)) < 0)
		return r;
	if (to != prev && (JOB_BIT(to) & JOB_TERMINAL_MASK))
		metrics_job_terminal(j.type, to, j.error_code);
	return exhausted;
}
