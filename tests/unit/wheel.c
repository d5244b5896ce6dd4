/* Unit test for wheel.c: fixed cases, then randomized runs against a
 * sorted-array oracle (random arms from the past to years ahead, cancels,
 * re-arms, clock jumps of 1 ms to "forever", drains in random batch sizes),
 * then 1,000,000 entries drained completely. JOBRING_SEED=n replays a run. */
#include "jobring/util.h"
#include "jobring/wheel.h"
#include "test.h"

#include <errno.h>

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define DAY_MS UINT64_C(86400000)
#define YEAR_MS (365 * DAY_MS)
#define OUT_MAX 1024

struct timer {
	uint32_t id;
	int armed;              /* oracle's view */
	uint64_t due;           /* oracle's view */
	struct wheel_entry link;
};

struct key {
	uint64_t due;
	uint32_t id;
};

/* The oracle: armed timers as a (due, id)-sorted array. */
struct oracle {
	struct key *k;
	size_t n;
};

static uint64_t rng;
static struct wheel_entry *out[OUT_MAX];

static uint64_t rnd(void)
{
	return rand_next(&rng);
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return b > a ? 0 : a - b;
}

static int key_less(struct key a, struct key b)
{
	return a.due < b.due || (a.due == b.due && a.id < b.id);
}

