/*
 * memhistory.c - a test module: a history backend (asyncchat/history.h)
 * that keeps room messages in memory, for the chat plugin's tests. It
 * follows the interface's contract the way a real backend would, with
 * every store and replay going through the worker pool as one serial
 * queue, so completions come later than the calls, in order.
 *
 * The data stays on the loop thread: a store's work function only stands
 * for the disk (with gate_dir, it waits until the file GATE_DIR/open
 * exists, so a test decides when stores complete), and its completion
 * appends the frame's bytes; a replay reads them in its completion, which
 * the serial queue runs after every earlier store's.
 *
 * Without numbers it is a version 1 backend (no status()), so that chat's
 * tests keep that path; the history plugin is the version 2 one. With
 * numbers = yes it is a numbering backend (history.h, version 3, with no
 * status()): append() is a serial job like a store, whose completion gives
 * the message the room's next seq, asks chat to make the frame, keeps it
 * and hands it to chat's listen function. skip_every = N makes every Nth
 * append lose its first seq, as if another server had taken it (make is
 * called with that seq, the frame dropped, and called again with the
 * next); fail_appends = yes fails every append.
 *
 * Options: durable = yes|no (default no), replay = N (50), max_replay = N
 * (1000), gate_dir = DIR (none), numbers = yes|no (no), skip_every = N
 * (0: never), fail_appends = yes|no (no). Logs "memhistory: stored ROOM
 * SEQ" and "memhistory: replay ROOM mode=M sent=N truncated=T".
 */
#include "config.h"

#include <sys/stat.h>

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <asyncchat/history.h>
#include <asyncchat/plugin.h>

#define MEMHISTORY_GATE_WAIT_MS	60000

/* One stored message. */
struct mh_entry {
	uint64_t	 seq;
	uint8_t		*bytes;
	size_t		 len;
};

/* One room's messages, oldest first. */
struct mh_room {
	char		 name[AC_HISTORY_ROOM_MAX + 1];	/* case kept */
	uint64_t	 handed;	/* highest seq given to store() */
	struct mh_entry	*entries;
	size_t		 n;
};

/* The backend's state. */
struct memhistory {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	struct ac_history		 iface;
	int				 durable;
	uint64_t			 replay;
	uint64_t			 max_replay;
	char				*gate;		/* GATE_DIR/open */
	struct mh_room			*rooms;
	size_t				 nrooms;
	unsigned int			 outstanding;
	int				 numbers;
	uint64_t			 skip_every;
	uint64_t			 appended;
	int				 fail_appends;
	ac_history_live_fn		 live;
	void				*live_arg;
};

/* An append job (numbering mode). */
struct mh_append {
	char			 room[AC_HISTORY_ROOM_MAX + 1];
	ac_history_make_fn	 make;
	ac_history_appended_fn	 done;
	void			*arg;
	char			 gate[PATH_MAX];
};

/* A store job. */
struct mh_store {
	struct memhistory	*mh;		/* read on the loop only */
	char			 room[AC_HISTORY_ROOM_MAX + 1];
	uint64_t		 seq;
	struct ac_frame		*frame;
	ac_history_stored_fn	 done;
	void			*arg;
	char			 gate[PATH_MAX];	/* "": no gate */
};

/* A replay job. */
struct mh_replay {
	struct memhistory	*mh;
	struct ac_history_query	 q;
	char			 room[AC_HISTORY_ROOM_MAX + 1];
	ac_history_replayed_fn	 done;
	void			*arg;
};

/* The room of a name (ASCII case ignored), made if create. */
static struct mh_room *
mh_room(struct memhistory *mh, const char *name, int create)
{
	struct mh_room	*r;
	size_t		 i;

	for (i = 0; i < mh->nrooms; i++) {
		if (strcasecmp(mh->rooms[i].name, name) == 0)
			return (&mh->rooms[i]);
	}
	if (!create)
		return (NULL);
	r = realloc(mh->rooms, (mh->nrooms + 1) * sizeof *r);
	if (r == NULL)
		abort();
	mh->rooms = r;
	r = &mh->rooms[mh->nrooms++];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	return (r);
}

/* last_seq: from memory, counting stores not yet completed. */
static uint64_t
mh_last_seq(void *ctx, const char *room, char *name, size_t namesize)
{
	struct mh_room	*r = mh_room(ctx, room, 0);

	if (r == NULL)
		return (0);
	if (name != NULL && namesize > 0)
		snprintf(name, namesize, "%s", r->name);
	return (r->handed);
}

