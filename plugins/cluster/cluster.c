/*
 * cluster.c - the cluster plugin: one chat across several asyncchatd
 * servers, on NATS JetStream (docs/SCALING.md, "Chat across servers").
 *
 * This file is the plugin itself: its options, init, ready and fini, its
 * metrics, the tick, and the two interfaces it publishes for chat:
 *  - history, version 3 (asyncchat/history.h): the history backend, kept
 *    in the rooms stream, which numbers room messages itself (append.c)
 *    and hands every stored one back (feed.c), and replays (replay.c);
 *  - cluster (asyncchat/cluster.h): nick claims (nick.c), presence
 *    (presence.c), direct messages (direct.c), the link's state (link.c).
 *
 * Options ([plugin.cluster]): the connection's (servers, user, password,
 * token, credentials, tls_*, reconnect_wait: natsconn.c), node_name,
 * subject_prefix, replicas, replay, max_replay, max_messages, max_age,
 * heartbeat, node_timeout, append_timeout (asyncchat.conf(5)).
 *
 * The plugin needs chat: alone it would keep a link nobody uses, and it
 * says so. It cannot run beside the history plugin (both publish the
 * history interface: the second is refused, naming the other).
 *
 * Why one file past 700 lines: the options are its largest part (each
 * key checked, with its line in the error), then the small helpers every
 * file of the plugin shares (time, hex, JSON, refusals); the rest are
 * short functions that pass the two interfaces' calls on to the files
 * that do the work. It is the plugin's lifetime in one place: what init
 * makes, fini undoes in the same file.
 */
#include "config.h"

#include <sys/random.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include <asyncchat/option.h>

#include "cluster.h"

/* Longest max_age: a hundred years. */
#define CLUSTER_MAX_AGE_LIMIT	(100ull * 365 * 86400)

static int	cluster_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static int	cluster_ready(void *);
static void	cluster_fini(void *);
static void	cluster_collect(void *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "cluster",
	.version = PACKAGE_VERSION,
	.description = "chat across servers: rooms, nicks, presence and "
	    "history in NATS JetStream (docs/SCALING.md)",
	.init = cluster_init,
	.fini = cluster_fini,
	.ready = cluster_ready,
	.collect = cluster_collect,
};

/*
 * The process's instance id: made by the first instance of the plugin
 * and kept across reloads (the object stays mapped, -z nodelete), so
 * that the other servers see one node across a reload, not a restart.
 */
static char	cluster_instance[CLUSTER_INST_LEN + 1];
static int64_t	cluster_start_ms;
static uint64_t	cluster_ids;	/* the counter of message ids */

/*
 * The next message id: the instance id and a counter of the process, so
 * that no two messages of any instance of the plugin ever share one (an
 * Asyncchat-Id taken twice is skipped as a repeat: append.c).
 */
void
cluster_next_id(char *out, size_t outlen)
{
	snprintf(out, outlen, "%s-%llu", cluster_instance,
	    (unsigned long long)++cluster_ids);
}

/*
 * Something another server should have written is not as one writes it
 * (a bucket entry, a heartbeat): count it, and say what and why, once a
 * minute at most, since whoever can publish on the subjects can send them
 * as fast as they like. The caller drops it.
 */
void
cluster_refuse(struct cluster *cl, const char *what, const char *key,
    const char *why)
{
	time_t	now = time(NULL);

	cl->counts[CC_REFUSED]++;
	if (now - cl->refused_logged < 60)
		return;
	cl->refused_logged = now;
	cl->host->log(cl->p, AC_LOG_WARNING, "refused %s%s%.64s: %s (further "
	    "ones in the next minute are counted in cluster_refused_total, "
	    "not logged)", what, key != NULL ? " " : "", key != NULL ? key : "",
	    why);
}

/* Milliseconds since the epoch. */
int64_t
cluster_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Milliseconds since a CLOCK_MONOTONIC time. */
uint64_t
cluster_elapsed_ms(const struct timespec *since)
{
	struct timespec	now;
	int64_t		ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - since->tv_sec) * 1000 +
	    (now.tv_nsec - since->tv_nsec) / 1000000;
	return (ms < 0 ? 0 : (uint64_t)ms);
}

