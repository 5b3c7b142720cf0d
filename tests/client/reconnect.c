/*
 * reconnect.c - drives the client library's reconnecting for
 * test_reconnect.py: connect with reconnect on (100 ms doubling to at most
 * 400 ms), print one line per event with the milliseconds since start, and
 * leave cleanly once connected for the second time.
 *
 *	reconnect HOST PORT
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include <asyncchat/asyncchat.h>

struct state {
	struct event_base	*base;
	struct timespec		 start;
	int			 connects;
};

/* Milliseconds since the program started. */
static long
elapsed(struct state *st)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - st->start.tv_sec) * 1000 +
	    (now.tv_nsec - st->start.tv_nsec) / 1000000;
}

/* Connected: the second time, leave. */
static void
reconnect_connected(struct ac_client *c, const char *session_id, void *arg)
{
	struct state	*st = arg;

	printf("%ld connected %s\n", elapsed(st), session_id);
	fflush(stdout);
	if (++st->connects == 2)
		ac_client_disconnect(c, "test done");
}

/* Every end of a connection or attempt. */
static void
reconnect_disconnected(struct ac_client *c, enum ac_client_end end,
    const char *reason, void *arg)
{
	struct state		*st = arg;
	static const char	*names[] = { "local", "server", "connect",
				    "lost", "handshake", "protocol" };

	printf("%ld %s %s\n", elapsed(st), names[end], reason);
	fflush(stdout);
	if (end == AC_CLIENT_END_LOCAL)
		event_base_loopbreak(st->base);
}

/* Give up after a while, whatever happened. */
static void
reconnect_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct state	*st = arg;

	printf("%ld timeout\n", elapsed(st));
	event_base_loopbreak(st->base);
}

/* Run the client against argv[1] port argv[2]. */
int
main(int argc, char **argv)
{
	struct ac_client_callbacks	 cb;
	struct ac_client_options	 opts;
	struct state			 st;
	struct ac_key			*key;
	struct ac_client		*c;
	struct timeval			 limit = { 15, 0 };
	char				*cause;

	if (argc != 3) {
		fprintf(stderr, "usage: reconnect HOST PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&st, 0, sizeof st);
	clock_gettime(CLOCK_MONOTONIC, &st.start);
	st.base = event_base_new();
	key = ac_key_new(AC_DEFAULT_KEY, strlen(AC_DEFAULT_KEY));

	memset(&cb, 0, sizeof cb);
	cb.connected = reconnect_connected;
	cb.disconnected = reconnect_disconnected;
	ac_client_options_default(&opts);
	opts.reconnect = 1;
	opts.reconnect_min_ms = 100;
	opts.reconnect_max_ms = 400;
	c = ac_client_new(st.base, key, &opts, &cb, &st);
	event_base_once(st.base, -1, EV_TIMEOUT, reconnect_timeout, &st,
	    &limit);

	if (ac_client_connect_tcp(c, argv[1], argv[2], &cause) != 0) {
		printf("0 connect-call %s\n", cause);
		free(cause);
	} else
		event_base_dispatch(st.base);

	ac_client_free(c);
	ac_key_free(key);
	event_base_free(st.base);
	return st.connects == 2 ? 0 : 1;
}
