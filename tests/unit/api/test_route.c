/*
 * The API's route matching (src/api/route.c) and its route table
 * (src/api/routes.def), which must list exactly the endpoints docs/api.md
 * documents.
 */
#include "api/route.h"
#include "test.h"
#include "util/util.h"

#include <stdio.h>

/* The daemon's table, without its handlers. */
#define ROUTE(m, p, f, h) {ROUTE_##m, p, ROUTE_##f},
static const struct route routes[] = {
#include "api/routes.def"
};
#undef ROUTE
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static bool match(const char *pattern, const char *path, struct route_match *m)
{
	*m = (struct route_match){0};
	return route_pattern_match(pattern, path, m);
}

TEST(literal)
{
	struct route_match m;
	CHECK(match("/v1/info", "/v1/info", &m));
	CHECK_INT(m.n, 0);
	CHECK(match("/v1/info", "/v1/info/", &m)); /* one trailing slash is ignored */
	CHECK(!match("/v1/info", "/v1/info//", &m));
	CHECK(!match("/v1/info", "/v1/inf", &m));
	CHECK(!match("/v1/info", "/v1/infos", &m));
	CHECK(!match("/v1/info", "/v1/info/x", &m));
	CHECK(!match("/v1/info", "/v1", &m));
	CHECK(!match("/v1/info", "v1/info", &m));
	CHECK(!match("/v1/info", "", &m));
}

TEST(param)
{
	struct route_match m;
	CHECK(match("/v1/containers/{name}/exec", "/v1/containers/web/exec", &m));
	CHECK_INT(m.n, 1);
	CHECK_STR(route_param(&m, "name"), "web");
	CHECK(route_param(&m, "nam") == NULL);
	CHECK(route_param(&m, "label") == NULL);
	route_match_release(&m);
	CHECK_INT(m.n, 0);
	/* A parameter is one non-empty segment. */
	CHECK(!match("/v1/containers/{name}/exec", "/v1/containers//exec", &m));
	CHECK(!match("/v1/containers/{name}/exec", "/v1/containers/a/b/exec", &m));
	CHECK(!match("/v1/containers/{name}", "/v1/containers", &m));
	CHECK(!match("/v1/containers/{name}", "/v1/containers/", &m));
	CHECK(match("/v1/containers/{name}", "/v1/containers/web/", &m));
	CHECK_STR(route_param(&m, "name"), "web");
	route_match_release(&m);
}

TEST(greedy)
{
	struct route_match m;
	CHECK(match("/v1/images/{ref*}", "/v1/images/forge:latest", &m));
	CHECK_STR(route_param(&m, "ref"), "forge:latest");
	route_match_release(&m);
	CHECK(match("/v1/images/{ref*}", "/v1/images/127.0.0.1:5000/test/forge:1", &m));
	CHECK_STR(route_param(&m, "ref"), "127.0.0.1:5000/test/forge:1");
	route_match_release(&m);
	/* Literal segments after it are matched from the end. */
	CHECK(match("/v1/images/{ref*}/export", "/v1/images/reg:5000/a/b:1/export", &m));
	CHECK_STR(route_param(&m, "ref"), "reg:5000/a/b:1");
	route_match_release(&m);
	CHECK(match("/v1/images/{ref*}/tag", "/v1/images/x/tag/tag", &m));
	CHECK_STR(route_param(&m, "ref"), "x/tag");
	route_match_release(&m);
	CHECK(!match("/v1/images/{ref*}/tag", "/v1/images/tag", &m));
	CHECK(!match("/v1/images/{ref*}", "/v1/images", &m));
	CHECK(!match("/v1/images/{ref*}", "/v1/images/", &m));
	/* Two parameters, the last one greedy. */
	CHECK(match("/v1/containers/{name}/snapshots/{label*}",
		    "/v1/containers/db/snapshots/nightly-1", &m));
	CHECK_INT(m.n, 2);
	CHECK_STR(route_param(&m, "name"), "db");
	CHECK_STR(route_param(&m, "label"), "nightly-1");
	route_match_release(&m);
	CHECK(!match("/v1/containers/{name}/snapshots/{label*}", "/v1/containers/db/snapshots",
		     &m));
}

