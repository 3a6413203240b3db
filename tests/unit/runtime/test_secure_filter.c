/*
 * What the default syscall filter allows and refuses, checked for real:
 * a forked child loads the filter (no_new_privs, as a container process
 * does) and makes one call; the parent reads the errno it got. Every
 * refused call is made with arguments the kernel itself would reject with
 * a different errno (EBADF, EFAULT, EINVAL, ESRCH), so the expected errno
 * can only come from the filter, and a filter that let it through would
 * change nothing.
 */
#include "runtime/runtime.h"
#include "runtime/linux/rt_linux.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

/* A call's result as the child reports it: 0 when it succeeded, else errno. */
static int res(long r)
{
	return r < 0 ? errno : 0;
}

static void *noop(void *arg)
{
	return arg;
}

/* pthread_create tries clone3 first and must fall back to clone. */
static long thread_roundtrip(void)
{
	pthread_t t;
	int e = pthread_create(&t, NULL, noop, NULL);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return pthread_join(t, NULL) == 0 ? 0 : -1;
}

static long fork_and_wait(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return -1;
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* clone() asking for a new user namespace; a child that exists exits at once. */
static long clone_newuser(void)
{
	long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL, 0);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return r;
}

static long ioctl_pipe(unsigned long req)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	int n = 0;
	long r = syscall(SYS_ioctl, p[0], req, &n);
	int e = errno;
	close(p[0]);
	close(p[1]);
	errno = e;
	return r;
}

static long socket_raw(unsigned long family, int type)
{
	long r = syscall(SYS_socket, family, type, 0);
	if (r >= 0)
		close((int)r);
	return r;
}

static long socketpair_of(int family)
{
	int sv[2];
	long r = socketpair(family, SOCK_STREAM, 0, sv);
	if (r == 0) {
		close(sv[0]);
		close(sv[1]);
	}
	return r;
}

#if defined(__x86_64__)
/* getpid through the 32-bit entry (int 0x80): i386's number 20. */
static void no_compat(int sig)
{
	(void)sig;
	_exit(ENOSYS); /* the kernel has no 32-bit entry at all: refused too */
}
static long int80_getpid(void)
{
	signal(SIGSEGV, no_compat);
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(20L)
			 : "rcx", "r8", "r9", "r10", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return 0;
}
#endif

enum probe {
	P_GETPID,
	P_THREAD,
	P_FORK,
	P_SOCKET_UNIX,
	P_SOCKET_INET,
	P_SOCKET_INET6,
	P_SOCKET_NETLINK,
	P_SOCKETPAIR_UNIX,
	P_PERSONALITY_QUERY,
	P_PERSONALITY_LINUX,
	P_IOCTL_FIONREAD,
	P_CLOCK_GETTIME,
	P_IO_URING_SETUP,
	P_IO_URING_ENTER,
	P_IO_URING_REGISTER,
	P_SOCKET_VSOCK,
	P_SOCKET_ALG,
	P_SOCKET_INET_HIGH_BITS,
	P_SOCKETPAIR_INET,
	P_PIDFD_GETFD,
	P_PROCESS_MADVISE,
	P_TIOCSTI,
	P_TIOCSTI_HIGH_BITS,
	P_TIOCLINUX,
	P_UNSHARE_USER,
	P_UNSHARE_MOUNT,
	P_CLONE_NEWUSER,
	P_CLONE3,
	P_SETNS,
	P_MOUNT,
	P_KEYCTL,
	P_BPF,
	P_PERF_EVENT_OPEN,
	P_PTRACE,
	P_PROCESS_VM_READV,
	P_OPEN_BY_HANDLE_AT,
	P_KEXEC_LOAD,
	P_INIT_MODULE,
	P_FINIT_MODULE,
	P_USERFAULTFD,
	P_KCMP,
	P_PERSONALITY_NO_ASLR,
	P_PERSONALITY_HIGH_BITS,
	P_CLOCK_SETTIME,
	P_UNKNOWN_1000,
	P_NEWER_THAN_THE_LIST,
	P_X32,
	P_INT80,
};

