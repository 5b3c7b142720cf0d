/*
 * test_frame.c - the frame codec against the protocol's test vectors, and
 * its behaviour at the edges: segmentation, limits, random round trips.
 *
 * Each vector of tests/data/frames.json is its own test case, so the count
 * that `make check` prints grows with the vectors.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <json-c/json.h>
#include <zlib.h>

#include <asyncchat/asyncchat.h>

#include "test_util.h"

/* The whole vector file, loaded once in main(). */
static struct json_object *vectors;

/* A frame decoded from an evbuffer that is fed in slices, as a stream reader
 * with read watermarks would see it. */
struct stream_result {
	enum ac_frame_status	status;
	size_t			frames;
};

/* The string member `name` of a vector. */
static const char *
vec_str(struct json_object *v, const char *name)
{
	struct json_object	*m;

	if (!json_object_object_get_ex(v, name, &m))
		return NULL;
	return json_object_get_string(m);
}

/* A fresh key made from the vector's `key` member. */
static struct ac_key *
vec_key(struct json_object *v)
{
	struct json_object	*k = json_object_object_get(v, "key");

	/* Keys are bytes: one vector's key has a NUL in it. */
	return ac_key_new(json_object_get_string(k),
	    (size_t)json_object_get_string_len(k));
}

/* Compare an evbuffer's bytes with a hex string. */
static void
assert_evbuffer_hex(struct evbuffer *buf, const char *hex)
{
	size_t		 len;
	uint8_t		*want = hex_decode(hex, &len);
	uint8_t		*got;

	assert_int_equal(evbuffer_get_length(buf), len);
	got = evbuffer_pullup(buf, -1);
	assert_memory_equal(got, want, len);
	free(want);
}

/*
 * Decode everything in `bytes`, handing it to an evbuffer `step` bytes at a
 * time, the way a watermark-driven reader does: parse the fixed header once
 * 64 bytes are there, then wait for the whole frame, then decode the body.
 */
static struct stream_result
stream_decode(const struct ac_key *key, const struct ac_limits *limits,
    const uint8_t *bytes, size_t len, size_t step,
    void (*each)(const struct ac_message *, size_t, void *), void *arg)
{
	struct stream_result	 r = { AC_FRAME_NEED_MORE, 0 };
	struct evbuffer		*in = evbuffer_new();
	struct ac_fixed_header	 fh;
	struct ac_message	 msg;
	size_t			 fed = 0, need = AC_FIXED_HEADER_LEN;
	int			 have_header = 0;

	while (fed < len || evbuffer_get_length(in) >= need) {
		if (evbuffer_get_length(in) < need) {
			size_t n = len - fed < step ? len - fed : step;
			evbuffer_add(in, bytes + fed, n);
			fed += n;
			continue;
		}
		if (!have_header) {
			r.status = ac_fixed_header_parse(
			    evbuffer_pullup(in, AC_FIXED_HEADER_LEN), limits,
			    &fh);
			if (r.status != AC_FRAME_OK)
				break;
			have_header = 1;
			need = ac_fixed_header_frame_len(&fh);
			continue;
		}
		r.status = ac_frame_decode_body(key, &fh,
		    evbuffer_pullup(in, need) + AC_FIXED_HEADER_LEN, &msg);
		if (r.status == AC_FRAME_OK) {
			if (each != NULL)
				each(&msg, r.frames, arg);
			ac_message_clear(&msg);
			r.frames++;
		}
		evbuffer_drain(in, need);
		have_header = 0;
		need = AC_FIXED_HEADER_LEN;
		if (r.status != AC_FRAME_OK)
			break;
	}
	evbuffer_free(in);
	return r;
}

/* Check a decoded message against a valid vector's inputs. */
static void
assert_message_matches(const struct ac_message *msg, struct json_object *v)
{
	struct json_object	*hdr, *m;
	size_t			 clen;
	uint8_t			*content = hex_decode(vec_str(v, "content_hex"),
				    &clen);
	const char		*hj = vec_str(v, "header_json");

	hdr = json_tokener_parse(hj);
	assert_non_null(hdr);
	assert_string_equal(ac_msg_type_name(msg->type),
	    json_object_get_string(json_object_object_get(hdr, "type")));

	m = json_object_object_get(hdr, "content_type");
	if (m == NULL)
		assert_null(msg->content_type);
	else
		assert_string_equal(msg->content_type,
		    json_object_get_string(m));
	m = json_object_object_get(hdr, "session_id");
	if (m == NULL)
		assert_null(msg->session_id);
	else
		assert_string_equal(msg->session_id,
		    json_object_get_string(m));

	assert_int_equal(msg->header_json_len, strlen(hj));
	assert_memory_equal(msg->header_json, hj, strlen(hj));
	assert_int_equal(msg->content_len, clen);
	assert_memory_equal(msg->content, content, clen);
	json_object_put(hdr);
	free(content);
}

/* A valid vector encodes to exactly frame_hex and decodes to its inputs. */
static void
test_valid_vector(void **state)
{
	struct json_object	*v = *state, *hdr, *m, *sid;
	struct ac_key		*key = vec_key(v);
	struct evbuffer		*out = evbuffer_new();
	const char		*hj = vec_str(v, "header_json");
	size_t			 clen, flen, consumed;
	uint8_t			*content = hex_decode(vec_str(v, "content_hex"),
				    &clen);
	uint8_t			*frame = hex_decode(vec_str(v, "frame_hex"),
				    &flen);
	uint8_t			*sealed;
	struct ac_message	 msg;
	struct stream_result	 r;
	enum ac_msg_type	 type;

	/* Encoding the header bytes as given reproduces the frame. */
	assert_int_equal(ac_frame_encode_raw(out, key, hj, strlen(hj),
	    content, clen), 0);
	assert_evbuffer_hex(out, vec_str(v, "frame_hex"));

	/*
	 * Encoding from the members reproduces it too whenever the vector
	 * spells its header the way the Python peer does (all but the one
	 * vector that exists to show another spelling is legal).
	 */
	hdr = json_tokener_parse(hj);
	assert_non_null(hdr);
	assert_int_equal(ac_msg_type_parse(json_object_get_string(
	    json_object_object_get(hdr, "type")), &type), 0);
	evbuffer_drain(out, evbuffer_get_length(out));
	m = json_object_object_get(hdr, "content_type");
	sid = json_object_object_get(hdr, "session_id");
	assert_int_equal(ac_frame_encode(out, key, type,
	    m ? json_object_get_string(m) : NULL,
	    sid ? json_object_get_string(sid) : NULL, NULL, content, clen), 0);
	if (strstr(hj, "\": ") != NULL)
		assert_evbuffer_hex(out, vec_str(v, "frame_hex"));
	else
		assert_int_not_equal(evbuffer_get_length(out), 0);

	/* Decoding gives the inputs back, whole or a byte at a time. */
	assert_int_equal(ac_frame_decode(key, NULL, frame, flen, &consumed,
	    &msg), AC_FRAME_OK);
	assert_int_equal(consumed, flen);
	assert_message_matches(&msg, v);
	ac_message_clear(&msg);

	r = stream_decode(key, NULL, frame, flen, 1, NULL, NULL);
	assert_int_equal(r.status, AC_FRAME_OK);
	assert_int_equal(r.frames, 1);

	/* One byte short is incomplete, not an error. */
	assert_int_equal(ac_frame_decode(key, NULL, frame, flen - 1,
	    &consumed, &msg), AC_FRAME_NEED_MORE);
	assert_int_equal(consumed, 0);

	/*
	 * Sealed again where it lies, its fixed header wiped, it is the same
	 * frame (as session_send_list re-signs an event per recipient); a
	 * sender writes msg_type 0, so a vector with another is left out.
	 */
	if (frame[10] == 0 && frame[11] == 0) {
		sealed = malloc(flen);
		assert_non_null(sealed);
		memcpy(sealed, frame, flen);
		memset(sealed, 0, AC_FIXED_HEADER_LEN);
		ac_frame_seal(key, sealed, strlen(hj), clen);
		assert_memory_equal(sealed, frame, flen);
		free(sealed);
	}

	json_object_put(hdr);
	free(content);
	free(frame);
	evbuffer_free(out);
	ac_key_free(key);
}

