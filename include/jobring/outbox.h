/* outbox.h - the durable webhook outbox of DESIGN.md §5: endpoints, the
 * event → delivery mapping, the signed request of each attempt, and what an
 * attempt's outcome does (retry, deliver, fail, disable the endpoint).
 *
 * Durability: the notifier turns events into deliveries inside the same
 * write transaction that advances its event cursor, so a crash neither
 * loses nor duplicates a delivery; a delivery is in LMDB before its first
 * attempt; an attempt whose outcome was not committed (crash mid-request)
 * is made again with the same delivery id (at-least-once: receivers dedupe
 * on the id).
 *
 * Key layouts (big-endian integers, so memcmp order is numeric order):
 *   endpoints   id ("we_" + 20)                    → struct wh_endpoint
 *               org 0x00 id                        → ""  an org's endpoints
 *   deliveries  id ("del_" + 20)                   → struct wh_delivery
 *               id 0x01                            → body, then callback JSON
 *               endpoint 0x00 be64(~created) id    → ""  newest first per endpoint
 *   deliv_due   be64(next attempt ms) id           → ""  pending deliveries only
 *   timers      (store.h) TIMER_WEBHOOK id, attempt = the next attempt's number
 *   meta        "notifier.cursor"                  → be64(last event seq consumed)
 *               "whlow:" org                       → "" while the org is below its
 *                                                    low-balance mark (balance.low
 *                                                    fires on the way down only)
 *               "cbsecret:" org                    → the org's callback secret
 * Primary keys never hold a NUL byte and index keys always do, so the two
 * families in one sub-database cannot collide.
 *
 * Event mapping (event-log record → webhook events, in this order):
 *   EV_JOB_CREATED                           job.created
 *   EV_JOB_STATUS → running                  job.started
 *   EV_JOB_STATUS dispatched → complete      job.started, then job.completed (the
 *                                            provider skipped "running"; the job
 *                                            did start, its startedAt is set)
 *   EV_JOB_STATUS → complete                 job.completed
 *   EV_JOB_STATUS → failed                   job.failed
 *   EV_JOB_STATUS → cancelled                job.cancelled
 *   EV_BALANCE with data {"low":true}        balance.low (once per descent)
 *   anything else (progress, logs, → waiting, → dispatched): nothing.
 * A job's `callback` ({url, headers, verify}) gets a delivery of the same
 * envelope for each terminal event; verify:true signs it like an endpoint
 * delivery with the org's callback secret (outbox_callback_secret).
 *
 * Code: outbox.c holds the records, the mapping, the cursor and outcomes;
 * outbox_send.c the target policy (wh_url_check) and outbox_request().
 *
 * Ownership: records are copied out into caller structs; pointers returned
 * for variable data point into the map and are valid until the transaction
 * ends or the next write. Requests (struct wh_request) own their buffers.
 * Errors: 0 or -errno; store errors as in store.h (-ENOSPC: map full). */
#ifndef JOBRING_OUTBOX_H
#define JOBRING_OUTBOX_H

#include "jobring/buf.h"
#include "jobring/config.h"
#include "jobring/store.h"

#include <stddef.h>
#include <stdint.h>

enum wh_event {
	WH_JOB_CREATED = 1, WH_JOB_STARTED, WH_JOB_COMPLETED, WH_JOB_FAILED, WH_JOB_CANCELLED,
	WH_BALANCE_LOW, WH_EVENT_MAX
};
#define WH_BIT(e) (1u << (e))
#define WH_ALL_EVENTS (((1u << WH_EVENT_MAX) - 1u) & ~1u)
/** Subscribed when an endpoint is created without subscribedEvents. */
#define WH_DEFAULT_EVENTS (WH_BIT(WH_JOB_COMPLETED) | WH_BIT(WH_JOB_FAILED) | WH_BIT(WH_JOB_CANCELLED))

#define WH_MAX_ENDPOINTS 10	/* per org */
#define WH_ID_MAX 32
#define WH_NAME_CHARS 50	/* code points */
#define WH_NAME_MAX 208		/* bytes, with the NUL */
#define WH_URL_MAX 2048		/* bytes, without the NUL */
#define WH_SECRET_MAX 64
#define WH_ROTATE_MS (24LL * 3600 * 1000)	/* the previous secret keeps signing */
#define WH_RETRY_AFTER_MAX_S 86400		/* a receiver's Retry-After is capped */
#define WH_CB_MAX_HEADERS 20			/* callback headers sent */
/** An attempt may start this much before its due time (timer rounding). */
#define WH_EARLY_MS 100

/** "job.created" ...; NULL for anything else. Static storage. */
const char *wh_event_name(int e);
/** The event for a name, or 0. */
int wh_event_parse(const char *s);

/* ---- endpoints ------------------------------------------------------------ */

enum wh_disabled { WH_ENABLED = 0, WH_DISABLED_USER, WH_DISABLED_FAILURES, WH_DISABLED_GONE };

