/*
 * chat.c - the chat plugin: nicknames, rooms, direct messages, commands
 * and events on top of the wire protocol, as docs/CHAT.md describes.
 *
 * This file is the plugin's face to the host: its options, its metrics,
 * the history backend it finds, and the five callbacks (session_open,
 * session_close, process_message, collect, and init/ready/fini). The rest
 * is in user.c (sessions and nicks), room.c, message.c (what people say),
 * command.c, event.c and replay.c.
 *
 * chat ends the plugin chain for every message and chunk: everything is
 * either a command or routed to a room or a person here, so plugins meant
 * to see every message (a filter, the logger) go before it in `load`.
 *
 * Re-entrance. Sending may close a session (a slow consumer), and the host
 * then calls session_close at once, from inside chat's own walk of a room
 * or a user's rooms. Tearing the user down there would free list nodes
 * under the walk, so every entry point is bracketed by chat_enter and
 * chat_leave: a session that closes while chat is inside one is only
 * marked, and its quit events and teardown run when the outermost entry
 * point ends.
 *
 * With the nats plugin in the same chain chat refuses to start: nats
 * would carry every message to every session of the other servers
 * (docs/SCALING.md, "Chat and NATS"). Chat across servers is cluster
 * mode, with the cluster plugin (remote.c, append.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "chat.h"

static int	chat_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static int	chat_ready(void *);
static void	chat_fini(void *);
static void	chat_session_open(void *, struct ac_session *);
static void	chat_session_close(void *, struct ac_session *, const char *);
static int	chat_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);
static void	chat_collect(void *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "chat",
	.version = PACKAGE_VERSION,
	.description = "nicknames, rooms, direct messages and commands "
	    "(docs/CHAT.md)",
	.init = chat_init,
	.fini = chat_fini,
	.session_open = chat_session_open,
	.session_close = chat_session_close,
	.process_message = chat_process_message,
	.ready = chat_ready,
	.collect = chat_collect,
};

/* Names of enum chat_cmd, as replies and metrics spell them. */
static const char *chat_cmd_names[CHAT_CMD_COUNT] = {
	"nick", "join", "part", "msg", "who", "rooms", "history", "help",
	"unknown", "message",
};

/* Tokens of enum chat_err. */
static const char *chat_err_tokens[CHAT_ERR_COUNT] = {
	CHAT_E_BAD_NICK, CHAT_E_NICK_IN_USE, CHAT_E_BAD_ROOM,
	CHAT_E_TOO_MANY_ROOMS, CHAT_E_NOT_IN_ROOM, CHAT_E_NO_SUCH_NICK,
	CHAT_E_NO_HISTORY, CHAT_E_UNKNOWN_COMMAND, CHAT_E_NO_ROOM,
	CHAT_E_BAD_ARGUMENT, CHAT_E_TOO_LARGE, CHAT_E_CLUSTER_DOWN,
	CHAT_E_HISTORY_DOWN, CHAT_E_REPLAY_BUSY, CHAT_E_RATE_LIMITED,
};

/* The counters of enum chat_count: metric name and help. */
static const struct {
	const char	*name;
	const char	*help;
} chat_count_metrics[CHAT_C_COUNT] = {
	{ "chat_room_messages_total", "Messages sent to rooms." },
	{ "chat_direct_messages_total", "Direct messages sent." },
	{ "chat_deliveries_total", "Room and direct messages queued to "
	    "recipients." },
	{ "chat_events_total", "Events (reply, join, part, quit, nick, names, "
	    "rooms, history-end) sent." },
	{ "chat_replays_total", "History replays asked of the backend." },
	{ "chat_store_failures_total", "Room messages the history backend "
	    "did not store." },
	{ "chat_steps_total", "Entries of chat's tables and lists visited: "
	    "its work, for tests and profiling." },
};

/* The name of a command, as in a reply's `command`. */
const char *
chat_cmd_name(enum chat_cmd cmd)
{
	return (chat_cmd_names[cmd]);
}

/* The token of an error. */
const char *
chat_err_token(enum chat_err err)
{
	return (chat_err_tokens[err]);
}

/*
 * Now as the `time` member spells it (RFC 3339, UTC, milliseconds) and as
 * Unix milliseconds. The date part is formatted once per second.
 */
