/*
 * user.c - the sessions chat knows: their nicks (unique, ASCII case
 * folded, in a hash table) and the rooms they are in.
 *
 * A user is the plugin's data slot on its session, so the host frees it
 * (user_destroy) right after the session_close callback, or when the
 * plugin is unloaded. The slot outlives every use of the session handle
 * kept in it: the host destroys the slot before the session goes.
 *
 * Two session attributes, owned by chat, say what a reload must restore:
 * `nick`, and `rooms`, the user's rooms in join order (the current one
 * last) separated by spaces. Only the commands that change them write
 * them: when a chain is unloaded its users are torn down silently and the
 * attributes stay as they were, for the next instance of chat to read.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

static void	user_index(struct user *);
static void	user_unindex(struct user *);

/* The user of a session, or NULL (never handshaken, or already gone). */
struct user *
user_of(struct chat *c, struct ac_session *s)
{
	struct user	*u;

	u = c->host->session_get_data(c->p, s);
	if (u == NULL || u->closed || u->closing)
		return (NULL);
	return (u);
}

/*
 * Write the guest nick of a session id: "guest-" and its first 8 hex
 * digits, or more of them if that is taken (ids that share 8 digits are
 * rare, one in a few thousand among ten thousand sessions, but they
 * happen), else a number after them.
 */
void
user_guest_nick(struct chat *c, const char *id, char *out, size_t outlen)
{
	static const size_t	 digits[] = { 8, 12, 16, 20, 26 };
	char			 hex[33];
	size_t			 i, n = 0;
	unsigned int		 k;

	for (i = 0; id[i] != '\0' && n < sizeof hex - 1; i++) {
		if (id[i] != '-')
			hex[n++] = id[i];
	}
	hex[n] = '\0';
	for (i = 0; i < sizeof digits / sizeof digits[0]; i++) {
		snprintf(out, outlen, "guest-%.*s", (int)digits[i], hex);
		if (user_find(c, out, strlen(out)) == NULL)
			return;
	}
	for (k = 2;; k++) {
		snprintf(out, outlen, "guest-%.8s-%u", hex, k);
		if (user_find(c, out, strlen(out)) == NULL)
			return;
	}
}

/* The user whose nick is nick (len bytes) under ASCII case folding. */
struct user *
user_find(struct chat *c, const char *nick, size_t len)
{
	char	folded[CHAT_NICK_BYTES + 1];

	if (len == 0 || len > CHAT_NICK_BYTES)
		return (NULL);
	names_fold(folded, nick, len);
	return (hash_find(&c->nicks, folded));
}

/*
 * Make the user of a session that has just opened, with nick if it is
 * valid and free (the caller says why not otherwise) or a guest nick.
 */
struct user *
user_open(struct chat *c, struct ac_session *s, const char *nick)
{
	struct user	*u;
	const char	*id = c->host->session_id(s);

	if ((u = calloc(1, sizeof *u)) == NULL)
		return (NULL);
	u->chat = c;
	u->s = s;
	snprintf(u->id, sizeof u->id, "%s", id);
	TAILQ_INIT(&u->rooms);
	TAILQ_INIT(&u->appends);
	TAILQ_INIT(&u->directs);
	TAILQ_INIT(&u->waiting);
	/*
	 * Into the slot first, marked torn down: should the host refuse the
	 * slot (a session closing), it destroys u at once and nothing else
	 * holds it.
	 */
	u->closed = 1;
	c->host->session_set_data(c->p, s, u, user_destroy);
	if (c->host->session_get_data(c->p, s) != u)
		return (NULL);
	u->closed = 0;
	if (nick != NULL && names_nick_valid(nick, strlen(nick)) &&
	    user_find(c, nick, strlen(nick)) == NULL)
		snprintf(u->nick, sizeof u->nick, "%s", nick);
	else
		user_guest_nick(c, id, u->nick, sizeof u->nick);
	names_fold(u->fnick, u->nick, strlen(u->nick));
	user_index(u);
	c->nusers++;
	c->host->session_attr_set(c->p, s, CHAT_ATTR_NICK, u->nick);
	remote_claim(u, CLAIM_OPEN, u->nick);
	remote_presence(u);
	return (u);
}

/*
 * Put a local user's nick in the nick table. A remote user that the table
 * still has under it (the cluster gave the nick to this one) leaves it.
 */
