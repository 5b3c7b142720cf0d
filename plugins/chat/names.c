/*
 * names.c - what a nick and a room name may be, and how they compare.
 *
 * A nick is 1 to 32 characters of UTF-8, none of them whitespace or a
 * control character, not starting with #, / or @. "Control" is read
 * widely here: besides C0, DEL and C1, the invisible formatting characters
 * (zero-width spaces and joiners, bidirectional marks and overrides, the
 * soft hyphen, the byte order mark) are refused too, because they let one
 * nick look exactly like another or reorder the text around it. UTF-8
 * must be well formed: no overlong forms, no surrogates, nothing past
 * U+10FFFF.
 *
 * A room name is 1 to 64 bytes of A-Z a-z 0-9 - _ . (so always ASCII).
 *
 * Both compare with ASCII case folding only: A-Z become a-z and every
 * other byte stays, so "Alice" and "ALICE" are one nick while "Ålice" and
 * "ålice" are two (a folding that knew Unicode would need tables this
 * plugin does not carry, and would fold differently from the clients).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "chat.h"

/*
 * Decode one UTF-8 character at s (len bytes left) into *cp; return its
 * length, or 0 when the bytes are not well-formed UTF-8.
 */
static size_t
names_utf8_next(const uint8_t *s, size_t len, uint32_t *cp)
{
	uint32_t	c;
	size_t		n, i;

	if (len == 0)
		return (0);
	if (s[0] < 0x80) {
		*cp = s[0];
		return (1);
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
	} else
		return (0);
	if (len < n)
		return (0);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return (0);
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past Unicode. */
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return (0);
	*cp = c;
	return (n);
}

/* Non-zero when s is well-formed UTF-8. */
int
names_utf8_valid(const uint8_t *s, size_t len)
{
	uint32_t	cp;
	size_t		n;

	while (len > 0) {
		if ((n = names_utf8_next(s, len, &cp)) == 0)
			return (0);
		s += n;
		len -= n;
	}
	return (1);
}

/* Non-zero for a whitespace, control or invisible formatting character. */
static int
names_forbidden(uint32_t c)
{
	if (c <= 0x20 || (c >= 0x7f && c <= 0xa0))
		return (1);		/* C0, space, DEL, C1, no-break space */
	switch (c) {
	case 0xad:			/* soft hyphen */
	case 0x1680:			/* ogham space mark */
	case 0x180e:			/* mongolian vowel separator */
	case 0x202f:			/* narrow no-break space */
	case 0x205f:			/* medium mathematical space */
	case 0x3000:			/* ideographic space */
	case 0xfeff:			/* byte order mark */
		return (1);
	}
	if (c >= 0x2000 && c <= 0x200f)
		return (1);		/* spaces, zero-widths, LRM, RLM */
	if (c >= 0x2028 && c <= 0x202e)
		return (1);		/* line, paragraph; bidi embeddings */
	if (c >= 0x2060 && c <= 0x206f)
		return (1);		/* word joiner, invisible operators,
					   bidi isolates */
	if (c >= 0xfff9 && c <= 0xfffb)
		return (1);		/* interlinear annotation */
	return (0);
}

/* Non-zero when s (len bytes) is a valid nick. */
int
names_nick_valid(const char *s, size_t len)
{
	const uint8_t	*p = (const uint8_t *)s;
	uint32_t	 cp;
	size_t		 n, chars = 0;

	if (len == 0 || len > CHAT_NICK_BYTES)
		return (0);
	if (s[0] == '#' || s[0] == '/' || s[0] == '@')
		return (0);
	while (len > 0) {
		if ((n = names_utf8_next(p, len, &cp)) == 0 ||
		    names_forbidden(cp) || ++chars > CHAT_NICK_CHARS)
			return (0);
		p += n;
		len -= n;
	}
	return (1);
}

/* Copy len bytes of in to out with A-Z folded to a-z, NUL-terminated. */
void
names_fold(char *out, const char *in, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		out[i] = in[i];
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] += 'a' - 'A';
	}
	out[len] = '\0';
}

/*
 * Parse a count or a seq: 1 to 18 decimal digits, so that it fits in a
 * signed 64-bit integer, as JSON readers need. Returns 0 or -1.
 */
int
names_parse_count(const char *s, size_t len, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	if (len == 0 || len > 18)
		return (-1);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return (0);
}
