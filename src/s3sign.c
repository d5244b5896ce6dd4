/* s3sign.c - AWS Signature Version 4 presigned URLs (query-string form).
 *
 * The pieces, in the order AWS documents them:
 *   canonical request = METHOD \n URI \n QUERY \n "host:"HOST \n \n "host" \n UNSIGNED-PAYLOAD
 *   string to sign    = "AWS4-HMAC-SHA256" \n AMZDATE \n SCOPE \n hex(sha256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), "s3"), "aws4_request")
 *   signature         = hex(HMAC(signing key, string to sign))
 * S3 differs from the other services in that the path is encoded once and
 * never normalized. */
#include "jobring/s3sign.h"

#include "jobring/crypto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HOST_MAX 253
#define SECRET_MAX 128
/* Worst cases: 1+63+1+3*S3_KEY_MAX for the URI; the query with a 128-char
 * access key fully escaped is under 700. */
#define URI_CAP (3 * S3_KEY_MAX + 80)
#define QUERY_CAP 1024
#define CANON_CAP (URI_CAP + QUERY_CAP + 512)

/* A bounded string builder: once full, stays full (checked at the end). */
struct sb {
	char *p;
	size_t len, cap;
	bool full;
};

static void sb_init(struct sb *b, char *p, size_t cap)
{
	b->p = p;
	b->len = 0;
	b->cap = cap;
	b->full = cap == 0;
	if (cap)
		p[0] = '\0';
}

static void sb_putn(struct sb *b, const char *s, size_t n)
{
	if (b->full || n >= b->cap - b->len) {
		b->full = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static int sb_done(const struct sb *b)
{
	return b->full ? -ENOSPC : (int)b->len;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* AWS URI encoding: unreserved bytes as is, '/' as is when keep_slash,
 * everything else %XX with upper-case hex. */
static void sb_uri_encode(struct sb *b, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_putn(b, (const char *)&c, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			sb_putn(b, e, 3);
		}
	}
}

static bool all_of(const char *s, size_t min, size_t max, const char *set)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, max + 1);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(set, s[i]))
			return false;
	return true;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define PRINTABLE                                                                          \
	"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrs" \
	"tuvwxyz{|}~"

/* Everything that the four steps share, validated once. */
struct s3_prep {
	char scheme[6];         /* "http" or "https" */
	char host[HOST_MAX + 80]; /* as signed and as put in the URL */
	char uri[URI_CAP];
	char query[QUERY_CAP];  /* canonical, without X-Amz-Signature */
	char date[9];           /* YYYYMMDD */
	char amzdate[17];       /* YYYYMMDDTHHMMSSZ */
};

