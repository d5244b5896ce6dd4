/* api_blobs.c - presigned blob URLs served by intake, and client uploads.
 *
 *   GET  /blobs/in/{jobId}/{name}            an inline {content} input
 *   PUT  /blobs/out/{jobId}/{attempt}/{name} a provider's output upload
 *   GET  /dl/{jobId}/{path}                  a completed job's output file
 *                                            ("/dl/{jobId}/" = its first file)
 *   POST /assets {name, size?, contentType?} → an asset and a presigned PUT
 *   PUT  /blobs/assets/{assetId}/{name}      the upload itself
 *   POST /assets/{id}/complete               → the asset's URL for job inputs
 *   GET  /blobs/assets/{assetId}/{name}      an asset (presigned GET)
 *
 * Every /blobs and /dl URL carries ?exp=&sig= (presign.h); uploads are
 * streamed to DATADIR/blobs/… as they arrive and renamed into place when
 * complete, so a half-written file is never served.
 *
 * storage.blobs.kind "s3": our signed URLs stay the contract, but after the
 * signature check the answer is 307 Temporary Redirect to a short-lived
 * SigV4 presigned URL (s3sign.h) for the object jobs/{jobId}/{name} or
 * assets/{assetId}/{name}. httpd cannot answer before the body (it sends
 * 100 Continue itself), so an upload body that does reach us is counted
 * against its limit and dropped, never written; the client then repeats the
 * PUT at the Location (curl does for 307, keeping method and body). Inline
 * {content} inputs and /samples stay local: they are not blobs. */
#include "api_int.h"
#include "jobring/dispatch.h"
#include "jobring/presign.h"
#include "jobring/s3sign.h"
#include "jobring/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASSET_VERSION 1u
#define MAX_OUTPUT_FILE ((int64_t)4 << 30)
#define ASSET_UPLOAD_TTL_MS (3600LL * 1000)
#define ASSET_URL_TTL_MS (7LL * 86400 * 1000)
#define S3_HEAD_TIMEOUT_MS 3000L	/* blocks intake: keep it short */

struct asset_rec {
	uint32_t version;
	uint32_t status;	/* 0 created, 1 uploaded, 2 ready */
	char id[32];
	char org[ORG_ID_MAX];
	char name[132];
	int64_t size, max_size, created_at;
};

struct upload {
	int fd;
	int done;		/* the last chunk arrived (and, local, is durable) */
	int discard;		/* s3: count the body, keep nothing */
	int64_t written, limit;
	char tmp[1200], final[1200];
	char key[300];		/* s3: the object key */
};

static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 128 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/* Check ?exp=&sig= for (method, signed_path). 0, or answers 403 / 400. */
static int verify(struct api *api, struct httpd_req *req, const char *method,
		  const char *signed_path)
{
	char exp[32], sig[80];
	int r;

	if (!req->query || http_query_get(req->query, req->query_len, "exp", exp, sizeof(exp)) < 0 ||
	    http_query_get(req->query, req->query_len, "sig", sig, sizeof(sig)) < 0)
		return -403;
	r = presign_verify(api->signing_key, strlen(api->signing_key), method, signed_path, exp, sig,
			   now_ms());
	return r == 0 ? 0 : -403;
}

static int mkdirs(const char *dir)
{
	char p[1200];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0700) < 0 && errno != EEXIST)
				return -errno;
			*s = '/';
		}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* ---- S3 mode ----------------------------------------------------------------- */

static int s3_mode(const struct api *api)
{
	return api->cfg->blobs.kind == BLOBS_S3;
}

/* The presigned S3 URL for method on key. Length or -errno. */
static int s3_url(const struct api *api, const char *method, const char *key, char *out,
		  size_t outsz)
{
	const struct blobs_cfg *b = &api->cfg->blobs;
	struct s3_presign_req r = {
		.method = method, .endpoint = b->endpoint, .bucket = b->bucket, .key = key,
		.region = b->region, .access_key = b->access_key, .secret_key = b->secret_key,
		.time = now_ms() / 1000, .expires = b->expires_seconds, .path_style = b->path_style,
	};
	return s3_presign(out, outsz, &r);
}

