/*
 * metrics.c - the Prometheus endpoint: `metrics_listen = ADDR:PORT` serves
 * GET /metrics in the text exposition format (version 0.0.4) on the
 * server's own event_base.
 *
 * A scrape only reads the counters of struct ac_stats and of each plugin
 * and formats them into an evbuffer, which is then written without
 * blocking; it costs some microseconds and touches no session.
 *
 * The HTTP side is a few lines of our own rather than libevent's evhttp,
 * because the endpoint must hold up when the server is short of
 * descriptors or under a connection flood, and evhttp (2.1) can do
 * neither: it has no bound on its connections, and its listener retries
 * a failing accept() in a busy loop that logs every failure. Here the
 * listener rests for a second after EMFILE like the chat listeners, at
 * most AC_METRICS_MAX_CONNS connections are open at once (the next ones
 * are closed at once, and said so in the log at most every
 * METRICS_LOG_SECONDS), each must send its request within
 * METRICS_TIMEOUT seconds, and each gets one answer and is closed.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define METRICS_PATH		"/metrics"
#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define METRICS_BACKLOG		16
#define METRICS_TIMEOUT		10	/* seconds for a request to arrive */
#define METRICS_MAX_HEADERS	8192
#define METRICS_LOG_SECONDS	5
#define METRICS_DRAIN_MAX	65536

/* One HTTP connection. */
struct metrics_conn {
	struct metrics			*m;
	struct bufferevent		*bev;
	TAILQ_ENTRY(metrics_conn)	 entry;
};
TAILQ_HEAD(metrics_conns, metrics_conn);

/* One open endpoint. */
struct metrics {
	struct server		*srv;
	char			*listen;	/* as configured: identity on
						   reload */
	char			*url;		/* http://ADDR:PORT/metrics,
						   bound */
	struct evconnlistener	*evl;
	struct event		*retry;		/* after EMFILE and the like */
	struct metrics_conns	 conns;
	unsigned int		 nconns;
	struct timeval		 refused_logged;
	unsigned int		 refused_unlogged;
};

static void	metrics_accept_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	metrics_error_cb(struct evconnlistener *, void *);
static void	metrics_retry_cb(evutil_socket_t, short, void *);
static void	metrics_read_cb(struct bufferevent *, void *);
static void	metrics_write_cb(struct bufferevent *, void *);
static void	metrics_event_cb(struct bufferevent *, short, void *);

/* Write the HELP and TYPE lines of a family. */
static void
metrics_family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/*
 * Write one sample, with one label if label is not NULL. Label values are
 * our own tokens or plugin names (letters, digits, - and _, checked by
 * config.c), so none needs escaping.
 */
static void
metrics_sample(struct evbuffer *b, const char *name, const char *label,
    const char *value, uint64_t v)
{
	if (label != NULL)
		evbuffer_add_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", name,
		    label, value, v);
	else
		evbuffer_add_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* A family with a single unlabelled sample. */
static void
metrics_single(struct evbuffer *b, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_family(b, name, type, help);
	metrics_sample(b, name, NULL, NULL, v);
}

/* Write the samples of a histogram (cumulative buckets, sum, count). */
static void
metrics_histogram(struct evbuffer *b, const char *name, const char *plugin,
    const struct ac_histogram *h)
{
	char		 lead[128];
	uint64_t	 cum = 0;
	unsigned int	 i;

	if (plugin != NULL)
		snprintf(lead, sizeof lead, "plugin=\"%s\",", plugin);
	else
		lead[0] = '\0';
	for (i = 0; i < AC_HIST_BUCKETS; i++) {
		cum += h->buckets[i];
		evbuffer_add_printf(b, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n",
		    name, lead, stats_hist_le(i), cum);
	}
	evbuffer_add_printf(b, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name,
	    lead, h->count);
	if (plugin != NULL)
		snprintf(lead, sizeof lead, "{plugin=\"%s\"}", plugin);
	evbuffer_add_printf(b, "%s_sum%s %" PRIu64 ".%09" PRIu64 "\n", name,
	    lead, h->nsec / 1000000000, h->nsec % 1000000000);
	evbuffer_add_printf(b, "%s_count%s %" PRIu64 "\n", name, lead,
	    h->count);
}

