/* config.c - defaults, then a strict walk over the JSON config file.
 *
 * Each object is checked against the list of keys it may hold, so a typo is
 * an error that names the key instead of a silently ignored setting. */
#include "jobring/config.h"
#include "jobring/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cctx {
	char *err;
	size_t errsz;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct cctx *c, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, c->errsz, "config: %s: ", key);
	if (n < 0 || (size_t)n >= c->errsz)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errsz - (size_t)n, fmt, ap);
	va_end(ap);
	/* one printable line, whatever bytes the key held */
	for (char *p = c->err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -EINVAL;
}

static void join(char *out, size_t outsz, const char *parent, const char *key)
{
	if (parent && *parent)
		snprintf(out, outsz, "%.120s.%.120s", parent, key);
	else
		snprintf(out, outsz, "%.240s", key);
}

/* Every key in obj must be one of `allowed` (NULL-terminated). */
static int only_keys(struct cctx *c, const cJSON *obj, const char *path,
		     const char *const *allowed)
{
	const cJSON *it;
	char key[256];

	cJSON_ArrayForEach(it, obj) {
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, it->string) == 0)
				ok = 1;
		if (!ok) {
			join(key, sizeof(key), path, it->string);
			return fail(c, key, "unknown key");
		}
	}
	return 0;
}

static int want_object(struct cctx *c, const cJSON *v, const char *path)
{
	if (!cJSON_IsObject(v))
		return fail(c, path, "must be an object");
	return 0;
}

static int get_int(struct cctx *c, const cJSON *obj, const char *path, const char *key,
		   int64_t min, int64_t max, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char full[256];
	double d;

	if (!v)
		return 0;
	join(full, sizeof(full), path, key);
	d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
	if (!cJSON_IsNumber(v) || d != floor(d) || d < (double)min || d > (double)max)
		return fail(c, full, "must be an integer in [%lld, %lld]", (long long)min,
			    (long long)max);
	*out = (int64_t)d;
	return 0;
}

static int get_int32(struct cctx *c, const cJSON *obj, const char *path, const char *key,
		     int64_t min, int64_t max, int *out)
{
	int64_t v = *out;
	int r = get_int(c, obj, path, key, min, max, &v);
	*out = (int)v;
	return r;
}

static int get_bool(struct cctx *c, const cJSON *obj, const char *path, const char *key,
		    int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char full[256];

	if (!v)
		return 0;
	join(full, sizeof(full), path, key);
	if (!cJSON_IsBool(v))
		return fail(c, full, "must be true or false");
	*out = cJSON_IsTrue(v);
	return 0;
}

