/* hub.c - the realtime hub: clients per org, events formatted once and
 * fanned out, resume by replaying the event log, handoffs from intake.
 *
 * A client is in one of four modes:
 *   HOLD    an org WebSocket waiting (≤ INIT_WAIT_MS) for its init message;
 *   REPLAY  reading the event log after its cursor, a step per tick while its
 *           queue is below half the bound; published events are ignored (the
 *           log has them);
 *   LIVE    gets published events with seq > cursor;
 *   DONE    closing, gets nothing.
 * HOLD and REPLAY clients are on the pending list that hub_tick() works
 * through with one read transaction per tick. */
#include "jobring/hub.h"
#include "jobring/buf.h"
#include "jobring/job.h"
#include "jobring/strmap.h"
#include "jobring/util.h"
#include "jobring/ws.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

#define INIT_WAIT_MS 500
#define SCAN_STEP 4096		/* log records read per client per tick */
#define HANDOFFS_PER_WAKE 256
#define DATA_MAX 1024		/* event data embedded in a message */

enum { M_HOLD, M_REPLAY, M_LIVE, M_DONE };

struct org_ent {
	struct client *head;
	unsigned n;
	char id[ORG_ID_MAX];
};

struct client {
	struct hub *h;
	struct ws_conn *conn;
	struct org_ent *og;
	struct client *prev, *next;	/* og's list */
	struct client *pprev, *pnext;	/* h->pending */
	uint8_t kind, mode;
	bool sent_any, pending;
	char job[32];
	uint64_t cursor;		/* every org event ≤ cursor was sent or skipped */
	unsigned replayed;
	int64_t hold_until;
};

struct hub {
	struct loop *loop;
	struct store *store;
	struct hub_config cfg;
	struct ws_server *ws;
	struct strmap orgs;		/* org id → struct org_ent */
	struct client *pending;
	unsigned nclients;
	uint64_t last_seq;		/* the last seq published */
	int hsock;
	bool hs_armed, hs_stop;
	struct loop_op hs_op;
	struct buf json, out;
	unsigned char left[HUB_LEFTOVER_MAX];
	uint64_t adopted, refused, published, replayed;
};

/* ---- formatting --------------------------------------------------------- */

static const char *ev_type(int kind)
{
	switch (kind) {
	case EV_JOB_CREATED: return "job.created";
	case EV_JOB_STATUS: return "job.status";
	case EV_JOB_PROGRESS: return "job.progress";
	case EV_BALANCE: return "balance.updated";
	default: return NULL;	/* logs are not streamed */
	}
}

/* Event data is a small JSON object written by the lifecycle; embed it only
 * if it looks like one and cannot break an SSE line. */
static bool data_ok(const char *p, size_t n)
{
	if (!p || n < 2 || n > DATA_MAX || p[0] != '{' || p[n - 1] != '}')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20)
			return false;
	return utf8_valid(p, n);
}

static void jw_kv_fixed(struct jw *w, const char *k, const char *s, size_t cap)
{
	jw_key(w, k);
	jw_strn(w, s, strnlen(s, cap));
}

static void event_json(struct buf *b, uint64_t seq, const struct event_rec *ev, const char *data,
		       size_t n)
{
	struct jw w;

	buf_reset(b);
	jw_init(&w, b);
	jw_obj_begin(&w);
	jw_kv_str(&w, "type", ev_type(ev->kind));
	jw_kv_uint(&w, "id", seq);
	if (ev->kind == EV_BALANCE) {
		jw_kv_int(&w, "amount", ev->amount);
		jw_key(&w, "balance");
		jw_money(&w, ev->amount);
	} else {
		jw_kv_fixed(&w, "jobId", ev->job, sizeof(ev->job));
		jw_kv_fixed(&w, "jobType", ev->type, sizeof(ev->type));
		jw_kv_str(&w, "status", job_status_name(ev->status));
		if (ev->kind == EV_JOB_STATUS)
			jw_kv_str(&w, "prevStatus", job_status_name(ev->prev_status));
		jw_key(&w, "progress");
		jw_double(&w, ev->progress / 1e6);
		jw_kv_int(&w, "attempt", ev->attempt);
		if (ev->test)
			jw_kv_bool(&w, "test", true);
	}
	jw_kv_int(&w, "at", ev->at);
	if (data_ok(data, n)) {
		jw_key(&w, "data");
		jw_raw(&w, data, n);
	}
	jw_obj_end(&w);
}

