/* bench_int.h - private to bench*.c: the harness's state, shared by the
 * command (bench.c), the server helpers (bench_srv.c) and the io_uring engine
 * (bench_run.c). Not a module surface: nothing outside bench*.c includes it. */
#ifndef JOBRING_BENCH_INT_H
#define JOBRING_BENCH_INT_H

#include "jobring/bench.h"
#include "jobring/buf.h"
#include "jobring/httpd.h"
#include "jobring/loop.h"
#include "jobring/strmap.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_JOBS 20000000u
#define BENCH_MAX_CONNS 4096u
#define BENCH_MAX_ORGS 10000u
#define BENCH_ID_LEN 48		/* job ids are "job_" + 20 chars */
#define BENCH_TOKEN_LEN 128
#define BENCH_PATH_LEN 160
#define BENCH_MAX_RESPONSE (1u << 20)	/* head + body of one answer */

enum bench_mode { MODE_LIFECYCLE, MODE_SUBMIT, MODE_SOAK, MODE_CRASH };

/* Per job. Times are mono_ns(); 0 = not yet. */
struct bjob {
	char id[BENCH_ID_LEN];
	int64_t t_send, t_ack, t_created, t_disp, t_run, t_done, t_hook;
	uint16_t org;
	uint8_t acked;		/* got a 2xx */
	uint8_t terminal;	/* a complete/failed report was answered */
	uint8_t ok_completes;	/* terminal reports answered {"ok":true} */
	uint8_t dispatches;	/* dispatches the provider received */
	uint8_t hooks;		/* webhook deliveries received */
	uint8_t got;		/* crash check: GET said complete */
	uint8_t hop_done;	/* bit per hop: recorded */
	uint8_t failed;		/* reported failed (--fail-rate) */
	uint8_t counted;	/* settle(): 1 acked+terminal, 2 + webhook */
};

/* One provider run of a job: the dispatch's attempt and where to report. */
struct brun {
	struct brun *next;	/* report queue, delay queue */
	uint32_t job;
	uint32_t attempt;
	int stage;		/* RUN_RUNNING, RUN_TERMINAL */
	int fail;
	int tries;
	int64_t due;		/* delay / retry queues */
	char token[BENCH_TOKEN_LEN];
	char path[BENCH_PATH_LEN];
};

enum { RUN_RUNNING, RUN_TERMINAL };

struct bqueue {
	struct brun *head, *tail;
	size_t n;
};

/* What a client connection's current request is for. */
enum { REQ_SUBMIT, REQ_GET, REQ_REPORT };

/* A keep-alive HTTP/1.1 client connection, one request at a time. */
struct hconn {
	struct loop_op op;
	struct bench *b;
	int fd;
	int is_report;
	int busy;		/* a request is in flight */
	int receiving;		/* the op in flight: 0 send, 1 recv, 2 a NOP
				 * that reports connect_err */
	int connect_err;
	int what;		/* REQ_* */
	uint32_t job;
	struct brun *run;
	int64_t t_send;
	struct buf out;
	size_t out_off;
	struct buf in;
	struct hconn *next_idle;
};

struct borg {
	char id[64];
	char auth[160];		/* "Authorization: Bearer rb_...\r\n" */
};

struct bench {
	/* options */
	enum bench_mode mode;
	uint64_t n;
	unsigned conns, report_conns, orgs;
	double rate, duration_s, fail_rate;
	int64_t latency_ms;
	int json, quiet, keep, webhooks, sync_none;
	int stall_s;
	const char *plot, *url, *admin_token, *type, *plan, *data;
	char provider_host[64];
	uint16_t provider_port;
	char secret[80];

	/* the server */
	char host[64];
	uint16_t port, pport;
	char tmp[256], datadir[512], cfgpath[512], logpath[512];
	char admin[128];
	pid_t server_pid;	/* our child, or 0 */
	char self[4096];

