/*
 * The copy of a tree that someone else may be writing meanwhile, on top of
 * the platform's file clone and copy (sys.h). Portable: it uses only POSIX
 * *at() calls and sys.h.
 */
#include "sys/sys.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int changed(const char *path, int e)
{
	return fs_left_out("copy", path, "the tree was copied", "the copy", e);
}

/* Copy the regular file open at `in` (whose fstat is st) to dname in dfd. */
static int copy_file(int in, int dfd, const char *dname, const struct stat *st,
		     struct clbsd_err *err, const char *path)
{
	autoclose int out =
		openat(dfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create copy of %s", path);
	/*
	 * A reflink shares the blocks until either side writes (btrfs, XFS,
	 * bcachefs): a copy of a tree costs its metadata only. Elsewhere the
	 * clone fails at once and the data is copied.
	 */
	if (st->st_size == 0 || sys_file_clone(in, out) < 0) {
		const char *what;
		int r = sys_file_copy(in, out, st->st_size, &what);
		if (r < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "%s %s", what, path);
	}
	if (fchown(out, st->st_uid, st->st_gid) < 0 || fchmod(out, st->st_mode & 07777) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "set owner of copy of %s", path);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	futimens(out, ts);
	return 0;
}

/*
 * The tree being copied may be written meanwhile by someone the daemon does
 * not trust (a running container's files, its volumes): between the stat of
 * a name and its open, a regular file can become a FIFO (an open would wait
 * forever) and a directory a symlink (a path through it would reach the
 * host). So every directory is walked by its fd, nothing is opened by a
 * path, a regular file is opened only as one (fs_open_reg_at) and copied
 * as its open fd's fstat says, a directory is opened O_NOFOLLOW|O_DIRECTORY,
 * FIFOs and devices are made again from the stat, never opened, and an
 * entry that changed type or vanished in between is left out (a warning),
 * not an error: the tree's owner only changes what its own copy holds.
 * Depth 0 is the tree's root, which must be there. The tree's owner can
 * nest directories as deep as it likes: past fs_tree_check_depth() the copy
 * fails, before the recursion runs out of stack, fds (two per level) or
 * memory (each level holds its path).
 */
static int copy_at(int sfd, const char *sname, int dfd, const char *dname, const char *path,
		   int depth, struct clbsd_err *err)
{
	bool top = depth == 0;
	struct stat st;
	if (fstatat(sfd, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return !top && errno == ENOENT
			       ? changed(path, ENOENT)
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", path);
	if (S_ISREG(st.st_mode)) {
		autoclose int in = fs_open_reg_at(sfd, sname, &st);
		if (in < 0)
			return !top && (in == -ENOENT || in == -EINVAL || in == -ELOOP ||
					in == -EWOULDBLOCK)
				       ? changed(path, -in)
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, -in, "open %s", path);
		return copy_file(in, dfd, dname, &st, err, path);
	}
	if (S_ISLNK(st.st_mode)) {
		/* Not on the stack: copy_at() recurses once per level. */
		autofree char *target = xmalloc(PATH_MAX);
		ssize_t n = readlinkat(sfd, sname, target, PATH_MAX - 1);
		if (n < 0)
			return !top && (errno == ENOENT || errno == EINVAL)
				       ? changed(path, errno)
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "readlink %s",
						       path);
		target[n] = '\0';
		if (symlinkat(target, dfd, dname) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "symlink %s", path);
		fchownat(dfd, dname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (mknodat(dfd, dname, st.st_mode, st.st_rdev) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mknod %s", path);
		fchownat(dfd, dname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	if (fs_tree_check_depth(depth, path, err) < 0)
		return -err->code;
	int in = openat(sfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (in < 0)
		return !top && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			       ? changed(path, errno)
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", path);
	if (fstat(in, &st) < 0) {
		int e = errno;
		close(in);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "stat %s", path);
	}
	if (mkdirat(dfd, dname, 0700) < 0) {
		int e = errno;
		close(in);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "mkdir copy of %s", path);
	}
	autoclose int out = openat(dfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0) {
		close(in);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open copy of %s", path);
	}
	DIR *d = fdopendir(in);
	if (!d) {
		close(in);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "opendir %s", path);
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		autofree char *sub = xasprintf("%s/%s", path, de->d_name);
		r = copy_at(dirfd(d), de->d_name, out, de->d_name, sub, depth + 1, err);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r < 0)
		return r;
	if (fchown(out, st.st_uid, st.st_gid) < 0 || fchmod(out, st.st_mode & 07777) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "set owner of copy of %s", path);
	struct timespec ts[2] = {st.st_atim, st.st_mtim};
	futimens(out, ts);
	return 0;
}

int sys_copy_tree(const char *src, const char *dst, struct clbsd_err *err)
{
	if (src[0] != '/' || dst[0] != '/')
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"copy %s to %s: paths must be absolute", src, dst);
	autofree char *ddir = xstrdup(dst);
	char *db = strrchr(ddir, '/');
	*db = '\0';
	autoclose int dfd = open(*ddir ? ddir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", *ddir ? ddir : "/");
	return copy_at(AT_FDCWD, src, dfd, db + 1, src, 0, err);
}
