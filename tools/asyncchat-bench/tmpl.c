/*
 * tmpl.c - message templates: a frame encoded once, restamped per send.
 *
 * The stamp is the last STAMP_LEN bytes of the content. A protocol frame's
 * content CRC and HMAC cover it, but both are computed left to right: the
 * CRC of the content before the stamp and the SHA-256 state of the inner
 * HMAC hash up to the last whole 64-byte block before the stamp are kept,
 * so a send hashes at most two blocks plus the outer hash, whatever the
 * message size. The sender is then never the reason a run is slow.
 *
 * Only the stamp, the content CRC and the HMAC change from one send to the
 * next. Keeping those (SLOT_LEN bytes) for a message in flight is enough to
 * recognise it, byte for byte, when a server echoes it verbatim.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <asyncchat/frame.h>
#include <asyncchat/key.h>

#include "bench.h"

#define SHA_BLOCK	64
#define OCTET_STREAM	"application/octet-stream"

static uint8_t	*filler;
static size_t	 filler_len;
static uint32_t	 crc_table[256];

/* Write a big-endian 32-bit value. */
static void
tmpl_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

/* Make the byte-wise table of CRC-32 (the reflected 0xedb88320). */
static void
tmpl_crc_init(void)
{
	uint32_t	c;
	int		i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/*
 * Continue a CRC-32 over a few bytes, as zlib's crc32(crc, p, n) does. For
 * the 20-byte stamp zlib's call costs more than the bytes (about 9 % of the
 * client's time at 64 B); a table lookup per byte does not.
 */
static uint32_t
tmpl_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	uint32_t	c = crc ^ 0xffffffffu;

	while (n-- > 0)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* Fill n bytes with the payload pattern every receiver checks. */
void
tmpl_fill(uint8_t *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = 'a' + i % 26;
}

/* The pattern of the given length, made once and kept for comparisons. */
static const uint8_t *
tmpl_filler(size_t n)
{
	if (n > filler_len) {
		free(filler);
		if ((filler = malloc(n)) == NULL)
			abort();
		tmpl_fill(filler, n);
		filler_len = n;
	}
	return filler;
}

/* Non-zero when content is a whole message of the run's size. */
int
tmpl_content_ok(const struct bench *b, const uint8_t *content, size_t len)
{
	if (len != b->size)
		return 0;
	return memcmp(content, tmpl_filler(len), len - STAMP_LEN) == 0;
}

/* Frame arbitrary bytes around a content of size bytes (raw, RESP). */
int
tmpl_wrap(struct tmpl *t, const uint8_t *prefix, size_t prefix_len,
    const uint8_t *suffix, size_t suffix_len, size_t size)
{
	memset(t, 0, sizeof *t);
	t->len = prefix_len + size + suffix_len;
	if ((t->bytes = malloc(t->len)) == NULL)
		return -1;
	memcpy(t->bytes, prefix, prefix_len);
	memcpy(t->bytes + prefix_len, tmpl_filler(size), size);
	if (suffix_len > 0)
		memcpy(t->bytes + prefix_len + size, suffix, suffix_len);
	t->content_off = prefix_len;
	t->stamp_off = prefix_len + size - STAMP_LEN;
	t->var_off = t->var_len = 0;	/* nothing but the stamp changes */
	return 0;
}

/*
 * Encode a `message` frame from session sid with size bytes of content and
 * keep the hash states that let tmpl_stamp() finish it cheaply.
 */
int
tmpl_protocol(struct tmpl *t, const struct bench *b, const char *sid,
    size_t size)
{
	struct evbuffer	*hj, *frame;
	struct json_object *extra = NULL;
	SHA256_CTX	*inner, *outer;
	uint8_t		 block[SHA_BLOCK], pad[SHA_BLOCK];
	uint8_t		*content;
	size_t		 keylen = strlen(b->key_text), hlen, i, hashed;

	memset(t, 0, sizeof *t);
	if ((content = malloc(size)) == NULL)
		return -1;
	memcpy(content, tmpl_filler(size), size);
	hj = evbuffer_new();
	frame = evbuffer_new();
	/* Room mode: the chat room the message is for. */
	if (b->room != NULL) {
		extra = json_object_new_object();
		json_object_object_add(extra, "room",
		    json_object_new_string(b->room));
	}
	if (ac_header_json_write(hj, AC_MSG_MESSAGE, OCTET_STREAM, sid,
	    extra) != 0 || ac_frame_encode_raw(frame, b->key,
	    evbuffer_pullup(hj, -1), evbuffer_get_length(hj), content,
	    size) != 0) {
		evbuffer_free(hj);
		evbuffer_free(frame);
		free(content);
		if (extra != NULL)
			json_object_put(extra);
		return -1;
	}
	if (extra != NULL)
		json_object_put(extra);
	hlen = evbuffer_get_length(hj);
	t->len = evbuffer_get_length(frame);
	t->bytes = malloc(t->len);
	inner = malloc(sizeof *inner);
	outer = malloc(sizeof *outer);
	if (t->bytes == NULL || inner == NULL || outer == NULL)
		abort();
	evbuffer_remove(frame, t->bytes, t->len);
	evbuffer_free(hj);
	evbuffer_free(frame);
	free(content);

	t->protocol = 1;
	t->var_off = AC_FIXED_HEADER_LEN - AC_HMAC_LEN - 4;
	t->var_len = AC_HMAC_LEN + 4;
	t->content_off = AC_FIXED_HEADER_LEN + hlen;
	t->stamp_off = t->len - STAMP_LEN;
	t->crc_prefix = crc32(crc32(0L, Z_NULL, 0), t->bytes + t->content_off,
	    size - STAMP_LEN);
	if (crc_table[1] == 0)
		tmpl_crc_init();

	/* The HMAC pads, as RFC 2104 builds them from the key. */
	memset(block, 0, sizeof block);
	if (keylen > SHA_BLOCK)
		SHA256((const uint8_t *)b->key_text, keylen, block);
	else
		memcpy(block, b->key_text, keylen);
	for (i = 0; i < SHA_BLOCK; i++)
		pad[i] = block[i] ^ 0x36;
	SHA256_Init(inner);
	SHA256_Update(inner, pad, sizeof pad);
	for (i = 0; i < SHA_BLOCK; i++)
		pad[i] = block[i] ^ 0x5c;
	SHA256_Init(outer);
	SHA256_Update(outer, pad, sizeof pad);

	/*
	 * Hash the body up to the last block boundary before the stamp:
	 * the pad is one block, so the boundary is counted from the body.
	 */
	hashed = t->stamp_off - AC_FIXED_HEADER_LEN;
	hashed -= hashed % SHA_BLOCK;
	SHA256_Update(inner, t->bytes + AC_FIXED_HEADER_LEN, hashed);
	t->mac_tail = AC_FIXED_HEADER_LEN + hashed;
	t->mac_state = inner;
	t->outer_state = outer;
	return 0;
}

/* Write a new stamp into the template and finish its CRC and HMAC. */
void
tmpl_stamp(struct tmpl *t, uint64_t now_ns, uint64_t seq, uint32_t sender)
{
	struct stamp	 st;
	SHA256_CTX	 ctx;
	uint8_t		 digest[SHA256_DIGEST_LENGTH];
	uint32_t	 crc;

	st.sent_ns = now_ns;
	st.seq = seq;
	st.sender = sender;
	memcpy(t->bytes + t->stamp_off, &st, STAMP_LEN);
	if (!t->protocol)
		return;

	crc = tmpl_crc32(t->crc_prefix, t->bytes + t->stamp_off, STAMP_LEN);
	tmpl_put_be32(t->bytes + t->var_off, crc);
	ctx = *(SHA256_CTX *)t->mac_state;
	SHA256_Update(&ctx, t->bytes + t->mac_tail, t->len - t->mac_tail);
	SHA256_Final(digest, &ctx);
	ctx = *(SHA256_CTX *)t->outer_state;
	SHA256_Update(&ctx, digest, sizeof digest);
	SHA256_Final(t->bytes + t->var_off + 4, &ctx);
}

/* Keep what the last tmpl_stamp() changed: SLOT_LEN bytes at slot. */
void
tmpl_save(const struct tmpl *t, uint8_t *slot)
{
	memcpy(slot, t->bytes + t->var_off, t->var_len);
	memcpy(slot + t->var_len, t->bytes + t->stamp_off, STAMP_LEN);
}

/*
 * Non-zero when frame is, byte for byte, the message whose changing bytes
 * tmpl_save() kept at slot: the template's fixed bytes, then the slot's.
 */
int
tmpl_is_sent(const struct tmpl *t, const uint8_t *slot, const uint8_t *frame,
    size_t len)
{
	if (len != t->len)
		return 0;
	if (memcmp(frame + t->stamp_off, slot + t->var_len, STAMP_LEN) != 0)
		return 0;
	if (t->var_len == 0)
		return memcmp(frame, t->bytes, t->stamp_off) == 0;
	return memcmp(frame, t->bytes, t->var_off) == 0 &&
	    memcmp(frame + t->var_off, slot, t->var_len) == 0 &&
	    memcmp(frame + t->var_off + t->var_len, t->bytes + t->var_off +
	    t->var_len, t->stamp_off - t->var_off - t->var_len) == 0;
}

/* Release a template. */
void
tmpl_free(struct tmpl *t)
{
	free(t->bytes);
	free(t->mac_state);
	free(t->outer_state);
	memset(t, 0, sizeof *t);
}
