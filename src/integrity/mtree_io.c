/*
 * Manifests written and read with libarchive (integrity.h): its mtree
 * writer makes the text and computes the SHA-256 of the data it is fed; its
 * mtree reader parses the text back (without "checkfs", so it opens
 * nothing the text names).
 */
#include "integrity/integrity.h"
#include "util/archive_lib.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Reads of a file being hashed: large, so the digest and not the calls
 * dominate, and small enough to stay in the CPU's cache between the copy
 * and the hash.
 */
#define READ_CHUNK (1u << 18)

struct walk {
	struct archive *a;
	struct archive_entry *e;
	dev_t dev; /* the root's: a directory elsewhere is a mount point, not entered */
	char *chunk;
	size_t files;
	struct clbsd_err *err;
	struct mtree_budget b; /* its limits, defaults filled in */
	uint64_t bytes;	       /* file sizes hashed so far */
	int64_t deadline;      /* time_mono_ns() */
};

static int over_budget(struct walk *w, const char *rel, const char *what)
{
	return clbsd_err_setmsg(w->err, CLBSD_E_CONFLICT, EFBIG,
				"the check stopped at %s: %s (docs/integrity.md, \"Limits\")", rel,
				what);
}

/* Before an entry is recorded: the entries and the time the walk may take. */
static int budget_entry(struct walk *w, const char *rel)
{
	if (w->files >= w->b.max_entries) {
		char what[128];
		snprintf(what, sizeof(what), "more than %zu entries in the tree", w->b.max_entries);
		return over_budget(w, rel, what);
	}
	/* The clock read every 64 entries and every chunk hashed (put_data). */
	if ((w->files & 63) == 0 && time_mono_ns() > w->deadline) {
		char what[128];
		snprintf(what, sizeof(what), "it took longer than %lld s",
			 (long long)(w->b.max_wall_ns / 1000000000ll));
		return over_budget(w, rel, what);
	}
	return 0;
}

/* Before a regular file is hashed: what hashing it would cost, known from its size. */
static int budget_file(struct walk *w, const struct stat *st, const char *rel)
{
	uint64_t size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
	if (size <= w->b.max_bytes && w->bytes <= w->b.max_bytes - size) {
		w->bytes += size;
		return 0;
	}
	bool sparse = size > MTREE_SPARSE_MIN && (uint64_t)st->st_blocks * 512 < size / 8;
	char what[256];
	snprintf(what, sizeof(what),
		 "%s file of %llu bytes (%llu allocated) would take the bytes hashed past "
		 "%llu",
		 sparse ? "a sparse" : "a", (unsigned long long)size,
		 (unsigned long long)st->st_blocks * 512, (unsigned long long)w->b.max_bytes);
	return over_budget(w, rel, what);
}

static int left_out(const char *path, int e)
{
	return fs_left_out("integrity", path, "the manifest was made", "the manifest", e);
}

static int put_header(struct walk *w, const char *rel, const struct stat *st)
{
	if (budget_entry(w, rel) < 0)
		return -w->err->code;
	struct archive_entry *e = w->e;
	AL(archive_entry_clear)(e);
	AL(archive_entry_set_pathname)(e, rel);
	AL(archive_entry_set_filetype)(e, st->st_mode & S_IFMT);
	AL(archive_entry_set_perm)(e, st->st_mode & 07777);
	AL(archive_entry_set_uid)(e, st->st_uid);
	AL(archive_entry_set_gid)(e, st->st_gid);
	AL(archive_entry_set_size)(e, S_ISREG(st->st_mode) ? st->st_size : 0);
	w->files++;
	return 0;
}

static int write_header(struct walk *w, const char *rel)
{
	if (AL(archive_write_header)(w->a, w->e) < ARCHIVE_OK)
		return archive_lib_err(w->a, CLBSD_E_INTERNAL, rel, w->err);
	return 0;
}

