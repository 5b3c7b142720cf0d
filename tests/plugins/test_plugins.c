/*
 * test_plugins.c - unit tests of the shipped plugins (echo, broadcast,
 * logger) and of the loader test modules, each dlopen'd from the build tree
 * and driven through the mock host (mock_host.c), without a server.
 */
/* asprintf, strndup, strptime and timegm. */
#define _GNU_SOURCE

#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "mock_host.h"

/* Where the two kinds of module are built (tests/include.am exports these). */
#define PLUGIN_DIR_VAR	"AC_PLUGIN_BUILDDIR"
#define MODULE_DIR_VAR	"AC_TOP_BUILDDIR"
#define MODULE_SUBDIR	"/tests/plugins/.libs"

#define ID1	"6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90"
#define ID2	"0b9a3f02-58de-4e4c-8d71-3c6f2a9e5b14"
#define ID3	"d2e47a90-1c35-4b8e-a6f0-7e19c3b5d828"
#define ID4	"91c0d8e3-7a24-4f6b-b359-e08d1f4a6c72"
#define TEXT	"text/plain; charset=utf-8"

/* Each test's fake server, sessions, plugin and scratch file. */
struct fixture {
	struct mock_host	 host;
	struct mock_plugin	 mp;
	struct ac_session	*s1, *s2, *s3, *pending;
	char			 path[PATH_MAX];
	char			 rotated[PATH_MAX];
};

/* The directory every test writes in, made once for the group. */
static char	scratch_dir[1024];

/* Make the group's scratch directory under $TMPDIR or /tmp. */
static int
group_setup(void **state)
{
	const char	*tmp;

	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(scratch_dir, sizeof scratch_dir, "%s/acplug.XXXXXX", tmp);
	if (mkdtemp(scratch_dir) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", scratch_dir,
		    strerror(errno));
		return -1;
	}
	/* A file-size limit test must not be killed by SIGXFSZ. */
	signal(SIGXFSZ, SIG_IGN);
	return 0;
}

/* Remove the scratch directory and whatever is left in it. */
static int
group_teardown(void **state)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[PATH_MAX + 256];

	if ((d = opendir(scratch_dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof path, "%s/%s", scratch_dir,
			    de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(scratch_dir);
	return 0;
}

/* A fake server with three handshaken sessions and one still handshaking. */
static int
setup(void **state)
{
	static int	 serial;
	struct fixture	*fx;

	if ((fx = calloc(1, sizeof *fx)) == NULL)
		return -1;
	mock_host_init(&fx->host);
	fx->s1 = mock_session_add(&fx->host, ID1, "127.0.0.1:40312", "tcp", 1);
	fx->s2 = mock_session_add(&fx->host, ID2, "[::1]:40313", "tcp", 1);
	fx->s3 = mock_session_add(&fx->host, ID3, "unix", "unix", 1);
	fx->pending = mock_session_add(&fx->host, ID4, "127.0.0.1:40314",
	    "tls", 0);
	serial++;
	snprintf(fx->path, sizeof fx->path, "%s/chat%d.log", scratch_dir,
	    serial);
	snprintf(fx->rotated, sizeof fx->rotated, "%s/chat%d.log.1",
	    scratch_dir, serial);
	*state = fx;
	return 0;
}

/* Unload the plugin and free the fake server. */
static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	mock_plugin_close(&fx->mp);
	mock_host_clear(&fx->host);
	unlink(fx->path);
	unlink(fx->rotated);
	free(fx);
	return 0;
}

/* dlopen a module from $var/subdir; fails the test if it has no entry. */
static void
load_from(struct fixture *fx, const char *var, const char *subdir,
    const char *name)
{
	char	*path;
	int	 rv;

	path = mock_module_path(var, subdir, name);
	if (path == NULL)
		fail_msg("%s is not set: run through make check", var);
	rv = mock_plugin_open(&fx->mp, &fx->host, path, name);
	free(path);
	assert_int_equal(rv, 0);
	assert_int_equal(fx->mp.desc->abi_version, AC_PLUGIN_ABI_VERSION);
	assert_int_equal(fx->mp.desc->struct_size,
	    sizeof(struct ac_plugin_descriptor));
	assert_string_equal(fx->mp.desc->name, name);
	assert_non_null(fx->mp.desc->init);
}

/* dlopen a shipped plugin. */
static void
load_plugin(struct fixture *fx, const char *name)
{
	load_from(fx, PLUGIN_DIR_VAR, "", name);
}

/* dlopen a check-only loader test module. */
static void
load_module(struct fixture *fx, const char *name)
{
	load_from(fx, MODULE_DIR_VAR, MODULE_SUBDIR, name);
}

/* One option, as the server's config parser would hand it over. */
static struct ac_plugin_option
opt(const char *key, const char *value, int line)
{
	struct ac_plugin_option	o;

	o.key = key;
	o.value = value;
	o.line = line;
	return o;
}

/* Send "hello" as a text message from a session. */
static int
say(struct fixture *fx, struct ac_session *from, const char *text)
{
	return mock_plugin_message(&fx->mp, from, AC_MSG_MESSAGE, TEXT, text,
	    strlen(text));
}

/* The whole of a file in a new NUL-terminated string. */
static char *
slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	long	 size;

	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	buf[size] = '\0';
	fclose(f);
	return buf;
}

