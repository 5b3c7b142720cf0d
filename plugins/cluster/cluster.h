/*
 * cluster.h - the cluster plugin's private structures and functions,
 * grouped by the file that defines them. Nothing here is installed.
 *
 * The plugin runs the chat layer across servers on NATS JetStream
 * (docs/SCALING.md, "Chat across servers", has the design). The pieces:
 *  - cluster.c: the plugin (options, init, ready, fini, metrics) and the
 *    two interfaces it publishes, history version 3 and cluster;
 *  - link.c: the connection, its states, the JetStream assets and
 *    subscriptions, and the jobs that use the connection;
 *  - mailbox.c: what libnats' threads hand to the loop thread;
 *  - table.c: string-keyed tables;
 *  - room.c: what is known of each room's last message, process-wide;
 *  - feed.c: the stored room messages, as they come, to chat;
 *  - append.c: room messages into the stream, numbered;
 *  - replay.c: replays from the stream;
 *  - presence.c: local sessions written to the presence bucket, the
 *    other servers' read from it, heartbeats and which nodes live;
 *  - nick.c: nick claims in the nicks bucket;
 *  - direct.c: direct messages to and from other servers.
 *
 * Threads. Everything here runs on the loop thread but the work
 * functions of jobs (on the server's workers), which touch only their
 * job's struct and libnats objects (thread-safe), and libnats' callbacks,
 * which touch only the mailbox.
 */
#ifndef CLUSTER_CLUSTER_H
#define CLUSTER_CLUSTER_H

#include <sys/queue.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <nats/nats.h>

#include <asyncchat/cluster.h>
#include <asyncchat/history.h>
#include <asyncchat/plugin.h>

#include "../natsconn.h"
#include "../roomname.h"

#define CLUSTER_ROOM_MAX	AC_HISTORY_ROOM_MAX
#define CLUSTER_NICK_MAX	128	/* bytes of a nick */
#define CLUSTER_ID_MAX		36	/* a session id */
#define CLUSTER_NODE_MAX	64	/* a node name */
#define CLUSTER_INST_LEN	16	/* hex digits of an instance id */

/* Defaults of the options (docs/SCALING.md). */
#define CLUSTER_DEFAULT_PREFIX		"asyncchat"
#define CLUSTER_DEFAULT_REPLICAS	1
#define CLUSTER_DEFAULT_REPLAY		50
#define CLUSTER_DEFAULT_MAX_REPLAY	1000
#define CLUSTER_DEFAULT_MAX_MESSAGES	10000
#define CLUSTER_DEFAULT_MAX_AGE		(30 * 86400)
#define CLUSTER_DEFAULT_HEARTBEAT	1
#define CLUSTER_DEFAULT_NODE_TIMEOUT	5
#define CLUSTER_DEFAULT_APPEND_TIMEOUT	10
#define CLUSTER_MAX_REPLAY_LIMIT	100000

/* How long a JetStream request may wait for its answer, in ms. */
#define CLUSTER_REQUEST_WAIT		2000

/* Presence entries expire after this unless written again (seconds). */
#define CLUSTER_PRESENCE_TTL		3600
#define CLUSTER_PRESENCE_REFRESH	900

/* Room messages waiting for the stream, per room, at most. */
#define CLUSTER_APPEND_QUEUE_MAX	4096

/* Bytes of frames one replay may queue (as the SQLite backend). */
#define CLUSTER_REPLAY_BYTES		(8u * 1024 * 1024)
#define CLUSTER_REPLAY_CHUNK		128

/* Inbound messages the loop takes from the mailbox per wake-up. */
#define CLUSTER_MAILBOX_BATCH		256
#define CLUSTER_MAILBOX_MAX_BYTES	(64u * 1024 * 1024)

/* Each wait in fini, in ms. */
#define CLUSTER_STOP_TIMEOUT		3000

/* The message headers the plugin sets on room messages. */
#define CLUSTER_HDR_SEQ		"Asyncchat-Seq"
#define CLUSTER_HDR_TO		"Asyncchat-To"
#define CLUSTER_HDR_ID		"Asyncchat-Id"

/* Message ids a reader remembers per room, to skip a repeat. */
#define CLUSTER_RECENT_IDS	64

/* JetStream's error code for a failed expected-sequence check. */
#define CLUSTER_JS_WRONG_LAST	10071