/* Write len bytes of s as lower-case hex into out (2 * len + 1 bytes). */
void
cluster_hex(char *out, size_t outlen, const char *s, size_t len)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < len && 2 * i + 2 < outlen; i++) {
		out[2 * i] = digits[(unsigned char)s[i] >> 4];
		out[2 * i + 1] = digits[(unsigned char)s[i] & 0xf];
	}
	out[2 * i] = '\0';
}

/* A message header read as a number. Returns 0, or -1 (none, or bad). */
int
cluster_header_u64(natsMsg *m, const char *name, uint64_t *out)
{
	const char		*v = NULL;
	unsigned long long	 n;

	if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == NULL ||
	    ac_option_uint(v, 0, (unsigned long long)INT64_MAX, &n) != 0)
		return (-1);
	*out = n;
	return (0);
}

/*
 * Parse len bytes of JSON (from NATS: not NUL-terminated) into an object
 * the caller puts, or NULL when they are not one whole JSON object.
 */
struct json_object *
cluster_json(const void *data, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*o;

	if (data == NULL || len == 0 || len > INT_MAX ||
	    (tok = json_tokener_new()) == NULL)
		return (NULL);
	o = json_tokener_parse_ex(tok, data, (int)len);
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len ||
	    !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return (o);
}

/*
 * Parse a duration: a whole number of seconds, or with one suffix s, m,
 * h or d (30d), at most max seconds. Returns 0 and *out, or -1.
 */
static int
cluster_parse_age(const char *value, uint64_t max, uint64_t *out)
{
	unsigned long long	 n, unit = 1;
	char			 digits[32];
	size_t			 len = strlen(value);

	if (len == 0 || len >= sizeof digits)
		return (-1);
	memcpy(digits, value, len + 1);
	switch (digits[len - 1]) {
	case 's':
		digits[len - 1] = '\0';
		break;
	case 'm':
		unit = 60;
		digits[len - 1] = '\0';
		break;
	case 'h':
		unit = 3600;
		digits[len - 1] = '\0';
		break;
	case 'd':
		unit = 86400;
		digits[len - 1] = '\0';
		break;
	default:
		break;
	}
	if (ac_option_uint(digits, 0, max / unit, &n) != 0)
		return (-1);
	*out = n * unit;
	return (0);
}

/* Log a bad option value naming its line; always -1. */
static int
cluster_bad(struct cluster *cl, const struct ac_plugin_option *o,
    const char *expected)
{
	cl->host->log(cl->p, AC_LOG_ERROR, "line %d: %s: bad value '%s' "
	    "(expected %s)", o->line, o->key, o->value, expected);
	return (-1);
}

/* Non-zero when s is a node name: 1 to 64 of A-Z a-z 0-9 - _. */
static int
cluster_valid_node(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CLUSTER_NODE_MAX ||
		    !((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '_'))
			return (0);
	}
	return (i > 0);
}

/* Non-zero when s is a subject prefix: tokens of A-Z a-z 0-9 - _. */
static int
cluster_valid_prefix(const char *s)
{
	size_t	i;

	if (*s == '\0' || *s == '.' || s[strlen(s) - 1] == '.' ||
	    strstr(s, "..") != NULL || strlen(s) > 64)
		return (0);
	for (i = 0; s[i] != '\0'; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '_' || s[i] == '.'))
			return (0);
	}
	return (1);
}

/* The host name as a node name: other characters become -. */
static void
cluster_default_node(char *out, size_t outlen)
{
	char	host[256];
	size_t	i;

	if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	for (i = 0; host[i] != '\0' && i + 1 < outlen && i < CLUSTER_NODE_MAX;
	    i++) {
		out[i] = host[i];
		if (!cluster_valid_node((char[]){ host[i], '\0' }))
			out[i] = '-';
	}
	out[i] = '\0';
}