/* Replaces *out (freeing the old value) when the key is present. */
static int get_str(struct cctx *c, const cJSON *obj, const char *path, const char *key,
		   size_t maxlen, char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char full[256];

	if (!v)
		return 0;
	join(full, sizeof(full), path, key);
	if (!cJSON_IsString(v))
		return fail(c, full, "must be a string");
	if (strlen(v->valuestring) > maxlen)
		return fail(c, full, "must be at most %zu characters", maxlen);
	free(*out);
	*out = xstrdup(v->valuestring);
	return 0;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= CONFIG_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
		      ('0' <= *s && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static int parse_addr(struct cctx *c, const char *key, const char *s, struct addr_cfg *a)
{
	const char *colon = strrchr(s, ':');
	int64_t port;
	char portbuf[8];
	size_t hl;

	if (!colon || colon == s)
		return fail(c, key, "must be HOST:PORT");
	hl = (size_t)(colon - s);
	if (hl >= sizeof(a->host) || strlen(colon + 1) >= sizeof(portbuf))
		return fail(c, key, "must be HOST:PORT");
	memcpy(portbuf, colon + 1, strlen(colon + 1) + 1);
	if (parse_i64(portbuf, 0, 65535, &port) < 0)
		return fail(c, key, "port must be an integer in [0, 65535]");
	memcpy(a->host, s, hl);
	a->host[hl] = '\0';
	a->port = (uint16_t)port;
	return 0;
}

static int get_addr(struct cctx *c, const cJSON *obj, const char *key, struct addr_cfg *a)
{
	char *s = NULL;
	int r = get_str(c, obj, "", key, 100, &s);
	if (r == 0 && s)
		r = parse_addr(c, key, s, a);
	free(s);
	return r;
}

/* A list of type names, or ["*"]. */
static int get_types(struct cctx *c, const cJSON *obj, const char *path, const char *key,
		     char (*types)[CONFIG_NAME_MAX], int *ntypes, int *all)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
	char full[256];

	if (!v)
		return 0;
	join(full, sizeof(full), path, key);
	if (!cJSON_IsArray(v))
		return fail(c, full, "must be an array of job type names");
	*ntypes = 0;
	*all = 0;
	cJSON_ArrayForEach(it, v) {
		if (!cJSON_IsString(it))
			return fail(c, full, "must be an array of job type names");
		if (strcmp(it->valuestring, "*") == 0) {
			*all = 1;
			continue;
		}
		if (!name_ok(it->valuestring))
			return fail(c, full, "'%s' is not a valid job type name", it->valuestring);
		if (*ntypes >= CONFIG_MAX_TYPES)
			return fail(c, full, "at most %d entries", CONFIG_MAX_TYPES);
		snprintf(types[(*ntypes)++], CONFIG_NAME_MAX, "%s", it->valuestring);
	}
	return 0;
}

/* ---- built-in defaults ---------------------------------------------------- */

static const char default_types_json[] =
	"{"
	"\"ffmpeg\":{\"summary\":\"Run an FFmpeg command on the inputs\",\"tag\":\"media\","
	" \"schema\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"command\"],"
	"  \"properties\":{"
	"   \"command\":{\"type\":\"string\",\"minLength\":6,\"maxLength\":8192,\"pattern\":\"^ffmpeg\\\\s\","
	"     \"description\":\"The FFmpeg command; inputs by their names, the output by its file name\"},"
	"   \"outputFormat\":{\"enum\":[\"mp4\",\"mkv\",\"webm\",\"mov\",\"avi\",\"ts\",\"gif\",\"png\",\"jpg\","
	"     \"mp3\",\"wav\",\"flac\",\"ogg\",\"aac\",\"opus\",\"m4a\",\"srt\",\"vtt\"]},"
	"   \"timeout\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":900,\"default\":120}}},"
	" \"price\":{\"base\":1000000,\"perSecond\":833333,\"estimateSeconds\":60},"
	" \"maxExecutionSeconds\":900},"
	"\"ffprobe\":{\"summary\":\"Probe a media file and return its streams as JSON\",\"tag\":\"media\","
	" \"schema\":{\"type\":\"object\",\"additionalProperties\":false,"
	"  \"properties\":{\"command\":{\"type\":\"string\",\"maxLength\":4096},"
	"   \"input\":{\"type\":\"string\",\"maxLength\":256}}},"
	" \"price\":{\"base\":500000,\"perSecond\":0,\"estimateSeconds\":0},"
	" \"maxExecutionSeconds\":120},"
	"\"sleep\":{\"summary\":\"Sleep for a number of seconds, reporting progress (tests, demos)\","
	" \"tag\":\"utility\","
	" \"schema\":{\"type\":\"object\",\"additionalProperties\":false,"
	"  \"properties\":{\"seconds\":{\"type\":\"number\",\"minimum\":0,\"maximum\":3600,\"default\":1}}},"
	" \"price\":{\"base\":1000000,\"perSecond\":0,\"estimateSeconds\":0},"
	" \"maxExecutionSeconds\":300},"
	"\"checksum\":{\"summary\":\"SHA-256 of every input\",\"tag\":\"utility\","
	" \"schema\":{\"type\":\"object\",\"additionalProperties\":false,"
	"  \"properties\":{\"algorithm\":{\"enum\":[\"sha256\"],\"default\":\"sha256\"}}},"
	" \"price\":{\"base\":100000,\"perSecond\":0,\"estimateSeconds\":0},"
	" \"maxExecutionSeconds\":300},"
	"\"fail\":{\"summary\":\"Fail with the given code (tests)\",\"tag\":\"utility\","
	" \"schema\":{\"type\":\"object\",\"additionalProperties\":false,"
	"  \"properties\":{\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z][A-Z0-9_]{0,39}$\","
	"    \"default\":\"PROCESSING_FAILED\"},"
	"   \"message\":{\"type\":\"string\",\"maxLength\":1000}}},"
	" \"price\":{\"base\":100000,\"perSecond\":0,\"estimateSeconds\":0},"
	" \"maxExecutionSeconds\":60}"
	"}";

static const char default_plans_json[] =
	"{"
	"\"free\":{\"concurrentJobs\":1,\"requestsPerMinute\":30,\"maxJobTimeout\":300,"
	" \"maxInputFileSize\":104857600,\"queueLimit\":100,\"priority\":0,\"jobTypes\":[\"*\"]},"
	"\"pro\":{\"concurrentJobs\":25,\"requestsPerMinute\":300,\"maxJobTimeout\":900,"
	" \"maxInputFileSize\":2147483648,\"queueLimit\":10000,\"priority\":10,\"jobTypes\":[\"*\"]}"
	"}";

static int load_types(struct cctx *c, struct config *cfg, const cJSON *obj, const char *path);
static int load_plans(struct cctx *c, struct config *cfg, const cJSON *obj, const char *path);

static void set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen.host, sizeof(cfg->listen.host), "127.0.0.1");
	cfg->listen.port = 8080;
	snprintf(cfg->provider_listen.host, sizeof(cfg->provider_listen.host), "127.0.0.1");
	cfg->provider_listen.port = 8081;
	cfg->public_url = xstrdup("http://127.0.0.1:8080");
	cfg->callback_url = xstrdup("http://127.0.0.1:8081");
	cfg->data_dir = xstrdup("./var");
	cfg->map_size_mb = 4096;
	cfg->sync = SYNC_FULL;
	cfg->blobs.kind = BLOBS_LOCAL;
	cfg->blobs.region = xstrdup("us-east-1");
	cfg->blobs.expires_seconds = 900;
	cfg->dispatch.max_attempts = 3;
	cfg->dispatch.backoff_ms = 1000;
	cfg->dispatch.backoff_max_ms = 30000;
	cfg->dispatch.timeout_ms = 10000;
	cfg->dispatch.unhealthy_after = 5;
	cfg->dispatch.cooldown_ms = 30000;
	cfg->sweep.interval_seconds = 120;
	cfg->sweep.stuck_seconds = 300;
	cfg->webhooks.timeout_ms = 10000;
	cfg->webhooks.backoff_ms = 5000;
	cfg->webhooks.backoff_max_ms = 300000;
	cfg->webhooks.max_attempts = 6;
	cfg->webhooks.disable_after_failures = 10;
	cfg->webhooks.allow_private_targets = 0;
	cfg->retention_days = 30;
	cfg->http.max_connections = 10000;
	cfg->http.header_timeout_ms = 10000;
	cfg->http.idle_timeout_ms = 60000;
	cfg->http.max_body_bytes = 1 << 20;
	cfg->http.max_header_bytes = 16384;
	cfg->ring_slots = 4096;
	cfg->log_format = LOGFMT_PLAIN;

	struct provider_cfg *p = &cfg->providers[cfg->nproviders++];
	snprintf(p->id, sizeof(p->id), "local");
	p->kind = xstrdup("http");
	p->url = xstrdup("http://127.0.0.1:8090/dispatch");
	p->secret = xstrdup("jobring-local-provider-secret");
	p->all_types = 1;
	p->capacity = 8;

	struct cctx c = { NULL, 0 };
	char err[256];
	cJSON *t = cJSON_Parse(default_types_json), *pl = cJSON_Parse(default_plans_json);
	c.err = err;
	c.errsz = sizeof(err);
	if (!t || !pl || load_types(&c, cfg, t, "jobTypes") < 0 ||
	    load_plans(&c, cfg, pl, "plans") < 0) {
		fprintf(stderr, "jobring: built-in defaults are broken: %s\n", err);
		abort();
	}
	cJSON_Delete(t);
	cJSON_Delete(pl);
}

