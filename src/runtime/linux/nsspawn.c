/*
 * The Linux runtime: a container is a set of fresh namespaces (mount, PID,
 * UTS, IPC, network with only loopback, cgroup) plus a cgroup, entered by an
 * init that builds the file system view, pivots into it and waits to be
 * released.
 *
 * Process design. The caller (the shim) must be able to waitpid() both the
 * init and every exec'd process, and the clone that enters the namespaces
 * must not happen in a possibly multi-threaded caller (a raw clone() leaves
 * libc locks of other threads held). So both create() and exec() fork() a
 * short-lived helper, and the helper clone()s the real process with
 * CLONE_PARENT: it becomes a child of the caller, in the new (create) or
 * joined (exec) namespaces. The helper reports the pid and exits; the caller
 * reaps the helper and later waits for the real process as its own child.
 * A caller that reaps every child with waitpid(-1) from a SIGCHLD handler
 * will also reap the helper; that is tolerated.
 *
 * Each call has a SOCK_SEQPACKET socketpair, close-on-exec on both sides.
 * Messages: 'P' pid (helper -> caller), 'G' go (caller -> init: after the
 * cgroup join, and again as the release), 'R' ready (init -> caller, setup
 * done) and 'E' error (any child -> caller: errno, kind, message). The
 * child's end closes when it execs, so end-of-file after release (or after
 * 'P' for exec) means the exec succeeded; an 'E' carries why it did not.
 * The caller's end of a created container is the release fd.
 */
#include "runtime/linux/rt_linux.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

enum { MSG_PID = 'P', MSG_GO = 'G', MSG_READY = 'R', MSG_ERR = 'E', MSG_SPEC = 'S' };

struct msg {
	char type;
	int32_t code;
	int32_t kind;
	int32_t pid;
	char text[CLBSD_ERR_MSG_MAX];
};

/* Header size: everything up to the text. */
#define MSG_HDR offsetof(struct msg, text)

static int send_msg(int sock, char type, int32_t pid, const struct clbsd_err *e)
{
	struct msg m;
	memset(&m, 0, MSG_HDR);
	m.type = type;
	m.pid = pid;
	size_t len = MSG_HDR;
	if (e) {
		m.code = e->code;
		m.kind = (int32_t)e->kind;
		size_t n = strnlen(e->msg, sizeof(m.text) - 1);
		memcpy(m.text, e->msg, n);
		m.text[n] = '\0';
		len += n + 1;
	}
	ssize_t w;
	do
		w = send(sock, &m, len, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w < 0 ? -errno : 0;
}

/* 1: a message, 0: end of file, <0: -errno. */
static int recv_msg(int sock, struct msg *m)
{
	ssize_t r;
	do
		r = recv(sock, m, sizeof(*m) - 1, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	if ((size_t)r < MSG_HDR)
		return -EPROTO;
	((char *)m)[r] = '\0';
	if ((size_t)r == MSG_HDR)
		m->text[0] = '\0';
	return 1;
}

static int msg_err(const struct msg *m, struct clbsd_err *err)
{
	int kind = m->kind;
	if (kind <= CLBSD_E_NONE || kind > CLBSD_E_UNAVAIL)
		kind = CLBSD_E_INTERNAL;
	return clbsd_err_setmsg(err, (enum clbsd_err_kind)kind, m->code ? m->code : EIO, "%s",
				m->text);
}

/* In a child: report and exit. */
static __attribute__((noreturn)) void die(int sock, const struct clbsd_err *e)
{
	send_msg(sock, MSG_ERR, 0, e);
	_exit(127);
}

/* Wait for 'G'; anything else (the caller gave up or went away) ends the child. */
static void wait_go(int sock)
{
	struct msg m;
	if (recv_msg(sock, &m) != 1 || m.type != MSG_GO)
		_exit(1);
}

/* fork()-like clone with extra flags. The helper calling it is single-threaded. */
static pid_t clone_flags(unsigned long flags)
{
#if defined(__s390__) || defined(__s390x__)
	return (pid_t)syscall(SYS_clone, 0, flags | SIGCHLD, NULL, NULL, NULL);
#else
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, NULL);
#endif
}

/* The kernel's struct clone_args (v2, with the cgroup field). */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		set_tid_size, cgroup;
};
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/*
 * clone_flags(), placing the child straight into the v2 cgroup v2dir when
 * there is one, so it never has to be moved there (see cg_open_join()).
 * *placed says whether that happened; kernels without clone3 fall back.
 */
