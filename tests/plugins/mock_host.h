/*
 * mock_host.h - a fake server for plugin unit tests.
 *
 * It offers a complete struct ac_host_api whose functions record what a
 * plugin asked for (relays, sends, log lines) instead of doing it, over fake
 * sessions and frames, so a plugin .so is tested without a server (the idea
 * of collectd's libplugin_mock). The opaque handles of plugin.h are given
 * bodies here; plugins never see inside them.
 */
#ifndef MOCK_HOST_H
#define MOCK_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <asyncchat/frame.h>
#include <asyncchat/plugin.h>
#include <asyncchat/uuid.h>

#define MOCK_MAX_SESSIONS	8
#define MOCK_MAX_CALLS		64
#define MOCK_MAX_ATTRS		8
#define MOCK_MAX_METRICS	16

/* A fake session: what host->session_* answer, and what it was sent. */
struct ac_session {
	char			 id[AC_UUID_STRLEN + 1];
	char			 peer[64];
	const char		*transport;
	int			 handshaken;

	int			 relayed;	/* frames relayed to it */
	const struct ac_frame	*last_relayed;
	int			 sent;		/* new frames sent to it */

	void			*data;		/* one plugin's slot */
	void			(*destroy)(void *);

	char			*attr_key[MOCK_MAX_ATTRS];	/* owned */
	char			*attr_value[MOCK_MAX_ATTRS];
	char			*attr_owner[MOCK_MAX_ATTRS];
	size_t			 nattrs;
};

/* A metric a plugin registered, with what it was last given. */
struct ac_metric {
	enum ac_metric_type	 type;
	char			 name[128];
	double			 value;		/* counter, gauge */
	unsigned long		 observed;	/* histogram */
	double			 sum;
};

/* A fake received frame: just bytes, compared by pointer. */
struct ac_frame {
	const uint8_t		*bytes;
	size_t			 len;
};

/* What kind of host call a record is. */
enum mock_call_kind {
	MOCK_LOG,
	MOCK_RELAY,
	MOCK_RELAY_ALL,
	MOCK_SEND,
	MOCK_CLOSE,
};

/* One recorded host call. Strings and content are copies owned here. */
struct mock_call {
	enum mock_call_kind	 kind;
	enum ac_log_level	 level;		/* MOCK_LOG */
	char			*text;		/* log text, close reason */
	struct ac_session	*session;	/* to, except or closed */
	const struct ac_frame	*frame;		/* relays */
	enum ac_msg_type	 type;		/* MOCK_SEND */
	char			*content_type;	/* MOCK_SEND, may be NULL */
	uint8_t			*content;	/* MOCK_SEND */
	size_t			 content_len;
};

/* The host's record of the one plugin under test. */
struct ac_plugin {
	struct mock_host	*host;
	const char		*name;
};

/* The fake server: sessions, recorded calls and the API table. */
struct mock_host {
	struct ac_host_api	 api;
	struct ac_session	 sessions[MOCK_MAX_SESSIONS];
	size_t			 nsessions;
	struct mock_call	 calls[MOCK_MAX_CALLS];
	size_t			 ncalls;

	/* The frame mock_plugin_message hands to the plugin. */
	struct ac_frame		 frame;

	struct ac_metric	 metrics[MOCK_MAX_METRICS];
	size_t			 nmetrics;
};

/* A plugin .so opened with dlopen, with its descriptor and state. */
struct mock_plugin {
	void				*dl;
	const struct ac_plugin_descriptor *desc;
	struct ac_plugin		 handle;
	struct mock_host		*host;
	void				*state;
	int				 started;
};

/* mock_host.c */
void	mock_host_init(struct mock_host *);
void	mock_host_clear(struct mock_host *);
void	mock_host_reset_calls(struct mock_host *);
struct ac_session *mock_session_add(struct mock_host *, const char *,
	    const char *, const char *, int);
size_t	mock_count(const struct mock_host *, enum mock_call_kind);
const struct mock_call *mock_find(const struct mock_host *,
	    enum mock_call_kind, size_t);
size_t	mock_log_count(const struct mock_host *, enum ac_log_level,
	    const char *);
char	*mock_module_path(const char *, const char *, const char *);
int	mock_plugin_open(struct mock_plugin *, struct mock_host *,
	    const char *, const char *);
int	mock_plugin_start(struct mock_plugin *,
	    const struct ac_plugin_option *, size_t);
void	mock_plugin_stop(struct mock_plugin *);
void	mock_plugin_close(struct mock_plugin *);
int	mock_plugin_message(struct mock_plugin *, struct ac_session *,
	    enum ac_msg_type, const char *, const void *, size_t);
const struct ac_metric *mock_metric(const struct mock_host *, const char *);

#endif /* MOCK_HOST_H */
