/*
 * event.c - the lines interactive and file mode show for the events a chat
 * server sends (CHAT.md "Events"):
 *
 *	[11:05:23] * bob joined #dev
 *	[11:05:24] * bob left #dev
 *	[11:05:25] * bob quit (connection lost)
 *	[11:05:26] * bob is now robert
 *	[11:05:27] * #dev: alice, bob, carol
 *	[11:05:28] * rooms: #dev (3), #lobby (12)
 *	[11:05:29] * end of #dev history: 12 messages
 *	[11:05:30] ! /join: bad_room: ...
 *
 * The line is made from the event's members, not taken from its text, so
 * it says what the client understood; the text is shown for replies
 * (whose sentence is the server's to write) and for events this client
 * does not know. Every name and text in it came from someone else and
 * goes through output_escape().
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "xmalloc.h"

/* Names shown in the line of a names event nobody asked for. */
#define EVENT_NAMES_SHOWN	100

/* Write a peer's string, escaped. */
static void
event_put(FILE *f, const char *s)
{
	char	*safe = output_escape(s, strlen(s));

	fputs(safe, f);
	free(safe);
}

/* Write "[HH:MM:SS] " for now. */
static void
event_stamp(FILE *f)
{
	char	*clock = output_clock(NULL);

	fprintf(f, "[%s] ", clock);
	free(clock);
}

/*
 * Write a text of the server's (a reply) as lines of their own, each
 * escaped and stamped; an error's first line starts with "!" so that it
 * stands out whatever the server wrote.
 */
static void
event_text(FILE *f, const void *content, size_t len, int error)
{
	const char	*p = content, *end = p + len, *nl;
	size_t		 n;
	char		*safe;
	int		 first = 1;

	while (p < end) {
		nl = memchr(p, '\n', end - p);
		n = (nl != NULL ? nl : end) - p;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (!first)
			fputc('\n', f);
		event_stamp(f);
		if (first && error && (n == 0 || *p != '!'))
			fputs("! ", f);
		safe = output_escape(p, n);
		fputs(safe, f);
		free(safe);
		first = 0;
		p = nl != NULL ? nl + 1 : end;
	}
}

/* The list of a names event: "* #dev: alice, bob". */
static int
event_names(FILE *f, struct json_object *h, const char *room, int full)
{
	struct json_object	*names;
	const char		*nick;
	size_t			 i, n, shown = 0;

	if (room == NULL || !json_object_object_get_ex(h, "names", &names) ||
	    !json_object_is_type(names, json_type_array))
		return -1;
	n = json_object_array_length(names);
	fputs("* #", f);
	event_put(f, room);
	fputc(':', f);
	for (i = 0; i < n; i++) {
		nick = chat_str(json_object_array_get_idx(names, i), "nick");
		if (nick == NULL)
			continue;
		if (!full && shown == EVENT_NAMES_SHOWN) {
			fprintf(f, " and %zu more (/who #", n - i);
			event_put(f, room);
			fputs(" lists them)", f);
			return 0;
		}
		fputs(shown == 0 ? " " : ", ", f);
		event_put(f, nick);
		shown++;
	}
	if (chat_bool(h, "more"))
		fputs(", ...", f);
	return 0;
}

/* The list of a rooms event: "* rooms: #dev (3), #lobby (12)". */
static int
event_rooms(FILE *f, struct json_object *h)
{
	struct json_object	*rooms, *e;
	const char		*room;
	size_t			 i, n, shown = 0;

	if (!json_object_object_get_ex(h, "rooms", &rooms) ||
	    !json_object_is_type(rooms, json_type_array))
		return -1;
	n = json_object_array_length(rooms);
	fputs("* rooms:", f);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(rooms, i);
		if ((room = chat_str(e, "room")) == NULL)
			continue;
		fputs(shown++ == 0 ? " #" : ", #", f);
		event_put(f, room);
		fprintf(f, " (%llu)", (unsigned long long)chat_uint(e,
		    "members"));
	}
	if (shown == 0)
		fputs(" none", f);
	if (chat_bool(h, "more"))
		fputs(", ...", f);
	return 0;
}

/*
 * Write the line of an event made from its members; -1 when they are not
 * what CHAT.md says (the caller then shows the event's text).
 */
static int
event_line(FILE *f, const struct chat_frame *cf, struct json_object *h)
{
	const char	*e = cf->event, *room, *nick, *s;
	uint64_t	 n;

	room = chat_str(h, "room");
	nick = chat_str(h, "nick");
	if (strcmp(e, "join") == 0 || strcmp(e, "part") == 0) {
		if (room == NULL || nick == NULL)
			return -1;
		fputs("* ", f);
		event_put(f, nick);
		fputs(*e == 'j' ? " joined #" : " left #", f);
		event_put(f, room);
	} else if (strcmp(e, "quit") == 0) {
		if (nick == NULL)
			return -1;
		fputs("* ", f);
		event_put(f, nick);
		fputs(" quit", f);
		if ((s = chat_str(h, "reason")) != NULL) {
			fputs(" (", f);
			event_put(f, s);
			fputc(')', f);
		}
	} else if (strcmp(e, "nick") == 0) {
		if ((s = chat_str(h, "old")) == NULL || nick == NULL)
			return -1;
		fputs("* ", f);
		event_put(f, s);
		fputs(" is now ", f);
		event_put(f, nick);
	} else if (strcmp(e, "names") == 0)
		return event_names(f, h, room, cf->full);
	else if (strcmp(e, "rooms") == 0)
		return event_rooms(f, h);
	else if (strcmp(e, "history-end") == 0) {
		/* With an error (history_unavailable), the server's line says
		 * what is wrong: it is shown as it is. */
		if (room == NULL || chat_str(h, "error") != NULL)
			return -1;
		n = chat_uint(h, "replayed");
		fputs("* end of #", f);
		event_put(f, room);
		fprintf(f, " history: %llu message%s", (unsigned long long)n,
		    n == 1 ? "" : "s");
		if (chat_bool(h, "truncated"))
			fputs(" (older ones are gone)", f);
	} else
		return -1;
	return 0;
}

/*
 * The line or lines (separated by newlines) that show an event, as a heap
 * string, or NULL when it is not worth one (cf->quiet).
 */
char *
event_format(const struct chat_frame *cf, struct json_object *h,
    const void *content, size_t len)
{
	FILE		*f, *g;
	char		*buf = NULL, *line = NULL, *s;
	size_t		 size = 0, linelen = 0;
	const char	*cmd, *err;
	int		 rc;

	if (cf->quiet)
		return NULL;
	if ((f = open_memstream(&buf, &size)) == NULL)
		return NULL;
	if (strcmp(cf->event, "reply") == 0) {
		if (output_is_text(AC_CLIENT_TEXT_TYPE, content, len))
			event_text(f, content, len, cf->error);
		else {
			cmd = chat_str(h, "command");
			err = chat_str(h, "error");
			event_stamp(f);
			fputs(cf->error ? "! /" : "* /", f);
			event_put(f, cmd != NULL ? cmd : "?");
			fputs(": ", f);
			event_put(f, err != NULL ? err : cf->error ? "error" :
			    "ok");
		}
	} else {
		event_stamp(f);
		rc = -1;
		if ((g = open_memstream(&line, &linelen)) != NULL) {
			rc = event_line(g, cf, h);
			fclose(g);
		}
		if (rc == 0)
			fputs(line, f);
		else {
			s = output_escape(content, len);
			fputs(s, f);
			free(s);
		}
		free(line);
	}
	fclose(f);
	return buf;
}
