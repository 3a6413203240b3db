/*
 * The zfs driver's snapshots: take, list, destroy, roll back to one, and
 * clone a container from one (zfs.c says how the datasets are laid out).
 * A container's snapshot is one per part (its dataset, and each volume)
 * under the same label; the container tree's is atomic.
 */
#include "storage.h"
#include "internal.h"
#include "sys/sys.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int zfs_has(const char *ds, enum zfs_dstate want, struct clbsd_err *err, bool *yes)
{
	enum zfs_dstate s;
	if (zfs_ds_state(ds, &s, err) < 0)
		return -err->code;
	*yes = s == want;
	return 0;
}

int zfs_snapshot(struct storage *st, const char *name, const char *label, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	autofree char *snap = xasprintf("%s@%s", ds, label);
	autofree char *vsnap = xasprintf("%s@%s", vols, label);
	autofree char *what = xasprintf("container %s", name);
	autofree char *swhat = xasprintf("snapshot %s of container %s", label, name);
	struct zfs_view v;
	if (zfs_view_load(&v, ds, vols, err) < 0)
		return clbsd_err_prefix(err, "snapshot container %s", name);
	bool with_vols = zfs_view_state(&v, vols) == ZFS_DS_MANAGED;
	int r = zfs_need_managed_as(what, ds, zfs_view_state(&v, ds), err);
	if (r == 0)
		r = zfs_need_absent_as(swhat, snap, zfs_view_state(&v, snap), err);
	zfs_view_release(&v);
	if (r < 0)
		return r;
	if (zfs_run(NULL, err, "snapshot", "-r", snap, NULL) < 0)
		return clbsd_err_prefix(err, "snapshot container %s", name);
	if (with_vols && zfs_run(NULL, err, "snapshot", "-r", vsnap, NULL) < 0) {
		struct clbsd_err ignore;
		zfs_destroy(snap, true, &ignore);
		zfs_destroy(vsnap, true, &ignore);
		return clbsd_err_prefix(err, "snapshot volumes of container %s", name);
	}
	return 0;
}

static int cmp_snap(const void *a, const void *b)
{
	const struct storage_snapshot *x = a, *y = b;
	/*
	 * The transaction group first: two snapshots taken in one second, or
	 * a chain received in one (export --snapshots), keep their order.
	 */
	if (x->txg && y->txg && x->txg != y->txg)
		return x->txg < y->txg ? -1 : 1;
	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->label, y->label);
}

/* Add the snapshots below ds (zfs get -r creation,used,createtxg) to *s. */
static int collect_snaps(const char *ds, bool own, struct storage_snapshot **s, size_t *n,
			 struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs_run(&o, err, "get", "-r", "-H", "-p", "-o", "name,property,value",
		    "creation,used,createtxg", ds, NULL) < 0)
		return clbsd_err_prefix(err, "snapshots of %s", ds);
	size_t dl = strlen(ds);
	char *p = o, *l;
	while ((l = zfs_next_line(&p))) {
		char *f[3] = {"", "", ""};
		char *at = strchr(l, '@');
		if (zfs_fields(l, f, 3) != 3 || !at)
			continue;
		const char *label = at + 1;
		size_t i;
		for (i = 0; i < *n && strcmp((*s)[i].label, label) != 0; i++)
			;
		if (i == *n) {
			if (!own) /* a volume's label that the container does not have */
				continue;
			*s = xrealloc(*s, (*n + 1) * sizeof(**s));
			(*s)[i] = (struct storage_snapshot){xstrdup(label), 0, 0, 0};
			(*n)++;
		}
		long long v = strtoll(f[2], NULL, 10);
		bool top = (size_t)(at - l) == dl && strncmp(l, ds, dl) == 0;
		if (strcmp(f[1], "used") == 0)
			(*s)[i].used += v;
		else if (strcmp(f[1], "creation") == 0 && own && top)
			(*s)[i].created_ns = (int64_t)v * 1000000000;
		else if (strcmp(f[1], "createtxg") == 0 && own && top)
			(*s)[i].txg = v;
	}
	return 0;
}

