#include "image.h"
#include "util/hash.h"
#include "util/json.h"
#include "sys/sys.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void image_config_release(struct image_config *cfg)
{
	strv_free(cfg->entrypoint);
	strv_free(cfg->cmd);
	strv_free(cfg->env);
	free(cfg->workdir);
	free(cfg->user);
	strv_free(cfg->labels);
	strv_free(cfg->exposed);
	strv_free(cfg->volumes);
	if (cfg->health)
		strv_free(cfg->health->test);
	free(cfg->health);
	free(cfg->osrelease);
	free(cfg->auditcfg);
	free(cfg->rootpivot);
	memset(cfg, 0, sizeof(*cfg));
}

void image_config_copy_build(struct image_config *dst, const struct image_config *src)
{
	dst->labels = src->labels ? strv_dup(src->labels) : NULL;
	dst->exposed = src->exposed ? strv_dup(src->exposed) : NULL;
	dst->volumes = src->volumes ? strv_dup(src->volumes) : NULL;
	dst->health = NULL;
	if (src->health) {
		dst->health = xmalloc(sizeof(*dst->health));
		*dst->health = *src->health;
		dst->health->test = strv_dup(src->health->test);
	}
	dst->osrelease = src->osrelease ? xstrdup(src->osrelease) : NULL;
	dst->auditcfg = src->auditcfg ? xstrdup(src->auditcfg) : NULL;
	dst->rootpivot = src->rootpivot ? xstrdup(src->rootpivot) : NULL;
}

/* The fields of a Cblockfile build, only those that are set. */
static void build_fields_to_json(json_t *j, const struct image_config *cfg)
{
	if (cfg->labels) {
		json_t *o = json_object();
		for (size_t i = 0; cfg->labels[i]; i++) {
			const char *eq = strchr(cfg->labels[i], '=');
			autofree char *k =
				xstrndup(cfg->labels[i], eq ? (size_t)(eq - cfg->labels[i])
							    : strlen(cfg->labels[i]));
			json_object_set_new(o, k, json_string(eq ? eq + 1 : ""));
		}
		json_object_set_new(j, "labels", o);
	}
	if (cfg->exposed)
		json_object_set_new(j, "exposed", json_strv(cfg->exposed));
	if (cfg->volumes)
		json_object_set_new(j, "volumes", json_strv(cfg->volumes));
	if (cfg->health)
		json_object_set_new(
			j, "healthcheck",
			json_pack("{s:o,s:I,s:I,s:I,s:i}", "test", json_strv(cfg->health->test),
				  "interval_ns", (json_int_t)cfg->health->interval_ns, "timeout_ns",
				  (json_int_t)cfg->health->timeout_ns, "start_period_ns",
				  (json_int_t)cfg->health->start_period_ns, "retries",
				  cfg->health->retries));
	if (cfg->osrelease)
		json_object_set_new(j, "osrelease", json_string(cfg->osrelease));
	if (cfg->auditcfg)
		json_object_set_new(j, "auditcfg", json_string(cfg->auditcfg));
	if (cfg->rootpivot)
		json_object_set_new(j, "rootpivot", json_string(cfg->rootpivot));
}

json_t *image_config_to_json(const struct image_config *cfg)
{
	json_t *j =
		json_pack("{s:o,s:o,s:o,s:s,s:s}", "entrypoint", json_strv(cfg->entrypoint), "cmd",
			  json_strv(cfg->cmd), "env", json_strv(cfg->env), "workdir",
			  cfg->workdir ? cfg->workdir : "/", "user", cfg->user ? cfg->user : "");
	build_fields_to_json(j, cfg);
	return j;
}

static int opt_strv(json_t *j, const char *key, char ***out, struct clbsd_err *err)
{
	json_t *v = json_object_get(j, key);
	if (!v || json_is_null(v))
		return 0;
	char **s = json_to_strv(v);
	if (!s)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image config: \"%s\" must be an array of strings", key);
	*out = s;
	return 0;
}

