/*
 * presence.c - who is where: this server's sessions written to the
 * presence bucket, the other servers' read from it and told to chat, and
 * which servers are alive (heartbeats).
 *
 * Writing. chat tells every change of a local session's nick or rooms
 * (cluster->presence) and its close (cluster->quit). Each session's entry
 * in the bucket (key: its id) is its whole state, as JSON: node, instance,
 * nick, rooms in join order, or `quit` and the close reason. Changes are
 * gathered and written by one job at a time, asynchronously published
 * and then waited for as a batch, so a burst (a handshake that joins
 * twenty rooms, a thousand sessions coming back after a restart) is one
 * write per session, not one round trip per change. Entries expire after
 * CLUSTER_PRESENCE_TTL: each is written again every
 * CLUSTER_PRESENCE_REFRESH while its session lives, and a quit entry is
 * left to expire. After a reconnect every entry is written again.
 *
 * Reading. The bucket's watch (link.c) gives the last entry of every key,
 * then every change. Each remote session is kept here as the bucket has
 * it, and told to chat (listener.remote) while its instance is alive;
 * chat turns changes into join, part, nick and quit events (none for the
 * first picture, which the watch gives before any change).
 *
 * Liveness. Every node publishes a heartbeat (node name, instance id,
 * start time) every `heartbeat`. An instance not heard from for
 * node_timeout, while this node's link has been up at least that long
 * (an outage of our own proves nothing about others), is dead; so is one
 * whose node name comes back with a later start (a restart), and, at
 * once, any earlier instance of this node's own name. A dead instance's
 * sessions quit with the reason "node-down" (chat tells their rooms'
 * members), and its nick claims are deleted (nick.c). An instance heard
 * again is alive again, and its sessions come back.
 *
 * Why one file past 700 lines: writing, reading and liveness share the
 * tables of remote sessions and instances and the watch's first-picture
 * state, and each changes what the others do (a dead instance's sessions
 * quit, a revived one's come back, our own entries are skipped). Apart,
 * the three would share those tables through cluster.h for nothing but
 * each other.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "cluster.h"

/* Sessions written per job, at most. */
#define PRESENCE_BATCH	2048

/* A local session's entry. */
struct lsess {
	char		 id[CLUSTER_ID_MAX + 1];
	char		*value;		/* the JSON as last set */
	int		 dirty;		/* not written since it changed */
	int		 quit;		/* gone: drop once written */
	struct timespec	 written;	/* monotonic */
};

/* A remote session, as its bucket entry says. */
struct rsess {
	char		 id[CLUSTER_ID_MAX + 1];
	char		 node[CLUSTER_NODE_MAX + 1];
	char		 inst[CLUSTER_INST_LEN + 1];
	char		 nick[CLUSTER_NICK_MAX + 1];
	char		**rooms;
	size_t		 nrooms;
	int		 reported;	/* chat knows it */
	uint64_t	 gen;		/* the watch's pass that saw it */
};

/* An instance of a node. */
struct inst {
	char		 inst[CLUSTER_INST_LEN + 1];
	char		 node[CLUSTER_NODE_MAX + 1];
	int64_t		 start;		/* ms since the epoch, 0: unknown */
	int		 heard;
	int		 dead;
	struct timespec	 last;		/* heard, or first noted */
};

/* A write job. */
struct presence_job {
	struct link	*link;
	char		*prefix;
	size_t		 n;
	char		**ids;
	char		**values;
	int		 failed;
	char		 err[256];
};

/* A heartbeat job. */
struct hb_job {
	struct link	*link;
	char		 subject[160];
	char		 payload[256];
};

static uint64_t	presence_gen;

