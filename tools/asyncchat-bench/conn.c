/*
 * conn.c - one connection of the load generator.
 *
 * Reading does not use bufferevents: libevent 2.1 reads at most 4096 bytes
 * per evbuffer_read() call, which would make the client, not the server,
 * the limit for large frames. A plain read event reads into one large
 * buffer shared by every connection (the loop runs one callback at a time);
 * only the partial frame left at the end of a read is copied aside into the
 * connection's own small buffer. Writes are not evbuffers either: output is
 * appended to one flat buffer per connection (a template is copied into it
 * and patched there) and leaves in one write(): the replies to every frame
 * of a read at the end of that read, anything else once per loop turn.
 * The write event is enabled only while the socket is full.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "bench.h"

#define CONN_READ_SIZE		(256 * 1024)
#define CONN_READ_MAX		(32 * 1024 * 1024)
#define CONN_READS_PER_TURN	8

static void	conn_read_cb(evutil_socket_t, short, void *);
static void	conn_write_cb(evutil_socket_t, short, void *);
static int	conn_flush(struct conn *);

/* Make a connection object; it connects when conn_start() is called. */
struct conn *
conn_new(struct bench *b, int index, enum conn_role role)
{
	struct conn	*c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		abort();
	c->b = b;
	c->index = index;
	c->role = role;
	c->fd = -1;
	return c;
}

/* Start connecting; the write event reports when the connect finishes. */
int
conn_start(struct conn *c)
{
	struct bench	*b = c->b;

	if ((c->fd = target_connect(&b->target)) == -1) {
		bench_fail(b, "connection %d: cannot connect to %s: %s",
		    c->index, b->target.text, strerror(errno));
		return -1;
	}
	c->rev = event_new(b->base, c->fd, EV_READ|EV_PERSIST, conn_read_cb,
	    c);
	c->wev = event_new(b->base, c->fd, EV_WRITE|EV_PERSIST, conn_write_cb,
	    c);
	event_add(c->wev, NULL);
	c->write_wanted = 1;
	return 0;
}

/* Start as many pending connects as the parallel limit allows. */
void
conn_connect_more(struct bench *b)
{
	while (!b->finished && b->connecting < b->connect_parallel &&
	    b->next_connect < b->nconns) {
		if (conn_start(b->conns[b->next_connect++]) == -1)
			return;
		b->connecting++;
	}
}

/* The connect finished: start reading and greet the server if needed. */
static void
conn_connected(struct conn *c)
{
	struct bench	*b = c->b;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		bench_fail(b, "connection %d: connect to %s: %s", c->index,
		    b->target.text, strerror(err));
		return;
	}
	c->connected = 1;
	b->connecting--;
	event_add(c->rev, NULL);
	conn_connect_more(b);

	switch (b->framing) {
	case FRAMING_PROTOCOL:
		break;		/* the server speaks first: session_init */
	case FRAMING_RAW:
		if (raw_tmpl(c) == -1)
			bench_fail(b, "cannot build the raw message");
		else
			b->on_ready(c);
		break;
	case FRAMING_RESP:
		if (c->role == ROLE_RECEIVER)
			resp_subscribe(c);
		else if (resp_tmpl(c) == -1)
			bench_fail(b, "cannot build the PUBLISH command");
		else
			b->on_ready(c);
		break;
	}
}

/*
 * Room for len more bytes of output, which the caller fills at once: the
 * bytes leave with the next flush. The output is one flat buffer, so a
 * flush is one write() whatever was queued.
 */
uint8_t *
conn_reserve(struct conn *c, size_t len)
{
	uint8_t	*p;
	size_t	 need;

	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + len > c->out_size && c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_size) {
		need = c->out_len + len;
		c->out_size = c->out_size * 2 > need ? c->out_size * 2 : need;
		if ((c->out = realloc(c->out, c->out_size)) == NULL)
			abort();
	}
	p = c->out + c->out_len;
	c->out_len += len;
	return p;
}

/* Queue bytes to the server; they leave at the end of this loop turn. */
void
conn_write(struct conn *c, const void *data, size_t len)
{
	memcpy(conn_reserve(c, len), data, len);
	conn_flush_soon(c);
}

/* Queue what an evbuffer holds (a frame from the codec) and drain it. */
void
conn_write_evbuffer(struct conn *c, struct evbuffer *buf)
{
	size_t	len = evbuffer_get_length(buf);

	evbuffer_remove(buf, conn_reserve(c, len), len);
	conn_flush_soon(c);
}

/*
 * Write what is queued until the socket is full; then wait for it with the
 * write event. Returns -1 if the connection failed (the run has then).
 */
