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
 * its room stops holding them (they are queued as they come, ahead of the
 * rest of the replay): memory a client cannot grow, at the price of order
 * in that rare case, which the seq numbers still let a client restore.
 *
 * A member can go (part, close) while its replay runs: its tickets are
 * then detached, and the completion only frees them.
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

#include "chat.h"

/* Queue what was held for a member, in order, and stop holding. */
static void
replay_flush(struct member *m)
{
	struct chat	*c = m->user->chat;
	struct held	*h;

	while ((h = TAILQ_FIRST(&m->held)) != NULL) {
		TAILQ_REMOVE(&m->held, h, entry);
		m->nheld--;
		/* A replay that ended later may have covered it. */
		if (h->seq > m->live_after && !m->user->closing &&
		    c->host->relay(c->p, h->frame, m->s) == 0)
			c->counts[CHAT_C_DELIVERIES]++;
		c->host->frame_unref(c->p, h->frame);
		free(h);
	}
}

/* The backend has replayed: history-end, then what was held. */
static void
replay_done_cb(void *arg, struct ac_session *s, const struct ac_history_result
    *r)
{
	struct replay	*t = arg;
	struct chat	*c = t->chat;
	struct member	*m = t->member;
	uint64_t	 seq = t->until;

	chat_enter(c);
	if (m != NULL) {
		TAILQ_REMOVE(&m->tickets, t, entry);
		m->replays--;
		/*
		 * A numbering backend read up to the room's end, maybe past
		 * what was live here when it was asked: the member has those
		 * from the replay, not from live delivery.
		 */
		if (c->numbers && r->status == AC_HISTORY_OK) {
			if (r->last > seq)
				seq = r->last;
			if (m->live_after < seq)
				m->live_after = seq;
		}
		event_history_end(m->user, t->room, seq, r->replayed,
		    r->truncated || r->status != AC_HISTORY_OK);
		if (m->replays == 0) {
			m->overflow = 0;
			replay_flush(m);
		}
	}
	free(t);
	chat_leave(c);
}

/*
 * Ask for a replay of m's room: with has_since, every message after
 * since; else the last count (0: the backend's default). Nothing without
 * a backend.
 */
void
replay_start(struct member *m, int has_since, uint64_t since, uint64_t count)
{
	struct chat		*c = m->user->chat;
	const struct ac_history	*h = c->history;
	struct ac_history_query	 q;
	struct replay		*t;

	if (h == NULL || m->user->closing)
		return;
	if ((t = calloc(1, sizeof *t)) == NULL)
		abort();
	t->chat = c;
	t->member = m;
	snprintf(t->room, sizeof t->room, "%s", m->room->name);
	t->until = m->room->seq;
	TAILQ_INSERT_TAIL(&m->tickets, t, entry);
	m->replays++;
	if (m->live_after < t->until)
		m->live_after = t->until;
	memset(&q, 0, sizeof q);
	q.room = t->room;
	q.mode = has_since ? AC_HISTORY_SINCE : AC_HISTORY_LAST;
	q.since = since;
	q.count = count;
	q.until = t->until;
	c->counts[CHAT_C_REPLAYS]++;
	if (h->replay(h->ctx, m->user->s, &q, replay_done_cb, t) != 0) {
		TAILQ_REMOVE(&m->tickets, t, entry);
		m->replays--;
		event_history_end(m->user, t->room, t->until, 0, 1);
		if (m->replays == 0)
			replay_flush(m);
		free(t);
	}
}

/* A live message of the room while m's replay runs: hold it. */
void
replay_deliver(struct member *m, const struct ac_frame *f, uint64_t seq)
{
	struct chat	*c = m->user->chat;
	struct held	*h;

	if (m->overflow || m->nheld >= CHAT_HOLD_MAX) {
		if (!m->overflow)
			c->host->log(c->p, AC_LOG_WARNING, "session %s: replay "
			    "of #%s slower than %d messages: no longer held",
			    m->user->id, m->room->name, CHAT_HOLD_MAX);
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
	TAILQ_INSERT_TAIL(&m->held, h, entry);
	m->nheld++;
}

/* A member goes: detach its replays, drop what was held for it. */
void
replay_member_gone(struct member *m)
{
	struct chat	*c = m->user->chat;
	struct replay	*t;
	struct held	*h;

	while ((t = TAILQ_FIRST(&m->tickets)) != NULL) {
		TAILQ_REMOVE(&m->tickets, t, entry);
		t->member = NULL;	/* freed by its completion */
	}
	m->replays = 0;
	while ((h = TAILQ_FIRST(&m->held)) != NULL) {
		TAILQ_REMOVE(&m->held, h, entry);
		c->host->frame_unref(c->p, h->frame);
		free(h);
	}
	m->nheld = 0;
}
