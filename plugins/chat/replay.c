/*
 * replay.c - asking the history backend to replay a room to one member,
 * and keeping that member's view of the room in order meanwhile.
 *
 * A replay is asynchronous: the backend reads on the worker pool and
 * sends the stored frames later. The joiner must see, in this order, the
 * `join` and `names` events, the replayed messages, `history-end`, then
 * the room's live messages. So from the moment a replay is asked for
 * until its completion, the member's live messages of that room are held
 * back (member->held) and queued after the history-end. The replay covers
 * the room up to its last seq at the time of asking (`until`), live
 * delivery everything after, so nothing is seen twice or missed.
 *
 * Holding is bounded: a replay slower than CHAT_HOLD_MAX live messages of
 * its room, or CHAT_HOLD_BYTES of them, stops holding them (they are
 * queued as they come, ahead of the rest of the replay): memory a client
 * cannot grow, at the price of order in that rare case, which the seq
 * numbers still let a client restore. The bytes count because held frames
 * are in no output buffer: max_memory counts them but cannot tell whose
 * they are, and 4096 of the largest frames would be 40 GiB.
 *
 * Replays cost the backend's reads, on the worker pool every session
 * shares, so a client's requests are bounded: a member has at most one
 * replay coming (another /history or /join ROOM SINCE meanwhile is
 * answered replay_in_progress), and a user's replays, one per room at
 * most, go to the backend one at a time, in the order asked, the others
 * waiting here (their live messages held all the same). Without that, one
 * client sending /history as fast as it may send frames filled the
 * worker queue, and the history plugin's writes were refused.
 *
 * A plain user (its session_ack named neither nick nor rooms: maybe the
 * original Python client) has each replay sent to the backend no sooner
 * than CHAT_PLAIN_WAIT_MS after it was asked for, and, as for anyone,
 * only once the replays it asked for before have ended. That client reads
 * 1024 bytes at a time and takes each read as one frame: the frames of a
 * command (join, names and reply come to about 900 bytes in a small room)
 * arriving in one read are dropped whole, which does no harm, but should
 * history-end land in the same read as them, the read is full before its
 * end and the next one begins inside a frame, after which that client
 * never decodes anything again. The wait lets it take the command's
 * frames in a read of their own first; its read loop needs far less than
 * a millisecond for one read, so 150 ms leaves a wide margin for a busy
 * machine, and is short enough for a person not to notice. The wait runs
 * from the moment the replay is asked for, while it waits its turn too:
 * one whose turn comes later than that goes then, without waiting again.
 * Everything else is as for any replay: the ticket, `until` and the
 * holding of live messages begin when it is asked for, so what the room
 * says meanwhile comes after history-end, once. A replay of more than
 * 1024 bytes, or the join, names and reply of a room that has two members
 * already (each adds about 90 bytes to names), still overruns that
 * client: nothing a server sends can help a reader that cannot find a
 * frame's start.
 *
 * A member can go (part, close, a reload) while its replay runs: its
 * ticket is then detached, and the completion only frees it; one still
 * waiting here (its turn or its time) is freed at once, with its timer,
 * since nothing was asked of the backend. A user that goes detaches the
 * one the backend runs.
 *
 * A numbering backend (append.c) replays up to the room's end when it
 * reads, which may be beyond `until`: it says how far (result->last), and
 * the member's live delivery starts above that, so that what the replay
 * sent and what arrives live later do not overlap.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chat.h"

static void	replay_done_cb(void *, struct ac_session *,
		    const struct ac_history_result *);

/* Queue what was held for a member, in order, and stop holding. */
static void
replay_flush(struct member *m)
{
	struct chat	*c = m->user->chat;
	struct held	*h;

	while ((h = TAILQ_FIRST(&m->held)) != NULL) {
		TAILQ_REMOVE(&m->held, h, entry);
		m->nheld--;
		m->held_bytes -= h->len;
		/* A replay that ended later may have covered it. */
		if (h->seq > m->live_after && !m->user->closing &&
		    c->host->relay(c->p, h->frame, m->s) == 0)
			c->counts[CHAT_C_DELIVERIES]++;
		c->host->frame_unref(c->p, h->frame);
		free(h);
	}
}

/*
 * A replay of the last messages sent a member the newest `replayed` up to
 * seq until: drop those of them it holds, which came live meanwhile,
 * having waited for their store when the replay was asked for.
 */
static void
replay_drop_sent(struct member *m, uint64_t until, uint64_t replayed)
{
	struct chat	*c = m->user->chat;
	struct held	*h, *next;

	for (h = TAILQ_FIRST(&m->held); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		if (h->seq > until || h->seq + replayed <= until)
			continue;
		TAILQ_REMOVE(&m->held, h, entry);
		m->nheld--;
		m->held_bytes -= h->len;
		c->host->frame_unref(c->p, h->frame);
		free(h);
	}
}

