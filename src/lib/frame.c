/*
 * frame.c - encoding and the two-step decoding of wire frames.
 *
 * Decoding is split where a stream reader has to make a decision: the 64-byte
 * fixed header alone says whether the stream can still be framed (checks 1-3)
 * and how long the frame is, so a reader can refuse an oversized frame before
 * buffering any of it and can set its read watermark to the frame's length.
 * The body checks (4-7) then run on a complete frame. The order of the checks
 * is part of the protocol: a receiver must name the first one that fails.
 *
 * Check 6 reads the header JSON in place (header_scan.c) and a decoded
 * message's two strings share one small allocation; json-c parses the
 * header into an object only when asked to (at once by default, on first
 * use with AC_DECODE_LAZY_HEADER). CRC-32 is libdeflate's, which folds
 * with carry-less multiplication where the CPU has it: zlib 1.2.13's
 * table-driven CRC was a fifth of a small frame's decoding and a quarter
 * of a 4 KiB one's.
 *
 * Why one file past 700 lines: encoding, the fixed header and the body
 * checks, and the lookups of header members in a frame's bytes all rest
 * on the same layout and the same order of checks; a reader who changes
 * one should see the others.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>
#include <libdeflate.h>

#include <asyncchat/frame.h>
#include <asyncchat/key.h>

#include "header_json.h"
#include "header_scan.h"

/* Nesting deeper than this in a header is refused (no legitimate use). */
#define HEADER_MAX_DEPTH	32

static const char *const msg_type_names[AC_MSG_TYPE_COUNT] = {
	[AC_MSG_SESSION_INIT] = "session_init",
	[AC_MSG_SESSION_ACK] = "session_ack",
	[AC_MSG_HEARTBEAT] = "heartbeat",
	[AC_MSG_MESSAGE] = "message",
	[AC_MSG_CHUNK] = "chunk",
	[AC_MSG_ERROR] = "error",
	[AC_MSG_DISCONNECT] = "disconnect",
};

/* The lengths of msg_type_names, for matching names that are not C strings. */
static const size_t msg_type_lens[AC_MSG_TYPE_COUNT] = {
	[AC_MSG_SESSION_INIT] = 12,
	[AC_MSG_SESSION_ACK] = 11,
	[AC_MSG_HEARTBEAT] = 9,
	[AC_MSG_MESSAGE] = 7,
	[AC_MSG_CHUNK] = 5,
	[AC_MSG_ERROR] = 5,
	[AC_MSG_DISCONNECT] = 10,
};

static const struct {
	const char	*name;
	const char	*text;
} status_table[] = {
	[AC_FRAME_OK] = { "ok", "frame is valid" },
	[AC_FRAME_NEED_MORE] = { "need_more", "frame is incomplete" },
	[AC_FRAME_BAD_MAGIC] = { "bad_magic",
	    "frame does not start with the protocol magic bytes" },
	[AC_FRAME_BAD_VERSION] = { "bad_version",
	    "unsupported protocol version" },
	[AC_FRAME_HEADER_TOO_LARGE] = { "header_too_large",
	    "header JSON is longer than the limit" },
	[AC_FRAME_CONTENT_TOO_LARGE] = { "content_too_large",
	    "content is longer than the limit" },
	[AC_FRAME_HEADER_CRC] = { "header_crc",
	    "header JSON does not match its CRC-32" },
	[AC_FRAME_CONTENT_CRC] = { "content_crc",
	    "content does not match its CRC-32" },
	[AC_FRAME_HMAC] = { "hmac",
	    "HMAC-SHA256 does not match: wrong key or altered frame" },
	[AC_FRAME_BAD_HEADER] = { "bad_header",
	    "header is not a JSON object with a known string \"type\"" },
	[AC_FRAME_EMPTY_CONTENT] = { "empty_content",
	    "content is empty" },
};

