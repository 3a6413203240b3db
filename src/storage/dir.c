/*
 * The dir storage driver: a container's root file system is an overlay of
 * the image rootfs (lower, shared, never written) and a per-container upper
 * directory. Where overlayfs is unavailable (some file systems refuse to be an
 * upper layer) the image rootfs is copied instead: slower and bigger, but the
 * container sees the same thing. The overlay itself is mounted by the runtime
 * inside the container's mount namespace, so the host never holds it.
 *
 * <ctr_dir>/storage.json records the image the layer sits on, so the
 * container can be described, cloned and sent by name. Snapshots, rollback,
 * clones and streams are in dir_snap.c; tunables (quota, ...) are not
 * available here and are refused.
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

/* Try an overlay mount in a throwaway mount namespace so nothing can leak. */
static bool probe_overlay(const char *root)
{
	struct clbsd_err err;
	char rnd[17];
	random_hex(rnd, 8);
	autofree char *dir = xasprintf("%s/tmp/overlay-probe-%s", root, rnd);
	autofree char *lower = xasprintf("%s/lower", dir);
	autofree char *upper = xasprintf("%s/upper", dir);
	autofree char *work = xasprintf("%s/work", dir);
	autofree char *merged = xasprintf("%s/merged", dir);
	if (fs_mkdir_p(lower, 0700, &err) < 0 || fs_mkdir_p(upper, 0700, &err) < 0 ||
	    fs_mkdir_p(work, 0700, &err) < 0 || fs_mkdir_p(merged, 0700, &err) < 0) {
		fs_rm_rf(dir, &err);
		return false;
	}
	autofree char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	bool ok = sys_mount_works("overlay", merged, opts);
	fs_rm_rf(dir, &err);
	return ok;
}

void dir_fill(struct rt_rootfs *out, bool overlay, const char *image_rootfs, const char *ctr_dir)
{
	memset(out, 0, sizeof(*out));
	out->target = xasprintf("%s/rootfs", ctr_dir);
	if (overlay) {
		out->mode = xstrdup("overlay");
		out->lower = xstrdup(image_rootfs);
		out->upper = xasprintf("%s/upper", ctr_dir);
		out->work = xasprintf("%s/work", ctr_dir);
	} else {
		out->mode = xstrdup("bind");
		out->lower = xasprintf("%s/fs", ctr_dir);
	}
}

bool dir_is_storage_entry(const char *name)
{
	static const char *const names[] = {"upper",  "work",	   "fs",
					    "rootfs", "snapshots", "storage.json"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return name[0] == '.'; /* staging of rollback and receive */
}

int dir_props_none(const struct storage_props *p, struct clbsd_err *err)
{
	if (!p || (!p->quota && !p->reservation && !p->recordsize && !p->compression))
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
				"the dir storage driver has no quota, reservation, compression "
				"or recordsize; use the zfs driver for them");
}

void dir_meta_release(struct dir_meta *m)
{
	free(m->lower);
	free(m->image);
	free(m->spec_hash);
	memset(m, 0, sizeof(*m));
}

int dir_meta_write(const char *ctr_dir, bool overlay, const char *lower, const char *image,
		   const char *spec_hash, struct clbsd_err *err)
{
	json_t *j = json_pack("{s:s,s:s?,s:s?,s:s?}", "layer", overlay ? "overlay" : "copy",
			      "lower", lower, "image", image, "spec_hash", spec_hash);
	autofree char *text = json_line(j);
	json_decref(j);
	autofree char *path = xasprintf("%s/storage.json", ctr_dir);
	/* Not fsynced: dir_meta_read() falls back to the layer when it is lost. */
	return fs_replace(path, text, strlen(text), 0600, err);
}

