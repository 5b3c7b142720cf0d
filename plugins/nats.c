/*
 * nats.c - join several asyncchatd servers through NATS.
 *
 * Every `message` or `chunk` a local session sends is published, byte for
 * byte, to <subject_prefix>.broadcast with the node's name and a random
 * instance id in NATS message headers. Every frame another node published
 * there is verified with the shared key and queued to all local sessions.
 * The plugin returns AC_PLUGIN_CONTINUE and delivers nothing locally itself:
 * the intended chain is `load = broadcast, nats` (docs/SCALING.md).
 *
 * Threads. libnats runs its own threads whatever the set-up: with or
 * without its libevent adapter, a subscription's callback runs on a
 * delivery thread of the library (sub.c starts one per asynchronous
 * subscription, or uses the library's pool), and the connection callbacks
 * run on its asynchronous-callback thread. The adapter would in addition
 * call event_add() from the library's reconnect thread, which is safe only
 * if the server made its event_base after evthread_use_pthreads(). So the
 * adapter is not used: libnats keeps its own socket threads, and the only
 * bridge to the server's single loop thread is
 *  - inbound: a locked queue plus an eventfd watched by an ordinary event
 *    on the loop (write(2) on an eventfd is safe from any thread, so no
 *    libevent call is ever made off the loop thread); frames are verified
 *    on the loop thread, with the key host->key() gives at that moment;
 *  - outbound: a locked queue drained by one publisher thread of ours,
 *    which also makes the (possibly blocking) connect, so the loop never
 *    waits for NATS at all.
 * No host function is called from any thread but the loop's.
 *
 * Metrics. The counters below, the link state and the outgoing queue's
 * depth are shown on the server's /metrics (nats_*{plugin="nats"}): the
 * collect callback copies them under `mu` just before each scrape, so the
 * NATS threads never touch a metric.
 *
 * Latency. libnats' flusher thread waits 1 ms for more data before it
 * writes, which batches well under load but adds about 1 ms to each hop;
 * `send_asap = yes` makes every publish write at once (on our publisher
 * thread), for lower latency and lower peak throughput (docs/SCALING.md).
 *
 * The connection options (servers, credentials, TLS) are read as the
 * cluster plugin reads them (natsconn.c), which also says why libnats,
 * once open, stays open.
 *
 * Names start with acnats_ rather than nats_, which is libnats' namespace.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/random.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <nats/nats.h>

#include <asyncchat/frame.h>
#include <asyncchat/plugin.h>

#include "natsconn.h"

#define ACNATS_DEFAULT_PREFIX		"asyncchat"
#define ACNATS_DEFAULT_MAX_PENDING	10000
#define ACNATS_DEFAULT_PENDING_BYTES	(64 * 1024 * 1024)
#define ACNATS_STOP_TIMEOUT		3000	/* ms, for each wait in fini */
#define ACNATS_INBOUND_MAX_BYTES	(64 * 1024 * 1024)
#define ACNATS_BATCH			256	/* frames per loop wake-up */

/* The NATS message headers that carry the origin. */
#define ACNATS_HDR_NODE			"Asyncchat-Node"
#define ACNATS_HDR_INSTANCE		"Asyncchat-Instance"

/* What travels through the queues. */
enum acnats_kind {
	ACNATS_FRAME,		/* a frame; inbound, text is its origin */
	ACNATS_LINK_UP,		/* text: the server's URL */
	ACNATS_LINK_DOWN,
	ACNATS_PUB_FAILED,	/* the first failed publish of a streak */
	ACNATS_PUB_OK,		/* a publish worked after failures */
	ACNATS_ERROR,		/* text: an error from libnats */
};

/* One queued frame or notice. */
struct acnats_item {
	struct acnats_item	*next;
	enum acnats_kind	 kind;
	uint64_t		 count;	/* streak length, for the notices */
	char			 text[256];
	size_t			 len;
	uint8_t			 data[];
};

/* A FIFO of items, with its size. */
struct acnats_queue {
	struct acnats_item	*head;
	struct acnats_item	*tail;
	size_t			 n;
	size_t			 bytes;
};

/*
 * Counters, for the log line at fini and for the metrics endpoint.
 * queued, dropped, published, publish_failed, received, own and overflow
 * change under `mu` (NATS threads write some of them); refused, delivered
 * and deliveries belong to the loop thread.
 */
struct acnats_stats {
	uint64_t	queued;		/* frames put on the outgoing queue */
	uint64_t	dropped;	/* outgoing frames dropped: queue full */
	uint64_t	published;	/* handed to libnats */
	uint64_t	publish_failed;	/* refused by libnats */
	uint64_t	received;	/* messages from the subject */
	uint64_t	own;		/* our own, ignored */
	uint64_t	refused;	/* failed verification */
	uint64_t	overflow;	/* the inbound queue was full */
	uint64_t	delivered;	/* frames handed to broadcast_raw */
	uint64_t	deliveries;	/* sessions they were queued to */
};

/*
 * The interface `nats` (version 1) that the plugin publishes: that it is
 * there tells the other plugins of the chain that this server is joined
 * to others (chat refuses to run beside it, docs/SCALING.md); node and
 * subject name the link. Valid until fini.
 */
#define ACNATS_INTERFACE		"nats"
#define ACNATS_INTERFACE_VERSION	1
struct acnats_iface {
	size_t		 size;
	const char	*node;
	const char	*subject;
};

/* The plugin's state: configuration, queues, threads. */
struct acnats {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;

	/* Configuration (immutable once the thread runs). */
	struct natsconn	 conn;		/* servers, credentials, TLS */
	char		*subject;
	char		*node;
	char		 instance[33];
	size_t		 max_pending;
	size_t		 max_pending_bytes;
	int		 send_asap;
	natsOptions	*opts;
	struct ac_limits limits;	/* the server's, for inbound frames */

