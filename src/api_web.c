/* api_web.c - the two documents intake serves from memory, both public:
 *
 *   GET /dashboard      the single-page dashboard (web/dashboard.html); it
 *                       asks for an API key itself and keeps it in the
 *                       browser's sessionStorage
 *   GET /openapi.json   the OpenAPI 3.1 document of this API (docs/openapi.json)
 *
 * Both are compiled into the binary (web/meson.build runs scripts/embed-web),
 * so a running server always serves the page and the document of its own
 * build. Answers carry a strong ETag and are revalidated on every use
 * (Cache-Control: no-cache), so an upgrade shows at once and an unchanged
 * page costs a 304. The page's Content-Security-Policy allows exactly its
 * own inline script and style (their hashes are computed at build time) and
 * connections to this origin only. */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

/* Defined in the generated web_assets.c (see scripts/embed-web). */
extern const unsigned char web_dashboard[];
extern const size_t web_dashboard_len;
extern const char web_dashboard_etag[];
extern const char web_dashboard_script_src[];
extern const char web_dashboard_style_src[];
extern const unsigned char web_openapi[];
extern const size_t web_openapi_len;
extern const char web_openapi_etag[];

#define HEADERS_MAX 2048

/* Does the If-None-Match header name etag (or is it "*")? A weak
 * comparison, as RFC 9110 asks for If-None-Match: W/"x" matches "x". */
static int not_modified(struct httpd_req *req, const char *etag)
{
	size_t n, en = strlen(etag);
	const char *v = httpd_header(req, "If-None-Match", &n);

	if (!v)
		return 0;
	while (n) {
		while (n && (*v == ' ' || *v == '\t' || *v == ',')) {
			v++;
			n--;
		}
		if (n >= 1 && *v == '*')
			return 1;
		if (n >= 2 && v[0] == 'W' && v[1] == '/') {
			v += 2;
			n -= 2;
		}
		if (n >= en && memcmp(v, etag, en) == 0 && (n == en || v[en] == ',' || v[en] == ' ' ||
							    v[en] == '\t'))
			return 1;
		while (n && *v != ',') {
			v++;
			n--;
		}
	}
	return 0;
}

static void serve(struct httpd_req *req, const char *type, const char *etag,
		  const char *headers, const unsigned char *body, size_t len)
{
	char extra[HEADERS_MAX];
	int n = snprintf(extra, sizeof(extra), "ETag: %s\r\nCache-Control: no-cache\r\n%s", etag,
			 headers);

	if (n < 0 || (size_t)n >= sizeof(extra)) {
		api_err(req, 500, "INTERNAL_ERROR", "The page headers do not fit", NULL);
		return;
	}
	if (not_modified(req, etag))
		httpd_respond(req, 304, NULL, extra, NULL, 0);
	else
		httpd_respond(req, 200, type, extra, body, len);
}

void api_web_route(struct api *api, struct httpd_req *req, struct route *r)
{
	char csp[HEADERS_MAX];
	(void)api;

	if (!r->is_get) {
		api_err(req, 405, "METHOD_NOT_ALLOWED", "Use GET", NULL);
		return;
	}
	if (seg_is(r, 0, "openapi.json")) {
		serve(req, "application/json", web_openapi_etag,
		      "Access-Control-Allow-Origin: *\r\nX-Content-Type-Options: nosniff\r\n",
		      web_openapi, web_openapi_len);
		return;
	}
	snprintf(csp, sizeof(csp),
		 "Content-Security-Policy: default-src 'none'; script-src %s; style-src %s; "
		 "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
		 "frame-ancestors 'none'\r\n"
		 "X-Content-Type-Options: nosniff\r\n"
		 "X-Frame-Options: DENY\r\n"
		 "Referrer-Policy: no-referrer\r\n",
		 web_dashboard_script_src, web_dashboard_style_src);
	serve(req, "text/html; charset=utf-8", web_dashboard_etag, csp, web_dashboard,
	      web_dashboard_len);
}