/* How many newline-terminated lines a string holds. */
static size_t
count_lines(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			n++;
	}
	return n;
}

/* The n'th line (from 0) of a string, without its newline, in a new string. */
static char *
nth_line(const char *s, size_t n)
{
	const char	*end;
	char		*line;

	while (n-- > 0) {
		if ((s = strchr(s, '\n')) == NULL)
			fail_msg("too few lines");
		s++;
	}
	if ((end = strchr(s, '\n')) == NULL)
		fail_msg("line not terminated");
	line = strndup(s, (size_t)(end - s));
	assert_non_null(line);
	return line;
}

/* A string member of a JSON object, failing the test if it is missing. */
static const char *
member(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no member '%s'", key);
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

/* Check an RFC 3339 UTC time with milliseconds, within a minute of now. */
static void
check_time(const char *t)
{
	struct tm	tm;
	time_t		when;
	const char	*end;

	assert_int_equal(strlen(t), 24);
	memset(&tm, 0, sizeof tm);
	end = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(end);
	assert_true(end[0] == '.' && end[1] >= '0' && end[1] <= '9' &&
	    end[2] >= '0' && end[2] <= '9' && end[3] >= '0' && end[3] <= '9' &&
	    end[4] == 'Z');
	when = timegm(&tm);
	assert_true(when > time(NULL) - 60 && when <= time(NULL) + 1);
}

/* Start the logger on fx->path (plus one more option when key != NULL). */
static void
start_logger(struct fixture *fx, const char *path, const char *key,
    const char *value)
{
	struct ac_plugin_option	opts[2];
	size_t			nopts = 0;

	opts[nopts++] = opt("path", path, 3);
	if (key != NULL)
		opts[nopts++] = opt(key, value, 4);
	assert_int_equal(mock_plugin_start(&fx->mp, opts, nopts), 0);
}

/* logger: a session's attributes are recorded, in order, when it has any. */
static void
test_logger_attrs(void **state)
{
	struct fixture		*fx = *state;
	struct ac_plugin	 chat = { &fx->host, "chat" };
	struct json_object	*o, *attrs;
	char			*data, *line;

	load_plugin(fx, "logger");
	start_logger(fx, fx->path, NULL, NULL);
	assert_int_equal(fx->host.api.session_attr_set(&chat, fx->s1, "nick",
	    "al\"ice"), AC_ATTR_OK);
	assert_int_equal(fx->host.api.session_attr_set(&chat, fx->s1, "room",
	    "dev"), AC_ATTR_OK);
	say(fx, fx->s1, "with");
	say(fx, fx->s2, "without");
	mock_plugin_stop(&fx->mp);

	data = slurp(fx->path);
	assert_int_equal(count_lines(data), 2);
	line = nth_line(data, 0);
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "attrs", &attrs));
	assert_string_equal(member(attrs, "nick"), "al\"ice");
	assert_string_equal(member(attrs, "room"), "dev");
	assert_non_null(strstr(line,
	    "\"attrs\":{\"nick\":\"al\\\"ice\",\"room\":\"dev\"}"));
	json_object_put(o);
	free(line);
	line = nth_line(data, 1);
	assert_null(strstr(line, "attrs"));
	free(line);
	free(data);
}