	/* Shared with the NATS threads, under mu. */
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
	struct acnats_queue out;	/* loop -> publisher thread */
	struct acnats_queue in;		/* NATS threads -> loop */
	int		 in_signalled;	/* the eventfd has been written */
	int		 link_up;
	int		 stopping;
	int		 sub_done;	/* the subscription's last callback ran */
	int		 conn_closed;	/* the connection's closed callback ran */
	int		 was_up;	/* the link came up since the last close */
	char		 closed_why[160];
	uint64_t	 overflow_streak;
	struct acnats_stats stats;

	/* Loop thread only. */
	int		 efd;
	struct event	*ev;
	pthread_t	 thread;
	int		 thread_started;
	uint64_t	 drop_streak;
	uint64_t	 bad_streak;
	uint64_t	 dropped_while_down;
	int		 leak;		/* libnats did not let go in time */

	/* The metrics collect sets (NULL on a host without them). */
	struct ac_metric *m_link_up;
	struct ac_metric *m_queue_frames;
	struct ac_metric *m_queue_bytes;
	struct ac_metric *m_published;
	struct ac_metric *m_dropped;
	struct ac_metric *m_publish_failed;
	struct ac_metric *m_received;
	struct ac_metric *m_refused;
	struct ac_metric *m_overflow;
	struct ac_metric *m_delivered;

	struct acnats_iface iface;
};

static int	acnats_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	acnats_fini(void *);
static int	acnats_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);
static void	acnats_collect(void *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "nats",
	.version = PACKAGE_VERSION,
	.description = "joins several servers through NATS: publishes local "
	    "messages, delivers the other nodes' ones to local sessions",
	.init = acnats_init,
	.fini = acnats_fini,
	.process_message = acnats_process_message,
	.collect = acnats_collect,
};

/* Append an item to a queue. */
static void
acnats_queue_push(struct acnats_queue *q, struct acnats_item *it)
{
	it->next = NULL;
	if (q->tail != NULL)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->n++;
	q->bytes += it->len;
}

/* Take the first item off a queue, or NULL if it is empty. */
static struct acnats_item *
acnats_queue_pop(struct acnats_queue *q)
{
	struct acnats_item	*it;

	if ((it = q->head) == NULL)
		return (NULL);
	if ((q->head = it->next) == NULL)
		q->tail = NULL;
	q->n--;
	q->bytes -= it->len;
	it->next = NULL;
	return (it);
}

/* Free every item of a queue. */
static void
acnats_queue_clear(struct acnats_queue *q)
{
	struct acnats_item	*it;

	while ((it = acnats_queue_pop(q)) != NULL)
		free(it);
}

/* Make an item, with room for len bytes of frame; NULL if out of memory. */
static struct acnats_item *
acnats_item_new(enum acnats_kind kind, const void *data, size_t len)
{
	struct acnats_item	*it;

	if ((it = calloc(1, sizeof *it + len)) == NULL)
		return (NULL);
	it->kind = kind;
	it->len = len;
	if (len != 0)
		memcpy(it->data, data, len);
	return (it);
}

/* Make a notice item with printf-style text; NULL if out of memory. */
static struct acnats_item *
acnats_notice_new(enum acnats_kind kind, const char *fmt, ...)
{
	struct acnats_item	*it;
	va_list			 ap;

	if ((it = acnats_item_new(kind, NULL, 0)) == NULL)
		return (NULL);
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(it->text, sizeof it->text, fmt, ap);
		va_end(ap);
	}
	return (it);
}

/*
 * Queue an item for the loop thread, with mu held; returns non-zero when
 * the caller must wake the loop (after unlocking) with acnats_wake().
 */
static int
acnats_post_locked(struct acnats *an, struct acnats_item *it)
{
	if (it == NULL)
		return (0);
	acnats_queue_push(&an->in, it);
	if (an->in_signalled)
		return (0);
	an->in_signalled = 1;
	return (1);
}

/* Wake the loop thread: one write on the eventfd, from any thread. */
static void
acnats_wake(struct acnats *an)
{
	uint64_t	one = 1;
	ssize_t		n;

	do
		n = write(an->efd, &one, sizeof one);
	while (n == -1 && errno == EINTR);
	/* EAGAIN means the counter is saturated: the loop is awake anyway. */
}

/* Queue an item for the loop thread from a NATS thread. */
static void
acnats_post(struct acnats *an, struct acnats_item *it)
{
	int	wake;

	pthread_mutex_lock(&an->mu);
	wake = acnats_post_locked(an, it);
	pthread_mutex_unlock(&an->mu);
	if (wake)
		acnats_wake(an);
}

/*
 * Check a frame from the subject: one whole frame, checks 1-7 with the
 * shared key and this server's size limits (the same a local session's
 * frame is held to, so another node cannot deliver here what a local
 * client could not send), and a `message` or `chunk`. Returns NULL when
 * it is good, else a short reason token.
 */
static const char *
acnats_verify(const struct ac_key *key, const struct ac_limits *limits,
    const uint8_t *buf, size_t len)
{
	struct ac_message	 msg;
	enum ac_frame_status	 st;
	size_t			 consumed = 0;
	const char		*why = NULL;

	memset(&msg, 0, sizeof msg);
	st = ac_frame_decode(key, limits, buf, len, &consumed, &msg);
	if (st == AC_FRAME_NEED_MORE)
		return ("truncated");
	if (st != AC_FRAME_OK)
		return (ac_frame_status_name(st));
	if (consumed != len)
		why = "trailing_bytes";
	else if (msg.type != AC_MSG_MESSAGE && msg.type != AC_MSG_CHUNK)
		why = "not_a_message";
	ac_message_clear(&msg);
	return (why);
}

