/*
 * From a configuration file to routes: which containers become routes, the
 * default domain, states and addresses from the daemon, and a rendering of
 * the result.
 */
#include "../../../src/daemon/ingress_conf.c"
#include "core/config.h"
#include "ingress/ingress.h"
#include "test.h"
#include "util/util.h"

static const char *text =
	"(host :ingress (:listen (\"0.0.0.0:80\") :tls-listen (\"0.0.0.0:443\")\n"
	"                :default-domain \"home.lan\" :tls (:ca auto)))\n"
	"(container web :image \"forge\" :domain \"web\" :port 8080)\n"
	"(container api :image \"forge\" :domain (\"api\" \"api.example.org\") :port 3000\n"
	"  :ingress (:websocket t :max-body \"100M\"))\n"
	"(container app :image \"forge\" :domain \"web\" :path \"/app\" :port 9000)\n"
	"(container db :image \"forge\" :domain \"db\" :port 5432)\n"
	"(container quiet :image \"forge\")\n"
	"(container shop :image \"forge\" :domain \"shop.example.org\" :port 80\n"
	"  :tls (:cert \"/etc/ssl/shop.pem\" :key \"/etc/ssl/shop.key\"))\n";

static struct conf *build(const char *t)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src = {"test.conf", t, strlen(t)};
	struct conf *c = NULL;
	int r = conf_build(&src, 1, &c, &d);
	if (r < 0) {
		char *msg = conf_diags_format(&d);
		printf("# %s\n", msg);
		free(msg);
	}
	conf_diags_release(&d);
	return r == 0 ? c : NULL;
}

/* web and api are up, db is starting, app is up but has no address yet. */
static int lookup(void *ctx, const char *name, const char **address, enum ingress_state *st)
{
	(*(int *)ctx)++;
	if (strcmp(name, "web") == 0 || strcmp(name, "api") == 0 || strcmp(name, "shop") == 0) {
		*address = strcmp(name, "web") == 0 ? "10.88.0.2" : "10.88.0.3";
		*st = INGRESS_UP;
		return 0;
	}
	if (strcmp(name, "db") == 0) {
		*address = "10.88.0.4";
		*st = INGRESS_STARTING;
		return 0;
	}
	if (strcmp(name, "app") == 0) {
		*address = NULL;
		*st = INGRESS_UP;
		return 0;
	}
	return -1;
}

static const struct ingress_route *route(const struct ingress_set *s, const char *svc)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->routes[i].service, svc) == 0)
			return &s->routes[i];
	return NULL;
}

TEST(routes_from_conf)
{
	struct clbsd_err err;
	struct conf *c = build(text);
	CHECK(c != NULL);
	struct ingress_set set;
	int calls = 0;
	CHECK_INT(ingress_set_from_conf(c, "/var/lib/clbsd/ingress", lookup, &calls, &set, &err),
		  0);
	conf_free(c); /* the set owns what it points at */
	CHECK_INT(set.n, 5);
	CHECK_INT(calls, 5); /* quiet has no :domain: not asked */
	CHECK(route(&set, "quiet") == NULL);
	CHECK_INT(set.settings.tls_mode, INGRESS_TLS_AUTO);
	CHECK_STR(set.settings.ca_dir, "/var/lib/clbsd/ingress/ca");
	CHECK_INT(set.settings.n_listen, 1);
	CHECK_STR(set.settings.tls_listen[0], "0.0.0.0:443");
	const struct ingress_route *api = route(&set, "api");
	CHECK(api != NULL);
	CHECK_INT(api->n_domains, 2);
	CHECK_STR(api->domains[0], "api.home.lan");
	CHECK_STR(api->domains[1], "api.example.org");
	CHECK(api->websocket);
	CHECK_INT(api->max_body, 100LL << 20);
	CHECK_STR(api->address, "10.88.0.3");
	CHECK_INT(api->port, 3000);
	const struct ingress_route *app = route(&set, "app");
	CHECK_STR(app->path, "/app");
	CHECK_INT(app->state, INGRESS_STARTING); /* up but no address yet */
	CHECK(app->address == NULL);
	CHECK_INT(route(&set, "db")->state, INGRESS_STARTING);
	CHECK_STR(route(&set, "shop")->tls_cert, "/etc/ssl/shop.pem");

	autofree char *out = NULL;
	CHECK_INT(ingress_render(&set.settings, set.routes, set.n, &out, &err), 0);
	CHECK(strstr(out, "\t\tapi.example.org 10.88.0.3:3000;\n") ==
	      NULL); /* :max-body: own block */
	CHECK(strstr(out, "server_name api.home.lan;") != NULL);
	CHECK(strstr(out, "\t\tdb.home.lan \"db is starting\";\n") != NULL);
	CHECK(strstr(out, "app is starting.") != NULL);
	CHECK(strstr(out, "/var/lib/clbsd/ingress/ca/leaves/web.home.lan.pem") != NULL);
	CHECK(strstr(out, "ssl_certificate /etc/ssl/shop.pem;") != NULL);
	ingress_set_release(&set);
}

TEST(own_ca_refused_with_advice)
{
	struct clbsd_err err;
	struct conf *c = build("(host :ingress (:listen (\"0.0.0.0:80\") :tls-listen "
			       "(\"0.0.0.0:443\") :tls (:ca \"/etc/clbsd/ca.pem\")))\n");
	CHECK(c != NULL);
	struct ingress_set set;
	int calls = 0;
	CHECK(ingress_set_from_conf(c, "/var/lib/clbsd/ingress", lookup, &calls, &set, &err) < 0);
	conf_free(c);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	CHECK(strstr(err.msg, "(:ca auto)") != NULL);
}

TEST(no_ingress_no_routes)
{
	struct clbsd_err err;
	struct conf *c = build("(container quiet :image \"forge\")\n");
	CHECK(c != NULL);
	struct ingress_set set;
	int calls = 0;
	CHECK_INT(ingress_set_from_conf(c, "/var/lib/clbsd/ingress", lookup, &calls, &set, &err),
		  0);
	conf_free(c);
	CHECK_INT(set.n, 0);
	CHECK_STR(set.settings.listen[0], "0.0.0.0:80"); /* the default */
	CHECK_INT(set.settings.tls_mode, INGRESS_TLS_NONE);
	autofree char *out = NULL;
	CHECK_INT(ingress_render(&set.settings, set.routes, set.n, &out, &err), 0);
	ingress_set_release(&set);
}

TEST_MAIN_BEGIN("ingress.conf")
RUN(routes_from_conf);
RUN(own_ca_refused_with_advice);
RUN(no_ingress_no_routes);
TEST_MAIN_END
