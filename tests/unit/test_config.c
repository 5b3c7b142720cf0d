/*
 * test_config.c - asyncchatd's configuration parser (src/server/config.c):
 * defaults, every key, and the FILE:LINE errors a bad file gets.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <asyncchat/asyncchat.h>

#include "server.h"

static char	test_dir[] = "/tmp/ac-config-XXXXXX";
static int	test_counter;

/* Write text to a fresh file in the test directory; returns its path. */
static char *
write_file(const char *text, mode_t mode)
{
	char	*path;
	FILE	*f;

	if (asprintf(&path, "%s/%d.conf", test_dir, ++test_counter) == -1)
		abort();
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return (path);
}

/* Load text as a config; returns the config or NULL with *cause set. */
static struct ac_config *
load(const char *text, char **cause)
{
	struct ac_config	*cfg;
	char			*path = write_file(text, 0600);
	int			 r;

	r = config_load(path, &cfg, cause);
	free(path);
	return (r == 0 ? cfg : NULL);
}

/* 1 if two keys give the same MAC over a fixed message. */
static int
same_key(const struct ac_key *a, const char *secret)
{
	struct ac_key	*b = ac_key_new(secret, strlen(secret));
	uint8_t		 ma[32], mb[32];

	ac_key_mac(a, "abc", 3, "def", 3, ma);
	ac_key_mac(b, "abc", 3, "def", 3, mb);
	ac_key_free(b);
	return (memcmp(ma, mb, 32) == 0);
}

/* An empty file gives every default. */
static void
test_defaults(void **state)
{
	struct ac_config	*cfg;
	char			*cause = NULL;

	(void)state;
	cfg = load("", &cause);
	assert_non_null(cfg);
	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0].url, "tcp://127.0.0.1:9999");
	assert_int_equal(cfg->listen[0].type, AC_LISTEN_TCP);
	assert_string_equal(cfg->listen[0].host, "127.0.0.1");
	assert_string_equal(cfg->listen[0].port, "9999");
	assert_int_equal(cfg->backlog, SOMAXCONN);
	assert_int_equal(cfg->unix_mode, 0660);
	assert_int_equal(cfg->handshake_timeout.tv_sec, 10);
	assert_int_equal(cfg->heartbeat_timeout.tv_sec, 30);
	assert_int_equal(cfg->max_clients, 10000);
	assert_int_equal(cfg->max_header_size, 65536);
	assert_int_equal(cfg->max_content_size, 10485760);
	assert_int_equal(cfg->max_output_buffer, 32 * 1024 * 1024);
	assert_int_equal(cfg->max_errors, 10);
	assert_string_equal(cfg->log, "stderr");
	assert_int_equal(cfg->log_level, AC_LOG_INFO);
	assert_string_equal(cfg->plugin_dir, AC_PLUGINDIR);
	assert_null(cfg->pid_file);
	assert_null(cfg->metrics_listen.text);
	assert_int_equal(cfg->max_memory, 256 * 1024 * 1024);
	assert_int_equal(cfg->max_clients_per_ip, 1000);
	assert_int_equal(cfg->max_message_rate, 10000);
	assert_int_equal(cfg->max_byte_rate, 10 * 1024 * 1024);
	assert_int_equal(cfg->rate_burst.tv_sec, 2);
	assert_int_equal(cfg->rate_burst.tv_usec, 0);
	assert_int_equal(cfg->rate_limit_disconnect, 50);
	assert_int_equal(cfg->worker_threads, 4);
	assert_int_equal(cfg->worker_queue, 1024);
	assert_null(cfg->hmac_key);	/* the secret's text is gone */
	assert_int_equal(cfg->nplugins, 0);
	assert_true(cfg->key_is_default);
	assert_int_equal(cfg->nwarnings, 0);
	config_free(cfg);
}

