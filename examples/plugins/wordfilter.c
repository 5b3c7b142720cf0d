/*
 * wordfilter.c - an example plugin: drop messages that contain banned words,
 * and disconnect sessions that keep sending them.
 *
 * A text message that contains one of `words` (case-insensitive) goes no
 * further: the plugin stops the chain, so later plugins (broadcast, logger)
 * never see it, and tells the sender why with an `error` frame. Each such
 * message is a strike on the session; `strikes` strikes and the session is
 * disconnected. Strikes are forgiven one at a time, one every `forgive`
 * seconds, by a timer on the server's event loop. Load it before the
 * plugins it guards:
 *
 *	[plugins]
 *	load = wordfilter, broadcast, logger
 *	[plugin.wordfilter]
 *	words = spam, scam
 *	strikes = 3
 *	forgive = 60
 *
 * It shows: a list option, stopping the chain, host->send, a per-session
 * counter kept in the session's data slot, host->session_close, a
 * libevent timer of the plugin's own, and a counter on the server's
 * /metrics (wordfilter_refused_total{plugin="wordfilter"}).
 *
 * Build outside the source tree with only the installed SDK:
 *	cc -shared -fPIC $(pkg-config --cflags asyncchat) wordfilter.c \
 *	    $(pkg-config --libs asyncchat) -levent_core -o wordfilter.so
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <asyncchat/plugin.h>

#define MAX_WORDS	64

struct wordfilter {
	struct ac_plugin		*plugin;
	const struct ac_host_api	*host;
	char				*words[MAX_WORDS];
	size_t				 nwords;
	long				 strikes;	/* strikes before disconnect */
	struct event			*forgive_timer;
	struct ac_metric		*refused;	/* NULL: no metrics */
};

/* A session's strike count, kept in its data slot. */
struct strikes {
	long	count;
};

/* Split a comma-separated list of words into the filter; -1 if bad. */
static int
parse_words(struct wordfilter *wf, const char *list)
{
	const char	*p = list, *start, *end;

	while (*p != '\0') {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		if (end == start)
			continue;
		if (wf->nwords == MAX_WORDS)
			return -1;
		wf->words[wf->nwords++] = strndup(start, (size_t)(end - start));
	}
	return wf->nwords > 0 ? 0 : -1;
}

/* Case-insensitive search for word in the first len bytes of text. */
static int
contains_word(const unsigned char *text, size_t len, const char *word)
{
	size_t	wlen = strlen(word), i, j;

	for (i = 0; wlen <= len && i <= len - wlen; i++) {
		for (j = 0; j < wlen; j++) {
			if (tolower(text[i + j]) !=
			    tolower((unsigned char)word[j]))
				break;
		}
		if (j == wlen)
			return 1;
	}
	return 0;
}

/* Forgive one strike on a session (timer pass). */
static int
forgive_one(struct ac_session *s, void *arg)
{
	struct wordfilter	*wf = arg;
	struct strikes		*st = wf->host->session_get_data(wf->plugin, s);

	if (st != NULL && st->count > 0)
		st->count--;
	return 0;
}

/* Timer callback: forgive one strike on every session. */
static void
forgive_cb(evutil_socket_t fd, short events, void *arg)
{
	struct wordfilter	*wf = arg;

	wf->host->session_foreach(wf->plugin, forgive_one, wf);
}

/* Free every banned word and the filter itself. */
static void
wordfilter_free(struct wordfilter *wf)
{
	size_t	i;

	if (wf->forgive_timer != NULL)
		event_free(wf->forgive_timer);
	for (i = 0; i < wf->nwords; i++)
		free(wf->words[i]);
	free(wf);
}

/* Read the options and start the forgiveness timer. */
static int
wordfilter_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct wordfilter	*wf;
	struct timeval		 tv = { 60, 0 };
	size_t			 i;
	unsigned long long	 n;

	if ((wf = calloc(1, sizeof *wf)) == NULL)
		return -1;
	wf->plugin = p;
	wf->host = host;
	wf->strikes = 3;
	for (i = 0; i < nopts; i++) {
		const char *k = opts[i].key, *val = opts[i].value;

		if (strcmp(k, "words") == 0) {
			if (parse_words(wf, val) != 0) {
				host->log(p, AC_LOG_ERROR, "line %d: words "
				    "must list 1 to %d words, comma-separated",
				    opts[i].line, MAX_WORDS);
				goto fail;
			}
		} else if (strcmp(k, "strikes") == 0) {
			if (ac_option_uint(val, 1, 1000, &n) != 0) {
				host->log(p, AC_LOG_ERROR, "line %d: strikes "
				    "must be a number from 1 to 1000, not '%s'",
				    opts[i].line, val);
				goto fail;
			}
			wf->strikes = (long)n;
		} else if (strcmp(k, "forgive") == 0) {
			if (ac_option_uint(val, 1, 86400, &n) != 0) {
				host->log(p, AC_LOG_ERROR, "line %d: forgive "
				    "must be seconds from 1 to 86400, not '%s'",
				    opts[i].line, val);
				goto fail;
			}
			tv.tv_sec = (time_t)n;
		} else {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: words, strikes, forgive)",
			    opts[i].line, k);
			goto fail;
		}
	}
	if (wf->nwords == 0) {
		host->log(p, AC_LOG_ERROR, "the words option is required");
		goto fail;
	}

	/* NULL if refused (the host logs why): metric_add ignores it. */
	wf->refused = host->metric_new(p, AC_METRIC_COUNTER,
	    "wordfilter_refused_total", "Messages refused for a banned word.",
	    NULL, 0);
	wf->forgive_timer = event_new(host->event_base(p), -1, EV_PERSIST,
	    forgive_cb, wf);
	if (wf->forgive_timer == NULL || event_add(wf->forgive_timer, &tv) != 0)
		goto fail;
	*state = wf;
	return 0;
fail:
	wordfilter_free(wf);
	return -1;
}

/* Stop the timer and free everything. */
static void
wordfilter_fini(void *state)
{
	wordfilter_free(state);
}

/* Stop a message with a banned word, count the strike, maybe disconnect. */
static int
wordfilter_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	static const char	 reply[] = "wordfilter: message refused";
	struct wordfilter	*wf = state;
	struct strikes		*st;
	size_t			 i;

	for (i = 0; i < wf->nwords; i++) {
		if (contains_word(msg->content, msg->content_len,
		    wf->words[i]))
			break;
	}
	if (i == wf->nwords)
		return AC_PLUGIN_CONTINUE;
	wf->host->metric_add(wf->refused, 1);

	if ((st = wf->host->session_get_data(wf->plugin, from)) == NULL) {
		if ((st = calloc(1, sizeof *st)) == NULL)
			return -1;
		wf->host->session_set_data(wf->plugin, from, st, free);
	}
	if (++st->count >= wf->strikes) {
		wf->host->log(wf->plugin, AC_LOG_INFO, "session %s: %ld "
		    "strikes, disconnecting", wf->host->session_id(from),
		    st->count);
		wf->host->session_close(wf->plugin, from, "Too many refused "
		    "messages");
		return AC_PLUGIN_STOP;
	}
	wf->host->send(wf->plugin, from, AC_MSG_ERROR,
	    "text/plain; charset=utf-8", NULL, reply, sizeof reply - 1);
	return AC_PLUGIN_STOP;
}

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "wordfilter",
	.version = "1.1",
	.description = "drop messages with banned words; disconnect repeat senders",
	.init = wordfilter_init,
	.fini = wordfilter_fini,
	.process_message = wordfilter_process_message,
};
