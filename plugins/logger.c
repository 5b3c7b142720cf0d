/*
 * logger.c - append one JSON object per line for every message to a file:
 *
 *	{"time":"2026-11-28T19:20:01.123Z","session_id":"...",
 *	 "peer":"127.0.0.1:40312","transport":"tcp","type":"message",
 *	 "content_type":"text/plain; charset=utf-8","size":5,
 *	 "attrs":{"nick":"alice"},"content":"hello"}
 *
 * (on one line). Content that is not valid UTF-8 is written as
 * "content_base64" instead of "content". "attrs" holds the sender's
 * session attributes (set by plugins before the logger in the chain, or
 * earlier), and is absent when it has none.
 *
 * Options ([plugin.logger]): path (required), fsync = no|yes (default no).
 *
 * The file is opened in init and closed in fini. The server calls fini and
 * then init for every plugin on SIGHUP, so `mv` plus SIGHUP (logrotate)
 * makes the next line go to a new file at `path`.
 *
 * Blocking: lines are written with write(2) on the event-loop thread. For a
 * regular file that means a copy into the page cache, which is short enough
 * not to matter. Do not point `path` at a FIFO or a slow network file
 * system. fsync = yes waits for the disk, which can take milliseconds, so
 * that runs on the server's worker pool: one fsync job at a time, each
 * covering every line written before it started; lines written while one
 * runs get the next. Only a server without a pool, or whose queue is full,
 * makes the loop wait for the fsync, as it always did before.
 *
 * A failing write (ENOSPC, EIO, EFBIG, ...) never stops delivery: the line
 * is counted as lost, one warning is logged at the start of each failure
 * streak and one note when writing works again. A line cut short by a
 * failure is terminated before the next line, so every later line still
 * parses.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <asyncchat/frame.h>
#include <asyncchat/plugin.h>
#include <asyncchat/utf8.h>

/* json-c spells no slash escaping this way since 0.13. */
#define LOGGER_JSON_FLAGS \
	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* The plugin's open file and its failure bookkeeping. */
struct logger_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;

	char				*path;
	int				 fd;
	int				 do_fsync;

	int				 failing;	/* in a failure streak */
	unsigned long long		 lost;		/* lines lost in it */
	int				 torn;		/* a line was cut short */

	struct logger_sync		*sync;		/* fsync = yes */
};

/* The one fsync job, reused: the worker reads fd and writes error. */
struct logger_sync {
	int	fd;
	int	error;
	int	busy;		/* submitted, not done */
	int	again;		/* lines written since it began */
	int	failing;	/* fsync failed last time */
};

static int	logger_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	logger_fini(void *);
static int	logger_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);
static char	*logger_base64(const uint8_t *, size_t);
static void	logger_time(char *, size_t);
static int	logger_add_string(struct json_object *, const char *,
		    const char *);
static int	logger_add_attr(const char *, const char *, const char *,
		    void *);
static struct json_object *logger_record(struct logger_state *,
		    struct ac_session *, const struct ac_message *);
static int	logger_write(struct logger_state *, const char *, size_t);
static void	logger_failed(struct logger_state *, int);
static void	logger_succeeded(struct logger_state *);
static void	logger_sync(struct logger_state *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "logger",
	.version = PACKAGE_VERSION,
	.description = "appends one JSON line per message to a file",
	.init = logger_init,
	.fini = logger_fini,
	.process_message = logger_process_message,
};


