/* conf_host_access: what an archive's configuration would ask of this host. */
#include "core/config.h"
#include "test.h"
#include "util/util.h"

static struct conf *build(const char *text)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src = {"c.conf", text, strlen(text)};
	struct conf *c = NULL;
	int r = conf_build(&src, 1, &c, &d);
	if (r < 0) {
		autofree char *msg = conf_diags_format(&d);
		fprintf(stderr, "%s\n", msg);
	}
	conf_diags_release(&d);
	return r == 0 ? c : NULL;
}

static bool has(const struct strv *v, const char *part)
{
	for (size_t i = 0; i < v->n; i++)
		if (strstr(v->v[i], part))
			return true;
	return false;
}

TEST(plain_homelab_asks_nothing)
{
	struct conf *c = build("(host :network (:subnet \"10.88.0.0/24\"))\n"
			       "(container web :image \"nginx\" :domain \"web.lab\" :port 80\n"
			       "  :volumes ((:dataset \"data\" :path \"/data\"))\n"
			       "  :on ((:start (:exec \"true\"))))\n");
	CHECK(c);
	struct strv v = STRV_INIT;
	conf_host_access(c, &v);
	CHECK_INT(v.n, 0);
	strv_release(&v);
	conf_free(c);
}

TEST(each_kind_listed_with_its_place)
{
	struct conf *c =
		build("(host :lisp (:init \"/etc/clbsd/init.lisp\"))\n"
		      "(container web :image \"nginx\"\n"
		      "  :volumes ((:bind \"/srv/www\" :path \"/usr/share/nginx\" :ro t))\n"
		      "  :on ((:exit \"logger web exited\"))\n"
		      "  :network host)\n");
	CHECK(c);
	struct strv v = STRV_INIT;
	conf_host_access(c, &v);
	CHECK(has(&v, "Lisp control plane"));
	CHECK(has(&v, "/etc/clbsd/init.lisp"));
	CHECK(has(&v, "c.conf:2:12: container web: binds the host's /srv/www at /usr/share/nginx "
		      "(read-only)"));
	CHECK(has(&v, "container web: hook (:on (:exit ...)) runs on the host: /bin/sh -c logger "
		      "web exited"));
	CHECK(has(&v, "container web: shares the host's network"));
	CHECK_INT(v.n, 4);
	strv_release(&v);
	conf_free(c);
}

TEST(tls_files_each_once)
{
	struct conf *c = build(
		"(container shop :image \"nginx\" :domain \"shop.lab\" :port 80\n"
		"  :tls (:cert \"/etc/ssl/shop.pem\" :key \"/etc/ssl/shop.key\"))\n"
		"(container api :image \"nginx\" :domain \"shop.lab\" :path \"/api\" :port 80\n"
		"  :tls (:cert \"/etc/ssl/shop.pem\" :key \"/etc/ssl/shop.key\"))\n"
		"(container web :image \"nginx\" :domain \"web.lab\" :port 80)\n");
	CHECK(c);
	struct strv certs = STRV_INIT, keys = STRV_INIT;
	conf_tls_files(c, &certs, &keys);
	CHECK_INT(certs.n, 1);
	CHECK_INT(keys.n, 1);
	CHECK_STR(certs.v[0], "/etc/ssl/shop.pem");
	CHECK_STR(keys.v[0], "/etc/ssl/shop.key");
	strv_release(&certs);
	strv_release(&keys);
	conf_free(c);
}

TEST_MAIN_BEGIN("host_access")
RUN(plain_homelab_asks_nothing);
RUN(each_kind_listed_with_its_place);
RUN(tls_files_each_once);
TEST_MAIN_END
