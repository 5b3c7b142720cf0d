/*
 * test_log.c - asyncchatd's log (src/server/log.c): what libevent says
 * reaches the log, and the same message said in a loop does not flood it.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "log.h"

/* Read the lines of the file at path into a heap string; count them. */
static char *
read_log(const char *path, size_t *lines)
{
	FILE	*f;
	char	*text;
	long	 len;
	size_t	 i;

	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, len, f), (size_t)len);
	fclose(f);
	*lines = 0;
	for (i = 0; i < (size_t)len; i++)
		*lines += text[i] == '\n';
	return (text);
}

/*
 * A libevent warning repeated 1000 times (event_add() on an event with no
 * base, as a failing accept() in a loop would repeat its own) is written
 * once; the next, different, message brings the count.
 */
static void
test_libevent_repeats(void **state)
{
	struct event	 ev;
	char		 path[] = "/tmp/ac-log-XXXXXX", *cause = NULL, *text;
	size_t		 lines;
	int		 fd, i;

	(void)state;
	if ((fd = mkstemp(path)) == -1)
		fail_msg("mkstemp");
	close(fd);
	log_init();
	if (log_open(path, AC_LOG_INFO, &cause) == -1)
		fail_msg("%s", cause);
	log_libevent();

	memset(&ev, 0, sizeof ev);
	for (i = 0; i < 1000; i++)
		assert_int_equal(event_add(&ev, NULL), -1);
	text = read_log(path, &lines);
	assert_int_equal(lines, 1);
	assert_non_null(strstr(text, "warning libevent: event_add: event has "
	    "no event_base set"));
	free(text);

	assert_int_equal(event_del(&ev), -1);
	text = read_log(path, &lines);
	assert_int_equal(lines, 3);
	assert_non_null(strstr(text, "libevent: the last message was repeated "
	    "999 times\n"));
	assert_non_null(strstr(text, "libevent: event_del"));
	free(text);

	log_close();
	unlink(path);
}

/* Run the tests. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libevent_repeats),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
