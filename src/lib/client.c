/*
 * client.c - the asynchronous chat client (asyncchat/client.h).
 *
 * One connection at a time, driven by one bufferevent. The read side frames
 * in two steps like the server: the read low watermark is the fixed header's
 * 64 bytes until that header is parsed and checked, then the whole frame's
 * length, so a frame is only ever decoded once all of it is buffered and
 * any number of frames in one read are handled in a loop.
 *
 * TLS (client_tls.c) adds one step: once the socket connects, it moves to
 * a bufferevent_openssl, and the session handshake starts only when the
 * TLS handshake has finished.
 *
 * Over 700 lines, one noun: struct ac_client is a single state machine
 * (connecting, TLS, handshake, up, closing, waiting to retry) that every
 * part reads and moves. Its seam is the server's (conn.c and dispatch.c):
 * the connection (resolve, connect, TLS, retry, the bufferevent's events)
 * and the protocol (framing, the handshake, what each frame does). Split
 * it there when a second transport comes, rather than while the terminal
 * client's work lands on it.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <json-c/json.h>

#include <asyncchat/client.h>
#include <asyncchat/frame.h>
#include <asyncchat/key.h>
#include <asyncchat/uuid.h>

#include "client_tls.h"

#define CLIENT_CLOSE_TIMEOUT	5	/* s to flush a disconnect */
/* A session id as long as any, to size a session_ack's header. */
#define CLIENT_PROBE_SID	"00000000-0000-0000-0000-000000000000"

enum client_state {
	CLIENT_IDLE = 0,	/* no connection (maybe waiting to retry) */
	CLIENT_CONNECTING,	/* socket connect in progress */
	CLIENT_TLS,		/* TLS handshake in progress */
	CLIENT_HANDSHAKE,	/* connected, waiting for session_init */
	CLIENT_READY,		/* session acknowledged */
	CLIENT_CLOSING,		/* disconnect queued, waiting for the flush */
};

struct ac_client {
	struct event_base		*base;
	const struct ac_key		*key;
	struct ac_client_options	 opts;
	struct ac_client_callbacks	 cb;
	void				*arg;

	enum ac_client_transport	 transport;
	struct sockaddr_storage		*addrs;		/* to try in order */
	socklen_t			*addrlens;
	size_t				 naddrs;
	size_t				 next_addr;
	char				*peer;		/* for messages */

	ac_client_wrap_fn		 wrap;
	void				*wrap_arg;

	struct ssl_ctx_st		*tls_ctx;	/* AC_CLIENT_TLS */
	char				*tls_host;	/* name to verify */
	int				 tls_verify;

	struct json_object		*ack_extra;	/* for session_ack */

	enum client_state		 state;
	struct bufferevent		*bev;
	struct ac_fixed_header		 fh;
	int				 have_fh;
	char				 session_id[AC_UUID_STRLEN + 1];

	struct event			*heartbeat;
	struct event			*timeout;	/* handshake or close */
	struct event			*retry;
	int				 retry_ms;

	int				 busy;		/* callbacks running */
	int				 flags;
#define CLIENT_FREE		0x1	/* ac_client_free() inside a callback */
#define CLIENT_STOPPED		0x2	/* the user closed: no reconnecting */
#define CLIENT_STARTED		0x4	/* a connection was started */
};

static void	client_read_cb(struct bufferevent *, void *);
static void	client_write_cb(struct bufferevent *, void *);
static void	client_event_cb(struct bufferevent *, short, void *);
static void	client_heartbeat_cb(evutil_socket_t, short, void *);
static void	client_timeout_cb(evutil_socket_t, short, void *);
static void	client_retry_cb(evutil_socket_t, short, void *);
static void	client_end(struct ac_client *, enum ac_client_end,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
static int	client_start(struct ac_client *, char **);
static int	client_queue_ack(struct ac_client *, const char *);

/* Fill options with the defaults (heartbeat 5 s as in the original). */
void
ac_client_options_default(struct ac_client_options *options)
{
	memset(options, 0, sizeof *options);
	options->heartbeat_interval = 5;
	options->handshake_timeout = 10;
	options->reconnect = 0;
	options->reconnect_min_ms = 500;
	options->reconnect_max_ms = 30000;
	options->drain_lowat = 16384;
	ac_limits_default(&options->limits);
}

/* Make a client on base with key, copying options and callbacks. */
struct ac_client *
ac_client_new(struct event_base *base, const struct ac_key *key,
    const struct ac_client_options *options,
    const struct ac_client_callbacks *cb, void *arg)
{
	struct ac_client	*c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	c->base = base;
	c->key = key;
	if (options != NULL)
		c->opts = *options;
	else
		ac_client_options_default(&c->opts);
	if (c->opts.reconnect_min_ms <= 0)
		c->opts.reconnect_min_ms = 500;
	if (c->opts.reconnect_max_ms < c->opts.reconnect_min_ms)
		c->opts.reconnect_max_ms = c->opts.reconnect_min_ms;
	if (cb != NULL)
		c->cb = *cb;
	c->arg = arg;

	c->heartbeat = event_new(base, -1, EV_PERSIST, client_heartbeat_cb, c);
	c->timeout = evtimer_new(base, client_timeout_cb, c);
	c->retry = evtimer_new(base, client_retry_cb, c);
	if (c->heartbeat == NULL || c->timeout == NULL || c->retry == NULL) {
		ac_client_free(c);
		return NULL;
	}
	return c;
}

/* Release everything the client holds, now. */
static void
client_destroy(struct ac_client *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->heartbeat != NULL)
		event_free(c->heartbeat);
	if (c->timeout != NULL)
		event_free(c->timeout);
	if (c->retry != NULL)
		event_free(c->retry);
	free(c->addrs);
	free(c->addrlens);
	free(c->peer);
	client_tls_ctx_free(c->tls_ctx);
	free(c->tls_host);
	json_object_put(c->ack_extra);
	free(c);
}