/* The plugin's options ([plugin.cluster]). */
struct cluster_options {
	char		 node[CLUSTER_NODE_MAX + 1];
	char		*prefix;
	int		 replicas;
	uint64_t	 replay;
	uint64_t	 max_replay;
	uint64_t	 max_messages;	/* 0: no limit */
	uint64_t	 max_age;	/* seconds; 0: no limit */
	uint64_t	 heartbeat;	/* seconds */
	uint64_t	 node_timeout;	/* seconds */
	uint64_t	 append_timeout;	/* seconds */
};

/* The names the options make (cluster.c). */
struct cluster_names {
	char	*stream;	/* N_rooms */
	char	*rooms;		/* P.room.* */
	char	*room_prefix;	/* P.room. */
	char	*nicks;		/* N_nicks (bucket) */
	char	*nicks_stream;	/* KV_N_nicks */
	char	*nicks_prefix;	/* $KV.N_nicks. */
	char	*presence;	/* N_presence (bucket) */
	char	*presence_stream;
	char	*presence_prefix;
	char	*hb;		/* P.hb */
	char	*direct;	/* P.direct.<node> */
	char	*direct_prefix;	/* P.direct. */
};

/* The metrics (cluster.c) and the counts behind them. */
enum cluster_count {
	CC_APPENDS,		/* room messages stored */
	CC_APPEND_CONFLICTS,	/* another server took the seq first */
	CC_APPEND_RETRIES,	/* publishes tried again (no answer) */
	CC_APPEND_FAILURES,	/* room messages not stored */
	CC_FEED,		/* stored room messages received */
	CC_FEED_REFUSED,	/* ... that did not verify */
	CC_REPLAYS,
	CC_REPLAY_FAILURES,
	CC_REPLAYED,		/* frames sent in replays */
	CC_CLAIMS,		/* nick claims made */
	CC_CLAIMS_TAKEN,	/* ... that someone else had */
	CC_DIRECT,		/* direct messages to other servers */
	CC_DIRECT_FAILURES,	/* ... without an answer */
	CC_PRESENCE_WRITES,	/* presence entries written */
	CC_NODES_LOST,		/* instances counted gone */
	CC_REFUSED,		/* entries, heartbeats not as a server
				   writes them */
	CC_COUNT
};

/* table.c: a table of entries keyed by strings. */
struct table_entry {
	char			*key;
	void			*value;
	struct table_entry	*next;
};
struct table {
	struct table_entry	**buckets;
	size_t			  nbuckets;
	size_t			  count;
};

void	 table_init(struct table *t);
void	 table_free(struct table *t);
void	*table_get(struct table *t, const char *key);
int	 table_put(struct table *t, const char *key, void *value);
void	*table_remove(struct table *t, const char *key);
void	**table_values(struct table *t, size_t *n);

/* mailbox.c: what libnats' threads hand to the loop. */
enum mail_kind {
	MAIL_FEED,		/* a stored room message */
	MAIL_KV,		/* a bucket entry */
	MAIL_HB,		/* a heartbeat */
	MAIL_DIRECT,		/* a direct message for a local session */
	MAIL_UP,		/* the connection is up (again) */
	MAIL_DOWN,		/* the connection is lost; libnats retries */
	MAIL_CLOSED,		/* libnats gave the connection up */
	MAIL_ERROR,		/* an asynchronous error */
};

/* One piece of mail. */
struct mail {
	struct mail		*next;
	enum mail_kind		 kind;
	struct link		*link;	/* which connection (not a ref) */
	char			*subject;	/* subject or key */
	char			*reply;		/* reply subject */
	char			*hdr;		/* a header value */
	char			*mid;		/* feed: its Asyncchat-Id */
	int			 deleted;	/* KV: a delete or purge */
	int			 bucket;	/* KV: 0 nicks, 1 presence */
	uint64_t		 sseq;		/* stream sequence */
	uint64_t		 pending;	/* the consumer's */
	size_t			 len;
	uint8_t			*data;
};

struct mailbox {
	pthread_mutex_t		 mu;
	struct mail		*head;
	struct mail		*tail;
	size_t			 bytes;
	int			 signalled;
	uint64_t		 overflow;
	int			 efd;
	struct event		*ev;
};

