/* account.h - orgs, credits and API keys (the admin side of DESIGN.md §4).
 *
 * API keys look like rb_live_<org>_<secret> or rb_test_<org>_<secret>; only
 * their SHA-256 is stored (keys db), and a key's org is readable from the key
 * itself so a router can shard by org without a lookup. Test keys run the
 * whole pipeline but move no money. All functions take an open write (or, for
 * lookups, read) transaction; 0 or -errno. */
#ifndef JOBRING_ACCOUNT_H
#define JOBRING_ACCOUNT_H

#include "jobring/store.h"

#define API_KEY_MAX 96

/** Create an org on `plan` (the caller checks the plan exists). */
int account_org_create(struct store *s, MDB_txn *t, const char *name, const char *plan,
		       int64_t at, struct org_rec *ret);
/** Add `amount` nanodollars (may be negative) with a grant entry and a
 *  balance event. -ENOENT for an unknown org. */
int account_grant(struct store *s, MDB_txn *t, const char *org, int64_t amount, int64_t at,
		  struct org_rec *ret);
/** Make a new key for org; the plaintext goes to key_out (shown once). */
int account_key_create(struct store *s, MDB_txn *t, const char *org, const char *name, int test,
		       int64_t at, char *key_out, size_t key_outsz, struct key_rec *ret);
/** Find a key by its plaintext: -ENOENT (or -EINVAL if malformed) when unknown. */
int account_key_lookup(struct store *s, MDB_txn *t, const char *key, size_t n,
		       struct key_rec *ret);
/** Revoke the key with this id. -ENOENT if there is none. */
int account_key_delete(struct store *s, MDB_txn *t, const char *key_id);

#endif
