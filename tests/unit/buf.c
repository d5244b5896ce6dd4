/* Unit test for buf.c: byte buffer, fixed buffers, JSON writer (structure,
 * escaping, UTF-8 repair, round trip through cJSON), UTF-8 checks, money. */
#include "jobring/buf.h"
#include "jobring/util.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>

#define FFFD "\xEF\xBF\xBD"

/* ---- byte buffer --------------------------------------------------------- */

static void test_buf(void)
{
	struct buf b;
	const char *old;
	size_t cap, changes = 0, last = 0;

	buf_init(&b);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_EQ(buf_append(&b, "hello", 5), 0);
	CHECK_EQ(buf_putc(&b, ' '), 0);
	CHECK_EQ(buf_puts(&b, "world"), 0);
	CHECK_EQ(b.len, 11);
	CHECK_STR(b.data, "hello world");
	CHECK_EQ(buf_printf(&b, "%s-%d", "x", 42), 4);
	CHECK_STR(b.data, "hello worldx-42");

	/* A printf that does not fit the current capacity grows and retries. */
	cap = b.cap;
	CHECK_EQ(buf_printf(&b, "%0*d", (int)cap, 7), (int)cap);
	CHECK_EQ(b.len, 15 + cap);
	CHECK(b.cap > b.len);
	CHECK_EQ(b.data[b.len - 1], '7');
	CHECK_EQ(b.data[15], '0');
	CHECK_EQ(b.data[b.len], '\0');

	buf_consume(&b, 6);
	CHECK(strncmp(b.data, "worldx-42000", 12) == 0);
	CHECK_EQ(b.len, 9 + cap);
	buf_consume(&b, b.len + 100);
	CHECK_EQ(b.len, 0);
	CHECK_STR(b.data, "");

	/* reset keeps the memory. */
	buf_puts(&b, "abc");
	old = b.data;
	cap = b.cap;
	buf_reset(&b);
	CHECK_EQ(b.len, 0);
	CHECK(b.data == old && b.cap == cap);
	CHECK_STR(buf_cstr(&b), "");

	/* reserve + commit, as a read() into the buffer would. */
	CHECK_EQ(buf_reserve(&b, 3), 0);
	memcpy(b.data + b.len, "xyz", 3);
	buf_commit(&b, 3);
	CHECK_STR(b.data, "xyz");

	/* Growth is geometric: a million 1-byte appends, few reallocs. */
	for (int i = 0; i < 1000000; i++) {
		CHECK_EQ(buf_putc(&b, (char)('a' + i % 26)), 0);
		if (b.cap != last) {
			changes++;
			last = b.cap;
		}
	}
	CHECK(changes <= 16);
	CHECK_EQ(b.len, 1000003);
	CHECK_EQ(b.data[1000002], 'a' + 999999 % 26);
	buf_free(&b);
	CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
	buf_free(&b);
	buf_free(NULL);

	/* A limit stops growth without touching the content. */
	buf_init(&b);
	buf_set_limit(&b, 10);
	CHECK_EQ(buf_append(&b, "0123456789", 10), 0);
	CHECK_EQ(buf_putc(&b, 'x'), -ENOBUFS);
	CHECK_EQ(buf_printf(&b, "%d", 1), -ENOBUFS);
	CHECK_EQ(buf_append(&b, "", 0), 0);
	CHECK_STR(b.data, "0123456789");
	buf_consume(&b, 5);
	CHECK_EQ(buf_printf(&b, "%s", "abcde"), 5);
	CHECK_STR(b.data, "56789abcde");
	buf_set_limit(&b, 0);
	CHECK_EQ(buf_putc(&b, 'f'), 0);
	buf_free(&b);
}

