/* The process itself on Linux: prctl and /proc/self. See sys.h. */
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <sys/prctl.h>
#include <unistd.h>

int sys_set_subreaper(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ? -errno : 0;
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
