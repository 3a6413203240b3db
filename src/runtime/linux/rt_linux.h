/*
 * Private interfaces of the Linux runtime driver (src/runtime/linux/).
 *
 *   cgroup.c   cgroup v1, v2 and hybrid layouts: create with limits, join,
 *              signal, stats, OOM notification, destroy.
 *   mounts.c   the container's file system view, built inside its own mount
 *              namespace: rootfs, volumes, /proc, /dev, /sys, masks, pivot_root.
 *   secure.c   capability sets, uid/gid, no_new_privs and the seccomp filter.
 *   nsspawn.c  the rt_ops table: create/release/exec/kill_all/stats/oom_fd/destroy.
 *   userns.c   user namespaces: the id maps, idmapped rootfs and volume
 *              mounts made by the helper, the idmap support probe.
 *   probe.c    network health probes (TCP connect, HTTP GET) in a container's
 *              network namespace, run by a forked child.
 *
 * Every cgroup function takes a struct cg_sys describing where the
 * hierarchies are mounted, so the unit tests can point it at a fake directory
 * tree (cg_sys_parse() with a prefix) instead of /sys/fs/cgroup.
 */
#ifndef CLBSD_RUNTIME_LINUX_H
#define CLBSD_RUNTIME_LINUX_H

#include "runtime/runtime.h"

#include <clbsd/error.h>
#include <stdbool.h>
#include <sys/types.h>

/* ---- cgroups ---- */

enum cg_layout {
	CG_LAYOUT_V1 = 1, /* only cgroup v1 controller hierarchies */
	CG_LAYOUT_V2,	  /* one unified cgroup2 hierarchy */
	CG_LAYOUT_HYBRID, /* v1 controllers plus a cgroup2 mount (usually .../unified) */
};

/* One mounted hierarchy. */
struct cg_hier {
	char *mnt;   /* mount point, with the parse prefix prepended */
	int fd;	     /* the mount point opened O_PATH (-1 if it could not be): stats walk from it */
	char *ctrls; /* v1: the mount's controllers, comma-separated ("cpu,cpuacct",
			"name=systemd"); v2: the root's cgroup.controllers, space-separated */
	bool v2;
	/*
	 * A container gets a cgroup here: cgroup2, a named hierarchy
	 * (name=systemd: process tracking) or a v1 one holding a controller
	 * clbsd uses (cpu, cpuacct, memory, pids, devices: the allow-list). The
	 * others (cpuset, blkio, freezer, ...) would only cost a mkdir, a join
	 * and an rmdir per start: the container stays in its parent's cgroup there.
	 */
	bool used;
};

struct cg_stat_cache;

struct cg_sys {
	enum cg_layout layout;
	struct cg_hier *h;
	size_t n;
	/*
	 * The stats files of each cgroup read so far, kept open (cg_stats()),
	 * closed by cg_destroy() and cg_sys_release(); NULL: none are kept.
	 */
	struct cg_stat_cache *stats;
};

/*
 * Find the cgroup hierarchies in a /proc/<pid>/mountinfo text. `prefix` is
 * prepended to every mount point (""; tests pass a temporary directory). A
 * hierarchy mounted twice is listed once. Fails with CLBSD_E_UNAVAIL when no
 * cgroup file system is mounted.
 */
int cg_sys_parse(const char *mountinfo, const char *prefix, struct cg_sys *out,
		 struct clbsd_err *err);
/* cg_sys_parse() of /proc/self/mountinfo, once per process (kept: do not release). */
const struct cg_sys *cg_sys_get(struct clbsd_err *err);
void cg_sys_release(struct cg_sys *cg);
const char *cg_layout_name(enum cg_layout l);

/*
 * Make `path` (relative, e.g. "clbsd/web") in every hierarchy and apply the
 * limits (v2: memory.max, memory.swap.max, pids.max, cpu.max; v1:
 * memory.limit_in_bytes, memory.memsw.limit_in_bytes, pids.max,
 * cpu.cfs_period_us/cpu.cfs_quota_us). An existing cgroup without processes
 * is reused (a leftover of a crash); one with processes is a conflict. On
 * failure nothing made is left behind.
 */
/*
 * Write the limits of an existing cgroup (memory, pids, cpu; 0 = none).
 * fresh: it was made with no limits and never had any, so "none" needs no
 * write (a pool cgroup); otherwise every old limit is reset.
 */
int cg_set_limits(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
		  bool fresh, struct clbsd_err *err);
/* cg_create() allowing the container's devices too (rt_spec.devices). */
int cg_create_devs(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
		   const struct rt_device *extra, size_t nextra, struct clbsd_err *err);
int cg_create(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
	      struct clbsd_err *err);
