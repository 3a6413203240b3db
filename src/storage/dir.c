/*
 * The dir storage driver: a container's root file system is an overlay of
 * the image rootfs (lower, shared, never written) and a per-container upper
 * directory. Where overlayfs is unavailable (some file systems refuse to be an
 * upper layer) the image rootfs is copied instead: slower and bigger, but the
 * container sees the same thing. The overlay itself is mounted by the runtime
 * inside the container's mount namespace, so the host never holds it.
 */
#include "driver.h"
#include "util/util.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0)
			_exit(1);
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(1);
		autofree char *opts =
			xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
		_exit(mount("overlay", merged, "overlay", 0, opts) == 0 ? 0 : 1);
	}
	int status = 0;
	bool ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0;
	fs_rm_rf(dir, &err);
	return ok;
}

static void fill(struct rt_rootfs *out, bool overlay, const char *image_rootfs,
		 const char *ctr_dir)
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

static int dir_remove(struct storage *st, const char *ctr_dir, struct clbsd_err *err)
{
	static const char *const parts[] = {"upper", "work", "fs", "rootfs"};
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
	fill(&r, st->have_overlay, image_rootfs, ctr_dir);
	int ret = fs_mkdir_p(r.target, 0755, err);
	if (ret == 0 && r.upper)
		ret = fs_mkdir_p(r.upper, 0755, err);
	if (ret == 0 && r.work)
		ret = fs_mkdir_p(r.work, 0700, err);
	if (ret == 0 && !r.upper)
		ret = fs_copy_tree(image_rootfs, r.lower, err);
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
	autofree char *upper = xasprintf("%s/upper", ctr_dir);
	autofree char *copy = xasprintf("%s/fs", ctr_dir);
	if (fs_is_dir(upper))
		fill(out, true, image_rootfs, ctr_dir);
	else if (fs_is_dir(copy))
		fill(out, false, image_rootfs, ctr_dir);
	else
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOENT,
					"container storage in %s is missing (neither upper/ nor fs/)",
					ctr_dir);
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

static const struct storage_ops dir_ops = {
	.name = "dir",
	.create = dir_create,
	.describe = dir_describe,
	.remove = dir_remove,
	.usage = dir_usage,
};

int storage_dir_open(const char *root, struct storage *out, struct clbsd_err *err)
{
	autofree char *tmp = xasprintf("%s/tmp", root);
	if (fs_mkdir_p(tmp, 0700, err) < 0)
		return clbsd_err_prefix(err, "storage root %s", root);
	memset(out, 0, sizeof(*out));
	out->ops = &dir_ops;
	out->root = xstrdup(root);
	out->have_overlay = getenv("CLBSD_NO_OVERLAY") == NULL && probe_overlay(root);
	return 0;
}
