/*
 * hello.c - the smallest complete program on the asyncchat client library:
 * connect, say hello, print the first message that comes back, leave.
 *
 *	cc -o hello hello.c $(pkg-config --cflags --libs asyncchat libevent)
 *	./hello [host [port]]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <asyncchat/asyncchat.h>

struct hello {
	struct event_base	*base;
	int			 status;
};

/* Time to say hello. */
static void
hello_send(evutil_socket_t fd, short events, void *arg)
{
	struct ac_client	*c = arg;

	if (ac_client_send_text(c, "Hello from libasyncchat") != 0)
		ac_client_disconnect(c, "cannot send");
}

/* The handshake is done: send one line of text a moment later. */
static void
hello_connected(struct ac_client *c, const char *session_id, void *arg)
{
	struct hello	*h = arg;
	struct timeval	 tv = { 0, 200000 };

	printf("connected, session %s\n", session_id);

	/*
	 * The original Python server decodes one frame per read and would
	 * lose a message sent in the same segment as the session_ack the
	 * library has just queued; asyncchatd would not mind either way.
	 */
	event_base_once(h->base, -1, EV_TIMEOUT, hello_send, c, &tv);
}

/* A frame came back: print the first message, then leave cleanly. */
static void
hello_message(struct ac_client *c, enum ac_msg_type type,
    const char *content_type, const char *session_id, const void *content,
    size_t len, struct json_object *header, void *arg)
{
	struct hello	*h = arg;

	if (type != AC_MSG_MESSAGE)
		return;		/* a heartbeat pong */
	printf("%.8s says: %.*s\n", session_id != NULL ? session_id : "?",
	    (int)len, (const char *)content);
	h->status = 0;
	ac_client_disconnect(c, "done");
}

/* The server reported an error. */
static void
hello_error(struct ac_client *c, enum ac_frame_status status,
    const char *text, void *arg)
{
	fprintf(stderr, "hello: error: %s\n", text);
}

/* The connection is over, for whatever reason: stop the loop. */
static void
hello_disconnected(struct ac_client *c, enum ac_client_end end,
    const char *reason, void *arg)
{
	struct hello	*h = arg;

	if (end != AC_CLIENT_END_LOCAL)
		fprintf(stderr, "hello: %s\n", reason);
	event_base_loopbreak(h->base);
}

/* Connect to argv[1] port argv[2] and run until the exchange is over. */
int
main(int argc, char **argv)
{
	struct ac_client_callbacks	 cb;
	struct hello			 h;
	struct ac_key			*key;
	struct ac_client		*c;
	char				*cause;

	signal(SIGPIPE, SIG_IGN);
	h.base = event_base_new();
	h.status = 1;
	key = ac_key_new(AC_DEFAULT_KEY, strlen(AC_DEFAULT_KEY));

	memset(&cb, 0, sizeof cb);
	cb.connected = hello_connected;
	cb.message = hello_message;
	cb.error = hello_error;
	cb.disconnected = hello_disconnected;
	c = ac_client_new(h.base, key, NULL, &cb, &h);

	/* Resolving here, before the loop runs, is allowed to block. */
	if (ac_client_connect_tcp(c, argc > 1 ? argv[1] : "127.0.0.1",
	    argc > 2 ? argv[2] : "9999", &cause) != 0) {
		fprintf(stderr, "hello: %s\n", cause);
		free(cause);
	} else
		event_base_dispatch(h.base);

	ac_client_free(c);
	ac_key_free(key);
	event_base_free(h.base);
	return h.status;
}
