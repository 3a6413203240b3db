/*
 * The dir driver's send/receive stream: a pax tar archive written and read
 * with libarchive, framed by a JSON member first and an end member last.
 */
#include "internal.h"
#include "util/archive_lib.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * libarchive comes through the loader of util/archive_lib.h (loaded for the
 * operations that need it, not linked); the calls below go through its table.
 */
#define archive_entry_copy_sourcepath	       (*archive_lib.archive_entry_copy_sourcepath)
#define archive_entry_filetype		       (*archive_lib.archive_entry_filetype)
#define archive_entry_free		       (*archive_lib.archive_entry_free)
#define archive_entry_hardlink		       (*archive_lib.archive_entry_hardlink)
#define archive_entry_new		       (*archive_lib.archive_entry_new)
#define archive_entry_pathname		       (*archive_lib.archive_entry_pathname)
#define archive_entry_set_filetype	       (*archive_lib.archive_entry_set_filetype)
#define archive_entry_set_hardlink	       (*archive_lib.archive_entry_set_hardlink)
#define archive_entry_set_mtime		       (*archive_lib.archive_entry_set_mtime)
#define archive_entry_set_pathname	       (*archive_lib.archive_entry_set_pathname)
#define archive_entry_set_perm		       (*archive_lib.archive_entry_set_perm)
#define archive_entry_set_size		       (*archive_lib.archive_entry_set_size)
#define archive_entry_size		       (*archive_lib.archive_entry_size)
#define archive_errno			       (*archive_lib.archive_errno)
#define archive_error_string		       (*archive_lib.archive_error_string)
#define archive_read_data		       (*archive_lib.archive_read_data)
#define archive_read_data_block		       (*archive_lib.archive_read_data_block)
#define archive_read_disk_entry_from_file      (*archive_lib.archive_read_disk_entry_from_file)
#define archive_read_disk_new		       (*archive_lib.archive_read_disk_new)
#define archive_read_disk_set_behavior	       (*archive_lib.archive_read_disk_set_behavior)
#define archive_read_disk_set_standard_lookup  (*archive_lib.archive_read_disk_set_standard_lookup)
#define archive_read_free		       (*archive_lib.archive_read_free)
#define archive_read_new		       (*archive_lib.archive_read_new)
#define archive_read_next_header	       (*archive_lib.archive_read_next_header)
#define archive_read_open_fd		       (*archive_lib.archive_read_open_fd)
#define archive_read_support_format_tar	       (*archive_lib.archive_read_support_format_tar)
#define archive_write_close		       (*archive_lib.archive_write_close)
#define archive_write_data		       (*archive_lib.archive_write_data)
#define archive_write_data_block	       (*archive_lib.archive_write_data_block)
#define archive_write_disk_new		       (*archive_lib.archive_write_disk_new)
#define archive_write_disk_set_options	       (*archive_lib.archive_write_disk_set_options)
#define archive_write_disk_set_standard_lookup (*archive_lib.archive_write_disk_set_standard_lookup)
#define archive_write_finish_entry	       (*archive_lib.archive_write_finish_entry)
#define archive_write_free		       (*archive_lib.archive_write_free)
#define archive_write_header		       (*archive_lib.archive_write_header)
#define archive_write_new		       (*archive_lib.archive_write_new)
#define archive_write_open_fd		       (*archive_lib.archive_write_open_fd)
#define archive_write_set_bytes_in_last_block  (*archive_lib.archive_write_set_bytes_in_last_block)
#define archive_write_set_format_pax_restricted                                                    \
	(*archive_lib.archive_write_set_format_pax_restricted)

#define META_NAME "clbsd-send.json"
#define END_NAME  "clbsd-send.end"

/* A data block written to disk: see oci.c's block_failed. */
static bool block_failed(struct archive *disk, int ar)
{
	return ar < ARCHIVE_WARN || (ar < ARCHIVE_OK && archive_errno(disk) > 0);
}

static int put_member(struct archive *a, const char *name, const char *data, size_t len,
		      struct clbsd_err *err)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, time(NULL), 0);
	int r = 0;
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (len && archive_write_data(a, data, len) != (la_ssize_t)len))
		r = archive_lib_err(a, CLBSD_E_INTERNAL, "write stream", err);
	archive_entry_free(e);
	return r;
}

/*
 * A tree into the stream. The tree is walked by directory fds and nothing
 * is opened by a path (see sys_copy_tree, which made it from a container's
 * files): a regular file is opened only as one (fs_open_reg_at) and
 * archived as the fstat of that fd says, a directory is opened
 * O_NOFOLLOW|O_DIRECTORY, a FIFO or device node is archived from its stat
 * and never opened, and an entry that changed type or vanished in between
 * is left out with a warning. libarchive's own walk (archive_read_disk) is
 * not used: it reads a file again by its path. Its entry_from_file still
 * fills owners' names, xattrs (overlay's opaque marks), ACLs and flags,
 * from the fd, or for a symlink or node from /proc/self/fd/DIRFD/NAME,
 * which resolves in the directory already open, whatever was renamed.
 */
