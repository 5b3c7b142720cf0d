/*
 * chat.h - the chat plugin's private structures and functions, grouped by
 * the file that defines them. Nothing here is installed.
 *
 * The shapes, and why every operation is O(1) or O(members of one room):
 *  - users (one per handshaken session) are found by folded nick in a hash
 *    table, and from their session through the plugin's data slot;
 *  - rooms are found by folded name in a hash table;
 *  - a struct member ties one user to one room and sits on two lists, the
 *    room's members (join order) and the user's rooms (join order, the
 *    current room last), so joining and leaving unlink one node, sending
 *    walks one room, and a closing user walks only its own rooms;
 *  - sending to "everyone who shares a room with u, once each" marks each
 *    user it reaches with a fresh generation number instead of keeping a
 *    set.
 */
#ifndef CHAT_CHAT_H
#define CHAT_CHAT_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <asyncchat/cluster.h>
#include <asyncchat/history.h>
#include <asyncchat/plugin.h>

#include "../roomname.h"

struct event;
struct json_object;

#define CHAT_NICK_CHARS		32	/* characters in a nick, at most */
#define CHAT_NICK_BYTES		(CHAT_NICK_CHARS * 4)
#define CHAT_ROOM_MAX		ROOMNAME_MAX	/* bytes in a room name */
#define CHAT_DEFAULT_ROOM	"lobby"
#define CHAT_DEFAULT_MAX_ROOMS	20
#define CHAT_MAX_ROOMS_LIMIT	1000
#define CHAT_DEFAULT_CMD_RATE	5	/* budgeted commands a second */
#define CHAT_DEFAULT_CMD_BURST	20	/* and at once */
#define CHAT_CMD_RATE_LIMIT	1000000
#define CHAT_DEFAULT_ROOMS_LISTED 200	/* rooms in a /rooms answer */
#define CHAT_ROOMS_LISTED_LIMIT	100000
#define CHAT_TIME_LEN		24	/* 2026-12-06T11:00:00.123Z */
#define CHAT_HOLD_MAX		4096	/* messages held during a replay */
#define CHAT_HOLD_BYTES		(4u * 1024 * 1024)	/* and their bytes */
#define CHAT_PLAIN_WAIT_MS	150	/* a plain user's replays wait */
#define CHAT_WHY_MAX		128	/* a history backend's why, kept */
#define CHAT_TEXT		"text/plain; charset=utf-8"

/* The session attributes chat owns (docs/CHAT.md). */
#define CHAT_ATTR_NICK		"nick"
#define CHAT_ATTR_ROOMS		"rooms"

/* The interface of the nats plugin, whose presence chat refuses. */
#define CHAT_NATS_INTERFACE	"nats"

/* Error tokens of reply events (docs/CHAT.md). */
#define CHAT_E_BAD_NICK		"bad_nick"
#define CHAT_E_NICK_IN_USE	"nick_in_use"
#define CHAT_E_BAD_ROOM		"bad_room"
#define CHAT_E_TOO_MANY_ROOMS	"too_many_rooms"
#define CHAT_E_NOT_IN_ROOM	"not_in_room"
#define CHAT_E_NO_SUCH_NICK	"no_such_nick"
#define CHAT_E_NO_HISTORY	"no_history"
#define CHAT_E_UNKNOWN_COMMAND	"unknown_command"
#define CHAT_E_NO_ROOM		"no_room"
#define CHAT_E_BAD_ARGUMENT	"bad_argument"
#define CHAT_E_TOO_LARGE	"too_large"
#define CHAT_E_CLUSTER_DOWN	"cluster_down"
#define CHAT_E_HISTORY_DOWN	"history_unavailable"
#define CHAT_E_REPLAY_BUSY	"replay_in_progress"
#define CHAT_E_RATE_LIMITED	"rate_limited"

/* Counted things, shown as metrics by chat_collect. */
enum chat_count {
	CHAT_C_ROOM_MESSAGES,
	CHAT_C_DIRECT_MESSAGES,
	CHAT_C_DELIVERIES,
	CHAT_C_EVENTS,
	CHAT_C_REPLAYS,
	CHAT_C_STORE_FAILURES,
	CHAT_C_STEPS,
	CHAT_C_COUNT
};

