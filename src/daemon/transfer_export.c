/*
 * Export of a container to one archive file (the format: transfer.h): the
 * header written last, once the stream and its checksum are known, into a
 * temporary file renamed into place, and what an export killed meanwhile
 * leaves, removed at the next start (transfer_cleanup_stale).
 */
#include "core/config.h"
#include "daemon.h"
#include "transfer.h"
#include "docker/docker.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/trace.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * While the driver writes the stream into the archive, a follower reads
 * behind it (from the page cache) to checksum it: the checksum costs no
 * second pass, and runs on another core while zfs sends.
 */
struct follower {
	pthread_t thread;
	int fd;
	off_t done; /* read and summed up to here */
	off_t end;  /* -1 while the driver writes; then where the stream ends */
	pthread_mutex_t lock;
	struct xxh3_stream *sum;
	int err; /* a failed read: -errno */
};

#define FOLLOW_CHUNK (1 << 20)

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
		size_t want =
			size - f->done < FOLLOW_CHUNK ? (size_t)(size - f->done) : FOLLOW_CHUNK;
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

/*
 * The version 2 header of the JSON object `line` ("{...}", n bytes), or
 * -E2BIG when it does not fit.
 */
static int header_block(char block[HEADER_SIZE], const char *line, size_t n)
{
	size_t tl = HEADER_SUM_OFF + 32 + 2; /* TAG, digits, '"' and ',' */
	if (n < 2 || tl + n - 1 >= HEADER_SIZE)
		return -E2BIG;
	memset(block, ' ', HEADER_SIZE);
	memcpy(block, HEADER_SUM_TAG, HEADER_SUM_OFF);
	memset(block + HEADER_SUM_OFF, '0', 32);
	memcpy(block + HEADER_SUM_OFF + 32, "\",", 2);
	memcpy(block + tl, line + 1, n - 1);
	block[HEADER_SIZE - 1] = '\n';
	char hex[33];
	transfer_header_sum(block, hex);
	memcpy(block + HEADER_SUM_OFF, hex, 32);
	return 0;
}

/* ---- export ---- */

static void export_run(void *arg)
{
	struct xfer_job *j = arg;
	struct storage *st = &j->d->storage;
	clbsd_err_init(&j->err);
	j->t_run = time_mono_ns();
	const char *tmp = j->tmp;
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		j->rc = clbsd_err_set(&j->err, CLBSD_E_INVALID, errno, "create %s", tmp);
		return;
	}
	bool snapped = false, following = false;
	struct follower fw;
	int r = 0;
	/* Where the stream begins: after the header, and the image when it is carried. */
	off_t start = HEADER_SIZE;
	if (j->docker) {
		/* The image as dockerd knows it now: its reference, id and digests. */
		json_t *img = NULL;
		char ihex[33] = "";
		r = docker_store_image_info(j->dk, j->c->image_ref, &img, &j->err);
		if (r == 0 && j->with_image &&
		    docker_store_image_save(j->dk, j->c->image_ref, fd, HEADER_SIZE,
					    &j->image_bytes, ihex, &j->err) < 0)
			r = -j->err.code;
		if (r == 0) {
			json_t *h = json_loads(j->header, 0, NULL);
			if (j->with_image) {
				json_object_set_new(img, "bytes", json_integer(j->image_bytes));
				json_object_set_new(img, "xxh3", json_string(ihex));
			}
			json_object_set_new(h, "image", img);
			free(j->header);
			j->header = json_dumps(h, JSON_COMPACT);
			json_decref(h);
			start += (off_t)j->image_bytes;
		} else {
			json_decref(img);
		}
	}
	/* A host export sends the snapshot it took of every container at once. */
	if (r == 0 && !j->at)
		r = st->ops->snapshot(st, j->c->name, j->label, &j->err);
	snapped = r == 0 && !j->at;
	/* The older snapshots that travel, chosen once the export's own is there. */
	if (r == 0 && !storage_snaps_none(j->snap_spec)) {
		struct storage_snapshot *have = NULL;
		size_t n = 0;
		r = st->ops->snapshot_list(st, j->c->name, &have, &n, &j->err);
		if (r == 0)
			r = storage_snaps_select(j->snap_spec, have, n, j->label, &j->snaps,
						 &j->err);
		storage_snapshots_free(have, n);
		if (r < 0)
			clbsd_err_prefix(&j->err, "export %s", j->c->name);
	}
	if (r == 0 && lseek(fd, start, SEEK_SET) < 0)
		r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "seek in %s", tmp);
	/* Streams that carry their own checksums (zfs) need none of ours. */
	bool self_checked = st->caps & STORAGE_CAP_SELF_CHECKED;
	if (r == 0 && !self_checked && follow_start(&fw, fd, start) < 0)
		r = clbsd_err_setmsg(&j->err, CLBSD_E_INTERNAL, EAGAIN, "start a thread");
	following = r == 0 && !self_checked;
	int64_t t_snap = time_mono_ns();
	if (r == 0)
		r = st->ops->send(st, j->c->name, j->label, j->from, j->snaps.v, fd, &j->err);
	j->t_sent = time_mono_ns();
	log_debug("transfer", j->c->name, "export: snapshot %.1f ms, send %.1f ms",
		  (double)(t_snap - j->t_run) / 1e6, (double)(j->t_sent - t_snap) / 1e6);
	struct stat sb;
	char hex[33] = "";
	if (r == 0 && fstat(fd, &sb) < 0)
		r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "stat %s", tmp);
	int64_t bytes = r == 0 ? (int64_t)sb.st_size - start : 0;
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
		char block[HEADER_SIZE];
		if (header_block(block, line, n) < 0)
			r = clbsd_err_setmsg(&j->err, CLBSD_E_INVALID, E2BIG,
					     "the container's record is too large for the "
					     "export header (%zu bytes)",
					     n);
		else if (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block))
			r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "write %s", tmp);
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
	/* Nothing of this export is left to clean up at the next start. */
	unlink(j->marker);
	if (r == 0)
		j->result = json_pack("{s:s,s:s,s:I}", "name", j->c->name, "path", j->path,
				      "stream_bytes", (json_int_t)bytes);
	if (r == 0)
		json_object_set_new(j->result, self_checked ? "stream_check" : "stream_xxh3",
				    json_string(self_checked ? st->ops->name : hex));
	if (r == 0) {
		json_t *sl = json_array();
		for (size_t i = 0; i < j->snaps.n; i++)
			json_array_append_new(sl, json_string(j->snaps.v[i]));
		json_object_set_new(j->result, "snapshots", sl);
	}
	j->rc = r;
}