static void test_fixed(void)
{
	char mem[32];
	struct buf b;

	memset(mem, 0xA5, sizeof(mem));
	buf_init_fixed(&b, mem, 8);
	CHECK_EQ(buf_append(&b, "abcdefg", 7), 0); /* 7 + terminator = 8 */
	CHECK_STR(b.data, "abcdefg");
	CHECK_EQ(buf_putc(&b, 'h'), -ENOBUFS);
	CHECK_EQ(buf_append(&b, "h", 1), -ENOBUFS);
	CHECK_EQ(buf_reserve(&b, 1), -ENOBUFS);
	CHECK_EQ(b.len, 7);
	CHECK_STR(b.data, "abcdefg");
	buf_consume(&b, 4);
	CHECK_EQ(buf_printf(&b, "%d", 123), 3);
	CHECK_STR(b.data, "efg123");
	CHECK_EQ(buf_printf(&b, "%d", 45), -ENOBUFS);
	CHECK_STR(b.data, "efg123");
	for (size_t i = 8; i < sizeof(mem); i++)
		CHECK_EQ((unsigned char)mem[i], 0xA5);
	buf_free(&b);
	CHECK(b.data == NULL);
	CHECK_EQ((unsigned char)mem[8], 0xA5); /* not freed, not touched */

	/* A JSON value that does not fit is cut back off whole. */
	{
		struct jw w;

		buf_init_fixed(&b, mem, 16);
		jw_init(&w, &b);
		CHECK_EQ(jw_arr_begin(&w), 0);
		CHECK_EQ(jw_int(&w, 12345), 0);
		CHECK_EQ(jw_str(&w, "\n\n\n\n"), -ENOBUFS); /* fits unescaped */
		CHECK_EQ(b.len, 6);
		CHECK_STR(b.data, "[12345");
		CHECK_EQ(jw_arr_end(&w), -ENOBUFS); /* sticky */
		CHECK_EQ(jw_finish(&w), -ENOBUFS);
		CHECK_STR(b.data, "[12345");
		CHECK_EQ((unsigned char)mem[16], 0xA5);
	}

	memset(mem, 0xA5, sizeof(mem));
	buf_init_fixed(&b, mem, 0);
	CHECK_EQ(buf_putc(&b, 'a'), -ENOBUFS);
	CHECK_EQ(buf_printf(&b, "a"), -ENOBUFS);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_EQ((unsigned char)mem[0], 0xA5);
}

/* ---- JSON writer: structure ---------------------------------------------- */