/* Non-zero when s is a session id: 1 to 36 of 0-9 a-f A-F -. */
static int
presence_valid_id(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CLUSTER_ID_MAX || !((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F') || s[i] == '-'))
			return (0);
	}
	return (i > 0);
}

/* Non-zero when s is an instance id: 16 hex digits. */
static int
presence_valid_inst(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CLUSTER_INST_LEN || !((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return (0);
	}
	return (i == CLUSTER_INST_LEN);
}

/* A string member of a JSON object, or NULL. */
static const char *
presence_str(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return (NULL);
	return (json_object_get_string(v));
}

/* Free a remote session. */
static void
presence_rsess_free(struct rsess *r)
{
	size_t	i;

	for (i = 0; i < r->nrooms; i++)
		free(r->rooms[i]);
	free(r->rooms);
	free(r);
}

/* Tell chat of a remote session as it is now. */
static void
presence_report(struct cluster *cl, struct rsess *r, int initial)
{
	struct ac_cluster_session	cs;

	if (!cl->listening || cl->listener.remote == NULL)
		return;
	memset(&cs, 0, sizeof cs);
	cs.id = r->id;
	cs.node = r->node;
	cs.nick = r->nick;
	cs.rooms = (const char *const *)r->rooms;
	cs.nrooms = r->nrooms;
	cs.initial = initial;
	r->reported = 1;
	cl->listener.remote(cl->listener.arg, &cs);
}

/* Tell chat a remote session is gone (if it knew it). */
static void
presence_unreport(struct cluster *cl, struct rsess *r, const char *reason)
{
	if (!r->reported)
		return;
	r->reported = 0;
	if (cl->listening && cl->listener.remote_gone != NULL)
		cl->listener.remote_gone(cl->listener.arg, r->id, reason);
}

/*
 * The instance of an id, noted if new (from a heartbeat, a presence entry
 * or a nick claim). An instance is born "not heard": it has node_timeout
 * from now (or from the link coming up) to be heard before it counts as
 * dead.
 */
static struct inst *
presence_inst(struct cluster *cl, const char *id, const char *node)
{
	struct inst	*in;

	if ((in = table_get(&cl->insts, id)) != NULL)
		return (in);
	if ((in = calloc(1, sizeof *in)) == NULL)
		abort();
	snprintf(in->inst, sizeof in->inst, "%s", id);
	snprintf(in->node, sizeof in->node, "%s", node != NULL ? node : "");
	clock_gettime(CLOCK_MONOTONIC, &in->last);
	table_put(&cl->insts, in->inst, in);
	/* An earlier instance of this node's own name: gone. */
	if (node != NULL && strcmp(node, cl->opt.node) == 0 &&
	    strcmp(id, cl->instance) != 0 && !in->heard)
		in->dead = 1;
	return (in);
}

/* An instance is gone: its sessions quit, its claims go. */
static void
presence_kill(struct cluster *cl, struct inst *in, const char *why)
{
	struct rsess	**all;
	size_t		  n, i, quits = 0;

	if (in->dead)
		return;
	in->dead = 1;
	cl->counts[CC_NODES_LOST]++;
	all = (struct rsess **)table_values(&cl->remotes, &n);
	for (i = 0; i < n; i++) {
		if (strcmp(all[i]->inst, in->inst) != 0 || !all[i]->reported)
			continue;
		presence_unreport(cl, all[i], AC_CLUSTER_NODE_DOWN);
		quits++;
	}
	free(all);
	cl->host->log(cl->p, AC_LOG_INFO, "node %s (instance %s) is gone "
	    "(%s): its %zu session%s quit here", in->node[0] != '\0' ?
	    in->node : "?", in->inst, why, quits, quits == 1 ? "" : "s");
	nick_instance_dead(cl, in->inst);
}

/* An instance heard again: its sessions are back. */
static void
presence_revive(struct cluster *cl, struct inst *in)
{
	struct rsess	**all;
	size_t		  n, i;

	in->dead = 0;
	all = (struct rsess **)table_values(&cl->remotes, &n);
	for (i = 0; i < n; i++) {
		if (strcmp(all[i]->inst, in->inst) == 0)
			presence_report(cl, all[i], 0);
	}
	free(all);
	cl->host->log(cl->p, AC_LOG_INFO, "node %s (instance %s) is back",
	    in->node, in->inst);
}

/* What is known of an instance: INST_ALIVE, INST_DEAD or INST_UNKNOWN. */
int
presence_inst_state(struct cluster *cl, const char *id)
{
	struct inst	*in;

	if (strcmp(id, cl->instance) == 0)
		return (INST_ALIVE);
	if ((in = table_get(&cl->insts, id)) == NULL)
		return (INST_UNKNOWN);
	if (in->dead)
		return (INST_DEAD);
	return (in->heard ? INST_ALIVE : INST_UNKNOWN);
}

/* The node of a remote session, or NULL. */
const char *
presence_node_of(struct cluster *cl, const char *id)
{
	struct rsess	*r;

	if ((r = table_get(&cl->remotes, id)) == NULL)
		return (NULL);
	return (r->node);
}

/* Note an instance seen in a nick claim (nick.c). */
void
presence_note_inst(struct cluster *cl, const char *id, const char *node)
{
	if (presence_valid_inst(id) && strcmp(id, cl->instance) != 0)
		presence_inst(cl, id, node);
}

/* A heartbeat (loop thread). */
void
presence_hb(struct cluster *cl, struct mail *m)
{
	struct json_object	*o;
	struct inst		*in, **all;
	const char		*node, *id;
	struct json_object	*js;
	int64_t			 start = 0;
	size_t			 n, i;
	static time_t		 twin_logged;

	o = cluster_json(m->data, m->len);
	if (o == NULL) {
		cluster_refuse(cl, "a heartbeat", NULL, "not a JSON object");
		return;
	}
	node = presence_str(o, "node");
	id = presence_str(o, "inst");
	if (json_object_object_get_ex(o, "start", &js) &&
	    json_object_is_type(js, json_type_int))
		start = json_object_get_int64(js);
	if (node == NULL || id == NULL || !presence_valid_inst(id) ||
	    strlen(node) > CLUSTER_NODE_MAX) {
		cluster_refuse(cl, "a heartbeat", NULL, "no node name and "
		    "instance, or not of their form");
		json_object_put(o);
		return;
	}
	if (strcmp(id, cl->instance) == 0) {
		json_object_put(o);
		return;		/* our own */
	}
	if (strcmp(node, cl->opt.node) == 0 && start > cl->start_ms &&
	    time(NULL) - twin_logged >= 60) {
		twin_logged = time(NULL);
		cl->host->log(cl->p, AC_LOG_ERROR, "another live server calls "
		    "itself %s (instance %s): node names must be unique in the "
		    "cluster, or their nicks and sessions get mixed up", node,
		    id);
	}
	in = presence_inst(cl, id, node);
	snprintf(in->node, sizeof in->node, "%s", node);
	in->start = start;
	in->heard = 1;
	clock_gettime(CLOCK_MONOTONIC, &in->last);
	if (in->dead && !(strcmp(node, cl->opt.node) == 0 &&
	    start < cl->start_ms))
		presence_revive(cl, in);
	/* An older instance of the same node: restarted, so gone. */
	all = (struct inst **)table_values(&cl->insts, &n);
	for (i = 0; i < n; i++) {
		if (all[i] != in && strcmp(all[i]->node, node) == 0 &&
		    all[i]->start <= start && !all[i]->dead)
			presence_kill(cl, all[i], "restarted");
	}
	free(all);
	json_object_put(o);
}

/*
 * An entry of the presence bucket (loop thread): a remote session
 * appeared, changed or quit. Our own instance's entries are ours.
 */
void
presence_mail(struct cluster *cl, struct mail *m)
{
	struct json_object	*o = NULL, *jr, *e;
	struct rsess		*r;
	struct inst		*in;
	const char		*node, *id, *nick, *quit, *name;
	size_t			 i, n;

	if (!presence_valid_id(m->subject)) {
		cluster_refuse(cl, "a presence entry", m->subject,
		    "its key is not a session id");
		goto out;
	}
	r = table_get(&cl->remotes, m->subject);
	if (!m->deleted && m->len > 0 &&
	    (o = cluster_json(m->data, m->len)) == NULL)
		cluster_refuse(cl, "a presence entry", m->subject,
		    "not a JSON object; taken as the session's end");
	if (o == NULL) {
		if (r != NULL) {
			presence_unreport(cl, r, "quit");
			presence_rsess_free(table_remove(&cl->remotes,
			    m->subject));
		}
		goto out;
	}
	node = presence_str(o, "node");
	id = presence_str(o, "inst");
	nick = presence_str(o, "nick");
	quit = presence_str(o, "quit");
	if (node == NULL || id == NULL || nick == NULL ||
	    !presence_valid_inst(id) || strlen(node) > CLUSTER_NODE_MAX ||
	    strlen(nick) > CLUSTER_NICK_MAX) {
		cluster_refuse(cl, "a presence entry", m->subject, "no node, "
		    "instance or nick, or one not of its form");
		goto out;
	}
	if (strcmp(id, cl->instance) == 0)
		goto out;
	in = presence_inst(cl, id, node);
	if (quit != NULL) {
		if (r != NULL) {
			presence_unreport(cl, r, quit);
			presence_rsess_free(table_remove(&cl->remotes,
			    m->subject));
		}
		goto out;
	}
	if (r == NULL) {
		if ((r = calloc(1, sizeof *r)) == NULL)
			abort();
		snprintf(r->id, sizeof r->id, "%s", m->subject);
		table_put(&cl->remotes, r->id, r);
	}
	r->gen = presence_gen;
	snprintf(r->node, sizeof r->node, "%s", node);
	snprintf(r->inst, sizeof r->inst, "%s", id);
	snprintf(r->nick, sizeof r->nick, "%s", nick);
	for (i = 0; i < r->nrooms; i++)
		free(r->rooms[i]);
	free(r->rooms);
	r->rooms = NULL;
	r->nrooms = 0;
	if (json_object_object_get_ex(o, "rooms", &jr) &&
	    json_object_is_type(jr, json_type_array)) {
		n = json_object_array_length(jr);
		if ((r->rooms = calloc(n + 1, sizeof *r->rooms)) == NULL)
			abort();
		for (i = 0; i < n; i++) {
			e = json_object_array_get_idx(jr, i);
			if (!json_object_is_type(e, json_type_string) ||
			    !roomname_valid_string(name = json_object_get_string(e)))
				continue;
			if ((r->rooms[r->nrooms] = strdup(name)) == NULL)
				abort();
			r->nrooms++;
		}
	}
	if (!in->dead)
		presence_report(cl, r, cl->presence_initial);
out:
	if (cl->presence_initial && m->pending == 0)
		presence_initial_done(cl);
	if (o != NULL)
		json_object_put(o);
}

/*
 * A watch is about to begin (a new connection): its first picture is the
 * whole bucket, without events; a remote session it no longer holds is
 * gone. Called before the watch is made, so that none of its entries is
 * taken for a change.
 */
void
presence_begin(struct cluster *cl)
{
	presence_gen++;
	cl->presence_initial = 1;
}

/* The watch began; on an empty bucket its first picture is complete. */
void
presence_initial(struct cluster *cl, int empty)
{
	if (empty && cl->presence_initial)
		presence_initial_done(cl);
}

/* The watch's first picture is complete: sweep what it did not hold. */
void
presence_initial_done(struct cluster *cl)
{
	struct rsess	**all;
	size_t		  n, i;

	cl->presence_initial = 0;
	all = (struct rsess **)table_values(&cl->remotes, &n);
	for (i = 0; i < n; i++) {
		if (all[i]->gen == presence_gen)
			continue;
		presence_unreport(cl, all[i], "quit");
		presence_rsess_free(table_remove(&cl->remotes, all[i]->id));
	}
	free(all);
}

/* The write job: publish the batch, then wait for its acknowledgements. */
static void
presence_work(void *arg)
{
	struct presence_job	*pj = arg;
	jsPubOptions		 po;
	char			 subject[256];
	natsStatus		 s = NATS_OK;
	const char		*text;
	size_t			 i;

	for (i = 0; i < pj->n && s == NATS_OK; i++) {
		snprintf(subject, sizeof subject, "%s%s", pj->prefix,
		    pj->ids[i]);
		s = js_PublishAsync(pj->link->js, subject, pj->values[i],
		    (int)strlen(pj->values[i]), NULL);
	}
	if (s == NATS_OK) {
		jsPubOptions_Init(&po);
		po.MaxWait = CLUSTER_REQUEST_WAIT;
		s = js_PublishAsyncComplete(pj->link->js, &po);
	}
	if (s != NATS_OK) {
		text = nats_GetLastError(NULL);
		pj->failed = 1;
		snprintf(pj->err, sizeof pj->err, "%s", text != NULL &&
		    *text != '\0' ? text : natsStatus_GetText(s));
	}
	pthread_mutex_lock(&pj->link->mu);
	if (pj->link->pub_errors != 0)
		pj->failed = 1;
	pj->link->pub_errors = 0;
	pthread_mutex_unlock(&pj->link->mu);
}

/* Free a write job. */
static void
presence_job_free(struct presence_job *pj)
{
	size_t	i;

	for (i = 0; i < pj->n; i++) {
		free(pj->ids[i]);
		free(pj->values[i]);
	}
	free(pj->ids);
	free(pj->values);
	free(pj->prefix);
	free(pj);
}

static void	presence_flush(struct cluster *);

/* The write job is done: what failed is written again later. */
static void
presence_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct cluster		*cl = state;
	struct presence_job	*pj = arg;
	struct lsess		*ls;
	size_t			 i;
	int			 failed;
	static time_t		 logged;

	(void)s;
	cl->presence_busy = 0;
	link_release(cl, pj->link);
	if (status != AC_JOB_DONE)
		pj->failed = 1;
	for (i = 0; i < pj->n; i++) {
		if ((ls = table_get(&cl->locals, pj->ids[i])) == NULL)
			continue;
		if (pj->failed) {
			ls->dirty = 1;
			continue;
		}
		if (ls->dirty || strcmp(ls->value, pj->values[i]) != 0)
			continue;	/* changed again meanwhile */
		cl->counts[CC_PRESENCE_WRITES]++;
		if (ls->quit) {
			table_remove(&cl->locals, ls->id);
			free(ls->value);
			free(ls);
		}
	}
	failed = pj->failed;
	if (failed && time(NULL) - logged >= 60) {
		logged = time(NULL);
		cl->host->log(cl->p, AC_LOG_WARNING, "writing presence: %s; "
		    "trying again", pj->err[0] != '\0' ? pj->err :
		    "a publish failed");
	}
	presence_job_free(pj);
	/* More changed meanwhile: on; after a failure, at the next tick. */
	if (!failed)
		presence_flush(cl);
}

/* Write the entries that changed: one job at a time. */
static void
presence_flush(struct cluster *cl)
{
	struct presence_job	*pj;
	struct lsess		**all;
	size_t			  n, i;

	if (cl->presence_busy || cl->stopping || !link_ready(cl))
		return;
	all = (struct lsess **)table_values(&cl->locals, &n);
	if ((pj = calloc(1, sizeof *pj)) == NULL ||
	    (pj->ids = calloc(n + 1, sizeof *pj->ids)) == NULL ||
	    (pj->values = calloc(n + 1, sizeof *pj->values)) == NULL ||
	    (pj->prefix = strdup(cl->names.presence_prefix)) == NULL)
		abort();
	for (i = 0; i < n && pj->n < PRESENCE_BATCH; i++) {
		if (!all[i]->dirty)
			continue;
		if ((pj->ids[pj->n] = strdup(all[i]->id)) == NULL ||
		    (pj->values[pj->n] = strdup(all[i]->value)) == NULL)
			abort();
		all[i]->dirty = 0;
		clock_gettime(CLOCK_MONOTONIC, &all[i]->written);
		pj->n++;
	}
	free(all);
	if (pj->n == 0 || link_submit(cl, NULL, AC_JOB_NO_CANCEL,
	    presence_work, presence_done, pj, &pj->link) != 0) {
		for (i = 0; i < pj->n; i++) {
			struct lsess *ls = table_get(&cl->locals, pj->ids[i]);

			if (ls != NULL)
				ls->dirty = 1;
		}
		presence_job_free(pj);
		return;
	}
	cl->presence_busy = 1;
}

/* The next loop turn: write what this one changed. */
static void
presence_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	presence_flush(arg);
}

