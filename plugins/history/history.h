/*
 * history.h - the history plugin's private structures and functions,
 * grouped by the file that defines them. Nothing here is installed.
 *
 * The pieces, and who touches what:
 *  - history.c: the plugin (options, init, fini, metrics) and the
 *    struct ac_history it publishes (asyncchat/history.h);
 *  - room.c: every room's highest seq and name as first stored, for the
 *    whole process (all instances, across reloads): loop thread only;
 *  - db.c: one open database per file, shared by the instances that use
 *    it (a reload keeping `path`), with the messages handed to it that are
 *    not on disk yet (the pending list);
 *  - store.c: SQLite itself (store.h);
 *  - batch.c: store(): messages gathered into one write job at a time;
 *  - checkpoint.c: the WAL copied into the file by a job of its own;
 *  - replay.c: replay(): a read job, then the frames relayed;
 *  - merge.c: which frames a replay sends, from the pending list and
 *    the disk;
 *  - retention.c: pruning by age, and the database size, every minute.
 *
 * Threads. Workers run the jobs; a job touches only its own struct and
 * the database it names, under the database's locks. Everything else runs
 * on the loop thread.
 */
#ifndef HISTORY_HISTORY_H
#define HISTORY_HISTORY_H

#include <sys/queue.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <asyncchat/history.h>
#include <asyncchat/plugin.h>

#include "store.h"
#include "../roomname.h"

#define HISTORY_ROOM_MAX	AC_HISTORY_ROOM_MAX
_Static_assert(ROOMNAME_MAX == AC_HISTORY_ROOM_MAX,
    "the interface's room names are CHAT.md's");

/* Defaults of the options (docs/HISTORY.md). */
#define HISTORY_DEFAULT_REPLAY		50
#define HISTORY_DEFAULT_MAX_REPLAY	1000
#define HISTORY_DEFAULT_MAX_MESSAGES	10000
#define HISTORY_DEFAULT_MAX_AGE		(30 * 86400)
#define HISTORY_MAX_REPLAY_LIMIT	100000

/* How long SQLite waits for a lock another process holds, in ms. */
#define HISTORY_BUSY_MS			1000

/*
 * Messages handed to store() and not yet written, per database: past
 * either bound store() refuses (returns -1) and chat delivers without
 * storing. Only a disk far slower than the chat reaches them.
 */
#define HISTORY_PENDING_MAX		16384
#define HISTORY_PENDING_BYTES		(64u * 1024 * 1024)

/*
 * Bytes of frames one replay may queue to a session, well under the
 * default max_output_buffer (32M): a replay past it sends the newest that
 * fit, with truncated set, rather than have the session closed as a slow
 * consumer.
 */
#define HISTORY_REPLAY_BYTES		(8u * 1024 * 1024)

/*
 * Frames a replay checks and queues in one loop callback: about half a
 * millisecond of HMACs. A longer replay goes on in later callbacks.
 */
#define HISTORY_REPLAY_CHUNK		128
/* Read-only connections kept open for the next replays (db_reader). */
#define HISTORY_READERS_IDLE		8

/*
 * Checkpoints (checkpoint.c): one starts once a write leaves more than
 * HISTORY_CKPT_PAGES pages in the WAL (SQLite's own threshold), copying
 * in up to HISTORY_CKPT_PASSES passes what writes add meanwhile; again
 * each HISTORY_CKPT_STEP pages it grows while none has copied it in
 * full; and between two writes, to copy what is left, once the WAL is
 * past HISTORY_CKPT_HOLD pages (8 MB at 4 KiB pages).
 */
#define HISTORY_CKPT_PAGES		1000
#define HISTORY_CKPT_STEP		250
#define HISTORY_CKPT_PASSES		4
#define HISTORY_CKPT_HOLD		2000

/*
 * max_messages: a room's oldest messages leave the file in runs of
 * 1/HISTORY_TRIM_SHARE of max_messages, at most HISTORY_TRIM_MAX rows, by
 * a job after the write (retention.c), and a replay never reads past
 * max_messages.
 */
#define HISTORY_TRIM_SHARE		16
#define HISTORY_TRIM_MAX		512

/* Retention: a pass every minute, each job deleting at most a chunk. */
#define HISTORY_PRUNE_INTERVAL		60
#define HISTORY_PRUNE_CHUNK		2000

/* Seconds between two log lines about the same kind of failure. */
#define HISTORY_LOG_INTERVAL		60

/* The plugin's options ([plugin.history]). */
struct history_options {
	char		*path;
	uint64_t	 replay;
	uint64_t	 max_replay;
	uint64_t	 max_messages;	/* 0: no limit */
	uint64_t	 max_age;	/* seconds; 0: no limit */
	int		 sync_full;
};

/* The metrics of one instance. */
enum history_metric {
	HM_STORED,		/* counter: messages written */
	HM_STORE_FAILURES,	/* counter: messages not written */
	HM_BATCH,		/* histogram: messages per write */
	HM_WRITE_SECONDS,	/* histogram: one write's transaction */
	HM_REPLAYS,		/* counter: replays answered */
	HM_REPLAY_FAILURES,	/* counter: replays that could not read */
	HM_REPLAYED,		/* counter: frames replayed */
	HM_SKIPPED,		/* counter: stored frames that no longer
				   verify, not replayed */
	HM_PRUNED,		/* counter: messages pruned by age */
	HM_DB_BYTES,		/* gauge: database and WAL size */
	HM_PENDING,		/* gauge: messages not yet written */
	HM_HEALTHY,		/* gauge: 1 writing works, 0 not */
	HM_CHECKPOINTS,		/* counter: checkpoint jobs */
	HM_CKPT_WAITS,		/* counter: of them, between two writes */
	HM_COUNT
};