/* ---- sections ------------------------------------------------------------- */

static int load_price(struct cctx *c, struct price_cfg *p, const cJSON *v, const char *path)
{
	static const char *const keys[] = { "base", "perSecond", "estimateSeconds", NULL };
	int r;

	if ((r = want_object(c, v, path)) < 0 || (r = only_keys(c, v, path, keys)) < 0)
		return r;
	if ((r = get_int(c, v, path, "base", 0, 1000000000000LL, &p->base)) < 0 ||
	    (r = get_int(c, v, path, "perSecond", 0, 1000000000000LL, &p->per_second)) < 0 ||
	    (r = get_int(c, v, path, "estimateSeconds", 0, 86400 * 7, &p->estimate_seconds)) < 0)
		return r;
	return 0;
}

static struct jobtype_cfg *type_slot(struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->ntypes; i++)
		if (strcmp(cfg->types[i].name, name) == 0)
			return &cfg->types[i];
	if (cfg->ntypes >= CONFIG_MAX_TYPES)
		return NULL;
	struct jobtype_cfg *t = &cfg->types[cfg->ntypes++];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->schema = cJSON_Parse("{\"type\":\"object\"}");
	t->summary = xstrdup("");
	t->tag = xstrdup("custom");
	t->max_execution_seconds = 300;
	return t;
}

