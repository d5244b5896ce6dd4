/* timerwheel.c - the timer actor's loop: every durable deadline (execution
 * timeouts, dispatch backoffs, webhook retries), the stuck-job sweep every
 * sweep.intervalSeconds and the retention purge every hour. What firing
 * means lives in deadlines.c; this file owns the clocks, the one write
 * transaction per turn (group commit) and the rings.
 *
 * A failed turn (MDB_MAP_FULL on commit, a store error) sends nothing: the
 * timers records are still in LMDB, so the actor waits a second, rebuilds
 * the wheel from them and tries again. Nothing is lost. */
#include "jobring/actor.h"
#include "jobring/deadlines.h"
#include "jobring/log.h"
#include "jobring/util.h"

#include <errno.h>
#include <string.h>

#define PURGE_EVERY_MS (3600 * 1000)
#define FIRST_PURGE_MS (60 * 1000)
#define RETRY_MS 1000

struct sched {
	uint64_t next_sweep, next_purge;	/* monotonic ms */
	uint64_t retry_at;			/* after a failed turn */
	int rebuild;
	uint64_t swept, purged_jobs, purged_events;	/* at the last log line */
};

/* actor_recv's callback has no context pointer; one actor per process. */
static struct deadlines *the_dl;

static uint64_t mono_now(void)
{
	return (uint64_t)mono_ns() / 1000000u;
}

static void on_msg(struct actor *a, enum actor_id from, const struct msg *m)
{
	char id[sizeof(m->job) + 1];

	(void)a;
	if (m->kind != MSG_TIMER_ARM && m->kind != MSG_TIMER_CANCEL) {
		log_debug("ignored message kind %u from %s", m->kind, actor_name(from));
		return;
	}
	memcpy(id, m->job, sizeof(m->job));
	id[sizeof(m->job)] = '\0';
	if (m->kind == MSG_TIMER_CANCEL) {
		deadlines_forget(the_dl, m->timer_kind, id, m->attempt);
		return;
	}
	if (deadlines_arm(the_dl, m->timer_kind, id, m->attempt, m->due, now_ms(), mono_now()) < 0)
		log_warn("bad timer arm from %s (kind %u)", actor_name(from), m->timer_kind);
}

static void log_passes(const struct deadlines *d, struct sched *sc)
{
	if (!d->sweep_status && d->swept != sc->swept) {
		log_info("stuck sweep: timed out %llu jobs",
			 (unsigned long long)(d->swept - sc->swept));
		sc->swept = d->swept;
	}
	if (!d->purge_phase && (d->purged_jobs != sc->purged_jobs ||
				d->purged_events != sc->purged_events)) {
		log_info("retention purge: deleted %llu jobs and %llu events",
			 (unsigned long long)(d->purged_jobs - sc->purged_jobs),
			 (unsigned long long)(d->purged_events - sc->purged_events));
		sc->purged_jobs = d->purged_jobs;
		sc->purged_events = d->purged_events;
	}
}

/* One turn of work, if any is due: fire, sweep and purge in one write
 * transaction; after the commit, send what they produced. */
