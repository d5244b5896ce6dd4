/* worker.c - `jobring worker`: the listener and the job table of the
 * reference provider.
 *
 * One thread, one poll() loop over a signalfd (SIGCHLD, SIGTERM, SIGINT)
 * and the HTTP/1.1 listener of worker_http.c and its connections. A
 * signed dispatch is checked, given a slot and forked into a run child
 * (worker_run.c) that leads its own process group, so that a cancel, a
 * superseding attempt or shutdown ends it and everything it started with
 * one kill(-pgid, SIGKILL). Children are reaped from the SIGCHLD wake-up
 * and their work dirs removed; the loop never blocks on them.
 */
#include "jobring/worker.h"

#include "jobring/http_parse.h"
#include "jobring/log.h"
#include "jobring/presign.h"
#include "jobring/util.h"
#include "worker_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:8090"
#define DEFAULT_SECRET "jobring-local-provider-secret"
#define DEFAULT_JOBS 4
#define MAX_JOBS 1024
#define KILL_GRACE_MS 60000		/* after a run's deadline, the backstop */
#define MAX_INPUT_BYTES (2LL << 30)

struct wslot {
	bool used, cancelled;
	bool finished;			/* work over: reporting and exiting */
	pid_t pid;			/* also the process group id */
	uint32_t attempt;
	int64_t kill_at_ns;		/* backstop: SIGKILL the group then */
	char job_id[WORKER_ID_MAX + 1];
	char run_id[32];
	char dir[PATH_MAX];
};

struct worker {
	struct whttp http;
	int sfd;
	int done[2];			/* runs write their pid when finished */
	struct wslot *slots;
	size_t nslots;
	int jobs;
	const char *secret;
	char workdir[PATH_MAX];
	bool own_workdir, stop;
	struct worker_conf conf;
	char *fmt_whitelist;
	char **devices;
	size_t ndevices;
};

/* ---- small helpers -------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t running_count(const struct worker *w)
{
	size_t n = 0;

	for (size_t i = 0; i < w->nslots; i++)
		n += w->slots[i].used && !w->slots[i].cancelled && !w->slots[i].finished;
	return n;
}

static void slot_kill(struct wslot *s, const char *why)
{
	if (!s->cancelled)
		log_info("job %s attempt %u (%s, pid %d): %s", s->job_id, s->attempt, s->run_id,
			 (int)s->pid, why);
	s->cancelled = true;
	kill(-s->pid, SIGKILL);
}

/* Reap every exited run child and remove its work dir. */
static void reap(struct worker *w)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < w->nslots; i++) {
			struct wslot *s = &w->slots[i];
			if (!s->used || s->pid != pid)
				continue;
			/* Anything the run started and left behind goes too. */
			kill(-pid, SIGKILL);
			if (WIFSIGNALED(status) && !s->cancelled)
				log_warn("job %s attempt %u: run killed by signal %d", s->job_id,
					 s->attempt, WTERMSIG(status));
			else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
				log_warn("job %s attempt %u: run exited with status %d", s->job_id,
					 s->attempt, WEXITSTATUS(status));
			rm_rf(s->dir);
			s->used = false;
			break;
		}
	}
}