/* Read the options; every error names its line. Returns 0 or -1. */
static int
cluster_options(struct cluster *cl, const struct ac_plugin_option *opts,
    size_t nopts)
{
	static const char *const keys[] = {
		"node_name", "subject_prefix", "replicas", "replay",
		"max_replay", "max_messages", "max_age", "heartbeat",
		"node_timeout", "append_timeout", "servers", "user",
		"password", "token", "credentials", "tls_ca", "tls_cert",
		"tls_key", "tls_hostname", "reconnect_wait", NULL
	};
	struct cluster_options		*opt = &cl->opt;
	const struct ac_plugin_option	*o;
	unsigned long long		 u;
	uint64_t			 secs;
	const char			*prefix = CLUSTER_DEFAULT_PREFIX;
	int				 seen[32] = { 0 };
	int				 replay_line = 0, rv;
	size_t				 i, k;

	cluster_default_node(opt->node, sizeof opt->node);
	opt->replicas = CLUSTER_DEFAULT_REPLICAS;
	opt->replay = CLUSTER_DEFAULT_REPLAY;
	opt->max_replay = CLUSTER_DEFAULT_MAX_REPLAY;
	opt->max_messages = CLUSTER_DEFAULT_MAX_MESSAGES;
	opt->max_age = CLUSTER_DEFAULT_MAX_AGE;
	opt->heartbeat = CLUSTER_DEFAULT_HEARTBEAT;
	opt->node_timeout = CLUSTER_DEFAULT_NODE_TIMEOUT;
	opt->append_timeout = CLUSTER_DEFAULT_APPEND_TIMEOUT;

	for (i = 0; i < nopts; i++) {
		o = &opts[i];
		for (k = 0; keys[k] != NULL; k++) {
			if (strcmp(o->key, keys[k]) == 0)
				break;
		}
		if (keys[k] == NULL) {
			cl->host->log(cl->p, AC_LOG_ERROR, "line %d: unknown "
			    "option '%s' (known: node_name, subject_prefix, "
			    "replicas, replay, max_replay, max_messages, "
			    "max_age, heartbeat, node_timeout, append_timeout, "
			    "servers, user, password, token, credentials, "
			    "tls_ca, tls_cert, tls_key, tls_hostname, "
			    "reconnect_wait)", o->line, o->key);
			return (-1);
		}
		if (seen[k] != 0) {
			cl->host->log(cl->p, AC_LOG_ERROR, "line %d: %s given "
			    "twice (first on line %d)", o->line, o->key,
			    seen[k]);
			return (-1);
		}
		seen[k] = o->line;
		if ((rv = natsconn_option(&cl->conn, o)) == -1)
			return (-1);
		if (rv == 1)
			continue;
		switch (k) {
		case 0:
			if (!cluster_valid_node(o->value))
				return (cluster_bad(cl, o, "1 to 64 of A-Z "
				    "a-z 0-9 - _"));
			snprintf(opt->node, sizeof opt->node, "%s", o->value);
			break;
		case 1:
			if (!cluster_valid_prefix(o->value))
				return (cluster_bad(cl, o, "dot-separated "
				    "tokens of A-Z a-z 0-9 - _, at most 64 "
				    "bytes"));
			prefix = o->value;
			break;
		case 2:
			if (ac_option_uint(o->value, 1, 5, &u) != 0)
				return (cluster_bad(cl, o, "1 to 5"));
			opt->replicas = (int)u;
			break;
		case 3:
			if (ac_option_uint(o->value, 0,
			    CLUSTER_MAX_REPLAY_LIMIT, &u) != 0)
				return (cluster_bad(cl, o, "0 to 100000"));
			opt->replay = u;
			replay_line = o->line;
			break;
		case 4:
			if (ac_option_uint(o->value, 1,
			    CLUSTER_MAX_REPLAY_LIMIT, &u) != 0)
				return (cluster_bad(cl, o, "1 to 100000"));
			opt->max_replay = u;
			break;
		case 5:
			if (ac_option_uint(o->value, 0, 1000000000, &u) != 0)
				return (cluster_bad(cl, o, "0 (no limit) to "
				    "1000000000"));
			opt->max_messages = u;
			break;
		case 6:
			if (cluster_parse_age(o->value, CLUSTER_MAX_AGE_LIMIT,
			    &opt->max_age) != 0)
				return (cluster_bad(cl, o, "seconds, or a "
				    "number with s, m, h or d, such as 30d; "
				    "0: no limit"));
			break;
		case 7:
		case 8:
		case 9:
			if (cluster_parse_age(o->value, 3600, &secs) != 0 ||
			    secs == 0)
				return (cluster_bad(cl, o, "1 s to 1 h"));
			if (k == 7)
				opt->heartbeat = secs;
			else if (k == 8)
				opt->node_timeout = secs;
			else
				opt->append_timeout = secs;
			break;
		}
	}
	if (opt->replay > opt->max_replay) {
		cl->host->log(cl->p, AC_LOG_ERROR, "line %d: replay (%llu) is "
		    "more than max_replay (%llu)", replay_line,
		    (unsigned long long)opt->replay,
		    (unsigned long long)opt->max_replay);
		return (-1);
	}
	if (opt->node_timeout < 2 * opt->heartbeat) {
		cl->host->log(cl->p, AC_LOG_ERROR, "line %d: node_timeout "
		    "(%llu s) must be at least twice heartbeat (%llu s)",
		    seen[8] != 0 ? seen[8] : seen[7],
		    (unsigned long long)opt->node_timeout,
		    (unsigned long long)opt->heartbeat);
		return (-1);
	}
	if (natsconn_finish(&cl->conn) != 0)
		return (-1);
	if ((opt->prefix = strdup(prefix)) == NULL)
		return (-1);
	return (0);
}

