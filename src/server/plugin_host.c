/*
 * plugin_host.c - the host side of include/asyncchat/plugin.h: load each
 * plugin named in [plugins] (dlopen), check its ABI before touching
 * anything else, give it its [plugin.NAME] section, run the chain for
 * every message, and offer the host functions of struct ac_host_api.
 *
 * A plugin path is followed through symlinks (Debian links plugin
 * directories about) but what it names must be a regular file.
 *
 * Descriptors grow (plugin.h): the host copies the plugin's descriptor,
 * struct_size bytes of it or as many as the host knows, into a zeroed one
 * of its own, so a plugin built against an older header simply lacks the
 * newer callbacks, and one built against a newer header that declares an
 * API this host has is read as far as the host understands.
 *
 * Unloading (plugin_set_free) retires a whole chain: it leaves the
 * server, its queued jobs are cancelled, and its fini and dlclose wait
 * until every job of its plugins has completed, because a job that a
 * worker is running cannot be stopped and its code and state must stay.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

static void	host_log(struct ac_plugin *, enum ac_log_level, const char *,
		    ...) __attribute__((format(printf, 3, 4)));
static struct event_base *host_event_base(struct ac_plugin *);
static const struct ac_key *host_key(struct ac_plugin *);
static const char *host_session_id(const struct ac_session *);
static const char *host_session_peer(const struct ac_session *);
static const char *host_session_transport(const struct ac_session *);
static struct ac_session *host_session_find(struct ac_plugin *,
		    const char *);
static int	host_session_foreach(struct ac_plugin *,
		    int (*)(struct ac_session *, void *), void *);
static size_t	host_session_count(struct ac_plugin *);
static void	*host_session_get_data(struct ac_plugin *,
		    struct ac_session *);
static void	host_session_set_data(struct ac_plugin *, struct ac_session *,
		    void *, void (*)(void *));
static void	host_session_close(struct ac_plugin *, struct ac_session *,
		    const char *);
static int	host_send(struct ac_plugin *, struct ac_session *,
		    enum ac_msg_type, const char *, struct json_object *,
		    const void *, size_t);
static int	host_relay(struct ac_plugin *, const struct ac_frame *,
		    struct ac_session *);
static int	host_relay_all(struct ac_plugin *, const struct ac_frame *,
		    struct ac_session *);
static const uint8_t *host_frame_bytes(const struct ac_frame *, size_t *);
static int	host_broadcast_raw(struct ac_plugin *, const void *, size_t,
		    struct ac_session *);
static const char *host_plugin_name(struct ac_plugin *);
static const struct ac_message *host_session_ack(struct ac_plugin *,
		    const struct ac_session *);
static const char *host_session_attr(const struct ac_session *,
		    const char *);
static int	host_session_attr_set(struct ac_plugin *, struct ac_session *,
		    const char *, const char *);
static int	host_session_attr_foreach(const struct ac_session *,
		    int (*)(const char *, const char *, const char *, void *),
		    void *);
static struct ac_frame *host_frame_new(struct ac_plugin *, const char *,
		    enum ac_msg_type, const char *, struct json_object *,
		    const void *, size_t);
static struct ac_frame *host_frame_from_bytes(struct ac_plugin *,
		    const void *, size_t);
static struct ac_frame *host_frame_ref(struct ac_plugin *,
		    const struct ac_frame *);
static void	host_frame_unref(struct ac_plugin *, struct ac_frame *);
static int	host_job_submit(struct ac_plugin *, struct ac_session *, int,
		    ac_job_work_fn, ac_job_done_fn, void *);
static struct ac_metric *host_metric_new(struct ac_plugin *,
		    enum ac_metric_type, const char *, const char *,
		    const double *, size_t);
static int	host_interface_publish(struct ac_plugin *, const char *,
		    unsigned int, const void *);
static const void *host_interface_get(struct ac_plugin *, const char *,
		    unsigned int, unsigned int *);
static const struct ac_limits *host_limits(struct ac_plugin *);
static void	plugin_set_finalize(struct server *, struct plugin_set *);

/* The size of the first API's descriptor: the least a plugin may have. */
#define PLUGIN_DESC_MIN_SIZE	offsetof(struct ac_plugin_descriptor, ready)

