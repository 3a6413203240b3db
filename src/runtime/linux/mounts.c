/*
 * The container's file system view, built by its init inside a fresh mount
 * namespace before pivot_root: the rootfs, the volumes, a minimal /dev, /proc
 * with the usual masked and read-only paths, and a read-only /sys. Everything
 * is mounted in the container's own namespace, so nothing is left on the host
 * when its last process exits.
 *
 * Paths inside the rootfs come from an image and may contain hostile
 * symlinks. Every mount point is resolved with openat2(RESOLVE_IN_ROOT), so a
 * symlink can never lead out of the rootfs, and the mount goes onto the
 * resolved fd (/proc/self/fd/N), not onto a path that could be swapped. Where
 * openat2 is missing (Linux < 5.6) any symlink on the way is refused instead.
 *
 * Device nodes: the container keeps CAP_MKNOD (Docker's default set), but
 * every file system it can write to is mounted nodev, volumes and a copied
 * rootfs recursively (mount_setattr(AT_RECURSIVE)), so a node it makes, or
 * one the host has on a mount below a volume's source, cannot be opened.
 * The only usable nodes are the host's null, zero, full, random, urandom
 * and tty bind-mounted into /dev, and its own devpts; the cgroup device
 * allow-list (cgroup.c) refuses every other node even where nodev is missing.
 */
#include "runtime/linux/rt_linux.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

enum mk {
	MK_NONE, /* must exist */
	MK_DIR,	 /* create missing directories, the last one too */
	MK_FILE, /* create missing directories, the last one as an empty file */
};

/* "/proc/self/fd/N" for mounting onto an fd. */
struct fdpath {
	char s[40];
};

static const char *fdp(struct fdpath *p, int fd)
{
	snprintf(p->s, sizeof(p->s), "/proc/self/fd/%d", fd);
	return p->s;
}

static bool have_openat2 = true;

/* Open rel (relative to rootfd, leading '/' allowed) without leaving rootfd. */
static int resolve(int rootfd, const char *rel, int flags)
{
	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	if (have_openat2) {
		struct open_how how = {
			.flags = (uint64_t)(flags | O_CLOEXEC),
			.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
		};
		long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd >= 0 ? (int)fd : -errno;
		have_openat2 = false;
	}
	/* Fallback: walk component by component and refuse every symlink. */
	int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	autofree char *copy = xstrdup(rel);
	char *save = NULL;
	char *c = strtok_r(copy, "/", &save);
	while (c) {
		char *next = strtok_r(NULL, "/", &save);
		int f = next ? O_PATH | O_DIRECTORY : flags;
		int fd = openat(cur, c, f | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(cur);
		if (fd < 0)
			return e == ELOOP ? -EXDEV : -e;
		struct stat st;
		if ((flags & O_PATH) && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
			close(fd);
			return -EXDEV;
		}
		cur = fd;
		c = next;
	}
	return cur;
}

/*
 * Resolve rel below rootfd, creating what is missing per `make`, and return
 * an O_PATH fd of the result. Creation uses mkdirat/O_EXCL on a single
 * component under an already resolved parent, which never follows a
 * symlink; a dangling symlink therefore fails instead of being followed.
 */
/*
 * Make the last component of rel in the directory dfd (a file or a
 * directory). 0 when made, 1 when something is there already, or -errno.
 */
static int make_leaf(int dfd, const char *name, enum mk make)
{
	int r;
	if (make == MK_FILE) {
		r = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (r >= 0)
			close(r);
	} else {
		r = mkdirat(dfd, name, 0755);
	}
	if (r >= 0)
		return 0;
	return errno == EEXIST ? 1 : -errno;
}

/*
 * Usually only the last component of rel is missing: make it in its parent.
 * Returns the resolved fd or -errno (made and resolved, or failed; *reported
 * when err says why), or -EAGAIN when the parent is missing too (the caller
 * walks from the top).
 */
static int make_in_parent(int rootfd, const char *rel, enum mk make, bool *reported,
			  struct clbsd_err *err)
{
	*reported = false;
	autofree char *parent = xstrdup(rel);
	size_t n = strlen(parent);
	while (n > 0 && parent[n - 1] == '/')
		parent[--n] = '\0';
	char *slash = strrchr(parent, '/');
	const char *leaf = slash ? slash + 1 : parent;
	if (!*leaf || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0)
		return -EAGAIN;
	autofree char *name = xstrdup(leaf);
	if (slash)
		*slash = '\0';
	int dfd = resolve(rootfd, slash ? parent : "/", O_PATH | O_DIRECTORY);
	if (dfd == -ENOENT)
		return -EAGAIN;
	if (dfd < 0)
		return dfd;
	int r = make_leaf(dfd, name, make);
	close(dfd);
	if (r < 0)
		return r;
	int fd = resolve(rootfd, rel, O_PATH);
	if (fd == -ENOENT && r == 1) {
		*reported = true;
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
					"%s is a dangling symlink in the rootfs", rel);
	}
	return fd;
}