/* Answer 307 to the presigned URL for (method, key). */
static void s3_redirect(struct api *api, struct httpd_req *req, const char *method,
			const char *key)
{
	char url[S3_URL_MAX], hdr[S3_URL_MAX + 64];

	if (s3_url(api, method, key, url, sizeof(url)) < 0) {
		api_err(req, 500, "INTERNAL_ERROR", "Cannot sign the storage URL", NULL);
		return;
	}
	snprintf(hdr, sizeof(hdr), "Location: %s\r\nCache-Control: no-store\r\n", url);
	httpd_respond(req, 307, "text/plain; charset=utf-8", hdr, "", 0);
}

/* HEAD the object (presigned, libcurl easy): 0 with its size, -ENOENT when
 * the store says 403/404, -EIO when it cannot be asked. Blocks the caller
 * for at most S3_HEAD_TIMEOUT_MS. */
static int s3_head(const struct api *api, const char *key, int64_t *size)
{
	char url[S3_URL_MAX];
	curl_off_t len = -1;
	long status = 0;
	CURL *c;
	int rc = -EIO;

	if (s3_url(api, "HEAD", key, url, sizeof(url)) < 0 || !(c = curl_easy_init()))
		return -EIO;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, S3_HEAD_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, S3_HEAD_TIMEOUT_MS);
	if (curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK) {
		if (status == 200 &&
		    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) == CURLE_OK &&
		    len >= 0) {
			*size = (int64_t)len;
			rc = 0;
		} else if (status == 403 || status == 404) {
			rc = -ENOENT;
		}
	}
	curl_easy_cleanup(c);
	return rc;
}

static int asset_get(struct api *api, MDB_txn *t, const char *id, struct asset_rec *a)
{
	return store_get_rec(api->store, t, DB_ASSETS, id, a, sizeof(*a), ASSET_VERSION);
}

/* ---- streaming uploads ------------------------------------------------------ */

