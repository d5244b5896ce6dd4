/* cli.c - the command-line client's front: matching the command words,
 * parsing options, configuration from the environment, and rendering the
 * command table (cli_cmds.c) as help text and as a roff man page. */
#include "cli_int.h"
#include "jobring/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HELP_WIDTH 79
#define OPT_COL 26

static const char env_help[] =
	"JOBRING_URL (or RENDOBAR_API_URL) is the server's base URL, default " CLI_DEFAULT_URL ". "
	"JOBRING_API_KEY (or RENDOBAR_API_KEY) is the API key (rb_live_... or rb_test_...). "
	"JOBRING_ADMIN_TOKEN is the admin token for `jobring admin`. "
	"JOBRING_CONFIG names the config file of `jobring serve`.";

static const char exit_help[] =
	"0 on success; 1 when the server refused the request, could not be reached, or a job "
	"followed with --wait did not complete; 2 on bad usage or missing configuration "
	"(no API key, no admin token).";

/* ---- the table ---------------------------------------------------------------- */

static int nwords(const char *name)
{
	int n = 1;
	for (; *name; name++)
		n += *name == ' ';
	return n;
}

/* 1 if argv[0..n) are the words of name (and name has exactly n words). */
static int words_match(const char *name, char **argv, int n)
{
	for (int i = 0; i < n; i++) {
		size_t l = strlen(argv[i]);
		if (strncmp(name, argv[i], l) != 0 || (name[l] != ' ' && name[l] != '\0'))
			return 0;
		name += l;
		if (*name == ' ')
			name++;
		else if (i + 1 < n)
			return 0;
	}
	return *name == '\0';
}

/* 1 if argv[0..n) are the first words of at least one command's longer name. */
static int is_group(char **argv, int n)
{
	for (const struct cli_cmd *c = cli_cmds; c->name; c++) {
		const char *p = c->name;
		int ok = nwords(p) > n;
		for (int i = 0; ok && i < n; i++) {
			size_t l = strlen(argv[i]);
			ok = strncmp(p, argv[i], l) == 0 && p[l] == ' ';
			p += l + 1;
		}
		if (ok)
			return 1;
	}
	return 0;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *name, size_t n)
{
	for (const struct cli_opt *o = opts; o && o->name; o++)
		if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
			return o;
	return NULL;
}

static const char *section(const struct cli_cmd *c)
{
	if (!c->run)
		return "server";
	if (strncmp(c->name, "webhooks ", 9) == 0)
		return "webhooks";
	if (strncmp(c->name, "admin ", 6) == 0)
		return "admin";
	return "jobs";
}

/* ---- help text ------------------------------------------------------------------ */

/* Write text[0..n) filled to HELP_WIDTH: the first line starts at column
 * col (already written), the rest at indent. Backquotes are kept. */
static void fill(FILE *out, const char *text, size_t n, int col, int indent)
{
	const char *p = text, *end = text + n;
	int first = 1;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\n'))
			p++;
		const char *w = p;
		while (p < end && *p != ' ' && *p != '\n')
			p++;
		int wl = (int)(p - w);
		if (!wl)
			break;
		if (!first && col + 1 + wl > HELP_WIDTH) {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
		} else if (!first) {
			fputc(' ', out);
			col++;
		}
		fwrite(w, 1, (size_t)wl, out);
		col += wl;
		first = 0;
	}
	fputc('\n', out);
}

/* Call f for each paragraph of a help text: (start, length, verbatim). */
static void paragraphs(const char *text, void (*f)(void *ctx, const char *p, size_t n, int verb),
		       void *ctx)
{
	const char *p = text;

	while (*p) {
		while (*p == '\n')
			p++;
		if (!*p)
			break;
		const char *e = strstr(p, "\n\n");
		size_t n = e ? (size_t)(e - p) : strlen(p);
		f(ctx, p, n, p[0] == ' ' && p[1] == ' ');
		p += n;
	}
}

static void help_para(void *ctx, const char *p, size_t n, int verb)
{
	FILE *out = ctx;
	fputc('\n', out);
	if (verb)
		fprintf(out, "%.*s\n", (int)n, p);
	else
		fill(out, p, n, 0, 0);
}

