/*
 * ws.c - the WebSocket transport (RFC 6455) of a ws:// or wss:// session,
 * from the moment http.c has answered its upgrade: the struct conn of
 * server.h over the connection's bufferevent, whose bytes are now
 * WebSocket frames.
 *
 * In: wslay's frame layer reads each frame's header and unmasks its
 * payload, pulling the bytes from the socket bufferevent's input
 * (ws_recv_cb). The payloads of binary messages are appended to in, the
 * protocol's byte stream, which dispatch_input() frames exactly as on
 * TCP: protocol frames may span messages, or share one, and a message
 * may come in any number of fragments, as nothing is held per message.
 * Parsing pauses while in holds one largest frame (the bound dispatch
 * asks for through want), and the socket input is bounded by a read
 * watermark, so a peer cannot make us hold more than it could on TCP.
 *
 * Above wslay, this file keeps the RFC's rules for messages and control
 * frames and answers a breach with the RFC's close code, after handling
 * the protocol frames received before it:
 *	1002	reserved bits, an unmasked frame, an unknown opcode, a
 *		continuation without a message, a message inside another, a
 *		control frame over 125 bytes or fragmented, a length not in
 *		its shortest form, a bad close frame (wslay reports the header
 *		ones, which it checks before any payload arrives)
 *	1003	a text message: the protocol travels in binary messages
 *	1007	a close reason that is not UTF-8
 *	1009	a frame whose payload exceeds one largest protocol frame
 * A ping is answered with a pong (unless the session is over its rate
 * limits or its output is full), a pong is ignored, and a close is
 * answered with a close of the same code, after which the session ends.
 * Pings, pongs and empty data frames carry nothing the protocol's rates
 * would count, so they count as frames themselves (ws_charge).
 *
 * Why wslay's frame layer and not its event layer: the event layer of
 * wslay 1.1.1 (Debian's) answers the header errors its frame layer
 * finds (a control frame over 125 bytes, a fragmented one, a length not
 * in its shortest form) with a close frame without a status code instead
 * of 1002, copies every control frame into a buffer of its own, and
 * sends through a queue of its own that we would have to drain between
 * our frames. The message rules it would keep are a few lines here.
 *
 * Out: out is the socket bufferevent's output. Each protocol frame
 * leaves as one binary message: the frame operation adds a message
 * header for the len bytes the session adds next, so the frame itself is
 * never copied. Pongs and the last close frame go in between whole
 * frames. A closing session's output ends with a close frame (1000, or
 * 1001 when the server shuts down, or the code of the breach), unless
 * its unsent output was dropped (max_memory): the peer may then hold
 * part of a message, and nothing may follow it.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>

#include <asyncchat/utf8.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define WS_READ_HIGH		(64 * 1024)	/* socket input not parsed */
#define WS_DRAIN_MAX		(1024 * 1024)
#define WS_CONTROL_MAX		125

/* RFC 6455 opcodes. */
#define WS_OP_CONTINUATION	0x0
#define WS_OP_TEXT		0x1
#define WS_OP_BINARY		0x2
#define WS_OP_CLOSE		0x8
#define WS_OP_PING		0x9
#define WS_OP_PONG		0xa

/* RFC 6455 close codes. */
#define WS_CLOSE_NORMAL		1000
#define WS_CLOSE_GOING_AWAY	1001
#define WS_CLOSE_PROTOCOL	1002
#define WS_CLOSE_UNSUPPORTED	1003
#define WS_CLOSE_BAD_DATA	1007
#define WS_CLOSE_TOO_BIG	1009

