/*
 * Snapshots, rollback, clones and streams of the dir driver. They are all
 * copies, which is what makes this driver the slow fallback: a snapshot
 * costs the size of the container's layer, state and volumes (less on file
 * systems with reflinks, which sys_copy_tree uses), a rollback copies back.
 *
 *   <ctr_dir>/snapshots/<label>/layer      copy of upper/ (overlay) or fs/
 *   <ctr_dir>/snapshots/<label>/state      copy of container.json, logs/, ...
 *   <ctr_dir>/snapshots/<label>/volumes/   copy of <root>/volumes/<name>/
 *   <ctr_dir>/snapshots/<label>/snapshot.json  {"created": ns}
 *
 * A snapshot is made in snapshots/.tmp-<label> and renamed into place, so a
 * crash leaves a dot-directory that the next attempt removes, never half a
 * snapshot. Streams are tar archives (tar.c) of one snapshot; an overlay
 * layer needs the same image on the receiving host.
 */
#include "storage.h"
#include "internal.h"
#include "util/json.h"
#include "sys/sys.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *snaps_dir(const struct storage *st, const char *name)
{
	return xasprintf("%s/containers/%s/snapshots", st->root, name);
}

static char *vols_dir(const struct storage *st, const char *name)
{
	return xasprintf("%s/volumes/%s", st->root, name);
}

static const char *layer_name(bool overlay)
{
	return overlay ? "upper" : "fs";
}

/* Copy the entries of src into dir dst (made), skipping storage entries when asked. */
static int copy_entries(const char *src, const char *dst, bool state_only, struct clbsd_err *err)
{
	if (fs_mkdir_p(dst, 0700, err) < 0)
		return -err->code;
	DIR *d = opendir(src);
	if (!d)
		return errno == ENOENT
			       ? 0
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", src);
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (state_only && dir_is_storage_entry(de->d_name))
			continue;
		autofree char *s = xasprintf("%s/%s", src, de->d_name);
		autofree char *t = xasprintf("%s/%s", dst, de->d_name);
		r = sys_copy_tree(s, t, err);
	}
	closedir(d);
	return r;
}

/* Read the container's storage.json; NOTFOUND names the container. */
static int meta_of(const struct storage *st, const char *name, struct dir_meta *m,
		   struct clbsd_err *err)
{
	autofree char *dir = storage_ctr_dir(st, name);
	if (!fs_is_dir(dir))
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"container %s does not exist (no %s)", name, dir);
	if (dir_meta_read(dir, m, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	return 0;
}

static int64_t snap_created(const char *snapdir)
{
	autofree char *p = xasprintf("%s/snapshot.json", snapdir);
	autofree char *text = NULL;
	struct clbsd_err e;
	if (fs_read_file(p, &text, NULL, &e) < 0)
		return 0;
	json_t *j = json_loads(text, 0, NULL);
	int64_t ns = json_int(j, "created", 0);
	json_decref(j);
	return ns;
}

int dir_snapshot(struct storage *st, const char *name, const char *label, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	struct dir_meta m;
	if (meta_of(st, name, &m, err) < 0)
		return -err->code;
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *snaps = snaps_dir(st, name);
	autofree char *final = xasprintf("%s/%s", snaps, label);
	autofree char *tmp = xasprintf("%s/.tmp-%s", snaps, label);
	autofree char *layer = xasprintf("%s/%s", dir, layer_name(m.overlay));
	autofree char *t_layer = xasprintf("%s/layer", tmp);
	autofree char *t_state = xasprintf("%s/state", tmp);
	autofree char *t_vols = xasprintf("%s/volumes", tmp);
	autofree char *t_json = xasprintf("%s/snapshot.json", tmp);
	autofree char *vols = vols_dir(st, name);
	dir_meta_release(&m);
	if (fs_exists(final))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"snapshot %s of container %s already exists", label, name);
	struct clbsd_err ignore;
	fs_rm_rf(tmp, &ignore);
	int r = fs_mkdir_p(tmp, 0700, err);
	if (r == 0)
		r = sys_copy_tree(layer, t_layer, err);
	if (r == 0)
		r = copy_entries(dir, t_state, true, err);
	if (r == 0 && fs_is_dir(vols))
		r = sys_copy_tree(vols, t_vols, err);
	if (r == 0) {
		autofree char *j = xasprintf("{\"created\":%lld}\n", (long long)time_now_ns());
		r = fs_write_atomic(t_json, j, strlen(j), 0600, err);
	}
	if (r == 0 && rename(tmp, final) < 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rename %s", tmp);
	if (r < 0) {
		fs_rm_rf(tmp, &ignore);
		return clbsd_err_prefix(err, "snapshot container %s", name);
	}
	return 0;
}

static int cmp_snap(const void *a, const void *b)
{
	const struct storage_snapshot *x = a, *y = b;
	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->label, y->label);
}