/*
 * A ticket's replay is over (replayed frames sent, or nothing): tell its
 * member, if it is still there, with history-end, then queue what was
 * held for it; free the ticket. last is how far a numbering backend's
 * replay covered the room, else 0 (what another backend covered was
 * settled when the ticket was asked for: replay_start).
 */
static void
replay_end(struct replay *t, uint64_t replayed, int truncated, uint64_t last)
{
	struct member	*m = t->member;
	uint64_t	 seq = t->until;

	if (m != NULL) {
		if (t->dedup && !truncated)
			replay_drop_sent(m, t->until, replayed);
		TAILQ_REMOVE(&m->tickets, t, entry);
		room_replay_end(m);
		/*
		 * A numbering backend read up to the room's end, maybe past
		 * what was live here when it was asked: the member has those
		 * from the replay, not from live delivery.
		 */
		if (last > seq)
			seq = last;
		if (last != 0)
			room_live_after(m, seq);
		event_history_end(m->user, t->room, seq, replayed, truncated);
		if (m->replays == 0) {
			m->overflow = 0;
			replay_flush(m);
		}
	}
	free(t);
}

/*
 * Ask the backend for a ticket's replay: 0, or -1 if it refused. Counted
 * here, when asked of the backend, not when asked for: one that ends
 * while it waits its turn or its time never reached the backend.
 */
static int
replay_ask(struct replay *t)
{
	struct chat		*c = t->chat;
	const struct ac_history	*h = c->history;
	struct ac_history_query	 q;

	memset(&q, 0, sizeof q);
	q.room = t->room;
	q.mode = t->has_since ? AC_HISTORY_SINCE : AC_HISTORY_LAST;
	q.since = t->since;
	q.count = t->count;
	q.until = t->until;
	c->counts[CHAT_C_REPLAYS]++;
	return (h->replay(h->ctx, t->user->s, &q, replay_done_cb, t));
}

/*
 * Give the backend the user's next waiting replay, if it runs none of
 * the user's now and that replay's time has come (a plain user's wait,
 * above: the ones behind it wait too, so the backend gets them in the
 * order asked). One at a time: the backend's reads are shared by every
 * session, and a client asking for replays as fast as it sends frames
 * would otherwise queue thousands of them ahead of everyone else's (and
 * of the writes, on a backend whose jobs run in order). A replay the
 * backend refuses ends at once, truncated.
 */
static void
replay_next(struct user *u)
{
	struct replay	*t;

	while (u->replaying == NULL && !u->closing &&
	    (t = TAILQ_FIRST(&u->waiting)) != NULL && t->wait == NULL) {
		TAILQ_REMOVE(&u->waiting, t, queued);
		t->waiting = 0;
		if (replay_ask(t) == 0) {
			u->replaying = t;
			return;
		}
		replay_end(t, 0, 1, 0);
	}
}

/* The backend has replayed: history-end, then what was held; then the
 * user's next replay. */
static void
replay_done_cb(void *arg, struct ac_session *s, const struct ac_history_result
    *r)
{
	struct replay	*t = arg;
	struct chat	*c = t->chat;
	struct user	*u = t->user;
	uint64_t	 last = 0;

	chat_enter(c);
	if (u != NULL)
		u->replaying = NULL;
	if (c->numbers && r->status == AC_HISTORY_OK)
		last = r->last;
	replay_end(t, r->replayed, r->truncated || r->status != AC_HISTORY_OK,
	    last);
	if (u != NULL)
		replay_next(u);
	chat_leave(c);
}

/*
 * A waiting replay's time has come: end its wait, and that of those of
 * the user asked for before it (timers due at the same instant fire in no
 * set order, and theirs were due no later), so the replays still waiting
 * for their time are always the last ones of the queue; then give the
 * backend the next one, if it is the user's turn.
 */
static void
replay_wait_over(struct replay *t)
{
	struct user	*u = t->user;
	struct replay	*w;

	TAILQ_FOREACH(w, &u->waiting, queued) {
		if (w->wait != NULL) {
			event_free(w->wait);
			w->wait = NULL;
		}
		if (w == t)
			break;
	}
	replay_next(u);
}

/* A plain user's replay has waited CHAT_PLAIN_WAIT_MS. */
static void
replay_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct replay	*t = arg;
	struct chat	*c = t->chat;

	(void)fd;
	(void)what;
	chat_enter(c);
	replay_wait_over(t);
	chat_leave(c);
}

/*
 * Ask for a replay of m's room: with has_since, every message after
 * since; else the last count (0: the backend's default). Nothing without
 * a backend. The caller has checked that m has none coming already
 * (replay_busy): a member has at most one, and a user's go to the
 * backend in turn, a plain user's each CHAT_PLAIN_WAIT_MS after it was
 * asked for at the soonest (above).
 */
