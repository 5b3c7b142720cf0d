/*
 * append.c - room messages when the history backend numbers them
 * (asyncchat/history.h, version 3: numbers, append, listen), as the
 * cluster backend does for rooms that span servers (docs/SCALING.md).
 *
 * Such a backend is the only one that may give a room message its seq:
 * several servers send to one room, and only the store they share can
 * tell which message comes next. So chat keeps what it needs to make the
 * frame (the sender's id and nick, the message's type, content type,
 * content and own header members) in a struct append, hands the backend a
 * make function, and the backend calls it with the seq the message gets
 * (again with the next one if another server took that seq first). chat
 * delivers nothing when the append completes: every stored message of a
 * room, this server's and the others', comes back through the listen
 * function, in seq order, and is delivered from there, so that every
 * server delivers every room's messages in the same order.
 *
 * A message the backend could not store (its link to the other servers
 * down, or down too long) is delivered to the room's members on this
 * server only, without a seq, and its sender is told in a `reply` with
 * the error cluster_down: it reached no other server and is not kept.
 *
 * An append outlives its sender (the message was sent; it still goes to
 * the room): a user that closes only detaches its appends, so that no
 * reply goes to a session that is gone. chat's fini frees the appends the
 * backend still holds (history.h: their completions stop at the backend's
 * fini).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "chat.h"

/* Free an append and what it holds, off every list. */
static void
append_free(struct append *a)
{
	struct chat	*c = a->chat;

	TAILQ_REMOVE(&c->appends, a, in_chat);
	if (a->user != NULL)
		TAILQ_REMOVE(&a->user->appends, a, in_user);
	if (a->own != NULL)
		json_object_put(a->own);
	free(a->content_type);
	free(a->content);
	free(a);
}

/* The backend's make: the frame of the message, numbered seq. */
static struct ac_frame *
append_make(void *arg, uint64_t seq)
{
	struct append		*a = arg;
	struct chat		*c = a->chat;
	struct json_object	*o;
	struct ac_frame		*f;
	char			 time[CHAT_TIME_LEN + 1];
	int64_t			 ms;

	chat_stamp_time(c, time, &ms);
	o = message_members(c, a->own, a->room, NULL, a->nick, seq, time);
	f = c->host->frame_new(c->p, a->id, a->type, a->content_type, o,
	    a->content, a->len);
	json_object_put(o);
	if (f == NULL)
		a->too_large = 1;
	return (f);
}

/*
 * Deliver a message that could not be stored to the room's members on
 * this server, without a seq, and tell its sender why.
 */
static void
append_local(struct append *a)
{
	struct chat		*c = a->chat;
	struct json_object	*o;
	struct ac_frame		*f;
	struct room		*r;
	char			 time[CHAT_TIME_LEN + 1];
	int64_t			 ms;

	chat_stamp_time(c, time, &ms);
	o = message_members(c, a->own, a->room, NULL, a->nick, 0, time);
	f = c->host->frame_new(c->p, a->id, a->type, a->content_type, o,
	    a->content, a->len);
	json_object_put(o);
	if (f == NULL) {
		if (a->user != NULL)
			event_reply(a->user, CHAT_CMD_MESSAGE,
			    CHAT_ERR_TOO_LARGE, "with the room's members "
			    "added, the header passes the server's limit");
		return;
	}
	if ((r = room_find(c, a->room, strlen(a->room))) != NULL)
		message_deliver_local(r, f);
	c->host->frame_unref(c->p, f);
	if (a->user != NULL)
		event_reply(a->user, CHAT_CMD_MESSAGE, CHAT_ERR_CLUSTER_DOWN,
		    "the other servers are out of reach: only the members of "
		    "#%s on this server got it, and it is not kept", a->room);
}

/* The backend's done: stored (it comes back through listen), or not. */
static void
append_done(void *arg, enum ac_history_status status, uint64_t seq)
{
	struct append	*a = arg;
	struct chat	*c = a->chat;

	(void)seq;
	chat_enter(c);
	if (status != AC_HISTORY_OK) {
		c->counts[CHAT_C_STORE_FAILURES]++;
		if (a->too_large) {
			if (a->user != NULL)
				event_reply(a->user, CHAT_CMD_MESSAGE,
				    CHAT_ERR_TOO_LARGE, "with the room's "
				    "members added, the header passes the "
				    "server's limit");
		} else
			append_local(a);
	}
	append_free(a);
	chat_leave(c);
}

/*
 * A message from member m to its room: keep what makes its frame and
 * hand it to the backend, which numbers it.
 */
void
append_start(struct member *m, const struct ac_message *msg,
    const uint8_t *content, size_t content_len)
{
	struct user	*u = m->user;
	struct chat	*c = u->chat;
	const struct ac_history *h = c->history;
	struct append	*a;

	if ((a = calloc(1, sizeof *a)) == NULL)
		abort();
	a->chat = c;
	a->user = u;
	snprintf(a->room, sizeof a->room, "%s", m->room->name);
	snprintf(a->id, sizeof a->id, "%s", u->id);
	snprintf(a->nick, sizeof a->nick, "%s", u->nick);
	a->type = msg->type;
	if (msg->content_type != NULL &&
	    (a->content_type = strdup(msg->content_type)) == NULL)
		abort();
	if ((a->content = malloc(content_len > 0 ? content_len : 1)) == NULL)
		abort();
	memcpy(a->content, content, content_len);
	a->len = content_len;
	a->own = message_own_members(msg);
	TAILQ_INSERT_TAIL(&c->appends, a, in_chat);
	TAILQ_INSERT_TAIL(&u->appends, a, in_user);
	c->counts[CHAT_C_ROOM_MESSAGES]++;
	if (h->append(h->ctx, a->room, append_make, append_done, a) != 0) {
		c->counts[CHAT_C_STORE_FAILURES]++;
		append_local(a);
		append_free(a);
	}
}

/*
 * The backend stored a room message (listen): deliver it to the room's
 * members here, once. A seq at or below the room's last is one they have
 * (or that a replay covered): it is dropped.
 */
void
append_live(void *arg, const char *room, uint64_t seq,
    const struct ac_frame *f)
{
	struct chat	*c = arg;
	struct room	*r;

	if ((r = room_find(c, room, strlen(room))) == NULL)
		return;
	if (seq <= r->seq)
		return;
	chat_enter(c);
	r->seq = seq;
	message_deliver(r, f, seq);
	chat_leave(c);
}

/* A user is torn down: its appends go on without anyone to reply to. */
void
append_user_gone(struct user *u)
{
	struct append	*a;

	while ((a = TAILQ_FIRST(&u->appends)) != NULL) {
		TAILQ_REMOVE(&u->appends, a, in_user);
		a->user = NULL;
	}
}

/* chat's fini: the appends the backend still held are forgotten. */
void
append_free_all(struct chat *c)
{
	struct append	*a;

	while ((a = TAILQ_FIRST(&c->appends)) != NULL)
		append_free(a);
}
