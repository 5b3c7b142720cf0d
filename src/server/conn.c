/*
 * conn.c - the connection of a tcp, unix or tls session and its I/O fast
 * paths. This is the struct conn transport of server.h (which says what a
 * transport is and how a WebSocket one fits): bytes that arrive go to
 * dispatch_input() (dispatch.c), frames the session queues are written
 * once per loop turn, and a closing session's last frames are flushed
 * before the socket closes.
 *
 * A plain socket (tcp, unix) has no bufferevent: two events of its own
 * (read, and write only while the socket is full) and two evbuffers
 * without callbacks. A bufferevent costs, per frame queued, a callback on
 * its output buffer, and per read an ioctl(FIONREAD) and a read of at
 * most 4 KiB; and its 500 bytes are a third of an idle session. Here a
 * read fills the input straight from the socket until it would block,
 * and the output is written by the loop turn's flush.
 *
 * A TLS session is a bufferevent_openssl: the handshake runs inside
 * libevent, session_init waits in the output buffer until it is done,
 * and framing works on the decrypted bytes as for tcp. Its failures are
 * logged with OpenSSL's reasons (conn_tls_failed).
 *
 * Why one file past 700 lines: every operation of the transport (start,
 * want, defer, write, linger, discard, free) is one function with a
 * branch for a plain socket and one for a bufferevent. Split by socket
 * kind, each operation would be in two files and the choice between them
 * in a third; read here, an operation is read whole.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
#define CONN_SCRATCH		(256 * 1024)
#define CONN_READ_FIRST		(64 * 1024)
#define CONN_READ_MAX		(1024 * 1024)
#define CONN_BLOCK_FIRST	512
#define CONN_BLOCK		(16 * 1024)
#define CONN_WRITE_IOV		64

/* A piece of a plain socket's output (conn_write). */
struct conn_block {
	struct conn_block	*next;
	size_t			 off;	/* written */
	size_t			 len;	/* filled */
	size_t			 size;
	uint8_t			 data[];
};

/*
 * Written blocks of the sizes conn_write makes, kept for the next ones
 * (at most CONN_POOL_MAX of each size: 3.4 MiB in all, at most, held
 * once a fan-out has been that wide). A fan-out makes a few blocks per
 * recipient every loop turn, all before the first is written and freed,
 * and past glibc's per-thread cache (blocks up to 1 KiB) each malloc and
 * free was a search of its bins: 2.7 % of a chat room delivery's cost at
 * window 64 and 1.3 % of broadcast's, whose frames are smaller; with 32
 * of each kept, a room of 100 still paid most of it. The loop has one
 * thread, which alone writes.
 */
#define CONN_POOL_SIZES		4	/* 512 B, x 4 up to 16 KiB */
#define CONN_POOL_MAX		128
static struct conn_block	*conn_pool[CONN_POOL_SIZES];
static unsigned int		 conn_pool_len[CONN_POOL_SIZES];

/* A socket connection: struct conn and its events or bufferevent. */
struct conn_socket {
	struct conn			 c;	/* first, for casts */
	struct server			*srv;
	struct bufferevent		*bev;	/* TLS: bufferevent_openssl */
	evutil_socket_t			 fd;	/* plain */
	struct event			*rev;	/* plain: readable */
	struct event			*wev;	/* plain: writable, while full */
	size_t				 need;	/* plain: dispatch at this */
	size_t				 high;	/* read no further (want) */
	struct conn_block		*ohead;	/* plain: output before out */
	struct conn_block		*otail;
	size_t				 olen;	/* bytes in the blocks */

