/*
 * config.c - read asyncchatd's INI file into a struct ac_config.
 *
 * inih calls our handler once per `key = value` line. We feed it through
 * our own line reader so that we always know the line number (Debian's
 * inih is built without INI_HANDLER_LINENO), can see section headers even
 * when a section is empty, and can strip leading blanks so that inih never
 * treats an indented line as a continuation of the previous value.
 *
 * Every problem is collected rather than stopping at the first, so that
 * `asyncchatd -t` shows them all at once.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <ini.h>

#include <asyncchat/key.h>
#include <asyncchat/option.h>

#include "xmalloc.h"
#include "server.h"

#define CONFIG_MAX_KEY_FILE	4096

/* Keys of [server] that may appear once, with a bit each. */
enum config_key {
	K_BACKLOG,
	K_UNIX_MODE,
	K_HMAC_KEY,
	K_HMAC_KEY_FILE,
	K_HANDSHAKE_TIMEOUT,
	K_HEARTBEAT_TIMEOUT,
	K_MAX_CLIENTS,
	K_MAX_HEADER_SIZE,
	K_MAX_CONTENT_SIZE,
	K_MAX_OUTPUT_BUFFER,
	K_MAX_ERRORS,
	K_LOG,
	K_LOG_LEVEL,
	K_PLUGIN_DIR,
	K_PID_FILE,
	K_METRICS_LISTEN,
	K_TLS_CERT,
	K_TLS_KEY,
	K_TLS_CLIENT_CA,
	K_MAX_CLIENTS_PER_IP,
	K_MAX_MESSAGE_RATE,
	K_MAX_BYTE_RATE,
	K_RATE_BURST,
	K_RATE_LIMIT_DISCONNECT,
	K_WORKER_THREADS,
	K_WORKER_QUEUE,
	K_MAX_MEMORY,
	K_COUNT
};

static const char *config_key_names[K_COUNT] = {
	"backlog", "unix_mode", "hmac_key", "hmac_key_file",
	"handshake_timeout", "heartbeat_timeout", "max_clients",
	"max_header_size", "max_content_size", "max_output_buffer",
	"max_errors", "log", "log_level", "plugin_dir", "pid_file",
	"metrics_listen", "tls_cert", "tls_key", "tls_client_ca",
	"max_clients_per_ip", "max_message_rate", "max_byte_rate",
	"rate_burst", "rate_limit_disconnect", "worker_threads",
	"worker_queue", "max_memory",
};

/* Parsing state shared by the reader and the handler. */
struct config_parse {
	struct ac_config	*cfg;
	FILE			*f;
	const char		*file;
	int			 line;
	int			 max_line;
	char			*buf;
	size_t			 bufsize;

	int			 seen[K_COUNT];	/* line, 0 if not seen */
	char			*hmac_key;	/* secret: never logged */
	char			*key_file;
	char			*tls_file[3];	/* cert, key, client CA */

	char			*errors;
	size_t			 nerrors;
};

