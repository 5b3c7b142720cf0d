/*
 * fuzz_session.c - libFuzzer target for the server's session read path.
 *
 * The server's own session, registry and plugin host code (every file of
 * src/server but main.c) runs with a configuration from a small embedded
 * INI, the echo and broadcast plugins of the build tree, and no listener:
 * each input opens two sessions over socketpairs as session_accept() sees
 * a real connection. The second one only watches (it is acknowledged and
 * receives broadcasts). The first one reads the session_init frame, sends
 * the session_ack for the id it learned, then the input, and the event
 * loop runs until nothing moves; both peers then hang up and every
 * session must be freed (LeakSanitizer checks the rest).
 *
 * A random input can never carry a valid CRC and HMAC, so the input is a
 * list of records, each one of:
 *
 *	kind % 4 == 0	raw bytes, written as they are
 *	kind % 4 == 1	a frame signed here: type (byte 0 % 7; bit 7 picks a
 *			wrong session id), content (the rest)
 *	kind % 4 == 2	a frame signed here around header JSON given verbatim
 *			(byte 0 is its length); "$SID" in it becomes the id
 *	kind % 4 == 3	run the loop a little (splits the server's reads);
 *			byte 0 % 8 == 7 fires the session's timer first
 *			(handshake or heartbeat timeout), 6 the linger timers
 *
 * laid out as kind (1 byte), payload length (2 bytes, big-endian), payload.
 * Byte 0 of the input holds flags: bit 0 skips the session_ack.
 *
 * Oracles besides ASan/UBSan/LSan: every byte the server sends must decode
 * as a valid frame, the session must end when the peer hangs up, and no
 * session may be left anywhere afterwards.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/sockios.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <asyncchat/asyncchat.h>

#include "log.h"
#include "server.h"
#include "../testserver.h"

#ifndef FUZZ_PLUGIN_DIR
#define FUZZ_PLUGIN_DIR "plugins/.libs"
#endif

#define FUZZ_PUMP_MAX		2000	/* loop turns to wait for idle */
#define FUZZ_WRONG_ID		"00000000-0000-4000-8000-000000000000"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);

/* The client end of one session's socketpair and what it has read. */
struct fuzz_peer {
	int		 fd;		/* -1 once closed */
	int		 eof;
	struct evbuffer	*in;
	char		 id[AC_UUID_STRLEN + 1];
	size_t		 frames;
};

static struct server	 fuzz_srv;
static struct ac_limits	 fuzz_client_limits;

/* main.c is not linked in: the fuzzer never shuts the server down. */
void
server_maybe_exit(struct server *srv)
{
	if (srv->shutting_down && TAILQ_EMPTY(&srv->lingering))
		event_base_loopexit(srv->base, NULL);
}

/* Load the embedded configuration (plugins from the build tree). */
static struct ac_config *
fuzz_config(void)
{
	struct ac_config	*cfg;
	const char		*dir;

	if ((dir = getenv("ASYNCCHAT_FUZZ_PLUGIN_DIR")) == NULL)
		dir = FUZZ_PLUGIN_DIR;
	cfg = testserver_config("fuzz_session", "[server]\n"
	    "listen = unix:///nonexistent/fuzz_session.sock\n"
	    "hmac_key = %s\n"
	    "log = stderr\n"
	    "log_level = error\n"
	    "plugin_dir = %s\n"
	    "max_header_size = 4K\n"
	    "max_content_size = 64K\n"
	    "max_output_buffer = 256K\n"
	    "max_errors = 10\n"
	    "\n[plugins]\nload = echo, broadcast\n", AC_DEFAULT_KEY, dir);
	if (cfg == NULL)
		abort();
	return (cfg);
}

