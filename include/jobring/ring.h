/* ring.h - a lock-free single-producer single-consumer ring of fixed 128-byte
 * slots that lives in shared memory (one per directed actor pair).
 *
 * Layout (struct ring, then the slots right after it in memory), after DPDK's
 * rte_ring: every line that one side writes sits alone in its 128-byte pair of
 * lines, so neither false sharing nor the adjacent-line prefetcher drags the
 * other side's line along:
 *
 *   line 0  r_slots, r_mask          written once by ring_init, then read-only
 *   line 1  (empty)
 *   line 2  k_tail, p_head_cache     written by the producer only
 *   line 3  (empty)
 *   line 4  k_head, c_tail_cache     written by the consumer only
 *   line 5  (empty)
 *   slots   r_slots * RING_SLOT_SIZE bytes at (char *)r + sizeof(struct ring)
 *
 * The ring holds no pointer: it works at any address in any process that maps
 * it. Fields named k_* are shared with the other side; *_cache fields are one
 * side's private copy of the other side's index (reloaded only when the ring
 * looks full or empty), kept on that side's own line.
 *
 * Indices run free as uint32_t, are masked on access and compared only by
 * unsigned difference, so they may wrap past UINT32_MAX. The ring uses all N
 * slots: it is full when tail - head == N and empty when tail == head.
 *
 * Ordering (C11 atomics, every edge named at its use in ring.c):
 *   producer: copy slots in, then store-release k_tail        (P1)
 *   consumer: load-acquire k_tail (pairs with P1), copy slots out,
 *             then store-release k_head                       (C1)
 *   producer: load-acquire k_head (pairs with C1) before reusing a slot
 *
 * Threading: exactly one producer and one consumer at a time (processes or
 * threads). ring_count and ring_capacity may be called by anyone. Messages are
 * opaque bytes; the ring copies them and keeps no reference to caller memory.
 *
 * Changing struct ring changes the region's layout word (region.c), so builds
 * with different layouts refuse to share a region. */
#ifndef JOBRING_RING_H
#define JOBRING_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/** Size of one message slot in bytes; every message is exactly this long. */
#define RING_SLOT_SIZE 128
/** Cache line size the layout is built for. */
#define RING_CACHELINE 64
/** Largest slot count ring_init accepts (8 MiB of slots per ring). */
#define RING_MAX_SLOTS (1u << 16)

_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
	       "ring indices must be lock-free atomics to work across processes");

/** A ring header in shared memory; the slots follow it. Treat as opaque. */
struct ring {
	/* line 0: constant after ring_init */
	uint32_t r_slots;		/* capacity, a power of two */
	uint32_t r_mask;		/* r_slots - 1 */
	_Alignas(RING_CACHELINE) char _pad0[RING_CACHELINE];

	/* line 2: producer-owned */
	_Alignas(RING_CACHELINE) _Atomic uint32_t k_tail; /* next slot to fill */
	uint32_t p_head_cache;		/* producer's last view of k_head */
	_Alignas(RING_CACHELINE) char _pad1[RING_CACHELINE];

	/* line 4: consumer-owned */
	_Alignas(RING_CACHELINE) _Atomic uint32_t k_head; /* next slot to read */
	uint32_t c_tail_cache;		/* consumer's last view of k_tail */
	_Alignas(RING_CACHELINE) char _pad2[RING_CACHELINE];
};

/** Bytes needed for a ring of `slots` slots (header + slots), or 0 when slots
 *  is not a power of two in [2, RING_MAX_SLOTS]. */
size_t ring_bytes(uint32_t slots);

/** Initialise an empty ring in memory of at least ring_bytes(slots) bytes,
 *  aligned to RING_CACHELINE. Not thread-safe: call before anyone uses it.
 *  Returns 0, or -EINVAL when slots is not a power of two in [2, RING_MAX_SLOTS]. */
int ring_init(struct ring *r, uint32_t slots);

/** Producer only. Copy up to n messages (n * RING_SLOT_SIZE bytes at msgs)
 *  into the ring and publish them. Returns how many were pushed: fewer than n,
 *  or 0, when the ring is full. Nothing is dropped: the caller keeps the rest
 *  and retries later. Call bell_notify() on the consumer's doorbell after a
 *  push that returned > 0. */
unsigned ring_push(struct ring *r, const void *msgs, unsigned n);

/** Consumer only. Copy up to max messages out into out (room for
 *  max * RING_SLOT_SIZE bytes) and release their slots. Returns how many, 0
 *  when the ring is empty. */
unsigned ring_pop(struct ring *r, void *out, unsigned max);

/** Messages currently in the ring. Exact for the producer or consumer when the
 *  other side is idle; a snapshot (clamped to the capacity) for anyone else. */
unsigned ring_count(const struct ring *r);

/** The ring's capacity in messages. */
uint32_t ring_capacity(const struct ring *r);

/** Consumer side (or anyone while the consumer is known dead): discard every
 *  message published so far, as if popped. Used by the supervisor before it
 *  restarts a dead consumer; safe while the producer keeps pushing. Returns
 *  the number discarded. */
unsigned ring_discard(struct ring *r);

/** Tests only: make the ring empty with head = tail = idx (to test wraparound
 *  near UINT32_MAX). Not thread-safe: neither side may be using the ring. */
void ring_set_indices(struct ring *r, uint32_t idx);

#endif
