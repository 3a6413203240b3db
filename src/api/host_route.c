/*
 * The host as a whole, for clbsd host export (daemon side: src/daemon/host.c).
 *
 *   GET  /v1/host                      -> {"version","root","config","confd","live",
 *                                          "driver","kernel","zfs"?,"lisp_init"?,
 *                                          "ingress_ca"?,"snapshot_all","docker"}
 *   POST /v1/host/snapshot {"label"}   -> 201 {"label","containers":[...],"docker"?}
 */
#include "api.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>

void api_host_get(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	api_reply_json(req, 200, host_describe(d));
}

static void done_snapshot(json_t *res, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err)
		api_pending_err(p, err);
	else
		api_pending_json(p, 201, res);
}

void api_host_snapshot(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *label = json_string_value(json_object_get(body, "label"));
	if (!label) {
		api_reply_error(req, 400, "invalid_argument",
				"host snapshot needs {\"label\": LABEL} in the body");
	} else {
		struct clbsd_err err;
		clbsd_err_init(&err);
		struct api_pending *p = api_pending_new(d, req);
		if (host_snapshot(d, label, done_snapshot, p, &err) < 0)
			api_pending_err(p, &err);
	}
	json_decref(body);
}
