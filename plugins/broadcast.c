/*
 * broadcast.c - send every message to every other handshaken session, and to
 * the sender as well when `include_sender = yes`.
 *
 * The host queues one shared buffer to all recipients (relay_all), so a
 * message to N sessions is neither re-encoded nor copied N times. The plugin
 * returns AC_PLUGIN_CONTINUE so that later plugins still see the message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <asyncchat/plugin.h>

/* The parsed [plugin.broadcast] section and the host table. */
struct broadcast_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	int				 include_sender;
};

static int	broadcast_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	broadcast_fini(void *);
static int	broadcast_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "broadcast",
	.version = PACKAGE_VERSION,
	.description = "sends every message to every other session "
	    "(include_sender = yes: to the sender too)",
	.init = broadcast_init,
	.fini = broadcast_fini,
	.process_message = broadcast_process_message,
};


/* Read the options (only include_sender) and set up the state. */
static int
broadcast_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct broadcast_state	*bs;
	int			 include_sender = 0;
	size_t			 i;

	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "include_sender") != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: include_sender)", opts[i].line,
			    opts[i].key);
			return -1;
		}
		if (ac_option_bool(opts[i].value, &include_sender) != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: include_sender: "
			    "bad value '%s' (expected yes or no)", opts[i].line,
			    opts[i].value);
			return -1;
		}
	}

	if ((bs = calloc(1, sizeof *bs)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		return -1;
	}
	bs->p = p;
	bs->host = host;
	bs->include_sender = include_sender;
	*state = bs;
	return 0;
}

/* Free the plugin's state. */
static void
broadcast_fini(void *state)
{
	free(state);
}

/* Relay the received frame to everyone (but the sender unless configured). */
static int
broadcast_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct broadcast_state	*bs = state;

	bs->host->relay_all(bs->p, frame, bs->include_sender ? NULL : from);
	return AC_PLUGIN_CONTINUE;
}