/* Make one name with printf; -1 when out of memory. */
static int
cluster_name(char **out, const char *fmt, ...)
{
	va_list	ap;
	int	rv;

	va_start(ap, fmt);
	rv = vasprintf(out, fmt, ap);
	va_end(ap);
	if (rv == -1)
		*out = NULL;
	return (rv == -1 ? -1 : 0);
}

/* The stream, bucket and subject names the prefix makes. */
static int
cluster_names(struct cluster *cl)
{
	struct cluster_names	*n = &cl->names;
	const char		*p = cl->opt.prefix;
	char			 base[80];
	size_t			 i;

	for (i = 0; p[i] != '\0' && i + 1 < sizeof base; i++)
		base[i] = p[i] == '.' ? '_' : p[i];
	base[i] = '\0';
	if (cluster_name(&n->stream, "%s_rooms", base) != 0 ||
	    cluster_name(&n->rooms, "%s.room.*", p) != 0 ||
	    cluster_name(&n->room_prefix, "%s.room.", p) != 0 ||
	    cluster_name(&n->nicks, "%s_nicks", base) != 0 ||
	    cluster_name(&n->nicks_stream, "KV_%s_nicks", base) != 0 ||
	    cluster_name(&n->nicks_prefix, "$KV.%s_nicks.", base) != 0 ||
	    cluster_name(&n->presence, "%s_presence", base) != 0 ||
	    cluster_name(&n->presence_stream, "KV_%s_presence", base) != 0 ||
	    cluster_name(&n->presence_prefix, "$KV.%s_presence.", base) !=
	    0 ||
	    cluster_name(&n->hb, "%s.hb", p) != 0 ||
	    cluster_name(&n->direct, "%s.direct.%s", p, cl->opt.node) != 0 ||
	    cluster_name(&n->direct_prefix, "%s.direct.", p) != 0)
		return (-1);
	return (0);
}

/* Free the names. */
static void
cluster_names_free(struct cluster_names *n)
{
	free(n->stream);
	free(n->rooms);
	free(n->room_prefix);
	free(n->nicks);
	free(n->nicks_stream);
	free(n->nicks_prefix);
	free(n->presence);
	free(n->presence_stream);
	free(n->presence_prefix);
	free(n->hb);
	free(n->direct);
	free(n->direct_prefix);
}

/* The process's instance id and start, made once. */
static void
cluster_identity(struct cluster *cl)
{
	unsigned char	rnd[CLUSTER_INST_LEN / 2];
	size_t		i;

	if (cluster_instance[0] == '\0') {
		if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) !=
		    (ssize_t)sizeof rnd) {
			for (i = 0; i < sizeof rnd; i++)
				rnd[i] = (unsigned char)(random() ^
				    (getpid() >> i) ^ (long)time(NULL));
		}
		for (i = 0; i < sizeof rnd; i++)
			snprintf(cluster_instance + 2 * i, 3, "%02x", rnd[i]);
		cluster_start_ms = cluster_now_ms();
	}
	memcpy(cl->instance, cluster_instance, sizeof cl->instance);
	cl->start_ms = cluster_start_ms;
}

