/*
 * fanout.c - fanout, resp and room modes: P senders publish, every message
 * must reach every recipient exactly once and in each sender's order.
 *
 * A sender keeps at most `window` messages in flight, where a message is
 * done when all its recipients have it. Receivers see each sender's
 * messages in order, so a ring of `window` counters per sender (indexed by
 * sequence number) tells when the oldest message is done, in O(1) per
 * delivery. Through asyncchatd's broadcast plugin a sender also receives
 * the other senders' messages, so recipients = R + P - 1 there; Redis
 * publishers are not subscribers, so recipients = R.
 *
 * Verifying a delivery costs the receiver a full decode (CRCs, HMAC, JSON),
 * which on this machine caps one client near 400 k deliveries/s, far below
 * what the servers can push. Since relaying is verbatim, each sender keeps
 * the frames of its window as sent; a delivery byte-for-byte equal to one
 * of them is exactly as valid as the frame sent, so it is verified by one
 * memcmp() (its sender, session id and content are those of the copy).
 * Anything else (a re-encoded relay, a pong) still takes the full decode.
 * --full-verify decodes every delivery. What is sent is checked with the
 * codec as in echo.c: each sender's first frame and every
 * FANOUT_CHECK_EVERY-th after it.
 *
 * Room mode (the chat plugin): every session joins one room through its
 * session_ack, senders send with "room", and the server delivers to every
 * member, the sender included, a frame of its own making: the sender's
 * content and session_id with room, from, seq and time added, signed once
 * and shared by all. So no delivery is a frame that was sent. The first
 * delivery of each message is decoded in full and its server members
 * checked (the room, the sender's nick, a time, and a room seq that each
 * recipient sees grow by exactly one); its bytes are kept, and every other
 * recipient's copy must be identical to them, which one memcmp() checks.
 * --full-verify decodes every copy, and still compares it with the first.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncchat/frame.h>

#include "bench.h"

#define FANOUT_CHECK_EVERY	1024

/* Room mode: the members the server adds make a delivery at most this much
 * longer than the frame sent (a longer one is decoded at every recipient). */
#define FANOUT_ROOM_EXTRA	512

/* The flow-control state of one sender. */
struct fanout_sender {
	uint32_t	*done;		/* deliveries per in-flight message */
	uint64_t	 oldest;	/* first message not yet everywhere */
	uint8_t		*copies;	/* the in-flight frames as sent */
	size_t		 copies_len;	/* the length of each copy */

	/* Room mode: the first delivery of each in-flight message. */
	uint8_t		*firsts;	/* window slots of first_size bytes */
	size_t		 first_size;
	size_t		*first_len;	/* 0: none kept */
	uint64_t	*first_seq;	/* the room seq in it */
	uint64_t	*first_msg;	/* the message it is (stamp seq) */
};

/* The run's senders and how many recipients each message has. */
struct fanout {
	struct fanout_sender	*senders;
	int			 recipients;
	int			 starting;	/* waiting for the pongs */
};

static void	fanout_deliver(struct conn *, const struct stamp *, size_t,
		    size_t);

/* The connection of sender s. */
static struct conn *
fanout_sender_conn(struct bench *b, uint32_t s)
{
	return b->conns[b->receivers + s];
}

/*
 * Keep a copy of a frame about to be sent (in room mode, make room for the
 * first delivery of each message instead); check some with the codec.
 */
static int
fanout_keep(struct bench *b, struct fanout_sender *fs, const struct tmpl *t,
    uint64_t seq)
{
	struct ac_message	msg;
	enum ac_frame_status	st;
	size_t			used;
	int			good;

	if (b->room != NULL && fs->firsts == NULL) {
		fs->first_size = t->len + FANOUT_ROOM_EXTRA;
		if ((fs->firsts = malloc(fs->first_size * b->window)) == NULL)
			abort();
	}
	if (b->room == NULL && fs->copies == NULL) {
		fs->copies_len = t->len;
		if ((fs->copies = malloc(t->len * b->window)) == NULL)
			abort();
	}
	if (seq % FANOUT_CHECK_EVERY == 0) {
		st = ac_frame_decode(b->key, &b->limits, t->bytes, t->len,
		    &used, &msg);
		if (st != AC_FRAME_OK) {
			bench_fail(b, "a message as built fails the codec: %s",
			    ac_frame_status_name(st));
			return -1;
		}
		good = used == t->len && tmpl_content_ok(b, msg.content,
		    msg.content_len);
		ac_message_clear(&msg);
		if (!good) {
			bench_fail(b, "a message as built decodes to something "
			    "else");
			return -1;
		}
	}
	if (fs->copies != NULL)
		memcpy(fs->copies + (seq % b->window) * t->len, t->bytes,
		    t->len);
	return 0;
}