int64_t api_body_decide(struct api *api, struct httpd_req *req)
{
	struct route r;
	struct upload *u;
	char a[40], b[40], name[140], dir[1100], signed_path[600], key[300];
	int64_t limit = MAX_OUTPUT_FILE;

	if (req->method_len != 3 || memcmp(req->method, "PUT", 3) != 0)
		return 0;
	if (api_split_route(req, &r) < 0 || !seg_is(&r, 0, "blobs"))
		return -404;
	if (r.nseg == 5 && seg_is(&r, 1, "out")) {
		char prefix[128];
		int64_t att;
		if (seg_copy(&r, 2, a, sizeof(a)) < 0 || seg_copy(&r, 3, b, sizeof(b)) < 0 ||
		    seg_copy(&r, 4, name, sizeof(name)) < 0 || !name_ok(name, strlen(name)) ||
		    parse_i64(b, 1, UINT32_MAX, &att) < 0)
			return -404;
		dispatch_upload_prefix(prefix, sizeof(prefix), a, (uint32_t)att);
		if (verify(api, req, "PUT", prefix) < 0)
			return -403;
		snprintf(dir, sizeof(dir), "%s/blobs/%s", api->cfg->data_dir, a);
		snprintf(key, sizeof(key), "jobs/%s/%s", a, name);
	} else if (r.nseg == 4 && seg_is(&r, 1, "assets")) {
		struct asset_rec as;
		MDB_txn *t;
		if (seg_copy(&r, 2, a, sizeof(a)) < 0 || seg_copy(&r, 3, name, sizeof(name)) < 0)
			return -404;
		snprintf(signed_path, sizeof(signed_path), "/blobs/assets/%s/%s", a, name);
		if (verify(api, req, "PUT", signed_path) < 0)
			return -403;
		if (store_begin(api->store, 1, &t) < 0)
			return -500;
		int rc = asset_get(api, t, a, &as);
		store_abort(t);
		if (rc < 0 || strcmp(as.name, name) != 0)
			return -404;
		if (as.status == 2)
			return -409;
		limit = as.max_size;
		snprintf(dir, sizeof(dir), "%s/blobs/assets/%s", api->cfg->data_dir, a);
		snprintf(key, sizeof(key), "assets/%s/%s", a, name);
	} else {
		return -404;
	}
	if (s3_mode(api)) {
		u = xcalloc(1, sizeof(*u));
		u->fd = -1;
		u->discard = 1;
		u->limit = limit;
		snprintf(u->key, sizeof(u->key), "%s", key);
		req->user = u;
		return HTTPD_STREAM;
	}
	if (mkdirs(dir) < 0)
		return -500;
	u = xcalloc(1, sizeof(*u));
	u->limit = limit;
	snprintf(u->final, sizeof(u->final), "%s/%s", dir, name);
	snprintf(u->tmp, sizeof(u->tmp), "%s/.%s.%d.part", dir, name, (int)getpid());
	u->fd = open(u->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (u->fd < 0) {
		free(u);
		return -500;
	}
	req->user = u;
	return HTTPD_STREAM;
}

static void upload_drop(struct upload *u)
{
	if (u->fd >= 0)
		close(u->fd);
	unlink(u->tmp);
	free(u);
}

int api_body_chunk(struct api *api, struct httpd_req *req, const char *p, size_t n, int last)
{
	struct upload *u = req->user;
	(void)api;

	if (!u)
		return -500;
	if (u->written + (int64_t)n > u->limit) {
		upload_drop(u);
		req->user = NULL;
		return -413;
	}
	if (n && !u->discard && write_all(u->fd, p, n) < 0) {
		upload_drop(u);
		req->user = NULL;
		return -507;
	}
	u->written += (int64_t)n;
	/* the last chunk: the file is made durable and renamed into place by
	 * upload_done (an io_uring fdatasync), before the 200 */
	if (last)
		u->done = 1;
	return 0;
}

/* Make a finished upload durable and put it in place: 0 or -507. */
static int upload_settle(struct upload *u, int fsync_res)
{
	int r = fsync_res < 0 || rename(u->tmp, u->final) < 0 ? -507 : 0;
	if (r < 0)
		unlink(u->tmp);
	close(u->fd);
	u->fd = -1;
	return r;
}

static void upload_answer(struct httpd_req *req, struct upload *u, const char *name, size_t n,
			  int r)
{
	struct buf b;

	if (r < 0) {
		api_err(req, 507, "STORAGE_FULL", "Cannot store the upload", NULL);
		return;
	}
	buf_init(&b);
	buf_printf(&b, "{\"path\":\"%.*s\",\"size\":%lld}", (int)n, name, (long long)u->written);
	api_ok(req, 200, &b);
	buf_free(&b);
}

/* The fdatasync of an upload runs on the loop; the 200 waits for it. */
struct upload_sync {
	struct loop_op op;	/* first: the CQE's user_data */
	struct httpd_req *req;
	struct upload *u;
	size_t name_len;
	char name[140];
};

static void upload_synced(struct loop_op *op, int res, unsigned flags)
{
	struct upload_sync *us = (struct upload_sync *)op;
	(void)flags;
	upload_answer(us->req, us->u, us->name, us->name_len, upload_settle(us->u, res));
	free(us->u);
	free(us);
}

/* The handler call after a streamed PUT: answer and release. A PUT without
 * a body never went through decide, so it is checked and "streamed" here. */
static void upload_done(struct api *api, struct httpd_req *req, struct route *r)
{
	struct upload *u = req->user;

	if (!u && !req->body_len) {
		int64_t d = api_body_decide(api, req);
		if (d < 0) {
			api_err(req, (int)-d, d == -403 ? "FORBIDDEN" : d == -404 ? "NOT_FOUND" :
				d == -409 ? "CONFLICT" : "INTERNAL_ERROR",
				d == -403 ? "This link is invalid or has expired" : "Cannot upload here",
				NULL);
			return;
		}
		if (api_body_chunk(api, req, "", 0, 1) < 0) {
			api_err(req, 507, "STORAGE_FULL", "Cannot store the upload", NULL);
			return;
		}
		u = req->user;
	}
	if (!u || !u->done) {
		if (u)
			upload_drop(u);
		req->user = NULL;
		api_err(req, 400, "VALIDATION_ERROR", "the upload did not complete", NULL);
		return;
	}
	if (u->discard) {
		s3_redirect(api, req, "PUT", u->key);
		free(u);
		req->user = NULL;
		return;
	}
	/* asset uploads are marked by /complete, which checks the file */
	req->user = NULL;
	if (api->loop) {
		struct upload_sync *us = xcalloc(1, sizeof(*us));
		struct io_uring_sqe *sqe;
		us->op.cb = upload_synced;
		us->req = req;
		us->u = u;
		us->name_len = MIN(r->len[r->nseg - 1], sizeof(us->name));
		memcpy(us->name, r->seg[r->nseg - 1], us->name_len);
		sqe = loop_sqe(api->loop, &us->op);
		io_uring_prep_fsync(sqe, u->fd, IORING_FSYNC_DATASYNC);
		return;
	}
	upload_answer(req, u, r->seg[r->nseg - 1], r->len[r->nseg - 1],
		      upload_settle(u, fdatasync(u->fd) < 0 ? -errno : 0));
	free(u);
}

/* ---- downloads ------------------------------------------------------------------ */

static const char *content_type(const char *name)
{
	static const struct { const char *ext, *type; } t[] = {
		{ ".mp4", "video/mp4" }, { ".webm", "video/webm" }, { ".mkv", "video/x-matroska" },
		{ ".mov", "video/quicktime" }, { ".png", "image/png" }, { ".jpg", "image/jpeg" },
		{ ".jpeg", "image/jpeg" }, { ".gif", "image/gif" }, { ".mp3", "audio/mpeg" },
		{ ".wav", "audio/wav" }, { ".json", "application/json" }, { ".txt", "text/plain" },
		{ ".srt", "application/x-subrip" }, { ".vtt", "text/vtt" },
	};
	const char *dot = strrchr(name, '.');
	if (dot)
		for (size_t i = 0; i < ARRAY_SIZE(t); i++)
			if (strcasecmp(dot, t[i].ext) == 0)
				return t[i].type;
	return "application/octet-stream";
}

static void send_file(struct httpd_req *req, const char *path, const char *name)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		api_err(req, 404, "NOT_FOUND", "No such file", NULL);
		return;
	}
	httpd_respond_file(req, 200, content_type(name), NULL, fd, 0, (size_t)st.st_size);
}

