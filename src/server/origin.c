/*
 * origin.c - web_origins: which web pages may open a WebSocket session.
 *
 * A browser sends, with every WebSocket upgrade, the Origin of the page
 * whose script asks for it, and the page's script cannot change it. So
 * the Origin tells a page of ours from a page of any other site that a
 * user of ours happens to visit: that page's script could otherwise open
 * a session to us from the user's browser, which may reach a server the
 * page's author cannot (on loopback, on a private network). Whoever does
 * not run a browser sends what Origin they like, or none; the header is
 * no authentication, and the protocol's key is what keeps strangers out.
 *
 * The policy, checked by origin_allowed():
 *   - no Origin header: not a browser; allowed.
 *   - web_origins unset: the page's own origin only, that is the scheme
 *     of the listener (http for ws://, https for wss://) with the Host
 *     the request names. A Host can be any name that resolves to us,
 *     chosen by a hostile page through DNS rebinding, so on a listener
 *     bound to loopback the Host must also be a loopback name (localhost,
 *     127.x.x.x, [::1]); elsewhere, list the origins instead.
 *   - web_origins = *: any origin (unsafe: any site's pages may use the
 *     server through their visitors' browsers).
 *   - web_origins = a list: exactly those origins.
 * Origins compare without case, and without the scheme's default port
 * (http://h:80 is http://h).
 */
#include "config.h"

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

#define ORIGIN_MAX	300

/* Separators between the origins of a list. */
#define ORIGIN_SEP	", \t"

/*
 * Check "HOST[:PORT]" (a name, an IPv4 address, or an IPv6 one in
 * brackets) of len bytes and copy it to out in lower case, without the
 * port if it is defport. Returns 0, or -1 if it is not one.
 */
static int
origin_hostport(const char *s, size_t len, const char *defport, char *out,
    size_t outlen)
{
	const char	*port = NULL, *end = s + len, *p;
	size_t		 hostlen, i;
	unsigned long	 v;

	if (len == 0 || len >= outlen)
		return (-1);
	if (*s == '[') {
		if ((p = memchr(s, ']', len)) == NULL || p == s + 1)
			return (-1);
		for (i = 1; s + i < p; i++) {
			if (!isxdigit((unsigned char)s[i]) && s[i] != ':' &&
			    s[i] != '.')
				return (-1);
		}
		hostlen = p + 1 - s;
		if (p + 1 != end) {
			if (p[1] != ':')
				return (-1);
			port = p + 2;
		}
	} else {
		for (p = s; p < end && *p != ':'; p++) {
			if (!isalnum((unsigned char)*p) && *p != '-' &&
			    *p != '.' && *p != '_')
				return (-1);
		}
		hostlen = p - s;
		if (hostlen == 0)
			return (-1);
		if (p != end)
			port = p + 1;
	}
	if (port != NULL) {
		if (port == end || end - port > 5)
			return (-1);
		for (p = port, v = 0; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return (-1);
			v = v * 10 + (*p - '0');
		}
		if (v == 0 || v > 65535)
			return (-1);
		if ((size_t)(end - port) == strlen(defport) &&
		    memcmp(port, defport, end - port) == 0)
			port = NULL;
	}
	for (i = 0; i < hostlen; i++)
		out[i] = tolower((unsigned char)s[i]);
	if (port != NULL) {
		out[i++] = ':';
		memcpy(out + i, port, end - port);
		i += end - port;
	}
	out[i] = '\0';
	return (0);
}

/*
 * Normalise an origin of len bytes ("http://host[:port]" or https) into
 * out: lower case, no default port. Returns 0, or -1 if it is not an
 * origin of a web page we could have served.
 */
static int
origin_normalise(const char *s, size_t len, char *out, size_t outlen)
{
	const char	*defport;
	size_t		 n;

	if (len > 7 && strncasecmp(s, "http://", 7) == 0) {
		n = 7;
		defport = "80";
	} else if (len > 8 && strncasecmp(s, "https://", 8) == 0) {
		n = 8;
		defport = "443";
	} else
		return (-1);
	if (outlen <= n)
		return (-1);
	memcpy(out, n == 7 ? "http://" : "https://", n);
	return (origin_hostport(s + n, len - n, defport, out + n, outlen - n));
}

/* Non-zero if list is a valid web_origins value (the config check). */
int
origin_list_check(const char *list)
{
	char		 norm[ORIGIN_MAX];
	const char	*p = list;
	size_t		 len;
	int		 n = 0;

	if (strcmp(list, "*") == 0)
		return (1);
	for (;;) {
		p += strspn(p, ORIGIN_SEP);
		if (*p == '\0')
			break;
		len = strcspn(p, ORIGIN_SEP);
		if ((len == 1 && *p == '*') ||
		    origin_normalise(p, len, norm, sizeof norm) == -1)
			return (0);
		p += len;
		n++;
	}
	return (n != 0);
}

/* Non-zero if a Host value names this machine by a loopback name. */
int
origin_host_is_loopback(const char *host)
{
	struct in_addr	 in;
	char		 name[ORIGIN_MAX], *colon;

	if (origin_hostport(host, strlen(host), "", name, sizeof name) == -1)
		return (0);
	if (strncmp(name, "[::1]", 5) == 0 && (name[5] == '\0' ||
	    name[5] == ':'))
		return (1);
	if ((colon = strchr(name, ':')) != NULL)
		*colon = '\0';
	if (strcmp(name, "localhost") == 0)
		return (1);
	return (inet_pton(AF_INET, name, &in) == 1 &&
	    (ntohl(in.s_addr) >> 24) == 127);
}

/*
 * May a page of origin open a session? list is web_origins (NULL: the
 * page's own origin only), tls says the listener is wss://, host is the
 * request's Host (NULL if none), loopback that the listener is bound to
 * loopback. origin is NULL when the request has no Origin header.
 */
int
origin_allowed(const char *list, const char *origin, int tls,
    const char *host, int loopback)
{
	char		 want[ORIGIN_MAX], own[ORIGIN_MAX], norm[ORIGIN_MAX];
	const char	*p;
	size_t		 len;

	if (origin == NULL)
		return (1);
	if (list != NULL && strcmp(list, "*") == 0)
		return (1);
	if (origin_normalise(origin, strlen(origin), want, sizeof want) == -1)
		return (0);	/* "null", or nothing we would serve */
	if (list == NULL) {
		if (host == NULL ||
		    (loopback && !origin_host_is_loopback(host)))
			return (0);
		if (snprintf(own, sizeof own, "%s://%s", tls ? "https" :
		    "http", host) >= (int)sizeof own ||
		    origin_normalise(own, strlen(own), norm, sizeof norm) == -1)
			return (0);
		return (strcmp(norm, want) == 0);
	}
	for (p = list;;) {
		p += strspn(p, ORIGIN_SEP);
		if (*p == '\0')
			return (0);
		len = strcspn(p, ORIGIN_SEP);
		if (origin_normalise(p, len, norm, sizeof norm) == 0 &&
		    strcmp(norm, want) == 0)
			return (1);
		p += len;
	}
}
