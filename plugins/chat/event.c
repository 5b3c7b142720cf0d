/*
 * event.c - the frames chat makes for one recipient: `reply`, `join`,
 * `part`, `quit`, `nick`, `names`, `rooms` and `history-end` (docs/CHAT.md,
 * "Events").
 *
 * Each is a `message` with the recipient's own session_id, content type
 * text/plain and a line a person can read as its content, so that a
 * client that knows nothing of chat (the original Python client) shows
 * something sensible. The lines are short on purpose: that client reads
 * 1024 bytes at a time and takes each read as one frame (dropping a read
 * that holds more), so the frames one command sends back in a small room
 * must fit in 1024 bytes together for its stream to stay in step.
 *
 * An event for many recipients has its members and its line built once,
 * and with the host's send_list (API 4) its header JSON is encoded once
 * too: only the recipient's id and the signature are per recipient.
 *
 * Lists (`names`, `rooms`) can outgrow a header: past about 16 KiB of
 * entries they go in several events of the same kind, each but the last
 * with "more": true. Their line names at most EVENT_LINE_NAMES entries.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "chat.h"

#define EVENT_LINE_NAMES	20	/* names spelled out in a line */
#define EVENT_LIST_BUDGET	16384	/* bytes of list entries per event */
#define EVENT_LIST_MIN_BUDGET	256

/* Queue an event (borrowed members, its line) to one user. */
static void
event_send(struct user *to, struct json_object *extra, const char *line)
{
	struct chat	*c = to->chat;

	if (to->closed || to->closing || to->s == NULL)
		return;
	if (c->host->send(c->p, to->s, AC_MSG_MESSAGE, CHAT_TEXT, extra, line,
	    strlen(line)) == 0)
		c->counts[CHAT_C_EVENTS]++;
}

/* A new object for an event's members, starting with "event". */
static struct json_object *
event_new(const char *event)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(event));
	return (o);
}

/* Add a string member. */
static void
event_str(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, json_object_new_string(value));
}

/*
 * The reply to a command named command (or to a plain message: command
 * "message"): err < 0 for ok, else an enum chat_err.
 */
static void
event_vreply(struct user *u, const char *command, int err, const char *fmt,
    va_list ap)
{
	struct chat		*c = u->chat;
	struct json_object	*o;
	char			 text[512], line[640];

	vsnprintf(text, sizeof text, fmt, ap);
	o = event_new("reply");
	event_str(o, "command", command);
	event_str(o, "status", err < 0 ? "ok" : "error");
	if (err >= 0) {
		event_str(o, "error", chat_err_token(err));
		c->errors[err]++;
		if (strcmp(command, "message") == 0 &&
		    err == CHAT_ERR_CLUSTER_DOWN)
			snprintf(line, sizeof line, "! %s: %s",
			    chat_err_token(err), text);
		else if (strcmp(command, "message") == 0)
			snprintf(line, sizeof line, "! not sent: %s: %s",
			    chat_err_token(err), text);
		else
			snprintf(line, sizeof line, "! /%s: %s: %s", command,
			    chat_err_token(err), text);
	} else
		snprintf(line, sizeof line, "* %s", text);
	event_send(u, o, line);
	json_object_put(o);
}

/* An error reply: token err, then a sentence. */
void
event_reply(struct user *u, enum chat_cmd cmd, enum chat_err err,
    const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	event_vreply(u, chat_cmd_name(cmd), (int)err, fmt, ap);
	va_end(ap);
}

/* An error reply to a command chat does not know, by the name typed. */
void
event_reply_unknown(struct user *u, const char *command, const char *fmt,
    ...)
{
	va_list	ap;

	va_start(ap, fmt);
	event_vreply(u, command, CHAT_ERR_UNKNOWN_COMMAND, fmt, ap);
	va_end(ap);
}

/* A successful reply with a sentence. */
void
event_reply_ok(struct user *u, enum chat_cmd cmd, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	event_vreply(u, chat_cmd_name(cmd), -1, fmt, ap);
	va_end(ap);
}

/* The members of a join or part event. */
static struct json_object *
event_membership(const char *event, struct member *m)
{
	struct json_object	*o = event_new(event);

	event_str(o, "room", m->room->name);
	event_str(o, "nick", m->user->nick);
	event_str(o, "session", m->user->id);
	return (o);
}

/*
 * The recipients of one event to many (event_to_room, event_to_neighbours):
 * their sessions, collected, then sent the event in one send_list call.
 */
