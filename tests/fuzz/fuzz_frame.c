/*
 * fuzz_frame.c - libFuzzer target for the frame decoder.
 *
 * The input is a byte stream as a peer would send it. The first byte picks
 * the slice size the stream is fed in, as a reader with read watermarks
 * would see it; every frame found is decoded, and every frame that decodes
 * is encoded again and must decode to the same message. The decoder must
 * never read out of bounds, leak, or disagree with itself.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

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
		st = ac_frame_decode_body(key, &fh,
		    evbuffer_pullup(in, need) + AC_FIXED_HEADER_LEN, &msg);
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
