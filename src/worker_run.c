/* worker_run.c - one run of a dispatched job, in a forked child of the
 * worker: make the work dir, report running, download the inputs, run the
 * type, upload the outputs, report complete or failed. Also the simple types
 * (sleep, fail, checksum) and the provider reports (DESIGN.md §6).
 *
 * Reports are POST {callbackUrl} with "Authorization: Bearer {token}" and a
 * JSON body {event, attempt, ...}. running/complete/failed are retried on
 * connection errors, 429 and 5xx with a short backoff; progress and log
 * events are best effort. A 401/403/404/410 means the server no longer
 * knows this run: it stops at once and says nothing more. */
#include "worker_int.h"

#include "jobring/crypto.h"
#include "jobring/log.h"
#include "jobring/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REPORT_TRIES 5
#define REPORT_BACKOFF_MS 250
#define UPLOAD_TRIES 3
#define PROGRESS_MIN_NS (250LL * 1000000LL)
#define SLEEP_MAX_SECONDS 86400.0
#define NS_PER_MS 1000000LL

void wfail_set(struct wfail *f, const char *code, const char *fmt, ...)
{
	va_list ap;

	f->code = code;
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
	f->detail[0] = '\0';
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };

	while (ns > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
	(void)p;
	(void)u;
	return sz * n;
}

/* Restrict a transfer to http(s), no signals, and our user agent. */
static void curl_common(CURL *c)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "jobring-worker/0.1");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
}

static bool http_url(const char *u)
{
	return strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
}

/* ---- reports --------------------------------------------------------------- */

/* POST body (consumed) to the callback. 0 on 2xx, -EACCES when the server
 * disowns the run, -EIO when every try failed. */
static int report_send(struct wrun *r, cJSON *body, int tries)
{
	CURL *c = r->report_curl;
	struct curl_slist *h = NULL;
	char auth[600];
	char *json;
	int rc = -EIO;

	if (r->gone || !c) {
		cJSON_Delete(body);
		return -EACCES;
	}
	cJSON_AddNumberToObject(body, "attempt", r->job->attempt);
	json = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (!json)
		return -ENOMEM;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->job->callback_token);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Expect:");
	curl_easy_reset(c);
	curl_common(c);
	curl_easy_setopt(c, CURLOPT_URL, r->job->callback_url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, tries > 1 ? 10000L : 3000L);
	for (int t = 0; t < tries; t++) {
		long status = 0;
		CURLcode cc;

		if (t)
			sleep_ns((int64_t)REPORT_BACKOFF_MS * NS_PER_MS << (t - 1));
		cc = curl_easy_perform(c);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			rc = 0;
			break;
		}
		if (status == 401 || status == 403 || status == 404 || status == 410) {
			log_warn("job %s attempt %u: callback answered %ld; the server no longer "
				 "knows this run, stopping it", r->job->id, r->job->attempt, status);
			r->gone = true;
			rc = -EACCES;
			break;
		}
		if (cc == CURLE_OK && status < 500 && status != 429) {
			log_warn("job %s: callback answered %ld", r->job->id, status);
			break;
		}
		log_warn("job %s: report failed (%s, HTTP %ld)%s", r->job->id,
			 curl_easy_strerror(cc), status, t + 1 < tries ? "; retrying" : "");
	}
	curl_slist_free_all(h);
	free(json);
	return rc;
}

static cJSON *event_new(const char *event)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "event", event);
	return o;
}

void wrun_progress(struct wrun *r, double frac)
{
	int64_t now = mono_ns();
	cJSON *o;

	frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
	if (now - r->last_progress_ns < PROGRESS_MIN_NS || frac - r->last_progress < 0.005)
		return;
	r->last_progress_ns = now;
	r->last_progress = frac;
	o = event_new("progress");
	cJSON_AddNumberToObject(o, "progress", frac);
	cJSON_AddStringToObject(o, "step", "processing");
	report_send(r, o, 1);
}

void wrun_log(struct wrun *r, const char *level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	cJSON *o;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = event_new("log");
	cJSON_AddStringToObject(o, "level", level);
	cJSON_AddStringToObject(o, "message", msg);
	report_send(r, o, 1);
}

int wrun_add_output(struct wrun *r, const char *name)
{
	if (r->noutputs == WORKER_MAX_OUTPUTS)
		return -E2BIG;
	r->outputs[r->noutputs++] = xstrdup(name);
	return 0;
}

