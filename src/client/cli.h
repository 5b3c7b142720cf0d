/*
 * cli.h - the asyncchat client program: shared state and prototypes,
 * grouped by the file that defines them.
 */
#ifndef AC_CLI_H
#define AC_CLI_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <asyncchat/asyncchat.h>

struct event_base;
struct json_object;

/* Exit statuses (asyncchat(1), EXIT STATUS); 128+N after signal N. */
#define CLI_EXIT_OK		0
#define CLI_EXIT_FAILURE	1	/* connection, handshake, server */
#define CLI_EXIT_USAGE		2
#define CLI_EXIT_PROTOCOL	3	/* the server broke the protocol or a
					   frame failed verification */

/* CHAT.md's limits on names, which --nick and --room are held to. */
#define CHAT_NICK_MAX		32	/* characters */
#define CHAT_ROOM_MAX		64

/* A member of a room, as the events say (for completion). */
struct chat_member {
	TAILQ_ENTRY(chat_member) entry;
	char			*session;
	char			*nick;
};
TAILQ_HEAD(chat_members, chat_member);

/* A room we are in, or asked to be in (--room). */
struct chat_room {
	TAILQ_ENTRY(chat_room)	 entry;
	char			*name;		/* as the server spells it */
	uint64_t		 last_seq;	/* the last seq shown */
	int			 joined;	/* a join event for us came */
	int			 names_more;	/* a names event said more */
	struct chat_members	 members;
};
TAILQ_HEAD(chat_rooms, chat_room);

/*
 * The chat layer (CHAT.md) as this client sees it. Nothing here is used
 * until the server has shown it is a chat server (active): an event made
 * for our own session. Before that, and with a server that is not one,
 * every frame is shown as it always was.
 */
struct chat {
	int			 active;
	char			*nick;		/* ours, or the one to ask */
	char			*sid;		/* this connection's session */
	char			**own;		/* every session we had */
	size_t			 nown;
	struct chat_rooms	 rooms;		/* in the order joined */
	struct chat_room	*current;	/* where a message goes */
	char			**pending;	/* rooms of /join, in order */
	size_t			 npending;
	char			*want;		/* to make current on join */
	int			 replay;	/* a replay was asked for */
	int			 who;		/* /who sent, not answered */
	char			**peers;	/* direct message partners */
	size_t			 npeers;
	char			**listed;	/* rooms of a rooms event */
	size_t			 nlisted;
	int			 listed_more;
};

/* How chat_take() classes a received frame. */
enum chat_kind {
	CHAT_PLAIN = 0,		/* not the chat layer's: shown as ever */
	CHAT_DROP,		/* a room message already shown */
	CHAT_MESSAGE,		/* a message the server stamped */
	CHAT_EVENT,		/* an event the server made for us */
};

/* A received frame as the chat layer reads it; strings are borrowed. */
struct chat_frame {
	enum chat_kind		 kind;
	const char		*event;		/* CHAT_EVENT */
	const char		*from;		/* CHAT_MESSAGE */
	const char		*room;		/* NULL: none */
	const char		*to;		/* direct messages */
	const char		*time;		/* the server's stamp */
	uint64_t		 seq;		/* 0: none */
	int			 own;		/* we sent it */
	int			 several;	/* we are in 2+ rooms */
	int			 error;		/* a reply with an error */
	int			 quiet;		/* nothing worth a line */
	int			 full;		/* names: asked for (/who) */
};

/* Which server the program talks to and how it behaves (from argv). */
struct cli {
	enum ac_client_transport	 transport;
	const char			*host;		/* tcp, tls */
	const char			*port;		/* tcp, tls */
	const char			*path;		/* unix */
	struct ac_client_tls_options	 tls;		/* tls */
	const char			*file;		/* "-" is stdin */

	int				 json;
	int				 quiet;
	int				 pipeline;
	long				 interval_ms;
	long				 reply_timeout_ms;
	int				 reconnect;

	const char			*nick;		/* --nick */
	const char			**rooms;	/* --room, without # */
	size_t				 nrooms;
	struct chat			 chat;

	struct event_base		*base;
	struct ac_key			*key;
	struct ac_client		*client;
	int				 status;	/* exit status */
};

/* main.c */
int	 cli_connect(struct cli *);
int	 cli_end_status(enum ac_client_end);
void	 cli_set_ack(struct cli *);
void	 cli_install_signal_ignores(void);

/* chat.c */
void	 chat_init(struct chat *, const char *, const char **, size_t);
void	 chat_clear(struct chat *);
const char *chat_nick_problem(const char *);
const char *chat_room_problem(const char *);
struct json_object *chat_ack_extra(const struct chat *);
void	 chat_connected(struct chat *, const char *);
void	 chat_disconnected(struct chat *);
void	 chat_take(struct chat *, enum ac_msg_type, const char *,
	    const char *, struct json_object *, struct chat_frame *);
struct chat_room *chat_room_find(const struct chat *, const char *);
int	 chat_is_own(const struct chat *, const char *);
void	 chat_join_asked(struct chat *, const char *, size_t);
void	 chat_replay_asked(struct chat *);
void	 chat_who_asked(struct chat *);
const char *chat_str(struct json_object *, const char *);
uint64_t chat_uint(struct json_object *, const char *);
int	 chat_bool(struct json_object *, const char *);
void	 chat_peer_add(struct chat *, const char *);
char	**chat_nicks(const struct chat *, size_t *);
char	**chat_room_names(const struct chat *, size_t *);
int	 chat_fold_cmp(const char *, const char *);
int	 chat_fold_prefix(const char *, const char *);

/* command.c */
enum command_do {
	COMMAND_SEND = 0,	/* send text with extra */
	COMMAND_QUIT,		/* leave; text is the reason (may be NULL) */
};
enum command_do command_line(struct chat *, const char *, char **,
	    struct json_object **);
const char *const *command_names(void);

/* complete.c */
void	 complete_install(struct chat *);

/* event.c */
char	*event_format(const struct chat_frame *, struct json_object *,
	    const void *, size_t);

/* output.c */
char	*output_format(const struct cli *, enum ac_msg_type, const char *,
	    const char *, const void *, size_t, struct json_object *,
	    const struct chat_frame *);
char	*output_clock(const char *);
void	 output_error(const char *, ...)
	    __attribute__((format(printf, 1, 2)));
int	 output_is_text(const char *, const void *, size_t);
size_t	 output_utf8_len(const unsigned char *, size_t, unsigned int *);
char	*output_escape(const void *, size_t);

/* interactive.c */
int	 interactive_run(struct cli *);

/* filemode.c */
int	 filemode_run(struct cli *);

#endif /* AC_CLI_H */
