/*
 * test_util.h - helpers shared by the unit tests.
 */
#ifndef AC_TEST_UTIL_H
#define AC_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Decode a hex string into a new buffer (never NULL); *len gets its size. */
uint8_t			*hex_decode(const char *hex, size_t *len);

/* Load tests/data/frames.json from $AC_TOP_SRCDIR (or the current
 * directory's tree); exits the test program if it cannot. */
struct json_object	*load_vectors(void);

#endif /* AC_TEST_UTIL_H */
