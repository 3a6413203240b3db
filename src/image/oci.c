/*
 * OCI image layout export and import of OCI layouts and `docker save`
 * archives (oci.h says what is kept and why the export is deterministic).
 * libarchive comes through the loader of util/archive_lib.h: loaded for
 * the operations that need it, never linked into the daemon.
 */
#include "oci.h"
#include "util/archive_lib.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define A(f) AL(f)

/*
 * A data block written to disk: libarchive answers a failed write(2)
 * (ENOSPC, EIO) with ARCHIVE_WARN, not FATAL, and the file is left short.
 */
static bool block_failed(struct archive *disk, int ar)
{
	return ar < ARCHIVE_WARN || (ar < ARCHIVE_OK && A(archive_errno)(disk) > 0);
}

static void digest_end(struct hash_stream *h, char out[OCI_DIGEST_LEN])
{
	char hex[65];
	hash_stream_end(h, hex);
	snprintf(out, OCI_DIGEST_LEN, "sha256:%s", hex);
}

static void digest_of(const void *data, size_t len, char out[OCI_DIGEST_LEN])
{
	char hex[65];
	hash_sha256_hex(data, len, hex);
	snprintf(out, OCI_DIGEST_LEN, "sha256:%s", hex);
}

int oci_file_digest(const char *path, char out[OCI_DIGEST_LEN], struct clbsd_err *err)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "open %s", path);
	struct hash_stream *h = hash_sha256_begin();
	char b[65536];
	for (;;) {
		ssize_t n = read(fd, b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			hash_stream_end(h, b);
			return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "read %s", path);
		}
		if (n == 0)
			break;
		hash_stream_add(h, b, (size_t)n);
	}
	digest_end(h, out);
	return 0;
}

/* ---- the deterministic layer ---- */

struct lw {
	struct archive *tar, *gz;
	struct hash_stream *diff, *comp;
	int fd;
	int64_t size;
	int wr_errno;
	json_t *links; /* "dev:ino" -> first name, for hard links */
};

static la_ssize_t gz_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct lw *w = ctx;
	hash_stream_add(w->comp, buf, len);
	w->size += (int64_t)len;
	if (w->fd >= 0 && write_all(w->fd, buf, len) < 0) {
		w->wr_errno = errno;
		return -1;
	}
	return (la_ssize_t)len;
}

static la_ssize_t tar_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct lw *w = ctx;
	hash_stream_add(w->diff, buf, len);
	if (A(archive_write_data)(w->gz, buf, len) != (la_ssize_t)len)
		return -1;
	return (la_ssize_t)len;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int no_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

/*
 * One entry of the layer: st is what the walk trusts (the fstat of the open
 * fd of a regular file), fd that file, target a symlink's.
 */
static int put_entry(struct lw *w, int fd, const char *target, const char *rel,
		     const struct stat *st, struct clbsd_err *err)
{
	mode_t t = st->st_mode & S_IFMT;
	if (t == S_IFSOCK)
		return 0; /* a tar cannot hold a socket; a runtime makes its own */
	struct archive_entry *e = A(archive_entry_new)();
	autofree char *name = S_ISDIR(st->st_mode) ? xasprintf("%s/", rel) : xstrdup(rel);
	A(archive_entry_set_pathname)(e, name);
	A(archive_entry_set_filetype)(e, (unsigned)t);
	A(archive_entry_set_perm)(e, st->st_mode & 07777);
	A(archive_entry_set_uid)(e, st->st_uid);
	A(archive_entry_set_gid)(e, st->st_gid);
	A(archive_entry_set_mtime)(e, st->st_mtime, 0);
	bool data = false;
	int r = 0;
	if (t == S_IFLNK) {
		A(archive_entry_set_symlink)(e, target);
	} else if (t == S_IFCHR || t == S_IFBLK) {
		A(archive_entry_set_rdev)(e, st->st_rdev);
	} else if (t == S_IFREG) {
		autofree char *key = NULL;
		if (st->st_nlink > 1) {
			key = xasprintf("%llu:%llu", (unsigned long long)st->st_dev,
					(unsigned long long)st->st_ino);
			const char *first = json_str(w->links, key);
			if (first) {
				A(archive_entry_set_hardlink)(e, first);
				A(archive_entry_set_size)(e, 0);
				goto write;
			}
			json_object_set_new(w->links, key, json_string(rel));
		}
		A(archive_entry_set_size)(e, st->st_size);
		data = st->st_size > 0;
	}
write:
	if (A(archive_write_header)(w->tar, e) < ARCHIVE_WARN)
		r = archive_lib_err(w->tar, CLBSD_E_INTERNAL, "write layer", err);
	else if (data)
		r = archive_lib_put_file_data(w->tar, fd, st->st_size, rel, "write layer", err);
	A(archive_entry_free)(e);
	return r;
}

static int left_out(const char *path, int e)
{
	return fs_left_out("image", path, "the layer was written", "the layer", e);
}

/*
 * The entries of the directory open at dfd, in name order (the layer's
 * digest must not depend on the file system's order). The tree is walked by
 * directory fds and nothing is opened by a path: a regular file is opened
 * only as one (fs_open_reg_at) and archived as its open fd's fstat says, a
 * directory is opened O_NOFOLLOW|O_DIRECTORY, FIFOs and device nodes are
 * archived from their stat and never opened, and an entry that changed
 * type or vanished between its stat and its open is left out (a warning).
 */
