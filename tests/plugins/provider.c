/*
 * provider.c - a test module that publishes the interface "test.counter"
 * (struct test_counter below) for consumer.c.
 *
 * Options: version = N (default 2), the version it publishes under.
 * Each instance has its own serial number, so a consumer can tell
 * instances apart across reloads; fini logs "provider fini SERIAL".
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <asyncchat/plugin.h>

#include "counter_iface.h"

/* One instance. */
struct provider_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	struct test_counter		 iface;
	unsigned int			 serial;
	unsigned int			 next;
	int				 finished;
};

/* Instances made in this process, to number them. */
static unsigned int	provider_instances;

static int	provider_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	provider_fini(void *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "provider",
	.version = "0",
	.description = "test: publishes test.counter",
	.init = provider_init,
	.fini = provider_fini,
};

/* The next number of this instance; aborts if called after fini. */
static unsigned int
provider_next(void *ctx)
{
	struct provider_state	*ps = ctx;

	if (ps->finished)
		abort();
	return ++ps->next;
}

/* This instance's serial number. */
static unsigned int
provider_serial(void *ctx)
{
	struct provider_state	*ps = ctx;

	return ps->serial;
}

/* Publish the interface. */
static int
provider_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct provider_state	*ps;
	unsigned long long	 v = 2;
	size_t			 i;

	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "version") != 0 ||
		    ac_option_uint(opts[i].value, 1, 100, &v) != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: bad option '%s'",
			    opts[i].line, opts[i].key);
			return -1;
		}
	}
	if ((ps = calloc(1, sizeof *ps)) == NULL)
		return -1;
	ps->p = p;
	ps->host = host;
	ps->serial = ++provider_instances;
	ps->iface.size = sizeof ps->iface;
	ps->iface.ctx = ps;
	ps->iface.next = provider_next;
	ps->iface.serial = provider_serial;
	if (host->interface_publish(p, TEST_COUNTER_NAME, (unsigned int)v,
	    &ps->iface) != 0 ||
	    host->interface_publish(p, TEST_COUNTER_NAME, (unsigned int)v,
	    &ps->iface) == 0) {
		host->log(p, AC_LOG_ERROR, "publish did not do as documented");
		free(ps);
		return -1;
	}
	*state = ps;
	return 0;
}

/* Log the end of this instance. */
static void
provider_fini(void *state)
{
	struct provider_state	*ps = state;

	ps->finished = 1;
	ps->host->log(ps->p, AC_LOG_INFO, "provider fini %u", ps->serial);
	free(ps);
}
