/* region.h - the one shared-memory region of a jobring server: a header, one
 * doorbell per actor and one SPSC ring per ordered (producer, consumer) pair
 * of distinct actors.
 *
 * The supervisor calls region_create before it forks the actors; each actor
 * is a child that uses the same MAP_SHARED mapping at the same address and
 * inherits the doorbells' eventfds. The region holds offsets, never pointers,
 * so it would also work mapped at different addresses.
 *
 * Memory map (every part cache-line aligned):
 *   struct region     magic, version, layout word, sizes, offset tables
 *   doorbells         ACTOR_COUNT x struct doorbell
 *   rings             ACTOR_COUNT x (ACTOR_COUNT - 1) x ring_bytes(slots)
 *
 * How to change the format: any change to struct region, struct ring or
 * struct doorbell changes the layout word on its own (it folds their sizes and
 * field offsets); a change of meaning with the same sizes must bump
 * REGION_VERSION. A mismatch makes region_check fail with -EPROTO. */
#ifndef JOBRING_REGION_H
#define JOBRING_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "jobring/doorbell.h"
#include "jobring/ring.h"

/** The actors, one forked process each. */
enum actor_id {
	ACTOR_INTAKE,
	ACTOR_DISPATCHER,
	ACTOR_TIMER,
	ACTOR_REPORTER,
	ACTOR_NOTIFIER,
	ACTOR_COUNT
};

/** "intake", "dispatcher", "timer", "reporter", "notifier"; "unknown" for any
 *  other value. Static storage. */
const char *actor_name(enum actor_id id);

/** "JOBRSHM1" in little-endian. */
#define REGION_MAGIC UINT64_C(0x314d485352424f4a)
/** Bump when the meaning of the format changes without its sizes changing. */
#define REGION_VERSION 1u

/** The region's header, at the start of the mapping. Read-only after
 *  region_create. Fields are exposed so that tools can inspect a region; use
 *  the functions below to reach rings and bells. */
struct region {
	uint64_t rg_magic;		/* REGION_MAGIC */
	uint32_t rg_version;		/* REGION_VERSION */
	uint32_t rg_layout;		/* sizes/offsets signature, see region.c */
	uint32_t rg_actors;		/* ACTOR_COUNT */
	uint32_t rg_ring_slots;		/* capacity of every ring */
	uint64_t rg_bytes;		/* size of the whole mapping */
	/* Offsets from the start of the region; 0 on the diagonal. */
	uint64_t rg_ring_off[ACTOR_COUNT][ACTOR_COUNT];
	uint64_t rg_bell_off[ACTOR_COUNT];
};

/** Map a new region (MAP_SHARED | MAP_ANONYMOUS), initialise 20 empty rings
 *  of ring_slots slots each and create one eventfd per actor.
 *  ring_slots must be a power of two in [2, RING_MAX_SLOTS].
 *  Returns 0 and sets *ret, or -EINVAL (bad ring_slots), -ENOMEM, or the
 *  -errno of mmap/eventfd; *ret is untouched on failure.
 *  The caller owns the region: release it with region_destroy. Forked
 *  children share it; they must not call region_destroy unless they want to
 *  drop their own mapping and eventfd copies. */
int region_create(uint32_t ring_slots, struct region **ret);

/** Close this process's eventfds and unmap the region. NULL is a no-op. */
void region_destroy(struct region *rg);

/** 0 when the header matches this build (magic, version, layout word, actor
 *  count, ring capacity and offsets that fit the mapping), else -EPROTO. */
int region_check(const struct region *rg);

/** Total bytes of the mapping (for metrics). */
size_t region_bytes(const struct region *rg);

/** The ring from producer `from` to consumer `to`, or NULL when from == to or
 *  either is out of range. Valid until region_destroy. */
struct ring *region_ring(struct region *rg, enum actor_id from, enum actor_id to);

/** The consumer's doorbell, or NULL when out of range. Valid until
 *  region_destroy. */
struct doorbell *region_bell(struct region *rg, enum actor_id consumer);

/** Messages waiting in the ring from `from` to `to` (0 for a pair that has no
 *  ring). A snapshot, for metrics. */
unsigned region_ring_used(struct region *rg, enum actor_id from, enum actor_id to);

/** Supervisor only, after `consumer` died and before it is forked again:
 *  discard every message in the rings INTO it (the restarted actor rebuilds
 *  its state from LMDB), clear its sleeping flag and drain its eventfd. Its
 *  producers may keep pushing meanwhile. Rings OUT of it are left alone: a
 *  tail is published only after its slots are fully written, so they hold
 *  only complete messages. */
void region_reset_consumer(struct region *rg, enum actor_id consumer);

#endif
