/*
 * asyncchat/cluster.h - the named interface between the `chat` plugin and
 * a cluster link (the `cluster` plugin, or one of your own): what chat
 * needs, besides a numbering history backend (history.h, version 3), to
 * run one chat across several servers (docs/SCALING.md, "Chat across
 * servers").
 *
 * Bump AC_CLUSTER_VERSION when you append to struct ac_cluster or struct
 * ac_cluster_listener; rename the interface if a member changes meaning.
 *
 * A link publishes one struct ac_cluster under the name "cluster" in its
 * init, and chat looks it up in its ready. With one, chat is in cluster
 * mode: the history backend must number messages (the link is usually
 * that backend as well), nicks are claimed across the cluster, every
 * local session's nick and rooms are told to the link, and the link tells
 * chat of the other servers' sessions, which chat keeps as remote users
 * (in rooms, in /who and /rooms, reachable by /msg).
 *
 * Threads: as for history.h. Every call is made on the loop thread and
 * never blocks; every completion and listener call comes on the loop
 * thread, never from within the call that caused it. Strings and frames
 * passed are borrowed for the call. Completions and listener calls stop
 * at the link's fini: chat frees what it holds for them in its own.
 *
 * What chat does, and expects:
 *
 *  - Nicks. Every nick a local session takes, a guest's too, is claimed
 *    with claim(); done later says AC_CLUSTER_OK (it is the session's
 *    across the cluster) or AC_CLUSTER_TAKEN (another session has it).
 *    A claim made while the link is down waits for the link. chat asks
 *    up() before it gives a session a nick it asked for, and gives only
 *    guest nicks while the link is down. release() gives a nick back
 *    (a rename, a close). If the link later finds a session's nick taken
 *    after all (the other servers counted this one gone during an outage
 *    and someone took it), it calls the listener's nick_lost.
 *
 *  - Presence. presence() after every change of a local session's nick or
 *    rooms (the first one when it opens, and again for every session a
 *    reload meets); quit() when it closes, with the close reason.
 *
 *  - Remote sessions. The listener's remote() says that a session of
 *    another server appeared or changed (its whole state: nick and rooms,
 *    current last); remote_gone() that it closed (the close reason, or
 *    "node-down" when its server went away). Sessions of the picture the
 *    link has when it starts come with `initial` set: chat makes them
 *    remote users without sending events for them.
 *
 *  - Direct messages. direct() hands the frame of a direct message to the
 *    server of remote session `to`; done says AC_CLUSTER_OK (queued to it
 *    there), AC_CLUSTER_GONE (no such session any more) or
 *    AC_CLUSTER_DOWN (no answer). The listener's direct() is the other
 *    end: a frame for local session `to`, already checked (signature,
 *    limits); it returns 0 when it was queued, -1 when there is no such
 *    session.
 */
#ifndef ASYNCCHAT_CLUSTER_H
#define ASYNCCHAT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <asyncchat/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AC_CLUSTER_INTERFACE	"cluster"
#define AC_CLUSTER_VERSION	1

/* The close reason of the sessions of a server that went away. */
#define AC_CLUSTER_NODE_DOWN	"node-down"

/* How a claim or a direct message went. */
enum ac_cluster_status {
	AC_CLUSTER_OK = 0,
	AC_CLUSTER_TAKEN = 1,	/* claim: another session holds the nick */
	AC_CLUSTER_GONE = 2,	/* direct: no such session any more */
	AC_CLUSTER_DOWN = 3,	/* direct: the link is down, or no answer */
};

/* A session as the cluster knows it. */
struct ac_cluster_session {
	const char		*id;		/* its session id */
	const char		*node;		/* its server */
	const char		*nick;
	const char *const	*rooms;		/* join order, current last */
	size_t			 nrooms;
	int			 initial;	/* remote(): part of the first
						   picture, no events */
};

/* A claim's or a direct message's completion (arg as given). */
typedef void (*ac_cluster_done_fn)(void *arg, enum ac_cluster_status status);

/* What chat gives the link, to hear of the other servers. */
struct ac_cluster_listener {
	size_t	 size;
	void	*arg;

	/* A session of another server appeared or changed. */
	void	(*remote)(void *arg, const struct ac_cluster_session *s);

	/* A session of another server closed. */
	void	(*remote_gone)(void *arg, const char *id, const char *reason);

	/* A direct message for local session `to`: 0 queued, -1 none. */
	int	(*direct)(void *arg, const char *to, const struct ac_frame *f);

	/* Local session id lost nick after all (see Nicks above). */
	void	(*nick_lost)(void *arg, const char *id, const char *nick);
};

/*
 * The interface. Members are only ever appended; `size` is the link's
 * sizeof(struct ac_cluster).
 */
struct ac_cluster {
	size_t	 size;
	void	*ctx;		/* the link's own, passed to every call */

	/* This server's name in the cluster. */
	const char *(*node)(void *ctx);

	/* Non-zero while the link is up, or down so briefly that what needs
	 * it may wait; 0 while it is down. */
	int	 (*up)(void *ctx);

	/* Register chat's listener (copied), once, in chat's ready. */
	void	 (*listen)(void *ctx, const struct ac_cluster_listener *l);

	/* Claim nick for local session id. Returns 0 (done is called once,
	 * later) or -1 (nothing is called: the link cannot take it). */
	int	 (*claim)(void *ctx, const char *id, const char *nick,
		    ac_cluster_done_fn done, void *arg);

	/* Give back a nick local session id held (or was claiming). */
	void	 (*release)(void *ctx, const char *id, const char *nick);

	/* A local session's nick or rooms changed (s->initial unused). */
	void	 (*presence)(void *ctx, const struct ac_cluster_session *s);

	/* A local session closed. */
	void	 (*quit)(void *ctx, const char *id, const char *reason);

	/* Hand a direct message to remote session `to`. Returns 0 (done is
	 * called once, later) or -1 (nothing is called: link down). */
	int	 (*direct)(void *ctx, const char *to, const struct ac_frame *f,
		    ac_cluster_done_fn done, void *arg);
};

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_CLUSTER_H */
