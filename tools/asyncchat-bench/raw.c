/*
 * raw.c - the ceiling's framing: a 4-byte big-endian length, then the
 * payload, with nothing to verify but the payload pattern and the stamp
 * (or, for the message due, every byte as sent: echo.c).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "bench.h"

/* Hand every complete length-prefixed payload in buf to the mode. */
size_t
raw_parse(struct conn *c, const uint8_t *buf, size_t len)
{
	struct bench	*b = c->b;
	size_t		 used = 0, plen;

	while (len - used >= 4) {
		plen = ((size_t)buf[used] << 24) |
		    ((size_t)buf[used + 1] << 16) |
		    ((size_t)buf[used + 2] << 8) | buf[used + 3];
		if (plen != b->size) {
			bench_fail(b, "connection %d: a %zu-byte payload, "
			    "expected %zu", c->index, plen, b->size);
			return SIZE_MAX;
		}
		if (len - used < 4 + plen)
			break;
		if (b->match_sent != NULL && b->match_sent(c, buf + used,
		    4 + plen)) {
			used += 4 + plen;
			if (c->closed || b->finished)
				return SIZE_MAX;
			continue;
		}
		if (!tmpl_content_ok(b, buf + used + 4, plen)) {
			bench_fail(b, "connection %d: payload altered",
			    c->index);
			return SIZE_MAX;
		}
		b->verified++;
		b->received++;
		b->on_message(c, buf + used + 4, plen, 4 + plen, NULL);
		used += 4 + plen;
		if (c->closed || b->finished)
			return SIZE_MAX;
	}
	return used;
}

/* Build the connection's length-prefixed message. */
int
raw_tmpl(struct conn *c)
{
	size_t	size = c->b->size;
	uint8_t	prefix[4];

	prefix[0] = size >> 24;
	prefix[1] = (size >> 16) & 0xff;
	prefix[2] = (size >> 8) & 0xff;
	prefix[3] = size & 0xff;
	if (tmpl_wrap(&c->tmpl, prefix, sizeof prefix, NULL, 0, size) != 0)
		return -1;
	c->have_tmpl = 1;
	return 0;
}