struct cluster;
int	 mailbox_init(struct cluster *cl);
void	 mailbox_free(struct mailbox *mb);
void	 mailbox_post(struct mailbox *mb, struct mail *m);
struct mail *mail_new(enum mail_kind kind, struct link *l,
	    const char *subject, const void *data, size_t len);
void	 mail_free(struct mail *m);

/* link.c: the connection. */
enum link_state {
	LINK_CONNECTING,	/* the first connect is under way */
	LINK_UP,		/* connected */
	LINK_RECONNECTING,	/* lost, for less than append_timeout */
	LINK_DOWN,		/* never up, or lost for longer */
};

/* The subscriptions of a connection. */
enum link_sub {
	SUB_FEED,
	SUB_NICKS,
	SUB_PRESENCE,
	SUB_HB,
	SUB_DIRECT,
	SUB_COUNT
};

/*
 * One connection and its JetStream context. Jobs hold a reference (loop
 * thread counts); the link is destroyed once retired and unreferenced.
 */
struct link {
	struct cluster		*cl;
	natsConnection		*nc;
	jsCtx			*js;
	unsigned int		 refs;
	int			 retired;
	int			 ready;	/* assets and subscriptions set up */
	int			 setting_up;
	natsSubscription	*subs[SUB_COUNT];
	int			 sub_done[SUB_COUNT];	/* under mu */
	int			 closed;		/* under mu */
	uint64_t		 pub_errors;	/* under mu: async publishes
						   that failed */
	pthread_mutex_t		 mu;
	pthread_cond_t		 cond;
	TAILQ_ENTRY(link)	 entry;
};
TAILQ_HEAD(link_list, link);

int	 link_init(struct cluster *cl);
int	 link_start(struct cluster *cl);
int	 link_stop(struct cluster *cl);
int	 link_ready(struct cluster *cl);
int	 link_usable(struct cluster *cl);
int	 link_submit(struct cluster *cl, struct ac_session *s, int flags,
	    ac_job_work_fn work, ac_job_done_fn done, void *arg,
	    struct link **lp);
void	 link_release(struct cluster *cl, struct link *l);
void	 link_mail(struct cluster *cl, struct mail *m);
void	 link_tick(struct cluster *cl);
uint64_t link_up_for(struct cluster *cl);
const char *link_state_name(enum link_state st);

/* room.c: each room as the feed has met it, process-wide. */
struct room_state {
	char		 fname[CLUSTER_ROOM_MAX + 1];
	char		 name[CLUSTER_ROOM_MAX + 1];
	uint64_t	 seq;		/* the last seq that counted */
	uint64_t	 sseq;		/* the room's last message's stream
					   sequence */
	int		 known;		/* met by the feed, or settled */
	char		 recent[CLUSTER_RECENT_IDS][48];	/* ids taken */
	unsigned int	 nrecent;
};

void	 room_hold(void);
void	 room_release(void);
void	 room_subject_token(char *out, size_t outlen, const char *fname);
int	 room_from_token(char *out, size_t outlen, const char *token);
struct room_state *room_get(const char *fname);
int	 room_feed(const char *fname, const char *name, uint64_t sseq,
	    uint64_t seq, const char *id);
void	 room_settle(const char *fname, const char *name, uint64_t seq,
	    uint64_t sseq);
uint64_t room_feed_next(void);
void	 room_feed_begin(uint64_t start);
void	 room_feed_seen(uint64_t sseq);

/* feed.c */
void	 feed_mail(struct cluster *cl, struct mail *m);

/* append.c */
struct aroom;
void	 append_feed(struct cluster *cl, const char *fname, const char *id,
	    uint64_t sseq, uint64_t seq, int counts);
int	 append_start(struct cluster *cl, const char *room,
	    ac_history_make_fn make, ac_history_appended_fn done, void *arg);
void	 append_kick_all(struct cluster *cl);
void	 append_link_down(struct cluster *cl);
void	 append_tick(struct cluster *cl);
void	 append_free_all(struct cluster *cl);

/* replay.c */
int	 replay_start(struct cluster *cl, struct ac_session *s,
	    const struct ac_history_query *q, ac_history_replayed_fn done,
	    void *arg);