/* Write soon: once the changes of this loop turn are all in. */
static void
presence_soon(struct cluster *cl)
{
	struct timeval	tv = { 0, 0 };

	if (cl->presence_ev == NULL && (cl->presence_ev =
	    evtimer_new(cl->host->event_base(cl->p), presence_flush_cb,
	    cl)) == NULL)
		return;		/* the tick writes it */
	if (!evtimer_pending(cl->presence_ev, NULL))
		evtimer_add(cl->presence_ev, &tv);
}

/* Set a local session's entry to value (taken), to be written. */
static void
presence_set(struct cluster *cl, const char *id, char *value, int quit)
{
	struct lsess	*ls;

	if ((ls = table_get(&cl->locals, id)) == NULL) {
		if (quit) {
			/* Never written, never seen: nothing to say. */
			free(value);
			return;
		}
		if ((ls = calloc(1, sizeof *ls)) == NULL)
			abort();
		snprintf(ls->id, sizeof ls->id, "%s", id);
		table_put(&cl->locals, ls->id, ls);
	} else if (ls->value != NULL && strcmp(ls->value, value) == 0 &&
	    !quit) {
		free(value);
		return;
	}
	free(ls->value);
	ls->value = value;
	ls->quit = quit;
	ls->dirty = 1;
	presence_soon(cl);
}

