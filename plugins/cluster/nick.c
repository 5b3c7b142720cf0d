/*
 * nick.c - nicks unique across the cluster: one key per nick in use in
 * the nicks bucket (the hex of its folded form), holding the node,
 * instance and session that has it.
 *
 * Claiming is creating the key: a publish with
 * Nats-Expected-Last-Subject-Sequence 0, which the stream lets through
 * for one publisher only, whichever server it is on. (Only 0: for a
 * non-zero expectation nats-server 2.9 checks before it replicates, not
 * as the replicas apply, and two racing publishes may both pass, see
 * append.c; 0 is checked as the message is applied, in the replicated
 * log's order.) So a nick given back leaves no message behind: its claim
 * is removed from the stream (a message delete, by its sequence), not
 * covered by a delete marker, and the key is empty again. If the key is
 * held, its holder decides: this very session (a reload claims again
 * what it has: ours), a live instance (taken), or a dead one (its claim is
 * deleted, then the key created again). An instance neither heard nor yet
 * counted dead (this node started a moment ago) gets the claim tried
 * again every second until it is one or the other.
 *
 * Deleting by sequence deletes exactly one claim: a release never
 * deletes another session's, and when several nodes clean up after a
 * dead one at once, the first delete wins and the others find nothing.
 *
 * The bucket's watch keeps every claim it has seen here (claims), which
 * is what the clean-up after a dead instance walks (a claim deleted since
 * is simply not found), and is also how a session learns that it lost its
 * nick after all: another session's claim of a key we hold means ours was
 * deleted (another node counted us dead during an outage) and taken;
 * chat is told (listener.nick_lost).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster.h"

/* Clean-up deletes out at once, at most. */
#define NICK_JANITORS	4

/* A claim chat asked for and that is not settled yet. */
struct want {
	char			 id[CLUSTER_ID_MAX + 1];
	char			 nick[CLUSTER_NICK_MAX + 1];
	char			 key[2 * CLUSTER_NICK_MAX + 1];
	ac_cluster_done_fn	 done;		/* NULL: ours again, quietly */
	void			*arg;
	int			 busy;
	int			 released;	/* give it back once ours */
	struct timespec		 not_before;	/* monotonic */
};

/* A nick this node holds. */
struct own {
	char		 key[2 * CLUSTER_NICK_MAX + 1];
	char		 id[CLUSTER_ID_MAX + 1];
	char		 nick[CLUSTER_NICK_MAX + 1];
	uint64_t	 rev;
};

/* A claim the bucket holds (its watch). */
struct seen {
	char		 key[2 * CLUSTER_NICK_MAX + 1];
	char		 inst[CLUSTER_INST_LEN + 1];
	char		 id[CLUSTER_ID_MAX + 1];
	uint64_t	 rev;
	int		 cleaning;	/* a delete is out */
};

/* What a claim job found. */
enum nick_result {
	NICK_OURS,		/* rev */
	NICK_HELD,		/* by (inst, id) at rev */
	NICK_RETRY,
};

/* A claim, a release or a clean-up, on a worker. */
struct nick_job {
	struct cluster		*cl;
	struct link		*link;
	char			 subject[384];
	char			 stream[128];
	char			 key[2 * CLUSTER_NICK_MAX + 1];
	char			 id[CLUSTER_ID_MAX + 1];
	char			 inst[CLUSTER_INST_LEN + 1];
	char			*value;		/* a claim's */
	uint64_t		 rev;		/* delete: expected */
	int			 claim;		/* else a delete */
	int			 janitor;	/* a dead one's claim */

	enum nick_result	 result;
	char			 holder_inst[CLUSTER_INST_LEN + 1];
	char			 holder_id[CLUSTER_ID_MAX + 1];
	uint64_t		 held_rev;
	char			 err[256];
};

static void	nick_kick(struct cluster *, struct want *);

/* The key of a nick: the hex of its ASCII-folded bytes. */
static void
nick_key(char *out, size_t outlen, const char *nick)
{
	char	folded[CLUSTER_NICK_MAX + 1];
	size_t	i;

	for (i = 0; nick[i] != '\0' && i < CLUSTER_NICK_MAX; i++)
		folded[i] = nick[i] >= 'A' && nick[i] <= 'Z' ?
		    (char)(nick[i] - 'A' + 'a') : nick[i];
	folded[i] = '\0';
	cluster_hex(out, outlen, folded, i);
}