/* The status whose PROTOCOL.md token is `name`. */
static enum ac_frame_status
status_by_name(const char *name)
{
	enum ac_frame_status	st;

	for (st = AC_FRAME_BAD_MAGIC; st <= AC_FRAME_EMPTY_CONTENT; st++) {
		if (strcmp(ac_frame_status_name(st), name) == 0)
			return st;
	}
	fail_msg("unknown error token %s", name);
	return AC_FRAME_OK;
}

/* An invalid vector gives exactly its named error. */
static void
test_invalid_vector(void **state)
{
	struct json_object	*v = *state;
	struct ac_key		*key = vec_key(v);
	enum ac_frame_status	 want = status_by_name(vec_str(v, "error"));
	struct ac_fixed_header	 fh;
	struct ac_message	 msg;
	struct stream_result	 r;
	size_t			 flen, consumed;
	uint8_t			*frame = hex_decode(vec_str(v, "frame_hex"),
				    &flen);

	assert_true(flen >= AC_FIXED_HEADER_LEN);
	assert_int_equal(ac_frame_decode(key, NULL, frame, flen, &consumed,
	    &msg), want);
	assert_null(msg.header);

	if (ac_frame_status_is_fatal(want)) {
		/* Checks 1-3 are made on the 64-byte fixed header alone. */
		assert_int_equal(ac_fixed_header_parse(frame, NULL, &fh), want);
		assert_int_equal(consumed, 0);
	} else {
		assert_int_equal(ac_fixed_header_parse(frame, NULL, &fh),
		    AC_FRAME_OK);
		assert_int_equal(consumed, flen);
	}

	/* The same error whatever the segmentation. */
	r = stream_decode(key, NULL, frame, flen, 1, NULL, NULL);
	assert_int_equal(r.status, want);
	assert_int_equal(r.frames, 0);

	free(frame);
	ac_key_free(key);
}

/* Check that frame number `i` of a batch carries its own number. */
static void
check_numbered(const struct ac_message *msg, size_t i, void *arg)
{
	char	want[32];

	(void)arg;
	snprintf(want, sizeof want, "frame %zu", i);
	assert_int_equal(msg->content_len, strlen(want));
	assert_memory_equal(msg->content, want, msg->content_len);
}

/* 100 frames in one buffer decode to 100 messages in order. */
static void
test_hundred_frames_one_buffer(void **state)
{
	struct ac_key		*key = ac_key_new("k", 1);
	struct evbuffer		*out = evbuffer_new();
	struct stream_result	 r;
	char			 text[32];
	size_t			 i, len;
	uint8_t			*all;

	(void)state;
	for (i = 0; i < 100; i++) {
		snprintf(text, sizeof text, "frame %zu", i);
		assert_int_equal(ac_frame_encode(out, key, AC_MSG_MESSAGE,
		    "text/plain", "6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90", NULL,
		    text, strlen(text)), 0);
	}
	len = evbuffer_get_length(out);
	all = evbuffer_pullup(out, -1);

	r = stream_decode(key, NULL, all, len, len, check_numbered, NULL);
	assert_int_equal(r.frames, 100);
	r = stream_decode(key, NULL, all, len, 1, check_numbered, NULL);
	assert_int_equal(r.frames, 100);
	r = stream_decode(key, NULL, all, len, 1000, check_numbered, NULL);
	assert_int_equal(r.frames, 100);

	evbuffer_free(out);
	ac_key_free(key);
}

/* A fixed header with the given lengths and a good magic and version. */
static void
make_fixed(uint8_t *fixed, uint32_t header_len, uint64_t content_len)
{
	int	i;

	memset(fixed, 0, AC_FIXED_HEADER_LEN);
	memcpy(fixed, AC_MAGIC, AC_MAGIC_LEN);
	fixed[9] = 1;
	for (i = 0; i < 4; i++)
		fixed[12 + i] = (uint8_t)(header_len >> (24 - 8 * i));
	for (i = 0; i < 8; i++)
		fixed[20 + i] = (uint8_t)(content_len >> (56 - 8 * i));
}

/* The limits hold exactly at their edges, and can be set lower. */
static void
test_limits_at_edge(void **state)
{
	struct ac_limits	lim = { 1000, 5000 };
	struct ac_fixed_header	fh;
	uint8_t			fixed[AC_FIXED_HEADER_LEN];

	(void)state;
	make_fixed(fixed, 65536, 1);
	assert_int_equal(ac_fixed_header_parse(fixed, NULL, &fh), AC_FRAME_OK);
	make_fixed(fixed, 65537, 1);
	assert_int_equal(ac_fixed_header_parse(fixed, NULL, &fh),
	    AC_FRAME_HEADER_TOO_LARGE);
	make_fixed(fixed, 10, 10485760);
	assert_int_equal(ac_fixed_header_parse(fixed, NULL, &fh), AC_FRAME_OK);
	assert_int_equal(ac_fixed_header_frame_len(&fh), 64 + 10 + 10485760);
	make_fixed(fixed, 10, 10485761);
	assert_int_equal(ac_fixed_header_parse(fixed, NULL, &fh),
	    AC_FRAME_CONTENT_TOO_LARGE);
	/* Both too large: the header limit is checked first. */
	make_fixed(fixed, 65537, 10485761);
	assert_int_equal(ac_fixed_header_parse(fixed, NULL, &fh),
	    AC_FRAME_HEADER_TOO_LARGE);

	make_fixed(fixed, 1000, 5000);
	assert_int_equal(ac_fixed_header_parse(fixed, &lim, &fh), AC_FRAME_OK);
	make_fixed(fixed, 1001, 5000);
	assert_int_equal(ac_fixed_header_parse(fixed, &lim, &fh),
	    AC_FRAME_HEADER_TOO_LARGE);
	make_fixed(fixed, 1000, 5001);
	assert_int_equal(ac_fixed_header_parse(fixed, &lim, &fh),
	    AC_FRAME_CONTENT_TOO_LARGE);
}

/*
 * Limits near UINT64_MAX (a library user's choice, not the server's): a
 * frame whose length does not fit in size_t is refused on its fixed header
 * as content_too_large, whatever the limits, instead of wrapping round to
 * a small length and having the body read past the end of the buffer.
 */
static void
test_limits_beyond_size_t(void **state)
{
	struct ac_limits	 lim = { UINT32_MAX, UINT64_MAX };
	struct ac_fixed_header	 fh;
	struct ac_message	 msg;
	struct ac_key		*key = ac_key_new("k", 1);
	uint8_t			 buf[AC_FIXED_HEADER_LEN + 200];
	size_t			 consumed = 1;
	uint64_t		 room;

	(void)state;
	memset(buf, 'x', sizeof buf);

	/* 64 + 100 + this wraps to 99 bytes with the old arithmetic. */
	make_fixed(buf, 100, UINT64_MAX - 64);
	assert_int_equal(ac_fixed_header_parse(buf, &lim, &fh),
	    AC_FRAME_CONTENT_TOO_LARGE);
	assert_int_equal(ac_frame_decode(key, &lim, buf, sizeof buf,
	    &consumed, &msg), AC_FRAME_CONTENT_TOO_LARGE);
	assert_int_equal(consumed, 0);
	make_fixed(buf, 0, UINT64_MAX);
	assert_int_equal(ac_fixed_header_parse(buf, &lim, &fh),
	    AC_FRAME_CONTENT_TOO_LARGE);

	/* The largest content whose frame length still fits is accepted. */
	room = (uint64_t)SIZE_MAX - AC_FIXED_HEADER_LEN - 100;
	make_fixed(buf, 100, room);
	assert_int_equal(ac_fixed_header_parse(buf, &lim, &fh), AC_FRAME_OK);
	assert_true(ac_fixed_header_frame_len(&fh) == SIZE_MAX);
	if (room < UINT64_MAX) {
		make_fixed(buf, 100, room + 1);
		assert_int_equal(ac_fixed_header_parse(buf, &lim, &fh),
		    AC_FRAME_CONTENT_TOO_LARGE);
	}

	/* The header limit is still checked first. */
	lim.max_header_len = 10;
	make_fixed(buf, 11, UINT64_MAX);
	assert_int_equal(ac_fixed_header_parse(buf, &lim, &fh),
	    AC_FRAME_HEADER_TOO_LARGE);
	ac_key_free(key);
}