/* cluster->presence: a local session's nick or rooms changed. */
void
presence_local(struct cluster *cl, const struct ac_cluster_session *s)
{
	struct json_object	*o, *rooms;
	char			*value;
	size_t			 i;

	if (s->id == NULL || !presence_valid_id(s->id) || s->nick == NULL)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_string(cl->opt.node));
	json_object_object_add(o, "inst", json_object_new_string(cl->instance));
	json_object_object_add(o, "nick", json_object_new_string(s->nick));
	rooms = json_object_new_array();
	for (i = 0; i < s->nrooms; i++)
		json_object_array_add(rooms,
		    json_object_new_string(s->rooms[i]));
	json_object_object_add(o, "rooms", rooms);
	if ((value = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN))) == NULL)
		abort();
	json_object_put(o);
	presence_set(cl, s->id, value, 0);
}

/* cluster->quit: a local session closed. */
void
presence_quit(struct cluster *cl, const char *id, const char *reason)
{
	struct json_object	*o;
	struct lsess		*ls;
	char			*value;

	if (!presence_valid_id(id) || (ls = table_get(&cl->locals, id)) ==
	    NULL)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_string(cl->opt.node));
	json_object_object_add(o, "inst", json_object_new_string(cl->instance));
	json_object_object_add(o, "nick", json_object_new_string(""));
	json_object_object_add(o, "quit", json_object_new_string(reason));
	if ((value = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN))) == NULL)
		abort();
	json_object_put(o);
	presence_set(cl, id, value, 1);
}

