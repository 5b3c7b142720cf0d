/*
 * append.c - room messages into the stream, numbered: history.h's
 * append() for the cluster.
 *
 * A room's next seq is one more than its last that counted, and only the
 * stream knows which that is when several servers send. The rule that
 * says which stored messages count is the feed's (room.c, room_feed): in
 * stream order, a message counts if its seq is above the room's last that
 * counted and its Asyncchat-Id was not taken before. Every node reads the
 * same stream with that rule, so every node delivers the same messages
 * with the same seq; and this file makes sure that every message a node
 * appends ends up counting, by asking the feed:
 *
 *  1. The message is made (chat's make) with the seq after the room's last
 *     that counted, as this node's feed has it, and published to the
 *     room's subject with Nats-Expected-Last-Subject-Sequence set to the
 *     stream sequence of the room's last message as the feed has it, a
 *     Nats-Msg-Id (instance and counter, new for each making) and an
 *     Asyncchat-Id (instance and counter, the same for every making of
 *     one message).
 *  2. The stream refuses it ("wrong last sequence") when another server's
 *     message came in between: the room's last message is read (from the
 *     stream leader), and the message waits until this node's feed has met
 *     that one, then goes back to 1 with what the feed says then.
 *  3. The stream stores it at stream sequence S: it waits until the feed
 *     has met S. If the feed took it, it is stored, numbered, and chat is
 *     told. If not, it lost a race: nats-server 2.9 checks a non-zero
 *     expected subject sequence only before it replicates a message, not
 *     as the replicas apply it, so two publishes expecting the same last
 *     message a few milliseconds apart may both be stored (nats-server
 *     issue 4320), and the feed skips the second; back to 1.
 *  4. No answer (a NATS server or the stream leader went away
 *     meanwhile): it may have been stored all the same. The room's last
 *     message is read, and the message waits until the feed has met it:
 *     taken, it is stored; not met, back to 1. A publish the stream
 *     commits even later (a leader's last entries, committed by the next
 *     one) is a repeat of the Asyncchat-Id, and the feed skips it.
 *
 * A room this node's feed has not met (quiet since before the feed
 * began) is settled by reading its last message.
 *
 * One publish per room is in flight at a time, so a room's messages keep
 * their order; rooms go in parallel, each a job on the worker pool.
 * Messages wait in their room's queue while the link is not ready and
 * while a publish gets no answer (tried again after 100 ms, growing to
 * 1 s), until append_timeout; then, or as soon as the link is down, they
 * fail, and chat delivers them on this server only. Appends still waiting
 * when the plugin stops are forgotten without a call (history.h: chat
 * frees its side in its own fini).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cluster.h"

/* Where a message is on its way. */
enum apend_state {
	APEND_READY,		/* to be (made and) published */
	APEND_WAIT,		/* until the feed meets stream seq `until` */
	APEND_CONFIRM,		/* published at `until`: did it count? */
};

/* One room message, from append() to its completion. */
struct apend {
	ac_history_make_fn	 make;
	ac_history_appended_fn	 done;
	void			*arg;
	struct ac_frame		*frame;		/* made for seq, or NULL */
	uint64_t		 seq;
	char			 msgid[48];	/* of this making */
	char			 id[48];	/* Asyncchat-Id: of them all */
	enum apend_state	 state;
	uint64_t		 until;		/* WAIT, CONFIRM */
	uint64_t		 counted;	/* the feed took it as this */
	struct timespec		 queued;	/* monotonic */
	unsigned int		 tries;
	TAILQ_ENTRY(apend)	 entry;
};
TAILQ_HEAD(apend_list, apend);

/* A room with messages waiting for the stream. */
struct aroom {
	struct cluster		*cl;
	char			 fname[CLUSTER_ROOM_MAX + 1];
	char			 name[CLUSTER_ROOM_MAX + 1];
	char			 subject[160];
	struct apend_list	 queue;
	unsigned int		 n;
	int			 busy;		/* a job is out */
	struct event		*retry_ev;
};

