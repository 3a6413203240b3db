/*
 * File integrity over HTTP (daemon side: src/daemon/integrity_run.c).
 *
 *   POST /v1/containers/{name}/verify[?update=1]  -> 200 the report
 *
 * The report is 200 whether the files differ or not ("clean" says which);
 * a container that cannot be checked is an error (409 while another check
 * runs, 503 for a docker container, 404 without a manifest unless update).
 */
#include "api.h"

static void done(json_t *report, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err)
		api_pending_err(p, err);
	else
		api_pending_json(p, 200, json_incref(report));
}

void api_ctr_verify(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct api_pending *p = api_pending_new(d, req);
	if (ctr_integrity_check(a->c, api_query_bool(req, "update"), false, done, p, &err) < 0)
		api_pending_err(p, &err);
}
