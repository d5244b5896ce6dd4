/* wheel.h - a hierarchical, cascading, tickless timing wheel (Varghese &
 * Lauck) over a caller-supplied monotonic millisecond clock.
 *
 * Entries are intrusive: embed a struct wheel_entry in your own record and
 * get back to it with container_of. The wheel never allocates and never
 * reads a clock; arm and cancel are O(1); advancing walks only occupied
 * slots (64-bit occupancy bitmap per level, ctz), so a jump of any size
 * costs O(levels) plus the entries it touches.
 *
 * Layout: WHEEL_LEVELS levels of 64 slots; level L slots are 64^L ms wide,
 * so 11 levels cover the whole uint64_t range without clamping. An entry
 * sits at the level of the highest bit in which its due differs from the
 * wheel's cursor (the bit pattern decides, not a distance), so every entry
 * is always in exactly the slot that (due, cursor) implies. Entries armed
 * with a due before the cursor go to a "late" list that is sorted lazily
 * at the next wheel_advance (O(k log k) for k late arms), so output stays
 * in due order.
 *
 * Ownership: the wheel only links entries, it never owns them. An armed
 * entry must stay at the same address until it is cancelled or returned by
 * wheel_advance; freeing or moving an armed entry corrupts the wheel.
 * Entries returned by wheel_advance are unlinked (unarmed) and the caller's
 * again. Not thread-safe: one owner (the timer actor) calls everything. */
#ifndef JOBRING_WHEEL_H
#define JOBRING_WHEEL_H

#include <stddef.h>
#include <stdint.h>

#define WHEEL_BITS 6 /* log2(slots per level) */
#define WHEEL_SLOTS (1u << WHEEL_BITS)
#define WHEEL_LEVELS 11 /* ceil(64 / WHEEL_BITS): covers all of uint64_t */

/** The link embedded in the caller's record. Zeroed memory (or
 *  wheel_entry_init) is a valid unarmed entry. Fields are private except
 *  `due`, which may be read (not written) while armed. */
struct wheel_entry {
	struct wheel_entry *next;
	struct wheel_entry **pprev; /* NULL when not armed */
	uint64_t due;               /* absolute ms on the caller's clock */
};

/** A wheel: fixed size (5,776 bytes on LP64), no heap memory, no destructor
 *  (cancel or drain the entries the caller still cares about). */
struct wheel {
	struct wheel_entry *slot[WHEEL_LEVELS][WHEEL_SLOTS];
	uint64_t occupied[WHEEL_LEVELS]; /* bit s set <=> slot[L][s] non-empty */
	uint32_t levels;                 /* bit L set <=> occupied[L] != 0 */
	struct wheel_entry *late;        /* due < cursor, sorted by due */
	struct wheel_entry *fresh;       /* due < cursor, unsorted, newest first */
	uint64_t fresh_min;              /* lower bound of dues in fresh */
	uint64_t cursor;                 /* slots are placed relative to this */
	uint64_t now;                    /* largest now seen (>= cursor) */
	size_t count;                    /* armed entries */
};

/** Mark e unarmed (same as zeroing it). Do not call on an armed entry. */
static inline void wheel_entry_init(struct wheel_entry *e)
{
	e->next = NULL;
	e->pprev = NULL;
	e->due = 0;
}

/** now + delay, saturating at UINT64_MAX: the overflow-safe way to compute
 *  a due from a relative delay. */
static inline uint64_t wheel_due_after(uint64_t now, uint64_t delay)
{
	return delay > UINT64_MAX - now ? UINT64_MAX : now + delay;
}

/** Initialise an empty wheel whose current time is now. */
void wheel_init(struct wheel *w, uint64_t now);

/** Arm e to fire at due (absolute ms). A due at or before the current time
 *  fires at the next wheel_advance. Arming an armed entry moves it. O(1).
 *  Any uint64_t is valid; a due of UINT64_MAX fires only at now UINT64_MAX. */
void wheel_arm(struct wheel *w, struct wheel_entry *e, uint64_t due);

/** Unlink e if it is armed (on w); no-op on an unarmed entry. O(1). */
void wheel_cancel(struct wheel *w, struct wheel_entry *e);

/** 1 if e is armed, 0 if not. */
int wheel_armed(const struct wheel_entry *e);

/** A lower bound of the earliest due: never later than it, and at worst the
 *  start of the slot holding it (a higher-level slot is coarse, so callers
 *  may wake early and find nothing; each such wake-up cascades entries one
 *  level down, so there are at most WHEEL_LEVELS of them). A value <= the
 *  current time means "advance now". UINT64_MAX when empty (and, once
 *  it is the only one left near the end of time, for an entry due at
 *  UINT64_MAX). O(1). */
uint64_t wheel_next(const struct wheel *w);

/** Move time forward to now (a now smaller than the current time is
 *  treated as the current time) and store in out[] up to max entries whose
 *  due <= now, unlinked, in non-decreasing due order (ties in any order).
 *  Entries reached early are re-inserted lower, never fired early. Returns
 *  the number stored; if it equals max, call again (same now is fine) for
 *  the rest. Cost: O(occupied slots passed + entries cascaded + returned);
 *  note that reaching one coarse slot cascades all its entries in one call
 *  (pointer relinking only), whatever max is. */
size_t wheel_advance(struct wheel *w, uint64_t now, struct wheel_entry **out,
		     size_t max);

/** Number of armed entries. O(1). */
size_t wheel_count(const struct wheel *w);

/** Debug check, O(slots + entries): every entry sits in the slot its due
 *  implies, links and bitmaps agree, the late list is sorted and the count
 *  matches. 0 if consistent, -EUCLEAN at the first violation. */
int wheel_validate(const struct wheel *w);

#endif