/*
 * A message from the subject (a libnats delivery thread): unless it is our
 * own, copy it with its origin onto the inbound queue for the loop thread,
 * which verifies it. The queue is bounded in bytes; past that, messages
 * are dropped and counted (libnats bounds its own queue before ours).
 */
static void
acnats_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
    void *arg)
{
	struct acnats		*an = arg;
	struct acnats_item	*it;
	const char		*inst = NULL, *node = NULL;
	const char		*data;
	char			*c;
	size_t			 len;
	int			 wake = 0;

	data = natsMsg_GetData(m);
	len = (size_t)natsMsg_GetDataLength(m);
	if (natsMsgHeader_Get(m, ACNATS_HDR_INSTANCE, &inst) != NATS_OK)
		inst = NULL;
	if (inst != NULL && strcmp(inst, an->instance) == 0) {
		pthread_mutex_lock(&an->mu);
		an->stats.received++;
		an->stats.own++;
		pthread_mutex_unlock(&an->mu);
		natsMsg_Destroy(m);
		return;
	}
	if (natsMsgHeader_Get(m, ACNATS_HDR_NODE, &node) != NATS_OK)
		node = NULL;
	it = acnats_item_new(ACNATS_FRAME, data, data != NULL ? len : 0);
	if (it != NULL) {
		/* The name goes into the log: no control characters. */
		snprintf(it->text, sizeof it->text, "%s",
		    node != NULL ? node : "unknown");
		for (c = it->text; *c != '\0'; c++) {
			if ((unsigned char)*c < ' ' || *c == 0x7f)
				*c = '?';
		}
	}

	pthread_mutex_lock(&an->mu);
	an->stats.received++;
	if (it == NULL || an->in.bytes + len > ACNATS_INBOUND_MAX_BYTES) {
		an->stats.overflow++;
		free(it);
		if (an->overflow_streak++ == 0)
			wake = acnats_post_locked(an, acnats_notice_new(
			    ACNATS_ERROR, "inbound queue full (%d MiB): "
			    "dropping frames from other nodes until this node "
			    "catches up", ACNATS_INBOUND_MAX_BYTES >> 20));
	} else {
		an->overflow_streak = 0;
		wake = acnats_post_locked(an, it);
	}
	pthread_mutex_unlock(&an->mu);
	if (wake)
		acnats_wake(an);
	natsMsg_Destroy(m);
}

/*
 * Verify a frame from another node (loop thread) and give it to every
 * local session. The key is asked for each time rather than kept: on a
 * reload the host frees the old configuration, key included, after the
 * new plugin instance is set up. The limits are a copy made at init,
 * which a reload repeats. Only the first bad frame of a streak is logged;
 * all are counted.
 */
static void
acnats_deliver(struct acnats *an, struct acnats_item *it)
{
	const char	*why;
	int		 n;

	why = it->len == 0 ? "empty" :
	    acnats_verify(an->host->key(an->p), &an->limits, it->data,
	    it->len);
	if (why != NULL) {
		an->stats.refused++;
		if (an->bad_streak++ == 0)
			an->host->log(an->p, AC_LOG_WARNING, "refused a frame "
			    "from NATS (node %s): %s; further bad frames are "
			    "counted, not logged, until a good one comes",
			    it->text, why);
		return;
	}
	if (an->bad_streak != 0) {
		an->host->log(an->p, AC_LOG_INFO, "good frames from NATS "
		    "again, after %llu refused (%llu refused in all)",
		    (unsigned long long)an->bad_streak,
		    (unsigned long long)an->stats.refused);
		an->bad_streak = 0;
	}
	n = an->host->broadcast_raw(an->p, it->data, it->len, NULL);
	an->stats.delivered++;
	an->stats.deliveries += (uint64_t)n;
}

/* The subscription is closed and its last callback returned. */
static void
acnats_on_sub_done(void *arg)
{
	struct acnats	*an = arg;

	pthread_mutex_lock(&an->mu);
	an->sub_done = 1;
	pthread_cond_broadcast(&an->cond);
	pthread_mutex_unlock(&an->mu);
}

/* The link is up (first connect or reconnect): resume publishing. */
static void
acnats_on_connected(natsConnection *nc, void *arg)
{
	struct acnats		*an = arg;
	struct acnats_item	*it;
	char			 url[256];
	int			 wake;

	if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK)
		snprintf(url, sizeof url, "?");
	it = acnats_notice_new(ACNATS_LINK_UP, "%s", url);
	pthread_mutex_lock(&an->mu);
	an->link_up = 1;
	an->was_up = 1;
	pthread_cond_broadcast(&an->cond);
	wake = acnats_post_locked(an, it);
	pthread_mutex_unlock(&an->mu);
	if (wake)
		acnats_wake(an);
}

/* The link is down: libnats reconnects by itself; stop publishing. */
static void
acnats_on_disconnected(natsConnection *nc, void *arg)
{
	struct acnats		*an = arg;
	struct acnats_item	*it;
	int			 wake = 0;

	it = acnats_notice_new(ACNATS_LINK_DOWN, NULL);
	pthread_mutex_lock(&an->mu);
	an->link_up = 0;
	if (!an->stopping)
		wake = acnats_post_locked(an, it);
	else
		free(it);
	pthread_mutex_unlock(&an->mu);
	if (wake)
		acnats_wake(an);
}

