/* ThreadSanitizer test for shm/ring.c and shm/doorbell.c: two threads stand
 * in for the producer and consumer processes (TSan cannot see across
 * processes). 1,000,000 messages in random batches, random producer stops,
 * and the consumer sleeping on the doorbell whenever the ring is empty.
 * TSan fails the run (exit 66) on any data race, e.g. a slot read before its
 * tail was published or overwritten before its head was released.
 *
 * Built without ASan and with -fsanitize=thread (tests/meson.build).
 * Note: TSan does not model atomic_thread_fence; the doorbell's fences order
 * only atomics, so no false report can come from them, but TSan cannot prove
 * the no-lost-wake-up argument either: the poll timeout below checks that. */
#include "jobring/doorbell.h"
#include "jobring/ring.h"
#include "test.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#define N_MSGS 1000000u
#define MAX_BATCH 64
#define SLOTS 128
#define WAKE_TIMEOUT_MS 10000

struct msg {
	uint64_t seq;
	uint64_t check;
	uint64_t words[(RING_SLOT_SIZE - 16) / 8];
};
_Static_assert(sizeof(struct msg) == RING_SLOT_SIZE, "one message per slot");

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct ring *ring;
static struct doorbell bell;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

static void msg_make(struct msg *m, uint64_t seq)
{
	uint64_t s = seq + 1, sum = 0;

	m->seq = seq;
	for (size_t i = 0; i < ARRAY_SIZE(m->words); i++) {
		m->words[i] = xorshift(&s);
		sum = sum * 31 + m->words[i];
	}
	m->check = sum;
}

static int msg_ok(const struct msg *m, uint64_t want)
{
	struct msg ref;

	msg_make(&ref, want);
	return memcmp(&ref, m, sizeof(ref)) == 0;
}

static void pause_random(uint64_t *s)
{
	unsigned r = (unsigned)(xorshift(s) % 64);

	if (r == 0)
		usleep((useconds_t)(xorshift(s) % 200));
	else if (r < 4)
		sched_yield();
}

static void *producer(void *arg)
{
	static struct msg batch[MAX_BATCH];
	uint64_t seq = 0, s = 12345;

	(void)arg;
	while (seq < N_MSGS) {
		unsigned want = 1 + (unsigned)(xorshift(&s) % MAX_BATCH), done = 0;

		if (want > N_MSGS - seq)
			want = (unsigned)(N_MSGS - seq);
		for (unsigned i = 0; i < want; i++)
			msg_make(&batch[i], seq + i);
		while (done < want) {
			unsigned k = ring_push(ring, batch + done, want - done);

			if (k == 0) {
				sched_yield();
				continue;
			}
			bell_notify(&bell);
			done += k;
		}
		seq += want;
		pause_random(&s);
	}
	return NULL;
}

int main(void)
{
	static struct msg buf[MAX_BATCH];
	uint64_t next = 0, s = 777, prepares = 0, blocks = 0;
	pthread_t t;

	ring = aligned_alloc(RING_CACHELINE, ring_bytes(SLOTS));
	CHECK(ring);
	CHECK_EQ(ring_init(ring, SLOTS), 0);
	ring_set_indices(ring, UINT32_MAX - 500);
	CHECK_EQ(bell_init(&bell), 0);
	CHECK_EQ(pthread_create(&t, NULL, producer, NULL), 0);

	while (next < N_MSGS) {
		unsigned max = 1 + (unsigned)(xorshift(&s) % MAX_BATCH);
		unsigned k = ring_pop(ring, buf, max);

		if (k == 0) {
			struct pollfd p = { .fd = bell_fd(&bell), .events = POLLIN };
			int rc;

			prepares++;
			bell_sleep_prepare(&bell);
			if (ring_count(ring)) {
				bell_sleep_cancel(&bell);
				continue;
			}
			blocks++;
			rc = poll(&p, 1, WAKE_TIMEOUT_MS);
			if (rc < 0 && errno == EINTR)
				continue;
			CHECK(rc >= 0);
			if (rc == 0 && ring_count(ring)) {
				fprintf(stderr, "ring_tsan: lost wake-up, %u pending\n", ring_count(ring));
				return T_FAIL;
			}
			bell_drain(&bell);
			bell_sleep_cancel(&bell);
			continue;
		}
		for (unsigned i = 0; i < k; i++) {
			if (!msg_ok(&buf[i], next + i)) {
				fprintf(stderr, "ring_tsan: bad message at %" PRIu64 " (seq %" PRIu64 ")\n",
					next + i, buf[i].seq);
				return T_FAIL;
			}
		}
		next += k;
		pause_random(&s);
	}
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(ring_count(ring), 0);
	/* Each eventfd write consumes one sleeping = 1 that a prepare set. */
	CHECK(bell_rings(&bell) <= prepares);
	printf("ring_tsan: %u msgs, %" PRIu64 " sleep prepares, %" PRIu64 " blocked, %" PRIu64
	       " eventfd writes\n", N_MSGS, prepares, blocks, bell_rings(&bell));
	bell_close(&bell);
	free(ring);
	return T_PASS;
}
