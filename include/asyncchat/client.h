/*
 * asyncchat/client.h - an asynchronous chat client on libevent.
 *
 * The C form of the original project's extensible client base class: it
 * connects over TCP, TLS or a Unix socket, answers the server's
 * session_init with session_ack, sends a heartbeat ping every few
 * seconds, decodes every frame the server sends (whatever the
 * segmentation, many frames per read), and reports what happens through
 * callbacks. It answers only a verified session_init, and never sends
 * anything in answer to a frame that failed verification: such a frame
 * ends the connection (AC_CLIENT_END_PROTOCOL). Nothing it does blocks the
 * event loop, except ac_client_connect_tcp() and ac_client_connect_tls(),
 * which resolve the host name with getaddrinfo() once (and, for TLS, read
 * the certificate files once): call them before the loop runs or with a
 * numeric address.
 *
 * Ownership:
 *  - The caller owns the event_base and the key; both must outlive the
 *    client. ac_client_new() copies the options and callbacks.
 *  - Every pointer handed to a callback (session ids, content, the header
 *    JSON object, reason and error texts) is borrowed for the duration of
 *    that callback only. Copy what you need; never json_object_put() it.
 *  - The send functions copy content (and `extra`) into the output buffer;
 *    the caller keeps ownership of what it passed.
 *  - A callback may call any function here, including ac_client_free() on
 *    its own client; the memory is released once the callback returns.
 *
 * Writes to a closed socket raise SIGPIPE: a program using this library
 * should ignore it (signal(SIGPIPE, SIG_IGN)), as most network programs do.
 */
#ifndef ASYNCCHAT_CLIENT_H
#define ASYNCCHAT_CLIENT_H

#include <stddef.h>

#include <asyncchat/frame.h>
#include <asyncchat/key.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
struct bufferevent;
struct json_object;

struct ac_client;

/* The content_type of UTF-8 text, as the Python peer spells it. */
#define AC_CLIENT_TEXT_TYPE	"text/plain; charset=utf-8"

/* How the client reaches the server. */
enum ac_client_transport {
	AC_CLIENT_TCP = 0,
	AC_CLIENT_UNIX,
	AC_CLIENT_TLS,		/* TCP with TLS: ac_client_connect_tls() */
};

/* Why a connection ended, passed to the disconnected callback. */
enum ac_client_end {
	AC_CLIENT_END_LOCAL = 0,	/* ac_client_disconnect() finished */
	AC_CLIENT_END_SERVER,		/* the server sent `disconnect` */
	AC_CLIENT_END_CONNECT,		/* could not connect at all */
	AC_CLIENT_END_LOST,		/* connection lost (EOF or error) */
	AC_CLIENT_END_HANDSHAKE,	/* handshake failed or timed out */
	AC_CLIENT_END_PROTOCOL,		/* the server broke the protocol,
					   or a frame failed verification */
};

/*
 * The callbacks; any may be NULL. `arg` is the pointer given to
 * ac_client_new(). All arguments are borrowed for the call.
 */
struct ac_client_callbacks {
	/* The handshake finished: session_id is this connection's id. */
	void	(*connected)(struct ac_client *c, const char *session_id,
		    void *arg);

	/*
	 * A verified frame arrived that is not session_init, error or
	 * disconnect: `message` and `chunk` frames (session_id is the
	 * sender's, which may be another client's) and heartbeat pongs.
	 * header is the parsed header JSON object; content holds len > 0
	 * bytes and is not NUL-terminated.
	 */
	void	(*message)(struct ac_client *c, enum ac_msg_type type,
		    const char *content_type, const char *session_id,
		    const void *content, size_t len, struct json_object *header,
		    void *arg);

	/*
	 * Something went wrong with one frame, after the handshake.
	 * status AC_FRAME_OK: the server sent an `error` frame and text is
	 * its content; the connection stays up. Otherwise a frame from the
	 * server failed the check `status` and was dropped; text starts
	 * with the status name ("hmac: ..."). After bad_header or
	 * empty_content (a verified frame) the connection stays up; after
	 * any other status (the stream cannot be framed, or the frame failed
	 * its CRC or HMAC check, so it did not come from a holder of the
	 * key) the connection then ends with AC_CLIENT_END_PROTOCOL, and
	 * nothing is sent in answer. During the handshake a bad frame ends
	 * the connection the same way, without this callback.
	 */
	void	(*error)(struct ac_client *c, enum ac_frame_status status,
		    const char *text, void *arg);

	/*
	 * The connection ended; called once per connection that was started.
	 * reason is the server's reason for AC_CLIENT_END_SERVER, otherwise a
	 * text such as "connection lost" or "handshake failed: ...".
	 * If reconnecting is enabled and the end was not local, a new attempt
	 * is scheduled after this callback returns.
	 */
	void	(*disconnected)(struct ac_client *c, enum ac_client_end end,
		    const char *reason, void *arg);

	/* The queued output fell to the low-water mark or below. */
	void	(*drained)(struct ac_client *c, void *arg);
};

/* Tunables; fill with ac_client_options_default() and change what you need. */
struct ac_client_options {
	int			 heartbeat_interval;	/* s; 0 off; 5 */
	int			 handshake_timeout;	/* s; 0 off; 10 */
	int			 reconnect;		/* non-zero: retry */
	int			 reconnect_min_ms;	/* first delay; 500 */
	int			 reconnect_max_ms;	/* cap; 30000 */
	size_t			 drain_lowat;		/* bytes; 16384 */
	struct ac_limits	 limits;		/* frame size limits */
};