static int load_types(struct cctx *c, struct config *cfg, const cJSON *obj, const char *path)
{
	static const char *const keys[] = { "summary", "tag", "schema", "price",
					    "maxExecutionSeconds", "hidden", NULL };
	const cJSON *it;
	char p[256], k[256];
	int r;

	if ((r = want_object(c, obj, path)) < 0)
		return r;
	cJSON_ArrayForEach(it, obj) {
		struct jobtype_cfg *t;
		join(p, sizeof(p), path, it->string);
		if (!name_ok(it->string))
			return fail(c, p, "not a valid job type name ([A-Za-z0-9._-], 1-31 chars)");
		if ((r = want_object(c, it, p)) < 0 || (r = only_keys(c, it, p, keys)) < 0)
			return r;
		if (!(t = type_slot(cfg, it->string)))
			return fail(c, p, "too many job types (at most %d)", CONFIG_MAX_TYPES);
		if ((r = get_str(c, it, p, "summary", 1000, &t->summary)) < 0 ||
		    (r = get_str(c, it, p, "tag", 64, &t->tag)) < 0 ||
		    (r = get_int32(c, it, p, "maxExecutionSeconds", 1, 86400 * 7,
				   &t->max_execution_seconds)) < 0 ||
		    (r = get_bool(c, it, p, "hidden", &t->hidden)) < 0)
			return r;
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "schema");
		if (s) {
			join(k, sizeof(k), p, "schema");
			if (!cJSON_IsObject(s) && !cJSON_IsBool(s))
				return fail(c, k, "must be a JSON Schema object");
			cJSON_Delete(t->schema);
			t->schema = cJSON_Duplicate(s, 1);
		}
		const cJSON *pr = cJSON_GetObjectItemCaseSensitive(it, "price");
		if (pr) {
			join(k, sizeof(k), p, "price");
			if ((r = load_price(c, &t->price, pr, k)) < 0)
				return r;
		}
	}
	return 0;
}

static struct plan_cfg *plan_slot(struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nplans; i++)
		if (strcmp(cfg->plans[i].name, name) == 0)
			return &cfg->plans[i];
	if (cfg->nplans >= CONFIG_MAX_PLANS)
		return NULL;
	struct plan_cfg *p = &cfg->plans[cfg->nplans++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->concurrent_jobs = 1;
	p->requests_per_minute = 30;
	p->max_job_timeout = 300;
	p->max_input_file_size = 104857600;
	p->queue_limit = 100;
	p->all_types = 1;
	return p;
}

static int load_plans(struct cctx *c, struct config *cfg, const cJSON *obj, const char *path)
{
	static const char *const keys[] = { "concurrentJobs", "requestsPerMinute", "maxJobTimeout",
					    "maxInputFileSize", "queueLimit", "priority",
					    "jobTypes", NULL };
	const cJSON *it;
	char p[256];
	int r;

	if ((r = want_object(c, obj, path)) < 0)
		return r;
	cJSON_ArrayForEach(it, obj) {
		struct plan_cfg *pl;
		join(p, sizeof(p), path, it->string);
		if (!name_ok(it->string))
			return fail(c, p, "not a valid plan name");
		if ((r = want_object(c, it, p)) < 0 || (r = only_keys(c, it, p, keys)) < 0)
			return r;
		if (!(pl = plan_slot(cfg, it->string)))
			return fail(c, p, "too many plans (at most %d)", CONFIG_MAX_PLANS);
		if ((r = get_int32(c, it, p, "concurrentJobs", 1, 1000000, &pl->concurrent_jobs)) < 0 ||
		    (r = get_int32(c, it, p, "requestsPerMinute", 1, 100000000,
				   &pl->requests_per_minute)) < 0 ||
		    (r = get_int32(c, it, p, "maxJobTimeout", 1, 86400 * 7, &pl->max_job_timeout)) < 0 ||
		    (r = get_int(c, it, p, "maxInputFileSize", 0, (int64_t)1 << 50,
				 &pl->max_input_file_size)) < 0 ||
		    (r = get_int32(c, it, p, "queueLimit", 1, 100000000, &pl->queue_limit)) < 0 ||
		    (r = get_int32(c, it, p, "priority", -1000, 1000, &pl->priority)) < 0 ||
		    (r = get_types(c, it, p, "jobTypes", pl->types, &pl->ntypes, &pl->all_types)) < 0)
			return r;
	}
	return 0;
}

static void provider_free(struct provider_cfg *p)
{
	free(p->kind);
	free(p->url);
	free(p->cancel_url);
	free(p->secret);
	free(p->task);
	cJSON_Delete(p->options);
	memset(p, 0, sizeof(*p));
}

