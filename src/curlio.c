/* curlio.c - libcurl's multi interface on our io_uring loop.
 *
 * Three kinds of state:
 * - struct csock, one per socket curl asked us to watch. Its poll_op is the
 *   user_data of the one poll in flight for it (one-shot, re-armed after
 *   each completion); its ctl_op that of the POLL_REMOVE cancelling it.
 *   Curl finds it again through curl_multi_assign(). When curl removes the
 *   socket it is marked dead and freed once no op naming it is in flight.
 * - struct xfer, one per easy handle: pooled on a free list, linked on the
 *   active list while its transfer runs.
 * - struct host, one per "scheme://host:port" with transfers running or
 *   waiting: at most max_host_connections of its transfers are in curl at
 *   once, the rest wait here in FIFO order. Curl would queue them itself,
 *   but its pending queue costs 13-20 us of CPU per request
 *   (CURLIO_BENCH=50000 CURLIO_BENCH_INFLIGHT=128 tests/test_curlio, release
 *   build: 34 us/request with curl queueing half the transfers, 21 us with
 *   this queue; 20 us with as many connections as transfers).
 * - curl's single timer, kept as an absolute monotonic deadline.
 *
 * Curl's callbacks only record what curl wants (want mask, dead flag,
 * deadline); sync_socks() turns the changes into SQEs after each call into
 * curl, so that a socket added and removed inside one call costs nothing. */
#include "jobring/curlio.h"
#include "jobring/netaddr.h"
#include "jobring/strmap.h"
#include "jobring/util.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define POOL_MAX 256                   /* idle easy handles kept */
#define BUF_KEEP (64u << 10)           /* larger buffers are freed on recycle */
#define MAX_REQUEST_BODY (64u << 20)   /* hard cap on config max_request_body */
#define MAX_UA_LEN 256

struct curlio;

struct csock {
	struct loop_op poll_op;  /* the POLL_ADD in flight (when armed) */
	struct loop_op ctl_op;   /* POLL_REMOVE in flight */
	struct curlio *c;        /* NULL once orphaned by curlio_free */
	struct csock *prev, *next;  /* c->socks */
	struct csock *dirty_next;   /* c->dirty, when dirty */
	int fd;
	unsigned want;           /* POLLIN|POLLOUT that curl wants */
	unsigned armed;          /* mask of the poll in flight, 0: none */
	unsigned ctl_inflight;   /* ctl_op SQEs without their CQE yet */
	bool cancelling;         /* a POLL_REMOVE was queued for the armed poll */
	bool dead;               /* curl removed it: free when nothing in flight */
	bool dirty;              /* on c->dirty, waiting for sync_socks() */
	bool failed;             /* the poll failed: don't re-arm until curl speaks */
};

struct host {
	char key[STRMAP_KEY_MAX];  /* hash of "scheme://host:port" (host_key) */
	unsigned running;          /* its transfers in curl */
	struct xfer *whead, *wtail; /* its transfers waiting for a slot */
};

struct xfer {
	struct xfer *prev, *next;  /* c->active, or c->pool (next only) */
	struct host *host;         /* while running or waiting */
	struct xfer *wnext;        /* host->whead list, while waiting */
	CURL *easy;
	struct curl_slist *headers;
	char *req;                 /* copy of the request body */
	size_t req_cap;
	char *resp;                /* kept response bytes, NUL-terminated */
	size_t resp_len, resp_cap, resp_max;
	uint64_t resp_total;
	curlio_done_fn done;
	void *user;
	bool refused;              /* opensocket refused a private address */
	char err[CURL_ERROR_SIZE];
};

struct curlio {
	struct loop *loop;
	CURLM *multi;
	struct curlio_config cfg;
	char *user_agent;
	int64_t deadline;          /* curl's timer, mono ns; INT64_MAX: none */
	unsigned active, npool;    /* active: running in curl or waiting */
	struct xfer *xactive;      /* transfers in the multi handle */
	struct strmap hosts;       /* host key -> struct host */
	struct xfer *pool;         /* idle easy handles */
	struct csock *socks;       /* every csock not yet freed */
	unsigned nsocks;
	struct csock *dirty;       /* csocks whose SQEs may need changing */
};

