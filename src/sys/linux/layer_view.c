/* A read-only merged view of overlay layers (Linux: a detached overlayfs mount). See sys.h. */
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

int sys_layers_view(const char *const *layers, size_t n, struct clbsd_err *err)
{
	if (n == 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "a view of no layers");
	struct buf opt = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		/* overlayfs splits lowerdir at ':' and options at ','. */
		if (layers[i][0] != '/' || strpbrk(layers[i], ":,\\")) {
			buf_release(&opt);
			return clbsd_err_setmsg(
				err, CLBSD_E_INVALID, EINVAL,
				"layer %s: expected an absolute path without ':', ',' "
				"or '\\'",
				layers[i]);
		}
		buf_addf(&opt, "%s%s", i ? ":" : "", layers[i]);
	}
	autofree char *lower = buf_detach(&opt, NULL);
	autoclose int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return clbsd_err_set(err, errno == ENODEV ? CLBSD_E_UNAVAIL : CLBSD_E_INTERNAL,
				     errno, "open an overlay file system");
	/* Lower layers only: the mount is read-only and takes no upper or work dir of its own. */
	if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "overlay of %s", lower);
	int m = fsmount(fs, FSMOUNT_CLOEXEC,
			MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
				MOUNT_ATTR_NOEXEC);
	if (m < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mount the overlay of %s",
				     lower);
	/* The detached mount's root, readable; the mount goes when the last fd does. */
	int fd = openat(m, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = errno;
	close(m);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "open the overlay of %s", lower);
	return fd;
}
