/*
 * retention.c - pruning by age, and the database's size, off the loop.
 *
 * max_messages: once a room is a run over it (1/HISTORY_TRIM_SHARE of
 * max_messages, HISTORY_TRIM_MAX at most), the write that got it there is
 * followed by a trim job that drops the run whole. Not at every write: a
 * DELETE at the head of a room's rows changes about as many pages of the
 * B-trees (the table's and both indexes') whatever it deletes, and at one
 * per transaction those pages were a third of the store's work (room
 * fan-out benchmark: 7.7 against 4.4 us of write per message without
 * max_messages). And not in the write's transaction: chat delivers a
 * message once its write is done, so a trim there delayed the delivery
 * of every message in that batch (a room at window 64 kept 0.85 of its
 * rate without history with the trims in the writes, 0.95 with no trims
 * at all); as a job of its own the trim runs while the loop delivers.
 * So the file may hold a room's max_messages and a run more, and replays
 * hide the run: they read no further back than max_messages below the
 * room's seq (retention_kept_after), so what a client sees is exactly
 * the newest max_messages. max_age needs a clock:
 * a timer starts a pass at the first loop turn and every minute after;
 * a pass is a chain of serial jobs, each deleting at most
 * HISTORY_PRUNE_CHUNK of the oldest messages in a short transaction of its
 * own, so that a large first prune never holds the database (and the
 * writes waiting behind it) for long. Each job also reads the size of
 * the file and its WAL for the history_db_bytes gauge.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "history.h"

/* One prune job. */
struct prune_job {
	struct history	*h;
	struct db	*db;
	int64_t		 cutoff_ms;	/* 0: no max_age */
	uint64_t	 deleted;
	uint64_t	 size;
	int		 failed;
	char		 err[384];
};

/* A trim job: the rooms of one batch that are a run over max_messages. */
struct trim_job {
	struct history	*h;
	struct db	*db;
	size_t		 n;
	struct trim_room {
		char	 key[HISTORY_ROOM_MAX + 1];
		uint64_t upto;
	}		*rooms;
	int		 failed;
	char		 err[384];
};

static void	retention_tick_cb(evutil_socket_t, short, void *);
static void	retention_work(void *);
static void	retention_done(void *, struct ac_session *, void *,
		    enum ac_job_status);

/* The seq a replay reads after, at the least, so that it shows a room
 * of last_seq its newest max_messages only (0: from the first). */
uint64_t
retention_kept_after(uint64_t last_seq, uint64_t max_messages)
{
	if (max_messages == 0 || last_seq <= max_messages)
		return 0;
	return last_seq - max_messages;
}

/*
 * The trim a message of seq in room r asks for once it is written: drop
 * the room's messages up to the seq returned, or nothing (0). Loop
 * thread, at store(); r->trimmed remembers the last one asked for, so
 * trims come a run at a time (the first one after a start drops whatever
 * is over).
 */
uint64_t
retention_trim_to(struct room *r, uint64_t seq, uint64_t max_messages)
{
	uint64_t	run, over;

	if ((over = retention_kept_after(seq, max_messages)) == 0)
		return 0;
	run = max_messages / HISTORY_TRIM_SHARE;
	if (run > HISTORY_TRIM_MAX)
		run = HISTORY_TRIM_MAX;
	if (run == 0)
		run = 1;
	if (over < r->trimmed || over - r->trimmed < run)
		return 0;
	r->trimmed = over;
	return over;
}

/* The trims, on a worker: one short transaction per room. */
static void
retention_trim_work(void *arg)
{
	struct trim_job	*tj = arg;
	uint64_t	 deleted;
	size_t		 i;

	pthread_mutex_lock(&tj->db->conn_mu);
	for (i = 0; i < tj->n && !tj->failed; i++) {
		if (store_trim(tj->db->st, tj->rooms[i].key, tj->rooms[i].upto,
		    &deleted, tj->err, sizeof tj->err) == -1)
			tj->failed = 1;
	}
	pthread_mutex_unlock(&tj->db->conn_mu);
}

/* The trims are done: say so if they failed (the next run's trim drops
 * what this one left: it deletes everything up to its seq). */
static void
retention_trim_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct trim_job	*tj = arg;
	struct history	*h = tj->h;
	char		 why[512];

	if (status == AC_JOB_DONE && tj->failed) {
		snprintf(why, sizeof why, "%s: %s", tj->db->path, tj->err);
		history_streak_fail(h, &h->prune_streak, 1, AC_LOG_WARNING,
		    "trimming to max_messages", why);
	} else if (status == AC_JOB_DONE)
		history_streak_ok(h, &h->prune_streak,
		    "trimming to max_messages");
	free(tj->rooms);
	free(tj);
}

/*
 * After a write: submit a job for the trims its messages asked for (the
 * highest per room). Loop thread. A job the pool refuses is dropped: the
 * rows stay until the room's next run is trimmed.
 */
