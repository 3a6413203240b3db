/*
 * The last steps before a container process execs: Docker's default
 * capability set as the bounding set, the container user, no_new_privs and a
 * seccomp filter.
 *
 * The filter is an allow-list, like Docker's and Podman's default profiles:
 * the system calls below are allowed (a few only with the arguments checked
 * in build_filter), the known dangerous ones are refused with EPERM as Docker
 * does, and everything else -- above all a call added to the kernel after
 * this list was written -- answers ENOSYS, which programs and libc read as
 * "this kernel does not have it" and fall back from. A new call is allowed
 * only once someone has added it here after reading what it can do.
 *
 * Only the native ABI is in the filter. The 32-bit x86 (int 0x80, sysenter)
 * and x32 ABIs answer ENOSYS to every call: 32-bit x86 multiplexes the
 * socket calls through socketcall(), whose arguments are in memory where a
 * filter cannot check the address family (AF_VSOCK would pass), and the
 * compat entry points have a history of kernel bugs of their own. 32-bit
 * images do not run (their loader's first call fails).
 */
#include "runtime/linux/rt_linux.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Allowed without conditions. Names this architecture does not have are
 * skipped. Calls that also need a capability the container lacks (chroot
 * has CAP_SYS_CHROOT; setpriority to a negative nice needs CAP_SYS_NICE,
 * gone) are left to the kernel's own check, as in Docker's profile.
 */
/* One group a paragraph, each with why it is allowed. */
/* clang-format off */
static const char *const allowed[] = {
	/* Reading, writing and moving data between fds. */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "sendfile", "splice", "tee", "vmsplice", "copy_file_range",
	"lseek", "readahead", "fadvise64", "fallocate", "ftruncate", "truncate", "fsync",
	"fdatasync", "sync", "syncfs", "sync_file_range", "cachestat",
	/* Opening, closing and duplicating fds. */
	"open", "openat", "openat2", "creat", "close", "close_range", "dup", "dup2", "dup3",
	"fcntl", "flock", "pipe", "pipe2",
	/* Paths, metadata and directories, inside the container's own mounts. */
	"stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access",
	"faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
	"rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat",
	"unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod",
	"fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "umask",
	"utime", "utimes", "utimensat", "futimesat", "name_to_handle_at",
	/* Device nodes: CAP_MKNOD is kept; /dev and nodev mounts limit their use. */
	"mknod", "mknodat",
	/* chroot into a directory of the container (CAP_SYS_CHROOT, as Docker). */
	"chroot",
	/* Extended attributes. */
	"setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr",
	"listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
	"fremovexattr",
	/* Watching files (fanotify_init, which creates the watch, is refused). */
	"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	"fanotify_mark",
	/* Waiting for fds and events. */
	"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
	/* Memory of the process itself. */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
	"mlock", "mlock2", "munlock", "mlockall", "munlockall", "remap_file_pages",
	"membarrier", "memfd_create", "pkey_alloc", "pkey_free", "pkey_mprotect",
	"map_shadow_stack", "get_mempolicy",
	/* Threads and their synchronisation. */
	"futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
	"set_robust_list", "get_robust_list", "set_tid_address", "rseq", "arch_prctl",
	"set_thread_area", "get_thread_area",
	/* Processes: new ones (clone is checked below), exec, wait, exit. */
	"fork", "vfork", "execve", "execveat", "wait4", "waitid", "exit", "exit_group",
	"restart_syscall", "pidfd_open", "pidfd_send_signal", "process_mrelease",
	/* Signals and timers. */
	"kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
	"rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
	"rt_sigsuspend", "sigaltstack", "signalfd", "signalfd4", "pause", "alarm",
	"getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
	"timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime",
	"timerfd_gettime",
	/* Reading the clocks and sleeping (setting a clock is refused). */
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
	"time",
	/* Identity: the container's uid and gid and its own ids and groups. */
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
	"setfsuid", "setfsgid", "getpid", "gettid", "getppid", "getpgid", "setpgid",
	"getpgrp", "getsid", "setsid", "capget", "capset",
	/* Limits, scheduling and information about the system. */
	"getrlimit", "setrlimit", "prlimit64", "getrusage", "times", "getpriority",
	"setpriority", "ioprio_get", "ioprio_set", "sched_yield", "sched_setparam",
	"sched_getparam", "sched_setscheduler", "sched_getscheduler",
	"sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
	"sched_setaffinity", "sched_getaffinity", "sched_setattr", "sched_getattr", "uname",
	"sysinfo", "getcpu", "getrandom",
	/* Restricting oneself further: prctl (capabilities limit what it can
	 * change), a nested seccomp filter, landlock. */
	"prctl", "seccomp", "landlock_create_ruleset", "landlock_add_rule",
	"landlock_restrict_self",
	/* Asynchronous I/O of the classic kind (io_uring is refused). */
	"io_setup", "io_destroy", "io_getevents", "io_pgetevents", "io_submit", "io_cancel",
	/* System V and POSIX IPC, in the container's own IPC namespace. */
	"shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop",
	"msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
	"mq_timedreceive", "mq_notify", "mq_getsetattr",
	/* Sockets (socket and socketpair are checked below). */
	"connect", "accept", "accept4", "bind", "listen", "shutdown", "getsockname",
	"getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
	"sendmmsg", "recvmmsg",
};

