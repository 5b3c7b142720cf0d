/*
 * testserver.c - a struct server as main.c makes one, before its
 * listeners and plugins: the lists, the session registry, the event base
 * and the reap event, the limits and plain timeouts of its configuration.
 * For the programs that link the server's code without main.c
 * (tests/unit/test_conn.c, tests/fuzz/fuzz_session.c and fuzz_web.c),
 * which add what they need of their own (plugins, a listener); and the
 * configuration they start from, loaded from a temporary file.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <asyncchat/asyncchat.h>

#include "testserver.h"

/* Free the sessions whose last reference went (main.c's reap event). */
static void
testserver_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_reap(arg);
}

/*
 * Load the configuration fmt makes, through a temporary file; NULL (the
 * cause on stderr, after who) if it is not one.
 */
struct ac_config *
testserver_config(const char *who, const char *fmt, ...)
{
	struct ac_config	*cfg;
	char			 path[] = "/tmp/ac-testconf.XXXXXX", *cause;
	FILE			*f;
	int			 fd;
	va_list			 ap;

	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		perror(who);
		if (fd != -1) {
			close(fd);
			unlink(path);
		}
		return (NULL);
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	if (config_load(path, &cfg, &cause) == -1) {
		fprintf(stderr, "%s: %s\n", who, cause);
		free(cause);
		cfg = NULL;
	}
	unlink(path);
	return (cfg);
}

/*
 * Make srv a server on cfg, which it then owns; returns 0, or -1 when
 * there is no event base.
 */
int
testserver_init(struct server *srv, struct ac_config *cfg)
{
	memset(srv, 0, sizeof *srv);
	TAILQ_INIT(&srv->plugin_stats);
	TAILQ_INIT(&srv->listeners);
	TAILQ_INIT(&srv->lingering);
	TAILQ_INIT(&srv->dead);
	TAILQ_INIT(&srv->retired);
	TAILQ_INIT(&srv->plugin_metrics);
	registry_init(&srv->reg);
	srv->cfg = cfg;
	if ((srv->base = event_base_new()) == NULL)
		return (-1);
	srv->reap_ev = event_new(srv->base, -1, 0, testserver_reap_cb, srv);

	/* The timeouts as they are, not main.c's common ones. */
	srv->limits.max_header_len = cfg->max_header_size;
	srv->limits.max_content_len = cfg->max_content_size;
	srv->limits_preack.max_header_len = AC_PREACK_MAX_HEADER;
	srv->limits_preack.max_content_len = AC_PREACK_MAX_CONTENT;
	srv->handshake_plain = cfg->handshake_timeout;
	srv->heartbeat_plain = cfg->heartbeat_timeout;
	srv->linger_plain.tv_sec = 2;
	srv->handshake_tv = &srv->handshake_plain;
	srv->heartbeat_tv = &srv->heartbeat_plain;
	srv->linger_tv = &srv->linger_plain;
	return (0);
}
