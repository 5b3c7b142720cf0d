/*
 * old_api.c - a test module built against the plugin API 1 header kept in
 * tests/plugins/v1 (include/asyncchat/plugin.h of commit a77ca23), the way
 * a plugin built before API 2 and never rebuilt meets a newer server.
 *
 * It answers every message with a new message to its sender,
 * "old:N:CONTENT", N counting that session's messages in its data slot,
 * and logs each session's count when it closes, using only API 1.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncchat/plugin.h>

#if AC_PLUGIN_API_VERSION != 1
#error "old_api.c must be built against tests/plugins/v1/asyncchat/plugin.h"
#endif

/* The host table and our handle. */
struct old_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
};

/* One session's message count, in its data slot. */
struct old_count {
	unsigned long	n;
};

static int	old_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	old_fini(void *);
static void	old_session_close(void *, struct ac_session *, const char *);
static int	old_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "old_api",
	.version = "1",
	.description = "test: built against the API 1 header",
	.init = old_init,
	.fini = old_fini,
	.session_close = old_session_close,
	.process_message = old_process_message,
};

/* Start; no options. */
static int
old_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct old_state	*os;

	if (nopts > 0) {
		host->log(p, AC_LOG_ERROR, "line %d: unknown option '%s'",
		    opts[0].line, opts[0].key);
		return -1;
	}
	if ((os = calloc(1, sizeof *os)) == NULL)
		return -1;
	os->p = p;
	os->host = host;
	host->log(p, AC_LOG_INFO, "old_api started: descriptor %zu bytes, "
	    "host table %zu bytes", sizeof(struct ac_plugin_descriptor),
	    host->size);
	*state = os;
	return 0;
}

/* Free the state. */
static void
old_fini(void *state)
{
	free(state);
}

/* Log how many messages a closing session sent. */
static void
old_session_close(void *state, struct ac_session *s, const char *reason)
{
	struct old_state	*os = state;
	struct old_count	*c = os->host->session_get_data(os->p, s);

	os->host->log(os->p, AC_LOG_INFO, "session %s closed (%s) after %lu "
	    "messages", os->host->session_id(s), reason, c != NULL ? c->n : 0);
}

/* Count the message and answer "old:N:CONTENT". */
static int
old_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct old_state	*os = state;
	struct old_count	*c;
	char			*buf;
	int			 n;

	if ((c = os->host->session_get_data(os->p, from)) == NULL) {
		if ((c = calloc(1, sizeof *c)) == NULL)
			return -1;
		os->host->session_set_data(os->p, from, c, free);
	}
	c->n++;
	n = snprintf(NULL, 0, "old:%lu:", c->n);
	if ((buf = malloc((size_t)n + 1 + msg->content_len)) == NULL)
		return -1;
	snprintf(buf, (size_t)n + 1, "old:%lu:", c->n);
	memcpy(buf + n, msg->content, msg->content_len);
	os->host->send(os->p, from, AC_MSG_MESSAGE, msg->content_type, NULL,
	    buf, (size_t)n + msg->content_len);
	free(buf);
	return AC_PLUGIN_CONTINUE;
}
