/*
 * The file steps of a build: COPY, ADD of local files and directories,
 * WORKDIR and ROOTPIVOT, carried out on a layer's tree. RUN is the
 * runtime's (a native build container); archives and URLs of ADD are the
 * builder's (libarchive, a download) and are refused here.
 *
 * The tree being built is untrusted: an image may hold /etc -> /host/etc
 * or a ../../ symlink. Every path inside it (and inside a --from stage and
 * the build context) is resolved here component by component, as if that
 * tree were the root: an absolute symlink restarts at the tree's root and
 * ".." stops there, so nothing is read or written outside. This is
 * openat2(RESOLVE_IN_ROOT) done by hand, which also works where that call
 * does not exist.
 */
#include "image/cblockfile.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYMLINK_MAX 40

/* Whether fd is the directory `root` (same device and inode). */
static bool is_root(int fd, const struct stat *root)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == root->st_dev && st.st_ino == root->st_ino;
}

/* Split a path into its components (no empty ones), appended to v. */
static void push_components(struct strv *v, const char *path)
{
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		if (e > p)
			strv_push_owned(v, xstrndup(p, (size_t)(e - p)));
		p = e;
	}
}

/*
 * Resolve `path` inside the tree rootfd, following symlinks within it.
 * With follow_last the whole path must name a directory and *fd is it
 * (*name is NULL); otherwise *fd is the directory holding the last
 * component and *name that component, not resolved ("" when the path is
 * the root itself). With mkdirs, missing directories are created (0755).
 */
static int resolve(int rootfd, const char *path, bool follow_last, bool mkdirs, int *fd,
		   char **name, struct clbsd_err *err)
{
	struct stat rootst;
	if (fstat(rootfd, &rootst) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat the tree root");
	/* Components left, as a stack: the next one is at the end. */
	struct strv todo = STRV_INIT;
	struct strv comps = STRV_INIT;
	push_components(&comps, path);
	for (size_t i = comps.n; i-- > 0;)
		strv_push(&todo, comps.v[i]);
	strv_release(&comps);
	int cur = dup(rootfd);
	if (cur < 0) {
		strv_release(&todo);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "dup");
	}
	int links = 0;
	int r = 0;
	char *last = NULL;
	while (todo.n > 0) {
		char *c = todo.v[--todo.n];
		todo.v[todo.n] = NULL;
		if (strcmp(c, ".") == 0) {
			free(c);
			continue;
		}
		if (strcmp(c, "..") == 0) {
			free(c);
			if (is_root(cur, &rootst))
				continue; /* ".." of the root is the root */
			int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (up < 0) {
				r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "%s: ..", path);
				break;
			}
			close(cur);
			cur = up;
			continue;
		}
		if (todo.n == 0 && !follow_last) {
			last = c;
			break;
		}
		struct stat st;
		if (fstatat(cur, c, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			int e = errno;
			if (e != ENOENT || !mkdirs ||
			    (mkdirat(cur, c, 0755) < 0 && errno != EEXIST)) {
				r = clbsd_err_set(err, CLBSD_E_INVALID,
						  e == ENOENT && mkdirs ? errno : e, "%s", path);
				free(c);
				break;
			}
			st.st_mode = S_IFDIR;
		}
		if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(cur, c, target, sizeof(target) - 1);
			free(c);
			if (n < 0 || ++links > SYMLINK_MAX) {
				r = clbsd_err_set(err, CLBSD_E_INVALID, n < 0 ? errno : ELOOP,
						  "%s: too many symlinks", path);
				break;
			}
			target[n] = '\0';
			if (target[0] == '/') {
				close(cur);
				cur = dup(rootfd);
			}
			struct strv t = STRV_INIT;
			push_components(&t, target);
			for (size_t i = t.n; i-- > 0;)
				strv_push(&todo, t.v[i]);
			strv_release(&t);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOTDIR,
					     "%s: %s is not a directory", path, c);
			free(c);
			break;
		}
		int next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		free(c);
		if (next < 0) {
			r = clbsd_err_set(err, CLBSD_E_INVALID, errno, "%s", path);
			break;
		}
		close(cur);
		cur = next;
	}
	strv_release(&todo);
	if (r < 0) {
		close(cur);
		free(last);
		return r;
	}
	*fd = cur;
	if (name)
		*name = follow_last ? NULL : (last ? last : xstrdup(""));
	else
		free(last);
	return 0;
}