/* A WebSocket connection: struct conn and its socket bufferevent. */
struct ws_conn {
	struct conn		 c;		/* first, for casts */
	struct server		*srv;
	struct bufferevent	*bev;		/* wss: bufferevent_openssl */
	wslay_frame_context_ptr	 wf;
	size_t			 need;		/* want: dispatch runs then */
	size_t			 high;		/* want: parse no further */
	uint64_t		 left;		/* of the frame's payload */
	uint8_t			 opcode;	/* of the frame */
	uint8_t			 ctl[WS_CONTROL_MAX];	/* control payload */
	size_t			 nctl;
	uint16_t		 close_code;	/* to send; 0: the usual */
	int			 flags;
#define WS_TLS		0x1	/* wss */
#define WS_IN_FRAME	0x2	/* a frame's payload is arriving */
#define WS_FRAGMENTED	0x4	/* a binary message awaits continuations */
#define WS_STALLED	0x8	/* in was full: parsing paused */
#define WS_CLOSING	0x10	/* close frame queued, or none may be */
};

static void	ws_start(struct conn *);
static void	ws_want(struct conn *, size_t, size_t);
static void	ws_defer(struct conn *);
static void	ws_frame(struct conn *, size_t);
static void	ws_kick(struct conn *);
static void	ws_linger(struct conn *);
static int	ws_discard(struct conn *);
static void	ws_free(struct conn *);
static void	ws_read_cb(struct bufferevent *, void *);
static void	ws_event_cb(struct bufferevent *, short, void *);
static void	ws_linger_write_cb(struct bufferevent *, void *);
static void	ws_linger_event_cb(struct bufferevent *, short, void *);
static ssize_t	ws_recv_cb(uint8_t *, size_t, int, void *);
static ssize_t	ws_send_cb(const uint8_t *, size_t, int, void *);
static int	ws_fail(struct ws_conn *, uint16_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	ws_charge(struct ws_conn *, size_t, const char *);

static const struct conn_ops ws_ops = {
	.start = ws_start,
	.want = ws_want,
	.defer = ws_defer,
	.frame = ws_frame,
	.kick = ws_kick,
	.linger = ws_linger,
	.discard = ws_discard,
	.free = ws_free,
};

static const struct wslay_frame_callbacks ws_wslay_callbacks = {
	.send_callback = ws_send_cb,
	.recv_callback = ws_recv_cb,
	.genmask_callback = NULL,	/* a server masks nothing */
};

/*
 * Make the connection of an upgraded request on bev, which it takes
 * (http.c has written the 101 answer to it); NULL if wslay cannot make
 * its context, bev then still the caller's. The session attaches itself
 * (session_open) before anything is read.
 */
struct conn *
ws_conn_new(struct server *srv, struct bufferevent *bev, int tls)
{
	struct ws_conn	*ws;

	ws = ac_xcalloc(1, sizeof *ws);
	ws->srv = srv;
	ws->bev = bev;
	if (wslay_frame_context_init(&ws->wf, &ws_wslay_callbacks, ws) != 0) {
		free(ws);
		return (NULL);
	}
	if (tls)
		ws->flags |= WS_TLS;
	ws->c.ops = &ws_ops;
	ws->c.in = evbuffer_new();
	ws->c.out = bufferevent_get_output(bev);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, ws_read_cb, NULL, ws_event_cb, ws);
	return (&ws->c);
}

/* wslay wants bytes: what the socket input holds, up to len. */
static ssize_t
ws_recv_cb(uint8_t *buf, size_t len, int flags, void *arg)
{
	struct ws_conn	*ws = arg;
	int		 n;

	n = evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
	return (n > 0 ? n : -1);	/* wslay: nothing yet */
}

/* wslay never sends here: our frames are written by ws_header. */
static ssize_t
ws_send_cb(const uint8_t *data, size_t len, int flags, void *arg)
{
	return (-1);
}

/*
 * Add the header of an unmasked, final server frame of opcode whose
 * payload of len bytes follows (RFC 6455 5.2, lengths in their shortest
 * form).
 */
static void
ws_header(struct evbuffer *out, int opcode, size_t len)
{
	uint8_t	h[10];
	size_t	n, i;

	h[0] = 0x80 | opcode;
	if (len < 126) {
		h[1] = len;
		n = 2;
	} else if (len <= 0xffff) {
		h[1] = 126;
		h[2] = len >> 8;
		h[3] = len & 0xff;
		n = 4;
	} else {
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (uint64_t)len >> (56 - 8 * i);
		n = 10;
	}
	evbuffer_add(out, h, n);
}

