/*
 * Export and import of a container as one archive file.
 *
 * Layout: a 4096-byte header, then the storage driver's stream of a snapshot
 * taken for the export (src/storage/driver.h send/receive), to the end of
 * the file. The header is one JSON line padded with spaces:
 *   {"format":"clbsd-export","version":1,"driver":"dir"|"zfs",
 *    "name":..,"container":{container.json},"image":{"ref","id","config"},
 *    "label":..,"from":..|absent,"created_at":..,"stream_bytes":N,"stream_xxh3":HEX}
 * (stream_xxh3: XXH3-128 of the stream; archives from before it have
 * "stream_sha256", which import still checks).
 * The header is written last (pwrite at offset 0) once the stream and its
 * checksum are known, into a temporary file renamed into place: a file at
 * the requested path is always complete. It is not fsynced (neither `zfs
 * send > file`, tar nor `docker save` do; waiting for the disk halved the
 * export's speed): a power failure right after an export can leave it
 * damaged, which the checksum shows at import. Import checks the format, the
 * driver, the checksum and that the image is here before anything is made,
 * and removes whatever it made when a later step fails.
 *
 * Incremental exports (zfs): an export may keep its snapshot under a given
 * label (`label`, kept), and may hold only what changed since an earlier
 * kept snapshot (`from`). Importing one updates the existing, stopped
 * container that has that earlier snapshot, in place: migrate sends the
 * bulk while the container runs, then only the last changes after it stops.
 */
#include "daemon.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_SIZE 4096

struct xfer_job {
	struct daemon *d;
	struct container *c; /* export: the source */
	char *name;          /* import: the new container's name */
	char *path;
	char *label;
	char *from;          /* export: incremental since this kept snapshot */
	bool keep;           /* export: keep the snapshot (a later export's from) */
	bool update;         /* import: an incremental into the existing container */
	char *header;        /* export: what the loop knew of the container */
	json_t *result;
	ctr_done_fn fn;           /* import */
	ctr_export_fn export_fn;  /* export */
	void *arg;
	struct clbsd_err err;
	int rc;
};

static void job_free(struct xfer_job *j)
{
	free(j->name);
	free(j->path);
	free(j->label);
	free(j->from);
	free(j->header);
	json_decref(j->result);
	free(j);
}

/*
 * The checksum of bytes [off, off+len) of fd, as hex: XXH3-128 (sum[33]),
 * or SHA-256 (sum[65]) for archives written before it.
 */
static int sum_region(int fd, off_t off, int64_t len, bool sha, char *sum, struct clbsd_err *err)
{
	struct hash_stream *h = sha ? hash_sha256_begin() : NULL;
	struct xxh3_stream *x = sha ? NULL : hash_xxh3_begin();
	size_t cap = 1 << 20;
	autofree char *buf = xmalloc(cap);
	posix_fadvise(fd, off, len, POSIX_FADV_SEQUENTIAL);
	int64_t left = len;
	int r = 0;
	while (left > 0 && r == 0) {
		size_t want = left < (int64_t)cap ? (size_t)left : cap;
		ssize_t n = pread(fd, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, n < 0 ? errno : EIO,
					  "read the archive back");
			break;
		}
		if (h)
			hash_stream_add(h, buf, (size_t)n);
		else
			hash_xxh3_add(x, buf, (size_t)n);
		off += n;
		left -= n;
	}
	if (h)
		hash_stream_end(h, sum);
	else
		hash_xxh3_end(x, sum);
	return r;
}

/*
 * While the driver writes the stream into the archive, a follower reads
 * behind it (from the page cache) to checksum it: the checksum costs no
 * second pass, and runs on another core while zfs sends.
 */
struct follower {
	pthread_t thread;
	int fd;
	off_t done;      /* read and summed up to here */
	off_t end;       /* -1 while the driver writes; then where the stream ends */
	pthread_mutex_t lock;
	struct xxh3_stream *sum;
	int err;         /* a failed read: -errno */
};

#define FOLLOW_CHUNK  (1 << 20)

static void *follow_run(void *arg)
{
	struct follower *f = arg;
	char *buf = xmalloc(FOLLOW_CHUNK);
	for (;;) {
		pthread_mutex_lock(&f->lock);
		off_t end = f->end;
		pthread_mutex_unlock(&f->lock);
		struct stat sb;
		off_t size = fstat(f->fd, &sb) == 0 ? sb.st_size : f->done;
		if (end >= 0)
			size = end;
		if (f->done >= size) {
			if (end >= 0)
				break;
			usleep(2000);
			continue;
		}
		size_t want = size - f->done < FOLLOW_CHUNK ? (size_t)(size - f->done) : FOLLOW_CHUNK;
		ssize_t n = pread(f->fd, buf, want, f->done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			f->err = n < 0 ? -errno : -EIO;
			break;
		}
		hash_xxh3_add(f->sum, buf, (size_t)n);
		f->done += n;
	}
	free(buf);
	return NULL;
}