/* ---- dispatch ------------------------------------------------------------- */

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool valid_job_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > WORKER_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool valid_http_url(const char *s)
{
	if (!s || strlen(s) > WORKER_URL_MAX)
		return false;
	if (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static bool valid_token(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 512)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* Fill j from a dispatch body. On error: *code and msg for the 400. */
static int job_from_json(const cJSON *root, struct worker_job *j, const char **code,
			 const char **msg)
{
	const cJSON *att = cJSON_GetObjectItemCaseSensitive(root, "attempt");
	const cJSON *dl = cJSON_GetObjectItemCaseSensitive(root, "deadline");
	const cJSON *out = cJSON_GetObjectItemCaseSensitive(root, "output");

	*code = "VALIDATION_ERROR";
	j->id = json_str(root, "jobId");
	j->type = json_str(root, "type");
	j->params = cJSON_GetObjectItemCaseSensitive(root, "params");
	j->inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
	j->callback_url = json_str(root, "callbackUrl");
	j->callback_token = json_str(root, "callbackToken");
	j->upload_url = cJSON_IsObject(out) ? json_str(out, "uploadUrl") : NULL;
	if (!valid_job_id(j->id))
		*msg = "jobId must be 1..128 of [A-Za-z0-9_-]";
	else if (!j->type)
		*msg = "type is required";
	else if (!worker_type_known(j->type))
		*code = "INVALID_JOB_TYPE", *msg = "this worker does not run that type";
	else if (!cJSON_IsNumber(att) || att->valuedouble < 0 || att->valuedouble > 1e9 ||
		 att->valuedouble != (double)(uint32_t)att->valuedouble)
		*msg = "attempt must be a non-negative integer";
	else if (j->params && !cJSON_IsObject(j->params) && !cJSON_IsNull(j->params))
		*msg = "params must be an object";
	else if (j->inputs && !cJSON_IsObject(j->inputs) && !cJSON_IsNull(j->inputs))
		*msg = "inputs must be an object";
	else if (cJSON_GetArraySize(j->inputs) > WORKER_MAX_INPUTS)
		*msg = "too many inputs";
	else if (!valid_http_url(j->callback_url))
		*msg = "callbackUrl must be an http(s) URL";
	else if (!valid_token(j->callback_token))
		*msg = "callbackToken must be 1..512 printable characters";
	else if (j->upload_url && !valid_http_url(j->upload_url))
		*msg = "output.uploadUrl must be an http(s) URL";
	else if (dl && !cJSON_IsNull(dl) &&
		 (!cJSON_IsNumber(dl) || dl->valuedouble < 0 || dl->valuedouble > 1e14))
		*msg = "deadline must be Unix milliseconds";
	else
		*msg = NULL;
	if (*msg)
		return -EINVAL;
	j->attempt = (uint32_t)att->valuedouble;
	j->deadline_ms = cJSON_IsNumber(dl) ? (int64_t)dl->valuedouble : 0;
	return 0;
}

static struct wslot *slot_find(struct worker *w, const char *id, uint32_t attempt)
{
	for (size_t i = 0; i < w->nslots; i++) {
		struct wslot *s = &w->slots[i];
		if (s->used && s->attempt == attempt && strcmp(s->job_id, id) == 0)
			return s;
	}
	return NULL;
}

/* Runs whose work is over stop counting against --jobs (they only report
 * and exit now). */
static void on_done(struct worker *w)
{
	pid_t pids[64];
	ssize_t n;

	while ((n = read(w->done[0], pids, sizeof(pids))) > 0) {
		for (size_t k = 0; k < (size_t)n / sizeof(pid_t); k++) {
			for (size_t i = 0; i < w->nslots; i++)
				if (w->slots[i].used && w->slots[i].pid == pids[k])
					w->slots[i].finished = true;
		}
	}
}

/* In the forked child: become a process group of our own, drop the
 * listener's descriptors and signal set-up, run the job, exit. */
static void run_child(struct worker *w, const struct worker_job *job, pid_t parent)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	setpgid(0, 0);
	/* Runs do not outlive the worker, even when it is SIGKILLed. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if (dup2(w->done[1], 3) < 0)
		w->conf.done_fd = -1;
	else
		w->conf.done_fd = 3;
	close_range(4, ~0U, 0);
	exit(worker_run(job, &w->conf));
}

static void on_dispatch(struct worker *w, struct wconn *c, const char *body, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(body, len), *o;
	struct worker_job job = { 0 };
	struct wslot *s = NULL;
	const char *code, *msg;
	char run_id[32], dir[PATH_MAX];
	int64_t left;
	pid_t pid, parent;

	if (!cJSON_IsObject(root)) {
		wconn_respond_error(c, 400, "VALIDATION_ERROR", "the body is not a JSON object");
		goto out;
	}
	if (job_from_json(root, &job, &code, &msg) < 0) {
		wconn_respond_error(c, 400, code, msg);
		goto out;
	}
	s = slot_find(w, job.id, job.attempt);
	if (s && !s->cancelled) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "runId", s->run_id);
		cJSON_AddBoolToObject(o, "idempotent", true);
		wconn_respond_json(c, 200, o);
		goto out;
	}
	if (s) {
		wconn_respond_error(c, 503, "BUSY", "this attempt is being stopped; try again");
		goto out;
	}
	/* A newer attempt of a job supersedes the runs of older ones. */
	for (size_t i = 0; i < w->nslots; i++) {
		struct wslot *o2 = &w->slots[i];
		if (o2->used && !o2->cancelled && !o2->finished && o2->attempt < job.attempt &&
		    strcmp(o2->job_id, job.id) == 0)
			slot_kill(o2, "superseded by a newer attempt");
	}
	/* A run may have finished while this request was being read. */
	on_done(w);
	if (running_count(w) >= (size_t)w->jobs) {
		wconn_respond_error(c, 503, "CAPACITY", "every run slot is busy");
		goto out;
	}
	for (size_t i = 0; i < w->nslots && !s; i++)
		if (!w->slots[i].used)
			s = &w->slots[i];
	if (!s || (size_t)snprintf(dir, sizeof(dir), "%s/%s-%u", w->workdir, job.id,
				   job.attempt) >= sizeof(dir)) {
		wconn_respond_error(c, 503, "CAPACITY", "every run slot is busy");
		goto out;
	}
	id_new(run_id, sizeof(run_id), "run_", 20);
	job.run_id = run_id;
	job.dir = dir;
	rm_rf(dir);	/* a stale dir from a worker that died; no slot has it */
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		wconn_respond_error(c, 503, "CAPACITY", "cannot start a run");
		goto out;
	}
	if (pid == 0)
		run_child(w, &job, parent);
	setpgid(pid, pid);
	left = job.deadline_ms > 0 ? job.deadline_ms - now_ms() : WORKER_DEFAULT_RUN_MS;
	left = MIN(MAX(left, 0), WORKER_MAX_RUN_MS);
	*s = (struct wslot){ .used = true, .pid = pid, .attempt = job.attempt };
	s->kill_at_ns = mono_ns() + (left + KILL_GRACE_MS) * 1000000LL;
	snprintf(s->job_id, sizeof(s->job_id), "%s", job.id);
	snprintf(s->run_id, sizeof(s->run_id), "%s", run_id);
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	log_info("job %s attempt %u: %s run %s started (pid %d)", job.id, job.attempt, job.type,
		 run_id, (int)pid);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "runId", run_id);
	wconn_respond_json(c, 202, o);