/* Every key with a valid value is taken. */
static void
test_all_keys(void **state)
{
	struct ac_config	*cfg;
	char			*cause = NULL;

	(void)state;
	cfg = load(
	    "# a comment\n"
	    "[server]\n"
	    "listen = tcp://[::1]:0\n"
	    "  listen = unix:///tmp/x.sock\n"
	    "listen = tcp://localhost:10\n"
	    "backlog = 7\n"
	    "unix_mode = 0600\n"
	    "hmac_key = s3cret\n"
	    "handshake_timeout = 0.5\n"
	    "heartbeat_timeout = 1.25\n"
	    "max_clients = 3\n"
	    "max_header_size = 1K\n"
	    "max_content_size = 1M\n"
	    "max_output_buffer = 2M\n"
	    "max_errors = 2\n"
	    "log = syslog\n"
	    "log_level = debug\n"
	    "plugin_dir = /p\n"
	    "pid_file = /run/x.pid\n"
	    "metrics_listen = [::1]:9100\n"
	    "[plugins]\n"
	    "load = echo, broadcast\n"
	    "load = /abs/path/tag.so\n"
	    "[plugin.echo]\n"
	    "a = 1\n"
	    "b = two words\n", &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_int_equal(cfg->nlisten, 3);
	assert_int_equal(cfg->listen[0].type, AC_LISTEN_TCP);
	assert_string_equal(cfg->listen[0].host, "::1");
	assert_string_equal(cfg->listen[0].port, "0");
	assert_int_equal(cfg->listen[1].type, AC_LISTEN_UNIX);
	assert_string_equal(cfg->listen[1].path, "/tmp/x.sock");
	assert_int_equal(cfg->listen[1].line, 4);
	assert_int_equal(cfg->backlog, 7);
	assert_int_equal(cfg->unix_mode, 0600);
	assert_false(cfg->key_is_default);
	assert_true(same_key(cfg->key, "s3cret"));
	assert_int_equal(cfg->handshake_timeout.tv_sec, 0);
	assert_int_equal(cfg->handshake_timeout.tv_usec, 500000);
	assert_int_equal(cfg->heartbeat_timeout.tv_sec, 1);
	assert_int_equal(cfg->heartbeat_timeout.tv_usec, 250000);
	assert_int_equal(cfg->max_clients, 3);
	assert_int_equal(cfg->max_header_size, 1024);
	assert_int_equal(cfg->max_content_size, 1048576);
	assert_int_equal(cfg->max_output_buffer, 2097152);
	assert_int_equal(cfg->max_errors, 2);
	assert_string_equal(cfg->log, "syslog");
	assert_int_equal(cfg->log_level, AC_LOG_DEBUG);
	assert_string_equal(cfg->pid_file, "/run/x.pid");
	/* metrics_listen is parsed once, into the address to bind. */
	assert_string_equal(cfg->metrics_listen.text, "[::1]:9100");
	assert_int_equal(cfg->metrics_listen.ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)
	    &cfg->metrics_listen.ss)->sin6_port), 9100);
	assert_int_equal(cfg->nplugins, 3);
	assert_string_equal(cfg->plugins[0].name, "echo");
	assert_string_equal(cfg->plugins[0].path, "/p/echo.so");
	assert_string_equal(cfg->plugins[1].name, "broadcast");
	assert_string_equal(cfg->plugins[2].name, "tag");
	assert_string_equal(cfg->plugins[2].path, "/abs/path/tag.so");
	assert_int_equal(cfg->plugins[2].line, 23);
	assert_non_null(config_find_section(cfg, "echo"));
	assert_int_equal(config_find_section(cfg, "echo")->nopts, 2);
	assert_string_equal(config_find_section(cfg, "echo")->opts[1].value,
	    "two words");
	assert_int_equal(config_find_section(cfg, "echo")->opts[1].line, 26);
	assert_null(config_find_section(cfg, "tag"));
	assert_int_equal(cfg->nwarnings, 0);
	config_free(cfg);
}