/* Queue the close frame, once; none after output was dropped. */
static void
ws_close_frame(struct ws_conn *ws)
{
	uint16_t	code = ws->close_code;
	uint8_t		payload[2];

	if (ws->flags & WS_CLOSING)
		return;
	ws->flags |= WS_CLOSING;
	if (code == 0)
		code = ws->srv->shutting_down ? WS_CLOSE_GOING_AWAY :
		    WS_CLOSE_NORMAL;
	payload[0] = code >> 8;
	payload[1] = code & 0xff;
	ws_header(ws->c.out, WS_OP_CLOSE, sizeof payload);
	evbuffer_add(ws->c.out, payload, sizeof payload);
}

/*
 * The peer broke the RFC: handle the protocol frames it sent before, then
 * close the session with code in the close frame. Returns -1 (the
 * session is closed), for the caller to return.
 */
static int
ws_fail(struct ws_conn *ws, uint16_t code, const char *fmt, ...)
{
	struct ac_session	*s = ws->c.s;
	va_list			 ap;
	char			 what[160];

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	log_info("session %s: websocket: %s: closing with %u peer=%s",
	    s->id, what, code, s->peer);
	ws->close_code = code;
	dispatch_input(s, 1);
	if (s->flags & AC_SESS_DEAD)
		return (-1);
	ws_close_frame(ws);
	s->flags |= AC_SESS_DRAIN;
	session_close(s, AC_CLOSE_PROTOCOL_ERROR, NULL);
	return (-1);
}

/* Check a frame's header as its payload starts; -1 if the session was
 * closed for it. */
static int
ws_frame_start(struct ws_conn *ws, const struct wslay_frame_iocb *io)
{
	struct server	*srv = ws->srv;
	uint64_t	 max;
	int		 control = (io->opcode & 0x8) != 0;

	if (io->rsv != 0)
		return (ws_fail(ws, WS_CLOSE_PROTOCOL, "reserved bits set "
		    "(no extension was agreed)"));
	if (!io->mask)
		return (ws_fail(ws, WS_CLOSE_PROTOCOL, "an unmasked frame "
		    "from the client"));
	switch (io->opcode) {
	case WS_OP_CONTINUATION:
		if (!(ws->flags & WS_FRAGMENTED))
			return (ws_fail(ws, WS_CLOSE_PROTOCOL, "a "
			    "continuation frame with no message to continue"));
		break;
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		if (ws->flags & WS_FRAGMENTED)
			return (ws_fail(ws, WS_CLOSE_PROTOCOL, "a new message "
			    "inside a fragmented one"));
		if (io->opcode == WS_OP_TEXT)
			return (ws_fail(ws, WS_CLOSE_UNSUPPORTED, "a text "
			    "message (the protocol travels in binary ones)"));
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		break;		/* wslay checked: final, at most 125 bytes */
	default:
		return (ws_fail(ws, WS_CLOSE_PROTOCOL, "opcode %u",
		    io->opcode));
	}
	max = AC_FIXED_HEADER_LEN + (uint64_t)srv->limits.max_header_len +
	    srv->limits.max_content_len;
	if (!control && io->payload_length > max)
		return (ws_fail(ws, WS_CLOSE_TOO_BIG, "a frame of %llu bytes "
		    "(at most %llu: one largest protocol frame)",
		    (unsigned long long)io->payload_length,
		    (unsigned long long)max));
	ws->opcode = io->opcode;
	ws->left = io->payload_length;
	ws->nctl = 0;
	ws->flags |= WS_IN_FRAME;
	if (!control) {
		if (io->fin)
			ws->flags &= ~WS_FRAGMENTED;
		else
			ws->flags |= WS_FRAGMENTED;
		if (io->payload_length == 0 &&
		    ws_charge(ws, 0, "empty frames") == -1)
			return (-1);
	}
	return (0);
}

