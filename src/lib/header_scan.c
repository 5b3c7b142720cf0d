/*
 * header_scan.c - reading a received frame's header JSON in place.
 *
 * Every verified frame's header must be checked as JSON (check 6), but a
 * receiver acts on three of its members only, and a header is a small flat
 * object. Building it with json-c cost a tokener run, a dozen allocations
 * and a locale switch per frame (newlocale, duplocale, getenv: json-c
 * parses numbers under the C locale), more than the HMAC of a small frame.
 * This scanner walks the bytes once, allocates nothing, and remembers
 * where the three members' values are; json-c still builds the object for
 * whoever asks for it (ac_message_header()).
 *
 * It accepts exactly what asyncchat's json-c 0.16 parse accepted (strict
 * mode, trailing characters allowed and then checked to be white space,
 * UTF-8 validated, depth 32), with one exception where json-c is laxer
 * than JSON itself and the protocol asks for a JSON object. In detail:
 *
 *  - White space is space, tab, line feed and carriage return only. Only
 *    white space may surround the object; nothing may follow it, not even
 *    a NUL byte.
 *  - A NUL byte anywhere is refused (json-c stops reading at one).
 *  - Strings are double-quoted. Member names in single quotes, which
 *    json-c 0.16 takes even in strict mode, are refused: they are not
 *    JSON, and the Python peer refuses them too.
 *  - Inside strings, raw control characters 0x01-0x1f pass (json-c does
 *    not check them); the escapes are \" \\ \/ \b \f \n \r \t and \uXXXX
 *    with any case of hex digit; anything else after a backslash is
 *    refused. Surrogate escapes never make a string invalid: an unpaired
 *    one decodes to U+FFFD, a pair to its character. (json-c 0.16 gets
 *    some pairs wrong: "\ud836\ude00", U+1DA00, is U+FFFD to it, while
 *    "\ud83d\ude00" is right; here every pair follows UTF-16, and
 *    fuzz_header does not compare such strings' bytes with json-c's.)
 *  - Bytes from 0x80 up must form sequences of json-c's shape: a lead
 *    byte 0xc0-0xdf, 0xe0-0xef or 0xf0-0xf7 followed by one, two or three
 *    bytes 0x80-0xbf. json-c does not refuse overlong forms, encoded
 *    surrogates or values past U+10FFFF, so neither does this.
 *  - Numbers: an optional minus, then digits with an optional fraction
 *    (digits, a point, maybe more digits; or, after a minus only, a point
 *    and digits), then an optional exponent (e or E, an optional sign,
 *    digits). An integer without minus, fraction or exponent may not
 *    start with 0 unless all its digits are 0 ("00" passes, "01" does
 *    not, "-01" does). Magnitude is never checked. NaN, Infinity and
 *    -Infinity are taken, spelt exactly so, as Python takes them.
 *  - true, false and null in lower case only.
 *  - No trailing comma in objects or arrays; no comments.
 *  - Nesting: the object is at depth 0 and a value inside a container at
 *    depth d is at depth d + 1; a value deeper than 31 is refused (so a
 *    container at depth 31 must be empty), as json_tokener_new_ex(32).
 *  - Duplicate names: the last occurrence of a name counts. A name is
 *    compared as json-c compares it, up to its first NUL (json-c keeps
 *    names as C strings): "type\u0000x" names the member `type`.
 *
 * tests/unit/test_frame.c checks each rule, and tests/fuzz/fuzz_header.c
 * compares this scanner with json-c on whatever the fuzzer makes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "header_scan.h"

/* json_tokener_new_ex(32): values may sit at depths 0 to 31. */
#define HEADER_SCAN_MAX_DEPTH	32

/*
 * Bytes that end a run of plain string bytes: the quote, the backslash,
 * NUL and everything from 0x80 up (which must be checked as UTF-8).
 */
