/*
 * command.c - the commands people type: a `message` frame of text/plain
 * whose content starts with one `/` (docs/CHAT.md, "Commands").
 *
 * A command is the word after `/` (ASCII letters, any case) and its
 * arguments, separated by spaces or tabs; a trailing newline or spaces
 * are ignored, so a client that sends whole lines is understood. Room
 * arguments may be written with their `#`, as people type them. Each
 * command gets exactly one `reply` event, after the events it causes and
 * before any replay it starts (which comes later, from the history
 * backend). Nothing a command names is echoed back unless it has been
 * checked first (a valid nick or room, or a printable command word), so a
 * hostile client cannot make chat sign text of its choosing.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "chat.h"

#define COMMAND_WORD_MAX	32	/* a command word echoed back */

/* A piece of the command line: start and length. */
struct command_arg {
	const char	*s;
	size_t		 len;
};

/* The words and what follows them, for one command line. */
struct command_line {
	struct command_arg	word;	/* after the `/` */
	struct command_arg	rest;	/* after the word, trimmed */
};

static void	command_nick(struct user *, struct command_line *);
static void	command_join_line(struct user *, struct command_line *);
static void	command_part(struct user *, struct command_line *);
static void	command_msg(struct user *, struct command_line *,
		    const struct ac_message *);
static void	command_who(struct user *, struct command_line *);
static void	command_rooms(struct user *, struct command_line *);
static void	command_history(struct user *, struct command_line *);
static void	command_help(struct user *, struct command_line *);

/* The commands by name, in the order of enum chat_cmd. */
static const char *command_names[] = {
	"nick", "join", "part", "msg", "who", "rooms", "history", "help",
};

/* Non-zero when a frame is a command: text/plain starting with one `/`. */
int
command_is(const struct ac_message *msg)
{
	if (msg->type != AC_MSG_MESSAGE || msg->content_type == NULL ||
	    strncasecmp(msg->content_type, "text/plain", 10) != 0)
		return (0);
	if (msg->content_len < 1 || msg->content[0] != '/')
		return (0);
	return (msg->content_len < 2 || msg->content[1] != '/');
}

/* Non-zero for a space or a tab (the separators of arguments). */
static int
command_space(char ch)
{
	return (ch == ' ' || ch == '\t');
}

/* Cut the first word off a piece; what is left is trimmed at its start. */
static struct command_arg
command_shift(struct command_arg *a)
{
	struct command_arg	w;

	w.s = a->s;
	w.len = 0;
	while (w.len < a->len && !command_space(w.s[w.len]))
		w.len++;
	a->s += w.len;
	a->len -= w.len;
	while (a->len > 0 && command_space(*a->s)) {
		a->s++;
		a->len--;
	}
	return (w);
}

/* Drop one leading `#` from a room argument. */
static void
command_unhash(struct command_arg *a)
{
	if (a->len > 0 && a->s[0] == '#') {
		a->s++;
		a->len--;
	}
}

/*
 * The command word as it may be echoed in a reply: lowercase, when it is
 * 1 to 32 printable ASCII characters; else empty.
 */
static void
command_word_echo(const struct command_arg *w, char *out, size_t outlen)
{
	size_t	i;

	out[0] = '\0';
	if (w->len == 0 || w->len > COMMAND_WORD_MAX || w->len >= outlen)
		return;
	for (i = 0; i < w->len; i++) {
		if (w->s[i] <= ' ' || w->s[i] >= 0x7f)
			return;
	}
	names_fold(out, w->s, w->len);
}

/*
 * Charge a command to the user's budget: command_rate a second, up to
 * command_burst at once (a virtual scheduling clock, as in GCRA: tat is
 * when the budget would be full again). The commands charged are those
 * whose events go to others (/nick, /join, /part: one event to each
 * member of a room) and those answered with a list (/who, /rooms):
 * repeated, they made the server encode thousands of frames a second for
 * one sender. Returns 0 if the command may run, or 1 after answering
 * rate_limited.
 */
