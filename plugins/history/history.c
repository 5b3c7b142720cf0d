/*
 * history.c - the history plugin: every room message chat delivers kept
 * in SQLite, replayed on join and after a reconnect (docs/CHAT.md,
 * docs/HISTORY.md). This file is the plugin itself: its options, init and
 * fini, its metrics, and the struct ac_history it publishes for chat
 * (asyncchat/history.h). history.h says where the rest is.
 *
 * Options ([plugin.history]): path, replay, max_replay, max_messages,
 * max_age, sync (asyncchat.conf(5)).
 *
 * A database that cannot be used (a directory that does not exist, a file
 * that is read-only, not a database, damaged, locked, or of a newer
 * schema) does not stop the server: init says why in one error line and
 * the instance runs without history (last_seq from memory, store() and
 * replay() refused, history_healthy 0, status() down so that chat tells
 * whoever asks for history), so chat goes on as it does with no backend
 * but for numbering. A reload (SIGHUP) tries the file again.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <asyncchat/option.h>

#include "history.h"

#ifndef AC_LOCALSTATEDIR
#define AC_LOCALSTATEDIR	"/var"
#endif
#define HISTORY_DEFAULT_PATH	AC_LOCALSTATEDIR "/lib/asyncchat/history.db"

/* Longest max_age: a hundred years. */
#define HISTORY_MAX_AGE_LIMIT	(100ull * 365 * 86400)

static int	history_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	history_fini(void *);
static void	history_collect(void *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "history",
	.version = PACKAGE_VERSION,
	.description = "room messages kept in SQLite and replayed (chat)",
	.init = history_init,
	.fini = history_fini,
	.collect = history_collect,
};

/* Bucket bounds of history_batch_messages: powers of two to 4096. */
static const double	history_batch_bounds[] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
};

/*
 * Parse a duration: a whole number of seconds, or with one suffix s, m,
 * h or d (30d). Returns 0 and *out in seconds, or -1.
 */
static int
history_parse_age(const char *value, uint64_t *out)
{
	unsigned long long	 n, unit = 1;
	char			 digits[32];
	size_t			 len = strlen(value);

	if (len == 0 || len >= sizeof digits)
		return -1;
	memcpy(digits, value, len + 1);
	switch (digits[len - 1]) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		if (digits[len - 1] < '0' || digits[len - 1] > '9')
			return -1;
		len++;		/* no suffix to cut */
		break;
	}
	digits[len - 1] = '\0';
	if (ac_option_uint(digits, 0, HISTORY_MAX_AGE_LIMIT / unit, &n) == -1)
		return -1;
	*out = n * unit;
	return 0;
}

/* Log a bad option value naming its line; always -1. */
static int
history_bad(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *o, const char *expected)
{
	host->log(p, AC_LOG_ERROR, "line %d: %s: bad value '%s' (expected %s)",
	    o->line, o->key, o->value, expected);
	return -1;
}

/* Read the [plugin.history] options into opt (defaults for the rest). */
static int
history_options(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts,
    struct history_options *opt)
{
	static const char *const keys[] = { "path", "replay", "max_replay",
	    "max_messages", "max_age", "sync" };
	int			 seen[6] = { 0 };
	const char		*path = HISTORY_DEFAULT_PATH;
	unsigned long long	 u;
	size_t			 i, k;
	int			 replay_line = 0;

	opt->replay = HISTORY_DEFAULT_REPLAY;
	opt->max_replay = HISTORY_DEFAULT_MAX_REPLAY;
	opt->max_messages = HISTORY_DEFAULT_MAX_MESSAGES;
	opt->max_age = HISTORY_DEFAULT_MAX_AGE;
	opt->sync_full = 0;

