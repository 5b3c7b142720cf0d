/*
 * fuzz_header.c - libFuzzer target comparing the decoder's check of the
 * header JSON with json-c's parse of the same bytes.
 *
 * The input is header JSON as a peer would send it. It is framed with a
 * good CRC and HMAC and decoded twice (the header object built at once,
 * and lazily); json-c parses the same bytes exactly as the decoder did
 * before it had its own scanner (strict, UTF-8 checked, depth 32, only
 * white space after the object). They must agree on whether the header
 * passes check 6 and on type, content_type and session_id, with only the
 * differences src/lib/header_scan.c documents: the decoder refuses member
 * names in single quotes, a type holding U+0000, and reads a content type
 * or session id holding U+0000 as NULL. Every member of json-c's object
 * must also be what ac_message_member() finds in the bytes, and
 * ac_message_has_other() must agree with its keys. Any other difference
 * aborts.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include <asyncchat/asyncchat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* json-c's verdict on header bytes, as the decoder once made it. */
struct verdict {
	int			 ok;
	enum ac_msg_type	 type;
	struct json_object	*obj;
};

/*
 * Parse with json-c: an object, then only white space; NULL if not. A
 * fresh tokener each time: json_tokener_reset() keeps a dangling high
 * surrogate from a failed parse (see parse_header_object() in frame.c).
 */
