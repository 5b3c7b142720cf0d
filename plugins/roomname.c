/*
 * roomname.c - the room name rule shared by chat, history and cluster
 * (roomname.h).
 */
#include "config.h"

#include <string.h>

#include "roomname.h"

/* Non-zero when s (len bytes) is a room name (without its '#'). */
int
roomname_valid(const char *s, size_t len)
{
	size_t	i;
	char	c;

	if (len == 0 || len > ROOMNAME_MAX)
		return (0);
	for (i = 0; i < len; i++) {
		c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.'))
			return (0);
	}
	return (1);
}

/* Non-zero when s, a string that may be NULL, is a room name. */
int
roomname_valid_string(const char *s)
{
	return (s != NULL && roomname_valid(s, strnlen(s, ROOMNAME_MAX + 1)));
}

/* Fold a room name (a string, at most ROOMNAME_MAX bytes of it read) to
 * its key, ASCII lower case, into out (ROOMNAME_MAX + 1 bytes). */
void
roomname_fold(char *out, const char *name)
{
	size_t	i;

	for (i = 0; name[i] != '\0' && i < ROOMNAME_MAX; i++) {
		if (name[i] >= 'A' && name[i] <= 'Z')
			out[i] = (char)(name[i] - 'A' + 'a');
		else
			out[i] = name[i];
	}
	out[i] = '\0';
}
