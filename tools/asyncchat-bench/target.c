/*
 * target.c - the address under test: "HOST:PORT", "tcp://HOST:PORT",
 * "[::1]:PORT", "unix:PATH", "unix://PATH" or a path starting with '/'.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Split text into a TCP host and port or a unix path; -1 if malformed. */
int
target_parse(struct target *t, const char *text)
{
	struct sockaddr_un	 sun;
	const char		*p = text, *colon;

	memset(t, 0, sizeof *t);
	t->text = strdup(text);
	if (strncmp(p, "unix://", 7) == 0 || strncmp(p, "unix:", 5) == 0 ||
	    *p == '/') {
		if (strncmp(p, "unix://", 7) == 0)
			p += 7;
		else if (strncmp(p, "unix:", 5) == 0)
			p += 5;
		if (*p == '\0' || strlen(p) >= sizeof sun.sun_path)
			return -1;
		t->is_unix = 1;
		t->path = strdup(p);
		return 0;
	}
	if (strncmp(p, "tcp://", 6) == 0)
		p += 6;
	if (*p == '[') {
		if ((colon = strchr(p, ']')) == NULL || colon[1] != ':')
			return -1;
		t->host = strndup(p + 1, colon - p - 1);
		colon++;
	} else {
		if ((colon = strrchr(p, ':')) == NULL)
			return -1;
		t->host = strndup(p, colon - p);
	}
	t->port = strdup(colon + 1);
	if (*t->host == '\0' || *t->port == '\0')
		return -1;
	return 0;
}

/* Start a non-blocking connect to the target; the socket, or -1. */
int
target_connect(const struct target *t)
{
	struct addrinfo		 hints, *res;
	struct sockaddr_un	 sun;
	int			 fd, one = 1;

	if (t->is_unix) {
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
			return -1;
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		strncpy(sun.sun_path, t->path, sizeof sun.sun_path - 1);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1 &&
		    errno != EINPROGRESS && errno != EAGAIN) {
			close(fd);
			return -1;
		}
		return fd;
	}

	/* Numeric addresses (the norm for a benchmark) resolve without I/O. */
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(t->host, t->port, &hints, &res) != 0)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd == -1) {
		freeaddrinfo(res);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, res->ai_addr, res->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Release a parsed target. */
void
target_free(struct target *t)
{
	free(t->text);
	free(t->host);
	free(t->port);
	free(t->path);
	memset(t, 0, sizeof *t);
}