/*
 * The sessions open now by transport, counted over the registry when
 * scraped (a few microseconds for thousands of sessions) rather than
 * kept up to date on every open and close.
 */
static void
metrics_transports(struct server *srv, struct evbuffer *b)
{
	static const char	*names[] = { "tcp", "unix", "tls", "ws",
				    "wss" };
	uint64_t		 n[sizeof names / sizeof names[0]];
	struct ac_session	*s;
	size_t			 i;

	memset(n, 0, sizeof n);
	TAILQ_FOREACH(s, &srv->reg.list, entry) {
		for (i = 0; i < sizeof names / sizeof names[0]; i++) {
			if (strcmp(s->transport, names[i]) == 0) {
				n[i]++;
				break;
			}
		}
	}
	metrics_family(b, "asyncchat_sessions_open_by_transport", "gauge",
	    "Sessions connected now, by transport.");
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		metrics_sample(b, "asyncchat_sessions_open_by_transport",
		    "transport", names[i], n[i]);
}

/* Format every metric into b. */
static void
metrics_write(struct server *srv, struct evbuffer *b)
{
	const struct ac_stats	*st = &srv->stats;
	struct ac_plugin_stats	*ps;
	unsigned int		 i;
	size_t			 nplugins;

	metrics_single(b, "asyncchat_up", "gauge",
	    "Always 1: the server answers.", 1);
	metrics_family(b, "asyncchat_build_info", "gauge",
	    "Always 1, labelled with the server's version.");
	metrics_sample(b, "asyncchat_build_info", "version", PACKAGE_VERSION,
	    1);
	metrics_single(b, "asyncchat_start_time_seconds", "gauge",
	    "When the server started, in seconds since the Unix epoch.",
	    (uint64_t)st->start_time);

	metrics_single(b, "asyncchat_sessions_open", "gauge",
	    "Sessions connected now, handshaken or not.",
	    st->sessions_current);
	metrics_single(b, "asyncchat_sessions_handshaken", "gauge",
	    "Sessions connected now that have sent session_ack.",
	    st->sessions_acked);
	metrics_single(b, "asyncchat_sessions_total", "counter",
	    "Connections accepted since start (refused ones included).",
	    st->sessions_total);
	metrics_transports(srv, b);

	metrics_family(b, "asyncchat_frames_received_total", "counter",
	    "Valid frames received, by type.");
	for (i = 0; i < AC_MSG_TYPE_COUNT; i++)
		metrics_sample(b, "asyncchat_frames_received_total", "type",
		    ac_msg_type_name(i), st->frames_in[i]);
	metrics_family(b, "asyncchat_frames_sent_total", "counter",
	    "Frames queued for sending, by type.");
	for (i = 0; i < AC_MSG_TYPE_COUNT; i++)
		metrics_sample(b, "asyncchat_frames_sent_total", "type",
		    ac_msg_type_name(i), st->frames_out[i]);
	metrics_single(b, "asyncchat_received_bytes_total", "counter",
	    "Bytes of whole frames received, valid or not.", st->bytes_in);
	metrics_single(b, "asyncchat_sent_bytes_total", "counter",
	    "Bytes of frames queued for sending.", st->bytes_out);

	/* Every PROTOCOL.md check (the statuses after NEED_MORE), then the
	 * session-level errors. */
	metrics_family(b, "asyncchat_frame_errors_total", "counter",
	    "Frames refused, by the error token sent back.");
	for (i = AC_FRAME_NEED_MORE + 1; i < AC_FRAME_STATUS_COUNT; i++)
		metrics_sample(b, "asyncchat_frame_errors_total", "error",
		    ac_frame_status_name(i), st->frame_errors[i]);
	for (i = 0; i < AC_SERR_COUNT; i++)
		metrics_sample(b, "asyncchat_frame_errors_total", "error",
		    stats_error_name(i), st->session_errors[i]);

	metrics_family(b, "asyncchat_disconnects_total", "counter",
	    "Sessions closed, by the reason token the log gives.");
	for (i = 0; i < AC_CLOSE_COUNT; i++)
		metrics_sample(b, "asyncchat_disconnects_total", "reason",
		    stats_reason_name(i), st->closes[i]);

	metrics_single(b, "asyncchat_memory_buffered_bytes", "gauge",
	    "Bytes the sessions hold now: input, frames being received and "
	    "unsent output (what max_memory bounds).", memory_total(srv));
	metrics_single(b, "asyncchat_memory_limit_bytes", "gauge",
	    "max_memory: past 7/8 of it the sessions holding the most are "
	    "closed.", srv->cfg->max_memory);

	metrics_single(b, "asyncchat_reloads_total", "counter",
	    "SIGHUP reloads attempted.", st->reloads);
	metrics_single(b, "asyncchat_reload_failures_total", "counter",
	    "SIGHUP reloads refused (the running configuration was kept).",
	    st->reload_failures);

	nplugins = srv->plugins != NULL ? srv->plugins->n : 0;
	metrics_single(b, "asyncchat_plugins_loaded", "gauge",
	    "Plugins in the running chain.", nplugins);
	metrics_family(b, "asyncchat_plugin_calls_total", "counter",
	    "process_message calls, by plugin (kept by name across reloads).");
	TAILQ_FOREACH(ps, &srv->plugin_stats, entry)
		metrics_sample(b, "asyncchat_plugin_calls_total", "plugin",
		    ps->name, ps->calls);
	metrics_family(b, "asyncchat_plugin_errors_total", "counter",
	    "process_message calls that failed, by plugin (kept by name "
	    "across reloads).");
	TAILQ_FOREACH(ps, &srv->plugin_stats, entry)
		metrics_sample(b, "asyncchat_plugin_errors_total", "plugin",
		    ps->name, ps->errors);
	metrics_family(b, "asyncchat_plugin_seconds", "histogram",
	    "Time of one process_message call, by plugin (kept by name "
	    "across reloads).");
	TAILQ_FOREACH(ps, &srv->plugin_stats, entry)
		metrics_histogram(b, "asyncchat_plugin_seconds", ps->name,
		    &ps->time);
	metrics_family(b, "asyncchat_plugin_chain_seconds", "histogram",
	    "Time of the whole plugin chain for one message or chunk.");
	metrics_histogram(b, "asyncchat_plugin_chain_seconds", NULL,
	    &st->chain);

	/* The worker pool's, then the plugins' own (worker.c,
	 * plugin_metric.c). */
	worker_metrics_write(srv->workers, b);
	http_metrics_write(srv, b);
	plugin_metric_write(srv, b);
}

