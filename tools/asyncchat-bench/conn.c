/*
 * conn.c - one connection of the load generator.
 *
 * Reading does not use bufferevents: libevent 2.1 reads at most 4096 bytes
 * per evbuffer_read() call, which would make the client, not the server,
 * the limit for large frames. A plain read event reads into one large
 * buffer shared by every connection (the loop runs one callback at a time);
 * only the partial frame left at the end of a read is copied aside into the
 * connection's own small buffer. Writes go to an evbuffer and are flushed
 * once per loop turn from an activated write event, so the replies to all
 * frames of one read leave in one writev().
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
	c->out = evbuffer_new();
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

/* Queue bytes to the server; they leave at the end of this loop turn. */
void
conn_write(struct conn *c, const void *data, size_t len)
{
	evbuffer_add(c->out, data, len);
	conn_flush_soon(c);
}

/* Arrange for the output to be written once the current callbacks end. */
void
conn_flush_soon(struct conn *c)
{
	if (c->closed || c->flush_queued || c->write_wanted)
		return;
	c->flush_queued = 1;
	event_active(c->wev, EV_WRITE, 1);
}

/* Write what is queued; wait for the socket if it is full. */
static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct bench	*b = c->b;
	int		 n;

	c->flush_queued = 0;
	if (c->closed)
		return;
	if (!c->connected) {
		conn_connected(c);
		if (!c->connected)
			return;
	}
	while (evbuffer_get_length(c->out) > 0) {
		n = evbuffer_write(c->out, c->fd);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (!b->finished)
				bench_fail(b, "connection %d: write: %s",
				    c->index, strerror(errno));
			conn_close(c);
			return;
		}
	}
	if (evbuffer_get_length(c->out) > 0) {
		if (!c->write_wanted) {
			event_add(c->wev, NULL);
			c->write_wanted = 1;
		}
	} else if (c->write_wanted) {
		event_del(c->wev);
		c->write_wanted = 0;
	}
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
			return;
		if (n <= 0) {
			if (!b->finished)
				bench_fail(b, "connection %d: %s", c->index,
				    n == 0 ? "closed by the server" :
				    strerror(errno));
			conn_close(c);
			return;
		}
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
			return;		/* the socket is drained */
	}
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
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (c->have_tmpl)
		tmpl_free(&c->tmpl);
	free(c->expect);
	free(c->in);
	free(c);
}
