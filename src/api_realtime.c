/* api_realtime.c - the intake half of realtime: GET /realtime (WebSocket),
 * GET /events (SSE) and GET /events/ws/job/{id} (WebSocket for one job).
 *
 * Authenticate (Bearer header, or ?token= for browsers), check the
 * WebSocket handshake (RFC 6455 §4.2.1), answer it (101, or the SSE head)
 * and hand the socket to the notifier's hub over the socketpair
 * (hub_handoff_send); our copy of the fd is closed right after, since
 * SCM_RIGHTS gave the notifier its own. Everything after the head is the
 * hub's (hub.h). */
#include "api_int.h"
#include "jobring/crypto.h"
#include "jobring/hub.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TOKEN_MAX 256

static int header_is(const struct httpd_req *req, const char *name, const char *want)
{
	size_t n;
	const char *v = httpd_header(req, name, &n);
	return v && n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/* RFC 6455 §4.2.1-2. 0, or the error is answered and -1 returned. */
static int ws_handshake(struct httpd_req *req, char accept[CRYPTO_WS_ACCEPT_LEN + 1])
{
	size_t n;
	const char *up = httpd_header(req, "Upgrade", &n);
	const char *key;

	if (!up || !http_list_has(up, n, "websocket")) {
		api_err(req, 426, "UPGRADE_REQUIRED", "This endpoint speaks WebSocket only", NULL);
		return -1;
	}
	if (!req->upgrade_websocket) {	/* HTTP/1.0, or no "Connection: upgrade" */
		api_err(req, 400, "BAD_REQUEST",
			"A WebSocket handshake needs HTTP/1.1 and Connection: Upgrade", NULL);
		return -1;
	}
	if (!header_is(req, "Sec-WebSocket-Version", "13")) {
		static const char body[] = "{\"error\":{\"code\":\"UPGRADE_REQUIRED\","
					   "\"message\":\"Only WebSocket version 13 is supported\"}}";
		httpd_respond(req, 426, "application/json", "Sec-WebSocket-Version: 13\r\n", body,
			      sizeof(body) - 1);
		return -1;
	}
	key = httpd_header(req, "Sec-WebSocket-Key", &n);
	if (!key || crypto_ws_accept(key, n, accept) < 0) {
		api_err(req, 400, "BAD_REQUEST", "Missing or malformed Sec-WebSocket-Key", NULL);
		return -1;
	}
	return 0;
}

/* A decimal event id (1-20 digits, ≤ UINT64_MAX). */
static int parse_id(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* The resume point the client gave: Last-Event-ID (SSE), else ?lastEventId=.
 * 0 if none; -1 if malformed (400 answered). */
static int resume_point(struct httpd_req *req, int kind, uint64_t *ret)
{
	char q[32];
	const char *v = NULL;
	size_t n = 0;
	ssize_t qn;

	*ret = 0;
	if (kind == HUB_SSE)
		v = httpd_header(req, "Last-Event-ID", &n);
	if (!v && req->query) {
		qn = http_query_get(req->query, req->query_len, "lastEventId", q, sizeof(q));
		if (qn >= 0) {
			v = q;
			n = (size_t)qn;
		} else if (qn != -ENOENT) {
			v = "";	/* bad escape or too long */
		}
	}
	if (v && parse_id(v, n, ret) < 0) {
		api_err(req, 400, "VALIDATION_ERROR", "lastEventId must be a decimal event id", NULL);
		return -1;
	}
	return 0;
}

static int authenticate(struct api *api, struct httpd_req *req, MDB_txn *t, struct auth *a)
{
	char tok[TOKEN_MAX];
	ssize_t n;

	if (httpd_header(req, "Authorization", NULL) || !req->query)
		return api_auth(api, req, t, a);
	n = http_query_get(req->query, req->query_len, "token", tok, sizeof(tok));
	return api_auth_token(api, req, t, n > 0 ? tok : NULL, n > 0 ? (size_t)n : 0, a);
}

static void realtime(struct api *api, struct httpd_req *req, struct route *r, int kind)
{
	static const char sse_head[] = "HTTP/1.1 200 OK\r\n"
				       "Content-Type: text/event-stream\r\n"
				       "Cache-Control: no-cache\r\n"
				       "Connection: keep-alive\r\n"
				       "X-Accel-Buffering: no\r\n"
				       "\r\n";
	char accept[CRYPTO_WS_ACCEPT_LEN + 1], head[256];
	unsigned char left[HUB_LEFTOVER_MAX];
	size_t nleft = sizeof(left);
	struct hub_handoff ho;
	struct auth a;
	struct job j;
	MDB_txn *t;
	int rc, fd, hn;

	if (kind != HUB_SSE && ws_handshake(req, accept) < 0)
		return;
	memset(&ho, 0, sizeof(ho));
	ho.kind = (uint32_t)kind;
	if (resume_point(req, kind, &ho.last_event_id) < 0)
		return;
	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (authenticate(api, req, t, &a) < 0 || api_rate(api, req, &a) < 0)
		goto out;
	if (kind == HUB_WS_JOB &&
	    (seg_copy(r, 3, ho.job, sizeof(ho.job)) < 0 || job_get(api->store, t, ho.job, &j) < 0 ||
	     strcmp(j.org, a.org.id) != 0)) {
		api_err(req, 404, "NOT_FOUND", "Job not found", NULL);
		goto out;
	}
	if (api->handoff_fd < 0) {
		api_err(req, 503, "UNAVAILABLE", "Realtime is not available", NULL);
		goto out;
	}
	/* No id given: start at the log's end as of now. Whatever the client
	 * causes after it sees our answer has a later seq, so it gets it. */
	if (!ho.last_event_id && (rc = store_peek_seq(api->store, t, "event", &ho.last_event_id)) < 0) {
		api_store_error(api, NULL, req, rc);
		goto out;
	}
	snprintf(ho.org, sizeof(ho.org), "%s", a.org.id);
	store_abort(t);
	t = NULL;

	if (kind == HUB_SSE)
		hn = snprintf(head, sizeof(head), "%s", sse_head);
	else
		hn = snprintf(head, sizeof(head),
			      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
	fd = httpd_detach(req, head, (size_t)hn, left, &nleft);
	if (fd == -ENOBUFS) {
		api_err(req, 400, "BAD_REQUEST", "Too many bytes after the request head", NULL);
		return;
	}
	if (fd == -EINVAL || fd == -EBUSY) {
		api_err(req, 503, "UNAVAILABLE", "Try again", NULL);
		return;
	}
	if (fd < 0)
		return;	/* the client is gone; the server closed it */
	ho.leftover_len = (uint32_t)nleft;
	/* On failure the client sees the connection close after the answer and
	 * reconnects; either way our copy goes: the notifier has its own. */
	hub_handoff_send(api->handoff_fd, fd, &ho, left);
	close(fd);
	return;
out:
	store_abort(t);
}

void api_realtime_route(struct api *api, struct httpd_req *req, struct route *r)
{
	int kind;

	if (r->nseg == 1 && seg_is(r, 0, "realtime"))
		kind = HUB_WS;
	else if (r->nseg == 1 && seg_is(r, 0, "events"))
		kind = HUB_SSE;
	else if (r->nseg == 4 && seg_is(r, 0, "events") && seg_is(r, 1, "ws") && seg_is(r, 2, "job"))
		kind = HUB_WS_JOB;
	else {
		api_err(req, 404, "NOT_FOUND", "Route not found", NULL);
		return;
	}
	if (!r->is_get || r->is_head) {
		api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
		return;
	}
	realtime(api, req, r, kind);
}