/* Fill limits with the protocol defaults (64 KiB header, 10 MiB content). */
void
ac_limits_default(struct ac_limits *limits)
{
	limits->max_header_len = AC_DEFAULT_MAX_HEADER;
	limits->max_content_len = AC_DEFAULT_MAX_CONTENT;
}

/* Short stable token for a status, as PROTOCOL.md names it ("bad_magic"). */
const char *
ac_frame_status_name(enum ac_frame_status status)
{
	if ((size_t)status >= sizeof status_table / sizeof status_table[0])
		return "unknown";
	return status_table[status].name;
}

/* One-sentence human description of a status. */
const char *
ac_frame_status_text(enum ac_frame_status status)
{
	if ((size_t)status >= sizeof status_table / sizeof status_table[0])
		return "unknown status";
	return status_table[status].text;
}

/* Non-zero when the status means the stream can no longer be framed (1-3). */
int
ac_frame_status_is_fatal(enum ac_frame_status status)
{
	return status >= AC_FRAME_BAD_MAGIC &&
	    status <= AC_FRAME_CONTENT_TOO_LARGE;
}

/* The wire name of a message type ("session_init"). */
const char *
ac_msg_type_name(enum ac_msg_type type)
{
	if ((unsigned int)type >= AC_MSG_TYPE_COUNT)
		return NULL;
	return msg_type_names[type];
}

/* Parse a wire type name; returns 0 and sets *type, or -1 if unknown. */
int
ac_msg_type_parse(const char *name, enum ac_msg_type *type)
{
	unsigned int	i;

	for (i = 0; i < AC_MSG_TYPE_COUNT; i++) {
		if (strcmp(name, msg_type_names[i]) == 0) {
			*type = (enum ac_msg_type)i;
			return 0;
		}
	}
	return -1;
}

