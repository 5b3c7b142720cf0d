/*
 * header_json.h - building the header JSON of a frame (library internal).
 */
#ifndef AC_LIB_HEADER_JSON_H
#define AC_LIB_HEADER_JSON_H

#include <stddef.h>

#include <asyncchat/frame.h>

/*
 * A growable byte string that starts in its own inline storage, so the
 * common small header costs no allocation.
 */
struct hjbuf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	int	 failed;	/* an allocation failed: contents are unusable */
	char	 inline_store[384];
};

/* Start an empty buffer. */
void	hjbuf_init(struct hjbuf *b);

/* Release what the buffer allocated. */
void	hjbuf_free(struct hjbuf *b);

/* Write the Python-spelled header JSON for these members into b; 0 or -1. */
int	header_json_build(struct hjbuf *b, enum ac_msg_type type,
	    const char *content_type, const char *session_id,
	    struct json_object *extra);

#endif /* AC_LIB_HEADER_JSON_H */
