/*
 * weather.c - an example plugin: answers `/weather CITY` from a slow
 * lookup without ever making the server wait for it.
 *
 * A text message "/weather Paris" is a command: it is not relayed. The
 * plugin hands the lookup to the server's worker pool (host->job_submit).
 * The work function runs on a worker thread and pretends to ask a slow
 * weather service: it waits `delay` milliseconds, then makes a forecast
 * up from the city's name. The completion runs back on the loop thread
 * and answers the sender:
 *
 *	weather: Paris: 17 C, light rain
 *
 * Meanwhile the server goes on serving everyone, the sender included.
 * Every other message goes on down the chain untouched. Load it before
 * the plugins that deliver messages:
 *
 *	[server]
 *	worker_threads = 4		# lookups that may run at once
 *	[plugins]
 *	load = weather, broadcast
 *	[plugin.weather]
 *	delay = 500
 *
 * It shows: job_submit with a job tied to the sender's session (the answer
 * is dropped if the session has closed; a lookup not started yet is
 * cancelled), a work function that touches only what its job carries, a
 * full queue answered with "busy", and metrics of its own on /metrics:
 * weather_lookups_total, weather_busy_total and the histogram
 * weather_lookup_seconds.
 *
 * Build outside the source tree with only the installed SDK:
 *	cc -shared -fPIC $(pkg-config --cflags asyncchat) weather.c \
 *	    $(pkg-config --libs asyncchat) -o weather.so
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <asyncchat/plugin.h>

#define CITY_MAX	64
#define TEXT		"text/plain; charset=utf-8"

struct weather {
	struct ac_plugin		*plugin;
	const struct ac_host_api	*host;
	unsigned long			 delay_ms;
	struct ac_metric		*lookups;	/* may be NULL */
	struct ac_metric		*busy;
	struct ac_metric		*seconds;
};

/* One lookup: what the worker reads, and what it writes back. */
struct lookup {
	char		city[CITY_MAX + 1];
	unsigned long	delay_ms;
	char		answer[160];	/* written by the worker */
	double		seconds;	/* how long it took */
};

/* Seconds between two monotonic clock readings. */
static double
elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/*
 * Worker thread: the slow part. A real plugin would make its HTTP call or
 * database query here; it may block as long as it likes, but it must touch
 * nothing but its job (no host function, no session, no plugin state).
 */
static void
lookup_work(void *arg)
{
	static const char	*skies[] = { "sunny", "cloudy", "light rain",
				    "fog", "snow", "thunderstorms" };
	struct lookup		*l = arg;
	struct timespec		 t0, t1, wait;
	unsigned int		 h = 5381;
	const char		*c;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	wait.tv_sec = l->delay_ms / 1000;
	wait.tv_nsec = (long)(l->delay_ms % 1000) * 1000000L;
	while (nanosleep(&wait, &wait) == -1)
		;			/* interrupted: sleep the rest */
	for (c = l->city; *c != '\0'; c++)
		h = h * 33 + (unsigned char)*c;
	snprintf(l->answer, sizeof l->answer, "weather: %s: %d C, %s",
	    l->city, (int)(h % 35) - 5, skies[(h / 35) % 6]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	l->seconds = elapsed(&t0, &t1);
}

/*
 * Loop thread: answer the sender if it is still connected. Called exactly
 * once for every job accepted, so this is where the job is freed.
 */
static void
lookup_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct weather	*w = state;
	struct lookup	*l = arg;

	if (status == AC_JOB_DONE) {
		w->host->metric_add(w->lookups, 1);
		w->host->metric_observe(w->seconds, l->seconds);
		if (s != NULL)		/* NULL: the sender has gone */
			w->host->send(w->plugin, s, AC_MSG_MESSAGE, TEXT, NULL,
			    l->answer, strlen(l->answer));
	}
	free(l);
}

/* Answer the sender directly (usage and busy messages). */
static void
reply(struct weather *w, struct ac_session *to, const char *text)
{
	w->host->send(w->plugin, to, AC_MSG_MESSAGE, TEXT, NULL, text,
	    strlen(text));
}

/* Read the options and register the metrics. */
static int
weather_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct weather		*w;
	unsigned long long	 n;
	size_t			 i;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return -1;
	w->plugin = p;
	w->host = host;
	w->delay_ms = 500;
	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "delay") != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: delay)", opts[i].line, opts[i].key);
			free(w);
			return -1;
		}
		if (ac_option_uint(opts[i].value, 0, 60000, &n) != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: delay must be "
			    "milliseconds from 0 to 60000, not '%s'",
			    opts[i].line, opts[i].value);
			free(w);
			return -1;
		}
		w->delay_ms = (unsigned long)n;
	}
	w->lookups = host->metric_new(p, AC_METRIC_COUNTER,
	    "weather_lookups_total", "Weather lookups answered.", NULL, 0);
	w->busy = host->metric_new(p, AC_METRIC_COUNTER, "weather_busy_total",
	    "Lookups refused: the worker queue was full.", NULL, 0);
	w->seconds = host->metric_new(p, AC_METRIC_HISTOGRAM,
	    "weather_lookup_seconds", "Time of one lookup.", NULL, 0);
	*state = w;
	return 0;
}

/* Free the state; every lookup has completed by now. */
static void
weather_fini(void *state)
{
	free(state);
}

/* Start a lookup for "/weather CITY"; let anything else through. */
static int
weather_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct weather	*w = state;
	struct lookup	*l;
	const char	*city;
	size_t		 len, i;

	if (msg->content_len < 8 ||
	    memcmp(msg->content, "/weather", 8) != 0)
		return AC_PLUGIN_CONTINUE;
	city = (const char *)msg->content + 8;
	len = msg->content_len - 8;
	while (len > 0 && *city == ' ') {
		city++;
		len--;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)city[i] < ' ' || city[i] == 0x7f)
			break;
	}
	if (len == 0 || len > CITY_MAX || i != len) {
		reply(w, from, "weather: usage: /weather CITY (1 to 64 "
		    "printable characters)");
		return AC_PLUGIN_STOP;
	}

	if ((l = calloc(1, sizeof *l)) == NULL)
		return -1;
	memcpy(l->city, city, len);
	l->delay_ms = w->delay_ms;
	/* Tied to the sender: cancelled if it leaves before a worker
	 * starts the lookup. */
	if (w->host->job_submit(w->plugin, from, 0, lookup_work, lookup_done,
	    l) != 0) {
		free(l);		/* refused: the job is still ours */
		w->host->metric_add(w->busy, 1);
		reply(w, from, "weather: busy, try again in a moment");
	}
	return AC_PLUGIN_STOP;
}

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "weather",
	.version = "1.0",
	.description = "answers /weather CITY from a slow lookup, off the loop",
	.init = weather_init,
	.fini = weather_fini,
	.process_message = weather_process_message,
};
