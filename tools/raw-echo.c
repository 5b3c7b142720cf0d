/*
 * raw-echo.c - the ceilings asyncchatd is measured against: minimal echo
 * servers on the same libevent, in the same run, on the same machine.
 *
 *  -m bev     4-byte length prefix, one bufferevent per connection: the
 *             plain libevent way (and libevent 2.1's evbuffer_read() takes
 *             at most 4096 bytes per call, which shows at 4 KiB frames).
 *  -m event   4-byte length prefix, a plain read event and one 256 KiB read
 *             buffer: every complete frame of a read goes back in one write.
 *  -m frames  the asyncchat framing without any check: the 64-byte fixed
 *             header gives the frame's length, the frame goes back as it
 *             came; session_init is sent on connect, session_ack dropped,
 *             a ping answered with a pong encoded once. This is the most a
 *             protocol server can show to a verifying client here.
 *
 * No CRC, no HMAC, no JSON, no session state: a measuring instrument, not a
 * server. It prints "raw-echo: listening on ADDRESS" on stderr once bound.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <asyncchat/frame.h>
#include <asyncchat/key.h>

#define READ_SIZE	(256 * 1024)
#define PENDING_MAX	(4 * 1024 * 1024)
#define IOV_BATCH	64
#define FIXED_SID	"00000000-0000-4000-8000-000000000000"
#define OCTET_STREAM	"application/octet-stream"

enum echo_mode {
	MODE_BEV,
	MODE_EVENT,
	MODE_FRAMES,
};

/* A connection of the event and frames modes. */
struct peer {
	int		 fd;
	struct event	*rev;
	struct event	*wev;
	int		 reading;
	uint8_t		*left;		/* the partial frame after a read */
	size_t		 left_len;
	size_t		 left_size;
	uint8_t		*pend;		/* output the socket did not take */
	size_t		 pend_off;
	size_t		 pend_len;
	size_t		 pend_size;
};

static enum echo_mode	 mode = MODE_EVENT;
static struct event_base *base;
static uint8_t		*rbuf;
static size_t		 rbuf_size;
static uint8_t		*init_frame, *pong_frame;
static size_t		 init_len, pong_len;
static const char	*unix_path;

static void	peer_read_cb(evutil_socket_t, short, void *);
static void	peer_write_cb(evutil_socket_t, short, void *);

/* Print how to use the program and exit with status. */
static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout, "usage: raw-echo [-m bev|event|"
	    "frames] [-k KEY] [-l tcp://HOST:PORT | unix:///PATH]\n");
	exit(status);
}