static int
conn_flush(struct conn *c)
{
	struct bench	*b = c->b;
	ssize_t		 n;

	while (c->out_off < c->out_len) {
		n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (!b->finished)
				bench_fail(b, "connection %d: write: %s",
				    c->index, strerror(errno));
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off < c->out_len) {
		if (!c->write_wanted) {
			event_add(c->wev, NULL);
			c->write_wanted = 1;
		}
	} else {
		c->out_off = c->out_len = 0;
		if (c->write_wanted) {
			event_del(c->wev);
			c->write_wanted = 0;
		}
	}
	return 0;
}

/*
 * Arrange for the output to be written once the current callbacks end:
 * the connection joins the list that one event, made active once per loop
 * turn, flushes. Messages queued by several callbacks of one turn (a
 * fan-out sender refilled by each receiver's read) leave in one write.
 */
void
conn_flush_soon(struct conn *c)
{
	struct bench	*b = c->b;

	if (c->closed || c->dirty || !c->connected)
		return;
	c->dirty = 1;
	b->dirty[b->ndirty++] = c;
	if (!b->flush_queued) {
		b->flush_queued = 1;
		event_active(b->flush_ev, EV_TIMEOUT, 1);
	}
}

/* Flush every connection that has output queued in this turn. */
void
conn_flush_all(struct bench *b)
{
	struct conn	*c;
	int		 i;

	b->flush_queued = 0;
	for (i = 0; i < b->ndirty; i++) {
		c = b->dirty[i];
		c->dirty = 0;
		if (!c->closed && !c->write_wanted)
			conn_flush(c);
	}
	b->ndirty = 0;
}

/* The socket takes output again, or the connect has finished. */
static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	if (c->closed)
		return;
	if (!c->connected) {
		conn_connected(c);
		if (!c->connected || c->closed)
			return;
		if (c->out_off == c->out_len) {
			event_del(c->wev);
			c->write_wanted = 0;
			return;
		}
	}
	conn_flush(c);
}

/* Keep the unparsed end of a read for the next one. */
static void
conn_keep(struct conn *c, const uint8_t *p, size_t len)
{
	if (len > c->in_size) {
		free(c->in);
		if ((c->in = malloc(len)) == NULL)
			abort();
		c->in_size = len;
	}
	if (len > 0)		/* c->in may still be NULL */
		memmove(c->in, p, len);
	c->in_len = len;
}

/* Hand complete frames to the framing: bytes used, or SIZE_MAX on error. */
static size_t
conn_parse(struct conn *c, const uint8_t *p, size_t len)
{
	switch (c->b->framing) {
	case FRAMING_PROTOCOL:
		return session_parse(c, p, len);
	case FRAMING_RAW:
		return raw_parse(c, p, len);
	case FRAMING_RESP:
		return resp_parse(c, p, len);
	}
	return SIZE_MAX;
}

/* Read what the socket has, frame it, and keep the partial rest. */
static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct bench	*b = c->b;
	size_t		 have, used;
	ssize_t		 n;
	int		 turns;

	for (turns = 0; turns < CONN_READS_PER_TURN; turns++) {
		if (c->closed || b->finished)
			return;
		if (b->rbuf_size < c->in_len + CONN_READ_SIZE / 2) {
			b->rbuf_size = c->in_len + CONN_READ_SIZE;
			free(b->rbuf);
			if ((b->rbuf = malloc(b->rbuf_size)) == NULL)
				abort();
		}
		if (c->in_len > 0)	/* c->in may be NULL: UB for memcpy */
			memcpy(b->rbuf, c->in, c->in_len);
		n = read(c->fd, b->rbuf + c->in_len, b->rbuf_size - c->in_len);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			if (!b->finished)
				bench_fail(b, "connection %d: %s", c->index,
				    n == 0 ? "closed by the server" :
				    strerror(errno));
			conn_close(c);
			return;
		}
		b->now_ns = bench_now_ns();
		have = c->in_len + (size_t)n;
		used = conn_parse(c, b->rbuf, have);
		if (used == SIZE_MAX) {
			conn_close(c);
			return;
		}
		if (have - used > CONN_READ_MAX) {
			bench_fail(b, "connection %d: a frame longer than "
			    "%d bytes", c->index, CONN_READ_MAX);
			conn_close(c);
			return;
		}
		conn_keep(c, b->rbuf + used, have - used);
		if ((size_t)n < b->rbuf_size - (have - (size_t)n))
			break;		/* the socket is drained */
	}
	/* Replies made from this read leave now, in one write. */
	if (!c->closed && !c->write_wanted && c->out_off < c->out_len)
		conn_flush(c);
}

/* Stop all I/O on a connection; its memory lives until conn_free(). */
void
conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	if (!c->connected && c->fd != -1)
		c->b->connecting--;
	if (c->rev != NULL)
		event_del(c->rev);
	if (c->wev != NULL)
		event_del(c->wev);
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

/* Close and free a connection. */
void
conn_free(struct conn *c)
{
	conn_close(c);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	free(c->out);
	free(c->slots);
	if (c->have_tmpl)
		tmpl_free(&c->tmpl);
	free(c->expect);
	free(c->in);
	free(c);
}