int zfs_snapshot_list(struct storage *st, const char *name, struct storage_snapshot **out,
		      size_t *n, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	autofree char *what = xasprintf("container %s", name);
	struct storage_snapshot *s = NULL;
	size_t k = 0;
	struct zfs_view v;
	int r = zfs_view_load(&v, ds, vols, err);
	bool with_vols = r == 0 && zfs_view_state(&v, vols) == ZFS_DS_MANAGED;
	if (r == 0)
		r = zfs_need_managed_as(what, ds, zfs_view_state(&v, ds), err);
	zfs_view_release(&v);
	if (r == 0)
		r = collect_snaps(ds, true, &s, &k, err);
	if (r == 0 && with_vols)
		r = collect_snaps(vols, false, &s, &k, err);
	if (r < 0) {
		storage_snapshots_free(s, k);
		return clbsd_err_prefix(err, "list snapshots of container %s", name);
	}
	if (k)
		qsort(s, k, sizeof(*s), cmp_snap);
	*out = s;
	*n = k;
	return 0;
}

int zfs_snapshot_destroy(struct storage *st, const char *name, const char *label,
			 struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	autofree char *snap = xasprintf("%s@%s", ds, label);
	autofree char *vsnap = xasprintf("%s@%s", vols, label);
	autofree char *what = xasprintf("snapshot %s of container %s", label, name);
	struct zfs_view v;
	if (zfs_view_load(&v, ds, vols, err) < 0)
		return clbsd_err_prefix(err, "destroy snapshot %s of container %s", label, name);
	bool with_vols = zfs_view_state(&v, vsnap) == ZFS_DS_MANAGED;
	int r = zfs_need_managed_as(what, snap, zfs_view_state(&v, snap), err);
	zfs_view_release(&v);
	if (r < 0)
		return r;
	if (zfs_destroy(snap, true, err) < 0 || (with_vols && zfs_destroy(vsnap, true, err) < 0))
		return clbsd_err_prefix(err, "destroy snapshot %s of container %s", label, name);
	return 0;
}

/* Snapshots of ds (not below), oldest first. */
static int snap_names(const char *ds, struct strv *out, struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs_run(&o, err, "list", "-H", "-t", "snapshot", "-o", "name", "-s", "creation", "-d",
		    "1", ds, NULL) < 0)
		return clbsd_err_prefix(err, "snapshots of %s", ds);
	char *p = o, *l;
	while ((l = zfs_next_line(&p)))
		if (strchr(l, '@'))
			strv_push(out, strchr(l, '@') + 1);
	return 0;
}

/*
 * The filesystems of a container that rollback, clone and send act on:
 * state, rootfs, then each volume (vol names in *vols when not NULL).
 */
/* The names in dir other than rootfs: a tree container's state. */
static int state_entries(const char *dir, struct strv *out, struct clbsd_err *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", dir);
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "rootfs"))
			strv_push(out, de->d_name);
	closedir(d);
	return 0;
}

/* Remove the state of a tree container (all of dir but rootfs/). */
static int state_clear(const char *dir, struct clbsd_err *err)
{
	struct strv names = STRV_INIT;
	int r = state_entries(dir, &names, err);
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		autofree char *p = xasprintf("%s/%s", dir, names.v[i]);
		r = fs_rm_rf(p, err);
	}
	strv_release(&names);
	return r;
}

/* Copy the state of a tree container (all of from but rootfs/) into the directory to. */
static int state_copy(const char *from, const char *to, struct clbsd_err *err)
{
	struct strv names = STRV_INIT;
	int r = state_entries(from, &names, err);
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		autofree char *s = xasprintf("%s/%s", from, names.v[i]);
		autofree char *t = xasprintf("%s/%s", to, names.v[i]);
		r = sys_copy_tree(s, t, err);
	}
	strv_release(&names);
	return r;
}

