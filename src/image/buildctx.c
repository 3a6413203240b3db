/*
 * The build context: the content hash of COPY/ADD sources, honouring
 * .cblockignore. This is the only part of the build plan that reads the
 * file system; docs/cblockfile.md says what counts in the hash.
 */
#include "image/cblockfile.h"
#include "util/hash.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

char **cbf_ignore_parse(const char *text)
{
	struct strv v = STRV_INIT;
	const char *p = text ? text : "";
	while (*p) {
		const char *e = strchrnul(p, '\n');
		const char *a = p, *b = e;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		p = *e ? e + 1 : e;
		if (a == b || *a == '#')
			continue;
		struct buf pat = BUF_INIT;
		if (*a == '!') {
			buf_addc(&pat, '!');
			a++;
		}
		while (a < b && *a == '/')
			a++;
		while (b - a >= 2 && a[0] == '.' && a[1] == '/')
			a += 2;
		while (b > a && b[-1] == '/')
			b--;
		if (a == b) {
			buf_release(&pat);
			continue;
		}
		buf_add(&pat, a, (size_t)(b - a));
		strv_push_owned(&v, buf_detach(&pat, NULL));
	}
	if (!v.v)
		v.v = xcalloc(1, sizeof(char *));
	return v.v;
}

/* The pattern matches rel or one of its parent directories. */
static bool match_or_parent(const char *pat, const char *rel)
{
	if (fnmatch(pat, rel, FNM_PATHNAME) == 0)
		return true;
	autofree char *copy = xstrdup(rel);
	char *slash;
	while ((slash = strrchr(copy, '/'))) {
		*slash = '\0';
		if (fnmatch(pat, copy, FNM_PATHNAME) == 0)
			return true;
	}
	return false;
}

bool cbf_ignored(char *const *patterns, const char *rel)
{
	if (strcmp(rel, ".cblockignore") == 0)
		return true;
	bool ignored = false;
	for (size_t i = 0; patterns && patterns[i]; i++) {
		const char *pat = patterns[i];
		bool neg = pat[0] == '!';
		if (match_or_parent(neg ? pat + 1 : pat, rel))
			ignored = !neg;
	}
	return ignored;
}

static bool has_negation(char *const *patterns)
{
	for (size_t i = 0; patterns && patterns[i]; i++)
		if (patterns[i][0] == '!')
			return true;
	return false;
}

struct walk {
	const char *context;
	char *const *ignore;
	bool negations;
	struct hash_stream *h;
	struct clbsd_err *err;
};

static int hash_file(const char *path, char out[65], struct clbsd_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "read %s", path);
	struct hash_stream *h = hash_sha256_begin();
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			hash_stream_end(h, out);
			return clbsd_err_set(err, CLBSD_E_INVALID, e, "read %s", path);
		}
		if (n == 0)
			break;
		hash_stream_add(h, buf, (size_t)n);
	}
	close(fd);
	hash_stream_end(h, out);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The directories leading to a source must be directories, not symlinks:
 * "COPY link/passwd" with link -> /etc must not read the host's files.
 */
static int check_parents(const struct walk *w, const char *rel)
{
	autofree char *copy = xstrdup(rel);
	for (char *slash = strchr(copy, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		autofree char *path = xasprintf("%s/%s", w->context, copy);
		struct stat st;
		if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
			return clbsd_err_setmsg(w->err, CLBSD_E_INVALID, ENOTDIR,
						"source \"%s\": %s is not a directory (a symlink "
						"cannot lead out of the build context)",
						rel, copy);
		*slash = '/';
	}
	return 0;
}

/* One entry (and, for a directory, what is below it). rel is relative to the context. */
static int walk_entry(struct walk *w, const char *rel, int depth)
{
	if (depth > 256)
		return clbsd_err_setmsg(w->err, CLBSD_E_INVALID, ELOOP,
					"%s: directories nested too deeply", rel);
	if (depth == 0 && check_parents(w, rel) < 0)
		return -w->err->code;
	autofree char *path = *rel ? xasprintf("%s/%s", w->context, rel) : xstrdup(w->context);
	struct stat st;
	if (lstat(path, &st) < 0)
		return clbsd_err_set(w->err, CLBSD_E_INVALID, errno, "build context: %s",
				     *rel ? rel : ".");
	bool ignored = *rel && cbf_ignored(w->ignore, rel);
	if (ignored && (!S_ISDIR(st.st_mode) || !w->negations))
		return 0;
	if (!ignored) {
		char line[128];
		char type = S_ISDIR(st.st_mode)	  ? 'd'
			    : S_ISLNK(st.st_mode) ? 'l'
			    : S_ISREG(st.st_mode) ? 'f'
						  : 'o';
		snprintf(line, sizeof(line), "%c %04o ", type, (unsigned)(st.st_mode & 07777));
		hash_stream_add(w->h, "entry ", 6);
		hash_stream_add(w->h, rel, strlen(rel) + 1); /* NUL ends the path */
		hash_stream_add(w->h, line, strlen(line));
		if (S_ISREG(st.st_mode)) {
			char sum[65];
			if (hash_file(path, sum, w->err) < 0)
				return -w->err->code;
			hash_stream_add(w->h, sum, 64);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlink(path, target, sizeof(target));
			if (n < 0)
				return clbsd_err_set(w->err, CLBSD_E_INVALID, errno, "readlink %s",
						     rel);
			hash_stream_add(w->h, target, (size_t)n);
		} else if (!S_ISDIR(st.st_mode)) {
			return clbsd_err_setmsg(w->err, CLBSD_E_INVALID, EINVAL,
						"build context: %s is not a file, directory or "
						"symlink; add it to .cblockignore",
						rel);
		}
		hash_stream_add(w->h, "\n", 1);
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (!d)
		return clbsd_err_set(w->err, CLBSD_E_INVALID, errno, "build context: open %s",
				     *rel ? rel : ".");
	struct strv names = STRV_INIT;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strv_push(&names, de->d_name);
	closedir(d);
	if (names.n)
		qsort(names.v, names.n, sizeof(char *), cmp_str);
	int r = 0;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		autofree char *child =
			*rel ? xasprintf("%s/%s", rel, names.v[i]) : xstrdup(names.v[i]);
		r = walk_entry(w, child, depth + 1);
	}
	strv_release(&names);
	return r;
}

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* A source as a clean path relative to the context ("" for the context itself). */
static int clean_rel(const char *src, char **out, struct clbsd_err *err)
{
	struct strv parts = STRV_INIT;
	const char *p = src;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			strv_release(&parts);
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"source \"%s\" leaves the build context", src);
		}
		if (n && !(n == 1 && p[0] == '.'))
			strv_push_owned(&parts, xstrndup(p, n));
		p = e;
	}
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < parts.n; i++) {
		if (i)
			buf_addc(&b, '/');
		buf_adds(&b, parts.v[i]);
	}
	strv_release(&parts);
	if (!b.data)
		buf_adds(&b, "");
	*out = buf_detach(&b, NULL);
	return 0;
}

