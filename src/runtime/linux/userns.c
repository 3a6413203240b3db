/*
 * User namespaces (rt_spec.userns): the container's ids 0..count-1 are a
 * private range of host ids, so its root is an unprivileged host uid.
 *
 * Files. The image's rootfs, the container's upper layer and its named
 * volumes (rt_mount.idmap) keep the ids they have on disk (root-owned
 * files stay owned by 0); the container sees them through idmapped mounts
 * (mount_setattr MOUNT_ATTR_IDMAP), which shift host id X to base+X on the
 * way in and back on the way out. Nothing is chowned, so a container can
 * switch between a user namespace and the host's ids, be exported and
 * imported, and get a different range, without touching a file. A host
 * path bound in is not idmapped: its files keep their host owners, so host
 * root's files there are nobody's inside and the container cannot write
 * them; what it makes there belongs to its range on the host.
 *
 * Only the initial user namespace may idmap a mount of a file system it
 * owns, so the mounts are made here, by the helper (host root) that clones
 * the init, as detached mounts (open_tree(OPEN_TREE_CLONE), fsmount); the
 * init inherits their fds and moves them into its own mount namespace
 * (mnt_setup_rootfs). Overlayfs cannot be idmapped itself, but since 5.19 it
 * accepts idmapped layers: the lower layer and the directory holding upper
 * and work are idmapped, and the overlay is created over them with the
 * container root as its mounter (see make_overlay).
 *
 * Order in the helper (uns_enter): make the namespace (a throwaway child
 * holds it while the maps are written), build the mounts, then setns() into
 * it, so the clone that follows makes every other namespace owned by it:
 * sysfs, hostname, loopback and the container's own network need that.
 */
#include "runtime/linux/rt_linux.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

void uns_mounts_init(struct uns_mounts *m)
{
	memset(m, 0, sizeof(*m));
	m->rootfs = -1;
}

void uns_mounts_close(struct uns_mounts *m)
{
	if (m->rootfs >= 0)
		close(m->rootfs);
	for (size_t i = 0; i < m->n; i++)
		if (m->mounts[i] >= 0)
			close(m->mounts[i]);
	free(m->mounts);
	uns_mounts_init(m);
}

static int write_map(pid_t pid, const char *file, uint32_t base, uint32_t count)
{
	char path[64], line[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int n = snprintf(line, sizeof(line), "0 %u %u\n", base, count);
	autoclose int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, line, (size_t)n) != n)
		return -errno;
	return 0;
}

/*
 * A new user namespace with u's maps, as an fd. A child made with
 * CLONE_NEWUSER holds it while the maps are written by us (root in the
 * parent namespace, so setgroups() stays allowed inside), then is killed.
 * The child only pauses, so this is safe in a multi-threaded caller too.
 */
static int make_userns(const struct rt_userns *u, int *out, struct clbsd_err *err)
{
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL, NULL);
	if (pid < 0)
		return clbsd_err_set(
			err, errno == EPERM || errno == ENOSPC ? CLBSD_E_UNAVAIL : CLBSD_E_INTERNAL,
			errno, "create a user namespace");
	if (pid == 0) {
		for (;;)
			pause();
	}
	int rc = write_map(pid, "uid_map", u->uid, u->count);
	if (rc == 0)
		rc = write_map(pid, "gid_map", u->gid, u->count);
	int fd = -1;
	if (rc == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			rc = -errno;
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (rc < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, -rc,
				     "write the id maps of the user namespace (host ids %u-%u)",
				     u->uid, u->uid + u->count - 1);
	*out = fd;
	return 0;
}

/* What to call the file system at fd in an error. */
static const char *fs_name(int fd)
{
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return "its file system";
	if ((unsigned long)sf.f_type == FUSE_SUPER_MAGIC)
		return "a FUSE file system without idmap support (zfs-fuse has none)";
	return "its file system";
}

/*
 * A detached copy of the mount tree at path (rec: with the mounts below),
 * idmapped to usernsfd (-1: not idmapped), with `flags` (MOUNT_ATTR_*) set too.
 */