static int follow_start(struct follower *f, int fd, off_t from)
{
	*f = (struct follower){.fd = fd, .done = from, .end = -1, .sum = hash_xxh3_begin()};
	pthread_mutex_init(&f->lock, NULL);
	int r = pthread_create(&f->thread, NULL, follow_run, f);
	if (r != 0) {
		char ignore[33];
		hash_xxh3_end(f->sum, ignore);
		pthread_mutex_destroy(&f->lock);
		return -r;
	}
	return 0;
}

/* The stream ends at `end` (-1: the driver failed): finish and give the sum. */
static int follow_stop(struct follower *f, off_t end, char sum[33])
{
	pthread_mutex_lock(&f->lock);
	f->end = end < 0 ? 0 : end; /* 0: stop where it is (done is the thread's) */
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_mutex_destroy(&f->lock);
	hash_xxh3_end(f->sum, sum);
	return f->err;
}

/* ---- export ---- */

static void export_run(void *arg)
{
	struct xfer_job *j = arg;
	struct storage *st = &j->d->storage;
	clbsd_err_init(&j->err);
	autofree char *tmp = xasprintf("%s.tmp-%d", j->path, (int)getpid());
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		j->rc = clbsd_err_set(&j->err, CLBSD_E_INVALID, errno, "create %s", tmp);
		return;
	}
	bool snapped = false, following = false;
	struct follower fw;
	int r = st->ops->snapshot(st, j->c->name, j->label, &j->err);
	snapped = r == 0;
	if (r == 0 && lseek(fd, HEADER_SIZE, SEEK_SET) < 0)
		r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "seek in %s", tmp);
	/* Streams that carry their own checksums (zfs) need none of ours. */
	bool self_checked = st->caps & STORAGE_CAP_SELF_CHECKED;
	if (r == 0 && !self_checked && follow_start(&fw, fd, HEADER_SIZE) < 0)
		r = clbsd_err_setmsg(&j->err, CLBSD_E_INTERNAL, EAGAIN, "start a thread");
	following = r == 0 && !self_checked;
	if (r == 0)
		r = st->ops->send(st, j->c->name, j->label, j->from, fd, &j->err);
	struct stat sb;
	char hex[33] = "";
	if (r == 0 && fstat(fd, &sb) < 0)
		r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "stat %s", tmp);
	int64_t bytes = r == 0 ? (int64_t)sb.st_size - HEADER_SIZE : 0;
	if (following) {
		int fr = follow_stop(&fw, r == 0 ? (off_t)sb.st_size : -1, hex);
		if (r == 0 && fr < 0)
			r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, -fr, "read the archive back");
	}
	if (r == 0) {
		json_t *h = json_loads(j->header, 0, NULL);
		json_object_set_new(h, "stream_bytes", json_integer(bytes));
		if (self_checked)
			json_object_set_new(h, "stream_check", json_string(st->ops->name));
		else
			json_object_set_new(h, "stream_xxh3", json_string(hex));
		autofree char *line = json_dumps(h, JSON_COMPACT);
		json_decref(h);
		size_t n = strlen(line);
		if (n >= HEADER_SIZE) {
			r = clbsd_err_setmsg(&j->err, CLBSD_E_INVALID, E2BIG,
					     "the container's record is too large for the "
					     "export header (%zu bytes)",
					     n);
		} else {
			char block[HEADER_SIZE];
			memset(block, ' ', sizeof(block));
			memcpy(block, line, n);
			block[HEADER_SIZE - 1] = '\n';
			if (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block))
				r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "write %s", tmp);
		}
	}
	close(fd);
	if (r == 0 && rename(tmp, j->path) < 0)
		r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "rename %s", tmp);
	if (r < 0)
		unlink(tmp);
	/* The snapshot only made the stream consistent (unless it is to be kept). */
	struct clbsd_err e2;
	if (snapped && (!j->keep || r < 0))
		st->ops->snapshot_destroy(st, j->c->name, j->label, &e2);
	if (r == 0)
		j->result = json_pack("{s:s,s:s,s:I}", "name", j->c->name, "path", j->path,
				      "stream_bytes", (json_int_t)bytes);
	if (r == 0)
		json_object_set_new(j->result, self_checked ? "stream_check" : "stream_xxh3",
				    json_string(self_checked ? st->ops->name : hex));
	j->rc = r;
}

