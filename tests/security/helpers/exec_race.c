/*
 * exec_race: attack, from inside a container, the processes the host starts
 * in it (clbsd exec, :cmd health checks, (:exec ...) hooks) while they are
 * still on their way from clbsd-shim to their command (issue 14, item 1).
 *
 *   exec_race SECONDS   loop the attacks for SECONDS, then print a summary
 *   exec_race --self    print this process's Seccomp, NoNewPrivs and open
 *                       fds; exit 0 only when it is locked down (Seccomp 2,
 *                       NoNewPrivs 1) and holds nothing but fds 0-2
 *
 * Every process of the container's PID namespace that this program did not
 * start is a target. Targets are found by scanning /proc and, to catch the
 * moment right after the clone, by probing the next few pid numbers (pids
 * are handed out in order). On each target it tries:
 *   mem    open /proc/PID/mem read-write
 *   fd     read the links of /proc/PID/fd/ and reopen them
 *   pidfd  pidfd_open + pidfd_getfd of its fds 0-31
 *   exe    read /proc/PID/exe and open it for writing
 * A success counts as an escape when the target was not yet locked down
 * when it happened (status, read right after, shows Seccomp other than 2,
 * NoNewPrivs 0, or the shim's name clbsd-shim, so the target had not exec'd
 * its command: the kernel's exec_update_lock orders the open and the exec),
 * or when it exposes what the exec'd command never holds (an fd above 2, a
 * host path, a socket, a writable or unsealed executable, the host's
 * clbsd-shim). It prints one "ESCAPE ..." line per escape
 * (at most 3 per kind) and a summary line:
 *   attempts mem=N fd=N pidfd=N exe=N targets=N early=N escapes=N pidfd_errno=E
 * "early" counts targets seen before they were locked (the race window
 * was observed). Exit status: 0 when an attack got through, 1 when every
 * attack was refused, 3 when no target was ever seen (nothing proved).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 0x0008
#endif

#define MAXT 64

struct target {
	int pid;
	int hits; /* attacks made once it was locked; dropped after enough */
	bool early;
};

static struct target tg[MAXT];
/* Pids attacked enough once locked: not taken up again by scan(). */
#define MAXPID (1 << 22)
static unsigned char done[MAXPID / 8];
/* Pids seen running the shim's image as a container command (see read_status). */
static unsigned char sx[MAXPID / 8];
static int ntg;
static int maxpid = 1;
static long n_mem, n_fd, n_pidfd, n_exe, n_targets, n_early, n_escapes;
static int pidfd_errno;
static int self;

struct pstat {
	int seccomp, nnp;
	char comm[32];
	bool selfexe; /* argv[0] is /proc/self/exe: the container ran the shim's image */
};

/* 0 when /proc/PID/status was read; -1 when the process is gone. */
static int read_status(int pid, struct pstat *st)
{
	char p[64], buf[4096];
	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	st->seccomp = -1;
	st->nnp = -1;
	st->comm[0] = '\0';
	char *l = buf;
	while (l && *l) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(l, "State:\t", 7) == 0 && (l[7] == 'Z' || l[7] == 'X'))
			return -1; /* exited: nothing left to judge */
		if (strncmp(l, "Name:\t", 6) == 0)
			snprintf(st->comm, sizeof(st->comm), "%s", l + 6);
		else if (strncmp(l, "Seccomp:\t", 9) == 0)
			st->seccomp = atoi(l + 9);
		else if (strncmp(l, "NoNewPrivs:\t", 12) == 0)
			st->nnp = atoi(l + 12);
		l = nl ? nl + 1 : NULL;
	}
	/*
	 * A command whose interpreter is /proc/self/exe runs the shim's image
	 * (named clbsd-shim) after its exec, as a container process: that is
	 * not a process on its way in, and its argv says so. An empty argv
	 * is a process exiting (its memory is gone): nothing left to judge.
	 */
	snprintf(p, sizeof(p), "/proc/%d/cmdline", pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	if (pid < MAXPID && strncmp(buf, "/proc/self/exe", 15) == 0)
		sx[pid / 8] |= (unsigned char)(1 << (pid % 8));
	st->selfexe = pid < MAXPID && (sx[pid / 8] & (1 << (pid % 8)));
	return 0;
}

static bool locked(const struct pstat *st)
{
	return st->seccomp == 2 && st->nnp == 1 &&
	       (strcmp(st->comm, "clbsd-shim") != 0 || st->selfexe);
}