static void	config_error(struct config_parse *, int, const char *,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));
static void	config_warn(struct ac_config *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static char	*config_reader(char *, int, void *);
static int	config_handler(void *, const char *, const char *,
		    const char *);
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
static void
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

/* Look at a section header line: unknown sections are errors. */
static void
config_see_section(struct config_parse *cp, char *line)
{
	char	*end, *name;

	if ((end = strchr(line, ']')) == NULL)
		return;		/* inih reports the syntax error */
	*end = '\0';
	name = config_trim(line + 1);
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
 * inih's line reader: one line per call, counted, with leading blanks
 * removed. Too long a line becomes an error of ours and an empty line for
 * inih, which would otherwise split it silently.
 */
static char *
config_reader(char *str, int num, void *arg)
{
	struct config_parse	*cp = arg;
	ssize_t			 n;
	char			*line;

	if ((n = getline(&cp->buf, &cp->bufsize, cp->f)) == -1)
		return (NULL);
	cp->line++;
	/* Everything after a NUL would be cut off without a word. */
	if ((line = memchr(cp->buf, '\0', n)) != NULL) {
		config_error(cp, cp->line, NULL, NULL, "NUL byte in the line "
		    "(at byte %zu)", (size_t)(line - cp->buf) + 1);
		snprintf(str, num, "\n");
		return (str);
	}
	line = cp->buf;
	while (*line == ' ' || *line == '\t')
		line++;
	if (strlen(line) + 1 > (size_t)num) {
		config_error(cp, cp->line, NULL, NULL,
		    "line longer than %d characters", num - 2);
		snprintf(str, num, "\n");
		return (str);
	}
	if (*line == '[') {
		char	*copy = ac_xstrdup(line);

		config_see_section(cp, copy);
		free(copy);
	}
	snprintf(str, num, "%s", line);
	return (str);
}

/* Parse a size with an optional K, M or G suffix (powers of 1024). */
int
config_parse_size(const char *s, uint64_t *out)
{
	unsigned long long	 v, mult = 1;
	char			*end;

	if (!isdigit((unsigned char)*s))
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return (-1);
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1024ull;
		end++;
		break;
	case 'm': case 'M':
		mult = 1024ull * 1024;
		end++;
		break;
	case 'g': case 'G':
		mult = 1024ull * 1024 * 1024;
		end++;
		break;
	default:
		return (-1);
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || v > UINT64_MAX / mult)
		return (-1);
	*out = v * mult;
	return (0);
}

/* Parse seconds, possibly fractional ("0.5"), into a timeval. */
int
config_parse_seconds(const char *s, struct timeval *tv)
{
	double	 d;
	char	*end;

	if (!isdigit((unsigned char)*s) && *s != '.')
		return (-1);
	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(d) || d < 0.001 ||
	    d > 86400.0)
		return (-1);
	tv->tv_sec = (time_t)d;
	tv->tv_usec = (suseconds_t)((d - (double)tv->tv_sec) * 1e6 + 0.5);
	if (tv->tv_usec >= 1000000) {
		tv->tv_sec++;
		tv->tv_usec -= 1000000;
	}
	return (0);
}


/* Parse a listen URL into lc; -1 and a reason in *why if not valid. */
int
config_parse_listen(const char *url, struct ac_listen_conf *lc,
    const char **why)
{
	struct sockaddr_un	 sun;
	const char		*rest, *colon, *close;
	unsigned long long	 port;
	char			*host;

	lc->host = lc->port = lc->path = NULL;
	if (strncmp(url, "unix://", 7) == 0) {
		rest = url + 7;
		if (*rest != '/') {
			*why = "a unix socket path must be absolute "
			    "(unix:///path/to/socket)";
			return (-1);
		}
		if (strlen(rest) >= sizeof sun.sun_path) {
			*why = "path too long for a unix socket "
			    "(at most 107 bytes)";
			return (-1);
		}
		lc->type = AC_LISTEN_UNIX;
		lc->path = ac_xstrdup(rest);
		return (0);
	}
	if (strncmp(url, "tcp://", 6) == 0)
		lc->type = AC_LISTEN_TCP;
	else if (strncmp(url, "tls://", 6) == 0)
		lc->type = AC_LISTEN_TLS;
	else {
		*why = "expected tcp://HOST:PORT, tls://HOST:PORT or "
		    "unix:///PATH";
		return (-1);
	}
	rest = url + 6;	/* both schemes are six characters */
	if (*rest == '[') {
		if ((close = strchr(rest, ']')) == NULL || close[1] != ':') {
			*why = "expected tcp://[IPV6]:PORT";
			return (-1);
		}
		host = strndup(rest + 1, close - rest - 1);
		colon = close + 1;
	} else {
		if ((colon = strrchr(rest, ':')) == NULL) {
			*why = "missing :PORT (expected tcp://HOST:PORT)";
			return (-1);
		}
		host = strndup(rest, colon - rest);
		if (host != NULL && strchr(host, ':') != NULL) {
			free(host);
			*why = "an IPv6 address needs brackets: "
			    "tcp://[::1]:PORT";
			return (-1);
		}
	}
	if (host == NULL)
		abort();
	if (*host == '\0') {
		free(host);
		*why = "missing host (use 0.0.0.0 or [::] for every address)";
		return (-1);
	}
	if (ac_option_uint(colon + 1, 0, 65535, &port) == -1) {
		free(host);
		*why = "bad port (expected 0 to 65535)";
		return (-1);
	}
	lc->host = host;
	lc->port = ac_xstrdup(colon + 1);
	return (0);
}