static struct json_object *
jsonc_parse(const uint8_t *data, size_t size)
{
	struct json_tokener	*tok;
	struct json_object	*obj;
	size_t			 end;

	if (size == 0 || size > INT32_MAX)
		return NULL;
	if ((tok = json_tokener_new_ex(32)) == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto fail;
	for (end = json_tokener_get_parse_end(tok); end < size; end++) {
		if (data[end] != ' ' && data[end] != '\t' &&
		    data[end] != '\n' && data[end] != '\r')
			goto fail;
	}
	if (!json_object_is_type(obj, json_type_object))
		goto fail;
	json_tokener_free(tok);
	return obj;
fail:
	json_tokener_free(tok);
	json_object_put(obj);
	return NULL;
}

/* json-c's verdict: a parsed object whose type is a whole known name. */
static void
jsonc_verdict(const uint8_t *data, size_t size, struct verdict *v)
{
	struct json_object	*t;
	const char		*name;
	int			 i;

	memset(v, 0, sizeof *v);
	if ((v->obj = jsonc_parse(data, size)) == NULL)
		return;
	if (!json_object_object_get_ex(v->obj, "type", &t) ||
	    !json_object_is_type(t, json_type_string))
		return;
	name = json_object_get_string(t);
	if (strlen(name) != (size_t)json_object_get_string_len(t))
		return;		/* a NUL: a documented difference */
	for (i = 0; i < AC_MSG_TYPE_COUNT; i++) {
		if (strcmp(name, ac_msg_type_name((enum ac_msg_type)i)) == 0) {
			v->ok = 1;
			v->type = (enum ac_msg_type)i;
		}
	}
}

/* A decoded string member must be json-c's, or NULL if that has a NUL. */
static void
check_member(struct json_object *obj, const char *name, const char *got,
    int exact)
{
	struct json_object	*m;
	const char		*want;
	size_t			 len;

	if (!json_object_object_get_ex(obj, name, &m) ||
	    !json_object_is_type(m, json_type_string)) {
		if (got != NULL)
			abort();
		return;
	}
	want = json_object_get_string(m);
	len = (size_t)json_object_get_string_len(m);
	if (memchr(want, '\0', len) != NULL) {
		if (got != NULL)
			abort();
		return;
	}
	if (got == NULL || (exact && (strlen(got) != len ||
	    memcmp(got, want, len) != 0)))
		abort();
}

/*
 * Non-zero when two objects json-c parsed print the same (what
 * json_object_equal() says too, but for NaN, which equals nothing).
 */
static int
same_object(struct json_object *a, struct json_object *b)
{
	return strcmp(json_object_to_json_string_ext(a,
	    JSON_C_TO_STRING_PLAIN), json_object_to_json_string_ext(b,
	    JSON_C_TO_STRING_PLAIN)) == 0;
}

/*
 * Non-zero when the input may hold a \u escape of a UTF-16 surrogate
 * (D800-DFFF). json-c 0.16 decodes some well-formed pairs wrongly: it
 * gives U+FFFD for "\ud836\ude00" (U+1DA00) while it decodes
 * "\ud83d\ude00" right, and joins a lone low surrogate to the low half
 * of the pair before it. The decoder follows UTF-16, so the decoded
 * bytes of strings in such an input are not compared with json-c's
 * (their presence, kind and names still are). A backslash that is
 * itself escaped may make this say yes for nothing: a weaker check,
 * never a false alarm.
 */
static int
has_surrogate_escape(const uint8_t *data, size_t size)
{
	size_t	i;

	for (i = 0; i + 3 < size; i++) {
		if (data[i] == '\\' && data[i + 1] == 'u' &&
		    (data[i + 2] == 'd' || data[i + 2] == 'D') &&
		    strchr("89abcdefABCDEF", data[i + 3]) != NULL &&
		    data[i + 3] != '\0')
			return 1;
	}
	return 0;
}

/*
 * The look-up in the bytes (ac_message_member(), ac_message_has_other())
 * against json-c's object: every key found as json-c has it, a string
 * decoded to json-c's bytes, an unknown name absent.
 */
static void
check_lookup(const struct ac_message *msg, struct json_object *obj,
    int exact)
{
	static const char *const	 fixed[] = {
		"type", "content_type", "session_id",
	};
	struct ac_member		 m;
	char				*buf;
	size_t				 len, i;
	int				 other = 0;

	json_object_object_foreach(obj, key, val) {
		if (val == NULL) {
			if (ac_message_member(msg, key, &m) != AC_MEMBER_NULL)
				abort();
		} else if (!json_object_is_type(val, json_type_string)) {
			if (ac_message_member(msg, key, &m) != AC_MEMBER_OTHER)
				abort();
		} else {
			if (ac_message_member(msg, key, &m) !=
			    AC_MEMBER_STRING)
				abort();
			len = (size_t)json_object_get_string_len(val);
			if ((buf = malloc(len + 1)) == NULL)
				abort();
			if (exact && (ac_member_string(&m, buf, len + 1) !=
			    len || memcmp(buf, json_object_get_string(val),
			    len) != 0))
				abort();
			free(buf);
		}
		for (i = 0; i < 3 && strcmp(key, fixed[i]) != 0; i++)
			;
		if (i == 3)
			other = 1;
	}
	/* A name json-c's object lacks is absent (the fuzzer may well
	 * spell this one: it reads the strings of this program). */
	if ((!json_object_object_get_ex(obj, "\x01 no such member", NULL) &&
	    ac_message_member(msg, "\x01 no such member", &m) !=
	    AC_MEMBER_ABSENT) || ac_message_has_other(msg, fixed, 3) != other)
		abort();
}

/* Decode the header framed with content "x"; returns the status. */
static enum ac_frame_status
decode(const struct ac_key *key, struct evbuffer *frame, unsigned int flags,
    struct ac_message *msg)
{
	size_t	consumed;

	return ac_frame_decode_flags(key, NULL, evbuffer_pullup(frame, -1),
	    evbuffer_get_length(frame), &consumed, msg, flags);
}

/* Decode the input as header JSON both ways and compare with json-c. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ac_key	*key;
	struct evbuffer		*frame;
	struct ac_message	 eager, lazy;
	enum ac_frame_status	 st, st_lazy;
	struct verdict		 v;
	int			 exact;

	if (key == NULL)
		key = ac_key_new(AC_DEFAULT_KEY, strlen(AC_DEFAULT_KEY));
	if (size > AC_DEFAULT_MAX_HEADER)
		return 0;
	frame = evbuffer_new();
	if (ac_frame_encode_raw(frame, key, data, size, "x", 1) != 0)
		abort();
	st = decode(key, frame, 0, &eager);
	st_lazy = decode(key, frame, AC_DECODE_LAZY_HEADER, &lazy);
	if (st != st_lazy || (st != AC_FRAME_OK && st != AC_FRAME_BAD_HEADER))
		abort();
	jsonc_verdict(data, size, &v);

	if (st == AC_FRAME_OK) {
		/* Whatever the decoder takes, json-c takes, with the same
		 * members; the lazily built object is json-c's. */
		if (!v.ok || eager.type != v.type || lazy.type != v.type ||
		    eager.header == NULL || lazy.header != NULL ||
		    ac_message_header(&lazy) == NULL ||
		    !same_object(eager.header, v.obj) ||
		    !same_object(lazy.header, v.obj))
			abort();
		exact = !has_surrogate_escape(data, size);
		check_lookup(&lazy, v.obj, exact);
		check_lookup(&eager, v.obj, exact);
		check_member(v.obj, "content_type", eager.content_type, exact);
		check_member(v.obj, "content_type", lazy.content_type, exact);
		check_member(v.obj, "session_id", eager.session_id, exact);
		check_member(v.obj, "session_id", lazy.session_id, exact);
		ac_message_clear(&eager);
		ac_message_clear(&lazy);
	} else if (v.ok && memchr(data, '\'', size) == NULL)
		abort();	/* json-c took it, and not for a quoted name */
	json_object_put(v.obj);
	evbuffer_free(frame);
	return 0;
}
