/*
 * link.c - the connection to NATS and what hangs on it: its states, the
 * JetStream assets (the rooms stream, the nicks and presence buckets),
 * the subscriptions that feed the mailbox, and the jobs that use it.
 *
 * Connecting blocks (up to the connect timeout), so it is a job: libnats
 * is told to retry a first connect that fails (RetryOnFailedConnect), so
 * the job returns at once when no server answers, and the connection
 * comes up later by itself (its connected callback). libnats reconnects a
 * lost connection for ever; on errors it gives one up for good
 * (authorisation), and then a new one is made after reconnect_wait.
 *
 * Setting up (creating or updating the stream and the buckets, then the
 * subscriptions) is a job too, made once a connection is up, and again
 * every tick until it works (a stream with more replicas than JetStream
 * has servers is refused until they come).
 *
 * States, as chat sees them (cluster->up): CONNECTING (the first connect
 * is under way) and RECONNECTING (up before, lost for less than
 * append_timeout) are up: room messages and nick claims wait for the
 * link; DOWN (never up, or lost for longer) is not: room messages go to
 * this server's members only, and nicks are not given out.
 *
 * Every job that uses the connection holds a reference to its link
 * (counted on the loop thread), so that a link libnats gave up on is
 * destroyed only once the jobs using it are done. libnats' callbacks post
 * mail and nothing else; fini waits (bounded) for the subscriptions' and
 * the connection's last callbacks before anything they use is freed.
 *
 * Why one file past 700 lines: it is everything that touches libnats'
 * connection and subscription objects, whose threads and lifetimes set
 * the rules above (callbacks only post mail, jobs hold the link, fini
 * waits for the last callbacks). Kept in one file, every use of those
 * objects can be checked against the rules in one read; the other files
 * reach NATS only through link_submit and the mail.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cluster.h"

/* The connect job. */
struct link_connect {
	struct cluster	*cl;
	struct link	*link;
	natsOptions	*opts;
	natsStatus	 status;
	char		 err[256];
};

/* The set-up job. */
struct link_setup {
	struct cluster		*cl;
	struct link		*link;
	struct cluster_names	*names;
	struct cluster_options	 opt;
	uint64_t		 feed_from;	/* stream sequence, or 0 */
	int64_t			 hb_ns;		/* consumers' heartbeat */
	uint64_t		 feed_start;	/* where the feed began */
	natsSubscription	*subs[SUB_COUNT];
	int			 presence_empty;
	int			 failed;
	char			 err[512];
};

/* A name for a state, for the log. */
const char *
link_state_name(enum link_state st)
{
	switch (st) {
	case LINK_CONNECTING:
		return ("connecting");
	case LINK_UP:
		return ("up");
	case LINK_RECONNECTING:
		return ("reconnecting");
	case LINK_DOWN:
		return ("down");
	}
	return ("?");
}

/* Enter a state. */
static void
link_set_state(struct cluster *cl, enum link_state st)
{
	if (cl->state == st)
		return;
	cl->state = st;
	clock_gettime(CLOCK_MONOTONIC, &cl->state_since);
	if (st == LINK_UP)
		cl->up_since = cl->state_since;
	cl->host->metric_set(cl->m_link_up, st == LINK_UP ? 1 : 0);
}

/* Milliseconds the link has been up without a break (0: not up). */
uint64_t
link_up_for(struct cluster *cl)
{
	if (cl->state != LINK_UP)
		return (0);
	return (cluster_elapsed_ms(&cl->up_since));
}

/* Non-zero when jobs can use the link: up, and set up. */
int
link_ready(struct cluster *cl)
{
	return (cl->state == LINK_UP && cl->link != NULL && cl->link->ready);
}

/* Non-zero unless the link is down (cluster->up). */
int
link_usable(struct cluster *cl)
{
	return (cl->state != LINK_DOWN);
}

/* A library callback's link: post that it is up. */
static void
link_on_connected(natsConnection *nc, void *arg)
{
	struct link	*l = arg;
	char		 url[256];
	struct mail	*m;

	if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK)
		snprintf(url, sizeof url, "?");
	if ((m = mail_new(MAIL_UP, l, url, NULL, 0)) != NULL)
		mailbox_post(&l->cl->mb, m);
}

