/* deadlines.c - durable deadlines on a monotonic wheel, the stuck-job sweep
 * and the retention purge (see deadlines.h for the rules). */
#include "jobring/deadlines.h"
#include "jobring/job.h"
#include "jobring/lifecycle.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define DL_PURGE_WORK 1024	/* deletions (jobs, log lines, events) per purge call */

/* ---- output ------------------------------------------------------------------------- */

void dl_out_free(struct dl_out *o)
{
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static struct msg *out_push(struct dl_out *o, enum actor_id to, int kind)
{
	struct dl_msg *x;

	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->v = xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	x = &o->v[o->n++];
	memset(x, 0, sizeof(*x));
	x->to = to;
	x->m.kind = (uint8_t)kind;
	return &x->m;
}

/* A job message as the intake makes them: the job after the move. */
static void out_job(struct dl_out *o, int kind, const struct job *j, int64_t at)
{
	struct msg *m = out_push(o, ACTOR_DISPATCHER, kind);

	m->status = j->status;
	m->attempt = j->attempt;
	m->at = at;
	memcpy(m->job, j->id, sizeof(m->job));
	memcpy(m->org, j->org, sizeof(m->org));
	memcpy(m->provider, j->provider, sizeof(m->provider));
}

/* ---- the entry table ---------------------------------------------------------------- */

static uint32_t key_hash(int kind, const char *id, uint32_t attempt)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	h = (h ^ (uint32_t)kind) * 16777619u;
	for (int i = 0; i < 4; i++)
		h = (h ^ ((attempt >> (8 * i)) & 0xff)) * 16777619u;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

static struct dl_entry *find(const struct deadlines *d, int kind, const char *id,
			     uint32_t attempt, uint32_t h)
{
	for (struct dl_entry *e = d->bucket[h & (d->nbucket - 1)]; e; e = e->hnext)
		if (e->hash == h && e->kind == kind && e->attempt == attempt &&
		    strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void resize(struct deadlines *d, size_t nb)
{
	struct dl_entry **nv = xcalloc(nb, sizeof(*nv));

	for (size_t i = 0; i < d->nbucket; i++) {
		struct dl_entry *e = d->bucket[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			e->hnext = nv[e->hash & (nb - 1)];
			nv[e->hash & (nb - 1)] = e;
		}
	}
	free(d->bucket);
	d->bucket = nv;
	d->nbucket = nb;
}

static void maybe_shrink(struct deadlines *d)
{
	while (d->nbucket > 64 && d->live < d->nbucket / 4)
		resize(d, d->nbucket / 2);
}

/* Back to the free list (bounded) or to the allocator. Not on the wheel or
 * in the table any more. */
static void entry_put(struct deadlines *d, struct dl_entry *e)
{
	if (d->nfree < DL_FREE_KEEP) {
		e->hnext = d->free;
		d->free = e;
		d->nfree++;
	} else {
		free(e);
	}
}

/* Unlink e from its chain and the wheel, and release it. */
static void entry_drop(struct deadlines *d, struct dl_entry *e)
{
	struct dl_entry **pp = &d->bucket[e->hash & (d->nbucket - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	wheel_cancel(&d->w, &e->link);
	d->live--;
	entry_put(d, e);
}

static void drop_all(struct deadlines *d)
{
	for (size_t i = 0; i < d->nbucket; i++) {
		struct dl_entry *e = d->bucket[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			entry_put(d, e);
		}
		d->bucket[i] = NULL;
	}
	d->live = 0;
}

static uint64_t to_mono(int64_t due_wall, int64_t now_wall, uint64_t now_mono)
{
	if (due_wall <= now_wall)
		return now_mono;
	return wheel_due_after(now_mono, (uint64_t)due_wall - (uint64_t)now_wall);
}

/* Arm (kind, id, attempt) at due_wall unless that key is armed: 1 new or
 * moved earlier, 0 duplicate. id is NUL-terminated, 1..DL_ID_MAX-1 bytes. */
static int insert(struct deadlines *d, int kind, const char *id, uint32_t attempt,
		  int64_t due_wall, int64_t now_wall, uint64_t now_mono)
{
	uint32_t h = key_hash(kind, id, attempt);
	struct dl_entry *e = find(d, kind, id, attempt, h);

	if (e) {
		d->dups++;
		if (due_wall == e->due_wall)
			return 0;
		if (due_wall > e->due_wall) {
			if (!e->also_wall)
				e->also_wall = due_wall;
			return 0;
		}
		e->also_wall = e->due_wall;	/* keep the earlier; erase both */
		e->due_wall = due_wall;
		wheel_arm(&d->w, &e->link, to_mono(due_wall, now_wall, now_mono));
		return 1;
	}
	if ((e = d->free)) {
		d->free = e->hnext;
		d->nfree--;
	} else {
		e = xmalloc(sizeof(*e));
	}
	memset(e, 0, sizeof(*e));
	e->kind = (uint8_t)kind;
	e->attempt = attempt;
	e->hash = h;
	e->due_wall = due_wall;
	memcpy(e->id, id, strnlen(id, DL_ID_MAX - 1));	/* zeroed above: stays terminated */
	e->hnext = d->bucket[h & (d->nbucket - 1)];
	d->bucket[h & (d->nbucket - 1)] = e;
	wheel_arm(&d->w, &e->link, to_mono(due_wall, now_wall, now_mono));
	if (++d->live > d->nbucket)
		resize(d, d->nbucket * 2);
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Over max: keep the entries due before the (max/2)-th smallest due, drop
 * the rest and lower the horizon to that due (their records wait in the db). */
static void shed(struct deadlines *d)
{
	uint64_t *v = xmalloc(d->live * sizeof(*v)), cut;
	size_t n = 0;

	for (size_t i = 0; i < d->nbucket; i++)
		for (struct dl_entry *e = d->bucket[i]; e; e = e->hnext)
			v[n++] = (uint64_t)e->due_wall;
	qsort(v, n, sizeof(*v), cmp_u64);
	cut = v[d->max / 2];
	free(v);
	for (size_t i = 0; i < d->nbucket; i++) {
		struct dl_entry **pp = &d->bucket[i], *e;
		while ((e = *pp)) {
			if ((uint64_t)e->due_wall >= cut) {
				*pp = e->hnext;
				wheel_cancel(&d->w, &e->link);
				d->live--;
				d->shed++;
				entry_put(d, e);
			} else {
				pp = &e->hnext;
			}
		}
	}
	if (cut < d->horizon)
		d->horizon = cut;
	maybe_shrink(d);
}

/* ---- loading from the timers db ----------------------------------------------------- */

/* Parse a timers record. 0, or -EBADMSG for a malformed one. */
static int parse_rec(const MDB_val *k, const MDB_val *v, int64_t *due, int *kind, char *id,
		     uint32_t *attempt)
{
	const unsigned char *p = k->mv_data;
	size_t n;
	uint64_t u;

	if (k->mv_size < 10 || k->mv_size > 9 + DL_ID_MAX - 1 || v->mv_size != 4)
		return -EBADMSG;
	u = be64_get(p);
	n = k->mv_size - 9;
	if (u > INT64_MAX || p[8] < TIMER_EXEC || p[8] > TIMER_WEBHOOK || memchr(p + 9, 0, n))
		return -EBADMSG;
	*due = (int64_t)u;
	*kind = p[8];
	memcpy(id, p + 9, n);
	id[n] = '\0';
	*attempt = be32_get(v->mv_data);
	return 0;
}

/* Load records with due >= d->horizon until `fill` entries are in memory;
 * then the horizon is the first due not loaded (UINT64_MAX at the end). */
static int load(struct deadlines *d, struct store *s, MDB_txn *t, size_t fill,
		int64_t now_wall, uint64_t now_mono)
{
	unsigned char kb[8];
	MDB_cursor *c;
	MDB_val k = { 8, kb }, v;
	int rc, n = 0;

	be64_put(kb, d->horizon);
	if ((rc = mdb_cursor_open(t, s->dbi[DB_TIMERS], &c)))
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char id[DL_ID_MAX];
		int64_t due;
		uint32_t attempt;
		int kind;

		if (parse_rec(&k, &v, &due, &kind, id, &attempt) < 0) {
			d->bad++;
			continue;
		}
		if (d->live >= fill) {
			d->horizon = (uint64_t)due;
			break;
		}
		n += insert(d, kind, id, attempt, due, now_wall, now_mono);
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		d->horizon = UINT64_MAX;
	else if (rc)
		return store_err(rc);
	return n;
}

static size_t fill_mark(const struct deadlines *d)
{
	return d->max - d->max / 4;
}

static int need_load(const struct deadlines *d)
{
	return d->horizon != UINT64_MAX && d->live < d->max / 4;
}

/* ---- public: setup, arming, clocks -------------------------------------------------- */

void deadlines_init(struct deadlines *d, size_t max, int64_t now_wall, uint64_t now_mono)
{
	memset(d, 0, sizeof(*d));
	wheel_init(&d->w, now_mono);
	d->max = max ? (max < 4 ? 4 : max) : DL_MAX_DEFAULT;
	d->nbucket = 64;
	d->bucket = xcalloc(d->nbucket, sizeof(*d->bucket));
	d->horizon = UINT64_MAX;
	d->skew = now_wall - (int64_t)now_mono;
}

void deadlines_free(struct deadlines *d)
{
	struct dl_entry *e, *next;

	if (d->bucket)
		drop_all(d);
	for (e = d->free; e; e = next) {
		next = e->hnext;
		free(e);
	}
	free(d->bucket);
	memset(d, 0, sizeof(*d));
}

size_t deadlines_count(const struct deadlines *d)
{
	return d->live;
}

int deadlines_rebuild(struct deadlines *d, struct store *s, int64_t now_wall,
		      uint64_t now_mono)
{
	MDB_txn *t;
	int r;

	drop_all(d);
	maybe_shrink(d);
	wheel_init(&d->w, now_mono);
	d->skew = now_wall - (int64_t)now_mono;
	d->horizon = 0;
	if ((r = store_begin(s, 1, &t)) < 0)
		return r;
	r = load(d, s, t, fill_mark(d), now_wall, now_mono);
	store_abort(t);
	return r;
}

int deadlines_arm(struct deadlines *d, int kind, const char *id, uint32_t attempt,
		  int64_t due_wall, int64_t now_wall, uint64_t now_mono)
{
	size_t n = strnlen(id, DL_ID_MAX);
	int r;

	if (kind < TIMER_EXEC || kind > TIMER_WEBHOOK || n == 0 || n >= DL_ID_MAX || due_wall < 0)
		return -EINVAL;
	if ((uint64_t)due_wall >= d->horizon) {
		d->deferred++;
		return 0;
	}
	r = insert(d, kind, id, attempt, due_wall, now_wall, now_mono);
	if (d->live > d->max)
		shed(d);
	return r;
}

int deadlines_forget(struct deadlines *d, int kind, const char *id, uint32_t attempt)
{
	struct dl_entry *e;

	if (strnlen(id, DL_ID_MAX) >= DL_ID_MAX || !d->nbucket ||
	    !(e = find(d, kind, id, attempt, key_hash(kind, id, attempt))) || e->also_wall)
		return 0;
	entry_drop(d, e);
	return 1;
}

int deadlines_clock(struct deadlines *d, int64_t now_wall, uint64_t now_mono)
{
	int64_t skew = now_wall - (int64_t)now_mono;

	if (skew - d->skew <= DL_JUMP_MS && d->skew - skew <= DL_JUMP_MS)
		return 0;
	for (size_t i = 0; i < d->nbucket; i++)
		for (struct dl_entry *e = d->bucket[i]; e; e = e->hnext)
			wheel_arm(&d->w, &e->link, to_mono(e->due_wall, now_wall, now_mono));
	d->skew = skew;
	d->rebases++;
	return 1;
}

uint64_t deadlines_next_mono(const struct deadlines *d)
{
	return need_load(d) ? 0 : wheel_next(&d->w);
}

/* ---- firing ------------------------------------------------------------------------- */

/* A move in a nested transaction, so that a move failing halfway (a broken
 * record) is undone alone and cannot wedge the whole turn. */
static int apply_nested(struct store *s, MDB_txn *t, const struct lc_move *m, struct job *ret)
{
	MDB_txn *c;
	int r = store_err(mdb_txn_begin(s->env, t, 0, &c));

	if (r < 0)
		return r;
	r = lc_apply(s, c, m, ret);
	if (r < 0) {
		mdb_txn_abort(c);
		return r;
	}
	return store_commit(c);
}

/* Time out `id` at `attempt` (checked first, so stale records cost one
 * read). 1 applied, 0 stale, -errno fatal. */
static int time_out(struct deadlines *d, struct store *s, MDB_txn *t, const char *id,
		    uint32_t attempt, int64_t now_wall, const char *why, struct dl_out *out)
{
	struct lc_move m;
	struct job j;
	int r = job_get(s, t, id, &j);

	if (r == -ENOENT || r == -EBADMSG)
		return 0;
	if (r < 0)
		return r;
	if (!(JOB_BIT(j.status) & JOB_ACTIVE_MASK) || !attempt || j.attempt != attempt)
		return 0;
	memset(&m, 0, sizeof(m));
	m.op = LC_TIMEOUT;
	m.job_id = id;
	m.attempt = attempt;
	m.at = now_wall;
	m.error_message = why;
	r = apply_nested(s, t, &m, &j);
	if (r == -ESTALE)
		return 0;
	if (r < 0) {
		/* The store failing ends the turn; a broken record is skipped. */
		if (r == -ENOSPC || r == -ENOMEM || r == -EIO)
			return r;
		d->bad++;
		return 0;
	}
	out_job(out, MSG_JOB_CANCEL, &j, now_wall);
	out->events++;
	return 1;
}

static int fire_one(struct deadlines *d, struct store *s, MDB_txn *t, struct dl_entry *e,
		    int64_t now_wall, struct dl_out *out)
{
	struct job j;
	int r = 0;

	switch (e->kind) {
	case TIMER_EXEC:
		r = time_out(d, s, t, e->id, e->attempt, now_wall, NULL, out);
		break;
	case TIMER_BACKOFF:
		if ((r = job_get(s, t, e->id, &j)) == -ENOENT || r == -EBADMSG)
			r = 0;
		else if (r == 0 && j.status == JOB_WAITING && j.attempt == e->attempt)
			r = 1;
		if (r == 1)
			out_job(out, MSG_JOB_WAITING, &j, now_wall);
		break;
	case TIMER_WEBHOOK: {
		size_t n = strlen(e->id);
		struct msg *m;
		if (n >= sizeof(m->job)) {
			d->bad++;	/* no message can name it */
			break;
		}
		m = out_push(out, ACTOR_NOTIFIER, MSG_WEBHOOK_DUE);
		m->timer_kind = TIMER_WEBHOOK;
		m->attempt = e->attempt;
		m->at = now_wall;
		m->due = e->due_wall;
		memcpy(m->job, e->id, n + 1);
		r = 1;
		break;
	}
	}
	if (r < 0)
		return r;
	d->fired += r == 1;
	d->stale += r == 0;
	if ((r = timer_erase(s, t, e->due_wall, e->kind, e->id)) < 0 ||
	    (e->also_wall && (r = timer_erase(s, t, e->also_wall, e->kind, e->id)) < 0))
		return r;
	return 0;
}

/* 1 if the timers db holds e's record (at its due and attempt), 0 if not:
 * the db is the truth, an arm alone fires nothing. */
static int has_record(struct store *s, MDB_txn *t, const struct dl_entry *e)
{
	unsigned char k[9 + DL_ID_MAX];
	size_t n = strlen(e->id);
	MDB_val v;
	int r;

	be64_put(k, (uint64_t)e->due_wall);
	k[8] = e->kind;
	memcpy(k + 9, e->id, n);
	if ((r = store_get(s, t, DB_TIMERS, k, 9 + n, &v)) < 0)
		return r == -ENOENT ? 0 : r;
	return v.mv_size == 4 && be32_get(v.mv_data) == e->attempt;
}

int deadlines_fire(struct deadlines *d, struct store *s, MDB_txn *t, int64_t now_wall,
		   uint64_t now_mono, struct dl_out *out)
{
	struct wheel_entry *due[DL_FIRE_BATCH];
	size_t n;
	int r, handled = 0;

	deadlines_clock(d, now_wall, now_mono);
	if (need_load(d) && (r = load(d, s, t, fill_mark(d), now_wall, now_mono)) < 0)
		return r;
	n = wheel_advance(&d->w, now_mono, due, DL_FIRE_BATCH);
	for (size_t i = 0; i < n; i++) {
		struct dl_entry *e = container_of(due[i], struct dl_entry, link);

		if (e->due_wall > now_wall) {
			/* The monotonic clock ran ahead of the wall clock: never early. */
			wheel_arm(&d->w, &e->link, to_mono(e->due_wall, now_wall, now_mono));
			d->early++;
			continue;
		}
		if ((r = has_record(s, t, e)) == 0) {
			/* Only an arm: the db never had it, or it fired already. */
			if (e->also_wall) {
				e->due_wall = e->also_wall;
				e->also_wall = 0;
				wheel_arm(&d->w, &e->link, to_mono(e->due_wall, now_wall, now_mono));
				continue;
			}
			d->stale++;
			entry_drop(d, e);
			handled++;
			continue;
		}
		if (r < 0 || (r = fire_one(d, s, t, e, now_wall, out)) < 0) {
			/* The caller aborts and rebuilds; keep the rest reachable. */
			for (; i < n; i++)
				wheel_arm(&d->w, due[i], now_mono);
			return r;
		}
		entry_drop(d, e);
		handled++;
	}
	maybe_shrink(d);
	return handled;
}

/* ---- the stuck sweep and the purge: bounded index scans ----------------------------- */

struct scan {
	unsigned char key[DL_SCAN_BATCH][64];
	uint8_t klen[DL_SCAN_BATCH];
	size_t n;
	int ended;		/* the range ended within this batch */
	unsigned char next[64];	/* where to resume if it did not */
	size_t next_len;
};

/* Collect up to DL_SCAN_BATCH by_status keys from `from` while they have
 * status st and (if below) created < below. */
static int scan_status(struct store *s, MDB_txn *t, const unsigned char *from, size_t flen,
		       int st, int64_t below, struct scan *sc)
{
	MDB_cursor *c;
	MDB_val k = { flen, (void *)from }, v;
	size_t seen = 0;
	int rc;

	sc->n = 0;
	sc->ended = 0;
	if ((rc = mdb_cursor_open(t, s->dbi[DB_BY_STATUS], &c)))
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && seen < DL_SCAN_BATCH;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), seen++) {
		const unsigned char *p = k.mv_data;
		if (k.mv_size < 1 || p[0] != st ||
		    (below != INT64_MAX && k.mv_size >= 9 && (int64_t)be64_get(p + 1) >= below)) {
			sc->ended = 1;
			break;
		}
		if (k.mv_size > sizeof(sc->next) - 1) {
			sc->ended = 1;	/* not a key we write: end the pass early */
			break;
		}
		/* resume right after this key: the key followed by a 0 byte */
		memcpy(sc->next, p, k.mv_size);
		sc->next[k.mv_size] = 0;
		sc->next_len = k.mv_size + 1;
		if (k.mv_size < 10 || k.mv_size > 9 + 31)
			continue;	/* malformed: check reports it */
		memcpy(sc->key[sc->n], p, k.mv_size);
		sc->klen[sc->n++] = (uint8_t)k.mv_size;
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		sc->ended = 1;
	else if (rc)
		return store_err(rc);
	return 0;
}

static void key_id(const struct scan *sc, size_t i, char *id)
{
	size_t n = sc->klen[i] - 9u;
	memcpy(id, sc->key[i] + 9, n);
	id[n] = '\0';
}

int deadlines_sweep(struct deadlines *d, struct store *s, MDB_txn *t, int64_t now_wall,
		    int64_t stuck_ms, struct dl_out *out)
{
	static const char why[] = "no report from the provider for too long (stuck-job sweep)";
	struct scan *sc = xmalloc(sizeof(*sc));
	int r, n = 0;

	if (!d->sweep_status) {
		d->sweep_status = JOB_DISPATCHED;
		d->sweep_key[0] = JOB_DISPATCHED;
		d->sweep_klen = 1;
	}
	if ((r = scan_status(s, t, d->sweep_key, d->sweep_klen, d->sweep_status, INT64_MAX,
			     sc)) < 0)
		goto out;
	for (size_t i = 0; i < sc->n; i++) {
		char id[40];
		struct job j;

		key_id(sc, i, id);
		if ((r = job_get(s, t, id, &j)) < 0) {
			if (r != -ENOENT && r != -EBADMSG)
				goto out;
			continue;
		}
		if (!(JOB_BIT(j.status) & JOB_ACTIVE_MASK) || j.updated_at >= now_wall - stuck_ms)
			continue;
		if ((r = time_out(d, s, t, id, j.attempt, now_wall, why, out)) < 0)
			goto out;
		n += r;
	}
	if (sc->ended) {
		d->sweep_status = d->sweep_status == JOB_DISPATCHED ? JOB_RUNNING : 0;
		d->sweep_key[0] = (unsigned char)d->sweep_status;
		d->sweep_klen = 1;
	} else {
		memcpy(d->sweep_key, sc->next, sc->next_len);
		d->sweep_klen = sc->next_len;
	}
	d->swept += (uint64_t)n;
	r = n;
out:
	free(sc);
	return r;
}

/* Delete a terminal job and what hangs off it; j's fixed fields are used,
 * idem (copied by the caller) is its idempotency key. 1 done, 0 out of work
 * (its log lines are partly deleted: call again), -errno. */
static int purge_job(struct store *s, MDB_txn *t, const struct job *j, const char *idem,
		     size_t idem_n, int *work)
{
	unsigned char k[ORG_ID_MAX + 1 + 256];
	size_t idn = strlen(j->id), on;
	MDB_cursor *c;
	MDB_val key, v;
	int rc, r;

	/* log lines: job id 0x00 be32(seq) */
	if ((rc = mdb_cursor_open(t, s->dbi[DB_LOGS], &c)))
		return store_err(rc);
	for (;;) {
		memcpy(k, j->id, idn + 1);
		key.mv_data = k;
		key.mv_size = idn + 1;
		rc = mdb_cursor_get(c, &key, &v, MDB_SET_RANGE);
		if (rc || key.mv_size < idn + 1 || memcmp(key.mv_data, k, idn + 1) != 0)
			break;
		if (*work <= 0) {
			mdb_cursor_close(c);
			return 0;
		}
		if ((rc = mdb_cursor_del(c, 0)))
			break;
		--*work;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return store_err(rc);
	if (idem_n) {
		on = strnlen(j->org, ORG_ID_MAX - 1);
		memcpy(k, j->org, on);
		k[on] = 0;
		memcpy(k + on + 1, idem, idem_n);
		r = store_get(s, t, DB_IDEM, k, on + 1 + idem_n, &v);
		if (r == 0 && v.mv_size == idn && memcmp(v.mv_data, j->id, idn) == 0)
			r = store_del(s, t, DB_IDEM, k, on + 1 + idem_n);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	if ((r = lc_dlq_remove(s, t, j->id)) < 0)
		return r;
	if ((r = job_index_status(s, t, j, j->status, 0)) < 0 && r != -ENOENT)
		return r;
	if ((r = job_index_org(s, t, j, 0)) < 0 && r != -ENOENT)
		return r;
	if ((r = store_del(s, t, DB_JOBS, j->id, idn)) < 0 && r != -ENOENT)
		return r;
	--*work;
	return 1;
}

static int purge_jobs(struct deadlines *d, struct store *s, MDB_txn *t, int *work)
{
	static const int phase_status[4] = { 0, JOB_COMPLETE, JOB_FAILED, JOB_CANCELLED };
	int st = phase_status[d->purge_phase], r, n = 0;
	struct scan *sc = xmalloc(sizeof(*sc));
	size_t i;

	if ((r = scan_status(s, t, d->purge_key, d->purge_klen, st, d->purge_cutoff, sc)) < 0)
		goto out;
	for (i = 0; i < sc->n; i++) {
		char id[40], idem[256];
		size_t idem_n = 0;
		struct job j;

		key_id(sc, i, id);
		if ((r = job_get(s, t, id, &j)) < 0) {
			if (r != -ENOENT && r != -EBADMSG)
				goto out;
			continue;
		}
		if (!(JOB_BIT(j.status) & JOB_TERMINAL_MASK) || j.completed_at >= d->purge_cutoff)
			continue;
		if (j.idem.n && j.idem.n <= sizeof(idem)) {
			idem_n = j.idem.n;
			memcpy(idem, j.idem.p, idem_n);	/* points into the map */
		}
		if ((r = purge_job(s, t, &j, idem, idem_n, work)) < 0)
			goto out;
		if (r == 0)
			break;	/* out of work: resume at this job */
		n++;
	}
	if (i < sc->n) {
		memcpy(d->purge_key, sc->key[i], sc->klen[i]);
		d->purge_klen = sc->klen[i];
	} else if (sc->ended) {
		d->purge_phase++;
		d->purge_key[0] = (unsigned char)phase_status[d->purge_phase % 4];
		d->purge_klen = 1;
	} else {
		memcpy(d->purge_key, sc->next, sc->next_len);
		d->purge_klen = sc->next_len;
	}
	d->purged_jobs += (uint64_t)n;
	r = n;
out:
	free(sc);
	return r;
}

static int purge_events(struct deadlines *d, struct store *s, MDB_txn *t, int *work)
{
	uint64_t del[DL_SCAN_BATCH];
	unsigned char kb[8];
	MDB_cursor *c;
	MDB_val k = { 8, kb }, v;
	size_t nd = 0, seen = 0;
	int rc, r, ended = 0;

	be64_put(kb, d->purge_seq);
	if ((rc = mdb_cursor_open(t, s->dbi[DB_EVENTS], &c)))
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct event_rec ev;
		size_t jn;
		MDB_val jv;

		if (seen == DL_SCAN_BATCH || nd == (size_t)*work)
			break;
		seen++;
		if (k.mv_size >= 8)
			d->purge_seq = be64_get(k.mv_data) + 1;
		if (k.mv_size != 8 || v.mv_size < sizeof(ev))
			continue;	/* malformed: check reports it */
		memcpy(&ev, v.mv_data, sizeof(ev));
		if (ev.at >= d->purge_cutoff) {
			/* The log is in rough time order: a full batch of
			 * recent events in a row means the old ones are done. */
			if (++d->purge_fresh >= DL_SCAN_BATCH) {
				ended = 1;
				break;
			}
			continue;
		}
		d->purge_fresh = 0;
		jn = strnlen(ev.job, sizeof(ev.job));
		if (jn && (r = store_get(s, t, DB_JOBS, ev.job, jn, &jv)) != -ENOENT) {
			if (r < 0) {
				mdb_cursor_close(c);
				return r;
			}
			continue;	/* its job lives: keep its history whole */
		}
		del[nd++] = be64_get(k.mv_data);
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		ended = 1;
	else if (rc)
		return store_err(rc);
	for (size_t i = 0; i < nd; i++) {
		be64_put(kb, del[i]);
		if ((r = store_del(s, t, DB_EVENTS, kb, 8)) < 0 && r != -ENOENT)
			return r;
	}
	*work -= (int)nd;
	if (ended)
		d->purge_phase = 0;
	d->purged_events += nd;
	return (int)nd;
}

int deadlines_purge(struct deadlines *d, struct store *s, MDB_txn *t, int64_t now_wall,
		    int64_t retention_ms)
{
	int work = DL_PURGE_WORK, total = 0, r;

	if (!d->purge_phase) {
		d->purge_phase = 1;
		d->purge_cutoff = now_wall - retention_ms;
		d->purge_key[0] = JOB_COMPLETE;
		d->purge_klen = 1;
		d->purge_seq = 0;
		d->purge_fresh = 0;
	}
	/* Up to one index batch per call, plus the events when the jobs are done. */
	if (d->purge_phase <= 3) {
		if ((r = purge_jobs(d, s, t, &work)) < 0)
			return r;
		total += r;
	}
	if (d->purge_phase == 4 && work > 0) {
		if ((r = purge_events(d, s, t, &work)) < 0)
			return r;
		total += r;
	}
	return total;
}
