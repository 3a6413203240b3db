/* Mount probes on Linux: unshare, mount, /proc/self/mountinfo, statfs. See sys.h. */
#include "sys/sys.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

bool sys_mount_works(const char *fstype, const char *target, const char *opts)
{
	pid_t pid = fork();
	if (pid == 0) {
		/* A namespace of its own: the mount goes away with the child. */
		if (unshare(CLONE_NEWNS) < 0)
			_exit(1);
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(1);
		_exit(mount(fstype, target, fstype, 0, opts) == 0 ? 0 : 1);
	}
	int status = 0;
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

bool sys_root_is_shared(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool shared = false;
	while (fgets(line, sizeof(line), f)) {
		char mnt[4096];
		if (sscanf(line, "%*d %*d %*s %*s %4095s", mnt) == 1 && strcmp(mnt, "/") == 0) {
			char *sep = strstr(line, " - ");
			char *sh = strstr(line, " shared:");
			shared =
				sh && sep && sh < sep; /* the last "/" entry is the one in effect */
		}
	}
	fclose(f);
	return shared;
}

bool sys_is_fuse(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}
