/*
 * interactive.c - `asyncchat ... interactive`: GNU readline through its
 * callback interface, on the same event loop as the connection.
 *
 * Readline never reads the terminal by itself here: an event on standard
 * input hands it one character at a time (rl_callback_read_char), and the
 * complete line comes back through interactive_line_cb. A message that
 * arrives while a line is half typed is printed above the prompt: the
 * prompt and line are saved and wiped, the message printed, and readline
 * redraws both below it, so the typed text is never garbled.
 *
 * With a chat server (chat.c) the prompt shows our nick and current room,
 * "[alice #dev]> ", typed lines become what CHAT.md says (command.c), Tab
 * completes commands, rooms and nicks (complete.c), and with --reconnect a
 * lost connection is made again with the same nick and rooms, each from
 * the last message seen in it.
 */
#include "config.h"

#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <readline/readline.h>
#include <readline/history.h>

#include "cli.h"
#include "xmalloc.h"

#define INTERACTIVE_PROMPT	"> "

struct interactive {
	struct cli	*cli;
	int		 installed;	/* readline handler installed */
	int		 connects;	/* handshakes completed */
	char		*prompt;	/* the prompt shown */
	struct event	*stdin_ev;
	struct event	*sigint;
	struct event	*sigterm;
	struct event	*sigwinch;
};

/* Readline's line callback cannot take an argument. */
static struct interactive	*interactive_self;

/*
 * Take the prompt and the half-typed input off the screen, print line to f
 * in their place if there is one, and show them again below it with the
 * prompt of now.
 */
static void
interactive_reprompt(struct interactive *it, FILE *f, const char *line)
{
	char	*saved;
	int	 point;

	point = rl_point;
	saved = rl_copy_text(0, rl_end);
	rl_save_prompt();
	rl_replace_line("", 0);
	rl_redisplay();

	if (line != NULL) {
		/* The cursor is now at the start of an empty line. */
		fflush(rl_outstream);
		fprintf(f, "\r%s\n", line);
		fflush(f);
	}

	rl_restore_prompt();
	rl_set_prompt(it->prompt);
	rl_replace_line(saved, 0);
	rl_point = point;
	rl_redisplay();
	free(saved);
}

/* Print one line above the prompt, keeping any half-typed input intact. */
static void
interactive_print(struct interactive *it, FILE *f, const char *line)
{
	if (!it->installed) {
		fprintf(f, "%s\n", line);
		fflush(f);
		return;
	}
	interactive_reprompt(it, f, line);
}

/*
 * The prompt for what we know now: "> " as ever, or with a chat server
 * our nick and current room, "[alice #dev]> " (escaped, as they came from
 * the server). Returns whether it changed.
 */
static int
interactive_make_prompt(struct interactive *it)
{
	struct chat	*chat = &it->cli->chat;
	char		*p, *nick, *room = NULL;

	if (!chat->active || chat->nick == NULL)
		p = ac_xstrdup(INTERACTIVE_PROMPT);
	else {
		nick = output_escape(chat->nick, strlen(chat->nick));
		if (chat->current != NULL)
			room = output_escape(chat->current->name,
			    strlen(chat->current->name));
		ac_xasprintf(&p, "[%s%s%s]%s", nick, room != NULL ? " #" : "",
		    room != NULL ? room : "", INTERACTIVE_PROMPT);
		free(room);
		free(nick);
	}
	if (it->prompt != NULL && strcmp(p, it->prompt) == 0) {
		free(p);
		return 0;
	}
	free(it->prompt);
	it->prompt = p;
	return 1;
}

/* Show a new prompt in place, keeping any half-typed input intact. */
static void
interactive_redraw(struct interactive *it)
{
	if (it->installed)
		interactive_reprompt(it, NULL, NULL);
}