int dir_snapshot_list(struct storage *st, const char *name, struct storage_snapshot **out,
		      size_t *n, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	struct dir_meta m;
	if (meta_of(st, name, &m, err) < 0)
		return -err->code;
	dir_meta_release(&m);
	autofree char *snaps = snaps_dir(st, name);
	struct storage_snapshot *s = NULL;
	size_t k = 0;
	DIR *d = opendir(snaps);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		autofree char *p = xasprintf("%s/%s", snaps, de->d_name);
		s = xrealloc(s, (k + 1) * sizeof(*s));
		s[k].label = xstrdup(de->d_name);
		s[k].created_ns = snap_created(p);
		s[k].used = fs_du(p);
		k++;
	}
	if (d)
		closedir(d);
	if (k)
		qsort(s, k, sizeof(*s), cmp_snap);
	*out = s;
	*n = k;
	return 0;
}

int dir_snapshot_destroy(struct storage *st, const char *name, const char *label,
			 struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	autofree char *p = xasprintf("%s/containers/%s/snapshots/%s", st->root, name, label);
	if (!fs_is_dir(p))
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no snapshot %s of container %s", label, name);
	if (fs_rm_rf(p, err) < 0)
		return clbsd_err_prefix(err, "destroy snapshot %s of container %s", label, name);
	return 0;
}

/* Replace dst by a copy of src: copy beside it first, then swap and drop the old one. */
static int replace_with_copy(const char *src, const char *dst, struct clbsd_err *err)
{
	autofree char *parent = xstrdup(dst);
	char *slash = strrchr(parent, '/');
	*slash = '\0';
	autofree char *fresh = xasprintf("%s/.new-%s", parent, slash + 1);
	autofree char *old = xasprintf("%s/.old-%s", parent, slash + 1);
	struct clbsd_err ignore;
	fs_rm_rf(fresh, &ignore);
	fs_rm_rf(old, &ignore);
	if (fs_mkdir_p(parent, 0755, err) < 0 || sys_copy_tree(src, fresh, err) < 0) {
		fs_rm_rf(fresh, &ignore);
		return -err->code;
	}
	if (fs_exists(dst) && rename(dst, old) < 0) {
		int e = errno;
		fs_rm_rf(fresh, &ignore);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "rename %s", dst);
	}
	if (rename(fresh, dst) < 0) {
		int e = errno;
		rename(old, dst);
		fs_rm_rf(fresh, &ignore);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "rename %s", fresh);
	}
	fs_rm_rf(old, &ignore);
	return 0;
}

/* Replace the state entries of dir by those of src. */
static int replace_state(const char *src, const char *dir, struct clbsd_err *err)
{
	autofree char *fresh = xasprintf("%s/.state-new", dir);
	struct clbsd_err ignore;
	fs_rm_rf(fresh, &ignore);
	if (copy_entries(src, fresh, false, err) < 0) {
		fs_rm_rf(fresh, &ignore);
		return -err->code;
	}
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;
	while (r == 0 && d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    dir_is_storage_entry(de->d_name))
			continue;
		autofree char *p = xasprintf("%s/%s", dir, de->d_name);
		r = fs_rm_rf(p, err);
	}
	if (d)
		closedir(d);
	d = r == 0 ? opendir(fresh) : NULL;
	while (r == 0 && d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		autofree char *from = xasprintf("%s/%s", fresh, de->d_name);
		autofree char *to = xasprintf("%s/%s", dir, de->d_name);
		if (rename(from, to) < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rename %s", from);
	}
	if (d)
		closedir(d);
	fs_rm_rf(fresh, &ignore);
	return r;
}