static int walk(struct lw *w, int dfd, const char *dir, const char *rel, int depth,
		struct clbsd_err *err)
{
	if (fs_tree_check_depth(depth, dir, err) < 0)
		return -err->code;
	struct dirent **list;
	int n = scandirat(dfd, ".", &list, no_dots, by_name);
	if (n < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read directory %s", dir);
	int r = 0;
	for (int i = 0; i < n; i++) {
		const char *nm = list[i]->d_name;
		autofree char *full = r == 0 ? xasprintf("%s/%s", dir, nm) : NULL;
		autofree char *sub = r != 0 ? NULL
				     : *rel ? xasprintf("%s/%s", rel, nm)
					    : xstrdup(nm);
		struct stat st;
		autoclose int fd = -1;
		autofree char *target = NULL; /* not on the stack: walk() recurses */
		if (r != 0)
			goto next;
		if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = errno == ENOENT
				    ? left_out(full, ENOENT)
				    : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", full);
			goto next;
		}
		if (S_ISREG(st.st_mode)) {
			fd = fs_open_reg_at(dfd, nm, &st);
			if (fd < 0) {
				r = fd == -ENOENT || fd == -EINVAL || fd == -EWOULDBLOCK
					    ? left_out(full, -fd)
					    : clbsd_err_set(err, CLBSD_E_INTERNAL, -fd, "open %s",
							    full);
				goto next;
			}
		} else if (S_ISDIR(st.st_mode)) {
			fd = openat(dfd, nm,
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0) {
				r = errno == ENOENT || errno == ENOTDIR || errno == ELOOP
					    ? left_out(full, errno)
					    : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s",
							    full);
				goto next;
			}
			if (fstat(fd, &st) < 0) {
				r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stat %s", full);
				goto next;
			}
		} else if (S_ISLNK(st.st_mode)) {
			target = xmalloc(PATH_MAX);
			ssize_t k = readlinkat(dfd, nm, target, PATH_MAX - 1);
			if (k < 0) {
				r = errno == ENOENT || errno == EINVAL
					    ? left_out(full, errno)
					    : clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
							    "readlink %s", full);
				goto next;
			}
			target[k] = '\0';
		}
		r = put_entry(w, fd, target, sub, &st, err);
		if (r == 0 && S_ISDIR(st.st_mode))
			r = walk(w, fd, full, sub, depth + 1, err);
	next:
		free(list[i]);
	}
	free(list);
	return r;
}

static int layer_write_loaded(const char *rootfs, int fd, struct oci_layer *out,
			      struct clbsd_err *err)
{
	struct lw w = {.fd = fd, .links = json_object()};
	w.diff = hash_sha256_begin();
	w.comp = hash_sha256_begin();
	w.gz = A(archive_write_new)();
	A(archive_write_set_format_raw)(w.gz);
	A(archive_write_add_filter_gzip)(w.gz);
	/* No timestamp in the gzip header, no zero padding after the stream. */
	A(archive_write_set_options)(w.gz, "gzip:!timestamp,gzip:compression-level=1");
	A(archive_write_set_bytes_per_block)(w.gz, 0);
	A(archive_write_set_bytes_in_last_block)(w.gz, 1);
	int r = 0;
	if (A(archive_write_open)(w.gz, &w, NULL, gz_out, NULL) != ARCHIVE_OK)
		r = archive_lib_err(w.gz, CLBSD_E_INTERNAL, "start layer compression", err);
	struct archive_entry *raw = A(archive_entry_new)();
	A(archive_entry_set_pathname)(raw, "layer.tar");
	A(archive_entry_set_filetype)(raw, AE_IFREG);
	if (r == 0 && A(archive_write_header)(w.gz, raw) < ARCHIVE_WARN)
		r = archive_lib_err(w.gz, CLBSD_E_INTERNAL, "start layer compression", err);
	A(archive_entry_free)(raw);
	w.tar = A(archive_write_new)();
	A(archive_write_set_format_pax_restricted)(w.tar);
	A(archive_write_set_bytes_in_last_block)(w.tar, 1);
	if (r == 0 && A(archive_write_open)(w.tar, &w, NULL, tar_out, NULL) != ARCHIVE_OK)
		r = archive_lib_err(w.tar, CLBSD_E_INTERNAL, "start layer", err);
	if (r == 0) {
		autoclose int rfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = rfd < 0 ? clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", rootfs)
			    : walk(&w, rfd, rootfs, "", 0, err);
	}
	if (A(archive_write_close)(w.tar) != ARCHIVE_OK && r == 0)
		r = archive_lib_err(w.tar, CLBSD_E_INTERNAL, "finish layer", err);
	if (A(archive_write_close)(w.gz) != ARCHIVE_OK && r == 0)
		r = w.wr_errno ? clbsd_err_set(err, CLBSD_E_INTERNAL, w.wr_errno, "write layer")
			       : archive_lib_err(w.gz, CLBSD_E_INTERNAL, "finish layer compression",
						 err);
	A(archive_write_free)(w.tar);
	A(archive_write_free)(w.gz);
	json_decref(w.links);
	struct oci_layer l;
	digest_end(w.diff, l.diff_id);
	digest_end(w.comp, l.digest);
	l.size = w.size;
	if (r < 0)
		return clbsd_err_prefix(err, "layer of %s", rootfs);
	*out = l;
	return 0;
}

int oci_layer_write(const char *rootfs, int fd, struct oci_layer *out, struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return -err->code;
	int r = layer_write_loaded(rootfs, fd, out, err);
	archive_lib_release();
	return r;
}

/* ---- blobs ---- */

static json_t *rfc3339(int64_t ns)
{
	char buf[48];
	time_fmt_rfc3339(ns, buf, sizeof(buf));
	return json_string(buf);
}

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