/* A whole frame whose header JSON is exactly 65536 bytes decodes. */
static void
test_largest_header_decodes(void **state)
{
	struct ac_key		*key = ac_key_new("k", 1);
	struct evbuffer		*out = evbuffer_new();
	struct json_object	*extra = json_object_new_object();
	struct ac_message	 msg;
	size_t			 base, consumed;
	char			*pad;
	uint8_t			*all;

	(void)state;
	/* Size the padding member so the header lands on the limit. */
	assert_int_equal(ac_header_json_write(out, AC_MSG_MESSAGE, "x/y",
	    NULL, NULL), 0);
	base = evbuffer_get_length(out) + strlen(", \"pad\": \"\"");
	evbuffer_drain(out, base);
	pad = malloc(65536 - base + 1);
	memset(pad, 'a', 65536 - base);
	pad[65536 - base] = '\0';
	json_object_object_add(extra, "pad", json_object_new_string(pad));

	assert_int_equal(ac_frame_encode(out, key, AC_MSG_MESSAGE, "x/y",
	    NULL, extra, "c", 1), 0);
	assert_int_equal(evbuffer_get_length(out), 64 + 65536 + 1);
	all = evbuffer_pullup(out, -1);
	assert_int_equal(ac_frame_decode(key, NULL, all,
	    evbuffer_get_length(out), &consumed, &msg), AC_FRAME_OK);
	assert_string_equal(ac_message_get_string(&msg, "pad"), pad);
	ac_message_clear(&msg);

	/* One more byte and the encoder refuses, as a receiver would. */
	evbuffer_drain(out, evbuffer_get_length(out));
	free(pad);
	pad = malloc(65536 - base + 2);
	memset(pad, 'b', 65536 - base + 1);
	pad[65536 - base + 1] = '\0';
	json_object_object_add(extra, "pad", json_object_new_string(pad));
	assert_int_equal(ac_frame_encode(out, key, AC_MSG_MESSAGE, "x/y",
	    NULL, extra, "c", 1), -1);
	assert_int_equal(evbuffer_get_length(out), 0);

	free(pad);
	json_object_put(extra);
	evbuffer_free(out);
	ac_key_free(key);
}

/* A tiny deterministic generator, so failures can be replayed. */
static uint32_t
next_random(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

/* Seeded random messages survive encode then decode unchanged. */
static void
test_random_round_trips(void **state)
{
	static const char *const ctypes[] = { NULL, "text/plain",
	    "application/octet-stream", "text/plain; charset=utf-8",
	    "a \"quoted\" \\ type\n" };
	struct ac_key		*key = ac_key_new("round-trip", 10);
	struct evbuffer		*out = evbuffer_new();
	struct ac_message	 msg;
	uint32_t		 seed = 20261128;
	uint8_t			 content[3000];
	char			 sid[AC_UUID_STRLEN + 1];
	size_t			 i, j, len, consumed;
	enum ac_msg_type	 type;
	const char		*ct;

	(void)state;
	for (i = 0; i < 2000; i++) {
		type = (enum ac_msg_type)(next_random(&seed) %
		    AC_MSG_TYPE_COUNT);
		ct = ctypes[next_random(&seed) % 5];
		len = 1 + next_random(&seed) % sizeof content;
		for (j = 0; j < len; j++)
			content[j] = (uint8_t)next_random(&seed);
		assert_int_equal(ac_uuid_generate(sid), 0);

		evbuffer_drain(out, evbuffer_get_length(out));
		assert_int_equal(ac_frame_encode(out, key, type, ct,
		    (i % 7) ? sid : NULL, NULL, content, len), 0);
		assert_int_equal(ac_frame_decode(key, NULL,
		    evbuffer_pullup(out, -1), evbuffer_get_length(out),
		    &consumed, &msg), AC_FRAME_OK);
		assert_int_equal(consumed, evbuffer_get_length(out));
		assert_int_equal(msg.type, type);
		if (ct == NULL)
			assert_null(msg.content_type);
		else
			assert_string_equal(msg.content_type, ct);
		if (i % 7)
			assert_string_equal(msg.session_id, sid);
		else
			assert_null(msg.session_id);
		assert_int_equal(msg.content_len, len);
		assert_memory_equal(msg.content, content, len);
		ac_message_clear(&msg);
	}
	evbuffer_free(out);
	ac_key_free(key);
}

/* Header JSON is escaped exactly as Python's json.dumps() escapes it. */
static void
test_header_json_python_spelling(void **state)
{
	struct evbuffer		*out = evbuffer_new();
	struct json_object	*extra = json_object_new_object();
	/* json.dumps({"type": "message", "content_type": "t\u00e9\U0001F600\t\"/",
	 *  "session_id": None, "room": "lobby", "n": 3}) */
	const char		*want = "{\"type\": \"message\", "
	    "\"content_type\": \"t\\u00e9\\ud83d\\ude00\\t\\\"/\", "
	    "\"session_id\": null, \"room\": \"lobby\", \"n\": 3}";
	size_t			 len;

	(void)state;
	json_object_object_add(extra, "room", json_object_new_string("lobby"));
	json_object_object_add(extra, "n", json_object_new_int(3));
	/* Fixed members in `extra` are ignored, never duplicated. */
	json_object_object_add(extra, "type", json_object_new_string("x"));
	assert_int_equal(ac_header_json_write(out, AC_MSG_MESSAGE,
	    "t\xc3\xa9\xf0\x9f\x98\x80\t\"/", NULL, extra), 0);
	len = evbuffer_get_length(out);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(evbuffer_pullup(out, -1), want, len);

	/* An invalid UTF-8 byte becomes U+FFFD rather than bad JSON. */
	evbuffer_drain(out, len);
	assert_int_equal(ac_header_json_write(out, AC_MSG_ERROR, "a\xff",
	    "s", NULL), 0);
	want = "{\"type\": \"error\", \"content_type\": \"a\\ufffd\", "
	    "\"session_id\": \"s\"}";
	assert_int_equal(evbuffer_get_length(out), strlen(want));
	assert_memory_equal(evbuffer_pullup(out, -1), want, strlen(want));

	json_object_put(extra);
	evbuffer_free(out);
}

/* Integer members are spelt as json-c spells them, at every edge. */
static void
test_header_json_integers(void **state)
{
	static const int64_t	 values[] = {
		0, 1, -1, 9, 10, 12345, -12345, 1000000007, INT32_MAX,
		INT32_MIN, (int64_t)INT32_MAX + 1, INT64_MAX - 1, INT64_MAX,
		INT64_MIN + 1, INT64_MIN,
	};
	struct evbuffer		*out = evbuffer_new();
	struct json_object	*extra, *n;
	char			 want[128];
	size_t			 i, len;

	(void)state;
	for (i = 0; i <= sizeof values / sizeof values[0]; i++) {
		extra = json_object_new_object();
		if (i < sizeof values / sizeof values[0])
			n = json_object_new_int64(values[i]);
		else
			n = json_object_new_uint64(UINT64_MAX);
		snprintf(want, sizeof want, "{\"type\": \"message\", "
		    "\"content_type\": null, \"session_id\": null, "
		    "\"seq\": %s}", json_object_to_json_string_ext(n,
		    JSON_C_TO_STRING_PLAIN));
		json_object_object_add(extra, "seq", n);
		assert_int_equal(ac_header_json_write(out, AC_MSG_MESSAGE,
		    NULL, NULL, extra), 0);
		len = evbuffer_get_length(out);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(evbuffer_pullup(out, -1), want, len);
		evbuffer_drain(out, len);
		json_object_put(extra);
	}
	evbuffer_free(out);
}

/*
 * ac_header_json_build() writes the bytes ac_header_json_write() does,
 * says how many when they do not fit (writing none past cap), and refuses
 * an extra that is not an object.
 */
static void
test_header_json_build(void **state)
{
	struct evbuffer		*out = evbuffer_new();
	struct json_object	*extra = json_object_new_object();
	struct json_object	*arr = json_object_new_array();
	char			 buf[512], tiny[16];
	size_t			 len;
	ssize_t			 n;

	(void)state;
	json_object_object_add(extra, "room", json_object_new_string("dev"));
	json_object_object_add(extra, "from",
	    json_object_new_string("z\xc3\xa9ro \"q\""));
	json_object_object_add(extra, "seq", json_object_new_int64(42));
	assert_int_equal(ac_header_json_write(out, AC_MSG_MESSAGE,
	    "text/plain; charset=utf-8", "abc", extra), 0);
	len = evbuffer_get_length(out);
	n = ac_header_json_build(buf, sizeof buf, AC_MSG_MESSAGE,
	    "text/plain; charset=utf-8", "abc", extra);
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, evbuffer_pullup(out, -1), len);
	assert_non_null(memmem(buf, len, "\"from\": \"z\\u00e9ro \\\"q\\\"\"",
	    strlen("\"from\": \"z\\u00e9ro \\\"q\\\"\"")));

	memset(tiny, 'x', sizeof tiny);
	assert_int_equal(ac_header_json_build(tiny, sizeof tiny - 1,
	    AC_MSG_MESSAGE, "text/plain; charset=utf-8", "abc", extra),
	    (ssize_t)len);
	assert_int_equal(tiny[sizeof tiny - 1], 'x');
	assert_int_equal(ac_header_json_build(buf, len, AC_MSG_MESSAGE,
	    "text/plain; charset=utf-8", "abc", extra), (ssize_t)len);

	assert_int_equal(ac_header_json_build(buf, sizeof buf,
	    AC_MSG_MESSAGE, NULL, NULL, arr), -1);
	json_object_put(arr);
	json_object_put(extra);
	evbuffer_free(out);
}

