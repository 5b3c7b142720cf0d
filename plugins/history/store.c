/*
 * store.c - one SQLite connection to a history database: opening it (WAL
 * mode, checks that it is ours, schema migrated forward), and the few
 * statements the plugin runs on it. See store.h for the threading rules.
 *
 * The schema (version 2) is a table of messages, with a unique index on
 * (room, seq) for replays and an index on time_ms for pruning by age, and
 * a table of rooms for numbering:
 *
 *	messages(room TEXT, name TEXT, seq INTEGER, time_ms INTEGER,
 *	    frame BLOB)
 *	rooms(room TEXT PRIMARY KEY, name TEXT, seq INTEGER)
 *
 * room is the folded key (ASCII lower case), name the room as shown, frame
 * the whole signed frame as it was delivered. messages is a rowid table,
 * not WITHOUT ROWID: its rows carry blobs of hundreds of bytes or more,
 * which SQLite keeps better out of the index b-tree.
 *
 * rooms holds each room's highest seq ever written and its name as first
 * stored. Every write raises it in the same transaction, and nothing
 * lowers it: pruning deletes messages only, so a room whose every message
 * has gone (max_age) still numbers on from where it was after a restart.
 * Version 1 had no rooms table and read the numbering from the messages,
 * which lost it with them; migrating a version 1 file fills rooms from
 * its messages.
 *
 * PRAGMA user_version is the schema version; PRAGMA application_id marks
 * the file as an asyncchat history, so that pointing `path` at another
 * program's database is refused instead of written to.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

/* A connection and its prepared statements. */
struct store {
	sqlite3		*db;
	char		*path;
	char		*wal_path;
	int		 sync_full;	/* as last set; -1: not yet */
	int		 wal_frames;	/* in the WAL after the last commit */

	sqlite3_stmt	*insert;
	sqlite3_stmt	*trim;
	sqlite3_stmt	*read;
	sqlite3_stmt	*prune;
	sqlite3_stmt	*room_seq;
	sqlite3_stmt	*rooms;
};

/*
 * What takes a database from version N to N + 1, at index N. Append only:
 * a file written by an older asyncchat is brought forward step by step,
 * each step in one transaction with its new user_version.
 */
static const char *const store_migrations[STORE_SCHEMA_VERSION] = {
	/* 0 -> 1: the messages table. */
	"CREATE TABLE messages ("
	"room TEXT NOT NULL, "
	"name TEXT NOT NULL, "
	"seq INTEGER NOT NULL, "
	"time_ms INTEGER NOT NULL, "
	"frame BLOB NOT NULL);"
	"CREATE UNIQUE INDEX messages_room_seq ON messages (room, seq);"
	"CREATE INDEX messages_time ON messages (time_ms);",

	/* 1 -> 2: the rooms table, from the messages kept. */
	"CREATE TABLE rooms ("
	"room TEXT PRIMARY KEY NOT NULL, "
	"name TEXT NOT NULL, "
	"seq INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT INTO rooms (room, name, seq) "
	"SELECT room, (SELECT first.name FROM messages AS first "
	"WHERE first.room = m.room ORDER BY first.seq LIMIT 1), max(seq) "
	"FROM messages AS m GROUP BY room;",
};

static void	store_errf(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Write a formatted error into err. */
static void
store_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Describe the connection's last error after what: SQLite's message, and
 * the system's when the error came from a system call. */
static void
store_sqlerr(sqlite3 *db, char *err, size_t errlen, const char *what)
{
	int	code = sqlite3_extended_errcode(db) & 0xff;
	int	sys = sqlite3_system_errno(db);

	if (sys != 0 && (code == SQLITE_CANTOPEN || code == SQLITE_IOERR ||
	    code == SQLITE_FULL || code == SQLITE_READONLY))
		store_errf(err, errlen, "%s: %s (%s)", what,
		    sqlite3_errmsg(db), strerror(sys));
	else
		store_errf(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
}

/* Run SQL that returns no rows; -1 with err set on failure. */
static int
store_exec(struct store *st, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		store_sqlerr(st->db, err, errlen, sql);
		return -1;
	}
	return 0;
}

/* Run a pragma that returns one integer into *out. */
static int
store_pragma_int(struct store *st, const char *sql, int64_t *out, char *err,
    size_t errlen)
{
	sqlite3_stmt	*stmt;
	int		 rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		store_sqlerr(st->db, err, errlen, sql);
		return -1;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(stmt, 0);
	else
		store_sqlerr(st->db, err, errlen, sql);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Switch the file to WAL mode, which it keeps from then on. */
static int
store_wal(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt	*stmt;
	const char	*mode;
	int		 rc, ok = 0;

	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &stmt,
	    NULL) != SQLITE_OK) {
		store_sqlerr(st->db, err, errlen, "cannot read it");
		return -1;
	}
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW)
		store_sqlerr(st->db, err, errlen, "cannot read it");
	else {
		mode = (const char *)sqlite3_column_text(stmt, 0);
		if (mode != NULL && strcmp(mode, "wal") == 0)
			ok = 1;
		else
			store_errf(err, errlen, "cannot switch it to WAL "
			    "mode (journal mode %s)", mode ? mode : "unknown");
	}
	sqlite3_finalize(stmt);
	return ok ? 0 : -1;
}

