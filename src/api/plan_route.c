/*
 * GET /v1/plan, POST /v1/apply[?dry_run=1], GET /v1/status: the declarative
 * side of the daemon (src/daemon/reconcile.c).
 */
#include "api.h"
#include "util/json.h"
#include "util/util.h"

void api_plan(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *plan = reconcile_plan(d, &err);
	if (!plan) {
		api_reply_err(req, &err);
		return;
	}
	api_reply_json(req, 200,
		       json_pack("{s:I,s:o}", "generation", (json_int_t)d->decl.generation,
				 "actions", plan));
}

static void applied(struct daemon *d, json_t *summary, void *arg)
{
	api_pending_json(arg, 200, json_incref(summary));
}

void api_apply(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	bool dry = api_query_bool(req, "dry_run");
	/* apply takes the files as they are now, like a SIGHUP. */
	if (!dry && config_reload(d, &err) < 0) {
		api_reply_err(req, &err);
		return;
	}
	if (dry) {
		json_t *plan = reconcile_plan(d, &err);
		if (!plan) {
			api_reply_err(req, &err);
			return;
		}
		api_reply_json(req, 200, json_pack("{s:b,s:o}", "dry_run", 1, "actions", plan));
		return;
	}
	reconcile_now(d, false, applied, api_pending_new(d, req));
}

void api_status(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	api_reply_json(req, 200, reconcile_status(d));
}