/* A disconnect's content is the Python peer's JSON, reason escaped. */
static void
test_disconnect_content(void **state)
{
	struct evbuffer	*out = evbuffer_new();
	const char	*want = "{\"message\": \"Disconnecting\", "
	    "\"reason\": \"Server \\\"x\\\" \\u00e9\"}";

	(void)state;
	assert_int_equal(ac_disconnect_content(out,
	    "Server \"x\" \xc3\xa9"), 0);
	assert_int_equal(evbuffer_get_length(out), strlen(want));
	assert_memory_equal(evbuffer_pullup(out, -1), want, strlen(want));
	evbuffer_free(out);
}

/* Decode header JSON text wrapped into an otherwise valid frame. */
static enum ac_frame_status
decode_header_text(const char *json)
{
	struct ac_key		*key = ac_key_new("k", 1);
	struct evbuffer		*out = evbuffer_new();
	struct ac_message	 msg;
	enum ac_frame_status	 st;
	size_t			 consumed;

	assert_int_equal(ac_frame_encode_raw(out, key, json, strlen(json),
	    "x", 1), 0);
	st = ac_frame_decode(key, NULL, evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), &consumed, &msg);
	ac_message_clear(&msg);
	evbuffer_free(out);
	ac_key_free(key);
	return st;
}

/* The header must be one strict JSON object with a known string type. */
static void
test_header_json_strictness(void **state)
{
	(void)state;
	assert_int_equal(decode_header_text("{\"type\":\"message\"}"),
	    AC_FRAME_OK);
	assert_int_equal(decode_header_text(" {\"type\":\"chunk\"} \n"),
	    AC_FRAME_OK);
	assert_int_equal(decode_header_text("{\"type\":\"message\"} x"),
	    AC_FRAME_BAD_HEADER);
	assert_int_equal(decode_header_text("{\"type\":\"message\"}{}"),
	    AC_FRAME_BAD_HEADER);
	assert_int_equal(decode_header_text("{'type':'message'}"),
	    AC_FRAME_BAD_HEADER);
	assert_int_equal(decode_header_text("{\"type\":\"MESSAGE\"}"),
	    AC_FRAME_BAD_HEADER);
	assert_int_equal(decode_header_text("{\"type\":null}"),
	    AC_FRAME_BAD_HEADER);
	assert_int_equal(decode_header_text("\"message\""),
	    AC_FRAME_BAD_HEADER);
	assert_int_equal(decode_header_text("{\"type\":\"message\","
	    "\"x\":\"\xc3\x28\"}"), AC_FRAME_BAD_HEADER);
}

/*
 * The CRC-32 of both parts, as the encoder writes it and the decoder checks
 * it, is zlib's for every length from 0 to 1100 and some large ones, and
 * for every alignment of the data within 16 bytes: libdeflate's folding
 * code takes different paths by length and alignment.
 */
static void
test_crc_matches_zlib(void **state)
{
	static const size_t	 big[] = { 2047, 4096, 4099, 65536, 65537,
	    1048576 + 13 };
	struct ac_limits	 lim = { UINT32_MAX, UINT64_MAX };
	struct ac_key		*key = ac_key_new("k", 1);
	struct evbuffer		*out = evbuffer_new();
	struct ac_fixed_header	 fh;
	struct ac_message	 msg;
	uint32_t		 seed = 17;
	size_t			 size = 1048576 + 64, len, align, i, n,
				 consumed;
	uint8_t			*data = malloc(size), *frame;

	(void)state;
	for (i = 0; i < size; i++)
		data[i] = (uint8_t)(next_random(&seed) >> 3);
	for (n = 0; n < 1101 + sizeof big / sizeof big[0]; n++) {
		len = n < 1101 ? n : big[n - 1101];
		for (align = 0; align < 16; align++) {
			if (len > 4099 && align % 5 != 1)
				continue;	/* large ones: a few suffice */
			evbuffer_drain(out, evbuffer_get_length(out));
			/* Header JSON of len bytes, content of len + 1. */
			assert_int_equal(ac_frame_encode_raw(out, key,
			    data + align, len, data + 16 + align, len + 1), 0);
			frame = evbuffer_pullup(out, -1);
			assert_int_equal(ac_fixed_header_parse(frame, &lim,
			    &fh), AC_FRAME_OK);
			assert_int_equal(fh.header_crc, (uint32_t)crc32(0,
			    data + align, (uInt)len));
			assert_int_equal(fh.content_crc, (uint32_t)crc32(0,
			    data + 16 + align, (uInt)len + 1));
			/* The decoder's checks 4 pass (then random bytes
			 * are no header JSON), and one changed byte fails
			 * them. */
			assert_int_equal(ac_frame_decode(key, &lim, frame,
			    evbuffer_get_length(out), &consumed, &msg),
			    AC_FRAME_BAD_HEADER);
			frame[AC_FIXED_HEADER_LEN + len] ^= 0x40;
			assert_int_equal(ac_frame_decode(key, &lim, frame,
			    evbuffer_get_length(out), &consumed, &msg),
			    AC_FRAME_CONTENT_CRC);
			if (len > 0) {
				frame[AC_FIXED_HEADER_LEN + len - 1] ^= 0x40;
				assert_int_equal(ac_frame_decode(key, &lim,
				    frame, evbuffer_get_length(out),
				    &consumed, &msg), AC_FRAME_HEADER_CRC);
			}
		}
	}
	free(data);
	evbuffer_free(out);
	ac_key_free(key);
}

/* A decoded header, with the frame bytes it borrows. */
struct header_case {
	struct ac_key		*key;
	struct evbuffer		*frame;
	struct ac_message	 msg;
	enum ac_frame_status	 status;
};

/* Wrap len bytes of header JSON into a valid frame and decode it. */
static void
header_case_decode(struct header_case *c, const void *json, size_t len,
    unsigned int flags)
{
	size_t	consumed;

	c->key = ac_key_new("k", 1);
	c->frame = evbuffer_new();
	assert_int_equal(ac_frame_encode_raw(c->frame, c->key, json, len,
	    "x", 1), 0);
	c->status = ac_frame_decode_flags(c->key, NULL,
	    evbuffer_pullup(c->frame, -1), evbuffer_get_length(c->frame),
	    &consumed, &c->msg, flags);
}

