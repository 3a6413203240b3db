/*
 * Route matching for the API: a table of {method, pattern} and one function
 * that finds a request's route in it. Pure: no libevent, no daemon, so the
 * unit tests link it (tests/unit/api/) and the route table itself
 * (routes.def) can be checked against docs/api.md.
 *
 * A pattern is a path of '/'-separated segments; a segment is either literal
 * text or a parameter "{name}", which matches one non-empty segment. The
 * last parameter of a pattern may be "{name*}": it matches one or more
 * segments (an image reference holds '/'), as few as the literal segments
 * after it leave. The path matched is the decoded one; one trailing '/' is
 * ignored ("/v1/containers/" is "/v1/containers").
 *
 * Outcome of a lookup: the route (path and method match; the first in table
 * order wins), or "known path, wrong method" with the methods that path
 * does allow (405 with an Allow header), or no route (404).
 */
#ifndef CLBSD_API_ROUTE_H
#define CLBSD_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

enum route_method {
	ROUTE_GET = 1 << 0,
	ROUTE_POST = 1 << 1,
	ROUTE_DELETE = 1 << 2,
	ROUTE_PATCH = 1 << 3,
};

/* Route flags (the API's; the matcher only carries them). */
#define ROUTE_ANY 0
#define ROUTE_CTR 1 /* {name} names a container, looked up before the handler */

struct route {
	enum route_method method;
	const char *pattern;
	unsigned flags;
};

#define ROUTE_PARAMS_MAX 4

/* A lookup's parameters: names point into the pattern, values are owned. */
struct route_match {
	size_t n;
	struct {
		const char *name; /* in the pattern, not NUL-terminated: name_len */
		size_t name_len;
		char *value;
	} params[ROUTE_PARAMS_MAX];
};

/*
 * Does path match pattern? On a match, its parameters are appended to m
 * (which the caller has zeroed and must release); nothing is kept otherwise.
 */
bool route_pattern_match(const char *pattern, const char *path, struct route_match *m);

/*
 * Look path and method up in table[0..n). Returns the index of the route
 * (m holds its parameters), or -1 with *allow the methods the path allows
 * (0: no such path). m is written only on success.
 */
long route_find(const struct route *table, size_t n, enum route_method method, const char *path,
		struct route_match *m, unsigned *allow);

/* The value of parameter name (NULL when the route has none). */
const char *route_param(const struct route_match *m, const char *name);

void route_match_release(struct route_match *m);

/* "GET", "POST", "DELETE" (NULL for anything else). */
const char *route_method_name(enum route_method method);
/* "GET, POST" for an Allow header, in a fixed order; buf of at least 32 bytes. */
void route_allow_text(unsigned allow, char *buf, size_t len);

#endif
