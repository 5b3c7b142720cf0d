/*
 * metrics.c - the Prometheus endpoint: `metrics_listen = ADDR:PORT` serves
 * GET /metrics in the text exposition format (version 0.0.4) through
 * libevent's evhttp on the server's own event_base.
 *
 * A scrape only reads the counters of struct ac_stats and of each plugin
 * and formats them into an evbuffer, which evhttp then writes without
 * blocking; it costs some microseconds and touches no session.
 */
#include "config.h"

#include <sys/types.h>
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
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define METRICS_PATH		"/metrics"
#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define METRICS_BACKLOG		16
#define METRICS_TIMEOUT		10	/* seconds for a request to arrive */
#define METRICS_MAX_HEADERS	8192
#define METRICS_MAX_BODY	1024

/* One open endpoint. */
struct metrics {
	struct server	*srv;
	char		*listen;	/* as configured: identity on reload */
	char		*url;		/* http://ADDR:PORT/metrics, bound */
	struct evhttp	*http;
};

static void	metrics_request_cb(struct evhttp_request *, void *);

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
	    "unsent output (what max_memory bounds).", session_memory(srv));
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
}

/* A request: GET /metrics is answered, anything else is an error. */
static void
metrics_request_cb(struct evhttp_request *req, void *arg)
{
	struct metrics		*m = arg;
	const struct evhttp_uri	*uri;
	const char		*path = NULL;
	struct evkeyvalq	*headers;
	struct evbuffer		*b;

	uri = evhttp_request_get_evhttp_uri(req);
	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	headers = evhttp_request_get_output_headers(req);
	if (path == NULL || strcmp(path, METRICS_PATH) != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(headers, "Allow", "GET");
		evhttp_send_error(req, HTTP_BADMETHOD, NULL);
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	metrics_write(m->srv, b);
	evhttp_add_header(headers, "Content-Type", METRICS_CONTENT_TYPE);
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

/*
 * Fill ss from "A.B.C.D:PORT" or "[IPV6]:PORT" (port 0 allowed, which
 * evutil_parse_sockaddr_port refuses); 0, or -1 if it does not parse.
 */
static int
metrics_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[INET6_ADDRSTRLEN];
	const char		*colon, *close;
	unsigned long		 port;
	char			*end;
	size_t			 hlen;

	memset(ss, 0, sizeof *ss);
	if (*addr == '[') {
		if ((close = strchr(addr, ']')) == NULL || close[1] != ':')
			return (-1);
		hlen = close - addr - 1;
		colon = close + 1;
		if (hlen >= sizeof host)
			return (-1);
		memcpy(host, addr + 1, hlen);
	} else {
		if ((colon = strrchr(addr, ':')) == NULL)
			return (-1);
		hlen = colon - addr;
		if (hlen >= sizeof host)
			return (-1);
		memcpy(host, addr, hlen);
	}
	host[hlen] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535)
		return (-1);
	if (*addr == '[') {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return (-1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof *sin6;
	} else {
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return (-1);
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof *sin;
	}
	return (0);
}

/*
 * Make a listening socket for addr ("127.0.0.1:9100", "[::1]:0") and
 * return it with the URL it answers on; -1 with *cause. The address is
 * numeric (config.c refuses names), so nothing here can block.
 */
static int
metrics_socket(const char *addr, evutil_socket_t *fdp, char **url,
    char **cause)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sslen, len;
	char			 host[INET6_ADDRSTRLEN];
	int			 on = 1, fd;

	if (metrics_parse(addr, &ss, &len) == -1) {
		ac_xasprintf(cause, "metrics_listen %s: not ADDRESS:PORT",
		    addr);
		return (-1);
	}
	fd = socket(ss.ss_family, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
	if (fd == -1) {
		ac_xasprintf(cause, "metrics_listen %s: socket: %s", addr,
		    strerror(errno));
		return (-1);
	}
	if (evutil_make_listen_socket_reuseable(fd) == -1 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof on) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
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
metrics_open(struct server *srv, const char *addr, struct metrics **mp,
    char **cause)
{
	struct metrics	*m;
	evutil_socket_t	 fd;
	char		*url;

	*mp = NULL;
	if (metrics_socket(addr, &fd, &url, cause) == -1)
		return (-1);
	m = ac_xcalloc(1, sizeof *m);
	m->srv = srv;
	m->listen = ac_xstrdup(addr);
	m->url = url;
	if ((m->http = evhttp_new(srv->base)) == NULL) {
		ac_xasprintf(cause, "metrics_listen %s: cannot make an HTTP "
		    "server", addr);
		close(fd);
		metrics_free(m);
		return (-1);
	}
	/* Our callback answers every method, so that it can say 405. */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET|EVHTTP_REQ_POST|
	    EVHTTP_REQ_HEAD|EVHTTP_REQ_PUT|EVHTTP_REQ_DELETE|
	    EVHTTP_REQ_OPTIONS|EVHTTP_REQ_TRACE|EVHTTP_REQ_CONNECT|
	    EVHTTP_REQ_PATCH);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
	evhttp_set_gencb(m->http, metrics_request_cb, m);
	if (evhttp_accept_socket_with_handle(m->http, fd) == NULL) {
		ac_xasprintf(cause, "metrics_listen %s: cannot accept on the "
		    "socket", addr);
		close(fd);
		metrics_free(m);
		return (-1);
	}
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
	if (m == NULL)
		return;
	if (m->http != NULL)
		evhttp_free(m->http);
	free(m->listen);
	free(m->url);
	free(m);
}
