/* worker_sandbox.c - the ffmpeg command sandbox of the reference worker.
 *
 * A job's params.command is a string such as
 *   ffmpeg -i in.mp4 -vf "scale=64:48" out.mp4
 * It is split here with shell-like quoting but never given to a shell, then
 * checked token by token:
 *  - no URL ("://"), no absolute path (a '/' at the start of a token or of a
 *    value inside it), no "..", no protocol prefix ("tcp:", "pipe:", ...);
 *  - every "-i" names one of the job's inputs, which sit in the work dir;
 *  - no -f with a format that reaches outside the work dir or the process
 *    (lavfi concat hls tee segment dash fifo, devices, ...);
 *  - no filter that opens files or sockets (movie amovie sendcmd zmq, ...)
 *    in any filtergraph option;
 *  - outputs (the tokens after the last input that are not options or option
 *    values) are bare file names.
 * Then the argv gets "-protocol_whitelist file" (and the demuxer whitelist)
 * before every input and every output. The whitelist plus bare names is
 * the sandbox; the checks above make refusals early and readable. The token
 * rules apply to every token, so a mistaken idea of which tokens are option
 * values can only refuse a command, never let a path through.
 */
#include "worker_int.h"

#include "jobring/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FF_CMD_MAX 16384
#define FF_TOKENS_MAX 512

/* ffmpeg 5.x options that take no value (OPT_BOOL without HAS_ARG, and the
 * few function options without one). Every other option takes one value,
 * AVOptions included. */
static const char *const ff_flags[] = {
	"y", "n", "ignore_unknown", "copy_unknown", "recast_media", "benchmark",
	"benchmark_all", "stdin", "dump", "hex", "re", "copyts", "start_at_zero",
	"shortest", "bitexact", "xerror", "copyinkf", "auto_conversion_filters",
	"stats", "debug_ts", "find_stream_info", "vn", "psnr", "qphist", "force_fps",
	"an", "sn", "dn", "fix_sub_duration", "accurate_seek", "hide_banner",
	"vstats", "report",
};

/* Boolean options that also take a value (-autorotate 0) but whose "no"
 * form (-noautorotate) takes none. */
static const char *const ff_bool_with_arg[] = { "autorotate", "autoscale" };

/* Options a job may not use: they would undo the sandbox, take over our
 * progress pipe, read a filtergraph we cannot check, or print and exit. */
static const char *const ff_denied[] = {
	"progress", "stdin", "protocol_whitelist", "protocol_blacklist",
	"format_whitelist", "filter_script", "filter_complex_script", "dump", "hex",
	"L", "h", "?", "help", "-help", "version", "buildconf", "formats", "muxers",
	"demuxers", "devices", "codecs", "decoders", "encoders", "bsfs", "protocols",
	"filters", "pix_fmts", "layouts", "sample_fmts", "dispositions", "colors",
	"sources", "sinks", "hwaccels",
};

/* Options whose value is a filtergraph. */
static const char *const ff_filter_opts[] = { "vf", "af", "filter", "filter_complex", "lavfi" };

/* Formats refused after -f, input or output. */
static const char *const ff_blocked_formats[] = {
	"lavfi", "concat", "hls", "applehttp", "tee", "segment", "ssegment",
	"stream_segment", "dash", "fifo", "fifo_test", "null", "sdp", "rtp", "rtsp",
	"rtp_mpegts", "image2pipe", "alsa", "pulse", "oss", "jack", "sndio", "fbdev",
	"v4l2", "video4linux2", "x11grab", "xcbgrab", "kmsgrab", "sdl", "sdl2", "xv",
	"opengl", "caca", "openal", "decklink",
};

/* Filters refused anywhere in a filtergraph (they open files or sockets,
 * or load code). */
static const char *const ff_blocked_filters[] = {
	"movie", "amovie", "sendcmd", "asendcmd", "zmq", "azmq", "ladspa", "lv2",
	"frei0r", "frei0r_src", "lavfi",
};

