/* cli_http.c - the client's HTTP requests (libcurl's easy interface: a CLI
 * may block), error reports that say what to do, and the printing helpers
 * the commands share (tables, ages, money). */
#include "cli_int.h"
#include "jobring/buf.h"
#include "jobring/util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 60000L
#define USER_AGENT "jobring-cli/0.1.0"

struct acc {
	struct buf b;
	int over;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct acc *a = ud;
	if (buf_append(&a->b, p, sz * n) < 0) {
		a->over = 1;
		return 0;	/* ends the transfer */
	}
	return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct cli_resp *r = ud;
	size_t len = sz * n;
	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		long v = strtol(p + 12, NULL, 10);
		r->retry_after = v > 0 && v < 3600 ? v : 0;
	}
	return len;
}

static void lower_first(char *s)
{
	if (s[0] && isupper((unsigned char)s[0]) && !isupper((unsigned char)s[1]))
		s[0] = (char)tolower((unsigned char)s[0]);
}

/* The scheme://host[:port] of url, for messages. */
static void origin(char *out, size_t outsz, const char *url)
{
	const char *p = strstr(url, "://");
	size_t n = p ? strcspn(p + 3, "/?#") + (size_t)(p + 3 - url) : strlen(url);
	snprintf(out, outsz, "%.*s", (int)MIN(n, 300), url);
}

static void transport_error(struct cli_resp *r, CURL *h, CURLcode rc, const char *url,
			    const char *errbuf, int over)
{
	char where[320], why[128];
	long oserr = 0;

	origin(where, sizeof(where), url);
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
	if (over) {
		snprintf(r->err, sizeof(r->err), "the answer from %s is larger than %u MiB", where,
			 CLI_MAX_RESPONSE >> 20);
		return;
	}
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		snprintf(why, sizeof(why), "%s", oserr ? strerror((int)oserr) : "cannot connect");
		lower_first(why);
		snprintf(r->err, sizeof(r->err), "cannot reach %s: %s%s", where, why,
			 oserr == ECONNREFUSED ? " (is `jobring serve` running? set JOBRING_URL "
						 "or pass --url)" : "");
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(r->err, sizeof(r->err), "cannot reach %s: unknown host (check JOBRING_URL "
			 "or --url)", where);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(r->err, sizeof(r->err), "no answer from %s in time (%s)", where,
			 errbuf[0] ? errbuf : "timed out");
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		snprintf(r->err, sizeof(r->err), "%s closed the connection without an answer (is "
			 "it a jobring server?)", where);
		break;
	default:
		snprintf(r->err, sizeof(r->err), "cannot talk to %s: %s", where,
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
}

static void setup(CURL *h, const char *url, char *errbuf, struct acc *acc, struct cli_resp *r)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, acc);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	buf_init(&acc->b);
	buf_set_limit(&acc->b, CLI_MAX_RESPONSE);
	acc->over = 0;
	errbuf[0] = '\0';
}

/* Run h and fill r from it. 0 on 2xx. */
static int finish(CURL *h, const char *url, char *errbuf, struct acc *acc, struct cli_resp *r)
{
	CURLcode rc = curl_easy_perform(h);

	if (rc != CURLE_OK) {
		transport_error(r, h, rc, url, errbuf, acc->over);
		buf_free(&acc->b);
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	r->len = acc->b.len;
	r->body = acc->b.data ? acc->b.data : xstrdup("");
	if (r->len)
		r->json = cJSON_ParseWithLength(r->body, r->len);
	return r->status >= 200 && r->status < 300 ? 0 : -1;
}

int cli_request(struct cli *c, const char *method, const char *path, const cJSON *body,
		enum cli_auth auth, struct cli_resp *r)
{
	char url[4096], errbuf[CURL_ERROR_SIZE], hdr[1200];
	struct curl_slist *hs = NULL;
	struct acc acc;
	char *data = NULL;
	CURL *h;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, path) >= sizeof(url)) {
		snprintf(r->err, sizeof(r->err), "the request URL is too long");
		return -1;
	}
	if (!(h = curl_easy_init())) {
		snprintf(r->err, sizeof(r->err), "cannot start libcurl");
		return -1;
	}
	setup(h, url, errbuf, &acc, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
	hs = curl_slist_append(hs, "Accept: application/json");
	hs = curl_slist_append(hs, "X-Rendobar-Client: " USER_AGENT);
	hs = curl_slist_append(hs, "Expect:");
	const char *tok = auth == CLI_AUTH_ADMIN ? c->admin : auth != CLI_AUTH_NONE ? c->key : NULL;
	if (tok) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %.1000s", tok);
		hs = curl_slist_append(hs, hdr);
	}
	if (body) {
		data = cJSON_PrintUnformatted(body);
		hs = curl_slist_append(hs, "Content-Type: application/json");
	}
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, data ? data : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(data ? strlen(data) : 0));
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
	rc = finish(h, url, errbuf, &acc, r);
	curl_slist_free_all(hs);
	curl_easy_cleanup(h);
	free(data);
	return rc;
}