/* The first output file of a job ("" if none). */
static void first_output(struct api *api, const char *job, char *name, size_t namesz)
{
	MDB_txn *t;
	struct job j;
	name[0] = '\0';
	if (store_begin(api->store, 1, &t) < 0)
		return;
	if (job_get(api->store, t, job, &j) == 0 && j.status == JOB_COMPLETE && j.output.n) {
		cJSON *o = cJSON_ParseWithLength(j.output.p, j.output.n);
		const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "files"), 0);
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "path");
		if (cJSON_IsString(p) && name_ok(p->valuestring, strlen(p->valuestring)))
			snprintf(name, namesz, "%s", p->valuestring);
		cJSON_Delete(o);
	}
	store_abort(t);
}

void api_dl_route(struct api *api, struct httpd_req *req, struct route *r)
{
	char job[40], name[140], signed_path[600], path[1400];

	if (!r->is_get) {
		api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
		return;
	}
	if (seg_copy(r, 1, job, sizeof(job)) < 0 || r->nseg > 3) {
		api_err(req, 404, "NOT_FOUND", "No such file", NULL);
		return;
	}
	name[0] = '\0';
	if (r->nseg == 3 && (seg_copy(r, 2, name, sizeof(name)) < 0 || !name_ok(name, strlen(name)))) {
		api_err(req, 404, "NOT_FOUND", "No such file", NULL);
		return;
	}
	snprintf(signed_path, sizeof(signed_path), "/dl/%s/%s", job, name);
	if (verify(api, req, "GET", signed_path) < 0) {
		api_err(req, 403, "FORBIDDEN", "This link is invalid or has expired", NULL);
		return;
	}
	if (!name[0])
		first_output(api, job, name, sizeof(name));
	if (!name[0]) {
		api_err(req, 404, "NOT_FOUND", "The job has no output file", NULL);
		return;
	}
	if (s3_mode(api)) {
		snprintf(path, sizeof(path), "jobs/%s/%s", job, name);
		s3_redirect(api, req, req->head ? "HEAD" : "GET", path);
		return;
	}
	snprintf(path, sizeof(path), "%s/blobs/%s/%s", api->cfg->data_dir, job, name);
	send_file(req, path, name);
}

