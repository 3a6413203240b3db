/* A pseudo-terminal on Linux: posix_openpt, TIOCGPTPEER. See sys.h. */
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int sys_pty_open(int *master, int *slave, uint16_t rows, uint16_t cols, struct clbsd_err *err)
{
	autoclose int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return clbsd_err_set(err, CLBSD_E_UNAVAIL, errno, "open a PTY (/dev/ptmx)");
	if (unlockpt(m) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "unlock PTY");
	int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		char name[64];
		if (ptsname_r(m, name, sizeof(name)) != 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "find PTY slave");
		s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open PTY slave %s",
					     name);
	}
	if (rows && cols) {
		struct winsize ws = {.ws_row = rows, .ws_col = cols};
		ioctl(m, TIOCSWINSZ, &ws);
	}
	fd_set_nonblock(m, true);
	*slave = s;
	*master = steal_fd(&m);
	return 0;
}
