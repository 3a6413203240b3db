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
#include <string.h>

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

/* The PATCH was recorded (or refused): the answer follows the pass. */
static void recorded(struct daemon *d, const struct clbsd_err *err, void *arg)
{
	struct patched *pd = arg;
	if (err) {
		api_pending_err(pd->p, err);
		free(pd->name);
		free(pd);
		return;
	}
	reconcile_now(d, false, patched, pd);
}

/* A container made with `clbsd run` took new limits (or refused them). */
static void limits_taken(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct patched *pd = arg;
	if (err)
		api_pending_err(pd->p, err);
	else if (c)
		api_pending_json(pd->p, 200, api_ctr_json(c));
	else
		api_pending_json(pd->p, 200, json_pack("{s:s}", "name", pd->name));
	free(pd->name);
	free(pd);
}

/*
 * A container made with `clbsd run` changes its limits live, as with
 * Docker's update; nothing is recorded in the configuration, which does
 * not know it. Its other keys are fixed: declare it to change them.
 */
static void patch_imperative(struct daemon *d, struct evhttp_request *req, struct container *c)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *key;
	json_t *val;
	const char *other = NULL;
	if (json_is_object(body))
		json_object_foreach(body, key, val)
		{
			if (strcmp(key, "memory") != 0 && strcmp(key, "cpus") != 0 &&
			    strcmp(key, "pids") != 0 && !other)
				other = key;
		}
	if (other || !json_is_object(body) || !json_object_size(body)) {
		api_reply_error(req, 409, "conflict",
				"container %s is not declared in the configuration; of a "
				"container made with clbsd run only the limits (memory, cpus, "
				"pids) change live%s%s%s; to change the others declare it (a "
				"(container %s ...) form in %s or conf.d) and run clbsd apply, "
				"or recreate it with the new settings (clbsd rm, clbsd run)",
				c->name, other ? ", not \"" : "", other ? other : "",
				other ? "\"" : "", c->name, d->config);
		json_decref(body);
		return;
	}
	struct ctr_live live = {.memory = c->cfg.limits.memory,
				.cpus = c->cfg.limits.cpus,
				.pids = c->cfg.limits.pids};
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = ctr_spec_limits_json(body, &live, &err);
	json_decref(body);
	if (r < 0) {
		api_reply_err(req, &err);
		return;
	}
	struct rt_limits lim = {.memory = live.memory, .cpus = live.cpus, .pids = live.pids};
	struct patched *pd = xcalloc(1, sizeof(*pd));
	pd->p = api_pending_new(d, req);
	pd->name = xstrdup(c->name);
	/* The answer comes from limits_taken (at once for a stopped container). */
	if (ctr_update_limits(c, &lim, NULL, NULL, limits_taken, pd, &err) < 0)
		limits_taken(c, &err, pd);
}

void api_ctr_patch(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	const char *name = api_param(a, "name");
	const struct ctr_spec *base = d->decl.conf ? conf_container_find(d->decl.conf, name) : NULL;
	if (!base) {
		struct container *c = ctr_find(d, name);
		if (c && !c->decl.managed)
			patch_imperative(d, req, c);
		else
			api_reply_error(
				req, c ? 409 : 404, c ? "conflict" : "not_found",
				c ? "container %s is no longer declared (the configuration "
				    "changed); run clbsd apply"
				  : "no container \"%s\" is declared in the configuration; PATCH "
				    "changes a declared container (or the limits of one made with "
				    "clbsd run): declare it (clbsd declare %s ...) or run it",
				name, name);
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
	if (r < 0) {
		api_reply_err(req, &err);
		return;
	}
	struct patched *pd = xcalloc(1, sizeof(*pd));
	pd->p = api_pending_new(d, req);
	pd->name = xstrdup(name);
	reconcile_record_keys(d, name, kv, n, recorded, pd);
	for (size_t i = 0; i < n; i++)
		free(kv[i].value);
	free(kv);
}

/* POST /v1/declarations: {"name": NAME, key: value ...} declares NAME live. */
void api_decl_create(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *jn = json_is_object(body) ? json_object_get(body, "name") : NULL;
	autofree char *name = json_is_string(jn) ? xstrdup(json_string_value(jn)) : NULL;
	if (!name || !valid_name(name)) {
		json_decref(body);
		api_reply_error(req, 400, "invalid_argument",
				"\"name\": expected the container's name, a DNS label like web");
		return;
	}
	if (d->decl.conf && conf_container_find(d->decl.conf, name)) {
		json_decref(body);
		api_reply_error(req, 409, "conflict",
				"container %s is already declared; change it with PATCH "
				"/v1/containers/%s (clbsd update %s ...)",
				name, name, name);
		return;
	}
	json_object_del(body, "name");
	struct live_kv *kv = NULL;
	size_t n = 0;
	int r = ctr_spec_patch_json(body, NULL, &kv, &n, &err);
	json_decref(body);
	if (r == 0)
		r = reconcile_declare(d, name, kv, n, &err);
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

static void undeclared(struct daemon *d, json_t *summary, void *arg)
{
	api_pending_json(arg, 200, json_incref(summary));
}

/* DELETE /v1/declarations/NAME: the container is no longer declared. */
void api_decl_remove(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (reconcile_undeclare(d, api_param(a, "name"), &err) < 0) {
		api_reply_err(req, &err);
		return;
	}
	reconcile_now(d, false, undeclared, api_pending_new(d, req));
}

/*
 * POST /v1/declarations/NAME/moved {"to": DEST}: clbsd migrate moved the
 * container and its declaration to DEST; (moved NAME ...) goes into the
 * live layer (src/daemon/decl_move.c). The answer holds the live file's
 * text before ("live_before", null when there was none), which DELETE
 * .../moved puts back.
 */
void api_decl_moved(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	const char *name = api_param(a, "name");
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *to = json_string_value(json_object_get(body, "to"));
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *before = NULL;
	if (!to)
		api_reply_error(req, 400, "invalid_argument",
				"\"to\": expected where the container went, a string");
	else if (!valid_name(name) || !d->decl.conf || !conf_container_find(d->decl.conf, name))
		api_reply_error(req, 404, "not_found",
				"no container \"%s\" is declared here (clbsd plan lists what the "
				"configuration declares)",
				name);
	else if (decl_live_moved(d, name, to, &before, &err) < 0)
		api_reply_err(req, &err);
	else
		api_reply_json(req, 200,
			       json_pack("{s:s,s:s?}", "name", name, "live_before", before));
	json_decref(body);
}

/*
 * DELETE /v1/declarations/NAME/moved [{"live_before": TEXT|null}]: NAME's
 * (moved ...) form goes, and its declaration applies here again; with
 * "live_before", the live file is put back to that text exactly (a
 * migration undone).
 */
void api_decl_unmoved(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	const char *name = api_param(a, "name");
	json_t *body = api_body_json(req);
	if (!body)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = 0;
	if (!valid_name(name) || !d->decl.conf || !conf_moved_find(d->decl.conf, name)) {
		api_reply_error(req, 404, "not_found",
				"container %s is not recorded as moved here (no (moved %s ...) "
				"form in the configuration)",
				name, valid_name(name) ? name : "?");
		json_decref(body);
		return;
	}
	json_t *lb = json_object_get(body, "live_before");
	if (lb)
		r = decl_live_restore(d, name, json_string_value(lb), &err);
	else
		r = decl_live_forget(d, name, &err);
	json_decref(body);
	if (r < 0) {
		api_reply_err(req, &err);
		return;
	}
	reconcile_now(d, false, undeclared, api_pending_new(d, req));
}