/* A job of the nicks bucket for key. */
static struct nick_job *
nick_job(struct cluster *cl, const char *key, const char *id)
{
	struct nick_job	*j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		abort();
	j->cl = cl;
	snprintf(j->key, sizeof j->key, "%s", key);
	snprintf(j->id, sizeof j->id, "%s", id);
	snprintf(j->inst, sizeof j->inst, "%s", cl->instance);
	snprintf(j->subject, sizeof j->subject, "%s%s",
	    cl->names.nicks_prefix, key);
	snprintf(j->stream, sizeof j->stream, "%s", cl->names.nicks_stream);
	return (j);
}

/* Free a job. */
static void
nick_job_free(struct nick_job *j)
{
	free(j->value);
	free(j);
}

/*
 * Create the job's key with value: the key must have no message. Returns
 * the publish's status; *seq is the new message's, *wrong non-zero when
 * the key is held.
 */
static natsStatus
nick_create(struct nick_job *j, const char *value, uint64_t *seq, int *wrong)
{
	natsMsg		*m = NULL;
	jsPubAck	*pa = NULL;
	jsPubOptions	 po;
	jsErrCode	 jerr = 0;
	natsStatus	 s;

	*wrong = 0;
	s = natsMsg_Create(&m, j->subject, NULL, value, (int)strlen(value));
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence",
		    "0");
	jsPubOptions_Init(&po);
	po.MaxWait = CLUSTER_REQUEST_WAIT;
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, j->link->js, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (s == NATS_OK) {
		*seq = pa->Sequence;
		jsPubAck_Destroy(pa);
	} else
		*wrong = jerr == CLUSTER_JS_WRONG_LAST;
	return (s);
}

/* A claim (or a delete), on a worker. */
static void
nick_work(void *arg)
{
	struct nick_job		*j = arg;
	struct json_object	*o;
	natsMsg			*last;
	jsErrCode		 jerr;
	natsStatus		 s;
	uint64_t		 seq;
	const char		*op, *text, *v;
	int			 tries, wrong;

	if (!j->claim) {
		jerr = 0;
		s = js_DeleteMsg(j->link->js, j->stream, j->rev, NULL, &jerr);
		if (s != NATS_OK && s != NATS_NOT_FOUND) {
			text = nats_GetLastError(NULL);
			snprintf(j->err, sizeof j->err, "%s", text != NULL &&
			    *text != '\0' ? text : natsStatus_GetText(s));
		}
		return;
	}
	j->result = NICK_RETRY;
	for (tries = 0; tries < 3; tries++) {
		s = nick_create(j, j->value, &seq, &wrong);
		if (s == NATS_OK) {
			j->result = NICK_OURS;
			j->held_rev = seq;
			return;
		}
		if (!wrong)
			break;
		last = NULL;
		jerr = 0;
		s = js_GetLastMsg(&last, j->link->js, j->stream, j->subject,
		    NULL, &jerr);
		if (s == NATS_NOT_FOUND)
			continue;	/* given back meanwhile */
		if (s != NATS_OK)
			break;
		seq = natsMsg_GetSequence(last);
		op = NULL;
		if (natsMsgHeader_Get(last, "KV-Operation", &op) == NATS_OK &&
		    op != NULL) {
			/* A delete marker (made by a tool): remove it. */
			natsMsg_Destroy(last);
			js_DeleteMsg(j->link->js, j->stream, seq, NULL, &jerr);
			continue;
		}
		o = cluster_json(natsMsg_GetData(last),
		    (size_t)natsMsg_GetDataLength(last));
		natsMsg_Destroy(last);
		j->held_rev = seq;
		j->result = NICK_HELD;
		if (o != NULL) {
			struct json_object *e;

			if (json_object_object_get_ex(o, "inst", &e) &&
			    (v = json_object_get_string(e)) != NULL)
				snprintf(j->holder_inst, sizeof j->holder_inst,
				    "%s", v);
			if (json_object_object_get_ex(o, "session", &e) &&
			    (v = json_object_get_string(e)) != NULL)
				snprintf(j->holder_id, sizeof j->holder_id,
				    "%s", v);
			json_object_put(o);
		}
		if (strcmp(j->holder_inst, j->inst) == 0 &&
		    strcmp(j->holder_id, j->id) == 0)
			j->result = NICK_OURS;
		return;
	}
	text = nats_GetLastError(NULL);
	snprintf(j->err, sizeof j->err, "%s", text != NULL && *text != '\0' ?
	    text : natsStatus_GetText(s));
}

