/*
 * sendas.c - a test module for frames made by a plugin and for the
 * session_ack members at session_open.
 *
 * Every message is sent again, to every handshaken session (its sender
 * included), as a new frame made once "as coming from" the sender: its
 * session_id, content type and content, and the header members
 * "room": "r1", "seq": N (1, 2, ... per instance) and "from": the
 * sender's "nick" attribute (or its id). The plugin keeps the last such
 * frame. A message "replay" instead sends that frame again, to its sender
 * only, rebuilt from a copy of its bytes (frame_from_bytes), as a history
 * plugin would from storage; "tamper" does the same with one byte of the
 * copy changed, which must be refused ("tamper refused").
 *
 * At session_open it answers "ack nick=NICK rooms=JSON" with what the
 * client put in its session_ack ("-" for a missing member), or, when a
 * reload meets an open session, logs "open without ack SESSION".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <asyncchat/plugin.h>

#define SENDAS_TEXT	"text/plain; charset=utf-8"

/* The last frame made and the sequence. */
struct sendas_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	struct ac_frame			*last;
	long				 seq;
};

/* One fan-out. */
struct sendas_fanout {
	struct sendas_state	*ss;
	struct ac_frame		*f;
};

static int	sendas_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	sendas_fini(void *);
static void	sendas_session_open(void *, struct ac_session *);
static int	sendas_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "sendas",
	.version = "0",
	.description = "test: frames as coming from a session; ack members",
	.init = sendas_init,
	.fini = sendas_fini,
	.session_open = sendas_session_open,
	.process_message = sendas_process_message,
};

/* Start; no options. */
static int
sendas_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct sendas_state	*ss;

	if ((ss = calloc(1, sizeof *ss)) == NULL)
		return -1;
	ss->p = p;
	ss->host = host;
	*state = ss;
	return 0;
}

/* Drop the frame kept and free the state. */
static void
sendas_fini(void *state)
{
	struct sendas_state	*ss = state;

	if (ss->last != NULL)
		ss->host->frame_unref(ss->p, ss->last);
	free(ss);
}

/* Answer what the session_ack carried. */
static void
sendas_session_open(void *state, struct ac_session *s)
{
	struct sendas_state	*ss = state;
	const struct ac_message	*ack;
	struct json_object	*rooms;
	const char		*nick, *rtext = "-";
	char			 reply[1024];
	int			 n;

	if ((ack = ss->host->session_ack(ss->p, s)) == NULL) {
		ss->host->log(ss->p, AC_LOG_INFO, "open without ack %s",
		    ss->host->session_id(s));
		return;
	}
	nick = ac_message_get_string(ack, "nick");
	if (json_object_object_get_ex(ac_message_header(ack), "rooms",
	    &rooms))
		rtext = json_object_to_json_string_ext(rooms,
		    JSON_C_TO_STRING_PLAIN);
	n = snprintf(reply, sizeof reply, "ack nick=%s rooms=%s",
	    nick != NULL ? nick : "-", rtext);
	ss->host->send(ss->p, s, AC_MSG_MESSAGE, SENDAS_TEXT, NULL, reply,
	    (size_t)n < sizeof reply ? (size_t)n : sizeof reply - 1);
}

/* Queue the frame to one session. */
static int
sendas_one(struct ac_session *s, void *arg)
{
	struct sendas_fanout	*fo = arg;

	fo->ss->host->relay(fo->ss->p, fo->f, s);
	return 0;
}

/* Send the kept frame again to from, from a copy of its bytes. */
static void
sendas_replay(struct sendas_state *ss, struct ac_session *from, int tamper)
{
	struct ac_frame	*f;
	const uint8_t	*bytes;
	uint8_t		*copy;
	size_t		 len;

	if (ss->last == NULL)
		return;
	bytes = ss->host->frame_bytes(ss->last, &len);
	if ((copy = malloc(len)) == NULL)
		return;
	memcpy(copy, bytes, len);
	if (tamper)
		copy[len - 1] ^= 0x20;
	f = ss->host->frame_from_bytes(ss->p, copy, len);
	free(copy);
	if (f == NULL) {
		ss->host->send(ss->p, from, AC_MSG_MESSAGE, SENDAS_TEXT, NULL,
		    tamper ? "tamper refused" : "replay refused", 14);
		return;
	}
	ss->host->relay(ss->p, f, from);
	ss->host->frame_unref(ss->p, f);
}

/* Make the frame as from the sender and send it to everyone. */
static int
sendas_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct sendas_state	*ss = state;
	struct sendas_fanout	 fo;
	struct json_object	*extra;
	const char		*nick;

	if (msg->content_len == 6 && memcmp(msg->content, "replay", 6) == 0) {
		sendas_replay(ss, from, 0);
		return AC_PLUGIN_STOP;
	}
	if (msg->content_len == 6 && memcmp(msg->content, "tamper", 6) == 0) {
		sendas_replay(ss, from, 1);
		return AC_PLUGIN_STOP;
	}
	if ((nick = ss->host->session_attr(from, "nick")) == NULL)
		nick = ss->host->session_id(from);
	extra = json_object_new_object();
	json_object_object_add(extra, "room", json_object_new_string("r1"));
	json_object_object_add(extra, "seq", json_object_new_int64(++ss->seq));
	json_object_object_add(extra, "from", json_object_new_string(nick));
	fo.ss = ss;
	fo.f = ss->host->frame_new(ss->p, ss->host->session_id(from),
	    msg->type, msg->content_type, extra, msg->content,
	    msg->content_len);
	json_object_put(extra);
	if (fo.f == NULL)
		return -1;
	ss->host->session_foreach(ss->p, sendas_one, &fo);
	if (ss->last != NULL)
		ss->host->frame_unref(ss->p, ss->last);
	ss->last = fo.f;
	return AC_PLUGIN_STOP;
}