static int open_idmapped(const char *path, int usernsfd, bool rec, uint64_t flags, int *out,
			 struct clbsd_err *err)
{
	int fd = open_tree(AT_FDCWD, path,
			   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rec ? AT_RECURSIVE : 0));
	if (fd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL,
				     errno, "open %s for an idmapped mount", path);
	struct mount_attr attr = {.attr_set = (usernsfd >= 0 ? MOUNT_ATTR_IDMAP : 0) | flags,
				  .userns_fd = usernsfd >= 0 ? (uint64_t)usernsfd : 0};
	if (mount_setattr(fd, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0), &attr, sizeof(attr)) <
	    0) {
		int e = errno;
		const char *what = fs_name(fd);
		close(fd);
		return clbsd_err_set(
			err, e == EINVAL || e == EOPNOTSUPP ? CLBSD_E_UNAVAIL : CLBSD_E_INTERNAL, e,
			"idmapped mount of %s (%s)", path, what);
	}
	*out = fd;
	return 0;
}

/* Raise every permitted capability into the effective set (setfsuid() drops some). */
static int raise_caps(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	d[0].effective = d[0].permitted;
	d[1].effective = d[1].permitted;
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/*
 * The overlay rootfs over idmapped layers, as a detached mount. Overlayfs
 * does its own work (the work directory, copy-up) with its mounter's
 * credentials; a mounter with host root's fsuid would meet an idmapped
 * layer that has no mapping for it (EOVERFLOW: the overlay falls back to
 * read-only), so the overlay is created with the container root's ids as
 * fsuid/fsgid, keeping every capability.
 */
static int make_overlay(const struct rt_rootfs *r, const struct rt_userns *u, int usernsfd,
			int *out, struct clbsd_err *err)
{
	autofree char *updir = xstrdup(r->upper);
	autofree char *wkdir = xstrdup(r->work);
	autofree char *uparent = xstrdup(dirname(updir));
	const char *wparent = dirname(wkdir);
	if (strcmp(uparent, wparent) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EINVAL,
					"overlay upper %s and work %s are not in one directory, "
					"which an idmapped overlay needs",
					r->upper, r->work);
	autofree char *ubase = xstrdup(r->upper);
	autofree char *wbase = xstrdup(r->work);
	const char *uname = basename(ubase), *wname = basename(wbase);

	struct buf lowers = BUF_INIT;
	int *lfd = NULL;
	size_t nl = 0;
	int top = -1, fs = -1, rc = 0;
	/* Declared before the first goto: out: would free them uninitialised. */
	autofree char *upperdir = NULL, *workdir = NULL;
	autofree char *copy = xstrdup(r->lower);
	char *save = NULL;
	for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		lfd = xrealloc(lfd, (nl + 1) * sizeof(int));
		if ((rc = open_idmapped(p, usernsfd, false, 0, &lfd[nl], err)) < 0)
			goto out;
		buf_addf(&lowers, "%s/proc/self/fd/%d", nl ? ":" : "", lfd[nl]);
		nl++;
	}
	if ((rc = open_idmapped(uparent, usernsfd, false, 0, &top, err)) < 0)
		goto out;
	upperdir = xasprintf("/proc/self/fd/%d/%s", top, uname);
	workdir = xasprintf("/proc/self/fd/%d/%s", top, wname);
	fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "fsopen overlay");
		goto out;
	}
	if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lowers.data, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upperdir, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "workdir", workdir, 0) < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "configure the overlay of %s",
				   r->lower);
		goto out;
	}
	setfsgid(u->gid);
	setfsuid(u->uid);
	int cr = raise_caps();
	int e = 0;
	if (cr == 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		e = errno;
	setfsuid(0);
	setfsgid(0);
	if (cr < 0 || e) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, cr < 0 ? -cr : e,
				   "create the idmapped overlay of %s", r->lower);
		goto out;
	}
	int m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
	if (m < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "fsmount the overlay of %s",
				   r->lower);
		goto out;
	}
	*out = m;
out:
	for (size_t i = 0; i < nl; i++)
		close(lfd[i]);
	free(lfd);
	buf_release(&lowers);
	if (top >= 0)
		close(top);
	if (fs >= 0)
		close(fs);
	return rc;
}