/*
 * Check that the file is a history database (or a new, empty one) of a
 * version this code knows, and migrate it forward to ours.
 */
static int
store_migrate(struct store *st, char *err, size_t errlen)
{
	int64_t	appid, version, tables;
	char	sql[128];

	if (store_pragma_int(st, "PRAGMA application_id", &appid, err,
	    errlen) == -1 ||
	    store_pragma_int(st, "PRAGMA user_version", &version, err,
	    errlen) == -1)
		return -1;
	if (appid != 0 && appid != STORE_APPLICATION_ID) {
		store_errf(err, errlen, "not an asyncchat history database "
		    "(application_id 0x%08llx)", (unsigned long long)appid);
		return -1;
	}
	if (version > STORE_SCHEMA_VERSION) {
		store_errf(err, errlen, "schema version %lld is newer than "
		    "this asyncchat knows (%d): written by a newer asyncchat",
		    (long long)version, STORE_SCHEMA_VERSION);
		return -1;
	}
	if (version < 0) {
		store_errf(err, errlen, "bad schema version %lld",
		    (long long)version);
		return -1;
	}
	if (version == 0 && appid == 0) {
		if (store_pragma_int(st, "SELECT count(*) FROM sqlite_master",
		    &tables, err, errlen) == -1)
			return -1;
		if (tables != 0) {
			store_errf(err, errlen, "not an asyncchat history "
			    "database (it has tables of its own and no schema "
			    "version)");
			return -1;
		}
	}
	for (; version < STORE_SCHEMA_VERSION; version++) {
		if (store_exec(st, "BEGIN IMMEDIATE", err, errlen) == -1)
			return -1;
		snprintf(sql, sizeof sql, "PRAGMA user_version = %lld; "
		    "PRAGMA application_id = %d", (long long)version + 1,
		    STORE_APPLICATION_ID);
		if (store_exec(st, store_migrations[version], err,
		    errlen) == -1 || store_exec(st, sql, err, errlen) == -1 ||
		    store_exec(st, "COMMIT", err, errlen) == -1) {
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return 0;
}

/* The writer's WAL hook, called by SQLite after each commit with the
 * pages now in the WAL: noted for store_wal_frames, and no checkpoint. */
static int
store_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store	*st = arg;

	st->wal_frames = frames;
	return SQLITE_OK;
}

/* Prepare one statement kept for the connection's life. */
static int
store_prepare(struct store *st, const char *sql, sqlite3_stmt **stmt,
    char *err, size_t errlen)
{
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    stmt, NULL) != SQLITE_OK) {
		store_sqlerr(st->db, err, errlen, sql);
		return -1;
	}
	return 0;
}