out:
	cJSON_Delete(root);
}

static void on_cancel(struct worker *w, struct wconn *c, const char *id, const char *body,
		      size_t len)
{
	cJSON *root = len ? cJSON_ParseWithLength(body, len) : NULL, *o;
	const cJSON *att = cJSON_GetObjectItemCaseSensitive(root, "attempt");
	int n = 0;

	for (size_t i = 0; i < w->nslots; i++) {
		struct wslot *s = &w->slots[i];
		if (!s->used || s->cancelled || s->finished || strcmp(s->job_id, id) != 0)
			continue;
		if (cJSON_IsNumber(att) && (double)s->attempt != att->valuedouble)
			continue;
		slot_kill(s, "cancelled");
		n++;
	}
	cJSON_Delete(root);
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "cancelled", n > 0);
	cJSON_AddNumberToObject(o, "runs", n);
	wconn_respond_json(c, 200, o);
}

static void on_health(struct worker *w, struct wconn *c)
{
	static const char *const types[] = { "sleep", "fail", "checksum", "ffprobe", "ffmpeg" };
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", true);
	cJSON_AddNumberToObject(o, "running", (double)running_count(w));
	cJSON_AddNumberToObject(o, "capacity", w->jobs);
	cJSON_AddItemToObject(o, "types", cJSON_CreateStringArray(types, ARRAY_SIZE(types)));
	wconn_respond_json(c, 200, o);
}

/* ---- routing -------------------------------------------------------------- */