/* The metrics. */
static void
cluster_metrics(struct cluster *cl)
{
	static const struct {
		const char	*name;
		const char	*help;
	} defs[CC_COUNT] = {
		{ "cluster_appends_total", "Room messages stored in the "
		  "stream." },
		{ "cluster_append_conflicts_total", "Room messages whose seq "
		  "another server took first (made again with the next)." },
		{ "cluster_append_retries_total", "Room message publishes "
		  "tried again for want of an answer." },
		{ "cluster_append_failures_total", "Room messages not stored "
		  "(delivered on this server only, without seq)." },
		{ "cluster_feed_messages_total", "Stored room messages "
		  "received from the stream." },
		{ "cluster_feed_refused_total", "Messages of the room "
		  "subjects that did not verify." },
		{ "cluster_replays_total", "Replays answered from the "
		  "stream." },
		{ "cluster_replay_failures_total", "Replays that could not "
		  "read the stream." },
		{ "cluster_replayed_frames_total", "Frames sent in "
		  "replays." },
		{ "cluster_claims_total", "Nick claims made." },
		{ "cluster_claims_taken_total", "Nick claims another "
		  "session had." },
		{ "cluster_direct_total", "Direct messages to other "
		  "servers." },
		{ "cluster_direct_failures_total", "Direct messages to "
		  "other servers without an answer." },
		{ "cluster_presence_writes_total", "Presence entries "
		  "written." },
		{ "cluster_nodes_lost_total", "Instances of other servers "
		  "counted gone." },
		{ "cluster_refused_total", "Bucket entries and heartbeats "
		  "refused: not as a server writes them." },
	};
	size_t	i;

	for (i = 0; i < CC_COUNT; i++)
		cl->m_counts[i] = cl->host->metric_new(cl->p,
		    AC_METRIC_COUNTER, defs[i].name, defs[i].help, NULL, 0);
	cl->m_link_up = cl->host->metric_new(cl->p, AC_METRIC_GAUGE,
	    "cluster_link_up", "1 while the link to NATS is up.", NULL, 0);
	cl->m_nodes = cl->host->metric_new(cl->p, AC_METRIC_GAUGE,
	    "cluster_nodes", "Other servers heard from.", NULL, 0);
	cl->m_remote = cl->host->metric_new(cl->p, AC_METRIC_GAUGE,
	    "cluster_remote_sessions", "Sessions of other servers.", NULL, 0);
	cl->m_waiting = cl->host->metric_new(cl->p, AC_METRIC_GAUGE,
	    "cluster_append_waiting", "Room messages waiting for the "
	    "stream.", NULL, 0);
}

/* Before a scrape. */
static void
cluster_collect(void *state)
{
	struct cluster	*cl = state;
	size_t		 i;

	for (i = 0; i < CC_COUNT; i++)
		cl->host->metric_set(cl->m_counts[i], (double)cl->counts[i]);
	cl->host->metric_set(cl->m_link_up, cl->state == LINK_UP ? 1 : 0);
	cl->host->metric_set(cl->m_nodes, (double)presence_nodes_alive(cl));
	cl->host->metric_set(cl->m_remote,
	    (double)presence_remote_count(cl));
}

/* The tick: every heartbeat. */
static void
cluster_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	link_tick(arg);
}

/*
 * history: status. While the link is down (never up, or lost for longer
 * than append_timeout) room messages are not kept and the stream cannot
 * be read; a link being set up again still counts as up, as messages wait
 * for it.
 */
static int
cluster_status(void *ctx, char *why, size_t len)
{
	struct cluster	*cl = ctx;

	if (link_usable(cl))
		return (0);
	snprintf(why, len, "the link to the other servers is down: room "
	    "messages are not kept, and history cannot be read now");
	return (-1);
}

/* history: last_seq, from what the process knows. */
static uint64_t
cluster_last_seq(void *ctx, const char *room, char *name, size_t namesize)
{
	struct room_state	*r;
	char			 fname[CLUSTER_ROOM_MAX + 1];

	(void)ctx;
	if (!roomname_valid_string(room))
		return (0);
	roomname_fold(fname, room);
	if ((r = room_get(fname)) == NULL)
		return (0);
	if (name != NULL && namesize > 0 && r->name[0] != '\0')
		snprintf(name, namesize, "%s", r->name);
	return (r->seq);
}