/* The connection is closed for good: its last connection callback. */
static void
acnats_on_closed(natsConnection *nc, void *arg)
{
	struct acnats	*an = arg;
	const char	*err = NULL;

	natsConnection_GetLastError(nc, &err);
	pthread_mutex_lock(&an->mu);
	snprintf(an->closed_why, sizeof an->closed_why, "%s",
	    err != NULL && *err != '\0' ? err : "no reason given");
	an->link_up = 0;
	an->conn_closed = 1;
	pthread_cond_broadcast(&an->cond);
	pthread_mutex_unlock(&an->mu);
}

/* An asynchronous error (a slow consumer, a permissions violation). */
static void
acnats_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
    void *arg)
{
	struct acnats	*an = arg;
	const char	*last = NULL;

	natsConnection_GetLastError(nc, &last);
	acnats_post(an, acnats_notice_new(ACNATS_ERROR, "%s%s%s",
	    natsStatus_GetText(err), last != NULL && *last != '\0' ? ": " : "",
	    last != NULL ? last : ""));
}

/* Publish one frame with the origin headers; returns a libnats status. */
static natsStatus
acnats_publish(struct acnats *an, natsConnection *nc,
    const struct acnats_item *it)
{
	natsMsg		*m = NULL;
	natsStatus	 s;

	if (it->len > INT_MAX)
		return (NATS_MAX_PAYLOAD);
	s = natsMsg_Create(&m, an->subject, NULL, (const char *)it->data,
	    (int)it->len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, ACNATS_HDR_NODE, an->node);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, ACNATS_HDR_INSTANCE, an->instance);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(nc, m);
	natsMsg_Destroy(m);
	return (s);
}

/*
 * Wait, with mu held, until fini says stop or ms milliseconds pass; returns
 * non-zero when stopping.
 */
static int
acnats_pause(struct acnats *an, int64_t ms)
{
	natsconn_wait(&an->cond, &an->mu, &an->stopping, (int)ms);
	return (an->stopping);
}

/*
 * Publish what is left on the outgoing queue and flush, all within
 * ACNATS_STOP_TIMEOUT; what does not fit is left for fini to count.
 */
static void
acnats_flush_out(struct acnats *an, natsConnection *nc)
{
	struct acnats_item	*it;
	struct timespec		 t0, now;
	int64_t			 left;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ACNATS_STOP_TIMEOUT - ((int64_t)(now.tv_sec - t0.tv_sec) *
		    1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return;
		pthread_mutex_lock(&an->mu);
		it = acnats_queue_pop(&an->out);
		pthread_mutex_unlock(&an->mu);
		if (it == NULL)
			break;
		if (acnats_publish(an, nc, it) == NATS_OK) {
			pthread_mutex_lock(&an->mu);
			an->stats.published++;
			pthread_mutex_unlock(&an->mu);
		}
		free(it);
	}
	natsConnection_FlushTimeout(nc, left);
}

/*
 * One connection's life on the publisher thread: connect (libnats retries
 * in the background while no server answers), subscribe, then publish the
 * outgoing queue in order while the link is up, until fini says stop or
 * libnats gives the connection up. Then unsubscribe and close, waiting
 * (bounded) for libnats' last callbacks, which use the state. Returns 0,
 * or -1 if a wait timed out (the state must then never be freed).
 */
static int
acnats_session(struct acnats *an, uint64_t *close_streak)
{
	struct acnats_item	*it;
	natsConnection		*nc = NULL;
	natsSubscription	*sub = NULL;
	natsStatus		 s;
	uint64_t		 fail_streak = 0;
	int			 connected = 0, timed_out = 0, up;

	pthread_mutex_lock(&an->mu);
	an->conn_closed = an->sub_done = an->was_up = 0;
	an->closed_why[0] = '\0';
	pthread_mutex_unlock(&an->mu);

	s = natsConnection_Connect(&nc, an->opts);
	if (s == NATS_OK)
		connected = 1;
	else if (s == NATS_NOT_YET_CONNECTED) {
		if (*close_streak == 0)
			acnats_post(an, acnats_notice_new(ACNATS_LINK_DOWN,
			    NULL));
	} else {
		nc = NULL;
		pthread_mutex_lock(&an->mu);
		snprintf(an->closed_why, sizeof an->closed_why, "%s",
		    nats_GetLastError(NULL));
		an->conn_closed = 1;
		pthread_mutex_unlock(&an->mu);
	}
	if (nc != NULL) {
		s = natsConnection_Subscribe(&sub, nc, an->subject,
		    acnats_on_msg, an);
		if (s == NATS_OK)
			s = natsSubscription_SetOnCompleteCB(sub,
			    acnats_on_sub_done, an);
		if (s != NATS_OK) {
			acnats_post(an, acnats_notice_new(ACNATS_ERROR,
			    "cannot subscribe to %s: %s", an->subject,
			    natsStatus_GetText(s)));
			if (sub != NULL) {
				natsSubscription_Destroy(sub);
				sub = NULL;
			}
		}
	}
	/* Say the link is up only once the subscription is on its way. */
	if (connected)
		acnats_on_connected(nc, an);

	pthread_mutex_lock(&an->mu);
	for (;;) {
		while (!an->stopping && !an->conn_closed &&
		    (an->out.head == NULL || !an->link_up))
			pthread_cond_wait(&an->cond, &an->mu);
		if (an->was_up)
			*close_streak = 0;
		if (an->stopping || an->conn_closed)
			break;
		it = acnats_queue_pop(&an->out);
		pthread_mutex_unlock(&an->mu);

		s = acnats_publish(an, nc, it);
		free(it);

		pthread_mutex_lock(&an->mu);
		if (s == NATS_OK) {
			an->stats.published++;
			if (fail_streak != 0) {
				it = acnats_notice_new(ACNATS_PUB_OK, NULL);
				if (it != NULL)
					it->count = fail_streak;
				if (acnats_post_locked(an, it))
					acnats_wake(an);
				fail_streak = 0;
			}
		} else {
			an->stats.publish_failed++;
			if (fail_streak++ == 0 && acnats_post_locked(an,
			    acnats_notice_new(ACNATS_PUB_FAILED, "%s%s",
			    natsStatus_GetText(s), s == NATS_MAX_PAYLOAD ?
			    " (raise max_payload in the NATS server)" : "")))
				acnats_wake(an);
		}
	}
	/*
	 * libnats gave the connection up (an authorisation error, say): say
	 * so once per streak of such closes; the caller starts a new one.
	 */
	if (!an->stopping && an->conn_closed && (*close_streak)++ == 0 &&
	    acnats_post_locked(an, acnats_notice_new(ACNATS_ERROR, "NATS "
	    "connection given up: %s (check servers, credentials and TLS "
	    "options); a new one every %lld ms, logged again only after the "
	    "link has been up", an->closed_why,
	    (long long)an->conn.reconnect_wait)))
		acnats_wake(an);
	up = an->stopping && an->link_up && !an->conn_closed;
	pthread_mutex_unlock(&an->mu);

	/*
	 * Stopping with the link up (shutdown, reload): publish what is
	 * queued and flush, within a bound, so that the last messages before
	 * a restart still reach the other nodes.
	 */
	if (up)
		acnats_flush_out(an, nc);

	if (sub != NULL) {
		natsSubscription_Unsubscribe(sub);
		pthread_mutex_lock(&an->mu);
		if (natsconn_wait(&an->cond, &an->mu, &an->sub_done,
		    ACNATS_STOP_TIMEOUT) != 0)
			timed_out = 1;
		pthread_mutex_unlock(&an->mu);
		natsSubscription_Destroy(sub);
	}
	if (nc != NULL) {
		natsConnection_Close(nc);
		pthread_mutex_lock(&an->mu);
		if (natsconn_wait(&an->cond, &an->mu, &an->conn_closed,
		    ACNATS_STOP_TIMEOUT) != 0)
			timed_out = 1;
		pthread_mutex_unlock(&an->mu);
		natsConnection_Destroy(nc);
	}
	return (timed_out ? -1 : 0);
}