/* The data of the regular file open at fd, at most size bytes, fed to the writer's digest. */
static int put_data(struct walk *w, int fd, int64_t size, const char *rel)
{
	int64_t left = size;
	while (left > 0) {
		size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
		ssize_t n = read(fd, w->chunk, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return clbsd_err_set(w->err, CLBSD_E_INTERNAL, errno, "read %s", rel);
		if (n == 0)
			break; /* it shrank meanwhile: the writer pads, the digest shows the change */
		if (AL(archive_write_data)(w->a, w->chunk, (size_t)n) != n)
			return archive_lib_err(w->a, CLBSD_E_INTERNAL, rel, w->err);
		left -= n;
		if (time_mono_ns() > w->deadline) {
			char what[128];
			snprintf(what, sizeof(what), "it took longer than %lld s",
				 (long long)(w->b.max_wall_ns / 1000000000ll));
			return over_budget(w, rel, what);
		}
	}
	return 0;
}

static int put_file(struct walk *w, int fd, const struct stat *st, const char *rel)
{
	if (budget_file(w, st, rel) < 0 || put_header(w, rel, st) < 0)
		return -w->err->code;
	int r = write_header(w, rel);
	return r < 0 ? r : put_data(w, fd, st->st_size, rel);
}

/*
 * One entry `name` of the directory dfd, whose path in the tree is rel
 * ("." for the root); dtype is what readdir said it is (DT_UNKNOWN: not
 * known). As sys_copy_tree does (src/sys/tree_copy.c): what changed type
 * or vanished between the look and the open is left out.
 */
static int walk_at(struct walk *w, int dfd, const char *name, const char *rel, int depth,
		   unsigned char dtype)
{
	bool top = depth == 0;
	struct stat st;
	if (dtype == DT_REG) {
		/* Most entries: opened at once (only if it still is one), no stat by name first. */
		autoclose int fd = fs_open_reg_at(dfd, name, &st);
		if (fd >= 0)
			return put_file(w, fd, &st, rel);
		if (fd == -ENOENT)
			return left_out(rel, ENOENT);
		/* Something else now (-EINVAL) or unreadable: look at it as it is. */
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return !top && errno == ENOENT
			       ? left_out(rel, ENOENT)
			       : clbsd_err_set(w->err, CLBSD_E_INTERNAL, errno, "stat %s", rel);
	if (S_ISREG(st.st_mode)) {
		autoclose int fd = fs_open_reg_at(dfd, name, &st);
		if (fd < 0)
			return !top && (fd == -ENOENT || fd == -EINVAL || fd == -ELOOP ||
					fd == -EWOULDBLOCK)
				       ? left_out(rel, -fd)
				       : clbsd_err_set(w->err, CLBSD_E_INTERNAL, -fd, "open %s",
						       rel);
		return put_file(w, fd, &st, rel);
	}
	if (S_ISLNK(st.st_mode)) {
		autofree char *target = xmalloc(PATH_MAX);
		ssize_t n = readlinkat(dfd, name, target, PATH_MAX - 1);
		if (n < 0)
			return !top && (errno == ENOENT || errno == EINVAL)
				       ? left_out(rel, errno)
				       : clbsd_err_set(w->err, CLBSD_E_INTERNAL, errno,
						       "readlink %s", rel);
		target[n] = '\0';
		if (put_header(w, rel, &st) < 0)
			return -w->err->code;
		AL(archive_entry_set_symlink)(w->e, target);
		return write_header(w, rel);
	}
	if (!S_ISDIR(st.st_mode)) {
		/* FIFOs, sockets, devices: recorded from the stat, never opened. */
		if (put_header(w, rel, &st) < 0)
			return -w->err->code;
		return write_header(w, rel);
	}
	if (fs_tree_check_depth(depth, rel, w->err) < 0)
		return -w->err->code;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return !top && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			       ? left_out(rel, errno)
			       : clbsd_err_set(w->err, CLBSD_E_INTERNAL, errno, "open %s", rel);
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return clbsd_err_set(w->err, CLBSD_E_INTERNAL, e, "stat %s", rel);
	}
	if (top)
		w->dev = st.st_dev;
	int r = put_header(w, rel, &st) < 0 ? -w->err->code : write_header(w, rel);
	if (r < 0 || st.st_dev != w->dev) {
		close(fd); /* a mount point: what is mounted there is not the tree's */
		return r;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return clbsd_err_set(w->err, CLBSD_E_INTERNAL, errno, "opendir %s", rel);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		autofree char *sub =
			top ? xstrdup(de->d_name) : xasprintf("%s/%s", rel, de->d_name);
		r = walk_at(w, dirfd(d), de->d_name, sub, depth + 1, de->d_type);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

/* The text the writer makes, at most MTREE_TEXT_MAX bytes of it. */
struct sink {
	struct buf text;
	bool full;
};

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *data, size_t n)
{
	struct sink *k = ctx;
	if (k->text.len > MTREE_TEXT_MAX || n > MTREE_TEXT_MAX - k->text.len) {
		k->full = true;
		return -1;
	}
	buf_add(&k->text, data, n);
	return (la_ssize_t)n;
}

int mtree_record_fd(int rootfd, const struct mtree_budget *budget, char **out, size_t *len,
		    size_t *files, struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return clbsd_err_prefix(err, "record a manifest");
	struct sink k = {.text = BUF_INIT};
	struct walk w = {.err = err, .chunk = xmalloc(READ_CHUNK)};
	if (budget)
		w.b = *budget;
	if (!w.b.max_bytes)
		w.b.max_bytes = MTREE_BUDGET_BYTES;
	if (!w.b.max_entries)
		w.b.max_entries = MTREE_BUDGET_ENTRIES;
	if (!w.b.max_wall_ns)
		w.b.max_wall_ns = MTREE_BUDGET_WALL_NS;
	w.deadline = time_mono_ns() + w.b.max_wall_ns;
	w.a = AL(archive_write_new)();
	w.e = AL(archive_entry_new)();
	int r = 0;
	if (AL(archive_write_set_format_mtree)(w.a) != ARCHIVE_OK ||
	    AL(archive_write_set_options)(w.a, MTREE_KEYWORDS) != ARCHIVE_OK ||
	    AL(archive_write_set_bytes_per_block)(w.a, 0) != ARCHIVE_OK ||
	    AL(archive_write_open)(w.a, &k, NULL, sink_write, NULL) != ARCHIVE_OK)
		r = archive_lib_err(w.a, CLBSD_E_UNAVAIL, "libarchive's mtree writer", err);
	if (r == 0)
		r = walk_at(&w, rootfd, ".", ".", 0, DT_UNKNOWN);
	/* The writer sorts and prints what it holds when it is closed. */
	if (r == 0 && AL(archive_write_close)(w.a) != ARCHIVE_OK) {
		if (k.full) {
			char what[128];
			snprintf(what, sizeof(what), "its manifest would be larger than %u MiB",
				 MTREE_TEXT_MAX >> 20);
			r = over_budget(&w, "the end", what);
		} else {
			r = archive_lib_err(w.a, CLBSD_E_INTERNAL, "write the manifest", err);
		}
	}
	AL(archive_entry_free)(w.e);
	AL(archive_write_free)(w.a);
	archive_lib_release();
	free(w.chunk);
	if (r < 0) {
		buf_release(&k.text);
		return clbsd_err_prefix(err, "record a manifest");
	}
	*out = buf_detach(&k.text, len);
	*files = w.files;
	return 0;
}

int mtree_record_dir(const char *path, const struct mtree_budget *budget, char **out, size_t *len,
		     size_t *files, struct clbsd_err *err)
{
	autoclose int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL,
				     errno, "open %s", path);
	return mtree_record_fd(fd, budget, out, len, files, err);
}

static char type_of(unsigned t)
{
	switch (t) {
	case AE_IFREG:
		return 'f';
	case AE_IFDIR:
		return 'd';
	case AE_IFLNK:
		return 'l';
	case AE_IFCHR:
		return 'c';
	case AE_IFBLK:
		return 'b';
	case AE_IFIFO:
		return 'p';
	case AE_IFSOCK:
		return 's';
	}
	return 0;
}

/* "./etc/passwd" -> "/etc/passwd", "." -> "/"; NULL for anything else. */
static char *tree_path(const char *p)
{
	if (!p)
		return NULL;
	if (strcmp(p, ".") == 0)
		return xstrdup("/");
	if (p[0] != '.' || p[1] != '/' || !p[2])
		return NULL;
	return xstrdup(p + 1);
}

int mtree_parse(const char *text, size_t len, struct mtree_set *out, struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return clbsd_err_prefix(err, "read a manifest");
	struct archive *a = AL(archive_read_new)();
	struct mtree_set s = {0};
	size_t cap = 0;
	int r = 0;
	if (AL(archive_read_support_format_mtree)(a) != ARCHIVE_OK ||
	    AL(archive_read_open_memory)(a, text, len) != ARCHIVE_OK)
		r = archive_lib_err(a, CLBSD_E_INVALID, "not an mtree manifest", err);
	struct archive_entry *e;
	while (r == 0) {
		int h = AL(archive_read_next_header)(a, &e);
		if (h == ARCHIVE_EOF)
			break;
		if (h != ARCHIVE_OK) {
			r = archive_lib_err(a, CLBSD_E_INVALID, "not a manifest clbsd wrote", err);
			break;
		}
		const char *raw = AL(archive_entry_pathname)(e);
		char t = type_of(AL(archive_entry_filetype)(e));
		char *path = tree_path(raw);
		if (!path || !t) {
			free(path);
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "entry \"%.200s\": expected a path \".\" or \"./...\" "
					     "and a type, as clbsd writes them",
					     raw ? raw : "");
			break;
		}
		if (s.n == cap) {
			cap = cap ? cap * 2 : 256;
			s.v = xrealloc(s.v, cap * sizeof(*s.v));
		}
		struct mtree_entry *m = &s.v[s.n++];
		memset(m, 0, sizeof(*m));
		m->path = path;
		m->type = t;
		m->mode = AL(archive_entry_perm)(e) & 07777;
		m->uid = AL(archive_entry_uid)(e);
		m->gid = AL(archive_entry_gid)(e);
		m->size = t == 'f' ? AL(archive_entry_size)(e) : 0;
		const char *l = t == 'l' ? AL(archive_entry_symlink)(e) : NULL;
		m->link = l ? xstrdup(l) : NULL;
		const unsigned char *dg = AL(archive_entry_digest)(e, ARCHIVE_ENTRY_DIGEST_SHA256);
		bool any = false;
		for (size_t i = 0; dg && i < 32; i++)
			any |= dg[i] != 0;
		for (size_t i = 0; any && i < 32; i++) {
			static const char hex[] = "0123456789abcdef";
			m->sha256[2 * i] = hex[dg[i] >> 4];
			m->sha256[2 * i + 1] = hex[dg[i] & 15];
		}
	}
	AL(archive_read_free)(a);
	archive_lib_release();
	if (r < 0) {
		mtree_set_release(&s);
		return clbsd_err_prefix(err, "read a manifest");
	}
	mtree_set_sort(&s);
	*out = s;
	return 0;
}