	for (i = 0; i < nopts; i++) {
		const struct ac_plugin_option	*o = &opts[i];

		for (k = 0; k < 6; k++) {
			if (strcmp(o->key, keys[k]) == 0)
				break;
		}
		if (k == 6) {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: path, replay, max_replay, "
			    "max_messages, max_age, sync)", o->line, o->key);
			return -1;
		}
		if (seen[k] != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: %s given twice "
			    "(first on line %d)", o->line, o->key, seen[k]);
			return -1;
		}
		seen[k] = o->line;
		switch (k) {
		case 0:
			if (o->value[0] != '/' ||
			    strlen(o->value) >= PATH_MAX)
				return history_bad(p, host, o, "an absolute "
				    "file path");
			path = o->value;
			break;
		case 1:
			if (ac_option_uint(o->value, 0,
			    HISTORY_MAX_REPLAY_LIMIT, &u) == -1)
				return history_bad(p, host, o, "0 to 100000");
			opt->replay = u;
			replay_line = o->line;
			break;
		case 2:
			if (ac_option_uint(o->value, 1,
			    HISTORY_MAX_REPLAY_LIMIT, &u) == -1)
				return history_bad(p, host, o, "1 to 100000");
			opt->max_replay = u;
			break;
		case 3:
			if (ac_option_uint(o->value, 0, 1000000000, &u) == -1)
				return history_bad(p, host, o, "0 (no limit) "
				    "to 1000000000");
			opt->max_messages = u;
			break;
		case 4:
			if (history_parse_age(o->value, &opt->max_age) == -1)
				return history_bad(p, host, o, "seconds, or "
				    "a number with s, m, h or d, such as 30d; "
				    "0: no limit");
			break;
		case 5:
			if (strcmp(o->value, "full") == 0)
				opt->sync_full = 1;
			else if (strcmp(o->value, "normal") == 0)
				opt->sync_full = 0;
			else
				return history_bad(p, host, o,
				    "full or normal");
			break;
		}
	}
	if (opt->replay > opt->max_replay) {
		host->log(p, AC_LOG_ERROR, "line %d: replay (%llu) is more "
		    "than max_replay (%llu)", replay_line,
		    (unsigned long long)opt->replay,
		    (unsigned long long)opt->max_replay);
		return -1;
	}
	if ((opt->path = strdup(path)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		return -1;
	}
	return 0;
}

/* Register the instance's metrics (a refused one is NULL, which the host's
 * metric functions ignore). */
static void
history_metrics(struct history *h)
{
	static const struct {
		enum ac_metric_type	 type;
		const char		*name;
		const char		*help;
	} defs[HM_COUNT] = {
		{ AC_METRIC_COUNTER, "history_messages_stored_total",
		  "Room messages written to the history database." },
		{ AC_METRIC_COUNTER, "history_store_failures_total",
		  "Room messages that could not be stored (delivered all "
		  "the same)." },
		{ AC_METRIC_HISTOGRAM, "history_batch_messages",
		  "Messages written per transaction." },
		{ AC_METRIC_HISTOGRAM, "history_write_seconds",
		  "Time of one write transaction, commit included." },
		{ AC_METRIC_COUNTER, "history_replays_total",
		  "Replays answered from the history." },
		{ AC_METRIC_COUNTER, "history_replay_failures_total",
		  "Replays that could not read the history." },
		{ AC_METRIC_COUNTER, "history_replayed_frames_total",
		  "Frames sent in replays." },
		{ AC_METRIC_COUNTER, "history_replay_skipped_total",
		  "Stored frames not replayed because they no longer "
		  "verify." },
		{ AC_METRIC_COUNTER, "history_pruned_total",
		  "Messages deleted by max_age." },
		{ AC_METRIC_GAUGE, "history_db_bytes",
		  "Size of the history database and its WAL." },
		{ AC_METRIC_GAUGE, "history_pending_messages",
		  "Messages handed to the history and not written yet." },
		{ AC_METRIC_GAUGE, "history_healthy",
		  "1 while the history database works, 0 when it cannot be "
		  "used or its last write failed." },
		{ AC_METRIC_COUNTER, "history_checkpoints_total",
		  "Checkpoints of the WAL into the database file." },
		{ AC_METRIC_COUNTER, "history_checkpoint_waits_total",
		  "Checkpoints the writes waited for (the WAL past 2000 "
		  "pages)." },
	};
	size_t	i;

	for (i = 0; i < HM_COUNT; i++) {
		if (i == HM_BATCH)
			h->m[i] = h->host->metric_new(h->p, defs[i].type,
			    defs[i].name, defs[i].help, history_batch_bounds,
			    sizeof history_batch_bounds /
			    sizeof history_batch_bounds[0]);
		else
			h->m[i] = h->host->metric_new(h->p, defs[i].type,
			    defs[i].name, defs[i].help, NULL, 0);
	}
}

/*
 * A failure of one kind (storing, reading, ...): the first of a streak is
 * logged at level with why, then at most one line a minute says how many
 * more, so a full disk under a busy chat does not flood the log.
 */
void
history_streak_fail(struct history *h, struct history_streak *sk,
    uint64_t n, enum ac_log_level level, const char *what, const char *why)
{
	time_t	now = time(NULL);

	sk->total += n;
	if (!sk->failing) {
		sk->failing = 1;
		sk->count = 0;
		sk->logged = now;
		h->host->log(h->p, level, "%s: %s", what, why);
		return;
	}
	sk->count += n;
	if (now - sk->logged >= HISTORY_LOG_INTERVAL) {
		h->host->log(h->p, level, "%s: %llu more failure%s in the last "
		    "%lld s; the last: %s", what,
		    (unsigned long long)sk->count, sk->count == 1 ? "" : "s",
		    (long long)(now - sk->logged), why);
		sk->logged = now;
		sk->count = 0;
	}
}

