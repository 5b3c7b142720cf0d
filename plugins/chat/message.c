/*
 * message.c - what people say: a message to a room or to one person,
 * made once into a frame that every recipient shares (docs/CHAT.md,
 * "Sending a message").
 *
 * The frame keeps the sender's session_id, content type and content, and
 * those of its header members that only the server may set are replaced:
 * `event`, `from`, `seq`, `time`, `room` and `to` are dropped from what
 * the sender wrote, then `room` (or `to`), `from`, `seq` (rooms only) and
 * `time` are added. So no client can forge an event, a name or a place in
 * a room's order. The host signs the frame and queues the same bytes to
 * every member of the room, the sender included.
 *
 * The cost of a room message is one encoding plus one queueing per member
 * of that room; nothing here looks at sessions outside it.
 *
 * With a history backend the message is stored too. When the backend is
 * durable (sync = full) a message is delivered only once its store has
 * completed: it waits on the room's pending list, and completions deliver
 * from the head of that list, so a room's messages always go out in seq
 * order. A member who joined while a message was waiting gets it from
 * its replay instead (member->live_after), never twice.
 *
 * A backend that numbers messages itself (history.h, version 3: several
 * servers share it) takes a room message from here to append.c, and
 * every room message comes back from it to message_deliver.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "chat.h"

/* The header members only the server sets, besides the codec's own. */
static const char *const message_reserved[] = {
	"type", "content_type", "session_id",
	"event", "from", "seq", "time", "room", "to",
};
#define MESSAGE_NRESERVED \
	(sizeof message_reserved / sizeof message_reserved[0])

/* Non-zero for a member of the sender's header that is not relayed. */
static int
message_is_reserved(const char *key)
{
	size_t	i;

	for (i = 0; i < MESSAGE_NRESERVED; i++) {
		if (strcmp(key, message_reserved[i]) == 0)
			return (1);
	}
	return (0);
}

/*
 * Non-zero when the sender's header has members of its own to keep. Read
 * from the header's bytes: most messages have none, and building the
 * json-c object only to find that out was most of chat's own cost of a
 * message.
 */
static int
message_msg_has_own(const struct ac_message *msg)
{
	return (ac_message_has_other(msg, message_reserved,
	    MESSAGE_NRESERVED));
}

/*
 * The sender's header to take its own members from: NULL when it has
 * none, so that the json-c object is built only for the rare message
 * that does.
 */
static struct json_object *
message_own_header(const struct ac_message *msg)
{
	if (!message_msg_has_own(msg))
		return (NULL);
	return (ac_message_header(msg));
}

/* Non-zero when a header object has members of its own to keep. */
static int
message_has_own(struct json_object *header)
{
	if (header == NULL || !json_object_is_type(header, json_type_object))
		return (0);
	json_object_object_foreach(header, key, val) {
		(void)val;
		if (!message_is_reserved(key))
			return (1);
	}
	return (0);
}

/*
 * The sender's own header members (all but the reserved ones) as a new
 * object the caller puts, or NULL when there are none: kept by an append
 * beyond the message's callback.
 */
struct json_object *
message_own_members(const struct ac_message *msg)
{
	struct json_object	*header = message_own_header(msg);
	struct json_object	*o;

	if (!message_has_own(header))
		return (NULL);
	o = json_object_new_object();
	json_object_object_foreach(header, key, val) {
		if (!message_is_reserved(key))
			json_object_object_add(o, key, json_object_get(val));
	}
	return (o);
}

/* Add a member whose key is a constant string (json-c copies no key). */
static void
message_add(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add_ex(o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW |
	    JSON_C_OBJECT_KEY_IS_CONSTANT);
}

/*
 * The members of a relayed frame: the sender's own from header (the
 * sender's header, or what message_own_members kept of it; may be NULL)
 * but the reserved ones, then room or to, from, seq (when not 0) and
 * time. Returns an object the caller puts.
 *
 * Most messages have no members of their own, and building a json-c
 * object costs a dozen allocations, a sizeable part of a message's cost
 * next to its deliveries: so for those the plugin keeps one object per
 * shape (room, direct) and only sets its values, which it keeps at hand
 * (a look-up of each by its key cost more than setting it).
 */
