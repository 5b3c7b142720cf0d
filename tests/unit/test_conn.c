/*
 * test_conn.c - the seam between a session's byte stream and its protocol
 * (struct conn in src/server/server.h). A transport of the test's own,
 * shaped as a WebSocket one would be (its frame operation puts a header
 * of its own before every frame the session queues), carries a whole
 * session with no socket: session_open(), the handshake fed a byte at a
 * time to dispatch_input(), two frames in one piece, a bad frame, the
 * close and the linger. Nothing of the session or the dispatch was
 * copied to make this transport, which is the point.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <asyncchat/asyncchat.h>

#include "log.h"
#include "server.h"
#include "../testserver.h"

#define TEST_MARK	"WS"	/* the test transport's mark before a frame */

/* The test transport: two buffers and a record of what it was asked. */
struct test_conn {
	struct conn	 c;
	int		 started;
	int		 lingering;
	int		*freed;
	unsigned int	 kicks;
	unsigned int	 defers;
	size_t		 need;
	size_t		 high;
};

static struct server	test_srv;

/* main.c is not linked in. */
void
server_maybe_exit(struct server *srv)
{
}

/* Start reading. */
static void
tconn_start(struct conn *c)
{
	((struct test_conn *)c)->started = 1;
}

/* Remember what dispatch needs. */
static void
tconn_want(struct conn *c, size_t need, size_t high)
{
	((struct test_conn *)c)->need = need;
	((struct test_conn *)c)->high = high;
}

/* Count the requests to run dispatch again. */
static void
tconn_defer(struct conn *c)
{
	((struct test_conn *)c)->defers++;
}

/* Put the transport's own header (mark and length) before a frame. */
static void
tconn_frame(struct conn *c, size_t len)
{
	uint8_t	hdr[6] = { TEST_MARK[0], TEST_MARK[1] };

	hdr[2] = len >> 24;
	hdr[3] = len >> 16;
	hdr[4] = len >> 8;
	hdr[5] = len;
	evbuffer_add(c->out, hdr, sizeof hdr);
}

/* Count the requests to write. */
static void
tconn_kick(struct conn *c)
{
	((struct test_conn *)c)->kicks++;
}

/* A closing session's last frames: the test writes them itself. */
static void
tconn_linger(struct conn *c)
{
	((struct test_conn *)c)->lingering = 1;
}

/* Drop the unsent output. */
static int
tconn_discard(struct conn *c)
{
	size_t	len = evbuffer_get_length(c->out);

	evbuffer_drain(c->out, len);
	return (len != 0);
}

/* Close: free the buffers and the transport. */
static void
tconn_free(struct conn *c)
{
	struct test_conn	*tc = (struct test_conn *)c;

	*tc->freed = 1;
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	free(tc);
}

static const struct conn_ops tconn_ops = {
	.start = tconn_start,
	.want = tconn_want,
	.defer = tconn_defer,
	.frame = tconn_frame,
	.kick = tconn_kick,
	.linger = tconn_linger,
	.discard = tconn_discard,
	.free = tconn_free,
};

/*
 * Take the next frame off the transport's output: it must follow the
 * transport's header, whose length must be the frame's. Returns its type
 * and copies its session id (or "") to id.
 */
static enum ac_msg_type
next_frame(struct conn *c, char *id, char *error, size_t errlen)
{
	struct ac_message	 msg;
	struct ac_limits	 limits;
	uint8_t			 hdr[6];
	size_t			 len, consumed;
	enum ac_msg_type	 type;

	assert_true(evbuffer_get_length(c->out) >= sizeof hdr);
	evbuffer_remove(c->out, hdr, sizeof hdr);
	assert_memory_equal(hdr, TEST_MARK, 2);
	len = (size_t)hdr[2] << 24 | (size_t)hdr[3] << 16 |
	    (size_t)hdr[4] << 8 | hdr[5];
	assert_true(evbuffer_get_length(c->out) >= len);
	ac_limits_default(&limits);
	memset(&msg, 0, sizeof msg);
	assert_int_equal(ac_frame_decode(test_srv.cfg->key, &limits,
	    evbuffer_pullup(c->out, len), len, &consumed, &msg), AC_FRAME_OK);
	assert_int_equal(consumed, len);
	type = msg.type;
	if (id != NULL)
		snprintf(id, AC_UUID_STRLEN + 1, "%s",
		    msg.session_id != NULL ? msg.session_id : "");
	if (error != NULL)
		snprintf(error, errlen, "%s", ac_message_get_string(&msg,
		    "error") != NULL ? ac_message_get_string(&msg, "error") :
		    "");
	ac_message_clear(&msg);
	evbuffer_drain(c->out, len);
	return (type);
}

/* Encode a frame from the client for id into buf. */
static void
client_frame(struct evbuffer *buf, enum ac_msg_type type, const char *id,
    const char *content)
{
	assert_int_equal(ac_frame_encode(buf, test_srv.cfg->key, type,
	    "application/octet-stream", id, NULL, content, strlen(content)),
	    0);
}