static long run_probe(enum probe p)
{
	switch (p) {
	case P_GETPID:
		return getpid() > 0 ? 0 : -1;
	case P_THREAD:
		return thread_roundtrip();
	case P_FORK:
		return fork_and_wait();
	case P_SOCKET_UNIX:
		return socket_raw(AF_UNIX, SOCK_STREAM);
	case P_SOCKET_INET:
		return socket_raw(AF_INET, SOCK_DGRAM);
	case P_SOCKET_INET6:
		return socket_raw(AF_INET6, SOCK_DGRAM);
	case P_SOCKET_NETLINK:
		return socket_raw(AF_NETLINK, SOCK_RAW);
	case P_SOCKETPAIR_UNIX:
		return socketpair_of(AF_UNIX);
	case P_PERSONALITY_QUERY:
		return syscall(SYS_personality, 0xffffffffUL);
	case P_PERSONALITY_LINUX:
		return syscall(SYS_personality, (unsigned long)PER_LINUX);
	case P_IOCTL_FIONREAD:
		return ioctl_pipe(FIONREAD);
	case P_CLOCK_GETTIME: {
		struct timespec ts;
		return syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	}
	/* The kernel: EFAULT, EBADF, EBADF. */
	case P_IO_URING_SETUP:
		return syscall(SYS_io_uring_setup, 1, NULL);
	case P_IO_URING_ENTER:
		return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
	case P_IO_URING_REGISTER:
		return syscall(SYS_io_uring_register, -1, 0, NULL, 0);
	/* The kernel: a socket (vsock is loaded here), or EAFNOSUPPORT. */
	case P_SOCKET_VSOCK:
		return socket_raw(AF_VSOCK, SOCK_STREAM);
	case P_SOCKET_ALG:
		return socket_raw(AF_ALG, SOCK_SEQPACKET);
	/* The kernel reads an int: this would be an AF_INET socket. */
	case P_SOCKET_INET_HIGH_BITS:
		return socket_raw(AF_INET | (1UL << 32), SOCK_DGRAM);
	case P_SOCKETPAIR_INET: /* the kernel: EOPNOTSUPP */
		return socketpair_of(AF_INET);
	case P_PIDFD_GETFD: /* the kernel: EBADF */
		return syscall(SYS_pidfd_getfd, -1, 0, 0);
	case P_PROCESS_MADVISE:
		return syscall(SYS_process_madvise, -1, NULL, 0, 0, 0);
	/* On an fd that is no terminal at all: the kernel says EBADF. */
	case P_TIOCSTI:
		return syscall(SYS_ioctl, -1, (unsigned long)TIOCSTI, "x");
	case P_TIOCSTI_HIGH_BITS:
		return syscall(SYS_ioctl, -1, (unsigned long)TIOCSTI | 0xdead00000000UL, "x");
	case P_TIOCLINUX:
		return syscall(SYS_ioctl, -1, (unsigned long)TIOCLINUX, "x");
	/* The kernel would make them (in this throwaway child). */
	case P_UNSHARE_USER:
		return unshare(CLONE_NEWUSER);
	case P_UNSHARE_MOUNT:
		return unshare(CLONE_NEWNS);
	case P_CLONE_NEWUSER:
		return clone_newuser();
	case P_CLONE3: /* the kernel: EFAULT */
		return syscall(SYS_clone3, NULL, 0);
	case P_SETNS:
		return syscall(SYS_setns, -1, 0);
	case P_MOUNT: /* the kernel: ENODEV or ENOENT */
		return syscall(SYS_mount, "none", "/nonexistent-clbsd", "clbsd-nofs", 0, NULL);
	case P_KEYCTL: /* KEYCTL_GET_KEYRING_ID of the session keyring, harmless */
		return syscall(SYS_keyctl, 0, -3, 0);
	case P_BPF: /* the kernel: EFAULT */
		return syscall(SYS_bpf, 0, NULL, 64);
	case P_PERF_EVENT_OPEN:
		return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
	case P_PTRACE: /* the kernel: ESRCH */
		return syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 0x7ffffff0, 0, 0);
	case P_PROCESS_VM_READV: /* the kernel: 0 bytes */
		return syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0);
	case P_OPEN_BY_HANDLE_AT:
		return syscall(SYS_open_by_handle_at, -1, NULL, 0);
	case P_KEXEC_LOAD: /* an architecture that does not exist: EINVAL (or ENOSYS) */
		return syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL);
	case P_INIT_MODULE:
		return syscall(SYS_init_module, NULL, 0, "");
	case P_FINIT_MODULE:
		return syscall(SYS_finit_module, -1, "", 0);
	case P_USERFAULTFD: /* the kernel: EINVAL */
		return syscall(SYS_userfaultfd, 0x7fff0000);
	case P_KCMP:
		return syscall(SYS_kcmp, -1, -1, 0, 0, 0);
	case P_PERSONALITY_NO_ASLR:
		return syscall(SYS_personality, (unsigned long)(PER_LINUX | ADDR_NO_RANDOMIZE));
	/* The kernel reads an unsigned int: this would be PER_LINUX. */
	case P_PERSONALITY_HIGH_BITS:
		return syscall(SYS_personality, 1UL << 32);
	case P_CLOCK_SETTIME:
		return syscall(SYS_clock_settime, CLOCK_REALTIME, NULL);
	case P_UNKNOWN_1000:
		return syscall(1000);
	/*
	 * lsm_list_modules (461, Linux 6.8), unknown to the list: the kernel
	 * answers EFAULT, the filter ENOSYS like for any call nobody reviewed.
	 */
	case P_NEWER_THAN_THE_LIST:
		return syscall(461, NULL, NULL, 0);
	case P_X32: /* getpid through the x32 ABI */
