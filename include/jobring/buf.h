/* buf.h - a growable byte buffer, a streaming JSON writer on top of it, strict
 * UTF-8 checks and money formatting. This is how every HTTP response and
 * webhook body is built: no cJSON tree on the hot path.
 *
 * Ownership: a struct buf owns its heap memory (free with buf_free) unless it
 * was set up with buf_init_fixed, in which case the caller owns the memory and
 * the buffer never grows. b->data is invalidated by any call that may grow the
 * buffer (like Redis' sds): never keep a pointer into it across an append.
 * A struct jw borrows its struct buf for its lifetime; it allocates nothing.
 *
 * Errors: int-returning calls give 0 (or a count) on success and -errno:
 *   -ENOBUFS  a fixed buffer is full, or the growth limit was reached
 *   -EINVAL   misuse of the JSON writer (key outside an object, unbalanced end)
 *   -E2BIG    JSON nesting deeper than JW_MAX_DEPTH
 * A failed append leaves the buffer exactly as it was (len and contents). */
#ifndef JOBRING_BUF_H
#define JOBRING_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A byte buffer. data[len] is always '\0' once data is non-NULL, so cap
 *  counts that terminator: at most cap - 1 bytes of content fit. */
struct buf {
	char *data;   /* NULL until the first growth (heap mode) */
	size_t len;   /* bytes of content */
	size_t cap;   /* bytes available at data, terminator included */
	size_t limit; /* content never grows past this; 0 means no limit */
	bool fixed;   /* caller-provided memory: never realloc, never free */
};

/** Empty heap buffer; allocates nothing until the first append. */
void buf_init(struct buf *b);
/** Use the caller's mem[0..cap) and never grow: appends that do not fit
 *  (with the terminator) fail with -ENOBUFS. mem must outlive the buffer. */
void buf_init_fixed(struct buf *b, void *mem, size_t cap);
/** Cap the content length of a heap buffer (for sizes that input controls);
 *  0 removes the cap. Appends past it fail with -ENOBUFS. */
void buf_set_limit(struct buf *b, size_t limit);
/** Make room for n more content bytes; growth is geometric (x2) through
 *  xrealloc, so OOM aborts. 0 or -ENOBUFS. */
int buf_reserve(struct buf *b, size_t n);
/** Append n bytes of p. 0 or -ENOBUFS. */
int buf_append(struct buf *b, const void *p, size_t n);
/** Append a NUL-terminated string. 0 or -ENOBUFS. */
int buf_puts(struct buf *b, const char *s);
/** Append one byte. 0 or -ENOBUFS. */
int buf_putc(struct buf *b, char c);
/** Append printf output. Returns the number of bytes appended, or -ENOBUFS,
 *  or -EINVAL if the format itself fails. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** After buf_reserve(b, n) and writing up to n bytes at data + len, take
 *  them as content (for read()/recv() straight into the buffer). */
void buf_commit(struct buf *b, size_t n);
/** Drop the first n bytes (all of them if n >= len), moving the rest down. */
void buf_consume(struct buf *b, size_t n);
/** len = 0, keeping the memory for reuse. */
void buf_reset(struct buf *b);
/** Release heap memory (a fixed buffer only forgets its memory) and leave
 *  b as after buf_init. NULL is a no-op. */
void buf_free(struct buf *b);
/** The content as a C string: "" while data is NULL. Valid until the next
 *  call that may grow b. */
const char *buf_cstr(const struct buf *b);

/* ---- JSON writer --------------------------------------------------------- */

/** Maximum nesting of objects and arrays (one bit per level). */
#define JW_MAX_DEPTH 64

/** Streaming JSON writer: commas and colons are placed automatically, and the
 *  call sequence is checked (a key only inside an object and before each of
 *  its values, balanced ends, a single top-level value).
 *
 *  Errors are sticky: the first failure is kept in err, the buffer is
 *  truncated back to where that call started, and every later call returns
 *  the same error without writing. So a builder can make all its calls and
 *  check jw_finish() once. */
