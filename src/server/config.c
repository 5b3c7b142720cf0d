/*
 * config.c - read asyncchatd's INI file into a struct ac_config.
 *
 * The file is read a line at a time, of any length, and each line is
 * split as the inih library (which this file used to go through) splits
 * it, so that every file reads as it did: blanks around everything are
 * dropped, a line starting with ; or # is a comment, so is the rest of a
 * line from a ; that follows a blank, a [section] header ends at its ],
 * and anything else is key = value (or key: value), split at the first =
 * or :. There is no continuation line: an indented line is a line like
 * any other. inih's own line buffer was 200 bytes, which a `load =` line
 * of absolute plugin paths soon outgrows; here a line is as long as it
 * needs to be.
 *
 * Every problem is collected rather than stopping at the first, so that
 * `asyncchatd -t` shows them all at once. The keys of [server] are the
 * table of config_key.c.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncchat/key.h>
#include <asyncchat/option.h>

#include "xmalloc.h"
#include "server.h"

/* Parsing state shared by the reader and the handler. */
struct config_parse {
	struct ac_config	*cfg;
	FILE			*f;
	const char		*file;
	int			 line;
	char			*section;	/* NULL before the first */

	int			*seen;	/* line of each config_keys[] row,
					   0 if not seen */

	char			*errors;
	size_t			 nerrors;
};

static void	config_error(struct config_parse *, int, const char *,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));
static void	config_handler(struct config_parse *, const char *,
		    const char *, const char *);
static struct ac_plugin_section *config_section(struct ac_config *,
		    const char *, int);
static const struct ac_plugin_conf *config_find_plugin(
		    const struct ac_config *, const char *);

/* Record an error as "FILE:LINE: [section] key: text". */
static void
config_error(struct config_parse *cp, int line, const char *section,
    const char *key, const char *fmt, ...)
{
	va_list	 ap;
	char	*text, *where, *joined;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) == -1)
		text = NULL;
	va_end(ap);
	if (text == NULL)
		text = ac_xstrdup("out of memory");

	if (section != NULL && key != NULL)
		ac_xasprintf(&where, "%s:%d: [%s] %s: ", cp->file, line,
		    section, key);
	else if (section != NULL)
		ac_xasprintf(&where, "%s:%d: [%s]: ", cp->file, line, section);
	else if (key != NULL)
		ac_xasprintf(&where, "%s:%d: %s: ", cp->file, line, key);
	else if (line > 0)
		ac_xasprintf(&where, "%s:%d: ", cp->file, line);
	else
		ac_xasprintf(&where, "%s: ", cp->file);

	ac_xasprintf(&joined, "%s%s%s%s", cp->errors != NULL ? cp->errors : "",
	    cp->errors != NULL ? "\n" : "", where, text);
	free(cp->errors);
	cp->errors = joined;
	cp->nerrors++;
	free(where);
	free(text);
}

/* Remember a warning for the caller to log. */
void
config_warn(struct ac_config *cfg, const char *fmt, ...)
{
	va_list	 ap;
	char	*text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) == -1)
		text = ac_xstrdup("out of memory");
	va_end(ap);
	cfg->warnings = ac_xreallocarray(cfg->warnings, cfg->nwarnings + 1,
	    sizeof *cfg->warnings);
	cfg->warnings[cfg->nwarnings++] = text;
}

/* Strip blanks at both ends of s in place and return it. */
static char *
config_trim(char *s)
{
	char	*end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return (s);
}

/* Find or add the [plugin.NAME] section record for name. */
static struct ac_plugin_section *
config_section(struct ac_config *cfg, const char *name, int line)
{
	struct ac_plugin_section	*ps;
	size_t				 i;

	for (i = 0; i < cfg->nsections; i++) {
		if (strcmp(cfg->sections[i].name, name) == 0)
			return (&cfg->sections[i]);
	}
	cfg->sections = ac_xreallocarray(cfg->sections, cfg->nsections + 1,
	    sizeof *cfg->sections);
	ps = &cfg->sections[cfg->nsections++];
	memset(ps, 0, sizeof *ps);
	ps->name = ac_xstrdup(name);
	ps->line = line;
	return (ps);
}

