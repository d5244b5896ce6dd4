/* api.h - the client API of DESIGN.md §4 (Rendobar-compatible), served by
 * the intake actor over httpd.
 *
 * Reads answer at once from a short read transaction. Writes run inside the
 * turn's write transaction (a nested transaction per request, so one bad
 * request cannot spoil the batch) and their answers wait in `pending` until
 * api_commit() has committed the batch durably: that is group commit, and
 * why a 2xx always means fsynced. Messages for other actors (a job to
 * dispatch, events to publish) are released only after the commit too.
 *
 * Ownership: struct api borrows cfg and store; it owns its pending answers,
 * messages and rate-limit buckets (api_free). */
#ifndef JOBRING_API_H
#define JOBRING_API_H

#include "jobring/buf.h"
#include "jobring/config.h"
#include "jobring/durable.h"
#include "jobring/httpd.h"
#include "jobring/job.h"
#include "jobring/msg.h"
#include "jobring/region.h"
#include "jobring/store.h"

struct api_answer {
	struct httpd_req *req;
	int status;
	int submit;		/* a POST /jobs answer: timed into the submit histogram */
	char extra[96];
	struct buf body;
};

struct api_out_msg {
	enum actor_id to;
	struct msg m;
};

struct ratebucket;

struct api {
	const struct config *cfg;
	struct store *store;
	struct region *region;		/* for /metrics (ring occupancy); may be NULL */
	int handoff_fd;			/* realtime sockets go to the notifier here
					 * (hub.h); -1: realtime answers 503 */
	const char *signing_key;
	const char *admin_token;
	MDB_txn *wtxn;			/* this turn's write txn, or NULL */
	struct api_answer *pending;	/* answers waiting for the commit */
	size_t npending, cappending;
	struct api_out_msg *msgs;	/* messages waiting for the commit */
	size_t nmsgs, capmsgs;
	struct api_submit *submits;	/* checked POST /jobs, written at api_commit */
	size_t nsubmits, capsubmits;
	struct ratebucket *buckets;	/* per-org token buckets */
	size_t nbuckets, nbuckets_cap;
	uint64_t commits, committed_ops;
	struct buf scratch;
	/* pipelined group commit (STORE_SYNC_DEFERRED): batches waiting for
	 * their fdatasync, answered in order */
	struct loop *loop;
	struct durable durable;
	void (*send)(void *ctx, enum actor_id to, const struct msg *m);
	void *send_ctx;
	/* tests only (JOBRING_FAULT_LOSE_MESSAGES in the environment): drop the
	 * messages of every commit, as a kill between commit and push would */
	int fault_lose_messages;
};

void api_init(struct api *api, const struct config *cfg, struct store *store,
	      const char *signing_key, const char *admin_token);
void api_free(struct api *api);

/** Route and handle one request (answers now, or queues the answer). */
void api_handle(struct api *api, struct httpd_req *req);

/** Body policy for httpd: uploads (PUT /blobs/…) are streamed to files,
 *  everything else is buffered. See httpd_body_policy. */
int64_t api_body_decide(struct api *api, struct httpd_req *req);
int api_body_chunk(struct api *api, struct httpd_req *req, const char *p, size_t n, int last);

/** Batches committed but not yet answered (waiting for their fdatasync). */
static inline unsigned api_unsynced(const struct api *api)
{
	return durable_pending(&api->durable);
}

/** Commit this turn's writes; then send the queued answers (or 507/500 to
 *  all of them if the commit failed) and hand each queued message to `send`.
 *  No-op when nothing was written. Returns 0 or the commit's -errno. */
int api_commit(struct api *api, void (*send)(void *ctx, enum actor_id to, const struct msg *m),
	       void *ctx);

/* ---- shared by the API modules and the notifier ------------------------- */

/** Write the public job object (DESIGN.md §4) of j. Output file URLs are
 *  signed afresh with expiry now + 1 h. */
void api_job_json(struct jw *w, const struct api *api, const struct job *j, int64_t now);

/** Answer with {"data": <body>} (body is a complete JSON value). */
void api_ok(struct httpd_req *req, int status, const struct buf *data);
/** {"error":{"code","message"[,"details"]}}; details is raw JSON or NULL. */
void api_err(struct httpd_req *req, int status, const char *code, const char *message,
	     const char *details_json);

#endif
