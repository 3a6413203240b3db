/*
 * Helpers for the storage tests: make a small root file system, write files
 * of a given size, and describe a tree (paths, modes, sizes, SHA-256 of the
 * contents, symlink targets) so two trees can be compared with one strcmp.
 */
#ifndef CLBSD_TEST_STORAGE_TREE_H
#define CLBSD_TEST_STORAGE_TREE_H

#include "util/hash.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write n pseudo-random bytes (seeded, so trees can be rebuilt) to path. */
static int tree_write(const char *path, size_t n, unsigned seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	char *b = malloc(1 << 16);
	unsigned x = seed * 2654435761u + 1;
	int r = 0;
	while (n > 0 && r == 0) {
		size_t k = n < (1 << 16) ? n : (1 << 16);
		for (size_t i = 0; i < k; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			b[i] = (char)x;
		}
		r = write_all(fd, b, k);
		n -= k;
	}
	free(b);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int tree_put(const char *dir, const char *rel, const char *text)
{
	struct clbsd_err err;
	char *p = xasprintf("%s/%s", dir, rel);
	int r = fs_write_atomic(p, text, strlen(text), 0644, &err);
	free(p);
	return r;
}

static char *tree_get(const char *dir, const char *rel)
{
	struct clbsd_err err;
	char *p = xasprintf("%s/%s", dir, rel);
	char *text = NULL;
	if (fs_read_file(p, &text, NULL, &err) < 0)
		text = NULL;
	free(p);
	return text;
}

/* A tiny rootfs with `bulk` bytes in /data/bulk.bin. */
static int tree_make_rootfs(const char *dir, size_t bulk)
{
	struct clbsd_err err;
	static const char *const dirs[] = {"etc", "bin", "data", "var/log"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char *p = xasprintf("%s/%s", dir, dirs[i]);
		int r = fs_mkdir_p(p, 0755, &err);
		free(p);
		if (r < 0)
			return r;
	}
	char *ln = xasprintf("%s/bin/sh", dir);
	int r = symlink("busybox", ln);
	free(ln);
	if (r < 0)
		return -errno;
	if ((r = tree_put(dir, "etc/hostname", "image\n")) < 0 ||
	    (r = tree_put(dir, "etc/passwd", "root:x:0:0::/root:/bin/sh\n")) < 0)
		return r;
	char *bin = xasprintf("%s/bin/busybox", dir);
	r = tree_write(bin, 4096, 7);
	chmod(bin, 0755);
	free(bin);
	if (r == 0 && bulk) {
		char *big = xasprintf("%s/data/bulk.bin", dir);
		r = tree_write(big, bulk, 11);
		free(big);
	}
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void tree_walk(const char *root, const char *rel, struct strv *out)
{
	char *path = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *r2 = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		char *p = xasprintf("%s/%s", root, r2);
		struct stat st;
		if (lstat(p, &st) == 0) {
			char sum[65] = "-";
			if (S_ISREG(st.st_mode)) {
				struct clbsd_err err;
				char *data = NULL;
				size_t len = 0;
				if (fs_read_file(p, &data, &len, &err) == 0)
					hash_sha256_hex(data, len, sum);
				free(data);
			} else if (S_ISLNK(st.st_mode)) {
				ssize_t n = readlink(p, sum, sizeof(sum) - 1);
				sum[n > 0 ? n : 0] = '\0';
			}
			strv_push_owned(out,
					xasprintf("%s %o %lld %s", r2, st.st_mode,
						  S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size,
						  sum));
			if (S_ISDIR(st.st_mode))
				tree_walk(root, r2, out);
		}
		free(p);
		free(r2);
	}
	if (d)
		closedir(d);
	free(path);
}

/* One line per entry below root, sorted (caller frees). */
static char *tree_digest(const char *root)
{
	struct strv v = STRV_INIT;
	tree_walk(root, "", &v);
	if (v.n)
		qsort(v.v, v.n, sizeof(char *), cmp_str);
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < v.n; i++) {
		buf_adds(&b, v.v[i]);
		buf_addc(&b, '\n');
	}
	strv_release(&v);
	if (b.len == 0) {
		buf_release(&b);
		return xstrdup("");
	}
	return buf_detach(&b, NULL);
}

#endif
