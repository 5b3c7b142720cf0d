/*
 * asyncchat/frame.h - the wire frame codec of the Async Socket Chat protocol.
 *
 * A frame is a 64-byte fixed header, the header JSON, then the content
 * (docs/PROTOCOL.md). Decoding happens in two steps so that it fits
 * bufferevent read watermarks: first the fixed header alone (checks 1-3,
 * which decide how many more bytes to wait for), then the body (checks 4-7).
 *
 * Ownership: nothing here keeps a pointer to what it is given; a decoded
 * struct ac_message borrows the body bytes it was decoded from and owns its
 * content_type and session_id strings and its parsed JSON header, released
 * by ac_message_clear().
 */
#ifndef ASYNCCHAT_FRAME_H
#define ASYNCCHAT_FRAME_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct evbuffer;
struct json_object;
struct ac_key;

#define AC_FIXED_HEADER_LEN	64
#define AC_MAGIC_LEN		8
#define AC_MAGIC		"\x89\x50\x4e\x47\x0e\x0b\x1b\x0b"
#define AC_PROTOCOL_VERSION	1
#define AC_HMAC_LEN		32
#define AC_DEFAULT_MAX_HEADER	65536u
#define AC_DEFAULT_MAX_CONTENT	10485760u

/* The outcome of a decoding step, in the order a receiver checks. */
enum ac_frame_status {
	AC_FRAME_OK = 0,
	AC_FRAME_NEED_MORE,		/* not an error: wait for more bytes */
	AC_FRAME_BAD_MAGIC,		/* 1: stream cannot be framed */
	AC_FRAME_BAD_VERSION,		/* 2: stream cannot be framed */
	AC_FRAME_HEADER_TOO_LARGE,	/* 3: stream cannot be framed */
	AC_FRAME_CONTENT_TOO_LARGE,	/* 3: stream cannot be framed */
	AC_FRAME_HEADER_CRC,		/* 4: frame dropped, session kept */
	AC_FRAME_CONTENT_CRC,		/* 4 */
	AC_FRAME_HMAC,			/* 5 */
	AC_FRAME_BAD_HEADER,		/* 6 */
	AC_FRAME_EMPTY_CONTENT,		/* 7 */
};

/* The `type` member of the header JSON. */
enum ac_msg_type {
	AC_MSG_SESSION_INIT = 0,
	AC_MSG_SESSION_ACK,
	AC_MSG_HEARTBEAT,
	AC_MSG_MESSAGE,
	AC_MSG_CHUNK,
	AC_MSG_ERROR,
	AC_MSG_DISCONNECT,
};
#define AC_MSG_TYPE_COUNT 7

/*
 * Size limits a receiver enforces on the fixed header alone (check 3).
 *
 * Range: any value of each field is valid. A frame whose header_len is
 * above max_header_len is header_too_large; one whose content_len is
 * above max_content_len is content_too_large. Whatever the limits, a
 * frame whose whole length (64 + header_len + content_len) does not fit
 * in size_t is refused too: content_too_large when the content is what
 * does not fit (always, with a 64-bit size_t), header_too_large when 64 +
 * header_len alone does not (possible only with a 32-bit size_t). So
 * limits near UINT64_MAX mean "as much as size_t can count", never a
 * length that wraps round. A reader buffers a whole frame before it
 * checks the body, so the limits are also what one frame may cost in
 * memory: keep them at what the application needs. The protocol's
 * defaults (ac_limits_default) are 65536 and 10485760; asyncchatd's
 * max_header_size and max_content_size cannot go above them.
 */
struct ac_limits {
	uint32_t	max_header_len;
	uint64_t	max_content_len;
};

/* The fixed header in host byte order. */
struct ac_fixed_header {
	uint16_t	version;
	uint16_t	msg_type;
	uint32_t	header_len;
	uint32_t	header_crc;
	uint64_t	content_len;
	uint32_t	content_crc;
	uint8_t		hmac[AC_HMAC_LEN];
};

/*
 * A decoded frame. content_type and session_id are NULL when the JSON member
 * is null, absent or not a string, and also when the string holds U+0000
 * (\u0000), which no C string can carry whole: a value is never cut short
 * at a NUL. They point into storage the message owns (do not change them),
 * and stay valid, with `header`, until ac_message_clear(). header_json and
 * content point into the bytes the body was decoded from.
 *
 * `header` is the header JSON parsed by json-c. A message decoded with
 * AC_DECODE_LAZY_HEADER has it NULL until ac_message_header() (or
 * ac_message_get_string()) builds it: code that may see such messages reads
 * it through ac_message_header(), never the member directly.
 */
struct ac_message {
	enum ac_msg_type	 type;
	const char		*content_type;
	const char		*session_id;
	struct json_object	*header;	/* owned: the parsed header JSON */
	const uint8_t		*header_json;
	size_t			 header_json_len;
	const uint8_t		*content;
	size_t			 content_len;
};

