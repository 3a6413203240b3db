/*
 * Images in the engine: the slow work (import, forge, load, pull, export)
 * on a worker, with its progress as events, and the quick operations on the
 * store (tag, prune, remove) that publish an event. api/images.c decodes a
 * request, calls these and encodes the answer.
 */
#include "daemon.h"
#include "image/oci.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Slow image work runs on a worker into a staging dir (or, for an export,
 * into the target file) and is registered on the loop: import and forge
 * copy or build a tree, load and pull apply layers. Each also measures the
 * image's OCI layer on the worker, so the loop can record its digest.
 */
struct dprogress;

enum job_kind { JOB_IMPORT, JOB_FORGE, JOB_LOAD, JOB_PULL, JOB_EXPORT };

static const char *const job_verb[] = {"import", "forge", "load", "pull", "export"};

struct image_job {
	struct daemon *d;
	dimage_fn fn;
	void *fn_arg;
	struct dprogress *progress; /* pull: its lines as image.progress events */
	enum job_kind kind;
	char *src;  /* import dir, busybox, load path, pull ref, export target */
	char *name; /* the name to store (NULL for load/pull: from the source) */
	char *staging;
	struct image_config cfg;
	struct oci_loaded loaded;
	struct oci_layer layer;
	bool layer_ok;
	bool keep_created; /* load: the archive's creation time, so its id (host import) */
	/* export */
	char id[65];
	char *rootfs;
	int64_t created_ns;
	char digest[OCI_DIGEST_LEN];
	char **insecure;
	char **from_host; /* forge --from-host: host binaries (else busybox) */
	struct clbsd_err err;
	int rc;
};

/* ---- progress: worker lines become image.progress events on the loop ---- */

struct dprogress {
	struct daemon *d;
	char *ref;
	pthread_mutex_t mu;
	struct strv lines;
	struct event *ev;
};

static void progress_flush(evutil_socket_t fd, short what, void *arg)
{
	struct dprogress *pr = arg;
	pthread_mutex_lock(&pr->mu);
	char **lines = pr->lines.v;
	strv_init(&pr->lines);
	pthread_mutex_unlock(&pr->mu);
	for (size_t i = 0; lines && lines[i]; i++)
		daemon_event(pr->d, "image.progress", NULL,
			     json_pack("{s:s,s:s}", "ref", pr->ref, "status", lines[i]));
	strv_free(lines);
}

/* From the worker thread (libevent is set up for threads). */
void dprogress_line(void *ctx, const char *msg)
{
	struct dprogress *pr = ctx;
	log_info("image", NULL, "%s: %s", pr->ref, msg);
	pthread_mutex_lock(&pr->mu);
	strv_push(&pr->lines, msg);
	pthread_mutex_unlock(&pr->mu);
	event_active(pr->ev, EV_TIMEOUT, 0);
}

struct dprogress *dprogress_new(struct daemon *d, const char *ref)
{
	struct dprogress *pr = xcalloc(1, sizeof(*pr));
	pr->d = d;
	pr->ref = xstrdup(ref);
	pthread_mutex_init(&pr->mu, NULL);
	strv_init(&pr->lines);
	pr->ev = event_new(d->base, -1, 0, progress_flush, pr);
	return pr;
}

/* On the loop, after the worker is done: the last lines, then away. */
void dprogress_free(struct dprogress *pr)
{
	if (!pr)
		return;
	progress_flush(-1, 0, pr);
	event_free(pr->ev);
	pthread_mutex_destroy(&pr->mu);
	strv_release(&pr->lines);
	free(pr->ref);
	free(pr);
}

/* ---- images being exported may not be removed meanwhile ---- */

static struct strv exporting = STRV_INIT;

bool dimage_busy(const char *id, void *d)
{
	for (size_t i = 0; exporting.v && exporting.v[i]; i++)
		if (strcmp(exporting.v[i], id) == 0)
			return true;
	return ctr_image_in_use(id, d);
}

