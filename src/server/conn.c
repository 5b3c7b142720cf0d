/*
 * conn.c - the connection of a tcp, unix or tls session: a socket under a
 * bufferevent, and its I/O fast paths. This is the struct conn transport
 * of server.h (which says what a transport is and how a WebSocket one
 * fits): in and out are the bufferevent's own buffers; bytes that arrive
 * go to dispatch_input() (dispatch.c), frames the session queues are
 * written once per loop turn, and a closing session's last frames are
 * flushed before the socket closes.
 *
 * A TLS session is the same code on a bufferevent_openssl: the handshake
 * runs inside libevent, session_init waits in the output buffer until it
 * is done, and framing works on the decrypted bytes as for tcp. Its
 * failures are logged with OpenSSL's reasons (conn_tls_failed).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
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
#include <openssl/x509.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define CONN_DRAIN_MAX		(1024 * 1024)
#define CONN_READ_FIRST		4096
#define CONN_READ_MAX		(64 * 1024)

/* A socket connection: struct conn and its bufferevent. */
struct conn_socket {
	struct conn			 c;	/* first, for casts */
	struct server			*srv;
	struct bufferevent		*bev;	/* TLS: bufferevent_openssl */
	size_t				 inlen;	/* input left by the last read
						   callback */
	size_t				 high;	/* read no further (want) */
	int				 flags;
#define CONN_PLAIN	0x1	/* plain socket: read and written directly */
#define CONN_DIRTY	0x2	/* on srv->dirty: output to flush */
#define CONN_TLS	0x4	/* a TLS connection */
#define CONN_TLS_UP	0x8	/* TLS handshake done, no fatal error */
	TAILQ_ENTRY(conn_socket)	 dirty_entry;
};

static void	conn_start(struct conn *);
static void	conn_want(struct conn *, size_t, size_t);
static void	conn_defer(struct conn *);
static void	conn_kick(struct conn *);
static void	conn_linger(struct conn *);
static int	conn_discard(struct conn *);
static void	conn_free(struct conn *);
static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
static void	conn_flush_cb(evutil_socket_t, short, void *);
static void	conn_linger_write_cb(struct bufferevent *, void *);
static void	conn_linger_event_cb(struct bufferevent *, short, void *);

static const struct conn_ops conn_socket_ops = {
	.start = conn_start,
	.want = conn_want,
	.defer = conn_defer,
	.frame = NULL,		/* a byte stream */
	.kick = conn_kick,
	.linger = conn_linger,
	.discard = conn_discard,
	.free = conn_free,
};

/*
 * Make the connection of a new socket (tls NULL: plain tcp or unix), or
 * return NULL after logging why, the socket closed. The session attaches
 * itself (session_open) before anything is read.
 */
struct conn *
conn_socket_new(struct server *srv, int fd, struct ssl_ctx_st *tls,
    const char *peer)
{
	struct conn_socket	*cs;
	SSL			*ssl;

	cs = ac_xcalloc(1, sizeof *cs);
	cs->srv = srv;
	if (tls != NULL) {
		if ((ssl = SSL_new(tls)) == NULL) {
			log_warnx("cannot make a TLS session: closing %s",
			    peer);
			ERR_clear_error();
			evutil_closesocket(fd);
			free(cs);
			return (NULL);
		}
		/*
		 * On failure libevent has already freed ssl and, through
		 * its socket BIO, closed fd: closing it again could close
		 * somebody else's descriptor.
		 */
		cs->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (cs->bev == NULL) {
			log_warnx("cannot make a TLS bufferevent: closing %s",
			    peer);
			free(cs);
			return (NULL);
		}
		/* Peers that skip close_notify end with EOF, not error. */
		bufferevent_openssl_set_allow_dirty_shutdown(cs->bev, 1);
		cs->flags |= CONN_TLS;
	} else {
		cs->bev = bufferevent_socket_new(srv->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		if (cs->bev == NULL) {
			log_warnx("cannot make a bufferevent: closing %s",
			    peer);
			evutil_closesocket(fd);
			free(cs);
			return (NULL);
		}
		cs->flags |= CONN_PLAIN;
	}
	if (srv->flush_ev == NULL) {
		TAILQ_INIT(&srv->dirty);
		srv->flush_ev = event_new(srv->base, -1, 0, conn_flush_cb,
		    srv);
	}
	cs->c.ops = &conn_socket_ops;
	cs->c.in = bufferevent_get_input(cs->bev);
	cs->c.out = bufferevent_get_output(cs->bev);
	bufferevent_setcb(cs->bev, conn_read_cb, (cs->flags & CONN_PLAIN) ?
	    conn_write_cb : NULL, conn_event_cb, cs);
	return (&cs->c);
}

/* Start reading (a TLS socket writes too, for its handshake). */
static void
conn_start(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	if (cs->flags & CONN_PLAIN)
		bufferevent_enable(cs->bev, EV_READ);	/* see conn_kick */
	else
		bufferevent_enable(cs->bev, EV_READ|EV_WRITE);
}

/*
 * The read callback runs once need bytes are in; reading stops when high
 * are (the read high watermark, never below need: a frame that needs
 * more than high would stall).
 */
static void
conn_want(struct conn *c, size_t need, size_t high)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	cs->high = high;
	bufferevent_setwatermark(cs->bev, EV_READ, need,
	    need > high ? need : high);
}