/* What a job did. */
enum append_result {
	APPEND_PUBLISHED,	/* stored at sseq */
	APPEND_CONFLICT,	/* refused; the room's last is at last_sseq */
	APPEND_UNSURE,		/* no answer; the room's last is at last_sseq */
	APPEND_LOOKED_UP,	/* a look-up only: last_seq at last_sseq */
	APPEND_RETRY,		/* nothing learnt: try again later */
};

/* A publish (or a look-up of the room's last message) on a worker. */
struct append_job {
	struct aroom		*ar;
	struct link		*link;
	int			 lookup;	/* only read the last */
	char			 subject[160];
	char			 stream[128];
	struct ac_frame		*frame;		/* a reference of ours */
	const uint8_t		*bytes;
	size_t			 len;
	uint64_t		 seq;
	uint64_t		 expect;
	char			 msgid[48];
	char			 id[48];

	enum append_result	 result;
	uint64_t		 sseq;
	uint64_t		 last_seq;	/* look-up: its seq header */
	uint64_t		 last_sseq;	/* 0: the room has none */
	char			 err[256];
};

static void	append_kick(struct aroom *);

/* The room of a folded name, made if need be. */
static struct aroom *
append_room(struct cluster *cl, const char *fname, const char *name)
{
	struct aroom	*ar;
	char		 token[CLUSTER_ROOM_MAX + 1];

	if ((ar = table_get(&cl->arooms, fname)) != NULL)
		return (ar);
	if ((ar = calloc(1, sizeof *ar)) == NULL)
		abort();
	ar->cl = cl;
	snprintf(ar->fname, sizeof ar->fname, "%s", fname);
	snprintf(ar->name, sizeof ar->name, "%s", name);
	room_subject_token(token, sizeof token, fname);
	snprintf(ar->subject, sizeof ar->subject, "%s%s",
	    cl->names.room_prefix, token);
	TAILQ_INIT(&ar->queue);
	table_put(&cl->arooms, ar->fname, ar);
	return (ar);
}

/* Forget a room with nothing waiting and no job out. */
static void
append_room_done(struct aroom *ar)
{
	if (ar->busy || ar->n != 0)
		return;
	table_remove(&ar->cl->arooms, ar->fname);
	if (ar->retry_ev != NULL)
		event_free(ar->retry_ev);
	free(ar);
}

/* Take a message off its room and free it (no call). */
static void
append_pop(struct aroom *ar, struct apend *a)
{
	TAILQ_REMOVE(&ar->queue, a, entry);
	ar->n--;
	if (a->frame != NULL)
		ar->cl->host->frame_unref(ar->cl->p, a->frame);
	free(a);
}

/* End a message of a room: tell chat, free it. */
static void
append_finish(struct aroom *ar, struct apend *a, enum ac_history_status st,
    uint64_t seq)
{
	ac_history_appended_fn	 done = a->done;
	void			*arg = a->arg;

	if (st == AC_HISTORY_OK)
		ar->cl->counts[CC_APPENDS]++;
	else
		ar->cl->counts[CC_APPEND_FAILURES]++;
	append_pop(ar, a);
	done(arg, st, seq);
}

/*
 * Read the room's last message from the stream leader: its stream
 * sequence (0: none) and seq (0: not a server's). Returns 0, or -1 (why
 * into j->err).
 */
static int
append_last(struct append_job *j)
{
	natsMsg		*last = NULL;
	jsErrCode	 jerr = 0;
	natsStatus	 s;
	const char	*text;

	s = js_GetLastMsg(&last, j->link->js, j->stream, j->subject, NULL,
	    &jerr);
	if (s == NATS_NOT_FOUND) {
		j->last_sseq = j->last_seq = 0;
		return (0);
	}
	if (s != NATS_OK) {
		text = nats_GetLastError(NULL);
		snprintf(j->err, sizeof j->err, "reading the last message of "
		    "%s: %s", j->subject, text != NULL && *text != '\0' ? text :
		    natsStatus_GetText(s));
		return (-1);
	}
	j->last_sseq = natsMsg_GetSequence(last);
	if (cluster_header_u64(last, CLUSTER_HDR_SEQ, &j->last_seq) != 0)
		j->last_seq = 0;
	natsMsg_Destroy(last);
	return (0);
}