/* Close any connection silently and free the client (later in a callback). */
void
ac_client_free(struct ac_client *c)
{
	if (c == NULL)
		return;
	if (c->busy > 0) {
		/*
		 * Called from inside one of our callbacks: the code that
		 * called it still uses c, so drop the connection now and let
		 * the outermost entry point free the memory on its way out.
		 */
		c->flags |= CLIENT_FREE | CLIENT_STOPPED;
		if (c->bev != NULL) {
			bufferevent_free(c->bev);
			c->bev = NULL;
		}
		event_del(c->heartbeat);
		event_del(c->timeout);
		event_del(c->retry);
		c->state = CLIENT_IDLE;
		return;
	}
	client_destroy(c);
}

/* Enter a libevent callback: keep c alive until the matching leave. */
static void
client_enter(struct ac_client *c)
{
	c->busy++;
}

/* Leave a libevent callback; returns 1 if c was freed and must not be used. */
static int
client_leave(struct ac_client *c)
{
	if (--c->busy == 0 && (c->flags & CLIENT_FREE)) {
		client_destroy(c);
		return 1;
	}
	return 0;
}

/* Non-zero when processing must stop because the connection went away. */
static int
client_gone(struct ac_client *c, struct bufferevent *bev)
{
	return (c->flags & CLIENT_FREE) || c->bev != bev;
}

/* Set the function that wraps each connected TCP or Unix bufferevent. */
void
ac_client_set_wrap(struct ac_client *c, ac_client_wrap_fn fn, void *arg)
{
	c->wrap = fn;
	c->wrap_arg = arg;
}

/* Non-zero between the connected and the disconnected callbacks. */
int
ac_client_is_connected(const struct ac_client *c)
{
	return c->state == CLIENT_READY;
}

/* This connection's session id, or NULL before the handshake. */
const char *
ac_client_session_id(const struct ac_client *c)
{
	if (c->state != CLIENT_READY && c->state != CLIENT_CLOSING)
		return NULL;
	return c->session_id;
}

