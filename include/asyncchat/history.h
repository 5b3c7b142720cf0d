/*
 * asyncchat/history.h - the named interface between the `chat` plugin and a
 * history backend (the `history` plugin, or one of your own).
 *
 * Bump AC_HISTORY_VERSION when you append to struct ac_history; rename the
 * interface (AC_HISTORY_INTERFACE) if you ever change what a member means.
 *
 * A backend publishes one struct ac_history under the name "history" in
 * its init (host->interface_publish, plugin.h), and `chat` looks it up in
 * its ready. Without a backend, chat numbers each room's messages from 1
 * for as long as it runs, answers /history with the error no_history and
 * sends no history-end events (docs/CHAT.md).
 *
 * Every call below is made by chat on the loop thread, and every
 * completion a backend gives back must run on the loop thread too (from a
 * job's done function, say: plugin.h, job_submit). No call may block: the
 * disk is for the worker pool. Strings and frames passed in are borrowed
 * for the call; a backend that keeps a frame takes a reference
 * (host->frame_ref) and lets go of it when it is done (host->frame_unref).
 *
 * What chat expects, in order of a message's life:
 *
 *  1. Numbering. When chat first needs a room (its first member joins, or
 *     it meets the room again after it had emptied), it calls
 *     last_seq(room) once and numbers the room's next message one more.
 *     last_seq answers at once, from memory: a backend loads every room's
 *     highest seq when it starts (in init, before the server serves). It
 *     must count every message handed to store() by any instance of the
 *     backend in this process, on disk yet or not, so that a reload
 *     (SIGHUP: a new chat and a new backend) never hands out a seq twice.
 *     That includes a store() that returned -1 and one whose completion
 *     said AC_HISTORY_FAILED: chat delivered the message with that seq
 *     all the same, so it is taken. Pruning a room's messages (by age or
 *     count) never lowers it, then or after a restart: the SQLite backend
 *     keeps each room's highest seq in a table of its own for that.
 *
 *  2. Storing. For every message delivered to a room, chat calls store()
 *     once, in seq order per room, with the frame exactly as every member
 *     receives it (room, from, seq and time already in its header, signed
 *     by the host). Direct messages are never stored.
 *      - If durable() is non-zero, chat passes a completion and delivers
 *        the message to the room only once the completion has run:
 *        completions of one room must run in the order of the store()
 *        calls. Whether the store succeeded or failed, chat then delivers
 *        (a failing store is the backend's to report: log, metric).
 *        A backend says non-zero while it needs chat to wait, which is
 *        not only for an fsync: the SQLite backend does in both its sync
 *        modes whenever its database works, because a message delivered
 *        before its write reached the kernel would live only in this
 *        process, and a kill -9 of asyncchatd would lose it.
 *      - Otherwise chat delivers first and passes done = NULL.
 *     store() returns 0 when it accepted the message (then done, if not
 *     NULL, is called exactly once, later, never from within store()), or
 *     -1 when it could not (queue full, store broken: nothing is called,
 *     and chat delivers at once).
 *
 *  3. Replaying. For a join, a join with SINCE, a rejoin at the handshake
 *     and /history N, chat calls replay() with the joiner's session and a
 *     query. The backend sends the stored frames, byte for byte as they
 *     were stored, oldest first, to that one session (host->relay of a
 *     frame made with host->frame_from_bytes), then calls done with the
 *     count. It sends only frames with seq <= query->until: chat delivers
 *     everything after `until` itself, so nothing comes twice. A replay
 *     must see every store() called before it, on disk yet or not, by
 *     this instance or an earlier one of the process. Within one instance
 *     serial jobs (AC_JOB_SERIAL) run in order, so writes and reads of
 *     the instance in one serial queue are enough. Across a reload they
 *     are not: the old instance's last writes and the new instance's
 *     first replays are in two queues that the worker pool does not order
 *     against each other, so a backend must share what a replay needs
 *     between its instances. The SQLite backend keeps one database object
 *     per file, shared by every instance that names it, with one
 *     connection (used under a lock) and one list of the messages handed
 *     to store() and not yet committed; a replay copies that list before
 *     it reads the disk, and a message leaves the list only once its
 *     write has committed, so each is found in one or the other.
 *     done is called exactly once, later, never from within replay(), and
 *     after the last frame was queued; chat then sends the history-end
 *     event and the room's messages it held back meanwhile. If the session
 *     closed first, send nothing and call done with s = NULL. replay()
 *     returns -1 (nothing called) when it cannot take the request; chat
 *     then sends history-end with replayed 0 and truncated true.
 *
 *  4. Health (version 2). A backend may be unable to keep messages for a
 *     while, or at all: a database it cannot open, a full disk. status()
 *     says so, and chat tells the people who ask for history: /history
 *     is answered with the error history_unavailable and the backend's
 *     sentence, and a replay's history-end carries that error too (the
 *     replay itself is still asked for: a backend that cannot write may
 *     still read). Messages are delivered all the same. A version 1
 *     backend has no status() and is taken to be always up.
 *
 * Numbering backends (version 3). A backend shared by several servers
 * cannot let each server's chat number a room: two would hand out the
 * same seq. Such a backend says so with numbers() and is then a
 * sequencer as well as a store; chat never assigns a seq itself:
 *
 *  5. Appending. For a room message chat calls append() with the room and
 *     a make function instead of making the frame and calling store().
 *     The backend calls make(arg, seq), on the loop thread, with the seq
 *     the message gets if it is stored now, and stores the frame make
 *     returns (a reference the backend lets go of); if another server
 *     took that seq meanwhile, it calls make again with the next free
 *     one. Then it calls done exactly once, never from within append():
 *     AC_HISTORY_OK with the seq the message was stored under, or
 *     AC_HISTORY_FAILED (not stored: make returned NULL, or the store was
 *     out of reach for too long). chat does not deliver a stored message
 *     itself, on done or otherwise:
 *
 *  6. Listening. chat calls listen() once, in its ready, with the function
 *     that receives every room message the backend stores, whichever
 *     server appended it (this one included), on the loop thread, each
 *     once, in seq order per room, the frame borrowed for the call. chat
 *     delivers those to the room's members. Whether a message comes to
 *     listen's function before or after its append's done is not said.
 *
 *  7. Replaying from a numbering backend: query->until is the highest seq
 *     chat has delivered in the room (0 if none yet). The backend replays
 *     up to the room's last stored message at the time it reads, which may
 *     be past until, and sets result->last to the highest seq the replay
 *     covered (the room's last seq as read, whether or not the frame was
 *     sent; 0 when it covered nothing, such as a SINCE at or past the
 *     room's last); chat delivers that member only the live messages
 *     above it.
 *
 *  For a numbering backend, last_seq() is the highest seq the backend
 *  knows stored in the room (0 when it knows none), store() and durable()
 *  are not called, and the completions of append() and the calls of
 *  listen's function stop at the backend's fini: chat frees what it holds
 *  for appends still under way in its own fini (the two finis run one
 *  after the other, whatever the load order, with nothing in between).
 *
 * Rooms: a room name is 1 to 64 bytes of A-Z a-z 0-9 - _ . and names that
 * differ only in ASCII case are the same room. chat passes the name in the
 * case it shows (the case first used); a backend matches names ignoring
 * ASCII case and keeps the case it first stored, which last_seq gives
 * back so that a room that emptied keeps the case it was shown in.
 *
 * Lifetime: the struct and its functions stay valid until the backend's
 * fini, and every completion runs before any fini of the chain (the host
 * finishes a chain only once all its jobs have completed), so chat's
 * completion functions are always still there. A completion may find that
 * chat has forgotten the session or room meanwhile: that is chat's to
 * handle, through its arg.
 */
