/*
 * The text-level helpers of `clbsd host` (cli/host_state.c): the
 * configuration's settings a host import installs before the containers,
 * and which container and image are the daemon's routing ones, left out of
 * exports and diffs. The source is included directly (the CLI is a
 * program, not part of libclbsd), with the API calls it makes stubbed.
 */
#include "test.h"

#include "cli/host_state.c"

int cli_call(const char *method, const char *path, const json_t *body, json_t **out,
	     struct clbsd_err *err)
{
	return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOSYS, "no daemon in a unit test");
}
int clbsd_client_request(struct clbsd_client *c, const char *method, const char *path,
			 const char *body, char **resp, long *status, struct clbsd_err *err)
{
	return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOSYS, "no daemon in a unit test");
}

/* Only the host, image and network forms stay, in their order, each once. */
TEST(settings_keep_host_image_network)
{
	const char *text = ";; the lab\n"
			   "(host :network (:bridge \"clbsd0\" :subnet \"10.88.0.0/24\")\n"
			   "      :ingress (:listen (\"0.0.0.0:80\") :tls (:ca auto))) ; why\n"
			   "(container web :image \"forge\" :domain \"web\" :port 80\n"
			   "  :command (\"sh\" \"-c\" \"echo ')' (host) > /x\"))\n"
			   "(image web :build \"/srv/web\")\n"
			   "(override web :memory \"1G\")\n"
			   "(network lab :subnet \"10.9.0.0/24\") (container db :image \"x\")\n"
			   "(hostile)\n";
	autofree char *s = host_conf_settings(text);
	CHECK_STR(s, "(host :network (:bridge \"clbsd0\" :subnet \"10.88.0.0/24\")\n"
		     "      :ingress (:listen (\"0.0.0.0:80\") :tls (:ca auto)))\n"
		     "(image web :build \"/srv/web\")\n"
		     "(network lab :subnet \"10.9.0.0/24\")\n");
}

TEST(settings_of_nothing)
{
	autofree char *a = host_conf_settings("");
	CHECK_STR(a, "");
	autofree char *b = host_conf_settings(";; only notes\n(container a :image \"x\")\n");
	CHECK_STR(b, "");
	/* Cut short: what is there is kept as it is, and the reader reports it. */
	autofree char *c = host_conf_settings("(host :network (:bridge \"b\"");
	CHECK_STR(c, "(host :network (:bridge \"b\"\n");
}

TEST(routing_container_and_image)
{
	json_t *host = json_pack("{s:{s:s,s:s}}", "routing", "container", "ingress", "image",
				 "clbsd-ingress:latest");
	json_t *routing =
		json_pack("{s:s,s:s}", "name", "ingress", "image", "clbsd-ingress:latest");
	json_t *mine = json_pack("{s:s,s:s}", "name", "ingress", "image", "forge");
	json_t *other = json_pack("{s:s,s:s}", "name", "web", "image", "clbsd-ingress:latest");
	CHECK(host_is_routing_ctr(host, routing));
	CHECK(!host_is_routing_ctr(host, mine));
	CHECK(!host_is_routing_ctr(host, other));
	/* A daemon that does not say (an older one): nothing is left out. */
	json_t *old = json_object();
	CHECK(!host_is_routing_ctr(old, routing));
	json_t *img = json_pack("{s:[s,s]}", "names", "nginx:1", "clbsd-ingress:latest");
	json_t *img2 = json_pack("{s:[s]}", "names", "forge:latest");
	CHECK(host_is_routing_image(host, img));
	CHECK(!host_is_routing_image(host, img2));
	CHECK(!host_is_routing_image(old, img));
	json_decref(host);
	json_decref(routing);
	json_decref(mine);
	json_decref(other);
	json_decref(old);
	json_decref(img);
	json_decref(img2);
}

TEST_MAIN_BEGIN("cli.host_conf")
RUN(settings_keep_host_image_network);
RUN(settings_of_nothing);
RUN(routing_container_and_image);
TEST_MAIN_END