/* Close a connection and free it. */
static void
metrics_conn_free(struct metrics_conn *c)
{
	struct metrics	*m = c->m;
	char		 buf[4096];
	evutil_socket_t	 fd = bufferevent_getfd(c->bev);
	size_t		 total = 0;
	ssize_t		 n;

	/* Unread input (a request body) would turn the close into a reset
	 * that can destroy the answer in the client's receive queue. */
	while (fd != -1 && total < METRICS_DRAIN_MAX &&
	    (n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
		total += n;
	TAILQ_REMOVE(&m->conns, c, entry);
	m->nconns--;
	bufferevent_free(c->bev);
	free(c);
}

/*
 * Queue an answer, stop reading, and close once it is written. body NULL
 * means a short text body of the status line's own words.
 */
static void
metrics_reply(struct metrics_conn *c, int code, const char *reason,
    const char *content_type, const char *header, struct evbuffer *body)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	char		 text[128];
	size_t		 len;

	if (body == NULL) {
		snprintf(text, sizeof text, "%d %s\n", code, reason);
		len = strlen(text);
		content_type = "text/plain; charset=utf-8";
	} else
		len = evbuffer_get_length(body);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", code,
	    reason, content_type, len, header != NULL ? header : "");
	if (body != NULL)
		evbuffer_add_buffer(out, body);
	else
		evbuffer_add(out, text, len);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setcb(c->bev, NULL, metrics_write_cb, metrics_event_cb, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

/*
 * Answer one request line ("GET /metrics HTTP/1.1"): GET /metrics (with
 * any query) is answered, another path gets 404, another method on it
 * 405; what is not an HTTP/1.x request line gets 400.
 */
static void
metrics_request(struct metrics_conn *c, const char *line)
{
	const char	*target, *end, *query;
	struct evbuffer	*b;
	size_t		 len;

	if ((target = strchr(line, ' ')) == NULL ||
	    (end = strchr(target + 1, ' ')) == NULL ||
	    strncmp(end + 1, "HTTP/1.", 7) != 0) {
		metrics_reply(c, 400, "Bad Request", NULL, NULL, NULL);
		return;
	}
	target++;
	query = memchr(target, '?', end - target);
	len = (query != NULL ? query : end) - target;
	if (len != strlen(METRICS_PATH) ||
	    memcmp(target, METRICS_PATH, len) != 0) {
		metrics_reply(c, 404, "Not Found", NULL, NULL, NULL);
		return;
	}
	if (strncmp(line, "GET ", 4) != 0) {
		metrics_reply(c, 405, "Method Not Allowed", NULL,
		    "Allow: GET\r\n", NULL);
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		metrics_reply(c, 500, "Internal Server Error", NULL, NULL,
		    NULL);
		return;
	}
	metrics_write(c->m->srv, b);
	metrics_reply(c, 200, "OK", METRICS_CONTENT_TYPE, NULL, b);
	evbuffer_free(b);
}

/* Input arrived: answer once the request head is complete. */
static void
metrics_read_cb(struct bufferevent *bev, void *arg)
{
	struct metrics_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 crlf, lf;
	char			*line;

	crlf = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	lf = evbuffer_search(in, "\n\n", 2, NULL);
	if (crlf.pos == -1 && lf.pos == -1) {
		if (evbuffer_get_length(in) >= METRICS_MAX_HEADERS)
			metrics_reply(c, 431, "Request Header Fields Too Large",
			    NULL, NULL, NULL);
		return;
	}
	if ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF)) == NULL) {
		metrics_reply(c, 400, "Bad Request", NULL, NULL, NULL);
		return;
	}
	metrics_request(c, line);
	free(line);
}