int uns_make_mounts(const struct rt_spec *spec, int usernsfd, struct uns_mounts *out,
		    struct clbsd_err *err)
{
	struct uns_mounts m;
	uns_mounts_init(&m);
	int rc;
	const struct rt_rootfs *r = &spec->rootfs;
	if (strcmp(r->mode, "overlay") == 0)
		rc = make_overlay(r, &spec->userns, usernsfd, &m.rootfs, err);
	else
		rc = open_idmapped(r->lower, usernsfd, true, MOUNT_ATTR_NODEV, &m.rootfs, err);
	if (rc < 0) {
		clbsd_err_prefix(err, "rootfs");
		goto fail;
	}
	m.mounts = xcalloc(spec->n_mounts ? spec->n_mounts : 1, sizeof(int));
	for (size_t i = 0; i < spec->n_mounts; i++)
		m.mounts[i] = -1;
	m.n = spec->n_mounts;
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct rt_mount *v = &spec->mounts[i];
		uint64_t f = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
			     (v->readonly ? MOUNT_ATTR_RDONLY : 0);
		if ((rc = open_idmapped(v->source, v->idmap ? usernsfd : -1, true, f, &m.mounts[i],
					err)) < 0) {
			clbsd_err_prefix(err, "volume %s", v->source);
			goto fail;
		}
	}
	*out = m;
	return 0;
fail:
	uns_mounts_close(&m);
	return rc;
}

int uns_enter(const struct rt_spec *spec, struct uns_mounts *out, struct clbsd_err *err)
{
	autoclose int ns = -1;
	int rc = make_userns(&spec->userns, &ns, err);
	if (rc < 0)
		return rc;
	struct uns_mounts m;
	if ((rc = uns_make_mounts(spec, ns, &m, err)) < 0)
		return clbsd_err_prefix(err, "user namespace");
	if (setns(ns, CLONE_NEWUSER) < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "join the new user namespace");
		uns_mounts_close(&m);
		return rc;
	}
	*out = m;
	return 0;
}

int uns_become_root(struct clbsd_err *err)
{
	/*
	 * Until now the process had host root's ids (unmapped here). As the
	 * range's root it creates mount points and files through the idmapped
	 * mounts with ids they can store, and it holds none of the host's
	 * supplementary groups (root's group 0 would open host files).
	 */
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
				     "become root of the user namespace");
	return 0;
}

/* ---- does a file system take idmapped mounts? ---- */

#define PROBE_CACHE_MAX 64

static struct {
	dev_t dev;
	int rc; /* 0 or -errno */
	char why[CLBSD_ERR_MSG_MAX];
} probe_cache[PROBE_CACHE_MAX];
static size_t probe_n;
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static int probe_ns = -1; /* a user namespace kept for probing */

int uns_idmap_check(const char *path, struct clbsd_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL,
				     errno, "%s", path);
	pthread_mutex_lock(&probe_lock);
	for (size_t i = 0; i < probe_n; i++) {
		if (probe_cache[i].dev != st.st_dev)
			continue;
		int rc = probe_cache[i].rc;
		if (rc < 0)
			clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, -rc, "%s", probe_cache[i].why);
		pthread_mutex_unlock(&probe_lock);
		return rc;
	}
	int rc = 0;
	struct clbsd_err e;
	clbsd_err_init(&e);
	if (probe_ns < 0) {
		/* Any range will do: nothing runs in it. */
		struct rt_userns u = {.uid = 4294900000U, .gid = 4294900000U, .count = 1};
		rc = make_userns(&u, &probe_ns, &e);
	}
	int fd = -1;
	if (rc == 0)
		rc = open_idmapped(path, probe_ns, false, 0, &fd, &e);
	if (fd >= 0)
		close(fd);
	/* A failure to probe at all (no user namespaces) is not cached. */
	if (rc == 0 || e.kind == CLBSD_E_UNAVAIL) {
		size_t k =
			probe_n < PROBE_CACHE_MAX ? probe_n++ : (size_t)st.st_dev % PROBE_CACHE_MAX;
		probe_cache[k].dev = st.st_dev;
		probe_cache[k].rc = rc;
		snprintf(probe_cache[k].why, sizeof(probe_cache[k].why), "%s", e.msg);
	}
	pthread_mutex_unlock(&probe_lock);
	if (rc < 0)
		*err = e;
	return rc;
}