/* echo: each message goes back to its sender only, as the same frame. */
static void
test_echo_relays_to_sender(void **state)
{
	struct fixture	*fx = *state;

	load_plugin(fx, "echo");
	assert_int_equal(mock_plugin_start(&fx->mp, NULL, 0), 0);

	assert_int_equal(say(fx, fx->s2, "hello"), AC_PLUGIN_CONTINUE);
	assert_int_equal(mock_count(&fx->host, MOCK_RELAY), 1);
	assert_ptr_equal(mock_find(&fx->host, MOCK_RELAY, 0)->session, fx->s2);
	assert_ptr_equal(mock_find(&fx->host, MOCK_RELAY, 0)->frame,
	    &fx->host.frame);
	assert_int_equal(fx->s1->relayed, 0);
	assert_int_equal(fx->s2->relayed, 1);
	assert_int_equal(fx->s3->relayed, 0);
	assert_int_equal(mock_count(&fx->host, MOCK_RELAY_ALL), 0);
	assert_int_equal(mock_count(&fx->host, MOCK_SEND), 0);

	/* A chunk is echoed the same way. */
	assert_int_equal(mock_plugin_message(&fx->mp, fx->s1, AC_MSG_CHUNK,
	    "application/octet-stream", "\x00\x01", 2), AC_PLUGIN_CONTINUE);
	assert_int_equal(fx->s1->relayed, 1);
	assert_int_equal(fx->s2->relayed, 1);
	assert_int_equal(mock_count(&fx->host, MOCK_LOG), 0);
}

/* echo: it has no options, so any option is refused with its line. */
static void
test_echo_refuses_options(void **state)
{
	struct fixture		*fx = *state;
	struct ac_plugin_option	 o = opt("include_sender", "yes", 17);

	load_plugin(fx, "echo");
	assert_int_equal(mock_plugin_start(&fx->mp, &o, 1), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR, NULL), 1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "line 17"), 1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "include_sender"), 1);
}

/* broadcast: by default everyone handshaken but the sender gets it. */
static void
test_broadcast_all_but_sender(void **state)
{
	struct fixture	*fx = *state;

	load_plugin(fx, "broadcast");
	assert_int_equal(mock_plugin_start(&fx->mp, NULL, 0), 0);

	assert_int_equal(say(fx, fx->s1, "hi all"), AC_PLUGIN_CONTINUE);
	assert_int_equal(mock_count(&fx->host, MOCK_RELAY_ALL), 1);
	assert_ptr_equal(mock_find(&fx->host, MOCK_RELAY_ALL, 0)->session,
	    fx->s1);
	assert_int_equal(fx->s1->relayed, 0);
	assert_int_equal(fx->s2->relayed, 1);
	assert_int_equal(fx->s3->relayed, 1);
	assert_int_equal(fx->pending->relayed, 0);
	assert_ptr_equal(fx->s2->last_relayed, &fx->host.frame);
	assert_int_equal(mock_count(&fx->host, MOCK_RELAY), 0);
	assert_int_equal(mock_count(&fx->host, MOCK_SEND), 0);
}

/* broadcast: include_sender = yes sends to everyone, the sender too. */
static void
test_broadcast_include_sender(void **state)
{
	struct fixture		*fx = *state;
	struct ac_plugin_option	 o = opt("include_sender", "yes", 5);

	load_plugin(fx, "broadcast");
	assert_int_equal(mock_plugin_start(&fx->mp, &o, 1), 0);

	assert_int_equal(say(fx, fx->s3, "me too"), AC_PLUGIN_CONTINUE);
	assert_null(mock_find(&fx->host, MOCK_RELAY_ALL, 0)->session);
	assert_int_equal(fx->s1->relayed, 1);
	assert_int_equal(fx->s2->relayed, 1);
	assert_int_equal(fx->s3->relayed, 1);
	assert_int_equal(fx->pending->relayed, 0);
}