int cli_put_file(struct cli *c, const char *url, const char *path, const char *ctype,
		 struct cli_resp *r)
{
	char errbuf[CURL_ERROR_SIZE], hdr[200];
	struct curl_slist *hs = NULL;
	struct acc acc;
	struct stat st;
	FILE *f;
	CURL *h;
	int rc;

	(void)c;
	memset(r, 0, sizeof(*r));
	if (!(f = fopen(path, "rb")) || fstat(fileno(f), &st) < 0) {
		snprintf(r->err, sizeof(r->err), "cannot read %s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	if (!(h = curl_easy_init())) {
		fclose(f);
		snprintf(r->err, sizeof(r->err), "cannot start libcurl");
		return -1;
	}
	setup(h, url, errbuf, &acc, r);
	/* no total timeout for a big file; give up on a stalled one */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READDATA, f);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
	snprintf(hdr, sizeof(hdr), "Content-Type: %.150s", ctype);
	hs = curl_slist_append(hs, hdr);
	hs = curl_slist_append(hs, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
	rc = finish(h, url, errbuf, &acc, r);
	curl_slist_free_all(hs);
	curl_easy_cleanup(h);
	fclose(f);
	return rc;
}

void cli_resp_free(struct cli_resp *r)
{
	cJSON_Delete(r->json);
	free(r->body);
	r->json = NULL;
	r->body = NULL;
}

const cJSON *cli_data(const struct cli_resp *r)
{
	return cJSON_GetObjectItemCaseSensitive(r->json, "data");
}

void cli_print_raw(const struct cli_resp *r)
{
	if (r->body && r->len) {
		fwrite(r->body, 1, r->len, stdout);
		if (r->body[r->len - 1] != '\n')
			fputc('\n', stdout);
	}
}

static void print_details(const cJSON *d)
{
	const cJSON *it;

	if (cJSON_IsArray(d)) {
		cJSON_ArrayForEach(it, d) {
			const cJSON *path = cJSON_GetObjectItemCaseSensitive(it, "path");
			const char *msg = cli_js(it, "message", NULL);
			char p[256] = "";
			const cJSON *seg;
			if (cJSON_IsArray(path)) {
				cJSON_ArrayForEach(seg, path) {
					size_t l = strlen(p);
					if (cJSON_IsString(seg))
						snprintf(p + l, sizeof(p) - l, "%s%s", l ? "." : "",
							 seg->valuestring);
					else if (cJSON_IsNumber(seg))
						snprintf(p + l, sizeof(p) - l, "[%d]", seg->valueint);
				}
			} else if (cJSON_IsString(path)) {
				snprintf(p, sizeof(p), "%s", path->valuestring);
			}
			if (msg)
				fprintf(stderr, "  %s%s%s\n", p, p[0] ? ": " : "", msg);
			else {
				char *s = cJSON_PrintUnformatted(it);
				fprintf(stderr, "  %s\n", s);
				free(s);
			}
		}
	} else if (cJSON_IsObject(d)) {
		cJSON_ArrayForEach(it, d) {
			char *s = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
			fprintf(stderr, "  %s: %s\n", it->string, s ? s : it->valuestring);
			free(s);
		}
	} else if (d && !cJSON_IsNull(d)) {
		char *s = cJSON_PrintUnformatted(d);
		fprintf(stderr, "  %s\n", s);
		free(s);
	}
}

int cli_report(const struct cli *c, const struct cli_resp *r)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
	const char *name = c->cmd->name;

	if (!r->status) {
		fprintf(stderr, "jobring %s: %s\n", name, r->err);
		return CLI_FAIL;
	}
	if (c->json)
		cli_print_raw(r);
	if (cJSON_IsObject(e)) {
		const char *code = cli_js(e, "code", "ERROR");
		fprintf(stderr, "jobring %s: %s: %s\n", name, code, cli_js(e, "message", "(no message)"));
		print_details(cJSON_GetObjectItemCaseSensitive(e, "details"));
		if (r->status == 401)
			fprintf(stderr, "  (%s)\n", c->cmd->auth == CLI_AUTH_ADMIN
				? "check the admin token: JOBRING_ADMIN_TOKEN or --admin-token"
				: "check the API key: JOBRING_API_KEY or --key");
		else if (r->status == 429 && r->retry_after)
			fprintf(stderr, "  (retry in %ld s)\n", r->retry_after);
		else if (r->status == 404 && !strcmp(code, "NOT_FOUND") &&
			 !strcmp(cli_js(e, "message", ""), "Route not found"))
			fprintf(stderr, "  (this server does not have that endpoint: is %s a jobring "
				"server of this version?)\n", c->base);
	} else {
		fprintf(stderr, "jobring %s: HTTP %ld from %s%s%.200s\n", name, r->status, c->base,
			r->len ? ": " : "", r->body ? r->body : "");
	}
	return CLI_FAIL;
}

