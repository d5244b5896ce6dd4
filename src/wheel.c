/* wheel.c - hierarchical cascading tickless timing wheel (see wheel.h).
 *
 * Invariant (checked by wheel_validate): an entry with due >= cursor sits
 * in slot[L][s] where L = level of the highest bit of (due ^ cursor) and
 * s = bits [6L, 6L+6) of due. So within a level every occupied slot index
 * is greater than the cursor's index at that level (due > cursor on the
 * first differing bit), except level 0's cursor slot, which holds exactly
 * the entries with due == cursor. Two consequences:
 *   - slots never wrap: ctz(occupied[L]) is the earliest slot of level L,
 *     and the lowest non-empty level holds the earliest slot of all;
 *   - moving the cursor to any t below the earliest slot start keeps every
 *     entry where it is, so time jumps are free; reaching a slot's start
 *     re-places (cascades) only that slot's entries, each to a lower level.
 * Entries with due < cursor are late: they live on `fresh` (unsorted, O(1)
 * arm) until the next advance sorts them into `late`. */
#include "jobring/wheel.h"

#include <errno.h>

#define SLOT_MASK ((uint64_t)WHEEL_SLOTS - 1)

_Static_assert(WHEEL_BITS * WHEEL_LEVELS >= 64, "levels must cover uint64_t");
_Static_assert(WHEEL_SLOTS == 64, "occupancy bitmaps are uint64_t");
_Static_assert(WHEEL_LEVELS <= 32, "level bitmap is uint32_t");

static unsigned level_of(uint64_t due, uint64_t cursor)
{
	uint64_t x = due ^ cursor;

	return x ? (unsigned)(63 - __builtin_clzll(x)) / WHEEL_BITS : 0;
}

static unsigned slot_of(uint64_t due, unsigned level)
{
	return (unsigned)((due >> (level * WHEEL_BITS)) & SLOT_MASK);
}

/* First ms covered by slot s of level L, given the cursor's higher bits. */
static uint64_t slot_start(uint64_t cursor, unsigned level, unsigned s)
{
	unsigned shift = (level + 1) * WHEEL_BITS;
	uint64_t high = shift >= 64 ? 0 : cursor & ~((UINT64_C(1) << shift) - 1);

	return high | ((uint64_t)s << (level * WHEEL_BITS));
}

static void list_push(struct wheel_entry **head, struct wheel_entry *e)
{
	e->next = *head;
	if (e->next)
		e->next->pprev = &e->next;
	*head = e;
	e->pprev = head;
}

static void list_unlink(struct wheel_entry *e)
{
	*e->pprev = e->next;
	if (e->next)
		e->next->pprev = e->pprev;
	e->next = NULL;
	e->pprev = NULL;
}

/* Link e (due >= cursor) into the slot its due implies. */
static void place(struct wheel *w, struct wheel_entry *e)
{
	unsigned level = level_of(e->due, w->cursor);
	unsigned s = slot_of(e->due, level);

	list_push(&w->slot[level][s], e);
	w->occupied[level] |= UINT64_C(1) << s;
	w->levels |= 1u << level;
}

static void mark_if_empty(struct wheel *w, unsigned level, unsigned s)
{
	if (w->slot[level][s])
		return;
	w->occupied[level] &= ~(UINT64_C(1) << s);
	if (!w->occupied[level])
		w->levels &= ~(1u << level);
}

void wheel_init(struct wheel *w, uint64_t now)
{
	*w = (struct wheel){ .fresh_min = UINT64_MAX, .cursor = now, .now = now };
}

int wheel_armed(const struct wheel_entry *e)
{
	return e->pprev != NULL;
}

size_t wheel_count(const struct wheel *w)
{
	return w->count;
}

void wheel_cancel(struct wheel *w, struct wheel_entry *e)
{
	if (!e->pprev)
		return;
	if (e->due >= w->cursor) {
		unsigned level = level_of(e->due, w->cursor);

		list_unlink(e);
		mark_if_empty(w, level, slot_of(e->due, level));
	} else {
		list_unlink(e);
		if (!w->fresh)
			w->fresh_min = UINT64_MAX;
	}
	w->count--;
}

void wheel_arm(struct wheel *w, struct wheel_entry *e, uint64_t due)
{
	wheel_cancel(w, e);
	e->due = due;
	w->count++;
	if (due >= w->cursor) {
		place(w, e);
	} else {
		list_push(&w->fresh, e);
		if (due < w->fresh_min)
			w->fresh_min = due;
	}
}

uint64_t wheel_next(const struct wheel *w)
{
	uint64_t t = UINT64_MAX;
	unsigned level;

	if (w->late)
		t = w->late->due;
	if (w->fresh && w->fresh_min < t)
		t = w->fresh_min;
	if (t != UINT64_MAX || !w->levels)
		return t; /* late dues are < cursor, so never UINT64_MAX */
	level = (unsigned)__builtin_ctz(w->levels);
	return slot_start(w->cursor, level,
			  (unsigned)__builtin_ctzll(w->occupied[level]));
}

/* Merge two due-sorted lists (next links only; pprev fixed by caller). */
static struct wheel_entry *merge(struct wheel_entry *a, struct wheel_entry *b)
{
	struct wheel_entry *head = NULL, **tail = &head;

