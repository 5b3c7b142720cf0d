/*
 * replay.c - replay(): a room's stored messages, read from the stream on
 * a worker, checked and queued to one session on the loop.
 *
 * The stream numbers its messages across every room; a room's seq is in
 * each message's header. So the read goes in three steps, all requests
 * to JetStream from the job:
 *
 *  1. the room's last message (from the stream leader, never stale): its
 *     seq n and stream sequence L. The replay covers up to n (history.h:
 *     a numbering backend replays to the room's end as it reads, and says
 *     how far in result->last).
 *  2. the stream sequence of the first message wanted (seq k: since + 1,
 *     or n - count + 1, or the newest max_replay): a binary search over
 *     "the room's next message from stream sequence x" (direct gets, which
 *     any replica answers). The room's messages are in seq order in the
 *     stream (a race's losers right after their winners), so that is
 *     monotonic; message k is at most at L - (n - k), which is tried
 *     first and is the answer when the room's recent messages are
 *     contiguous and the one before it has a lower seq. A replica behind the leader can only make
 *     the search start earlier, never skip a message.
 *  3. an ordered consumer filtered on the room's subject from there, read
 *     up to seq n. (Should the search come back empty-handed, which only
 *     a replica far behind the leader could make it, the room is read
 *     from the stream's start: slower, still exact.)
 *
 * Then, on the loop, each frame goes through host->frame_from_bytes (CRCs
 * and HMAC with the current key, as a client's frame) and is relayed, at
 * most CLUSTER_REPLAY_CHUNK per loop callback (a job that does nothing
 * brings the next chunk's turn), and chat is told. At most
 * CLUSTER_REPLAY_BYTES of frames are sent: the newest that fit.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* One stored frame read. */
struct replay_frame {
	uint8_t		*bytes;
	size_t		 len;
	uint64_t	 seq;
};

/* One replay, from replay() to its completion. */
struct replay_job {
	struct cluster		*cl;
	struct link		*link;
	char			 stream[128];
	char			 subject[160];
	char			 room[CLUSTER_ROOM_MAX + 1];
	char			 fname[CLUSTER_ROOM_MAX + 1];
	int			 since_mode;
	uint64_t		 since;
	uint64_t		 count;		/* LAST: how many */
	int			 over;		/* LAST: count > max_replay */
	uint64_t		 max_replay;
	uint64_t		 until;
	ac_history_replayed_fn	 done;
	void			*arg;

	/* Set by the worker. */
	struct replay_frame	*frames;	/* oldest first */
	size_t			 n;
	uint64_t		 last;		/* the room's last seq */
	uint64_t		 last_sseq;	/* its stream sequence */
	uint64_t		 known;		/* the room's seq known here */
	uint64_t		 first;		/* the first seq wanted */
	int			 cut;		/* bytes or count cut it */
	int			 short_read;	/* the read stopped at reached */
	uint64_t		 reached;	/* ... the last seq it read */
	int			 failed;
	int			 probes;
	char			 err[384];

	/* Loop thread, while the frames go out. */
	size_t			 next;
	size_t			 sent;
	size_t			 skipped;
};

static void	replay_done(void *, struct ac_session *, void *,
		    enum ac_job_status);
static void	replay_more(void *, struct ac_session *, void *,
		    enum ac_job_status);

/* Note why the read failed (libnats' words). */
static void
replay_fail(struct replay_job *rj, const char *what, natsStatus s)
{
	const char	*text = nats_GetLastError(NULL);

	rj->failed = 1;
	snprintf(rj->err, sizeof rj->err, "%s: %s", what, text != NULL &&
	    *text != '\0' ? text : natsStatus_GetText(s));
}

/*
 * The room's next message at or after stream sequence x: its seq into
 * *seq and its stream sequence into *at. Returns 1, 0 when there is none
 * (or the replica has none yet), -1 on failure.
 */
static int
replay_next(struct replay_job *rj, uint64_t x, uint64_t *seq, uint64_t *at)
{
	jsDirectGetMsgOptions	 dg;
	natsMsg			*m;
	natsStatus		 s;
	int			 alien;

	/* Messages no server made (without a seq) are stepped over. */
	for (alien = 0; alien < 16; alien++) {
		rj->probes++;
		jsDirectGetMsgOptions_Init(&dg);
		dg.Sequence = x;
		dg.NextBySubject = rj->subject;
		m = NULL;
		s = js_DirectGetMsg(&m, rj->link->js, rj->stream, NULL, &dg);
		if (s == NATS_NOT_FOUND)
			return (0);
		if (s != NATS_OK) {
			replay_fail(rj, "direct get", s);
			return (-1);
		}
		if (cluster_header_u64(m, "Nats-Sequence", at) != 0) {
			natsMsg_Destroy(m);
			rj->failed = 1;
			snprintf(rj->err, sizeof rj->err, "a direct get of %s "
			    "without its stream sequence", rj->subject);
			return (-1);
		}
		if (cluster_header_u64(m, CLUSTER_HDR_SEQ, seq) == 0) {
			natsMsg_Destroy(m);
			return (1);
		}
		natsMsg_Destroy(m);
		x = *at + 1;
	}
	return (0);
}