	int				 flags;
#define CONN_PLAIN	0x1	/* plain socket: read and written directly */
#define CONN_DIRTY	0x2	/* on srv->dirty: output to flush */
#define CONN_TLS	0x4	/* a TLS connection */
#define CONN_TLS_UP	0x8	/* TLS handshake done, no fatal error */
#define CONN_READING	0x10	/* plain: rev is added */
#define CONN_WRITING	0x20	/* plain: wev is added (the socket was full) */
#define CONN_LINGER	0x40	/* plain: flushing the last frames */
#define CONN_STARTED	0x80	/* plain: reading may start */
#define CONN_SHARED	0x100	/* plain: out holds frames (conn_share) */
#define CONN_RESUME	0x200	/* plain: on srv->resume, input waiting */
#define CONN_EOF	0x400	/* TLS: the stream ended (conn_read_cb) */
	TAILQ_ENTRY(conn_socket)	 dirty_entry;
	TAILQ_ENTRY(conn_socket)	 resume_entry;
};

static void	conn_start(struct conn *);
static void	conn_want(struct conn *, size_t, size_t);
static void	conn_defer(struct conn *);
static void	conn_kick(struct conn *);
static void	conn_linger(struct conn *);
static int	conn_discard(struct conn *);
static void	conn_free(struct conn *);
static int	conn_write(struct conn *, const void *, size_t);
static int	conn_share(struct conn *, struct ac_frame *);
static size_t	conn_pending(struct conn *);
static void	conn_plain_read_cb(evutil_socket_t, short, void *);
static void	conn_plain_write_cb(evutil_socket_t, short, void *);
static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
static void	conn_flush_cb(evutil_socket_t, short, void *);
static void	conn_resume_cb(evutil_socket_t, short, void *);
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
	.write = conn_write,
	.share = conn_share,
	.pending = conn_pending,
};

/* Set up a plain socket's events and buffers; -1 if libevent cannot. */
static int
conn_plain_init(struct conn_socket *cs, int fd)
{
	struct server	*srv = cs->srv;

	if (evutil_make_socket_nonblocking(fd) == -1)
		return (-1);
	cs->fd = fd;
	cs->rev = event_new(srv->base, fd, EV_READ|EV_PERSIST,
	    conn_plain_read_cb, cs);
	cs->wev = event_new(srv->base, fd, EV_WRITE|EV_PERSIST,
	    conn_plain_write_cb, cs);
	cs->c.in = evbuffer_new();
	cs->c.out = evbuffer_new();
	if (cs->rev == NULL || cs->wev == NULL || cs->c.in == NULL ||
	    cs->c.out == NULL) {
		if (cs->rev != NULL)
			event_free(cs->rev);
		if (cs->wev != NULL)
			event_free(cs->wev);
		if (cs->c.in != NULL)
			evbuffer_free(cs->c.in);
		if (cs->c.out != NULL)
			evbuffer_free(cs->c.out);
		return (-1);
	}
	cs->flags |= CONN_PLAIN;
	return (0);
}

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
	cs->fd = -1;
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
		cs->c.in = bufferevent_get_input(cs->bev);
		cs->c.out = bufferevent_get_output(cs->bev);
		bufferevent_setcb(cs->bev, conn_read_cb, NULL, conn_event_cb,
		    cs);
	} else if (conn_plain_init(cs, fd) == -1) {
		log_warnx("cannot make the events of a connection: closing %s",
		    peer);
		evutil_closesocket(fd);
		free(cs);
		return (NULL);
	}
	if (srv->flush_ev == NULL) {
		TAILQ_INIT(&srv->dirty);
		srv->flush_ev = event_new(srv->base, -1, 0, conn_flush_cb,
		    srv);
		TAILQ_INIT(&srv->resume);
		srv->resume_ev = evtimer_new(srv->base, conn_resume_cb, srv);
	}
	cs->c.ops = &conn_socket_ops;
	return (&cs->c);
}

/*
 * Read a plain socket, once started, while its input is under the high
 * mark (want) and none of it waits for a later turn (conn_defer), and
 * stop reading otherwise. A linger stops reading for good.
 */