/* Split "http[s]://host[:port][/]" into scheme and host[:port]. */
static int parse_endpoint(const char *ep, struct s3_prep *p, bool *ipv6)
{
	const char *auth, *end, *port = NULL;
	size_t hlen;

	if (!ep)
		return -EINVAL;
	if (strncmp(ep, "https://", 8) == 0) {
		strcpy(p->scheme, "https");
		auth = ep + 8;
	} else if (strncmp(ep, "http://", 7) == 0) {
		strcpy(p->scheme, "http");
		auth = ep + 7;
	} else {
		return -EINVAL;
	}
	end = auth + strnlen(auth, HOST_MAX + 8);
	if (*end)
		return -EINVAL;
	if (end > auth && end[-1] == '/')
		end--;
	*ipv6 = auth < end && *auth == '[';
	if (*ipv6) {
		const char *rb = memchr(auth, ']', (size_t)(end - auth));
		if (!rb || rb == auth + 1)
			return -EINVAL;
		for (const char *c = auth + 1; c < rb; c++)
			if (!strchr("0123456789abcdefABCDEF:.", *c))
				return -EINVAL;
		if (rb + 1 < end && rb[1] != ':')
			return -EINVAL;
		port = rb + 1 < end ? rb + 1 : NULL;
		hlen = (size_t)(rb + 1 - auth);
	} else {
		const char *c = auth;
		for (; c < end && *c != ':'; c++)
			if (!strchr(LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-", *c))
				return -EINVAL;
		port = c < end ? c : NULL;
		hlen = (size_t)(c - auth);
	}
	if (hlen == 0 || hlen > HOST_MAX)
		return -EINVAL;
	if (port) {
		size_t plen = (size_t)(end - port - 1);
		unsigned v = 0;
		if (plen == 0 || plen > 5)
			return -EINVAL;
		for (size_t i = 1; i <= plen; i++) {
			if (port[i] < '0' || port[i] > '9')
				return -EINVAL;
			v = v * 10 + (unsigned)(port[i] - '0');
		}
		if (v == 0 || v > 65535)
			return -EINVAL;
		/* A default port is dropped so that the Host header curl sends
		 * matches the one signed. */
		if ((v == 443 && strcmp(p->scheme, "https") == 0) ||
		    (v == 80 && strcmp(p->scheme, "http") == 0))
			end = port;
	}
	memcpy(p->host, auth, (size_t)(end - auth));
	p->host[end - auth] = '\0';
	return 0;
}

static int format_dates(int64_t t, struct s3_prep *p)
{
	struct tm tm;
	time_t tt;

	/* 9999-12-31T23:59:59Z is the last instant with a 4-digit year. */
	if (t < 0 || t > 253402300799LL)
		return -EINVAL;
	tt = (time_t)t;
	if (!gmtime_r(&tt, &tm))
		return -EINVAL;
	if (strftime(p->amzdate, sizeof(p->amzdate), "%Y%m%dT%H%M%SZ", &tm) != 16)
		return -EINVAL;
	memcpy(p->date, p->amzdate, 8);
	p->date[8] = '\0';
	return 0;
}

struct qparam {
	char name[32];
	char value[512]; /* encoded */
};

static int build_query(const struct s3_presign_req *r, struct s3_prep *p)
{
	struct qparam q[5];
	struct sb b;
	size_t nq = 0;
	char exp[24];

	/* X-Amz-Credential: {access}/{date}/{region}/s3/aws4_request, encoded. */
	strcpy(q[nq].name, "X-Amz-Credential");
	sb_init(&b, q[nq].value, sizeof(q[nq].value));
	sb_uri_encode(&b, r->access_key, strlen(r->access_key), false);
	sb_puts(&b, "%2F");
	sb_puts(&b, p->date);
	sb_puts(&b, "%2F");
	sb_uri_encode(&b, r->region, strlen(r->region), false);
	sb_puts(&b, "%2Fs3%2Faws4_request");
	if (sb_done(&b) < 0)
		return -EINVAL;
	nq++;
	strcpy(q[nq].name, "X-Amz-Algorithm");
	strcpy(q[nq++].value, "AWS4-HMAC-SHA256");
	strcpy(q[nq].name, "X-Amz-Date");
	strcpy(q[nq++].value, p->amzdate);
	snprintf(exp, sizeof(exp), "%" PRId64, r->expires);
	strcpy(q[nq].name, "X-Amz-Expires");
	strcpy(q[nq++].value, exp);
	strcpy(q[nq].name, "X-Amz-SignedHeaders");
	strcpy(q[nq++].value, "host");

	/* Sort by (encoded) name, then value: the canonical query order. */
	for (size_t i = 1; i < nq; i++) {
		for (size_t j = i; j > 0; j--) {
			int c = strcmp(q[j - 1].name, q[j].name);
			if (c < 0 || (c == 0 && strcmp(q[j - 1].value, q[j].value) <= 0))
				break;
			struct qparam t = q[j];
			q[j] = q[j - 1];
			q[j - 1] = t;
		}
	}
	sb_init(&b, p->query, sizeof(p->query));
	for (size_t i = 0; i < nq; i++) {
		if (i)
			sb_puts(&b, "&");
		sb_puts(&b, q[i].name);
		sb_puts(&b, "=");
		sb_puts(&b, q[i].value);
	}
	return sb_done(&b) < 0 ? -EINVAL : 0;
}

static int prepare(const struct s3_presign_req *r, struct s3_prep *p)
{
	char ephost[sizeof(p->host)];
	bool ipv6;
	struct sb b;
	size_t klen;
	int rc;

	if (!r || !all_of(r->method, 1, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ||
	    !all_of(r->bucket, 3, 63, LOWER_DIGITS ".-_") ||
	    !all_of(r->region, 1, 32, LOWER_DIGITS "-") ||
	    !all_of(r->access_key, 1, 128, PRINTABLE) || !r->secret_key || !*r->secret_key ||
	    strnlen(r->secret_key, SECRET_MAX + 1) > SECRET_MAX || !r->key ||
	    r->expires < 1 || r->expires > S3_EXPIRES_MAX)
		return -EINVAL;
	klen = strnlen(r->key, S3_KEY_MAX + 1);
	if (klen == 0 || klen > S3_KEY_MAX)
		return -EINVAL;
	rc = parse_endpoint(r->endpoint, p, &ipv6);
	if (rc < 0)
		return rc;
	if (!r->path_style) {
		if (ipv6)
			return -EINVAL;
		memcpy(ephost, p->host, sizeof(ephost));
		sb_init(&b, p->host, sizeof(p->host));
		sb_puts(&b, r->bucket);
		sb_puts(&b, ".");
		sb_puts(&b, ephost);
		if (sb_done(&b) < 0)
			return -EINVAL;
	}
	rc = format_dates(r->time, p);
	if (rc < 0)
		return rc;

	sb_init(&b, p->uri, sizeof(p->uri));
	sb_puts(&b, "/");
	if (r->path_style) {
		sb_uri_encode(&b, r->bucket, strlen(r->bucket), false);
		sb_puts(&b, "/");
	}
	sb_uri_encode(&b, r->key, klen, true);
	if (sb_done(&b) < 0)
		return -EINVAL;
	return build_query(r, p);
}

static int canonical(char *out, size_t outsz, const struct s3_presign_req *r,
		     const struct s3_prep *p)
{
	struct sb b;

	sb_init(&b, out, outsz);
	sb_puts(&b, r->method);
	sb_puts(&b, "\n");
	sb_puts(&b, p->uri);
	sb_puts(&b, "\n");
	sb_puts(&b, p->query);
	sb_puts(&b, "\nhost:");
	sb_puts(&b, p->host);
	sb_puts(&b, "\n\nhost\nUNSIGNED-PAYLOAD");
	return sb_done(&b);
}

static int string_to_sign(char *out, size_t outsz, const struct s3_presign_req *r,
			  const struct s3_prep *p)
{
	char canon[CANON_CAP], hex[2 * CRYPTO_SHA256_LEN + 1];
	uint8_t md[CRYPTO_SHA256_LEN];
	struct sb b;
	int n = canonical(canon, sizeof(canon), r, p);

	if (n < 0)
		return n;
	n = crypto_sha256(canon, (size_t)n, md);
	if (n < 0)
		return n;
	hex_encode(md, sizeof(md), hex);
	sb_init(&b, out, outsz);
	sb_puts(&b, "AWS4-HMAC-SHA256\n");
	sb_puts(&b, p->amzdate);
	sb_puts(&b, "\n");
	sb_puts(&b, p->date);
	sb_puts(&b, "/");
	sb_puts(&b, r->region);
	sb_puts(&b, "/s3/aws4_request\n");
	sb_puts(&b, hex);
	return sb_done(&b);
}

int s3_signing_key(const char *secret, const char *date, const char *region,
		   const char *service, uint8_t out[32])
{
	char k0[4 + SECRET_MAX];
	uint8_t k1[CRYPTO_SHA256_LEN], k2[CRYPTO_SHA256_LEN];
	size_t slen;
	int r;

	if (!secret || !all_of(date, 8, 8, "0123456789") || !region || !*region || !service ||
	    !*service)
		return -EINVAL;
	slen = strnlen(secret, SECRET_MAX + 1);
	if (slen == 0 || slen > SECRET_MAX)
		return -EINVAL;
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, slen);
	r = crypto_hmac_sha256(k0, 4 + slen, date, 8, k1);                    /* kDate */
	if (r == 0)
		r = crypto_hmac_sha256(k1, sizeof(k1), region, strlen(region), k2);   /* kRegion */
	if (r == 0)
		r = crypto_hmac_sha256(k2, sizeof(k2), service, strlen(service), k1); /* kService */
	if (r == 0)
		r = crypto_hmac_sha256(k1, sizeof(k1), "aws4_request", 12, out);     /* kSigning */
	return r;
}

int s3_canonical_request(char *out, size_t outsz, const struct s3_presign_req *r)
{
	struct s3_prep p;
	int rc = prepare(r, &p);

	return rc < 0 ? rc : canonical(out, outsz, r, &p);
}

int s3_string_to_sign(char *out, size_t outsz, const struct s3_presign_req *r)
{
	struct s3_prep p;
	int rc = prepare(r, &p);

	return rc < 0 ? rc : string_to_sign(out, outsz, r, &p);
}

int s3_presign(char *out, size_t outsz, const struct s3_presign_req *r)
{
	struct s3_prep p;
	char sts[512], hex[2 * CRYPTO_SHA256_LEN + 1];
	uint8_t key[CRYPTO_SHA256_LEN], sig[CRYPTO_SHA256_LEN];
	struct sb b;
	int n = prepare(r, &p);

	if (n < 0)
		return n;
	n = string_to_sign(sts, sizeof(sts), r, &p);
	if (n < 0)
		return n;
	n = s3_signing_key(r->secret_key, p.date, r->region, "s3", key);
	if (n == 0)
		n = crypto_hmac_sha256(key, sizeof(key), sts, strlen(sts), sig);
	if (n < 0)
		return n;
	hex_encode(sig, sizeof(sig), hex);
	sb_init(&b, out, outsz);
	sb_puts(&b, p.scheme);
	sb_puts(&b, "://");
	sb_puts(&b, p.host);
	sb_puts(&b, p.uri);
	sb_puts(&b, "?");
	sb_puts(&b, p.query);
	sb_puts(&b, "&X-Amz-Signature=");
	sb_puts(&b, hex);
	return sb_done(&b);
}