struct event_fanout {
	struct chat		 *chat;
	struct ac_session	**to;
	size_t			  n;
	size_t			  size;
};

/* Start collecting at most size recipients (allocation failure: none,
 * and each is then sent the event as it is added). */
static void
event_fanout_init(struct event_fanout *fo, struct chat *c, size_t size)
{
	fo->chat = c;
	fo->n = 0;
	fo->size = AC_HOST_HAS(c->host, send_list) ? size : 0;
	fo->to = fo->size != 0 ? reallocarray(NULL, size, sizeof *fo->to) :
	    NULL;
	if (fo->to == NULL)
		fo->size = 0;
}

/* Add a recipient (one that is closing has none). */
static void
event_fanout_add(struct event_fanout *fo, struct user *to,
    struct json_object *o, const char *line)
{
	if (to->closed || to->closing || to->s == NULL)
		return;
	if (fo->n < fo->size)
		fo->to[fo->n++] = to->s;
	else
		event_send(to, o, line);
}

/* Send the event to the recipients collected. */
static void
event_fanout_send(struct event_fanout *fo, struct json_object *o,
    const char *line)
{
	struct chat	*c = fo->chat;
	int		 n;

	if (fo->n != 0) {
		n = c->host->send_list(c->p, fo->to, fo->n, AC_MSG_MESSAGE,
		    CHAT_TEXT, o, line, strlen(line));
		if (n > 0)
			c->counts[CHAT_C_EVENTS] += (uint64_t)n;
	}
	free(fo->to);
}

/* Send one event to every member of a room. */
static void
event_to_room(struct room *r, struct json_object *o, const char *line)
{
	struct event_fanout	 fo;
	struct member		*m;

	event_fanout_init(&fo, r->chat, r->nmembers);
	TAILQ_FOREACH(m, &r->members, in_room) {
		r->chat->counts[CHAT_C_STEPS]++;
		event_fanout_add(&fo, m->user, o, line);
	}
	event_fanout_send(&fo, o, line);
}

/* `join` to every member of the room, the joiner included. */
void
event_join(struct member *m)
{
	struct json_object	*o = event_membership("join", m);
	char			 line[256];

	snprintf(line, sizeof line, "* %s joined #%s", m->user->nick,
	    m->room->name);
	event_to_room(m->room, o, line);
	json_object_put(o);
}

/* `part` to every member of the room, the leaver included. */
void
event_part(struct member *m)
{
	struct json_object	*o = event_membership("part", m);
	char			 line[256];

	snprintf(line, sizeof line, "* %s left #%s", m->user->nick,
	    m->room->name);
	event_to_room(m->room, o, line);
	json_object_put(o);
}

/*
 * Send an event to every user who shares a room with u, once each; with
 * self, to u as well. Users reached are marked with a new generation.
 */
static void
event_to_neighbours(struct user *u, int self, struct json_object *o,
    const char *line)
{
	struct chat		*c = u->chat;
	struct event_fanout	 fo;
	struct member		*m, *other;
	size_t			 most = 1;

	/* At most every member of every room of u, and u. */
	TAILQ_FOREACH(m, &u->rooms, in_user)
		most += m->room->nmembers;
	event_fanout_init(&fo, c, most);
	c->gen++;
	u->mark = c->gen;
	if (self)
		event_fanout_add(&fo, u, o, line);
	TAILQ_FOREACH(m, &u->rooms, in_user) {
		TAILQ_FOREACH(other, &m->room->members, in_room) {
			c->counts[CHAT_C_STEPS]++;
			if (other->user->mark == c->gen)
				continue;
			other->user->mark = c->gen;
			event_fanout_add(&fo, other->user, o, line);
		}
	}
	event_fanout_send(&fo, o, line);
}

/* `quit` to everyone who shares a room with a closing user, once each. */
void
event_quit(struct user *u, const char *reason)
{
	struct json_object	*o;
	char			 line[256];

	if (TAILQ_EMPTY(&u->rooms))
		return;
	o = event_new("quit");
	event_str(o, "nick", u->nick);
	event_str(o, "session", u->id);
	event_str(o, "reason", reason);
	snprintf(line, sizeof line, "* %s quit (%s)", u->nick, reason);
	event_to_neighbours(u, 0, o, line);
	json_object_put(o);
}

/* `nick` to the user and everyone who shares a room with it. */
void
event_nick(struct user *u, const char *old)
{
	struct json_object	*o = event_new("nick");
	char			 line[320];

	event_str(o, "old", old);
	event_str(o, "nick", u->nick);
	event_str(o, "session", u->id);
	snprintf(line, sizeof line, "* %s is now %s", old, u->nick);
	event_to_neighbours(u, 1, o, line);
	json_object_put(o);
}