/* The publish, or the look-up, on a worker. */
static void
append_work(void *arg)
{
	struct append_job	*j = arg;
	natsMsg			*m = NULL;
	jsPubAck		*pa = NULL;
	jsPubOptions		 po;
	jsErrCode		 jerr = 0;
	natsStatus		 s;
	char			 num[32];
	const char		*text;

	if (j->lookup) {
		j->result = append_last(j) == 0 ? APPEND_LOOKED_UP :
		    APPEND_RETRY;
		return;
	}
	s = natsMsg_Create(&m, j->subject, NULL, (const char *)j->bytes,
	    (int)j->len);
	snprintf(num, sizeof num, "%llu", (unsigned long long)j->expect);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence",
		    num);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", j->msgid);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, CLUSTER_HDR_ID, j->id);
	snprintf(num, sizeof num, "%llu", (unsigned long long)j->seq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, CLUSTER_HDR_SEQ, num);
	jsPubOptions_Init(&po);
	po.MaxWait = CLUSTER_REQUEST_WAIT;
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, j->link->js, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (s == NATS_OK) {
		j->result = APPEND_PUBLISHED;
		j->sseq = pa->Sequence;
		jsPubAck_Destroy(pa);
		return;
	}
	if (jerr != CLUSTER_JS_WRONG_LAST) {
		/* No answer, or one that says nothing: it may be in. */
		text = nats_GetLastError(NULL);
		snprintf(j->err, sizeof j->err, "%s (%s)",
		    natsStatus_GetText(s), text != NULL ? text : "");
	}
	j->result = jerr == CLUSTER_JS_WRONG_LAST ? APPEND_CONFLICT :
	    APPEND_UNSURE;
	if (append_last(j) != 0)
		j->result = APPEND_RETRY;
}

/* A retry's timer: kick the room again. */
static void
append_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	append_kick(arg);
}

/* Kick the room again after a pause that grows with the tries. */
static void
append_retry_later(struct aroom *ar, unsigned int tries)
{
	struct timeval	tv;
	long		ms = 100L * (long)tries;

	if (ms > 1000)
		ms = 1000;
	if (ar->retry_ev == NULL && (ar->retry_ev =
	    evtimer_new(ar->cl->host->event_base(ar->cl->p), append_retry_cb,
	    ar)) == NULL)
		return;		/* the tick kicks it */
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ar->retry_ev, &tv);
}

/* A job's completion: what the stream said, for the first message. */
static void
append_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct cluster		*cl = state;
	struct append_job	*j = arg;
	struct aroom		*ar = j->ar;
	struct apend		*a = TAILQ_FIRST(&ar->queue);
	struct room_state	*r;

	(void)s;
	ar->busy = 0;
	link_release(cl, j->link);
	if (j->frame != NULL)
		cl->host->frame_unref(cl->p, j->frame);
	if (status != AC_JOB_DONE)
		j->result = APPEND_RETRY;
	if (a == NULL) {
		free(j);
		append_room_done(ar);
		return;
	}
	switch (j->result) {
	case APPEND_PUBLISHED:
		a->state = APEND_CONFIRM;
		a->until = j->sseq;
		break;
	case APPEND_CONFLICT:
		cl->counts[CC_APPEND_CONFLICTS]++;
		a->state = APEND_WAIT;
		a->until = j->last_sseq;
		break;
	case APPEND_UNSURE:
		cl->counts[CC_APPEND_RETRIES]++;
		if (a->tries++ == 0)
			cl->host->log(cl->p, AC_LOG_INFO, "a message of #%s got "
			    "no answer (%s); waiting to see whether it was "
			    "stored", ar->name, j->err);
		a->state = APEND_CONFIRM;
		a->until = j->last_sseq;
		break;
	case APPEND_LOOKED_UP:
		/*
		 * Settled by the room's last message if the feed will not
		 * meet it (before the feed began, met already, or nothing a
		 * server made: the numbering this process knows goes on).
		 */
		r = room_get(ar->fname);
		if (j->last_sseq == 0 || j->last_seq == 0 ||
		    j->last_sseq < cl->feed_start ||
		    (r != NULL && r->sseq >= j->last_sseq))
			room_settle(ar->fname, ar->name, j->last_seq,
			    j->last_sseq);
		else {
			/* The feed will meet it: wait for that. */
			a->state = APEND_WAIT;
			a->until = j->last_sseq;
		}
		break;
	case APPEND_RETRY:
		cl->counts[CC_APPEND_RETRIES]++;
		if (a->tries++ % 20 == 0)
			cl->host->log(cl->p, AC_LOG_WARNING, "storing a message "
			    "of #%s: %s; trying again", ar->name,
			    j->err[0] != '\0' ? j->err : "cancelled");
		free(j);
		append_retry_later(ar, a->tries);
		return;
	}
	free(j);
	append_kick(ar);
	append_room_done(ar);
}