static bool signature_ok(struct worker *w, const struct http_request *req, const char *body,
			 size_t len)
{
	char val[SIG_HEADER_LEN + 1];
	int i = http_header_find(req, "X-Jobring-Signature", 0);

	if (i < 0 || req->headers[i].value_len != SIG_HEADER_LEN)
		return false;
	memcpy(val, req->headers[i].value, SIG_HEADER_LEN);
	val[SIG_HEADER_LEN] = '\0';
	return sig_header_verify(w->secret, len ? body : "", len, val) == 0;
}

/* "/dispatch/{id}/cancel" or "/{id}/cancel" -> id (in path), else NULL. */
static const char *cancel_target(char *path)
{
	size_t n = strlen(path);
	char *id;

	if (n < 8 || strcmp(path + n - 7, "/cancel") != 0)
		return NULL;
	path[n - 7] = '\0';
	id = strncmp(path, "/dispatch/", 10) == 0 ? path + 10 : path + 1;
	return *id && !strchr(id, '/') ? id : NULL;
}

static void handle(void *ctx, struct wconn *c, const struct http_request *req, const char *body,
		   size_t len)
{
	struct worker *w = ctx;
	const char *p, *q, *id;
	size_t plen, qlen;
	char path[512];
	bool get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
	bool post = req->method_len == 4 && memcmp(req->method, "POST", 4) == 0;

	if (http_split_target(req->target, req->target_len, &p, &plen, &q, &qlen) < 0 ||
	    http_path_decode(p, plen, path, sizeof(path)) < 0) {
		wconn_respond_error(c, 400, "BAD_REQUEST", "bad request target");
		return;
	}
	if (strcmp(path, "/health") == 0) {
		if (get)
			on_health(w, c);
		else
			wconn_respond_error(c, 405, "METHOD_NOT_ALLOWED", "use GET");
		return;
	}
	if (strcmp(path, "/") == 0 || strcmp(path, "/dispatch") == 0) {
		if (!post) {
			wconn_respond_error(c, 405, "METHOD_NOT_ALLOWED", "use POST");
		} else if (!signature_ok(w, req, body, len)) {
			log_warn("dispatch with a missing or bad X-Jobring-Signature refused");
			wconn_respond_error(c, 401, "UNAUTHORIZED", "bad X-Jobring-Signature");
		} else {
			on_dispatch(w, c, body, len);
		}
		return;
	}
	id = cancel_target(path);
	if (!id) {
		wconn_respond_error(c, 404, "NOT_FOUND", "Route not found");
	} else if (!post) {
		wconn_respond_error(c, 405, "METHOD_NOT_ALLOWED", "use POST");
	} else if (!signature_ok(w, req, body, len)) {
		wconn_respond_error(c, 401, "UNAUTHORIZED", "bad X-Jobring-Signature");
	} else {
		on_cancel(w, c, id, body, len);
	}
}

/* ---- set-up --------------------------------------------------------------- */

/* Names from "ffmpeg -demuxers" / "-devices" (the second column after the
 * " --" line, comma lists split). Appends to *names. */