static void
conn_plain_reading(struct conn_socket *cs)
{
	int	on;

	on = (cs->flags & (CONN_STARTED|CONN_LINGER|CONN_RESUME)) ==
	    CONN_STARTED && evbuffer_get_length(cs->c.in) < cs->high;
	if (on && !(cs->flags & CONN_READING)) {
		event_add(cs->rev, NULL);
		cs->flags |= CONN_READING;
	} else if (!on && (cs->flags & CONN_READING)) {
		event_del(cs->rev);
		cs->flags &= ~CONN_READING;
	}
}

/* Start reading (a TLS socket writes too, for its handshake). */
static void
conn_start(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	if (cs->flags & CONN_PLAIN) {
		cs->flags |= CONN_STARTED;
		conn_plain_reading(cs);
	} else
		bufferevent_enable(cs->bev, EV_READ|EV_WRITE);
}

/*
 * Dispatch runs once need bytes are in; reading stops when high are (one
 * largest frame: never below need, or a frame that needs more than high
 * would stall). For TLS these are the bufferevent's read watermarks.
 */
static void
conn_want(struct conn *c, size_t need, size_t high)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	if (high < need)
		high = need;
	cs->need = need;
	cs->high = high;
	if (cs->flags & CONN_PLAIN)
		conn_plain_reading(cs);
	else
		bufferevent_setwatermark(cs->bev, EV_READ, need, high);
}

/*
 * Run dispatch again on a later loop turn, bytes or not.
 *
 * A later turn, not later in this one: the input left waits behind every
 * socket the loop has not polled yet. A plain socket goes on srv->resume,
 * which a zero timer runs once per turn, after epoll_wait() (an event
 * made active here would run in this very turn, and a sender with a long
 * backlog would keep the loop from polling until it was all handled).
 * Until then the socket is not read, so that its input is handled where
 * it lies and not copied again with each read. TLS defers its
 * bufferevent's callback, which libevent runs on the next turn too.
 */