static int open_in_root(int rootfd, const char *rel, enum mk make, struct clbsd_err *err)
{
	int fd = resolve(rootfd, rel, O_PATH);
	if (fd >= 0 || fd != -ENOENT || make == MK_NONE)
		goto done;
	bool reported;
	fd = make_in_parent(rootfd, rel, make, &reported, err);
	if (reported)
		return fd;
	if (fd != -EAGAIN)
		goto done;

	struct buf pre = BUF_INIT;
	const char *p = rel;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		const char *rest = e;
		while (*rest == '/')
			rest++;
		bool last = !*rest;
		autofree char *comp = xstrndup(p, (size_t)(e - p));
		size_t plen = pre.len;
		buf_addf(&pre, "/%s", comp);
		fd = resolve(rootfd, pre.data, O_PATH);
		if (fd == -ENOENT) {
			buf_grow(&pre, 1);
			pre.data[plen] = '\0';
			int dfd = resolve(rootfd, plen ? pre.data : "/", O_PATH | O_DIRECTORY);
			pre.data[plen] = '/';
			if (dfd < 0) {
				fd = dfd;
				break;
			}
			int r;
			if (last && make == MK_FILE) {
				r = openat(dfd, comp,
					   O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
					   0644);
				if (r >= 0)
					close(r);
			} else {
				r = mkdirat(dfd, comp, 0755);
			}
			int e2 = errno;
			close(dfd);
			if (r < 0 && e2 != EEXIST) {
				fd = -e2;
				break;
			}
			fd = resolve(rootfd, pre.data, O_PATH);
			if (fd == -ENOENT && r < 0) {
				/* It exists but does not resolve: a symlink to nowhere. */
				clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
						 "%s is a dangling symlink in the rootfs",
						 pre.data);
				buf_release(&pre);
				return -ENOENT;
			}
		}
		if (fd < 0)
			break;
		if (!last)
			close(fd);
		p = e;
	}
	buf_release(&pre);
done:
	if (fd >= 0)
		return fd;
	if (fd == -EXDEV || fd == -ELOOP)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, -fd,
					"%s: a symlink on the way leads out of the rootfs or "
					"cannot be followed safely",
					rel);
	return clbsd_err_set(err, fd == -ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL, fd,
			     "resolve in the rootfs");
}

/* The per-mount flags of the mount at path, as MS_* flags for a remount. */
static unsigned long mnt_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	return f;
}

/* Remount one mount (by path or /proc/self/fd/N) adding flags, keeping its others. */
static int remount_one(const char *path, unsigned long add)
{
	unsigned long f = mnt_flags(path) | add;
	return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | f, NULL) < 0 ? -errno : 0;
}

/*
 * Without mount_setattr() (Linux < 5.12): remount, one by one, every mount
 * of this namespace below the one whose root is fd. mountinfo lists parents
 * before children, so a mount found below is remounted after its parent.
 */