void
chat_stamp_time(struct chat *c, char *out, int64_t *ms)
{
	struct timespec	ts;
	struct tm	tm;
	time_t		sec;
	unsigned int	msec;

	clock_gettime(CLOCK_REALTIME, &ts);
	sec = ts.tv_sec;
	if ((int64_t)sec != c->time_sec || c->time_text[0] == '\0') {
		gmtime_r(&sec, &tm);
		strftime(c->time_text, sizeof c->time_text,
		    "%Y-%m-%dT%H:%M:%S", &tm);
		c->time_sec = (int64_t)sec;
	}
	msec = (unsigned int)(ts.tv_nsec / 1000000) % 1000;
	memcpy(out, c->time_text, 19);
	out[19] = '.';
	out[20] = '0' + msec / 100;
	out[21] = '0' + msec / 10 % 10;
	out[22] = '0' + msec % 10;
	out[23] = 'Z';
	out[24] = '\0';
	*ms = (int64_t)sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Non-zero when the history backend says it keeps no messages now, with
 * its sentence in why. A version 1 backend cannot say: it is taken to be
 * up, as is the absence of one (no_history is another matter).
 */
int
chat_history_down(struct chat *c, char *why, size_t len)
{
	const struct ac_history	*h = c->history;

	if (h == NULL || !AC_HISTORY_HAS(h, status))
		return (0);
	why[0] = '\0';
	if (h->status(h->ctx, why, len) == 0)
		return (0);
	if (why[0] == '\0')
		snprintf(why, len, "the history backend is down");
	return (1);
}

/* Enter an entry point: closes met from here on are put off. */
void
chat_enter(struct chat *c)
{
	c->depth++;
}

/* Leave an entry point; the outermost one tears down closed users. */
void
chat_leave(struct chat *c)
{
	struct user	*u;

	if (--c->depth != 0)
		return;
	c->depth++;
	while ((u = TAILQ_FIRST(&c->deferred)) != NULL) {
		TAILQ_REMOVE(&c->deferred, u, deferred);
		user_close_deferred(u);
	}
	c->depth--;
}

/* Read one option; -1 (logged with its line) when it is not valid. */
static int
chat_option(struct chat *c, const struct ac_plugin_option *o)
{
	unsigned long long	v;
	size_t			len = strlen(o->value);

	if (strcmp(o->key, "default_room") == 0) {
		if (len != 0 && !roomname_valid(o->value, len)) {
			c->host->log(c->p, AC_LOG_ERROR, "line %d: "
			    "default_room: '%s' is not a room name (1 to %d "
			    "of A-Z a-z 0-9 - _ .; empty for none)", o->line,
			    o->value, CHAT_ROOM_MAX);
			return (-1);
		}
		snprintf(c->default_room, sizeof c->default_room, "%s",
		    o->value);
		return (0);
	}
	if (strcmp(o->key, "max_rooms") == 0) {
		if (ac_option_uint(o->value, 1, CHAT_MAX_ROOMS_LIMIT,
		    &v) != 0) {
			c->host->log(c->p, AC_LOG_ERROR, "line %d: max_rooms: "
			    "'%s' is not a number from 1 to %d", o->line,
			    o->value, CHAT_MAX_ROOMS_LIMIT);
			return (-1);
		}
		c->max_rooms = (unsigned int)v;
		return (0);
	}
	if (strcmp(o->key, "command_rate") == 0 ||
	    strcmp(o->key, "command_burst") == 0) {
		if (ac_option_uint(o->value, o->key[8] == 'r' ? 0 : 1,
		    CHAT_CMD_RATE_LIMIT, &v) != 0) {
			c->host->log(c->p, AC_LOG_ERROR, "line %d: %s: '%s' "
			    "is not a number from %d to %d", o->line, o->key,
			    o->value, o->key[8] == 'r' ? 0 : 1,
			    CHAT_CMD_RATE_LIMIT);
			return (-1);
		}
		if (o->key[8] == 'r')
			c->command_rate = (unsigned int)v;
		else
			c->command_burst = (unsigned int)v;
		return (0);
	}
	if (strcmp(o->key, "max_rooms_listed") == 0) {
		if (ac_option_uint(o->value, 1, CHAT_ROOMS_LISTED_LIMIT,
		    &v) != 0) {
			c->host->log(c->p, AC_LOG_ERROR, "line %d: "
			    "max_rooms_listed: '%s' is not a number from 1 to "
			    "%d", o->line, o->value, CHAT_ROOMS_LISTED_LIMIT);
			return (-1);
		}
		c->max_rooms_listed = (unsigned int)v;
		return (0);
	}
	c->host->log(c->p, AC_LOG_ERROR, "line %d: unknown option '%s' "
	    "(known: default_room, max_rooms, command_rate, command_burst, "
	    "max_rooms_listed)", o->line, o->key);
	return (-1);
}

/* Register one metric; NULL (logged by the host) is harmless. */
static struct ac_metric *
chat_metric(struct chat *c, enum ac_metric_type type, const char *name,
    const char *help)
{
	return (c->host->metric_new(c->p, type, name, help, NULL, 0));
}

/* Register every metric of the plugin. */
static void
chat_metrics(struct chat *c)
{
	char	name[96], help[128];
	int	i;

	for (i = 0; i < CHAT_C_COUNT; i++)
		c->m_counts[i] = chat_metric(c, AC_METRIC_COUNTER,
		    chat_count_metrics[i].name, chat_count_metrics[i].help);
	for (i = 0; i < CHAT_CMD_COUNT; i++) {
		if (i == CHAT_CMD_MESSAGE)
			continue;	/* plain messages are counted above */
		snprintf(name, sizeof name, "chat_command_%s_total",
		    chat_cmd_names[i]);
		snprintf(help, sizeof help, i == CHAT_CMD_UNKNOWN ?
		    "Commands chat does not know." : "Commands /%s.",
		    chat_cmd_names[i]);
		c->m_commands[i] = chat_metric(c, AC_METRIC_COUNTER, name,
		    help);
	}
	for (i = 0; i < CHAT_ERR_COUNT; i++) {
		snprintf(name, sizeof name, "chat_error_%s_total",
		    chat_err_tokens[i]);
		snprintf(help, sizeof help, "Replies with the error %s.",
		    chat_err_tokens[i]);
		c->m_errors[i] = chat_metric(c, AC_METRIC_COUNTER, name, help);
	}
	c->m_users = chat_metric(c, AC_METRIC_GAUGE, "chat_users",
	    "Sessions chat knows (with a nick).");
	c->m_rooms = chat_metric(c, AC_METRIC_GAUGE, "chat_rooms",
	    "Rooms with members.");
	c->m_members = chat_metric(c, AC_METRIC_GAUGE, "chat_members",
	    "Memberships: sessions in rooms, counted once per room (in "
	    "cluster mode, other servers' sessions too).");
	c->m_remote = chat_metric(c, AC_METRIC_GAUGE, "chat_remote_users",
	    "Sessions of other servers (cluster mode).");
}

/* Read the options, set up the tables, register the metrics. */
static int
chat_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct chat	*c;
	size_t		 i;

	if ((c = calloc(1, sizeof *c)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		return (-1);
	}
	c->p = p;
	c->host = host;
	snprintf(c->default_room, sizeof c->default_room, "%s",
	    CHAT_DEFAULT_ROOM);
	c->max_rooms = CHAT_DEFAULT_MAX_ROOMS;
	c->command_rate = CHAT_DEFAULT_CMD_RATE;
	c->command_burst = CHAT_DEFAULT_CMD_BURST;
	c->max_rooms_listed = CHAT_DEFAULT_ROOMS_LISTED;
	for (i = 0; i < nopts; i++) {
		if (chat_option(c, &opts[i]) == -1) {
			free(c);
			return (-1);
		}
	}
	hash_init(&c->nicks, &c->counts[CHAT_C_STEPS]);
	hash_init(&c->rooms, &c->counts[CHAT_C_STEPS]);
	TAILQ_INIT(&c->deferred);
	TAILQ_INIT(&c->appends);
	TAILQ_INIT(&c->claims);
	TAILQ_INIT(&c->directs);
	chat_metrics(c);
	*state = c;
	return (0);
}

/* Find the history backend; refuse to run beside nats. */
static int
chat_ready(void *state)
{
	struct chat	*c = state;
	const char	*why;
	unsigned int	 version;

	if (c->host->interface_get(c->p, CHAT_NATS_INTERFACE, 1,
	    NULL) != NULL) {
		c->host->log(c->p, AC_LOG_ERROR, "cannot run with the nats "
		    "plugin: it would pass every room message, command and "
		    "direct message to every session of the other servers; "
		    "join servers running chat with the cluster plugin "
		    "(`load = chat, cluster`, docs/SCALING.md, \"Chat across "
		    "servers\")");
		return (-1);
	}
	c->history = c->host->interface_get(c->p, AC_HISTORY_INTERFACE, 1,
	    &version);
	if (c->history != NULL) {
		why = NULL;
		if (c->history->size < offsetof(struct ac_history, replay) +
		    sizeof c->history->replay)
			why = "its interface is shorter than version 1";
		else if (AC_HISTORY_HAS(c->history, numbers) &&
		    c->history->numbers(c->history->ctx)) {
			/* A numbering backend (append.c). */
			if (c->history->last_seq == NULL ||
			    c->history->replay == NULL ||
			    !AC_HISTORY_HAS(c->history, append) ||
			    !AC_HISTORY_HAS(c->history, listen))
				why = "it numbers messages but lacks append, "
				    "listen, replay or last_seq";
			else
				c->numbers = 1;
		} else if (c->history->last_seq == NULL ||
		    c->history->durable == NULL ||
		    c->history->store == NULL || c->history->replay == NULL)
			why = "a function of its interface is missing";
		if (why != NULL) {
			c->host->log(c->p, AC_LOG_ERROR, "the history backend "
			    "cannot be used: %s", why);
			return (-1);
		}
		if (c->numbers)
			c->history->listen(c->history->ctx, append_live, c);
		c->host->log(c->p, AC_LOG_DEBUG, "history backend found "
		    "(interface version %u%s)", version, c->numbers ?
		    ", numbering" : "");
	}
	return (remote_ready(c));
}

/* Free everything; every user was torn down by its slot already. */
static void
chat_fini(void *state)
{
	struct chat	*c = state;

	append_free_all(c);
	remote_free_all(c);
	room_free_all(c);
	if (c->stamp_room.o != NULL)
		json_object_put(c->stamp_room.o);
	if (c->stamp_direct.o != NULL)
		json_object_put(c->stamp_direct.o);
	hash_free(&c->nicks);
	hash_free(&c->rooms);
	free(c->relay);
	free(c);
}

/*
 * The `since` of an entry of a session_ack's rooms: 1 and *since when it
 * is a seq, 0 when it is absent, -1 when it is anything else.
 */
static int
chat_ack_since(struct json_object *e, uint64_t *since)
{
	struct json_object	*js;

	if (!json_object_object_get_ex(e, "since", &js))
		return (0);
	if (!json_object_is_type(js, json_type_int) ||
	    json_object_get_int64(js) < 0)
		return (-1);
	*since = (uint64_t)json_object_get_int64(js);
	return (1);
}

/* The since of a rooms entry naming the default room, for its join (a
 * bad one is reported where the entry is read, by chat_ack_rooms). */
static int
chat_ack_default_since(struct chat *c, struct json_object *rooms,
    uint64_t *since)
{
	struct json_object	*e, *jr;
	size_t			 i, n;

	if (rooms == NULL || !json_object_is_type(rooms, json_type_array))
		return (0);
	n = json_object_array_length(rooms);
	for (i = 0; i < n && i < c->max_rooms; i++) {
		e = json_object_array_get_idx(rooms, i);
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "room", &jr) ||
		    !json_object_is_type(jr, json_type_string) ||
		    strcasecmp(json_object_get_string(jr),
		    c->default_room) != 0)
			continue;
		return (chat_ack_since(e, since) == 1);
	}
	return (0);
}