/*
 * The stream sequence of the room's first message with seq >= k, known
 * to be at most hi (step 2 above). Returns it, or 0 when the room has
 * none; sets rj->failed on failure.
 */
static uint64_t
replay_find(struct replay_job *rj, uint64_t k, uint64_t hi)
{
	uint64_t	lo = 1, mid, seq, at, pseq, pat;
	int		rv, prv;

	/*
	 * Contiguous recent messages: message k is exactly at hi, if the
	 * room's message just before it has a lower seq. Without that check
	 * the one at hi may be a race's loser numbered k (stored right after
	 * the winner, and followed by its own message made again as k + 1):
	 * read from there, the loser would be replayed as k, and the message
	 * made again skipped as a repeat of its Asyncchat-Id.
	 */
	if ((rv = replay_next(rj, hi, &seq, &at)) < 0)
		return (0);
	if (rv == 1 && seq == k && at > 1) {
		if ((prv = replay_next(rj, at - 1, &pseq, &pat)) < 0)
			return (0);
		if (prv == 1 && pat == at - 1 && pseq < k)
			return (at);
	}
	if (rv == 1 && seq < k) {
		/* hi was no bound after all: the room's last message is. */
		lo = at + 1;
		hi = rj->last_sseq;
	} else if (rv == 1)
		hi = at;
	/* The smallest x in [lo, hi] whose next message has seq >= k. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((rv = replay_next(rj, mid, &seq, &at)) < 0)
			return (0);
		if (rv == 1 && seq < k)
			lo = at + 1;
		else
			hi = mid;
	}
	if ((rv = replay_next(rj, lo, &seq, &at)) <= 0)
		return (0);
	return (seq >= k ? at : 0);
}

/* Keep a frame read; drop the oldest while over the byte budget. */
static void
replay_keep(struct replay_job *rj, size_t *bytes, natsMsg *m, uint64_t seq)
{
	struct replay_frame	*f;
	size_t			 len = (size_t)natsMsg_GetDataLength(m);

	if ((f = realloc(rj->frames, (rj->n + 1) * sizeof *f)) == NULL) {
		rj->cut = 1;
		return;
	}
	rj->frames = f;
	f = &rj->frames[rj->n];
	if ((f->bytes = malloc(len > 0 ? len : 1)) == NULL) {
		rj->cut = 1;
		return;
	}
	memcpy(f->bytes, natsMsg_GetData(m), len);
	f->len = len;
	f->seq = seq;
	rj->n++;
	*bytes += len;
	while (*bytes > CLUSTER_REPLAY_BYTES && rj->n > 0) {
		*bytes -= rj->frames[0].len;
		free(rj->frames[0].bytes);
		memmove(rj->frames, rj->frames + 1,
		    (rj->n - 1) * sizeof *rj->frames);
		rj->n--;
		rj->cut = 1;
	}
}

/*
 * Non-zero when id (may be NULL) is among the recent ones kept; else it
 * is kept (a ring of the last CLUSTER_RECENT_IDS).
 */
static int
replay_repeat(char recent[][48], unsigned int *n, const char *id)
{
	unsigned int	i, k;

	if (id == NULL)
		return (0);
	k = *n < CLUSTER_RECENT_IDS ? *n : CLUSTER_RECENT_IDS;
	for (i = 0; i < k; i++) {
		if (strcmp(recent[i], id) == 0)
			return (1);
	}
	snprintf(recent[*n % CLUSTER_RECENT_IDS], 48, "%s", id);
	(*n)++;
	return (0);
}

/* Step 3: the room's messages from stream sequence from, up to seq n. */
static void
replay_read(struct replay_job *rj, uint64_t from)
{
	natsSubscription	*sub = NULL;
	jsSubOptions		 so;
	jsErrCode		 jerr = 0;
	natsMsg			*m;
	natsStatus		 s;
	uint64_t		 seq, prev = 0;
	size_t			 bytes = 0;
	char			 recent[CLUSTER_RECENT_IDS][48];
	unsigned int		 nrecent = 0;
	const char		*id;

	jsSubOptions_Init(&so);
	so.Stream = rj->stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = from;
	s = js_SubscribeSync(&sub, rj->link->js, rj->subject, NULL, &so,
	    &jerr);
	if (s != NATS_OK) {
		replay_fail(rj, "reading the room", s);
		return;
	}
	for (;;) {
		m = NULL;
		s = natsSubscription_NextMsg(&m, sub, CLUSTER_REQUEST_WAIT);
		if (s == NATS_TIMEOUT && rj->n > 0) {
			/*
			 * The room's last did not come: it went meanwhile
			 * (max_age), or the replica the consumer reads had
			 * not applied it yet. The replay covers what it
			 * read, no more, so that chat delivers the rest
			 * live rather than take it as replayed.
			 */
			rj->short_read = 1;
			rj->reached = prev;
			break;
		}
		if (s != NATS_OK) {
			replay_fail(rj, "reading the room", s);
			break;
		}
		seq = 0;
		/*
		 * A seq not above the last kept is a loser's, an id kept
		 * already a repeat (append.c): the feed's rules.
		 */
		id = NULL;
		if (natsMsgHeader_Get(m, CLUSTER_HDR_ID, &id) != NATS_OK)
			id = NULL;
		if (cluster_header_u64(m, CLUSTER_HDR_SEQ, &seq) == 0 &&
		    seq > prev && !replay_repeat(recent, &nrecent, id)) {
			if (seq >= rj->first && seq <= rj->last)
				replay_keep(rj, &bytes, m, seq);
			prev = seq;
		}
		natsMsg_Destroy(m);
		if (seq >= rj->last)
			break;
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
}

/* The read, on a worker (steps 1 to 3). */
static void
replay_work(void *arg)
{
	struct replay_job	*rj = arg;
	natsMsg			*m = NULL;
	jsErrCode		 jerr = 0;
	natsStatus		 s;
	uint64_t		 lsseq, want, from;

	s = js_GetLastMsg(&m, rj->link->js, rj->stream, rj->subject, NULL,
	    &jerr);
	if (s == NATS_NOT_FOUND)
		return;		/* nothing stored */
	if (s != NATS_OK) {
		replay_fail(rj, "reading the room's last message", s);
		return;
	}
	lsseq = rj->last_sseq = natsMsg_GetSequence(m);
	if (cluster_header_u64(m, CLUSTER_HDR_SEQ, &rj->last) != 0) {
		/* Not a server's: the room's last is the last one known. */
		rj->last = rj->known;
		rj->last_sseq = 0;
	}
	natsMsg_Destroy(m);
	if (rj->last == 0)
		return;
	if (rj->since_mode) {
		if (rj->since >= rj->last) {
			/*
			 * Nothing after since: the replay covers nothing,
			 * and chat delivers live everything above what it
			 * had (result->last 0), as on one server. Claiming
			 * the room's end would drop, for this member, a
			 * message stored since chat asked.
			 */
			rj->last = 0;
			return;
		}
		want = rj->last - rj->since;
		if (want > rj->max_replay) {
			want = rj->max_replay;
			rj->cut = 1;
		}
	} else
		want = rj->count < rj->last ? rj->count : rj->last;
	if (want == 0)
		return;
	rj->first = rj->last - want + 1;
	from = replay_find(rj, rj->first, lsseq - (rj->last - rj->first));
	if (rj->failed)
		return;
	/*
	 * Not found where it must be: a replica far behind. Read the room
	 * from its start instead (the consumer skips other rooms itself).
	 */
	replay_read(rj, from != 0 ? from : 1);
}

/* Nothing: a job whose completion is the next chunk's turn. */
static void
replay_noop(void *arg)
{
	(void)arg;
}

/* Tell chat how the replay went, and free it. */
static void
replay_finish(struct replay_job *rj, struct ac_session *s)
{
	struct cluster			*cl = rj->cl;
	struct ac_history_result	 r;
	size_t				 i;

	memset(&r, 0, sizeof r);
	r.last = rj->last;
	if (rj->failed) {
		r.status = AC_HISTORY_FAILED;
		r.truncated = 1;
	} else {
		r.status = AC_HISTORY_OK;
		r.replayed = s != NULL ? rj->sent : 0;
		if (rj->since_mode)
			r.truncated = rj->last > rj->since &&
			    rj->sent < rj->last - rj->since;
		else
			r.truncated = rj->over || rj->cut || rj->skipped > 0;
		if (rj->short_read) {
			/* Messages chat had before it asked, not read: gone
			 * for this member; those after come live. */
			r.last = rj->reached;
			r.truncated = rj->reached < rj->until ||
			    rj->skipped > 0 || rj->cut || rj->over;
		}
		cl->counts[CC_REPLAYS]++;
		cl->counts[CC_REPLAYED] += rj->sent;
	}
	if (rj->skipped > 0)
		cl->host->log(cl->p, AC_LOG_WARNING, "%zu stored message%s of "
		    "#%s no longer verif%s (the key or the size limits "
		    "changed since): not replayed", rj->skipped,
		    rj->skipped == 1 ? "" : "s", rj->room,
		    rj->skipped == 1 ? "ies" : "y");
	rj->done(rj->arg, s, &r);
	for (i = 0; i < rj->n; i++)
		free(rj->frames[i].bytes);
	free(rj->frames);
	free(rj);
}

/*
 * Check and queue the next frames to the session: a chunk, then a job
 * whose completion comes back for the rest (later), or all at once.
 */
static void
replay_deliver(struct replay_job *rj, struct ac_session *s, int later)
{
	struct cluster	*cl = rj->cl;
	struct ac_frame	*f;
	size_t		 stop = rj->n;

	if (later && rj->next + CLUSTER_REPLAY_CHUNK < rj->n)
		stop = rj->next + CLUSTER_REPLAY_CHUNK;
	for (; rj->next < stop; rj->next++) {
		f = cl->host->frame_from_bytes(cl->p,
		    rj->frames[rj->next].bytes, rj->frames[rj->next].len);
		if (f == NULL) {
			rj->skipped++;
			continue;
		}
		if (cl->host->relay(cl->p, f, s) != 0) {
			cl->host->frame_unref(cl->p, f);
			replay_finish(rj, NULL);
			return;
		}
		cl->host->frame_unref(cl->p, f);
		rj->sent++;
	}
	if (rj->next < rj->n) {
		if (cl->host->job_submit(cl->p, s, 0, replay_noop, replay_more,
		    rj) == 0)
			return;
		replay_deliver(rj, s, 0);
		return;
	}
	replay_finish(rj, s);
}

/* The next chunk's turn. */
static void
replay_more(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct replay_job	*rj = arg;

	(void)state;
	if (s == NULL) {
		replay_finish(rj, NULL);
		return;
	}
	replay_deliver(rj, s, status == AC_JOB_DONE);
}

/* The read's completion (loop thread). */
static void
replay_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct cluster		*cl = state;
	struct replay_job	*rj = arg;

	link_release(cl, rj->link);
	if (status != AC_JOB_DONE) {
		rj->failed = 1;
		replay_finish(rj, s);
		return;
	}
	if (rj->failed) {
		cl->counts[CC_REPLAY_FAILURES]++;
		cl->host->log(cl->p, AC_LOG_WARNING, "replay of #%s: %s",
		    rj->room, rj->err);
		replay_finish(rj, s);
		return;
	}
	if (s == NULL) {
		replay_finish(rj, NULL);
		return;
	}
	replay_deliver(rj, s, 1);
}

/*
 * history: replay(). Returns 0 (done is called once, later), or -1 when
 * the request cannot be taken (the link not ready, a bad query, the pool
 * refused).
 */
int
replay_start(struct cluster *cl, struct ac_session *s,
    const struct ac_history_query *q, ac_history_replayed_fn done,
    void *arg)
{
	struct replay_job	*rj;
	struct room_state	*r;
	char			 fname[CLUSTER_ROOM_MAX + 1];
	char			 token[CLUSTER_ROOM_MAX + 1];
	uint64_t		 count;

	if (s == NULL || q == NULL || done == NULL || !roomname_valid_string(q->room) ||
	    (q->mode != AC_HISTORY_LAST && q->mode != AC_HISTORY_SINCE) ||
	    !link_ready(cl))
		return (-1);
	if ((rj = calloc(1, sizeof *rj)) == NULL)
		return (-1);
	rj->cl = cl;
	roomname_fold(fname, q->room);
	snprintf(rj->fname, sizeof rj->fname, "%s", fname);
	room_subject_token(token, sizeof token, fname);
	snprintf(rj->subject, sizeof rj->subject, "%s%s",
	    cl->names.room_prefix, token);
	snprintf(rj->stream, sizeof rj->stream, "%s", cl->names.stream);
	snprintf(rj->room, sizeof rj->room, "%s", q->room);
	rj->max_replay = cl->opt.max_replay;
	if ((r = room_get(fname)) != NULL)
		rj->known = r->seq;
	rj->until = q->until;
	if (q->mode == AC_HISTORY_SINCE) {
		rj->since_mode = 1;
		rj->since = q->since;
	} else {
		count = q->count != 0 ? q->count : cl->opt.replay;
		rj->over = count > cl->opt.max_replay;
		rj->count = rj->over ? cl->opt.max_replay : count;
	}
	rj->done = done;
	rj->arg = arg;
	if (link_submit(cl, s, 0, replay_work, replay_done, rj,
	    &rj->link) != 0) {
		free(rj);
		return (-1);
	}
	return (0);
}
