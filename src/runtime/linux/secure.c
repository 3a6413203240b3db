/*
 * The last steps before a container process execs: Docker's default
 * capability set as the bounding set, the container user, no_new_privs and a
 * seccomp filter that refuses what a container has no business doing (kernel
 * modules, mounts, new namespaces, clock changes, tracing other processes,
 * keyrings, bpf). Netlink stays allowed; creating links fails anyway because
 * CAP_NET_ADMIN is gone.
 */
#include "runtime/linux/linux.h"
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
#include <sys/prctl.h>
#include <unistd.h>

/* Docker's default capability set. */
static const cap_value_t keep_caps[] = {
	CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,     CAP_MKNOD,
	CAP_NET_RAW, CAP_SETGID,      CAP_SETUID,           CAP_SETFCAP,    CAP_SETPCAP,
	CAP_NET_BIND_SERVICE,         CAP_SYS_CHROOT,       CAP_KILL,       CAP_AUDIT_WRITE,
};

static bool kept(int cap)
{
	for (size_t i = 0; i < ARRAY_SIZE(keep_caps); i++)
		if (keep_caps[i] == cap)
			return true;
	return false;
}

/* Done in this process (a prepared init does it ahead); forks inherit both. */
static bool bounding_dropped;

int sec_drop_bounding(struct clbsd_err *err)
{
	if (bounding_dropped)
		return 0;
	/*
	 * Up to the kernel's last capability: dropping one past it fails with
	 * EINVAL. Dropping only limits what an exec may gain; the caller keeps
	 * its effective capabilities (a prepared init still mounts after this).
	 */
	for (int cap = 0; cap < 64; cap++) {
		if (kept(cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break;
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
					     "drop capability %d from the bounding set", cap);
		}
	}
	bounding_dropped = true;
	return 0;
}

int sec_set_user(uint32_t uid, uint32_t gid, struct clbsd_err *err)
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

	cap_t caps = cap_init(); /* all clear */
	if (!caps)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "cap_init");
	if (uid == 0 &&
	    (cap_set_flag(caps, CAP_PERMITTED, (int)ARRAY_SIZE(keep_caps), keep_caps, CAP_SET) < 0 ||
	     cap_set_flag(caps, CAP_EFFECTIVE, (int)ARRAY_SIZE(keep_caps), keep_caps, CAP_SET) < 0)) {
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

/* Refused with EPERM, as by Docker's default profile. Unknown names are skipped. */
static const char *const denied[] = {
	/* kernel modules and the running kernel */
	"init_module", "finit_module", "delete_module", "create_module", "kexec_load",
	"kexec_file_load", "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl",
	"lookup_dcookie", "nfsservctl", "uselib", "get_kernel_syms", "query_module", "_sysctl",
	"iopl", "ioperm", "vm86", "vm86old",
	/* mounts and namespaces */
	"mount", "umount", "umount2", "pivot_root", "unshare", "setns", "fsopen", "fsconfig",
	"fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	/* clocks */
	"clock_settime", "clock_settime64", "settimeofday", "stime", "adjtimex", "clock_adjtime",
	"clock_adjtime64",
	/* keyrings, bpf, tracing and peeking at other processes */
	"keyctl", "add_key", "request_key", "bpf", "ptrace", "process_vm_readv",
	"process_vm_writev", "perf_event_open", "open_by_handle_at", "userfaultfd", "kcmp",
};

static const unsigned long ns_flags[] = {
	CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
	CLONE_NEWNET, CLONE_NEWCGROUP,
#ifdef CLONE_NEWTIME
	CLONE_NEWTIME,
#endif
};

static int build_filter(scmp_filter_ctx ctx, struct clbsd_err *err)
{
	int rc;
	/*
	 * Filter the compat ABIs too: a filter for the native ABI only would let
	 * 32-bit syscalls (int 0x80) through unfiltered... or kill every 32-bit
	 * program. With them added, the same rules apply to all.
	 */
#if defined(__x86_64__)
	seccomp_arch_add(ctx, SCMP_ARCH_X86);
	seccomp_arch_add(ctx, SCMP_ARCH_X32);
#elif defined(__aarch64__)
	seccomp_arch_add(ctx, SCMP_ARCH_ARM);
#endif
	for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (rc < 0 && rc != -EDOM)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, rc, "seccomp rule for %s",
					     denied[i]);
	}
	/* New namespaces through clone() (unshare and setns are refused above). */
	for (size_t i = 0; i < ARRAY_SIZE(ns_flags); i++) {
		struct scmp_arg_cmp cmp = {
#if defined(__s390__) || defined(__s390x__)
			.arg = 1,
#else
			.arg = 0,
#endif
			.op = SCMP_CMP_MASKED_EQ,
			.datum_a = ns_flags[i],
			.datum_b = ns_flags[i],
		};
		rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, &cmp);
		if (rc < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, rc, "seccomp rule for clone");
	}
	/*
	 * clone3 passes its flags in memory, out of the filter's reach: ENOSYS
	 * makes libc fall back to clone(), whose flags are checked.
	 */
	int nr = seccomp_syscall_resolve_name("clone3");
	if (nr != __NR_SCMP_ERROR && (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) < 0 &&
	    rc != -EDOM)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, rc, "seccomp rule for clone3");
	/* Typing into someone else's terminal. */
	static const unsigned long tty_ioctls[] = {TIOCSTI, TIOCLINUX};
	for (size_t i = 0; i < ARRAY_SIZE(tty_ioctls); i++) {
		struct scmp_arg_cmp cmp = {
			.arg = 1, .op = SCMP_CMP_EQ, .datum_a = tty_ioctls[i], .datum_b = 0};
		rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, &cmp);
		if (rc < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, rc, "seccomp rule for ioctl");
	}
	return 0;
}

/* The compiled filter, made once per process and inherited by its forks. */
static struct sock_fprog compiled;
/* A filter compiled by the caller's parent (sec_use_compiled), or -1. */
static int given_fd = -1;

int sec_compile(int *out, struct clbsd_err *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOMEM, "seccomp_init failed");
	int rc = build_filter(ctx, err);
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
	int own = -1;
	int fd = given_fd;
	/* A sealed memfd from our parent, or compile it here. */
	if (fd < 0 || fcntl(fd, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
						 F_SEAL_SEAL)) {
		int rc = sec_compile(&own, err);
		if (rc < 0)
			return rc;
		fd = own;
	}
	autoclose int owned = own;
	off_t len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) != 0 ||
	    len / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPROTO,
					"the compiled seccomp filter has an odd size (%lld bytes)",
					(long long)len);
	struct sock_filter *insns = xmalloc((size_t)len);
	if (pread(fd, insns, (size_t)len, 0) != len) {
		free(insns);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read the compiled seccomp filter");
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
