/*
 * batch.c - store(): every message handed to the plugin is written by a
 * job on the worker pool, many messages to a job, one transaction each.
 *
 * Batching is group commit: an instance has at most one write job that is
 * still open, submitted at the first store() after the previous one was
 * taken by a worker. Until a worker takes it (seals it), every store()
 * adds to it. A quiet chat thus writes each message at once, alone; a busy
 * one writes whatever came in while the last transaction ran, all in the
 * next. No timer, and nothing waits for a batch to fill.
 *
 * The job is submitted at the first store() of its batch, not later in
 * the loop turn: only jobs count towards the chain the host keeps loaded,
 * and a completion of chat's must run before chat's fini. But the worker
 * that takes it waits until the loop turn that opened the batch has
 * ended (an event made active at the first store() closes the batch),
 * for at most BATCH_CLOSE_WAIT_NS. A sender's frames arrive several to a
 * read and chat stores them one after another in that turn; a worker
 * woken at the first store() used to seal the batch after one or two of
 * them, so a third of all transactions held a single message and the
 * rest of the burst waited for the next one. A transaction costs about
 * twenty pages written to the WAL whatever it holds, so one per turn is
 * what keeps the store's CPU per message low. A batch that reaches
 * BATCH_CLOSE_AT messages is closed at once, so that a long burst is
 * written in more than one transaction, the first while chat still
 * stores the rest and the next while chat delivers the first: with one
 * transaction per turn a room at window 512 went in lock step (all of a
 * window written, then all of it delivered), back when the host read a
 * session's whole input in one turn. It reads at most 64 frames of a
 * session a turn now (DISPATCH_BATCH, src/server/dispatch.c), so
 * BATCH_CLOSE_AT is that: one sender's turn is one batch, and a turn
 * with many senders is still cut into transactions that overlap with
 * the deliveries. It was 32, which cut every turn of a busy sender in
 * two: each member then got that turn's messages in two writes to its
 * socket instead of one, and those writes, not SQLite, were most of what
 * history added to a room's fan-out (window 64: 0.35 against 0.27 us of
 * server CPU per delivery, and 0.75 against 0.90 of the rate without
 * history, in one interleaved run). The wait is bounded so
 * that a worker never depends on the loop (shutdown joins the workers
 * with the loop stopped). Write jobs are
 * AC_JOB_SERIAL (an instance's writes commit in store() order, so the
 * completions of one room run in that order) and AC_JOB_NO_CANCEL (a
 * reload or shutdown never drops delivered messages).
 *
 * Both `sync` modes make chat wait for the completion (durable() is
 * non-zero): that is what makes "a kill -9 of asyncchatd loses nothing
 * delivered" true, since a message still in a batch lives only in this
 * process. With sync = normal the completion comes once the transaction
 * is in the WAL file, written but not fsynced (the kernel has it, so only
 * a crash of the machine can lose it); with sync = full, once it is
 * fsynced. docs/HISTORY.md has the figures.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "history.h"

/* How long a worker waits for the loop turn that opened its batch: 2 ms. */
#define BATCH_CLOSE_WAIT_NS	2000000L

/* A batch is closed before the end of its turn once it holds this many. */
#define BATCH_CLOSE_AT		64

/* One write job: the messages it writes, and what became of them. */
struct batch {
	struct history		*h;
	struct db		*db;
	struct msg_list		 msgs;	/* in store() order */
	size_t			 n;
	int			 closed;	/* turn over (pend_mu) */
	int			 sealed;	/* taken (pend_mu) */

	/* Copied for the worker, which reads no instance state. */
	const struct ac_host_api *host;
	int			 sync_full;
	struct ac_metric	*m_batch;
	struct ac_metric	*m_seconds;

	/* Set by the worker. */
	int			 failed;
	int			 wal_frames;	/* after the write */
	size_t			 already;	/* seq stored before */
	char			 err[384];
};

static void	batch_work(void *);
static void	batch_done(void *, struct ac_session *, void *,
		    enum ac_job_status);

/* A new, empty batch of instance h. */
static struct batch *
batch_new(struct history *h)
{
	struct batch	*b;

	if ((b = calloc(1, sizeof *b)) == NULL)
		return NULL;
	b->h = h;
	b->db = h->db;
	TAILQ_INIT(&b->msgs);
	b->host = h->host;
	b->sync_full = h->opt.sync_full;
	b->m_batch = h->m[HM_BATCH];
	b->m_seconds = h->m[HM_WRITE_SECONDS];
	return b;
}

/* A message could not be taken: count it and say why (rate-limited). */
static int
batch_refuse(struct history *h, const char *why)
{
	h->host->metric_add(h->m[HM_STORE_FAILURES], 1);
	h->host->metric_set(h->m[HM_HEALTHY], 0);
	history_streak_fail(h, &h->store_streak, 1, AC_LOG_ERROR,
	    "storing messages", why);
	return -1;
}

