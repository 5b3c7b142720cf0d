/*
 * asyncchat/plugin.h - the interface between asyncchatd and its plugins.
 *
 * A plugin is a shared object that exports one symbol, `ac_plugin_entry`, a
 * const struct ac_plugin_descriptor. The server reads abi_version and
 * struct_size first and refuses the plugin unless both match what it was
 * built with; only then does it touch any other field.
 *
 * Versioning (docs/PLUGINS.md):
 *  - AC_PLUGIN_ABI_VERSION changes whenever anything a plugin sees changes
 *    layout or meaning. It must match exactly.
 *  - AC_PLUGIN_API_VERSION grows when host functions are appended to
 *    struct ac_host_api. A plugin declares the lowest it needs in api_version;
 *    a host older than that refuses it.
 *
 * Everything runs on the server's one event-loop thread. A plugin must never
 * block it: no blocking I/O, sleeps or DNS look-ups in any callback. Use the
 * event_base from host->event_base() for timers and non-blocking sockets.
 *
 * Handles (struct ac_plugin, ac_session, ac_frame) are opaque and owned by
 * the host. A session or frame handle passed to a callback is borrowed for
 * the duration of that callback only; to remember a session beyond it, keep
 * its id and look it up again with host->session_find().
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
#define AC_PLUGIN_API_VERSION	1
#define AC_PLUGIN_ENTRY_SYMBOL	"ac_plugin_entry"

struct event_base;
struct json_object;

struct ac_plugin;	/* the host's record of one loaded plugin */
struct ac_session;	/* one connected client */
struct ac_frame;	/* a received frame, as verified bytes */

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
 * Services the host offers. The table is valid from init until fini returns.
 * Entries are only ever appended; `size` tells how many a host has.
 * Unless said otherwise, a function may be called from any callback and
 * from the plugin's own libevent callbacks, never from another thread.
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
	 * (after session_close) and when the plugin is unloaded (before fini). */
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

	/* Queue the received frame, byte for byte, to one session. */
	int	(*relay)(struct ac_plugin *p, const struct ac_frame *f,
		    struct ac_session *to);

	/* Queue the received frame, byte for byte, to every handshaken
	 * session but `except` (may be NULL); all share one buffer.
	 * Returns how many sessions it was queued to. */
	int	(*relay_all)(struct ac_plugin *p, const struct ac_frame *f,
		    struct ac_session *except);

	/* The bytes of a received frame (fixed header, header JSON, content). */
	const uint8_t *(*frame_bytes)(const struct ac_frame *f, size_t *len);

	/* Queue an already verified whole frame (for example one from another
	 * server) to every handshaken session but `except`, sharing one buffer.
	 * The bytes are copied. Returns how many sessions got it. */
	int	(*broadcast_raw)(struct ac_plugin *p, const void *frame,
		    size_t len, struct ac_session *except);

	/* The frame size limits of the plugin's configuration (the server's
	 * max_header_size and max_content_size), for decoding frames that do
	 * not come from a session, such as another server's: a plugin that
	 * delivers them must hold them to the same limits as local frames.
	 * Valid until fini; a reload inits a new instance with the new ones.
	 * Appended after broadcast_raw without an AC_PLUGIN_API_VERSION bump;
	 * a plugin that needs it checks that `size` covers it. */
	const struct ac_limits *(*limits)(struct ac_plugin *p);
};

/*
 * The one symbol a plugin exports. The first two members never move.
 * Every callback but init may be NULL.
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

	/* Called once before the plugin is unloaded; free the state. */
	void	(*fini)(void *state);

	/* A session completed its handshake. */
	void	(*session_open)(void *state, struct ac_session *s);

	/* A session is closing (reason is a short token such as
	 * "client-disconnect" or "heartbeat-timeout"). It can no longer be
	 * sent to, and it is not visible to session_foreach any more. */
	void	(*session_close)(void *state, struct ac_session *s,
		    const char *reason);

	/* A verified `message` or `chunk` frame from a session, in chain
	 * order. msg and frame are borrowed for the call. Returns an
	 * enum ac_plugin_result, or a negative error. */
	int	(*process_message)(void *state, struct ac_session *from,
		    const struct ac_message *msg, const struct ac_frame *frame);
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
