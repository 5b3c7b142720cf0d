/*
 * asyncchat/plugin.h - the interface between asyncchatd and its plugins.
 *
 * Bump AC_PLUGIN_ABI_VERSION if you change anything a built plugin sees in
 * an incompatible way; bump AC_PLUGIN_API_VERSION if you append to it.
 *
 * A plugin is a shared object that exports one symbol, `ac_plugin_entry`, a
 * const struct ac_plugin_descriptor. The server reads abi_version,
 * struct_size and api_version first and touches nothing else until they
 * pass.
 *
 * Versioning (docs/PLUGINS.md, "Versions and compatibility"):
 *  - AC_PLUGIN_ABI_VERSION changes only for an incompatible change: a
 *    member moved or removed, a function's arguments or meaning changed.
 *    It must match exactly.
 *  - AC_PLUGIN_API_VERSION grows whenever members are appended to struct
 *    ac_plugin_descriptor or struct ac_host_api. Both structures only ever
 *    grow at the end, and each carries its size: a plugin built against an
 *    older header (a shorter descriptor) loads into a newer server, which
 *    treats the callbacks it lacks as NULL; a plugin reads `host->size`
 *    (AC_HOST_HAS) before calling a host function newer than the API
 *    version it declared. A plugin declares in api_version the lowest API
 *    it needs; an older server refuses it, saying so.
 *  - API 3 appends relay_list, and changes what a plugin may assume:
 *    msg->header (of process_message's msg and of session_ack's) may be
 *    NULL, as the server decodes with AC_DECODE_LAZY_HEADER: read members
 *    with ac_message_get_string() and the object with ac_message_header().
 *    For a plugin that declares an older api_version the server builds
 *    the object before each of its calls, so it can read msg->header.
 *
 * Threads: everything runs on the server's one event-loop thread, and a
 * plugin must never block it: no blocking I/O, sleeps or DNS look-ups in
 * any callback. Work that blocks goes to the host's worker pool
 * (job_submit): its work function runs on a worker thread and may touch
 * only what the job carries; its completion runs on the loop thread.
 * Unless a function says otherwise, call host functions from the loop
 * thread only.
 *
 * Handles (struct ac_plugin, ac_session, ac_frame, ac_metric) are opaque
 * and owned by the host. A session or frame handle passed to a callback is
 * borrowed for the duration of that callback only; to remember a session
 * beyond it, keep its id and look it up again with host->session_find()
 * (or keep the handle in your data slot on that session: the slot's
 * destroy runs before the session goes, and the handle is valid until
 * then), and to keep a frame, take a reference (frame_ref).
 */
#ifndef ASYNCCHAT_PLUGIN_H
#define ASYNCCHAT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <asyncchat/frame.h>
#include <asyncchat/key.h>
#include <asyncchat/option.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AC_PLUGIN_ABI_VERSION	1
#define AC_PLUGIN_API_VERSION	3
#define AC_PLUGIN_ENTRY_SYMBOL	"ac_plugin_entry"

struct event_base;
struct json_object;

struct ac_plugin;	/* the host's record of one loaded plugin */
struct ac_session;	/* one connected client */
struct ac_frame;	/* a whole frame, as verified bytes (refcounted) */
struct ac_metric;	/* a counter, gauge or histogram of a plugin */

/* What process_message returns. Negative values are errors: logged with the
 * plugin's name, then the chain goes on as for AC_PLUGIN_CONTINUE. */
enum ac_plugin_result {
	AC_PLUGIN_CONTINUE = 0,	/* pass the message to the next plugin */
	AC_PLUGIN_STOP = 1,	/* the message is dealt with: end the chain */
};

/* Log levels for host->log(). */
enum ac_log_level {
	AC_LOG_ERROR = 0,
	AC_LOG_WARNING,
	AC_LOG_INFO,
	AC_LOG_DEBUG,
};

/* One `key = value` line of the plugin's own [plugin.NAME] section. */
struct ac_plugin_option {
	const char	*key;
	const char	*value;
	int		 line;	/* line number in the config file */
};

/*
 * Session attributes (API 2): small strings on a session that every plugin
 * can read and the plugin that set one first (its owner) can change.
 * A key is 1 to AC_ATTR_KEY_MAX bytes of A-Z a-z 0-9 . _ -; a value is
 * valid UTF-8 without NUL, at most AC_ATTR_VALUE_MAX bytes; a session holds
 * at most AC_ATTR_MAX attributes.
 */
