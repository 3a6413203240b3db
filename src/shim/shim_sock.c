/*
 * The shim's listening socket (its own, and the pool's): a Unix socket only
 * root, or group clbsd when it exists, may connect to. See shim.h.
 */
#include "shim/shim.h"
#include "util/util.h"

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int shim_listen(const char *path, struct clbsd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENAMETOOLONG,
					"socket path %s is too long (at most %zu bytes)", path,
					sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "socket");
	if (unlink(path) < 0 && errno != ENOENT) {
		int e = errno;
		close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "remove stale socket %s", path);
	}
	/* Never visible with looser permissions, not even for a moment. */
	mode_t old = umask(077);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (r < 0) {
		close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "bind %s", path);
	}
	if (chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "listen on %s", path);
	}
	/*
	 * Members of group clbsd attach to consoles (docs/operations.md): 0660
	 * root:clbsd. /etc/group is read directly: the shim is linked
	 * statically, where getgrnam() would need glibc's NSS modules.
	 */
	bool have_gid = false;
	gid_t gid = 0;
	FILE *gf = fopen("/etc/group", "re");
	for (struct group *g; gf && !have_gid && (g = fgetgrent(gf));)
		if (strcmp(g->gr_name, "clbsd") == 0) {
			gid = g->gr_gid;
			have_gid = true;
		}
	if (gf)
		fclose(gf);
	if (have_gid && (chown(path, (uid_t)-1, gid) < 0 || chmod(path, 0660) < 0)) {
		e = errno;
		close(fd);
		unlink(path);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "give %s to group clbsd", path);
	}
	return fd;
}