static void export_done(void *arg)
{
	struct xfer_job *j = arg;
	j->c->storage_busy = false;
	if (j->rc < 0) {
		log_error("container", j->c->name, "export: %s", j->err.msg);
		j->export_fn(NULL, &j->err, j->arg);
	} else {
		daemon_event(j->d, "container.exported", j->c->name,
			     json_pack("{s:s}", "path", j->path));
		j->export_fn(j->result, NULL, j->arg);
		j->result = NULL;
	}
	job_free(j);
}

int ctr_export(struct container *c, const char *path, const struct export_opts *o,
	       ctr_export_fn fn, void *arg, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	static const struct export_opts none = {0};
	if (!o)
		o = &none;
	if (o->from && !(d->storage.caps & STORAGE_CAP_INCREMENTAL))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOTSUP,
					"the %s storage driver has no incremental exports (zfs has)",
					d->storage.ops->name);
	if (!fs_path_is_clean_abs(path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"export path \"%s\": want an absolute path", path);
	if (fs_exists(path))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"%s exists already; export does not overwrite", path);
	if (c->storage_busy || c->removing)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"container %s is busy (removing, or a snapshot, rollback, "
					"clone or export runs)",
					c->name);
	json_t *h = json_pack("{s:s,s:i,s:s,s:s,s:o,s:{s:s,s:s},s:o}", "format", "clbsd-export",
			      "version", 1, "driver", d->storage.ops->name, "name", c->name,
			      "container", ctr_to_json(c), "image", "ref", c->image_ref, "id",
			      c->image_id, "created_at", json_time(time_now_ns()));
	struct xfer_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->c = c;
	j->path = xstrdup(path);
	char hex[9];
	random_hex(hex, 4);
	j->label = o->label ? xstrdup(o->label) : xasprintf("export-%s", hex);
	j->keep = o->label != NULL;
	j->from = o->from ? xstrdup(o->from) : NULL;
	json_object_set_new(h, "label", json_string(j->label));
	if (j->from)
		json_object_set_new(h, "from", json_string(j->from));
	j->header = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	j->export_fn = fn;
	j->arg = arg;
	c->storage_busy = true;
	work_submit(d, export_run, export_done, j);
	return 0;
}

/* ---- import ---- */

static void import_run(void *arg)
{
	struct xfer_job *j = arg;
	struct storage *st = &j->d->storage;
	clbsd_err_init(&j->err);
	int fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		j->rc = clbsd_err_set(&j->err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INVALID,
				      errno, "open %s", j->path);
		return;
	}
	json_t *h = json_loads(j->header, 0, NULL);
	int64_t bytes = json_integer_value(json_object_get(h, "stream_bytes"));
	/*
	 * Archives made before XXH3 carry a SHA-256 of the stream; those of a
	 * driver whose streams check themselves (stream_check) none: its
	 * receive verifies them before it keeps anything.
	 */
	const char *want = json_string_value(json_object_get(h, "stream_xxh3"));
	const char *check = json_string_value(json_object_get(h, "stream_check"));
	bool self_checked = check && (st->caps & STORAGE_CAP_SELF_CHECKED) &&
			    strcmp(check, st->ops->name) == 0;
	bool sha = !want;
	if (sha)
		want = json_string_value(json_object_get(h, "stream_sha256"));
	char hex[65];
	struct stat sb;
	int r = 0;
	if (fstat(fd, &sb) < 0 || sb.st_size != HEADER_SIZE + bytes)
		r = clbsd_err_setmsg(&j->err, CLBSD_E_CONFLICT, EINVAL,
				     "%s is cut short or has extra bytes (%lld bytes of stream, "
				     "the header says %lld)",
				     j->path, (long long)(sb.st_size - HEADER_SIZE), (long long)bytes);
	if (r == 0 && !self_checked)
		r = sum_region(fd, HEADER_SIZE, bytes, sha, hex, &j->err);
	if (r == 0 && !self_checked && (!want || strcmp(hex, want) != 0))
		r = clbsd_err_setmsg(&j->err, CLBSD_E_CONFLICT, EINVAL,
				     "%s is damaged: its checksum does not match the header's",
				     j->path);
	json_decref(h);
	if (r == 0 && lseek(fd, HEADER_SIZE, SEEK_SET) < 0)
		r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "seek in %s", j->path);
	if (r == 0)
		r = st->ops->receive(st, j->name, fd, &j->err);
	close(fd);
	j->rc = r;
}

