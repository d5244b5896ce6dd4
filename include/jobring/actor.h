/* actor.h - what every actor process shares: its identity, config, the
 * shared-memory region, its own LMDB environment and io_uring loop (both
 * opened after fork), and the ring plumbing.
 *
 * Ring discipline: actor_send() queues a message locally; actor_flush() (run
 * by actor_wait() before sleeping) pushes queued messages into the rings and
 * rings the consumers' doorbells. A full ring pushes back: the messages stay
 * queued and are retried on the next turn; nothing is ever dropped.
 *
 * Each actor file exports only its <name>_main(struct actor *). */
#ifndef JOBRING_ACTOR_H
#define JOBRING_ACTOR_H

#include "jobring/config.h"
#include "jobring/loop.h"
#include "jobring/msg.h"
#include "jobring/region.h"
#include "jobring/store.h"

#include <signal.h>

struct outq {
	struct msg *v;
	unsigned head, n, cap;
};

struct actor {
	enum actor_id id;
	const struct config *cfg;
	struct region *region;
	struct store store;
	struct loop loop;
	int listen_fd;		/* intake: client API; reporter: provider API; else -1 */
	int handoff_fd;		/* intake ↔ notifier socketpair end, else -1 */
	char signing_key[80];
	char admin_token[80];
	struct outq out[ACTOR_COUNT];
	struct loop_op bell_op;
	uint64_t bell_buf;
	uint64_t turns, msgs_in, msgs_out;
};

/** Set by SIGTERM/SIGINT in an actor: finish the turn, drain, exit 0. */
extern volatile sig_atomic_t actor_stopping;

/** Open the store and loop, arm the doorbell read, install signal handlers.
 *  0 or -errno (the actor exits non-zero and the supervisor restarts it). */
int actor_init(struct actor *a);
void actor_fini(struct actor *a);

/** Queue m for actor `to` (copied). */
void actor_send(struct actor *a, enum actor_id to, const struct msg *m);
/** Push queued messages into the rings; ring doorbells. Returns how many
 *  remain queued (rings full). */
unsigned actor_flush(struct actor *a);

typedef void (*actor_msg_fn)(struct actor *a, enum actor_id from, const struct msg *m);
/** Pop up to `max` messages from every incoming ring, calling fn for each.
 *  Returns how many were handled. */
unsigned actor_recv(struct actor *a, actor_msg_fn fn, unsigned max);

/** Flush, then sleep on the doorbell, the loop's sockets and the timeout
 *  together (timeout_ms < 0: no timer; 0: don't sleep). Implements the
 *  need-wakeup protocol: the sleeping flag is set, then the incoming rings
 *  are checked again before blocking, so a wake-up can't be lost. */
int actor_wait(struct actor *a, int64_t timeout_ms);

/** 1 if any incoming ring has messages. */
int actor_has_input(struct actor *a);

/* Each actor's loop (actors/NAME.c). Return 0 after a clean drain. */
int intake_main(struct actor *a);
int dispatcher_main(struct actor *a);
int timerwheel_main(struct actor *a);
int reporter_main(struct actor *a);
int notifier_main(struct actor *a);

#endif