int cbf_hash_sources(const char *context, char *const *sources, char out[65], struct clbsd_err *err)
{
	autofree char *ipath = xasprintf("%s/.cblockignore", context);
	autofree char *itext = NULL;
	struct clbsd_err e2;
	if (fs_read_file(ipath, &itext, NULL, &e2) < 0 && e2.code != ENOENT)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, e2.code, "%s", e2.msg);
	char **ignore = cbf_ignore_parse(itext);
	struct walk w = {.context = context,
			 .ignore = ignore,
			 .negations = has_negation(ignore),
			 .h = hash_sha256_begin(),
			 .err = err};
	int r = 0;
	for (size_t i = 0; sources && sources[i] && r == 0; i++) {
		const char *src = sources[i];
		enum cbf_add_source k = cbf_add_source_kind(src);
		if (k == CBF_ADD_URL || k == CBF_ADD_ARCHIVE_URL) {
			hash_stream_add(w.h, "url ", 4);
			hash_stream_add(w.h, src, strlen(src));
			hash_stream_add(w.h, "\n", 1);
			continue;
		}
		autofree char *rel = NULL;
		if (clean_rel(src, &rel, err) < 0) {
			r = -err->code;
			break;
		}
		hash_stream_add(w.h, "source ", 7);
		hash_stream_add(w.h, rel, strlen(rel) + 1);
		if (!has_glob(rel)) {
			if (*rel && cbf_ignored(ignore, rel)) {
				r = clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
						     "source \"%s\" is excluded by .cblockignore",
						     src);
				break;
			}
			r = walk_entry(&w, rel, 0);
			continue;
		}
		autofree char *pattern = xasprintf("%s/%s", context, rel);
		glob_t g;
		int gr = glob(pattern, GLOB_NOSORT, NULL, &g);
		if (gr == GLOB_NOMATCH) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
					     "source \"%s\" matches nothing in the build context",
					     src);
			break;
		}
		if (gr != 0) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EIO,
					     "source \"%s\": glob failed", src);
			break;
		}
		size_t plen = strlen(context) + 1;
		struct strv rels = STRV_INIT;
		for (size_t k2 = 0; k2 < g.gl_pathc; k2++)
			if (strlen(g.gl_pathv[k2]) > plen)
				strv_push(&rels, g.gl_pathv[k2] + plen);
		globfree(&g);
		if (rels.n)
			qsort(rels.v, rels.n, sizeof(char *), cmp_str);
		for (size_t k2 = 0; k2 < rels.n && r == 0; k2++)
			if (!cbf_ignored(ignore, rels.v[k2]))
				r = walk_entry(&w, rels.v[k2], 0);
		strv_release(&rels);
	}
	char sum[65];
	hash_stream_end(w.h, sum);
	strv_free(ignore);
	if (r < 0)
		return r;
	memcpy(out, sum, 65);
	return 0;
}

int cbf_source_hash_context(const struct cbf_instr *in, char out[65], void *ctx,
			    struct clbsd_err *err)
{
	size_t n = strv_len(in->argv);
	if (n < 2)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s needs a source and a destination",
					cbf_kind_name(in->kind));
	struct strv srcs = STRV_INIT;
	for (size_t i = 0; i + 1 < n; i++)
		strv_push(&srcs, in->argv[i]);
	int r = cbf_hash_sources((const char *)ctx, srcs.v, out, err);
	strv_release(&srcs);
	return r;
}
