/*
 * echo.c - echo and raw modes: every connection keeps `window` messages in
 * flight and sends the next one as each comes back, checked for its
 * sender, its order and its content; the round trip of each is sampled.
 *
 * How a reply is checked. The servers of these modes (asyncchatd's echo
 * plugin, raw-echo) send each message back verbatim, and a frame that is
 * byte for byte the one sent is exactly as valid as the frame sent. So each
 * connection keeps, per message in flight, the bytes that changed when the
 * template was stamped for it (content CRC, HMAC, stamp: SLOT_LEN bytes),
 * and the frame that comes back is compared with the template and that
 * slot: every byte of it, and the sequence number due, in a few memcmp()s
 * instead of a decode (CRCs, HMAC, JSON: 2.4 us a frame, which made the
 * client the limit of every run). A frame that is not the one due (a pong,
 * a re-encoded or altered reply, another message) takes the codec's full
 * decode and the checks below; --full-verify decodes every frame.
 *
 * What is sent is checked too, so that the template code cannot hide a bug
 * by being on both sides of the comparison: the codec decodes the first
 * frame each connection sends and every ECHO_CHECK_EVERY-th after it, and a
 * frame it rejects fails the run. asyncchatd checks every frame it gets.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <asyncchat/frame.h>

#include "bench.h"

#define ECHO_CHECK_EVERY	1024

/* The slot of the message with sequence number seq. */
static uint8_t *
echo_slot(struct conn *c, uint64_t seq)
{
	return c->slots + (size_t)(seq % (uint64_t)c->b->window) * SLOT_LEN;
}

/* Decode a frame about to be sent with the codec; -1 if it fails. */
static int
echo_check_sent(struct conn *c)
{
	struct bench		*b = c->b;
	const struct tmpl	*t = &c->tmpl;
	struct ac_message	 msg;
	enum ac_frame_status	 st;
	size_t			 used;
	int			 good;

	st = ac_frame_decode(b->key, &b->limits, t->bytes, t->len, &used,
	    &msg);
	if (st != AC_FRAME_OK) {
		bench_fail(b, "connection %d: a message as built fails the "
		    "codec: %s", c->index, ac_frame_status_name(st));
		return -1;
	}
	good = used == t->len && msg.type == AC_MSG_MESSAGE &&
	    msg.session_id != NULL && strcmp(msg.session_id, c->sid) == 0 &&
	    tmpl_content_ok(b, msg.content, msg.content_len) &&
	    memcmp(msg.content + msg.content_len - STAMP_LEN,
	    t->bytes + t->stamp_off, STAMP_LEN) == 0;
	ac_message_clear(&msg);
	if (!good) {
		bench_fail(b, "connection %d: a message as built decodes to "
		    "something else", c->index);
		return -1;
	}
	return 0;
}

/* Queue the connection's next message; it leaves with the next flush. */
static void
echo_send(struct conn *c)
{
	struct bench	*b = c->b;
	struct tmpl	*t = &c->tmpl;
	uint64_t	 seq = c->seq_sent++;

	tmpl_stamp(t, b->now_ns, seq, (uint32_t)c->index);
	if (t->protocol && seq % ECHO_CHECK_EVERY == 0 &&
	    echo_check_sent(c) == -1)
		return;
	tmpl_save(t, echo_slot(c, seq));
	memcpy(conn_reserve(c, t->len), t->bytes, t->len);
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
	for (i = 0; i < b->nconns && !b->finished; i++) {
		for (j = 0; j < b->window && !b->finished; j++)
			echo_send(b->conns[i]);
		conn_flush_soon(b->conns[i]);
	}
}

/* The message due came back: sample its round trip and send another. */
static void
echo_reply(struct conn *c, uint64_t sent_ns, size_t len, size_t wire)
{
	struct bench	*b = c->b;

	c->seq_acked++;
	if (b->running) {
		histogram_add(&b->hist, b->now_ns - sent_ns);
		b->window_msgs++;
		b->window_bytes += len;
		b->window_wire += wire;
		echo_send(c);
	} else
		bench_check_drained(b);
}

/*
 * Check a frame by identity with the message due on this connection;
 * returns 1 if it was that message (and has been handled), 0 to decode it.
 */
static int
echo_match(struct conn *c, const uint8_t *frame, size_t len)
{
	struct bench	*b = c->b;
	struct stamp	 st;
	const uint8_t	*slot;

	if (c->seq_acked >= c->seq_sent)
		return 0;
	slot = echo_slot(c, c->seq_acked);
	if (!tmpl_is_sent(&c->tmpl, slot, frame, len))
		return 0;
	memcpy(&st, slot + c->tmpl.var_len, STAMP_LEN);
	b->verified++;
	b->received++;
	echo_reply(c, st.sent_ns, b->size, len);
	return 1;
}

/* A decoded message: check sender, order and content, then as above. */
static void
echo_message(struct conn *c, const uint8_t *content, size_t len, size_t wire,
    const char *sid)
{
	struct bench	*b = c->b;
	struct stamp	 st;

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
	if (b->framing == FRAMING_PROTOCOL && !tmpl_content_ok(b, content,
	    len)) {
		bench_fail(b, "connection %d: content altered", c->index);
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
	if (st.seq >= c->seq_sent) {
		bench_fail(b, "connection %d: message %llu was never sent",
		    c->index, (unsigned long long)st.seq);
		return;
	}
	echo_reply(c, st.sent_ns, len, wire);
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
int
echo_setup(struct bench *b)
{
	int	i;

	for (i = 0; i < b->nconns; i++) {
		b->conns[i] = conn_new(b, i, ROLE_ECHO);
		b->conns[i]->slots = calloc(b->window, SLOT_LEN);
		if (b->conns[i]->slots == NULL)
			return -1;
	}
	b->on_ready = echo_ready;
	b->on_message = echo_message;
	b->is_drained = echo_is_drained;
	b->on_finish = echo_finish;
	if (!b->full_verify)
		b->match_sent = echo_match;
	return 0;
}
