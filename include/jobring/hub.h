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
 * after it from the event log first, so it misses nothing: the replay reads
 * the log in a read transaction, a step at a time as the client's queue
 * drains, and the client goes live once it reaches the log's end; from then
 * on published seqs at or below its cursor are skipped, so there is no gap
 * and no duplicate. A replay stops after replay_max events with
 * {"type":"replay.truncated","id":N} (N = the log's end; fetch state from
 * the API). An org WebSocket holds its first messages for up to 500 ms
 * waiting for that init message; an init is honoured only before the
 * client has been sent anything.
 *
 * GET /events/ws/job/{id} (the Rendobar CLI's socket) first gets a snapshot
 * {"type":"job.status","id":N,"jobId","status",...,"snapshot":true} of the
 * job as of seq N, then that job's job.status and job.progress messages
 * after N; its init message changes nothing.
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
	uint64_t last_event_id;	/* deliver events after this seq; intake puts
				 * the current seq when the client gave none;
				 * 0 = from the log's end at adoption */
};
#define HUB_LEFTOVER_MAX 4096

/** Intake side: send fd (not closed here) with h and its leftover
 *  (h->leftover_len bytes) over the socketpair as one SOCK_SEQPACKET message.
 *  Never blocks: -EAGAIN when the notifier is behind or down (close the
 *  client then; it reconnects). 0 or -errno. */
int hub_handoff_send(int sock, int fd, const struct hub_handoff *h, const void *leftover);
/** Notifier side (used by the hub; exposed for tests): receive one handoff
 *  without blocking into h, its leftover bytes into leftover (room for
 *  HUB_LEFTOVER_MAX) and the socket into *fd (close-on-exec; the caller owns
 *  it). 0; -EAGAIN nothing waiting; -EBADMSG a malformed message (wrong size,
 *  kind, unterminated ids, no fd or several: every fd it carried is closed);
 *  -EPIPE the other end is gone; else -errno. */
int hub_handoff_recv(int sock, struct hub_handoff *h, void *leftover, int *fd);

/* Zero fields take the defaults in brackets. */
struct hub_config {
	unsigned max_clients;		/* [10000] */
	size_t max_queue_bytes;		/* per client outbound [1 MiB] */
	size_t max_message;		/* inbound WebSocket message [4096] */
	int ping_interval_ms;		/* [20000] */
	unsigned replay_max;		/* events replayed on resume [10000] */
};

struct hub;

/** Set up the hub on the actor's loop and store (both borrowed). 0 or -errno. */
int hub_init(struct hub **ret, struct loop *loop, struct store *store, const struct hub_config *cfg);
/** Stop watching handoffs, close every client (no close handshake) and wait
 *  for their io_uring ops (runs loop_wait). NULL is a no-op. */
void hub_free(struct hub *h);
/** Start reading handoffs from intake on this socketpair end (borrowed: the
 *  hub never closes it). Stops by itself when the other end is gone.
 *  0 or -EBUSY (already watching). */
int hub_watch_handoff(struct hub *h, int sock);
/** One committed event from the event log, in seq order (the hub skips seqs
 *  a client already got from its replay). Formats the message once and
 *  queues it to the org's live clients; the bytes go out in hub_tick(). */
void hub_publish(struct hub *h, uint64_t seq, const struct event_rec *ev, const char *data,
		 size_t data_len);
/** A progress report the reporter streamed without writing it (MSG_PROGRESS:
 *  job, org, status, progress ppm in seq): {"type":"job.progress",...} with
 *  "id" = the last seq published, to the org's live clients (SSE: no "id:"
 *  line, so a browser's resume point does not move). */
void hub_progress(struct hub *h, const struct msg *m);
/** Replays, writes queued messages, pings, timeouts, closing slow clients.
 *  Call every loop turn, after the turn's hub_publish() calls. */
void hub_tick(struct hub *h, int64_t now_ns);
/** When hub_tick() next has work (mono ns); 0 while queued bytes wait to be
 *  written or a replay can go on; INT64_MAX never. */
int64_t hub_next_deadline(const struct hub *h);
/** Clients adopted and not yet gone. */
unsigned hub_clients(const struct hub *h);

struct hub_stats {
	unsigned clients;
	size_t queued;		/* outbound bytes queued over all clients */
	uint64_t adopted, refused;	/* refused: over max_clients or bad handoff */
	uint64_t closed_slow, closed_ping;
	uint64_t published, replayed;	/* events published; events sent from the log */
};
/** Counters for /metrics and tests. */
void hub_stats(const struct hub *h, struct hub_stats *st);

#endif
