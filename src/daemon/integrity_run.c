/*
 * A native container's file integrity (src/integrity/ does the manifests):
 *
 * - At create, the container's manifest is its image's (recorded when the
 *   image was built, imported or pulled): at that moment its root file
 *   system is the image's tree (an overlay with an empty upper layer, a
 *   copy, a zfs clone). The image's file is hard-linked (copied across
 *   datasets) to <ctr>/integrity.mtree; an image made before manifests
 *   existed gets its container's tree walked on a worker instead.
 * - `clbsd verify` (ctr_integrity_check) walks the container's files as
 *   the host sees them (an overlay's layers through a read-only detached
 *   overlay mount, a copy or clone directly), running or not, on a worker,
 *   and compares that manifest with the recorded one. --update writes the
 *   new one atomically in its place.
 * - :integrity (:every D) runs the same check on the hooks' timers
 *   (hook_run.c); a drift is an integrity.drift event, which runs
 *   :on-drift like any hook.
 *
 * One check at a time per container (c->integrity.busy): another is
 * refused (CONFLICT) and a scheduled one skipped.
 */
#include "core/config.h"
#include "daemon.h"
#include "integrity/integrity.h"
#include "sys/sys.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST "integrity.mtree"
/* Drift items a report lists (the counts are always whole). */
#define REPORT_MAX 1000
/* The largest manifest read back: ~150 bytes an entry, a million entries. */
#define MANIFEST_MAX (256u << 20)

/* Paths clbsd itself puts into a running container's tree (mount points, bound files). */
static const char *const runtime_paths[] = {"/dev", "/proc", "/sys", "/etc/hosts",
					    "/etc/resolv.conf"};

struct ijob {
	struct daemon *d;
	char *name;
	char *dir;	  /* the container's directory */
	char *img_rootfs; /* the image's tree (the storage driver's describe) */
	char **excludes;  /* NULL-terminated */
	bool update;	  /* write the current manifest in place (also: none yet) */
	bool compare;	  /* compare with the recorded one */
	bool scheduled;	  /* from :integrity :every */
	ctr_integrity_fn fn;
	void *arg;
	/* results */
	int rc;
	struct clbsd_err err;
	json_t *report;
};

static void ijob_free(struct ijob *j)
{
	free(j->name);
	free(j->dir);
	free(j->img_rootfs);
	strv_free(j->excludes);
	json_decref(j->report);
	free(j);
}

char **ctr_integrity_excludes(struct container *c)
{
	struct strv v = STRV_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(runtime_paths); i++)
		strv_push(&v, runtime_paths[i]);
	for (size_t i = 0; i < c->cfg.n_volumes; i++)
		strv_push(&v, c->cfg.volumes[i].dest);
	for (size_t i = 0; i < c->cfg.n_devices; i++)
		strv_push(&v, c->cfg.devices[i].path);
	const struct ctr_spec *s = c->decl.managed && c->d->decl.conf
					   ? conf_container_find(c->d->decl.conf, c->name)
					   : NULL;
	for (size_t i = 0; s && s->integrity_exclude && s->integrity_exclude[i]; i++)
		strv_push(&v, s->integrity_exclude[i]);
	return v.v;
}

/* On the worker: the manifest of the container's files now. */
static int record_now(struct ijob *j, char **text, size_t *len, size_t *files)
{
	struct storage *st = &j->d->storage;
	struct rt_rootfs rf = {0};
	if (st->ops->describe(st, j->img_rootfs, j->dir, &rf, &j->err) < 0)
		return -j->err.code;
	int r;
	if (rf.upper) {
		const char *layers[] = {rf.upper, rf.lower};
		int fd = sys_layers_view(layers, 2, &j->err);
		r = fd < 0 ? fd : mtree_record_fd(fd, text, len, files, &j->err);
		if (fd >= 0)
			close(fd);
	} else {
		r = mtree_record_dir(rf.lower ? rf.lower : rf.target, text, len, files, &j->err);
	}
	rt_rootfs_release(&rf);
	return r;
}