/* Join the rooms a session_ack lists (`rooms`), reporting problems. */
static void
chat_ack_rooms(struct user *u, struct json_object *rooms)
{
	struct chat		*c = u->chat;
	struct json_object	*e, *jr;
	const char		*name;
	size_t			 i, n, len;
	uint64_t		 since;
	int			 has_since;

	if (!json_object_is_type(rooms, json_type_array)) {
		event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_BAD_ARGUMENT,
		    "\"rooms\" is a list of {\"room\": ROOM, \"since\": SEQ}");
		return;
	}
	n = json_object_array_length(rooms);
	for (i = 0; i < n; i++) {
		if (i >= c->max_rooms) {
			event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_TOO_MANY_ROOMS,
			    "%zu more rooms listed than the %u allowed", n - i,
			    c->max_rooms);
			return;
		}
		e = json_object_array_get_idx(rooms, i);
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "room", &jr) ||
		    !json_object_is_type(jr, json_type_string)) {
			event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_BAD_ROOM,
			    "entry %zu of \"rooms\" has no \"room\" name",
			    i + 1);
			continue;
		}
		name = json_object_get_string(jr);
		len = (size_t)json_object_get_string_len(jr);
		since = 0;
		if ((has_since = chat_ack_since(e, &since)) == -1) {
			/* The entry is left out, the default room's too. */
			event_reply(u, CHAT_CMD_JOIN, CHAT_ERR_BAD_ARGUMENT,
			    "entry %zu of \"rooms\": \"since\" is a seq, 0 or "
			    "more", i + 1);
			continue;
		}
		if (c->default_room[0] != '\0' &&
		    strcasecmp(name, c->default_room) == 0) {
			/*
			 * Joined first, with its since. Here, where it is
			 * listed, it becomes current as /join of a room one is
			 * in makes it: the last room listed is current.
			 */
			command_join(u, name, len, 0, 0, CHAT_JOIN_QUIET);
		} else
			command_join(u, name, len, has_since, since,
			    CHAT_JOIN_QUIET);
		if (u->closing)
			return;
	}
}

