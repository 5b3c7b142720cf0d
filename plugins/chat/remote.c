/*
 * remote.c - chat across servers: the cluster link (asyncchat/cluster.h)
 * as chat uses it, and the other servers' sessions as remote users.
 *
 * In cluster mode (a link published "cluster", docs/SCALING.md) chat is
 * what it is on one server, with three differences, all here:
 *
 *  - Nicks are claimed across the cluster. A session opens with the nick
 *    it asked for if no session chat knows of (here or elsewhere) has it,
 *    and the claim runs behind: should a session of another server have
 *    taken it in the same moment, the loser becomes a guest (a `nick`
 *    event and a nick_in_use reply). /nick waits for its claim before it
 *    answers (and, sent while the nick a session opened with is still
 *    being claimed, for that claim first). While the link is down, only
 *    guest nicks are given: a nick asked for, and /nick, get
 *    cluster_down.
 *
 *  - The other servers' sessions are remote users: a struct user with no
 *    session (s NULL), found by id in chat->remote and by nick in
 *    chat->nicks, a member of rooms like any other. Every walk that
 *    queues frames skips them (their own servers deliver to them), so
 *    the join, part, nick and quit events that their changes cause here
 *    reach this server's members only, and /who, /rooms and /msg see
 *    the whole cluster.
 *
 *  - A direct message to a remote user goes through the link; the sender
 *    gets its copy, and /msg its reply, once the other server answers.
 *
 * Nick uniqueness is the link's to decide, not this table's: a remote
 * user whose nick a local one already holds (for the moment a race takes
 * to settle) stays out of chat->nicks (`indexed` 0) until it is free.
 *
 * Claims and direct messages outlive their user: a user torn down only
 * detaches them (user NULL), and their completions do what is left.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"

/* Put a user's nick in the nick table if nobody holds it there. */
static void
remote_index(struct user *u)
{
	struct chat	*c = u->chat;

	if (u->indexed || hash_find(&c->nicks, u->fnick) != NULL)
		return;
	hash_add(&c->nicks, u->fnick, u);
	u->indexed = 1;
}

/* Take a user's nick out of the nick table, if it is there. */
void
remote_unindex(struct user *u)
{
	struct chat	*c = u->chat;

	if (!u->indexed)
		return;
	if (hash_find(&c->nicks, u->fnick) == u)
		hash_remove(&c->nicks, u->fnick);
	u->indexed = 0;
}

/* The link's view of a local user: its nick and rooms, current last. */
void
remote_presence(struct user *u)
{
	struct chat			*c = u->chat;
	struct ac_cluster_session	 cs;
	struct member			*m;
	const char			**rooms;
	size_t				 n = 0;

	if (c->cluster == NULL || u->remote || u->closed)
		return;
	if ((rooms = calloc(u->nrooms + 1, sizeof *rooms)) == NULL)
		abort();
	TAILQ_FOREACH(m, &u->rooms, in_user)
		rooms[n++] = m->room->name;
	memset(&cs, 0, sizeof cs);
	cs.id = u->id;
	cs.node = c->cluster->node(c->cluster->ctx);
	cs.nick = u->nick;
	cs.rooms = rooms;
	cs.nrooms = n;
	c->cluster->presence(c->cluster->ctx, &cs);
	free(rooms);
}

/* A local user closed: its nick goes back, the cluster hears it quit. */
void
remote_quit(struct user *u, const char *reason)
{
	struct chat	*c = u->chat;

	if (c->cluster == NULL || u->remote)
		return;
	c->cluster->release(c->cluster->ctx, u->id, u->nick);
	c->cluster->quit(c->cluster->ctx, u->id, reason);
}

/* Free a claim, off the chat's list. */
static void
remote_claim_free(struct claim *cl)
{
	TAILQ_REMOVE(&cl->chat->claims, cl, in_chat);
	free(cl);
}

/*
 * Rename a local user whose nick the cluster gave someone else to its
 * next guest nick, tell it and its neighbours, and claim the guest.
 */
static void
remote_demote(struct user *u, const char *why)
{
	struct chat	*c = u->chat;
	char		 old[CHAT_NICK_BYTES + 1], guest[CHAT_NICK_BYTES + 1];

	snprintf(old, sizeof old, "%s", u->nick);
	/* u still holds old, so the guest nick found is another. */
	user_guest_nick(c, u->id, guest, sizeof guest);
	c->cluster->release(c->cluster->ctx, u->id, old);
	user_rename(u, guest, strlen(guest));
	event_nick(u, old);
	event_reply(u, CHAT_CMD_NICK, CHAT_ERR_NICK_IN_USE, "%s %s; you are "
	    "now %s", old, why, u->nick);
	remote_claim(u, CLAIM_GUEST, u->nick);
}