/* The heartbeat job: publish it. */
static void
presence_hb_work(void *arg)
{
	struct hb_job	*hj = arg;

	natsConnection_PublishString(hj->link->nc, hj->subject, hj->payload);
}

/* The heartbeat job is done. */
static void
presence_hb_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct hb_job	*hj = arg;

	(void)s;
	(void)status;
	link_release(state, hj->link);
	free(hj);
}

/* Publish this node's heartbeat. */
static void
presence_beat(struct cluster *cl)
{
	struct hb_job	*hj;

	if (!link_ready(cl) || (hj = calloc(1, sizeof *hj)) == NULL)
		return;
	snprintf(hj->subject, sizeof hj->subject, "%s", cl->names.hb);
	snprintf(hj->payload, sizeof hj->payload, "{\"node\":\"%s\","
	    "\"inst\":\"%s\",\"start\":%lld}", cl->opt.node, cl->instance,
	    (long long)cl->start_ms);
	if (link_submit(cl, NULL, 0, presence_hb_work, presence_hb_done, hj,
	    &hj->link) != 0)
		free(hj);
}

/*
 * Every heartbeat: beat; judge the other instances (only once this
 * node's own link has been up for node_timeout); write entries due for
 * their refresh, and what failed before.
 */
void
presence_tick(struct cluster *cl)
{
	struct inst	**all;
	struct lsess	**locals;
	size_t		  n, i;
	uint64_t	  timeout = cl->opt.node_timeout * 1000;
	uint64_t	  up = link_up_for(cl), silent;

	presence_beat(cl);
	if (up >= timeout) {
		all = (struct inst **)table_values(&cl->insts, &n);
		for (i = 0; i < n; i++) {
			if (all[i]->dead)
				continue;
			silent = cluster_elapsed_ms(&all[i]->last);
			if (silent > up)
				silent = up;	/* since we could hear it */
			if (silent >= timeout)
				presence_kill(cl, all[i], all[i]->heard ?
				    "no heartbeat" : "never heard");
		}
		free(all);
	}
	locals = (struct lsess **)table_values(&cl->locals, &n);
	for (i = 0; i < n; i++) {
		if (!locals[i]->dirty && cluster_elapsed_ms(
		    &locals[i]->written) >= CLUSTER_PRESENCE_REFRESH * 1000)
			locals[i]->dirty = 1;
	}
	free(locals);
	presence_flush(cl);
}