static void unexport(const char *id)
{
	for (size_t i = 0; exporting.v && exporting.v[i]; i++) {
		if (strcmp(exporting.v[i], id) == 0) {
			free(exporting.v[i]);
			size_t n = strv_len(exporting.v);
			exporting.v[i] = exporting.v[n - 1];
			exporting.v[n - 1] = NULL;
			exporting.n--;
			return;
		}
	}
}

static void job_run(void *arg)
{
	struct image_job *j = arg;
	autofree char *rootfs = j->staging ? xasprintf("%s/rootfs", j->staging) : NULL;
	switch (j->kind) {
	case JOB_FORGE:
		if (j->from_host)
			j->rc = image_stage_from_host(j->staging, (const char *const *)j->from_host,
						      &j->cfg, &j->err);
		else
			j->rc = image_stage_forge(j->staging, j->src, &j->cfg, &j->err);
		break;
	case JOB_IMPORT:
		j->rc = image_stage_import(j->staging, j->src, &j->cfg, &j->err);
		break;
	case JOB_LOAD:
		j->rc = oci_stage_load(j->staging, j->src, &j->loaded, &j->err);
		break;
	case JOB_PULL: {
		struct oci_pull_opts o = {
			.insecure = j->insecure, .progress = dprogress_line, .ctx = j->progress};
		j->rc = oci_stage_pull(j->staging, j->src, &o, &j->loaded, &j->err);
		break;
	}
	case JOB_EXPORT:
		j->rc = oci_export(j->rootfs, &j->cfg, j->created_ns, j->name, j->staging, j->src,
				   &j->layer, j->digest, &j->err);
		j->layer_ok = j->rc == 0;
		break;
	}
	if (j->rc == 0 && j->kind != JOB_EXPORT) {
		/* The digest's expensive part; an image without one still works. */
		struct clbsd_err e2;
		j->layer_ok = oci_layer_write(rootfs, -1, &j->layer, &e2) == 0;
		if (!j->layer_ok)
			log_warn("image", NULL, "no OCI digest for %s: %s", j->src, e2.msg);
		/* Its containers' manifest at create (docs/integrity.md); it works without. */
		if (image_integrity_record(j->staging, &e2) < 0)
			log_warn("image", NULL, "no integrity manifest for %s: %s", j->src, e2.msg);
	}
	if ((j->rc < 0 && j->staging) || j->kind == JOB_EXPORT) {
		struct clbsd_err ignore;
		fs_rm_rf(j->staging, &ignore);
	}
}

static void job_free(struct image_job *j)
{
	strv_free(j->from_host);
	image_config_release(&j->cfg);
	oci_loaded_release(&j->loaded);
	free(j->src);
	free(j->name);
	free(j->staging);
	free(j->rootfs);
	strv_free(j->insecure);
	free(j);
}

/*
 * A new image's OCI digest, and its content-addressed id: the sha256 of its
 * OCI config blob, as docker names images (so `docker images` shows the
 * same id after a skopeo copy). Images stored before keep their ids.
 */
static void record_digest(struct image_job *j, struct image *img, const char *source)
{
	if (!j->layer_ok)
		return;
	char id[65];
	oci_config_id(&img->config, img->created_ns, &j->layer, id);
	struct clbsd_err e1;
	if (image_rekey(&j->d->images, img, id, &e1) < 0)
		log_warn("image", NULL, "image %.12s keeps its id: %s", img->id, e1.msg);
	char digest[OCI_DIGEST_LEN];
	oci_image_digest(&img->config, img->created_ns, &j->layer, digest);
	struct clbsd_err e2;
	if (image_set_digest(img, digest, j->layer.diff_id, j->layer.digest, j->layer.size, source,
			     &e2) < 0)
		log_warn("image", NULL, "%s", e2.msg);
}

