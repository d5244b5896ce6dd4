/* bench.h - `jobring bench`, the benchmarking harness (DESIGN.md §10).
 *
 * bench_main() starts a jobring server of its own (our binary, `serve` on a
 * temporary data dir with storage.sync=full, free loopback ports, a `bench`
 * job type, a plan with huge limits and the harness as the only provider) or
 * targets one with --url. In one thread on one io_uring loop it then runs
 * K keep-alive client connections that submit N jobs across M orgs, its own
 * provider (verifies the dispatch signature, answers 202, reports `running`
 * then `complete` over keep-alive connections) and its own webhook receiver,
 * and measures every hop of the lifecycle with hist.h histograms.
 *
 * The rest of this header is the harness's pure logic, exported for the unit
 * test: summaries of a histogram, the result as a table, as JSON and as an
 * SVG plot, and the soak verdict. None of it allocates beyond the caller's
 * struct buf, and none of it logs.
 *
 * The JSON shape (--json; times in milliseconds, rates in jobs per second):
 *
 *   { "mode": "lifecycle"|"submit"|"soak"|"crash",
 *     "jobs": N, "connections": K, "orgs": M, "rate": R|null,
 *     "providerLatencyMs": L, "failRate": F, "sync": "full"|"none"|null,
 *     "submitted": { "acked": a, "rejected": r, "errors": e },
 *     "completed": c, "failed": f,
 *     "webhooks": { "enabled": bool, "received": w },
 *     "elapsedSeconds": s, "jobsPerSecond": x, "submitPerSecond": y,
 *     "cpu": { "harnessSeconds": h, "serverSeconds": s|null },
 *     "hops": [ { "name": "submit"|"dispatch"|"running"|"complete"|"webhook",
 *                 "label": "...", "count": n, "minMs", "p50Ms", "p99Ms",
 *                 "p999Ms", "maxMs", "meanMs" }, ... ],   (measured hops only)
 *     "total": { the same keys: client send → last measured hop },
 *     "soak": { "samples": [ { "t": s, "acked": n, "p99Ms": x,
 *               "rssKb": k|null, "anonKb": k|null } ], "flat": bool, "verdict": "..." }  (soak)
 *     "crash": { "killedAtAcked": n, "acked": n, "completeOnGet": n,
 *                "missing": n, "duplicates": n, "redispatched": n,
 *                "checkExit": rc, "ok": bool }                         (crash)
 *     "notes": [ "...", ... ] }
 */
#ifndef JOBRING_BENCH_H
#define JOBRING_BENCH_H

#include "jobring/buf.h"
#include "jobring/hist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The hops of the lifecycle, in order. All values are nanoseconds. */
enum bench_hop {
	BENCH_SUBMIT,	/* client send → its 2xx */
	BENCH_DISPATCH,	/* job createdAt → the provider got the dispatch */
	BENCH_RUNNING,	/* provider got the dispatch → its `running` was answered */
	BENCH_COMPLETE,	/* `running` answered → `complete` answered, minus latency */
	BENCH_WEBHOOK,	/* `complete` answered → the receiver got job.completed */
	BENCH_NHOPS,
};

/** Short name of a hop ("submit", "dispatch", ...); static storage. */
const char *bench_hop_name(enum bench_hop h);
/** Table label of a hop ("waiting → dispatched"); static storage. */
const char *bench_hop_label(enum bench_hop h);

/** The numbers shown for one histogram (nanoseconds). */
struct bench_summary {
	uint64_t count;
	uint64_t min, p50, p99, p999, max;
	double mean;
};

/** Summarize h: quantiles by hist_quantile() (nearest rank, within
 *  HIST_REL_ERR), exact min/max/mean. All zero when h is empty. */
void bench_summarize(const struct hist *h, struct bench_summary *ret);

#define BENCH_MAX_SAMPLES 4096	/* soak samples kept */
#define BENCH_MAX_NOTES 8
#define BENCH_NOTE_LEN 256