static int opt_str(json_t *j, const char *key, char **out, struct clbsd_err *err)
{
	json_t *v = json_object_get(j, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image config: \"%s\" must be a string", key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int build_fields_from_json(json_t *j, struct image_config *c, struct clbsd_err *err)
{
	json_t *labels = json_object_get(j, "labels");
	if (labels && !json_is_null(labels)) {
		if (!json_is_object(labels))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"image config: \"labels\" must be an object of "
						"strings");
		struct strv v = STRV_INIT;
		const char *k;
		json_t *val;
		json_object_foreach(labels, k, val)
		{
			if (!json_is_string(val) || !*k || strchr(k, '=')) {
				strv_release(&v);
				return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
							"image config: label \"%s\" must be a "
							"string under a name without '='",
							k);
			}
			strv_push_owned(&v, xasprintf("%s=%s", k, json_string_value(val)));
		}
		c->labels = v.v ? v.v : xcalloc(1, sizeof(char *));
	}
	if (opt_strv(j, "exposed", &c->exposed, err) < 0 ||
	    opt_strv(j, "volumes", &c->volumes, err) < 0 ||
	    opt_str(j, "osrelease", &c->osrelease, err) < 0 ||
	    opt_str(j, "auditcfg", &c->auditcfg, err) < 0 ||
	    opt_str(j, "rootpivot", &c->rootpivot, err) < 0)
		return -err->code;
	json_t *h = json_object_get(j, "healthcheck");
	if (h && !json_is_null(h)) {
		char **test = json_to_strv(json_object_get(h, "test"));
		if (!json_is_object(h) || !test) {
			strv_free(test);
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"image config: \"healthcheck\" must be an object "
						"with a \"test\" array of strings");
		}
		c->health = xcalloc(1, sizeof(*c->health));
		c->health->test = test;
		c->health->interval_ns = json_int(h, "interval_ns", 0);
		c->health->timeout_ns = json_int(h, "timeout_ns", 0);
		c->health->start_period_ns = json_int(h, "start_period_ns", 0);
		int64_t r = json_int(h, "retries", 0);
		c->health->retries = r < 0 || r > 1000000 ? 0 : (int)r;
		if (c->health->interval_ns < 0 || c->health->timeout_ns < 0 ||
		    c->health->start_period_ns < 0)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"image config: healthcheck durations must not be "
						"negative");
	}
	return 0;
}

static int strv_member(json_t *j, const char *key, char ***out, struct clbsd_err *err)
{
	json_t *v = json_object_get(j, key);
	if (!v || json_is_null(v)) {
		*out = xcalloc(1, sizeof(char *));
		return 0;
	}
	char **s = json_to_strv(v);
	if (!s)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image config: \"%s\" must be an array of strings", key);
	*out = s;
	return 0;
}

int image_config_from_json(json_t *j, struct image_config *cfg, struct clbsd_err *err)
{
	struct image_config c = {0};
	if (!json_is_object(j))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image config must be a JSON object");
	if (strv_member(j, "entrypoint", &c.entrypoint, err) < 0 ||
	    strv_member(j, "cmd", &c.cmd, err) < 0 || strv_member(j, "env", &c.env, err) < 0) {
		image_config_release(&c);
		return -err->code;
	}
	const char *wd = json_str(j, "workdir");
	if (wd && *wd && !fs_path_is_clean_abs(wd)) {
		image_config_release(&c);
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"image config: workdir \"%s\" must be a clean absolute path", wd);
	}
	c.workdir = xstrdup(wd && *wd ? wd : "/");
	const char *user = json_str(j, "user");
	c.user = xstrdup(user ? user : "");
	if (build_fields_from_json(j, &c, err) < 0) {
		image_config_release(&c);
		return -err->code;
	}
	*cfg = c;
	return 0;
}

char *image_ref_normalise(const char *ref)
{
	const char *colon = strrchr(ref, ':');
	const char *slash = strrchr(ref, '/');
	if (colon && (!slash || colon > slash))
		return xstrdup(ref);
	return xasprintf("%s:latest", ref);
}