/* Run the read callback again on a later loop turn, bytes or not. */
static void
conn_defer(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	bufferevent_trigger(cs->bev, EV_READ,
	    BEV_TRIG_IGNORE_WATERMARKS|BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * A bufferevent arms its write event when output is added and disarms it
 * when the output drains: two epoll_ctl() calls per flush, and the write
 * waits for the next loop turn. A plain socket therefore keeps EV_WRITE
 * disabled: queueing output marks it dirty, and once per loop turn the
 * flush event writes every dirty socket's output straight to it
 * (conn_flush_cb). Only when the socket is full is EV_WRITE enabled,
 * and conn_write_cb disables it again once the output is empty.
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
 * TLS keeps the bufferevent's own writes (OpenSSL writes through it). A
 * closing session leaves the dirty list (conn_linger, conn_free): its
 * last frames go out through the linger path, which enables EV_WRITE.
 */
static void
conn_kick(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;
	struct server		*srv = cs->srv;

	if ((cs->flags & (CONN_PLAIN|CONN_DIRTY)) != CONN_PLAIN ||
	    (c->s->flags & AC_SESS_DEAD))
		return;
	/* Waiting for the socket: the write event will flush it. */
	if (bufferevent_get_enabled(cs->bev) & EV_WRITE)
		return;
	cs->flags |= CONN_DIRTY;
	TAILQ_INSERT_TAIL(&srv->dirty, cs, dirty_entry);
	event_active(srv->flush_ev, EV_TIMEOUT, 0);
}

/* Take a socket off the dirty list. */
static void
conn_undirty(struct conn_socket *cs)
{
	if (cs->flags & CONN_DIRTY) {
		TAILQ_REMOVE(&cs->srv->dirty, cs, dirty_entry);
		cs->flags &= ~CONN_DIRTY;
	}
}

/* Write a plain socket's output until it is empty or the socket full. */
static void
conn_flush(struct conn_socket *cs)
{
	struct ac_session	*s = cs->c.s;
	struct evbuffer		*out = cs->c.out;
	evutil_socket_t		 fd = bufferevent_getfd(cs->bev);
	int			 n, error;

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
			cs->c.flags |= CONN_BROKEN;
			session_close(s, AC_CLOSE_IO_ERROR, NULL);
			return;
		}
		bufferevent_enable(cs->bev, EV_WRITE);
		return;
	}
}

/* Once per loop turn: flush every dirty socket. */
static void
conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server		*srv = arg;
	struct conn_socket	*cs;

	while ((cs = TAILQ_FIRST(&srv->dirty)) != NULL) {
		conn_undirty(cs);
		conn_flush(cs);
	}
}

/* A full socket took the rest of a plain socket's output. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
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
 * CONN_READ_MAX while they come back full, so that an idle session
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
conn_read_socket(struct conn_socket *cs, enum ac_close_reason *reason)
{
	struct ac_session	*s = cs->c.s;
	struct evbuffer		*in = cs->c.in;
	struct evbuffer_iovec	 vec[2];
	struct iovec		 iov[2];
	evutil_socket_t		 fd = bufferevent_getfd(cs->bev);
	size_t			 have, want, size = CONN_READ_FIRST, left;
	ssize_t			 n;
	int			 nvec, i, error;

	if (fd == -1)
		return (0);
	for (;;) {
		have = evbuffer_get_length(in);
		if (have >= cs->high)
			return (0);
		want = cs->high - have < size ? cs->high - have : size;
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
		if (size < CONN_READ_MAX)
			size *= 2;
	}
}

/*
 * Bytes arrived (past the low watermark dispatch asked for): a plain
 * socket is read further here, past libevent's 4 KiB a read
 * (conn_read_socket), then the input goes to dispatch. At end of file or
 * on a read error the frames already in are handled first, then the
 * session closes.
 */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn_socket	*cs = arg;
	struct ac_session	*s = cs->c.s;
	enum ac_close_reason	 reason = AC_CLOSE_EOF;
	int			 ended = 0;

	if (s->flags & AC_SESS_DEAD)
		return;
	/*
	 * libevent reads what FIONREAD reports, at most 4096 bytes: if it
	 * added less since the last callback, it emptied the socket, and
	 * another read would only return EAGAIN.
	 */
	if ((cs->flags & CONN_PLAIN) &&
	    evbuffer_get_length(cs->c.in) - cs->inlen >= CONN_READ_FIRST) {
		/* A socket bufferevent keeps the input's end frozen
		 * outside its own reads. */
		evbuffer_unfreeze(cs->c.in, 0);
		ended = conn_read_socket(cs, &reason) == -1;
		evbuffer_freeze(cs->c.in, 0);
	}
	dispatch_input(s, ended);
	if (s->flags & AC_SESS_DEAD)
		return;
	if (ended) {
		if (reason == AC_CLOSE_IO_ERROR)
			cs->c.flags |= CONN_BROKEN;
		session_close(s, reason, NULL);
		return;
	}
	cs->inlen = evbuffer_get_length(cs->c.in);
}

