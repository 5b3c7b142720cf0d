/*
 * natsconn.h - how the plugins that reach NATS (nats, cluster) read their
 * connection options and make libnats' options from them: one spelling
 * of `servers`, the credentials, TLS and `reconnect_wait` for both
 * (docs/SCALING.md), and how they wait for libnats' callbacks.
 * Compiled into each of them; nothing is installed.
 */
#ifndef PLUGINS_NATSCONN_H
#define PLUGINS_NATSCONN_H

#include <pthread.h>
#include <stdint.h>

#include <nats/nats.h>

#include <asyncchat/plugin.h>

#define NATSCONN_DEFAULT_SERVER		"nats://127.0.0.1:4222"
#define NATSCONN_DEFAULT_RECONNECT_WAIT	2000	/* ms, libnats' own */
#define NATSCONN_CONNECT_TIMEOUT	2000	/* ms, per connect attempt */
#define NATSCONN_MAX_SERVERS		64

/* The connection options of one plugin instance. */
struct natsconn {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;

	char		*servers[NATSCONN_MAX_SERVERS];
	int		 nservers;
	char		*servers_text;	/* "a, b", for the log */
	char		*user;
	char		*password;
	char		*token;
	char		*credentials;
	char		*tls_ca;
	char		*tls_cert;
	char		*tls_key;
	char		*tls_hostname;
	int64_t		 reconnect_wait;

	int		 line_token;	/* where token was given */
	int		 line_user;	/* user or credentials */
};

void	natsconn_init(struct natsconn *nc, struct ac_plugin *p,
	    const struct ac_host_api *host);
int	natsconn_option(struct natsconn *nc, const struct ac_plugin_option *o);
int	natsconn_finish(struct natsconn *nc);
int	natsconn_options(struct natsconn *nc, const char *name,
	    natsOptions **out);
int	natsconn_open_library(struct natsconn *nc);
int	natsconn_wait(pthread_cond_t *cond, pthread_mutex_t *mu,
	    const int *flag, int ms);
void	natsconn_free(struct natsconn *nc);

#endif /* PLUGINS_NATSCONN_H */
