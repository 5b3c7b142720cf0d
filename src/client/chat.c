/*
 * chat.c - the chat layer (CHAT.md) as the client sees it: our nick and
 * session, the rooms we are in with their members and the last seq shown,
 * the room a typed message goes to, and what to put in a session_ack so
 * that a reconnection carries on where the last connection stopped.
 *
 * Whom to believe. A chat server strips `event`, `from`, `seq`, `time`,
 * `room` and `to` from what a client sends and sets them itself, so on a
 * chat server they can be trusted. On any other server (echo, broadcast,
 * the original) they are whatever another client put in its header, and
 * believing them would let anyone write as anyone. So the chat layer stays
 * off until an event arrives with our own session id, which only the
 * server can send (it refuses a frame from a client whose session id is
 * not that client's own), and a server without the chat layer never does.
 * The first frames a chat server sends a new session are such events (the
 * join of its default room), ahead of anything another client could send.
 *
 * The current room. The server makes the room joined last current, and the
 * one before after a /part; a session_ack's rooms are joined in order. The
 * client keeps its own current room, the one the prompt shows, and names
 * it in every message it sends, so that what is typed goes where the
 * prompt says even if the two ever differ. It changes when the user joins
 * a room (a /join the server answers) and after a /part, never because of
 * the joins a reconnection makes, which put the current room last.
 *
 * Why one file past 700 lines: it is one piece of state (struct chat) and
 * everything that changes or reads it: the name rules, the rooms and
 * their members, and one handler per event. The handlers are short and
 * each needs the room and member helpers above it; apart, they would
 * share a private header for nothing but each other.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "xmalloc.h"

/* Commands whose success the events they cause already show. */
static const char *const chat_quiet_replies[] = {
	"join", "part", "nick", "who", "rooms", "history", "msg", NULL
};

