/*
 * http.c - a connection of a ws:// or wss:// listener until it upgrades:
 * HTTP/1.1 requests read from its bufferevent, answered with the files
 * of web_root (webroot.c), and GET /ws answered with an RFC 6455 upgrade,
 * after which the same bufferevent carries a session's WebSocket (ws.c).
 *
 * Why a parser of our own and not evhttp: libevent 2.1's evhttp cannot
 * give a connection's socket away after a request (there is no call that
 * detaches its bufferevent from the evhttp_connection; 2.2 adds a
 * WebSocket API for that), has no bound on its connections and retries a
 * failing accept() in a busy loop (metrics.c says more). What we need is
 * small: a request line and headers, bounded, GET and HEAD, no bodies.
 *
 * Until it upgrades, a connection is not a session: web connections are
 * bounded on their own, at most max_clients of them and
 * max_clients_per_ip from one address (503 past either), so that a flood
 * of them neither takes the sessions' places nor is taken by them. The
 * upgraded session then counts as any other, and is refused as any other
 * (server_full, too_many_connections) inside the WebSocket, where the
 * page can read why.
 *
 * Who may send what: anyone who reaches the listener sends a request
 * head, which is bounded before it is parsed: the request line at most
 * HTTP_MAX_LINE bytes (414), the head at most HTTP_MAX_HEAD bytes and
 * HTTP_MAX_HEADERS lines (431), and no body (413). Every connection
 * must send each request, and read its answer, within
 * handshake_timeout, or it is closed; one connection serves at
 * most HTTP_MAX_REQUESTS requests, one at a time (a pipelined request
 * waits, bounded by the read watermark, until the previous answer is
 * written). A path is percent-decoded once; a NUL, an encoded slash, a
 * "." or ".." segment or a bad escape is 400; the rest is a name looked up
 * in the table of files webroot.c read, which holds nothing but regular
 * files under web_root (404 otherwise: no directory is ever listed).
 * The upgrade needs GET, Upgrade: websocket, Connection: upgrade, a
 * 16-byte Sec-WebSocket-Key and version 13 (400 or 426), and an Origin
 * web_origins allows (403, origin.c).
 *
 * Caching: every file is sent with Cache-Control: no-cache and an ETag
 * (a hash of its bytes), and If-None-Match is answered with 304. The
 * page's files have no version in their names (there is no build step),
 * so a browser that kept one for a while after an upgrade would run new
 * modules beside old ones; revalidating costs a small request per file,
 * answered without a body.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define HTTP_WS_PATH		"/ws"
#define HTTP_WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HTTP_DRAIN_MAX		65536
#define HTTP_LOG_SECONDS	5

/*
 * Sent with every answer: the page is served as its own, with nothing
 * from elsewhere (the page's <meta> says the same; frame-ancestors can
 * only be said here), never framed by another site, never sniffed.
 */
#define HTTP_SECURITY_HEADERS						\
	"X-Content-Type-Options: nosniff\r\n"				\
	"X-Frame-Options: DENY\r\n"					\
	"Referrer-Policy: no-referrer\r\n"				\
	"Cross-Origin-Resource-Policy: same-origin\r\n"			\
	"Content-Security-Policy: default-src 'none'; script-src "	\
	"'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "\
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"

/* One connection of a web listener, before its upgrade. */
struct http_conn {
	struct server		*srv;
	struct bufferevent	*bev;		/* wss: bufferevent_openssl */
	struct event		*timer;		/* handshake_timeout */
	struct iplimit_entry	*ip;
	struct sockaddr_storage	 ss;
	char			 peer[64];
	unsigned int		 requests;
	int			 flags;
#define HTTP_TLS	0x1	/* wss */
#define HTTP_TLS_UP	0x2	/* TLS handshake done */
#define HTTP_LOOPBACK	0x4	/* the listener is bound to loopback */
#define HTTP_CLOSE	0x8	/* close once the answer is written */
#define HTTP_BUSY	0x10	/* an answer is being written */
	TAILQ_ENTRY(http_conn)	 entry;
};