/* Commands, for their metrics and their reply's `command`. */
enum chat_cmd {
	CHAT_CMD_NICK,
	CHAT_CMD_JOIN,
	CHAT_CMD_PART,
	CHAT_CMD_MSG,
	CHAT_CMD_WHO,
	CHAT_CMD_ROOMS,
	CHAT_CMD_HISTORY,
	CHAT_CMD_HELP,
	CHAT_CMD_UNKNOWN,
	CHAT_CMD_MESSAGE,	/* a plain message's errors */
	CHAT_CMD_COUNT
};

/* Error tokens, for their metrics. */
enum chat_err {
	CHAT_ERR_BAD_NICK,
	CHAT_ERR_NICK_IN_USE,
	CHAT_ERR_BAD_ROOM,
	CHAT_ERR_TOO_MANY_ROOMS,
	CHAT_ERR_NOT_IN_ROOM,
	CHAT_ERR_NO_SUCH_NICK,
	CHAT_ERR_NO_HISTORY,
	CHAT_ERR_UNKNOWN_COMMAND,
	CHAT_ERR_NO_ROOM,
	CHAT_ERR_BAD_ARGUMENT,
	CHAT_ERR_TOO_LARGE,
	CHAT_ERR_CLUSTER_DOWN,
	CHAT_ERR_HISTORY_DOWN,
	CHAT_ERR_REPLAY_BUSY,
	CHAT_ERR_RATE_LIMITED,
	CHAT_ERR_COUNT
};

/* hash.c */

/* One entry of a table keyed by folded names. */
struct hash_node {
	const char		*key;	/* the value's own folded name */
	void			*value;
	struct hash_node	*next;
};

/* A chained hash table that doubles before chains grow long. */
struct hash {
	struct hash_node	**buckets;
	size_t			  nbuckets;
	size_t			  count;
	uint64_t		 *steps;	/* chat's work counter */
};

void	 hash_init(struct hash *h, uint64_t *steps);
void	 hash_free(struct hash *h);
void	*hash_find(struct hash *h, const char *key);
void	 hash_add(struct hash *h, const char *key, void *value);
void	 hash_remove(struct hash *h, const char *key);

/* names.c */
int	 names_utf8_valid(const uint8_t *s, size_t len);
int	 names_nick_valid(const char *s, size_t len);
void	 names_fold(char *out, const char *in, size_t len);
int	 names_parse_count(const char *s, size_t len, uint64_t *out);

/* Forward declarations. */
struct chat;
struct user;
struct room;
struct member;
struct replay;
struct pending_store;
struct append;
struct claim;
struct direct;
TAILQ_HEAD(pending_list, pending_store);
TAILQ_HEAD(append_list, append);
TAILQ_HEAD(claim_list, claim);
TAILQ_HEAD(direct_list, direct);
TAILQ_HEAD(replay_list, replay);

/* A message of a room held back from one member while its replay runs. */
struct held {
	struct ac_frame		*frame;		/* a reference of ours */
	uint64_t		 seq;
	size_t			 len;		/* the frame's bytes */
	TAILQ_ENTRY(held)	 entry;
};
TAILQ_HEAD(held_list, held);

/*
 * One user in one room. Delivery reads only this node: the session handle
 * is copied here from the user (it does not change while the user is in a
 * room, and stays valid memory while this node exists: see chat_leave).
 */
struct member {
	TAILQ_ENTRY(member)	 in_room;	/* room->members */
	struct ac_session	*s;		/* the user's session */
	struct user		*user;
	struct room		*room;
	TAILQ_ENTRY(member)	 in_user;	/* user->rooms */
	uint64_t		 live_after;	/* seq up to which a replay
						   asked for covers */
	unsigned int		 replays;	/* 0, or 1: its replay */
	struct held_list	 held;		/* live messages meanwhile */
	unsigned int		 nheld;
	size_t			 held_bytes;
	int			 overflow;	/* too many: no longer held */
	struct replay_list	 tickets;	/* its replay asked for */
	unsigned int		 live_index;	/* in room->live */
};
TAILQ_HEAD(member_list, member);

/*
 * A session as chat knows it (what delivery reads first, together): one
 * of this server, or (cluster mode, remote.c) one of another server, a
 * remote user, which has no session here (s NULL) and is only in rooms
 * and in the nick table.
 */