static void export_done(struct image_job *j)
{
	unexport(j->id);
	if (j->rc < 0) {
		log_error("image", NULL, "export %s: %s", j->name, j->err.msg);
		j->fn(NULL, &j->err, j->fn_arg);
		return;
	}
	struct image *img = image_by_id(&j->d->images, j->id);
	if (img && strcmp(img->digest, j->digest) != 0) {
		if (*img->digest)
			log_warn("image", NULL,
				 "image %.12s: the export's digest %s differs from the recorded "
				 "%s (its tree changed?); recording the new one",
				 img->id, j->digest, img->digest);
		struct clbsd_err e2;
		if (image_set_digest(img, j->digest, j->layer.diff_id, j->layer.digest,
				     j->layer.size, NULL, &e2) < 0)
			log_warn("image", NULL, "%s", e2.msg);
	}
	daemon_event(j->d, "image.exported", NULL,
		     json_pack("{s:s,s:s,s:s,s:s}", "name", j->name, "id", j->id, "digest",
			       j->digest, "path", j->src));
	log_info("image", NULL, "exported %s to %s (%s)", j->name, j->src, j->digest);
	j->fn(json_pack("{s:s,s:s,s:s,s:s,s:I}", "name", j->name, "id", j->id, "digest", j->digest,
			"path", j->src, "layer_size", (json_int_t)j->layer.size),
	      NULL, j->fn_arg);
}

static void job_done(void *arg)
{
	struct image_job *j = arg;
	struct dprogress *pr = j->progress;
	j->progress = NULL;
	if (j->kind == JOB_EXPORT) {
		export_done(j);
		job_free(j);
		return;
	}
	struct image *img = NULL;
	const struct image_config *cfg = &j->cfg;
	if (j->kind == JOB_LOAD || j->kind == JOB_PULL) {
		cfg = &j->loaded.cfg;
		if (!j->name && j->loaded.name && valid_image_ref(j->loaded.name))
			j->name = xstrdup(j->loaded.name);
		if (j->rc == 0 && !j->name) {
			j->rc = clbsd_err_setmsg(&j->err, CLBSD_E_INVALID, EINVAL,
						 "%s names no image (or no usable name%s%s); give "
						 "one with \"name\" (clbsd image load --name)",
						 j->src, j->loaded.name ? ": " : "",
						 j->loaded.name ? j->loaded.name : "");
			struct clbsd_err ignore;
			fs_rm_rf(j->staging, &ignore);
		}
	}
	if (j->rc == 0)
		j->rc = image_commit_at(&j->d->images, j->staging, cfg, j->name, dimage_busy, j->d,
					j->keep_created ? j->loaded.created_ns : 0, &img, &j->err);
	const char *verb = job_verb[j->kind];
	if (j->rc < 0) {
		log_error("image", NULL, "%s %s: %s", verb, j->name ? j->name : j->src, j->err.msg);
		if (pr) {
			autofree char *msg = xasprintf("failed: %s", j->err.msg);
			dprogress_line(pr, msg);
		}
		dprogress_free(pr);
		j->fn(NULL, &j->err, j->fn_arg);
	} else {
		record_digest(j, img, j->kind == JOB_PULL ? j->loaded.source : NULL);
		autofree char *norm = image_ref_normalise(j->name);
		json_t *ev = json_pack("{s:s,s:s,s:I}", "name", norm, "id", img->id, "size",
				       (json_int_t)img->size);
		if (*img->digest)
			json_object_set_new(ev, "digest", json_string(img->digest));
		if (j->kind == JOB_LOAD || j->kind == JOB_PULL)
			json_object_set_new(ev, "from", json_string(j->src));
		daemon_event(j->d,
			     j->kind == JOB_PULL   ? "image.pulled"
			     : j->kind == JOB_LOAD ? "image.loaded"
						   : "image.imported",
			     NULL, ev);
		log_info("image", NULL, "stored %s as %.12s (%lld bytes)", norm, img->id,
			 (long long)img->size);
		if (pr) {
			autofree char *msg = xasprintf("done: %s as %s", j->src, norm);
			dprogress_line(pr, msg);
		}
		dprogress_free(pr);
		j->fn(image_to_json(&j->d->images, img), NULL, j->fn_arg);
	}
	job_free(j);
}