/* A request head, parsed: pointers into its copy. */
struct http_request {
	char		*method;
	char		*target;
	int		 minor;		/* HTTP/1.minor */
	char		*host;
	char		*origin;
	char		*upgrade;
	char		*ws_key;
	char		*ws_version;
	char		*if_none_match;
	int		 conn_close;	/* Connection: close */
	int		 conn_upgrade;	/* Connection: upgrade */
	int		 body;		/* Content-Length > 0, or chunked */
	const char	*why;		/* what is wrong, when refused */
};

/* The answers we give, and how many of each (for the metrics). */
static const struct {
	int		 code;
	const char	*reason;
} http_statuses[] = {
	{ 101, "Switching Protocols" },
	{ 200, "OK" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 426, "Upgrade Required" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 503, "Service Unavailable" },
	{ 505, "HTTP Version Not Supported" },
};
#define HTTP_NSTATUSES (sizeof http_statuses / sizeof http_statuses[0])
static uint64_t		http_counts[HTTP_NSTATUSES];

/* The origin refusal log, bounded (a hostile page can send many). */
static struct timeval	http_origin_logged;
static unsigned int	http_origin_unlogged;

static void	http_read_cb(struct bufferevent *, void *);
static void	http_write_cb(struct bufferevent *, void *);
static void	http_event_cb(struct bufferevent *, short, void *);
static void	http_timer_cb(evutil_socket_t, short, void *);
static void	http_input(struct http_conn *);
static void	http_reply_text(struct http_conn *, int, const char *, int,
		    const char *);

/* The index of a status in http_statuses. */
static size_t
http_status(int code)
{
	size_t	i;

	for (i = 0; i < HTTP_NSTATUSES; i++) {
		if (http_statuses[i].code == code)
			return (i);
	}
	abort();	/* an answer missing from the table */
}