/* Release a decoded header case. */
static void
header_case_free(struct header_case *c)
{
	ac_message_clear(&c->msg);
	evbuffer_free(c->frame);
	ac_key_free(c->key);
}

/* Header JSON as printable text for a failure message (static buffer). */
static const char *
header_text(const char *json, size_t len)
{
	static char	text[200];
	size_t		i, n = 0;

	for (i = 0; i < len && n + 5 < sizeof text; i++) {
		if (json[i] >= 0x20 && json[i] < 0x7f)
			text[n++] = json[i];
		else
			n += (size_t)snprintf(text + n, sizeof text - n,
			    "\\x%02x", (uint8_t)json[i]);
	}
	text[n] = '\0';
	return text;
}

/* A decoded string member against what it should be (NULL: none). */
static void
assert_member(const char *json, size_t len, const char *what,
    const char *got, const char *want)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: %s is %s, want %s", header_text(json, len), what,
		    got == NULL ? "NULL" : header_text(got, strlen(got)),
		    want == NULL ? "NULL" : want);
}

/* json-c's object of header bytes the decoder accepted, parsed as the
 * decoder once parsed them (strict, UTF-8 checked, depth 32). */
static struct json_object *
header_jsonc(const char *json, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*obj;

	tok = json_tokener_new_ex(32);
	assert_non_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, json, (int)len);
	json_tokener_free(tok);
	if (obj == NULL)
		fail_msg("%s: json-c does not parse it", header_text(json,
		    len));
	return obj;
}

/*
 * ac_message_members() must find what ac_message_member() finds for each
 * name, in one walk: here for the first members of obj (a name may repeat
 * in the bytes) and one that is absent, and say whether a member is
 * named neither in known nor among those names; with no names it is
 * ac_message_has_other(). Too many names are refused.
 */
static void
assert_members_at_once(const struct ac_message *msg, struct json_object *obj,
    const char *const *known, size_t nknown)
{
	const char		*names[AC_MEMBERS_MAX + 1];
	struct ac_member	 ms[AC_MEMBERS_MAX + 1], m;
	size_t			 n = 0, i;
	int			 other = 0;

	json_object_object_foreach(obj, key, val) {
		(void)val;
		if (n < AC_MEMBERS_MAX - 1)
			names[n++] = key;
		else {
			for (i = 0; i < nknown &&
			    strcmp(key, known[i]) != 0; i++)
				;
			if (i == nknown)
				other = 1;
		}
	}
	names[n++] = "no such member";
	assert_int_equal(ac_message_members(msg, names, n, ms, known,
	    nknown), other);
	for (i = 0; i < n; i++) {
		assert_int_equal(ms[i].kind, ac_message_member(msg, names[i],
		    &m));
		assert_ptr_equal(ms[i].raw, m.raw);
		assert_int_equal(ms[i].raw_len, m.raw_len);
		assert_int_equal(ms[i].escaped, m.escaped);
	}
	assert_int_equal(ac_message_members(msg, NULL, 0, NULL, known,
	    nknown), ac_message_has_other(msg, known, nknown));
	assert_int_equal(ac_message_members(msg, names, AC_MEMBERS_MAX + 1,
	    ms, known, nknown), -1);
}

/*
 * Every member of json-c's object of a header must be what
 * ac_message_member() finds in the bytes (a string with the same decoded
 * bytes, NUL ones included, or another kind), a name that is none of
 * them must be absent, and ac_message_has_other() must agree with the
 * object's keys. Run on every header the vectors accept.
 */
static void
assert_members_as_jsonc(const char *json, size_t len,
    const struct ac_message *msg, struct json_object *obj)
{
	static const char *const	 fixed[] = {
		"type", "content_type", "session_id",
	};
	struct ac_member		 m;
	char				 buf[512];
	size_t				 got, i;
	int				 other = 0;

	json_object_object_foreach(obj, key, val) {
		if (val == NULL) {
			if (ac_message_member(msg, key, &m) != AC_MEMBER_NULL)
				fail_msg("%s: member %s is not found as null",
				    header_text(json, len), key);
		} else if (!json_object_is_type(val, json_type_string)) {
			if (ac_message_member(msg, key, &m) != AC_MEMBER_OTHER)
				fail_msg("%s: member %s is not found as a "
				    "non-string", header_text(json, len), key);
		} else {
			if (ac_message_member(msg, key, &m) !=
			    AC_MEMBER_STRING)
				fail_msg("%s: member %s is not found as a "
				    "string", header_text(json, len), key);
			got = ac_member_string(&m, buf, sizeof buf);
			if (got != (size_t)json_object_get_string_len(val) ||
			    (got <= sizeof buf && memcmp(buf,
			    json_object_get_string(val), got) != 0))
				fail_msg("%s: member %s decodes differently",
				    header_text(json, len), key);
		}
		for (i = 0; i < 3 && strcmp(key, fixed[i]) != 0; i++)
			;
		if (i == 3)
			other = 1;
	}
	assert_int_equal(ac_message_member(msg, "no such member", &m),
	    AC_MEMBER_ABSENT);
	assert_null(m.raw);
	assert_int_equal(ac_message_has_other(msg, fixed, 3), other);
	assert_int_equal(ac_message_has_other(msg, NULL, 0),
	    json_object_object_length(obj) != 0);
	assert_members_at_once(msg, obj, fixed, 3);
}

/*
 * Decode header JSON bytes both ways (the object at once, and lazily) and
 * check the status and, when it is ok, the three members; type is a wire
 * name. When the header is accepted, json-c must build it into an object
 * whose members say the same (for strings without a NUL).
 */
static void
check_header_bytes(const char *json, size_t len, enum ac_frame_status want,
    const char *type, const char *ct, const char *sid)
{
	static const unsigned int	 flags[] = { 0, AC_DECODE_LAZY_HEADER };
	struct header_case		 c;
	struct json_object		*obj;
	size_t				 i;

	for (i = 0; i < 2; i++) {
		header_case_decode(&c, json, len, flags[i]);
		if (c.status != want)
			fail_msg("%s (flags %u): %s, want %s",
			    header_text(json, len), flags[i],
			    ac_frame_status_name(c.status),
			    ac_frame_status_name(want));
		if (c.status == AC_FRAME_OK) {
			assert_string_equal(ac_msg_type_name(c.msg.type), type);
			assert_member(json, len, "content_type",
			    c.msg.content_type, ct);
			assert_member(json, len, "session_id",
			    c.msg.session_id, sid);
			if (flags[i] == 0)
				assert_non_null(c.msg.header);
			else {
				assert_null(c.msg.header);
				/* Looked up in the bytes before any object
				 * exists, against json-c's own parse. */
				obj = header_jsonc(json, len);
				assert_members_as_jsonc(json, len, &c.msg,
				    obj);
				json_object_put(obj);
				assert_null(c.msg.header);
			}
			obj = ac_message_header(&c.msg);
			assert_non_null(obj);
			assert_ptr_equal(c.msg.header, obj);
			assert_true(json_object_is_type(obj,
			    json_type_object));
			assert_string_equal(json_object_get_string(
			    json_object_object_get(obj, "type")), type);
			if (ct != NULL)
				assert_string_equal(json_object_get_string(
				    json_object_object_get(obj,
				    "content_type")), ct);
			if (sid != NULL)
				assert_string_equal(json_object_get_string(
				    json_object_object_get(obj,
				    "session_id")), sid);
		} else
			assert_null(c.msg.header);
		header_case_free(&c);
	}
}

/* check_header_bytes() on a C string. */
static void
check_header(const char *json, enum ac_frame_status want, const char *type,
    const char *ct, const char *sid)
{
	check_header_bytes(json, strlen(json), want, type, ct, sid);
}

/* A header that must be refused at check 6. */
static void
check_bad_header(const char *json)
{
	check_header(json, AC_FRAME_BAD_HEADER, NULL, NULL, NULL);
}

/* A header that must pass, as a message with no content type or id. */
static void
check_ok_header(const char *json)
{
	check_header(json, AC_FRAME_OK, "message", NULL, NULL);
}