/* history: durable (not asked of a numbering backend). */
static int
cluster_durable(void *ctx)
{
	(void)ctx;
	return (1);
}

/* history: store (not called for a numbering backend): refused. */
static int
cluster_store(void *ctx, const struct ac_history_message *m,
    ac_history_stored_fn done, void *arg)
{
	(void)ctx;
	(void)m;
	(void)done;
	(void)arg;
	return (-1);
}

/* history: replay. */
static int
cluster_replay(void *ctx, struct ac_session *s,
    const struct ac_history_query *q, ac_history_replayed_fn done,
    void *arg)
{
	return (replay_start(ctx, s, q, done, arg));
}

/* history: it numbers. */
static int
cluster_numbers(void *ctx)
{
	(void)ctx;
	return (1);
}

/* history: append. */
static int
cluster_append(void *ctx, const char *room, ac_history_make_fn make,
    ac_history_appended_fn done, void *arg)
{
	return (append_start(ctx, room, make, done, arg));
}

/* history: listen. */
static void
cluster_listen_history(void *ctx, ac_history_live_fn fn, void *arg)
{
	struct cluster	*cl = ctx;

	cl->live = fn;
	cl->live_arg = arg;
}

/* cluster: node. */
static const char *
cluster_node(void *ctx)
{
	return (((struct cluster *)ctx)->opt.node);
}

/* cluster: up. */
static int
cluster_up(void *ctx)
{
	return (link_usable(ctx));
}

/* cluster: listen. */
static void
cluster_listen(void *ctx, const struct ac_cluster_listener *l)
{
	struct cluster	*cl = ctx;

	memset(&cl->listener, 0, sizeof cl->listener);
	memcpy(&cl->listener, l, l->size < sizeof cl->listener ? l->size :
	    sizeof cl->listener);
	cl->listening = 1;
}

/* cluster: claim. */
static int
cluster_claim(void *ctx, const char *id, const char *nick,
    ac_cluster_done_fn done, void *arg)
{
	return (nick_claim(ctx, id, nick, done, arg));
}

/* cluster: release. */
static void
cluster_release(void *ctx, const char *id, const char *nick)
{
	nick_release(ctx, id, nick);
}

/* cluster: presence. */
static void
cluster_presence(void *ctx, const struct ac_cluster_session *s)
{
	presence_local(ctx, s);
}

/* cluster: quit. */
static void
cluster_quit(void *ctx, const char *id, const char *reason)
{
	presence_quit(ctx, id, reason);
}

/* cluster: direct. */
static int
cluster_direct(void *ctx, const char *to, const struct ac_frame *f,
    ac_cluster_done_fn done, void *arg)
{
	return (direct_send(ctx, to, f, done, arg));
}

/* Free the state (its links are closed, its jobs completed). */
static void
cluster_free(struct cluster *cl)
{
	append_free_all(cl);
	presence_free_all(cl);
	nick_free_all(cl);
	if (cl->tick_ev != NULL)
		event_free(cl->tick_ev);
	if (cl->reconnect_ev != NULL)
		event_free(cl->reconnect_ev);
	if (cl->presence_ev != NULL)
		event_free(cl->presence_ev);
	mailbox_free(&cl->mb);
	natsconn_free(&cl->conn);
	cluster_names_free(&cl->names);
	free(cl->opt.prefix);
	room_release();
	free(cl);
}

/*
 * Read the options, publish the two interfaces, open libnats and start
 * connecting (a NATS that does not answer is no error: the link comes up
 * when it does).
 */