/* ---- owners ---- */

/* The numeric id of `name` in the tree's /etc/passwd (uid) or /etc/group (gid). */
static int lookup_id(int rootfd, const char *file, const char *name, long *out,
		     struct clbsd_err *err)
{
	long long n;
	if (parse_int(name, 0, 0x7fffffff, &n) == 0) {
		*out = (long)n;
		return 0;
	}
	/*
	 * The tree is what the build's own steps made: read it inside the tree,
	 * never opening a FIFO or a device node planted as /etc/passwd (the
	 * open would hang the build, or act on a host device).
	 */
	struct buf b = BUF_INIT;
	if (fs_read_in_root(rootfd, file, 1 << 20, &b.data, &b.len, err) < 0) {
		clbsd_err_prefix(err, "look up \"%s\"", name);
		err->kind = CLBSD_E_INVALID;
		return -err->code;
	}
	int ret = clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT, "\"%s\" is not in the image's %s",
				   name, file);
	size_t nlen = strlen(name);
	for (char *line = b.data; line && *line;) {
		char *eol = strchrnul(line, '\n');
		/* name:password:ID:... */
		if ((size_t)(eol - line) > nlen && strncmp(line, name, nlen) == 0 &&
		    line[nlen] == ':') {
			char *id = strchr(line + nlen + 1, ':');
			if (id && id < eol) {
				char *end;
				long v = strtol(id + 1, &end, 10);
				if (end > id + 1 && (*end == ':' || end == eol) && v >= 0) {
					*out = v;
					ret = 0;
				}
			}
			break;
		}
		line = *eol ? eol + 1 : eol;
	}
	buf_release(&b);
	return ret;
}

struct copy_opts {
	uid_t uid;
	gid_t gid;
	bool keep_owner; /* COPY --from without --chown: the source's owners */
	bool chmod_set;
	mode_t chmod;
	char *const *ignore; /* .cblockignore patterns, for context sources */
};

static int parse_chown(int rootfd, const char *spec, struct copy_opts *o, struct clbsd_err *err)
{
	autofree char *user = xstrdup(spec);
	char *group = strchr(user, ':');
	if (group)
		*group++ = '\0';
	long uid, gid;
	if (lookup_id(rootfd, "/etc/passwd", user, &uid, err) < 0)
		return -err->code;
	gid = uid; /* as in Docker: a user without group gets the same number as group */
	if (group && lookup_id(rootfd, "/etc/group", group, &gid, err) < 0)
		return -err->code;
	o->uid = (uid_t)uid;
	o->gid = (gid_t)gid;
	return 0;
}

/* ---- copying ---- */

static int copy_data(int in, int out, const char *what, struct clbsd_err *err)
{
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "copy %s", what);
		break;
	}
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", what);
		if (n == 0)
			return 0;
		if (write_all(out, buf, (size_t)n) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "write %s", what);
	}
}

/* Make room for a non-directory at ddir/name: remove what is there unless it is a directory. */
static int clear_for_file(int ddir, const char *name, const char *what, struct clbsd_err *err)
{
	struct stat st;
	if (fstatat(ddir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "%s", what);
	if (S_ISDIR(st.st_mode))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EISDIR,
					"%s: a directory is in the way of a file", what);
	if (unlinkat(ddir, name, 0) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "replace %s", what);
	return 0;
}

static int copy_entry(int sdir, const char *sname, int ddir, const char *dname,
		      const struct copy_opts *o, const char *rel, int depth, struct clbsd_err *err);

/* The entries of directory sfd into dfd (rel: the directory's path for ignores). */
static int copy_children(int sfd, int dfd, const struct copy_opts *o, const char *rel, int depth,
			 struct clbsd_err *err)
{
	int lfd = dup(sfd);
	DIR *d = lfd < 0 ? NULL : fdopendir(lfd);
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "list %s", *rel ? rel : ".");
	}
	struct strv names = STRV_INIT;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strv_push(&names, de->d_name);
	closedir(d);
	int r = 0;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		autofree char *crel =
			*rel ? xasprintf("%s/%s", rel, names.v[i]) : xstrdup(names.v[i]);
		r = copy_entry(sfd, names.v[i], dfd, names.v[i], o, crel, depth + 1, err);
	}
	strv_release(&names);
	return r;
}