TEST(find)
{
	struct route_match m = {0};
	unsigned allow = 0;
	long i = route_find(routes, NROUTES, ROUTE_POST, "/v1/containers/web/exec", &m, &allow);
	CHECK(i >= 0);
	CHECK_STR(routes[i].pattern, "/v1/containers/{name}/exec");
	CHECK(routes[i].flags & ROUTE_CTR);
	CHECK_STR(route_param(&m, "name"), "web");
	route_match_release(&m);

	/* Fixed image actions come before the reference patterns. */
	i = route_find(routes, NROUTES, ROUTE_POST, "/v1/images/pull", &m, &allow);
	CHECK(i >= 0);
	CHECK_STR(routes[i].pattern, "/v1/images/pull");
	route_match_release(&m);
	i = route_find(routes, NROUTES, ROUTE_GET, "/v1/images/pull", &m, &allow);
	CHECK(i >= 0);
	CHECK_STR(routes[i].pattern, "/v1/images/{ref*}");
	CHECK_STR(route_param(&m, "ref"), "pull");
	route_match_release(&m);
	i = route_find(routes, NROUTES, ROUTE_POST, "/v1/images/a/b:1/export", &m, &allow);
	CHECK(i >= 0);
	CHECK_STR(routes[i].pattern, "/v1/images/{ref*}/export");
	CHECK_STR(route_param(&m, "ref"), "a/b:1");
	route_match_release(&m);

	/* The undo of a container that may be gone: no lookup. */
	i = route_find(routes, NROUTES, ROUTE_POST, "/v1/containers/gone/undo", &m, &allow);
	CHECK(i >= 0);
	CHECK(!(routes[i].flags & ROUTE_CTR));
	route_match_release(&m);

	/* A known path with another method: the methods it allows. */
	allow = 0;
	CHECK_INT(route_find(routes, NROUTES, ROUTE_GET, "/v1/containers/web/start", &m, &allow),
		  -1);
	CHECK_INT(allow, ROUTE_POST);
	CHECK_INT(route_find(routes, NROUTES, ROUTE_DELETE, "/v1/containers", &m, &allow), -1);
	CHECK_INT(allow, ROUTE_GET | ROUTE_POST);
	CHECK_INT(route_find(routes, NROUTES, ROUTE_POST, "/v1/containers/web", &m, &allow), -1);
	CHECK_INT(allow, ROUTE_GET | ROUTE_DELETE | ROUTE_PATCH);
	CHECK_INT(route_find(routes, NROUTES, ROUTE_POST, "/v1/images/a/b", &m, &allow), -1);
	CHECK_INT(allow, ROUTE_GET | ROUTE_DELETE);
	char text[32];
	route_allow_text(ROUTE_GET | ROUTE_POST | ROUTE_DELETE, text, sizeof(text));
	CHECK_STR(text, "GET, POST, DELETE");
	route_allow_text(ROUTE_DELETE | ROUTE_GET, text, sizeof(text));
	CHECK_STR(text, "GET, DELETE");
	route_allow_text(ROUTE_DELETE | ROUTE_GET | ROUTE_PATCH, text, sizeof(text));
	CHECK_STR(text, "GET, PATCH, DELETE");

	/* An unknown path: nothing allowed. */
	CHECK_INT(route_find(routes, NROUTES, ROUTE_GET, "/v1/nothing", &m, &allow), -1);
	CHECK_INT(allow, 0);
	CHECK_INT(route_find(routes, NROUTES, ROUTE_POST, "/v1/containers/web/frobnicate", &m,
			     &allow),
		  -1);
	CHECK_INT(allow, 0);
	CHECK_INT(route_find(routes, NROUTES, ROUTE_GET, "/v1/networks/a/b", &m, &allow), -1);
	CHECK_INT(allow, 0);
	CHECK_INT(m.n, 0); /* written only on success */
}