static void ffmpeg_list(const char *what, char ***names, size_t *n)
{
	char *argv[] = { "ffmpeg", "-hide_banner", (char *)what, NULL };
	struct wproc p = { .argv = argv, .max_out = 1u << 20 };
	char *save = NULL;
	bool body = false;

	p.deadline_ns = mono_ns() + 10LL * 1000000000LL;
	if (wproc_run(&p) < 0 || !WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0) {
		wproc_done(&p);
		return;
	}
	for (char *line = strtok_r(p.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char flags[8], list[256], *s2 = NULL;
		if (!body) {
			body = strncmp(line, " --", 3) == 0;
			continue;
		}
		if (sscanf(line, " %7s %255s", flags, list) != 2)
			continue;
		for (char *nm = strtok_r(list, ",", &s2); nm; nm = strtok_r(NULL, ",", &s2)) {
			*names = xrealloc(*names, (*n + 1) * sizeof(**names));
			(*names)[(*n)++] = xstrdup(nm);
		}
	}
	wproc_done(&p);
}

/* The demuxers ffmpeg may open: all of them but devices and those that
 * reach out (lavfi concat hls dash sdp rtp rtsp). */
static void ffmpeg_discover(struct worker *w)
{
	static const char *const blocked[] = {
		"lavfi", "concat", "hls", "applehttp", "dash", "sdp", "rtp", "rtsp",
	};
	char **demux = NULL;
	size_t nd = 0, len = 0;

	ffmpeg_list("-devices", &w->devices, &w->ndevices);
	ffmpeg_list("-demuxers", &demux, &nd);
	for (size_t i = 0; i < nd; i++) {
		bool skip = false;
		for (size_t k = 0; k < ARRAY_SIZE(blocked) && !skip; k++)
			skip = strcmp(demux[i], blocked[k]) == 0;
		for (size_t k = 0; k < w->ndevices && !skip; k++)
			skip = strcmp(demux[i], w->devices[k]) == 0;
		if (!skip) {
			size_t l = strlen(demux[i]);
			w->fmt_whitelist = xrealloc(w->fmt_whitelist, len + l + 2);
			if (len)
				w->fmt_whitelist[len++] = ',';
			memcpy(w->fmt_whitelist + len, demux[i], l + 1);
			len += l;
		}
		free(demux[i]);
	}
	free(demux);
	if (!w->fmt_whitelist)
		log_warn("ffmpeg not found or not listing demuxers: ffmpeg and ffprobe jobs will "
			 "fail");
	w->conf.format_whitelist = w->fmt_whitelist;
	w->conf.devices = (const char *const *)w->devices;
	w->conf.ndevices = w->ndevices;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: jobring worker [--listen HOST:PORT] [--secret S] [--jobs N] [--workdir DIR]\n"
		"  --listen HOST:PORT  where dispatches arrive (default %s; port 0 picks one)\n"
		"  --secret S          X-Jobring-Signature key (default $JOBRING_PROVIDER_SECRET,\n"
		"                      else \"%s\")\n"
		"  --jobs N            runs at once (default %d)\n"
		"  --workdir DIR       where runs get their dirs (default: a fresh dir in /tmp,\n"
		"                      removed at exit)\n",
		DEFAULT_LISTEN, DEFAULT_SECRET, DEFAULT_JOBS);
}

static int parse_args(struct worker *w, int argc, char **argv, const char **listen_spec)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' }, { "secret", required_argument, NULL, 's' },
		{ "jobs", required_argument, NULL, 'j' },   { "workdir", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },	    { NULL, 0, NULL, 0 },
	};
	const char *env = getenv("JOBRING_PROVIDER_SECRET");
	int64_t v;
	int ch;

	w->secret = env && *env ? env : DEFAULT_SECRET;
	w->jobs = DEFAULT_JOBS;
	*listen_spec = DEFAULT_LISTEN;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			*listen_spec = optarg;
			break;
		case 's':
			w->secret = optarg;
			break;
		case 'j':
			if (parse_i64(optarg, 1, MAX_JOBS, &v) < 0) {
				fprintf(stderr, "jobring worker: --jobs wants 1..%d\n", MAX_JOBS);
				return 2;
			}
			w->jobs = (int)v;
			break;
		case 'w':
			if (strlen(optarg) >= sizeof(w->workdir) - 200) {
				fprintf(stderr, "jobring worker: --workdir is too long\n");
				return 2;
			}
			snprintf(w->workdir, sizeof(w->workdir), "%s", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "jobring worker: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!*w->secret) {
		fprintf(stderr, "jobring worker: the secret must not be empty\n");
		return 2;
	}
	return -1;
}