/*
 * The publisher thread: one connection after another until fini says
 * stop. libnats reconnects a connection by itself for ever, but it gives
 * one up for good on some errors (authorisation); a new one is then made
 * after reconnect_wait.
 */
static void *
acnats_thread(void *arg)
{
	struct acnats	*an = arg;
	uint64_t	 close_streak = 0;
	int		 stop;

	for (;;) {
		if (acnats_session(an, &close_streak) != 0) {
			/* fini reads this after the join. */
			an->leak = 1;
			break;
		}
		pthread_mutex_lock(&an->mu);
		stop = acnats_pause(an, an->conn.reconnect_wait);
		pthread_mutex_unlock(&an->mu);
		if (stop)
			break;
	}
	return (NULL);
}

/*
 * The eventfd is readable (loop thread): deliver the verified frames to
 * every local session and log the notices, at most ACNATS_BATCH at a time
 * so that local sessions are served in between.
 */
static void
acnats_wakeup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acnats		*an = arg;
	struct acnats_queue	 batch = { NULL, NULL, 0, 0 };
	struct acnats_item	*it;
	uint64_t		 v, dropped;
	int			 n, more;

	while (read(an->efd, &v, sizeof v) == -1 && errno == EINTR)
		;
	pthread_mutex_lock(&an->mu);
	for (n = 0; n < ACNATS_BATCH; n++) {
		if ((it = acnats_queue_pop(&an->in)) == NULL)
			break;
		acnats_queue_push(&batch, it);
	}
	if (!(more = (an->in.head != NULL)))
		an->in_signalled = 0;
	pthread_mutex_unlock(&an->mu);

	while ((it = acnats_queue_pop(&batch)) != NULL) {
		switch (it->kind) {
		case ACNATS_FRAME:
			acnats_deliver(an, it);
			break;
		case ACNATS_LINK_UP:
			dropped = an->dropped_while_down;
			an->dropped_while_down = 0;
			an->host->log(an->p, AC_LOG_INFO, "link to NATS up "
			    "(%s) as node %s: frames cross to other nodes",
			    it->text, an->node);
			if (dropped != 0)
				an->host->log(an->p, AC_LOG_WARNING, "%llu "
				    "frames were dropped while the link was "
				    "down (max_pending %zu)",
				    (unsigned long long)dropped,
				    an->max_pending);
			break;
		case ACNATS_LINK_DOWN:
			an->host->log(an->p, AC_LOG_WARNING, "link to NATS "
			    "down (%s): local sessions are still served; "
			    "up to %zu outgoing frames are kept until it "
			    "comes back", an->conn.servers_text,
			    an->max_pending);
			break;
		case ACNATS_PUB_FAILED:
			an->host->log(an->p, AC_LOG_WARNING, "publish to %s "
			    "failed: %s; further failures are counted, not "
			    "logged", an->subject, it->text);
			break;
		case ACNATS_PUB_OK:
			an->host->log(an->p, AC_LOG_INFO, "publishing again "
			    "after %llu failed", (unsigned long long)it->count);
			break;
		case ACNATS_ERROR:
			an->host->log(an->p, AC_LOG_ERROR, "%s", it->text);
			break;
		}
		free(it);
	}
	if (more)
		event_active(an->ev, EV_READ, 1);
}

/*
 * A local message or chunk: queue a copy for the publisher thread. When the
 * queue is full (the link has been down for a while, or NATS cannot keep
 * up) the frame is dropped and counted; the first drop of a streak is
 * logged.
 */