int dir_meta_read(const char *ctr_dir, struct dir_meta *m, struct clbsd_err *err)
{
	memset(m, 0, sizeof(*m));
	autofree char *path = xasprintf("%s/storage.json", ctr_dir);
	autofree char *upper = xasprintf("%s/upper", ctr_dir);
	autofree char *copy = xasprintf("%s/fs", ctr_dir);
	autofree char *text = NULL;
	struct clbsd_err e;
	json_t *j = fs_read_file(path, &text, NULL, &e) == 0 ? json_loads(text, 0, NULL) : NULL;
	if (json_str(j, "layer")) {
		const char *layer = json_str(j, "layer");
		m->overlay = layer && strcmp(layer, "overlay") == 0;
		m->lower = json_str(j, "lower") ? xstrdup(json_str(j, "lower")) : NULL;
		m->image = json_str(j, "image") ? xstrdup(json_str(j, "image")) : NULL;
		m->spec_hash = json_str(j, "spec_hash") ? xstrdup(json_str(j, "spec_hash")) : NULL;
		json_decref(j);
		return 0;
	}
	json_decref(j);
	/*
	 * Made before storage.json existed, or the file was lost in a crash (it
	 * is not fsynced): the layer on disk says which kind it is.
	 */
	if (fs_is_dir(upper))
		m->overlay = true;
	else if (!fs_is_dir(copy))
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no container storage in %s (neither upper/ nor fs/)",
					ctr_dir);
	return 0;
}

/* <root>/images/<id>/rootfs -> id, when image_rootfs has that shape. */
static char *image_id_of(const struct storage *st, const char *image_rootfs)
{
	autofree char *prefix = xasprintf("%s/images/", st->root);
	size_t pl = strlen(prefix), n = strlen(image_rootfs);
	if (strncmp(image_rootfs, prefix, pl) != 0 || n < pl + 8 ||
	    strcmp(image_rootfs + n - 7, "/rootfs") != 0)
		return NULL;
	char *id = xstrndup(image_rootfs + pl, n - pl - 7);
	struct clbsd_err e;
	if (storage_check_image_id(id, &e) < 0) {
		free(id);
		return NULL;
	}
	return id;
}

static int dir_remove(struct storage *st, const char *ctr_dir, struct clbsd_err *err)
{
	static const char *const parts[] = {"upper",  "work",	   "fs",
					    "rootfs", "snapshots", "storage.json"};
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		autofree char *p = xasprintf("%s/%s", ctr_dir, parts[i]);
		int r = fs_rm_rf(p, err);
		if (r < 0)
			return clbsd_err_prefix(err, "remove container storage");
	}
	return 0;
}

static int dir_create(struct storage *st, const char *image_rootfs, const char *ctr_dir,
		      struct rt_rootfs *out, struct clbsd_err *err)
{
	struct rt_rootfs r;
	dir_fill(&r, st->have_overlay, image_rootfs, ctr_dir);
	autofree char *id = image_id_of(st, image_rootfs);
	int ret = fs_mkdir_p(r.target, 0755, err);
	if (ret == 0 && r.upper)
		ret = fs_mkdir_p(r.upper, 0755, err);
	if (ret == 0 && r.work)
		ret = fs_mkdir_p(r.work, 0700, err);
	if (ret == 0 && !r.upper)
		ret = sys_copy_tree(image_rootfs, r.lower, err);
	if (ret == 0)
		ret = dir_meta_write(ctr_dir, st->have_overlay, image_rootfs, id, NULL, err);
	if (ret < 0) {
		struct clbsd_err ignore;
		dir_remove(st, ctr_dir, &ignore);
		rt_rootfs_release(&r);
		return clbsd_err_prefix(err, "prepare root file system");
	}
	*out = r;
	return 0;
}

static int dir_describe(struct storage *st, const char *image_rootfs, const char *ctr_dir,
			struct rt_rootfs *out, struct clbsd_err *err)
{
	struct dir_meta m;
	if (dir_meta_read(ctr_dir, &m, err) < 0)
		return -err->code;
	dir_fill(out, m.overlay, image_rootfs, ctr_dir);
	dir_meta_release(&m);
	return 0;
}

static int64_t dir_usage(struct storage *st, const char *ctr_dir)
{
	autofree char *upper = xasprintf("%s/upper", ctr_dir);
	if (fs_is_dir(upper))
		return fs_du(upper);
	autofree char *copy = xasprintf("%s/fs", ctr_dir);
	return fs_du(copy);
}

/* ---- by name ---- */

static char *image_rootfs(const struct storage *st, const char *id)
{
	return xasprintf("%s/images/%s/rootfs", st->root, id);
}