/* Set up the server once: event base, limits, plugins, no listeners. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct server	*srv = &fuzz_srv;
	char		*cause = NULL;

	signal(SIGPIPE, SIG_IGN);
	log_init();
	if (testserver_init(srv, fuzz_config()) == -1)
		abort();
	srv->foreground = 1;
	if (log_open("stderr", AC_LOG_ERROR, &cause) == -1)
		abort();
	if (plugin_set_load(srv, srv->cfg, &srv->plugins, &cause) == -1) {
		fprintf(stderr, "fuzz_session: %s (set "
		    "ASYNCCHAT_FUZZ_PLUGIN_DIR to the build's plugins/.libs)\n",
		    cause);
		abort();
	}
	ac_limits_default(&fuzz_client_limits);
	return (0);
}

/* Read what the server sent a peer and check every frame is valid. */
static size_t
fuzz_drain(struct fuzz_peer *p)
{
	struct ac_message	 msg;
	enum ac_frame_status	 st;
	size_t			 got = 0, consumed;
	ssize_t			 n;
	char			 buf[16384];

	if (p->in == NULL)
		return (0);
	while (p->fd != -1 && !p->eof) {
		n = read(p->fd, buf, sizeof buf);
		if (n == 0)
			p->eof = 1;
		if (n <= 0)
			break;
		evbuffer_add(p->in, buf, n);
		got += n;
	}
	for (;;) {
		memset(&msg, 0, sizeof msg);
		st = ac_frame_decode(fuzz_srv.cfg->key, &fuzz_client_limits,
		    evbuffer_pullup(p->in, -1), evbuffer_get_length(p->in),
		    &consumed, &msg);
		if (st == AC_FRAME_NEED_MORE)
			break;
		if (st != AC_FRAME_OK) {
			fprintf(stderr, "fuzz_session: the server sent an "
			    "invalid frame: %s\n", ac_frame_status_name(st));
			abort();
		}
		if (msg.type == AC_MSG_SESSION_INIT && p->frames == 0) {
			if (msg.session_id == NULL ||
			    strlen(msg.session_id) != AC_UUID_STRLEN)
				abort();
			memcpy(p->id, msg.session_id, AC_UUID_STRLEN + 1);
		}
		p->frames++;
		ac_message_clear(&msg);
		evbuffer_drain(p->in, consumed);
	}
	return (got);
}

/* Bytes written to a peer's socket that the server has not read yet. */
static int
fuzz_unread(struct fuzz_peer *p)
{
	int	n = 0;

	if (p->fd == -1 || ioctl(p->fd, SIOCOUTQ, &n) == -1)
		return (0);
	return (n);
}

/* Run the loop once and read both peers; non-zero if anything moved. */
static int
fuzz_pump(struct fuzz_peer *a, struct fuzz_peer *b)
{
	size_t	got;

	event_base_loop(fuzz_srv.base, EVLOOP_NONBLOCK);
	got = fuzz_drain(a) + fuzz_drain(b);
	return (got != 0 || fuzz_unread(a) != 0 || fuzz_unread(b) != 0);
}

/* Run the loop until two turns in a row move nothing (or the bound). */
static void
fuzz_settle(struct fuzz_peer *a, struct fuzz_peer *b)
{
	int	i, quiet = 0;

	for (i = 0; i < FUZZ_PUMP_MAX && quiet < 2; i++)
		quiet = fuzz_pump(a, b) ? 0 : quiet + 1;
}

/* Write all of buf to a peer, running the loop while the socket is full. */
static void
fuzz_write(struct fuzz_peer *p, struct fuzz_peer *other, const void *buf,
    size_t len)
{
	const uint8_t	*cp = buf;
	ssize_t		 n;
	int		 i;

	for (i = 0; len > 0 && p->fd != -1 && i < FUZZ_PUMP_MAX; i++) {
		n = write(p->fd, cp, len);
		if (n > 0) {
			cp += n;
			len -= n;
			continue;
		}
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
			return;		/* the server closed: EPIPE */
		fuzz_pump(p, other);
	}
}

/* Encode a frame with this build's key and write it to a peer. */
static void
fuzz_write_frame(struct fuzz_peer *p, struct fuzz_peer *other,
    enum ac_msg_type type, const char *id, const uint8_t *content,
    size_t len)
{
	struct evbuffer	*buf = evbuffer_new();

	if (ac_frame_encode(buf, fuzz_srv.cfg->key, type,
	    "application/octet-stream", id, NULL, content, len) == 0)
		fuzz_write(p, other, evbuffer_pullup(buf, -1),
		    evbuffer_get_length(buf));
	evbuffer_free(buf);
}

/* Sign header JSON given verbatim, with "$SID" replaced by the id. */
static void
fuzz_write_raw_header(struct fuzz_peer *p, struct fuzz_peer *other,
    const uint8_t *payload, size_t len)
{
	struct evbuffer	*hdr, *buf;
	size_t		 hlen, i;

	if (len < 1)
		return;
	hlen = payload[0];
	if (hlen > len - 1)
		hlen = len - 1;
	hdr = evbuffer_new();
	for (i = 1; i < 1 + hlen; i++) {
		if (i + 4 <= 1 + hlen && memcmp(payload + i, "$SID", 4) == 0) {
			evbuffer_add(hdr, p->id, strlen(p->id));
			i += 3;
		} else
			evbuffer_add(hdr, payload + i, 1);
	}
	buf = evbuffer_new();
	if (ac_frame_encode_raw(buf, fuzz_srv.cfg->key,
	    evbuffer_pullup(hdr, -1), evbuffer_get_length(hdr),
	    payload + 1 + hlen, len - 1 - hlen) == 0)
		fuzz_write(p, other, evbuffer_pullup(buf, -1),
		    evbuffer_get_length(buf));
	evbuffer_free(buf);
	evbuffer_free(hdr);
}