/* Bytes queued for the server and not yet written to the socket. */
size_t
ac_client_output_pending(const struct ac_client *c)
{
	if (c->bev == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Format a heap string for *cause. */
static void
client_cause(char **cause, const char *fmt, ...)
{
	va_list	ap;

	if (cause == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
}

/* Forget the previous target before a new connect call. */
static int
client_reset_target(struct ac_client *c, char **cause)
{
	if (c->state != CLIENT_IDLE || evtimer_pending(c->retry, NULL)) {
		client_cause(cause, "client is already connected");
		return -1;
	}
	free(c->addrs);
	free(c->addrlens);
	free(c->peer);
	c->addrs = NULL;
	c->addrlens = NULL;
	c->peer = NULL;
	c->naddrs = 0;
	c->flags &= ~CLIENT_STOPPED;
	c->retry_ms = 0;
	return 0;
}

/* Resolve host and port into the addresses to try; 0 or -1 with *cause. */
static int
client_resolve(struct ac_client *c, const char *host, const char *port,
    char **cause)
{
	struct addrinfo	 hints, *res, *ai;
	size_t		 n;
	int		 error;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	error = getaddrinfo(host, port, &hints, &res);
	if (error == EAI_BADFLAGS || error == EAI_NONAME) {
		/* No configured address family (loopback only): try again. */
		hints.ai_flags = 0;
		error = getaddrinfo(host, port, &hints, &res);
	}
	if (error != 0) {
		client_cause(cause, "%s port %s: %s", host, port,
		    gai_strerror(error));
		return -1;
	}
	for (n = 0, ai = res; ai != NULL; ai = ai->ai_next)
		n++;
	c->addrs = calloc(n, sizeof *c->addrs);
	c->addrlens = calloc(n, sizeof *c->addrlens);
	if (c->addrs == NULL || c->addrlens == NULL) {
		freeaddrinfo(res);
		client_cause(cause, "out of memory");
		return -1;
	}
	for (n = 0, ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof c->addrs[n])
			continue;
		memcpy(&c->addrs[n], ai->ai_addr, ai->ai_addrlen);
		c->addrlens[n] = ai->ai_addrlen;
		n++;
	}
	c->naddrs = n;
	freeaddrinfo(res);
	if (asprintf(&c->peer, "%s port %s", host, port) == -1)
		c->peer = NULL;
	if (c->naddrs == 0) {
		client_cause(cause, "%s port %s: no usable address", host,
		    port);
		return -1;
	}
	c->next_addr = 0;
	return 0;
}

/* Resolve host and port, then start connecting to the first address. */
int
ac_client_connect_tcp(struct ac_client *c, const char *host,
    const char *port, char **cause)
{
	if (client_reset_target(c, cause) != 0 ||
	    client_resolve(c, host, port, cause) != 0)
		return -1;
	c->transport = AC_CLIENT_TCP;
	return client_start(c, cause);
}

/* Fill TLS options with the defaults: verify against the system store. */
void
ac_client_tls_options_default(struct ac_client_tls_options *tls)
{
	memset(tls, 0, sizeof *tls);
}

/*
 * Load the TLS files, resolve host and port, then start connecting; the
 * TLS handshake follows the connect (client_connected).
 */
int
ac_client_connect_tls(struct ac_client *c, const char *host,
    const char *port, const struct ac_client_tls_options *tls, char **cause)
{
	struct ac_client_tls_options	 defaults;
	struct ssl_ctx_st		*ctx;
	char				*name;

	if (tls == NULL) {
		ac_client_tls_options_default(&defaults);
		tls = &defaults;
	}
	if (client_reset_target(c, cause) != 0)
		return -1;
	if ((ctx = client_tls_ctx(tls, cause)) == NULL)
		return -1;
	if ((name = strdup(host)) == NULL) {
		client_tls_ctx_free(ctx);
		client_cause(cause, "out of memory");
		return -1;
	}
	client_tls_ctx_free(c->tls_ctx);
	free(c->tls_host);
	c->tls_ctx = ctx;
	c->tls_host = name;
	c->tls_verify = !tls->insecure;
	if (client_resolve(c, host, port, cause) != 0)
		return -1;
	c->transport = AC_CLIENT_TLS;
	return client_start(c, cause);
}

/* Start connecting to a Unix socket path. */
int
ac_client_connect_unix(struct ac_client *c, const char *path, char **cause)
{
	struct sockaddr_un	*sun;

	if (client_reset_target(c, cause) != 0)
		return -1;
	if (strlen(path) >= sizeof sun->sun_path) {
		client_cause(cause, "%s: %s", path, strerror(ENAMETOOLONG));
		return -1;
	}
	c->addrs = calloc(1, sizeof *c->addrs);
	c->addrlens = calloc(1, sizeof *c->addrlens);
	if (c->addrs == NULL || c->addrlens == NULL) {
		client_cause(cause, "out of memory");
		return -1;
	}
	sun = (struct sockaddr_un *)&c->addrs[0];
	sun->sun_family = AF_UNIX;
	strncpy(sun->sun_path, path, sizeof sun->sun_path - 1);
	c->addrlens[0] = sizeof *sun;
	c->naddrs = 1;
	c->next_addr = 0;
	c->peer = strdup(path);
	c->transport = AC_CLIENT_UNIX;
	return client_start(c, cause);
}

/*
 * Begin connecting to addrs[next_addr], moving on to the next address when
 * one fails at once. When every address fails, set *cause and return -1 if
 * cause is not NULL (a call from the program), or else report the end
 * through the disconnected callback.
 */
static int
client_start(struct ac_client *c, char **cause)
{
	struct bufferevent	*bev;
	struct sockaddr		*sa;
	const char		*peer = c->peer != NULL ? c->peer : "server";
	char			 error[256];

	c->have_fh = 0;
	c->session_id[0] = '\0';
	snprintf(error, sizeof error, "no address");
	for (; c->next_addr < c->naddrs; c->next_addr++) {
		bev = bufferevent_socket_new(c->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			snprintf(error, sizeof error, "out of memory");
			break;
		}
		bufferevent_setcb(bev, NULL, NULL, client_event_cb, c);
		sa = (struct sockaddr *)&c->addrs[c->next_addr];
		if (bufferevent_socket_connect(bev, sa,
		    c->addrlens[c->next_addr]) == 0) {
			/* Refused at once still arrives as an error event. */
			c->bev = bev;
			c->state = CLIENT_CONNECTING;
			c->flags |= CLIENT_STARTED;
			if (c->opts.handshake_timeout > 0) {
				struct timeval	tv;

				tv.tv_sec = c->opts.handshake_timeout;
				tv.tv_usec = 0;
				evtimer_add(c->timeout, &tv);
			}
			return 0;
		}
		snprintf(error, sizeof error, "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(bev);
	}
	if (cause != NULL) {
		client_cause(cause, "connect to %s: %s", peer, error);
		return -1;
	}
	c->flags |= CLIENT_STARTED;
	client_end(c, AC_CLIENT_END_CONNECT, "connect to %s: %s", peer, error);
	return -1;
}

/* Drop the current bufferevent and timers, without callbacks. */
static void
client_drop(struct ac_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	event_del(c->heartbeat);
	event_del(c->timeout);
	c->state = CLIENT_IDLE;
	c->have_fh = 0;
}

/*
 * End the connection: drop it, tell the program why, and schedule a new
 * attempt when reconnecting is on and the program did not ask to leave.
 */
static void
client_end(struct ac_client *c, enum ac_client_end end, const char *fmt, ...)
{
	char	 reason[512];
	va_list	 ap;
	int	 started = c->flags & CLIENT_STARTED;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);

	client_drop(c);
	c->flags &= ~CLIENT_STARTED;
	if (end == AC_CLIENT_END_LOCAL)
		c->flags |= CLIENT_STOPPED;
	client_enter(c);
	if (started && c->cb.disconnected != NULL)
		c->cb.disconnected(c, end, reason, c->arg);
	if (c->opts.reconnect && !(c->flags & (CLIENT_STOPPED | CLIENT_FREE)) &&
	    c->state == CLIENT_IDLE && c->naddrs > 0) {
		struct timeval	tv;

		if (c->retry_ms == 0)
			c->retry_ms = c->opts.reconnect_min_ms;
		else if (c->retry_ms < c->opts.reconnect_max_ms / 2)
			c->retry_ms *= 2;
		else
			c->retry_ms = c->opts.reconnect_max_ms;
		tv.tv_sec = c->retry_ms / 1000;
		tv.tv_usec = (c->retry_ms % 1000) * 1000;
		evtimer_add(c->retry, &tv);
	}
	client_leave(c);
}

/* Time to try connecting again. */
static void
client_retry_cb(evutil_socket_t fd, short events, void *arg)
{
	struct ac_client	*c = arg;

	client_enter(c);
	c->next_addr = 0;
	client_start(c, NULL);
	client_leave(c);
}

/* Queue a frame of our own with our session id; 0 or -1. */
static int
client_queue(struct ac_client *c, enum ac_msg_type type,
    const char *content_type, struct json_object *extra, const void *content,
    size_t len)
{
	struct evbuffer	*out;

	if (c->bev == NULL || len == 0)
		return -1;
	out = bufferevent_get_output(c->bev);
	return ac_frame_encode(out, c->key, type, content_type,
	    c->session_id[0] != '\0' ? c->session_id : NULL, extra, content,
	    len);
}

/* Queue session_ack for session id sid. */
static int
client_queue_ack(struct ac_client *c, const char *sid)
{
	static const char	 ack[] = "Session acknowledged";

	if (c->bev == NULL)
		return -1;
	return ac_frame_encode(bufferevent_get_output(c->bev), c->key,
	    AC_MSG_SESSION_ACK, "application/octet-stream", sid, c->ack_extra,
	    ack, sizeof ack - 1);
}

/*
 * Keep a copy of extra for the header of every session_ack from now on.
 * The header is built once here to check it, so a member that could not
 * be sent fails now, with the caller, rather than at a handshake.
 */
int
ac_client_set_ack_extra(struct ac_client *c, struct json_object *extra)
{
	struct json_object	*copy = NULL;
	struct evbuffer		*probe;
	int			 rc;

	if (extra != NULL) {
		if (!json_object_is_type(extra, json_type_object))
			return -1;
		if ((probe = evbuffer_new()) == NULL)
			return -1;
		rc = ac_header_json_write(probe, AC_MSG_SESSION_ACK,
		    "application/octet-stream", CLIENT_PROBE_SID, extra);
		if (rc == 0 && evbuffer_get_length(probe) >
		    AC_DEFAULT_MAX_HEADER)
			rc = -1;
		evbuffer_free(probe);
		if (rc != 0 || json_object_deep_copy(extra, &copy, NULL) != 0)
			return -1;
	}
	json_object_put(c->ack_extra);
	c->ack_extra = copy;
	return 0;
}

/* Queue a message frame with content_type and extra header members. */
int
ac_client_send(struct ac_client *c, const char *content_type,
    struct json_object *extra, const void *content, size_t len)
{
	if (c->state != CLIENT_READY)
		return -1;
	if (content_type == NULL)
		content_type = "application/octet-stream";
	return client_queue(c, AC_MSG_MESSAGE, content_type, extra, content,
	    len);
}

/* Queue a NUL-terminated UTF-8 text as a text/plain message. */
int
ac_client_send_text(struct ac_client *c, const char *text)
{
	return ac_client_send(c, AC_CLIENT_TEXT_TYPE, NULL, text, strlen(text));
}

/* Queue a heartbeat ping now. */
int
ac_client_ping(struct ac_client *c)
{
	if (c->state != CLIENT_READY)
		return -1;
	return client_queue(c, AC_MSG_HEARTBEAT, "application/octet-stream",
	    NULL, "ping", 4);
}

/* Queue disconnect and close once it is written. */
int
ac_client_disconnect(struct ac_client *c, const char *reason)
{
	struct evbuffer	*content;
	int		 had_retry;

	had_retry = evtimer_pending(c->retry, NULL);
	event_del(c->retry);
	c->flags |= CLIENT_STOPPED;
	if (reason == NULL)
		reason = "Client disconnecting";

	switch (c->state) {
	case CLIENT_IDLE:
		return had_retry ? 0 : -1;
	case CLIENT_CLOSING:
		return 0;
	case CLIENT_CONNECTING:
	case CLIENT_TLS:
	case CLIENT_HANDSHAKE:
		client_end(c, AC_CLIENT_END_LOCAL, "%s", reason);
		return 0;
	case CLIENT_READY:
		break;
	}

	/* Spelled as the server and the Python peer spell it. */
	if ((content = evbuffer_new()) == NULL ||
	    ac_disconnect_content(content, reason) != 0 ||
	    client_queue(c, AC_MSG_DISCONNECT, "application/json", NULL,
	    evbuffer_pullup(content, -1), evbuffer_get_length(content)) != 0) {
		if (content != NULL)
			evbuffer_free(content);
		client_end(c, AC_CLIENT_END_LOCAL, "%s", reason);
		return 0;
	}
	evbuffer_free(content);

	/*
	 * Keep reading (late replies are still delivered) but stop the
	 * heartbeat; the write callback closes once the output is empty,
	 * and the timeout closes anyway if the server stops reading.
	 */
	c->state = CLIENT_CLOSING;
	event_del(c->heartbeat);
	{
		struct timeval	tv = { CLIENT_CLOSE_TIMEOUT, 0 };

		evtimer_add(c->timeout, &tv);
	}
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	return 0;
}

/* The periodic heartbeat: send a ping. */
static void
client_heartbeat_cb(evutil_socket_t fd, short events, void *arg)
{
	struct ac_client	*c = arg;

	ac_client_ping(c);
}

/* The handshake or the closing flush took too long. */
static void
client_timeout_cb(evutil_socket_t fd, short events, void *arg)
{
	struct ac_client	*c = arg;

	client_enter(c);
	switch (c->state) {
	case CLIENT_CONNECTING:
		client_end(c, AC_CLIENT_END_CONNECT, "connect to %s: timed out",
		    c->peer != NULL ? c->peer : "server");
		break;
	case CLIENT_TLS:
		client_end(c, AC_CLIENT_END_HANDSHAKE,
		    "TLS handshake failed: no answer within %d s",
		    c->opts.handshake_timeout);
		break;
	case CLIENT_HANDSHAKE:
		client_end(c, AC_CLIENT_END_HANDSHAKE,
		    "handshake failed: no session_init within %d s",
		    c->opts.handshake_timeout);
		break;
	case CLIENT_CLOSING:
		client_end(c, AC_CLIENT_END_LOCAL, "disconnect not flushed");
		break;
	default:
		break;
	}
	client_leave(c);
}

/*
 * The socket connected: switch to framing and wait for session_init, or
 * for TLS start the TLS handshake first (the TLS bufferevent reports
 * BEV_EVENT_CONNECTED again when it is done).
 */
static void
client_connected(struct ac_client *c)
{
	struct bufferevent	*bev = c->bev;

	if (c->transport == AC_CLIENT_TLS) {
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		c->bev = client_tls_wrap(c->base, bev, c->tls_ctx,
		    c->tls_host, c->tls_verify);
		if (c->bev == NULL) {
			bufferevent_free(bev);
			client_end(c, AC_CLIENT_END_CONNECT,
			    "connect to %s: cannot start TLS",
			    c->peer != NULL ? c->peer : "server");
			return;
		}
		bev = c->bev;
	} else if (c->wrap != NULL) {
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		c->bev = c->wrap(c, bev, c->wrap_arg);
		if (c->bev == NULL) {
			bufferevent_free(bev);
			client_end(c, AC_CLIENT_END_CONNECT,
			    "connect to %s: transport set-up failed",
			    c->peer != NULL ? c->peer : "server");
			return;
		}
		bev = c->bev;
	}
	c->state = c->transport == AC_CLIENT_TLS ? CLIENT_TLS :
	    CLIENT_HANDSHAKE;
	bufferevent_setcb(bev, client_read_cb, client_write_cb, client_event_cb,
	    c);
	bufferevent_setwatermark(bev, EV_READ, AC_FIXED_HEADER_LEN, 0);
	bufferevent_setwatermark(bev, EV_WRITE, c->opts.drain_lowat, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Connected, EOF or an error on the socket. */
static void
client_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct ac_client	*c = arg;
	const char		*peer = c->peer != NULL ? c->peer : "server";
	int			 err = EVUTIL_SOCKET_ERROR();
	char			 tls[512];

	client_enter(c);
	if (events & BEV_EVENT_CONNECTED) {
		if (c->state == CLIENT_TLS)
			c->state = CLIENT_HANDSHAKE;
		else
			client_connected(c);
		goto out;
	}
	if (c->transport == AC_CLIENT_TLS && c->state != CLIENT_CLOSING &&
	    client_tls_error(bev, tls, sizeof tls)) {
		client_end(c, c->state == CLIENT_READY ? AC_CLIENT_END_LOST :
		    AC_CLIENT_END_HANDSHAKE, "%s: %s",
		    c->state == CLIENT_READY ? "connection lost: TLS" :
		    "TLS handshake failed", tls);
		goto out;
	}
	if (c->state == CLIENT_TLS) {
		client_end(c, AC_CLIENT_END_HANDSHAKE, "TLS handshake failed: "
		    "%s", (events & BEV_EVENT_ERROR) && err != 0 ?
		    evutil_socket_error_to_string(err) :
		    "connection closed by server");
		goto out;
	}
	if (c->state == CLIENT_CONNECTING) {
		/* Try the next address before giving up. */
		if (c->next_addr + 1 < c->naddrs) {
			client_drop(c);
			c->next_addr++;
			client_start(c, NULL);
			goto out;
		}
		client_end(c, AC_CLIENT_END_CONNECT, "connect to %s: %s", peer,
		    (events & BEV_EVENT_ERROR) && err != 0 ?
		    evutil_socket_error_to_string(err) : "connection closed");
		goto out;
	}
	if (c->state == CLIENT_CLOSING) {
		client_end(c, AC_CLIENT_END_LOCAL, "client disconnect");
		goto out;
	}
	if (c->state == CLIENT_HANDSHAKE) {
		client_end(c, AC_CLIENT_END_HANDSHAKE, "handshake failed: "
		    "connection closed by server");
		goto out;
	}
	if ((events & BEV_EVENT_ERROR) && err != 0)
		client_end(c, AC_CLIENT_END_LOST, "connection lost: %s",
		    evutil_socket_error_to_string(err));
	else
		client_end(c, AC_CLIENT_END_LOST, "connection lost");
out:
	client_leave(c);
}

/* Output fell to the low-water mark: finish a close or tell the program. */
static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct ac_client	*c = arg;

	client_enter(c);
	if (c->state == CLIENT_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			client_end(c, AC_CLIENT_END_LOCAL, "client disconnect");
	} else if (c->state == CLIENT_READY && c->cb.drained != NULL)
		c->cb.drained(c, c->arg);
	client_leave(c);
}

/* Copy text into a short NUL-terminated buffer, replacing control bytes. */
static void
client_text(char *dst, size_t dstlen, const void *src, size_t len)
{
	const unsigned char	*p = src;
	size_t			 i;

	if (len >= dstlen)
		len = dstlen - 1;
	for (i = 0; i < len; i++)
		dst[i] = (p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f ?
		    '?' : (char)p[i];
	dst[len] = '\0';
}

/*
 * The reason of a disconnect frame's JSON content, or its text, with
 * control bytes replaced (a program may well print it on a terminal).
 */
static void
client_disconnect_reason(const struct ac_message *msg, char *out, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*obj, *v;

	client_text(out, len, msg->content, msg->content_len);
	if ((tok = json_tokener_new()) == NULL)
		return;
	obj = json_tokener_parse_ex(tok, (const char *)msg->content,
	    msg->content_len > INT32_MAX ? INT32_MAX : (int)msg->content_len);
	if (obj != NULL && json_object_is_type(obj, json_type_object) &&
	    json_object_object_get_ex(obj, "reason", &v) &&
	    json_object_is_type(v, json_type_string))
		client_text(out, len, json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
	json_object_put(obj);
	json_tokener_free(tok);
}

/*
 * A frame whose CRCs passed but whose HMAC did not: its type, read without
 * trusting it, only to explain the failure. Returns the type, or -1.
 */
static int
client_unverified_type(const uint8_t *hj, size_t hlen)
{
	struct json_tokener	*tok;
	struct json_object	*obj, *v;
	enum ac_msg_type	 type;
	int			 rc = -1;

	if (hlen > INT32_MAX || (tok = json_tokener_new()) == NULL)
		return -1;
	obj = json_tokener_parse_ex(tok, (const char *)hj, (int)hlen);
	if (obj != NULL && json_object_is_type(obj, json_type_object) &&
	    json_object_object_get_ex(obj, "type", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    ac_msg_type_parse(json_object_get_string(v), &type) == 0)
		rc = type;
	json_object_put(obj);
	json_tokener_free(tok);
	return rc;
}

/*
 * A frame that failed one of checks 4-7. Nothing is ever sent in answer
 * to it, in any state: a frame that fails its CRC or HMAC check did not
 * come from a holder of the key (or was changed on the way), and a signed
 * answer to it, such as a session_ack for the session id it names, would
 * hand whoever sent it a signature it could not make itself (a signing
 * oracle: it could then complete a handshake on the real server with our
 * ack). So such a frame ends the connection as a protocol failure, after
 * the error callback has reported it outside the handshake. So does any
 * bad frame during the handshake. After the handshake, a frame that
 * passed the HMAC check but is malformed (checks 6-7) comes from a holder
 * of the key: it is reported and dropped, and the session goes on.
 */
static void
client_bad_frame(struct ac_client *c, enum ac_frame_status st,
    const uint8_t *body)
{
	char	 text[600], content[400];
	int	 type = -1, forged;

	forged = st == AC_FRAME_HEADER_CRC || st == AC_FRAME_CONTENT_CRC ||
	    st == AC_FRAME_HMAC;
	if (st == AC_FRAME_HMAC)
		type = client_unverified_type(body, c->fh.header_len);
	if (type == AC_MSG_ERROR) {
		client_text(content, sizeof content, body + c->fh.header_len,
		    c->fh.content_len);
		snprintf(text, sizeof text, "%s: an error frame failed "
		    "verification (wrong key, or not the server); its "
		    "unverified text: %s", ac_frame_status_name(st), content);
	} else if (type == AC_MSG_SESSION_INIT) {
		snprintf(text, sizeof text, "%s: session_init failed "
		    "verification (wrong key, or not the server)",
		    ac_frame_status_name(st));
	} else if (type >= 0) {
		snprintf(text, sizeof text, "%s: a %s frame failed "
		    "verification (wrong key, or changed on the way)",
		    ac_frame_status_name(st), ac_msg_type_name(type));
	} else {
		snprintf(text, sizeof text, "%s: %s",
		    ac_frame_status_name(st), ac_frame_status_text(st));
	}

	if (c->state == CLIENT_HANDSHAKE) {
		client_end(c, AC_CLIENT_END_PROTOCOL, "handshake failed: %s",
		    text);
		return;
	}
	if (c->cb.error != NULL) {
		struct bufferevent	*bev = c->bev;

		c->cb.error(c, st, text, c->arg);
		if (client_gone(c, bev))
			return;
	}
	if (forged)
		client_end(c, AC_CLIENT_END_PROTOCOL, "protocol error: %s",
		    ac_frame_status_name(st));
}

/* The first verified frame: it must be session_init; answer session_ack. */
static void
client_handshake(struct ac_client *c, const struct ac_message *msg)
{
	char	text[400];

	switch (msg->type) {
	case AC_MSG_SESSION_INIT:
		break;
	case AC_MSG_ERROR:
		client_text(text, sizeof text, msg->content, msg->content_len);
		client_end(c, AC_CLIENT_END_HANDSHAKE,
		    "handshake failed: server error: %s", text);
		return;
	case AC_MSG_DISCONNECT:
		client_disconnect_reason(msg, text, sizeof text);
		client_end(c, AC_CLIENT_END_HANDSHAKE,
		    "handshake failed: server disconnect: %s", text);
		return;
	default:
		client_end(c, AC_CLIENT_END_PROTOCOL,
		    "handshake failed: expected session_init, got %s",
		    ac_msg_type_name(msg->type));
		return;
	}
	if (msg->session_id == NULL ||
	    strlen(msg->session_id) > AC_UUID_STRLEN ||
	    msg->session_id[0] == '\0') {
		client_end(c, AC_CLIENT_END_PROTOCOL,
		    "handshake failed: session_init without a session id");
		return;
	}

	snprintf(c->session_id, sizeof c->session_id, "%s", msg->session_id);
	if (client_queue_ack(c, c->session_id) != 0) {
		client_end(c, AC_CLIENT_END_HANDSHAKE,
		    "handshake failed: cannot queue session_ack");
		return;
	}
	c->state = CLIENT_READY;
	c->retry_ms = 0;
	event_del(c->timeout);
	if (c->opts.heartbeat_interval > 0) {
		struct timeval	tv = { c->opts.heartbeat_interval, 0 };

		event_add(c->heartbeat, &tv);
	}
	if (c->cb.connected != NULL)
		c->cb.connected(c, c->session_id, c->arg);
}

/* Act on one verified frame. */
static void
client_dispatch(struct ac_client *c, const struct ac_message *msg)
{
	char	text[1024];

	if (c->state == CLIENT_HANDSHAKE) {
		client_handshake(c, msg);
		return;
	}
	switch (msg->type) {
	case AC_MSG_SESSION_INIT:
	case AC_MSG_SESSION_ACK:
		/* Not meaningful after the handshake: ignore. */
		break;
	case AC_MSG_ERROR:
		if (c->cb.error != NULL) {
			client_text(text, sizeof text, msg->content,
			    msg->content_len);
			c->cb.error(c, AC_FRAME_OK, text, c->arg);
		}
		break;
	case AC_MSG_DISCONNECT:
		client_disconnect_reason(msg, text, sizeof text);
		client_end(c, AC_CLIENT_END_SERVER, "%s", text);
		break;
	default:
		if (c->cb.message != NULL) {
			c->cb.message(c, msg->type, msg->content_type,
			    msg->session_id, msg->content, msg->content_len,
			    msg->header, c->arg);
		}
		break;
	}
}

/*
 * Frame whatever is buffered: the fixed header first (checks 1-3 on its 64
 * bytes alone), then, once the whole frame is here, its body (checks 4-7).
 */
static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct ac_client	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	uint8_t			 fixed[AC_FIXED_HEADER_LEN];
	struct ac_message	 msg;
	enum ac_frame_status	 st;
	const uint8_t		*frame;
	size_t			 flen;

	client_enter(c);
	for (;;) {
		if (!c->have_fh) {
			if (evbuffer_get_length(in) < AC_FIXED_HEADER_LEN)
				break;
			evbuffer_copyout(in, fixed, sizeof fixed);
			st = ac_fixed_header_parse(fixed, &c->opts.limits,
			    &c->fh);
			if (st != AC_FRAME_OK) {
				if (c->cb.error != NULL &&
				    c->state != CLIENT_HANDSHAKE) {
					char	text[256];

					snprintf(text, sizeof text, "%s: %s",
					    ac_frame_status_name(st),
					    ac_frame_status_text(st));
					c->cb.error(c, st, text, c->arg);
					if (client_gone(c, bev))
						goto out;
				}
				client_end(c, AC_CLIENT_END_PROTOCOL,
				    "%sprotocol error: %s",
				    c->state == CLIENT_HANDSHAKE ?
				    "handshake failed: " : "",
				    ac_frame_status_name(st));
				goto out;
			}
			c->have_fh = 1;
		}

		flen = ac_fixed_header_frame_len(&c->fh);
		if (evbuffer_get_length(in) < flen) {
			/* Wake up only when the whole frame is here. */
			bufferevent_setwatermark(bev, EV_READ, flen, 0);
			goto out;
		}
		if ((frame = evbuffer_pullup(in, flen)) == NULL) {
			client_end(c, AC_CLIENT_END_PROTOCOL,
			    "out of memory reading a frame");
			goto out;
		}
		st = ac_frame_decode_body(c->key, &c->fh,
		    frame + AC_FIXED_HEADER_LEN, &msg);
		if (st == AC_FRAME_OK) {
			client_dispatch(c, &msg);
			ac_message_clear(&msg);
		} else
			client_bad_frame(c, st, frame + AC_FIXED_HEADER_LEN);
		if (client_gone(c, bev))
			goto out;
		evbuffer_drain(in, flen);
		c->have_fh = 0;
	}
	bufferevent_setwatermark(bev, EV_READ, AC_FIXED_HEADER_LEN, 0);
out:
	client_leave(c);
}
