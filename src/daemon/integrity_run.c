/*
 * A native container's file integrity (src/integrity/ does the manifests):
 *
 * - At create, the container's manifest is its image's (recorded when the
 *   image was built, imported or pulled): at that moment its root file
 *   system is the image's tree (an overlay with an empty upper layer, a
 *   copy, a zfs clone). The image's file is hard-linked to
 *   <ctr>/integrity.mtree, on the loop; across file systems (zfs datasets)
 *   it is copied on a worker, and an image made before manifests existed
 *   gets the image's own tree walked on a worker (never the container's,
 *   which may be starting and writing).
 * - `clbsd verify` (ctr_integrity_check) walks the container's files as
 *   the host sees them (an overlay's layers through a read-only detached
 *   overlay mount, a copy or clone directly), running or not, on a worker,
 *   and compares that manifest with the recorded one. --update writes the
 *   new one atomically in its place.
 * - :integrity (:every D) runs the same check on the hooks' timers
 *   (hook_run.c); a drift is an integrity.drift event, which runs
 *   :on-drift like any hook. A container the API made has its create
 *   request's "every" on a timer of its own here (ctr_integrity_arm).
 *
 * One check at a time per container (c->integrity.busy): another is
 * refused (CONFLICT) and a scheduled one skipped (an integrity.skipped
 * event). A walk has a budget (struct mtree_budget): past it the check
 * fails, an integrity.failed event with the reason. Jobs run at nice 19.
 */
#include "core/audit_rec.h"
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
#include <sys/resource.h>
#include <unistd.h>

#define MANIFEST "integrity.mtree"
/* Drift items a report lists (the counts are always whole). */
#define REPORT_MAX 1000

/* Paths clbsd itself puts into a running container's tree (mount points, bound files). */
static const char *const runtime_paths[] = {"/dev", "/proc", "/sys", "/etc/hosts",
					    "/etc/resolv.conf"};

struct ijob {
	struct daemon *d;
	char *name;
	char *dir;	    /* the container's directory */
	char *img_rootfs;   /* the image's tree (the storage driver's describe) */
	char **excludes;    /* NULL-terminated */
	char **includes;    /* NULL-terminated: checked although an exclude holds them */
	bool update;	    /* write the current manifest in place (also: none yet) */
	bool compare;	    /* compare with the recorded one */
	bool scheduled;	    /* from :integrity :every or AUDITCFG's default schedule */
	bool baseline;	    /* at create: the image's manifest copied, or its tree walked */
	char *img_manifest; /* baseline: the image's manifest (a copy across file systems) */
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
	free(j->img_manifest);
	strv_free(j->excludes);
	strv_free(j->includes);
	json_decref(j->report);
	free(j);
}

/*
 * The :integrity a check of c follows: a declared container's is the
 * configuration's (a change there applies without a recreate); any other
 * container's came with its create request and is in its config (so is
 * a declared one's, as it was at create: used while no configuration
 * declares it).
 */
static void own_paths(struct container *c, char *const **exclude, char *const **include)
{
	const struct ctr_spec *s = c->decl.managed && c->d->decl.conf
					   ? conf_container_find(c->d->decl.conf, c->name)
					   : NULL;
	*exclude = s ? s->integrity_exclude : c->cfg.integrity_exclude;
	*include = s ? s->integrity_include : c->cfg.integrity_include;
}

void ctr_integrity_paths(struct container *c, char ***exclude, char ***include)
{
	struct strv v = STRV_INIT, in = STRV_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(runtime_paths); i++)
		strv_push(&v, runtime_paths[i]);
	for (size_t i = 0; i < c->cfg.n_volumes; i++)
		strv_push(&v, c->cfg.volumes[i].dest);
	for (size_t i = 0; i < c->cfg.n_devices; i++)
		strv_push(&v, c->cfg.devices[i].path);
	/* The image's VOLUME paths: data, made at start where the image has none (docs/cblockfile.md). */
	char **iv = image_volume_dirs(image_by_id(&c->d->images, c->image_id), NULL);
	for (size_t i = 0; iv && iv[i]; i++)
		strv_push(&v, iv[i]);
	strv_free(iv);
	char *const *ex, *const *inc;
	own_paths(c, &ex, &inc);
	for (size_t i = 0; ex && ex[i]; i++)
		strv_push(&v, ex[i]);
	for (size_t i = 0; inc && inc[i]; i++)
		strv_push(&in, inc[i]);
	*exclude = v.v ? v.v : xcalloc(1, sizeof(char *));
	*include = in.v ? in.v : xcalloc(1, sizeof(char *));
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
		r = fd < 0 ? fd : mtree_record_fd(fd, NULL, text, len, files, &j->err);
		if (fd >= 0)
			close(fd);
	} else {
		r = mtree_record_dir(rf.lower ? rf.lower : rf.target, NULL, text, len, files,
				     &j->err);
	}
	rt_rootfs_release(&rf);
	return r;
}

/*
 * On the worker, at create: the container's first manifest. Its files are
 * its image's then, so the image's manifest is copied (a hard link failed:
 * another file system); an image without one has its own tree walked, not
 * the container's, which may be running and writing already.
 */
