/*
 * config_key.c - the keys of [server], as a table (in the manner of tmux's
 * options-table.c), and how each form of value is parsed and kept.
 *
 * Every key is one row of config_keys[]: its name, the form of its value
 * (enum config_type) and its bounds, its default written as it would be
 * in the file, the member of struct ac_config that keeps it, whether a
 * reload may change it, and one line saying what a value looks like. The
 * parser (config.c), `asyncchatd -t` (which is the parser), the defaults
 * and the test that every key is documented (tests/unit/test_names.c)
 * all read this table: adding a key is one row here plus its use.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncchat/option.h>

#include "hostport.h"
#include "xmalloc.h"
#include "server.h"

#define CONFIG_STR(x)		CONFIG_STR1(x)
#define CONFIG_STR1(x)		#x

/* Where a member is and how big it is, for a row. */
#define CONFIG_AT(member)						\
	offsetof(struct ac_config, member),				\
	sizeof(((struct ac_config *)0)->member)

static int	config_key_log_target(const char *);

static const char *const config_log_levels[] = {
	/* In the order of enum ac_log_level. */
	"error", "warning", "info", "debug", NULL
};

const struct config_key config_keys[] = {
	{ "listen", CONFIG_LISTEN, CONFIG_MULTI, 0, 0,
	  "tcp://127.0.0.1:9999", CONFIG_AT(listen), NULL, NULL,
	  "tcp://HOST:PORT, tls://HOST:PORT, ws://HOST:PORT, "
	  "wss://HOST:PORT or unix:///PATH" },
	{ "backlog", CONFIG_COUNT, 0, 1, 65535,
	  CONFIG_STR(SOMAXCONN), CONFIG_AT(backlog), NULL, NULL,
	  "1 to 65535" },
	{ "unix_mode", CONFIG_MODE, 0, 0, 0777,
	  "0660", CONFIG_AT(unix_mode), NULL, NULL,
	  "an octal mode such as 0660" },
	{ "hmac_key", CONFIG_STRING, CONFIG_SECRET, 0, 0,
	  AC_DEFAULT_KEY, CONFIG_AT(hmac_key), NULL, NULL,
	  "the key itself (not empty)" },
	{ "hmac_key_file", CONFIG_STRING, 0, 0, 0,
	  NULL, CONFIG_AT(hmac_key_file), NULL, NULL,
	  "the path of the file that holds the key" },
	{ "tls_cert", CONFIG_STRING, 0, 0, 0,
	  NULL, CONFIG_AT(tls_cert), NULL, NULL,
	  "the path of a PEM file" },
	{ "tls_key", CONFIG_STRING, 0, 0, 0,
	  NULL, CONFIG_AT(tls_key), NULL, NULL,
	  "the path of a PEM file" },
	{ "tls_client_ca", CONFIG_STRING, 0, 0, 0,
	  NULL, CONFIG_AT(tls_client_ca), NULL, NULL,
	  "the path of a PEM file" },
	{ "handshake_timeout", CONFIG_SECONDS, 0, 1000, 86400000000ull,
	  "10", CONFIG_AT(handshake_timeout), NULL, NULL,
	  "seconds between 0.001 and 86400 (such as 10 or 0.5)" },
	{ "heartbeat_timeout", CONFIG_SECONDS, 0, 1000, 86400000000ull,
	  "30", CONFIG_AT(heartbeat_timeout), NULL, NULL,
	  "seconds between 0.001 and 86400 (such as 10 or 0.5)" },
	{ "max_clients", CONFIG_COUNT, 0, 1, 1000000,
	  "10000", CONFIG_AT(max_clients), NULL, NULL,
	  "1 to 1000000" },
	{ "max_header_size", CONFIG_SIZE, 0, 1, AC_DEFAULT_MAX_HEADER,
	  "65536", CONFIG_AT(max_header_size), NULL, NULL,
	  "1 to 65536 bytes (K suffix allowed)" },
	{ "max_content_size", CONFIG_SIZE, 0, 1, AC_DEFAULT_MAX_CONTENT,
	  "10M", CONFIG_AT(max_content_size), NULL, NULL,
	  "1 to 10485760 bytes (K or M suffix allowed)" },
	{ "max_output_buffer", CONFIG_SIZE, 0, 0, UINT64_MAX,
	  "32M", CONFIG_AT(max_output_buffer), NULL, NULL,
	  "bytes, optionally with a K, M or G suffix" },
	{ "max_memory", CONFIG_SIZE, 0, 0, UINT64_MAX,
	  "256M", CONFIG_AT(max_memory), NULL, NULL,
	  "bytes, optionally with a K, M or G suffix" },
	{ "max_errors", CONFIG_COUNT, 0, 1, 1000000,
	  "10", CONFIG_AT(max_errors), NULL, NULL,
	  "1 to 1000000" },
	{ "max_clients_per_ip", CONFIG_COUNT, 0, 0, 1000000,
	  "1000", CONFIG_AT(max_clients_per_ip), NULL, NULL,
	  "0 (no limit) to 1000000" },
	{ "max_message_rate", CONFIG_COUNT, 0, 0, 1000000,
	  "10000", CONFIG_AT(max_message_rate), NULL, NULL,
	  "frames per second, 0 (off) to 1000000" },
	{ "max_byte_rate", CONFIG_SIZE, 0, 0, 1024ull * 1024 * 1024,
	  "10M", CONFIG_AT(max_byte_rate), NULL, NULL,
	  "bytes per second, 0 (off) to 1G (K, M or G suffix allowed)" },
	{ "rate_burst", CONFIG_SECONDS, 0, 1000, 60000000,
	  "2", CONFIG_AT(rate_burst), NULL, NULL,
	  "seconds between 0.001 and 60 (such as 2 or 0.5)" },
	{ "rate_limit_disconnect", CONFIG_COUNT, 0, 0, 1000000,
	  "50", CONFIG_AT(rate_limit_disconnect), NULL, NULL,
	  "0 (never) to 1000000" },
	{ "worker_threads", CONFIG_COUNT, 0, 1, 256,
	  "4", CONFIG_AT(worker_threads), NULL, NULL,
	  "1 to 256 threads" },
	{ "worker_queue", CONFIG_COUNT, 0, 1, 1000000,
	  "1024", CONFIG_AT(worker_queue), NULL, NULL,
	  "1 to 1000000 jobs" },
	{ "log", CONFIG_STRING, 0, 0, 0,
	  "stderr", CONFIG_AT(log), NULL, config_key_log_target,
	  "stderr, syslog or an absolute file path" },
	{ "log_level", CONFIG_CHOICE, 0, 0, 0,
	  "info", CONFIG_AT(log_level), config_log_levels, NULL,
	  "error, warning, info or debug" },
	{ "plugin_dir", CONFIG_STRING, 0, 0, 0,
	  AC_PLUGINDIR, CONFIG_AT(plugin_dir), NULL, NULL,
	  "a directory" },
	{ "pid_file", CONFIG_STRING, CONFIG_START|CONFIG_NONE, 0, 0,
	  "none", CONFIG_AT(pid_file), NULL, NULL,
	  "a path, or none" },
	{ "metrics_listen", CONFIG_ADDRESS, CONFIG_NONE, 0, 0,
	  "none", CONFIG_AT(metrics_listen), NULL, NULL,
	  "none or ADDRESS:PORT with a numeric address, such as "
	  "127.0.0.1:9100 or [::1]:9100" },
	{ "web_root", CONFIG_STRING, CONFIG_NONE, 0, 0,
	  AC_WEBROOT, CONFIG_AT(web_root), NULL, NULL,
	  "a directory, or none" },
	{ "web_origins", CONFIG_STRING, 0, 0, 0,
	  NULL, CONFIG_AT(web_origins), NULL, origin_list_check,
	  "origins such as https://chat.example.org or "
	  "http://127.0.0.1:8080, separated by commas or spaces, or *" },
};
const size_t config_nkeys = sizeof config_keys / sizeof config_keys[0];

