/*
 * (host :docker ...) and :kind docker: parsing, errors, printing, and the
 * spec hash (a native spec's hash does not change; docker's differs).
 */
#include "core/config.h"
#include "test.h"
#include "util/util.h"

#include <jansson.h>

static struct conf *build(const char *text, char **msg)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src = {"c.conf", text, strlen(text)};
	struct conf *c = NULL;
	int r = conf_build(&src, 1, &c, &d);
	free(*msg);
	*msg = conf_diags_format(&d);
	conf_diags_release(&d);
	return r == 0 ? c : NULL;
}

#define CHECK_ERR(text, want)                                                                      \
	do {                                                                                       \
		autofree char *_m = NULL;                                                          \
		struct conf *_c = build(text, &_m);                                                \
		if (_c) {                                                                          \
			conf_free(_c);                                                             \
			FAILF("accepted: %s", text);                                               \
		}                                                                                  \
		if (!strstr(_m, want))                                                             \
			FAILF("for %s\n got: %s\nwant: %s", text, _m, want);                       \
	} while (0)

TEST(host_docker)
{
	autofree char *m = NULL;
	struct conf *c = build("(host :docker (:endpoint \"tcp://vm:2376\" :tls-ca \"/ca.pem\" "
			       ":tls-cert \"/c.pem\" :tls-key \"/k.pem\"))",
			       &m);
	CHECK(c);
	CHECK_STR(c->host.docker_endpoint, "tcp://vm:2376");
	CHECK_STR(c->host.docker_tls_key, "/k.pem");
	autofree char *p = conf_print(c);
	CHECK(strstr(p, "\n  :docker (:endpoint \"tcp://vm:2376\" :tls-ca \"/ca.pem\" :tls-cert "
			"\"/c.pem\" :tls-key \"/k.pem\"))\n"));
	conf_free(c);
	/* Not given: not printed (the default endpoint is the daemon's). */
	struct conf *d = build("(host)", &m);
	CHECK(d);
	CHECK(!d->host.docker_endpoint);
	autofree char *pd = conf_print(d);
	CHECK(!strstr(pd, ":docker"));
	conf_free(d);
}

/* :lisp :command after :docker left the endpoint freed (a double free at release). */
TEST(host_docker_beside_lisp)
{
	autofree char *m = NULL;
	struct conf *c = build("(host :docker (:endpoint \"unix:///d.sock\") :lisp (:command "
			       "\"/usr/bin/clbsd-lisp\"))",
			       &m);
	CHECK(c);
	CHECK_STR(c->host.docker_endpoint, "unix:///d.sock");
	CHECK_STR(c->host.lisp_command, "/usr/bin/clbsd-lisp");
	conf_free(c);
}

TEST(host_docker_errors)
{
	CHECK_ERR("(host :docker (:endpoint \"http://vm:2375\"))",
		  "expected unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST");
	CHECK_ERR("(host :docker (:endpoint \"unix://rel\"))", "expected unix:///PATH");
	CHECK_ERR("(host :docker (:tls-ca \"ca.pem\"))", ":docker :tls-ca");
	CHECK_ERR("(host :docker (:endpoint))", ":endpoint");
	CHECK_ERR("(host :docker \"unix:///s\")", "Docker endpoint options");
	CHECK_ERR("(host :docker (:endpoit \"unix:///s\"))", ":endpoit");
}

TEST(kind_hash_and_json)
{
	autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL;
	struct conf *n = build("(container web :image \"x\")", &m1);
	struct conf *k = build("(container web :image \"x\" :kind native)", &m2);
	struct conf *dk = build("(container web :image \"x\" :kind docker)", &m3);
	CHECK(n && k && dk);
	char hn[65], hk[65], hd[65];
	ctr_spec_hash(conf_container_find(n, "web"), hn);
	ctr_spec_hash(conf_container_find(k, "web"), hk);
	ctr_spec_hash(conf_container_find(dk, "web"), hd);
	CHECK_STR(hn, hk);
	CHECK(strcmp(hn, hd) != 0);
	/* The API's create request: "kind" only for docker, and it reads back. */
	json_t *jn = ctr_spec_to_json(conf_container_find(n, "web"));
	json_t *jd = ctr_spec_to_json(conf_container_find(dk, "web"));
	CHECK(!json_object_get(jn, "kind"));
	CHECK_STR(json_string_value(json_object_get(jd, "kind")), "docker");
	struct ctr_spec *back = NULL;
	struct clbsd_err err;
	CHECK_INT(ctr_spec_from_json(jd, &back, &err), 0);
	CHECK_INT(back->kind, CTR_KIND_DOCKER);
	ctr_spec_free(back);
	json_t *bad = json_pack("{s:s,s:s}", "image", "x", "kind", "podman");
	CHECK(ctr_spec_from_json(bad, &back, &err) < 0);
	CHECK(strstr(err.msg, "\"kind\" must be \"native\" or \"docker\""));
	json_decref(bad);
	json_decref(jn);
	json_decref(jd);
	conf_free(n);
	conf_free(k);
	conf_free(dk);
}

TEST_MAIN_BEGIN("conf.docker")
RUN(host_docker);
RUN(host_docker_beside_lisp);
RUN(host_docker_errors);
RUN(kind_hash_and_json);
TEST_MAIN_END