/* The frame for h->json: a text frame, or an SSE event (with "id:" if id). */
static struct ws_frame *make_frame(struct hub *h, bool sse, const char *type, const uint64_t *id)
{
	if (!sse)
		return ws_frame_text(h->json.data, h->json.len);
	buf_reset(&h->out);
	if (id)
		buf_printf(&h->out, "id: %" PRIu64 "\n", *id);
	buf_printf(&h->out, "event: %s\ndata: ", type);
	buf_append(&h->out, h->json.data, h->json.len);
	buf_puts(&h->out, "\n\n");
	return ws_frame_raw(h->out.data, h->out.len);
}

/* ---- clients -------------------------------------------------------------- */

static void pending_add(struct hub *h, struct client *c)
{
	if (c->pending)
		return;
	c->pending = true;
	c->pprev = NULL;
	c->pnext = h->pending;
	if (h->pending)
		h->pending->pprev = c;
	h->pending = c;
}

static void pending_del(struct hub *h, struct client *c)
{
	if (!c->pending)
		return;
	c->pending = false;
	if (c->pprev)
		c->pprev->pnext = c->pnext;
	else
		h->pending = c->pnext;
	if (c->pnext)
		c->pnext->pprev = c->pprev;
	c->pprev = c->pnext = NULL;
}

static int client_send(struct client *c, struct ws_frame *f)
{
	int r = f ? ws_send(c->conn, f) : -ENOMEM;

	if (r == 0)
		c->sent_any = true;
	else
		c->mode = M_DONE;
	return r;
}

static void client_close(struct client *c, uint16_t code, const char *reason)
{
	c->mode = M_DONE;
	ws_close(c->conn, code, reason);
}

/* Whether c gets event ev (of c's org). */
static bool wants(const struct client *c, const struct event_rec *ev)
{
	if (!ev_type(ev->kind))
		return false;
	if (c->kind != HUB_WS_JOB)
		return true;
	return (ev->kind == EV_JOB_STATUS || ev->kind == EV_JOB_PROGRESS) &&
	       strncmp(ev->job, c->job, sizeof(ev->job)) == 0;
}