/*
 * Charge a WebSocket frame that carries no byte of the protocol's stream
 * (a ping, a pong, an empty data frame) to the session's rates, as a
 * frame of bytes: the rates see only protocol frames otherwise, and such
 * frames cost parsing and nothing else, so a peer without the key could
 * send them (six bytes each) as fast as it can for the whole
 * handshake_timeout. 0 if it passes, 1 if it is over the rates, -1 if the
 * session was closed for keeping on (rate_limit_disconnect).
 */
static int
ws_charge(struct ws_conn *ws, size_t bytes, const char *what)
{
	struct ac_session	*s = ws->c.s;
	struct server		*srv = ws->srv;
	struct timeval		 now;
	const char		*which;

	event_base_gettimeofday_cached(srv->base, &now);
	switch (ratelimit_frame(&s->rl, srv->cfg, &now, bytes, &which)) {
	case RATELIMIT_PASS:
		return (0);
	case RATELIMIT_ABUSE:
		log_info("session %s: websocket %s over %s peer=%s", s->id,
		    what, which, s->peer);
		s->flags |= AC_SESS_DRAIN;
		session_close(s, AC_CLOSE_RATE_LIMIT, "Rate limit exceeded");
		return (-1);
	default:
		return (1);
	}
}

/*
 * A ping: answer it with a pong of the same payload, unless the session
 * is over its rate limits (pings count as frames) or its output already
 * holds max_output_buffer, which a peer that never reads would otherwise
 * grow with pongs. -1 if the session was closed.
 */
static int
ws_ping(struct ws_conn *ws)
{
	struct ac_session	*s = ws->c.s;
	struct server		*srv = ws->srv;

	if (evbuffer_get_length(ws->c.out) > srv->cfg->max_output_buffer) {
		session_close(s, AC_CLOSE_SLOW_CONSUMER, "slow consumer");
		return (-1);
	}
	switch (ws_charge(ws, ws->nctl, "pings")) {
	case -1:
		return (-1);
	case 1:
		return (0);	/* dropped: no pong */
	default:
		break;
	}
	ws_header(ws->c.out, WS_OP_PONG, ws->nctl);
	evbuffer_add(ws->c.out, ws->ctl, ws->nctl);
	return (0);
}

/*
 * The peer closed the WebSocket: check its close frame, handle the
 * protocol frames already received, and end the session with a close
 * frame of the same code. Returns -1 (the session is closed).
 */
static int
ws_peer_close(struct ws_conn *ws)
{
	struct ac_session	*s = ws->c.s;
	unsigned int		 code;

	if (ws->nctl == 1)
		return (ws_fail(ws, WS_CLOSE_PROTOCOL, "a close frame of one "
		    "byte"));
	if (ws->nctl == 0)
		code = WS_CLOSE_NORMAL;
	else {
		code = (ws->ctl[0] << 8) | ws->ctl[1];
		/* RFC 6455 7.4: what may be sent (1004-1006 and 1015
		 * never are), and the IANA registry up to 1014. */
		if (code < 1000 || code >= 5000 || code == 1004 ||
		    code == 1005 || code == 1006 ||
		    (code > 1014 && code < 3000))
			return (ws_fail(ws, WS_CLOSE_PROTOCOL, "close code %u",
			    code));
		if (!ac_utf8_valid(ws->ctl + 2, ws->nctl - 2))
			return (ws_fail(ws, WS_CLOSE_BAD_DATA, "a close reason "
			    "that is not UTF-8"));
	}
	log_debug("session %s: websocket closed by the client (%u) peer=%s",
	    s->id, code, s->peer);
	ws->close_code = code;
	dispatch_input(s, 1);
	if (s->flags & AC_SESS_DEAD)
		return (-1);
	ws_close_frame(ws);
	session_close(s, AC_CLOSE_EOF, NULL);
	return (-1);
}

/* A frame's payload is all here: act on a control frame. */
static int
ws_frame_end(struct ws_conn *ws)
{
	ws->flags &= ~WS_IN_FRAME;
	switch (ws->opcode) {
	case WS_OP_PING:
		return (ws_ping(ws));
	case WS_OP_PONG:
		/* Unasked for or not, only the rates bound them. */
		return (ws_charge(ws, ws->nctl, "pongs") == -1 ? -1 : 0);
	case WS_OP_CLOSE:
		return (ws_peer_close(ws));
	default:
		return (0);	/* data */
	}
}

