/*
 * test_history_merge.c - how the history plugin chooses a replay's frames
 * (plugins/history/merge.c): the messages not written yet and those on
 * disk merged newest first, each taken once, within the limit and the
 * byte budget, and only frames that are their row's.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <json-c/json.h>

#include <asyncchat/frame.h>
#include <asyncchat/key.h>

#include "../../plugins/history/history.h"

/* A signed room message frame as chat makes it, in new memory. */
static struct store_frame
frame(const char *room, uint64_t seq, uint64_t row_seq)
{
	struct store_frame	 f;
	struct ac_key		*key;
	struct evbuffer		*b = evbuffer_new();
	struct json_object	*extra = json_object_new_object();

	assert_non_null(key = ac_key_new("default-key", 11));
	json_object_object_add(extra, "room", json_object_new_string(room));
	json_object_object_add(extra, "from", json_object_new_string("a"));
	json_object_object_add(extra, "seq",
	    json_object_new_int64((int64_t)seq));
	assert_int_equal(ac_frame_encode(b, key, AC_MSG_MESSAGE,
	    "text/plain; charset=utf-8", NULL, extra, "hello", 5), 0);
	json_object_put(extra);
	f.len = evbuffer_get_length(b);
	assert_non_null(f.bytes = malloc(f.len));
	evbuffer_remove(b, f.bytes, f.len);
	evbuffer_free(b);
	ac_key_free(key);
	f.seq = row_seq;
	return f;
}

/* A source of frames of room "Dev" with these seqs (0 ends the list). */
static struct merge_source
source(const uint64_t *seqs, int cut)
{
	struct merge_source	s;
	size_t			n = 0, i;

	while (seqs[n] != 0)
		n++;
	s.f = calloc(n + 1, sizeof *s.f);
	assert_non_null(s.f);
	for (i = 0; i < n; i++)
		s.f[i] = frame("Dev", seqs[i], seqs[i]);
	s.n = n;
	s.cut = cut;
	return s;
}

/* Free what is left of a source, and what was taken. */
static void
release(struct merge_source *a, struct merge_source *b,
    struct store_frame *out, size_t n)
{
	store_frames_free(a->f, a->n);
	store_frames_free(b->f, b->n);
	store_frames_free(out, n);
}

/* The seqs of out, for comparing. */
static void
assert_seqs(const struct store_frame *out, size_t n, const uint64_t *want)
{
	size_t	i;

	for (i = 0; i < n; i++)
		assert_int_equal(out[i].seq, want[i]);
	assert_int_equal(want[n], 0);
}

/* Interleaved sources merge newest first; a seq in both is taken once. */
static void
test_interleave_dedupe(void **state)
{
	static const uint64_t	 pa[] = { 9, 7, 6, 0 };
	static const uint64_t	 pb[] = { 8, 7, 6, 5, 0 };
	static const uint64_t	 want[] = { 9, 8, 7, 6, 5, 0 };
	struct merge_source	 a = source(pa, 0), b = source(pb, 0);
	struct store_frame	*out = calloc(10, sizeof *out);
	size_t			 n, mism = 0;
	int			 cut;

	(void)state;
	n = merge_newest("dev", &a, &b, 10, 1 << 20, out, &mism, &cut);
	assert_int_equal(n, 5);
	assert_seqs(out, n, want);
	assert_int_equal(mism, 0);
	assert_int_equal(cut, 0);
	release(&a, &b, out, n);
}

/* The limit keeps the newest. */
static void
test_limit(void **state)
{
	static const uint64_t	 pa[] = { 12, 11, 0 };
	static const uint64_t	 pb[] = { 10, 9, 8, 0 };
	static const uint64_t	 want[] = { 12, 11, 10, 0 };
	struct merge_source	 a = source(pa, 0), b = source(pb, 0);
	struct store_frame	*out = calloc(3, sizeof *out);
	size_t			 n, mism = 0;
	int			 cut;

	(void)state;
	n = merge_newest("dev", &a, &b, 3, 1 << 20, out, &mism, &cut);
	assert_seqs(out, n, want);
	assert_int_equal(cut, 0);
	release(&a, &b, out, n);
}

/* The byte budget stops it, and says so; so does a source its own budget
 * stopped, once it runs out. */
static void
test_budget(void **state)
{
	static const uint64_t	 pa[] = { 4, 3, 0 }, pb[] = { 2, 1, 0 },
	    want2[] = { 4, 3, 0 }, want4[] = { 4, 3, 2, 1, 0 };
	struct merge_source	 a = source(pa, 0), b = source(pb, 0);
	struct store_frame	*out = calloc(4, sizeof *out);
	size_t			 n, mism = 0, one = a.f[0].len;
	int			 cut;

	(void)state;
	n = merge_newest("dev", &a, &b, 4, 2 * one + one / 2, out, &mism,
	    &cut);
	assert_seqs(out, n, want2);
	assert_int_equal(cut, 1);
	release(&a, &b, out, n);

	a = source(pa, 0);
	b = source(pb, 1);
	out = calloc(10, sizeof *out);
	n = merge_newest("dev", &a, &b, 10, 1 << 20, out, &mism, &cut);
	assert_seqs(out, n, want4);
	assert_int_equal(cut, 1);
	release(&a, &b, out, n);
}

/* A frame that is not its row's (another room, another seq, not a frame)
 * is left out and counted. */
static void
test_mismatch(void **state)
{
	static const uint64_t	 none[] = { 0 };
	struct merge_source	 a = source(none, 0), b;
	struct store_frame	*out = calloc(10, sizeof *out);
	size_t			 n, mism = 0;
	int			 cut;

	(void)state;
	b.f = calloc(4, sizeof *b.f);
	b.n = 4;
	b.cut = 0;
	b.f[0] = frame("DEV", 4, 4);		/* the room, another case */
	b.f[1] = frame("ops", 3, 3);		/* another room's */
	b.f[2] = frame("dev", 7, 2);		/* another seq's */
	b.f[3] = frame("dev", 1, 1);
	b.f[3].len--;				/* cut short */
	n = merge_newest("dev", &a, &b, 10, 1 << 20, out, &mism, &cut);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].seq, 4);
	assert_int_equal(mism, 3);
	b.f[3].len++;
	release(&a, &b, out, n);
}

/* The header check itself on odd input. */
static void
test_matches(void **state)
{
	struct store_frame	f = frame("Dev", 3, 3);
	uint8_t			junk[100];

	(void)state;
	assert_int_equal(merge_frame_matches(f.bytes, f.len, "dev", 3), 1);
	assert_int_equal(merge_frame_matches(f.bytes, f.len, "dev", 4), 0);
	assert_int_equal(merge_frame_matches(f.bytes, f.len, "de", 3), 0);
	assert_int_equal(merge_frame_matches(f.bytes, f.len + 1, "dev", 3),
	    0);
	assert_int_equal(merge_frame_matches(NULL, 0, "dev", 3), 0);
	memset(junk, 0xa5, sizeof junk);
	assert_int_equal(merge_frame_matches(junk, sizeof junk, "dev", 3), 0);
	free(f.bytes);
}

/* Run the merge cases. */
int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interleave_dedupe),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_matches),
	};

	return cmocka_run_group_tests_name("history_merge", tests, NULL,
	    NULL);
}