/* The answer is written: close. */
static void
metrics_write_cb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		metrics_conn_free(arg);
}

/* End of file, an error or the timeout: close. */
static void
metrics_event_cb(struct bufferevent *bev, short what, void *arg)
{
	metrics_conn_free(arg);
}

/*
 * Log a connection refused for AC_METRICS_MAX_CONNS: at most one line every
 * METRICS_LOG_SECONDS, with the number of refusals it stands for.
 */
static void
metrics_log_refusal(struct metrics *m)
{
	struct timeval	now;

	event_base_gettimeofday_cached(m->srv->base, &now);
	if (m->refused_logged.tv_sec != 0 &&
	    now.tv_sec - m->refused_logged.tv_sec < METRICS_LOG_SECONDS) {
		m->refused_unlogged++;
		return;
	}
	log_warnx("metrics: %u connections open, refusing more (%u refused "
	    "since the last line)", m->nconns, m->refused_unlogged + 1);
	m->refused_logged = now;
	m->refused_unlogged = 0;
}

/* A connection arrived: take it if there is room. */
static void
metrics_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct metrics		*m = arg;
	struct metrics_conn	*c;
	struct timeval		 tv = { METRICS_TIMEOUT, 0 };

	if (m->nconns >= AC_METRICS_MAX_CONNS) {
		metrics_log_refusal(m);
		evutil_closesocket(fd);
		return;
	}
	c = ac_xcalloc(1, sizeof *c);
	c->m = m;
	if ((c->bev = bufferevent_socket_new(m->srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&m->conns, c, entry);
	m->nconns++;
	bufferevent_setcb(c->bev, metrics_read_cb, NULL, metrics_event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, METRICS_MAX_HEADERS);
	bufferevent_enable(c->bev, EV_READ);
}

/*
 * accept() failed. Out of descriptors, the listening socket would stay
 * readable and spin the loop, so it rests for a second (as the chat
 * listeners do, listener.c).
 */
static void
metrics_error_cb(struct evconnlistener *evl, void *arg)
{
	struct metrics	*m = arg;
	int		 err = EVUTIL_SOCKET_ERROR();
	struct timeval	 tv = { 1, 0 };

	log_warnx("accept on %s: %s", m->url,
	    evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		evconnlistener_disable(m->evl);
		evtimer_add(m->retry, &tv);
	}
}

/* Start accepting again after a pause. */
static void
metrics_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metrics	*m = arg;

	evconnlistener_enable(m->evl);
}

