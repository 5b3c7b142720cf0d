/*
 * test_util.c - helpers shared by the unit tests.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "test_util.h"

/* The value of one hex digit, or -1. */
static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode a hex string into a new buffer (never NULL); *len gets its size. */
uint8_t *
hex_decode(const char *hex, size_t *len)
{
	size_t	 n = strlen(hex) / 2, i;
	uint8_t	*out = malloc(n + 1);

	if (out == NULL)
		abort();
	for (i = 0; i < n; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			fprintf(stderr, "bad hex at %zu\n", 2 * i);
			abort();
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n;
	return out;
}

/* Load tests/data/frames.json from $AC_TOP_SRCDIR; exits if it cannot. */
struct json_object *
load_vectors(void)
{
	const char		*top = getenv("AC_TOP_SRCDIR");
	char			 path[4096];
	struct json_object	*v;

	snprintf(path, sizeof path, "%s/tests/data/frames.json",
	    top != NULL ? top : ".");
	if ((v = json_object_from_file(path)) == NULL) {
		printf("Bail out! cannot load %s: %s\n", path,
		    json_util_get_last_err());
		exit(99);
	}
	return v;
}
