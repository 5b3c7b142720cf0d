/*
 * memory.c - what the sessions hold, and max_memory: the frames received
 * or made (struct ac_frame, shared by every output buffer it is queued
 * to; a received one is first its connection's input, in place), each
 * session's input and unsent output, a running estimate of their sum, and
 * the count that closes the sessions holding the most once it is too
 * much.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

static void	memory_cb(evutil_socket_t, short, void *);

/*
 * Bytes held by every struct ac_frame alive, and bytes queued to output
 * buffers by reference (a shared frame is in several buffers but in
 * memory once). Process-wide: there is one server per process.
 */
static uint64_t	memory_frame_bytes;
static uint64_t	memory_ref_bytes;

/* One session and the bytes it holds, for sorting. */
struct memory_hog {
	struct ac_session	*s;
	size_t			 in;
	size_t			 out;
};

/*
 * Received frames' structs kept for the next ones, so that a frame costs
 * no allocation: at most a few are in use at once (the one being
 * dispatched, those plugins keep).
 */
#define MEMORY_POOL_MAX	64
static struct ac_frame	*memory_pool;
static unsigned int	 memory_pool_len;

/* Allocate a frame of len bytes with one reference. */
struct ac_frame *
ac_frame_new(size_t len, int type)
{
	struct ac_frame	*f;

	f = ac_xmalloc(sizeof *f + len);
	f->refs = 1;
	f->type = type;
	f->flags = 0;
	f->queued = 0;
	f->len = len;
	f->bytes = f->data;
	f->next = NULL;
	memory_frame_bytes += len;
	return (f);
}

/*
 * A frame for len bytes that stay where they are (a connection's input),
 * with one reference: they must outlive it, or it must own a copy first.
 */
struct ac_frame *
ac_frame_borrow(const uint8_t *bytes, size_t len)
{
	struct ac_frame	*f;

	if ((f = memory_pool) != NULL) {
		memory_pool = f->next;
		memory_pool_len--;
	} else
		f = ac_xmalloc(sizeof *f);
	f->refs = 1;
	f->type = -1;
	f->flags = AC_FRAME_BORROWED|AC_FRAME_POOLED;
	f->queued = 0;
	f->len = len;
	f->bytes = (uint8_t *)bytes;
	f->next = NULL;
	return (f);
}

/* Make a borrowed frame own a copy of its bytes; the others already do. */
void
ac_frame_own(struct ac_frame *f)
{
	uint8_t	*copy;

	if (!(f->flags & AC_FRAME_BORROWED))
		return;
	copy = ac_xmalloc(f->len);
	memcpy(copy, f->bytes, f->len);
	f->bytes = copy;
	f->flags = (f->flags & ~AC_FRAME_BORROWED) | AC_FRAME_COPIED;
	memory_frame_bytes += f->len;
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
	if (f == NULL || --f->refs != 0)
		return;
	if (!(f->flags & AC_FRAME_BORROWED))
		memory_frame_bytes -= f->len;
	if (f->flags & AC_FRAME_COPIED)
		free(f->bytes);
	if (!(f->flags & AC_FRAME_POOLED))
		free(f);
	else if (memory_pool_len < MEMORY_POOL_MAX) {
		f->next = memory_pool;
		memory_pool = f;
		memory_pool_len++;
	} else
		free(f);
}

/* Free the pool of frame structs (the end of the process). */
void
ac_frame_pool_free(void)
{
	struct ac_frame	*f;

	while ((f = memory_pool) != NULL) {
		memory_pool = f->next;
		free(f);
	}
	memory_pool_len = 0;
}

/* An output buffer is done with a referenced frame. */
static void
memory_frame_cleanup_cb(const void *data, size_t len, void *arg)
{
	memory_ref_bytes -= len;
	ac_frame_unref(arg);
}

/*
 * Add a frame to an output buffer by reference, not by copy: it stays
 * alive until the buffer has written it, and counts once however many
 * buffers hold it. 0, or -1 if the buffer refused it.
 */
int
ac_frame_share(struct ac_frame *f, struct evbuffer *out)
{
	ac_frame_own(f);
	ac_frame_ref(f);
	if (evbuffer_add_reference(out, f->bytes, f->len,
	    memory_frame_cleanup_cb, f) == -1) {
		ac_frame_unref(f);
		return (-1);
	}
	memory_ref_bytes += f->len;
	return (0);
}

/* Make the event that counts, once (at the first accept). */
void
memory_init(struct server *srv)
{
	if (srv->memory_ev == NULL)
		srv->memory_ev = event_new(srv->base, -1, 0, memory_cb, srv);
}

/* Bytes a session holds in input (or all of the frame it is receiving)
 * and in unsent output. */