static pid_t clone_into(unsigned long flags, int v2dir, bool *placed)
{
	*placed = false;
	if (v2dir >= 0) {
		struct clone3_args a;
		memset(&a, 0, sizeof(a));
		a.flags = flags | CLONE_INTO_CGROUP;
		/* clone3 refuses an exit signal with CLONE_PARENT: the child gets ours. */
		a.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
		a.cgroup = (uint64_t)v2dir;
		long pid = syscall(SYS_clone3, &a, sizeof(a));
		if (pid >= 0) {
			*placed = true;
			return (pid_t)pid;
		}
		if (errno != ENOSYS && errno != E2BIG)
			return -1;
	}
	return clone_flags(flags);
}

/* First thing in a new container process: join the cgroups (see rt_linux.h). */
static void join_cgroups(const int *fds, size_t n, int v2dir, bool placed, int sock)
{
	int r = cg_join_fds(fds, n, placed ? -1 : v2dir);
	if (r < 0) {
		struct clbsd_err err;
		clbsd_err_set(&err, CLBSD_E_INTERNAL, r, "join the container's cgroup");
		die(sock, &err);
	}
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- the process about to exec (init after release, or an exec'd process) ---- */

struct proc_cfg {
	char **argv;
	char **env;
	const char *cwd;
	uint32_t uid, gid;
	bool tty;
	uint64_t caps; /* the capability set (a mask of 1 << CAP_*) */
	struct rt_stdio io;
};

/* The container's capability set: its own, or the default. */
static uint64_t caps_of(const struct rt_spec *spec)
{
	return spec->caps_set ? spec->caps : sec_caps_default();
}

static int setup_stdio(const struct rt_stdio *io, bool tty, struct clbsd_err *err)
{
	int fds[3] = {io->in, io->out, io->err};
	/* Lift every fd out of 0..2 first, so that no dup2() clobbers a later source. */
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0 && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "dup stdio fd %d", i);
	for (int i = 0; i < 3; i++) {
		int fd = fds[i];
		if (fd < 0 && (fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open /dev/null");
		if (dup2(fd, i) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "dup2 stdio fd %d", i);
		close(fd);
	}
	if (setsid() < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "setsid");
	if (tty && ioctl(0, TIOCSCTTY, 0) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
				     "make stdin the controlling terminal (TIOCSCTTY)");
	return 0;
}

/*
 * Close every fd from 3 up except the n in keep (-1 entries are skipped):
 * closed, not close-on-exec, because a process on its way into a container
 * can be looked at before it execs (/proc/PID/fd, pidfd_getfd), and what
 * it holds then is what the container gets (CVE-2016-9962).
 * Async-signal-safe: it runs between fork and exec.
 */
static void close_fds_except(const int *keep, size_t n)
{
	int k[16];
	size_t m = 0;
	for (size_t i = 0; i < n && m < ARRAY_SIZE(k); i++)
		if (keep[i] > 2)
			k[m++] = keep[i];
	/* Insertion sort: a handful of fds. */
	for (size_t i = 1; i < m; i++)
		for (size_t j = i; j > 0 && k[j - 1] > k[j]; j--) {
			int t = k[j];
			k[j] = k[j - 1];
			k[j - 1] = t;
		}
	unsigned lo = 3;
	for (size_t i = 0; i <= m; i++) {
		unsigned hi = i < m ? (unsigned)k[i] : ~0U;
		if (hi > lo && syscall(SYS_close_range, lo, hi - 1, 0U) < 0) {
			/* Kernels before 5.9: one by one, up to the fd limit. */
			long max = sysconf(_SC_OPEN_MAX);
			if (max < 0 || max > 1 << 20)
				max = 1 << 20;
			for (long fd = lo; fd < max && fd < (long)hi; fd++)
				close((int)fd);
		}
		if (i < m)
			lo = (unsigned)k[i] + 1;
	}
}

/*
 * First thing in a helper forked from the shim, before it joins or makes any
 * namespace: the seccomp filter read into memory (its fd is about to go),
 * every fd of the shim closed but the n in keep (the report socket, the
 * stdio to pass on, namespace fds) and, with undumpable, not dumpable: then
 * nothing in the container may open its /proc/PID/mem, read its fd links
 * or take its fds with pidfd_getfd, and its clone inherits that until it
 * execs (CVE-2016-9962). An exec joins a container whose processes are
 * there to look; an init makes new, empty namespaces, where nothing runs
 * before it execs the command, so it stays dumpable (a user namespace's
 * maps are written through its /proc/PID).
 */
static void lock_helper(int sock, const int *keep, size_t n, bool undumpable)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (undumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "make the helper not dumpable");
		die(sock, &err);
	}
	if (sec_precompile(&err) < 0)
		die(sock, &err);
	close_fds_except(keep, n);
}

/*
 * From here on the process is in the container. Order matters: the stdio
 * goes to 0..2 and every other fd but the report socket (close-on-exec)
 * is closed before anything else; seccomp and no_new_privs follow the
 * credential change at once, so the process never runs as the container's
 * user without them; it stays not dumpable (a uid change may make it
 * dumpable again, per fs.suid_dumpable) until execve, which resets that
 * for the command (by then it is locked).
 */
static __attribute__((noreturn)) void exec_proc(const struct proc_cfg *c, int sock)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (setup_stdio(&c->io, c->tty, &err) < 0)
		die(sock, &err);
	close_fds_except(&sock, 1);
	if (sec_drop_bounding(c->caps, &err) < 0 || sec_set_user(c->uid, c->gid, c->caps, &err) < 0)
		die(sock, &err);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "stay not dumpable");
		die(sock, &err);
	}
	if (sec_lock(&err) < 0)
		die(sock, &err);
	if (chdir(c->cwd) < 0) {
		clbsd_err_set(&err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INVALID, errno,
			      "chdir %s", c->cwd);
		die(sock, &err);
	}
	sig_reset_ignored();
	environ = c->env;
	execvp(c->argv[0], c->argv);
	int e = errno;
	clbsd_err_set(&err, e == ENOENT || e == ENOTDIR ? CLBSD_E_NOTFOUND : CLBSD_E_INVALID, e,
		      "exec %s", c->argv[0]);
	die(sock, &err);
}