/* broadcast: every spelling of yes and no is understood. */
static void
test_broadcast_bool_words(void **state)
{
	static const struct {
		const char	*word;
		int		 sender_gets_it;
	} table[] = {
		{ "yes", 1 }, { "true", 1 }, { "1", 1 }, { "on", 1 },
		{ "YES", 1 }, { "True", 1 },
		{ "no", 0 }, { "false", 0 }, { "0", 0 }, { "off", 0 },
		{ "No", 0 }, { "OFF", 0 },
	};
	struct fixture		*fx = *state;
	struct ac_plugin_option	 o;
	size_t			 i;
	int			 before;

	load_plugin(fx, "broadcast");
	for (i = 0; i < sizeof table / sizeof table[0]; i++) {
		o = opt("include_sender", table[i].word, 9);
		assert_int_equal(mock_plugin_start(&fx->mp, &o, 1), 0);
		before = fx->s1->relayed;
		assert_int_equal(say(fx, fx->s1, "x"), AC_PLUGIN_CONTINUE);
		if (fx->s1->relayed - before != table[i].sender_gets_it)
			fail_msg("include_sender = %s", table[i].word);
		mock_plugin_stop(&fx->mp);
	}
	assert_int_equal(mock_count(&fx->host, MOCK_LOG), 0);
}

/* broadcast: a bad value or an unknown key is refused, naming its line. */
static void
test_broadcast_bad_options(void **state)
{
	struct fixture		*fx = *state;
	struct ac_plugin_option	 o;

	load_plugin(fx, "broadcast");

	o = opt("include_sender", "maybe", 12);
	assert_int_equal(mock_plugin_start(&fx->mp, &o, 1), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR, NULL), 1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR, "line 12"),
	    1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "include_sender"), 1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR, "maybe"), 1);

	o = opt("include_sender", "", 13);
	assert_int_equal(mock_plugin_start(&fx->mp, &o, 1), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR, "line 13"),
	    1);

	o = opt("include_senders", "yes", 14);
	assert_int_equal(mock_plugin_start(&fx->mp, &o, 1), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR, "line 14"),
	    1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "'include_senders'"), 1);
}

/* logger: a text message becomes exactly the documented line. */
static void
test_logger_text_line(void **state)
{
	struct fixture		*fx = *state;
	struct json_object	*o, *v;
	char			*data, *line, *expected;
	const char		*t;

	load_plugin(fx, "logger");
	start_logger(fx, fx->path, NULL, NULL);
	assert_int_equal(say(fx, fx->s1, "hello a/b \"q\" \xc3\xa9"),
	    AC_PLUGIN_CONTINUE);
	mock_plugin_stop(&fx->mp);

	data = slurp(fx->path);
	assert_int_equal(count_lines(data), 1);
	line = nth_line(data, 0);

	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_object));
	assert_int_equal(json_object_object_length(o), 8);
	t = member(o, "time");
	check_time(t);
	assert_string_equal(member(o, "session_id"), ID1);
	assert_string_equal(member(o, "peer"), "127.0.0.1:40312");
	assert_string_equal(member(o, "transport"), "tcp");
	assert_string_equal(member(o, "type"), "message");
	assert_string_equal(member(o, "content_type"), TEXT);
	assert_true(json_object_object_get_ex(o, "size", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), 16);
	assert_string_equal(member(o, "content"),
	    "hello a/b \"q\" \xc3\xa9");
	assert_false(json_object_object_get_ex(o, "content_base64", NULL));

	/* The exact spelling: member order, no spaces, '/' not escaped. */
	assert_true(asprintf(&expected, "{\"time\":\"%s\",\"session_id\":"
	    "\"" ID1 "\",\"peer\":\"127.0.0.1:40312\",\"transport\":\"tcp\","
	    "\"type\":\"message\",\"content_type\":\"text/plain; "
	    "charset=utf-8\",\"size\":16,\"content\":\"hello a/b \\\"q\\\" "
	    "\xc3\xa9\"}", t) > 0);
	assert_string_equal(line, expected);

	free(expected);
	json_object_put(o);
	free(line);
	free(data);
}

