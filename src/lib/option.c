/*
 * option.c - parsing option values for the server and its plugins.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
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

/* Parse a decimal number within [min, max] into *out; 0, or -1. */
int
ac_option_uint(const char *value, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	unsigned long long	 v;
	char			*end;

	/* strtoull would take a sign or leading spaces: digits only. */
	if (value == NULL || *value < '0' || *value > '9')
		return -1;
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
