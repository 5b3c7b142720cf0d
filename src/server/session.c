/*
 * session.c - one connected client: framing by read watermarks, the
 * handshake, heartbeats, error replies, bounded output and the close.
 *
 * Lifetime (STYLE G11): session_close() ends a session at once (DEAD flag,
 * out of the registry, timers stopped, plugins told) but the memory is
 * freed later, from the reap event, so no caller up the stack touches
 * freed memory. A session with frames still to flush (an error, a
 * disconnect) lingers on srv->lingering until its output drains or the
 * linger timeout fires, and only then loses its bufferevent.
 *
 * A TLS session is the same code on a bufferevent_openssl: the handshake
 * runs inside libevent, session_init waits in the output buffer until it
 * is done, and framing works on the decrypted bytes as for tcp.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define SESSION_INIT_TEXT	"Session established"
#define SESSION_OCTET		"application/octet-stream"
#define SESSION_TEXT		"text/plain; charset=utf-8"
#define SESSION_JSON		"application/json"
#define SESSION_DRAIN_MAX	(1024 * 1024)
#define SESSION_READ_FIRST	4096
#define SESSION_READ_MAX	(64 * 1024)
#define SESSION_COPY_MAX	1024
#define SESSION_FULL_LOG_SECONDS 5

static void	session_read_cb(struct bufferevent *, void *);
static void	session_write_cb(struct bufferevent *, void *);
static void	session_flush_cb(evutil_socket_t, short, void *);
static void	session_event_cb(struct bufferevent *, short, void *);
static void	session_timer_cb(evutil_socket_t, short, void *);
static void	session_linger_write_cb(struct bufferevent *, void *);
static void	session_linger_event_cb(struct bufferevent *, short, void *);
static void	session_linger_timer_cb(evutil_socket_t, short, void *);
static void	session_frame_cleanup_cb(const void *, size_t, void *);
static void	session_drain(struct ac_session *);
static void	session_tls_shutdown(struct ac_session *);
static void	session_memory_cb(evutil_socket_t, short, void *);
static void	session_memory_add(struct server *, size_t);
static void	session_discard(struct ac_session *, const char **);
static void	session_framing_error(struct ac_session *,
		    enum ac_frame_status);

/*
 * Bytes held by every struct ac_frame alive, and bytes queued to output
 * buffers by reference (a shared frame is in several buffers but in
 * memory once). Process-wide: there is one server per process.
 */
static uint64_t	session_frame_bytes;
static uint64_t	session_ref_bytes;

/* Allocate a frame of len bytes with one reference. */
struct ac_frame *
ac_frame_new(size_t len, int type)
{
	struct ac_frame	*f;

	f = ac_xmalloc(sizeof *f + len);
	f->refs = 1;
	f->type = type;
	f->len = len;
	session_frame_bytes += len;
	return (f);
}

/* Take a reference to a frame. */
struct ac_frame *
ac_frame_ref(struct ac_frame *f)
{
	f->refs++;
	return (f);
}

/* Drop a reference to a frame; the last one frees it. */
void
ac_frame_unref(struct ac_frame *f)
{
	if (f != NULL && --f->refs == 0) {
		session_frame_bytes -= f->len;
		free(f);
	}
}

/* An output buffer is done with a referenced frame. */
static void
session_frame_cleanup_cb(const void *data, size_t len, void *arg)
{
	session_ref_bytes -= len;
	ac_frame_unref(arg);
}

/* Format a peer address: "1.2.3.4:5", "[::1]:5" or "unix". */
static void
session_format_peer(struct sockaddr *sa, char *out, size_t outlen)
{
	char	host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		struct sockaddr_in	*sin = (struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		snprintf(out, outlen, "%s:%u", host, ntohs(sin->sin_port));
		break;
	}
	case AF_INET6: {
		struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		snprintf(out, outlen, "[%s]:%u", host,
		    ntohs(sin6->sin6_port));
		break;
	}
	default:
		snprintf(out, outlen, "unix");
		break;
	}
}

/* The frame size limits for a session: small until it acknowledged. */
static const struct ac_limits *
session_limits(struct ac_session *s)
{
	if (s->flags & AC_SESS_ACKED)
		return (&s->srv->limits);
	return (&s->srv->limits_preack);
}

/* The largest whole frame a session may send now. */
static size_t
session_frame_max(struct ac_session *s)
{
	const struct ac_limits	*l = session_limits(s);

	return (AC_FIXED_HEADER_LEN + (size_t)l->max_header_len +
	    (size_t)l->max_content_len);
}

/* Set the read low watermark to need bytes. */
static void
session_want(struct ac_session *s, size_t need)
{
	size_t	high = session_frame_max(s);

	bufferevent_setwatermark(s->bev, EV_READ, need,
	    need > high ? need : high);
}

/* Take a reference to a session. */
void
session_ref(struct ac_session *s)
{
	s->refs++;
}

/* Drop a reference; at zero the session is queued for the reap event. */
void
session_unref(struct ac_session *s)
{
	struct server	*srv = s->srv;

	if (--s->refs != 0)
		return;
	TAILQ_INSERT_TAIL(&srv->dead, s, dead_entry);
	event_active(srv->reap_ev, EV_TIMEOUT, 0);
}

/* Free every session whose last reference has gone. */
void
session_reap(struct server *srv)
{
	struct ac_session	*s;

	while ((s = TAILQ_FIRST(&srv->dead)) != NULL) {
		TAILQ_REMOVE(&srv->dead, s, dead_entry);
		if (s->timer != NULL)
			event_free(s->timer);
		free(s->slots);
		free(s);
	}
}

/* Destroy every plugin slot of a session, calling the destructors. */
void
session_slots_clear(struct ac_session *s)
{
	struct session_slot	*slot;
	size_t			 i;

	for (i = 0; i < s->nslots; i++) {
		slot = &s->slots[i];
		if (slot->destroy != NULL && slot->data != NULL)
			slot->destroy(slot->data);
		slot->data = NULL;
		slot->destroy = NULL;
	}
	free(s->slots);
	s->slots = NULL;
	s->nslots = 0;
}