/*
 * String values: every escape decodes as json-c decodes it (\uXXXX to
 * UTF-8, surrogate pairs joined, an unpaired surrogate to U+FFFD), and a
 * bad escape refuses the header.
 */
static void
test_header_scan_escapes(void **state)
{
	(void)state;
	check_header("{\"type\":\"mess\\u0061ge\"}", AC_FRAME_OK, "message",
	    NULL, NULL);
	check_header("{\"type\":\"\\u006D\\u0065ssage\"}", AC_FRAME_OK,
	    "message", NULL, NULL);
	check_bad_header("{\"type\":\"\\u004dessage\"}");	/* Message */
	check_header("{\"type\":\"chunk\",\"content_type\":"
	    "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"}", AC_FRAME_OK, "chunk",
	    "\" \\ / \b \f \n \r \t", NULL);
	check_header("{\"type\":\"error\",\"content_type\":\"t\\u00e9\\u20ac"
	    "\\ud83d\\ude00\"}", AC_FRAME_OK, "error",
	    "t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", NULL);
	/* Unpaired surrogates: alone, before another escape, before a
	 * plain character, before another high one, at the end. */
	check_header("{\"type\":\"error\",\"content_type\":\"\\ud83d\"}",
	    AC_FRAME_OK, "error", "\xef\xbf\xbd", NULL);
	check_header("{\"type\":\"error\",\"content_type\":\"\\ude00x\"}",
	    AC_FRAME_OK, "error", "\xef\xbf\xbdx", NULL);
	check_header("{\"type\":\"error\",\"content_type\":"
	    "\"\\ud83d\\u0041\"}", AC_FRAME_OK, "error", "\xef\xbf\xbd" "A",
	    NULL);
	check_header("{\"type\":\"error\",\"content_type\":\"\\ud83d\\n\"}",
	    AC_FRAME_OK, "error", "\xef\xbf\xbd\n", NULL);
	check_header("{\"type\":\"error\",\"content_type\":\"\\ud83dz\"}",
	    AC_FRAME_OK, "error", "\xef\xbf\xbdz", NULL);
	check_header("{\"type\":\"error\",\"content_type\":"
	    "\"\\ud83d\\ud83d\\ude00\"}", AC_FRAME_OK, "error",
	    "\xef\xbf\xbd\xf0\x9f\x98\x80", NULL);
	/* Escapes spell a session id as well as plain text does. */
	check_header("{\"type\":\"message\",\"session_id\":\"\\u0036f1c2a1e-"
	    "3b7d-4c55-9a0e-2d4b8f1e7c9\\u0030\"}", AC_FRAME_OK, "message",
	    NULL, "6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90");

	check_bad_header("{\"type\":\"message\",\"x\":\"\\a\"}");
	check_bad_header("{\"type\":\"message\",\"x\":\"\\x41\"}");
	check_bad_header("{\"type\":\"message\",\"x\":\"\\u12\"}");
	check_bad_header("{\"type\":\"message\",\"x\":\"\\u12G4\"}");
	check_bad_header("{\"type\":\"message\",\"x\":\"\\ud83d\\x\"}");
	check_bad_header("{\"type\":\"message\",\"x\":\"\\U0041\"}");
	check_bad_header("{\"type\":\"message\",\"x\":\"abc\\\"}");
	check_bad_header("{\"type\":\"message\",\"x\":\"abc");
}

/* The last occurrence of a member counts, as in json-c and Python. */
static void
test_header_scan_duplicates(void **state)
{
	(void)state;
	check_header("{\"type\":\"bogus\",\"type\":\"chunk\"}", AC_FRAME_OK,
	    "chunk", NULL, NULL);
	check_bad_header("{\"type\":\"chunk\",\"type\":\"bogus\"}");
	check_bad_header("{\"type\":\"chunk\",\"type\":5}");
	check_bad_header("{\"type\":\"chunk\",\"type\":null}");
	check_header("{\"type\":\"message\",\"session_id\":\"a\","
	    "\"content_type\":\"x\",\"session_id\":\"b\"}", AC_FRAME_OK,
	    "message", "x", "b");
	check_header("{\"type\":\"message\",\"session_id\":\"a\","
	    "\"session_id\":null}", AC_FRAME_OK, "message", NULL, NULL);
	check_header("{\"type\":\"message\",\"content_type\":[\"a\"],"
	    "\"session_id\":{\"id\":\"s\"}}", AC_FRAME_OK, "message", NULL,
	    NULL);
	/* Members of nested objects are not the header's. */
	check_header("{\"x\":{\"type\":\"bogus\",\"session_id\":\"n\"},"
	    "\"type\":\"message\",\"y\":[{\"type\":5}]}", AC_FRAME_OK,
	    "message", NULL, NULL);
	check_bad_header("{\"x\":{\"type\":\"message\"}}");
	check_bad_header("{\"x\":[{\"type\":\"message\"}]}");
	/* A name is what json-c keeps of it: up to its first NUL. */
	check_header("{\"type\\u0000x\":\"chunk\"}", AC_FRAME_OK, "chunk",
	    NULL, NULL);
	check_bad_header("{\"type\":\"chunk\",\"type\\u0000\":\"bogus\"}");
	check_header("{\"type\":\"chunk\",\"session_id\\u0000 and more than "
	    "sixteen bytes\":\"s\"}", AC_FRAME_OK, "chunk", NULL, "s");
	check_header("{\"typ\\u0065\":\"chunk\",\"\":1,\"types\":2}",
	    AC_FRAME_OK, "chunk", NULL, NULL);
}

/*
 * White space is space, tab, line feed and carriage return, anywhere
 * between tokens and around the object; nothing else may follow it.
 */
static void
test_header_scan_whitespace(void **state)
{
	(void)state;
	check_header(" \t\r\n{ \t\r\n\"type\" \t\r\n: \t\r\n\"message\" \t\r\n"
	    ", \"session_id\"\n:\n\"s\"\n} \t\r\n", AC_FRAME_OK, "message",
	    NULL, "s");
	check_ok_header("{\"type\":\"message\",\"x\":[ 1 , 2 ] , \"y\":{ } }");
	check_bad_header("\f{\"type\":\"message\"}");
	check_bad_header("{\"type\":\"message\"}\v");
	check_bad_header("{\"type\":\"message\"\f}");
	check_bad_header("{\"type\":\"message\"} x");
	check_bad_header("{\"type\":\"message\"},");
	check_bad_header("{\"type\":\"message\"}{}");
	check_bad_header("{\"type\":\"message\",}");
	check_bad_header("{\"type\":\"message\",\"x\":[1,]}");
	check_bad_header("{\"type\":\"message\" /* c */}");
	check_bad_header("{\"type\":\"message\"} // c");
	check_bad_header("{\"type\" \"message\"}");
	check_bad_header("{\"type\":\"message\" \"x\":1}");
	check_bad_header("{\"type\":\"message\",,\"x\":1}");
	check_bad_header("{,\"type\":\"message\"}");
	check_bad_header("{\"type\":\"message\"");
	check_bad_header("");
	check_bad_header(" ");
	check_bad_header("[{\"type\":\"message\"}]");
	check_bad_header("\"message\"");
	check_bad_header("{}");
	/* A NUL byte ends nothing: it is refused wherever it is. */
	check_header_bytes("{\"type\":\"message\"}\0", 19, AC_FRAME_BAD_HEADER,
	    NULL, NULL, NULL);
	check_header_bytes("{\"type\":\"message\"}  \0 ", 22,
	    AC_FRAME_BAD_HEADER, NULL, NULL, NULL);
	check_header_bytes("{\"type\":\"message\",\0\"x\":1}", 25,
	    AC_FRAME_BAD_HEADER, NULL, NULL, NULL);
	check_header_bytes("\0{\"type\":\"message\"}", 19, AC_FRAME_BAD_HEADER,
	    NULL, NULL, NULL);
}

/*
 * Numbers in other members follow json-c 0.16's strict grammar, which is
 * looser than JSON about leading zeros and takes NaN and Infinity (as
 * Python does); magnitude is never checked.
 */