/*
 * Parse what the socket input holds, binary payloads into in, until it
 * is used up or in holds high bytes (then WS_STALLED: ws_want resumes).
 * Returns 0, or -1 if the session was closed.
 */
static int
ws_parse(struct ws_conn *ws)
{
	struct wslay_frame_iocb	 io;
	ssize_t			 r;

	while (evbuffer_get_length(ws->c.in) < ws->high) {
		memset(&io, 0, sizeof io);
		r = wslay_frame_recv(ws->wf, &io);
		if (r == WSLAY_ERR_WANT_READ)
			return (0);
		if (r < 0)
			return (ws_fail(ws, WS_CLOSE_PROTOCOL, "a frame header "
			    "RFC 6455 forbids (a fragmented control frame, "
			    "one over 125 bytes, or a length not in its "
			    "shortest form)"));
		if (!(ws->flags & WS_IN_FRAME) && ws_frame_start(ws, &io) == -1)
			return (-1);
		if (io.data_length != 0) {
			if (ws->opcode & 0x8) {
				memcpy(ws->ctl + ws->nctl, io.data,
				    io.data_length);
				ws->nctl += io.data_length;
			} else
				evbuffer_add(ws->c.in, io.data,
				    io.data_length);
			ws->left -= io.data_length;
		}
		if (ws->left == 0 && ws_frame_end(ws) == -1)
			return (-1);
	}
	ws->flags |= WS_STALLED;
	return (0);
}

/* Bytes arrived, or a deferred run: parse them, then dispatch. */
static void
ws_read_cb(struct bufferevent *bev, void *arg)
{
	struct ws_conn		*ws = arg;
	struct ac_session	*s = ws->c.s;

	if (s->flags & AC_SESS_DEAD)
		return;
	ws->flags &= ~WS_STALLED;
	if (ws_parse(ws) == -1)
		return;
	if (evbuffer_get_length(ws->c.in) >= ws->need)
		dispatch_input(s, 0);
}

/* End of file or an error on a live session. */
static void
ws_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ws_conn		*ws = arg;
	struct ac_session	*s = ws->c.s;
	int			 err = EVUTIL_SOCKET_ERROR();
	char			 why[512];

	if (s->flags & AC_SESS_DEAD)
		return;
	if (what & BEV_EVENT_ERROR) {
		ws->c.flags |= CONN_BROKEN;
		if ((ws->flags & WS_TLS) &&
		    tls_bev_failure(bev, 1, err, why, sizeof why)) {
			log_info("session %s: TLS connection failed: %s "
			    "peer=%s", s->id, why, s->peer);
			session_close(s, AC_CLOSE_TLS_ERROR, NULL);
			return;
		}
		log_debug("session %s: %s peer=%s", s->id,
		    evutil_socket_error_to_string(err), s->peer);
		session_close(s, AC_CLOSE_IO_ERROR, NULL);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* What came before the end is handled, as on TCP. */
		if (ws_parse(ws) == -1)
			return;
		dispatch_input(s, 1);
		session_close(s, AC_CLOSE_EOF, NULL);
	}
}

/* The session is registered: start reading, bytes already in too. */
static void
ws_start(struct conn *c)
{
	struct ws_conn	*ws = (struct ws_conn *)c;

	bufferevent_setwatermark(ws->bev, EV_READ, 0, WS_READ_HIGH);
	bufferevent_enable(ws->bev, EV_READ|EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_input(ws->bev)) != 0)
		ws_defer(c);
}

/*
 * Dispatch runs once need bytes are in, and parsing stops when high are
 * (never below need); parsing paused for room resumes on a later turn.
 */
static void
ws_want(struct conn *c, size_t need, size_t high)
{
	struct ws_conn	*ws = (struct ws_conn *)c;

	ws->need = need;
	ws->high = need > high ? need : high;
	if ((ws->flags & WS_STALLED) &&
	    evbuffer_get_length(c->in) < ws->high) {
		ws->flags &= ~WS_STALLED;
		ws_defer(c);
	}
}