/* durable: the option. */
static int
mh_durable(void *ctx)
{
	return (((struct memhistory *)ctx)->durable);
}

/* Worker: stand for the disk; with a gate, wait until it opens. */
static void
mh_store_work(void *arg)
{
	struct mh_store	*st = arg;
	struct stat	 sb;
	struct timespec	 ms = { 0, 1000000 };
	int		 i;

	if (st->gate[0] == '\0')
		return;
	for (i = 0; i < MEMHISTORY_GATE_WAIT_MS; i++) {
		if (stat(st->gate, &sb) == 0)
			return;
		nanosleep(&ms, NULL);
	}
}

/* Keep a copy of a frame as the room's message seq. */
static void
mh_keep(struct memhistory *mh, struct mh_room *r, uint64_t seq,
    const struct ac_frame *f)
{
	struct mh_entry		*e;
	const uint8_t		*bytes;
	size_t			 len;

	e = realloc(r->entries, (r->n + 1) * sizeof *e);
	if (e == NULL)
		abort();
	r->entries = e;
	e = &r->entries[r->n++];
	bytes = mh->host->frame_bytes(f, &len);
	e->seq = seq;
	e->len = len;
	if ((e->bytes = malloc(len)) == NULL)
		abort();
	memcpy(e->bytes, bytes, len);
	mh->host->log(mh->p, AC_LOG_INFO, "memhistory: stored %s %llu",
	    r->name, (unsigned long long)seq);
}

/* Loop: append the frame, then tell chat (durable mode). */
static void
mh_store_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct memhistory	*mh = state;
	struct mh_store		*st = arg;

	(void)s;
	(void)status;
	mh_keep(mh, mh_room(mh, st->room, 1), st->seq, st->frame);
	mh->host->frame_unref(mh->p, st->frame);
	if (st->done != NULL)
		st->done(st->arg, AC_HISTORY_OK);
	mh->outstanding--;
	free(st);
}

/* store: one serial job per message. */
static int
mh_store(void *ctx, const struct ac_history_message *m,
    ac_history_stored_fn done, void *arg)
{
	struct memhistory	*mh = ctx;
	struct mh_store		*st;
	struct mh_room		*r;

	/* Counted even if refused: chat delivers it with this seq. */
	r = mh_room(mh, m->room, 1);
	if (m->seq > r->handed)
		r->handed = m->seq;
	if ((st = calloc(1, sizeof *st)) == NULL)
		return (-1);
	st->mh = mh;
	snprintf(st->room, sizeof st->room, "%s", m->room);
	st->seq = m->seq;
	st->frame = mh->host->frame_ref(mh->p, m->frame);
	st->done = done;
	st->arg = arg;
	if (mh->gate != NULL)
		snprintf(st->gate, sizeof st->gate, "%s", mh->gate);
	if (mh->host->job_submit(mh->p, NULL, AC_JOB_NO_CANCEL|AC_JOB_SERIAL,
	    mh_store_work, mh_store_done, st) != 0) {
		mh->host->frame_unref(mh->p, st->frame);
		free(st);
		return (-1);
	}
	mh->outstanding++;
	return (0);
}

/* numbers: the option. */
static int
mh_numbers(void *ctx)
{
	return (((struct memhistory *)ctx)->numbers);
}

/* Worker: stand for the disk of an append (the gate, as for a store). */
static void
mh_append_work(void *arg)
{
	struct mh_append	*ap = arg;
	struct mh_store		 st;

	memset(&st, 0, sizeof st);
	memcpy(st.gate, ap->gate, sizeof st.gate);
	mh_store_work(&st);
}

/*
 * Loop: number the message (losing the first seq every skip_every), have
 * chat make it, keep it, hand it to listen, then tell the append it is
 * done.
 */