/* A bad file is refused with FILE:LINE: [section] key: what. */
static void
test_errors(void **state)
{
	static const struct {
		const char	*text;
		const char	*want;
	} rows[] = {
		{ "[server]\nbogus = 1\n", ":2: [server] bogus: unknown key" },
		{ "[nope]\n", ":1: [nope]: unknown section" },
		{ "x = 1\n", ":1: x: key outside any section" },
		{ "[server]\nbacklog = 1\nbacklog = 2\n",
		  ":3: [server] backlog: duplicate key (first set on line 2)" },
		{ "[server]\nlisten = http://x\n", ":2: [server] listen:" },
		{ "[server]\nlisten = tcp://::1:9\n", "needs brackets" },
		{ "[server]\nlisten = tcp://h:99999\n", "bad port" },
		{ "[server]\nlisten = unix://rel\n", "must be absolute" },
		{ "[server]\nlisten = unix:///"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		  "path too long" },
		{ "[server]\nlisten = tcp://a:1\nlisten = tcp://a:1\n",
		  "already listed on line 2" },
		{ "[server]\nunix_mode = 999\n", "[server] unix_mode:" },
		{ "[server]\nhandshake_timeout = 0\n",
		  "[server] handshake_timeout:" },
		{ "[server]\nheartbeat_timeout = soon\n",
		  "[server] heartbeat_timeout:" },
		{ "[server]\nmax_header_size = 65537\n",
		  "[server] max_header_size:" },
		{ "[server]\nmax_content_size = 0\n",
		  "[server] max_content_size:" },
		{ "[server]\nmax_content_size = 11M\n",
		  "[server] max_content_size:" },
		{ "[server]\nmax_output_buffer = 10M\n",
		  ":2: [server] max_output_buffer: 10485760 is smaller than" },
		{ "[server]\nmax_output_buffer = 3X\n",
		  "[server] max_output_buffer:" },
		{ "[server]\nlog = relative.log\n", "[server] log:" },
		{ "[server]\nlog_level = loud\n", "[server] log_level:" },
		{ "[server]\nmetrics_listen = localhost:9100\n",
		  ":2: [server] metrics_listen: localhost:9100: expected" },
		{ "[server]\nmetrics_listen = [1.2.3.4]:9100\n",
		  "[server] metrics_listen:" },
		{ "[server]\nmetrics_listen = 127.0.0.1:65536\n",
		  "[server] metrics_listen:" },
		{ "[server]\nhmac_key =\n", ":2: [server] hmac_key: expected" },
		{ "[server]\npid_file =\n", "[server] pid_file:" },
		{ "[server]\nhmac_key = a\nhmac_key_file = /k\n",
		  ":3: [server] hmac_key_file: hmac_key and hmac_key_file" },
		{ "[server]\nhmac_key_file = /nonexistent/key\n",
		  "[server] hmac_key_file: /nonexistent/key:" },
		{ "[plugins]\nload = a, , b\n", "empty plugin name" },
		{ "[plugins]\nload = a\nload = a\n",
		  ":3: [plugins] load: plugin a is already loaded (line 2)" },
		{ "[plugins]\nload = x/y.so\n", "absolute path" },
		{ "[plugins]\nload = b@d\n", "letters, digits" },
		{ "[plugins]\nother = a\n", ":2: [plugins] other: unknown key" },
		{ "[server]\nno equals sign here\n", ":2: syntax error" },
	};
	struct ac_config	*cfg;
	char			*cause;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		cause = NULL;
		cfg = load(rows[i].text, &cause);
		if (cfg != NULL) {
			print_error("row %zu accepted: %s\n", i,
			    rows[i].text);
			fail();
		}
		assert_non_null(cause);
		if (strstr(cause, rows[i].want) == NULL) {
			print_error("row %zu: want \"%s\" in \"%s\"\n", i,
			    rows[i].want, cause);
			fail();
		}
		free(cause);
	}
}

/* Every error of a file is reported, not just the first. */
static void
test_all_errors_reported(void **state)
{
	char	*cause = NULL;

	(void)state;
	assert_null(load("[server]\nbacklog = x\nmax_errors = 0\n[bad]\n",
	    &cause));
	assert_non_null(strstr(cause, ":2: [server] backlog"));
	assert_non_null(strstr(cause, ":3: [server] max_errors"));
	assert_non_null(strstr(cause, ":4: [bad]"));
	free(cause);
}

/* The key file is read once, less its newline; a key others can read is
 * refused. */