static size_t oracle_find(const struct oracle *o, struct key k)
{
	size_t lo = 0, hi = o->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (key_less(o->k[mid], k))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void oracle_del(struct oracle *o, struct timer *t)
{
	struct key k = { t->due, t->id };
	size_t i = oracle_find(o, k);

	CHECK(t->armed);
	CHECK(i < o->n && o->k[i].due == k.due && o->k[i].id == k.id);
	memmove(&o->k[i], &o->k[i + 1], (o->n - i - 1) * sizeof(*o->k));
	o->n--;
	t->armed = 0;
}

static void oracle_add(struct oracle *o, struct timer *t, uint64_t due)
{
	struct key k = { due, t->id };
	size_t i;

	if (t->armed)
		oracle_del(o, t);
	i = oracle_find(o, k);
	memmove(&o->k[i + 1], &o->k[i], (o->n - i) * sizeof(*o->k));
	o->k[i] = k;
	o->n++;
	t->armed = 1;
	t->due = due;
}

static unsigned level_of(uint64_t due, uint64_t now)
{
	uint64_t x = due ^ now;

	return x ? (unsigned)(63 - __builtin_clzll(x)) / WHEEL_BITS : 0;
}

static void test_basic(void)
{
	struct wheel w;
	struct timer t[8];
	struct wheel_entry *e;
	size_t n;

	memset(t, 0, sizeof(t));
	wheel_init(&w, 1000);
	CHECK_EQ(wheel_count(&w), 0);
	CHECK(wheel_next(&w) == UINT64_MAX);
	CHECK_EQ(wheel_advance(&w, 5000, out, OUT_MAX), 0);
	CHECK_EQ(wheel_validate(&w), 0);

	/* Unarmed: cancel is a no-op. */
	CHECK(!wheel_armed(&t[0].link));
	wheel_cancel(&w, &t[0].link);
	CHECK_EQ(wheel_count(&w), 0);

	/* Exact level-0 timer, never early. */
	wheel_arm(&w, &t[0].link, 5005);
	CHECK(wheel_armed(&t[0].link));
	CHECK(wheel_next(&w) == 5005);
	CHECK_EQ(wheel_advance(&w, 5004, out, OUT_MAX), 0);
	CHECK_EQ(wheel_advance(&w, 5005, out, OUT_MAX), 1);
	CHECK(out[0] == &t[0].link);
	CHECK(container_of(out[0], struct timer, link) == &t[0]);
	CHECK(!wheel_armed(&t[0].link));

	/* Past dues fire at the next advance, in due order, before "now". */
	wheel_arm(&w, &t[1].link, 500);
	wheel_arm(&w, &t[2].link, 100);
	wheel_arm(&w, &t[3].link, 5005);
	CHECK_EQ(wheel_validate(&w), 0);
	CHECK(wheel_next(&w) == 100);
	n = wheel_advance(&w, 5005, out, OUT_MAX);
	CHECK_EQ(n, 3);
	CHECK(out[0] == &t[2].link && out[1] == &t[1].link && out[2] == &t[3].link);

	/* A smaller now is the current time (5005). */
	wheel_arm(&w, &t[4].link, 5005);
	CHECK_EQ(wheel_advance(&w, 10, out, OUT_MAX), 1);
	CHECK(out[0] == &t[4].link);

	/* Re-arming moves; cancelling unlinks. */
	wheel_arm(&w, &t[0].link, 900000);
	wheel_arm(&w, &t[0].link, 7000);
	wheel_arm(&w, &t[1].link, 7000);
	wheel_cancel(&w, &t[1].link);
	CHECK(!wheel_armed(&t[1].link));
	CHECK_EQ(wheel_count(&w), 1);
	CHECK(wheel_next(&w) <= 7000);
	CHECK_EQ(wheel_advance(&w, 7000, out, OUT_MAX), 1);
	CHECK(out[0] == &t[0].link);
	CHECK_EQ(wheel_advance(&w, 900000, out, OUT_MAX), 0);

	/* max == 0 moves nothing out. */
	wheel_arm(&w, &t[0].link, 900000);
	CHECK_EQ(wheel_advance(&w, 900000, out, 0), 0);
	CHECK(wheel_armed(&t[0].link));
	CHECK_EQ(wheel_advance(&w, 900000, out, 1), 1);

	/* The ends of the clock. */
	CHECK(wheel_due_after(UINT64_MAX - 5, 10) == UINT64_MAX);
	CHECK(wheel_due_after(5, 10) == 15);
	wheel_arm(&w, &t[5].link, UINT64_MAX);
	wheel_arm(&w, &t[6].link, UINT64_MAX - 1);
	CHECK_EQ(wheel_validate(&w), 0);
	CHECK_EQ(wheel_advance(&w, UINT64_MAX - 2, out, OUT_MAX), 0);
	CHECK(wheel_next(&w) == UINT64_MAX - 1);
	CHECK_EQ(wheel_advance(&w, UINT64_MAX, out, OUT_MAX), 2);
	CHECK(out[0] == &t[6].link && out[1] == &t[5].link);
	CHECK(wheel_next(&w) == UINT64_MAX);

	/* A thundering slot comes out in bounded batches. */
	{
		static struct timer many[1000];
		size_t total = 0;

		wheel_init(&w, 0);
		for (int i = 0; i < 1000; i++)
			wheel_arm(&w, &many[i].link, 3 * DAY_MS);
		while ((n = wheel_advance(&w, 4 * DAY_MS, out, 7)) == 7)
			total += n;
		CHECK_EQ(total + n, 1000);
		CHECK_EQ(wheel_count(&w), 0);
		for (int i = 0; i < 1000; i++)
			CHECK(!wheel_armed(&many[i].link));
	}

	/* validate() notices a corrupted slot. */
	wheel_init(&w, 0);
	wheel_arm(&w, &t[7].link, 1 << 20);
	e = &t[7].link;
	e->due += 1 << 19; /* not allowed by the API: now in the wrong slot */
	CHECK_EQ(wheel_validate(&w), -EUCLEAN);
	e->due -= 1 << 19;
	CHECK_EQ(wheel_validate(&w), 0);
}

static uint64_t random_due(uint64_t now)
{
	uint64_t r = rnd() % 100;

	if (r < 10)
		return sat_sub(now, rnd() % (UINT64_C(1) << (rnd() % 40)));
	if (r < 18)
		return now;
	if (r < 45)
		return wheel_due_after(now, rnd() % 64);
	if (r < 65)
		return wheel_due_after(now, rnd() % 100000);
	if (r < 82)
		return wheel_due_after(now, rnd() % (3 * DAY_MS));
	if (r < 96)
		return wheel_due_after(now, rnd() % (5 * YEAR_MS));
	if (r < 98)
		return UINT64_MAX;
	return wheel_due_after(now, rnd() >> (rnd() % 64));
}

static uint64_t random_jump(uint64_t now)
{
	uint64_t r = rnd() % 1000;

	if (r < 100)
		return sat_sub(now, rnd() % 100000); /* backwards: ignored */
	if (r < 200)
		return now;
	if (r < 450)
		return wheel_due_after(now, 1 + rnd() % 64);
	if (r < 650)
		return wheel_due_after(now, rnd() % 10000);
	if (r < 850)
		return wheel_due_after(now, rnd() % DAY_MS);
	if (r < 950)
		return wheel_due_after(now, rnd() % (7 * DAY_MS));
	if (r < 995)
		return wheel_due_after(now, rnd() % (3 * YEAR_MS));
	return wheel_due_after(now, rnd() >> (rnd() % 64)); /* maybe "forever" */
}

static size_t random_batch(void)
{
	static const size_t cap[] = { 1, 3, 16, 100, OUT_MAX };

	if (rnd() % 50 == 0)
		return 0;
	return 1 + rnd() % cap[rnd() % ARRAY_SIZE(cap)];
}

/* One randomized run; validate_every 1 = after every operation. */
static void test_random(uint64_t start, size_t pool, size_t ops,
			size_t validate_every)
{
	struct timer *t = xcalloc(pool, sizeof(*t));
	struct oracle o = { xcalloc(pool, sizeof(struct key)), 0 };
	struct wheel w;
	uint64_t now = start; /* the largest now passed so far */
	int clean = 1;        /* last drain was complete: cursor == now */

	for (size_t i = 0; i < pool; i++)
		t[i].id = (uint32_t)i;
	wheel_init(&w, start);
	for (size_t op = 0; op < ops; op++) {
		uint64_t r = rnd() % 100, nx;
		struct timer *x = &t[rnd() % pool];

		CHECK_EQ(wheel_armed(&x->link), x->armed);
		if (r < 45) {
			uint64_t due = random_due(now);

			wheel_arm(&w, &x->link, due);
			oracle_add(&o, x, due);
			CHECK(wheel_armed(&x->link) && x->link.due == due);
		} else if (r < 60) {
			wheel_cancel(&w, &x->link);
			if (x->armed)
				oracle_del(&o, x);
			CHECK(!wheel_armed(&x->link));
		} else {
			uint64_t to = random_jump(now), last = 0;
			size_t m, got;

			if (to > now)
				now = to;
			for (;;) {
				m = random_batch();
				got = wheel_advance(&w, to, out, m);
				CHECK(got <= m);
				for (size_t i = 0; i < got; i++) {
					struct timer *f = container_of(out[i], struct timer, link);

					CHECK(f->armed);            /* armed, not fired yet */
					CHECK(f->due == out[i]->due);
					CHECK(out[i]->due <= now);  /* never early */
					CHECK(out[i]->due >= last); /* due order */
					CHECK(!wheel_armed(out[i]));
					last = out[i]->due;
					oracle_del(&o, f);
				}
				if (got < m) {
					clean = 1;
					/* nothing missed */
					CHECK(o.n == 0 || o.k[0].due > now);
					break;
				}
				if (validate_every == 1)
					CHECK_EQ(wheel_validate(&w), 0);
				if (rnd() % 8 == 0) {
					clean = 0; /* stop mid-drain */
					break;
				}
			}
		}
		CHECK_EQ(wheel_count(&w), o.n);
		nx = wheel_next(&w);
		if (o.n == 0) {
			CHECK(nx == UINT64_MAX);
		} else {
			uint64_t min = o.k[0].due;

			CHECK(nx <= min);
			if (clean && min > now) {
				/* at worst the start of min's slot */
				unsigned lvl = level_of(min, now);

				CHECK(nx > now);
				CHECK(min - nx < UINT64_C(1) << (lvl * WHEEL_BITS));
			}
		}
		if (op % validate_every == 0)
			CHECK_EQ(wheel_validate(&w), 0);
	}
	/* Drain everything that is left at the end of time. */
	while (wheel_advance(&w, UINT64_MAX, out, OUT_MAX) == OUT_MAX)
		;
	CHECK_EQ(wheel_count(&w), 0);
	CHECK_EQ(wheel_validate(&w), 0);
	free(o.k);
	free(t);
}

static void test_million(void)
{
	const size_t n = 1000000;
	struct timer *t = xcalloc(n, sizeof(*t));
	struct wheel w;
	uint64_t now = 1000000 + rnd() % YEAR_MS, end = 0, last = 0;
	size_t fired = 0, cancelled = 0, got;

	wheel_init(&w, now);
	for (size_t i = 0; i < n; i++) {
		uint64_t due = rnd() % 100 == 0 ? now - rnd() % 1000000
						: now + 1000 + rnd() % DAY_MS;

		t[i].id = (uint32_t)i;
		t[i].due = due;
		wheel_arm(&w, &t[i].link, due);
		if (due > end)
			end = due;
	}
	CHECK_EQ(wheel_count(&w), n);
	CHECK_EQ(wheel_validate(&w), 0);
	for (size_t i = 0; i < n; i += 7 + rnd() % 7) {
		wheel_cancel(&w, &t[i].link);
		t[i].armed = -1; /* must never fire */
		cancelled++;
	}
	CHECK_EQ(wheel_count(&w), n - cancelled);
	/* Walk to the end in random steps (1 ms to ~1 h), random batches. */
	while (now < end) {
		now += 1 + rnd() % (1u << (rnd() % 22));
		do {
			size_t m = 1 + rnd() % OUT_MAX;

			got = wheel_advance(&w, now, out, m);
			for (size_t i = 0; i < got; i++) {
				struct timer *f = container_of(out[i], struct timer, link);

				CHECK(f->armed == 0); /* neither cancelled nor fired */
				CHECK(out[i]->due == f->due && f->due <= now);
				CHECK(f->due >= last);
				last = f->due;
				f->armed = 1;
				fired++;
			}
			if (got < m)
				break;
		} while (1);
		CHECK(wheel_next(&w) > now);
	}
	CHECK_EQ(fired, n - cancelled);
	CHECK_EQ(wheel_count(&w), 0);
	CHECK(wheel_next(&w) == UINT64_MAX);
	CHECK_EQ(wheel_validate(&w), 0);
	printf("wheel: 1000000 armed, %zu cancelled, %zu fired in order; "
	       "sizeof(struct wheel)=%zu, sizeof(struct wheel_entry)=%zu\n",
	       cancelled, fired, sizeof(struct wheel), sizeof(struct wheel_entry));
	free(t);
}

int main(void)
{
	const char *env = getenv("JOBRING_SEED");
	static const uint64_t starts[] = {
		0, 1, 1700000000000, UINT64_C(1) << 63,
		UINT64_MAX - 10 * YEAR_MS, UINT64_MAX - 100000,
	};
	uint64_t seed;

	if (env && *env)
		seed = strtoull(env, NULL, 0);
	else
		rand_bytes(&seed, sizeof(seed));
	if (!seed)
		seed = 1;
	printf("wheel: JOBRING_SEED=%" PRIu64 "\n", seed);
	fflush(stdout);
	rng = seed;

	test_basic();
	/* Small pools, validate() after every operation. */
	for (size_t i = 0; i < ARRAY_SIZE(starts); i++)
		test_random(starts[i], 1 + rnd() % 64, 20000, 1);
	for (int i = 0; i < 6; i++)
		test_random(rnd() >> (rnd() % 64), 1 + rnd() % 64, 20000, 1);
	/* Larger pools, validate() now and then. */
	for (int i = 0; i < 3; i++)
		test_random(rnd() % (UINT64_C(1) << 45), 4096, 200000, 4096);
	test_million();
	return T_PASS;
}