/*
 * Refused with EPERM ("not allowed here"), the answer Docker gives. Programs
 * meet these only when they try to change the host or leave the container.
 */
static const char *const refused[] = {
	/* Kernel modules, the running kernel, swap and power. */
	"init_module", "finit_module", "delete_module", "create_module", "kexec_load",
	"kexec_file_load", "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl",
	"quotactl_fd", "lookup_dcookie", "nfsservctl", "uselib", "get_kernel_syms",
	"query_module", "_sysctl",
	/* Hardware: I/O ports, 16-bit code segments, hanging up terminals. */
	"iopl", "ioperm", "vm86", "vm86old", "modify_ldt", "vhangup",
	/* Mounts, the new mount API, and the root. */
	"mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount",
	"fspick", "move_mount", "open_tree", "mount_setattr",
	/* New namespaces and joining others (clone's flags are checked below). */
	"unshare", "setns",
	/* The host's identity and clocks. */
	"sethostname", "setdomainname", "clock_settime", "clock_settime64", "settimeofday",
	"stime", "adjtimex", "clock_adjtime", "clock_adjtime64",
	/* Keyrings, which are not namespaced. */
	"keyctl", "add_key", "request_key",
	/* Kernel programs and tracing. */
	"bpf", "perf_event_open", "fanotify_init",
	/* Reaching into other processes: memory, fds, and comparing kernel objects. */
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
	"pidfd_getfd", "kcmp",
	/* Opening a file by handle walks out of any mount (the "shocker" escape). */
	"open_by_handle_at",
	/* Page faults handled in user space: a tool to win kernel races. */
	"userfaultfd",
	/* io_uring: its own path to most system calls, and many kernel bugs. */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	/* Memory placement on other NUMA nodes (CAP_SYS_NICE in Docker's profile). */
	"mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages",
};
/* clang-format on */

/* Docker's default capability set. */
static const cap_value_t keep_caps[] = {
	CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,	     CAP_FOWNER,
	CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,	     CAP_SETUID,
	CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
	CAP_KILL,    CAP_AUDIT_WRITE,
};

uint64_t sec_caps_default(void)
{
	uint64_t m = 0;
	for (size_t i = 0; i < ARRAY_SIZE(keep_caps); i++)
		m |= 1ULL << keep_caps[i];
	return m;
}

int sec_drop_bounding(uint64_t keep, struct clbsd_err *err)
{
	/*
	 * Up to the kernel's last capability: dropping one past it fails with
	 * EINVAL. Dropping only limits what an exec may gain; the caller keeps
	 * its effective capabilities (a prepared init still mounts after this,
	 * and drops again, maybe more, when it learns the container's set).
	 */
	for (int cap = 0; cap < 64; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break;
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
					     "drop capability %d from the bounding set", cap);
		}
	}
	return 0;
}

int sec_set_user(uint32_t uid, uint32_t gid, uint64_t keep, struct clbsd_err *err)
{
	gid_t g = gid;
	if (setgroups(1, &g) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "setgroups [%u]", gid);
	if (setresgid(gid, gid, gid) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "setgid %u", gid);
	/* Changing away from uid 0 clears the permitted and effective sets (no KEEPCAPS). */
	if (setresuid(uid, uid, uid) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "setuid %u", uid);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "clear ambient capabilities");

	cap_value_t v[64];
	int n = 0;
	for (int cap = 0; cap < 64; cap++)
		if (keep & (1ULL << cap))
			v[n++] = cap;
	cap_t caps = cap_init(); /* all clear */
	if (!caps)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "cap_init");
	if (uid == 0 && n > 0 &&
	    (cap_set_flag(caps, CAP_PERMITTED, n, v, CAP_SET) < 0 ||
	     cap_set_flag(caps, CAP_EFFECTIVE, n, v, CAP_SET) < 0)) {
		int e = errno;
		cap_free(caps);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "cap_set_flag");
	}
	int rc = cap_set_proc(caps);
	int e = errno;
	cap_free(caps);
	if (rc < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "set capabilities");
	return 0;
}

