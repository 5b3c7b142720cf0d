/*
 * uuid.c - random (version 4) UUIDs from OpenSSL's CSPRNG, and validation of
 * the RFC 4122 text form.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include <asyncchat/uuid.h>

/* Write a fresh random v4 UUID and its NUL into out (37 bytes); 0 or -1. */
int
ac_uuid_generate(char *out)
{
	static const char	 hex[] = "0123456789abcdef";
	uint8_t			 b[16];
	size_t			 i, o;

	if (RAND_bytes(b, sizeof b) != 1)
		return -1;
	b[6] = (b[6] & 0x0f) | 0x40;	/* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;	/* RFC 4122 variant */

	for (i = 0, o = 0; i < sizeof b; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
	return 0;
}

/* 1 when s is exactly a UUID in lower- or upper-case RFC 4122 text form. */
int
ac_uuid_is_valid(const char *s)
{
	size_t	i;

	if (s == NULL || strlen(s) != AC_UUID_STRLEN)
		return 0;
	for (i = 0; i < AC_UUID_STRLEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	}
	return 1;
}
