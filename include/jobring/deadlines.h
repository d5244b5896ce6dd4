/* deadlines.h - the timer actor's logic, apart from its loop: every durable
 * deadline (timers db) held in a hierarchical wheel, what firing one means,
 * the stuck-job sweep and the retention purge. Clocks are parameters, so a
 * test drives it with a fake clock.
 *
 * Clocks. The wheel runs on a monotonic ms clock; the timers db holds
 * wall-clock (Unix ms) dues. A due is converted when armed (mono_due =
 * now_mono + (due_wall - now_wall), never below now_mono) and the wall clock
 * is checked again when it fires: an entry whose wall due has not passed is
 * re-armed, never fired early. When the wall clock jumps (now_wall -
 * now_mono moved by more than DL_JUMP_MS since the last conversion) every
 * entry is re-converted, so after a jump of days the deadlines behave as if
 * the server had restarted: due by the wall clock means fired.
 *
 * Memory. At most `max` entries are in memory (plus the free list, at most
 * DL_FREE_KEEP). The db is the truth and is sorted by due, so the wheel
 * holds a prefix of it: every record due before `horizon` is in memory,
 * later ones may not be. An arm beyond the horizon is dropped (its record is
 * in the db); an arm that overflows `max` sheds all but the earliest max/2
 * and lowers the horizon to the first due shed; when fewer than max/4
 * remain, the next deadlines_fire reads records from the db up to 3/4 max
 * (the gaps between the marks keep shedding and loading from alternating). So MSG_TIMER_ARM
 * is only a hint: its sender must have committed the timers record
 * (lc_apply writes it) before sending.
 *
 * Duplicates. Entries are keyed by (kind, id, attempt): the same deadline
 * arriving from the db and from a message is armed once. A second due for
 * one key keeps the earlier one; the later record is erased when it fires.
 *
 * Transactions. deadlines_fire/_sweep/_purge write into the caller's write
 * transaction and return the ring messages to send after it commits. If
 * any of them fails, or the commit fails, abort and call deadlines_rebuild
 * (entries consumed by the lost transaction are only in the db again).
 *
 * Ownership: struct deadlines owns its entries and tables; deadlines_free
 * releases them. Not thread-safe: one owner (the timer actor). */
#ifndef JOBRING_DEADLINES_H
#define JOBRING_DEADLINES_H

#include "jobring/msg.h"
#include "jobring/region.h"
#include "jobring/store.h"
#include "jobring/wheel.h"

#include <stddef.h>
#include <stdint.h>

#define DL_ID_MAX 40		/* ids of 1..39 bytes (the timers key stores up to 40) */
#define DL_MAX_DEFAULT 262144	/* entries in memory (~28 MB) */
#define DL_FREE_KEEP 1024	/* freed entries kept for reuse */
#define DL_FIRE_BATCH 512	/* entries handled per deadlines_fire */
#define DL_SCAN_BATCH 256	/* index entries examined per sweep / purge call */
#define DL_JUMP_MS 1000		/* wall-clock step that triggers a re-conversion */

/** A deadline in memory (private to deadlines.c; exposed for sizeof). */
struct dl_entry {
	struct wheel_entry link;	/* on the wheel, by monotonic due */
	struct dl_entry *hnext;		/* hash chain, or free list */
	int64_t due_wall;		/* the record this entry fires (and erases) */
	int64_t also_wall;		/* a second record of the same key to erase, or 0 */
	uint32_t attempt;
	uint32_t hash;
	uint8_t kind;			/* enum timer_kind */
	char id[DL_ID_MAX];
};

/** One message to send after the commit. */
struct dl_msg {
	enum actor_id to;
	struct msg m;
};

/** Messages produced by a turn. The caller sends v[0..n) after a successful
 *  commit, then sets n = 0 (and events = 0); on a failed commit it just
 *  resets them. dl_out_free releases v. */
struct dl_out {
	struct dl_msg *v;
	size_t n, cap;
	uint32_t events;	/* transitions applied (each appended events) */
};

void dl_out_free(struct dl_out *o);

/** Fields are read-only outside deadlines.c; the counters are for tests,
 *  logs and metrics. */
struct deadlines {
	struct wheel w;
	struct dl_entry **bucket;	/* hash table, nbucket a power of two */
	size_t nbucket, live, max;
	struct dl_entry *free;		/* free list (nfree <= DL_FREE_KEEP) */
	size_t nfree;
	uint64_t horizon;		/* records due before it are in memory; UINT64_MAX: all */
	int64_t skew;			/* now_wall - now_mono at the last conversion */
	/* stuck sweep pass: status being scanned (0 = idle) and next key */
	int sweep_status;
	unsigned char sweep_key[64];
	size_t sweep_klen;
	/* purge pass: 0 idle, 1..3 terminal statuses, 4 events */
	int purge_phase;
	int64_t purge_cutoff;
	unsigned char purge_key[64];
	size_t purge_klen;
	uint64_t purge_seq;
	uint32_t purge_fresh;		/* recent events seen in a row */
	/* counters */
	uint64_t fired, stale, early, dups, deferred, shed, rebases, bad;
	uint64_t swept, purged_jobs, purged_events;
};