static void job_run(void *arg)
{
	struct ijob *j = arg;
	clbsd_err_init(&j->err);
	autofree char *path = xasprintf("%s/%s", j->dir, MANIFEST);
	autofree char *now = NULL;
	size_t len = 0, files = 0;
	j->rc = record_now(j, &now, &len, &files);
	if (j->rc < 0)
		return;
	autofree char *was = NULL;
	size_t was_len = 0;
	bool have = false;
	if (j->compare) {
		struct clbsd_err e2;
		int r = fs_read_file(path, &was, &was_len, &e2);
		if (r == 0 && was_len > MANIFEST_MAX)
			r = clbsd_err_setmsg(&e2, CLBSD_E_INVALID, EFBIG, "%s is too large", path);
		if (r == 0) {
			have = true;
		} else if (e2.kind != CLBSD_E_NOTFOUND || !j->update) {
			j->err = e2;
			if (e2.kind == CLBSD_E_NOTFOUND)
				clbsd_err_setmsg(&j->err, CLBSD_E_NOTFOUND, ENOENT,
						 "container %s has no manifest (it was made before "
						 "clbsd recorded them); `clbsd verify --update %s` "
						 "records its files as they are now",
						 j->name, j->name);
			j->rc = -j->err.code;
			return;
		}
	}
	json_t *rep;
	struct mtree_set a = {0}, b = {0};
	if (have && mtree_parse(was, was_len, &a, &j->err) < 0) {
		/* Not the request's fault: the recorded file is damaged. --update replaces it. */
		struct clbsd_err e2 = j->err;
		clbsd_err_setmsg(&j->err, CLBSD_E_CONFLICT, EBADMSG,
				 "%s: %s; `clbsd verify --update %s` records a new one from the "
				 "files as they are now",
				 path, e2.msg, j->name);
		if (!j->update) {
			j->rc = -j->err.code;
			return;
		}
		log_warn("integrity", j->name, "%s", j->err.msg);
		have = false;
	}
	if (have) {
		j->rc = mtree_parse(now, len, &b, &j->err);
		if (j->rc < 0) {
			mtree_set_release(&a);
			return;
		}
		struct drift *dv;
		size_t n = integrity_diff(&a, &b, j->excludes, &dv);
		rep = integrity_report_json(dv, n, REPORT_MAX);
		free(dv);
		mtree_set_release(&a);
		mtree_set_release(&b);
	} else {
		rep = json_pack("{s:b,s:i,s:i,s:i,s:[],s:b}", "clean", 1, "added", 0, "removed", 0,
				"changed", 0, "drift", "truncated", 0);
	}
	json_object_set_new(rep, "files", json_integer((json_int_t)files));
	json_object_set_new(rep, "manifest", json_string(path));
	json_t *ex = json_array();
	for (size_t i = 0; j->excludes && j->excludes[i]; i++)
		json_array_append_new(ex, json_string(j->excludes[i]));
	json_object_set_new(rep, "excluded", ex);
	json_object_set_new(rep, "updated", json_boolean(j->update));
	j->report = rep;
	if (j->update) {
		j->rc = fs_write_atomic(path, now, len, 0600, &j->err);
		if (j->rc < 0)
			clbsd_err_prefix(&j->err, "container %s: write the manifest", j->name);
	}
}

static void job_done(void *arg)
{
	struct ijob *j = arg;
	struct container *c = ctr_find(j->d, j->name);
	if (c && strcmp(c->dir, j->dir) == 0)
		c->integrity.busy = false;
	if (j->rc < 0) {
		log_warn("integrity", j->name, "%s", j->err.msg);
		if (j->fn)
			j->fn(NULL, &j->err, j->arg);
		ijob_free(j);
		return;
	}
	json_t *r = j->report;
	json_int_t added = json_int(r, "added", 0), removed = json_int(r, "removed", 0),
		   changed = json_int(r, "changed", 0);
	if (j->compare) {
		json_int_t total = added + removed + changed;
		const char *src = j->scheduled ? "schedule" : "verify";
		if (total)
			daemon_event(j->d, "integrity.drift", j->name,
				     json_pack("{s:I,s:I,s:I,s:I,s:s,s:b}", "count", total, "added",
					       added, "removed", removed, "changed", changed,
					       "source", src, "updated", j->update));
		else
			daemon_event(j->d, "integrity.ok", j->name,
				     json_pack("{s:I,s:s}", "files", json_int(r, "files", 0),
					       "source", src));
		if (total && !j->update)
			log_warn("integrity", j->name,
				 "files differ from the manifest: %lld added, %lld removed, %lld "
				 "changed",
				 (long long)added, (long long)removed, (long long)changed);
	}
	if (j->fn)
		j->fn(r, NULL, j->arg);
	ijob_free(j);
}