/* ---- create ---- */

static int loopback_up(struct clbsd_err *err)
{
	autoclose int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "socket for lo");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "get flags of lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "bring lo up");
	return 0;
}

/*
 * The spec's sysctls, each written to /proc/sys/KEY (dots as slashes). The
 * net.* and ipc files resolve to the namespaces of the process that opens
 * them, here the container's new ones; the names were checked (namespaced
 * only) by the daemon and by rt_spec_from_json.
 */
static int write_sysctls(const struct rt_spec *spec, struct clbsd_err *err)
{
	for (size_t i = 0; spec->sysctls && spec->sysctls[i]; i++) {
		const char *kv = spec->sysctls[i];
		const char *eq = strchr(kv, '=');
		char path[320];
		int n = snprintf(path, sizeof(path), "/proc/sys/%.*s", (int)(eq - kv), kv);
		if (n < 0 || (size_t)n >= sizeof(path))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENAMETOOLONG,
						"sysctl %.*s: name too long", (int)(eq - kv), kv);
		for (char *p = path + 10; *p; p++)
			if (*p == '.')
				*p = '/';
		autoclose int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return clbsd_err_set(
				err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INVALID, errno,
				"sysctl %.*s: open %s", (int)(eq - kv), kv, path);
		size_t len = strlen(eq + 1);
		if (write(fd, eq + 1, len) != (ssize_t)len)
			return clbsd_err_set(err, CLBSD_E_INVALID, errno, "sysctl %.*s = \"%s\"",
					     (int)(eq - kv), kv, eq + 1);
	}
	return 0;
}

/* The init from the cgroup namespace on: mounts, pivot, ready, wait for release, exec. */
static __attribute__((noreturn)) void init_setup(const struct rt_spec *spec,
						 const struct rt_stdio *io, const char *stage,
						 const struct uns_mounts *premade, int sock)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	/* Joined the cgroup already, so the new cgroup namespace is rooted there. */
	if (unshare(CLONE_NEWCGROUP) < 0) {
		clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "unshare the cgroup namespace");
		die(sock, &err);
	}
	/* Through the host's /proc/sys, which shows this process's own namespaces. */
	if (write_sysctls(spec, &err) < 0)
		die(sock, &err);
	if (mnt_setup_rootfs(spec, spec->tty ? io->in : -1, stage, premade, &err) < 0)
		die(sock, &err);
	if (sethostname(spec->hostname, strlen(spec->hostname)) < 0) {
		clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "sethostname %s", spec->hostname);
		die(sock, &err);
	}
	/* A prepared init (stage) brought it up ahead. */
	if (!stage && !spec->host_network && loopback_up(&err) < 0)
		die(sock, &err);
	if (send_msg(sock, MSG_READY, 0, NULL) < 0)
		_exit(1);
	wait_go(sock);
	struct proc_cfg c = {
		.argv = spec->argv,
		.env = spec->env,
		.cwd = spec->cwd,
		.uid = spec->uid,
		.gid = spec->gid,
		.tty = spec->tty,
		.caps = caps_of(spec),
		.io = *io,
	};
	exec_proc(&c, sock);
}