static const struct ac_host_api plugin_host_api = {
	.size = sizeof(struct ac_host_api),
	.log = host_log,
	.event_base = host_event_base,
	.key = host_key,
	.session_id = host_session_id,
	.session_peer = host_session_peer,
	.session_transport = host_session_transport,
	.session_find = host_session_find,
	.session_foreach = host_session_foreach,
	.session_count = host_session_count,
	.session_get_data = host_session_get_data,
	.session_set_data = host_session_set_data,
	.session_close = host_session_close,
	.send = host_send,
	.relay = host_relay,
	.relay_all = host_relay_all,
	.frame_bytes = host_frame_bytes,
	.broadcast_raw = host_broadcast_raw,
	.plugin_name = host_plugin_name,
	.session_ack = host_session_ack,
	.session_attr = host_session_attr,
	.session_attr_set = host_session_attr_set,
	.session_attr_foreach = host_session_attr_foreach,
	.frame_new = host_frame_new,
	.frame_from_bytes = host_frame_from_bytes,
	.frame_ref = host_frame_ref,
	.frame_unref = host_frame_unref,
	.job_submit = host_job_submit,
	.metric_new = host_metric_new,
	.metric_add = plugin_metric_add,
	.metric_set = plugin_metric_set,
	.metric_observe = plugin_metric_observe,
	.interface_publish = host_interface_publish,
	.interface_get = host_interface_get,
	.limits = host_limits,
};

/* Log a line prefixed with the plugin's name. */
static void
host_log(struct ac_plugin *p, enum ac_log_level level, const char *fmt, ...)
{
	va_list	 ap;
	char	 prefix[128];

	snprintf(prefix, sizeof prefix, "plugin %s: ", p->name);
	va_start(ap, fmt);
	log_vlog(level, prefix, fmt, ap);
	va_end(ap);
}

/* The server's event loop. */
static struct event_base *
host_event_base(struct ac_plugin *p)
{
	return (p->srv->base);
}

/*
 * The shared HMAC key of the plugin's own configuration. During a reload
 * the new plugins are initialised while the old configuration still runs,
 * and a plugin may keep the pointer until its fini: srv->cfg would be the
 * old key, freed once the reload completes. A retired chain's key is gone
 * with its configuration: its plugins, still completing jobs, get the
 * running one.
 */
static const struct ac_key *
host_key(struct ac_plugin *p)
{
	if (p->set->retired)
		return (p->srv->cfg->key);
	return (p->set->key);
}

/*
 * The frame limits of the plugin's own configuration, copied into its set
 * for the same reason as the key: during a reload the new plugins are
 * initialised while srv->limits still holds the old ones.
 */
static const struct ac_limits *
host_limits(struct ac_plugin *p)
{
	return (&p->set->limits);
}

/* The session's UUID text. */
static const char *
host_session_id(const struct ac_session *s)
{
	return (s->id);
}

/* The peer's address. */
static const char *
host_session_peer(const struct ac_session *s)
{
	return (s->peer);
}

/* "tcp" or "unix". */
static const char *
host_session_transport(const struct ac_session *s)
{
	return (s->transport);
}

/* The handshaken live session with this id, or NULL. */
static struct ac_session *
host_session_find(struct ac_plugin *p, const char *id)
{
	struct ac_session	*s;

	s = registry_find(&p->srv->reg, id);
	if (s == NULL || (s->flags & AC_SESS_DEAD) ||
	    !(s->flags & AC_SESS_ACKED))
		return (NULL);
	return (s);
}

/* Call cb for every handshaken session until it returns non-zero. */
static int
host_session_foreach(struct ac_plugin *p,
    int (*cb)(struct ac_session *, void *), void *arg)
{
	struct ac_session	**snap;
	size_t			  n, i;
	int			  r = 0;

	snap = registry_snapshot(&p->srv->reg, 1, NULL, &n);
	for (i = 0; i < n && r == 0; i++) {
		if (!(snap[i]->flags & AC_SESS_DEAD))
			r = cb(snap[i], arg);
	}
	registry_snapshot_free(snap, n);
	return (r);
}

/* Number of handshaken sessions. */
static size_t
host_session_count(struct ac_plugin *p)
{
	return ((size_t)p->srv->stats.sessions_acked);
}

/* This plugin's data slot on a session. */
static void *
host_session_get_data(struct ac_plugin *p, struct ac_session *s)
{
	if (p->set != p->srv->plugins || p->index >= s->nslots)
		return (NULL);
	return (s->slots[p->index].data);
}

