/*
 * GET /v1/plan, POST /v1/apply[?dry_run=1], GET /v1/status: the declarative
 * side of the daemon (src/daemon/reconcile.c).
 */
#include "api.h"
#include "conf/live.h"
#include "core/config.h"
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
	/*
	 * apply takes the files as they are now, like a SIGHUP: an explicit
	 * load (it walks :file-change trees again, say), recorded as this
	 * request. Only the file watch skips files already loaded (its own
	 * writes, or what apply loaded), so one change is one generation.
	 */
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

/* One container's entry of the diff: what the live layer changes. */
static json_t *diff_entry(const struct ctr_spec *file, const struct ctr_spec *live)
{
	/* At least one of the two is there: the caller pairs names from both sides. */
	const struct ctr_spec *either = file ? file : live;
	const char *change = !file ? "declared" : !live ? "undeclared" : "amended";
	json_t *e = json_pack("{s:s,s:s}", "name", either->name, "change", change);
	if (file && live) {
		struct ctr_spec_change *ch = NULL;
		size_t n = ctr_spec_diff(file, live, &ch);
		if (!n) {
			json_decref(e);
			return NULL;
		}
		json_t *keys = json_array();
		for (size_t i = 0; i < n; i++) {
			autofree char *a = ctr_spec_print_key(file, ch[i].key);
			autofree char *b = ctr_spec_print_key(live, ch[i].key);
			json_array_append_new(keys, json_pack("{s:s,s:s?,s:s?,s:b,s:b}", "key",
							      ch[i].key, "file", a, "live", b,
							      "recreate", ch[i].recreate,
							      "in_place", ch[i].in_place));
		}
		free(ch);
		json_object_set_new(e, "keys", keys);
	}
	if (live) {
		autofree char *form = ctr_spec_print(live);
		json_object_set_new(e, "form", json_string(form));
	}
	return e;
}

void api_config_diff(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	if (!d->decl.conf) {
		api_reply_error(req, 409, "conflict",
				"the configuration does not load%s%s; fix it first (clbsd status)",
				d->decl.error ? ": " : "", d->decl.error ? d->decl.error : "");
		return;
	}
	/* The files alone: the live layer read as empty. */
	struct conf_diags diags = CONF_DIAGS_INIT;
	struct conf *files = NULL;
	if (conf_load_live(d->config, d->confd, "", 0, &files, &diags) < 0) {
		autofree char *msg = conf_diags_format(&diags);
		conf_diags_release(&diags);
		api_reply_error(req, 409, "conflict",
				"the files without the live layer do not load (the live layer "
				"cannot be folded as it is):\n%s",
				msg);
		return;
	}
	conf_diags_release(&diags);
	const struct conf *live = d->decl.conf;
	json_t *list = json_array();
	for (size_t i = 0; i < files->ncontainers; i++) {
		const struct ctr_spec *f = files->containers[i];
		json_t *e = diff_entry(f, conf_container_find(live, f->name));
		if (e)
			json_array_append_new(list, e);
	}
	for (size_t i = 0; i < live->ncontainers; i++)
		if (!conf_container_find(files, live->containers[i]->name))
			json_array_append_new(list, diff_entry(NULL, live->containers[i]));
	conf_free(files);
	autofree char *path = xasprintf("%s/%s", d->confd, LIVE_FILE_NAME);
	api_reply_json(req, 200,
		       json_pack("{s:s,s:s,s:o}", "config", d->config, "live_file", path,
				 "containers", list));
}