#define AC_ATTR_KEY_MAX		64
#define AC_ATTR_VALUE_MAX	1024
#define AC_ATTR_MAX		32

/* What session_attr_set returns. */
#define AC_ATTR_OK		0
#define AC_ATTR_INVALID		(-1)	/* bad key or value, session closing */
#define AC_ATTR_NOT_OWNER	(-2)	/* another plugin set this key first */
#define AC_ATTR_FULL		(-3)	/* AC_ATTR_MAX attributes already */

/* Flags for job_submit (API 2). */
#define AC_JOB_NO_CANCEL	0x1	/* runs even if its session closes or
					   its plugin is unloaded first;
					   shutdown waits for it */
#define AC_JOB_SERIAL		0x2	/* this plugin's serial jobs run one at
					   a time, in the order submitted */

/* How a job ended, as its completion is told. */
enum ac_job_status {
	AC_JOB_DONE = 0,	/* the work function ran */
	AC_JOB_CANCELLED = 1,	/* it never ran: its session closed, its
				   plugin is being unloaded or the server
				   is shutting down before a worker took it */
};

/*
 * A job's work, run on a worker thread. It may touch only what arg holds
 * (and its own thread-safe libraries): no host function, no session, no
 * libevent call on the server's loop, nothing of the plugin's state that
 * the loop thread also touches without a lock of the plugin's own.
 */
typedef void (*ac_job_work_fn)(void *arg);

/*
 * A job's completion, run on the loop thread exactly once for every job
 * job_submit accepted, always before the plugin's fini. state is the
 * plugin's state; s is the job's session if it was given one and that
 * session is still open, else NULL; status says whether work ran. Free
 * what arg holds here.
 */
typedef void (*ac_job_done_fn)(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status);

/* Kinds of plugin metric (API 2). */
enum ac_metric_type {
	AC_METRIC_COUNTER = 0,	/* only goes up; name ends in _total */
	AC_METRIC_GAUGE,	/* goes up and down */
	AC_METRIC_HISTOGRAM,	/* observations counted in buckets */
};
#define AC_METRIC_BUCKETS_MAX	32

/* Interface names (API 2): 1 to 64 bytes of a-z 0-9 . _ -. */
#define AC_INTERFACE_NAME_MAX	64

/*
 * Services the host offers. The table is valid from init until fini returns.
 * Entries are only ever appended; `size` tells how many a host has
 * (AC_HOST_HAS). Unless said otherwise, a function may be called from any
 * callback and from the plugin's own libevent callbacks, never from another
 * thread.
 */
struct ac_host_api {
	size_t	size;		/* sizeof(struct ac_host_api) of the host */

