/* bench_srv.c - the server under test for `jobring bench`: its config, its
 * start, stop, kill -9 and restart, its RSS, `jobring check`, and a small
 * blocking HTTP client for the setup calls (orgs, keys, endpoints). */
#include "bench_int.h"
#include "jobring/util.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


static int free_port(uint16_t *port)
{
	int fd = net_listen("127.0.0.1", 0, port);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/* ---- blocking HTTP (setup only) ---------------------------------------------------- */

static int dial(const char *host, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 30 };
	int fd;

	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -EINVAL;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int bsrv_http(const struct bench *b, const char *method, const char *path, const char *auth,
	      const char *body, struct buf *resp)
{
	struct buf req;
	int fd, r, status = -EPROTO;
	const char *p;

	buf_reset(resp);
	if ((fd = dial(b->host, b->port)) < 0)
		return fd;
	buf_init(&req);
	buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n", method, path,
		   b->host, b->port);
	if (auth)
		buf_printf(&req, "Authorization: Bearer %s\r\n", auth);
	if (body)
		buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			   strlen(body), body);
	else
		buf_puts(&req, "\r\n");
	r = write_all(fd, req.data, req.len);
	buf_free(&req);
	if (r < 0) {
		close(fd);
		return r;
	}
	for (;;) {
		ssize_t n;
		if (resp->len >= BENCH_MAX_RESPONSE) {
			close(fd);
			return -EMSGSIZE;
		}
		buf_reserve(resp, 16384);
		if ((n = read(fd, resp->data + resp->len, 16384)) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		buf_commit(resp, (size_t)n);
	}
	close(fd);
	/* "HTTP/1.1 201 Created\r\n...\r\n\r\nbody": keep the body only */
	if (resp->len > 12 && strncmp(buf_cstr(resp), "HTTP/1.", 7) == 0) {
		status = atoi(resp->data + 9);
		if ((p = strstr(resp->data, "\r\n\r\n")))
			buf_consume(resp, (size_t)(p + 4 - resp->data));
	}
	return status;
}

/* ---- config and start ----------------------------------------------------------- */

static void rand_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[64];

	rand_bytes(raw, nbytes);
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