/*
 * Socket families a container may create. Docker refuses only AF_VSOCK
 * (which reaches the host and other VMs without a network); clbsd allows
 * only what containers use: local sockets, IPv4, IPv6, netlink (ip,
 * getifaddrs; changing links fails anyway without CAP_NET_ADMIN) and
 * packet sockets (ping, DHCP clients; CAP_NET_RAW, as in Docker). Every
 * other family (vsock, AF_ALG, bluetooth, CAN, TIPC, RDS, ...) answers
 * EAFNOSUPPORT, what a kernel without that family answers, which programs
 * already handle.
 */
static const unsigned long socket_families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET};

/* personality(): Docker's values (Linux, 32-bit uname, 2.6 uname, the query). */
static const unsigned long personalities[] = {PER_LINUX, PER_LINUX32, UNAME26,
					      UNAME26 | PER_LINUX32, 0xffffffffUL};

/* Typing into the terminal (TIOCSTI) or the console (TIOCLINUX) of someone else. */
static const unsigned long tty_ioctls[] = {TIOCSTI, TIOCLINUX};

/* clone() flags that make a new namespace (unshare and setns are refused). */
#define NS_FLAGS                                                                                   \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
	 CLONE_NEWCGROUP)

#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

/*
 * A rule for one call by name. A name this architecture does not have is
 * skipped: unknown, or a negative pseudo-number standing for another
 * architecture's call (it would only lengthen the filter).
 */
static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned int n,
		const struct scmp_arg_cmp *cmp, struct clbsd_err *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr < 0)
		return 0;
	int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (rc < 0 && rc != -EDOM)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, -rc, "seccomp rule for %s", name);
	return 0;
}

static struct scmp_arg_cmp arg_eq(unsigned int arg, unsigned long v)
{
	return (struct scmp_arg_cmp){.arg = arg, .op = SCMP_CMP_EQ, .datum_a = v};
}

/*
 * True for every value. libseccomp tests equalities before it, so this is
 * the "any other value" of a call whose allowed values are listed.
 */
static struct scmp_arg_cmp arg_any(unsigned int arg)
{
	return (struct scmp_arg_cmp){.arg = arg, .op = SCMP_CMP_GE, .datum_a = 0};
}

/*
 * Calls allowed only with some values of one argument; any other value,
 * high bits included (the kernel may read only the low 32 of them), gets
 * refuse_errno.
 */
static int allow_values(scmp_filter_ctx ctx, const char *name, unsigned int arg,
			const unsigned long *values, size_t n, int refuse_errno,
			struct clbsd_err *err)
{
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct scmp_arg_cmp cmp = arg_eq(arg, values[i]);
		rc = rule(ctx, SCMP_ACT_ALLOW, name, 1, &cmp, err);
	}
	struct scmp_arg_cmp any = arg_any(arg);
	return rc < 0 ? rc : rule(ctx, SCMP_ACT_ERRNO(refuse_errno), name, 1, &any, err);
}

