/*
 * log.c - the server's log.
 *
 * Each line is "2026-01-02T03:04:05.678Z LEVEL text" on stderr and in files;
 * syslog adds its own time stamp, so only the text goes there.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "xmalloc.h"
#include "log.h"

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
	LOG_TARGET_FILE,
};

static enum log_target	 log_target = LOG_TARGET_STDERR;
static enum ac_log_level log_level = AC_LOG_INFO;
static char		*log_path;
static int		 log_fd = -1;

static const char *log_names[] = { "error", "warning", "info", "debug" };

#define LOG_EVENT_REPEAT_SECONDS 5

static void	log_event_cb(int, const char *);
static void	log_event_write(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* Send everything to stderr at info level; usable before log_open(). */
void
log_init(void)
{
	log_target = LOG_TARGET_STDERR;
	log_level = AC_LOG_INFO;
}

/* Open the file at path for appending; returns the fd or -1. */
static int
log_open_file(const char *path)
{
	return (open(path, O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0640));
}

/* Switch to a target and a level; the old target is kept on failure. */
int
log_open(const char *target, enum ac_log_level level, char **cause)
{
	int	fd;

	if (strcmp(target, "stderr") == 0) {
		log_close();
		log_target = LOG_TARGET_STDERR;
	} else if (strcmp(target, "syslog") == 0) {
		log_close();
		openlog("asyncchatd", LOG_PID|LOG_NDELAY, LOG_DAEMON);
		log_target = LOG_TARGET_SYSLOG;
	} else {
		if ((fd = log_open_file(target)) == -1) {
			ac_xasprintf(cause, "log file %s: %s", target,
			    strerror(errno));
			return (-1);
		}
		log_close();
		log_fd = fd;
		log_path = ac_xstrdup(target);
		log_target = LOG_TARGET_FILE;
	}
	log_level = level;
	return (0);
}

/* Reopen a file target (after logrotate moved it); no-op for the others. */
void
log_reopen(void)
{
	int	fd;

	if (log_target != LOG_TARGET_FILE)
		return;
	if ((fd = log_open_file(log_path)) == -1) {
		log_warn("cannot reopen log file %s", log_path);
		return;
	}
	close(log_fd);
	log_fd = fd;
}

/* Close the target and go back to stderr. */
void
log_close(void)
{
	if (log_target == LOG_TARGET_SYSLOG)
		closelog();
	if (log_fd != -1)
		close(log_fd);
	log_fd = -1;
	free(log_path);
	log_path = NULL;
	log_target = LOG_TARGET_STDERR;
}

/* Non-zero if messages at this level are written. */
static int
log_enabled(enum ac_log_level level)
{
	return (level <= log_level);
}

/* Write one line at a level, with an optional prefix before the text. */
void
log_vlog(enum ac_log_level level, const char *prefix, const char *fmt,
    va_list ap)
{
	static const int priorities[] = {
		LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG
	};
	char		 text[2048], stamp[64], line[2200];
	struct timeval	 tv;
	struct tm	 tm;
	int		 n, saved_errno = errno;

	if ((unsigned)level > AC_LOG_DEBUG)
		level = AC_LOG_DEBUG;
	if (!log_enabled(level))
		return;
	vsnprintf(text, sizeof text, fmt, ap);
	if (prefix == NULL)
		prefix = "";

	if (log_target == LOG_TARGET_SYSLOG) {
		syslog(priorities[level], "%s%s", prefix, text);
		errno = saved_errno;
		return;
	}

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof line, "%s.%03ldZ %s %s%s\n", stamp,
	    (long)(tv.tv_usec / 1000), log_names[level], prefix, text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	/* One write per line, so lines from a crash or from a plugin's
	 * fork never interleave mid-line. */
	if (write(log_target == LOG_TARGET_FILE ? log_fd : STDERR_FILENO,
	    line, n) == -1) {
		/* Nowhere left to complain. */
	}
	errno = saved_errno;
}

/* Log at error level. */
void
log_error(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(AC_LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
}

/* Log at warning level. */
void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(AC_LOG_WARNING, NULL, fmt, ap);
	va_end(ap);
}

/* Log at warning level, with strerror(errno) appended. */
void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;
	int	 saved_errno = errno;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	log_warnx("%s: %s", msg != NULL ? msg : fmt, strerror(saved_errno));
	free(msg);
}

/* Log at info level. */
void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(AC_LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

/* Log at debug level. */
void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (!log_enabled(AC_LOG_DEBUG))
		return;
	va_start(ap, fmt);
	log_vlog(AC_LOG_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

/* Log an error with strerror(errno) appended and exit 1. */
void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;
	int	 saved_errno = errno;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	log_error("fatal: %s: %s", msg != NULL ? msg : fmt,
	    strerror(saved_errno));
	exit(1);
}

/* Log an error and exit 1. */
void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(AC_LOG_ERROR, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

/* Write one libevent message at the level its severity maps to. */
static void
log_event_write(int severity, const char *fmt, ...)
{
	enum ac_log_level	level;
	va_list			ap;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = AC_LOG_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = AC_LOG_INFO;
		break;
	case EVENT_LOG_WARN:
		level = AC_LOG_WARNING;
		break;
	default:
		level = AC_LOG_ERROR;
		break;
	}
	va_start(ap, fmt);
	log_vlog(level, "libevent: ", fmt, ap);
	va_end(ap);
}

/*
 * Turn a libevent message into one of ours. libevent can say the same
 * thing in a loop (an accept() failing while descriptors are exhausted
 * logged 1.9 million lines in 2 seconds), so a message repeated within
 * LOG_EVENT_REPEAT_SECONDS of the last line written for it is counted,
 * not written; the count is written with the next line.
 */
static void
log_event_cb(int severity, const char *msg)
{
	static char		last[256];
	static int		last_severity = -1;
	static time_t		last_time;
	static unsigned int	repeats;
	struct timespec		ts;
	int			same;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	same = severity == last_severity && strlen(msg) < sizeof last &&
	    strcmp(msg, last) == 0;
	if (same && ts.tv_sec - last_time < LOG_EVENT_REPEAT_SECONDS) {
		repeats++;
		return;
	}
	if (repeats != 0)
		log_event_write(last_severity, "the last message was repeated "
		    "%u times", repeats);
	log_event_write(severity, "%s", msg);
	snprintf(last, sizeof last, "%s", msg);
	last_severity = severity;
	last_time = ts.tv_sec;
	repeats = 0;
}

/* Route libevent's own warnings and errors into this log. */
void
log_libevent(void)
{
	event_set_log_callback(log_event_cb);
}
