/* cli_int.h - what the CLI's files share: the command table, the parsed
 * invocation, the HTTP helpers and the printing helpers. Not a public
 * surface: only src/cli*.c include it (include/jobring/cli.h is the one). */
#ifndef JOBRING_CLI_INT_H
#define JOBRING_CLI_INT_H

#include "jobring/cli.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_POS 8		/* positional arguments of one command */
#define CLI_MAX_RESPONSE (32u << 20)	/* response bytes kept */
#define CLI_MAX_ID 64		/* ids put into paths */
#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/** Who a command authenticates as. */
enum cli_auth { CLI_AUTH_NONE, CLI_AUTH_KEY, CLI_AUTH_ADMIN, CLI_AUTH_OPTIONAL };

/** One option of a command ("--name ARG"). */
struct cli_opt {
	const char *name;	/* without the dashes */
	const char *arg;	/* metavariable, NULL for a flag */
	const char *help;
	int multi;		/* may be given more than once */
};

struct cli;

/** One command. name is its words ("admin org create"); run NULL means a
 *  server command that main.c runs (listed for the help and the man page). */
struct cli_cmd {
	const char *name;
	const char *args;	/* positional synopsis, e.g. "TYPE" */
	int min_pos, max_pos;
	enum cli_auth auth;
	const struct cli_opt *opts;	/* terminated by a zeroed entry, or NULL */
	int (*run)(struct cli *c);
	const char *summary;	/* one line, no final period */
	const char *help;	/* paragraphs separated by blank lines; a paragraph
				 * whose lines start with two spaces is verbatim */
};

/** The table (cli_cmds.c), terminated by a zeroed entry. */
extern const struct cli_cmd cli_cmds[];
/** The options every command takes. */
extern const struct cli_opt cli_common_opts[];

/** One parsed invocation. Strings point into argv or the environment. */
struct cli {
	const struct cli_cmd *cmd;
	const char *url;	/* base URL, see base[] */
	const char *key;
	const char *admin;
	int json;		/* --json */
	int tty;		/* stderr is a terminal */
	int npos;
	const char *pos[CLI_MAX_POS];
	int nvals;
	struct cli_val { const char *opt, *val; } *vals;	/* options in order */
	char base[1024];	/* url without trailing slashes */
};

/** The last value of option name ("" for a flag), or NULL if absent. */
const char *cli_get(const struct cli *c, const char *name);
/** Print "jobring CMD: message" and the command's usage line to stderr;
 *  returns CLI_USAGE. */