/* logger: binary content is base64; a chunk and a null type are logged. */
static void
test_logger_binary_base64(void **state)
{
	struct fixture		*fx = *state;
	struct json_object	*o, *v;
	char			*data, *line;

	load_plugin(fx, "logger");
	start_logger(fx, fx->path, NULL, NULL);
	assert_int_equal(mock_plugin_message(&fx->mp, fx->s2, AC_MSG_CHUNK,
	    NULL, "\xff\x00\x01\xfe", 4), AC_PLUGIN_CONTINUE);
	mock_plugin_stop(&fx->mp);

	data = slurp(fx->path);
	assert_int_equal(count_lines(data), 1);
	line = nth_line(data, 0);
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_int_equal(json_object_object_length(o), 8);
	assert_string_equal(member(o, "session_id"), ID2);
	assert_string_equal(member(o, "peer"), "[::1]:40313");
	assert_string_equal(member(o, "type"), "chunk");
	assert_true(json_object_object_get_ex(o, "content_type", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "size", &v));
	assert_int_equal(json_object_get_int64(v), 4);
	assert_false(json_object_object_get_ex(o, "content", NULL));
	assert_string_equal(member(o, "content_base64"), "/wAB/g==");
	assert_null(strstr(line, "\\/"));

	json_object_put(o);
	free(line);
	free(data);
}

/* logger: strict UTF-8 decides text or base64; base64 pads correctly. */
static void
test_logger_utf8_and_base64(void **state)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
		const char	*base64;	/* NULL: logged as text */
	} table[] = {
		{ "a", 1, NULL },
		{ "\x00", 1, NULL },			/* U+0000 is text */
		{ "\xc3\xa9", 2, NULL },		/* é */
		{ "\xe2\x82\xac", 3, NULL },		/* € */
		{ "\xf0\x9f\x92\xac", 4, NULL },	/* U+1F4AC */
		{ "\xf4\x8f\xbf\xbf", 4, NULL },	/* U+10FFFF */
		{ "\xed\x9f\xbf", 3, NULL },		/* U+D7FF */
		{ "\x80", 1, "gA==" },			/* lone continuation */
		{ "\xc0\x80", 2, "wIA=" },		/* overlong NUL */
		{ "\xc1\xbf", 2, "wb8=" },		/* overlong */
		{ "\xe0\x9f\xbf", 3, "4J+/" },		/* overlong */
		{ "\xed\xa0\x80", 3, "7aCA" },		/* surrogate */
		{ "\xf0\x8f\xbf\xbf", 4, "8I+/vw==" },	/* overlong */
		{ "\xf4\x90\x80\x80", 4, "9JCAgA==" },	/* > U+10FFFF */
		{ "\xf5\x80\x80\x80", 4, "9YCAgA==" },
		{ "\xff", 1, "/w==" },
		{ "a\xe2\x82", 3, "YeKC" },		/* cut short */
		{ "\xc3\x28", 2, "wyg=" },		/* bad continuation */
		{ "\xe2\x28\xac", 3, "4iis" },
	};
	struct fixture		*fx = *state;
	struct json_object	*o, *v;
	char			*data, *line;
	size_t			 i, n = sizeof table / sizeof table[0];

	load_plugin(fx, "logger");
	start_logger(fx, fx->path, NULL, NULL);
	for (i = 0; i < n; i++) {
		assert_int_equal(mock_plugin_message(&fx->mp, fx->s1,
		    AC_MSG_MESSAGE, "application/octet-stream",
		    table[i].bytes, table[i].len), AC_PLUGIN_CONTINUE);
	}
	mock_plugin_stop(&fx->mp);

	data = slurp(fx->path);
	assert_int_equal(count_lines(data), n);
	for (i = 0; i < n; i++) {
		line = nth_line(data, i);
		o = json_tokener_parse(line);
		if (o == NULL)
			fail_msg("row %zu: not JSON: %s", i, line);
		if (table[i].base64 == NULL) {
			if (!json_object_object_get_ex(o, "content", &v))
				fail_msg("row %zu: not text: %s", i, line);
			assert_int_equal(json_object_get_string_len(v),
			    table[i].len);
			assert_memory_equal(json_object_get_string(v),
			    table[i].bytes, table[i].len);
		} else {
			if (!json_object_object_get_ex(o, "content_base64",
			    &v))
				fail_msg("row %zu: not base64: %s", i, line);
			assert_string_equal(json_object_get_string(v),
			    table[i].base64);
		}
		json_object_put(o);
		free(line);
	}
	free(data);
}

