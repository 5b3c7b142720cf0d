/*
 * stats.c - counters for sessions, frames, bytes, errors and disconnect
 * reasons, kept in struct ac_stats for the metrics endpoint (metrics.c),
 * and the latency histograms of the plugin chain.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

/* The tokens of enum ac_close_reason and enum ac_session_error, from the
 * lists in server.h that make the enums. */
#define STATS_TOKEN(name, token)	token,
static const char *const stats_reasons[AC_CLOSE_COUNT] = {
	AC_CLOSE_REASONS(STATS_TOKEN)
};
static const char *const stats_errors[AC_SERR_COUNT] = {
	AC_SESSION_ERRORS(STATS_TOKEN)
};
#undef STATS_TOKEN

/* Histogram bucket bounds: 1 microsecond to 100 milliseconds. */
static const uint64_t stats_bounds[AC_HIST_BUCKETS] = {
	1000, 5000, 10000, 50000, 100000, 500000,
	1000000, 5000000, 10000000, 50000000, 100000000,
};

/* The same bounds in seconds, spelled for an `le` label. */
static const char *stats_les[AC_HIST_BUCKETS] = {
	"1e-06", "5e-06", "1e-05", "5e-05", "0.0001", "0.0005",
	"0.001", "0.005", "0.01", "0.05", "0.1",
};

/* The short token logged for a close reason ("heartbeat-timeout"). */
const char *
stats_reason_name(enum ac_close_reason reason)
{
	if ((unsigned)reason >= AC_CLOSE_COUNT)
		return ("unknown");
	return (stats_reasons[reason]);
}

/* The token sent in an error frame for a session-level error. */
const char *
stats_error_name(enum ac_session_error error)
{
	if ((unsigned)error >= AC_SERR_COUNT)
		return ("unknown");
	return (stats_errors[error]);
}

/* Count a frame refused with a decoding status. */
void
stats_frame_error(struct ac_stats *st, enum ac_frame_status status)
{
	if ((unsigned)status < AC_FRAME_STATUS_COUNT)
		st->frame_errors[status]++;
}

/* Log the counters at debug level (on shutdown). */
void
stats_log(const struct ac_stats *st)
{
	unsigned int	i;

	log_debug("stats: sessions total=%llu current=%llu acked=%llu",
	    (unsigned long long)st->sessions_total,
	    (unsigned long long)st->sessions_current,
	    (unsigned long long)st->sessions_acked);
	log_debug("stats: bytes in=%llu out=%llu plugin_errors=%llu "
	    "reloads=%llu failed_reloads=%llu",
	    (unsigned long long)st->bytes_in,
	    (unsigned long long)st->bytes_out,
	    (unsigned long long)st->plugin_errors,
	    (unsigned long long)st->reloads,
	    (unsigned long long)st->reload_failures);
	for (i = 0; i < AC_MSG_TYPE_COUNT; i++) {
		if (st->frames_in[i] == 0 && st->frames_out[i] == 0)
			continue;
		log_debug("stats: frames %s in=%llu out=%llu",
		    ac_msg_type_name(i), (unsigned long long)st->frames_in[i],
		    (unsigned long long)st->frames_out[i]);
	}
	for (i = 0; i < AC_FRAME_STATUS_COUNT; i++) {
		if (st->frame_errors[i] != 0)
			log_debug("stats: errors %s=%llu",
			    ac_frame_status_name(i),
			    (unsigned long long)st->frame_errors[i]);
	}
	for (i = 0; i < AC_SERR_COUNT; i++) {
		if (st->session_errors[i] != 0)
			log_debug("stats: errors %s=%llu", stats_errors[i],
			    (unsigned long long)st->session_errors[i]);
	}
	for (i = 0; i < AC_CLOSE_COUNT; i++) {
		if (st->closes[i] != 0)
			log_debug("stats: closes %s=%llu", stats_reasons[i],
			    (unsigned long long)st->closes[i]);
	}
}

/* The `le` label of a histogram bucket ("0.001"). */
const char *
stats_hist_le(unsigned int bucket)
{
	return (stats_les[bucket]);
}

/* Count one observation of nsec nanoseconds. */
void
stats_observe(struct ac_histogram *h, uint64_t nsec)
{
	unsigned int	i;

	for (i = 0; i < AC_HIST_BUCKETS; i++) {
		if (nsec <= stats_bounds[i]) {
			h->buckets[i]++;
			break;
		}
	}
	h->count++;
	h->nsec += nsec;
}

/* Nanoseconds from one monotonic time to a later one (0 if earlier). */
uint64_t
stats_elapsed(const struct timespec *from, const struct timespec *to)
{
	int64_t	ns;

	ns = (int64_t)(to->tv_sec - from->tv_sec) * 1000000000 +
	    (to->tv_nsec - from->tv_nsec);
	return (ns < 0 ? 0 : (uint64_t)ns);
}

/*
 * The counters of the plugin called name, made on first use. They are
 * never freed before exit, so a plugin keeps its counts across reloads
 * and one that is dropped from the chain keeps its last values.
 */
struct ac_plugin_stats *
stats_plugin(struct ac_plugin_stats_list *list, const char *name)
{
	struct ac_plugin_stats	*ps;

	TAILQ_FOREACH(ps, list, entry) {
		if (strcmp(ps->name, name) == 0)
			return (ps);
	}
	ps = ac_xcalloc(1, sizeof *ps);
	ps->name = ac_xstrdup(name);
	TAILQ_INSERT_TAIL(list, ps, entry);
	return (ps);
}

/* Free every plugin's counters (the end of main). */
void
stats_plugins_free(struct ac_plugin_stats_list *list)
{
	struct ac_plugin_stats	*ps;

	while ((ps = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, ps, entry);
		free(ps->name);
		free(ps);
	}
}