/* Set this plugin's data slot on a session. */
static void
host_session_set_data(struct ac_plugin *p, struct ac_session *s, void *data,
    void (*destroy)(void *))
{
	struct session_slot	*slot;
	size_t			 i, n;

	/*
	 * Too late (the session is gone) or too early (a chain still being
	 * loaded on SIGHUP, whose slot numbers are the running chain's):
	 * keep nothing, but do not leak the data either.
	 */
	if ((s->flags & AC_SESS_NOSLOTS) || p->set != p->srv->plugins) {
		if (destroy != NULL && data != NULL)
			destroy(data);
		return;
	}
	if (p->index >= s->nslots) {
		n = p->srv->plugins != NULL ? p->srv->plugins->n : 0;
		if (n <= p->index)
			n = p->index + 1;
		s->slots = ac_xreallocarray(s->slots, n, sizeof *s->slots);
		for (i = s->nslots; i < n; i++) {
			s->slots[i].data = NULL;
			s->slots[i].destroy = NULL;
		}
		s->nslots = n;
	}
	slot = &s->slots[p->index];
	if (slot->destroy != NULL && slot->data != NULL && slot->data != data)
		slot->destroy(slot->data);
	slot->data = data;
	slot->destroy = destroy;
}

/* Send disconnect with a reason and close the session. */
static void
host_session_close(struct ac_plugin *p, struct ac_session *s,
    const char *reason)
{
	log_debug("plugin %s closes session %s: %s", p->name, s->id,
	    reason != NULL ? reason : "");
	session_close(s, AC_CLOSE_PLUGIN, reason != NULL ? reason :
	    "Closed by the server");
}

/* Encode and queue a new frame to one session. */
static int
host_send(struct ac_plugin *p, struct ac_session *to, enum ac_msg_type type,
    const char *content_type, struct json_object *extra,
    const void *content, size_t content_len)
{
	if (to == NULL || (to->flags & AC_SESS_DEAD))
		return (-1);
	if ((unsigned)type >= AC_MSG_TYPE_COUNT)
		return (-1);
	return (session_send(to, type, content_type, extra, content,
	    content_len));
}

/* Queue the received frame, byte for byte, to one session. */
static int
host_relay(struct ac_plugin *p, const struct ac_frame *f,
    struct ac_session *to)
{
	if (f == NULL || to == NULL || (to->flags & AC_SESS_DEAD))
		return (-1);
	/* The frame is the host's: queuing takes a reference. */
	return (session_queue_frame(to, (struct ac_frame *)f));
}

/* Queue a frame to every handshaken session but except. */
static int
plugin_host_fanout(struct server *srv, struct ac_frame *f,
    struct ac_session *except)
{
	struct ac_session	**snap;
	size_t			  n, i;
	int			  count = 0;

	snap = registry_snapshot(&srv->reg, 1, except, &n);
	for (i = 0; i < n; i++) {
		if (session_queue_frame(snap[i], f) == 0)
			count++;
	}
	registry_snapshot_free(snap, n);
	return (count);
}

/* Queue the received frame to every handshaken session but except. */
static int
host_relay_all(struct ac_plugin *p, const struct ac_frame *f,
    struct ac_session *except)
{
	if (f == NULL)
		return (0);
	return (plugin_host_fanout(p->srv, (struct ac_frame *)f, except));
}

/* The bytes of a received frame. */
static const uint8_t *
host_frame_bytes(const struct ac_frame *f, size_t *len)
{
	*len = f->len;
	return (f->bytes);
}

/* Queue a copy of an already verified frame to every handshaken session. */
static int
host_broadcast_raw(struct ac_plugin *p, const void *frame, size_t len,
    struct ac_session *except)
{
	struct ac_frame	*f;
	int		 count;

	if (frame == NULL || len < AC_FIXED_HEADER_LEN ||
	    len > p->srv->cfg->max_output_buffer)
		return (0);
	f = ac_frame_new(len, AC_MSG_MESSAGE);
	memcpy(f->bytes, frame, len);
	count = plugin_host_fanout(p->srv, f, except);
	ac_frame_unref(f);
	return (count);
}

/* The plugin's configured name. */
static const char *
host_plugin_name(struct ac_plugin *p)
{
	return (p->name);
}

/* The session_ack of a session inside its first session_open, or NULL. */
static const struct ac_message *
host_session_ack(struct ac_plugin *p, const struct ac_session *s)
{
	if (s == NULL || s != p->srv->ack_session)
		return (NULL);
	return (p->srv->ack_msg);
}