static void test_structure(void)
{
	struct buf b;
	struct jw w;
	const char *want;

	buf_init(&b);
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_key(&w, "a");
	jw_arr_begin(&w);
	jw_int(&w, 1);
	jw_uint(&w, 2);
	jw_obj_begin(&w);
	jw_kv_null(&w, "b");
	jw_key(&w, "c");
	jw_arr_begin(&w);
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_arr_end(&w);
	jw_key(&w, "d");
	jw_obj_begin(&w);
	jw_obj_end(&w);
	jw_kv_bool(&w, "e", true);
	jw_kv_int(&w, "f", INT64_MIN);
	jw_kv_uint(&w, "g", UINT64_MAX);
	jw_key(&w, "h");
	jw_double(&w, 0.1);
	jw_kv_str(&w, "i", "x");
	jw_key(&w, "j");
	jw_arr_begin(&w);
	jw_arr_begin(&w);
	jw_arr_end(&w);
	jw_arr_begin(&w);
	jw_raw(&w, "{\"r\":[1]}", 9);
	jw_str(&w, NULL);
	jw_bool(&w, false);
	jw_arr_end(&w);
	jw_arr_end(&w);
	jw_key(&w, "m");
	jw_money(&w, 100000000);
	jw_kv_int(&w, "z", 0);
	CHECK_EQ(jw_finish(&w), -EINVAL); /* still open */
	CHECK_EQ(jw_obj_end(&w), 0);
	CHECK_EQ(jw_finish(&w), 0);
	want = "{\"a\":[1,2,{\"b\":null,\"c\":[]}],\"d\":{},\"e\":true,"
	       "\"f\":-9223372036854775808,\"g\":18446744073709551615,\"h\":0.1,"
	       "\"i\":\"x\",\"j\":[[],[{\"r\":[1]},null,false]],"
	       "\"m\":{\"amount\":100000000,\"currency\":\"USD\",\"formatted\":\"$0.10\"},"
	       "\"z\":0}";
	CHECK_STR(b.data, want);

	/* Scalars at the top level; the writer appends to existing content. */
	buf_reset(&b);
	buf_puts(&b, "data: ");
	jw_init(&w, &b);
	CHECK_EQ(jw_finish(&w), -EINVAL); /* nothing written yet */
	CHECK_EQ(jw_int(&w, -5), 0);
	CHECK_EQ(jw_finish(&w), 0);
	CHECK_STR(b.data, "data: -5");
	CHECK_EQ(jw_int(&w, 6), -EINVAL); /* a second top-level value */
	CHECK_EQ(jw_null(&w), -EINVAL);   /* sticky */
	CHECK_EQ(jw_finish(&w), -EINVAL);
	CHECK_STR(b.data, "data: -5");

	/* Misuse: each is -EINVAL, leaves the buffer as before the call, and
	 * the error sticks. */
	struct {
		int steps; /* 1 obj, 2 arr, 3 key, 4 int, 5 obj_end, 6 arr_end */
		int seq[4];
	} bad[] = {
		{ 1, { 3 } },          /* key at the top level */
		{ 2, { 2, 3 } },       /* key in an array */
		{ 2, { 1, 4 } },       /* value without a key */
		{ 3, { 1, 3, 3 } },    /* two keys in a row */
		{ 3, { 1, 3, 5 } },    /* end right after a key */
		{ 2, { 1, 6 } },       /* ] closes { */
		{ 2, { 2, 5 } },       /* } closes [ */
		{ 1, { 5 } },          /* end at depth 0 */
		{ 3, { 2, 6, 6 } },    /* one end too many */
	};
	for (size_t t = 0; t < ARRAY_SIZE(bad); t++) {
		int r = 0;

		buf_reset(&b);
		jw_init(&w, &b);
		for (int i = 0; i < bad[t].steps; i++) {
			size_t before = b.len;

			switch (bad[t].seq[i]) {
			case 1: r = jw_obj_begin(&w); break;
			case 2: r = jw_arr_begin(&w); break;
			case 3: r = jw_key(&w, "k"); break;
			case 4: r = jw_int(&w, 1); break;
			case 5: r = jw_obj_end(&w); break;
			case 6: r = jw_arr_end(&w); break;
			}
			if (i < bad[t].steps - 1) {
				CHECK_EQ(r, 0);
			} else {
				CHECK_EQ(r, -EINVAL);
				CHECK_EQ(b.len, before);
			}
		}
		CHECK_EQ(jw_arr_begin(&w), -EINVAL);
		CHECK_EQ(jw_finish(&w), -EINVAL);
	}

	/* Depth: JW_MAX_DEPTH levels are fine, one more is -E2BIG. */
	buf_reset(&b);
	jw_init(&w, &b);
	for (int i = 0; i < JW_MAX_DEPTH; i++) {
		/* Alternate {"k":[{"k":[...: a key only inside objects. */
		if (i % 2) {
			CHECK_EQ(jw_key(&w, "k"), 0);
			CHECK_EQ(jw_arr_begin(&w), 0);
		} else {
			CHECK_EQ(jw_obj_begin(&w), 0);
		}
	}
	CHECK_EQ(jw_arr_begin(&w), -E2BIG);
	CHECK_EQ(jw_finish(&w), -E2BIG);
	buf_reset(&b);
	jw_init(&w, &b);
	for (int i = 0; i < JW_MAX_DEPTH; i++)
		CHECK_EQ(jw_arr_begin(&w), 0);
	for (int i = 0; i < JW_MAX_DEPTH; i++)
		CHECK_EQ(jw_arr_end(&w), 0);
	CHECK_EQ(jw_finish(&w), 0);
	CHECK_EQ(b.len, 2 * JW_MAX_DEPTH);
	buf_free(&b);
}

