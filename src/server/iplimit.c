/*
 * iplimit.c - connections per client address (max_clients_per_ip).
 *
 * A small chained hash table maps an IPv4 or IPv6 address (the full
 * address: no prefix grouping) to the number of its connections that hold
 * a socket. An entry lives while it has connections, so the table is as
 * big as the number of distinct peers connected now. Unix sockets have no
 * address and are never counted.
 *
 * The refusal log is rate-limited per address: a flood of connects from
 * one peer makes one line every IPLIMIT_LOG_SECONDS, which says how many
 * refusals it stands for, instead of a line per connection.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define IPLIMIT_MIN_BUCKETS	64
#define IPLIMIT_LOG_SECONDS	5

/* One address with connections. */
struct iplimit_entry {
	int			 family;
	uint8_t			 addr[16];
	unsigned int		 count;		/* connections holding a socket */
	struct timeval		 logged;	/* last refusal logged */
	uint64_t		 unlogged;	/* refusals since then, not logged */
	struct iplimit_entry	*next;		/* bucket chain */
};

/* Copy the address of sa into family and addr; -1 if it has none. */
static int
iplimit_key(const struct sockaddr *sa, int *family, uint8_t *addr)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	memset(addr, 0, 16);
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		memcpy(addr, &sin->sin_addr, sizeof sin->sin_addr);
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(addr, &sin6->sin6_addr, sizeof sin6->sin6_addr);
		break;
	default:
		return (-1);
	}
	*family = sa->sa_family;
	return (0);
}

/* FNV-1a over an address. */
static size_t
iplimit_hash(int family, const uint8_t *addr)
{
	uint64_t	h = 14695981039346656037ull;
	size_t		i;

	h ^= (unsigned int)family;
	h *= 1099511628211ull;
	for (i = 0; i < 16; i++) {
		h ^= addr[i];
		h *= 1099511628211ull;
	}
	return ((size_t)h);
}

/* Double the table (or make it) and rehash every entry. */
static void
iplimit_grow(struct iplimit *t)
{
	struct iplimit_entry	**old = t->buckets, *e, *next;
	size_t			  oldn = t->nbuckets, i, b;

	t->nbuckets = oldn == 0 ? IPLIMIT_MIN_BUCKETS : oldn * 2;
	t->buckets = ac_xcalloc(t->nbuckets, sizeof *t->buckets);
	for (i = 0; i < oldn; i++) {
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			b = iplimit_hash(e->family, e->addr) &
			    (t->nbuckets - 1);
			e->next = t->buckets[b];
			t->buckets[b] = e;
		}
	}
	free(old);
}

/* The entry for an address, made (with no connections) if new. */
static struct iplimit_entry *
iplimit_lookup(struct iplimit *t, int family, const uint8_t *addr)
{
	struct iplimit_entry	*e;
	size_t			 b;

	if (t->nbuckets != 0) {
		b = iplimit_hash(family, addr) & (t->nbuckets - 1);
		for (e = t->buckets[b]; e != NULL; e = e->next) {
			if (e->family == family &&
			    memcmp(e->addr, addr, 16) == 0)
				return (e);
		}
	}
	if (t->count + 1 > t->nbuckets / 4 * 3)
		iplimit_grow(t);
	e = ac_xcalloc(1, sizeof *e);
	e->family = family;
	memcpy(e->addr, addr, 16);
	b = iplimit_hash(family, addr) & (t->nbuckets - 1);
	e->next = t->buckets[b];
	t->buckets[b] = e;
	t->count++;
	return (e);
}

/* Unlink and free an entry. */
static void
iplimit_remove(struct iplimit *t, struct iplimit_entry *e)
{
	struct iplimit_entry	**ep;
	size_t			  b;

	b = iplimit_hash(e->family, e->addr) & (t->nbuckets - 1);
	for (ep = &t->buckets[b]; *ep != NULL; ep = &(*ep)->next) {
		if (*ep == e) {
			*ep = e->next;
			break;
		}
	}
	t->count--;
	free(e);
}

/*
 * Count a new connection from sa against max (0: no limit). Returns 0 and
 * sets *ep to the entry to give back with iplimit_release() (NULL for an
 * address-less peer such as a unix socket), or -1 if the address already
 * has max connections: then nothing is counted, and *ep is the address's
 * entry for iplimit_log_refusal().
 */
int
iplimit_acquire(struct iplimit *t, const struct sockaddr *sa,
    unsigned int max, struct iplimit_entry **ep)
{
	struct iplimit_entry	*e;
	uint8_t			 addr[16];
	int			 family;

	*ep = NULL;
	if (iplimit_key(sa, &family, addr) == -1)
		return (0);
	e = iplimit_lookup(t, family, addr);
	if (max != 0 && e->count >= max) {
		*ep = e;	/* max is at least 1: e has connections */
		return (-1);
	}
	e->count++;
	*ep = e;
	return (0);
}

/* A connection counted by iplimit_acquire() has closed its socket. */
void
iplimit_release(struct iplimit *t, struct iplimit_entry *e)
{
	if (e == NULL)
		return;
	if (--e->count == 0)
		iplimit_remove(t, e);
}

/*
 * Log that a connection (shown as peer) to the address of e was refused,
 * at most once every IPLIMIT_LOG_SECONDS per address; the line counts the
 * refusals it stands for. now is the event loop's cached time.
 */
void
iplimit_log_refusal(struct iplimit_entry *e, const char *peer,
    unsigned int max, const struct timeval *now)
{
	char	host[INET6_ADDRSTRLEN];

	if (e->logged.tv_sec != 0 && now->tv_sec >= e->logged.tv_sec &&
	    now->tv_sec - e->logged.tv_sec < IPLIMIT_LOG_SECONDS) {
		e->unlogged++;
		return;
	}
	if (inet_ntop(e->family, e->addr, host, sizeof host) == NULL)
		snprintf(host, sizeof host, "?");
	if (e->unlogged != 0)
		log_warnx("too many connections from %s (max_clients_per_ip "
		    "%u): refusing %s, and %llu more since the last report",
		    host, max, peer, (unsigned long long)e->unlogged);
	else
		log_warnx("too many connections from %s (max_clients_per_ip "
		    "%u): refusing %s", host, max, peer);
	e->logged = *now;
	e->unlogged = 0;
}

/* Free every entry and the table (the end of main). */
void
iplimit_free(struct iplimit *t)
{
	struct iplimit_entry	*e, *next;
	size_t			 i;

	for (i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = 0;
	t->count = 0;
}