#define CSOCK_OF(op, field) ((struct csock *)(void *)((char *)(op) - offsetof(struct csock, field)))

/* ---- sockets ---------------------------------------------------------- */

static void on_poll(struct loop_op *op, int res, unsigned flags);
static void on_ctl(struct loop_op *op, int res, unsigned flags);

static void mark_dirty(struct curlio *c, struct csock *cs)
{
	if (cs->dirty)
		return;
	cs->dirty = true;
	cs->dirty_next = c->dirty;
	c->dirty = cs;
}

static void csock_unlink(struct curlio *c, struct csock *cs)
{
	if (cs->prev)
		cs->prev->next = cs->next;
	else
		c->socks = cs->next;
	if (cs->next)
		cs->next->prev = cs->prev;
	cs->prev = cs->next = NULL;
	c->nsocks--;
}

/* Free a dead csock once the kernel holds nothing that names it. Must not
 * be on the dirty list (sync_socks takes it off before calling here). */
static void maybe_free(struct curlio *c, struct csock *cs)
{
	if (!cs->dead || cs->armed || cs->ctl_inflight || cs->dirty)
		return;
	csock_unlink(c, cs);
	free(cs);
}

static bool queue_remove(struct curlio *c, struct csock *cs)
{
	struct io_uring_sqe *sqe = loop_sqe(c->loop, &cs->ctl_op);

	if (!sqe)
		return false;
	io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&cs->poll_op);
	cs->ctl_inflight++;
	cs->cancelling = true;
	return true;
}

static bool arm(struct curlio *c, struct csock *cs)
{
	struct io_uring_sqe *sqe = loop_sqe(c->loop, &cs->poll_op);

	if (!sqe)
		return false;
	io_uring_prep_poll_add(sqe, cs->fd, cs->want);
	cs->armed = cs->want;
	return true;
}

/* Bring the kernel's view of one socket in line with what curl wants. A
 * poll whose mask is no longer wanted is cancelled; its completion
 * (-ECANCELED, or the events if it fired first) re-arms it with the
 * current mask. */
static void sync_one(struct curlio *c, struct csock *cs)
{
	unsigned want = cs->dead || cs->failed ? 0 : cs->want;
	bool ok = true;

	if (cs->armed) {
		if (cs->armed != want && !cs->cancelling)
			ok = queue_remove(c, cs);
	} else if (want) {
		ok = arm(c, cs);
	}
	if (!ok)
		mark_dirty(c, cs);	/* no SQE: retried at the next sync */
	else
		maybe_free(c, cs);
}

static void sync_socks(struct curlio *c)
{
	struct csock *list = c->dirty;

	c->dirty = NULL;	/* failures re-queue onto a fresh list */
	while (list) {
		struct csock *cs = list;
		list = cs->dirty_next;
		cs->dirty = false;
		sync_one(c, cs);
	}
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *clientp, void *socketp)
{
	struct curlio *c = clientp;
	struct csock *cs = socketp;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (cs) {
			cs->dead = true;
			cs->want = 0;
			mark_dirty(c, cs);
		}
		return 0;
	}
	if (!cs) {
		cs = xcalloc(1, sizeof(*cs));
		cs->poll_op.cb = on_poll;
		cs->ctl_op.cb = on_ctl;
		cs->c = c;
		cs->fd = fd;
		cs->next = c->socks;
		if (c->socks)
			c->socks->prev = cs;
		c->socks = cs;
		c->nsocks++;
		if (curl_multi_assign(c->multi, fd, cs) != CURLM_OK)
			return -1;	/* cannot happen: fd is curl's */
	}
	cs->want = ((what & CURL_POLL_IN) ? POLLIN : 0) | ((what & CURL_POLL_OUT) ? POLLOUT : 0);
	cs->failed = false;
	mark_dirty(c, cs);
	return 0;
}

