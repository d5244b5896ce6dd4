/* api_int.h - private glue between the API files (api.c, api_jobs.c,
 * api_submit.c, api_admin.c, ...). Not a module surface: only they include it. */
#ifndef JOBRING_API_INT_H
#define JOBRING_API_INT_H

#include "jobring/account.h"
#include "jobring/api.h"
#include "jobring/job.h"

#include <cjson/cJSON.h>

#define API_MAX_JSON_DEPTH 32
#define MAX_IDEM_KEY 255		/* bytes of an idempotencyKey */

struct auth {
	struct key_rec key;
	struct org_rec org;
	const struct plan_cfg *plan;
	int test;
};

/* Path split into segments ("/jobs/abc/cancel" → jobs, abc, cancel). */
#define API_MAX_SEGS 8
struct route {
	int nseg;
	const char *seg[API_MAX_SEGS];
	size_t len[API_MAX_SEGS];
	int is_get, is_post, is_put, is_patch, is_delete, is_head;
};

int api_split_route(struct httpd_req *req, struct route *r);
int seg_is(const struct route *r, int i, const char *s);
/* Copy segment i into out (NUL-terminated); -1 if too long or has odd bytes. */
int seg_copy(const struct route *r, int i, char *out, size_t outsz);

/* Authenticate a Bearer API key (401 answered on failure → returns -1). */
int api_auth(struct api *api, struct httpd_req *req, MDB_txn *t, struct auth *a);
/* The same for a key found elsewhere (tok NULL → 401), e.g. ?token= where
 * browsers cannot set headers (WebSocket, EventSource). */
int api_auth_token(struct api *api, struct httpd_req *req, MDB_txn *t, const char *tok, size_t n,
		   struct auth *a);
/* Per-org token bucket (429 answered on failure → returns -1). */
int api_rate(struct api *api, struct httpd_req *req, const struct auth *a);
/* Admin bearer token, compared in constant time (401 answered → -1). */
int api_admin_auth(struct api *api, struct httpd_req *req);

/* Parse a JSON object body (400 answered on failure → NULL). */
cJSON *api_body_json(struct httpd_req *req);

/* The turn's write txn (begun if needed), for writes that need no nested
 * txn: on a failed write call api_wabort. */
int api_wtxn(struct api *api, MDB_txn **ret);
/* Abort the turn's write txn: every answer queued for it gets err (507 or
 * 500) now, its messages are dropped; the next write begins a new one. */
void api_wabort(struct api *api, int err);
/* Queue an answer for after the turn's commit (a write done in api_wtxn). */
void api_answer_later(struct api *api, struct httpd_req *req, int status,
		      const struct buf *data_json, const char *extra_headers);
/* Begin a nested txn for one request inside the turn's write txn. */
int api_wbegin(struct api *api, MDB_txn **child);
/* Commit the child and queue the answer for after the batch commit. */
void api_wdone(struct api *api, MDB_txn *child, struct httpd_req *req, int status,
	       const struct buf *data_json, const char *extra_headers);
/* Abort the child and answer now (nothing was written). */
void api_wfail(struct api *api, MDB_txn *child, struct httpd_req *req, int status,
	       const char *code, const char *message);
/* Queue a message to be sent after the commit. */
void api_post(struct api *api, enum actor_id to, const struct msg *m);
/* Store errors inside a request: 507 STORAGE_FULL or 500. */
void api_store_error(struct api *api, MDB_txn *child, struct httpd_req *req, int err);

void api_jobs_route(struct api *api, struct httpd_req *req, struct route *r);
void api_admin_route(struct api *api, struct httpd_req *req, struct route *r);
void api_account_route(struct api *api, struct httpd_req *req, struct route *r);
void api_dl_route(struct api *api, struct httpd_req *req, struct route *r);
void api_blobs_route(struct api *api, struct httpd_req *req, struct route *r);
void api_samples_route(struct api *api, struct httpd_req *req, struct route *r);
void api_assets_route(struct api *api, struct httpd_req *req, struct route *r);
void api_webhooks_route(struct api *api, struct httpd_req *req, struct route *r);
/* GET /realtime, GET /events, GET /events/ws/job/{id} (api_realtime.c). */
void api_realtime_route(struct api *api, struct httpd_req *req, struct route *r);
/* GET /dashboard and GET /openapi.json (api_web.c). */
void api_web_route(struct api *api, struct httpd_req *req, struct route *r);

/* A POST /jobs that passed every check that needs no write transaction,
 * waiting for the turn's end to be written (api_jobs.c). */
struct api_submit {
	struct httpd_req *req;
	struct job j;			/* idem, client point into this struct */
	const struct plan_cfg *plan;
	int test;
	char *inputs, *params, *callback;	/* owned; j points at them */
	char idem[MAX_IDEM_KEY + 1];
	char client[65];
};

/* POST /jobs (api_submit.c). */
void api_submit(struct api *api, struct httpd_req *req);
/* The job object as an answer's data (idempotent adds "idempotent": true). */
void api_job_data(struct api *api, const struct job *j, struct buf *b, int idempotent);
/* Write the turn's checked submissions (answers queue for the commit). */
void api_submits_apply(struct api *api);
/* Drop them unwritten (api_free). */
void api_submits_free(struct api *api);

/* A job message for the dispatcher. */
void api_msg_job(struct msg *m, int kind, const struct job *j);

#endif
