/* job.c - the job record codec and its index entries.
 *
 * Record layout, version JOB_FORMAT (native byte order; the data dir is not
 * portable across architectures, like LMDB's own file):
 *   u8 format | u8 status | u8 flags | u16 tries | u32 attempt retry_count
 *   progress log_seq | i64 created dispatched started completed updated
 *   next_try timeout hold cost compute_ms | short strings (u8 len + bytes):
 *   id org type provider run_id error_code failed_phase | long strings (u32 len
 *   + bytes): idem inputs params output error_message error_detail step
 *   callback client.
 * To change it: bump JOB_FORMAT, keep decoding the old one in job_decode(),
 * and write the new one in job_put(). */
#include "jobring/job.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JOB_FORMAT 1

static const char *const status_names[JOB_STATUS_MAX] = {
	"none", "waiting", "dispatched", "running", "complete", "failed", "cancelled",
};

const char *job_status_name(int st)
{
	return st > 0 && st < JOB_STATUS_MAX ? status_names[st] : "none";
}

int job_status_parse(const char *s, size_t n)
{
	for (int i = 1; i < JOB_STATUS_MAX; i++)
		if (strlen(status_names[i]) == n && memcmp(status_names[i], s, n) == 0)
			return i;
	return JOB_NONE;
}

struct cur {
	unsigned char *p;	/* NULL: only measure */
	const unsigned char *r;
	size_t off, len;
	int bad;
};

static void put(struct cur *c, const void *v, size_t n)
{
	if (c->p)
		memcpy(c->p + c->off, v, n);
	c->off += n;
}

static void put_short(struct cur *c, const char *s)
{
	size_t n = strnlen(s, 255);
	unsigned char l = (unsigned char)n;
	put(c, &l, 1);
	put(c, s, n);
}

static void put_long(struct cur *c, const struct jstr *s)
{
	uint32_t n = s->p ? s->n : 0;
	put(c, &n, 4);
	if (n)
		put(c, s->p, n);
}

static void get(struct cur *c, void *v, size_t n)
{
	if (c->bad || c->len - c->off < n) {
		c->bad = 1;
		memset(v, 0, n);
		return;
	}
	memcpy(v, c->r + c->off, n);
	c->off += n;
}

static void get_short(struct cur *c, char *out, size_t outsz)
{
	unsigned char l = 0;
	get(c, &l, 1);
	if (c->bad || l >= outsz || c->len - c->off < l) {
		c->bad = 1;
		out[0] = '\0';
		return;
	}
	memcpy(out, c->r + c->off, l);
	out[l] = '\0';
	c->off += l;
}

static void get_long(struct cur *c, struct jstr *s)
{
	uint32_t n = 0;
	get(c, &n, 4);
	if (c->bad || c->len - c->off < n) {
		c->bad = 1;
		s->p = NULL;
		s->n = 0;
		return;
	}
	s->p = n ? (const char *)c->r + c->off : NULL;
	s->n = n;
	c->off += n;
}

static void encode(struct cur *c, const struct job *j)
{
	unsigned char fmt = JOB_FORMAT;
	const int64_t times[] = { j->created_at, j->dispatched_at, j->started_at, j->completed_at,
				  j->updated_at, j->next_try_at, j->timeout_ms, j->hold, j->cost,
				  j->compute_ms };
	put(c, &fmt, 1);
	put(c, &j->status, 1);
	put(c, &j->flags, 1);
	put(c, &j->tries, 2);
	put(c, &j->attempt, 4);
	put(c, &j->retry_count, 4);
	put(c, &j->progress, 4);
	put(c, &j->log_seq, 4);
	put(c, times, sizeof(times));
	put_short(c, j->id);
	put_short(c, j->org);
	put_short(c, j->type);
	put_short(c, j->provider);
	put_short(c, j->run_id);
	put_short(c, j->error_code);
	put_short(c, j->failed_phase);
	put_long(c, &j->idem);
	put_long(c, &j->inputs);
	put_long(c, &j->params);
	put_long(c, &j->output);
	put_long(c, &j->error_message);
	put_long(c, &j->error_detail);
	put_long(c, &j->step);
	put_long(c, &j->callback);
	put_long(c, &j->client);
}