void
replay_start(struct member *m, int has_since, uint64_t since, uint64_t count)
{
	struct user		*u = m->user;
	struct chat		*c = u->chat;
	struct replay		*t;
	struct event_base	*base;
	struct timeval		 tv;
	uint64_t		 covered;

	if (c->history == NULL || u->closing)
		return;
	if ((t = calloc(1, sizeof *t)) == NULL)
		abort();
	t->chat = c;
	t->member = m;
	t->user = u;
	snprintf(t->room, sizeof t->room, "%s", m->room->name);
	t->has_since = has_since;
	t->since = since;
	t->count = count;
	t->until = m->room->seq;
	TAILQ_INSERT_TAIL(&m->tickets, t, entry);
	room_replay_begin(m);
	/*
	 * A replay since a seq covers everything up to until: live delivery
	 * goes on after it. One of the last messages may not reach back to
	 * the messages still waiting for their store (sync = full), which
	 * this member has not had: they come live (held until history-end),
	 * but for those the replay sent.
	 */
	covered = has_since ? t->until : message_delivered(m->room);
	t->dedup = !has_since;
	room_live_after(m, covered);
	t->waiting = 1;
	TAILQ_INSERT_TAIL(&u->waiting, t, queued);
	if (u->plain && (base = c->host->event_base(c->p)) != NULL) {
		tv.tv_sec = CHAT_PLAIN_WAIT_MS / 1000;
		tv.tv_usec = (CHAT_PLAIN_WAIT_MS % 1000) * 1000;
		if ((t->wait = evtimer_new(base, replay_wait_cb, t)) == NULL)
			abort();
		if (evtimer_add(t->wait, &tv) == 0)
			return;
		event_free(t->wait);	/* no timer: no wait */
		t->wait = NULL;
	}
	replay_wait_over(t);
}

/* Non-zero when m's replay, asked for earlier, has not ended yet: waiting
 * its turn or its time, or with the backend. */
int
replay_busy(struct member *m)
{
	return (m->replays > 0);
}

/* A live message of the room while m's replay runs: hold it. */
void
replay_deliver(struct member *m, const struct ac_frame *f, uint64_t seq)
{
	struct chat	*c = m->user->chat;
	struct held	*h;
	size_t		 len = 0;

	c->host->frame_bytes(f, &len);
	if (m->overflow || m->nheld >= CHAT_HOLD_MAX ||
	    len > CHAT_HOLD_BYTES - m->held_bytes) {
		if (!m->overflow)
			c->host->log(c->p, AC_LOG_WARNING, "session %s: replay "
			    "of #%s slower than %d messages or %u MiB of them: "
			    "no longer held", m->user->id, m->room->name,
			    CHAT_HOLD_MAX, CHAT_HOLD_BYTES >> 20);
		m->overflow = 1;
		replay_flush(m);
		if (c->host->relay(c->p, f, m->s) == 0)
			c->counts[CHAT_C_DELIVERIES]++;
		return;
	}
	if ((h = calloc(1, sizeof *h)) == NULL)
		abort();
	h->frame = c->host->frame_ref(c->p, f);
	h->seq = seq;
	h->len = len;
	TAILQ_INSERT_TAIL(&m->held, h, entry);
	m->nheld++;
	m->held_bytes += len;
}

/*
 * A member goes: forget its replay if the backend has not got it yet
 * (with its timer, if it waits for its time), else detach it (its
 * completion frees it); drop what was held for it. Nothing behind a
 * forgotten one becomes due: the ones waiting for their time are the
 * last of the queue (replay_wait_over), and one that waits only for its
 * turn waits for a replay the backend runs (or for its user's close).
 */
void
replay_member_gone(struct member *m)
{
	struct chat	*c = m->user->chat;
	struct replay	*t;
	struct held	*h;

	while ((t = TAILQ_FIRST(&m->tickets)) != NULL) {
		TAILQ_REMOVE(&m->tickets, t, entry);
		if (t->waiting) {
			/* Never sent: no completion will come. */
			TAILQ_REMOVE(&m->user->waiting, t, queued);
			if (t->wait != NULL)
				event_free(t->wait);
			free(t);
		} else
			t->member = NULL;	/* freed by its completion */
	}
	m->replays = 0;
	while ((h = TAILQ_FIRST(&m->held)) != NULL) {
		TAILQ_REMOVE(&m->held, h, entry);
		c->host->frame_unref(c->p, h->frame);
		free(h);
	}
	m->nheld = 0;
	m->held_bytes = 0;
}

/* A user goes (its members already gone): detach the replay the backend
 * runs for it, whose completion then frees it. */
void
replay_user_gone(struct user *u)
{
	if (u->replaying != NULL) {
		u->replaying->user = NULL;
		u->replaying = NULL;
	}
}