static __attribute__((noreturn)) void init_main(const struct rt_spec *spec,
						const struct rt_stdio *io,
						const struct uns_mounts *premade, int sock)
{
	wait_go(sock);
	init_setup(spec, io, NULL, premade, sock);
}

/*
 * Fork the helper and read its 'P' message. On success *child is the final
 * process (a child of the caller).
 */
static int spawn(pid_t helper, int sock, pid_t *child, struct clbsd_err *err)
{
	struct msg m;
	int r = recv_msg(sock, &m);
	int status = 0;
	while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
		;
	if (r == 1 && m.type == MSG_PID && m.pid > 0) {
		*child = m.pid;
		return 0;
	}
	if (r == 1 && m.type == MSG_ERR)
		return msg_err(&m, err);
	if (WIFSIGNALED(status))
		return clbsd_err_setmsg(
			err, CLBSD_E_INTERNAL, EPIPE,
			"start helper: killed by signal %d before it reported a pid",
			WTERMSIG(status));
	return clbsd_err_set(err, CLBSD_E_INTERNAL, r < 0 ? -r : EPIPE,
			     "start helper: no pid reported (exit status %d)",
			     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* What a helper runs in the child: it clones the init and reports its pid. */
struct helper_job {
	enum { JOB_CREATE, JOB_PREPARE } kind;
	const struct rt_spec *spec; /* create */
	const struct rt_stdio *io;  /* create */
	const char *stage;	    /* prepare */
};

static __attribute__((noreturn)) void prepared_main(const char *stage, int sock);

/*
 * The helper (a child of the caller): join the cgroup through fds opened
 * here, clone the init with CLONE_PARENT into new namespaces, report its pid
 * and exit. The init runs init_main (create) or prepared_main (prepare).
 */
static __attribute__((noreturn)) void helper_main(const struct cg_sys *cg, const char *cgroup,
						  const struct helper_job *job, int sock)
{
	struct clbsd_err err;
	const struct rt_stdio *io = job->kind == JOB_CREATE ? job->io : NULL;
	int keep[4] = {sock, io ? io->in : -1, io ? io->out : -1, io ? io->err : -1};
	lock_helper(sock, keep, ARRAY_SIZE(keep), false);
	int *fds = xcalloc(cg->n ? cg->n : 1, sizeof(int));
	int v2dir;
	if (cg_open_join(cg, cgroup, fds, &v2dir, &err) < 0)
		die(sock, &err);
	/*
	 * With a user namespace, the helper makes it and its idmapped mounts
	 * and joins it first (userns.c): the clone below then makes namespaces
	 * owned by it, and the init inherits the mounts' fds.
	 */
	struct uns_mounts um;
	uns_mounts_init(&um);
	bool userns = job->kind == JOB_CREATE && job->spec->userns.count > 0;
	if (userns && uns_enter(job->spec, &um, &err) < 0)
		die(sock, &err);
	bool placed;
	bool host_net = job->kind == JOB_CREATE && job->spec->host_network;
	pid_t pid = clone_into(CLONE_PARENT | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS |
				       CLONE_NEWIPC | (host_net ? 0 : CLONE_NEWNET),
			       v2dir, &placed);
	if (pid < 0) {
		clbsd_err_set(&err, errno == EPERM ? CLBSD_E_FORBIDDEN : CLBSD_E_INTERNAL, errno,
			      "clone the container init into new namespaces");
		die(sock, &err);
	}
	if (pid == 0) {
		join_cgroups(fds, cg->n, v2dir, placed, sock);
		cg_close_join(fds, cg->n, v2dir);
		if (job->kind == JOB_CREATE)
			init_main(job->spec, job->io, userns ? &um : NULL, sock);
		prepared_main(job->stage, sock);
	}
	send_msg(sock, MSG_PID, pid, NULL);
	_exit(0);
}

/*
 * Make the cgroup `cgroup` (with limits), fork the helper that clones the
 * init into new namespaces, let the init go and wait until it is ready.
 * On success *init is its pid and *sock the caller's end of its socket; on
 * failure nothing is left (init killed, cgroup removed).
 */
static int start_init(const char *cgroup, const struct rt_limits *limits,
		      const struct helper_job *job, pid_t *init_out, int *sock_out,
		      struct clbsd_err *err)
{
	const struct cg_sys *cg = cg_sys_get(err);
	if (!cg)
		return -err->code;
	int rc = cg_create_devs(cg, cgroup, limits,
				job->kind == JOB_CREATE ? job->spec->devices : NULL,
				job->kind == JOB_CREATE ? job->spec->n_devices : 0, err);
	if (rc < 0)
		return rc;
	int sv[2];
	pid_t init = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "socketpair");
		goto fail;
	}
	pid_t helper = fork();
	if (helper < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "fork");
		close(sv[0]);
		close(sv[1]);
		goto fail;
	}
	if (helper == 0) {
		close(sv[0]);
		helper_main(cg, cgroup, job, sv[1]);
	}
	close(sv[1]);
	if ((rc = spawn(helper, sv[0], &init, err)) < 0)
		goto fail_sock;
	/* The init waits for this go, so the helper's 'P' reaches us before its 'R'. */
	if (send_msg(sv[0], MSG_GO, 0, NULL) < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, EPIPE, "container init exited early");
		goto fail_sock;
	}
	struct msg m;
	int r = recv_msg(sv[0], &m);
	if (r != 1 || m.type != MSG_READY) {
		if (r == 1 && m.type == MSG_ERR)
			rc = msg_err(&m, err);
		else
			rc = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPIPE,
					      "container init exited during setup");
		goto fail_sock;
	}
	*init_out = init;
	*sock_out = sv[0];
	return 0;