/* Fill a sender's window. */
static void
fanout_send(struct bench *b, uint32_t s)
{
	struct fanout		*fo = b->mode_state;
	struct fanout_sender	*fs = &fo->senders[s];
	struct conn		*c = fanout_sender_conn(b, s);

	while (b->running && c->seq_sent - fs->oldest < (uint64_t)b->window) {
		tmpl_stamp(&c->tmpl, b->now_ns, c->seq_sent, s);
		if ((b->match_sent != NULL || b->room != NULL) &&
		    fanout_keep(b, fs, &c->tmpl, c->seq_sent) == -1)
			return;
		c->seq_sent++;
		conn_write(c, c->tmpl.bytes, c->tmpl.len);
		b->sent++;
	}
}

/* Start the measured window: every sender fills its window. */
static void
fanout_go(struct bench *b)
{
	int	s;

	bench_start_window(b);
	for (s = 0; s < b->senders; s++)
		fanout_send(b, (uint32_t)s);
}

/*
 * Every connection is ready. Over the protocol, a ping on each and its
 * pong prove that the server has processed every session_ack, so no
 * receiver can miss the first messages; RESP confirms SUBSCRIBE itself.
 */
static void
fanout_ready(struct conn *c)
{
	struct bench	*b = c->b;
	struct fanout	*fo = b->mode_state;
	int		 i;

	if (++b->nready < b->nconns)
		return;
	if (b->framing != FRAMING_PROTOCOL) {
		fanout_go(b);
		return;
	}
	fo->starting = 1;
	for (i = 0; i < b->nconns; i++)
		session_ping(b->conns[i]);
}

/* A pong: when the last of the starting round is in, go. */
static void
fanout_pong(struct conn *c)
{
	struct bench	*b = c->b;
	struct fanout	*fo = b->mode_state;

	if (fo->starting && b->pongs == b->pings) {
		fo->starting = 0;
		fanout_go(b);
	}
}

/*
 * Fail the run if a sender got its own message back: 1 if it did. (In a
 * chat room the sender gets its own, as every member does.)
 */
static int
fanout_is_own(struct conn *c, uint32_t sender)
{
	struct bench	*b = c->b;

	if (b->room == NULL && c->role == ROLE_SENDER &&
	    (uint32_t)(c->index - b->receivers) == sender) {
		bench_fail(b, "connection %d: its own message came back "
		    "(set include_sender = no)", c->index);
		return 1;
	}
	return 0;
}

/* Non-zero when s is shaped as chat's time: 2026-12-06T11:00:00.123Z. */
static int
fanout_time_ok(const char *s)
{
	static const char	shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t			i;

	if (s == NULL || strlen(s) != sizeof shape - 1)
		return 0;
	for (i = 0; i < sizeof shape - 1; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') :
		    s[i] != shape[i])
			return 0;
	}
	return 1;
}

/* Room mode: the room seq a recipient sees grows by exactly one. */
static int
fanout_room_seq(struct conn *c, uint64_t seq)
{
	if (c->room_seq != 0 && seq != c->room_seq + 1) {
		bench_fail(c->b, "connection %d: room seq %llu after %llu",
		    c->index, (unsigned long long)seq,
		    (unsigned long long)c->room_seq);
		return -1;
	}
	c->room_seq = seq;
	return 0;
}

/*
 * A string member of a decoded header into buf (NUL-terminated), or NULL
 * when it is absent, not a string, holds a NUL or does not fit.
 */
static const char *
fanout_member(const struct ac_message *msg, const char *name, char *buf,
    size_t cap)
{
	struct ac_member	m;
	size_t			len;

	if (ac_message_member(msg, name, &m) != AC_MEMBER_STRING ||
	    (len = ac_member_string(&m, buf, cap)) >= cap ||
	    memchr(buf, '\0', len) != NULL)
		return NULL;
	buf[len] = '\0';
	return buf;
}

