/* strmap.c - linear probing with backward-shift deletion. */
#include "jobring/strmap.h"
#include "jobring/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
}

void strmap_free(struct strmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static struct strmap_slot *find(const struct strmap *m, const char *key, unsigned h)
{
	if (!m->cap)
		return NULL;
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct strmap_slot *s = &m->slots[i];
		if (!s->used)
			return NULL;
		if (s->hash == h && strncmp(s->key, key, STRMAP_KEY_MAX - 1) == 0)
			return s;
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key, hash(key));
	return s ? s->val : NULL;
}

static void grow(struct strmap *m)
{
	struct strmap_slot *old = m->slots;
	size_t ocap = m->cap;

	m->cap = ocap ? ocap * 2 : 64;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < ocap; i++) {
		if (!old[i].used)
			continue;
		size_t j = old[i].hash & (m->cap - 1);
		while (m->slots[j].used)
			j = (j + 1) & (m->cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
}

void *strmap_put(struct strmap *m, const char *key, void *val)
{
	unsigned h = hash(key);
	struct strmap_slot *s = find(m, key, h);

	if (s) {
		void *prev = s->val;
		s->val = val;
		return prev;
	}
	if ((m->n + 1) * 4 > m->cap * 3)
		grow(m);
	size_t i = h & (m->cap - 1);
	while (m->slots[i].used)
		i = (i + 1) & (m->cap - 1);
	s = &m->slots[i];
	snprintf(s->key, sizeof(s->key), "%s", key);
	s->hash = h;
	s->val = val;
	s->used = 1;
	m->n++;
	return NULL;
}

void *strmap_del(struct strmap *m, const char *key)
{
	unsigned h = hash(key);
	struct strmap_slot *s = find(m, key, h);
	void *val;
	size_t i, j;

	if (!s)
		return NULL;
	val = s->val;
	i = (size_t)(s - m->slots);
	/* Backward shift: pull later members of the cluster into the hole when
	 * the hole lies between their home slot and where they sit. */
	for (j = (i + 1) & (m->cap - 1); m->slots[j].used; j = (j + 1) & (m->cap - 1)) {
		size_t home = m->slots[j].hash & (m->cap - 1);
		if (((j - home) & (m->cap - 1)) >= ((j - i) & (m->cap - 1))) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	m->n--;
	return val;
}

struct strmap_slot *strmap_next(const struct strmap *m, size_t *pos)
{
	while (*pos < m->cap) {
		struct strmap_slot *s = &m->slots[(*pos)++];
		if (s->used)
			return s;
	}
	return NULL;
}
