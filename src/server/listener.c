/*
 * listener.c - the sockets asyncchatd accepts on: tcp://HOST:PORT (IPv4,
 * [IPv6] or a name resolved when the listener opens), tls://HOST:PORT (the
 * same with TLS on top), ws://HOST:PORT and wss://HOST:PORT (HTTP, with
 * the web page and WebSocket sessions at /ws: http.c) and unix:///PATH.
 *
 * A host name is resolved with getaddrinfo(), which blocks: fine at start,
 * before the event loop runs, but not on SIGHUP, when sessions are being
 * served. A listener a reload adds must therefore give a numeric address
 * (LISTENER_NUMERIC); listeners the reload keeps are not resolved again.
 * An asynchronous lookup (evdns) would make a reload wait for DNS half
 * applied, for a listener address that should not depend on DNS anyway.
 *
 * A unix socket file left by a dead server is replaced only if nothing
 * answers on it, so a second server cannot steal a live one's socket.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

static void	listener_accept_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	listener_error_cb(struct evconnlistener *, void *);
static void	listener_retry_cb(evutil_socket_t, short, void *);

/*
 * A connection arrived. A TLS one gets the context of the configuration
 * running now, so after a reload new sessions see the new certificate.
 *
 * TCP and TLS sockets get TCP_NODELAY: a chat server writes small frames
 * whose peers wait for them, and Nagle's algorithm holds a small write
 * back until the previous one is acknowledged, which with the peer's
 * delayed ACK costs up to 40 ms (fan-out p99 went from about 43 ms to
 * about 6 ms). A failure only costs latency.
 */
static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener	*l = arg;
	int		 on = 1;

	if (l->type != AC_LISTEN_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	switch (l->type) {
	case AC_LISTEN_UNIX:
		session_accept(l->srv, fd, sa, salen, "unix", NULL);
		break;
	case AC_LISTEN_TLS:
		session_accept(l->srv, fd, sa, salen, "tls",
		    l->srv->cfg->tls_ctx);
		break;
	case AC_LISTEN_WS:
	case AC_LISTEN_WSS:
		http_accept(l, fd, sa, salen);
		break;
	default:
		session_accept(l->srv, fd, sa, salen, "tcp", NULL);
		break;
	}
}

/*
 * accept() failed. Out of descriptors, the listening socket would stay
 * readable and spin the loop, so it rests for a second.
 */
static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener		*l = arg;
	int			 err = EVUTIL_SOCKET_ERROR();
	struct timeval		 tv = { 1, 0 };

	log_warnx("accept on %s: %s", l->bound,
	    evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		evconnlistener_disable(l->evl);
		evtimer_add(l->retry, &tv);
	}
}

/* Start accepting again after a pause. */
static void
listener_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener	*l = arg;

	evconnlistener_enable(l->evl);
}

/* Non-zero if a bound address is on loopback (127/8 or ::1). */
static int
listener_is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*sin = (const void *)ss;
	const struct sockaddr_in6	*sin6 = (const void *)ss;

	if (ss->ss_family == AF_INET)
		return ((ntohl(sin->sin_addr.s_addr) >> 24) == 127);
	if (ss->ss_family == AF_INET6)
		return (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	return (0);
}

/* Open a TCP socket bound to lc's address; -1 with *cause. */
static int
listener_tcp(struct listener *l, const struct ac_listen_conf *lc,
    int backlog, int flags, char **cause)
{
	struct addrinfo		 hints, *res;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof ss;
	char			 host[NI_MAXHOST], port[NI_MAXSERV];
	const char		*scheme;
	int			 fd, on = 1, r;

	switch (lc->type) {
	case AC_LISTEN_TLS:
		scheme = "tls";
		break;
	case AC_LISTEN_WS:
		scheme = "ws";
		break;
	case AC_LISTEN_WSS:
		scheme = "wss";
		break;
	default:
		scheme = "tcp";
		break;
	}

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE|AI_NUMERICSERV;
	if (flags & LISTENER_NUMERIC)
		hints.ai_flags |= AI_NUMERICHOST;
	r = getaddrinfo(lc->host, lc->port, &hints, &res);
	if (r == EAI_NONAME && (flags & LISTENER_NUMERIC)) {
		ac_xasprintf(cause, "%s: a host name is resolved only at start "
		    "(on SIGHUP it would stop the server while DNS answers): "
		    "give a numeric address, or restart", lc->url);
		return (-1);
	}
	if (r != 0) {
		ac_xasprintf(cause, "%s: cannot resolve %s: %s", lc->url,
		    lc->host, gai_strerror(r));
		return (-1);
	}
	fd = socket(res->ai_family, res->ai_socktype|SOCK_CLOEXEC,
	    res->ai_protocol);
	if (fd == -1) {
		ac_xasprintf(cause, "%s: socket: %s", lc->url,
		    strerror(errno));
		freeaddrinfo(res);
		return (-1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	/* [::] means IPv6 only, so 0.0.0.0 can be listed beside it. */
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, backlog) == -1) {
		ac_xasprintf(cause, "%s: %s", lc->url, strerror(errno));
		freeaddrinfo(res);
		close(fd);
		return (-1);
	}
	freeaddrinfo(res);

	/*
	 * Port 0 picks a free port: say which one, for tests and users.
	 * Whether it is on loopback decides the web listeners' default
	 * origin policy (origin.c).
	 */
	memset(&ss, 0, sizeof ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
		l->loopback = listener_is_loopback(&ss);
	if (ss.ss_family != 0 && getnameinfo((struct sockaddr *)&ss, sslen,
	    host, sizeof host, port, sizeof port,
	    NI_NUMERICHOST|NI_NUMERICSERV) == 0) {
		if (ss.ss_family == AF_INET6)
			ac_xasprintf(&l->bound, "%s://[%s]:%s", scheme, host,
			    port);
		else
			ac_xasprintf(&l->bound, "%s://%s:%s", scheme, host,
			    port);
	} else
		l->bound = ac_xstrdup(lc->url);
	return (fd);
}

/*
 * Is something answering on the unix socket at path? 1 yes, 0 no (stale:
 * the connection was refused), -1 on another error (errno set).
 *
 * The probe never waits: this runs in the event loop (at start and on
 * SIGHUP), and a blocking connect() to a socket whose listen queue is
 * full sleeps until someone accepts, which whoever listens there need
 * never do. A full queue (EAGAIN) or a connection still being made
 * (EINPROGRESS) means someone listens: the path is in use.
 */
static int
listener_unix_alive(const char *path)
{
	struct sockaddr_un	sun;
	int			fd, r, error;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0);
	if (fd == -1)
		return (-1);
	r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	error = errno;
	close(fd);
	if (r == 0 || error == EAGAIN || error == EWOULDBLOCK ||
	    error == EINPROGRESS)
		return (1);
	if (error == ECONNREFUSED)
		return (0);
	errno = error;
	return (-1);
}