char *oci_config_blob(const struct image_config *cfg, int64_t created_ns, const struct oci_layer *l)
{
	json_t *c = json_object();
	if (cfg->env && cfg->env[0])
		json_object_set_new(c, "Env", json_strv(cfg->env));
	if (cfg->entrypoint && cfg->entrypoint[0])
		json_object_set_new(c, "Entrypoint", json_strv(cfg->entrypoint));
	if (cfg->cmd && cfg->cmd[0])
		json_object_set_new(c, "Cmd", json_strv(cfg->cmd));
	if (cfg->workdir && *cfg->workdir)
		json_object_set_new(c, "WorkingDir", json_string(cfg->workdir));
	if (cfg->user && *cfg->user)
		json_object_set_new(c, "User", json_string(cfg->user));
	if (cfg->volumes && cfg->volumes[0]) {
		/* The OCI form of VOLUME: an object of paths to empty objects. */
		json_t *vols = json_object();
		for (size_t i = 0; cfg->volumes[i]; i++)
			json_object_set_new(vols, cfg->volumes[i], json_object());
		json_object_set_new(c, "Volumes", vols);
	}
	json_t *j =
		json_pack("{s:s,s:s,s:o,s:o,s:{s:s,s:[s]},s:[{s:o,s:s}]}", "architecture",
			  oci_host_arch(), "os", "linux", "created", rfc3339(created_ns), "config",
			  c, "rootfs", "type", "layers", "diff_ids", l->diff_id, "history",
			  "created", rfc3339(created_ns), "created_by", "clbsd image export");
	return dump(j);
}

char *oci_manifest_blob(const char *config_blob, const struct oci_layer *l)
{
	char cd[OCI_DIGEST_LEN];
	digest_of(config_blob, strlen(config_blob), cd);
	json_t *j = json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:[{s:s,s:s,s:I}]}", "schemaVersion", 2,
			      "mediaType", OCI_MT_MANIFEST, "config", "mediaType", OCI_MT_CONFIG,
			      "digest", cd, "size", (json_int_t)strlen(config_blob), "layers",
			      "mediaType", OCI_MT_LAYER_GZIP, "digest", l->digest, "size",
			      (json_int_t)l->size);
	return dump(j);
}

void oci_config_id(const struct image_config *cfg, int64_t created_ns, const struct oci_layer *l,
		   char out[65])
{
	autofree char *c = oci_config_blob(cfg, created_ns, l);
	hash_sha256_hex(c, strlen(c), out);
}

void oci_image_digest(const struct image_config *cfg, int64_t created_ns, const struct oci_layer *l,
		      char out[OCI_DIGEST_LEN])
{
	autofree char *c = oci_config_blob(cfg, created_ns, l);
	autofree char *m = oci_manifest_blob(c, l);
	digest_of(m, strlen(m), out);
}

/* ---- export ---- */

static int put_blob(struct archive *a, const char *name, const char *data, size_t len,
		    int64_t mtime, struct clbsd_err *err)
{
	struct archive_entry *e = A(archive_entry_new)();
	A(archive_entry_set_pathname)(e, name);
	A(archive_entry_set_filetype)(e, AE_IFREG);
	A(archive_entry_set_perm)(e, 0644);
	A(archive_entry_set_size)(e, (la_int64_t)len);
	A(archive_entry_set_mtime)(e, mtime, 0);
	int r = 0;
	if (A(archive_write_header)(a, e) < ARCHIVE_WARN ||
	    (len && A(archive_write_data)(a, data, len) != (la_ssize_t)len))
		r = archive_lib_err(a, CLBSD_E_INTERNAL, "write archive", err);
	A(archive_entry_free)(e);
	return r;
}

static int put_dir(struct archive *a, const char *name, int64_t mtime, struct clbsd_err *err)
{
	struct archive_entry *e = A(archive_entry_new)();
	A(archive_entry_set_pathname)(e, name);
	A(archive_entry_set_filetype)(e, AE_IFDIR);
	A(archive_entry_set_perm)(e, 0755);
	A(archive_entry_set_mtime)(e, mtime, 0);
	int r = 0;
	if (A(archive_write_header)(a, e) < ARCHIVE_WARN)
		r = archive_lib_err(a, CLBSD_E_INTERNAL, "write archive", err);
	A(archive_entry_free)(e);
	return r;
}

static int put_layer_file(struct archive *a, const char *name, const char *path, int64_t size,
			  int64_t mtime, struct clbsd_err *err)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", path);
	struct archive_entry *e = A(archive_entry_new)();
	A(archive_entry_set_pathname)(e, name);
	A(archive_entry_set_filetype)(e, AE_IFREG);
	A(archive_entry_set_perm)(e, 0644);
	A(archive_entry_set_size)(e, size);
	A(archive_entry_set_mtime)(e, mtime, 0);
	int r = 0;
	if (A(archive_write_header)(a, e) < ARCHIVE_WARN)
		r = archive_lib_err(a, CLBSD_E_INTERNAL, "write archive", err);
	A(archive_entry_free)(e);
	char b[65536];
	int64_t left = size;
	while (r == 0 && left > 0) {
		ssize_t n = read(fd, b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, n < 0 ? errno : EIO, "read %s",
					  path);
			break;
		}
		if (A(archive_write_data)(a, b, (size_t)n) != n)
			r = archive_lib_err(a, CLBSD_E_INTERNAL, "write archive", err);
		left -= n;
	}
	return r;
}

