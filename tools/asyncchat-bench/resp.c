/*
 * resp.c - just enough of Redis's RESP2 for pub/sub fan-out: receivers
 * SUBSCRIBE to one channel, senders PUBLISH pipelined, and every pushed
 * message is parsed and checked like a protocol message.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define RESP_MAX_ITEMS	3
#define RESP_INCOMPLETE	((size_t)0)
#define RESP_MAX_DIGITS	18	/* any count here; never overflows */

/*
 * The bytes before the payload of every message Redis pushes in this run
 * (the channel and the size are the run's), to recognise them at once.
 */
static char	resp_head[256];
static size_t	resp_head_len;

/* One parsed element: a bulk string, or an integer. */
struct resp_item {
	const uint8_t	*data;
	size_t		 len;
	long long	 number;
	int		 is_number;
};

/*
 * Parse "[-]<digits>\r\n" at p; returns bytes used, 0 if incomplete, -1
 * if malformed. Read digit by digit: memchr() and strtoll() on a copy were
 * 40 % of the client's time at Redis's rate, three numbers a message.
 */
static ssize_t
resp_number(const uint8_t *p, size_t len, long long *out)
{
	unsigned long long	 v = 0;
	size_t			 i = 0, start;

	if (len > 0 && p[0] == '-')
		i = 1;
	start = i;
	for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
		if (i - start >= RESP_MAX_DIGITS)
			return -1;
		v = v * 10 + (unsigned long long)(p[i] - '0');
	}
	if (i + 2 > len)
		return 0;
	if (i == start || p[i] != '\r' || p[i + 1] != '\n')
		return -1;
	*out = start == 1 ? -(long long)v : (long long)v;
	return (ssize_t)(i + 2);
}

/* Parse one bulk string or integer; bytes used, 0 if incomplete, -1 bad. */
static ssize_t
resp_item(const uint8_t *p, size_t len, struct resp_item *it)
{
	ssize_t		 n;
	long long	 v;

	if (len < 1)
		return 0;
	if ((n = resp_number(p + 1, len - 1, &v)) <= 0)
		return n;
	memset(it, 0, sizeof *it);
	if (p[0] == ':') {
		it->is_number = 1;
		it->number = v;
		return 1 + n;
	}
	if (p[0] != '$' || v < 0)
		return -1;
	if ((size_t)(1 + n) + (size_t)v + 2 > len)
		return 0;
	it->data = p + 1 + n;
	it->len = (size_t)v;
	return 1 + n + v + 2;
}

/* Non-zero when item is the bulk string s. */
static int
resp_is(const struct resp_item *it, const char *s)
{
	return !it->is_number && it->len == strlen(s) &&
	    memcmp(it->data, s, it->len) == 0;
}

/* Act on a pushed array: a subscribe confirmation or a message. */
static void
resp_push(struct conn *c, struct resp_item *items, long long n, size_t wire)
{
	struct bench	*b = c->b;

	if (n == 3 && resp_is(&items[0], "message")) {
		if (!resp_is(&items[1], b->channel)) {
			bench_fail(b, "connection %d: message on another "
			    "channel", c->index);
			return;
		}
		if (!tmpl_content_ok(b, items[2].data, items[2].len)) {
			bench_fail(b, "connection %d: payload altered",
			    c->index);
			return;
		}
		b->verified++;
		b->received++;
		b->on_message(c, items[2].data, items[2].len, wire, NULL);
		return;
	}
	if (n == 3 && resp_is(&items[0], "subscribe") && !c->subscribed) {
		c->subscribed = 1;
		b->on_ready(c);
		return;
	}
	bench_fail(b, "connection %d: unexpected reply from the server",
	    c->index);
}

/* Parse every complete reply in buf; bytes used, or SIZE_MAX on error. */
size_t
resp_parse(struct conn *c, const uint8_t *buf, size_t len)
{
	struct bench		*b = c->b;
	struct resp_item	 items[RESP_MAX_ITEMS];
	size_t			 used = 0, at;
	ssize_t			 n;
	long long		 count, i;

	while (used < len) {
		const uint8_t	*p = buf + used;
		size_t		 left = len - used;

		/* A message push spelled as expected: no number to parse. */
		if (resp_head_len > 0 && left >= resp_head_len + b->size + 2 &&
		    memcmp(p, resp_head, resp_head_len) == 0 &&
		    p[resp_head_len + b->size] == '\r' &&
		    p[resp_head_len + b->size + 1] == '\n') {
			at = resp_head_len + b->size + 2;
			used += at;
			if (!tmpl_content_ok(b, p + resp_head_len, b->size)) {
				bench_fail(b, "connection %d: payload altered",
				    c->index);
				return SIZE_MAX;
			}
			b->verified++;
			b->received++;
			b->on_message(c, p + resp_head_len, b->size, at, NULL);
			if (c->closed || b->finished)
				return SIZE_MAX;
			continue;
		}
		switch (p[0]) {
		case ':':
			if ((n = resp_item(p, left, &items[0])) == 0)
				return used;
			if (n < 0)
				goto bad;
			/* PUBLISH answers with how many subscribers got it. */
			if (items[0].number != b->receivers) {
				bench_fail(b, "PUBLISH reached %lld "
				    "subscribers, expected %d",
				    items[0].number, b->receivers);
				return SIZE_MAX;
			}
			used += n;
			break;
		case '*':
			if ((n = resp_number(p + 1, left - 1, &count)) == 0)
				return used;
			if (n < 0 || count < 1 || count > RESP_MAX_ITEMS)
				goto bad;
			at = 1 + n;
			for (i = 0; i < count; i++) {
				n = resp_item(p + at, left - at, &items[i]);
				if (n == 0)
					return used;
				if (n < 0)
					goto bad;
				at += n;
			}
			used += at;
			resp_push(c, items, count, at);
			break;
		case '-':
			bench_fail(b, "connection %d: redis error: %.*s",
			    c->index, (int)(left > 200 ? 200 : left), p);
			return SIZE_MAX;
		default:
			goto bad;
		}
		if (c->closed || b->finished)
			return SIZE_MAX;
	}
	return used;
bad:
	bench_fail(b, "connection %d: malformed RESP reply", c->index);
	return SIZE_MAX;
}

/* Subscribe a receiver to the run's channel. */
void
resp_subscribe(struct conn *c)
{
	struct bench	*b = c->b;
	char		 cmd[256];
	int		 n;

	if (resp_head_len == 0) {
		n = snprintf(resp_head, sizeof resp_head, "*3\r\n$7\r\n"
		    "message\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(b->channel),
		    b->channel, b->size);
		if (n > 0 && (size_t)n < sizeof resp_head)
			resp_head_len = n;
	}

	n = snprintf(cmd, sizeof cmd, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
	    strlen(c->b->channel), c->b->channel);
	conn_write(c, cmd, n);
}

/* Build the sender's PUBLISH command around a content of the run's size. */
int
resp_tmpl(struct conn *c)
{
	struct bench	*b = c->b;
	char		 prefix[256];
	int		 n;

	n = snprintf(prefix, sizeof prefix, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s"
	    "\r\n$%zu\r\n", strlen(b->channel), b->channel, b->size);
	if (tmpl_wrap(&c->tmpl, (const uint8_t *)prefix, n,
	    (const uint8_t *)"\r\n", 2, b->size) != 0)
		return -1;
	c->have_tmpl = 1;
	return 0;
}
