/* schema.c - JSON Schema (draft 7 subset) validation over cJSON, the field
 * list Rendobar derives from a schema, and the regex engine behind "pattern".
 *
 * The regex engine parses a pattern into a small tree, compiles the tree to a
 * program for a Pike VM (Thompson NFA simulation without captures), and runs
 * it over the subject's code points: each step touches every instruction at
 * most once, so no pattern can take more than O(len * program) time. Counted
 * repeats are expanded, so the program size is capped (RX_MAX_PROG). */
#include "jobring/schema.h"
#include "jobring/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RX_MAX_PROG 4096   /* instructions after expanding {n,m} */
#define RX_MAX_NEST 32     /* nested groups */
#define RX_MAX_COUNT 1000  /* largest n or m in {n,m} */
#define RX_MAX_RANGES 8192 /* character ranges of all classes */
#define CP_MAX 0x10FFFFu

/* ---- UTF-8 ---- */

/* Decode one code point; a malformed byte counts as one U+FFFD. */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *adv)
{
	uint32_t c = s[0], cp, min;
	size_t n, i;

	*adv = 1;
	if (c < 0x80)
		return c;
	if (c >= 0xC2 && c <= 0xDF)
		n = 1, cp = c & 0x1F, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 2, cp = c & 0x0F, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 3, cp = c & 0x07, min = 0x10000;
	else
		return 0xFFFD;
	if (len <= n)
		return 0xFFFD;
	for (i = 1; i <= n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0xFFFD;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if (cp < min || cp > CP_MAX || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0xFFFD;
	*adv = n + 1;
	return cp;
}

static size_t utf8_count(const char *s)
{
	size_t len = strlen(s), i = 0, n = 0, adv;

	for (; i < len; i += adv, n++)
		utf8_next((const unsigned char *)s + i, len - i, &adv);
	return n;
}

/* ---- regex: parse ---- */

enum { RN_SET, RN_BOL, RN_EOL, RN_WORDB, RN_NWORDB, RN_CAT, RN_ALT, RN_REP };
enum { OP_SET, OP_SPLIT, OP_JMP, OP_BOL, OP_EOL, OP_WORDB, OP_NWORDB, OP_MATCH };

struct rx_node {
	int kind, child, next; /* first child (CAT, ALT, REP); next sibling or -1 */
	int min, max;          /* REP; max < 0 is unbounded */
	uint32_t lo, n;        /* SET: ranges [lo, lo + n) */
	uint32_t size;         /* instructions it compiles to, saturated */
};

struct rx_inst {
	uint32_t op, x, y; /* SET: ranges [x, x + y); SPLIT: x, y; JMP: x */
};

struct rx {
	struct rx_inst *prog;
	uint32_t nprog, nrg, rcap;
	uint32_t (*rg)[2]; /* sorted, disjoint ranges per SET */
	uint32_t *clist, *nlist, *mark, *stack;
};

struct rx_parse {
	const unsigned char *p, *end, *start;
	struct rx_node *nd;
	int nnd, cap, depth;
	struct rx *rx;
	char *err;
	size_t errsz;
	bool failed;
};

static const uint32_t rx_digit[][2] = { { '0', '9' } };
static const uint32_t rx_word[][2] = { { '0', '9' }, { 'A', 'Z' }, { '_', '_' }, { 'a', 'z' } };
static const uint32_t rx_space[][2] = { { 9, 13 }, { 32, 32 }, { 0xA0, 0xA0 }, { 0x1680, 0x1680 },
	{ 0x2000, 0x200A }, { 0x2028, 0x2029 }, { 0x202F, 0x202F }, { 0x205F, 0x205F },
	{ 0x3000, 0x3000 }, { 0xFEFF, 0xFEFF } };
static const uint32_t rx_newline[][2] = { { 10, 10 }, { 13, 13 }, { 0x2028, 0x2029 } };

__attribute__((format(printf, 2, 3)))
static int rx_fail(struct rx_parse *ps, const char *fmt, ...)
{
	char msg[96];
	va_list ap;

	if (!ps->failed && ps->err) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		snprintf(ps->err, ps->errsz, "pattern: %s at offset %td", msg, ps->p - ps->start);
	}
	ps->failed = true;
	return -1;
}

static int rx_node(struct rx_parse *ps, int kind)
{
	struct rx_node *n;

	if (ps->nnd == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 32;
		ps->nd = xrealloc(ps->nd, (size_t)ps->cap * sizeof(*ps->nd));
	}
	n = &ps->nd[ps->nnd];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->child = n->next = -1;
	return ps->nnd++;
}

static int rx_range(struct rx_parse *ps, uint32_t lo, uint32_t hi)
{
	struct rx *rx = ps->rx;

	if (rx->nrg >= RX_MAX_RANGES)
		return rx_fail(ps, "too many character ranges");
	if (rx->nrg == rx->rcap) {
		rx->rcap = rx->rcap ? rx->rcap * 2 : 16;
		rx->rg = xrealloc(rx->rg, rx->rcap * sizeof(*rx->rg));
	}
	rx->rg[rx->nrg][0] = lo;
	rx->rg[rx->nrg][1] = hi;
	rx->nrg++;
	return 0;
}

/* Add a table of sorted ranges, or its complement. */
static int rx_table(struct rx_parse *ps, const uint32_t (*t)[2], size_t n, bool neg)
{
	uint32_t next = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!neg && rx_range(ps, t[i][0], t[i][1]) < 0)
			return -1;
		if (neg && t[i][0] > next && rx_range(ps, next, t[i][0] - 1) < 0)
			return -1;
		next = t[i][1] + 1;
	}
	return neg && next <= CP_MAX ? rx_range(ps, next, CP_MAX) : 0;
}

static int rx_class_escape(struct rx_parse *ps, int letter)
{
	bool neg = letter == 'D' || letter == 'W' || letter == 'S';

	switch (letter | 0x20) {
	case 'd': return rx_table(ps, rx_digit, ARRAY_SIZE(rx_digit), neg);
	case 'w': return rx_table(ps, rx_word, ARRAY_SIZE(rx_word), neg);
	default: return rx_table(ps, rx_space, ARRAY_SIZE(rx_space), neg);
	}
}

static int rx_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Turn the ranges added since lo into a SET node: sorted, merged, and
 * complemented when neg, so matching is a binary search. */
