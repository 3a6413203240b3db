/*
 * What both storage drivers share: the name checks that keep user input
 * safe in paths and zfs argv, the life cycle of struct storage, and the
 * modes that keep <root> to root alone.
 */
#include "storage.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void storage_release(struct storage *st)
{
	free(st->root);
	free(st->pool);
	free(st->dataset);
	st->root = st->pool = st->dataset = NULL;
}

void storage_snapshots_free(struct storage_snapshot *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].label);
	free(s);
}

char *storage_ctr_dir(const struct storage *st, const char *name)
{
	return xasprintf("%s/containers/%s", st->root, name);
}

int storage_check_name(const char *what, const char *name, struct clbsd_err *err)
{
	if (name && valid_name(name))
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"%s name \"%s\" is not a DNS label ([a-z0-9-], at most 63)", what,
				name ? name : "(null)");
}

int storage_check_label(const char *label, struct clbsd_err *err)
{
	size_t n = label ? strlen(label) : 0;
	bool ok = n > 0 && n <= 64;
	for (size_t i = 0; ok && i < n; i++) {
		char c = label[i];
		bool alnum =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		ok = alnum || (i > 0 && strchr("_.:-", c) != NULL);
	}
	if (ok)
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"snapshot label \"%s\" is not valid: expected a letter or digit, "
				"then letters, digits, '_', '.', ':' or '-' (64 at most)",
				label ? label : "(null)");
}

int storage_check_image_id(const char *id, struct clbsd_err *err)
{
	size_t n = id ? strlen(id) : 0;
	bool ok = n > 0 && n <= 64;
	for (size_t i = 0; ok && i < n; i++)
		ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9');
	if (ok)
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"image id \"%s\" is not valid: expected [a-z0-9], 64 at most",
				id ? id : "(null)");
}

/* chmod the entry `name` of dirfd to `dir_mode` (a directory) or strip its bits for others (a
 * file). */
static int tighten(int dirfd, const char *name, mode_t dir_mode, const char *root,
		   struct clbsd_err *err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s/%s",
						       root, name);
	mode_t want;
	if (S_ISDIR(st.st_mode))
		want = dir_mode;
	else if (S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))
		want = st.st_mode & 07770;
	else
		return 0; /* a symlink is never followed; nothing else belongs here */
	if ((st.st_mode & 07777) == want)
		return 0;
	/* Through an O_PATH fd of the entry itself: a rename in between cannot redirect it. */
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s/%s",
						       root, name);
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	int r = chmod(p, want);
	int e = errno;
	close(fd);
	if (r < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "chmod %s/%s", root, name);
	return 1;
}

/* tighten() for every entry of dir (relative to parent, "" = parent itself). */
static int tighten_all(int parent, const char *sub, const char *shown, bool top,
		       struct clbsd_err *err)
{
	int dfd = openat(parent, *sub ? sub : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT
			       ? 0
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", shown);
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", shown);
	}
	int n = 0, r = 0;
	struct dirent *de;
	while (r >= 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		bool ingress = top && !strcmp(de->d_name, "ingress");
		r = tighten(dirfd(d), de->d_name, ingress ? 0711 : 0700, shown, err);
		n += r > 0;
	}
	closedir(d);
	return r < 0 ? r : n;
}

int storage_secure_root(const char *root, struct clbsd_err *err)
{
	autoclose int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", root);
	struct stat st;
	int n = 0, r;
	if (fstat(rfd, &st) == 0 && (st.st_mode & 07777 & ~0711)) {
		if (fchmod(rfd, 0711) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "chmod %s", root);
		n++;
	}
	if ((r = tighten_all(rfd, "", root, true, err)) < 0)
		return clbsd_err_prefix(err, "secure %s", root);
	n += r;
	/* Each container's volumes too, so that volumes/ alone is not the only guard. */
	autofree char *vols = xasprintf("%s/volumes", root);
	autoclose int vfd = open(vols, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (vfd >= 0) {
		if ((r = tighten_all(vfd, "", vols, false, err)) < 0)
			return clbsd_err_prefix(err, "secure %s", root);
		n += r;
	}
	return n;
}