static void free_image(struct image *img)
{
	image_config_release(&img->config);
	free(img->dir);
	free(img->source);
	free(img);
}

static int load_image(struct image_store *st, const char *id, struct clbsd_err *err)
{
	autofree char *dir = xasprintf("%s/%s", st->dir, id);
	autofree char *path = xasprintf("%s/config.json", dir);
	autofree char *text = NULL;
	if (fs_read_file(path, &text, NULL, err) < 0)
		return -err->code;
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL, "%s:%d: %s", path, je.line,
					je.text);
	struct image *img = xcalloc(1, sizeof(*img));
	int r = image_config_from_json(json_object_get(j, "config"), &img->config, err);
	if (r < 0) {
		json_decref(j);
		free(img);
		return clbsd_err_prefix(err, "%s", path);
	}
	memcpy(img->id, id, 64); /* load_image() is only called with is_id() names */
	img->id[64] = '\0';
	img->created_ns = json_time_get(j, "created");
	img->size = json_int(j, "size", 0);
	img->dir = steal_ptr(&dir);
	json_t *oci = json_object_get(j, "oci");
	const char *dg = json_str(oci, "digest"), *ld = json_str(oci, "layer_diff_id");
	const char *lg = json_str(oci, "layer_digest");
	snprintf(img->digest, sizeof(img->digest), "%s", dg ? dg : "");
	snprintf(img->layer_diff_id, sizeof(img->layer_diff_id), "%s", ld ? ld : "");
	snprintf(img->layer_digest, sizeof(img->layer_digest), "%s", lg ? lg : "");
	img->layer_size = json_int(oci, "layer_size", 0);
	const char *source = json_str(oci, "source");
	img->source = source ? xstrdup(source) : NULL;
	json_decref(j);
	st->imgs = xrealloc(st->imgs, (st->n + 1) * sizeof(*st->imgs));
	st->imgs[st->n++] = img;
	return 0;
}

static bool is_id(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static int save_repos(struct image_store *st, struct clbsd_err *err)
{
	autofree char *path = xasprintf("%s/repositories.json", st->dir);
	autofree char *text = json_dumps(st->repos, JSON_INDENT(2) | JSON_SORT_KEYS);
	return fs_write_atomic(path, text, strlen(text), 0644, err);
}

int image_store_open(const char *root, struct image_store *st, struct clbsd_err *err)
{
	memset(st, 0, sizeof(*st));
	st->dir = xasprintf("%s/images", root);
	if (fs_mkdir_p(st->dir, 0755, err) < 0)
		return clbsd_err_prefix(err, "image store");
	autofree char *rpath = xasprintf("%s/repositories.json", st->dir);
	autofree char *text = NULL;
	if (fs_read_file(rpath, &text, NULL, err) == 0) {
		json_error_t je;
		st->repos = json_loads(text, 0, &je);
		if (!json_is_object(st->repos)) {
			json_decref(st->repos);
			st->repos = NULL;
			return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
						"%s:%d: %s (restore it from a backup or remove "
						"it to forget image names)",
						rpath, je.line, je.text);
		}
	} else if (err->code == ENOENT) {
		st->repos = json_object();
	} else {
		return -err->code;
	}
	DIR *d = opendir(st->dir);
	if (!d)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", st->dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, ".staging-", 9) == 0) {
			/* Left by a build or import that did not finish. */
			autofree char *p = xasprintf("%s/%s", st->dir, de->d_name);
			struct clbsd_err ignore;
			fs_rm_rf(p, &ignore);
			continue;
		}
		if (!is_id(de->d_name))
			continue;
		struct clbsd_err e2;
		if (load_image(st, de->d_name, &e2) < 0)
			log_warn("image", NULL, "skipping image %s: %s", de->d_name, e2.msg);
	}
	closedir(d);
	/* Drop names that point at images that are gone. */
	const char *key;
	json_t *val;
	void *tmp;
	bool changed = false;
	json_object_foreach_safe(st->repos, tmp, key, val)
	{
		if (!json_is_string(val) || !image_by_id(st, json_string_value(val))) {
			json_object_del(st->repos, key);
			changed = true;
		}
	}
	if (changed && save_repos(st, err) < 0)
		return -err->code;
	return 0;
}