static int report_failed(struct wrun *r, const struct wfail *f, int64_t compute_ms)
{
	cJSON *o = event_new("failed"), *e = cJSON_AddObjectToObject(o, "error");

	cJSON_AddStringToObject(e, "code", f->code ? f->code : "PROVIDER_ERROR");
	cJSON_AddStringToObject(e, "message", f->message);
	cJSON_AddStringToObject(e, "detail", f->detail);
	cJSON_AddNumberToObject(o, "computeMs", (double)compute_ms);
	log_info("job %s attempt %u failed: %s: %s", r->job->id, r->job->attempt, f->code,
		 f->message);
	return report_send(r, o, REPORT_TRIES);
}

/* ---- file types ------------------------------------------------------------ */

static const struct {
	const char *ext, *kind, *mime;
} file_kinds[] = {
	{ "mp4", "video", "video/mp4" }, { "m4v", "video", "video/mp4" },
	{ "mov", "video", "video/quicktime" }, { "mkv", "video", "video/x-matroska" },
	{ "webm", "video", "video/webm" }, { "avi", "video", "video/x-msvideo" },
	{ "ts", "video", "video/mp2t" }, { "mpg", "video", "video/mpeg" },
	{ "mpeg", "video", "video/mpeg" }, { "flv", "video", "video/x-flv" },
	{ "ogv", "video", "video/ogg" }, { "3gp", "video", "video/3gpp" },
	{ "mp3", "audio", "audio/mpeg" }, { "wav", "audio", "audio/wav" },
	{ "flac", "audio", "audio/flac" }, { "ogg", "audio", "audio/ogg" },
	{ "oga", "audio", "audio/ogg" }, { "opus", "audio", "audio/opus" },
	{ "aac", "audio", "audio/aac" }, { "m4a", "audio", "audio/mp4" },
	{ "png", "image", "image/png" }, { "jpg", "image", "image/jpeg" },
	{ "jpeg", "image", "image/jpeg" }, { "gif", "image", "image/gif" },
	{ "webp", "image", "image/webp" }, { "bmp", "image", "image/bmp" },
	{ "tif", "image", "image/tiff" }, { "tiff", "image", "image/tiff" },
	{ "avif", "image", "image/avif" },
	{ "srt", "captions", "application/x-subrip" }, { "vtt", "captions", "text/vtt" },
	{ "ass", "captions", "text/x-ssa" }, { "ssa", "captions", "text/x-ssa" },
	{ "json", "data", "application/json" }, { "txt", "data", "text/plain" },
	{ "csv", "data", "text/csv" }, { "xml", "data", "application/xml" },
};

static int file_kind(const char *name)
{
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < ARRAY_SIZE(file_kinds); i++)
		if (strcasecmp(dot + 1, file_kinds[i].ext) == 0)
			return (int)i;
	return -1;
}

/* ---- inputs ---------------------------------------------------------------- */

struct dl {
	int fd;
	int64_t n, max;
	bool too_big, write_failed;
};

static size_t dl_write(char *p, size_t sz, size_t nm, void *u)
{
	struct dl *d = u;
	size_t len = sz * nm;

	if (d->n + (int64_t)len > d->max) {
		d->too_big = true;
		return 0;
	}
	if (write_all(d->fd, p, len) < 0) {
		d->write_failed = true;
		return 0;
	}
	d->n += (int64_t)len;
	return len;
}

static long ms_left(const struct wrun *r, long floor_ms)
{
	int64_t left = (r->deadline_ns - mono_ns()) / NS_PER_MS;

	return (long)MAX(MIN(left, (int64_t)WORKER_DEFAULT_RUN_MS), (int64_t)floor_ms);
}

static int download(struct wrun *r, const char *name, const char *url, struct wfail *f)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct dl d = { .max = r->conf->max_input_bytes };
	long status = 0;
	CURLcode cc;
	CURL *c;

	if (!http_url(url)) {
		wfail_set(f, "INPUT_FETCH_FAILED", "input '%s': only http and https URLs can be "
			  "fetched", name);
		return -1;
	}
	d.fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (d.fd < 0) {
		wfail_set(f, "PROVIDER_ERROR", "input '%s': %s", name, strerror(errno));
		return -1;
	}
	c = curl_easy_init();
	if (!c) {
		close(d.fd);
		wfail_set(f, "PROVIDER_ERROR", "curl_easy_init failed");
		return -1;
	}
	curl_common(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d.max);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms_left(r, 1000));
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dl_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (close(d.fd) < 0 && cc == CURLE_OK)
		cc = CURLE_WRITE_ERROR;
	if (cc == CURLE_OK)
		return (int)MIN(d.n, (int64_t)INT32_MAX);
	if (d.too_big || cc == CURLE_FILESIZE_EXCEEDED)
		wfail_set(f, "INPUT_FETCH_FAILED", "input '%s' is larger than %lld bytes", name,
			  (long long)d.max);
	else if (status >= 400)
		wfail_set(f, "INPUT_FETCH_FAILED", "input '%s': HTTP %ld", name, status);
	else
		wfail_set(f, "INPUT_FETCH_FAILED", "input '%s': %s", name,
			  errbuf[0] ? errbuf : curl_easy_strerror(cc));
	return -1;
}

