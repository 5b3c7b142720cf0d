/*
 * plugin_set.c - the chain: load each plugin named in [plugins] (dlopen),
 * check its ABI before touching anything else, give it its
 * [plugin.NAME] section and the host functions (plugin_host.c), and run
 * session openings, closings and every message through the plugins in
 * order; unload a chain as a whole.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

/* The size of the first API's descriptor: the least a plugin may have. */
#define PLUGIN_DESC_MIN_SIZE	offsetof(struct ac_plugin_descriptor, ready)

/*
 * The first API whose plugins read a message's header object through
 * ac_message_header(): dispatch.c decodes with AC_DECODE_LAZY_HEADER, so
 * msg->header is NULL until something asks. A plugin declaring an older
 * API may read the member directly, and gets it built before each
 * process_message and in session_ack (plugin_set_header); once built, the
 * message keeps it.
 */
#define PLUGIN_API_LAZY_HEADER	3

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
void
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
plugin_set_drain(struct server *srv)
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
plugin_set_is_loaded(const char *name, void *arg)
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
plugin_set_reloaded(struct server *srv)
{
	struct ac_session	**snap;
	size_t			  i, n;

	snap = registry_snapshot(&srv->reg, 1, NULL, &n);
	for (i = 0; i < n; i++) {
		if (snap[i]->flags & AC_SESS_DEAD)
			continue;
		attr_prune(snap[i]->attrs, plugin_set_is_loaded,
		    srv->plugins);
		plugin_set_session_open(srv, snap[i], NULL);
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

/* Build msg's header object for a plugin that reads the member. */
void
plugin_set_header(struct ac_plugin *p, const struct ac_message *msg)
{
	if (msg != NULL && msg->header == NULL &&
	    p->desc->api_version < PLUGIN_API_LAZY_HEADER &&
	    ac_message_header(msg) == NULL)
		log_warnx("plugin %s: no memory for a header object",
		    p->name);
}

/*
 * Tell every plugin that a session completed its handshake with ack (or,
 * ack NULL, that a reloaded chain meets an open session).
 */
void
plugin_set_session_open(struct server *srv, struct ac_session *s,
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
plugin_set_session_close(struct server *srv, struct ac_session *s,
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
plugin_set_collect(struct server *srv)
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
 * While the metrics endpoint is on, each call is timed with the monotonic
 * clock for the per-plugin and whole-chain histograms, one clock read
 * after each plugin (the end of one call is the start of the next): a
 * read costs some tens of nanoseconds, a tenth of a small message's
 * whole cost, and nothing but /metrics shows the histograms.
 */
void
plugin_set_message(struct server *srv, struct ac_session *from,
    const struct ac_message *msg, struct ac_frame *f)
{
	struct plugin_set	*set = srv->plugins;
	struct ac_plugin	*p;
	struct timespec		 t0, t1;
	uint64_t		 ns, chain = 0;
	size_t			 i;
	int			 r, called = 0, timed = srv->metrics != NULL;

	if (timed)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; set != NULL && i < set->n; i++) {
		p = set->plugins[i];
		if (p->desc->process_message == NULL)
			continue;
		plugin_set_header(p, msg);
		r = p->desc->process_message(p->state, from, msg, f);
		called = 1;
		if (p->stats != NULL)
			p->stats->calls++;
		if (timed) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			ns = stats_elapsed(&t0, &t1);
			chain += ns;
			t0 = t1;
			if (p->stats != NULL)
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
	if (called && timed)
		stats_observe(&srv->stats.chain, chain);
}
