/*
 * echo.c - send every message back to the session that sent it, as the
 * original Python server does.
 *
 * The received frame is relayed byte for byte (it keeps the sender's
 * session_id, PROTOCOL.md "Session life" 7), so nothing is re-encoded. The
 * plugin returns AC_PLUGIN_CONTINUE so that later plugins in the chain, such
 * as logger, still see the message.
 */
#include "config.h"

#include <stdlib.h>

#include <asyncchat/plugin.h>

/* What the callbacks need: the host table and our handle on it. */
struct echo_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
};

static int	echo_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	echo_fini(void *);
static int	echo_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "echo",
	.version = PACKAGE_VERSION,
	.description = "sends every message back to its sender",
	.init = echo_init,
	.fini = echo_fini,
	.process_message = echo_process_message,
};

/* Start the plugin; it has no options, so any option is an error. */
static int
echo_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct echo_state	*es;

	if (nopts > 0) {
		host->log(p, AC_LOG_ERROR, "line %d: unknown option '%s' "
		    "(echo takes no options)", opts[0].line, opts[0].key);
		return -1;
	}
	if ((es = calloc(1, sizeof *es)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		return -1;
	}
	es->p = p;
	es->host = host;
	*state = es;
	return 0;
}

/* Free the plugin's state. */
static void
echo_fini(void *state)
{
	free(state);
}

/* Relay the received frame to its own sender and let the chain go on. */
static int
echo_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct echo_state	*es = state;

	/*
	 * A failed relay means the sender is closing or has just been
	 * disconnected for being too slow; the host has said so already.
	 */
	es->host->relay(es->p, frame, from);
	return AC_PLUGIN_CONTINUE;
}