/* Prepare every statement the plugin runs. */
static int
store_prepare_all(struct store *st, char *err, size_t errlen)
{
	if (store_prepare(st, "INSERT OR IGNORE INTO messages "
	    "(room, name, seq, time_ms, frame) VALUES (?1, ?2, ?3, ?4, ?5)",
	    &st->insert, err, errlen) == -1 ||
	    store_prepare(st, "DELETE FROM messages "
	    "WHERE room = ?1 AND seq <= ?2", &st->trim, err, errlen) == -1 ||
	    store_prepare(st, "SELECT seq, frame FROM messages "
	    "WHERE room = ?1 AND seq > ?2 AND seq <= ?3 "
	    "ORDER BY seq DESC LIMIT ?4", &st->read, err, errlen) == -1 ||
	    store_prepare(st, "DELETE FROM messages WHERE rowid IN "
	    "(SELECT rowid FROM messages WHERE time_ms < ?1 "
	    "ORDER BY time_ms LIMIT ?2)", &st->prune, err, errlen) == -1 ||
	    store_prepare(st, "INSERT INTO rooms (room, name, seq) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT (room) DO UPDATE "
	    "SET seq = excluded.seq WHERE excluded.seq > rooms.seq",
	    &st->room_seq, err, errlen) == -1 ||
	    store_prepare(st, "SELECT room, name, seq FROM rooms "
	    "ORDER BY room", &st->rooms, err, errlen) == -1)
		return -1;
	return 0;
}

/*
 * Make the file at path, if it is not there, with mode 0640 (less what
 * the umask takes): it holds every room message, and SQLite would make it
 * readable by every local user (0644). Its -wal and -shm files take the
 * same mode from it. Any error is left for SQLite's open to report.
 */
static void
store_create(const char *path)
{
	int	fd;

	fd = open(path, O_RDONLY|O_CREAT|O_CLOEXEC|O_NOCTTY, 0640);
	if (fd != -1)
		close(fd);
}

/*
 * Open (creating if need be) the database at path, in WAL mode, checked
 * and migrated. busy_ms is how long a statement waits for a lock another
 * process holds. Returns 0 and *out, or -1 with a sentence in err.
 */
int
store_open(const char *path, int busy_ms, struct store **out, char *err,
    size_t errlen)
{
	struct store	*st;
	int		 rc;

	*out = NULL;
	if ((st = calloc(1, sizeof *st)) == NULL ||
	    (st->path = strdup(path)) == NULL ||
	    asprintf(&st->wal_path, "%s-wal", path) == -1) {
		if (st != NULL)
			free(st->path);
		free(st);
		store_errf(err, errlen, "out of memory");
		return -1;
	}
	st->sync_full = -1;
	store_create(path);
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (st->db == NULL)
			store_errf(err, errlen, "cannot open it: out of "
			    "memory");
		else
			store_sqlerr(st->db, err, errlen, "cannot open it");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, busy_ms);

	/* A file the server may not write is opened read-only, silently. */
	if (sqlite3_db_readonly(st->db, "main") == 1) {
		store_errf(err, errlen, "the file is read-only to this "
		    "process");
		goto fail;
	}
	/*
	 * No checkpoint when the connection closes: closing happens on the
	 * event loop (the plugin's fini), and a checkpoint would write and
	 * fsync there. The WAL stays beside the file, and whoever opens it
	 * next takes it over; the plugin's checkpoint jobs fold it in as
	 * it grows.
	 */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	/*
	 * No checkpoint at a commit either. SQLite's automatic one runs
	 * inside the commit that takes the WAL past 1000 pages, on the
	 * writer, and a write that chat waits for to deliver its messages
	 * would wait for it too (5-10 ms, against 0.3-0.5 for the write).
	 * The hook, which replaces the automatic one, only notes the WAL's
	 * size; the plugin checkpoints on a connection of its own
	 * (store_open_checkpointer) beside the writes.
	 */
	sqlite3_wal_autocheckpoint(st->db, 0);
	sqlite3_wal_hook(st->db, store_wal_hook, st);

	if (store_wal(st, err, errlen) == -1 ||
	    store_exec(st, "PRAGMA journal_size_limit = 67108864", err,
	    errlen) == -1 ||
	    store_migrate(st, err, errlen) == -1 ||
	    store_prepare_all(st, err, errlen) == -1)
		goto fail;
	*out = st;
	return 0;

fail:
	store_close(st);
	return -1;
}

/*
 * Open another connection to a database that store_open() has opened, for
 * one job beside the writer's (what names it in errors): read-only or
 * read-write as flags say, with the writer's busy timeout and no
 * checkpoint when it closes. Returns 0, or -1 with err.
 */
static int
store_open_side(const char *path, int flags, const char *what, int busy_ms,
    struct store **out, char *err, size_t errlen)
{
	struct store	*st;
	char		 why[64];

