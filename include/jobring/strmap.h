/* strmap.h - a small open-addressing hash map from short strings (ids) to
 * pointers, for the actors' in-memory indexes (orgs, jobs in flight, ...).
 *
 * Keys are copied (at most STRMAP_KEY_MAX-1 bytes); values are borrowed
 * pointers the caller owns. Deletion uses backward-shift, so there are no
 * tombstones and lookups stay short. Not thread-safe (actors are processes). */
#ifndef JOBRING_STRMAP_H
#define JOBRING_STRMAP_H

#include <stddef.h>

#define STRMAP_KEY_MAX 48

struct strmap_slot {
	char key[STRMAP_KEY_MAX];
	void *val;
	unsigned hash;
	int used;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap, n;
};

void strmap_init(struct strmap *m);
void strmap_free(struct strmap *m);
/** The value for key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/** Insert or replace; returns the previous value or NULL. Keys longer than
 *  STRMAP_KEY_MAX-1 are truncated (ids here are short by construction). */
void *strmap_put(struct strmap *m, const char *key, void *val);
/** Remove; returns the removed value or NULL. */
void *strmap_del(struct strmap *m, const char *key);
/** Iterate: *pos starts at 0; returns the next used slot or NULL. */
struct strmap_slot *strmap_next(const struct strmap *m, size_t *pos);

#endif
