/*
 * The platform seam (src/sys/sys.h) on this host: the file watcher reports
 * what a configuration watch and a :file-change hook rely on, peer
 * credentials come from the kernel, a file's data is cloned or, where the
 * file system cannot, copied, and a signal descriptor yields blocked signals.
 */
#include "test.h"
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct seen {
	int n;
	int wd[64];
	unsigned what[64];
	char name[64][64];
};

static void note(void *ctx, const struct sys_watch_event *ev)
{
	struct seen *s = ctx;
	if (s->n >= 64)
		return;
	s->wd[s->n] = ev->wd;
	s->what[s->n] = ev->what;
	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", ev->name ? ev->name : "");
	s->n++;
}

/* Wait until the queue is readable (at most a second), then drain it. */
static int drain(struct sys_watch *w, struct seen *s)
{
	struct pollfd p = {.fd = sys_watch_fd(w), .events = POLLIN};
	memset(s, 0, sizeof(*s));
	if (poll(&p, 1, 1000) != 1)
		return -ETIMEDOUT;
	return sys_watch_read(w, note, s);
}

/* Whether an event of wd with all bits of `what` (and name, unless NULL) was seen. */
static bool saw(const struct seen *s, int wd, unsigned what, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (s->wd[i] == wd && (s->what[i] & what) == what &&
		    (!name || strcmp(s->name[i], name) == 0))
			return true;
	return false;
}

/* Write s to path in place (created when missing), as an editor would. */
static int put(const char *path, const char *s)
{
	autoclose int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, s, strlen(s)) < 0)
		return -errno;
	return 0;
}

static char *tmpdir(void)
{
	char *d = xstrdup("/tmp/clbsd-sys-XXXXXX");
	if (!mkdtemp(d))
		abort();
	return d;
}

TEST(watch_directory)
{
	struct clbsd_err err;
	autofree char *dir = tmpdir();
	autofree char *sub = xasprintf("%s/sub", dir);
	autofree char *file = xasprintf("%s/a.conf", dir);
	CHECK_INT(mkdir(sub, 0700), 0);
	struct sys_watch *w = NULL;
	CHECK_INT(sys_watch_open(&w, &err), 0);
	int wd = sys_watch_add(w, dir, SYS_WATCH_ONLYDIR | SYS_WATCH_ON_SELF, &err);
	int swd = sys_watch_add(w, sub, SYS_WATCH_ONLYDIR | SYS_WATCH_ON_SELF, &err);
	CHECK(wd >= 0);
	CHECK(swd >= 0 && swd != wd);
	/* A missing path and a file where a directory is asked for: expected, told apart. */
	autofree char *missing = xasprintf("%s/nope", dir);
	CHECK_INT(sys_watch_add(w, missing, SYS_WATCH_ONLYDIR, &err), -ENOENT);
	struct seen s;

	CHECK_INT(put(file, "x"), 0);
	CHECK_INT(drain(w, &s), 0);
	CHECK(saw(&s, wd, SYS_WATCH_NAMES, "a.conf"));
	CHECK(saw(&s, wd, SYS_WATCH_DATA, "a.conf"));
	CHECK_INT(sys_watch_add(w, file, SYS_WATCH_ONLYDIR, &err), -ENOTDIR);

	autofree char *moved = xasprintf("%s/b.conf", dir);
	CHECK_INT(rename(file, moved), 0);
	CHECK_INT(drain(w, &s), 0);
	CHECK(saw(&s, wd, SYS_WATCH_NAMES, "a.conf"));
	CHECK(saw(&s, wd, SYS_WATCH_NAMES, "b.conf"));

	/* The watched directory itself goes: SELF, then the kernel drops the watch. */
	CHECK_INT(rmdir(sub), 0);
	CHECK_INT(drain(w, &s), 0);
	CHECK(saw(&s, swd, SYS_WATCH_SELF, NULL));
	CHECK(saw(&s, swd, SYS_WATCH_DROPPED, NULL));
	CHECK(saw(&s, wd, SYS_WATCH_NAMES, "sub"));

	/* After sys_watch_rm nothing more is reported for that watch. */
	sys_watch_rm(w, wd);
	CHECK_INT(drain(w, &s), 0); /* the DROPPED of the removal */
	CHECK(saw(&s, wd, SYS_WATCH_DROPPED, NULL));
	CHECK_INT(unlink(moved), 0);
	CHECK_INT(drain(w, &s), -ETIMEDOUT);
	sys_watch_close(w);
	CHECK_INT(fs_rm_rf(dir, &err), 0);
}

TEST(watch_by_fd)
{
	struct clbsd_err err;
	autofree char *dir = tmpdir();
	autofree char *file = xasprintf("%s/data", dir);
	CHECK_INT(put(file, "1"), 0);
	autoclose int fd = open(file, O_PATH | O_CLOEXEC);
	CHECK(fd >= 0);
	/* The watch follows the inode open at fd, not the name. */
	autofree char *other = xasprintf("%s/renamed", dir);
	CHECK_INT(rename(file, other), 0);
	struct sys_watch *w = NULL;
	CHECK_INT(sys_watch_open(&w, &err), 0);
	int wd = sys_watch_add_fd(w, fd, 0, &err);
	CHECK(wd >= 0);
	CHECK_INT(put(other, "2"), 0);
	struct seen s;
	CHECK_INT(drain(w, &s), 0);
	CHECK(saw(&s, wd, SYS_WATCH_DATA, NULL));
	sys_watch_close(w);
	CHECK_INT(fs_rm_rf(dir, &err), 0);
}