/* A delete is done. One that failed (someone else's claim by now, or no
 * link) leaves the key as it is. */
static void
nick_deleted(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct cluster	*cl = state;
	struct nick_job	*j = arg;
	struct seen	*sn;

	(void)s;
	link_release(cl, j->link);
	if ((sn = table_get(&cl->claims, j->key)) != NULL && sn->rev == j->rev &&
	    status == AC_JOB_DONE && j->err[0] == '\0') {
		/* Gone from the stream: gone from here. */
		table_remove(&cl->claims, j->key);
		free(sn);
		sn = NULL;
	}
	if (j->janitor) {
		if (sn != NULL)
			sn->cleaning = 0;
		if (cl->janitor_busy > 0)
			cl->janitor_busy--;
	}
	nick_job_free(j);
}

/*
 * Delete a claim at rev: ours given back, or (janitor) a dead instance's,
 * of which a few at a time are out.
 */
static void
nick_delete(struct cluster *cl, const char *key, uint64_t rev, int janitor)
{
	struct nick_job	*j;
	struct seen	*sn;

	j = nick_job(cl, key, "");
	j->rev = rev;
	j->janitor = janitor;
	if (link_submit(cl, NULL, AC_JOB_NO_CANCEL, nick_work, nick_deleted,
	    j, &j->link) != 0) {
		nick_job_free(j);
		return;
	}
	if (janitor) {
		cl->janitor_busy++;
		if ((sn = table_get(&cl->claims, key)) != NULL)
			sn->cleaning = 1;
	}
}

/* Tell chat how a claim went, and forget it. */
static void
nick_settle(struct cluster *cl, struct want *w, enum ac_cluster_status st)
{
	ac_cluster_done_fn	 done = w->done;
	void			*arg = w->arg;

	table_remove(&cl->wants, w->id);
	free(w);
	if (done != NULL)
		done(arg, st);
}

/*
 * A quiet claim (re-claiming a nick deleted under us) that found it held
 * by another: the nick is lost.
 */
static void
nick_lost_quietly(struct cluster *cl, struct want *w)
{
	if (cl->listening && cl->listener.nick_lost != NULL)
		cl->listener.nick_lost(cl->listener.arg, w->id, w->nick);
}

/* A claim job is done. */
static void
nick_claimed(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct cluster	*cl = state;
	struct nick_job	*j = arg;
	struct want	*w = table_get(&cl->wants, j->id);
	struct own	*own;
	int		 holder;

	(void)s;
	link_release(cl, j->link);
	if (w == NULL || strcmp(w->key, j->key) != 0) {
		/* Nobody waits for it any more: give back what we got. */
		if (status == AC_JOB_DONE && j->result == NICK_OURS)
			nick_delete(cl, j->key, j->held_rev, 0);
		nick_job_free(j);
		return;
	}
	w->busy = 0;
	if (status != AC_JOB_DONE)
		j->result = NICK_RETRY;
	switch (j->result) {
	case NICK_OURS:
		if (w->released) {
			nick_delete(cl, j->key, j->held_rev, 0);
			nick_settle(cl, w, AC_CLUSTER_TAKEN);
			break;
		}
		if ((own = table_get(&cl->owned, j->key)) == NULL) {
			if ((own = calloc(1, sizeof *own)) == NULL)
				abort();
			snprintf(own->key, sizeof own->key, "%s", j->key);
			table_put(&cl->owned, own->key, own);
		}
		snprintf(own->id, sizeof own->id, "%s", w->id);
		snprintf(own->nick, sizeof own->nick, "%s", w->nick);
		own->rev = j->held_rev;
		nick_settle(cl, w, AC_CLUSTER_OK);
		break;
	case NICK_HELD:
		holder = presence_inst_state(cl, j->holder_inst);
		if (strcmp(j->holder_inst, cl->instance) == 0 &&
		    cl->host->session_find(cl->p, j->holder_id) == NULL)
			holder = INST_DEAD;	/* ours, of a session gone */
		if (holder == INST_DEAD) {
			/* Its claim goes; ours follows at once. */
			nick_delete(cl, j->key, j->held_rev, 0);
			nick_kick(cl, w);
			break;
		}
		if (holder == INST_UNKNOWN) {
			clock_gettime(CLOCK_MONOTONIC, &w->not_before);
			w->not_before.tv_sec += 1;
			break;
		}
		cl->counts[CC_CLAIMS_TAKEN]++;
		if (w->done == NULL)
			nick_lost_quietly(cl, w);
		nick_settle(cl, w, AC_CLUSTER_TAKEN);
		break;
	case NICK_RETRY:
		clock_gettime(CLOCK_MONOTONIC, &w->not_before);
		w->not_before.tv_sec += 1;
		break;
	}
	nick_job_free(j);
}