/* The row of the [server] key called name, or NULL. */
const struct config_key *
config_key_find(const char *name)
{
	size_t	i;

	for (i = 0; i < config_nkeys; i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return (&config_keys[i]);
	}
	return (NULL);
}

/* Non-zero if a log value is stderr, syslog or an absolute path. */
static int
config_key_log_target(const char *value)
{
	return (strcmp(value, "stderr") == 0 || strcmp(value, "syslog") == 0 ||
	    *value == '/');
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
static int
config_parse_listen(const char *url, struct ac_listen_conf *lc,
    const char **why)
{
	struct sockaddr_un	 sun;
	const char		*rest;

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
	if (strncmp(url, "tcp://", 6) == 0) {
		lc->type = AC_LISTEN_TCP;
		rest = url + 6;
	} else if (strncmp(url, "tls://", 6) == 0) {
		lc->type = AC_LISTEN_TLS;
		rest = url + 6;
	} else if (strncmp(url, "ws://", 5) == 0) {
		lc->type = AC_LISTEN_WS;
		rest = url + 5;
	} else if (strncmp(url, "wss://", 6) == 0) {
		lc->type = AC_LISTEN_WSS;
		rest = url + 6;
	} else {
		*why = "expected tcp://HOST:PORT, tls://HOST:PORT, "
		    "ws://HOST:PORT, wss://HOST:PORT or unix:///PATH";
		return (-1);
	}
	return (hostport_parse(rest, &lc->host, &lc->port, why));
}

/*
 * Parse a numeric "ADDRESS:PORT" or "[IPV6]:PORT" into addr. A name is
 * refused: resolving it could block, and an endpoint should not move
 * when DNS changes.
 */
static int
config_key_address(const char *value, struct config_addr *addr)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&addr->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&addr->ss;
	char			*host, *port;
	const char		*why;
	int			 ok;

	if (hostport_parse(value, &host, &port, &why) == -1)
		return (-1);
	memset(&addr->ss, 0, sizeof addr->ss);
	if (*value == '[') {
		ok = inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)atoi(port));
		addr->len = sizeof *sin6;
	} else {
		ok = inet_pton(AF_INET, host, &sin->sin_addr) == 1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)atoi(port));
		addr->len = sizeof *sin;
	}
	free(host);
	free(port);
	if (!ok)
		return (-1);
	free(addr->text);
	addr->text = ac_xstrdup(value);
	return (0);
}