static int
command_charge(struct user *u, enum chat_cmd cmd)
{
	struct chat	*c = u->chat;
	struct timespec	 ts;
	int64_t		 now, step, tat;

	switch (cmd) {
	case CHAT_CMD_NICK:
	case CHAT_CMD_JOIN:
	case CHAT_CMD_PART:
	case CHAT_CMD_WHO:
	case CHAT_CMD_ROOMS:
		break;
	default:
		return (0);
	}
	if (c->command_rate == 0)
		return (0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	step = 1000000 / c->command_rate;
	tat = (u->cmd_tat > now ? u->cmd_tat : now) + step;
	if (tat - now > step * (int64_t)c->command_burst) {
		event_reply(u, cmd, CHAT_ERR_RATE_LIMITED, "over %u of /nick, "
		    "/join, /part, /who and /rooms a second: try again in "
		    "%lld ms", c->command_rate, (long long)((tat - now -
		    step * (int64_t)c->command_burst + 999) / 1000));
		return (1);
	}
	u->cmd_tat = tat;
	return (0);
}

/* Run a command from a user. */
void
command_run(struct user *u, const struct ac_message *msg)
{
	struct chat		*c = u->chat;
	struct command_line	 cl;
	char			 echo[COMMAND_WORD_MAX + 1];
	size_t			 i;
	int			 cmd = -1;

	cl.rest.s = (const char *)msg->content + 1;
	cl.rest.len = msg->content_len - 1;
	while (cl.rest.len > 0 && (command_space(cl.rest.s[cl.rest.len - 1])
	    || cl.rest.s[cl.rest.len - 1] == '\n' ||
	    cl.rest.s[cl.rest.len - 1] == '\r'))
		cl.rest.len--;
	cl.word = command_shift(&cl.rest);
	for (i = 0; i < sizeof command_names / sizeof command_names[0]; i++) {
		if (strlen(command_names[i]) == cl.word.len &&
		    strncasecmp(command_names[i], cl.word.s, cl.word.len) == 0)
			cmd = (int)i;
	}
	if (cmd < 0) {
		c->commands[CHAT_CMD_UNKNOWN]++;
		command_word_echo(&cl.word, echo, sizeof echo);
		event_reply_unknown(u, echo, "no such command; /help lists "
		    "them");
		return;
	}
	c->commands[cmd]++;
	if (command_charge(u, (enum chat_cmd)cmd))
		return;
	if (!names_utf8_valid(msg->content, msg->content_len)) {
		event_reply(u, cmd, CHAT_ERR_BAD_ARGUMENT, "the command is "
		    "not valid UTF-8");
		return;
	}
	switch ((enum chat_cmd)cmd) {
	case CHAT_CMD_NICK:
		command_nick(u, &cl);
		break;
	case CHAT_CMD_JOIN:
		command_join_line(u, &cl);
		break;
	case CHAT_CMD_PART:
		command_part(u, &cl);
		break;
	case CHAT_CMD_MSG:
		command_msg(u, &cl, msg);
		break;
	case CHAT_CMD_WHO:
		command_who(u, &cl);
		break;
	case CHAT_CMD_ROOMS:
		command_rooms(u, &cl);
		break;
	case CHAT_CMD_HISTORY:
		command_history(u, &cl);
		break;
	case CHAT_CMD_HELP:
		command_help(u, &cl);
		break;
	default:
		break;
	}
}

/* /nick NAME */
static void
command_nick(struct user *u, struct command_line *cl)
{
	struct user	*other;
	char		 old[CHAT_NICK_BYTES + 1];

	if (!names_nick_valid(cl->rest.s, cl->rest.len)) {
		event_reply(u, CHAT_CMD_NICK, CHAT_ERR_BAD_NICK, "a nick is 1 "
		    "to 32 characters, no spaces or control characters, not "
		    "starting with # / or @");
		return;
	}
	other = user_find(u->chat, cl->rest.s, cl->rest.len);
	if (other != NULL && other != u) {
		event_reply(u, CHAT_CMD_NICK, CHAT_ERR_NICK_IN_USE, "%s is "
		    "taken", other->nick);
		return;
	}
	if (strlen(u->nick) == cl->rest.len &&
	    memcmp(u->nick, cl->rest.s, cl->rest.len) == 0) {
		event_reply_ok(u, CHAT_CMD_NICK, "you are %s already",
		    u->nick);
		return;
	}
	if (u->chat->cluster != NULL) {
		/* Across servers: the claim's answer completes it. */
		if (!u->chat->cluster->up(u->chat->cluster->ctx))
			event_reply(u, CHAT_CMD_NICK, CHAT_ERR_CLUSTER_DOWN,
			    "the other servers are out of reach: nicks cannot "
			    "be checked now");
		else if (u->claiming != NULL &&
		    (u->claiming->kind == CLAIM_NICK ||
		    u->next_nick[0] != '\0'))
			event_reply(u, CHAT_CMD_NICK, CHAT_ERR_NICK_IN_USE,
			    "a nick change of yours is under way already");
		else if (u->claiming != NULL)
			/* After the claim of the nick it has (remote.c). */
			snprintf(u->next_nick, sizeof u->next_nick, "%.*s",
			    (int)cl->rest.len, cl->rest.s);
		else {
			snprintf(old, sizeof old, "%.*s", (int)cl->rest.len,
			    cl->rest.s);
			remote_claim(u, CLAIM_NICK, old);
		}
		return;
	}
	snprintf(old, sizeof old, "%s", u->nick);
	user_rename(u, cl->rest.s, cl->rest.len);
	event_nick(u, old);
	event_reply_ok(u, CHAT_CMD_NICK, "you are now %s", u->nick);
}

/* /join ROOM [SINCE] */
static void
command_join_line(struct user *u, struct command_line *cl)
{
	struct command_arg	room, since;
	uint64_t		seq = 0;

	room = command_shift(&cl->rest);
	since = command_shift(&cl->rest);
	command_unhash(&room);
	if (!roomname_valid(room.s, room.len)) {
		event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_BAD_ROOM, "a room is 1 "
		    "to 64 of A-Z a-z 0-9 - _ .");
		return;
	}
	if (cl->rest.len > 0 || (since.len > 0 &&
	    names_parse_count(since.s, since.len, &seq) == -1)) {
		event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_BAD_ARGUMENT, "usage: "
		    "/join ROOM [SINCE], SINCE a seq");
		return;
	}
	command_join(u, room.s, room.len, since.len > 0, seq, 0);
}