#if defined(__x86_64__)
		return syscall(0x40000000L | SYS_getpid);
#else
		errno = ENOSYS;
		return -1;
#endif
	case P_INT80:
#if defined(__x86_64__)
		return int80_getpid();
#else
		errno = ENOSYS;
		return -1;
#endif
	}
	errno = EINVAL;
	return -1;
}

/* Fork, load the default filter in the child, run the probe: 0 or the errno. */
static int under_filter(enum probe p)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct clbsd_err err;
		if (sec_lock(&err) < 0)
			_exit(255);
		_exit(res(run_probe(p)) & 0xff);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static const struct {
	enum probe p;
	const char *name;
	int want; /* 0: allowed */
} cases[] = {
	{P_GETPID, "getpid", 0},
	{P_THREAD, "pthread_create (clone3, then clone)", 0},
	{P_FORK, "fork", 0},
	{P_SOCKET_UNIX, "socket(AF_UNIX)", 0},
	{P_SOCKET_INET, "socket(AF_INET)", 0},
	{P_SOCKET_INET6, "socket(AF_INET6)", 0},
	{P_SOCKET_NETLINK, "socket(AF_NETLINK)", 0},
	{P_SOCKETPAIR_UNIX, "socketpair(AF_UNIX)", 0},
	{P_PERSONALITY_QUERY, "personality(0xffffffff)", 0},
	{P_PERSONALITY_LINUX, "personality(PER_LINUX)", 0},
	{P_IOCTL_FIONREAD, "ioctl(FIONREAD)", 0},
	{P_CLOCK_GETTIME, "clock_gettime", 0},
	{P_IO_URING_SETUP, "io_uring_setup", EPERM},
	{P_IO_URING_ENTER, "io_uring_enter", EPERM},
	{P_IO_URING_REGISTER, "io_uring_register", EPERM},
	{P_SOCKET_VSOCK, "socket(AF_VSOCK)", EAFNOSUPPORT},
	{P_SOCKET_ALG, "socket(AF_ALG)", EAFNOSUPPORT},
	{P_SOCKET_INET_HIGH_BITS, "socket(AF_INET | 1<<32)", EAFNOSUPPORT},
	{P_SOCKETPAIR_INET, "socketpair(AF_INET)", EAFNOSUPPORT},
	{P_PIDFD_GETFD, "pidfd_getfd", EPERM},
	{P_PROCESS_MADVISE, "process_madvise", EPERM},
	{P_TIOCSTI, "ioctl(TIOCSTI)", EPERM},
	{P_TIOCSTI_HIGH_BITS, "ioctl(TIOCSTI | 0xdead00000000)", EPERM},
	{P_TIOCLINUX, "ioctl(TIOCLINUX)", EPERM},
	{P_UNSHARE_USER, "unshare(CLONE_NEWUSER)", EPERM},
	{P_UNSHARE_MOUNT, "unshare(CLONE_NEWNS)", EPERM},
	{P_CLONE_NEWUSER, "clone(CLONE_NEWUSER)", EPERM},
	{P_CLONE3, "clone3", ENOSYS},
	{P_SETNS, "setns", EPERM},
	{P_MOUNT, "mount", EPERM},
	{P_KEYCTL, "keyctl", EPERM},
	{P_BPF, "bpf", EPERM},
	{P_PERF_EVENT_OPEN, "perf_event_open", EPERM},
	{P_PTRACE, "ptrace(PTRACE_ATTACH)", EPERM},
	{P_PROCESS_VM_READV, "process_vm_readv", EPERM},
	{P_OPEN_BY_HANDLE_AT, "open_by_handle_at", EPERM},
	{P_KEXEC_LOAD, "kexec_load", EPERM},
	{P_INIT_MODULE, "init_module", EPERM},
	{P_FINIT_MODULE, "finit_module", EPERM},
	{P_USERFAULTFD, "userfaultfd", EPERM},
	{P_KCMP, "kcmp", EPERM},
	{P_PERSONALITY_NO_ASLR, "personality(ADDR_NO_RANDOMIZE)", EPERM},
	{P_PERSONALITY_HIGH_BITS, "personality(1<<32)", EPERM},
	{P_CLOCK_SETTIME, "clock_settime", EPERM},
	{P_UNKNOWN_1000, "system call 1000", ENOSYS},
	{P_NEWER_THAN_THE_LIST, "lsm_list_modules (not in the list)", ENOSYS},
	{P_X32, "getpid through the x32 ABI", ENOSYS},
	{P_INT80, "getpid through int 0x80", ENOSYS},
};