/* At most 3 lines per kind of escape (what is a string literal). */
static void escape(int pid, const char *what, const char *detail)
{
	static const char *kinds[16];
	static int shown[16];
	n_escapes++;
	int k = 0;
	while (k < 15 && kinds[k] && kinds[k] != what)
		k++;
	kinds[k] = what;
	if (shown[k]++ < 3)
		printf("ESCAPE pid %d: %s: %s\n", pid, what, detail);
}

/* After a success on pid: was it still on its way (not locked)? */
static bool unlocked_after(int pid, char *why, size_t len)
{
	struct pstat st;
	if (read_status(pid, &st) < 0)
		return false; /* gone: cannot tell, the other checks decide */
	if (locked(&st))
		return false;
	snprintf(why, len, "target not locked (Name %s, Seccomp %d, NoNewPrivs %d)", st.comm,
		 st.seccomp, st.nnp);
	return true;
}

/*
 * exec_race --self, the command the health checks and hooks run, opens two
 * files of its own after it is locked down: its /proc/self/status and its
 * /proc/self/fd listing. Those are the fds above 2 the command itself holds.
 */
static bool own_fd(int pid, const char *l)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd", pid);
	if (strcmp(l, p) == 0)
		return true;
	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	return strcmp(l, p) == 0;
}

static bool benign_link(const char *l)
{
	return strcmp(l, "/dev/null") == 0 || strncmp(l, "/dev/pts/", 9) == 0 ||
	       strncmp(l, "pipe:", 5) == 0;
}

static void attack_mem(int pid)
{
	char p[64], why[160];
	snprintf(p, sizeof(p), "/proc/%d/mem", pid);
	n_mem++;
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (unlocked_after(pid, why, sizeof(why)))
		escape(pid, "opened /proc/PID/mem read-write", why);
	close(fd);
}

static void attack_fd(int pid)
{
	char p[64], why[300], l[256];
	snprintf(p, sizeof(p), "/proc/%d/fd", pid);
	n_fd++;
	DIR *d = opendir(p);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int n = atoi(e->d_name);
		char lp[96];
		snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", pid, n);
		ssize_t k = readlink(lp, l, sizeof(l) - 1);
		if (k < 0)
			continue;
		l[k] = '\0';
		bool unlocked = unlocked_after(pid, why, sizeof(why));
		if (!unlocked && own_fd(pid, l))
			continue;
		if (unlocked) {
			char w[900];
			snprintf(w, sizeof(w), "fd %d -> %s (%s)", n, l, why);
			escape(pid, "read /proc/PID/fd link", w);
		} else if (n > 2 || !benign_link(l)) {
			snprintf(why, sizeof(why), "fd %d -> %s", n, l);
			escape(pid, "read /proc/PID/fd link of an fd the command never holds", why);
		}
		if (n > 2) {
			int r = open(lp, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
			if (r >= 0) {
				snprintf(why, sizeof(why), "fd %d -> %s", n, l);
				escape(pid, "reopened /proc/PID/fd/N", why);
				close(r);
			}
		}
	}
	closedir(d);
}

/* A socket taken from a target: read what the daemon sends it. */
static void drain_socket(int pid, int fd)
{
	char buf[512];
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int from = c >= 0 ? c : fd;
	for (int i = 0; i < 50; i++) {
		ssize_t n = recv(from, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n > 0) {
			buf[n] = '\0';
			for (ssize_t j = 0; j < n; j++)
				if (buf[j] == '\n' || buf[j] == '\r')
					buf[j] = ' ';
			escape(pid, "read from a socket taken with pidfd_getfd", buf);
			break;
		}
		usleep(1000);
	}
	if (c >= 0)
		close(c);
}

static void attack_pidfd(int pid)
{
	char why[300];
	n_pidfd++;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0) {
		pidfd_errno = errno;
		return;
	}
	for (int n = 0; n < 32; n++) {
		int fd = (int)syscall(SYS_pidfd_getfd, pfd, n, 0);
		if (fd < 0) {
			if (errno != EBADF)
				pidfd_errno = errno;
			continue;
		}
		char lp[64], l[256];
		snprintf(lp, sizeof(lp), "/proc/self/fd/%d", fd);
		ssize_t k = readlink(lp, l, sizeof(l) - 1);
		l[k > 0 ? k : 0] = '\0';
		if (unlocked_after(pid, why, sizeof(why))) {
			char w[900];
			snprintf(w, sizeof(w), "fd %d -> %s (%s)", n, l, why);
			escape(pid, "pidfd_getfd", w);
		} else if ((n > 2 || !benign_link(l)) && !own_fd(pid, l)) {
			snprintf(why, sizeof(why), "fd %d -> %s", n, l);
			escape(pid, "pidfd_getfd of an fd the command never holds", why);
		}
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
			drain_socket(pid, fd);
		close(fd);
	}
	close(pfd);
}