/* Print an error line (stderr) above the prompt. */
static void
interactive_error(struct interactive *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Format and print an error line (stderr) above the prompt. */
static void
interactive_error(struct interactive *it, const char *fmt, ...)
{
	va_list	 ap;
	char	*s, *line;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	ac_xasprintf(&line, "asyncchat: %s", s != NULL ? s : fmt);
	interactive_print(it, stderr, line);
	free(line);
	free(s);
}

/* Take readline off the terminal and stop reading standard input. */
static void
interactive_stop(struct interactive *it)
{
	if (it->installed) {
		rl_callback_handler_remove();
		it->installed = 0;
	}
	event_del(it->stdin_ev);
}

/* Leave the loop now. */
static void
interactive_quit(struct interactive *it, int status)
{
	interactive_stop(it);
	it->cli->status = status;
	event_base_loopbreak(it->cli->base);
}

/*
 * Leave cleanly: send `disconnect` (with reason, or the default) and quit
 * once it is written, or at once when there is no connection (between
 * two attempts of --reconnect, say).
 */
static void
interactive_leave(struct interactive *it, const char *reason)
{
	struct ac_client	*c = it->cli->client;
	int			 connected = ac_client_is_connected(c);

	interactive_stop(it);
	if (ac_client_disconnect(c, reason) != 0 || !connected)
		interactive_quit(it, 0);
}

/* Send a typed line as CHAT.md (or, without a chat server, as ever) says. */
static void
interactive_send(struct interactive *it, const char *line)
{
	struct cli		*cli = it->cli;
	struct json_object	*extra;
	char			*text;
	int			 rc;

	if (!ac_client_is_connected(cli->client)) {
		interactive_error(it, "cannot send: not connected");
		return;
	}
	if (command_line(&cli->chat, line, &text, &extra) == COMMAND_QUIT) {
		interactive_leave(it, text);
		free(text);
		return;
	}
	rc = ac_client_send(cli->client, AC_CLIENT_TEXT_TYPE, extra, text,
	    strlen(text));
	json_object_put(extra);
	free(text);
	if (rc != 0)
		interactive_error(it, "cannot send: not connected or too long");
}

/* A complete line from readline; NULL at end of input (Ctrl+D). */
static void
interactive_line_cb(char *line)
{
	struct interactive	*it = interactive_self;
	char			*p, *end;

	if (line == NULL) {
		/* Ctrl+D: move off the prompt line, then leave cleanly. */
		interactive_stop(it);
		putchar('\n');
		fflush(stdout);
		interactive_leave(it, NULL);
		return;
	}
	for (p = line; isspace((unsigned char)*p); p++)
		;
	for (end = p + strlen(p); end > p && isspace((unsigned char)end[-1]);
	    end--)
		;
	if (end == p) {
		free(line);
		return;
	}
	add_history(line);
	if (end - p == 4 && strncasecmp(p, "exit", 4) == 0) {
		free(line);
		interactive_leave(it, NULL);
		return;
	}
	interactive_send(it, line);
	free(line);
}

/* Standard input is readable: let readline take one character. */
static void
interactive_stdin_cb(evutil_socket_t fd, short events, void *arg)
{
	rl_callback_read_char();
}

/* SIGINT (Ctrl+C) and SIGTERM: quit at once, without a disconnect. */
static void
interactive_signal_cb(evutil_socket_t sig, short events, void *arg)
{
	struct interactive	*it = arg;

	if (it->installed) {
		rl_free_line_state();
		rl_cleanup_after_signal();
	}
	interactive_stop(it);
	fputc('\n', stdout);
	fflush(stdout);
	interactive_quit(it, 128 + (int)sig);
}

/* The terminal changed size: tell readline. */
static void
interactive_winch_cb(evutil_socket_t sig, short events, void *arg)
{
	struct interactive	*it = arg;

	if (it->installed)
		rl_resize_terminal();
}

/* The handshake is done: greet, then hand the terminal to readline. */
static void
interactive_connected_cb(struct ac_client *c, const char *session_id,
    void *arg)
{
	struct interactive	*it = arg;
	struct cli		*cli = it->cli;
	char			*sid, *line;

	chat_connected(&cli->chat, session_id);
	if (it->connects++ > 0) {
		if (!cli->quiet) {
			sid = output_escape(session_id, strlen(session_id));
			ac_xasprintf(&line, "Reconnected: session %s", sid);
			interactive_print(it, stdout, line);
			free(line);
			free(sid);
		}
		return;
	}
	if (!cli->quiet) {
		if (cli->transport == AC_CLIENT_UNIX)
			printf("Connected to %s\n", cli->path);
		else
			printf("Connected to %s port %s\n", cli->host,
			    cli->port);
		sid = output_escape(session_id, strlen(session_id));
		printf("Session %s\n", sid);
		free(sid);
		printf("Type messages; 'exit' or Ctrl+D to leave.\n");
		fflush(stdout);
	}
	if (!it->installed) {
		rl_callback_handler_install(it->prompt, interactive_line_cb);
		it->installed = 1;
		event_add(it->stdin_ev, NULL);
	}
}

/* A message, chunk or pong arrived: show messages above the prompt. */
static void
interactive_message_cb(struct ac_client *c, enum ac_msg_type type,
    const char *content_type, const char *session_id, const void *content,
    size_t len, struct json_object *header, void *arg)
{
	struct interactive	*it = arg;
	struct chat_frame	 cf;
	char			*s = NULL;
	int			 changed;

	if (type != AC_MSG_MESSAGE && type != AC_MSG_CHUNK)
		return;
	chat_take(&it->cli->chat, type, content_type, session_id, header,
	    &cf);
	changed = interactive_make_prompt(it);
	if (cf.kind != CHAT_DROP && !it->cli->quiet)
		s = output_format(it->cli, type, content_type, session_id,
		    content, len, header, &cf);
	if (s != NULL)
		interactive_print(it, stdout, s);
	else if (changed)
		interactive_redraw(it);
	free(s);
}

/* The server sent an error frame, or one of its frames failed a check. */
static void
interactive_error_cb(struct ac_client *c, enum ac_frame_status status,
    const char *text, void *arg)
{
	struct interactive	*it = arg;
	char			*safe = output_escape(text, strlen(text));

	if (status == AC_FRAME_OK)
		interactive_error(it, "server error: %s", safe);
	else
		interactive_error(it, "bad frame from server: %s", safe);
	free(safe);
}

/* The connection ended: say why unless we asked for it, then leave. */
static void
interactive_disconnected_cb(struct ac_client *c, enum ac_client_end end,
    const char *reason, void *arg)
{
	struct interactive	*it = arg;
	struct cli		*cli = it->cli;
	char			*safe;

	chat_disconnected(&cli->chat);
	if (end == AC_CLIENT_END_LOCAL) {
		interactive_quit(it, 0);
		return;
	}
	safe = output_escape(reason, strlen(reason));
	/*
	 * Connecting again is for a session that was up: a first attempt
	 * that fails (a wrong port, say) ends the client as it always did.
	 */
	if (cli->reconnect && end != AC_CLIENT_END_PROTOCOL &&
	    it->connects > 0) {
		/* The client tries again once this returns. */
		if (end == AC_CLIENT_END_SERVER)
			interactive_error(it, "server disconnected: %s; "
			    "reconnecting", safe);
		else
			interactive_error(it, "%s; reconnecting", safe);
		free(safe);
		cli_set_ack(cli);
		return;
	}
	if (cli->reconnect)
		ac_client_disconnect(c, NULL);	/* no retry after this */
	if (end == AC_CLIENT_END_SERVER)
		interactive_error(it, "server disconnected: %s", safe);
	else
		interactive_error(it, "%s", safe);
	free(safe);
	interactive_quit(it, cli_end_status(end));
}

/* Run interactive mode; returns the exit status. */
int
interactive_run(struct cli *cli)
{
	struct ac_client_callbacks	 cb;
	struct ac_client_options	 opts;
	struct interactive		 it;

	memset(&it, 0, sizeof it);
	it.cli = cli;
	interactive_self = &it;
	interactive_make_prompt(&it);
	complete_install(&cli->chat);

	/* Signals are ours (evsignal), not readline's. */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_readline_name = "asyncchat";

	it.stdin_ev = event_new(cli->base, STDIN_FILENO, EV_READ | EV_PERSIST,
	    interactive_stdin_cb, &it);
	it.sigint = evsignal_new(cli->base, SIGINT, interactive_signal_cb, &it);
	it.sigterm = evsignal_new(cli->base, SIGTERM, interactive_signal_cb,
	    &it);
	it.sigwinch = evsignal_new(cli->base, SIGWINCH, interactive_winch_cb,
	    &it);
	if (it.stdin_ev == NULL || it.sigint == NULL || it.sigterm == NULL ||
	    it.sigwinch == NULL) {
		output_error("cannot set up the terminal events");
		return 1;
	}
	evsignal_add(it.sigint, NULL);
	evsignal_add(it.sigterm, NULL);
	evsignal_add(it.sigwinch, NULL);

	memset(&cb, 0, sizeof cb);
	cb.connected = interactive_connected_cb;
	cb.message = interactive_message_cb;
	cb.error = interactive_error_cb;
	cb.disconnected = interactive_disconnected_cb;
	ac_client_options_default(&opts);
	opts.reconnect = cli->reconnect;
	if ((cli->client = ac_client_new(cli->base, cli->key, &opts, &cb,
	    &it)) == NULL) {
		output_error("out of memory");
		return 1;
	}
	cli_set_ack(cli);

	if (cli_connect(cli) == 0)
		event_base_dispatch(cli->base);
	else
		cli->status = 1;

	interactive_stop(&it);
	ac_client_free(cli->client);
	cli->client = NULL;
	event_free(it.stdin_ev);
	event_free(it.sigint);
	event_free(it.sigterm);
	event_free(it.sigwinch);
	complete_install(NULL);
	free(it.prompt);
	interactive_self = NULL;
	return cli->status;
}