/*
 * A bufferevent arms its write event when output is added and disarms it
 * when the output drains: two epoll_ctl() calls per flush, and the write
 * waits for the next loop turn. A plain session therefore keeps EV_WRITE
 * disabled: queueing output marks it dirty, and once per loop turn the
 * flush event writes every dirty session's output straight to its socket
 * (session_flush_cb). Only when the socket is full is EV_WRITE enabled,
 * and session_write_cb disables it again once the output is empty.
 *
 * The flush event is made active with event_active() in the base's one
 * priority queue: libevent runs the active queue until it is empty, so an
 * event made active from a callback runs after every callback already
 * queued in this loop turn (all the reads epoll just reported), and
 * before the next epoll_wait(). Two priorities would not do better: a
 * lower-priority queue only runs in a turn in which the higher one was
 * empty, so under steady input the flush would wait an extra loop turn
 * and an epoll_wait() each time.
 *
 * TLS sessions keep the bufferevent's own writes (OpenSSL writes through
 * it). A closing session leaves the dirty list (session_close): its last
 * frames go out through the linger path, which enables EV_WRITE itself.
 */
static void
session_dirty(struct ac_session *s)
{
	struct server	*srv = s->srv;

	if ((s->flags & (AC_SESS_PLAIN|AC_SESS_DEAD|AC_SESS_DIRTY)) !=
	    AC_SESS_PLAIN)
		return;
	/* Waiting for the socket: the write event will flush it. */
	if (bufferevent_get_enabled(s->bev) & EV_WRITE)
		return;
	s->flags |= AC_SESS_DIRTY;
	TAILQ_INSERT_TAIL(&srv->dirty, s, dirty_entry);
	event_active(srv->flush_ev, EV_TIMEOUT, 0);
}

/* Take a session off the dirty list. */
static void
session_undirty(struct ac_session *s)
{
	if (s->flags & AC_SESS_DIRTY) {
		TAILQ_REMOVE(&s->srv->dirty, s, dirty_entry);
		s->flags &= ~AC_SESS_DIRTY;
	}
}

/* Write a plain session's output until it is empty or the socket full. */
static void
session_flush(struct ac_session *s)
{
	struct evbuffer	*out = bufferevent_get_output(s->bev);
	evutil_socket_t	 fd = bufferevent_getfd(s->bev);
	int		 n, error;

	/* A socket bufferevent keeps the output's start frozen outside its
	 * own writes. */
	evbuffer_unfreeze(out, 1);
	for (;;) {
		if (evbuffer_get_length(out) == 0) {
			evbuffer_freeze(out, 1);
			return;
		}
		errno = 0;
		n = evbuffer_write(out, fd);
		error = errno;
		if (n > 0 || (n == -1 && error == EINTR))
			continue;
		evbuffer_freeze(out, 1);
		if (n == -1 && error != EAGAIN && error != EWOULDBLOCK) {
			log_debug("session %s: %s peer=%s", s->id,
			    strerror(error), s->peer);
			session_close(s, AC_CLOSE_IO_ERROR, NULL);
			return;
		}
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
}

/* Once per loop turn: flush every dirty session. */
static void
session_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server		*srv = arg;
	struct ac_session	*s;

	while ((s = TAILQ_FIRST(&srv->dirty)) != NULL) {
		session_undirty(s);
		session_flush(s);
	}
}

/* A full socket took the rest of a plain session's output. */
static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
}

/*
 * The output buffer of a session that can take len more bytes, or NULL:
 * a closing session takes nothing (unless bypass, for its last frames)
 * and one past max_output_buffer is closed as a slow consumer.
 */
static struct evbuffer *
session_output_room(struct ac_session *s, size_t len, int bypass)
{
	struct evbuffer	*out;

	if ((s->flags & AC_SESS_DEAD) && !bypass)
		return (NULL);
	out = bufferevent_get_output(s->bev);
	if (!bypass && evbuffer_get_length(out) + len >
	    s->srv->cfg->max_output_buffer) {
		session_close(s, AC_CLOSE_SLOW_CONSUMER, "slow consumer");
		return (NULL);
	}
	return (out);
}

/* Account for a frame of len bytes just queued, and schedule its write. */
static void
session_queued(struct ac_session *s, size_t len, int type)
{
	session_dirty(s);
	session_memory_add(s->srv, len);
	s->srv->stats.bytes_out += len;
	if (type >= 0 && type < AC_MSG_TYPE_COUNT)
		s->srv->stats.frames_out[type]++;
}

/* Queue the bytes of buf (drained) to a session, bounded by its limit. */
static int
session_queue_buffer(struct ac_session *s, struct evbuffer *buf, int type,
    int bypass)
{
	struct evbuffer	*out;
	size_t		 len = evbuffer_get_length(buf);

	if ((out = session_output_room(s, len, bypass)) == NULL)
		return (-1);
	evbuffer_add_buffer(out, buf);
	session_queued(s, len, type);
	return (0);
}

/* Encode a frame for s (with its id) and queue it; bypass skips the
 * limit and the DEAD check, for the last frames of a closing session. */
static int
session_send_internal(struct ac_session *s, enum ac_msg_type type,
    const char *content_type, struct json_object *extra,
    const void *content, size_t content_len, int bypass)
{
	struct evbuffer	*buf;
	int		 r;

	if (s->bev == NULL)
		return (-1);
	buf = evbuffer_new();
	if (ac_frame_encode(buf, s->srv->cfg->key, type, content_type, s->id,
	    extra, content, content_len) == -1) {
		evbuffer_free(buf);
		return (-1);
	}
	r = session_queue_buffer(s, buf, type, bypass);
	evbuffer_free(buf);
	return (r);
}

/* Encode and queue a new frame to a session; 0 or -1. */
int
session_send(struct ac_session *s, enum ac_msg_type type,
    const char *content_type, struct json_object *extra,
    const void *content, size_t content_len)
{
	return (session_send_internal(s, type, content_type, extra, content,
	    content_len, 0));
}

/*
 * Queue a received frame to a session. A reference costs a new evbuffer
 * chain (a malloc, and a free when it is written) per recipient, while a
 * copy of a small frame usually lands in space left in the output's last
 * chain: so frames up to SESSION_COPY_MAX bytes are copied and larger
 * ones shared by reference.
 */
