/*
 * header_json.c - the header JSON spelled exactly as the Python peer spells
 * it.
 *
 * Python's json.dumps() writes {"type": "message", "content_type": ...} with
 * ", " and ": " separators and escapes everything outside printable ASCII as
 * \uXXXX (ensure_ascii). Any spelling is valid on the wire, since CRC and
 * HMAC cover the bytes as sent, but producing the same bytes makes our
 * frames identical to the original's for the same inputs, which is what the
 * test vectors check. json-c's own writer spaces differently and leaves
 * UTF-8 as is, so the fixed members are written here by hand.
 */
#include "config.h"

#include <sys/types.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include <asyncchat/frame.h>

#include "header_json.h"

/* Start an empty buffer. */
void
hjbuf_init(struct hjbuf *b)
{
	b->data = b->inline_store;
	b->len = 0;
	b->cap = sizeof b->inline_store;
	b->failed = 0;
}

/* Release what the buffer allocated. */
void
hjbuf_free(struct hjbuf *b)
{
	if (b->data != b->inline_store)
		free(b->data);
	hjbuf_init(b);
}

/* Make room for n more bytes; 0, or -1 with b->failed set. */
static int
hjbuf_reserve(struct hjbuf *b, size_t n)
{
	size_t	 want;
	char	*p;

	if (b->failed)
		return -1;
	if (b->cap - b->len >= n)
		return 0;
	want = b->cap * 2;
	while (want - b->len < n)
		want *= 2;
	if (b->data == b->inline_store) {
		if ((p = malloc(want)) != NULL)
			memcpy(p, b->data, b->len);
	} else
		p = realloc(b->data, want);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = want;
	return 0;
}

/*
 * Append n bytes. Inline, so that the many short constant pieces of a
 * header (", ", ": ", a quote) are stores rather than calls: a room
 * message's header was some thirty calls of this and of memcpy().
 */
static inline void
hjbuf_add(struct hjbuf *b, const void *s, size_t n)
{
	if (!b->failed && b->cap - b->len >= n) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
	} else if (hjbuf_reserve(b, n) == 0) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
	}
}

/* Append a NUL-terminated string. */
static void
hjbuf_puts(struct hjbuf *b, const char *s)
{
	hjbuf_add(b, s, strlen(s));
}

/* Append one \uXXXX escape. */
static void
hjbuf_add_u16(struct hjbuf *b, unsigned int cu)
{
	char	esc[7];

	snprintf(esc, sizeof esc, "\\u%04x", cu & 0xffff);
	hjbuf_add(b, esc, 6);
}

/*
 * Decode one UTF-8 sequence at s (n bytes left). Returns its length and sets
 * *cp, or returns 1 with *cp = U+FFFD for a byte that starts no valid
 * sequence (overlong forms, surrogates and values past U+10FFFF included).
 */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t	c, min;
	size_t		len, i;

	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		len = 2; min = 0x80; c &= 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3; min = 0x800; c &= 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4; min = 0x10000; c &= 0x07;
	} else
		goto bad;
	if (len > n)
		goto bad;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		goto bad;
	*cp = c;
	return len;
bad:
	*cp = 0xfffd;
	return 1;
}

/*
 * 1 for a byte that a JSON string holds as it is: printable ASCII but the
 * quote and the backslash. A table, read once a byte: the NUL that ends a
 * string is not one, so a run of them stops there too.
 */
static const unsigned char hjbuf_plain[256] = {
	/* 0x00 - 0x1f: control characters */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 0x20 - 0x2f: all but '"' */
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x50 - 0x5f: all but '\\' */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x70 - 0x7f: all but DEL; 0x80 - 0xff: none */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
};

/*
 * Append s as a JSON string literal with Python's ensure_ascii escaping.
 * Runs of bytes that need no escape are added at once: byte by byte,
 * writing the members of a chat message's frame took more instructions
 * than anything else done once per message. The run is found in the same
 * pass that finds the string's end (no strlen first).
 */
static void
hjbuf_add_string(struct hjbuf *b, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s, *q;
	size_t			 used;
	uint32_t		 cp;

	hjbuf_add(b, "\"", 1);
	for (;;) {
		for (q = p; hjbuf_plain[*q]; q++)
			;
		if (q != p) {
			hjbuf_add(b, p, (size_t)(q - p));
			p = q;
		}
		if (*p == '\0')
			break;
		/* A sequence is at most 4 bytes, none of them NUL. */
		used = utf8_next(p, strnlen((const char *)p, 4), &cp);
		p += used;
		switch (cp) {
		case '"':  hjbuf_add(b, "\\\"", 2); continue;
		case '\\': hjbuf_add(b, "\\\\", 2); continue;
		case '\n': hjbuf_add(b, "\\n", 2); continue;
		case '\r': hjbuf_add(b, "\\r", 2); continue;
		case '\t': hjbuf_add(b, "\\t", 2); continue;
		case '\b': hjbuf_add(b, "\\b", 2); continue;
		case '\f': hjbuf_add(b, "\\f", 2); continue;
		}
		if (cp >= 0x20 && cp <= 0x7e) {
			char c = (char)cp;
			hjbuf_add(b, &c, 1);
		} else if (cp < 0x10000)
			hjbuf_add_u16(b, cp);
		else {
			cp -= 0x10000;
			hjbuf_add_u16(b, 0xd800 | (cp >> 10));
			hjbuf_add_u16(b, 0xdc00 | (cp & 0x3ff));
		}
	}
	hjbuf_add(b, "\"", 1);
}