/* The connection is lost; libnats reconnects by itself. */
static void
link_on_disconnected(natsConnection *nc, void *arg)
{
	struct link	*l = arg;

	(void)nc;
	mailbox_post(&l->cl->mb, mail_new(MAIL_DOWN, l, NULL, NULL, 0));
}

/* The connection is closed for good: its last connection callback. */
static void
link_on_closed(natsConnection *nc, void *arg)
{
	struct link	*l = arg;
	const char	*err = NULL;

	natsConnection_GetLastError(nc, &err);
	mailbox_post(&l->cl->mb, mail_new(MAIL_CLOSED, l,
	    err != NULL && *err != '\0' ? err : "no reason given", NULL, 0));
	pthread_mutex_lock(&l->mu);
	l->closed = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
}

/* An asynchronous error (a slow consumer, a missed heartbeat). */
static void
link_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
    void *arg)
{
	struct link	*l = arg;
	const char	*last = NULL;
	char		 text[300];

	(void)sub;
	/* The text of an asynchronous error is the thread's last error. */
	last = nats_GetLastError(NULL);
	if (last == NULL || *last == '\0')
		natsConnection_GetLastError(nc, &last);
	snprintf(text, sizeof text, "%s%s%s", natsStatus_GetText(err),
	    last != NULL && *last != '\0' ? ": " : "",
	    last != NULL ? last : "");
	mailbox_post(&l->cl->mb, mail_new(MAIL_ERROR, l, text, NULL, 0));
}

/* Mark one subscription's last callback done (its on-complete). */
static void
link_sub_done(struct link *l, int i)
{
	pthread_mutex_lock(&l->mu);
	l->sub_done[i] = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
}

static void link_feed_done(void *arg) { link_sub_done(arg, SUB_FEED); }
static void link_nicks_done(void *arg) { link_sub_done(arg, SUB_NICKS); }
static void link_presence_done(void *arg) { link_sub_done(arg, SUB_PRESENCE); }
static void link_hb_done(void *arg) { link_sub_done(arg, SUB_HB); }
static void link_direct_done(void *arg) { link_sub_done(arg, SUB_DIRECT); }

/* A stored room message (a delivery thread): post it. */
static void
link_on_feed(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *arg)
{
	struct link	*l = arg;
	struct mail	*m;
	jsMsgMetaData	*md = NULL;
	const char	*seq = NULL;

	(void)nc;
	(void)sub;
	m = mail_new(MAIL_FEED, l, natsMsg_GetSubject(msg),
	    natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
	if (m != NULL) {
		if (natsMsgHeader_Get(msg, CLUSTER_HDR_SEQ, &seq) == NATS_OK)
			m->hdr = strdup(seq);
		seq = NULL;
		if (natsMsgHeader_Get(msg, CLUSTER_HDR_ID, &seq) == NATS_OK &&
		    seq != NULL)
			m->mid = strdup(seq);
		if (natsMsg_GetMetaData(&md, msg) == NATS_OK) {
			m->sseq = md->Sequence.Stream;
			m->pending = md->NumPending;
			jsMsgMetaData_Destroy(md);
		}
		mailbox_post(&l->cl->mb, m);
	}
	natsMsg_Destroy(msg);
}

/* A bucket entry (a delivery thread): post it, with its key. */
static void
link_on_kv(struct link *l, int bucket, natsMsg *msg)
{
	struct cluster	*cl = l->cl;
	struct mail	*m;
	jsMsgMetaData	*md = NULL;
	const char	*subject, *prefix, *op = NULL;
	size_t		 plen;

	subject = natsMsg_GetSubject(msg);
	prefix = bucket == 0 ? cl->names.nicks_prefix :
	    cl->names.presence_prefix;
	plen = strlen(prefix);
	if (subject == NULL || strncmp(subject, prefix, plen) != 0 ||
	    subject[plen] == '\0')
		return;
	m = mail_new(MAIL_KV, l, subject + plen, natsMsg_GetData(msg),
	    (size_t)natsMsg_GetDataLength(msg));
	if (m == NULL)
		return;
	m->bucket = bucket;
	if (natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK &&
	    op != NULL && (strcmp(op, "DEL") == 0 || strcmp(op, "PURGE") == 0))
		m->deleted = 1;
	if (natsMsg_GetMetaData(&md, msg) == NATS_OK) {
		m->sseq = md->Sequence.Stream;
		m->pending = md->NumPending;
		jsMsgMetaData_Destroy(md);
	}
	mailbox_post(&cl->mb, m);
}

/* An entry of the nicks bucket. */
static void
link_on_nicks(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *arg)
{
	(void)nc;
	(void)sub;
	link_on_kv(arg, 0, msg);
	natsMsg_Destroy(msg);
}

/* An entry of the presence bucket. */
static void
link_on_presence(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *arg)
{
	(void)nc;
	(void)sub;
	link_on_kv(arg, 1, msg);
	natsMsg_Destroy(msg);
}

/* A heartbeat. */
static void
link_on_hb(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *arg)
{
	struct link	*l = arg;

	(void)nc;
	(void)sub;
	mailbox_post(&l->cl->mb, mail_new(MAIL_HB, l, NULL,
	    natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg)));
	natsMsg_Destroy(msg);
}

