/*
 * test_origin.c - web_origins (src/server/origin.c): which lists the
 * configuration accepts, which Origin a policy lets open a session, and
 * which Host names count as loopback against DNS rebinding.
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

/* Lists the configuration takes, and those it refuses. */
static void
test_list_check(void **state)
{
	static const char *good[] = {
		"*", "http://a.example", "https://a.example:8443",
		"http://127.0.0.1:8080, https://chat.example.org",
		"  http://a.example\thttps://b.example ,http://c.example  ",
		"http://[::1]:8080", "HTTP://A.EXAMPLE", "http://a_b.example",
		NULL
	};
	static const char *bad[] = {
		"", " ", ",", "a.example", "ftp://a.example", "http://",
		"http://a.example/", "http://a.example/x", "http://a.example:",
		"http://a.example:0", "http://a.example:65536",
		"http://a.example:123456", "http://a.example:8x",
		"http://a.example, *", "* http://a.example", "**", "null",
		"http://[::1", "http://[]:80", "http://[::1]x", "http://[g::1]",
		"http://a example", "http://a.example?x", "http://user@a.example",
		NULL
	};
	size_t		i;

	for (i = 0; good[i] != NULL; i++) {
		if (!origin_list_check(good[i]))
			fail_msg("refused: \"%s\"", good[i]);
	}
	for (i = 0; bad[i] != NULL; i++) {
		if (origin_list_check(bad[i]))
			fail_msg("accepted: \"%s\"", bad[i]);
	}
}

/* The default policy: the page's own origin, by the listener's scheme. */
static void
test_own_origin(void **state)
{
	/* No Origin: not a browser. */
	assert_true(origin_allowed(NULL, NULL, 0, "chat.example", 0));
	assert_true(origin_allowed(NULL, "http://chat.example", 0,
	    "chat.example", 0));
	assert_true(origin_allowed(NULL, "http://chat.example:80", 0,
	    "chat.example", 0));
	assert_true(origin_allowed(NULL, "http://CHAT.example", 0,
	    "chat.EXAMPLE:80", 0));
	assert_true(origin_allowed(NULL, "https://chat.example", 1,
	    "chat.example:443", 0));
	assert_true(origin_allowed(NULL, "http://chat.example:8080", 0,
	    "chat.example:8080", 0));
	/* Another scheme, port, name, or no Host at all. */
	assert_false(origin_allowed(NULL, "https://chat.example", 0,
	    "chat.example", 0));
	assert_false(origin_allowed(NULL, "http://chat.example", 1,
	    "chat.example", 0));
	assert_false(origin_allowed(NULL, "http://chat.example:8081", 0,
	    "chat.example:8080", 0));
	assert_false(origin_allowed(NULL, "http://evil.example", 0,
	    "chat.example", 0));
	assert_false(origin_allowed(NULL, "http://chat.example", 0, NULL, 0));
	assert_false(origin_allowed(NULL, "null", 0, "chat.example", 0));
	assert_false(origin_allowed(NULL, "", 0, "chat.example", 0));
	assert_false(origin_allowed(NULL, "http://chat.example/", 0,
	    "chat.example", 0));
	/* A Host that is not a host: never the own origin. */
	assert_false(origin_allowed(NULL, "http://a", 0, "a/b", 0));
	assert_false(origin_allowed(NULL, "http://a", 0, "", 0));
}

/* On a loopback listener, the Host must be a loopback name. */
static void
test_loopback(void **state)
{
	assert_true(origin_allowed(NULL, "http://127.0.0.1:8080", 0,
	    "127.0.0.1:8080", 1));
	assert_true(origin_allowed(NULL, "http://127.1.2.3:8080", 0,
	    "127.1.2.3:8080", 1));
	assert_true(origin_allowed(NULL, "http://localhost:8080", 0,
	    "localhost:8080", 1));
	assert_true(origin_allowed(NULL, "http://[::1]:8080", 0,
	    "[::1]:8080", 1));
	/* A rebound name agrees with itself, but is not loopback. */
	assert_false(origin_allowed(NULL, "http://evil.example:8080", 0,
	    "evil.example:8080", 1));
	assert_false(origin_allowed(NULL, "http://128.0.0.1:8080", 0,
	    "128.0.0.1:8080", 1));
	assert_false(origin_allowed(NULL, "http://127.0.0.1.evil:8080", 0,
	    "127.0.0.1.evil:8080", 1));
	assert_false(origin_allowed(NULL, "http://localhost.evil:8080", 0,
	    "localhost.evil:8080", 1));
	assert_false(origin_allowed(NULL, "http://[::2]:8080", 0,
	    "[::2]:8080", 1));
	/* Elsewhere a name is the operator's to list. */
	assert_true(origin_allowed(NULL, "http://evil.example:8080", 0,
	    "evil.example:8080", 0));

	assert_true(origin_host_is_loopback("localhost"));
	assert_true(origin_host_is_loopback("LOCALHOST:1"));
	assert_true(origin_host_is_loopback("127.0.0.1"));
	assert_true(origin_host_is_loopback("[::1]"));
	assert_false(origin_host_is_loopback("[::1]x"));
	assert_false(origin_host_is_loopback("127.0.0.1:"));
	assert_false(origin_host_is_loopback("0x7f.0.0.1"));
	assert_false(origin_host_is_loopback("127.1"));
	assert_false(origin_host_is_loopback(""));
}

/* A list, and *. */
static void
test_listed(void **state)
{
	const char	*list = "https://chat.example.org http://127.0.0.1:1234";

	assert_true(origin_allowed(list, "https://chat.example.org", 1,
	    "x", 0));
	assert_true(origin_allowed(list, "https://chat.example.org:443", 0,
	    "x", 1));
	assert_true(origin_allowed(list, "http://127.0.0.1:1234", 0, NULL,
	    0));
	assert_false(origin_allowed(list, "http://chat.example.org", 0,
	    "chat.example.org", 0));
	assert_false(origin_allowed(list, "https://chat.example.org.evil", 0,
	    "x", 0));
	assert_false(origin_allowed(list, "null", 0, "x", 0));
	/* A list does not fall back to the own origin. */
	assert_false(origin_allowed(list, "http://x", 0, "x", 0));
	assert_true(origin_allowed(list, NULL, 0, "x", 0));

	assert_true(origin_allowed("*", "http://evil.example", 0, "x", 1));
	assert_true(origin_allowed("*", "null", 0, NULL, 1));
}

/* Run the web_origins tests. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_check),
		cmocka_unit_test(test_own_origin),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_listed),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
