/*
 * server.h - asyncchatd's private structures and functions, grouped by the
 * file that defines them (tmux.h style). Nothing here is installed.
 *
 * Longer than 700 lines on purpose: it is the one header of the server,
 * the index of every file's structures and entry points in one place, as
 * tmux.h is for tmux; a header per file would scatter the structures
 * that several files share (struct server, struct ac_session).
 */
#ifndef AC_SERVER_SERVER_H
#define AC_SERVER_SERVER_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <asyncchat/frame.h>
#include <asyncchat/key.h>
#include <asyncchat/plugin.h>
#include <asyncchat/uuid.h>

struct bufferevent;
struct evbuffer;
struct server;
struct event;
struct event_base;
struct evconnlistener;
struct ssl_ctx_st;
struct webroot;

/* config.c */
/*
 * Until a session has sent its session_ack, only frames this small are
 * accepted (or the configured limits, if lower): the handshake needs about
 * 120 header bytes and 20 content bytes, and a peer without the key must
 * not make the server buffer, or compute an HMAC over, anything larger.
 */
#define AC_PREACK_MAX_HEADER		4096u
#define AC_PREACK_MAX_CONTENT		1024u

#ifndef AC_PLUGINDIR
#define AC_PLUGINDIR "/usr/local/lib/asyncchat/plugins"
#endif
#ifndef AC_CONFFILE
#define AC_CONFFILE "/usr/local/etc/asyncchat.conf"
#endif
#ifndef AC_WEBROOT
#define AC_WEBROOT "/usr/local/share/asyncchat/web"
#endif

enum ac_listen_type {
	AC_LISTEN_TCP,
	AC_LISTEN_UNIX,
	AC_LISTEN_TLS,		/* tcp with TLS on top */
	AC_LISTEN_WS,		/* HTTP: the web page and WebSocket at /ws */
	AC_LISTEN_WSS,		/* the same with TLS on top */
};

/* One `listen =` line, parsed. */
struct ac_listen_conf {
	char			*url;	/* as written; identity across reloads */
	int			 line;
	enum ac_listen_type	 type;
	char			*host;	/* tcp, tls, ws, wss: no brackets */
	char			*port;	/* tcp, tls, ws, wss */
	char			*path;	/* unix */
};

/* One plugin named in a `load =` line, in chain order. */
struct ac_plugin_conf {
	char	*name;
	char	*path;
	int	 line;
};

/* One [plugin.NAME] section (repeated sections are merged). */
struct ac_plugin_section {
	char			*name;
	int			 line;
	struct ac_plugin_option	*opts;	/* key and value are owned */
	size_t			 nopts;
};

/* An address given as numbers (metrics_listen), resolved when read. */
struct config_addr {
	char			*text;	/* as written; NULL: none */
	struct sockaddr_storage	 ss;
	socklen_t		 len;
};

/*
 * A configuration. The [server] keys are described by config_keys[]
 * (config_key.c), which says where in here each one is kept.
 */
struct ac_config {
	char			*path;

	struct ac_listen_conf	*listen;
	size_t			 nlisten;
	int			 backlog;
	mode_t			 unix_mode;

	char			*hmac_key;	/* as written, until loaded */
	char			*hmac_key_file;
	struct ac_key		*key;
	int			 key_is_default;
	char			*tls_cert;
	char			*tls_key;
	char			*tls_client_ca;
	struct ssl_ctx_st	*tls_ctx;	/* NULL: no tls:// or wss://
						   listener */
	struct timeval		 handshake_timeout;
	struct timeval		 heartbeat_timeout;
	unsigned int		 max_clients;
	uint32_t		 max_header_size;
	uint64_t		 max_content_size;
	uint64_t		 max_output_buffer;
	unsigned int		 max_errors;
	unsigned int		 max_clients_per_ip;	/* 0: no limit */
	uint64_t		 max_message_rate;	/* frames/s; 0: off */
	uint64_t		 max_byte_rate;		/* bytes/s; 0: off */
	struct timeval		 rate_burst;
	unsigned int		 rate_limit_disconnect;	/* 0: never */
	unsigned int		 worker_threads;	/* plugins' jobs */
	unsigned int		 worker_queue;
	uint64_t		 max_memory;	/* all sessions' buffers */

	char			*log;	/* "stderr", "syslog" or a path */
	enum ac_log_level	 log_level;
	char			*plugin_dir;
	char			*pid_file;	/* NULL: none */
	struct config_addr	 metrics_listen; /* text NULL: off */
	char			*web_root;	/* NULL: none */
	char			*web_origins;	/* NULL: the page's own */
	struct webroot		*web;		/* its files; NULL: none, or
						   no ws:// or wss:// listener */

