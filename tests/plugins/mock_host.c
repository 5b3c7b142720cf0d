/*
 * mock_host.c - a fake struct ac_host_api that records what plugins ask for.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"

static void	*mock_alloc(size_t);
static char	*mock_strdup(const char *);
static struct mock_call *mock_record(struct mock_host *, enum mock_call_kind);
static void	 mock_log(struct ac_plugin *, enum ac_log_level, const char *,
		    ...) __attribute__((format(printf, 3, 4)));
static struct event_base *mock_event_base(struct ac_plugin *);
static const struct ac_key *mock_key(struct ac_plugin *);
static const char *mock_session_id(const struct ac_session *);
static const char *mock_session_peer(const struct ac_session *);
static const char *mock_session_transport(const struct ac_session *);
static struct ac_session *mock_session_find(struct ac_plugin *, const char *);
static int	 mock_session_foreach(struct ac_plugin *,
		    int (*)(struct ac_session *, void *), void *);
static size_t	 mock_session_count(struct ac_plugin *);
static void	*mock_session_get_data(struct ac_plugin *, struct ac_session *);
static void	 mock_session_set_data(struct ac_plugin *, struct ac_session *,
		    void *, void (*)(void *));
static void	 mock_session_close(struct ac_plugin *, struct ac_session *,
		    const char *);
static int	 mock_send(struct ac_plugin *, struct ac_session *,
		    enum ac_msg_type, const char *, struct json_object *,
		    const void *, size_t);
static int	 mock_relay(struct ac_plugin *, const struct ac_frame *,
		    struct ac_session *);
static int	 mock_relay_all(struct ac_plugin *, const struct ac_frame *,
		    struct ac_session *);
static const uint8_t *mock_frame_bytes(const struct ac_frame *, size_t *);
static const struct ac_limits *mock_limits(struct ac_plugin *);
static int	 mock_relay_list(struct ac_plugin *, const struct ac_frame *,
		    struct ac_session *const *, size_t);
static int	 mock_broadcast_raw(struct ac_plugin *, const void *, size_t,
		    struct ac_session *);
static const char *mock_plugin_name(struct ac_plugin *);
static const struct ac_message *mock_session_ack(struct ac_plugin *,
		    const struct ac_session *);
static const char *mock_session_attr(const struct ac_session *, const char *);
static int	 mock_session_attr_set(struct ac_plugin *, struct ac_session *,
		    const char *, const char *);
static int	 mock_session_attr_foreach(const struct ac_session *,
		    int (*)(const char *, const char *, const char *, void *),
		    void *);
static struct ac_frame *mock_frame_new(struct ac_plugin *, const char *,
		    enum ac_msg_type, const char *, struct json_object *,
		    const void *, size_t);
static struct ac_frame *mock_frame_from_bytes(struct ac_plugin *,
		    const void *, size_t);
static struct ac_frame *mock_frame_ref(struct ac_plugin *,
		    const struct ac_frame *);
static void	 mock_frame_unref(struct ac_plugin *, struct ac_frame *);
static int	 mock_job_submit(struct ac_plugin *, struct ac_session *, int,
		    ac_job_work_fn, ac_job_done_fn, void *);
static struct ac_metric *mock_metric_new(struct ac_plugin *,
		    enum ac_metric_type, const char *, const char *,
		    const double *, size_t);
static void	 mock_metric_add(struct ac_metric *, double);
static void	 mock_metric_set(struct ac_metric *, double);
static void	 mock_metric_observe(struct ac_metric *, double);
static int	 mock_interface_publish(struct ac_plugin *, const char *,
		    unsigned int, const void *);
static const void *mock_interface_get(struct ac_plugin *, const char *,
		    unsigned int, unsigned int *);

/* malloc that aborts the test program on failure. */
static void *
mock_alloc(size_t size)
{
	void	*p;

	if ((p = malloc(size == 0 ? 1 : size)) == NULL) {
		fprintf(stderr, "mock_host: out of memory\n");
		abort();
	}
	return p;
}