/*
 * Make and queue one list event to a user; -1 when the frame would pass
 * the server's limits (the caller then tries smaller pieces).
 */
static int
event_list_send(struct user *to, struct json_object *o, const char *line)
{
	struct chat	*c = to->chat;
	struct ac_frame	*f;

	if (to->closed || to->closing || to->s == NULL)
		return (0);
	f = c->host->frame_new(c->p, to->id, AC_MSG_MESSAGE, CHAT_TEXT, o,
	    line, strlen(line));
	if (f == NULL)
		return (-1);
	if (c->host->relay(c->p, f, to->s) == 0)
		c->counts[CHAT_C_EVENTS]++;
	c->host->frame_unref(c->p, f);
	return (0);
}

/* What a list event is made from: a kind and how to spell each entry. */
struct event_list {
	const char		*event;
	const char		*key;		/* the array's member */
	struct room		*room;		/* names: the room */
	size_t			 n;
	struct json_object	*(*entry)(void *item, size_t *cost);
	void			**items;
	const char		*line;
	size_t			 total;		/* rooms: before the cut */
};

/*
 * Send a list in as many events as its entries need, each but the last
 * with "more": true. cost is an upper bound of an entry's bytes in the
 * header, so each event stays under the budget.
 */
static void
event_list(struct user *to, struct event_list *l)
{
	struct json_object	*o, *arr;
	size_t			 i = 0, start, used, cost;
	size_t			 budget = EVENT_LIST_BUDGET;

	do {
		start = i;
		used = 0;
		o = event_new(l->event);
		if (l->room != NULL)
			event_str(o, "room", l->room->name);
		arr = json_object_new_array();
		json_object_object_add(o, l->key, arr);
		while (i < l->n) {
			struct json_object *e = l->entry(l->items[i], &cost);

			if (used > 0 && used + cost > budget) {
				json_object_put(e);
				break;
			}
			json_object_array_add(arr, e);
			used += cost;
			i++;
		}
		if (i < l->n)
			json_object_object_add(o, "more",
			    json_object_new_boolean(1));
		else if (l->total > l->n) {
			json_object_object_add(o, "total",
			    json_object_new_int64((int64_t)l->total));
			json_object_object_add(o, "truncated",
			    json_object_new_boolean(1));
		}
		if (event_list_send(to, o, l->line) == -1) {
			json_object_put(o);
			if (budget <= EVENT_LIST_MIN_BUDGET || i - start <= 1) {
				to->chat->host->log(to->chat->p,
				    AC_LOG_WARNING, "a %s event for session "
				    "%s passes the server's header limit",
				    l->event, to->id);
				return;
			}
			budget /= 4;
			i = start;
			continue;
		}
		json_object_put(o);
	} while (i < l->n);
}

/* A names entry and its largest size in a header. */
static struct json_object *
event_names_entry(void *item, size_t *cost)
{
	struct member		*m = item;
	struct json_object	*e = json_object_new_object();

	event_str(e, "nick", m->user->nick);
	event_str(e, "session", m->user->id);
	/* Escaped, a byte of UTF-8 takes at most 3 (\uXXXX for 2). */
	*cost = 40 + 36 + 3 * strlen(m->user->nick);
	return (e);
}

/* Append ", NAME" or the start of a list line, while it is short. */
static void
event_line_add(char *line, size_t size, size_t *n, const char *sep,
    const char *name)
{
	size_t	len = strlen(line);

	if (*n < EVENT_LINE_NAMES)
		snprintf(line + len, size - len, "%s%s", *n == 0 ? "" : sep,
		    name);
	(*n)++;
}

/* `names` of a room to one user. */
void
event_names(struct user *to, struct room *r)
{
	struct event_list	 l;
	struct member		*m;
	void			**items;
	char			  line[4096];
	size_t			  n = 0, shown = 0, len;

	if ((items = calloc(r->nmembers + 1, sizeof *items)) == NULL)
		return;
	snprintf(line, sizeof line, "* #%s: ", r->name);
	if (r->nmembers > EVENT_LINE_NAMES)
		snprintf(line, sizeof line, "* #%s (%u): ", r->name,
		    r->nmembers);
	TAILQ_FOREACH(m, &r->members, in_room) {
		r->chat->counts[CHAT_C_STEPS]++;
		items[n++] = m;
		event_line_add(line, sizeof line, &shown, ", ", m->user->nick);
	}
	if (shown > EVENT_LINE_NAMES) {
		len = strlen(line);
		snprintf(line + len, sizeof line - len, " and %zu more",
		    shown - EVENT_LINE_NAMES);
	}
	l.event = "names";
	l.key = "names";
	l.room = r;
	l.n = n;
	l.entry = event_names_entry;
	l.items = items;
	l.line = line;
	l.total = n;
	event_list(to, &l);
	free(items);
}

