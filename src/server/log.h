/*
 * log.h - the server's log: levels, RFC 3339 UTC timestamps, and one of
 * three targets (stderr, syslog or a file opened for appending).
 *
 * Nothing secret is ever passed here: callers log key file paths, never
 * key bytes.
 */
#ifndef AC_SERVER_LOG_H
#define AC_SERVER_LOG_H

#include <stdarg.h>

#include <asyncchat/plugin.h>	/* enum ac_log_level */

/* Send everything to stderr at info level; usable before log_open(). */
void	log_init(void);

/*
 * Switch to a target ("stderr", "syslog" or an absolute file path) and a
 * level. Returns 0, or -1 with *cause set (heap string) if the file cannot
 * be opened; the previous target is then kept.
 */
int	log_open(const char *target, enum ac_log_level level, char **cause);

/* Reopen a file target (after logrotate moved it); no-op for the others. */
void	log_reopen(void);

/* Close the target and go back to stderr. */
void	log_close(void);

/* Route libevent's own warnings and errors into this log. */
void	log_libevent(void);

void	log_vlog(enum ac_log_level level, const char *prefix, const char *fmt,
	    va_list ap) __attribute__((format(printf, 3, 0)));
void	log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif /* AC_SERVER_LOG_H */
