/* metrics.h - counters, gauges and latency histograms shared by the actors,
 * rendered by intake as the Prometheus text format at GET /metrics.
 *
 * The supervisor maps one MAP_SHARED block before forking (metrics_create);
 * every actor process calls metrics_attach() with it, after which the
 * metrics_* recorders work anywhere in that process (they are no-ops while
 * nothing is attached, e.g. in unit tests and `jobring check`). Counters are
 * relaxed atomics; each histogram has exactly one writing actor, and the
 * reader tolerates a scrape racing a record (a bucket may be off by one).
 * Counters live as long as the supervisor: they restart at zero with it. */
#ifndef JOBRING_METRICS_H
#define JOBRING_METRICS_H

#include "jobring/config.h"
#include "jobring/hist.h"

#include <stdint.h>

struct buf;
struct region;
struct store;

enum metrics_hist {
	MH_SUBMIT,		/* POST /jobs: request complete → answer queued after commit */
	MH_DISPATCH,		/* waiting → dispatched (createdAt or retry → dispatchedAt) */
	MH_EXEC,		/* dispatched → complete */
	MH_WEBHOOK,		/* event → webhook delivered */
	MH_COUNT
};

#define METRICS_MAX_CODES 48

struct metrics;

/** Map the shared block (before fork). NULL on failure. */
struct metrics *metrics_create(const struct config *cfg);
void metrics_destroy(struct metrics *m);
/** Use m for this process's recorders. */
void metrics_attach(struct metrics *m);

void metrics_job_created(const char *type);
/** A job reached complete, failed (with its error code) or cancelled. */
void metrics_job_terminal(const char *type, int status, const char *error_code);
/** An API error answer with this code (e.g. RATE_LIMITED). */
void metrics_api_error(const char *code);
void metrics_provider_busy(int provider, unsigned busy);
void metrics_observe_us(enum metrics_hist h, uint64_t us);
void metrics_count(const char *name);	/* a free-form event counter (e.g. "webhook_failed") */

/** Render everything (plus live gauges read from the store and the region)
 *  in the Prometheus text exposition format. */
void metrics_render(struct buf *out, const struct config *cfg, struct store *st,
		    struct region *rg);

#endif