/* The value of an attribute, or NULL. */
static const char *
host_session_attr(const struct ac_session *s, const char *key)
{
	if (s == NULL)
		return (NULL);
	return (attr_get(s->attrs, key));
}

/* Set or remove an attribute on behalf of plugin p. */
static int
host_session_attr_set(struct ac_plugin *p, struct ac_session *s,
    const char *key, const char *value)
{
	int	r;

	if (s == NULL || (s->flags & AC_SESS_DEAD) ||
	    !(s->flags & AC_SESS_OPENED))
		return (AC_ATTR_INVALID);
	r = attr_set(&s->attrs, p->name, key, value);
	if (r != AC_ATTR_OK)
		log_debug("plugin %s: session %s: attribute %s not set (%s)",
		    p->name, s->id, key != NULL ? key : "(null)",
		    r == AC_ATTR_NOT_OWNER ? "another plugin owns it" :
		    r == AC_ATTR_FULL ? "too many attributes" :
		    "bad key or value");
	return (r);
}

/* Visit a session's attributes. */
static int
host_session_attr_foreach(const struct ac_session *s,
    int (*cb)(const char *, const char *, const char *, void *), void *arg)
{
	if (s == NULL || cb == NULL)
		return (0);
	return (attr_foreach(s->attrs, cb, arg));
}

/*
 * Encode a new frame once, as coming from session_id, into a frame of its
 * own that any number of sessions can share. Refused past the server's
 * own limits, which a client may enforce on what it receives.
 */
static struct ac_frame *
host_frame_new(struct ac_plugin *p, const char *session_id,
    enum ac_msg_type type, const char *content_type,
    struct json_object *extra, const void *content, size_t content_len)
{
	struct server	*srv = p->srv;
	struct evbuffer	*buf;
	struct ac_frame	*f;
	size_t		 len;

	if ((unsigned)type >= AC_MSG_TYPE_COUNT ||
	    content_len > srv->limits.max_content_len)
		return (NULL);
	if ((buf = evbuffer_new()) == NULL)
		return (NULL);
	if (ac_frame_encode(buf, host_key(p), type, content_type,
	    session_id, extra, content, content_len) == -1) {
		evbuffer_free(buf);
		return (NULL);
	}
	len = evbuffer_get_length(buf);
	if (len - AC_FIXED_HEADER_LEN - content_len >
	    srv->limits.max_header_len) {
		evbuffer_free(buf);
		return (NULL);
	}
	f = ac_frame_new(len, type);
	evbuffer_remove(buf, f->bytes, len);
	evbuffer_free(buf);
	return (f);
}

/* Copy one whole frame's bytes into a frame, once they pass every check
 * a received frame passes. */
static struct ac_frame *
host_frame_from_bytes(struct ac_plugin *p, const void *bytes, size_t len)
{
	struct ac_message	 msg;
	struct ac_frame		*f;
	enum ac_frame_status	 st;
	size_t			 consumed = 0;

	if (bytes == NULL || len < AC_FIXED_HEADER_LEN)
		return (NULL);
	memset(&msg, 0, sizeof msg);
	st = ac_frame_decode(host_key(p), &p->srv->limits, bytes, len,
	    &consumed, &msg);
	if (st != AC_FRAME_OK || consumed != len) {
		if (st == AC_FRAME_OK)
			ac_message_clear(&msg);
		log_debug("plugin %s: frame_from_bytes: %s", p->name,
		    st != AC_FRAME_OK ? ac_frame_status_name(st) :
		    "trailing bytes");
		return (NULL);
	}
	f = ac_frame_new(len, msg.type);
	memcpy(f->bytes, bytes, len);
	ac_message_clear(&msg);
	return (f);
}

/* Take a reference to a frame for a plugin. */
static struct ac_frame *
host_frame_ref(struct ac_plugin *p, const struct ac_frame *f)
{
	if (f == NULL)
		return (NULL);
	/* Frames are the host's: a reference is a count, not a change. */
	return (ac_frame_ref((struct ac_frame *)f));
}

/* Drop a plugin's reference to a frame. */
static void
host_frame_unref(struct ac_plugin *p, struct ac_frame *f)
{
	ac_frame_unref(f);
}