/* The option lines of opts, less those that shadow names. */
static void opt_lines(FILE *out, const struct cli_opt *opts, const struct cli_opt *shadow)
{
	for (const struct cli_opt *o = opts; o && o->name; o++) {
		if (find_opt(shadow, o->name, strlen(o->name)))
			continue;
		int col = fprintf(out, "  --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		if (col >= OPT_COL - 1) {
			fprintf(out, "\n%*s", OPT_COL, "");
		} else {
			fprintf(out, "%*s", OPT_COL - col, "");
		}
		fill(out, o->help, strlen(o->help), OPT_COL, OPT_COL);
	}
}

static void cmd_usage_line(FILE *out, const struct cli_cmd *c)
{
	fprintf(out, "usage: jobring %s%s%s%s\n", c->name, c->args[0] ? " " : "", c->args,
		c->run || c->opts ? " [options]" : "");
}

static void cmd_help(FILE *out, const struct cli_cmd *c)
{
	cmd_usage_line(out, c);
	fprintf(out, "\n%c%s.\n", toupper((unsigned char)c->summary[0]), c->summary + 1);
	paragraphs(c->help, help_para, out);
	if (c->opts && c->opts->name) {
		fputs("\noptions:\n", out);
		opt_lines(out, c->opts, NULL);
	}
	if (c->run) {
		fputs("\ncommon options:\n", out);
		opt_lines(out, cli_common_opts, c->opts);
	}
}

/* The commands whose names start with the n words of argv (all with n 0). */
static void cmd_list(FILE *out, char **argv, int n)
{
	const char *sect = NULL;

	for (const struct cli_cmd *c = cli_cmds; c->name; c++) {
		char syn[128];
		int skip = 0;
		const char *p = c->name;
		for (int i = 0; i < n && !skip; i++) {
			size_t l = strlen(argv[i]);
			skip = strncmp(p, argv[i], l) != 0 || p[l] != ' ';
			p += l + 1;
		}
		if (skip)
			continue;
		if (!n && sect != section(c)) {
			sect = section(c);
			fprintf(out, "\n%s:\n", sect);
		}
		snprintf(syn, sizeof(syn), "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
		if (strlen(syn) >= OPT_COL - 3)
			fprintf(out, "  %s\n%*s%s\n", syn, OPT_COL, "", c->summary);
		else
			fprintf(out, "  %-*s%s\n", OPT_COL - 2, syn, c->summary);
	}
}

static void top_help(FILE *out)
{
	fputs("usage: jobring <command> [arguments] [options]\n\n"
	      "jobring runs jobs through their lifecycle: clients submit them over an HTTP API,\n"
	      "the server dispatches them to providers, settles credits and reports back.\n"
	      "The same program is the server, the reference worker and this client.\n", out);
	cmd_list(out, NULL, 0);
	fputs("\ncommon options of the client commands:\n", out);
	opt_lines(out, cli_common_opts, NULL);
	fputs("\nenvironment:\n  ", out);
	fill(out, env_help, strlen(env_help), 2, 2);
	fputs("\n`jobring help COMMAND` or `jobring COMMAND --help` shows a command's options;\n"
	      "`jobring help --man` prints the man page.\n", out);
}

/* ---- the man page ---------------------------------------------------------------- */

/* Roff-escape s[0..n): backslashes, leading dots and quotes, option-like
 * hyphens, and `code` spans as bold. */
static void roff(FILE *out, const char *s, size_t n, int bol)
{
	int code = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (bol && (ch == '.' || ch == '\''))
			fputs("\\&", out);
		bol = ch == '\n';
		if (ch == '\\')
			fputs("\\e", out);
		else if (ch == '-' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '-' ||
				       s[i - 1] == '\n' || s[i - 1] == '[' || s[i - 1] == '`'))
			fputs("\\-", out);
		else if (ch == '`')
			fputs((code = !code) ? "\\fB" : "\\fR", out);
		else
			fputc(ch, out);
	}
}

static void roffs(FILE *out, const char *s)
{
	roff(out, s, strlen(s), 0);
}

static void man_para(void *ctx, const char *p, size_t n, int verb)
{
	FILE *out = ctx;
	if (verb) {
		fputs(".PP\n.RS 4\n.nf\n", out);
		roff(out, p, n, 1);
		fputs("\n.fi\n.RE\n", out);
	} else {
		fputs(".PP\n", out);
		roff(out, p, n, 1);
		fputc('\n', out);
	}
}

static void man_opts(FILE *out, const struct cli_opt *opts)
{
	for (const struct cli_opt *o = opts; o && o->name; o++) {
		fputs(".TP\n\\fB\\-\\-", out);
		roffs(out, o->name);
		fputs("\\fR", out);
		if (o->arg) {
			fputs(" \\fI", out);
			roffs(out, o->arg);
			fputs("\\fR", out);
		}
		fputc('\n', out);
		roffs(out, o->help);
		fputs(o->multi ? " (may be repeated)\n" : "\n", out);
	}
}

