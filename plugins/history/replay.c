/*
 * replay.c - replay(): a job reads the frames a session asked for, the
 * loop thread checks each one and relays it, then tells chat.
 *
 * The job (tied to the session, so it is cancelled if the session closes
 * while it waits; not serial: it reads on a read-only connection of its
 * own, db_reader, so writes never wait behind it, and the worker pool
 * runs writes before queued replays) gathers the newest wanted messages
 * from the pending list (db.c) and from the disk, newest first, and
 * merges them (merge.c): the newest `limit` that fit in
 * HISTORY_REPLAY_BYTES, each checked to be the frame stored for its room
 * and seq.
 *
 * Back on the loop, each frame goes through host->frame_from_bytes, which
 * checks it as a received frame is checked: CRCs, and the HMAC with the
 * *current* key. A frame stored under a key that has changed since (or
 * larger than a lowered max_content_size) no longer verifies: it is
 * skipped, counted (history_replay_skipped_total) and logged, and the
 * replay says truncated. Nothing the server would not accept from a
 * client reaches a client from the database.
 *
 * Those checks are the replay's cost on the loop (a few microseconds a
 * frame), so a long replay is sent HISTORY_REPLAY_CHUNK frames per loop
 * callback: between two chunks a job that does nothing goes round the
 * worker pool, and its completion sends the next. chat is told once the
 * last frame is queued.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

/* One replay, from replay() to its completion. */
struct replay_job {
	struct history		*h;
	struct db		*db;
	char			 key[HISTORY_ROOM_MAX + 1];
	char			 room[HISTORY_ROOM_MAX + 1];
	uint64_t		 after;		/* seq > after */
	uint64_t		 until;		/* seq <= until */
	size_t			 limit;
	int			 since_mode;
	uint64_t		 wanted;	/* SINCE: until - since */
	int			 over;	/* LAST: count > max_replay */
	ac_history_replayed_fn	 done;
	void			*arg;

	/* Set by the worker. */
	struct store_frame	*frames;	/* oldest first */
	size_t			 n;
	size_t			 mismatched;	/* not the row's */
	int			 cut;	/* the byte budget stopped it */
	int			 failed;
	char			 err[384];

	/* Loop thread, while the frames go out. */
	size_t			 next;	/* the next to send */
	size_t			 sent;
	size_t			 skipped;	/* did not verify */
};

static void	replay_work(void *);
static void	replay_done(void *, struct ac_session *, void *,
		    enum ac_job_status);
static void	replay_more(void *, struct ac_session *, void *,
		    enum ac_job_status);

/*
 * replay() of the interface: check the query and submit the read. Returns
 * 0 (done will be called once, later), or -1 when the request cannot be
 * taken (no database, a bad query, the pool refused).
 */
int
replay_start(struct history *h, struct ac_session *s,
    const struct ac_history_query *q, ac_history_replayed_fn done,
    void *arg)
{
	struct replay_job	*rj;
	struct room		*r;
	uint64_t		 count, kept_after;

	if (h->db == NULL || s == NULL || q == NULL || done == NULL ||
	    !roomname_valid_string(q->room) ||
	    (q->mode != AC_HISTORY_LAST && q->mode != AC_HISTORY_SINCE))
		return -1;
	if ((rj = calloc(1, sizeof *rj)) == NULL)
		return -1;
	rj->h = h;
	rj->db = h->db;
	roomname_fold(rj->key, q->room);
	strcpy(rj->room, q->room);
	rj->until = q->until > INT64_MAX ? INT64_MAX : q->until;
	if (q->mode == AC_HISTORY_LAST) {
		count = q->count != 0 ? q->count : h->opt.replay;
		rj->over = count > h->opt.max_replay;
		rj->limit = (size_t)(rj->over ? h->opt.max_replay : count);
		rj->after = 0;
	} else {
		rj->since_mode = 1;
		rj->limit = (size_t)h->opt.max_replay;
		rj->after = q->since;
		rj->wanted = rj->until > q->since ? rj->until - q->since : 0;
	}
	/* The run of messages over max_messages that waits for its trim
	 * (retention.c) is not the room's any more. */
	r = room_find(rj->key);
	kept_after = retention_kept_after(r != NULL && r->seq > rj->until ?
	    r->seq : rj->until, h->opt.max_messages);
	if (rj->after < kept_after)
		rj->after = kept_after;
	rj->done = done;
	rj->arg = arg;
	if (h->host->job_submit(h->p, s, 0, replay_work,
	    replay_done, rj) == -1) {
		free(rj);
		return -1;
	}
	return 0;
}