void image_store_release(struct image_store *st)
{
	for (size_t i = 0; i < st->n; i++)
		free_image(st->imgs[i]);
	free(st->imgs);
	json_decref(st->repos);
	free(st->dir);
	memset(st, 0, sizeof(*st));
}

struct image *image_by_id(const struct image_store *st, const char *id)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->imgs[i]->id, id) == 0)
			return st->imgs[i];
	return NULL;
}

struct image *image_lookup(const struct image_store *st, const char *ref)
{
	if (!ref || !*ref)
		return NULL;
	autofree char *norm = image_ref_normalise(ref);
	const char *id = json_str(st->repos, norm);
	if (id)
		return image_by_id(st, id);
	size_t n = strlen(ref);
	if (n < 4 || n > 64)
		return NULL;
	struct image *found = NULL;
	for (size_t i = 0; i < st->n; i++) {
		if (strncmp(st->imgs[i]->id, ref, n) == 0) {
			if (found)
				return NULL; /* ambiguous prefix */
			found = st->imgs[i];
		}
	}
	return found;
}

char **image_names(const struct image_store *st, const struct image *img)
{
	struct strv v = STRV_INIT;
	const char *key;
	json_t *val;
	json_object_foreach(st->repos, key, val)
	{
		if (json_is_string(val) && strcmp(json_string_value(val), img->id) == 0)
			strv_push(&v, key);
	}
	if (!v.v)
		return xcalloc(1, sizeof(char *));
	return v.v;
}

json_t *image_to_json(const struct image_store *st, const struct image *img)
{
	char **names = image_names(st, img);
	json_t *j = json_pack("{s:s,s:o,s:o,s:I,s:o}", "id", img->id, "names", json_strv(names),
			      "created", json_time(img->created_ns), "size", (json_int_t)img->size,
			      "config", image_config_to_json(&img->config));
	strv_free(names);
	json_object_set_new(j, "digest", *img->digest ? json_string(img->digest) : json_null());
	if (img->source)
		json_object_set_new(j, "source", json_string(img->source));
	return j;
}

int image_staging_new(const struct image_store *st, char **dir, struct clbsd_err *err)
{
	char rnd[17];
	random_hex(rnd, 8);
	autofree char *d = xasprintf("%s/.staging-%s", st->dir, rnd);
	if (mkdir(d, 0700) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", d);
	*dir = steal_ptr(&d);
	return 0;
}

int image_stage_import(const char *staging, const char *src, struct image_config *cfg,
		       struct clbsd_err *err)
{
	if (!fs_path_is_clean_abs(src))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"import path \"%s\" must be a clean absolute path", src);
	if (!fs_is_dir(src))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOTDIR,
					"import path %s is not a directory", src);
	autofree char *sub = xasprintf("%s/rootfs", src);
	autofree char *cfgpath = xasprintf("%s/config.json", src);
	const char *tree = src;
	struct image_config c = {0};
	if (fs_is_dir(sub) && fs_exists(cfgpath)) {
		tree = sub;
		autofree char *text = NULL;
		if (fs_read_file(cfgpath, &text, NULL, err) < 0)
			return -err->code;
		json_error_t je;
		json_t *j = json_loads(text, 0, &je);
		if (!j)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s:%d:%d: %s",
						cfgpath, je.line, je.column, je.text);
		json_t *inner = json_object_get(j, "config");
		int r = image_config_from_json(inner ? inner : j, &c, err);
		json_decref(j);
		if (r < 0)
			return clbsd_err_prefix(err, "%s", cfgpath);
	} else {
		if (fs_is_dir(sub) && !fs_exists(cfgpath))
			tree = sub;
		c.entrypoint = xcalloc(1, sizeof(char *));
		c.cmd = xcalloc(2, sizeof(char *));
		c.cmd[0] = xstrdup("/bin/sh");
		c.env = xcalloc(2, sizeof(char *));
		c.env[0] = xstrdup(
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
		c.workdir = xstrdup("/");
		c.user = xstrdup("");
	}
	autofree char *dst = xasprintf("%s/rootfs", staging);
	int r = sys_copy_tree(tree, dst, err);
	if (r < 0) {
		image_config_release(&c);
		return clbsd_err_prefix(err, "copy %s into the image store", tree);
	}
	*cfg = c;
	return 0;
}

