/* buf.c - growable byte buffer, streaming JSON writer, UTF-8 checks, money. */
#include "jobring/buf.h"
#include "jobring/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 64

/* ---- buffer -------------------------------------------------------------- */

void buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void buf_init_fixed(struct buf *b, void *mem, size_t cap)
{
	b->data = mem;
	b->len = 0;
	b->cap = cap;
	b->limit = 0;
	b->fixed = true;
	if (cap > 0)
		b->data[0] = '\0';
}

void buf_set_limit(struct buf *b, size_t limit)
{
	/* Keep limit + 1 and len + n + 1 far from overflow. */
	b->limit = MIN(limit, SIZE_MAX / 4);
}

/* Bytes writable at data + len without growing, terminator included and
 * the limit respected. */
static size_t buf_room(const struct buf *b)
{
	size_t room = b->cap > b->len ? b->cap - b->len : 0;

	if (unlikely(b->limit) && room > 0) {
		size_t allowed = b->limit > b->len ? b->limit - b->len + 1 : 1;
		room = MIN(room, allowed);
	}
	return room;
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t need, ncap;

	/* Content len + n plus the terminator must fit in cap. */
	if (likely(b->cap > b->len && b->cap - b->len > n && !b->limit))
		return 0;
	if (n > SIZE_MAX / 4 - b->len)
		return -ENOBUFS;
	need = b->len + n + 1;
	if (b->limit && need > b->limit + 1)
		return -ENOBUFS;
	if (need <= b->cap)
		return 0;
	if (b->fixed)
		return -ENOBUFS;
	ncap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (ncap < need)
		ncap *= 2;
	if (b->limit)
		ncap = MIN(ncap, b->limit + 1);
	b->data = xrealloc(b->data, ncap);
	b->cap = ncap;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int r = buf_reserve(b, n);
	if (unlikely(r < 0))
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
	int r = buf_reserve(b, 1);
	if (unlikely(r < 0))
		return r;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room = buf_room(b);
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (room)
			b->data[b->len] = '\0';
		return -EINVAL;
	}
	if ((size_t)n < room) {
		b->len += (size_t)n;
		return n;
	}
	/* Did not fit: vsnprintf wrote a truncated copy past len; undo it. */
	if (room)
		b->data[b->len] = '\0';
	r = buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return n;
}

void buf_commit(struct buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	if (!b)
		return;
	if (!b->fixed)
		free(b->data);
	buf_init(b);
}

const char *buf_cstr(const struct buf *b)
{
	return b->cap ? b->data : "";
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* Decode one sequence at s[0..n), n >= 1, by the table of well-formed byte
 * sequences (Unicode §3.9, table 3-7). Returns its length (1..4) and stores
 * the code point, or returns minus the length of the maximal ill-formed
 * subpart (-1..-3): the longest prefix that could still have begun a
 * well-formed sequence, which is what one U+FFFD replaces. */
static int utf8_next(const unsigned char *s, size_t n, uint32_t *ret_cp)
{
	unsigned c = s[0], lo = 0x80, hi = 0xBF;
	uint32_t cp;
	size_t need;

	if (c < 0x80) {
		*ret_cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		cp = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0; /* no overlongs below U+0800 */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		cp = c & 0x07;
		if (c == 0xF0)
			lo = 0x90; /* no overlongs below U+10000 */
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else {
		return -1; /* 80..C1 (continuation, overlong lead), F5..FF */
	}
	for (size_t i = 1; i <= need; i++) {
		unsigned d;

		if (i >= n)
			return -(int)i;
		d = s[i];
		if (d < lo || d > hi)
			return -(int)i;
		lo = 0x80;
		hi = 0xBF;
		cp = (cp << 6) | (d & 0x3F);
	}
	*ret_cp = cp;
	return (int)need + 1;
}

int utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		int r;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		r = utf8_next(p + i, n - i, &cp);
		if (r < 0)
			return 0;
		i += (size_t)r;
	}
	return 1;
}