static void
mh_append_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct memhistory	*mh = state;
	struct mh_append	*ap = arg;
	struct mh_room		*r;
	struct ac_frame		*f;
	uint64_t		 seq;

	(void)s;
	(void)status;
	mh->outstanding--;
	if (mh->fail_appends) {
		ap->done(ap->arg, AC_HISTORY_FAILED, 0);
		free(ap);
		return;
	}
	r = mh_room(mh, ap->room, 1);
	seq = r->handed + 1;
	mh->appended++;
	if (mh->skip_every != 0 && mh->appended % mh->skip_every == 0) {
		/* Another server took seq first: this frame is not kept. */
		if ((f = ap->make(ap->arg, seq)) != NULL)
			mh->host->frame_unref(mh->p, f);
		seq++;
	}
	if ((f = ap->make(ap->arg, seq)) == NULL) {
		ap->done(ap->arg, AC_HISTORY_FAILED, 0);
		free(ap);
		return;
	}
	r->handed = seq;
	mh_keep(mh, r, seq, f);
	if (mh->live != NULL)
		mh->live(mh->live_arg, r->name, seq, f);
	mh->host->frame_unref(mh->p, f);
	ap->done(ap->arg, AC_HISTORY_OK, seq);
	free(ap);
}

/* append: one serial job per message, as a store. */
static int
mh_append(void *ctx, const char *room, ac_history_make_fn make,
    ac_history_appended_fn done, void *arg)
{
	struct memhistory	*mh = ctx;
	struct mh_append	*ap;

	if ((ap = calloc(1, sizeof *ap)) == NULL)
		return (-1);
	snprintf(ap->room, sizeof ap->room, "%s", room);
	ap->make = make;
	ap->done = done;
	ap->arg = arg;
	if (mh->gate != NULL)
		snprintf(ap->gate, sizeof ap->gate, "%s", mh->gate);
	if (mh->host->job_submit(mh->p, NULL, AC_JOB_NO_CANCEL|AC_JOB_SERIAL,
	    mh_append_work, mh_append_done, ap) != 0) {
		free(ap);
		return (-1);
	}
	mh->outstanding++;
	return (0);
}

/* listen: keep chat's function. */
static void
mh_listen(void *ctx, ac_history_live_fn fn, void *arg)
{
	struct memhistory	*mh = ctx;

	mh->live = fn;
	mh->live_arg = arg;
}

/* Worker: nothing to read off the loop in memory. */
static void
mh_replay_work(void *arg)
{
	(void)arg;
}

/* Loop: send what the query selects, then tell chat. */
static void
mh_replay_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct memhistory	*mh = state;
	struct mh_replay	*rp = arg;
	struct ac_history_result res;
	struct ac_frame		*f;
	struct mh_room		*r;
	size_t			 first, last, i, avail, want;

	memset(&res, 0, sizeof res);
	res.status = status == AC_JOB_DONE ? AC_HISTORY_OK : AC_HISTORY_FAILED;
	r = mh_room(mh, rp->room, 0);
	if (s != NULL && r != NULL && status == AC_JOB_DONE) {
		/* [first, last): the entries with seq <= until (numbering:
		 * all of them, to the room's end). */
		for (last = r->n; !mh->numbers && last > 0 &&
		    r->entries[last - 1].seq > rp->q.until; last--)
			;
		if (last > 0)
			res.last = r->entries[last - 1].seq;
		if (rp->q.mode == AC_HISTORY_SINCE) {
			for (first = last; first > 0 &&
			    r->entries[first - 1].seq > rp->q.since; first--)
				;
			if (first < last && r->entries[first].seq !=
			    rp->q.since + 1)
				res.truncated = 1;	/* pruned */
			want = mh->max_replay;
		} else {
			want = rp->q.count == 0 ? mh->replay : rp->q.count;
			if (want > mh->max_replay) {
				want = mh->max_replay;
				res.truncated = 1;
			}
			first = 0;
		}
		avail = last - first;
		if (avail > want) {
			first = last - want;
			if (rp->q.mode == AC_HISTORY_SINCE)
				res.truncated = 1;
		}
		for (i = first; i < last; i++) {
			f = mh->host->frame_from_bytes(mh->p,
			    r->entries[i].bytes, r->entries[i].len);
			if (f == NULL)
				continue;
			if (mh->host->relay(mh->p, f, s) == 0)
				res.replayed++;
			mh->host->frame_unref(mh->p, f);
		}
	}
	mh->host->log(mh->p, AC_LOG_INFO, "memhistory: replay %s mode=%s "
	    "sent=%llu truncated=%d", rp->room, rp->q.mode ==
	    AC_HISTORY_SINCE ? "since" : "last",
	    (unsigned long long)res.replayed, res.truncated);
	rp->done(rp->arg, s, &res);
	mh->outstanding--;
	free(rp);
}