static void export_done(void *arg)
{
	struct xfer_job *j = arg;
	j->c->storage.busy = false;
	int64_t now = time_mono_ns();
	log_debug("transfer", j->c->name,
		  "export: %.1f ms in all: checks %.1f, queued %.1f, header and the rest %.1f",
		  (double)(now - j->t_asked) / 1e6, (double)(j->t_queued - j->t_asked) / 1e6,
		  (double)(j->t_run - j->t_queued) / 1e6, (double)(now - j->t_sent) / 1e6);
	if (j->rc < 0) {
		log_error("container", j->c->name, "export: %s", j->err.msg);
		j->export_fn(NULL, &j->err, j->arg);
	} else {
		daemon_event(j->d, "container.exported", j->c->name,
			     json_pack("{s:s}", "path", j->path));
		j->export_fn(j->result, NULL, j->arg);
		j->result = NULL;
	}
	transfer_job_free(j);
}

int ctr_export(struct container *c, const char *path, const struct export_opts *o, ctr_export_fn fn,
	       void *arg, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	int64_t asked = time_mono_ns();
	if (docker_store_check(c, err) < 0)
		return -err->code;
	/* A docker container's archive names its image by dockerd's id and digests. */
	if (c->docker.on && !docker_endpoint(d)) {
		docker_no_endpoint(d, err);
		return clbsd_err_prefix(err, "export %s: its image is known to dockerd only",
					c->name);
	}
	static const struct export_opts none = {0};
	if (!o)
		o = &none;
	if (o->with_image && !c->docker.on)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s is native: its image is clbsd's (clbsd image "
					"export); --with-image is for docker containers",
					c->name);
	if (o->at && !o->label)
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"export %s: \"at\" names an existing snapshot: give its label", c->name);
	if (o->from && !(d->storage.caps & STORAGE_CAP_INCREMENTAL))
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, ENOTSUP,
			"the %s storage driver has no incremental exports (zfs has)",
			d->storage.ops->name);
	if (storage_snaps_check(o->snapshots, err) < 0)
		return clbsd_err_prefix(err, "export %s", c->name);
	if (!storage_snaps_none(o->snapshots) && !(d->storage.caps & STORAGE_CAP_SEND_SNAPS))
		return clbsd_err_setmsg(
			err, CLBSD_E_UNAVAIL, ENOTSUP,
			"export %s --snapshots %s: the %s storage driver's snapshots are copies "
			"and "
			"do not travel in an export (zfs sends them as a chain); export with "
			"--snapshots none, or export each snapshot with clbsd clone first",
			c->name, o->snapshots, d->storage.ops->name);
	if (!storage_snaps_none(o->snapshots) && o->from)
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"export %s: --snapshots goes with a whole export, not with --since %s (the "
			"changes since a snapshot hold no older ones); export the whole container "
			"with --snapshots, or --since without it",
			c->name, o->from);
	if (!fs_path_is_clean_abs(path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"export path \"%s\": want an absolute path", path);
	if (fs_exists(path))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"%s exists already; export does not overwrite", path);
	if (c->storage.busy || c->run.removing)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"container %s is busy (removing, or a snapshot, rollback, "
					"clone or export runs)",
					c->name);
	json_t *h = json_pack("{s:s,s:i,s:s,s:s,s:s,s:o,s:{s:s,s:s},s:o}", "format", "clbsd-export",
			      "version", 2, "driver", d->storage.ops->name, "root", d->root, "name",
			      c->name, "container", ctr_to_json(c), "image", "ref", c->image_ref,
			      "id", c->image_id, "created_at", json_time(time_now_ns()));
	if (c->docker.on) {
		json_object_set_new(h, "kind", json_string("docker"));
		/*
		 * The header is 4096 bytes: dockerd's create body is made again
		 * from the request at import, so it does not travel.
		 */
		json_t *dj = json_object_get(json_object_get(h, "container"), "docker");
		json_object_del(dj, "create");
		json_object_del(dj, "id");
	}
	char hex[9];
	random_hex(hex, 4);
	autofree char *label = o->label ? xstrdup(o->label) : xasprintf("export-%s", hex);
	/*
	 * What a daemon killed during the export would leave (the temporary
	 * file, the snapshot of a temporary label) is written down first, for
	 * transfer_cleanup_stale at the next start.
	 */
	autofree char *tmp = xasprintf("%s" TMP_TAG "%s", path, hex);
	autofree char *mdir = xasprintf("%s/transfer", d->root);
	autofree char *marker = xasprintf("%s/%s.json", mdir, hex);
	json_t *m = json_pack("{s:s,s:s,s:s,s:b}", "tmp", tmp, "container", c->name, "label", label,
			      "keep", o->label != NULL);
	autofree char *mtext = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (fs_mkdir_p(mdir, 0700, err) < 0 ||
	    fs_replace(marker, mtext, strlen(mtext), 0600, err) < 0) {
		json_decref(h);
		return clbsd_err_prefix(err, "export %s", c->name);
	}
	struct xfer_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->c = c;
	j->path = xstrdup(path);
	j->tmp = steal_ptr(&tmp);
	j->marker = steal_ptr(&marker);
	j->label = steal_ptr(&label);
	j->keep = o->label != NULL;
	j->at = o->at && o->label;
	j->from = o->from ? xstrdup(o->from) : NULL;
	j->snap_spec = storage_snaps_none(o->snapshots) ? NULL : xstrdup(o->snapshots);
	json_object_set_new(h, "label", json_string(j->label));
	if (j->from)
		json_object_set_new(h, "from", json_string(j->from));
	j->header = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	j->export_fn = fn;
	j->arg = arg;
	j->docker = c->docker.on;
	j->with_image = o->with_image;
	j->dk = c->docker.on ? docker_client(d) : NULL;
	c->storage.busy = true;
	j->t_asked = asked;
	j->t_queued = time_mono_ns();
	work_submit(d, export_run, export_done, j);
	return 0;
}