/* A rooms entry and its largest size in a header. */
static struct json_object *
event_rooms_entry(void *item, size_t *cost)
{
	struct room		*r = item;
	struct json_object	*e = json_object_new_object();

	event_str(e, "room", r->name);
	json_object_object_add(e, "members",
	    json_object_new_int64(r->nmembers));
	*cost = 40 + strlen(r->name) + 20;
	return (e);
}

/* Order rooms by members, most first, then by folded name. */
static int
event_rooms_cmp(const void *a, const void *b)
{
	const struct room	*ra = *(struct room *const *)a;
	const struct room	*rb = *(struct room *const *)b;

	if (ra->nmembers != rb->nmembers)
		return (ra->nmembers > rb->nmembers ? -1 : 1);
	return (strcmp(ra->fname, rb->fname));
}

/*
 * `rooms` to one user: the rooms with members, the most populous first,
 * at most max_rooms_listed of them; when there are more, the last event
 * says so with "truncated": true and the number in "total". (9500 rooms
 * made an answer of 878 KB.)
 */
void
event_rooms(struct user *to)
{
	struct chat		 *c = to->chat;
	struct event_list	  l;
	struct hash_node	 *hn;
	struct room		 *r;
	void			**items;
	char			  line[4096], entry[96];
	size_t			  i, n = 0, shown = 0, len, listed;

	items = calloc(c->rooms.count + 1, sizeof *items);
	if (items == NULL)
		return;
	for (i = 0; i < c->rooms.nbuckets; i++) {
		for (hn = c->rooms.buckets[i]; hn != NULL; hn = hn->next) {
			r = hn->value;
			c->counts[CHAT_C_STEPS]++;
			if (r->nmembers != 0)
				items[n++] = r;
		}
	}
	qsort(items, n, sizeof *items, event_rooms_cmp);
	listed = n < c->max_rooms_listed ? n : c->max_rooms_listed;
	snprintf(line, sizeof line, "* %zu room%s: ", n, n == 1 ? "" : "s");
	if (listed < n)
		snprintf(line, sizeof line, "* %zu rooms, the %zu largest: ",
		    n, listed);
	for (i = 0; i < listed; i++) {
		r = items[i];
		snprintf(entry, sizeof entry, "#%s (%u)", r->name,
		    r->nmembers);
		event_line_add(line, sizeof line, &shown, ", ", entry);
	}
	if (shown > EVENT_LINE_NAMES) {
		len = strlen(line);
		snprintf(line + len, sizeof line - len, " and %zu more",
		    shown - EVENT_LINE_NAMES);
	}
	if (n == 0)
		snprintf(line, sizeof line, "* no rooms");
	l.event = "rooms";
	l.key = "rooms";
	l.room = NULL;
	l.n = listed;
	l.total = n;
	l.entry = event_rooms_entry;
	l.items = items;
	l.line = line;
	event_list(to, &l);
	free(items);
}

/* `history-end` after a replay, to the user it was for; with the error
 * history_unavailable while the backend says it keeps no messages. */
void
event_history_end(struct user *to, const char *room, uint64_t seq,
    uint64_t replayed, int truncated)
{
	struct json_object	*o = event_new("history-end");
	char			 line[256], why[CHAT_WHY_MAX];
	int			 down;

	down = chat_history_down(to->chat, why, sizeof why);
	event_str(o, "room", room);
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)seq));
	json_object_object_add(o, "replayed",
	    json_object_new_int64((int64_t)replayed));
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(truncated));
	if (down) {
		event_str(o, "error", CHAT_E_HISTORY_DOWN);
		snprintf(line, sizeof line, "* end of #%s history: %llu "
		    "message%s; unavailable: %s", room,
		    (unsigned long long)replayed, replayed == 1 ? "" : "s",
		    why);
	} else
		snprintf(line, sizeof line, "* end of #%s history: %llu "
		    "message%s%s", room, (unsigned long long)replayed,
		    replayed == 1 ? "" : "s",
		    truncated ? " (not all that was asked for)" : "");
	event_send(to, o, line);
	json_object_put(o);
}