static int build_filter(scmp_filter_ctx ctx, struct clbsd_err *err)
{
	int rc = 0;
	for (size_t i = 0; i < ARRAY_SIZE(allowed) && rc == 0; i++)
		rc = rule(ctx, SCMP_ACT_ALLOW, allowed[i], 0, NULL, err);
	for (size_t i = 0; i < ARRAY_SIZE(refused) && rc == 0; i++)
		rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), refused[i], 0, NULL, err);
	if (rc < 0)
		return rc;

	/* clone() without namespace flags; with any of them, EPERM. */
	struct scmp_arg_cmp no_ns = {.arg = CLONE_FLAGS_ARG,
				     .op = SCMP_CMP_MASKED_EQ,
				     .datum_a = NS_FLAGS,
				     .datum_b = 0};
	if ((rc = rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &no_ns, err)) < 0)
		return rc;
	for (unsigned long f = 1; f != 0 && f <= NS_FLAGS; f <<= 1) {
		if (!(f & NS_FLAGS))
			continue;
		struct scmp_arg_cmp ns = {.arg = CLONE_FLAGS_ARG,
					  .op = SCMP_CMP_MASKED_EQ,
					  .datum_a = f,
					  .datum_b = f};
		if ((rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &ns, err)) < 0)
			return rc;
	}
	/*
	 * clone3 passes its flags in memory, out of the filter's reach. It is
	 * in neither list on purpose: the default ENOSYS (not EPERM) makes libc
	 * fall back to clone(), whose flags are checked. (libseccomp refuses a
	 * rule whose action is the default one.)
	 */

	if ((rc = allow_values(ctx, "socket", 0, socket_families, ARRAY_SIZE(socket_families),
			       EAFNOSUPPORT, err)) < 0)
		return rc;
	/* A pair of connected sockets only exists for AF_UNIX (the others fail anyway). */
	static const unsigned long pair_families[] = {AF_UNIX};
	if ((rc = allow_values(ctx, "socketpair", 0, pair_families, ARRAY_SIZE(pair_families),
			       EAFNOSUPPORT, err)) < 0)
		return rc;
	/* Other personalities turn off address randomisation or make data executable. */
	if ((rc = allow_values(ctx, "personality", 0, personalities, ARRAY_SIZE(personalities),
			       EPERM, err)) < 0)
		return rc;

	/*
	 * ioctl: all but the terminal ones above. The kernel reads the request
	 * as an unsigned int: only its low 32 bits are compared, or TIOCSTI with
	 * any high bit set (0xdead00005412) would pass and still be TIOCSTI.
	 */
	for (size_t i = 0; i < ARRAY_SIZE(tty_ioctls); i++) {
		struct scmp_arg_cmp cmp = {.arg = 1,
					   .op = SCMP_CMP_MASKED_EQ,
					   .datum_a = 0xffffffffUL,
					   .datum_b = tty_ioctls[i]};
		if ((rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, &cmp, err)) < 0)
			return rc;
	}
	struct scmp_arg_cmp any = arg_any(1);
	return rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &any, err);
}

/* The compiled filter, made once per process and inherited by its forks. */
static struct sock_fprog compiled;
/* A filter compiled by the caller's parent (sec_use_compiled), or -1. */
static int given_fd = -1;

int sec_compile(int *out, struct clbsd_err *err)
{
	/* Whatever no rule names, a call newer than this list included: ENOSYS. */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
	if (!ctx)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOMEM, "seccomp_init failed");
	/* The compat ABIs (see the top of this file): ENOSYS, as if not built in. */
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
	if (rc < 0)
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, -rc, "seccomp: action for other ABIs");
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
	/*
	 * A binary tree over the system call numbers: about a dozen comparisons
	 * per call instead of a walk through 350 (527 instructions in all).
	 * Older libseccomp: the walk.
	 */
	if (rc == 0)
		seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
	if (rc == 0)
		rc = build_filter(ctx, err);
	autoclose int fd = -1;
	if (rc == 0 && (fd = memfd_create("clbsd-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0)
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "memfd for the seccomp filter");
	if (rc == 0 && (rc = seccomp_export_bpf(ctx, fd)) < 0)
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, -rc, "compile the seccomp filter");
	seccomp_release(ctx);
	/* Whoever gets it can rely on it: nobody can change it any more. */
	if (rc == 0 &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "seal the seccomp filter");
	if (rc < 0)
		return rc;
	*out = steal_fd(&fd);
	return 0;
}

void sec_use_compiled(int fd)
{
	given_fd = fd;
}

int sec_precompile(struct clbsd_err *err)
{
	if (compiled.filter)
		return 0;
	autoclose int own = -1;
	int fd = given_fd;
	/* A sealed memfd from our parent, or compile it here. */
	if (fd < 0 ||
	    fcntl(fd, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) {
		int rc = sec_compile(&own, err);
		if (rc < 0)
			return rc;
		fd = own;
	}
	off_t len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) != 0 ||
	    len / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPROTO,
					"the compiled seccomp filter has an odd size (%lld bytes)",
					(long long)len);
	struct sock_filter *insns = xmalloc((size_t)len);
	if (pread(fd, insns, (size_t)len, 0) != len) {
		free(insns);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
				     "read the compiled seccomp filter");
	}
	compiled.len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
	compiled.filter = insns;
	return 0;
}

int sec_lock(struct clbsd_err *err)
{
	int rc = sec_precompile(err);
	if (rc < 0)
		return rc;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "set no_new_privs");
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &compiled, 0, 0) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "load the seccomp filter");
	return 0;
}