/** One soak sample: taken every few seconds. */
struct bench_sample {
	double t_s;		/* seconds since the first submit */
	uint64_t acked;		/* jobs acknowledged so far */
	uint64_t p99_ns;	/* p99 of send → complete in this interval (0: none) */
	int64_t rss_kb;		/* the server's VmRSS (all its pids), -1 if unknown */
	int64_t anon_kb;	/* its RssAnon: heap, no file pages; -1 if unknown */
};

/** Soak verdict over samples[0..n): the first sample is warm-up and is
 *  skipped; the rest are cut in thirds. Flat (1) when the last third's mean
 *  memory is within 10% + 8 MiB of the first third's and its mean p99 within
 *  2x (+ 1 ms) of the first third's; not flat (0) otherwise; -1 when there
 *  are fewer than 4 samples to judge. Memory is anon_kb where known (the
 *  LMDB map's file pages count in VmRSS and grow with the data by design),
 *  else rss_kb. why (may be NULL) gets one line. */
int bench_soak_verdict(const struct bench_sample *s, size_t n, char *why, size_t whysz);

/** What a run measured; filled by the harness, read by the writers below. */
struct bench_result {
	const char *mode;		/* "lifecycle", "submit", "soak", "crash" */
	uint64_t jobs;
	unsigned conns, orgs;
	double rate;			/* jobs/s, 0 = as fast as possible */
	int64_t provider_latency_ms;
	double fail_rate;
	const char *sync;		/* "full"/"none" when we started the server, else NULL */
	uint64_t acked, rejected, errors;
	uint64_t completed, failed;
	bool webhooks_on;
	uint64_t webhooks;
	int64_t elapsed_ns;		/* first submit → last event measured */
	int64_t submit_ns;		/* first submit → last submit answer */
	bool hop_on[BENCH_NHOPS];
	struct hist hop[BENCH_NHOPS];
	struct hist total;		/* client send → the last measured hop */
	double harness_cpu_s;		/* our user + system CPU during the run */
	double server_cpu_s;		/* the server's (all its pids), -1 if unknown */
	/* soak */
	struct bench_sample samples[BENCH_MAX_SAMPLES];
	size_t nsamples;
	/* crash */
	bool crash;
	uint64_t killed_at, complete_on_get, missing, duplicates, redispatched;
	int check_exit;
	char notes[BENCH_MAX_NOTES][BENCH_NOTE_LEN];
	unsigned nnotes;
};

/** Add a note (printf-style) to r; notes past BENCH_MAX_NOTES are dropped. */
void bench_note(struct bench_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** End-to-end rate: terminal jobs / elapsed_ns in jobs/s (submit mode: the
 *  submit rate); 0 when not measured. */
double bench_jobs_per_s(const struct bench_result *r);
/** Submit rate: acknowledged jobs / submit_ns in jobs/s; 0 when not measured. */
double bench_submit_per_s(const struct bench_result *r);
/** 1 when a crash run did kill the server, then found every acknowledged
 *  job complete exactly once, and `jobring check` passed. */
int bench_crash_ok(const struct bench_result *r);

/** Append the human table to out. 0 or -ENOBUFS. */
int bench_table(const struct bench_result *r, struct buf *out);
/** Append the JSON document described above to out. 0 or -errno. */
int bench_json(const struct bench_result *r, struct buf *out);
/** Append an SVG (width x height px): one <path> per measured hop with
 *  data, each the percentile curve (y: percentile 0..100, x: latency on a
 *  log scale), plus axes, grid and a legend drawn without <path>. 0 or
 *  -ENOBUFS. */
int bench_svg(const struct bench_result *r, unsigned width, unsigned height, struct buf *out);

/** `jobring bench [options]` (see --help). Returns the exit status: 0 when
 *  the run finished (and, in crash mode, passed), 1 when it did not, 2 for a
 *  usage error. */
int bench_main(int argc, char **argv);

#endif