static const uint8_t header_scan_special[256] = {
	[0] = 1, ['"'] = 1, ['\\'] = 1,
	[0x80 ... 0xff] = 1,
};

static const uint8_t	*header_scan_value(const uint8_t *, const uint8_t *,
			    int);

/*
 * The first byte from p (before end) that header_scan_special names, or
 * end. Sixteen bytes at a time where SSE2 is there: the values of a header
 * (a session id, a content type) are mostly plain bytes.
 */
static const uint8_t *
header_scan_plain(const uint8_t *p, const uint8_t *end)
{
#ifdef __SSE2__
	const __m128i	quote = _mm_set1_epi8('"');
	const __m128i	backslash = _mm_set1_epi8('\\');
	const __m128i	zero = _mm_setzero_si128();
	__m128i		v, hit;
	unsigned int	mask;

	while (end - p >= 16) {
		v = _mm_loadu_si128((const __m128i *)(const void *)p);
		hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
		    _mm_cmpeq_epi8(v, backslash)), _mm_cmpeq_epi8(v, zero));
		/* The sign bit of each byte marks those from 0x80 up. */
		mask = (unsigned int)(_mm_movemask_epi8(hit) |
		    _mm_movemask_epi8(v));
		if (mask != 0)
			return p + __builtin_ctz(mask);
		p += 16;
	}
#endif
	while (p < end && !header_scan_special[*p])
		p++;
	return p;
}

/* Skip white space (as json-c counts it: no form feed, no vertical tab). */
static inline const uint8_t *
header_scan_ws(const uint8_t *p, const uint8_t *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' ||
	    *p == '\r'))
		p++;
	return p;
}

/* The value of one hex digit, or -1. */
static int
header_scan_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Scan a string whose opening quote is at p; returns the position past
 * its closing quote (and fills v, if not NULL), or NULL if it is invalid.
 */
static const uint8_t *
header_scan_string(const uint8_t *p, const uint8_t *end,
    struct header_scan_value *v)
{
	const uint8_t	*start = ++p;
	int		 escaped = 0, i, more;
	uint8_t		 c;

	for (;;) {
		p = header_scan_plain(p, end);
		if (p == end)
			return NULL;
		c = *p;
		if (c == '"')
			break;
		if (c == '\\') {
			escaped = 1;
			if (end - p < 2)
				return NULL;
			switch (p[1]) {
			case '"': case '\\': case '/': case 'b': case 'f':
			case 'n': case 'r': case 't':
				p += 2;
				continue;
			case 'u':
				if (end - p < 6)
					return NULL;
				for (i = 2; i < 6; i++) {
					if (header_scan_hex(p[i]) < 0)
						return NULL;
				}
				p += 6;
				continue;
			default:
				return NULL;
			}
		}
		if (c == 0)
			return NULL;
		/* A byte from 0x80 up: json-c's shape of a UTF-8 sequence. */
		if ((c & 0xe0) == 0xc0)
			more = 1;
		else if ((c & 0xf0) == 0xe0)
			more = 2;
		else if ((c & 0xf8) == 0xf0)
			more = 3;
		else
			return NULL;
		if (end - p <= more)
			return NULL;
		for (i = 1; i <= more; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return NULL;
		}
		p += 1 + more;
	}
	if (v != NULL) {
		v->kind = HEADER_SCAN_STRING;
		v->raw = start;
		v->len = (size_t)(p - start);
		v->escaped = escaped;
	}
	return p + 1;
}

/* Scan the literal word at p (exact bytes); the position after, or NULL. */
static const uint8_t *
header_scan_word(const uint8_t *p, const uint8_t *end, const char *word,
    size_t len)
{
	if ((size_t)(end - p) < len || memcmp(p, word, len) != 0)
		return NULL;
	return p + len;
}