/* A server as main.c makes one, without listeners or plugins. */
static int
setup(void **state)
{
	struct ac_config	*cfg;
	char			*cause;

	(void)state;
	log_init();
	cfg = testserver_config("test_conn", "[server]\nlog_level = error\n");
	if (cfg == NULL)
		return (-1);
	log_open("stderr", AC_LOG_ERROR, &cause);
	return (testserver_init(&test_srv, cfg));
}

/* Free the server. */
static int
teardown(void **state)
{
	struct server	*srv = &test_srv;

	(void)state;
	session_reap(srv);
	event_free(srv->reap_ev);
	if (srv->memory_ev != NULL)
		event_free(srv->memory_ev);
	registry_free(&srv->reg);
	config_free(srv->cfg);
	event_base_free(srv->base);
	return (0);
}

/* A whole session through a transport that is not a socket. */
static void
test_session(void **state)
{
	struct server		*srv = &test_srv;
	struct test_conn	*tc;
	struct ac_session	*s;
	struct sockaddr_un	 sun;
	struct evbuffer		*buf;
	char			 id[AC_UUID_STRLEN + 1], error[64];
	uint8_t			 byte;
	int			 freed = 0;

	(void)state;
	tc = calloc(1, sizeof *tc);
	assert_non_null(tc);
	tc->c.ops = &tconn_ops;
	tc->c.in = evbuffer_new();
	tc->c.out = evbuffer_new();
	tc->freed = &freed;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;

	/* Open: registered, reading, and session_init queued, framed. */
	session_open(srv, &tc->c, (struct sockaddr *)&sun, "test", "peer");
	assert_int_equal(srv->reg.count, 1);
	s = TAILQ_FIRST(&srv->reg.list);
	assert_string_equal(s->transport, "test");
	assert_true(tc->started);
	assert_int_equal(tc->need, AC_FIXED_HEADER_LEN);
	assert_int_equal(tc->high, AC_FIXED_HEADER_LEN +
	    AC_PREACK_MAX_HEADER + AC_PREACK_MAX_CONTENT);
	assert_true(tc->kicks >= 1);
	assert_int_equal(next_frame(&tc->c, id, NULL, 0),
	    AC_MSG_SESSION_INIT);
	assert_string_equal(id, s->id);

	/* The session_ack, one byte at a time, as a transport may get it. */
	buf = evbuffer_new();
	client_frame(buf, AC_MSG_SESSION_ACK, s->id, "ack");
	while (evbuffer_remove(buf, &byte, 1) == 1) {
		evbuffer_add(tc->c.in, &byte, 1);
		if (evbuffer_get_length(tc->c.in) >= tc->need)
			dispatch_input(s, 0);
		assert_false(s->flags & AC_SESS_DEAD);
	}
	assert_true(s->flags & AC_SESS_ACKED);
	assert_int_equal(evbuffer_get_length(tc->c.in), 0);
	assert_int_equal(tc->high, AC_FIXED_HEADER_LEN +
	    srv->cfg->max_header_size + srv->cfg->max_content_size);

	/* Two pings in one piece: two pongs, each framed by the transport. */
	client_frame(buf, AC_MSG_HEARTBEAT, s->id, "ping");
	client_frame(buf, AC_MSG_HEARTBEAT, s->id, "ping");
	evbuffer_add_buffer(tc->c.in, buf);
	dispatch_input(s, 0);
	assert_int_equal(next_frame(&tc->c, id, NULL, 0), AC_MSG_HEARTBEAT);
	assert_int_equal(next_frame(&tc->c, NULL, NULL, 0), AC_MSG_HEARTBEAT);
	assert_int_equal(evbuffer_get_length(tc->c.out), 0);
	assert_int_equal(tc->need, AC_FIXED_HEADER_LEN);

	/* A frame that cannot be framed: one error, then the close. */
	evbuffer_add(tc->c.in, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	    "0123456789012345678901234567890123456789", 67);
	dispatch_input(s, 0);
	assert_true(s->flags & AC_SESS_DEAD);
	assert_int_equal(srv->reg.count, 0);
	assert_int_equal(srv->stats.closes[AC_CLOSE_PROTOCOL_ERROR], 1);
	assert_int_equal(next_frame(&tc->c, NULL, error, sizeof error),
	    AC_MSG_ERROR);
	assert_string_equal(error, "bad_magic");
	/* It lingers until the transport has written its last frames. */
	assert_true(tc->lingering);
	assert_true(s->flags & AC_SESS_LINGER);
	assert_int_equal(freed, 0);
	session_finish(s);
	assert_int_equal(freed, 1);
	assert_true(TAILQ_EMPTY(&srv->lingering));
	evbuffer_free(buf);
	event_base_loop(srv->base, EVLOOP_NONBLOCK);
	assert_true(TAILQ_EMPTY(&srv->dead));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session),
	};

	return (cmocka_run_group_tests(tests, setup, teardown));
}