static int write_image_config(const char *dir, const char *id, int64_t created, int64_t size,
			      const struct image_config *cfg, struct clbsd_err *err)
{
	json_t *j = json_pack("{s:s,s:o,s:I,s:o}", "id", id, "created", json_time(created), "size",
			      (json_int_t)size, "config", image_config_to_json(cfg));
	autofree char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	autofree char *path = xasprintf("%s/config.json", dir);
	return fs_write_atomic(path, text, strlen(text), 0644, err);
}

/*
 * Rewrite an image's config.json with `id` and `oci` set, keeping every
 * other key as it is (other code may store more there).
 */
static int update_config(const struct image *img, const char *dir, const char *id, json_t *oci,
			 struct clbsd_err *err)
{
	autofree char *path = xasprintf("%s/config.json", dir);
	autofree char *old = NULL;
	json_t *j = NULL;
	if (fs_read_file(path, &old, NULL, err) == 0)
		j = json_loads(old, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_pack("{s:o,s:I,s:o}", "created", json_time(img->created_ns), "size",
			      (json_int_t)img->size, "config", image_config_to_json(&img->config));
	}
	json_object_set_new(j, "id", json_string(id));
	if (oci)
		json_object_set(j, "oci", oci);
	autofree char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (fs_write_atomic(path, text, strlen(text), 0644, err) < 0)
		return clbsd_err_prefix(err, "image %.12s", img->id);
	return 0;
}

int image_set_digest(struct image *img, const char *digest, const char *layer_diff_id,
		     const char *layer_digest, int64_t layer_size, const char *source,
		     struct clbsd_err *err)
{
	json_t *oci =
		json_pack("{s:s,s:s,s:s,s:I}", "digest", digest, "layer_diff_id", layer_diff_id,
			  "layer_digest", layer_digest, "layer_size", (json_int_t)layer_size);
	const char *src = source ? source : img->source;
	if (src)
		json_object_set_new(oci, "source", json_string(src));
	int r = update_config(img, img->dir, img->id, oci, err);
	json_decref(oci);
	if (r < 0)
		return r;
	snprintf(img->digest, sizeof(img->digest), "%s", digest);
	snprintf(img->layer_diff_id, sizeof(img->layer_diff_id), "%s", layer_diff_id);
	snprintf(img->layer_digest, sizeof(img->layer_digest), "%s", layer_digest);
	img->layer_size = layer_size;
	if (source) {
		free(img->source);
		img->source = xstrdup(source);
	}
	return 0;
}

int image_set_source(struct image *img, const char *source, struct clbsd_err *err)
{
	json_t *o = json_pack("{s:s}", "source", source);
	int r = update_config(img, img->dir, img->id, o, err);
	json_decref(o);
	if (r < 0)
		return r;
	free(img->source);
	img->source = xstrdup(source);
	return 0;
}