	*out = NULL;
	if ((st = calloc(1, sizeof *st)) == NULL ||
	    (st->path = strdup(path)) == NULL) {
		if (st != NULL)
			free(st->path);
		free(st);
		store_errf(err, errlen, "out of memory");
		return -1;
	}
	st->sync_full = -1;
	snprintf(why, sizeof why, "cannot open it to %s", what);
	if (sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		if (st->db == NULL)
			store_errf(err, errlen, "%s: out of memory", why);
		else
			store_sqlerr(st->db, err, errlen, why);
		store_close(st);
		return -1;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, busy_ms);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	*out = st;
	return 0;
}

/*
 * Open a read-only connection to a database that store_open() has opened
 * (so it exists, is in WAL mode and has the current schema): for
 * replays, which then never wait for a write, nor a write for them (WAL
 * lets readers and one writer work at once, each reader on the snapshot
 * of what had committed when its read began). Only store_read() may be
 * used on it. Returns 0, or -1 with err.
 */
int
store_open_reader(const char *path, int busy_ms, struct store **out,
    char *err, size_t errlen)
{
	struct store	*st;

	if (store_open_side(path, SQLITE_OPEN_READONLY, "read", busy_ms, &st,
	    err, errlen) == -1)
		return -1;
	if (store_prepare(st, "SELECT seq, frame FROM messages "
	    "WHERE room = ?1 AND seq > ?2 AND seq <= ?3 "
	    "ORDER BY seq DESC LIMIT ?4", &st->read, err, errlen) == -1) {
		store_close(st);
		return -1;
	}
	*out = st;
	return 0;
}

/*
 * Open a connection to a database that store_open() has opened, for
 * store_checkpoint() alone: a checkpoint on it copies pages from the WAL
 * into the file while the writer's connection goes on writing. Returns
 * 0, or -1 with err.
 */
int
store_open_checkpointer(const char *path, int busy_ms, struct store **out,
    char *err, size_t errlen)
{
	struct store	*st;

	if (store_open_side(path, SQLITE_OPEN_READWRITE, "checkpoint",
	    busy_ms, &st, err, errlen) == -1)
		return -1;
	sqlite3_wal_autocheckpoint(st->db, 0);
	/* A connection finds the WAL at its first read: a checkpoint before
	 * it would see a file not in WAL mode, and copy nothing. */
	if (store_exec(st, "SELECT count(*) FROM sqlite_master", err,
	    errlen) == -1) {
		store_close(st);
		return -1;
	}
	*out = st;
	return 0;
}

/*
 * A passive checkpoint: copy into the database file the pages of the WAL
 * that no reader still needs, waiting for nobody, while the writer's
 * connection goes on writing. *log is set to the pages in the WAL, *done
 * to those now in the file; once all are, the next write starts the WAL
 * over. Another checkpoint at work (SQLITE_BUSY) is not an error: it does
 * the same. Returns 0, or -1 with err.
 */
int
store_checkpoint(struct store *st, int *log, int *done, char *err,
    size_t errlen)
{
	int	rc;

	*log = *done = 0;
	rc = sqlite3_wal_checkpoint_v2(st->db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, log, done);
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY) {
		store_sqlerr(st->db, err, errlen, "cannot checkpoint");
		return -1;
	}
	return 0;
}

/* Pages in the writer's WAL after its last commit (0 when the WAL was
 * started over). */
int
store_wal_frames(struct store *st)
{
	return st->wal_frames;
}

/* Close the connection and free it; NULL is allowed. */
void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	sqlite3_finalize(st->insert);
	sqlite3_finalize(st->trim);
	sqlite3_finalize(st->read);
	sqlite3_finalize(st->prune);
	sqlite3_finalize(st->room_seq);
	sqlite3_finalize(st->rooms);
	sqlite3_close(st->db);
	free(st->wal_path);
	free(st->path);
	free(st);
}

/*
 * Call cb for every room of the rooms table, with its name as first
 * stored and its highest seq, in key order: one read of a small table, so
 * start-up time grows with the number of rooms only. Keys are passed as
 * found: the caller checks them.
 */
