/*
 * libFuzzer target: what the API decodes from a request before a handler
 * runs: the path through the route table (src/api/route.c over
 * src/api/routes.def), the query string and the JSON body
 * (src/api/req_decode.c), and a fields= selection picked from that body.
 * Input: one byte of method, the path up to a newline, the query up to the
 * next, the rest is the body.
 */
#include "fuzz.h"
#include "api/req_decode.h"
#include "api/route.h"
#include "util/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE(m, p, f, h) {ROUTE_##m, p, ROUTE_##f},
static const struct route routes[] = {
#include "api/routes.def"
};
#undef ROUTE

static char *line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *stop = nl ? nl : end;
	char *s = xstrndup(*p, (size_t)(stop - *p));
	*p = nl ? nl + 1 : end;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const enum route_method methods[] = {ROUTE_GET, ROUTE_POST, ROUTE_DELETE};
	enum route_method m = methods[data[0] % 3];
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	char *path = line(&p, end);
	char *query = line(&p, end);

	struct route_match match = {0};
	unsigned allow = 0;
	long i = route_find(routes, sizeof(routes) / sizeof(routes[0]), m, path, &match, &allow);
	if (i >= 0) {
		/* The route found takes this method and this path, with non-empty parameters. */
		if (routes[i].method != m)
			abort();
		struct route_match again = {0};
		if (!route_pattern_match(routes[i].pattern, path, &again))
			abort();
		route_match_release(&again);
		for (size_t k = 0; k < match.n; k++)
			if (!match.params[k].value || !*match.params[k].value)
				abort();
		if ((routes[i].flags & ROUTE_CTR) && !route_param(&match, "name"))
			abort();
		route_match_release(&match);
	} else if (allow & m) {
		abort(); /* a 405 that allows the method asked for */
	}
	char text[32];
	route_allow_text(allow, text, sizeof(text));

	static const char *const keys[] = {"t", "all", "since", "signal", "label", "condition"};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		char *v = api_query_value(query, keys[k]);
		int secs;
		if (api_seconds_value(v, 10, &secs) == 0 && (secs < 0 || secs > 86400))
			abort();
		(void)api_flag_value(v);
		free(v);
	}
	char why[256];
	json_t *j = api_body_decode(p, (size_t)(end - p), why, sizeof(why));
	/* A fields= selection picks from the body only members it names. */
	char *fv = api_query_value(query, "fields");
	struct api_fields f;
	if (fv && api_fields_decode(fv, &f, why, sizeof(why)) == 0) {
		if (f.n == 0 || f.n > API_FIELDS_MAX)
			abort();
		if (json_is_object(j)) {
			json_t *picked = api_fields_pick(j, &f);
			const char *k;
			json_t *v;
			json_object_foreach(picked, k, v)
			{
				if (!api_fields_want(&f, k) || json_object_get(j, k) == NULL)
					abort();
			}
			json_decref(picked);
		}
		api_fields_release(&f);
	}
	free(fv);
	json_decref(j);
	free(path);
	free(query);
	return 0;
}
