/*
 * test_iface.c - the table of named interfaces of a plugin chain
 * (src/server/iface.c): names, one publisher per name, versions.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server.h"

/* Publish, look up by name and version, refuse what is not valid. */
static void
test_table(void **state)
{
	struct iface_table	 t = { NULL, 0 };
	struct ac_plugin	*a = (struct ac_plugin *)&t, *owner;
	static const int	 one = 1, two = 2;
	const char		*why;
	unsigned int		 v;
	char			 name[AC_INTERFACE_NAME_MAX + 2];

	assert_null(iface_get(&t, "history", 1, &v, &owner));
	assert_int_equal(v, 0);
	assert_null(owner);
	assert_int_equal(iface_publish(&t, a, "history", 2, &one, &why), 0);
	assert_int_equal(iface_publish(&t, a, "chat.rooms-v1", 1, &two,
	    &why), 0);
	assert_int_equal(iface_publish(&t, a, "history", 3, &two, &why), -1);
	assert_non_null(strstr(why, "already"));
	assert_int_equal(iface_publish(&t, a, "History", 1, &two, &why), -1);
	assert_int_equal(iface_publish(&t, a, "", 1, &two, &why), -1);
	assert_int_equal(iface_publish(&t, a, "a/b", 1, &two, &why), -1);
	assert_int_equal(iface_publish(&t, a, NULL, 1, &two, &why), -1);
	assert_int_equal(iface_publish(&t, a, "nothing", 1, NULL, &why), -1);
	memset(name, 'n', sizeof name);
	name[AC_INTERFACE_NAME_MAX] = '\0';
	assert_int_equal(iface_publish(&t, a, name, 1, &two, &why), 0);
	name[AC_INTERFACE_NAME_MAX] = 'n';
	name[AC_INTERFACE_NAME_MAX + 1] = '\0';
	assert_int_equal(iface_publish(&t, a, name, 1, &two, &why), -1);

	assert_ptr_equal(iface_get(&t, "history", 1, &v, &owner), &one);
	assert_int_equal(v, 2);
	assert_ptr_equal(owner, a);
	assert_ptr_equal(iface_get(&t, "history", 2, NULL, NULL), &one);
	/* Too old: not given, but what there is is said. */
	assert_null(iface_get(&t, "history", 3, &v, &owner));
	assert_int_equal(v, 2);
	assert_ptr_equal(owner, a);
	assert_ptr_equal(iface_get(&t, "chat.rooms-v1", 0, NULL, NULL), &two);
	assert_null(iface_get(&t, NULL, 0, NULL, NULL));
	iface_free(&t);
	assert_int_equal(t.n, 0);
	assert_null(iface_get(&t, "history", 1, NULL, NULL));
}

/* Run the interface table tests. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests_name("iface", tests, NULL, NULL);
}