static void on_closed(struct ws_conn *conn, void *user, void *arg)
{
	struct client *c = user;
	struct hub *h = arg;
	struct org_ent *og = c->og;
	(void)conn;

	pending_del(h, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		og->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (--og->n == 0) {
		strmap_del(&h->orgs, og->id);
		free(og);
	}
	h->nclients--;
	free(c);
}

/* ---- replay ------------------------------------------------------------------ */

static uint64_t log_end(struct hub *h, MDB_txn *t)
{
	uint64_t end = 0;
	store_peek_seq(h->store, t, "event", &end);
	return end;
}

/* Too far behind: say so and go live from the log's end. */
static void replay_truncate(struct hub *h, struct client *c, uint64_t end)
{
	struct jw w;

	c->cursor = MAX(c->cursor, end);
	c->mode = M_LIVE;
	buf_reset(&h->json);
	jw_init(&w, &h->json);
	jw_obj_begin(&w);
	jw_kv_str(&w, "type", "replay.truncated");
	jw_kv_uint(&w, "id", c->cursor);
	jw_obj_end(&w);
	struct ws_frame *f = make_frame(h, c->kind == HUB_SSE, "replay.truncated", &c->cursor);
	client_send(c, f);
	ws_frame_unref(f);
}

/* Send the client's events after its cursor from the log, until its queue is
 * half full, SCAN_STEP records were read, or the log ends (→ LIVE). */
static void replay_step(struct hub *h, struct client *c, MDB_txn *t)
{
	size_t low = h->cfg.max_queue_bytes / 2;
	unsigned char kb[8];
	MDB_val k = { sizeof(kb), kb }, v;
	MDB_cursor *cur;
	unsigned scanned = 0;
	int rc;

	if (ws_queued(c->conn) >= low)
		return;
	if (mdb_cursor_open(t, h->store->dbi[DB_EVENTS], &cur) != 0) {
		client_close(c, 1011, "event log unavailable");
		return;
	}
	be64_put(kb, c->cursor + 1);
	rc = c->cursor == UINT64_MAX ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		struct event_rec ev;
		uint64_t seq;

		if (k.mv_size == 8 && v.mv_size >= sizeof(ev)) {
			seq = be64_get(k.mv_data);
			memcpy(&ev, v.mv_data, sizeof(ev));
			if (strncmp(ev.org, c->og->id, sizeof(ev.org)) == 0 && wants(c, &ev)) {
				const char *data = (const char *)v.mv_data + sizeof(ev);
				size_t dn = MIN((size_t)ev.data_len, v.mv_size - sizeof(ev));
				if (c->replayed >= h->cfg.replay_max) {
					replay_truncate(h, c, log_end(h, t));
					goto out;
				}
				event_json(&h->json, seq, &ev, data, dn);
				struct ws_frame *f = make_frame(h, c->kind == HUB_SSE,
								ev_type(ev.kind), &seq);
				int r = client_send(c, f);
				ws_frame_unref(f);
				if (r < 0)
					goto out;
				c->replayed++;
				h->replayed++;
			}
			c->cursor = MAX(c->cursor, seq);
		}
		if (++scanned >= SCAN_STEP || ws_queued(c->conn) >= low)
			goto out;	/* go on next tick */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		c->mode = M_LIVE;	/* every event ≤ the log's end is behind us */
	else
		client_close(c, 1011, "event log unavailable");
out:
	mdb_cursor_close(cur);
}

/* ---- intake's handoffs ---------------------------------------------------------- */

static void refuse(struct hub *h, int fd, uint32_t kind)
{
	/* close 1013 "try again later" */
	static const unsigned char close1013[] = { 0x88, 0x02, 0x03, 0xf5 };

	if (kind != HUB_SSE)
		(void)!send(fd, close1013, sizeof(close1013), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
	h->refused++;
}

static struct org_ent *org_ent_get(struct hub *h, const char *org)
{
	struct org_ent *og = strmap_get(&h->orgs, org);

	if (!og) {
		og = xcalloc(1, sizeof(*og));
		snprintf(og->id, sizeof(og->id), "%s", org);
		strmap_put(&h->orgs, og->id, og);
	}
	return og;
}

/* The per-job socket starts with the job's status as of `end`. */
static void job_snapshot(struct hub *h, struct client *c, const struct job *j, uint64_t end)
{
	struct jw w;

	buf_reset(&h->json);
	jw_init(&w, &h->json);
	jw_obj_begin(&w);
	jw_kv_str(&w, "type", "job.status");
	jw_kv_uint(&w, "id", end);
	jw_kv_str(&w, "jobId", j->id);
	jw_kv_str(&w, "jobType", j->type);
	jw_kv_str(&w, "status", job_status_name(j->status));
	jw_key(&w, "progress");
	jw_double(&w, j->progress / 1e6);
	jw_kv_int(&w, "attempt", j->attempt);
	jw_kv_int(&w, "at", j->updated_at);
	jw_kv_bool(&w, "snapshot", true);
	jw_obj_end(&w);
	struct ws_frame *f = ws_frame_text(h->json.data, h->json.len);
	client_send(c, f);
	ws_frame_unref(f);
}

static void adopt(struct hub *h, int fd, const struct hub_handoff *ho, const void *left)
{
	struct client *c;
	struct job j;
	MDB_txn *t;
	uint64_t end;
	int found = 0;

	if (h->nclients >= h->cfg.max_clients || store_begin(h->store, 1, &t) < 0) {
		refuse(h, fd, ho->kind);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->h = h;
	c->kind = (uint8_t)ho->kind;
	memcpy(c->job, ho->job, sizeof(c->job));
	if (ws_adopt(h->ws, fd, ho->kind == HUB_SSE ? WS_STREAM : WS_WEBSOCKET, left,
		     ho->leftover_len, c, &c->conn) < 0) {
		store_abort(t);
		free(c);
		h->refused++;
		return;
	}
	h->adopted++;
	h->nclients++;
	c->og = org_ent_get(h, ho->org);
	c->next = c->og->head;
	if (c->og->head)
		c->og->head->prev = c;
	c->og->head = c;
	c->og->n++;

	end = log_end(h, t);
	c->cursor = ho->last_event_id ? MIN(ho->last_event_id, end) : end;
	if (ho->kind == HUB_WS_JOB) {
		found = job_get(h->store, t, c->job, &j) == 0 && strcmp(j.org, ho->org) == 0;
		if (found) {
			c->cursor = end;
			c->mode = M_LIVE;
			job_snapshot(h, c, &j, end);
		}
	}
	store_abort(t);
	if (ho->kind == HUB_WS_JOB) {
		if (!found)
			client_close(c, 1008, "job not found");
	} else if (ho->kind == HUB_WS) {
		c->mode = M_HOLD;
		c->hold_until = mono_ns() + INIT_WAIT_MS * 1000000LL;
		pending_add(h, c);
	} else {
		c->mode = M_REPLAY;
		pending_add(h, c);
	}
}

static void hs_arm(struct hub *h)
{
	struct io_uring_sqe *sqe = loop_sqe(h->loop, &h->hs_op);
	io_uring_prep_poll_add(sqe, h->hsock, POLLIN);
	h->hs_armed = true;
}

static void hs_cb(struct loop_op *op, int res, unsigned flags)
{
	struct hub *h = container_of(op, struct hub, hs_op);
	struct hub_handoff ho;
	int fd;
	(void)flags;

	h->hs_armed = false;
	if (h->hs_stop || res == -ECANCELED)
		return;
	for (int i = 0; i < HANDOFFS_PER_WAKE; i++) {
		int r = hub_handoff_recv(h->hsock, &ho, h->left, &fd);
		if (r == -EAGAIN)
			break;
		if (r == -EBADMSG) {
			h->refused++;
			continue;
		}
		if (r < 0)
			return;	/* intake's end is gone (or the fd is bad): stop */
		adopt(h, fd, &ho, h->left);
	}
	hs_arm(h);
}

/* ---- WebSocket input: the init message ---------------------------------------------- */

static int parse_id(const cJSON *v, uint64_t *ret)
{
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0) {
		*ret = (uint64_t)v->valuedouble;
		return 0;
	}
	if (cJSON_IsString(v)) {
		int64_t x;
		if (parse_i64(v->valuestring, 0, INT64_MAX, &x) < 0)
			return -EINVAL;
		*ret = (uint64_t)x;
		return 0;
	}
	return -EINVAL;
}

static void on_text(struct ws_conn *conn, void *user, const char *p, size_t n, void *arg)
{
	struct client *c = user;
	struct hub *h = arg;
	cJSON *j = cJSON_ParseWithLength(p, n);
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
	uint64_t id = 0;
	MDB_txn *t;
	(void)conn;

	/* Only an org socket that was sent nothing yet may move its start. */
	if (cJSON_IsString(type) && strcmp(type->valuestring, "init") == 0 &&
	    c->kind == HUB_WS && !c->sent_any && c->mode != M_DONE) {
		if (parse_id(cJSON_GetObjectItemCaseSensitive(j, "lastEventId"), &id) == 0 && id &&
		    store_begin(h->store, 1, &t) == 0) {
			c->cursor = MIN(id, log_end(h, t));
			store_abort(t);
		}
		c->mode = M_REPLAY;
		c->replayed = 0;
		pending_add(h, c);
	}
	cJSON_Delete(j);
}

/* ---- public ---------------------------------------------------------------------------- */

int hub_init(struct hub **ret, struct loop *loop, struct store *store, const struct hub_config *cfg)
{
	struct hub *h = xcalloc(1, sizeof(*h));
	struct ws_handlers hd = { .on_text = on_text, .on_closed = on_closed, .arg = h };
	struct ws_config wc;
	int r;

	h->loop = loop;
	h->store = store;
	h->cfg = *cfg;
	if (!h->cfg.max_clients)
		h->cfg.max_clients = 10000;
	if (!h->cfg.max_queue_bytes)
		h->cfg.max_queue_bytes = 1u << 20;
	if (!h->cfg.max_message)
		h->cfg.max_message = 4096;
	if (h->cfg.ping_interval_ms <= 0)
		h->cfg.ping_interval_ms = 20000;
	if (!h->cfg.replay_max)
		h->cfg.replay_max = 10000;
	memset(&wc, 0, sizeof(wc));
	wc.max_message = h->cfg.max_message;
	wc.max_queue = h->cfg.max_queue_bytes;
	wc.ping_interval_ms = h->cfg.ping_interval_ms;
	if ((r = ws_server_init(&h->ws, loop, &wc, &hd)) < 0) {
		free(h);
		return r;
	}
	strmap_init(&h->orgs);
	buf_init(&h->json);
	buf_init(&h->out);
	h->hsock = -1;
	h->hs_op.cb = hs_cb;
	*ret = h;
	return 0;
}

void hub_free(struct hub *h)
{
	struct strmap_slot *sl;
	size_t pos = 0;

	if (!h)
		return;
	h->hs_stop = true;
	if (h->hs_armed) {
		struct io_uring_sqe *sqe = loop_sqe(h->loop, NULL);
		io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&h->hs_op);
		while (h->hs_armed)
			if (loop_wait(h->loop, 100) < 0)
				break;
	}
	ws_server_free(h->ws);	/* no callbacks: the clients are freed here */
	while ((sl = strmap_next(&h->orgs, &pos))) {
		struct org_ent *og = sl->val;
		for (struct client *c = og->head, *next; c; c = next) {
			next = c->next;
			free(c);
		}
		free(og);
	}
	strmap_free(&h->orgs);
	buf_free(&h->json);
	buf_free(&h->out);
	free(h);
}

int hub_watch_handoff(struct hub *h, int sock)
{
	if (h->hs_armed)
		return -EBUSY;
	h->hsock = sock;
	h->hs_stop = false;
	hs_arm(h);
	return 0;
}

void hub_publish(struct hub *h, uint64_t seq, const struct event_rec *ev, const char *data,
		 size_t data_len)
{
	struct ws_frame *fw = NULL, *fs = NULL;
	const char *type = ev_type(ev->kind);
	char org[ORG_ID_MAX + 1];
	struct org_ent *og;
	bool formatted = false;

	h->last_seq = MAX(h->last_seq, seq);
	h->published++;
	if (!type)
		return;
	memcpy(org, ev->org, ORG_ID_MAX);
	org[ORG_ID_MAX] = '\0';
	if (!(og = strmap_get(&h->orgs, org)))
		return;
	for (struct client *c = og->head; c; c = c->next) {
		if (c->mode != M_LIVE || seq <= c->cursor)
			continue;
		c->cursor = seq;
		if (!wants(c, ev))
			continue;
		if (!formatted) {
			event_json(&h->json, seq, ev, data, data_len);
			formatted = true;
		}
		struct ws_frame **fp = c->kind == HUB_SSE ? &fs : &fw;
		if (!*fp)
			*fp = make_frame(h, c->kind == HUB_SSE, type, &seq);
		client_send(c, *fp);
	}
	ws_frame_unref(fw);
	ws_frame_unref(fs);
}

void hub_progress(struct hub *h, const struct msg *m)
{
	struct ws_frame *fw = NULL, *fs = NULL;
	char org[ORG_ID_MAX + 1], job[sizeof(m->job) + 1];
	struct org_ent *og;
	struct jw w;

	_Static_assert(sizeof(m->org) == ORG_ID_MAX, "msg and store agree on org ids");
	memcpy(org, m->org, ORG_ID_MAX);
	org[ORG_ID_MAX] = '\0';
	if (!(og = strmap_get(&h->orgs, org)))
		return;
	memcpy(job, m->job, sizeof(m->job));
	job[sizeof(m->job)] = '\0';
	buf_reset(&h->json);
	jw_init(&w, &h->json);
	jw_obj_begin(&w);
	jw_kv_str(&w, "type", "job.progress");
	jw_kv_uint(&w, "id", h->last_seq);
	jw_kv_str(&w, "jobId", job);
	jw_kv_str(&w, "status", job_status_name(m->status));
	jw_key(&w, "progress");
	jw_double(&w, (double)MIN(m->seq, 1000000u) / 1e6);
	jw_kv_int(&w, "attempt", m->attempt);
	jw_kv_int(&w, "at", m->at);
	jw_kv_bool(&w, "live", true);
	jw_obj_end(&w);
	for (struct client *c = og->head; c; c = c->next) {
		if (c->mode != M_LIVE ||
		    (c->kind == HUB_WS_JOB && strncmp(c->job, job, sizeof(c->job)) != 0))
			continue;
		struct ws_frame **fp = c->kind == HUB_SSE ? &fs : &fw;
		if (!*fp)
			*fp = make_frame(h, c->kind == HUB_SSE, "job.progress", NULL);
		client_send(c, *fp);
	}
	ws_frame_unref(fw);
	ws_frame_unref(fs);
}

void hub_tick(struct hub *h, int64_t now)
{
	MDB_txn *t = NULL;

	for (struct client *c = h->pending, *next; c; c = next) {
		next = c->pnext;
		if (c->mode == M_HOLD && now >= c->hold_until)
			c->mode = M_REPLAY;
		if (c->mode == M_REPLAY && ws_open(c->conn)) {
			if (!t && store_begin(h->store, 1, &t) < 0) {
				t = NULL;
				break;	/* try again next tick */
			}
			replay_step(h, c, t);
		}
		if (c->mode != M_HOLD && c->mode != M_REPLAY)
			pending_del(h, c);
		else if (!ws_open(c->conn))
			pending_del(h, c);
	}
	store_abort(t);
	ws_server_tick(h->ws, now);
}

int64_t hub_next_deadline(const struct hub *h)
{
	int64_t d = ws_server_next_deadline(h->ws);

	for (const struct client *c = h->pending; c; c = c->pnext) {
		if (c->mode == M_HOLD)
			d = MIN(d, c->hold_until);
		else if (ws_queued(c->conn) < h->cfg.max_queue_bytes / 2)
			return 0;
	}
	return d;
}

unsigned hub_clients(const struct hub *h)
{
	return h->nclients;
}

void hub_stats(const struct hub *h, struct hub_stats *st)
{
	struct ws_stats ws;

	ws_server_stats(h->ws, &ws);
	st->clients = h->nclients;
	st->queued = ws.queued;
	st->adopted = h->adopted;
	st->refused = h->refused;
	st->closed_slow = ws.closed_slow;
	st->closed_ping = ws.closed_ping;
	st->published = h->published;
	st->replayed = h->replayed;
}