/* logger: an existing file is appended to, never truncated. */
static void
test_logger_appends(void **state)
{
	struct fixture	*fx = *state;
	struct stat	 sb;
	FILE		*f;
	char		*data, *line;

	f = fopen(fx->path, "w");
	assert_non_null(f);
	fputs("earlier line\n", f);
	fclose(f);

	load_plugin(fx, "logger");
	start_logger(fx, fx->path, NULL, NULL);
	say(fx, fx->s1, "one");
	mock_plugin_stop(&fx->mp);
	start_logger(fx, fx->path, "fsync", "yes");
	say(fx, fx->s1, "two");
	mock_plugin_stop(&fx->mp);

	data = slurp(fx->path);
	assert_int_equal(count_lines(data), 3);
	line = nth_line(data, 0);
	assert_string_equal(line, "earlier line");
	free(line);
	assert_non_null(strstr(data, "\"content\":\"one\"}\n{"));
	assert_non_null(strstr(data, "\"content\":\"two\"}\n"));
	free(data);

	/* A new file is created with mode 0640 (less what umask takes). */
	unlink(fx->path);
	start_logger(fx, fx->path, NULL, NULL);
	mock_plugin_stop(&fx->mp);
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0137, 0);
	assert_int_equal(sb.st_mode & 0600, 0600);
}

/* logger: after a rename (logrotate) and re-init, lines go to a new file. */
static void
test_logger_reopen_after_reinit(void **state)
{
	struct fixture	*fx = *state;
	char		*data;

	load_plugin(fx, "logger");
	start_logger(fx, fx->path, NULL, NULL);
	say(fx, fx->s1, "before rotation");
	assert_int_equal(rename(fx->path, fx->rotated), 0);

	/* Until the reload the open file (now renamed) gets the lines. */
	say(fx, fx->s1, "during rotation");

	/* SIGHUP: the server calls fini then init on every plugin. */
	mock_plugin_stop(&fx->mp);
	start_logger(fx, fx->path, NULL, NULL);
	say(fx, fx->s2, "after rotation");
	mock_plugin_stop(&fx->mp);

	data = slurp(fx->rotated);
	assert_int_equal(count_lines(data), 2);
	assert_non_null(strstr(data, "\"content\":\"before rotation\"}"));
	assert_non_null(strstr(data, "\"content\":\"during rotation\"}"));
	free(data);

	data = slurp(fx->path);
	assert_int_equal(count_lines(data), 1);
	assert_non_null(strstr(data, "\"session_id\":\"" ID2 "\""));
	assert_non_null(strstr(data, "\"content\":\"after rotation\"}"));
	free(data);
	assert_int_equal(mock_count(&fx->host, MOCK_LOG), 0);
}

/* logger: path is required; unknown keys and bad values name their line. */
static void
test_logger_bad_options(void **state)
{
	struct fixture		*fx = *state;
	struct ac_plugin_option	 o[2];
	char			 missing[PATH_MAX + 32];

	load_plugin(fx, "logger");

	assert_int_equal(mock_plugin_start(&fx->mp, NULL, 0), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "missing required option 'path'"), 1);
	mock_host_reset_calls(&fx->host);

	o[0] = opt("path", fx->path, 3);
	o[1] = opt("fsync", "sometimes", 4);
	assert_int_equal(mock_plugin_start(&fx->mp, o, 2), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "line 4: fsync"), 1);
	mock_host_reset_calls(&fx->host);

	o[1] = opt("file", "/tmp/x", 21);
	assert_int_equal(mock_plugin_start(&fx->mp, o, 2), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "line 21: unknown option 'file'"), 1);
	mock_host_reset_calls(&fx->host);

	o[1] = opt("path", fx->path, 8);
	assert_int_equal(mock_plugin_start(&fx->mp, o, 2), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "line 8: path given twice"), 1);
	mock_host_reset_calls(&fx->host);

	o[0] = opt("path", "", 6);
	assert_int_equal(mock_plugin_start(&fx->mp, o, 1), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "line 6: path is empty"), 1);
	mock_host_reset_calls(&fx->host);

	/* A file that cannot be opened refuses the load, saying why. */
	snprintf(missing, sizeof missing, "%s/no/such/dir.log", scratch_dir);
	o[0] = opt("path", missing, 7);
	assert_int_equal(mock_plugin_start(&fx->mp, o, 1), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "No such file or directory"), 1);
}

