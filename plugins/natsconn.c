/*
 * natsconn.c - the connection options the plugins that reach NATS share
 * (nats, cluster): servers, user and password, token, credentials, TLS,
 * reconnect_wait; read from their sections and made into libnats'
 * natsOptions, with the reconnection policy both want (reconnect for
 * ever, every reconnect_wait; retry a first connect that fails, so that a
 * NATS down at start is no error).
 *
 * Each plugin keeps the keys of its own and hands every option to
 * natsconn_option() first: 1 when it was a connection key (read), 0 when
 * it is not one, -1 when its value is bad (logged with the line).
 *
 * libnats is one per process and shared by both plugins, whose instances
 * come and go with reloads, so it is opened as often as an instance
 * starts (nats_Open is a no-op once open) and never closed: closing it
 * would stop the library's threads under the other plugin's connections.
 * The plugins are linked -z nodelete, so the library stays mapped too.
 *
 * Both also wait, bounded, for libnats' last callbacks on a connection
 * they close (natsconn_wait).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <asyncchat/option.h>

#include "natsconn.h"

/* An empty set of options, with the defaults. */
void
natsconn_init(struct natsconn *nc, struct ac_plugin *p,
    const struct ac_host_api *host)
{
	memset(nc, 0, sizeof *nc);
	nc->p = p;
	nc->host = host;
	nc->reconnect_wait = NATSCONN_DEFAULT_RECONNECT_WAIT;
}

/* Split the comma-separated servers value into nc->servers. */
static int
natsconn_servers(struct natsconn *nc, const struct ac_plugin_option *o)
{
	char	*copy, *cp, *tok, *end;

	if ((copy = strdup(o->value)) == NULL)
		return (-1);
	for (cp = copy; (tok = strsep(&cp, ",")) != NULL; ) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if (strncmp(tok, "nats://", 7) != 0 &&
		    strncmp(tok, "tls://", 6) != 0) {
			nc->host->log(nc->p, AC_LOG_ERROR, "line %d: servers: "
			    "'%s' is not a nats:// or tls:// URL", o->line,
			    tok);
			free(copy);
			return (-1);
		}
		if (nc->nservers == NATSCONN_MAX_SERVERS) {
			nc->host->log(nc->p, AC_LOG_ERROR, "line %d: servers: "
			    "more than %d URLs", o->line,
			    NATSCONN_MAX_SERVERS);
			free(copy);
			return (-1);
		}
		if ((nc->servers[nc->nservers] = strdup(tok)) == NULL) {
			free(copy);
			return (-1);
		}
		nc->nservers++;
	}
	free(copy);
	if (nc->nservers == 0) {
		nc->host->log(nc->p, AC_LOG_ERROR, "line %d: servers: no URL "
		    "given", o->line);
		return (-1);
	}
	return (0);
}

/* Keep a copy of a string option in *slot; returns 0, or -1. */
static int
natsconn_string(char **slot, const char *value)
{
	free(*slot);
	*slot = strdup(value);
	return (*slot == NULL ? -1 : 0);
}

/*
 * Read one option if it is a connection option: 1 when it was (and is
 * kept), 0 when it is not one, -1 when its value is bad (logged). The
 * caller refuses a key given twice.
 */
