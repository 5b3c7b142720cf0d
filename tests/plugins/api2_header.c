/*
 * api2_header.c - a test module built against the plugin API 2 header kept
 * in tests/plugins/v2 (include/asyncchat/plugin.h of commit bff2cd4), the
 * way a plugin built before API 3 and never rebuilt meets a server that
 * decodes frames without building their header objects.
 *
 * It reads the header object through the struct member, as API 2 allowed:
 * at session_open it answers "api2 ack nick=NICK" from the session_ack's
 * header, and it answers every message with "api2 N tag=TAG": the number
 * of members of the message's header object and its "tag" member ("-"
 * when absent). Without the object it says "api2 no header".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <asyncchat/plugin.h>

#if AC_PLUGIN_API_VERSION != 2
#error "api2_header.c must be built against tests/plugins/v2/asyncchat/plugin.h"
#endif

#define API2_TEXT	"text/plain; charset=utf-8"

/* The host table and our handle. */
struct api2_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
};

static int	api2_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	api2_fini(void *);
static void	api2_session_open(void *, struct ac_session *);
static int	api2_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "api2_header",
	.version = "2",
	.description = "test: built against the API 2 header, reads "
	    "msg->header",
	.init = api2_init,
	.fini = api2_fini,
	.session_open = api2_session_open,
	.process_message = api2_process_message,
};

/* Start; no options. */
static int
api2_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct api2_state	*as;

	if (nopts > 0) {
		host->log(p, AC_LOG_ERROR, "line %d: unknown option '%s'",
		    opts[0].line, opts[0].key);
		return -1;
	}
	if ((as = calloc(1, sizeof *as)) == NULL)
		return -1;
	as->p = p;
	as->host = host;
	*state = as;
	return 0;
}

/* Free the state. */
static void
api2_fini(void *state)
{
	free(state);
}

/* The string member name of a header object, or "-". */
static const char *
api2_member(struct json_object *header, const char *name)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(header, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "-";
	return json_object_get_string(v);
}

/* Send text to s. */
static void
api2_say(struct api2_state *as, struct ac_session *s, const char *text)
{
	as->host->send(as->p, s, AC_MSG_MESSAGE, API2_TEXT, NULL, text,
	    strlen(text));
}

/* Answer the nick of the session_ack, read from its header object. */
static void
api2_session_open(void *state, struct ac_session *s)
{
	struct api2_state	*as = state;
	const struct ac_message	*ack;
	char			 reply[256];

	if ((ack = as->host->session_ack(as->p, s)) == NULL)
		return;
	if (ack->header == NULL) {
		api2_say(as, s, "api2 no header");
		return;
	}
	snprintf(reply, sizeof reply, "api2 ack nick=%s",
	    api2_member(ack->header, "nick"));
	api2_say(as, s, reply);
}

/* Answer the size of the message's header object and its tag. */
static int
api2_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct api2_state	*as = state;
	char			 reply[256];

	if (msg->header == NULL) {
		api2_say(as, from, "api2 no header");
		return AC_PLUGIN_CONTINUE;
	}
	snprintf(reply, sizeof reply, "api2 %d tag=%s",
	    json_object_object_length(msg->header),
	    api2_member(msg->header, "tag"));
	api2_say(as, from, reply);
	return AC_PLUGIN_CONTINUE;
}
