/*
 * The ingress renderer and its validation. Golden files: each case below
 * renders to tests/golden/ingress/NAME.conf, byte for byte.
 * CLBSD_GOLDEN_UPDATE=1 rewrites them from the current output (review the
 * diff before committing); the test still compares.
 */
#include "ingress/ingress.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <unistd.h>

static const char *gdir = "tests/golden/ingress";

static const char *const listen80[] = {"0.0.0.0:80", "[::]:80"};
static const char *const listen443[] = {"0.0.0.0:443"};

static struct ingress_settings settings(void)
{
	return (struct ingress_settings){"/var/lib/clbsd/ingress", listen80, 2, NULL, 0, "home.lan",
					 INGRESS_TLS_NONE,	   NULL};
}

static const char *const d_web[] = {"web.home.lan"};
static const char *const d_api[] = {"api.home.lan", "api.example.org"};
static const char *const d_db[] = {"db.home.lan"};
static const char *const d_chat[] = {"chat.home.lan"};
static const char *const d_files[] = {"files.home.lan"};
static const char *const d_wild[] = {"*.apps.home.lan"};
static const char *const d_under[] = {"one.apps.home.lan"};

/* Several plain routes: up, starting, down, websocket, IPv6 backend. */
static const struct ingress_route basic[] = {
	{"web", d_web, 1, NULL, "10.88.0.2", 8080, INGRESS_UP, false, 0, NULL, NULL},
	{"api", d_api, 2, "/", "10.88.0.3", 3000, INGRESS_UP, false, 0, NULL, NULL},
	{"db", d_db, 1, NULL, "10.88.0.4", 5432, INGRESS_STARTING, false, 0, NULL, NULL},
	{"chat", d_chat, 1, NULL, "fd00:88::5", 4000, INGRESS_UP, true, 0, NULL, NULL},
	{"files", d_files, 1, NULL, "10.88.0.6", 80, INGRESS_DOWN, false, 0, NULL, NULL},
};

/* Path routes and :max-body under one name, a wildcard with its own block. */
static const struct ingress_route paths[] = {
	{"web", d_web, 1, NULL, "10.88.0.2", 8080, INGRESS_UP, false, 0, NULL, NULL},
	{"api", d_web, 1, "/api", "10.88.0.3", 3000, INGRESS_UP, true, 0, NULL, NULL},
	{"up", d_web, 1, "/upload/", "10.88.0.7", 9000, INGRESS_UP, false, 100 << 20, NULL, NULL},
	{"old", d_web, 1, "/old", "10.88.0.8", 80, INGRESS_DOWN, false, 0, NULL, NULL},
	{"apps", d_wild, 1, "/x", "10.88.0.9", 80, INGRESS_UP, false, 0, NULL, NULL},
	{"one", d_under, 1, NULL, "127.0.0.1", 8081, INGRESS_UP, false, 0, NULL, NULL},
	{"files", d_files, 1, NULL, "10.88.0.6", 80, INGRESS_UP, false, 1 << 30, NULL, NULL},
};

/* TLS: a route with its own certificate, the others from the local CA. */
static const struct ingress_route tls[] = {
	{"web", d_web, 1, NULL, "10.88.0.2", 8080, INGRESS_UP, false, 0, NULL, NULL},
	{"api", d_api, 2, NULL, "10.88.0.3", 3000, INGRESS_UP, false, 0, "/etc/ssl/api.pem",
	 "/etc/ssl/api.key"},
	{"files", d_files, 1, NULL, "10.88.0.6", 80, INGRESS_UP, false, 1 << 20, NULL, NULL},
};

