/*
 * test_history_store.c - the history plugin's SQLite layer
 * (plugins/history/store.c) against databases in a temporary directory:
 * the schema and its checks, the migration of a version 1 file, writes,
 * reads, trimming, pruning, the room listing numbering starts from, and
 * checkpoints kept out of the writes.
 */
#include "config.h"

#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../plugins/history/store.h"

/* The temporary directory of one test and a database path in it. */
struct fixture {
	char	dir[64];
	char	path[128];
	char	err[512];
};

/* Make a fresh directory for a test. */
static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return -1;
	strcpy(fx->dir, "/tmp/achstore-XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof fx->path, "%s/h.db", fx->dir);
	*state = fx;
	return 0;
}

/* Remove the directory and what the test left in it. */
static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	char		 p[160];
	static const char *const names[] = { "h.db", "h.db-wal", "h.db-shm",
	    "h.db-journal" };
	size_t		 i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", fx->dir, names[i]);
		unlink(p);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* One integer a SQL statement returns, through a connection of its own. */
static long long
sql_int(const char *path, const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	long long	 v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Run SQL through a connection of its own. */
static void
sql_exec(const char *path, const char *sql)
{
	sqlite3	*db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* A frame stand-in: the bytes "ROOM:SEQ" (store.c does not parse them). */
static void
fake_frame(char *buf, size_t len, const char *room, uint64_t seq)
{
	snprintf(buf, len, "%s:%llu", room, (unsigned long long)seq);
}

/* Write messages first..last of a room in one transaction, then drop
 * what is more than max_messages below last (0: nothing). */
static void
write_room(struct store *st, const char *key, const char *name,
    uint64_t first, uint64_t last, int64_t time_ms, uint64_t max_messages)
{
	struct store_row	*rows;
	char			(*bufs)[80];
	size_t			 n = (size_t)(last - first + 1), i;
	uint64_t		 deleted;
	char			 err[256];

	rows = calloc(n, sizeof *rows);
	bufs = calloc(n, sizeof *bufs);
	assert_non_null(rows);
	assert_non_null(bufs);
	for (i = 0; i < n; i++) {
		fake_frame(bufs[i], sizeof bufs[i], key, first + i);
		rows[i].key = key;
		rows[i].name = name;
		rows[i].seq = first + i;
		rows[i].time_ms = time_ms;
		rows[i].frame = (const uint8_t *)bufs[i];
		rows[i].len = strlen(bufs[i]);
	}
	assert_int_equal(store_write(st, rows, n, 0, err, sizeof err), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(rows[i].ok, 1);
	if (max_messages != 0 && last > max_messages) {
		assert_int_equal(store_trim(st, key, last - max_messages,
		    &deleted, err, sizeof err), 0);
		assert_true(deleted <= last - max_messages);
	}
	free(rows);
	free(bufs);
}

/* A new file gets the schema, its version and WAL mode. */
static void
test_open_creates(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st;

	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(sql_int(fx->path, "PRAGMA user_version"),
	    STORE_SCHEMA_VERSION);
	assert_int_equal(sql_int(fx->path, "PRAGMA application_id"),
	    STORE_APPLICATION_ID);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM "
	    "sqlite_master WHERE name IN ('messages', 'messages_room_seq', "
	    "'messages_time', 'rooms')"), 4);
	store_close(st);
	/* Opening again migrates nothing and keeps it. */
	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	store_close(st);
	assert_int_equal(sql_int(fx->path, "PRAGMA user_version"),
	    STORE_SCHEMA_VERSION);
}

/* An empty file (as `touch` leaves it) is a new database. */
static void
test_open_empty_file(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st;
	FILE		*f = fopen(fx->path, "w");

	assert_non_null(f);
	fclose(f);
	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	store_close(st);
}

/* Files that are not ours, or not usable, are refused with a reason. */
static void
test_open_refused(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st = NULL;
	char		 junk[4096], missing[160];
	FILE		*f;
	size_t		 i;

	snprintf(missing, sizeof missing, "%s/no/such/dir/h.db", fx->dir);
	assert_int_equal(store_open(missing, 100, &st, fx->err,
	    sizeof fx->err), -1);
	assert_null(st);
	assert_non_null(strstr(fx->err, "unable to open"));

	for (i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 7 + 3);
	assert_non_null(f = fopen(fx->path, "w"));
	assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
	fclose(f);
	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "file is not a database"));
	unlink(fx->path);

	sql_exec(fx->path, "CREATE TABLE accounts (id INTEGER)");
	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "not an asyncchat history database"));
	unlink(fx->path);

	sql_exec(fx->path, "PRAGMA application_id = 1234");
	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "application_id 0x000004d2"));
	unlink(fx->path);

	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	store_close(st);
	sql_exec(fx->path, "PRAGMA user_version = 3");
	assert_int_equal(STORE_SCHEMA_VERSION, 2);
	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "schema version 3 is newer"));
}

