/*
 * fuzz_web.c - libFuzzer target for a ws:// listener's connection: the
 * HTTP request parser and the static files (http.c, webroot.c), the
 * upgrade and the origin check (origin.c), then the WebSocket transport
 * (ws.c) under the session, dispatch and plugins (echo, broadcast).
 *
 * The server's own code (every file of src/server but main.c) runs with
 * a configuration from a small embedded INI whose web_root is the
 * source tree's web/; each input is one connection over a socketpair,
 * handed to http_accept() as a listener would, and the event loop runs
 * until nothing moves, then the peer hangs up and every connection and
 * session must be gone (LeakSanitizer checks the memory).
 *
 * Byte 0 of the input holds flags: bit 0 sends a valid upgrade request
 * first (so that inputs reach the WebSocket quickly), bit 1 makes the
 * listener a loopback one (the default origin policy differs), bit 2
 * answers the session_init with a session_ack over the WebSocket. The
 * rest is records, each kind (1 byte), payload length (2 bytes,
 * big-endian), payload:
 *
 *	kind % 4 == 0	raw bytes, written as they are (HTTP, or frames)
 *	kind % 4 == 1	a masked WebSocket frame: byte 0 is its first header
 *			byte (FIN, RSV, opcode), the rest its payload
 *	kind % 4 == 2	a binary message holding a frame signed here: type
 *			(byte 0 % 7), content (the rest)
 *	kind % 4 == 3	run the loop a little (splits the server's reads);
 *			byte 0 % 8 == 7 fires the connection's timers
 *
 * Oracles besides ASan/UBSan/LSan: what the server writes is HTTP
 * answers, each with a status line and a Content-Length its body
 * matches, and after a 101 only final, unmasked WebSocket frames with no
 * reserved bit, each binary one holding exactly one valid protocol frame;
 * nothing is left once the peer hangs up.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
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
#ifndef FUZZ_WEB_ROOT
#define FUZZ_WEB_ROOT "web"
#endif

#define FUZZ_PUMP_MAX		2000	/* loop turns to wait for idle */
#define FUZZ_UPGRADE							\
	"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"			\
	"Origin: http://127.0.0.1:8080\r\nUpgrade: websocket\r\n"	\
	"Connection: Upgrade\r\n"					\
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"		\
	"Sec-WebSocket-Version: 13\r\n\r\n"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);

/* The client end of the connection and what it has read. */
struct fuzz_peer {
	int		 fd;		/* -1 once closed */
	int		 eof;
	struct evbuffer	*in;		/* bytes not yet checked */
	int		 upgraded;	/* a 101 was read */
	char		 id[AC_UUID_STRLEN + 1];
};

static struct server	 fuzz_srv;
static struct listener	 fuzz_listener;
static struct ac_limits	 fuzz_client_limits;

/* main.c is not linked in: the fuzzer never shuts the server down. */
void
server_maybe_exit(struct server *srv)
{
}

/* Load the embedded configuration (plugins and web/ from the trees). */
static struct ac_config *
fuzz_config(void)
{
	struct ac_config	*cfg;
	const char		*dir, *web;

	if ((dir = getenv("ASYNCCHAT_FUZZ_PLUGIN_DIR")) == NULL)
		dir = FUZZ_PLUGIN_DIR;
	if ((web = getenv("ASYNCCHAT_FUZZ_WEB_ROOT")) == NULL)
		web = FUZZ_WEB_ROOT;
	cfg = testserver_config("fuzz_web", "[server]\n"
	    "listen = ws://127.0.0.1:0\n"
	    "web_root = %s\n"
	    "hmac_key = %s\n"
	    "log = stderr\n"
	    "log_level = error\n"
	    "plugin_dir = %s\n"
	    "max_header_size = 4K\n"
	    "max_content_size = 64K\n"
	    "max_output_buffer = 256K\n"
	    "max_clients_per_ip = 0\n"
	    "\n[plugins]\nload = echo, broadcast\n", web, AC_DEFAULT_KEY, dir);
	if (cfg == NULL)
		abort();
	return (cfg);
}

/* Set up the server once: event base, limits, plugins, no listener. */
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
		fprintf(stderr, "fuzz_web: %s (set ASYNCCHAT_FUZZ_PLUGIN_DIR "
		    "to the build's plugins/.libs)\n", cause);
		abort();
	}
	fuzz_listener.srv = srv;
	fuzz_listener.type = AC_LISTEN_WS;
	ac_limits_default(&fuzz_client_limits);
	return (0);
}

/* Say what is wrong with the server's output, and stop. */
static void
fuzz_bad(const char *what)
{
	fprintf(stderr, "fuzz_web: the server wrote %s\n", what);
	abort();
}

