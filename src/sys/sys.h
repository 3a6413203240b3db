/*
 * sys: the platform calls clbsd makes outside a driver, behind one seam.
 *
 * What a container runtime, a storage driver or a network driver does to the
 * host lives in its own ops table (runtime.h, storage.h, net.h). What is left
 * is a handful of host services the daemon, the shim and the storage code
 * need whatever the driver: watching files, asking who is at the other end of
 * a Unix socket, becoming the reaper of detached children, finding the
 * program's own executable, probing mounts, cloning a file's blocks, opening
 * a pseudo-terminal, giving memory back and waiting for signals on a
 * descriptor. They are declared here and implemented
 * once per platform, in src/sys/<platform>/ (the Makefile's PLATFORM picks the
 * folder); the portable code above them (sys/tree_copy.c) uses only this
 * header.
 *
 * Invariants:
 * - Nothing outside src/sys/<platform>/ includes a header for what is
 *   declared here (<sys/inotify.h>, <sys/prctl.h>, <sys/signalfd.h>,
 *   <linux/fs.h>, SO_PEERCRED, TIOCGPTPEER, /proc/self/exe, mountinfo and
 *   smaps). A port adds src/sys/<platform>/ and changes nothing else for
 *   these; each declaration below names its FreeBSD counterpart. Not behind
 *   the seam yet: openat2 (util/fs.c's *_in_root, image/oci.c) and reopening
 *   an O_PATH descriptor through /proc/self/fd.
 * - Every function is safe to call from any thread and keeps no global state
 *   apart from what its handle holds. None logs (but sys_copy_tree's one
 *   warning through fs_left_out): failures come back as a negative errno and,
 *   where the function takes one, a struct clbsd_err that says what failed on
 *   what.
 * - Descriptors made here are close-on-exec and, where they are polled,
 *   non-blocking.
 * - The shim links the library statically: each group sits in its own file
 *   so the linker keeps only what a program calls.
 */
#ifndef CLBSD_SYS_H
#define CLBSD_SYS_H

#include <clbsd/error.h>

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- file watching (Linux: inotify; FreeBSD: kqueue EVFILT_VNODE) ---- */

/*
 * One kernel queue of watches on files and directories; any number of
 * watches share it and its one pollable descriptor. Each watch has a
 * descriptor number (wd, >= 0) unique within its queue while it lives.
 */
struct sys_watch;

/* What an event says happened: bits of sys_watch_event.what. */
enum {
	/* An entry's content or attributes changed (written and closed, chmod). */
	SYS_WATCH_DATA = 1 << 0,
	/* An entry of the watched directory was created, removed or renamed. */
	SYS_WATCH_NAMES = 1 << 1,
	/*
	 * The watched object itself was deleted or moved (only with
	 * SYS_WATCH_ON_SELF). Its watch still exists: remove it.
	 */
	SYS_WATCH_SELF = 1 << 2,
	/* The kernel dropped the watch (its object is gone): do not remove it. */
	SYS_WATCH_DROPPED = 1 << 3,
	/* Events were lost (the queue overflowed); wd is -1. Assume anything changed. */
	SYS_WATCH_OVERFLOW = 1 << 4,
	/*
	 * Something below the watched directory changed but the platform cannot
	 * tell which entry (kqueue reports a directory's NOTE_WRITE with no
	 * name): treat it as a change of any entry. Never set on Linux.
	 */
	SYS_WATCH_UNNAMED = 1 << 5,
};

/* How to watch: flags of sys_watch_add(). */
enum {
	/* Refuse (ENOTDIR) a path that is not a directory. */
	SYS_WATCH_ONLYDIR = 1 << 0,
	/* Also report SYS_WATCH_SELF when the watched object is deleted or moved. */
	SYS_WATCH_ON_SELF = 1 << 1,
};

struct sys_watch_event {
	int wd;		  /* the watch; -1 with SYS_WATCH_OVERFLOW */
	unsigned what;	  /* SYS_WATCH_* */
	const char *name; /* the entry in a watched directory; NULL: the object itself */
};