int
session_queue_frame(struct ac_session *s, struct ac_frame *f)
{
	struct evbuffer	*out;

	if ((out = session_output_room(s, f->len, 0)) == NULL)
		return (-1);
	if (f->len <= SESSION_COPY_MAX) {
		if (evbuffer_add(out, f->bytes, f->len) == -1)
			return (-1);
	} else {
		ac_frame_ref(f);
		if (evbuffer_add_reference(out, f->bytes, f->len,
		    session_frame_cleanup_cb, f) == -1) {
			ac_frame_unref(f);
			return (-1);
		}
		session_ref_bytes += f->len;
	}
	session_queued(s, f->len, f->type);
	return (0);
}

/* Queue the disconnect frame with a reason text (ignoring the limit). */
static void
session_send_disconnect(struct ac_session *s, const char *text)
{
	struct evbuffer	*content = evbuffer_new();

	if (content != NULL && ac_disconnect_content(content, text) == 0)
		session_send_internal(s, AC_MSG_DISCONNECT, SESSION_JSON, NULL,
		    evbuffer_pullup(content, -1), evbuffer_get_length(content),
		    1);
	if (content != NULL)
		evbuffer_free(content);
}

/* Queue an error frame: "<token>: <text>" with an "error" member. */
static int
session_send_error(struct ac_session *s, const char *token, const char *text,
    int bypass)
{
	struct json_object	*extra;
	char			*content;
	int			 r;

	extra = json_object_new_object();
	json_object_object_add(extra, "error", json_object_new_string(token));
	ac_xasprintf(&content, "%s: %s", token, text);
	r = session_send_internal(s, AC_MSG_ERROR, SESSION_TEXT, extra,
	    content, strlen(content), bypass);
	free(content);
	json_object_put(extra);
	return (r);
}

/*
 * Send TLS close_notify before the socket closes, so the peer can tell
 * our close from a cut connection. One non-blocking attempt: if the
 * socket cannot take it now, the peer sees a plain EOF, which it must
 * accept anyway (libevent does not send close_notify on its own).
 */
static void
session_tls_shutdown(struct ac_session *s)
{
	SSL	*ssl;

	if ((ssl = bufferevent_openssl_get_ssl(s->bev)) == NULL ||
	    evbuffer_get_length(bufferevent_get_output(s->bev)) != 0)
		return;
	SSL_shutdown(ssl);
	ERR_clear_error();
}

/*
 * Read and discard what a flooding peer has sent and we never read, up to
 * SESSION_DRAIN_MAX bytes and never waiting. Closing a socket with unread
 * input makes the kernel send a reset instead of a FIN, and a reset can
 * destroy our last frames (the error, the disconnect) in the peer's
 * receive queue before it reads them.
 */
static void
session_drain(struct ac_session *s)
{
	char		buf[16384];
	evutil_socket_t	fd = bufferevent_getfd(s->bev);
	size_t		total = 0;
	ssize_t		n;

	if (fd == -1)
		return;
	while (total < SESSION_DRAIN_MAX) {
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n <= 0)
			break;
		total += n;
	}
}

/*
 * Free what a session closed over max_memory holds, now: its input, and
 * its unsent output (it was not reading it). Then no goodbye can follow,
 * as the peer may have received part of a frame; without unsent output it
 * still gets the disconnect frame.
 */
static void
session_discard(struct ac_session *s, const char **disconnect_text)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	struct evbuffer	*out = bufferevent_get_output(s->bev);

	evbuffer_drain(in, evbuffer_get_length(in));
	if (evbuffer_get_length(out) == 0)
		return;
	/* A socket bufferevent keeps the output's start frozen. */
	evbuffer_unfreeze(out, 1);
	evbuffer_drain(out, evbuffer_get_length(out));
	*disconnect_text = NULL;
}

/* Free the bufferevent and the linger timer, and drop the alive ref. */
static void
session_finish(struct ac_session *s)
{
	struct server	*srv = s->srv;

	if (s->flags & AC_SESS_LINGER) {
		TAILQ_REMOVE(&srv->lingering, s, entry);
		s->flags &= ~AC_SESS_LINGER;
	}
	if (s->linger != NULL) {
		event_free(s->linger);
		s->linger = NULL;
	}
	if (s->bev != NULL && (s->flags & AC_SESS_DRAIN))
		session_drain(s);
	if (s->bev != NULL && (s->flags & AC_SESS_TLS_UP))
		session_tls_shutdown(s);
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	iplimit_release(&srv->iplimit, s->ip);	/* its socket is closed */
	s->ip = NULL;
	session_unref(s);
	server_maybe_exit(srv);
}

/*
 * Close a session now: it leaves the registry, its timer stops, plugins
 * are told, and it gets no more input. disconnect_text, if not NULL, is
 * sent in a last `disconnect` frame; whatever is queued is then flushed
 * (at most for the linger time) before the socket closes.
 */
void
session_close(struct ac_session *s, enum ac_close_reason reason,
    const char *disconnect_text)
{
	struct server	*srv = s->srv;
	const char	*token = stats_reason_name(reason);

	if (s->flags & AC_SESS_DEAD)
		return;
	s->flags |= AC_SESS_DEAD;
	session_undirty(s);
	if (!(s->flags & AC_SESS_REJECTED)) {
		registry_remove(&srv->reg, s);
		srv->stats.sessions_current--;
		if (s->flags & AC_SESS_ACKED)
			srv->stats.sessions_acked--;
	}
	srv->stats.closes[reason]++;
	event_del(s->timer);
	s->need = 0;
	/* A connect flood would write a line each: the refusal is logged at
	 * a bounded rate instead (iplimit.c, session_log_full). */
	if (reason == AC_CLOSE_PER_IP_LIMIT || reason == AC_CLOSE_SERVER_FULL)
		log_debug("session %s closed reason=%s peer=%s", s->id, token,
		    s->peer);
	else
		log_info("session %s closed reason=%s peer=%s", s->id, token,
		    s->peer);

	if (reason == AC_CLOSE_MEMORY_LIMIT)
		session_discard(s, &disconnect_text);
	if (disconnect_text != NULL)
		session_send_disconnect(s, disconnect_text);

	if (s->flags & AC_SESS_OPENED)
		plugin_set_session_close(srv, s, token);
	session_slots_clear(s);
	s->flags |= AC_SESS_NOSLOTS;

	/* Nothing more can be written on a broken connection. */
	if (reason == AC_CLOSE_IO_ERROR || reason == AC_CLOSE_TLS_ERROR)
		s->flags &= ~AC_SESS_TLS_UP;
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 ||
	    reason == AC_CLOSE_IO_ERROR || reason == AC_CLOSE_TLS_ERROR) {
		session_finish(s);
		return;
	}

	/*
	 * Flush what is queued, then free (close_on_finished_writecb). The
	 * last frames say why the session ends: discard unread input before
	 * the close, so that no reset destroys them (session_drain).
	 */
	s->flags |= AC_SESS_DRAIN;
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	bufferevent_setcb(s->bev, NULL, session_linger_write_cb,
	    session_linger_event_cb, s);
	bufferevent_enable(s->bev, EV_WRITE);
	s->linger = evtimer_new(srv->base, session_linger_timer_cb, s);
	evtimer_add(s->linger, srv->linger_tv);
	s->flags |= AC_SESS_LINGER;
	TAILQ_INSERT_TAIL(&srv->lingering, s, entry);
}