struct user {
	struct ac_session	*s;		/* valid until its slot goes */
	int			 closing;	/* its session closed while chat
						   was busy: see chat_leave */
	int			 closed;	/* torn down: slot data only */
	int			 slot_gone;	/* its slot was destroyed */
	struct chat		*chat;
	char			 id[37];
	char			 nick[CHAT_NICK_BYTES + 1];
	char			 fnick[CHAT_NICK_BYTES + 1];	/* folded */
	struct member_list	 rooms;		/* join order: current last */
	unsigned int		 nrooms;
	int			 plain;		/* its session_ack knew nothing
						   of chat: see replay.c */
	uint64_t		 mark;		/* chat->gen when reached */
	int64_t			 cmd_tat;	/* budget: when it is full
						   again, microseconds */
	struct replay		*replaying;	/* the backend's, or NULL */
	struct replay_list	 waiting;	/* the others, in order */
	char			 reason[32];	/* why it closed */
	TAILQ_ENTRY(user)	 deferred;	/* chat->deferred */
	struct append_list	 appends;	/* its messages being stored */
	int			 remote;	/* another server's session */
	int			 indexed;	/* its nick is in chat->nicks */
	struct claim		*claiming;	/* its nick claim under way */
	char			 next_nick[CHAT_NICK_BYTES + 1];	/* /nick
						   after it ("": none) */
	struct direct_list	 directs;	/* its messages to remote users */
};
TAILQ_HEAD(user_list, user);

/*
 * A room that has members (or messages waiting to be stored).
 *
 * Besides the list of its members, a room keeps the sessions of those of
 * this server in an array (any order: a member leaving is replaced by the
 * last), which is what a message goes to when nothing holds it back from
 * any of them: nobody replaying, and its seq past every live_after there
 * has been (message_deliver). Walking the members' nodes instead, one
 * cache miss each, was a tenth of the plugin's whole cost per delivery.
 */
struct room {
	struct chat		*chat;
	char			 name[CHAT_ROOM_MAX + 1];	/* as shown */
	char			 fname[CHAT_ROOM_MAX + 1];	/* folded */
	uint64_t		 seq;		/* the last message's */
	struct member_list	 members;	/* join order */
	unsigned int		 nmembers;
	struct ac_session	**live;		/* local members' */
	struct member		**live_members;	/* their nodes */
	unsigned int		 nlive;
	unsigned int		 live_size;	/* allocated entries */
	unsigned int		 nreplaying;	/* replays > 0 */
	uint64_t		 live_after_max;	/* >= each live_after */
	struct pending_list	 pending;	/* sync = full: being stored */
	unsigned int		 npending;
};

/* A room message waiting for its store to complete (sync = full). */
struct pending_store {
	struct chat			*chat;
	struct room			*room;		/* NULL: room gone */
	struct ac_frame			*frame;		/* our reference */
	uint64_t			 seq;
	int				 done;
	TAILQ_ENTRY(pending_store)	 entry;		/* room->pending */
};
/*
 * A room message handed to a numbering backend (append.c): what makes its
 * frame, for whatever seq the backend gives it.
 */
struct append {
	struct chat		*chat;
	struct user		*user;		/* the sender; NULL: gone */
	char			 room[CHAT_ROOM_MAX + 1];
	char			 id[37];
	char			 nick[CHAT_NICK_BYTES + 1];
	enum ac_msg_type	 type;
	char			*content_type;
	uint8_t			*content;
	size_t			 len;
	struct json_object	*own;		/* sender's members, or NULL */
	int			 too_large;	/* make could not */
	TAILQ_ENTRY(append)	 in_chat;	/* chat->appends */
	TAILQ_ENTRY(append)	 in_user;	/* user->appends */
};

/* What a nick claim is for (remote.c). */
enum claim_kind {
	CLAIM_OPEN,		/* the nick a session opened with */
	CLAIM_GUEST,		/* a guest nick after losing one */
	CLAIM_NICK,		/* /nick */
};

/* A nick claim under way across the cluster (remote.c). */
struct claim {
	struct chat		*chat;
	struct user		*user;		/* NULL: gone */
	enum claim_kind		 kind;
	char			 id[37];		/* the user's */
	char			 nick[CHAT_NICK_BYTES + 1];
	TAILQ_ENTRY(claim)	 in_chat;	/* chat->claims */
};

