/* account.c - orgs, credit grants and hashed API keys. */
#include "jobring/account.h"
#include "jobring/crypto.h"
#include "jobring/ledger.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define KEY_VERSION 1u

/* Letters and digits only, so '_' can separate the parts of an API key. */
static void alnum_id(char *out, size_t outsz, const char *prefix, size_t n)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[64];
	size_t plen = strlen(prefix), i;

	rand_bytes(rnd, sizeof(rnd));
	snprintf(out, outsz, "%s", prefix);
	for (i = 0; i < n && plen + i + 1 < outsz; i++)
		out[plen + i] = alpha[rnd[i % sizeof(rnd)] % 62];
	out[plen + i] = '\0';
}

int account_org_create(struct store *s, MDB_txn *t, const char *name, const char *plan,
		       int64_t at, struct org_rec *ret)
{
	struct org_rec o;

	memset(&o, 0, sizeof(o));
	alnum_id(o.id, sizeof(o.id), "org_", 16);
	snprintf(o.name, sizeof(o.name), "%s", name);
	snprintf(o.plan, sizeof(o.plan), "%s", plan);
	o.created_at = at;
	o.low_balance = 100000000; /* $0.10 */
	if (ret)
		*ret = o;
	return org_put(s, t, &o);
}

int account_grant(struct store *s, MDB_txn *t, const char *org, int64_t amount, int64_t at,
		  struct org_rec *ret)
{
	struct org_rec o;
	struct event_rec ev;
	int r;

	if ((r = org_get(s, t, org, &o)) < 0)
		return r;
	if ((r = ledger_apply(s, t, &o, LEDGER_GRANT, NULL, amount, at)) < 0)
		return r;
	memset(&ev, 0, sizeof(ev));
	ev.kind = EV_BALANCE;
	memcpy(ev.org, o.id, sizeof(ev.org));
	ev.at = at;
	ev.amount = o.balance;
	if ((r = event_append(s, t, &ev, NULL, 0, NULL)) < 0)
		return r;
	if (ret)
		*ret = o;
	return 0;
}

int account_key_create(struct store *s, MDB_txn *t, const char *org, const char *name, int test,
		       int64_t at, char *key_out, size_t key_outsz, struct key_rec *ret)
{
	struct key_rec k;
	struct org_rec o;
	uint8_t h[CRYPTO_SHA256_LEN];
	char secret[40];
	int r;

	if ((r = org_get(s, t, org, &o)) < 0)
		return r;
	alnum_id(secret, sizeof(secret), "", 32);
	if ((size_t)snprintf(key_out, key_outsz, "rb_%s_%s_%s", test ? "test" : "live", org,
			     secret) >= key_outsz)
		return -ENOSPC;
	memset(&k, 0, sizeof(k));
	k.version = KEY_VERSION;
	k.test = test ? 1 : 0;
	alnum_id(k.id, sizeof(k.id), "key_", 20);
	snprintf(k.org, sizeof(k.org), "%s", org);
	snprintf(k.name, sizeof(k.name), "%s", name ? name : "");
	k.created_at = at;
	if ((r = crypto_sha256(key_out, strlen(key_out), h)) < 0)
		return r;
	if ((r = store_put(s, t, DB_KEYS, h, sizeof(h), &k, sizeof(k))) < 0)
		return r;
	if (ret)
		*ret = k;
	return 0;
}

int account_key_lookup(struct store *s, MDB_txn *t, const char *key, size_t n,
		       struct key_rec *ret)
{
	uint8_t h[CRYPTO_SHA256_LEN];
	MDB_cursor *cur;
	MDB_val k = { sizeof(h), h }, v;
	int rc;

	if (n < 12 || n > API_KEY_MAX || (memcmp(key, "rb_live_", 8) && memcmp(key, "rb_test_", 8)))
		return -EINVAL;
	if ((rc = crypto_sha256(key, n, h)) < 0)
		return rc;
	if ((rc = mdb_cursor_open(t, s->dbi[DB_KEYS], &cur)))
		return store_err(rc);
	/* Position at the first hash >= ours, then compare the whole hash in
	 * constant time: the lookup itself only ever sees the hash. */
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && (k.mv_size != sizeof(h) || !crypto_memeq(k.mv_data, h, sizeof(h))))
		rc = MDB_NOTFOUND;
	if (rc == 0 && v.mv_size != sizeof(*ret))
		rc = MDB_CORRUPTED;
	if (rc == 0)
		memcpy(ret, v.mv_data, sizeof(*ret));
	mdb_cursor_close(cur);
	if (rc)
		return rc == MDB_CORRUPTED ? -EBADMSG : store_err(rc);
	return ret->version == KEY_VERSION ? 0 : -EBADMSG;
}

int account_key_delete(struct store *s, MDB_txn *t, const char *key_id)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t, s->dbi[DB_KEYS], &cur)))
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct key_rec kr;
		if (v.mv_size != sizeof(kr))
			continue;
		memcpy(&kr, v.mv_data, sizeof(kr));	/* LMDB values are only 2-aligned */
		if (strcmp(kr.id, key_id) == 0) {
			rc = mdb_cursor_del(cur, 0);
			mdb_cursor_close(cur);
			return store_err(rc);
		}
	}
	mdb_cursor_close(cur);
	return store_err(rc);
}