int
store_rooms(struct store *st, store_room_fn cb, void *arg, char *err,
    size_t errlen)
{
	const char	*key, *name;
	int64_t		 seq;
	int		 rc;

	while ((rc = sqlite3_step(st->rooms)) == SQLITE_ROW) {
		key = (const char *)sqlite3_column_text(st->rooms, 0);
		name = (const char *)sqlite3_column_text(st->rooms, 1);
		seq = sqlite3_column_int64(st->rooms, 2);
		cb(arg, key != NULL ? key : "", name != NULL ? name : "",
		    seq > 0 ? (uint64_t)seq : 0);
	}
	if (rc != SQLITE_DONE) {
		store_sqlerr(st->db, err, errlen, "cannot list its rooms");
		sqlite3_reset(st->rooms);
		return -1;
	}
	sqlite3_reset(st->rooms);
	return 0;
}

/* Bind the text of a row's room to parameter i of stmt. */
static void
store_bind_key(sqlite3_stmt *stmt, int i, const char *key)
{
	sqlite3_bind_text(stmt, i, key, -1, SQLITE_STATIC);
}

/* Roll back the transaction this connection is in, if it still is in
 * one (a failed COMMIT may have rolled back already: SQLITE_FULL). */
static void
store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Commit the transaction, or roll it back and say why. Returns 0 or -1. */
static int
store_commit(struct store *st, char *err, size_t errlen)
{
	if (store_exec(st, "COMMIT", err, errlen) == 0)
		return 0;
	store_rollback(st);
	return -1;
}

