/*
 * meter.c - a test module for plugin metrics. It registers
 *
 *	meter_messages_total	counter: messages seen
 *	meter_last_size		gauge: the last message's size
 *	meter_size		histogram of message sizes, bounds 10, 100, 1000
 *	meter_collects		gauge: how many times collect ran
 *
 * and, to check that the host refuses them (each refusal is logged), one
 * name in the server's own namespace, a counter not named *_total and a
 * histogram with bounds out of order; none of them may show.
 */
#include "config.h"

#include <stdlib.h>

#include <asyncchat/plugin.h>

/* The plugin's metrics. */
struct meter_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	struct ac_metric		*messages;
	struct ac_metric		*last_size;
	struct ac_metric		*size;
	struct ac_metric		*collects;
	unsigned long			 ncollects;
};

static int	meter_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	meter_fini(void *);
static void	meter_collect(void *);
static int	meter_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "meter",
	.version = "0",
	.description = "test: plugin metrics",
	.init = meter_init,
	.fini = meter_fini,
	.collect = meter_collect,
	.process_message = meter_process_message,
};

/* Register the metrics (and try the ones that must be refused). */
static int
meter_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	static const double	 bounds[] = { 10, 100, 1000 };
	static const double	 unordered[] = { 5, 1 };
	struct meter_state	*ms;

	if ((ms = calloc(1, sizeof *ms)) == NULL)
		return -1;
	ms->p = p;
	ms->host = host;
	ms->messages = host->metric_new(p, AC_METRIC_COUNTER,
	    "meter_messages_total", "Messages the meter plugin saw.", NULL, 0);
	ms->last_size = host->metric_new(p, AC_METRIC_GAUGE,
	    "meter_last_size", "Size of the last message, in bytes.", NULL, 0);
	ms->size = host->metric_new(p, AC_METRIC_HISTOGRAM, "meter_size",
	    "Message sizes, in bytes.", bounds, 3);
	ms->collects = host->metric_new(p, AC_METRIC_GAUGE, "meter_collects",
	    "Times collect ran.", NULL, 0);
	if (ms->messages == NULL || ms->last_size == NULL ||
	    ms->size == NULL || ms->collects == NULL) {
		free(ms);
		return -1;
	}
	if (host->metric_new(p, AC_METRIC_GAUGE, "asyncchat_meter_stolen",
	    "x", NULL, 0) != NULL ||
	    host->metric_new(p, AC_METRIC_COUNTER, "meter_no_suffix", "x",
	    NULL, 0) != NULL ||
	    host->metric_new(p, AC_METRIC_HISTOGRAM, "meter_unordered", "x",
	    unordered, 2) != NULL ||
	    host->metric_new(p, AC_METRIC_GAUGE, "meter_last_size", "x",
	    NULL, 0) != NULL) {
		host->log(p, AC_LOG_ERROR, "a bad metric was accepted");
		free(ms);
		return -1;
	}
	*state = ms;
	return 0;
}

/* Free the state (the host frees the metrics). */
static void
meter_fini(void *state)
{
	free(state);
}

/* Count the scrapes. */
static void
meter_collect(void *state)
{
	struct meter_state	*ms = state;

	ms->host->metric_set(ms->collects, (double)++ms->ncollects);
}

/* Count the message and its size. */
static int
meter_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct meter_state	*ms = state;

	ms->host->metric_add(ms->messages, 1);
	ms->host->metric_set(ms->last_size, (double)msg->content_len);
	ms->host->metric_observe(ms->size, (double)msg->content_len);
	return AC_PLUGIN_CONTINUE;
}