int cli_call(struct cli *c, const char *method, const char *path, const cJSON *body,
	     struct cli_resp *r)
{
	if (cli_request(c, method, path, body, c->cmd->auth, r) < 0) {
		cli_report(c, r);
		cli_resp_free(r);
		return CLI_FAIL;
	}
	if (c->json)
		cli_print_raw(r);
	return 0;
}

/* ---- printing ----------------------------------------------------------------------- */

const char *cli_js(const cJSON *o, const char *key, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : dflt;
}

double cli_jn(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

void cli_age(char *out, size_t outsz, int64_t then_ms)
{
	int64_t s = (now_ms() - then_ms) / 1000;

	if (!then_ms)
		snprintf(out, outsz, "-");
	else if (s < 0)
		snprintf(out, outsz, "0s");
	else if (s < 120)
		snprintf(out, outsz, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(out, outsz, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(out, outsz, "%lldh", (long long)(s / 3600));
	else
		snprintf(out, outsz, "%lldd", (long long)(s / 86400));
}

void cli_money(char *out, size_t outsz, const cJSON *m)
{
	const char *f = cli_js(m, "formatted", NULL);

	if (f)
		snprintf(out, outsz, "%s", f);
	else if (cJSON_IsNumber(m))
		money_format(out, outsz, (int64_t)m->valuedouble);
	else if (cJSON_IsObject(m) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(m, "amount")))
		money_format(out, outsz, (int64_t)cli_jn(m, "amount", 0));
	else
		snprintf(out, outsz, "-");
}

void cli_time(char *out, size_t outsz, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms || !localtime_r(&t, &tm) || !strftime(out, outsz, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, outsz, "-");
}

void cli_qenc(char *out, size_t outsz, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 < outsz; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

void cli_table_init(struct cli_table *t, int ncol, ...)
{
	va_list ap;

	memset(t, 0, sizeof(*t));
	t->ncol = MIN(ncol, (int)ARRAY_SIZE(t->head));
	va_start(ap, ncol);
	for (int i = 0; i < t->ncol; i++)
		t->head[i] = va_arg(ap, const char *);
	va_end(ap);
}

void cli_table_row(struct cli_table *t, ...)
{
	va_list ap;

	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 32;
		t->cells = xrealloc(t->cells, (size_t)t->cap * (size_t)t->ncol * sizeof(char *));
	}
	va_start(ap, t);
	for (int i = 0; i < t->ncol; i++) {
		const char *s = va_arg(ap, const char *);
		char *d = xstrdup(s && *s ? s : "-");
		for (char *p = d; *p; p++)	/* one row per line */
			if (*p == '\n' || *p == '\r' || *p == '\t')
				*p = ' ';
		t->cells[t->nrows * t->ncol + i] = d;
	}
	va_end(ap);
	t->nrows++;
}

static size_t width(const char *s)
{
	return utf8_codepoints(s, strlen(s));
}

void cli_table_print(struct cli_table *t, FILE *out)
{
	size_t w[8] = { 0 };

	for (int i = 0; i < t->ncol; i++)
		w[i] = width(t->head[i]);
	for (int r = 0; r < t->nrows; r++)
		for (int i = 0; i < t->ncol; i++)
			w[i] = MAX(w[i], width(t->cells[r * t->ncol + i]));
	for (int r = -1; out && r < t->nrows; r++) {
		for (int i = 0; i < t->ncol; i++) {
			const char *s = r < 0 ? t->head[i] : t->cells[r * t->ncol + i];
			if (i + 1 == t->ncol)
				fprintf(out, "%s\n", s);
			else
				fprintf(out, "%s%*s", s, (int)(w[i] - width(s) + 2), "");
		}
	}
	for (int i = 0; i < t->nrows * t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

void cli_kvs_add(struct cli_kvs *kv, const char *k, const char *fmt, ...)
{
	va_list ap;
	char v[4096];

	if (kv->n == (int)ARRAY_SIZE(kv->k))
		return;
	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	kv->k[kv->n] = k;
	kv->v[kv->n++] = xstrdup(v[0] ? v : "-");
}

void cli_kvs_print(struct cli_kvs *kv, FILE *out)
{
	size_t w = 0;

	for (int i = 0; i < kv->n; i++)
		w = MAX(w, strlen(kv->k[i]));
	for (int i = 0; i < kv->n; i++) {
		fprintf(out, "%-*s  %s\n", (int)w, kv->k[i], kv->v[i]);
		free(kv->v[i]);
	}
	kv->n = 0;
}

void cli_trunc(char *s, size_t max)
{
	size_t cp = 0, i, cut = 0;

	for (i = 0; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) == 0x80)
			continue;
		if (cp == max - 3)
			cut = i;
		if (++cp > max) {
			memcpy(s + cut, "...", 4);
			return;
		}
	}
}