/*
 * The feed met a message of room fname (loop thread): the first message
 * waiting there may be it, or may have waited for the feed to get this far.
 */
void
append_feed(struct cluster *cl, const char *fname, const char *id,
    uint64_t sseq, uint64_t seq, int counts)
{
	struct aroom	*ar;
	struct apend	*a;

	if ((ar = table_get(&cl->arooms, fname)) == NULL ||
	    (a = TAILQ_FIRST(&ar->queue)) == NULL)
		return;
	if (id != NULL && strcmp(id, a->id) == 0 && counts)
		a->counted = seq;
	(void)sseq;
	if (!ar->busy)
		append_kick(ar);
}

/* Make the message for seq, if it is not made for it already. */
static int
append_make(struct cluster *cl, struct apend *a, uint64_t seq)
{
	if (a->frame != NULL && a->seq == seq)
		return (0);
	if (a->frame != NULL)
		cl->host->frame_unref(cl->p, a->frame);
	a->seq = seq;
	a->frame = a->make(a->arg, seq);
	cluster_next_id(a->msgid, sizeof a->msgid);
	return (a->frame == NULL ? -1 : 0);
}

/*
 * Move the room's first message on: finished if the feed took it; else,
 * once the feed has got as far as it waits for, published (or the room
 * settled first). Nothing while a job is out or the link is not ready.
 */
static void
append_kick(struct aroom *ar)
{
	struct cluster		*cl = ar->cl;
	struct apend		*a;
	struct append_job	*j;
	struct room_state	*r;

	while (!ar->busy && (a = TAILQ_FIRST(&ar->queue)) != NULL) {
		r = room_get(ar->fname);
		if (a->counted != 0) {
			append_finish(ar, a, AC_HISTORY_OK, a->counted);
			continue;
		}
		if (a->state != APEND_READY) {
			if (r == NULL || r->sseq < a->until)
				return;		/* the feed is not there */
			if (a->state == APEND_CONFIRM)
				cl->counts[CC_APPEND_CONFLICTS]++;
			a->state = APEND_READY;	/* not taken: again */
		}
		if (!link_ready(cl))
			return;
		if ((j = calloc(1, sizeof *j)) == NULL)
			abort();
		j->ar = ar;
		snprintf(j->subject, sizeof j->subject, "%s", ar->subject);
		snprintf(j->stream, sizeof j->stream, "%s", cl->names.stream);
		if (r == NULL || !r->known)
			j->lookup = 1;
		else {
			if (append_make(cl, a, r->seq + 1) != 0) {
				free(j);
				append_finish(ar, a, AC_HISTORY_FAILED, 0);
				continue;
			}
			j->frame = cl->host->frame_ref(cl->p, a->frame);
			j->bytes = cl->host->frame_bytes(j->frame, &j->len);
			j->seq = a->seq;
			j->expect = r->sseq;
			snprintf(j->msgid, sizeof j->msgid, "%s", a->msgid);
			snprintf(j->id, sizeof j->id, "%s", a->id);
		}
		if (link_submit(cl, NULL, AC_JOB_NO_CANCEL, append_work,
		    append_done, j, &j->link) != 0) {
			if (j->frame != NULL)
				cl->host->frame_unref(cl->p, j->frame);
			free(j);
			append_retry_later(ar, 10);
			return;
		}
		ar->busy = 1;
	}
}