static int remount_below(int fd, unsigned long add, const char *what, struct clbsd_err *err)
{
	struct fdpath fp;
	char top[PATH_MAX];
	ssize_t n = readlink(fdp(&fp, fd), top, sizeof(top) - 1);
	if (n <= 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, n < 0 ? errno : EINVAL, "find %s",
				     what);
	top[n] = '\0';
	autofree char *mi = NULL;
	if (fs_read_file("/proc/self/mountinfo", &mi, NULL, err) < 0)
		return clbsd_err_prefix(err, "mounts below %s", what);
	for (char *save = NULL, *l = strtok_r(mi, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		/* id parent maj:min root MOUNT-POINT ...: the fifth field, octal escapes undone. */
		char *f = l;
		for (int i = 0; i < 4 && f; i++)
			f = strchr(f, ' ') ? strchr(f, ' ') + 1 : NULL;
		if (!f)
			continue;
		char mp[PATH_MAX];
		size_t o = 0;
		for (; *f && *f != ' ' && o < sizeof(mp) - 1; f++) {
			if (f[0] == '\\' && f[1] >= '0' && f[1] <= '3' && f[2] && f[3]) {
				mp[o++] =
					(char)((f[1] - '0') * 64 + (f[2] - '0') * 8 + (f[3] - '0'));
				f += 3;
			} else {
				mp[o++] = *f;
			}
		}
		mp[o] = '\0';
		if (strncmp(mp, top, (size_t)n) != 0 || mp[n] != '/')
			continue;
		int r = remount_one(mp, add);
		if (r < 0 && r != -ENOENT)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "remount %s below %s", mp,
					     what);
	}
	return 0;
}

/*
 * Add flags to the mount whose root is `fd`, keeping its other flags (a bind
 * remount resets what it does not name). `rec` covers every mount below it
 * too: a volume is a recursive bind, and a mount the host has below its
 * source (a tmpfs, say) must not keep device nodes or setuid working there.
 */
static int remount_fd(int fd, unsigned long add, bool rec, const char *what, struct clbsd_err *err)
{
	struct fdpath fp;
	if (rec) {
		struct mount_attr attr = {0};
		if (add & MS_RDONLY)
			attr.attr_set |= MOUNT_ATTR_RDONLY;
		if (add & MS_NODEV)
			attr.attr_set |= MOUNT_ATTR_NODEV;
		if (add & MS_NOSUID)
			attr.attr_set |= MOUNT_ATTR_NOSUID;
		if (add & MS_NOEXEC)
			attr.attr_set |= MOUNT_ATTR_NOEXEC;
		if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) == 0)
			return 0;
		if (errno != ENOSYS)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "remount %s%s", what,
					     (add & MS_RDONLY) ? " read-only" : "");
	}
	int r = remount_one(fdp(&fp, fd), add);
	if (r < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "remount %s%s", what,
				     (add & MS_RDONLY) ? " read-only" : "");
	return rec ? remount_below(fd, add, what, err) : 0;
}

/* Mount onto rel (resolved in rootfd) and return an fd of the new mount's root. */
static int mount_at(int rootfd, const char *rel, enum mk make, const char *src, const char *type,
		    unsigned long flags, const char *data, struct clbsd_err *err)
{
	autoclose int fd = open_in_root(rootfd, rel, make, err);
	if (fd < 0)
		return clbsd_err_prefix(err, "mount on %s", rel);
	struct fdpath fp;
	if (mount(src, fdp(&fp, fd), type, flags, data) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mount %s on %s",
				     src ? src : type, rel);
	/* Reopen: fd is the covered directory, the new mount sits on top of it. */
	int nfd = resolve(rootfd, rel, O_PATH);
	if (nfd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, nfd, "reopen %s", rel);
	return nfd;
}