/*
 * A new, empty queue in *out. UNAVAIL when the kernel refuses one (on Linux
 * the message names the sysctl to raise when the per-user limit is hit).
 */
int sys_watch_open(struct sys_watch **out, struct clbsd_err *err);
/* Closes the queue and with it every watch. NULL is ignored. */
void sys_watch_close(struct sys_watch *w);
/* The descriptor to poll for reading; sys_watch_read() drains it. */
int sys_watch_fd(const struct sys_watch *w);
/*
 * Watch `path` (flags SYS_WATCH_*). Returns the wd (>= 0) or a negative
 * errno: -ENOENT/-ENOTDIR when it is not there (or not a directory with
 * SYS_WATCH_ONLYDIR), which callers usually expect, and UNAVAIL in err for
 * the rest (on Linux, -ENOSPC's message names the sysctl to raise).
 * inotify returns the same wd for an object watched twice; kqueue does not.
 */
int sys_watch_add(struct sys_watch *w, const char *path, int flags, struct clbsd_err *err);
/*
 * Watch the object open at `fd` (an O_PATH descriptor is enough), whatever
 * its path now says: for paths resolved safely inside a tree someone else
 * controls. Linux: through /proc/self/fd/N; FreeBSD: the fd itself (kqueue
 * watches descriptors, so the caller must keep it open: the port will take
 * ownership of a dup).
 */
int sys_watch_add_fd(struct sys_watch *w, int fd, int flags, struct clbsd_err *err);
/* Stop watching wd. A wd the kernel already dropped is ignored. */
void sys_watch_rm(struct sys_watch *w, int wd);
/*
 * Hand every queued event to fn, in order, until none is left. Returns 0,
 * or a negative errno when reading the queue failed (the events read before
 * were delivered). fn may add and remove watches.
 */
int sys_watch_read(struct sys_watch *w, void (*fn)(void *ctx, const struct sys_watch_event *ev),
		   void *ctx);

/* ---- peer credentials (Linux: SO_PEERCRED; FreeBSD: getpeereid, LOCAL_PEERCRED) ---- */

struct sys_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid; /* 0: the platform does not say */
};

/*
 * The credentials the kernel recorded for the peer of the connected Unix
 * socket fd, when it connected; never anything the peer sent. -errno.
 */
int sys_peer_cred(int fd, struct sys_peer *out);

/* ---- the process itself (Linux: prctl, /proc/self; FreeBSD: procctl, sysctl) ---- */

/*
 * Become the reaper of orphaned descendants (PR_SET_CHILD_SUBREAPER;
 * FreeBSD: procctl(PROC_REAP_ACQUIRE)), so detached children (shims that
 * double-forked) are reparented to this process and reaped by it. -errno.
 */
int sys_set_subreaper(void);

/*
 * In a child just forked: be sent sig when the parent dies
 * (PR_SET_PDEATHSIG; FreeBSD: procctl(PROC_PDEATHSIG_CTL)). Best effort.
 */
void sys_die_with_parent(int sig);

/*
 * A descriptor that becomes readable when child pid exits, for an event
 * loop (pidfd_open; FreeBSD: pdfork's descriptor or a kqueue EVFILT_PROC).
 * -errno where the kernel has none: then watch for SIGCHLD instead.
 */
int sys_pid_watch_fd(pid_t pid);
/*
 * The absolute path of the running executable (/proc/self/exe; FreeBSD:
 * sysctl KERN_PROC_PATHNAME), or NULL when the platform cannot say.
 * The caller frees it.
 */
char *sys_self_exe(void);
/* Name the process as ps and top show it (PR_SET_NAME; FreeBSD: setproctitle). */
void sys_set_name(const char *name);
/*
 * Give back memory a long-lived small process no longer needs once set up:
 * the heap's free pages (glibc's malloc_trim) and the resident pages of its
 * own executable's text that hold nothing private (madvise(MADV_DONTNEED)
 * on what /proc/self/smaps shows; they fault back in from the page cache).
 * Best effort. FreeBSD: madvise(MADV_FREE) on the heap, text left alone.
 */
void sys_trim_memory(void);