static int fetch_inputs(struct wrun *r, struct wfail *f)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, r->job->inputs) {
		const cJSON *u = cJSON_IsString(it) ? it
					: cJSON_GetObjectItemCaseSensitive(it, "url");
		int n;

		if (!worker_bare_name(it->string, false)) {
			wfail_set(f, "VALIDATION_ERROR", "input name '%.100s' is not a bare file "
				  "name (letters, digits, '.', '_', '-', '+')", it->string);
			return -1;
		}
		if (!cJSON_IsString(u)) {
			wfail_set(f, "VALIDATION_ERROR", "input '%s' has no url", it->string);
			return -1;
		}
		if (r->ninputs == WORKER_MAX_INPUTS) {
			wfail_set(f, "VALIDATION_ERROR", "more than %d inputs", WORKER_MAX_INPUTS);
			return -1;
		}
		n = download(r, it->string, u->valuestring, f);
		if (n < 0)
			return -1;
		r->inputs[r->ninputs++] = xstrdup(it->string);
		wrun_log(r, "info", "fetched input %s (%d bytes)", it->string, n);
	}
	return 0;
}

/* ---- outputs --------------------------------------------------------------- */

/* The upload URL for name: the template with each "{path}" replaced by the
 * percent-encoded name. NULL if it would not fit. */
static char *upload_url(const char *tmpl, const char *name)
{
	char enc[WORKER_NAME_MAX * 3 + 1], *out;
	size_t e = 0, o = 0, cap;

	for (const char *p = name; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch))
			enc[e++] = (char)ch;
		else
			e += (size_t)snprintf(enc + e, sizeof(enc) - e, "%%%02X", ch);
	}
	enc[e] = '\0';
	cap = strlen(tmpl) * (e + 1) + 1;
	if (cap > 4 * WORKER_URL_MAX)
		return NULL;
	out = xmalloc(cap);
	for (const char *p = tmpl; *p;) {
		if (strncmp(p, "{path}", 6) == 0) {
			memcpy(out + o, enc, e);
			o += e;
			p += 6;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	return out;
}

static int upload(struct wrun *r, const char *name, int64_t *size, struct wfail *f)
{
	char errbuf[CURL_ERROR_SIZE] = "", ctype[100];
	struct curl_slist *h = NULL;
	int k = file_kind(name);
	char *url;
	struct stat st;
	long status = 0;
	CURLcode cc = CURLE_OK;
	FILE *fp;
	CURL *c;
	int rc = -1;

	if (!r->job->upload_url) {
		wfail_set(f, "OUTPUT_UPLOAD_FAILED", "the dispatch has no output.uploadUrl");
		return -1;
	}
	url = upload_url(r->job->upload_url, name);
	fp = fopen(name, "rbe");
	if (!url || !fp || fstat(fileno(fp), &st) < 0 || !(c = curl_easy_init())) {
		wfail_set(f, "OUTPUT_UPLOAD_FAILED", "cannot upload '%s'", name);
		if (fp)
			fclose(fp);
		free(url);
		return -1;
	}
	*size = st.st_size;
	snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		 k >= 0 ? file_kinds[k].mime : "application/octet-stream");
	h = curl_slist_append(h, ctype);
	h = curl_slist_append(h, "Expect:");
	curl_common(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	/* jobring in S3 mode answers 307 to a presigned URL: curl repeats the
	 * PUT there with the same body (it rewinds fp itself) */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READDATA, fp);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms_left(r, 60000));
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	for (int t = 0; t < UPLOAD_TRIES; t++) {
		if (t)
			sleep_ns((int64_t)REPORT_BACKOFF_MS * NS_PER_MS << t);
		rewind(fp);
		status = 0;
		cc = curl_easy_perform(c);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			rc = 0;
			break;
		}
		if (cc == CURLE_OK && status < 500 && status != 429)
			break;
	}
	if (rc < 0 && cc == CURLE_OK)
		wfail_set(f, "OUTPUT_UPLOAD_FAILED", "upload of '%s' failed: HTTP %ld", name, status);
	else if (rc < 0)
		wfail_set(f, "OUTPUT_UPLOAD_FAILED", "upload of '%s' failed: %s", name,
			  errbuf[0] ? errbuf : curl_easy_strerror(cc));
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	fclose(fp);
	free(url);
	return rc;
}