static void golden(const char *name, const struct ingress_settings *s,
		   const struct ingress_route *r, size_t n)
{
	struct clbsd_err err;
	char *got = NULL;
	if (ingress_render(s, r, n, &got, &err) < 0)
		FAILF("%s: render: %s", name, err.msg);
	autofree char *path = xasprintf("%s/%s.conf", gdir, name);
	if (getenv("CLBSD_GOLDEN_UPDATE"))
		fs_write_atomic(path, got, strlen(got), 0644, &err);
	autofree char *want = NULL;
	if (fs_read_file(path, &want, NULL, &err) < 0) {
		free(got);
		FAILF("%s: %s", name, err.msg);
	}
	bool same = strcmp(got, want) == 0;
	if (!same)
		printf("--- got for %s:\n%s---\n", name, got);
	free(got);
	if (!same)
		FAILF("%s differs from %s (CLBSD_GOLDEN_UPDATE=1 rewrites it)", name, path);
}

TEST(golden_basic)
{
	struct ingress_settings s = settings();
	golden("basic", &s, basic, ARRAY_SIZE(basic));
}

TEST(golden_paths)
{
	struct ingress_settings s = settings();
	golden("paths", &s, paths, ARRAY_SIZE(paths));
}

TEST(golden_tls)
{
	struct ingress_settings s = settings();
	s.tls_listen = listen443;
	s.n_tls_listen = 1;
	s.tls_mode = INGRESS_TLS_AUTO;
	s.ca_dir = "/var/lib/clbsd/ingress/ca";
	golden("tls", &s, tls, ARRAY_SIZE(tls));
}

TEST(golden_empty)
{
	struct ingress_settings s = settings();
	golden("empty", &s, NULL, 0);
}

/* The order of the input does not matter: the bytes are the same. */
TEST(deterministic)
{
	struct clbsd_err err;
	struct ingress_settings s = settings();
	struct ingress_route rev[ARRAY_SIZE(paths)];
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		rev[i] = paths[ARRAY_SIZE(paths) - 1 - i];
	autofree char *a = NULL, *b = NULL;
	CHECK_INT(ingress_render(&s, paths, ARRAY_SIZE(paths), &a, &err), 0);
	CHECK_INT(ingress_render(&s, rev, ARRAY_SIZE(rev), &b, &err), 0);
	CHECK_STR(a, b);
}

/* Plain names live in the maps, not in server blocks: the scalable form. */
TEST(plain_names_in_map)
{
	struct clbsd_err err;
	struct ingress_settings s = settings();
	autofree char *t = NULL;
	CHECK_INT(ingress_render(&s, basic, ARRAY_SIZE(basic), &t, &err), 0);
	CHECK(strstr(t, "\t\tweb.home.lan 10.88.0.2:8080;\n") != NULL);
	CHECK(strstr(t, "\t\tapi.example.org 10.88.0.3:3000;\n") != NULL);
	CHECK(strstr(t, "server_name web.home.lan") == NULL);
	CHECK(strstr(t, "\t\tdb.home.lan \"db is starting\";\n") != NULL);
	CHECK(strstr(t, "\t\tfiles.home.lan \"files is down\";\n") != NULL);
	CHECK(strstr(t, "\t\tchat.home.lan [fd00:88::5]:4000;\n") != NULL);
	/* A route that is not up has no backend. */
	CHECK(strstr(t, "5432") == NULL);
	/* No upstream blocks: they make nginx -t slow at scale. */
	CHECK(strstr(t, "upstream ") == NULL);
}

