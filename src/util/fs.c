#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <unistd.h>

int fs_read_file(const char *path, char **out, size_t *len, struct clbsd_err *err)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL,
				     errno, "read %s", path);
	struct buf b = BUF_INIT;
	for (;;) {
		buf_grow(&b, 65536);
		ssize_t r = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			buf_release(&b);
			return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "read %s", path);
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
	}
	b.data[b.len] = '\0';
	*out = buf_detach(&b, len);
	return 0;
}

static int write_replace(const char *path, const void *data, size_t len, mode_t mode, bool durable,
			 struct clbsd_err *err)
{
	char rnd[17];
	random_hex(rnd, 8);
	autofree char *tmp = xasprintf("%s.tmp.%s", path, rnd);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", tmp);
	int r = write_all(fd, data, len);
	if (r == 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, r, "write %s", path);
	}
	if (!durable)
		return 0;
	/* Make the rename durable too. */
	autofree char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		autoclose int dfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0)
			fsync(dfd);
	}
	return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		    struct clbsd_err *err)
{
	return write_replace(path, data, len, mode, true, err);
}

int fs_replace(const char *path, const void *data, size_t len, mode_t mode, struct clbsd_err *err)
{
	return write_replace(path, data, len, mode, false, err);
}

int fs_write_str(const char *path, const char *s, struct clbsd_err *err)
{
	autoclose int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL,
				     errno, "open %s", path);
	ssize_t w = write(fd, s, strlen(s));
	if (w < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "write \"%s\" to %s", s, path);
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, struct clbsd_err *err)
{
	autofree char *p = xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	/* Usually the parents exist: one mkdir instead of one per component. */
	if (mkdir(p, mode) == 0)
		return 0;
	if (errno == EEXIST) {
		if (!fs_is_dir(p))
			return clbsd_err_set(err, CLBSD_E_CONFLICT, ENOTDIR, "mkdir %s", p);
		return 0;
	}
	if (errno != ENOENT)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mkdir %s", p);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mkdir %s", p);
	if (!fs_is_dir(p))
		return clbsd_err_set(err, CLBSD_E_CONFLICT, ENOTDIR, "mkdir %s", p);
	return 0;
}

/*
 * A tree to remove may nest directories deeper than a recursion should go
 * (a container's files: `mkdir d; cd d` 100,000 times), and each level
 * holds a directory stream (an fd and its buffer) and its path: such a tree
 * took every fd of the daemon and hundreds of MB, and could not be removed.
 * So a directory RM_DEPTH levels down is moved up into the tree's root
 * under a name of its own, and the root is read again until a pass moved
 * nothing: every walk stays at most RM_DEPTH deep.
 */
#define RM_DEPTH 128

struct rm_walk {
	dev_t dev;	/* the tree's file system: a mount below is refused */
	int rootfd;	/* the tree's root while it is read: where deep directories go */
	unsigned moved; /* directories moved there so far */
};

