/*
 * utf8.c - well-formed UTF-8 (RFC 3629, table 3-7 of the Unicode
 * standard): the first byte of a sequence says its length and bounds the
 * second byte, which is how overlong forms, surrogates and code points
 * past U+10FFFF are refused without decoding first.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include <asyncchat/utf8.h>

/* The length of the well-formed sequence at s (len > 0 bytes), or 0. */
size_t
ac_utf8_len(const void *s, size_t len, uint32_t *cp)
{
	const uint8_t	*p = s;
	uint8_t		 lo = 0x80, hi = 0xbf;
	uint32_t	 c;
	size_t		 n, i;

	if (p[0] < 0x80) {
		if (cp != NULL)
			*cp = p[0];
		return (1);
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		c = p[0] & 0x0f;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* overlong below U+0800 */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		c = p[0] & 0x07;
		if (p[0] == 0xf0)
			lo = 0x90;	/* overlong below U+10000 */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return (0);	/* 80-c1 and f5-ff start nothing */
	if (len < n || p[1] < lo || p[1] > hi)
		return (0);
	c = (c << 6) | (p[1] & 0x3f);
	for (i = 2; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return (0);
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (cp != NULL)
		*cp = c;
	return (n);
}

/* 1 when all len bytes at s are well-formed UTF-8, else 0. */
int
ac_utf8_valid(const void *s, size_t len)
{
	const uint8_t	*p = s;
	size_t		 i = 0, n;

	while (i < len) {
		/* ASCII runs are the common case: no call for them. */
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = ac_utf8_len(p + i, len - i, NULL)) == 0)
			return (0);
		i += n;
	}
	return (1);
}
