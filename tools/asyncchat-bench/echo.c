/*
 * echo.c - echo and raw modes: every connection keeps `window` messages in
 * flight and sends the next one as each comes back, checked for its
 * sender, its order and its content; the round trip of each is sampled.
 */
#include "config.h"

#include <string.h>

#include "bench.h"

/* Send the connection's next message. */
void
echo_send(struct conn *c)
{
	struct bench	*b = c->b;

	tmpl_stamp(&c->tmpl, c->seq_sent++, (uint32_t)c->index);
	conn_write(c, c->tmpl.bytes, c->tmpl.len);
	b->sent++;
}

/* A connection is ready; when all are, fill every window and start. */
static void
echo_ready(struct conn *c)
{
	struct bench	*b = c->b;
	int		 i, j;

	if (++b->nready < b->nconns)
		return;
	bench_start_window(b);
	for (i = 0; i < b->nconns; i++) {
		for (j = 0; j < b->window; j++)
			echo_send(b->conns[i]);
	}
}

/* A message came back: check it, sample its round trip, send another. */
static void
echo_message(struct conn *c, const uint8_t *content, size_t len, size_t wire,
    const char *sid)
{
	struct bench	*b = c->b;
	struct stamp	 st;
	uint64_t	 now;

	if (len != b->size) {
		bench_fail(b, "connection %d: a %zu-byte message, expected "
		    "%zu", c->index, len, b->size);
		return;
	}
	if (b->framing == FRAMING_PROTOCOL &&
	    (sid == NULL || strcmp(sid, c->sid) != 0)) {
		bench_fail(b, "connection %d: a message from another session "
		    "(%s)", c->index, sid != NULL ? sid : "null");
		return;
	}
	memcpy(&st, content + len - STAMP_LEN, STAMP_LEN);
	if (st.sender != (uint32_t)c->index) {
		bench_fail(b, "connection %d: a message of connection %u",
		    c->index, st.sender);
		return;
	}
	if (st.seq != c->seq_acked) {
		if (st.seq < c->seq_acked)
			b->duplicates++;
		bench_fail(b, "connection %d: message %llu arrived when %llu "
		    "was due", c->index, (unsigned long long)st.seq,
		    (unsigned long long)c->seq_acked);
		return;
	}
	c->seq_acked++;

	if (b->running) {
		now = bench_now_ns();
		histogram_add(&b->hist, now - st.sent_ns);
		b->window_msgs++;
		b->window_bytes += len;
		b->window_wire += wire;
		echo_send(c);
	} else
		bench_check_drained(b);
}

/* Everything sent has come back. */
static int
echo_is_drained(struct bench *b)
{
	return b->received == b->sent;
}

/* Whatever did not come back by the end is lost. */
static void
echo_finish(struct bench *b)
{
	b->lost += b->sent - b->received;
}

/* Make the connections and hooks of an echo or raw run. */
void
echo_setup(struct bench *b)
{
	int	i;

	for (i = 0; i < b->nconns; i++)
		b->conns[i] = conn_new(b, i, ROLE_ECHO);
	b->on_ready = echo_ready;
	b->on_message = echo_message;
	b->is_drained = echo_is_drained;
	b->on_finish = echo_finish;
}