/* Skip a run of digits. */
static const uint8_t *
header_scan_digits(const uint8_t *p, const uint8_t *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/*
 * Scan a number (or -Infinity) at p, which holds a digit or a minus; the
 * position after it, or NULL. The grammar is json-c 0.16's in strict mode
 * (see the top of the file), looser than JSON about leading zeros.
 */
static const uint8_t *
header_scan_number(const uint8_t *p, const uint8_t *end)
{
	const uint8_t	*digits, *q;
	size_t		 n, nfrac = 0, i;
	int		 negative = 0, fraction = 0, exponent = 0;

	if (*p == '-') {
		negative = 1;
		p++;
		if (p < end && *p == 'I')
			return header_scan_word(p, end, "Infinity", 8);
	}
	digits = p;
	p = header_scan_digits(p, end);
	n = (size_t)(p - digits);
	if (p < end && *p == '.') {
		fraction = 1;
		q = p + 1;
		p = header_scan_digits(q, end);
		nfrac = (size_t)(p - q);
		/* "5." is a number to json-c; "." and "-." are not. */
		if (n == 0 && nfrac == 0)
			return NULL;
	} else if (n == 0)
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		exponent = 1;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		q = p;
		p = header_scan_digits(q, end);
		if (p == q)
			return NULL;
	}
	/* json-c refuses a leading zero only in a non-negative integer that
	 * is not zero. */
	if (!negative && !fraction && !exponent && n > 1 && digits[0] == '0') {
		for (i = 1; i < n; i++) {
			if (digits[i] != '0')
				return NULL;
		}
	}
	return p;
}

/*
 * The fixed member of hs that a member name stands for, or NULL. The name
 * counts as json-c keeps it: up to its first NUL, which only an escape can
 * make. Names longer than text are none of the three.
 */
static struct header_scan_value *
header_scan_member(struct header_scan *hs, const struct header_scan_value *name)
{
	char	text[16];
	size_t	len;

	if (name->escaped) {
		len = header_scan_decode(name, text, sizeof text);
		if (len > sizeof text)
			len = sizeof text;
		len = strnlen(text, len);
	} else {
		len = name->len;
		if (len < sizeof text)
			memcpy(text, name->raw, len);
	}
	if (len == 4 && memcmp(text, "type", 4) == 0)
		return &hs->type;
	if (len == 12 && memcmp(text, "content_type", 12) == 0)
		return &hs->content_type;
	if (len == 10 && memcmp(text, "session_id", 10) == 0)
		return &hs->session_id;
	return NULL;
}

/*
 * Scan an object at depth `depth` whose '{' is at p; the position after
 * it, or NULL. For the top-level object (hs not NULL) the fixed members
 * are recorded in hs.
 */
static const uint8_t *
header_scan_object(const uint8_t *p, const uint8_t *end, int depth,
    struct header_scan *hs)
{
	struct header_scan_value	 name, *member;

	p = header_scan_ws(p + 1, end);
	if (p < end && *p == '}')
		return p + 1;
	for (;;) {
		if (p == end || *p != '"' ||
		    (p = header_scan_string(p, end, &name)) == NULL)
			return NULL;
		p = header_scan_ws(p, end);
		if (p == end || *p != ':')
			return NULL;
		p = header_scan_ws(p + 1, end);
		if (depth + 1 >= HEADER_SCAN_MAX_DEPTH)
			return NULL;

		member = hs != NULL ? header_scan_member(hs, &name) : NULL;
		if (member != NULL && p < end && *p == '"')
			p = header_scan_string(p, end, member);
		else {
			p = header_scan_value(p, end, depth + 1);
			if (member != NULL) {
				memset(member, 0, sizeof *member);
				member->kind = HEADER_SCAN_OTHER;
			}
		}
		if (p == NULL)
			return NULL;

		p = header_scan_ws(p, end);
		if (p == end)
			return NULL;
		if (*p == '}')
			return p + 1;
		if (*p != ',')
			return NULL;
		p = header_scan_ws(p + 1, end);
	}
}

