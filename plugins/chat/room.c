/*
 * room.c - rooms: found by folded name, shown in the case first used,
 * numbered per message, kept while they have members.
 *
 * A room that empties is forgotten. Without history that is the end of
 * it: its next member starts it again at seq 1, in the case it then uses.
 * With history, the room lives on in the store: when chat meets it again
 * it asks the backend for its last seq and its name as first shown
 * (last_seq), so numbering and case carry on.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

/* The room named name (len bytes, any case), or NULL. */
struct room *
room_find(struct chat *c, const char *name, size_t len)
{
	char	folded[CHAT_ROOM_MAX + 1];

	if (len == 0 || len > CHAT_ROOM_MAX)
		return (NULL);
	names_fold(folded, name, len);
	return (hash_find(&c->rooms, folded));
}

/* Make the record of a room that is not in the table (a valid name). */
static struct room *
room_new(struct chat *c, const char *name, size_t len)
{
	struct room	*r;
	char		 kept[CHAT_ROOM_MAX + 1], fkept[CHAT_ROOM_MAX + 1];

	if ((r = calloc(1, sizeof *r)) == NULL)
		abort();
	r->chat = c;
	memcpy(r->name, name, len);
	r->name[len] = '\0';
	names_fold(r->fname, name, len);
	if (c->history != NULL) {
		kept[0] = '\0';
		r->seq = c->history->last_seq(c->history->ctx, r->name, kept,
		    sizeof kept);
		/* The case the backend kept, if it names this room. */
		if (strlen(kept) == len) {
			names_fold(fkept, kept, len);
			if (strcmp(fkept, r->fname) == 0)
				memcpy(r->name, kept, len + 1);
		}
	}
	TAILQ_INIT(&r->members);
	TAILQ_INIT(&r->pending);
	hash_add(&c->rooms, r->fname, r);
	return (r);
}

/* Put a member's session last in its room's live array. */
static void
room_live_add(struct room *r, struct member *m)
{
	unsigned int	size;

	if (r->nlive == r->live_size) {
		size = r->live_size == 0 ? 8 : r->live_size * 2;
		r->live = reallocarray(r->live, size, sizeof *r->live);
		r->live_members = reallocarray(r->live_members, size,
		    sizeof *r->live_members);
		if (r->live == NULL || r->live_members == NULL)
			abort();
		r->live_size = size;
	}
	m->live_index = r->nlive;
	r->live[r->nlive] = m->s;
	r->live_members[r->nlive] = m;
	r->nlive++;
}

/* Take a member's session out of its room's live array: the last entry
 * moves into its place. */
static void
room_live_remove(struct room *r, struct member *m)
{
	unsigned int	i = m->live_index, last = r->nlive - 1;

	if (i != last) {
		r->live[i] = r->live[last];
		r->live_members[i] = r->live_members[last];
		r->live_members[i]->live_index = i;
	}
	r->nlive--;
}

/*
 * Raise what a member's live delivery starts after, and with it the
 * room's highest: never lowered (a member leaving may have held it), so
 * it only ever sends a message the long way when it need not.
 */
void
room_live_after(struct member *m, uint64_t seq)
{
	if (m->live_after < seq)
		m->live_after = seq;
	if (m->room->live_after_max < seq)
		m->room->live_after_max = seq;
}

/* A member has one more replay running (its live messages are held). */
void
room_replay_begin(struct member *m)
{
	if (m->replays++ == 0)
		m->room->nreplaying++;
}

/* One of a member's replays has ended. */
void
room_replay_end(struct member *m)
{
	if (--m->replays == 0)
		m->room->nreplaying--;
}

/*
 * Put user u in the room named name (len bytes, valid), making the room
 * if needed, as its current room. The caller has checked that u is not
 * in it and may join one more room.
 */
struct member *
room_join(struct user *u, const char *name, size_t len)
{
	struct chat	*c = u->chat;
	struct room	*r;
	struct member	*m;

	if ((r = room_find(c, name, len)) == NULL)
		r = room_new(c, name, len);
	if ((m = calloc(1, sizeof *m)) == NULL)
		abort();
	m->user = u;
	m->s = u->s;
	m->room = r;
	/* Messages still waiting for their store (seq up to r->seq) were
	 * numbered before it joined. */
	room_live_after(m, r->seq);
	TAILQ_INIT(&m->held);
	TAILQ_INIT(&m->tickets);
	TAILQ_INSERT_TAIL(&r->members, m, in_room);
	r->nmembers++;
	if (m->s != NULL)
		room_live_add(r, m);
	TAILQ_INSERT_TAIL(&u->rooms, m, in_user);
	u->nrooms++;
	c->nmembers++;
	c->counts[CHAT_C_STEPS]++;
	return (m);
}

/* Forget a room: out of the table, its pending stores told. */
static void
room_free(struct room *r)
{
	struct chat	*c = r->chat;

	message_room_gone(r);
	hash_remove(&c->rooms, r->fname);
	free(r->live);
	free(r->live_members);
	free(r);
}

/* Take a membership off both its lists; forget the room once empty. */
void
room_leave(struct member *m)
{
	struct chat	*c = m->user->chat;
	struct room	*r = m->room;
	struct user	*u = m->user;

	if (m->replays > 0)
		r->nreplaying--;
	replay_member_gone(m);
	TAILQ_REMOVE(&r->members, m, in_room);
	r->nmembers--;
	if (m->s != NULL)
		room_live_remove(r, m);
	TAILQ_REMOVE(&u->rooms, m, in_user);
	u->nrooms--;
	c->nmembers--;
	c->counts[CHAT_C_STEPS]++;
	free(m);
	if (r->nmembers == 0)
		room_free(r);
}

/* Collect every room of the table, for room_free_all. */
static int
room_collect(struct chat *c, struct room ***out, size_t *n)
{
	struct hash_node	*hn;
	size_t			 i, k = 0;

	*n = c->rooms.count;
	if (*n == 0) {
		*out = NULL;
		return (0);
	}
	if ((*out = calloc(*n, sizeof **out)) == NULL)
		return (-1);
	for (i = 0; i < c->rooms.nbuckets; i++) {
		for (hn = c->rooms.buckets[i]; hn != NULL; hn = hn->next)
			(*out)[k++] = hn->value;
	}
	return (0);
}

/* Free every room left (chat's fini: their members are gone already). */
void
room_free_all(struct chat *c)
{
	struct room	**all;
	size_t		  n, i;

	if (room_collect(c, &all, &n) == -1)
		return;
	for (i = 0; i < n; i++)
		room_free(all[i]);
	free(all);
}

/* How many rooms have members. */
int
room_count(struct chat *c)
{
	return ((int)c->rooms.count);
}
