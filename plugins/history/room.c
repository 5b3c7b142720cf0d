/*
 * room.c - every room's highest seq and name, for the whole process.
 *
 * The contract (asyncchat/history.h, "Numbering") asks last_seq to count
 * every message handed to store() by any instance of the backend in this
 * process, written yet or not, so that a reload never hands out a seq
 * twice. So the table belongs to no instance: the first instance loads it
 * from its database, each later one adds its own database's rooms (when
 * a reload changes `path`, the higher seq of either wins), and it is freed
 * when the last instance finishes. Rooms are kept until then, so a room
 * stays numbered even after its last message was pruned (and the rooms
 * table of the database keeps it across restarts: store.c).
 *
 * No room is ever dropped from the table, though one may have had no
 * message for months: last_seq must answer on the loop thread, from
 * memory, so a room that left memory could only be numbered again by
 * reading the disk there, or from 1. The table is as large as the rooms
 * tables of the databases, about 150 bytes a room.
 *
 * The table is a binary tree (tsearch) keyed by the folded name: loop
 * thread only, like everything that calls it.
 */
#include "config.h"

#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

static void		*room_tree;
static unsigned int	 room_holders;

/* Compare two rooms by key, for the tree. */
static int
room_cmp(const void *a, const void *b)
{
	const struct room	*ra = a, *rb = b;

	return strcmp(ra->key, rb->key);
}

/* An instance starts using the table. */
void
room_hold(void)
{
	room_holders++;
}

/* An instance is done with the table; the last one frees it. */
void
room_release(void)
{
	if (room_holders == 0 || --room_holders > 0)
		return;
	tdestroy(room_tree, free);
	room_tree = NULL;
}

/* The room with this key, or NULL. */
struct room *
room_find(const char *key)
{
	struct room	 probe, **found;

	if (strlen(key) > HISTORY_ROOM_MAX)
		return NULL;
	strcpy(probe.key, key);
	found = tfind(&probe, &room_tree, room_cmp);
	return found != NULL ? *found : NULL;
}

/*
 * Note that room key (named name, if new) has a message seq: add it to
 * the table if need be and raise its seq. Returns the room, or NULL when
 * out of memory.
 */
struct room *
room_note(const char *key, const char *name, uint64_t seq)
{
	struct room	*r, **found;

	if ((r = room_find(key)) == NULL) {
		if ((r = calloc(1, sizeof *r)) == NULL)
			return NULL;
		strcpy(r->key, key);
		strcpy(r->name, name);
		if ((found = tsearch(r, &room_tree, room_cmp)) == NULL) {
			free(r);
			return NULL;
		}
	}
	if (seq > r->seq)
		r->seq = seq;
	return r;
}
