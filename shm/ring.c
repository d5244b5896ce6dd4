/* ring.c - SPSC ring of fixed-size slots in shared memory (see ring.h for the
 * layout and the ordering contract).
 *
 * Edges, named as in DPDK's rte_ring_c11_pvt.h:
 *   P1  producer: store-release k_tail after writing the slots
 *   A1  consumer: load-acquire k_tail; pairs with P1, so the slots it reads
 *       are the bytes the producer wrote
 *   C1  consumer: store-release k_head after copying the slots out ("the
 *       consumer counter update is the producer's license to overwrite")
 *   A2  producer: load-acquire k_head; pairs with C1, so it overwrites a slot
 *       only after the consumer finished reading it
 * Each side loads its own index relaxed: it is the only writer of it. */
#include "jobring/ring.h"

#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct ring) % RING_CACHELINE == 0,
	       "slots must start on a cache line");
_Static_assert(offsetof(struct ring, k_tail) == 2 * RING_CACHELINE &&
	       offsetof(struct ring, k_head) == 4 * RING_CACHELINE &&
	       sizeof(struct ring) == 6 * RING_CACHELINE,
	       "each written line alone in its 128-byte pair (see ring.h)");

static int slots_valid(uint32_t slots)
{
	return slots >= 2 && slots <= RING_MAX_SLOTS && (slots & (slots - 1)) == 0;
}

static unsigned char *ring_slots(const struct ring *r)
{
	/* The slots follow the header: an address computed from the ring's own
	 * address, so the mapping may sit anywhere in each process. */
	return (unsigned char *)(uintptr_t)(r + 1);
}

size_t ring_bytes(uint32_t slots)
{
	if (!slots_valid(slots))
		return 0;
	return sizeof(struct ring) + (size_t)slots * RING_SLOT_SIZE;
}

int ring_init(struct ring *r, uint32_t slots)
{
	if (!slots_valid(slots))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->r_slots = slots;
	r->r_mask = slots - 1;
	/* Plain initialisation: whoever hands the ring to the two sides (fork,
	 * pthread_create) provides the happens-before edge. */
	atomic_init(&r->k_tail, 0);
	atomic_init(&r->k_head, 0);
	return 0;
}

/* Copy n slots starting at index idx between the ring and buf, in two pieces
 * when the range wraps around the end of the slot array. */
static void copy_in(struct ring *r, uint32_t idx, const unsigned char *src, unsigned n)
{
	uint32_t at = idx & r->r_mask;
	uint32_t first = r->r_slots - at;

	if (first > n)
		first = n;
	memcpy(ring_slots(r) + (size_t)at * RING_SLOT_SIZE, src, (size_t)first * RING_SLOT_SIZE);
	if (n > first)
		memcpy(ring_slots(r), src + (size_t)first * RING_SLOT_SIZE,
		       (size_t)(n - first) * RING_SLOT_SIZE);
}

static void copy_out(const struct ring *r, uint32_t idx, unsigned char *dst, unsigned n)
{
	uint32_t at = idx & r->r_mask;
	uint32_t first = r->r_slots - at;

	if (first > n)
		first = n;
	memcpy(dst, ring_slots(r) + (size_t)at * RING_SLOT_SIZE, (size_t)first * RING_SLOT_SIZE);
	if (n > first)
		memcpy(dst + (size_t)first * RING_SLOT_SIZE, ring_slots(r),
		       (size_t)(n - first) * RING_SLOT_SIZE);
}

unsigned ring_push(struct ring *r, const void *msgs, unsigned n)
{
	/* Relaxed: the producer is the only writer of k_tail. */
	uint32_t tail = atomic_load_explicit(&r->k_tail, memory_order_relaxed);
	uint32_t room = r->r_slots - (tail - r->p_head_cache);

	if (room < n) {
		/* A2: pairs with C1 in ring_pop/ring_discard; slots before the
		 * new head have been read and may be overwritten. */
		r->p_head_cache = atomic_load_explicit(&r->k_head, memory_order_acquire);
		room = r->r_slots - (tail - r->p_head_cache);
	}
	if (n > room)
		n = room;
	if (n == 0)
		return 0;
	copy_in(r, tail, msgs, n);
	/* P1: pairs with A1 in ring_pop/ring_count; publishes the slots just
	 * written. */
	atomic_store_explicit(&r->k_tail, tail + n, memory_order_release);
	return n;
}

unsigned ring_pop(struct ring *r, void *out, unsigned max)
{
	/* Relaxed: the consumer is the only writer of k_head. */
	uint32_t head = atomic_load_explicit(&r->k_head, memory_order_relaxed);
	uint32_t avail = r->c_tail_cache - head;

	if (avail < max) {
		/* A1: pairs with P1 in ring_push; the slots up to the new tail
		 * are fully written. */
		r->c_tail_cache = atomic_load_explicit(&r->k_tail, memory_order_acquire);
		avail = r->c_tail_cache - head;
	}
	if (max > avail)
		max = avail;
	if (max == 0)
		return 0;
	copy_out(r, head, out, max);
	/* C1: pairs with A2 in ring_push; the slots are read, the producer may
	 * reuse them. */
	atomic_store_explicit(&r->k_head, head + max, memory_order_release);
	return max;
}

unsigned ring_count(const struct ring *r)
{
	/* Head first, then tail: tail never moves backwards, so the difference
	 * cannot go negative; it can exceed the capacity if both sides moved
	 * between the loads, hence the clamp. Acquire on both (pairs with C1
	 * and P1) so a consumer that sees a count > 0 here also sees the slots. */
	uint32_t head = atomic_load_explicit(&r->k_head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&r->k_tail, memory_order_acquire);
	uint32_t n = tail - head;

	return n > r->r_slots ? r->r_slots : n;
}

uint32_t ring_capacity(const struct ring *r)
{
	return r->r_slots;
}

unsigned ring_discard(struct ring *r)
{
	uint32_t head = atomic_load_explicit(&r->k_head, memory_order_relaxed);
	/* A1: pairs with P1; we only move head, we never read the slots. */
	uint32_t tail = atomic_load_explicit(&r->k_tail, memory_order_acquire);

	/* The cache must never lag behind head: ring_pop computes
	 * c_tail_cache - head and would see a huge count. */
	r->c_tail_cache = tail;
	/* C1: pairs with A2 in ring_push; the discarded slots are free. */
	atomic_store_explicit(&r->k_head, tail, memory_order_release);
	return tail - head;
}

void ring_set_indices(struct ring *r, uint32_t idx)
{
	atomic_store_explicit(&r->k_tail, idx, memory_order_relaxed);
	atomic_store_explicit(&r->k_head, idx, memory_order_relaxed);
	r->p_head_cache = idx;
	r->c_tail_cache = idx;
}