struct tree_walk {
	struct archive *a, *disk;
	/*
	 * For symlinks and nodes, read through a path: without ACLs, as
	 * acl_get_file() would follow the name if it became a symlink meanwhile.
	 */
	struct archive *disk_path;
	dev_t dev; /* the tree's file system: other mounts are not entered */
};

static int left_out(const char *path, int e)
{
	return fs_left_out("storage", path, "it was archived", "the stream", e);
}

static int put_dir_entries(struct tree_walk *w, int dfd, const char *member, const char *path,
			   int depth, struct clbsd_err *err);

/* The entry `name` of the open directory dfd, as `member` of the stream. */
static int put_at(struct tree_walk *w, int dfd, const char *name, const char *member,
		  const char *path, int depth, struct clbsd_err *err)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT && dfd != AT_FDCWD
			       ? left_out(path, ENOENT)
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", path);
	if (S_ISSOCK(st.st_mode))
		return 0; /* a tar cannot hold a socket; its program makes it again */
	autoclose int fd = -1;
	if (S_ISREG(st.st_mode)) {
		fd = fs_open_reg_at(dfd, name, &st);
		if (fd < 0)
			return fd == -ENOENT || fd == -EINVAL || fd == -EWOULDBLOCK
				       ? left_out(path, -fd)
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, -fd, "open %s", path);
	} else if (S_ISDIR(st.st_mode)) {
		if (fs_tree_check_depth(depth, path, err) < 0)
			return -err->code;
		fd = openat(dfd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return dfd != AT_FDCWD && (errno == ENOENT || errno == ENOTDIR ||
						   errno == ELOOP)
				       ? left_out(path, errno)
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s",
						       path);
		if (fstat(fd, &st) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", path);
	}
	struct archive_entry *e = archive_entry_new();
	autofree char *src =
		dfd == AT_FDCWD ? xstrdup(name) : xasprintf("/proc/self/fd/%d/%s", dfd, name);
	archive_entry_copy_sourcepath(e, src);
	archive_entry_set_pathname(e, member);
	int r = 0;
	struct archive *disk = fd >= 0 ? w->disk : w->disk_path;
	int ar = archive_read_disk_entry_from_file(disk, e, fd, &st);
	if (ar < ARCHIVE_WARN) {
		/* A symlink whose target could not be read is no symlink any more. */
		if (S_ISLNK(st.st_mode) && ar == ARCHIVE_FAILED)
			r = left_out(path, EINVAL);
		else
			r = archive_lib_err(disk, CLBSD_E_INTERNAL, path, err);
		archive_entry_free(e);
		return r;
	}
	if (archive_write_header(w->a, e) < ARCHIVE_WARN)
		r = archive_lib_err(w->a, CLBSD_E_INTERNAL, "write stream", err);
	else if (S_ISREG(st.st_mode) && st.st_size > 0)
		r = archive_lib_put_file_data(w->a, fd, st.st_size, path, "write stream", err);
	archive_entry_free(e);
	/* Like tar --one-file-system: a mount point is kept, not what is mounted on it. */
	if (r == 0 && S_ISDIR(st.st_mode) && st.st_dev == w->dev) {
		r = put_dir_entries(w, fd, member, path, depth, err);
		fd = -1; /* put_dir_entries closed it */
	}
	return r;
}

/* Every entry of the directory open at dfd (closed here), below `member`. */
static int put_dir_entries(struct tree_walk *w, int dfd, const char *member, const char *path,
			   int depth, struct clbsd_err *err)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "read directory %s", path);
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		autofree char *m = xasprintf("%s/%s", member, de->d_name);
		autofree char *p = xasprintf("%s/%s", path, de->d_name);
		r = put_at(w, dirfd(d), de->d_name, m, p, depth + 1, err);
	}
	if (r == 0 && errno != 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read directory %s", path);
	closedir(d);
	return r;
}

static int put_tree(struct archive *a, const struct tar_tree *t, struct clbsd_err *err)
{
	struct stat st = {0};
	if (lstat(t->dir, &st) < 0 && errno == ENOENT)
		return 0;
	struct tree_walk w = {.a = a, .dev = st.st_dev};
	w.disk = archive_read_disk_new();
	archive_read_disk_set_standard_lookup(w.disk);
	w.disk_path = archive_read_disk_new();
	archive_read_disk_set_standard_lookup(w.disk_path);
	archive_read_disk_set_behavior(w.disk_path, ARCHIVE_READDISK_NO_ACL);
	/* The tree's root is a path of the daemon's (<root>/containers/...), not the tree's. */
	int r = put_at(&w, AT_FDCWD, t->dir, t->prefix, t->dir, 0, err);
	archive_read_free(w.disk);
	archive_read_free(w.disk_path);
	return r < 0 ? clbsd_err_prefix(err, "send %s", t->dir) : 0;
}

