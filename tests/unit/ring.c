/* Unit test for shm/ring.c and shm/doorbell.c.
 *
 * Single process: init limits, empty and full boundaries, wraparound past
 * UINT32_MAX against a queue oracle, discard.
 * Two real processes (fork) over a MAP_SHARED mapping: a producer child pushes
 * JOBRING_RING_MSGS (default 10,000,000) numbered, checksummed messages in
 * random batches with bursts and pauses; the parent pops in random batches
 * and checks order, loss, duplication and payload. The consumer sleeps on the
 * doorbell whenever the ring is empty; a poll timeout (10 s) while messages
 * are pending is a lost wake-up and fails the test. */
#include "jobring/doorbell.h"
#include "jobring/ring.h"
#include "jobring/util.h"
#include "test.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD (RING_SLOT_SIZE - 16)
#define MAX_BATCH 64
#define WAKE_TIMEOUT_MS 10000

struct msg {
	uint64_t seq;
	uint32_t sum;
	uint32_t salt;
	unsigned char payload[PAYLOAD];
};
_Static_assert(sizeof(struct msg) == RING_SLOT_SIZE, "one message per slot");

/* What the two processes share besides the ring. */
struct shared {
	struct doorbell bell;
	_Atomic uint64_t push_calls;	/* producer statistics, read after exit */
	_Atomic uint64_t full_hits;
	_Atomic uint64_t bursts;
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint32_t checksum(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void msg_make(struct msg *m, uint64_t seq)
{
	uint64_t x = seq;

	m->seq = seq;
	m->salt = (uint32_t)(seq * 2654435761u);
	for (size_t i = 0; i < PAYLOAD; i += 8) {
		uint64_t w = splitmix(&x);
		memcpy(m->payload + i, &w, 8);
	}
	m->sum = checksum(m->payload, PAYLOAD);
}

static void msg_check(const struct msg *m, uint64_t want)
{
	struct msg ref;

	if (m->seq != want) {
		fprintf(stderr, "ring: got seq %" PRIu64 ", want %" PRIu64 " (%s)\n", m->seq, want,
			m->seq < want ? "duplicate" : "lost");
		exit(T_FAIL);
	}
	CHECK_EQ(checksum(m->payload, PAYLOAD), m->sum);
	msg_make(&ref, want);
	CHECK(memcmp(&ref, m, sizeof(ref)) == 0);
}

static unsigned rnd(uint64_t *s, unsigned n)
{
	return (unsigned)(rand_next(s) % n);
}

static void spin_ns(int64_t ns)
{
	int64_t end = mono_ns() + ns;

	while (mono_ns() < end)
		;
}

static struct ring *ring_new(uint32_t slots)
{
	void *p = mmap(NULL, ring_bytes(slots), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	CHECK_EQ(ring_init(p, slots), 0);
	return p;
}

static void ring_free(struct ring *r)
{
	munmap(r, ring_bytes(ring_capacity(r)));
}

static void test_init(void)
{
	static _Alignas(RING_CACHELINE) unsigned char mem[sizeof(struct ring) + 4 * RING_SLOT_SIZE];
	struct ring *r = (struct ring *)mem;
	uint32_t bad[] = { 0, 1, 3, 6, 100, RING_MAX_SLOTS + 1, RING_MAX_SLOTS * 2, UINT32_MAX };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_EQ(ring_init(r, bad[i]), -EINVAL);
		CHECK_EQ(ring_bytes(bad[i]), 0);
	}
	CHECK_EQ(ring_bytes(4), sizeof(struct ring) + 4 * RING_SLOT_SIZE);
	CHECK_EQ(ring_bytes(RING_MAX_SLOTS), sizeof(struct ring) + (size_t)RING_MAX_SLOTS * RING_SLOT_SIZE);
	CHECK_EQ(ring_init(r, 4), 0);
	CHECK_EQ(ring_capacity(r), 4);
	CHECK_EQ(ring_count(r), 0);
	CHECK_EQ(ring_init(r, 2), 0);
	CHECK_EQ(ring_capacity(r), 2);
}

/* Empty and full boundaries, at index 0 and across UINT32_MAX. */
static void test_boundaries(uint32_t start)
{
	struct ring *r = ring_new(8);
	struct msg in[16], out[16];

	ring_set_indices(r, start);
	for (int i = 0; i < 16; i++)
		msg_make(&in[i], (uint64_t)i);

	CHECK_EQ(ring_pop(r, out, 16), 0);		/* empty */
	CHECK_EQ(ring_push(r, in, 0), 0);
	CHECK_EQ(ring_push(r, in, 10), 8);		/* exactly capacity fits */
	CHECK_EQ(ring_count(r), 8);
	CHECK_EQ(ring_push(r, in + 8, 1), 0);		/* full */
	CHECK_EQ(ring_pop(r, out, 0), 0);
	CHECK_EQ(ring_pop(r, out, 3), 3);
	for (int i = 0; i < 3; i++)
		msg_check(&out[i], (uint64_t)i);
	CHECK_EQ(ring_push(r, in + 8, 5), 3);		/* only the freed slots */
	CHECK_EQ(ring_push(r, in + 11, 1), 0);
	CHECK_EQ(ring_count(r), 8);
	CHECK_EQ(ring_pop(r, out, 16), 8);
	for (int i = 0; i < 8; i++)
		msg_check(&out[i], (uint64_t)i + 3);
	CHECK_EQ(ring_pop(r, out, 16), 0);
	CHECK_EQ(ring_count(r), 0);
	CHECK_EQ(atomic_load(&r->k_tail), (uint32_t)(start + 11));
	CHECK_EQ(atomic_load(&r->k_head), (uint32_t)(start + 11));

	/* Discard drops what is there and leaves a ring that works. */
	CHECK_EQ(ring_push(r, in, 5), 5);
	CHECK_EQ(ring_pop(r, out, 1), 1);
	CHECK_EQ(ring_push(r, in + 5, 2), 2);
	CHECK_EQ(ring_discard(r), 6);
	CHECK_EQ(ring_count(r), 0);
	CHECK_EQ(ring_pop(r, out, 16), 0);
	CHECK_EQ(ring_push(r, in + 8, 8), 8);
	CHECK_EQ(ring_pop(r, out, 16), 8);
	for (int i = 0; i < 8; i++)
		msg_check(&out[i], (uint64_t)i + 8);
	ring_free(r);
}

/* Random pushes and pops against a counting oracle, crossing UINT32_MAX. */
static void test_oracle(void)
{
	struct ring *r = ring_new(16);
	struct msg in[40], out[40];
	uint64_t s = 7, next_in = 0, next_out = 0;

	ring_set_indices(r, UINT32_MAX - 1000);
	for (int op = 0; op < 200000; op++) {
		unsigned n = rnd(&s, 40), used = (unsigned)(next_in - next_out), k;

		if (rnd(&s, 2)) {
			for (unsigned i = 0; i < n; i++)
				msg_make(&in[i], next_in + i);
			k = ring_push(r, in, n);
			CHECK_EQ(k, MIN(n, 16 - used));
			next_in += k;
		} else {
			k = ring_pop(r, out, n);
			CHECK_EQ(k, MIN(n, used));
			for (unsigned i = 0; i < k; i++)
				msg_check(&out[i], next_out + i);
			next_out += k;
		}
		CHECK_EQ(ring_count(r), next_in - next_out);
	}
	CHECK(next_out > 1000);	/* the indices did cross UINT32_MAX */
	CHECK_EQ(atomic_load(&r->k_head), (uint32_t)(UINT32_MAX - 1000 + next_out));
	ring_free(r);
}

enum pace { PACE_BUSY, PACE_PAUSES };

/* One two-process run. */
struct pair_cfg {
	const char *name;
	uint32_t slots;
	uint32_t start;		/* initial head = tail */
	uint64_t n;		/* messages */
	enum pace pace;		/* producer: bursts (busy) or random stops */
	int sleep;		/* consumer sleeps on the doorbell when empty */
	unsigned work;		/* extra checks per message: a slow consumer */
};

/* The producer child: push n messages in random batches of 1..64. */
static void produce(struct ring *r, struct shared *sh, const struct pair_cfg *c, uint64_t seed)
{
	static struct msg batch[MAX_BATCH];
	uint64_t seq = 0, s = seed, burst_left = 0;

	while (seq < c->n) {
		unsigned want = 1 + rnd(&s, MAX_BATCH), done = 0;

		if (want > c->n - seq)
			want = (unsigned)(c->n - seq);
		for (unsigned i = 0; i < want; i++)
			msg_make(&batch[i], seq + i);
		while (done < want) {
			unsigned k = ring_push(r, batch + done, want - done);

			atomic_fetch_add_explicit(&sh->push_calls, 1, memory_order_relaxed);
			if (k == 0) {
				atomic_fetch_add_explicit(&sh->full_hits, 1, memory_order_relaxed);
				sched_yield();
				continue;
			}
			bell_notify(&sh->bell);
			done += k;
		}
		seq += want;

		if (c->pace == PACE_PAUSES) {
			/* Stop at a random moment, so that the consumer falls
			 * asleep and our next push races its sleep. */
			if (rnd(&s, 2))
				spin_ns(rnd(&s, 20000));
			else
				usleep(rnd(&s, 300));
		} else if (burst_left) {
			if (--burst_left == 0)
				usleep(1 + rnd(&s, 500));	/* pause after a burst */
		} else if (rnd(&s, 2000) == 0) {
			burst_left = 1 + rnd(&s, 200);	/* back-to-back batches */
			atomic_fetch_add_explicit(&sh->bursts, 1, memory_order_relaxed);
		}
	}
}

struct consume_stats {
	uint64_t prepares, blocks, pops, slow_pauses;
};

/* The consumer (parent): pop n messages in random batches and check them.
 * With c->sleep it blocks on the doorbell whenever the ring is empty. */
static void consume(struct ring *r, struct shared *sh, const struct pair_cfg *c, pid_t child,
		    uint64_t seed, struct consume_stats *st)
{
	static struct msg buf[4 * MAX_BATCH];
	uint64_t next = 0, s = seed;

	while (next < c->n) {
		unsigned max = rnd(&s, 16) ? 1 + rnd(&s, MAX_BATCH) : 1 + rnd(&s, 4 * MAX_BATCH);
		unsigned k = ring_pop(r, buf, max);

		if (k == 0) {
			struct pollfd p = { .fd = bell_fd(&sh->bell), .events = POLLIN };
			int rc;

			if (!c->sleep) {
				sched_yield();
				continue;
			}
			st->prepares++;
			bell_sleep_prepare(&sh->bell);
			if (ring_count(r)) {	/* the mandatory re-check */
				bell_sleep_cancel(&sh->bell);
				continue;
			}
			st->blocks++;
			rc = poll(&p, 1, WAKE_TIMEOUT_MS);
			if (rc < 0 && errno == EINTR)
				continue;
			CHECK(rc >= 0);
			if (rc == 0) {
				int status;

				if (ring_count(r)) {
					fprintf(stderr, "ring: lost wake-up: %u messages pending after %d ms asleep\n",
						ring_count(r), WAKE_TIMEOUT_MS);
					exit(T_FAIL);
				}
				/* Nothing pending: only a dead producer explains it. */
				CHECK_EQ(waitpid(child, &status, WNOHANG), 0);
			}
			bell_drain(&sh->bell);
			bell_sleep_cancel(&sh->bell);
			continue;
		}
		CHECK(k <= max);
		CHECK(next + k <= c->n);
		for (unsigned i = 0; i < k; i++)
			for (unsigned w = 0; w <= c->work; w++)
				msg_check(&buf[i], next + i);
		next += k;
		st->pops++;
		/* Now and then fall behind so that the producer meets a full ring. */
		if (rnd(&s, 4096) == 0) {
			st->slow_pauses++;
			usleep(rnd(&s, 200));
		}
	}
}

/* Run producer (child) and consumer (parent) over one shared mapping; returns
 * the number of eventfd writes the producer made. */
static uint64_t run_pair(const struct pair_cfg *c)
{
	struct ring *r = ring_new(c->slots);
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct consume_stats st = { 0 };
	int64_t t0 = mono_ns();
	uint64_t rings;
	int status;
	pid_t pid;

	CHECK(sh != MAP_FAILED);
	CHECK_EQ(bell_init(&sh->bell), 0);
	ring_set_indices(r, c->start);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(300);	/* never outlive a wedged parent */
		produce(r, sh, c, 0x1234 + c->n);
		_exit(T_PASS);
	}
	consume(r, sh, c, pid, 0x9876 + c->n, &st);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == T_PASS);