/* The table itself: well formed, no duplicates, a container route names it. */
TEST(table)
{
	for (size_t i = 0; i < NROUTES; i++) {
		const struct route *r = &routes[i];
		if (strncmp(r->pattern, "/v1/", 4) != 0)
			FAILF("route %s does not start with /v1/", r->pattern);
		if ((r->flags & ROUTE_CTR) && !strstr(r->pattern, "/{name}"))
			FAILF("container route %s has no {name}", r->pattern);
		size_t params = 0;
		for (const char *p = r->pattern; *p; p++)
			params += *p == '{';
		if (params > ROUTE_PARAMS_MAX)
			FAILF("route %s has more than %d parameters", r->pattern, ROUTE_PARAMS_MAX);
		for (size_t j = 0; j < i; j++)
			if (routes[j].method == r->method &&
			    strcmp(routes[j].pattern, r->pattern) == 0)
				FAILF("route %s %s is in the table twice",
				      route_method_name(r->method), r->pattern);
	}
}

/* A documented endpoint: "METHOD /v1/..." in backquotes, query and options cut. */
struct doc_route {
	enum route_method method;
	char path[256];
};

static bool parse_doc_line(const char *line, struct doc_route *out)
{
	const char *p = strchr(line, '`');
	if (!p || (strncmp(line, "### ", 4) != 0 && strncmp(line, "- ", 2) != 0))
		return false;
	p++;
	static const struct {
		const char *word;
		enum route_method m;
	} methods[] = {{"GET ", ROUTE_GET},
		       {"POST ", ROUTE_POST},
		       {"DELETE ", ROUTE_DELETE},
		       {"PATCH ", ROUTE_PATCH}};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t n = strlen(methods[i].word);
		if (strncmp(p, methods[i].word, n) != 0)
			continue;
		p += n;
		if (strncmp(p, "/v1/", 4) != 0)
			return false;
		size_t len = strcspn(p, "[?`");
		if (len >= sizeof(out->path))
			return false;
		memcpy(out->path, p, len);
		out->path[len] = '\0';
		out->method = methods[i].m;
		return true;
	}
	return false;
}

/* The pattern as documented: "{ref*}" is written "{ref}". */
static void doc_form(const char *pattern, char *buf, size_t len)
{
	size_t o = 0;
	for (const char *p = pattern; *p && o + 1 < len; p++)
		if (!(*p == '*' && p[1] == '}'))
			buf[o++] = *p;
	buf[o] = '\0';
}

TEST(documented)
{
	FILE *f = fopen("docs/api.md", "r");
	if (!f)
		FAILF("docs/api.md: cannot open (run from the top of the tree)");
	struct doc_route doc[128];
	size_t ndoc = 0;
	char line[1024];
	while (fgets(line, sizeof(line), f) && ndoc < 128)
		if (parse_doc_line(line, &doc[ndoc]))
			ndoc++;
	fclose(f);
	if (ndoc < 20)
		FAILF("found only %zu endpoints in docs/api.md", ndoc);
	bool in_doc[sizeof(routes) / sizeof(routes[0])] = {0};
	for (size_t i = 0; i < ndoc; i++) {
		bool found = false;
		for (size_t j = 0; j < NROUTES; j++) {
			char form[256];
			doc_form(routes[j].pattern, form, sizeof(form));
			if (routes[j].method == doc[i].method && strcmp(form, doc[i].path) == 0) {
				found = in_doc[j] = true;
			}
		}
		if (!found)
			FAILF("docs/api.md documents %s %s, which the route table lacks",
			      route_method_name(doc[i].method), doc[i].path);
	}
	for (size_t j = 0; j < NROUTES; j++)
		if (!in_doc[j])
			FAILF("route %s %s is not documented in docs/api.md",
			      route_method_name(routes[j].method), routes[j].pattern);
}

TEST_MAIN_BEGIN("api.route")
RUN(literal);
RUN(param);
RUN(greedy);
RUN(find);
RUN(table);
RUN(documented);
TEST_MAIN_END