static int
acnats_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct acnats		*an = state;
	struct acnats_item	*it;
	const uint8_t		*bytes;
	size_t			 len, queued;
	int			 full, up;

	bytes = an->host->frame_bytes(frame, &len);
	if ((it = acnats_item_new(ACNATS_FRAME, bytes, len)) == NULL)
		return (-1);

	pthread_mutex_lock(&an->mu);
	queued = an->out.n;
	full = queued >= an->max_pending ||
	    an->out.bytes + len > an->max_pending_bytes;
	up = an->link_up;
	if (full)
		an->stats.dropped++;
	else {
		acnats_queue_push(&an->out, it);
		an->stats.queued++;
		if (up)
			pthread_cond_signal(&an->cond);
	}
	pthread_mutex_unlock(&an->mu);

	if (full) {
		free(it);
		if (!up)
			an->dropped_while_down++;
		if (an->drop_streak++ == 0)
			an->host->log(an->p, AC_LOG_WARNING, "outgoing queue "
			    "full (%zu frames, max_pending %zu; link %s): "
			    "dropping frames for other nodes until it drains",
			    queued, an->max_pending, up ? "up" : "down");
	} else if (an->drop_streak != 0) {
		an->host->log(an->p, AC_LOG_INFO, "outgoing queue has room "
		    "again after %llu dropped frames (%llu in all)",
		    (unsigned long long)an->drop_streak,
		    (unsigned long long)an->stats.dropped);
		an->drop_streak = 0;
	}
	return (AC_PLUGIN_CONTINUE);
}



/* Register the plugin's metrics; a refusal (logged by the host) leaves
 * that one NULL, which the metric functions ignore. */
static void
acnats_metrics_new(struct acnats *an)
{
	const struct ac_host_api	*h = an->host;
	struct ac_plugin		*p = an->p;

	if (!AC_HOST_HAS(h, metric_new))
		return;
	an->m_link_up = h->metric_new(p, AC_METRIC_GAUGE, "nats_link_up",
	    "1 while the link to NATS is up.", NULL, 0);
	an->m_queue_frames = h->metric_new(p, AC_METRIC_GAUGE,
	    "nats_queue_frames", "Frames waiting to be published.", NULL, 0);
	an->m_queue_bytes = h->metric_new(p, AC_METRIC_GAUGE,
	    "nats_queue_bytes", "Bytes waiting to be published.", NULL, 0);
	an->m_published = h->metric_new(p, AC_METRIC_COUNTER,
	    "nats_published_total", "Frames handed to NATS.", NULL, 0);
	an->m_dropped = h->metric_new(p, AC_METRIC_COUNTER,
	    "nats_dropped_total", "Outgoing frames dropped: the queue was "
	    "full (max_pending).", NULL, 0);
	an->m_publish_failed = h->metric_new(p, AC_METRIC_COUNTER,
	    "nats_publish_failures_total", "Frames NATS refused to publish.",
	    NULL, 0);
	an->m_received = h->metric_new(p, AC_METRIC_COUNTER,
	    "nats_received_total", "Frames from other nodes.", NULL, 0);
	an->m_refused = h->metric_new(p, AC_METRIC_COUNTER,
	    "nats_refused_total", "Frames from NATS that failed "
	    "verification.", NULL, 0);
	an->m_overflow = h->metric_new(p, AC_METRIC_COUNTER,
	    "nats_inbound_overflow_total", "Frames from NATS dropped: the "
	    "inbound queue was full.", NULL, 0);
	an->m_delivered = h->metric_new(p, AC_METRIC_COUNTER,
	    "nats_delivered_total", "Frames from other nodes delivered to "
	    "local sessions.", NULL, 0);
}

/* Before a scrape (loop thread): copy the state the metrics mirror. */
static void
acnats_collect(void *state)
{
	struct acnats	*an = state;
	struct acnats_stats st;
	size_t		 frames, bytes;
	int		 up;

	pthread_mutex_lock(&an->mu);
	st = an->stats;
	up = an->link_up;
	frames = an->out.n;
	bytes = an->out.bytes;
	pthread_mutex_unlock(&an->mu);

	an->host->metric_set(an->m_link_up, up ? 1 : 0);
	an->host->metric_set(an->m_queue_frames, (double)frames);
	an->host->metric_set(an->m_queue_bytes, (double)bytes);
	an->host->metric_set(an->m_published, (double)st.published);
	an->host->metric_set(an->m_dropped, (double)st.dropped);
	an->host->metric_set(an->m_publish_failed, (double)st.publish_failed);
	an->host->metric_set(an->m_received, (double)(st.received - st.own));
	an->host->metric_set(an->m_refused, (double)st.refused);
	an->host->metric_set(an->m_overflow, (double)st.overflow);
	an->host->metric_set(an->m_delivered, (double)st.delivered);
}

/* Non-zero when s is a usable subject prefix: tokens without wildcards. */
static int
acnats_valid_prefix(const char *s)
{
	const char	*c;

	if (*s == '\0' || *s == '.' || s[strlen(s) - 1] == '.' ||
	    strstr(s, "..") != NULL)
		return (0);
	for (c = s; *c != '\0'; c++) {
		if (*c <= ' ' || *c == 0x7f || *c == '*' || *c == '>')
			return (0);
	}
	return (1);
}

/* Non-zero when s can go in a NATS header value: printable, no spaces. */
static int
acnats_valid_name(const char *s)
{
	const char	*c;

	if (*s == '\0' || strlen(s) > 200)
		return (0);
	for (c = s; *c != '\0'; c++) {
		if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == ':')
			return (0);
	}
	return (1);
}

