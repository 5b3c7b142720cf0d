/*
 * test_attr.c - session attributes (src/server/attr.c): who may change a
 * key, the bounds on keys, values and their number, UTF-8 checking, order,
 * and pruning by owner.
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

#include "server.h"

/* Collects "key=value@owner;" for each attribute visited. */
static int
collect_cb(const char *key, const char *value, const char *owner, void *arg)
{
	char	*buf = arg;
	size_t	 len = strlen(buf);

	snprintf(buf + len, 512 - len, "%s=%s@%s;", key, value, owner);
	return 0;
}

/* Stops the walk at the second attribute. */
static int
stop_cb(const char *key, const char *value, const char *owner, void *arg)
{
	int	*n = arg;

	return ++*n == 2 ? 7 : 0;
}

/* Keeps the attributes of plugin "chat" only. */
static int
keep_chat(const char *owner, void *arg)
{
	return strcmp(owner, "chat") == 0;
}

/* The first setter owns a key; others may read it, not change it. */
static void
test_owner(void **state)
{
	struct attr_set	*set = NULL;
	char		 buf[512] = "";

	assert_null(attr_get(set, "nick"));
	assert_int_equal(attr_set(&set, "chat", "nick", NULL), AC_ATTR_OK);
	assert_null(set);	/* removing nothing makes nothing */
	assert_int_equal(attr_set(&set, "chat", "nick", "alice"), AC_ATTR_OK);
	assert_string_equal(attr_get(set, "nick"), "alice");
	assert_int_equal(attr_set(&set, "mine", "nick", "mallory"),
	    AC_ATTR_NOT_OWNER);
	assert_int_equal(attr_set(&set, "mine", "nick", NULL),
	    AC_ATTR_NOT_OWNER);
	assert_string_equal(attr_get(set, "nick"), "alice");
	assert_int_equal(attr_set(&set, "chat", "nick", "bob"), AC_ATTR_OK);
	assert_int_equal(attr_set(&set, "mine", "mood", "ok"), AC_ATTR_OK);
	assert_int_equal(attr_set(&set, "chat", "rooms", "dev"), AC_ATTR_OK);
	attr_foreach(set, collect_cb, buf);
	assert_string_equal(buf, "nick=bob@chat;mood=ok@mine;rooms=dev@chat;");

	/* Removed by its owner, the key is anyone's; order is kept. */
	assert_int_equal(attr_set(&set, "chat", "nick", NULL), AC_ATTR_OK);
	assert_null(attr_get(set, "nick"));
	assert_int_equal(attr_set(&set, "mine", "nick", "m"), AC_ATTR_OK);
	buf[0] = '\0';
	attr_foreach(set, collect_cb, buf);
	assert_string_equal(buf, "mood=ok@mine;rooms=dev@chat;nick=m@mine;");

	attr_prune(set, keep_chat, NULL);
	buf[0] = '\0';
	attr_foreach(set, collect_cb, buf);
	assert_string_equal(buf, "rooms=dev@chat;");
	attr_free(set);
}

/* Keys are short tokens; values bounded, well-formed UTF-8. */
static void
test_bounds(void **state)
{
	static const char *bad_values[] = {
		"\xc0\x80",		/* overlong NUL */
		"\xe0\x80\xaf",		/* overlong */
		"\xed\xa0\x80",		/* UTF-16 surrogate */
		"\xf4\x90\x80\x80",	/* past U+10FFFF */
		"\xe2\x82",		/* cut short */
		"a\xffz",
		"\x80",
	};
	struct attr_set	*set = NULL;
	char		 key[AC_ATTR_KEY_MAX + 2], value[AC_ATTR_VALUE_MAX + 8];
	size_t		 i;
	int		 n = 0;

	assert_int_equal(attr_set(&set, "p", "", "x"), AC_ATTR_INVALID);
	assert_int_equal(attr_set(&set, "p", "a/b", "x"), AC_ATTR_INVALID);
	assert_int_equal(attr_set(&set, "p", "a b", "x"), AC_ATTR_INVALID);
	assert_int_equal(attr_set(&set, "p", NULL, "x"), AC_ATTR_INVALID);
	memset(key, 'k', sizeof key);
	key[AC_ATTR_KEY_MAX] = '\0';
	assert_int_equal(attr_set(&set, "p", key, "x"), AC_ATTR_OK);
	key[AC_ATTR_KEY_MAX] = 'k';
	key[AC_ATTR_KEY_MAX + 1] = '\0';
	assert_int_equal(attr_set(&set, "p", key, "x"), AC_ATTR_INVALID);
	assert_int_equal(attr_set(&set, "p", "A.z_0-9", "x"), AC_ATTR_OK);

	memset(value, 'v', sizeof value);
	value[AC_ATTR_VALUE_MAX] = '\0';
	assert_int_equal(attr_set(&set, "p", "long", value), AC_ATTR_OK);
	value[AC_ATTR_VALUE_MAX] = 'v';
	value[AC_ATTR_VALUE_MAX + 1] = '\0';
	assert_int_equal(attr_set(&set, "p", "long", value), AC_ATTR_INVALID);
	assert_int_equal(strlen(attr_get(set, "long")), AC_ATTR_VALUE_MAX);
	/* A 4-byte character across the bound is too long as well. */
	memset(value, 'v', sizeof value);
	memcpy(value + AC_ATTR_VALUE_MAX - 2, "\xf0\x9f\x98\x80", 5);
	assert_int_equal(attr_set(&set, "p", "long", value), AC_ATTR_INVALID);
	memcpy(value + AC_ATTR_VALUE_MAX - 4, "\xf0\x9f\x98\x80", 5);
	assert_int_equal(attr_set(&set, "p", "long", value), AC_ATTR_OK);

	assert_int_equal(attr_set(&set, "p", "u", "b\xc3\xb6" "b \xe2\x82\xac "
	    "\xf0\x9f\x98\x80"), AC_ATTR_OK);
	assert_int_equal(attr_set(&set, "p", "e", ""), AC_ATTR_OK);
	assert_string_equal(attr_get(set, "e"), "");
	for (i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
		if (attr_set(&set, "p", "bad", bad_values[i]) !=
		    AC_ATTR_INVALID)
			fail_msg("value %zu accepted", i);
	}
	assert_null(attr_get(set, "bad"));
	assert_int_equal(attr_foreach(set, stop_cb, &n), 7);
	assert_int_equal(n, 2);
	attr_free(set);
}

/* A session holds at most AC_ATTR_MAX attributes. */
static void
test_full(void **state)
{
	struct attr_set	*set = NULL;
	char		 key[16];
	int		 i;

	for (i = 0; i < AC_ATTR_MAX; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(attr_set(&set, "p", key, "v"), AC_ATTR_OK);
	}
	assert_int_equal(attr_set(&set, "p", "one-more", "v"), AC_ATTR_FULL);
	assert_int_equal(attr_set(&set, "p", "k3", "changed"), AC_ATTR_OK);
	assert_int_equal(attr_set(&set, "p", "k3", NULL), AC_ATTR_OK);
	assert_int_equal(attr_set(&set, "p", "one-more", "v"), AC_ATTR_OK);
	assert_string_equal(attr_get(set, "one-more"), "v");
	attr_free(set);
	attr_free(NULL);
}

/* Run the attribute tests. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_full),
	};

	return cmocka_run_group_tests_name("attr", tests, NULL, NULL);
}
