/*
 * filemode.c - `asyncchat ... file FILE`: send each non-empty line of a file
 * (or standard input) as a text message, print what comes back, leave.
 *
 * By default one frame is in flight at a time: the next line (or heartbeat)
 * goes when a frame has arrived since the last send, or after the reply
 * timeout. This is what makes the client safe with the original Python
 * server, which reads 1024 bytes at a time and decodes one frame from them,
 * losing any frame that arrives together with another. With --pipeline the
 * lines go as fast as the socket takes them, bounded by FILE_OUT_HIGH bytes
 * queued; the client's drained callback resumes reading the file.
 *
 * With --room, each line that is not a command goes with the header member
 * "room" (CHAT.md), to the last room named; a line that begins with / is
 * sent as it is, so a file of commands works as typed.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "cli.h"
#include "xmalloc.h"

#define FILE_OUT_HIGH	(256 * 1024)	/* stop sending above this */
#define FILE_READ_SIZE	65536
#define FILE_LINE_MAX	(1024 * 1024)	/* longer lines are refused */
#define FILE_ACK_SETTLE	100		/* ms after session_ack */

enum file_inflight {
	FILE_IDLE = 0,		/* nothing awaits a reply */
	FILE_WAIT,		/* a message or ping awaits a reply */
};

struct file {
	struct cli		*cli;
	int			 fd;
	int			 is_regular;
	int			 restore_flags;	/* original fd flags, or -1 */
	int			 eof;		/* no more lines */
	struct evbuffer		*in;		/* bytes read, not yet lines */
	struct event		*readable;	/* fd readable (not regular) */

	int			 connected;
	int			 await_flush;	/* ack not yet written */
	enum file_inflight	 inflight;
	int			 ping_due;
	int			 paced;		/* --interval gap running */
	int			 finishing;	/* all sent, waiting replies */
	int			 final_ping;	/* waiting for the last pong */
	unsigned long		 pings;		/* pings sent */
	unsigned long		 pongs;		/* pongs received */
	int			 done;		/* disconnect requested */

	unsigned long		 sent;		/* message frames sent */
	unsigned long		 received;	/* message frames received */
	int			 errors;	/* error frames or bad frames */

	struct event		*reply_timer;	/* one-in-flight and the end */
	struct event		*pace_timer;	/* --interval */
	struct event		*ping_timer;	/* one-in-flight heartbeats */
	struct event		*sigint;
	struct event		*sigterm;
};

static void	file_pump(struct file *);

/* Arm ev to fire after ms milliseconds. */
static void
file_arm(struct event *ev, long ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* Open the input: a path, or "-" for standard input; -1 with a message. */
static int
file_open(struct file *f, const char *path)
{
	struct stat	sb;
	int		flags;

	f->restore_flags = -1;
	if (strcmp(path, "-") == 0)
		f->fd = STDIN_FILENO;
	else if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		output_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(f->fd, &sb) == -1) {
		output_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(sb.st_mode)) {
		output_error("%s: is a directory", path);
		return -1;
	}
	/*
	 * A regular file is always readable and epoll refuses it, so it is
	 * read directly; anything else (a pipe, a terminal) is made
	 * non-blocking and read when the loop says it is readable.
	 */
	f->is_regular = S_ISREG(sb.st_mode);
	if (!f->is_regular) {
		if ((flags = fcntl(f->fd, F_GETFL)) != -1 &&
		    !(flags & O_NONBLOCK)) {
			if (fcntl(f->fd, F_SETFL, flags | O_NONBLOCK) != -1 &&
			    f->fd == STDIN_FILENO)
				f->restore_flags = flags;
		}
	}
	return 0;
}

/* Called when a non-regular input becomes readable: try again. */
static void
file_readable_cb(evutil_socket_t fd, short events, void *arg)
{
	struct file	*f = arg;

	file_pump(f);
}

/*
 * Get the next line to send into *line (heap, caller frees). Returns 1 with
 * a line, 0 when none is available yet (a read is pending), -1 at the end
 * (end of file or an `exit` line).
 */
