/* Unit test for shm/region.c: creation limits, the header check, one distinct
 * ring per ordered pair, region_reset_consumer, and a forked child that sees
 * the same rings and rings the parent's doorbell through the inherited fd. */
#include "jobring/region.h"
#include "jobring/util.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

struct msg {
	uint32_t from, to, seq;
	char pad[RING_SLOT_SIZE - 12];
};
_Static_assert(sizeof(struct msg) == RING_SLOT_SIZE, "one message per slot");

static struct msg mk(unsigned from, unsigned to, unsigned seq)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.from = from;
	m.to = to;
	m.seq = seq;
	return m;
}

/* How many messages the test puts into the ring from -> to. */
static unsigned fill_count(unsigned from, unsigned to)
{
	return 1 + from * ACTOR_COUNT + to;
}

static void test_create_limits(void)
{
	uint32_t bad[] = { 0, 1, 3, 12, RING_MAX_SLOTS + 1, RING_MAX_SLOTS * 2, UINT32_MAX };
	struct region *rg = (struct region *)&bad;	/* must stay untouched */

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_EQ(region_create(bad[i], &rg), -EINVAL);
		CHECK(rg == (struct region *)&bad);
	}
	CHECK_EQ(region_create(2, &rg), 0);
	CHECK_EQ(region_check(rg), 0);
	CHECK_EQ(ring_capacity(region_ring(rg, ACTOR_TIMER, ACTOR_INTAKE)), 2);
	region_destroy(rg);
	region_destroy(NULL);
}

static void test_names(void)
{
	CHECK_STR(actor_name(ACTOR_INTAKE), "intake");
	CHECK_STR(actor_name(ACTOR_DISPATCHER), "dispatcher");
	CHECK_STR(actor_name(ACTOR_TIMER), "timer");
	CHECK_STR(actor_name(ACTOR_REPORTER), "reporter");
	CHECK_STR(actor_name(ACTOR_NOTIFIER), "notifier");
	CHECK_STR(actor_name(ACTOR_COUNT), "unknown");
	CHECK_STR(actor_name((enum actor_id)-1), "unknown");
}

/* Every ordered pair has its own ring, inside the mapping, not overlapping
 * any other ring or doorbell; no ring for a pair with itself. */
