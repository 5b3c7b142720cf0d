/*
 * hostport.c - split "HOST:PORT" and "[IPV6]:PORT".
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <asyncchat/option.h>

#include "hostport.h"
#include "xmalloc.h"

/* Split s into host and port (heap strings); -1 with *why if malformed. */
int
hostport_parse(const char *s, char **host, char **port, const char **why)
{
	const char		*colon, *close;
	unsigned long long	 n;
	char			*h;

	*host = *port = NULL;
	if (*s == '[') {
		if ((close = strchr(s, ']')) == NULL || close[1] != ':') {
			*why = "expected [IPV6]:PORT";
			return (-1);
		}
		h = ac_xmalloc(close - s);
		memcpy(h, s + 1, close - s - 1);
		h[close - s - 1] = '\0';
		colon = close + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			*why = "missing :PORT (expected HOST:PORT)";
			return (-1);
		}
		h = ac_xmalloc(colon - s + 1);
		memcpy(h, s, colon - s);
		h[colon - s] = '\0';
		if (strchr(h, ':') != NULL) {
			free(h);
			*why = "an IPv6 address needs brackets: [::1]:PORT";
			return (-1);
		}
	}
	if (*h == '\0') {
		free(h);
		*why = "missing host (use 0.0.0.0 or [::] for every address)";
		return (-1);
	}
	if (ac_option_uint(colon + 1, 0, 65535, &n) == -1) {
		free(h);
		*why = "bad port (expected 0 to 65535)";
		return (-1);
	}
	*host = h;
	*port = ac_xstrdup(colon + 1);
	return (0);
}
