/* store.h - the LMDB environment, its sub-databases, and the small fixed
 * records (orgs, API keys, ledger entries, events) kept in them.
 *
 * Each process opens its own environment after fork (LMDB: "Use an MDB_env*
 * in the process which opened it, not after fork()"). All writes of one loop
 * turn go into one write transaction (group commit); a 2xx is sent only after
 * store_commit() returned 0, which with sync=full means fsynced.
 *
 * Errors: LMDB codes are converted here: MDB_NOTFOUND → -ENOENT,
 * MDB_MAP_FULL / MDB_TXN_FULL → -ENOSPC, MDB_KEYEXIST → -EEXIST, others → -EIO.
 *
 * Ownership: values read through the store point into the map and are valid
 * until the transaction ends or the next write to the same key.
 *
 * Key layouts (big-endian integers so memcmp order is numeric order):
 *   jobs       id                                  → job record (job.h)
 *   by_status  status(1) be64(created) id           → ""   dispatch queue, sweep
 *   by_org     org 0x00 be64(~created) id           → ""   newest-first listing
 *   idem       org 0x00 key                         → job id
 *   orgs       org id                               → struct org_rec
 *   keys       sha256(api key)                      → struct key_rec
 *   ledger     org 0x00 be64(seq)                   → struct ledger_rec
 *   events     be64(seq)                            → struct event_rec + JSON data
 *   timers     be64(due ms) kind(1) id              → be32(attempt)
 *   dlq        job id                               → be64(at)
 *   logs       job id 0x00 be32(seq)                → log line JSON
 *   meta       name                                 → value (format version, counters, secrets)
 *   endpoints, deliveries, deliv_due, assets: owned by their modules. */
#ifndef JOBRING_STORE_H
#define JOBRING_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

enum store_db {
	DB_JOBS, DB_BY_STATUS, DB_BY_ORG, DB_IDEM, DB_ORGS, DB_KEYS, DB_LEDGER, DB_EVENTS,
	DB_TIMERS, DB_DLQ, DB_LOGS, DB_META, DB_ENDPOINTS, DB_DELIVERIES, DB_DELIV_DUE,
	DB_ASSETS, DB_COUNT
};

/** The on-disk format; bump it (and write a migration) when any record changes. */
#define STORE_FORMAT 1

struct store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	int sync_full;		/* the STORE_SYNC_* mode */
};

/* sync modes of store_open */
#define STORE_SYNC_NONE 0	/* no fsync (benchmarks only) */
#define STORE_SYNC_FULL 1	/* fsync data and meta at every commit */
#define STORE_SYNC_DEFERRED 2	/* fsync data at commit; the caller makes the commit durable
				 * with an fdatasync of store_fd() before acknowledging it
				 * (MDB_NOMETASYNC: a crash before that can only undo the
				 * last commits, never corrupt) */

/** Open (creating) the environment in dir with a STORE_SYNC_* mode; runs
 *  mdb_reader_check. 0 or -errno. */
int store_open(struct store *s, const char *dir, int64_t map_mb, int sync_mode);
/** The data file's descriptor (for the deferred fdatasync). */
int store_fd(struct store *s);
void store_close(struct store *s);
/** Begin a transaction. 0 or -errno. */
int store_begin(struct store *s, int rdonly, MDB_txn **ret);
/** Commit (durable when sync_full). 0 or -errno; the txn is gone either way. */
int store_commit(MDB_txn *txn);
void store_abort(MDB_txn *txn);
/** Convert an LMDB return code to 0 / -errno as described above. */
int store_err(int mdb_rc);
/** Bytes used by the map, and the map size (for metrics and `check`). */
void store_usage(struct store *s, uint64_t *used, uint64_t *mapsize);

/* Raw access (0, -ENOENT or -errno). */
int store_get(struct store *s, MDB_txn *t, enum store_db db, const void *k, size_t kn,
	      MDB_val *ret);
int store_put(struct store *s, MDB_txn *t, enum store_db db, const void *k, size_t kn,
	      const void *v, size_t vn);
int store_del(struct store *s, MDB_txn *t, enum store_db db, const void *k, size_t kn);

/** Read a fixed-size record whose first field is a uint32_t version word:
 *  copies size bytes into out. 0, -ENOENT, or -EBADMSG when the size or the
 *  version is not the expected one. */