	/* Log a line prefixed with the plugin's name. */
	void	(*log)(struct ac_plugin *p, enum ac_log_level level,
		    const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));

	/* The server's event loop, for the plugin's own timers and sockets. */
	struct event_base *(*event_base)(struct ac_plugin *p);

	/* The shared HMAC key, to verify or make frames (libasyncchat). */
	const struct ac_key *(*key)(struct ac_plugin *p);

	/* The session's UUID text. */
	const char *(*session_id)(const struct ac_session *s);

	/* The peer's address: "127.0.0.1:40312", "[::1]:40312" or "unix". */
	const char *(*session_peer)(const struct ac_session *s);

	/* "tcp", "unix" or "tls". */
	const char *(*session_transport)(const struct ac_session *s);

	/* The session with this id that has completed its handshake, or NULL. */
	struct ac_session *(*session_find)(struct ac_plugin *p, const char *id);

	/* Call cb for every session that has completed its handshake; stops
	 * early when cb returns non-zero and returns that value, else 0.
	 * cb may send to or close sessions. */
	int	(*session_foreach)(struct ac_plugin *p,
		    int (*cb)(struct ac_session *s, void *arg), void *arg);

	/* Number of sessions that have completed their handshake. */
	size_t	(*session_count)(struct ac_plugin *p);

	/* This plugin's data slot on a session (NULL until set). */
	void	*(*session_get_data)(struct ac_plugin *p, struct ac_session *s);

	/* Set this plugin's slot on a session. destroy (may be NULL) is called
	 * with the old value when it is replaced, when the session closes
	 * (after session_close) and when the plugin is unloaded (before fini);
	 * until then the session handle itself stays valid, so data kept in
	 * the slot may hold it. */
	void	(*session_set_data)(struct ac_plugin *p, struct ac_session *s,
		    void *data, void (*destroy)(void *data));

	/* Send `disconnect` with this reason to the session and close it.
	 * The session handle must not be used after this call. */
	void	(*session_close)(struct ac_plugin *p, struct ac_session *s,
		    const char *reason);

	/* Encode and queue a new frame to one session. Its session_id is the
	 * recipient's own; extra (may be NULL, borrowed) adds header members.
	 * Returns 0, or -1 when the session is closing or the frame is
	 * invalid; a recipient past its output limit is disconnected. */
	int	(*send)(struct ac_plugin *p, struct ac_session *to,
		    enum ac_msg_type type, const char *content_type,
		    struct json_object *extra, const void *content,
		    size_t content_len);

	/* Queue a frame, byte for byte, to one session: a received frame or
	 * one made with frame_new or frame_from_bytes. No copy is made per
	 * recipient beyond what the output buffer needs. */
	int	(*relay)(struct ac_plugin *p, const struct ac_frame *f,
		    struct ac_session *to);

	/* Queue a frame, byte for byte, to every handshaken session but
	 * `except` (may be NULL); all share one buffer.
	 * Returns how many sessions it was queued to. */
	int	(*relay_all)(struct ac_plugin *p, const struct ac_frame *f,
		    struct ac_session *except);

	/* The bytes of a frame (fixed header, header JSON, content), valid
	 * while the frame is: during the callback, or while you hold a
	 * reference. They never change, so a worker may read them while the
	 * plugin holds a reference for the job. */
	const uint8_t *(*frame_bytes)(const struct ac_frame *f, size_t *len);

	/* Queue an already verified whole frame (for example one from another
	 * server) to every handshaken session but `except`, sharing one buffer.
	 * The bytes are copied. Returns how many sessions got it. */
	int	(*broadcast_raw)(struct ac_plugin *p, const void *frame,
		    size_t len, struct ac_session *except);

	/* ---- API 2 ---- */

	/* The plugin's name: its file name without .so, as in [plugin.NAME]
	 * and in its log lines. Valid until fini returns. */
	const char *(*plugin_name)(struct ac_plugin *p);

	/* The session_ack frame that completed the session's handshake, with
	 * every header member the client put in it (ac_message_get_string,
	 * ac_message_header(): its header member may be NULL, API 3). Only
	 * inside the session_open call that follows the
	 * handshake: NULL anywhere else, notably in the session_open calls a
	 * SIGHUP reload makes for sessions already open. Borrowed for that
	 * call; its members come from the client: validate them. */
	const struct ac_message *(*session_ack)(struct ac_plugin *p,
		    const struct ac_session *s);

	/* The value of attribute key on s, or NULL. Borrowed: valid until the
	 * attribute is set again or removed, or the session closes. */
	const char *(*session_attr)(const struct ac_session *s,
		    const char *key);

	/* Set attribute key on s to value (copied), or remove it (value
	 * NULL). The first plugin to set a key owns it until it removes it;
	 * ownership goes by plugin name, so it survives a reload of the
	 * owner, and the attributes of a plugin no longer loaded after a
	 * reload are removed. Later plugins in the chain see the change at
	 * once. Returns AC_ATTR_OK or a negative AC_ATTR_* code. */
	int	(*session_attr_set)(struct ac_plugin *p, struct ac_session *s,
		    const char *key, const char *value);

	/* Call cb for each attribute of s in the order they were first set,
	 * with the owner's plugin name; stops early when cb returns non-zero
	 * and returns that value, else 0. cb must not change attributes. */
	int	(*session_attr_foreach)(const struct ac_session *s,
		    int (*cb)(const char *key, const char *value,
		    const char *owner, void *arg), void *arg);

	/* Make a new frame, signed with the key and encoded once, whose
	 * session_id is the given one (say, its sender's: a frame "as coming
	 * from" that session; NULL writes JSON null) and whose header has
	 * the members of extra (borrowed, may be NULL) after type,
	 * content_type and session_id. Queue it to any number of sessions
	 * with relay or relay_all: they all share its bytes (frame_bytes).
	 * Returns a frame holding one reference for the caller (release it
	 * with frame_unref), or NULL if content is empty or the frame would
	 * pass the server's size limits. */
	struct ac_frame *(*frame_new)(struct ac_plugin *p,
		    const char *session_id, enum ac_msg_type type,
		    const char *content_type, struct json_object *extra,
		    const void *content, size_t content_len);

	/* Make a frame from the bytes of one whole frame (say, stored by
	 * frame_bytes earlier), copied, after checking them as the server
	 * checks a received frame (CRCs, the HMAC with the current key, the
	 * header JSON). Returns it with one reference for the caller, or NULL
	 * if the bytes are not exactly one valid frame. */
	struct ac_frame *(*frame_from_bytes)(struct ac_plugin *p,
		    const void *bytes, size_t len);

	/* Take a reference to a frame (a received one too), to keep it
	 * beyond the callback. Returns f. */
	struct ac_frame *(*frame_ref)(struct ac_plugin *p,
		    const struct ac_frame *f);

	/* Drop a reference taken with frame_new, frame_from_bytes or
	 * frame_ref. Release every reference before fini returns. */
	void	(*frame_unref)(struct ac_plugin *p, struct ac_frame *f);

	/* Run work(arg) on a worker thread, then done(state, s, arg, status)
	 * on the loop thread (ac_job_done_fn). s (may be NULL) ties the job
	 * to a session: a job still queued when its session closes is
	 * cancelled, and done gets the session only while it is open. flags
	 * is 0 or AC_JOB_NO_CANCEL and/or AC_JOB_SERIAL. Returns 0 when the
	 * job is accepted: done will be called exactly once, before fini.
	 * Returns -1 when it is refused (the queue holds worker_queue jobs,
	 * or, with s, jobs tied to sessions fill 3/4 of it; the plugin is
	 * being unloaded, the session is closing, work or done is NULL):
	 * nothing is called and arg is still yours. Never blocks. */
	int	(*job_submit)(struct ac_plugin *p, struct ac_session *s,
		    int flags, ac_job_work_fn work, ac_job_done_fn done,
		    void *arg);

	/* Register a metric, shown on the server's /metrics endpoint as
	 * NAME{plugin="<plugin name>"}. name is [a-zA-Z_][a-zA-Z0-9_]*, at
	 * most 100 bytes, not starting with "asyncchat_"; a counter's ends
	 * in "_total". help is one line. A histogram takes nbounds (1 to
	 * AC_METRIC_BUCKETS_MAX) increasing upper bounds; bounds NULL gives
	 * latency buckets in seconds from 1e-6 to 10. Plugins registering
	 * the same name share one family and must agree on type and bounds.
	 * Returns a handle owned by the host and valid until fini returns,
	 * or NULL (logged) when refused. A new plugin instance (after a
	 * reload) starts from zero; its metrics leave /metrics when it is
	 * unloaded. */
	struct ac_metric *(*metric_new)(struct ac_plugin *p,
		    enum ac_metric_type type, const char *name,
		    const char *help, const double *bounds, size_t nbounds);

	/* Add v to a counter (v >= 0) or a gauge. Any thread. */
	void	(*metric_add)(struct ac_metric *m, double v);

	/* Set a gauge, or a counter to a total counted elsewhere (it must
	 * never go down). Any thread. */
	void	(*metric_set)(struct ac_metric *m, double v);

	/* Count one observation in a histogram. Any thread. */
	void	(*metric_observe)(struct ac_metric *m, double v);

	/* Publish a named interface: a struct of functions (and whatever
	 * else) of yours, with a version of its own, that other plugins of
	 * the same chain can look up. iface stays yours and must stay valid
	 * until your fini. Returns 0, or -1 if the name is not valid or taken
	 * in this chain. */
	int	(*interface_publish)(struct ac_plugin *p, const char *name,
		    unsigned int version, const void *iface);

	/* Look up an interface published in this plugin's chain with at
	 * least min_version; sets *version (may be NULL) to its version.
	 * Returns NULL when there is none (not loaded, not initialised yet,
	 * too old). A pointer found stays valid until your fini is called:
	 * a chain is finished as a whole, after its last job completes, its
	 * plugins' fini in reverse load order (so do not call another
	 * plugin's interface from your fini). Look up in ready (every plugin
	 * of the chain has run init by then) or later; a reload gives the
	 * new chain new pointers. */
	const void *(*interface_get)(struct ac_plugin *p, const char *name,
		    unsigned int min_version, unsigned int *version);

	/* The frame size limits of the plugin's configuration (the server's
	 * max_header_size and max_content_size), for decoding frames that do
	 * not come from a session, such as another server's: a plugin that
	 * delivers them must hold them to the same limits as local frames.
	 * Valid until fini; a reload inits a new instance with the new ones. */
	const struct ac_limits *(*limits)(struct ac_plugin *p);

	/* ---- API 3 ---- */

	/* Queue a frame, byte for byte, to each of the n sessions of to,
	 * as relay would one by one, in one call (what the server counts
	 * per frame queued is counted once): for a plugin's own fan-out,
	 * such as a room's members. NULL entries and closing sessions are
	 * skipped; a recipient past its output limit is disconnected. The
	 * array is borrowed for the call. Returns how many sessions the
	 * frame was queued to. */
	int	(*relay_list)(struct ac_plugin *p, const struct ac_frame *f,
		    struct ac_session *const *to, size_t n);
};