static int write_config(struct bench *b)
{
	struct buf c;
	char signing[40], prov[512] = "";
	int fd, r;
	/* about 8 KiB of map per job is plenty (record, indexes, events, ledger) */
	uint64_t map_mb = 1024 + b->n / 128;

	rand_hex(signing, 16);
	/* submit mode has no provider: the jobs just wait (parked) */
	if (b->mode != MODE_SUBMIT)
		snprintf(prov, sizeof(prov), "{ \"id\": \"bench\", \"url\": \"http://%s:%u/dispatch\", "
			 "\"secret\": \"%s\", \"types\": [\"%s\"], \"capacity\": 1000000 }",
			 b->provider_host, b->provider_port, b->secret, b->type);
	buf_init(&c);
	buf_printf(&c,
		   "{\n"
		   "  \"listen\": \"127.0.0.1:%u\",\n"
		   "  \"providerListen\": \"127.0.0.1:%u\",\n"
		   "  \"publicUrl\": \"http://127.0.0.1:%u\",\n"
		   "  \"callbackUrl\": \"http://127.0.0.1:%u\",\n"
		   "  \"dataDir\": \"%s\",\n"
		   "  \"storage\": { \"mapSizeMB\": %llu, \"sync\": \"%s\" },\n"
		   "  \"adminToken\": \"%s\",\n"
		   "  \"signingKey\": \"sk_bench_%s\",\n"
		   "  \"dispatch\": { \"timeoutMs\": 10000, \"backoffMs\": 200 },\n"
		   "  \"webhooks\": { \"allowPrivateTargets\": true, \"backoffMs\": 200 },\n"
		   "  \"http\": { \"maxConnections\": 100000 },\n"
		   "  \"providers\": [ %s ],\n"
		   "  \"jobTypes\": { \"%s\": { \"summary\": \"no-op job of jobring bench\",\n"
		   "                 \"schema\": { \"type\": \"object\" },\n"
		   "                 \"price\": { \"base\": 1000 }, \"maxExecutionSeconds\": 3600 } },\n"
		   "  \"plans\": { \"%s\": { \"concurrentJobs\": 1000000, \"requestsPerMinute\": 100000000,\n"
		   "                \"maxJobTimeout\": 3600, \"queueLimit\": 100000000, \"jobTypes\": [\"*\"] } }\n"
		   "}\n",
		   b->port, b->pport, b->port, b->pport, b->datadir, (unsigned long long)map_mb,
		   b->sync_none ? "none" : "full", b->admin, signing, prov, b->type, b->plan);
	if ((fd = open(b->cfgpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		buf_free(&c);
		return -errno;
	}
	r = write_all(fd, c.data, c.len);
	close(fd);
	buf_free(&c);
	return r;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static int spawn(struct bench *b)
{
	char runfile[600];
	struct buf resp;
	pid_t pid;
	int64_t end;

	snprintf(runfile, sizeof(runfile), "%s/jobring.run", b->datadir);
	unlink(runfile);
	if ((pid = fork()) < 0) {
		fprintf(stderr, "jobring bench: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(b->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setpgid(0, 0);	/* a terminal's Ctrl-C reaches us, and we stop it */
		execl(b->self, "jobring", "serve", "--config", b->cfgpath, (char *)NULL);
		_exit(127);
	}
	b->server_pid = pid;
	buf_init(&resp);
	for (end = mono_ns() + 30000000000LL; mono_ns() < end; sleep_ms(20)) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "jobring bench: the server exited at start (see %s)\n",
				b->logpath);
			b->server_pid = 0;
			buf_free(&resp);
			return -1;
		}
		if (access(runfile, F_OK) == 0 && bsrv_http(b, "GET", "/health", NULL, NULL, &resp) == 200) {
			buf_free(&resp);
			return 0;
		}
	}
	buf_free(&resp);
	fprintf(stderr, "jobring bench: the server did not answer /health in 30 s (see %s)\n",
		b->logpath);
	return -1;
}

int bsrv_start(struct bench *b)
{
	const char *tmpdir = getenv("TMPDIR");
	ssize_t n;
	int r;

	n = readlink("/proc/self/exe", b->self, sizeof(b->self) - 1);
	if (n <= 0) {
		fprintf(stderr, "jobring bench: cannot find our own binary\n");
		return -1;
	}
	b->self[n] = '\0';
	snprintf(b->tmp, sizeof(b->tmp), "%s/jobring-bench-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(b->tmp)) {
		fprintf(stderr, "jobring bench: mkdtemp %s: %s\n", b->tmp, strerror(errno));
		return -1;
	}
	snprintf(b->datadir, sizeof(b->datadir), "%s/data", b->tmp);
	snprintf(b->cfgpath, sizeof(b->cfgpath), "%s/config.json", b->tmp);
	snprintf(b->logpath, sizeof(b->logpath), "%s/server.log", b->tmp);
	snprintf(b->host, sizeof(b->host), "127.0.0.1");
	if (!b->admin_token) {
		memcpy(b->admin, "adm_bench_", 10);
		rand_hex(b->admin + 10, 16);
	} else {
		snprintf(b->admin, sizeof(b->admin), "%s", b->admin_token);
	}
	if ((r = free_port(&b->port)) < 0 || (r = free_port(&b->pport)) < 0 ||
	    (r = write_config(b)) < 0) {
		fprintf(stderr, "jobring bench: cannot prepare the server: %s\n", strerror(-r));
		return -1;
	}
	return spawn(b);
}

int bsrv_restart(struct bench *b)
{
	return spawn(b);
}

static int reap(pid_t pid, int timeout_ms)
{
	int st;
	for (int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000; mono_ns() < end; sleep_ms(10))
		if (waitpid(pid, &st, WNOHANG) == pid)
			return 0;
	return -ETIMEDOUT;
}

void bsrv_stop(struct bench *b)
{
	if (b->server_pid <= 0)
		return;
	kill(b->server_pid, SIGTERM);
	if (reap(b->server_pid, 20000) < 0) {
		kill(b->server_pid, SIGKILL);
		reap(b->server_pid, 5000);
	}
	b->server_pid = 0;
}

/* The pids of the run file: the supervisor, its actors, its worker. */
static int run_pids(const struct bench *b, pid_t *out, int max)
{
	char path[600], *text = NULL;
	size_t len;
	cJSON *j, *it;
	int n = 0;

	snprintf(path, sizeof(path), "%s/jobring.run", b->data ? b->data : b->datadir);
	if (read_file(path, &text, &len) < 0)
		return 0;
	if ((j = cJSON_Parse(text))) {
		const cJSON *pid = cJSON_GetObjectItemCaseSensitive(j, "pid");
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "worker");
		if (cJSON_IsNumber(pid) && pid->valueint > 0 && n < max)
			out[n++] = pid->valueint;
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "actors"))
			if (cJSON_IsNumber(it) && it->valueint > 0 && n < max)
				out[n++] = it->valueint;
		if (cJSON_IsNumber(w) && w->valueint > 0 && n < max)
			out[n++] = w->valueint;
		cJSON_Delete(j);
	}
	free(text);
	return n;
}