int cli_man(FILE *out)
{
	const char *sect = NULL;
	static const struct { const char *key, *title; } sects[] = {
		{ "server", "Server" }, { "jobs", "Jobs" }, { "webhooks", "Webhooks" },
		{ "admin", "Administration" },
	};

	fputs(".\\\" Generated by `jobring help --man` from the command table in src/cli_cmds.c;\n"
	      ".\\\" edit that, then run scripts/manpage.\n"
	      ".TH JOBRING 1 \"\" \"jobring 0.1.0\" \"User Commands\"\n.nh\n.ad l\n"
	      ".SH NAME\njobring \\- a job lifecycle server and its command\\-line client\n"
	      ".SH SYNOPSIS\n.B jobring\n.I command\n[\\fIarguments\\fR] [\\fIoptions\\fR]\n"
	      ".SH DESCRIPTION\n"
	      "jobring runs jobs through their lifecycle: clients submit them over an HTTP API "
	      "compatible with Rendobar's, the server keeps them durably, dispatches them to "
	      "execution providers, follows their reports, settles credits and tells the client "
	      "what happened through webhooks, a realtime stream and the API.\n"
	      ".PP\nOne program is the server (\\fBserve\\fR), the reference provider "
	      "(\\fBworker\\fR), an offline checker (\\fBcheck\\fR) and the client commands below, "
	      "which talk HTTP to a running server.\n"
	      ".SH COMMANDS\n", out);
	for (const struct cli_cmd *c = cli_cmds; c->name; c++) {
		if (sect != section(c)) {
			sect = section(c);
			for (size_t i = 0; i < ARRAY_SIZE(sects); i++)
				if (!strcmp(sects[i].key, sect))
					fprintf(out, ".SS %s\n", sects[i].title);
		}
		fputs(".TP\n\\fBjobring ", out);
		roffs(out, c->name);
		fputs("\\fR", out);
		if (c->args[0]) {
			fputs(" \\fI", out);
			roffs(out, c->args);
			fputs("\\fR", out);
		}
		if (c->run || c->opts)
			fputs(" [\\fIoptions\\fR]", out);
		fprintf(out, "\n%c", toupper((unsigned char)c->summary[0]));
		roffs(out, c->summary + 1);
		fputs(".\n", out);
		if (c->help[0] || (c->opts && c->opts->name)) {
			fputs(".RS\n", out);
			paragraphs(c->help, man_para, out);
			man_opts(out, c->opts);
			fputs(".RE\n", out);
		}
	}
	fputs(".SH COMMON OPTIONS\nThe client commands (all but serve, check, worker and "
	      "version) take these options anywhere after the command words.\n", out);
	man_opts(out, cli_common_opts);
	fputs(".SH ENVIRONMENT\n", out);
	roffs(out, env_help);
	fputs("\n.SH EXIT STATUS\n", out);
	roffs(out, exit_help);
	fputs("\n.SH EXAMPLES\n.nf\n"
	      "export JOBRING_URL=http://127.0.0.1:8080 JOBRING_API_KEY=rb_live_...\n"
	      "jobring types\n"
	      "jobring submit sleep \\-\\-param seconds=2 \\-\\-wait\n"
	      "jobring list \\-\\-status failed\n"
	      "jobring retry job_...\n"
	      "jobring list \\-\\-json | jq '.data[].id'\n"
	      ".fi\n"
	      ".SH SEE ALSO\n\\fBcurl\\fR(1); DESIGN.md in the source tree.\n", out);
	return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}

/* ---- parsing ---------------------------------------------------------------------- */

const char *cli_get(const struct cli *c, const char *name)
{
	for (int i = c->nvals - 1; i >= 0; i--)
		if (strcmp(c->vals[i].opt, name) == 0)
			return c->vals[i].val;
	return NULL;
}

int cli_usage_error(const struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "jobring %s: ", c->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cmd_usage_line(stderr, c->cmd);
	fprintf(stderr, "(see jobring %s --help)\n", c->cmd->name);
	return CLI_USAGE;
}