/*
 * TLS settings for ac_client_connect_tls(); fill with
 * ac_client_tls_options_default() and change what you need. The files are
 * read during that call; the strings need not outlive it.
 */
struct ac_client_tls_options {
	/* PEM CAs to trust; NULL: the system's store. */
	const char	*ca_file;
	/* A client certificate chain (PEM) to present, or NULL for none. */
	const char	*cert_file;
	/* Its private key (PEM, unencrypted); NULL: read from cert_file. */
	const char	*key_file;
	/* Non-zero: check neither the certificate nor the host name. */
	int		 insecure;
};

/*
 * A function that wraps a freshly connected bufferevent (for example with
 * bufferevent_openssl_filter_new) and returns the one the client should use,
 * or NULL to fail the connection. Not used for TLS connections, which
 * the client wraps itself.
 */
typedef struct bufferevent *(*ac_client_wrap_fn)(struct ac_client *c,
	    struct bufferevent *underlying, void *arg);

/* Fill options with the defaults (heartbeat 5 s as in the original). */
void	ac_client_options_default(struct ac_client_options *options);

/*
 * Make a client on base with key; options and cb may be NULL for defaults
 * and no callbacks. Returns NULL only when out of memory.
 */
struct ac_client *ac_client_new(struct event_base *base,
	    const struct ac_key *key, const struct ac_client_options *options,
	    const struct ac_client_callbacks *cb, void *arg);

/*
 * Close any connection without notice or callbacks, cancel timers and free
 * the client. NULL is allowed. Safe inside the client's own callbacks.
 */
void	ac_client_free(struct ac_client *c);

/*
 * Resolve host (getaddrinfo, IPv4 and IPv6; may block for a non-numeric
 * name, so call it outside callbacks) and start connecting to each address
 * in turn. Returns 0, or -1 with *cause set to a heap string to free.
 */
int	ac_client_connect_tcp(struct ac_client *c, const char *host,
	    const char *port, char **cause);

/* Fill TLS options with the defaults: verify against the system store. */
void	ac_client_tls_options_default(struct ac_client_tls_options *tls);

/*
 * Like ac_client_connect_tcp(), then TLS 1.2 or newer on the connection
 * (on TLS 1.2 only ECDHE suites with AES-GCM or ChaCha20-Poly1305):
 * the server's certificate must chain to a trusted CA and name host (a
 * DNS name, also sent as SNI, or an IP address) unless tls->insecure is
 * set. tls NULL means the defaults. Certificate and key files are read
 * now (a bad file fails here, with *cause); a failed handshake is
 * reported through the disconnected callback (AC_CLIENT_END_HANDSHAKE)
 * with OpenSSL's reason, such as "TLS handshake failed: certificate
 * verify failed: hostname mismatch". Returns 0, or -1 with *cause set to
 * a heap string to free.
 */
int	ac_client_connect_tls(struct ac_client *c, const char *host,
	    const char *port, const struct ac_client_tls_options *tls,
	    char **cause);

/* Start connecting to a Unix socket path; 0, or -1 with *cause as above. */
int	ac_client_connect_unix(struct ac_client *c, const char *path,
	    char **cause);

/*
 * Set a function that is given each freshly connected TCP or Unix
 * bufferevent and returns the one to use (a filter of the caller's own);
 * TLS connections do not use it.
 */
void	ac_client_set_wrap(struct ac_client *c, ac_client_wrap_fn fn,
	    void *arg);

/* Non-zero between the connected and the disconnected callbacks. */
int	ac_client_is_connected(const struct ac_client *c);

/* This connection's session id, or NULL before the handshake. */
const char *ac_client_session_id(const struct ac_client *c);

/*
 * Queue a `message` frame: content (len > 0 bytes, copied) with content_type
 * (NULL means application/octet-stream, the Python peer's default: it
 * refuses frames without one), and the members of extra (a JSON object,
 * may be NULL; not consumed) added to the header. Returns 0, or -1 when not
 * connected, content is empty or the header is too large.
 */
int	ac_client_send(struct ac_client *c, const char *content_type,
	    struct json_object *extra, const void *content, size_t len);

/* Queue a NUL-terminated UTF-8 text as a text/plain message; 0 or -1. */
int	ac_client_send_text(struct ac_client *c, const char *text);

/*
 * Members to add to the header of every session_ack from the next
 * handshake on, reconnections included: a JSON object (copied; the caller
 * keeps its own), or NULL for none. The fixed members (type,
 * content_type, session_id) are never replaced. A chat client sends its
 * "nick" and "rooms" this way (docs/CHAT.md); call it again before a
 * reconnection (in the disconnected callback, say) to send what it has
 * then. Returns 0, or -1 when extra is not an object or would make the
 * header larger than AC_DEFAULT_MAX_HEADER (the members set before stay).
 */
int	ac_client_set_ack_extra(struct ac_client *c, struct json_object *extra);

/* Queue a heartbeat ping now, besides the periodic ones; 0 or -1. */
int	ac_client_ping(struct ac_client *c);

/* Bytes queued for the server and not yet written to the socket. */
size_t	ac_client_output_pending(const struct ac_client *c);

/*
 * Leave cleanly: queue `disconnect` (application/json, {"message":
 * "Disconnecting", "reason": reason}), close once it is written and report
 * AC_CLIENT_END_LOCAL. Before the handshake it closes at once. Stops any
 * reconnecting. reason NULL means "Client disconnecting". Returns 0, or -1 if
 * there was no connection to close.
 */
int	ac_client_disconnect(struct ac_client *c, const char *reason);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_CLIENT_H */