/*
 * Join a room (name len bytes) and make it current, as /join does: the
 * `join` event to its members, `names` to the joiner, the reply, then the
 * replay. Flags leave out the reply when all goes well (CHAT_JOIN_QUIET:
 * joins at the handshake report only their problems), or the names and
 * the replay (CHAT_JOIN_BARE: a client that knows nothing of chat, at its
 * handshake). Returns 0 if the user is in the room afterwards.
 */
int
command_join(struct user *u, const char *name, size_t len, int has_since,
    uint64_t since, int flags)
{
	struct chat	*c = u->chat;
	struct room	*r;
	struct member	*m;

	if (!roomname_valid(name, len)) {
		event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_BAD_ROOM, "a room is 1 "
		    "to 64 of A-Z a-z 0-9 - _ .");
		return (-1);
	}
	if ((r = room_find(c, name, len)) != NULL &&
	    (m = user_member(u, r)) != NULL) {
		/* Already in: make it current; with SINCE, replay. */
		if (has_since && replay_busy(m)) {
			event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_REPLAY_BUSY,
			    "the replay of #%s you asked for is still coming",
			    r->name);
			return (0);
		}
		TAILQ_REMOVE(&u->rooms, m, in_user);
		TAILQ_INSERT_TAIL(&u->rooms, m, in_user);
		user_save_rooms(u);
		if (!(flags & CHAT_JOIN_QUIET))
			event_reply_ok(u, CHAT_CMD_JOIN, "#%s is your current "
			    "room", r->name);
		if (has_since)
			replay_start(m, 1, since, 0);
		return (0);
	}
	if (u->nrooms >= c->max_rooms) {
		event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_TOO_MANY_ROOMS,
		    "you are in %u rooms already, the most allowed",
		    u->nrooms);
		return (-1);
	}
	m = room_join(u, name, len);
	user_save_rooms(u);
	event_join(m);
	if (!(flags & CHAT_JOIN_BARE))
		event_names(u, m->room);
	if (!(flags & CHAT_JOIN_QUIET))
		event_reply_ok(u, CHAT_CMD_JOIN, "you are in #%s",
		    m->room->name);
	if (!(flags & CHAT_JOIN_BARE))
		replay_start(m, has_since, since, 0);
	return (0);
}

/*
 * The room an optional argument names among the user's rooms, else the
 * current room; replies with the error and returns NULL when there is
 * none.
 */
static struct member *
command_member(struct user *u, enum chat_cmd cmd, struct command_arg *a)
{
	struct room	*r;
	struct member	*m = NULL;

	if (a->len == 0) {
		if ((m = user_current(u)) == NULL)
			event_reply(u, cmd, CHAT_ERR_NO_ROOM, "you are in no "
			    "room");
		return (m);
	}
	command_unhash(a);
	if (!roomname_valid(a->s, a->len)) {
		event_reply(u, cmd, CHAT_ERR_BAD_ROOM, "a room is 1 to 64 of "
		    "A-Z a-z 0-9 - _ .");
		return (NULL);
	}
	if ((r = room_find(u->chat, a->s, a->len)) != NULL)
		m = user_member(u, r);
	if (m == NULL)
		event_reply(u, cmd, CHAT_ERR_NOT_IN_ROOM, "you are not in "
		    "#%.*s", (int)a->len, a->s);
	return (m);
}

