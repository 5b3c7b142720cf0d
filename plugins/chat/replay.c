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
 * A plain user (its session_ack named neither nick nor rooms: maybe the
 * original Python client) has its replays sent to the backend only
 * CHAT_PLAIN_WAIT_MS after they were asked for. That client reads 1024
 * bytes at a time and takes each read as one frame: the frames of a
 * command (join, names and reply come to about 900 bytes in a small room)
 * arriving in one read are dropped whole, which does no harm, but should
 * history-end land in the same read as them, the read is full before its
 * end and the next one begins inside a frame, after which that client
 * never decodes anything again. The wait lets it take the command's
 * frames in a read of their own first; its read loop needs far less than
 * a millisecond for one read, so 150 ms leaves a wide margin for a busy
 * machine, and is short enough for a person not to notice. Everything
 * else is as for any replay: the ticket, `until` and the holding of live
 * messages begin when it is asked for, so what the room says meanwhile
 * comes after history-end, once. A replay of more than 1024 bytes, or the
 * join, names and reply of a room that has two members already (each adds
 * about 90 bytes to names), still overruns that client: nothing a server
 * sends can help a reader that cannot find a frame's start.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

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
		if (!m->user->closing && c->host->relay(c->p, h->frame,
		    m->s) == 0)
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

	chat_enter(c);
	if (m != NULL) {
		TAILQ_REMOVE(&m->tickets, t, entry);
		m->replays--;
		event_history_end(m->user, t->room, t->until, r->replayed,
		    r->truncated || r->status != AC_HISTORY_OK);
		if (m->replays == 0) {
			m->overflow = 0;
			replay_flush(m);
		}
	}
	free(t);
	chat_leave(c);
}

/* Give up a ticket that got no completion: history-end if told, then
 * what was held once it was the last. */
static void
replay_drop(struct replay *t, int tell)
{
	struct member	*m = t->member;

	TAILQ_REMOVE(&m->tickets, t, entry);
	m->replays--;
	if (tell)
		event_history_end(m->user, t->room, t->until, 0, 1);
	if (m->replays == 0)
		replay_flush(m);
	free(t);
}

/* Send a ticket's query to the backend; a refusal ends it at once. */
static void
replay_ask(struct replay *t)
{
	struct member		*m = t->member;
	struct chat		*c = m->user->chat;
	const struct ac_history	*h = c->history;
	struct ac_history_query	 q;

	if (m->user->closing) {
		replay_drop(t, 0);
		return;
	}
	memset(&q, 0, sizeof q);
	q.room = t->room;
	q.mode = t->has_since ? AC_HISTORY_SINCE : AC_HISTORY_LAST;
	q.since = t->since;
	q.count = t->count;
	q.until = t->until;
	c->counts[CHAT_C_REPLAYS]++;
	if (h->replay(h->ctx, m->user->s, &q, replay_done_cb, t) != 0)
		replay_drop(t, 1);
}

/*
 * A plain user's wait is over: ask for its replay, and first for those of
 * the member still waiting that were asked for before it (timers due at
 * the same instant fire in no set order; the backend gets them in the
 * order they were asked for).
 */
static void
replay_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct replay	*t = arg, *w;
	struct member	*m = t->member;
	struct chat	*c = t->chat;
	int		 last;

	(void)fd;
	(void)what;
	chat_enter(c);
	do {
		TAILQ_FOREACH(w, &m->tickets, entry) {
			if (w->wait != NULL)
				break;
		}
		last = w == t;
		event_free(w->wait);
		w->wait = NULL;
		replay_ask(w);
	} while (!last);
	chat_leave(c);
}

/*
 * Ask for a replay of m's room: with has_since, every message after
 * since; else the last count (0: the backend's default). Nothing without
 * a backend. A plain user's waits CHAT_PLAIN_WAIT_MS first (above).
 */
void
replay_start(struct member *m, int has_since, uint64_t since, uint64_t count)
{
	struct chat		*c = m->user->chat;
	struct replay		*t;
	struct event_base	*base;
	struct timeval		 tv;

	if (c->history == NULL || m->user->closing)
		return;
	if ((t = calloc(1, sizeof *t)) == NULL)
		abort();
	t->chat = c;
	t->member = m;
	snprintf(t->room, sizeof t->room, "%s", m->room->name);
	t->until = m->room->seq;
	t->has_since = has_since;
	t->since = since;
	t->count = count;
	TAILQ_INSERT_TAIL(&m->tickets, t, entry);
	m->replays++;
	if (m->live_after < t->until)
		m->live_after = t->until;
	if (m->user->plain && (base = c->host->event_base(c->p)) != NULL) {
		tv.tv_sec = CHAT_PLAIN_WAIT_MS / 1000;
		tv.tv_usec = (CHAT_PLAIN_WAIT_MS % 1000) * 1000;
		if ((t->wait = evtimer_new(base, replay_wait_cb, t)) == NULL)
			abort();
		if (evtimer_add(t->wait, &tv) == 0)
			return;
		event_free(t->wait);	/* no timer: ask at once */
		t->wait = NULL;
	}
	replay_ask(t);
}

/* A live message of the room while m's replay runs: hold it. */
void
replay_deliver(struct member *m, struct ac_frame *f, uint64_t seq)
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
		if (t->wait != NULL) {
			/* Never sent: no completion will come. */
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
}