/** Empty, with at most max entries in memory (0: DL_MAX_DEFAULT; at least 4). */
void deadlines_init(struct deadlines *d, size_t max, int64_t now_wall, uint64_t now_mono);
/** Free every entry and table. d can be initialised again. */
void deadlines_free(struct deadlines *d);

/** Forget what is in memory and load the timers db again (in its own read
 *  transaction) up to max entries. Sweep and purge positions are kept.
 *  Returns the number armed or -errno. */
int deadlines_rebuild(struct deadlines *d, struct store *s, int64_t now_wall,
		      uint64_t now_mono);

/** Arm one deadline (from a MSG_TIMER_ARM). Returns 1 armed (or moved to an
 *  earlier due), 0 already armed or beyond the horizon (the db has it),
 *  -EINVAL for a bad kind or id. */
int deadlines_arm(struct deadlines *d, int kind, const char *id, uint32_t attempt,
		  int64_t due_wall, int64_t now_wall, uint64_t now_mono);

/** Forget a deadline whose record is gone (from a MSG_TIMER_CANCEL: its
 *  job ended and lc_apply erased the record). Returns 1 if it was in
 *  memory and is freed now, else 0. An entry that also stands for a
 *  second record of the same key stays (it fires as stale). */
int deadlines_forget(struct deadlines *d, int kind, const char *id, uint32_t attempt);

/** Notice a wall-clock jump (see above) and re-convert every entry. Cheap
 *  when nothing jumped; deadlines_fire calls it too. Returns 1 on a rebase. */
int deadlines_clock(struct deadlines *d, int64_t now_wall, uint64_t now_mono);

/** When deadlines_fire has work: a monotonic ms lower bound of the next due
 *  (may be early, never late), 0 when it must be called now (db records to
 *  load), UINT64_MAX when there is nothing. Call deadlines_clock first, or
 *  a wall-clock jump goes unnoticed until the next fire. */
uint64_t deadlines_next_mono(const struct deadlines *d);

/** Handle up to DL_FIRE_BATCH due entries inside the write transaction t:
 *   TIMER_EXEC    LC_TIMEOUT at the record's attempt; if it applied, a
 *                 MSG_JOB_CANCEL (status failed, org, provider, attempt) to
 *                 the dispatcher and out->events++; -ESTALE / -ENOENT (the
 *                 attempt is over, the job is gone) is a no-op;
 *   TIMER_BACKOFF a MSG_JOB_WAITING to the dispatcher if the job is still
 *                 waiting at that attempt;
 *   TIMER_WEBHOOK a MSG_WEBHOOK_DUE to the notifier (job = delivery id);
 *  and in every case the record is erased. An entry whose record is not in
 *  the db (an arm with no record behind it, or one that fired already) is
 *  dropped as stale. Loads db records first when the
 *  memory window runs low. Returns the entries handled (fired or stale) or
 *  -errno (abort t, then deadlines_rebuild). */
int deadlines_fire(struct deadlines *d, struct store *s, MDB_txn *t, int64_t now_wall,
		   uint64_t now_mono, struct dl_out *out);

/** The stuck-job sweep: starts a pass if none is running, then examines up
 *  to DL_SCAN_BATCH dispatched/running jobs (by_status order) and applies
 *  LC_TIMEOUT (at the job's current attempt, error message naming the
 *  sweep) to those whose updated_at < now_wall - stuck_ms, with a
 *  MSG_JOB_CANCEL each as for TIMER_EXEC. d->sweep_status != 0 afterwards
 *  means the pass is not finished: call again. Returns jobs timed out or
 *  -errno (abort t, then deadlines_rebuild). */
int deadlines_sweep(struct deadlines *d, struct store *s, MDB_txn *t, int64_t now_wall,
		    int64_t stuck_ms, struct dl_out *out);

/** The retention purge, in bounded steps (DL_SCAN_BATCH index entries or
 *  deletions per call; d->purge_phase != 0 afterwards means call again).
 *  cutoff = now_wall - retention_ms, fixed when a pass starts. The rule:
 *   - a job is deleted when it is terminal and completed_at < cutoff,
 *     together with its by_status and by_org entries, its idempotency key
 *     (if it still names the job), its dlq entry and its log lines. Its
 *     ledger entries stay: they are the org's money history, `check` sums
 *     them per org and does not require a job for them;
 *   - an event is deleted when at < cutoff and it names no job (balance
 *     events) or its job no longer exists. The events of a job that still
 *     exists are never touched, so `check`'s per-job event counts stay
 *     exact; a pass deletes jobs first, then their events. The event scan
 *     runs in seq order and ends at the end of the log or after
 *     DL_SCAN_BATCH events in a row with at >= cutoff (the log is appended
 *     in rough time order; the rest waits for the next pass).
 *  Timers records of a deleted job stay until they fire (as stale no-ops).
 *  Returns jobs + events deleted by this call or -errno (abort t). */
int deadlines_purge(struct deadlines *d, struct store *s, MDB_txn *t, int64_t now_wall,
		    int64_t retention_ms);

/** Entries in memory. */
size_t deadlines_count(const struct deadlines *d);

#endif
