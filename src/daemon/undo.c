/*
 * Undo (docs/storage.md): before the reconciler recreates a declared
 * container whose spec has :snapshot-before-change (the default), the old
 * container is stopped and set aside whole instead of destroyed: its state,
 * root file system and snapshots move to <root>/undo/<name> (the storage
 * driver's ctr_aside). `clbsd undo NAME` removes the container that
 * replaced it, moves the old one back, starts it when it ran, and records
 * the spec hash it turned back from (undone_hash), so the reconciler leaves
 * it alone until the configuration changes again.
 *
 * One copy is kept per name: the next recreate replaces it. Named volumes
 * are not part of it (they are the data both containers share). The image
 * of a set-aside container counts as in use.
 */
#include "daemon.h"
#include "core/config.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * d->asides lives in <root>/undo.json, beside the containers and not in
 * them: a container whose quota is full can still be set aside.
 */
static void save(struct daemon *d)
{
	autofree char *path = xasprintf("%s/undo.json", d->root);
	autofree char *text = json_dumps(d->asides, JSON_INDENT(2) | JSON_SORT_KEYS);
	struct clbsd_err err;
	if (fs_write_atomic(path, text, strlen(text), 0600, &err) < 0)
		log_error("undo", NULL, "%s", err.msg);
}

void undo_init(struct daemon *d)
{
	autofree char *path = xasprintf("%s/undo.json", d->root);
	d->asides = json_load_file(path, 0, NULL);
	if (!json_is_object(d->asides)) {
		json_decref(d->asides);
		d->asides = json_object();
	}
	/* Drop entries whose files are gone (removed by hand, or a crash between). */
	const char *key;
	json_t *v;
	void *tmp;
	bool changed = false;
	json_object_foreach_safe(d->asides, tmp, key, v)
	{
		autofree char *dir = xasprintf("%s/undo/%s/container.json", d->root, key);
		if (!valid_name(key) || !fs_exists(dir)) {
			json_object_del(d->asides, key);
			changed = true;
		}
	}
	if (changed)
		save(d);
}

void undo_release(struct daemon *d)
{
	json_decref(d->asides);
	d->asides = NULL;
}

bool undo_image_in_use(struct daemon *d, const char *image_id)
{
	const char *key;
	json_t *v;
	json_object_foreach(d->asides, key, v)
	{
		if (strcmp(json_str(v, "image_id") ? json_str(v, "image_id") : "", image_id) == 0)
			return true;
	}
	return false;
}

json_t *undo_info(struct daemon *d, const char *name)
{
	json_t *v = json_object_get(d->asides, name);
	return v ? json_incref(v) : NULL;
}

void ctr_set_aside(struct container *c, ctr_done_fn fn, void *arg)
{
	c->undo.aside = true;
	c->undo.aside_running =
		ctr_is_active(c) || c->run.state == CTR_RESTARTING || c->decl.booted;
	ctr_remove(c, true, fn, arg);
}

void undo_recorded(struct container *c)
{
	struct daemon *d = c->d;
	json_object_set_new(d->asides, c->name,
			    json_pack("{s:s,s:s,s:b,s:o}", "image_id", c->image_id, "image",
				      c->image_ref, "running", c->undo.aside_running,
				      "set_aside_at", json_time(time_now_ns())));
	save(d);
}

/* ---- clbsd undo ---- */

struct undo_job {
	struct daemon *d;
	char *name;
	ctr_done_fn fn;
	void *arg;
	bool start;
	struct clbsd_err err;
	int rc;
};

static void job_free(struct undo_job *u)
{
	free(u->name);
	free(u);
}

static void fail(struct undo_job *u, const struct clbsd_err *err)
{
	log_error("container", u->name, "undo: %s", err->msg);
	u->fn(NULL, err, u->arg);
	job_free(u);
}

static void restore_run(void *p)
{
	struct undo_job *u = p;
	struct storage *st = &u->d->storage;
	clbsd_err_init(&u->err);
	u->rc = st->ops->ctr_aside(st, u->name, STORAGE_ASIDE_RESTORE, &u->err);
}

static void started(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct undo_job *u = arg;
	u->fn(c, err, u->arg);
	job_free(u);
}

static void restore_done(void *p)
{
	struct undo_job *u = p;
	struct daemon *d = u->d;
	if (u->rc < 0) {
		fail(u, &u->err);
		return;
	}
	json_object_del(d->asides, u->name);
	save(d);
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (ctr_load_one(d, u->name, &err) < 0) {
		fail(u, &err);
		return;
	}
	struct container *c = ctr_find(d, u->name);
	/* It stopped when it was set aside; what it was doing then is stale. */
	c->run.state = c->run.state == CTR_CREATED ? CTR_CREATED : CTR_EXITED;
	c->run.pid = 0;
	c->run.shim_pid = 0;
	free(c->run.cgroup);
	c->run.cgroup = NULL;
	/* The reconciler leaves it alone until the declared spec changes again. */
	const struct ctr_spec *ct =
		d->decl.conf ? conf_container_find(d->decl.conf, c->name) : NULL;
	if (c->decl.managed && ct) {
		char h[65];
		ctr_spec_hash(ct, h);
		if (strcmp(h, c->decl.spec_hash) != 0)
			memcpy(c->undo.undone_hash, h, sizeof(h));
	}
	ctr_adopt_network(c);
	if (ctr_save_config(c, &err) < 0)
		log_warn("container", c->name, "%s", err.msg);
	daemon_event(d, "container.undone", c->name,
		     json_pack("{s:s,s:s}", "image", c->image_ref, "undone_spec_hash",
			       c->undo.undone_hash));
	log_info("container", c->name,
		 "undone: back to the container set aside at its last "
		 "recreate");
	if (u->start) {
		ctr_start(c, false, started, u);
		return;
	}
	started(c, NULL, u);
}

static void current_removed(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct undo_job *u = arg;
	if (err) {
		fail(u, err);
		return;
	}
	work_submit(u->d, restore_run, restore_done, u);
}

int ctr_undo(struct daemon *d, const char *name, ctr_done_fn fn, void *arg, struct clbsd_err *err)
{
	json_t *a = json_object_get(d->asides, name);
	if (!a)
		return clbsd_err_setmsg(
			err, CLBSD_E_NOTFOUND, ENOENT,
			"container %s has nothing to undo: no earlier container was "
			"set aside (that happens when the configuration recreates "
			"it with :snapshot-before-change t)",
			name);
	struct container *c = ctr_find(d, name);
	if (c && (c->run.removing || c->storage.busy))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"container %s is busy (being removed, or its files are "
					"changing); try again when that is done",
					name);
	struct undo_job *u = xcalloc(1, sizeof(*u));
	u->d = d;
	u->name = xstrdup(name);
	u->fn = fn;
	u->arg = arg;
	u->start = json_bool(a, "running", false);
	if (c)
		ctr_remove(c, true, current_removed, u);
	else
		work_submit(d, restore_run, restore_done, u);
	return 0;
}
