/*
 * option.c - parsing option values for the server and its plugins.
 */
#include "config.h"

#include <stddef.h>
#include <strings.h>

#include <asyncchat/option.h>

/* Parse a yes/no value into *out; 0, or -1 when it is not one. */
int
ac_option_bool(const char *value, int *out)
{
	static const char *const	yes[] = { "yes", "true", "on", "1" };
	static const char *const	no[] = { "no", "false", "off", "0" };
	size_t				i;

	if (value == NULL)
		return -1;
	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}