/* The last frames of a closing session are written. */
static void
session_linger_write_cb(struct bufferevent *bev, void *arg)
{
	struct ac_session	*s = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_finish(s);
}

/* The peer of a closing session went away before its last frames. */
static void
session_linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	session_finish(arg);
}

/* A closing session took too long to flush: drop what is left. */
static void
session_linger_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ac_session	*s = arg;

	log_debug("session %s: dropping %zu unsent bytes", s->id,
	    evbuffer_get_length(bufferevent_get_output(s->bev)));
	session_finish(s);
}

/* Free every lingering session at once (the end of shutdown). */
void
session_free_lingering(struct server *srv)
{
	struct ac_session	*s;

	while ((s = TAILQ_FIRST(&srv->lingering)) != NULL)
		session_finish(s);
}

/* Bytes a session holds in input (or all of the frame it is receiving)
 * and in unsent output. */
static void
session_usage(struct ac_session *s, size_t *in, size_t *out)
{
	*in = *out = 0;
	if (s->bev == NULL)
		return;
	*in = evbuffer_get_length(bufferevent_get_input(s->bev));
	if (s->need > *in)
		*in = s->need;
	*out = evbuffer_get_length(bufferevent_get_output(s->bev));
}

/*
 * The bytes every session holds, closing ones included: input, the rest
 * of the frames being received (a peer announces a frame before it sends
 * it), unsent output, with each frame shared by several output buffers
 * counted once. A count over every session: it runs when a running
 * estimate passes max_memory (session_memory_add) and for the metrics.
 */
uint64_t
session_memory(struct server *srv)
{
	struct ac_session	*s;
	uint64_t		 total = session_frame_bytes;
	size_t			 in, out;

	TAILQ_FOREACH(s, &srv->reg.list, entry) {
		session_usage(s, &in, &out);
		total += in + out;
	}
	TAILQ_FOREACH(s, &srv->lingering, entry) {
		session_usage(s, &in, &out);
		total += in + out;
	}
	/* A shared frame is in total once, and in each buffer it is queued
	 * to; part of it may have been written already. */
	if (total < session_ref_bytes)
		return (0);
	return (total - session_ref_bytes);
}

/*
 * Add n bytes to the running estimate (bytes queued, frames announced).
 * Writes are not followed one by one: the estimate only grows, and once
 * it passes max_memory the memory event counts what is really held.
 */
static void
session_memory_add(struct server *srv, size_t n)
{
	srv->memory_estimate += n;
	if (srv->memory_estimate > srv->cfg->max_memory &&
	    srv->memory_ev != NULL)
		event_active(srv->memory_ev, EV_TIMEOUT, 0);
}

/* One session and the bytes it holds, for sorting. */
struct session_hog {
	struct ac_session	*s;
	size_t			 in;
	size_t			 out;
};

/* Sort sessions by their unsent output, most first. */
static int
session_hog_out_cmp(const void *a, const void *b)
{
	const struct session_hog	*ha = a, *hb = b;

	if (ha->out != hb->out)
		return (ha->out > hb->out ? -1 : 1);
	return (0);
}

/* Sort sessions by their input, most first. */
static int
session_hog_in_cmp(const void *a, const void *b)
{
	const struct session_hog	*ha = a, *hb = b;

	if (ha->in != hb->in)
		return (ha->in > hb->in ? -1 : 1);
	return (0);
}

/*
 * Close the sessions of hogs, in order, that hold some of what which
 * picks (input or output), until *total is down to target. Returns how
 * many were closed.
 */
static size_t
session_memory_shed(struct session_hog *hogs, size_t n, int output,
    uint64_t *total, uint64_t target)
{
	struct ac_session	*s;
	size_t			 i, closed = 0, bytes;

	for (i = 0; i < n && *total > target; i++) {
		s = hogs[i].s;
		bytes = output ? hogs[i].out : hogs[i].in;
		if (bytes == 0)
			break;
		if (s->bev == NULL)
			continue;	/* closed in an earlier pass */
		*total -= hogs[i].in + hogs[i].out < *total ?
		    hogs[i].in + hogs[i].out : *total;
		closed++;
		if (s->flags & AC_SESS_LINGER) {
			log_info("session %s: dropping %zu bytes for "
			    "max_memory peer=%s", s->id, hogs[i].out, s->peer);
			session_finish(s);
		} else
			session_close(s, AC_CLOSE_MEMORY_LIMIT,
			    "Server memory limit");
	}
	return (closed);
}

/*
 * The estimate passed max_memory: count what the sessions really hold.
 * Past 7/8 of max_memory, close sessions until the count is back under
 * 3/4 (reason memory-limit): first those with the most unsent output,
 * which are not reading what is sent to them, then, if that is not
 * enough, those holding the most input (frames announced and sent
 * slowly). A session whose input only waits to be handled (a sender
 * paused by session_read_cb) is so spared while others hold output.
 *
 * With that margin counts are rare: after one, at least max_memory / 8
 * bytes must be added before the next (unless nothing is left to close).
 * It runs from the event loop, after the callbacks of this turn and the
 * flush that writes their output, so that sessions which keep up hold
 * nothing when it counts.
 */
