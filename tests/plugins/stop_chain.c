/*
 * stop_chain.c - a loader test module that ends the plugin chain for every
 * message and sends nothing, so plugins after it must never see one.
 */
#include "config.h"

#include <asyncchat/plugin.h>

static int	stop_chain_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static int	stop_chain_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "stop_chain",
	.version = "0",
	.description = "loader test: swallows every message",
	.init = stop_chain_init,
	.process_message = stop_chain_process_message,
};

/* Start with no state; options are refused like any plugin's. */
static int
stop_chain_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	if (nopts > 0) {
		host->log(p, AC_LOG_ERROR, "line %d: unknown option '%s'",
		    opts[0].line, opts[0].key);
		return -1;
	}
	*state = NULL;
	return 0;
}

/* End the chain without delivering anything. */
static int
stop_chain_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	return AC_PLUGIN_STOP;
}
