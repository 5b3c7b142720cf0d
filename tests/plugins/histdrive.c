/*
 * histdrive.c - a test module that drives a history backend through its
 * interface (asyncchat/history.h) the way chat does, so that the history
 * plugin is tested on its own. Each text message is a command, answered
 * with one text line:
 *
 *	durable			"durable D"
 *	status			"status up", "status down: WHY" or
 *				"status none" (a version 1 backend)
 *	last ROOM		"last SEQ NAME"
 *	store ROOM N [size=BYTES] [age=SECONDS] [quiet]
 *	replay ROOM last N [until=U]
 *	replay ROOM since S [until=U]
 *
 * store makes N room messages as chat would (frame_new, as coming from the
 * sender, with "room", "from": "drive", "seq" = last_seq + 1, + 2, ... and
 * "time"; content "ROOM #SEQ" padded with dots to BYTES; time AGE seconds
 * ago), hands each to store() and delivers it to the sender (not with
 * quiet, for benchmarks): once its completion has run when the backend is
 * durable, at once otherwise. When every completion is in it answers
 *
 *	"stored FIRST-LAST ok=A failed=F refused=R inorder=I inside=C"
 *
 * (refused: store() returned -1; inorder 1: the completions ran in store()
 * order; inside: completions that ran from within store(), which must be
 * 0), followed by " ms=T", the time from the command to its last
 * completion. replay asks for a replay to the sender (until: default the
 * room's last seq) and answers, after the frames,
 *
 *	"replayed status=ok|failed n=N truncated=0|1 ms=T"
 *
 * or "replay refused" when replay() returned -1. A replay whose session is
 * gone when it completes is logged: "replay done session=gone n=N". Without
 * a backend every command is answered "no history".
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include <asyncchat/history.h>
#include <asyncchat/plugin.h>

#define DRIVE_TEXT	"text/plain; charset=utf-8"
#define DRIVE_MAX_N	100000
#define DRIVE_MAX_SIZE	(1024 * 1024)

/* The module's state. */
struct drive {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	const struct ac_history		*hist;
	int				 in_store;	/* in store() */
};

/* One store command, until its last completion. */
struct drive_cmd {
	struct drive	*d;
	char		 sid[64];
	uint64_t	 first, last, next;
	unsigned long	 outstanding, ok, failed, refused, inside;
	int		 inorder;
	int		 issued;	/* every store() made */
	int		 quiet;		/* deliver nothing */
	struct timespec	 start;
};

/* One message of a store command. */
struct drive_msg {
	struct drive_cmd	*cmd;
	uint64_t		 seq;
	struct ac_frame		*frame;
};

/* One replay command. */
struct drive_replay {
	struct drive	*d;
	struct timespec	 start;
};

static int	drive_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static int	drive_ready(void *);
static void	drive_fini(void *);
static int	drive_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "histdrive",
	.version = "0",
	.description = "test: drives a history backend as chat does",
	.init = drive_init,
	.ready = drive_ready,
	.fini = drive_fini,
	.process_message = drive_process_message,
};

/* Start; no options. */
static int
drive_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct drive	*d;

	if (nopts > 0) {
		host->log(p, AC_LOG_ERROR, "line %d: no options", opts[0].line);
		return -1;
	}
	if ((d = calloc(1, sizeof *d)) == NULL)
		return -1;
	d->p = p;
	d->host = host;
	*state = d;
	return 0;
}

/* Find the backend, if any. */
static int
drive_ready(void *state)
{
	struct drive	*d = state;

	d->hist = d->host->interface_get(d->p, AC_HISTORY_INTERFACE, 1,
	    NULL);
	d->host->log(d->p, AC_LOG_INFO, "backend %s",
	    d->hist != NULL ? "found" : "missing");
	return 0;
}

/* Free the state. */
static void
drive_fini(void *state)
{
	free(state);
}