/* A docker-save manifest.json naming ref (name[:tag], not an id) and the blobs. */
static char *docker_manifest(const char *ref, const char *config, const char *layer)
{
	json_t *tags = json_array();
	if (ref && valid_image_ref(ref) && strlen(ref) != 64) {
		autofree char *norm = image_ref_normalise(ref);
		json_array_append_new(tags, json_string(norm));
	}
	return dump(json_pack("[{s:s,s:o,s:[s]}]", "Config", config, "RepoTags", tags, "Layers",
			      layer));
}

static int export_loaded(const char *rootfs, const struct image_config *cfg, int64_t created_ns,
			 const char *ref_name, const char *tmpdir, const char *path,
			 struct oci_layer *layer, char digest[OCI_DIGEST_LEN],
			 struct clbsd_err *err)
{
	autofree char *lpath = xasprintf("%s/layer.tar.gz", tmpdir);
	struct oci_layer l;
	{
		autoclose int lfd =
			open(lpath, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0600);
		if (lfd < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", lpath);
		if (oci_layer_write(rootfs, lfd, &l, err) < 0)
			return -err->code;
	}
	autofree char *cblob = oci_config_blob(cfg, created_ns, &l);
	autofree char *mblob = oci_manifest_blob(cblob, &l);
	char cd[OCI_DIGEST_LEN], md[OCI_DIGEST_LEN];
	digest_of(cblob, strlen(cblob), cd);
	digest_of(mblob, strlen(mblob), md);
	autofree char *index = dump(json_pack(
		"{s:i,s:s,s:[{s:s,s:s,s:I,s:{s:s},s:{s:s,s:s}}]}", "schemaVersion", 2, "mediaType",
		OCI_MT_INDEX, "manifests", "mediaType", OCI_MT_MANIFEST, "digest", md, "size",
		(json_int_t)strlen(mblob), "annotations", OCI_ANNOT_REF, ref_name, "platform",
		"architecture", oci_host_arch(), "os", "linux"));
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

	char rnd[9];
	random_hex(rnd, 4);
	autofree char *tmp = xasprintf("%s.tmp-%s", path, rnd);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "create %s", tmp);
	int64_t mt = created_ns / 1000000000;
	struct archive *a = A(archive_write_new)();
	A(archive_write_set_format_pax_restricted)(a);
	A(archive_write_set_bytes_in_last_block)(a, 1);
	int r = 0;
	if (A(archive_write_open_fd)(a, fd) != ARCHIVE_OK)
		r = archive_lib_err(a, CLBSD_E_INTERNAL, "open archive", err);
	autofree char *cname = xasprintf("blobs/sha256/%s", cd + 7);
	autofree char *mname = xasprintf("blobs/sha256/%s", md + 7);
	autofree char *lname = xasprintf("blobs/sha256/%s", l.digest + 7);
	if (r == 0)
		r = put_blob(a, "oci-layout", layout, strlen(layout), mt, err);
	if (r == 0)
		r = put_blob(a, "index.json", index, strlen(index), mt, err);
	if (r == 0)
		r = put_dir(a, "blobs/", mt, err);
	if (r == 0)
		r = put_dir(a, "blobs/sha256/", mt, err);
	if (r == 0)
		r = put_blob(a, cname, cblob, strlen(cblob), mt, err);
	if (r == 0)
		r = put_blob(a, mname, mblob, strlen(mblob), mt, err);
	if (r == 0)
		r = put_layer_file(a, lname, lpath, l.size, mt, err);
	/*
	 * manifest.json, as `docker save` writes it beside the OCI layout: a
	 * dockerd that reads only docker-save archives (the graph-driver store of
	 * docker 20.10 to 28) loads the export through it.
	 */
	autofree char *man = docker_manifest(ref_name, cname, lname);
	if (r == 0)
		r = put_blob(a, "manifest.json", man, strlen(man), mt, err);
	if (A(archive_write_close)(a) != ARCHIVE_OK && r == 0)
		r = archive_lib_err(a, CLBSD_E_INTERNAL, "finish archive", err);
	A(archive_write_free)(a);
	if (r == 0 && fsync(fd) < 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "sync %s", tmp);
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = clbsd_err_set(err, CLBSD_E_INVALID, errno, "rename %s to %s", tmp, path);
	unlink(lpath);
	if (r < 0) {
		unlink(tmp);
		return clbsd_err_prefix(err, "export to %s", path);
	}
	*layer = l;
	memcpy(digest, md, OCI_DIGEST_LEN);
	return 0;
}

int oci_export(const char *rootfs, const struct image_config *cfg, int64_t created_ns,
	       const char *ref_name, const char *tmpdir, const char *path, struct oci_layer *layer,
	       char digest[OCI_DIGEST_LEN], struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return -err->code;
	int r = export_loaded(rootfs, cfg, created_ns, ref_name, tmpdir, path, layer, digest, err);
	archive_lib_release();
	return r;
}

/* ---- applying layers ---- */

/*
 * Every existing component of rel below rootfs but the last must be a real
 * directory, and when `last` the last one must not be a symlink, so nothing
 * reaches outside through a symlink a lower layer left.
 */
static int path_safe(const char *rootfs, const char *rel, bool last, const char *layer,
		     struct clbsd_err *err)
{
	autofree char *p = xstrdup(rel);
	size_t rl = strlen(rootfs);
	for (char *c = p;;) {
		char *e = strchr(c, '/');
		if (!e && !last)
			return 0;
		if (e)
			*e = '\0';
		autofree char *full = xasprintf("%s/%s", rootfs, p);
		struct stat st;
		if (lstat(full, &st) < 0)
			return 0; /* not there yet: created as a directory */
		if (S_ISLNK(st.st_mode))
			return clbsd_err_setmsg(
				err, CLBSD_E_INVALID, ELOOP,
				"layer %s: \"%s\" goes through the symlink /%s, which could "
				"point outside the image; refusing the image",
				layer, rel, full + rl + 1);
		if (!e)
			return 0; /* the last one itself: anything but a symlink */
		if (!S_ISDIR(st.st_mode))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOTDIR,
						"layer %s: \"%s\": /%s is not a directory", layer,
						rel, full + rl + 1);
		*e = '/';
		c = e + 1;
	}
}

