/*
 * Dispatch of a request through the route table (routes.def): decode the
 * path, find the route (route.c), answer 404 for an unknown path and 405
 * with an Allow header for a known path with another method, look up the
 * container of a CTR route (404 naming it), then call the handler.
 */
#include "api.h"
#include "route.h"
#include "util/util.h"

#include <string.h>

#define ROUTE(m, p, f, h) {ROUTE_##m, p, ROUTE_##f},
static const struct route routes[] = {
#include "routes.def"
};
#undef ROUTE

/* The handlers, in the same order (the same table, read a second time). */
#define ROUTE(m, p, f, h) h,
static api_handler *const handlers[] = {
#include "routes.def"
};
#undef ROUTE

_Static_assert(sizeof(routes) / sizeof(routes[0]) == sizeof(handlers) / sizeof(handlers[0]),
	       "one handler per route");

static enum route_method method_of(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		return ROUTE_GET;
	case EVHTTP_REQ_POST:
		return ROUTE_POST;
	case EVHTTP_REQ_PATCH:
		return ROUTE_PATCH;
	default:
		/* evhttp admits GET, POST, PATCH and DELETE only (api_listen). */
		return ROUTE_DELETE;
	}
}

void api_dispatch(struct daemon *d, struct evhttp_request *req)
{
	const char *raw = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	autofree char *path = evhttp_uridecode(raw ? raw : "/", 0, NULL);
	enum route_method m = method_of(req);
	log_debug("api", NULL, "%s %s", route_method_name(m), path);
	if (strncmp(path, "/v1/", 4) != 0) {
		api_reply_error(req, 404, "not_found",
				"no such endpoint %s (this daemon speaks /v1/...)", path);
		return;
	}
	struct route_match match = {0};
	unsigned allow = 0;
	long i = route_find(routes, sizeof(routes) / sizeof(routes[0]), m, path, &match, &allow);
	if (i < 0 && !allow) {
		api_reply_error(req, 404, "not_found", "no such endpoint %s", path);
		return;
	}
	if (i < 0) {
		char text[32];
		route_allow_text(allow, text, sizeof(text));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", text);
		api_reply_error(req, 405, "invalid_argument", "method not allowed on %s (use %s)",
				path, text);
		return;
	}
	struct api_args a = {.match = &match};
	api_audit_route(req, routes[i].pattern, &a);
	if (routes[i].flags & ROUTE_CTR) {
		const char *name = route_param(&match, "name");
		a.c = ctr_find(d, name);
		if (!a.c) {
			api_reply_error(req, 404, "not_found",
					"no container \"%s\" ('clbsd ps -a' lists them)", name);
			route_match_release(&match);
			return;
		}
	}
	handlers[i](d, req, &a);
	route_match_release(&match);
}

void api_route_label(struct evhttp_request *req, const char **method, const char **route)
{
	const char *raw = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	autofree char *path = evhttp_uridecode(raw ? raw : "/", 0, NULL);
	enum route_method m = method_of(req);
	*method = route_method_name(m);
	*route = "unmatched";
	if (strncmp(path, "/v1/", 4) != 0)
		return;
	struct route_match match = {0};
	unsigned allow = 0;
	long i = route_find(routes, sizeof(routes) / sizeof(routes[0]), m, path, &match, &allow);
	if (i >= 0) {
		*route = routes[i].pattern;
		route_match_release(&match);
	}
}

const char *api_param(const struct api_args *a, const char *name)
{
	return route_param(a->match, name);
}