/* Run the read callback on a later loop turn, bytes or not. */
static void
ws_defer(struct conn *c)
{
	struct ws_conn	*ws = (struct ws_conn *)c;

	bufferevent_trigger(ws->bev, EV_READ,
	    BEV_TRIG_IGNORE_WATERMARKS|BEV_TRIG_DEFER_CALLBACKS);
}

/* A protocol frame of len bytes follows: it is one binary message. */
static void
ws_frame(struct conn *c, size_t len)
{
	ws_header(c->out, WS_OP_BINARY, len);
}

/* Output is written by the bufferevent as it is added. */
static void
ws_kick(struct conn *c)
{
}

/* Flush what is queued and a close frame, then let the session finish. */
static void
ws_linger(struct conn *c)
{
	struct ws_conn	*ws = (struct ws_conn *)c;

	ws_close_frame(ws);
	bufferevent_disable(ws->bev, EV_READ);
	bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
	bufferevent_setcb(ws->bev, NULL, ws_linger_write_cb,
	    ws_linger_event_cb, ws);
	bufferevent_enable(ws->bev, EV_WRITE);
}

/* The last frames of a closing session are written. */
static void
ws_linger_write_cb(struct bufferevent *bev, void *arg)
{
	struct ws_conn	*ws = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_finish(ws->c.s);
}

/* The peer of a closing session went away before its last frames. */
static void
ws_linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ws_conn	*ws = arg;

	session_finish(ws->c.s);
}

/* Drop the unsent output now (max_memory); 1 if there was some. The
 * peer may hold part of a message: no close frame may follow. */
static int
ws_discard(struct conn *c)
{
	struct ws_conn	*ws = (struct ws_conn *)c;

	if (evbuffer_get_length(c->out) == 0)
		return (0);
	ws->flags |= WS_CLOSING;
	/* A socket bufferevent keeps the output's start frozen. */
	evbuffer_unfreeze(c->out, 1);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	return (1);
}

/*
 * One attempt, never waiting, to write the close frame of a session that
 * closed with nothing queued (so that it has no write in progress).
 */
static void
ws_write_now(struct ws_conn *ws)
{
	struct evbuffer	*out = ws->c.out;
	SSL		*ssl;
	size_t		 len = evbuffer_get_length(out);
	evutil_socket_t	 fd = bufferevent_getfd(ws->bev);

	if (ws->flags & WS_TLS) {
		if ((ssl = bufferevent_openssl_get_ssl(ws->bev)) != NULL) {
			SSL_write(ssl, evbuffer_pullup(out, len), (int)len);
			SSL_shutdown(ssl);	/* and close_notify */
			ERR_clear_error();
		}
		return;
	}
	if (fd == -1)
		return;
	evbuffer_unfreeze(out, 1);
	evbuffer_write(out, fd);
}

/*
 * Read and discard what a flooding peer sent and we never read, up to
 * WS_DRAIN_MAX bytes and never waiting, so that the close is a FIN and
 * not a reset that could destroy our last frames (as in conn.c).
 */
static void
ws_drain(struct ws_conn *ws)
{
	char		buf[16384];
	evutil_socket_t	fd = bufferevent_getfd(ws->bev);
	size_t		total = 0;
	ssize_t		n;

	if (fd == -1)
		return;
	while (total < WS_DRAIN_MAX) {
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n <= 0)
			break;
		total += n;
	}
}

/* Close the connection, with a close frame if none went yet, and free c. */
static void
ws_free(struct conn *c)
{
	struct ws_conn	*ws = (struct ws_conn *)c;

	if (!(c->flags & CONN_BROKEN) && !(ws->flags & WS_CLOSING) &&
	    evbuffer_get_length(c->out) == 0) {
		ws_close_frame(ws);
		ws_write_now(ws);
	}
	if (c->s->flags & AC_SESS_DRAIN)
		ws_drain(ws);
	wslay_frame_context_free(ws->wf);
	evbuffer_free(c->in);
	bufferevent_free(ws->bev);
	free(ws);
}