/* Read a big-endian 16-bit value. */
static uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Read a big-endian 32-bit value. */
static uint32_t
get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* Read a big-endian 64-bit value. */
static uint64_t
get_be64(const uint8_t *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

/* Write a big-endian 16-bit value. */
static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* Write a big-endian 32-bit value. */
static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

/* Write a big-endian 64-bit value. */
static void
put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* CRC-32 as zlib computes it (libdeflate's gives the same), any length. */
static uint32_t
crc32_of(const uint8_t *p, size_t len)
{
	return libdeflate_crc32(0, p, len);
}

/*
 * Step 1: check the 64 bytes at buf (magic, version, both size limits, and
 * that the frame's length fits in size_t) and convert them to host order.
 * Looks at nothing beyond those 64 bytes.
 */
enum ac_frame_status
ac_fixed_header_parse(const uint8_t *buf, const struct ac_limits *limits,
    struct ac_fixed_header *fh)
{
	struct ac_limits	defaults;

	if (limits == NULL) {
		ac_limits_default(&defaults);
		limits = &defaults;
	}
	if (memcmp(buf, AC_MAGIC, AC_MAGIC_LEN) != 0)
		return AC_FRAME_BAD_MAGIC;
	fh->version = get_be16(buf + 8);
	if (fh->version != AC_PROTOCOL_VERSION)
		return AC_FRAME_BAD_VERSION;
	fh->msg_type = get_be16(buf + 10);
	fh->header_len = get_be32(buf + 12);
	fh->header_crc = get_be32(buf + 16);
	fh->content_len = get_be64(buf + 20);
	fh->content_crc = get_be32(buf + 28);
	memcpy(fh->hmac, buf + 32, AC_HMAC_LEN);
	if (fh->header_len > limits->max_header_len)
		return AC_FRAME_HEADER_TOO_LARGE;
	if (fh->content_len > limits->max_content_len)
		return AC_FRAME_CONTENT_TOO_LARGE;

	/*
	 * Whatever the limits, the whole frame's length must fit in size_t,
	 * or ac_fixed_header_frame_len() would wrap round to a short length
	 * and a reader would decode a body it never buffered. Each length is
	 * checked against the room the parts before it leave, in the order
	 * of check 3, so the token names the part that does not fit: only
	 * the content can overflow where size_t has 64 bits.
	 */
#if SIZE_MAX <= UINT32_MAX
	if (fh->header_len > SIZE_MAX - AC_FIXED_HEADER_LEN)
		return AC_FRAME_HEADER_TOO_LARGE;
#endif
	if (fh->content_len >
	    (uint64_t)SIZE_MAX - AC_FIXED_HEADER_LEN - fh->header_len)
		return AC_FRAME_CONTENT_TOO_LARGE;
	return AC_FRAME_OK;
}

/*
 * Whole frame length (fixed header + header JSON + content) of a header
 * that ac_fixed_header_parse() accepted, which guarantees that it fits.
 */
size_t
ac_fixed_header_frame_len(const struct ac_fixed_header *fh)
{
	return AC_FIXED_HEADER_LEN + (size_t)fh->header_len +
	    (size_t)fh->content_len;
}

/*
 * One tokener per thread, made on first use and reset before each parse:
 * making and freeing one per frame (with its depth stack) was a tenth of
 * a small frame's decoding. It stays reachable through the thread-local
 * pointer until the thread or process ends.
 *
 * json_tokener_reset() does not forget a high surrogate (\ud83d) whose
 * low half had not come when a parse failed: the next parse, whoever's
 * frame it is, joins it to its own first \u escape. Only bytes that the
 * scan accepted come here, and json-c fails on none of them, but should a
 * parse fail anyway (memory), the tokener is dropped, not reused.
 */
static __thread struct json_tokener	*header_tok;

/* Parse header JSON bytes strictly into an object; NULL if not one. */
static struct json_object *
parse_header_object(const uint8_t *json, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*obj;
	size_t			 end;

	if (len == 0 || len > INT32_MAX)
		return NULL;
	if ((tok = header_tok) == NULL) {
		if ((tok = json_tokener_new_ex(HEADER_MAX_DEPTH)) == NULL)
			return NULL;
		header_tok = tok;
	} else
		json_tokener_reset(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, (const char *)json, (int)len);
	if (obj == NULL ||
	    json_tokener_get_error(tok) != json_tokener_success) {
		json_tokener_free(tok);
		header_tok = NULL;
		goto fail;
	}

	/* Only white space may follow the object, as in Python's loads(). */
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (json[end] != ' ' && json[end] != '\t' &&
		    json[end] != '\n' && json[end] != '\r')
			goto fail;
	}
	if (!json_object_is_type(obj, json_type_object))
		goto fail;
	return obj;
fail:
	json_object_put(obj);
	return NULL;
}

/* A string member of obj, or NULL when absent, null or not a string. */
static const char *
object_string(struct json_object *obj, const char *name)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(obj, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * The message type a scanned `type` member names; 0, or -1 if it is not a
 * string or names no type. A value holding U+0000 names none (json-c's
 * C string would have stopped at the NUL and matched a prefix).
 */
static int
frame_type(const struct header_scan_value *v, enum ac_msg_type *type)
{
	char		 text[16];
	const char	*name;
	size_t		 len;
	unsigned int	 i;

	if (v->kind != HEADER_SCAN_STRING)
		return -1;
	if (v->escaped) {
		len = header_scan_decode(v, text, sizeof text);
		if (len >= sizeof text || memchr(text, '\0', len) != NULL)
			return -1;
		name = text;
	} else {
		len = v->len;
		name = (const char *)v->raw;
	}
	for (i = 0; i < AC_MSG_TYPE_COUNT; i++) {
		if (msg_type_lens[i] == len &&
		    memcmp(name, msg_type_names[i], len) == 0) {
			*type = (enum ac_msg_type)i;
			return 0;
		}
	}
	return -1;
}

/*
 * Decode one scanned string member to a C string at *at, advancing *at
 * past it; NULL (and *at unchanged) if it is not a string or holds a NUL.
 */
static const char *
frame_string(const struct header_scan_value *v, char **at)
{
	char	*s = *at;
	size_t	 len;

	if (v->kind != HEADER_SCAN_STRING)
		return NULL;
	len = header_scan_decode(v, s, v->len);
	/* Only an escape can make a NUL: the scan refuses raw ones. */
	if (v->escaped && memchr(s, '\0', len) != NULL)
		return NULL;
	s[len] = '\0';
	*at = s + len + 1;
	return s;
}

/*
 * The storage of a decoded message's two strings: its size, then the
 * strings. Each thread keeps the last one a message released, so that a
 * receiver decoding frame after frame allocates none (a malloc and a
 * free were a tenth of a small frame's decoding, the MAC aside); like the
 * tokener, it stays reachable through the thread-local pointer.
 */
struct strings_block {
	size_t	size;
	char	text[];
};
#define STRINGS_KEEP_MAX	256
static __thread struct strings_block	*strings_spare;

/* A block for size bytes of strings: the thread's spare, or a new one. */
static struct strings_block *
strings_get(size_t size)
{
	struct strings_block	*b;

	if ((b = strings_spare) != NULL && b->size >= size) {
		strings_spare = NULL;
		return b;
	}
	if ((b = malloc(sizeof *b + size)) == NULL)
		return NULL;
	b->size = size;
	return b;
}

/* Release a block: kept as the thread's spare if small, else freed. */
static void
strings_put(struct strings_block *b)
{
	if (b->size > STRINGS_KEEP_MAX) {
		free(b);
		return;
	}
	if (strings_spare != NULL) {
		if (strings_spare->size >= b->size) {
			free(b);
			return;
		}
		free(strings_spare);
	}
	strings_spare = b;
}

/*
 * Fill msg's content_type and session_id from the scan. Both live in one
 * block whose text starts with the first of them that is not NULL, which
 * is how ac_message_clear() finds it. 0, or -1 if memory ran out.
 */
static int
frame_strings(struct ac_message *msg, const struct header_scan *hs)
{
	struct strings_block	*b;
	size_t			 size = 0;
	char			*at;

	if (hs->content_type.kind == HEADER_SCAN_STRING)
		size += hs->content_type.len + 1;
	if (hs->session_id.kind == HEADER_SCAN_STRING)
		size += hs->session_id.len + 1;
	if (size == 0)
		return 0;
	if ((b = strings_get(size)) == NULL)
		return -1;
	at = b->text;
	msg->content_type = frame_string(&hs->content_type, &at);
	msg->session_id = frame_string(&hs->session_id, &at);
	if (at == b->text)
		strings_put(b);
	return 0;
}

/*
 * Step 2: check the body (header_len + content_len bytes at body, which must
 * all be present): CRCs, HMAC, header JSON, non-empty content.
 */
enum ac_frame_status
ac_frame_decode_body_flags(const struct ac_key *key,
    const struct ac_fixed_header *fh, const uint8_t *body,
    struct ac_message *msg, unsigned int flags)
{
	const uint8_t		*hj = body, *content = body + fh->header_len;
	struct header_scan	 hs;
	enum ac_msg_type	 type;

	memset(msg, 0, sizeof *msg);
	if (crc32_of(hj, fh->header_len) != fh->header_crc)
		return AC_FRAME_HEADER_CRC;
	if (crc32_of(content, fh->content_len) != fh->content_crc)
		return AC_FRAME_CONTENT_CRC;
	if (!ac_key_verify(key, hj, fh->header_len, content, fh->content_len,
	    fh->hmac))
		return AC_FRAME_HMAC;

	if (header_scan(hj, fh->header_len, &hs) != 0 ||
	    frame_type(&hs.type, &type) != 0)
		return AC_FRAME_BAD_HEADER;
	if (fh->content_len == 0)
		return AC_FRAME_EMPTY_CONTENT;

	/* Running out of memory has always read as bad_header here. */
	if (frame_strings(msg, &hs) != 0)
		return AC_FRAME_BAD_HEADER;
	if (!(flags & AC_DECODE_LAZY_HEADER) &&
	    (msg->header = parse_header_object(hj, fh->header_len)) == NULL) {
		ac_message_clear(msg);
		return AC_FRAME_BAD_HEADER;
	}
	msg->type = type;
	msg->header_json = hj;
	msg->header_json_len = fh->header_len;
	msg->content = content;
	msg->content_len = fh->content_len;
	return AC_FRAME_OK;
}

/* Step 2, building the header object at once. */
enum ac_frame_status
ac_frame_decode_body(const struct ac_key *key,
    const struct ac_fixed_header *fh, const uint8_t *body,
    struct ac_message *msg)
{
	return ac_frame_decode_body_flags(key, fh, body, msg, 0);
}

/* Both steps over a contiguous buffer, with flags. */
enum ac_frame_status
ac_frame_decode_flags(const struct ac_key *key, const struct ac_limits *limits,
    const uint8_t *buf, size_t len, size_t *consumed, struct ac_message *msg,
    unsigned int flags)
{
	struct ac_fixed_header	fh;
	enum ac_frame_status	st;
	size_t			flen;

	*consumed = 0;
	memset(msg, 0, sizeof *msg);
	if (len < AC_FIXED_HEADER_LEN)
		return AC_FRAME_NEED_MORE;
	if ((st = ac_fixed_header_parse(buf, limits, &fh)) != AC_FRAME_OK)
		return st;
	flen = ac_fixed_header_frame_len(&fh);
	if (len < flen)
		return AC_FRAME_NEED_MORE;
	*consumed = flen;
	return ac_frame_decode_body_flags(key, &fh, buf + AC_FIXED_HEADER_LEN,
	    msg, flags);
}

/* Both steps over a contiguous buffer. */
enum ac_frame_status
ac_frame_decode(const struct ac_key *key, const struct ac_limits *limits,
    const uint8_t *buf, size_t len, size_t *consumed, struct ac_message *msg)
{
	return ac_frame_decode_flags(key, limits, buf, len, consumed, msg, 0);
}

/* Release what a successfully decoded message owns; safe on a zeroed one. */
void
ac_message_clear(struct ac_message *msg)
{
	const char	*first;

	if (msg->header != NULL)
		json_object_put(msg->header);
	/* The strings' block's text starts with the first of them. */
	first = msg->content_type != NULL ? msg->content_type :
	    msg->session_id;
	if (first != NULL)
		strings_put((struct strings_block *)(void *)(first -
		    offsetof(struct strings_block, text)));
	memset(msg, 0, sizeof *msg);
}

/* The parsed header object of a decoded message, built on first use. */
struct json_object *
ac_message_header(const struct ac_message *msg)
{
	struct ac_message	*m = (struct ac_message *)msg;

	/* The scan accepted these bytes, so json-c does too. */
	if (m->header == NULL && m->header_json != NULL)
		m->header = parse_header_object(m->header_json,
		    m->header_json_len);
	return m->header;
}

/* String member `name` of a decoded header, or NULL if absent or not one. */
const char *
ac_message_get_string(const struct ac_message *msg, const char *name)
{
	struct json_object	*header;

	if (msg->header_json != NULL) {
		if (strcmp(name, "content_type") == 0)
			return msg->content_type;
		if (strcmp(name, "session_id") == 0)
			return msg->session_id;
	}
	if ((header = ac_message_header(msg)) == NULL)
		return NULL;
	return object_string(header, name);
}

/* What a member look-up is after, and what it found. */
struct frame_lookup {
	const char			*name;
	size_t				 len;
	const char *const		*names;
	size_t				 nnames;
	struct header_scan_value	 found;
	size_t				 other;
};

/* One member of the walk: keep it if it is the one looked for. */
static int
frame_lookup_cb(const struct header_scan_value *name,
    const struct header_scan_value *value, void *arg)
{
	struct frame_lookup	*fl = arg;

	if (header_scan_name_is(name, fl->name, fl->len))
		fl->found = *value;	/* the last one counts */
	return 0;
}

/* Fill m from a value the walk found (or did not: kind 0). */
static enum ac_member_kind
frame_member_fill(const struct header_scan_value *v, struct ac_member *m)
{
	memset(m, 0, sizeof *m);
	switch (v->kind) {
	case HEADER_SCAN_STRING:
		m->kind = AC_MEMBER_STRING;
		break;
	case HEADER_SCAN_OTHER:
		/* The scan takes null in lower case only. */
		m->kind = v->len == 4 && memcmp(v->raw, "null", 4) == 0 ?
		    AC_MEMBER_NULL : AC_MEMBER_OTHER;
		break;
	default:
		return AC_MEMBER_ABSENT;
	}
	m->raw = v->raw;
	m->raw_len = v->len;
	m->escaped = v->escaped;
	return m->kind;
}

/* Find a top-level member of a decoded header in its bytes. */
enum ac_member_kind
ac_message_member(const struct ac_message *msg, const char *name,
    struct ac_member *m)
{
	struct frame_lookup	fl;

	memset(m, 0, sizeof *m);
	if (msg->header_json == NULL)
		return AC_MEMBER_ABSENT;
	memset(&fl, 0, sizeof fl);
	fl.name = name;
	fl.len = strlen(name);
	if (header_scan_walk(msg->header_json, msg->header_json_len,
	    frame_lookup_cb, &fl) != 0)
		return AC_MEMBER_ABSENT;
	return frame_member_fill(&fl.found, m);
}

/* What ac_message_members() looks for, and what it has found. */
struct frame_members {
	const char *const		*names;
	size_t				 n;
	size_t				 lens[AC_MEMBERS_MAX];
	struct header_scan_value	 found[AC_MEMBERS_MAX];
	const char *const		*known;
	size_t				 nknown;
	int				 other;
};

/* One member of the walk: keep it if it is one looked for, else see
 * whether it is known. */
static int
frame_members_cb(const struct header_scan_value *name,
    const struct header_scan_value *value, void *arg)
{
	struct frame_members	*fm = arg;
	size_t			 i;

	for (i = 0; i < fm->n; i++) {
		if (header_scan_name_is(name, fm->names[i], fm->lens[i])) {
			fm->found[i] = *value;	/* the last one counts */
			return 0;
		}
	}
	if (fm->other)
		return 0;
	for (i = 0; i < fm->nknown; i++) {
		if (header_scan_name_is(name, fm->known[i],
		    strlen(fm->known[i])))
			return 0;
	}
	fm->other = 1;
	return 0;
}

/* Several members of a decoded header, and whether it has others, in one
 * walk of its bytes. */
int
ac_message_members(const struct ac_message *msg, const char *const *names,
    size_t n, struct ac_member *m, const char *const *known, size_t nknown)
{
	struct frame_members	fm;
	size_t			i;

	if (n > AC_MEMBERS_MAX)
		return -1;
	memset(&fm, 0, sizeof fm);
	fm.names = names;
	fm.n = n;
	fm.known = known;
	fm.nknown = nknown;
	for (i = 0; i < n; i++)
		fm.lens[i] = strlen(names[i]);
	if (msg->header_json == NULL || header_scan_walk(msg->header_json,
	    msg->header_json_len, frame_members_cb, &fm) != 0) {
		for (i = 0; i < n; i++)
			memset(&m[i], 0, sizeof m[i]);
		return 0;
	}
	for (i = 0; i < n; i++)
		frame_member_fill(&fm.found[i], &m[i]);
	return fm.other;
}

/* The decoded value of a string member (its first cap bytes into buf). */
size_t
ac_member_string(const struct ac_member *m, char *buf, size_t cap)
{
	struct header_scan_value	v;

	if (m->kind != AC_MEMBER_STRING)
		return 0;
	v.kind = HEADER_SCAN_STRING;
	v.raw = m->raw;
	v.len = m->raw_len;
	v.escaped = m->escaped;
	return header_scan_decode(&v, buf, cap);
}

/* One member of the walk: stop at the first with none of the names. */
static int
frame_other_cb(const struct header_scan_value *name,
    const struct header_scan_value *value, void *arg)
{
	struct frame_lookup	*fl = arg;
	size_t			 i;

	(void)value;
	for (i = 0; i < fl->nnames; i++) {
		if (header_scan_name_is(name, fl->names[i],
		    strlen(fl->names[i])))
			return 0;
	}
	fl->other = 1;
	return 1;
}

/* Does a decoded header have a member named none of names? */
int
ac_message_has_other(const struct ac_message *msg,
    const char *const *names, size_t nnames)
{
	struct frame_lookup	fl;

	if (msg->header_json == NULL)
		return 0;
	memset(&fl, 0, sizeof fl);
	fl.names = names;
	fl.nnames = nnames;
	if (header_scan_walk(msg->header_json, msg->header_json_len,
	    frame_other_cb, &fl) != 0)
		return 0;
	return (fl.other != 0);
}

/* Append the fixed header and both parts of a frame to out. */
static int
frame_append(struct evbuffer *out, const struct ac_key *key,
    const void *header_json, size_t header_len,
    const void *content, size_t content_len)
{
	uint8_t	fixed[AC_FIXED_HEADER_LEN];

	if (content_len == 0 || header_len > UINT32_MAX)
		return -1;
	memcpy(fixed, AC_MAGIC, AC_MAGIC_LEN);
	put_be16(fixed + 8, AC_PROTOCOL_VERSION);
	put_be16(fixed + 10, 0);
	put_be32(fixed + 12, (uint32_t)header_len);
	put_be32(fixed + 16, crc32_of(header_json, header_len));
	put_be64(fixed + 20, content_len);
	put_be32(fixed + 28, crc32_of(content, content_len));
	ac_key_mac(key, header_json, header_len, content, content_len,
	    fixed + 32);

	if (evbuffer_expand(out, sizeof fixed + header_len + content_len) != 0)
		return -1;
	if (evbuffer_add(out, fixed, sizeof fixed) != 0 ||
	    evbuffer_add(out, header_json, header_len) != 0 ||
	    evbuffer_add(out, content, content_len) != 0)
		return -1;
	return 0;
}

/* Fill a fixed header for the header JSON and content after it. */
void
ac_frame_seal(const struct ac_key *key, uint8_t *frame, size_t header_len,
    size_t content_len)
{
	const uint8_t	*hj = frame + AC_FIXED_HEADER_LEN;
	const uint8_t	*content = hj + header_len;

	memcpy(frame, AC_MAGIC, AC_MAGIC_LEN);
	put_be16(frame + 8, AC_PROTOCOL_VERSION);
	put_be16(frame + 10, 0);
	put_be32(frame + 12, (uint32_t)header_len);
	put_be32(frame + 16, crc32_of(hj, header_len));
	put_be64(frame + 20, content_len);
	put_be32(frame + 28, crc32_of(content, content_len));
	ac_key_mac(key, hj, header_len, content, content_len, frame + 32);
}

/* Encode a frame around header JSON bytes given verbatim (any spelling). */
int
ac_frame_encode_raw(struct evbuffer *out, const struct ac_key *key,
    const void *header_json, size_t header_len,
    const void *content, size_t content_len)
{
	return frame_append(out, key, header_json, header_len, content,
	    content_len);
}

/* Encode a frame into out with Python-spelled header JSON. */
int
ac_frame_encode(struct evbuffer *out, const struct ac_key *key,
    enum ac_msg_type type, const char *content_type, const char *session_id,
    struct json_object *extra, const void *content, size_t content_len)
{
	struct hjbuf	b;
	int		rc;

	if (content_len == 0)
		return -1;
	hjbuf_init(&b);
	rc = header_json_build(&b, type, content_type, session_id, extra);
	if (rc == 0 && b.len > AC_DEFAULT_MAX_HEADER)
		rc = -1;
	if (rc == 0)
		rc = frame_append(out, key, b.data, b.len, content,
		    content_len);
	hjbuf_free(&b);
	return rc;
}