/* logger: /dev/full fails every write; delivery goes on, one warning. */
static void
test_logger_dev_full(void **state)
{
	struct fixture	*fx = *state;
	int		 i;

	if (access("/dev/full", W_OK) != 0)
		skip();
	load_plugin(fx, "logger");
	start_logger(fx, "/dev/full", NULL, NULL);
	for (i = 0; i < 5; i++)
		assert_int_equal(say(fx, fx->s1, "lost"), AC_PLUGIN_CONTINUE);

	assert_int_equal(mock_count(&fx->host, MOCK_LOG), 1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_WARNING,
	    "write to /dev/full failed: No space left on device; "
	    "messages are not being logged"), 1);

	/* Closing mid-streak says how much was lost. */
	mock_plugin_stop(&fx->mp);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_WARNING,
	    "after 5 lost lines"), 1);
}

/* Set the soft file size limit (the hard one stays as it is). */
static void
set_fsize_limit(rlim_t limit)
{
	struct rlimit	rl;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = limit;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* The size of a file. */
static off_t
file_size(const char *path)
{
	struct stat	sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

/*
 * logger: a failure streak warns once, its end is noted with the count of
 * lost lines, and a second streak warns again. RLIMIT_FSIZE makes writes
 * fail with EFBIG and lifting it makes them work again.
 */
static void
test_logger_failure_streaks(void **state)
{
	struct fixture	*fx = *state;
	struct rlimit	 saved;
	char		*data;
	int		 i;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	load_plugin(fx, "logger");
	start_logger(fx, fx->path, NULL, NULL);
	say(fx, fx->s1, "kept 1");

	set_fsize_limit((rlim_t)file_size(fx->path));
	for (i = 0; i < 3; i++)
		assert_int_equal(say(fx, fx->s1, "lost"), AC_PLUGIN_CONTINUE);
	set_fsize_limit(saved.rlim_cur);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_WARNING,
	    "messages are not being logged"), 1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_INFO, NULL), 0);

	say(fx, fx->s1, "kept 2");
	say(fx, fx->s1, "kept 3");
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_INFO,
	    "resumed after 3 lost lines"), 1);

	set_fsize_limit((rlim_t)file_size(fx->path));
	assert_int_equal(say(fx, fx->s1, "lost"), AC_PLUGIN_CONTINUE);
	set_fsize_limit(saved.rlim_cur);
	say(fx, fx->s1, "kept 4");
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_WARNING,
	    "messages are not being logged"), 2);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_INFO,
	    "resumed after 1 lost lines"), 1);
	assert_int_equal(mock_count(&fx->host, MOCK_LOG), 4);
	mock_plugin_stop(&fx->mp);

	data = slurp(fx->path);
	assert_int_equal(count_lines(data), 4);
	assert_null(strstr(data, "\"lost\""));
	free(data);
}

/* logger: a line cut short by a failure is ended so later lines parse. */
static void
test_logger_torn_line(void **state)
{
	struct fixture		*fx = *state;
	struct rlimit		 saved;
	struct json_object	*o;
	char			*data, *line;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	load_plugin(fx, "logger");
	start_logger(fx, fx->path, NULL, NULL);
	say(fx, fx->s1, "whole");

	/* Room for 10 more bytes: the next line is cut after them. */
	set_fsize_limit((rlim_t)file_size(fx->path) + 10);
	assert_int_equal(say(fx, fx->s1, "torn"), AC_PLUGIN_CONTINUE);
	set_fsize_limit(saved.rlim_cur);
	say(fx, fx->s1, "after");
	mock_plugin_stop(&fx->mp);

	data = slurp(fx->path);
	assert_int_equal(count_lines(data), 3);
	line = nth_line(data, 1);
	assert_int_equal(strlen(line), 10);
	free(line);
	line = nth_line(data, 2);
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_string_equal(member(o, "content"), "after");
	json_object_put(o);
	free(line);
	free(data);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_INFO,
	    "resumed after 1 lost lines"), 1);
}