/* A direct message for a session of this node. */
static void
link_on_direct(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *arg)
{
	struct link	*l = arg;
	struct mail	*m;
	const char	*to = NULL, *reply;

	(void)nc;
	(void)sub;
	reply = natsMsg_GetReply(msg);
	if (reply != NULL && natsMsgHeader_Get(msg, CLUSTER_HDR_TO, &to) ==
	    NATS_OK && to != NULL && (m = mail_new(MAIL_DIRECT, l, to,
	    natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg))) !=
	    NULL) {
		if ((m->reply = strdup(reply)) == NULL) {
			mail_free(m);
			m = NULL;
		}
		mailbox_post(&l->cl->mb, m);
	}
	natsMsg_Destroy(msg);
}

/* Make a link and its libnats options (callbacks bound to it). */
static struct link *
link_new(struct cluster *cl, natsOptions **optsp)
{
	struct link	*l;
	natsOptions	*o;
	natsStatus	 s;

	if ((l = calloc(1, sizeof *l)) == NULL)
		return (NULL);
	l->cl = cl;
	l->refs = 1;		/* the plugin's, while it is current */
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cond, NULL);
	if (natsconn_options(&cl->conn, cl->opt.node, &o) != 0)
		goto fail;
	*optsp = o;
	if ((s = natsOptions_SetRetryOnFailedConnect(o, true,
	    link_on_connected, l)) != NATS_OK ||
	    (s = natsOptions_SetDisconnectedCB(o, link_on_disconnected, l)) !=
	    NATS_OK ||
	    (s = natsOptions_SetReconnectedCB(o, link_on_connected, l)) !=
	    NATS_OK ||
	    (s = natsOptions_SetClosedCB(o, link_on_closed, l)) != NATS_OK ||
	    (s = natsOptions_SetErrorHandler(o, link_on_error, l)) !=
	    NATS_OK) {
		cl->host->log(cl->p, AC_LOG_ERROR, "libnats options: %s",
		    natsStatus_GetText(s));
		goto fail;
	}
	return (l);
fail:
	if (*optsp != NULL)
		natsOptions_Destroy(*optsp);
	*optsp = NULL;
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return (NULL);
}

/*
 * Close a link's subscriptions and connection, waiting (bounded) for
 * their last callbacks, and free it. If a wait times out a callback may
 * still run with the link: it is then left allocated, and so is the
 * plugin state (*leak set).
 */
static void
link_destroy(struct link *l, int *leak)
{
	int	i, timed_out = 0;

	for (i = 0; i < SUB_COUNT; i++) {
		if (l->subs[i] == NULL)
			continue;
		natsSubscription_Unsubscribe(l->subs[i]);
		pthread_mutex_lock(&l->mu);
		if (natsconn_wait(&l->cond, &l->mu, &l->sub_done[i],
		    CLUSTER_STOP_TIMEOUT) != 0)
			timed_out = 1;
		pthread_mutex_unlock(&l->mu);
		natsSubscription_Destroy(l->subs[i]);
		l->subs[i] = NULL;
	}
	if (l->js != NULL)
		jsCtx_Destroy(l->js);
	l->js = NULL;
	if (l->nc != NULL) {
		natsConnection_Close(l->nc);
		pthread_mutex_lock(&l->mu);
		if (natsconn_wait(&l->cond, &l->mu, &l->closed,
		    CLUSTER_STOP_TIMEOUT) != 0)
			timed_out = 1;
		pthread_mutex_unlock(&l->mu);
		natsConnection_Destroy(l->nc);
		l->nc = NULL;
	}
	if (timed_out) {
		*leak = 1;
		return;
	}
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* Drop a job's (or the plugin's) reference to a link. */
void
link_release(struct cluster *cl, struct link *l)
{
	int	leak = 0;

	if (l == NULL || --l->refs > 0 || !l->retired)
		return;
	TAILQ_REMOVE(&cl->retired, l, entry);
	link_destroy(l, &leak);
	if (leak)
		cl->host->log(cl->p, AC_LOG_WARNING, "an old NATS connection "
		    "did not close in time; it is left allocated");
}

