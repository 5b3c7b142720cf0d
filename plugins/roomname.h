/*
 * roomname.h - room names as CHAT.md ("Names") defines them: 1 to 64
 * bytes of A-Z a-z 0-9 - _ and ., the same room whatever the ASCII case.
 * chat, history and cluster each compile roomname.c in, so that the three
 * plugins, which may meet a name from a client, a database row or a NATS
 * message, hold it to one rule.
 */
#ifndef PLUGINS_ROOMNAME_H
#define PLUGINS_ROOMNAME_H

#include <stddef.h>

/* Bytes in a room name, at most (AC_HISTORY_ROOM_MAX and CHAT.md). */
#define ROOMNAME_MAX	64

int	roomname_valid(const char *s, size_t len);
int	roomname_valid_string(const char *s);
void	roomname_fold(char *out, const char *name);

#endif /* PLUGINS_ROOMNAME_H */
