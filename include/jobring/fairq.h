/* fairq.h - the dispatcher's waiting queue: fair across orgs.
 *
 * Each org has a FIFO of waiting job ids. fairq_pop() serves orgs round-robin
 * (one job per org per round), higher plan priority first, skipping orgs the
 * caller says are at their concurrency limit. So one org's flood of N jobs
 * delays another org's first job by at most one dispatch per busy org.
 * A job id is queued at most once (pushing it again is a no-op).
 *
 * Ownership: the queue copies ids; fairq_free releases everything. */
#ifndef JOBRING_FAIRQ_H
#define JOBRING_FAIRQ_H

#include "jobring/strmap.h"

#include <stddef.h>

struct fq_org;

struct fairq {
	struct strmap orgs;	/* org id → struct fq_org */
	struct strmap queued;	/* job id → (void *)1 */
	struct fq_org **ring;	/* orgs with waiting jobs, round-robin order */
	size_t nring, capring, cursor;
	size_t len;
};

void fairq_init(struct fairq *q);
void fairq_free(struct fairq *q);
/** Queue a job (at the back, or at the front to put back one we could not
 *  place). Returns 1 if queued, 0 if it was already queued. */
int fairq_push(struct fairq *q, const char *org, int priority, const char *job, int front);
/** Take the next job: the highest-priority org, round-robin among equals, for
 *  which eligible(ctx, org) is true (NULL: all). 1 with org_out/job_out set
 *  (each ≥ STRMAP_KEY_MAX bytes), 0 if none is eligible. */
int fairq_pop(struct fairq *q, int (*eligible)(void *ctx, const char *org), void *ctx,
	      char *org_out, char *job_out);
/** Forget a queued job wherever it is (e.g. cancelled). 1 if it was queued. */
int fairq_remove(struct fairq *q, const char *job);
static inline size_t fairq_len(const struct fairq *q)
{
	return q->len;
}

#endif