/* A claim's answer. */
static void
remote_claim_done(void *arg, enum ac_cluster_status status)
{
	struct claim	*cl = arg;
	struct chat	*c = cl->chat;
	struct user	*u = cl->user;
	char		 old[CHAT_NICK_BYTES + 1];

	chat_enter(c);
	if (u != NULL && u->claiming == cl)
		u->claiming = NULL;
	if (u == NULL || u->closing || u->closed) {
		/* Nobody to give it to. */
		if (status == AC_CLUSTER_OK && cl->kind == CLAIM_NICK)
			c->cluster->release(c->cluster->ctx, cl->id, cl->nick);
	} else if (cl->kind != CLAIM_NICK) {
		if (status != AC_CLUSTER_OK && strcmp(u->nick, cl->nick) == 0)
			remote_demote(u, "is someone's on another server");
		if (u->claiming == NULL && u->next_nick[0] != '\0') {
			/* A /nick that came meanwhile: its turn. */
			snprintf(old, sizeof old, "%s", u->next_nick);
			u->next_nick[0] = '\0';
			remote_claim(u, CLAIM_NICK, old);
		}
	} else if (status != AC_CLUSTER_OK)
		event_reply(u, CHAT_CMD_NICK, CHAT_ERR_NICK_IN_USE, "%s is "
		    "taken on another server", cl->nick);
	else {
		snprintf(old, sizeof old, "%s", u->nick);
		if (strcmp(old, cl->nick) != 0) {
			c->cluster->release(c->cluster->ctx, u->id, old);
			user_rename(u, cl->nick, strlen(cl->nick));
			event_nick(u, old);
		}
		event_reply_ok(u, CHAT_CMD_NICK, "you are now %s", u->nick);
	}
	remote_claim_free(cl);
	chat_leave(c);
}

/*
 * Claim nick for local user u across the cluster: the nick it has (kind
 * CLAIM_OPEN, CLAIM_GUEST) or wants (CLAIM_NICK, which the answer
 * completes). A link that refuses outright is answered as taken.
 */
void
remote_claim(struct user *u, enum claim_kind kind, const char *nick)
{
	struct chat	*c = u->chat;
	struct claim	*cl;

	if (c->cluster == NULL)
		return;
	if ((cl = calloc(1, sizeof *cl)) == NULL)
		abort();
	cl->chat = c;
	cl->user = u;
	cl->kind = kind;
	snprintf(cl->id, sizeof cl->id, "%s", u->id);
	snprintf(cl->nick, sizeof cl->nick, "%s", nick);
	TAILQ_INSERT_TAIL(&c->claims, cl, in_chat);
	u->claiming = cl;
	if (c->cluster->claim(c->cluster->ctx, u->id, nick, remote_claim_done,
	    cl) != 0) {
		u->claiming = NULL;
		remote_claim_free(cl);
		if (kind == CLAIM_NICK)
			event_reply(u, CHAT_CMD_NICK, CHAT_ERR_CLUSTER_DOWN,
			    "the other servers are out of reach: nicks cannot "
			    "be checked now");
	}
}

/* Free a direct message on its way, off its lists. */
static void
remote_direct_free(struct direct *d)
{
	struct chat	*c = d->chat;

	TAILQ_REMOVE(&c->directs, d, in_chat);
	if (d->user != NULL)
		TAILQ_REMOVE(&d->user->directs, d, in_user);
	c->host->frame_unref(c->p, d->frame);
	free(d);
}

/* The other server's answer to a direct message. */
static void
remote_direct_done(void *arg, enum ac_cluster_status status)
{
	struct direct	*d = arg;
	struct chat	*c = d->chat;
	struct user	*u = d->user;

	chat_enter(c);
	if (u != NULL && !u->closing && !u->closed) {
		if (status == AC_CLUSTER_OK) {
			if (c->host->relay(c->p, d->frame, u->s) == 0)
				c->counts[CHAT_C_DELIVERIES]++;
			if (d->cmd == CHAT_CMD_MSG)
				event_reply_ok(u, d->cmd, "sent to %s", d->to);
		} else if (status == AC_CLUSTER_GONE)
			event_reply(u, d->cmd, CHAT_ERR_NO_SUCH_NICK, "%s has "
			    "left", d->to);
		else
			event_reply(u, d->cmd, CHAT_ERR_CLUSTER_DOWN, "%s is on "
			    "another server, out of reach now", d->to);
	}
	remote_direct_free(d);
	chat_leave(c);
}