/*
 * Flags for ac_frame_decode_body_flags() and ac_frame_decode_flags().
 *
 * AC_DECODE_LAZY_HEADER: check the header JSON (check 6) and read type,
 * content_type and session_id from it without building a json-c object;
 * msg->header stays NULL until ac_message_header() asks for it. This is
 * what a receiver that rarely needs other members should ask for: building
 * the object costs more than the rest of a small frame's decoding.
 *
 * Since: libasyncchat interface 2 (-version-info 2:0:2).
 */
#define AC_DECODE_LAZY_HEADER	0x1u

/* Fill limits with the protocol defaults (64 KiB header, 10 MiB content). */
void	ac_limits_default(struct ac_limits *limits);

/* Short stable token for a status, as PROTOCOL.md names it ("bad_magic"). */
const char *ac_frame_status_name(enum ac_frame_status status);

/* One-sentence human description of a status. */
const char *ac_frame_status_text(enum ac_frame_status status);

/* Non-zero when the status means the stream can no longer be framed (1-3). */
int	ac_frame_status_is_fatal(enum ac_frame_status status);

/* The wire name of a message type ("session_init"). */
const char *ac_msg_type_name(enum ac_msg_type type);

/* Parse a wire type name; returns 0 and sets *type, or -1 if unknown. */
int	ac_msg_type_parse(const char *name, enum ac_msg_type *type);

/*
 * Step 1: check the 64 bytes at buf (magic, version, both size limits, and
 * that the frame's length fits in size_t) and convert them to host order.
 * Looks at nothing beyond those 64 bytes. limits NULL means the defaults.
 */
enum ac_frame_status ac_fixed_header_parse(const uint8_t *buf,
	    const struct ac_limits *limits, struct ac_fixed_header *fh);

/*
 * Whole frame length (fixed header + header JSON + content) of a header
 * that ac_fixed_header_parse() accepted; it always fits in size_t.
 */
size_t	ac_fixed_header_frame_len(const struct ac_fixed_header *fh);

/*
 * Step 2: check the body (header_len + content_len bytes at body, which must
 * all be present): CRCs, HMAC, header JSON, non-empty content. On
 * AC_FRAME_OK msg is filled and must be released with ac_message_clear().
 * On any error msg holds nothing that needs releasing.
 */
enum ac_frame_status ac_frame_decode_body(const struct ac_key *key,
	    const struct ac_fixed_header *fh, const uint8_t *body,
	    struct ac_message *msg);

/*
 * Step 2 with flags (AC_DECODE_*, or 0 for exactly ac_frame_decode_body()).
 * The checks, their order and their statuses are the same whatever the
 * flags; only what msg holds afterwards differs.
 *
 * Since: libasyncchat interface 2.
 */
enum ac_frame_status ac_frame_decode_body_flags(const struct ac_key *key,
	    const struct ac_fixed_header *fh, const uint8_t *body,
	    struct ac_message *msg, unsigned int flags);

/*
 * Both steps over a contiguous buffer. *consumed is set to the frame length
 * when the whole frame was present (whether it passed or failed checks 4-7),
 * to 0 on AC_FRAME_NEED_MORE or a fatal status.
 */
enum ac_frame_status ac_frame_decode(const struct ac_key *key,
	    const struct ac_limits *limits, const uint8_t *buf, size_t len,
	    size_t *consumed, struct ac_message *msg);

/*
 * ac_frame_decode() with flags (AC_DECODE_*, or 0).
 *
 * Since: libasyncchat interface 2.
 */
enum ac_frame_status ac_frame_decode_flags(const struct ac_key *key,
	    const struct ac_limits *limits, const uint8_t *buf, size_t len,
	    size_t *consumed, struct ac_message *msg, unsigned int flags);

/*
 * Release what a successfully decoded message owns; safe on a zeroed one.
 * Never call it on a message whose members were set by hand.
 */
void	ac_message_clear(struct ac_message *msg);

/*
 * The parsed header JSON object of a decoded message, built on the first
 * call if the message was decoded with AC_DECODE_LAZY_HEADER and kept in
 * msg->header (a cache: the message is updated through its const pointer,
 * so two threads must not make the first call on one message at once).
 *
 * Returns: the object, borrowed (owned by the message, released by
 * ac_message_clear(): never json_object_put() it), or NULL when msg holds
 * no header JSON (a zeroed or hand-made message) or memory ran out.
 *
 * Since: libasyncchat interface 2.
 */
struct json_object *ac_message_header(const struct ac_message *msg);

/*
 * Encode a frame into out. The header JSON is spelled as the Python peer
 * spells it ({"type": ..., "content_type": ..., "session_id": ...}, ASCII
 * only), then the members of `extra` (an object, may be NULL) in its order.
 * content_type or session_id NULL is written as JSON null.
 * Returns 0, or -1 if content is empty or the header would be too large.
 */
int	ac_frame_encode(struct evbuffer *out, const struct ac_key *key,
	    enum ac_msg_type type, const char *content_type,
	    const char *session_id, struct json_object *extra,
	    const void *content, size_t content_len);

/*
 * Encode a frame around header JSON bytes given verbatim (any spelling).
 * Returns 0, or -1 if content is empty or a length does not fit its field.
 */