/* Move the directory name of pfd into the tree's root; 0 when it moved. */
static int rm_move_up(struct rm_walk *w, int pfd, const char *name)
{
	for (int tries = 0; tries < 64; tries++) {
		char to[48];
		snprintf(to, sizeof(to), ".clbsd-rm-%u", w->moved++);
		if (renameat2(pfd, name, w->rootfd, to, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EINVAL && faccessat(w->rootfd, to, F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
		    errno == ENOENT && renameat(pfd, name, w->rootfd, to) == 0)
			return 0; /* a file system without RENAME_NOREPLACE (FUSE) */
		if (errno != EEXIST && errno != ENOTEMPTY)
			return -errno;
	}
	return -EEXIST;
}

/* Remove name below pfd, and everything in it; keep: empty the directory only. */
static int rm_at(struct rm_walk *w, int pfd, const char *name, int depth, bool keep,
		 struct clbsd_err *err, const char *path)
{
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "unlink %s", path);
		return 0;
	}
	if (st.st_dev != w->dev)
		return clbsd_err_set(err, CLBSD_E_CONFLICT, EBUSY,
				     "remove %s: a file system is mounted there", path);
	if (depth >= RM_DEPTH) {
		int e = rm_move_up(w, pfd, name);
		return e == 0 ? 0
			      : clbsd_err_set(err, CLBSD_E_INTERNAL, -e,
					      "move %s up the tree to remove it", path);
	}
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", path);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "opendir %s", path);
	}
	if (depth == 0)
		w->rootfd = dirfd(d);
	int r = 0;
	unsigned before;
	do {
		before = w->moved;
		rewinddir(d);
		struct dirent *de;
		while (r == 0 && (de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			autofree char *sub = xasprintf("%s/%s", path, de->d_name);
			r = rm_at(w, dirfd(d), de->d_name, depth + 1, false, err, sub);
		}
		/* The root again, for what deeper levels moved into it meanwhile. */
	} while (r == 0 && depth == 0 && w->moved != before);
	if (depth == 0)
		w->rootfd = -1;
	closedir(d);
	if (r < 0 || keep)
		return r;
	if (unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rmdir %s", path);
	return 0;
}

int fs_rm_rf(const char *path, struct clbsd_err *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT
			       ? 0
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", path);
	struct rm_walk w = {.dev = st.st_dev, .rootfd = -1};
	return rm_at(&w, AT_FDCWD, path, 0, false, err, path);
}

int fs_empty_dir(const char *path, struct clbsd_err *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return clbsd_err_set(err, CLBSD_E_CONFLICT, ENOTDIR, "empty %s", path);
	struct rm_walk w = {.dev = st.st_dev, .rootfd = -1};
	return rm_at(&w, AT_FDCWD, path, 0, true, err, path);
}

int fs_open_reg_at(int dfd, const char *name, struct stat *st)
{
	/*
	 * O_PATH opens nothing: a FIFO does not wait for a writer, a device's
	 * driver is not called. Only what fstat says is a regular file is
	 * opened for reading, and that same inode, through /proc/self/fd.
	 */
	autoclose int pfd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	struct stat ps;
	if (fstat(pfd, &ps) < 0)
		return -errno;
	if (!S_ISREG(ps.st_mode))
		return -EINVAL;
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	/* O_NONBLOCK: a file lease held by the tree's owner makes the open fail, not wait. */
	int fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || st->st_dev != ps.st_dev || st->st_ino != ps.st_ino) {
		close(fd);
		return -EIO;
	}
	return fd;
}

int fs_tree_check_depth(int depth, const char *path, struct clbsd_err *err)
{
	size_t len = strlen(path);
	if (depth < FS_TREE_MAX_DEPTH && len <= FS_TREE_MAX_PATH)
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, ELOOP,
				"the tree nests too deep (more than %d directories, or a path "
				"longer than %d bytes) at %.120s%s",
				FS_TREE_MAX_DEPTH, FS_TREE_MAX_PATH, path, len > 120 ? "..." : "");
}

int fs_left_out(const char *subsys, const char *path, const char *doing, const char *whole, int e)
{
	if (e == ENOENT)
		log_debug(subsys, NULL, "%s was removed while %s", path, doing);
	else
		log_warn(subsys, NULL, "%s changed while %s (%s); left out of %s", path, doing,
			 e == EINVAL ? "not a regular file any more" : strerror(e), whole);
	return 0;
}

bool fs_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

bool fs_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool fs_path_is_clean_abs(const char *path)
{
	if (!path || path[0] != '/')
		return false;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p = e;
	}
	return true;
}

int fs_safe_join(const char *root, const char *rel, char **out, struct clbsd_err *err)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, root);
	while (b.len > 1 && b.data[b.len - 1] == '/')
		b.data[--b.len] = '\0';
	const char *p = rel;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			buf_release(&b);
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"path \"%s\" leaves its root with \"..\"", rel);
		}
		if (!(n == 1 && p[0] == '.')) {
			if (b.len == 0 || b.data[b.len - 1] != '/')
				buf_addc(&b, '/');
			buf_add(&b, p, n);
		}
		p = e;
	}
	*out = buf_detach(&b, NULL);
	return 0;
}

static int64_t du_at(int pfd, const char *name, dev_t dev)
{
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? (int64_t)st.st_blocks * 512 : 0;
	if (st.st_dev != dev)
		return 0;
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	int64_t total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		total += du_at(dirfd(d), de->d_name, dev);
	}
	closedir(d);
	return total;
}

