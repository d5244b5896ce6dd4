/* worker_int.h - private to the worker module: worker.c (the job table,
 * the loop, set-up), worker_http.c (the HTTP/1.1 listener), worker_run.c
 * (one run in a forked child: reports, inputs, outputs, the simple types), worker_media.c (running programs, the ffmpeg
 * and ffprobe types) and worker_sandbox.c (the ffmpeg command sandbox).
 * Nothing outside src/worker*.c includes it; the module's public surface is
 * include/jobring/worker.h.
 *
 * Ownership: a struct worker_job points into the dispatch's cJSON tree,
 * which the run child inherits from the listener at fork() and never frees.
 * Everything a run allocates is the run's and dies with the child process.
 * Errors: int results are 0 or a count on success, -errno on failure; a run
 * step that fails describes why in a struct wfail (the report's error). */
#ifndef JOBRING_WORKER_INT_H
#define JOBRING_WORKER_INT_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobring/http_parse.h"

#define WORKER_ID_MAX 128		/* jobId bytes */
#define WORKER_NAME_MAX 200		/* input / output file name bytes */
#define WORKER_TAIL_MAX 2048		/* stderr tail kept for error.detail */
#define WORKER_MAX_INPUTS 64
#define WORKER_MAX_OUTPUTS 256
#define WORKER_URL_MAX 8192
#define WORKER_DEFAULT_RUN_MS (3600 * 1000)	/* a dispatch without a deadline */
#define WORKER_MAX_RUN_MS (24LL * 3600 * 1000)	/* cap on any run */

/** One accepted dispatch as its run child sees it (validated by worker.c). */
struct worker_job {
	const char *id;			/* jobId: 1..128 of [A-Za-z0-9_-] */
	uint32_t attempt;
	const char *type;		/* worker_type_known() */
	const char *run_id;		/* "run_..." given back in the 202 */
	const cJSON *params;		/* object, or NULL */
	const cJSON *inputs;		/* object name -> {url} or "url", or NULL */
	const char *upload_url;		/* template with "{path}", or NULL */
	const char *callback_url;	/* http(s) */
	const char *callback_token;	/* printable ASCII, no spaces */
	int64_t deadline_ms;		/* Unix ms; 0 = WORKER_DEFAULT_RUN_MS from now */
	const char *dir;		/* absolute work dir; the child creates it */
};

/** Settings every run shares, made once by worker.c at start (read-only). */
struct worker_conf {
	const char *format_whitelist;	/* demuxers ffmpeg may open, or NULL */
	const char *const *devices;	/* libavdevice names, refused after -f */
	size_t ndevices;
	int64_t max_input_bytes;	/* per downloaded input */
	int done_fd;			/* a run writes its pid here when its work is
					 * over (the listener's pipe), or -1 */
};

/** True if type is one this worker runs (sleep fail checksum ffprobe ffmpeg). */
bool worker_type_known(const char *type);

/** The whole life of one run, called in the forked child (its own process
 *  group, signals reset, listener fds closed): make the work dir, report
 *  running, fetch inputs, run the type, upload outputs, report the outcome.
 *  The listener removes job->dir after reaping the child.
 *  @return the child's exit status (0 when the outcome was reported). */
int worker_run(const struct worker_job *job, const struct worker_conf *conf);

/* ---- the listener's HTTP/1.1 side (worker_http.c) ----------------------- */

#define WHTTP_MAX_CONNS 128

struct wconn;

/** Called with each complete request; answer with one wconn_respond*().
 *  req's pointers and body are valid during the call only. */
typedef void (*whttp_fn)(void *ctx, struct wconn *c, const struct http_request *req,
			 const char *body, size_t len);

/** The listening socket and its connections. Set fn and ctx, then
 *  whttp_listen(). */
struct whttp {
	int lfd;
	struct wconn *conns[WHTTP_MAX_CONNS];
	size_t nconns;
	whttp_fn fn;
	void *ctx;
};

/** Listen on "HOST:PORT" ("[v6]:PORT"; port 0 picks one); logs the address.
 *  0 or -errno. */
int whttp_listen(struct whttp *h, const char *spec);

/** Fill pfd (room for 1 + WHTTP_MAX_CONNS) for poll(); returns the count. */
size_t whttp_pollfds(struct whttp *h, struct pollfd *pfd);

/** Act on the revents of the n entries whttp_pollfds() filled. */
void whttp_handle(struct whttp *h, const struct pollfd *pfd, size_t n);

/** Close connections idle or slow past their deadline; returns the next
 *  deadline (mono_ns() clock). */
int64_t whttp_expire(struct whttp *h, int64_t now_ns);

/** Close every connection and the listening socket. */
void whttp_close(struct whttp *h);

/** Queue a response with a JSON body (Connection: close if the request
 *  asked for it). */
void wconn_respond(struct wconn *c, int status, const char *json);

/** wconn_respond() with o printed, then deleted. */
void wconn_respond_json(struct wconn *c, int status, cJSON *o);

/** An error response {"error":{"code","message"}}. */
void wconn_respond_error(struct wconn *c, int status, const char *code, const char *msg);

/* ---- a run's failure ---------------------------------------------------- */

/** Why a run failed: report error {code, message, detail}. */
struct wfail {
	const char *code;			/* static UPPER_SNAKE string */
	char message[512];
	char detail[WORKER_TAIL_MAX + 1];	/* "" when there is none */
};