int cli_usage_error(const struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** 0 if s is an id we may put into a path ([A-Za-z0-9_.-], 1..64 chars);
 *  else a usage error naming what (and returns CLI_USAGE). */
int cli_check_id(const struct cli *c, const char *what, const char *s);

/* ---- HTTP (cli_http.c) ------------------------------------------------------ */

/** An answer. status 0 means none came; err says why. */
struct cli_resp {
	long status;
	char *body;		/* NUL-terminated, malloc'd; may be NULL */
	size_t len;
	cJSON *json;		/* the parsed body, or NULL */
	long retry_after;	/* seconds, from Retry-After, or 0 */
	char err[1024];		/* transport error, human-readable */
};

/** Send method base+path with an optional JSON body, authenticated as
 *  auth says. r is always filled (free it with cli_resp_free).
 *  0 on a 2xx answer, -1 otherwise. */
int cli_request(struct cli *c, const char *method, const char *path, const cJSON *body,
		enum cli_auth auth, struct cli_resp *r);
/** PUT a local file to an absolute URL with no Authorization. 0 on 2xx. */
int cli_put_file(struct cli *c, const char *url, const char *path, const char *ctype,
		 struct cli_resp *r);
void cli_resp_free(struct cli_resp *r);
/** Say on stderr why a request failed: the transport error with a hint,
 *  or "CODE: message" and the details. With --json the server's body is
 *  printed to stdout as well. Returns CLI_FAIL. */
int cli_report(const struct cli *c, const struct cli_resp *r);
/** cli_request with the command's own auth; on failure reports and frees r
 *  and returns CLI_FAIL. On success, with --json, prints the body as is.
 *  Returns 0 on success (r is then the caller's to free). */
int cli_call(struct cli *c, const char *method, const char *path, const cJSON *body,
	     struct cli_resp *r);
/** The "data" member of a JSON answer, or NULL. */
const cJSON *cli_data(const struct cli_resp *r);
/** Print the body to stdout as it came, with a final newline. */
void cli_print_raw(const struct cli_resp *r);

/* ---- printing (cli_http.c) --------------------------------------------------- */

/** A string member, or dflt. */
const char *cli_js(const cJSON *o, const char *key, const char *dflt);
/** A number member, or dflt. */
double cli_jn(const cJSON *o, const char *key, double dflt);
/** "12s", "5m", "3h", "2d" for now - then_ms; "-" when then_ms is 0. */
void cli_age(char *out, size_t outsz, int64_t then_ms);
/** Money: a {amount,formatted} object, or a bare nanodollar number. */
void cli_money(char *out, size_t outsz, const cJSON *m);
/** Local time "YYYY-MM-DD HH:MM:SS" of a Unix ms time, "-" for 0. */
void cli_time(char *out, size_t outsz, int64_t ms);
/** Percent-encode s for a query value. */
void cli_qenc(char *out, size_t outsz, const char *s);

/** A text table: heads, then rows; printed with aligned columns (the last
 *  one unpadded) and freed by cli_table_print (out NULL: only freed). */
struct cli_table {
	int ncol, nrows, cap;
	const char *head[8];
	char **cells;
};
void cli_table_init(struct cli_table *t, int ncol, ...);
/** One row of ncol strings (copied; NULL prints "-"). */
void cli_table_row(struct cli_table *t, ...);
void cli_table_print(struct cli_table *t, FILE *out);
/** "key   value" lines, aligned. */
struct cli_kvs {
	int n;
	const char *k[32];
	char *v[32];
};
/** Add a line (dropped past 32; an empty value prints "-"). */
void cli_kvs_add(struct cli_kvs *kv, const char *k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/** Print the lines and free them (kv is empty again). */
void cli_kvs_print(struct cli_kvs *kv, FILE *out);
/** Cut s to at most max code points, ending with "..." when cut. */
void cli_trunc(char *s, size_t max);

/* ---- commands (cli_jobs.c, cli_wait.c, cli_admin.c) -------------------------- */

int cli_submit(struct cli *c);
int cli_get_job(struct cli *c);
int cli_list(struct cli *c);
int cli_cancel(struct cli *c);
int cli_retry(struct cli *c);
int cli_logs(struct cli *c);
int cli_types(struct cli *c);
int cli_balance(struct cli *c);
/** A table of jobs (a JSON array of job objects). */
void cli_jobs_table(const cJSON *jobs, FILE *out);
/** Follow job id until it is terminal (WebSocket, else polling), then print
 *  its result. Returns CLI_OK if it completed, else CLI_FAIL. */
int cli_wait(struct cli *c, const char *id);
/** Print a finished job's result: the output URLs or data, or the error. */
int cli_print_result(const struct cli *c, const cJSON *job);

int cli_wh_list(struct cli *c);
int cli_wh_create(struct cli *c);
int cli_wh_delete(struct cli *c);
int cli_wh_deliveries(struct cli *c);
int cli_wh_redeliver(struct cli *c);
int cli_wh_rotate(struct cli *c);
int cli_org_create(struct cli *c);
int cli_org_get(struct cli *c);
int cli_org_plan(struct cli *c);
int cli_key_create(struct cli *c);
int cli_key_delete(struct cli *c);
int cli_credits(struct cli *c);
int cli_dlq_list(struct cli *c);
int cli_dlq_requeue(struct cli *c);
int cli_dlq_delete(struct cli *c);

#endif