static int on_timer(CURLM *multi, long ms, void *clientp)
{
	struct curlio *c = clientp;

	(void)multi;
	if (ms < 0)
		c->deadline = INT64_MAX;
	else
		c->deadline = mono_ns() + (int64_t)MIN(ms, 86400000L) * 1000000;
	return 0;
}

/* ---- transfers -------------------------------------------------------- */

static void xfer_destroy(struct xfer *x)
{
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->req);
	free(x->resp);
	free(x);
}

static void xfer_recycle(struct curlio *c, struct xfer *x)
{
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	if (x->req_cap > BUF_KEEP) {
		free(x->req);
		x->req = NULL;
		x->req_cap = 0;
	}
	if (x->resp_cap > BUF_KEEP) {
		free(x->resp);
		x->resp = NULL;
		x->resp_cap = 0;
	}
	x->done = NULL;
	x->user = NULL;
	if (c->npool >= POOL_MAX) {
		xfer_destroy(x);
		return;
	}
	x->next = c->pool;
	c->pool = x;
	c->npool++;
}

static void active_unlink(struct curlio *c, struct xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		c->xactive = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	c->active--;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n, take = MIN(len, x->resp_max - x->resp_len);

	x->resp_total += len;
	if (take) {
		if (x->resp_len + take + 1 > x->resp_cap) {
			size_t cap = MAX(x->resp_cap * 2, (size_t)4096);
			cap = MIN(MAX(cap, x->resp_len + take + 1), x->resp_max + 1);
			x->resp = xrealloc(x->resp, cap);
			x->resp_cap = cap;
		}
		memcpy(x->resp + x->resp_len, p, take);
		x->resp_len += take;
	}
	return len;	/* the rest is read and discarded: the connection stays usable */
}

static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xfer *x = clientp;

	(void)purpose;
	if (netaddr_reserved(&a->addr, a->addrlen)) {
		x->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Saturating parse of delta-seconds; an HTTP-date becomes seconds from now. */
static int64_t parse_retry_after(const char *v)
{
	const char *end;
	int64_t s = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end == v)
		return -1;
	if (*v >= '0' && *v <= '9') {
		for (const char *p = v; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			s = MIN(s * 10 + (*p - '0'), (int64_t)CURLIO_RETRY_AFTER_MAX);
		}
		return s;
	}
	char date[64];
	size_t n = (size_t)(end - v);
	if (n >= sizeof(date))
		return -1;
	memcpy(date, v, n);
	date[n] = '\0';
	time_t t = curl_getdate(date, NULL);
	if (t == (time_t)-1)
		return -1;
	s = (int64_t)t - (int64_t)time(NULL);
	return s < 0 ? 0 : MIN(s, (int64_t)CURLIO_RETRY_AFTER_MAX);
}

static int64_t retry_after(CURL *e)
{
	struct curl_header *h;
	CURLHcode hc = curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h);

	if (hc == CURLHE_OK)
		return parse_retry_after(h->value);
	if (hc == CURLHE_NOT_BUILT_IN) {	/* curl's own parse; 0 means absent */
		curl_off_t v = 0;
		if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &v) == CURLE_OK && v > 0)
			return MIN((int64_t)v, (int64_t)CURLIO_RETRY_AFTER_MAX);
	}
	return -1;
}

/* ---- hosts ------------------------------------------------------------ */

/* A short key for the connection pool curl would use for url: FNV-1a of
 * the lowercased "scheme://host:port" (userinfo dropped, default port
 * filled in), so "http://H" and "http://h:80/x" share their limit. */