/*
 * Make a listening socket for the address metrics_listen gave, parsed by
 * config_key.c ("127.0.0.1:9100", "[::1]:0"), and return it with the URL
 * it answers on; -1 with *cause. The address is numeric (config_key.c
 * refuses names), so nothing here can block.
 */
static int
metrics_socket(const struct config_addr *ca, evutil_socket_t *fdp,
    char **url, char **cause)
{
	struct sockaddr_storage	 ss = ca->ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sslen;
	const char		*addr = ca->text;
	char			 host[INET6_ADDRSTRLEN];
	int			 on = 1, fd;

	fd = socket(ss.ss_family, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
	if (fd == -1) {
		ac_xasprintf(cause, "metrics_listen %s: socket: %s", addr,
		    strerror(errno));
		return (-1);
	}
	if (evutil_make_listen_socket_reuseable(fd) == -1 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof on) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, ca->len) == -1 ||
	    listen(fd, METRICS_BACKLOG) == -1) {
		ac_xasprintf(cause, "metrics_listen %s: %s", addr,
		    strerror(errno));
		close(fd);
		return (-1);
	}

	/* Port 0 asks for a free port: say which one was given. */
	sslen = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1) {
		ac_xasprintf(cause, "metrics_listen %s: getsockname: %s",
		    addr, strerror(errno));
		close(fd);
		return (-1);
	}
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		ac_xasprintf(url, "http://[%s]:%u%s", host,
		    ntohs(sin6->sin6_port), METRICS_PATH);
	} else {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		ac_xasprintf(url, "http://%s:%u%s", host,
		    ntohs(sin->sin_port), METRICS_PATH);
	}
	*fdp = fd;
	return (0);
}

/* Open the endpoint on addr; -1 with *cause. */
int
metrics_open(struct server *srv, const struct config_addr *addr,
    struct metrics **mp, char **cause)
{
	struct metrics	*m;
	evutil_socket_t	 fd;
	char		*url;

	*mp = NULL;
	if (metrics_socket(addr, &fd, &url, cause) == -1)
		return (-1);
	m = ac_xcalloc(1, sizeof *m);
	m->srv = srv;
	m->listen = ac_xstrdup(addr->text);
	m->url = url;
	TAILQ_INIT(&m->conns);
	/* Backlog 0: the socket is already listening. */
	m->evl = evconnlistener_new(srv->base, metrics_accept_cb, m,
	    LEV_OPT_CLOSE_ON_FREE|LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (m->evl == NULL) {
		ac_xasprintf(cause, "metrics_listen %s: cannot accept on the "
		    "socket", addr->text);
		close(fd);
		metrics_free(m);
		return (-1);
	}
	evconnlistener_set_error_cb(m->evl, metrics_error_cb);
	m->retry = evtimer_new(srv->base, metrics_retry_cb, m);
	*mp = m;
	return (0);
}

/* The metrics_listen value the endpoint was opened with. */
const char *
metrics_listen(const struct metrics *m)
{
	return (m->listen);
}

/* The URL the endpoint answers on, with the port actually bound. */
const char *
metrics_url(const struct metrics *m)
{
	return (m->url);
}

/* Close the endpoint and its connections; NULL is allowed. */
void
metrics_free(struct metrics *m)
{
	struct metrics_conn	*c;

	if (m == NULL)
		return;
	while ((c = TAILQ_FIRST(&m->conns)) != NULL)
		metrics_conn_free(c);
	if (m->evl != NULL)
		evconnlistener_free(m->evl);
	if (m->retry != NULL)
		event_free(m->retry);
	free(m->listen);
	free(m->url);
	free(m);
}