static int rx_set(struct rx_parse *ps, uint32_t lo, bool neg)
{
	struct rx *rx = ps->rx;
	uint32_t (*r)[2], (*copy)[2], i, m = 0, n = rx->nrg - lo;
	int node;

	if (ps->failed)
		return -1;
	if (n) {
		r = rx->rg + lo;
		qsort(r, n, sizeof(*r), rx_cmp);
		for (i = 0; i < n; i++) {
			if (m && r[i][0] <= r[m - 1][1] + 1) {
				r[m - 1][1] = MAX(r[m - 1][1], r[i][1]);
			} else {
				r[m][0] = r[i][0];
				r[m][1] = r[i][1];
				m++;
			}
		}
	}
	rx->nrg = lo + m;
	if (neg) {
		copy = xmalloc((m ? m : 1) * sizeof(*copy));
		if (m)
			memcpy(copy, rx->rg + lo, m * sizeof(*copy));
		rx->nrg = lo;
		rx_table(ps, (const uint32_t (*)[2])copy, m, true);
		free(copy);
		if (ps->failed)
			return -1;
	}
	node = rx_node(ps, RN_SET);
	ps->nd[node].lo = lo;
	ps->nd[node].n = rx->nrg - lo;
	return node;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* n hex digits at p; false (p unchanged) when they are not there. */
static bool rx_hexn(const struct rx_parse *ps, const unsigned char *p, int n, uint32_t *cp)
{
	int i;

	if (ps->end - p < n)
		return false;
	for (*cp = 0, i = 0; i < n; i++) {
		if (hexval(p[i]) < 0)
			return false;
		*cp = *cp * 16 + (uint32_t)hexval(p[i]);
	}
	return true;
}

/* The escape after a backslash: 'c' with *cp for one code point, a class
 * letter (d D w W s S), 'b'/'B' for word boundaries (outside classes), or -1. */
static int rx_escape(struct rx_parse *ps, bool in_class, uint32_t *cp)
{
	static const char ctl[] = "t\tn\nv\vf\fr\r";
	const char *q;
	uint32_t lo;
	size_t adv;
	int c;

	if (ps->p >= ps->end)
		return rx_fail(ps, "trailing backslash");
	c = *ps->p++;
	if (c && strchr("dDwWsS", c))
		return c;
	if ((c == 'b' || c == 'B') && !in_class)
		return c;
	if (c == 'b') {
		*cp = 8;
		return 'c';
	}
	if (c && (q = strchr(ctl, c)) && (q - ctl) % 2 == 0) {
		*cp = (uint32_t)q[1];
		return 'c';
	}
	if (c == '0' && (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')) {
		*cp = 0;
		return 'c';
	}
	if (c == 'c' && ps->p < ps->end && ((*ps->p | 0x20) >= 'a' && (*ps->p | 0x20) <= 'z')) {
		*cp = *ps->p++ % 32;
		return 'c';
	}
	if (c == 'x' || c == 'u') {
		if (c == 'u' && ps->p < ps->end && *ps->p == '{')
			return rx_fail(ps, "\\u{...} escapes are not supported");
		if (!rx_hexn(ps, ps->p, c == 'x' ? 2 : 4, cp))
			return rx_fail(ps, "malformed \\%c escape", c);
		ps->p += c == 'x' ? 2 : 4;
		/* a UTF-16 surrogate pair written as two escapes is one code point */
		if (*cp >= 0xD800 && *cp <= 0xDBFF && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
		    ps->p[1] == 'u' && rx_hexn(ps, ps->p + 2, 4, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
			*cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
			ps->p += 6;
		}
		return 'c';
	}
	if (c >= 0x80) {
		ps->p--;
		*cp = utf8_next(ps->p, (size_t)(ps->end - ps->p), &adv);
		ps->p += adv;
		return 'c';
	}
	if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && !(c >= '0' && c <= '9')) {
		*cp = (uint32_t)c;
		return 'c';
	}
	ps->p--;
	if (c >= '1' && c <= '9')
		return rx_fail(ps, "backreferences are not supported");
	return rx_fail(ps, "unsupported escape \\%c", c);
}

static int rx_literal(struct rx_parse *ps, uint32_t *cp)
{
	size_t adv;

	*cp = utf8_next(ps->p, (size_t)(ps->end - ps->p), &adv);
	ps->p += adv;
	return 'c';
}

static int rx_class(struct rx_parse *ps)
{
	uint32_t lo = ps->rx->nrg, a, b;
	bool neg = false;
	int k, k2;

	ps->p++;
	if (ps->p < ps->end && *ps->p == '^') {
		neg = true;
		ps->p++;
	}
	for (;;) {
		if (ps->p >= ps->end)
			return rx_fail(ps, "unterminated character class");
		if (*ps->p == ']')
			break;
		k = *ps->p == '\\' ? (ps->p++, rx_escape(ps, true, &a)) : rx_literal(ps, &a);
		if (k < 0)
			return -1;
		if (ps->end - ps->p >= 2 && ps->p[0] == '-' && ps->p[1] != ']') {
			ps->p++;
			k2 = *ps->p == '\\' ? (ps->p++, rx_escape(ps, true, &b)) : rx_literal(ps, &b);
			if (k2 < 0)
				return -1;
			if (k != 'c' || k2 != 'c')
				return rx_fail(ps, "class escape used as a range end");
			if (a > b)
				return rx_fail(ps, "range out of order in character class");
			if (rx_range(ps, a, b) < 0)
				return -1;
		} else if ((k == 'c' ? rx_range(ps, a, a) : rx_class_escape(ps, k)) < 0) {
			return -1;
		}
	}
	ps->p++;
	return rx_set(ps, lo, neg);
}

static int rx_number(struct rx_parse *ps, int *v)
{
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
		return 0;
	for (*v = 0; ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9'; ps->p++)
		*v = MIN(*v * 10 + (*ps->p - '0'), RX_MAX_COUNT + 1);
	return 1;
}

/* A quantifier at p: 1 with min/max, 0 if none ('{' not followed by a valid
 * count is a literal, as in Annex B), -1 on error. */
static int rx_quant(struct rx_parse *ps, int *min, int *max)
{
	const unsigned char *save = ps->p;

	if (ps->p >= ps->end)
		return 0;
	switch (*ps->p) {
	case '*': *min = 0, *max = -1; ps->p++; break;
	case '+': *min = 1, *max = -1; ps->p++; break;
	case '?': *min = 0, *max = 1; ps->p++; break;
	case '{':
		ps->p++;
		if (!rx_number(ps, min))
			goto literal;
		*max = *min;
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			if (!rx_number(ps, max))
				*max = -1;
		}
		if (ps->p >= ps->end || *ps->p != '}')
			goto literal;
		ps->p++;
		if (*min > RX_MAX_COUNT || *max > RX_MAX_COUNT)
			return rx_fail(ps, "repeat count above %d", RX_MAX_COUNT);
		if (*max >= 0 && *min > *max)
			return rx_fail(ps, "numbers out of order in {} quantifier");
		break;
	default:
		return 0;
	}
	if (ps->p < ps->end && *ps->p == '?') /* lazy: same language */
		ps->p++;
	return 1;
literal:
	ps->p = save;
	return 0;
}

static int rx_alt(struct rx_parse *ps);

static int rx_atom(struct rx_parse *ps)
{
	uint32_t lo = ps->rx->nrg, cp;
	int k, g, min, max;

	switch (*ps->p) {
	case '^': ps->p++; return rx_node(ps, RN_BOL);
	case '$': ps->p++; return rx_node(ps, RN_EOL);
	case '[': return rx_class(ps);
	case '*': case '+': case '?': return rx_fail(ps, "nothing to repeat");
	case '.':
		ps->p++;
		rx_table(ps, rx_newline, ARRAY_SIZE(rx_newline), true);
		return rx_set(ps, lo, false);
	case '(':
		ps->p++;
		if (ps->p < ps->end && *ps->p == '?') {
			if (ps->end - ps->p < 2 || ps->p[1] != ':')
				return rx_fail(ps, "lookaround and named groups are not supported");
			ps->p += 2;
		}
		if (++ps->depth > RX_MAX_NEST)
			return rx_fail(ps, "groups nested deeper than %d", RX_MAX_NEST);
		if ((g = rx_alt(ps)) < 0)
			return -1;
		if (ps->p >= ps->end)
			return rx_fail(ps, "missing )");
		ps->p++;
		ps->depth--;
		return g;
	case '{':
		if (rx_quant(ps, &min, &max))
			return rx_fail(ps, "nothing to repeat");
		break;
	case '\\':
		ps->p++;
		if ((k = rx_escape(ps, false, &cp)) < 0)
			return -1;
		if (k == 'b' || k == 'B')
			return rx_node(ps, k == 'b' ? RN_WORDB : RN_NWORDB);
		if (k != 'c') {
			rx_class_escape(ps, k);
			return rx_set(ps, lo, false);
		}
		rx_range(ps, cp, cp);
		return rx_set(ps, lo, false);
	}
	rx_literal(ps, &cp);
	rx_range(ps, cp, cp);
	return rx_set(ps, lo, false);
}

static int rx_cat(struct rx_parse *ps)
{
	int cat = rx_node(ps, RN_CAT), last = -1, a, r, q, min = 0, max = 0;

	while (ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
		if ((a = rx_atom(ps)) < 0 || (q = rx_quant(ps, &min, &max)) < 0)
			return -1;
		if (q) {
			if (ps->nd[a].kind != RN_SET && ps->nd[a].kind < RN_CAT)
				return rx_fail(ps, "nothing to repeat");
			r = rx_node(ps, RN_REP);
			ps->nd[r].child = a;
			ps->nd[r].min = min;
			ps->nd[r].max = max;
			a = r;
		}
		if (last < 0)
			ps->nd[cat].child = a;
		else
			ps->nd[last].next = a;
		last = a;
	}
	return cat;
}

static int rx_alt(struct rx_parse *ps)
{
	int alt = rx_node(ps, RN_ALT), last = -1, c;

	for (;;) {
		if ((c = rx_cat(ps)) < 0)
			return -1;
		if (last < 0)
			ps->nd[alt].child = c;
		else
			ps->nd[last].next = c;
		last = c;
		if (ps->p >= ps->end || *ps->p != '|')
			return alt;
		ps->p++;
	}
}

/* ---- regex: compile and run ---- */

static uint32_t rx_size(struct rx_parse *ps, int i)
{
	struct rx_node *n = &ps->nd[i];
	uint64_t s = 0, c, k = 0;
	int j;

	if (n->kind == RN_CAT || n->kind == RN_ALT) {
		for (j = n->child; j >= 0; j = ps->nd[j].next, k++)
			s += rx_size(ps, j);
		if (n->kind == RN_ALT && k > 1)
			s += 2 * (k - 1);
	} else if (n->kind == RN_REP) {
		c = rx_size(ps, n->child);
		if (c)
			s = (uint64_t)n->min * c +
			    (n->max < 0 ? c + 2 : (uint64_t)(n->max - n->min) * (c + 1));
	} else {
		s = 1;
	}
	n->size = (uint32_t)MIN(s, (uint64_t)RX_MAX_PROG + 1);
	return n->size;
}

static uint32_t rx_op(struct rx *rx, uint32_t op, uint32_t x, uint32_t y)
{
	rx->prog[rx->nprog] = (struct rx_inst){ op, x, y };
	return rx->nprog++;
}

/* Jumps still to be patched are chained through their target field. */
static void rx_patch(struct rx *rx, uint32_t chain, bool y)
{
	uint32_t next;

	for (; chain != UINT32_MAX; chain = next) {
		next = y ? rx->prog[chain].y : rx->prog[chain].x;
		*(y ? &rx->prog[chain].y : &rx->prog[chain].x) = rx->nprog;
	}
}

static void rx_emit(struct rx *rx, const struct rx_parse *ps, int i)
{
	static const uint32_t ops[] = { OP_SET, OP_BOL, OP_EOL, OP_WORDB, OP_NWORDB };
	const struct rx_node *n = &ps->nd[i];
	uint32_t pc, chain = UINT32_MAX;
	int j, k;

	switch (n->kind) {
	case RN_CAT:
		for (j = n->child; j >= 0; j = ps->nd[j].next)
			rx_emit(rx, ps, j);
		break;
	case RN_ALT:
		for (j = n->child; j >= 0; j = ps->nd[j].next) {
			if (ps->nd[j].next < 0) {
				rx_emit(rx, ps, j);
				break;
			}
			pc = rx_op(rx, OP_SPLIT, rx->nprog + 1, 0);
			rx_emit(rx, ps, j);
			chain = rx_op(rx, OP_JMP, chain, 0);
			rx->prog[pc].y = rx->nprog;
		}
		rx_patch(rx, chain, false);
		break;
	case RN_REP:
		if (!n->size)
			break;
		for (k = 0; k < n->min; k++)
			rx_emit(rx, ps, n->child);
		if (n->max < 0) {
			pc = rx_op(rx, OP_SPLIT, rx->nprog + 1, 0);
			rx_emit(rx, ps, n->child);
			rx_op(rx, OP_JMP, pc, 0);
			rx->prog[pc].y = rx->nprog;
			break;
		}
		for (k = n->min; k < n->max; k++) {
			chain = rx_op(rx, OP_SPLIT, rx->nprog + 1, chain);
			rx_emit(rx, ps, n->child);
		}
		rx_patch(rx, chain, true);
		break;
	default:
		rx_op(rx, ops[n->kind], n->lo, n->n);
	}
}

static void rx_free(struct rx *rx)
{
	if (!rx)
		return;
	free(rx->prog);
	free(rx->rg);
	free(rx->clist);
	free(rx);
}

static struct rx *rx_compile(const char *pat, char *err, size_t errsz)
{
	size_t len = strlen(pat);
	struct rx_parse ps = {
		.p = (const unsigned char *)pat, .start = (const unsigned char *)pat,
		.end = (const unsigned char *)pat + len, .err = err, .errsz = errsz,
	};
	struct rx *rx = xcalloc(1, sizeof(*rx));
	int root = -1;

	ps.rx = rx;
	if (len > SCHEMA_MAX_PATTERN)
		ps.failed = snprintf(err, err ? errsz : 0, "pattern: longer than %d bytes",
				     SCHEMA_MAX_PATTERN) > 0;
	else if ((root = rx_alt(&ps)) >= 0 && ps.p < ps.end)
		rx_fail(&ps, "unmatched )");
	if (!ps.failed && rx_size(&ps, root) > RX_MAX_PROG)
		ps.failed = snprintf(err, err ? errsz : 0, "pattern: too complex (over %d steps "
				     "once repeats are expanded)", RX_MAX_PROG) > 0;
	if (ps.failed) {
		free(ps.nd);
		rx_free(rx);
		return NULL;
	}
	rx->prog = xmalloc((ps.nd[root].size + 1) * sizeof(*rx->prog));
	rx_emit(rx, &ps, root);
	rx_op(rx, OP_MATCH, 0, 0);
	free(ps.nd);
	rx->clist = xmalloc(4 * sizeof(uint32_t) * rx->nprog);
	rx->nlist = rx->clist + rx->nprog;
	rx->mark = rx->nlist + rx->nprog;
	rx->stack = rx->mark + rx->nprog;
	return rx;
}

static bool rx_isword(int32_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool rx_in(const struct rx *rx, const struct rx_inst *in, uint32_t c)
{
	uint32_t lo = in->x, hi = in->x + in->y, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (c < rx->rg[mid][0])
			hi = mid;
		else if (c > rx->rg[mid][1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static void rx_push(struct rx *rx, uint32_t *sp, uint32_t pc, uint32_t gen)
{
	if (rx->mark[pc] != gen) {
		rx->mark[pc] = gen;
		rx->stack[(*sp)++] = pc;
	}
}

/* Follow the empty transitions from pc at a position between prev and cur
 * (-1 at either end) and list the SET instructions reached. Each pc enters
 * once per generation. true when MATCH is reachable. */
static bool rx_add(struct rx *rx, uint32_t *list, uint32_t *cnt, uint32_t pc, uint32_t gen,
		   int32_t prev, int32_t cur)
{
	const struct rx_inst *in;
	uint32_t sp = 0;

	rx_push(rx, &sp, pc, gen);
	while (sp) {
		pc = rx->stack[--sp];
		in = &rx->prog[pc];
		switch (in->op) {
		case OP_MATCH: return true;
		case OP_SET: list[(*cnt)++] = pc; break;
		case OP_JMP: rx_push(rx, &sp, in->x, gen); break;
		case OP_SPLIT:
			rx_push(rx, &sp, in->y, gen);
			rx_push(rx, &sp, in->x, gen);
			break;
		case OP_BOL:
		case OP_EOL:
			if ((in->op == OP_BOL ? prev : cur) < 0)
				rx_push(rx, &sp, pc + 1, gen);
			break;
		default:
			if ((rx_isword(prev) != rx_isword(cur)) == (in->op == OP_WORDB))
				rx_push(rx, &sp, pc + 1, gen);
		}
	}
	return false;
}

/* Unanchored search: a new thread starts at every position. */
static bool rx_exec(struct rx *rx, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t *cl = rx->clist, *nl = rx->nlist, *t, nc = 0, nn, gen = 1, j;
	int32_t prev = -1, cur, next;
	size_t i = 0, adv = 0;

	memset(rx->mark, 0, rx->nprog * sizeof(*rx->mark));
	cur = len ? (int32_t)utf8_next(u, len, &adv) : -1;
	for (;;) {
		if (rx_add(rx, cl, &nc, 0, gen, prev, cur))
			return true;
		if (cur < 0)
			return false;
		i += adv;
		next = i < len ? (int32_t)utf8_next(u + i, len - i, &adv) : -1;
		if (++gen == 0) {
			memset(rx->mark, 0, rx->nprog * sizeof(*rx->mark));
			gen = 1;
		}
		for (nn = 0, j = 0; j < nc; j++)
			if (rx_in(rx, &rx->prog[cl[j]], (uint32_t)cur) &&
			    rx_add(rx, nl, &nn, cl[j] + 1, gen, cur, next))
				return true;
		t = cl, cl = nl, nl = t, nc = nn;
		prev = cur, cur = next;
	}
}

int schema_pattern_match(const char *pattern, const char *subject, size_t len, char *err,
			 size_t errsz)
{
	struct rx *rx = rx_compile(pattern, err, errsz);
	int r;

	if (!rx)
		return -EINVAL;
	r = rx_exec(rx, subject, len);
	rx_free(rx);
	return r;
}

/* ---- JSON helpers ---- */

static const cJSON *kw_get(const cJSON *obj, const char *key)
{
	return key && cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static bool is_int(double d)
{
	if (!isfinite(d))
		return false;
	return d >= 9007199254740992.0 || d <= -9007199254740992.0 || (double)(int64_t)d == d;
}

/* Deep equality; numbers compare by value (1 == 1.0). Too deep: unequal. */
static bool json_equal(const cJSON *a, const cJSON *b, int depth)
{
	const cJSON *x, *y;
	int na = 0, nb = 0;

	if (depth > 2 * SCHEMA_MAX_DEPTH)
		return false;
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return a->valuedouble == b->valuedouble;
	if ((a->type & 0xFF) != (b->type & 0xFF))
		return false;
	if (cJSON_IsString(a))
		return a->valuestring && b->valuestring && !strcmp(a->valuestring, b->valuestring);
	if (!cJSON_IsArray(a) && !cJSON_IsObject(a))
		return true; /* null, true, false */
	for (x = a->child; x; x = x->next)
		na++;
	for (y = b->child; y; y = y->next)
		nb++;
	if (na != nb)
		return false;
	for (x = a->child, y = b->child; x && y; x = x->next, y = y->next) {
		if (cJSON_IsObject(a) && !(y = kw_get(b, x->string)))
			return false;
		if (!json_equal(x, y, depth + 1))
			return false;
	}
	return true;
}

/* The shortest of %.15g / %.17g that reads back as v. */
static const char *fmt_num(char *buf, size_t sz, double v)
{
	snprintf(buf, sz, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sz, "%.17g", v);
	return buf;
}

/* Append s at *off, keeping the NUL; a cut ends in "...". */
static void append(char *buf, size_t sz, size_t *off, const char *s)
{
	size_t n = strlen(s);

	if (*off + n < sz) {
		memcpy(buf + *off, s, n + 1);
		*off += n;
		return;
	}
	memcpy(buf + *off, s, sz - 1 - *off);
	buf[sz - 1] = '\0';
	memcpy(buf + sz - 4, "...", 3);
	*off = sz - 1;
}

/* A value for a message: strings as they are, the rest as JSON. */
static void append_value(char *buf, size_t sz, size_t *off, const cJSON *v, bool quote)
{
	char *s;

	if (cJSON_IsString(v) && !quote) {
		append(buf, sz, off, v->valuestring);
		return;
	}
	s = cJSON_PrintUnformatted(v);
	append(buf, sz, off, s ? s : "?");
	free(s);
}

static const struct {
	const char *name, *phrase;
} types[] = {
	{ "string", "a string" }, { "number", "a number" }, { "integer", "an integer" },
	{ "object", "an object" }, { "array", "an array" }, { "boolean", "a boolean" },
	{ "null", "null" },
};

static int type_index(const cJSON *t)
{
	size_t i;

	for (i = 0; cJSON_IsString(t) && i < ARRAY_SIZE(types); i++)
		if (!strcmp(t->valuestring, types[i].name))
			return (int)i;
	return -1;
}

static bool type_ok(int t, const cJSON *x)
{
	switch (t) {
	case 0: return cJSON_IsString(x);
	case 1: return cJSON_IsNumber(x);
	case 2: return cJSON_IsNumber(x) && is_int(x->valuedouble);
	case 3: return cJSON_IsObject(x);
	case 4: return cJSON_IsArray(x);
	case 5: return cJSON_IsBool(x);
	case 6: return cJSON_IsNull(x);
	}
	return true; /* unknown name: schema_check rejects it */
}

/* ---- validation ---- */

struct vctx {
	struct schema_errors *errs;
	bool quiet, bad, deep_reported;
	unsigned depth, npath, ncache;
	struct {
		const char *key;
		size_t index;
	} path[SCHEMA_MAX_DEPTH + 2];
	struct {
		const cJSON *node;
		struct rx *rx;
	} cache[4];
	char badmsg[SCHEMA_MSG_MAX];
};

__attribute__((format(printf, 2, 3)))
static int fail(struct vctx *c, const char *fmt, ...)
{
	struct schema_error *e;
	va_list ap;
	unsigned i;

	if (c->quiet)
		return 1;
	if (c->errs->n == SCHEMA_MAX_ERRORS) {
		c->errs->truncated = true;
		return 1;
	}
	e = &c->errs->e[c->errs->n++];
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	e->npath = c->npath;
	e->path = c->npath ? xcalloc(c->npath, sizeof(*e->path)) : NULL;
	for (i = 0; i < c->npath; i++) {
		e->path[i].key = c->path[i].key ? xstrdup(c->path[i].key) : NULL;
		e->path[i].index = c->path[i].index;
	}
	return 1;
}

static bool stop(const struct vctx *c, int n)
{
	return c->bad || (n && (c->quiet || c->errs->truncated));
}

static void push(struct vctx *c, const char *key, size_t index)
{
	c->path[c->npath].key = key;
	c->path[c->npath].index = index;
	c->npath++;
}

static int fail_at(struct vctx *c, const char *key, const char *msg)
{
	int n;

	push(c, key, 0);
	n = fail(c, "%s", msg);
	c->npath--;
	return n;
}

static int v_node(struct vctx *c, const cJSON *s, const cJSON *x);

static int v_child(struct vctx *c, const cJSON *s, const cJSON *x, const char *key, size_t index)
{
	int n;

	push(c, key, index);
	n = v_node(c, s, x);
	c->npath--;
	return n;
}

/* Is x valid against s? Errors are not recorded. */
static bool v_quiet(struct vctx *c, const cJSON *s, const cJSON *x)
{
	bool quiet = c->quiet;
	int n;

	c->quiet = true;
	n = v_node(c, s, x);
	c->quiet = quiet;
	return n == 0;
}

static struct rx *v_rx(struct vctx *c, const cJSON *kw)
{
	char msg[SCHEMA_MSG_MAX - 16];
	struct rx *rx;
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(c->cache); i++)
		if (c->cache[i].node == kw)
			return c->cache[i].rx;
	if (!(rx = rx_compile(kw->valuestring, msg, sizeof(msg)))) {
		c->bad = true;
		snprintf(c->badmsg, sizeof(c->badmsg), "schema error: %s", msg);
		return NULL;
	}
	i = c->ncache++ % ARRAY_SIZE(c->cache);
	rx_free(c->cache[i].rx);
	c->cache[i].node = kw;
	c->cache[i].rx = rx;
	return rx;
}

static int v_type(struct vctx *c, const cJSON *kw, const cJSON *x)
{
	char msg[SCHEMA_MSG_MAX];
	int t[ARRAY_SIZE(types)], n = 0, i;
	size_t off = 0;
	const cJSON *e;

	if (!cJSON_IsArray(kw)) {
		i = type_index(kw);
		return type_ok(i, x) ? 0 : fail(c, "must be %s", types[i].phrase);
	}
	cJSON_ArrayForEach(e, kw) {
		if ((i = type_index(e)) < 0 || type_ok(i, x))
			return 0;
		if (n < (int)ARRAY_SIZE(t))
			t[n++] = i;
	}
	append(msg, sizeof(msg), &off, "must be ");
	for (i = 0; i < n; i++) {
		append(msg, sizeof(msg), &off, i == 0 ? "" : i == n - 1 ? " or " : ", ");
		append(msg, sizeof(msg), &off, types[t[i]].phrase);
	}
	return n ? fail(c, "%s", msg) : 0;
}

static int v_number(struct vctx *c, const char *k, const cJSON *kw, const cJSON *x)
{
	double d = x->valuedouble, l = kw->valuedouble;
	char num[32];

	fmt_num(num, sizeof(num), l);
	if (!strcmp(k, "minimum") && d < l)
		return fail(c, "must be >= %s", num);
	if (!strcmp(k, "maximum") && d > l)
		return fail(c, "must be <= %s", num);
	if (!strcmp(k, "exclusiveMinimum") && d <= l)
		return fail(c, "must be > %s", num);
	if (!strcmp(k, "exclusiveMaximum") && d >= l)
		return fail(c, "must be < %s", num);
	return 0;
}

static int v_count(struct vctx *c, const char *k, const cJSON *kw, size_t have, bool chars)
{
	bool min = !strncmp(k, "min", 3);
	double l = kw->valuedouble;
	char num[32];

	if (min ? (double)have >= l : (double)have <= l)
		return 0;
	fmt_num(num, sizeof(num), l);
	if (chars)
		return fail(c, "must be at %s %s character%s long", min ? "least" : "most", num,
			    l == 1 ? "" : "s");
	return fail(c, "must contain at %s %s item%s", min ? "least" : "most", num, l == 1 ? "" : "s");
}

static int v_object(struct vctx *c, const cJSON *s, const char *k, const cJSON *kw, const cJSON *x)
{
	const cJSON *m, *sub, *props = kw_get(s, "properties");
	int n = 0;

	if (!strcmp(k, "required") && cJSON_IsArray(kw)) {
		cJSON_ArrayForEach(m, kw) {
			if (cJSON_IsString(m) && !kw_get(x, m->valuestring))
				n += fail_at(c, m->valuestring, "is required");
			if (stop(c, n))
				break;
		}
		return n;
	}
	if (!strcmp(k, "properties") && cJSON_IsObject(kw)) {
		cJSON_ArrayForEach(m, x) {
			if ((sub = kw_get(kw, m->string)))
				n += v_child(c, sub, m, m->string, 0);
			if (stop(c, n))
				break;
		}
		return n;
	}
	if (!strcmp(k, "additionalProperties")) {
		cJSON_ArrayForEach(m, x) {
			if (kw_get(props, m->string))
				continue;
			if (cJSON_IsFalse(kw))
				n += fail_at(c, m->string ? m->string : "", "is not allowed");
			else
				n += v_child(c, kw, m, m->string ? m->string : "", 0);
			if (stop(c, n))
				break;
		}
	}
	return n;
}

static int v_array(struct vctx *c, const char *k, const cJSON *kw, const cJSON *x)
{
	const cJSON *e, *sub = kw;
	size_t i = 0;
	int n = 0;

	if (strcmp(k, "items"))
		return cJSON_IsNumber(kw) ? v_count(c, k, kw, (size_t)cJSON_GetArraySize(x), false) : 0;
	if (cJSON_IsArray(kw))
		sub = kw->child;
	for (e = x->child; e && sub; e = e->next, i++) {
		n += v_child(c, sub, e, NULL, i);
		if (stop(c, n))
			break;
		if (cJSON_IsArray(kw))
			sub = sub->next;
	}
	return n;
}

static int v_combine(struct vctx *c, const char *k, const cJSON *kw, const cJSON *x)
{
	bool all = !strcmp(k, "allOf"), any = !strcmp(k, "anyOf");
	const cJSON *sub;
	int n = 0, ok = 0;

	if (!cJSON_IsArray(kw))
		return 0;
	cJSON_ArrayForEach(sub, kw) {
		if (all) { /* each branch reports its own errors */
			n += v_node(c, sub, x);
			if (stop(c, n))
				return n;
		} else if (v_quiet(c, sub, x) && (++ok > 1 || any)) {
			break;
		}
		if (c->bad)
			return 1;
	}
	if (all || ok == 1)
		return n;
	if (any)
		return fail(c, "must match at least one of the allowed schemas");
	return fail(c, ok ? "must match only one of the allowed schemas, but matches several"
			  : "must match one of the allowed schemas");
}

static int v_keyword(struct vctx *c, const cJSON *s, const cJSON *kw, const cJSON *x)
{
	const char *k = kw->string;
	char msg[SCHEMA_MSG_MAX];
	const cJSON *e;
	size_t off = 0;
	struct rx *rx;

	if (!k)
		return 0;
	if (!strcmp(k, "type"))
		return v_type(c, kw, x);
	if (!strcmp(k, "enum") && cJSON_IsArray(kw)) {
		cJSON_ArrayForEach(e, kw)
			if (json_equal(e, x, 0))
				return 0;
		if (c->quiet)
			return 1;
		append(msg, sizeof(msg), &off, "must be one of: ");
		cJSON_ArrayForEach(e, kw) {
			append(msg, sizeof(msg), &off, e == kw->child ? "" : ", ");
			append_value(msg, sizeof(msg), &off, e, false);
		}
		return fail(c, "%s", msg);
	}
	if (!strcmp(k, "const")) {
		if (json_equal(kw, x, 0))
			return 0;
		if (c->quiet)
			return 1;
		append(msg, sizeof(msg), &off, "must be equal to ");
		append_value(msg, sizeof(msg), &off, kw, true);
		return fail(c, "%s", msg);
	}
	if (!strcmp(k, "allOf") || !strcmp(k, "anyOf") || !strcmp(k, "oneOf"))
		return v_combine(c, k, kw, x);
	if (cJSON_IsNumber(x) && cJSON_IsNumber(kw))
		return v_number(c, k, kw, x);
	if (cJSON_IsString(x) && cJSON_IsNumber(kw) && (!strcmp(k, "minLength") || !strcmp(k, "maxLength")))
		return v_count(c, k, kw, utf8_count(x->valuestring), true);
	if (cJSON_IsString(x) && cJSON_IsString(kw) && !strcmp(k, "pattern")) {
		if (!(rx = v_rx(c, kw)))
			return 1;
		if (rx_exec(rx, x->valuestring, strlen(x->valuestring)))
			return 0;
		return fail(c, "must match pattern %s", kw->valuestring);
	}
	if (cJSON_IsArray(x) && (!strcmp(k, "items") || !strcmp(k, "minItems") || !strcmp(k, "maxItems")))
		return v_array(c, k, kw, x);
	if (cJSON_IsObject(x))
		return v_object(c, s, k, kw, x);
	return 0;
}

static int v_node(struct vctx *c, const cJSON *s, const cJSON *x)
{
	const cJSON *kw;
	int n = 0;

	if (cJSON_IsBool(s))
		return cJSON_IsTrue(s) ? 0 : fail(c, "is not allowed");
	if (!cJSON_IsObject(s))
		return 0;
	if (c->depth >= SCHEMA_MAX_DEPTH) {
		if (c->quiet || c->deep_reported)
			return 1;
		c->deep_reported = true;
		return fail(c, "is nested too deeply (more than %d levels)", SCHEMA_MAX_DEPTH);
	}
	c->depth++;
	cJSON_ArrayForEach(kw, s) {
		n += v_keyword(c, s, kw, x);
		if (stop(c, n))
			break;
	}
	c->depth--;
	return n;
}

int schema_validate(const cJSON *schema, const cJSON *instance, struct schema_errors *errs)
{
	struct vctx c;
	unsigned i;
	int n;

	memset(&c, 0, sizeof(c));
	c.errs = errs;
	c.quiet = !errs;
	if (errs) {
		errs->n = 0;
		errs->truncated = false;
	}
	if (!schema || !instance)
		return -EINVAL;
	n = v_node(&c, schema, instance);
	for (i = 0; i < ARRAY_SIZE(c.cache); i++)
		rx_free(c.cache[i].rx);
	if (c.bad) {
		if (errs) {
			schema_errors_free(errs);
			c.quiet = false;
			c.npath = 0;
			fail(&c, "%s", c.badmsg);
		}
		return -EINVAL;
	}
	return errs ? (int)errs->n : n > 0;
}

void schema_errors_free(struct schema_errors *errs)
{
	size_t i, j;

	if (!errs)
		return;
	for (i = 0; i < errs->n && i < SCHEMA_MAX_ERRORS; i++) {
		for (j = 0; j < errs->e[i].npath; j++)
			free(errs->e[i].path[j].key);
		free(errs->e[i].path);
		errs->e[i].path = NULL;
		errs->e[i].npath = 0;
	}
	errs->n = 0;
	errs->truncated = false;
}

cJSON *schema_errors_to_json(const struct schema_errors *errs)
{
	cJSON *arr = cJSON_CreateArray(), *o, *path;
	const struct schema_error *e;
	size_t i, j;

	for (i = 0; arr && errs && i < errs->n; i++) {
		e = &errs->e[i];
		o = cJSON_CreateObject();
		path = cJSON_AddArrayToObject(o, "path");
		for (j = 0; j < e->npath; j++)
			cJSON_AddItemToArray(path, e->path[j].key ? cJSON_CreateString(e->path[j].key)
								   : cJSON_CreateNumber((double)e->path[j].index));
		cJSON_AddStringToObject(o, "message", e->message);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/* ---- checking a schema ---- */

struct cctx {
	char *err;
	size_t errsz, plen;
	char ptr[160]; /* JSON pointer of the schema being checked */
};

__attribute__((format(printf, 3, 4)))
static int c_fail(struct cctx *c, const char *kw, const char *fmt, ...)
{
	char msg[SCHEMA_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errsz)
		snprintf(c->err, c->errsz, "at %s: %s%s%s%s", c->plen ? c->ptr : "/", kw ? "\"" : "",
			 kw ? kw : "", kw ? "\" " : "", msg);
	return -EINVAL;
}

/* Append "/seg" (escaped as a JSON pointer); returns the length to restore. */
static size_t c_push(struct cctx *c, const char *seg, size_t index)
{
	size_t old = c->plen;
	char num[24];

	if (!seg) {
		snprintf(num, sizeof(num), "%zu", index);
		seg = num;
	}
	if (c->plen + 3 >= sizeof(c->ptr))
		return old; /* a pointer this long is cut short */
	for (c->ptr[c->plen++] = '/'; *seg && c->plen + 3 < sizeof(c->ptr); seg++) {
		if (*seg == '~' || *seg == '/')
			c->ptr[c->plen++] = '~';
		c->ptr[c->plen++] = *seg == '~' ? '0' : *seg == '/' ? '1' : *seg;
	}
	c->ptr[c->plen] = '\0';
	return old;
}

static void c_pop(struct cctx *c, size_t old)
{
	c->plen = old;
	c->ptr[old] = '\0';
}

static int c_node(struct cctx *c, const cJSON *s, unsigned depth);

static int c_sub(struct cctx *c, const char *kw, const char *key, size_t index, const cJSON *s,
		 unsigned depth)
{
	size_t old = c_push(c, kw, 0);
	int r;

	if (key || index != SIZE_MAX)
		c_push(c, key, index);
	r = c_node(c, s, depth + 1);
	c_pop(c, old);
	return r;
}

static bool all_strings(const cJSON *arr, bool types_only)
{
	const cJSON *e, *f;

	cJSON_ArrayForEach(e, arr) {
		if (!cJSON_IsString(e) || (types_only && type_index(e) < 0))
			return false;
		for (f = arr->child; f != e; f = f->next)
			if (!strcmp(f->valuestring, e->valuestring))
				return false;
	}
	return true;
}

static int c_keyword(struct cctx *c, const cJSON *kw, unsigned depth)
{
	static const char *const numbers[] = { "minimum", "maximum", "exclusiveMinimum",
		"exclusiveMaximum" };
	static const char *const counts[] = { "minLength", "maxLength", "minItems", "maxItems" };
	const char *k = kw->string;
	char msg[SCHEMA_MSG_MAX];
	const cJSON *e;
	struct rx *rx;
	size_t i = 0;
	int r;

	if (!k)
		return 0;
	if (!strcmp(k, "type") && !(type_index(kw) >= 0 ||
				    (cJSON_IsArray(kw) && kw->child && all_strings(kw, true))))
		return c_fail(c, k, "must be one of string, number, integer, object, array, "
			      "boolean, null, or a non-empty array of distinct ones");
	if (!strcmp(k, "required") && !(cJSON_IsArray(kw) && all_strings(kw, false)))
		return c_fail(c, k, "must be an array of distinct strings");
	if (!strcmp(k, "enum") && !cJSON_IsArray(kw))
		return c_fail(c, k, "must be an array");
	if ((!strcmp(k, "title") || !strcmp(k, "description")) && !cJSON_IsString(kw))
		return c_fail(c, k, "must be a string");
	for (i = 0; i < ARRAY_SIZE(numbers); i++)
		if (!strcmp(k, numbers[i]) && !cJSON_IsNumber(kw))
			return c_fail(c, k, "must be a number");
	for (i = 0; i < ARRAY_SIZE(counts); i++)
		if (!strcmp(k, counts[i]) && !(cJSON_IsNumber(kw) && kw->valuedouble >= 0 &&
					       is_int(kw->valuedouble)))
			return c_fail(c, k, "must be a non-negative integer");
	if (!strcmp(k, "pattern")) {
		if (!cJSON_IsString(kw))
			return c_fail(c, k, "must be a string");
		if (!(rx = rx_compile(kw->valuestring, msg, sizeof(msg))))
			return c_fail(c, NULL, "%s", msg);
		rx_free(rx);
	}
	if (!strcmp(k, "properties")) {
		if (!cJSON_IsObject(kw))
			return c_fail(c, k, "must be an object");
		cJSON_ArrayForEach(e, kw)
			if ((r = c_sub(c, k, e->string ? e->string : "", 0, e, depth)) < 0)
				return r;
	}
	if (!strcmp(k, "additionalProperties") || (!strcmp(k, "items") && !cJSON_IsArray(kw)))
		return c_sub(c, k, NULL, SIZE_MAX, kw, depth);
	if (!strcmp(k, "allOf") || !strcmp(k, "anyOf") || !strcmp(k, "oneOf") || !strcmp(k, "items")) {
		if (!cJSON_IsArray(kw) || (!kw->child && strcmp(k, "items")))
			return c_fail(c, k, "must be a non-empty array of schemas");
		i = 0;
		cJSON_ArrayForEach(e, kw)
			if ((r = c_sub(c, k, NULL, i++, e, depth)) < 0)
				return r;
	}
	return 0;
}

static int c_node(struct cctx *c, const cJSON *s, unsigned depth)
{
	const cJSON *kw;
	int r;

	if (cJSON_IsBool(s))
		return 0;
	if (!cJSON_IsObject(s))
		return c_fail(c, NULL, "a schema must be an object or a boolean");
	if (depth >= SCHEMA_MAX_DEPTH)
		return c_fail(c, NULL, "schema nested deeper than %d levels", SCHEMA_MAX_DEPTH);
	cJSON_ArrayForEach(kw, s)
		if ((r = c_keyword(c, kw, depth)) < 0)
			return r;
	return 0;
}

int schema_check(const cJSON *schema, char *err, size_t errsz)
{
	struct cctx c = { .err = err, .errsz = errsz };

	if (err && errsz)
		err[0] = '\0';
	return c_node(&c, schema, 0);
}

/* ---- Rendobar fields and defaults ---- */

/* "outputFormat", "output_format" → "Output Format"; "videoURL" → "Video URL". */
static char *title_case(const char *key)
{
	size_t len = strlen(key), i, o = 0;
	char *out = xmalloc(2 * len + 1), ch, prev;
	bool space = false, start = true;

	for (i = 0; i < len; i++) {
		ch = key[i];
		prev = i ? key[i - 1] : 0;
		if (ch == '_' || ch == '-' || ch == ' ' || ch == '.') {
			space = o > 0;
			continue;
		}
		if (ch >= 'A' && ch <= 'Z' && i &&
		    ((prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9') ||
		     (prev >= 'A' && prev <= 'Z' && key[i + 1] >= 'a' && key[i + 1] <= 'z')))
			space = o > 0;
		if (space) {
			out[o++] = ' ';
			start = true;
			space = false;
		}
		out[o++] = start && ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
		start = false;
	}
	out[o] = '\0';
	return out;
}

static const char *field_type(const cJSON *p)
{
	const cJSON *t = kw_get(p, "type"), *e;

	if (cJSON_IsArray(kw_get(p, "enum")))
		return "options";
	if (cJSON_IsArray(t)) { /* ["string", "null"] is a string field */
		cJSON_ArrayForEach(e, t)
			if (type_index(e) >= 0 && type_index(e) != 6)
				break;
		t = e;
	}
	switch (type_index(t)) {
	case 0: return "string";
	case 1: case 2: return "number";
	case 5: return "boolean";
	default: return "json";
	}
}

static cJSON *field(const cJSON *p, bool required)
{
	cJSON *f = cJSON_CreateObject(), *opts, *o;
	const cJSON *e, *v;
	char *label, *s;

	cJSON_AddStringToObject(f, "key", p->string);
	cJSON_AddStringToObject(f, "name", p->string);
	if (cJSON_IsString(v = kw_get(p, "title"))) {
		cJSON_AddStringToObject(f, "label", v->valuestring);
	} else {
		label = title_case(p->string);
		cJSON_AddStringToObject(f, "label", label);
		free(label);
	}
	cJSON_AddStringToObject(f, "type", field_type(p));
	cJSON_AddBoolToObject(f, "required", required);
	if ((v = kw_get(p, "default")))
		cJSON_AddItemToObject(f, "default", cJSON_Duplicate(v, 1));
	if (cJSON_IsArray(v = kw_get(p, "enum"))) {
		opts = cJSON_AddArrayToObject(f, "options");
		cJSON_ArrayForEach(e, v) {
			o = cJSON_CreateObject();
			s = cJSON_IsString(e) ? NULL : cJSON_PrintUnformatted(e);
			cJSON_AddStringToObject(o, "label", s ? s : e->valuestring ? e->valuestring : "");
			free(s);
			cJSON_AddItemToObject(o, "value", cJSON_Duplicate(e, 1));
			cJSON_AddItemToArray(opts, o);
		}
	}
	if (cJSON_IsNumber(v = kw_get(p, "minimum")))
		cJSON_AddNumberToObject(f, "min", v->valuedouble);
	if (cJSON_IsNumber(v = kw_get(p, "maximum")))
		cJSON_AddNumberToObject(f, "max", v->valuedouble);
	if (cJSON_IsNumber(v = kw_get(p, "maxLength")))
		cJSON_AddNumberToObject(f, "maxLength", v->valuedouble);
	if (cJSON_IsString(v = kw_get(p, "description")))
		cJSON_AddStringToObject(f, "description", v->valuestring);
	return f;
}

cJSON *schema_fields(const cJSON *schema)
{
	const cJSON *props = kw_get(schema, "properties"), *req = kw_get(schema, "required"), *p, *r;
	cJSON *out = cJSON_CreateArray();
	bool required;

	if (!out || kw_get(schema, "oneOf") || kw_get(schema, "anyOf") || !cJSON_IsObject(props))
		return out;
	if (!cJSON_IsArray(req))
		req = NULL;
	cJSON_ArrayForEach(p, props) {
		if (!p->string)
			continue;
		required = false;
		cJSON_ArrayForEach(r, req)
			required |= cJSON_IsString(r) && !strcmp(r->valuestring, p->string);
		cJSON_AddItemToArray(out, field(p, required));
	}
	return out;
}

int schema_apply_defaults(const cJSON *schema, cJSON *instance)
{
	const cJSON *p, *def;
	int n = 0;

	if (!cJSON_IsObject(instance))
		return -EINVAL;
	cJSON_ArrayForEach(p, kw_get(schema, "properties")) {
		if (!p->string || !(def = kw_get(p, "default")) || kw_get(instance, p->string))
			continue;
		cJSON_AddItemToObject(instance, p->string, cJSON_Duplicate(def, 1));
		n++;
	}
	return n;
}