/* Non-zero if name is a plausible plugin name (letters, digits, - and _). */
static int
config_valid_name(const char *name)
{
	if (*name == '\0')
		return (0);
	for (; *name != '\0'; name++) {
		if (!isalnum((unsigned char)*name) && *name != '_' &&
		    *name != '-')
			return (0);
	}
	return (1);
}

/* Take a section header: unknown sections are errors. */
static void
config_see_section(struct config_parse *cp, const char *name)
{
	free(cp->section);
	cp->section = ac_xstrdup(name);
	if (strcmp(name, "server") == 0 || strcmp(name, "plugins") == 0)
		return;
	if (strncmp(name, "plugin.", 7) == 0) {
		if (!config_valid_name(name + 7)) {
			config_error(cp, cp->line, name, NULL,
			    "bad plugin name in section name");
			return;
		}
		config_section(cp->cfg, name + 7, cp->line);
		return;
	}
	config_error(cp, cp->line, name, NULL, "unknown section (expected "
	    "[server], [plugins] or [plugin.NAME])");
}

/*
 * The first of chars in s (or its end), stopping at an inline comment:
 * a ; that follows a blank. chars NULL finds only the comment.
 */
static char *
config_find(char *s, const char *chars)
{
	int	blank = 0;

	for (; *s != '\0'; s++) {
		if (chars != NULL && strchr(chars, *s) != NULL)
			break;
		if (blank && *s == ';')
			break;
		blank = isspace((unsigned char)*s);
	}
	return (s);
}

/* Split one line into a section header or key = value, and hand it on. */
static void
config_line(struct config_parse *cp, char *line)
{
	char	*end, *key, *value;

	line = config_trim(line);
	if (*line == '\0' || *line == ';' || *line == '#')
		return;
	if (*line == '[') {
		end = config_find(line + 1, "]");
		if (*end != ']')
			goto syntax;
		*end = '\0';
		config_see_section(cp, config_trim(line + 1));
		return;
	}
	end = config_find(line, "=:");
	if (*end != '=' && *end != ':')
		goto syntax;
	*end = '\0';
	key = config_trim(line);
	value = end + 1;
	*config_find(value, NULL) = '\0';
	value = config_trim(value);
	config_handler(cp, cp->section, key, value);
	return;

syntax:
	config_error(cp, cp->line, NULL, NULL, "syntax error (expected "
	    "[section] or key = value)");
}

/*
 * Read the file line by line. A NUL byte is an error (everything after it
 * would be cut off without a word), and a UTF-8 byte order mark at the
 * start is skipped.
 */
static void
config_read(struct config_parse *cp)
{
	char	*buf = NULL, *line, *nul;
	size_t	 size = 0;
	ssize_t	 n;

	while ((n = getline(&buf, &size, cp->f)) != -1) {
		cp->line++;
		if ((nul = memchr(buf, '\0', n)) != NULL) {
			config_error(cp, cp->line, NULL, NULL, "NUL byte in "
			    "the line (at byte %zu)", (size_t)(nul - buf) + 1);
			continue;
		}
		line = buf;
		if (cp->line == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0)
			line += 3;
		config_line(cp, line);
	}
	if (ferror(cp->f))
		config_error(cp, 0, NULL, NULL, "read error: %s",
		    strerror(errno));
	free(buf);
}

/* The line a [server] key was set on, 0 if it was not. */
static int
config_seen(struct config_parse *cp, const char *name)
{
	const struct config_key	*k = config_key_find(name);

	return (k != NULL ? cp->seen[k - config_keys] : 0);
}

/* Handle one key of [server]: its row in config_keys[] parses it. */
static void
config_server_key(struct config_parse *cp, const char *key,
    const char *value)
{
	const struct config_key	*k;
	char			 why[512];
	size_t			 i;

	if ((k = config_key_find(key)) == NULL) {
		config_error(cp, cp->line, "server", key, "unknown key");
		return;
	}
	i = k - config_keys;
	if (cp->seen[i] != 0 && !(k->flags & CONFIG_MULTI)) {
		config_error(cp, cp->line, "server", key,
		    "duplicate key (first set on line %d)", cp->seen[i]);
		return;
	}
	if (config_key_set(cp->cfg, k, value, cp->line, why,
	    sizeof why) == -1) {
		config_error(cp, cp->line, "server", key, "%s", why);
		return;
	}
	if (cp->seen[i] == 0)
		cp->seen[i] = cp->line;
}

