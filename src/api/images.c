#include "api.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An import or forge: fill a staging dir on a worker, register on the loop. */
struct image_job {
	struct api_pending *p;
	struct daemon *d;
	bool forge;
	char *src;
	char *name;
	char *staging;
	struct image_config cfg;
	struct clbsd_err err;
	int rc;
};

static void job_run(void *arg)
{
	struct image_job *j = arg;
	if (j->forge)
		j->rc = image_stage_forge(j->staging, j->src, &j->cfg, &j->err);
	else
		j->rc = image_stage_import(j->staging, j->src, &j->cfg, &j->err);
	if (j->rc < 0) {
		struct clbsd_err ignore;
		fs_rm_rf(j->staging, &ignore);
	}
}

static void job_done(void *arg)
{
	struct image_job *j = arg;
	struct image *img = NULL;
	if (j->rc == 0)
		j->rc = image_commit(&j->d->images, j->staging, &j->cfg, j->name, ctr_image_in_use,
				     j->d, &img, &j->err);
	if (j->rc < 0) {
		log_error("image", NULL, "%s %s: %s", j->forge ? "forge" : "import", j->name,
			  j->err.msg);
		api_pending_err(j->p, &j->err);
	} else {
		autofree char *norm = image_ref_normalise(j->name);
		daemon_event(j->d, "image.imported", NULL,
			     json_pack("{s:s,s:s,s:I}", "name", norm, "id", img->id, "size",
				       (json_int_t)img->size));
		log_info("image", NULL, "stored %s as %.12s (%lld bytes)", norm, img->id,
			 (long long)img->size);
		api_pending_json(j->p, 201, image_to_json(&j->d->images, img));
	}
	image_config_release(&j->cfg);
	free(j->src);
	free(j->name);
	free(j->staging);
	free(j);
}

static void start_job(struct daemon *d, struct evhttp_request *req, bool forge)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *name = json_str(body, "name");
	const char *path = json_str(body, "path");
	if (forge && !name)
		name = "forge:latest";
	if (!name || !valid_image_ref(name)) {
		api_reply_error(req, 400, "invalid_argument",
				"image name \"%s\" is invalid: use lowercase name[:tag], like web:1.0",
				name ? name : "");
		json_decref(body);
		return;
	}
	if (!forge && (!path || !fs_path_is_clean_abs(path))) {
		api_reply_error(req, 400, "invalid_argument",
				"\"path\" must be an absolute directory path without . or ..");
		json_decref(body);
		return;
	}
	if (!forge && !fs_is_dir(path)) {
		api_reply_error(req, 400, "invalid_argument", "%s is not a directory", path);
		json_decref(body);
		return;
	}
	struct image_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->forge = forge;
	j->src = xstrdup(forge ? d->busybox : path);
	j->name = xstrdup(name);
	json_decref(body);
	if (image_staging_new(&d->images, &j->staging, &j->err) < 0) {
		api_reply_err(req, &j->err);
		free(j->src), free(j->name), free(j);
		return;
	}
	j->p = api_pending_new(d, req);
	work_submit(d, job_run, job_done, j);
}

void api_images(struct daemon *d, struct evhttp_request *req, const char *ref)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (!ref) {
		if (m != EVHTTP_REQ_GET) {
			api_reply_error(req, 405, "invalid_argument", "use GET on /v1/images");
			return;
		}
		json_t *a = json_array();
		for (size_t i = 0; i < d->images.n; i++)
			json_array_append_new(a, image_to_json(&d->images, d->images.imgs[i]));
		api_reply_json(req, 200, a);
		return;
	}
	if (m == EVHTTP_REQ_POST && strcmp(ref, "import") == 0) {
		start_job(d, req, false);
		return;
	}
	if (m == EVHTTP_REQ_POST && strcmp(ref, "forge") == 0) {
		start_job(d, req, true);
		return;
	}
	if (m == EVHTTP_REQ_GET) {
		struct image *img = image_lookup(&d->images, ref);
		if (!img)
			api_reply_error(req, 404, "not_found",
					"no image \"%s\" ('clbsd images' lists them)", ref);
		else
			api_reply_json(req, 200, image_to_json(&d->images, img));
		return;
	}
	if (m == EVHTTP_REQ_DELETE) {
		struct image *img = image_lookup(&d->images, ref);
		char id[65] = "";
		if (img)
			memcpy(id, img->id, sizeof(id));
		if (image_remove(&d->images, ref, api_query_bool(req, "force"), ctr_image_in_use, d,
				 &err) < 0) {
			api_reply_err(req, &err);
			return;
		}
		daemon_event(d, "image.removed", NULL,
			     json_pack("{s:s,s:s}", "ref", ref, "id", id));
		api_reply_empty(req, 204);
		return;
	}
	api_reply_error(req, 405, "invalid_argument", "method not allowed on /v1/images/%s", ref);
}