/* replay: one serial job, tied to the session. */
static int
mh_replay(void *ctx, struct ac_session *s, const struct ac_history_query *q,
    ac_history_replayed_fn done, void *arg)
{
	struct memhistory	*mh = ctx;
	struct mh_replay	*rp;

	if ((rp = calloc(1, sizeof *rp)) == NULL)
		return (-1);
	rp->mh = mh;
	rp->q = *q;
	snprintf(rp->room, sizeof rp->room, "%s", q->room);
	rp->q.room = rp->room;
	rp->done = done;
	rp->arg = arg;
	if (mh->host->job_submit(mh->p, s, AC_JOB_SERIAL, mh_replay_work,
	    mh_replay_done, rp) != 0) {
		free(rp);
		return (-1);
	}
	mh->outstanding++;
	return (0);
}

/* Read a count option; -1 when it is not one. */
static int
mh_count(const char *v, uint64_t *out)
{
	unsigned long long	n;

	if (ac_option_uint(v, 1, 1000000, &n) != 0)
		return (-1);
	*out = n;
	return (0);
}

/* Read the options and publish the interface. */
static int
mh_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct memhistory	*mh;
	size_t			 i;
	int			 bad = 0;

	if ((mh = calloc(1, sizeof *mh)) == NULL)
		return (-1);
	mh->p = p;
	mh->host = host;
	mh->replay = 50;
	mh->max_replay = 1000;
	for (i = 0; i < nopts && !bad; i++) {
		if (strcmp(opts[i].key, "durable") == 0)
			bad = ac_option_bool(opts[i].value, &mh->durable);
		else if (strcmp(opts[i].key, "replay") == 0)
			bad = mh_count(opts[i].value, &mh->replay);
		else if (strcmp(opts[i].key, "max_replay") == 0)
			bad = mh_count(opts[i].value, &mh->max_replay);
		else if (strcmp(opts[i].key, "numbers") == 0)
			bad = ac_option_bool(opts[i].value, &mh->numbers);
		else if (strcmp(opts[i].key, "fail_appends") == 0)
			bad = ac_option_bool(opts[i].value, &mh->fail_appends);
		else if (strcmp(opts[i].key, "skip_every") == 0)
			bad = mh_count(opts[i].value, &mh->skip_every);
		else if (strcmp(opts[i].key, "gate_dir") == 0) {
			if (asprintf(&mh->gate, "%s/open", opts[i].value) < 0)
				bad = -1;
		} else
			bad = -1;
		if (bad)
			host->log(p, AC_LOG_ERROR, "line %d: bad option %s",
			    opts[i].line, opts[i].key);
	}
	/*
	 * A version 1 backend, as one built against that header would be:
	 * its struct ends before status(), which chat must then do without.
	 * A numbering one is version 3 with status() NULL (always up).
	 */
	mh->iface.size = offsetof(struct ac_history, status);
	mh->iface.ctx = mh;
	mh->iface.last_seq = mh_last_seq;
	mh->iface.durable = mh_durable;
	mh->iface.store = mh_store;
	mh->iface.replay = mh_replay;
	if (mh->numbers) {
		mh->iface.size = sizeof mh->iface;
		mh->iface.numbers = mh_numbers;
		mh->iface.append = mh_append;
		mh->iface.listen = mh_listen;
	}
	if (bad || host->interface_publish(p, AC_HISTORY_INTERFACE,
	    mh->numbers ? AC_HISTORY_VERSION : 1, &mh->iface) != 0) {
		free(mh->gate);
		free(mh);
		return (-1);
	}
	*state = mh;
	return (0);
}

/* Free the rooms; say how many jobs were never seen to complete. */
static void
mh_fini(void *state)
{
	struct memhistory	*mh = state;
	size_t			 i, j;

	mh->host->log(mh->p, AC_LOG_INFO, "memhistory: fini outstanding=%u",
	    mh->outstanding);
	for (i = 0; i < mh->nrooms; i++) {
		for (j = 0; j < mh->rooms[i].n; j++)
			free(mh->rooms[i].entries[j].bytes);
		free(mh->rooms[i].entries);
	}
	free(mh->rooms);
	free(mh->gate);
	free(mh);
}

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "memhistory",
	.version = "1",
	.description = "history kept in memory, for tests",
	.init = mh_init,
	.fini = mh_fini,
};