/* Handle one `load = a, b` line of [plugins]. */
static void
config_load_key(struct config_parse *cp, const char *value)
{
	struct ac_config	*cfg = cp->cfg;
	struct ac_plugin_conf	*pc;
	char			*copy, *next, *item, *name, *path, *base;
	size_t			 i, len;

	copy = ac_xstrdup(value);
	next = copy;
	while ((item = strsep(&next, ",")) != NULL) {
		item = config_trim(item);
		if (*item == '\0') {
			config_error(cp, cp->line, "plugins", "load",
			    "empty plugin name in the list");
			continue;
		}
		path = NULL;
		if (strchr(item, '/') != NULL) {
			len = strlen(item);
			if (*item != '/' || len < 4 ||
			    strcmp(item + len - 3, ".so") != 0) {
				config_error(cp, cp->line, "plugins", "load",
				    "%s: expected a NAME or an absolute path "
				    "to a .so file", item);
				continue;
			}
			base = strrchr(item, '/') + 1;
			name = strndup(base, strlen(base) - 3);
			if (name == NULL)
				abort();
			path = ac_xstrdup(item);
		} else
			name = ac_xstrdup(item);
		if (!config_valid_name(name)) {
			config_error(cp, cp->line, "plugins", "load",
			    "%s: a plugin name has only letters, digits, - "
			    "and _", item);
			free(name);
			free(path);
			continue;
		}
		for (i = 0; i < cfg->nplugins; i++) {
			if (strcmp(cfg->plugins[i].name, name) == 0)
				break;
		}
		if (i != cfg->nplugins) {
			config_error(cp, cp->line, "plugins", "load",
			    "plugin %s is already loaded (line %d)", name,
			    cfg->plugins[i].line);
			free(name);
			free(path);
			continue;
		}
		cfg->plugins = ac_xreallocarray(cfg->plugins,
		    cfg->nplugins + 1, sizeof *cfg->plugins);
		pc = &cfg->plugins[cfg->nplugins++];
		pc->name = name;
		pc->path = path;	/* NULL: plugin_dir/NAME.so, later */
		pc->line = cp->line;
	}
	free(copy);
}

/* Dispatch one key = value line by section (NULL: before any). */
static void
config_handler(struct config_parse *cp, const char *section,
    const char *key, const char *value)
{
	struct ac_plugin_section	*ps;
	struct ac_plugin_option		*o;

	if (section == NULL)
		config_error(cp, cp->line, NULL, key,
		    "key outside any section (put it under [server])");
	else if (strcmp(section, "server") == 0)
		config_server_key(cp, key, value);
	else if (strcmp(section, "plugins") == 0) {
		if (strcmp(key, "load") == 0)
			config_load_key(cp, value);
		else
			config_error(cp, cp->line, section, key,
			    "unknown key (expected load = NAME, NAME...)");
	} else if (strncmp(section, "plugin.", 7) == 0 &&
	    config_valid_name(section + 7)) {
		ps = config_section(cp->cfg, section + 7, cp->line);
		ps->opts = ac_xreallocarray(ps->opts, ps->nopts + 1,
		    sizeof *ps->opts);
		o = &ps->opts[ps->nopts++];
		o->key = ac_xstrdup(key);
		o->value = ac_xstrdup(value);
		o->line = cp->line;
	}
	/* Other sections were reported with their header. */
}

/* Read the key from hmac_key_file, once (secret.c). */
static void
config_read_key_file(struct config_parse *cp, const char *path)
{
	char	why[256];

	cp->cfg->key = secret_read_file(path, why, sizeof why);
	if (cp->cfg->key == NULL)
		config_error(cp, config_seen(cp, "hmac_key_file"), "server",
		    "hmac_key_file", "%s: %s", path, why);
}

/*
 * A key written in the configuration file is only as secret as the file:
 * warn when the file does not keep it (secret_mode). The public
 * default key has nothing to hide.
 */