int image_rekey(struct image_store *st, struct image *img, const char *id, struct clbsd_err *err)
{
	if (strcmp(img->id, id) == 0)
		return 0;
	if (!is_id(id))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "\"%s\" is not an image id",
					id);
	if (image_by_id(st, id))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"an image with id %.12s exists already", id);
	autofree char *dir = xasprintf("%s/%s", st->dir, id);
	if (rename(img->dir, dir) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "move %s to %s", img->dir, dir);
	const char *key;
	json_t *val;
	json_object_foreach(st->repos, key, val)
	{
		if (json_is_string(val) && strcmp(json_string_value(val), img->id) == 0)
			json_string_set(val, id);
	}
	if (save_repos(st, err) < 0) {
		json_object_foreach(st->repos, key, val)
		{
			if (json_is_string(val) && strcmp(json_string_value(val), id) == 0)
				json_string_set(val, img->id);
		}
		if (rename(dir, img->dir) < 0)
			log_warn("image", NULL, "move %s back to %s: %s", dir, img->dir,
				 strerror(errno));
		return clbsd_err_prefix(err, "rename image %.12s", img->id);
	}
	struct clbsd_err e2;
	if (update_config(img, dir, id, NULL, &e2) < 0)
		log_warn("image", NULL, "%s (the id in it is informational)", e2.msg);
	memcpy(img->id, id, sizeof(img->id));
	free(img->dir);
	img->dir = steal_ptr(&dir);
	return 0;
}

static void drop_image(struct image_store *st, struct image *img)
{
	struct clbsd_err err;
	for (size_t i = 0; i < st->n; i++) {
		if (st->imgs[i] == img) {
			st->imgs[i] = st->imgs[--st->n];
			break;
		}
	}
	if (fs_rm_rf(img->dir, &err) < 0)
		log_warn("image", NULL, "remove %s: %s", img->dir, err.msg);
	free_image(img);
}

static bool has_names(const struct image_store *st, const char *id)
{
	const char *key;
	json_t *val;
	json_object_foreach(st->repos, key, val)
	{
		if (json_is_string(val) && strcmp(json_string_value(val), id) == 0)
			return true;
	}
	return false;
}

int image_commit(struct image_store *st, const char *staging, const struct image_config *cfg,
		 const char *name, bool (*in_use)(const char *id, void *ctx), void *ctx,
		 struct image **out, struct clbsd_err *err)
{
	return image_commit_at(st, staging, cfg, name, in_use, ctx, 0, out, err);
}

int image_commit_at(struct image_store *st, const char *staging, const struct image_config *cfg,
		    const char *name, bool (*in_use)(const char *id, void *ctx), void *ctx,
		    int64_t created_ns, struct image **out, struct clbsd_err *err)
{
	struct clbsd_err ignore;
	autofree char *norm = image_ref_normalise(name);
	int64_t created = created_ns > 0 ? created_ns : time_now_ns();
	autofree char *rootfs = xasprintf("%s/rootfs", staging);
	int64_t size = fs_du(rootfs);
	/* Like an OCI image id: the digest of the image's own description. */
	json_t *desc = json_pack("{s:o,s:I,s:o}", "created", json_time(created), "size",
				 (json_int_t)size, "config", image_config_to_json(cfg));
	autofree char *canon = json_dumps(desc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(desc);
	char id[65];
	hash_sha256_hex(canon, strlen(canon), id);
	if (image_by_id(st, id)) {
		fs_rm_rf(staging, &ignore);
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"store image %s: an identical image %.12s exists", norm,
					id);
	}
	autofree char *dir = xasprintf("%s/%s", st->dir, id);
	int r = write_image_config(staging, id, created, size, cfg, err);
	if (r == 0 && rename(staging, dir) < 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "move %s to %s", staging, dir);
	if (r < 0) {
		fs_rm_rf(staging, &ignore);
		return clbsd_err_prefix(err, "store image %s", norm);
	}
	struct image *img = xcalloc(1, sizeof(*img));
	memcpy(img->id, id, sizeof(id));
	img->created_ns = created;
	img->size = size;
	img->dir = steal_ptr(&dir);
	struct image_config *c = &img->config;
	c->entrypoint = strv_dup(cfg->entrypoint);
	c->cmd = strv_dup(cfg->cmd);
	c->env = strv_dup(cfg->env);
	c->workdir = xstrdup(cfg->workdir ? cfg->workdir : "/");
	c->user = xstrdup(cfg->user ? cfg->user : "");
	image_config_copy_build(c, cfg);
	st->imgs = xrealloc(st->imgs, (st->n + 1) * sizeof(*st->imgs));
	st->imgs[st->n++] = img;

	const char *old = json_str(st->repos, norm);
	autofree char *old_id = old ? xstrdup(old) : NULL;
	json_object_set_new(st->repos, norm, json_string(id));
	if (save_repos(st, err) < 0) {
		if (old_id)
			json_object_set_new(st->repos, norm, json_string(old_id));
		else
			json_object_del(st->repos, norm);
		drop_image(st, img);
		return clbsd_err_prefix(err, "store image %s", norm);
	}
	if (old_id && !has_names(st, old_id) && !(in_use && in_use(old_id, ctx))) {
		struct image *prev = image_by_id(st, old_id);
		if (prev)
			drop_image(st, prev);
	}
	*out = img;
	return 0;
}