/*
 * The read, on a worker. The pending list is copied first, the disk read
 * second: a message missing from the copy had committed before it (it
 * leaves the list only then), so the read, whose snapshot is taken when
 * it starts, has it. That is all a replay needs of the writes' order:
 * it sees every store() called before it, written yet or not.
 */
static void
replay_work(void *arg)
{
	struct replay_job	*rj = arg;
	struct store		*rd;
	struct store_frame	*pend, *disk = NULL, *out;
	struct merge_source	 src[2];
	size_t			 np, nd = 0, n, k;
	int			 pcut, dcut = 0;

	if (rj->limit == 0 || rj->after >= rj->until)
		return;
	if ((pend = calloc(rj->limit, sizeof *pend)) == NULL ||
	    (out = calloc(rj->limit, sizeof *out)) == NULL) {
		free(pend);
		rj->failed = 1;
		snprintf(rj->err, sizeof rj->err, "out of memory");
		return;
	}
	np = db_pending_copy(rj->db, rj->key, rj->after, rj->until,
	    rj->limit, HISTORY_REPLAY_BYTES, pend, &pcut);
	if ((rd = db_reader(rj->db, rj->err, sizeof rj->err)) == NULL)
		rj->failed = 1;
	else {
		if (store_read(rd, rj->key, rj->after, rj->until, rj->limit,
		    HISTORY_REPLAY_BYTES, &disk, &nd, &dcut, rj->err,
		    sizeof rj->err) == -1)
			rj->failed = 1;
		db_reader_put(rj->db, rd);
	}
	if (rj->failed) {
		store_frames_free(pend, np);
		free(out);
		return;
	}

	src[0].f = pend;
	src[0].n = np;
	src[0].cut = pcut;
	src[1].f = disk;
	src[1].n = nd;
	src[1].cut = dcut;
	n = merge_newest(rj->key, &src[0], &src[1], rj->limit,
	    HISTORY_REPLAY_BYTES, out, &rj->mismatched, &rj->cut);
	store_frames_free(pend, np);
	store_frames_free(disk, nd);

	/* Oldest first, for the session. */
	for (k = 0; k < n / 2; k++) {
		struct store_frame	t = out[k];

		out[k] = out[n - 1 - k];
		out[n - 1 - k] = t;
	}
	if (n == 0) {
		free(out);
		out = NULL;
	}
	rj->frames = out;
	rj->n = n;
}

/* Nothing: a job whose completion is the next chunk's turn. */
static void
replay_noop(void *arg)
{
}

/*
 * Tell chat how the replay went and free it. s is the session, NULL when
 * it is gone (then nothing was or will be sent).
 */