static int
file_next_line(struct file *f, char **line)
{
	char		*s, *p, *end;
	size_t		 len;
	ssize_t		 n;

	for (;;) {
		s = evbuffer_readln(f->in, &len, EVBUFFER_EOL_LF);
		if (s == NULL && f->eof && evbuffer_get_length(f->in) > 0) {
			/* The last line has no newline. */
			len = evbuffer_get_length(f->in);
			s = ac_xmalloc(len + 1);
			evbuffer_remove(f->in, s, len);
			s[len] = '\0';
		}
		if (s == NULL) {
			if (f->eof)
				return -1;
			if (evbuffer_get_length(f->in) > FILE_LINE_MAX) {
				output_error("%s: line over %d bytes",
				    f->cli->file, FILE_LINE_MAX);
				f->cli->status = 1;
				f->eof = 1;
				evbuffer_drain(f->in,
				    evbuffer_get_length(f->in));
				return -1;
			}
			n = evbuffer_read(f->in, f->fd, FILE_READ_SIZE);
			if (n > 0)
				continue;
			if (n == 0) {
				f->eof = 1;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR) {
				event_add(f->readable, NULL);
				return 0;
			}
			output_error("%s: %s", f->cli->file, strerror(errno));
			f->cli->status = 1;
			f->eof = 1;
			return -1;
		}

		if (len > 0 && s[len - 1] == '\r')
			s[--len] = '\0';
		for (p = s; *p != '\0' && isspace((unsigned char)*p); p++)
			;
		if (*p == '\0') {
			free(s);
			continue;
		}
		for (end = s + len; end > p && isspace((unsigned char)end[-1]);
		    end--)
			;
		if (end - p == 4 && strncasecmp(p, "exit", 4) == 0) {
			free(s);
			f->eof = 1;
			evbuffer_drain(f->in, evbuffer_get_length(f->in));
			return -1;
		}
		*line = s;
		return 1;
	}
}

/* Everything is sent and answered (or waited for): leave cleanly. */
static void
file_disconnect(struct file *f)
{
	if (f->done)
		return;
	f->done = 1;
	event_del(f->reply_timer);
	event_del(f->ping_timer);
	event_del(f->pace_timer);
	if (ac_client_disconnect(f->cli->client, NULL) != 0)
		event_base_loopbreak(f->cli->base);
}

/*
 * No more lines: in one-in-flight mode send a last ping and wait for its
 * pong; with --pipeline wait until as many messages came back as went out,
 * or until nothing arrived for the reply timeout. Either wait is bounded.
 */
static void
file_finish(struct file *f)
{
	if (!f->finishing) {
		f->finishing = 1;
		event_del(f->ping_timer);
		if (!f->cli->pipeline) {
			/*
			 * A server handles a session's frames in order, so
			 * its pong comes after every reply the earlier
			 * frames caused, even when a line caused several.
			 */
			if (ac_client_ping(f->cli->client) == 0) {
				f->pings++;
				f->final_ping = 1;
				file_arm(f->reply_timer,
				    f->cli->reply_timeout_ms);
				return;
			}
		} else if (f->received < f->sent) {
			file_arm(f->reply_timer, f->cli->reply_timeout_ms);
			return;
		}
	}
	if (!f->cli->pipeline || f->received >= f->sent ||
	    !evtimer_pending(f->reply_timer, NULL))
		file_disconnect(f);
}

/* Send one line; 0, or -1 after reporting a failure. */
static int
file_send(struct file *f, const char *line)
{
	struct cli		*cli = f->cli;
	struct json_object	*extra = NULL;
	int			 rc;

	if (cli->nrooms > 0 && (line[0] != '/' || line[1] == '/')) {
		extra = json_object_new_object();
		json_object_object_add(extra, "room",
		    json_object_new_string(cli->rooms[cli->nrooms - 1]));
	}
	rc = ac_client_send(cli->client, AC_CLIENT_TEXT_TYPE, extra, line,
	    strlen(line));
	json_object_put(extra);
	if (rc != 0) {
		output_error("cannot send line %lu (too long?)", f->sent + 1);
		f->cli->status = 1;
		return -1;
	}
	f->sent++;
	if (f->cli->interval_ms > 0) {
		f->paced = 1;
		file_arm(f->pace_timer, f->cli->interval_ms);
	}
	return 0;
}