static void
memory_usage(struct ac_session *s, size_t *in, size_t *out)
{
	*in = *out = 0;
	if (s->conn == NULL)
		return;
	*in = evbuffer_get_length(s->conn->in);
	if (s->need > *in)
		*in = s->need;
	*out = session_pending(s);
}

/*
 * The bytes every session holds, closing ones included: input, the rest
 * of the frames being received (a peer announces a frame before it sends
 * it), unsent output, with each frame shared by several output buffers
 * counted once. A count over every session: it runs when a running
 * estimate passes max_memory (memory_add) and for the metrics.
 */
uint64_t
memory_total(struct server *srv)
{
	struct ac_session	*s;
	uint64_t		 total = memory_frame_bytes;
	size_t			 in, out;

	TAILQ_FOREACH(s, &srv->reg.list, entry) {
		memory_usage(s, &in, &out);
		total += in + out;
	}
	TAILQ_FOREACH(s, &srv->lingering, entry) {
		memory_usage(s, &in, &out);
		total += in + out;
	}
	/* A shared frame is in total once, and in each buffer it is queued
	 * to; part of it may have been written already. */
	if (total < memory_ref_bytes)
		return (0);
	return (total - memory_ref_bytes);
}

/*
 * Add n bytes to the running estimate (bytes queued, frames announced).
 * Writes are not followed one by one: the estimate only grows, and once
 * it passes max_memory the memory event counts what is really held.
 */
void
memory_add(struct server *srv, size_t n)
{
	srv->memory_estimate += n;
	if (srv->memory_estimate > srv->cfg->max_memory &&
	    srv->memory_ev != NULL)
		event_active(srv->memory_ev, EV_TIMEOUT, 0);
}

/* Sort sessions by their unsent output, most first. */
static int
memory_hog_out_cmp(const void *a, const void *b)
{
	const struct memory_hog	*ha = a, *hb = b;

	if (ha->out != hb->out)
		return (ha->out > hb->out ? -1 : 1);
	return (0);
}

/* Sort sessions by their input, most first. */
static int
memory_hog_in_cmp(const void *a, const void *b)
{
	const struct memory_hog	*ha = a, *hb = b;

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
memory_shed(struct memory_hog *hogs, size_t n, int output,
    uint64_t *total, uint64_t target)
{
	struct ac_session	*s;
	size_t			 i, closed = 0, bytes;

	for (i = 0; i < n && *total > target; i++) {
		s = hogs[i].s;
		bytes = output ? hogs[i].out : hogs[i].in;
		if (bytes == 0)
			break;
		if (s->conn == NULL)
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
 * paused by dispatch_input) is so spared while others hold output.
 *
 * With that margin counts are rare: after one, at least max_memory / 8
 * bytes must be added before the next (unless nothing is left to close).
 * It runs from the event loop, after the callbacks of this turn and the
 * flush that writes their output, so that sessions which keep up hold
 * nothing when it counts.
 */
static void
memory_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server		*srv = arg;
	struct ac_session	*s;
	struct memory_hog	*hogs;
	uint64_t		 total, max = srv->cfg->max_memory;
	uint64_t		 target = max - max / 4;
	size_t			 n = 0, i, closed;

	total = memory_total(srv);
	srv->memory_estimate = total;
	if (total <= max - max / 8)
		return;

	TAILQ_FOREACH(s, &srv->lingering, entry)
		n++;
	hogs = ac_xreallocarray(NULL, srv->reg.count + n + 1, sizeof *hogs);
	n = 0;
	TAILQ_FOREACH(s, &srv->reg.list, entry) {
		hogs[n].s = s;
		memory_usage(s, &hogs[n].in, &hogs[n].out);
		n++;
	}
	TAILQ_FOREACH(s, &srv->lingering, entry) {
		hogs[n].s = s;
		memory_usage(s, &hogs[n].in, &hogs[n].out);
		n++;
	}
	for (i = 0; i < n; i++)
		session_ref(hogs[i].s);

	log_warnx("%llu bytes buffered, over 7/8 of max_memory (%llu): "
	    "closing the sessions that hold the most",
	    (unsigned long long)total, (unsigned long long)max);
	qsort(hogs, n, sizeof *hogs, memory_hog_out_cmp);
	closed = memory_shed(hogs, n, 1, &total, target);
	if (total > target) {
		qsort(hogs, n, sizeof *hogs, memory_hog_in_cmp);
		closed += memory_shed(hogs, n, 0, &total, target);
	}
	for (i = 0; i < n; i++)
		session_unref(hogs[i].s);
	free(hogs);
	srv->memory_estimate = memory_total(srv);
	log_info("closed %zu session%s for max_memory: %llu bytes buffered "
	    "now", closed, closed == 1 ? "" : "s",
	    (unsigned long long)srv->memory_estimate);
}