/* Copy a peer's text for a log line: printable ASCII, at most 100. */
static const char *
http_printable(const char *s, char *out, size_t outlen)
{
	size_t	i;

	if (s == NULL)
		return ("(none)");
	for (i = 0; s[i] != '\0' && i + 1 < outlen && i < 100; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
	return (out);
}

/*
 * A connection arrived on a ws:// or wss:// listener: make its
 * bufferevent (a TLS one for wss) and wait for a request. Over
 * max_clients (sessions and web connections together) or
 * max_clients_per_ip, it gets a 503.
 */
void
http_accept(struct listener *l, int fd, struct sockaddr *sa,
    socklen_t salen)
{
	struct server		*srv = l->srv;
	struct http_conn	*hc;
	struct timeval		 now;
	SSL			*ssl;
	int			 full;

	hc = ac_xcalloc(1, sizeof *hc);
	hc->srv = srv;
	session_format_peer(sa, hc->peer, sizeof hc->peer);
	if ((size_t)salen <= sizeof hc->ss)
		memcpy(&hc->ss, sa, salen);
	if (l->loopback)
		hc->flags |= HTTP_LOOPBACK;
	if (l->type == AC_LISTEN_WSS) {
		if ((ssl = SSL_new(srv->cfg->tls_ctx)) == NULL) {
			log_warnx("cannot make a TLS session: closing %s",
			    hc->peer);
			ERR_clear_error();
			evutil_closesocket(fd);
			free(hc);
			return;
		}
		/* On failure libevent has freed ssl and closed fd. */
		hc->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (hc->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(hc->bev,
			    1);
		hc->flags |= HTTP_TLS;
	} else {
		hc->bev = bufferevent_socket_new(srv->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		if (hc->bev == NULL)
			evutil_closesocket(fd);
	}
	if (hc->bev == NULL) {
		log_warnx("cannot make a bufferevent: closing %s", hc->peer);
		free(hc);
		return;
	}
	if (srv->nhttp == 0)
		TAILQ_INIT(&srv->http);
	TAILQ_INSERT_TAIL(&srv->http, hc, entry);
	srv->nhttp++;
	hc->timer = evtimer_new(srv->base, http_timer_cb, hc);
	evtimer_add(hc->timer, srv->handshake_tv);
	bufferevent_setcb(hc->bev, http_read_cb, http_write_cb, http_event_cb,
	    hc);
	bufferevent_setwatermark(hc->bev, EV_READ, 0, HTTP_MAX_HEAD);
	bufferevent_enable(hc->bev, EV_READ|EV_WRITE);

	full = srv->nhttp > srv->cfg->max_clients;
	if (!full && iplimit_acquire(&srv->http_iplimit, sa,
	    srv->cfg->max_clients_per_ip, &hc->ip) == -1) {
		event_base_gettimeofday_cached(srv->base, &now);
		iplimit_log_refusal(hc->ip, hc->peer,
		    srv->cfg->max_clients_per_ip, &now);
		hc->ip = NULL;
		full = 1;
	}
	if (full) {
		hc->flags |= HTTP_CLOSE;
		http_reply_text(hc, 503, NULL, 0, "too many web connections");
	}
}

/* Write the Date header's value for now. */
static void
http_date(struct server *srv, char *buf, size_t len)
{
	struct timeval	now;
	struct tm	tm;
	time_t		t;

	event_base_gettimeofday_cached(srv->base, &now);
	t = now.tv_sec;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* A response body is written: drop its reference to the files. */
static void
http_body_cleanup_cb(const void *data, size_t len, void *arg)
{
	webroot_unref(arg);
}

/*
 * Queue an answer: the status line, the headers (extra, if not NULL, is
 * more of them, each ending in CRLF) and, unless head_only, the body: a
 * file of web (by reference, f not NULL) or len bytes of text. Then stop
 * reading until it is written (http_write_cb).
 */
static void
http_reply(struct http_conn *hc, int code, const char *type,
    const char *cache, const char *extra, const struct webroot_file *f,
    struct webroot *web, const char *text, size_t len, int head_only)
{
	struct server	*srv = hc->srv;
	struct evbuffer	*out = bufferevent_get_output(hc->bev);
	size_t		 i = http_status(code);
	char		 date[64];

	if (f != NULL)
		len = f->len;
	http_date(srv, date, sizeof date);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n"
	    "Server: asyncchatd\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: %s\r\n%s%s%s%s", code, http_statuses[i].reason,
	    date, type, len, cache, f != NULL ? "ETag: " : "",
	    f != NULL ? f->etag : "", f != NULL ? "\r\n" : "",
	    extra != NULL ? extra : "");
	evbuffer_add_printf(out, "%sConnection: %s\r\n\r\n",
	    HTTP_SECURITY_HEADERS, (hc->flags & HTTP_CLOSE) ? "close" :
	    "keep-alive");
	if (!head_only && f != NULL && f->len != 0) {
		if (evbuffer_add_reference(out, f->data, f->len,
		    http_body_cleanup_cb, webroot_ref(web)) == -1)
			webroot_unref(web);
	} else if (!head_only && text != NULL)
		evbuffer_add(out, text, len);
	http_counts[i]++;
	hc->flags |= HTTP_BUSY;
	bufferevent_disable(hc->bev, EV_READ);
}

/*
 * Answer with a status and a short text body of its own words and, if
 * why is not NULL, what was wrong (logged at debug level too); answers
 * other than 404 (a browser asks for what it likes) end the connection.
 */
static void
http_reply_text(struct http_conn *hc, int code, const char *extra,
    int head_only, const char *why)
{
	char	text[256];

	if (code != 404)
		hc->flags |= HTTP_CLOSE;
	snprintf(text, sizeof text, "%d %s%s%s\n", code,
	    http_statuses[http_status(code)].reason, why != NULL ? ": " : "",
	    why != NULL ? why : "");
	if (why != NULL)
		log_debug("http: %d, %s peer=%s", code, why, hc->peer);
	http_reply(hc, code, "text/plain; charset=utf-8", "no-store", extra,
	    NULL, NULL, text, strlen(text), head_only);
}

/*
 * Close a connection and free it, first reading (never waiting) what the
 * peer sent and we did not read, so that the close is not a reset that
 * destroys our answer in the peer's receive queue.
 */
static void
http_free(struct http_conn *hc)
{
	struct server	*srv = hc->srv;
	char		 buf[4096];
	evutil_socket_t	 fd = bufferevent_getfd(hc->bev);
	size_t		 total = 0;
	ssize_t		 n;

	while (fd != -1 && total < HTTP_DRAIN_MAX &&
	    (n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
		total += n;
	TAILQ_REMOVE(&srv->http, hc, entry);
	srv->nhttp--;
	iplimit_release(&srv->http_iplimit, hc->ip);
	event_free(hc->timer);
	bufferevent_free(hc->bev);
	free(hc);
}

/* Close every web connection that has not upgraded (shutdown). */
void
http_close_all(struct server *srv)
{
	struct http_conn	*hc;

	if (srv->nhttp == 0)
		return;
	while ((hc = TAILQ_FIRST(&srv->http)) != NULL)
		http_free(hc);
}

/* The peer took too long to send a request or read its answer. */
static void
http_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*hc = arg;

	log_debug("http: %s after handshake_timeout peer=%s",
	    (hc->flags & HTTP_BUSY) ? "answer unread" : "no request",
	    hc->peer);
	http_free(hc);
}

/* End of file, an error, or (TLS) the end of the handshake. */
static void
http_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn	*hc = arg;
	int			 err = EVUTIL_SOCKET_ERROR();
	char			 why[512];

	if (what & BEV_EVENT_CONNECTED) {
		hc->flags |= HTTP_TLS_UP;
		return;
	}
	if ((what & BEV_EVENT_ERROR) && (hc->flags & HTTP_TLS) &&
	    tls_bev_failure(bev, hc->flags & HTTP_TLS_UP, err, why,
	    sizeof why))
		log_info("http: TLS %s failed: %s peer=%s",
		    (hc->flags & HTTP_TLS_UP) ? "connection" : "handshake",
		    why, hc->peer);
	http_free(hc);
}

/* Input arrived: parse a request unless an answer is being written. */
static void
http_read_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn	*hc = arg;

	if (!(hc->flags & HTTP_BUSY))
		http_input(hc);
}

/*
 * An answer is written: close, or wait for the next request, which may
 * already be here, with the whole handshake_timeout again.
 */
static void
http_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn	*hc = arg;

	if (!(hc->flags & HTTP_BUSY) ||
	    evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (hc->flags & HTTP_CLOSE) {
		http_free(hc);
		return;
	}
	hc->flags &= ~HTTP_BUSY;
	evtimer_add(hc->timer, hc->srv->handshake_tv);
	bufferevent_enable(bev, EV_READ);
	http_input(hc);
}

/* Refuse a request: keep what is wrong in *why; the status to answer. */
static int
http_refuse(const char **why, int code, const char *text)
{
	*why = text;
	return (code);
}

/* Non-zero if c may be in a token (RFC 9110 5.6.2). */
static int
http_tchar(int c)
{
	return (isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) !=
	    NULL));
}

