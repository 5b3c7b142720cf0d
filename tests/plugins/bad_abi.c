/*
 * bad_abi.c - a loader test module built for an ABI that does not exist
 * (999). The server must refuse it after reading abi_version and
 * struct_size, without calling anything in it.
 */
#include "config.h"

#include <stdlib.h>

#include <asyncchat/plugin.h>

static int	bad_abi_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);

AC_PLUGIN_DESCRIPTOR = {
	.abi_version = 999,
	.struct_size = sizeof(struct ac_plugin_descriptor),
	.api_version = AC_PLUGIN_API_VERSION,
	.name = "bad_abi",
	.version = "0",
	.description = "loader test: wrong ABI version",
	.init = bad_abi_init,
};

/* Must never run: a host that calls it has touched a refused plugin. */
static int
bad_abi_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	abort();
}
