/*
 * /v1/images: decodes the request, calls the engine's image operations
 * (src/daemon/image_jobs.c) and encodes their answer.
 */
#include "api.h"
#include "util/json.h"
#include "util/util.h"

#include <string.h>

/* A job's answer: 201 and the new image. */
static void on_stored(json_t *result, const struct clbsd_err *err, void *arg)
{
	if (err)
		api_pending_err(arg, err);
	else
		api_pending_json(arg, 201, result);
}

/* An export's answer: 200 and its summary. */
static void on_exported(json_t *result, const struct clbsd_err *err, void *arg)
{
	if (err)
		api_pending_err(arg, err);
	else
		api_pending_json(arg, 200, result);
}

enum job_kind { JOB_IMPORT, JOB_FORGE, JOB_LOAD, JOB_PULL, JOB_EXPORT };

/* Decode the body and start the job; the reply comes when it ends, or now on failure. */
static void start_job(struct daemon *d, struct evhttp_request *req, enum job_kind kind,
		      const char *ref)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	const char *name = json_str(body, "name");
	const char *path = json_str(body, "path");
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct api_pending *p = api_pending_new(d, req);
	int r = 0;
	switch (kind) {
	case JOB_IMPORT:
		r = dimage_import(d, path, name, on_stored, p, &err);
		break;
	case JOB_FORGE: {
		/* forge --from-host: host binaries and the libraries they link. */
		json_t *fh = json_object_get(body, "from_host");
		r = dimage_forge(d, name, fh != NULL, fh ? json_to_strv(fh) : NULL, on_stored, p,
				 &err);
		break;
	}
	case JOB_LOAD:
		r = dimage_load_ex(d, path, name,
				   json_is_true(json_object_get(body, "keep_created")), on_stored,
				   p, &err);
		break;
	case JOB_PULL: {
		const char *how = json_str(body, "kind");
		if (how && strcmp(how, "docker") == 0 && name) {
			r = clbsd_err_setmsg(&err, CLBSD_E_INVALID, EINVAL,
					     "\"name\" does not go with a docker pull: dockerd "
					     "keeps the reference's name");
		} else if (how && strcmp(how, "docker") == 0) {
			r = docker_image_pull(d, json_str(body, "ref"), on_stored, p, &err);
		} else if (how && strcmp(how, "native") != 0) {
			r = clbsd_err_setmsg(&err, CLBSD_E_INVALID, EINVAL,
					     "\"kind\" is native or docker");
		} else {
			r = dimage_pull(d, json_str(body, "ref"), name, on_stored, p, &err);
		}
		break;
	}
	case JOB_EXPORT:
		r = dimage_export(d, ref, path, on_exported, p, &err);
		break;
	}
	if (r < 0) {
		api_pending_free(p);
		api_reply_err(req, &err);
	}
	json_decref(body);
}

/* POST /v1/images/REF/tag {"name"}. */
static void do_tag(struct daemon *d, struct evhttp_request *req, const char *ref)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *img = NULL;
	if (dimage_tag(d, ref, json_str(body, "name"), &img, &err) < 0)
		api_reply_err(req, &err);
	else
		api_reply_json(req, 200, img);
	json_decref(body);
}

/* The routes of routes.def; {ref} may hold '/'. */
/* A docker image list's answer: 200 and the array. */
static void on_listed(json_t *result, const struct clbsd_err *err, void *arg)
{
	if (err)
		api_pending_err(arg, err);
	else
		api_pending_json(arg, 200, result);
}

void api_image_list(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	autofree char *kind = api_query(req, "kind");
	if (kind && strcmp(kind, "docker") == 0) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		struct api_pending *p = api_pending_new(d, req);
		if (docker_image_list(d, on_listed, p, &err) < 0) {
			api_pending_free(p);
			api_reply_err(req, &err);
		}
		return;
	}
	if (kind && strcmp(kind, "native") != 0) {
		api_reply_error(req, 400, "invalid", "\"kind\" is native or docker");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < d->images.n; i++)
		json_array_append_new(arr, image_to_json(&d->images, d->images.imgs[i]));
	api_reply_json(req, 200, arr);
}

void api_image_get(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	const char *ref = api_param(a, "ref");
	struct image *img = image_lookup(&d->images, ref);
	if (!img)
		api_reply_error(req, 404, "not_found",
				"no image \"%s\" ('clbsd images' lists them)", ref);
	else
		api_reply_json(req, 200, image_to_json(&d->images, img));
}

void api_image_remove(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (dimage_remove(d, api_param(a, "ref"), api_query_bool(req, "force"), &err) < 0) {
		api_reply_err(req, &err);
		return;
	}
	api_reply_empty(req, 204);
}

void api_image_import(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	start_job(d, req, JOB_IMPORT, NULL);
}

void api_image_forge(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	start_job(d, req, JOB_FORGE, NULL);
}

void api_image_load(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	start_job(d, req, JOB_LOAD, NULL);
}

void api_image_pull(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	start_job(d, req, JOB_PULL, NULL);
}

void api_image_prune(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	api_reply_json(req, 200, dimage_prune(d));
}

void api_image_export(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	start_job(d, req, JOB_EXPORT, api_param(a, "ref"));
}

void api_image_tag(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	do_tag(d, req, api_param(a, "ref"));
}