static int
cluster_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct cluster	*cl;
	struct timeval	 tv;

	if (host->size < sizeof *host) {
		host->log(p, AC_LOG_ERROR, "host API too old");
		return (-1);
	}
	if ((cl = calloc(1, sizeof *cl)) == NULL) {
		host->log(p, AC_LOG_ERROR, "out of memory");
		return (-1);
	}
	cl->p = p;
	cl->host = host;
	cl->mb.efd = -1;
	cl->state = LINK_CONNECTING;
	clock_gettime(CLOCK_MONOTONIC, &cl->state_since);
	TAILQ_INIT(&cl->retired);
	table_init(&cl->arooms);
	table_init(&cl->locals);
	table_init(&cl->remotes);
	table_init(&cl->insts);
	table_init(&cl->claims);
	table_init(&cl->wants);
	table_init(&cl->owned);
	room_hold();
	natsconn_init(&cl->conn, p, host);
	cluster_identity(cl);
	cluster_metrics(cl);
	if (mailbox_init(cl) != 0 || cluster_options(cl, opts, nopts) != 0 ||
	    cluster_names(cl) != 0 || natsconn_open_library(&cl->conn) != 0)
		goto fail;

	cl->history.size = sizeof cl->history;
	cl->history.ctx = cl;
	cl->history.last_seq = cluster_last_seq;
	cl->history.durable = cluster_durable;
	cl->history.store = cluster_store;
	cl->history.replay = cluster_replay;
	cl->history.status = cluster_status;
	cl->history.numbers = cluster_numbers;
	cl->history.append = cluster_append;
	cl->history.listen = cluster_listen_history;
	cl->iface.size = sizeof cl->iface;
	cl->iface.ctx = cl;
	cl->iface.node = cluster_node;
	cl->iface.up = cluster_up;
	cl->iface.listen = cluster_listen;
	cl->iface.claim = cluster_claim;
	cl->iface.release = cluster_release;
	cl->iface.presence = cluster_presence;
	cl->iface.quit = cluster_quit;
	cl->iface.direct = cluster_direct;
	if (host->interface_publish(p, AC_HISTORY_INTERFACE,
	    AC_HISTORY_VERSION, &cl->history) != 0) {
		host->log(p, AC_LOG_ERROR, "cannot publish the %s interface: "
		    "another history backend is loaded (the cluster plugin "
		    "keeps the history itself: do not load the history plugin "
		    "beside it)", AC_HISTORY_INTERFACE);
		goto fail;
	}
	if (host->interface_publish(p, AC_CLUSTER_INTERFACE,
	    AC_CLUSTER_VERSION, &cl->iface) != 0) {
		host->log(p, AC_LOG_ERROR, "cannot publish the %s interface: "
		    "is the plugin loaded twice?", AC_CLUSTER_INTERFACE);
		goto fail;
	}

	cl->tick_ev = event_new(host->event_base(p), -1, EV_PERSIST,
	    cluster_tick_cb, cl);
	if (link_init(cl) != 0)
		goto fail;
	tv.tv_sec = (time_t)cl->opt.heartbeat;
	tv.tv_usec = 0;
	if (cl->tick_ev == NULL || event_add(cl->tick_ev, &tv) != 0) {
		host->log(p, AC_LOG_ERROR, "cannot start the tick");
		goto fail;
	}
	host->log(p, AC_LOG_INFO, "node %s (instance %s), subject prefix %s, "
	    "servers %s, %d replica%s (libnats %s)", cl->opt.node,
	    cl->instance, cl->opt.prefix, cl->conn.servers_text,
	    cl->opt.replicas, cl->opt.replicas == 1 ? "" : "s",
	    nats_GetVersion());
	*state = cl;
	return (0);

fail:
	cluster_free(cl);
	return (-1);
}

/*
 * Every plugin has run init: check that chat is there to use the link,
 * and start connecting (as late as this, so that a chain that fails to
 * load never touches NATS).
 */
static int
cluster_ready(void *state)
{
	struct cluster	*cl = state;

	if (!cl->listening)
		cl->host->log(cl->p, AC_LOG_WARNING, "no chat plugin uses the "
		    "cluster link (load = chat, cluster)");
	return (link_start(cl));
}

/*
 * Stop: every job of the chain has completed (the host finishes a chain
 * only then); close the link, waiting for libnats' last callbacks, and
 * free the state. Nothing is called back into chat from here on.
 */
static void
cluster_fini(void *state)
{
	struct cluster	*cl = state;

	if (cl == NULL)
		return;
	cl->stopping = 1;
	if (cl->tick_ev != NULL)
		event_del(cl->tick_ev);
	if (link_stop(cl) != 0)
		return;		/* a callback may still use the state */
	cluster_free(cl);
}