static void host_key(const char *url, char out[STRMAP_KEY_MAX])
{
	const char *sep = strstr(url, "://"), *auth, *end, *at, *host;
	uint64_t h = 1469598103934665603ULL;
	int has_port = 0;

	if (!sep) {
		sep = url;
		auth = url;
	} else {
		auth = sep + 3;
	}
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	while (at) {		/* the last '@' before the path ends userinfo */
		auth = at + 1;
		at = memchr(auth, '@', (size_t)(end - auth));
	}
	host = auth;
	{
		const char *br = memchr(host, ']', (size_t)(end - host));
		const char *from = br ? br : host;
		has_port = memchr(from, ':', (size_t)(end - from)) != NULL;
	}
	for (const char *p = url; p < sep; p++)
		h = (h ^ (unsigned char)(*p | 0x20)) * 1099511628211ULL;
	for (const char *p = host; p < end; p++)
		h = (h ^ (unsigned char)(*p >= 'A' && *p <= 'Z' ? *p | 0x20 : *p)) * 1099511628211ULL;
	if (!has_port) {
		const char *port = sep - url == 5 && !strncasecmp(url, "https", 5) ? ":443" : ":80";
		for (const char *p = port; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	}
	snprintf(out, STRMAP_KEY_MAX, "%016llx", (unsigned long long)h);
}

static struct host *host_get(struct curlio *c, const char *url)
{
	char k[STRMAP_KEY_MAX];
	struct host *h;

	host_key(url, k);
	if ((h = strmap_get(&c->hosts, k)))
		return h;
	h = xcalloc(1, sizeof(*h));
	memcpy(h->key, k, sizeof(k));
	strmap_put(&c->hosts, h->key, h);
	return h;
}

static void host_maybe_free(struct curlio *c, struct host *h)
{
	if (h->running || h->whead)
		return;
	strmap_del(&c->hosts, h->key);
	free(h);
}

/* Hand x to curl. 0, or -ENOMEM / -EIO when curl refused it. */
static int run(struct curlio *c, struct xfer *x)
{
	CURLMcode mc = curl_multi_add_handle(c->multi, x->easy);

	if (mc != CURLM_OK)
		return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
	x->host->running++;
	x->prev = NULL;
	x->next = c->xactive;
	if (c->xactive)
		c->xactive->prev = x;
	c->xactive = x;
	return 0;
}

/* x left curl: give its host slot to the first transfer waiting for it. */
static void host_release(struct curlio *c, struct xfer *x)
{
	struct host *h = x->host;

	x->host = NULL;
	h->running--;
	while (h->whead && h->running < c->cfg.max_host_connections) {
		struct xfer *w = h->whead;
		h->whead = w->wnext;
		if (!h->whead)
			h->wtail = NULL;
		w->wnext = NULL;
		if (run(c, w) < 0) {
			/* curlio_start promised a done call: make it a failure */
			struct curlio_result r = { .code = CURLE_OUT_OF_MEMORY, .body = "",
						   .retry_after_s = -1,
						   .error = "curl refused the transfer" };
			c->active--;
			w->host = NULL;
			w->done(&r, w->user);
			xfer_recycle(c, w);
		}
	}
	host_maybe_free(c, h);
}

static void finish(struct curlio *c, struct xfer *x, CURLcode code)
{
	struct curlio_result r;
	long status = 0;
	curl_off_t us = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
	memset(&r, 0, sizeof(r));
	r.code = (int)code;
	r.status = (int)status;
	r.retry_after_s = status ? retry_after(x->easy) : -1;
	r.total_us = (int64_t)us;
	if (x->resp)
		x->resp[x->resp_len] = '\0';
	r.body = x->resp ? x->resp : "";
	r.body_len = x->resp_len;
	r.body_total = x->resp_total;
	if (code == CURLE_OK)
		r.error = "";
	else if (x->refused)
		r.error = "refused: private address";
	else
		r.error = x->err[0] ? x->err : curl_easy_strerror(code);

	curl_multi_remove_handle(c->multi, x->easy);
	active_unlink(c, x);
	x->done(&r, x->user);	/* may start more transfers; x is not in the pool yet */
	host_release(c, x);
	xfer_recycle(c, x);
}

static void reap(struct curlio *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		char *priv = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		CURLcode code = m->data.result;	/* m dies with remove_handle */
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		finish(c, (struct xfer *)(void *)priv, code);
	}
}