/*
 * Read the [plugin.nats] options into an: the connection's (natsconn.c)
 * and the plugin's own. Every error is logged naming the line and the
 * key.
 */
static int
acnats_configure(struct acnats *an, const struct ac_plugin_option *opts,
    size_t nopts)
{
	static const char *const	 keys[] = {
		"servers", "subject_prefix", "node_name", "user", "password",
		"token", "credentials", "tls_ca", "tls_cert", "tls_key",
		"tls_hostname", "max_pending", "max_pending_bytes",
		"reconnect_wait", "send_asap", NULL
	};
	const struct ac_plugin_option	*o;
	const char			*prefix = ACNATS_DEFAULT_PREFIX;
	unsigned long long		 v;
	unsigned int			 seen = 0;
	size_t				 i, k;
	int				 rv;

	an->max_pending = ACNATS_DEFAULT_MAX_PENDING;
	an->max_pending_bytes = ACNATS_DEFAULT_PENDING_BYTES;

	for (i = 0; i < nopts; i++) {
		o = &opts[i];
		for (k = 0; keys[k] != NULL; k++) {
			if (strcmp(o->key, keys[k]) == 0)
				break;
		}
		if (keys[k] == NULL) {
			an->host->log(an->p, AC_LOG_ERROR, "line %d: unknown "
			    "option '%s' (known: servers, subject_prefix, "
			    "node_name, user, password, token, credentials, "
			    "tls_ca, tls_cert, tls_key, tls_hostname, "
			    "max_pending, max_pending_bytes, reconnect_wait, "
			    "send_asap)",
			    o->line, o->key);
			return (-1);
		}
		if (seen & (1U << k)) {
			an->host->log(an->p, AC_LOG_ERROR, "line %d: %s given "
			    "twice", o->line, o->key);
			return (-1);
		}
		seen |= 1U << k;

		if ((rv = natsconn_option(&an->conn, o)) == -1)
			return (-1);
		if (rv == 1)
			continue;
		if (strcmp(o->key, "subject_prefix") == 0) {
			if (!acnats_valid_prefix(o->value)) {
				an->host->log(an->p, AC_LOG_ERROR, "line %d: "
				    "subject_prefix: '%s' is not a NATS "
				    "subject without wildcards", o->line,
				    o->value);
				return (-1);
			}
			prefix = o->value;
			continue;
		}
		if (strcmp(o->key, "send_asap") == 0) {
			if (ac_option_bool(o->value, &an->send_asap) != 0) {
				an->host->log(an->p, AC_LOG_ERROR, "line %d: "
				    "send_asap: bad value '%s' (expected yes or "
				    "no)", o->line, o->value);
				return (-1);
			}
			continue;
		}
		if (strcmp(o->key, "max_pending") == 0 ||
		    strcmp(o->key, "max_pending_bytes") == 0) {
			if (ac_option_uint(o->value, 1, SIZE_MAX / 2,
			    &v) != 0) {
				an->host->log(an->p, AC_LOG_ERROR, "line %d: "
				    "%s: bad value '%s' (expected a positive "
				    "integer)", o->line, o->key, o->value);
				return (-1);
			}
			if (strcmp(o->key, "max_pending") == 0)
				an->max_pending = (size_t)v;
			else
				an->max_pending_bytes = (size_t)v;
			continue;
		}
		/* node_name */
		if (!acnats_valid_name(o->value)) {
			an->host->log(an->p, AC_LOG_ERROR, "line %d: node_name: "
			    "'%s' must be printable, without spaces or ':'",
			    o->line, o->value);
			return (-1);
		}
		free(an->node);
		if ((an->node = strdup(o->value)) == NULL)
			return (-1);
	}
	if (natsconn_finish(&an->conn) != 0)
		return (-1);
	if (asprintf(&an->subject, "%s.broadcast", prefix) == -1) {
		an->subject = NULL;
		return (-1);
	}
	return (0);
}

/* Fill in what is derived: the default node name, the instance id, text. */
static int
acnats_derive(struct acnats *an)
{
	unsigned char	 rnd[16];
	char		 host[256];
	size_t		 i;

	if (an->node == NULL) {
		if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		for (i = 0; host[i] != '\0'; i++) {
			if ((unsigned char)host[i] <= ' ' || host[i] == ':')
				host[i] = '_';
		}
		if (asprintf(&an->node, "%s-%ld", host, (long)getpid()) == -1) {
			an->node = NULL;
			return (-1);
		}
	}

	/*
	 * Own frames are recognised by a random id, not by node_name, so that
	 * two nodes given the same name by mistake still hear each other.
	 */
	if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
		for (i = 0; i < sizeof rnd; i++)
			rnd[i] = (unsigned char)(random() ^ (getpid() >> i) ^
			    (long)time(NULL));
	}
	for (i = 0; i < sizeof rnd; i++)
		snprintf(an->instance + 2 * i, 3, "%02x", rnd[i]);
	return (0);
}

/*
 * Build the libnats options: the connection's (natsconn.c), then no echo
 * (a node does not hear itself), batching or not, and the callbacks.
 */
static int
acnats_make_options(struct acnats *an)
{
	natsOptions	*o;
	natsStatus	 s;
	const char	*text;

	if (natsconn_options(&an->conn, an->node, &an->opts) != 0)
		return (-1);
	o = an->opts;
	if ((s = natsOptions_SetNoEcho(o, true)) != NATS_OK ||
	    (s = natsOptions_SetSendAsap(o, an->send_asap != 0)) != NATS_OK ||
	    (s = natsOptions_SetRetryOnFailedConnect(o, true,
	    acnats_on_connected, an)) != NATS_OK ||
	    (s = natsOptions_SetDisconnectedCB(o, acnats_on_disconnected,
	    an)) != NATS_OK ||
	    (s = natsOptions_SetReconnectedCB(o, acnats_on_connected, an)) !=
	    NATS_OK ||
	    (s = natsOptions_SetClosedCB(o, acnats_on_closed, an)) !=
	    NATS_OK ||
	    (s = natsOptions_SetErrorHandler(o, acnats_on_error, an)) !=
	    NATS_OK) {
		text = nats_GetLastError(NULL);
		an->host->log(an->p, AC_LOG_ERROR, "libnats options: %s",
		    text != NULL && *text != '\0' ? text :
		    natsStatus_GetText(s));
		return (-1);
	}
	return (0);
}

