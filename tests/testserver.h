/*
 * testserver.h - a struct server as main.c makes one, for the programs
 * that run the server's code without main.c (tests/unit/test_conn.c and
 * the session and web fuzzers).
 */
#ifndef TESTS_TESTSERVER_H
#define TESTS_TESTSERVER_H

#include "server.h"

struct ac_config	*testserver_config(const char *who, const char *fmt,
			     ...) __attribute__((format(printf, 2, 3)));
int			 testserver_init(struct server *srv,
			     struct ac_config *cfg);

#endif /* TESTS_TESTSERVER_H */