int dir_rollback(struct storage *st, const char *name, const char *label, unsigned flags,
		 struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	struct dir_meta m;
	if (meta_of(st, name, &m, err) < 0)
		return -err->code;
	bool overlay = m.overlay;
	dir_meta_release(&m);
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *snap = xasprintf("%s/snapshots/%s", dir, label);
	if (!fs_is_dir(snap))
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no snapshot %s of container %s", label, name);
	struct storage_snapshot *s;
	size_t n;
	if (dir_snapshot_list(st, name, &s, &n, err) < 0)
		return -err->code;
	int64_t at = snap_created(snap);
	struct strv newer = STRV_INIT;
	for (size_t i = 0; i < n; i++)
		if (s[i].created_ns > at)
			strv_push(&newer, s[i].label);
	storage_snapshots_free(s, n);
	int r = 0;
	if (newer.n && !(flags & STORAGE_DISCARD_NEWER))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
				     "container %s has snapshots newer than %s (%s%s); destroy "
				     "them or ask to discard them",
				     name, label, newer.v[0], newer.n > 1 ? ", ..." : "");
	autofree char *s_layer = xasprintf("%s/layer", snap);
	autofree char *s_state = xasprintf("%s/state", snap);
	autofree char *s_vols = xasprintf("%s/volumes", snap);
	autofree char *layer = xasprintf("%s/%s", dir, layer_name(overlay));
	autofree char *work = xasprintf("%s/work", dir);
	autofree char *vols = vols_dir(st, name);
	if (r == 0)
		r = replace_with_copy(s_layer, layer, err);
	/* overlayfs keeps state in work/ that belongs to the old upper. */
	if (r == 0 && overlay && (fs_rm_rf(work, err) < 0 || fs_mkdir_p(work, 0700, err) < 0))
		r = -err->code;
	if (r == 0 && (flags & STORAGE_PART_STATE))
		r = replace_state(s_state, dir, err);
	if (r == 0 && (flags & STORAGE_PART_VOLUMES) && fs_is_dir(s_vols)) {
		DIR *d = opendir(s_vols);
		struct dirent *de;
		while (r == 0 && d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			autofree char *from = xasprintf("%s/%s", s_vols, de->d_name);
			autofree char *to = xasprintf("%s/%s", vols, de->d_name);
			r = replace_with_copy(from, to, err);
		}
		if (d)
			closedir(d);
	}
	for (size_t i = 0; r == 0 && i < newer.n; i++)
		r = dir_snapshot_destroy(st, name, newer.v[i], err);
	strv_release(&newer);
	if (r < 0)
		return clbsd_err_prefix(err, "roll container %s back to %s", name, label);
	return 0;
}

int dir_clone(struct storage *st, const char *src, const char *label, const char *dst,
	      unsigned parts, struct rt_rootfs *out, struct clbsd_err *err)
{
	if (storage_check_name("container", src, err) < 0 ||
	    storage_check_name("container", dst, err) < 0 ||
	    (label && storage_check_label(label, err) < 0))
		return -err->code;
	struct dir_meta m;
	if (meta_of(st, src, &m, err) < 0)
		return -err->code;
	autofree char *sdir = storage_ctr_dir(st, src);
	autofree char *ddir = storage_ctr_dir(st, dst);
	autofree char *dvols = vols_dir(st, dst);
	autofree char *snap = label ? xasprintf("%s/snapshots/%s", sdir, label) : NULL;
	/* From a snapshot, or from the container as it is now. */
	autofree char *s_layer = snap ? xasprintf("%s/layer", snap)
				      : xasprintf("%s/%s", sdir, layer_name(m.overlay));
	autofree char *s_state = snap ? xasprintf("%s/state", snap) : xstrdup(sdir);
	autofree char *s_vols = snap ? xasprintf("%s/volumes", snap) : vols_dir(st, src);
	autofree char *d_layer = xasprintf("%s/%s", ddir, layer_name(m.overlay));
	autofree char *d_work = xasprintf("%s/work", ddir);
	autofree char *d_rootfs = xasprintf("%s/rootfs", ddir);
	bool with_vols = (parts & STORAGE_PART_VOLUMES) && fs_is_dir(s_vols);
	int r = 0;
	if (snap && !fs_is_dir(snap))
		r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
				     "no snapshot %s of container %s", label, src);
	else if (m.overlay && !m.lower)
		r = clbsd_err_setmsg(
			err, CLBSD_E_NOTFOUND, ENOENT,
			"container %s: its storage does not say which image it sits on", src);
	else if (fs_exists(ddir))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST, "container %s already exists",
				     dst);
	else if (with_vols && fs_exists(dvols))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
				     "volumes of container %s already exist (%s)", dst, dvols);
	if (r < 0) {
		dir_meta_release(&m);
		return clbsd_err_prefix(err, "clone %s to %s", src, dst);
	}
	r = fs_mkdir_p(ddir, 0700, err);
	if (r == 0)
		r = sys_copy_tree(s_layer, d_layer, err);
	if (r == 0 && m.overlay)
		r = fs_mkdir_p(d_work, 0700, err);
	if (r == 0)
		r = fs_mkdir_p(d_rootfs, 0755, err);
	if (r == 0)
		r = dir_meta_write(ddir, m.overlay, m.lower, m.image, NULL, err);
	if (r == 0 && (parts & STORAGE_PART_STATE))
		r = copy_entries(s_state, ddir, !snap, err);
	if (r == 0 && with_vols)
		r = sys_copy_tree(s_vols, dvols, err);
	if (r < 0) {
		struct clbsd_err ignore;
		fs_rm_rf(ddir, &ignore);
		if (with_vols)
			fs_rm_rf(dvols, &ignore);
		dir_meta_release(&m);
		return clbsd_err_prefix(err, "clone %s to %s", src, dst);
	}
	dir_fill(out, m.overlay, m.lower, ddir);
	dir_meta_release(&m);
	return 0;
}