static void
test_header_scan_numbers(void **state)
{
	static const char *const good[] = { "0", "-0", "7", "-12", "00",
	    "-01", "-00", "01.5", "1.", "-1.", "-.5", "0.5", "1e5", "1E+5",
	    "1e-5", "1.e5", "0e0", "-0.0e-0", "99999999999999999999999",
	    "-99999999999999999999999", "1e999", "NaN", "Infinity",
	    "-Infinity", "123456789012345678901234567890.5e3" };
	static const char *const bad[] = { "01", "0123", "-", ".5", "+1",
	    "1e", "1e+", "1.5.5", "1.-5", "-e5", "--5", "1-5", "1e5e5",
	    "1e5.5", "0x10", "nan", "infinity", "-infinity", "-NaN", "Inf",
	    "1 2", "5I", "1,", "\"1\"x" };
	char	json[128];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(json, sizeof json, "{\"n\":%s,\"type\":\"message\","
		    "\"m\":[%s]}", good[i], good[i]);
		check_ok_header(json);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(json, sizeof json, "{\"type\":\"message\",\"n\":%s}",
		    bad[i]);
		check_bad_header(json);
	}
}

/*
 * Literals are lower case; nested values in other members are checked
 * whole, up to json-c's depth: values may sit 31 levels below the object.
 */
static void
test_header_scan_nesting(void **state)
{
	char	json[512];
	size_t	depth, n;
	int	i;

	(void)state;
	check_ok_header("{\"type\":\"message\",\"a\":true,\"b\":false,"
	    "\"c\":null,\"d\":[true,false,null,[],{}],\"e\":{\"f\":{\"g\":[]}},"
	    "\"h\":\"\",\"\":\"empty name\"}");
	check_bad_header("{\"type\":\"message\",\"a\":True}");
	check_bad_header("{\"type\":\"message\",\"a\":nul}");
	check_bad_header("{\"type\":\"message\",\"a\":nullx}");
	check_bad_header("{\"type\":\"message\",\"a\":truefalse}");
	check_bad_header("{\"type\":\"message\",\"a\":'s'}");
	check_bad_header("{\"type\":\"message\",\"a\":[}");
	check_bad_header("{\"type\":\"message\",\"a\":{]}");
	check_bad_header("{\"type\":\"message\",\"a\":{\"b\"}}");
	check_bad_header("{\"type\":\"message\",\"a\":{1:2}}");

	/* "a" is at depth 1; depth-1 more arrays put the last at `depth`. */
	for (depth = 29; depth <= 33; depth++) {
		for (i = 0; i < 3; i++) {
			n = (size_t)snprintf(json, sizeof json,
			    "{\"type\":\"message\",\"a\":");
			memset(json + n, '[', depth);
			n += depth;
			if (i == 1)
				json[n++] = '1';
			else if (i == 2)
				n += (size_t)snprintf(json + n,
				    sizeof json - n, "{}");
			memset(json + n, ']', depth);
			n += depth;
			json[n++] = '}';
			json[n] = '\0';
			/* Empty at depth 31 passes; anything inside it is
			 * at depth 32 and does not. */
			if (depth < 31 || (depth == 31 && i == 0))
				check_ok_header(json);
			else
				check_bad_header(json);
		}
	}
	/* The same with objects: {"b":...} nested. */
	for (depth = 29; depth <= 32; depth++) {
		n = (size_t)snprintf(json, sizeof json,
		    "{\"type\":\"message\",\"a\":");
		for (i = 0; i < (int)depth; i++)
			n += (size_t)snprintf(json + n, sizeof json - n,
			    "{\"b\":");
		n += (size_t)snprintf(json + n, sizeof json - n, "{}");
		memset(json + n, '}', depth + 1);
		json[n + depth + 1] = '\0';
		if (depth < 31)
			check_ok_header(json);
		else
			check_bad_header(json);
	}
}

/*
 * Bytes from 0x80 up: json-c's UTF-8 check looks at the shape of each
 * sequence only (lead byte, then as many continuation bytes), so overlong
 * forms and encoded surrogates pass and stray or missing bytes do not.
 * Raw control characters inside strings pass, as json-c lets them.
 */
static void
test_header_scan_utf8(void **state)
{
	static const char *const good[] = { "\xc3\xa9", "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80", "\xc0\x80", "\xed\xa0\x80",
	    "\xf7\xbf\xbf\xbf", "\x01\x1f\x7f", "\t" };
	static const char *const bad[] = { "\x80", "\xbf",
	    "\xf8\x88\x80\x80\x80", "\xff", "\xc3", "\xe2\x82",
	    "\xf0\x9f\x98", "\xc3\x28", "\xe2\x28\xa1" };
	char	json[128];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(json, sizeof json, "{\"type\":\"error\","
		    "\"content_type\":\"%s\",\"x%s\":1}", good[i], good[i]);
		check_header(json, AC_FRAME_OK, "error", good[i], NULL);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(json, sizeof json, "{\"type\":\"message\","
		    "\"x\":\"%s\"}", bad[i]);
		check_bad_header(json);
		snprintf(json, sizeof json, "{\"type\":\"message\","
		    "\"x%s\":1}", bad[i]);
		check_bad_header(json);
	}
	/* Outside strings, any byte from 0x80 up is refused. */
	check_bad_header("{\"type\":\"message\"}\xc2\xa0");
	check_bad_header("\xef\xbb\xbf{\"type\":\"message\"}");
}

/*
 * Long values decode whole: a 60000-byte session id, escapes at every
 * offset of a 16-byte block, a long member name.
 */
static void
test_header_scan_long_strings(void **state)
{
	size_t	 len = 65536, n, i, at;
	char	*json = malloc(len + 1), *want = malloc(len + 1);

	(void)state;
	n = (size_t)snprintf(json, len,
	    "{\"type\":\"chunk\",\"session_id\":\"");
	for (i = 0; i < 60000; i++)
		json[n + i] = want[i] = (char)('a' + i % 26);
	want[i] = '\0';
	n += i;
	n += (size_t)snprintf(json + n, len - n, "\"}");
	check_header_bytes(json, n, AC_FRAME_OK, "chunk", NULL, want);

	/* An escape, or a multibyte character, at each offset. */
	for (at = 0; at < 40; at++) {
		n = (size_t)snprintf(json, len, "{\"type\":\"chunk\","
		    "\"content_type\":\"");
		for (i = 0; i < at; i++)
			json[n++] = want[i] = 'z';
		n += (size_t)snprintf(json + n, len - n, "\\u00e9\xc3\xa9\\\"");
		memcpy(want + at, "\xc3\xa9\xc3\xa9\"", 6);
		for (i = 0; i < 20; i++)
			json[n++] = want[at + 5 + i] = 'y';
		want[at + 25] = '\0';
		n += (size_t)snprintf(json + n, len - n, "\"}");
		check_header_bytes(json, n, AC_FRAME_OK, "chunk", want, NULL);
	}

	n = (size_t)snprintf(json, len, "{\"");
	memset(json + n, 'k', 50000);
	n += 50000;
	n += (size_t)snprintf(json + n, len - n, "\":1,\"type\":\"chunk\"}");
	check_header_bytes(json, n, AC_FRAME_OK, "chunk", NULL, NULL);
	free(json);
	free(want);
}

/*
 * U+0000 (\u0000) in a value: no C string holds it whole, so a session id
 * or content type with one is NULL, never the part before it (asyncchatd
 * compares exact 36-byte ids, and json-c's string would have stopped at
 * the NUL and matched). A type with one names no type.
 */
static void
test_header_scan_nul(void **state)
{
	(void)state;
	check_header("{\"type\":\"message\",\"session_id\":"
	    "\"6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90\\u0000evil\","
	    "\"content_type\":\"text/plain\"}", AC_FRAME_OK, "message",
	    "text/plain", NULL);
	check_header("{\"type\":\"message\",\"content_type\":\"a\\u0000b\","
	    "\"session_id\":\"s\"}", AC_FRAME_OK, "message", NULL, "s");
	check_header("{\"type\":\"message\",\"content_type\":\"\\u0000\","
	    "\"session_id\":\"\\u0000\"}", AC_FRAME_OK, "message", NULL,
	    NULL);
	check_bad_header("{\"type\":\"message\\u0000\"}");
	check_bad_header("{\"type\":\"message\\u0000x\"}");
	/* The empty string is a string, not a NUL. */
	check_header("{\"type\":\"message\",\"content_type\":\"\","
	    "\"session_id\":\"\"}", AC_FRAME_OK, "message", "", "");
}