/* Retire the current link (libnats gave it up): it goes when unused. */
static void
link_retire(struct cluster *cl)
{
	struct link	*l = cl->link;

	if (l == NULL)
		return;
	cl->link = NULL;
	l->retired = 1;
	TAILQ_INSERT_TAIL(&cl->retired, l, entry);
	link_release(cl, l);
}

/*
 * Submit a job that uses the link: the job holds a reference to it, given
 * back in *lp for the completion to release (link_release). Returns -1
 * when there is no connection, or the pool refuses (nothing is called).
 */
int
link_submit(struct cluster *cl, struct ac_session *s, int flags,
    ac_job_work_fn work, ac_job_done_fn done, void *arg, struct link **lp)
{
	struct link	*l = cl->link;

	if (l == NULL || l->nc == NULL || l->js == NULL)
		return (-1);
	l->refs++;
	*lp = l;
	if (cl->host->job_submit(cl->p, s, flags, work, done, arg) != 0) {
		l->refs--;
		*lp = NULL;
		return (-1);
	}
	return (0);
}

/* An asynchronous publish failed (presence.c counts them per batch). */
static void
link_on_pub_error(jsCtx *js, jsPubAckErr *pae, void *arg)
{
	struct link	*l = arg;

	(void)js;
	(void)pae;
	pthread_mutex_lock(&l->mu);
	l->pub_errors++;
	pthread_mutex_unlock(&l->mu);
}

/* The connect job: make the connection (and its JetStream context). */
static void
link_connect_work(void *arg)
{
	struct link_connect	*lc = arg;
	jsOptions		 jo;
	const char		*text;

	lc->status = natsConnection_Connect(&lc->link->nc, lc->opts);
	if (lc->status != NATS_OK && lc->status != NATS_NOT_YET_CONNECTED) {
		text = nats_GetLastError(NULL);
		snprintf(lc->err, sizeof lc->err, "%s", text != NULL &&
		    *text != '\0' ? text : natsStatus_GetText(lc->status));
		lc->link->nc = NULL;
		return;
	}
	jsOptions_Init(&jo);
	jo.Wait = CLUSTER_REQUEST_WAIT;
	jo.PublishAsync.ErrHandler = link_on_pub_error;
	jo.PublishAsync.ErrHandlerClosure = lc->link;
	if (natsConnection_JetStream(&lc->link->js, lc->link->nc, &jo) !=
	    NATS_OK)
		lc->link->js = NULL;
}

static void	link_setup(struct cluster *);

/* A timer: make a new connection (libnats gave the last one up). */
static void
link_reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster	*cl = arg;

	(void)fd;
	(void)what;
	if (cl->link == NULL && !cl->connecting && !cl->stopping)
		link_start(cl);
}

/* Make the link's timer. Returns 0, or -1 (logged). */
int
link_init(struct cluster *cl)
{
	cl->reconnect_ev = evtimer_new(cl->host->event_base(cl->p),
	    link_reconnect_cb, cl);
	if (cl->reconnect_ev == NULL) {
		cl->host->log(cl->p, AC_LOG_ERROR, "cannot make a timer");
		return (-1);
	}
	return (0);
}

/* Make a new connection after reconnect_wait. */
static void
link_schedule_reconnect(struct cluster *cl)
{
	struct timeval	tv;

	tv.tv_sec = cl->conn.reconnect_wait / 1000;
	tv.tv_usec = (cl->conn.reconnect_wait % 1000) * 1000;
	if (cl->reconnect_ev != NULL)
		evtimer_add(cl->reconnect_ev, &tv);
}