static void
session_memory_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server		*srv = arg;
	struct ac_session	*s;
	struct session_hog	*hogs;
	uint64_t		 total, max = srv->cfg->max_memory;
	uint64_t		 target = max - max / 4;
	size_t			 n = 0, i, closed;

	total = session_memory(srv);
	srv->memory_estimate = total;
	if (total <= max - max / 8)
		return;

	TAILQ_FOREACH(s, &srv->lingering, entry)
		n++;
	hogs = ac_xreallocarray(NULL, srv->reg.count + n + 1, sizeof *hogs);
	n = 0;
	TAILQ_FOREACH(s, &srv->reg.list, entry) {
		hogs[n].s = s;
		session_usage(s, &hogs[n].in, &hogs[n].out);
		n++;
	}
	TAILQ_FOREACH(s, &srv->lingering, entry) {
		hogs[n].s = s;
		session_usage(s, &hogs[n].in, &hogs[n].out);
		n++;
	}
	for (i = 0; i < n; i++)
		session_ref(hogs[i].s);

	log_warnx("%llu bytes buffered, over 7/8 of max_memory (%llu): "
	    "closing the sessions that hold the most",
	    (unsigned long long)total, (unsigned long long)max);
	qsort(hogs, n, sizeof *hogs, session_hog_out_cmp);
	closed = session_memory_shed(hogs, n, 1, &total, target);
	if (total > target) {
		qsort(hogs, n, sizeof *hogs, session_hog_in_cmp);
		closed += session_memory_shed(hogs, n, 0, &total, target);
	}
	for (i = 0; i < n; i++)
		session_unref(hogs[i].s);
	free(hogs);
	srv->memory_estimate = session_memory(srv);
	log_info("closed %zu session%s for max_memory: %llu bytes buffered "
	    "now", closed, closed == 1 ? "" : "s",
	    (unsigned long long)srv->memory_estimate);
}

/* Answer an error; too many in a row close the session. */
static void
session_error_reply(struct ac_session *s, const char *token,
    const char *text)
{
	struct server	*srv = s->srv;

	log_debug("session %s: error %s peer=%s", s->id, token, s->peer);
	if (session_send_error(s, token, text, 0) == -1)
		return;		/* closed as a slow consumer */
	if (++s->errors >= srv->cfg->max_errors)
		session_close(s, AC_CLOSE_TOO_MANY_ERRORS, "Too many errors");
}

/* Count and answer a session error (its token from stats.c). */
static void
session_error(struct ac_session *s, enum ac_session_error e, const char *text)
{
	s->srv->stats.session_errors[e]++;
	session_error_reply(s, stats_error_name(e), text);
}

/* Arm the session's timer: heartbeat once acknowledged, else handshake. */
static void
session_arm(struct ac_session *s)
{
	if (s->flags & AC_SESS_ACKED)
		event_add(s->timer, s->srv->heartbeat_tv);
	else
		event_add(s->timer, s->srv->handshake_tv);
}

/* The session's timer fired: it never acknowledged, or fell silent. */
static void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ac_session	*s = arg;

	if (s->flags & AC_SESS_DEAD)
		return;
	if (s->flags & AC_SESS_ACKED)
		session_close(s, AC_CLOSE_HEARTBEAT_TIMEOUT,
		    "Heartbeat timeout");
	else
		session_close(s, AC_CLOSE_HANDSHAKE_TIMEOUT,
		    "Handshake timeout");
}

/*
 * Non-zero if the frame's session_id is this session's: the same 36
 * bytes. Not a C string comparison, which would stop at a NUL the JSON
 * spelled \u0000, and not case-insensitive: the id is relayed to others
 * as its sender's, so it must be exactly the one the server gave.
 */
static int
session_id_matches(struct ac_session *s, const struct ac_message *msg)
{
	struct json_object	*o;

	if (msg->header == NULL ||
	    !json_object_object_get_ex(msg->header, "session_id", &o) ||
	    !json_object_is_type(o, json_type_string))
		return (0);
	return (json_object_get_string_len(o) == AC_UUID_STRLEN &&
	    memcmp(json_object_get_string(o), s->id, AC_UUID_STRLEN) == 0);
}

/*
 * Charge a frame to the session's rate limits. Returns 0 if it may pass,
 * or 1 if it is dropped: then the peer may be told (at most once a
 * second) or, for sustained abuse, the session is closed.
 */
static int
session_rate_limited(struct ac_session *s, const struct ac_message *msg)
{
	struct server		*srv = s->srv;
	struct timeval		 now;
	const char		*which;
	char			 text[128];
	unsigned long long	 rate;

	event_base_gettimeofday_cached(srv->base, &now);
	switch (ratelimit_frame(&s->rl, srv->cfg, &now, msg->content_len,
	    &which)) {
	case RATELIMIT_PASS:
		return (0);
	case RATELIMIT_DROP:
		break;
	case RATELIMIT_DROP_REPLY:
		rate = strcmp(which, "max_byte_rate") == 0 ?
		    srv->cfg->max_byte_rate : srv->cfg->max_message_rate;
		snprintf(text, sizeof text, "over %s (%llu a second): frame "
		    "dropped", which, rate);
		log_debug("session %s: rate limited (%s) peer=%s", s->id,
		    which, s->peer);
		session_send_error(s, stats_error_name(AC_SERR_RATE_LIMITED),
		    text, 0);
		break;
	case RATELIMIT_ABUSE:
		log_info("session %s: %llu frames dropped over %s peer=%s",
		    s->id, (unsigned long long)s->rl.dropped, which, s->peer);
		s->flags |= AC_SESS_DRAIN;
		session_close(s, AC_CLOSE_RATE_LIMIT, "Rate limit exceeded");
		break;
	}
	srv->stats.session_errors[AC_SERR_RATE_LIMITED]++;
	if (s->rl.dropped == 1 && !(s->flags & AC_SESS_DEAD))
		log_info("session %s: over %s, dropping frames peer=%s",
		    s->id, which, s->peer);
	return (1);
}

/* Act on one verified frame. */
static void
session_dispatch(struct ac_session *s, const struct ac_message *msg,
    struct ac_frame *f)
{
	struct server	*srv = s->srv;

	/* Every frame but a goodbye counts toward the rates (ratelimit.c). */
	if (msg->type != AC_MSG_DISCONNECT && session_rate_limited(s, msg))
		return;