/* If you change this struct, bump WH_ENDPOINT_VERSION and convert old records. */
struct wh_endpoint {
	uint32_t version;
	uint32_t events;		/* WH_BIT() of the subscribed events */
	uint32_t active;		/* 0: no new deliveries, pending ones fail */
	uint32_t disabled;		/* enum wh_disabled: why it is inactive */
	uint32_t failures;		/* consecutive deliveries that finally failed */
	uint32_t pad;
	int64_t created_at, updated_at;
	int64_t prev_until;		/* prev_secret signs too until then (ms) */
	char id[WH_ID_MAX];
	char org[ORG_ID_MAX];
	char name[WH_NAME_MAX];
	char url[WH_URL_MAX + 8];
	char secret[WH_SECRET_MAX];
	char prev_secret[WH_SECRET_MAX];
};

/** Read endpoint id. 0, -ENOENT, -EBADMSG. */
int wh_endpoint_get(struct store *s, MDB_txn *t, const char *id, struct wh_endpoint *ret);
/** Write e and its org index entry (sets the version). */
int wh_endpoint_put(struct store *s, MDB_txn *t, const struct wh_endpoint *e);
/** Delete e, its index entry, and up to WH_DELETE_DELIVERIES of its
 *  deliveries (older ones beyond that stay as orphans; pending ones among
 *  them fail when due). */
#define WH_DELETE_DELIVERIES 10000
int wh_endpoint_del(struct store *s, MDB_txn *t, const struct wh_endpoint *e);
/** An org's endpoints (at most WH_MAX_ENDPOINTS, by id). Returns the count. */
int wh_endpoint_list(struct store *s, MDB_txn *t, const char *org,
		     struct wh_endpoint ret[WH_MAX_ENDPOINTS]);

/** Why a URL cannot be a webhook target: 0 if fine, else -EINVAL with a
 *  message in why. http(s) only, no user info, host syntax checked; unless
 *  allow_private: https only, and no localhost, *.local, *.internal or
 *  literal loopback, private, link-local, CGNAT, multicast or reserved
 *  address (IPv4 in any inet_aton spelling, IPv6, v4-mapped IPv6). Names
 *  that resolve to such addresses are caught at send time (curlio's
 *  deny_private). */
int wh_url_check(const char *url, int allow_private, char *why, size_t whysz);

/* ---- deliveries ------------------------------------------------------------- */

enum wh_status { WH_PENDING = 1, WH_DELIVERED, WH_FAILED };

/* If you change this struct, bump WH_DELIVERY_VERSION and convert old records. */
struct wh_delivery {
	uint32_t version;
	uint8_t status;			/* enum wh_status */
	uint8_t event;			/* enum wh_event */
	uint8_t callback;		/* 1: a per-job callback, no endpoint */
	uint8_t pad;
	uint32_t attempts;		/* attempts whose outcome was recorded */
	int32_t last_status;		/* HTTP status of the last attempt, 0 if none */
	uint32_t body_len, cb_len;	/* payload: body, then callback JSON */
	uint64_t seq;			/* the event it came from */
	int64_t created_at, next_at, delivered_at, last_at;
	char id[WH_ID_MAX];
	char endpoint[WH_ID_MAX];	/* "" for a callback */
	char org[ORG_ID_MAX];
	char job[WH_ID_MAX];		/* "" for balance.low */
	char last_error[96];
};

/** Read delivery id; body/cb (either may be NULL) point into the map.
 *  0, -ENOENT, -EBADMSG. */
int wh_delivery_get(struct store *s, MDB_txn *t, const char *id, struct wh_delivery *ret,
		    const char **body, const char **cb);

/** Make delivery id pending with a new attempt due now (the API's
 *  redeliver): whatever its status, the attempt count goes on. */
int wh_redeliver(struct store *s, MDB_txn *t, const char *id, int64_t now,
		 struct wh_delivery *ret);

/** The org's callback signing secret into out (WH_SECRET_MAX bytes); with
 *  create, one is made and stored when there is none (t must be a write
 *  transaction then). 0, -ENOENT (none and !create), or a store error. */
int outbox_callback_secret(struct store *s, MDB_txn *t, const char *org, int create,
			   char out[WH_SECRET_MAX]);

/* ---- the outbox ------------------------------------------------------------ */

struct outbox {
	struct store *s;
	const struct config *cfg;	/* webhooks.* */
	uint64_t rng;			/* jitter; non-zero */
};

/** Delivery ids made by one call (grows with xrealloc; free with free()). */
struct wh_ids {
	char (*v)[WH_ID_MAX];
	size_t n, cap;
};

/** The webhook events of one event-log record, in order (see the table at
 *  the top); out gets at most 2. Returns how many. balance.low is returned
 *  whenever data says low; outbox_event() fires it once per descent. */
int outbox_map(const struct event_rec *ev, const char *data, size_t data_len, int out[2]);

/** Turn event seq into deliveries inside write txn t: one per active
 *  endpoint of its org subscribed to each mapped event, plus the job's
 *  callback on terminal events. Each is written pending, due at now, with
 *  its envelope. New ids are appended to made. Returns the number made. */