/* Log that the link is down, and what that means here. */
static void
link_log_down(struct cluster *cl, const char *why)
{
	cl->host->log(cl->p, AC_LOG_WARNING, "link to NATS down (%s%s%s): "
	    "local sessions are still served; room messages reach this "
	    "server's members only, without seq, and are not kept; nicks "
	    "are not given out", cl->conn.servers_text, why != NULL ? ": " :
	    "", why != NULL ? why : "");
}

/* The connect job is done: keep the link, or say why there is none. */
static void
link_connect_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct cluster		*cl = state;
	struct link_connect	*lc = arg;
	struct link		*l = lc->link;
	int			 leak = 0;

	(void)s;
	(void)status;
	cl->connecting = 0;
	natsOptions_Destroy(lc->opts);
	if (l->nc == NULL || l->js == NULL) {
		link_destroy(l, &leak);
		if (cl->state != LINK_DOWN)
			link_log_down(cl, lc->err[0] != '\0' ? lc->err :
			    "no JetStream context");
		link_set_state(cl, LINK_DOWN);
		link_schedule_reconnect(cl);
		free(lc);
		return;
	}
	cl->link = l;
	/*
	 * Up now, whether the connect itself made it or libnats' retry did
	 * before this ran (that notice was for a link not yet current).
	 */
	if (natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED)
		link_on_connected(l->nc, l);
	else if (cl->state != LINK_DOWN) {
		link_set_state(cl, LINK_DOWN);
		link_log_down(cl, "no server answers; libnats keeps trying");
	}
	free(lc);
}

/*
 * Start a connection: a connect job. Returns 0, or -1 when it cannot even
 * be tried (logged).
 */
int
link_start(struct cluster *cl)
{
	struct link_connect	*lc;
	natsOptions		*o = NULL;

	if ((lc = calloc(1, sizeof *lc)) == NULL)
		return (-1);
	lc->cl = cl;
	if ((lc->link = link_new(cl, &o)) == NULL) {
		free(lc);
		return (-1);
	}
	lc->opts = o;
	if (cl->host->job_submit(cl->p, NULL, AC_JOB_NO_CANCEL,
	    link_connect_work, link_connect_done, lc) != 0) {
		natsOptions_Destroy(o);
		pthread_cond_destroy(&lc->link->cond);
		pthread_mutex_destroy(&lc->link->mu);
		free(lc->link);
		free(lc);
		cl->host->log(cl->p, AC_LOG_ERROR, "cannot start connecting "
		    "to NATS: the worker pool refused the job");
		return (-1);
	}
	cl->connecting = 1;
	return (0);
}

/*
 * Create the stream (or bring it to cfg), reporting why not into err;
 * its last sequence and message count into *last and *msgs (may be
 * NULL). Returns 0 or -1.
 */
static int
link_stream(jsCtx *js, jsStreamConfig *cfg, char *err, size_t errlen,
    uint64_t *last, uint64_t *msgs)
{
	jsStreamInfo	*si = NULL;
	jsErrCode	 jerr = 0;
	natsStatus	 s;
	const char	*text;

	s = js_AddStream(&si, js, cfg, NULL, &jerr);
	if (s != NATS_OK && jerr == 10058) {
		/* There already, with other limits: take ours. */
		if (si != NULL)
			jsStreamInfo_Destroy(si);
		si = NULL;
		jerr = 0;
		s = js_UpdateStream(&si, js, cfg, NULL, &jerr);
	}
	if (s == NATS_OK && si != NULL) {
		if (last != NULL)
			*last = si->State.LastSeq;
		if (msgs != NULL)
			*msgs = si->State.Msgs;
	}
	if (si != NULL)
		jsStreamInfo_Destroy(si);
	if (s == NATS_OK)
		return (0);
	text = nats_GetLastError(NULL);
	snprintf(err, errlen, "stream %s: %s", cfg->Name, text != NULL &&
	    *text != '\0' ? text : natsStatus_GetText(s));
	return (-1);
}