/* The imported container's record: the exported one, renamed and not running. */
static int import_record(struct xfer_job *j, struct container **out, struct clbsd_err *err)
{
	json_t *h = json_loads(j->header, 0, NULL);
	json_t *rec = json_deep_copy(json_object_get(h, "container"));
	json_decref(h);
	int r = ctr_adopt_record(j->d, rec, j->name, out, err);
	json_decref(rec);
	return r;
}

static void import_done(void *arg)
{
	struct xfer_job *j = arg;
	struct daemon *d = j->d;
	struct container *c = NULL;
	int r = j->rc;
	if (j->update) {
		c = ctr_find(d, j->name);
		if (c)
			c->storage_busy = false;
		if (r < 0 || !c) {
			log_error("container", j->name, "import (update): %s", j->err.msg);
			j->fn(NULL, &j->err, j->arg);
		} else {
			daemon_event(d, "container.updated", c->name,
				     json_pack("{s:s,s:s}", "imported_from", j->path, "key",
					       "files"));
			j->fn(c, NULL, j->arg);
		}
		job_free(j);
		return;
	}
	if (r == 0 && (r = import_record(j, &c, &j->err)) < 0) {
		struct clbsd_err e2;
		d->storage.ops->ctr_remove(&d->storage, j->name, true, &e2);
	}
	if (r < 0) {
		log_error("container", j->name, "import: %s", j->err.msg);
		j->fn(NULL, &j->err, j->arg);
	} else {
		daemon_event(d, "container.created", c->name,
			     json_pack("{s:s,s:s}", "image", c->image_ref, "imported_from", j->path));
		j->fn(c, NULL, j->arg);
	}
	job_free(j);
}

int ctr_import(struct daemon *d, const char *path, const char *name, ctr_done_fn fn, void *arg,
	       struct clbsd_err *err)
{
	if (!fs_path_is_clean_abs(path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"import path \"%s\": want an absolute path", path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INVALID, errno,
				     "open %s", path);
	char block[HEADER_SIZE + 1];
	ssize_t n = pread(fd, block, HEADER_SIZE, 0);
	close(fd);
	if (n != HEADER_SIZE)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s is not a clbsd export (too short)", path);
	block[HEADER_SIZE] = '\0';
	json_t *h = json_loads(block, JSON_DISABLE_EOF_CHECK, NULL);
	const char *format = json_string_value(json_object_get(h, "format"));
	const char *driver = json_string_value(json_object_get(h, "driver"));
	const char *orig = json_string_value(json_object_get(h, "name"));
	const char *image_id = json_string_value(json_object_get(json_object_get(h, "image"), "id"));
	const char *image_ref = json_string_value(json_object_get(json_object_get(h, "image"), "ref"));
	int r = 0;
	if (!format || strcmp(format, "clbsd-export") != 0 ||
	    json_integer_value(json_object_get(h, "version")) != 1 || !orig ||
	    !json_is_object(json_object_get(h, "container")))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "%s is not a clbsd export (version 1)", path);
	else if (!driver || strcmp(driver, d->storage.ops->name) != 0)
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "%s was exported from %s storage; this daemon uses %s storage "
				     "(streams of one driver cannot be read by the other)",
				     path, driver ? driver : "unknown", d->storage.ops->name);
	else if (!image_id || !image_by_id(&d->images, image_id))
		r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
				     "%s needs image %s (%s), which is not here; import or build it "
				     "first",
				     path, image_ref ? image_ref : "?", image_id ? image_id : "?");
	if (!name || !*name)
		name = orig;
	autofree char *dir = name ? xasprintf("%s/containers/%s", d->root, name) : NULL;
	const char *from = json_string_value(json_object_get(h, "from"));
	struct container *into = from && name ? ctr_find(d, name) : NULL;
	if (r == 0 && !valid_name(name))
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				     "name \"%s\": want a DNS label (a-z, 0-9, '-')", name);
	else if (r == 0 && from && !into)
		r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
				     "%s holds only the changes since snapshot %s of %s: import the "
				     "full export first",
				     path, from, name);
	else if (r == 0 && into && (ctr_is_active(into) || into->starting))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
				     "container %s runs; stop it before importing changes into it",
				     name);
	else if (r == 0 && into && (into->storage_busy || into->removing))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY, "container %s is busy", name);
	else if (r == 0 && !from && (ctr_find(d, name) || fs_exists(dir)))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
				     "a container named %s exists already (import --name NEW)", name);
	if (r < 0) {
		json_decref(h);
		return r;
	}
	struct xfer_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->name = xstrdup(name);
	j->path = xstrdup(path);
	j->header = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	j->fn = fn;
	j->arg = arg;
	if (into) {
		j->update = true;
		into->storage_busy = true;
	}
	work_submit(d, import_run, import_done, j);
	return 0;
}