/* Send whatever may go now, according to the mode. */
static void
file_pump(struct file *f)
{
	struct cli	*cli = f->cli;
	char		*line;
	int		 rc;

	if (!f->connected || f->await_flush || f->done || f->finishing)
		return;
	while (!f->paced) {
		if (!cli->pipeline) {
			if (f->inflight != FILE_IDLE)
				return;
			if (f->ping_due) {
				f->ping_due = 0;
				if (ac_client_ping(cli->client) == 0) {
					f->pings++;
					f->inflight = FILE_WAIT;
					file_arm(f->reply_timer,
					    cli->reply_timeout_ms);
					return;
				}
			}
		} else if (ac_client_output_pending(cli->client) >=
		    FILE_OUT_HIGH)
			return;	/* the drained callback resumes */

		if ((rc = file_next_line(f, &line)) == 0)
			return;
		if (rc < 0) {
			file_finish(f);
			return;
		}
		rc = file_send(f, line);
		free(line);
		if (rc != 0) {
			file_disconnect(f);
			return;
		}
		if (!cli->pipeline) {
			f->inflight = FILE_WAIT;
			file_arm(f->reply_timer, cli->reply_timeout_ms);
			return;
		}
	}
}

/* A frame arrived: any frame counts as the reply to what is in flight. */
static void
file_replied(struct file *f, int is_pong)
{
	if (f->finishing) {
		if (f->final_ping) {
			/*
			 * Only the last ping's pong says that everything
			 * before it was answered: a chat server answers one
			 * frame with several, so an earlier ping may still
			 * be on its way back when the last one goes.
			 */
			if (is_pong && f->pongs >= f->pings)
				file_disconnect(f);
		} else if (f->cli->pipeline) {
			if (f->received >= f->sent)
				file_disconnect(f);
			else
				file_arm(f->reply_timer,
				    f->cli->reply_timeout_ms);
		}
		return;
	}
	if (f->inflight == FILE_WAIT) {
		f->inflight = FILE_IDLE;
		event_del(f->reply_timer);
		file_pump(f);
	}
}

/* The reply timeout: stop waiting for this reply, or for the last ones. */
static void
file_reply_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct file	*f = arg;

	if (f->finishing) {
		file_disconnect(f);
		return;
	}
	f->inflight = FILE_IDLE;
	file_pump(f);
}

/* The --interval gap is over. */
static void
file_pace_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct file	*f = arg;

	f->paced = 0;
	file_pump(f);
}

/* One-in-flight heartbeat: queue a ping behind whatever is in flight. */
static void
file_ping_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct file	*f = arg;

	f->ping_due = 1;
	file_pump(f);
}

/* SIGINT or SIGTERM: stop at once. */
static void
file_signal_cb(evutil_socket_t sig, short events, void *arg)
{
	struct file	*f = arg;

	output_error("interrupted");
	f->cli->status = 128 + (int)sig;
	event_base_loopbreak(f->cli->base);
}

/* The handshake is done: start sending once session_ack is written. */
static void
file_connected_cb(struct ac_client *c, const char *session_id, void *arg)
{
	struct file	*f = arg;
	struct timeval	 tv = { 5, 0 };

	chat_connected(&f->cli->chat, session_id);
	f->connected = 1;
	f->await_flush = 1;
	if (!f->cli->pipeline) {
		/*
		 * The first frame in flight is a ping, not a line: should it
		 * reach a one-frame-per-read server together with the
		 * session_ack, only the ping is lost, and after the reply
		 * timeout the lines go one by one.
		 */
		f->ping_due = 1;
		event_add(f->ping_timer, &tv);
	}
}

/* Output drained: the session_ack went out, or the queue has room again. */
static void
file_drained_cb(struct ac_client *c, void *arg)
{
	struct file	*f = arg;

	if (f->await_flush && !f->cli->pipeline) {
		/*
		 * session_ack gets no reply, so nothing says when a
		 * one-frame-per-read server has consumed it. Treat it as a
		 * frame in flight with a short timeout of its own.
		 */
		f->await_flush = 0;
		f->inflight = FILE_WAIT;
		file_arm(f->reply_timer, f->cli->reply_timeout_ms <
		    FILE_ACK_SETTLE ? f->cli->reply_timeout_ms :
		    FILE_ACK_SETTLE);
		return;
	}
	f->await_flush = 0;
	file_pump(f);
}

