/*
 * feed.c - the stored room messages, as the ordered consumer of every
 * room subject brings them (link.c), checked and handed to chat.
 *
 * The consumer gives every stored message once, in the stream's order,
 * which is each room's seq order; libnats recreates it after a gap or a
 * reconnect from the next stream sequence it had not given. Each message
 * is checked as a client's frame is (CRCs, HMAC with the current key,
 * this server's size limits: host->frame_from_bytes and the codec), and
 * must say what its subject and its seq header say: the room of the
 * subject, and that seq. So a frame copied from one room into another, or
 * numbered other than it says, is refused (counted, logged once per
 * streak) rather than delivered.
 *
 * Two rules make every node skip the same messages (append.c says where
 * they come from): a message whose seq is not above the room's last the
 * feed took lost a race for that seq; a message whose Asyncchat-Id the
 * feed took already was stored twice.
 *
 * What the feed learns goes into the process's room table (room.c), for
 * appends (which wait on it, append.c) and chat's last_seq, and the stream
 * sequence it reached, from which a later feed (after a reload) starts.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster.h"

/*
 * Check a stored message: a message or chunk frame whose header's room
 * folds to fname and whose seq is seq; its shown room name into name.
 * Returns NULL when it is good, else why not.
 */
static const char *
feed_check(struct cluster *cl, const uint8_t *buf, size_t len,
    const char *fname, uint64_t seq, char *name, size_t namesize)
{
	struct ac_message	 msg;
	struct json_object	*jr, *js;
	enum ac_frame_status	 st;
	size_t			 consumed = 0;
	char			 folded[CLUSTER_ROOM_MAX + 1];
	const char		*why = NULL, *room;

	memset(&msg, 0, sizeof msg);
	st = ac_frame_decode(cl->host->key(cl->p), cl->host->limits(cl->p),
	    buf, len, &consumed, &msg);
	if (st == AC_FRAME_NEED_MORE)
		return ("truncated");
	if (st != AC_FRAME_OK)
		return (ac_frame_status_name(st));
	if (consumed != len)
		why = "trailing bytes";
	else if (msg.type != AC_MSG_MESSAGE && msg.type != AC_MSG_CHUNK)
		why = "not a message";
	else if (msg.header == NULL ||
	    !json_object_object_get_ex(msg.header, "room", &jr) ||
	    !json_object_is_type(jr, json_type_string) ||
	    !roomname_valid_string(room = json_object_get_string(jr)))
		why = "no room";
	else if (roomname_fold(folded, room), strcmp(folded, fname) != 0)
		why = "another room's";
	else if (!json_object_object_get_ex(msg.header, "seq", &js) ||
	    !json_object_is_type(js, json_type_int) ||
	    (uint64_t)json_object_get_int64(js) != seq || seq == 0)
		why = "a seq other than its header's";
	else
		snprintf(name, namesize, "%s", room);
	ac_message_clear(&msg);
	return (why);
}

/* A stored room message arrived (loop thread). */
void
feed_mail(struct cluster *cl, struct mail *m)
{
	struct ac_frame		*f;
	const char		*token, *why = NULL;
	int			 counts;
	char			 fname[CLUSTER_ROOM_MAX + 1];
	char			 name[CLUSTER_ROOM_MAX + 1];
	unsigned long long	 seq = 0;
	size_t			 plen = strlen(cl->names.room_prefix);

	cl->counts[CC_FEED]++;
	if (m->sseq != 0)
		room_feed_seen(m->sseq);
	fname[0] = '\0';
	if (m->subject == NULL ||
	    strncmp(m->subject, cl->names.room_prefix, plen) != 0 ||
	    room_from_token(fname, sizeof fname, (token = m->subject +
	    plen)) != 0) {
		fname[0] = '\0';
		why = "not a room subject";
	}
	else if (m->hdr == NULL || ac_option_uint(m->hdr, 1,
	    (unsigned long long)INT64_MAX, &seq) != 0)
		why = "no seq header";
	else
		why = feed_check(cl, m->data, m->len, fname, seq, name,
		    sizeof name);
	if (why == NULL &&
	    (f = cl->host->frame_from_bytes(cl->p, m->data, m->len)) == NULL)
		why = "does not verify";
	if (why != NULL) {
		cl->counts[CC_FEED_REFUSED]++;
		if (cl->bad_streak++ == 0)
			cl->host->log(cl->p, AC_LOG_WARNING, "refused a message "
			    "of %s (stream sequence %llu): %s; further ones are "
			    "counted, not logged, until a good one comes",
			    m->subject != NULL ? m->subject : "?",
			    (unsigned long long)m->sseq, why);
		if (fname[0] != '\0') {
			/* Still the room's last message, for appends. */
			room_feed(fname, fname, m->sseq, 0, NULL);
			append_feed(cl, fname, NULL, m->sseq, 0, 0);
		}
		return;
	}
	if (cl->bad_streak != 0) {
		cl->host->log(cl->p, AC_LOG_INFO, "good room messages again, "
		    "after %llu refused", (unsigned long long)cl->bad_streak);
		cl->bad_streak = 0;
	}
	counts = room_feed(fname, name, m->sseq, seq, m->mid);
	append_feed(cl, fname, m->mid, m->sseq, seq, counts);
	if (!counts) {
		/* A loser of a race for its seq, or a repeat: skipped. */
		cl->host->frame_unref(cl->p, f);
		return;
	}
	if (cl->live != NULL)
		cl->live(cl->live_arg, name, seq, f);
	cl->host->frame_unref(cl->p, f);
}