/* Read the options, open the file for appending and set up the state. */
static int
logger_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct logger_state	*ls;
	const char		*path = NULL;
	int			 path_line = 0, fsync_line = 0, do_fsync = 0;
	size_t			 i;

	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "path") == 0) {
			if (path_line != 0) {
				host->log(p, AC_LOG_ERROR, "line %d: path given "
				    "twice (first on line %d)", opts[i].line,
				    path_line);
				return -1;
			}
			if (*opts[i].value == '\0') {
				host->log(p, AC_LOG_ERROR, "line %d: path is "
				    "empty", opts[i].line);
				return -1;
			}
			path = opts[i].value;
			path_line = opts[i].line;
		} else if (strcmp(opts[i].key, "fsync") == 0) {
			if (fsync_line != 0) {
				host->log(p, AC_LOG_ERROR, "line %d: fsync "
				    "given twice (first on line %d)",
				    opts[i].line, fsync_line);
				return -1;
			}
			if (ac_option_bool(opts[i].value, &do_fsync) != 0) {
				host->log(p, AC_LOG_ERROR, "line %d: fsync: bad "
				    "value '%s' (expected yes or no)",
				    opts[i].line, opts[i].value);
				return -1;
			}
			fsync_line = opts[i].line;
		} else {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: path, fsync)", opts[i].line,
			    opts[i].key);
			return -1;
		}
	}
	if (path == NULL) {
		host->log(p, AC_LOG_ERROR, "missing required option 'path' "
		    "(the file to append to)");
		return -1;
	}

	if ((ls = calloc(1, sizeof *ls)) == NULL ||
	    (ls->path = strdup(path)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		free(ls);
		return -1;
	}
	ls->p = p;
	ls->host = host;
	ls->do_fsync = do_fsync;
	if (do_fsync && (ls->sync = calloc(1, sizeof *ls->sync)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		free(ls->path);
		free(ls);
		return -1;
	}

	/* Never truncate: an existing log is appended to, as after a crash. */
	ls->fd = open(path, O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NOCTTY,
	    0640);
	if (ls->fd == -1) {
		host->log(p, AC_LOG_ERROR, "line %d: cannot open %s: %s",
		    path_line, path, strerror(errno));
		free(ls->sync);
		free(ls->path);
		free(ls);
		return -1;
	}
	if (ls->sync != NULL)
		ls->sync->fd = ls->fd;
	*state = ls;
	return 0;
}

/* Close the file and free the state (every fsync job has completed by
 * now: the server finishes a plugin only after its last job). */
static void
logger_fini(void *state)
{
	struct logger_state	*ls = state;

	free(ls->sync);

	if (ls->failing) {
		ls->host->log(ls->p, AC_LOG_WARNING, "closing %s after %llu "
		    "lost lines", ls->path, ls->lost);
	}
	if (close(ls->fd) == -1) {
		ls->host->log(ls->p, AC_LOG_WARNING, "close %s: %s", ls->path,
		    strerror(errno));
	}
	free(ls->path);
	free(ls);
}

/* Encode len bytes as padded base64 (RFC 4648) into a new string, or NULL. */
static char *
logger_base64(const uint8_t *in, size_t len)
{
	static const char	 tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char			*out, *o;
	size_t			 i;
	uint32_t		 v;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
		return NULL;
	if ((out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 0x3f];
		*o++ = tab[(v >> 6) & 0x3f];
		*o++ = tab[v & 0x3f];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 0x3f];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 0x3f];
		*o++ = tab[(v >> 6) & 0x3f];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* Write the current UTC time as RFC 3339 with milliseconds into buf. */
static void
logger_time(char *buf, size_t size)
{
	struct timespec	ts;
	struct tm	tm;
	size_t		n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ldZ", (long)(ts.tv_nsec / 1000000));
}

/* Add a string member, or null when s is NULL; 0 or -1 on failure. */
static int
logger_add_string(struct json_object *o, const char *key, const char *s)
{
	struct json_object	*v = NULL;

	if (s != NULL && (v = json_object_new_string(s)) == NULL)
		return -1;
	/*
	 * json_object_object_add takes over v's reference when it succeeds.
	 * It fails only when out of memory; whether v was then released
	 * differs between json-c versions, so a lost v is the safe choice.
	 */
	return json_object_object_add(o, key, v) == 0 ? 0 : -1;
}

/* Add one session attribute to the "attrs" object; non-zero stops. */
static int
logger_add_attr(const char *key, const char *value, const char *owner,
    void *arg)
{
	return logger_add_string(arg, key, value) != 0;
}

/* Build the JSON record of one message, or NULL when out of memory. */
static struct json_object *
logger_record(struct logger_state *ls, struct ac_session *from,
    const struct ac_message *msg)
{
	const struct ac_host_api	*host = ls->host;
	struct json_object		*o, *v;
	char				 now[64], *b64;
	const char			*type;

	if ((o = json_object_new_object()) == NULL)
		return NULL;
	logger_time(now, sizeof now);
	type = ac_msg_type_name(msg->type);
	if (logger_add_string(o, "time", now) != 0 ||
	    logger_add_string(o, "session_id", host->session_id(from)) != 0 ||
	    logger_add_string(o, "peer", host->session_peer(from)) != 0 ||
	    logger_add_string(o, "transport",
	    host->session_transport(from)) != 0 ||
	    logger_add_string(o, "type", type) != 0 ||
	    logger_add_string(o, "content_type", msg->content_type) != 0)
		goto fail;
	if ((v = json_object_new_int64((int64_t)msg->content_len)) == NULL ||
	    json_object_object_add(o, "size", v) != 0)
		goto fail;
	if (AC_HOST_HAS(host, session_attr_foreach)) {
		if ((v = json_object_new_object()) == NULL)
			goto fail;
		if (host->session_attr_foreach(from, logger_add_attr, v) != 0) {
			json_object_put(v);
			goto fail;
		}
		if (json_object_object_length(v) == 0)
			json_object_put(v);
		else if (json_object_object_add(o, "attrs", v) != 0)
			goto fail;
	}

	/*
	 * json-c measures strings with int. The server's content limit keeps
	 * us far below that, but a huge limit must not become a bad record.
	 */
	if (msg->content_len > INT_MAX / 2) {
		if ((v = json_object_new_boolean(1)) == NULL ||
		    json_object_object_add(o, "content_omitted", v) != 0)
			goto fail;
	} else if (ac_utf8_valid(msg->content, msg->content_len)) {
		v = json_object_new_string_len((const char *)msg->content,
		    (int)msg->content_len);
		if (v == NULL || json_object_object_add(o, "content", v) != 0)
			goto fail;
	} else {
		if ((b64 = logger_base64(msg->content, msg->content_len)) ==
		    NULL)
			goto fail;
		v = json_object_new_string(b64);
		free(b64);
		if (v == NULL ||
		    json_object_object_add(o, "content_base64", v) != 0)
			goto fail;
	}
	return o;

fail:
	json_object_put(o);
	return NULL;
}

/*
 * Append one line (len bytes at line, then a newline) with as few system
 * calls as the kernel allows. Returns 0, or an errno value.
 */
static int
logger_write(struct logger_state *ls, const char *line, size_t len)
{
	struct iovec	 iov[3], *v = iov;
	int		 niov = 0, wrote = 0;
	ssize_t		 n;

	/* Finish a line an earlier failure cut short, so this one parses. */
	if (ls->torn) {
		iov[niov].iov_base = (void *)"\n";
		iov[niov++].iov_len = 1;
	}
	iov[niov].iov_base = (void *)line;
	iov[niov++].iov_len = len;
	iov[niov].iov_base = (void *)"\n";
	iov[niov++].iov_len = 1;

	while (niov > 0) {
		n = writev(ls->fd, v, niov);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (wrote)
				ls->torn = 1;
			return errno;
		}
		if (n == 0) {
			if (wrote)
				ls->torn = 1;
			return EIO;
		}
		if (ls->torn && v == iov && n >= 1)
			ls->torn = 0;	/* the old line is finished now */
		wrote = 1;

		/* Skip what was written; a short write goes on from there. */
		while (niov > 0 && (size_t)n >= v->iov_len) {
			n -= v->iov_len;
			v++;
			niov--;
		}
		if (niov > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
		}
	}
	return 0;
}