/* A job for c, its paths taken on the loop; NULL with err when c cannot be checked. */
static struct ijob *job_new(struct container *c, struct clbsd_err *err)
{
	if (c->docker.on) {
		clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
				 "container %s: a docker container's files are dockerd's; "
				 "`docker diff` lists what changed in them (docs/integrity.md)",
				 c->name);
		return NULL;
	}
	if (c->integrity.busy) {
		clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
				 "container %s: a check of its files runs already; try again "
				 "when it ends",
				 c->name);
		return NULL;
	}
	struct image *img = image_by_id(&c->d->images, c->image_id);
	struct ijob *j = xcalloc(1, sizeof(*j));
	j->d = c->d;
	j->name = xstrdup(c->name);
	j->dir = xstrdup(c->dir);
	j->img_rootfs = img ? xasprintf("%s/rootfs", img->dir)
			    : xasprintf("%s/images/%s/rootfs", c->d->root, c->image_id);
	j->excludes = ctr_integrity_excludes(c);
	return j;
}

int ctr_integrity_check(struct container *c, bool update, bool scheduled, ctr_integrity_fn fn,
			void *arg, struct clbsd_err *err)
{
	struct ijob *j = job_new(c, err);
	if (!j)
		return -err->code;
	j->update = update;
	j->compare = true;
	j->scheduled = scheduled;
	j->fn = fn;
	j->arg = arg;
	c->integrity.busy = true;
	work_submit(c->d, job_run, job_done, j);
	return 0;
}

void ctr_integrity_created(struct container *c, const struct image *img)
{
	if (c->docker.on)
		return;
	autofree char *src = xasprintf("%s/%s", img->dir, MANIFEST);
	autofree char *dst = xasprintf("%s/%s", c->dir, MANIFEST);
	/*
	 * O(1) on the loop: the image's manifest is written once and only ever
	 * replaced by a rename, so sharing its inode is safe. Across datasets
	 * (zfs) a copy; a manifest is ~150 bytes an entry.
	 */
	unlink(dst); /* a spare directory's leftover, from a check that ended after a removal */
	if (link(src, dst) == 0)
		return;
	if (errno == EXDEV) {
		autofree char *text = NULL;
		size_t len;
		struct clbsd_err err;
		if (fs_read_file(src, &text, &len, &err) == 0 &&
		    fs_write_atomic(dst, text, len, 0600, &err) == 0)
			return;
		log_warn("integrity", c->name, "copy the image's manifest: %s", err.msg);
	} else if (errno != ENOENT) {
		log_warn("integrity", c->name, "link the image's manifest: %s", strerror(errno));
	}
	/* An image from before manifests: the container's own files, walked now. */
	struct clbsd_err err;
	struct ijob *j = job_new(c, &err);
	if (!j)
		return;
	j->update = true;
	c->integrity.busy = true;
	work_submit(c->d, job_run, job_done, j);
}

void ctr_integrity_copy(const char *src_dir, const char *dst_dir)
{
	autofree char *src = xasprintf("%s/%s", src_dir, MANIFEST);
	autofree char *dst = xasprintf("%s/%s", dst_dir, MANIFEST);
	autofree char *text = NULL;
	size_t len;
	struct clbsd_err err;
	if (fs_read_file(src, &text, &len, &err) < 0) {
		if (err.kind != CLBSD_E_NOTFOUND)
			log_warn("integrity", NULL, "copy %s: %s", src, err.msg);
		return;
	}
	if (fs_write_atomic(dst, text, len, 0600, &err) < 0)
		log_warn("integrity", NULL, "copy the manifest to %s: %s", dst, err.msg);
}

int image_integrity_record(const char *staging, struct clbsd_err *err)
{
	autofree char *rootfs = xasprintf("%s/rootfs", staging);
	autofree char *path = xasprintf("%s/%s", staging, MANIFEST);
	autofree char *text = NULL;
	size_t len, files;
	if (mtree_record_dir(rootfs, &text, &len, &files, err) < 0)
		return -err->code;
	return fs_write_atomic(path, text, len, 0600, err);
}