/* Reads: newest first, bounded by after, until, limit and budget. */
static void
test_write_read(void **state)
{
	struct fixture		*fx = *state;
	struct store		*st;
	struct store_frame	*fr;
	size_t			 n;
	int			 cut;

	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	write_room(st, "dev", "Dev", 1, 10, 1000, 0);
	write_room(st, "ops", "ops", 1, 3, 1000, 0);

	assert_int_equal(store_read(st, "dev", 0, 10, 4, 1 << 20, &fr, &n,
	    &cut, fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 4);
	assert_int_equal(cut, 0);
	assert_int_equal(fr[0].seq, 10);
	assert_int_equal(fr[3].seq, 7);
	assert_int_equal(fr[0].len, strlen("dev:10"));
	assert_memory_equal(fr[0].bytes, "dev:10", fr[0].len);
	store_frames_free(fr, n);

	assert_int_equal(store_read(st, "dev", 3, 7, 100, 1 << 20, &fr, &n,
	    &cut, fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 4);		/* 7, 6, 5, 4 */
	assert_int_equal(fr[0].seq, 7);
	assert_int_equal(fr[3].seq, 4);
	store_frames_free(fr, n);

	/* A budget of 13 bytes: "dev:10" and "dev:9" (6 + 5), not "dev:8". */
	assert_int_equal(store_read(st, "dev", 0, 10, 100, 13, &fr, &n, &cut,
	    fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cut, 1);
	store_frames_free(fr, n);

	assert_int_equal(store_read(st, "dev", 10, 10, 100, 1 << 20, &fr, &n,
	    &cut, fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 0);
	assert_null(fr);
	assert_int_equal(store_read(st, "nope", 0, 10, 100, 1 << 20, &fr, &n,
	    &cut, fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 0);
	store_close(st);
}

/* A (room, seq) written twice keeps the first; the second is ok = 0. */
static void
test_write_duplicate(void **state)
{
	struct fixture		*fx = *state;
	struct store		*st;
	struct store_row	 rows[2];
	struct store_frame	*fr;
	size_t			 n;
	int			 cut;

	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	write_room(st, "r", "r", 1, 1, 0, 0);
	memset(rows, 0, sizeof rows);
	rows[0].key = rows[1].key = "r";
	rows[0].name = rows[1].name = "r";
	rows[0].seq = 1;
	rows[1].seq = 2;
	rows[0].frame = rows[1].frame = (const uint8_t *)"other";
	rows[0].len = rows[1].len = 5;
	assert_int_equal(store_write(st, rows, 2, 1, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(rows[0].ok, 0);
	assert_int_equal(rows[1].ok, 1);
	assert_int_equal(store_read(st, "r", 0, 1, 10, 1 << 20, &fr, &n, &cut,
	    fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(fr[0].bytes, "r:1", 3);
	store_frames_free(fr, n);
	store_close(st);
}

/* Trims keep each room's newest messages only, room by room. */
static void
test_trim(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st;
	uint64_t	 deleted;

	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	write_room(st, "a", "a", 1, 30, 0, 10);
	write_room(st, "b", "b", 1, 4, 0, 10);
	write_room(st, "a", "a", 31, 32, 0, 10);
	/* A trim counts what it dropped, and one to where the room was
	 * trimmed already drops nothing. */
	assert_int_equal(store_trim(st, "a", 22, &deleted, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(store_trim(st, "b", 2, &deleted, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(deleted, 2);
	store_close(st);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM messages "
	    "WHERE room = 'b'"), 2);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM messages "
	    "WHERE room = 'a'"), 10);
	assert_int_equal(sql_int(fx->path, "SELECT min(seq) FROM messages "
	    "WHERE room = 'a'"), 23);
}

/* Rooms listed with the name they were first written with and their
 * highest seq. */
struct rooms_seen {
	int		n;
	char		key[4][80];
	char		name[4][80];
	uint64_t	seq[4];
};

/* Note one room store_rooms found. */
static void
rooms_cb(void *arg, const char *key, const char *name, uint64_t seq)
{
	struct rooms_seen	*rs = arg;

	assert_true(rs->n < 4);
	snprintf(rs->key[rs->n], sizeof rs->key[0], "%s", key);
	snprintf(rs->name[rs->n], sizeof rs->name[0], "%s", name);
	rs->seq[rs->n] = seq;
	rs->n++;
}

/* Every room, in key order, once. */
static void
test_rooms(void **state)
{
	struct fixture		*fx = *state;
	struct store		*st;
	struct rooms_seen	 rs;

	memset(&rs, 0, sizeof rs);
	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(store_rooms(st, rooms_cb, &rs, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(rs.n, 0);
	write_room(st, "zeta", "Zeta", 5, 9, 0, 0);
	write_room(st, "alpha", "ALPHA", 1, 1, 0, 0);
	write_room(st, "alpha", "alpha", 2, 3, 0, 0);
	assert_int_equal(store_rooms(st, rooms_cb, &rs, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.key[0], "alpha");
	assert_string_equal(rs.name[0], "ALPHA");
	assert_int_equal(rs.seq[0], 3);
	assert_string_equal(rs.key[1], "zeta");
	assert_string_equal(rs.name[1], "Zeta");
	assert_int_equal(rs.seq[1], 9);
	store_close(st);
}

/* Neither pruning nor max_messages lowers a room's seq, nor forgets a
 * room whose every message has gone: its numbering survives a reopen. */
static void
test_rooms_outlive_messages(void **state)
{
	struct fixture		*fx = *state;
	struct store		*st;
	struct rooms_seen	 rs;
	uint64_t		 deleted;

	memset(&rs, 0, sizeof rs);
	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	write_room(st, "gone", "Gone", 1, 5, 1000, 0);
	write_room(st, "kept", "kept", 1, 3, 9000, 2);
	write_room(st, "gone", "gone", 6, 7, 1000, 0);
	assert_int_equal(store_prune_age(st, 2000, 100, &deleted, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(deleted, 7);
	store_close(st);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM messages "
	    "WHERE room = 'gone'"), 0);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM messages "
	    "WHERE room = 'kept'"), 2);

	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(store_rooms(st, rooms_cb, &rs, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.key[0], "gone");
	assert_string_equal(rs.name[0], "Gone");
	assert_int_equal(rs.seq[0], 7);
	assert_string_equal(rs.key[1], "kept");
	assert_int_equal(rs.seq[1], 3);
	store_close(st);
}

/*
 * A file of schema version 1 (tests/data/history-v1.sql, written by the
 * plugin before the rooms table existed) is migrated: the rooms table is
 * filled from its messages, which are all kept.
 */
static void
test_migrate_v1(void **state)
{
	struct fixture		*fx = *state;
	struct store		*st;
	struct store_frame	*fr;
	struct rooms_seen	 rs;
	const char		*top = getenv("AC_TOP_SRCDIR");
	char			 path[512], *sql;
	FILE			*f;
	long			 len;
	sqlite3			*db;
	size_t			 n;
	int			 cut;

	snprintf(path, sizeof path, "%s/tests/data/history-v1.sql",
	    top != NULL ? top : ".");
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("%s: cannot open (is AC_TOP_SRCDIR set?)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	assert_true((len = ftell(f)) > 0);
	rewind(f);
	assert_non_null(sql = calloc(1, (size_t)len + 1));
	assert_int_equal(fread(sql, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(sql);
	assert_int_equal(sql_int(fx->path, "PRAGMA user_version"), 1);

	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(sql_int(fx->path, "PRAGMA user_version"), 2);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(store_rooms(st, rooms_cb, &rs, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.key[0], "dev");
	assert_string_equal(rs.name[0], "Dev");
	assert_int_equal(rs.seq[0], 7);
	assert_string_equal(rs.key[1], "old");
	assert_string_equal(rs.name[1], "old");
	assert_int_equal(rs.seq[1], 4);
	assert_int_equal(store_read(st, "dev", 0, 7, 10, 1 << 20, &fr, &n,
	    &cut, fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 7);
	store_frames_free(fr, n);
	/* Writes go on from there, in both tables. */
	write_room(st, "dev", "Dev", 8, 8, 0, 0);
	store_close(st);
	assert_int_equal(sql_int(fx->path, "SELECT seq FROM rooms "
	    "WHERE room = 'dev'"), 8);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM messages"),
	    12);
}

/* Pruning by age deletes the old messages, a chunk at a time. */
static void
test_prune_age(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st;
	uint64_t	 deleted;

	assert_int_equal(store_open(fx->path, 100, &st, fx->err,
	    sizeof fx->err), 0);
	write_room(st, "a", "a", 1, 25, 1000, 0);
	write_room(st, "a", "a", 26, 30, 5000, 0);
	write_room(st, "b", "b", 1, 5, 1000, 0);
	assert_int_equal(store_prune_age(st, 2000, 20, &deleted, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(deleted, 20);
	assert_int_equal(store_prune_age(st, 2000, 20, &deleted, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(deleted, 10);
	assert_int_equal(store_prune_age(st, 2000, 20, &deleted, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(deleted, 0);
	assert_true(store_size(st) > 0);
	store_close(st);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM messages"),
	    5);
	assert_int_equal(sql_int(fx->path, "SELECT min(seq) FROM messages"),
	    26);
}

/* A write that fails (the file locked by another connection) writes
 * nothing and says why; the next one works. */
static void
test_write_locked(void **state)
{
	struct fixture		*fx = *state;
	struct store		*st;
	struct store_row	 row;
	sqlite3			*other;

	assert_int_equal(store_open(fx->path, 50, &st, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(sqlite3_open(fx->path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL,
	    NULL), SQLITE_OK);
	memset(&row, 0, sizeof row);
	row.key = row.name = "r";
	row.seq = 1;
	row.frame = (const uint8_t *)"x";
	row.len = 1;
	assert_int_equal(store_write(st, &row, 1, 0, fx->err,
	    sizeof fx->err), -1);
	assert_int_equal(row.ok, 0);
	assert_non_null(strstr(fx->err, "locked"));
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(store_write(st, &row, 1, 0, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(row.ok, 1);
	store_close(st);
}

/* Write n messages of room "big" from seq first, size bytes each, in
 * transactions of 32. */
static void
write_big(struct store *st, uint64_t first, size_t n, size_t size)
{
	struct store_row	 rows[32];
	uint8_t			*frame;
	size_t			 i, k;
	char			 err[256];

	frame = malloc(size);
	assert_non_null(frame);
	memset(frame, 'x', size);
	for (i = 0; i < n; i += k) {
		for (k = 0; k < 32 && i + k < n; k++) {
			memset(&rows[k], 0, sizeof rows[k]);
			rows[k].key = rows[k].name = "big";
			rows[k].seq = first + i + k;
			rows[k].frame = frame;
			rows[k].len = size;
		}
		assert_int_equal(store_write(st, rows, k, 0, err,
		    sizeof err), 0);
	}
	free(frame);
}

/* Bytes of a file. */
static long long
file_size(const char *path)
{
	struct stat	sb;

	assert_int_equal(stat(path, &sb), 0);
	return (long long)sb.st_size;
}

/*
 * A commit never checkpoints: the WAL grows past SQLite's automatic
 * threshold (1000 pages) with the file untouched, until a checkpoint on
 * a connection of its own copies it all; the next write then starts the
 * WAL over.
 */
static void
test_checkpoint_apart(void **state)
{
	struct fixture		*fx = *state;
	struct store		*st, *ck, *rd;
	struct store_frame	*out;
	long long		 before;
	size_t			 n;
	int			 log, done, cut;

	assert_int_equal(store_open(fx->path, 50, &st, fx->err,
	    sizeof fx->err), 0);
	write_big(st, 1, 1, 100);
	assert_int_equal(store_open_checkpointer(fx->path, 50, &ck, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(store_checkpoint(ck, &log, &done, fx->err,
	    sizeof fx->err), 0);
	before = file_size(fx->path);

	/* About 2,000 pages of 4 KiB: twice the automatic threshold. */
	write_big(st, 2, 2000, 3000);
	assert_true(store_wal_frames(st) > 1500);
	assert_int_equal(file_size(fx->path), before);

	assert_int_equal(store_checkpoint(ck, &log, &done, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(log, store_wal_frames(st));
	assert_int_equal(done, log);
	assert_true(file_size(fx->path) > before + 2000LL * 3000);
	write_big(st, 2002, 1, 100);
	assert_true(store_wal_frames(st) < 50);

	/* Every message is there, read from the file. */
	assert_int_equal(store_open_reader(fx->path, 50, &rd, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(store_read(rd, "big", 0, 10000, 5000, 1u << 30,
	    &out, &n, &cut, fx->err, sizeof fx->err), 0);
	assert_int_equal(n, 2002);
	assert_int_equal(out[0].seq, 2002);
	assert_int_equal(out[n - 1].seq, 1);
	store_frames_free(out, n);
	store_close(rd);
	store_close(ck);
	store_close(st);
}

/*
 * A reader holding an old snapshot keeps a checkpoint from copying what
 * came after it; once it is gone, the next checkpoint copies everything
 * and the next write starts the WAL over.
 */
static void
test_checkpoint_reader(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st, *ck;
	sqlite3		*rd;
	sqlite3_stmt	*q;
	int		 log, done;

	assert_int_equal(store_open(fx->path, 50, &st, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(store_open_checkpointer(fx->path, 50, &ck, fx->err,
	    sizeof fx->err), 0);
	write_big(st, 1, 100, 3000);

	/* A read transaction, open on the snapshot of 100 messages. */
	assert_int_equal(sqlite3_open(fx->path, &rd), SQLITE_OK);
	assert_int_equal(sqlite3_exec(rd, "BEGIN", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(rd, "SELECT count(*) FROM "
	    "messages", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 100);
	sqlite3_finalize(q);

	write_big(st, 101, 100, 3000);
	assert_int_equal(store_checkpoint(ck, &log, &done, fx->err,
	    sizeof fx->err), 0);
	assert_true(done > 0);
	assert_true(done < log);
	write_big(st, 201, 1, 100);
	assert_true(store_wal_frames(st) > log);

	assert_int_equal(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(rd);
	assert_int_equal(store_checkpoint(ck, &log, &done, fx->err,
	    sizeof fx->err), 0);
	assert_int_equal(done, log);
	write_big(st, 202, 1, 100);
	assert_true(store_wal_frames(st) < 50);
	assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM messages"),
	    202);
	store_close(ck);
	store_close(st);
}

/* Run the store cases. */
int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_empty_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_read, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_duplicate, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_trim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rooms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rooms_outlive_messages,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_prune_age, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_locked, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_apart, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_reader, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("history_store", tests, NULL,
	    NULL);
}
