/* supervisor.c - forks and watches the actors.
 *
 * Order matters for LMDB and io_uring: the supervisor opens the store only
 * for set-up and closes it before forking; each actor opens its own
 * environment and ring after fork. The supervisor keeps just the region,
 * the listening sockets and the children's PIDs. */
#include "jobring/supervisor.h"
#include "jobring/account.h"
#include "jobring/actor.h"
#include "jobring/log.h"
#include "jobring/metrics.h"
#include "jobring/region.h"
#include "jobring/store.h"
#include "jobring/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 10000		/* a run this long resets the backoff */
#define DRAIN_MS 10000

struct child {
	pid_t pid;
	int64_t started;	/* mono ms */
	int64_t restart_at;	/* mono ms, 0 = none scheduled */
	int backoff_ms;
	unsigned restarts;
};

struct sup {
	struct config *cfg;
	const struct serve_opts *opts;
	struct region *region;
	struct metrics *metrics;
	int intake_fd, reporter_fd;
	int handoff[2];
	uint16_t intake_port, reporter_port;
	struct child actors[ACTOR_COUNT];
	struct child worker;
	pid_t self;
	char signing_key[80], admin_token[80];
	char demo_key[API_KEY_MAX];
};

static int64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

static int bind_listener(const struct addr_cfg *a, uint16_t *bound)
{
	return net_listen(a->host, a->port, bound);
}

static void write_runfile(struct sup *s)
{
	char path[1100], tmp[1110], buf[1024];
	int n, fd;

	snprintf(path, sizeof(path), "%s/jobring.run", s->cfg->data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(buf, sizeof(buf),
		     "{\"pid\":%d,\"listen\":%u,\"providerListen\":%u,\"actors\":{", (int)s->self,
		     s->intake_port, s->reporter_port);
	for (int i = 0; i < ACTOR_COUNT; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s\"%s\":%d", i ? "," : "",
			      actor_name((enum actor_id)i), (int)s->actors[i].pid);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "},\"worker\":%d}\n", (int)s->worker.pid);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return;
	if (write_all(fd, buf, (size_t)n) == 0)
		rename(tmp, path);
	close(fd);
}

/* In the child, right after fork: die with the supervisor, name ourselves. */
static void child_setup(struct sup *s, const char *name)
{
	sigset_t all;
	char comm[16];

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != s->self)	/* the supervisor died before prctl */
		_exit(1);
	snprintf(comm, sizeof(comm), "jr-%s", name);
	prctl(PR_SET_NAME, comm);
	log_init(name, s->cfg->log_format == LOGFMT_JSON);
}

static int (*const actor_mains[ACTOR_COUNT])(struct actor *) = {
	[ACTOR_INTAKE] = intake_main,
	[ACTOR_DISPATCHER] = dispatcher_main,
	[ACTOR_TIMER] = timerwheel_main,
	[ACTOR_REPORTER] = reporter_main,
	[ACTOR_NOTIFIER] = notifier_main,
};

static void start_actor(struct sup *s, enum actor_id id)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("fork %s: %s", actor_name(id), strerror(errno));
		s->actors[id].restart_at = mono_ms() + BACKOFF_MAX_MS;
		return;
	}
	if (pid == 0) {
		struct actor a;
		int rc;

		child_setup(s, actor_name(id));
		metrics_attach(s->metrics);
		memset(&a, 0, sizeof(a));
		a.id = id;
		a.cfg = s->cfg;
		a.region = s->region;
		a.listen_fd = id == ACTOR_INTAKE ? s->intake_fd
			    : id == ACTOR_REPORTER ? s->reporter_fd : -1;
		a.handoff_fd = id == ACTOR_INTAKE ? s->handoff[0]
			     : id == ACTOR_NOTIFIER ? s->handoff[1] : -1;
		snprintf(a.signing_key, sizeof(a.signing_key), "%s", s->signing_key);
		snprintf(a.admin_token, sizeof(a.admin_token), "%s", s->admin_token);
		if (id != ACTOR_INTAKE && s->intake_fd >= 0)
			close(s->intake_fd);
		if (id != ACTOR_REPORTER && s->reporter_fd >= 0)
			close(s->reporter_fd);
		if (id != ACTOR_INTAKE)
			close(s->handoff[0]);
		if (id != ACTOR_NOTIFIER)
			close(s->handoff[1]);
		if ((rc = actor_init(&a)) < 0) {
			log_error("cannot start: %s", strerror(-rc));
			_exit(1);
		}
		if (id == ACTOR_INTAKE || id == ACTOR_REPORTER || id == ACTOR_TIMER) {
			/* what a previous process of ours committed but never told
			 * the dispatcher (killed between commit and ring push) */
			struct msg m = { .kind = MSG_RESCAN, .at = now_ms() };
			actor_send(&a, ACTOR_DISPATCHER, &m);
		}
		rc = actor_mains[id](&a);
		actor_fini(&a);
		_exit(rc ? 1 : 0);
	}
	s->actors[id].pid = pid;
	s->actors[id].started = mono_ms();
	s->actors[id].restart_at = 0;
}