/*
 * A session completed its handshake: its nick and rooms from the
 * session_ack, as if it had sent /nick and /join, problems as replies.
 */
static void
chat_session_welcome(struct chat *c, struct ac_session *s,
    const struct ac_message *ack)
{
	struct json_object	*header, *jn = NULL, *jrooms = NULL;
	struct user		*u;
	const char		*nick = NULL;
	enum chat_err		 nick_err = CHAT_ERR_COUNT;
	uint64_t		 since = 0;
	int			 has_since;

	if ((header = ac_message_header(ack)) != NULL) {
		json_object_object_get_ex(header, "nick", &jn);
		json_object_object_get_ex(header, "rooms", &jrooms);
	}
	if (jn != NULL) {
		if (!json_object_is_type(jn, json_type_string) ||
		    !names_nick_valid(json_object_get_string(jn),
		    (size_t)json_object_get_string_len(jn)))
			nick_err = CHAT_ERR_BAD_NICK;
		else if (user_find(c, json_object_get_string(jn),
		    (size_t)json_object_get_string_len(jn)) != NULL)
			nick_err = CHAT_ERR_NICK_IN_USE;
		else if (c->cluster != NULL &&
		    !c->cluster->up(c->cluster->ctx))
			nick_err = CHAT_ERR_CLUSTER_DOWN;
		else
			nick = json_object_get_string(jn);
	}
	if ((u = user_open(c, s, nick)) == NULL)
		return;
	if (nick_err == CHAT_ERR_BAD_NICK)
		event_reply(u, CHAT_CMD_NICK, nick_err, "a nick is 1 to 32 "
		    "characters, no spaces or control characters, not "
		    "starting with # / or @; you are %s", u->nick);
	else if (nick_err == CHAT_ERR_NICK_IN_USE)
		event_reply(u, CHAT_CMD_NICK, nick_err, "that nick is taken; "
		    "you are %s", u->nick);
	else if (nick_err == CHAT_ERR_CLUSTER_DOWN)
		event_reply(u, CHAT_CMD_NICK, nick_err, "the other servers are "
		    "out of reach, so nicks cannot be checked now; you are %s",
		    u->nick);
	/*
	 * A client that asks for neither a nick nor rooms may know nothing
	 * of chat: the original Python client reads 1024 bytes at a time,
	 * takes each read as one frame, and loses its footing on a larger
	 * burst, such as the names of a busy lobby or a replay. Its join of
	 * the default room is bare: the join event alone; /who and /history
	 * give the rest. The replays its commands ask for wait a moment
	 * (replay.c). A client that knows chat says so with a nick or rooms
	 * ("rooms": [] will do).
	 */
	u->plain = jn == NULL && jrooms == NULL;
	if (c->default_room[0] != '\0' && !u->closing) {
		has_since = chat_ack_default_since(c, jrooms, &since);
		command_join(u, c->default_room, strlen(c->default_room),
		    has_since, since, CHAT_JOIN_QUIET | (u->plain ?
		    CHAT_JOIN_BARE : 0));
	}
	if (jrooms != NULL && !u->closing)
		chat_ack_rooms(u, jrooms);
}