/*
 * store() of the interface: note the seq, then add the message to the
 * open batch, or start a new one. Returns 0 when the message will be
 * written (done, if not NULL, is called once it is, or once it failed),
 * -1 when it will not (nothing is called).
 */
int
batch_store(struct history *h, const struct ac_history_message *hm,
    ac_history_stored_fn done, void *arg)
{
	const struct ac_host_api	*host = h->host;
	struct db			*db = h->db;
	struct room			*r;
	struct batch			*b;
	struct msg			*m;
	const uint8_t			*bytes;
	size_t				 len = 0;
	char				 key[HISTORY_ROOM_MAX + 1];

	if (hm == NULL || !roomname_valid_string(hm->room) || hm->seq == 0 ||
	    hm->seq > INT64_MAX || hm->frame == NULL)
		return batch_refuse(h, "store() called with a bad room, seq "
		    "or frame");
	roomname_fold(key, hm->room);
	/* Counted even if it is not stored: chat delivers it with this seq,
	 * which must never be handed out again. */
	if ((r = room_note(key, hm->room, hm->seq)) == NULL)
		return batch_refuse(h, "out of memory");
	if (db == NULL)
		return -1;	/* said at start: running without history */
	bytes = host->frame_bytes(hm->frame, &len);
	if (bytes == NULL || len == 0)
		return batch_refuse(h, "store() called with an empty frame");
	if ((m = calloc(1, sizeof *m)) == NULL)
		return batch_refuse(h, "out of memory");
	strcpy(m->key, key);
	strcpy(m->name, r->name);	/* the case first stored */
	m->seq = hm->seq;
	m->time_ms = hm->time_ms;
	m->trim_to = retention_trim_to(r, hm->seq, h->opt.max_messages);
	m->bytes = bytes;
	m->len = len;
	m->done = done;
	m->arg = arg;

	pthread_mutex_lock(&db->pend_mu);
	if (db_pending_full(db, len)) {
		pthread_mutex_unlock(&db->pend_mu);
		free(m);
		return batch_refuse(h, "too many messages waiting for the "
		    "disk");
	}
	m->frame = host->frame_ref(h->p, hm->frame);
	b = h->open;
	if (b != NULL && !b->sealed) {
		TAILQ_INSERT_TAIL(&b->msgs, m, in_batch);
		b->n++;
		if (!b->closed && b->n >= BATCH_CLOSE_AT) {
			b->closed = 1;
			pthread_cond_broadcast(&db->close_cv);
		}
		db_pending_add(db, m);
		pthread_mutex_unlock(&db->pend_mu);
		return 0;
	}
	pthread_mutex_unlock(&db->pend_mu);

	if ((b = batch_new(h)) == NULL) {
		host->frame_unref(h->p, m->frame);
		free(m);
		return batch_refuse(h, "out of memory");
	}
	TAILQ_INSERT_TAIL(&b->msgs, m, in_batch);
	b->n = 1;
	/* On the pending list before the job exists, so that the worker
	 * always finds it there to take off. */
	pthread_mutex_lock(&db->pend_mu);
	db_pending_add(db, m);
	pthread_mutex_unlock(&db->pend_mu);
	if (host->job_submit(h->p, NULL, AC_JOB_SERIAL|AC_JOB_NO_CANCEL,
	    batch_work, batch_done, b) == -1) {
		pthread_mutex_lock(&db->pend_mu);
		db_pending_remove(db, m);
		pthread_mutex_unlock(&db->pend_mu);
		host->frame_unref(h->p, m->frame);
		free(m);
		free(b);
		return batch_refuse(h, "the worker pool refused the write "
		    "(worker_queue full?)");
	}
	h->open = b;
	if (h->close_ev != NULL)
		event_active(h->close_ev, EV_TIMEOUT, 1);
	else
		b->closed = 1;	/* never the case once started */
	return 0;
}

/* The loop turn that opened the batch is over: the worker may take it. */
static void
batch_close_cb(evutil_socket_t fd, short what, void *arg)
{
	struct history	*h = arg;

	if (h->open == NULL || h->db == NULL)
		return;
	pthread_mutex_lock(&h->db->pend_mu);
	h->open->closed = 1;
	pthread_cond_broadcast(&h->db->close_cv);
	pthread_mutex_unlock(&h->db->pend_mu);
}

/* Make the event that closes a batch at the end of its loop turn. */
int
batch_start(struct history *h)
{
	h->close_ev = event_new(h->host->event_base(h->p), -1, 0,
	    batch_close_cb, h);
	return (h->close_ev == NULL ? -1 : 0);
}