static void mark_seen(json_t *seen, const char *rel)
{
	autofree char *p = xstrdup(rel);
	for (;;) {
		json_object_set_new(seen, p, json_true());
		char *s = strrchr(p, '/');
		if (!s)
			return;
		*s = '\0';
	}
}

/* Remove what lower layers put below rel, keeping what this layer wrote. */
static int opaque_clear(const char *rootfs, const char *rel, json_t *seen, struct clbsd_err *err)
{
	autofree char *dir = *rel ? xasprintf("%s/%s", rootfs, rel) : xstrdup(rootfs);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT
			       ? 0
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", dir);
	struct strv names = STRV_INIT;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			strv_push(&names, de->d_name);
	closedir(d);
	int r = 0;
	for (size_t i = 0; r == 0 && names.v && names.v[i]; i++) {
		autofree char *sub =
			*rel ? xasprintf("%s/%s", rel, names.v[i]) : xstrdup(names.v[i]);
		autofree char *full = xasprintf("%s/%s", rootfs, sub);
		struct stat st;
		if (!json_object_get(seen, sub))
			r = fs_rm_rf(full, err);
		else if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
			r = opaque_clear(rootfs, sub, seen, err);
	}
	strv_release(&names);
	return r;
}

/* Write entry e (its path set to full) and its data from a to the disk writer. */
static int extract_entry(struct archive *a, struct archive *disk, struct archive_entry *e,
			 const char *full, const char *reading, struct clbsd_err *err)
{
	if (A(archive_write_header)(disk, e) < ARCHIVE_WARN)
		return archive_lib_err(disk, CLBSD_E_INVALID, full, err);
	const void *blk;
	size_t len;
	la_int64_t off;
	int ar;
	while ((ar = A(archive_read_data_block)(a, &blk, &len, &off)) == ARCHIVE_OK)
		if (block_failed(disk, A(archive_write_data_block)(disk, blk, len, off)))
			return archive_lib_err(disk, CLBSD_E_INTERNAL, full, err);
	if (ar != ARCHIVE_EOF)
		return archive_lib_err(a, CLBSD_E_INVALID, reading, err);
	if (A(archive_write_finish_entry)(disk) < ARCHIVE_WARN)
		return archive_lib_err(disk, CLBSD_E_INTERNAL, full, err);
	return 0;
}

static int apply_layer_loaded(const char *rootfs, const char *layer, struct clbsd_err *err)
{
	const char *lname = strrchr(layer, '/') ? strrchr(layer, '/') + 1 : layer;
	struct archive *a = A(archive_read_new)();
	A(archive_read_support_filter_all)(a);
	A(archive_read_support_format_tar)(a);
	struct archive *disk = A(archive_write_disk_new)();
	/* Numeric owners (no name lookup): the image's ids, not the host's. */
	A(archive_write_disk_set_options)
	(disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME |
		       ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK |
		       ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	json_t *seen = json_object();
	int r = 0;
	if (A(archive_read_open_filename)(a, layer, 65536) != ARCHIVE_OK)
		r = archive_lib_err(a, CLBSD_E_INVALID, "open layer", err);
	while (r == 0) {
		struct archive_entry *e;
		int ar = A(archive_read_next_header)(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = archive_lib_err(a, CLBSD_E_INVALID, "read layer", err);
			break;
		}
		const char *name = A(archive_entry_pathname)(e);
		autofree char *rel = NULL;
		enum oci_member k = oci_member_classify(name, &rel);
		switch (k) {
		case OCI_MEMBER_BAD:
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "layer %s: member \"%s\" would land outside the "
					     "image (absolute or ..); refusing the image",
					     lname, name ? name : "");
			continue;
		case OCI_MEMBER_ROOT:
		case OCI_MEMBER_SKIP:
			A(archive_read_data_skip)(a);
			continue;
		case OCI_MEMBER_WHITEOUT: {
			r = path_safe(rootfs, rel, false, lname, err);
			autofree char *full = xasprintf("%s/%s", rootfs, rel);
			if (r == 0)
				r = fs_rm_rf(full, err);
			A(archive_read_data_skip)(a);
			continue;
		}
		case OCI_MEMBER_OPAQUE:
			r = *rel ? path_safe(rootfs, rel, true, lname, err) : 0;
			if (r == 0)
				r = opaque_clear(rootfs, rel, seen, err);
			A(archive_read_data_skip)(a);
			continue;
		case OCI_MEMBER_FILE:
			break;
		}
		if ((r = path_safe(rootfs, rel, false, lname, err)) < 0)
			break;
		autofree char *full = xasprintf("%s/%s", rootfs, rel);
		bool isdir = A(archive_entry_filetype)(e) == AE_IFDIR;
		struct stat st;
		if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode) != isdir) {
			/* A file replaces a directory or the other way round. */
			if ((r = fs_rm_rf(full, err)) < 0)
				break;
		}
		const char *hl = A(archive_entry_hardlink)(e);
		if (hl) {
			autofree char *hrel = NULL;
			if (oci_member_classify(hl, &hrel) != OCI_MEMBER_FILE) {
				r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						     "layer %s: hard link \"%s\" -> \"%s\" points "
						     "outside the image; refusing the image",
						     lname, name, hl);
				break;
			}
			/* link() does not follow a symlink at the end: only the way there counts.
			 */
			if ((r = path_safe(rootfs, hrel, false, lname, err)) < 0)
				break;
			autofree char *hfull = xasprintf("%s/%s", rootfs, hrel);
			A(archive_entry_set_hardlink)(e, hfull);
		}
		mark_seen(seen, rel);
		A(archive_entry_set_pathname)(e, full);
		r = extract_entry(a, disk, e, full, "read layer", err);
	}
	/* Directory modes and times are set at close. */
	if (A(archive_write_close)(disk) != ARCHIVE_OK && r == 0)
		r = archive_lib_err(disk, CLBSD_E_INTERNAL, rootfs, err);
	A(archive_write_free)(disk);
	A(archive_read_close)(a);
	A(archive_read_free)(a);
	json_decref(seen);
	return r;
}

