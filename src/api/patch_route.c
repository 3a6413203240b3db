/*
 * PATCH /v1/containers/NAME: change keys of a declared container live.
 * The body's keys (core/spec.h, ctr_spec_patch_json) become an override
 * in the live layer (conf/live.h), checked with the whole configuration
 * first; the reconciler then applies the new declaration (a recreate only
 * when the spec hash changed) and the answer is the container afterwards.
 */
#include "api.h"
#include "conf/live.h"
#include "core/config.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>

struct patched {
	struct api_pending *p;
	char *name;
};

static void patched(struct daemon *d, json_t *summary, void *arg)
{
	struct patched *pd = arg;
	struct container *c = ctr_find(d, pd->name);
	const struct ctr_spec *s =
		d->decl.conf ? conf_container_find(d->decl.conf, pd->name) : NULL;
	if (c)
		api_pending_json(pd->p, 200, api_ctr_json(c));
	else if (s)
		/* Declared but not created (stopped, or waiting on a dependency). */
		api_pending_json(pd->p, 200,
				 json_pack("{s:s,s:b,s:o}", "name", pd->name, "created", 0,
					   "declared", ctr_spec_to_json(s)));
	else
		api_pending_json(pd->p, 200, json_pack("{s:s}", "name", pd->name));
	free(pd->name);
	free(pd);
}

void api_ctr_patch(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	const char *name = api_param(a, "name");
	const struct ctr_spec *base = d->decl.conf ? conf_container_find(d->decl.conf, name) : NULL;
	if (!base) {
		struct container *c = ctr_find(d, name);
		if (!c || !c->decl.managed)
			api_reply_error(
				req, c ? 409 : 404, c ? "conflict" : "not_found",
				"%s%s%s is not declared in the configuration; PATCH changes a "
				"declared container: declare it (a (container %s ...) form in %s "
				"or conf.d) and run clbsd apply%s",
				c ? "container " : "no container \"", name, c ? "" : "\"", name,
				d->config,
				c ? ", or recreate it with the new settings (clbsd rm, clbsd run)"
				  : "");
		else
			api_reply_error(req, 409, "conflict",
					"container %s is no longer declared (the configuration "
					"changed); run clbsd apply",
					name);
		return;
	}
	json_t *body = api_body_json(req);
	if (!body)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct live_kv *kv = NULL;
	size_t n = 0;
	int r = ctr_spec_patch_json(body, base, &kv, &n, &err);
	json_decref(body);
	if (r == 0)
		r = reconcile_record_keys(d, name, kv, n, &err);
	for (size_t i = 0; i < n; i++)
		free(kv[i].value);
	free(kv);
	if (r < 0) {
		api_reply_err(req, &err);
		return;
	}
	struct patched *pd = xcalloc(1, sizeof(*pd));
	pd->p = api_pending_new(d, req);
	pd->name = xstrdup(name);
	reconcile_now(d, false, patched, pd);
}