	/*
	 * Who may send what (PROTOCOL.md, "Who may send what"): a client
	 * sends session_ack once, then heartbeat, message, chunk and
	 * disconnect. session_init and error are the server's frames: a
	 * peer without the key can only have them by reflecting ours, so
	 * they, and a second session_ack, are errors that count toward
	 * max_errors and never keep a session alive.
	 */
	switch (msg->type) {
	case AC_MSG_DISCONNECT:
		log_debug("session %s: disconnect from client", s->id);
		session_close(s, AC_CLOSE_CLIENT_DISCONNECT, NULL);
		return;
	case AC_MSG_SESSION_INIT:
	case AC_MSG_ERROR:
		session_error(s, AC_SERR_UNEXPECTED_FRAME, msg->type ==
		    AC_MSG_ERROR ? "a client does not send error frames" :
		    "a client does not send session_init");
		return;
	case AC_MSG_SESSION_ACK:
		if (s->flags & AC_SESS_ACKED) {
			session_error(s, AC_SERR_UNEXPECTED_FRAME,
			    "the session is already acknowledged");
			return;
		}
		if (!session_id_matches(s, msg)) {
			session_error(s, AC_SERR_SESSION_MISMATCH, "session_id "
			    "does not match this session");
			return;
		}
		s->errors = 0;
		s->flags |= AC_SESS_ACKED;
		srv->stats.sessions_acked++;
		log_debug("session %s acknowledged peer=%s", s->id, s->peer);
		session_arm(s);
		plugin_set_session_open(srv, s, msg);
		return;
	default:
		break;
	}

	if (!(s->flags & AC_SESS_ACKED)) {
		session_error(s, AC_SERR_NOT_ACKNOWLEDGED, "the session is not "
		    "acknowledged yet: send session_ack first");
		return;
	}
	if (!session_id_matches(s, msg)) {
		session_error(s, AC_SERR_SESSION_MISMATCH,
		    "session_id does not match this session");
		return;
	}
	s->errors = 0;
	session_arm(s);

	if (msg->type == AC_MSG_HEARTBEAT) {
		if (msg->content_len == 4 && memcmp(msg->content, "ping", 4) == 0)
			session_send(s, AC_MSG_HEARTBEAT, SESSION_OCTET, NULL,
			    "pong", 4);
		return;
	}
	/* message and chunk go through the plugin chain. */
	plugin_set_message(srv, s, msg, f);
}

/* Decode and act on one whole frame. */
static void
session_frame(struct ac_session *s, const struct ac_fixed_header *fh,
    struct ac_frame *f)
{
	struct server		*srv = s->srv;
	struct ac_message	 msg;
	enum ac_frame_status	 st;

	srv->stats.bytes_in += f->len;
	memset(&msg, 0, sizeof msg);
	st = ac_frame_decode_body(srv->cfg->key, fh,
	    f->bytes + AC_FIXED_HEADER_LEN, &msg);
	if (st != AC_FRAME_OK) {
		stats_frame_error(&srv->stats, st);
		session_error_reply(s, ac_frame_status_name(st),
		    ac_frame_status_text(st));
		return;
	}
	f->type = msg.type;
	srv->stats.frames_in[msg.type]++;
	session_dispatch(s, &msg, f);
	ac_message_clear(&msg);
}

/*
 * libevent 2.1's evbuffer_read() takes at most 4096 bytes a call
 * (EVBUFFER_MAX_READ), so a bufferevent needs a read system call and a
 * loop turn for every 4 KiB that arrives: for frames of a few KiB that is
 * a read and a callback per frame. The read callback therefore tops the
 * input up itself, straight from the socket, into space reserved in the
 * input buffer (no copy), until the socket would block or the input holds
 * one largest frame, the bound the high watermark keeps (see
 * max_content_size in asyncchat.conf(5)): never more, as each read asks
 * only for what is left under the bound. Reads start at 4 KiB, the space
 * libevent's own read usually leaves in its chain, and double up to
 * SESSION_READ_MAX while they come back full, so that an idle session
 * answering a ping does not allocate a large chain. The watermarks and
 * the framing stay as they are: they only decide when this callback runs.
 *
 * This is for plain sockets only: a TLS session must read through
 * OpenSSL, which bufferevent_openssl does. Raising libevent's own limits
 * instead (bufferevent_set_max_single_read) does not help: evbuffer_read()
 * still caps each call at 4096 bytes.
 *
 * Returns 0 if the socket would block or the bound is reached, or -1 at
 * end of file or on an error, with *reason set: the caller handles the
 * frames already buffered, then closes the session.
 */
static int
session_read_socket(struct ac_session *s, struct evbuffer *in,
    enum ac_close_reason *reason)
{
	struct evbuffer_iovec	 vec[2];
	struct iovec		 iov[2];
	evutil_socket_t		 fd = bufferevent_getfd(s->bev);
	size_t			 bound = session_frame_max(s);
	size_t			 have, want, size = SESSION_READ_FIRST, left;
	ssize_t			 n;
	int			 nvec, i, error;

	if (fd == -1)
		return (0);
	for (;;) {
		have = evbuffer_get_length(in);
		if (have >= bound)
			return (0);
		want = bound - have < size ? bound - have : size;
		nvec = evbuffer_reserve_space(in, want, vec, 2);
		if (nvec <= 0)
			return (0);
		left = want;
		for (i = 0; i < nvec; i++) {
			iov[i].iov_base = vec[i].iov_base;
			iov[i].iov_len = vec[i].iov_len < left ?
			    vec[i].iov_len : left;
			left -= iov[i].iov_len;
		}
		n = readv(fd, iov, nvec);
		if (n <= 0) {
			error = errno;
			evbuffer_commit_space(in, vec, 0);
			if (n == 0) {
				*reason = AC_CLOSE_EOF;
				return (-1);
			}
			if (error == EINTR)
				continue;
			if (error == EAGAIN || error == EWOULDBLOCK)
				return (0);
			log_debug("session %s: %s peer=%s", s->id,
			    strerror(error), s->peer);
			*reason = AC_CLOSE_IO_ERROR;
			return (-1);
		}
		left = n;
		for (i = 0; i < nvec && left > 0; i++) {
			vec[i].iov_len = iov[i].iov_len < left ?
			    iov[i].iov_len : left;
			left -= vec[i].iov_len;
		}
		evbuffer_commit_space(in, vec, i);
		if ((size_t)n < want)
			return (0);	/* the socket is empty for now */
		if (size < SESSION_READ_MAX)
			size *= 2;
	}
}

