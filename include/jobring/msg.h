/* msg.h - the job-transition message carried in one 128-byte ring slot.
 *
 * Rings carry facts and wake-ups; LMDB holds the truth. A message names a
 * job (or an event sequence) and says what just became true, so a consumer
 * that lost its ring contents (restart) loses nothing: it rebuilds from LMDB.
 *
 *   kind               producer → consumer        meaning
 *   MSG_JOB_WAITING    intake, timer → dispatcher  job is waiting and may be dispatchable now
 *   MSG_JOB_CANCEL     intake, timer → dispatcher  tell the provider to stop (job, provider, run)
 *   MSG_JOB_DONE       intake, reporter, timer → dispatcher  an active job ended: capacity freed
 *   MSG_TIMER_ARM      any → timer                 arm a deadline (timer_kind, job, attempt, due)
 *   MSG_TIMER_CANCEL   intake, reporter → timer    a job's execution deadline is moot (it ended;
 *                                                  its record is erased already): free it
 *   MSG_RESCAN         intake, reporter, timer → dispatcher  sent at each (re)start: messages
 *                                                  the previous process committed but had not
 *                                                  pushed yet are lost; re-read the waiting jobs
 *   MSG_EVENTS         any → notifier              events up to `seq` are committed
 *   MSG_WEBHOOK_DUE    timer → notifier            a delivery's retry time came (job = delivery id)
 *   MSG_PROGRESS       reporter → notifier         a progress report not written to LMDB
 *                                                  (coalesced), streamed to realtime clients
 */
#ifndef JOBRING_MSG_H
#define JOBRING_MSG_H

#include "jobring/ring.h"

#include <stdint.h>

enum msg_kind {
	MSG_JOB_WAITING = 1,
	MSG_JOB_CANCEL,
	MSG_JOB_DONE,
	MSG_TIMER_ARM,
	MSG_EVENTS,
	MSG_WEBHOOK_DUE,
	MSG_PROGRESS,
	MSG_TIMER_CANCEL,
	MSG_RESCAN,
};

struct msg {
	uint8_t kind;
	uint8_t status;
	uint8_t timer_kind;
	int8_t priority;
	uint32_t attempt;	/* MSG_PROGRESS: progress in ppm goes in `seq` */
	int64_t at;		/* when it happened (Unix ms) */
	int64_t due;		/* MSG_TIMER_ARM: due time (Unix ms) */
	uint64_t seq;		/* MSG_EVENTS: last committed event seq */
	char job[32];
	char org[32];
	char provider[32];
};

_Static_assert(sizeof(struct msg) == RING_SLOT_SIZE, "a message fills exactly one ring slot");

#endif