/* Set the connection's synchronous mode for sync_full, if it is not. */
static int
store_sync(struct store *st, int sync_full, char *err, size_t errlen)
{
	if (st->sync_full == sync_full)
		return 0;
	if (store_exec(st, sync_full ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL", err, errlen) == -1)
		return -1;
	st->sync_full = sync_full;
	return 0;
}

/*
 * Drop room key's messages up to seq upto, in one transaction of its own
 * (one DELETE); *deleted says how many went. Returns 0, or -1 with err
 * (then nothing went).
 */
int
store_trim(struct store *st, const char *key, uint64_t upto,
    uint64_t *deleted, char *err, size_t errlen)
{
	uint64_t	n;

	*deleted = 0;
	if (store_exec(st, "BEGIN IMMEDIATE", err, errlen) == -1)
		return -1;
	store_bind_key(st->trim, 1, key);
	sqlite3_bind_int64(st->trim, 2, (sqlite3_int64)upto);
	if (sqlite3_step(st->trim) != SQLITE_DONE) {
		store_sqlerr(st->db, err, errlen, "cannot trim a room");
		sqlite3_reset(st->trim);
		store_rollback(st);
		return -1;
	}
	n = (uint64_t)sqlite3_changes(st->db);
	sqlite3_reset(st->trim);
	if (store_commit(st, err, errlen) == -1)
		return -1;
	*deleted = n;
	return 0;
}

/*
 * Write n messages in one transaction, in order, and raise each room's
 * seq in the rooms table to its highest. sync_full: fsync the WAL at the
 * commit (synchronous = FULL); otherwise the commit writes the WAL without
 * fsync (NORMAL), which a crash of the process cannot undo. A row whose
 * (room, seq) is there already is left as it is, with ok = 0. Returns 0,
 * or -1 with err when the transaction failed and nothing was written.
 */
int
store_write(struct store *st, struct store_row *rows, size_t n,
    int sync_full, char *err, size_t errlen)
{
	size_t	i;

	for (i = 0; i < n; i++)
		rows[i].ok = 0;
	if (store_sync(st, sync_full, err, errlen) == -1)
		return -1;
	if (store_exec(st, "BEGIN IMMEDIATE", err, errlen) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		store_bind_key(st->insert, 1, rows[i].key);
		sqlite3_bind_text(st->insert, 2, rows[i].name, -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st->insert, 3, (sqlite3_int64)rows[i].seq);
		sqlite3_bind_int64(st->insert, 4, rows[i].time_ms);
		sqlite3_bind_blob64(st->insert, 5, rows[i].frame, rows[i].len,
		    SQLITE_STATIC);
		if (sqlite3_step(st->insert) != SQLITE_DONE) {
			store_sqlerr(st->db, err, errlen, "cannot write");
			sqlite3_reset(st->insert);
			goto fail;
		}
		rows[i].ok = sqlite3_changes(st->db) == 1;
		sqlite3_reset(st->insert);

		/* The room's seq, once per run of the room's rows (a batch
		 * holds each room's rows in seq order). */
		if (i + 1 < n && strcmp(rows[i + 1].key, rows[i].key) == 0)
			continue;
		store_bind_key(st->room_seq, 1, rows[i].key);
		sqlite3_bind_text(st->room_seq, 2, rows[i].name, -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st->room_seq, 3, (sqlite3_int64)rows[i].seq);
		if (sqlite3_step(st->room_seq) != SQLITE_DONE) {
			store_sqlerr(st->db, err, errlen, "cannot write a "
			    "room's seq");
			sqlite3_reset(st->room_seq);
			goto fail;
		}
		sqlite3_reset(st->room_seq);
	}
	if (store_commit(st, err, errlen) == 0)
		return 0;
fail:
	store_rollback(st);
	for (i = 0; i < n; i++)
		rows[i].ok = 0;
	return -1;
}

/* Free what store_read returned. */
void
store_frames_free(struct store_frame *frames, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(frames[i].bytes);
	free(frames);
}

/*
 * Read room key's messages with after < seq <= until, newest first: at
 * most limit of them, and no more than budget bytes in all (stopping at
 * the first that would pass it, and setting *cut). Returns 0 with *out
 * (free it with store_frames_free; NULL when *n is 0), or -1 with err.
 */
int
store_read(struct store *st, const char *key, uint64_t after,
    uint64_t until, size_t limit, size_t budget, struct store_frame **out,
    size_t *n, int *cut, char *err, size_t errlen)
{
	struct store_frame	*frames = NULL;
	const void		*blob;
	size_t			 count = 0, bytes = 0, len;
	int64_t			 seq;
	int			 rc;

	*out = NULL;
	*n = 0;
	*cut = 0;
	if (after >= until || limit == 0)
		return 0;
	if ((frames = calloc(limit, sizeof *frames)) == NULL) {
		store_errf(err, errlen, "out of memory");
		return -1;
	}
	store_bind_key(st->read, 1, key);
	sqlite3_bind_int64(st->read, 2, (sqlite3_int64)after);
	sqlite3_bind_int64(st->read, 3, (sqlite3_int64)until);
	sqlite3_bind_int64(st->read, 4, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st->read)) == SQLITE_ROW) {
		seq = sqlite3_column_int64(st->read, 0);
		blob = sqlite3_column_blob(st->read, 1);
		len = (size_t)sqlite3_column_bytes(st->read, 1);
		if (seq <= 0 || blob == NULL || len == 0)
			continue;	/* not a frame: the replay skips it */
		if (len > budget - bytes) {
			*cut = 1;
			break;
		}
		if ((frames[count].bytes = malloc(len)) == NULL) {
			store_errf(err, errlen, "out of memory");
			goto fail;
		}
		memcpy(frames[count].bytes, blob, len);
		frames[count].len = len;
		frames[count].seq = (uint64_t)seq;
		bytes += len;
		count++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_sqlerr(st->db, err, errlen, "cannot read");
		goto fail;
	}
	sqlite3_reset(st->read);
	if (count == 0) {
		free(frames);
		frames = NULL;
	}
	*out = frames;
	*n = count;
	return 0;

fail:
	sqlite3_reset(st->read);
	store_frames_free(frames, count);
	return -1;
}

/*
 * Delete at most chunk messages older than cutoff_ms (oldest first), in
 * one short transaction, so that a large prune never holds the database
 * for long; *deleted says how many went (chunk: call again).
 */
int
store_prune_age(struct store *st, int64_t cutoff_ms, unsigned int chunk,
    uint64_t *deleted, char *err, size_t errlen)
{
	*deleted = 0;
	sqlite3_bind_int64(st->prune, 1, cutoff_ms);
	sqlite3_bind_int64(st->prune, 2, chunk);
	if (sqlite3_step(st->prune) != SQLITE_DONE) {
		store_sqlerr(st->db, err, errlen, "cannot prune");
		sqlite3_reset(st->prune);
		return -1;
	}
	*deleted = (uint64_t)sqlite3_changes(st->db);
	sqlite3_reset(st->prune);
	return 0;
}

/* Bytes the database takes on disk: the file and its WAL. */
uint64_t
store_size(struct store *st)
{
	struct stat	sb;
	uint64_t	size = 0;

	if (stat(st->path, &sb) == 0)
		size += (uint64_t)sb.st_size;
	if (stat(st->wal_path, &sb) == 0)
		size += (uint64_t)sb.st_size;
	return size;
}
