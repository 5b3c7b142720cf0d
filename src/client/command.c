/*
 * command.c - what a line typed in interactive mode becomes on the wire.
 *
 * With a server that is not a chat server, every line is sent as it was
 * typed, as it always was. With a chat server (CHAT.md):
 *
 *  - A line that does not begin with / is a message to the current room:
 *    it goes with the header member "room", so that it reaches the room
 *    the prompt shows.
 *  - A line that begins with // is a message too; it is sent as typed and
 *    the server takes one / off (the user types //etc to say "/etc").
 *  - A line that begins with / is a command and is sent as text, as the
 *    original Python client's user would type it, with three changes: a
 *    room typed as #dev goes as dev (CHAT.md: rooms are sent without #),
 *    and /part and /who without a room name the current room, since the
 *    client's current room is the one the user sees.
 *  - /history replays the server's current room, which is the one the
 *    prompt shows: both change on the same /join and /part, and a
 *    reconnection lists the current room last in its session_ack.
 *  - /quit [REASON] is the client's own: it leaves, as `exit` does.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cli.h"
#include "xmalloc.h"

/* The commands completion offers: CHAT.md's, then the client's own. */
static const char *const command_list[] = {
	"/help", "/history", "/join", "/msg", "/nick", "/part", "/quit",
	"/rooms", "/who", NULL
};

/* The command names, with their /, for completion. */
const char *const *
command_names(void)
{
	return command_list;
}

/* Whether the word at p (len bytes) is the command name, case folded. */
static int
command_is(const char *p, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(p, name, len) == 0;
}

/* Skip white space. */
static const char *
command_space(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

/* The end of the word at p. */
static const char *
command_word(const char *p)
{
	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	return p;
}

/* Whether the word at p (len bytes) is a decimal number. */
static int
command_number(const char *p, size_t len)
{
	size_t	i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return 0;
	}
	return 1;
}

/*
 * Rewrite a command whose first argument is a room: "#dev" as "dev", and
 * with no room given, the current room's name when there is one.
 */
static char *
command_room_arg(struct chat *chat, const char *cmd, size_t cmdlen,
    const char *args)
{
	const char	*room, *end;
	char		*out;

	room = command_space(args);
	if (*room == '\0') {
		if (chat->current == NULL)
			return ac_xstrdup(cmd);
		ac_xasprintf(&out, "%.*s %s", (int)cmdlen, cmd,
		    chat->current->name);
		return out;
	}
	if (*room == '#')
		room++;
	end = command_word(room);
	ac_xasprintf(&out, "%.*s %.*s%s", (int)cmdlen, cmd, (int)(end - room),
	    room, end);
	return out;
}

/*
 * Decide what to do with a typed line: COMMAND_SEND with *text (heap) and
 * *extra (NULL, or an object for the header, the caller's to put), or
 * COMMAND_QUIT with *text the reason (heap, or NULL).
 */
enum command_do
command_line(struct chat *chat, const char *line, char **text,
    struct json_object **extra)
{
	const char	*p, *end, *arg, *argend, *since;
	size_t		 len;

	*text = NULL;
	*extra = NULL;
	if (!chat->active) {
		*text = ac_xstrdup(line);
		return COMMAND_SEND;
	}
	if (line[0] != '/' || line[1] == '/') {
		*text = ac_xstrdup(line);
		if (chat->current != NULL) {
			*extra = json_object_new_object();
			json_object_object_add(*extra, "room",
			    json_object_new_string(chat->current->name));
		}
		return COMMAND_SEND;
	}

	p = line;
	end = command_word(p);
	len = end - p;
	if (command_is(p, len, "/quit")) {
		arg = command_space(end);
		if (*arg != '\0')
			*text = ac_xstrdup(arg);
		return COMMAND_QUIT;
	}
	if (command_is(p, len, "/join")) {
		arg = command_space(end);
		if (*arg == '\0') {
			*text = ac_xstrdup(line);
			return COMMAND_SEND;
		}
		*text = command_room_arg(chat, p, len, end);
		if (*arg == '#')
			arg++;
		argend = command_word(arg);
		since = command_space(argend);
		chat_join_asked(chat, arg, argend - arg);
		if (command_number(since, command_word(since) - since))
			chat_replay_asked(chat);
		return COMMAND_SEND;
	}
	if (command_is(p, len, "/part")) {
		*text = command_room_arg(chat, p, len, end);
		return COMMAND_SEND;
	}
	if (command_is(p, len, "/who")) {
		chat_who_asked(chat);
		*text = command_room_arg(chat, p, len, end);
		return COMMAND_SEND;
	}
	if (command_is(p, len, "/history"))
		chat_replay_asked(chat);
	else if (command_is(p, len, "/msg")) {
		arg = command_space(end);
		argend = command_word(arg);
		if (argend > arg) {
			char	*nick;

			ac_xasprintf(&nick, "%.*s", (int)(argend - arg), arg);
			chat_peer_add(chat, nick);
			free(nick);
		}
	}
	*text = ac_xstrdup(line);
	return COMMAND_SEND;
}