/* Subscribe to a bucket's entries, the last of each key first. */
static natsStatus
link_watch(struct link_setup *ls, natsSubscription **sub, const char *stream,
    const char *prefix, natsMsgHandler cb, natsOnCompleteCB complete)
{
	jsSubOptions	 so;
	jsErrCode	 jerr = 0;
	char		 subject[256];
	natsStatus	 s;

	snprintf(subject, sizeof subject, "%s>", prefix);
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverLastPerSubject;
	so.Config.Heartbeat = ls->hb_ns;
	s = js_Subscribe(sub, ls->link->js, subject, cb, ls->link, NULL, &so,
	    &jerr);
	if (s == NATS_OK)
		s = natsSubscription_SetOnCompleteCB(*sub, complete,
		    ls->link);
	return (s);
}

/*
 * The set-up job: the stream and the buckets as configured, then the
 * subscriptions: the feed (an ordered consumer of every room subject,
 * from where this process's feed stopped, or from when it started), the
 * two bucket watches, heartbeats and this node's direct messages.
 */
static void
link_setup_work(void *arg)
{
	struct link_setup	*ls = arg;
	struct cluster_names	*n = ls->names;
	struct link		*l = ls->link;
	jsStreamConfig		 sc;
	jsSubOptions		 so;
	jsErrCode		 jerr = 0;
	const char		*subjects[1];
	char			 kvsub[256];
	uint64_t		 last = 0, msgs = 0;
	natsStatus		 s = NATS_OK;
	const char		*text, *what = NULL;
	int			 i;

	jsStreamConfig_Init(&sc);
	sc.Name = n->stream;
	subjects[0] = n->rooms;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.MaxMsgsPerSubject = ls->opt.max_messages == 0 ? -1 :
	    (int64_t)ls->opt.max_messages;
	sc.MaxAge = (int64_t)ls->opt.max_age * CLUSTER_NS;
	sc.Replicas = ls->opt.replicas;
	sc.Storage = js_FileStorage;
	sc.Discard = js_DiscardOld;
	sc.AllowDirect = true;
	if (link_stream(l->js, &sc, ls->err, sizeof ls->err, &last,
	    NULL) != 0) {
		ls->failed = 1;
		return;
	}

	/* The buckets, as a key-value bucket of JetStream is made. */
	jsStreamConfig_Init(&sc);
	subjects[0] = kvsub;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.MaxMsgsPerSubject = 1;
	sc.Replicas = ls->opt.replicas;
	sc.Storage = js_FileStorage;
	sc.Discard = js_DiscardNew;
	sc.AllowRollup = true;
	sc.DenyDelete = true;
	sc.AllowDirect = true;
	/* Nicks given back are deleted, not marked (nick.c). */
	sc.Name = n->nicks_stream;
	sc.DenyDelete = false;
	snprintf(kvsub, sizeof kvsub, "%s>", n->nicks_prefix);
	if (link_stream(l->js, &sc, ls->err, sizeof ls->err, NULL,
	    NULL) != 0) {
		ls->failed = 1;
		return;
	}
	sc.DenyDelete = true;
	sc.Name = n->presence_stream;
	sc.MaxAge = (int64_t)CLUSTER_PRESENCE_TTL * CLUSTER_NS;
	snprintf(kvsub, sizeof kvsub, "%s>", n->presence_prefix);
	if (link_stream(l->js, &sc, ls->err, sizeof ls->err, NULL,
	    &msgs) != 0) {
		ls->failed = 1;
		return;
	}
	ls->presence_empty = msgs == 0;

	/*
	 * The consumer lives on one NATS server; libnats notices that it
	 * is gone (that server stopped) when two of its heartbeats are
	 * missed, and makes it again from the next message: a heartbeat of
	 * ours, not libnats' 5 s, so that a room is not silent for 10 s.
	 */
	jsSubOptions_Init(&so);
	so.Stream = n->stream;
	so.Ordered = true;
	so.Config.Heartbeat = ls->hb_ns;
	/*
	 * From where this process's feed stopped, or from now. (Not from a
	 * start time: libnats 3.4 cannot make an ordered consumer again
	 * that began so, as it keeps the time beside the sequence.)
	 */
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = ls->feed_from != 0 ? ls->feed_from : last + 1;
	ls->feed_start = so.Config.OptStartSeq;
	what = "the room feed";
	s = js_Subscribe(&ls->subs[SUB_FEED], l->js, n->rooms, link_on_feed,
	    l, NULL, &so, &jerr);
	if (s == NATS_OK)
		s = natsSubscription_SetOnCompleteCB(ls->subs[SUB_FEED],
		    link_feed_done, l);
	if (s == NATS_OK) {
		what = "the nicks bucket";
		s = link_watch(ls, &ls->subs[SUB_NICKS], n->nicks_stream,
		    n->nicks_prefix, link_on_nicks, link_nicks_done);
	}
	if (s == NATS_OK) {
		what = "the presence bucket";
		s = link_watch(ls, &ls->subs[SUB_PRESENCE],
		    n->presence_stream, n->presence_prefix, link_on_presence,
		    link_presence_done);
	}
	if (s == NATS_OK) {
		what = n->hb;
		s = natsConnection_Subscribe(&ls->subs[SUB_HB], l->nc, n->hb,
		    link_on_hb, l);
		if (s == NATS_OK)
			s = natsSubscription_SetOnCompleteCB(ls->subs[SUB_HB],
			    link_hb_done, l);
	}
	if (s == NATS_OK) {
		what = n->direct;
		s = natsConnection_Subscribe(&ls->subs[SUB_DIRECT], l->nc,
		    n->direct, link_on_direct, l);
		if (s == NATS_OK)
			s = natsSubscription_SetOnCompleteCB(
			    ls->subs[SUB_DIRECT], link_direct_done, l);
	}
	if (s == NATS_OK)
		return;
	text = nats_GetLastError(NULL);
	snprintf(ls->err, sizeof ls->err, "cannot subscribe to %s: %s", what,
	    text != NULL && *text != '\0' ? text : natsStatus_GetText(s));
	ls->failed = 1;
	for (i = 0; i < SUB_COUNT; i++) {
		if (ls->subs[i] != NULL) {
			natsSubscription_Unsubscribe(ls->subs[i]);
			natsSubscription_Destroy(ls->subs[i]);
			ls->subs[i] = NULL;
		}
	}
}

