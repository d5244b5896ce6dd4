/* hub.h - the realtime hub in the notifier: per-org WebSocket and SSE
 * clients fed from the event log.
 *
 * Intake authenticates GET /realtime (WebSocket), GET /events (SSE) and
 * GET /events/ws/job/{id} (WebSocket, one job), writes the handshake answer
 * (101 or the SSE head), and hands the socket with its org over the
 * intake↔notifier unix socketpair (SCM_RIGHTS, struct hub_handoff + the bytes
 * it had already read). The notifier's hub then owns the client: framing
 * (wslay), ping/pong, the close handshake, a small maximum message size, and
 * a bounded outbound queue — a client that cannot keep up is closed, never
 * allowed to block the actor or grow its memory.
 *
 * Messages: {"type":"job.created"|"job.status"|"job.progress"|"balance.updated",
 * "id":<event seq>, ...}; SSE sends the seq as the event id. A client that
 * reconnects with the last id it saw (Last-Event-ID, ?lastEventId=, or a
 * WebSocket {"type":"init","lastEventId":N}) gets every event of its org
 * after it from the event log first, so it misses nothing.
 *
 * Ownership: the hub owns adopted sockets and closes them; it borrows the
 * loop and the store, which must outlive it. */
#ifndef JOBRING_HUB_H
#define JOBRING_HUB_H

#include "jobring/loop.h"
#include "jobring/msg.h"
#include "jobring/store.h"

#include <stddef.h>
#include <stdint.h>

enum hub_kind { HUB_WS = 1, HUB_SSE, HUB_WS_JOB };

/* Sent by intake with the socket (fixed size; leftover bytes follow). */
struct hub_handoff {
	uint32_t kind;		/* enum hub_kind */
	uint32_t leftover_len;	/* bytes the HTTP server had read past the head */
	char org[ORG_ID_MAX];
	char job[32];		/* HUB_WS_JOB only */
	uint64_t last_event_id;	/* resume point, 0 = live only */
};
#define HUB_LEFTOVER_MAX 4096

/** Intake side: send fd (not closed here) with h and its leftover bytes over
 *  the socketpair. 0 or -errno. */
int hub_handoff_send(int sock, int fd, const struct hub_handoff *h, const void *leftover);

struct hub_config {
	unsigned max_clients;		/* [10000] */
	size_t max_queue_bytes;		/* per client outbound [1 MiB] */
	size_t max_message;		/* inbound WebSocket message [4096] */
	int ping_interval_ms;		/* [20000] */
	unsigned replay_max;		/* events replayed on resume [10000] */
};

struct hub;

int hub_init(struct hub **ret, struct loop *loop, struct store *store, const struct hub_config *cfg);
void hub_free(struct hub *h);
/** Start reading handoffs from intake on this socketpair end. */
int hub_watch_handoff(struct hub *h, int sock);
/** One committed event from the event log, in seq order. */
void hub_publish(struct hub *h, uint64_t seq, const struct event_rec *ev, const char *data,
		 size_t data_len);
/** A progress report the reporter streamed without writing it (MSG_PROGRESS). */
void hub_progress(struct hub *h, const struct msg *m);
/** Pings, timeouts, closing slow clients. Call every loop turn. */
void hub_tick(struct hub *h, int64_t now_ns);
int64_t hub_next_deadline(const struct hub *h);
unsigned hub_clients(const struct hub *h);

#endif
