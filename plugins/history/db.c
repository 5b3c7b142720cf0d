/*
 * db.c - one open history database per file, shared by every instance of
 * the plugin that names it, and the messages handed to it that are not
 * written yet.
 *
 * Why shared. A SIGHUP reload makes a new instance while the old one may
 * still have writes queued or running (they may not be cancelled: those
 * messages were delivered). The worker pool orders the serial jobs of one
 * plugin instance, not of two, so the old instance's last write and the
 * new instance's first replay could run in either order, and the replay
 * would miss messages it must show (the contract: a replay sees every
 * store() called before it, written yet or not). Sharing the database
 * fixes both halves:
 *  - one connection for writes, used under conn_mu, so two instances'
 *    jobs never write at once (SQLite would make one wait on the file
 *    lock); replays read on read-only connections of their own
 *    (db_reader), beside it;
 *  - one pending list, of every message handed to store() and not yet
 *    written, which a replay reads besides the disk. A message leaves the
 *    list only after its write has committed, and a replay copies the
 *    list before it reads the disk, so each message is in one or the
 *    other (or both: the replay keeps one).
 *
 * The registry of open databases is for the loop thread only (init and
 * fini). pend_mu is taken by the loop thread too, in store(), but only
 * around list operations, never around SQLite: the loop never waits for
 * the disk.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "history.h"

static LIST_HEAD(, db)	db_open_list =
    LIST_HEAD_INITIALIZER(db_open_list);

/* What db_get's room loader needs. */
struct db_load {
	struct history	*h;
	const char	*path;
	unsigned long	 rooms;
	unsigned long	 bad;
};

/*
 * The absolute, symlink-free form of path (its directory resolved, the
 * file name kept), so that two spellings of one file share one database.
 * Returns a new string, or NULL with err saying what is wrong with it.
 */