TEST(peer_cred_socketpair)
{
	int sv[2];
	CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct sys_peer p = {(uid_t)-1, (gid_t)-1, -1};
	int r = sys_peer_cred(sv[0], &p);
	close(sv[0]);
	close(sv[1]);
	CHECK_INT(r, 0);
	CHECK_INT(p.uid, geteuid());
	CHECK_INT(p.gid, getegid());
	CHECK_INT(p.pid, getpid());
	CHECK_INT(sys_peer_cred(-1, &p), -EBADF);
	/* Not a socket: an error, never credentials. */
	autoclose int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(sys_peer_cred(fd, &p) < 0);
}

/* Copy src to a new file the way sys_copy_tree does: clone, else copy. */
static int clone_or_copy(const char *src, const char *dst, bool *cloned)
{
	autoclose int in = open(src, O_RDONLY | O_CLOEXEC);
	autoclose int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	struct stat st;
	if (in < 0 || out < 0 || fstat(in, &st) < 0)
		return -errno;
	*cloned = sys_file_clone(in, out) == 0;
	if (*cloned)
		return 0;
	const char *what;
	return sys_file_copy(in, out, st.st_size, &what);
}

TEST(file_clone_fallback)
{
	struct clbsd_err err;
	/* /dev/shm is tmpfs: no reflinks, so the data must be copied. */
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	autofree char *dir = xasprintf("%s/clbsd-sys-XXXXXX", base);
	CHECK(mkdtemp(dir) != NULL);
	autofree char *src = xasprintf("%s/src", dir);
	autofree char *dst = xasprintf("%s/dst", dir);
	/* Bigger than one buffer of the plain copy, and not a multiple of it. */
	size_t len = 200000;
	autofree char *data = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 7 + i / 251);
	CHECK_INT(fs_write_atomic(src, data, len, 0600, &err), 0);
	bool cloned = true;
	CHECK_INT(clone_or_copy(src, dst, &cloned), 0);
	if (strcmp(base, "/dev/shm") == 0)
		CHECK(!cloned);
	autofree char *got = NULL;
	size_t glen = 0;
	CHECK_INT(fs_read_file(dst, &got, &glen, &err), 0);
	CHECK_INT(glen, len);
	CHECK(memcmp(got, data, len) == 0);
	/* A clone between unrelated descriptors fails and writes nothing. */
	autoclose int in = open(src, O_RDONLY | O_CLOEXEC);
	autoclose int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(sys_file_clone(in, out) < 0);
	/* The copy stops at the size given, even when the file is longer. */
	autofree char *cut = xasprintf("%s/cut", dir);
	autoclose int o2 = open(cut, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	const char *what;
	CHECK_INT(sys_file_copy(in, o2, 1000, &what), 0);
	struct stat st;
	CHECK_INT(stat(cut, &st), 0);
	CHECK_INT(st.st_size, 1000);
	CHECK_INT(fs_rm_rf(dir, &err), 0);
}

TEST(signal_descriptor)
{
	struct clbsd_err err;
	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, &old);
	int fd = sys_sigfd_open(&mask, &err);
	CHECK(fd >= 0);
	CHECK_INT(sys_sigfd_next(fd), 0);
	raise(SIGUSR2);
	raise(SIGUSR1);
	int a = sys_sigfd_next(fd), b = sys_sigfd_next(fd);
	CHECK((a == SIGUSR1 && b == SIGUSR2) || (a == SIGUSR2 && b == SIGUSR1));
	CHECK_INT(sys_sigfd_next(fd), 0);
	close(fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

TEST(pty)
{
	struct clbsd_err err;
	int m = -1, sl = -1;
	CHECK_INT(sys_pty_open(&m, &sl, 40, 132, &err), 0);
	struct winsize ws;
	CHECK_INT(ioctl(sl, TIOCGWINSZ, &ws), 0);
	CHECK_INT(ws.ws_row, 40);
	CHECK_INT(ws.ws_col, 132);
	CHECK(fcntl(m, F_GETFL) & O_NONBLOCK);
	CHECK(fcntl(m, F_GETFD) & FD_CLOEXEC);
	CHECK(fcntl(sl, F_GETFD) & FD_CLOEXEC);
	/* What the slave writes comes out of the master. */
	CHECK_INT(write(sl, "hi\n", 3), 3);
	struct pollfd p = {.fd = m, .events = POLLIN};
	CHECK_INT(poll(&p, 1, 1000), 1);
	char b[16];
	ssize_t n = read(m, b, sizeof(b));
	CHECK(n >= 2 && b[0] == 'h' && b[1] == 'i');
	close(m);
	close(sl);
}

TEST(self)
{
	autofree char *exe = sys_self_exe();
	CHECK(exe && exe[0] == '/');
	CHECK(strstr(exe, "test_sys") != NULL);
	CHECK(!sys_is_fuse("/"));
}

TEST_MAIN_BEGIN("sys")
RUN(watch_directory);
RUN(watch_by_fd);
RUN(peer_cred_socketpair);
RUN(file_clone_fallback);
RUN(signal_descriptor);
RUN(pty);
RUN(self);
TEST_MAIN_END
