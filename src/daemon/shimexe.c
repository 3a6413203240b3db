/*
 * The shim the daemon runs is a sealed in-memory copy of clbsd-shim, never
 * the file (the CVE-2019-5736 class). A process that the shim forks into a
 * container (the init, an exec'd command) is the shim's executable until it
 * execs; if the container makes it run /proc/self/exe again (a command whose
 * interpreter line is "#!/proc/self/exe") the shim's image runs inside the
 * container, where /proc/PID/exe opens it. Were that the host's file, the
 * container could reopen it for writing once no shim runs from it, and
 * every later shim would run the container's code as root on the host.
 *
 * So the daemon copies the file into a memfd once, seals it (no write, no
 * resize, no new seals) and starts every shim and the zygote (whose forks
 * are the pool shims) from the memfd: /proc/PID/exe of any of them is
 * "/memfd:clbsd-shim (deleted)", which nobody can change. Exec'ing a memfd
 * reads shared memory pages: no cost per start beyond the one copy.
 *
 * The copy is made again when the file changes (an upgrade), checked with a
 * stat() per spawn; an older copy stays open while a caller holds a dup.
 */
#include "daemon.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHIM_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int memfd = -1;
static struct stat copied; /* the file the memfd was copied from */

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* A sealed memfd holding the file at path, at fd >= 5 (see daemon_shim_exe). */
static int copy_sealed(const char *path, struct stat *st, struct clbsd_err *err)
{
	autoclose int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return clbsd_err_set(err, CLBSD_E_UNAVAIL, errno,
				     "cannot read the shim %s (install clbsd-shim beside clbsdd or "
				     "pass --shim)",
				     path);
	if (fstat(src, st) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", path);
	if (!S_ISREG(st->st_mode))
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EINVAL, "the shim %s is not a file",
					path);
	autoclose int fd = memfd_create("clbsd-shim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "memfd for a copy of the shim");
	off_t left = st->st_size;
	while (left > 0) {
		ssize_t n = sendfile(fd, src, NULL, (size_t)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, n < 0 ? errno : EIO,
					     "copy the shim %s into memory", path);
		left -= n;
	}
	if (fcntl(fd, F_ADD_SEALS, SHIM_SEALS) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "seal the copy of the shim");
	/* Above what posix_spawn's file actions write (0..4). */
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 5);
	if (hi < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "dup the copy of the shim");
	return hi;
}

int daemon_shim_exe(struct daemon *d, struct clbsd_err *err)
{
	struct stat st;
	int rc = 0;
	pthread_mutex_lock(&lock);
	/* A file that is gone (mid-upgrade) leaves the copy in use. */
	if (memfd < 0 || (stat(d->shim_path, &st) == 0 && !same_file(&st, &copied))) {
		struct stat now;
		int fd = copy_sealed(d->shim_path, &now, err);
		if (fd < 0) {
			rc = fd;
			goto out;
		}
		if (memfd >= 0)
			close(memfd);
		memfd = fd;
		copied = now;
	}
	rc = fcntl(memfd, F_DUPFD_CLOEXEC, 5);
	if (rc < 0)
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "dup the copy of the shim");
out:
	pthread_mutex_unlock(&lock);
	return rc;
}
