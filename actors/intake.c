/* intake.c - the intake actor's loop: the public HTTP API on io_uring.
 *
 * One turn: run the completions that are ready (each complete request goes
 * to the API, which answers reads at once and runs writes in the turn's
 * write transaction), then commit that transaction once for everything the
 * turn wrote (group commit), answer the writes, and hand the new jobs and
 * events to the dispatcher and notifier rings. */
#include "jobring/actor.h"
#include "jobring/api.h"
#include "jobring/httpd.h"
#include "jobring/log.h"
#include "jobring/util.h"

#include <string.h>

struct intake {
	struct actor *a;
	struct api api;
	struct httpd *http;
};

static void on_request(struct httpd *h, struct httpd_req *req, void *arg)
{
	struct intake *in = arg;
	(void)h;
	api_handle(&in->api, req);
}

static int64_t body_decide(struct httpd *h, struct httpd_req *req, void *arg)
{
	struct intake *in = arg;
	(void)h;
	return api_body_decide(&in->api, req);
}

static int body_chunk(struct httpd *h, struct httpd_req *req, const char *p, size_t n, int last,
		      void *arg)
{
	struct intake *in = arg;
	(void)h;
	return api_body_chunk(&in->api, req, p, n, last);
}

static void send_msg(void *ctx, enum actor_id to, const struct msg *m)
{
	actor_send(ctx, to, m);
}

static void on_msg(struct actor *a, enum actor_id from, const struct msg *m)
{
	(void)a;
	(void)from;
	(void)m;	/* nothing is addressed to intake yet */
}

static int64_t timeout_ms(struct intake *in)
{
	int64_t d = httpd_next_deadline(in->http), now = mono_ns();
	if (d == INT64_MAX)
		return 1000;
	return d <= now ? 0 : MIN((d - now) / 1000000 + 1, 1000);
}

int intake_main(struct actor *a)
{
	struct intake in = { .a = a };
	struct httpd_config hc = {
		.listen_fd = a->listen_fd,
		.max_conns = (unsigned)a->cfg->http.max_connections,
		.header_timeout_ms = a->cfg->http.header_timeout_ms,
		.idle_timeout_ms = a->cfg->http.idle_timeout_ms,
		.max_request_line = 8192,
		.max_header_bytes = (size_t)a->cfg->http.max_header_bytes,
		.max_body = (size_t)a->cfg->http.max_body_bytes,
		.server_name = "jobring",
		.handler = on_request,
		.policy = { body_decide, body_chunk },
		.arg = &in,
	};
	int r;

	api_init(&in.api, a->cfg, &a->store, a->signing_key, a->admin_token);
	in.api.region = a->region;
	in.api.loop = &a->loop;
	in.api.handoff_fd = a->handoff_fd;
	if ((r = httpd_init(&in.http, &a->loop, &hc)) < 0) {
		log_error("cannot serve HTTP: %s", strerror(-r));
		return 1;
	}
	log_info("serving the client API");
	while (!actor_stopping) {
		actor_recv(a, on_msg, 4096);
		actor_wait(a, timeout_ms(&in));
		if ((r = api_commit(&in.api, send_msg, a)) < 0)
			log_error("commit failed: %s", strerror(-r));
		httpd_tick(in.http, mono_ns());
	}
	/* Drain: no new connections; finish what was asked, then go. */
	httpd_stop_accepting(in.http);
	for (int64_t end = mono_ns() + 2000000000LL;
	     (httpd_pending(in.http) || api_unsynced(&in.api)) && mono_ns() < end;) {
		actor_wait(a, 10);
		api_commit(&in.api, send_msg, a);
	}
	api_commit(&in.api, send_msg, a);
	/* batches still waiting for their fdatasync name requests httpd owns */
	for (int64_t end = mono_ns() + 30000000000LL; api_unsynced(&in.api) && mono_ns() < end;)
		actor_wait(a, 10);
	actor_flush(a);
	httpd_free(in.http);
	api_free(&in.api);
	log_info("drained");
	return 0;
}
