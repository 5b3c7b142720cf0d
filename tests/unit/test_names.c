/*
 * test_names.c - every name the server gives out is documented where a
 * user looks for it: close reasons in asyncchatd(8), error tokens and
 * message types in docs/PROTOCOL.md, the [server] keys in
 * asyncchat.conf(5) and the shipped asyncchat.conf. The names come from
 * the server's and the library's own tables, so a new one cannot be
 * missed, and a key the documents list must be one the server knows.
 *
 * The documents are read from $AC_TOP_SRCDIR (set by make check).
 */
#include "config.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <asyncchat/asyncchat.h>

#include "server.h"

/*
 * Read a document of the source tree whole, with roff's escaped hyphens
 * ("\-") made plain, so a token is found however the page spells it.
 */
static char *
read_doc(const char *name)
{
	const char	*top = getenv("AC_TOP_SRCDIR");
	char		 path[4096], *text, *in, *out;
	FILE		*f;
	long		 len;

	if (top == NULL)
		top = ".";
	snprintf(path, sizeof path, "%s/%s", top, name);
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("%s: cannot open (is AC_TOP_SRCDIR set?)", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = malloc(len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, len, f), (size_t)len);
	text[len] = '\0';
	fclose(f);
	for (in = out = text; *in != '\0'; in++) {
		if (in[0] == '\\' && in[1] == '-')
			continue;
		*out++ = *in;
	}
	*out = '\0';
	return (text);
}

/* Non-zero if c may be part of a token. */
static int
token_char(int c)
{
	return (isalnum(c) || c == '_' || c == '-');
}

/* Non-zero if word appears in text as a whole token. */
static int
has_word(const char *text, const char *word)
{
	const char	*p = text;
	size_t		 len = strlen(word);

	while ((p = strstr(p, word)) != NULL) {
		if ((p == text || !token_char((unsigned char)p[-1])) &&
		    !token_char((unsigned char)p[len]))
			return (1);
		p++;
	}
	return (0);
}

/* Every close reason is in asyncchatd(8)'s list of log reasons. */
static void
test_close_reasons(void **state)
{
	char		*man = read_doc("man/asyncchatd.8.in");
	unsigned int	 i, missing = 0;

	(void)state;
	for (i = 0; i < AC_CLOSE_COUNT; i++) {
		assert_string_not_equal(stats_reason_name(i), "unknown");
		if (!has_word(man, stats_reason_name(i))) {
			print_error("close reason %s is not in "
			    "man/asyncchatd.8.in\n", stats_reason_name(i));
			missing++;
		}
	}
	assert_string_equal(stats_reason_name(AC_CLOSE_COUNT), "unknown");
	free(man);
	assert_int_equal(missing, 0);
}

/* Every error token the server sends is in PROTOCOL.md. */
static void
test_error_tokens(void **state)
{
	char		*doc = read_doc("docs/PROTOCOL.md");
	unsigned int	 i, missing = 0;
	const char	*name;

	(void)state;
	for (i = 0; i < AC_SERR_COUNT; i++) {
		if (!has_word(doc, stats_error_name(i))) {
			print_error("error %s is not in docs/PROTOCOL.md\n",
			    stats_error_name(i));
			missing++;
		}
	}
	/* The decoding errors: every status but ok and need_more. */
	for (i = AC_FRAME_BAD_MAGIC; i < AC_FRAME_STATUS_COUNT; i++) {
		name = ac_frame_status_name(i);
		if (!has_word(doc, name)) {
			print_error("error %s is not in docs/PROTOCOL.md\n",
			    name);
			missing++;
		}
	}
	free(doc);
	assert_int_equal(missing, 0);
}

/* The server counts every frame status the library has. */
static void
test_frame_status_count(void **state)
{
	(void)state;
	assert_string_not_equal(ac_frame_status_name(AC_FRAME_STATUS_COUNT -
	    1), "unknown");
	assert_string_equal(ac_frame_status_name(AC_FRAME_STATUS_COUNT),
	    "unknown");
}