size_t utf8_codepoints(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, count = 0;

	while (i < n) {
		uint32_t cp;
		int r = p[i] < 0x80 ? 1 : utf8_next(p + i, n - i, &cp);

		i += (size_t)(r < 0 ? -r : r);
		count++;
	}
	return count;
}

/* ---- JSON string escaping ------------------------------------------------ */

/* 0: copy as is; 'u': \u00XX; another letter: that short escape after '\\';
 * 'x': first byte of a multi-byte (or ill-formed) UTF-8 sequence. */
#define R16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
static const char esc_class[256] = {
	'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
	R16('u'),
	0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	R16(0),
	R16(0),
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0,
	R16(0),
	R16(0),
	R16('x'), R16('x'), R16('x'), R16('x'), R16('x'), R16('x'), R16('x'), R16('x'),
};
#undef R16

static const char hexdig[] = "0123456789abcdef";

/* Append s[0..n) as a quoted JSON string. Runs of bytes that need nothing
 * (ASCII and well-formed UTF-8 other than U+2028/9) go out in one memcpy. */
static int put_string(struct buf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;
	int r;

	/* The common case (nothing to escape) then needs a single reserve. */
	if ((r = buf_reserve(b, n + 2)) < 0)
		return r;
	b->data[b->len++] = '"';
	while (i < n) {
		char esc[6];
		const char *rep;
		size_t replen;
		char cls = esc_class[s[i]];

		if (cls == 0) {
			i++;
			continue;
		}
		if (cls == 'x') {
			uint32_t cp;
			int k = utf8_next(s + i, n - i, &cp);

			if (k > 0 && cp != 0x2028 && cp != 0x2029) {
				i += (size_t)k;
				continue;
			}
			if (k > 0) {
				rep = cp == 0x2028 ? "\\u2028" : "\\u2029";
				replen = 6;
			} else {
				rep = "\xEF\xBF\xBD"; /* U+FFFD */
				replen = 3;
				k = -k;
			}
			if ((r = buf_append(b, s + run, i - run)) < 0 ||
			    (r = buf_append(b, rep, replen)) < 0)
				return r;
			i += (size_t)k;
			run = i;
			continue;
		}
		esc[0] = '\\';
		if (cls == 'u') {
			memcpy(esc + 1, "u00", 3);
			esc[4] = hexdig[s[i] >> 4];
			esc[5] = hexdig[s[i] & 15];
			replen = 6;
		} else {
			esc[1] = cls;
			replen = 2;
		}
		if ((r = buf_append(b, s + run, i - run)) < 0 ||
		    (r = buf_append(b, esc, replen)) < 0)
			return r;
		run = ++i;
	}
	if ((r = buf_append(b, s + run, n - run)) < 0)
		return r;
	return buf_putc(b, '"');
}

/* Decimal digits of v into the end of out[21]; returns the first digit. */
static char *fmt_u64(char *end, uint64_t v)
{
	static const char pairs[] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	char *p = end;

	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		*--p = pairs[d + 1];
		*--p = pairs[d];
	}
	if (v >= 10) {
		*--p = pairs[v * 2 + 1];
		*--p = pairs[v * 2];
	} else {
		*--p = (char)('0' + v);
	}
	return p;
}

/* ---- JSON writer --------------------------------------------------------- */

void jw_init(struct jw *w, struct buf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
}

int jw_finish(const struct jw *w)
{
	if (w->err)
		return w->err;
	return w->depth == 0 && w->done ? 0 : -EINVAL;
}

/* Record the first error and cut the buffer back to where the call began. */
static int jw_fail(struct jw *w, size_t mark, int err)
{
	w->err = err;
	if (w->b->len > mark) {
		w->b->len = mark;
		w->b->data[mark] = '\0';
	}
	return err;
}