fail_sock:
	close(sv[0]);
fail:
	if (init > 0) {
		kill(init, SIGKILL);
		reap(init);
	}
	struct clbsd_err e2;
	cg_destroy(cg, cgroup, 2000, &e2);
	return rc;
}

static int lx_create(const struct rt_spec *spec, const struct rt_stdio *io, pid_t *pid,
		     int *release_fd, struct clbsd_err *err)
{
	struct helper_job job = {.kind = JOB_CREATE, .spec = spec, .io = io};
	return start_init(spec->cgroup, &spec->limits, &job, pid, release_fd, err);
}

static int lx_release(int release_fd, struct clbsd_err *err)
{
	int rc = 0;
	if (send_msg(release_fd, MSG_GO, 0, NULL) < 0) {
		rc = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EPIPE,
				      "container init is gone (it exited before release)");
		goto out;
	}
	struct msg m;
	int r = recv_msg(release_fd, &m);
	if (r == 1 && m.type == MSG_ERR)
		rc = msg_err(&m, err);
	else if (r != 0)
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, r < 0 ? -r : EPROTO,
				   "release: unexpected answer from the container init");
out:
	close(release_fd);
	return rc;
}

/* ---- prepared inits (the shim pool) ---- */

/*
 * Receive the spec hand-over: 'S' with the spec file's path as text and the
 * init's stdio as SCM_RIGHTS; m.code has bit i set when fd i was passed.
 */
static int recv_spec(int sock, struct msg *m, struct rt_stdio *io)
{
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m) - 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t r;
	m->type = '\0'; /* a short message leaves no stale type behind */
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0 || (size_t)r <= MSG_HDR || m->type != MSG_SPEC)
		return -EPROTO;
	((char *)m)[r] = '\0';
	int fds[3] = {-1, -1, -1};
	size_t nfd = 0;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfd > 3)
			nfd = 3;
		memcpy(fds, CMSG_DATA(cm), nfd * sizeof(int));
	}
	int *slots[3] = {&io->in, &io->out, &io->err};
	size_t k = 0;
	for (int i = 0; i < 3; i++)
		*slots[i] = ((m->code >> i) & 1) && k < nfd ? fds[k++] : -1;
	return 0;
}

static int send_spec(int sock, const char *spec_path, const struct rt_stdio *io)
{
	struct msg m;
	memset(&m, 0, MSG_HDR);
	m.type = MSG_SPEC;
	size_t n = strlen(spec_path);
	if (n >= sizeof(m.text))
		return -ENAMETOOLONG;
	memcpy(m.text, spec_path, n + 1);
	int fds[3], have[3] = {io->in, io->out, io->err};
	size_t nfd = 0;
	for (int i = 0; i < 3; i++)
		if (have[i] >= 0) {
			fds[nfd++] = have[i];
			m.code |= 1 << i;
		}
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = {.iov_base = &m, .iov_len = MSG_HDR + n + 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfd) {
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfd * sizeof(int));
	}
	ssize_t w;
	do
		w = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w < 0 ? -errno : 0;
}

/*
 * A prepared init: in its namespaces and cgroup, mounts still following the
 * host's (slave), seccomp compiled. It says ready and waits for the spec.
 */
