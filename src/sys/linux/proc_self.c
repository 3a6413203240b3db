/* The process itself and its children on Linux: prctl, pidfd and /proc/self. See sys.h. */
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int sys_set_subreaper(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ? -errno : 0;
}

void sys_die_with_parent(int sig)
{
	prctl(PR_SET_PDEATHSIG, sig);
}

int sys_pid_watch_fd(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : fd;
}

char *sys_self_exe(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	return xstrdup(self);
}

void sys_set_name(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
}