static char *
db_resolve(const char *path, char *err, size_t errlen)
{
	char	*dcopy = NULL, *bcopy = NULL, *dir, *base, *out = NULL;
	char	 real[PATH_MAX];

	if ((dcopy = strdup(path)) == NULL || (bcopy = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	dir = dirname(dcopy);
	base = basename(bcopy);
	if (*base == '\0' || strcmp(base, "/") == 0 ||
	    strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		snprintf(err, errlen, "not a file name");
		goto done;
	}
	if (realpath(dir, real) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			snprintf(err, errlen, "the directory %s does not exist",
			    dir);
		else
			snprintf(err, errlen, "the directory %s: %s", dir,
			    strerror(errno));
		goto done;
	}
	if (asprintf(&out, "%s/%s", strcmp(real, "/") == 0 ? "" : real,
	    base) == -1) {
		out = NULL;
		snprintf(err, errlen, "out of memory");
	}
done:
	free(dcopy);
	free(bcopy);
	return out;
}

/* Add one room found in the database to the process' table. */
static void
db_load_room(void *arg, const char *key, const char *name,
    uint64_t last_seq)
{
	struct db_load	*dl = arg;
	char		 folded[HISTORY_ROOM_MAX + 1];

	/*
	 * The file is ours, but it is still input: a row we would not
	 * have written (edited by hand, another program) is left out of
	 * numbering rather than trusted.
	 */
	if (!roomname_valid_string(key) || !roomname_valid_string(name) || last_seq == 0 ||
	    last_seq > INT64_MAX) {
		dl->bad++;
		return;
	}
	roomname_fold(folded, name);
	if (strcmp(folded, key) != 0) {
		dl->bad++;
		return;
	}
	if (room_note(key, name, last_seq) != NULL)
		dl->rooms++;
}

/* A new, unopened database for path. */
static struct db *
db_new(const char *path)
{
	struct db		*db;
	pthread_condattr_t	 attr;

	if ((db = calloc(1, sizeof *db)) == NULL)
		return NULL;
	if ((db->path = strdup(path)) == NULL) {
		free(db);
		return NULL;
	}
	pthread_mutex_init(&db->conn_mu, NULL);
	pthread_mutex_init(&db->pend_mu, NULL);
	pthread_mutex_init(&db->rd_mu, NULL);
	/* batch.c waits on it with a deadline on the monotonic clock. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&db->close_cv, &attr);
	pthread_condattr_destroy(&attr);
	TAILQ_INIT(&db->pending);
	return db;
}

/* Free a database that no instance uses. */
static void
db_free(struct db *db)
{
	while (db->nreaders > 0)
		store_close(db->readers[--db->nreaders]);
	store_close(db->ckpt);
	store_close(db->st);
	pthread_mutex_destroy(&db->conn_mu);
	pthread_mutex_destroy(&db->pend_mu);
	pthread_mutex_destroy(&db->rd_mu);
	pthread_cond_destroy(&db->close_cv);
	free(db->path);
	free(db);
}

/*
 * The database at path for instance h: the one already open for that
 * file, or a new one, opened, checked, migrated and with its rooms loaded
 * into the room table. This blocks on the disk: it runs in init, at
 * start-up before the server serves, and on a reload only when `path`
 * changed. Returns it (with a reference for h), or NULL with err.
 */
struct db *
db_get(struct history *h, const char *path, char *err, size_t errlen)
{
	struct db	*db;
	struct db_load	 dl;
	struct stat	 st;
	char		*resolved, *dir;
	char		 why[384];

	if ((resolved = db_resolve(path, why, sizeof why)) == NULL) {
		snprintf(err, errlen, "%s", why);
		return NULL;
	}
	LIST_FOREACH(db, &db_open_list, entry) {
		if (strcmp(db->path, resolved) == 0) {
			free(resolved);
			db->refs++;
			return db;
		}
	}
	if ((db = db_new(resolved)) == NULL) {
		free(resolved);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	free(resolved);
	if (store_open(db->path, HISTORY_BUSY_MS, &db->st, why,
	    sizeof why) == -1) {
		/* Say so when the directory is what stands in the way. */
		dir = strdup(db->path);
		if (dir != NULL && access(dirname(dir), W_OK) == -1)
			snprintf(err, errlen, "%s (cannot write in its "
			    "directory: %s)", why, strerror(errno));
		else
			snprintf(err, errlen, "%s", why);
		free(dir);
		db_free(db);
		return NULL;
	}
	memset(&dl, 0, sizeof dl);
	dl.h = h;
	dl.path = db->path;
	if (store_rooms(db->st, db_load_room, &dl, why, sizeof why) == -1) {
		snprintf(err, errlen, "%s", why);
		db_free(db);
		return NULL;
	}
	if (dl.bad > 0)
		h->host->log(h->p, AC_LOG_WARNING, "%s: %lu room%s with a bad "
		    "name or seq left out (not written by asyncchat?)",
		    db->path, dl.bad, dl.bad == 1 ? "" : "s");
	h->host->log(h->p, AC_LOG_INFO, "%s: %lu room%s with history",
	    db->path, dl.rooms, dl.rooms == 1 ? "" : "s");
	/* A file made before (by hand, by SQLite alone) keeps its mode. */
	if (stat(db->path, &st) == 0 && (st.st_mode & S_IROTH) != 0)
		h->host->log(h->p, AC_LOG_WARNING, "%s can be read by every "
		    "local user (mode %03o), and it holds every room message: "
		    "chmod o-rwx it and its -wal and -shm files", db->path,
		    (unsigned int)(st.st_mode & 0777));
	db->refs = 1;
	LIST_INSERT_HEAD(&db_open_list, db, entry);
	return db;
}

/* An instance lets go of its database; the last one closes it. Every job
 * of the instance has completed by now (fini), so nothing is pending of
 * it. */
void
db_put(struct db *db)
{
	if (db == NULL || --db->refs > 0)
		return;
	LIST_REMOVE(db, entry);
	db_free(db);
}

/*
 * A read-only connection for one replay, on a worker: one left by an
 * earlier replay, or a new one. Replays read on these, not on st, so a
 * write never waits for a replay's read (conn_mu), and replays run side
 * by side. Returns it, or NULL with err.
 */
struct store *
db_reader(struct db *db, char *err, size_t errlen)
{
	struct store	*st = NULL;

	pthread_mutex_lock(&db->rd_mu);
	if (db->nreaders > 0)
		st = db->readers[--db->nreaders];
	pthread_mutex_unlock(&db->rd_mu);
	if (st == NULL && store_open_reader(db->path, HISTORY_BUSY_MS, &st,
	    err, errlen) == -1)
		return NULL;
	return st;
}

/* A replay is done with its connection: keep it for the next, or close
 * it when HISTORY_READERS_IDLE are kept already. */
void
db_reader_put(struct db *db, struct store *st)
{
	pthread_mutex_lock(&db->rd_mu);
	if (db->nreaders < HISTORY_READERS_IDLE) {
		db->readers[db->nreaders++] = st;
		st = NULL;
	}
	pthread_mutex_unlock(&db->rd_mu);
	store_close(st);
}

/* Add a message to the pending list (pend_mu held). */
void
db_pending_add(struct db *db, struct msg *m)
{
	TAILQ_INSERT_TAIL(&db->pending, m, in_db);
	db->npending++;
	db->pending_bytes += m->len;
}

/* Take a message off the pending list (pend_mu held). */
void
db_pending_remove(struct db *db, struct msg *m)
{
	TAILQ_REMOVE(&db->pending, m, in_db);
	db->npending--;
	db->pending_bytes -= m->len;
}

/* Non-zero when one more message of len bytes would pass the pending
 * bounds (pend_mu held). */
int
db_pending_full(struct db *db, size_t len)
{
	return db->npending >= HISTORY_PENDING_MAX ||
	    len > HISTORY_PENDING_BYTES - db->pending_bytes;
}

/*
 * Copy, newest first, the pending messages of room key with after < seq
 * <= until into out (room for limit): at most limit of them and budget
 * bytes in all; *cut is set when the budget (or memory) stopped it before
 * the limit. A worker calls this; it takes pend_mu. Returns how many.
 */
size_t
db_pending_copy(struct db *db, const char *key, uint64_t after,
    uint64_t until, size_t limit, size_t budget, struct store_frame *out,
    int *cut)
{
	struct msg	*m;
	size_t		 n = 0, bytes = 0;

	*cut = 0;
	pthread_mutex_lock(&db->pend_mu);
	TAILQ_FOREACH_REVERSE(m, &db->pending, msg_list, in_db) {
		if (n == limit)
			break;
		if (m->seq <= after || m->seq > until ||
		    strcmp(m->key, key) != 0)
			continue;
		if (m->len > budget - bytes ||
		    (out[n].bytes = malloc(m->len)) == NULL) {
			*cut = 1;
			break;
		}
		memcpy(out[n].bytes, m->bytes, m->len);
		out[n].len = m->len;
		out[n].seq = m->seq;
		bytes += m->len;
		n++;
	}
	pthread_mutex_unlock(&db->pend_mu);
	return n;
}

/* How many messages wait to be written (for the metric). */
size_t
db_pending_count(struct db *db)
{
	size_t	n;

	pthread_mutex_lock(&db->pend_mu);
	n = db->npending;
	pthread_mutex_unlock(&db->pend_mu);
	return n;
}