static __attribute__((noreturn)) void prepared_main(const char *stage, int sock)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	/* The helper's 'P' must reach the caller before our 'R'. */
	wait_go(sock);
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
		clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "make / a slave of the host's mounts");
		die(sock, &err);
	}
	if (stage && mnt_stage(stage, &err) < 0)
		die(sock, &err);
	/* A prepared init always has its own network namespace. */
	if (loopback_up(&err) < 0)
		die(sock, &err);
	/* In the init, not the shim: libseccomp's code never enters the shim's memory. */
	if (sec_precompile(&err) < 0 || sec_drop_bounding(sec_caps_default(), &err) < 0)
		die(sock, &err);
	if (send_msg(sock, MSG_READY, 0, NULL) < 0)
		_exit(1);
	struct msg m;
	struct rt_stdio io;
	if (recv_spec(sock, &m, &io) < 0)
		_exit(1); /* discarded, or the caller went away */
	/* Prepared at the pool's low priority; the container runs at the normal one. */
	setpriority(PRIO_PROCESS, 0, 0);
	autofree char *json = NULL;
	struct rt_spec spec;
	if (fs_read_file(m.text, &json, NULL, &err) < 0 || rt_spec_from_json(json, &spec, &err) < 0)
		die(sock, &err);
	init_setup(&spec, &io, stage, NULL, sock);
}

static int lx_prepare(const char *cgroup, const char *scratch, struct rt_prepared *out,
		      struct clbsd_err *err)
{
	memset(out, 0, sizeof(*out));
	out->pid = -1;
	out->sock = -1;
	struct rt_limits none;
	memset(&none, 0, sizeof(none));
	struct helper_job job = {.kind = JOB_PREPARE, .stage = scratch};
	int rc = start_init(cgroup, &none, &job, &out->pid, &out->sock, err);
	if (rc < 0)
		return rc;
	out->cgroup = xstrdup(cgroup);
	out->scratch = scratch ? xstrdup(scratch) : NULL;
	return 0;
}

static void lx_discard(struct rt_prepared *p)
{
	if (p->sock >= 0)
		close(p->sock);
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		reap(p->pid);
	}
	if (p->cgroup) {
		struct clbsd_err e2;
		const struct cg_sys *cg = cg_sys_get(&e2);
		if (cg)
			cg_destroy(cg, p->cgroup, 2000, &e2);
		free(p->cgroup);
	}
	if (p->scratch) {
		rmdir(p->scratch);
		free(p->scratch);
	}
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->sock = -1;
}

static int lx_create_prepared(struct rt_prepared *p, const char *spec_path,
			      const struct rt_spec *spec, const struct rt_stdio *io,
			      void (*meanwhile)(void *arg), void *arg, pid_t *pid, int *release_fd,
			      struct clbsd_err *err)
{
	int rc;
	if (!spec->cgroup || strcmp(spec->cgroup, p->cgroup) != 0) {
		rc = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
				      "the spec's cgroup %s is not the prepared init's %s",
				      spec->cgroup ? spec->cgroup : "(none)", p->cgroup);
		goto fail;
	}
	if (spec->host_network) {
		/* A prepared init has its own network namespace already. */
		rc = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
				      "a prepared init cannot share the host's network");
		goto fail;
	}
	if ((spec->caps_set && (spec->caps & ~sec_caps_default())) || spec->n_devices) {
		/* Its bounding set and device list are the defaults already. */
		rc = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
				      "a prepared init cannot gain capabilities or devices");
		goto fail;
	}
	if (spec->userns.count) {
		/* Its namespaces are owned by the host's user namespace already. */
		rc = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
				      "a prepared init cannot have a user namespace");
		goto fail;
	}
	const struct cg_sys *cg = cg_sys_get(err);
	if (!cg) {
		rc = -err->code;
		goto fail;
	}
	if ((rc = cg_set_limits(cg, p->cgroup, &spec->limits, true, err)) < 0)
		goto fail;
	if ((rc = send_spec(p->sock, spec_path, io)) < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, -rc,
				   "hand the spec to the prepared init");
		goto fail;
	}
	if (meanwhile)
		meanwhile(arg);
	struct msg m;
	int r = recv_msg(p->sock, &m);
	if (r != 1 || m.type != MSG_READY) {
		if (r == 1 && m.type == MSG_ERR)
			rc = msg_err(&m, err);
		else
			rc = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPIPE,
					      "container init exited during setup");
		goto fail;
	}
	*pid = p->pid;
	*release_fd = p->sock;
	free(p->cgroup);
	/*
	 * The init has pivoted and its staging mount went with the old root;
	 * the caller removes the directory (discard()) after the start.
	 */
	char *scratch = p->scratch;
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->sock = -1;
	p->scratch = scratch;
	return 0;
