/* report.c - a provider report: parse, check, bound. */
#include "jobring/report.h"
#include "jobring/buf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OUTPUT_BYTES (256 * 1024)
#define MAX_OUTPUT_FILES 100

static int code_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 40)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static void cut(char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

static int output_ok(const cJSON *o)
{
	const cJSON *files, *f;

	if (!o || cJSON_IsNull(o))
		return 1;
	if (!cJSON_IsObject(o))
		return 0;
	files = cJSON_GetObjectItemCaseSensitive(o, "files");
	if (files && !cJSON_IsArray(files))
		return 0;
	if (cJSON_GetArraySize(files) > MAX_OUTPUT_FILES)
		return 0;
	cJSON_ArrayForEach(f, files) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "path");
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(f, "size");
		if (!cJSON_IsString(p) || !*p->valuestring || strlen(p->valuestring) > 200 ||
		    strchr(p->valuestring, '/') || strchr(p->valuestring, '\\') || p->valuestring[0] == '.')
			return 0;
		if (sz && (!cJSON_IsNumber(sz) || sz->valuedouble < 0))
			return 0;
	}
	return 1;
}

static int64_t compute_ms(const cJSON *root)
{
	const cJSON *cm = cJSON_GetObjectItemCaseSensitive(root, "computeMs");
	if (!cJSON_IsNumber(cm) || !(cm->valuedouble > 0))
		return 0;
	return cm->valuedouble > 86400e3 * 366 ? (int64_t)(86400e3 * 366) : (int64_t)cm->valuedouble;
}

int report_parse(const char *body, size_t n, struct report *r, const char **why)
{
	const cJSON *ev, *att;

	memset(r, 0, sizeof(*r));
	if (!body || !utf8_valid(body, n) || !(r->root = cJSON_ParseWithLength(body, n)) ||
	    !cJSON_IsObject(r->root)) {
		*why = "the body must be a JSON object";
		goto bad;
	}
	ev = cJSON_GetObjectItemCaseSensitive(r->root, "event");
	att = cJSON_GetObjectItemCaseSensitive(r->root, "attempt");
	if (!cJSON_IsString(ev) || !cJSON_IsNumber(att) || !(att->valuedouble >= 1) ||
	    att->valuedouble > 1e9 || att->valuedouble != floor(att->valuedouble)) {
		*why = "event (string) and attempt (integer >= 1) are required";
		goto bad;
	}
	r->attempt = (uint32_t)att->valuedouble;
	if (!strcmp(ev->valuestring, "running")) {
		r->event = REPORT_RUNNING;
	} else if (!strcmp(ev->valuestring, "progress")) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(r->root, "progress");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(r->root, "step");
		double v = cJSON_IsNumber(p) ? p->valuedouble : 0;
		r->event = REPORT_PROGRESS;
		r->progress = (uint32_t)(!(v > 0) ? 0 : v >= 1 ? 1000000 : v * 1e6);
		r->step = cJSON_IsString(s) && strlen(s->valuestring) <= 128 ? s->valuestring : NULL;
	} else if (!strcmp(ev->valuestring, "complete")) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(r->root, "output");
		if (!output_ok(o)) {
			*why = "output.files[] need bare file names in path and sizes >= 0";
			goto bad;
		}
		if (o && !cJSON_IsNull(o)) {
			r->output = cJSON_PrintUnformatted(o);
			if (!r->output || strlen(r->output) > MAX_OUTPUT_BYTES) {
				*why = "output is too large (256 KiB at most)";
				goto bad;
			}
		}
		r->event = REPORT_COMPLETE;
		r->compute_ms = compute_ms(r->root);
	} else if (!strcmp(ev->valuestring, "failed")) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->root, "error");
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
		cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
		cJSON *det = cJSON_GetObjectItemCaseSensitive(e, "detail");
		r->event = REPORT_FAILED;
		r->code = cJSON_IsString(c) && code_ok(c->valuestring) ? c->valuestring : "PROVIDER_ERROR";
		if (cJSON_IsString(msg)) {
			cut(msg->valuestring, 1000);
			r->message = msg->valuestring;
		}
		if (cJSON_IsString(det)) {
			cut(det->valuestring, 4096);
			r->detail = det->valuestring;
		}
		r->compute_ms = compute_ms(r->root);
	} else if (!strcmp(ev->valuestring, "log")) {
		cJSON *msg = cJSON_GetObjectItemCaseSensitive(r->root, "message");
		const cJSON *lvl = cJSON_GetObjectItemCaseSensitive(r->root, "level");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(r->root, "step");
		r->event = REPORT_LOG;
		if (cJSON_IsString(msg)) {
			cut(msg->valuestring, 4096);
			r->message = msg->valuestring;
		}
		r->level = "info";
		if (cJSON_IsString(lvl) && (!strcmp(lvl->valuestring, "warn") ||
					    !strcmp(lvl->valuestring, "error") ||
					    !strcmp(lvl->valuestring, "debug")))
			r->level = lvl->valuestring;
		r->step = cJSON_IsString(s) && strlen(s->valuestring) <= 128 ? s->valuestring : NULL;
	} else {
		*why = "event must be running, progress, complete, failed or log";
		goto bad;
	}
	return 0;
bad:
	report_free(r);
	return -EINVAL;
}

void report_free(struct report *r)
{
	cJSON_Delete(r->root);
	free(r->output);
	memset(r, 0, sizeof(*r));
}