struct json_object *
message_members(struct chat *c, struct json_object *header,
    const char *room, const char *to, const char *from, uint64_t seq,
    const char *time)
{
	struct stamp		*st;
	struct json_object	*o;

	if (!message_has_own(header) && (room == NULL || seq != 0)) {
		st = room != NULL ? &c->stamp_room : &c->stamp_direct;
		if (st->o == NULL) {
			st->o = json_object_new_object();
			st->where = json_object_new_string(room != NULL ?
			    room : to);
			message_add(st->o, room != NULL ? "room" : "to",
			    st->where);
			st->from = json_object_new_string(from);
			message_add(st->o, "from", st->from);
			if (room != NULL) {
				st->seq = json_object_new_int64((int64_t)seq);
				message_add(st->o, "seq", st->seq);
			}
			st->time = json_object_new_string(time);
			message_add(st->o, "time", st->time);
			return (json_object_get(st->o));
		}
		json_object_set_string(st->where, room != NULL ? room : to);
		json_object_set_string(st->from, from);
		if (room != NULL)
			json_object_set_int64(st->seq, (int64_t)seq);
		json_object_set_string(st->time, time);
		return (json_object_get(st->o));
	}
	o = json_object_new_object();
	if (message_has_own(header)) {
		json_object_object_foreach(header, key, val) {
			if (!message_is_reserved(key))
				json_object_object_add(o, key,
				    json_object_get(val));
		}
	}
	if (room != NULL)
		message_add(o, "room", json_object_new_string(room));
	if (to != NULL)
		message_add(o, "to", json_object_new_string(to));
	message_add(o, "from", json_object_new_string(from));
	if (seq != 0)
		message_add(o, "seq", json_object_new_int64((int64_t)seq));
	message_add(o, "time", json_object_new_string(time));
	return (o);
}

/*
 * Queue a room's message to each member who should have it live. This is
 * the loop of every room message, so it reads the member nodes only: a
 * session that closed while chat is busy is refused by the host itself
 * (its handle is still valid memory, marked dead). The recipients go to
 * the host in one relay_list call where it has one (API 3): per member,
 * one relay call and its accounting were a sixth of a room delivery's
 * cost.
 *
 * Most messages are for every member of this server alike: nobody in
 * the room is replaying, and the seq is past every member's live_after.
 * Those go to the room's array of sessions as it is, without reading a
 * member node. That array cannot change under relay_list: a session that
 * closes meanwhile is torn down at chat_leave, and c->depth says that
 * this runs inside chat_enter.
 */
void
message_deliver(struct room *r, const struct ac_frame *f, uint64_t seq)
{
	struct chat		*c = r->chat;
	struct member		*m;
	struct ac_session	**to;
	uint64_t		 n = 0, steps = 0;
	size_t			 nto = 0, i;

	if (r->nreplaying == 0 && seq > r->live_after_max && c->depth > 0 &&
	    AC_HOST_HAS(c->host, relay_list)) {
		if (r->nlive != 0)
			n = (uint64_t)c->host->relay_list(c->p, f, r->live,
			    r->nlive);
		c->counts[CHAT_C_STEPS] += r->nlive;
		c->counts[CHAT_C_DELIVERIES] += n;
		return;
	}
	/* The list is this call's; a delivery inside it (should a close
	 * ever lead to one) relays member by member. */
	if (!c->relay_busy && c->nrelay < r->nmembers) {
		to = reallocarray(c->relay, r->nmembers, sizeof *to);
		if (to != NULL) {
			c->relay = to;
			c->nrelay = r->nmembers;
		}
	}
	to = c->relay_busy ? NULL : c->relay;
	TAILQ_FOREACH(m, &r->members, in_room) {
		steps++;
		if (m->s == NULL || seq <= m->live_after)
			continue;	/* remote, or a replay has it */
		if (m->replays > 0) {
			replay_deliver(m, f, seq);
			continue;
		}
		if (to != NULL && nto < c->nrelay)
			to[nto++] = m->s;
		else if (c->host->relay(c->p, f, m->s) == 0)
			n++;
	}
	if (to != NULL)
		c->relay_busy = 1;
	if (nto != 0 && AC_HOST_HAS(c->host, relay_list))
		n += (uint64_t)c->host->relay_list(c->p, f, to, nto);
	else {
		for (i = 0; i < nto; i++) {
			if (c->host->relay(c->p, f, to[i]) == 0)
				n++;
		}
	}
	if (to != NULL)
		c->relay_busy = 0;
	c->counts[CHAT_C_STEPS] += steps;
	c->counts[CHAT_C_DELIVERIES] += n;
}

/*
 * Queue a room message without a seq (one the backend could not store,
 * append.c) to the room's members on this server: nothing holds it back,
 * since no replay can have it.
 */
void
message_deliver_local(struct room *r, const struct ac_frame *f)
{
	struct chat	*c = r->chat;
	struct member	*m;

	TAILQ_FOREACH(m, &r->members, in_room) {
		c->counts[CHAT_C_STEPS]++;
		if (m->s != NULL && !m->user->closing &&
		    c->host->relay(c->p, f, m->s) == 0)
			c->counts[CHAT_C_DELIVERIES]++;
	}
}

