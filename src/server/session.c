/*
 * session.c - one client session's life: accept, the handshake, its
 * timers, what it is sent, and the close.
 *
 * A session is the protocol's state (its id, acknowledged or not, its
 * errors, rates and plugin data) over a connection, struct conn, which
 * moves its bytes (conn.c for sockets; server.h says how a WebSocket
 * transport fits). What it receives is framed and acted on in dispatch.c;
 * what it is sent is queued here, bounded by max_output_buffer.
 *
 * Lifetime (STYLE G11): session_close() ends a session at once (DEAD flag,
 * out of the registry, timers stopped, plugins told) but the memory is
 * freed later, from the reap event, so no caller up the stack touches
 * freed memory. A session with frames still to flush (an error, a
 * disconnect) lingers on srv->lingering until its output drains or the
 * linger timeout fires, and only then loses its connection
 * (session_finish).
 *
 * Why one file past 700 lines: the queueing of frames (one, a list, a
 * shared one) sits with the life it is bounded by (max_output_buffer,
 * the linger, max_memory's shedding), since each send checks the state
 * the close sets.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>
#include <json-c/json.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define SESSION_INIT_TEXT	"Session established"
#define SESSION_OCTET		"application/octet-stream"
#define SESSION_TEXT		"text/plain; charset=utf-8"
#define SESSION_JSON		"application/json"
#define SESSION_COPY_MAX	1024
#define SESSION_FULL_LOG_SECONDS 5

static void	session_timer_cb(evutil_socket_t, short, void *);
static void	session_linger_timer_cb(evutil_socket_t, short, void *);

/* Format a peer address: "1.2.3.4:5", "[::1]:5" or "unix". */
void
session_format_peer(const struct sockaddr *sa, char *out, size_t outlen)
{
	char	host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in	*sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		snprintf(out, outlen, "%s:%u", host, ntohs(sin->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6	*sin6 = (const void *)sa;

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
const struct ac_limits *
session_limits(struct ac_session *s)
{
	if (s->flags & AC_SESS_ACKED)
		return (&s->srv->limits);
	return (&s->srv->limits_preack);
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

/* Bytes queued to a connection and not sent yet. */
static inline size_t
session_conn_pending(struct conn *c)
{
	if (c->ops->pending != NULL)
		return (c->ops->pending(c));
	return (evbuffer_get_length(c->out));
}

/* Bytes queued to a session's connection and not sent yet. */
size_t
session_pending(struct ac_session *s)
{
	if (s->conn == NULL)
		return (0);
	return (session_conn_pending(s->conn));
}

/*
 * Whether the output of a session can take a frame of len bytes: a
 * closing session takes nothing (unless bypass, for its last frames) and
 * one past max_output_buffer is closed as a slow consumer. The transport
 * is told a frame follows (struct conn_ops, frame). 0, or -1 if not.
 */
static inline int
session_output_room(struct ac_session *s, size_t len, int bypass)
{
	struct conn	*c = s->conn;

	if (((s->flags & AC_SESS_DEAD) && !bypass) || c == NULL)
		return (-1);
	/*
	 * While max_memory closes sessions, what their closing makes (chat's
	 * quit events) goes only to sessions that have written all they
	 * were sent: one that holds output is not reading, and may be the
	 * next closed. Each close queued a frame to every member left
	 * before, readers or not: frames in the square of the sessions
	 * closed, filling the memory being freed.
	 */
	if (!bypass && s->srv->shedding && session_conn_pending(c) != 0)
		return (-1);
	if (!bypass && session_conn_pending(c) + len >
	    s->srv->cfg->max_output_buffer) {
		session_close(s, AC_CLOSE_SLOW_CONSUMER, "slow consumer");
		return (-1);
	}
	if (c->ops->frame != NULL)
		c->ops->frame(c, len);
	return (0);
}

/* Add the bytes of whole frames to a connection's output. */
static inline int
session_conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->ops->write != NULL)
		return (c->ops->write(c, data, len));
	return (evbuffer_add(c->out, data, len));
}

/* Count n frames of len bytes and this type queued. */
static void
session_count_out(struct server *srv, size_t n, size_t len, int type)
{
	memory_add(srv, n * len);
	srv->stats.bytes_out += n * len;
	if (type >= 0 && type < AC_MSG_TYPE_COUNT)
		srv->stats.frames_out[type] += n;
}

/*
 * Encode a frame for s (with its id) and queue it; bypass skips the
 * limit and the DEAD check, for the last frames of a closing session. The
 * bytes are copied into the output, not their chain moved there: encoding
 * makes a chain of the next power of two (1 KiB at least), so a queue of
 * small events (chat's, some 300 bytes each, to every member of a room)
 * took over three times what max_memory counts, while copies fill the
 * output's chains.
 */
static int
session_send_internal(struct ac_session *s, enum ac_msg_type type,
    const char *content_type, struct json_object *extra,
    const void *content, size_t content_len, int bypass)
{
	struct evbuffer	*buf;
	size_t		 len;
	int		 r = -1;

	if (s->conn == NULL)
		return (-1);
	buf = evbuffer_new();
	if (ac_frame_encode(buf, s->srv->cfg->key, type, content_type, s->id,
	    extra, content, content_len) == 0) {
		len = evbuffer_get_length(buf);
		if (session_output_room(s, len, bypass) == 0) {
			r = session_conn_write(s->conn,
			    evbuffer_pullup(buf, -1), len);
			if (r == 0) {
				s->conn->ops->kick(s->conn);
				session_count_out(s->srv, 1, len, type);
			}
		}
	}
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
 * Put a frame into a session's output and have it written; the caller
 * counts it (memory, stats). A reference costs a new evbuffer chain (a
 * malloc, and a free when it is written) per recipient, while a copy of
 * a small frame lands in space left in the output's last block or chain:
 * so frames up to SESSION_COPY_MAX bytes are copied and larger ones
 * shared by reference. A larger received frame is still copied to its
 * first recipient, as it lies in its sender's input: sharing it would
 * take a copy anyway (ac_frame_own), and an echo has no second one.
 */
static inline int
session_queue_one(struct ac_session *s, struct ac_frame *f)
{
	struct conn	*c;
	int		 r;

	if (session_output_room(s, f->len, 0) == -1)
		return (-1);
	c = s->conn;
	if (f->len <= SESSION_COPY_MAX ||
	    ((f->flags & AC_FRAME_BORROWED) && f->queued == 0))
		r = session_conn_write(c, f->bytes, f->len);
	else if (c->ops->share != NULL)
		r = c->ops->share(c, f);
	else
		r = ac_frame_share(f, c->out);
	if (r == -1)
		return (-1);
	f->queued++;
	c->ops->kick(c);
	return (0);
}

/* Queue a frame to a session; 0, or -1 if it was not (closing, or a
 * slow consumer now closed). */
int
session_queue_frame(struct ac_session *s, struct ac_frame *f)
{
	if (session_queue_one(s, f) == -1)
		return (-1);
	session_count_out(s->srv, 1, f->len, f->type);
	return (0);
}

/*
 * Queue a frame to n sessions (a fan-out; NULL entries are skipped);
 * returns how many took it. The same as session_queue_frame() for each,
 * with what is counted per frame (memory, stats) counted once for all.
 */
size_t
session_queue_frames(struct server *srv, struct ac_session *const *to,
    size_t n, struct ac_frame *f)
{
	size_t	i, queued = 0;

	for (i = 0; i < n; i++) {
		if (to[i] != NULL && session_queue_one(to[i], f) == 0)
			queued++;
	}
	if (queued != 0)
		session_count_out(srv, queued, f->len, f->type);
	return (queued);
}

/*
 * Where the id of the session it was built for is in a header JSON: the
 * value of its session_id member, which the Python spelling writes before
 * any extra member (so no extra member can be taken for it). Returns the
 * offset of the id's first byte, or -1.
 */
static ssize_t
session_id_offset(const uint8_t *hj, size_t len, const char *id)
{
	char		 pat[32 + AC_UUID_STRLEN];
	size_t		 plen;
	const uint8_t	*p;

	plen = (size_t)snprintf(pat, sizeof pat, "\"session_id\": \"%s\"", id);
	if (plen >= sizeof pat || (p = memmem(hj, len, pat, plen)) == NULL)
		return (-1);
	return ((p - hj) + (ssize_t)(plen - 1 - AC_UUID_STRLEN));
}

/*
 * Encode one frame for each of the n sessions of to (NULL entries and
 * closing ones skipped), each with its own session_id, and queue it;
 * returns how many took it. An event to a room's members differs from
 * one member to the next only in those 36 bytes, so the header JSON is
 * built once and, per recipient, the id written over it and the frame
 * sealed again (two CRCs and the HMAC), then copied into the output:
 * one encoding per event instead of one per member.
 */
size_t
session_send_list(struct server *srv, struct ac_session *const *to,
    size_t n, enum ac_msg_type type, const char *content_type,
    struct json_object *extra, const void *content, size_t content_len)
{
	struct evbuffer	*hb;
	struct ac_session *s;
	uint8_t		*frame;
	size_t		 i, hlen, len, queued = 0;
	ssize_t		 idoff;

	for (i = 0; i < n; i++) {
		if (to[i] != NULL && !(to[i]->flags & AC_SESS_DEAD) &&
		    to[i]->conn != NULL)
			break;
	}
	if (i == n || content_len == 0 || (hb = evbuffer_new()) == NULL)
		return (0);
	frame = NULL;
	if (ac_header_json_write(hb, type, content_type, to[i]->id,
	    extra) == -1 || (hlen = evbuffer_get_length(hb)) >
	    AC_DEFAULT_MAX_HEADER || (idoff = session_id_offset(
	    evbuffer_pullup(hb, -1), hlen, to[i]->id)) == -1)
		goto out;
	len = AC_FIXED_HEADER_LEN + hlen + content_len;
	frame = ac_xmalloc(len);
	evbuffer_remove(hb, frame + AC_FIXED_HEADER_LEN, hlen);
	memcpy(frame + AC_FIXED_HEADER_LEN + hlen, content, content_len);
	for (; i < n; i++) {
		if ((s = to[i]) == NULL || (s->flags & AC_SESS_DEAD) ||
		    s->conn == NULL)
			continue;
		memcpy(frame + AC_FIXED_HEADER_LEN + idoff, s->id,
		    AC_UUID_STRLEN);
		ac_frame_seal(srv->cfg->key, frame, hlen, content_len);
		if (session_output_room(s, len, 0) == -1 ||
		    session_conn_write(s->conn, frame, len) == -1)
			continue;
		s->conn->ops->kick(s->conn);
		queued++;
	}
	if (queued != 0)
		session_count_out(srv, queued, len, type);
out:
	free(frame);
	evbuffer_free(hb);
	return (queued);
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
int
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
 * The connection is done with, flushed or not: free it and the linger
 * timer, and drop the reference the session held for being alive.
 */
void
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
	if (s->conn != NULL) {
		dispatch_release(s);
		s->conn->ops->free(s->conn);
		s->conn = NULL;
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
 * (at most for the linger time) before the connection closes.
 */
void
session_close(struct ac_session *s, enum ac_close_reason reason,
    const char *disconnect_text)
{
	struct server	*srv = s->srv;
	struct conn	*c = s->conn;
	const char	*token = stats_reason_name(reason);

	if (s->flags & AC_SESS_DEAD)
		return;
	s->flags |= AC_SESS_DEAD;
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

	/*
	 * Over max_memory, what the session holds is freed now: its input,
	 * and its unsent output (it was not reading it). Then no goodbye can
	 * follow, as the peer may have received part of a frame; without
	 * unsent output it still gets the disconnect frame.
	 */
	if (reason == AC_CLOSE_MEMORY_LIMIT) {
		dispatch_release(s);
		evbuffer_drain(c->in, evbuffer_get_length(c->in));
		if (c->ops->discard(c))
			disconnect_text = NULL;
	}
	if (disconnect_text != NULL)
		session_send_disconnect(s, disconnect_text);

	if (s->flags & AC_SESS_OPENED)
		plugin_set_session_close(srv, s, token);
	session_slots_clear(s);
	s->flags |= AC_SESS_NOSLOTS;

	/* Nothing more can be written on a broken connection. */
	if (session_pending(s) == 0 ||
	    reason == AC_CLOSE_IO_ERROR || reason == AC_CLOSE_TLS_ERROR) {
		session_finish(s);
		return;
	}

	/*
	 * Flush what is queued, then finish. The last frames say why the
	 * session ends: discard unread input before the close, so that no
	 * reset destroys them (conn.c).
	 */
	s->flags |= AC_SESS_DRAIN;
	c->ops->linger(c);
	s->linger = evtimer_new(srv->base, session_linger_timer_cb, s);
	evtimer_add(s->linger, srv->linger_tv);
	s->flags |= AC_SESS_LINGER;
	TAILQ_INSERT_TAIL(&srv->lingering, s, entry);
}

/* A closing session took too long to flush: drop what is left. */
static void
session_linger_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ac_session	*s = arg;

	log_debug("session %s: dropping %zu unsent bytes", s->id,
	    session_pending(s));
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

/*
 * Arm the session's timer: heartbeat once acknowledged (counted from
 * now), else handshake.
 */
void
session_arm(struct ac_session *s)
{
	if (s->flags & AC_SESS_ACKED) {
		clock_gettime(CLOCK_MONOTONIC_COARSE, &s->active);
		event_add(s->timer, s->srv->heartbeat_tv);
	} else
		event_add(s->timer, s->srv->handshake_tv);
}

/*
 * A valid frame came from an acknowledged session: its heartbeat timeout
 * starts again. Re-adding the timer for every frame cost an event_add()
 * each (a tenth of a small echo's server time); instead the time is
 * noted (the coarse monotonic clock, a few nanoseconds, ticks of a few
 * milliseconds), and the timer, when it fires, is added again for what
 * is left (session_timer_cb).
 */
void
session_touch(struct ac_session *s)
{
	clock_gettime(CLOCK_MONOTONIC_COARSE, &s->active);
}

/*
 * The session's timer fired: it never acknowledged, or fell silent, or
 * was heard from since the timer was added, which is then added again
 * for the rest of heartbeat_timeout after that.
 */
static void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ac_session	*s = arg;
	const struct timeval	*hb = &s->srv->cfg->heartbeat_timeout;
	struct timespec		 now;
	struct timeval		 left;
	int64_t			 idle, limit;

	if (s->flags & AC_SESS_DEAD)
		return;
	if (!(s->flags & AC_SESS_ACKED)) {
		session_close(s, AC_CLOSE_HANDSHAKE_TIMEOUT,
		    "Handshake timeout");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	idle = (int64_t)(now.tv_sec - s->active.tv_sec) * 1000000 +
	    (now.tv_nsec - s->active.tv_nsec) / 1000;
	limit = (int64_t)hb->tv_sec * 1000000 + hb->tv_usec;
	if (idle >= 0 && idle < limit) {
		left.tv_sec = (limit - idle) / 1000000;
		left.tv_usec = (limit - idle) % 1000000;
		event_add(s->timer, &left);
		return;
	}
	session_close(s, AC_CLOSE_HEARTBEAT_TIMEOUT, "Heartbeat timeout");
}

/*
 * The handshake is done: the client answered session_init with a
 * session_ack for its id (dispatch.c checked it). The heartbeat timer
 * takes over from the handshake's, the full frame limits apply, and the
 * plugins meet the session.
 */
void
session_acked(struct ac_session *s, const struct ac_message *ack)
{
	struct server	*srv = s->srv;

	s->errors = 0;
	s->flags |= AC_SESS_ACKED;
	srv->stats.sessions_acked++;
	log_debug("session %s acknowledged peer=%s", s->id, s->peer);
	session_arm(s);
	plugin_set_session_open(srv, s, ack);
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

/*
 * Refuse a session the server will not serve (max_clients, or its
 * address's max_clients_per_ip): count the error, send it, and close once
 * it is written.
 */
static void
session_refuse(struct ac_session *s, enum ac_session_error e,
    enum ac_close_reason reason, const char *text)
{
	s->flags |= AC_SESS_REJECTED;
	s->srv->stats.session_errors[e]++;
	session_send_error(s, stats_error_name(e), text, 1);
	session_close(s, reason, NULL);
}

/*
 * A new connection c (from sa; transport names it): make its session and
 * send session_init, or, past max_clients, the server_full error, or past
 * max_clients_per_ip, too_many_connections. A transport that is not a
 * plain socket (a WebSocket, after its upgrade) comes in here.
 */
void
session_open(struct server *srv, struct conn *c, const struct sockaddr *sa,
    const char *transport, const char *peer)
{
	struct ac_session	*s;
	struct iplimit_entry	*ip;
	struct timeval		 now;

	s = ac_xcalloc(1, sizeof *s);
	s->srv = srv;
	s->refs = 1;
	s->transport = transport;
	snprintf(s->peer, sizeof s->peer, "%s", peer);
	s->conn = c;
	c->s = s;
	if (ac_uuid_generate(s->id) == -1) {
		log_warnx("cannot make a session id: closing %s", s->peer);
		c->ops->free(c);
		free(s);
		return;
	}
	s->timer = evtimer_new(srv->base, session_timer_cb, s);
	memory_init(srv);
	srv->stats.sessions_total++;

	event_base_gettimeofday_cached(srv->base, &now);
	if (srv->reg.count >= srv->cfg->max_clients) {
		session_log_full(srv, s->peer, &now);
		session_refuse(s, AC_SERR_SERVER_FULL, AC_CLOSE_SERVER_FULL,
		    "the server is full, try again later");
		return;
	}
	if (iplimit_acquire(&srv->iplimit, sa, srv->cfg->max_clients_per_ip,
	    &ip) == -1) {
		iplimit_log_refusal(ip, s->peer, srv->cfg->max_clients_per_ip,
		    &now);
		session_refuse(s, AC_SERR_TOO_MANY_CONNECTIONS,
		    AC_CLOSE_PER_IP_LIMIT, "too many connections from your "
		    "address, try again later");
		return;
	}
	s->ip = ip;
	ratelimit_init(&s->rl, &now);

	registry_add(&srv->reg, s);
	srv->stats.sessions_current++;
	log_debug("session %s opened peer=%s transport=%s", s->id, s->peer,
	    transport);
	c->ops->want(c, AC_FIXED_HEADER_LEN, dispatch_frame_max(s));
	c->ops->start(c);
	session_arm(s);
	session_send(s, AC_MSG_SESSION_INIT, SESSION_OCTET, NULL,
	    SESSION_INIT_TEXT, strlen(SESSION_INIT_TEXT));
}

/* A listener accepted a socket: make its connection, then its session. */
void
session_accept(struct server *srv, int fd, struct sockaddr *sa,
    socklen_t salen, const char *transport, struct ssl_ctx_st *tls)
{
	struct conn	*c;
	char		 peer[64];

	session_format_peer(sa, peer, sizeof peer);
	if ((c = conn_socket_new(srv, fd, tls, peer)) == NULL)
		return;
	session_open(srv, c, sa, transport, peer);
}
