/*
 * small_desc.c - a loader test module whose descriptor claims fewer bytes
 * than the first API's: not made with AC_PLUGIN_HEADER. The server must
 * refuse it without calling anything in it.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>

#include <asyncchat/plugin.h>

static int	small_desc_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);

AC_PLUGIN_DESCRIPTOR = {
	.abi_version = AC_PLUGIN_ABI_VERSION,
	.struct_size = offsetof(struct ac_plugin_descriptor, init),
	.api_version = 1,
	.name = "small_desc",
	.version = "0",
	.description = "loader test: descriptor too small",
	.init = small_desc_init,
};

/* Must never run. */
static int
small_desc_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	abort();
}