/* Non-zero if the comma-separated list value holds token, without case. */
static int
http_has_token(const char *value, const char *token)
{
	size_t	len = strlen(token), n;

	while (*value != '\0') {
		value += strspn(value, ", \t");
		n = strcspn(value, ", \t");
		if (n == len && strncasecmp(value, token, len) == 0)
			return (1);
		value += n;
	}
	return (0);
}

/*
 * Parse the request line of a head (NUL-terminated, lines ending in LF
 * or CRLF, the empty line included). Returns 0, or the status to answer.
 */
static int
http_parse_line(char *line, struct http_request *req)
{
	char	*sp, *version;

	if (strlen(line) > HTTP_MAX_LINE)
		return (http_refuse(&req->why, 414, "the request line is over "
		    "4096 bytes"));
	req->method = line;
	if ((sp = strchr(line, ' ')) == NULL || sp == line)
		return (http_refuse(&req->why, 400, "not a request line"));
	*sp = '\0';
	for (; line < sp; line++) {
		if (!http_tchar((unsigned char)*line))
			return (http_refuse(&req->why, 400, "a bad method"));
	}
	req->target = sp + 1;
	if ((sp = strchr(req->target, ' ')) == NULL || sp == req->target)
		return (http_refuse(&req->why, 400, "not a request line"));
	*sp = '\0';
	for (line = req->target; *line != '\0'; line++) {
		/* Visible ASCII only: a browser escapes the rest. */
		if ((unsigned char)*line <= 0x20 ||
		    (unsigned char)*line >= 0x7f)
			return (http_refuse(&req->why, 400, "a byte in the "
			    "target that is not visible ASCII"));
	}
	version = sp + 1;
	if (strncmp(version, "HTTP/", 5) != 0 ||
	    !isdigit((unsigned char)version[5]) || version[6] != '.' ||
	    !isdigit((unsigned char)version[7]) || version[8] != '\0')
		return (http_refuse(&req->why, 400, "not HTTP/1.x"));
	if (version[5] != '1')
		return (http_refuse(&req->why, 505, "HTTP/1.x only"));
	req->minor = version[7] - '0';
	return (0);
}