TEST(domain_check)
{
	char why[256];
	CHECK(ingress_domain_check("web.home.lan", why, sizeof(why)));
	CHECK(ingress_domain_check("web", why, sizeof(why)));
	CHECK(ingress_domain_check("*.home.lan", why, sizeof(why)));
	CHECK(ingress_domain_check("a-b.x1.example", why, sizeof(why)));
	static const char *const bad[] = {
		"a;b",	    "x } server {", "",		 "-web.lan", "web-.lan", "we b.lan",
		"web..lan", ".web",	    "web.",	 "Web.lan",  "*",	 "*.",
		"a.*.lan",  "w*.lan",	    "web.lan$x", "a\"b",     "a{b",	 "web.lan;",
		"*.*.lan",  "a\nb",	    "a#b",	 "a/b",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (ingress_domain_check(bad[i], why, sizeof(why)))
			FAILF("accepted domain \"%s\"", bad[i]);
	CHECK(!ingress_domain_check("a;b", why, sizeof(why)));
	CHECK(strstr(why, "';'") != NULL);
	char label[70];
	memset(label, 'a', 64);
	label[64] = '\0';
	CHECK(!ingress_domain_check(label, why, sizeof(why)));
	char longname[300];
	for (size_t i = 0; i < 127; i++)
		memcpy(longname + 2 * i, "a.", 2);
	memcpy(longname + 254, "aa", 3);
	CHECK(!ingress_domain_check(longname, why, sizeof(why)));
}

TEST(domain_normalise)
{
	struct clbsd_err err;
	autofree char *a = NULL, *b = NULL, *c = NULL;
	CHECK_INT(ingress_domain_normalise("web", "home.lan", &a, &err), 0);
	CHECK_STR(a, "web.home.lan");
	CHECK_INT(ingress_domain_normalise("web.example.org", "home.lan", &b, &err), 0);
	CHECK_STR(b, "web.example.org");
	CHECK_INT(ingress_domain_normalise("nas", NULL, &c, &err), 0);
	CHECK_STR(c, "nas");
	autofree char *w = NULL, *w2 = NULL;
	CHECK_INT(ingress_domain_normalise("*.apps", "home.lan", &w, &err), 0);
	CHECK_STR(w, "*.apps.home.lan");
	CHECK_INT(ingress_domain_normalise("*.apps.example.org", "home.lan", &w2, &err), 0);
	CHECK_STR(w2, "*.apps.example.org");
	char *d = NULL;
	CHECK(ingress_domain_normalise("a;b", "home.lan", &d, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK(d == NULL);
}

TEST(path_check)
{
	char why[256];
	CHECK(ingress_path_check("/", why, sizeof(why)));
	CHECK(ingress_path_check("/app", why, sizeof(why)));
	CHECK(ingress_path_check("/app/v1/", why, sizeof(why)));
	CHECK(ingress_path_check("/a-b_c.d~e%20", why, sizeof(why)));
	static const char *const bad[] = {
		"",	 "app", "/a b",	   "/a;b", "/a{",    "/a}",  "/$x",  "/a\"",  "//",
		"/a//b", "/..", "/a/../b", "/./a", "/a?x=1", "/a#f", "/a'b", "/a\\b",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (ingress_path_check(bad[i], why, sizeof(why)))
			FAILF("accepted path \"%s\"", bad[i]);
}

TEST(listen_and_sizes)
{
	char why[256];
	int64_t v;
	CHECK(ingress_listen_check("0.0.0.0:80", why, sizeof(why)));
	CHECK(ingress_listen_check("127.0.0.1:8443", why, sizeof(why)));
	CHECK(ingress_listen_check("[::]:443", why, sizeof(why)));
	CHECK(ingress_listen_check("[::1]:80", why, sizeof(why)));
	static const char *const bad[] = {
		"80",	       ":80",	       "0.0.0.0",     "0.0.0.0:0",   "0.0.0.0:65536",
		"[::]",	       "::1:80",       "host:80",     "0.0.0.0:80;", "0.0.0.0:80 ssl",
		"[::1%lo]:80", "[1.2.3.4]:80", "0.0.0.0:+80",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (ingress_listen_check(bad[i], why, sizeof(why)))
			FAILF("accepted listen \"%s\"", bad[i]);
	CHECK(ingress_max_body_check("100M", &v, why, sizeof(why)));
	CHECK_INT(v, 100LL << 20);
	CHECK(!ingress_max_body_check("0", &v, why, sizeof(why)));
	CHECK(!ingress_max_body_check("100M;", &v, why, sizeof(why)));
	CHECK(!ingress_max_body_check("65G", &v, why, sizeof(why)));
	CHECK(ingress_file_path_check("/etc/ssl/web.pem", why, sizeof(why)));
	CHECK(!ingress_file_path_check("etc/ssl/web.pem", why, sizeof(why)));
	CHECK(!ingress_file_path_check("/etc/ssl/$host.pem", why, sizeof(why)));
	CHECK(!ingress_file_path_check("/etc/ssl/a b.pem", why, sizeof(why)));
	CHECK(!ingress_file_path_check("/etc/../ssl.pem", why, sizeof(why)));
	CHECK(!ingress_file_path_check("/etc/ssl.pem;", why, sizeof(why)));
}

TEST(routes_refused)
{
	struct clbsd_err err;
	struct ingress_settings s = settings();
	char *t = NULL;
	/* A value that would break out of the config is refused, not rendered. */
	static const char *const evil[] = {"x } server {"};
	struct ingress_route r = {"web",      evil,  1, NULL, "10.88.0.2", 80,
				  INGRESS_UP, false, 0, NULL, NULL};
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	CHECK(t == NULL);
	CHECK(strstr(err.msg, "container web: :domain") != NULL);
	r.domains = d_web;
	r.address = "10.88.0.2; x";
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	r.address = "10.88.0.2";
	r.path = "/a;b";
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	r.path = NULL;
	r.service = "We b";
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	r.service = "web";
	r.port = 0;
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	r.port = 80;
	/* :tls without :tls-listen. */
	r.tls_cert = "/etc/ssl/a.pem";
	r.tls_key = "/etc/ssl/a.key";
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	CHECK(strstr(err.msg, ":tls-listen") != NULL);
	r.tls_cert = r.tls_key = NULL;
	/* Two routes for one name and path. */
	struct ingress_route two[2] = {r, r};
	two[1].service = "other";
	CHECK(ingress_render(&s, two, 2, &t, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(strstr(err.msg, "web.home.lan is routed to both") != NULL);
	/* "/app" and "/app/" overlap. */
	two[0].path = "/app";
	two[1].path = "/app/";
	CHECK(ingress_render(&s, two, 2, &t, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	/* ... different paths are fine. */
	two[0].path = "/app";
	two[1].path = "/application";
	CHECK_INT(ingress_render(&s, two, 2, &t, &err), 0);
	free(t);
	t = NULL;
	/* Settings: a listen address given twice, a bad directory. */
	static const char *const twice[] = {"0.0.0.0:80", "0.0.0.0:80"};
	s.listen = twice;
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	s = settings();
	s.dir = "/var/lib/clbsd/in gress";
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	s = settings();
	s.n_listen = 0;
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0);
	s = settings();
	s.tls_mode = INGRESS_TLS_AUTO;
	s.ca_dir = "/var/lib/clbsd/ca";
	CHECK(ingress_render(&s, &r, 1, &t, &err) < 0); /* auto without :tls-listen */
	CHECK(t == NULL);
}

/* A wildcard with a server block of its own takes the names it covers along. */
TEST(wildcard_covers_plain_names)
{
	struct clbsd_err err;
	struct ingress_settings s = settings();
	autofree char *t = NULL;
	CHECK_INT(ingress_render(&s, paths, ARRAY_SIZE(paths), &t, &err), 0);
	CHECK(strstr(t, "server_name one.apps.home.lan;") != NULL);
	CHECK(strstr(t, "\t\tone.apps.home.lan 127.0.0.1:8081;") == NULL);
}

TEST_MAIN_BEGIN("ingress.render")
RUN(golden_basic);
RUN(golden_paths);
RUN(golden_tls);
RUN(golden_empty);
RUN(deterministic);
RUN(plain_names_in_map);
RUN(domain_check);
RUN(domain_normalise);
RUN(path_check);
RUN(listen_and_sizes);
RUN(routes_refused);
RUN(wildcard_covers_plain_names);
TEST_MAIN_END