/*
 * One frame's header cannot change how the next one reads. json-c's
 * tokener, kept per thread, keeps a high surrogate whose low half never
 * came when its parse fails; the old decoder then joined it to the next
 * frame's first \u escape, whoever sent that frame.
 */
static void
test_header_no_state_between_frames(void **state)
{
	const char		*poison = "{\"type\":\"message\",\"x\":"
	    "\"\\ud83d\\u12\"}";
	const char		*next = "{\"type\":\"message\",\"session_id\":"
	    "\"\\udc00id\",\"room\":\"\\udc00r\"}";
	struct header_case	 c;
	int			 i;

	(void)state;
	for (i = 0; i < 2; i++) {
		header_case_decode(&c, poison, strlen(poison), 0);
		assert_int_equal(c.status, AC_FRAME_BAD_HEADER);
		header_case_free(&c);
		header_case_decode(&c, next, strlen(next),
		    i == 0 ? 0 : AC_DECODE_LAZY_HEADER);
		assert_int_equal(c.status, AC_FRAME_OK);
		assert_string_equal(c.msg.session_id, "\xef\xbf\xbdid");
		assert_string_equal(ac_message_get_string(&c.msg, "room"),
		    "\xef\xbf\xbdr");
		header_case_free(&c);
	}
}

/* Single-quoted names, which json-c 0.16 took, are not JSON: refused. */
static void
test_header_scan_quotes(void **state)
{
	(void)state;
	check_bad_header("{'type':\"message\"}");
	check_bad_header("{\"type\":\"message\",'x':1}");
	check_bad_header("{\"type\":'message'}");
	check_ok_header("{\"type\":\"message\",\"it's\":\"'\"}");
}

/*
 * With AC_DECODE_LAZY_HEADER the header object is built on first use and
 * then kept; ac_message_get_string() builds it too, answers content_type
 * and session_id from the message itself, and a message that holds no
 * header JSON (zeroed, or made by hand as a test host does) has none.
 */
static void
test_header_lazy(void **state)
{
	const char		*json = "{\"type\": \"message\", "
	    "\"content_type\": \"text/plain\", \"session_id\": \"s\", "
	    "\"room\": \"lobby\", \"n\": 3}";
	struct header_case	 c;
	struct json_object	*obj;
	struct ac_message	 made;

	(void)state;
	header_case_decode(&c, json, strlen(json), AC_DECODE_LAZY_HEADER);
	assert_int_equal(c.status, AC_FRAME_OK);
	assert_null(c.msg.header);
	assert_string_equal(ac_message_get_string(&c.msg, "session_id"), "s");
	assert_ptr_equal(ac_message_get_string(&c.msg, "content_type"),
	    c.msg.content_type);
	assert_null(c.msg.header);
	assert_string_equal(ac_message_get_string(&c.msg, "room"), "lobby");
	assert_non_null(c.msg.header);
	obj = c.msg.header;
	assert_ptr_equal(ac_message_header(&c.msg), obj);
	assert_null(ac_message_get_string(&c.msg, "n"));
	assert_null(ac_message_get_string(&c.msg, "absent"));
	header_case_free(&c);
	assert_null(c.msg.header);
	assert_null(c.msg.session_id);

	/* Eager: the object is there at once, with the same members. */
	header_case_decode(&c, json, strlen(json), 0);
	assert_int_equal(c.status, AC_FRAME_OK);
	assert_non_null(c.msg.header);
	assert_ptr_equal(ac_message_header(&c.msg), c.msg.header);
	assert_string_equal(ac_message_get_string(&c.msg, "room"), "lobby");
	header_case_free(&c);

	memset(&made, 0, sizeof made);
	assert_null(ac_message_header(&made));
	assert_null(ac_message_get_string(&made, "room"));
	made.type = AC_MSG_MESSAGE;
	made.session_id = "s";
	assert_null(ac_message_header(&made));
	assert_null(ac_message_get_string(&made, "session_id"));
	memset(&made, 0, sizeof made);
	ac_message_clear(&made);	/* zeroed: nothing to release */
}

/* Status tokens are the ones PROTOCOL.md names, in its check order. */
static void
test_status_names(void **state)
{
	static const char *const order[] = { "bad_magic", "bad_version",
	    "header_too_large", "content_too_large", "header_crc",
	    "content_crc", "hmac", "bad_header", "empty_content" };
	enum ac_frame_status	st;
	size_t			i;

	(void)state;
	for (i = 0, st = AC_FRAME_BAD_MAGIC; i < 9; i++, st++) {
		assert_string_equal(ac_frame_status_name(st), order[i]);
		assert_true(strlen(ac_frame_status_text(st)) > 5);
		assert_int_equal(ac_frame_status_is_fatal(st), i < 4);
	}
	assert_int_equal(ac_frame_status_is_fatal(AC_FRAME_OK), 0);
	assert_int_equal(ac_frame_status_is_fatal(AC_FRAME_NEED_MORE), 0);
}

/* Add one test case per vector of `group` to the list. */
static void
add_vector_tests(struct CMUnitTest *tests, size_t *n, const char *group,
    CMUnitTestFunction fn)
{
	struct json_object	*arr = json_object_object_get(vectors, group);
	size_t			 i;
	char			*name;

	for (i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);

		if (asprintf(&name, "%s vector %s", group,
		    vec_str(v, "name")) < 0)
			abort();
		tests[*n] = (struct CMUnitTest){ name, fn, NULL, NULL, v };
		(*n)++;
	}
}

/* Run the vector cases, then the fixed ones. */
int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_hundred_frames_one_buffer),
		cmocka_unit_test(test_limits_at_edge),
		cmocka_unit_test(test_limits_beyond_size_t),
		cmocka_unit_test(test_largest_header_decodes),
		cmocka_unit_test(test_random_round_trips),
		cmocka_unit_test(test_header_json_python_spelling),
		cmocka_unit_test(test_header_json_integers),
		cmocka_unit_test(test_header_json_build),
		cmocka_unit_test(test_disconnect_content),
		cmocka_unit_test(test_header_json_strictness),
		cmocka_unit_test(test_crc_matches_zlib),
		cmocka_unit_test(test_header_scan_escapes),
		cmocka_unit_test(test_header_scan_duplicates),
		cmocka_unit_test(test_header_scan_whitespace),
		cmocka_unit_test(test_header_scan_numbers),
		cmocka_unit_test(test_header_scan_nesting),
		cmocka_unit_test(test_header_scan_utf8),
		cmocka_unit_test(test_header_scan_long_strings),
		cmocka_unit_test(test_header_scan_nul),
		cmocka_unit_test(test_header_scan_quotes),
		cmocka_unit_test(test_header_no_state_between_frames),
		cmocka_unit_test(test_header_lazy),
		cmocka_unit_test(test_status_names),
	};
	struct CMUnitTest	*tests;
	size_t			 n = 0, i, max;
	int			 rc;

	vectors = load_vectors();
	max = json_object_array_length(json_object_object_get(vectors,
	    "valid")) + json_object_array_length(json_object_object_get(
	    vectors, "invalid")) + sizeof fixed / sizeof fixed[0];
	tests = calloc(max, sizeof *tests);
	add_vector_tests(tests, &n, "valid", test_valid_vector);
	add_vector_tests(tests, &n, "invalid", test_invalid_vector);
	for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		tests[n++] = fixed[i];

	rc = _cmocka_run_group_tests("frame", tests, n, NULL, NULL);

	for (i = 0; i < n - sizeof fixed / sizeof fixed[0]; i++)
		free((char *)tests[i].name);
	free(tests);
	json_object_put(vectors);
	return rc;
}
