/*
 * future_api.c - a loader test module that needs a plugin API one newer
 * than the server's. The server must refuse it, saying to upgrade, without
 * calling anything in it.
 */
#include "config.h"

#include <stdlib.h>

#include <asyncchat/plugin.h>

static int	future_api_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);

AC_PLUGIN_DESCRIPTOR = {
	.abi_version = AC_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ac_plugin_descriptor),
	.api_version = AC_PLUGIN_API_VERSION + 1,
	.name = "future_api",
	.version = "0",
	.description = "loader test: needs a newer server",
	.init = future_api_init,
};

/* Must never run: a host that calls it has touched a refused plugin. */
static int
future_api_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	abort();
}