static int copy_entry(int sdir, const char *sname, int ddir, const char *dname,
		      const struct copy_opts *o, const char *rel, int depth, struct clbsd_err *err)
{
	if (depth > 512)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ELOOP, "%s: nested too deeply", rel);
	if (o->ignore && *rel && cbf_ignored(o->ignore, rel))
		return 0;
	struct stat st;
	if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "%s", rel);
	mode_t mode = o->chmod_set ? o->chmod : (st.st_mode & 07777);
	uid_t uid = o->keep_owner ? st.st_uid : o->uid;
	gid_t gid = o->keep_owner ? st.st_gid : o->gid;
	if (S_ISDIR(st.st_mode)) {
		struct stat dst;
		if (fstatat(ddir, dname, &dst, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(dst.st_mode) &&
		    unlinkat(ddir, dname, 0) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "replace %s", rel);
		if (mkdirat(ddir, dname, 0700) < 0 && errno != EEXIST)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", rel);
		autoclose int sfd =
			openat(sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		autoclose int dfd =
			openat(ddir, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0 || dfd < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", rel);
		if (copy_children(sfd, dfd, o, rel, depth, err) < 0)
			return -err->code;
		if (fchown(dfd, uid, gid) < 0 || fchmod(dfd, mode) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "set owner of %s", rel);
		return 0;
	}
	if (clear_for_file(ddir, dname, rel, err) < 0)
		return -err->code;
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(sdir, sname, target, sizeof(target) - 1);
		if (n < 0)
			return clbsd_err_set(err, CLBSD_E_INVALID, errno, "readlink %s", rel);
		target[n] = '\0';
		if (symlinkat(target, ddir, dname) < 0 ||
		    fchownat(ddir, dname, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create symlink %s",
					     rel);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s is not a file, directory or symlink", rel);
	autoclose int in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "open %s", rel);
	autoclose int out =
		openat(ddir, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", rel);
	if (copy_data(in, out, rel, err) < 0)
		return -err->code;
	if (fchown(out, uid, gid) < 0 || fchmod(out, mode) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "set owner of %s", rel);
	return 0;
}

static char *join_dest(const char *workdir, const char *dest)
{
	if (dest[0] == '/')
		return xstrdup(dest);
	return xasprintf("%s/%s", workdir && *workdir ? workdir : "/", dest);
}

/* One source (a path in the tree srcroot) to dest in the tree rootfd. */
static int copy_source(int srcroot, const char *src, int rootfd, const char *dest, bool dest_dir,
		       const struct copy_opts *o, struct clbsd_err *err)
{
	int sdir;
	autofree char *sname = NULL;
	if (resolve(srcroot, src, false, false, &sdir, &sname, err) < 0)
		return clbsd_err_prefix(err, "source");
	autoclose int sdirfd = sdir;
	struct stat st;
	bool whole = !*sname; /* the tree's root itself */
	if (!whole && fstatat(sdirfd, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "source %s", src);
	/* A clean relative path of the source, for .cblockignore. */
	struct strv parts = STRV_INIT;
	push_components(&parts, src);
	struct buf relb = BUF_INIT;
	for (size_t i = 0; i < parts.n; i++) {
		if (!strcmp(parts.v[i], ".") || !strcmp(parts.v[i], ".."))
			continue;
		if (relb.len)
			buf_addc(&relb, '/');
		buf_adds(&relb, parts.v[i]);
	}
	strv_release(&parts);
	autofree char *rel = relb.data ? buf_detach(&relb, NULL) : xstrdup("");
	if (whole || S_ISDIR(st.st_mode)) {
		/* A directory's contents go into dest, which becomes a directory. */
		int dfd;
		if (resolve(rootfd, dest, true, true, &dfd, NULL, err) < 0)
			return clbsd_err_prefix(err, "destination");
		autoclose int dfdc = dfd;
		autoclose int sfd = whole ? dup(sdirfd)
					  : openat(sdirfd, sname,
						   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0)
			return clbsd_err_set(err, CLBSD_E_INVALID, errno, "source %s", src);
		return copy_children(sfd, dfdc, o, rel, 0, err);
	}
	int ddir;
	autofree char *dname = NULL;
	if (dest_dir) {
		if (resolve(rootfd, dest, true, true, &ddir, NULL, err) < 0)
			return clbsd_err_prefix(err, "destination");
		const char *slash = strrchr(src, '/');
		dname = xstrdup(slash ? slash + 1 : src);
	} else {
		if (resolve(rootfd, dest, false, true, &ddir, &dname, err) < 0)
			return clbsd_err_prefix(err, "destination");
	}
	autoclose int ddirfd = ddir;
	if (!*dname)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EISDIR,
					"destination %s is the root; end it with / to copy into it",
					dest);
	return copy_entry(sdirfd, sname, ddirfd, dname, o, rel, 0, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A glob pattern of context paths (as cbf_hash_sources() matches them). A
 * match that leaves the context through a symlinked directory is still
 * resolved inside it by copy_source().
 */
static int copy_glob(int srcroot, const char *srcdir, const char *pattern, int rootfd,
		     const char *dest, bool dest_dir, const struct copy_opts *o,
		     struct clbsd_err *err)
{
	if (strstr(pattern, ".."))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "a pattern must not hold ..");
	autofree char *full = xasprintf("%s/%s", srcdir, pattern);
	glob_t g;
	int gr = glob(full, GLOB_NOSORT, NULL, &g);
	if (gr == GLOB_NOMATCH)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
					"matches nothing in the build context");
	if (gr != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "glob failed");
	size_t plen = strlen(srcdir) + 1;
	struct strv rels = STRV_INIT;
	for (size_t i = 0; i < g.gl_pathc; i++)
		if (strlen(g.gl_pathv[i]) > plen &&
		    !(o->ignore && cbf_ignored(o->ignore, g.gl_pathv[i] + plen)))
			strv_push(&rels, g.gl_pathv[i] + plen);
	globfree(&g);
	if (rels.n)
		qsort(rels.v, rels.n, sizeof(char *), cmp_str);
	int r = 0;
	if (rels.n > 1 && !dest_dir)
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				     "several files match; the destination must end in /");
	for (size_t i = 0; i < rels.n && r == 0; i++)
		r = copy_source(srcroot, rels.v[i], rootfd, dest, dest_dir, o, err);
	strv_release(&rels);
	return r;
}

static int do_copy(const struct cbf_instr *in, int rootfd, const struct cbf_step_env *env,
		   struct clbsd_err *err)
{
	size_t n = strv_len(in->argv);
	if (n < 2)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s needs a destination",
					cbf_kind_name(in->kind));
	struct copy_opts o = {0};
	if (in->chown && parse_chown(rootfd, in->chown, &o, err) < 0)
		return clbsd_err_prefix(err, "--chown=%s", in->chown);
	if (in->chmod) {
		o.chmod_set = true;
		o.chmod = (mode_t)strtol(in->chmod, NULL, 8);
	}
	bool from = in->from_stage >= 0;
	o.keep_owner = from && !in->chown;
	const char *srcdir = from ? env->from_root : env->context;
	if (!srcdir)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL, "%s: no %s given",
					cbf_kind_name(in->kind), from ? "--from root" : "context");
	autoclose int srcroot = open(srcdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (srcroot < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", srcdir);
	char **ignore = NULL;
	if (!from) {
		autofree char *ipath = xasprintf("%s/.cblockignore", srcdir);
		autofree char *itext = NULL;
		struct clbsd_err e2;
		if (fs_read_file(ipath, &itext, NULL, &e2) < 0 && e2.code != ENOENT)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, e2.code, "%s", e2.msg);
		ignore = cbf_ignore_parse(itext);
		o.ignore = ignore;
	}
	autofree char *dest = join_dest(env->workdir, in->argv[n - 1]);
	bool dest_dir = dest[strlen(dest) - 1] == '/' || n > 2;
	if (!dest_dir) {
		/* An existing directory (within the tree) receives the sources too. */
		struct clbsd_err e3;
		int probe;
		if (resolve(rootfd, dest, true, false, &probe, NULL, &e3) == 0) {
			close(probe);
			dest_dir = true;
		}
	}
	int r = 0;
	for (size_t i = 0; i + 1 < n && r == 0; i++) {
		const char *src = in->argv[i];
		if (in->kind == CBF_ADD && cbf_add_source_kind(src) != CBF_ADD_FILE) {
			r = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					     "ADD %s: archives and URLs are the builder's to fetch "
					     "and extract, not a file step's",
					     src);
			break;
		}
		if (!from && strpbrk(src, "*?[")) {
			r = copy_glob(srcroot, srcdir, src, rootfd, dest, dest_dir, &o, err);
		} else {
			r = copy_source(srcroot, src, rootfd, dest, dest_dir, &o, err);
		}
		if (r < 0)
			clbsd_err_prefix(err, "%s %s", cbf_kind_name(in->kind), src);
	}
	strv_free(ignore);
	return r;
}