static int setup_workdir(struct worker *w)
{
	char abs[PATH_MAX];

	if (!w->workdir[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(w->workdir, sizeof(w->workdir), "%s/jobring-worker-XXXXXX",
			 tmp && *tmp && strlen(tmp) < 512 ? tmp : "/tmp");
		if (!mkdtemp(w->workdir)) {
			log_error("mkdtemp %s: %s", w->workdir, strerror(errno));
			return -errno;
		}
		w->own_workdir = true;
	} else if (mkdir(w->workdir, 0700) < 0 && errno != EEXIST) {
		log_error("--workdir %s: %s", w->workdir, strerror(errno));
		return -errno;
	}
	/* Runs chdir into their dirs: the listener's idea of them is absolute. */
	if (!realpath(w->workdir, abs) || strlen(abs) >= sizeof(w->workdir) - 200) {
		log_error("--workdir %s: %s", w->workdir, strerror(errno ? errno : ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	memcpy(w->workdir, abs, strlen(abs) + 1);
	return 0;
}

/* ---- the loop ------------------------------------------------------------- */

static void on_signals(struct worker *w)
{
	struct signalfd_siginfo si;

	while (read(w->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			reap(w);
		} else {
			log_info("signal %u: stopping", si.ssi_signo);
			w->stop = true;
		}
	}
	reap(w);
}

/* Close expired connections, kill runs past their backstop; the next wake. */
static int timers(struct worker *w)
{
	int64_t now = mono_ns(), next = whttp_expire(&w->http, now);

	for (size_t i = 0; i < w->nslots; i++) {
		struct wslot *s = &w->slots[i];
		if (!s->used || s->cancelled || s->finished)
			continue;
		if (s->kill_at_ns <= now)
			slot_kill(s, "still running long after its deadline; killed");
		else
			next = MIN(next, s->kill_at_ns);
	}
	return (int)MIN((next - now) / 1000000 + 1, 60000);
}

static void loop(struct worker *w)
{
	struct pollfd pfd[3 + WHTTP_MAX_CONNS];

	while (!w->stop) {
		int timeout = timers(w);
		size_t n;

		pfd[0] = (struct pollfd){ .fd = w->sfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = w->done[0], .events = POLLIN };
		n = whttp_pollfds(&w->http, pfd + 2);
		if (poll(pfd, n + 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			break;
		}
		/* Finished runs first, so that a dispatch in this batch can have
		 * their slots. */
		if (pfd[1].revents)
			on_done(w);
		if (pfd[0].revents)
			on_signals(w);
		whttp_handle(&w->http, pfd + 2, n);
	}
}

static void shutdown_all(struct worker *w)
{
	for (size_t i = 0; i < w->nslots; i++)
		if (w->slots[i].used)
			kill(-w->slots[i].pid, SIGKILL);
	for (size_t i = 0; i < w->nslots; i++) {
		struct wslot *s = &w->slots[i];
		if (!s->used)
			continue;
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
		rm_rf(s->dir);
		s->used = false;
	}
	whttp_close(&w->http);
	if (w->own_workdir)
		rm_rf(w->workdir);
}

int worker_main(int argc, char **argv)
{
	struct worker w = { .http = { .lfd = -1, .fn = handle }, .sfd = -1, .done = { -1, -1 } };
	const char *listen_spec;
	sigset_t mask;
	int rc;

	log_init("worker", 0);
	rc = parse_args(&w, argc, argv, &listen_spec);
	if (rc >= 0)
		return rc;
	w.http.ctx = &w;
	if (whttp_listen(&w.http, listen_spec) < 0)
		return 1;
	if (setup_workdir(&w) < 0) {
		whttp_close(&w.http);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		whttp_close(&w.http);
		return 1;
	}
	ffmpeg_discover(&w);
	w.conf.max_input_bytes = MAX_INPUT_BYTES;
	w.nslots = (size_t)w.jobs * 2 + 8;
	w.slots = xcalloc(w.nslots, sizeof(*w.slots));
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	w.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (w.sfd < 0 || pipe2(w.done, O_CLOEXEC) < 0 ||
	    fcntl(w.done[0], F_SETFL, O_NONBLOCK) < 0) {
		log_error("signalfd/pipe: %s", strerror(errno));
		rc = 1;
	} else {
		log_info("worker ready: %d run slots, work dir %s", w.jobs, w.workdir);
		loop(&w);
		rc = 0;
	}
	shutdown_all(&w);
	if (w.sfd >= 0)
		close(w.sfd);
	for (int i = 0; i < 2; i++)
		if (w.done[i] >= 0)
			close(w.done[i]);
	for (size_t i = 0; i < w.ndevices; i++)
		free(w.devices[i]);
	free(w.devices);
	free(w.fmt_whitelist);
	free(w.slots);
	curl_global_cleanup();
	return rc;
}
