/* job.h - the job record: its statuses, its binary codec with a format
 * version, and its index entries.
 *
 * Ownership: struct job holds fixed fields by value; the variable fields
 * (struct jstr) point either into an LMDB value (valid until the txn ends or
 * the record is rewritten) or into caller memory. job_put() copies them. */
#ifndef JOBRING_JOB_H
#define JOBRING_JOB_H

#include "jobring/store.h"

#include <stdint.h>

enum job_status {
	JOB_NONE = 0, JOB_WAITING, JOB_DISPATCHED, JOB_RUNNING, JOB_COMPLETE, JOB_FAILED,
	JOB_CANCELLED, JOB_STATUS_MAX
};
#define JOB_BIT(s) (1u << (s))
#define JOB_TERMINAL_MASK (JOB_BIT(JOB_COMPLETE) | JOB_BIT(JOB_FAILED) | JOB_BIT(JOB_CANCELLED))
#define JOB_ACTIVE_MASK (JOB_BIT(JOB_DISPATCHED) | JOB_BIT(JOB_RUNNING))

/* flags */
#define JOB_TEST 0x01u		/* created with an rb_test_ key: moves no money */
#define JOB_HOLD_OPEN 0x02u	/* a hold is open (released or captured exactly once) */
#define JOB_IN_DLQ 0x04u	/* in the dead-letter queue */
#define JOB_HAS_LOGS 0x08u

#define JOB_ID_LEN 24		/* "job_" + 20 */

struct jstr {
	const char *p;
	uint32_t n;
};

struct job {
	char id[32];
	char org[ORG_ID_MAX];
	char type[32];
	char provider[32];
	char run_id[72];
	char error_code[48];
	char failed_phase[16];
	uint8_t status;
	uint8_t flags;
	uint16_t tries;		/* failed dispatch attempts since (re)queue */
	uint32_t attempt;	/* dispatch attempt number; monotonic, 0 = never sent */
	uint32_t retry_count;	/* manual retries */
	uint32_t progress;	/* parts per million */
	uint32_t log_seq;
	int64_t created_at, dispatched_at, started_at, completed_at;
	int64_t updated_at;	/* last transition or report */
	int64_t next_try_at;	/* earliest next dispatch (backoff) */
	int64_t timeout_ms;	/* execution limit */
	int64_t hold, cost, compute_ms;
	struct jstr idem, inputs, params, output, error_message, error_detail, step, callback,
		client;
};

const char *job_status_name(int status);
/** Status from its name, or JOB_NONE. */
int job_status_parse(const char *s, size_t n);

/** Read and decode. 0, -ENOENT, -EBADMSG (corrupt or unknown version). */
int job_get(struct store *s, MDB_txn *t, const char *id, struct job *ret);
/** Encode and write the record (not the indexes). */
int job_put(struct store *s, MDB_txn *t, const struct job *j);
/** Decode a raw value (for cursors); same errors as job_get. */
int job_decode(const void *v, size_t n, struct job *ret);

/** Index keys; each returns the key length. buf must hold 64 bytes. */
size_t job_status_key(unsigned char *buf, int status, int64_t created, const char *id);
size_t job_org_key(unsigned char *buf, const char *org, int64_t created, const char *id);
/** Add or remove the by_status entry of j for status st. */
int job_index_status(struct store *s, MDB_txn *t, const struct job *j, int st, int add);
int job_index_org(struct store *s, MDB_txn *t, const struct job *j, int add);

#endif