static void start_worker(struct sup *s)
{
	char listen[64], jobs[16];
	const struct provider_cfg *p = &s->cfg->providers[0];
	const char *hostport;
	pid_t pid;

	/* The demo worker serves the first provider's URL. */
	hostport = strstr(p->url, "://");
	hostport = hostport ? hostport + 3 : p->url;
	snprintf(listen, sizeof(listen), "%.*s", (int)strcspn(hostport, "/"), hostport);
	snprintf(jobs, sizeof(jobs), "%d", p->capacity);
	pid = fork();
	if (pid < 0) {
		s->worker.restart_at = mono_ms() + BACKOFF_MAX_MS;
		return;
	}
	if (pid == 0) {
		child_setup(s, "worker");
		close(s->intake_fd);
		close(s->reporter_fd);
		setenv("JOBRING_PROVIDER_SECRET", p->secret, 1);
		execl(s->opts->worker_exe, "jobring", "worker", "--listen", listen, "--jobs", jobs,
		      (char *)NULL);
		log_error("exec %s: %s", s->opts->worker_exe, strerror(errno));
		_exit(127);
	}
	s->worker.pid = pid;
	s->worker.started = mono_ms();
	s->worker.restart_at = 0;
}

static void on_exit_child(struct sup *s, struct child *c, const char *name, int status)
{
	int64_t now = mono_ms();

	if (WIFSIGNALED(status))
		log_warn("%s (pid %d) killed by signal %d; restarting", name, (int)c->pid,
			 WTERMSIG(status));
	else
		log_warn("%s (pid %d) exited with %d; restarting", name, (int)c->pid,
			 WEXITSTATUS(status));
	if (now - c->started > STABLE_MS)
		c->backoff_ms = 0;
	c->backoff_ms = c->backoff_ms ? MIN(c->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
	c->restart_at = now + c->backoff_ms;
	c->pid = 0;
	c->restarts++;
	(void)s;
}

/* --demo: an org with credits (made once), a fresh API key every start (only
 * its hash is kept, so it can be shown just now), and a sample clip. */
static int demo_setup(struct sup *s, struct store *st)
{
	char org[ORG_ID_MAX] = "";
	MDB_txn *t;
	MDB_val v;
	int r;

	if ((r = store_begin(st, 0, &t)) < 0)
		return r;
	if (store_get(st, t, DB_META, "demo:org", 8, &v) == 0 && v.mv_size < sizeof(org)) {
		memcpy(org, v.mv_data, v.mv_size);
		org[v.mv_size] = '\0';
	} else {
		struct org_rec o;
		const char *plan = config_plan(s->cfg, "pro") ? "pro" : s->cfg->plans[0].name;
		if ((r = account_org_create(st, t, "Demo", plan, now_ms(), &o)) < 0 ||
		    (r = account_grant(st, t, o.id, 10LL * 1000000000, now_ms(), NULL)) < 0 ||
		    (r = store_put(st, t, DB_META, "demo:org", 8, o.id, strlen(o.id))) < 0)
			goto fail;
		snprintf(org, sizeof(org), "%s", o.id);
	}
	if ((r = account_key_create(st, t, org, "demo", 0, now_ms(), s->demo_key,
				    sizeof(s->demo_key), NULL)) < 0)
		goto fail;
	if ((r = store_commit(t)) < 0)
		return r;
	{
		/* a 5-second test clip, made once with FFmpeg */
		char dir[1100], path[1200], cmd[4200];
		snprintf(dir, sizeof(dir), "%s/samples", s->cfg->data_dir);
		snprintf(path, sizeof(path), "%s/sample.mp4", dir);
		mkdir(dir, 0700);
		if (access(path, R_OK) != 0) {
			snprintf(cmd, sizeof(cmd),
				 "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=duration=5:size=640x360:rate=25 "
				 "-f lavfi -i sine=frequency=440:duration=5 -c:v libx264 -pix_fmt yuv420p "
				 "-c:a aac -shortest '%s.tmp.mp4' && mv '%s.tmp.mp4' '%s'", path, path, path);
			if (system(cmd) != 0)
				log_warn("could not make the sample clip with ffmpeg (is it installed?)");
		}
	}
	return 0;
fail:
	store_abort(t);
	return r;
}

static void demo_banner(struct sup *s)
{
	const char *h = s->cfg->listen.host;
	unsigned p = s->intake_port;

	fprintf(stderr,
		"\n"
		"  jobring demo is running (Ctrl-C stops everything)\n"
		"\n"
		"    API        http://%s:%u\n"
		"    Dashboard  http://%s:%u/dashboard\n"
		"    API key    %s   (shown once: keep it)\n"
		"\n"
		"  Submit an FFmpeg job on a sample clip this server serves itself:\n"
		"\n"
		"    curl -s http://%s:%u/jobs -H 'Authorization: Bearer %s' \\\n"
		"      -H 'Content-Type: application/json' -d '{\"type\":\"ffmpeg\",\n"
		"      \"inputs\":{\"in.mp4\":\"http://%s:%u/samples/sample.mp4\"},\n"
		"      \"params\":{\"command\":\"ffmpeg -i in.mp4 -vf scale=320:-2 out.mp4\"}}'\n"
		"\n"
		"  then:  curl -s http://%s:%u/jobs/JOB_ID -H 'Authorization: Bearer %s'\n"
		"\n",
		h, p, h, p, s->demo_key, h, p, s->demo_key, h, p, h, p, s->demo_key);
}

static int setup_store(struct sup *s)
{
	struct store st;
	int r;

	if ((r = store_open(&st, s->cfg->data_dir, s->cfg->map_size_mb,
			    s->cfg->sync == SYNC_FULL)) < 0) {
		log_error("cannot open the store in %s: %s", s->cfg->data_dir, strerror(-r));
		return r;
	}
	if (s->cfg->signing_key)
		snprintf(s->signing_key, sizeof(s->signing_key), "%s", s->cfg->signing_key);
	else if ((r = store_secret(&st, "signingKey", "JOBRING_SIGNING_KEY", "sk_", s->signing_key,
				   sizeof(s->signing_key))) < 0)
		goto out;
	if (s->cfg->admin_token)
		snprintf(s->admin_token, sizeof(s->admin_token), "%s", s->cfg->admin_token);
	else if ((r = store_secret(&st, "adminToken", "JOBRING_ADMIN_TOKEN", "adm_", s->admin_token,
				   sizeof(s->admin_token))) < 0)
		goto out;
	if (s->opts->demo && (r = demo_setup(s, &st)) < 0)
		goto out;
out:
	store_close(&st);
	if (r < 0)
		log_error("cannot set up the store: %s", strerror(-r));
	return r;
}

int supervisor_run(struct config *cfg, const struct serve_opts *opts)
{
	struct sup s;
	sigset_t mask;
	int sfd, r, stopping = 0;
	int64_t stop_deadline = 0;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.opts = opts;
	s.self = getpid();
	s.intake_fd = s.reporter_fd = -1;
	log_init("supervisor", cfg->log_format == LOGFMT_JSON);
	if (cfg->sync == SYNC_NONE)
		log_warn("storage.sync is \"none\": acknowledged jobs can be lost on a crash "
			 "(benchmarks only)");
	if (setup_store(&s) < 0)
		return 1;
	if ((r = bind_listener(&cfg->listen, &s.intake_port)) < 0) {
		log_error("cannot listen on %s:%u: %s", cfg->listen.host, cfg->listen.port, strerror(-r));
		return 1;
	}
	s.intake_fd = r;
	if ((r = bind_listener(&cfg->provider_listen, &s.reporter_port)) < 0) {
		log_error("cannot listen on %s:%u: %s", cfg->provider_listen.host,
			  cfg->provider_listen.port, strerror(-r));
		return 1;
	}
	s.reporter_fd = r;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s.handoff) < 0) {
		log_error("socketpair: %s", strerror(errno));
		return 1;
	}
	if (!(s.metrics = metrics_create(cfg))) {
		log_error("cannot map the metrics block");
		return 1;
	}
	if ((r = region_create((uint32_t)cfg->ring_slots, &s.region)) < 0) {
		log_error("cannot create the shared region: %s", strerror(-r));
		return 1;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		log_error("signalfd: %s", strerror(errno));
		return 1;
	}

	for (int i = 0; i < ACTOR_COUNT; i++)
		start_actor(&s, (enum actor_id)i);
	if (opts->demo)
		start_worker(&s);
	write_runfile(&s);
	log_info("jobring %s serving: API http://%s:%u  providers http://%s:%u  data %s",
		 "0.1.0", cfg->listen.host, s.intake_port, cfg->provider_listen.host,
		 s.reporter_port, cfg->data_dir);
	if (opts->demo)
		demo_banner(&s);

	for (;;) {
		struct signalfd_siginfo si;
		struct pollfd pfd = { sfd, POLLIN, 0 };
		int64_t now = mono_ms(), wake = -1;
		int alive = 0;

		for (int i = 0; i < ACTOR_COUNT; i++) {
			struct child *c = &s.actors[i];
			alive += c->pid > 0;
			if (!stopping && !c->pid && c->restart_at) {
				if (c->restart_at <= now) {
					region_reset_consumer(s.region, (enum actor_id)i);
					start_actor(&s, (enum actor_id)i);
					write_runfile(&s);
					log_info("%s restarted (pid %d, restart #%u)",
						 actor_name((enum actor_id)i), (int)c->pid, c->restarts);
				} else if (wake < 0 || c->restart_at - now < wake) {
					wake = c->restart_at - now;
				}
			}
		}
		if (opts->demo && !stopping && !s.worker.pid && s.worker.restart_at) {
			if (s.worker.restart_at <= now) {
				start_worker(&s);
				write_runfile(&s);
			} else if (wake < 0 || s.worker.restart_at - now < wake) {
				wake = s.worker.restart_at - now;
			}
		}
		alive += s.worker.pid > 0;
		if (stopping) {
			if (!alive)
				break;
			if (now >= stop_deadline) {
				log_warn("drain timed out; killing what is left");
				for (int i = 0; i < ACTOR_COUNT; i++)
					if (s.actors[i].pid > 0)
						kill(s.actors[i].pid, SIGKILL);
				if (s.worker.pid > 0)
					kill(s.worker.pid, SIGKILL);
				stop_deadline = now + 60000;
			}
			wake = stop_deadline - now;
		}
		poll(&pfd, 1, wake < 0 ? -1 : (int)MIN(wake, 60000));

		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
				if (!stopping) {
					log_info("draining (signal %u)", si.ssi_signo);
					stopping = 1;
					stop_deadline = mono_ms() + DRAIN_MS;
					for (int i = 0; i < ACTOR_COUNT; i++)
						if (s.actors[i].pid > 0)
							kill(s.actors[i].pid, SIGTERM);
					if (s.worker.pid > 0)
						kill(s.worker.pid, SIGTERM);
				}
			}
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			for (int i = 0; i < ACTOR_COUNT; i++) {
				struct child *c = &s.actors[i];
				if (c->pid != pid)
					continue;
				if (stopping) {
					c->pid = 0;
					log_info("%s stopped", actor_name((enum actor_id)i));
				} else {
					on_exit_child(&s, c, actor_name((enum actor_id)i), status);
				}
			}
			if (s.worker.pid == pid) {
				if (stopping)
					s.worker.pid = 0;
				else
					on_exit_child(&s, &s.worker, "worker", status);
			}
		}
	}
	{
		char path[1100];
		snprintf(path, sizeof(path), "%s/jobring.run", cfg->data_dir);
		unlink(path);
	}
	region_destroy(s.region);
	metrics_destroy(s.metrics);
	log_info("stopped");
	return 0;
}
