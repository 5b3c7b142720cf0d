/*
 * output.c - how the client shows what it receives, shared by both modes:
 * one line per message, plain ("[HH:MM:SS abcdef12] text") or one JSON
 * object per line, and never raw binary bytes on the terminal.
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

/* Length of the valid UTF-8 sequence at p (at most len bytes), or 0. */
static size_t
output_utf8_len(const unsigned char *p, size_t len)
{
	size_t		n, i;
	unsigned int	cp;

	if (p[0] < 0x80)
		return 1;
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
	return n;
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
		if ((n = output_utf8_len(p + i, len - i)) == 0)
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

/* The first 8 characters of a session id, the sender tag. */
static void
output_tag(const char *session_id, char *tag, size_t len)
{
	snprintf(tag, len, "%.8s", session_id != NULL ? session_id : "-");
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
	char			 tag[16], hms[16], stamp[64], zone[8], *s;
	unsigned char		*b64;
	int			 text;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(hms, sizeof hms, "%H:%M:%S", &tm);
	text = output_is_text(content_type, content, len);

	if (!cli->json) {
		output_tag(session_id, tag, sizeof tag);
		if (text)
			ac_xasprintf(&s, "[%s %s] %.*s", hms, tag, (int)len,
			    (const char *)content);
		else
			ac_xasprintf(&s, "[%s %s] <binary: %zu bytes, %s>",
			    hms, tag, len, content_type != NULL ?
			    content_type : "no content_type");
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