static void baseline_run(struct ijob *j, const char *path)
{
	autofree char *text = NULL;
	size_t len = 0, files = 0;
	struct clbsd_err e2;
	if (j->img_manifest) {
		if (fs_read_file(j->img_manifest, &text, &len, &e2) == 0 &&
		    fs_write_atomic(path, text, len, 0600, &e2) == 0) {
			j->rc = 0;
			return;
		}
		if (e2.kind != CLBSD_E_NOTFOUND)
			log_warn("integrity", j->name, "copy the image's manifest: %s", e2.msg);
		free(text);
		text = NULL;
	}
	j->rc = mtree_record_dir(j->img_rootfs, NULL, &text, &len, &files, &j->err);
	if (j->rc < 0 && j->err.kind == CLBSD_E_NOTFOUND) {
		/* No image tree here (a storage that keeps none): the container's, once. */
		log_warn("integrity", j->name,
			 "no image tree at %s: its own files are the baseline, walked now",
			 j->img_rootfs);
		clbsd_err_init(&j->err);
		j->rc = record_now(j, &text, &len, &files);
	}
	if (j->rc == 0)
		j->rc = fs_write_atomic(path, text, len, 0600, &j->err);
	if (j->rc < 0)
		clbsd_err_prefix(&j->err, "container %s: record its first manifest", j->name);
}

static void job_run(void *arg)
{
	struct ijob *j = arg;
	clbsd_err_init(&j->err);
	/*
	 * The CPU the loop and the containers leave (Linux keeps a nice value
	 * per thread; this one is the job's own and ends with it).
	 */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	autofree char *path = xasprintf("%s/%s", j->dir, MANIFEST);
	if (j->baseline) {
		baseline_run(j, path);
		return;
	}
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
		if (r == 0 && was_len > MTREE_TEXT_MAX)
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
		size_t n = integrity_diff(&a, &b, j->excludes, j->includes, &dv);
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
	json_object_set_new(rep, "included", json_strv(j->includes));
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
	if (c && strcmp(c->dir, j->dir) != 0)
		c = NULL;
	bool pending = false;
	if (c) {
		c->integrity.busy = false;
		c->integrity.baseline = false;
		pending = c->integrity.pending;
		c->integrity.pending = false;
	}
	if (j->rc < 0) {
		log_warn("integrity", j->name, "%s", j->err.msg);
		/* Loudly: a check that cannot be made is not a clean one. */
		daemon_event(j->d, "integrity.failed", j->name,
			     json_pack("{s:s,s:s}", "reason", j->err.msg, "source",
				       j->baseline    ? "create"
				       : j->scheduled ? "schedule"
						      : "verify"));
		if (j->fn)
			j->fn(NULL, &j->err, j->arg);
		ijob_free(j);
		return;
	}
	if (j->baseline) {
		ijob_free(j);
		if (c && pending)
			ctr_integrity_scheduled(c);
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
	ctr_integrity_paths(c, &j->excludes, &j->includes);
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

void ctr_integrity_scheduled(struct container *c)
{
	struct clbsd_err err;
	if (c->integrity.busy && c->integrity.baseline) {
		c->integrity.pending = true; /* right after the first manifest is there */
		return;
	}
	if (ctr_integrity_check(c, false, true, NULL, NULL, &err) == 0)
		return;
	log_info("integrity", c->name, "scheduled check skipped: %s", err.msg);
	daemon_event(c->d, "integrity.skipped", c->name,
		     json_pack("{s:s,s:s}", "reason", err.msg, "source", "schedule"));
}

void ctr_integrity_created(struct container *c, const struct image *img)
{
	if (c->docker.on)
		return;
	autofree char *src = xasprintf("%s/%s", img->dir, MANIFEST);
	autofree char *dst = xasprintf("%s/%s", c->dir, MANIFEST);
	/*
	 * O(1) on the loop: the image's manifest is written once and only ever
	 * replaced by a rename, so sharing its inode is safe. Across file
	 * systems (zfs datasets) link() fails EXDEV and the copy, with its
	 * fsync, is a worker's, as is the walk of an image without a manifest.
	 */
	unlink(dst); /* a spare directory's leftover, from a check that ended after a removal */
	if (link(src, dst) == 0)
		return;
	int e = errno;
	if (e != EXDEV && e != ENOENT)
		log_warn("integrity", c->name, "link the image's manifest: %s", strerror(e));
	struct clbsd_err err;
	struct ijob *j = job_new(c, &err);
	if (!j)
		return;
	j->baseline = true;
	j->img_manifest = e == EXDEV ? xstrdup(src) : NULL;
	c->integrity.busy = true;
	c->integrity.baseline = true;
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
	if (mtree_record_dir(rootfs, NULL, &text, &len, &files, err) < 0)
		return -err->code;
	return fs_write_atomic(path, text, len, 0600, err);
}

bool ctr_integrity_by_audit(struct container *c)
{
	if (c->docker.on || !(ctr_audit_classes(c->d, c) & AUDIT_C_FILES))
		return false;
	const struct ctr_spec *s = c->decl.managed && c->d->decl.conf
					   ? conf_container_find(c->d->decl.conf, c->name)
					   : NULL;
	/* A schedule of its own replaces AUDITCFG's; paths alone do not. */
	return s ? !s->integrity_set : !c->cfg.integrity_every_ns;
}

static void on_own_timer(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	if (!c->run.removing && !c->run.removed)
		ctr_integrity_scheduled(c);
}

void ctr_integrity_arm(struct container *c)
{
	int64_t ns = c->cfg.integrity_every_ns;
	if (c->integrity.timer || c->decl.managed || c->docker.on || ns <= 0)
		return;
	c->integrity.timer = event_new(c->d->base, -1, EV_PERSIST, on_own_timer, c);
	struct timeval tv = {.tv_sec = ns / 1000000000LL, .tv_usec = (ns % 1000000000LL) / 1000};
	event_add(c->integrity.timer, &tv);
}

void ctr_integrity_release(struct container *c)
{
	if (c->integrity.timer)
		event_free(c->integrity.timer);
	c->integrity.timer = NULL;
}

void ctr_integrity_audit_tick(struct daemon *d)
{
	for (struct container *c = d->ctrs; c; c = c->next)
		if (ctr_integrity_by_audit(c))
			ctr_integrity_scheduled(c);
}
