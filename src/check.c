/* check.c - offline invariant checks over the whole store. */
#include "jobring/check.h"
#include "jobring/job.h"
#include "jobring/lifecycle.h"
#include "jobring/store.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Per-job facts gathered from the ledger and the event log. */
struct jfact {
	char id[32];
	int64_t held_net;	/* holds - captures - releases */
	int terminal_events;
	int status_events;
	int last_status;
	uint64_t last_seq;
};

struct facts {
	struct jfact *v;
	size_t n, cap;
	int sorted;
};

static int fact_cmp(const void *a, const void *b)
{
	return strcmp(((const struct jfact *)a)->id, ((const struct jfact *)b)->id);
}

/* Facts are appended unsorted while scanning, then sorted and merged. */
static struct jfact *fact_add(struct facts *f, const char *id)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 1024;
		f->v = xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	struct jfact *x = &f->v[f->n++];
	memset(x, 0, sizeof(*x));
	snprintf(x->id, sizeof(x->id), "%s", id);
	return x;
}

/* Sort by id and fold duplicates (stable in insertion order for last_*). */
static void fact_fold(struct facts *f)
{
	size_t o = 0;

	f->sorted = 1;
	if (f->n == 0)
		return;
	qsort(f->v, f->n, sizeof(*f->v), fact_cmp);
	for (size_t i = 0; i < f->n; i++) {
		if (o > 0 && strcmp(f->v[o - 1].id, f->v[i].id) == 0) {
			struct jfact *d = &f->v[o - 1], *x = &f->v[i];
			d->held_net += x->held_net;
			d->terminal_events += x->terminal_events;
			d->status_events += x->status_events;
			if (x->last_seq > d->last_seq) {
				d->last_seq = x->last_seq;
				d->last_status = x->last_status;
			}
		} else {
			f->v[o++] = f->v[i];
		}
	}
	f->n = o;
}

static struct jfact *fact_find(struct facts *f, const char *id)
{
	struct jfact key;
	if (f->n == 0)
		return NULL;
	snprintf(key.id, sizeof(key.id), "%s", id);
	return bsearch(&key, f->v, f->n, sizeof(*f->v), fact_cmp);
}

struct org_sum {
	char id[ORG_ID_MAX];
	int64_t balance, held;
	uint64_t entries;
	uint32_t n_waiting, n_active;
};

struct ctx {
	struct store *s;
	MDB_txn *t;
	FILE *out;
	int bad;
	struct facts facts;
	struct org_sum *orgs;
	size_t norgs;
};

__attribute__((format(printf, 2, 3)))
static void bad(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("check: ", c->out);
	vfprintf(c->out, fmt, ap);
	fputc('\n', c->out);
	va_end(ap);
	c->bad++;
}

static struct org_sum *org_find(struct ctx *c, const char *id)
{
	for (size_t i = 0; i < c->norgs; i++)
		if (strcmp(c->orgs[i].id, id) == 0)
			return &c->orgs[i];
	return NULL;
}

