/*
 * The default syscall filter handed from the daemon to its shims
 * (rt_ops.filter_export / filter_use): a sealed memfd of BPF, which a
 * process uses instead of compiling the filter itself, and which it does
 * not trust unless it is sealed. Each check loads the filter in a forked
 * child and makes a call the filter refuses (keyctl).
 */
#include "runtime/runtime.h"
#include "runtime/linux/rt_linux.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* In a child: use fd (or not), lock, and report what keyctl answers (0: allowed). */
static int keyctl_after_lock(int fd)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct clbsd_err err;
		if (fd >= 0)
			sec_use_compiled(fd);
		if (sec_lock(&err) < 0)
			_exit(100);
		/* KEYCTL_GET_KEYRING_ID of the session keyring. */
		long r = syscall(SYS_keyctl, 0, -3, 0);
		_exit(r < 0 ? (errno == EPERM ? 1 : 2) : 0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(exported_filter_is_sealed_bpf)
{
	struct clbsd_err err;
	int fd = -1;
	CHECK_INT(rt_default_ops()->filter_export(&fd, &err), 0);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK_INT(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	off_t len = lseek(fd, 0, SEEK_END);
	CHECK(len > 0 && len % (off_t)sizeof(struct sock_filter) == 0);
	CHECK(pwrite(fd, "x", 1, 0) < 0 && errno == EPERM);
	close(fd);
}

TEST(given_filter_is_enforced)
{
	struct clbsd_err err;
	int fd = -1;
	CHECK_INT(rt_default_ops()->filter_export(&fd, &err), 0);
	CHECK_INT(keyctl_after_lock(fd), 1);
	close(fd);
}

/* Anything but a sealed memfd could be changed under us: compile instead. */
TEST(unsealed_filter_is_not_trusted)
{
	int fd = memfd_create("fake", MFD_CLOEXEC);
	CHECK(fd >= 0);
	/* "allow everything": one BPF return of SECCOMP_RET_ALLOW */
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, 0x7fff0000U);
	CHECK_INT(write(fd, &allow, sizeof(allow)), (int)sizeof(allow));
	CHECK_INT(keyctl_after_lock(fd), 1);
	close(fd);
	CHECK_INT(keyctl_after_lock(-1), 1);
}

TEST_MAIN_BEGIN("runtime_secure")
RUN(exported_filter_is_sealed_bpf);
RUN(given_filter_is_enforced);
RUN(unsealed_filter_is_not_trusted);
TEST_MAIN_END
