/*
 * clbsd-shim --zygote: started once by clbsdd with its shim pool, it forks
 * every pool shim. Forking a process that is already running costs a
 * fraction of starting the binary again (exec, the page faults of a fresh
 * static binary, glibc's CPU probing, which traps to the hypervisor in a
 * VM), and the daemon no longer waits for a vfork child to exec.
 *
 * Protocol (fd 3, a SOCK_SEQPACKET socket from the daemon): each message is
 * the shim's argv as NUL-terminated strings, with the write end of the new
 * shim's ready pipe attached (SCM_RIGHTS). The child runs the shim as if it
 * had been started with that argv and the pipe as fd 3. Nothing is sent
 * back: the shim reports on its ready pipe, as a spawned one does. The
 * zygote exits when the daemon closes its end. Children are reaped by the
 * kernel (SIGCHLD ignored here, restored in the child).
 */
#include "shim/shim.h"
#include "util/util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ZYGOTE_MSG_MAX 16384

/* Split a message into argv; NULL when it is not a NUL-terminated list. */
static char **split_argv(char *buf, size_t len, int *argc)
{
	if (len == 0 || buf[len - 1] != '\0')
		return NULL;
	int n = 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			n++;
	char **argv = xcalloc((size_t)n + 1, sizeof(char *));
	char *p = buf;
	for (int i = 0; i < n; i++) {
		argv[i] = p;
		p += strlen(p) + 1;
	}
	*argc = n;
	return argv;
}

int shim_zygote(int ctl, int (*shim_main)(int argc, char **argv))
{
	signal(SIGCHLD, SIG_IGN);
	static char buf[ZYGOTE_MSG_MAX];
	for (;;) {
		union {
			struct cmsghdr h;
			char space[CMSG_SPACE(sizeof(int))];
		} cm;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cm.space,
			.msg_controllen = sizeof(cm.space),
		};
		ssize_t n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0; /* the daemon went away */
		int ready = -1;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&ready, CMSG_DATA(c), sizeof(int));
		int argc = 0;
		char **argv = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || ready < 0
				      ? NULL
				      : split_argv(buf, (size_t)n, &argc);
		if (!argv) {
			/* Not ours to run; the daemon sees the pipe close and retries. */
			if (ready >= 0)
				close(ready);
			continue;
		}
		pid_t pid = fork();
		if (pid == 0) {
			signal(SIGCHLD, SIG_DFL);
			close(ctl);
			if (ready != 3) {
				if (dup2(ready, 3) < 0)
					_exit(1);
				close(ready);
			}
			optind = 0; /* getopt starts over for the new argv */
			_exit(shim_main(argc, argv));
		}
		/* A failed fork shows as the pipe closing without a report. */
		close(ready);
		free(argv);
	}
}