/* The kind of thing that failed works again: say so once. */
void
history_streak_ok(struct history *h, struct history_streak *sk,
    const char *what)
{
	if (!sk->failing)
		return;
	h->host->log(h->p, AC_LOG_INFO, "%s: working again after %llu "
	    "failure%s", what, (unsigned long long)sk->total,
	    sk->total == 1 ? "" : "s");
	memset(sk, 0, sizeof *sk);
}

/* last_seq() of the interface: the room's highest seq and kept name. */
static uint64_t
history_last_seq(void *ctx, const char *room, char *name, size_t namesize)
{
	struct room	*r;
	char		 key[HISTORY_ROOM_MAX + 1];

	if (!roomname_valid_string(room))
		return 0;
	roomname_fold(key, room);
	if ((r = room_find(key)) == NULL)
		return 0;
	if (name != NULL && namesize > 0)
		snprintf(name, namesize, "%s", r->name);
	return r->seq;
}

/*
 * durable() of the interface: chat waits for every store while the
 * database works, in both sync modes (batch.c says why).
 */
static int
history_durable(void *ctx)
{
	struct history	*h = ctx;

	return h->db != NULL;
}

/*
 * status() of the interface: down while the instance runs without its
 * database, or while its writes fail (history_healthy 0). The sentence is
 * for the people chatting: what and where is in the log.
 */
static int
history_status(void *ctx, char *why, size_t len)
{
	struct history	*h = ctx;
	const char	*down = NULL;

	if (h->db == NULL)
		down = "the server cannot use its history database";
	else if (h->store_streak.failing)
		down = "the server cannot write to its history database";
	if (down == NULL)
		return 0;
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", down);
	return -1;
}

/* store() of the interface (batch.c). */
static int
history_store(void *ctx, const struct ac_history_message *m,
    ac_history_stored_fn done, void *arg)
{
	return batch_store(ctx, m, done, arg);
}

/* replay() of the interface (replay.c). */
static int
history_replay(void *ctx, struct ac_session *s,
    const struct ac_history_query *q, ac_history_replayed_fn done,
    void *arg)
{
	return replay_start(ctx, s, q, done, arg);
}

/* Read the options, open (or share) the database, publish the interface. */
static int
history_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct history	*h;

	if ((h = calloc(1, sizeof *h)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		return -1;
	}
	h->p = p;
	h->host = host;
	if (history_options(p, host, opts, nopts, &h->opt) == -1) {
		free(h);
		return -1;
	}
	room_hold();
	history_metrics(h);

	h->db = db_get(h, h->opt.path, h->broken, sizeof h->broken);
	if (h->db == NULL) {
		host->log(p, AC_LOG_ERROR, "cannot use %s: %s: running WITHOUT "
		    "history (nothing is stored or replayed); fix it and "
		    "reload (SIGHUP)", h->opt.path, h->broken);
		host->metric_set(h->m[HM_HEALTHY], 0);
	} else {
		host->metric_set(h->m[HM_HEALTHY], 1);
		host->metric_set(h->m[HM_DB_BYTES],
		    (double)store_size(h->db->st));
	}

	h->iface.size = sizeof h->iface;
	h->iface.ctx = h;
	h->iface.last_seq = history_last_seq;
	h->iface.durable = history_durable;
	h->iface.store = history_store;
	h->iface.replay = history_replay;
	h->iface.status = history_status;
	if (host->interface_publish(p, AC_HISTORY_INTERFACE,
	    AC_HISTORY_VERSION, &h->iface) == -1 ||
	    (h->db != NULL && (retention_start(h) == -1 ||
	    batch_start(h) == -1))) {
		host->log(p, AC_LOG_ERROR, "cannot publish the %s interface "
		    "(another history backend loaded?) or start its timer",
		    AC_HISTORY_INTERFACE);
		history_fini(h);
		return -1;
	}
	*state = h;
	return 0;
}

/* Free the instance: every job of its has completed (the host finishes a
 * chain only then), so no batch or replay is left. */
static void
history_fini(void *state)
{
	struct history	*h = state;

	retention_stop(h);
	batch_stop(h);
	db_put(h->db);
	room_release();
	free(h->opt.path);
	free(h);
}

/* Before a scrape: how many messages wait for the disk. */
static void
history_collect(void *state)
{
	struct history	*h = state;

	if (h->db != NULL)
		h->host->metric_set(h->m[HM_PENDING],
		    (double)db_pending_count(h->db));
}