/*
 * zfs rollback of one snapshot. zfs-fuse now and then answers "I/O error"
 * for a dataset unmounted a moment before (its files' FUSE releases are
 * still on their way) and does it right when asked again: retried with the
 * backoff zfs_destroy() uses.
 */
int zfs_rollback_snap(const char *snap, bool discard_newer, struct clbsd_err *err)
{
	useconds_t delay = 25000;
	for (int attempt = 0;; attempt++) {
		struct clbsd_err e;
		int r = discard_newer ? zfs_run(NULL, &e, "rollback", "-r", snap, NULL)
				      : zfs_run(NULL, &e, "rollback", snap, NULL);
		if (r == 0)
			return 0;
		bool transient = strstr(e.msg, "I/O error") || strstr(e.msg, "busy");
		if (transient)
			log_debug("zfs", NULL, "rollback %s: try %d failed (%s); again in %u ms",
				  snap, attempt + 1, e.msg, (unsigned)(delay / 1000));
		if (!transient || !zfs_retry_wait(attempt, 11, &delay)) {
			*err = e;
			return -err->code;
		}
	}
}

/*
 * Roll back the rootfs and, in flags, the state and the volumes. A tree
 * container keeps state and rootfs in one dataset: its state files are
 * copied aside first and put back after, unless the state rolls back too.
 */
int zfs_rollback(struct storage *st, const char *name, const char *label, unsigned flags,
		 struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	autofree char *top = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *saved = xasprintf("%s/tmp/rollback-%s", st->root, name);
	autofree char *what = xasprintf("container %s", name);
	struct strv all = STRV_INIT, todo = STRV_INIT;
	size_t nctr = 0;
	struct zfs_view v;
	int r = zfs_view_load(&v, top, vols, err);
	if (r == 0)
		r = zfs_need_managed_as(what, top, zfs_view_state(&v, top), err);
	if (r == 0)
		zfs_view_parts(&v, st, name, &all, NULL, &nctr);
	zfs_view_release(&v);
	/* Check everything before changing anything. */
	for (size_t i = 0; r == 0 && i < all.n; i++) {
		bool is_state = i == 0 && nctr == 2, is_vol = i >= nctr;
		if ((is_state && !(flags & STORAGE_PART_STATE)) ||
		    (is_vol && !(flags & STORAGE_PART_VOLUMES)))
			continue;
		struct strv snaps = STRV_INIT;
		r = snap_names(all.v[i], &snaps, err);
		size_t at = snaps.n;
		for (size_t j = 0; r == 0 && j < snaps.n && at == snaps.n; j++)
			if (strcmp(snaps.v[j], label) == 0)
				at = j;
		if (r == 0 && at == snaps.n && !is_vol)
			r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT, "no snapshot %s of %s",
					     label, all.v[i]);
		if (r == 0 && at + 1 < snaps.n && !(flags & STORAGE_DISCARD_NEWER))
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					     "%s has snapshots newer than %s (%s%s); destroy "
					     "them or ask to discard them",
					     all.v[i], label, snaps.v[at + 1],
					     at + 2 < snaps.n ? ", ..." : "");
		if (r == 0 && at < snaps.n) /* a volume made after the snapshot stays */
			strv_push_owned(&todo, xasprintf("%s@%s", all.v[i], label));
		strv_release(&snaps);
	}
	bool keep_state = r == 0 && nctr == 1 && !(flags & STORAGE_PART_STATE);
	if (keep_state) {
		r = fs_rm_rf(saved, err);
		if (r == 0)
			r = fs_mkdir_p(saved, 0700, err);
		if (r == 0)
			r = state_copy(dir, saved, err);
		if (r < 0) {
			struct clbsd_err ignore;
			fs_rm_rf(saved, &ignore);
			clbsd_err_prefix(err, "keep the state of container %s", name);
		}
	}
	bool with_vols = all.n > nctr;
	if (r == 0)
		r = zfs_unmount_tree(top, err);
	if (r == 0 && with_vols)
		r = zfs_unmount_tree(vols, err);
	for (size_t i = 0; r == 0 && i < todo.n; i++) {
		r = zfs_rollback_snap(todo.v[i], flags & STORAGE_DISCARD_NEWER, err);
		if (r < 0)
			clbsd_err_prefix(err, "zfs rollback %s", todo.v[i]);
	}
	/* Mount again whatever happened: the container needs its files. */
	struct clbsd_err e2;
	bool mounted = all.n && zfs_mount_tree(top, &e2) == 0;
	if (all.n && !mounted && r == 0)
		r = -(*err = e2).code;
	if (with_vols && zfs_mount_tree(vols, &e2) < 0 && r == 0)
		r = -(*err = e2).code;
	if (keep_state) {
		if (mounted && state_clear(dir, &e2) == 0 && state_copy(saved, dir, &e2) == 0) {
			fs_rm_rf(saved, &e2);
		} else {
			if (r == 0)
				r = -(*err = e2).code;
			clbsd_err_prefix(err, "its state files are kept in %s", saved);
		}
	}
	strv_release(&all);
	strv_release(&todo);
	if (r < 0)
		return clbsd_err_prefix(err, "roll container %s back to %s", name, label);
	return 0;
}