static void attack_exe(int pid)
{
	char p[64], l[256], why[600];
	snprintf(p, sizeof(p), "/proc/%d/exe", pid);
	n_exe++;
	ssize_t k = readlink(p, l, sizeof(l) - 1);
	if (k >= 0) {
		l[k] = '\0';
		if (strstr(l, "clbsd-shim") && strncmp(l, "/memfd:", 7) != 0) {
			snprintf(why, sizeof(why), "exe -> %s", l);
			escape(pid, "the host's clbsd-shim is visible as /proc/PID/exe", why);
		} else if (unlocked_after(pid, why, sizeof(why))) {
			escape(pid, "read /proc/PID/exe", why);
		}
	}
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	/*
	 * CVE-2019-5736: keep the executable open, reopen it for writing. A
	 * sealed memfd cannot be written whatever the open says; never write,
	 * the file might be the host's.
	 */
	char lp[64];
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", fd);
	int w = open(lp, O_WRONLY | O_CLOEXEC);
	if (w >= 0) {
		int seals = fcntl(w, F_GET_SEALS);
		if (seals < 0 || !(seals & F_SEAL_WRITE)) {
			snprintf(why, sizeof(why), "exe -> %s, seals %d", k >= 0 ? l : "?", seals);
			escape(pid, "opened /proc/PID/exe for writing, not sealed", why);
		}
		close(w);
	}
	close(fd);
}

static void attack(struct target *t)
{
	attack_mem(t->pid);
	attack_fd(t->pid);
	attack_exe(t->pid);
	attack_pidfd(t->pid);
}

static bool have(int pid)
{
	for (int i = 0; i < ntg; i++)
		if (tg[i].pid == pid)
			return true;
	return false;
}

static void add(int pid)
{
	if (pid == self || pid >= MAXPID || (done[pid / 8] & (1 << (pid % 8))) || have(pid) ||
	    ntg == MAXT)
		return;
	struct pstat st;
	if (read_status(pid, &st) < 0)
		return;
	tg[ntg].pid = pid;
	tg[ntg].hits = 0;
	tg[ntg].early = false;
	ntg++;
	n_targets++;
	if (pid > maxpid)
		maxpid = pid;
}

static void scan(void)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid > 1)
			add(pid);
	}
	closedir(d);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int self_check(void)
{
	struct pstat st;
	if (read_status(getpid(), &st) < 0)
		return 2;
	printf("Seccomp %d NoNewPrivs %d\n", st.seccomp, st.nnp);
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 2;
	int dfd = dirfd(d), extra = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int n = atoi(e->d_name);
		if (n == dfd)
			continue;
		char lp[64], l[256];
		snprintf(lp, sizeof(lp), "/proc/self/fd/%d", n);
		ssize_t k = readlink(lp, l, sizeof(l) - 1);
		l[k > 0 ? k : 0] = '\0';
		printf("fd %d -> %s\n", n, l);
		if (n > 2)
			extra++;
	}
	closedir(d);
	char l[256];
	ssize_t k = readlink("/proc/self/exe", l, sizeof(l) - 1);
	l[k > 0 ? k : 0] = '\0';
	printf("exe %s\n", l);
	return st.seccomp == 2 && st.nnp == 1 && extra == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--self") == 0)
		return self_check();
	if (argc != 2 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: exec_race SECONDS | --self\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	self = getpid();
	double end = now() + atoi(argv[1]);
	unsigned long it = 0;
	while (now() < end) {
		/* The next pids: a process the host just cloned in is there first. */
		for (int p = maxpid + 1; p <= maxpid + 3; p++)
			add(p);
		if ((it++ & 63) == 0)
			scan();
		for (int i = 0; i < ntg; i++) {
			struct target *t = &tg[i];
			struct pstat st;
			if (read_status(t->pid, &st) < 0) {
				tg[i--] = tg[--ntg];
				continue;
			}
			bool was_locked = locked(&st);
			if (!was_locked && !t->early) {
				t->early = true;
				n_early++;
			}
			attack(t);
			/* A locked, running command: a few rounds are enough. */
			if (was_locked && ++t->hits > 20) {
				done[t->pid / 8] |= (unsigned char)(1 << (t->pid % 8));
				tg[i--] = tg[--ntg];
			}
		}
	}
	printf("attempts mem=%ld fd=%ld pidfd=%ld exe=%ld targets=%ld early=%ld escapes=%ld "
	       "pidfd_errno=%d\n",
	       n_mem, n_fd, n_pidfd, n_exe, n_targets, n_early, n_escapes, pidfd_errno);
	if (n_escapes)
		return 0;
	return n_targets ? 1 : 3;
}