/*
 * The image store already keeps <root>/images/<id>/rootfs; a tree from
 * elsewhere is copied there (and marked, so image_remove knows it is ours).
 */
static int d_image_prepare(struct storage *st, const char *id, const char *rootfs,
			   struct clbsd_err *err)
{
	if (storage_check_image_id(id, err) < 0)
		return -err->code;
	autofree char *want = image_rootfs(st, id);
	if (fs_is_dir(want))
		return 0;
	if (!fs_path_is_clean_abs(rootfs) || !fs_is_dir(rootfs))
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"image %s: rootfs %s is not an absolute path to a directory", id,
			rootfs ? rootfs : "(null)");
	autofree char *dir = xasprintf("%s/images/%s", st->root, id);
	autofree char *tmp = xasprintf("%s/.rootfs.tmp", dir);
	autofree char *mark = xasprintf("%s/.storage-prepared", dir);
	struct clbsd_err ignore;
	fs_rm_rf(tmp, &ignore);
	int r = fs_mkdir_p(dir, 0755, err);
	if (r == 0)
		r = sys_copy_tree(rootfs, tmp, err);
	if (r == 0)
		r = fs_write_atomic(mark, "", 0, 0600, err);
	if (r == 0 && rename(tmp, want) < 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rename %s", tmp);
	if (r < 0) {
		fs_rm_rf(tmp, &ignore);
		return clbsd_err_prefix(err, "prepare image %s", id);
	}
	return 0;
}

static int d_image_remove(struct storage *st, const char *id, struct clbsd_err *err)
{
	if (storage_check_image_id(id, err) < 0)
		return -err->code;
	autofree char *dir = xasprintf("%s/images/%s", st->root, id);
	autofree char *mark = xasprintf("%s/.storage-prepared", dir);
	autofree char *cdir = xasprintf("%s/containers", st->root);
	DIR *d = opendir(cdir);
	struct dirent *de;
	char *user = NULL;
	while (d && !user && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		autofree char *c = xasprintf("%s/%s", cdir, de->d_name);
		struct dir_meta m;
		struct clbsd_err ignore;
		if (dir_meta_read(c, &m, &ignore) == 0 && m.image && strcmp(m.image, id) == 0)
			user = xstrdup(de->d_name);
		dir_meta_release(&m);
	}
	if (d)
		closedir(d);
	if (user) {
		int r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					 "remove image %s: container %s uses it", id, user);
		free(user);
		return r;
	}
	/* Only what image_prepare copied; the image store removes its own trees. */
	if (fs_exists(mark) && fs_rm_rf(dir, err) < 0)
		return clbsd_err_prefix(err, "remove image %s", id);
	return 0;
}

static int d_ctr_set_props(struct storage *st, const char *name, const struct storage_props *props,
			   struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || dir_props_none(props, err) < 0)
		return -err->code;
	if (!props || !props->spec_hash)
		return 0;
	autofree char *dir = storage_ctr_dir(st, name);
	struct dir_meta m;
	if (dir_meta_read(dir, &m, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	int r = dir_meta_write(dir, m.overlay, m.lower, m.image,
			       *props->spec_hash ? props->spec_hash : NULL, err);
	dir_meta_release(&m);
	return r;
}

static int d_ctr_remove(struct storage *st, const char *name, bool volumes, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *vols = xasprintf("%s/volumes/%s", st->root, name);
	if (fs_rm_rf(dir, err) < 0 || (volumes && fs_rm_rf(vols, err) < 0))
		return clbsd_err_prefix(err, "remove container %s", name);
	return 0;
}

static int d_ctr_aside(struct storage *st, const char *name, int how, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *undo = xasprintf("%s/undo", st->root);
	autofree char *aside = xasprintf("%s/%s", undo, name);
	if (how == STORAGE_ASIDE_DROP) {
		if (fs_rm_rf(aside, err) < 0)
			return clbsd_err_prefix(err, "drop the set-aside copy of %s", name);
		return 0;
	}
	if (how == STORAGE_ASIDE_RESTORE) {
		if (!fs_exists(aside))
			return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
						"container %s has nothing set aside to go back to",
						name);
		if (fs_exists(dir))
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
						"restore %s: %s still exists", name, dir);
		if (rename(aside, dir) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rename %s to %s", aside,
					     dir);
		return 0;
	}
	if (fs_mkdir_p(undo, 0700, err) < 0 || fs_rm_rf(aside, err) < 0)
		return clbsd_err_prefix(err, "set %s aside", name);
	if (rename(dir, aside) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rename %s to %s", dir, aside);
	return 0;
}