/* Send a claim's job, if the link is ready and its time has come. */
static void
nick_kick(struct cluster *cl, struct want *w)
{
	struct json_object	*o;
	struct nick_job		*j;
	struct timespec		 now;

	if (w->busy || !link_ready(cl))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < w->not_before.tv_sec ||
	    (now.tv_sec == w->not_before.tv_sec &&
	    now.tv_nsec < w->not_before.tv_nsec))
		return;
	j = nick_job(cl, w->key, w->id);
	j->claim = 1;
	o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_string(cl->opt.node));
	json_object_object_add(o, "inst", json_object_new_string(cl->instance));
	json_object_object_add(o, "session", json_object_new_string(w->id));
	json_object_object_add(o, "nick", json_object_new_string(w->nick));
	if ((j->value = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN))) == NULL)
		abort();
	json_object_put(o);
	if (link_submit(cl, NULL, AC_JOB_NO_CANCEL, nick_work, nick_claimed,
	    j, &j->link) != 0) {
		nick_job_free(j);
		return;
	}
	w->busy = 1;
}

/*
 * cluster->claim: make nick local session id's across the cluster.
 * Returns -1 when a claim of the same session is still under way.
 */
int
nick_claim(struct cluster *cl, const char *id, const char *nick,
    ac_cluster_done_fn done, void *arg)
{
	struct want	*w;

	if (id == NULL || nick == NULL || strlen(id) > CLUSTER_ID_MAX ||
	    strlen(nick) == 0 || strlen(nick) > CLUSTER_NICK_MAX ||
	    table_get(&cl->wants, id) != NULL)
		return (-1);
	if ((w = calloc(1, sizeof *w)) == NULL)
		abort();
	snprintf(w->id, sizeof w->id, "%s", id);
	snprintf(w->nick, sizeof w->nick, "%s", nick);
	nick_key(w->key, sizeof w->key, nick);
	w->done = done;
	w->arg = arg;
	table_put(&cl->wants, w->id, w);
	cl->counts[CC_CLAIMS]++;
	nick_kick(cl, w);
	return (0);
}

/* cluster->release: give back a nick local session id holds. */
void
nick_release(struct cluster *cl, const char *id, const char *nick)
{
	struct want	*w;
	struct own	*own;
	char		 key[2 * CLUSTER_NICK_MAX + 1];

	if (nick == NULL || strlen(nick) > CLUSTER_NICK_MAX)
		return;
	nick_key(key, sizeof key, nick);
	if ((w = table_get(&cl->wants, id)) != NULL &&
	    strcmp(w->key, key) == 0)
		w->released = 1;
	if ((own = table_get(&cl->owned, key)) != NULL &&
	    strcmp(own->id, id) == 0) {
		table_remove(&cl->owned, key);
		nick_delete(cl, key, own->rev, 0);
		free(own);
	}
}

/*
 * An entry of the nicks bucket (its watch). Kept for the clean-up after
 * dead instances; and a nick of ours that someone deleted is claimed
 * again, one someone else now holds is lost (chat is told).
 */