fail:
	lx_discard(p);
	return rc;
}

/* ---- exec ---- */

static const struct {
	const char *name;
	int type;
} nss[] = {
	{"user", CLONE_NEWUSER}, /* first: the others are owned by it (userns containers) */
	{"ipc", CLONE_NEWIPC},	 {"uts", CLONE_NEWUTS},	      {"net", CLONE_NEWNET},
	{"pid", CLONE_NEWPID},	 {"cgroup", CLONE_NEWCGROUP}, {"mnt", CLONE_NEWNS},
};

/* Whether the namespace fd is the one at path (same nsfs inode). */
static bool same_ns(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

static __attribute__((noreturn)) void exec_helper(const struct cg_sys *cg,
						  const struct rt_spec *spec, const int *nsfd,
						  const struct proc_cfg *c, int sock)
{
	struct clbsd_err err;
	int keep[4 + ARRAY_SIZE(nss)] = {sock, c->io.in, c->io.out, c->io.err};
	for (size_t i = 0; i < ARRAY_SIZE(nss); i++)
		keep[4 + i] = nsfd[i];
	lock_helper(sock, keep, ARRAY_SIZE(keep), true);
	/* Opened before setns: the container's mount namespace has no cgroupfs. */
	int *fds = xcalloc(cg->n ? cg->n : 1, sizeof(int));
	int v2dir;
	if (cg_open_join(cg, spec->cgroup, fds, &v2dir, &err) < 0)
		die(sock, &err);
	for (size_t i = 0; i < ARRAY_SIZE(nss); i++) {
		if (nsfd[i] < 0)
			continue;
		if (setns(nsfd[i], nss[i].type) < 0) {
			clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "join the %s namespace",
				      nss[i].name);
			die(sock, &err);
		}
		close(nsfd[i]);
	}
	/* setns(pid) applies to children only: this clone is the process in the container. */
	bool placed;
	pid_t pid = clone_into(CLONE_PARENT, v2dir, &placed);
	if (pid < 0) {
		int e = errno;
		clbsd_err_set(&err, e == EAGAIN ? CLBSD_E_CONFLICT : CLBSD_E_INTERNAL, e,
			      e == EAGAIN   ? "fork in the container (pids limit reached?)"
			      : e == ENOMEM ? "fork in the container (is its init still running?)"
					    : "fork in the container");
		die(sock, &err);
	}
	if (pid == 0) {
		join_cgroups(fds, cg->n, v2dir, placed, sock);
		cg_close_join(fds, cg->n, v2dir);
		exec_proc(c, sock);
	}
	send_msg(sock, MSG_PID, pid, NULL);
	_exit(0);
}

