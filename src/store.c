/* store.c - the LMDB environment and the small fixed records. */
#include "jobring/store.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const db_names[DB_COUNT] = {
	"jobs", "by_status", "by_org", "idem", "orgs", "keys", "ledger", "events",
	"timers", "dlq", "logs", "meta", "endpoints", "deliveries", "deliv_due", "assets",
};

int store_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return -ENOSPC;
	case MDB_KEYEXIST:
		return -EEXIST;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

int store_open(struct store *s, const char *dir, int64_t map_mb, int sync_mode)
{
	MDB_txn *t = NULL;
	unsigned flags = MDB_NOTLS | (sync_mode == STORE_SYNC_NONE ? MDB_NOSYNC | MDB_NOMETASYNC
				      : sync_mode == STORE_SYNC_DEFERRED ? MDB_NOMETASYNC : 0);
	int rc, dead;

	memset(s, 0, sizeof(*s));
	s->sync_full = sync_mode;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((rc = mdb_env_create(&s->env)))
		return store_err(rc);
	mdb_env_set_maxdbs(s->env, DB_COUNT + 4);
	mdb_env_set_maxreaders(s->env, 256);
	if ((rc = mdb_env_set_mapsize(s->env, (size_t)map_mb << 20)) ||
	    (rc = mdb_env_open(s->env, dir, flags, 0600)))
		goto fail;
	/* Readers left behind by killed processes would pin old pages forever. */
	mdb_reader_check(s->env, &dead);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &t)))
		goto fail;
	for (int i = 0; i < DB_COUNT; i++)
		if ((rc = mdb_dbi_open(t, db_names[i], MDB_CREATE, &s->dbi[i])))
			goto fail;
	{
		MDB_val k = { 6, (void *)"format" }, v;
		rc = mdb_get(t, s->dbi[DB_META], &k, &v);
		if (rc == MDB_NOTFOUND) {
			unsigned char f[4];
			be32_put(f, STORE_FORMAT);
			v.mv_size = 4;
			v.mv_data = f;
			if ((rc = mdb_put(t, s->dbi[DB_META], &k, &v, 0)))
				goto fail;
		} else if (rc) {
			goto fail;
		} else if (v.mv_size != 4 || be32_get(v.mv_data) != STORE_FORMAT) {
			rc = EPROTO;
			goto fail;
		}
	}
	rc = mdb_txn_commit(t);
	t = NULL;
	if (rc)
		goto fail;
	return 0;
fail:
	if (t)
		mdb_txn_abort(t);
	mdb_env_close(s->env);
	s->env = NULL;
	return store_err(rc);
}

int store_fd(struct store *s)
{
	int fd = -1;
	mdb_env_get_fd(s->env, &fd);
	return fd;
}

void store_close(struct store *s)
{
	if (s->env)
		mdb_env_close(s->env);
	s->env = NULL;
}

int store_begin(struct store *s, int rdonly, MDB_txn **ret)
{
	return store_err(mdb_txn_begin(s->env, NULL, rdonly ? MDB_RDONLY : 0, ret));
}

int store_commit(MDB_txn *txn)
{
	return store_err(mdb_txn_commit(txn));
}

void store_abort(MDB_txn *txn)
{
	if (txn)
		mdb_txn_abort(txn);
}

void store_usage(struct store *s, uint64_t *used, uint64_t *mapsize)
{
	MDB_envinfo info;
	MDB_stat st;

	mdb_env_info(s->env, &info);
	mdb_env_stat(s->env, &st);
	*used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	*mapsize = info.me_mapsize;
}

int store_get(struct store *s, MDB_txn *t, enum store_db db, const void *k, size_t kn,
	      MDB_val *ret)
{
	MDB_val key = { kn, (void *)k };
	return store_err(mdb_get(t, s->dbi[db], &key, ret));
}

int store_put(struct store *s, MDB_txn *t, enum store_db db, const void *k, size_t kn,
	      const void *v, size_t vn)
{
	MDB_val key = { kn, (void *)k }, val = { vn, (void *)v };
	return store_err(mdb_put(t, s->dbi[db], &key, &val, 0));
}

int store_del(struct store *s, MDB_txn *t, enum store_db db, const void *k, size_t kn)
{
	MDB_val key = { kn, (void *)k };
	return store_err(mdb_del(t, s->dbi[db], &key, NULL));
}