/*
 * Check a metrics_listen value: a numeric IPv4 address or a bracketed
 * IPv6 one, and a port. Names are refused because resolving one could
 * block, and the endpoint should not move when DNS changes.
 */
static int
config_parse_metrics(const char *value)
{
	struct in6_addr		 in6;
	struct in_addr		 in4;
	unsigned long long	 port;
	const char		*colon, *close;
	char			*host;
	int			 ok;

	if (*value == '[') {
		if ((close = strchr(value, ']')) == NULL || close[1] != ':')
			return (-1);
		host = strndup(value + 1, close - value - 1);
		colon = close + 1;
		if (host == NULL)
			abort();
		ok = inet_pton(AF_INET6, host, &in6) == 1;
	} else {
		if ((colon = strrchr(value, ':')) == NULL)
			return (-1);
		host = strndup(value, colon - value);
		if (host == NULL)
			abort();
		ok = inet_pton(AF_INET, host, &in4) == 1;
	}
	free(host);
	if (!ok || ac_option_uint(colon + 1, 0, 65535, &port) == -1)
		return (-1);
	return (0);
}

/* Handle one key of [server]. */
static void
config_server_key(struct config_parse *cp, const char *key,
    const char *value)
{
	struct ac_config	*cfg = cp->cfg;
	struct ac_listen_conf	 lc, *l;
	unsigned long long	 u;
	uint64_t		 size;
	const char		*why;
	char			*end;
	unsigned long		 mode;
	int			 k;
	size_t			 i;

	if (strcmp(key, "listen") == 0) {
		if (config_parse_listen(value, &lc, &why) == -1) {
			config_error(cp, cp->line, "server", key, "%s: %s",
			    value, why);
			return;
		}
		for (i = 0; i < cfg->nlisten; i++) {
			if (strcmp(cfg->listen[i].url, value) == 0)
				break;
		}
		if (i != cfg->nlisten) {
			config_error(cp, cp->line, "server", key,
			    "%s is already listed on line %d", value,
			    cfg->listen[i].line);
			free(lc.host);
			free(lc.port);
			free(lc.path);
			return;
		}
		cfg->listen = ac_xreallocarray(cfg->listen, cfg->nlisten + 1,
		    sizeof *cfg->listen);
		l = &cfg->listen[cfg->nlisten++];
		*l = lc;
		l->url = ac_xstrdup(value);
		l->line = cp->line;
		return;
	}

	for (k = 0; k < K_COUNT; k++) {
		if (strcmp(key, config_key_names[k]) == 0)
			break;
	}
	if (k == K_COUNT) {
		config_error(cp, cp->line, "server", key, "unknown key");
		return;
	}
	if (cp->seen[k] != 0) {
		config_error(cp, cp->line, "server", key,
		    "duplicate key (first set on line %d)", cp->seen[k]);
		return;
	}
	cp->seen[k] = cp->line;

	switch (k) {
	case K_BACKLOG:
		if (ac_option_uint(value, 1, 65535, &u) == -1)
			goto bad;
		cfg->backlog = (int)u;
		break;
	case K_UNIX_MODE:
		errno = 0;
		mode = strtoul(value, &end, 8);
		if (*value == '\0' || *end != '\0' || errno != 0 ||
		    mode > 0777) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected an octal mode such as 0660", value);
			return;
		}
		cfg->unix_mode = (mode_t)mode;
		break;
	case K_HMAC_KEY:
		if (*value == '\0') {
			config_error(cp, cp->line, "server", key,
			    "the key is empty");
			return;
		}
		/* The value is a secret: never quote it in a message. */
		free(cp->hmac_key);
		cp->hmac_key = ac_xstrdup(value);
		break;
	case K_HMAC_KEY_FILE:
		if (*value == '\0')
			goto bad;
		cp->key_file = ac_xstrdup(value);
		break;	/* read once all keys are known */
	case K_HANDSHAKE_TIMEOUT:
		if (config_parse_seconds(value, &cfg->handshake_timeout) == -1)
			goto bad_seconds;
		break;
	case K_HEARTBEAT_TIMEOUT:
		if (config_parse_seconds(value, &cfg->heartbeat_timeout) == -1)
			goto bad_seconds;
		break;
	case K_MAX_CLIENTS:
		if (ac_option_uint(value, 1, 1000000, &u) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected 1 to 1000000", value);
			return;
		}
		cfg->max_clients = (unsigned int)u;
		break;
	case K_MAX_HEADER_SIZE:
		if (config_parse_size(value, &size) == -1 || size < 1 ||
		    size > AC_DEFAULT_MAX_HEADER) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected 1 to %u bytes (K suffix allowed)",
			    value, AC_DEFAULT_MAX_HEADER);
			return;
		}
		cfg->max_header_size = (uint32_t)size;
		break;
	case K_MAX_CONTENT_SIZE:
		if (config_parse_size(value, &size) == -1 || size < 1 ||
		    size > AC_DEFAULT_MAX_CONTENT) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected 1 to %u bytes (K or M suffix "
			    "allowed)", value, AC_DEFAULT_MAX_CONTENT);
			return;
		}
		cfg->max_content_size = size;
		break;
	case K_MAX_OUTPUT_BUFFER:
		if (config_parse_size(value, &size) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected bytes, optionally with a K, M or G "
			    "suffix", value);
			return;
		}
		cfg->max_output_buffer = size;
		break;
	case K_MAX_ERRORS:
		if (ac_option_uint(value, 1, 1000000, &u) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected 1 to 1000000", value);
			return;
		}
		cfg->max_errors = (unsigned int)u;
		break;
	case K_LOG:
		if (strcmp(value, "stderr") != 0 &&
		    strcmp(value, "syslog") != 0 && *value != '/') {
			config_error(cp, cp->line, "server", key,
			    "%s: expected stderr, syslog or an absolute file "
			    "path", value);
			return;
		}
		free(cfg->log);
		cfg->log = ac_xstrdup(value);
		break;
	case K_LOG_LEVEL:
		if (strcmp(value, "error") == 0)
			cfg->log_level = AC_LOG_ERROR;
		else if (strcmp(value, "warning") == 0)
			cfg->log_level = AC_LOG_WARNING;
		else if (strcmp(value, "info") == 0)
			cfg->log_level = AC_LOG_INFO;
		else if (strcmp(value, "debug") == 0)
			cfg->log_level = AC_LOG_DEBUG;
		else {
			config_error(cp, cp->line, "server", key,
			    "%s: expected error, warning, info or debug",
			    value);
			return;
		}
		break;
	case K_PLUGIN_DIR:
		if (*value == '\0')
			goto bad;
		free(cfg->plugin_dir);
		cfg->plugin_dir = ac_xstrdup(value);
		break;
	case K_PID_FILE:
		if (*value == '\0')
			goto bad;
		free(cfg->pid_file);
		cfg->pid_file = strcmp(value, "none") == 0 ? NULL :
		    ac_xstrdup(value);
		break;
	case K_METRICS_LISTEN:
		if (strcmp(value, "none") == 0)
			break;
		if (config_parse_metrics(value) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected none or ADDRESS:PORT with a numeric "
			    "address, such as 127.0.0.1:9100 or [::1]:9100",
			    value);
			return;
		}
		cfg->metrics_listen = ac_xstrdup(value);
		break;
	case K_TLS_CERT:
	case K_TLS_KEY:
	case K_TLS_CLIENT_CA:
		if (*value == '\0')
			goto bad;
		cp->tls_file[k - K_TLS_CERT] = ac_xstrdup(value);
		break;	/* loaded once all keys are known */
	case K_MAX_CLIENTS_PER_IP:
		if (ac_option_uint(value, 0, 1000000, &u) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected 0 (no limit) to 1000000", value);
			return;
		}
		cfg->max_clients_per_ip = (unsigned int)u;
		break;
	case K_MAX_MESSAGE_RATE:
		if (ac_option_uint(value, 0, 1000000, &u) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected frames per second, 0 (off) to "
			    "1000000", value);
			return;
		}
		cfg->max_message_rate = u;
		break;
	case K_MAX_BYTE_RATE:
		if (config_parse_size(value, &size) == -1 ||
		    size > 1024ull * 1024 * 1024) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected bytes per second, 0 (off) to 1G "
			    "(K, M or G suffix allowed)", value);
			return;
		}
		cfg->max_byte_rate = size;
		break;
	case K_RATE_BURST:
		if (config_parse_seconds(value, &cfg->rate_burst) == -1 ||
		    cfg->rate_burst.tv_sec > 60 ||
		    (cfg->rate_burst.tv_sec == 60 &&
		    cfg->rate_burst.tv_usec != 0)) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected seconds between 0.001 and 60 (such "
			    "as 2 or 0.5)", value);
			return;
		}
		break;
	case K_MAX_MEMORY:
		if (config_parse_size(value, &size) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected bytes, optionally with a K, M or G "
			    "suffix", value);
			return;
		}
		cfg->max_memory = size;
		break;
	case K_RATE_LIMIT_DISCONNECT:
		if (ac_option_uint(value, 0, 1000000, &u) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected 0 (never) to 1000000", value);
			return;
		}
		cfg->rate_limit_disconnect = (unsigned int)u;
		break;
	case K_WORKER_THREADS:
		if (ac_option_uint(value, 1, 256, &u) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected 1 to 256 threads", value);
			return;
		}
		cfg->worker_threads = (unsigned int)u;
		break;
	case K_WORKER_QUEUE:
		if (ac_option_uint(value, 1, 1000000, &u) == -1) {
			config_error(cp, cp->line, "server", key,
			    "%s: expected 1 to 1000000 jobs", value);
			return;
		}
		cfg->worker_queue = (unsigned int)u;
		break;
	}
	return;

