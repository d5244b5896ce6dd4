/* actor.c - per-actor setup and the ring plumbing shared by all actors. */
#include "jobring/actor.h"
#include "jobring/log.h"
#include "jobring/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t actor_stopping;

static void on_stop(int sig)
{
	(void)sig;
	actor_stopping = 1;
}

static void bell_done(struct loop_op *op, int res, unsigned flags);

static void bell_arm(struct actor *a)
{
	struct doorbell *b = region_bell(a->region, a->id);
	struct io_uring_sqe *sqe = loop_sqe(&a->loop, &a->bell_op);
	io_uring_prep_read(sqe, bell_fd(b), &a->bell_buf, sizeof(a->bell_buf), 0);
}

static void bell_done(struct loop_op *op, int res, unsigned flags)
{
	struct actor *a = (struct actor *)((char *)op - offsetof(struct actor, bell_op));
	(void)flags;
	if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ECANCELED)
		log_warn("doorbell read failed: %s", strerror(-res));
	bell_arm(a);
}

int actor_init(struct actor *a)
{
	struct sigaction sa;
	int r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;	/* no SA_RESTART: io_uring_enter returns -EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((r = region_check(a->region)) < 0)
		return r;
	/* Intake and reporter acknowledge commits to clients and providers:
	 * they defer the meta fsync to an io_uring fdatasync and answer when it
	 * completes (durable.h), so the next batch is processed meanwhile. */
	if ((r = store_open(&a->store, a->cfg->data_dir, a->cfg->map_size_mb,
			    a->cfg->sync == SYNC_NONE ? STORE_SYNC_NONE
			    : a->id == ACTOR_INTAKE || a->id == ACTOR_REPORTER ? STORE_SYNC_DEFERRED
										 : STORE_SYNC_FULL)) < 0)
		return r;
	if ((r = loop_init(&a->loop, 1024)) < 0) {
		store_close(&a->store);
		return r;
	}
	a->bell_op.cb = bell_done;
	bell_arm(a);
	return 0;
}

void actor_fini(struct actor *a)
{
	actor_flush(a);
	loop_fini(&a->loop);
	store_close(&a->store);
	for (int i = 0; i < ACTOR_COUNT; i++)
		free(a->out[i].v);
}

void actor_send(struct actor *a, enum actor_id to, const struct msg *m)
{
	struct outq *q = &a->out[to];

	if (q->n == q->cap) {
		/* grow and unwrap the circular queue */
		unsigned ncap = q->cap ? q->cap * 2 : 256;
		struct msg *nv = xmalloc(ncap * sizeof(*nv));
		for (unsigned i = 0; i < q->n; i++)
			nv[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = nv;
		q->cap = ncap;
		q->head = 0;
	}
	q->v[(q->head + q->n) % q->cap] = *m;
	q->n++;
}

unsigned actor_flush(struct actor *a)
{
	unsigned left = 0;

	for (int to = 0; to < ACTOR_COUNT; to++) {
		struct outq *q = &a->out[to];
		unsigned pushed = 0;
		if (!q->n)
			continue;
		struct ring *r = region_ring(a->region, a->id, (enum actor_id)to);
		while (q->n) {
			/* push the contiguous run up to the wrap point */
			unsigned run = MIN(q->n, q->cap - q->head);
			unsigned p = ring_push(r, &q->v[q->head], run);
			q->head = (q->head + p) % q->cap;
			q->n -= p;
			pushed += p;
			if (p < run)
				break;	/* ring full: push back, retry next turn */
		}
		if (pushed) {
			a->msgs_out += pushed;
			bell_notify(region_bell(a->region, (enum actor_id)to));
		}
		left += q->n;
	}
	return left;
}

unsigned actor_recv(struct actor *a, actor_msg_fn fn, unsigned max)
{
	struct msg batch[64];
	unsigned total = 0;

	for (int from = 0; from < ACTOR_COUNT && total < max; from++) {
		if (from == (int)a->id)
			continue;
		struct ring *r = region_ring(a->region, (enum actor_id)from, a->id);
		for (;;) {
			unsigned n = ring_pop(r, batch, MIN(ARRAY_SIZE(batch), max - total));
			for (unsigned i = 0; i < n; i++)
				fn(a, (enum actor_id)from, &batch[i]);
			total += n;
			if (n == 0 || total >= max)
				break;
		}
	}
	a->msgs_in += total;
	return total;
}

int actor_has_input(struct actor *a)
{
	for (int from = 0; from < ACTOR_COUNT; from++)
		if (from != (int)a->id && ring_count(region_ring(a->region, (enum actor_id)from, a->id)))
			return 1;
	return 0;
}

int actor_wait(struct actor *a, int64_t timeout_ms)
{
	struct doorbell *b = region_bell(a->region, a->id);
	int r;

	a->turns++;
	if (actor_flush(a) > 0 && (timeout_ms < 0 || timeout_ms > 5))
		timeout_ms = 5;	/* a consumer is behind: retry the push soon */
	if (timeout_ms != 0) {
		bell_sleep_prepare(b);
		/* Re-check after announcing sleep: a producer that published
		 * before seeing our flag left its messages where we now look. */
		if (actor_has_input(a) || actor_stopping)
			timeout_ms = 0;
	}
	r = loop_wait(&a->loop, timeout_ms);
	bell_sleep_cancel(b);
	return r == -EINTR ? 0 : r;
}
