/*
 * Kernel attacks from inside a container that the seccomp filter (and for
 * the last two, the read-only mounts) must refuse: sc_attack NAME [ARG].
 * Prints what happened; exits 0 only when the attack got through, 1 when it
 * was refused (the line says "refused: NAME: errno=ENAME"), 2 when the
 * attack could not even be set up. Where an attack that got through would
 * leave something behind (a key, a traced init), it is undone at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif

static const char *attack = "?";

static int refused(long r)
{
	if (r >= 0) {
		printf("GOT THROUGH: %s returned %ld\n", attack, r);
		return 0;
	}
	const char *name = strerrorname_np(errno);
	printf("refused: %s: errno=%s (%s)\n", attack, name ? name : "?", strerror(errno));
	return 1;
}

static int setup_failed(const char *what)
{
	printf("setup failed: %s: %s: %s\n", attack, what, strerror(errno));
	return 2;
}

/* A child that only waits to be attacked (killed by the caller). */
static pid_t victim(int *fd_in_it)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		for (;;)
			pause();
	}
	close(p[1]);
	*fd_in_it = p[1]; /* same number in the child */
	close(p[0]);
	return pid;
}

static void end(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static int pidfd_getfd_attack(void)
{
	int fd = -1;
	pid_t pid = victim(&fd);
	if (pid < 0)
		return setup_failed("fork");
	long pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		end(pid);
		return setup_failed("pidfd_open");
	}
	long r = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	int e = errno;
	end(pid);
	errno = e;
	return refused(r);
}

static int process_madvise_attack(void)
{
	long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		return setup_failed("pidfd_open");
	size_t len = (size_t)sysconf(_SC_PAGESIZE);
	void *page = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return setup_failed("mmap");
	memset(page, 1, len);
	struct iovec iov = {.iov_base = page, .iov_len = len};
	return refused(syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_COLD, 0));
}

/*
 * TIOCSTI on a terminal of our own: a new session whose controlling
 * terminal is a fresh pty, so that the kernel itself would accept it (a
 * refusal can only be the filter's). high: the request with high bits set.
 */
static int tiocsti_attack(unsigned long high)
{
	pid_t pid = fork();
	if (pid < 0)
		return setup_failed("fork");
	if (pid == 0) {
		if (setsid() < 0)
			_exit(setup_failed("setsid"));
		int m = posix_openpt(O_RDWR | O_NOCTTY);
		if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
			_exit(setup_failed("open a pty"));
		const char *name = ptsname(m);
		int s = name ? open(name, O_RDWR) : -1; /* becomes the controlling tty */
		if (s < 0)
			_exit(setup_failed("open the pty's other side"));
		char c = 'x';
		_exit(refused(syscall(SYS_ioctl, s, (unsigned long)TIOCSTI | high, &c)));
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}

static int clone_newuser_attack(void)
{
	long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL, 0);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return refused(r);
}

struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int clone3_attack(void)
{
	struct clone_args_v0 a = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
	long r = syscall(SYS_clone3, &a, sizeof(a));
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return refused(r);
}

/* A key in the user keyring of uid 0, which is the host's (keys are not namespaced). */
static int keyctl_attack(void)
{
	long r = syscall(SYS_add_key, "user", "clbsd-sc-attack", "x", 1, -4 /* user keyring */);
	int e = errno;
	if (r >= 0)
		syscall(SYS_keyctl, 21 /* KEYCTL_INVALIDATE */, r);
	errno = e;
	return refused(r);
}

static int bpf_attack(void)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 1;
	long r = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
	if (r >= 0)
		close((int)r);
	return refused(r);
}

static int perf_attack(void)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.disabled = 1;
	long r = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	if (r >= 0)
		close((int)r);
	return refused(r);
}

/* The container's init, a process beside this one in the container. */
static int ptrace_attack(void)
{
	long r = ptrace(PTRACE_ATTACH, 1, NULL, NULL);
	int e = errno;
	if (r == 0) {
		waitpid(1, NULL, __WALL);
		ptrace(PTRACE_DETACH, 1, NULL, NULL);
	}
	errno = e;
	return refused(r);
}

/*
 * "shocker": open a file of the host's file system by handle, which no mount
 * or root limits. The handle is the one of the bind-mounted helper itself,
 * or (where the file system gives none) ext4's root directory, inode 2.
 */