static int send_loaded(int fd, const char *meta, const struct tar_tree *trees, size_t n,
		       struct clbsd_err *err)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1);
	int r = 0;
	if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
		r = archive_lib_err(a, CLBSD_E_INTERNAL, "open stream", err);
	if (r == 0)
		r = put_member(a, META_NAME, meta, strlen(meta), err);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = put_tree(a, &trees[i], err);
	if (r == 0)
		r = put_member(a, END_NAME, "", 0, err);
	if (archive_write_close(a) != ARCHIVE_OK && r == 0)
		r = archive_lib_err(a, CLBSD_E_INTERNAL, "finish stream", err);
	archive_write_free(a);
	return r;
}

/* A member name is relative, without "..", below one of the prefixes. */
static bool name_ok(const char *name, const char *const *prefixes)
{
	if (!name || name[0] == '/')
		return false;
	autofree char *abs = xasprintf("/%s", name);
	if (!fs_path_is_clean_abs(abs))
		return false;
	for (size_t i = 0; prefixes[i]; i++) {
		size_t pl = strlen(prefixes[i]);
		if (strncmp(name, prefixes[i], pl) == 0 && (name[pl] == '\0' || name[pl] == '/'))
			return true;
	}
	return false;
}

static int receive_loaded(int fd, const char *into, const char *const *prefixes, char **meta,
			  struct clbsd_err *err)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	struct archive *disk = archive_write_disk_new();
	archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
						     ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
						     ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						     ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	archive_write_disk_set_standard_lookup(disk);
	struct buf m = BUF_INIT;
	bool seen_meta = false, seen_end = false;
	int r = 0;
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK)
		r = archive_lib_err(a, CLBSD_E_INVALID, "not a dir driver stream (tar)", err);
	while (r == 0) {
		struct archive_entry *e;
		int ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = archive_lib_err(a, CLBSD_E_INVALID, "read stream", err);
			break;
		}
		const char *name = archive_entry_pathname(e);
		if (seen_end) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: %s after the end", name);
			break;
		}
		if (!seen_meta) {
			if (!name || strcmp(name, META_NAME) != 0) {
				r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						     "not a dir driver stream (no %s first; a "
						     "zfs driver stream cannot be read here)",
						     META_NAME);
				break;
			}
			char b[4096];
			la_ssize_t n;
			while ((n = archive_read_data(a, b, sizeof(b))) > 0 && m.len < (1 << 20))
				buf_add(&m, b, (size_t)n);
			if (n < 0) {
				r = archive_lib_err(a, CLBSD_E_INVALID, "read stream", err);
				break;
			}
			seen_meta = true;
			continue;
		}
		if (name && strcmp(name, END_NAME) == 0) {
			seen_end = true;
			continue;
		}
		if (!name_ok(name, prefixes) ||
		    (archive_entry_hardlink(e) && !name_ok(archive_entry_hardlink(e), prefixes))) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: member \"%s\" is not allowed",
					     name ? name : "");
			break;
		}
		autofree char *dest = xasprintf("%s/%s", into, name);
		archive_entry_set_pathname(e, dest);
		if (archive_entry_hardlink(e)) {
			autofree char *hl = xasprintf("%s/%s", into, archive_entry_hardlink(e));
			archive_entry_set_hardlink(e, hl);
		}
		if (archive_write_header(disk, e) < ARCHIVE_WARN) {
			r = archive_lib_err(disk, CLBSD_E_INTERNAL, dest, err);
			break;
		}
		const void *blk;
		size_t len;
		la_int64_t off;
		while ((ar = archive_read_data_block(a, &blk, &len, &off)) == ARCHIVE_OK)
			/* A failed write(2) (ENOSPC, EIO) is only ARCHIVE_WARN. */
			if (block_failed(disk, archive_write_data_block(disk, blk, len, off))) {
				ar = ARCHIVE_FATAL;
				r = archive_lib_err(disk, CLBSD_E_INTERNAL, dest, err);
				break;
			}
		if (r == 0 && ar != ARCHIVE_EOF)
			r = archive_lib_err(a, CLBSD_E_INVALID, "read stream", err);
		if (r == 0 && archive_write_finish_entry(disk) < ARCHIVE_WARN)
			r = archive_lib_err(disk, CLBSD_E_INTERNAL, dest, err);
	}
	if (r == 0 && !seen_end)
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EPIPE,
				     "the stream ends before its end mark: cut short?");
	/* Directory modes and times are set at close. */
	if (archive_write_close(disk) != ARCHIVE_OK && r == 0)
		r = archive_lib_err(disk, CLBSD_E_INTERNAL, into, err);
	archive_write_free(disk);
	archive_read_free(a);
	if (r < 0) {
		buf_release(&m);
		return r;
	}
	*meta = buf_detach(&m, NULL);
	return 0;
}

int tar_send(int fd, const char *meta, const struct tar_tree *trees, size_t n,
	     struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return -err->code;
	int r = send_loaded(fd, meta, trees, n, err);
	archive_lib_release();
	return r;
}

int tar_receive(int fd, const char *into, const char *const *prefixes, char **meta,
		struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return -err->code;
	int r = receive_loaded(fd, into, prefixes, meta, err);
	archive_lib_release();
	return r;
}
