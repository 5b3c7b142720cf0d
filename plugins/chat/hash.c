/*
 * hash.c - the tables of nicks and rooms: chained hash tables keyed by
 * folded names, doubled when they hold more entries than buckets, so a
 * look-up visits about one entry whatever the number of sessions.
 *
 * Keys come from clients, who could choose names that all land in one
 * bucket and turn every look-up into a walk of the whole table. So the
 * hash is SipHash-2-4 under a key drawn at random when the first table is
 * made: without the key, nobody can tell which names collide.
 *
 * Every entry visited by a look-up is counted in *steps, chat's measure of
 * its own work (the chat_steps_total metric, which the scale test reads).
 */
#include "config.h"

#include <sys/random.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"

#define HASH_MIN_BUCKETS	64

static uint64_t	hash_sip_key[2];
static int	hash_sip_keyed;

/* Rotate a 64-bit word left by b bits. */
static inline uint64_t
hash_rotl(uint64_t x, int b)
{
	return ((x << b) | (x >> (64 - b)));
}

/* Read 8 bytes as a little-endian word. */
static inline uint64_t
hash_le64(const uint8_t *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return (v);
}

/* One SipHash round over the four state words. */
#define HASH_SIPROUND(v0, v1, v2, v3) do {				\
	v0 += v1; v1 = hash_rotl(v1, 13); v1 ^= v0;			\
	v0 = hash_rotl(v0, 32);						\
	v2 += v3; v3 = hash_rotl(v3, 16); v3 ^= v2;			\
	v0 += v3; v3 = hash_rotl(v3, 21); v3 ^= v0;			\
	v2 += v1; v1 = hash_rotl(v1, 17); v1 ^= v2;			\
	v2 = hash_rotl(v2, 32);						\
} while (0)

/* SipHash-2-4 of a string under the table key. */
static uint64_t
hash_sip(const char *key)
{
	const uint8_t	*p = (const uint8_t *)key;
	size_t		 len = strlen(key), i;
	uint64_t	 v0, v1, v2, v3, m, last;

	v0 = hash_sip_key[0] ^ 0x736f6d6570736575ULL;
	v1 = hash_sip_key[1] ^ 0x646f72616e646f6dULL;
	v2 = hash_sip_key[0] ^ 0x6c7967656e657261ULL;
	v3 = hash_sip_key[1] ^ 0x7465646279746573ULL;
	for (i = 0; i + 8 <= len; i += 8) {
		m = hash_le64(p + i);
		v3 ^= m;
		HASH_SIPROUND(v0, v1, v2, v3);
		HASH_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	last = (uint64_t)(len & 0xff) << 56;
	for (; i < len; i++)
		last |= (uint64_t)p[i] << (8 * (i & 7));
	v3 ^= last;
	HASH_SIPROUND(v0, v1, v2, v3);
	HASH_SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	HASH_SIPROUND(v0, v1, v2, v3);
	HASH_SIPROUND(v0, v1, v2, v3);
	HASH_SIPROUND(v0, v1, v2, v3);
	HASH_SIPROUND(v0, v1, v2, v3);
	return (v0 ^ v1 ^ v2 ^ v3);
}

/* Draw the SipHash key once (getrandom, else the clock and pid). */
static void
hash_seed(void)
{
	struct timespec	ts;

	if (hash_sip_keyed)
		return;
	if (getrandom(hash_sip_key, sizeof hash_sip_key, GRND_NONBLOCK) !=
	    (ssize_t)sizeof hash_sip_key) {
		clock_gettime(CLOCK_REALTIME, &ts);
		hash_sip_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL;
		hash_sip_key[1] = (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 32);
	}
	hash_sip_keyed = 1;
}

/* An empty table; steps (may be NULL) counts entries visited. */
void
hash_init(struct hash *h, uint64_t *steps)
{
	hash_seed();
	h->nbuckets = HASH_MIN_BUCKETS;
	h->buckets = calloc(h->nbuckets, sizeof *h->buckets);
	if (h->buckets == NULL)
		abort();
	h->count = 0;
	h->steps = steps;
}

/* Free the table's nodes (not the values they point to). */
void
hash_free(struct hash *h)
{
	struct hash_node	*n, *next;
	size_t			 i;

	for (i = 0; i < h->nbuckets; i++) {
		for (n = h->buckets[i]; n != NULL; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(h->buckets);
	h->buckets = NULL;
	h->nbuckets = h->count = 0;
}

/* Double the buckets and move every node to its new chain. */
static void
hash_grow(struct hash *h)
{
	struct hash_node	**nb, *n, *next;
	size_t			  size = h->nbuckets * 2, i, b;

	if ((nb = calloc(size, sizeof *nb)) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < h->nbuckets; i++) {
		for (n = h->buckets[i]; n != NULL; n = next) {
			next = n->next;
			b = hash_sip(n->key) & (size - 1);
			n->next = nb[b];
			nb[b] = n;
		}
	}
	free(h->buckets);
	h->buckets = nb;
	h->nbuckets = size;
}

/* The value stored under a folded key, or NULL. */
void *
hash_find(struct hash *h, const char *key)
{
	struct hash_node	*n;

	n = h->buckets[hash_sip(key) & (h->nbuckets - 1)];
	for (; n != NULL; n = n->next) {
		if (h->steps != NULL)
			(*h->steps)++;
		if (strcmp(n->key, key) == 0)
			return (n->value);
	}
	return (NULL);
}

/*
 * Store value under key, which must not be in the table yet. The key is
 * not copied: it must live as long as the entry (it is the value's own
 * folded name).
 */
void
hash_add(struct hash *h, const char *key, void *value)
{
	struct hash_node	*n;
	size_t			 b;

	if (h->count >= h->nbuckets)
		hash_grow(h);
	if ((n = malloc(sizeof *n)) == NULL)
		abort();
	b = hash_sip(key) & (h->nbuckets - 1);
	n->key = key;
	n->value = value;
	n->next = h->buckets[b];
	h->buckets[b] = n;
	h->count++;
	if (h->steps != NULL)
		(*h->steps)++;
}

/* Remove the entry of key, if there is one. */
void
hash_remove(struct hash *h, const char *key)
{
	struct hash_node	**np, *n;

	np = &h->buckets[hash_sip(key) & (h->nbuckets - 1)];
	for (; (n = *np) != NULL; np = &n->next) {
		if (h->steps != NULL)
			(*h->steps)++;
		if (strcmp(n->key, key) == 0) {
			*np = n->next;
			free(n);
			h->count--;
			return;
		}
	}
}