/* Protocols other than file; "name:" in a token is refused. */
static const char *const ff_protocols[] = {
	"amqp", "async", "bluray", "cache", "concat", "concatf", "crypto", "data",
	"fd", "ffrtmpcrypt", "ffrtmphttp", "ftp", "gopher", "gophers", "hls", "http",
	"httpproxy", "https", "icecast", "ipfs", "ipns", "librist", "librtmp",
	"librtmpe", "librtmps", "librtmpt", "librtmpte", "libsmbclient", "libsrt",
	"libssh", "libzmq", "md5", "mmsh", "mmst", "pipe", "prompeg", "rist", "rtmp",
	"rtmpe", "rtmps", "rtmpt", "rtmpte", "rtmpts", "rtp", "rtsp", "sctp", "sftp",
	"smb", "srt", "srtp", "subfile", "tcp", "tee", "tls", "udp", "udplite", "unix",
	"zmq", "dtls", "bluray",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(s, list[i]) == 0)
			return true;
	return false;
}

/* File names compare exactly: the file system is case-sensitive. */
static bool in_names(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return true;
	return false;
}

static void errf(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

bool worker_bare_name(const char *s, bool allow_pattern)
{
	size_t n = strlen(s);

	if (n == 0 || n > WORKER_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	if (strstr(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+')
			continue;
		if (c == '%' && allow_pattern)
			continue;
		return false;
	}
	return true;
}

bool ffname_match(const char *pat, const char *name)
{
	while (*pat) {
		if (pat[0] == '%' && pat[1] == '%') {
			if (*name != '%')
				return false;
			pat += 2;
			name++;
		} else if (pat[0] == '%') {
			const char *p = pat + 1;
			size_t digits = 0;
			while (isdigit((unsigned char)*p))
				p++;
			if (*p != 'd')
				return false;
			pat = p + 1;
			while (isdigit((unsigned char)*name)) {
				name++;
				digits++;
			}
			if (digits == 0)
				return false;
		} else {
			if (*pat != *name)
				return false;
			pat++;
			name++;
		}
	}
	return *name == '\0';
}

/* ---- tokenizer ----------------------------------------------------------- */

static void tokens_free(char **tok, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(tok[i]);
	free(tok);
}

/* Split s like a POSIX shell splits a simple command: blanks separate words,
 * '...' is literal, "..." allows \" \\ \$ \` and line continuation, a
 * backslash outside quotes escapes the next character. No expansion of any
 * kind happens; unquoted shell operators are refused because a shell would
 * have given them a meaning we do not. */
static int tokenize(const char *s, char ***ret, size_t *retn, char *err, size_t errsz)
{
	size_t len = strlen(s), n = 0, i = 0;
	char **tok;
	char *cur;

	if (len > FF_CMD_MAX) {
		errf(err, errsz, "command is longer than %d bytes", FF_CMD_MAX);
		return -E2BIG;
	}
	tok = xcalloc(FF_TOKENS_MAX + 1, sizeof(*tok));
	cur = xmalloc(len + 1);
	for (;;) {
		size_t o = 0;

		while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
			i++;
		if (!s[i])
			break;
		if (n == FF_TOKENS_MAX) {
			errf(err, errsz, "command has more than %d words", FF_TOKENS_MAX);
			goto fail_big;
		}
		while (s[i] && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
			char c = s[i];
			if (c == '\'') {
				for (i++; s[i] && s[i] != '\''; i++)
					cur[o++] = s[i];
				if (!s[i]) {
					errf(err, errsz, "unterminated single quote");
					goto fail;
				}
				i++;
			} else if (c == '"') {
				for (i++; s[i] && s[i] != '"'; i++) {
					if (s[i] == '\\' && s[i + 1] && strchr("\"\\$`\n", s[i + 1])) {
						i++;
						if (s[i] == '\n')
							continue;
					}
					cur[o++] = s[i];
				}
				if (!s[i]) {
					errf(err, errsz, "unterminated double quote");
					goto fail;
				}
				i++;
			} else if (c == '\\') {
				if (!s[i + 1]) {
					errf(err, errsz, "command ends with a backslash");
					goto fail;
				}
				if (s[i + 1] != '\n')
					cur[o++] = s[i + 1];
				i += 2;
			} else if (strchr("|;&<>`", c)) {
				errf(err, errsz, "shell operator '%c' is not supported: the command "
				     "is not run by a shell (quote it if it is part of an argument)", c);
				goto fail;
			} else {
				cur[o++] = c;
				i++;
			}
		}
		tok[n++] = xstrndup(cur, o);
	}
	free(cur);
	*ret = tok;
	*retn = n;
	return 0;
fail:
	free(cur);
	tokens_free(tok, n);
	return -EINVAL;
fail_big:
	free(cur);
	tokens_free(tok, n);
	return -E2BIG;
}

/* ---- token checks -------------------------------------------------------- */

/* t without quote characters and backslashes: what the checks look at, so
 * that quoting or escaping inside a filtergraph cannot hide a name. */
static char *normalize(const char *t)
{
	char *out = xmalloc(strlen(t) + 1), *o = out;

	for (; *t; t++)
		if (*t != '\\' && *t != '\'' && *t != '"')
			*o++ = *t;
	*o = '\0';
	return out;
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Does word occur in s as a whole identifier? */
static bool has_word(const char *s, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = s; (p = strcasestr(p, word)) != NULL; p++) {
		if ((p == s || !ident_char(p[-1])) && !ident_char(p[wl]))
			return true;
	}
	return false;
}

/* A '/' that starts a path: at the start, or after anything but an operand
 * character (iw/2, 30000/1001 and (a+b)/2 stay legal). */
static bool has_abs_path(const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		if (s[i] != '/')
			continue;
		if (i == 0)
			return true;
		if (!(ident_char(s[i - 1]) || s[i - 1] == ')' || s[i - 1] == '.'))
			return true;
	}
	return false;
}

/* A "proto:" (or "subfile,") prefix at the start of s or of a value in it. */
static const char *protocol_prefix(const char *s, char *name, size_t namesz)
{
	for (size_t i = 0; s[i]; i++) {
		size_t j = i;

		if (i > 0 && !strchr("=:,;[]( |", s[i - 1]))
			continue;
		if (!isalpha((unsigned char)s[i]))
			continue;
		while (ident_char(s[j]) || s[j] == '+' || s[j] == '.' || s[j] == '-')
			j++;
		if (j - i >= namesz)
			continue;
		memcpy(name, s + i, j - i);
		name[j - i] = '\0';
		if (s[j] == ':' && in_list(name, ff_protocols, ARRAY_SIZE(ff_protocols)))
			return name;
		if (s[j] == ',' && strcasecmp(name, "subfile") == 0)
			return name;
	}
	return NULL;
}

/* The rules every token obeys. */
static int check_token(const char *t, char *err, size_t errsz)
{
	char proto[32];
	char *n;
	int rc = -EINVAL;

	for (const char *p = t; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
			errf(err, errsz, "control characters are not allowed");
			return -EINVAL;
		}
	}
	n = normalize(t);
	if (strstr(n, "://"))
		errf(err, errsz, "URLs are not allowed in the command ('%.80s'): pass remote "
		     "files as job inputs and refer to them by name", t);
	else if (has_abs_path(n))
		errf(err, errsz, "absolute paths are not allowed ('%.80s'): refer to inputs "
		     "by their bare file name", t);
	else if (strstr(n, ".."))
		errf(err, errsz, "'..' is not allowed ('%.80s')", t);
	else if (protocol_prefix(n, proto, sizeof(proto)))
		errf(err, errsz, "protocol '%s' is not allowed ('%.80s'): only local files in "
		     "the work directory", proto, t);
	else
		rc = 0;
	free(n);
	return rc;
}

static int check_filtergraph(const char *opt, const char *graph, char *err, size_t errsz)
{
	char *n = normalize(graph);
	int rc = 0;

	for (size_t i = 0; i < ARRAY_SIZE(ff_blocked_filters); i++) {
		if (has_word(n, ff_blocked_filters[i])) {
			errf(err, errsz, "filter '%s' is not allowed (in -%s)",
			     ff_blocked_filters[i], opt);
			rc = -EINVAL;
			break;
		}
	}
	free(n);
	return rc;
}

static int check_format(const char *value, const struct ffsandbox *sb, char *err, size_t errsz)
{
	char *v = xstrdup(value), *save = NULL;
	int rc = 0;

	for (char *f = strtok_r(v, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (in_list(f, ff_blocked_formats, ARRAY_SIZE(ff_blocked_formats)) ||
		    in_list(f, sb->devices, sb->ndevices)) {
			errf(err, errsz, "format '%s' is not allowed (-f)", f);
			rc = -EINVAL;
			break;
		}
	}
	free(v);
	return rc;
}

/* "12.5", "1500ms", "01:02:03.5", "2:30": seconds, or -1. */
static double parse_time(const char *s)
{
	double parts[3], v = 0;
	size_t np = 0;
	char *end;

	if (strchr(s, ':')) {
		const char *p = s;
		while (np < 3) {
			parts[np++] = strtod(p, &end);
			if (end == p)
				return -1;
			if (*end != ':')
				break;
			p = end + 1;
		}
		if (*end)
			return -1;
		for (size_t i = 0; i < np; i++)
			v = v * 60 + parts[i];
		return v;
	}
	v = strtod(s, &end);
	if (end == s)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "ms") == 0)
		return v / 1e3;
	if (strcmp(end, "us") == 0)
		return v / 1e6;
	return -1;
}