static int load_providers(struct cctx *c, struct config *cfg, const cJSON *arr)
{
	static const char *const keys[] = { "id", "kind", "url", "cancelUrl", "secret", "types",
					    "capacity", "task", "options", NULL };
	const cJSON *it;
	char p[256];
	int r, i = 0;

	if (!cJSON_IsArray(arr))
		return fail(c, "providers", "must be an array");
	for (int j = 0; j < cfg->nproviders; j++)
		provider_free(&cfg->providers[j]);
	cfg->nproviders = 0;
	cJSON_ArrayForEach(it, arr) {
		struct provider_cfg *pv;
		char *id = NULL;
		snprintf(p, sizeof(p), "providers[%d]", i++);
		if (cfg->nproviders >= CONFIG_MAX_PROVIDERS)
			return fail(c, p, "too many providers (at most %d)", CONFIG_MAX_PROVIDERS);
		if ((r = want_object(c, it, p)) < 0 || (r = only_keys(c, it, p, keys)) < 0)
			return r;
		pv = &cfg->providers[cfg->nproviders++];
		memset(pv, 0, sizeof(*pv));
		pv->capacity = 8;
		pv->all_types = 1;
		if ((r = get_str(c, it, p, "id", CONFIG_NAME_MAX - 1, &id)) < 0)
			return r;
		if (!id || !name_ok(id)) {
			free(id);
			return fail(c, p, "id: required, [A-Za-z0-9._-] up to 31 chars");
		}
		snprintf(pv->id, sizeof(pv->id), "%s", id);
		free(id);
		pv->kind = xstrdup("http");
		if ((r = get_str(c, it, p, "kind", 32, &pv->kind)) < 0 ||
		    (r = get_str(c, it, p, "url", 2048, &pv->url)) < 0 ||
		    (r = get_str(c, it, p, "cancelUrl", 2048, &pv->cancel_url)) < 0 ||
		    (r = get_str(c, it, p, "secret", 1024, &pv->secret)) < 0 ||
		    (r = get_str(c, it, p, "task", 256, &pv->task)) < 0 ||
		    (r = get_int32(c, it, p, "capacity", 1, 1000000, &pv->capacity)) < 0 ||
		    (r = get_types(c, it, p, "types", pv->types, &pv->ntypes, &pv->all_types)) < 0)
			return r;
		if (strcmp(pv->kind, "http") != 0 && strcmp(pv->kind, "trigger.dev") != 0)
			return fail(c, p, "kind: must be \"http\" or \"trigger.dev\"");
		if (!pv->url || (strncmp(pv->url, "http://", 7) != 0 && strncmp(pv->url, "https://", 8) != 0))
			return fail(c, p, "url: required, an http:// or https:// URL");
		if (!pv->secret)
			pv->secret = xstrdup("");
		if (strcmp(pv->kind, "trigger.dev") == 0 && !pv->task)
			return fail(c, p, "task: required for kind trigger.dev");
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "options");
		if (o) {
			if (!cJSON_IsObject(o))
				return fail(c, p, "options: must be an object");
			pv->options = cJSON_Duplicate(o, 1);
		}
		for (int j = 0; j + 1 < cfg->nproviders; j++)
			if (strcmp(cfg->providers[j].id, pv->id) == 0)
				return fail(c, p, "id: '%s' is used twice", pv->id);
	}
	return 0;
}