/* tag: replies "X:" + content to the sender as a new message. */
static void
test_module_tag(void **state)
{
	struct fixture		*fx = *state;
	struct ac_plugin_option	 o = opt("tag", "A", 2);
	const struct mock_call	*c;

	load_module(fx, "tag");
	assert_int_equal(mock_plugin_start(&fx->mp, &o, 1), 0);
	assert_int_equal(say(fx, fx->s2, "hi"), AC_PLUGIN_CONTINUE);
	assert_int_equal(mock_count(&fx->host, MOCK_SEND), 1);
	c = mock_find(&fx->host, MOCK_SEND, 0);
	assert_ptr_equal(c->session, fx->s2);
	assert_int_equal(c->type, AC_MSG_MESSAGE);
	assert_string_equal(c->content_type, TEXT);
	assert_int_equal(c->content_len, 4);
	assert_memory_equal(c->content, "A:hi", 4);
	assert_int_equal(mock_count(&fx->host, MOCK_RELAY) +
	    mock_count(&fx->host, MOCK_RELAY_ALL), 0);
	mock_plugin_stop(&fx->mp);

	assert_int_equal(mock_plugin_start(&fx->mp, NULL, 0), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR, "tag"), 1);
}

/* stop_chain: returns STOP and delivers nothing. */
static void
test_module_stop_chain(void **state)
{
	struct fixture	*fx = *state;

	load_module(fx, "stop_chain");
	assert_int_equal(mock_plugin_start(&fx->mp, NULL, 0), 0);
	assert_int_equal(say(fx, fx->s1, "swallowed"), AC_PLUGIN_STOP);
	assert_int_equal(fx->host.ncalls, 0);
}

/* init_fails: init logs a reason and returns -1. */
static void
test_module_init_fails(void **state)
{
	struct fixture	*fx = *state;

	load_module(fx, "init_fails");
	assert_int_equal(mock_plugin_start(&fx->mp, NULL, 0), -1);
	assert_int_equal(mock_log_count(&fx->host, AC_LOG_ERROR,
	    "refusing to start"), 1);
}

/* bad_abi: the descriptor says ABI 999 (and must not be used further). */
static void
test_module_bad_abi(void **state)
{
	struct fixture	*fx = *state;
	char		*path;

	path = mock_module_path(MODULE_DIR_VAR, MODULE_SUBDIR, "bad_abi");
	assert_non_null(path);
	assert_int_equal(mock_plugin_open(&fx->mp, &fx->host, path,
	    "bad_abi"), 0);
	free(path);
	assert_int_equal(fx->mp.desc->abi_version, 999);
	assert_int_not_equal(fx->mp.desc->abi_version, AC_PLUGIN_ABI_VERSION);
}

/* no_entry: a real shared object without ac_plugin_entry. */
static void
test_module_no_entry(void **state)
{
	struct fixture	*fx = *state;
	char		*path;

	path = mock_module_path(MODULE_DIR_VAR, MODULE_SUBDIR, "no_entry");
	assert_non_null(path);
	assert_int_equal(mock_plugin_open(&fx->mp, &fx->host, path,
	    "no_entry"), -2);
	free(path);
	assert_non_null(fx->mp.dl);
	assert_null(dlsym(fx->mp.dl, AC_PLUGIN_ENTRY_SYMBOL));
}

/* Every plugin exports its entry and nothing else of ours. */
static void
test_plugins_export_only_entry(void **state)
{
	static const char	*names[] = { "echo", "broadcast", "logger" };
	static const char	*hidden[] = {
		"echo_init", "broadcast_parse_bool", "logger_write",
		"logger_utf8_valid",
	};
	struct fixture		*fx = *state;
	size_t			 i, j;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		load_plugin(fx, names[i]);
		assert_non_null(fx->mp.desc->process_message);
		assert_non_null(fx->mp.desc->fini);
		for (j = 0; j < sizeof hidden / sizeof hidden[0]; j++)
			assert_null(dlsym(fx->mp.dl, hidden[j]));
		mock_plugin_close(&fx->mp);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* Run every test as one group. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_echo_relays_to_sender),
		T(test_echo_refuses_options),
		T(test_broadcast_all_but_sender),
		T(test_broadcast_include_sender),
		T(test_broadcast_bool_words),
		T(test_broadcast_bad_options),
		T(test_logger_text_line),
		T(test_logger_binary_base64),
		T(test_logger_utf8_and_base64),
		T(test_logger_appends),
		T(test_logger_reopen_after_reinit),
		T(test_logger_bad_options),
		T(test_logger_dev_full),
		T(test_logger_failure_streaks),
		T(test_logger_torn_line),
		T(test_logger_attrs),
		T(test_module_tag),
		T(test_module_stop_chain),
		T(test_module_init_fails),
		T(test_module_bad_abi),
		T(test_module_no_entry),
		T(test_plugins_export_only_entry),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
