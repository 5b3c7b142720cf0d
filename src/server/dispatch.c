/*
 * dispatch.c - a session's protocol: cut the bytes its connection
 * received into frames, check and decode each, and do what the frame
 * means in the session's state, answering the errors PROTOCOL.md names.
 *
 * In the order a frame goes: dispatch_input() takes whole frames off the
 * connection's input (the fixed header first: a bad one ends the stream,
 * dispatch_framing_error), dispatch_frame() checks and decodes the body,
 * and dispatch_message() decides by type and state. A `message` or
 * `chunk` of an acknowledged session goes to the plugin chain
 * (plugin_set_message), whose plugins queue it to its recipients
 * (session_queue_frame, and conn.c writes it). Nothing here knows what
 * the connection is (server.h, struct conn).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "log.h"
#include "server.h"

#define DISPATCH_OCTET		"application/octet-stream"

/* The largest whole frame the session may send now. */
size_t
dispatch_frame_max(struct ac_session *s)
{
	const struct ac_limits	*l = session_limits(s);

	return (AC_FIXED_HEADER_LEN + (size_t)l->max_header_len +
	    (size_t)l->max_content_len);
}

/* Answer an error; too many in a row close the session. */
static void
dispatch_error_reply(struct ac_session *s, const char *token,
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
dispatch_error(struct ac_session *s, enum ac_session_error e,
    const char *text)
{
	s->srv->stats.session_errors[e]++;
	dispatch_error_reply(s, stats_error_name(e), text);
}

/*
 * Non-zero if the frame's session_id is this session's: the same 36
 * bytes, not case-insensitive, since the id is relayed to others as its
 * sender's and must be exactly the one the server gave. The decoded
 * string is NULL when the member is absent, not a string or holds
 * U+0000 (a JSON \u0000, which no id has).
 */
static int
dispatch_id_matches(struct ac_session *s, const struct ac_message *msg)
{
	return (msg->session_id != NULL &&
	    strnlen(msg->session_id, AC_UUID_STRLEN + 1) == AC_UUID_STRLEN &&
	    memcmp(msg->session_id, s->id, AC_UUID_STRLEN) == 0);
}

/*
 * Charge a frame to the session's rate limits. Returns 0 if it may pass,
 * or 1 if it is dropped: then the peer may be told (at most once a
 * second) or, for sustained abuse, the session is closed.
 */
static int
dispatch_rate_limited(struct ac_session *s, const struct ac_message *msg)
{
	struct server		*srv = s->srv;
	struct timeval		 now;
	const char		*which;
	char			 text[128];
	unsigned long long	 rate;

	/* Both limits off: nothing to charge (a bucket turned on later
	 * starts full either way, ratelimit.c). */
	if (srv->cfg->max_message_rate == 0 && srv->cfg->max_byte_rate == 0)
		return (0);
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

/* Act on one verified frame, by its type and the session's state. */
static void
dispatch_message(struct ac_session *s, const struct ac_message *msg,
    struct ac_frame *f)
{
	/* Every frame but a goodbye counts toward the rates (ratelimit.c). */
	if (msg->type != AC_MSG_DISCONNECT && dispatch_rate_limited(s, msg))
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
		dispatch_error(s, AC_SERR_UNEXPECTED_FRAME, msg->type ==
		    AC_MSG_ERROR ? "a client does not send error frames" :
		    "a client does not send session_init");
		return;
	case AC_MSG_SESSION_ACK:
		if (s->flags & AC_SESS_ACKED) {
			dispatch_error(s, AC_SERR_UNEXPECTED_FRAME,
			    "the session is already acknowledged");
			return;
		}
		if (!dispatch_id_matches(s, msg)) {
			dispatch_error(s, AC_SERR_SESSION_MISMATCH,
			    "session_id does not match this session");
			return;
		}
		session_acked(s, msg);
		return;
	default:
		break;
	}

	if (!(s->flags & AC_SESS_ACKED)) {
		dispatch_error(s, AC_SERR_NOT_ACKNOWLEDGED, "the session is "
		    "not acknowledged yet: send session_ack first");
		return;
	}
	if (!dispatch_id_matches(s, msg)) {
		dispatch_error(s, AC_SERR_SESSION_MISMATCH,
		    "session_id does not match this session");
		return;
	}
	s->errors = 0;
	session_touch(s);

	if (msg->type == AC_MSG_HEARTBEAT) {
		if (msg->content_len == 4 &&
		    memcmp(msg->content, "ping", 4) == 0)
			session_send(s, AC_MSG_HEARTBEAT, DISPATCH_OCTET, NULL,
			    "pong", 4);
		return;
	}
	/* message and chunk go through the plugin chain. */
	plugin_set_message(s->srv, s, msg, f);
}

/*
 * Check, decode and act on one whole frame of len bytes at bytes, in the
 * connection's input: it is decoded where it is, in a borrowed frame
 * (memory.c). While it is dispatched the server knows it as in_frame, so
 * that the input going away under it (dispatch_release) first gives it a
 * copy; whatever keeps it beyond makes it own one too.
 */
static void
dispatch_frame(struct ac_session *s, const struct ac_fixed_header *fh,
    const uint8_t *bytes, size_t len)
{
	struct server		*srv = s->srv;
	struct ac_frame		*f, *outer_frame = srv->in_frame;
	struct ac_session	*outer_session = srv->in_session;
	struct ac_message	 msg;
	enum ac_frame_status	 st;

	srv->stats.bytes_in += len;
	/* The header object is built only if a plugin asks for it. */
	st = ac_frame_decode_body_flags(srv->cfg->key, fh,
	    bytes + AC_FIXED_HEADER_LEN, &msg, AC_DECODE_LAZY_HEADER);
	if (st != AC_FRAME_OK) {
		stats_frame_error(&srv->stats, st);
		dispatch_error_reply(s, ac_frame_status_name(st),
		    ac_frame_status_text(st));
		return;
	}
	f = ac_frame_borrow(bytes, len);
	f->type = msg.type;
	srv->stats.frames_in[msg.type]++;
	srv->in_frame = f;
	srv->in_session = s;
	dispatch_message(s, &msg, f);
	srv->in_frame = outer_frame;
	srv->in_session = outer_session;
	ac_message_clear(&msg);
	ac_frame_unref(f);
}

/*
 * The input of s is about to be freed or drained under a frame of it
 * being dispatched (its connection finishes, max_memory drops it): the
 * frame takes a copy of its bytes, for whoever holds it. The message
 * decoded from it is read by nobody after that: a session that finishes
 * has been closed, and the chain stops at a closed sender.
 */
void
dispatch_release(struct ac_session *s)
{
	struct server	*srv = s->srv;

	if (srv->in_session == s && srv->in_frame != NULL)
		ac_frame_own(srv->in_frame);
}

/*
 * A fixed header failed checks 1-3: the stream cannot be framed any more.
 * Send one error frame and close. Before session_ack the limits are the
 * small ones of the handshake, and the text says so.
 */
static void
dispatch_framing_error(struct ac_session *s, enum ac_frame_status st)
{
	struct server		*srv = s->srv;
	struct evbuffer		*in = s->conn->in;
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

/* Why dispatch_frames() stopped. */
enum dispatch_stop {
	DISPATCH_MORE,		/* the next frame is not all there */
	DISPATCH_PAUSE,		/* past max_memory: the rest waits a turn */
	DISPATCH_END,		/* the session closed */
};

/*
 * Handle the whole frames at the start of the len bytes at p in turn
 * (STYLE G15), decoding each where it lies. Returns the bytes they took;
 * *stop says why it stopped, and for DISPATCH_MORE *need is the length
 * of the frame that is not all there (or of a fixed header).
 */
static size_t
dispatch_frames(struct ac_session *s, const uint8_t *p, size_t len,
    int final, size_t *need, enum dispatch_stop *stop)
{
	struct server		*srv = s->srv;
	struct ac_fixed_header	 fh;
	enum ac_frame_status	 st;
	size_t			 off = 0, flen;

	for (;;) {
		if (len - off < AC_FIXED_HEADER_LEN) {
			*need = AC_FIXED_HEADER_LEN;
			*stop = DISPATCH_MORE;
			return (off);
		}
		st = ac_fixed_header_parse(p + off, session_limits(s), &fh);
		if (st != AC_FRAME_OK) {
			dispatch_framing_error(s, st);
			*stop = DISPATCH_END;
			return (off);
		}
		flen = ac_fixed_header_frame_len(&fh);
		if (len - off < flen) {
			*need = flen;
			*stop = DISPATCH_MORE;
			return (off);
		}
		dispatch_frame(s, &fh, p + off, flen);
		off += flen;
		if (s->flags & AC_SESS_DEAD) {
			*stop = DISPATCH_END;
			return (off);
		}
		/*
		 * Past max_memory, leave the rest for the next loop turn: the
		 * memory event counts (and closes whoever holds the most) at
		 * the end of this one, after the flush. One read can hold
		 * thousands of small frames, each copied to every recipient;
		 * without this pause their fan-out would all be queued before
		 * anything is counted.
		 */
		if (srv->memory_estimate > srv->cfg->max_memory && !final) {
			*stop = DISPATCH_PAUSE;
			return (off);
		}
	}
}

/*
 * Tell the connection what the next frame needs: its whole length (or a
 * fixed header's) before dispatch runs again, and one largest frame at
 * most in its input. A frame announced and not all here yet will soon be
 * held whole, so max_memory counts it now.
 */
static void
dispatch_want(struct ac_session *s, size_t need)
{
	struct server	*srv = s->srv;
	struct conn	*c = s->conn;
	size_t		 len = evbuffer_get_length(c->in);

	if (need > AC_FIXED_HEADER_LEN && need != s->need) {
		s->need = need;
		memory_add(srv, need - len);
	} else if (need == AC_FIXED_HEADER_LEN)
		s->need = 0;
	c->ops->want(c, need, dispatch_frame_max(s));
}

/*
 * The connection has bytes for the session in its input: handle every
 * complete frame there, then tell the connection how many bytes the next
 * frame needs, so that this runs again only when it can make progress.
 * final: the stream has ended, so every frame is handled now and nothing
 * more is asked for.
 *
 * Frames are decoded where they lie: those wholly inside the input's
 * first contiguous piece are handled one after the other and what they
 * took is drained once; a frame that spans two pieces is made contiguous
 * first (evbuffer_pullup), which moves only that frame. The transport
 * must not change the input while this runs.
 */
void
dispatch_input(struct ac_session *s, int final)
{
	struct conn		*c = s->conn;
	struct evbuffer		*in = c->in;
	struct evbuffer_iovec	 v;
	enum dispatch_stop	 stop;
	size_t			 len, done, need;

	for (;;) {
		len = evbuffer_get_length(in);
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			v.iov_len = 0;
		done = dispatch_frames(s, v.iov_base, v.iov_len, final, &need,
		    &stop);
		if (stop == DISPATCH_END)
			return;
		evbuffer_drain(in, done);
		if (stop == DISPATCH_PAUSE) {
			c->ops->defer(c);
			need = AC_FIXED_HEADER_LEN;
			break;
		}
		/* The next frame is not whole in the first piece: it may be
		 * whole in the input, across pieces. */
		if (len - done < need)
			break;
		evbuffer_pullup(in, need);
	}
	if (!final)
		dispatch_want(s, need);
}

/*
 * dispatch_input() for len bytes at p that a transport read into memory
 * of its own while its input was empty (conn.c reads into one buffer
 * shared by every plain socket): the whole frames there are handled
 * where they are, with no copy, and only what is left (part of a frame)
 * goes into the input, for the next read to complete.
 */
void
dispatch_bytes(struct ac_session *s, const uint8_t *p, size_t len,
    int final)
{
	struct conn		*c = s->conn;
	enum dispatch_stop	 stop;
	size_t			 done, need;

	done = dispatch_frames(s, p, len, final, &need, &stop);
	if (stop == DISPATCH_END || final)
		return;
	/* (Adding nothing would still give the input an empty chain.) */
	if (done < len)
		evbuffer_add(c->in, p + done, len - done);
	if (stop == DISPATCH_PAUSE) {
		c->ops->defer(c);
		need = AC_FIXED_HEADER_LEN;
	}
	dispatch_want(s, need);
}