static struct image_job *job_new(struct daemon *d, enum job_kind kind, const char *src,
				 const char *name, dimage_fn fn, void *arg)
{
	struct image_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->fn = fn;
	j->fn_arg = arg;
	j->kind = kind;
	j->src = xstrdup(src);
	j->name = name ? xstrdup(name) : NULL;
	clbsd_err_init(&j->err);
	return j;
}

/* Give the job a staging dir and start it; on failure nothing runs and j is freed. */
static int job_start(struct image_job *j, struct clbsd_err *err)
{
	if (image_staging_new(&j->d->images, &j->staging, err) < 0) {
		if (j->kind == JOB_EXPORT)
			unexport(j->id);
		job_free(j);
		return -err->code;
	}
	if (j->kind == JOB_PULL)
		j->progress = dprogress_new(j->d, j->src);
	work_submit(j->d, job_run, job_done, j);
	return 0;
}

/* ---- the operations ---- */

static int check_name(const char *name, struct clbsd_err *err)
{
	if (name && valid_image_ref(name))
		return 0;
	return clbsd_err_setmsg(
		err, CLBSD_E_INVALID, EINVAL,
		"image name \"%s\" is invalid: use lowercase name[:tag], like web:1.0",
		name ? name : "");
}

static int check_path(const char *path, struct clbsd_err *err)
{
	if (path && fs_path_is_clean_abs(path))
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"\"path\" must be an absolute path without . or ..");
}

int dimage_import(struct daemon *d, const char *path, const char *name, dimage_fn fn, void *arg,
		  struct clbsd_err *err)
{
	if (check_name(name, err) < 0 || check_path(path, err) < 0)
		return -err->code;
	if (!fs_is_dir(path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s is not a directory",
					path);
	return job_start(job_new(d, JOB_IMPORT, path, name, fn, arg), err);
}

int dimage_forge(struct daemon *d, const char *name, bool from_host, char **bins, dimage_fn fn,
		 void *arg, struct clbsd_err *err)
{
	int r = 0;
	if (!name)
		name = "forge:latest";
	if (check_name(name, err) < 0) {
		r = -err->code;
	} else if (from_host && (!bins || !bins[0])) {
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				     "\"from_host\" must be a non-empty array of absolute paths");
	} else {
		for (size_t i = 0; bins && bins[i]; i++)
			if (!fs_path_is_clean_abs(bins[i]) || access(bins[i], X_OK) < 0) {
				r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						     "%s is not an executable file on this host "
						     "(give absolute paths)",
						     bins[i]);
				break;
			}
	}
	if (r < 0) {
		strv_free(bins);
		return r;
	}
	struct image_job *j = job_new(d, JOB_FORGE, d->busybox, name, fn, arg);
	j->from_host = bins;
	return job_start(j, err);
}

int dimage_load(struct daemon *d, const char *path, const char *name, dimage_fn fn, void *arg,
		struct clbsd_err *err)
{
	return dimage_load_ex(d, path, name, false, fn, arg, err);
}