static void
config_check_inline_key(struct config_parse *cp)
{
	struct stat	st;
	char		why[128];

	if (config_seen(cp, "hmac_key") == 0 ||
	    strcmp(cp->cfg->hmac_key, AC_DEFAULT_KEY) == 0)
		return;
	if (fstat(fileno(cp->f), &st) == 0 &&
	    secret_mode(&st, why, sizeof why) == -1)
		config_warn(cp->cfg, "%s:%d: [server] hmac_key: the key is in "
		    "a file that %s; or move it to hmac_key_file", cp->file,
		    config_seen(cp, "hmac_key"), why);
}

/* Non-zero if a listener is reachable only from this machine. */
static int
config_listen_is_local(const struct ac_listen_conf *lc)
{
	if (lc->type == AC_LISTEN_UNIX)
		return (1);
	return (strncmp(lc->host, "127.", 4) == 0 ||
	    strcmp(lc->host, "::1") == 0 ||
	    strcmp(lc->host, "localhost") == 0);
}

/*
 * Load the TLS certificate and key (and client CA) now, once, so that a
 * bad file is a configuration error that `asyncchatd -t` reports, and so
 * that no file is read while the server runs. They are required when a
 * tls:// or wss:// listener exists and ignored, with a warning,
 * otherwise.
 */
static void
config_load_tls(struct config_parse *cp)
{
	static const char		*keys[] = {
		"tls_cert", "tls_key", "tls_client_ca"
	};
	struct ac_config		*cfg = cp->cfg;
	const struct ac_listen_conf	*tls = NULL;
	struct stat			 st;
	const char			*which, *key;
	char				*cause;
	size_t				 i;

	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].type == AC_LISTEN_TLS ||
		    cfg->listen[i].type == AC_LISTEN_WSS) {
			tls = &cfg->listen[i];
			break;
		}
	}
	if (tls == NULL) {
		for (i = 0; i < 3; i++) {
			if (config_seen(cp, keys[i]) != 0)
				config_warn(cfg, "%s:%d: [server] %s: "
				    "ignored: no tls:// or wss:// listener",
				    cp->file, config_seen(cp, keys[i]),
				    keys[i]);
		}
		return;
	}
	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		config_error(cp, tls->line, "server", "listen", "%s needs "
		    "tls_cert and tls_key (PEM files)%s", tls->url,
		    cfg->tls_cert == NULL && cfg->tls_key == NULL ? "" :
		    cfg->tls_cert == NULL ? ": tls_cert is missing" :
		    ": tls_key is missing");
		return;
	}
	cfg->tls_ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key,
	    cfg->tls_client_ca, &which, &cause);
	if (cfg->tls_ctx == NULL) {
		key = keys[0];
		for (i = 0; i < 3; i++) {
			if (strcmp(which, keys[i]) == 0)
				key = keys[i];
		}
		config_error(cp, config_seen(cp, key), "server", key, "%s",
		    cause);
		free(cause);
		return;
	}
	/* Like hmac_key_file: a readable key is worth a warning. */
	if (stat(cfg->tls_key, &st) == 0 && (st.st_mode & 077) != 0)
		config_warn(cfg, "%s:%d: [server] tls_key: %s can be read by "
		    "group or others (chmod 600 it)", cp->file,
		    config_seen(cp, "tls_key"), cfg->tls_key);
}

/*
 * Read web_root's files now (webroot.c), once, for the same reasons as
 * the TLS files: a missing page is an error `asyncchatd -t` reports, and
 * a request never waits for a disk. Only when a ws:// or wss:// listener
 * exists; web_root and web_origins are ignored, with a warning,
 * otherwise.
 */