/* Tell curl about fd (or its timer), deliver what finished, re-sync polls. */
static void action(struct curlio *c, curl_socket_t fd, int ev)
{
	int running;

	curl_multi_socket_action(c->multi, fd, ev, &running);
	reap(c);
	sync_socks(c);
}

static void on_poll(struct loop_op *op, int res, unsigned flags)
{
	struct csock *cs = CSOCK_OF(op, poll_op);
	struct curlio *c = cs->c;
	unsigned armed = cs->armed;
	int ev = 0;

	if (flags & IORING_CQE_F_MORE)
		return;		/* not ours (we never arm multishot) */
	cs->armed = 0;
	cs->cancelling = false;
	if (!c) {		/* orphaned by curlio_free */
		if (!cs->ctl_inflight)
			free(cs);
		return;
	}
	mark_dirty(c, cs);	/* re-arm, or free if dead */
	if (cs->dead || res == -ECANCELED) {
		sync_socks(c);
		return;
	}
	if (res < 0) {
		/* The poll itself failed (e.g. -EBADF): let curl fail the
		 * transfer, and don't re-arm until curl tells us again. */
		cs->failed = true;
		ev = CURL_CSELECT_ERR;
	} else {
		if (res & POLLIN)
			ev |= CURL_CSELECT_IN;
		if (res & POLLOUT)
			ev |= CURL_CSELECT_OUT;
		if (res & (POLLERR | POLLHUP))	/* let curl read/write the error */
			ev |= ((armed & POLLIN) ? CURL_CSELECT_IN : 0) |
			      ((armed & POLLOUT) ? CURL_CSELECT_OUT : 0);
	}
	action(c, cs->fd, ev);	/* cs may be freed from here on */
}

static void on_ctl(struct loop_op *op, int res, unsigned flags)
{
	struct csock *cs = CSOCK_OF(op, ctl_op);

	(void)flags;
	/* -ENOENT/-EALREADY: the poll had already fired; its own completion
	 * (which comes, or came: the CQ is in order) clears `armed`. */
	(void)res;
	cs->ctl_inflight--;
	if (!cs->c) {
		if (!cs->armed && !cs->ctl_inflight)
			free(cs);
		return;
	}
	maybe_free(cs->c, cs);
}

/* ---- public ----------------------------------------------------------- */