/* A run of failures of one kind, logged at its start, at most once a
 * minute while it lasts, and at its end. */
struct history_streak {
	int		 failing;
	uint64_t	 count;		/* failed since the last line */
	uint64_t	 total;		/* failed in this streak */
	time_t		 logged;	/* when the last line was */
};

struct db;
struct batch;
struct event;

/* One instance of the plugin. */
struct history {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	struct history_options		 opt;

	struct db			*db;	/* NULL: running without */
	char				 broken[512];	/* why, then */

	struct ac_history		 iface;

	struct batch			*open;	/* store() adds */
	struct event			*close_ev;	/* ends its loop turn */

	struct event			*prune_ev;
	int				 pruning;	/* a job is out */
	uint64_t			 pruned_pass;	/* this pass */

	struct history_streak		 store_streak;
	struct history_streak		 read_streak;
	struct history_streak		 verify_streak;
	struct history_streak		 prune_streak;
	struct history_streak		 ckpt_streak;

	struct ac_metric		*m[HM_COUNT];
};

/* checkpoint.c */
void	checkpoint_due(struct history *h, int frames);

/* history.c */
void	history_streak_fail(struct history *h, struct history_streak *sk,
	    uint64_t n, enum ac_log_level level, const char *what,
	    const char *why);
void	history_streak_ok(struct history *h, struct history_streak *sk,
	    const char *what);

/* room.c */

/* A room of the process-wide table. */
struct room {
	char		 key[HISTORY_ROOM_MAX + 1];	/* folded */
	char		 name[HISTORY_ROOM_MAX + 1];	/* as stored */
	uint64_t	 seq;	/* highest stored or handed to store */
	uint64_t	 trimmed;	/* max_messages: last trim asked (0) */
};

void		 room_hold(void);
void		 room_release(void);
struct room	*room_find(const char *key);
struct room	*room_note(const char *key, const char *name, uint64_t seq);

/* db.c */

/* A message handed to store(), until its write completes. */
struct msg {
	char			 key[HISTORY_ROOM_MAX + 1];
	char			 name[HISTORY_ROOM_MAX + 1];
	uint64_t		 seq;
	int64_t			 time_ms;
	uint64_t		 trim_to;	/* retention_trim_to */
	struct ac_frame		*frame;	/* our reference */
	const uint8_t		*bytes;		/* the frame's */
	size_t			 len;
	ac_history_stored_fn	 done;
	void			*arg;
	int			 stored;	/* set by the write */
	TAILQ_ENTRY(msg)	 in_batch;
	TAILQ_ENTRY(msg)	 in_db;	/* db->pending, pend_mu */
};
TAILQ_HEAD(msg_list, msg);

/* One open database file, shared by the instances that name it. */
struct db {
	char			*path;		/* resolved */
	unsigned int		 refs;	/* instances; loop thread */

	pthread_mutex_t		 conn_mu;	/* st */
	struct store		*st;

	/* Read-only connections of replays not running now (db_reader). */
	pthread_mutex_t		 rd_mu;		/* what follows */
	struct store		*readers[HISTORY_READERS_IDLE];
	size_t			 nreaders;

	pthread_mutex_t		 pend_mu;	/* what follows */
	pthread_cond_t		 close_cv;	/* a batch was closed */
	struct msg_list		 pending;	/* in store() order */
	size_t			 npending;
	size_t			 pending_bytes;

	/* The checkpoint (checkpoint.c): ckpt for its job alone, the rest
	 * for the loop thread. */
	struct store		*ckpt;
	int			 ckpt_running;
	int			 ckpt_log;	/* WAL pages at the last */

	LIST_ENTRY(db)		 entry;
};

struct db	*db_get(struct history *h, const char *path, char *err,
		    size_t errlen);
void		 db_put(struct db *db);
struct store	*db_reader(struct db *db, char *err, size_t errlen);
void		 db_reader_put(struct db *db, struct store *st);
void		 db_pending_add(struct db *db, struct msg *m);
void		 db_pending_remove(struct db *db, struct msg *m);
int		 db_pending_full(struct db *db, size_t len);
size_t		 db_pending_copy(struct db *db, const char *key,
		    uint64_t after, uint64_t until, size_t limit,
		    size_t budget, struct store_frame *out, int *cut);
size_t		 db_pending_count(struct db *db);

/* batch.c */
int	batch_start(struct history *h);
void	batch_stop(struct history *h);
int	batch_store(struct history *h, const struct ac_history_message *hm,
	    ac_history_stored_fn done, void *arg);

/* merge.c */

/* One source of a replay's frames, newest first. */
struct merge_source {
	struct store_frame	*f;
	size_t			 n;
	int			 cut;	/* its budget stopped it */
};

int	merge_frame_matches(const uint8_t *bytes, size_t len,
	    const char *key, uint64_t seq);
size_t	merge_newest(const char *key, struct merge_source *a,
	    struct merge_source *b, size_t limit, size_t budget,
	    struct store_frame *out, size_t *mismatched, int *cut);

/* replay.c */
int	replay_start(struct history *h, struct ac_session *s,
	    const struct ac_history_query *q, ac_history_replayed_fn done,
	    void *arg);

/* retention.c */
uint64_t retention_trim_to(struct room *r, uint64_t seq,
	    uint64_t max_messages);
uint64_t retention_kept_after(uint64_t last_seq, uint64_t max_messages);
void	retention_trim(struct history *h, struct db *db,
	    struct msg_list *msgs);
int	retention_start(struct history *h);
void	retention_stop(struct history *h);

#endif /* HISTORY_HISTORY_H */
