/*
 * session.c - the protocol side of a connection: every frame from the
 * server is verified with the codec (fixed header, CRCs, HMAC, JSON), the
 * handshake is answered and heartbeat pongs are counted.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include <asyncchat/frame.h>

#include "bench.h"

#define OCTET_STREAM	"application/octet-stream"
#define ACK_TEXT	"Session acknowledged"

/*
 * The session_ack's own members: in room mode a nick (bench-sN for
 * senders, bench-rN for receivers) and the room to join, or NULL. The
 * room is asked for with the largest since, so that a server with history
 * replays nothing: messages of an earlier run are not this run's.
 */
static struct json_object *
session_ack_members(struct conn *c)
{
	struct bench		*b = c->b;
	struct json_object	*o, *rooms, *room;
	char			 nick[32];

	if (b->room == NULL)
		return NULL;
	if (c->role == ROLE_SENDER)
		snprintf(nick, sizeof nick, "bench-s%d",
		    c->index - b->receivers);
	else
		snprintf(nick, sizeof nick, "bench-r%d", c->index);
	o = json_object_new_object();
	json_object_object_add(o, "nick", json_object_new_string(nick));
	room = json_object_new_object();
	json_object_object_add(room, "room", json_object_new_string(b->room));
	json_object_object_add(room, "since", json_object_new_int64(INT64_MAX));
	rooms = json_object_new_array();
	json_object_array_add(rooms, room);
	json_object_object_add(o, "rooms", rooms);
	return o;
}

/* Answer session_init: remember the id, acknowledge, build the template. */
static void
session_init(struct conn *c, const struct ac_message *msg)
{
	struct bench		*b = c->b;
	struct json_object	*ack;
	int			 rc;

	if (c->acked) {
		bench_fail(b, "connection %d: a second session_init", c->index);
		return;
	}
	if (msg->session_id == NULL || !ac_uuid_is_valid(msg->session_id)) {
		bench_fail(b, "connection %d: session_init without a valid "
		    "session_id", c->index);
		return;
	}
	snprintf(c->sid, sizeof c->sid, "%s", msg->session_id);
	ack = session_ack_members(c);
	rc = ac_frame_encode(b->scratch, b->key, AC_MSG_SESSION_ACK,
	    OCTET_STREAM, c->sid, ack, ACK_TEXT, strlen(ACK_TEXT));
	if (ack != NULL)
		json_object_put(ack);
	if (rc != 0) {
		bench_fail(b, "connection %d: cannot encode session_ack",
		    c->index);
		return;
	}
	conn_write_evbuffer(c, b->scratch);
	c->acked = 1;
	if (c->role != ROLE_IDLE && c->role != ROLE_RECEIVER) {
		if (tmpl_protocol(&c->tmpl, b, c->sid, b->size) != 0) {
			bench_fail(b, "cannot encode a %zu-byte message",
			    b->size);
			return;
		}
		c->have_tmpl = 1;
	}
	b->on_ready(c);
}

/* Act on one verified frame. */
static void
session_frame(struct conn *c, const struct ac_message *msg, size_t wire)
{
	struct bench		*b = c->b;
	struct ac_member	 m;

	switch (msg->type) {
	case AC_MSG_SESSION_INIT:
		session_init(c, msg);
		break;
	case AC_MSG_HEARTBEAT:
		if (msg->content_len == 4 &&
		    memcmp(msg->content, "pong", 4) == 0) {
			if (c->pings_out == 0) {
				bench_fail(b, "connection %d: a pong without "
				    "a ping", c->index);
				return;
			}
			c->pings_out--;
			b->pongs++;
			if (b->on_pong != NULL)
				b->on_pong(c);
			bench_check_drained(b);
		}
		break;
	case AC_MSG_MESSAGE:
	case AC_MSG_CHUNK:
		/* The chat plugin's events (joins, names, replies) are not
		 * deliveries; in a measured window none are expected. */
		if (b->room != NULL &&
		    ac_message_member(msg, "event", &m) != AC_MEMBER_ABSENT) {
			b->events++;
			if (b->running && ac_message_member(msg, "error",
			    &m) == AC_MEMBER_STRING)
				bench_fail(b, "connection %d: the server "
				    "refused a message: %.*s", c->index,
				    (int)(msg->content_len > 200 ? 200 :
				    msg->content_len),
				    (const char *)msg->content);
			break;
		}
		b->received++;
		b->cur_msg = msg;
		b->on_message(c, msg->content, msg->content_len, wire,
		    msg->session_id);
		b->cur_msg = NULL;
		break;
	case AC_MSG_ERROR:
		bench_fail(b, "connection %d: the server sent an error: %.*s",
		    c->index, (int)(msg->content_len > 200 ? 200 :
		    msg->content_len), (const char *)msg->content);
		break;
	case AC_MSG_DISCONNECT:
		if (!b->finished)
			bench_fail(b, "connection %d: the server disconnected: "
			    "%.*s", c->index, (int)(msg->content_len > 200 ?
			    200 : msg->content_len),
			    (const char *)msg->content);
		conn_close(c);
		break;
	case AC_MSG_SESSION_ACK:
		bench_fail(b, "connection %d: session_ack from the server",
		    c->index);
		break;
	}
}

/*
 * Verify and handle every complete frame in buf; returns the bytes used,
 * or SIZE_MAX when the stream failed a check (the run has failed then).
 */
size_t
session_parse(struct conn *c, const uint8_t *buf, size_t len)
{
	struct bench		*b = c->b;
	struct ac_fixed_header	 fh;
	struct ac_message	 msg;
	enum ac_frame_status	 st;
	size_t			 used = 0, flen;

	while (len - used >= AC_FIXED_HEADER_LEN) {
		st = ac_fixed_header_parse(buf + used, &b->limits, &fh);
		if (st != AC_FRAME_OK) {
			bench_fail(b, "connection %d: frame %s: %s", c->index,
			    ac_frame_status_name(st), ac_frame_status_text(st));
			return SIZE_MAX;
		}
		flen = ac_fixed_header_frame_len(&fh);
		if (len - used < flen)
			break;
		if (b->match_sent != NULL && b->match_sent(c, buf + used,
		    flen)) {
			used += flen;
			if (c->closed || b->finished)
				return SIZE_MAX;
			continue;
		}
		/* Every check of the frame, JSON included; the members the
		 * modes read are looked up in the header's bytes. */
		st = ac_frame_decode_body_flags(b->key, &fh,
		    buf + used + AC_FIXED_HEADER_LEN, &msg,
		    AC_DECODE_LAZY_HEADER);
		if (st != AC_FRAME_OK) {
			bench_fail(b, "connection %d: frame %s: %s", c->index,
			    ac_frame_status_name(st), ac_frame_status_text(st));
			return SIZE_MAX;
		}
		b->verified++;
		b->cur_frame = buf + used;
		b->cur_frame_len = flen;
		session_frame(c, &msg, flen);
		b->cur_frame = NULL;
		ac_message_clear(&msg);
		used += flen;
		if (c->closed || b->finished)
			return SIZE_MAX;
	}
	return used;
}

/* Send a heartbeat ping; the pong is counted when it comes back. */
void
session_ping(struct conn *c)
{
	struct bench	*b = c->b;

	if (c->closed || !c->acked)
		return;
	if (ac_frame_encode(b->scratch, b->key, AC_MSG_HEARTBEAT, OCTET_STREAM,
	    c->sid, NULL, "ping", 4) != 0) {
		bench_fail(b, "cannot encode a ping");
		return;
	}
	conn_write_evbuffer(c, b->scratch);
	c->pings_out++;
	b->pings++;
}