static void test_layout(struct region *rg)
{
	const char *base = (const char *)rg, *end = base + region_bytes(rg);
	size_t rb = ring_bytes(64);
	struct { const char *p; size_t len; } seen[ACTOR_COUNT * ACTOR_COUNT];
	int nseen = 0, fds[ACTOR_COUNT];

	CHECK(region_bytes(rg) >= ACTOR_COUNT * (ACTOR_COUNT - 1) * rb);
	for (int i = 0; i < ACTOR_COUNT; i++) {
		struct doorbell *b = region_bell(rg, (enum actor_id)i);

		CHECK(b);
		CHECK((const char *)b >= base + sizeof(struct region));
		CHECK((const char *)(b + 1) <= end);
		CHECK_EQ((uintptr_t)b % RING_CACHELINE, 0);
		CHECK_EQ(atomic_load(&b->sleeping), 0);
		fds[i] = bell_fd(b);
		CHECK(fds[i] >= 0);
		CHECK(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
		CHECK(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		for (int j = 0; j < i; j++) {
			CHECK(fds[j] != fds[i]);
			CHECK(region_bell(rg, (enum actor_id)j) != b);
		}
		seen[nseen].p = (const char *)b;
		seen[nseen++].len = sizeof(*b);
	}
	CHECK(region_bell(rg, ACTOR_COUNT) == NULL);

	for (int i = 0; i < ACTOR_COUNT; i++) {
		for (int j = 0; j < ACTOR_COUNT; j++) {
			struct ring *r = region_ring(rg, (enum actor_id)i, (enum actor_id)j);

			if (i == j) {
				CHECK(r == NULL);
				continue;
			}
			CHECK(r);
			CHECK((const char *)r >= base + sizeof(struct region));
			CHECK((const char *)r + rb <= end);
			CHECK_EQ((uintptr_t)r % RING_CACHELINE, 0);
			CHECK_EQ(ring_capacity(r), 64);
			CHECK_EQ(ring_count(r), 0);
			seen[nseen].p = (const char *)r;
			seen[nseen++].len = rb;
		}
	}
	CHECK_EQ(nseen, ACTOR_COUNT + ACTOR_COUNT * (ACTOR_COUNT - 1));
	/* No two rings or bells overlap. */
	for (int a = 0; a < nseen; a++)
		for (int b = 0; b < a; b++)
			CHECK(seen[a].p + seen[a].len <= seen[b].p || seen[b].p + seen[b].len <= seen[a].p);
	CHECK(region_ring(rg, ACTOR_COUNT, ACTOR_INTAKE) == NULL);
	CHECK(region_ring(rg, ACTOR_INTAKE, ACTOR_COUNT) == NULL);
	CHECK_EQ(region_ring_used(rg, ACTOR_INTAKE, ACTOR_INTAKE), 0);
}

static void test_check(struct region *rg)
{
	uint64_t magic = rg->rg_magic;
	uint32_t v;

	CHECK_EQ(region_check(rg), 0);
	rg->rg_magic ^= 1;
	CHECK_EQ(region_check(rg), -EPROTO);
	rg->rg_magic = magic;
	CHECK_EQ(region_check(rg), 0);

	v = rg->rg_version;
	rg->rg_version = v + 1;
	CHECK_EQ(region_check(rg), -EPROTO);
	rg->rg_version = v;

	v = rg->rg_layout;
	rg->rg_layout = v ^ 0x100;
	CHECK_EQ(region_check(rg), -EPROTO);
	rg->rg_layout = v;

	v = rg->rg_actors;
	rg->rg_actors = v + 1;
	CHECK_EQ(region_check(rg), -EPROTO);
	rg->rg_actors = v;

	v = rg->rg_ring_slots;
	rg->rg_ring_slots = v * 2;	/* rings say otherwise */
	CHECK_EQ(region_check(rg), -EPROTO);
	rg->rg_ring_slots = v;

	rg->rg_ring_off[1][2] += rg->rg_bytes;	/* outside the mapping */
	CHECK_EQ(region_check(rg), -EPROTO);
	rg->rg_ring_off[1][2] -= rg->rg_bytes;
	CHECK_EQ(region_check(rg), 0);
}

/* Fill every ring with a distinct count, reset one consumer, and check that
 * exactly the rings into it were emptied and that they still work. */
static void test_reset(struct region *rg)
{
	const enum actor_id victim = ACTOR_DISPATCHER;
	struct msg m, out[64];

	for (unsigned i = 0; i < ACTOR_COUNT; i++) {
		bell_sleep_prepare(region_bell(rg, (enum actor_id)i));
		for (unsigned j = 0; j < ACTOR_COUNT; j++) {
			if (i == j)
				continue;
			for (unsigned k = 0; k < fill_count(i, j); k++) {
				m = mk(i, j, k);
				CHECK_EQ(ring_push(region_ring(rg, (enum actor_id)i, (enum actor_id)j), &m, 1), 1);
			}
			CHECK_EQ(region_ring_used(rg, (enum actor_id)i, (enum actor_id)j), fill_count(i, j));
		}
	}
	/* The consumer popped one message before it died, then more came: its
	 * cached tail is behind the tail the reset moves head to, which must
	 * not leave the ring looking like it holds ~4 billion messages. */
	CHECK_EQ(ring_pop(region_ring(rg, ACTOR_INTAKE, victim), out, 1), 1);
	for (unsigned k = 0; k < 2; k++) {
		m = mk(ACTOR_INTAKE, victim, 50 + k);
		CHECK_EQ(ring_push(region_ring(rg, ACTOR_INTAKE, victim), &m, 1), 1);
	}
	bell_notify(region_bell(rg, victim));	/* a pending eventfd count... */
	bell_sleep_prepare(region_bell(rg, victim));	/* ...and asleep again */

	region_reset_consumer(rg, victim);

	for (unsigned i = 0; i < ACTOR_COUNT; i++) {
		struct doorbell *b = region_bell(rg, (enum actor_id)i);

		CHECK_EQ(atomic_load(&b->sleeping), i == victim ? 0 : 1);
		for (unsigned j = 0; j < ACTOR_COUNT; j++) {
			if (i == j)
				continue;
			CHECK_EQ(region_ring_used(rg, (enum actor_id)i, (enum actor_id)j),
				 j == victim ? 0 : fill_count(i, j));
		}
	}
	{	/* the victim's eventfd was drained */
		struct pollfd p = { .fd = bell_fd(region_bell(rg, victim)), .events = POLLIN };
		CHECK_EQ(poll(&p, 1, 0), 0);
	}
	/* Rings into the victim work again, in order. */
	for (unsigned k = 0; k < 3; k++) {
		m = mk(ACTOR_INTAKE, victim, 100 + k);
		CHECK_EQ(ring_push(region_ring(rg, ACTOR_INTAKE, victim), &m, 1), 1);
	}
	CHECK_EQ(ring_pop(region_ring(rg, ACTOR_INTAKE, victim), out, 64), 3);
	for (unsigned k = 0; k < 3; k++)
		CHECK_EQ(out[k].seq, 100 + k);
	/* Rings out of the victim kept their messages, intact and in order. */
	CHECK_EQ(ring_pop(region_ring(rg, victim, ACTOR_TIMER), out, 64), fill_count(victim, ACTOR_TIMER));
	for (unsigned k = 0; k < fill_count(victim, ACTOR_TIMER); k++) {
		CHECK_EQ(out[k].from, victim);
		CHECK_EQ(out[k].to, ACTOR_TIMER);
		CHECK_EQ(out[k].seq, k);
	}
	region_reset_consumer(rg, ACTOR_COUNT);	/* out of range: no-op */
}

/* A forked child uses the same region: it sees the parent's message, answers
 * on another ring and rings the parent's doorbell through the inherited fd. */
static void test_child(void)
{
	struct region *rg;
	struct doorbell *bell;
	struct msg m, out[4];
	struct pollfd p;
	int status;
	pid_t pid;

	CHECK_EQ(region_create(16, &rg), 0);
	bell = region_bell(rg, ACTOR_REPORTER);
	m = mk(ACTOR_INTAKE, ACTOR_TIMER, 4242);
	CHECK_EQ(ring_push(region_ring(rg, ACTOR_INTAKE, ACTOR_TIMER), &m, 1), 1);
	bell_sleep_prepare(bell);	/* the parent plays a sleeping reporter */

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct msg got;

		if (region_check(rg) != 0 ||
		    ring_pop(region_ring(rg, ACTOR_INTAKE, ACTOR_TIMER), &got, 1) != 1 || got.seq != 4242)
			_exit(T_FAIL);
		got = mk(ACTOR_TIMER, ACTOR_REPORTER, (uint32_t)getpid());
		if (ring_push(region_ring(rg, ACTOR_TIMER, ACTOR_REPORTER), &got, 1) != 1)
			_exit(T_FAIL);
		bell_notify(region_bell(rg, ACTOR_REPORTER));
		_exit(T_PASS);
	}
	p = (struct pollfd){ .fd = bell_fd(bell), .events = POLLIN };
	CHECK_EQ(poll(&p, 1, 10000), 1);	/* woken by the child */
	bell_drain(bell);
	bell_sleep_cancel(bell);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == T_PASS);
	CHECK_EQ(bell_rings(bell), 1);
	CHECK_EQ(region_ring_used(rg, ACTOR_INTAKE, ACTOR_TIMER), 0);	/* the child popped it */
	CHECK_EQ(ring_pop(region_ring(rg, ACTOR_TIMER, ACTOR_REPORTER), out, 4), 1);
	CHECK_EQ(out[0].seq, (uint32_t)pid);
	CHECK_EQ(out[0].from, ACTOR_TIMER);
	region_destroy(rg);
}

int main(void)
{
	struct region *rg;

	test_create_limits();
	test_names();
	CHECK_EQ(region_create(64, &rg), 0);
	test_layout(rg);
	test_check(rg);
	test_reset(rg);
	region_destroy(rg);
	test_child();
	return T_PASS;
}