/* The link is ready (again): every local entry is written again. */
void
presence_link_up(struct cluster *cl)
{
	struct lsess	**locals;
	size_t		  n, i;

	locals = (struct lsess **)table_values(&cl->locals, &n);
	for (i = 0; i < n; i++)
		locals[i]->dirty = 1;
	free(locals);
	presence_beat(cl);
	presence_flush(cl);
}

/* How many other instances are alive (heard, not dead). */
size_t
presence_nodes_alive(struct cluster *cl)
{
	struct inst	**all;
	size_t		  n, i, alive = 0;

	all = (struct inst **)table_values(&cl->insts, &n);
	for (i = 0; i < n; i++)
		alive += all[i]->heard && !all[i]->dead;
	free(all);
	return (alive);
}

/* How many remote sessions chat knows. */
size_t
presence_remote_count(struct cluster *cl)
{
	struct rsess	**all;
	size_t		  n, i, k = 0;

	all = (struct rsess **)table_values(&cl->remotes, &n);
	for (i = 0; i < n; i++)
		k += all[i]->reported;
	free(all);
	return (k);
}

/* The plugin stops: free the tables (nothing is told to chat). */
void
presence_free_all(struct cluster *cl)
{
	void	**all;
	size_t	  n, i;

	all = table_values(&cl->locals, &n);
	for (i = 0; i < n; i++) {
		free(((struct lsess *)all[i])->value);
		free(all[i]);
	}
	free(all);
	table_free(&cl->locals);
	all = table_values(&cl->remotes, &n);
	for (i = 0; i < n; i++)
		presence_rsess_free(all[i]);
	free(all);
	table_free(&cl->remotes);
	all = table_values(&cl->insts, &n);
	for (i = 0; i < n; i++)
		free(all[i]);
	free(all);
	table_free(&cl->insts);
}