struct jw {
	struct buf *b;
	uint32_t depth; /* open containers */
	int err;        /* first error, or 0 */
	uint64_t comma; /* bit d-1: the container at depth d holds a member */
	uint64_t obj;   /* bit d-1: the container at depth d is an object */
	bool key;       /* a key was written, its value is due */
	bool done;      /* the top-level value is complete */
};

/** Start writing one JSON value at the end of b (b keeps its content). */
void jw_init(struct jw *w, struct buf *b);
/** 0 if exactly one complete value was written; else the sticky error, or
 *  -EINVAL if containers are still open or nothing was written. */
int jw_finish(const struct jw *w);

int jw_obj_begin(struct jw *w);
int jw_obj_end(struct jw *w);
int jw_arr_begin(struct jw *w);
int jw_arr_end(struct jw *w);
/** An object key (escaped like a string); the next call writes its value. */
int jw_key(struct jw *w, const char *name);
/** A string value (NUL-terminated; NULL writes null). Escaping follows
 *  RFC 8259: '"', '\\', control characters (\b \f \n \r \t, else \u00XX),
 *  plus U+2028/U+2029 (for JavaScript embedding). Ill-formed UTF-8 is replaced
 *  by U+FFFD, one per maximal ill-formed subpart (Unicode 15 §3.9), so the
 *  output is always valid UTF-8 and valid JSON. */
int jw_str(struct jw *w, const char *s);
/** A string value of n bytes; NUL bytes are written as \u0000. */
int jw_strn(struct jw *w, const char *s, size_t n);
int jw_int(struct jw *w, int64_t v);
int jw_uint(struct jw *w, uint64_t v);
/** A decimal that reads back as the same double, %g style (0.1, 1e+100, -0):
 *  the shortest one for normal numbers (tries 15, 16, then 17 significant
 *  digits; subnormals may get more digits than needed). NaN and infinities
 *  are written as null. Assumes the C locale for LC_NUMERIC. */
int jw_double(struct jw *w, double v);
int jw_bool(struct jw *w, bool v);
int jw_null(struct jw *w);
/** n bytes of already-encoded JSON, inserted as one value unchecked: the
 *  caller guarantees it is a single valid JSON value. */
int jw_raw(struct jw *w, const char *json, size_t n);
/** Money as the API shows it: {"amount":N,"currency":"USD","formatted":"$0.10"}
 *  with N in nanodollars and formatted as by money_format(). */
int jw_money(struct jw *w, int64_t nanodollars);

/** Shorthands for jw_key() followed by the value. */
int jw_kv_str(struct jw *w, const char *key, const char *s);
int jw_kv_int(struct jw *w, const char *key, int64_t v);
int jw_kv_uint(struct jw *w, const char *key, uint64_t v);
int jw_kv_bool(struct jw *w, const char *key, bool v);
int jw_kv_null(struct jw *w, const char *key);

/* ---- UTF-8 --------------------------------------------------------------- */

/** 1 if s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates
 *  U+D800..U+DFFF, nothing above U+10FFFF, no truncated sequence), else 0. */
int utf8_valid(const char *s, size_t n);
/** Number of code points in s[0..n); each maximal ill-formed subpart counts
 *  as one (the U+FFFD that jw_strn would write for it). */
size_t utf8_codepoints(const char *s, size_t n);

/* ---- money --------------------------------------------------------------- */

/** Buffer size that holds any money_format() output with its terminator. */
#define MONEY_FMT_MAX 24

/** Format nanodollars (1 USD = 1e9) as "$" + dollars + "." + two cent digits,
 *  with no thousands separator: 100000000 → "$0.10", 1234560000000 →
 *  "$1234.56". Rounds half away from zero at the cent (5000000 → "$0.01",
 *  -5000000 → "-$0.01"); a negative amount that rounds to zero is "$0.00".
 *  Like snprintf: writes at most outsz bytes including the terminator and
 *  returns the full length, so a return >= outsz means out was truncated. */
size_t money_format(char *out, size_t outsz, int64_t nanodollars);

#endif