static void
test_key_file(void **state)
{
	struct ac_config	*cfg;
	char			*keypath, *text, *cause = NULL;

	(void)state;
	keypath = write_file("topsecret\n", 0600);
	if (asprintf(&text, "[server]\nhmac_key_file = %s\n", keypath) == -1)
		abort();
	cfg = load(text, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_true(same_key(cfg->key, "topsecret"));
	assert_int_equal(cfg->nwarnings, 0);
	config_free(cfg);

	chmod(keypath, 0644);
	cfg = load(text, &cause);
	assert_null(cfg);
	assert_non_null(strstr(cause, ":2: [server] hmac_key_file: "));
	assert_non_null(strstr(cause, "read or written by others (mode "
	    "0644)"));
	/* The key itself never appears in a message. */
	assert_null(strstr(cause, "topsecret"));
	free(cause);
	free(text);
	free(keypath);
}

/* Warnings: the public key beyond loopback, a section for no plugin. */
static void
test_warnings(void **state)
{
	struct ac_config	*cfg;
	char			*cause = NULL;

	(void)state;
	cfg = load("[server]\nlisten = tcp://0.0.0.0:1\n"
	    "listen = tcp://127.0.0.1:2\nlisten = unix:///tmp/s\n"
	    "[plugin.ghost]\nk = v\n", &cause);
	assert_non_null(cfg);
	assert_int_equal(cfg->nwarnings, 2);
	assert_non_null(strstr(cfg->warnings[0], ":5: [plugin.ghost]"));
	assert_non_null(strstr(cfg->warnings[1], "default-key"));
	assert_non_null(strstr(cfg->warnings[1], "tcp://0.0.0.0:1"));
	config_free(cfg);

	cfg = load("[server]\nlisten = tcp://0.0.0.0:1\nhmac_key = k\n",
	    &cause);
	assert_non_null(cfg);
	assert_int_equal(cfg->nwarnings, 0);
	config_free(cfg);
}

/*
 * Lines are split as inih split them (files read as they did): comments,
 * inline comments after a blank, key: value, blanks, CRLF, a byte order
 * mark; and a line may be any length.
 */
static void
test_syntax(void **state)
{
	struct ac_config		*cfg;
	const struct ac_plugin_section	*ps;
	char				*text, *cause = NULL, *p;
	size_t				 i;

	(void)state;
	cfg = load("\xef\xbb\xbf; comment\r\n"
	    "[server] ; the server\r\n"
	    "  # indented comment\n"
	    "max_errors: 7 ; seven\n"
	    "\tmax_clients =9\n"
	    "[ plugin.echo ]\n"
	    "a = x;y\n"
	    "b = ;nothing\n"
	    "c = one = two\n"
	    "d=\n", &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_int_equal(cfg->max_errors, 7);
	assert_int_equal(cfg->max_clients, 9);
	ps = config_find_section(cfg, "echo");
	assert_non_null(ps);
	assert_int_equal(ps->nopts, 4);
	assert_string_equal(ps->opts[0].value, "x;y");
	assert_string_equal(ps->opts[1].value, "");
	assert_string_equal(ps->opts[2].value, "one = two");
	assert_string_equal(ps->opts[3].key, "d");
	assert_string_equal(ps->opts[3].value, "");
	config_free(cfg);

	/* Every syntax error is reported, each with its line. */
	assert_null(load("[server]\nnothing here\n[server\nmax_errors 3\n",
	    &cause));
	assert_non_null(strstr(cause, ":2: syntax error"));
	assert_non_null(strstr(cause, ":3: syntax error"));
	assert_non_null(strstr(cause, ":4: syntax error"));
	free(cause);

	/* A 20000-character line, in a value and in a load list. */
	text = malloc(50000);
	assert_non_null(text);
	p = text + sprintf(text, "[plugin.echo]\nlong = ");
	for (i = 0; i < 20000; i++)
		*p++ = 'a' + i % 26;
	p += sprintf(p, "\n[plugins]\nload = ");
	for (i = 0; i < 200; i++)
		p += sprintf(p, "%s/dir-%03zu/p%zu.so", i == 0 ? "" : ", ",
		    i, i);
	strcpy(p, "\n");
	cfg = load(text, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	ps = config_find_section(cfg, "echo");
	assert_int_equal(strlen(ps->opts[0].value), 20000);
	assert_int_equal(cfg->nplugins, 200);
	assert_string_equal(cfg->plugins[199].path, "/dir-199/p199.so");
	config_free(cfg);
	free(text);
}

/* Sizes and seconds, the two value forms with units. */
static void
test_value_parsers(void **state)
{
	struct timeval	tv;
	uint64_t	v;

	(void)state;
	assert_int_equal(config_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_size("12", &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(config_parse_size("3K", &v), 0);
	assert_int_equal(v, 3072);
	assert_int_equal(config_parse_size("32M", &v), 0);
	assert_int_equal(v, 32u * 1024 * 1024);
	assert_int_equal(config_parse_size("1g", &v), 0);
	assert_int_equal(v, 1024u * 1024 * 1024);
	assert_int_equal(config_parse_size("4MB", &v), 0);
	assert_int_equal(config_parse_size("", &v), -1);
	assert_int_equal(config_parse_size("-1", &v), -1);
	assert_int_equal(config_parse_size("1T", &v), -1);
	assert_int_equal(config_parse_size("99999999999999999999G", &v), -1);

	assert_int_equal(config_parse_seconds("10", &tv), 0);
	assert_int_equal(tv.tv_sec, 10);
	assert_int_equal(tv.tv_usec, 0);
	assert_int_equal(config_parse_seconds("0.2", &tv), 0);
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 200000);
	assert_int_equal(config_parse_seconds(".5", &tv), 0);
	assert_int_equal(tv.tv_usec, 500000);
	assert_int_equal(config_parse_seconds("0", &tv), -1);
	assert_int_equal(config_parse_seconds("1e9", &tv), -1);
	assert_int_equal(config_parse_seconds("nan", &tv), -1);
	assert_int_equal(config_parse_seconds("5s", &tv), -1);
}

/* Remove the test directory and what is in it. */
static int
teardown(void **state)
{
	char	path[64];
	int	i;

	(void)state;
	for (i = 1; i <= test_counter; i++) {
		snprintf(path, sizeof path, "%s/%d.conf", test_dir, i);
		unlink(path);
	}
	rmdir(test_dir);
	return (0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_value_parsers),
		cmocka_unit_test(test_syntax),
	};

	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	return (cmocka_run_group_tests(tests, NULL, teardown));
}