/** Set code and a printf-style message; clears detail. */
void wfail_set(struct wfail *f, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- the run (worker_run.c), as the type implementations see it -------- */

/** State of the run in progress. Owned by worker_run(); types fill data and
 *  outputs. Names are relative to the work dir, which is the cwd. */
struct wrun {
	const struct worker_job *job;
	const struct worker_conf *conf;
	CURL *report_curl;		/* kept alive for all reports */
	int64_t deadline_ns;		/* mono_ns() clock */
	int64_t last_progress_ns;
	double last_progress;
	char *inputs[WORKER_MAX_INPUTS];	/* fetched input names, in order */
	size_t ninputs;
	char *outputs[WORKER_MAX_OUTPUTS];	/* files to upload */
	size_t noutputs;
	cJSON *data;			/* output.data, or NULL for null */
	bool gone;			/* the server disowned the run: stay quiet */
	bool done_sent;			/* the listener was told the work is over */
};

/** A type: 0 with r->data / r->outputs set, or -1 with f filled in. */
typedef int (*wtype_fn)(struct wrun *r, struct wfail *f);

/** Send a progress report (frac clamped to 0..1), at most ~4 a second and
 *  only when it moved; best effort (one try). */
void wrun_progress(struct wrun *r, double frac);

/** Send a log event {event:"log", level, message}; best effort. */
void wrun_log(struct wrun *r, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** Add name (copied) to the files to upload. 0, or -E2BIG past the cap. */
int wrun_add_output(struct wrun *r, const char *name);

/* ---- running a program (worker_media.c) --------------------------------- */

/** A program run to completion with its stdout captured or fed line by line
 *  and the tail of its stderr kept. Fill the inputs, zero the rest. */
struct wproc {
	char *const *argv;		/* argv[0] is searched in PATH */
	int64_t deadline_ns;		/* mono_ns() time to SIGKILL it, 0 = none */
	size_t max_out;			/* capture up to this much stdout */
	void (*on_line)(void *ctx, const char *line); /* or: each stdout line */
	void *ctx;
	char *out;			/* captured stdout, NUL-terminated (free: wproc_done) */
	size_t out_len;
	bool out_truncated;
	char tail[WORKER_TAIL_MAX + 1];	/* last bytes of stderr, printable ASCII */
	int status;			/* waitpid() status */
	bool timed_out;
};

/** Fork and exec p->argv in the cwd with a clean environment (PATH, HOME and
 *  TMPDIR = cwd), stdin from /dev/null, in the caller's process group; wait
 *  for it, killing it at the deadline. 0 when it ran (see status,
 *  timed_out), -errno when it could not be started. */
int wproc_run(struct wproc *p);

/** Free what wproc_run() allocated. */
void wproc_done(struct wproc *p);

/** The ffprobe type: probe params.input (or the first input) into data. */
int wtype_ffprobe(struct wrun *r, struct wfail *f);

/** The ffmpeg type: sandbox params.command, run it with progress, collect
 *  the output files. */
int wtype_ffmpeg(struct wrun *r, struct wfail *f);

/** Before the inputs are fetched: refuse a command the sandbox would refuse
 *  (checked against the dispatch's input names). 0, or -1 with f set. */
int wcheck_ffmpeg(struct wrun *r, struct wfail *f);

/* ---- the ffmpeg sandbox (worker_sandbox.c) ------------------------------ */

/** What a command may refer to. */
struct ffsandbox {
	const char *const *inputs;	/* the job's input file names */
	size_t ninputs;
	const char *format_whitelist;	/* injected before each -i, or NULL */
	const char *const *devices;	/* extra names refused after -f */
	size_t ndevices;
};

/** A checked command, ready to exec. */
struct ffcmd {
	char **argv;			/* NULL-terminated, argv[0] = "ffmpeg" */
	size_t argc;
	char **outputs;			/* declared outputs (names or %d patterns) */
	size_t noutputs;
	const char *first_input;	/* points into argv */
	double limit_seconds;		/* smallest -t given, 0 if none */
};

/** Tokenize command with shell-like quoting (no shell: no expansion, shell
 *  operators refused), check it against the sandbox and build the argv with
 *  "-nostdin -y -hide_banner -nostats -progress pipe:1" in front and
 *  "-protocol_whitelist file" (+ "-format_whitelist") before every input and
 *  every output. On error writes a sentence for the user into err.
 *  @return 0, or -EINVAL (refused) / -E2BIG (too long); *ret is then empty. */
int ffcmd_build(const char *command, const struct ffsandbox *sb, struct ffcmd *ret,
		char *err, size_t errsz);

/** Free a built command (a zeroed one is fine). */
void ffcmd_free(struct ffcmd *c);

/** True if s is a bare file name: 1..WORKER_NAME_MAX of [A-Za-z0-9._+-],
 *  not starting with '.' or '-', no "..". With allow_pattern also '%'
 *  as in "frame_%03d.png". */
bool worker_bare_name(const char *s, bool allow_pattern);

/** True if name matches an output pattern: equal, or equal with each
 *  "%d" / "%0Nd" standing for a run of digits ("%%" is a '%'). */
bool ffname_match(const char *pattern, const char *name);

#endif
