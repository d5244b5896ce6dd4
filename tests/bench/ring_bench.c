/* ring_bench - SPSC ring between two processes (fork, MAP_SHARED):
 *
 *   baseline    round trip of one cache line between the two processes (what
 *               any cross-core handoff costs on this machine)
 *   throughput  messages/s for several producer batch sizes; the consumer pops
 *               up to 64 at a time and either sleeps on the doorbell when the
 *               ring is empty (the real actor loop; eventfd writes counted) or
 *               keeps polling
 *   latency     one-way time from the producer's timestamp in a message to its
 *               receipt by the consumer: (a) consumer asleep on the eventfd,
 *               producer pushes at a random moment; (b) consumer awake,
 *               polling the ring. p50/p90/p99/p99.9/max over the samples.
 *
 * Usage: ring_bench [MESSAGES [SAMPLES]]   (defaults 10,000,000 and 10,000)
 * Build it optimised (a release build), not under a sanitizer. */
#include "jobring/doorbell.h"
#include "jobring/ring.h"
#include "jobring/util.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 1024
#define POP_MAX 64

struct msg {
	uint64_t seq;
	int64_t ts_ns;
	char pad[RING_SLOT_SIZE - 16];
};
_Static_assert(sizeof(struct msg) == RING_SLOT_SIZE, "one message per slot");

struct shared {
	struct doorbell bell;
	_Alignas(RING_CACHELINE) _Atomic uint64_t ping;
	_Alignas(RING_CACHELINE) _Atomic uint64_t pong;
};

static struct ring *ring;
static struct shared *sh;

static void die(const char *what)
{
	fprintf(stderr, "ring_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *map_shared(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void reset(void)
{
	ring_set_indices(ring, 0);
	atomic_store(&sh->bell.sleeping, 0);
	atomic_store(&sh->bell.rings, 0);
	bell_drain(&sh->bell);
}

/* Block until a producer rang or a message is there (the actor loop's wait). */
static int consumer_wait(void)
{
	struct pollfd p = { .fd = bell_fd(&sh->bell), .events = POLLIN };

	bell_sleep_prepare(&sh->bell);
	if (ring_count(ring)) {
		bell_sleep_cancel(&sh->bell);
		return 0;
	}
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			die("poll");
	bell_drain(&sh->bell);
	bell_sleep_cancel(&sh->bell);
	return 1;
}

static pid_t spawn(void (*fn)(uint64_t, unsigned), uint64_t n, unsigned arg)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		fn(n, arg);
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ring_bench: producer failed\n");
		exit(1);
	}
}

static void produce_batches(uint64_t n, unsigned batch)
{
	static struct msg b[POP_MAX];
	uint64_t seq = 0;

	while (seq < n) {
		unsigned want = batch, done = 0;

		if (want > n - seq)
			want = (unsigned)(n - seq);
		for (unsigned i = 0; i < want; i++)
			b[i].seq = seq + i;
		while (done < want) {
			unsigned k = ring_push(ring, b + done, want - done);

			if (k == 0) {
				cpu_relax();
				continue;
			}
			bell_notify(&sh->bell);
			done += k;
		}
		seq += want;
	}
}

static void pong(uint64_t n, unsigned unused)
{
	(void)unused;
	for (uint64_t i = 1; i <= n; i++) {
		while (atomic_load_explicit(&sh->ping, memory_order_acquire) != i)
			cpu_relax();
		atomic_store_explicit(&sh->pong, i, memory_order_release);
	}
}

static void bench_baseline(uint64_t n)
{
	int64_t t0;
	pid_t pid;

	atomic_store(&sh->ping, 0);
	atomic_store(&sh->pong, 0);
	pid = spawn(pong, n, 0);
	t0 = mono_ns();
	for (uint64_t i = 1; i <= n; i++) {
		atomic_store_explicit(&sh->ping, i, memory_order_release);
		while (atomic_load_explicit(&sh->pong, memory_order_acquire) != i)
			cpu_relax();
	}
	printf("baseline: cache-line round trip between the processes %.2f us (%" PRIu64 " round trips)\n",
	       (double)(mono_ns() - t0) / 1e3 / (double)n, n);
	reap(pid);
}