/* ---- mounts (Linux: unshare, mount, /proc/self/mountinfo, statfs; FreeBSD: nmount, statfs) ---- */

/*
 * Whether mounting `fstype` with `opts` on the directory `target` works
 * here. Tried in a child that has its own mount namespace (FreeBSD: nmount
 * then unmount in a child), so nothing stays mounted and the caller's mounts
 * are untouched; blocks until the child is done.
 */
bool sys_mount_works(const char *fstype, const char *target, const char *opts);
/*
 * Whether / is a shared mount in this process's view (mountinfo's
 * "shared:N"), so mounts made later below it propagate into mount
 * namespaces made before. FreeBSD has no mount propagation: false.
 */
bool sys_root_is_shared(void);
/*
 * A read-only view of directory layers merged as overlayfs merges them
 * (layers[0] on top; whiteouts and opaque directories of an upper layer
 * hide what is below), for reading a stopped or running overlay
 * container's files from the host. Returns a directory fd of the view's
 * root; nothing appears in any mount table and the view goes away when the
 * fd (and those opened below it) is closed (Linux: fsopen/fsmount of a
 * detached overlayfs; FreeBSD: unionfs has no such view, the storage there
 * is ZFS and the rootfs a plain directory). Layers are absolute paths
 * without ':', ',' or '\\'.
 */
int sys_layers_view(const char *const *layers, size_t n, struct clbsd_err *err);
/* Whether `path` is on a FUSE file system (statfs; FreeBSD: f_fstypename "fusefs"). */
bool sys_is_fuse(const char *path);

/* ---- files ---- */

/*
 * Make the regular file open for writing at `out` (empty) share the blocks
 * of the regular file open at `in` (Linux: FICLONE, on btrfs, XFS, bcachefs;
 * FreeBSD: copy_file_range, which clones on ZFS with block cloning). Returns
 * 0, or a negative errno when this file system cannot (-EOPNOTSUPP, -EXDEV,
 * -EINVAL, ...): then nothing was written and the caller copies the data.
 */
int sys_file_clone(int in, int out);
/*
 * Copy `size` bytes of `in` (from offset 0) to `out` in the kernel where it
 * can (copy_file_range), else through a buffer. Returns 0 or -errno; on
 * failure *what says what failed, to put before the file's name ("copy",
 * "read", "write copy of").
 */
int sys_file_copy(int in, int out, off_t size, const char **what);
/*
 * Copy src (a file or a tree) to dst (which must not exist), keeping owners,
 * modes, times, symlinks, devices and FIFOs; never follows a symlink nor opens
 * a FIFO or a device; regular files share blocks where the
 * file system allows (sys_file_clone), else are copied. The tree may change
 * meanwhile (a running container's files): nothing is opened by a path, a
 * file is copied as big as it was when opened, and an entry that vanished or
 * changed type while it was copied is left out with a warning. A tree too
 * deep for fs_tree_check_depth() is refused. Portable: sys/tree_copy.c.
 */
int sys_copy_tree(const char *src, const char *dst, struct clbsd_err *err);

/* ---- terminals (Linux: posix_openpt, TIOCGPTPEER; FreeBSD: posix_openpt, ptsname) ---- */

/*
 * A new pseudo-terminal: *master (non-blocking) and *slave, both
 * close-on-exec and neither the caller's controlling terminal, sized
 * rows x cols when both are given. The slave is opened from the master
 * (TIOCGPTPEER) where the kernel can, so no path is looked up.
 */
int sys_pty_open(int *master, int *slave, uint16_t rows, uint16_t cols, struct clbsd_err *err);

/* ---- signals on a descriptor (Linux: signalfd; FreeBSD: kqueue EVFILT_SIGNAL) ---- */

/*
 * A non-blocking descriptor that polls readable when a signal of `mask` is
 * pending; the caller has blocked those signals (sigprocmask) first.
 * INTERNAL in err when the kernel refuses.
 */
int sys_sigfd_open(const sigset_t *mask, struct clbsd_err *err);
/* The next pending signal of the descriptor's mask, 0 when none is left, or -errno. */
int sys_sigfd_next(int fd);

#endif
