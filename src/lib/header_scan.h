/*
 * header_scan.h - reading a received frame's header JSON in place, without
 * building it (library internal).
 */
#ifndef AC_LIB_HEADER_SCAN_H
#define AC_LIB_HEADER_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* What a member of the header object was found to be. */
enum header_scan_kind {
	HEADER_SCAN_ABSENT = 0,	/* no such member */
	HEADER_SCAN_STRING,	/* a string: see raw, len, escaped */
	HEADER_SCAN_OTHER,	/* null, a number, true, false, array, object */
};

/*
 * One member's value, pointing into the scanned bytes. For a string, raw
 * and len are the bytes between its quotes, as sent; escaped says whether
 * they hold a backslash (if not, they are the string's value as is).
 */
struct header_scan_value {
	enum header_scan_kind	 kind;
	const uint8_t		*raw;
	size_t			 len;
	int			 escaped;
};

/*
 * The members a receiver acts on. When a name occurs more than once, the
 * last occurrence counts, as json-c and Python both have it.
 */
struct header_scan {
	struct header_scan_value	type;
	struct header_scan_value	content_type;
	struct header_scan_value	session_id;
};

/*
 * Check that the len bytes at json are one JSON object (white space around
 * it allowed) exactly as strict as asyncchat's json-c parse of a header
 * (header_scan.c says what that is), and fill hs. Returns 0, or -1 if the
 * bytes are not such an object. Allocates nothing.
 */
int	header_scan(const uint8_t *json, size_t len, struct header_scan *hs);

/*
 * Decode the value of a string that header_scan() found: store its first
 * cap bytes in out and return its whole length (never more than v->len:
 * a value is never longer than its spelling). The bytes are json-c's:
 * escapes decoded to UTF-8, an unpaired surrogate as U+FFFD, \u0000 as a
 * NUL byte. Nothing is appended.
 */
size_t	header_scan_decode(const struct header_scan_value *v, char *out,
	    size_t cap);

/*
 * Call cb for each top-level member of the header object in json (bytes
 * header_scan() accepted), in order, duplicates included: name is the
 * member's name as sent (a string value), value its value (a string, or
 * HEADER_SCAN_OTHER with raw and len spanning its spelling). A non-zero
 * return from cb stops the walk. Returns 0, or -1 if the bytes are not an
 * object header_scan() accepts. Allocates nothing.
 */
int	header_scan_walk(const uint8_t *json, size_t len,
	    int (*cb)(const struct header_scan_value *name,
	    const struct header_scan_value *value, void *arg), void *arg);

/*
 * Non-zero when a member name found by the scan is `name` (len bytes) as
 * json-c keeps names: the decoded name up to its first NUL.
 */
int	header_scan_name_is(const struct header_scan_value *v,
	    const char *name, size_t len);

#endif /* AC_LIB_HEADER_SCAN_H */