/* Before a value (scalar or container): check the position is legal and
 * write the separating comma. */
static int jw_pre(struct jw *w)
{
	uint64_t bit;

	if (w->depth == 0)
		return w->done ? -EINVAL : 0;
	bit = 1ull << (w->depth - 1);
	if (w->obj & bit) {
		if (!w->key)
			return -EINVAL;
		w->key = false; /* the comma went before the key */
		return 0;
	}
	if (w->comma & bit)
		return buf_putc(w->b, ',');
	w->comma |= bit;
	return 0;
}

/* After a value: the top-level value is complete when depth is 0. */
static int jw_post(struct jw *w)
{
	if (w->depth == 0)
		w->done = true;
	return 0;
}

/* Write n bytes of literal JSON as one scalar value. */
static int jw_scalar(struct jw *w, const char *p, size_t n)
{
	size_t mark = w->b->len;
	int r;

	if (w->err)
		return w->err;
	if ((r = jw_pre(w)) < 0 || (r = buf_append(w->b, p, n)) < 0)
		return jw_fail(w, mark, r);
	return jw_post(w);
}

static int jw_begin(struct jw *w, bool obj, char c)
{
	size_t mark = w->b->len;
	uint64_t bit;
	int r;

	if (w->err)
		return w->err;
	if (w->depth >= JW_MAX_DEPTH)
		return jw_fail(w, mark, -E2BIG);
	if ((r = jw_pre(w)) < 0 || (r = buf_putc(w->b, c)) < 0)
		return jw_fail(w, mark, r);
	bit = 1ull << w->depth++;
	w->comma &= ~bit;
	if (obj)
		w->obj |= bit;
	else
		w->obj &= ~bit;
	return 0;
}

static int jw_end(struct jw *w, bool obj, char c)
{
	size_t mark = w->b->len;
	uint64_t bit;
	int r;

	if (w->err)
		return w->err;
	if (w->depth == 0)
		return jw_fail(w, mark, -EINVAL);
	bit = 1ull << (w->depth - 1);
	if (!(w->obj & bit) != !obj || w->key)
		return jw_fail(w, mark, -EINVAL);
	if ((r = buf_putc(w->b, c)) < 0)
		return jw_fail(w, mark, r);
	w->depth--;
	return jw_post(w);
}

int jw_obj_begin(struct jw *w)
{
	return jw_begin(w, true, '{');
}

int jw_obj_end(struct jw *w)
{
	return jw_end(w, true, '}');
}

int jw_arr_begin(struct jw *w)
{
	return jw_begin(w, false, '[');
}

int jw_arr_end(struct jw *w)
{
	return jw_end(w, false, ']');
}

int jw_key(struct jw *w, const char *name)
{
	size_t mark = w->b->len;
	uint64_t bit;
	int r;

	if (w->err)
		return w->err;
	if (w->depth == 0 || w->key)
		return jw_fail(w, mark, -EINVAL);
	bit = 1ull << (w->depth - 1);
	if (!(w->obj & bit))
		return jw_fail(w, mark, -EINVAL);
	if ((w->comma & bit) && (r = buf_putc(w->b, ',')) < 0)
		return jw_fail(w, mark, r);
	if ((r = put_string(w->b, name, strlen(name))) < 0 ||
	    (r = buf_putc(w->b, ':')) < 0)
		return jw_fail(w, mark, r);
	w->comma |= bit;
	w->key = true;
	return 0;
}

int jw_strn(struct jw *w, const char *s, size_t n)
{
	size_t mark = w->b->len;
	int r;

	if (w->err)
		return w->err;
	if ((r = jw_pre(w)) < 0 || (r = put_string(w->b, s, n)) < 0)
		return jw_fail(w, mark, r);
	return jw_post(w);
}

int jw_str(struct jw *w, const char *s)
{
	if (!s)
		return jw_null(w);
	return jw_strn(w, s, strlen(s));
}