/* Scan an array at depth `depth` whose '[' is at p; the position after it,
 * or NULL. */
static const uint8_t *
header_scan_array(const uint8_t *p, const uint8_t *end, int depth)
{
	p = header_scan_ws(p + 1, end);
	if (p < end && *p == ']')
		return p + 1;
	for (;;) {
		if (depth + 1 >= HEADER_SCAN_MAX_DEPTH ||
		    (p = header_scan_value(p, end, depth + 1)) == NULL)
			return NULL;
		p = header_scan_ws(p, end);
		if (p == end)
			return NULL;
		if (*p == ']')
			return p + 1;
		if (*p != ',')
			return NULL;
		p = header_scan_ws(p + 1, end);
	}
}

/* Scan any value at depth `depth` at p; the position after it, or NULL. */
static const uint8_t *
header_scan_value(const uint8_t *p, const uint8_t *end, int depth)
{
	if (p == end)
		return NULL;
	switch (*p) {
	case '{':
		return header_scan_object(p, end, depth, NULL);
	case '[':
		return header_scan_array(p, end, depth);
	case '"':
		return header_scan_string(p, end, NULL);
	case 't':
		return header_scan_word(p, end, "true", 4);
	case 'f':
		return header_scan_word(p, end, "false", 5);
	case 'n':
		return header_scan_word(p, end, "null", 4);
	case 'N':
		return header_scan_word(p, end, "NaN", 3);
	case 'I':
		return header_scan_word(p, end, "Infinity", 8);
	case '-':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return header_scan_number(p, end);
	default:
		return NULL;
	}
}

/* Check that json is one header object and find its fixed members. */
int
header_scan(const uint8_t *json, size_t len, struct header_scan *hs)
{
	const uint8_t	*p, *end = json + len;

	memset(hs, 0, sizeof *hs);
	/* json-c takes an int length: longer headers never parsed. */
	if (len == 0 || len > INT32_MAX)
		return -1;
	p = header_scan_ws(json, end);
	if (p == end || *p != '{' ||
	    (p = header_scan_object(p, end, 0, hs)) == NULL ||
	    header_scan_ws(p, end) != end) {
		memset(hs, 0, sizeof *hs);
		return -1;
	}
	return 0;
}

/* Walk the top-level members of an object header_scan() accepted. */
int
header_scan_walk(const uint8_t *json, size_t len,
    int (*cb)(const struct header_scan_value *,
    const struct header_scan_value *, void *), void *arg)
{
	const uint8_t			*p, *start, *end = json + len;
	struct header_scan_value	 name, value;

	p = header_scan_ws(json, end);
	if (p == end || *p != '{')
		return -1;
	p = header_scan_ws(p + 1, end);
	if (p < end && *p == '}')
		return 0;
	for (;;) {
		if (p == end || *p != '"' ||
		    (p = header_scan_string(p, end, &name)) == NULL)
			return -1;
		p = header_scan_ws(p, end);
		if (p == end || *p != ':')
			return -1;
		p = header_scan_ws(p + 1, end);
		if (p < end && *p == '"')
			p = header_scan_string(p, end, &value);
		else {
			start = p;
			if ((p = header_scan_value(p, end, 1)) == NULL)
				return -1;
			value.kind = HEADER_SCAN_OTHER;
			value.raw = start;
			value.len = (size_t)(p - start);
			value.escaped = 0;
		}
		if (p == NULL)
			return -1;
		if (cb(&name, &value, arg) != 0)
			return 0;
		p = header_scan_ws(p, end);
		if (p == end)
			return -1;
		if (*p == '}')
			return 0;
		if (*p != ',')
			return -1;
		p = header_scan_ws(p + 1, end);
	}
}