int curlio_init(struct curlio **ret, struct loop *loop, const struct curlio_config *cfg)
{
	static const struct curlio_config none;
	struct curlio *c;
	CURLMcode mc = CURLM_OK;

	if (!cfg)
		cfg = &none;
	if (cfg->connect_timeout_ms > CURLIO_MAX_TIMEOUT_MS ||
	    cfg->default_timeout_ms > CURLIO_MAX_TIMEOUT_MS ||
	    cfg->max_request_body > MAX_REQUEST_BODY ||
	    (cfg->user_agent && strlen(cfg->user_agent) > MAX_UA_LEN) ||
	    cfg->max_connections > 65535 || cfg->max_host_connections > 65535 ||
	    cfg->max_idle_connections > 65535)
		return -EINVAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->cfg = *cfg;
	c->deadline = INT64_MAX;
	strmap_init(&c->hosts);
#define DEF(f, v) do { if (!c->cfg.f) c->cfg.f = (v); } while (0)
	DEF(max_connections, 64);
	DEF(max_host_connections, MIN(32u, c->cfg.max_connections));
	DEF(max_idle_connections, c->cfg.max_connections);
	DEF(max_transfers, 4096);
	DEF(connect_timeout_ms, 5000);
	DEF(default_timeout_ms, 30000);
	DEF(max_request_body, 1u << 20);
#undef DEF
	c->user_agent = xstrdup(cfg->user_agent ? cfg->user_agent : "jobring/0.1");
	c->cfg.user_agent = c->user_agent;
	if (!(c->multi = curl_multi_init())) {
		free(c->user_agent);
		free(c);
		curl_global_cleanup();
		return -ENOMEM;
	}
#define MSET(opt, val) do { if (mc == CURLM_OK) mc = curl_multi_setopt(c->multi, opt, val); } while (0)
	MSET(CURLMOPT_SOCKETFUNCTION, on_socket);
	MSET(CURLMOPT_SOCKETDATA, c);
	MSET(CURLMOPT_TIMERFUNCTION, on_timer);
	MSET(CURLMOPT_TIMERDATA, c);
	MSET(CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->cfg.max_connections);
	MSET(CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->cfg.max_host_connections);
	MSET(CURLMOPT_MAXCONNECTS, (long)c->cfg.max_idle_connections);
	MSET(CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
#undef MSET
	if (mc != CURLM_OK) {
		curl_multi_cleanup(c->multi);
		free(c->user_agent);
		free(c);
		curl_global_cleanup();
		return -EINVAL;
	}
	*ret = c;
	return 0;
}

static int check_req(const struct curlio *c, const struct curlio_req *r)
{
	if (!r->url || !r->done || strnlen(r->url, CURLIO_MAX_URL_LEN + 1) > CURLIO_MAX_URL_LEN)
		return -EINVAL;
	if (r->method != CURLIO_GET && r->method != CURLIO_POST && r->method != CURLIO_PUT)
		return -EINVAL;
	if ((r->method == CURLIO_GET && r->body_len) || (r->body_len && !r->body) ||
	    r->body_len > c->cfg.max_request_body)
		return -EINVAL;
	if (r->timeout_ms > CURLIO_MAX_TIMEOUT_MS || r->max_body > CURLIO_MAX_MAX_BODY)
		return -EINVAL;
	if (r->nheaders > CURLIO_MAX_HEADERS || (r->nheaders && !r->headers))
		return -EINVAL;
	for (unsigned i = 0; i < r->nheaders; i++) {
		const char *h = r->headers[i];
		size_t n;
		if (!h || (n = strnlen(h, CURLIO_MAX_HEADER_LEN + 1)) > CURLIO_MAX_HEADER_LEN ||
		    !memchr(h, ':', n) || strpbrk(h, "\r\n"))
			return -EINVAL;
	}
	return 0;
}

static int setup(struct curlio *c, struct xfer *x, const struct curlio_req *r)
{
	CURL *e = x->easy;
	CURLcode rc = CURLE_OK;
	struct curl_slist *l;

	/* "Expect:" drops 100-continue, which costs a round trip per body. */
	if (!(x->headers = curl_slist_append(NULL, "Expect:")))
		return -ENOMEM;
	for (unsigned i = 0; i < r->nheaders; i++) {
		if (!(l = curl_slist_append(x->headers, r->headers[i])))
			return -ENOMEM;
		x->headers = l;
	}
	if (r->body_len > x->req_cap) {
		free(x->req);
		x->req = xmalloc(r->body_len);
		x->req_cap = r->body_len;
	}
	if (r->body_len)
		memcpy(x->req, r->body, r->body_len);
	x->resp_len = 0;
	x->resp_total = 0;
	x->resp_max = r->max_body ? r->max_body : CURLIO_DEFAULT_MAX_BODY;
	x->done = r->done;
	x->user = r->user;
	x->refused = false;
	x->err[0] = '\0';

	curl_easy_reset(e);
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_PRIVATE, (void *)x);
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROXY, "");		/* ignore *_proxy environment variables */
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 30L);
	SET(CURLOPT_TCP_KEEPINTVL, 10L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg.connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, (long)(r->timeout_ms ? r->timeout_ms : c->cfg.default_timeout_ms));
	SET(CURLOPT_USERAGENT, c->user_agent);
	SET(CURLOPT_ERRORBUFFER, x->err);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, (void *)x);
	SET(CURLOPT_HTTPHEADER, x->headers);
	if (c->cfg.deny_private) {
		SET(CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
		SET(CURLOPT_OPENSOCKETDATA, (void *)x);
	}
	if (r->method == CURLIO_GET) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		SET(CURLOPT_POSTFIELDS, r->body_len ? x->req : "");
		if (r->method == CURLIO_PUT)
			SET(CURLOPT_CUSTOMREQUEST, "PUT");
	}