	struct ac_plugin_conf	*plugins;
	size_t			 nplugins;
	struct ac_plugin_section *sections;
	size_t			 nsections;

	/* Things worth saying that do not refuse the file; the caller logs
	 * them once the log is set up. */
	char			**warnings;
	size_t			 nwarnings;
};

/*
 * Read and validate the file at path. Returns 0 and sets *cfgp, or -1 and
 * sets *cause to every error found, one "FILE:LINE: [section] key: what"
 * per line (heap string for the caller to free).
 */
int	config_load(const char *path, struct ac_config **cfgp, char **cause);

/* Free a configuration; NULL is allowed. */
void	config_free(struct ac_config *cfg);

/* Add a warning for the caller of config_load to log. */
void	config_warn(struct ac_config *cfg, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* The [plugin.NAME] section for name, or NULL if there is none. */
const struct ac_plugin_section *config_find_section(
	    const struct ac_config *cfg, const char *name);

/* config_key.c */

/* What a [server] value is, which says how it is parsed and kept. */
enum config_type {
	CONFIG_COUNT,		/* a whole number, min to max */
	CONFIG_SIZE,		/* bytes, with a K, M or G suffix; min to max */
	CONFIG_SECONDS,		/* struct timeval; min to max microseconds */
	CONFIG_MODE,		/* octal permissions, at most max */
	CONFIG_CHOICE,		/* one of choices[], kept as its index */
	CONFIG_STRING,		/* a heap string, not empty */
	CONFIG_ADDRESS,		/* struct config_addr: numeric ADDR:PORT */
	CONFIG_LISTEN,		/* a listen URL, added to cfg->listen */
};

/*
 * One [server] key: its name, the form of its value and its bounds, its
 * default (written as in the file, so it goes through the same parser),
 * where config_load keeps it, and one line of help saying what a value
 * looks like, which an error quotes after "expected". The table is
 * config_keys[]; adding a key is a row there plus the code that uses it.
 */
struct config_key {
	const char		*name;
	enum config_type	 type;
	int			 flags;
#define CONFIG_MULTI	0x1	/* may be repeated (listen) */
#define CONFIG_START	0x2	/* read at start only: a reload keeps it */
#define CONFIG_SECRET	0x4	/* the value is never quoted */
#define CONFIG_NONE	0x8	/* "none" leaves it unset */
	uint64_t		 min;
	uint64_t		 max;
	const char		*def;		/* NULL: unset */
	size_t			 offset;	/* in struct ac_config */
	size_t			 size;		/* of that member */
	const char *const	*choices;	/* CONFIG_CHOICE, NULL-ended */
	int			(*check)(const char *);	/* CONFIG_STRING */
	const char		*help;
};

extern const struct config_key	config_keys[];
extern const size_t		config_nkeys;

const struct config_key *config_key_find(const char *name);
int	config_key_set(struct ac_config *cfg, const struct config_key *k,
	    const char *value, int line, char *why, size_t whylen);
void	config_key_defaults(struct ac_config *cfg);
void	config_key_keep_start(struct ac_config *cfg,
	    const struct ac_config *running);
void	config_key_free(struct ac_config *cfg);
int	config_parse_size(const char *s, uint64_t *out);
int	config_parse_seconds(const char *s, struct timeval *tv);

/* secret.c */
struct stat;
int	secret_mode(const struct stat *st, char *why, size_t len);
struct ac_key *secret_read_file(const char *path, char *why, size_t len);

/* stats.c */

/*
 * Why a session ended, with the token that names it in the "closed
 * reason=" log line, to plugins' session_close and as the metrics label.
 * The enum, its count and the tokens (stats.c) are made from this one
 * list, so a reason cannot lack a token; asyncchatd(8) lists them all
 * (tests/unit/test_names.c checks that it does).
 */
#define AC_CLOSE_REASONS(X)						\
	X(CLIENT_DISCONNECT,	"client-disconnect")			\
	X(HANDSHAKE_TIMEOUT,	"handshake-timeout")			\
	X(HEARTBEAT_TIMEOUT,	"heartbeat-timeout")			\
	X(PROTOCOL_ERROR,	"protocol-error")			\
	X(TOO_MANY_ERRORS,	"too-many-errors")			\
	X(SLOW_CONSUMER,	"slow-consumer")			\
	X(SERVER_FULL,		"server-full")				\
	X(EOF,			"eof")					\
	X(IO_ERROR,		"io-error")				\
	X(SERVER_SHUTDOWN,	"server-shutdown")			\
	X(PLUGIN,		"plugin")				\
	X(TLS_ERROR,		"tls-error")				\
	X(PER_IP_LIMIT,		"per-ip-limit")				\
	X(RATE_LIMIT,		"rate-limit")				\
	X(MEMORY_LIMIT,		"memory-limit")

#define AC_CLOSE_ENUM(name, token)	AC_CLOSE_##name,
enum ac_close_reason {
	AC_CLOSE_REASONS(AC_CLOSE_ENUM)
	AC_CLOSE_COUNT
};
#undef AC_CLOSE_ENUM

/*
 * The errors the server answers that are not frame decoding statuses,
 * with the token the error frame carries (its "error" member and the
 * start of its text) and the metrics label; one list again, and
 * docs/PROTOCOL.md names every token.
 */
#define AC_SESSION_ERRORS(X)						\
	X(SESSION_MISMATCH,	"session_mismatch")			\
	X(NOT_ACKNOWLEDGED,	"not_acknowledged")			\
	X(SERVER_FULL,		"server_full")				\
	X(TOO_MANY_CONNECTIONS,	"too_many_connections")			\
	X(RATE_LIMITED,		"rate_limited")				\
	X(UNEXPECTED_FRAME,	"unexpected_frame")

#define AC_SERR_ENUM(name, token)	AC_SERR_##name,
enum ac_session_error {
	AC_SESSION_ERRORS(AC_SERR_ENUM)
	AC_SERR_COUNT
};
#undef AC_SERR_ENUM

/*
 * The frame decoding statuses and their tokens are the library's
 * (asyncchat/frame.h): the errors are counted up to the last status this
 * server was written for; stats_frame_error() ignores any later one
 * rather than count past the array.
 */
#define AC_FRAME_STATUS_COUNT (AC_FRAME_EMPTY_CONTENT + 1)

/*
 * A latency histogram: observations in nanoseconds, counted in the first
 * bucket whose bound they do not exceed (not cumulative; the metrics
 * endpoint adds them up) or, past the last bound, only in count.
 */
#define AC_HIST_BUCKETS 11
struct ac_histogram {
	uint64_t	buckets[AC_HIST_BUCKETS];
	uint64_t	count;
	uint64_t	nsec;			/* sum */
};

/*
 * Counters for the metrics endpoint. Plain integers: there is one
 * thread, and a reader takes a copy between events.
 */
struct ac_stats {
	uint64_t	sessions_current;	/* connected, not closed */
	uint64_t	sessions_acked;		/* of those, handshaken */
	uint64_t	sessions_total;		/* accepted since start */
	uint64_t	frames_in[AC_MSG_TYPE_COUNT];
	uint64_t	frames_out[AC_MSG_TYPE_COUNT];
	uint64_t	bytes_in;
	uint64_t	bytes_out;		/* queued for sending */
	uint64_t	frame_errors[AC_FRAME_STATUS_COUNT];
	uint64_t	session_errors[AC_SERR_COUNT];
	uint64_t	closes[AC_CLOSE_COUNT];
	uint64_t	plugin_errors;
	uint64_t	reloads;
	uint64_t	reload_failures;
	int64_t		start_time;		/* Unix seconds */
	struct ac_histogram chain;		/* whole chain, per message */
};

/*
 * Each plugin's counters, kept by name for the life of the process so
 * that a SIGHUP that reloads the plugins does not reset them.
 */
struct ac_plugin_stats {
	char				*name;
	uint64_t			 calls;
	uint64_t			 errors;
	struct ac_histogram		 time;
	TAILQ_ENTRY(ac_plugin_stats)	 entry;
};
TAILQ_HEAD(ac_plugin_stats_list, ac_plugin_stats);

const char	*stats_reason_name(enum ac_close_reason reason);
const char	*stats_error_name(enum ac_session_error error);
void		 stats_frame_error(struct ac_stats *stats,
		     enum ac_frame_status status);
void		 stats_log(const struct ac_stats *stats);
const char	*stats_hist_le(unsigned int bucket);
void		 stats_observe(struct ac_histogram *h, uint64_t nsec);
uint64_t	 stats_elapsed(const struct timespec *from,
		     const struct timespec *to);
struct ac_plugin_stats *stats_plugin(struct ac_plugin_stats_list *list,
		     const char *name);
void		 stats_plugins_free(struct ac_plugin_stats_list *list);

/* ratelimit.c */

/* A session's token buckets and its record of dropped frames. */
struct ratelimit {
	int64_t		msg_tokens;	/* millionths of a frame */
	int64_t		byte_tokens;	/* millionths of a byte */
	struct timeval	last;		/* last refill */
	struct timeval	last_drop;
	struct timeval	last_reply;	/* last rate_limited error sent */
	int		replied;	/* last_reply is set */
	unsigned int	drops;		/* with no calm second between */
	uint64_t	dropped;	/* in all */
};

enum ratelimit_verdict {
	RATELIMIT_PASS,
	RATELIMIT_DROP,		/* drop it quietly: the peer was told */
	RATELIMIT_DROP_REPLY,	/* drop it and send a rate_limited error */
	RATELIMIT_ABUSE,	/* rate_limit_disconnect reached: close */
};

void	ratelimit_init(struct ratelimit *rl, const struct timeval *now);
enum ratelimit_verdict ratelimit_frame(struct ratelimit *rl,
	    const struct ac_config *cfg, const struct timeval *now,
	    size_t bytes, const char **which);

/* iplimit.c */

/* Connections per client address: a chained hash table. */
struct iplimit_entry;
struct iplimit {
	struct iplimit_entry	**buckets;	/* NULL until first used */
	size_t			  nbuckets;
	size_t			  count;	/* entries */
};

int	iplimit_acquire(struct iplimit *t, const struct sockaddr *sa,
	    unsigned int max, struct iplimit_entry **ep);
void	iplimit_release(struct iplimit *t, struct iplimit_entry *e);
void	iplimit_log_refusal(struct iplimit_entry *e, const char *peer,
	    unsigned int max, const struct timeval *now);
void	iplimit_free(struct iplimit *t);

/* memory.c */

/*
 * A frame as verified bytes, shared by reference among every output
 * buffer it is queued to and every plugin that keeps it; freed when the
 * last one lets go. (The functions keep the name plugin.h gives the
 * struct.)
 *
 * A received frame is borrowed: its bytes are where the connection's
 * input holds them, decoded in place, and it lives in a struct from a
 * small pool. Whatever would outlive the input's bytes (a plugin's
 * reference or frame_bytes(), an output buffer's reference, the input
 * going away under it) first makes it own a copy (ac_frame_own()), so
 * that a frame's bytes, once seen outside dispatch, never move.
 */
struct ac_frame {
	unsigned int	 refs;
	int		 type;		/* enum ac_msg_type, or -1 */
	int		 flags;
#define AC_FRAME_BORROWED 0x1	/* bytes are a connection's input */
#define AC_FRAME_POOLED	  0x2	/* the struct returns to the pool */
#define AC_FRAME_COPIED	  0x4	/* bytes are a heap copy of their own */
	unsigned int	 queued;	/* output buffers it was queued to */
	size_t		 len;
	uint8_t		*bytes;
	struct ac_frame	*next;		/* in the pool */
	uint8_t		 data[];	/* bytes of ac_frame_new()'s frames */
};

struct ac_frame	*ac_frame_new(size_t len, int type);
struct ac_frame	*ac_frame_borrow(const uint8_t *bytes, size_t len);
void		 ac_frame_own(struct ac_frame *f);
struct ac_frame	*ac_frame_ref(struct ac_frame *f);
void		 ac_frame_unref(struct ac_frame *f);
int		 ac_frame_share(struct ac_frame *f, struct evbuffer *out);
void		 ac_frame_pool_free(void);
void	memory_init(struct server *srv);
void	memory_add(struct server *srv, size_t n);
uint64_t memory_total(struct server *srv);

/* conn.c */

/*
 * A session's connection: how its bytes come and go. The session and its
 * protocol (session.c, dispatch.c) see two buffers and the operations
 * below, never a socket:
 *
 *	in	bytes received and not yet framed. The transport appends what
 *		arrives and calls dispatch_input(); dispatch removes whole
 *		frames from the front and says how much it needs next (want).
 *	out	frames queued and not yet sent. The session appends whole
 *		frames (first calling frame, if the transport has it), then
 *		kick; the transport writes from the front. A transport may
 *		keep its output itself instead (write, share, pending):
 *		conn.c copies frames into blocks per socket, as Redis
 *		builds its replies, which costs less per frame than an
 *		evbuffer chain, and keeps out for frames shared by
 *		reference.
 *
 * A transport calls back: dispatch_input() when bytes arrived (or
 * dispatch_bytes() for bytes in memory of its own while in is empty),
 * session_close() when the peer is gone or the connection failed (with
 * CONN_BROKEN set if nothing more can be written), and session_finish()
 * once a closing session's output is written or can never be (linger).
 * Frames are decoded where they lie in the input: it must not change
 * while dispatch runs (a transport appends to it only in its own read
 * callbacks, before dispatching).
 *
 * conn.c implements it for sockets: tcp and unix with events and buffers
 * of their own (a read lands in one buffer shared by all of them and
 * goes to dispatch_bytes(); the output is blocks of copied frames, then
 * out), tls as a bufferevent_openssl whose buffers are in and out. A
 * WebSocket transport fits the same way: on the
 * same event loop it reads the WebSocket frames from its own socket
 * bufferevent, unmasks each binary message's payload into an in buffer
 * of its own and calls dispatch_input(), which frames the stream exactly
 * as on TCP (frames may span messages, or share one). For output it
 * makes out its socket bufferevent's output, and its frame operation
 * writes a binary message header for the len bytes that follow, so each
 * protocol frame leaves as one message without a copy; kick, linger,
 * discard and free are its socket's. Nothing of the session, the
 * framing, the dispatch or the plugins changes; the session's transport
 * name ("ws", "wss") is given to session_open().
 */
struct conn;

struct conn_ops {
	/* The session is registered: start reading. */
	void	(*start)(struct conn *c);
	/* dispatch_input() needs need bytes in to progress; in may hold up
	 * to high (one largest frame), reading stops beyond. */
	void	(*want)(struct conn *c, size_t need, size_t high);
	/* Run dispatch_input() again on a later loop turn. */
	void	(*defer)(struct conn *c);
	/* A whole frame of len bytes is about to be added to out; NULL for
	 * a byte stream, which needs nothing around it. */
	void	(*frame)(struct conn *c, size_t len);
	/* Frames were added to out: write them soon (this loop turn). */
	void	(*kick)(struct conn *c);
	/* The session is closing with frames in out: stop reading, write
	 * them, and call session_finish() when done or when the peer goes. */
	void	(*linger)(struct conn *c);
	/* Drop what out holds unsent (max_memory); 1 if there was some. */
	int	(*discard)(struct conn *c);
	/* Close the connection (discarding unread input first if the
	 * session asks, AC_SESS_DRAIN) and free c. */
	void	(*free)(struct conn *c);
	/* Optional, all three or none: a transport that keeps its output
	 * itself. write adds len bytes (whole frames, after frame); share
	 * adds a frame by reference (ac_frame_share()); pending says how
	 * many bytes are queued and not sent. With them the session never
	 * touches out. NULL: evbuffer_add() or ac_frame_share() to out,
	 * and out's length. write and share return 0 or -1. */
	int	(*write)(struct conn *c, const void *data, size_t len);
	int	(*share)(struct conn *c, struct ac_frame *f);
	size_t	(*pending)(struct conn *c);
};

struct conn {
	const struct conn_ops	*ops;
	struct ac_session	*s;
	struct evbuffer		*in;
	struct evbuffer		*out;
	int			 flags;
#define CONN_BROKEN	0x1	/* failed: nothing more can be written */
};

struct conn *conn_socket_new(struct server *srv, int fd,
	    struct ssl_ctx_st *tls, const char *peer);
void		 conn_pool_free(void);

/* webroot.c */

/* One file of web_root, held in memory. */
struct webroot_file {
	char		*name;		/* relative: "index.html", "js/ui.js" */
	const char	*type;		/* its Content-Type */
	uint8_t		*data;
	size_t		 len;
	char		 etag[24];	/* "\"" 16 hex digits "\"" */
};

/*
 * The files of web_root, read once (at start and on SIGHUP) and shared
 * by reference with the responses that are being written: a reload
 * makes a new one, and the old one goes with its last response.
 */
struct webroot {
	unsigned int		 refs;
	char			*path;
	struct webroot_file	*files;		/* sorted by name */
	size_t			 nfiles;
	size_t			 bytes;
	size_t			 skipped;	/* entries not served */
	char			*skipped_first;	/* the first of them, and why */
};

#define WEBROOT_MAX_FILES	1024
#define WEBROOT_MAX_BYTES	(16 * 1024 * 1024)
#define WEBROOT_MAX_DEPTH	8

int	webroot_load(const char *path, struct webroot **wp, char **cause);
const struct webroot_file *webroot_find(const struct webroot *w,
	    const char *name);
struct webroot *webroot_ref(struct webroot *w);
void	webroot_unref(struct webroot *w);
const char *webroot_type(const char *name);

/* origin.c */
int	origin_list_check(const char *list);
int	origin_allowed(const char *list, const char *origin, int tls,
	    const char *host, int loopback);
int	origin_host_is_loopback(const char *host);

/* http.c */
#define HTTP_MAX_LINE		4096	/* request line */
#define HTTP_MAX_HEAD		8192	/* request line and headers */
#define HTTP_MAX_HEADERS	64
#define HTTP_MAX_REQUESTS	100	/* on one connection */

struct listener;
struct http_conn;
TAILQ_HEAD(http_conns, http_conn);

void	http_accept(struct listener *l, int fd, struct sockaddr *sa,
	    socklen_t salen);
void	http_close_all(struct server *srv);
void	http_metrics_write(struct server *srv, struct evbuffer *b);

/* ws.c */
struct conn *ws_conn_new(struct server *srv, struct bufferevent *bev,
	    int tls);

/* dispatch.c */
void	dispatch_input(struct ac_session *s, int final);
void	dispatch_bytes(struct ac_session *s, const uint8_t *p, size_t len,
	    int final);
void	dispatch_release(struct ac_session *s);
size_t	dispatch_frame_max(struct ac_session *s);

/* session.c */

/* One plugin's data on a session. */
struct session_slot {
	void	*data;
	void	(*destroy)(void *);
};

struct ac_session {
	struct server		*srv;
	char			 id[AC_UUID_STRLEN + 1];
	char			 peer[64];
	const char		*transport;	/* "tcp", "unix", "tls", "ws"
						   or "wss" */

	struct conn		*conn;		/* NULL once finished */
	struct event		*timer;		/* handshake, then heartbeat */
	struct event		*linger;	/* bounds the final flush */

	int			 flags;
#define AC_SESS_DEAD	 0x1	/* closed: no more input, no more output */
#define AC_SESS_ACKED	 0x2	/* session_ack received */
#define AC_SESS_OPENED	 0x4	/* plugins were told session_open */
#define AC_SESS_REJECTED 0x8	/* over max_clients: never registered */
#define AC_SESS_LINGER	 0x10	/* flushing its last frames */
#define AC_SESS_NOSLOTS	 0x20	/* plugin slots torn down for good */
#define AC_SESS_DRAIN	 0x80	/* discard unread input before closing */

	unsigned int		 refs;
	unsigned int		 errors;	/* in a row */
	struct iplimit_entry	*ip;		/* NULL: unix or not counted */
	struct ratelimit	 rl;

	struct session_slot	*slots;
	size_t			 nslots;
	size_t			 need;		/* length of the frame being
						   received, 0 if none */
	struct timespec		 active;	/* last valid frame, coarse
						   monotonic (session_touch) */

	TAILQ_ENTRY(ac_session)	 entry;		/* registry or linger list */
	struct ac_session	*hash_next;	/* registry bucket chain */
	TAILQ_ENTRY(ac_session)	 dead_entry;	/* waiting to be freed */

	struct attr_set		*attrs;		/* attr.c; freed at close */
};
TAILQ_HEAD(ac_sessions, ac_session);

void	session_format_peer(const struct sockaddr *sa, char *out,
	    size_t outlen);
void	session_accept(struct server *srv, int fd, struct sockaddr *sa,
	    socklen_t salen, const char *transport, struct ssl_ctx_st *tls);
void	session_open(struct server *srv, struct conn *c,
	    const struct sockaddr *sa, const char *transport,
	    const char *peer);
void	session_acked(struct ac_session *s, const struct ac_message *ack);
void	session_arm(struct ac_session *s);
void	session_touch(struct ac_session *s);
void	session_close(struct ac_session *s, enum ac_close_reason reason,
	    const char *disconnect_text);
void	session_finish(struct ac_session *s);
void	session_ref(struct ac_session *s);
void	session_unref(struct ac_session *s);
void	session_reap(struct server *srv);
int	session_send(struct ac_session *s, enum ac_msg_type type,
	    const char *content_type, struct json_object *extra,
	    const void *content, size_t content_len);
int	session_send_error(struct ac_session *s, const char *token,
	    const char *text, int bypass);
int	session_queue_frame(struct ac_session *s, struct ac_frame *f);
size_t	session_send_list(struct server *srv, struct ac_session *const *to,
	    size_t n, enum ac_msg_type type, const char *content_type,
	    struct json_object *extra, const void *content,
	    size_t content_len);
size_t	session_queue_frames(struct server *srv,
	    struct ac_session *const *to, size_t n, struct ac_frame *f);
size_t	session_pending(struct ac_session *s);
const struct ac_limits *session_limits(struct ac_session *s);
void	session_free_lingering(struct server *srv);
void	session_slots_clear(struct ac_session *s);

/* tls.c */
struct ssl_ctx_st *tls_server_ctx(const char *cert, const char *key,
	    const char *ca, const char **which, char **cause);
void	tls_ctx_free(struct ssl_ctx_st *ctx);
const char *tls_error_string(unsigned long e, char *buf, size_t len);
int	tls_bev_failure(struct bufferevent *bev, int up, int err, char *why,
	    size_t len);

/* registry.c */

/* Every live session, by id (a small chained hash table) and in accept
 * order. */
struct registry {
	struct ac_session	**buckets;
	size_t			  nbuckets;
	size_t			  count;
	struct ac_sessions	  list;
	struct ac_session	**snap;		/* registry_recipients() */
	size_t			  snap_size;
	int			  snap_busy;
};

void	registry_init(struct registry *reg);
void	registry_free(struct registry *reg);
void	registry_add(struct registry *reg, struct ac_session *s);
void	registry_remove(struct registry *reg, struct ac_session *s);
struct ac_session *registry_find(struct registry *reg, const char *id);
struct ac_session **registry_snapshot(struct registry *reg, int acked_only,
	    struct ac_session *except, size_t *n);
void	registry_snapshot_free(struct ac_session **snap, size_t n);
struct ac_session **registry_recipients(struct registry *reg,
	    struct ac_session *except, size_t *n);
void	registry_recipients_done(struct registry *reg,
	    struct ac_session **snap);

/* listener.c */
struct listener {
	struct server		*srv;
	char			*url;		/* as configured */
	char			*bound;		/* actual address, for logs */
	enum ac_listen_type	 type;
	char			*path;		/* unix: to unlink at close */
	int			 loopback;	/* bound to 127/8 or ::1 */
	dev_t			 dev;
	ino_t			 ino;
	struct evconnlistener	*evl;
	struct event		*retry;		/* after EMFILE and the like */
	TAILQ_ENTRY(listener)	 entry;
};
TAILQ_HEAD(listeners, listener);

#define LISTENER_NUMERIC	0x1	/* no host names: nothing may block */
int	listener_open(struct server *srv, const struct ac_listen_conf *lc,
	    int backlog, mode_t unix_mode, int flags, struct listener **lp,
	    char **cause);
void	listener_free(struct listener *l);

/* attr.c */
struct attr_set;

const char *attr_get(const struct attr_set *set, const char *key);
int	attr_set(struct attr_set **setp, const char *owner, const char *key,
	    const char *value);
int	attr_foreach(const struct attr_set *set, int (*cb)(const char *,
	    const char *, const char *, void *), void *arg);
void	attr_prune(struct attr_set *set, int (*keep)(const char *, void *),
	    void *arg);
void	attr_free(struct attr_set *set);

/* iface.c */
struct iface;
struct iface_table {
	struct iface	*v;
	size_t		 n;
};

int	iface_publish(struct iface_table *t, struct ac_plugin *owner,
	    const char *name, unsigned int version, const void *ptr,
	    const char **why);
const void *iface_get(const struct iface_table *t, const char *name,
	    unsigned int min_version, unsigned int *version,
	    struct ac_plugin **owner);
void	iface_free(struct iface_table *t);

/* worker.c */
struct worker_pool;
struct plugin_set;

int	worker_pool_new(struct server *srv, struct worker_pool **wp,
	    char **cause);
int	worker_submit(struct worker_pool *wk, struct ac_plugin *p,
	    struct ac_session *s, int flags, ac_job_work_fn work,
	    ac_job_done_fn done, void *arg);
void	worker_cancel_session(struct worker_pool *wk, struct ac_session *s);
void	worker_cancel_set(struct worker_pool *wk, struct plugin_set *set);
void	worker_pool_complete(struct worker_pool *wk);
void	worker_pool_stop(struct worker_pool *wk);
void	worker_pool_free(struct worker_pool *wk);
void	worker_metrics_write(struct worker_pool *wk, struct evbuffer *b);

/* plugin_metric.c */
TAILQ_HEAD(plugin_metrics, ac_metric);

struct ac_metric *plugin_metric_new(struct server *srv, struct ac_plugin *p,
	    enum ac_metric_type type, const char *name, const char *help,
	    const double *bounds, size_t nbounds, const char **why);
void	plugin_metric_add(struct ac_metric *m, double v);
void	plugin_metric_set(struct ac_metric *m, double v);
void	plugin_metric_observe(struct ac_metric *m, double v);
void	plugin_metric_hide(struct server *srv, struct ac_plugin *p);
void	plugin_metric_free(struct server *srv, struct ac_plugin *p);
void	plugin_metric_write(struct server *srv, struct evbuffer *b);

/* plugin_set.c (the chain) and plugin_host.c (what plugins may call) */
struct ac_plugin {
	struct server				*srv;
	char					*name;
	char					*path;
	void					*dl;
	const struct ac_plugin_descriptor	*desc;	/* &d, or NULL */
	struct ac_plugin_descriptor		 d;	/* the plugin's, with
							   what it lacks 0 */
	void					*state;
	struct plugin_set			*set;	/* its chain */
	size_t					 index;	/* slot number */
	int					 inited;
	struct ac_plugin_stats			*stats;	/* NULL until loaded */
	unsigned int				 jobs;	/* not completed */
	int					 serial_busy; /* worker.c, under
							 the pool's lock */
};

/*
 * The chain: the plugins of one configuration, in load order. A chain is
 * unloaded as a whole: once retired (a reload replaced it, or shutdown)
 * it waits on srv->retired until the last job of its plugins completes,
 * then every plugin's fini runs, in reverse order, and every dlclose.
 */
struct plugin_set {
	struct ac_plugin	**plugins;
	size_t			  n;
	const struct ac_key	 *key;	/* of the configuration it was
					   loaded with; not after retired */
	struct ac_limits	  limits; /* of that configuration too */
	struct iface_table	  ifaces;
	unsigned int		  jobs;	/* of all its plugins */
	int			  retired;
	TAILQ_ENTRY(plugin_set)	  entry;	/* srv->retired */
};
TAILQ_HEAD(plugin_sets, plugin_set);

/* plugin_host.c */
extern const struct ac_host_api plugin_host_api;
void	plugin_host_job_done(struct ac_plugin *p, struct ac_session *s,
	    ac_job_done_fn done, void *arg, enum ac_job_status status);

/* plugin_set.c */
int	plugin_set_load(struct server *srv, const struct ac_config *cfg,
	    struct plugin_set **setp, char **cause);
void	plugin_set_free(struct server *srv, struct plugin_set *set);
void	plugin_set_finalize(struct server *srv, struct plugin_set *set);
void	plugin_set_reloaded(struct server *srv);
void	plugin_set_drain(struct server *srv);
void	plugin_set_session_open(struct server *srv, struct ac_session *s,
	    const struct ac_message *ack);
void	plugin_set_session_close(struct server *srv, struct ac_session *s,
	    const char *reason);
void	plugin_set_message(struct server *srv, struct ac_session *from,
	    const struct ac_message *msg, struct ac_frame *f);
void	plugin_set_collect(struct server *srv);
void	plugin_set_header(struct ac_plugin *p, const struct ac_message *msg);

/* metrics.c */
#define AC_METRICS_MAX_CONNS	16	/* open HTTP connections at most */
struct metrics;

int	metrics_open(struct server *srv, const struct config_addr *addr,
	    struct metrics **mp, char **cause);
const char *metrics_listen(const struct metrics *m);
const char *metrics_url(const struct metrics *m);
void	metrics_free(struct metrics *m);

/* main.c */
TAILQ_HEAD(conn_dirty, conn_socket);

struct server {
	struct event_base	*base;
	struct ac_config	*cfg;
	const char		*config_path;
	int			 foreground;	/* -f: log to stderr */
	int			 verbose;	/* -v: debug level */

	const struct timeval	*handshake_tv;	/* common timeouts */
	const struct timeval	*heartbeat_tv;
	const struct timeval	*linger_tv;
	struct timeval		 handshake_plain; /* if libevent has no */
	struct timeval		 heartbeat_plain; /* common slot left */
	struct timeval		 linger_plain;
	struct ac_limits	 limits;
	struct ac_limits	 limits_preack;	/* until session_ack */

	struct listeners	 listeners;
	struct registry		 reg;
	struct iplimit		 iplimit;
	struct ac_sessions	 lingering;
	struct ac_sessions	 dead;
	struct event		*reap_ev;
	struct conn_dirty	 dirty;		/* sockets to flush (conn.c) */
	struct http_conns	 http;		/* web connections not upgraded
						   (http.c) */
	unsigned int		 nhttp;
	struct iplimit		 http_iplimit;	/* of those, by address */
	struct event		*flush_ev;	/* NULL until the first accept */
	struct conn_dirty	 resume;	/* sockets whose input waits a
						   turn (conn.c) */
	unsigned int		 nresume;
	struct event		*resume_ev;	/* NULL until the first
						   accept */
	struct event		*memory_ev;	/* NULL until the first accept */
	uint64_t		 memory_estimate; /* last count + added since */
	int			 shedding;	/* memory_cb closing sessions */
	struct timeval		 full_logged;	/* last "server full" line */
	unsigned int		 full_unlogged;	/* refusals since that line */
	struct plugin_set	*plugins;
	struct plugin_sets	 retired;	/* unloaded, waiting for jobs */
	struct worker_pool	*workers;
	struct plugin_metrics	 plugin_metrics;
	struct ac_frame		*in_frame;	/* being dispatched, borrowed */
	struct ac_session	*in_session;	/* from this one's input */
	struct ac_session	*ack_session;	/* in its first session_open */
	const struct ac_message	*ack_msg;
	struct ac_stats		 stats;
	struct ac_plugin_stats_list plugin_stats;
	struct metrics		*metrics;	/* NULL: off */

	struct event		*sig_int;
	struct event		*sig_term;
	struct event		*sig_hup;
	struct event		*shutdown_timer;
	int			 shutting_down;

	char			*pid_path;	/* NULL: no pid file written */
	int			 pid_fd;	/* open and locked */
	dev_t			 pid_dev;
	ino_t			 pid_ino;
};

void	server_maybe_exit(struct server *srv);

#endif /* AC_SERVER_SERVER_H */