static bool is_flag(const char *name)
{
	if (in_list(name, ff_flags, ARRAY_SIZE(ff_flags)))
		return true;
	if (strncmp(name, "no", 2) == 0)
		return in_list(name + 2, ff_flags, ARRAY_SIZE(ff_flags)) ||
		       in_list(name + 2, ff_bool_with_arg, ARRAY_SIZE(ff_bool_with_arg));
	return false;
}

/* Walk the tokens as ffmpeg's command-line splitter does and check them. */
static int check_command(char **tok, size_t n, const struct ffsandbox *sb, struct ffcmd *c,
			 bool *is_output, char *err, size_t errsz)
{
	size_t last_input = 0, ninputs = 0;

	if (n == 0 || strcmp(tok[0], "ffmpeg") != 0) {
		errf(err, errsz, "command must start with 'ffmpeg'");
		return -EINVAL;
	}
	for (size_t i = 1; i < n; i++) {
		if (check_token(tok[i], err, errsz) < 0)
			return -EINVAL;
		if (strcmp(tok[i], "-i") == 0)
			last_input = i;
	}
	for (size_t i = 1; i < n; i++) {
		const char *t = tok[i];
		char name[64];

		if (t[0] != '-' || t[1] == '\0') {
			if (strcmp(t, "-") == 0) {
				errf(err, errsz, "'-' (standard input/output) is not allowed");
				return -EINVAL;
			}
			if (i < last_input) {
				errf(err, errsz, "'%.80s' is not an option value, and output files "
				     "must come after the last input", t);
				return -EINVAL;
			}
			if (!worker_bare_name(t, true)) {
				errf(err, errsz, "output '%.80s' must be a bare file name (letters, "
				     "digits, '.', '_', '-', '+')", t);
				return -EINVAL;
			}
			if (in_names(t, sb->inputs, sb->ninputs)) {
				errf(err, errsz, "output '%.80s' would overwrite an input", t);
				return -EINVAL;
			}
			if (in_names(t, (const char *const *)c->outputs, c->noutputs)) {
				errf(err, errsz, "output '%.80s' is named twice", t);
				return -EINVAL;
			}
			if (c->noutputs == WORKER_MAX_OUTPUTS) {
				errf(err, errsz, "too many outputs");
				return -EINVAL;
			}
			c->outputs[c->noutputs++] = xstrdup(t);
			is_output[i] = true;
			continue;
		}
		if (strcmp(t, "--") == 0) {
			errf(err, errsz, "'--' is not allowed");
			return -EINVAL;
		}
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(t + 1, ":"), t + 1);
		if (in_list(name, ff_denied, ARRAY_SIZE(ff_denied))) {
			errf(err, errsz, "option -%s is not allowed", name);
			return -EINVAL;
		}
		if (is_flag(name))
			continue;
		if (i + 1 >= n) {
			errf(err, errsz, "option -%s needs a value", name);
			return -EINVAL;
		}
		if (strcmp(name, "i") == 0) {
			if (strcmp(t, "-i") != 0) {
				errf(err, errsz, "write inputs as -i NAME");
				return -EINVAL;
			}
			if (!in_names(tok[i + 1], sb->inputs, sb->ninputs) ||
			    !worker_bare_name(tok[i + 1], false)) {
				errf(err, errsz, "input '%.80s' is not one of the job's inputs "
				     "(use -i with an input's name)", tok[i + 1]);
				return -EINVAL;
			}
			ninputs++;
		} else if (strcmp(name, "f") == 0) {
			if (check_format(tok[i + 1], sb, err, errsz) < 0)
				return -EINVAL;
		} else if (in_list(name, ff_filter_opts, ARRAY_SIZE(ff_filter_opts))) {
			if (check_filtergraph(name, tok[i + 1], err, errsz) < 0)
				return -EINVAL;
		} else if (strcmp(name, "t") == 0) {
			double v = parse_time(tok[i + 1]);
			if (v > 0 && (c->limit_seconds == 0 || v < c->limit_seconds))
				c->limit_seconds = v;
		}
		i++;
	}
	if (ninputs == 0) {
		errf(err, errsz, "the command has no input (-i NAME)");
		return -EINVAL;
	}
	if (c->noutputs == 0) {
		errf(err, errsz, "the command has no output file");
		return -EINVAL;
	}
	return 0;
}

