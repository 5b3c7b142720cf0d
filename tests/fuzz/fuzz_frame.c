/*
 * fuzz_frame.c - libFuzzer target for the frame decoder.
 *
 * The input is a byte stream as a peer would send it. The first byte picks
 * the slice size the stream is fed in, as a reader with read watermarks
 * would see it; every frame found is decoded, with the header object built
 * at once and lazily (AC_DECODE_LAZY_HEADER), and every frame that decodes
 * is encoded again and must decode to the same message. The decoder must
 * never read out of bounds, leak, or disagree with itself.
 * (tests/fuzz/fuzz_header.c compares the header check with json-c.)
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include <asyncchat/asyncchat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-encode a decoded message and check the copy decodes identically. */
static void
check_round_trip(const struct ac_key *key, const struct ac_message *msg)
{
	struct evbuffer		*out = evbuffer_new();
	struct ac_message	 again;
	size_t			 consumed;

	if (ac_frame_encode_raw(out, key, msg->header_json,
	    msg->header_json_len, msg->content, msg->content_len) != 0)
		abort();
	if (ac_frame_decode(key, NULL, evbuffer_pullup(out, -1),
	    evbuffer_get_length(out), &consumed, &again) != AC_FRAME_OK)
		abort();
	if (again.type != msg->type || again.content_len != msg->content_len ||
	    memcmp(again.content, msg->content, msg->content_len) != 0)
		abort();
	ac_message_clear(&again);
	evbuffer_free(out);
}

/* Non-zero when two strings are both NULL or equal. */
static int
same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Decode the body again lazily: same status and members, no object until
 * it is asked for, and then the one the eager decode built.
 */
static void
check_lazy(const struct ac_key *key, const struct ac_fixed_header *fh,
    const uint8_t *body, enum ac_frame_status st,
    const struct ac_message *msg)
{
	struct ac_message	lazy;

	if (ac_frame_decode_body_flags(key, fh, body, &lazy,
	    AC_DECODE_LAZY_HEADER) != st)
		abort();
	if (st != AC_FRAME_OK) {
		if (lazy.header != NULL || lazy.session_id != NULL)
			abort();
		return;
	}
	if (lazy.type != msg->type || lazy.header != NULL ||
	    !same_string(lazy.content_type, msg->content_type) ||
	    !same_string(lazy.session_id, msg->session_id) ||
	    lazy.content != msg->content || ac_message_header(&lazy) == NULL ||
	    strcmp(json_object_to_json_string(lazy.header),
	    json_object_to_json_string(msg->header)) != 0)
		abort();
	ac_message_clear(&lazy);
}

/* Decode a fuzzer-made stream the way a watermark-driven reader does. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ac_key	*key;
	struct ac_limits	 limits = { 4096, 65536 };
	struct evbuffer		*in;
	struct ac_fixed_header	 fh;
	struct ac_message	 msg;
	enum ac_frame_status	 st;
	const uint8_t		*body;
	size_t			 step, fed = 0, need = AC_FIXED_HEADER_LEN;
	int			 have_header = 0;

	if (key == NULL)
		key = ac_key_new(AC_DEFAULT_KEY, strlen(AC_DEFAULT_KEY));
	if (size < 1)
		return 0;
	step = 1 + data[0] % 97;
	data++;
	size--;

	in = evbuffer_new();
	for (;;) {
		if (evbuffer_get_length(in) < need) {
			size_t n;
			if (fed == size)
				break;
			n = size - fed < step ? size - fed : step;
			evbuffer_add(in, data + fed, n);
			fed += n;
			continue;
		}
		if (!have_header) {
			st = ac_fixed_header_parse(evbuffer_pullup(in,
			    AC_FIXED_HEADER_LEN), &limits, &fh);
			if (st != AC_FRAME_OK) {
				if (!ac_frame_status_is_fatal(st))
					abort();
				break;
			}
			have_header = 1;
			need = ac_fixed_header_frame_len(&fh);
			continue;
		}
		body = evbuffer_pullup(in, need) + AC_FIXED_HEADER_LEN;
		st = ac_frame_decode_body(key, &fh, body, &msg);
		check_lazy(key, &fh, body, st, &msg);
		if (st == AC_FRAME_OK) {
			if (msg.content_len == 0 || msg.header == NULL)
				abort();
			check_round_trip(key, &msg);
			ac_message_clear(&msg);
		} else if (ac_frame_status_is_fatal(st) ||
		    st == AC_FRAME_NEED_MORE)
			abort();
		evbuffer_drain(in, need);
		have_header = 0;
		need = AC_FIXED_HEADER_LEN;
	}
	evbuffer_free(in);
	return 0;
}
