/* fairq.c - per-org FIFOs served round-robin by priority. */
#include "jobring/fairq.h"
#include "jobring/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fq_org {
	char id[STRMAP_KEY_MAX];
	int priority;
	char (*jobs)[STRMAP_KEY_MAX];	/* circular */
	size_t head, n, cap;
	int in_ring;
};

void fairq_init(struct fairq *q)
{
	memset(q, 0, sizeof(*q));
	strmap_init(&q->orgs);
	strmap_init(&q->queued);
}

void fairq_free(struct fairq *q)
{
	size_t pos = 0;
	struct strmap_slot *s;

	while ((s = strmap_next(&q->orgs, &pos))) {
		struct fq_org *o = s->val;
		free(o->jobs);
		free(o);
	}
	strmap_free(&q->orgs);
	strmap_free(&q->queued);
	free(q->ring);
	memset(q, 0, sizeof(*q));
}

static void ring_add(struct fairq *q, struct fq_org *o)
{
	if (o->in_ring)
		return;
	if (q->nring == q->capring) {
		q->capring = q->capring ? q->capring * 2 : 16;
		q->ring = xrealloc(q->ring, q->capring * sizeof(*q->ring));
	}
	/* join just before the cursor: it is served last in this round */
	size_t at = q->nring ? q->cursor % q->nring : 0;
	memmove(&q->ring[at + 1], &q->ring[at], (q->nring - at) * sizeof(*q->ring));
	q->ring[at] = o;
	q->nring++;
	if (q->nring > 1)
		q->cursor = (at + 1) % q->nring;
	o->in_ring = 1;
}

static void ring_del(struct fairq *q, size_t i)
{
	q->ring[i]->in_ring = 0;
	memmove(&q->ring[i], &q->ring[i + 1], (q->nring - i - 1) * sizeof(*q->ring));
	q->nring--;
	if (q->cursor > i)
		q->cursor--;
	if (q->nring == 0 || q->cursor >= q->nring)
		q->cursor = 0;
}

int fairq_push(struct fairq *q, const char *org, int priority, const char *job, int front)
{
	struct fq_org *o;

	if (strmap_get(&q->queued, job))
		return 0;
	if (!(o = strmap_get(&q->orgs, org))) {
		o = xcalloc(1, sizeof(*o));
		snprintf(o->id, sizeof(o->id), "%s", org);
		strmap_put(&q->orgs, o->id, o);
	}
	o->priority = priority;
	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 8;
		char (*nj)[STRMAP_KEY_MAX] = xmalloc(ncap * sizeof(*nj));
		for (size_t i = 0; i < o->n; i++)
			memcpy(nj[i], o->jobs[(o->head + i) % o->cap], STRMAP_KEY_MAX);
		free(o->jobs);
		o->jobs = nj;
		o->cap = ncap;
		o->head = 0;
	}
	if (front) {
		o->head = (o->head + o->cap - 1) % o->cap;
		snprintf(o->jobs[o->head], STRMAP_KEY_MAX, "%s", job);
	} else {
		snprintf(o->jobs[(o->head + o->n) % o->cap], STRMAP_KEY_MAX, "%s", job);
	}
	o->n++;
	q->len++;
	strmap_put(&q->queued, job, (void *)1);
	ring_add(q, o);
	return 1;
}

int fairq_pop(struct fairq *q, int (*eligible)(void *ctx, const char *org), void *ctx,
	      char *org_out, char *job_out)
{
	size_t best = SIZE_MAX;
	int best_prio = 0;

	for (size_t k = 0; k < q->nring; k++) {
		size_t i = (q->cursor + k) % q->nring;
		struct fq_org *o = q->ring[i];
		if (best != SIZE_MAX && o->priority <= best_prio)
			continue;
		if (eligible && !eligible(ctx, o->id))
			continue;
		best = i;
		best_prio = o->priority;
	}
	if (best == SIZE_MAX)
		return 0;
	struct fq_org *o = q->ring[best];
	memcpy(job_out, o->jobs[o->head], STRMAP_KEY_MAX);
	memcpy(org_out, o->id, STRMAP_KEY_MAX);
	o->head = (o->head + 1) % o->cap;
	o->n--;
	q->len--;
	strmap_del(&q->queued, job_out);
	q->cursor = best + 1;
	if (o->n == 0)
		ring_del(q, best);
	else if (q->cursor >= q->nring)
		q->cursor = 0;
	return 1;
}

int fairq_remove(struct fairq *q, const char *job)
{
	size_t pos = 0;
	struct strmap_slot *s;

	if (!strmap_get(&q->queued, job))
		return 0;
	while ((s = strmap_next(&q->orgs, &pos))) {
		struct fq_org *o = s->val;
		for (size_t i = 0; i < o->n; i++) {
			size_t at = (o->head + i) % o->cap;
			if (strcmp(o->jobs[at], job) != 0)
				continue;
			for (size_t k = i; k + 1 < o->n; k++)
				memcpy(o->jobs[(o->head + k) % o->cap], o->jobs[(o->head + k + 1) % o->cap],
				       STRMAP_KEY_MAX);
			o->n--;
			q->len--;
			strmap_del(&q->queued, job);
			if (o->n == 0)
				for (size_t r = 0; r < q->nring; r++)
					if (q->ring[r] == o) {
						ring_del(q, r);
						break;
					}
			return 1;
		}
	}
	return 0;
}