/* Deliver the stored messages at the head of a room's pending list. */
static void
message_flush_pending(struct room *r)
{
	struct chat		*c = r->chat;
	struct pending_store	*ps;

	while ((ps = TAILQ_FIRST(&r->pending)) != NULL && ps->done) {
		TAILQ_REMOVE(&r->pending, ps, entry);
		r->npending--;
		message_deliver(r, ps->frame, ps->seq);
		c->host->frame_unref(c->p, ps->frame);
		free(ps);
	}
}

/* A durable store completed: deliver what is now at the head. */
static void
message_stored_cb(void *arg, enum ac_history_status status)
{
	struct pending_store	*ps = arg;
	struct chat		*c = ps->chat;

	if (status != AC_HISTORY_OK)
		c->counts[CHAT_C_STORE_FAILURES]++;
	if (ps->room == NULL) {
		/* The room emptied meanwhile: nobody to deliver to. */
		c->host->frame_unref(c->p, ps->frame);
		free(ps);
		return;
	}
	ps->done = 1;
	chat_enter(c);
	message_flush_pending(ps->room);
	chat_leave(c);
}

/* A room is forgotten: its waiting messages will reach no one. */
void
message_room_gone(struct room *r)
{
	struct pending_store	*ps;

	while ((ps = TAILQ_FIRST(&r->pending)) != NULL) {
		TAILQ_REMOVE(&r->pending, ps, entry);
		r->npending--;
		ps->room = NULL;	/* freed by its completion */
	}
}

/*
 * The seq up to which a room's messages have gone out to its members:
 * the last one, unless some wait for their store (sync = full), which
 * go out later in order.
 */
uint64_t
message_delivered(struct room *r)
{
	struct pending_store	*ps;

	if ((ps = TAILQ_FIRST(&r->pending)) == NULL)
		return (r->seq);
	return (ps->seq - 1);
}

/* Store a room's message and deliver it (now, or once it is stored). */
static void
message_store_and_deliver(struct room *r, struct ac_frame *f,
    uint64_t seq, int64_t ms)
{
	struct chat			*c = r->chat;
	const struct ac_history		*h = c->history;
	struct ac_history_message	 hm;
	struct pending_store		*ps;

	if (h == NULL) {
		message_deliver(r, f, seq);
		return;
	}
	hm.room = r->name;
	hm.seq = seq;
	hm.time_ms = ms;
	hm.frame = f;
	if (!h->durable(h->ctx)) {
		message_deliver(r, f, seq);
		if (h->store(h->ctx, &hm, NULL, NULL) != 0)
			c->counts[CHAT_C_STORE_FAILURES]++;
		return;
	}
	if ((ps = calloc(1, sizeof *ps)) == NULL)
		abort();
	ps->chat = c;
	ps->room = r;
	ps->frame = c->host->frame_ref(c->p, f);
	ps->seq = seq;
	TAILQ_INSERT_TAIL(&r->pending, ps, entry);
	r->npending++;
	if (h->store(h->ctx, &hm, message_stored_cb, ps) != 0) {
		/* Not taken: deliver it in its turn anyway. */
		c->counts[CHAT_C_STORE_FAILURES]++;
		ps->done = 1;
		message_flush_pending(r);
	}
}

/*
 * A message to a room the user is in; own says whether its header has
 * members of its own (message_route has looked).
 */
static void
message_room(struct member *m, const struct ac_message *msg, int own,
    const uint8_t *content, size_t content_len)
{
	struct chat		*c = m->user->chat;
	struct room		*r = m->room;
	struct json_object	*o;
	struct ac_frame		*f;
	char			 time[CHAT_TIME_LEN + 1];
	int64_t			 ms;

	if (c->numbers) {
		append_start(m, msg, content, content_len);
		return;
	}
	chat_stamp_time(c, time, &ms);
	o = message_members(c, own ? ac_message_header(msg) : NULL, r->name,
	    NULL, m->user->nick, r->seq + 1, time);
	f = c->host->frame_new(c->p, m->user->id, msg->type,
	    msg->content_type, o, content, content_len);
	json_object_put(o);
	if (f == NULL) {
		event_reply(m->user, CHAT_CMD_MESSAGE, CHAT_ERR_TOO_LARGE,
		    "with the room's members added, the header passes the "
		    "server's limit");
		return;
	}
	r->seq++;
	c->counts[CHAT_C_ROOM_MESSAGES]++;
	message_store_and_deliver(r, f, r->seq, ms);
	c->host->frame_unref(c->p, f);
}

/*
 * A direct message from u to another user (or to itself): one frame to
 * the recipient and, as a copy, to the sender. From /msg (cmd
 * CHAT_CMD_MSG) it is answered with a reply as well.
 */
