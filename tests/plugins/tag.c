/*
 * tag.c - a test module that answers every message with a new `message` to
 * its sender whose content is "TAG:" followed by the original content. With
 * several tag plugins in a chain, the replies show the order they ran in.
 *
 * Option: tag = TAG (required).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <asyncchat/plugin.h>

/* The tag and the host table. */
struct tag_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	char				*tag;
	size_t				 taglen;
};

static int	tag_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	tag_fini(void *);
static int	tag_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "tag",
	.version = "0",
	.description = "test: replies TAG:content to the sender",
	.init = tag_init,
	.fini = tag_fini,
	.process_message = tag_process_message,
};

/* Read the tag option. */
static int
tag_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct tag_state	*ts;
	const char		*tag = NULL;
	size_t			 i;

	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "tag") != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: tag)", opts[i].line, opts[i].key);
			return -1;
		}
		tag = opts[i].value;
	}
	if (tag == NULL) {
		host->log(p, AC_LOG_ERROR, "missing required option 'tag'");
		return -1;
	}
	if ((ts = calloc(1, sizeof *ts)) == NULL ||
	    (ts->tag = strdup(tag)) == NULL) {
		free(ts);
		host->log(p, AC_LOG_ERROR, "out of memory");
		return -1;
	}
	ts->p = p;
	ts->host = host;
	ts->taglen = strlen(tag);
	*state = ts;
	return 0;
}

/* Free the state. */
static void
tag_fini(void *state)
{
	struct tag_state	*ts = state;

	free(ts->tag);
	free(ts);
}

/* Send "TAG:" + content back to the sender as a new message. */
static int
tag_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct tag_state	*ts = state;
	char			*buf;
	size_t			 len;

	len = ts->taglen + 1 + msg->content_len;
	if ((buf = malloc(len)) == NULL)
		return -1;
	memcpy(buf, ts->tag, ts->taglen);
	buf[ts->taglen] = ':';
	memcpy(buf + ts->taglen + 1, msg->content, msg->content_len);
	if (ts->host->send(ts->p, from, AC_MSG_MESSAGE, msg->content_type,
	    NULL, buf, len) != 0)
		ts->host->log(ts->p, AC_LOG_WARNING, "send to %s failed",
		    ts->host->session_id(from));
	free(buf);
	return AC_PLUGIN_CONTINUE;
}