/*
 * Hand a job to the worker pool. The job holds a reference to its
 * session, so that the completion can tell whether it is still open, and
 * counts toward its chain, which is not finished while any is left.
 */
static int
host_job_submit(struct ac_plugin *p, struct ac_session *s, int flags,
    ac_job_work_fn work, ac_job_done_fn done, void *arg)
{
	if (work == NULL || done == NULL ||
	    (flags & ~(AC_JOB_NO_CANCEL|AC_JOB_SERIAL)) != 0)
		return (-1);
	if (p->set->retired)
		return (-1);
	if (s != NULL && ((s->flags & AC_SESS_DEAD) ||
	    !(s->flags & AC_SESS_OPENED)))
		return (-1);
	if (worker_submit(p->srv->workers, p, s, flags, work, done,
	    arg) == -1)
		return (-1);
	if (s != NULL)
		session_ref(s);
	p->jobs++;
	p->set->jobs++;
	return (0);
}

/*
 * A job finished or was cancelled (worker.c, loop thread): tell its
 * plugin, let go of its session, and finish a retired chain whose last
 * job this was.
 */
void
plugin_host_job_done(struct ac_plugin *p, struct ac_session *s,
    ac_job_done_fn done, void *arg, enum ac_job_status status)
{
	struct plugin_set	*set = p->set;
	struct ac_session	*live = NULL;

	if (s != NULL && !(s->flags & AC_SESS_DEAD))
		live = s;
	done(p->state, live, arg, status);
	if (s != NULL)
		session_unref(s);
	p->jobs--;
	set->jobs--;
	if (set->retired && set->jobs == 0)
		plugin_set_finalize(p->srv, set);
}

/* Register a metric for a plugin; refusals are logged with the reason. */
static struct ac_metric *
host_metric_new(struct ac_plugin *p, enum ac_metric_type type,
    const char *name, const char *help, const double *bounds,
    size_t nbounds)
{
	struct ac_metric	*m;
	const char		*why;

	if (p->set->retired)
		return (NULL);
	m = plugin_metric_new(p->srv, p, type, name, help, bounds, nbounds,
	    &why);
	if (m == NULL)
		log_warnx("plugin %s: metric %s refused: %s", p->name,
		    name != NULL ? name : "(null)", why);
	return (m);
}

/* Publish an interface in the plugin's chain. */
static int
host_interface_publish(struct ac_plugin *p, const char *name,
    unsigned int version, const void *iface)
{
	const char	*why;

	if (p->set->retired)
		return (-1);
	if (iface_publish(&p->set->ifaces, p, name, version, iface,
	    &why) == -1) {
		log_warnx("plugin %s: interface %s not published: %s",
		    p->name, name != NULL ? name : "(null)", why);
		return (-1);
	}
	log_debug("plugin %s publishes interface %s version %u", p->name,
	    name, version);
	return (0);
}

/* Look up an interface of the plugin's chain. */
static const void *
host_interface_get(struct ac_plugin *p, const char *name,
    unsigned int min_version, unsigned int *version)
{
	struct ac_plugin	*owner;
	const void		*iface;
	unsigned int		 found;

	if (version != NULL)
		*version = 0;
	if (p->set->retired)
		return (NULL);
	iface = iface_get(&p->set->ifaces, name, min_version, &found,
	    &owner);
	if (owner == NULL)
		log_debug("plugin %s: no interface %s in this chain", p->name,
		    name != NULL ? name : "(null)");
	else if (iface == NULL)
		log_debug("plugin %s: interface %s of plugin %s is version "
		    "%u, not %u or later", p->name, name, owner->name, found,
		    min_version);
	else
		log_debug("plugin %s uses interface %s version %u of plugin "
		    "%s", p->name, name, found, owner->name);
	if (iface != NULL && version != NULL)
		*version = found;
	return (iface);
}

/* Free one plugin whose fini has run (or that never got that far). */
static void
plugin_unload(struct ac_plugin *p)
{
	plugin_metric_free(p->srv, p);
	if (p->dl != NULL)
		dlclose(p->dl);
	free(p->name);
	free(p->path);
	free(p);
}

/*
 * Open one plugin and check its descriptor. Nothing but abi_version and
 * struct_size is read until both match, since a plugin built against
 * another ABI may have any layout after them.
 */
static int
plugin_open(struct server *srv, const struct ac_plugin_conf *pc,
    struct ac_plugin **pp, char **cause)
{
	const struct ac_plugin_descriptor	*d;
	struct ac_plugin			*p;
	struct stat				 st;
	const char				*err;