int store_get_rec(struct store *s, MDB_txn *t, enum store_db db, const char *key, void *out,
		  size_t size, uint32_t version);

/** Next value of a named counter in meta (starts at 1). */
int store_next_seq(struct store *s, MDB_txn *t, const char *name, uint64_t *ret);
/** A big-endian uint64 kept in meta under key (0 if absent), e.g. a
 *  cursor. 0, or -EBADMSG if the value is not 8 bytes, or -errno. */
int store_get_u64(struct store *s, MDB_txn *t, const char *key, uint64_t *ret);
/** Current value of a named counter (0 if never used). */
int store_peek_seq(struct store *s, MDB_txn *t, const char *name, uint64_t *ret);

/** A secret kept in meta: taken from env var if set, else from meta, else
 *  generated (prefix + 32 random chars) and stored. out gets a copy. */
int store_secret(struct store *s, const char *name, const char *env_var, const char *prefix,
		 char *out, size_t outsz);

void be64_put(unsigned char *p, uint64_t v);
uint64_t be64_get(const unsigned char *p);
void be32_put(unsigned char *p, uint32_t v);
uint32_t be32_get(const unsigned char *p);

/* ---- orgs and keys ------------------------------------------------------ */

#define ORG_ID_MAX 32

/* If you change this struct, bump STORE_FORMAT and convert old records. */
struct org_rec {
	uint32_t version;
	uint32_t flags;			/* ORG_SUSPENDED */
	char id[ORG_ID_MAX];
	char name[64];
	char plan[32];
	int64_t balance;		/* granted - captured, nanodollars */
	int64_t held;			/* open holds */
	int64_t created_at;
	uint32_t n_waiting;		/* jobs in waiting */
	uint32_t n_active;		/* jobs dispatched or running */
	uint64_t ledger_seq;
	int64_t low_balance;		/* balance.low threshold */
	int64_t spent;			/* sum of captures (for usage) */
	uint64_t job_count;
};
#define ORG_SUSPENDED 1u

struct key_rec {
	uint32_t version;
	uint32_t test;
	char id[32];
	char org[ORG_ID_MAX];
	char name[64];
	int64_t created_at;
};

int org_get(struct store *s, MDB_txn *t, const char *id, struct org_rec *ret);
int org_put(struct store *s, MDB_txn *t, const struct org_rec *o);

/* ---- ledger and events -------------------------------------------------- */

enum ledger_kind { LEDGER_GRANT = 1, LEDGER_HOLD, LEDGER_CAPTURE, LEDGER_RELEASE };

struct ledger_rec {
	uint32_t version;
	uint32_t kind;
	char job[32];
	int64_t amount;
	int64_t at;
	int64_t balance_after;
	int64_t held_after;
};

enum event_kind {
	EV_JOB_CREATED = 1, EV_JOB_STATUS, EV_JOB_PROGRESS, EV_BALANCE, EV_JOB_LOG
};

/* An event as stored; data (JSON, may be empty) follows the struct. */
struct event_rec {
	uint32_t version;
	uint8_t kind;
	uint8_t status;
	uint8_t prev_status;
	uint8_t test;
	char job[32];
	char org[ORG_ID_MAX];
	char type[32];
	int64_t at;
	uint32_t attempt;
	uint32_t progress;		/* parts per million */
	int64_t amount;			/* balance for EV_BALANCE */
	uint32_t data_len;
	uint32_t pad;
};

/** Append an event (seq from the "event" counter). data may be NULL. */
int event_append(struct store *s, MDB_txn *t, struct event_rec *ev, const char *data,
		 size_t data_len, uint64_t *ret_seq);

/* ---- durable deadlines (the timer wheel rebuilds from these) ------------ */

enum timer_kind {
	TIMER_EXEC = 1,		/* execution timeout of an attempt */
	TIMER_BACKOFF,		/* next dispatch try of a waiting job */
	TIMER_WEBHOOK,		/* next try of a webhook delivery */
};

/** Record a deadline: key be64(due) kind id, value be32(attempt). */
int timer_record(struct store *s, MDB_txn *t, int64_t due, int kind, const char *id,
		 uint32_t attempt);
/** Delete one deadline record (after it fired). */
int timer_erase(struct store *s, MDB_txn *t, int64_t due, int kind, const char *id);

#endif