/* A direct message on its way to another server (remote.c). */
struct direct {
	struct chat		*chat;
	struct user		*user;		/* the sender; NULL: gone */
	struct ac_frame		*frame;		/* our reference */
	enum chat_cmd		 cmd;
	char			 to[CHAT_NICK_BYTES + 1];
	TAILQ_ENTRY(direct)	 in_chat;	/* chat->directs */
	TAILQ_ENTRY(direct)	 in_user;	/* user->directs */
};

/*
 * A replay asked for: its query until the backend has it, then what its
 * completion needs. A user's replays go to the backend one at a time, a
 * plain user's each after a wait (replay.c).
 */
struct replay {
	struct chat		*chat;
	struct member		*member;	/* NULL: the member went */
	struct user		*user;		/* NULL: the user went */
	char			 room[CHAT_ROOM_MAX + 1];
	int			 has_since;
	uint64_t		 since;
	uint64_t		 count;
	uint64_t		 until;
	int			 waiting;	/* on user->waiting */
	struct event		*wait;		/* a plain user's, before its
						   time: not yet sent */
	int			 dedup;		/* held ones it sends: drop */
	TAILQ_ENTRY(replay)	 entry;		/* member->tickets */
	TAILQ_ENTRY(replay)	 queued;	/* user->waiting */
};

/*
 * The members a message gets from the server, as one object kept for the
 * next message of the same shape, and its values, set anew each time
 * (message_members): borrowed from the object.
 */
struct stamp {
	struct json_object	*o;
	struct json_object	*where;		/* room, or to */
	struct json_object	*from;
	struct json_object	*seq;		/* rooms only */
	struct json_object	*time;
};

/* The plugin's state. */
struct chat {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;

	char				 default_room[CHAT_ROOM_MAX + 1];
	unsigned int			 max_rooms;
	unsigned int			 command_rate;	/* 0: no budget */
	unsigned int			 command_burst;
	unsigned int			 max_rooms_listed;

	const struct ac_history		*history;	/* NULL: none */
	int				 numbers;	/* it numbers messages */
	struct append_list		 appends;	/* held by it */

	/* Cluster mode (remote.c): the link, and the other servers'
	 * sessions by id. */
	const struct ac_cluster		*cluster;	/* NULL: one server */
	struct ac_cluster_listener	 listener;
	struct hash			 remote;	/* id -> remote user */
	unsigned long			 nremote;
	struct claim_list		 claims;
	struct direct_list		 directs;

	struct hash			 nicks;		/* fnick -> user */
	struct hash			 rooms;		/* fname -> room */
	unsigned long			 nusers;
	unsigned long			 nmembers;
	uint64_t			 gen;		/* walk marks */

	/* Entry points in progress, and the users whose sessions closed
	 * meanwhile, torn down when the outermost one ends. */
	unsigned int			 depth;
	struct user_list		 deferred;

	/* The members of a room and of a direct message, set anew for each
	 * message without members of its own (message.c). */
	struct stamp			 stamp_room;
	struct stamp			 stamp_direct;

	/* The recipients of a room message, handed to relay_list. */
	struct ac_session		**relay;
	size_t				 nrelay;
	int				 relay_busy;

	/* The time string of the last second stamped, reused within it. */
	int64_t				 time_sec;
	char				 time_text[CHAT_TIME_LEN + 1];

	uint64_t			 counts[CHAT_C_COUNT];
	uint64_t			 commands[CHAT_CMD_COUNT];
	uint64_t			 errors[CHAT_ERR_COUNT];

	struct ac_metric		*m_counts[CHAT_C_COUNT];
	struct ac_metric		*m_commands[CHAT_CMD_COUNT];
	struct ac_metric		*m_errors[CHAT_ERR_COUNT];
	struct ac_metric		*m_users;
	struct ac_metric		*m_rooms;
	struct ac_metric		*m_members;
	struct ac_metric		*m_remote;
};

/* chat.c */
void		 chat_enter(struct chat *c);
void		 chat_leave(struct chat *c);
const char	*chat_cmd_name(enum chat_cmd cmd);
const char	*chat_err_token(enum chat_err err);
void		 chat_stamp_time(struct chat *c, char *out, int64_t *ms);
int		 chat_history_down(struct chat *c, char *why, size_t len);