/* Read a big-endian 32-bit value. */
static uint32_t
get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* Read a big-endian 64-bit value. */
static uint64_t
get_be64(const uint8_t *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

/* Encode a frame once, at start-up, into a malloc'd array. */
static uint8_t *
encode_once(const struct ac_key *key, enum ac_msg_type type,
    const char *content, size_t *len)
{
	struct evbuffer	*buf = evbuffer_new();
	uint8_t		*p;

	if (ac_frame_encode(buf, key, type, OCTET_STREAM, FIXED_SID, NULL,
	    content, strlen(content)) != 0)
		abort();
	*len = evbuffer_get_length(buf);
	if ((p = malloc(*len)) == NULL)
		abort();
	evbuffer_remove(buf, p, *len);
	evbuffer_free(buf);
	return p;
}

/* Close a connection and free it. */
static void
peer_free(struct peer *pe)
{
	event_free(pe->rev);
	event_free(pe->wev);
	close(pe->fd);
	free(pe->left);
	free(pe->pend);
	free(pe);
}

/* Append bytes to the connection's pending output. */
static void
peer_pend(struct peer *pe, const uint8_t *p, size_t len)
{
	if (pe->pend_off > 0 && pe->pend_off == pe->pend_len)
		pe->pend_off = pe->pend_len = 0;
	if (pe->pend_len + len > pe->pend_size) {
		pe->pend_size = (pe->pend_len + len) * 2;
		if ((pe->pend = realloc(pe->pend, pe->pend_size)) == NULL)
			abort();
	}
	memcpy(pe->pend + pe->pend_len, p, len);
	pe->pend_len += len;
}

/*
 * Send iovecs now if nothing is waiting before them, else queue them; what
 * the socket does not take waits for the write event. Returns -1 if the
 * connection failed.
 */
static int
peer_send(struct peer *pe, struct iovec *iov, int n)
{
	ssize_t	w = 0;
	int	i;

	if (n == 0)
		return 0;
	if (pe->pend_len == pe->pend_off) {
		w = writev(pe->fd, iov, n);
		if (w == -1) {
			if (errno != EAGAIN && errno != EINTR)
				return -1;
			w = 0;
		}
	}
	for (i = 0; i < n; i++) {
		if ((size_t)w >= iov[i].iov_len) {
			w -= iov[i].iov_len;
			continue;
		}
		peer_pend(pe, (uint8_t *)iov[i].iov_base + w,
		    iov[i].iov_len - w);
		w = 0;
	}
	if (pe->pend_len > pe->pend_off) {
		event_add(pe->wev, NULL);
		if (pe->pend_len - pe->pend_off > PENDING_MAX && pe->reading) {
			event_del(pe->rev);	/* a slow reader: wait */
			pe->reading = 0;
		}
	}
	return 0;
}

/* Add a piece of output to the batch, flushing a full batch. */
static int
peer_batch(struct peer *pe, struct iovec *iov, int *n, const void *p,
    size_t len)
{
	if (len == 0)
		return 0;
	if (*n > 0 && (uint8_t *)iov[*n - 1].iov_base + iov[*n - 1].iov_len ==
	    (const uint8_t *)p) {
		iov[*n - 1].iov_len += len;	/* contiguous: extend */
		return 0;
	}
	if (*n == IOV_BATCH) {
		if (peer_send(pe, iov, *n) == -1)
			return -1;
		*n = 0;
	}
	iov[*n].iov_base = (void *)p;
	iov[*n].iov_len = len;
	(*n)++;
	return 0;
}

/* Non-zero when the header JSON mentions the quoted word. */
static int
header_has(const uint8_t *hj, size_t len, const char *word)
{
	return memmem(hj, len, word, strlen(word)) != NULL;
}

/*
 * Frame the bytes at p and queue the replies; returns the bytes of whole
 * frames used, or SIZE_MAX if the stream cannot be framed.
 */
static size_t
peer_echo(struct peer *pe, const uint8_t *p, size_t len)
{
	struct iovec	iov[IOV_BATCH];
	size_t		used = 0, flen;
	uint64_t	clen;
	uint32_t	hlen;
	int		n = 0;

	if (mode == MODE_EVENT) {
		while (len - used >= 4) {
			flen = 4 + (size_t)get_be32(p + used);
			if (len - used < flen)
				break;
			used += flen;
		}
		iov[0].iov_base = (void *)p;
		iov[0].iov_len = used;
		return peer_send(pe, iov, used > 0) == -1 ? SIZE_MAX : used;
	}

	while (len - used >= AC_FIXED_HEADER_LEN) {
		const uint8_t	*f = p + used;

		if (memcmp(f, AC_MAGIC, AC_MAGIC_LEN) != 0)
			return SIZE_MAX;
		hlen = get_be32(f + 12);
		clen = get_be64(f + 20);
		if (hlen > AC_DEFAULT_MAX_HEADER ||
		    clen > AC_DEFAULT_MAX_CONTENT)
			return SIZE_MAX;
		flen = AC_FIXED_HEADER_LEN + hlen + (size_t)clen;
		if (len - used < flen)
			break;
		if (header_has(f + AC_FIXED_HEADER_LEN, hlen,
		    "\"session_ack\"")) {
			/* dropped: the handshake needs no answer */
		} else if (header_has(f + AC_FIXED_HEADER_LEN, hlen,
		    "\"heartbeat\"")) {
			if (peer_batch(pe, iov, &n, pong_frame, pong_len) == -1)
				return SIZE_MAX;
		} else if (peer_batch(pe, iov, &n, f, flen) == -1)
			return SIZE_MAX;
		used += flen;
	}
	return peer_send(pe, iov, n) == -1 ? SIZE_MAX : used;
}

/* Read into the shared buffer after the last partial frame; echo. */
static void
peer_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer	*pe = arg;
	size_t		 have, used;
	ssize_t		 n;

	if (rbuf_size < pe->left_len + READ_SIZE / 2) {
		rbuf_size = pe->left_len + READ_SIZE;
		free(rbuf);
		if ((rbuf = malloc(rbuf_size)) == NULL)
			abort();
	}
	if (pe->left_len > 0)	/* pe->left may be NULL: UB for memcpy */
		memcpy(rbuf, pe->left, pe->left_len);
	n = read(fd, rbuf + pe->left_len, rbuf_size - pe->left_len);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		peer_free(pe);
		return;
	}
	have = pe->left_len + (size_t)n;
	if ((used = peer_echo(pe, rbuf, have)) == SIZE_MAX) {
		peer_free(pe);
		return;
	}

	/* The unsent output may point into rbuf: it was copied by now. */
	if (have - used > pe->left_size) {
		pe->left_size = have - used;
		if ((pe->left = realloc(pe->left, pe->left_size)) == NULL)
			abort();
	}
	if (have > used)
		memcpy(pe->left, rbuf + used, have - used);
	pe->left_len = have - used;
}

/* The socket takes output again. */
static void
peer_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer	*pe = arg;
	ssize_t		 w;

	w = write(fd, pe->pend + pe->pend_off, pe->pend_len - pe->pend_off);
	if (w == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		peer_free(pe);
		return;
	}
	pe->pend_off += (size_t)w;
	if (pe->pend_off < pe->pend_len)
		return;
	pe->pend_off = pe->pend_len = 0;
	event_del(pe->wev);
	if (!pe->reading) {
		event_add(pe->rev, NULL);
		pe->reading = 1;
	}
}

