/*
 * Helpers shared by the networking tests: literals for addresses and
 * subnets. A literal that does not parse is a bug in the test, so it aborts.
 */
#ifndef CLBSD_NETTEST_H
#define CLBSD_NETTEST_H

#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>

static inline struct net_prefix pfx(const char *s)
{
	struct net_prefix p;
	struct clbsd_err err;
	if (net_prefix_parse(s, &p, &err) < 0) {
		printf("bad subnet literal in the test: %s\n", err.msg);
		abort();
	}
	return p;
}

static inline struct net_addr ip(const char *s)
{
	struct net_addr a;
	struct clbsd_err err;
	if (net_addr_parse(s, &a, &err) < 0) {
		printf("bad address literal in the test: %s\n", err.msg);
		abort();
	}
	return a;
}

#endif