/* Every message type is in PROTOCOL.md. */
static void
test_message_types(void **state)
{
	char		*doc = read_doc("docs/PROTOCOL.md");
	unsigned int	 i, missing = 0;

	(void)state;
	for (i = 0; i < AC_MSG_TYPE_COUNT; i++) {
		assert_non_null(ac_msg_type_name(i));
		if (!has_word(doc, ac_msg_type_name(i))) {
			print_error("type %s is not in docs/PROTOCOL.md\n",
			    ac_msg_type_name(i));
			missing++;
		}
	}
	assert_null(ac_msg_type_name(AC_MSG_TYPE_COUNT));
	free(doc);
	assert_int_equal(missing, 0);
}

/* The [server] part of a document: from start to the line with end. */
static char *
server_part(char *text, const char *start, const char *end)
{
	char	*from, *to;

	from = strstr(text, start);
	assert_non_null(from);
	if ((to = strstr(from, end)) != NULL)
		*to = '\0';
	return (from);
}

/*
 * If line is prefix, a key name (lower case letters and _) and suffix,
 * copy the name to name and return 1; else return 0.
 */
static int
doc_key(const char *line, const char *prefix, const char *suffix,
    char *name, size_t len)
{
	size_t	n;

	if (strncmp(line, prefix, strlen(prefix)) != 0)
		return (0);
	line += strlen(prefix);
	n = strspn(line, "abcdefghijklmnopqrstuvwxyz_");
	if (n == 0 || n >= len || strncmp(line + n, suffix,
	    strlen(suffix)) != 0)
		return (0);
	memcpy(name, line, n);
	name[n] = '\0';
	return (1);
}

/*
 * Every key of config_keys[] is described in asyncchat.conf(5) (".BI key
 * " = ") and shown in the shipped file ("key = " or "#key = " at the
 * start of a line); and every key those describe under [server] is in
 * the table.
 */
static void
test_config_keys(void **state)
{
	char		*man = read_doc("man/asyncchat.conf.5.in");
	char		*conf = read_doc("etc/asyncchat.conf.in");
	char		*mpart, *cpart, *line, *next, want[128];
	char		 name[128];
	unsigned int	 missing = 0;
	size_t		 i;

	(void)state;
	mpart = server_part(man, ".SH [server]", ".SH [plugins]");
	cpart = server_part(conf, "\n[server]\n", "\n[plugins]\n");
	for (i = 0; i < config_nkeys; i++) {
		snprintf(want, sizeof want, "\n.BI %s \" = ",
		    config_keys[i].name);
		if (strstr(mpart, want) == NULL) {
			print_error("key %s is not in asyncchat.conf(5)\n",
			    config_keys[i].name);
			missing++;
		}
		snprintf(want, sizeof want, "\n%s = ", config_keys[i].name);
		if (strstr(cpart, want) == NULL) {
			snprintf(want, sizeof want, "\n#%s = ",
			    config_keys[i].name);
			if (strstr(cpart, want) == NULL) {
				print_error("key %s is not in "
				    "etc/asyncchat.conf.in\n",
				    config_keys[i].name);
				missing++;
			}
		}
	}
	for (line = mpart; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (doc_key(line, ".BI ", " \" = ", name, sizeof name) &&
		    config_key_find(name) == NULL) {
			print_error("asyncchat.conf(5) describes %s, which "
			    "the server does not know\n", name);
			missing++;
		}
	}
	for (line = cpart; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (!doc_key(line, "#", " = ", name, sizeof name) &&
		    !doc_key(line, "", " = ", name, sizeof name))
			continue;
		if (config_key_find(name) == NULL) {
			print_error("etc/asyncchat.conf.in sets %s, which the "
			    "server does not know\n", name);
			missing++;
		}
	}
	free(man);
	free(conf);
	assert_int_equal(missing, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_reasons),
		cmocka_unit_test(test_error_tokens),
		cmocka_unit_test(test_frame_status_count),
		cmocka_unit_test(test_message_types),
		cmocka_unit_test(test_config_keys),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
