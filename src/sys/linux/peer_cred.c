/* sys_peer_cred on Linux: SO_PEERCRED. See sys.h. */
#include "sys/sys.h"

#include <errno.h>
#include <sys/socket.h>

int sys_peer_cred(int fd, struct sys_peer *out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (fd < 0)
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	out->uid = cred.uid;
	out->gid = cred.gid;
	out->pid = cred.pid;
	return 0;
}