static void
conn_defer(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;
	struct server		*srv = cs->srv;
	static const struct timeval	 now = { 0, 0 };

	if (!(cs->flags & CONN_PLAIN)) {
		bufferevent_trigger(cs->bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS|BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	if (cs->flags & CONN_RESUME)
		return;
	cs->flags |= CONN_RESUME;
	TAILQ_INSERT_TAIL(&srv->resume, cs, resume_entry);
	srv->nresume++;
	if (!evtimer_pending(srv->resume_ev, NULL))
		evtimer_add(srv->resume_ev, &now);
	conn_plain_reading(cs);
}

/* Take a socket off the resume list. */
static void
conn_unresume(struct conn_socket *cs)
{
	if (cs->flags & CONN_RESUME) {
		TAILQ_REMOVE(&cs->srv->resume, cs, resume_entry);
		cs->srv->nresume--;
		cs->flags &= ~CONN_RESUME;
	}
}

/*
 * Once per loop turn: dispatch the input of each plain socket deferred
 * before this turn, in the order they were deferred, one batch each
 * (dispatch.c). One deferred again goes to the back, for the next turn.
 */
static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server		*srv = arg;
	struct conn_socket	*cs;
	struct ac_session	*s;
	unsigned int		 n = srv->nresume;

	while (n-- > 0 && (cs = TAILQ_FIRST(&srv->resume)) != NULL) {
		conn_unresume(cs);
		s = cs->c.s;
		if ((s->flags & AC_SESS_DEAD) || (cs->flags & CONN_LINGER))
			continue;
		dispatch_input(s, 0);
		if (!(s->flags & AC_SESS_DEAD))
			conn_plain_reading(cs);
	}
}

/*
 * Output is written once per loop turn, not when it is queued: queueing
 * marks a plain socket dirty, and once per loop turn the flush event
 * writes every dirty socket's output straight to it (conn_flush_cb). Only
 * when the socket is full is the write event added, and it is deleted
 * again once the output is empty. So there is no epoll_ctl() per flush,
 * and the replies made from one read leave together.
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
 * last frames go out through the linger path.
 */
static void
conn_kick(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;
	struct server		*srv = cs->srv;

	/* Not plain, already dirty, waiting for the socket or lingering:
	 * the write event or the flush will take it. */
	if ((cs->flags & (CONN_PLAIN|CONN_DIRTY|CONN_WRITING|CONN_LINGER)) !=
	    CONN_PLAIN || (c->s->flags & AC_SESS_DEAD))
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

/* The pool of blocks of size bytes (of data), or -1 for a size conn_write
 * makes only for a large frame. */
static int
conn_pool_index(size_t size)
{
	size_t	s = CONN_BLOCK_FIRST - sizeof(struct conn_block);
	int	i;

	for (i = 0; i < CONN_POOL_SIZES; i++) {
		if (size == s)
			return (i);
		s = s * 4 + sizeof(struct conn_block);
		if (s > CONN_BLOCK - sizeof(struct conn_block))
			s = CONN_BLOCK - sizeof(struct conn_block);
	}
	return (-1);
}

/* A block for size bytes: one kept from before, or a new one; NULL when
 * memory ran out. */
static struct conn_block *
conn_block_new(size_t size)
{
	struct conn_block	*b;
	int			 i = conn_pool_index(size);

	if (i != -1 && (b = conn_pool[i]) != NULL) {
		conn_pool[i] = b->next;
		conn_pool_len[i]--;
	} else if ((b = malloc(sizeof *b + size)) == NULL)
		return (NULL);
	b->next = NULL;
	b->off = b->len = 0;
	b->size = size;
	return (b);
}

/* Free the blocks kept (the end of the process). */
void
conn_pool_free(void)
{
	struct conn_block	*b;
	int			 i;

	for (i = 0; i < CONN_POOL_SIZES; i++) {
		while ((b = conn_pool[i]) != NULL) {
			conn_pool[i] = b->next;
			free(b);
		}
		conn_pool_len[i] = 0;
	}
}

/* Give a block back: kept for the next of its size, or freed. */
static void
conn_block_free(struct conn_block *b)
{
	int	i = conn_pool_index(b->size);

	if (i != -1 && conn_pool_len[i] < CONN_POOL_MAX) {
		b->next = conn_pool[i];
		conn_pool[i] = b;
		conn_pool_len[i]++;
	} else
		free(b);
}

/*
 * Add bytes to a connection's output. A plain socket copies them into
 * blocks of its own (written before out), as Redis builds its replies:
 * per frame a memcpy() into the last block, and a new block (up to 16
 * KiB) now and then, with no evbuffer chain bookkeeping or callback per
 * frame, so that a fan-out to many sockets costs each little more than
 * the copy (a frame's bytes given to many sockets by reference instead
 * cost the kernel more, measured, than the copy saves). The blocks are
 * freed once written: an idle session holds none. Bytes added while out
 * holds shared frames (which must leave first) go into out after them;
 * TLS (no blocks) adds to its bufferevent's output.
 */
static int
conn_write(struct conn *c, const void *data, size_t len)
{
	struct conn_socket	*cs = (struct conn_socket *)c;
	struct conn_block	*b = cs->otail;
	size_t			 size;

	if ((cs->flags & (CONN_PLAIN|CONN_SHARED)) != CONN_PLAIN)
		return (evbuffer_add(c->out, data, len));
	if (b == NULL || b->size - b->len < len) {
		/*
		 * The first block is small, the next ones four times the
		 * last up to CONN_BLOCK: ten thousand idle sessions each
		 * answered with a pong in one loop turn must not each take
		 * (and touch a page of) 16 KiB until the flush.
		 */
		size = b == NULL ? CONN_BLOCK_FIRST - sizeof *b :
		    b->size * 4 + sizeof *b;
		if (size > CONN_BLOCK - sizeof *b)
			size = CONN_BLOCK - sizeof *b;
		if (size < len)
			size = len;
		if ((b = conn_block_new(size)) == NULL)
			return (-1);
		if (cs->otail != NULL)
			cs->otail->next = b;
		else
			cs->ohead = b;
		cs->otail = b;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	cs->olen += len;
	return (0);
}

/*
 * Add a large frame to a connection's output by reference (its bytes are
 * shared with every other output it is queued to): into out, which is
 * written after the blocks.
 */
static int
conn_share(struct conn *c, struct ac_frame *f)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	if (ac_frame_share(f, c->out) == -1)
		return (-1);
	cs->flags |= CONN_SHARED;
	return (0);
}

/* Bytes queued and not written: the blocks', then out's. */
static size_t
conn_pending(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	if ((cs->flags & (CONN_PLAIN|CONN_SHARED)) == CONN_PLAIN)
		return (cs->olen);
	return (cs->olen + evbuffer_get_length(c->out));
}

/* Drop the first n bytes of the blocks (written, or discarded). */
static void
conn_blocks_drain(struct conn_socket *cs, size_t n)
{
	struct conn_block	*b;
	size_t			 left;

	while (n != 0 && (b = cs->ohead) != NULL) {
		left = b->len - b->off;
		if (n < left) {
			b->off += n;
			cs->olen -= n;
			return;
		}
		n -= left;
		cs->olen -= left;
		cs->ohead = b->next;
		if (cs->ohead == NULL)
			cs->otail = NULL;
		conn_block_free(b);
	}
}

/* Free every block, written or not. */
static void
conn_blocks_free(struct conn_socket *cs)
{
	struct conn_block	*b;

	while ((b = cs->ohead) != NULL) {
		cs->ohead = b->next;
		conn_block_free(b);
	}
	cs->otail = NULL;
	cs->olen = 0;
}

/*
 * Write a plain socket's output, its blocks then out, one writev() a
 * pass, until it is empty or the socket full. Returns 1 when the output
 * is empty, 0 when the socket is full (the write event is then added),
 * -1 when the socket failed.
 */
static int
conn_plain_write(struct conn_socket *cs)
{
	struct evbuffer		*out = cs->c.out;
	struct evbuffer_iovec	 ev[CONN_WRITE_IOV];
	struct iovec		 iov[CONN_WRITE_IOV];
	struct conn_block	*b;
	size_t			 done;
	ssize_t			 n;
	int			 niov, nev, i, error;

	for (;;) {
		niov = 0;
		for (b = cs->ohead; b != NULL && niov < CONN_WRITE_IOV;
		    b = b->next) {
			iov[niov].iov_base = b->data + b->off;
			iov[niov++].iov_len = b->len - b->off;
		}
		if (b == NULL && niov < CONN_WRITE_IOV &&
		    (cs->flags & CONN_SHARED)) {
			nev = evbuffer_peek(out, -1, NULL, ev,
			    CONN_WRITE_IOV - niov);
			if (nev > CONN_WRITE_IOV - niov)
				nev = CONN_WRITE_IOV - niov;
			for (i = 0; i < nev; i++) {
				iov[niov].iov_base = ev[i].iov_base;
				iov[niov++].iov_len = ev[i].iov_len;
			}
		}
		if (niov == 0)
			break;
		n = writev(cs->fd, iov, niov);
		if (n == -1) {
			error = errno;
			if (error == EINTR)
				continue;
			if (error != EAGAIN && error != EWOULDBLOCK) {
				log_debug("session %s: %s peer=%s",
				    cs->c.s->id, strerror(error),
				    cs->c.s->peer);
				cs->c.flags |= CONN_BROKEN;
				return (-1);
			}
			if (!(cs->flags & CONN_WRITING)) {
				event_add(cs->wev, NULL);
				cs->flags |= CONN_WRITING;
			}
			return (0);
		}
		done = (size_t)n < cs->olen ? (size_t)n : cs->olen;
		conn_blocks_drain(cs, done);
		if ((size_t)n > done)
			evbuffer_drain(out, (size_t)n - done);
		if ((cs->flags & CONN_SHARED) &&
		    evbuffer_get_length(out) == 0)
			cs->flags &= ~CONN_SHARED;
	}
	if (cs->flags & CONN_WRITING) {
		event_del(cs->wev);
		cs->flags &= ~CONN_WRITING;
	}
	return (1);
}

/* Once per loop turn: flush every dirty socket. */
static void
conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server		*srv = arg;
	struct conn_socket	*cs;

	while ((cs = TAILQ_FIRST(&srv->dirty)) != NULL) {
		conn_undirty(cs);
		if (conn_plain_write(cs) == -1)
			session_close(cs->c.s, AC_CLOSE_IO_ERROR, NULL);
	}
}

/*
 * A full plain socket can take more: write, and once the output is empty
 * stop watching (and, lingering, let the session finish).
 */
static void
conn_plain_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_socket	*cs = arg;
	struct ac_session	*s = cs->c.s;
	int			 r;

	r = conn_plain_write(cs);
	if (cs->flags & CONN_LINGER) {
		if (r != 0)
			session_finish(s);
	} else if (r == -1)
		session_close(s, AC_CLOSE_IO_ERROR, NULL);
}