/* Keep one header of the request if it is one we use; 0 or a status. */
static int
http_parse_header(char *name, char *value, struct http_request *req)
{
	char	**slot = NULL;

	if (strcasecmp(name, "Host") == 0)
		slot = &req->host;
	else if (strcasecmp(name, "Origin") == 0)
		slot = &req->origin;
	else if (strcasecmp(name, "Upgrade") == 0)
		slot = &req->upgrade;
	else if (strcasecmp(name, "Sec-WebSocket-Key") == 0)
		slot = &req->ws_key;
	else if (strcasecmp(name, "Sec-WebSocket-Version") == 0)
		slot = &req->ws_version;
	else if (strcasecmp(name, "If-None-Match") == 0)
		slot = &req->if_none_match;
	else if (strcasecmp(name, "Connection") == 0) {
		if (http_has_token(value, "close"))
			req->conn_close = 1;
		if (http_has_token(value, "upgrade"))
			req->conn_upgrade = 1;
	} else if (strcasecmp(name, "Content-Length") == 0) {
		if (*value == '\0' || strspn(value, "0123456789") !=
		    strlen(value))
			return (http_refuse(&req->why, 400, "a bad "
			    "Content-Length"));
		if (strspn(value, "0") != strlen(value))
			req->body = 1;
	} else if (strcasecmp(name, "Transfer-Encoding") == 0)
		req->body = 1;
	if (slot != NULL) {
		/* One of each: two Hosts or two keys are not a request. */
		if (*slot != NULL)
			return (http_refuse(&req->why, 400, "a header given "
			    "twice"));
		*slot = value;
	}
	return (0);
}

/*
 * Parse a whole request head into req (pointers into head, which is
 * changed). Returns 0, or the status to answer a bad one with.
 */
static int
http_parse(char *head, struct http_request *req)
{
	char	*line, *next, *colon, *value, *end, *p;
	int	 r, nheaders = 0;

	memset(req, 0, sizeof *req);
	line = head;
	next = strchr(line, '\n');
	*next++ = '\0';
	if (next - line >= 2 && next[-2] == '\r')
		next[-2] = '\0';
	if ((r = http_parse_line(line, req)) != 0)
		return (r);
	for (line = next; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		if (next - line >= 2 && next[-2] == '\r')
			next[-2] = '\0';
		if (*line == '\0')
			break;		/* the end of the head */
		if (++nheaders > HTTP_MAX_HEADERS)
			return (http_refuse(&req->why, 431, "more than 64 "
			    "header lines"));
		/* A folded line, or a name with spaces, is refused. */
		if ((colon = strchr(line, ':')) == NULL || colon == line)
			return (http_refuse(&req->why, 400, "a header line "
			    "without a name and a colon"));
		for (p = line; p < colon; p++) {
			if (!http_tchar((unsigned char)*p))
				return (http_refuse(&req->why, 400, "a bad "
				    "header name"));
		}
		*colon = '\0';
		value = colon + 1;
		value += strspn(value, " \t");
		end = value + strlen(value);
		while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		for (p = value; p < end; p++) {
			if (((unsigned char)*p < 0x20 && *p != '\t') ||
			    *p == 0x7f)
				return (http_refuse(&req->why, 400, "a control "
				    "character in a header"));
		}
		if ((r = http_parse_header(line, value, req)) != 0)
			return (r);
	}
	if (req->minor >= 1 && req->host == NULL)
		return (http_refuse(&req->why, 400, "no Host"));
	if (req->body)
		return (http_refuse(&req->why, 413, "a request body (none is "
		    "taken)"));
	return (0);
}