static int url_ok(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* n in [min, max] and every byte in set */
static int chars_ok(const char *s, size_t min, size_t max, const char *set)
{
	size_t n = s ? strlen(s) : 0;
	return s && n >= min && n <= max && strspn(s, set) == n;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define HOST_CHARS LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:[]"

/* The key from the config, else from the environment: printable, no space. */
static int s3_secret(struct cctx *c, char **out, const char *env, const char *key)
{
	const char *e = *out ? NULL : getenv(env);
	if (e)
		*out = xstrdup(e);
	for (const char *p = *out; p && *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return fail(c, key, "must be printable ASCII without spaces");
	if (!*out || !**out || strlen(*out) > 128)
		return fail(c, key, "required for kind s3 (or $%s): 1-128 characters", env);
	return 0;
}

static int load_blobs(struct cctx *c, struct blobs_cfg *b, const cJSON *v)
{
	static const char *const keys[] = { "kind", "endpoint", "bucket", "region", "accessKey",
		"secretKey", "pathStyle", "expiresSeconds", NULL };
	const char *P = "storage.blobs", *ep, *host;
	char *kind = NULL;
	int r;

	if ((r = want_object(c, v, P)) < 0 || (r = only_keys(c, v, P, keys)) < 0 ||
	    (r = get_str(c, v, P, "kind", 16, &kind)) < 0 ||
	    (r = get_str(c, v, P, "endpoint", 300, &b->endpoint)) < 0 ||
	    (r = get_str(c, v, P, "bucket", 63, &b->bucket)) < 0 ||
	    (r = get_str(c, v, P, "region", 32, &b->region)) < 0 ||
	    (r = get_str(c, v, P, "accessKey", 128, &b->access_key)) < 0 ||
	    (r = get_str(c, v, P, "secretKey", 128, &b->secret_key)) < 0 ||
	    (r = get_bool(c, v, P, "pathStyle", &b->path_style)) < 0 ||
	    (r = get_int32(c, v, P, "expiresSeconds", 1, 604800, &b->expires_seconds)) < 0) {
		free(kind);
		return r;
	}
	if (kind && strcmp(kind, "local") != 0 && strcmp(kind, "s3") != 0)
		r = fail(c, "storage.blobs.kind", "must be \"local\" or \"s3\"");
	else if (kind)
		b->kind = strcmp(kind, "s3") == 0 ? BLOBS_S3 : BLOBS_LOCAL;
	free(kind);
	if (r < 0 || b->kind != BLOBS_S3)
		return r;
	/* http[s]://host[:port][/]: S3 URLs are built from it, no path allowed */
	ep = b->endpoint ? b->endpoint : "";
	host = strncmp(ep, "https://", 8) == 0 ? ep + 8 : strncmp(ep, "http://", 7) == 0 ? ep + 7 : NULL;
	if (!host || !*host || *host == '/' ||
	    strspn(host, HOST_CHARS) + (host[strlen(host) - 1] == '/') < strlen(host))
		return fail(c, "storage.blobs.endpoint", "required for kind s3: http[s]://host[:port]");
	if (*host == '[' && !b->path_style)
		return fail(c, "storage.blobs.pathStyle", "must be true with an IPv6 endpoint");
	if (!chars_ok(b->bucket, 3, 63, LOWER_DIGITS ".-_"))
		return fail(c, "storage.blobs.bucket", "required for kind s3: 3-63 of a-z 0-9 . - _");
	if (!chars_ok(b->region, 1, 32, LOWER_DIGITS "-"))
		return fail(c, "storage.blobs.region", "must be 1-32 of a-z 0-9 -");
	if ((r = s3_secret(c, &b->access_key, "JOBRING_S3_ACCESS_KEY", "storage.blobs.accessKey")) == 0)
		r = s3_secret(c, &b->secret_key, "JOBRING_S3_SECRET_KEY", "storage.blobs.secretKey");
	return r;
}

static int load_root(struct cctx *c, struct config *cfg, const cJSON *root)
{
	static const char *const keys[] = { "listen", "providerListen", "publicUrl", "callbackUrl",
		"dataDir", "storage", "adminToken", "signingKey", "dispatch", "sweep", "webhooks",
		"retentionDays", "providers", "jobTypes", "plans", "http", "ringSlots", "logFormat",
		"$comment", NULL };
	static const char *const storage_keys[] = { "mapSizeMB", "sync", "blobs", NULL };
	static const char *const dispatch_keys[] = { "maxAttempts", "backoffMs", "backoffMaxMs",
		"timeoutMs", "unhealthyAfter", "cooldownMs", NULL };
	static const char *const sweep_keys[] = { "intervalSeconds", "stuckSeconds", NULL };
	static const char *const webhook_keys[] = { "timeoutMs", "backoffMs", "backoffMaxMs",
		"maxAttempts", "disableAfterFailures", "allowPrivateTargets", NULL };
	static const char *const http_keys[] = { "maxConnections", "headerTimeoutMs",
		"idleTimeoutMs", "maxBodyBytes", "maxHeaderBytes", NULL };
	const cJSON *v;
	int r;

	if (!cJSON_IsObject(root))
		return fail(c, "(top level)", "must be a JSON object");
	if ((r = only_keys(c, root, "", keys)) < 0)
		return r;
	if ((r = get_addr(c, root, "listen", &cfg->listen)) < 0 ||
	    (r = get_addr(c, root, "providerListen", &cfg->provider_listen)) < 0 ||
	    (r = get_str(c, root, "", "publicUrl", 1024, &cfg->public_url)) < 0 ||
	    (r = get_str(c, root, "", "callbackUrl", 1024, &cfg->callback_url)) < 0 ||
	    (r = get_str(c, root, "", "dataDir", 1024, &cfg->data_dir)) < 0 ||
	    (r = get_str(c, root, "", "adminToken", 256, &cfg->admin_token)) < 0 ||
	    (r = get_str(c, root, "", "signingKey", 256, &cfg->signing_key)) < 0 ||
	    (r = get_int32(c, root, "", "retentionDays", 1, 36500, &cfg->retention_days)) < 0 ||
	    (r = get_int32(c, root, "", "ringSlots", 64, 1 << 20, &cfg->ring_slots)) < 0)
		return r;
	if (!url_ok(cfg->public_url))
		return fail(c, "publicUrl", "must be an http:// or https:// URL");
	if (!url_ok(cfg->callback_url))
		return fail(c, "callbackUrl", "must be an http:// or https:// URL");
	if (!*cfg->data_dir)
		return fail(c, "dataDir", "must not be empty");
	if (cfg->admin_token && strlen(cfg->admin_token) < 16)
		return fail(c, "adminToken", "must be at least 16 characters");
	if (cfg->signing_key && strlen(cfg->signing_key) < 16)
		return fail(c, "signingKey", "must be at least 16 characters");
	if (cfg->ring_slots & (cfg->ring_slots - 1))
		return fail(c, "ringSlots", "must be a power of two");
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "logFormat"))) {
		if (!cJSON_IsString(v) || (strcmp(v->valuestring, "plain") && strcmp(v->valuestring, "json")))
			return fail(c, "logFormat", "must be \"plain\" or \"json\"");
		cfg->log_format = strcmp(v->valuestring, "json") == 0 ? LOGFMT_JSON : LOGFMT_PLAIN;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "storage"))) {
		const cJSON *s;
		if ((r = want_object(c, v, "storage")) < 0 || (r = only_keys(c, v, "storage", storage_keys)) < 0 ||
		    (r = get_int(c, v, "storage", "mapSizeMB", 1, 1 << 24, &cfg->map_size_mb)) < 0)
			return r;
		if ((s = cJSON_GetObjectItemCaseSensitive(v, "sync"))) {
			if (!cJSON_IsString(s) || (strcmp(s->valuestring, "full") && strcmp(s->valuestring, "none")))
				return fail(c, "storage.sync", "must be \"full\" or \"none\"");
			cfg->sync = strcmp(s->valuestring, "none") == 0 ? SYNC_NONE : SYNC_FULL;
		}
		if ((s = cJSON_GetObjectItemCaseSensitive(v, "blobs")) && (r = load_blobs(c, &cfg->blobs, s)) < 0)
			return r;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "dispatch"))) {
		if ((r = want_object(c, v, "dispatch")) < 0 || (r = only_keys(c, v, "dispatch", dispatch_keys)) < 0 ||
		    (r = get_int32(c, v, "dispatch", "maxAttempts", 1, 100, &cfg->dispatch.max_attempts)) < 0 ||
		    (r = get_int32(c, v, "dispatch", "backoffMs", 1, 86400000, &cfg->dispatch.backoff_ms)) < 0 ||
		    (r = get_int32(c, v, "dispatch", "backoffMaxMs", 1, 86400000, &cfg->dispatch.backoff_max_ms)) < 0 ||
		    (r = get_int32(c, v, "dispatch", "timeoutMs", 1, 3600000, &cfg->dispatch.timeout_ms)) < 0 ||
		    (r = get_int32(c, v, "dispatch", "unhealthyAfter", 1, 1000, &cfg->dispatch.unhealthy_after)) < 0 ||
		    (r = get_int32(c, v, "dispatch", "cooldownMs", 1, 86400000, &cfg->dispatch.cooldown_ms)) < 0)
			return r;
		if (cfg->dispatch.backoff_max_ms < cfg->dispatch.backoff_ms)
			return fail(c, "dispatch.backoffMaxMs", "must be >= dispatch.backoffMs");
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "sweep"))) {
		if ((r = want_object(c, v, "sweep")) < 0 || (r = only_keys(c, v, "sweep", sweep_keys)) < 0 ||
		    (r = get_int32(c, v, "sweep", "intervalSeconds", 1, 86400, &cfg->sweep.interval_seconds)) < 0 ||
		    (r = get_int32(c, v, "sweep", "stuckSeconds", 1, 86400 * 7, &cfg->sweep.stuck_seconds)) < 0)
			return r;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "webhooks"))) {
		if ((r = want_object(c, v, "webhooks")) < 0 || (r = only_keys(c, v, "webhooks", webhook_keys)) < 0 ||
		    (r = get_int32(c, v, "webhooks", "timeoutMs", 1, 600000, &cfg->webhooks.timeout_ms)) < 0 ||
		    (r = get_int32(c, v, "webhooks", "backoffMs", 1, 86400000, &cfg->webhooks.backoff_ms)) < 0 ||
		    (r = get_int32(c, v, "webhooks", "backoffMaxMs", 1, 86400000, &cfg->webhooks.backoff_max_ms)) < 0 ||
		    (r = get_int32(c, v, "webhooks", "maxAttempts", 1, 100, &cfg->webhooks.max_attempts)) < 0 ||
		    (r = get_int32(c, v, "webhooks", "disableAfterFailures", 1, 10000,
				   &cfg->webhooks.disable_after_failures)) < 0 ||
		    (r = get_bool(c, v, "webhooks", "allowPrivateTargets", &cfg->webhooks.allow_private_targets)) < 0)
			return r;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "http"))) {
		if ((r = want_object(c, v, "http")) < 0 || (r = only_keys(c, v, "http", http_keys)) < 0 ||
		    (r = get_int32(c, v, "http", "maxConnections", 1, 1000000, &cfg->http.max_connections)) < 0 ||
		    (r = get_int32(c, v, "http", "headerTimeoutMs", 10, 3600000, &cfg->http.header_timeout_ms)) < 0 ||
		    (r = get_int32(c, v, "http", "idleTimeoutMs", 10, 86400000, &cfg->http.idle_timeout_ms)) < 0 ||
		    (r = get_int32(c, v, "http", "maxBodyBytes", 1024, 1 << 30, &cfg->http.max_body_bytes)) < 0 ||
		    (r = get_int32(c, v, "http", "maxHeaderBytes", 1024, 1 << 20, &cfg->http.max_header_bytes)) < 0)
			return r;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "providers")) && (r = load_providers(c, cfg, v)) < 0)
		return r;
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "jobTypes")) && (r = load_types(c, cfg, v, "jobTypes")) < 0)
		return r;
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "plans")) && (r = load_plans(c, cfg, v, "plans")) < 0)
		return r;
	return 0;
}

