/*
 * test_utf8.c - libasyncchat's UTF-8 check (RFC 3629), which session
 * attributes, the logger plugin and clients rely on: the edges of every
 * sequence length, and what must be refused.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <asyncchat/utf8.h>

/* Each well-formed sequence at the edges of its range, with its value. */
static void
test_len_edges(void **state)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
		uint32_t	 cp;
	} rows[] = {
		{ "\x00", 1, 0x0 },
		{ "\x7f", 1, 0x7f },
		{ "\xc2\x80", 2, 0x80 },
		{ "\xdf\xbf", 2, 0x7ff },
		{ "\xe0\xa0\x80", 3, 0x800 },
		{ "\xed\x9f\xbf", 3, 0xd7ff },
		{ "\xee\x80\x80", 3, 0xe000 },
		{ "\xef\xbf\xbf", 3, 0xffff },
		{ "\xf0\x90\x80\x80", 4, 0x10000 },
		{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
	};
	uint32_t	cp;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		cp = 0xdeadbeef;
		assert_int_equal(ac_utf8_len(rows[i].bytes, rows[i].len, &cp),
		    rows[i].len);
		assert_int_equal(cp, rows[i].cp);
		assert_true(ac_utf8_valid(rows[i].bytes, rows[i].len));
	}
}

/* Overlong forms, surrogates, past U+10FFFF, stray and cut-off bytes. */
static void
test_refused(void **state)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
	} rows[] = {
		{ "\xc0\x80", 2 },		/* overlong NUL */
		{ "\xc1\xbf", 2 },		/* overlong 7f */
		{ "\xe0\x9f\xbf", 3 },		/* overlong 7ff */
		{ "\xf0\x8f\xbf\xbf", 4 },	/* overlong ffff */
		{ "\xed\xa0\x80", 3 },		/* U+D800 */
		{ "\xed\xbf\xbf", 3 },		/* U+DFFF */
		{ "\xf4\x90\x80\x80", 4 },	/* U+110000 */
		{ "\xf5\x80\x80\x80", 4 },
		{ "\xff", 1 },
		{ "\x80", 1 },			/* a lone continuation */
		{ "\xc2", 1 },			/* cut off */
		{ "\xe2\x82", 2 },
		{ "\xf0\x9f\x98", 3 },
		{ "\xc2\x41", 2 },		/* not a continuation */
		{ "\xe2\x82\x41", 3 },
	};
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		assert_int_equal(ac_utf8_len(rows[i].bytes, rows[i].len,
		    NULL), 0);
		assert_false(ac_utf8_valid(rows[i].bytes, rows[i].len));
	}
}

/* A whole text: valid only if every sequence in it is. */
static void
test_valid_text(void **state)
{
	const char	*ok = "na\xc3\xafve caf\xc3\xa9 \xe2\x82\xac 5 "
	    "\xf0\x9f\x98\x80";
	char		 bad[64];

	(void)state;
	assert_true(ac_utf8_valid("", 0));
	assert_true(ac_utf8_valid(ok, strlen(ok)));
	/* Cut inside the last sequence. */
	assert_false(ac_utf8_valid(ok, strlen(ok) - 1));
	/* A bad byte in the middle. */
	strcpy(bad, ok);
	bad[3] = '\xff';
	assert_false(ac_utf8_valid(bad, strlen(bad)));
	/* A NUL is well-formed: length, not the string, decides. */
	assert_true(ac_utf8_valid("a\0b", 3));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_len_edges),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_valid_text),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
