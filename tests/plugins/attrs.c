/*
 * attrs.c - a test module for session attributes. Loaded twice under two
 * names (a symlink), it shows what one plugin's attributes look like to
 * the next in the chain.
 *
 * Option: set = KEY[,KEY...]: for each KEY, a message whose header has a
 * string member KEY sets the session's attribute KEY to it (an empty
 * string removes it). Then the plugin answers its sender with
 *
 *	NAME: key=value@owner;key=value@owner | set KEY=RESULT ...
 *
 * listing every attribute of the session in order and the result of each
 * session_attr_set it made (AC_ATTR_OK 0 or a negative AC_ATTR_* code).
 * A member "attr_probe": KEY makes it report session_attr(KEY) too, as
 * "probe KEY=VALUE" (or "probe KEY=-" when unset).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncchat/plugin.h>

#define ATTRS_MAX_KEYS	8
#define ATTRS_REPLY	8192

/* The keys to set and the host table. */
struct attrs_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	char				*keys[ATTRS_MAX_KEYS];
	size_t				 nkeys;
};

/* A reply being built. */
struct attrs_reply {
	char	buf[ATTRS_REPLY];
	size_t	len;
};

static int	attrs_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	attrs_fini(void *);
static int	attrs_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "attrs",
	.version = "0",
	.description = "test: sets and reports session attributes",
	.init = attrs_init,
	.fini = attrs_fini,
	.process_message = attrs_process_message,
};

/* Append printf-style text to a reply, cutting it at the buffer's end. */
static void __attribute__((format(printf, 2, 3)))
attrs_add(struct attrs_reply *r, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (r->len >= sizeof r->buf - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->buf + r->len, sizeof r->buf - r->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->len += (size_t)n < sizeof r->buf - r->len ? (size_t)n :
		    sizeof r->buf - r->len - 1;
}

/* One attribute into the reply. */
static int
attrs_list_one(const char *key, const char *value, const char *owner,
    void *arg)
{
	attrs_add(arg, "%s=%s@%s;", key, value, owner);
	return 0;
}

/* Free the state. */
static void
attrs_free(struct attrs_state *as)
{
	size_t	i;

	for (i = 0; i < as->nkeys; i++)
		free(as->keys[i]);
	free(as);
}

/* Read the set option. */
static int
attrs_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct attrs_state	*as;
	char			*copy, *cp, *tok;
	size_t			 i;

	if (!AC_HOST_HAS(host, session_attr_foreach)) {
		host->log(p, AC_LOG_ERROR, "host without session attributes");
		return -1;
	}
	if ((as = calloc(1, sizeof *as)) == NULL)
		return -1;
	as->p = p;
	as->host = host;
	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "set") != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: set)", opts[i].line, opts[i].key);
			attrs_free(as);
			return -1;
		}
		if ((copy = strdup(opts[i].value)) == NULL) {
			attrs_free(as);
			return -1;
		}
		for (cp = copy; (tok = strsep(&cp, ", ")) != NULL; ) {
			if (*tok == '\0' || as->nkeys == ATTRS_MAX_KEYS)
				continue;
			as->keys[as->nkeys++] = strdup(tok);
		}
		free(copy);
	}
	*state = as;
	return 0;
}

/* Free the state. */
static void
attrs_fini(void *state)
{
	attrs_free(state);
}

/* Set what the message asks for, then report the session's attributes. */
static int
attrs_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct attrs_state	*as = state;
	struct attrs_reply	 r;
	const char		*v, *probe;
	int			 results[ATTRS_MAX_KEYS], tried[ATTRS_MAX_KEYS];
	size_t			 i;

	for (i = 0; i < as->nkeys; i++) {
		tried[i] = 0;
		if ((v = ac_message_get_string(msg, as->keys[i])) == NULL)
			continue;
		tried[i] = 1;
		results[i] = as->host->session_attr_set(as->p, from,
		    as->keys[i], *v == '\0' ? NULL : v);
	}

	r.len = 0;
	r.buf[0] = '\0';
	attrs_add(&r, "%s: ", as->host->plugin_name(as->p));
	as->host->session_attr_foreach(from, attrs_list_one, &r);
	attrs_add(&r, " |");
	for (i = 0; i < as->nkeys; i++) {
		if (tried[i])
			attrs_add(&r, " set %s=%d", as->keys[i], results[i]);
	}
	if ((probe = ac_message_get_string(msg, "attr_probe")) != NULL) {
		v = as->host->session_attr(from, probe);
		attrs_add(&r, " probe %s=%s", probe, v != NULL ? v : "-");
	}
	as->host->send(as->p, from, AC_MSG_MESSAGE,
	    "text/plain; charset=utf-8", NULL, r.buf, r.len);
	return AC_PLUGIN_CONTINUE;
}
