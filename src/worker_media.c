/* worker_media.c - running programs from a worker run, and the two FFmpeg
 * types: ffprobe (probe one input into output.data) and ffmpeg (a sandboxed
 * command with progress reports and a time limit).
 *
 * Programs run in the run's work dir with a clean environment, stdin from
 * /dev/null and no inherited descriptors, in the run's process group so that
 * a cancel (SIGKILL to the group) takes them down too. */
#include "worker_int.h"

#include "jobring/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define FFPROBE_OUT_MAX (8u << 20)
#define DURATION_PROBE_NS (30LL * 1000000000LL)

/* ---- wproc ----------------------------------------------------------------- */

static void tail_append(struct wproc *p, size_t *len, const char *buf, size_t n)
{
	if (n > WORKER_TAIL_MAX) {
		buf += n - WORKER_TAIL_MAX;
		n = WORKER_TAIL_MAX;
	}
	if (*len + n > WORKER_TAIL_MAX) {
		size_t drop = *len + n - WORKER_TAIL_MAX;
		memmove(p->tail, p->tail + drop, *len - drop);
		*len -= drop;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\r')
			c = '\n';
		else if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f)
			c = '?';
		p->tail[(*len)++] = (char)c;
	}
	p->tail[*len] = '\0';
}

static void exec_child(struct wproc *p, int out_w, int err_w)
{
	static char cwd[PATH_MAX], home[PATH_MAX + 8], tmp[PATH_MAX + 8], path[4096 + 8];
	char *envp[4];
	const char *pathenv = getenv("PATH");
	struct rlimit nocore = { 0, 0 };
	sigset_t none;
	int null_fd = open("/dev/null", O_RDONLY);

	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
	    dup2(err_w, STDERR_FILENO) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	/* The program dies with its run (the run's group is also killed). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setrlimit(RLIMIT_CORE, &nocore);
	if (!getcwd(cwd, sizeof(cwd)))
		_exit(127);
	snprintf(path, sizeof(path), "PATH=%s",
		 pathenv && strlen(pathenv) < 4096 ? pathenv : "/usr/local/bin:/usr/bin:/bin");
	snprintf(home, sizeof(home), "HOME=%s", cwd);
	snprintf(tmp, sizeof(tmp), "TMPDIR=%s", cwd);
	envp[0] = path;
	envp[1] = home;
	envp[2] = tmp;
	envp[3] = NULL;
	execvpe(p->argv[0], p->argv, envp);
	_exit(127);
}

static void out_bytes(struct wproc *p, char *line, size_t *line_len, const char *buf, size_t n)
{
	if (p->on_line) {
		for (size_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				line[*line_len] = '\0';
				p->on_line(p->ctx, line);
				*line_len = 0;
			} else if (*line_len < LINE_MAX_BYTES - 1) {
				line[(*line_len)++] = buf[i];
			}
		}
		return;
	}
	if (p->out_len + n > p->max_out) {
		p->out_truncated = true;
		n = p->max_out - p->out_len;
	}
	memcpy(p->out + p->out_len, buf, n);
	p->out_len += n;
	p->out[p->out_len] = '\0';
}

int wproc_run(struct wproc *p)
{
	struct pollfd pfd[2];
	char buf[16384], line[LINE_MAX_BYTES];
	size_t line_len = 0, tail_len = 0;
	int out[2], err[2];
	pid_t pid;

	p->out = xmalloc(p->max_out + 1);
	p->out[0] = '\0';
	p->out_len = 0;
	p->tail[0] = '\0';
	if (pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(err, O_CLOEXEC) < 0) {
		int e = errno;
		close(out[0]);
		close(out[1]);
		return -e;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(out[0]);
		close(out[1]);
		close(err[0]);
		close(err[1]);
		return -e;
	}
	if (pid == 0)
		exec_child(p, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	pfd[0] = (struct pollfd){ .fd = out[0], .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = err[0], .events = POLLIN };
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		int timeout = -1, n;

		if (p->deadline_ns) {
			int64_t left = p->deadline_ns - mono_ns();
			if (left <= 0) {
				kill(pid, SIGKILL);
				p->timed_out = true;
				break;
			}
			timeout = (int)MIN(left / 1000000 + 1, 1000);
		}
		n = poll(pfd, 2, timeout);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2 && n > 0; i++) {
			ssize_t r;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			r = read(pfd[i].fd, buf, sizeof(buf));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				continue;
			}
			if (i == 0)
				out_bytes(p, line, &line_len, buf, (size_t)r);
			else
				tail_append(p, &tail_len, buf, (size_t)r);
		}
	}
	for (int i = 0; i < 2; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	if (line_len && p->on_line) {
		line[line_len] = '\0';
		p->on_line(p->ctx, line);
	}
	while (waitpid(pid, &p->status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

void wproc_done(struct wproc *p)
{
	free(p->out);
	p->out = NULL;
}

/* A failure from a program that ran: timeout, signal or exit code. */
static int proc_failed(struct wproc *p, struct wfail *f, const char *prog)
{
	if (p->timed_out)
		wfail_set(f, "PROCESSING_TIMEOUT", "%s did not finish before the job's deadline",
			  prog);
	else if (WIFSIGNALED(p->status))
		wfail_set(f, "PROCESSING_FAILED", "%s was killed by signal %d", prog,
			  WTERMSIG(p->status));
	else if (WEXITSTATUS(p->status) == 127)
		wfail_set(f, "PROVIDER_ERROR", "%s could not be started (is it installed?)", prog);
	else
		wfail_set(f, "PROCESSING_FAILED", "%s exited with code %d", prog,
			  WEXITSTATUS(p->status));
	snprintf(f->detail, sizeof(f->detail), "%s", p->tail);
	return -1;
}

static bool is_input(const struct wrun *r, const char *name)
{
	for (size_t i = 0; i < r->ninputs; i++)
		if (strcmp(r->inputs[i], name) == 0)
			return true;
	return false;
}

/* argv for ffprobe on one input, with the same sandbox as ffmpeg. */
static size_t probe_argv(const struct wrun *r, const char **argv, const char *const *mid,
			 size_t nmid, const char *input)
{
	size_t a = 0;

	argv[a++] = "ffprobe";
	argv[a++] = "-v";
	argv[a++] = "error";
	argv[a++] = "-hide_banner";
	argv[a++] = "-protocol_whitelist";
	argv[a++] = "file";
	if (r->conf->format_whitelist) {
		argv[a++] = "-format_whitelist";
		argv[a++] = r->conf->format_whitelist;
	}
	for (size_t i = 0; i < nmid; i++)
		argv[a++] = mid[i];
	argv[a++] = "-i";
	argv[a++] = input;
	argv[a] = NULL;
	return a;
}

/* ---- ffprobe ------------------------------------------------------------- */

int wtype_ffprobe(struct wrun *r, struct wfail *f)
{
	static const char *const mid[] = {
		"-print_format", "json", "-show_format", "-show_streams",
	};
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(r->job->params, "input");
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(r->job->params, "command");
	const char *argv[20], *name = NULL;
	struct wproc p = { 0 };
	int rc;

	if (cJSON_IsString(in))
		name = in->valuestring;
	else if (cJSON_IsString(cmd) && is_input(r, cmd->valuestring))
		name = cmd->valuestring;
	else if (r->ninputs)
		name = r->inputs[0];
	if (!name) {
		wfail_set(f, "VALIDATION_ERROR", "ffprobe needs an input");
		return -1;
	}
	if (!is_input(r, name)) {
		wfail_set(f, "VALIDATION_ERROR", "params.input '%.100s' is not one of the job's "
			  "inputs", name);
		return -1;
	}
	probe_argv(r, argv, mid, ARRAY_SIZE(mid), name);
	p.argv = (char *const *)argv;
	p.deadline_ns = r->deadline_ns;
	p.max_out = FFPROBE_OUT_MAX;
	rc = wproc_run(&p);
	if (rc < 0) {
		wfail_set(f, "PROVIDER_ERROR", "could not start ffprobe: %s", strerror(-rc));
		wproc_done(&p);
		return -1;
	}
	wrun_log(r, "info", "ffprobe exited with status %d", p.status);
	if (p.timed_out || !WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0) {
		proc_failed(&p, f, "ffprobe");
		wproc_done(&p);
		return -1;
	}
	r->data = p.out_truncated ? NULL : cJSON_ParseWithLength(p.out, p.out_len);
	if (!r->data) {
		wfail_set(f, "PROCESSING_FAILED", "ffprobe printed no usable JSON%s",
			  p.out_truncated ? " (over 8 MiB)" : "");
		snprintf(f->detail, sizeof(f->detail), "%s", p.tail);
		wproc_done(&p);
		return -1;
	}
	wproc_done(&p);
	return 0;
}

/* ---- ffmpeg -------------------------------------------------------------- */

/* Duration of an input in seconds from a quick ffprobe, or 0 if unknown. */
static double probe_duration(struct wrun *r, const char *input)
{
	static const char *const mid[] = {
		"-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1",
	};
	const char *argv[20];
	struct wproc p = { 0 };
	double d = 0;

	probe_argv(r, argv, mid, ARRAY_SIZE(mid), input);
	p.argv = (char *const *)argv;
	p.deadline_ns = MIN(r->deadline_ns, mono_ns() + DURATION_PROBE_NS);
	p.max_out = 256;
	if (wproc_run(&p) == 0 && WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0) {
		char *end;
		d = strtod(p.out, &end);
		if (end == p.out || !isfinite(d) || d < 0)
			d = 0;
	}
	wproc_done(&p);
	return d;
}

struct ffprogress {
	struct wrun *r;
	double duration;
};

/* One line of "-progress pipe:1": key=value; out_time_us against the input's
 * duration gives the fraction. */
static void ffmpeg_progress_line(void *ctx, const char *line)
{
	struct ffprogress *fp = ctx;
	const char *v;
	char *end;
	double us;

	if (fp->duration <= 0 || strncmp(line, "out_time_us=", 12) != 0)
		return;
	v = line + 12;
	us = strtod(v, &end);
	if (end == v || us < 0)
		return;
	wrun_progress(fp->r, MIN(us / 1e6 / fp->duration, 0.99));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files in the work dir matching an output pattern, sorted. */
static int collect_pattern(struct wrun *r, const char *pat, struct wfail *f)
{
	char *found[WORKER_MAX_OUTPUTS];
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(".");
	int rc = 0;

	if (!d) {
		wfail_set(f, "PROVIDER_ERROR", "cannot list the work dir: %s", strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (!ffname_match(pat, de->d_name) || lstat(de->d_name, &st) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == ARRAY_SIZE(found)) {
			wfail_set(f, "PROCESSING_FAILED", "more than %d files match '%.100s'",
				  WORKER_MAX_OUTPUTS, pat);
			rc = -1;
			break;
		}
		found[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (rc == 0 && n == 0) {
		wfail_set(f, "PROCESSING_FAILED", "ffmpeg produced no file matching '%.100s'", pat);
		rc = -1;
	}
	qsort(found, n, sizeof(found[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && wrun_add_output(r, found[i]) < 0) {
			wfail_set(f, "PROCESSING_FAILED", "too many output files");
			rc = -1;
		}
		free(found[i]);
	}
	return rc;
}

static int collect_outputs(struct wrun *r, const struct ffcmd *c, struct wfail *f)
{
	for (size_t i = 0; i < c->noutputs; i++) {
		const char *name = c->outputs[i];
		struct stat st;

		if (strchr(name, '%')) {
			if (collect_pattern(r, name, f) < 0)
				return -1;
			continue;
		}
		if (lstat(name, &st) < 0 || !S_ISREG(st.st_mode)) {
			wfail_set(f, "PROCESSING_FAILED", "ffmpeg produced no file '%.100s'", name);
			return -1;
		}
		if (wrun_add_output(r, name) < 0) {
			wfail_set(f, "PROCESSING_FAILED", "too many output files");
			return -1;
		}
	}
	return 0;
}

/* Check params and build the sandboxed command for these input names. */
static int ffmpeg_prepare(struct wrun *r, const char *const *inputs, size_t ninputs,
			  struct ffcmd *c, struct wfail *f)
{
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(r->job->params, "command");
	const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(r->job->params, "timeout");
	struct ffsandbox sb = {
		.inputs = inputs,
		.ninputs = ninputs,
		.format_whitelist = r->conf->format_whitelist,
		.devices = r->conf->devices,
		.ndevices = r->conf->ndevices,
	};
	char err[300];

	if (!cJSON_IsString(cmd)) {
		wfail_set(f, "VALIDATION_ERROR", "params.command (a string starting with "
			  "'ffmpeg') is required");
		return -1;
	}
	if (timeout && (!cJSON_IsNumber(timeout) || timeout->valuedouble < 1 ||
			timeout->valuedouble > 86400)) {
		wfail_set(f, "VALIDATION_ERROR", "params.timeout must be 1..86400 seconds");
		return -1;
	}
	if (ffcmd_build(cmd->valuestring, &sb, c, err, sizeof(err)) < 0) {
		wfail_set(f, "VALIDATION_ERROR", "ffmpeg command refused: %s", err);
		return -1;
	}
	return 0;
}

int wcheck_ffmpeg(struct wrun *r, struct wfail *f)
{
	const char *names[WORKER_MAX_INPUTS];
	const cJSON *it;
	struct ffcmd c;
	size_t n = 0;

	cJSON_ArrayForEach(it, r->job->inputs) {
		if (n < WORKER_MAX_INPUTS)
			names[n++] = it->string;
	}
	if (ffmpeg_prepare(r, names, n, &c, f) < 0)
		return -1;
	ffcmd_free(&c);
	return 0;
}

int wtype_ffmpeg(struct wrun *r, struct wfail *f)
{
	const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(r->job->params, "timeout");
	struct ffprogress fp = { .r = r };
	struct ffcmd c;
	struct wproc p = { 0 };
	char shown[1200];
	size_t o = 0;
	int rc;

	if (ffmpeg_prepare(r, (const char *const *)r->inputs, r->ninputs, &c, f) < 0)
		return -1;
	if (cJSON_IsNumber(timeout))
		r->deadline_ns = MIN(r->deadline_ns,
				     mono_ns() + (int64_t)(timeout->valuedouble * 1e9));
	fp.duration = probe_duration(r, c.first_input);
	if (c.limit_seconds > 0 && (fp.duration <= 0 || c.limit_seconds < fp.duration))
		fp.duration = c.limit_seconds;
	/* The command as run, with the long demuxer list left out. */
	for (size_t i = 0; i < c.argc && o + 1 < sizeof(shown); i++) {
		bool wl = i > 0 && strcmp(c.argv[i - 1], "-format_whitelist") == 0;
		o += (size_t)snprintf(shown + o, sizeof(shown) - o, "%s%s", i ? " " : "",
				      wl ? "(demuxers)" : c.argv[i]);
	}
	wrun_log(r, "info", "ffmpeg started: %s", shown);
	p.argv = c.argv;
	p.deadline_ns = r->deadline_ns;
	p.on_line = ffmpeg_progress_line;
	p.ctx = &fp;
	rc = wproc_run(&p);
	if (rc < 0) {
		wfail_set(f, "PROVIDER_ERROR", "could not start ffmpeg: %s", strerror(-rc));
		goto out;
	}
	if (p.timed_out)
		wrun_log(r, "warn", "ffmpeg killed at the job's deadline");
	else if (WIFEXITED(p.status))
		wrun_log(r, "info", "ffmpeg exited with code %d", WEXITSTATUS(p.status));
	else
		wrun_log(r, "warn", "ffmpeg killed by signal %d", WTERMSIG(p.status));
	if (p.timed_out || !WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0) {
		rc = proc_failed(&p, f, "ffmpeg");
		goto out;
	}
	rc = collect_outputs(r, &c, f);
out:
	wproc_done(&p);
	ffcmd_free(&c);
	return rc < 0 ? -1 : 0;
}