/* The TLS handshake finished: say with what, at debug level. */
static void
conn_tls_up(struct conn_socket *cs)
{
	struct ac_session	*s = cs->c.s;
	SSL			*ssl = bufferevent_openssl_get_ssl(cs->bev);
	X509			*cert;
	char			 subject[256];

	cs->flags |= CONN_TLS_UP;
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
 * An error on a TLS connection: log the OpenSSL reasons (and why a
 * certificate was refused, tls_bev_failure). Returns 1 if it is a TLS
 * failure, 0 if it is a plain socket error after a good handshake.
 */
static int
conn_tls_failed(struct conn_socket *cs, int err)
{
	struct ac_session	*s = cs->c.s;
	char			 why[512];

	if (!tls_bev_failure(cs->bev, cs->flags & CONN_TLS_UP, err, why,
	    sizeof why))
		return (0);
	log_info("session %s: TLS %s failed: %s peer=%s", s->id,
	    (cs->flags & CONN_TLS_UP) ? "connection" : "handshake", why,
	    s->peer);
	return (1);
}

/* End of file, a socket error or a timeout on a live session; for TLS
 * also the end of the handshake. */
static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn_socket	*cs = arg;
	struct ac_session	*s = cs->c.s;
	int			 err = EVUTIL_SOCKET_ERROR();

	if (s->flags & AC_SESS_DEAD)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		conn_tls_up(cs);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && (cs->flags & CONN_TLS) &&
	    conn_tls_failed(cs, err)) {
		cs->c.flags |= CONN_BROKEN;
		session_close(s, AC_CLOSE_TLS_ERROR, NULL);
		return;
	}
	if (what & BEV_EVENT_EOF)
		session_close(s, AC_CLOSE_EOF, NULL);
	else if (what & BEV_EVENT_ERROR) {
		log_debug("session %s: %s peer=%s", s->id,
		    evutil_socket_error_to_string(err), s->peer);
		cs->c.flags |= CONN_BROKEN;
		session_close(s, AC_CLOSE_IO_ERROR, NULL);
	}
}

/*
 * Flush what is queued, then let the session finish (libevent's
 * close_on_finished_writecb): reading stops, and the write callback runs
 * once the output is empty, whatever its size.
 */
static void
conn_linger(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	conn_undirty(cs);
	bufferevent_disable(cs->bev, EV_READ);
	bufferevent_setwatermark(cs->bev, EV_WRITE, 0, 0);
	bufferevent_setcb(cs->bev, NULL, conn_linger_write_cb,
	    conn_linger_event_cb, cs);
	bufferevent_enable(cs->bev, EV_WRITE);
}

/* The last frames of a closing session are written. */
static void
conn_linger_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn_socket	*cs = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_finish(cs->c.s);
}

/* The peer of a closing session went away before its last frames. */
static void
conn_linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn_socket	*cs = arg;

	session_finish(cs->c.s);
}

/*
 * Drop the unsent output now (max_memory): the peer may then have part
 * of a frame, so nothing more may follow. Returns 1 if there was some.
 */
static int
conn_discard(struct conn *c)
{
	if (evbuffer_get_length(c->out) == 0)
		return (0);
	/* A socket bufferevent keeps the output's start frozen. */
	evbuffer_unfreeze(c->out, 1);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	return (1);
}

/*
 * Send TLS close_notify before the socket closes, so the peer can tell
 * our close from a cut connection. One non-blocking attempt: if the
 * socket cannot take it now, the peer sees a plain EOF, which it must
 * accept anyway (libevent does not send close_notify on its own).
 */
static void
conn_tls_shutdown(struct conn_socket *cs)
{
	SSL	*ssl;

	if ((ssl = bufferevent_openssl_get_ssl(cs->bev)) == NULL ||
	    evbuffer_get_length(cs->c.out) != 0)
		return;
	SSL_shutdown(ssl);
	ERR_clear_error();
}

/*
 * Read and discard what a flooding peer has sent and we never read, up to
 * CONN_DRAIN_MAX bytes and never waiting. Closing a socket with unread
 * input makes the kernel send a reset instead of a FIN, and a reset can
 * destroy our last frames (the error, the disconnect) in the peer's
 * receive queue before it reads them.
 */
static void
conn_drain(struct conn_socket *cs)
{
	char		buf[16384];
	evutil_socket_t	fd = bufferevent_getfd(cs->bev);
	size_t		total = 0;
	ssize_t		n;

	if (fd == -1)
		return;
	while (total < CONN_DRAIN_MAX) {
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n <= 0)
			break;
		total += n;
	}
}

/* Close the socket, politely if it can still be written, and free c. */
static void
conn_free(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	conn_undirty(cs);
	if (c->s->flags & AC_SESS_DRAIN)
		conn_drain(cs);
	if ((cs->flags & CONN_TLS_UP) && !(c->flags & CONN_BROKEN))
		conn_tls_shutdown(cs);
	bufferevent_free(cs->bev);
	free(cs);
}
