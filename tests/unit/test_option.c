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

/* Numbers parse within their range; anything else is refused. */
static void
test_uint(void **state)
{
	static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1k",
	    "0x10", "18446744073709551616" };
	unsigned long long	v = 42;
	size_t			i;

	(void)state;
	assert_int_equal(ac_option_uint("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ac_option_uint("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(ac_option_uint("18446744073709551615", 0,
	    18446744073709551615ull, &v), 0);
	assert_true(v == 18446744073709551615ull);
	v = 42;
	assert_int_equal(ac_option_uint("11", 0, 10, &v), -1);
	assert_int_equal(ac_option_uint("4", 5, 10, &v), -1);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(ac_option_uint(bad[i], 0, ~0ull, &v), -1);
	assert_int_equal(ac_option_uint(NULL, 0, 10, &v), -1);
	assert_true(v == 42);
}

/* Run the option cases. */
int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_bool_refused),
		cmocka_unit_test(test_uint),
	};

	return cmocka_run_group_tests_name("option", tests, NULL, NULL);
}