/*
 * Append a 64-bit integer in decimal, as json-c spells it. Chat's `seq`
 * is one in every room message: json-c's writer took about 2,400
 * instructions for it (a printbuf and a format per call), more than the
 * rest of the header.
 */
static void
hjbuf_add_int64(struct hjbuf *b, int64_t v)
{
	char		 digits[20], *p = digits + sizeof digits;
	uint64_t	 u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		hjbuf_add(b, "-", 1);
	hjbuf_add(b, p, (size_t)(digits + sizeof digits - p));
}

/* Append `, "name": value` for one extra member. */
static void
hjbuf_add_member(struct hjbuf *b, const char *name, struct json_object *val)
{
	int64_t	v;

	hjbuf_add(b, ", ", 2);
	hjbuf_add_string(b, name);
	hjbuf_add(b, ": ", 2);
	if (json_object_is_type(val, json_type_string))
		hjbuf_add_string(b, json_object_get_string(val));
	else if (json_object_is_type(val, json_type_int) &&
	    (v = json_object_get_int64(val)) != INT64_MAX)
		hjbuf_add_int64(b, v);	/* INT64_MAX may be a larger uint64 */
	else if (val == NULL)
		hjbuf_puts(b, "null");
	else
		hjbuf_puts(b, json_object_to_json_string_ext(val,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Non-zero for the name of a member the header writes itself (its first
 * byte tells most others apart without a strcmp). */
static inline int
header_json_is_fixed(const char *key)
{
	switch (key[0]) {
	case 't':
		return (strcmp(key, "type") == 0);
	case 'c':
		return (strcmp(key, "content_type") == 0);
	case 's':
		return (strcmp(key, "session_id") == 0);
	}
	return (0);
}

/* Write the Python-spelled header JSON for these members into b; 0 or -1. */
int
header_json_build(struct hjbuf *b, enum ac_msg_type type,
    const char *content_type, const char *session_id,
    struct json_object *extra)
{
	const char	*name;

	if ((name = ac_msg_type_name(type)) == NULL)
		return -1;
	if (extra != NULL && !json_object_is_type(extra, json_type_object))
		return -1;

	hjbuf_puts(b, "{\"type\": ");
	hjbuf_add_string(b, name);
	hjbuf_puts(b, ", \"content_type\": ");
	if (content_type != NULL)
		hjbuf_add_string(b, content_type);
	else
		hjbuf_puts(b, "null");
	hjbuf_puts(b, ", \"session_id\": ");
	if (session_id != NULL)
		hjbuf_add_string(b, session_id);
	else
		hjbuf_puts(b, "null");
	if (extra != NULL) {
		json_object_object_foreach(extra, key, val) {
			/* The fixed members are ours; a duplicate would be
			 * ambiguous to a receiver. */
			if (header_json_is_fixed(key))
				continue;
			hjbuf_add_member(b, key, val);
		}
	}
	hjbuf_add(b, "}", 1);
	return b->failed ? -1 : 0;
}

/* Write a disconnect frame's JSON content for reason into out; 0 or -1. */
int
ac_disconnect_content(struct evbuffer *out, const char *reason)
{
	struct hjbuf	b;
	int		rc = 0;

	hjbuf_init(&b);
	hjbuf_puts(&b, "{\"message\": \"Disconnecting\", \"reason\": ");
	hjbuf_add_string(&b, reason != NULL ? reason : "");
	hjbuf_add(&b, "}", 1);
	if (b.failed || evbuffer_add(out, b.data, b.len) != 0)
		rc = -1;
	hjbuf_free(&b);
	return rc;
}

/* Write the Python-style header JSON for the given members into out. */
int
ac_header_json_write(struct evbuffer *out, enum ac_msg_type type,
    const char *content_type, const char *session_id,
    struct json_object *extra)
{
	struct hjbuf	b;
	int		rc;

	hjbuf_init(&b);
	rc = header_json_build(&b, type, content_type, session_id, extra);
	if (rc == 0 && evbuffer_add(out, b.data, b.len) != 0)
		rc = -1;
	hjbuf_free(&b);
	return rc;
}

/*
 * Write the Python-style header JSON for the given members into buf, as
 * much as fits in cap bytes; returns its whole length (more than cap: buf
 * holds nothing of use), or -1.
 */
ssize_t
ac_header_json_build(void *buf, size_t cap, enum ac_msg_type type,
    const char *content_type, const char *session_id,
    struct json_object *extra)
{
	struct hjbuf	b;
	ssize_t		rc = -1;

	hjbuf_init(&b);
	if (header_json_build(&b, type, content_type, session_id, extra) == 0 &&
	    b.len <= SSIZE_MAX) {
		if (b.len <= cap)
			memcpy(buf, b.data, b.len);
		rc = (ssize_t)b.len;
	}
	hjbuf_free(&b);
	return rc;
}
