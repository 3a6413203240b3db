/*
 * Snapshots, rollback and clones over HTTP (daemon side: src/daemon/snapshot.c).
 *
 *   GET    /v1/containers/{name}/snapshots            -> [{"label","created_at","used"}]
 *   POST   /v1/containers/{name}/snapshots            {"label"?} -> 201, the list
 *   DELETE /v1/containers/{name}/snapshots/{label}    -> 200, the list
 *   POST   /v1/containers/{name}/rollback?label=L[&force=1][&t=SECS] -> 200 container
 *   POST   /v1/containers/{name}/clone                {"name","label"?} -> 201 new container
 *   POST   /v1/containers/{name}/export[?snapshots=none|all|L1,L2]
 *                                                     {"path"} -> 200 {"path","stream_bytes",..}
 *   POST   /v1/import                                 {"path","name"?} -> 201 new container
 */
#include "api.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>

static void reply_list(struct container *c, const struct clbsd_err *err, void *arg, int status)
{
	struct api_pending *p = arg;
	if (err) {
		api_pending_err(p, err);
		return;
	}
	struct clbsd_err e2;
	json_t *l = ctr_snapshot_list(c, &e2);
	if (!l)
		api_pending_err(p, &e2);
	else
		api_pending_json(p, status, l);
}

static void done_list(struct container *c, const struct clbsd_err *err, void *arg)
{
	reply_list(c, err, arg, 200);
}

static void done_created_list(struct container *c, const struct clbsd_err *err, void *arg)
{
	reply_list(c, err, arg, 201);
}

static void done_container(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err)
		api_pending_err(p, err);
	else
		api_pending_json(p, 200, api_ctr_json(c));
}

static void done_clone(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err)
		api_pending_err(p, err);
	else
		api_pending_json(p, 201, api_ctr_json(c));
}

/* Optional string member of a body; 400 when present but not a string. */
static int body_str(struct evhttp_request *req, json_t *body, const char *key, const char **out)
{
	json_t *v = json_object_get(body, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		api_reply_error(req, 400, "invalid_argument", "\"%s\" must be a string", key);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static void done_export(json_t *summary, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err)
		api_pending_err(p, err);
	else
		api_pending_json(p, 200, summary);
}

void api_import(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *path, *name;
	if (body_str(req, body, "path", &path) == 0 && body_str(req, body, "name", &name) == 0) {
		if (!path) {
			api_reply_error(req, 400, "invalid_argument",
					"import needs {\"path\": FILE} in the body");
		} else {
			struct clbsd_err err;
			clbsd_err_init(&err);
			struct api_pending *p = api_pending_new(d, req);
			bool declared = api_query_bool(req, "declared");
			struct import_decl_opts o = {
				.declaration =
					json_string_value(json_object_get(body, "declaration")),
				.pending = json_is_true(json_object_get(body, "pending"))};
			int r = declared ? ctr_import_declared_opts(d, path, name, &o, done_clone,
								    p, &err)
					 : ctr_import(d, path, name,
						      api_query_bool(req, "allow_host_access"),
						      done_clone, p, &err);
			if (r < 0)
				api_pending_err(p, &err);
		}
	}
	json_decref(body);
}

void api_snapshot_list(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *l = ctr_snapshot_list(a->c, &err);
	if (l)
		api_reply_json(req, 200, l);
	else
		api_reply_err(req, &err);
}

void api_snapshot_create(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *label;
	if (body_str(req, body, "label", &label) == 0) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		struct api_pending *p = api_pending_new(d, req);
		if (ctr_snapshot(a->c, label, done_created_list, p, &err) < 0)
			api_pending_err(p, &err);
	}
	json_decref(body);
}

void api_snapshot_destroy(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct api_pending *p = api_pending_new(d, req);
	if (ctr_snapshot_destroy(a->c, api_param(a, "label"), done_list, p, &err) < 0)
		api_pending_err(p, &err);
}

void api_ctr_rollback(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	autofree char *label = api_query(req, "label");
	if (!label || !*label) {
		api_reply_error(req, 400, "invalid_argument",
				"rollback needs label=SNAPSHOT ('clbsd snapshots %s' lists them)",
				a->c->name);
		return;
	}
	int secs;
	if (api_query_seconds(req, "t", 10, &secs) < 0)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct api_pending *p = api_pending_new(d, req);
	if (ctr_rollback(a->c, label, api_query_bool(req, "force"), secs, done_container, p, &err) <
	    0)
		api_pending_err(p, &err);
}

void api_ctr_export(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *path, *label, *from, *at;
	if (body_str(req, body, "path", &path) == 0 && body_str(req, body, "label", &label) == 0 &&
	    body_str(req, body, "from", &from) == 0 && body_str(req, body, "at", &at) == 0) {
		if (!path) {
			api_reply_error(req, 400, "invalid_argument",
					"export needs {\"path\": FILE} in the body");
		} else {
			struct clbsd_err err;
			clbsd_err_init(&err);
			autofree char *snaps = api_query(req, "snapshots");
			struct export_opts o = {
				.label = at ? at : label,
				.at = at != NULL,
				.from = from,
				.snapshots = snaps,
				.with_image = json_is_true(json_object_get(body, "with_image"))};
			struct api_pending *p = api_pending_new(d, req);
			if (ctr_export(a->c, path, &o, done_export, p, &err) < 0)
				api_pending_err(p, &err);
		}
	}
	json_decref(body);
}

void api_ctr_clone(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *name, *label;
	if (body_str(req, body, "name", &name) == 0 && body_str(req, body, "label", &label) == 0) {
		if (!name) {
			api_reply_error(req, 400, "invalid_argument",
					"clone needs {\"name\": NEW} in the body");
		} else {
			struct clbsd_err err;
			clbsd_err_init(&err);
			struct api_pending *p = api_pending_new(d, req);
			if (ctr_clone(a->c, label, name, done_clone, p, &err) < 0)
				api_pending_err(p, &err);
		}
	}
	json_decref(body);
}

/* POST /v1/imports/{name}/commit: a provisional import (?declared=1, "pending") is kept. */
void api_import_commit(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (ctr_import_commit(d, api_param(a, "name"), &err) < 0)
		api_reply_err(req, &err);
	else
		api_reply_empty(req, 204);
}

static void done_aborted(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err) {
		api_pending_err(p, err);
		return;
	}
	if (!p->gone)
		api_reply_empty(p->req, 204);
	api_pending_free(p);
}

/* DELETE /v1/imports/{name}: a provisional import is undone. */
void api_import_abort(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct api_pending *p = api_pending_new(d, req);
	if (ctr_import_abort(d, api_param(a, "name"), done_aborted, p, &err) < 0)
		api_pending_err(p, &err);
}