/* GET /samples/{name}: the demo's sample media, public. */
void api_samples_route(struct api *api, struct httpd_req *req, struct route *r)
{
	char name[140], path[1400];

	if (!r->is_get || r->nseg != 2 || seg_copy(r, 1, name, sizeof(name)) < 0 ||
	    !name_ok(name, strlen(name))) {
		api_err(req, 404, "NOT_FOUND", "No such sample", NULL);
		return;
	}
	snprintf(path, sizeof(path), "%s/samples/%s", api->cfg->data_dir, name);
	send_file(req, path, name);
}

void api_blobs_route(struct api *api, struct httpd_req *req, struct route *r)
{
	char a[40], name[140], signed_path[600], path[1400];

	if (r->is_put) {
		upload_done(api, req, r);
		return;
	}
	if (!r->is_get) {
		api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET or PUT", NULL);
		return;
	}
	if (r->nseg == 4 && seg_is(r, 1, "in") && seg_copy(r, 2, a, sizeof(a)) == 0 &&
	    seg_copy(r, 3, name, sizeof(name)) == 0) {
		MDB_txn *t;
		struct job j;
		snprintf(signed_path, sizeof(signed_path), "/blobs/in/%s/%s", a, name);
		if (verify(api, req, "GET", signed_path) < 0) {
			api_err(req, 403, "FORBIDDEN", "This link is invalid or has expired", NULL);
			return;
		}
		if (store_begin(api->store, 1, &t) < 0) {
			api_err(req, 500, "INTERNAL_ERROR", "cannot read", NULL);
			return;
		}
		if (job_get(api->store, t, a, &j) == 0 && j.inputs.n) {
			cJSON *in = cJSON_ParseWithLength(j.inputs.p, j.inputs.n);
			const cJSON *c = cJSON_GetObjectItemCaseSensitive(
				cJSON_GetObjectItemCaseSensitive(in, name), "content");
			if (cJSON_IsString(c))
				httpd_respond(req, 200, "text/plain; charset=utf-8", NULL, c->valuestring,
					      strlen(c->valuestring));
			else
				api_err(req, 404, "NOT_FOUND", "No such input", NULL);
			cJSON_Delete(in);
		} else {
			api_err(req, 404, "NOT_FOUND", "No such input", NULL);
		}
		store_abort(t);
		return;
	}
	if (r->nseg == 4 && seg_is(r, 1, "assets") && seg_copy(r, 2, a, sizeof(a)) == 0 &&
	    seg_copy(r, 3, name, sizeof(name)) == 0 && name_ok(name, strlen(name))) {
		snprintf(signed_path, sizeof(signed_path), "/blobs/assets/%s/%s", a, name);
		if (verify(api, req, "GET", signed_path) < 0) {
			api_err(req, 403, "FORBIDDEN", "This link is invalid or has expired", NULL);
			return;
		}
		if (s3_mode(api)) {
			snprintf(path, sizeof(path), "assets/%s/%s", a, name);
			s3_redirect(api, req, req->head ? "HEAD" : "GET", path);
			return;
		}
		snprintf(path, sizeof(path), "%s/blobs/assets/%s/%s", api->cfg->data_dir, a, name);
		send_file(req, path, name);
		return;
	}
	api_err(req, 404, "NOT_FOUND", "No such blob", NULL);
}