/* Open a unix socket at lc's path; -1 with *cause. */
static int
listener_unix(struct listener *l, const struct ac_listen_conf *lc,
    int backlog, mode_t mode, char **cause)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	mode_t			 old;
	int			 fd, r;

	if (strlen(lc->path) >= sizeof sun.sun_path) {
		ac_xasprintf(cause, "%s: path too long for a unix socket "
		    "(at most %zu bytes)", lc->url, sizeof sun.sun_path - 1);
		return (-1);
	}
	if (lstat(lc->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			ac_xasprintf(cause, "%s: %s exists and is not a "
			    "socket", lc->url, lc->path);
			return (-1);
		}
		r = listener_unix_alive(lc->path);
		if (r == 1) {
			ac_xasprintf(cause, "%s: address in use (a server is "
			    "answering on %s)", lc->url, lc->path);
			return (-1);
		}
		if (r == -1 && errno != ENOENT) {
			ac_xasprintf(cause, "%s: %s: %s", lc->url, lc->path,
			    strerror(errno));
			return (-1);
		}
		if (r == 0) {
			log_info("removing stale socket %s", lc->path);
			unlink(lc->path);
		}
	}

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, lc->path, strlen(lc->path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0)) == -1) {
		ac_xasprintf(cause, "%s: socket: %s", lc->url,
		    strerror(errno));
		return (-1);
	}
	/*
	 * bind() makes the socket file with the permissions the umask
	 * leaves, so the umask alone gives it unix_mode from the start: no
	 * window with looser permissions, and no chmod() by path afterwards,
	 * which follows a symbolic link that someone able to write the
	 * directory (/tmp) could put in the socket's place in the meantime.
	 */
	old = umask(~mode & 0777);
	r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (r == -1) {
		ac_xasprintf(cause, "%s: %s", lc->url, strerror(errno));
		close(fd);
		return (-1);
	}
	if (listen(fd, backlog) == -1 || lstat(lc->path, &st) == -1) {
		ac_xasprintf(cause, "%s: %s", lc->url, strerror(errno));
		unlink(lc->path);
		close(fd);
		return (-1);
	}
	/* Remembered to remove it at exit only if it is still ours. */
	if (!S_ISSOCK(st.st_mode)) {
		ac_xasprintf(cause, "%s: %s was replaced as it was made",
		    lc->url, lc->path);
		close(fd);
		return (-1);
	}
	l->path = ac_xstrdup(lc->path);
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->bound = ac_xstrdup(lc->url);
	return (fd);
}

/*
 * Open a listener for lc and start accepting; 0, or -1 with *cause. With
 * LISTENER_NUMERIC in flags, a host name is refused, not resolved.
 */
int
listener_open(struct server *srv, const struct ac_listen_conf *lc,
    int backlog, mode_t unix_mode, int flags, struct listener **lp,
    char **cause)
{
	struct listener	*l;
	int		 fd;

	*lp = NULL;
	l = ac_xcalloc(1, sizeof *l);
	l->srv = srv;
	l->url = ac_xstrdup(lc->url);
	l->type = lc->type;
	if (lc->type == AC_LISTEN_UNIX)
		fd = listener_unix(l, lc, backlog, unix_mode, cause);
	else
		fd = listener_tcp(l, lc, backlog, flags, cause);
	if (fd == -1) {
		free(l->url);
		free(l->bound);
		free(l->path);
		free(l);
		return (-1);
	}
	evutil_make_socket_nonblocking(fd);
	/* Backlog 0: the socket is already listening. */
	l->evl = evconnlistener_new(srv->base, listener_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE|LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l->evl == NULL) {
		ac_xasprintf(cause, "%s: cannot make a listener", lc->url);
		close(fd);
		l->evl = NULL;
		listener_free(l);
		return (-1);
	}
	evconnlistener_set_error_cb(l->evl, listener_error_cb);
	l->retry = evtimer_new(srv->base, listener_retry_cb, l);
	log_info("listening on %s", l->bound);
	*lp = l;
	return (0);
}

/* Stop accepting, close the socket and remove a unix socket file (only
 * if it is still the one we made). */
void
listener_free(struct listener *l)
{
	struct stat	st;

	if (l == NULL)
		return;
	if (l->evl != NULL)
		evconnlistener_free(l->evl);
	if (l->retry != NULL)
		event_free(l->retry);
	if (l->path != NULL && lstat(l->path, &st) == 0 &&
	    st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
	free(l->url);
	free(l->bound);
	free(l->path);
	free(l);
}