/* presence.c */
void	 presence_local(struct cluster *cl, const struct ac_cluster_session *s);
void	 presence_quit(struct cluster *cl, const char *id, const char *reason);
void	 presence_mail(struct cluster *cl, struct mail *m);
void	 presence_hb(struct cluster *cl, struct mail *m);
void	 presence_tick(struct cluster *cl);
void	 presence_link_up(struct cluster *cl);
void	 presence_begin(struct cluster *cl);
void	 presence_initial(struct cluster *cl, int empty);
void	 presence_initial_done(struct cluster *cl);
void	 presence_note_inst(struct cluster *cl, const char *inst,
	    const char *node);
const char *presence_node_of(struct cluster *cl, const char *id);
int	 presence_inst_state(struct cluster *cl, const char *inst);
void	 presence_free_all(struct cluster *cl);
size_t	 presence_nodes_alive(struct cluster *cl);
size_t	 presence_remote_count(struct cluster *cl);
#define INST_ALIVE	0
#define INST_DEAD	1
#define INST_UNKNOWN	2

/* nick.c */
int	 nick_claim(struct cluster *cl, const char *id, const char *nick,
	    ac_cluster_done_fn done, void *arg);
void	 nick_release(struct cluster *cl, const char *id, const char *nick);
void	 nick_mail(struct cluster *cl, struct mail *m);
void	 nick_kick_all(struct cluster *cl);
void	 nick_instance_dead(struct cluster *cl, const char *inst);
void	 nick_tick(struct cluster *cl);
void	 nick_free_all(struct cluster *cl);

/* direct.c */
int	 direct_send(struct cluster *cl, const char *to,
	    const struct ac_frame *f, ac_cluster_done_fn done, void *arg);
void	 direct_mail(struct cluster *cl, struct mail *m);

/* cluster.c */

/* The plugin's state, one per instance. */
struct cluster {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	struct cluster_options		 opt;
	struct cluster_names		 names;
	struct natsconn			 conn;
	natsOptions			*nopts;
	char				 instance[CLUSTER_INST_LEN + 1];
	int64_t				 start_ms;	/* of the process */

	/* The link (link.c). */
	struct link			*link;		/* current, or NULL */
	struct link_list		 retired;
	enum link_state			 state;
	struct timespec			 state_since;	/* monotonic */
	struct timespec			 up_since;
	int				 connecting;	/* a connect job */
	struct event			*reconnect_ev;
	uint64_t			 setup_failures;
	time_t				 setup_logged;
	struct event			*tick_ev;
	int				 stopping;

	struct mailbox			 mb;

	/* What the plugin publishes, and chat's side of it. */
	struct ac_history		 history;
	struct ac_cluster		 iface;
	ac_history_live_fn		 live;
	void				*live_arg;
	struct ac_cluster_listener	 listener;
	int				 listening;

	/* append.c: rooms with messages waiting for the stream. */
	struct table			 arooms;
	uint64_t			 feed_start;	/* the feed's first */

	/* presence.c */
	struct table			 locals;	/* id -> local session */
	struct table			 remotes;	/* id -> remote session */
	struct table			 insts;		/* inst -> instance */
	int				 presence_initial;
	int				 presence_busy;	/* a write job */
	int				 presence_dirty;
	struct event			*presence_ev;

	/* nick.c */
	struct table			 claims;	/* key -> claim seen */
	struct table			 wants;		/* id -> claim under way */
	struct table			 owned;		/* key -> ours */
	unsigned int			 janitor_busy;

	/* feed.c */
	uint64_t			 bad_streak;
	time_t				 refused_logged;	/* cluster_refuse */

	uint64_t			 counts[CC_COUNT];
	struct ac_metric		*m_counts[CC_COUNT];
	struct ac_metric		*m_link_up;
	struct ac_metric		*m_nodes;
	struct ac_metric		*m_remote;
	struct ac_metric		*m_waiting;
};

/* Nanoseconds per second. */
#define CLUSTER_NS	1000000000LL

int64_t	 cluster_now_ms(void);
void	 cluster_next_id(char *out, size_t outlen);
void	 cluster_refuse(struct cluster *cl, const char *what,
	    const char *key, const char *why);
uint64_t cluster_elapsed_ms(const struct timespec *since);
void	 cluster_hex(char *out, size_t outlen, const char *s, size_t len);
int	 cluster_header_u64(natsMsg *m, const char *name, uint64_t *out);
struct json_object;
struct json_object *cluster_json(const void *data, size_t len);

#endif /* CLUSTER_CLUSTER_H */
