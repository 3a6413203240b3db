#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int proc_run(char *const argv[], char **out, struct clbsd_err *err)
{
	return proc_run_in(argv, -1, out, err);
}

int proc_run_full(char *const argv[], int in_fd, char **out, char **errout, int *status_out,
		  struct clbsd_err *err)
{
	int opipe[2], epipe[2];
	if (pipe2(opipe, O_CLOEXEC) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "pipe");
	if (pipe2(epipe, O_CLOEXEC) < 0) {
		close(opipe[0]);
		close(opipe[1]);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "pipe");
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(opipe[0]), close(opipe[1]), close(epipe[0]), close(epipe[1]);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "fork for %s", argv[0]);
	}
	if (pid == 0) {
		int devnull = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(opipe[1], 1);
		dup2(epipe[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(opipe[1]);
	close(epipe[1]);
	struct buf ob = BUF_INIT, eb = BUF_INIT;
	struct pollfd pfd[2] = {{opipe[0], POLLIN, 0}, {epipe[0], POLLIN, 0}};
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			char b[8192];
			ssize_t n = read(pfd[i].fd, b, sizeof(b));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				open_fds--;
				continue;
			}
			struct buf *t = i == 0 ? &ob : &eb;
			if (t->len < (64u << 20))
				buf_add(t, b, (size_t)n);
		}
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*status_out = status;
	if (out)
		*out = buf_detach(&ob, NULL);
	else
		buf_release(&ob);
	if (errout)
		*errout = buf_detach(&eb, NULL);
	else
		buf_release(&eb);
	return 0;
}

int proc_run_in(char *const argv[], int in_fd, char **out, struct clbsd_err *err)
{
	autofree char *o = NULL, *e = NULL;
	int status = 0;
	if (proc_run_full(argv, in_fd, &o, &e, &status, err) < 0)
		return -err->code;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *nl = e ? strchr(e, '\n') : NULL;
		if (nl)
			*nl = '\0';
		if (WIFEXITED(status))
			return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s exited with %d%s%s",
						argv[0], WEXITSTATUS(status), e && *e ? ": " : "",
						e ? e : "");
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s killed by signal %d",
					argv[0], WTERMSIG(status));
	}
	if (out)
		*out = steal_ptr(&o);
	return 0;
}

void sig_reset_ignored(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	uint64_t ign = ~(uint64_t)0;
	char buf[2048];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		const char *p = n > 0 ? (buf[n] = '\0', strstr(buf, "\nSigIgn:\t")) : NULL;
		unsigned long long v;
		if (p && sscanf(p + 9, "%llx", &v) == 1)
			ign = v;
	}
	for (int s = 1; s < NSIG && s <= 64; s++)
		if (s != SIGKILL && s != SIGSTOP && (ign & ((uint64_t)1 << (s - 1))))
			signal(s, SIG_DFL);
}