/*
 * The value of an integer member of a decoded header that is at least
 * 1, as json-c would read it as an int (digits only, no sign, fraction
 * or exponent, at most 18 of them); 0 if it is not one.
 */
static uint64_t
fanout_member_seq(const struct ac_message *msg, const char *name)
{
	struct ac_member	m;
	uint64_t		v = 0;
	size_t			i;

	if (ac_message_member(msg, name, &m) != AC_MEMBER_OTHER ||
	    m.raw_len == 0 || m.raw_len > 18)
		return 0;
	for (i = 0; i < m.raw_len; i++) {
		if (m.raw[i] < '0' || m.raw[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(m.raw[i] - '0');
	}
	return v;
}

/*
 * Room mode, a delivery decoded in full: check the members the server
 * added, and keep its bytes as the ones every other recipient must get (or,
 * if the first delivery is kept already, compare with it).
 */
static int
fanout_room_check(struct conn *c, const struct stamp *st)
{
	struct bench		*b = c->b;
	struct fanout		*fo = b->mode_state;
	struct fanout_sender	*fs = &fo->senders[st->sender];
	const struct ac_message	*msg = b->cur_msg;
	const char		*room, *from, *time;
	char			 nick[32], rbuf[80], fbuf[40], tbuf[40];
	uint64_t		 seq;
	size_t			 slot = st->seq % b->window;
	uint8_t			*first;

	if (msg == NULL || b->cur_frame == NULL) {
		bench_fail(b, "connection %d: a room delivery without its "
		    "frame", c->index);
		return -1;
	}
	room = fanout_member(msg, "room", rbuf, sizeof rbuf);
	from = fanout_member(msg, "from", fbuf, sizeof fbuf);
	time = fanout_member(msg, "time", tbuf, sizeof tbuf);
	seq = fanout_member_seq(msg, "seq");
	snprintf(nick, sizeof nick, "bench-s%u", st->sender);
	if (room == NULL || strcmp(room, b->room) != 0 || from == NULL ||
	    strcmp(from, nick) != 0 || !fanout_time_ok(time) || seq < 1) {
		bench_fail(b, "connection %d: a room message without the "
		    "server's room, from (%s), seq or time: %.*s", c->index,
		    nick, (int)msg->header_json_len,
		    (const char *)msg->header_json);
		return -1;
	}
	if (fanout_room_seq(c, seq) == -1)
		return -1;
	if (fs->first_size == 0)
		return 0;	/* nothing sent by it yet: cannot be */
	first = fs->firsts + slot * fs->first_size;
	if (fs->first_len[slot] != 0 && fs->first_msg[slot] == st->seq) {
		/* A copy decoded in full (--full-verify): it must still be
		 * the same frame. */
		if (fs->first_seq[slot] != seq ||
		    b->cur_frame_len != fs->first_len[slot] ||
		    memcmp(b->cur_frame, first, b->cur_frame_len) != 0) {
			bench_fail(b, "connection %d: message %llu of sender "
			    "%u differs from another recipient's", c->index,
			    (unsigned long long)st->seq, st->sender);
			return -1;
		}
		return 0;
	}
	if (b->cur_frame_len <= fs->first_size) {
		memcpy(first, b->cur_frame, b->cur_frame_len);
		fs->first_len[slot] = b->cur_frame_len;
		fs->first_seq[slot] = seq;
		fs->first_msg[slot] = st->seq;
	}
	return 0;
}

/* A decoded delivery: check sender, session and content, then deliver. */
static void
fanout_message(struct conn *c, const uint8_t *content, size_t len,
    size_t wire, const char *sid)
{
	struct bench		*b = c->b;
	struct stamp		 st;

	if (len != b->size) {
		bench_fail(b, "connection %d: a %zu-byte message, expected "
		    "%zu", c->index, len, b->size);
		return;
	}
	memcpy(&st, content + len - STAMP_LEN, STAMP_LEN);
	if (st.sender >= (uint32_t)b->senders) {
		bench_fail(b, "connection %d: a message from unknown sender "
		    "%u", c->index, st.sender);
		return;
	}
	if (fanout_is_own(c, st.sender))
		return;
	if (b->framing == FRAMING_PROTOCOL && (sid == NULL ||
	    strcmp(sid, fanout_sender_conn(b, st.sender)->sid) != 0)) {
		bench_fail(b, "connection %d: message of sender %u carries "
		    "session_id %s", c->index, st.sender,
		    sid != NULL ? sid : "null");
		return;
	}
	if (b->framing == FRAMING_PROTOCOL &&
	    !tmpl_content_ok(b, content, len)) {
		bench_fail(b, "connection %d: content altered", c->index);
		return;
	}
	if (b->room != NULL && fanout_room_check(c, &st) == -1)
		return;
	fanout_deliver(c, &st, len, wire);
}

/* A delivery that passed its checks: order, counts, flow control. */
static void
fanout_deliver(struct conn *c, const struct stamp *stp, size_t len,
    size_t wire)
{
	struct bench		*b = c->b;
	struct fanout		*fo = b->mode_state;
	struct fanout_sender	*fs;
	struct stamp		 st = *stp;
	uint64_t		*expect;

	expect = &c->expect[st.sender];
	if (st.seq != *expect) {
		if (st.seq < *expect)
			b->duplicates++;
		bench_fail(b, "connection %d: message %llu of sender %u "
		    "arrived when %llu was due", c->index,
		    (unsigned long long)st.seq, st.sender,
		    (unsigned long long)*expect);
		return;
	}
	(*expect)++;

	if (b->running) {
		histogram_add(&b->hist, b->now_ns - st.sent_ns);
		b->window_msgs++;
		b->window_bytes += len;
		b->window_wire += wire;
	}

	fs = &fo->senders[st.sender];
	fs->done[st.seq % b->window]++;
	if (st.seq != fs->oldest)
		return;
	while (fs->oldest < fanout_sender_conn(b, st.sender)->seq_sent &&
	    fs->done[fs->oldest % b->window] == (uint32_t)fo->recipients) {
		fs->done[fs->oldest % b->window] = 0;
		if (fs->first_len != NULL)
			fs->first_len[fs->oldest % b->window] = 0;
		fs->oldest++;
	}
	if (b->running)
		fanout_send(b, st.sender);
	else
		bench_check_drained(b);
}

/*
 * The stamp at the end of a delivery, in *st, and the sender it names when
 * that sender's message st->seq is still in flight; NULL otherwise.
 */
static struct fanout_sender *
fanout_in_flight(struct bench *b, const uint8_t *frame, size_t len,
    struct stamp *st)
{
	struct fanout		*fo = b->mode_state;
	struct fanout_sender	*fs;

	if (len < AC_FIXED_HEADER_LEN + STAMP_LEN)
		return NULL;
	memcpy(st, frame + len - STAMP_LEN, STAMP_LEN);
	if (st->sender >= (uint32_t)b->senders)
		return NULL;
	fs = &fo->senders[st->sender];
	if (st->seq < fs->oldest ||
	    st->seq >= fanout_sender_conn(b, st->sender)->seq_sent)
		return NULL;
	return fs;
}

/*
 * Verify a delivery by identity with the in-flight frame it claims to be;
 * returns 1 if it was one (and has been handled), 0 to decode it in full.
 */
static int
fanout_match(struct conn *c, const uint8_t *frame, size_t len)
{
	struct bench		*b = c->b;
	struct fanout_sender	*fs;
	struct stamp		 st;

	if ((fs = fanout_in_flight(b, frame, len, &st)) == NULL ||
	    len != fs->copies_len || memcmp(frame, fs->copies +
	    (st.seq % b->window) * len, len) != 0)
		return 0;
	b->verified++;
	b->received++;
	if (!fanout_is_own(c, st.sender))
		fanout_deliver(c, &st, b->size, len);
	return 1;
}

/*
 * Room mode: verify a delivery by identity with the first delivery of the
 * same message, which was decoded and checked in full; returns 1 if it was
 * one (and has been handled), 0 to decode it in full.
 */
static int
fanout_room_match(struct conn *c, const uint8_t *frame, size_t len)
{
	struct bench		*b = c->b;
	struct fanout_sender	*fs;
	struct stamp		 st;
	size_t			 slot;

	if ((fs = fanout_in_flight(b, frame, len, &st)) == NULL)
		return 0;
	slot = st.seq % b->window;
	if (fs->first_size == 0 || fs->first_len[slot] != len ||
	    fs->first_msg[slot] != st.seq || memcmp(frame, fs->firsts +
	    slot * fs->first_size, len) != 0)
		return 0;
	b->verified++;
	b->received++;
	if (fanout_room_seq(c, fs->first_seq[slot]) == 0)
		fanout_deliver(c, &st, b->size, len);
	return 1;
}

/* Every message sent has reached every recipient. */
static int
fanout_is_drained(struct bench *b)
{
	struct fanout	*fo = b->mode_state;
	int		 s;

	for (s = 0; s < b->senders; s++) {
		if (fo->senders[s].oldest != fanout_sender_conn(b, s)->seq_sent)
			return 0;
	}
	return 1;
}

/* Count, per recipient and sender, the messages that never arrived. */
static void
fanout_finish(struct bench *b)
{
	struct conn	*c;
	int		 i, s;

	for (i = 0; i < b->nconns; i++) {
		c = b->conns[i];
		for (s = 0; s < b->senders; s++) {
			if (b->room == NULL && c->role == ROLE_SENDER &&
			    c->index - b->receivers == s)
				continue;
			if (c->role == ROLE_SENDER &&
			    b->framing != FRAMING_PROTOCOL)
				continue;
			b->lost += fanout_sender_conn(b, s)->seq_sent -
			    c->expect[s];
		}
	}
}

/* Release the senders' flow-control state. */
static void
fanout_free(struct bench *b)
{
	struct fanout	*fo = b->mode_state;
	int		 s;

	for (s = 0; s < b->senders; s++) {
		free(fo->senders[s].done);
		free(fo->senders[s].copies);
		free(fo->senders[s].firsts);
		free(fo->senders[s].first_len);
		free(fo->senders[s].first_seq);
		free(fo->senders[s].first_msg);
	}
	free(fo->senders);
	free(fo);
	b->mode_state = NULL;
}

/* Make the receivers, the senders and the hooks of a fan-out run. */
int
fanout_setup(struct bench *b)
{
	struct fanout	*fo;
	int		 i, s;

	if ((fo = calloc(1, sizeof *fo)) == NULL)
		return -1;
	fo->senders = calloc(b->senders, sizeof *fo->senders);
	if (fo->senders == NULL)
		return -1;
	for (s = 0; s < b->senders; s++) {
		fo->senders[s].done = calloc(b->window, sizeof(uint32_t));
		if (fo->senders[s].done == NULL)
			return -1;
	}
	fo->recipients = b->receivers;
	if (b->room != NULL)
		fo->recipients += b->senders;	/* the sender included */
	else if (b->framing == FRAMING_PROTOCOL)
		fo->recipients += b->senders - 1;
	b->mode_state = fo;
	b->free_state = fanout_free;

	for (i = 0; i < b->nconns; i++) {
		b->conns[i] = conn_new(b, i, i < b->receivers ? ROLE_RECEIVER :
		    ROLE_SENDER);
		b->conns[i]->expect = calloc(b->senders, sizeof(uint64_t));
		if (b->conns[i]->expect == NULL)
			return -1;
	}
	b->on_ready = fanout_ready;
	b->on_message = fanout_message;
	b->on_pong = fanout_pong;
	b->is_drained = fanout_is_drained;
	b->on_finish = fanout_finish;
	if (b->room != NULL) {
		for (s = 0; s < b->senders; s++) {
			fo->senders[s].first_len = calloc(b->window,
			    sizeof(size_t));
			fo->senders[s].first_seq = calloc(b->window,
			    sizeof(uint64_t));
			fo->senders[s].first_msg = calloc(b->window,
			    sizeof(uint64_t));
			if (fo->senders[s].first_len == NULL ||
			    fo->senders[s].first_seq == NULL ||
			    fo->senders[s].first_msg == NULL)
				return -1;
		}
		if (!b->full_verify)
			b->match_sent = fanout_room_match;
	} else if (b->framing == FRAMING_PROTOCOL && !b->full_verify)
		b->match_sent = fanout_match;
	return 0;
}