	*pp = NULL;
	if (stat(pc->path, &st) == -1) {
		if (errno == ENOENT)
			ac_xasprintf(cause, "plugin %s: %s not found (check "
			    "plugin_dir or the path in [plugins] load)",
			    pc->name, pc->path);
		else
			ac_xasprintf(cause, "plugin %s: %s: %s", pc->name,
			    pc->path, strerror(errno));
		return (-1);
	}
	if (!S_ISREG(st.st_mode)) {
		ac_xasprintf(cause, "plugin %s: %s is not a regular file",
		    pc->name, pc->path);
		return (-1);
	}

	p = ac_xcalloc(1, sizeof *p);
	p->srv = srv;
	p->name = ac_xstrdup(pc->name);
	p->path = ac_xstrdup(pc->path);

	dlerror();
	if ((p->dl = dlopen(p->path, RTLD_NOW|RTLD_LOCAL)) == NULL) {
		err = dlerror();
		ac_xasprintf(cause, "plugin %s (%s): cannot load: %s (check "
		    "its libraries with: ldd %s)", p->name, p->path,
		    err != NULL ? err : "unknown error", p->path);
		goto fail;
	}
	dlerror();
	d = dlsym(p->dl, AC_PLUGIN_ENTRY_SYMBOL);
	if (d == NULL) {
		err = dlerror();
		ac_xasprintf(cause, "plugin %s (%s): no %s symbol (%s): not "
		    "an asyncchat plugin, or built without "
		    "AC_PLUGIN_DESCRIPTOR", p->name, p->path,
		    AC_PLUGIN_ENTRY_SYMBOL, err != NULL ? err : "NULL");
		goto fail;
	}
	if (d->abi_version != AC_PLUGIN_ABI_VERSION) {
		ac_xasprintf(cause, "plugin %s (%s): ABI version %u, server "
		    "expects %u: rebuild the plugin against this asyncchat",
		    p->name, p->path, d->abi_version, AC_PLUGIN_ABI_VERSION);
		goto fail;
	}
	if (d->struct_size < PLUGIN_DESC_MIN_SIZE) {
		ac_xasprintf(cause, "plugin %s (%s): descriptor size %u, "
		    "smaller than any asyncchat descriptor (%zu): declare it "
		    "with AC_PLUGIN_HEADER", p->name, p->path, d->struct_size,
		    (size_t)PLUGIN_DESC_MIN_SIZE);
		goto fail;
	}
	if (d->api_version > AC_PLUGIN_API_VERSION) {
		ac_xasprintf(cause, "plugin %s (%s): needs plugin API version "
		    "%u, server has %u: upgrade asyncchat", p->name, p->path,
		    d->api_version, AC_PLUGIN_API_VERSION);
		goto fail;
	}
	/*
	 * Only now is the rest of the descriptor known to be laid out as
	 * ours: take as much of it as both sides know, the rest stays NULL.
	 */
	memcpy(&p->d, d, d->struct_size < sizeof p->d ? d->struct_size :
	    sizeof p->d);
	p->d.struct_size = d->struct_size;
	if (p->d.init == NULL) {
		ac_xasprintf(cause, "plugin %s (%s): the descriptor has no "
		    "init function", p->name, p->path);
		goto fail;
	}
	p->desc = &p->d;
	*pp = p;
	return (0);

fail:
	plugin_unload(p);
	return (-1);
}

/*
 * Finish a retired set whose jobs have all completed: every fini in
 * reverse load order, then every dlclose, so that no plugin's code goes
 * away while another's fini might still call it.
 */
static void
plugin_set_finalize(struct server *srv, struct plugin_set *set)
{
	struct plugin_set	*rs;
	struct ac_plugin	*p;
	size_t			 i;

	TAILQ_FOREACH(rs, &srv->retired, entry) {
		if (rs == set) {
			TAILQ_REMOVE(&srv->retired, set, entry);
			break;
		}
	}
	for (i = set->n; i > 0; i--) {
		p = set->plugins[i - 1];
		if (p->inited && p->desc->fini != NULL)
			p->desc->fini(p->state);
		p->inited = 0;
	}
	for (i = set->n; i > 0; i--)
		plugin_unload(set->plugins[i - 1]);
	iface_free(&set->ifaces);
	free(set->plugins);
	free(set);
}

