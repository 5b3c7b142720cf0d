/*
 * room.c - what this process knows of each room's last stored message:
 * its room seq and its stream sequence, from the feed, from appends'
 * acknowledgements and from the reads of the stream; and the stream
 * sequence the feed has reached.
 *
 * The table belongs to no instance of the plugin: a reload makes a new
 * instance (and a new chat) before the old one goes, and the new one
 * carries on from what the process knows, so that chat's rooms keep their
 * numbering across it, and the new feed starts right after the last
 * stored message the old one handed to chat. It is freed with the last
 * instance. Loop thread only.
 *
 * A room is one subject of the stream: P.room.<token>, the token being
 * the folded name with `.` written `~` (a `.` would split the subject;
 * `~` is not in a room name, so nothing else maps to it).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static struct table	room_table;
static unsigned int	room_holders;
static uint64_t		room_feed_at;	/* the next stream sequence wanted */

/* An instance starts using the table. */
void
room_hold(void)
{
	if (room_holders++ == 0)
		table_init(&room_table);
}

/* An instance is done with the table; the last one frees it. */
void
room_release(void)
{
	struct room_state	**all;
	size_t			  n, i;

	if (room_holders == 0 || --room_holders > 0)
		return;
	all = (struct room_state **)table_values(&room_table, &n);
	for (i = 0; i < n; i++)
		free(all[i]);
	free(all);
	table_free(&room_table);
	room_feed_at = 0;
}

/* The subject token of a folded name: `.` written `~`. */
void
room_subject_token(char *out, size_t outlen, const char *fname)
{
	size_t	i;

	for (i = 0; fname[i] != '\0' && i + 1 < outlen; i++)
		out[i] = fname[i] == '.' ? '~' : fname[i];
	out[i] = '\0';
}

/*
 * The folded name of a subject token, into out (65 bytes). Returns 0, or
 * -1 when the token is no room's.
 */
int
room_from_token(char *out, size_t outlen, const char *token)
{
	size_t	i;

	for (i = 0; token[i] != '\0'; i++) {
		if (i + 1 >= outlen)
			return (-1);
		out[i] = token[i] == '~' ? '.' : token[i];
		if (out[i] >= 'A' && out[i] <= 'Z')
			return (-1);	/* tokens are folded */
	}
	out[i] = '\0';
	return (roomname_valid_string(out) ? 0 : -1);
}

/* What is known of a room (folded name), or NULL. */
struct room_state *
room_get(const char *fname)
{
	return (table_get(&room_table, fname));
}

/* The record of a room (folded name), made if need be. */
static struct room_state *
room_make(const char *fname, const char *name)
{
	struct room_state	*r;

	if ((r = table_get(&room_table, fname)) != NULL)
		return (r);
	if ((r = calloc(1, sizeof *r)) == NULL)
		abort();
	snprintf(r->fname, sizeof r->fname, "%s", fname);
	snprintf(r->name, sizeof r->name, "%s", name);
	table_put(&room_table, r->fname, r);
	return (r);
}

/* Non-zero when the room took id already (else it is kept). */
static int
room_seen_id(struct room_state *r, const char *id)
{
	unsigned int	i, n;

	n = r->nrecent < CLUSTER_RECENT_IDS ? r->nrecent : CLUSTER_RECENT_IDS;
	for (i = 0; i < n; i++) {
		if (strcmp(r->recent[i], id) == 0)
			return (1);
	}
	snprintf(r->recent[r->nrecent % CLUSTER_RECENT_IDS],
	    sizeof r->recent[0], "%s", id);
	r->nrecent++;
	return (0);
}

/*
 * The feed met a message of room fname at stream sequence sseq, numbered
 * seq (0: none, not a server's), with Asyncchat-Id id (may be NULL).
 * Returns non-zero when it counts (the rule every reader applies: its
 * seq is above the room's last that counted, and its id was not taken
 * yet); either way it is the room's last message now. The first message
 * of a server that the feed meets of a room it knows nothing of counts
 * (and makes it known).
 */
int
room_feed(const char *fname, const char *name, uint64_t sseq, uint64_t seq,
    const char *id)
{
	struct room_state	*r = room_make(fname, name);
	int			 counts;

	counts = seq != 0 && (!r->known || seq > r->seq) &&
	    (id == NULL || !room_seen_id(r, id));
	if (sseq > r->sseq)
		r->sseq = sseq;
	if (counts) {
		r->seq = seq;
		snprintf(r->name, sizeof r->name, "%s", name);
		r->known = 1;
	}
	return (counts);
}

/*
 * A room the feed has not met, quiet since before it started: what its
 * last message says (seq, at sseq; 0 and 0 for none) is the room's state.
 * A room that lost every message (max_age) keeps the numbering this
 * process saw.
 */
void
room_settle(const char *fname, const char *name, uint64_t seq, uint64_t sseq)
{
	struct room_state	*r = room_make(fname, name);

	if (r->known && sseq <= r->sseq && sseq != 0)
		return;		/* the feed knows better */
	if (seq > r->seq)
		r->seq = seq;
	if (sseq == 0 || sseq > r->sseq)
		r->sseq = sseq;	/* 0: the room is empty now */
	r->known = 1;
}

/* The stream sequence the feed should start from (0: unknown). */
uint64_t
room_feed_next(void)
{
	return (room_feed_at);
}

/*
 * A feed began at stream sequence start: a later feed of the process
 * (after a reload) starts there at the latest, even if this one hands
 * nothing over before it stops. Started "from now" instead, it would skip
 * what was stored meanwhile, such as a message this process published
 * just before the reload, and appends waiting for the feed to meet it
 * would wait for ever.
 */
void
room_feed_begin(uint64_t start)
{
	if (start > room_feed_at)
		room_feed_at = start;
}

/* The feed handed over the message at stream sequence sseq. */
void
room_feed_seen(uint64_t sseq)
{
	if (sseq + 1 > room_feed_at)
		room_feed_at = sseq + 1;
}