static int scan_ledger(struct ctx *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(c->t, c->s->dbi[DB_LEDGER], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct ledger_rec e;
		const char *org = k.mv_data;
		size_t on = strnlen(org, k.mv_size);
		struct org_sum *o;

		if (v.mv_size != sizeof(e) || on + 9 != k.mv_size) {
			bad(c, "ledger entry with a malformed key or value (%zu bytes)", v.mv_size);
			continue;
		}
		memcpy(&e, v.mv_data, sizeof(e));
		{
			char oid[ORG_ID_MAX];
			snprintf(oid, sizeof(oid), "%.*s", (int)on, org);
			if (!(o = org_find(c, oid))) {
				bad(c, "ledger entry for unknown org %s", oid);
				continue;
			}
		}
		o->entries++;
		switch (e.kind) {
		case LEDGER_GRANT:
			o->balance += e.amount;
			break;
		case LEDGER_HOLD:
			o->held += e.amount;
			fact_add(&c->facts, e.job)->held_net += e.amount;
			break;
		case LEDGER_CAPTURE:
			o->balance -= e.amount;
			o->held -= e.amount;
			fact_add(&c->facts, e.job)->held_net -= e.amount;
			break;
		case LEDGER_RELEASE:
			o->held -= e.amount;
			fact_add(&c->facts, e.job)->held_net -= e.amount;
			break;
		default:
			bad(c, "ledger entry of unknown kind %u in org %s", e.kind, o->id);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static int scan_events(struct ctx *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(c->t, c->s->dbi[DB_EVENTS], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct event_rec e;
		struct jfact *f;

		if (k.mv_size != 8 || v.mv_size < sizeof(e)) {
			bad(c, "event with a malformed key or value");
			continue;
		}
		memcpy(&e, v.mv_data, sizeof(e));
		if (e.kind != EV_JOB_CREATED && e.kind != EV_JOB_STATUS)
			continue;
		f = fact_add(&c->facts, e.job);
		f->status_events++;
		f->last_seq = be64_get(k.mv_data);
		f->last_status = e.status;
		if (JOB_BIT(e.status) & JOB_TERMINAL_MASK)
			f->terminal_events++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static int exists(struct ctx *c, enum store_db db, const void *k, size_t n)
{
	MDB_val v;
	return store_get(c->s, c->t, db, k, n, &v) == 0;
}

static int scan_jobs(struct ctx *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(c->t, c->s->dbi[DB_JOBS], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct job j;
		unsigned char key[96];
		struct org_sum *o;
		struct jfact *f;
		int terminal;

		if (job_decode(v.mv_data, v.mv_size, &j) < 0) {
			bad(c, "job %.*s: record does not decode", (int)k.mv_size,
			    (const char *)k.mv_data);
			continue;
		}
		if (strlen(j.id) != k.mv_size || memcmp(j.id, k.mv_data, k.mv_size) != 0)
			bad(c, "job %s: stored under another key", j.id);
		terminal = (JOB_BIT(j.status) & JOB_TERMINAL_MASK) != 0;
		if (!exists(c, DB_BY_STATUS, key, job_status_key(key, j.status, j.created_at, j.id)))
			bad(c, "job %s: no by_status entry for status %s", j.id,
			    job_status_name(j.status));
		if (!exists(c, DB_BY_ORG, key, job_org_key(key, j.org, j.created_at, j.id)))
			bad(c, "job %s: no by_org entry", j.id);
		if (!(o = org_find(c, j.org))) {
			bad(c, "job %s: unknown org %s", j.id, j.org);
		} else {
			o->n_waiting += j.status == JOB_WAITING;
			o->n_active += (JOB_BIT(j.status) & JOB_ACTIVE_MASK) != 0;
		}
		if (!(j.flags & JOB_TEST) && terminal == !!(j.flags & JOB_HOLD_OPEN))
			bad(c, "job %s: %s but its hold is %s", j.id, job_status_name(j.status),
			    terminal ? "still open" : "not open");
		if ((j.flags & JOB_TEST) && (j.flags & JOB_HOLD_OPEN))
			bad(c, "job %s: test job with an open hold", j.id);
		f = fact_find(&c->facts, j.id);
		{
			int64_t want = (j.flags & JOB_HOLD_OPEN) ? j.hold : 0;
			int64_t got = f ? f->held_net : 0;
			if (got != want)
				bad(c, "job %s: ledger nets %lld held, expected %lld (%s)", j.id,
				    (long long)got, (long long)want, job_status_name(j.status));
		}
		if (j.cost > j.hold && !(j.flags & JOB_TEST))
			bad(c, "job %s: cost %lld exceeds its hold %lld", j.id, (long long)j.cost,
			    (long long)j.hold);
		if (f && f->status_events > 0) {
			int want = (int)j.retry_count + terminal;
			if (f->terminal_events != want)
				bad(c, "job %s: %d terminal events, expected %d (status %s, %u retries)",
				    j.id, f->terminal_events, want, job_status_name(j.status),
				    j.retry_count);
			if (f->last_status != j.status)
				bad(c, "job %s: last status event says %s, record says %s", j.id,
				    job_status_name(f->last_status), job_status_name(j.status));
		}
		if (!!(j.flags & JOB_IN_DLQ) != exists(c, DB_DLQ, j.id, strlen(j.id)))
			bad(c, "job %s: dlq flag and dlq entry disagree", j.id);
		if ((j.flags & JOB_IN_DLQ) && j.status != JOB_FAILED)
			bad(c, "job %s: in the dlq but %s", j.id, job_status_name(j.status));
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

/* Every index entry must point at a job that matches it. */
static int scan_indexes(struct ctx *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(c->t, c->s->dbi[DB_BY_STATUS], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *p = k.mv_data;
		char id[40];
		struct job j;
		if (k.mv_size < 10 || k.mv_size - 9 >= sizeof(id)) {
			bad(c, "by_status entry with a malformed key");
			continue;
		}
		snprintf(id, sizeof(id), "%.*s", (int)(k.mv_size - 9), (const char *)p + 9);
		if (job_get(c->s, c->t, id, &j) < 0)
			bad(c, "by_status entry for missing job %s", id);
		else if (j.status != p[0] || (uint64_t)j.created_at != be64_get(p + 1))
			bad(c, "by_status entry (%s) for job %s which is %s", job_status_name(p[0]),
			    id, job_status_name(j.status));
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return store_err(rc);

	if ((rc = mdb_cursor_open(c->t, c->s->dbi[DB_BY_ORG], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *p = k.mv_data;
		size_t on = strnlen(p, k.mv_size);
		char id[40], org[ORG_ID_MAX];
		struct job j;
		if (on + 10 > k.mv_size || on >= sizeof(org) || k.mv_size - on - 9 >= sizeof(id)) {
			bad(c, "by_org entry with a malformed key");
			continue;
		}
		snprintf(org, sizeof(org), "%.*s", (int)on, p);
		snprintf(id, sizeof(id), "%.*s", (int)(k.mv_size - on - 9), p + on + 9);
		if (job_get(c->s, c->t, id, &j) < 0)
			bad(c, "by_org entry for missing job %s", id);
		else if (strcmp(j.org, org) != 0 ||
			 ~(uint64_t)j.created_at != be64_get((const unsigned char *)p + on + 1))
			bad(c, "by_org entry (%s) does not match job %s", org, id);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return store_err(rc);

	if ((rc = mdb_cursor_open(c->t, c->s->dbi[DB_DLQ], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char id[40];
		struct job j;
		snprintf(id, sizeof(id), "%.*s", (int)MIN(k.mv_size, 39), (const char *)k.mv_data);
		if (job_get(c->s, c->t, id, &j) < 0)
			bad(c, "dlq entry for missing job %s", id);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return store_err(rc);

	if ((rc = mdb_cursor_open(c->t, c->s->dbi[DB_IDEM], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *p = k.mv_data;
		size_t on = strnlen(p, k.mv_size);
		char id[40];
		struct job j;
		snprintf(id, sizeof(id), "%.*s", (int)MIN(v.mv_size, 39), (const char *)v.mv_data);
		if (job_get(c->s, c->t, id, &j) < 0)
			bad(c, "idempotency key points at missing job %s", id);
		else if (strlen(j.org) != on || memcmp(j.org, p, on) != 0 || on + 1 > k.mv_size ||
			 j.idem.n != k.mv_size - on - 1 || memcmp(j.idem.p, p + on + 1, j.idem.n) != 0)
			bad(c, "idempotency key of org %.*s does not match job %s", (int)on, p, id);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static int load_orgs(struct ctx *c)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(c->t, c->s->dbi[DB_ORGS], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		c->orgs = xrealloc(c->orgs, (c->norgs + 1) * sizeof(*c->orgs));
		memset(&c->orgs[c->norgs], 0, sizeof(*c->orgs));
		snprintf(c->orgs[c->norgs].id, ORG_ID_MAX, "%.*s", (int)MIN(k.mv_size, ORG_ID_MAX - 1),
			 (const char *)k.mv_data);
		c->norgs++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static void check_orgs(struct ctx *c)
{
	for (size_t i = 0; i < c->norgs; i++) {
		struct org_sum *o = &c->orgs[i];
		struct org_rec rec;
		if (org_get(c->s, c->t, o->id, &rec) < 0) {
			bad(c, "org %s: record does not decode", o->id);
			continue;
		}
		if (rec.balance != o->balance)
			bad(c, "org %s: balance %lld but the ledger sums to %lld", o->id,
			    (long long)rec.balance, (long long)o->balance);
		if (rec.held != o->held)
			bad(c, "org %s: held %lld but the ledger sums to %lld", o->id,
			    (long long)rec.held, (long long)o->held);
		if (rec.ledger_seq != o->entries)
			bad(c, "org %s: ledger_seq %llu but %llu entries", o->id,
			    (unsigned long long)rec.ledger_seq, (unsigned long long)o->entries);
		if (rec.n_waiting != o->n_waiting || rec.n_active != o->n_active)
			bad(c, "org %s: counters say %u waiting / %u active, jobs say %u / %u", o->id,
			    rec.n_waiting, rec.n_active, o->n_waiting, o->n_active);
	}
}

int check_store(struct store *s, FILE *out)
{
	struct ctx c = { .s = s, .out = out };
	int r;

	if ((r = store_begin(s, 1, &c.t)) < 0)
		return r;
	if ((r = load_orgs(&c)) < 0 || (r = scan_ledger(&c)) < 0 || (r = scan_events(&c)) < 0)
		goto out;
	fact_fold(&c.facts);
	if ((r = scan_jobs(&c)) < 0 || (r = scan_indexes(&c)) < 0)
		goto out;
	check_orgs(&c);
	r = c.bad;
out:
	store_abort(c.t);
	free(c.facts.v);
	free(c.orgs);
	return r;
}