static int lx_exec(const struct rt_spec *spec, pid_t init_pid, const struct rt_exec *ex,
		   const struct rt_stdio *io, pid_t *pid, struct clbsd_err *err)
{
	if (!ex->argv || !ex->argv[0] || !ex->argv[0][0])
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "exec: empty command");
	const char *cwd = ex->cwd && *ex->cwd ? ex->cwd : "/";
	if (!fs_path_is_clean_abs(cwd))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"exec: cwd \"%s\" is not a clean absolute path", cwd);

	const struct cg_sys *cg = cg_sys_get(err);
	if (!cg)
		return -err->code;
	int rc;
	int nsfd[ARRAY_SIZE(nss)];
	for (size_t i = 0; i < ARRAY_SIZE(nss); i++)
		nsfd[i] = -1;
	int sv[2] = {-1, -1};
	pid_t child = -1;

	for (size_t i = 0; i < ARRAY_SIZE(nss); i++) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)init_pid, nss[i].name);
		nsfd[i] = open(p, O_RDONLY | O_CLOEXEC);
		if (nsfd[i] < 0 && !(errno == ENOENT && nss[i].type == CLONE_NEWCGROUP)) {
			rc = clbsd_err_set(err,
					   errno == ENOENT ? CLBSD_E_CONFLICT : CLBSD_E_INTERNAL,
					   errno, "exec: open %s (is the container running?)", p);
			goto out;
		}
	}
	/* The host's own user namespace cannot be joined again (EINVAL): skip it. */
	for (size_t i = 0; i < ARRAY_SIZE(nss); i++)
		if (nss[i].type == CLONE_NEWUSER && nsfd[i] >= 0 &&
		    same_ns(nsfd[i], "/proc/self/ns/user")) {
			close(nsfd[i]);
			nsfd[i] = -1;
		}
	/*
	 * Checked after opening: if init_pid died and the number was reused
	 * before the opens, the new owner is not in the container's cgroup.
	 */
	if (!cg_has_pid(cg, spec->cgroup, init_pid)) {
		rc = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH,
				      "exec: container %s is not running (pid %d is not in cgroup "
				      "%s)",
				      spec->name, (int)init_pid, spec->cgroup);
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "socketpair");
		goto out;
	}
	struct proc_cfg c = {
		.argv = ex->argv,
		.env = ex->env ? ex->env : spec->env,
		.cwd = cwd,
		.uid = ex->uid,
		.gid = ex->gid,
		.tty = ex->tty,
		.caps = caps_of(spec),
		.io = *io,
	};
	pid_t helper = fork();
	if (helper < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "fork");
		goto out;
	}
	if (helper == 0) {
		close(sv[0]);
		exec_helper(cg, spec, nsfd, &c, sv[1]);
	}
	close(sv[1]);
	sv[1] = -1;
	if ((rc = spawn(helper, sv[0], &child, err)) < 0)
		goto out;
	struct msg m;
	int r = recv_msg(sv[0], &m);
	if (r == 1 && m.type == MSG_ERR) {
		rc = msg_err(&m, err);
		reap(child);
		goto out;
	}
	if (r != 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, r < 0 ? -r : EPROTO,
				   "exec: unexpected answer from the process");
		kill(child, SIGKILL);
		reap(child);
		goto out;
	}
	*pid = child;
	rc = 0;
out:
	for (size_t i = 0; i < ARRAY_SIZE(nss); i++)
		if (nsfd[i] >= 0)
			close(nsfd[i]);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return rc;
}

/* ---- cgroup-backed operations ---- */

static int lx_kill_all(const struct rt_spec *spec, int sig, struct clbsd_err *err)
{
	const struct cg_sys *cg = cg_sys_get(err);
	return cg ? cg_kill(cg, spec->cgroup, sig, err) : -err->code;
}

static int lx_oom_fd(const struct rt_spec *spec, int *fd, struct clbsd_err *err)
{
	const struct cg_sys *cg = cg_sys_get(err);
	return cg ? cg_oom_fd(cg, spec->cgroup, fd, err) : -err->code;
}

static int lx_stats(const struct rt_spec *spec, const struct rt_limits *set, struct rt_stats *st,
		    struct clbsd_err *err)
{
	const struct cg_sys *cg = cg_sys_get(err);
	return cg ? cg_stats(cg, spec->cgroup, set, st, err) : -err->code;
}

static int lx_update(const struct rt_spec *spec, const struct rt_limits *lim, struct clbsd_err *err)
{
	const struct cg_sys *cg = cg_sys_get(err);
	return cg ? cg_update_limits(cg, spec->cgroup, lim, err) : -err->code;
}

static int lx_oom_kills(const struct rt_spec *spec, uint64_t *n, struct clbsd_err *err)
{
	const struct cg_sys *cg = cg_sys_get(err);
	return cg ? cg_oom_kills(cg, spec->cgroup, n, err) : -err->code;
}

static int lx_destroy(const struct rt_spec *spec, struct clbsd_err *err)
{
	const struct cg_sys *cg = cg_sys_get(err);
	return cg ? cg_destroy(cg, spec->cgroup, 2000, err) : -err->code;
}

static const char *lx_cgroup_layout(void)
{
	struct clbsd_err err;
	const struct cg_sys *cg = cg_sys_get(&err);
	return cg ? cg_layout_name(cg->layout) : "none";
}

static const struct rt_ops linux_ops = {
	.name = "linux",
	.create = lx_create,
	.prepare = lx_prepare,
	.create_prepared = lx_create_prepared,
	.discard = lx_discard,
	.release = lx_release,
	.exec = lx_exec,
	.kill_all = lx_kill_all,
	.oom_fd = lx_oom_fd,
	.stats = lx_stats,
	.oom_kills = lx_oom_kills,
	.destroy = lx_destroy,
	.update = lx_update,
	.filter_export = sec_compile,
	.filter_use = sec_use_compiled,
	.cgroup_layout = lx_cgroup_layout,
	.probe = lx_probe,
	.idmap_check = uns_idmap_check,
};

const struct rt_ops *rt_default_ops(void)
{
	return &linux_ops;
}