void be64_put(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

uint64_t be64_get(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void be32_put(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

uint32_t be32_get(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int seq_key(char *k, size_t ksz, const char *name)
{
	return snprintf(k, ksz, "seq:%s", name);
}

int store_get_u64(struct store *s, MDB_txn *t, const char *key, uint64_t *ret)
{
	MDB_val v;
	int r = store_get(s, t, DB_META, key, strlen(key), &v);

	*ret = 0;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (v.mv_size != 8)
		return -EBADMSG;
	*ret = be64_get(v.mv_data);
	return 0;
}

int store_peek_seq(struct store *s, MDB_txn *t, const char *name, uint64_t *ret)
{
	char k[64];

	seq_key(k, sizeof(k), name);
	return store_get_u64(s, t, k, ret);
}

int store_next_seq(struct store *s, MDB_txn *t, const char *name, uint64_t *ret)
{
	char k[64];
	unsigned char b[8];
	uint64_t cur;
	int n = seq_key(k, sizeof(k), name), r;

	if ((r = store_peek_seq(s, t, name, &cur)) < 0)
		return r;
	be64_put(b, cur + 1);
	if ((r = store_put(s, t, DB_META, k, (size_t)n, b, 8)) < 0)
		return r;
	*ret = cur + 1;
	return 0;
}

int store_secret(struct store *s, const char *name, const char *env_var, const char *prefix,
		 char *out, size_t outsz)
{
	const char *e = env_var ? getenv(env_var) : NULL;
	char k[64];
	MDB_txn *t;
	MDB_val v;
	int n, r;

	if (e && *e) {
		snprintf(out, outsz, "%s", e);
		return 0;
	}
	n = snprintf(k, sizeof(k), "secret:%s", name);
	if ((r = store_begin(s, 0, &t)) < 0)
		return r;
	r = store_get(s, t, DB_META, k, (size_t)n, &v);
	if (r == 0) {
		snprintf(out, outsz, "%.*s", (int)v.mv_size, (const char *)v.mv_data);
		store_abort(t);
		return 0;
	}
	if (r != -ENOENT) {
		store_abort(t);
		return r;
	}
	id_new(out, outsz, prefix, 32);
	if ((r = store_put(s, t, DB_META, k, (size_t)n, out, strlen(out))) < 0) {
		store_abort(t);
		return r;
	}
	return store_commit(t);
}

int store_get_rec(struct store *s, MDB_txn *t, enum store_db db, const char *key, void *out,
		  size_t size, uint32_t version)
{
	MDB_val v;
	uint32_t got;
	int r = store_get(s, t, db, key, strlen(key), &v);

	if (r < 0)
		return r;
	if (v.mv_size != size || size < sizeof(got))
		return -EBADMSG;
	memcpy(out, v.mv_data, size);	/* LMDB values are only 2-aligned */
	memcpy(&got, out, sizeof(got));
	return got == version ? 0 : -EBADMSG;
}

/* ---- orgs ----------------------------------------------------------------- */

#define ORG_VERSION 1u

int org_get(struct store *s, MDB_txn *t, const char *id, struct org_rec *ret)
{
	return store_get_rec(s, t, DB_ORGS, id, ret, sizeof(*ret), ORG_VERSION);
}

int org_put(struct store *s, MDB_txn *t, const struct org_rec *o)
{
	struct org_rec c = *o;
	c.version = ORG_VERSION;
	return store_put(s, t, DB_ORGS, c.id, strlen(c.id), &c, sizeof(c));
}

/* ---- events --------------------------------------------------------------- */

#define EVENT_VERSION 1u

int event_append(struct store *s, MDB_txn *t, struct event_rec *ev, const char *data,
		 size_t data_len, uint64_t *ret_seq)
{
	unsigned char k[8];
	uint64_t seq;
	MDB_val key = { 8, k }, val;
	int r;

	if ((r = store_next_seq(s, t, "event", &seq)) < 0)
		return r;
	be64_put(k, seq);
	ev->version = EVENT_VERSION;
	ev->data_len = (uint32_t)data_len;
	val.mv_size = sizeof(*ev) + data_len;
	/* MDB_APPEND: keys only grow, so the write goes to the rightmost page. */
	if ((r = store_err(mdb_put(t, s->dbi[DB_EVENTS], &key, &val, MDB_RESERVE | MDB_APPEND))) < 0)
		return r;
	memcpy(val.mv_data, ev, sizeof(*ev));
	if (data_len)
		memcpy((char *)val.mv_data + sizeof(*ev), data, data_len);
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

/* ---- timers --------------------------------------------------------------- */

static size_t timer_key(unsigned char *k, int64_t due, int kind, const char *id)
{
	size_t n = strnlen(id, 40);
	be64_put(k, (uint64_t)due);
	k[8] = (unsigned char)kind;
	memcpy(k + 9, id, n);
	return 9 + n;
}

int timer_record(struct store *s, MDB_txn *t, int64_t due, int kind, const char *id,
		 uint32_t attempt)
{
	unsigned char k[64], v[4];
	size_t n = timer_key(k, due, kind, id);
	be32_put(v, attempt);
	return store_put(s, t, DB_TIMERS, k, n, v, 4);
}

int timer_erase(struct store *s, MDB_txn *t, int64_t due, int kind, const char *id)
{
	unsigned char k[64];
	size_t n = timer_key(k, due, kind, id);
	int r = store_del(s, t, DB_TIMERS, k, n);
	return r == -ENOENT ? 0 : r;
}
