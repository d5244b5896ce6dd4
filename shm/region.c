/* region.c - the shared-memory region: header, doorbells and the 20 rings
 * between the 5 actors, created once by the supervisor before it forks. */
#include "jobring/region.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *const actor_names[ACTOR_COUNT] = {
	[ACTOR_INTAKE] = "intake",
	[ACTOR_DISPATCHER] = "dispatcher",
	[ACTOR_TIMER] = "timer",
	[ACTOR_REPORTER] = "reporter",
	[ACTOR_NOTIFIER] = "notifier",
};

const char *actor_name(enum actor_id id)
{
	if ((unsigned)id >= ACTOR_COUNT)
		return "unknown";
	return actor_names[id];
}

static size_t align_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

static void layout_mix(uint32_t *h, size_t v)
{
	/* FNV-1a over the value's 8 bytes: order-sensitive and cheap. */
	for (int i = 0; i < 8; i++) {
		*h ^= (uint32_t)((uint64_t)v >> (8 * i)) & 0xffu;
		*h *= 16777619u;
	}
}

/* The layout word, in the spirit of LMDB's MDB_LOCK_FORMAT: a signature of
 * every size and offset two processes must agree on. A build that changed
 * any of them computes another word and refuses the region. */
static uint32_t region_layout(void)
{
	uint32_t h = 2166136261u;

	layout_mix(&h, sizeof(struct region));
	layout_mix(&h, offsetof(struct region, rg_ring_off));
	layout_mix(&h, offsetof(struct region, rg_bell_off));
	layout_mix(&h, sizeof(struct ring));
	layout_mix(&h, offsetof(struct ring, r_slots));
	layout_mix(&h, offsetof(struct ring, r_mask));
	layout_mix(&h, offsetof(struct ring, k_tail));
	layout_mix(&h, offsetof(struct ring, p_head_cache));
	layout_mix(&h, offsetof(struct ring, k_head));
	layout_mix(&h, offsetof(struct ring, c_tail_cache));
	layout_mix(&h, sizeof(struct doorbell));
	layout_mix(&h, offsetof(struct doorbell, sleeping));
	layout_mix(&h, offsetof(struct doorbell, efd));
	layout_mix(&h, offsetof(struct doorbell, rings));
	layout_mix(&h, RING_SLOT_SIZE);
	layout_mix(&h, ACTOR_COUNT);
	return h;
}

static void *at(const struct region *rg, uint64_t off)
{
	return (char *)(uintptr_t)rg + off;
}

int region_create(uint32_t ring_slots, struct region **ret)
{
	size_t rbytes = ring_bytes(ring_slots);
	size_t off, total;
	struct region *rg;
	void *map;
	int i, j, r;

	if (rbytes == 0)
		return -EINVAL;

	off = align_up(sizeof(struct region), RING_CACHELINE);
	off += ACTOR_COUNT * sizeof(struct doorbell);
	/* ring_bytes is a multiple of the cache line (header and slots are). */
	total = off + (size_t)ACTOR_COUNT * (ACTOR_COUNT - 1) * rbytes;
	total = align_up(total, (size_t)sysconf(_SC_PAGESIZE));

	map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	rg = map;	/* zero-filled by the kernel */

	rg->rg_magic = REGION_MAGIC;
	rg->rg_version = REGION_VERSION;
	rg->rg_layout = region_layout();
	rg->rg_actors = ACTOR_COUNT;
	rg->rg_ring_slots = ring_slots;
	rg->rg_bytes = total;

	off = align_up(sizeof(struct region), RING_CACHELINE);
	for (i = 0; i < ACTOR_COUNT; i++) {
		rg->rg_bell_off[i] = off;
		((struct doorbell *)at(rg, off))->efd = -1;
		off += sizeof(struct doorbell);
	}
	for (i = 0; i < ACTOR_COUNT; i++) {
		for (j = 0; j < ACTOR_COUNT; j++) {
			if (i == j)
				continue;
			rg->rg_ring_off[i][j] = off;
			r = ring_init(at(rg, off), ring_slots);
			if (r < 0)
				goto fail;	/* cannot happen: slots checked above */
			off += rbytes;
		}
	}
	for (i = 0; i < ACTOR_COUNT; i++) {
		r = bell_init(at(rg, rg->rg_bell_off[i]));
		if (r < 0)
			goto fail;
	}
	*ret = rg;
	return 0;

fail:
	region_destroy(rg);
	return r;
}

void region_destroy(struct region *rg)
{
	if (!rg)
		return;
	for (int i = 0; i < ACTOR_COUNT; i++)
		if (rg->rg_bell_off[i])
			bell_close(at(rg, rg->rg_bell_off[i]));
	munmap(rg, rg->rg_bytes);
}

static int off_ok(const struct region *rg, uint64_t off, size_t len)
{
	return off >= sizeof(struct region) && off % RING_CACHELINE == 0 &&
	       off <= rg->rg_bytes && rg->rg_bytes - off >= len;
}

int region_check(const struct region *rg)
{
	size_t rbytes;

	if (rg->rg_magic != REGION_MAGIC || rg->rg_version != REGION_VERSION ||
	    rg->rg_layout != region_layout() || rg->rg_actors != ACTOR_COUNT)
		return -EPROTO;
	rbytes = ring_bytes(rg->rg_ring_slots);
	if (rbytes == 0)
		return -EPROTO;
	for (int i = 0; i < ACTOR_COUNT; i++) {
		if (!off_ok(rg, rg->rg_bell_off[i], sizeof(struct doorbell)))
			return -EPROTO;
		for (int j = 0; j < ACTOR_COUNT; j++) {
			const struct ring *r;

			if (i == j) {
				if (rg->rg_ring_off[i][j] != 0)
					return -EPROTO;
				continue;
			}
			if (!off_ok(rg, rg->rg_ring_off[i][j], rbytes))
				return -EPROTO;
			r = at(rg, rg->rg_ring_off[i][j]);
			if (r->r_slots != rg->rg_ring_slots || r->r_mask != r->r_slots - 1)
				return -EPROTO;
		}
	}
	return 0;
}

size_t region_bytes(const struct region *rg)
{
	return rg->rg_bytes;
}

struct ring *region_ring(struct region *rg, enum actor_id from, enum actor_id to)
{
	if ((unsigned)from >= ACTOR_COUNT || (unsigned)to >= ACTOR_COUNT || from == to)
		return NULL;
	return at(rg, rg->rg_ring_off[from][to]);
}

struct doorbell *region_bell(struct region *rg, enum actor_id consumer)
{
	if ((unsigned)consumer >= ACTOR_COUNT)
		return NULL;
	return at(rg, rg->rg_bell_off[consumer]);
}

unsigned region_ring_used(struct region *rg, enum actor_id from, enum actor_id to)
{
	struct ring *r = region_ring(rg, from, to);

	return r ? ring_count(r) : 0;
}

void region_reset_consumer(struct region *rg, enum actor_id consumer)
{
	struct doorbell *b = region_bell(rg, consumer);

	if (!b)
		return;
	for (int from = 0; from < ACTOR_COUNT; from++)
		if (from != (int)consumer)
			ring_discard(region_ring(rg, (enum actor_id)from, consumer));
	bell_sleep_cancel(b);
	bell_drain(b);
}
