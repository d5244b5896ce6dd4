/* outbox_send.c - what one attempt of a delivery looks like on the wire:
 * the target policy (which URLs may receive webhooks: SSRF) and the
 * request itself (URL, headers, both signature schemes, the stored body).
 * See outbox.h. */
#include "jobring/netaddr.h"
#include "jobring/outbox.h"
#include "jobring/util.h"
#include "jobring/whsign.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- URLs --------------------------------------------------------------------- */

/* 1 if the host's last label is a number (decimal, 0x hex or octal), which
 * makes the whole host an IPv4 address to URL parsers and to curl. */
static int last_label_numeric(const char *host)
{
	const char *l = strrchr(host, '.');
	l = l ? l + 1 : host;
	if (l[0] == '0' && (l[1] == 'x' || l[1] == 'X'))
		return strspn(l + 2, "0123456789abcdefABCDEF") == strlen(l + 2);
	return *l && strspn(l, "0123456789") == strlen(l);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

#define BAD(msg) do { snprintf(why, whysz, "%s", msg); return -EINVAL; } while (0)

int wh_url_check(const char *url, int allow_private, char *why, size_t whysz)
{
	char host[256];
	const char *p, *a, *end;
	size_t n = strnlen(url, WH_URL_MAX + 1), hn;

	if (n == 0 || n > WH_URL_MAX)
		BAD("must be a URL of at most 2048 bytes");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			BAD("must be printable ASCII without spaces");
	if (strncasecmp(url, "https://", 8) == 0)
		a = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0 && allow_private)
		a = url + 7;
	else
		BAD(allow_private ? "must be an http or https URL" : "must be an https URL");
	end = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(end - a)))
		BAD("must not carry user credentials");
	if (*a == '[') {
		unsigned char v6[16];
		const char *rb = memchr(a, ']', (size_t)(end - a));
		if (!rb || (hn = (size_t)(rb - a - 1)) == 0 || hn >= sizeof(host))
			BAD("has a malformed IPv6 host");
		memcpy(host, a + 1, hn);
		host[hn] = '\0';
		if (inet_pton(AF_INET6, host, v6) != 1)
			BAD("has a malformed IPv6 host");
		if (!allow_private && netaddr_v6_reserved(v6))
			BAD("points to a private, loopback or reserved address");
		p = rb + 1;
	} else {
		p = a + strcspn(a, ":/?#");
		if ((hn = (size_t)(p - a)) == 0 || hn >= sizeof(host))
			BAD("has no host");
		for (size_t i = 0; i < hn; i++) {
			char c = a[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
				BAD("has a malformed host");
			host[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		host[hn] = '\0';
		if (hn > 1 && host[hn - 1] == '.')
			host[--hn] = '\0';
		if (!allow_private) {
			struct in_addr in;
			if (!strcmp(host, "localhost") || ends_with(host, ".localhost") ||
			    ends_with(host, ".local") || ends_with(host, ".internal") ||
			    !strcmp(host, "local") || !strcmp(host, "internal"))
				BAD("points to a local name");
			/* curl accepts every inet_aton spelling (0x7f.1, 2130706433) */
			if (last_label_numeric(host)) {
				if (!inet_aton(host, &in))
					BAD("has a malformed IPv4 host");
				if (netaddr_v4_reserved(ntohl(in.s_addr)))
					BAD("points to a private, loopback or reserved address");
			}
		}
	}
	if (*p == ':') {
		int64_t port = 0;
		const char *q = ++p;
		while (p < end && *p >= '0' && *p <= '9' && port <= 65535)
			port = port * 10 + (*p++ - '0');
		if (p != end || q == p || port < 1 || port > 65535)
			BAD("has a bad port");
	} else if (p != end) {
		BAD("has a malformed host");
	}
	return 0;
}

#undef BAD

/* ---- the request of an attempt ---------------------------------------------------- */

void wh_request_init(struct wh_request *rq)
{
	memset(rq, 0, sizeof(*rq));
	buf_init(&rq->url);
	buf_init(&rq->body);
	buf_init(&rq->hdr);
}

void wh_request_free(struct wh_request *rq)
{
	buf_free(&rq->url);
	buf_free(&rq->body);
	buf_free(&rq->hdr);
}

static void hdr_add(struct wh_request *rq, const char *name, const char *value)
{
	buf_printf(&rq->hdr, "%s: %s", name, value);
	buf_putc(&rq->hdr, '\0');
	rq->nh++;
}

static int reserved_header(const char *name)
{
	static const char *const r[] = { "content-type", "content-length", "host", "expect",
					 "transfer-encoding", "connection", "webhook-id",
					 "webhook-timestamp", "webhook-signature" };
	if (strncasecmp(name, "x-rendobar-", 11) == 0)
		return 1;
	for (size_t i = 0; i < ARRAY_SIZE(r); i++)
		if (strcasecmp(name, r[i]) == 0)
			return 1;
	return 0;
}

#define REFUSE(msg) do { snprintf(rq->why, sizeof(rq->why), "%s", msg); r = -EPERM; goto out; } while (0)

int outbox_request(struct outbox *ob, MDB_txn *t, const char *id, int64_t now,
		   struct wh_request *rq)
{
	struct wh_delivery d;
	struct wh_endpoint e;
	const char *body, *cbj, *sec = NULL, *prev = NULL;
	char cbsec[WH_SECRET_MAX], num[24], ts[24], sig[WHSIGN_RENDOBAR_LEN + 1];
	char std[2 * (WHSIGN_STD_LEN + 1)];
	cJSON *cb = NULL;
	const cJSON *hs = NULL, *h;
	unsigned ncb = 0;
	int r;

	buf_reset(&rq->url);
	buf_reset(&rq->body);
	buf_reset(&rq->hdr);
	rq->nh = 0;
	rq->why[0] = '\0';
	if ((r = wh_delivery_get(ob->s, t, id, &d, &body, &cbj)) < 0)
		return r;
	if (d.status != WH_PENDING || d.next_at > now + WH_EARLY_MS)
		return -ESTALE;
	rq->attempt = d.attempts + 1;
	snprintf(rq->id, sizeof(rq->id), "%s", d.id);
	snprintf(rq->endpoint, sizeof(rq->endpoint), "%s", d.endpoint);
	if (!d.callback) {
		if ((r = wh_endpoint_get(ob->s, t, d.endpoint, &e)) == -ENOENT)
			REFUSE("endpoint deleted");
		if (r < 0)
			return r;
		if (!e.active)
			REFUSE("endpoint disabled");
		buf_puts(&rq->url, e.url);
		sec = e.secret;
		prev = e.prev_secret[0] && now < e.prev_until ? e.prev_secret : NULL;
	} else {
		const cJSON *u;
		cb = cJSON_ParseWithLength(cbj, d.cb_len);
		u = cJSON_GetObjectItemCaseSensitive(cb, "url");
		if (!cJSON_IsString(u))
			REFUSE("callback without a URL");
		buf_puts(&rq->url, u->valuestring);
		hs = cJSON_GetObjectItemCaseSensitive(cb, "headers");
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cb, "verify"))) {
			if ((r = outbox_callback_secret(ob->s, t, d.org, 0, cbsec)) < 0)
				REFUSE("no callback secret");
			sec = cbsec;
		}
	}
	if (wh_url_check(buf_cstr(&rq->url), ob->cfg->webhooks.allow_private_targets, rq->why,
			 sizeof(rq->why)) < 0) {
		char m[96];
		snprintf(m, sizeof(m), "url %.80s", rq->why);
		REFUSE(m);
	}
	buf_append(&rq->body, body, d.body_len);
	snprintf(num, sizeof(num), "%u", rq->attempt);
	snprintf(ts, sizeof(ts), "%lld", (long long)(now / 1000));
	hdr_add(rq, "Content-Type", "application/json");
	hdr_add(rq, "X-Rendobar-Event", wh_event_name(d.event));
	hdr_add(rq, "X-Rendobar-Delivery", d.id);
	hdr_add(rq, "X-Rendobar-Attempt", num);
	hdr_add(rq, "X-Rendobar-Timestamp", ts);
	hdr_add(rq, "webhook-id", d.id);
	hdr_add(rq, "webhook-timestamp", ts);
	if (sec) {
		if ((r = whsign_rendobar_make(sec, now / 1000, body, d.body_len, sig)) < 0 ||
		    (r = whsign_std_make(sec, d.id, now / 1000, body, d.body_len, std)) < 0)
			goto out;
		hdr_add(rq, "X-Rendobar-Signature", sig);
		if (prev) {
			size_t n = strlen(std);
			if ((r = whsign_rendobar_make(prev, now / 1000, body, d.body_len, sig)) < 0 ||
			    (r = whsign_std_make(prev, d.id, now / 1000, body, d.body_len,
						 std + n + 1)) < 0)
				goto out;
			std[n] = ' ';
			hdr_add(rq, "X-Rendobar-Signature-Previous", sig);
		}
		hdr_add(rq, "webhook-signature", std);
	}
	cJSON_ArrayForEach(h, hs) {
		if (ncb == WH_CB_MAX_HEADERS)
			break;
		if (!cJSON_IsString(h) || !h->string ||
		    !*h->string || strlen(h->string) > 64 || strlen(h->valuestring) > 4096 ||
		    strpbrk(h->string, ":\r\n \t") || strpbrk(h->valuestring, "\r\n") ||
		    reserved_header(h->string))
			continue;
		hdr_add(rq, h->string, h->valuestring);
		ncb++;
	}
	{
		const char *p = rq->hdr.data;
		for (unsigned i = 0; i < rq->nh; i++) {
			rq->hp[i] = p;
			p += strlen(p) + 1;
		}
	}
	r = 0;
out:
	cJSON_Delete(cb);
	return r;
}

#undef REFUSE
