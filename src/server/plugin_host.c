/*
 * plugin_host.c - the host side of include/asyncchat/plugin.h: load each
 * plugin named in [plugins] (dlopen), check its ABI before touching
 * anything else, give it its [plugin.NAME] section, run the chain for
 * every message, and offer the host functions of struct ac_host_api.
 *
 * A plugin path is followed through symlinks (Debian links plugin
 * directories about) but what it names must be a regular file.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
static const struct ac_limits *host_limits(struct ac_plugin *);

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
 * old key, freed once the reload completes.
 */
static const struct ac_key *
host_key(struct ac_plugin *p)
{
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

/* Unload one plugin: fini if it was initialised, then dlclose. */
static void
plugin_unload(struct ac_plugin *p)
{
	if (p->inited && p->desc->fini != NULL)
		p->desc->fini(p->state);
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
	if (d->struct_size != sizeof(struct ac_plugin_descriptor)) {
		ac_xasprintf(cause, "plugin %s (%s): descriptor size %u, "
		    "server expects %zu: rebuild the plugin against this "
		    "asyncchat", p->name, p->path, d->struct_size,
		    sizeof(struct ac_plugin_descriptor));
		goto fail;
	}
	if (d->api_version > AC_PLUGIN_API_VERSION) {
		ac_xasprintf(cause, "plugin %s (%s): needs plugin API version "
		    "%u, server has %u: upgrade asyncchat", p->name, p->path,
		    d->api_version, AC_PLUGIN_API_VERSION);
		goto fail;
	}
	if (d->init == NULL) {
		ac_xasprintf(cause, "plugin %s (%s): the descriptor has no "
		    "init function", p->name, p->path);
		goto fail;
	}
	p->desc = d;
	*pp = p;
	return (0);

fail:
	plugin_unload(p);
	return (-1);
}

/* Free a set: slots on every session, fini in reverse order, dlclose. */
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
	for (i = set->n; i > 0; i--)
		plugin_unload(set->plugins[i - 1]);
	free(set->plugins);
	free(set);
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
		log_debug("plugin %s loaded: %s %s (%s)", p->name,
		    p->desc->name != NULL ? p->desc->name : "?",
		    p->desc->version != NULL ? p->desc->version : "?",
		    p->path);
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

/* Tell every plugin that a session completed its handshake. */
void
plugin_host_session_open(struct server *srv, struct ac_session *s)
{
	struct plugin_set	*set = srv->plugins;
	struct ac_plugin	*p;
	size_t			 i;

	s->flags |= AC_SESS_OPENED;
	for (i = 0; set != NULL && i < set->n; i++) {
		p = set->plugins[i];
		if (p->desc->session_open != NULL)
			p->desc->session_open(p->state, s);
		if (s->flags & AC_SESS_DEAD)
			break;
	}
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