int config_load_text(struct config *cfg, const char *json, char *err, size_t errsz)
{
	struct cctx c = { err, errsz };
	const char *end = NULL;
	cJSON *root;
	int r;

	set_defaults(cfg);
	if (!json)
		return 0;
	root = cJSON_ParseWithOpts(json, &end, 1);
	if (!root) {
		size_t off = end ? (size_t)(end - json) : 0;
		int line = 1;
		for (size_t i = 0; i < off && json[i]; i++)
			line += json[i] == '\n';
		snprintf(err, errsz, "config: (file): not valid JSON near line %d", line);
		config_free(cfg);
		return -EINVAL;
	}
	r = load_root(&c, cfg, root);
	cJSON_Delete(root);
	if (r < 0)
		config_free(cfg);
	return r;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errsz)
{
	char *text = NULL;
	int r;

	if (!path) {
		set_defaults(cfg);
		return 0;
	}
	if ((r = read_file(path, &text, NULL)) < 0) {
		snprintf(err, errsz, "config: %s: cannot read: %s", path, strerror(-r));
		return r == -ENOENT ? -EINVAL : -EINVAL;
	}
	r = config_load_text(cfg, text, err, errsz);
	free(text);
	if (r == 0)
		cfg->source = xstrdup(path);
	return r;
}