void
nick_mail(struct cluster *cl, struct mail *m)
{
	struct json_object	*o = NULL, *e;
	struct seen		*sn;
	struct own		*own;
	struct want		*w;
	const char		*inst = "", *id = "", *node = NULL;

	if (strlen(m->subject) > 2 * CLUSTER_NICK_MAX) {
		cluster_refuse(cl, "a nick claim", m->subject, "its key is "
		    "longer than any nick's");
		return;
	}
	if (!m->deleted && m->len > 0 &&
	    (o = cluster_json(m->data, m->len)) == NULL)
		cluster_refuse(cl, "a nick claim", m->subject, "not a JSON "
		    "object; taken as no claim");
	if (o != NULL) {
		if (json_object_object_get_ex(o, "inst", &e) &&
		    json_object_is_type(e, json_type_string))
			inst = json_object_get_string(e);
		if (json_object_object_get_ex(o, "session", &e) &&
		    json_object_is_type(e, json_type_string))
			id = json_object_get_string(e);
		if (json_object_object_get_ex(o, "node", &e) &&
		    json_object_is_type(e, json_type_string))
			node = json_object_get_string(e);
	}
	if (o == NULL) {
		free(table_remove(&cl->claims, m->subject));
	} else {
		if ((sn = table_get(&cl->claims, m->subject)) == NULL) {
			if ((sn = calloc(1, sizeof *sn)) == NULL)
				abort();
			snprintf(sn->key, sizeof sn->key, "%s", m->subject);
			table_put(&cl->claims, sn->key, sn);
		}
		snprintf(sn->inst, sizeof sn->inst, "%s", inst);
		snprintf(sn->id, sizeof sn->id, "%s", id);
		sn->rev = m->sseq;
		presence_note_inst(cl, inst, node);
	}
	if ((own = table_get(&cl->owned, m->subject)) != NULL &&
	    m->sseq > own->rev) {
		if (o != NULL && strcmp(inst, cl->instance) == 0 &&
		    strcmp(id, own->id) == 0)
			own->rev = m->sseq;	/* ours, again */
		else if (o == NULL) {
			/* Deleted under us: claim it again, quietly. */
			if (table_get(&cl->wants, own->id) == NULL &&
			    (w = calloc(1, sizeof *w)) != NULL) {
				snprintf(w->id, sizeof w->id, "%s", own->id);
				snprintf(w->nick, sizeof w->nick, "%s",
				    own->nick);
				snprintf(w->key, sizeof w->key, "%s", own->key);
				w->done = NULL;
				table_put(&cl->wants, w->id, w);
				nick_kick(cl, w);
			}
		} else {
			table_remove(&cl->owned, own->key);
			if (cl->listening && cl->listener.nick_lost != NULL)
				cl->listener.nick_lost(cl->listener.arg,
				    own->id, own->nick);
			free(own);
		}
	}
	if (o != NULL)
		json_object_put(o);
}

/* A dead instance's claims are deleted (a few at a time: the tick). */
void
nick_instance_dead(struct cluster *cl, const char *inst)
{
	struct seen	**all;
	size_t		  n, i;

	all = (struct seen **)table_values(&cl->claims, &n);
	for (i = 0; i < n && cl->janitor_busy < NICK_JANITORS; i++) {
		if (strcmp(all[i]->inst, inst) != 0 || all[i]->cleaning)
			continue;
		nick_delete(cl, all[i]->key, all[i]->rev, 1);
	}
	free(all);
}

/* The link is ready (again): claims that waited go. */
void
nick_kick_all(struct cluster *cl)
{
	struct want	**all;
	size_t		  n, i;

	all = (struct want **)table_values(&cl->wants, &n);
	for (i = 0; i < n; i++)
		nick_kick(cl, all[i]);
	free(all);
}

/*
 * Every tick: claims waiting for their time; the clean-up of dead
 * instances' claims, a few at a time.
 */
void
nick_tick(struct cluster *cl)
{
	struct seen	**all;
	size_t		  n, i;

	nick_kick_all(cl);
	if (link_up_for(cl) < cl->opt.node_timeout * 1000)
		return;
	all = (struct seen **)table_values(&cl->claims, &n);
	for (i = 0; i < n && cl->janitor_busy < NICK_JANITORS; i++) {
		if (all[i]->cleaning ||
		    strcmp(all[i]->inst, cl->instance) == 0 ||
		    presence_inst_state(cl, all[i]->inst) != INST_DEAD)
			continue;
		nick_delete(cl, all[i]->key, all[i]->rev, 1);
	}
	free(all);
}

/* The plugin stops: forget everything (nothing is told to chat). */
void
nick_free_all(struct cluster *cl)
{
	void	**all;
	size_t	  n, i;

	all = table_values(&cl->wants, &n);
	for (i = 0; i < n; i++)
		free(all[i]);
	free(all);
	table_free(&cl->wants);
	all = table_values(&cl->owned, &n);
	for (i = 0; i < n; i++)
		free(all[i]);
	free(all);
	table_free(&cl->owned);
	all = table_values(&cl->claims, &n);
	for (i = 0; i < n; i++)
		free(all[i]);
	free(all);
	table_free(&cl->claims);
}