/*
 * A reload meets a session that was open already: take its nick and
 * rooms back from its attributes, quietly (nothing changed for anyone).
 * A session chat never saw (no `nick` attribute) gets a guest nick and
 * the default room.
 */
static void
chat_session_adopt(struct chat *c, struct ac_session *s)
{
	const char	*nick, *rooms, *p, *end;
	struct user	*u;
	struct room	*r;
	size_t		 len;

	nick = c->host->session_attr(s, CHAT_ATTR_NICK);
	rooms = c->host->session_attr(s, CHAT_ATTR_ROOMS);
	if ((u = user_open(c, s, nick)) == NULL)
		return;
	if (nick == NULL) {
		if (c->default_room[0] != '\0')
			room_join(u, c->default_room, strlen(c->default_room));
		user_save_rooms(u);
		return;
	}
	for (p = rooms; p != NULL && *p != '\0'; p = end) {
		while (*p == ' ')
			p++;
		for (end = p; *end != '\0' && *end != ' '; end++)
			;
		len = (size_t)(end - p);
		if (!roomname_valid(p, len) || u->nrooms >= c->max_rooms)
			continue;
		if ((r = room_find(c, p, len)) != NULL &&
		    user_member(u, r) != NULL)
			continue;
		room_join(u, p, len);
	}
	user_save_rooms(u);
}