/* Non-zero when the host table has host function fn (a plugin built for a
 * newer API than it requires checks this before calling fn). */
#define AC_HOST_HAS(host, fn) \
	((host)->size >= offsetof(struct ac_host_api, fn) + \
	    sizeof((host)->fn) && (host)->fn != NULL)

/*
 * The one symbol a plugin exports. The first three members never move, and
 * members are only appended. Every callback but init may be NULL.
 */
struct ac_plugin_descriptor {
	uint32_t	 abi_version;	/* AC_PLUGIN_ABI_VERSION */
	uint32_t	 struct_size;	/* sizeof(struct ac_plugin_descriptor) */
	uint32_t	 api_version;	/* lowest AC_PLUGIN_API_VERSION needed */
	const char	*name;
	const char	*version;
	const char	*description;

	/* Called once at load (and again after each SIGHUP reload) with the
	 * plugin's [plugin.NAME] options, borrowed for the call. Set *state to
	 * what the other callbacks get. Return 0, or -1 to refuse to load
	 * (after logging why through host->log). An option the plugin does not
	 * know should be refused, naming its line. */
	int	(*init)(struct ac_plugin *p, const struct ac_host_api *host,
		    const struct ac_plugin_option *opts, size_t nopts,
		    void **state);

	/* Called once before the plugin is unloaded; free the state. After a
	 * SIGHUP it may come later than the new chain's init and ready: once
	 * the old chain's jobs have all completed. */
	void	(*fini)(void *state);

