/* Signals on a descriptor on Linux: signalfd. See sys.h. */
#include "sys/sys.h"

#include <errno.h>
#include <sys/signalfd.h>
#include <unistd.h>

int sys_sigfd_open(const sigset_t *mask, struct clbsd_err *err)
{
	int fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "signalfd");
	return fd;
}

int sys_sigfd_next(int fd)
{
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(fd, &si, sizeof(si));
		if (n == (ssize_t)sizeof(si))
			return (int)si.ssi_signo;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		return 0;
	}
}