/* Check one binary message: exactly one valid protocol frame. */
static void
fuzz_check_message(struct fuzz_peer *p, const uint8_t *b, size_t len)
{
	struct ac_message	 msg;
	enum ac_frame_status	 st;
	size_t			 used;

	memset(&msg, 0, sizeof msg);
	st = ac_frame_decode(fuzz_srv.cfg->key, &fuzz_client_limits, b, len,
	    &used, &msg);
	if (st != AC_FRAME_OK || used != len)
		fuzz_bad("a binary message that is not one valid frame");
	if (msg.type == AC_MSG_SESSION_INIT && p->id[0] == '\0' &&
	    msg.session_id != NULL && strlen(msg.session_id) == AC_UUID_STRLEN)
		memcpy(p->id, msg.session_id, AC_UUID_STRLEN + 1);
	ac_message_clear(&msg);
}

/*
 * Check the WebSocket frames at the start of the peer's input; 0 when
 * more bytes are needed.
 */
static int
fuzz_check_frame(struct fuzz_peer *p)
{
	const uint8_t	*b;
	size_t		 have = evbuffer_get_length(p->in), hl = 2, i;
	uint64_t	 len;

	if (have < 2)
		return (0);
	b = evbuffer_pullup(p->in, have < 10 ? have : 10);
	if ((b[0] & 0xf0) != 0x80 || (b[1] & 0x80))
		fuzz_bad("a fragmented, reserved-bit or masked frame");
	len = b[1] & 0x7f;
	if (len == 126) {
		if (have < 4)
			return (0);
		len = (uint64_t)b[2] << 8 | b[3];
		hl = 4;
	} else if (len == 127) {
		if (have < 10)
			return (0);
		for (len = 0, i = 2; i < 10; i++)
			len = len << 8 | b[i];
		hl = 10;
	}
	if (have < hl + len)
		return (0);
	b = evbuffer_pullup(p->in, hl + len);
	switch (b[0] & 0x0f) {
	case 0x2:
		fuzz_check_message(p, b + hl, len);
		break;
	case 0x8:
	case 0xa:
		if (len > 125)
			fuzz_bad("a long control frame");
		break;
	default:
		fuzz_bad("a frame of another opcode");
	}
	evbuffer_drain(p->in, hl + len);
	return (1);
}

/* Check the HTTP answer at the start of the input; 0 for more bytes. */
static int
fuzz_check_answer(struct fuzz_peer *p)
{
	struct evbuffer_ptr	 end;
	char			*head, *cl;
	size_t			 hl;
	unsigned long		 body = 0;

	end = evbuffer_search(p->in, "\r\n\r\n", 4, NULL);
	if (end.pos == -1)
		return (0);
	hl = end.pos + 4;
	head = malloc(hl + 1);
	evbuffer_copyout(p->in, head, hl);
	head[hl] = '\0';
	if (strncmp(head, "HTTP/1.1 ", 9) != 0 || strlen(head) != hl)
		fuzz_bad("an answer without a status line");
	if (strncmp(head, "HTTP/1.1 101 ", 13) == 0)
		p->upgraded = 1;
	else if ((cl = strstr(head, "\r\nContent-Length: ")) == NULL)
		fuzz_bad("an answer without Content-Length");
	else
		body = strtoul(cl + 18, NULL, 10);
	free(head);
	/* A HEAD answer has no body: accept the head alone when the bytes
	 * after it start another answer. */
	if (body != 0 && evbuffer_get_length(p->in) >= hl + 9) {
		head = (char *)evbuffer_pullup(p->in, hl + 9) + hl;
		if (memcmp(head, "HTTP/1.1 ", 9) == 0)
			body = 0;
	}
	if (evbuffer_get_length(p->in) < hl + body)
		return (0);
	evbuffer_drain(p->in, hl + body);
	return (1);
}

/* Read what the server wrote and check it. */
static size_t
fuzz_drain(struct fuzz_peer *p)
{
	size_t	got = 0;
	ssize_t	n;
	char	buf[16384];

	while (p->fd != -1 && !p->eof) {
		n = read(p->fd, buf, sizeof buf);
		if (n == 0)
			p->eof = 1;
		if (n <= 0)
			break;
		evbuffer_add(p->in, buf, n);
		got += n;
	}
	while (p->upgraded ? fuzz_check_frame(p) : fuzz_check_answer(p))
		;
	return (got);
}

/* Bytes written to the peer's socket that the server has not read. */
static int
fuzz_unread(struct fuzz_peer *p)
{
	int	n = 0;

	if (p->fd == -1 || ioctl(p->fd, SIOCOUTQ, &n) == -1)
		return (0);
	return (n);
}

/* Run the loop once and read; non-zero if anything moved. */
static int
fuzz_pump(struct fuzz_peer *p)
{
	event_base_loop(fuzz_srv.base, EVLOOP_NONBLOCK);
	return (fuzz_drain(p) != 0 || fuzz_unread(p) != 0);
}

/* Run the loop until two turns in a row move nothing (or the bound). */
static void
fuzz_settle(struct fuzz_peer *p)
{
	int	i, quiet = 0;

	for (i = 0; i < FUZZ_PUMP_MAX && quiet < 2; i++)
		quiet = fuzz_pump(p) ? 0 : quiet + 1;
}

/* Write all of buf, running the loop while the socket is full. */
static void
fuzz_write(struct fuzz_peer *p, const void *buf, size_t len)
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
		fuzz_pump(p);
	}
}