/*
 * Read a plain socket into its input, straight into space reserved
 * there (no copy), until the socket would block or the input holds one
 * largest frame, the bound the high mark keeps (see max_content_size in
 * asyncchat.conf(5)): never more, as each read asks only for what is left
 * under the bound. Reads start at 64 KiB and double up to CONN_READ_MAX
 * while they come back full. This is for a frame larger than the shared
 * buffer (conn_plain_read), arriving.
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
	size_t			 have, want, size = CONN_READ_FIRST, left;
	ssize_t			 n;
	int			 nvec, i, error;

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
		n = readv(cs->fd, iov, nvec);
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
 * One buffer for every plain socket's reads. A read lands here, after
 * whatever part of a frame the session's input held (moved here), and
 * dispatch_bytes() handles the whole frames where they are: no copy and
 * no allocation for them, one read() for everything the socket has (up
 * to this size), and a session holds no input between reads but the
 * part of a frame it is receiving. The loop has one thread, and dispatch
 * runs before the next read, so one buffer serves them all.
 */
static uint8_t	conn_scratch[CONN_SCRATCH];

/*
 * Read what a plain socket has and dispatch it. While the input holds at
 * most half of the shared buffer, the read goes into the shared buffer
 * (conn_scratch, above); a larger frame being received is read into the
 * input itself. Returns 0, or -1 at end of file or on an error, with
 * *reason set, after dispatching what was complete.
 */