/* Free the state and everything it owns (the threads are gone). */
static void
acnats_free(struct acnats *an)
{
	if (an->ev != NULL)
		event_free(an->ev);
	if (an->efd != -1)
		close(an->efd);
	acnats_queue_clear(&an->in);
	acnats_queue_clear(&an->out);
	if (an->opts != NULL)
		natsOptions_Destroy(an->opts);
	pthread_cond_destroy(&an->cond);
	pthread_mutex_destroy(&an->mu);
	natsconn_free(&an->conn);
	free(an->subject);
	free(an->node);
	free(an);
}

/*
 * Set the plugin up: read the options, open libnats, start the publisher
 * thread (which connects) and watch the eventfd. A NATS server that does
 * not answer is no error: the link comes up when it does.
 */
static int
acnats_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct acnats	*an;
	sigset_t	 all, old;
	int		 error;

	if (host->size < sizeof *host) {
		host->log(p, AC_LOG_ERROR, "host API too old");
		return (-1);
	}
	if ((an = calloc(1, sizeof *an)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		return (-1);
	}
	an->p = p;
	an->host = host;
	an->limits = *host->limits(p);
	an->efd = -1;
	natsconn_init(&an->conn, p, host);
	pthread_mutex_init(&an->mu, NULL);
	pthread_cond_init(&an->cond, NULL);

	if (acnats_configure(an, opts, nopts) != 0 || acnats_derive(an) != 0) {
		acnats_free(an);
		return (-1);
	}

	if (natsconn_open_library(&an->conn) != 0) {
		acnats_free(an);
		return (-1);
	}

	an->iface.size = sizeof an->iface;
	an->iface.node = an->node;
	an->iface.subject = an->subject;
	if (host->interface_publish(p, ACNATS_INTERFACE,
	    ACNATS_INTERFACE_VERSION, &an->iface) != 0)
		goto fail;
	if (acnats_make_options(an) != 0)
		goto fail;
	if ((an->efd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC)) == -1) {
		host->log(p, AC_LOG_ERROR, "eventfd: %s", strerror(errno));
		goto fail;
	}
	an->ev = event_new(host->event_base(p), an->efd, EV_READ|EV_PERSIST,
	    acnats_wakeup_cb, an);
	if (an->ev == NULL || event_add(an->ev, NULL) != 0) {
		host->log(p, AC_LOG_ERROR, "cannot watch the eventfd");
		goto fail;
	}

	/*
	 * Threads inherit the creator's signal mask: block every signal while
	 * ours is made (libnats' connection threads are made from it), so
	 * that signals reach only the loop thread, where the server handles
	 * them.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	error = pthread_create(&an->thread, NULL, acnats_thread, an);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		host->log(p, AC_LOG_ERROR, "pthread_create: %s",
		    strerror(error));
		goto fail;
	}
	an->thread_started = 1;

	acnats_metrics_new(an);
	if (host->key(p) != NULL && ac_key_is_default(host->key(p)))
		host->log(p, AC_LOG_WARNING, "the shared key is the public "
		    "default: anyone who can publish to %s can speak on every "
		    "node", an->subject);
	host->log(p, AC_LOG_INFO, "node %s, subject %s, servers %s; "
	    "max_pending %zu frames / %zu bytes (libnats %s)", an->node,
	    an->subject, an->conn.servers_text, an->max_pending,
	    an->max_pending_bytes, nats_GetVersion());
	*state = an;
	return (0);

fail:
	acnats_free(an);
	return (-1);
}

/* Stop the publisher thread (which closes the link), then free it all. */
static void
acnats_fini(void *state)
{
	struct acnats	*an = state;
	int		 leak = 0;

	if (an == NULL)
		return;
	if (an->thread_started) {
		pthread_mutex_lock(&an->mu);
		an->stopping = 1;
		pthread_cond_broadcast(&an->cond);
		pthread_mutex_unlock(&an->mu);
		pthread_join(an->thread, NULL);
		leak = an->leak;
	}
	an->host->log(an->p, AC_LOG_INFO, "stopped: %llu published, %llu "
	    "dropped (queue full), %llu publish failures, %llu received, "
	    "%llu refused, %llu delivered to %llu sessions, %llu %s",
	    (unsigned long long)an->stats.published,
	    (unsigned long long)an->stats.dropped,
	    (unsigned long long)an->stats.publish_failed,
	    (unsigned long long)(an->stats.received - an->stats.own),
	    (unsigned long long)an->stats.refused,
	    (unsigned long long)an->stats.delivered,
	    (unsigned long long)an->stats.deliveries,
	    (unsigned long long)an->out.n,
	    an->out.n == 1 ? "frame unsent" : "frames unsent");
	if (leak) {
		/*
		 * A libnats callback may still be running with this state:
		 * freeing it would be worse than leaking it.
		 */
		an->host->log(an->p, AC_LOG_WARNING, "libnats did not stop "
		    "in time; its state is left allocated");
		if (an->ev != NULL) {
			event_free(an->ev);
			an->ev = NULL;
		}
		return;
	}
	acnats_free(an);
}