int zfs_clone(struct storage *st, const char *src, const char *label, const char *dst,
	      unsigned parts, struct rt_rootfs *out, struct clbsd_err *err)
{
	if (storage_check_name("container", src, err) < 0 ||
	    storage_check_name("container", dst, err) < 0 ||
	    (label && storage_check_label(label, err) < 0))
		return -err->code;
	autofree char *auto_label = label ? NULL : xasprintf("clone-%s", dst);
	if (!label)
		label = auto_label;
	autofree char *sds = zfs_ds_ctr(st, src);
	autofree char *dds = zfs_ds_ctr(st, dst);
	autofree char *dvols = zfs_ds_vols(st, dst);
	autofree char *ddir = storage_ctr_dir(st, dst);
	autofree char *swhat = xasprintf("container %s", src);
	autofree char *dwhat = xasprintf("container %s", dst);
	autofree char *snap = xasprintf("%s@%s", sds, label);
	autofree char *rsnap = xasprintf("%s/rootfs@%s", sds, label);
	autofree char *drootfs = xasprintf("%s/rootfs", dds);
	autofree char *svols = zfs_ds_vols(st, src);
	struct zfs_view v;
	if (zfs_view_load(&v, sds, svols, err) < 0)
		return clbsd_err_prefix(err, "clone %s to %s", src, dst);
	if (zfs_need_managed_as(swhat, sds, zfs_view_state(&v, sds), err) < 0 ||
	    zfs_need_absent(dwhat, dds, err) < 0 || zfs_need_empty_dir(ddir, err) < 0) {
		zfs_view_release(&v);
		return clbsd_err_prefix(err, "clone %s to %s", src, dst);
	}
	bool made_snap = false, made_dvols = false;
	struct strv kv = STRV_INIT, ds = STRV_INIT, vols = STRV_INIT;
	int r = 0;
	if (auto_label) {
		r = zfs_snapshot(st, src, label, err);
		made_snap = r == 0;
	} else {
		autofree char *what = xasprintf("snapshot %s of container %s", label, src);
		r = zfs_need_managed_as(what, snap, zfs_view_state(&v, snap), err);
	}
	size_t nctr = 0;
	if (r == 0)
		zfs_view_parts(&v, st, src, &ds, &vols, &nctr);
	if (r == 0)
		r = zfs_local_props(sds, &kv, err);
	/* A tree container is one clone; its state is the source's unless asked for. */
	if (r == 0 && nctr == 1) {
		r = zfs_make_ds(snap, dds, &kv, err);
		if (r == 0 && !(parts & STORAGE_PART_STATE))
			r = state_clear(ddir, err);
	} else if (r == 0) {
		r = zfs_make_ds(parts & STORAGE_PART_STATE ? snap : NULL, dds, &kv, err);
		if (r == 0)
			r = zfs_make_ds(rsnap, drootfs, NULL, err);
	}
	for (size_t i = 0; r == 0 && (parts & STORAGE_PART_VOLUMES) && i < vols.n; i++) {
		autofree char *vsnap = xasprintf("%s@%s", ds.v[i + nctr], label);
		autofree char *target = xasprintf("%s/%s", dvols, vols.v[i]);
		/* The snapshot made here covers every volume; else the view tells. */
		bool present = made_snap || zfs_view_state(&v, vsnap) == ZFS_DS_MANAGED;
		if (present && !made_dvols) {
			autofree char *vwhat = xasprintf("volumes of container %s", dst);
			r = zfs_need_absent(vwhat, dvols, err);
			if (r == 0)
				r = zfs_ensure_vols(st, dst, &made_dvols, err);
		}
		if (r == 0 && present) {
			struct strv vkv = STRV_INIT;
			r = zfs_local_props(ds.v[i + nctr], &vkv, err);
			if (r == 0)
				r = zfs_make_ds(vsnap, target, &vkv, err);
			strv_release(&vkv);
		}
	}
	zfs_view_release(&v);
	strv_release(&kv);
	strv_release(&ds);
	strv_release(&vols);
	if (r < 0) {
		struct clbsd_err ignore;
		zfs_destroy_tree(dds, &ignore);
		if (made_dvols)
			zfs_destroy_tree(dvols, &ignore);
		if (made_snap)
			zfs_snapshot_destroy(st, src, label, &ignore);
		rmdir(ddir);
		return clbsd_err_prefix(err, "clone %s@%s to %s", src, label, dst);
	}
	zfs_fill(st, dst, out);
	return 0;
}

