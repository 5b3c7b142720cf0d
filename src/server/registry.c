/*
 * registry.c - every live session, by id and in accept order.
 *
 * The hash table is chained and doubles when it is three quarters full;
 * ids are random UUIDs, so a plain FNV-1a hash spreads them well.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"
#include "server.h"

#define REGISTRY_MIN_BUCKETS 64

/* FNV-1a over a NUL-terminated id. */
static size_t
registry_hash(const char *id)
{
	uint64_t	h = 14695981039346656037ull;

	for (; *id != '\0'; id++) {
		h ^= (unsigned char)*id;
		h *= 1099511628211ull;
	}
	return ((size_t)h);
}

/* Make an empty registry. */
void
registry_init(struct registry *reg)
{
	reg->nbuckets = REGISTRY_MIN_BUCKETS;
	reg->buckets = ac_xcalloc(reg->nbuckets, sizeof *reg->buckets);
	reg->count = 0;
	TAILQ_INIT(&reg->list);
	reg->snap = NULL;
	reg->snap_size = 0;
	reg->snap_busy = 0;
}

/* Free the table (the sessions are the caller's business). */
void
registry_free(struct registry *reg)
{
	free(reg->buckets);
	reg->buckets = NULL;
	reg->nbuckets = 0;
	free(reg->snap);
	reg->snap = NULL;
	reg->snap_size = 0;
}

/* Double the table and rehash every session. */
static void
registry_grow(struct registry *reg)
{
	struct ac_session	**old = reg->buckets, *s, *next;
	size_t			  oldn = reg->nbuckets, i, b;

	reg->nbuckets *= 2;
	reg->buckets = ac_xcalloc(reg->nbuckets, sizeof *reg->buckets);
	for (i = 0; i < oldn; i++) {
		for (s = old[i]; s != NULL; s = next) {
			next = s->hash_next;
			b = registry_hash(s->id) & (reg->nbuckets - 1);
			s->hash_next = reg->buckets[b];
			reg->buckets[b] = s;
		}
	}
	free(old);
}

/* Add a session (its id must be unique). */
void
registry_add(struct registry *reg, struct ac_session *s)
{
	size_t	b;

	if (reg->count + 1 > reg->nbuckets / 4 * 3)
		registry_grow(reg);
	b = registry_hash(s->id) & (reg->nbuckets - 1);
	s->hash_next = reg->buckets[b];
	reg->buckets[b] = s;
	reg->count++;
	TAILQ_INSERT_TAIL(&reg->list, s, entry);
}

/* Remove a session that was added. */
void
registry_remove(struct registry *reg, struct ac_session *s)
{
	struct ac_session	**pp;
	size_t			  b;

	b = registry_hash(s->id) & (reg->nbuckets - 1);
	for (pp = &reg->buckets[b]; *pp != NULL; pp = &(*pp)->hash_next) {
		if (*pp == s) {
			*pp = s->hash_next;
			s->hash_next = NULL;
			reg->count--;
			TAILQ_REMOVE(&reg->list, s, entry);
			return;
		}
	}
}

/* The live session with this id, or NULL. */
struct ac_session *
registry_find(struct registry *reg, const char *id)
{
	struct ac_session	*s;
	size_t			 b;

	if (id == NULL)
		return (NULL);
	b = registry_hash(id) & (reg->nbuckets - 1);
	for (s = reg->buckets[b]; s != NULL; s = s->hash_next) {
		if (strcmp(s->id, id) == 0)
			return (s);
	}
	return (NULL);
}

/*
 * A referenced copy of the session list (handshaken ones only if asked),
 * so that callers may close sessions, or plugins close others, while they
 * walk it. Release with registry_snapshot_free().
 */
struct ac_session **
registry_snapshot(struct registry *reg, int acked_only,
    struct ac_session *except, size_t *n)
{
	struct ac_session	**snap, *s;
	size_t			  i = 0;

	snap = ac_xcalloc(reg->count + 1, sizeof *snap);
	TAILQ_FOREACH(s, &reg->list, entry) {
		if (s == except || (s->flags & AC_SESS_DEAD))
			continue;
		if (acked_only && !(s->flags & AC_SESS_ACKED))
			continue;
		session_ref(s);
		snap[i++] = s;
	}
	*n = i;
	return (snap);
}

/* Drop the references a snapshot holds and free it. */
void
registry_snapshot_free(struct ac_session **snap, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		session_unref(snap[i]);
	free(snap);
}

/*
 * The handshaken live sessions but except, for a fan-out: the copy of the
 * list that registry_snapshot() makes, without its references and usually
 * without an allocation. None is needed: a session is freed only by the
 * reap event, never inside the callback that walks the copy, so a
 * session closed meanwhile (by the walk itself, or a plugin's
 * session_close hook) is still there to be found AC_SESS_DEAD. The copy
 * lives in an array the registry keeps for the next one; a walk inside a
 * walk (a hook that fans out) gets one of its own. Give it back with
 * registry_recipients_done().
 */
struct ac_session **
registry_recipients(struct registry *reg, struct ac_session *except,
    size_t *n)
{
	struct ac_session	**snap, *s;
	size_t			  i = 0;

	if (!reg->snap_busy) {
		if (reg->snap_size < reg->count + 1) {
			reg->snap_size = reg->count + 1;
			reg->snap = ac_xreallocarray(reg->snap,
			    reg->snap_size, sizeof *reg->snap);
		}
		reg->snap_busy = 1;
		snap = reg->snap;
	} else
		snap = ac_xreallocarray(NULL, reg->count + 1, sizeof *snap);
	TAILQ_FOREACH(s, &reg->list, entry) {
		if ((s->flags & (AC_SESS_DEAD|AC_SESS_ACKED)) ==
		    AC_SESS_ACKED && s != except)
			snap[i++] = s;
	}
	*n = i;
	return (snap);
}

/* Give back what registry_recipients() returned. */
void
registry_recipients_done(struct registry *reg, struct ac_session **snap)
{
	if (snap == reg->snap)
		reg->snap_busy = 0;
	else
		free(snap);
}