/* Attach the detached mount mfd at rel (resolved in rootfd); an fd of its root. */
static int move_at(int rootfd, const char *rel, enum mk make, int mfd, struct clbsd_err *err)
{
	autoclose int fd = open_in_root(rootfd, rel, make, err);
	if (fd < 0)
		return clbsd_err_prefix(err, "mount on %s", rel);
	if (move_mount(mfd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "move an idmapped mount on %s",
				     rel);
	int nfd = resolve(rootfd, rel, O_PATH);
	if (nfd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, nfd, "reopen %s", rel);
	return nfd;
}

static int mount_rootfs(const struct rt_rootfs *r, const struct uns_mounts *premade,
			struct clbsd_err *err)
{
	if (premade) {
		/* Made with nodev on the host side (userns.c). */
		if (move_mount(premade->rootfs, "", AT_FDCWD, r->target, MOVE_MOUNT_F_EMPTY_PATH) <
		    0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
					     "move the idmapped rootfs on %s", r->target);
		return 0;
	}
	if (strcmp(r->mode, "overlay") == 0) {
		autofree char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", r->lower,
						r->upper, r->work);
		if (mount("overlay", r->target, "overlay", MS_NODEV, opts) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
					     "mount rootfs (overlay of %s) on %s", r->lower,
					     r->target);
		return 0;
	}
	if (mount(r->lower, r->target, NULL, MS_BIND | MS_REC, NULL) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mount rootfs %s on %s",
				     r->lower, r->target);
	autoclose int fd = open(r->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open rootfs %s", r->target);
	return remount_fd(fd, MS_NODEV, true, "rootfs", err);
}

static int mount_volumes(int rootfd, const struct rt_spec *spec, const struct uns_mounts *premade,
			 struct clbsd_err *err)
{
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct rt_mount *m = &spec->mounts[i];
		struct stat st;
		/* With a user namespace the source may be out of reach by now: its mount is at hand. */
		if ((premade ? fstat(premade->mounts[i], &st) : stat(m->source, &st)) < 0)
			return clbsd_err_set(err,
					     errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL,
					     errno, "volume %s: source", m->source);
		enum mk mk = S_ISDIR(st.st_mode) ? MK_DIR : MK_FILE;
		autoclose int fd = premade ? move_at(rootfd, m->dest, mk, premade->mounts[i], err)
					   : mount_at(rootfd, m->dest, mk, m->source, NULL,
						      MS_BIND | MS_REC, NULL, err);
		if (fd < 0)
			return clbsd_err_prefix(err, "volume %s", m->source);
		/* Recursive: the mounts below the source become nodev,nosuid too. */
		int rc = remount_fd(fd, MS_NOSUID | MS_NODEV | (m->readonly ? MS_RDONLY : 0), true,
				    m->dest, err);
		if (rc < 0)
			return clbsd_err_prefix(err, "volume %s", m->source);
	}
	return 0;
}

/*
 * The image's VOLUME paths that no volume covers (docs/cblockfile.md): a
 * directory where the rootfs has nothing, 0755 whatever the umask, made
 * as the volumes' mount points are (never through a symlink out of the
 * rootfs). What the image has at the path stays as it is.
 */
static int make_volume_dirs(int rootfd, const struct rt_spec *spec, struct clbsd_err *err)
{
	struct fdpath fp;
	for (size_t i = 0; spec->volume_dirs && spec->volume_dirs[i]; i++) {
		const char *p = spec->volume_dirs[i];
		int there = resolve(rootfd, p, O_PATH);
		if (there >= 0) {
			close(there);
			continue;
		}
		autoclose int fd = open_in_root(rootfd, p, MK_DIR, err);
		if (fd < 0)
			return clbsd_err_prefix(err, "the image's VOLUME %s", p);
		if (chmod(fdp(&fp, fd), 0755) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
					     "the image's VOLUME %s: chmod", p);
	}
	return 0;
}

static int mount_dev(int rootfd, struct clbsd_err *err)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const char *const links[][2] = {
		{"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"},
		{"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
		{"ptmx", "pts/ptmx"},
	};
	autoclose int dev = mount_at(rootfd, "/dev", MK_DIR, "tmpfs", "tmpfs",
				     MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=755,size=65536k", err);
	if (dev < 0)
		return dev;
	autoclose int devdir = resolve(rootfd, "/dev", O_DIRECTORY | O_RDONLY);
	if (devdir < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, devdir, "open /dev");
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		autofree char *host = xasprintf("/dev/%s", nodes[i]);
		autofree char *rel = xasprintf("/dev/%s", nodes[i]);
		/* The bind keeps the host devtmpfs mount's flags, so the node works under nodev. */
		autoclose int fd = mount_at(rootfd, rel, MK_FILE, host, NULL, MS_BIND, NULL, err);
		if (fd < 0)
			return fd;
		int rc = remount_fd(fd, MS_NOSUID | MS_NOEXEC, false, rel, err);
		if (rc < 0)
			return rc;
	}
	autoclose int pts =
		mount_at(rootfd, "/dev/pts", MK_DIR, "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
			 "newinstance,ptmxmode=0666,mode=0620,gid=5", err);
	if (pts < 0)
		return pts;
	autoclose int shm =
		mount_at(rootfd, "/dev/shm", MK_DIR, "shm", "tmpfs",
			 MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", err);
	if (shm < 0)
		return shm;
	autoclose int mq = mount_at(rootfd, "/dev/mqueue", MK_DIR, "mqueue", "mqueue",
				    MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (mq < 0)
		return mq;
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][1], devdir, links[i][0]) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "symlink /dev/%s",
					     links[i][0]);
	return 0;
}