	CHECK_EQ(ring_count(r), 0);
	CHECK_EQ(atomic_load(&r->k_tail), (uint32_t)(c->start + c->n));	/* wrapped as uint32 */
	rings = bell_rings(&sh->bell);
	printf("ring %s: %" PRIu64 " msgs, %u slots, %.2f s; producer: %" PRIu64 " push calls, %" PRIu64
	       " full, %" PRIu64 " bursts, %" PRIu64 " eventfd writes; consumer: %" PRIu64
	       " pops, %" PRIu64 " sleep prepares, %" PRIu64 " blocked, %" PRIu64 " slow pauses\n",
	       c->name, c->n, c->slots, (double)(mono_ns() - t0) / 1e9, atomic_load(&sh->push_calls),
	       atomic_load(&sh->full_hits), atomic_load(&sh->bursts), rings, st.pops,
	       st.prepares, st.blocks, st.slow_pauses);
	/* Each eventfd write consumes one sleeping = 1 that a prepare set. */
	CHECK(rings <= st.prepares);
	if (c->pace == PACE_PAUSES)
		CHECK(st.blocks > 0);	/* the sleep path was exercised */
	bell_close(&sh->bell);
	munmap(sh, sizeof(*sh));
	ring_free(r);
	return rings;
}

int main(void)
{
	const char *env = getenv("JOBRING_RING_MSGS");
	int64_t msgs = 10000000;
	uint64_t rings;

	if (env)
		CHECK_EQ(parse_i64(env, 1000, INT64_C(1) << 40, &msgs), 0);
	alarm(600);

	test_init();
	test_boundaries(0);
	test_boundaries(UINT32_MAX - 3);
	test_boundaries(UINT32_MAX);
	test_oracle();

	/* The main exchange: every batch size, bursts, full and empty rings,
	 * sleeps between bursts, indices crossing UINT32_MAX. The consumer
	 * sleeps whenever the ring is empty, still at most one eventfd write
	 * per push call (batches average 32 messages). */
	rings = run_pair(&(struct pair_cfg){ "stress", 256, UINT32_MAX - 1000, (uint64_t)msgs,
					    PACE_BUSY, 1, 0 });
	CHECK(rings * 8 < (uint64_t)msgs);

	/* A busy (slower) consumer that sleeps only when it ran dry: the ring
	 * stays full, so the producer almost never makes a syscall. */
	rings = run_pair(&(struct pair_cfg){ "busy", 256, UINT32_MAX - 1000, 1000000,
					    PACE_BUSY, 1, 10 });
	CHECK(rings * 32 < 1000000);

	/* A consumer that never sleeps: not a single eventfd write. */
	rings = run_pair(&(struct pair_cfg){ "spin", 64, 0, 1000000, PACE_BUSY, 0, 0 });
	CHECK_EQ(rings, 0);

	/* Wake-ups: the producer stops at random moments, the consumer sleeps
	 * whenever the ring is empty; a lost wake-up fails in consume(). */
	run_pair(&(struct pair_cfg){ "wakeup", 64, UINT32_MAX - 5, 300000, PACE_PAUSES, 1, 0 });
	return T_PASS;
}