	while (a && b) {
		if (a->due <= b->due) {
			*tail = a;
			a = a->next;
		} else {
			*tail = b;
			b = b->next;
		}
		tail = &(*tail)->next;
	}
	*tail = a ? a : b;
	return head;
}

/* Bottom-up merge sort of a singly linked list: bin[i] holds a sorted run
 * of 2^i entries, like a binary counter; 64 bins cover any list. */
static struct wheel_entry *sort(struct wheel_entry *list)
{
	struct wheel_entry *bin[64] = { NULL }, *run;
	unsigned i;

	while (list) {
		run = list;
		list = list->next;
		run->next = NULL;
		for (i = 0; bin[i]; i++) {
			run = merge(bin[i], run);
			bin[i] = NULL;
		}
		bin[i] = run;
	}
	for (run = NULL, i = 0; i < 64; i++)
		if (bin[i])
			run = merge(bin[i], run);
	return run;
}

/* Sort the late arms and merge them into the sorted late list. O(k log k)
 * for k fresh entries plus O(late) to merge and relink. */
static void absorb_fresh(struct wheel *w)
{
	struct wheel_entry **pp = &w->late, *e;

	w->late = merge(w->late, sort(w->fresh));
	w->fresh = NULL;
	w->fresh_min = UINT64_MAX;
	for (e = w->late; e; e = e->next) {
		e->pprev = pp;
		pp = &e->next;
	}
}

/* Re-place every entry of a slot whose start the cursor has just reached:
 * each lands strictly lower (its due shares the cursor's bits down to and
 * including this level), those due == cursor in level 0's cursor slot. */
static void cascade(struct wheel *w, unsigned level, unsigned s)
{
	struct wheel_entry *e = w->slot[level][s], *next;

	w->slot[level][s] = NULL;
	mark_if_empty(w, level, s);
	for (; e; e = next) {
		next = e->next;
		place(w, e);
	}
}

static struct wheel_entry *take(struct wheel *w, struct wheel_entry *e)
{
	list_unlink(e);
	w->count--;
	return e;
}

size_t wheel_advance(struct wheel *w, uint64_t now, struct wheel_entry **out,
		     size_t max)
{
	struct wheel_entry **head;
	uint64_t start;
	unsigned level, s;
	size_t n = 0;

	if (now > w->now)
		w->now = now;
	if (w->fresh)
		absorb_fresh(w);
	/* Late entries are due before the cursor, so before anything in a slot. */
	while (w->late) {
		if (n == max)
			return n;
		out[n++] = take(w, w->late);
	}
	for (;;) {
		s = slot_of(w->cursor, 0);
		head = &w->slot[0][s];
		if (*head) {
			while (*head) {
				if (n == max)
					return n;
				out[n++] = take(w, *head);
			}
			mark_if_empty(w, 0, s);
		}
		if (!w->levels)
			break;
		level = (unsigned)__builtin_ctz(w->levels);
		s = (unsigned)__builtin_ctzll(w->occupied[level]);
		start = slot_start(w->cursor, level, s);
		if (start > w->now)
			break;
		w->cursor = start;
		if (level > 0)
			cascade(w, level, s);
	}
	/* Nothing is due before the earliest slot start (> now): jump. */
	w->cursor = w->now;
	return n;
}

static int check_links(struct wheel_entry *const *head, size_t *seen,
		       size_t limit)
{
	struct wheel_entry *const *pp = head;
	const struct wheel_entry *e;

	for (e = *head; e; pp = &e->next, e = e->next) {
		if (e->pprev != pp)
			return -EUCLEAN;
		if (++*seen > limit)
			return -EUCLEAN; /* more than counted, or a cycle */
	}
	return 0;
}

int wheel_validate(const struct wheel *w)
{
	const struct wheel_entry *e;
	size_t seen = 0;
	unsigned level, s;
	uint64_t prev;

	if (w->cursor > w->now)
		return -EUCLEAN;
	for (level = 0; level < WHEEL_LEVELS; level++) {
		if (!w->occupied[level] != !(w->levels & (1u << level)))
			return -EUCLEAN;
		for (s = 0; s < WHEEL_SLOTS; s++) {
			e = w->slot[level][s];
			if (!e != !(w->occupied[level] & (UINT64_C(1) << s)))
				return -EUCLEAN;
			if (check_links(&w->slot[level][s], &seen, w->count) < 0)
				return -EUCLEAN;
			for (; e; e = e->next)
				if (e->due < w->cursor ||
				    level_of(e->due, w->cursor) != level ||
				    slot_of(e->due, level) != s)
					return -EUCLEAN;
		}
	}
	if (w->levels >> WHEEL_LEVELS)
		return -EUCLEAN;
	if (check_links(&w->late, &seen, w->count) < 0 ||
	    check_links(&w->fresh, &seen, w->count) < 0)
		return -EUCLEAN;
	for (prev = 0, e = w->late; e; prev = e->due, e = e->next)
		if (e->due < prev || e->due >= w->cursor)
			return -EUCLEAN;
	for (e = w->fresh; e; e = e->next)
		if (e->due < w->fresh_min || e->due >= w->cursor)
			return -EUCLEAN;
	return seen == w->count ? 0 : -EUCLEAN;
}