/* ASCII lower case of one byte, whatever the locale. */
static int
chat_fold(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* Compare two names with ASCII case folding, as CHAT.md compares them. */
int
chat_fold_cmp(const char *a, const char *b)
{
	int	ca, cb;

	do {
		ca = chat_fold((unsigned char)*a++);
		cb = chat_fold((unsigned char)*b++);
	} while (ca == cb && ca != '\0');
	return ca - cb;
}

/* Whether name begins with prefix, ASCII case folded. */
int
chat_fold_prefix(const char *name, const char *prefix)
{
	for (; *prefix != '\0'; name++, prefix++) {
		if (chat_fold((unsigned char)*name) !=
		    chat_fold((unsigned char)*prefix))
			return 0;
	}
	return 1;
}

/* Whether a code point is white space (ASCII's and Unicode's spaces). */
static int
chat_space(unsigned int cp)
{
	return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0x85 ||
	    cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
	    cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
	    cp == 0x3000;
}

/* Why nick is not a valid nick (CHAT.md "Names"), or NULL if it is. */
const char *
chat_nick_problem(const char *nick)
{
	const unsigned char	*p = (const unsigned char *)nick;
	size_t			 len = strlen(nick), i, n, chars = 0;
	unsigned int		 cp;

	if (len == 0)
		return "a nick has at least one character";
	if (*p == '#' || *p == '/' || *p == '@')
		return "a nick does not begin with #, / or @";
	for (i = 0; i < len; i += n) {
		if ((n = output_utf8_len(p + i, len - i, &cp)) == 0)
			return "a nick is UTF-8";
		if (chat_space(cp) || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return "a nick has no spaces or control characters";
		chars++;
	}
	if (chars > CHAT_NICK_MAX)
		return "a nick has at most 32 characters";
	return NULL;
}

/* Why room (without #) is not a valid room name, or NULL if it is. */
const char *
chat_room_problem(const char *room)
{
	size_t	len = strlen(room), i;

	if (len == 0 || len > CHAT_ROOM_MAX)
		return "a room name has 1 to 64 characters";
	for (i = 0; i < len; i++) {
		if (!((room[i] >= 'a' && room[i] <= 'z') ||
		    (room[i] >= 'A' && room[i] <= 'Z') ||
		    (room[i] >= '0' && room[i] <= '9') ||
		    room[i] == '-' || room[i] == '_' || room[i] == '.'))
			return "a room name has only A-Z a-z 0-9 - _ .";
	}
	return NULL;
}

/* Append a copy of s to a list of strings. */
static void
chat_list_add(char ***list, size_t *n, const char *s)
{
	*list = ac_xreallocarray(*list, *n + 1, sizeof **list);
	(*list)[(*n)++] = ac_xstrdup(s);
}

/* Free every string of a list and empty it. */
static void
chat_list_clear(char ***list, size_t *n)
{
	size_t	i;

	for (i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
}

/* Remove the first string of a list. */
static void
chat_list_shift(char **list, size_t *n)
{
	free(list[0]);
	memmove(list, list + 1, (*n - 1) * sizeof *list);
	(*n)--;
}

/* Whether a list holds s, ASCII case folded. */
static int
chat_list_has(char **list, size_t n, const char *s)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (chat_fold_cmp(list[i], s) == 0)
			return 1;
	}
	return 0;
}

/* Forget every member of a room. */
static void
chat_members_clear(struct chat_room *r)
{
	struct chat_member	*m;

	while ((m = TAILQ_FIRST(&r->members)) != NULL) {
		TAILQ_REMOVE(&r->members, m, entry);
		free(m->session);
		free(m->nick);
		free(m);
	}
	r->names_more = 0;
}

/* The member of a room with that session id, or NULL. */
static struct chat_member *
chat_member_find(struct chat_room *r, const char *session)
{
	struct chat_member	*m;

	TAILQ_FOREACH(m, &r->members, entry) {
		if (strcmp(m->session, session) == 0)
			return m;
	}
	return NULL;
}

/* Add a member to a room, or rename it if it is there. */
static void
chat_member_set(struct chat_room *r, const char *session, const char *nick)
{
	struct chat_member	*m;

	if ((m = chat_member_find(r, session)) != NULL) {
		free(m->nick);
		m->nick = ac_xstrdup(nick);
		return;
	}
	m = ac_xcalloc(1, sizeof *m);
	m->session = ac_xstrdup(session);
	m->nick = ac_xstrdup(nick);
	TAILQ_INSERT_TAIL(&r->members, m, entry);
}

/* Remove a member from a room; whether it was there. */
static int
chat_member_remove(struct chat_room *r, const char *session)
{
	struct chat_member	*m;

	if ((m = chat_member_find(r, session)) == NULL)
		return 0;
	TAILQ_REMOVE(&r->members, m, entry);
	free(m->session);
	free(m->nick);
	free(m);
	return 1;
}

/* The room of that name (ASCII case folded, # optional), or NULL. */
struct chat_room *
chat_room_find(const struct chat *chat, const char *name)
{
	struct chat_room	*r;

	if (*name == '#')
		name++;
	TAILQ_FOREACH(r, &chat->rooms, entry) {
		if (chat_fold_cmp(r->name, name) == 0)
			return r;
	}
	return NULL;
}

/* Add a room we are not yet in at the end of the list. */
static struct chat_room *
chat_room_add(struct chat *chat, const char *name)
{
	struct chat_room	*r;

	r = ac_xcalloc(1, sizeof *r);
	r->name = ac_xstrdup(name);
	TAILQ_INIT(&r->members);
	TAILQ_INSERT_TAIL(&chat->rooms, r, entry);
	return r;
}

/* Forget a room. */
static void
chat_room_remove(struct chat *chat, struct chat_room *r)
{
	TAILQ_REMOVE(&chat->rooms, r, entry);
	if (chat->current == r)
		chat->current = NULL;
	chat_members_clear(r);
	free(r->name);
	free(r);
}

/* Move a room to the end of the list (the room joined last). */
static void
chat_room_last(struct chat *chat, struct chat_room *r)
{
	TAILQ_REMOVE(&chat->rooms, r, entry);
	TAILQ_INSERT_TAIL(&chat->rooms, r, entry);
}

/* Make a room the current one, and the one joined last. */
static void
chat_room_current(struct chat *chat, struct chat_room *r)
{
	chat_room_last(chat, r);
	chat->current = r;
}

/* How many rooms we are in. */
static size_t
chat_joined(const struct chat *chat)
{
	struct chat_room	*r;
	size_t			 n = 0;

	TAILQ_FOREACH(r, &chat->rooms, entry) {
		if (r->joined)
			n++;
	}
	return n;
}

/* Start with the nick and rooms asked for on the command line. */
void
chat_init(struct chat *chat, const char *nick, const char **rooms,
    size_t nrooms)
{
	size_t	i;

	memset(chat, 0, sizeof *chat);
	TAILQ_INIT(&chat->rooms);
	if (nick != NULL)
		chat->nick = ac_xstrdup(nick);
	for (i = 0; i < nrooms; i++) {
		if (chat_room_find(chat, rooms[i]) == NULL)
			chat_room_add(chat, rooms[i]);
	}
	/* The last one named is joined last, so it is current. */
	if (nrooms > 0)
		chat->current = chat_room_find(chat, rooms[nrooms - 1]);
}

/* Free everything the chat state holds. */
void
chat_clear(struct chat *chat)
{
	struct chat_room	*r;

	while ((r = TAILQ_FIRST(&chat->rooms)) != NULL)
		chat_room_remove(chat, r);
	free(chat->nick);
	free(chat->sid);
	chat_list_clear(&chat->own, &chat->nown);
	chat_list_clear(&chat->pending, &chat->npending);
	chat_list_clear(&chat->peers, &chat->npeers);
	chat_list_clear(&chat->listed, &chat->nlisted);
	free(chat->want);
	memset(chat, 0, sizeof *chat);
	TAILQ_INIT(&chat->rooms);
}

/*
 * The members for the next session_ack (CHAT.md "Joining at the
 * handshake"), or NULL for none: our nick, and each room with the last
 * seq shown in it, so the server replays exactly what we have not seen;
 * the current room last, as the room joined last becomes current. A room
 * asked for but not yet joined goes without since, for the usual replay.
 */
struct json_object *
chat_ack_extra(const struct chat *chat)
{
	struct json_object	*extra, *rooms, *o;
	struct chat_room	*r;
	int			 pass;

	if (chat->nick == NULL && TAILQ_EMPTY(&chat->rooms))
		return NULL;
	extra = json_object_new_object();
	if (chat->nick != NULL)
		json_object_object_add(extra, "nick",
		    json_object_new_string(chat->nick));
	if (TAILQ_EMPTY(&chat->rooms))
		return extra;
	rooms = json_object_new_array();
	for (pass = 0; pass < 2; pass++) {
		TAILQ_FOREACH(r, &chat->rooms, entry) {
			if ((r == chat->current) != (pass == 1))
				continue;
			o = json_object_new_object();
			json_object_object_add(o, "room",
			    json_object_new_string(r->name));
			if (r->joined)
				json_object_object_add(o, "since",
				    json_object_new_int64((int64_t)
				    r->last_seq));
			json_object_array_add(rooms, o);
		}
	}
	json_object_object_add(extra, "rooms", rooms);
	return extra;
}

/* A handshake finished: sid is our session now. */
void
chat_connected(struct chat *chat, const char *sid)
{
	free(chat->sid);
	chat->sid = ac_xstrdup(sid);
	if (!chat_list_has(chat->own, chat->nown, sid))
		chat_list_add(&chat->own, &chat->nown, sid);
}

/*
 * The connection ended: who is in which room is no longer known (the
 * next connection's names events say it again), and no command sent is
 * answered any more. The rooms, their last seq and the nick stay.
 */
void
chat_disconnected(struct chat *chat)
{
	struct chat_room	*r;

	TAILQ_FOREACH(r, &chat->rooms, entry)
		chat_members_clear(r);
	free(chat->sid);
	chat->sid = NULL;
	chat_list_clear(&chat->pending, &chat->npending);
	free(chat->want);
	chat->want = NULL;
	chat->replay = 0;
	chat->who = 0;
	chat->listed_more = 0;
}

/* Whether sid is one of the sessions this client has had. */
int
chat_is_own(const struct chat *chat, const char *sid)
{
	size_t	i;

	if (sid == NULL)
		return 0;
	for (i = 0; i < chat->nown; i++) {
		if (strcmp(chat->own[i], sid) == 0)
			return 1;
	}
	return 0;
}

/* The user sent /join ROOM (len bytes at room): wait for its answer. */
void
chat_join_asked(struct chat *chat, const char *room, size_t len)
{
	char	*name;

	ac_xasprintf(&name, "%.*s", (int)len, room);
	chat_list_add(&chat->pending, &chat->npending, name);
	free(name);
}

/*
 * The user asked for a replay (/history, or /join with SINCE): until its
 * history-end, messages already shown are shown again.
 */
void
chat_replay_asked(struct chat *chat)
{
	chat->replay = 1;
}

/* The user sent /who: show the whole list it brings. */
void
chat_who_asked(struct chat *chat)
{
	chat->who++;
}

/* Remember a nick we exchanged direct messages with, for completion. */
void
chat_peer_add(struct chat *chat, const char *nick)
{
	if (!chat_list_has(chat->peers, chat->npeers, nick))
		chat_list_add(&chat->peers, &chat->npeers, nick);
}

/* A string member of an object, or NULL. */
const char *
chat_str(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A positive integer member of an object, or 0. */
uint64_t
chat_uint(struct json_object *o, const char *key)
{
	struct json_object	*v;
	int64_t			 n;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	n = json_object_get_int64(v);
	return n > 0 ? (uint64_t)n : 0;
}

/* A boolean member of an object (false when absent or not a boolean). */
int
chat_bool(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return 0;
	return json_object_get_boolean(v);
}

/* A join: someone, maybe we, is now in a room. */
static void
chat_ev_join(struct chat *chat, struct json_object *h)
{
	const char		*room = chat_str(h, "room");
	const char		*nick = chat_str(h, "nick");
	const char		*session = chat_str(h, "session");
	struct chat_room	*r;
	int			 asked;

	if (room == NULL || nick == NULL || session == NULL)
		return;
	r = chat_room_find(chat, room);
	if (strcmp(session, chat->sid) == 0) {
		if (r == NULL)
			r = chat_room_add(chat, room);
		else if (strcmp(r->name, room) != 0) {
			/* The server's spelling wins (--room DEV for dev). */
			free(r->name);
			r->name = ac_xstrdup(room);
		}
		if (!r->joined)
			chat_members_clear(r);
		r->joined = 1;
		free(chat->nick);
		chat->nick = ac_xstrdup(nick);
		asked = (chat->want != NULL &&
		    chat_fold_cmp(chat->want, room) == 0) ||
		    chat_list_has(chat->pending, chat->npending, room);
		if (asked || chat->current == NULL)
			chat_room_current(chat, r);
		else
			chat_room_last(chat, r);
		if (asked) {
			free(chat->want);
			chat->want = NULL;
		}
	}
	if (r != NULL)
		chat_member_set(r, session, nick);
}

/*
 * A part: someone left a room. When it is we, the room goes, and if it
 * was the current room the one joined before it becomes current.
 */
static void
chat_ev_part(struct chat *chat, struct json_object *h)
{
	const char		*room = chat_str(h, "room");
	const char		*session = chat_str(h, "session");
	struct chat_room	*r, *prev;

	if (room == NULL || session == NULL ||
	    (r = chat_room_find(chat, room)) == NULL)
		return;
	if (strcmp(session, chat->sid) != 0) {
		chat_member_remove(r, session);
		return;
	}
	if (chat->current == r) {
		chat->current = NULL;
		TAILQ_FOREACH_REVERSE(prev, &chat->rooms, chat_rooms, entry) {
			if (prev != r && prev->joined) {
				chat->current = prev;
				break;
			}
		}
	}
	chat_room_remove(chat, r);
}

/* A quit: a session closed and left every room it shared with us. */
static void
chat_ev_quit(struct chat *chat, struct json_object *h)
{
	const char		*session = chat_str(h, "session");
	struct chat_room	*r;

	if (session == NULL)
		return;
	TAILQ_FOREACH(r, &chat->rooms, entry)
		chat_member_remove(r, session);
}

/* A nick: a session, maybe ours, has a new nick. */
static void
chat_ev_nick(struct chat *chat, struct json_object *h)
{
	const char		*nick = chat_str(h, "nick");
	const char		*session = chat_str(h, "session");
	struct chat_room	*r;
	struct chat_member	*m;

	if (nick == NULL || session == NULL)
		return;
	if (strcmp(session, chat->sid) == 0) {
		free(chat->nick);
		chat->nick = ac_xstrdup(nick);
	}
	TAILQ_FOREACH(r, &chat->rooms, entry) {
		if ((m = chat_member_find(r, session)) != NULL) {
			free(m->nick);
			m->nick = ac_xstrdup(nick);
		}
	}
}

/*
 * A names event: who is in a room. A long list comes in several events,
 * each but the last with "more": the first replaces what we knew.
 */
static void
chat_ev_names(struct chat *chat, struct json_object *h)
{
	const char		*room = chat_str(h, "room");
	struct chat_room	*r;
	struct json_object	*names, *e;
	const char		*nick, *session;
	size_t			 i, n;

	if (room == NULL || (r = chat_room_find(chat, room)) == NULL ||
	    !json_object_object_get_ex(h, "names", &names) ||
	    !json_object_is_type(names, json_type_array))
		return;
	if (!r->names_more)
		chat_members_clear(r);
	n = json_object_array_length(names);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(names, i);
		nick = chat_str(e, "nick");
		session = chat_str(e, "session");
		if (nick != NULL && session != NULL)
			chat_member_set(r, session, nick);
	}
	r->names_more = chat_bool(h, "more");
}

/* A rooms event: the rooms that have members, kept for completion. */
static void
chat_ev_rooms(struct chat *chat, struct json_object *h)
{
	struct json_object	*rooms;
	const char		*room;
	size_t			 i, n;

	if (!json_object_object_get_ex(h, "rooms", &rooms) ||
	    !json_object_is_type(rooms, json_type_array))
		return;
	if (!chat->listed_more)
		chat_list_clear(&chat->listed, &chat->nlisted);
	n = json_object_array_length(rooms);
	for (i = 0; i < n; i++) {
		room = chat_str(json_object_array_get_idx(rooms, i), "room");
		if (room != NULL && chat_room_problem(room) == NULL &&
		    !chat_list_has(chat->listed, chat->nlisted, room))
			chat_list_add(&chat->listed, &chat->nlisted, room);
	}
	chat->listed_more = chat_bool(h, "more");
}

/*
 * A reply: the answer to one command, in the order they were sent. A
 * /join the server accepted makes its room current, whether the join
 * event came first or is still to come (or none comes, for a room we are
 * already in).
 */
static void
chat_ev_reply(struct chat *chat, struct json_object *h,
    struct chat_frame *cf)
{
	const char		*command = chat_str(h, "command");
	const char		*status = chat_str(h, "status");
	struct chat_room	*r;
	size_t			 i;

	cf->error = status != NULL && strcmp(status, "error") == 0;
	if (command == NULL)
		return;
	if (!cf->error) {
		for (i = 0; chat_quiet_replies[i] != NULL; i++) {
			if (strcmp(command, chat_quiet_replies[i]) == 0)
				cf->quiet = 1;
		}
	}
	if (strcmp(command, "join") == 0 && chat->npending > 0) {
		if (!cf->error) {
			r = chat_room_find(chat, chat->pending[0]);
			if (r != NULL && r->joined)
				chat_room_current(chat, r);
			else {
				free(chat->want);
				chat->want = ac_xstrdup(chat->pending[0]);
			}
		} else
			chat->replay = 0;
		chat_list_shift(chat->pending, &chat->npending);
	}
	if (strcmp(command, "who") == 0 && chat->who > 0)
		chat->who--;
	if (strcmp(command, "history") == 0 && cf->error)
		chat->replay = 0;
}

/* Take one event made for us, and update what we know. */
static void
chat_event(struct chat *chat, const char *event, struct json_object *h,
    struct chat_frame *cf)
{
	if (strcmp(event, "join") == 0)
		chat_ev_join(chat, h);
	else if (strcmp(event, "part") == 0)
		chat_ev_part(chat, h);
	else if (strcmp(event, "quit") == 0)
		chat_ev_quit(chat, h);
	else if (strcmp(event, "nick") == 0)
		chat_ev_nick(chat, h);
	else if (strcmp(event, "names") == 0) {
		cf->full = chat->who > 0;
		chat_ev_names(chat, h);
	} else if (strcmp(event, "rooms") == 0)
		chat_ev_rooms(chat, h);
	else if (strcmp(event, "reply") == 0)
		chat_ev_reply(chat, h, cf);
	else if (strcmp(event, "history-end") == 0) {
		/* A replay nobody asked for that brought nothing is noise. */
		cf->quiet = !chat->replay && chat_uint(h, "replayed") == 0 &&
		    !chat_bool(h, "truncated");
		chat->replay = 0;
	}
}

/*
 * Class a received frame (see the top of this file for whom to believe),
 * update what we know from it, and fill cf with what showing it needs.
 * A room message whose seq is not above the last one shown in its room is
 * one we have seen (a replay after a reconnection, say): CHAT_DROP, unless
 * the user asked for a replay.
 */
void
chat_take(struct chat *chat, enum ac_msg_type type, const char *content_type,
    const char *sid, struct json_object *h, struct chat_frame *cf)
{
	const char		*event;
	struct chat_room	*r;

	memset(cf, 0, sizeof *cf);
	cf->kind = CHAT_PLAIN;
	if (type != AC_MSG_MESSAGE && type != AC_MSG_CHUNK)
		return;
	event = chat_str(h, "event");
	if (event != NULL && type == AC_MSG_MESSAGE && chat->sid != NULL &&
	    sid != NULL && strcmp(sid, chat->sid) == 0) {
		chat->active = 1;
		cf->kind = CHAT_EVENT;
		cf->event = event;
		chat_event(chat, event, h, cf);
		cf->several = chat_joined(chat) > 1;
		return;
	}
	if (!chat->active || (cf->from = chat_str(h, "from")) == NULL)
		return;

	cf->kind = CHAT_MESSAGE;
	cf->room = chat_str(h, "room");
	cf->to = chat_str(h, "to");
	cf->time = chat_str(h, "time");
	cf->seq = chat_uint(h, "seq");
	cf->own = chat_is_own(chat, sid);
	cf->several = chat_joined(chat) > 1;
	if (cf->room != NULL && cf->seq > 0 &&
	    (r = chat_room_find(chat, cf->room)) != NULL) {
		if (cf->seq <= r->last_seq && !chat->replay) {
			cf->kind = CHAT_DROP;
			return;
		}
		if (cf->seq > r->last_seq)
			r->last_seq = cf->seq;
	}
	if (cf->room == NULL && cf->to != NULL)
		chat_peer_add(chat, cf->own ? cf->to : cf->from);
}

/* Compare two strings by pointer, ASCII case folded (for qsort). */
static int
chat_sort_cmp(const void *a, const void *b)
{
	return chat_fold_cmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Sort the n names of v, case folded, and keep each once at the front;
 * returns how many are left.
 */
static size_t
chat_sort_unique(char **v, size_t n)
{
	size_t	i, j;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, chat_sort_cmp);
	for (i = 1, j = 1; i < n; i++) {
		if (chat_fold_cmp(v[i], v[j - 1]) != 0)
			v[j++] = v[i];
	}
	return j;
}

/*
 * Every nick we know (members of our rooms, direct message partners),
 * sorted, each once; the strings are borrowed, the array is the caller's.
 */
char **
chat_nicks(const struct chat *chat, size_t *np)
{
	struct chat_room	*r;
	struct chat_member	*m;
	char			**v = NULL;
	size_t			 n = 0, i;

	TAILQ_FOREACH(r, &chat->rooms, entry) {
		TAILQ_FOREACH(m, &r->members, entry) {
			v = ac_xreallocarray(v, n + 1, sizeof *v);
			v[n++] = m->nick;
		}
	}
	for (i = 0; i < chat->npeers; i++) {
		v = ac_xreallocarray(v, n + 1, sizeof *v);
		v[n++] = chat->peers[i];
	}
	*np = chat_sort_unique(v, n);
	return v;
}

/*
 * Every room name we know (ours, and those of the last rooms event),
 * sorted, each once; borrowed strings in the caller's array.
 */
char **
chat_room_names(const struct chat *chat, size_t *np)
{
	struct chat_room	*r;
	char			**v = NULL;
	size_t			 n = 0, i;

	TAILQ_FOREACH(r, &chat->rooms, entry) {
		v = ac_xreallocarray(v, n + 1, sizeof *v);
		v[n++] = r->name;
	}
	for (i = 0; i < chat->nlisted; i++) {
		v = ac_xreallocarray(v, n + 1, sizeof *v);
		v[n++] = chat->listed[i];
	}
	*np = chat_sort_unique(v, n);
	return v;
}
