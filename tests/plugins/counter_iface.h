/*
 * counter_iface.h - the interface provider.c publishes and consumer.c
 * uses: the kind of header two plugins share, and the host never reads.
 */
#ifndef TEST_COUNTER_IFACE_H
#define TEST_COUNTER_IFACE_H

#include <stddef.h>

#define TEST_COUNTER_NAME	"test.counter"

struct test_counter {
	size_t		  size;		/* sizeof, so that it can grow */
	void		 *ctx;		/* the provider's, for each call */
	unsigned int	(*next)(void *ctx);
	unsigned int	(*serial)(void *ctx);
};

#endif /* TEST_COUNTER_IFACE_H */