int job_decode(const void *v, size_t n, struct job *j)
{
	struct cur c = { .r = v, .len = n };
	unsigned char fmt = 0;
	int64_t times[10];

	memset(j, 0, sizeof(*j));
	get(&c, &fmt, 1);
	if (fmt != JOB_FORMAT)
		return -EBADMSG;
	get(&c, &j->status, 1);
	get(&c, &j->flags, 1);
	get(&c, &j->tries, 2);
	get(&c, &j->attempt, 4);
	get(&c, &j->retry_count, 4);
	get(&c, &j->progress, 4);
	get(&c, &j->log_seq, 4);
	get(&c, times, sizeof(times));
	j->created_at = times[0];
	j->dispatched_at = times[1];
	j->started_at = times[2];
	j->completed_at = times[3];
	j->updated_at = times[4];
	j->next_try_at = times[5];
	j->timeout_ms = times[6];
	j->hold = times[7];
	j->cost = times[8];
	j->compute_ms = times[9];
	get_short(&c, j->id, sizeof(j->id));
	get_short(&c, j->org, sizeof(j->org));
	get_short(&c, j->type, sizeof(j->type));
	get_short(&c, j->provider, sizeof(j->provider));
	get_short(&c, j->run_id, sizeof(j->run_id));
	get_short(&c, j->error_code, sizeof(j->error_code));
	get_short(&c, j->failed_phase, sizeof(j->failed_phase));
	get_long(&c, &j->idem);
	get_long(&c, &j->inputs);
	get_long(&c, &j->params);
	get_long(&c, &j->output);
	get_long(&c, &j->error_message);
	get_long(&c, &j->error_detail);
	get_long(&c, &j->step);
	get_long(&c, &j->callback);
	get_long(&c, &j->client);
	if (c.bad || c.off != n || j->status == JOB_NONE || j->status >= JOB_STATUS_MAX)
		return -EBADMSG;
	return 0;
}

int job_get(struct store *s, MDB_txn *t, const char *id, struct job *ret)
{
	MDB_val v;
	int r = store_get(s, t, DB_JOBS, id, strlen(id), &v);
	if (r < 0)
		return r;
	return job_decode(v.mv_data, v.mv_size, ret);
}

int job_put(struct store *s, MDB_txn *t, const struct job *j)
{
	struct cur c = { 0 };
	MDB_val key = { strlen(j->id), (void *)j->id }, val;
	int r;

	encode(&c, j);		/* measure */
	val.mv_size = c.off;
	/* The variable fields may point into the old value of this very key,
	 * which MDB_RESERVE could overwrite: encode into scratch first. */
	c.p = xmalloc(c.off);
	c.off = 0;
	encode(&c, j);
	val.mv_data = c.p;
	r = store_err(mdb_put(t, s->dbi[DB_JOBS], &key, &val, 0));
	free(c.p);
	return r;
}

size_t job_status_key(unsigned char *buf, int status, int64_t created, const char *id)
{
	size_t n = strnlen(id, 32);
	buf[0] = (unsigned char)status;
	be64_put(buf + 1, (uint64_t)created);
	memcpy(buf + 9, id, n);
	return 9 + n;
}

size_t job_org_key(unsigned char *buf, const char *org, int64_t created, const char *id)
{
	size_t on = strnlen(org, ORG_ID_MAX - 1), n = strnlen(id, 32);
	memcpy(buf, org, on);
	buf[on] = 0;
	be64_put(buf + on + 1, ~(uint64_t)created);
	memcpy(buf + on + 9, id, n);
	return on + 9 + n;
}

int job_index_status(struct store *s, MDB_txn *t, const struct job *j, int st, int add)
{
	unsigned char k[64];
	size_t n = job_status_key(k, st, j->created_at, j->id);
	return add ? store_put(s, t, DB_BY_STATUS, k, n, "", 0)
		   : store_del(s, t, DB_BY_STATUS, k, n);
}

int job_index_org(struct store *s, MDB_txn *t, const struct job *j, int add)
{
	unsigned char k[80];
	size_t n = job_org_key(k, j->org, j->created_at, j->id);
	return add ? store_put(s, t, DB_BY_ORG, k, n, "", 0) : store_del(s, t, DB_BY_ORG, k, n);
}
