/* POST /v1/build: a Cblockfile build, its progress streamed (src/daemon/build_run.c). */
#include "api.h"
#include "util/util.h"

void api_build(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (build_start(d, req, body, &err) < 0)
		api_reply_err(req, &err);
	json_decref(body);
}