/* ---- assets ------------------------------------------------------------------------ */

static void asset_json(struct api *api, struct buf *b, const struct asset_rec *as, int64_t now)
{
	char path[400], url[2600];
	struct jw w;

	buf_reset(b);
	jw_init(&w, b);
	jw_obj_begin(&w);
	jw_kv_str(&w, "id", as->id);
	jw_kv_str(&w, "name", as->name);
	jw_kv_str(&w, "status", as->status == 2 ? "ready" : "pending");
	jw_kv_int(&w, "size", as->size);
	jw_kv_int(&w, "createdAt", as->created_at);
	if (as->status == 2) {
		snprintf(path, sizeof(path), "/blobs/assets/%s/%s", as->id, as->name);
		presign_url(url, sizeof(url), api->cfg->public_url, "GET", path, now + ASSET_URL_TTL_MS,
			    api->signing_key, strlen(api->signing_key));
		jw_kv_str(&w, "url", url);
		jw_kv_int(&w, "expiresAt", now + ASSET_URL_TTL_MS);
	}
	jw_obj_end(&w);
}

static void asset_create(struct api *api, struct httpd_req *req, const struct auth *a)
{
	cJSON *b = api_body_json(req);
	const cJSON *name, *size;
	struct asset_rec as;
	MDB_txn *t;
	char path[400], url[2600];
	int64_t now = now_ms();
	struct buf out;
	int rc;

	if (!b)
		return;
	name = cJSON_GetObjectItemCaseSensitive(b, "name");
	if (!name)
		name = cJSON_GetObjectItemCaseSensitive(b, "filename");
	size = cJSON_GetObjectItemCaseSensitive(b, "size");
	if (!cJSON_IsString(name) || !name_ok(name->valuestring, strlen(name->valuestring))) {
		api_err(req, 400, "VALIDATION_ERROR", "name: a file name (letters, digits, . _ -)", NULL);
		goto out;
	}
	if (size && (!cJSON_IsNumber(size) || size->valuedouble < 0)) {
		api_err(req, 400, "VALIDATION_ERROR", "size: bytes, a non-negative integer", NULL);
		goto out;
	}
	if (size && size->valuedouble > (double)a->plan->max_input_file_size) {
		api_err(req, 413, "FILE_TOO_LARGE", "The file is larger than your plan allows", NULL);
		goto out;
	}
	memset(&as, 0, sizeof(as));
	as.version = ASSET_VERSION;
	id_new(as.id, sizeof(as.id), "ast_", 20);
	snprintf(as.org, sizeof(as.org), "%s", a->org.id);
	snprintf(as.name, sizeof(as.name), "%s", name->valuestring);
	as.max_size = a->plan->max_input_file_size;
	as.created_at = now;
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		goto out;
	}
	if ((rc = store_put(api->store, t, DB_ASSETS, as.id, strlen(as.id), &as, sizeof(as))) < 0) {
		api_store_error(api, t, req, rc);
		goto out;
	}
	snprintf(path, sizeof(path), "/blobs/assets/%s/%s", as.id, as.name);
	presign_url(url, sizeof(url), api->cfg->public_url, "PUT", path, now + ASSET_UPLOAD_TTL_MS,
		    api->signing_key, strlen(api->signing_key));
	/* Rendobar puts `status` and `upload` beside `data` for this one call:
	 * {"data":{asset},"status":"pending","upload":{…}} (api_wdone closes it). */
	buf_init(&out);
	asset_json(api, &out, &as, now);
	buf_printf(&out, ",\"status\":\"pending\",\"upload\":{\"url\":\"%s\",\"method\":\"PUT\","
		   "\"expiresAt\":%lld,\"maxSize\":%lld}", url, (long long)(now + ASSET_UPLOAD_TTL_MS),
		   (long long)as.max_size);
	api_wdone(api, t, req, 201, &out, NULL);
	buf_free(&out);
