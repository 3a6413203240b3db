/*
 * /v1/networks: list, inspect, create, remove (docs/api.md), and
 * GET /v1/containers/NAME/doctor, which checks one container's plumbing.
 */
#include "api.h"
#include "util/util.h"

static void doctor_done(json_t *result, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	autofree char *name = p->data;
	p->data = NULL;
	if (err) {
		api_pending_err(p, err);
		return;
	}
	/* Its ingress route, when it has one. */
	int bad = 0;
	ingress_doctor(p->d, name, json_object_get(result, "checks"), &bad);
	if (bad)
		json_object_set_new(
			result, "problems",
			json_integer(json_integer_value(json_object_get(result, "problems")) +
				     bad));
	api_pending_json(p, 200, result);
}

void api_container_doctor(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct container *c = a->c;
	struct clbsd_err err;
	struct api_pending *p = api_pending_new(d, req);
	p->data = xstrdup(c->name);
	if (dnet_doctor(c, doctor_done, p, &err) < 0) {
		free(p->data);
		p->data = NULL;
		api_pending_err(p, &err);
		return;
	}
}

/* Answer once the bridge is made or gone. */
static void queued_json(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	json_t *body = p->data;
	p->data = NULL;
	api_pending_json(p, json_object_get(body, "removed") ? 200 : 201, body);
}

void api_net_list(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	api_reply_json(req, 200, dnet_list(d));
}

void api_net_create(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *out = NULL;
	int r = dnet_create(d, body, &out, &err);
	json_decref(body);
	if (r < 0) {
		api_reply_err(req, &err);
		return;
	}
	struct api_pending *p = api_pending_new(d, req);
	p->data = out;
	dnet_after_queue(d, queued_json, p);
}

void api_net_inspect(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *j = dnet_inspect(d, api_param(a, "name"), &err);
	if (j)
		api_reply_json(req, 200, j);
	else
		api_reply_err(req, &err);
}

void api_net_remove(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	const char *name = api_param(a, "name");
	if (dnet_remove(d, name, &err) < 0) {
		api_reply_err(req, &err);
		return;
	}
	struct api_pending *p = api_pending_new(d, req);
	p->data = json_pack("{s:s}", "removed", name);
	dnet_after_queue(d, queued_json, p);
}