/*
 * Unload a set: destroy its slots on every session, take it off the
 * metrics and cancel its queued jobs; then finish it (fini, dlclose) now,
 * or, if jobs of its plugins are still to complete, once the last one
 * has. Either way nothing of it is called for sessions or messages again.
 */
void
plugin_set_free(struct server *srv, struct plugin_set *set)
{
	struct ac_session	*s;
	size_t			 i;

	if (set == NULL)
		return;
	if (srv->plugins == set) {
		TAILQ_FOREACH(s, &srv->reg.list, entry)
			session_slots_clear(s);
	}
	set->retired = 1;
	for (i = 0; i < set->n; i++)
		plugin_metric_hide(srv, set->plugins[i]);
	worker_cancel_set(srv->workers, set);
	if (set->jobs == 0) {
		plugin_set_finalize(srv, set);
		return;
	}
	log_info("unloading %zu plugin%s once %u job%s of theirs complete%s",
	    set->n, set->n == 1 ? "" : "s", set->jobs,
	    set->jobs == 1 ? "" : "s", set->jobs == 1 ? "s" : "");
	TAILQ_INSERT_TAIL(&srv->retired, set, entry);
}

/*
 * The end: wait for the workers (their running jobs, and the queued ones
 * that may not be cancelled), run every completion, and finish every
 * retired set. This blocks; it is for shutdown and exit only.
 */
void
plugin_host_drain(struct server *srv)
{
	struct plugin_set	*set;

	worker_pool_stop(srv->workers);
	worker_pool_complete(srv->workers);
	while ((set = TAILQ_FIRST(&srv->retired)) != NULL) {
		log_warnx("unloading %zu plugin%s with %u job%s never "
		    "completed", set->n, set->n == 1 ? "" : "s", set->jobs,
		    set->jobs == 1 ? "" : "s");
		plugin_set_finalize(srv, set);
	}
}

/* Is a plugin of this name in the running chain? (attr_prune) */
static int
plugin_host_is_loaded(const char *name, void *arg)
{
	struct plugin_set	*set = arg;
	size_t			 i;

	for (i = 0; i < set->n; i++) {
		if (strcmp(set->plugins[i]->name, name) == 0)
			return (1);
	}
	return (0);
}

/*
 * A reload has made srv->plugins the new chain: attributes owned by a
 * plugin no longer loaded go, and the new plugins meet the sessions that
 * are already open.
 */
void
plugin_host_reloaded(struct server *srv)
{
	struct ac_session	**snap;
	size_t			  i, n;

	snap = registry_snapshot(&srv->reg, 1, NULL, &n);
	for (i = 0; i < n; i++) {
		if (snap[i]->flags & AC_SESS_DEAD)
			continue;
		attr_prune(snap[i]->attrs, plugin_host_is_loaded,
		    srv->plugins);
		plugin_host_session_open(srv, snap[i], NULL);
	}
	registry_snapshot_free(snap, n);
}

/*
 * Load and initialise every plugin of cfg in order. On any failure all of
 * them are unloaded again, *cause says why, and -1 is returned; the
 * running set (if any) is not touched either way.
 */
int
plugin_set_load(struct server *srv, const struct ac_config *cfg,
    struct plugin_set **setp, char **cause)
{
	const struct ac_plugin_section	*ps;
	struct plugin_set		*set;
	struct ac_plugin		*p;
	size_t				 i;

	*setp = NULL;
	set = ac_xcalloc(1, sizeof *set);
	set->plugins = ac_xcalloc(cfg->nplugins + 1, sizeof *set->plugins);
	set->key = cfg->key;
	set->limits.max_header_len = cfg->max_header_size;
	set->limits.max_content_len = cfg->max_content_size;

