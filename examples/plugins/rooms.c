/*
 * rooms.c - an example plugin: chat rooms chosen by a header member.
 *
 * A client puts "room": "NAME" in a message's header JSON (an extension
 * member: receivers that do not know it ignore it). The message then goes,
 * byte for byte, to every session whose last message named the same room;
 * a message without the member goes to the session's current room, and a
 * session that never named one is in `default_room`. The plugin stops the
 * chain for the messages it routes, so load it instead of broadcast:
 *
 *	[plugins]
 *	load = rooms, logger
 *	[plugin.rooms]
 *	default_room = lobby
 *	include_sender = yes
 *
 * A session's room is its session attribute "room", so that the logger
 * records it and other plugins can read it (host->session_attr); this
 * plugin owns the attribute, being the first to set it.
 *
 * It shows: options, reading an extra header member, a session attribute,
 * session_foreach and relay.
 *
 * Build outside the source tree with only the installed SDK:
 *	cc -shared -fPIC $(pkg-config --cflags asyncchat) rooms.c \
 *	    $(pkg-config --libs asyncchat) -o rooms.so
 */
#include <stdlib.h>
#include <string.h>

#include <asyncchat/plugin.h>

#define ROOM_NAME_MAX	64

struct rooms {
	struct ac_plugin		*plugin;
	const struct ac_host_api	*host;
	char				 default_room[ROOM_NAME_MAX + 1];
	int				 include_sender;
};

/* What one relay pass needs to know. */
struct delivery {
	struct rooms		*rooms;
	struct ac_session	*from;
	const struct ac_frame	*frame;
	const char		*room;
};

/* The room a session is in: its "room" attribute, or the default room. */
static const char *
room_of(struct rooms *r, struct ac_session *s)
{
	const char	*room = r->host->session_attr(s, "room");

	return room != NULL ? room : r->default_room;
}

/* Relay the frame to one session if it is in the room. */
static int
deliver_one(struct ac_session *s, void *arg)
{
	struct delivery	*d = arg;

	if (s == d->from && !d->rooms->include_sender)
		return 0;
	if (strcmp(room_of(d->rooms, s), d->room) == 0)
		d->rooms->host->relay(d->rooms->plugin, d->frame, s);
	return 0;
}

/* Read the options and set up the plugin's state. */
static int
rooms_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct rooms	*r;
	size_t		 i;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return -1;
	r->plugin = p;
	r->host = host;
	strcpy(r->default_room, "lobby");
	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "default_room") == 0) {
			if (strlen(opts[i].value) == 0 ||
			    strlen(opts[i].value) > ROOM_NAME_MAX) {
				host->log(p, AC_LOG_ERROR, "line %d: "
				    "default_room must be 1 to %d bytes",
				    opts[i].line, ROOM_NAME_MAX);
				goto fail;
			}
			strcpy(r->default_room, opts[i].value);
		} else if (strcmp(opts[i].key, "include_sender") == 0) {
			if (ac_option_bool(opts[i].value,
			    &r->include_sender) != 0) {
				host->log(p, AC_LOG_ERROR, "line %d: "
				    "include_sender must be yes or no, not '%s'",
				    opts[i].line, opts[i].value);
				goto fail;
			}
		} else {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: default_room, include_sender)",
			    opts[i].line, opts[i].key);
			goto fail;
		}
	}
	*state = r;
	return 0;
fail:
	free(r);
	return -1;
}

/* Free the plugin's state (the sessions keep their "room" attribute: a
 * reloaded rooms plugin finds everyone where they were). */
static void
rooms_fini(void *state)
{
	free(state);
}

/* Route a message to the sender's room, switching rooms when it names one. */
static int
rooms_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct rooms	*r = state;
	struct delivery	 d;
	const char	*named = ac_message_get_string(msg, "room");

	if (named != NULL && strcmp(named, room_of(r, from)) != 0) {
		/* The host copies the value, and refuses one that is not
		 * UTF-8 text (or a key another plugin owns). */
		if (strlen(named) == 0 || strlen(named) > ROOM_NAME_MAX ||
		    r->host->session_attr_set(r->plugin, from, "room",
		    named) != AC_ATTR_OK) {
			r->host->send(r->plugin, from, AC_MSG_ERROR,
			    "text/plain; charset=utf-8", NULL,
			    "room: a room name is 1 to 64 bytes of text", 43);
			return AC_PLUGIN_STOP;
		}
		r->host->log(r->plugin, AC_LOG_DEBUG, "session %s joined %s",
		    r->host->session_id(from), named);
	}

	d.rooms = r;
	d.from = from;
	d.frame = frame;
	d.room = room_of(r, from);
	r->host->session_foreach(r->plugin, deliver_one, &d);
	return AC_PLUGIN_STOP;
}

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "rooms",
	.version = "2.0",
	.description = "route messages to chat rooms named in the header",
	.init = rooms_init,
	.fini = rooms_fini,
	.process_message = rooms_process_message,
};