/* A session opened (handshake), or a reload meets an open one. */
static void
chat_session_open(void *state, struct ac_session *s)
{
	struct chat		*c = state;
	const struct ac_message	*ack = c->host->session_ack(c->p, s);

	chat_enter(c);
	if (ack != NULL)
		chat_session_welcome(c, s, ack);
	else
		chat_session_adopt(c, s);
	chat_leave(c);
}

/* A session closed: quit events, then it leaves its rooms (or later). */
static void
chat_session_close(void *state, struct ac_session *s, const char *reason)
{
	struct chat	*c = state;
	struct user	*u = c->host->session_get_data(c->p, s);

	if (u == NULL || u->closed || u->closing)
		return;
	if (c->depth > 0) {
		u->closing = 1;
		snprintf(u->reason, sizeof u->reason, "%s", reason);
		TAILQ_INSERT_TAIL(&c->deferred, u, deferred);
		return;
	}
	chat_enter(c);
	user_close(u, reason);
	chat_leave(c);
}

/* A message or chunk: a command, or something to route. */
static int
chat_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct chat	*c = state;
	struct user	*u;

	(void)frame;
	if ((u = user_of(c, from)) == NULL)
		return (AC_PLUGIN_STOP);
	chat_enter(c);
	if (command_is(msg))
		command_run(u, msg);
	else if (msg->type == AC_MSG_MESSAGE && msg->content_len >= 2 &&
	    msg->content[0] == '/' && msg->content[1] == '/' &&
	    msg->content_type != NULL &&
	    strncasecmp(msg->content_type, "text/plain", 10) == 0)
		message_route(u, msg, msg->content + 1, msg->content_len - 1);
	else
		message_route(u, msg, msg->content, msg->content_len);
	chat_leave(c);
	return (AC_PLUGIN_STOP);
}

/* Bring the metrics up to date before a scrape. */
static void
chat_collect(void *state)
{
	struct chat	*c = state;
	int		 i;

	for (i = 0; i < CHAT_C_COUNT; i++)
		c->host->metric_set(c->m_counts[i], (double)c->counts[i]);
	for (i = 0; i < CHAT_CMD_COUNT; i++) {
		if (c->m_commands[i] != NULL)
			c->host->metric_set(c->m_commands[i],
			    (double)c->commands[i]);
	}
	for (i = 0; i < CHAT_ERR_COUNT; i++)
		c->host->metric_set(c->m_errors[i], (double)c->errors[i]);
	c->host->metric_set(c->m_users, (double)c->nusers);
	c->host->metric_set(c->m_rooms, (double)room_count(c));
	c->host->metric_set(c->m_members, (double)c->nmembers);
	c->host->metric_set(c->m_remote, (double)c->nremote);
}