/* Echo every complete length-prefixed frame of a bufferevent's input. */
static void
bev_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct evbuffer	*out = bufferevent_get_output(bev);
	uint8_t		 prefix[4];
	size_t		 flen;

	while (evbuffer_get_length(in) >= 4) {
		evbuffer_copyout(in, prefix, 4);
		flen = 4 + (size_t)get_be32(prefix);
		if (evbuffer_get_length(in) < flen)
			break;
		evbuffer_remove_buffer(in, out, flen);
	}
}

/* A bufferevent connection ended. */
static void
bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

/* A new connection: set it up for the chosen mode. */
static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct bufferevent	*bev;
	struct peer		*pe;
	struct iovec		 iov;
	int			 one = 1;

	if (sa->sa_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (mode == MODE_BEV) {
		bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(bev, bev_read_cb, NULL, bev_event_cb, NULL);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		return;
	}
	if ((pe = calloc(1, sizeof *pe)) == NULL)
		abort();
	pe->fd = fd;
	pe->rev = event_new(base, fd, EV_READ | EV_PERSIST, peer_read_cb, pe);
	pe->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, peer_write_cb,
	    pe);
	event_add(pe->rev, NULL);
	pe->reading = 1;
	if (mode == MODE_FRAMES) {
		iov.iov_base = init_frame;
		iov.iov_len = init_len;
		if (peer_send(pe, &iov, 1) == -1)
			peer_free(pe);
	}
}

/* SIGINT or SIGTERM: leave the loop. */
static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopbreak(base);
}

/* Bind the listener named by addr ("tcp://H:P" or "unix:///PATH"). */
static struct evconnlistener *
listen_on(const char *addr)
{
	struct evconnlistener	*l;
	struct sockaddr_storage	 ss;
	struct sockaddr_un	 sun;
	socklen_t		 len = sizeof ss;
	char			 host[INET6_ADDRSTRLEN];
	struct addrinfo		 hints, *res;
	unsigned		 flags;
	const char		*colon;
	char			*hostpart;
	int			 rc;

	flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE;
	if (strncmp(addr, "unix://", 7) == 0) {
		unix_path = addr + 7;
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		if (strlen(unix_path) >= sizeof sun.sun_path)
			return NULL;
		strcpy(sun.sun_path, unix_path);
		unlink(unix_path);
		l = evconnlistener_new_bind(base, accept_cb, NULL, flags, 1024,
		    (struct sockaddr *)&sun, sizeof sun);
		if (l != NULL)
			fprintf(stderr, "raw-echo: listening on unix://%s\n",
			    unix_path);
		return l;
	}
	if (strncmp(addr, "tcp://", 6) == 0)
		addr += 6;
	if (*addr == '[') {
		if ((colon = strchr(addr, ']')) == NULL || colon[1] != ':')
			return NULL;
		hostpart = strndup(addr + 1, colon - addr - 1);
		colon++;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL)
			return NULL;
		hostpart = strndup(addr, colon - addr);
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(hostpart, colon + 1, &hints, &res);
	free(hostpart);
	if (rc != 0)
		return NULL;
	l = evconnlistener_new_bind(base, accept_cb, NULL, flags, 1024,
	    res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (l == NULL)
		return NULL;
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		fprintf(stderr, "raw-echo: listening on tcp://[%s]:%u\n", host,
		    ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		fprintf(stderr, "raw-echo: listening on tcp://%s:%u\n", host,
		    ntohs(s4->sin_port));
	}
	return l;
}

/* Parse the options, encode the fixed frames, listen, echo until a signal. */
int
main(int argc, char **argv)
{
	struct evconnlistener	*l;
	struct event		*sigint, *sigterm;
	struct ac_key		*key;
	const char		*addr = "tcp://127.0.0.1:0";
	const char		*secret = AC_DEFAULT_KEY;
	int			 ch;

	while ((ch = getopt(argc, argv, "hk:l:m:")) != -1) {
		switch (ch) {
		case 'k':
			secret = optarg;
			break;
		case 'l':
			addr = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "bev") == 0)
				mode = MODE_BEV;
			else if (strcmp(optarg, "event") == 0)
				mode = MODE_EVENT;
			else if (strcmp(optarg, "frames") == 0)
				mode = MODE_FRAMES;
			else
				usage(2);
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);

	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	key = ac_key_new(secret, strlen(secret));
	init_frame = encode_once(key, AC_MSG_SESSION_INIT,
	    "Session established", &init_len);
	pong_frame = encode_once(key, AC_MSG_HEARTBEAT, "pong", &pong_len);
	ac_key_free(key);

	if ((l = listen_on(addr)) == NULL) {
		fprintf(stderr, "raw-echo: cannot listen on %s: %s\n", addr,
		    strerror(errno));
		return 1;
	}
	sigint = evsignal_new(base, SIGINT, signal_cb, NULL);
	sigterm = evsignal_new(base, SIGTERM, signal_cb, NULL);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_base_dispatch(base);

	evconnlistener_free(l);
	if (unix_path != NULL)
		unlink(unix_path);
	event_free(sigint);
	event_free(sigterm);
	free(init_frame);
	free(pong_frame);
	free(rbuf);
	event_base_free(base);
	return 0;
}
