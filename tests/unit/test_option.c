/*
 * test_option.c - option value parsing shared by the server and plugins.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <asyncchat/option.h>

/* Every accepted spelling, in any case, gives its value. */
static void
test_bool_spellings(void **state)
{
	static const char *const yes[] = { "yes", "YES", "True", "on", "1" };
	static const char *const no[] = { "no", "No", "FALSE", "off", "0" };
	size_t	i;
	int	v;

	(void)state;
	for (i = 0; i < 5; i++) {
		v = -1;
		assert_int_equal(ac_option_bool(yes[i], &v), 0);
		assert_int_equal(v, 1);
		assert_int_equal(ac_option_bool(no[i], &v), 0);
		assert_int_equal(v, 0);
	}
}

/* Anything else is refused and leaves the output alone. */
static void
test_bool_refused(void **state)
{
	static const char *const bad[] = { "", "y", "2", "yes ", " no",
	    "maybe", "onn", "10" };
	size_t	i;
	int	v = 7;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(ac_option_bool(bad[i], &v), -1);
		assert_int_equal(v, 7);
	}
	assert_int_equal(ac_option_bool(NULL, &v), -1);
}

/* Run the option cases. */
int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_bool_refused),
	};

	return cmocka_run_group_tests_name("option", tests, NULL, NULL);
}
