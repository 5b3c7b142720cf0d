/*
 * stats.c - counters for sessions, frames, bytes, errors and disconnect
 * reasons, kept in struct ac_stats for a later metrics endpoint.
 */
#include "config.h"

#include <stdio.h>

#include "log.h"
#include "server.h"

static const char *stats_reasons[AC_CLOSE_COUNT] = {
	"client-disconnect",
	"handshake-timeout",
	"heartbeat-timeout",
	"protocol-error",
	"too-many-errors",
	"slow-consumer",
	"server-full",
	"eof",
	"io-error",
	"server-shutdown",
	"plugin",
};

static const char *stats_errors[AC_SERR_COUNT] = {
	"session_mismatch",
	"not_acknowledged",
	"server_full",
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