/* strdup that aborts on failure and passes NULL through. */
static char *
mock_strdup(const char *s)
{
	char	*copy;

	if (s == NULL)
		return NULL;
	copy = mock_alloc(strlen(s) + 1);
	memcpy(copy, s, strlen(s) + 1);
	return copy;
}

/* Take the next call record; running out means the test is broken. */
static struct mock_call *
mock_record(struct mock_host *h, enum mock_call_kind kind)
{
	struct mock_call	*c;

	if (h->ncalls == MOCK_MAX_CALLS) {
		fprintf(stderr, "mock_host: more than %d host calls\n",
		    MOCK_MAX_CALLS);
		abort();
	}
	c = &h->calls[h->ncalls++];
	memset(c, 0, sizeof *c);
	c->kind = kind;
	return c;
}

/* Record a log line (and show it on stderr, which goes to the test log). */
static void
mock_log(struct ac_plugin *p, enum ac_log_level level, const char *fmt, ...)
{
	struct mock_call	*c;
	va_list			 ap;
	int			 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();

	c = mock_record(p->host, MOCK_LOG);
	c->level = level;
	c->text = mock_alloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(c->text, (size_t)n + 1, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", p->name, c->text);
}

/* No event loop in unit tests. */
static struct event_base *
mock_event_base(struct ac_plugin *p)
{
	return NULL;
}

/* No key in unit tests. */
static const struct ac_key *
mock_key(struct ac_plugin *p)
{
	return NULL;
}

/* The protocol's default limits, as a server with no limits configured. */
static const struct ac_limits *
mock_limits(struct ac_plugin *p)
{
	static const struct ac_limits	limits = {
		AC_DEFAULT_MAX_HEADER, AC_DEFAULT_MAX_CONTENT
	};

	return &limits;
}

/* The fake session's id. */
static const char *
mock_session_id(const struct ac_session *s)
{
	return s->id;
}

/* The fake session's peer address. */
static const char *
mock_session_peer(const struct ac_session *s)
{
	return s->peer;
}

/* The fake session's transport name. */
static const char *
mock_session_transport(const struct ac_session *s)
{
	return s->transport;
}

/* A handshaken session by id, or NULL. */
static struct ac_session *
mock_session_find(struct ac_plugin *p, const char *id)
{
	struct mock_host	*h = p->host;
	size_t			 i;

	for (i = 0; i < h->nsessions; i++) {
		if (h->sessions[i].handshaken &&
		    strcmp(h->sessions[i].id, id) == 0)
			return &h->sessions[i];
	}
	return NULL;
}

/* Call cb for each handshaken session until it returns non-zero. */
static int
mock_session_foreach(struct ac_plugin *p,
    int (*cb)(struct ac_session *, void *), void *arg)
{
	struct mock_host	*h = p->host;
	size_t			 i;
	int			 rv;

	for (i = 0; i < h->nsessions; i++) {
		if (!h->sessions[i].handshaken)
			continue;
		if ((rv = cb(&h->sessions[i], arg)) != 0)
			return rv;
	}
	return 0;
}

/* How many sessions are handshaken. */
static size_t
mock_session_count(struct ac_plugin *p)
{
	struct mock_host	*h = p->host;
	size_t			 i, n = 0;

	for (i = 0; i < h->nsessions; i++) {
		if (h->sessions[i].handshaken)
			n++;
	}
	return n;
}

/* The plugin's slot on a session. */
static void *
mock_session_get_data(struct ac_plugin *p, struct ac_session *s)
{
	return s->data;
}

/* Replace the plugin's slot on a session, destroying the old value. */
static void
mock_session_set_data(struct ac_plugin *p, struct ac_session *s, void *data,
    void (*destroy)(void *))
{
	if (s->destroy != NULL && s->data != NULL && s->data != data)
		s->destroy(s->data);
	s->data = data;
	s->destroy = destroy;
}

/* Record a close and take the session out of the handshaken set. */
static void
mock_session_close(struct ac_plugin *p, struct ac_session *s,
    const char *reason)
{
	struct mock_call	*c;

	c = mock_record(p->host, MOCK_CLOSE);
	c->session = s;
	c->text = mock_strdup(reason);
	s->handshaken = 0;
}

/* Record a new frame sent to one session, with a copy of its content. */
static int
mock_send(struct ac_plugin *p, struct ac_session *to, enum ac_msg_type type,
    const char *content_type, struct json_object *extra, const void *content,
    size_t content_len)
{
	struct mock_call	*c;

	if (!to->handshaken || content_len == 0)
		return -1;
	c = mock_record(p->host, MOCK_SEND);
	c->session = to;
	c->type = type;
	c->content_type = mock_strdup(content_type);
	c->content = mock_alloc(content_len);
	memcpy(c->content, content, content_len);
	c->content_len = content_len;
	to->sent++;
	return 0;
}

/* Record a relay of the received frame to one session. */
static int
mock_relay(struct ac_plugin *p, const struct ac_frame *f,
    struct ac_session *to)
{
	struct mock_call	*c;

	if (!to->handshaken)
		return -1;
	c = mock_record(p->host, MOCK_RELAY);
	c->session = to;
	c->frame = f;
	to->relayed++;
	to->last_relayed = f;
	return 0;
}

/* Record a relay to every handshaken session but except. */
static int
mock_relay_all(struct ac_plugin *p, const struct ac_frame *f,
    struct ac_session *except)
{
	struct mock_host	*h = p->host;
	struct mock_call	*c;
	size_t			 i;
	int			 n = 0;

	c = mock_record(h, MOCK_RELAY_ALL);
	c->session = except;
	c->frame = f;
	for (i = 0; i < h->nsessions; i++) {
		if (!h->sessions[i].handshaken || &h->sessions[i] == except)
			continue;
		h->sessions[i].relayed++;
		h->sessions[i].last_relayed = f;
		n++;
	}
	return n;
}

/* Record a relay to each session of a list, as relay would one by one. */
static int
mock_relay_list(struct ac_plugin *p, const struct ac_frame *f,
    struct ac_session *const *to, size_t n)
{
	size_t	i;
	int	count = 0;

	for (i = 0; i < n; i++) {
		if (to[i] != NULL && mock_relay(p, f, to[i]) == 0)
			count++;
	}
	return count;
}

/* The fake frame's bytes. */
static const uint8_t *
mock_frame_bytes(const struct ac_frame *f, size_t *len)
{
	*len = f->len;
	return f->bytes;
}

/* Count the sessions a raw frame would reach; nothing is recorded. */
static int
mock_broadcast_raw(struct ac_plugin *p, const void *frame, size_t len,
    struct ac_session *except)
{
	struct mock_host	*h = p->host;
	size_t			 i;
	int			 n = 0;

	for (i = 0; i < h->nsessions; i++) {
		if (h->sessions[i].handshaken && &h->sessions[i] != except)
			n++;
	}
	return n;
}

/* The plugin's name. */
static const char *
mock_plugin_name(struct ac_plugin *p)
{
	return p->name;
}

/* No handshake in unit tests. */
static const struct ac_message *
mock_session_ack(struct ac_plugin *p, const struct ac_session *s)
{
	return NULL;
}

/* The index of an attribute on a fake session, or -1. */
static int
mock_attr_find(const struct ac_session *s, const char *key)
{
	size_t	i;

	for (i = 0; i < s->nattrs; i++) {
		if (strcmp(s->attr_key[i], key) == 0)
			return (int)i;
	}
	return -1;
}

/* An attribute's value, or NULL. */
static const char *
mock_session_attr(const struct ac_session *s, const char *key)
{
	int	i = mock_attr_find(s, key);

	return i == -1 ? NULL : s->attr_value[i];
}

/* Set or remove an attribute, first setter owning it (no other checks). */
static int
mock_session_attr_set(struct ac_plugin *p, struct ac_session *s,
    const char *key, const char *value)
{
	int	i = mock_attr_find(s, key);

	if (i != -1 && strcmp(s->attr_owner[i], p->name) != 0)
		return AC_ATTR_NOT_OWNER;
	if (i != -1) {
		free(s->attr_value[i]);
		if (value != NULL) {
			s->attr_value[i] = mock_strdup(value);
			return AC_ATTR_OK;
		}
		free(s->attr_key[i]);
		free(s->attr_owner[i]);
		for (; (size_t)i + 1 < s->nattrs; i++) {
			s->attr_key[i] = s->attr_key[i + 1];
			s->attr_value[i] = s->attr_value[i + 1];
			s->attr_owner[i] = s->attr_owner[i + 1];
		}
		s->nattrs--;
		return AC_ATTR_OK;
	}
	if (value == NULL)
		return AC_ATTR_OK;
	if (s->nattrs == MOCK_MAX_ATTRS)
		return AC_ATTR_FULL;
	s->attr_key[s->nattrs] = mock_strdup(key);
	s->attr_value[s->nattrs] = mock_strdup(value);
	s->attr_owner[s->nattrs] = mock_strdup(p->name);
	s->nattrs++;
	return AC_ATTR_OK;
}

/* Visit a fake session's attributes in order. */
static int
mock_session_attr_foreach(const struct ac_session *s,
    int (*cb)(const char *, const char *, const char *, void *), void *arg)
{
	size_t	i;
	int	r;

	for (i = 0; i < s->nattrs; i++) {
		if ((r = cb(s->attr_key[i], s->attr_value[i],
		    s->attr_owner[i], arg)) != 0)
			return r;
	}
	return 0;
}

/* No key to sign with in unit tests: no frames are made. */
static struct ac_frame *
mock_frame_new(struct ac_plugin *p, const char *session_id,
    enum ac_msg_type type, const char *content_type,
    struct json_object *extra, const void *content, size_t content_len)
{
	return NULL;
}

/* No key to verify with in unit tests: no frames are made. */
static struct ac_frame *
mock_frame_from_bytes(struct ac_plugin *p, const void *bytes, size_t len)
{
	return NULL;
}

/* The fake frame lives as long as the test: a reference is the pointer. */
static struct ac_frame *
mock_frame_ref(struct ac_plugin *p, const struct ac_frame *f)
{
	return (struct ac_frame *)f;
}

/* Nothing to release. */
static void
mock_frame_unref(struct ac_plugin *p, struct ac_frame *f)
{
}

/* No worker pool in unit tests: every job is refused, as a full queue is. */
static int
mock_job_submit(struct ac_plugin *p, struct ac_session *s, int flags,
    ac_job_work_fn work, ac_job_done_fn done, void *arg)
{
	return -1;
}

/* Register a metric in the fake server (its name, type and values). */
static struct ac_metric *
mock_metric_new(struct ac_plugin *p, enum ac_metric_type type,
    const char *name, const char *help, const double *bounds, size_t nbounds)
{
	struct mock_host	*h = p->host;
	struct ac_metric	*m;

	if (h->nmetrics == MOCK_MAX_METRICS || name == NULL)
		return NULL;
	m = &h->metrics[h->nmetrics++];
	memset(m, 0, sizeof *m);
	m->type = type;
	snprintf(m->name, sizeof m->name, "%s", name);
	return m;
}

/* Add to a fake counter or gauge. */
static void
mock_metric_add(struct ac_metric *m, double v)
{
	if (m != NULL)
		m->value += v;
}

/* Set a fake counter or gauge. */
static void
mock_metric_set(struct ac_metric *m, double v)
{
	if (m != NULL)
		m->value = v;
}

/* Count an observation in a fake histogram. */
static void
mock_metric_observe(struct ac_metric *m, double v)
{
	if (m != NULL) {
		m->observed++;
		m->sum += v;
	}
}

/* One plugin under test has no one to publish to. */
static int
mock_interface_publish(struct ac_plugin *p, const char *name,
    unsigned int version, const void *iface)
{
	return 0;
}

/* ...nor anyone's interface to find. */
static const void *
mock_interface_get(struct ac_plugin *p, const char *name,
    unsigned int min_version, unsigned int *version)
{
	if (version != NULL)
		*version = 0;
	return NULL;
}

/* The metric registered under name, or NULL. */
const struct ac_metric *
mock_metric(const struct mock_host *h, const char *name)
{
	size_t	i;

	for (i = 0; i < h->nmetrics; i++) {
		if (strcmp(h->metrics[i].name, name) == 0)
			return &h->metrics[i];
	}
	return NULL;
}

/* Set up an empty fake server with a full API table. */
void
mock_host_init(struct mock_host *h)
{
	memset(h, 0, sizeof *h);
	h->api.size = sizeof h->api;
	h->api.log = mock_log;
	h->api.event_base = mock_event_base;
	h->api.key = mock_key;
	h->api.session_id = mock_session_id;
	h->api.session_peer = mock_session_peer;
	h->api.session_transport = mock_session_transport;
	h->api.session_find = mock_session_find;
	h->api.session_foreach = mock_session_foreach;
	h->api.session_count = mock_session_count;
	h->api.session_get_data = mock_session_get_data;
	h->api.session_set_data = mock_session_set_data;
	h->api.session_close = mock_session_close;
	h->api.send = mock_send;
	h->api.relay = mock_relay;
	h->api.relay_all = mock_relay_all;
	h->api.frame_bytes = mock_frame_bytes;
	h->api.broadcast_raw = mock_broadcast_raw;
	h->api.plugin_name = mock_plugin_name;
	h->api.session_ack = mock_session_ack;
	h->api.session_attr = mock_session_attr;
	h->api.session_attr_set = mock_session_attr_set;
	h->api.session_attr_foreach = mock_session_attr_foreach;
	h->api.frame_new = mock_frame_new;
	h->api.frame_from_bytes = mock_frame_from_bytes;
	h->api.frame_ref = mock_frame_ref;
	h->api.frame_unref = mock_frame_unref;
	h->api.job_submit = mock_job_submit;
	h->api.metric_new = mock_metric_new;
	h->api.metric_add = mock_metric_add;
	h->api.metric_set = mock_metric_set;
	h->api.metric_observe = mock_metric_observe;
	h->api.interface_publish = mock_interface_publish;
	h->api.interface_get = mock_interface_get;
	h->api.limits = mock_limits;
	h->api.relay_list = mock_relay_list;
}

/* Forget every recorded call, freeing the copies they hold. */
void
mock_host_reset_calls(struct mock_host *h)
{
	size_t	i;

	for (i = 0; i < h->ncalls; i++) {
		free(h->calls[i].text);
		free(h->calls[i].content_type);
		free(h->calls[i].content);
	}
	h->ncalls = 0;
}

/* Free everything the fake server holds. */
void
mock_host_clear(struct mock_host *h)
{
	struct ac_session	*s;
	size_t			 i, j;

	mock_host_reset_calls(h);
	for (i = 0; i < h->nsessions; i++) {
		s = &h->sessions[i];
		for (j = 0; j < s->nattrs; j++) {
			free(s->attr_key[j]);
			free(s->attr_value[j]);
			free(s->attr_owner[j]);
		}
		s->nattrs = 0;
	}
	h->nsessions = 0;
	h->nmetrics = 0;
}

/* Add a fake session; returns its handle. */
struct ac_session *
mock_session_add(struct mock_host *h, const char *id, const char *peer,
    const char *transport, int handshaken)
{
	struct ac_session	*s;

	if (h->nsessions == MOCK_MAX_SESSIONS)
		abort();
	s = &h->sessions[h->nsessions++];
	memset(s, 0, sizeof *s);
	snprintf(s->id, sizeof s->id, "%s", id);
	snprintf(s->peer, sizeof s->peer, "%s", peer);
	s->transport = transport;
	s->handshaken = handshaken;
	return s;
}

/* How many calls of one kind were recorded. */
size_t
mock_count(const struct mock_host *h, enum mock_call_kind kind)
{
	size_t	i, n = 0;

	for (i = 0; i < h->ncalls; i++) {
		if (h->calls[i].kind == kind)
			n++;
	}
	return n;
}

/* The idx'th recorded call of one kind, or NULL. */
const struct mock_call *
mock_find(const struct mock_host *h, enum mock_call_kind kind, size_t idx)
{
	size_t	i;

	for (i = 0; i < h->ncalls; i++) {
		if (h->calls[i].kind == kind && idx-- == 0)
			return &h->calls[i];
	}
	return NULL;
}

/* How many log lines of a level contain needle (NULL: any). */
size_t
mock_log_count(const struct mock_host *h, enum ac_log_level level,
    const char *needle)
{
	size_t	i, n = 0;

	for (i = 0; i < h->ncalls; i++) {
		if (h->calls[i].kind != MOCK_LOG || h->calls[i].level != level)
			continue;
		if (needle == NULL || strstr(h->calls[i].text, needle) != NULL)
			n++;
	}
	return n;
}

/* "$envvar/subdir/name.so" in a new string, or NULL if envvar is unset. */
char *
mock_module_path(const char *envvar, const char *subdir, const char *name)
{
	const char	*dir;
	char		*path;
	size_t		 size;

	if ((dir = getenv(envvar)) == NULL || *dir == '\0')
		return NULL;
	size = strlen(dir) + strlen(subdir) + strlen(name) + 8;
	path = mock_alloc(size);
	snprintf(path, size, "%s%s/%s.so", dir, subdir, name);
	return path;
}

/*
 * dlopen a module the way the server does (RTLD_NOW|RTLD_LOCAL) and find
 * its descriptor. Returns 0; -1 if it cannot be opened; -2 if it has no
 * ac_plugin_entry (then mp->dl stays open for mock_plugin_close).
 */
int
mock_plugin_open(struct mock_plugin *mp, struct mock_host *h,
    const char *path, const char *name)
{
	memset(mp, 0, sizeof *mp);
	mp->host = h;
	mp->handle.host = h;
	mp->handle.name = name;
	if ((mp->dl = dlopen(path, RTLD_NOW|RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		return -1;
	}
	mp->desc = dlsym(mp->dl, AC_PLUGIN_ENTRY_SYMBOL);
	if (mp->desc == NULL)
		return -2;
	return 0;
}

/* Call the plugin's init with these options; returns what init returned. */
int
mock_plugin_start(struct mock_plugin *mp, const struct ac_plugin_option *opts,
    size_t nopts)
{
	int	rv;

	mp->state = NULL;
	rv = mp->desc->init(&mp->handle, &mp->host->api, opts, nopts,
	    &mp->state);
	mp->started = (rv == 0);
	return rv;
}

/* Destroy the plugin's session slots, then call fini (as the server does). */
void
mock_plugin_stop(struct mock_plugin *mp)
{
	struct mock_host	*h = mp->host;
	size_t			 i;

	if (!mp->started)
		return;
	for (i = 0; i < h->nsessions; i++) {
		if (h->sessions[i].destroy != NULL &&
		    h->sessions[i].data != NULL)
			h->sessions[i].destroy(h->sessions[i].data);
		h->sessions[i].data = NULL;
		h->sessions[i].destroy = NULL;
	}
	if (mp->desc->fini != NULL)
		mp->desc->fini(mp->state);
	mp->started = 0;
	mp->state = NULL;
}

/* Stop the plugin if it runs and dlclose it. */
void
mock_plugin_close(struct mock_plugin *mp)
{
	mock_plugin_stop(mp);
	if (mp->dl != NULL)
		dlclose(mp->dl);
	mp->dl = NULL;
}

/*
 * Hand the plugin one message from a session, as the server's chain does:
 * a decoded message and its frame (host->frame), borrowed for the call.
 */
int
mock_plugin_message(struct mock_plugin *mp, struct ac_session *from,
    enum ac_msg_type type, const char *content_type, const void *content,
    size_t content_len)
{
	struct ac_message	msg;

	memset(&msg, 0, sizeof msg);
	msg.type = type;
	msg.content_type = content_type;
	msg.session_id = from->id;
	msg.content = content;
	msg.content_len = content_len;
	mp->host->frame.bytes = content;
	mp->host->frame.len = content_len;
	return mp->desc->process_message(mp->state, from, &msg,
	    &mp->host->frame);
}