static int d_volume_ensure(struct storage *st, const char *ctr, const char *vol,
			   const struct storage_props *props, char **path, struct clbsd_err *err)
{
	if (storage_check_name("container", ctr, err) < 0 ||
	    storage_check_name("volume", vol, err) < 0 || dir_props_none(props, err) < 0)
		return -err->code;
	/*
	 * volumes/ and volumes/<ctr> are root's alone: a volume holds what the
	 * container's root made, a setuid shell say, which another local user
	 * must not reach. The volume itself keeps 0755, as the container sees it.
	 */
	autofree char *parent = xasprintf("%s/volumes/%s", st->root, ctr);
	autofree char *p = xasprintf("%s/%s", parent, vol);
	if (fs_mkdir_p(parent, 0700, err) < 0 || fs_mkdir_p(p, 0755, err) < 0)
		return clbsd_err_prefix(err, "volume %s of container %s", vol, ctr);
	*path = steal_ptr(&p);
	return 0;
}

static int d_volume_remove(struct storage *st, const char *ctr, const char *vol,
			   struct clbsd_err *err)
{
	if (storage_check_name("container", ctr, err) < 0 ||
	    storage_check_name("volume", vol, err) < 0)
		return -err->code;
	autofree char *p = xasprintf("%s/volumes/%s/%s", st->root, ctr, vol);
	if (fs_rm_rf(p, err) < 0)
		return clbsd_err_prefix(err, "remove volume %s of container %s", vol, ctr);
	return 0;
}

static const struct storage_ops dir_ops = {
	.name = "dir",
	.create = dir_create,
	.describe = dir_describe,
	.remove = dir_remove,
	.usage = dir_usage,
	.image_prepare = d_image_prepare,
	.image_remove = d_image_remove,
	.ctr_set_props = d_ctr_set_props,
	.ctr_aside = d_ctr_aside,
	.ctr_remove = d_ctr_remove,
	.volume_ensure = d_volume_ensure,
	.volume_remove = d_volume_remove,
	.snapshot = dir_snapshot,
	.snapshot_list = dir_snapshot_list,
	.snapshot_destroy = dir_snapshot_destroy,
	.rollback = dir_rollback,
	.clone = dir_clone,
	.send = dir_send,
	.receive = dir_receive,
	.receive_undo = dir_receive_undo,
	.ctr_mount = dir_ctr_mount,
};

int storage_dir_open(const char *root, struct storage *out, struct clbsd_err *err)
{
	/*
	 * Made here, 0700, before anything else can make them with a looser
	 * mode (a clone or a receive makes volumes/<ctr> on its way).
	 */
	static const char *const subs[] = {"tmp", "containers", "volumes"};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		autofree char *p = xasprintf("%s/%s", root, subs[i]);
		if (fs_mkdir_p(p, 0700, err) < 0)
			return clbsd_err_prefix(err, "storage root %s", root);
	}
	autofree char *tmp = xasprintf("%s/tmp", root);
	/* Receives a crash cut short (one daemon per root: none runs now). */
	DIR *dh = opendir(tmp);
	struct dirent *de;
	while (dh && (de = readdir(dh))) {
		if (strncmp(de->d_name, ".recv-", 6) != 0)
			continue;
		autofree char *p = xasprintf("%s/%s", tmp, de->d_name);
		struct clbsd_err e2;
		fs_rm_rf(p, &e2);
	}
	if (dh)
		closedir(dh);
	memset(out, 0, sizeof(*out));
	out->ops = &dir_ops;
	out->root = xstrdup(root);
	out->have_overlay = getenv("CLBSD_NO_OVERLAY") == NULL && probe_overlay(root);
	return 0;
}