int oci_apply_layer(const char *rootfs, const char *layer, struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return -err->code;
	int r = apply_layer_loaded(rootfs, layer, err);
	archive_lib_release();
	return r;
}

/* ---- loading ---- */

void oci_loaded_release(struct oci_loaded *l)
{
	image_config_release(&l->cfg);
	free(l->name);
	free(l->source);
	memset(l, 0, sizeof(*l));
}

static char **strv_or_empty(json_t *j)
{
	char **v = json_is_array(j) ? json_to_strv(j) : NULL;
	return v ? v : xcalloc(1, sizeof(char *));
}

int oci_config_parse(json_t *blob, struct image_config *cfg, struct clbsd_err *err)
{
	if (!json_is_object(blob))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"the image config is not a JSON object");
	json_t *c = json_object_get(blob, "config");
	struct image_config n = {0};
	n.entrypoint = strv_or_empty(json_object_get(c, "Entrypoint"));
	n.cmd = strv_or_empty(json_object_get(c, "Cmd"));
	n.env = strv_or_empty(json_object_get(c, "Env"));
	if (!n.env[0]) {
		free(n.env);
		n.env = xcalloc(2, sizeof(char *));
		n.env[0] = xstrdup(
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	}
	const char *wd = json_str(c, "WorkingDir");
	autofree char *w = xstrdup(wd && *wd ? wd : "/");
	size_t wl = strlen(w);
	while (wl > 1 && w[wl - 1] == '/')
		w[--wl] = '\0';
	if (!fs_path_is_clean_abs(w)) {
		image_config_release(&n);
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"the image's WorkingDir \"%s\" is not a clean absolute path", wd);
	}
	n.workdir = steal_ptr(&w);
	const char *user = json_str(c, "User");
	n.user = xstrdup(user ? user : "");
	/* Volumes: {"/data": {}}; data paths, as a Cblockfile's VOLUME (docs/cblockfile.md). */
	json_t *vols = json_object_get(c, "Volumes");
	const char *vk;
	json_t *vv;
	struct strv vs = STRV_INIT;
	json_object_foreach(vols, vk, vv)
	{
		(void)vv;
		if (*vk == '/')
			strv_push(&vs, vk);
	}
	n.volumes = vs.v;
	*cfg = n;
	return 0;
}

#define JSON_MAX (4 << 20)

/*
 * Open base/rel for reading: a regular file found without following any
 * symbolic link and without leaving base (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), and without blocking on a FIFO. An archive's
 * index.json or manifest.json planted as a symlink to a host file is
 * refused here, never read.
 */
static int open_beneath(const char *base, const char *rel, struct clbsd_err *err)
{
	autoclose int dfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", base);
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	if (fd < 0 && (errno == ELOOP || errno == EXDEV))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, errno,
					"the archive's %s is a symbolic link or leads outside "
					"the archive; refusing it",
					rel);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "the archive's %s", rel);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"the archive's %s is not a regular file; refusing it", rel);
	}
	return fd;
}

/*
 * Read base/rel, a regular file of at most JSON_MAX bytes (open_beneath).
 * *out is NUL-terminated.
 */
static int read_beneath(const char *base, const char *rel, char **out, size_t *len,
			struct clbsd_err *err)
{
	autoclose int fd = open_beneath(base, rel, err);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "the archive's %s", rel);
	if (st.st_size > JSON_MAX)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EFBIG,
					"the archive's %s is too large (more than 4 MiB)", rel);
	size_t cap = (size_t)st.st_size + 1, n = 0;
	autofree char *b = xmalloc(cap);
	for (;;) {
		ssize_t k = read(fd, b + n, cap - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read the archive's %s",
					     rel);
		if (k == 0 || n + (size_t)k == cap - 1) {
			n += (size_t)k;
			break;
		}
		n += (size_t)k;
	}
	b[n] = '\0';
	*len = n;
	*out = steal_ptr(&b);
	return 0;
}

/*
 * JSON text of the archive's rel. A parse error says where, never what
 * was there: a file's bytes stay out of error messages.
 */
static json_t *parse_json(const char *rel, const char *text, size_t len, struct clbsd_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	if (!j)
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				 "the archive's %s is not valid JSON (line %d, column %d)", rel,
				 je.line, je.column);
	return j;
}

/* The archive's small JSON file base/rel (read_beneath). */
static json_t *read_json(const char *base, const char *rel, struct clbsd_err *err)
{
	autofree char *text = NULL;
	size_t len;
	if (read_beneath(base, rel, &text, &len, err) < 0)
		return NULL;
	return parse_json(rel, text, len, err);
}

/*
 * A file named inside base (after symlinks: docker save archives link
 * layers to each other) that is a regular file, or NULL with err set.
 */