/*
 * Change the limits of an existing cgroup with processes in it (a running
 * container) in place: all or nothing. When the kernel refuses a value
 * (v1: a memory limit below what the processes use and it cannot reclaim
 * is EBUSY; v2 reclaims, and OOM-kills when it cannot) every file already
 * written gets its old value back, and the error names the file, the
 * value and the kernel's answer. CLBSD_E_CONFLICT when the cgroup is not there.
 */
int cg_update_limits(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
		     struct clbsd_err *err);
/*
 * Joining without the global lock. Writing a pid to cgroup.procs takes
 * cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period
 * (about 10 ms here) on every container start. A single-threaded process
 * that moves itself by writing "0" to a v1 "tasks" file skips that lock, and
 * clone3(CLONE_INTO_CGROUP) creates a process directly in a v2 cgroup.
 *
 * cg_open_join() opens, for every v1 hierarchy, path's tasks file (fds[i];
 * fds has cg->n entries) and, for the v2 hierarchy, the cgroup directory
 * (*v2dir, for CLONE_INTO_CGROUP; -1 when there is none). The new process
 * then calls cg_join_fds() first thing (async-signal-safe; v2dir_fallback
 * is the v2 directory when clone3 could not place it, else -1).
 */
int cg_open_join(const struct cg_sys *cg, const char *path, int *fds, int *v2dir,
		 struct clbsd_err *err);
int cg_join_fds(const int *fds, size_t n, int v2dir_fallback);
void cg_close_join(int *fds, size_t n, int v2dir);
/* Move pid into `path` in every hierarchy. */
int cg_join(const struct cg_sys *cg, const char *path, pid_t pid, struct clbsd_err *err);
/* Whether pid is a member of `path` (reads cgroup.procs). */
bool cg_has_pid(const struct cg_sys *cg, const char *path, pid_t pid);
/* Number of processes in `path` (0 when it does not exist). */
int cg_count(const struct cg_sys *cg, const char *path, size_t *n, struct clbsd_err *err);
/*
 * Signal every process in `path`. SIGKILL is repeated until the cgroup is
 * empty (or uses cgroup.kill on v2), so forks racing the kill are caught.
 */
int cg_kill(const struct cg_sys *cg, const char *path, int sig, struct clbsd_err *err);
/*
 * CPU, memory, pids and OOM kills of `path`, each file opened relative to
 * the cgroup's directory. `set`: the limits the caller gave the cgroup,
 * reported as the kernel keeps them (memory in whole pages) without reading
 * the limit files back; NULL reads them.
 *
 * The files stay open (cg->stats) and are read again from offset 0 the next
 * time, which makes the kernel show them afresh: a list of 500 containers
 * then costs one pread per file instead of an open, a read and a close (and
 * the directory's). A kept file of a cgroup removed since reads ENODEV and
 * is opened again by path. At most a quarter of RLIMIT_NOFILE is kept; past
 * it, files are opened and closed each time.
 */
int cg_stats(const struct cg_sys *cg, const char *path, const struct rt_limits *set,
	     struct rt_stats *st, struct clbsd_err *err);
/* The number of OOM kills so far (stats()'s oom_kills alone). */
int cg_oom_kills(const struct cg_sys *cg, const char *path, uint64_t *n, struct clbsd_err *err);
/* See rt_ops.oom_fd. */
int cg_oom_fd(const struct cg_sys *cg, const char *path, int *fd, struct clbsd_err *err);
/* rmdir `path` everywhere, retrying for up to timeout_ms while tasks drain. Idempotent. */
int cg_destroy(const struct cg_sys *cg, const char *path, int timeout_ms, struct clbsd_err *err);

/*
 * The device allow-list (cg_create() applies it): a container may make any
 * node (mknod, as Docker allows) but open only null, zero, full, random,
 * urandom, tty, console, ptmx and its pseudo-terminals, so a node it plants
 * or finds is useless even on a mount without nodev. On the v1 devices
 * controller it is devices.deny "a" then one devices.allow line per rule;
 * without that controller, a BPF_PROG_TYPE_CGROUP_DEVICE program attached
 * to the cgroup2 cgroup (BPF_F_ALLOW_MULTI, so a parent's still applies).
 */
struct cg_dev_rule {
	char type;	  /* 'c', 'b' or 'a' (both) */
	int major, minor; /* -1: any */
	unsigned access;  /* CG_DEV_MKNOD | CG_DEV_READ | CG_DEV_WRITE */
};
#define CG_DEV_MKNOD 1u /* the values of BPF_DEVCG_ACC_* */
#define CG_DEV_READ  2u
#define CG_DEV_WRITE 4u
extern const struct cg_dev_rule cg_dev_rules[];
extern const size_t cg_dev_nrules;
/* A rule as a devices.allow line ("c 1:3 rwm"); buf has at least 32 bytes. */
void cg_dev_rule_v1(const struct cg_dev_rule *r, char *buf, size_t n);
/*
 * The allow-list as a cgroup device program: the instructions are written
 * to out (struct bpf_insn[max]); returns how many, or 0 when max is too small.
 */
