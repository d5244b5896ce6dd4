/* lifecycle.h - the job state machine of DESIGN.md §1.
 *
 * Every move is a compare-and-set inside the caller's write transaction: the
 * job is read, the move is checked against the status set and attempt it
 * was decided on, and the record, its indexes, the org counters, the ledger
 * entries and the event are written together. The first commit wins; the
 * loser gets -ESTALE and changes nothing (409 to a client, 200 ignored to a
 * provider).
 *
 *   (new) → waiting                         lc_create         hold
 *   waiting → dispatched                    LC_DISPATCHED
 *   waiting → waiting (attempt failed)      LC_DISPATCH_FAILED
 *   waiting → failed DISPATCH_EXHAUSTED     LC_DISPATCH_FAILED (last attempt) release, dlq
 *   dispatched → running                    LC_RUNNING
 *   dispatched/running → complete           LC_COMPLETE       capture + release
 *   dispatched/running → failed             LC_FAILED         release
 *   dispatched/running → failed TIMEOUT     LC_TIMEOUT        release
 *   waiting/dispatched/running → cancelled  LC_CANCEL         release
 *   failed → waiting                        LC_RETRY          hold again
 */
#ifndef JOBRING_LIFECYCLE_H
#define JOBRING_LIFECYCLE_H

#include "jobring/job.h"
#include "jobring/store.h"

enum lc_op {
	LC_DISPATCHED = 1, LC_DISPATCH_FAILED, LC_RUNNING, LC_PROGRESS, LC_COMPLETE, LC_FAILED,
	LC_TIMEOUT, LC_CANCEL, LC_RETRY
};

struct lc_move {
	enum lc_op op;
	const char *job_id;
	uint32_t attempt;	/* the attempt the decision was made on; 0 = any */
	int64_t at;		/* now, Unix ms */
	/* LC_DISPATCHED */
	const char *provider, *run_id;
	/* LC_DISPATCH_FAILED: the failed attempt; max_attempts; next try time */
	int max_attempts;
	int64_t next_try_at;
	/* LC_COMPLETE */
	const char *output;	/* JSON text */
	int64_t compute_ms;
	int64_t price;		/* capped at the hold by lc_move */
	/* LC_FAILED / LC_TIMEOUT / exhausted */
	const char *error_code, *error_message, *error_detail, *failed_phase;
	/* LC_PROGRESS */
	uint32_t progress;	/* ppm */
	const char *step;
	/* LC_RETRY: the new hold */
	int64_t hold;
};

/** Write a new waiting job j (id, org, type, times, hold, flags and fields
 *  set by the caller). Takes the hold, bumps org counters, indexes it,
 *  binds j->idem, and appends job.created. 0 or -errno. */
int lc_create(struct store *s, MDB_txn *t, struct job *j);

/** Apply a move. 0 applied (ret, if not NULL, gets the new record; its
 *  variable fields point into the txn), -ESTALE not legal from the current
 *  status or attempt, -ENOENT unknown job, other -errno on store errors.
 *  LC_DISPATCH_FAILED returns 1 when the job was exhausted (failed + dlq). */
int lc_apply(struct store *s, MDB_txn *t, const struct lc_move *m, struct job *ret);

/** 1 if the move from `from` to `to` is in the table (for tests and check). */
int lc_legal(int from, int to);

/** Dead-letter queue helpers (also used by admin requeue/delete). */
int lc_dlq_remove(struct store *s, MDB_txn *t, const char *job_id);

#endif