static char *inside(const char *base, const char *rel, struct clbsd_err *err)
{
	autofree char *p = xasprintf("%s/%s", base, rel);
	char real[PATH_MAX];
	if (!realpath(p, real)) {
		clbsd_err_set(err, CLBSD_E_INVALID, errno, "the archive names %s", rel);
		return NULL;
	}
	size_t bl = strlen(base);
	if (strncmp(real, base, bl) != 0 || real[bl] != '/') {
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				 "the archive names \"%s\", which is outside it", rel);
		return NULL;
	}
	struct stat st;
	if (stat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				 "the archive's \"%s\" is not a regular file", rel);
		return NULL;
	}
	return xstrdup(real);
}

static char *blob_path(const char *base, const char *digest, struct clbsd_err *err)
{
	if (!oci_digest_valid(digest)) {
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				 "unsupported or malformed digest \"%s\" (sha256 only)",
				 digest ? digest : "");
		return NULL;
	}
	autofree char *rel = xasprintf("blobs/sha256/%s", digest + 7);
	return inside(base, rel, err);
}

/* A blob's JSON (a regular file, no symlinks), checked against its digest. */
static json_t *read_blob_json(const char *base, const char *digest, struct clbsd_err *err)
{
	if (!oci_digest_valid(digest)) {
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				 "unsupported or malformed digest \"%s\" (sha256 only)",
				 digest && strlen(digest) < 80 ? digest : "");
		return NULL;
	}
	autofree char *rel = xasprintf("blobs/sha256/%s", digest + 7);
	autofree char *text = NULL;
	size_t len;
	if (read_beneath(base, rel, &text, &len, err) < 0)
		return NULL;
	char d[OCI_DIGEST_LEN];
	digest_of(text, len, d);
	if (strcmp(d, digest) != 0) {
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EBADMSG,
				 "blob %s is damaged: its content hashes to %s", digest, d);
		return NULL;
	}
	return parse_json(rel, text, len, err);
}

static int apply_all(const char *rootfs, char **layers, struct clbsd_err *err)
{
	for (size_t i = 0; layers[i]; i++)
		if (oci_apply_layer(rootfs, layers[i], err) < 0)
			return clbsd_err_prefix(err, "layer %zu", i + 1);
	return 0;
}

/* The first RepoTags entry of a manifest.json beside index.json, or NULL. */
static char *repo_tag(const char *base)
{
	autofree char *p = xasprintf("%s/manifest.json", base);
	struct clbsd_err ignore;
	json_t *m = fs_exists(p) ? read_json(base, "manifest.json", &ignore) : NULL;
	const char *t = json_string_value(
		json_array_get(json_object_get(json_array_get(m, 0), "RepoTags"), 0));
	char *name = t ? oci_local_name(t) : NULL;
	json_decref(m);
	return name;
}

/*
 * The name a layout gives its image. containerd and docker (25 and later)
 * put the full name in io.containerd.image.name and only the tag in the
 * OCI ref annotation, which then is a tag and no name; docker's archives
 * also carry manifest.json with RepoTags.
 */
static char *layout_name(const char *base, json_t *annotations)
{
	const char *full = json_str(annotations, "io.containerd.image.name");
	const char *ref = json_str(annotations, OCI_ANNOT_REF);
	char *name = full ? oci_local_name(full) : NULL;
	if (!name && ref && strpbrk(ref, ":/"))
		name = oci_local_name(ref);
	if (!name)
		name = repo_tag(base);
	if (!name && ref)
		name = oci_local_name(ref);
	return name;
}

static int load_oci(const char *base, const char *rootfs, struct oci_loaded *out,
		    struct clbsd_err *err)
{
	json_t *index = read_json(base, "index.json", err);
	if (!index)
		return -err->code;
	int r = -EINVAL;
	json_t *manifest = NULL, *config = NULL;
	struct strv layers = STRV_INIT;
	json_t *desc = oci_index_pick(index, oci_host_arch());
	if (!desc) {
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
				     "the layout has no single linux/%s image (it lists %zu)",
				     oci_host_arch(),
				     json_array_size(json_object_get(index, "manifests")));
		goto out;
	}
	out->name = layout_name(base, json_object_get(desc, "annotations"));
	manifest = read_blob_json(base, json_str(desc, "digest"), err);
	const char *mt = json_str(manifest, "mediaType");
	if (manifest && mt && (strcmp(mt, OCI_MT_INDEX) == 0 || strcmp(mt, DOCKER_MT_LIST) == 0)) {
		/* A multi-platform image: one more level. */
		json_t *d2 = oci_index_pick(manifest, oci_host_arch());
		json_t *m2 = d2 ? read_blob_json(base, json_str(d2, "digest"), err) : NULL;
		if (!d2)
			clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
					 "the image has no linux/%s variant", oci_host_arch());
		json_decref(manifest);
		manifest = m2;
	}
	if (!manifest) {
		r = -err->code;
		goto out;
	}
	config = read_blob_json(base, json_str(json_object_get(manifest, "config"), "digest"), err);
	if (!config || (r = oci_config_parse(config, &out->cfg, err)) < 0) {
		r = -err->code;
		goto out;
	}
	if (json_str(config, "created"))
		time_parse_rfc3339(json_str(config, "created"), &out->created_ns);
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(manifest, "layers"), i, l)
	{
		const char *dg = json_str(l, "digest");
		autofree char *p = blob_path(base, dg, err);
		char d[OCI_DIGEST_LEN];
		if (!p || oci_file_digest(p, d, err) < 0) {
			r = -err->code;
			goto out;
		}
		if (strcmp(d, dg) != 0) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EBADMSG,
					     "layer %s is damaged: its content hashes to %s", dg,
					     d);
			goto out;
		}
		strv_push(&layers, p);
	}
	r = apply_all(rootfs, layers.v ? layers.v : (char *[]){NULL}, err);