/* Does a scanned member name stand for name, as json-c keeps names? */
int
header_scan_name_is(const struct header_scan_value *v, const char *name,
    size_t len)
{
	char	 text[256], *buf = text;
	size_t	 got;
	int	 same;

	if (!v->escaped)
		return (v->len == len && memcmp(v->raw, name, len) == 0);
	/* A decoded name is never longer than its spelling. */
	if (len > v->len)
		return 0;
	if (len + 1 > sizeof text && (buf = malloc(len + 1)) == NULL)
		return 0;
	got = header_scan_decode(v, buf, len + 1);
	if (got > len + 1)
		got = len + 1;
	same = strnlen(buf, got) == len && memcmp(buf, name, len) == 0;
	if (buf != text)
		free(buf);
	return same;
}

/* Where decoded bytes go: the first cap of them into buf. */
struct header_scan_out {
	char	*buf;
	size_t	 cap;
	size_t	 n;		/* bytes the value has so far */
};

/* Append one byte (counted always, stored while there is room). */
static void
header_scan_put(struct header_scan_out *o, uint32_t b)
{
	if (o->n < o->cap)
		o->buf[o->n] = (char)b;
	o->n++;
}

/* Append code point cp as UTF-8, as json-c writes an escape's value. */
static void
header_scan_put_utf8(struct header_scan_out *o, uint32_t cp)
{
	if (cp < 0x80)
		header_scan_put(o, cp);
	else if (cp < 0x800) {
		header_scan_put(o, 0xc0 | (cp >> 6));
		header_scan_put(o, 0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		header_scan_put(o, 0xe0 | (cp >> 12));
		header_scan_put(o, 0x80 | ((cp >> 6) & 0x3f));
		header_scan_put(o, 0x80 | (cp & 0x3f));
	} else {
		header_scan_put(o, 0xf0 | (cp >> 18));
		header_scan_put(o, 0x80 | ((cp >> 12) & 0x3f));
		header_scan_put(o, 0x80 | ((cp >> 6) & 0x3f));
		header_scan_put(o, 0x80 | (cp & 0x3f));
	}
}

/*
 * Decode a string that header_scan() found, storing the first cap bytes
 * of its value in out; returns the value's whole length.
 */
size_t
header_scan_decode(const struct header_scan_value *v, char *out, size_t cap)
{
	struct header_scan_out	 o = { out, cap, 0 };
	const uint8_t		*p = v->raw, *end = v->raw + v->len;
	uint32_t		 cp, high = 0;
	int			 i;

	if (!v->escaped) {
		memcpy(out, v->raw, v->len < cap ? v->len : cap);
		return v->len;
	}
	while (p < end) {
		if (*p != '\\' || p[1] != 'u') {
			/* A high surrogate not followed by \u is U+FFFD. */
			if (high != 0) {
				header_scan_put_utf8(&o, 0xfffd);
				high = 0;
			}
			if (*p != '\\') {
				header_scan_put(&o, *p++);
				continue;
			}
			switch (p[1]) {
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			default: cp = p[1]; break;	/* " \ / */
			}
			header_scan_put(&o, cp);
			p += 2;
			continue;
		}
		for (cp = 0, i = 2; i < 6; i++)
			cp = (cp << 4) | (uint32_t)header_scan_hex(p[i]);
		p += 6;
		if (high != 0) {
			if ((cp & 0xfc00) == 0xdc00) {
				cp = 0x10000 + ((high & 0x3ff) << 10) +
				    (cp & 0x3ff);
				high = 0;
				header_scan_put_utf8(&o, cp);
				continue;
			}
			/* Not a low surrogate: the high one is U+FFFD, and
			 * this escape counts on its own. */
			header_scan_put_utf8(&o, 0xfffd);
			high = 0;
		}
		if ((cp & 0xfc00) == 0xd800)
			high = cp;
		else if ((cp & 0xfc00) == 0xdc00)
			header_scan_put_utf8(&o, 0xfffd);
		else
			header_scan_put_utf8(&o, cp);
	}
	if (high != 0)
		header_scan_put_utf8(&o, 0xfffd);
	return o.n;
}