int cli_check_id(const struct cli *c, const char *what, const char *s)
{
	size_t n = strlen(s);
	int ok = n > 0 && n <= CLI_MAX_ID;

	for (size_t i = 0; ok && i < n; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		     (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.';
	if (ok && s[0] != '.')
		return 0;
	return cli_usage_error(c, "'%s' is not a valid %s", s, what);
}

/* Take one option at argv[*i]; 0, or CLI_USAGE after saying why. */
static int take_opt(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv, int *i)
{
	const char *a = argv[*i] + 2, *eq = strchr(a, '=');
	size_t n = eq ? (size_t)(eq - a) : strlen(a);
	const struct cli_opt *o = cmd ? find_opt(cmd->opts, a, n) : NULL;
	const char *val;

	if (!o)
		o = find_opt(cli_common_opts, a, n);
	if (!o) {
		if (!cmd) {
			fprintf(stderr, "jobring: unknown option '%s' (try jobring --help)\n",
				argv[*i]);
			return CLI_USAGE;
		}
		return cli_usage_error(c, "unknown option '--%.*s'", (int)n, a);
	}
	if (!o->arg) {
		if (eq)
			return cli_usage_error(c, "--%s takes no value", o->name);
		val = "";
	} else if (eq) {
		val = eq + 1;
	} else if (*i + 1 < argc) {
		val = argv[++*i];
	} else if (!cmd) {
		fprintf(stderr, "jobring: --%s needs a value %s\n", o->name, o->arg);
		return CLI_USAGE;
	} else {
		return cli_usage_error(c, "--%s needs a value %s", o->name, o->arg);
	}
	c->vals[c->nvals].opt = o->name;
	c->vals[c->nvals++].val = val;
	return 0;
}

static int is_option(const char *a)
{
	return a[0] == '-' && a[1] == '-' && a[2];
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int has_cmd_opt(const struct cli_cmd *cmd, const char *name)
{
	return find_opt(cmd->opts, name, strlen(name)) != NULL;
}

static int configure(struct cli *c)
{
	const char *u = cli_get(c, "server");
	size_t n;

	if (!u && !has_cmd_opt(c->cmd, "url"))
		u = cli_get(c, "url");
	if (!u)
		u = env("JOBRING_URL");
	if (!u)
		u = env("RENDOBAR_API_URL");
	if (!u)
		u = CLI_DEFAULT_URL;
	n = strlen(u);
	while (n && u[n - 1] == '/')
		n--;
	if ((strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) || n <= 8 ||
	    n >= sizeof(c->base) || strpbrk(u, " \t\r\n?#"))
		return cli_usage_error(c, "the server URL '%s' is not http://HOST[:PORT] or "
				       "https://HOST[:PORT]", u);
	memcpy(c->base, u, n);
	c->base[n] = '\0';
	c->url = c->base;

	c->key = cli_get(c, "key");
	if (!c->key)
		c->key = env("JOBRING_API_KEY");
	if (!c->key)
		c->key = env("RENDOBAR_API_KEY");
	c->admin = cli_get(c, "admin-token");
	if (!c->admin)
		c->admin = env("JOBRING_ADMIN_TOKEN");
	if (c->cmd->auth == CLI_AUTH_KEY && !c->key) {
		fprintf(stderr, "jobring %s: no API key: set JOBRING_API_KEY or pass --key\n",
			c->cmd->name);
		return CLI_USAGE;
	}
	if (c->cmd->auth == CLI_AUTH_ADMIN && !c->admin) {
		fprintf(stderr, "jobring %s: no admin token: set JOBRING_ADMIN_TOKEN or pass "
			"--admin-token (it is the config's adminToken)\n", c->cmd->name);
		return CLI_USAGE;
	}
	if ((c->key && strpbrk(c->key, "\r\n")) || (c->admin && strpbrk(c->admin, "\r\n")))
		return cli_usage_error(c, "the key or token contains a line break");
	c->json = cli_get(c, "json") != NULL;
	c->tty = isatty(STDERR_FILENO);
	return 0;
}

static void group_head(FILE *out, char **w, int n)
{
	fputs("jobring", out);
	for (int i = 0; i < n; i++)
		fprintf(out, " %s", w[i]);
	fputs(" commands:\n", out);
}

/* `jobring help [--man] [WORDS...]` */
static int help_cmd(int argc, char **argv)
{
	int n = argc - 2;
	char **w = argv + 2;

	if (n == 1 && strcmp(w[0], "--man") == 0)
		return cli_man(stdout) < 0 ? CLI_FAIL : CLI_OK;
	if (n == 0) {
		top_help(stdout);
		return CLI_OK;
	}
	for (const struct cli_cmd *c = cli_cmds; c->name; c++)
		if (words_match(c->name, w, n)) {
			cmd_help(stdout, c);
			return CLI_OK;
		}
	if (is_group(w, n)) {
		group_head(stdout, w, n);
		cmd_list(stdout, w, n);
		return CLI_OK;
	}
	fprintf(stderr, "jobring help: no command '%s' (try jobring --help)\n", w[0]);
	return CLI_USAGE;
}

int cli_main(int argc, char **argv)
{
	struct cli c;
	const struct cli_cmd *cmd = NULL;
	int i = 1, nw = 0, want_help = 0, r;

	memset(&c, 0, sizeof(c));
	c.vals = xcalloc((size_t)argc + 1, sizeof(*c.vals));
	/* common options before the command words */
	while (i < argc && is_option(argv[i])) {
		if (strcmp(argv[i], "--help") == 0) {
			want_help = 1;
			i++;
			continue;
		}
		if ((r = take_opt(&c, NULL, argc, argv, &i)) != 0)
			goto out;
		i++;
	}
	if (i >= argc) {
		top_help(want_help ? stdout : stderr);
		r = want_help ? CLI_OK : CLI_USAGE;
		goto out;
	}
	if (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "-h") == 0) {
		r = help_cmd(argc - i + 1, argv + i - 1);
		goto out;
	}
	for (const struct cli_cmd *k = cli_cmds; k->name; k++) {
		int w = nwords(k->name);
		if (w > nw && i + w <= argc && words_match(k->name, argv + i, w)) {
			cmd = k;
			nw = w;
		}
	}
	if (!cmd) {
		int n = 0;
		while (i + n < argc && !is_option(argv[i + n]) && is_group(argv + i, n + 1))
			n++;
		if (n) {
			for (int k = i + n; k < argc; k++)
				want_help |= !strcmp(argv[k], "--help") || !strcmp(argv[k], "-h");
			FILE *out = want_help ? stdout : stderr;
			if (!want_help) {
				if (i + n < argc)
					fprintf(stderr, "jobring %s: unknown subcommand '%s'\n", argv[i],
						argv[i + n]);
				else
					fprintf(stderr, "jobring %s: which one?\n", argv[i]);
			}
			group_head(out, argv + i, n);
			cmd_list(out, argv + i, n);
			r = want_help ? CLI_OK : CLI_USAGE;
			goto out;
		}
		fprintf(stderr, "jobring: unknown command '%s' (try jobring --help)\n", argv[i]);
		r = CLI_USAGE;
		goto out;
	}
	c.cmd = cmd;
	if (!cmd->run) {	/* main.c runs these; only `help X` should get here */
		fprintf(stderr, "jobring: '%s' is not available in this build\n", cmd->name);
		r = CLI_USAGE;
		goto out;
	}
	for (i += nw; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			want_help = 1;
		} else if (strcmp(a, "--") == 0) {
			while (++i < argc) {
				if (c.npos == CLI_MAX_POS) {
					r = cli_usage_error(&c, "too many arguments");
					goto out;
				}
				c.pos[c.npos++] = argv[i];
			}
		} else if (is_option(a)) {
			if ((r = take_opt(&c, cmd, argc, argv, &i)) != 0)
				goto out;
		} else if (a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9') && a[1] != '$' &&
			   a[1] != '.') {
			r = cli_usage_error(&c, "unknown option '%s'", a);
			goto out;
		} else {
			if (c.npos == CLI_MAX_POS) {
				r = cli_usage_error(&c, "too many arguments");
				goto out;
			}
			c.pos[c.npos++] = a;
		}
	}
	if (want_help) {
		cmd_help(stdout, cmd);
		r = CLI_OK;
		goto out;
	}
	if (c.npos < cmd->min_pos) {
		r = cli_usage_error(&c, "missing %s", cmd->args);
		goto out;
	}
	if (c.npos > cmd->max_pos) {
		r = cli_usage_error(&c, "unexpected argument '%s'", c.pos[cmd->max_pos]);
		goto out;
	}
	if ((r = configure(&c)) != 0)
		goto out;
	r = cmd->run(&c);
	if (fflush(stdout) != 0 && r == CLI_OK) {
		fprintf(stderr, "jobring %s: cannot write the output: %s\n", cmd->name,
			strerror(errno));
		r = CLI_FAIL;
	}
out:
	free(c.vals);
	return r;
}