/* Write a masked WebSocket frame with this first header byte. */
static void
fuzz_write_ws(struct fuzz_peer *p, uint8_t b0, const uint8_t *payload,
    size_t len)
{
	static const uint8_t	 mask[4] = { 0x12, 0x34, 0x56, 0x78 };
	uint8_t			 h[14];
	uint8_t			*out;
	size_t			 hl, i;

	h[0] = b0;
	if (len < 126) {
		h[1] = 0x80 | len;
		hl = 2;
	} else {
		h[1] = 0x80 | 126;
		h[2] = len >> 8;
		h[3] = len & 0xff;
		hl = 4;
	}
	memcpy(h + hl, mask, 4);
	hl += 4;
	out = malloc(hl + len + 1);
	memcpy(out, h, hl);
	for (i = 0; i < len; i++)
		out[hl + i] = payload[i] ^ mask[i % 4];
	fuzz_write(p, out, hl + len);
	free(out);
}

/* Write a signed protocol frame in one binary message. */
static void
fuzz_write_frame(struct fuzz_peer *p, enum ac_msg_type type,
    const uint8_t *content, size_t len)
{
	struct evbuffer	*buf = evbuffer_new();

	if (ac_frame_encode(buf, fuzz_srv.cfg->key, type,
	    "application/octet-stream", p->id[0] != '\0' ? p->id : NULL,
	    NULL, content, len) == 0 && evbuffer_get_length(buf) < 65536)
		fuzz_write_ws(p, 0x82, evbuffer_pullup(buf, -1),
		    evbuffer_get_length(buf));
	evbuffer_free(buf);
}

/* Fire the connection's timers now (handshake, heartbeat, linger). */
static void
fuzz_fire(struct fuzz_peer *p)
{
	struct ac_session	*s;

	if (p->id[0] != '\0' &&
	    (s = registry_find(&fuzz_srv.reg, p->id)) != NULL)
		event_active(s->timer, EV_TIMEOUT, 1);
	TAILQ_FOREACH(s, &fuzz_srv.lingering, entry)
		event_active(s->linger, EV_TIMEOUT, 1);
}

/* One input: one connection, the records, then the peer hangs up. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server		*srv = &fuzz_srv;
	struct fuzz_peer	 p;
	struct sockaddr_in	 sin;
	const uint8_t		*payload;
	size_t			 len;
	uint8_t			 flags, kind;
	int			 fds[2], i, j;

	if (size < 1)
		return (0);
	flags = data[0];
	data++;
	size--;

	memset(&p, 0, sizeof p);
	p.in = evbuffer_new();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == -1)
		abort();
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
	p.fd = fds[1];
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	sin.sin_port = htons(40000);
	fuzz_listener.loopback = (flags & 2) != 0;
	http_accept(&fuzz_listener, fds[0], (struct sockaddr *)&sin,
	    sizeof sin);
	if (flags & 1) {
		fuzz_write(&p, FUZZ_UPGRADE, strlen(FUZZ_UPGRADE));
		fuzz_settle(&p);
		if ((flags & 4) && p.id[0] != '\0')
			fuzz_write_frame(&p, AC_MSG_SESSION_ACK,
			    (const uint8_t *)"ack", 3);
	}

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
			fuzz_write(&p, payload, len);
			break;
		case 1:
			if (len >= 1)
				fuzz_write_ws(&p, payload[0], payload + 1,
				    len - 1);
			break;
		case 2:
			if (len >= 1)
				fuzz_write_frame(&p, payload[0] %
				    AC_MSG_TYPE_COUNT, payload + 1, len - 1);
			break;
		case 3:
			if (len > 0 && payload[0] % 8 == 7)
				fuzz_fire(&p);
			for (j = 0; j < 1 + (int)(len % 4); j++)
				fuzz_pump(&p);
			break;
		}
	}
	if (size > 0)
		fuzz_write(&p, data, size);
	fuzz_settle(&p);

	/* The peer hangs up: everything must go, and then be freed. */
	close(p.fd);
	p.fd = -1;
	for (i = 0; i < FUZZ_PUMP_MAX; i++) {
		event_base_loop(srv->base, EVLOOP_NONBLOCK);
		if (srv->nhttp == 0 && srv->reg.count == 0 &&
		    TAILQ_EMPTY(&srv->lingering) && TAILQ_EMPTY(&srv->dead))
			break;
	}
	if (srv->nhttp != 0 || srv->reg.count != 0 ||
	    !TAILQ_EMPTY(&srv->lingering) || !TAILQ_EMPTY(&srv->dead)) {
		fprintf(stderr, "fuzz_web: left after hang-up: %u web "
		    "connections, %zu sessions, %s lingering, %s unreaped\n",
		    srv->nhttp, srv->reg.count, TAILQ_EMPTY(&srv->lingering) ?
		    "none" : "some", TAILQ_EMPTY(&srv->dead) ? "none" : "some");
		abort();
	}
	evbuffer_free(p.in);
	return (0);
}
