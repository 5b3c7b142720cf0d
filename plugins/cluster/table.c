/*
 * table.c - tables of entries keyed by strings (session ids, folded
 * room names, hex nick keys, instance ids): chained, doubled before the
 * chains grow long. The keys are copied.
 *
 * Keys come from NATS, that is from the other servers (anyone who can
 * publish there is trusted with the chat: docs/SCALING.md), so the hash
 * is FNV-1a with a per-process random seed, not a keyed MAC.
 */
#include "config.h"

#include <sys/random.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

#define TABLE_MIN_BUCKETS	64

static uint64_t	table_seed;

/* The hash of a key. */
static uint64_t
table_hash(const char *key)
{
	uint64_t	h = 0xcbf29ce484222325ULL ^ table_seed;

	for (; *key != '\0'; key++) {
		h ^= (unsigned char)*key;
		h *= 0x100000001b3ULL;
	}
	return (h ^ (h >> 29));
}

/* An empty table. */
void
table_init(struct table *t)
{
	struct timespec	ts;

	if (table_seed == 0 && getrandom(&table_seed, sizeof table_seed,
	    GRND_NONBLOCK) != (ssize_t)sizeof table_seed) {
		clock_gettime(CLOCK_REALTIME, &ts);
		table_seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	}
	t->nbuckets = TABLE_MIN_BUCKETS;
	if ((t->buckets = calloc(t->nbuckets, sizeof *t->buckets)) == NULL)
		abort();
	t->count = 0;
}

/* Free the entries (not the values). */
void
table_free(struct table *t)
{
	struct table_entry	*e, *next;
	size_t			 i;

	for (i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->count = 0;
}

/* Double the buckets. */
static void
table_grow(struct table *t)
{
	struct table_entry	**nb, *e, *next;
	size_t			  size = t->nbuckets * 2, i, b;

	if ((nb = calloc(size, sizeof *nb)) == NULL)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			b = table_hash(e->key) & (size - 1);
			e->next = nb[b];
			nb[b] = e;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = size;
}

/* The value of key, or NULL. */
void *
table_get(struct table *t, const char *key)
{
	struct table_entry	*e;

	for (e = t->buckets[table_hash(key) & (t->nbuckets - 1)]; e != NULL;
	    e = e->next) {
		if (strcmp(e->key, key) == 0)
			return (e->value);
	}
	return (NULL);
}

/* Set the value of key (replacing any). Returns 0. */
int
table_put(struct table *t, const char *key, void *value)
{
	struct table_entry	*e;
	size_t			 b;

	b = table_hash(key) & (t->nbuckets - 1);
	for (e = t->buckets[b]; e != NULL; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			e->value = value;
			return (0);
		}
	}
	if (t->count >= t->nbuckets) {
		table_grow(t);
		b = table_hash(key) & (t->nbuckets - 1);
	}
	if ((e = malloc(sizeof *e)) == NULL || (e->key = strdup(key)) == NULL)
		abort();
	e->value = value;
	e->next = t->buckets[b];
	t->buckets[b] = e;
	t->count++;
	return (0);
}

/* Remove key; its value, or NULL. */
void *
table_remove(struct table *t, const char *key)
{
	struct table_entry	**ep, *e;
	void			 *v;

	ep = &t->buckets[table_hash(key) & (t->nbuckets - 1)];
	for (; (e = *ep) != NULL; ep = &e->next) {
		if (strcmp(e->key, key) == 0) {
			*ep = e->next;
			v = e->value;
			free(e->key);
			free(e);
			t->count--;
			return (v);
		}
	}
	return (NULL);
}

/*
 * Every value, in an array the caller frees (NULL when there is none),
 * so that a walk may change the table.
 */
void **
table_values(struct table *t, size_t *n)
{
	struct table_entry	*e;
	void			**out;
	size_t			  i, k = 0;

	*n = 0;
	if (t->count == 0)
		return (NULL);
	if ((out = calloc(t->count, sizeof *out)) == NULL)
		abort();
	for (i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = e->next)
			out[k++] = e->value;
	}
	*n = k;
	return (out);
}