/* user.c */
struct user	*user_of(struct chat *c, struct ac_session *s);
struct user	*user_open(struct chat *c, struct ac_session *s,
		    const char *nick);
void		 user_close(struct user *u, const char *reason);
void		 user_close_deferred(struct user *u);
struct user	*user_find(struct chat *c, const char *nick, size_t len);
int		 user_rename(struct user *u, const char *nick, size_t len);
void		 user_guest_nick(struct chat *c, const char *id, char *out,
		    size_t outlen);
struct member	*user_member(struct user *u, struct room *r);
struct member	*user_current(struct user *u);
void		 user_save_rooms(struct user *u);
void		 user_destroy(void *data);

/* room.c */
struct room	*room_find(struct chat *c, const char *name, size_t len);
struct member	*room_join(struct user *u, const char *name, size_t len);
void		 room_leave(struct member *m);
void		 room_live_after(struct member *m, uint64_t seq);
void		 room_replay_begin(struct member *m);
void		 room_replay_end(struct member *m);
void		 room_free_all(struct chat *c);
int		 room_count(struct chat *c);

/* event.c */
void	 event_reply(struct user *u, enum chat_cmd cmd, enum chat_err err,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	 event_reply_unknown(struct user *u, const char *command,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void	 event_reply_ok(struct user *u, enum chat_cmd cmd, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
void	 event_join(struct member *m);
void	 event_part(struct member *m);
void	 event_quit(struct user *u, const char *reason);
void	 event_nick(struct user *u, const char *old);
void	 event_names(struct user *to, struct room *r);
void	 event_rooms(struct user *to);
void	 event_history_end(struct user *to, const char *room, uint64_t seq,
	    uint64_t replayed, int truncated);

/* command.c */
int	 command_is(const struct ac_message *msg);
void	 command_run(struct user *u, const struct ac_message *msg);
#define CHAT_JOIN_QUIET	0x1	/* no reply when it goes well */
#define CHAT_JOIN_BARE	0x2	/* only the join event: no names, no replay */
int	 command_join(struct user *u, const char *room, size_t len,
	    int has_since, uint64_t since, int flags);

/* message.c */
struct json_object *message_members(struct chat *c, struct json_object *header,
	    const char *room, const char *to, const char *from, uint64_t seq,
	    const char *time);
struct json_object *message_own_members(const struct ac_message *msg);
void	 message_deliver(struct room *r, const struct ac_frame *f,
	    uint64_t seq);
void	 message_deliver_local(struct room *r, const struct ac_frame *f);
void	 message_route(struct user *u, const struct ac_message *msg,
	    const uint8_t *content, size_t content_len);
void	 message_direct(struct user *u, struct user *to,
	    const struct ac_message *msg, const uint8_t *content,
	    size_t content_len, enum chat_cmd cmd);
void	 message_room_gone(struct room *r);
uint64_t message_delivered(struct room *r);

/* replay.c */
void	 replay_start(struct member *m, int has_since, uint64_t since,
	    uint64_t count);
int	 replay_busy(struct member *m);
void	 replay_deliver(struct member *m, const struct ac_frame *f,
	    uint64_t seq);
void	 replay_member_gone(struct member *m);
void	 replay_user_gone(struct user *u);

/* remote.c */
int	 remote_ready(struct chat *c);
void	 remote_claim(struct user *u, enum claim_kind kind, const char *nick);
void	 remote_presence(struct user *u);
void	 remote_quit(struct user *u, const char *reason);
void	 remote_direct(struct user *u, struct user *to, struct ac_frame *f,
	    enum chat_cmd cmd);
void	 remote_user_gone(struct user *u);
void	 remote_unindex(struct user *u);
void	 remote_free_all(struct chat *c);

/* append.c */
void	 append_start(struct member *m, const struct ac_message *msg,
	    const uint8_t *content, size_t content_len);
void	 append_live(void *arg, const char *room, uint64_t seq,
	    const struct ac_frame *f);
void	 append_user_gone(struct user *u);
void	 append_free_all(struct chat *c);

#endif /* CHAT_CHAT_H */