/* The value of a hex digit, or -1. */
static int
http_hex(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

/*
 * Turn a request path ("/js/ui.js", before any '?') of len bytes into
 * the name of a file under web_root ("js/ui.js"; "index.html" for a
 * directory). Percent-escapes are decoded once. Returns 0, or 400 for a
 * path that is not one: a bad escape, an encoded NUL or slash, or a "."
 * or ".." segment (nothing is ever looked for above web_root, but a
 * request for it is not an honest one).
 */
static int
http_path(const char *path, size_t len, char *name, size_t namelen,
    const char **why)
{
	size_t	i, n = 0, seg = 0;
	int	hi, lo, c;

	if (len == 0 || path[0] != '/')
		return (http_refuse(why, 400, "not a path"));
	for (i = 1; i < len; i++) {
		c = (unsigned char)path[i];
		if (c == '%') {
			if (i + 2 >= len ||
			    (hi = http_hex(path[i + 1])) == -1 ||
			    (lo = http_hex(path[i + 2])) == -1)
				return (http_refuse(why, 400, "a bad "
				    "%-escape in the path"));
			c = hi * 16 + lo;
			i += 2;
			if (c == '\0' || c == '/')
				return (http_refuse(why, 400, "an encoded "
				    "NUL or / in the path"));
		} else if (c == '/') {
			if ((n - seg == 1 && name[seg] == '.') ||
			    (n - seg == 2 && name[seg] == '.' &&
			    name[seg + 1] == '.'))
				return (http_refuse(why, 400, "a . or .. "
				    "segment in the path"));
		}
		if (n + 1 >= namelen)
			return (http_refuse(why, 414, "the path is too "
			    "long"));
		name[n++] = c;
		if (c == '/' && path[i] == '/')
			seg = n;
	}
	if ((n - seg == 1 && name[seg] == '.') ||
	    (n - seg == 2 && name[seg] == '.' && name[seg + 1] == '.'))
		return (http_refuse(why, 400, "a . or .. segment in the path"));
	name[n] = '\0';
	if (n == 0 || name[n - 1] == '/') {
		if (n + sizeof "index.html" > namelen)
			return (http_refuse(why, 414, "the path is too long"));
		memcpy(name + n, "index.html", sizeof "index.html");
	}
	return (0);
}

/* Non-zero if an If-None-Match value names etag (or is "*"). */
static int
http_etag_matches(const char *value, const char *etag)
{
	size_t	len = strlen(etag), n;

	while (*value != '\0') {
		value += strspn(value, ", \t");
		n = strcspn(value, ", \t");
		if ((n == 1 && *value == '*') ||
		    (n == len && memcmp(value, etag, len) == 0) ||
		    (n == len + 2 && strncmp(value, "W/", 2) == 0 &&
		    memcmp(value + 2, etag, len) == 0))
			return (1);
		value += n;
	}
	return (0);
}

/* Answer GET or HEAD for a file of web_root. */
static void
http_static(struct http_conn *hc, struct http_request *req, size_t pathlen)
{
	struct webroot			*web = hc->srv->cfg->web;
	const struct webroot_file	*f;
	const char			*why;
	char				 name[HTTP_MAX_LINE + 16];
	int				 head, r;

	head = strcmp(req->method, "HEAD") == 0;
	if (!head && strcmp(req->method, "GET") != 0) {
		http_reply_text(hc, 405, "Allow: GET, HEAD\r\n", 0,
		    "GET and HEAD only");
		return;
	}
	if ((r = http_path(req->target, pathlen, name, sizeof name,
	    &why)) != 0) {
		http_reply_text(hc, r, NULL, head, why);
		return;
	}
	if ((f = webroot_find(web, name)) == NULL) {
		http_reply_text(hc, 404, NULL, head, NULL);
		return;
	}
	if (req->if_none_match != NULL &&
	    http_etag_matches(req->if_none_match, f->etag)) {
		http_reply(hc, 304, f->type, "no-cache", NULL, f, web, NULL, 0,
		    1);
		return;
	}
	http_reply(hc, 200, f->type, "no-cache", NULL, f, web, NULL, 0, head);
}

/*
 * Non-zero if key is a Sec-WebSocket-Key: 16 bytes in base64, which is
 * 22 characters of its alphabet and "==" (RFC 6455 4.1).
 */
static int
http_ws_key_ok(const char *key)
{
	size_t	i;

	if (strlen(key) != 24 || strcmp(key + 22, "==") != 0)
		return (0);
	for (i = 0; i < 22; i++) {
		if (!isalnum((unsigned char)key[i]) && key[i] != '+' &&
		    key[i] != '/')
			return (0);
	}
	return (1);
}

/* Log an origin web_origins refuses, at most a line every
 * HTTP_LOG_SECONDS with how many it stands for. */
static void
http_log_origin(struct http_conn *hc, const char *origin)
{
	struct timeval	now;
	char		o[128];

	event_base_gettimeofday_cached(hc->srv->base, &now);
	if (http_origin_logged.tv_sec != 0 &&
	    now.tv_sec - http_origin_logged.tv_sec < HTTP_LOG_SECONDS) {
		http_origin_unlogged++;
		return;
	}
	log_info("http: refusing a WebSocket from origin %s (web_origins; "
	    "%u more since the last line) peer=%s",
	    http_printable(origin, o, sizeof o), http_origin_unlogged,
	    hc->peer);
	http_origin_logged = now;
	http_origin_unlogged = 0;
}

/*
 * Answer the upgrade with 101 and give the bufferevent to a new
 * WebSocket session (ws.c); this connection is then gone.
 */
static void
http_upgrade(struct http_conn *hc, const char *key)
{
	struct server	*srv = hc->srv;
	struct conn	*c;
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen;
	char		 buf[64], accept[64];
	int		 tls = (hc->flags & HTTP_TLS) != 0;

	snprintf(buf, sizeof buf, "%s%s", key, HTTP_WS_GUID);
	if (EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    (c = ws_conn_new(srv, hc->bev, tls)) == NULL) {
		ERR_clear_error();
		http_reply_text(hc, 500, NULL, 0, "cannot start a WebSocket");
		return;
	}
	EVP_EncodeBlock((unsigned char *)accept, md, mdlen);
	evbuffer_add_printf(bufferevent_get_output(hc->bev),
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
	http_counts[http_status(101)]++;

	/*
	 * The session counts toward the limits from now on instead:
	 * session_open() refuses it, with the protocol's error frame, past
	 * max_clients or max_clients_per_ip.
	 */
	TAILQ_REMOVE(&srv->http, hc, entry);
	srv->nhttp--;
	iplimit_release(&srv->http_iplimit, hc->ip);
	event_free(hc->timer);
	session_open(srv, c, (struct sockaddr *)&hc->ss, tls ? "wss" : "ws",
	    hc->peer);
	free(hc);
}

/* Answer GET /ws: the checks of RFC 6455 4.2.1, web_origins, upgrade. */
static void
http_websocket(struct http_conn *hc, struct http_request *req)
{
	struct server	*srv = hc->srv;

	if (strcmp(req->method, "GET") != 0) {
		http_reply_text(hc, 405, "Allow: GET\r\n", 0, "/ws takes GET "
		    "only");
		return;
	}
	if (req->minor < 1 || req->upgrade == NULL ||
	    !http_has_token(req->upgrade, "websocket") || !req->conn_upgrade ||
	    req->ws_key == NULL || !http_ws_key_ok(req->ws_key)) {
		http_reply_text(hc, 400, NULL, 0, "not a WebSocket upgrade "
		    "(HTTP/1.1, Upgrade: websocket, Connection: upgrade, a "
		    "16-byte Sec-WebSocket-Key)");
		return;
	}
	if (req->ws_version == NULL || strcmp(req->ws_version, "13") != 0) {
		http_reply_text(hc, 426, "Sec-WebSocket-Version: 13\r\n", 0,
		    "WebSocket version 13 only");
		return;
	}
	if (!origin_allowed(srv->cfg->web_origins, req->origin,
	    (hc->flags & HTTP_TLS) != 0, req->host,
	    (hc->flags & HTTP_LOOPBACK) != 0)) {
		http_log_origin(hc, req->origin);
		http_reply_text(hc, 403, NULL, 0, "this page's origin may not "
		    "open a session (web_origins)");
		return;
	}
	http_upgrade(hc, req->ws_key);
}

/*
 * Find a whole request head at the start of the input and answer it; a
 * head that outgrows its bounds is answered 414 or 431 at once.
 */
static void
http_input(struct http_conn *hc)
{
	struct evbuffer		*in = bufferevent_get_input(hc->bev);
	struct http_request	 req;
	char			 head[HTTP_MAX_HEAD + 1], m[24], tg[128];
	const unsigned char	*p, *nl;
	size_t			 len, n, i, end = 0, pathlen;
	int			 code;

	/* Empty lines before a request are allowed (RFC 9112 2.2). */
	while ((len = evbuffer_get_length(in)) != 0) {
		p = evbuffer_pullup(in, 1);
		if (*p != '\r' && *p != '\n')
			break;
		evbuffer_drain(in, 1);
	}
	if (len == 0)
		return;
	n = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	p = evbuffer_pullup(in, n);
	for (i = 0; i < n && end == 0; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			end = i + 2;
		else if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			end = i + 3;
	}
	if (end == 0) {
		nl = memchr(p, '\n', n);
		if ((nl == NULL && n > HTTP_MAX_LINE) ||
		    (nl != NULL && (size_t)(nl - p) > HTTP_MAX_LINE))
			http_reply_text(hc, 414, NULL, 0, "the request line "
			    "is over 4096 bytes");
		else if (n >= HTTP_MAX_HEAD)
			http_reply_text(hc, 431, NULL, 0, "the request head "
			    "is over 8192 bytes");
		return;		/* wait for the rest */
	}
	if (memchr(p, '\0', end) != NULL) {
		http_reply_text(hc, 400, NULL, 0, "a NUL byte in the request");
		return;
	}
	memcpy(head, p, end);
	head[end] = '\0';
	evbuffer_drain(in, end);

	evtimer_del(hc->timer);	/* re-armed when the answer is written */
	evtimer_add(hc->timer, hc->srv->handshake_tv);
	if (++hc->requests >= HTTP_MAX_REQUESTS)
		hc->flags |= HTTP_CLOSE;
	if ((code = http_parse(head, &req)) != 0) {
		http_reply_text(hc, code, NULL, 0, req.why);
		return;
	}
	if (req.conn_close || req.minor == 0)
		hc->flags |= HTTP_CLOSE;
	log_debug("http: %s %s peer=%s", http_printable(req.method, m,
	    sizeof m), http_printable(req.target, tg, sizeof tg), hc->peer);
	if (req.target[0] != '/') {
		/* Absolute form (a proxy's) or "*": not served. */
		http_reply_text(hc, 400, NULL, 0, "the target is not a path");
		return;
	}
	pathlen = strcspn(req.target, "?#");
	if (req.target[pathlen] == '#') {
		http_reply_text(hc, 400, NULL, 0, "a fragment in the target");
		return;
	}
	if (pathlen == strlen(HTTP_WS_PATH) &&
	    memcmp(req.target, HTTP_WS_PATH, pathlen) == 0)
		http_websocket(hc, &req);
	else
		http_static(hc, &req, pathlen);
}

/* The HTTP side's metrics: connections waiting, answers by status. */
void
http_metrics_write(struct server *srv, struct evbuffer *b)
{
	size_t	i;

	evbuffer_add_printf(b, "# HELP asyncchat_http_connections Web "
	    "connections (ws:// and wss:// listeners) not upgraded to a "
	    "session.\n# TYPE asyncchat_http_connections gauge\n"
	    "asyncchat_http_connections %u\n", srv->nhttp);
	evbuffer_add_printf(b, "# HELP asyncchat_http_responses_total HTTP "
	    "answers of the ws:// and wss:// listeners, by status (101: "
	    "WebSocket upgrades).\n# TYPE asyncchat_http_responses_total "
	    "counter\n");
	for (i = 0; i < HTTP_NSTATUSES; i++)
		evbuffer_add_printf(b, "asyncchat_http_responses_total"
		    "{code=\"%d\"} %llu\n", http_statuses[i].code,
		    (unsigned long long)http_counts[i]);
}