int dir_send(struct storage *st, const char *name, const char *label, const char *from,
	     char *const *snaps, int fd, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	if (snaps && *snaps)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"send container %s: the dir driver sends one snapshot "
					"(its snapshots are copies: export --snapshots needs the "
					"zfs driver)",
					name);
	if (from)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"send container %s: the dir driver sends whole snapshots "
					"only (no changes since %s); use the zfs driver",
					name, from);
	struct dir_meta m;
	if (meta_of(st, name, &m, err) < 0)
		return -err->code;
	autofree char *snap = xasprintf("%s/containers/%s/snapshots/%s", st->root, name, label);
	int r = 0;
	if (!fs_is_dir(snap))
		r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
				     "no snapshot %s of container %s", label, name);
	else if (m.overlay && !m.image)
		r = clbsd_err_setmsg(
			err, CLBSD_E_NOTFOUND, ENOENT,
			"container %s: its storage does not say which image it sits on", name);
	if (r == 0) {
		json_t *j = json_pack("{s:s,s:i,s:s,s:s,s:I,s:s,s:s?}", "format", "clbsd-dir-send",
				      "version", 1, "name", name, "label", label, "created",
				      (json_int_t)snap_created(snap), "layer",
				      m.overlay ? "overlay" : "copy", "image", m.image);
		autofree char *meta = json_line(j);
		json_decref(j);
		autofree char *layer = xasprintf("%s/layer", snap);
		autofree char *state = xasprintf("%s/state", snap);
		autofree char *vols = xasprintf("%s/volumes", snap);
		const struct tar_tree trees[] = {
			{"layer", layer}, {"state", state}, {"volumes", vols}};
		r = tar_send(fd, meta, trees, ARRAY_SIZE(trees), err);
	}
	dir_meta_release(&m);
	if (r < 0)
		return clbsd_err_prefix(err, "send container %s@%s", name, label);
	return 0;
}

/* Move every entry of src into dst (both exist, same file system). */
static int move_entries(const char *src, const char *dst, struct clbsd_err *err)
{
	DIR *d = opendir(src);
	if (!d)
		return errno == ENOENT
			       ? 0
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", src);
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		autofree char *from = xasprintf("%s/%s", src, de->d_name);
		autofree char *to = xasprintf("%s/%s", dst, de->d_name);
		if (rename(from, to) < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rename %s", from);
	}
	closedir(d);
	return r;
}

/* Every entry below dir (a directory, not followed) is a regular file or a directory. */
static int only_files_and_dirs(const char *dir, int depth, struct clbsd_err *err)
{
	if (depth > 64)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ELOOP,
					"damaged stream: the container's state nests too deep");
	DIR *d = opendir(dir);
	if (!d)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", dir);
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat sb;
		autofree char *p = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(p, &sb) < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", p);
		else if (S_ISDIR(sb.st_mode))
			r = only_files_and_dirs(p, depth + 1, err);
		else if (!S_ISREG(sb.st_mode))
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: the container's state holds \"%s\", "
					     "which is not a regular file or directory",
					     de->d_name);
	}
	closedir(d);
	return r;
}