/* Answer one line to a session. */
static void
drive_say(struct drive *d, struct ac_session *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answer one line to a session. */
static void
drive_say(struct drive *d, struct ac_session *s, const char *fmt, ...)
{
	char	line[512];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	d->host->send(d->p, s, AC_MSG_MESSAGE, DRIVE_TEXT, NULL, line,
	    (size_t)n);
}

/* Milliseconds since start. */
static double
drive_ms(const struct timespec *start)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* The RFC 3339 UTC form of a time in ms. */
static void
drive_time(int64_t ms, char *out, size_t len)
{
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;

	gmtime_r(&t, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* A store command is over when every store() is made and every
 * completion has run: answer it. */
static void
drive_cmd_check(struct drive_cmd *c)
{
	struct ac_session	*s;

	if (!c->issued || c->outstanding > 0)
		return;
	if ((s = c->d->host->session_find(c->d->p, c->sid)) != NULL)
		drive_say(c->d, s, "stored %llu-%llu ok=%lu failed=%lu "
		    "refused=%lu inorder=%d inside=%lu ms=%.3f",
		    (unsigned long long)c->first, (unsigned long long)c->last,
		    c->ok, c->failed, c->refused, c->inorder, c->inside,
		    drive_ms(&c->start));
	free(c);
}

/* A durable store completed: check its order, deliver its message. */
static void
drive_stored_cb(void *arg, enum ac_history_status status)
{
	struct drive_msg	*m = arg;
	struct drive_cmd	*c = m->cmd;
	struct ac_session	*s;

	if (c->d->in_store)
		c->inside++;
	if (m->seq != c->next)
		c->inorder = 0;
	c->next = m->seq + 1;
	if (status == AC_HISTORY_OK)
		c->ok++;
	else
		c->failed++;
	if (!c->quiet &&
	    (s = c->d->host->session_find(c->d->p, c->sid)) != NULL)
		c->d->host->relay(c->d->p, m->frame, s);
	c->d->host->frame_unref(c->d->p, m->frame);
	free(m);
	c->outstanding--;
	drive_cmd_check(c);
}

/* store ROOM N [size=BYTES] [age=SECONDS] */
static void
drive_store(struct drive *d, struct ac_session *s, const char *room,
    unsigned long n, unsigned long size, unsigned long age, int quiet)
{
	const struct ac_history		*h = d->hist;
	struct ac_history_message	 hm;
	struct drive_cmd		*c;
	struct drive_msg		*m;
	struct json_object		*extra;
	struct timespec			 now;
	struct ac_frame			*f;
	static char			 content[DRIVE_MAX_SIZE];
	char				 when[64];
	uint64_t			 seq;
	int64_t				 ms;
	int				 durable, len, rc;
	unsigned long			 i;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return;
	c->d = d;
	snprintf(c->sid, sizeof c->sid, "%s", d->host->session_id(s));
	c->inorder = 1;
	c->quiet = quiet;
	clock_gettime(CLOCK_MONOTONIC, &c->start);
	durable = h->durable(h->ctx);
	for (i = 0; i < n; i++) {
		seq = h->last_seq(h->ctx, room, NULL, 0) + 1;
		if (i == 0)
			c->first = c->next = seq;
		c->last = seq;
		clock_gettime(CLOCK_REALTIME, &now);
		ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 -
		    (int64_t)age * 1000;
		drive_time(ms, when, sizeof when);
		len = snprintf(content, sizeof content, "%s #%llu", room,
		    (unsigned long long)seq);
		while ((unsigned long)len < size && len < DRIVE_MAX_SIZE - 1)
			content[len++] = '.';
		extra = json_object_new_object();
		json_object_object_add(extra, "room",
		    json_object_new_string(room));
		json_object_object_add(extra, "from",
		    json_object_new_string("drive"));
		json_object_object_add(extra, "seq",
		    json_object_new_int64((int64_t)seq));
		json_object_object_add(extra, "time",
		    json_object_new_string(when));
		f = d->host->frame_new(d->p, d->host->session_id(s),
		    AC_MSG_MESSAGE, DRIVE_TEXT, extra, content, (size_t)len);
		json_object_put(extra);
		if (f == NULL)
			break;
		hm.room = room;
		hm.seq = seq;
		hm.time_ms = ms;
		hm.frame = f;
		if (!durable) {
			d->in_store = 1;
			rc = h->store(h->ctx, &hm, NULL, NULL);
			d->in_store = 0;
			if (rc == 0)
				c->ok++;
			else
				c->refused++;
			if (!quiet)
				d->host->relay(d->p, f, s);
			d->host->frame_unref(d->p, f);
			continue;
		}
		if ((m = calloc(1, sizeof *m)) == NULL) {
			d->host->frame_unref(d->p, f);
			break;
		}
		m->cmd = c;
		m->seq = seq;
		m->frame = f;
		c->outstanding++;
		d->in_store = 1;
		rc = h->store(h->ctx, &hm, drive_stored_cb, m);
		d->in_store = 0;
		if (rc != 0) {
			/* Refused: deliver at once, as chat does. */
			c->outstanding--;
			c->refused++;
			if (seq == c->next)
				c->next = seq + 1;
			if (!quiet)
				d->host->relay(d->p, f, s);
			d->host->frame_unref(d->p, f);
			free(m);
		}
	}
	c->issued = 1;
	drive_cmd_check(c);
}

/* A replay completed. */
static void
drive_replayed_cb(void *arg, struct ac_session *s,
    const struct ac_history_result *r)
{
	struct drive_replay	*dr = arg;
	struct drive		*d = dr->d;

	if (d->in_store)
		d->host->log(d->p, AC_LOG_ERROR, "replay completed inside");
	if (s == NULL)
		d->host->log(d->p, AC_LOG_INFO, "replay done session=gone "
		    "n=%llu", (unsigned long long)r->replayed);
	else
		drive_say(d, s, "replayed status=%s n=%llu truncated=%d "
		    "ms=%.3f", r->status == AC_HISTORY_OK ? "ok" : "failed",
		    (unsigned long long)r->replayed, r->truncated ? 1 : 0,
		    drive_ms(&dr->start));
	free(dr);
}

/* replay ROOM last N|since S [until=U] */
static void
drive_replay(struct drive *d, struct ac_session *s, const char *room,
    const char *mode, unsigned long long n, int has_until,
    unsigned long long until)
{
	const struct ac_history	*h = d->hist;
	struct ac_history_query	 q;
	struct drive_replay	*dr;

	memset(&q, 0, sizeof q);
	q.room = room;
	if (strcmp(mode, "last") == 0) {
		q.mode = AC_HISTORY_LAST;
		q.count = n;
	} else {
		q.mode = AC_HISTORY_SINCE;
		q.since = n;
	}
	q.until = has_until ? until : h->last_seq(h->ctx, room, NULL, 0);
	if ((dr = calloc(1, sizeof *dr)) == NULL)
		return;
	dr->d = d;
	clock_gettime(CLOCK_MONOTONIC, &dr->start);
	d->in_store = 1;
	if (h->replay(h->ctx, s, &q, drive_replayed_cb, dr) != 0) {
		free(dr);
		drive_say(d, s, "replay refused");
	}
	d->in_store = 0;
}

/* Run one command. */
static int
drive_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct drive		*d = state;
	char			 text[256], room[128], mode[16], opt[64];
	char			 name[AC_HISTORY_ROOM_MAX + 1], why[128];
	const char		*p;
	unsigned long		 n, size = 0, age = 0;
	int			 quiet = 0;
	unsigned long long	 a, until = 0;
	int			 off, has_until = 0;
	uint64_t		 seq;

	if (msg->content_len >= sizeof text)
		return AC_PLUGIN_CONTINUE;
	memcpy(text, msg->content, msg->content_len);
	text[msg->content_len] = '\0';
	if (d->hist == NULL) {
		drive_say(d, from, "no history");
		return AC_PLUGIN_STOP;
	}
	if (strcmp(text, "durable") == 0) {
		drive_say(d, from, "durable %d", d->hist->durable(
		    d->hist->ctx) ? 1 : 0);
	} else if (strcmp(text, "status") == 0) {
		if (!AC_HISTORY_HAS(d->hist, status))
			drive_say(d, from, "status none");
		else if (d->hist->status(d->hist->ctx, why, sizeof why) == 0)
			drive_say(d, from, "status up");
		else
			drive_say(d, from, "status down: %s", why);
	} else if (sscanf(text, "last %127s", room) == 1) {
		strcpy(name, "-");
		seq = d->hist->last_seq(d->hist->ctx, room, name, sizeof name);
		drive_say(d, from, "last %llu %s", (unsigned long long)seq,
		    name);
	} else if (sscanf(text, "store %127s %lu%n", room, &n, &off) == 2 &&
	    n <= DRIVE_MAX_N) {
		for (p = text + off; sscanf(p, " %63s%n", opt, &off) == 1;
		    p += off) {
			if (strcmp(opt, "quiet") == 0)
				quiet = 1;
			else if (sscanf(opt, "size=%lu", &size) != 1 &&
			    sscanf(opt, "age=%lu", &age) != 1)
				break;
		}
		if (size > DRIVE_MAX_SIZE - 1)
			size = DRIVE_MAX_SIZE - 1;
		drive_store(d, from, room, n, size, age, quiet);
	} else if (sscanf(text, "replay %127s %15s %llu%n", room, mode, &a,
	    &off) == 3 && (strcmp(mode, "last") == 0 ||
	    strcmp(mode, "since") == 0)) {
		if (sscanf(text + off, " until=%llu", &until) == 1)
			has_until = 1;
		drive_replay(d, from, room, mode, a, has_until, until);
	} else
		drive_say(d, from, "unknown command");
	return AC_PLUGIN_STOP;
}