#ifndef ASYNCCHAT_HISTORY_H
#define ASYNCCHAT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include <asyncchat/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AC_HISTORY_INTERFACE	"history"
#define AC_HISTORY_VERSION	3	/* 2: status(); 3: numbering backends */

/* Longest room name, in bytes (without the NUL). */
#define AC_HISTORY_ROOM_MAX	64

/* How a store or a replay went, as its completion is told. */
enum ac_history_status {
	AC_HISTORY_OK = 0,	/* stored; or replayed (as far as kept) */
	AC_HISTORY_FAILED = 1,	/* not stored, or not read: the backend
				   has said why in its log */
};

/* One room message for store(). */
struct ac_history_message {
	const char		*room;		/* as shown; 1 to 64 bytes */
	uint64_t		 seq;		/* >= 1, +1 per message */
	int64_t			 time_ms;	/* the frame's `time`: Unix ms */
	const struct ac_frame	*frame;		/* the frame as delivered */
};

/* What a replay is for. */
enum ac_history_mode {
	AC_HISTORY_LAST = 0,	/* the last `count` messages */
	AC_HISTORY_SINCE = 1,	/* every message with seq > since */
};

/* One replay request. */
struct ac_history_query {
	const char		*room;		/* as shown; 1 to 64 bytes */
	enum ac_history_mode	 mode;
	/*
	 * AC_HISTORY_LAST: the last count messages, oldest first; count 0
	 * means the backend's own default (`replay`, CHAT.md). A count over
	 * the backend's max_replay gives max_replay, truncated. LAST is
	 * truncated only when messages that were asked for and are kept were
	 * not sent: count over max_replay, a limit on the bytes of one
	 * replay, stored frames that no longer verify. A room that keeps
	 * fewer than count (young, or pruned) is not truncated.
	 */
	uint64_t		 count;
	/*
	 * AC_HISTORY_SINCE: the messages with seq > since, oldest first; at
	 * most max_replay of them, the newest, truncated when more were
	 * wanted, and truncated too when some after since are no longer
	 * stored (pruned by age or count, or never written: a failed store).
	 */
	uint64_t		 since;
	/* Either mode: only messages with seq <= until (the room's last
	 * seq when chat asked). */
	uint64_t		 until;
};