static int open_by_handle_attack(void)
{
	struct {
		struct file_handle h;
		unsigned char bytes[128];
	} fh;
	memset(&fh, 0, sizeof(fh));
	fh.h.handle_bytes = sizeof(fh.bytes);
	int mnt = 0;
	if (name_to_handle_at(AT_FDCWD, "/sc_attack", &fh.h, &mnt, 0) < 0) {
		memset(&fh, 0, sizeof(fh));
		fh.h.handle_bytes = 8;
		fh.h.handle_type = 1;
		fh.bytes[0] = 2; /* f_handle[0] */
	}
	int mfd = open("/sc_attack", O_RDONLY);
	if (mfd < 0)
		return setup_failed("open /sc_attack");
	long r = syscall(SYS_open_by_handle_at, mfd, &fh.h, O_RDONLY);
	if (r >= 0)
		close((int)r);
	return refused(r);
}

static int init_module_attack(void)
{
	static const char not_a_module[] = "\177ELF not a module";
	return refused(syscall(SYS_init_module, not_a_module, sizeof(not_a_module), ""));
}

static int finit_module_attack(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return setup_failed("open /proc/self/exe");
	return refused(syscall(SYS_finit_module, fd, "", 0));
}

/* Written back unchanged if it ever got through: the test compares it anyway. */
static int write_file_attack(const char *path)
{
	if (!path)
		return setup_failed("no path given");
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return refused(-1);
	long r = write(fd, "|/clbsd-sc-attack", 17);
	close(fd);
	return refused(r);
}

#if defined(__x86_64__)
static void no_compat(int sig)
{
	(void)sig;
	printf("refused: %s: errno=ENOSYS (no 32-bit entry in this kernel at all)\n", attack);
	_exit(1);
}
#endif

/* getpid through the 32-bit ABI (i386 number 20). */
static int int80_attack(void)
{
#if defined(__x86_64__)
	signal(SIGSEGV, no_compat);
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(20L)
			 : "rcx", "r8", "r9", "r10", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return refused(-1);
	}
	return refused(ret);
#else
	errno = ENOSYS;
	return refused(-1);
#endif
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: sc_attack NAME [ARG]\n");
		return 2;
	}
	attack = argv[1];
	const char *arg = argc > 2 ? argv[2] : NULL;
	const char *a = attack;
	if (!strcmp(a, "io_uring_setup")) {
		unsigned char params[120] = {0}; /* struct io_uring_params */
		long r = syscall(SYS_io_uring_setup, 4, params);
		if (r >= 0)
			close((int)r);
		return refused(r);
	}
	if (!strcmp(a, "vsock")) {
		/* Only made, never connected: the host listens on vsock here. */
		long r = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (r >= 0)
			close((int)r);
		return refused(r);
	}
	if (!strcmp(a, "pidfd_getfd"))
		return pidfd_getfd_attack();
	if (!strcmp(a, "process_madvise"))
		return process_madvise_attack();
	if (!strcmp(a, "tiocsti"))
		return tiocsti_attack(0);
	if (!strcmp(a, "tiocsti_high"))
		return tiocsti_attack(0xdead00000000UL);
	if (!strcmp(a, "mount"))
		return refused(mount("none", "/mnt", "tmpfs", 0, NULL));
	if (!strcmp(a, "unshare_user"))
		return refused(unshare(CLONE_NEWUSER));
	if (!strcmp(a, "unshare_mount"))
		return refused(unshare(CLONE_NEWNS));
	if (!strcmp(a, "clone_newuser"))
		return clone_newuser_attack();
	if (!strcmp(a, "clone3"))
		return clone3_attack();
	if (!strcmp(a, "keyctl"))
		return keyctl_attack();
	if (!strcmp(a, "bpf"))
		return bpf_attack();
	if (!strcmp(a, "perf_event_open"))
		return perf_attack();
	if (!strcmp(a, "ptrace"))
		return ptrace_attack();
	if (!strcmp(a, "open_by_handle_at"))
		return open_by_handle_attack();
	if (!strcmp(a, "kexec_load")) /* an architecture that does not exist: harmless */
		return refused(syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL));
	if (!strcmp(a, "init_module"))
		return init_module_attack();
	if (!strcmp(a, "finit_module"))
		return finit_module_attack();
	if (!strncmp(a, "write", 5)) /* write_proc_sys, write_sys */
		return write_file_attack(arg);
	if (!strcmp(a, "int80"))
		return int80_attack();
	if (!strcmp(a, "unknown"))
		return refused(syscall(1000));
	fprintf(stderr, "sc_attack: no attack named %s\n", a);
	return 2;
}
