/*
 * The text-level helpers of `clbsd host` (cli/host_state.c): which
 * container and image are the daemon's routing ones, left out of exports
 * and diffs. The source is included directly (the CLI is a
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
RUN(routing_container_and_image);
TEST_MAIN_END