static int
conn_plain_read(struct conn_socket *cs, enum ac_close_reason *reason)
{
	struct ac_session	*s = cs->c.s;
	struct evbuffer		*in = cs->c.in;
	size_t			 have = evbuffer_get_length(in), want;
	ssize_t			 n;
	int			 error, r;

	if (have > CONN_SCRATCH / 2) {
		r = conn_read_socket(cs, reason);
		if (r == -1 || evbuffer_get_length(in) >= cs->need)
			dispatch_input(s, r == -1);
		return (r);
	}
	if (have >= cs->high)
		return (0);
	want = cs->high - have;
	if (want > CONN_SCRATCH - have)
		want = CONN_SCRATCH - have;
	do
		n = read(cs->fd, conn_scratch + have, want);
	while (n == -1 && errno == EINTR);
	if (n > 0) {
		if (have != 0)
			evbuffer_remove(in, conn_scratch, have);
		dispatch_bytes(s, conn_scratch, have + (size_t)n, 0);
		return (0);
	}
	error = errno;
	if (n == -1 && (error == EAGAIN || error == EWOULDBLOCK))
		return (0);
	if (n == 0)
		*reason = AC_CLOSE_EOF;
	else {
		log_debug("session %s: %s peer=%s", s->id, strerror(error),
		    s->peer);
		*reason = AC_CLOSE_IO_ERROR;
	}
	dispatch_input(s, 1);
	return (-1);
}

