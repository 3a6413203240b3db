/*
 * Backups (docs/backup.md, docs/api.md "Backups"):
 *   POST /v1/containers/{name}/backup[?at=EPOCH]  -> 200 {"label","size",..}
 *   GET  /v1/backups                              -> 200 [{state}, ...]
 *   POST /v1/restore {"name","files",..}          -> 200 the container
 * `at` (the backup's time, seconds since the epoch) is taken only from a
 * daemon started with CLBSD_TEST_CLOCK=1, for tests that simulate a week.
 */
#include "api/api.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static void done_backup(json_t *result, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err)
		api_pending_err(p, err);
	else
		api_pending_json(p, 200, result);
}

void api_ctr_backup(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	int64_t at = time_now_ns() / 1000000000LL;
	autofree char *q = api_query(req, "at");
	if (q) {
		long long v;
		if (!backup_test_clock(d)) {
			api_reply_error(req, 400, "invalid_argument",
					"at= is for tests: the daemon takes it only with "
					"CLBSD_TEST_CLOCK=1 in its environment");
			return;
		}
		if (parse_int(q, 0, 253402300799LL, &v) < 0) {
			api_reply_error(req, 400, "invalid_argument",
					"at=%s: expected seconds since the epoch", q);
			return;
		}
		at = v;
	}
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct api_pending *p = api_pending_new(d, req);
	if (backup_now(d, a->c->name, at, done_backup, p, &err) < 0)
		api_pending_err(p, &err);
}

void api_backup_list(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	api_reply_json(req, 200, backup_status(d));
}

static void done_restore(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err)
		api_pending_err(p, err);
	else
		api_pending_json(p, 200, api_ctr_json(c));
}

void api_restore(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *name = json_string_value(json_object_get(body, "name"));
	json_t *files = json_object_get(body, "files");
	struct strv v = STRV_INIT;
	size_t i;
	json_t *f;
	bool ok = name && json_is_array(files) && json_array_size(files) > 0 &&
		  json_array_size(files) <= 1024;
	json_array_foreach(files, i, f)
	{
		if (!json_is_string(f))
			ok = false;
		else
			strv_push(&v, json_string_value(f));
	}
	if (!ok) {
		api_reply_error(
			req, 400, "invalid_argument",
			"restore needs {\"name\": NAME, \"files\": [FULL, INCREMENTAL...]}");
	} else {
		struct clbsd_err err;
		clbsd_err_init(&err);
		struct api_pending *p = api_pending_new(d, req);
		if (ctr_restore(d, name, v.v, json_is_true(json_object_get(body, "replace")),
				json_is_true(json_object_get(body, "allow_host_access")),
				done_restore, p, &err) < 0)
			api_pending_err(p, &err);
	}
	strv_release(&v);
	json_decref(body);
}