/*
 * What a received stream may hold before any of it is put in place: the
 * layer, state and volumes trees are directories (a symlink there would
 * make the container's upper layer, files or a named volume a host path),
 * the state holds only regular files and directories, none named like the
 * driver's own entries (upper, rootfs, storage.json...), and every named
 * volume is a directory. Symlinks inside the layer and the volumes are the
 * container's own files, resolved inside it.
 */
static int check_received(const char *tmp, struct clbsd_err *err)
{
	static const char *const trees[] = {"layer", "state", "volumes"};
	for (size_t i = 0; i < ARRAY_SIZE(trees); i++) {
		autofree char *p = xasprintf("%s/%s", tmp, trees[i]);
		struct stat sb;
		if (lstat(p, &sb) == 0 && !S_ISDIR(sb.st_mode))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"damaged stream: %s is not a directory", trees[i]);
	}
	autofree char *state = xasprintf("%s/state", tmp);
	autofree char *vols = xasprintf("%s/volumes", tmp);
	int r = 0;
	DIR *d = opendir(state);
	struct dirent *de;
	while (d && r == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    dir_is_storage_entry(de->d_name))
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: the container's state holds \"%s\", "
					     "a name of the storage driver's own",
					     de->d_name);
	if (d)
		closedir(d);
	if (r == 0 && fs_is_dir(state))
		r = only_files_and_dirs(state, 0, err);
	d = r == 0 ? opendir(vols) : NULL;
	while (d && r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat sb;
		autofree char *p = xasprintf("%s/%s", vols, de->d_name);
		if (lstat(p, &sb) < 0 || !S_ISDIR(sb.st_mode))
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: volume \"%s\" is not a directory",
					     de->d_name);
	}
	if (d)
		closedir(d);
	return r;
}