void config_free(struct config *cfg)
{
	free(cfg->public_url);
	free(cfg->callback_url);
	free(cfg->data_dir);
	free(cfg->admin_token);
	free(cfg->signing_key);
	free(cfg->source);
	free(cfg->blobs.endpoint);
	free(cfg->blobs.bucket);
	free(cfg->blobs.region);
	free(cfg->blobs.access_key);
	free(cfg->blobs.secret_key);
	for (int i = 0; i < cfg->nproviders; i++)
		provider_free(&cfg->providers[i]);
	for (int i = 0; i < cfg->ntypes; i++) {
		free(cfg->types[i].summary);
		free(cfg->types[i].tag);
		cJSON_Delete(cfg->types[i].schema);
	}
	memset(cfg, 0, sizeof(*cfg));
}

const struct jobtype_cfg *config_type(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->ntypes; i++)
		if (strcmp(cfg->types[i].name, name) == 0)
			return &cfg->types[i];
	return NULL;
}

const struct plan_cfg *config_plan(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nplans; i++)
		if (strcmp(cfg->plans[i].name, name) == 0)
			return &cfg->plans[i];
	return NULL;
}

static int in_list(const char (*types)[CONFIG_NAME_MAX], int n, int all, const char *type)
{
	if (all)
		return 1;
	for (int i = 0; i < n; i++)
		if (strcmp(types[i], type) == 0)
			return 1;
	return 0;
}

int config_plan_allows(const struct plan_cfg *p, const char *type)
{
	return in_list((const char (*)[CONFIG_NAME_MAX])p->types, p->ntypes, p->all_types, type);
}

int config_provider_serves(const struct provider_cfg *p, const char *type)
{
	return in_list((const char (*)[CONFIG_NAME_MAX])p->types, p->ntypes, p->all_types, type);
}

int64_t config_estimate(const struct jobtype_cfg *t)
{
	return t->price.base + t->price.per_second * t->price.estimate_seconds;
}

int64_t config_price(const struct jobtype_cfg *t, int64_t compute_ms, int64_t hold)
{
	int64_t p;

	if (compute_ms < 0)
		compute_ms = 0;
	if (compute_ms > (int64_t)86400000 * 365)
		compute_ms = (int64_t)86400000 * 365;
	p = t->price.base + (t->price.per_second * compute_ms + 999) / 1000;
	return p < hold ? p : hold;
}