TEST(each_call_gets_its_answer)
{
	int bad = 0;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int got = under_filter(cases[i].p);
		if (got != cases[i].want) {
			printf("  %s: got %d (%s), expected %d (%s)\n", cases[i].name, got,
			       got > 0 && got < 256 ? strerror(got) : "?", cases[i].want,
			       cases[i].want ? strerror(cases[i].want) : "allowed");
			bad++;
		}
	}
	CHECK_INT(bad, 0);
}

/* The refusals above are the filter's, not the kernel's: without it, other answers. */
TEST(refusals_come_from_the_filter)
{
	static const enum probe probes[] = {P_IO_URING_SETUP,	     P_PIDFD_GETFD,
					    P_TIOCSTI_HIGH_BITS,     P_CLONE3,
					    P_SOCKET_INET_HIGH_BITS, P_PERSONALITY_HIGH_BITS,
					    P_UNSHARE_USER,	     P_NEWER_THAN_THE_LIST};
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(res(run_probe(probes[i])) & 0xff);
		int st = 0;
		CHECK_INT(waitpid(pid, &st, 0), pid);
		CHECK(WIFEXITED(st));
		int e = WEXITSTATUS(st);
		if (e == EPERM || e == ENOSYS)
			FAILF("probe %d answers %s without the filter too", (int)probes[i],
			      strerror(e));
	}
}

/* The binary tree keeps the list cheap; the kernel's limit is 4096. */
TEST(filter_is_small)
{
	struct clbsd_err err;
	int fd = -1;
	CHECK_INT(sec_compile(&fd, &err), 0);
	off_t len = lseek(fd, 0, SEEK_END);
	close(fd);
	long insns = (long)(len / (off_t)sizeof(struct sock_filter));
	printf("  the filter has %ld instructions\n", insns);
	CHECK(insns > 0 && insns <= 1024);
}

TEST_MAIN_BEGIN("runtime_secure_filter")
RUN(each_call_gets_its_answer);
RUN(refusals_come_from_the_filter);
RUN(filter_is_small);
TEST_MAIN_END