void
retention_trim(struct history *h, struct db *db, struct msg_list *msgs)
{
	struct trim_job	*tj = NULL;
	struct msg	*m;
	size_t		 i;

	TAILQ_FOREACH(m, msgs, in_batch) {
		if (m->trim_to == 0)
			continue;
		if (tj == NULL && (tj = calloc(1, sizeof *tj)) == NULL)
			return;
		for (i = 0; i < tj->n; i++) {
			if (strcmp(tj->rooms[i].key, m->key) == 0)
				break;
		}
		if (i == tj->n) {
			struct trim_room	*r;

			r = reallocarray(tj->rooms, tj->n + 1, sizeof *r);
			if (r == NULL)
				break;
			tj->rooms = r;
			strcpy(r[i].key, m->key);
			r[i].upto = 0;
			tj->n++;
		}
		if (m->trim_to > tj->rooms[i].upto)
			tj->rooms[i].upto = m->trim_to;
	}
	if (tj == NULL)
		return;
	tj->h = h;
	tj->db = db;
	if (tj->n == 0 || h->host->job_submit(h->p, NULL,
	    AC_JOB_SERIAL|AC_JOB_NO_CANCEL, retention_trim_work,
	    retention_trim_done, tj) == -1) {
		free(tj->rooms);
		free(tj);
	}
}

/* Submit the next prune job of a pass; -1 if the pool refused it. */
static int
retention_submit(struct history *h)
{
	struct prune_job	*pj;
	struct timespec		 now;

	if ((pj = calloc(1, sizeof *pj)) == NULL)
		return -1;
	pj->h = h;
	pj->db = h->db;
	if (h->opt.max_age > 0) {
		clock_gettime(CLOCK_REALTIME, &now);
		pj->cutoff_ms = (int64_t)now.tv_sec * 1000 +
		    now.tv_nsec / 1000000 - (int64_t)h->opt.max_age * 1000;
	}
	if (h->host->job_submit(h->p, NULL, AC_JOB_SERIAL, retention_work,
	    retention_done, pj) == -1) {
		free(pj);
		return -1;
	}
	h->pruning = 1;
	return 0;
}

/* Arm the timer for the next pass, after delay seconds. */
static void
retention_arm(struct history *h, time_t delay)
{
	struct timeval	tv = { delay, 0 };

	evtimer_add(h->prune_ev, &tv);
}

/* The timer: start a pass unless one is still going. */
static void
retention_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct history	*h = arg;

	if (!h->pruning)
		retention_submit(h);	/* refused: next minute */
	retention_arm(h, HISTORY_PRUNE_INTERVAL);
}

/* One chunk of a pass, on a worker. */
static void
retention_work(void *arg)
{
	struct prune_job	*pj = arg;

	pthread_mutex_lock(&pj->db->conn_mu);
	if (pj->cutoff_ms > 0 && store_prune_age(pj->db->st, pj->cutoff_ms,
	    HISTORY_PRUNE_CHUNK, &pj->deleted, pj->err,
	    sizeof pj->err) == -1)
		pj->failed = 1;
	pthread_mutex_unlock(&pj->db->conn_mu);
	pj->size = store_size(pj->db->st);
}

/* A chunk is done: count, and go on with the pass while chunks come back
 * full. */
static void
retention_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct prune_job		*pj = arg;
	struct history			*h = pj->h;
	const struct ac_host_api	*host = h->host;
	char				 why[512];

	h->pruning = 0;
	if (status != AC_JOB_DONE) {
		free(pj);
		return;		/* unloading */
	}
	host->metric_set(h->m[HM_DB_BYTES], (double)pj->size);
	if (pj->failed) {
		snprintf(why, sizeof why, "%s: %s", pj->db->path, pj->err);
		history_streak_fail(h, &h->prune_streak, 1, AC_LOG_WARNING,
		    "pruning by max_age", why);
		h->pruned_pass = 0;
		free(pj);
		return;
	}
	history_streak_ok(h, &h->prune_streak, "pruning by max_age");
	host->metric_add(h->m[HM_PRUNED], (double)pj->deleted);
	h->pruned_pass += pj->deleted;
	if (pj->deleted == HISTORY_PRUNE_CHUNK && retention_submit(h) == 0) {
		free(pj);
		return;
	}
	if (h->pruned_pass > 0)
		host->log(h->p, AC_LOG_INFO, "pruned %llu message%s older "
		    "than max_age", (unsigned long long)h->pruned_pass,
		    h->pruned_pass == 1 ? "" : "s");
	h->pruned_pass = 0;
	free(pj);
}

/* Start the retention timer: the first pass at the next loop turn (never
 * in init, so `asyncchatd -t` prunes nothing). */
int
retention_start(struct history *h)
{
	h->prune_ev = evtimer_new(h->host->event_base(h->p),
	    retention_tick_cb, h);
	if (h->prune_ev == NULL)
		return -1;
	retention_arm(h, 0);
	return 0;
}

/* Stop the timer (fini: no prune job is out any more). */
void
retention_stop(struct history *h)
{
	if (h->prune_ev != NULL)
		event_free(h->prune_ev);
	h->prune_ev = NULL;
}