struct bpf_insn;
size_t cg_dev_prog(struct bpf_insn *out, size_t max);
/* The same with a container's own devices (:devices) allowed after the default rules. */
size_t cg_dev_prog_extra(const struct rt_device *extra, size_t nextra, struct bpf_insn *out,
			 size_t max);
int cg_dev_attach_v2_extra(const char *dir, const struct rt_device *extra, size_t nextra,
			   struct clbsd_err *err);
/* Load cg_dev_prog() and attach it to the cgroup2 directory dir (once: none if one is there). */
int cg_dev_attach_v2(const char *dir, struct clbsd_err *err);

/* ---- health probes ---- */

/* rt_ops.probe: see runtime.h. */
int lx_probe(pid_t init_pid, const struct rt_probe *p, int *fd_out, pid_t *pid_out,
	     struct clbsd_err *err);

/* ---- mounts (run in the container's init, inside its new mount namespace) ---- */

/*
 * Build the container's file system at spec->rootfs.target and pivot_root
 * into it. Afterwards "/" is the rootfs, the host's tree is gone from this
 * mount namespace, and the cwd is "/". With stage (see mnt_stage) /proc,
 * /dev and /sys are moved in from there instead of being mounted now.
 * With premade (a user namespace, see userns.c) the rootfs and the mounts
 * are its detached idmapped mounts, moved into place instead of mounted.
 */
struct uns_mounts;
int mnt_setup_rootfs(const struct rt_spec *spec, int console, const char *stage,
		     const struct uns_mounts *premade, struct clbsd_err *err);
/*
 * Build /proc (with its masks), /dev and /sys ahead of time on a tmpfs
 * mounted at dir, inside the namespaces the container will have; a later
 * mnt_setup_rootfs() with stage = dir moves them into the rootfs.
 */
int mnt_stage(const char *dir, struct clbsd_err *err);

/* ---- user namespaces (userns.c) ---- */

/*
 * Detached idmapped mounts made on the host side for a container with a
 * user namespace: its rootfs and one per spec->mounts entry (same order).
 * fd -1: none.
 */
struct uns_mounts {
	int rootfs;
	int *mounts;
	size_t n;
};
void uns_mounts_init(struct uns_mounts *m);
void uns_mounts_close(struct uns_mounts *m);
/* The detached mounts of spec, idmapped to the user namespace usernsfd. */
int uns_make_mounts(const struct rt_spec *spec, int usernsfd, struct uns_mounts *out,
		    struct clbsd_err *err);
/*
 * In the (single-threaded, host root) helper: make spec->userns's user
 * namespace, the mounts for it (*out) and join it, so the namespaces the
 * next clone() makes are owned by it.
 */
int uns_enter(const struct rt_spec *spec, struct uns_mounts *out, struct clbsd_err *err);
/* In the init cloned after uns_enter(): drop host groups, become the range's root. */
int uns_become_root(struct clbsd_err *err);
/*
 * Whether the file system holding path takes idmapped mounts: 0, or
 * CLBSD_E_UNAVAIL with the reason. Probed once per device, then cached.
 */
int uns_idmap_check(const char *path, struct clbsd_err *err);

/* ---- process security (run in the process about to exec) ---- */

/* Docker's default capability set, as a mask of 1 << CAP_*. */
uint64_t sec_caps_default(void);
/* Drop from the bounding set every capability not in keep. Needs CAP_SETPCAP. */
int sec_drop_bounding(uint64_t keep, struct clbsd_err *err);
/*
 * Switch to uid/gid (supplementary groups: just gid) and set the final
 * capability sets: keep for uid 0, none otherwise.
 */
int sec_set_user(uint32_t uid, uint32_t gid, uint64_t keep, struct clbsd_err *err);
/*
 * Compile the default seccomp filter to BPF once per process (libseccomp
 * takes ~0.5 ms for it); forks inherit the result. Idempotent. With a
 * filter from sec_use_compiled(), it is only read.
 */
int sec_precompile(struct clbsd_err *err);
/* The default filter as BPF in a sealed memfd (O_CLOEXEC), for other processes. */
int sec_compile(int *fd, struct clbsd_err *err);
/* Use the filter in fd (from sec_compile() in a parent) instead of compiling it. */
void sec_use_compiled(int fd);
/* PR_SET_NO_NEW_PRIVS and the default seccomp filter (compiled if not yet). */
int sec_lock(struct clbsd_err *err);

#endif