/*
 * What a link being up again means for everyone: presence written again,
 * waiting appends and claims on their way. (What changed meanwhile comes
 * by the watches, which resume where they were.)
 */
static void
link_now_ready(struct cluster *cl)
{
	presence_link_up(cl);
	append_kick_all(cl);
	nick_kick_all(cl);
}

/* The set-up job is done. */
static void
link_setup_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct cluster		*cl = state;
	struct link_setup	*ls = arg;
	struct link		*l = ls->link;
	time_t			 now = time(NULL);
	int			 i;

	(void)s;
	l->setting_up = 0;
	if (status != AC_JOB_DONE)
		ls->failed = 1;
	if (ls->failed) {
		cl->setup_failures++;
		if (cl->setup_failures == 1 || now - cl->setup_logged >= 60) {
			cl->host->log(cl->p, AC_LOG_ERROR, "JetStream not ready "
			    "for the cluster: %s; trying again every %llu s "
			    "(%llu tries so far)", ls->err[0] != '\0' ? ls->err :
			    "cancelled", (unsigned long long)cl->opt.heartbeat,
			    (unsigned long long)cl->setup_failures);
			cl->setup_logged = now;
		}
		link_release(cl, l);
		free(ls);
		return;
	}
	for (i = 0; i < SUB_COUNT; i++)
		l->subs[i] = ls->subs[i];
	l->ready = 1;
	cl->feed_start = ls->feed_start;
	room_feed_begin(ls->feed_start);
	if (cl->setup_failures != 0)
		cl->host->log(cl->p, AC_LOG_INFO, "JetStream ready after %llu "
		    "failed tries", (unsigned long long)cl->setup_failures);
	cl->setup_failures = 0;
	cl->host->log(cl->p, AC_LOG_INFO, "cluster link ready as node %s "
	    "(instance %s): stream %s (read from sequence %llu), buckets %s "
	    "and %s, %d replica%s", cl->opt.node, cl->instance,
	    cl->names.stream, (unsigned long long)cl->feed_start,
	    cl->names.nicks, cl->names.presence, cl->opt.replicas,
	    cl->opt.replicas == 1 ? "" : "s");
	presence_initial(cl, ls->presence_empty);
	if (cl->state == LINK_UP)
		link_now_ready(cl);
	link_release(cl, l);
	free(ls);
}