int64_t fs_du(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	return du_at(AT_FDCWD, path, st.st_dev);
}

/*
 * ---- reading a file a container or an image controls ----
 *
 * Every component is resolved by the kernel as if `rootfd` were "/":
 * absolute symlinks and ".." stop at the root (RESOLVE_IN_ROOT), and
 * /proc-style magic links are refused (RESOLVE_NO_MAGICLINKS). The file is
 * first opened O_PATH, which opens nothing (no FIFO wait, no device open
 * with its side effects: a watchdog, a tape rewind); only when fstat says it
 * is a regular file is that same inode reopened for reading, through
 * /proc/self/fd, with O_NONBLOCK. A read of a regular file on a local file
 * system cannot wait for anyone, so the caller may do this on the event loop.
 */
int fs_open_path_in_root(int rootfd, const char *rel, int flags, struct clbsd_err *err)
{
	while (*rel == '/')
		rel++;
	struct open_how how = {
		.flags = (uint64_t)(O_PATH | O_CLOEXEC | (flags & (O_DIRECTORY | O_NOFOLLOW))),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	/*
	 * EAGAIN: a rename in the tree raced the walk. The tree's owner can keep
	 * renaming, so the retries are bounded: it only makes its own lookup fail.
	 */
	for (int tries = 0;; tries++) {
		long fd = syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if ((errno == EINTR || errno == EAGAIN) && tries < 32)
			continue;
		if (errno == ENOSYS || errno == E2BIG)
			/* Never fall back to a plain open: that would follow the tree's
			 * symlinks on the host. */
			return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOSYS,
						"read /%s safely: this kernel has no openat2 "
						"(Linux 5.6 or later is needed)",
						rel);
		if (errno == ENOENT || errno == ENOTDIR)
			return clbsd_err_set(err, CLBSD_E_NOTFOUND, errno, "/%s", rel);
		if (errno == ELOOP)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, ELOOP,
						"/%s: too many symlinks, or a link into /proc",
						rel);
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "/%s", rel);
	}
}

static const char *file_kind(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISLNK(m))
		return "a symlink";
	return "not a regular file";
}

int fs_open_in_root(int rootfd, const char *rel, size_t max, struct clbsd_err *err)
{
	autoclose int pfd = fs_open_path_in_root(rootfd, rel, 0, err);
	if (pfd < 0)
		return pfd;
	while (*rel == '/')
		rel++;
	struct stat st;
	if (fstat(pfd, &st) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat /%s", rel);
	if (!S_ISREG(st.st_mode))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"/%s is %s; only a regular file is read", rel,
					file_kind(st.st_mode));
	if ((uint64_t)st.st_size > max)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EFBIG,
					"/%s is %lld bytes; at most %zu are read", rel,
					(long long)st.st_size, max);
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	int fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "reopen /%s (is /proc mounted?)",
				     rel);
	struct stat st2;
	if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
		close(fd);
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "reopen /%s: got another file",
					rel);
	}
	return fd;
}

int fs_read_in_root(int rootfd, const char *rel, size_t max, char **out, size_t *len,
		    struct clbsd_err *err)
{
	autoclose int fd = fs_open_in_root(rootfd, rel, max, err);
	if (fd < 0)
		return fd;
	while (*rel == '/')
		rel++;
	struct buf b = BUF_INIT;
	for (;;) {
		/* One byte beyond the cap tells a file that grew after fstat. */
		buf_grow(&b, 65536);
		size_t room = b.cap - b.len - 1;
		if (room > max + 1 - b.len)
			room = max + 1 - b.len;
		ssize_t r = read(fd, b.data + b.len, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			buf_release(&b);
			return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "read /%s", rel);
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
		if (b.len > max) {
			buf_release(&b);
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EFBIG,
						"/%s is more than %zu bytes", rel, max);
		}
	}
	b.data[b.len] = '\0';
	*out = buf_detach(&b, len);
	return 0;
}

int fs_read_in_rootdir(const char *root, const char *rel, size_t max, char **out, size_t *len,
		       struct clbsd_err *err)
{
	autoclose int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL,
				     errno, "open %s", root);
	return fs_read_in_root(rootfd, rel, max, out, len, err);
}
