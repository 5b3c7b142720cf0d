/*
 * checkpoint.c - the WAL folded into the database file beside the writes,
 * never inside one.
 *
 * SQLite's automatic checkpoint runs inside the commit that takes the WAL
 * past 1000 pages, on the connection that commits: ours writes on a
 * worker, and chat delivers a message only once its write has completed
 * (docs/HISTORY.md), so every 30 to 60 transactions a room waited 5-10 ms
 * for a checkpoint instead of 0.3-0.5 ms for its write. store.c turns the
 * automatic one off on the writer and notes the WAL's size at each
 * commit; here, once a write has taken the WAL past HISTORY_CKPT_PAGES, a
 * job of its own (not a serial one, so it runs beside the next writes)
 * checkpoints on a connection of its own, passively: it copies the pages
 * no reader still needs and waits for no one. One at a time per database.
 *
 * Durability does not change: a commit is as durable as it was once its
 * WAL write is done, and the checkpoint moves committed pages only.
 *
 * A WAL that a checkpoint has copied in full is started over by the next
 * write, if that write starts after the copy ends. A pass copies the WAL
 * as it was when the pass began, and writes go on beside it, so the job
 * runs passes until one finds nothing new (at most HISTORY_CKPT_PASSES,
 * each shorter than the last); if writes still came in between, the next
 * job starts once the WAL has grown HISTORY_CKPT_STEP pages more. A busy
 * room writes a transaction every millisecond or two, though, and then
 * the copy can end while a write is at work, job after job, and the WAL
 * is not started over. Once it is past HISTORY_CKPT_HOLD pages, the job is a
 * serial one instead, queued after the writes: no write of the instance
 * runs beside it, so it copies what the passive jobs left (the pages of
 * the last few transactions) to the end, and the next write starts the
 * WAL over. The writes queued meanwhile wait for that short copy and its
 * fsync, once in 2000 pages at most, instead of a copy of 1000 pages
 * inside a commit; and the WAL stays bounded. (SQLite's RESTART mode
 * would do the same from a job beside the writes, but a write that finds
 * it at work sleeps in SQLite's busy handler, 1, 2, 5, 10 ms..., far
 * longer than the copy.) history_checkpoint_waits_total counts them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

/* One checkpoint job and what it found. */
struct ckpt_job {
	struct history	*h;
	struct db	*db;
	int		 serial;	/* between two writes */
	int		 log;		/* pages in the WAL */
	int		 done;		/* of them in the file */
	int		 failed;
	char		 err[384];
};

/* The checkpoint, on a worker: passive passes, beside the writes until
 * one finds nothing new (at most HISTORY_CKPT_PASSES), or one between
 * two writes. */
static void
checkpoint_work(void *arg)
{
	struct ckpt_job	*cj = arg;
	struct db	*db = cj->db;
	int		 last, passes = 0;

	/* Only this job uses db->ckpt, and one runs at a time. */
	if (db->ckpt == NULL && store_open_checkpointer(db->path,
	    HISTORY_BUSY_MS, &db->ckpt, cj->err, sizeof cj->err) == -1) {
		cj->failed = 1;
		return;
	}
	cj->log = -1;
	do {
		last = cj->log;
		if (store_checkpoint(db->ckpt, &cj->log, &cj->done, cj->err,
		    sizeof cj->err) == -1) {
			cj->failed = 1;
			return;
		}
	} while (!cj->serial && cj->log != last &&
	    ++passes < HISTORY_CKPT_PASSES);
}

/* The checkpoint's completion, on the loop thread: note where the WAL
 * stands, and say what went wrong. */
static void
checkpoint_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct ckpt_job	*cj = arg;
	struct history	*h = cj->h;
	struct db	*db = cj->db;
	char		 why[512];

	db->ckpt_running = 0;
	if (status != AC_JOB_DONE) {
		free(cj);
		return;
	}
	if (cj->failed) {
		snprintf(why, sizeof why, "%s: %s", db->path, cj->err);
		history_streak_fail(h, &h->ckpt_streak, 1, AC_LOG_WARNING,
		    "checkpointing the WAL", why);
		free(cj);
		return;
	}
	history_streak_ok(h, &h->ckpt_streak, "checkpointing the WAL");
	db->ckpt_log = cj->log;
	h->host->metric_add(h->m[HM_CHECKPOINTS], 1);
	if (cj->serial)
		h->host->metric_add(h->m[HM_CKPT_WAITS], 1);
	free(cj);
}

/*
 * A write of instance h has completed, leaving frames pages in the WAL:
 * start a checkpoint if the WAL has grown past HISTORY_CKPT_PAGES, none
 * is running, and the last one's WAL has since grown HISTORY_CKPT_STEP
 * pages or been started over; between two writes once it is past
 * HISTORY_CKPT_HOLD. Loop thread.
 */
void
checkpoint_due(struct history *h, int frames)
{
	struct db	*db = h->db;
	struct ckpt_job	*cj;

	if (db == NULL || db->ckpt_running || frames < HISTORY_CKPT_PAGES ||
	    (frames >= db->ckpt_log &&
	    frames < db->ckpt_log + HISTORY_CKPT_STEP))
		return;
	if ((cj = calloc(1, sizeof *cj)) == NULL)
		return;		/* the next write tries again */
	cj->h = h;
	cj->db = db;
	cj->serial = frames >= HISTORY_CKPT_HOLD;
	if (h->host->job_submit(h->p, NULL, cj->serial ? AC_JOB_SERIAL : 0,
	    checkpoint_work, checkpoint_done, cj) == -1) {
		free(cj);
		return;
	}
	db->ckpt_running = 1;
}