static void bench_throughput(uint64_t n, unsigned batch, int sleep)
{
	static struct msg out[POP_MAX];
	uint64_t next = 0, sleeps = 0;
	int64_t t0;
	pid_t pid;

	reset();
	t0 = mono_ns();
	pid = spawn(produce_batches, n, batch);
	while (next < n) {
		unsigned k = ring_pop(ring, out, POP_MAX);

		if (k == 0) {
			if (sleep)
				sleeps += (uint64_t)consumer_wait();
			else
				cpu_relax();
			continue;
		}
		for (unsigned i = 0; i < k; i++) {
			if (out[i].seq != next + i) {
				fprintf(stderr, "ring_bench: order broken at %" PRIu64 "\n", next + i);
				exit(1);
			}
		}
		next += k;
	}
	reap(pid);
	{
		double s = (double)(mono_ns() - t0) / 1e9;

		printf("throughput batch %2u, consumer %-8s: %6.2f M msgs/s  (%.2f GB/s of slots, %" PRIu64
		       " msgs in %.2f s, %" PRIu64 " consumer sleeps, %" PRIu64 " eventfd writes)\n",
		       batch, sleep ? "sleeps" : "polls", (double)n / s / 1e6, (double)n * RING_SLOT_SIZE / s / 1e9, n, s, sleeps,
		       bell_rings(&sh->bell));
	}
}

/* Latency producer: one message at a random moment, after the consumer
 * declared itself asleep (arg 1) or while it polls (arg 0). */
static void produce_samples(uint64_t n, unsigned asleep)
{
	struct msg m;
	uint64_t s = 0x5eed;

	memset(&m, 0, sizeof(m));
	for (uint64_t i = 0; i < n; i++) {
		if (asleep) {
			while (!atomic_load_explicit(&sh->bell.sleeping, memory_order_relaxed))
				sleep_ns(20000);
		} else {
			while (ring_count(ring))
				sleep_ns(20000);
		}
		sleep_ns(50000 + (long)(rand_next(&s) % 450000));	/* a random moment */
		m.seq = i;
		m.ts_ns = mono_ns();
		while (ring_push(ring, &m, 1) == 0)
			cpu_relax();
		bell_notify(&sh->bell);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void bench_latency(uint64_t n, int asleep)
{
	int64_t *lat = xmalloc(n * sizeof(*lat));
	uint64_t got = 0, woken = 0;
	struct msg m;
	pid_t pid;

	reset();
	pid = spawn(produce_samples, n, (unsigned)asleep);
	while (got < n) {
		if (ring_pop(ring, &m, 1) == 0) {
			if (asleep)
				woken += (uint64_t)consumer_wait();
			else
				cpu_relax();
			continue;
		}
		lat[got++] = mono_ns() - m.ts_ns;
	}
	reap(pid);
	qsort(lat, n, sizeof(*lat), cmp_i64);
	printf("latency %-6s: p50 %6.1f us  p90 %6.1f us  p99 %6.1f us  p99.9 %7.1f us  max %7.1f us"
	       "  (%" PRIu64 " samples, %" PRIu64 " eventfd wake-ups)\n",
	       asleep ? "asleep" : "awake", lat[n / 2] / 1e3, lat[n * 90 / 100] / 1e3,
	       lat[n * 99 / 100] / 1e3, lat[n * 999 / 1000] / 1e3, lat[n - 1] / 1e3, n,
	       asleep ? woken : 0);
	free(lat);
}

int main(int argc, char **argv)
{
	int64_t n = 10000000, samples = 10000;
	static const unsigned batches[] = { 1, 8, 32, 64 };

	if ((argc > 1 && parse_i64(argv[1], 1, INT64_C(1) << 40, &n) < 0) ||
	    (argc > 2 && parse_i64(argv[2], 10, 10000000, &samples) < 0)) {
		fprintf(stderr, "usage: ring_bench [MESSAGES [SAMPLES]]\n");
		return 2;
	}
	ring = map_shared(ring_bytes(SLOTS));
	sh = map_shared(sizeof(*sh));
	if (ring_init(ring, SLOTS) < 0 || bell_init(&sh->bell) < 0)
		die("init");
	printf("ring_bench: %u slots of %d bytes, 2 processes, %ld CPUs online\n", SLOTS,
	       RING_SLOT_SIZE, sysconf(_SC_NPROCESSORS_ONLN));
	bench_baseline(100000);
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++)
		bench_throughput((uint64_t)n, batches[i], 1);
	bench_throughput((uint64_t)n, 32, 0);
	bench_throughput((uint64_t)n, 64, 0);
	bench_latency((uint64_t)samples, 1);
	bench_latency((uint64_t)samples, 0);
	bell_close(&sh->bell);
	return 0;
}
