/*
 * plugin_host.c - the host side of include/asyncchat/plugin.h: the
 * functions of struct ac_host_api, which is all a plugin can call of the
 * server (plugin_set.c loads the plugins and runs the chain).
 *
 * Every function here checks what a plugin hands it (a session that is
 * gone or not yet open, a type out of range, a retired chain) rather than
 * trust it: a plugin's mistake is refused, not a crash.
 */
#include "config.h"

#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

/* Header JSON up to this size is built on the stack (frame_new). */
#define HOST_HEADER_SMALL	1024

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
static int	host_send_list(struct ac_plugin *, struct ac_session *const *,
		    size_t, enum ac_msg_type, const char *,
		    struct json_object *, const void *, size_t);
static int	host_relay_list(struct ac_plugin *, const struct ac_frame *,
		    struct ac_session *const *, size_t);

/* What plugins get in init: every host function, in plugin.h's order. */
const struct ac_host_api plugin_host_api = {
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
	.relay_list = host_relay_list,
	.send_list = host_send_list,
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

/* The session's transport: "tcp", "unix" or "tls". */
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
	size_t			  n;
	int			  count;

	snap = registry_recipients(&srv->reg, except, &n);
	count = (int)session_queue_frames(srv, snap, n, f);
	registry_recipients_done(&srv->reg, snap);
	return (count);
}

/*
 * Queue a frame to each session of a plugin's list, counted once. The
 * sessions are the plugin's: a closing one (or NULL) is skipped, as
 * relay refuses it.
 */
static int
host_relay_list(struct ac_plugin *p, const struct ac_frame *f,
    struct ac_session *const *to, size_t n)
{
	if (f == NULL || to == NULL)
		return (0);
	return ((int)session_queue_frames(p->srv, to, n,
	    (struct ac_frame *)f));
}

/* Send each session of a plugin's list a frame with its own id. */
static int
host_send_list(struct ac_plugin *p, struct ac_session *const *to, size_t n,
    enum ac_msg_type type, const char *content_type,
    struct json_object *extra, const void *content, size_t content_len)
{
	if (to == NULL)
		return (0);
	return ((int)session_send_list(p->srv, to, n, type, content_type,
	    extra, content, content_len));
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

/*
 * The bytes of a frame. A received frame's are still in its sender's
 * input: it takes a copy now, so that the pointer stays good for as long
 * as the plugin holds the frame (plugin.h promises that they never
 * change).
 */
static const uint8_t *
host_frame_bytes(const struct ac_frame *f, size_t *len)
{
	ac_frame_own((struct ac_frame *)f);
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
	plugin_set_header(p, p->srv->ack_msg);
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
 *
 * The header JSON is written straight into the frame's bytes, then the
 * content, then the fixed header over both: through an evbuffer (made,
 * grown, copied out of and freed for every frame) this was a chat room
 * message's every allocation but the frame's own.
 */
static struct ac_frame *
host_frame_new(struct ac_plugin *p, const char *session_id,
    enum ac_msg_type type, const char *content_type,
    struct json_object *extra, const void *content, size_t content_len)
{
	struct server	*srv = p->srv;
	struct ac_frame	*f;
	char		 small[HOST_HEADER_SMALL], *hj = small;
	ssize_t		 hlen;

	if ((unsigned)type >= AC_MSG_TYPE_COUNT || content_len == 0 ||
	    content_len > srv->limits.max_content_len)
		return (NULL);
	hlen = ac_header_json_build(small, sizeof small, type, content_type,
	    session_id, extra);
	if (hlen == -1 || (size_t)hlen > srv->limits.max_header_len ||
	    (size_t)hlen > AC_DEFAULT_MAX_HEADER)
		return (NULL);
	if ((size_t)hlen > sizeof small) {
		hj = ac_xmalloc((size_t)hlen);
		if (ac_header_json_build(hj, (size_t)hlen, type, content_type,
		    session_id, extra) != hlen) {
			free(hj);
			return (NULL);
		}
	}
	f = ac_frame_new(AC_FIXED_HEADER_LEN + (size_t)hlen + content_len,
	    type);
	memcpy(f->bytes + AC_FIXED_HEADER_LEN, hj, (size_t)hlen);
	memcpy(f->bytes + AC_FIXED_HEADER_LEN + hlen, content, content_len);
	ac_frame_seal(host_key(p), f->bytes, (size_t)hlen, content_len);
	if (hj != small)
		free(hj);
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
	st = ac_frame_decode_flags(host_key(p), &p->srv->limits, bytes, len,
	    &consumed, &msg, AC_DECODE_LAZY_HEADER);
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
	/* Frames are the host's: a reference is a count, and a received
	 * frame kept beyond its dispatch takes a copy of its bytes. */
	ac_frame_own((struct ac_frame *)f);
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