/*
 * A plain socket is readable: read it and dispatch what came. At end of
 * file or on a read error the frames already in are handled first, then
 * the session closes.
 */
static void
conn_plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_socket	*cs = arg;
	struct ac_session	*s = cs->c.s;
	enum ac_close_reason	 reason = AC_CLOSE_EOF;
	int			 ended;

	if ((s->flags & AC_SESS_DEAD) ||
	    (cs->flags & (CONN_LINGER|CONN_RESUME)))
		return;
	ended = conn_plain_read(cs, &reason) == -1;
	if (s->flags & AC_SESS_DEAD)
		return;
	if (ended) {
		if (reason == AC_CLOSE_IO_ERROR)
			cs->c.flags |= CONN_BROKEN;
		session_close(s, reason, NULL);
		return;
	}
	conn_plain_reading(cs);
}

/* Bytes arrived on a TLS session, past the low watermark: dispatch; or
 * the stream ended (conn_event_cb): dispatch what is left, and close. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn_socket	*cs = arg;
	struct ac_session	*s = cs->c.s;

	if (s->flags & AC_SESS_DEAD)
		return;
	if (!(cs->flags & CONN_EOF)) {
		dispatch_input(s, 0);
		return;
	}
	dispatch_input(s, 1);
	if (!(s->flags & AC_SESS_DEAD))
		session_close(s, AC_CLOSE_EOF, NULL);
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
	if (what & BEV_EVENT_EOF) {
		/*
		 * libevent's TLS bufferevent tells of the end before it adds
		 * the bytes read with it to the input (they were lost: the
		 * last frame of a peer that closes at once). So the end is
		 * handled on a later turn, from the read callback, once they
		 * are in: the frames before it, then the close.
		 */
		cs->flags |= CONN_EOF;
		bufferevent_trigger(bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS|BEV_TRIG_DEFER_CALLBACKS);
	} else if (what & BEV_EVENT_ERROR) {
		log_debug("session %s: %s peer=%s", s->id,
		    evutil_socket_error_to_string(err), s->peer);
		cs->c.flags |= CONN_BROKEN;
		session_close(s, AC_CLOSE_IO_ERROR, NULL);
	}
}

/*
 * Flush what is queued, then let the session finish (libevent's
 * close_on_finished_writecb): reading stops, and the session finishes
 * once the output is empty, whatever its size, or the socket fails.
 */
static void
conn_linger(struct conn *c)
{
	struct conn_socket	*cs = (struct conn_socket *)c;

	conn_undirty(cs);
	conn_unresume(cs);
	if (cs->flags & CONN_PLAIN) {
		cs->flags |= CONN_LINGER;
		conn_plain_reading(cs);
		if (!(cs->flags & CONN_WRITING)) {
			event_add(cs->wev, NULL);
			cs->flags |= CONN_WRITING;
		}
		return;
	}
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
	struct conn_socket	*cs = (struct conn_socket *)c;

	if (conn_pending(c) == 0)
		return (0);
	/* A socket bufferevent keeps the output's start frozen. */
	if (!(cs->flags & CONN_PLAIN))
		evbuffer_unfreeze(c->out, 1);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	cs->flags &= ~CONN_SHARED;
	conn_blocks_free(cs);
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
	evutil_socket_t	fd = (cs->flags & CONN_PLAIN) ? cs->fd :
			    bufferevent_getfd(cs->bev);
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
	conn_unresume(cs);
	if (c->s->flags & AC_SESS_DRAIN)
		conn_drain(cs);
	if (cs->flags & CONN_PLAIN) {
		event_free(cs->rev);
		event_free(cs->wev);
		evbuffer_free(c->in);
		evbuffer_free(c->out);
		conn_blocks_free(cs);
		evutil_closesocket(cs->fd);
		free(cs);
		return;
	}
	if ((cs->flags & CONN_TLS_UP) && !(c->flags & CONN_BROKEN))
		conn_tls_shutdown(cs);
	bufferevent_free(cs->bev);
	free(cs);
}