int outbox_event(struct outbox *ob, MDB_txn *t, uint64_t seq, const struct event_rec *ev,
		 const char *data, size_t data_len, int64_t now, struct wh_ids *made);

/** Called for every event outbox_advance() consumes; the pointers are valid
 *  only during the call. */
typedef void (*outbox_each_fn)(void *user, uint64_t seq, const struct event_rec *ev,
			       const char *data, size_t data_len);

/** Consume up to max events after the stored cursor in write txn t: call
 *  each (may be NULL), outbox_event(), then store the new cursor. *cursor
 *  gets it. Returns the number of events consumed (0: caught up). */
int outbox_advance(struct outbox *ob, MDB_txn *t, unsigned max, int64_t now,
		   struct wh_ids *made, outbox_each_fn each, void *user, uint64_t *cursor);

/** The stored cursor (0 when the notifier never ran). */
int outbox_cursor(struct store *s, MDB_txn *t, uint64_t *ret);

/** Write the envelope {version, event, deliveryId, timestamp, orgId, jobId,
 *  data} into out (appended); job may be NULL (jobId null); data_json is a
 *  complete JSON object. */
int outbox_envelope(struct buf *out, int event, const char *delivery_id, int64_t ts_ms,
		    const char *org, const char *job, const char *data_json, size_t data_len);

/** Backoff after attempt n (≥ 1) failed: backoffMs × 2^(n−1) capped at
 *  backoffMaxMs, plus up to a quarter more of jitter, never above the cap;
 *  a larger Retry-After (seconds, ≤ WH_RETRY_AFTER_MAX_S; < 0 none) wins. */
int64_t outbox_backoff_ms(const struct config *cfg, unsigned n, int64_t retry_after_s,
			  uint64_t *rng);

/** One attempt, ready for curlio. url, hdr and body are owned here. */
struct wh_request {
	struct buf url, body, hdr;		/* hdr: NUL-separated "Name: value" */
	const char *hp[16 + WH_CB_MAX_HEADERS];	/* into hdr, valid until the next build */
	unsigned nh;
	uint32_t attempt;			/* the attempt this is (1-based) */
	char id[WH_ID_MAX];
	char endpoint[WH_ID_MAX];		/* "" for a callback */
	char why[96];				/* -EPERM: why it cannot go */
};
void wh_request_init(struct wh_request *rq);
void wh_request_free(struct wh_request *rq);

/** Build attempt (attempts + 1) of delivery id at now: the endpoint's (or
 *  callback's) URL, the headers and the stored body; signatures use now in
 *  seconds. 0; -ENOENT (gone), -ESTALE (not pending, or not due: next
 *  attempt after now + WH_EARLY_MS); -EPERM: the target is refused (endpoint
 *  deleted or inactive, URL not allowed) and why says so — record that as
 *  a final outcome. */
int outbox_request(struct outbox *ob, MDB_txn *t, const char *id, int64_t now,
		   struct wh_request *rq);

/** What an attempt gave. */
struct wh_outcome {
	char id[WH_ID_MAX];
	uint32_t attempt;	/* the attempt made (1-based) */
	int status;		/* HTTP status, 0 if no answer */
	int64_t retry_after_s;	/* -1 if none */
	int final;		/* no retry whatever the count (refused target) */
	char error[96];		/* "" on an answer */
};

/** What outbox_outcome() did, for the caller's messages after the commit. */
struct wh_next {
	int stale;		/* the record moved on: nothing was written */
	int delivered, failed;	/* final states */
	int disabled;		/* the endpoint was disabled now */
	int64_t due;		/* retry: due time (ms), 0 if none */
	uint32_t attempt;	/* retry: its attempt number */
	int64_t created_at;	/* when the delivery was made (≈ its event), for metrics */
};

/** Record o in write txn t at now: 2xx → delivered (endpoint failures
 *  reset); 410 → failed and an endpoint disabled; else a retry at now +
 *  outbox_backoff_ms() (deliv_due moved, timer_record(TIMER_WEBHOOK) written)
 *  until webhooks.maxAttempts, then failed and the endpoint's consecutive
 *  failures counted (webhooks.disableAfterFailures disables it). */
int outbox_outcome(struct outbox *ob, MDB_txn *t, const struct wh_outcome *o, int64_t now,
		   struct wh_next *ret);

/** Called for each pending delivery due at or before now; returns 1 if it
 *  took the id, 0 to skip it. */
typedef int (*outbox_due_fn)(void *user, const char *id);

/** Walk deliv_due in due order up to now: fn for each, until max were
 *  taken or max_scan entries seen. Returns how many were taken. */
int outbox_due(struct outbox *ob, MDB_txn *t, int64_t now, unsigned max, unsigned max_scan,
	       outbox_due_fn fn, void *user);

/** When the earliest pending delivery is due (ms), or INT64_MAX. */
int64_t outbox_next_due(struct outbox *ob, MDB_txn *t);

#endif