/*
 * A direct message from u to remote user `to`, made into frame f: hand it
 * to the link; u's copy and reply wait for the answer.
 */
void
remote_direct(struct user *u, struct user *to, struct ac_frame *f,
    enum chat_cmd cmd)
{
	struct chat	*c = u->chat;
	struct direct	*d;

	if ((d = calloc(1, sizeof *d)) == NULL)
		abort();
	d->chat = c;
	d->user = u;
	d->frame = c->host->frame_ref(c->p, f);
	d->cmd = cmd;
	snprintf(d->to, sizeof d->to, "%s", to->nick);
	TAILQ_INSERT_TAIL(&c->directs, d, in_chat);
	TAILQ_INSERT_TAIL(&u->directs, d, in_user);
	c->counts[CHAT_C_DIRECT_MESSAGES]++;
	if (c->cluster->direct(c->cluster->ctx, to->id, f, remote_direct_done,
	    d) != 0) {
		event_reply(u, cmd, CHAT_ERR_CLUSTER_DOWN, "%s is on another "
		    "server, out of reach now", d->to);
		remote_direct_free(d);
	}
}

/* A local user is torn down: its claim and messages go on without it. */
void
remote_user_gone(struct user *u)
{
	struct direct	*d;

	if (u->claiming != NULL) {
		u->claiming->user = NULL;
		u->claiming = NULL;
	}
	while ((d = TAILQ_FIRST(&u->directs)) != NULL) {
		TAILQ_REMOVE(&u->directs, d, in_user);
		d->user = NULL;
	}
}

/* Non-zero when the room named name (len bytes) is in list. */
static int
remote_listed(const char *const *list, size_t n, const char *name)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (strcasecmp(list[i], name) == 0)
			return (1);
	}
	return (0);
}

/* Make the remote user of a session of another server (valid nick). */
static struct user *
remote_new(struct chat *c, const struct ac_cluster_session *s)
{
	struct user	*u;

	if ((u = calloc(1, sizeof *u)) == NULL)
		abort();
	u->chat = c;
	u->remote = 1;
	snprintf(u->id, sizeof u->id, "%s", s->id);
	snprintf(u->nick, sizeof u->nick, "%s", s->nick);
	names_fold(u->fnick, u->nick, strlen(u->nick));
	TAILQ_INIT(&u->rooms);
	TAILQ_INIT(&u->appends);
	TAILQ_INIT(&u->directs);
	hash_add(&c->remote, u->id, u);
	c->nremote++;
	remote_index(u);
	return (u);
}

/* Take a remote user out of its rooms and the tables, and free it. */
static void
remote_free(struct user *u)
{
	struct chat	*c = u->chat;
	struct member	*m;

	while ((m = TAILQ_FIRST(&u->rooms)) != NULL)
		room_leave(m);
	remote_unindex(u);
	hash_remove(&c->remote, u->id);
	c->nremote--;
	free(u);
}

/*
 * A session of another server appeared or changed: bring its remote user
 * to its state, with the events a local change would make (none for the
 * first picture).
 */
static void
remote_session(void *arg, const struct ac_cluster_session *s)
{
	struct chat	*c = arg;
	struct user	*u;
	struct member	*m, *next;
	struct room	*r;
	char		 old[CHAT_NICK_BYTES + 1];
	size_t		 i, len;

	if (s->id == NULL || strlen(s->id) >= sizeof u->id ||
	    s->nick == NULL || !names_nick_valid(s->nick, strlen(s->nick)))
		return;
	chat_enter(c);
	if ((u = hash_find(&c->remote, s->id)) == NULL)
		u = remote_new(c, s);
	else if (strcmp(u->nick, s->nick) != 0) {
		snprintf(old, sizeof old, "%s", u->nick);
		remote_unindex(u);
		snprintf(u->nick, sizeof u->nick, "%s", s->nick);
		names_fold(u->fnick, u->nick, strlen(u->nick));
		remote_index(u);
		if (!s->initial)
			event_nick(u, old);
	} else
		remote_index(u);
	for (m = TAILQ_FIRST(&u->rooms); m != NULL; m = next) {
		next = TAILQ_NEXT(m, in_user);
		if (remote_listed(s->rooms, s->nrooms, m->room->name))
			continue;
		if (!s->initial)
			event_part(m);
		room_leave(m);
	}
	for (i = 0; i < s->nrooms && u->nrooms < CHAT_MAX_ROOMS_LIMIT; i++) {
		len = strlen(s->rooms[i]);
		if (!roomname_valid(s->rooms[i], len))
			continue;
		if ((r = room_find(c, s->rooms[i], len)) != NULL &&
		    user_member(u, r) != NULL)
			continue;
		m = room_join(u, s->rooms[i], len);
		if (!s->initial)
			event_join(m);
	}
	chat_leave(c);
}