void bsrv_kill9(struct bench *b)
{
	pid_t pids[16];
	int n = run_pids(b, pids, 16);

	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	if (b->server_pid > 0) {
		kill(b->server_pid, SIGKILL);
		reap(b->server_pid, 10000);
		b->server_pid = 0;
	}
	/* the actors die with the supervisor (PDEATHSIG); wait until they are gone */
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 500 && kill(pids[i], 0) == 0; k++)
			sleep_ms(10);
}

void bsrv_rss(const struct bench *b, int64_t *rss_kb, int64_t *anon_kb)
{
	pid_t pids[16];
	int n = run_pids(b, pids, 16);
	int64_t total = 0, anon = 0;

	*rss_kb = *anon_kb = -1;
	if (n == 0)
		return;
	for (int i = 0; i < n; i++) {
		char path[64], line[256];
		FILE *f;
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pids[i]);
		if (!(f = fopen(path, "re")))
			continue;
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "VmRSS:", 6) == 0)
				total += atoll(line + 6);
			else if (strncmp(line, "RssAnon:", 8) == 0)
				anon += atoll(line + 8);
		fclose(f);
	}
	*rss_kb = total;
	*anon_kb = anon;
}

double bsrv_cpu_s(const struct bench *b)
{
	pid_t pids[16];
	int n = run_pids(b, pids, 16);
	long hz = sysconf(_SC_CLK_TCK);
	unsigned long long total = 0;

	if (n == 0 || hz <= 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char path[64], line[1024], *p;
		unsigned long long ut, st;
		FILE *f;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pids[i]);
		if (!(f = fopen(path, "re")))
			return -1;
		p = fgets(line, sizeof(line), f);
		fclose(f);
		/* after "pid (comm) ": state is field 3, utime and stime 14 and 15 */
		if (!p || !(p = strrchr(line, ')')) ||
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
			return -1;
		total += ut + st;
	}
	return (double)total / (double)hz;
}

int bsrv_check(struct bench *b)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(b->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(b->self, "jobring", "check", b->datadir, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? 0 : 0;
}

void bsrv_cleanup(struct bench *b)
{
	if (!b->tmp[0])
		return;
	if (b->keep) {
		fprintf(stderr, "jobring bench: kept %s (config, data, server.log)\n", b->tmp);
		return;
	}
	nftw(b->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