int	ac_frame_encode_raw(struct evbuffer *out, const struct ac_key *key,
	    const void *header_json, size_t header_len,
	    const void *content, size_t content_len);

/*
 * Fill the 64-byte fixed header at frame, for header_len bytes of header
 * JSON and content_len bytes of content laid out after it: both CRCs and
 * the HMAC with key. For a frame re-sealed after a change in place (one
 * recipient's session_id in the header, say). content_len must not be 0.
 */
void	ac_frame_seal(const struct ac_key *key, uint8_t *frame,
	    size_t header_len, size_t content_len);

/* Write the Python-style header JSON for the given members into out. */
int	ac_header_json_write(struct evbuffer *out, enum ac_msg_type type,
	    const char *content_type, const char *session_id,
	    struct json_object *extra);

/*
 * Write the Python-style header JSON for the given members (as
 * ac_frame_encode() spells it) into buf, as much of it as fits in cap
 * bytes. Returns its whole length: when that is more than cap, buf holds
 * nothing of use and a second call with that much room writes it all.
 * Returns -1 if extra is not an object or memory ran out. For a caller
 * that lays out a frame of its own and seals it (ac_frame_seal()).
 *
 * Since: libasyncchat interface 4.
 */
ssize_t	ac_header_json_build(void *buf, size_t cap,
	    enum ac_msg_type type, const char *content_type,
	    const char *session_id, struct json_object *extra);

/*
 * Write the content of a `disconnect` frame for this reason into out:
 * {"message": "Disconnecting", "reason": "..."} (content type
 * application/json), spelled as the Python peer spells it. 0 or -1.
 */
int	ac_disconnect_content(struct evbuffer *out, const char *reason);

/*
 * String member `name` of a decoded header, or NULL if absent or not a
 * string. For "content_type" and "session_id" this is msg's own member
 * (NULL for a string holding U+0000); any other name looks in the header
 * object, which it builds first if the message was decoded lazily (see
 * ac_message_header()). Borrowed: valid until ac_message_clear().
 */
const char *ac_message_get_string(const struct ac_message *msg,
	    const char *name);

/* What kind of value a header member has (ac_message_member()). */
enum ac_member_kind {
	AC_MEMBER_ABSENT = 0,	/* no such member */
	AC_MEMBER_STRING,	/* a string */
	AC_MEMBER_NULL,		/* null (json-c's NULL object) */
	AC_MEMBER_OTHER,	/* a number, true, false, an array or an
				   object */
};

/*
 * A member of a decoded header as ac_message_member() found it, pointing
 * into the message's header bytes (valid until ac_message_clear()). raw
 * and raw_len are its value as spelt: for a string, the bytes between
 * its quotes, escapes undone by ac_member_string() only; for any other
 * value, its whole spelling ("12", "null", "[1, 2]").
 */
struct ac_member {
	enum ac_member_kind	 kind;
	const uint8_t		*raw;
	size_t			 raw_len;
	int			 escaped;	/* raw holds a backslash */
};

/*
 * Find top-level member `name` of a decoded message's header in its
 * bytes, without building json-c's object, and with the same answer as
 * json-c's object would give: when a name occurs more than once the last
 * occurrence counts, and names compare as json-c keeps them (up to a
 * NUL an escape makes). Works whether or not the message was decoded
 * with AC_DECODE_LAZY_HEADER. Fills m and returns its kind;
 * AC_MEMBER_ABSENT for a message without header bytes (a hand-made
 * one).
 *
 * Since: libasyncchat interface 3.
 */
enum ac_member_kind ac_message_member(const struct ac_message *msg,
	    const char *name, struct ac_member *m);

/*
 * The value of a string member found by ac_message_member(), as json-c
 * decodes it (escapes to UTF-8, an unpaired surrogate as U+FFFD, \u0000
 * as a NUL byte): its first cap bytes go to buf, nothing is appended, and
 * the whole length is returned (never more than raw_len). 0 for a member
 * that is not a string.
 *
 * Since: libasyncchat interface 3.
 */
size_t	ac_member_string(const struct ac_member *m, char *buf, size_t cap);

/*
 * Non-zero when a decoded message's header has a top-level member named
 * none of the nnames names (as json-c's object would have a key that is
 * none of them), read from its bytes as ac_message_member() reads them.
 * 0 for a message without header bytes.
 *
 * Since: libasyncchat interface 3.
 */
int	ac_message_has_other(const struct ac_message *msg,
	    const char *const *names, size_t nnames);

/* The most names ac_message_members() looks for at once. */
#define AC_MEMBERS_MAX	8

/*
 * ac_message_member() for each of the n names (at most AC_MEMBERS_MAX)
 * into m[0..n-1], and ac_message_has_other() for the names of known (a
 * member named in names counts as known too), in one walk of the
 * header's bytes instead of one each. Returns that answer (0 or 1), or
 * -1 for too many names. A message without header bytes has none of
 * them, and no other.
 *
 * Since: libasyncchat interface 4.
 */
int	ac_message_members(const struct ac_message *msg,
	    const char *const *names, size_t n, struct ac_member *m,
	    const char *const *known, size_t nknown);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_FRAME_H */