/*
 * A fixed header failed checks 1-3: the stream cannot be framed any more.
 * Send one error frame and close. Before session_ack the limits are the
 * small ones of the handshake, and the text says so.
 */
static void
session_framing_error(struct ac_session *s, enum ac_frame_status st)
{
	struct server		*srv = s->srv;
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	const struct ac_limits	*l = session_limits(s);
	char			 text[160];

	stats_frame_error(&srv->stats, st);
	log_info("session %s: %s peer=%s", s->id, ac_frame_status_name(st),
	    s->peer);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (!(s->flags & AC_SESS_ACKED) &&
	    (st == AC_FRAME_HEADER_TOO_LARGE ||
	    st == AC_FRAME_CONTENT_TOO_LARGE))
		snprintf(text, sizeof text, "before session_ack a frame has "
		    "at most %u header and %llu content bytes",
		    l->max_header_len, (unsigned long long)l->max_content_len);
	else
		snprintf(text, sizeof text, "%s", ac_frame_status_text(st));
	session_send_error(s, ac_frame_status_name(st), text, 1);
	session_close(s, AC_CLOSE_PROTOCOL_ERROR, NULL);
}

/*
 * Every complete frame in the input is handled in turn; the low watermark
 * is then set to what the next frame needs, so that this runs again only
 * when it can make progress (STYLE G15). A plain socket is read here too,
 * past libevent's 4 KiB a read (session_read_socket).
 */
static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	struct ac_session	*s = arg;
	struct server		*srv = s->srv;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct ac_fixed_header	 fh;
	struct ac_frame		*f;
	enum ac_frame_status	 st;
	enum ac_close_reason	 reason = AC_CLOSE_EOF;
	uint8_t			 hdr[AC_FIXED_HEADER_LEN];
	size_t			 len, need, flen;
	int			 ended = 0;

	if (s->flags & AC_SESS_DEAD)
		return;
	/*
	 * libevent reads what FIONREAD reports, at most 4096 bytes: if it
	 * added less since the last callback, it emptied the socket, and
	 * another read would only return EAGAIN.
	 */
	if ((s->flags & AC_SESS_PLAIN) &&
	    evbuffer_get_length(in) - s->inlen >= SESSION_READ_FIRST) {
		/* A socket bufferevent keeps the input's end frozen
		 * outside its own reads. */
		evbuffer_unfreeze(in, 0);
		ended = session_read_socket(s, in, &reason) == -1;
		evbuffer_freeze(in, 0);
	}
	for (;;) {
		len = evbuffer_get_length(in);
		if (len < AC_FIXED_HEADER_LEN) {
			need = AC_FIXED_HEADER_LEN;
			break;
		}
		evbuffer_copyout(in, hdr, sizeof hdr);
		st = ac_fixed_header_parse(hdr, session_limits(s), &fh);
		if (st != AC_FRAME_OK) {
			session_framing_error(s, st);
			return;
		}
		flen = ac_fixed_header_frame_len(&fh);
		if (len < flen) {
			need = flen;
			break;
		}
		/* Bounded by the limits just checked, so no peer can make
		 * this allocation fail. */
		f = ac_frame_new(flen, -1);
		evbuffer_remove(in, f->bytes, flen);
		session_frame(s, &fh, f);
		ac_frame_unref(f);
		if (s->flags & AC_SESS_DEAD)
			return;
		/*
		 * Past max_memory, leave the rest for the next loop turn:
		 * the memory event counts (and closes whoever holds the
		 * most) at the end of this one, after the flush. One read
		 * can hold thousands of small frames, each copied to every
		 * recipient; without this pause their fan-out would all be
		 * queued before anything is counted.
		 */
		if (srv->memory_estimate > srv->cfg->max_memory && !ended) {
			bufferevent_trigger(bev, EV_READ,
			    BEV_TRIG_IGNORE_WATERMARKS|BEV_TRIG_DEFER_CALLBACKS);
			need = AC_FIXED_HEADER_LEN;
			break;
		}
	}
	if (ended) {
		session_close(s, reason, NULL);
		return;
	}
	s->inlen = evbuffer_get_length(in);
	/* A frame announced and not all here yet will soon be held whole. */
	if (need > AC_FIXED_HEADER_LEN && need != s->need) {
		s->need = need;
		session_memory_add(srv, need - s->inlen);
	} else if (need == AC_FIXED_HEADER_LEN)
		s->need = 0;
	session_want(s, need);
}

/* The TLS handshake finished: say with what, at debug level. */
static void
session_tls_up(struct ac_session *s)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(s->bev);
	X509		*cert;
	char		 subject[256];

	s->flags |= AC_SESS_TLS_UP;
	if (ssl == NULL)
		return;
	subject[0] = '\0';
	if ((cert = SSL_get1_peer_certificate(ssl)) != NULL) {
		X509_NAME_oneline(X509_get_subject_name(cert), subject,
		    sizeof subject);
		X509_free(cert);
	}
	log_debug("session %s: TLS %s %s%s%s peer=%s", s->id,
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl),
	    *subject != '\0' ? " client " : "", subject, s->peer);
}

/*
 * An error on a TLS session: log the OpenSSL reasons (and why a
 * certificate was refused). Returns 1 if it is a TLS failure, 0 if it is
 * a plain socket error after a good handshake.
 */
static int
session_tls_failed(struct ac_session *s, int err)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(s->bev);
	unsigned long	 e;
	long		 vr;
	char		 why[512], one[256];
	size_t		 len = 0;

	why[0] = '\0';
	while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
		/* libevent also queues SSL_get_error() codes: not reasons. */
		if (ERR_GET_LIB(e) == 0)
			continue;
		tls_error_string(e, one, sizeof one);
		if (strstr(why, one) != NULL)
			continue;
		len = strlen(why);
		snprintf(why + len, sizeof why - len, "%s%s",
		    len != 0 ? "; " : "", one);
	}
	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		len = strlen(why);
		snprintf(why + len, sizeof why - len, "%s%s",
		    len != 0 ? ": " : "", X509_verify_cert_error_string(vr));
	}
	if (why[0] == '\0') {
		if (s->flags & AC_SESS_TLS_UP)
			return (0);
		snprintf(why, sizeof why, "%s", err != 0 ?
		    evutil_socket_error_to_string(err) : "connection closed");
	}
	log_info("session %s: TLS %s failed: %s peer=%s", s->id,
	    (s->flags & AC_SESS_TLS_UP) ? "connection" : "handshake", why,
	    s->peer);
	ERR_clear_error();
	return (1);
}