/* Lay out container `name` from a received stream unpacked in tmp. */
static int receive_into(struct storage *st, const char *name, const char *tmp, json_t *meta,
			bool *made_vols, struct clbsd_err *err)
{
	const char *label = json_str(meta, "label");
	const char *layer = json_str(meta, "layer");
	const char *image = json_str(meta, "image");
	const char *format = json_str(meta, "format");
	if (!format || strcmp(format, "clbsd-dir-send") != 0 || !label ||
	    storage_check_label(label, err) < 0 || !layer ||
	    (strcmp(layer, "overlay") != 0 && strcmp(layer, "copy") != 0) ||
	    (image && storage_check_image_id(image, err) < 0))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "damaged stream header");
	bool overlay = strcmp(layer, "overlay") == 0;
	autofree char *lower = image ? xasprintf("%s/images/%s/rootfs", st->root, image) : NULL;
	if (overlay && (!lower || !fs_is_dir(lower)))
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"the stream is an overlay layer on image %s, which is not "
					"on this host: import that image first",
					image ? image : "(unknown)");
	if (overlay && !st->have_overlay)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"the stream is an overlay layer, and overlayfs is not "
					"usable under %s",
					st->root);
	autofree char *t_layer = xasprintf("%s/layer", tmp);
	autofree char *t_state = xasprintf("%s/state", tmp);
	autofree char *t_vols = xasprintf("%s/volumes", tmp);
	if (!fs_is_dir(t_layer))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "damaged stream: no layer");
	if (check_received(tmp, err) < 0)
		return -err->code;
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *vols = vols_dir(st, name);
	autofree char *vparent = xasprintf("%s/volumes", st->root);
	autofree char *snap = xasprintf("%s/snapshots/%s", dir, label);
	bool with_vols = fs_is_dir(t_vols);
	if (with_vols && fs_exists(vols))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"volumes of container %s already exist (%s)", name, vols);
	/* The snapshot first (copies), then the live parts (renames). */
	autofree char *s_layer = xasprintf("%s/layer", snap);
	autofree char *s_state = xasprintf("%s/state", snap);
	autofree char *s_vols = xasprintf("%s/volumes", snap);
	autofree char *s_json = xasprintf("%s/snapshot.json", snap);
	autofree char *created = xasprintf("{\"created\":%lld}\n",
					   (long long)json_int(meta, "created", time_now_ns()));
	autofree char *d_layer = xasprintf("%s/%s", dir, layer_name(overlay));
	autofree char *d_work = xasprintf("%s/work", dir);
	autofree char *d_rootfs = xasprintf("%s/rootfs", dir);
	int r = fs_mkdir_p(snap, 0700, err);
	if (r == 0)
		r = sys_copy_tree(t_layer, s_layer, err);
	if (r == 0)
		r = copy_entries(t_state, s_state, false, err);
	if (r == 0 && with_vols)
		r = sys_copy_tree(t_vols, s_vols, err);
	if (r == 0)
		r = fs_write_atomic(s_json, created, strlen(created), 0600, err);
	if (r == 0 && rename(t_layer, d_layer) < 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rename %s", t_layer);
	if (r == 0)
		r = move_entries(t_state, dir, err);
	if (r == 0 && overlay)
		r = fs_mkdir_p(d_work, 0700, err);
	if (r == 0)
		r = fs_mkdir_p(d_rootfs, 0755, err);
	if (r == 0)
		r = dir_meta_write(dir, overlay, lower, image, NULL, err);
	if (r == 0 && with_vols) {
		r = fs_mkdir_p(vparent, 0755, err);
		if (r == 0 && rename(t_vols, vols) < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rename %s", t_vols);
		*made_vols = r == 0;
	}
	return r;
}

int dir_receive(struct storage *st, const char *name, int fd, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *dir = storage_ctr_dir(st, name);
	if (fs_exists(dir))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"receive container %s: it already exists (the dir driver "
					"receives whole containers only)",
					name);
	char rnd[17];
	random_hex(rnd, 8);
	autofree char *tmp = xasprintf("%s/tmp/.recv-%s", st->root, rnd);
	autofree char *vols = vols_dir(st, name);
	static const char *const prefixes[] = {"layer", "state", "volumes", NULL};
	autofree char *metatext = NULL;
	bool made_dir = false, made_vols = false;
	json_t *meta = NULL;
	int r = fs_mkdir_p(tmp, 0700, err);
	if (r == 0)
		r = tar_receive(fd, tmp, prefixes, &metatext, err);
	if (r == 0 && !(meta = json_loads(metatext, 0, NULL)))
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "damaged stream header");
	if (r == 0) {
		r = fs_mkdir_p(dir, 0700, err);
		made_dir = r == 0;
	}
	if (r == 0)
		r = receive_into(st, name, tmp, meta, &made_vols, err);
	struct clbsd_err ignore;
	if (r < 0 && made_dir)
		fs_rm_rf(dir, &ignore);
	if (r < 0 && made_vols)
		fs_rm_rf(vols, &ignore);
	fs_rm_rf(tmp, &ignore);
	json_decref(meta);
	if (r < 0)
		return clbsd_err_prefix(err, "receive container %s", name);
	return 0;
}

static bool kept(const char *const *keep, const char *v)
{
	for (size_t i = 0; keep[i]; i++)
		if (strcmp(keep[i], v) == 0)
			return true;
	return false;
}

/* A receive assembles in tmp/ (cleared at open) and then moves in: what moved goes. */
int dir_receive_undo(struct storage *st, const char *name, int64_t since, const char *const *keep,
		     struct clbsd_err *err)
{
	if (st->ops->ctr_remove(st, name, keep == NULL, err) < 0)
		return -err->code;
	if (!keep)
		return 0;
	autofree char *vols = vols_dir(st, name);
	DIR *dh = opendir(vols);
	struct dirent *de;
	int r = 0;
	while (r == 0 && dh && (de = readdir(dh))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    kept(keep, de->d_name))
			continue;
		autofree char *p = xasprintf("%s/%s", vols, de->d_name);
		r = fs_rm_rf(p, err);
	}
	if (dh)
		closedir(dh);
	return r < 0 ? clbsd_err_prefix(err, "remove what the receive of %s made", name) : 0;
}

/* A dir container's directory is always there. */
int dir_ctr_mount(struct storage *st, const char *name, struct clbsd_err *err)
{
	return storage_check_name("container", name, err) < 0 ? -err->code : 0;
}