/* Free that event (fini: every write job has completed). */
void
batch_stop(struct history *h)
{
	if (h->close_ev != NULL)
		event_free(h->close_ev);
	h->close_ev = NULL;
}

/* Seconds from a to b. */
static double
batch_seconds(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* The write, on a worker: seal the batch, write it in one transaction,
 * take its messages off the pending list. */
static void
batch_work(void *arg)
{
	struct batch		*b = arg;
	struct db		*db = b->db;
	struct store_row	*rows;
	struct msg		*m;
	struct timespec		 t0, t1, until;
	size_t			 i;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += BATCH_CLOSE_WAIT_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&db->pend_mu);
	while (!b->closed && pthread_cond_timedwait(&db->close_cv,
	    &db->pend_mu, &until) == 0)
		;
	b->sealed = 1;
	pthread_mutex_unlock(&db->pend_mu);

	if ((rows = calloc(b->n, sizeof *rows)) == NULL) {
		b->failed = 1;
		snprintf(b->err, sizeof b->err, "out of memory");
		goto out;
	}
	i = 0;
	TAILQ_FOREACH(m, &b->msgs, in_batch) {
		rows[i].key = m->key;
		rows[i].name = m->name;
		rows[i].seq = m->seq;
		rows[i].time_ms = m->time_ms;
		rows[i].frame = m->bytes;
		rows[i].len = m->len;
		i++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&db->conn_mu);
	if (store_write(db->st, rows, b->n, b->sync_full, b->err,
	    sizeof b->err) == -1)
		b->failed = 1;
	b->wal_frames = store_wal_frames(db->st);
	pthread_mutex_unlock(&db->conn_mu);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	i = 0;
	TAILQ_FOREACH(m, &b->msgs, in_batch) {
		m->stored = rows[i].ok;
		if (!b->failed && !rows[i].ok)
			b->already++;
		i++;
	}
	free(rows);
	if (!b->failed) {
		b->host->metric_observe(b->m_seconds,
		    batch_seconds(&t0, &t1));
		b->host->metric_observe(b->m_batch, (double)b->n);
	}
out:
	/* Only now, committed (or not), do they leave the pending list:
	 * a replay finds each of them in the list or on disk. */
	pthread_mutex_lock(&db->pend_mu);
	TAILQ_FOREACH(m, &b->msgs, in_batch)
		db_pending_remove(db, m);
	pthread_mutex_unlock(&db->pend_mu);
}

/*
 * The write's completion, on the loop thread: count, report, and run the
 * callers' completions in store() order.
 */
static void
batch_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct batch			*b = arg;
	struct history			*h = b->h;
	const struct ac_host_api	*host = h->host;
	struct msg			*m;
	uint64_t			 stored = 0, failed = 0;
	char				 why[512];

	if (h->open == b)
		h->open = NULL;
	if (status == AC_JOB_DONE)
		checkpoint_due(h, b->wal_frames);
	if (status != AC_JOB_DONE) {
		/* Never, for a job that may not be cancelled; but if it were,
		 * its messages are still on the pending list. */
		pthread_mutex_lock(&b->db->pend_mu);
		TAILQ_FOREACH(m, &b->msgs, in_batch)
			db_pending_remove(b->db, m);
		pthread_mutex_unlock(&b->db->pend_mu);
		b->failed = 1;
		snprintf(b->err, sizeof b->err, "the write was cancelled");
	}
	TAILQ_FOREACH(m, &b->msgs, in_batch) {
		if (m->stored)
			stored++;
		else
			failed++;
	}
	host->metric_add(h->m[HM_STORED], (double)stored);
	if (failed > 0) {
		host->metric_add(h->m[HM_STORE_FAILURES], (double)failed);
		host->metric_set(h->m[HM_HEALTHY], 0);
		if (b->failed)
			snprintf(why, sizeof why, "%s: %s", b->db->path,
			    b->err);
		else
			snprintf(why, sizeof why, "%s: %zu message%s with a "
			    "seq stored already (another asyncchatd using "
			    "this database?)", b->db->path, b->already,
			    b->already == 1 ? "" : "s");
		history_streak_fail(h, &h->store_streak, failed,
		    AC_LOG_ERROR, "storing messages", why);
	} else {
		host->metric_set(h->m[HM_HEALTHY], 1);
		history_streak_ok(h, &h->store_streak, "storing messages");
		retention_trim(h, b->db, &b->msgs);
	}

	while ((m = TAILQ_FIRST(&b->msgs)) != NULL) {
		TAILQ_REMOVE(&b->msgs, m, in_batch);
		if (m->done != NULL)
			m->done(m->arg, m->stored ? AC_HISTORY_OK :
			    AC_HISTORY_FAILED);
		host->frame_unref(h->p, m->frame);
		free(m);
	}
	free(b);
}