/* Add one listen URL to cfg->listen; -1 with the reason in why. */
static int
config_key_listen(struct ac_config *cfg, const char *value, int line,
    char *why, size_t whylen)
{
	struct ac_listen_conf	 lc, *l;
	const char		*reason;
	size_t			 i;

	if (config_parse_listen(value, &lc, &reason) == -1) {
		snprintf(why, whylen, "%s: %s", value, reason);
		return (-1);
	}
	for (i = 0; i < cfg->nlisten; i++) {
		if (strcmp(cfg->listen[i].url, value) == 0)
			break;
	}
	if (i != cfg->nlisten) {
		snprintf(why, whylen, "%s is already listed on line %d",
		    value, cfg->listen[i].line);
		free(lc.host);
		free(lc.port);
		free(lc.path);
		return (-1);
	}
	cfg->listen = ac_xreallocarray(cfg->listen, cfg->nlisten + 1,
	    sizeof *cfg->listen);
	l = &cfg->listen[cfg->nlisten++];
	*l = lc;
	l->url = ac_xstrdup(value);
	l->line = line;
	return (0);
}

/* Store v in a member of 4 or 8 bytes (bounded to fit by its row). */
static void
config_key_store(void *dst, size_t size, uint64_t v)
{
	uint32_t	v32 = (uint32_t)v;

	if (size == sizeof v32)
		memcpy(dst, &v32, sizeof v32);
	else
		memcpy(dst, &v, sizeof v);
}

/* Free a string member, wiping it first if it is a secret. */
static void
config_key_clear(const struct config_key *k, char **sp)
{
	if (*sp != NULL && (k->flags & CONFIG_SECRET))
		explicit_bzero(*sp, strlen(*sp));
	free(*sp);
	*sp = NULL;
}

/*
 * Parse value for key k into cfg. Returns 0, or -1 with what is wrong in
 * why, in the words of "FILE:LINE: [server] key: WHY" (a secret is never
 * quoted).
 */