void ffcmd_free(struct ffcmd *c)
{
	if (c->argv)
		tokens_free(c->argv, c->argc);
	if (c->outputs)
		tokens_free(c->outputs, c->noutputs);
	memset(c, 0, sizeof(*c));
}

int ffcmd_build(const char *command, const struct ffsandbox *sb, struct ffcmd *ret,
		char *err, size_t errsz)
{
	static const char *const head[] = {
		"ffmpeg", "-nostdin", "-y", "-hide_banner", "-nostats", "-progress", "pipe:1",
	};
	struct ffcmd c = { 0 };
	bool *is_output;
	char **tok;
	size_t n, a = 0;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = tokenize(command, &tok, &n, err, errsz);
	if (rc < 0)
		return rc;
	c.outputs = xcalloc(WORKER_MAX_OUTPUTS, sizeof(*c.outputs));
	is_output = xcalloc(n + 1, sizeof(*is_output));
	rc = check_command(tok, n, sb, &c, is_output, err, errsz);
	if (rc < 0) {
		free(is_output);
		tokens_free(tok, n);
		ffcmd_free(&c);
		return rc;
	}
	/* head + every token + 4 before each input + 2 before each output. */
	c.argv = xcalloc(ARRAY_SIZE(head) + 5 * n + 1, sizeof(*c.argv));
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		c.argv[a++] = xstrdup(head[i]);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(tok[i], "-i") == 0) {
			c.argv[a++] = xstrdup("-protocol_whitelist");
			c.argv[a++] = xstrdup("file");
			if (sb->format_whitelist) {
				c.argv[a++] = xstrdup("-format_whitelist");
				c.argv[a++] = xstrdup(sb->format_whitelist);
			}
			c.argv[a++] = tok[i];
			c.argv[a] = tok[++i];
			if (!c.first_input)
				c.first_input = c.argv[a];
			a++;
			continue;
		}
		if (is_output[i]) {
			c.argv[a++] = xstrdup("-protocol_whitelist");
			c.argv[a++] = xstrdup("file");
		}
		c.argv[a++] = tok[i];
	}
	free(tok[0]);
	free(tok);
	free(is_output);
	c.argc = a;
	*ret = c;
	return 0;
}