/* ---- what an interrupted export left ---- */

/* FILE.clbsd-tmp-HEX, with the HEX of the marker that names it. */
static bool is_our_tmp(const char *tmp, const char *hex)
{
	const char *t = strstr(tmp, TMP_TAG);
	if (!t)
		return false;
	while (strstr(t + 1, TMP_TAG))
		t = strstr(t + 1, TMP_TAG);
	return strcmp(t + strlen(TMP_TAG), hex) == 0;
}

void transfer_cleanup_stale(struct daemon *d)
{
	autofree char *dir = xasprintf("%s/transfer", d->root);
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	struct dirent *de;
	while ((de = readdir(dh))) {
		size_t n = strlen(de->d_name);
		if (n != 8 + 5 || strcmp(de->d_name + 8, ".json") != 0 ||
		    strspn(de->d_name, "0123456789abcdef") != 8)
			continue;
		char hex[9];
		memcpy(hex, de->d_name, 8);
		hex[8] = '\0';
		autofree char *marker = xasprintf("%s/%s", dir, de->d_name);
		autofree char *text = NULL;
		struct clbsd_err err;
		json_t *m = fs_read_file(marker, &text, NULL, &err) == 0 ? json_loads(text, 0, NULL)
									 : NULL;
		const char *tmp = json_str(m, "tmp");
		const char *ctr = json_str(m, "container");
		const char *label = json_str(m, "label");
		/* Only the file this export made, by the name only an export makes. */
		if (tmp && fs_path_is_clean_abs(tmp) && is_our_tmp(tmp, hex) && unlink(tmp) == 0)
			log_info("transfer", ctr, "removed %s, left by an interrupted export", tmp);
		/* A kept label is the user's; a temporary one is export-HEX. */
		autofree char *temp_label = xasprintf("export-%s", hex);
		if (ctr && valid_name(ctr) && label && strcmp(label, temp_label) == 0 &&
		    !json_bool(m, "keep", false)) {
			if (d->storage.ops->snapshot_destroy(&d->storage, ctr, label, &err) == 0)
				log_info("transfer", ctr,
					 "removed snapshot %s, left by an interrupted export",
					 label);
		}
		json_decref(m);
		unlink(marker);
	}
	closedir(dh);
}