/* Upload every output and build output.files. */
static int upload_outputs(struct wrun *r, cJSON *files, struct wfail *f)
{
	for (size_t i = 0; i < r->noutputs; i++) {
		const char *name = r->outputs[i];
		int k = file_kind(name);
		int64_t size = 0;
		cJSON *o;

		if (upload(r, name, &size, f) < 0)
			return -1;
		wrun_log(r, "info", "uploaded %s (%lld bytes)", name, (long long)size);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "path", name);
		cJSON_AddNumberToObject(o, "size", (double)size);
		cJSON_AddStringToObject(o, "type", k >= 0 ? file_kinds[k].kind : "other");
		cJSON_AddItemToArray(files, o);
	}
	return 0;
}

/* ---- the simple types ------------------------------------------------------ */

static int wtype_sleep(struct wrun *r, struct wfail *f)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(r->job->params, "seconds");
	double secs = 1;
	int64_t start = mono_ns(), end, now;

	if (s && !cJSON_IsNull(s)) {
		if (!cJSON_IsNumber(s) || !(s->valuedouble >= 0) ||
		    s->valuedouble > SLEEP_MAX_SECONDS) {
			wfail_set(f, "VALIDATION_ERROR", "params.seconds must be a number in "
				  "0..%.0f", SLEEP_MAX_SECONDS);
			return -1;
		}
		secs = s->valuedouble;
	}
	end = start + (int64_t)(secs * 1e9);
	while ((now = mono_ns()) < end) {
		int64_t next = MIN(end, now + 1000000000LL);

		if (next > r->deadline_ns) {
			sleep_ns(r->deadline_ns - now);
			wfail_set(f, "PROCESSING_TIMEOUT", "sleep of %g s passed the job's deadline",
				  secs);
			return -1;
		}
		sleep_ns(next - now);
		if (r->gone)
			return -1;
		if (next < end)
			wrun_progress(r, (double)(next - start) / (double)(end - start));
	}
	r->data = cJSON_CreateObject();
	cJSON_AddNumberToObject(r->data, "slept", secs);
	return 0;
}