int
natsconn_option(struct natsconn *nc, const struct ac_plugin_option *o)
{
	unsigned long long	v;
	char			**slot = NULL;

	if (strcmp(o->key, "servers") == 0)
		return (natsconn_servers(nc, o) == 0 ? 1 : -1);
	if (strcmp(o->key, "reconnect_wait") == 0) {
		if (ac_option_uint(o->value, 1, 3600000ULL, &v) != 0) {
			nc->host->log(nc->p, AC_LOG_ERROR, "line %d: "
			    "reconnect_wait: bad value '%s' (expected a "
			    "positive integer of milliseconds)", o->line,
			    o->value);
			return (-1);
		}
		nc->reconnect_wait = (int64_t)v;
		return (1);
	}
	if (strcmp(o->key, "user") == 0) {
		slot = &nc->user;
		nc->line_user = o->line;
	} else if (strcmp(o->key, "credentials") == 0) {
		slot = &nc->credentials;
		nc->line_user = o->line;
	} else if (strcmp(o->key, "token") == 0) {
		slot = &nc->token;
		nc->line_token = o->line;
	} else if (strcmp(o->key, "password") == 0)
		slot = &nc->password;
	else if (strcmp(o->key, "tls_ca") == 0)
		slot = &nc->tls_ca;
	else if (strcmp(o->key, "tls_cert") == 0)
		slot = &nc->tls_cert;
	else if (strcmp(o->key, "tls_key") == 0)
		slot = &nc->tls_key;
	else if (strcmp(o->key, "tls_hostname") == 0)
		slot = &nc->tls_hostname;
	else
		return (0);
	return (natsconn_string(slot, o->value) == 0 ? 1 : -1);
}

/*
 * Check the options together and fill in the defaults, once every option
 * is read. Returns 0, or -1 (logged).
 */
int
natsconn_finish(struct natsconn *nc)
{
	size_t	len;
	int	i, off;

	if (nc->password != NULL && nc->user == NULL) {
		nc->host->log(nc->p, AC_LOG_ERROR, "password given without "
		    "user");
		return (-1);
	}
	if (nc->line_token != 0 && nc->line_user != 0) {
		nc->host->log(nc->p, AC_LOG_ERROR, "line %d: token cannot be "
		    "combined with user or credentials (line %d)",
		    nc->line_token, nc->line_user);
		return (-1);
	}
	if (nc->user != NULL && nc->credentials != NULL) {
		nc->host->log(nc->p, AC_LOG_ERROR, "user and credentials "
		    "cannot be combined");
		return (-1);
	}
	if ((nc->tls_cert == NULL) != (nc->tls_key == NULL)) {
		nc->host->log(nc->p, AC_LOG_ERROR, "tls_cert and tls_key go "
		    "together");
		return (-1);
	}
	if (nc->nservers == 0) {
		if ((nc->servers[0] = strdup(NATSCONN_DEFAULT_SERVER)) ==
		    NULL)
			return (-1);
		nc->nservers = 1;
	}
	len = 1;
	for (i = 0; i < nc->nservers; i++)
		len += strlen(nc->servers[i]) + 2;
	if ((nc->servers_text = calloc(1, len)) == NULL)
		return (-1);
	for (off = 0, i = 0; i < nc->nservers; i++)
		off += snprintf(nc->servers_text + off, len - (size_t)off,
		    "%s%s", i != 0 ? ", " : "", nc->servers[i]);
	return (0);
}

/* Log a libnats failure, with the library's own explanation; -1. */
static int
natsconn_error(struct natsconn *nc, const char *what, natsStatus s)
{
	const char	*text;

	text = nats_GetLastError(NULL);
	nc->host->log(nc->p, AC_LOG_ERROR, "%s: %s", what,
	    text != NULL && *text != '\0' ? text : natsStatus_GetText(s));
	return (-1);
}

/*
 * Make libnats' options: the servers, the connection's name (the node),
 * the reconnection policy, the credentials and TLS. The caller sets its
 * callbacks (and the rest) on *out, and destroys it. Returns 0, or -1
 * (logged).
 */
