/*
 * store.h - the SQLite side of the history plugin (store.c): one
 * connection to one database file, its schema, and the statements the
 * plugin runs. Nothing here knows the event loop or the host, so the unit
 * tests link store.c alone.
 *
 * Every function blocks on the disk. The plugin calls them on the worker
 * pool, and at start-up; one thread at a time per struct store (db.c
 * holds a lock around every call).
 */
#ifndef HISTORY_STORE_H
#define HISTORY_STORE_H

#include <stddef.h>
#include <stdint.h>

/* The schema this code writes; older files are migrated to it. */
#define STORE_SCHEMA_VERSION	2

/* PRAGMA application_id of a history database: "ACH1". */
#define STORE_APPLICATION_ID	0x41434831

/* Room keys and names are at most this many bytes (AC_HISTORY_ROOM_MAX). */
#define STORE_ROOM_MAX		64

/* Room of one message, for store_write. */
struct store_row {
	const char	*key;		/* folded: ASCII lower case */
	const char	*name;		/* as shown */
	uint64_t	 seq;
	int64_t		 time_ms;
	const uint8_t	*frame;
	size_t		 len;
	int		 ok;	/* set: 1 written, 0 seq there already */
};

/* One message read back, newest first; bytes are malloc'd. */
struct store_frame {
	uint64_t	 seq;
	uint8_t		*bytes;
	size_t		 len;
};

/* A room found by store_rooms. */
typedef void (*store_room_fn)(void *arg, const char *key, const char *name,
    uint64_t last_seq);

struct store;

int	store_open(const char *path, int busy_ms, struct store **out,
	    char *err, size_t errlen);
int	store_open_reader(const char *path, int busy_ms,
	    struct store **out, char *err, size_t errlen);
int	store_open_checkpointer(const char *path, int busy_ms,
	    struct store **out, char *err, size_t errlen);
void	store_close(struct store *st);
int	store_checkpoint(struct store *st, int *log, int *done, char *err,
	    size_t errlen);
int	store_wal_frames(struct store *st);
int	store_rooms(struct store *st, store_room_fn cb, void *arg, char *err,
	    size_t errlen);
int	store_write(struct store *st, struct store_row *rows, size_t n,
	    int sync_full, char *err, size_t errlen);
int	store_trim(struct store *st, const char *key, uint64_t upto,
	    uint64_t *deleted, char *err, size_t errlen);
int	store_read(struct store *st, const char *key, uint64_t after,
	    uint64_t until, size_t limit, size_t budget,
	    struct store_frame **out, size_t *n, int *cut, char *err,
	    size_t errlen);
void	store_frames_free(struct store_frame *frames, size_t n);
int	store_prune_age(struct store *st, int64_t cutoff_ms,
	    unsigned int chunk, uint64_t *deleted, char *err, size_t errlen);
uint64_t store_size(struct store *st);

#endif /* HISTORY_STORE_H */