/* What a replay did, for history-end. */
struct ac_history_result {
	enum ac_history_status	 status;
	uint64_t		 replayed;	/* frames queued to the session */
	int			 truncated;	/* some wanted were not sent */
	/* Version 3, numbering backends: the highest seq the replay covered
	 * (see 7. above). Read only from backends whose numbers() is
	 * non-zero. */
	uint64_t		 last;
};

/*
 * A store's completion (durable mode): arg as given to store(), status
 * whether the frame is on disk.
 */
typedef void (*ac_history_stored_fn)(void *arg,
    enum ac_history_status status);

/*
 * A replay's completion: arg as given to replay(); s is the session if it
 * is still open (the frames went to it), else NULL; r what was done
 * (borrowed for the call).
 */
typedef void (*ac_history_replayed_fn)(void *arg, struct ac_session *s,
    const struct ac_history_result *r);

/*
 * Version 3: make the frame of the message being appended, numbered seq
 * (arg as given to append()). Returns a new frame reference, which the
 * backend releases, or NULL when it cannot be made (too large).
 */
typedef struct ac_frame *(*ac_history_make_fn)(void *arg, uint64_t seq);

/*
 * Version 3: an append ended: status AC_HISTORY_OK and the seq it was
 * stored under, or AC_HISTORY_FAILED and 0.
 */
typedef void (*ac_history_appended_fn)(void *arg,
    enum ac_history_status status, uint64_t seq);

/*
 * Version 3: a room message the backend stored (arg as given to listen()),
 * room as the backend has it, the frame borrowed for the call.
 */
typedef void (*ac_history_live_fn)(void *arg, const char *room, uint64_t seq,
    const struct ac_frame *f);

/*
 * The interface. Members are only ever appended; `size` is the backend's
 * sizeof(struct ac_history), so chat can tell which members it has.
 */
struct ac_history {
	size_t	 size;
	void	*ctx;		/* the backend's own, passed to every call */

	/*
	 * The highest seq stored or handed to store() for room (0: none)
	 * and, when name is not NULL, the room's name as the backend keeps
	 * it copied into name (namesize bytes at most, NUL-terminated;
	 * left as it is when the backend has no message of the room).
	 * Never blocks.
	 */
	uint64_t (*last_seq)(void *ctx, const char *room, char *name,
		    size_t namesize);

	/* Non-zero while the backend needs chat to wait for store()'s
	 * completion before it delivers (see 2. above; the answer may change
	 * while the backend runs). Asked once per message: cheap. */
	int	 (*durable)(void *ctx);

	/* Store one delivered room message (see 2. above). done may be
	 * NULL; when it is not, it is called exactly once unless store()
	 * returns -1. */
	int	 (*store)(void *ctx, const struct ac_history_message *m,
		    ac_history_stored_fn done, void *arg);

	/* Replay a room's stored messages to one session (see 3. above).
	 * done is not NULL; it is called exactly once unless replay()
	 * returns -1. */
	int	 (*replay)(void *ctx, struct ac_session *s,
		    const struct ac_history_query *q,
		    ac_history_replayed_fn done, void *arg);

	/*
	 * Since version 2: whether the backend keeps and replays messages
	 * now (see 4. above). Returns 0 while it does; -1 while it does not
	 * (its store cannot be used, or its writes fail), with why set to a
	 * short sentence for the people chatting, NUL-terminated, at most
	 * len bytes: no file names or other details of the server, which
	 * belong in the backend's log. Never blocks; cheap. Look for it with
	 * AC_HISTORY_HAS(h, status).
	 */
	int	 (*status)(void *ctx, char *why, size_t len);

	/* ---- version 3 ---- */

	/* Non-zero when the backend numbers room messages (see 5. to 7.
	 * above); the same answer for the backend's whole life. May be NULL:
	 * the backend does not number. */
	int	 (*numbers)(void *ctx);

	/* Append a room message (5. above). Returns 0 (done is called once,
	 * later), or -1 when it cannot be taken (nothing is called). */
	int	 (*append)(void *ctx, const char *room, ac_history_make_fn make,
		    ac_history_appended_fn done, void *arg);

	/* Register the function that receives every stored room message
	 * (6. above). */
	void	 (*listen)(void *ctx, ac_history_live_fn fn, void *arg);
};

/* Non-zero when a backend's struct has member m (for members appended
 * after version 1) and it is not NULL. */
#define AC_HISTORY_HAS(h, m) \
	((h)->size >= offsetof(struct ac_history, m) + sizeof((h)->m) && \
	    (h)->m != NULL)

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_HISTORY_H */