bad_seconds:
	config_error(cp, cp->line, "server", key,
	    "%s: expected seconds between 0.001 and 86400 (such as 10 or 0.5)",
	    value);
	return;
bad:
	config_error(cp, cp->line, "server", key, "%s: bad value", value);
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

/* inih's handler: dispatch one key = value line by section. */
static int
config_handler(void *arg, const char *section, const char *key,
    const char *value)
{
	struct config_parse		*cp = arg;
	struct ac_plugin_section	*ps;
	struct ac_plugin_option		*o;

	if (strcmp(section, "server") == 0)
		config_server_key(cp, key, value);
	else if (strcmp(section, "plugins") == 0) {
		if (strcmp(key, "load") == 0)
			config_load_key(cp, value);
		else
			config_error(cp, cp->line, section, key,
			    "unknown key (expected load = NAME, NAME...)");
	} else if (strncmp(section, "plugin.", 7) == 0) {
		if (!config_valid_name(section + 7))
			return (1);	/* reported with the header */
		ps = config_section(cp->cfg, section + 7, cp->line);
		ps->opts = ac_xreallocarray(ps->opts, ps->nopts + 1,
		    sizeof *ps->opts);
		o = &ps->opts[ps->nopts++];
		o->key = ac_xstrdup(key);
		o->value = ac_xstrdup(value);
		o->line = cp->line;
	} else if (*section == '\0')
		config_error(cp, cp->line, NULL, key,
		    "key outside any section (put it under [server])");
	/* Other sections were reported when their header was read. */
	return (1);
}