int
natsconn_options(struct natsconn *nc, const char *name, natsOptions **out)
{
	natsOptions	*o;
	natsStatus	 s;

	*out = NULL;
	if ((s = natsOptions_Create(&o)) != NATS_OK)
		return (natsconn_error(nc, "natsOptions_Create", s));
	*out = o;
	if ((s = natsOptions_SetServers(o, (const char **)nc->servers,
	    nc->nservers)) != NATS_OK)
		return (natsconn_error(nc, "servers", s));
	if ((s = natsOptions_SetName(o, name)) != NATS_OK ||
	    (s = natsOptions_SetTimeout(o, NATSCONN_CONNECT_TIMEOUT)) !=
	    NATS_OK ||
	    (s = natsOptions_SetAllowReconnect(o, true)) != NATS_OK ||
	    (s = natsOptions_SetMaxReconnect(o, -1)) != NATS_OK ||
	    (s = natsOptions_SetReconnectWait(o, nc->reconnect_wait)) !=
	    NATS_OK)
		return (natsconn_error(nc, "libnats options", s));
	if (nc->user != NULL && (s = natsOptions_SetUserInfo(o, nc->user,
	    nc->password != NULL ? nc->password : "")) != NATS_OK)
		return (natsconn_error(nc, "user", s));
	if (nc->token != NULL &&
	    (s = natsOptions_SetToken(o, nc->token)) != NATS_OK)
		return (natsconn_error(nc, "token", s));
	if (nc->credentials != NULL && (s =
	    natsOptions_SetUserCredentialsFromFiles(o, nc->credentials,
	    NULL)) != NATS_OK)
		return (natsconn_error(nc, "credentials", s));
	if (nc->tls_ca != NULL || nc->tls_cert != NULL ||
	    nc->tls_hostname != NULL) {
		if ((s = natsOptions_SetSecure(o, true)) != NATS_OK)
			return (natsconn_error(nc, "TLS", s));
	}
	if (nc->tls_ca != NULL && (s = natsOptions_LoadCATrustedCertificates(o,
	    nc->tls_ca)) != NATS_OK)
		return (natsconn_error(nc, "tls_ca", s));
	if (nc->tls_cert != NULL && (s = natsOptions_LoadCertificatesChain(o,
	    nc->tls_cert, nc->tls_key)) != NATS_OK)
		return (natsconn_error(nc, "tls_cert/tls_key", s));
	if (nc->tls_hostname != NULL && (s =
	    natsOptions_SetExpectedHostname(o, nc->tls_hostname)) != NATS_OK)
		return (natsconn_error(nc, "tls_hostname", s));
	return (0);
}

/*
 * Open libnats (a no-op when it is open already). Its threads inherit the
 * creator's signal mask: every signal is blocked meanwhile, so that
 * signals reach only the loop thread, where the server handles them.
 * Returns 0, or -1 (logged).
 */
int
natsconn_open_library(struct natsconn *nc)
{
	sigset_t	all, old;
	natsStatus	s;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	s = nats_Open(-1);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (s != NATS_OK)
		return (natsconn_error(nc, "cannot initialise libnats", s));
	return (0);
}

/*
 * Wait, with mu held, until *flag is set (by a libnats callback, under mu,
 * with cond signalled) or ms milliseconds pass; 0, or -1 on timeout.
 */
int
natsconn_wait(pthread_cond_t *cond, pthread_mutex_t *mu, const int *flag,
    int ms)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!*flag) {
		if (pthread_cond_timedwait(cond, mu, &ts) == ETIMEDOUT)
			return (*flag ? 0 : -1);
	}
	return (0);
}

/* Free the options' strings (secrets wiped first). */
void
natsconn_free(struct natsconn *nc)
{
	int	i;

	for (i = 0; i < nc->nservers; i++)
		free(nc->servers[i]);
	nc->nservers = 0;
	free(nc->servers_text);
	free(nc->user);
	if (nc->password != NULL)
		explicit_bzero(nc->password, strlen(nc->password));
	free(nc->password);
	if (nc->token != NULL)
		explicit_bzero(nc->token, strlen(nc->token));
	free(nc->token);
	free(nc->credentials);
	free(nc->tls_ca);
	free(nc->tls_cert);
	free(nc->tls_key);
	free(nc->tls_hostname);
	memset(nc, 0, sizeof *nc);
}