/* Open one session over a socketpair and read its session_init. */
static void
fuzz_connect(struct fuzz_peer *p, struct fuzz_peer *other)
{
	struct sockaddr_un	sun;
	int			fds[2], i;

	memset(p, 0, sizeof *p);
	p->fd = -1;
	p->in = evbuffer_new();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == -1)
		abort();
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
	p->fd = fds[1];
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	session_accept(&fuzz_srv, fds[0], (struct sockaddr *)&sun,
	    sizeof sun, "unix", NULL);
	for (i = 0; i < FUZZ_PUMP_MAX && p->id[0] == '\0'; i++)
		fuzz_pump(p, other);
	if (p->id[0] == '\0') {
		fprintf(stderr, "fuzz_session: no session_init\n");
		abort();
	}
}

/*
 * Fire a timer now rather than wait for it: the session's own (7) or
 * every lingering session's (6). Timeouts can then meet any state the
 * input reached, which waiting seconds per input never would.
 */
static void
fuzz_fire(struct fuzz_peer *p, int which)
{
	struct ac_session	*s;

	if (which == 7 && (s = registry_find(&fuzz_srv.reg, p->id)) != NULL)
		event_active(s->timer, EV_TIMEOUT, 1);
	if (which == 6) {
		TAILQ_FOREACH(s, &fuzz_srv.lingering, entry)
			event_active(s->linger, EV_TIMEOUT, 1);
	}
}

/* Hang up a peer. */
static void
fuzz_hangup(struct fuzz_peer *p)
{
	if (p->fd != -1)
		close(p->fd);
	p->fd = -1;
}

/* One input: two sessions, the records to the first, then both hang up. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server		*srv = &fuzz_srv;
	struct fuzz_peer	 a, b, none;
	const uint8_t		*payload;
	size_t			 len;
	uint8_t			 flags, kind;
	int			 i, j;

	if (size < 1)
		return (0);
	flags = data[0];
	data++;
	size--;

	memset(&none, 0, sizeof none);
	none.fd = -1;
	fuzz_connect(&b, &none);
	fuzz_write_frame(&b, &none, AC_MSG_SESSION_ACK, b.id,
	    (const uint8_t *)"ack", 3);
	fuzz_connect(&a, &b);
	if (!(flags & 1))
		fuzz_write_frame(&a, &b, AC_MSG_SESSION_ACK, a.id,
		    (const uint8_t *)"ack", 3);
	fuzz_settle(&a, &b);

	while (size >= 3) {
		kind = data[0];
		len = (size_t)data[1] << 8 | data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		payload = data;
		data += len;
		size -= len;
		switch (kind % 4) {
		case 0:
			fuzz_write(&a, &b, payload, len);
			break;
		case 1:
			if (len < 1)
				break;
			fuzz_write_frame(&a, &b, payload[0] % AC_MSG_TYPE_COUNT,
			    (payload[0] & 0x80) ? FUZZ_WRONG_ID : a.id,
			    payload + 1, len - 1);
			break;
		case 2:
			fuzz_write_raw_header(&a, &b, payload, len);
			break;
		case 3:
			if (len > 0)
				fuzz_fire(&a, payload[0] % 8);
			for (j = 0; j < 1 + (int)(len % 4); j++)
				fuzz_pump(&a, &b);
			break;
		}
	}
	if (size > 0)
		fuzz_write(&a, &b, data, size);
	fuzz_settle(&a, &b);

	/* Both hang up: every session must go, and then be freed. */
	fuzz_hangup(&a);
	fuzz_hangup(&b);
	for (i = 0; i < FUZZ_PUMP_MAX; i++) {
		event_base_loop(srv->base, EVLOOP_NONBLOCK);
		if (srv->reg.count == 0 && TAILQ_EMPTY(&srv->lingering) &&
		    TAILQ_EMPTY(&srv->dead))
			break;
	}
	if (srv->reg.count != 0 || !TAILQ_EMPTY(&srv->lingering) ||
	    !TAILQ_EMPTY(&srv->dead)) {
		fprintf(stderr, "fuzz_session: sessions left after hang-up: "
		    "%zu registered, %s lingering, %s unreaped\n",
		    srv->reg.count, TAILQ_EMPTY(&srv->lingering) ? "none" :
		    "some", TAILQ_EMPTY(&srv->dead) ? "none" : "some");
		abort();
	}
	evbuffer_free(a.in);
	evbuffer_free(b.in);
	return (0);
}