/* ---- ROOTPIVOT ---- */

/*
 * Make directory `dir` of the tree its root: move it aside under the root,
 * remove everything else, move its entries up. Works the same on a ZFS
 * dataset's mount point, which cannot itself be renamed.
 */
static int do_rootpivot(int rootfd, const char *rootfs, const char *dir, struct clbsd_err *err)
{
	int pfd;
	autofree char *name = NULL;
	if (resolve(rootfd, dir, false, false, &pfd, &name, err) < 0)
		return clbsd_err_prefix(err, "ROOTPIVOT %s", dir);
	autoclose int parent = pfd;
	struct stat st;
	if (!*name || fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOTDIR,
					"ROOTPIVOT %s: not a directory in the image (a symlink is "
					"not followed here)",
					dir);
	char aside[32] = ".rootpivot-";
	random_hex(aside + 11, 8);
	if (renameat(parent, name, rootfd, aside) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "ROOTPIVOT %s: move aside", dir);
	/* Everything but the moved directory goes. */
	int lfd = dup(rootfd);
	DIR *d = lfd < 0 ? NULL : fdopendir(lfd);
	if (!d)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "ROOTPIVOT: list the root");
	struct strv names = STRV_INIT;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, aside))
			strv_push(&names, de->d_name);
	closedir(d);
	int r = 0;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		autofree char *p = xasprintf("%s/%s", rootfs, names.v[i]);
		r = fs_rm_rf(p, err);
	}
	strv_release(&names);
	if (r < 0)
		return clbsd_err_prefix(err, "ROOTPIVOT %s", dir);
	autoclose int afd = openat(rootfd, aside, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	lfd = afd < 0 ? -1 : dup(afd);
	d = lfd < 0 ? NULL : fdopendir(lfd);
	if (!d)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "ROOTPIVOT: list %s", dir);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strv_push(&names, de->d_name);
	closedir(d);
	for (size_t i = 0; i < names.n && r == 0; i++)
		if (renameat(afd, names.v[i], rootfd, names.v[i]) < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "ROOTPIVOT %s: move %s up",
					  dir, names.v[i]);
	strv_release(&names);
	if (r == 0 && fchmod(rootfd, st.st_mode & 07777) < 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "ROOTPIVOT: mode of the root");
	if (r == 0 && unlinkat(rootfd, aside, AT_REMOVEDIR) < 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "ROOTPIVOT: remove %s", aside);
	return r;
}

int cbf_apply_file_step(const struct cbf_instr *in, const char *rootfs,
			const struct cbf_step_env *env, struct clbsd_err *err)
{
	autoclose int rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", rootfs);
	switch (in->kind) {
	case CBF_COPY:
	case CBF_ADD:
		return do_copy(in, rootfd, env, err);
	case CBF_WORKDIR: {
		autofree char *dir = join_dest(env->workdir, in->value);
		int fd;
		if (resolve(rootfd, dir, true, true, &fd, NULL, err) < 0)
			return clbsd_err_prefix(err, "WORKDIR %s", in->value);
		close(fd);
		return 0;
	}
	case CBF_ROOTPIVOT:
		return do_rootpivot(rootfd, rootfs, in->value, err);
	default:
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL, "%s is not a file step",
					cbf_kind_name(in->kind));
	}
}