/* Worker thread: flush the file; only the job's fd and error are used. */
static void
logger_sync_work(void *arg)
{
	struct logger_sync	*ys = arg;

	ys->error = fsync(ys->fd) == -1 ? errno : 0;
}

/* Loop thread: report the fsync, and start the next if lines came since. */
static void
logger_sync_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct logger_state	*ls = state;
	struct logger_sync	*ys = arg;

	ys->busy = 0;
	if (status == AC_JOB_DONE && ys->error != 0 && !ys->failing) {
		ys->failing = 1;
		ls->host->log(ls->p, AC_LOG_WARNING, "fsync %s failed: %s; "
		    "lines may not be on disk", ls->path, strerror(ys->error));
	} else if (status == AC_JOB_DONE && ys->error == 0 && ys->failing) {
		ys->failing = 0;
		ls->host->log(ls->p, AC_LOG_INFO, "fsync %s works again",
		    ls->path);
	}
	if (ys->again) {
		ys->again = 0;
		logger_sync(ls);
	}
}

/*
 * A line was written: get it to the disk. One fsync job at a time (it
 * covers every line written before it starts); a line written while one
 * is queued or running asks for one more when it completes. No pool (an
 * older server) or a full queue: fsync here, as the logger always did.
 */
static void
logger_sync(struct logger_state *ls)
{
	struct logger_sync	*ys = ls->sync;

	if (ys == NULL)
		return;
	if (ys->busy) {
		ys->again = 1;
		return;
	}
	if (AC_HOST_HAS(ls->host, job_submit) && ls->host->job_submit(ls->p,
	    NULL, AC_JOB_NO_CANCEL, logger_sync_work, logger_sync_done,
	    ys) == 0) {
		ys->busy = 1;
		return;
	}
	ys->error = fsync(ys->fd) == -1 ? errno : 0;
	ys->again = 0;
	if (ys->error != 0)
		logger_failed(ls, ys->error);
}

/* Count a lost line; warn only at the start of a failure streak. */
static void
logger_failed(struct logger_state *ls, int error)
{
	if (!ls->failing) {
		ls->failing = 1;
		ls->lost = 0;
		ls->host->log(ls->p, AC_LOG_WARNING, "write to %s failed: %s; "
		    "messages are not being logged", ls->path,
		    strerror(error));
	}
	ls->lost++;
}

/* End a failure streak, saying how many lines it cost. */
static void
logger_succeeded(struct logger_state *ls)
{
	if (!ls->failing)
		return;
	ls->failing = 0;
	ls->host->log(ls->p, AC_LOG_INFO, "write to %s resumed after %llu "
	    "lost lines", ls->path, ls->lost);
	ls->lost = 0;
}

/* Log one message; whatever happens to the file, the chain goes on. */
static int
logger_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct logger_state	*ls = state;
	struct json_object	*o;
	const char		*line;
	size_t			 len;
	int			 error;

	if ((o = logger_record(ls, from, msg)) == NULL) {
		logger_failed(ls, ENOMEM);
		return AC_PLUGIN_CONTINUE;
	}
	line = json_object_to_json_string_length(o, LOGGER_JSON_FLAGS, &len);
	if (line == NULL)
		error = ENOMEM;
	else
		error = logger_write(ls, line, len);
	json_object_put(o);

	if (error != 0)
		logger_failed(ls, error);
	else {
		logger_succeeded(ls);
		logger_sync(ls);
	}
	return AC_PLUGIN_CONTINUE;
}
