/*
 * output.c - how the client shows what it receives, shared by both modes:
 * one line per message, plain ("[HH:MM:SS abcdef12] text") or one JSON
 * object per line, and never raw binary bytes on the terminal.
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
static size_t
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

/* Format one received message as a heap string without a newline. */
char *
output_format(const struct cli *cli, enum ac_msg_type type,
    const char *content_type, const char *session_id, const void *content,
    size_t len)
{
	struct json_object	*obj;
	struct timeval		 tv;
	struct tm		 tm;
	char			 hms[16], stamp[64], zone[8];
	char			*s, *tag, *body;
	unsigned char		*b64;
	int			 text;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(hms, sizeof hms, "%H:%M:%S", &tm);
	text = output_is_text(content_type, content, len);

	if (!cli->json) {
		/*
		 * Content its type calls text is shown, escaped, whatever
		 * bytes it holds; octet-stream (the Python peer's type for
		 * typed text) only when it looks like text.
		 */
		tag = output_tag(session_id);
		if (text || output_declared_text(content_type))
			body = output_escape(content, len);
		else {
			s = output_escape(content_type != NULL ? content_type :
			    "no content_type", content_type != NULL ?
			    strlen(content_type) : 15);
			ac_xasprintf(&body, "<binary: %zu bytes, %s>", len, s);
			free(s);
		}
		ac_xasprintf(&s, "[%s %s] %s", hms, tag, body);
		free(body);
		free(tag);
		return s;
	}

	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof zone, "%z", &tm);
	ac_xasprintf(&s, "%s.%03ld%s", stamp, (long)tv.tv_usec / 1000, zone);
	obj = json_object_new_object();
	json_object_object_add(obj, "time", json_object_new_string(s));
	free(s);
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
	s = ac_xstrdup(json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	return s;
}