#undef SET
	if (rc == CURLE_OUT_OF_MEMORY)
		return -ENOMEM;
	return rc == CURLE_OK ? 0 : -EINVAL;
}

int curlio_start(struct curlio *c, const struct curlio_req *r)
{
	struct xfer *x;
	int e;

	if ((e = check_req(c, r)) < 0)
		return e;
	if (c->active >= c->cfg.max_transfers)
		return -EAGAIN;
	if ((x = c->pool)) {
		c->pool = x->next;
		c->npool--;
		x->next = NULL;
	} else {
		x = xcalloc(1, sizeof(*x));
		if (!(x->easy = curl_easy_init())) {
			free(x);
			return -ENOMEM;
		}
	}
	if ((e = setup(c, x, r)) < 0) {
		xfer_recycle(c, x);
		return e;
	}
	x->host = host_get(c, r->url);
	if (x->host->whead || x->host->running >= c->cfg.max_host_connections) {
		/* wait for one of this host's connections (FIFO) */
		if (x->host->wtail)
			x->host->wtail->wnext = x;
		else
			x->host->whead = x;
		x->host->wtail = x;
		c->active++;
		return 0;
	}
	if ((e = run(c, x)) < 0) {
		host_maybe_free(c, x->host);
		x->host = NULL;
		xfer_recycle(c, x);
		return e;
	}
	c->active++;
	sync_socks(c);
	return 0;
}

unsigned curlio_active(const struct curlio *c)
{
	return c->active;
}

unsigned curlio_waiting(const struct curlio *c)
{
	unsigned n = 0;
	struct strmap_slot *sl;
	size_t pos = 0;

	while ((sl = strmap_next(&c->hosts, &pos)))
		for (struct xfer *w = ((struct host *)sl->val)->whead; w; w = w->wnext)
			n++;
	return n;
}

int64_t curlio_next_deadline_ns(const struct curlio *c)
{
	return c->deadline;
}

void curlio_tick(struct curlio *c, int64_t now_ns)
{
	if (now_ns >= c->deadline) {
		c->deadline = INT64_MAX;	/* curl sets the next one */
		action(c, CURL_SOCKET_TIMEOUT, 0);
	} else {
		sync_socks(c);
	}
}

void curlio_free(struct curlio *c)
{
	if (!c)
		return;
	/* Abort transfers: removing a running handle closes its connection,
	 * which reaches on_socket() as CURL_POLL_REMOVE. */
	while (c->xactive) {
		struct xfer *x = c->xactive;
		curl_multi_remove_handle(c->multi, x->easy);
		active_unlink(c, x);
		xfer_destroy(x);
	}
	{
		struct strmap_slot *sl;
		size_t pos = 0;
		while ((sl = strmap_next(&c->hosts, &pos))) {
			struct host *h = sl->val;
			while (h->whead) {
				struct xfer *w = h->whead;
				h->whead = w->wnext;
				xfer_destroy(w);
			}
			free(h);
		}
		strmap_free(&c->hosts);
	}
	while (c->pool) {
		struct xfer *x = c->pool;
		c->pool = x->next;
		xfer_destroy(x);
	}
	curl_multi_cleanup(c->multi);	/* closes cached connections */
	c->multi = NULL;
	for (struct csock *cs = c->socks; cs; cs = cs->next) {
		cs->dead = true;	/* every fd is closed now */
		cs->want = 0;
		mark_dirty(c, cs);
	}
	sync_socks(c);
	/* The kernel still owns polls (and their csocks) until their CQEs. */
	for (int i = 0; c->socks && i < 100; i++) {
		loop_wait(c->loop, 100);
		sync_socks(c);
	}
	/* Should never happen: leave stragglers to free themselves. */
	while (c->socks) {
		struct csock *cs = c->socks;
		csock_unlink(c, cs);
		cs->c = NULL;
	}
	free(c->user_agent);
	free(c);
	curl_global_cleanup();
}
