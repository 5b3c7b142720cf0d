/*
 * histogram.c - latency samples in log-linear buckets: each power of two
 * is cut into HIST_SUB equal parts, so any quantile is known to within
 * 1/HIST_SUB of its value, in fixed memory and O(1) per sample.
 */
#include "config.h"

#include <stdint.h>

#include "bench.h"

/* The bucket of a value: its power of two and the part within it. */
static void
histogram_bucket(uint64_t v, unsigned int *e, unsigned int *s)
{
	unsigned int	shift;

	if (v < HIST_SUB) {
		*e = 0;
		*s = (unsigned int)v;
		return;
	}
	/* v >> shift is in [HIST_SUB, 2 * HIST_SUB): HIST_SUB is 2^6. */
	shift = (64 - __builtin_clzll(v)) - 7;
	*e = shift + 1;
	*s = (unsigned int)(v >> shift) - HIST_SUB;
	if (*e >= HIST_EXP) {
		*e = HIST_EXP - 1;
		*s = HIST_SUB - 1;
	}
}

/* The middle of a bucket, the value a quantile in it is reported as. */
static uint64_t
histogram_value(unsigned int e, unsigned int s)
{
	if (e == 0)
		return s;
	return (((uint64_t)HIST_SUB + s) << (e - 1)) +
	    (((uint64_t)1 << (e - 1)) >> 1);
}

/* Record one sample (nanoseconds). */
void
histogram_add(struct histogram *h, uint64_t v)
{
	unsigned int	e, s;

	histogram_bucket(v, &e, &s);
	h->counts[e][s]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

/* The value below which a fraction q of the samples fall. */
uint64_t
histogram_quantile(const struct histogram *h, double q)
{
	uint64_t	rank, seen = 0;
	unsigned int	e, s;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->n);
	if (rank >= h->n)
		rank = h->n - 1;
	for (e = 0; e < HIST_EXP; e++) {
		for (s = 0; s < HIST_SUB; s++) {
			seen += h->counts[e][s];
			if (seen > rank)
				return histogram_value(e, s);
		}
	}
	return h->max;
}