/* A session of another server closed: quit events, then it goes. */
static void
remote_session_gone(void *arg, const char *id, const char *reason)
{
	struct chat	*c = arg;
	struct user	*u;

	if ((u = hash_find(&c->remote, id)) == NULL)
		return;
	chat_enter(c);
	event_quit(u, reason);
	remote_free(u);
	chat_leave(c);
}

/* A direct message from another server for a local session. */
static int
remote_direct_in(void *arg, const char *to, const struct ac_frame *f)
{
	struct chat		*c = arg;
	struct ac_session	*s;
	struct user		*u;
	int			 rv = -1;

	if ((s = c->host->session_find(c->p, to)) == NULL ||
	    (u = user_of(c, s)) == NULL)
		return (-1);
	chat_enter(c);
	if (c->host->relay(c->p, f, u->s) == 0) {
		c->counts[CHAT_C_DELIVERIES]++;
		rv = 0;
	}
	chat_leave(c);
	return (rv);
}

/* The link found that a local session's nick is someone else's now. */
static void
remote_nick_lost(void *arg, const char *id, const char *nick)
{
	struct chat		*c = arg;
	struct ac_session	*s;
	struct user		*u;
	char			 folded[CHAT_NICK_BYTES + 1];

	if ((s = c->host->session_find(c->p, id)) == NULL ||
	    (u = user_of(c, s)) == NULL || strlen(nick) > CHAT_NICK_BYTES)
		return;
	names_fold(folded, nick, strlen(nick));
	if (strcmp(folded, u->fnick) != 0)
		return;
	chat_enter(c);
	remote_demote(u, "was taken on another server while this one was cut "
	    "off");
	chat_leave(c);
}

/*
 * chat's ready: find the cluster link, if there is one, and check that it
 * can be used (a numbering history backend beside it); then listen.
 */
int
remote_ready(struct chat *c)
{
	const struct ac_cluster	*cl;
	unsigned int		 version;

	cl = c->host->interface_get(c->p, AC_CLUSTER_INTERFACE, 1, &version);
	if (cl == NULL)
		return (0);
	if (cl->size < offsetof(struct ac_cluster, direct) +
	    sizeof cl->direct || cl->node == NULL || cl->up == NULL ||
	    cl->listen == NULL || cl->claim == NULL || cl->release == NULL ||
	    cl->presence == NULL || cl->quit == NULL || cl->direct == NULL) {
		c->host->log(c->p, AC_LOG_ERROR, "the cluster link cannot be "
		    "used: its interface is incomplete");
		return (-1);
	}
	if (!c->numbers) {
		c->host->log(c->p, AC_LOG_ERROR, "the cluster link needs a "
		    "history backend that numbers room messages across the "
		    "servers (the cluster plugin is one: do not load the "
		    "history plugin beside it)");
		return (-1);
	}
	c->cluster = cl;
	hash_init(&c->remote, &c->counts[CHAT_C_STEPS]);
	c->listener.size = sizeof c->listener;
	c->listener.arg = c;
	c->listener.remote = remote_session;
	c->listener.remote_gone = remote_session_gone;
	c->listener.direct = remote_direct_in;
	c->listener.nick_lost = remote_nick_lost;
	cl->listen(cl->ctx, &c->listener);
	c->host->log(c->p, AC_LOG_INFO, "cluster mode: node %s (interface "
	    "version %u)", cl->node(cl->ctx), version);
	return (0);
}

/* chat's fini: remote users, and claims and messages still under way. */
void
remote_free_all(struct chat *c)
{
	struct hash_node	*hn;
	struct claim		*cl;
	struct direct		*d;
	size_t			 i;

	while ((cl = TAILQ_FIRST(&c->claims)) != NULL)
		remote_claim_free(cl);
	while ((d = TAILQ_FIRST(&c->directs)) != NULL) {
		d->user = NULL;
		remote_direct_free(d);
	}
	if (c->cluster == NULL)
		return;
	for (i = 0; i < c->remote.nbuckets; i++) {
		while ((hn = c->remote.buckets[i]) != NULL)
			remote_free(hn->value);
	}
	hash_free(&c->remote);
}