static void
config_load_web(struct config_parse *cp)
{
	static const char		*keys[] = { "web_root", "web_origins" };
	struct ac_config		*cfg = cp->cfg;
	const struct ac_listen_conf	*web = NULL;
	char				*cause;
	size_t				 i;

	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].type == AC_LISTEN_WS ||
		    cfg->listen[i].type == AC_LISTEN_WSS) {
			web = &cfg->listen[i];
			break;
		}
	}
	if (web == NULL) {
		for (i = 0; i < 2; i++) {
			if (config_seen(cp, keys[i]) != 0)
				config_warn(cfg, "%s:%d: [server] %s: "
				    "ignored: no ws:// or wss:// listener",
				    cp->file, config_seen(cp, keys[i]),
				    keys[i]);
		}
		return;
	}
	if (cfg->web_origins != NULL && strcmp(cfg->web_origins, "*") == 0)
		config_warn(cfg, "%s:%d: [server] web_origins: * lets the "
		    "pages of every web site open sessions here from their "
		    "visitors' browsers", cp->file,
		    config_seen(cp, "web_origins"));
	/*
	 * Off loopback the default policy takes any Host for the page's
	 * own: a site that points a name of its own at this address (DNS
	 * rebinding) is then "the page's own origin" in its visitors'
	 * browsers. Over wss:// the certificate would not match that name.
	 */
	for (i = 0; cfg->web_origins == NULL && i < cfg->nlisten; i++) {
		if (cfg->listen[i].type == AC_LISTEN_WS &&
		    !config_listen_is_local(&cfg->listen[i]))
			config_warn(cfg, "%s:%d: [server] listen: %s without "
			    "web_origins: the pages of any web site can open "
			    "sessions here from browsers that reach this "
			    "address, by pointing a name of theirs at it (DNS "
			    "rebinding); list your pages' origins",
			    cp->file, cfg->listen[i].line, cfg->listen[i].url);
	}
	if (cfg->web_root == NULL)
		return;		/* none: /ws only */
	if (webroot_load(cfg->web_root, &cfg->web, &cause) == -1) {
		config_error(cp, config_seen(cp, "web_root") != 0 ?
		    config_seen(cp, "web_root") : web->line, "server",
		    "web_root", "%s%s", cause, config_seen(cp, "web_root") ?
		    "" : " (the default; set web_root, or web_root = none "
		    "to serve /ws only)");
		free(cause);
		return;
	}
	if (cfg->web->skipped != 0)
		config_warn(cfg, "%s: %zu entr%s of web_root not served "
		    "(symbolic links are never followed), such as %s",
		    cfg->web_root, cfg->web->skipped,
		    cfg->web->skipped == 1 ? "y" : "ies",
		    cfg->web->skipped_first);
}

/* Check what needs the whole file, and fill in defaults. */
static void
config_finish(struct config_parse *cp)
{
	struct ac_config	*cfg = cp->cfg;
	const struct config_key	*k;
	uint64_t		 frame_max;
	size_t			 i;
	char			 why[512];
	int			 key_line, file_line;

	key_line = config_seen(cp, "hmac_key");
	file_line = config_seen(cp, "hmac_key_file");
	if (key_line != 0 && file_line != 0) {
		config_error(cp, key_line > file_line ? key_line : file_line,
		    "server", key_line > file_line ? "hmac_key" :
		    "hmac_key_file", "hmac_key and hmac_key_file cannot both "
		    "be set (lines %d and %d)", key_line, file_line);
	} else if (cfg->hmac_key_file != NULL)
		config_read_key_file(cp, cfg->hmac_key_file);
	else
		cfg->key = ac_key_new(cfg->hmac_key, strlen(cfg->hmac_key));
	/* The key is made: the text of the secret goes. */
	explicit_bzero(cfg->hmac_key, strlen(cfg->hmac_key));
	free(cfg->hmac_key);
	cfg->hmac_key = NULL;

	frame_max = AC_FIXED_HEADER_LEN + (uint64_t)cfg->max_header_size +
	    cfg->max_content_size;
	if (cfg->max_memory < 2 * frame_max)
		config_error(cp, config_seen(cp, "max_memory"), "server",
		    "max_memory", "%llu is smaller than two largest frames "
		    "(%llu bytes: 2 x (64 + max_header_size + "
		    "max_content_size))",
		    (unsigned long long)cfg->max_memory,
		    (unsigned long long)(2 * frame_max));
	if (cfg->max_output_buffer < frame_max)
		config_error(cp, config_seen(cp, "max_output_buffer"),
		    "server",
		    "max_output_buffer", "%llu is smaller than one largest "
		    "frame (%llu bytes: 64 + max_header_size + "
		    "max_content_size)",
		    (unsigned long long)cfg->max_output_buffer,
		    (unsigned long long)frame_max);

	/* A key that may be repeated has its default when never given. */
	for (k = config_keys; k < config_keys + config_nkeys; k++) {
		if ((k->flags & CONFIG_MULTI) && k->def != NULL &&
		    cp->seen[k - config_keys] == 0 &&
		    config_key_set(cfg, k, k->def, 0, why, sizeof why) == -1)
			abort();	/* a bad row */
	}
	config_load_tls(cp);
	config_load_web(cp);

	for (i = 0; i < cfg->nplugins; i++) {
		if (cfg->plugins[i].path == NULL)
			ac_xasprintf(&cfg->plugins[i].path, "%s/%s.so",
			    cfg->plugin_dir, cfg->plugins[i].name);
	}
	for (i = 0; i < cfg->nsections; i++) {
		if (config_find_plugin(cfg, cfg->sections[i].name) == NULL)
			config_warn(cfg, "%s:%d: [plugin.%s]: plugin %s is not "
			    "loaded ([plugins] load), section ignored",
			    cp->file, cfg->sections[i].line,
			    cfg->sections[i].name, cfg->sections[i].name);
	}

	cfg->key_is_default = cfg->key != NULL && ac_key_is_default(cfg->key);
	if (cfg->key_is_default) {
		for (i = 0; i < cfg->nlisten; i++) {
			if (config_listen_is_local(&cfg->listen[i]))
				continue;
			config_warn(cfg, "*** %s listens on %s with the public "
			    "default key \"default-key\": anyone can forge "
			    "frames; set hmac_key_file ***", cp->file,
			    cfg->listen[i].url);
		}
	}
}

