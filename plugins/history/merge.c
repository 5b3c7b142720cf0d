/*
 * merge.c - what a replay sends, chosen from its two sources: the
 * messages handed to the plugin and not written yet (db.c's pending list)
 * and those on disk. Both come newest first; a message may be in both
 * (written between the two reads), and is then taken once. The newest
 * `limit` are kept, within a byte budget, and each must be the frame that
 * was stored for its room and seq: its header JSON is read (the HMAC is
 * checked later, on the loop, by the host), so that a row copied or
 * edited in the file is not replayed as another room's message.
 *
 * Pure functions of their arguments: any thread (replay.c calls them on a
 * worker), and the unit tests call them directly.
 */
#include "config.h"

#include <string.h>

#include <json-c/json.h>

#include <asyncchat/frame.h>

#include "history.h"

/*
 * Non-zero when the frame's header JSON says room key (folded) and seq:
 * the row holds the frame that was stored for it.
 */
int
merge_frame_matches(const uint8_t *bytes, size_t len, const char *key,
    uint64_t seq)
{
	struct ac_fixed_header	 fh;
	struct json_tokener	*tok;
	struct json_object	*hdr, *v;
	char			 folded[HISTORY_ROOM_MAX + 1];
	const char		*room;
	int			 ok = 0;

	if (bytes == NULL || len < AC_FIXED_HEADER_LEN ||
	    ac_fixed_header_parse(bytes, NULL, &fh) != AC_FRAME_OK ||
	    ac_fixed_header_frame_len(&fh) != len || fh.header_len == 0)
		return 0;
	if ((tok = json_tokener_new()) == NULL)
		return 0;
	hdr = json_tokener_parse_ex(tok, (const char *)bytes +
	    AC_FIXED_HEADER_LEN, (int)fh.header_len);
	json_tokener_free(tok);
	if (hdr == NULL)
		return 0;
	if (json_object_is_type(hdr, json_type_object) &&
	    json_object_object_get_ex(hdr, "room", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    roomname_valid_string(room = json_object_get_string(v)) &&
	    json_object_object_get_ex(hdr, "seq", &v) &&
	    json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) > 0 &&
	    (uint64_t)json_object_get_int64(v) == seq) {
		roomname_fold(folded, room);
		ok = strcmp(folded, key) == 0;
	}
	json_object_put(hdr);
	return ok;
}

/*
 * Merge a and b (each newest first, each holding at most limit) into out
 * (room for limit), newest first: at most limit frames of room key, no
 * more than budget bytes in all. The bytes of a frame taken move to out
 * (its pointer in a or b becomes NULL); the rest stay for the caller to
 * free. *mismatched counts frames left out because they are not their
 * row's; *cut is set when the budget stopped the merge, or when a source
 * that its own budget stopped ran out first (it may have hidden more).
 * Returns how many are in out.
 */
size_t
merge_newest(const char *key, struct merge_source *a,
    struct merge_source *b, size_t limit, size_t budget,
    struct store_frame *out, size_t *mismatched, int *cut)
{
	struct store_frame	*pick;
	size_t			 i = 0, j = 0, n = 0, bytes = 0;

	*cut = 0;
	while (n < limit && (i < a->n || j < b->n)) {
		if (j >= b->n || (i < a->n && a->f[i].seq >= b->f[j].seq)) {
			if (j < b->n && b->f[j].seq == a->f[i].seq)
				j++;
			pick = &a->f[i++];
		} else
			pick = &b->f[j++];
		if (!merge_frame_matches(pick->bytes, pick->len, key,
		    pick->seq)) {
			(*mismatched)++;
			continue;
		}
		if (pick->len > budget - bytes) {
			*cut = 1;
			return n;
		}
		out[n] = *pick;
		pick->bytes = NULL;
		bytes += pick->len;
		n++;
	}
	if (n < limit && ((a->cut && i >= a->n) || (b->cut && j >= b->n)))
		*cut = 1;
	return n;
}