/* Whether snapshot `snap` (DS@LABEL) is of a container's part: below containers/ or volumes/. */
static bool ctr_part(const struct storage *st, const char *snap)
{
	static const char *const under[] = {"containers/", "volumes/"};
	size_t n = strlen(st->dataset);
	if (strncmp(snap, st->dataset, n) != 0 || snap[n] != '/')
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(under); i++)
		if (strncmp(snap + n + 1, under[i], strlen(under[i])) == 0)
			return true;
	return false;
}

int zfs_snapshot_all(struct storage *st, const char *label, struct clbsd_err *err)
{
	if (storage_check_label(label, err) < 0)
		return -err->code;
	/*
	 * zfs-fuse's `zfs snapshot` takes one argument; -r is how it takes
	 * many datasets in one transaction group, so all containers are
	 * caught at the same moment. It fails whole when one has the label.
	 */
	autofree char *snap = xasprintf("%s@%s", st->dataset, label);
	if (zfs_run(NULL, err, "snapshot", "-r", snap, NULL) < 0) {
		if (strstr(err->msg, "exists"))
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
						"snapshot %s exists already on a container; choose "
						"another label or remove it (clbsd snapshots --rm)",
						label);
		return clbsd_err_prefix(err, "snapshot all containers as %s", label);
	}
	/* What -r also caught (the root, images, datasets set aside) goes again. */
	autofree char *out = NULL;
	if (zfs_run(&out, err, "list", "-H", "-t", "snapshot", "-o", "name", "-r", st->dataset,
		    NULL) < 0)
		return clbsd_err_prefix(err, "snapshot all containers as %s", label);
	autofree char *suffix = xasprintf("@%s", label);
	size_t ns = strlen(suffix);
	char *p = out, *l;
	int r = 0;
	while ((l = zfs_next_line(&p))) {
		size_t n = strlen(l);
		if (n <= ns || strcmp(l + n - ns, suffix) != 0 || ctr_part(st, l))
			continue;
		struct clbsd_err e;
		if (zfs_destroy(l, false, &e) < 0 && r == 0) {
			*err = e;
			r = -e.code;
		}
	}
	return r;
}
