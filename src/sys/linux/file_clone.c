/* File data on Linux: FICLONE, copy_file_range. See sys.h. */
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <unistd.h>

int sys_file_clone(int in, int out)
{
	return ioctl(out, FICLONE, in) == 0 ? 0 : -errno;
}

int sys_file_copy(int in, int out, off_t size, const char **what)
{
	/* At most `size`: a file that grows meanwhile is cut there. */
	off_t left = size;
	bool plain = false;
	*what = "copy";
	while (left > 0) {
		ssize_t n;
		if (!plain) {
			n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
				      errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
			if (n < 0)
				return -errno;
		} else {
			char b[65536];
			*what = "read";
			n = read(in, b, (size_t)left < sizeof(b) ? (size_t)left : sizeof(b));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n > 0 && write_all(out, b, (size_t)n) < 0) {
				*what = "write copy of";
				return -errno;
			}
		}
		if (n == 0)
			break;
		left -= n;
	}
	return 0;
}