/* A message, chunk or pong arrived. */
static void
file_message_cb(struct ac_client *c, enum ac_msg_type type,
    const char *content_type, const char *session_id, const void *content,
    size_t len, struct json_object *header, void *arg)
{
	struct file		*f = arg;
	struct cli		*cli = f->cli;
	struct chat_frame	 cf;
	char			*s;

	if (type == AC_MSG_MESSAGE || type == AC_MSG_CHUNK) {
		f->received++;
		chat_take(&cli->chat, type, content_type, session_id, header,
		    &cf);
		if (cf.kind == CHAT_EVENT && cf.error) {
			/* A line the chat server refused: say so, exit 1. */
			cli->status = 1;
			if (cli->quiet && !cli->json &&
			    (s = event_format(&cf, header, content, len)) !=
			    NULL) {
				output_error("%s", s);
				free(s);
			}
		}
		if (!cli->quiet && cf.kind != CHAT_DROP &&
		    (s = output_format(cli, type, content_type, session_id,
		    content, len, header, &cf)) != NULL) {
			puts(s);
			free(s);
		}
	}
	if (type == AC_MSG_HEARTBEAT)
		f->pongs++;
	file_replied(f, type == AC_MSG_HEARTBEAT);
}

/* The server sent an error frame, or one of its frames failed a check. */
static void
file_error_cb(struct ac_client *c, enum ac_frame_status status,
    const char *text, void *arg)
{
	struct file	*f = arg;
	char		*safe = output_escape(text, strlen(text));

	if (status == AC_FRAME_OK)
		output_error("server error: %s", safe);
	else
		output_error("bad frame from server: %s", safe);
	free(safe);
	f->errors++;
	f->cli->status = 1;
	file_replied(f, 0);
}

/* The connection ended: done if we asked for it, a failure otherwise. */
static void
file_disconnected_cb(struct ac_client *c, enum ac_client_end end,
    const char *reason, void *arg)
{
	struct file	*f = arg;
	char		*safe;

	if (end != AC_CLIENT_END_LOCAL) {
		safe = output_escape(reason, strlen(reason));
		if (end == AC_CLIENT_END_SERVER)
			output_error("server disconnected: %s", safe);
		else
			output_error("%s", safe);
		free(safe);
		f->cli->status = cli_end_status(end);
	}
	event_base_loopbreak(f->cli->base);
}

/* Run file mode; returns the exit status. */
int
filemode_run(struct cli *cli)
{
	struct ac_client_callbacks	 cb;
	struct ac_client_options	 opts;
	struct file			 f;

	memset(&f, 0, sizeof f);
	f.cli = cli;
	if (file_open(&f, cli->file) != 0)
		return 1;
	f.in = evbuffer_new();
	f.readable = event_new(cli->base, f.fd, EV_READ, file_readable_cb, &f);
	f.reply_timer = evtimer_new(cli->base, file_reply_timer_cb, &f);
	f.pace_timer = evtimer_new(cli->base, file_pace_timer_cb, &f);
	f.ping_timer = event_new(cli->base, -1, EV_PERSIST, file_ping_timer_cb,
	    &f);
	f.sigint = evsignal_new(cli->base, SIGINT, file_signal_cb, &f);
	f.sigterm = evsignal_new(cli->base, SIGTERM, file_signal_cb, &f);
	if (f.in == NULL || f.readable == NULL || f.reply_timer == NULL ||
	    f.pace_timer == NULL || f.ping_timer == NULL || f.sigint == NULL ||
	    f.sigterm == NULL) {
		output_error("out of memory");
		exit(1);
	}
	evsignal_add(f.sigint, NULL);
	evsignal_add(f.sigterm, NULL);

	memset(&cb, 0, sizeof cb);
	cb.connected = file_connected_cb;
	cb.message = file_message_cb;
	cb.error = file_error_cb;
	cb.disconnected = file_disconnected_cb;
	cb.drained = file_drained_cb;
	ac_client_options_default(&opts);
	/* One in flight: heartbeats take their turn (file_ping_timer_cb). */
	if (!cli->pipeline)
		opts.heartbeat_interval = 0;
	if ((cli->client = ac_client_new(cli->base, cli->key, &opts, &cb,
	    &f)) == NULL) {
		output_error("out of memory");
		exit(1);
	}
	cli_set_ack(cli);

	if (cli_connect(cli) == 0) {
		event_base_dispatch(cli->base);
		fflush(stdout);
	} else
		cli->status = 1;

	ac_client_free(cli->client);
	cli->client = NULL;
	event_free(f.readable);
	event_free(f.reply_timer);
	event_free(f.pace_timer);
	event_free(f.ping_timer);
	event_free(f.sigint);
	event_free(f.sigterm);
	evbuffer_free(f.in);
	if (f.restore_flags != -1)
		fcntl(f.fd, F_SETFL, f.restore_flags);
	if (f.fd != STDIN_FILENO)
		close(f.fd);
	return cli->status;
}