int image_tag(struct image_store *st, const char *ref, const char *name,
	      bool (*in_use)(const char *id, void *ctx), void *ctx, struct clbsd_err *err)
{
	struct image *img = image_lookup(st, ref);
	if (!img)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no image \"%s\" (clbsd images lists them)", ref);
	autofree char *norm = image_ref_normalise(name);
	const char *old = json_str(st->repos, norm);
	autofree char *old_id = old ? xstrdup(old) : NULL;
	if (old_id && strcmp(old_id, img->id) == 0)
		return 0;
	json_object_set_new(st->repos, norm, json_string(img->id));
	if (save_repos(st, err) < 0) {
		if (old_id)
			json_object_set_new(st->repos, norm, json_string(old_id));
		else
			json_object_del(st->repos, norm);
		return clbsd_err_prefix(err, "tag %s as %s", ref, norm);
	}
	if (old_id && !has_names(st, old_id) && !(in_use && in_use(old_id, ctx))) {
		struct image *prev = image_by_id(st, old_id);
		if (prev)
			drop_image(st, prev);
	}
	return 0;
}

int image_gc(struct image_store *st, bool (*in_use)(const char *id, void *ctx), void *ctx)
{
	int n = 0;
	for (size_t i = 0; i < st->n;) {
		struct image *img = st->imgs[i];
		if (!has_names(st, img->id) && !(in_use && in_use(img->id, ctx))) {
			log_info("image", NULL, "removing unnamed, unused image %.12s", img->id);
			drop_image(st, img); /* moves the last image into slot i */
			n++;
			continue;
		}
		i++;
	}
	return n;
}

int image_remove(struct image_store *st, const char *ref, bool force,
		 bool (*in_use)(const char *id, void *ctx), void *ctx, struct clbsd_err *err)
{
	struct image *img = image_lookup(st, ref);
	if (!img)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no image \"%s\" (clbsd images lists them)", ref);
	autofree char *norm = image_ref_normalise(ref);
	const char *named = json_str(st->repos, norm);
	bool by_name = named && strcmp(named, img->id) == 0;
	/* Removing one of several names never touches the tree. */
	if (by_name) {
		json_t *saved = json_incref(json_object_get(st->repos, norm));
		json_object_del(st->repos, norm);
		if (!has_names(st, img->id) && !force && in_use && in_use(img->id, ctx)) {
			json_object_set_new(st->repos, norm, saved);
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						"image %s is used by a container; remove the "
						"container first or use --force",
						ref);
		}
		json_decref(saved);
		if (save_repos(st, err) < 0)
			return clbsd_err_prefix(err, "remove image %s", ref);
		if (!has_names(st, img->id) && !(in_use && in_use(img->id, ctx)))
			drop_image(st, img);
		return 0;
	}
	if (!force && in_use && in_use(img->id, ctx))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"image %s is used by a container; remove the container "
					"first or use --force",
					ref);
	const char *key;
	json_t *val;
	void *tmp;
	json_object_foreach_safe(st->repos, tmp, key, val)
	{
		if (json_is_string(val) && strcmp(json_string_value(val), img->id) == 0)
			json_object_del(st->repos, key);
	}
	if (save_repos(st, err) < 0)
		return clbsd_err_prefix(err, "remove image %s", ref);
	if (!(in_use && in_use(img->id, ctx)))
		drop_image(st, img);
	return 0;
}