	/* A session completed its handshake (host->session_ack gives the
	 * session_ack frame), or a reload meets a session already open. */
	void	(*session_open)(void *state, struct ac_session *s);

	/* A session is closing (reason is a short token such as
	 * "client-disconnect" or "heartbeat-timeout"). It can no longer be
	 * sent to, and it is not visible to session_foreach any more. */
	void	(*session_close)(void *state, struct ac_session *s,
		    const char *reason);

	/* A verified `message` or `chunk` frame from a session, in chain
	 * order. msg and frame are borrowed for the call. msg->header may
	 * be NULL: call ac_message_header(msg) for the header object, or
	 * ac_message_get_string(msg, name) for one member (API 3; a plugin
	 * declaring api_version 1 or 2 gets it built). Returns an
	 * enum ac_plugin_result, or a negative error. */
	int	(*process_message)(void *state, struct ac_session *from,
		    const struct ac_message *msg, const struct ac_frame *frame);

	/* ---- API 2 ---- */

	/* Every plugin of the chain has run init (so every interface of the
	 * chain is published): look up the interfaces you use. Called in
	 * load order before any session_open. Return 0, or -1 to refuse the
	 * chain (after logging why), as a failing init does. */
	int	(*ready)(void *state);

	/* The metrics endpoint is about to be read: bring metrics that
	 * mirror counts kept elsewhere (say, under a lock of your own) up to
	 * date with metric_set. Loop thread; keep it short. */
	void	(*collect)(void *state);
};

/* Declare the descriptor a plugin exports, with the version fields set. */
#define AC_PLUGIN_DESCRIPTOR \
	__attribute__((visibility("default"))) \
	const struct ac_plugin_descriptor ac_plugin_entry

#define AC_PLUGIN_HEADER \
	.abi_version = AC_PLUGIN_ABI_VERSION, \
	.struct_size = sizeof(struct ac_plugin_descriptor), \
	.api_version = AC_PLUGIN_API_VERSION

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_PLUGIN_H */