/* Set up the current link's assets and subscriptions (a job). */
static void
link_setup(struct cluster *cl)
{
	struct link_setup	*ls;
	struct link		*l = cl->link;

	if (l == NULL || l->ready || l->setting_up || cl->stopping)
		return;
	if ((ls = calloc(1, sizeof *ls)) == NULL)
		return;
	ls->cl = cl;
	ls->names = &cl->names;
	ls->opt = cl->opt;
	ls->feed_from = room_feed_next();
	ls->hb_ns = (int64_t)cl->opt.heartbeat * CLUSTER_NS;
	presence_begin(cl);
	if (link_submit(cl, NULL, AC_JOB_NO_CANCEL, link_setup_work,
	    link_setup_done, ls, &ls->link) != 0) {
		free(ls);
		return;
	}
	l->setting_up = 1;
}

/* Mail about the connection, or for the other parts (loop thread). */
void
link_mail(struct cluster *cl, struct mail *m)
{
	switch (m->kind) {
	case MAIL_FEED:
		feed_mail(cl, m);
		return;
	case MAIL_KV:
		if (m->bucket == 0)
			nick_mail(cl, m);
		else
			presence_mail(cl, m);
		return;
	case MAIL_HB:
		presence_hb(cl, m);
		return;
	case MAIL_DIRECT:
		direct_mail(cl, m);
		return;
	case MAIL_ERROR:
		cl->host->log(cl->p, AC_LOG_INFO, "NATS: %s", m->subject);
		return;
	default:
		break;
	}
	if (m->link != cl->link)
		return;		/* an old connection's */
	switch (m->kind) {
	case MAIL_UP:
		cl->host->log(cl->p, AC_LOG_INFO, "link to NATS up (%s) as "
		    "node %s", m->subject, cl->opt.node);
		link_set_state(cl, LINK_UP);
		if (!m->link->ready)
			link_setup(cl);
		else
			link_now_ready(cl);
		break;
	case MAIL_DOWN:
		if (cl->state == LINK_UP) {
			link_set_state(cl, LINK_RECONNECTING);
			cl->host->log(cl->p, AC_LOG_WARNING, "link to NATS lost; "
			    "reconnecting (room messages wait up to %llu s)",
			    (unsigned long long)cl->opt.append_timeout);
		}
		break;
	case MAIL_CLOSED:
		cl->host->log(cl->p, AC_LOG_ERROR, "NATS connection given up: "
		    "%s (check servers, credentials and TLS options); a new "
		    "one in %lld ms", m->subject,
		    (long long)cl->conn.reconnect_wait);
		link_retire(cl);
		if (cl->state != LINK_DOWN)
			link_log_down(cl, m->subject);
		link_set_state(cl, LINK_DOWN);
		append_link_down(cl);
		link_schedule_reconnect(cl);
		break;
	default:
		break;
	}
}

/* Every heartbeat: states that time brings, set-up again, the parts. */
void
link_tick(struct cluster *cl)
{
	if (cl->state == LINK_RECONNECTING &&
	    cluster_elapsed_ms(&cl->state_since) >=
	    cl->opt.append_timeout * 1000) {
		link_set_state(cl, LINK_DOWN);
		link_log_down(cl, "lost for longer than append_timeout");
		append_link_down(cl);
	}
	if (cl->state == LINK_UP && cl->link != NULL && !cl->link->ready)
		link_setup(cl);
	presence_tick(cl);
	nick_tick(cl);
	append_tick(cl);
}

/*
 * The plugin stops: close every link (bounded waits), free them. Returns
 * non-zero when one would not close in time: a libnats callback may then
 * still post to the mailbox, and the plugin's state must stay.
 */
int
link_stop(struct cluster *cl)
{
	struct link	*l;
	int		 leak = 0;

	cl->stopping = 1;
	if (cl->link != NULL)
		link_retire(cl);
	while ((l = TAILQ_FIRST(&cl->retired)) != NULL) {
		TAILQ_REMOVE(&cl->retired, l, entry);
		link_destroy(l, &leak);
	}
	if (leak)
		cl->host->log(cl->p, AC_LOG_WARNING, "libnats did not stop in "
		    "time; its state is left allocated");
	return (leak);
}