int
config_key_set(struct ac_config *cfg, const struct config_key *k,
    const char *value, int line, char *why, size_t whylen)
{
	void			*dst = (char *)cfg + k->offset;
	struct timeval		 tv;
	unsigned long long	 u;
	unsigned long		 mode;
	uint64_t		 v;
	char			*end;
	int			 i;

	if ((k->flags & CONFIG_NONE) && strcmp(value, "none") == 0) {
		if (k->type == CONFIG_ADDRESS)
			config_key_clear(k, &((struct config_addr *)dst)->text);
		else
			config_key_clear(k, dst);
		return (0);
	}
	switch (k->type) {
	case CONFIG_COUNT:
		if (ac_option_uint(value, k->min, k->max, &u) == -1)
			goto bad;
		config_key_store(dst, k->size, u);
		return (0);
	case CONFIG_SIZE:
		if (config_parse_size(value, &v) == -1 || v < k->min ||
		    v > k->max)
			goto bad;
		config_key_store(dst, k->size, v);
		return (0);
	case CONFIG_SECONDS:
		if (config_parse_seconds(value, &tv) == -1)
			goto bad;
		v = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
		if (v < k->min || v > k->max)
			goto bad;
		memcpy(dst, &tv, sizeof tv);
		return (0);
	case CONFIG_MODE:
		errno = 0;
		mode = strtoul(value, &end, 8);
		if (!isdigit((unsigned char)*value) || *end != '\0' ||
		    errno != 0 || mode > k->max)
			goto bad;
		config_key_store(dst, k->size, mode);
		return (0);
	case CONFIG_CHOICE:
		for (i = 0; k->choices[i] != NULL; i++) {
			if (strcmp(value, k->choices[i]) == 0) {
				config_key_store(dst, k->size, i);
				return (0);
			}
		}
		goto bad;
	case CONFIG_STRING:
		if (*value == '\0' || (k->check != NULL && !k->check(value)))
			goto bad;
		config_key_clear(k, dst);
		*(char **)dst = ac_xstrdup(value);
		return (0);
	case CONFIG_ADDRESS:
		if (config_key_address(value, dst) == -1)
			goto bad;
		return (0);
	case CONFIG_LISTEN:
		return (config_key_listen(cfg, value, line, why, whylen));
	}
bad:
	if (k->flags & CONFIG_SECRET)
		snprintf(why, whylen, "expected %s", k->help);
	else
		snprintf(why, whylen, "%s: expected %s", value, k->help);
	return (-1);
}

/* Give every key that is not repeated its default. */
void
config_key_defaults(struct ac_config *cfg)
{
	const struct config_key	*k;
	char			 why[256];

	for (k = config_keys; k < config_keys + config_nkeys; k++) {
		if (k->def == NULL || (k->flags & CONFIG_MULTI))
			continue;
		if (config_key_set(cfg, k, k->def, 0, why, sizeof why) == -1)
			abort();	/* a bad row */
	}
}

/*
 * A reload read cfg while running runs: keys read at start only keep
 * their running value, with a warning if the file now says otherwise.
 */
void
config_key_keep_start(struct ac_config *cfg, const struct ac_config *running)
{
	const struct config_key	*k;
	char			**now, *was;

	for (k = config_keys; k < config_keys + config_nkeys; k++) {
		if (!(k->flags & CONFIG_START) || k->type != CONFIG_STRING)
			continue;
		now = (char **)((char *)cfg + k->offset);
		was = *(char **)((char *)running + k->offset);
		if (*now == NULL ? was == NULL :
		    was != NULL && strcmp(*now, was) == 0)
			continue;
		config_warn(cfg, "%s changes at the next start (now %s)",
		    k->name, was != NULL ? was : "none");
		config_key_clear(k, now);
		if (was != NULL)
			*now = ac_xstrdup(was);
	}
}

/* Free what the keys of cfg hold. */
void
config_key_free(struct ac_config *cfg)
{
	const struct config_key	*k;
	void			*dst;
	size_t			 i;

	for (k = config_keys; k < config_keys + config_nkeys; k++) {
		dst = (char *)cfg + k->offset;
		switch (k->type) {
		case CONFIG_STRING:
			config_key_clear(k, dst);
			break;
		case CONFIG_ADDRESS:
			config_key_clear(k, &((struct config_addr *)dst)->text);
			break;
		case CONFIG_LISTEN:
			for (i = 0; i < cfg->nlisten; i++) {
				free(cfg->listen[i].url);
				free(cfg->listen[i].host);
				free(cfg->listen[i].port);
				free(cfg->listen[i].path);
			}
			free(cfg->listen);
			cfg->listen = NULL;
			cfg->nlisten = 0;
			break;
		default:
			break;
		}
	}
}