static void
user_index(struct user *u)
{
	struct chat	*c = u->chat;
	struct user	*other;

	if ((other = hash_find(&c->nicks, u->fnick)) != NULL && other != u &&
	    other->remote)
		remote_unindex(other);
	if (hash_find(&c->nicks, u->fnick) == NULL)
		hash_add(&c->nicks, u->fnick, u);
	u->indexed = 1;
}

/* Take a local user's nick out of the nick table. */
static void
user_unindex(struct user *u)
{
	struct chat	*c = u->chat;

	if (hash_find(&c->nicks, u->fnick) == u)
		hash_remove(&c->nicks, u->fnick);
	u->indexed = 0;
}

/* Change a user's nick to a valid, free one (len bytes). */
int
user_rename(struct user *u, const char *nick, size_t len)
{
	struct chat	*c = u->chat;
	int		 rv;

	user_unindex(u);
	memcpy(u->nick, nick, len);
	u->nick[len] = '\0';
	names_fold(u->fnick, u->nick, len);
	user_index(u);
	rv = c->host->session_attr_set(c->p, u->s, CHAT_ATTR_NICK, u->nick) ==
	    AC_ATTR_OK ? 0 : -1;
	remote_presence(u);
	return (rv);
}

/* The user's membership of room r, or NULL (walks its own rooms only). */
struct member *
user_member(struct user *u, struct room *r)
{
	struct member	*m;

	TAILQ_FOREACH(m, &u->rooms, in_user) {
		u->chat->counts[CHAT_C_STEPS]++;
		if (m->room == r)
			return (m);
	}
	return (NULL);
}

/* The user's current room's membership: the last joined, or NULL. */
struct member *
user_current(struct user *u)
{
	return (TAILQ_LAST(&u->rooms, member_list));
}

/*
 * Record the user's rooms in its `rooms` attribute, for a reload. An
 * attribute holds at most AC_ATTR_VALUE_MAX bytes: when the names do not
 * fit, the most recently joined are kept (the current room always).
 */
void
user_save_rooms(struct user *u)
{
	struct chat	*c = u->chat;
	struct member	*m, *first;
	char		 buf[AC_ATTR_VALUE_MAX + 1];
	size_t		 total = 0, len, off = 0;

	/* Walk back from the current room while the names fit. */
	first = NULL;
	for (m = TAILQ_LAST(&u->rooms, member_list); m != NULL;
	    m = TAILQ_PREV(m, member_list, in_user)) {
		len = strlen(m->room->name) + (first != NULL ? 1 : 0);
		if (total + len > AC_ATTR_VALUE_MAX)
			break;
		total += len;
		first = m;
	}
	if (first == NULL) {
		c->host->session_attr_set(c->p, u->s, CHAT_ATTR_ROOMS, NULL);
		remote_presence(u);
		return;
	}
	for (m = first; m != NULL; m = TAILQ_NEXT(m, in_user)) {
		len = strlen(m->room->name);
		if (off != 0)
			buf[off++] = ' ';
		memcpy(buf + off, m->room->name, len);
		off += len;
	}
	buf[off] = '\0';
	c->host->session_attr_set(c->p, u->s, CHAT_ATTR_ROOMS, buf);
	remote_presence(u);
}

/* Leave every room and give up the nick, without telling anyone. */
static void
user_teardown(struct user *u)
{
	struct chat	*c = u->chat;
	struct member	*m;

	if (u->closed)
		return;
	append_user_gone(u);
	remote_user_gone(u);
	while ((m = TAILQ_FIRST(&u->rooms)) != NULL)
		room_leave(m);
	user_unindex(u);
	replay_user_gone(u);
	c->nusers--;
	u->closed = 1;
	u->s = NULL;
}

/*
 * A session closes: one `quit` to every user who shares a room with it
 * (once each, however many rooms they share), then it leaves them all.
 */
void
user_close(struct user *u, const char *reason)
{
	if (u->closed)
		return;
	event_quit(u, reason);
	remote_quit(u, reason);
	user_teardown(u);
}

/*
 * Close a user whose session closed while chat was walking its lists
 * (chat_leave): the quit events and the teardown that were put off, and
 * the free its slot's destruction left to us.
 */
void
user_close_deferred(struct user *u)
{
	user_close(u, u->reason);
	if (u->slot_gone)
		free(u);
}

/*
 * The slot's destructor: after session_close, or when chat is unloaded.
 * A user whose close is put off stays until chat_leave handles it.
 */
void
user_destroy(void *data)
{
	struct user	*u = data;

	if (u->closing && !u->closed) {
		u->slot_gone = 1;
		u->s = NULL;
		return;
	}
	user_teardown(u);
	free(u);
}
