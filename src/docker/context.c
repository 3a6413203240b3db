/*
 * A build context as the tar POST /build reads: the directory's regular
 * files, directories and symlinks (as links, never followed), named
 * relative to it, written with libarchive into a file the caller holds.
 *
 * The context is the user's own directory (the CLI's argument or the
 * configuration's :build), not a container's, yet it is walked by
 * directory fds all the same: a regular file is opened only as one, and
 * other mounts are not entered. Sockets, FIFOs and device nodes are left
 * out (dockerd's COPY would not want them). .dockerignore is not applied:
 * the docker CLI applies it, not dockerd (docs/images.md says so).
 */
#include "docker/docker.h"
#include "util/archive_lib.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct walk {
	struct archive *a;
	dev_t dev;
};

static int put_dir(struct walk *w, int dfd, const char *prefix, int depth, struct clbsd_err *err);

static int put_entry(struct walk *w, int dfd, const char *name, const char *member, int depth,
		     struct clbsd_err *err)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
						       "build context: stat %s", member);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return 0;
	autoclose int fd = -1;
	char target[4096];
	if (S_ISREG(st.st_mode)) {
		fd = fs_open_reg_at(dfd, name, &st);
		if (fd < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, -fd, "build context: open %s",
					     member);
	} else if (S_ISDIR(st.st_mode)) {
		if (fs_tree_check_depth(depth, member, err) < 0)
			return -err->code;
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "build context: open %s",
					     member);
	} else {
		ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
					     "build context: readlink %s", member);
		target[n] = '\0';
	}
	struct archive_entry *e = AL(archive_entry_new)();
	AL(archive_entry_set_pathname)(e, member);
	AL(archive_entry_set_perm)(e, st.st_mode & 07777);
	AL(archive_entry_set_uid)(e, st.st_uid);
	AL(archive_entry_set_gid)(e, st.st_gid);
	AL(archive_entry_set_mtime)(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (S_ISREG(st.st_mode)) {
		AL(archive_entry_set_filetype)(e, AE_IFREG);
		AL(archive_entry_set_size)(e, st.st_size);
	} else if (S_ISDIR(st.st_mode)) {
		AL(archive_entry_set_filetype)(e, AE_IFDIR);
	} else {
		AL(archive_entry_set_filetype)(e, AE_IFLNK);
		AL(archive_entry_set_symlink)(e, target);
	}
	int r = 0;
	if (AL(archive_write_header)(w->a, e) < ARCHIVE_WARN)
		r = archive_lib_err(w->a, CLBSD_E_INTERNAL, "build context: write the tar", err);
	else if (S_ISREG(st.st_mode) && st.st_size > 0)
		r = archive_lib_put_file_data(w->a, fd, st.st_size, member,
					      "build context: write the tar", err);
	AL(archive_entry_free)(e);
	if (r == 0 && S_ISDIR(st.st_mode) && st.st_dev == w->dev) {
		r = put_dir(w, fd, member, depth + 1, err);
		fd = -1; /* put_dir closed it */
	}
	return r;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of the directory open at dfd (closed here), sorted, below prefix. */
static int put_dir(struct walk *w, int dfd, const char *prefix, int depth, struct clbsd_err *err)
{
	DIR *dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "build context: read %s",
				     *prefix ? prefix : ".");
	}
	struct strv names = STRV_INIT;
	struct dirent *de;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			strv_push(&names, de->d_name);
	if (names.n)
		qsort(names.v, names.n, sizeof(char *), by_name);
	int r = 0;
	for (size_t i = 0; r == 0 && names.v && names.v[i]; i++) {
		autofree char *member =
			*prefix ? xasprintf("%s/%s", prefix, names.v[i]) : xstrdup(names.v[i]);
		r = put_entry(w, dirfd(dir), names.v[i], member, depth, err);
	}
	strv_release(&names);
	closedir(dir);
	return r;
}

int dk_context_tar(const char *dir, int fd, struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return -err->code;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (dfd < 0 || fstat(dfd, &st) < 0) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		archive_lib_release();
		return clbsd_err_set(err, CLBSD_E_INVALID, e, "build context %s", dir);
	}
	struct walk w = {.a = AL(archive_write_new)(), .dev = st.st_dev};
	AL(archive_write_set_format_pax_restricted)(w.a);
	int r = 0;
	if (AL(archive_write_open_fd)(w.a, fd) != ARCHIVE_OK) {
		r = archive_lib_err(w.a, CLBSD_E_INTERNAL, "build context: write the tar", err);
		close(dfd);
	} else {
		r = put_dir(&w, dfd, "", 0, err);
		if (AL(archive_write_close)(w.a) != ARCHIVE_OK && r == 0)
			r = archive_lib_err(w.a, CLBSD_E_INTERNAL, "build context: write the tar",
					    err);
	}
	AL(archive_write_free)(w.a);
	archive_lib_release();
	return r;
}