/* /part [ROOM] */
static void
command_part(struct user *u, struct command_line *cl)
{
	struct member	*m, *cur;
	char		 name[CHAT_ROOM_MAX + 1];

	if ((m = command_member(u, CHAT_CMD_PART, &cl->rest)) == NULL)
		return;
	snprintf(name, sizeof name, "%s", m->room->name);
	event_part(m);
	room_leave(m);
	user_save_rooms(u);
	if ((cur = user_current(u)) != NULL)
		event_reply_ok(u, CHAT_CMD_PART, "you left #%s; you are in "
		    "#%s", name, cur->room->name);
	else
		event_reply_ok(u, CHAT_CMD_PART, "you left #%s; you are in no "
		    "room", name);
}

/* /msg NICK TEXT */
static void
command_msg(struct user *u, struct command_line *cl,
    const struct ac_message *msg)
{
	struct command_arg	 nick;
	struct user		*to;

	nick = command_shift(&cl->rest);
	if (nick.len == 0 || cl->rest.len == 0) {
		event_reply(u, CHAT_CMD_MSG, CHAT_ERR_BAD_ARGUMENT, "usage: "
		    "/msg NICK TEXT");
		return;
	}
	if ((to = user_find(u->chat, nick.s, nick.len)) == NULL) {
		event_reply(u, CHAT_CMD_MSG, CHAT_ERR_NO_SUCH_NICK, "nobody "
		    "is called that");
		return;
	}
	message_direct(u, to, msg, (const uint8_t *)cl->rest.s,
	    cl->rest.len, CHAT_CMD_MSG);
}

/* /who [ROOM] */
static void
command_who(struct user *u, struct command_line *cl)
{
	struct member	*m;

	if ((m = command_member(u, CHAT_CMD_WHO, &cl->rest)) == NULL)
		return;
	event_names(u, m->room);
	event_reply_ok(u, CHAT_CMD_WHO, "%u in #%s", m->room->nmembers,
	    m->room->name);
}

/* /rooms */
static void
command_rooms(struct user *u, struct command_line *cl)
{
	event_rooms(u);
	event_reply_ok(u, CHAT_CMD_ROOMS, "%d room%s", room_count(u->chat),
	    room_count(u->chat) == 1 ? "" : "s");
}

/* /history [N] */
static void
command_history(struct user *u, struct command_line *cl)
{
	struct command_arg	 n;
	struct member		*m;
	uint64_t		 count = 0;
	char			 why[CHAT_WHY_MAX];

	if (u->chat->history == NULL) {
		event_reply(u, CHAT_CMD_HISTORY, CHAT_ERR_NO_HISTORY, "this "
		    "server keeps no history");
		return;
	}
	n = command_shift(&cl->rest);
	if (cl->rest.len > 0 || (n.len > 0 &&
	    (names_parse_count(n.s, n.len, &count) == -1 || count == 0))) {
		event_reply(u, CHAT_CMD_HISTORY, CHAT_ERR_BAD_ARGUMENT,
		    "usage: /history [N], N at least 1");
		return;
	}
	if ((m = user_current(u)) == NULL) {
		event_reply(u, CHAT_CMD_HISTORY, CHAT_ERR_NO_ROOM, "you are in "
		    "no room");
		return;
	}
	if (chat_history_down(u->chat, why, sizeof why)) {
		event_reply(u, CHAT_CMD_HISTORY, CHAT_ERR_HISTORY_DOWN, "%s",
		    why);
		return;
	}
	if (replay_busy(m)) {
		event_reply(u, CHAT_CMD_HISTORY, CHAT_ERR_REPLAY_BUSY, "the "
		    "replay of #%s you asked for is still coming",
		    m->room->name);
		return;
	}
	event_reply_ok(u, CHAT_CMD_HISTORY, "history of #%s follows",
	    m->room->name);
	replay_start(m, 0, 0, count);
}

/* /help */
static void
command_help(struct user *u, struct command_line *cl)
{
	event_reply_ok(u, CHAT_CMD_HELP, "commands: /nick NAME, /join ROOM "
	    "[SINCE], /part [ROOM], /msg NICK TEXT, /who [ROOM], /rooms, "
	    "/history [N], /help; //text sends /text");
}