static void turn(struct actor *a, struct deadlines *d, struct dl_out *out, struct sched *sc)
{
	const struct config *cfg = a->cfg;
	int64_t wall = now_ms();
	uint64_t mono = mono_now(), seq = 0;
	int fire, sweep, purge, r = 0;
	MDB_txn *t;

	if (mono < sc->retry_at)
		return;
	if (sc->rebuild) {
		if ((r = deadlines_rebuild(d, &a->store, wall, mono)) < 0)
			goto failed;
		log_info("rebuilt: %zu deadlines armed", deadlines_count(d));
		sc->rebuild = 0;
	}
	deadlines_clock(d, wall, mono);
	fire = deadlines_next_mono(d) <= mono;
	sweep = d->sweep_status || mono >= sc->next_sweep;
	purge = d->purge_phase || mono >= sc->next_purge;
	if (!fire && !sweep && !purge)
		return;
	if (mono >= sc->next_sweep)
		sc->next_sweep = mono + (uint64_t)cfg->sweep.interval_seconds * 1000u;
	if (mono >= sc->next_purge)
		sc->next_purge = mono + PURGE_EVERY_MS;

	if ((r = store_begin(&a->store, 0, &t)) < 0)
		goto failed;
	if (fire)
		r = deadlines_fire(d, &a->store, t, wall, mono, out);
	if (r >= 0 && sweep)
		r = deadlines_sweep(d, &a->store, t, wall,
				    (int64_t)cfg->sweep.stuck_seconds * 1000, out);
	if (r >= 0 && purge)
		r = deadlines_purge(d, &a->store, t, wall,
				    (int64_t)cfg->retention_days * 86400000);
	if (r >= 0 && out->events)
		r = store_peek_seq(&a->store, t, "event", &seq);
	if (r < 0) {
		store_abort(t);
		goto failed;
	}
	if ((r = store_commit(t)) < 0)
		goto failed;
	for (size_t i = 0; i < out->n; i++)
		actor_send(a, out->v[i].to, &out->v[i].m);
	if (out->events) {
		struct msg ev;
		memset(&ev, 0, sizeof(ev));
		ev.kind = MSG_EVENTS;
		ev.seq = seq;
		ev.at = wall;
		actor_send(a, ACTOR_NOTIFIER, &ev);
	}
	out->n = 0;
	out->events = 0;
	log_passes(d, sc);
	return;

failed:
	if (r == -ENOSPC)
		log_error("the store is full (MDB_MAP_FULL): deadlines wait; retrying in %d ms",
			  RETRY_MS);
	else
		log_error("timer turn failed: %s; retrying in %d ms", strerror(-r), RETRY_MS);
	out->n = 0;
	out->events = 0;
	sc->rebuild = 1;	/* what the lost transaction consumed is only in the db */
	sc->retry_at = mono + RETRY_MS;
}

/* How long the next sleep may be: until the next deadline, sweep or purge. */
static int64_t sleep_ms(const struct deadlines *d, const struct sched *sc)
{
	uint64_t mono = mono_now(), next;

	if (sc->retry_at > mono)
		return (int64_t)MIN(sc->retry_at - mono, (uint64_t)RETRY_MS);
	if (sc->rebuild || d->sweep_status || d->purge_phase)
		return 0;
	next = MIN(deadlines_next_mono(d), MIN(sc->next_sweep, sc->next_purge));
	return next > mono ? (int64_t)MIN(next - mono, (uint64_t)INT32_MAX) : 0;
}

int timerwheel_main(struct actor *a)
{
	struct deadlines d;
	struct dl_out out;
	struct sched sc;
	uint64_t mono = mono_now();

	memset(&out, 0, sizeof(out));
	memset(&sc, 0, sizeof(sc));
	deadlines_init(&d, DL_MAX_DEFAULT, now_ms(), mono);
	the_dl = &d;
	/* The first sweep waits one interval: after a restart of the whole
	 * server, providers get a chance to report before jobs count as stuck. */
	sc.next_sweep = mono + (uint64_t)a->cfg->sweep.interval_seconds * 1000u;
	sc.next_purge = mono + FIRST_PURGE_MS;
	sc.rebuild = 1;
	log_info("started");
	while (!actor_stopping) {
		actor_recv(a, on_msg, 4096);
		turn(a, &d, &out, &sc);
		if (actor_stopping)
			break;
		actor_wait(a, sleep_ms(&d, &sc));
	}
	log_info("drained (%zu deadlines pending, %llu fired, %llu stale)", deadlines_count(&d),
		 (unsigned long long)d.fired, (unsigned long long)d.stale);
	the_dl = NULL;
	deadlines_free(&d);
	dl_out_free(&out);
	return 0;
}