/*
 * Can the file st describes keep a secret? Only if nobody but its owner
 * can change it, nobody else can read it (its group may, if root owns it:
 * root:asyncchat 0640 shares it with a service's group), and its owner is
 * root or the user the server runs as, who could change it anyway.
 * Returns 0, or -1 with the reason in why.
 */
static int
config_secret_mode(const struct stat *st, char *why, size_t len)
{
	unsigned int	mode = st->st_mode & 07777;

	if (st->st_uid != 0 && st->st_uid != geteuid())
		snprintf(why, len, "belongs to uid %u, neither root nor the "
		    "server's user", (unsigned int)st->st_uid);
	else if (mode & (S_IRWXO))
		snprintf(why, len, "can be read or written by others (mode "
		    "%04o): chmod 600 it", mode);
	else if (mode & (S_IWGRP|S_IXGRP))
		snprintf(why, len, "can be written by its group (mode %04o): "
		    "chmod 600 it", mode);
	else if ((mode & S_IRGRP) && st->st_uid != 0)
		snprintf(why, len, "can be read by its group (mode %04o): "
		    "chmod 600 it (a file root owns may be 0640)", mode);
	else
		return (0);
	return (-1);
}

/*
 * Read the key file once: the whole file is the key, less one trailing
 * newline. It must be a regular file named directly (not through a
 * symbolic link someone could point elsewhere) that keeps the secret
 * (config_secret_mode): a key others can read is no key, so such a file
 * is refused, not warned about.
 */