static bool valid_code(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || !(s[0] >= 'A' && s[0] <= 'Z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static int wtype_fail(struct wrun *r, struct wfail *f)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(r->job->params, "code");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(r->job->params, "message");

	wfail_set(f, cJSON_IsString(code) && valid_code(code->valuestring) ? code->valuestring
									   : "PROCESSING_FAILED",
		  "%.500s", cJSON_IsString(msg) ? msg->valuestring
						: "the job failed as asked (type fail)");
	return -1;
}

static int wtype_checksum(struct wrun *r, struct wfail *f)
{
	cJSON *sums;

	if (r->ninputs == 0) {
		wfail_set(f, "VALIDATION_ERROR", "checksum needs at least one input");
		return -1;
	}
	r->data = cJSON_CreateObject();
	sums = cJSON_AddObjectToObject(r->data, "checksums");
	for (size_t i = 0; i < r->ninputs; i++) {
		uint8_t md[CRYPTO_SHA256_LEN];
		char hex[2 * CRYPTO_SHA256_LEN + 1];
		int fd = open(r->inputs[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		struct stat st;
		void *map = NULL;
		int rc = -1;

		if (fd >= 0 && fstat(fd, &st) == 0) {
			if (st.st_size == 0) {
				rc = crypto_sha256("", 0, md);
			} else {
				map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
				if (map != MAP_FAILED) {
					rc = crypto_sha256(map, (size_t)st.st_size, md);
					munmap(map, (size_t)st.st_size);
				}
			}
		}
		if (fd >= 0)
			close(fd);
		if (rc < 0) {
			wfail_set(f, "PROVIDER_ERROR", "cannot hash input '%s'", r->inputs[i]);
			return -1;
		}
		hex_encode(md, sizeof(md), hex);
		cJSON_AddStringToObject(sums, r->inputs[i], hex);
	}
	return 0;
}

/* Each type: run it, and optionally check its params before any input is
 * fetched. */
static const struct wtype {
	const char *name;
	wtype_fn run, check;
} types[] = {
	{ "sleep", wtype_sleep, NULL },
	{ "fail", wtype_fail, NULL },
	{ "checksum", wtype_checksum, NULL },
	{ "ffprobe", wtype_ffprobe, NULL },
	{ "ffmpeg", wtype_ffmpeg, wcheck_ffmpeg },
	{ "raw.ffmpeg", wtype_ffmpeg, wcheck_ffmpeg },
};

static const struct wtype *type_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (strcmp(types[i].name, name) == 0)
			return &types[i];
	return NULL;
}

bool worker_type_known(const char *type)
{
	return type_find(type) != NULL;
}

/* ---- the run --------------------------------------------------------------- */

static void run_free(struct wrun *r)
{
	for (size_t i = 0; i < r->ninputs; i++)
		free(r->inputs[i]);
	for (size_t i = 0; i < r->noutputs; i++)
		free(r->outputs[i]);
	cJSON_Delete(r->data);
	if (r->report_curl)
		curl_easy_cleanup(r->report_curl);
}

/* The work is over: tell the listener, so that the slot stops counting
 * against --jobs before the final report goes out. Otherwise the server could
 * dispatch the next job on reading that report and meet a 503 from a slot
 * that is only busy exiting. */
static void run_done(struct wrun *r)
{
	pid_t me = getpid();

	if (r->done_sent || r->conf->done_fd < 0)
		return;
	r->done_sent = true;
	if (write(r->conf->done_fd, &me, sizeof(me)) < 0) {
		/* the listener frees the slot when it reaps us instead */
	}
}

static int run_end(struct wrun *r, int status)
{
	run_done(r);
	run_free(r);
	return status;
}

int worker_run(const struct worker_job *job, const struct worker_conf *conf)
{
	struct wrun r = { .job = job, .conf = conf };
	struct wfail f = { 0 };
	const struct wtype *type;
	int64_t t0 = 0, compute_ms = 0, left_ms;
	cJSON *o, *out, *files;
	int rc;

	left_ms = job->deadline_ms > 0 ? job->deadline_ms - now_ms() : WORKER_DEFAULT_RUN_MS;
	r.deadline_ns = mono_ns() + MIN(left_ms, (int64_t)WORKER_MAX_RUN_MS) * NS_PER_MS;
	r.report_curl = curl_easy_init();
	if (!r.report_curl) {
		log_error("job %s: curl_easy_init failed", job->id);
		return run_end(&r, 2);
	}
	if (mkdir(job->dir, 0700) < 0 || chdir(job->dir) < 0) {
		wfail_set(&f, "PROVIDER_ERROR", "cannot make the work dir: %s", strerror(errno));
		goto failed;
	}
	o = event_new("running");
	cJSON_AddNumberToObject(o, "progress", 0);
	cJSON_AddStringToObject(o, "step", "preparing");
	cJSON_AddStringToObject(o, "message", job->run_id);
	if (report_send(&r, o, REPORT_TRIES) == -EACCES)
		return run_end(&r, 3);
	if (left_ms <= 0) {
		wfail_set(&f, "PROCESSING_TIMEOUT", "the job's deadline passed before it started");
		goto failed;
	}
	type = type_find(job->type);
	if ((type->check && type->check(&r, &f) < 0) || fetch_inputs(&r, &f) < 0)
		goto failed;
	if (r.gone)
		goto gone;
	t0 = mono_ns();
	rc = type->run(&r, &f);
	compute_ms = (mono_ns() - t0) / NS_PER_MS;
	if (r.gone)
		goto gone;
	if (rc < 0)
		goto failed;
	out = cJSON_CreateObject();
	files = cJSON_AddArrayToObject(out, "files");
	if (upload_outputs(&r, files, &f) < 0) {
		cJSON_Delete(out);
		goto failed;
	}
	cJSON_AddItemToObject(out, "data", r.data ? r.data : cJSON_CreateNull());
	r.data = NULL;
	run_done(&r);
	o = event_new("complete");
	cJSON_AddNumberToObject(o, "progress", 1);
	cJSON_AddStringToObject(o, "step", "finalizing");
	cJSON_AddItemToObject(o, "output", out);
	cJSON_AddNumberToObject(o, "computeMs", (double)compute_ms);
	rc = report_send(&r, o, REPORT_TRIES);
	log_info("job %s attempt %u complete in %lld ms%s", job->id, job->attempt,
		 (long long)compute_ms, rc < 0 ? " (report not delivered)" : "");
	return run_end(&r, rc < 0 ? 2 : 0);
failed:
	run_done(&r);
	rc = report_failed(&r, &f, compute_ms);
	return run_end(&r, rc < 0 ? 2 : 0);
gone:
	return run_end(&r, 3);
}