void
message_direct(struct user *u, struct user *to, const struct ac_message *msg,
    const uint8_t *content, size_t content_len, enum chat_cmd cmd)
{
	struct chat		*c = u->chat;
	struct json_object	*o;
	struct ac_frame		*f;
	char			 time[CHAT_TIME_LEN + 1];
	int64_t			 ms;

	chat_stamp_time(c, time, &ms);
	o = message_members(c, message_own_header(msg), NULL, to->nick,
	    u->nick, 0, time);
	f = c->host->frame_new(c->p, u->id, msg->type, msg->content_type, o,
	    content, content_len);
	json_object_put(o);
	if (f == NULL) {
		event_reply(u, cmd, CHAT_ERR_TOO_LARGE, "with the server's "
		    "members added, the header passes the server's limit");
		return;
	}
	if (to->remote) {
		remote_direct(u, to, f, cmd);
		c->host->frame_unref(c->p, f);
		return;
	}
	c->counts[CHAT_C_DIRECT_MESSAGES]++;
	if (!to->closing && c->host->relay(c->p, f, to->s) == 0)
		c->counts[CHAT_C_DELIVERIES]++;
	if (to != u && !u->closing && c->host->relay(c->p, f, u->s) == 0)
		c->counts[CHAT_C_DELIVERIES]++;
	c->host->frame_unref(c->p, f);
	if (cmd == CHAT_CMD_MSG)
		event_reply_ok(u, cmd, "sent to %s", to->nick);
}

/*
 * Route a message that is not a command: to the room its `room` member
 * names, to the nick its `to` member names, else to the current room.
 * content is the message's (one `/` fewer for `//text`).
 *
 * `room` and `to` are looked up in the header's bytes (libasyncchat's
 * ac_message_members(), the same answer as json-c's object), in the one
 * walk that also says whether the header has members of its own, which
 * is all a plain message needs: the object is built only for one that
 * carries members of its own. A value longer than any nick or room name is
 * decoded no further than that and refused by its length.
 */
void
message_route(struct user *u, const struct ac_message *msg,
    const uint8_t *content, size_t content_len)
{
	static const char *const where[] = { "room", "to" };
	struct chat		*c = u->chat;
	struct ac_member	 j[2], jroom, jto;
	struct member		*m = NULL;
	struct room		*r;
	struct user		*to;
	char			 name[CHAT_NICK_BYTES + 1];
	size_t			 len;
	int			 own;

	/* Both, and whether it has members of its own, in one walk. */
	own = ac_message_members(msg, where, 2, j, message_reserved,
	    MESSAGE_NRESERVED) == 1;
	jroom = j[0];
	jto = j[1];
	/* null counts as absent, as it always has. */
	if (jroom.kind == AC_MEMBER_NULL)
		jroom.kind = AC_MEMBER_ABSENT;
	if (jto.kind == AC_MEMBER_NULL)
		jto.kind = AC_MEMBER_ABSENT;
	if (jroom.kind != AC_MEMBER_ABSENT && jto.kind != AC_MEMBER_ABSENT) {
		event_reply(u, CHAT_CMD_MESSAGE, CHAT_ERR_BAD_ARGUMENT, "give "
		    "\"room\" or \"to\", not both");
		return;
	}
	if (jto.kind != AC_MEMBER_ABSENT) {
		len = ac_member_string(&jto, name, sizeof name);
		if (jto.kind != AC_MEMBER_STRING || len >= sizeof name ||
		    (to = user_find(c, name, len)) == NULL) {
			event_reply(u, CHAT_CMD_MESSAGE,
			    CHAT_ERR_NO_SUCH_NICK, "nobody is called that");
			return;
		}
		message_direct(u, to, msg, content, content_len,
		    CHAT_CMD_MESSAGE);
		return;
	}
	if (jroom.kind != AC_MEMBER_ABSENT) {
		len = ac_member_string(&jroom, name, sizeof name);
		if (jroom.kind != AC_MEMBER_STRING || len >= sizeof name ||
		    !roomname_valid(name, len)) {
			event_reply(u, CHAT_CMD_MESSAGE, CHAT_ERR_BAD_ROOM,
			    "\"room\" is 1 to 64 of A-Z a-z 0-9 - _ .");
			return;
		}
		if ((r = room_find(c, name, len)) != NULL)
			m = user_member(u, r);
		if (m == NULL) {
			event_reply(u, CHAT_CMD_MESSAGE, CHAT_ERR_NOT_IN_ROOM,
			    "you are not in #%.*s", (int)len, name);
			return;
		}
	} else if ((m = user_current(u)) == NULL) {
		event_reply(u, CHAT_CMD_MESSAGE, CHAT_ERR_NO_ROOM, "you are in "
		    "no room: /join one");
		return;
	}
	message_room(m, msg, own, content, content_len);
}
