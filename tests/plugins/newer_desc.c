/*
 * newer_desc.c - a test module whose descriptor is longer than the
 * server's, as one built against a later header would be, while it
 * declares an API the server has. The server must load it, reading only
 * the members it knows: the ones after them hold values no callback
 * could survive being called with.
 *
 * It answers every message with "newer:CONTENT" to its sender.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <asyncchat/plugin.h>

/* The descriptor of a future header: ours, then members we cannot know. */
struct newer_descriptor {
	struct ac_plugin_descriptor	 d;
	void				(*future[4])(void);
};

/* The host table and our handle. */
struct newer_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
};

static int	newer_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	newer_fini(void *);
static int	newer_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

__attribute__((visibility("default")))
const struct newer_descriptor ac_plugin_entry = {
	.d = {
		.abi_version = AC_PLUGIN_ABI_VERSION,
		.struct_size = sizeof(struct newer_descriptor),
		.api_version = AC_PLUGIN_API_VERSION,
		.name = "newer_desc",
		.version = "0",
		.description = "test: a descriptor longer than the server's",
		.init = newer_init,
		.fini = newer_fini,
		.process_message = newer_process_message,
	},
	.future = {
		(void (*)(void))abort, (void (*)(void))abort,
		(void (*)(void))abort, (void (*)(void))abort,
	},
};

/* Start; no options. */
static int
newer_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct newer_state	*ns;

	if ((ns = calloc(1, sizeof *ns)) == NULL)
		return -1;
	ns->p = p;
	ns->host = host;
	*state = ns;
	return 0;
}

/* Free the state. */
static void
newer_fini(void *state)
{
	free(state);
}

/* Answer "newer:CONTENT". */
static int
newer_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct newer_state	*ns = state;
	char			*buf;

	if ((buf = malloc(6 + msg->content_len)) == NULL)
		return -1;
	memcpy(buf, "newer:", 6);
	memcpy(buf + 6, msg->content, msg->content_len);
	ns->host->send(ns->p, from, AC_MSG_MESSAGE, msg->content_type, NULL,
	    buf, 6 + msg->content_len);
	free(buf);
	return AC_PLUGIN_CONTINUE;
}