static void
replay_finish(struct replay_job *rj, struct ac_session *s)
{
	struct history			*h = rj->h;
	const struct ac_host_api	*host = h->host;
	struct ac_history_result	 r;
	size_t				 skipped;
	char				 why[512];

	memset(&r, 0, sizeof r);
	if (rj->failed) {
		r.status = AC_HISTORY_FAILED;
		r.truncated = 1;
		rj->done(rj->arg, s, &r);
		store_frames_free(rj->frames, rj->n);
		free(rj);
		return;
	}
	r.status = AC_HISTORY_OK;
	r.replayed = s != NULL ? rj->sent : 0;
	skipped = rj->skipped + rj->mismatched;
	if (rj->since_mode)
		r.truncated = rj->sent < rj->wanted;
	else
		r.truncated = rj->over || rj->cut || skipped > 0;
	host->metric_add(h->m[HM_REPLAYS], 1);
	host->metric_add(h->m[HM_REPLAYED], (double)rj->sent);
	if (skipped > 0) {
		host->metric_add(h->m[HM_SKIPPED], (double)skipped);
		snprintf(why, sizeof why, "%zu stored message%s of #%s no "
		    "longer verif%s (the key or the size limits changed since, "
		    "or the file was altered): not replayed", skipped,
		    skipped == 1 ? "" : "s", rj->room,
		    skipped == 1 ? "ies" : "y");
		history_streak_fail(h, &h->verify_streak, skipped,
		    AC_LOG_WARNING, "replaying", why);
	}
	rj->done(rj->arg, s, &r);
	store_frames_free(rj->frames, rj->n);
	free(rj);
}

/*
 * Check and queue the next frames to the session: HISTORY_REPLAY_CHUNK of
 * them, then, if more are left and later is allowed, a job whose
 * completion comes back for the rest, so that a long replay never holds
 * the loop for long. (A job, not a timer: the chain, chat with it, stays
 * loaded until it completes.) With later not allowed, or the pool
 * refusing, the rest goes now.
 */
static void
replay_deliver(struct replay_job *rj, struct ac_session *s, int later)
{
	struct history			*h = rj->h;
	const struct ac_host_api	*host = h->host;
	struct ac_frame			*f;
	size_t				 stop;

	stop = rj->n;
	if (later && rj->next + HISTORY_REPLAY_CHUNK < rj->n)
		stop = rj->next + HISTORY_REPLAY_CHUNK;
	for (; rj->next < stop; rj->next++) {
		f = host->frame_from_bytes(h->p, rj->frames[rj->next].bytes,
		    rj->frames[rj->next].len);
		if (f == NULL) {
			rj->skipped++;
			continue;
		}
		if (host->relay(h->p, f, s) != 0) {
			/* Closing (past its output limit, say): send no
			 * more, and tell chat it is gone. */
			host->frame_unref(h->p, f);
			replay_finish(rj, NULL);
			return;
		}
		host->frame_unref(h->p, f);
		rj->sent++;
	}
	if (rj->next < rj->n) {
		if (host->job_submit(h->p, s, 0, replay_noop, replay_more,
		    rj) == 0)
			return;
		replay_deliver(rj, s, 0);
		return;
	}
	replay_finish(rj, s);
}

/* The next chunk's turn: go on, unless the session is gone. Cancelled
 * with the session still open (the plugin is being unloaded): the rest
 * goes now. */
static void
replay_more(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct replay_job	*rj = arg;

	if (s == NULL) {
		replay_finish(rj, NULL);
		return;
	}
	replay_deliver(rj, s, status == AC_JOB_DONE);
}

/*
 * The read's completion, on the loop thread: relay the frames that still
 * verify to the session, if it is open, and tell chat.
 */
static void
replay_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct replay_job	*rj = arg;
	struct history		*h = rj->h;
	char			 why[512];

	if (status != AC_JOB_DONE) {
		/* The session closed first, or the plugin is unloading. */
		rj->failed = 1;
		replay_finish(rj, s);
		return;
	}
	if (rj->failed) {
		h->host->metric_add(h->m[HM_REPLAY_FAILURES], 1);
		snprintf(why, sizeof why, "%s: %s", rj->db->path, rj->err);
		history_streak_fail(h, &h->read_streak, 1, AC_LOG_ERROR,
		    "reading history", why);
		replay_finish(rj, s);
		return;
	}
	history_streak_ok(h, &h->read_streak, "reading history");
	if (s == NULL) {
		replay_finish(rj, NULL);
		return;
	}
	replay_deliver(rj, s, 1);
}
