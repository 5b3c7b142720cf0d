/*
 * output.c - how the client shows what it receives, shared by both modes:
 * one line per message, plain ("[HH:MM:SS abcdef12] text", or from a chat
 * server "[HH:MM:SS] <alice> text") or one JSON object per line, and never
 * raw binary bytes on the terminal.
 *
 * Plain output is for a terminal that other people's words are written
 * to. A CR, LF or escape sequence in a message would let its sender draw
 * what looks like a line from someone else, or reprogram the terminal, so
 * every text that came over the network goes through output_escape():
 * what is printable stays as it is (non-ASCII included), the rest is shown
 * as an escape on the same line.
 */
#include "config.h"

#include <sys/time.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "cli.h"
#include "xmalloc.h"

/*
 * Length of the valid UTF-8 sequence at p (at most len bytes), or 0; its
 * code point goes to *cpp when cpp is not NULL.
 */
size_t
output_utf8_len(const unsigned char *p, size_t len, unsigned int *cpp)
{
	size_t		n, i;
	unsigned int	cp;

	if (p[0] < 0x80) {
		if (cpp != NULL)
			*cpp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values beyond Unicode. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	if (cpp != NULL)
		*cpp = cp;
	return n;
}

/*
 * Whether a code point beyond ASCII must not reach the terminal as it is:
 * the C1 controls (0x9b is CSI, 0x85 NEL), the line and paragraph
 * separators, and the bidirectional controls, which reorder what follows
 * them on the line (so a name or a URL could be made to read backwards).
 */
static int
output_unsafe_cp(unsigned int cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c ||
	    cp == 0x200e || cp == 0x200f || cp == 0x2028 || cp == 0x2029 ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Text from the network made fit for one line of a terminal, as a heap
 * string: printable UTF-8 (tab included) as it is; CR and LF as \r and
 * \n, other C0 controls and DEL as \xNN, bytes that are not valid UTF-8
 * as \xNN, unsafe code points (output_unsafe_cp) as \uNNNN. A backslash
 * is left as it is: nothing it forms can move the cursor.
 */
char *
output_escape(const void *text, size_t len)
{
	const unsigned char	*p = text;
	char			*out, *o;
	unsigned int		 cp;
	size_t			 i, n;

	/* An escape is at most 4 bytes per byte (\xNN; \uNNNN is 6 for 2). */
	out = o = ac_xreallocarray(NULL, len + 1, 4);
	for (i = 0; i < len; i += n) {
		if ((n = output_utf8_len(p + i, len - i, &cp)) == 0) {
			o += sprintf(o, "\\x%02x", p[i]);
			n = 1;
		} else if (cp == '\n')
			o += sprintf(o, "\\n");
		else if (cp == '\r')
			o += sprintf(o, "\\r");
		else if ((cp < 0x20 && cp != '\t') || cp == 0x7f)
			o += sprintf(o, "\\x%02x", cp);
		else if (output_unsafe_cp(cp))
			o += sprintf(o, "\\u%04x", cp);
		else {
			memcpy(o, p + i, n);
			o += n;
		}
	}
	*o = '\0';
	return out;
}

/* Whether a content type says its content is text (text/..., JSON). */
static int
output_declared_text(const char *content_type)
{
	return content_type != NULL &&
	    (strncasecmp(content_type, "text/", 5) == 0 ||
	    strncasecmp(content_type, "application/json", 16) == 0);
}

/*
 * Whether content may be shown as text: its type says text (or JSON, or is
 * the Python peer's default octet-stream, which it uses for typed text too)
 * and the bytes are valid UTF-8 without terminal control characters.
 */
int
output_is_text(const char *content_type, const void *content, size_t len)
{
	const unsigned char	*p = content;
	size_t			 i, n;

	if (content_type != NULL &&
	    strncasecmp(content_type, "text/", 5) != 0 &&
	    strncasecmp(content_type, "application/json", 16) != 0 &&
	    strcasecmp(content_type, "application/octet-stream") != 0)
		return 0;
	for (i = 0; i < len; i += n) {
		if (p[i] == 0x7f ||
		    (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' &&
		    p[i] != '\r'))
			return 0;
		if ((n = output_utf8_len(p + i, len - i, NULL)) == 0)
			return 0;
	}
	return 1;
}

/* Print a one-line error on stderr, prefixed with the program's name. */
void
output_error(const char *fmt, ...)
{
	va_list	ap;

	fflush(stdout);
	fputs("asyncchat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* The sender tag: the first 8 bytes of a session id, escaped (heap). */
static char *
output_tag(const char *session_id)
{
	if (session_id == NULL)
		return ac_xstrdup("-");
	return output_escape(session_id, strnlen(session_id, 8));
}

/*
 * Read a chat server's time stamp (CHAT.md: RFC 3339 in UTC, as
 * 2026-12-06T11:00:00.123Z) into *t; 0, or -1 if it is not one.
 */
static int
output_parse_stamp(const char *s, time_t *t)
{
	struct tm	tm;
	int		n = 0;

	memset(&tm, 0, sizeof tm);
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return -1;
	s += n;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	}
	if ((*s != 'Z' && *s != 'z') || s[1] != '\0')
		return -1;
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon--;
	*t = timegm(&tm);
	return 0;
}

/*
 * The clock shown before a line, as a heap string: the local time of a
 * chat server's stamp (a replayed message shows when it was said), or
 * of now when stamp is NULL or not one; HH:MM:SS, with the date before
 * it when that is not today's.
 */
char *
output_clock(const char *stamp)
{
	time_t		 now, t;
	struct tm	 tm, today;
	char		 buf[32];

	now = time(NULL);
	if (stamp == NULL || output_parse_stamp(stamp, &t) != 0)
		t = now;
	localtime_r(&t, &tm);
	localtime_r(&now, &today);
	if (tm.tm_year != today.tm_year || tm.tm_yday != today.tm_yday)
		strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	else
		strftime(buf, sizeof buf, "%H:%M:%S", &tm);
	return ac_xstrdup(buf);
}

/* The content of a message as shown in a plain line (heap). */
static char *
output_body(const char *content_type, const void *content, size_t len)
{
	char	*s, *body;

	/*
	 * Content its type calls text is shown, escaped, whatever bytes it
	 * holds; octet-stream (the Python peer's type for typed text) only
	 * when it looks like text.
	 */
	if (output_is_text(content_type, content, len) ||
	    output_declared_text(content_type))
		return output_escape(content, len);
	s = output_escape(content_type != NULL ? content_type :
	    "no content_type", content_type != NULL ? strlen(content_type) :
	    15);
	ac_xasprintf(&body, "<binary: %zu bytes, %s>", len, s);
	free(s);
	return body;
}

/*
 * A message the chat server stamped, as one line:
 * "[11:05:23] #dev <bob> hello". The room is shown when we are in more
 * than one; a direct message shows whom it is with as "@nick"; our own
 * messages say "(me)" after the nick, which no one else can write there
 * since a nick holds no white space.
 */
static char *
output_chat_line(const struct chat_frame *cf, const char *content_type,
    const void *content, size_t len)
{
	char	*clock, *where = NULL, *from, *body, *line;

	clock = output_clock(cf->time);
	from = output_escape(cf->from, strlen(cf->from));
	body = output_body(content_type, content, len);
	if (cf->room == NULL && cf->to != NULL) {
		where = output_escape(cf->own ? cf->to : cf->from,
		    strlen(cf->own ? cf->to : cf->from));
		ac_xasprintf(&line, "[%s] @%s <%s%s> %s", clock, where, from,
		    cf->own ? " (me)" : "", body);
	} else if (cf->room != NULL && cf->several) {
		where = output_escape(cf->room, strlen(cf->room));
		ac_xasprintf(&line, "[%s] #%s <%s%s> %s", clock, where, from,
		    cf->own ? " (me)" : "", body);
	} else
		ac_xasprintf(&line, "[%s] <%s%s> %s", clock, from,
		    cf->own ? " (me)" : "", body);
	free(where);
	free(body);
	free(from);
	free(clock);
	return line;
}

/*
 * The members a chat server's frame adds to a JSON line: for a message
 * the ones CHAT.md defines (another client's own extra members are not
 * the server's word, and could take the name of one of ours), for an
 * event everything the server put in it but what the line already has.
 */
static void
output_json_chat(struct json_object *obj, const struct chat_frame *cf,
    struct json_object *h)
{
	static const char *const	 message_keys[] = {
		"room", "to", "seq", NULL
	};
	struct json_object		*v;
	size_t				 i;

	if (cf->kind == CHAT_MESSAGE) {
		for (i = 0; message_keys[i] != NULL; i++) {
			if (json_object_object_get_ex(h, message_keys[i], &v))
				json_object_object_add(obj, message_keys[i],
				    json_object_get(v));
		}
		json_object_object_add(obj, "own",
		    json_object_new_boolean(cf->own));
		return;
	}
	json_object_object_foreach(h, key, val) {
		if (strcmp(key, "type") == 0 ||
		    strcmp(key, "content_type") == 0 ||
		    strcmp(key, "session_id") == 0 ||
		    json_object_object_get_ex(obj, key, NULL))
			continue;
		json_object_object_add(obj, key, json_object_get(val));
	}
}

/*
 * Format one received message as a heap string without a newline, or
 * NULL when it is not worth a line (an event cf says is quiet). h and cf
 * (from chat_take) may be NULL: the frame is then shown as ever.
 */
char *
output_format(const struct cli *cli, enum ac_msg_type type,
    const char *content_type, const char *session_id, const void *content,
    size_t len, struct json_object *h, const struct chat_frame *cf)
{
	struct json_object	*obj;
	struct timeval		 tv;
	struct tm		 tm;
	char			 hms[16], stamp[64], zone[8];
	char			*s, *tag, *body;
	unsigned char		*b64;
	int			 text, chat;

	chat = cf != NULL && (cf->kind == CHAT_MESSAGE ||
	    cf->kind == CHAT_EVENT);
	if (!cli->json && chat) {
		if (cf->kind == CHAT_EVENT)
			return event_format(cf, h, content, len);
		return output_chat_line(cf, content_type, content, len);
	}

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(hms, sizeof hms, "%H:%M:%S", &tm);
	text = output_is_text(content_type, content, len);

	if (!cli->json) {
		tag = output_tag(session_id);
		body = output_body(content_type, content, len);
		ac_xasprintf(&s, "[%s %s] %s", hms, tag, body);
		free(body);
		free(tag);
		return s;
	}

	obj = json_object_new_object();
	if (chat && cf->kind == CHAT_MESSAGE && cf->time != NULL)
		json_object_object_add(obj, "time",
		    json_object_new_string(cf->time));
	else {
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		strftime(zone, sizeof zone, "%z", &tm);
		ac_xasprintf(&s, "%s.%03ld%s", stamp, (long)tv.tv_usec / 1000,
		    zone);
		json_object_object_add(obj, "time", json_object_new_string(s));
		free(s);
	}
	if (chat) {
		/* The sender's nick; an event is the server's own. */
		json_object_object_add(obj, "from", cf->kind == CHAT_MESSAGE ?
		    json_object_new_string(cf->from) : NULL);
		json_object_object_add(obj, "session_id", session_id != NULL ?
		    json_object_new_string(session_id) : NULL);
	} else
		json_object_object_add(obj, "from", session_id != NULL ?
		    json_object_new_string(session_id) : NULL);
	json_object_object_add(obj, "type",
	    json_object_new_string(ac_msg_type_name(type)));
	json_object_object_add(obj, "content_type", content_type != NULL ?
	    json_object_new_string(content_type) : NULL);
	if (text) {
		json_object_object_add(obj, "content",
		    json_object_new_string_len(content, (int)len));
	} else {
		b64 = ac_xmalloc(4 * ((len + 2) / 3) + 1);
		EVP_EncodeBlock(b64, content, (int)len);
		json_object_object_add(obj, "content_base64",
		    json_object_new_string((char *)b64));
		free(b64);
		json_object_object_add(obj, "size",
		    json_object_new_int64((int64_t)len));
	}
	if (chat)
		output_json_chat(obj, cf, h);
	s = ac_xstrdup(json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	return s;
}