/* ---- JSON writer: strings ------------------------------------------------ */

/* The JSON string jw_strn must produce for s[0..n) (ASCII input only): an
 * independent, slow oracle. */
static void expect_ascii(struct buf *out, const char *s, size_t n)
{
	buf_putc(out, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': buf_puts(out, "\\\""); break;
		case '\\': buf_puts(out, "\\\\"); break;
		case '\b': buf_puts(out, "\\b"); break;
		case '\f': buf_puts(out, "\\f"); break;
		case '\n': buf_puts(out, "\\n"); break;
		case '\r': buf_puts(out, "\\r"); break;
		case '\t': buf_puts(out, "\\t"); break;
		default:
			if (c < 0x20)
				buf_printf(out, "\\u%04x", c);
			else
				buf_putc(out, (char)c);
		}
	}
	buf_putc(out, '"');
}

static const char *str_json(struct buf *b, const char *s, size_t n)
{
	struct jw w;

	buf_reset(b);
	jw_init(&w, b);
	CHECK_EQ(jw_strn(&w, s, n), 0);
	CHECK_EQ(jw_finish(&w), 0);
	CHECK(utf8_valid(b->data, b->len));
	return b->data;
}

static void test_escapes(void)
{
	struct buf b, want;
	char all[128];
	static const struct {
		const char *in, *out;
	} cases[] = {
		/* Well-formed non-ASCII passes through, except U+2028/9. */
		{ "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"" },
		{ "a\xE2\x80\xA8" "b\xE2\x80\xA9", "\"a\\u2028b\\u2029\"" },
		{ "\xE2\x80\xA7\xE2\x80\xAA", "\"\xE2\x80\xA7\xE2\x80\xAA\"" },
		{ "\xF4\x8F\xBF\xBF\xEF\xBF\xBF\xED\x9F\xBF\xEE\x80\x80",
		  "\"\xF4\x8F\xBF\xBF\xEF\xBF\xBF\xED\x9F\xBF\xEE\x80\x80\"" },
		{ "/<>'\x7F", "\"/<>'\x7F\"" },
		/* Ill-formed: one U+FFFD per maximal subpart. */
		{ "\xFF", "\"" FFFD "\"" },
		{ "a\x80z", "\"a" FFFD "z\"" },
		{ "\xC0\xAF", "\"" FFFD FFFD "\"" },             /* overlong '/' */
		{ "\xC1\xBF", "\"" FFFD FFFD "\"" },
		{ "\xE0\x80\xAF", "\"" FFFD FFFD FFFD "\"" },    /* overlong */
		{ "\xF0\x80\x80\xAF", "\"" FFFD FFFD FFFD FFFD "\"" },
		{ "\xED\xA0\x80", "\"" FFFD FFFD FFFD "\"" },    /* surrogate */
		{ "\xED\xBF\xBF", "\"" FFFD FFFD FFFD "\"" },
		{ "\xF4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"" }, /* > U+10FFFF */
		{ "\xF5\x80", "\"" FFFD FFFD "\"" },
		{ "\xE2\x82", "\"" FFFD "\"" },                  /* truncated */
		{ "\xE2\x82z", "\"" FFFD "z\"" },
		{ "\xF0\x9F\x98", "\"" FFFD "\"" },
		{ "\xF0\x9F\x98\xE2\x82\xAC", "\"" FFFD "\xE2\x82\xAC\"" },
		{ "\xC3", "\"" FFFD "\"" },
		{ "\xC3\xC3\xA9", "\"" FFFD "\xC3\xA9\"" },
		{ "\xF8\x88\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD FFFD "\"" },
		{ "\xFE\xFF\"", "\"" FFFD FFFD "\\\"\"" },
	};

	buf_init(&b);
	buf_init(&want);

	/* Every ASCII byte, against the slow oracle. */
	for (int i = 0; i < 128; i++)
		all[i] = (char)i;
	expect_ascii(&want, all, sizeof(all));
	CHECK_STR(str_json(&b, all, sizeof(all)), want.data);
	CHECK_STR(str_json(&b, "a\0b\"\\\n\x1f", 7), "\"a\\u0000b\\\"\\\\\\n\\u001f\"");
	CHECK_STR(str_json(&b, "\b\f\n\r\t", 5), "\"\\b\\f\\n\\r\\t\"");
	CHECK_STR(str_json(&b, "", 0), "\"\"");

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		CHECK_STR(str_json(&b, cases[i].in, strlen(cases[i].in)), cases[i].out);

	/* Keys are escaped the same way. */
	{
		struct jw w;

		buf_reset(&b);
		jw_init(&w, &b);
		jw_obj_begin(&w);
		jw_kv_str(&w, "a\"b\xFF\n", "\xE2\x80\xA8");
		jw_obj_end(&w);
		CHECK_EQ(jw_finish(&w), 0);
		CHECK_STR(b.data, "{\"a\\\"b" FFFD "\\n\":\"\\u2028\"}");
	}
	buf_free(&b);
	buf_free(&want);
}

static void test_utf8(void)
{
	static const struct {
		const char *s;
		int valid;
		size_t cps;
	} t[] = {
		{ "", 1, 0 },
		{ "abc", 1, 3 },
		{ "\xC2\x80", 1, 1 },                 /* U+0080 */
		{ "\xDF\xBF", 1, 1 },                 /* U+07FF */
		{ "\xE0\xA0\x80", 1, 1 },             /* U+0800 */
		{ "\xED\x9F\xBF", 1, 1 },             /* U+D7FF */
		{ "\xEE\x80\x80", 1, 1 },             /* U+E000 */
		{ "\xEF\xBF\xBF", 1, 1 },             /* U+FFFF */
		{ "\xF0\x90\x80\x80", 1, 1 },         /* U+10000 */
		{ "\xF4\x8F\xBF\xBF", 1, 1 },         /* U+10FFFF */
		{ "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 1, 4 },
		{ "\xC0\x80", 0, 2 },                 /* overlong NUL */
		{ "\xC1\xBF", 0, 2 },                 /* overlong */
		{ "\xE0\x9F\xBF", 0, 3 },             /* overlong U+07FF */
		{ "\xF0\x8F\xBF\xBF", 0, 4 },         /* overlong U+FFFF */
		{ "\xED\xA0\x80", 0, 3 },             /* U+D800 */
		{ "\xED\xBF\xBF", 0, 3 },             /* U+DFFF */
		{ "\xF4\x90\x80\x80", 0, 4 },         /* U+110000 */
		{ "\xF7\xBF\xBF\xBF", 0, 4 },
		{ "\xF8\x88\x80\x80\x80", 0, 5 },     /* 5-byte form */
		{ "\xFC\x84\x80\x80\x80\x80", 0, 6 }, /* 6-byte form */
		{ "\x80", 0, 1 },                     /* lone continuation */
		{ "\xBF", 0, 1 },
		{ "\xC3", 0, 1 },                     /* truncated */
		{ "\xE2\x82", 0, 1 },
		{ "\xF0\x9F\x98", 0, 1 },
		{ "\xF0\x9F\x98z", 0, 2 },
		{ "\xFE", 0, 1 },
		{ "\xFF", 0, 1 },
		{ "ok\xE2\x82\xAC\xE2\x82", 0, 4 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		size_t n = strlen(t[i].s);

		if (utf8_valid(t[i].s, n) != t[i].valid ||
		    utf8_codepoints(t[i].s, n) != t[i].cps) {
			fprintf(stderr, "utf8 case %zu: valid %d cps %zu\n", i,
				utf8_valid(t[i].s, n), utf8_codepoints(t[i].s, n));
			CHECK(0);
		}
	}
	/* A truncated sequence at the end of the given length, not of the
	 * string, is still truncated. */
	CHECK_EQ(utf8_valid("\xE2\x82\xAC", 2), 0);
	CHECK_EQ(utf8_valid("\xE2\x82\xAC", 3), 1);
	CHECK_EQ(utf8_valid("a\0b", 3), 1);
	CHECK_EQ(utf8_codepoints("a\0b", 3), 3);
}

static void test_double(void)
{
	static const struct {
		double v;
		const char *s;
	} t[] = {
		{ 0.1, "0.1" }, { 1.0, "1" }, { -0.0, "-0" }, { 0.0, "0" },
		{ 1e300, "1e+300" }, { 0.30000000000000004, "0.30000000000000004" },
		{ 1.0 / 3, "0.3333333333333333" }, { 5e-324, "4.94065645841247e-324" }, /* subnormal: not shortest */
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 123456.75, "123456.75" }, { -2.5, "-2.5" },
	};
	struct buf b;
	struct jw w;
	uint64_t rs = 0x9E3779B97F4A7C15ull;

	buf_init(&b);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		buf_reset(&b);
		jw_init(&w, &b);
		CHECK_EQ(jw_double(&w, t[i].v), 0);
		CHECK_STR(b.data, t[i].s);
	}
	buf_reset(&b);
	jw_init(&w, &b);
	jw_arr_begin(&w);
	jw_double(&w, NAN);
	jw_double(&w, INFINITY);
	jw_double(&w, -INFINITY);
	jw_arr_end(&w);
	CHECK_STR(b.data, "[null,null,null]");

	/* Random bit patterns read back bit-exactly, in at most 17 digits. */
	for (int i = 0; i < 100000; i++) {
		uint64_t bits = rand_next(&rs);
		double v, back;

		memcpy(&v, &bits, sizeof(v));
		if (!isfinite(v))
			continue;
		buf_reset(&b);
		jw_init(&w, &b);
		CHECK_EQ(jw_double(&w, v), 0);
		back = strtod(b.data, NULL);
		CHECK(memcmp(&back, &v, sizeof(v)) == 0);
		CHECK(b.len <= 24);
	}
	buf_free(&b);
}

/* ---- random documents: cJSON round trip and fixed buffers ---------------- */

/* String pieces and what the writer's output must decode to. Every piece
 * starts with a byte that is not a continuation byte, so concatenating them
 * cannot change how an ill-formed piece is cut into subparts. */
static const struct {
	const char *in, *out;
} pieces[] = {
	{ "a", "a" }, { "Z9", "Z9" }, { " ", " " }, { "\"", "\"" }, { "\\", "\\" },
	{ "/", "/" }, { "\b", "\b" }, { "\f", "\f" }, { "\n", "\n" }, { "\r", "\r" },
	{ "\t", "\t" }, { "\x01", "\x01" }, { "\x1f", "\x1f" }, { "\x7f", "\x7f" },
	{ "\xC3\xA9", "\xC3\xA9" }, { "\xE2\x82\xAC", "\xE2\x82\xAC" },
	{ "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80" }, { "\xE2\x80\xA8", "\xE2\x80\xA8" },
	{ "\xE2\x80\xA9", "\xE2\x80\xA9" }, { "\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF" },
	{ "\xFF", FFFD }, { "\xC0\xAF", FFFD FFFD }, { "\xED\xA0\x80", FFFD FFFD FFFD },
	{ "\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD }, { "\xE2\x82", FFFD },
	{ "\xF0\x9F\x98", FFFD }, { "\xE0\x80\x80", FFFD FFFD FFFD },
};

static void rand_string(uint64_t *rs, struct buf *in, struct buf *out)
{
	size_t n = rand_next(rs) % 8;

	buf_reset(in);
	buf_reset(out);
	for (size_t i = 0; i < n; i++) {
		size_t p = rand_next(rs) % ARRAY_SIZE(pieces);

		buf_puts(in, pieces[p].in);
		buf_puts(out, pieces[p].out);
	}
}

/* Write a random value with w and, if want is not NULL, build the cJSON tree
 * it must parse to. */
static void gen(struct jw *w, cJSON **want, uint64_t *rs, int depth)
{
	struct buf in, out;
	uint64_t kind = rand_next(rs) % (depth < 5 ? 11 : 8);
	cJSON *node = NULL;

	buf_init(&in);
	buf_init(&out);
	switch (kind) {
	case 0: {
		int64_t v = (int64_t)rand_next(rs) >> (rand_next(rs) % 64);
		jw_int(w, v);
		node = cJSON_CreateNumber((double)v);
		break;
	}
	case 1: {
		uint64_t v = rand_next(rs);
		jw_uint(w, v);
		node = cJSON_CreateNumber((double)v);
		break;
	}
	case 2: {
		double v = ((double)(rand_next(rs) >> 11) - 4503599627370496.0) /
			   (double)(1ull << (rand_next(rs) % 60));
		jw_double(w, v);
		node = cJSON_CreateNumber(v);
		break;
	}
	case 3: {
		bool v = rand_next(rs) & 1;
		jw_bool(w, v);
		node = cJSON_CreateBool(v);
		break;
	}
	case 4:
		jw_null(w);
		node = cJSON_CreateNull();
		break;
	case 5:
	case 6:
		rand_string(rs, &in, &out);
		jw_strn(w, in.data ? in.data : "", in.len);
		node = cJSON_CreateString(buf_cstr(&out));
		break;
	case 7: {
		int64_t v = (int64_t)(rand_next(rs) % 2000000000000ull) - 1000000000000;
		char f[MONEY_FMT_MAX];
		jw_money(w, v);
		money_format(f, sizeof(f), v);
		node = cJSON_CreateObject();
		cJSON_AddNumberToObject(node, "amount", (double)v);
		cJSON_AddStringToObject(node, "currency", "USD");
		cJSON_AddStringToObject(node, "formatted", f);
		break;
	}
	case 8:
		jw_raw(w, "{\"raw\":[1,\"x\"]}", 15);
		node = cJSON_Parse("{\"raw\":[1,\"x\"]}");
		break;
	case 9: {
		size_t n = rand_next(rs) % 5;
		node = cJSON_CreateArray();
		jw_arr_begin(w);
		for (size_t i = 0; i < n; i++) {
			cJSON *c;
			gen(w, &c, rs, depth + 1);
			cJSON_AddItemToArray(node, c);
		}
		jw_arr_end(w);
		break;
	}
	default: {
		size_t n = rand_next(rs) % 5;
		node = cJSON_CreateObject();
		jw_obj_begin(w);
		for (size_t i = 0; i < n; i++) {
			cJSON *c;
			/* A unique prefix, then arbitrary (repaired) bytes. */
			rand_string(rs, &in, &out);
			buf_printf(&in, "#%zu", i);
			buf_printf(&out, "#%zu", i);
			jw_key(w, in.data);
			gen(w, &c, rs, depth + 1);
			cJSON_AddItemToObject(node, out.data, c);
		}
		jw_obj_end(w);
		break;
	}
	}
	buf_free(&in);
	buf_free(&out);
	*want = node;
}

static void test_roundtrip(void)
{
	uint64_t rs = 20240601;
	struct buf b;

	buf_init(&b);
	for (int i = 0; i < 3000; i++) {
		struct jw w;
		cJSON *want, *got;

		buf_reset(&b);
		jw_init(&w, &b);
		gen(&w, &want, &rs, 0);
		CHECK_EQ(jw_finish(&w), 0);
		CHECK(utf8_valid(b.data, b.len));
		got = cJSON_ParseWithLength(b.data, b.len);
		if (!got || !cJSON_Compare(got, want, 1)) {
			char *s = cJSON_PrintUnformatted(want);
			fprintf(stderr, "round trip %d:\n ours: %s\n want: %s\n", i,
				b.data, s ? s : "?");
			free(s);
			CHECK(0);
		}
		cJSON_Delete(got);
		cJSON_Delete(want);
	}
	buf_free(&b);
}

/* A document written into every fixed capacity: it fits exactly when cap >
 * its length; otherwise -ENOBUFS, the content is a prefix of the document,
 * and nothing past cap is touched. */
static void test_fixed_json(void)
{
	static char mem[4096 + 64];
	struct buf ref;

	buf_init(&ref);
	for (uint64_t seed = 1; seed <= 30; seed++) {
		uint64_t rs = seed;
		struct jw w;
		cJSON *want;

		buf_reset(&ref);
		jw_init(&w, &ref);
		gen(&w, &want, &rs, 0);
		cJSON_Delete(want);
		CHECK_EQ(jw_finish(&w), 0);
		if (ref.len > 4096)
			continue;
		for (size_t cap = 0; cap <= ref.len + 2; cap++) {
			struct buf b;

			rs = seed;
			memset(mem, 0x5A, sizeof(mem));
			buf_init_fixed(&b, mem, cap);
			jw_init(&w, &b);
			gen(&w, &want, &rs, 0);
			cJSON_Delete(want);
			for (size_t i = cap; i < sizeof(mem); i++)
				CHECK_EQ(mem[i], 0x5A);
			if (cap > ref.len) {
				CHECK_EQ(jw_finish(&w), 0);
				CHECK_EQ(b.len, ref.len);
				CHECK(memcmp(b.data, ref.data, ref.len + 1) == 0);
			} else {
				CHECK_EQ(jw_finish(&w), -ENOBUFS);
				CHECK(b.len < ref.len && (cap == 0 || b.len < cap));
				CHECK(cap == 0 || b.data[b.len] == '\0');
				CHECK(memcmp(b.data, ref.data, b.len) == 0);
			}
		}
	}
	buf_free(&ref);
}

/* ---- money --------------------------------------------------------------- */

static void test_money(void)
{
	static const struct {
		int64_t nd;
		const char *s;
	} t[] = {
		{ 0, "$0.00" },
		{ 100000000, "$0.10" },
		{ 1000000000, "$1.00" },
		{ 1234560000000, "$1234.56" },
		{ 4999999, "$0.00" },
		{ 5000000, "$0.01" },          /* half a cent rounds up */
		{ 14999999, "$0.01" },
		{ 15000000, "$0.02" },
		{ 994999999, "$0.99" },
		{ 995000000, "$1.00" },
		{ -1, "$0.00" },               /* no "-$0.00" */
		{ -4999999, "$0.00" },
		{ -5000000, "-$0.01" },        /* away from zero */
		{ -50000000, "-$0.05" },
		{ -1234567890123, "-$1234.57" },
		{ INT64_MAX, "$9223372036.85" },
		{ INT64_MIN, "-$9223372036.85" },
	};
	char out[MONEY_FMT_MAX];
	struct buf b;
	struct jw w;

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		CHECK_EQ(money_format(out, sizeof(out), t[i].nd), strlen(t[i].s));
		CHECK_STR(out, t[i].s);
	}
	/* snprintf-like truncation. */
	memset(out, 'x', sizeof(out));
	CHECK_EQ(money_format(out, 4, 1234560000000), 8);
	CHECK_STR(out, "$12");
	CHECK_EQ(out[4], 'x');
	CHECK_EQ(money_format(out, 0, 1), 5);
	CHECK_EQ(out[0], '$');

	buf_init(&b);
	jw_init(&w, &b);
	CHECK_EQ(jw_money(&w, -50000000), 0);
	CHECK_STR(b.data, "{\"amount\":-50000000,\"currency\":\"USD\",\"formatted\":\"-$0.05\"}");
	buf_free(&b);
}

int main(void)
{
	test_buf();
	test_fixed();
	test_structure();
	test_escapes();
	test_utf8();
	test_double();
	test_roundtrip();
	test_fixed_json();
	test_money();
	return T_PASS;
}