out:
	strv_release(&layers);
	json_decref(index);
	json_decref(manifest);
	json_decref(config);
	return r;
}

static int load_docker(const char *base, const char *rootfs, struct oci_loaded *out,
		       struct clbsd_err *err)
{
	json_t *m = read_json(base, "manifest.json", err);
	if (!m)
		return -err->code;
	int r = 0;
	json_t *config = NULL;
	struct strv layers = STRV_INIT;
	json_t *first = json_array_get(m, 0);
	const char *cname = json_str(first, "Config");
	if (!cname) {
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				     "manifest.json names no image Config");
		goto out;
	}
	if (!(config = read_json(base, cname, err)) ||
	    oci_config_parse(config, &out->cfg, err) < 0) {
		r = -err->code;
		goto out;
	}
	if (json_str(config, "created"))
		time_parse_rfc3339(json_str(config, "created"), &out->created_ns);
	const char *tag = json_string_value(json_array_get(json_object_get(first, "RepoTags"), 0));
	if (tag)
		out->name = oci_local_name(tag);
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(first, "Layers"), i, l)
	{
		const char *ln = json_string_value(l);
		autofree char *p = ln ? inside(base, ln, err) : NULL;
		if (!p) {
			r = ln ? -err->code
			       : clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						  "manifest.json: a layer is not a string");
			goto out;
		}
		strv_push(&layers, p);
	}
	r = apply_all(rootfs, layers.v ? layers.v : (char *[]){NULL}, err);
out:
	strv_release(&layers);
	json_decref(m);
	json_decref(config);
	return r;
}

/* Unpack an archive of blobs into dir: files, directories and symlinks only. */
static int unpack_outer(const char *path, const char *dir, struct clbsd_err *err)
{
	struct archive *a = A(archive_read_new)();
	A(archive_read_support_filter_all)(a);
	A(archive_read_support_format_tar)(a);
	struct archive *disk = A(archive_write_disk_new)();
	A(archive_write_disk_set_options)
	(disk, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	int r = 0;
	if (A(archive_read_open_filename)(a, path, 65536) != ARCHIVE_OK)
		r = archive_lib_err(a, CLBSD_E_INVALID, path, err);
	while (r == 0) {
		struct archive_entry *e;
		int ar = A(archive_read_next_header)(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = archive_lib_err(a, CLBSD_E_INVALID, "not an image archive (tar)", err);
			break;
		}
		const char *name = A(archive_entry_pathname)(e);
		autofree char *rel = NULL;
		enum oci_member k = oci_member_classify(name, &rel);
		unsigned t = A(archive_entry_filetype)(e);
		if (k == OCI_MEMBER_ROOT) {
			A(archive_read_data_skip)(a);
			continue;
		}
		if (k == OCI_MEMBER_BAD || (t != AE_IFREG && t != AE_IFDIR && t != AE_IFLNK) ||
		    A(archive_entry_hardlink)(e)) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "archive member \"%s\" is not allowed in an image "
					     "archive",
					     name ? name : "");
			break;
		}
		autofree char *full = xasprintf("%s/%s", dir, rel);
		A(archive_entry_set_pathname)(e, full);
		r = extract_entry(a, disk, e, full, "read archive", err);
	}
	if (A(archive_write_close)(disk) != ARCHIVE_OK && r == 0)
		r = archive_lib_err(disk, CLBSD_E_INTERNAL, dir, err);
	A(archive_write_free)(disk);
	A(archive_read_free)(a);
	return r;
}

static int stage_load_loaded(const char *staging, const char *path, struct oci_loaded *out,
			     struct clbsd_err *err)
{
	if (!fs_path_is_clean_abs(path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"load path \"%s\" must be a clean absolute path", path);
	struct stat st;
	if (stat(path, &st) < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, errno, "load %s", path);
	autofree char *src = xasprintf("%s/src", staging);
	autofree char *rootfs = xasprintf("%s/rootfs", staging);
	char base[PATH_MAX];
	int r = 0;
	if (S_ISDIR(st.st_mode)) {
		if (!realpath(path, base))
			return clbsd_err_set(err, CLBSD_E_INVALID, errno, "load %s", path);
	} else {
		if (mkdir(src, 0700) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", src);
		r = unpack_outer(path, src, err);
		if (r == 0 && !realpath(src, base))
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "%s", src);
	}
	if (r == 0 && mkdir(rootfs, 0755) < 0 && errno != EEXIST)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", rootfs);
	struct oci_loaded l = {0};
	if (r == 0) {
		autofree char *idx = xasprintf("%s/index.json", base);
		autofree char *man = xasprintf("%s/manifest.json", base);
		if (fs_exists(idx))
			r = load_oci(base, rootfs, &l, err);
		else if (fs_exists(man))
			r = load_docker(base, rootfs, &l, err);
		else
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "%s is neither an OCI image layout (index.json) nor "
					     "a docker save archive (manifest.json)",
					     path);
	}
	struct clbsd_err ignore;
	fs_rm_rf(src, &ignore);
	if (r < 0) {
		oci_loaded_release(&l);
		return clbsd_err_prefix(err, "load %s", path);
	}
	*out = l;
	return 0;
}

int oci_stage_load(const char *staging, const char *path, struct oci_loaded *out,
		   struct clbsd_err *err)
{
	if (archive_lib_acquire(err) < 0)
		return -err->code;
	int r = stage_load_loaded(staging, path, out, err);
	archive_lib_release();
	return r;
}