/* End of file, a socket error or a timeout on a live session; for TLS
 * also the end of the handshake. */
static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ac_session	*s = arg;
	int			 err = EVUTIL_SOCKET_ERROR();

	if (s->flags & AC_SESS_DEAD)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		session_tls_up(s);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && strcmp(s->transport, "tls") == 0 &&
	    session_tls_failed(s, err)) {
		session_close(s, AC_CLOSE_TLS_ERROR, NULL);
		return;
	}
	if (what & BEV_EVENT_EOF)
		session_close(s, AC_CLOSE_EOF, NULL);
	else if (what & BEV_EVENT_ERROR) {
		log_debug("session %s: %s peer=%s", s->id,
		    evutil_socket_error_to_string(err), s->peer);
		session_close(s, AC_CLOSE_IO_ERROR, NULL);
	}
}

/*
 * Log a connection refused for max_clients: at most one line every
 * SESSION_FULL_LOG_SECONDS, saying how many refusals it stands for, so
 * that a connect flood against a full server cannot flood the log.
 */
static void
session_log_full(struct server *srv, const char *peer,
    const struct timeval *now)
{
	if (srv->full_logged.tv_sec != 0 &&
	    now->tv_sec - srv->full_logged.tv_sec < SESSION_FULL_LOG_SECONDS) {
		srv->full_unlogged++;
		return;
	}
	if (srv->full_unlogged != 0)
		log_warnx("server full (%u sessions): refusing %s, and %u "
		    "more since the last line", srv->cfg->max_clients, peer,
		    srv->full_unlogged);
	else
		log_warnx("server full (%u sessions): refusing %s",
		    srv->cfg->max_clients, peer);
	srv->full_logged = *now;
	srv->full_unlogged = 0;
}

/* A new connection: make its session and send session_init (or, past
 * max_clients, the server_full error; past max_clients_per_ip,
 * too_many_connections). */
void
session_accept(struct server *srv, int fd, struct sockaddr *sa,
    socklen_t salen, const char *transport, struct ssl_ctx_st *tls)
{
	struct ac_session	*s;
	struct iplimit_entry	*ip;
	struct timeval		 now;
	SSL			*ssl;

	s = ac_xcalloc(1, sizeof *s);
	s->srv = srv;
	s->refs = 1;
	s->transport = transport;
	session_format_peer(sa, s->peer, sizeof s->peer);
	if (ac_uuid_generate(s->id) == -1) {
		log_warnx("cannot make a session id: closing %s", s->peer);
		evutil_closesocket(fd);
		free(s);
		return;
	}
	if (tls != NULL) {
		if ((ssl = SSL_new(tls)) == NULL) {
			log_warnx("cannot make a TLS session: closing %s",
			    s->peer);
			ERR_clear_error();
			evutil_closesocket(fd);
			free(s);
			return;
		}
		/*
		 * On failure libevent has already freed ssl and, through
		 * its socket BIO, closed fd: closing it again could close
		 * somebody else's descriptor.
		 */
		s->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (s->bev == NULL) {
			log_warnx("cannot make a TLS bufferevent: closing %s",
			    s->peer);
			free(s);
			return;
		}
		/* Peers that skip close_notify end with EOF, not error. */
		bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	} else {
		s->bev = bufferevent_socket_new(srv->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		if (s->bev == NULL) {
			log_warnx("cannot make a bufferevent: closing %s",
			    s->peer);
			evutil_closesocket(fd);
			free(s);
			return;
		}
		s->flags |= AC_SESS_PLAIN;
	}
	s->timer = evtimer_new(srv->base, session_timer_cb, s);
	if (srv->flush_ev == NULL) {
		TAILQ_INIT(&srv->dirty);
		srv->flush_ev = event_new(srv->base, -1, 0, session_flush_cb,
		    srv);
	}
	if (srv->memory_ev == NULL)
		srv->memory_ev = event_new(srv->base, -1, 0, session_memory_cb,
		    srv);
	bufferevent_setcb(s->bev, session_read_cb, (s->flags & AC_SESS_PLAIN) ?
	    session_write_cb : NULL, session_event_cb, s);
	srv->stats.sessions_total++;

	event_base_gettimeofday_cached(srv->base, &now);
	if (srv->reg.count >= srv->cfg->max_clients) {
		s->flags |= AC_SESS_REJECTED;
		srv->stats.session_errors[AC_SERR_SERVER_FULL]++;
		session_log_full(srv, s->peer, &now);
		session_send_error(s, stats_error_name(AC_SERR_SERVER_FULL),
		    "the server is full, try again later", 1);
		session_close(s, AC_CLOSE_SERVER_FULL, NULL);
		return;
	}
	if (iplimit_acquire(&srv->iplimit, sa, srv->cfg->max_clients_per_ip,
	    &ip) == -1) {
		s->flags |= AC_SESS_REJECTED;
		srv->stats.session_errors[AC_SERR_TOO_MANY_CONNECTIONS]++;
		iplimit_log_refusal(ip, s->peer, srv->cfg->max_clients_per_ip,
		    &now);
		session_send_error(s,
		    stats_error_name(AC_SERR_TOO_MANY_CONNECTIONS), "too many "
		    "connections from your address, try again later", 1);
		session_close(s, AC_CLOSE_PER_IP_LIMIT, NULL);
		return;
	}
	s->ip = ip;
	ratelimit_init(&s->rl, &now);

	registry_add(&srv->reg, s);
	srv->stats.sessions_current++;
	log_debug("session %s opened peer=%s transport=%s", s->id, s->peer,
	    transport);
	session_want(s, AC_FIXED_HEADER_LEN);
	if (s->flags & AC_SESS_PLAIN)
		bufferevent_enable(s->bev, EV_READ);	/* see session_dirty */
	else
		bufferevent_enable(s->bev, EV_READ|EV_WRITE);
	session_arm(s);
	session_send(s, AC_MSG_SESSION_INIT, SESSION_OCTET, NULL,
	    SESSION_INIT_TEXT, strlen(SESSION_INIT_TEXT));
}