static void
config_read_key_file(struct config_parse *cp, const char *path)
{
	struct stat	 st;
	char		 buf[CONFIG_MAX_KEY_FILE + 1], why[128];
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	fd = open(path, O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY);
	if (fd == -1) {
		config_error(cp, cp->seen[K_HMAC_KEY_FILE], "server",
		    "hmac_key_file", "%s: %s", path, errno == ELOOP ?
		    "is a symbolic link (name the file itself)" :
		    strerror(errno));
		return;
	}
	why[0] = '\0';
	if (fstat(fd, &st) == -1)
		snprintf(why, sizeof why, "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(why, sizeof why, "not a regular file");
	else
		config_secret_mode(&st, why, sizeof why);
	if (why[0] != '\0') {
		config_error(cp, cp->seen[K_HMAC_KEY_FILE], "server",
		    "hmac_key_file", "%s: %s", path, why);
		close(fd);
		return;
	}
	for (;;) {
		n = read(fd, buf + len, sizeof buf - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		if (len == sizeof buf)
			break;
	}
	close(fd);
	if (n == -1) {
		config_error(cp, cp->seen[K_HMAC_KEY_FILE], "server",
		    "hmac_key_file", "%s: %s", path, strerror(errno));
		goto out;
	}
	if (len > CONFIG_MAX_KEY_FILE) {
		config_error(cp, cp->seen[K_HMAC_KEY_FILE], "server",
		    "hmac_key_file", "%s: longer than %d bytes", path,
		    CONFIG_MAX_KEY_FILE);
		goto out;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0) {
		config_error(cp, cp->seen[K_HMAC_KEY_FILE], "server",
		    "hmac_key_file", "%s: the key is empty", path);
		goto out;
	}
	cp->cfg->key = ac_key_new(buf, len);
out:
	explicit_bzero(buf, sizeof buf);
}

/*
 * A key written in the configuration file is only as secret as the file:
 * warn when the file does not keep it (config_secret_mode). The public
 * default key has nothing to hide.
 */
static void
config_check_inline_key(struct config_parse *cp)
{
	struct stat	st;
	char		why[128];

	if (cp->hmac_key == NULL || strcmp(cp->hmac_key, AC_DEFAULT_KEY) == 0)
		return;
	if (fstat(fileno(cp->f), &st) == 0 &&
	    config_secret_mode(&st, why, sizeof why) == -1)
		config_warn(cp->cfg, "%s:%d: [server] hmac_key: the key is in "
		    "a file that %s; or move it to hmac_key_file", cp->file,
		    cp->seen[K_HMAC_KEY], why);
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
 * tls:// listener exists and ignored, with a warning, otherwise.
 */
static void
config_load_tls(struct config_parse *cp)
{
	struct ac_config		*cfg = cp->cfg;
	const struct ac_listen_conf	*tls = NULL;
	struct stat			 st;
	const char			*which;
	char				*cause;
	size_t				 i;
	int				 k;

	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].type == AC_LISTEN_TLS) {
			tls = &cfg->listen[i];
			break;
		}
	}
	if (tls == NULL) {
		for (k = K_TLS_CERT; k <= K_TLS_CLIENT_CA; k++) {
			if (cp->seen[k] != 0)
				config_warn(cfg, "%s:%d: [server] %s: "
				    "ignored: no tls:// listener", cp->file,
				    cp->seen[k], config_key_names[k]);
		}
		return;
	}
	if (cp->tls_file[0] == NULL || cp->tls_file[1] == NULL) {
		config_error(cp, tls->line, "server", "listen", "%s needs "
		    "tls_cert and tls_key (PEM files)%s", tls->url,
		    cp->tls_file[0] == NULL && cp->tls_file[1] == NULL ? "" :
		    cp->tls_file[0] == NULL ? ": tls_cert is missing" :
		    ": tls_key is missing");
		return;
	}
	cfg->tls_ctx = tls_server_ctx(cp->tls_file[0], cp->tls_file[1],
	    cp->tls_file[2], &which, &cause);
	if (cfg->tls_ctx == NULL) {
		for (k = K_TLS_CERT; k <= K_TLS_CLIENT_CA; k++) {
			if (strcmp(which, config_key_names[k]) == 0)
				break;
		}
		if (k > K_TLS_CLIENT_CA)
			k = K_TLS_CERT;
		config_error(cp, cp->seen[k], "server", config_key_names[k],
		    "%s", cause);
		free(cause);
		return;
	}
	/* Like hmac_key_file: a readable key is worth a warning. */
	if (stat(cp->tls_file[1], &st) == 0 && (st.st_mode & 077) != 0)
		config_warn(cfg, "%s:%d: [server] tls_key: %s can be read by "
		    "group or others (chmod 600 it)", cp->file,
		    cp->seen[K_TLS_KEY], cp->tls_file[1]);
}