int jw_uint(struct jw *w, uint64_t v)
{
	char tmp[24], *end = tmp + sizeof(tmp), *p = fmt_u64(end, v);

	return jw_scalar(w, p, (size_t)(end - p));
}

int jw_int(struct jw *w, int64_t v)
{
	char tmp[24], *end = tmp + sizeof(tmp), *p;

	/* Negate in unsigned arithmetic so INT64_MIN works. */
	p = fmt_u64(end, v < 0 ? -(uint64_t)v : (uint64_t)v);
	if (v < 0)
		*--p = '-';
	return jw_scalar(w, p, (size_t)(end - p));
}

int jw_double(struct jw *w, double v)
{
	char tmp[32];
	int n = 0;

	if (!isfinite(v))
		return jw_null(w);
	/* Any decimal of <= 15 digits survives a trip through a double
	 * (DBL_DIG), and %g drops trailing zeros, so the first precision that
	 * reads back is the shortest; 17 always does. */
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	return jw_scalar(w, tmp, (size_t)n);
}

int jw_bool(struct jw *w, bool v)
{
	return v ? jw_scalar(w, "true", 4) : jw_scalar(w, "false", 5);
}

int jw_null(struct jw *w)
{
	return jw_scalar(w, "null", 4);
}

int jw_raw(struct jw *w, const char *json, size_t n)
{
	return jw_scalar(w, json, n);
}

int jw_money(struct jw *w, int64_t nanodollars)
{
	char fmt[MONEY_FMT_MAX];
	size_t mark = w->b->len;

	if (w->err)
		return w->err;
	money_format(fmt, sizeof(fmt), nanodollars);
	jw_obj_begin(w);
	jw_kv_int(w, "amount", nanodollars);
	jw_kv_str(w, "currency", "USD");
	jw_kv_str(w, "formatted", fmt);
	jw_obj_end(w);
	if (w->err)
		return jw_fail(w, mark, w->err);
	return 0;
}

int jw_kv_str(struct jw *w, const char *key, const char *s)
{
	int r = jw_key(w, key);
	return r < 0 ? r : jw_str(w, s);
}

int jw_kv_int(struct jw *w, const char *key, int64_t v)
{
	int r = jw_key(w, key);
	return r < 0 ? r : jw_int(w, v);
}

int jw_kv_uint(struct jw *w, const char *key, uint64_t v)
{
	int r = jw_key(w, key);
	return r < 0 ? r : jw_uint(w, v);
}

int jw_kv_bool(struct jw *w, const char *key, bool v)
{
	int r = jw_key(w, key);
	return r < 0 ? r : jw_bool(w, v);
}

int jw_kv_null(struct jw *w, const char *key)
{
	int r = jw_key(w, key);
	return r < 0 ? r : jw_null(w);
}

/* ---- money --------------------------------------------------------------- */

#define NANO_PER_CENT 10000000ull

size_t money_format(char *out, size_t outsz, int64_t nanodollars)
{
	char tmp[MONEY_FMT_MAX], *end = tmp + sizeof(tmp), *p = end;
	uint64_t mag = nanodollars < 0 ? -(uint64_t)nanodollars : (uint64_t)nanodollars;
	/* mag <= 2^63, so adding half a cent cannot overflow. */
	uint64_t cents = (mag + NANO_PER_CENT / 2) / NANO_PER_CENT;
	size_t n;

	*--p = (char)('0' + cents % 10);
	*--p = (char)('0' + cents / 10 % 10);
	*--p = '.';
	p = fmt_u64(p, cents / 100);
	*--p = '$';
	if (nanodollars < 0 && cents > 0)
		*--p = '-';
	n = (size_t)(end - p);
	if (outsz > 0) {
		size_t c = n < outsz ? n : outsz - 1;
		memcpy(out, p, c);
		out[c] = '\0';
	}
	return n;
}