out:
	cJSON_Delete(b);
}

static void asset_complete(struct api *api, struct httpd_req *req, const struct auth *a,
			   const char *id)
{
	struct asset_rec as;
	MDB_txn *t;
	struct stat st;
	char path[1400];
	int64_t size = 0;
	int rc;

	if (s3_mode(api)) {
		/* ask the store before the write txn: the HEAD may take a while */
		if ((rc = store_begin(api->store, 1, &t)) < 0) {
			api_store_error(api, NULL, req, rc);
			return;
		}
		rc = asset_get(api, t, id, &as);
		store_abort(t);
		if (rc < 0 || strcmp(as.org, a->org.id) != 0) {
			api_err(req, 404, "NOT_FOUND", "Asset not found", NULL);
			return;
		}
		snprintf(path, sizeof(path), "assets/%s/%s", as.id, as.name);
		rc = s3_head(api, path, &size);
		if (rc == -ENOENT) {
			api_err(req, 409, "CONFLICT", "Nothing was uploaded for this asset yet", NULL);
			return;
		}
		if (rc < 0) {
			api_err(req, 502, "STORAGE_UNAVAILABLE", "The object store did not answer", NULL);
			return;
		}
		if (size > as.max_size) {
			api_err(req, 413, "FILE_TOO_LARGE", "The file is larger than your plan allows", NULL);
			return;
		}
	}
	if ((rc = api_wbegin(api, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	if (asset_get(api, t, id, &as) < 0 || strcmp(as.org, a->org.id) != 0) {
		api_wfail(api, t, req, 404, "NOT_FOUND", "Asset not found");
		return;
	}
	if (!s3_mode(api)) {
		snprintf(path, sizeof(path), "%s/blobs/assets/%s/%s", api->cfg->data_dir, as.id,
			 as.name);
		if (stat(path, &st) < 0) {
			api_wfail(api, t, req, 409, "CONFLICT", "Nothing was uploaded for this asset yet");
			return;
		}
		size = st.st_size;
	}
	as.status = 2;
	as.size = size;
	if ((rc = store_put(api->store, t, DB_ASSETS, as.id, strlen(as.id), &as, sizeof(as))) < 0) {
		api_store_error(api, t, req, rc);
		return;
	}
	asset_json(api, &api->scratch, &as, now_ms());
	api_wdone(api, t, req, 200, &api->scratch, NULL);
}

void api_assets_route(struct api *api, struct httpd_req *req, struct route *r)
{
	struct auth a;
	MDB_txn *t;
	char id[40];
	int rc;

	if ((rc = store_begin(api->store, 1, &t)) < 0) {
		api_store_error(api, NULL, req, rc);
		return;
	}
	rc = api_auth(api, req, t, &a);
	if (rc == 0 && r->nseg == 2 && r->is_get && seg_copy(r, 1, id, sizeof(id)) == 0) {
		struct asset_rec as;
		if (asset_get(api, t, id, &as) < 0 || strcmp(as.org, a.org.id) != 0) {
			api_err(req, 404, "NOT_FOUND", "Asset not found", NULL);
		} else {
			asset_json(api, &api->scratch, &as, now_ms());
			api_ok(req, 200, &api->scratch);
		}
		store_abort(t);
		return;
	}
	store_abort(t);
	if (rc < 0 || api_rate(api, req, &a) < 0)
		return;
	if (r->nseg == 1 && r->is_post)
		asset_create(api, req, &a);
	else if (r->nseg == 3 && seg_is(r, 2, "complete") && r->is_post &&
		 seg_copy(r, 1, id, sizeof(id)) == 0)
		asset_complete(api, req, &a, id);
	else
		api_err(req, r->nseg <= 3 ? 405 : 404, r->nseg <= 3 ? "METHOD_NOT_ALLOWED" : "NOT_FOUND",
			"Route not found for this method", NULL);
}
