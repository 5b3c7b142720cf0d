/*
 * init_fails.c - a loader test module whose init logs why and refuses to
 * load, so the server's startup and `-t` must fail with that reason.
 */
#include "config.h"

#include <asyncchat/plugin.h>

static int	init_fails_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "init_fails",
	.version = "0",
	.description = "loader test: init always fails",
	.init = init_fails_init,
};

/* Log a reason and refuse. */
static int
init_fails_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	host->log(p, AC_LOG_ERROR, "refusing to start "
	    "(this test module always does)");
	return -1;
}
