/*
 * ratelimit.c - a session's token buckets: max_message_rate frames and
 * max_byte_rate content bytes per second, each holding at most rate_burst
 * seconds' worth of tokens.
 *
 * The buckets live inside struct ac_session, so checking a frame allocates
 * nothing, and time is the event loop's cached time, so it costs no system
 * call. Tokens are kept in millionths so that a refill of a few
 * microseconds is not lost to rounding: a bucket gains `rate` millionths
 * per microsecond and a frame costs a million per frame (or per byte).
 *
 * A frame costing more than a whole burst (a big frame under a low byte
 * rate) could never pass, so a full bucket lets any frame through and goes
 * into debt: the average stays at the rate.
 *
 * Over the rate, a frame is dropped. The peer hears about it at most once
 * per RATELIMIT_REPLY_USEC, so a flood cannot make the server flood back;
 * and after rate_limit_disconnect drops with no second free of drops
 * between them, the session is abusing and is closed.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "server.h"

#define RATELIMIT_UNIT		1000000ll	/* millionths per token */
#define RATELIMIT_REPLY_USEC	1000000ll	/* one error a second */
#define RATELIMIT_CALM_USEC	1000000ll	/* a compliant second */
#define RATELIMIT_MAX_ELAPSED	3600000000ll	/* an hour: no overflow */
#define RATELIMIT_OFF		INT64_MAX	/* a bucket not in use */

/* Microseconds from a to b (negative if the clock went back). */
static int64_t
ratelimit_usec(const struct timeval *a, const struct timeval *b)
{
	return ((int64_t)(b->tv_sec - a->tv_sec) * 1000000 +
	    (b->tv_usec - a->tv_usec));
}

/* A bucket's capacity: rate tokens a second for burst_usec. */
static int64_t
ratelimit_cap(uint64_t rate, int64_t burst_usec)
{
	return ((int64_t)rate * burst_usec);
}

/* Refill a bucket for elapsed microseconds; a rate of 0 turns it off. */
static void
ratelimit_refill(int64_t *tokens, uint64_t rate, int64_t burst_usec,
    int64_t elapsed)
{
	int64_t	cap;

	if (rate == 0) {
		*tokens = RATELIMIT_OFF;
		return;
	}
	cap = ratelimit_cap(rate, burst_usec);
	if (*tokens >= cap) {
		*tokens = cap;	/* full, just turned on or burst lowered */
		return;
	}
	*tokens += (int64_t)rate * elapsed;
	if (*tokens > cap)
		*tokens = cap;
}

/* Non-zero if a bucket can pay cost now (a full one pays anything). */
static int
ratelimit_affords(int64_t tokens, uint64_t rate, int64_t burst_usec,
    int64_t cost)
{
	int64_t	cap;

	if (rate == 0)
		return (1);
	cap = ratelimit_cap(rate, burst_usec);
	return (tokens >= (cost < cap ? cost : cap));
}

/* Start a session's buckets full at time now. */
void
ratelimit_init(struct ratelimit *rl, const struct timeval *now)
{
	memset(rl, 0, sizeof *rl);
	rl->msg_tokens = RATELIMIT_OFF;		/* clamped to full at first use */
	rl->byte_tokens = RATELIMIT_OFF;
	rl->last = *now;
}

/*
 * Charge a frame with bytes of content to a session's buckets at time now
 * (the limits are read from cfg every time, so a SIGHUP applies at once).
 * On a drop, *which names the limit that was exceeded.
 */
enum ratelimit_verdict
ratelimit_frame(struct ratelimit *rl, const struct ac_config *cfg,
    const struct timeval *now, size_t bytes, const char **which)
{
	int64_t	burst, elapsed, cost_bytes;

	*which = NULL;
	burst = (int64_t)cfg->rate_burst.tv_sec * 1000000 +
	    cfg->rate_burst.tv_usec;
	elapsed = ratelimit_usec(&rl->last, now);
	if (elapsed < 0)
		elapsed = 0;	/* the clock went back: no refill */
	if (elapsed > RATELIMIT_MAX_ELAPSED)
		elapsed = RATELIMIT_MAX_ELAPSED;
	rl->last = *now;
	ratelimit_refill(&rl->msg_tokens, cfg->max_message_rate, burst,
	    elapsed);
	ratelimit_refill(&rl->byte_tokens, cfg->max_byte_rate, burst,
	    elapsed);

	cost_bytes = (int64_t)bytes * RATELIMIT_UNIT;
	if (!ratelimit_affords(rl->msg_tokens, cfg->max_message_rate, burst,
	    RATELIMIT_UNIT))
		*which = "max_message_rate";
	else if (!ratelimit_affords(rl->byte_tokens, cfg->max_byte_rate,
	    burst, cost_bytes))
		*which = "max_byte_rate";
	if (*which == NULL) {
		if (cfg->max_message_rate != 0)
			rl->msg_tokens -= RATELIMIT_UNIT;
		if (cfg->max_byte_rate != 0)
			rl->byte_tokens -= cost_bytes;
		return (RATELIMIT_PASS);
	}

	/* Dropped. A second without drops since the last one forgives. */
	rl->dropped++;
	if (rl->drops != 0 &&
	    ratelimit_usec(&rl->last_drop, now) >= RATELIMIT_CALM_USEC)
		rl->drops = 0;
	rl->drops++;
	rl->last_drop = *now;
	if (cfg->rate_limit_disconnect != 0 &&
	    rl->drops >= cfg->rate_limit_disconnect)
		return (RATELIMIT_ABUSE);
	if (rl->replied &&
	    ratelimit_usec(&rl->last_reply, now) < RATELIMIT_REPLY_USEC &&
	    ratelimit_usec(&rl->last_reply, now) >= 0)
		return (RATELIMIT_DROP);
	rl->replied = 1;
	rl->last_reply = *now;
	return (RATELIMIT_DROP_REPLY);
}