/* Check what needs the whole file, and fill in defaults. */
static void
config_finish(struct config_parse *cp, const char *key_file)
{
	struct ac_config	*cfg = cp->cfg;
	struct ac_listen_conf	*lc;
	const char		*why;
	uint64_t		 frame_max;
	size_t			 i;

	if (cp->seen[K_HMAC_KEY] != 0 && cp->seen[K_HMAC_KEY_FILE] != 0) {
		int	later = cp->seen[K_HMAC_KEY] > cp->seen[K_HMAC_KEY_FILE] ?
		    K_HMAC_KEY : K_HMAC_KEY_FILE;

		config_error(cp, cp->seen[later], "server",
		    config_key_names[later], "hmac_key and hmac_key_file "
		    "cannot both be set (lines %d and %d)",
		    cp->seen[K_HMAC_KEY], cp->seen[K_HMAC_KEY_FILE]);
	} else if (key_file != NULL)
		config_read_key_file(cp, key_file);
	else if (cp->hmac_key != NULL)
		cfg->key = ac_key_new(cp->hmac_key, strlen(cp->hmac_key));
	else
		cfg->key = ac_key_new(AC_DEFAULT_KEY, strlen(AC_DEFAULT_KEY));

	frame_max = AC_FIXED_HEADER_LEN + (uint64_t)cfg->max_header_size +
	    cfg->max_content_size;
	if (cfg->max_memory < 2 * frame_max)
		config_error(cp, cp->seen[K_MAX_MEMORY], "server",
		    "max_memory", "%llu is smaller than two largest frames "
		    "(%llu bytes: 2 x (64 + max_header_size + "
		    "max_content_size))",
		    (unsigned long long)cfg->max_memory,
		    (unsigned long long)(2 * frame_max));
	if (cfg->max_output_buffer < frame_max)
		config_error(cp, cp->seen[K_MAX_OUTPUT_BUFFER], "server",
		    "max_output_buffer", "%llu is smaller than one largest "
		    "frame (%llu bytes: 64 + max_header_size + "
		    "max_content_size)",
		    (unsigned long long)cfg->max_output_buffer,
		    (unsigned long long)frame_max);

	if (cfg->nlisten == 0) {
		cfg->listen = ac_xcalloc(1, sizeof *cfg->listen);
		lc = &cfg->listen[0];
		if (config_parse_listen(AC_DEFAULT_LISTEN, lc, &why) == -1)
			abort();
		lc->url = ac_xstrdup(AC_DEFAULT_LISTEN);
		cfg->nlisten = 1;
	}
	config_load_tls(cp);

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
	size_t			 i;
	int			 r;

	*cfgp = NULL;
	*cause = NULL;

	cfg = ac_xcalloc(1, sizeof *cfg);
	cfg->path = ac_xstrdup(path);
	cfg->backlog = SOMAXCONN;
	cfg->unix_mode = AC_DEFAULT_UNIX_MODE;
	config_parse_seconds("10", &cfg->handshake_timeout);
	config_parse_seconds("30", &cfg->heartbeat_timeout);
	cfg->max_clients = AC_DEFAULT_MAX_CLIENTS;
	cfg->max_header_size = AC_DEFAULT_MAX_HEADER;
	cfg->max_content_size = AC_DEFAULT_MAX_CONTENT;
	cfg->max_output_buffer = AC_DEFAULT_MAX_OUTPUT;
	cfg->max_errors = AC_DEFAULT_MAX_ERRORS;
	cfg->max_clients_per_ip = AC_DEFAULT_MAX_CLIENTS_PER_IP;
	cfg->max_message_rate = AC_DEFAULT_MAX_MESSAGE_RATE;
	cfg->max_byte_rate = AC_DEFAULT_MAX_BYTE_RATE;
	config_parse_seconds(AC_DEFAULT_RATE_BURST, &cfg->rate_burst);
	cfg->rate_limit_disconnect = AC_DEFAULT_RATE_LIMIT_DISCONNECT;
	cfg->worker_threads = AC_DEFAULT_WORKER_THREADS;
	cfg->worker_queue = AC_DEFAULT_WORKER_QUEUE;
	cfg->max_memory = AC_DEFAULT_MAX_MEMORY;
	cfg->log = ac_xstrdup("stderr");
	cfg->log_level = AC_LOG_INFO;
	cfg->plugin_dir = ac_xstrdup(AC_PLUGINDIR);

	memset(&cp, 0, sizeof cp);
	cp.cfg = cfg;
	cp.file = path;
	if ((cp.f = fopen(path, "re")) == NULL) {
		ac_xasprintf(cause, "%s: %s", path, strerror(errno));
		config_free(cfg);
		return (-1);
	}
	r = ini_parse_stream(config_reader, &cp, config_handler, &cp);
	if (ferror(cp.f))
		config_error(&cp, 0, NULL, NULL, "read error: %s",
		    strerror(errno));
	config_check_inline_key(&cp);
	fclose(cp.f);
	free(cp.buf);
	if (r > 0)
		config_error(&cp, r, NULL, NULL, "syntax error (expected "
		    "[section] or key = value)");
	else if (r < 0)
		config_error(&cp, 0, NULL, NULL, "cannot be parsed (%d)", r);

	config_finish(&cp, cp.key_file);
	if (cp.hmac_key != NULL) {
		explicit_bzero(cp.hmac_key, strlen(cp.hmac_key));
		free(cp.hmac_key);
	}
	free(cp.key_file);
	for (i = 0; i < 3; i++)
		free(cp.tls_file[i]);

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
	for (i = 0; i < cfg->nlisten; i++) {
		free(cfg->listen[i].url);
		free(cfg->listen[i].host);
		free(cfg->listen[i].port);
		free(cfg->listen[i].path);
	}
	free(cfg->listen);
	ac_key_free(cfg->key);
	tls_ctx_free(cfg->tls_ctx);
	free(cfg->log);
	free(cfg->plugin_dir);
	free(cfg->pid_file);
	free(cfg->metrics_listen);
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