/*
 * The PTY slave lives in the host's devpts, which the container does not
 * see, so ttyname() would fail inside. Bound over /dev/console (as runc
 * does), tty(1) names it and programs that want a terminal name find one.
 * This must happen before pivot_root, while the host devpts is reachable.
 */
static int mount_console(int rootfd, int slave, struct clbsd_err *err)
{
	/*
	 * By path, not through /proc/self/fd: the open file belongs to a mount
	 * of the namespace we were cloned from, and bind mounts need a mount
	 * of our own.
	 */
	char link[64], src[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", slave);
	ssize_t n = readlink(link, src, sizeof(src) - 1);
	if (n <= 0 || src[0] != '/')
		return clbsd_err_set(err, CLBSD_E_INTERNAL, n < 0 ? errno : EINVAL,
				     "find the terminal's path");
	src[n] = '\0';
	autoclose int fd = mount_at(rootfd, "/dev/console", MK_FILE, src, NULL, MS_BIND, NULL, err);
	return fd < 0 ? clbsd_err_prefix(err, "bind the terminal to /dev/console") : 0;
}

static int mount_sys(int rootfd, struct clbsd_err *err)
{
	struct clbsd_err e1;
	autoclose int fd = mount_at(rootfd, "/sys", MK_DIR, "sysfs", "sysfs",
				    MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL, &e1);
	if (fd >= 0)
		return 0;
	if (e1.code != EPERM && e1.code != EBUSY && e1.code != EACCES) {
		*err = e1;
		return -e1.code;
	}
	/* sysfs can be refused in a new network namespace: bind the host's, read-only throughout. */
	autoclose int bfd =
		mount_at(rootfd, "/sys", MK_DIR, "/sys", NULL, MS_BIND | MS_REC, NULL, err);
	if (bfd < 0)
		return bfd;
	return remount_fd(bfd, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, true, "/sys", err);
}

/* As Docker and runc: hide what leaks host information or state... */
static const char *const masked[] = {
	"/proc/acpi",	     "/proc/kcore",
	"/proc/keys",	     "/proc/latency_stats",
	"/proc/timer_list",  "/proc/timer_stats",
	"/proc/sched_debug", "/proc/scsi",
	"/sys/firmware",     "/sys/devices/virtual/powercap",
};
/* ...and keep kernel knobs read-only. */
static const char *const readonly[] = {
	"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static int mask_paths(int rootfd, struct clbsd_err *err)
{
	struct fdpath fp;
	for (size_t i = 0; i < ARRAY_SIZE(masked); i++) {
		autoclose int fd = resolve(rootfd, masked[i], O_PATH);
		if (fd == -ENOENT)
			continue;
		if (fd < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, fd, "mask %s", masked[i]);
		struct stat st;
		if (fstat(fd, &st) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mask %s", masked[i]);
		int r = S_ISDIR(st.st_mode) ? mount("tmpfs", fdp(&fp, fd), "tmpfs",
						    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
						    "size=0,mode=555")
					    : mount("/dev/null", fdp(&fp, fd), NULL, MS_BIND, NULL);
		if (r < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mask %s", masked[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(readonly); i++) {
		autoclose int fd = resolve(rootfd, readonly[i], O_PATH);
		if (fd == -ENOENT)
			continue;
		if (fd < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, fd, "read-only %s",
					     readonly[i]);
		if (mount(fdp(&fp, fd), fdp(&fp, fd), NULL, MS_BIND | MS_REC, NULL) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "bind %s", readonly[i]);
		autoclose int nfd = resolve(rootfd, readonly[i], O_PATH);
		if (nfd < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, nfd, "reopen %s", readonly[i]);
		int rc = remount_fd(nfd, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, true,
				    readonly[i], err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * The container's own devices (:devices): the host's node bound at its
 * path, as the default nodes are, so it works below the nodev /dev and in a
 * user namespace; the cgroup's allow-list (cgroup.c) lets it be opened.
 */
static int mount_devices(int rootfd, const struct rt_spec *spec, struct clbsd_err *err)
{
	for (size_t i = 0; i < spec->n_devices; i++) {
		const struct rt_device *d = &spec->devices[i];
		autoclose int fd =
			mount_at(rootfd, d->path, MK_FILE, d->source, NULL, MS_BIND, NULL, err);
		if (fd < 0)
			return clbsd_err_prefix(err, "device %s", d->path);
		int rc = remount_fd(fd, MS_NOSUID | MS_NOEXEC, false, d->path, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The kernel file systems every container gets: /proc (masked), /dev, /sys. */
static int mount_kernel_fs(int rootfd, struct clbsd_err *err)
{
	autoclose int proc = mount_at(rootfd, "/proc", MK_DIR, "proc", "proc",
				      MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (proc < 0)
		return proc;
	int rc;
	if ((rc = mount_dev(rootfd, err)) < 0 || (rc = mount_sys(rootfd, err)) < 0)
		return rc;
	return 0;
}

int mnt_stage(const char *dir, struct clbsd_err *err)
{
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=700,size=64k") < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mount the staging tmpfs on %s",
				     dir);
	autoclose int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", dir);
	int rc;
	if ((rc = mount_kernel_fs(fd, err)) < 0 || (rc = mask_paths(fd, err)) < 0)
		return clbsd_err_prefix(err, "staging");
	return 0;
}

/* Move the staged /proc, /dev and /sys (with everything below them) into the rootfs. */
static int move_staged(int rootfd, const char *stage, struct clbsd_err *err)
{
	static const char *const parts[] = {"/proc", "/dev", "/sys"};
	struct fdpath fp;
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		autoclose int fd = open_in_root(rootfd, parts[i], MK_DIR, err);
		if (fd < 0)
			return clbsd_err_prefix(err, "mount on %s", parts[i]);
		autofree char *src = xasprintf("%s%s", stage, parts[i]);
		if (mount(src, fdp(&fp, fd), NULL, MS_MOVE, NULL) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "move the staged %s",
					     parts[i]);
	}
	return 0;
}

/* A volume below /proc or /sys would cover a mask: mask again after the volumes. */
static bool volumes_touch_masks(const struct rt_spec *spec)
{
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const char *d = spec->mounts[i].dest;
		while (*d == '/')
			d++;
		if (strncmp(d, "proc", 4) == 0 || strncmp(d, "sys", 3) == 0)
			return true;
	}
	return false;
}

int mnt_setup_rootfs(const struct rt_spec *spec, int console, const char *stage,
		     const struct uns_mounts *premade, struct clbsd_err *err)
{
	const struct rt_rootfs *r = &spec->rootfs;
	int rc;

	/* Nothing done here may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "make / private");
	if ((rc = mount_rootfs(r, premade, err)) < 0)
		return rc;
	autoclose int rootfd = open(r->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open rootfs %s", r->target);
	/*
	 * Host paths were reached as host root's uid (owner of <root>); what is
	 * made in the rootfs from here on is made as the range's root, which
	 * the idmapped mounts can store (host root's uid has no mapping there).
	 */
	if (premade && (rc = uns_become_root(err)) < 0)
		return rc;

	if (stage)
		rc = move_staged(rootfd, stage, err);
	else
		rc = mount_kernel_fs(rootfd, err);
	if (rc < 0 || (console >= 0 && (rc = mount_console(rootfd, console, err)) < 0) ||
	    (rc = make_volume_dirs(rootfd, spec, err)) < 0 ||
	    (rc = mount_volumes(rootfd, spec, premade, err)) < 0)
		return rc;
	if ((rc = mount_devices(rootfd, spec, err)) < 0)
		return rc;
	if ((!stage || volumes_touch_masks(spec)) && (rc = mask_paths(rootfd, err)) < 0)
		return rc;
	if (r->readonly && (rc = remount_fd(rootfd, MS_RDONLY, false, "rootfs", err)) < 0)
		return rc;

	/*
	 * pivot_root(".", "."): the old root ends up stacked on the new one and
	 * is detached right away; no directory for it is needed in the rootfs.
	 */
	if (fchdir(rootfd) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "chdir %s", r->target);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "pivot_root %s", r->target);
	if (umount2(".", MNT_DETACH) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "detach the old root");
	if (chdir("/") < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "chdir /");
	return 0;
}