	/* Open and check them all before initialising any. */
	for (i = 0; i < cfg->nplugins; i++) {
		if (plugin_open(srv, &cfg->plugins[i], &p, cause) == -1)
			goto fail;
		p->index = i;
		p->set = set;
		set->plugins[set->n++] = p;
	}
	for (i = 0; i < set->n; i++) {
		p = set->plugins[i];
		ps = config_find_section(cfg, p->name);
		if (p->desc->init(p, &plugin_host_api,
		    ps != NULL ? ps->opts : NULL, ps != NULL ? ps->nopts : 0,
		    &p->state) != 0) {
			ac_xasprintf(cause, "plugin %s: init failed", p->name);
			goto fail;
		}
		p->inited = 1;
		log_debug("plugin %s loaded: %s %s (%s, API %u, descriptor "
		    "%u bytes)", p->name,
		    p->desc->name != NULL ? p->desc->name : "?",
		    p->desc->version != NULL ? p->desc->version : "?",
		    p->path, p->desc->api_version, p->desc->struct_size);
	}
	/* Every interface of the chain is published: let them meet. */
	for (i = 0; i < set->n; i++) {
		p = set->plugins[i];
		if (p->desc->ready != NULL && p->desc->ready(p->state) != 0) {
			ac_xasprintf(cause, "plugin %s: not ready (see its "
			    "messages above)", p->name);
			goto fail;
		}
	}
	/* Only a chain that loads is counted, so failed reloads add no
	 * plugins to the metrics. */
	for (i = 0; i < set->n; i++) {
		p = set->plugins[i];
		p->stats = stats_plugin(&srv->plugin_stats, p->name);
	}
	*setp = set;
	return (0);

fail:
	plugin_set_free(srv, set);
	return (-1);
}

/*
 * Tell every plugin that a session completed its handshake with ack (or,
 * ack NULL, that a reloaded chain meets an open session).
 */
void
plugin_host_session_open(struct server *srv, struct ac_session *s,
    const struct ac_message *ack)
{
	struct plugin_set	*set = srv->plugins;
	struct ac_plugin	*p;
	size_t			 i;

	s->flags |= AC_SESS_OPENED;
	srv->ack_session = ack != NULL ? s : NULL;
	srv->ack_msg = ack;
	for (i = 0; set != NULL && i < set->n; i++) {
		p = set->plugins[i];
		if (p->desc->session_open != NULL)
			p->desc->session_open(p->state, s);
		if (s->flags & AC_SESS_DEAD)
			break;
	}
	srv->ack_session = NULL;
	srv->ack_msg = NULL;
}

/* Tell every plugin that a session is closing. */
void
plugin_host_session_close(struct server *srv, struct ac_session *s,
    const char *reason)
{
	struct plugin_set	*set = srv->plugins;
	struct ac_plugin	*p;
	size_t			 i;

	for (i = 0; set != NULL && i < set->n; i++) {
		p = set->plugins[i];
		if (p->desc->session_close != NULL)
			p->desc->session_close(p->state, s, reason);
	}
	/* Its queued jobs will not run; its attributes go with it. */
	worker_cancel_session(srv->workers, s);
	attr_free(s->attrs);
	s->attrs = NULL;
}

/* Let the running plugins update their metrics before a scrape. */
void
plugin_host_collect(struct server *srv)
{
	struct plugin_set	*set = srv->plugins;
	struct ac_plugin	*p;
	size_t			 i;

	for (i = 0; set != NULL && i < set->n; i++) {
		p = set->plugins[i];
		if (p->desc->collect != NULL)
			p->desc->collect(p->state);
	}
}

/*
 * Run a message or chunk through the chain, in order, until one stops.
 * Each call is timed with the monotonic clock (a vDSO call, some tens of
 * nanoseconds) for the per-plugin and whole-chain histograms.
 */
void
plugin_host_message(struct server *srv, struct ac_session *from,
    const struct ac_message *msg, struct ac_frame *f)
{
	struct plugin_set	*set = srv->plugins;
	struct ac_plugin	*p;
	struct timespec		 t0, t1;
	uint64_t		 ns, chain = 0;
	size_t			 i;
	int			 r, called = 0;

	for (i = 0; set != NULL && i < set->n; i++) {
		p = set->plugins[i];
		if (p->desc->process_message == NULL)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = p->desc->process_message(p->state, from, msg, f);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns = stats_elapsed(&t0, &t1);
		chain += ns;
		called = 1;
		if (p->stats != NULL) {
			p->stats->calls++;
			stats_observe(&p->stats->time, ns);
		}
		if (r < 0) {
			srv->stats.plugin_errors++;
			if (p->stats != NULL)
				p->stats->errors++;
			log_warnx("plugin %s: process_message failed (%d) for "
			    "session %s", p->name, r, from->id);
		} else if (r == AC_PLUGIN_STOP)
			break;
		if (from->flags & AC_SESS_DEAD)
			break;
	}
	if (called)
		stats_observe(&srv->stats.chain, chain);
}