int dimage_load_ex(struct daemon *d, const char *path, const char *name, bool keep_created,
		   dimage_fn fn, void *arg, struct clbsd_err *err)
{
	if ((name && check_name(name, err) < 0) || check_path(path, err) < 0)
		return -err->code;
	if (!fs_exists(path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s does not exist", path);
	struct image_job *j = job_new(d, JOB_LOAD, path, name, fn, arg);
	j->keep_created = keep_created;
	return job_start(j, err);
}

/*
 * Hosts allowed over plain http besides loopback: CLBSD_INSECURE_REGISTRIES
 * in clbsdd's environment, comma-separated host or host:port entries.
 */
static char **insecure_hosts(void)
{
	struct strv v = STRV_INIT;
	const char *env = getenv("CLBSD_INSECURE_REGISTRIES");
	autofree char *copy = xstrdup(env ? env : "");
	char *save = NULL;
	for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
		strv_push(&v, t);
	return v.v ? v.v : xcalloc(1, sizeof(char *));
}

int dimage_pull(struct daemon *d, const char *ref, const char *name, dimage_fn fn, void *arg,
		struct clbsd_err *err)
{
	struct oci_ref r;
	if (name && check_name(name, err) < 0)
		return -err->code;
	if (oci_ref_parse(ref ? ref : "", &r, err) < 0)
		return -err->code;
	if (!name && !valid_image_ref(r.name)) {
		int rc = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					  "\"%s\" cannot be a local image name; give one with "
					  "\"name\"",
					  r.name);
		oci_ref_release(&r);
		return rc;
	}
	struct image_job *j = job_new(d, JOB_PULL, ref, name ? name : r.name, fn, arg);
	oci_ref_release(&r);
	j->insecure = insecure_hosts();
	return job_start(j, err);
}

int dimage_export(struct daemon *d, const char *ref, const char *path, dimage_fn fn, void *arg,
		  struct clbsd_err *err)
{
	if (check_path(path, err) < 0)
		return -err->code;
	struct image *img = image_lookup(&d->images, ref);
	if (!img)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no image \"%s\" ('clbsd images' lists them)", ref);
	autofree char *parent = xstrdup(path);
	*strrchr(parent, '/') = '\0';
	if (*parent && !fs_is_dir(parent))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s is not a directory",
					parent);
	if (fs_is_dir(path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s is a directory; give the archive's file name", path);
	/* The name inside the archive: the one asked for, else the image's first. */
	char **names = image_names(&d->images, img);
	autofree char *norm = image_ref_normalise(ref);
	const char *refname = json_str(d->images.repos, norm) ? norm : names[0];
	struct image_job *j = job_new(d, JOB_EXPORT, path, refname ? refname : img->id, fn, arg);
	strv_free(names);
	memcpy(j->id, img->id, sizeof(j->id));
	j->rootfs = xasprintf("%s/rootfs", img->dir);
	j->created_ns = img->created_ns;
	struct image_config *c = &j->cfg;
	c->entrypoint = strv_dup(img->config.entrypoint);
	c->cmd = strv_dup(img->config.cmd);
	c->env = strv_dup(img->config.env);
	c->workdir = xstrdup(img->config.workdir ? img->config.workdir : "/");
	c->user = xstrdup(img->config.user ? img->config.user : "");
	strv_push(&exporting, j->id);
	return job_start(j, err);
}

int dimage_tag(struct daemon *d, const char *ref, const char *name, json_t **out,
	       struct clbsd_err *err)
{
	if (check_name(name, err) < 0 || image_tag(&d->images, ref, name, dimage_busy, d, err) < 0)
		return -err->code;
	struct image *img = image_lookup(&d->images, name);
	autofree char *norm = image_ref_normalise(name);
	daemon_event(d, "image.tagged", NULL,
		     json_pack("{s:s,s:s,s:s}", "ref", ref, "name", norm, "id", img->id));
	*out = image_to_json(&d->images, img);
	return 0;
}

json_t *dimage_prune(struct daemon *d)
{
	json_t *ids = json_array();
	json_int_t reclaimed = 0;
	for (size_t i = 0; i < d->images.n; i++) {
		struct image *img = d->images.imgs[i];
		char **names = image_names(&d->images, img);
		if (!names[0] && !dimage_busy(img->id, d)) {
			json_array_append_new(ids, json_string(img->id));
			reclaimed += img->size;
		}
		strv_free(names);
	}
	int n = image_gc(&d->images, dimage_busy, d);
	if (n > 0)
		daemon_event(d, "image.pruned", NULL,
			     json_pack("{s:i,s:I}", "count", n, "size", reclaimed));
	return json_pack("{s:o,s:I}", "removed", ids, "reclaimed", reclaimed);
}

int dimage_remove(struct daemon *d, const char *ref, bool force, struct clbsd_err *err)
{
	struct image *img = image_lookup(&d->images, ref);
	char id[65] = "";
	if (img)
		memcpy(id, img->id, sizeof(id));
	if (image_remove(&d->images, ref, force, dimage_busy, d, err) < 0)
		return -err->code;
	daemon_event(d, "image.removed", NULL, json_pack("{s:s,s:s}", "ref", ref, "id", id));
	return 0;
}