/* The plugin loaded under name, or NULL. */
static const struct ac_plugin_conf *
config_find_plugin(const struct ac_config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->nplugins; i++) {
		if (strcmp(cfg->plugins[i].name, name) == 0)
			return (&cfg->plugins[i]);
	}
	return (NULL);
}

/* The [plugin.NAME] section for name, or NULL if there is none. */
const struct ac_plugin_section *
config_find_section(const struct ac_config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->nsections; i++) {
		if (strcmp(cfg->sections[i].name, name) == 0)
			return (&cfg->sections[i]);
	}
	return (NULL);
}

/* Read and validate the file at path into *cfgp. */
int
config_load(const char *path, struct ac_config **cfgp, char **cause)
{
	struct config_parse	 cp;
	struct ac_config	*cfg;

	*cfgp = NULL;
	*cause = NULL;

	cfg = ac_xcalloc(1, sizeof *cfg);
	cfg->path = ac_xstrdup(path);
	config_key_defaults(cfg);

	memset(&cp, 0, sizeof cp);
	cp.cfg = cfg;
	cp.file = path;
	cp.seen = ac_xcalloc(config_nkeys, sizeof *cp.seen);
	if ((cp.f = fopen(path, "re")) == NULL) {
		ac_xasprintf(cause, "%s: %s", path, strerror(errno));
		free(cp.seen);
		config_free(cfg);
		return (-1);
	}
	config_read(&cp);
	config_check_inline_key(&cp);
	fclose(cp.f);
	free(cp.section);

	config_finish(&cp);
	free(cp.seen);

	if (cp.nerrors != 0) {
		*cause = cp.errors;
		config_free(cfg);
		return (-1);
	}
	*cfgp = cfg;
	return (0);
}

/* Free a configuration; NULL is allowed. */
void
config_free(struct ac_config *cfg)
{
	size_t	i, j;

	if (cfg == NULL)
		return;
	free(cfg->path);
	config_key_free(cfg);
	ac_key_free(cfg->key);
	tls_ctx_free(cfg->tls_ctx);
	webroot_unref(cfg->web);
	for (i = 0; i < cfg->nplugins; i++) {
		free(cfg->plugins[i].name);
		free(cfg->plugins[i].path);
	}
	free(cfg->plugins);
	for (i = 0; i < cfg->nsections; i++) {
		for (j = 0; j < cfg->sections[i].nopts; j++) {
			free((char *)cfg->sections[i].opts[j].key);
			free((char *)cfg->sections[i].opts[j].value);
		}
		free(cfg->sections[i].opts);
		free(cfg->sections[i].name);
	}
	free(cfg->sections);
	for (i = 0; i < cfg->nwarnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg);
}