/* history: append(). */
int
append_start(struct cluster *cl, const char *room, ac_history_make_fn make,
    ac_history_appended_fn done, void *arg)
{
	struct aroom	*ar;
	struct apend	*a;
	char		 fname[CLUSTER_ROOM_MAX + 1];

	if (!roomname_valid_string(room) || make == NULL || done == NULL ||
	    cl->state == LINK_DOWN)
		return (-1);
	roomname_fold(fname, room);
	ar = append_room(cl, fname, room);
	if (ar->n >= CLUSTER_APPEND_QUEUE_MAX) {
		cl->counts[CC_APPEND_FAILURES]++;
		return (-1);
	}
	if ((a = calloc(1, sizeof *a)) == NULL)
		abort();
	a->make = make;
	a->done = done;
	a->arg = arg;
	cluster_next_id(a->id, sizeof a->id);
	clock_gettime(CLOCK_MONOTONIC, &a->queued);
	TAILQ_INSERT_TAIL(&ar->queue, a, entry);
	ar->n++;
	append_kick(ar);
	return (0);
}

/* Every room, as an array the caller frees. */
static struct aroom **
append_rooms(struct cluster *cl, size_t *n)
{
	return ((struct aroom **)table_values(&cl->arooms, n));
}

/* The link is ready (again): every room's messages go. */
void
append_kick_all(struct cluster *cl)
{
	struct aroom	**all;
	size_t		  n, i;

	all = append_rooms(cl, &n);
	for (i = 0; i < n; i++)
		append_kick(all[i]);
	free(all);
}

/*
 * Fail a room's waiting messages: all of them (the link is down), or
 * those that waited longer than append_timeout. The first one is left
 * while a job is out for it, or while it may have been stored (it waits
 * for the feed to say), unless the link is down for good.
 */
static void
append_expire(struct aroom *ar, int all)
{
	struct cluster	*cl = ar->cl;
	struct apend	*a, *next;

	a = TAILQ_FIRST(&ar->queue);
	if (a != NULL && (ar->busy || (!all && a->state == APEND_CONFIRM)))
		a = TAILQ_NEXT(a, entry);
	for (; a != NULL; a = next) {
		next = TAILQ_NEXT(a, entry);
		if (!all && cluster_elapsed_ms(&a->queued) <
		    cl->opt.append_timeout * 1000)
			break;	/* the rest are younger */
		append_finish(ar, a, AC_HISTORY_FAILED, 0);
	}
}

/* The link is down: every waiting message fails. */
void
append_link_down(struct cluster *cl)
{
	struct aroom	**all;
	size_t		  n, i;

	all = append_rooms(cl, &n);
	for (i = 0; i < n; i++) {
		append_expire(all[i], 1);
		append_room_done(all[i]);
	}
	free(all);
}

/* Every tick: messages that waited too long fail; the rest go. */
void
append_tick(struct cluster *cl)
{
	struct aroom	**all;
	size_t		  n, i, waiting = 0;

	all = append_rooms(cl, &n);
	for (i = 0; i < n; i++) {
		append_expire(all[i], 0);
		append_kick(all[i]);
		waiting += all[i]->n;
		append_room_done(all[i]);
	}
	free(all);
	cl->host->metric_set(cl->m_waiting, (double)waiting);
}

/* The plugin stops: forget what still waits (no call: history.h). */
void
append_free_all(struct cluster *cl)
{
	struct aroom	**all;
	struct apend	 *a;
	size_t		  n, i;

	all = append_rooms(cl, &n);
	for (i = 0; i < n; i++) {
		while ((a = TAILQ_FIRST(&all[i]->queue)) != NULL)
			append_pop(all[i], a);
		all[i]->busy = 0;
		append_room_done(all[i]);
	}
	free(all);
	table_free(&cl->arooms);
}