	/* engine */
	struct loop loop;
	struct httpd *http;
	int listen_fd;
	struct bjob *jobs;
	struct borg *org;
	struct strmap ids;	/* job id → bjob (webhooks) */
	struct hconn *cc, *rc;	/* client and report connections */
	struct hconn *idle_c, *idle_r;
	struct bqueue reports, delayed, retry;
	char cb_host[64];
	uint16_t cb_port;
	uint64_t next;		/* next job index to submit */
	uint64_t answered;	/* submits answered (any way) */
	uint64_t terminal;	/* jobs with a terminal report answered */
	uint64_t hooks_first;	/* first webhook of a job */
	uint64_t acked_terminal, acked_hooked;	/* settled jobs */
	uint64_t get_bad;
	uint64_t verify_next, verified;
	int verifying;
	int64_t t0, t_last_ack, t_last_event, t_last_done, t_last_hook, t_progress;
	int64_t wall_off_ns;	/* CLOCK_REALTIME - mono_ns() */
	uint64_t rng;
	uint64_t crash_at;	/* kill when this many acked; 0 = never */
	int crashed;
	int failed_run;		/* fatal problem: stop */
	uint64_t report_errors, bad_sigs;
	int client_fail_seen, report_fail_seen;
	/* soak */
	struct hist win;	/* send → complete of this interval */
	int64_t t_sample;
	struct bench_result *res;
};

/** Set by SIGINT/SIGTERM (bench.c): the engine stops and reports. */
extern volatile sig_atomic_t bench_interrupted;

/* bench_srv.c */
/** Write the config, start `jobring serve`, wait for /health. 0 or -1 (printed). */
int bsrv_start(struct bench *b);
/** Start it again on the same config and data dir (after a crash). */
int bsrv_restart(struct bench *b);
/** SIGTERM and wait (SIGKILL after 20 s). */
void bsrv_stop(struct bench *b);
/** kill -9 every pid of the run file and reap our child. */
void bsrv_kill9(struct bench *b);
/** Sums of VmRSS and RssAnon (kB) of the run file's pids; -1 if unknown. */
void bsrv_rss(const struct bench *b, int64_t *rss_kb, int64_t *anon_kb);
/** CPU seconds (user + system) used so far by the run file's pids, or -1. */
double bsrv_cpu_s(const struct bench *b);
/** Run `jobring check DATADIR`; its exit status (or -1). */
int bsrv_check(struct bench *b);
/** Remove the temporary dir (unless --keep). */
void bsrv_cleanup(struct bench *b);
/** One blocking request (setup and checks): status or -errno; body in *resp. */
int bsrv_http(const struct bench *b, const char *method, const char *path, const char *auth,
	      const char *body, struct buf *resp);
/** Bind a TCP listener on host:port (0: any free port); the fd, -errno. */

/* bench_prov.c */
/** FIFO of runs (report, delay and retry queues); bq_free frees the runs. */
void bq_push(struct bqueue *q, struct brun *r);
struct brun *bq_pop(struct bqueue *q);
void bq_free(struct bqueue *q);
/** Record hop h of job j once (negative durations count as 0). */
void bjob_record(struct bench *b, struct bjob *j, enum bench_hop h, int64_t ns);
/** Hops whose two ends may arrive in either order: recorded by whichever end
 *  comes second (createdAt/dispatch, complete/webhook). */
void bjob_dispatch_hop(struct bench *b, struct bjob *j);
void bjob_hook_hop(struct bench *b, struct bjob *j);
/** Count j once it is acknowledged and terminal, and again once it also has
 *  its webhook: the end-to-end numbers, whatever order the events came in. */
void bjob_settle(struct bench *b, struct bjob *j);
/** The httpd handler: POST /dispatch (provider), POST /webhook (receiver),
 *  POST /dispatch/{id}/cancel (accepted, ignored). arg is the struct bench. */
void bprov_handler(struct httpd *h, struct httpd_req *req, void *arg);

/* bench_run.c */
/** Run the engine for b's mode until done; fills b->res. 0 or -1. */
int brun_engine(struct bench *b);

#endif
