/*
 * Import of a container's archive (the format: transfer.h), the markers of
 * a receive and of a provisional import, and what a receive cut short
 * leaves, undone at the next start. Export: transfer_export.c.
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

void transfer_job_free(struct xfer_job *j)
{
	free(j->name);
	free(j->path);
	free(j->label);
	free(j->from);
	free(j->snap_spec);
	strv_release(&j->snaps);
	free(j->header);
	free(j->marker);
	free(j->tmp);
	json_decref(j->result);
	dk_client_free(j->dk);
	free(j->docker_image);
	free(j->decl_image);
	free(j->live_before);
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

void transfer_header_sum(const char *block, char hex[33])
{
	char b[HEADER_SIZE];
	memcpy(b, block, HEADER_SIZE);
	memset(b + HEADER_SUM_OFF, '0', 32);
	struct xxh3_stream *x = hash_xxh3_begin();
	hash_xxh3_add(x, b, HEADER_SIZE);
	hash_xxh3_end(x, hex);
}

/* ---- import ---- */

/*
 * On a worker, importing a docker container into a declaration: the
 * declared image, as this dockerd knows it now, is the archive's.
 */
static int decl_image_check(struct xfer_job *j, const json_t *img)
{
	json_t *here = NULL;
	if (docker_store_image_info(j->dk, j->decl_image, &here, &j->err) < 0)
		return clbsd_err_prefix(&j->err, "the declared image");
	const char *want = json_str(img, "id"), *have = json_str(here, "id");
	int r = 0;
	if (!want || !have || strcmp(want, have) != 0)
		r = clbsd_err_setmsg(&j->err, CLBSD_E_CONFLICT, EINVAL,
				     "the archive's image %s (%s) is not the declared image %s "
				     "(%s here): change the declaration's :image, or import "
				     "without --declared",
				     json_str(img, "ref") ? json_str(img, "ref") : "?",
				     want ? want : "?", j->decl_image, have ? have : "?");
	json_decref(here);
	return r;
}

/* The name leaves d->importing: the reconciler sees what is there again. */
static void importing_end(struct daemon *d, const char *name)
{
	struct strv *v = &d->importing;
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->v[i], name) != 0)
			continue;
		free(v->v[i]);
		memmove(&v->v[i], &v->v[i + 1], (v->n - i) * sizeof(*v->v));
		v->n--;
		return;
	}
}

static void import_run(void *arg)
{
	struct xfer_job *j = arg;
	struct storage *st = &j->d->storage;
	clbsd_err_init(&j->err);
	j->t_run = time_mono_ns();
	int fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		j->rc = clbsd_err_set(&j->err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INVALID,
				      errno, "open %s", j->path);
		return;
	}
	json_t *h = json_loads(j->header, 0, NULL);
	/* A docker container's archive may carry its image before the stream. */
	json_t *img = json_object_get(h, "image");
	int64_t image_bytes = j->docker ? json_int(img, "bytes", 0) : 0;
	off_t start = HEADER_SIZE + (off_t)(image_bytes > 0 ? image_bytes : 0);
	/*
	 * A docker container's image first: when this dockerd has it not and
	 * cannot pull it, nothing is received.
	 */
	if (j->docker && !j->update &&
	    (docker_store_prepare(j->d, &j->err) < 0 ||
	     (image_bytes > 0 && docker_store_image_load(j->dk, fd, HEADER_SIZE, image_bytes,
							 json_str(img, "xxh3"), &j->err) < 0) ||
	     docker_store_image_ensure(j->dk, img, &j->docker_image, &j->err) < 0 ||
	     (j->declared && decl_image_check(j, img) < 0))) {
		clbsd_err_prefix(&j->err, "%s", j->path);
		json_decref(h);
		close(fd);
		j->rc = -j->err.code;
		return;
	}
	int64_t bytes = json_integer_value(json_object_get(h, "stream_bytes"));
	/*
	 * Archives made before XXH3 carry a SHA-256 of the stream; those of a
	 * driver whose streams check themselves (stream_check) none: its
	 * receive verifies them before it keeps anything.
	 */
	const char *want = json_string_value(json_object_get(h, "stream_xxh3"));
	const char *check = json_string_value(json_object_get(h, "stream_check"));
	bool self_checked =
		check && (st->caps & STORAGE_CAP_SELF_CHECKED) && strcmp(check, st->ops->name) == 0;
	bool sha = !want;
	if (sha)
		want = json_string_value(json_object_get(h, "stream_sha256"));
	char hex[65] = "";
	struct stat sb;
	int r = 0;
	if (fstat(fd, &sb) < 0 || image_bytes < 0 || sb.st_size != start + bytes)
		r = clbsd_err_setmsg(&j->err, CLBSD_E_CONFLICT, EINVAL,
				     "%s is cut short or has extra bytes (%lld bytes of stream, "
				     "the header says %lld)",
				     j->path, (long long)(sb.st_size - start), (long long)bytes);
	if (r == 0 && !self_checked)
		r = sum_region(fd, start, bytes, sha, hex, &j->err);
	if (r == 0 && !self_checked && (!want || strcmp(hex, want) != 0))
		r = clbsd_err_setmsg(&j->err, CLBSD_E_CONFLICT, EINVAL,
				     "%s is damaged: its checksum does not match the header's",
				     j->path);
	json_decref(h);
	if (r == 0 && lseek(fd, start, SEEK_SET) < 0)
		r = clbsd_err_set(&j->err, CLBSD_E_INTERNAL, errno, "seek in %s", j->path);
	int64_t t_recv = time_mono_ns();
	if (r == 0)
		r = st->ops->receive(st, j->name, fd, &j->err);
	close(fd);
	j->t_sent = time_mono_ns();
	log_debug("transfer", j->name, "import: archive checks %.1f ms, receive %.1f ms",
		  (double)(t_recv - j->t_run) / 1e6, (double)(j->t_sent - t_recv) / 1e6);
	j->rc = r;
}

/* At debug level: where an import's time went (its receive's is in import_run's line). */
static void import_times(const struct xfer_job *j)
{
	int64_t now = time_mono_ns();
	log_debug("transfer", j->name,
		  "import%s: %.1f ms in all: checks %.1f, queued %.1f, worker %.1f, record %.1f",
		  j->update ? " (update)" : "", (double)(now - j->t_asked) / 1e6,
		  (double)(j->t_queued - j->t_asked) / 1e6, (double)(j->t_run - j->t_queued) / 1e6,
		  (double)(j->t_sent - j->t_run) / 1e6, (double)(now - j->t_sent) / 1e6);
}

/* The lines of v, joined by "; ". */
static char *join(char *const *v)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; v && v[i]; i++)
		buf_addf(&b, "%s%s", i ? "; " : "", v[i]);
	return buf_detach(&b, NULL);
}

/* A named volume's name: one path component. */
static bool volume_name_ok(const char *v)
{
	return *v && strlen(v) < 256 && !strchr(v, '/') && strcmp(v, ".") != 0 &&
	       strcmp(v, "..") != 0;
}

/* Copy member key of from into to, unless absent or null. */
static void copy_member(json_t *to, const json_t *from, const char *key)
{
	json_t *v = json_object_get(from, key);
	if (v && !json_is_null(v))
		json_object_set(to, key, v);
}

/* The volumes of an archived record, as a create request's "volumes". */
static json_t *request_volumes(struct daemon *d, const json_t *h, json_t *vols, const char *name,
			       bool named, struct strv *host)
{
	if (!json_is_array(vols))
		return json_incref(vols);
	const char *orig = json_str(h, "name");
	const char *hroot = json_str(h, "root") ? json_str(h, "root") : d->root;
	autofree char *prefix = xasprintf("%s/volumes/%s/", hroot, orig ? orig : "");
	json_t *out = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(vols, i, v)
	{
		const char *src = json_str(v, "source");
		if (!src) {
			json_array_append(out, v); /* the create's checks refuse it */
			continue;
		}
		/* A volume of the exported container, in the stream: this one's own. */
		size_t pl = strlen(prefix);
		if (strncmp(src, prefix, pl) == 0 && volume_name_ok(src + pl)) {
			/* Before the stream is in, a directory that exists stands in for it. */
			json_t *c = json_deep_copy(v);
			json_object_set_new(
				c, "source",
				named ? json_sprintf("%s/volumes/%s/%s", d->root, name, src + pl)
				      : json_string(d->root));
			json_array_append_new(out, c);
			continue;
		}
		if (host) {
			const char *dst = json_str(v, "dest");
			autofree char *what = xasprintf(
				"a bind of the host's %s at %s (%s)", src, dst ? dst : "?",
				json_bool(v, "readonly", false) ? "read-only" : "read-write");
			strv_push(host, what);
		}
		json_array_append(out, v);
	}
	return out;
}

/* The networks of an archived record, as a create request's network members. */
static void request_network(struct daemon *d, json_t *req, const json_t *net, const char *name,
			    struct strv *host)
{
	if (!json_is_object(net)) {
		json_object_set_new(req, "network", json_string("none"));
		return;
	}
	json_t *mode = json_object_get(net, "mode");
	const char *m = json_string_value(mode);
	if (m && strcmp(m, "host") == 0) {
		if (host)
			strv_push(host, "the host's network (network host)");
		json_object_set_new(req, "network", json_string("host"));
	} else if (m && strcmp(m, "networks") == 0) {
		/* As an import always did: a network this host lacks is dropped. */
		json_t *names = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(net, "networks"), i, e)
		{
			json_t *n = json_object_get(e, "name");
			struct clbsd_err ignore;
			json_t *here = json_is_string(n)
					       ? dnet_inspect(d, json_string_value(n), &ignore)
					       : NULL;
			if (here || !json_is_string(n))
				json_array_append(names, n);
			else if (host) /* said once, at the first look */
				log_warn("container", name,
					 "import: no network named %s here; left out",
					 json_string_value(n));
			json_decref(here);
		}
		bool first_kept =
			json_array_size(names) > 0 &&
			json_equal(
				json_object_get(json_array_get(json_object_get(net, "networks"), 0),
						"name"),
				json_array_get(names, 0));
		if (json_array_size(names) == 0) {
			json_decref(names);
			json_object_set_new(req, "network", json_string("none"));
		} else {
			json_object_set_new(req, "network", names);
			if (first_kept)
				copy_member(req, net, "ip");
			json_t *pin = json_object_get(net, "pinned_ip");
			if (first_kept && pin && !json_is_null(pin))
				json_object_set(req, "ip", pin);
			copy_member(req, net, "aliases");
			copy_member(req, net, "publish");
		}
	} else if (m && strcmp(m, "none") == 0) {
		json_object_set_new(req, "network", json_string("none"));
	} else {
		json_object_set(req, "network", mode ? mode : json_null()); /* refused there */
	}
	copy_member(req, net, "dns");
}

/*
 * The create request that the container record in header h stands for,
 * under `name`: everything a record holds that a create can set, and
 * nothing else (the resolved argv, uid and the like are made again from
 * it). *host (when given) gets a line for each way it reaches the host.
 * Named volumes exist once the stream is received: until then (!named) the
 * daemon's root stands in for their source.
 */
static json_t *record_request(struct daemon *d, const json_t *h, const char *name, bool named,
			      struct strv *host)
{
	const json_t *rec = json_object_get(h, "container");
	const json_t *cf = json_object_get(rec, "config");
	json_t *req = json_pack("{s:s}", "name", name);
	json_t *id = json_object_get(json_object_get(h, "image"), "id");
	json_object_set(req, "image", id ? id : json_null());
	/* "userns": the recorded range, kept when it is free here (usermap.c). */
	static const char *const same[] = {"command", "env",	     "workdir", "hostname",
					   "tty",     "auto_remove", "stdin",	"userns"};
	for (size_t i = 0; i < ARRAY_SIZE(same); i++)
		copy_member(req, cf, same[i]);
	/* The range travels: kept on import when it is free here (usermap.c). */
	copy_member(req, cf, "userns");
	json_t *user = json_object_get(cf, "user");
	if (user && !(json_is_string(user) && !*json_string_value(user)))
		json_object_set(req, "user", user);
	json_t *vols = json_object_get(cf, "volumes");
	if (vols && !json_is_null(vols))
		json_object_set_new(req, "volumes", request_volumes(d, h, vols, name, named, host));
	/* 0 is "no limit" in a record, and not a value a create takes. */
	json_t *lim = json_object_get(cf, "limits");
	static const char *const limits[] = {"memory", "pids", "cpus"};
	for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
		json_t *v = json_object_get(lim, limits[i]);
		if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
			json_object_set(req, limits[i], v);
	}
	json_t *rs = json_object_get(cf, "restart");
	json_t *pol = json_object_get(rs, "policy");
	json_t *max = json_object_get(rs, "max_retries");
	if (json_is_string(pol) && strcmp(json_string_value(pol), "on-failure") == 0 &&
	    json_is_integer(max) && json_integer_value(max) > 0)
		json_object_set_new(
			req, "restart",
			json_sprintf("on-failure:%lld", (long long)json_integer_value(max)));
	else if (pol && !json_is_null(pol))
		json_object_set(req, "restart", pol);
	request_network(d, req, json_object_get(rec, "network"), name, host);
	return req;
}

/*
 * The imported container's record: made from what ctr_check_create
 * answers for the archive's request (so it holds exactly what a create
 * could have made), with the archive's id, image name and creation time.
 */
static int import_record(struct xfer_job *j, struct container **out, struct clbsd_err *err)
{
	struct daemon *d = j->d;
	json_t *h = json_loads(j->header, 0, NULL);
	json_t *req = record_request(d, h, j->name, true, NULL);
	json_t *ok = ctr_check_create(d, req, err);
	json_decref(req);
	if (!ok) {
		json_decref(h);
		return clbsd_err_prefix(err, "%s: the container it holds is refused", j->path);
	}
	const json_t *old = json_object_get(h, "container");
	const char *image_id = json_str(ok, "image_id");
	const char *ref = json_str(json_object_get(h, "image"), "ref");
	struct image *img = ref && valid_image_ref(ref) ? image_lookup(&d->images, ref) : NULL;
	if (!img || strcmp(img->id, image_id) != 0)
		ref = image_id;
	const char *id = json_str(old, "id");
	char fresh[65];
	if (!id || !*id || strlen(id) > 64 || strspn(id, "0123456789abcdef") != strlen(id)) {
		random_hex(fresh, 32);
		id = fresh;
	}
	const char *mode = json_str(old, "storage");
	if (d->storage.pool)
		mode = "zfs";
	else if (!mode || (strcmp(mode, "overlay") != 0 && strcmp(mode, "copy") != 0))
		mode = "copy";
	int64_t created = json_time_get(old, "created_at");
	json_t *rec = json_pack(
		"{s:s,s:s,s:s,s:o,s:s,s:O,s:O}", "id", id, "image", ref, "image_id", image_id,
		"created_at", json_time(created > 0 ? created : time_now_ns()), "storage", mode,
		"config", json_object_get(ok, "config"), "network", json_object_get(ok, "network"));
	json_decref(ok);
	json_decref(h);
	int r = ctr_adopt_record(d, rec, j->name, out, err);
	json_decref(rec);
	return r;
}

/* <root>/transfer/import-NAME.json: a provisional import into a declaration. */
static char *pending_marker(const struct daemon *d, const char *name)
{
	return xasprintf("%s/transfer/import-%s.json", d->root, name);
}

/*
 * <root>/transfer/recv-NAME.json: a receive into NAME runs. The stream
 * brings the exporting daemon's container.json inside the container's
 * files, and the record this daemon made from it (import_record) replaces
 * it only once the stream is in: a daemon killed in between must not load
 * the archive's record (nor half a container) at its next start. The
 * marker says so (transfer_recover_receives): a new container's files go;
 * an update is rolled back to its base snapshot and the record it had is
 * written back.
 */
static char *recv_marker(const struct daemon *d, const char *name)
{
	return xasprintf("%s/transfer/recv-%s.json", d->root, name);
}

/*
 * The named volumes <root>/volumes/NAME/ holds now (kept by a `rm` without
 * -v, found again by a create of the same name): an undo of a receive into
 * NAME keeps them. NULL when there is no such directory.
 */
static json_t *volumes_before(const struct daemon *d, const char *name)
{
	autofree char *vdir = xasprintf("%s/volumes/%s", d->root, name);
	DIR *dh = opendir(vdir);
	if (!dh)
		return NULL;
	json_t *v = json_array();
	struct dirent *de;
	while ((de = readdir(dh)))
		if (de->d_name[0] != '.')
			json_array_append_new(v, json_string(de->d_name));
	closedir(dh);
	return v;
}

/* The names of a marker's "volumes_before" (NULL: it had none), for receive_undo. */
static char **keep_list(const json_t *m)
{
	json_t *v = json_object_get(m, "volumes_before");
	if (!json_is_array(v))
		return NULL;
	struct strv k = STRV_INIT;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) if (json_is_string(e)) strv_push(&k, json_string_value(e));
	if (!k.v)
		strv_push(&k, ""); /* an empty list, not "none": the directory was there */
	return k.v;
}

static int recv_mark(struct daemon *d, const char *name, struct container *into, const char *from,
		     struct clbsd_err *err)
{
	autofree char *path = recv_marker(d, name);
	/* One receive into a name at a time; a marker left is undone at the next start. */
	if (fs_exists(path))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"an import into %s runs already, or one was cut short and "
					"is undone at the daemon's next start",
					name);
	/* Datasets a cut-short receive left are told from others by this (zfs). */
	json_t *m = json_pack("{s:s,s:I}", "name", name, "since", (json_int_t)time(NULL));
	if (!into) {
		json_t *vb = volumes_before(d, name);
		if (vb)
			json_object_set_new(m, "volumes_before", vb);
	}
	if (into) {
		/* The record as it is now, to write back over the archive's. */
		autofree char *rec = NULL;
		autofree char *cpath = xasprintf("%s/container.json", into->dir);
		if (ctr_save_config(into, err) < 0 || fs_read_file(cpath, &rec, NULL, err) < 0) {
			json_decref(m);
			return clbsd_err_prefix(err, "import into %s", name);
		}
		json_object_set_new(m, "from", json_string(from));
		json_object_set_new(m, "record", json_string(rec));
	}
	autofree char *text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	autofree char *dir = xasprintf("%s/transfer", d->root);
	if (fs_mkdir_p(dir, 0700, err) < 0 ||
	    fs_write_atomic(path, text, strlen(text), 0600, err) < 0)
		return clbsd_err_prefix(err, "import into %s", name);
	return 0;
}

/*
 * An update's increment is in, but its record could not be written back:
 * the next start must not roll it back, only write the record.
 */
static void recv_mark_received(struct xfer_job *j)
{
	autofree char *path = recv_marker(j->d, j->name);
	autofree char *text = NULL;
	struct clbsd_err err;
	json_t *m = fs_read_file(path, &text, NULL, &err) == 0 ? json_loads(text, 0, NULL) : NULL;
	if (!m)
		return;
	json_object_set_new(m, "received", json_true());
	autofree char *t2 = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (fs_write_atomic(path, t2, strlen(t2), 0600, &err) < 0)
		log_error("transfer", j->name, "%s", err.msg);
}

/* What a failed receive into a new container made goes; volumes that were there stay. */
static int undo_new(struct daemon *d, const char *name, struct clbsd_err *err)
{
	autofree char *path = recv_marker(d, name);
	autofree char *text = NULL;
	json_t *m = fs_read_file(path, &text, NULL, err) == 0 ? json_loads(text, 0, NULL) : NULL;
	if (!m)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
					"its receive marker %s is missing or damaged", path);
	char **keep = keep_list(m);
	int r = d->storage.ops->receive_undo(&d->storage, name, json_int(m, "since", INT64_MAX),
					     (const char *const *)keep, err);
	strv_free(keep);
	json_decref(m);
	return r;
}

void transfer_forget(struct daemon *d, const char *name)
{
	autofree char *path = recv_marker(d, name);
	unlink(path);
}

static void recv_unmark(struct xfer_job *j)
{
	if (!j->receiving)
		return;
	autofree char *path = recv_marker(j->d, j->name);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("transfer", j->name, "remove %s: %s", path, strerror(errno));
	j->receiving = false;
}

bool transfer_receiving(const struct daemon *d, const char *name)
{
	autofree char *path = recv_marker(d, name);
	return fs_exists(path);
}

/* A new container's receive: its files and volumes go. */
static int recover_new(struct daemon *d, const char *name, const json_t *m, struct clbsd_err *err)
{
	log_warn("transfer", name,
		 "an import into %s was cut short by the daemon's stop: removing what it "
		 "received",
		 name);
	return undo_new(d, name, err);
}

/* An update's receive: back to its base snapshot, with the record it had. */
static int recover_update(struct daemon *d, const char *name, const json_t *m,
			  struct clbsd_err *err)
{
	const char *from = json_str(m, "from");
	const char *rec = json_str(m, "record");
	json_t *rj = rec ? json_loads(rec, 0, NULL) : NULL;
	const char *rname = json_str(rj, "name");
	bool rec_ok = rname && strcmp(rname, name) == 0;
	json_decref(rj);
	struct clbsd_err lerr;
	if (!from || storage_check_label(from, &lerr) < 0 || !rec_ok)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
					"its receive marker is damaged");
	if (json_bool(m, "received", false)) {
		log_warn("transfer", name,
			 "an import of changes into %s was in, but not its record: writing it "
			 "back",
			 name);
	} else {
		log_warn("transfer", name,
			 "an import of changes into %s was cut short by the daemon's stop: "
			 "putting it back as it was at snapshot %s",
			 name, from);
		if (d->storage.ops->rollback(&d->storage, name, from,
					     STORAGE_PART_ALL | STORAGE_DISCARD_NEWER, err) < 0)
			return -err->code; /* not loaded half updated: the next start tries again */
	}
	autofree char *path = xasprintf("%s/containers/%s/container.json", d->root, name);
	if (d->storage.ops->ctr_mount(&d->storage, name, err) < 0 ||
	    fs_write_atomic(path, rec, strlen(rec), 0600, err) < 0)
		return -err->code;
	return 0;
}

/* The container names of the markers <root>/transfer/PREFIXNAME.json. */
static void marker_names(const struct daemon *d, const char *prefix, struct strv *names)
{
	autofree char *dir = xasprintf("%s/transfer", d->root);
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	size_t pl = strlen(prefix);
	struct dirent *de;
	while ((de = readdir(dh))) {
		size_t n = strlen(de->d_name);
		if (n > pl + 5 && strncmp(de->d_name, prefix, pl) == 0 &&
		    strcmp(de->d_name + n - 5, ".json") == 0) {
			autofree char *name = xstrndup(de->d_name + pl, n - pl - 5);
			if (valid_name(name))
				strv_push(names, name);
		}
	}
	closedir(dh);
}

void transfer_recover_receives(struct daemon *d)
{
	struct strv names = STRV_INIT;
	marker_names(d, "recv-", &names);
	for (size_t i = 0; i < names.n; i++) {
		const char *name = names.v[i];
		autofree char *path = recv_marker(d, name);
		autofree char *text = NULL;
		struct clbsd_err err;
		clbsd_err_init(&err);
		json_t *m = fs_read_file(path, &text, NULL, &err) == 0 ? json_loads(text, 0, NULL)
								       : NULL;
		int r = !m ? clbsd_err_setmsg(&err, CLBSD_E_INTERNAL, EINVAL,
					      "its receive marker is damaged")
			: json_object_get(m, "from") ? recover_update(d, name, m, &err)
						     : recover_new(d, name, m, &err);
		json_decref(m);
		if (r == 0)
			unlink(path);
		else
			log_error("transfer", name,
				  "undoing an import cut short: %s (%s stays; the next start tries "
				  "again)",
				  err.msg, path);
	}
	strv_release(&names);
}

/* An import into a declaration failed: what it recorded goes. */
static void declared_failed(struct xfer_job *j)
{
	struct clbsd_err e2;
	if (j->restore_live && decl_live_restore(j->d, j->name, j->live_before, &e2) < 0)
		log_error("container", j->name, "import: putting the live layer back: %s", e2.msg);
	if (j->pending) {
		autofree char *m = pending_marker(j->d, j->name);
		unlink(m);
	}
}

/* An imported docker container is made in dockerd before the answer, as a create is. */
static void import_prepared(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct xfer_job *j = arg;
	struct daemon *d = j->d;
	if (err) {
		/* The record went with the refusal; what the receive made goes too. */
		struct clbsd_err e2;
		if (!j->receiving || undo_new(d, j->name, &e2) == 0)
			recv_unmark(j);
		else
			log_error("container", j->name,
				  "import: removing what it received: %s (the daemon's next start "
				  "tries again)",
				  e2.msg);
		declared_failed(j);
		log_error("container", j->name, "import: %s", err->msg);
		j->fn(NULL, err, j->arg);
	} else {
		recv_unmark(j);
		TRACE4(container__create, c->name, "docker", time_mono_ns() - j->t0, "import");
		daemon_event(d, "container.created", c->name,
			     json_pack("{s:s,s:s,s:s}", "image", c->image_ref, "imported_from",
				       j->path, "kind", "docker"));
		j->fn(c, NULL, j->arg);
	}
	transfer_job_free(j);
}

/* The imported docker container: the archive's create request, checked as a create's. */
static int import_docker(struct xfer_job *j, struct container **out, struct clbsd_err *err)
{
	json_t *h = json_loads(j->header, 0, NULL);
	json_t *req = docker_store_request(h, j->name, NULL);
	json_decref(h);
	json_object_set_new(req, "image", json_string(j->docker_image));
	struct ctr_spec *s;
	int r = ctr_spec_from_json(req, &s, err);
	json_decref(req);
	if (r == 0) {
		r = ctr_docker_create(j->d, s, DOCKER_ON, out, err);
		ctr_spec_free(s);
	}
	if (r < 0)
		return clbsd_err_prefix(err, "%s: the container it holds is refused", j->path);
	return 0;
}

/*
 * The container imported into its declaration: made from the declaration
 * in force now (the configuration may have changed during the receive),
 * as the reconciler makes it; the archive gave the files.
 */
static int import_declared(struct xfer_job *j, struct container **out, struct clbsd_err *err)
{
	struct daemon *d = j->d;
	const struct ctr_spec *ct =
		d->decl.conf ? conf_container_find(d->decl.conf, j->name) : NULL;
	if (!ct || (ct->kind == CTR_KIND_DOCKER) != j->docker)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ENOENT,
					"%s: container %s is no longer declared here as a %s "
					"container (the configuration changed during the import)",
					j->path, j->name, j->docker ? "docker" : "native");
	json_t *h = json_loads(j->header, 0, NULL);
	const char *mode = json_str(json_object_get(h, "container"), "storage");
	if (!mode || (strcmp(mode, "overlay") != 0 && strcmp(mode, "copy") != 0))
		mode = "copy";
	char hash[65];
	ctr_spec_hash(ct, hash);
	autofree char *text = ctr_spec_print(ct);
	int r = ctr_create_declared_on(d, ct, hash, text, mode, out, err);
	json_decref(h);
	if (r < 0)
		return clbsd_err_prefix(err, "%s: into its declaration", j->path);
	/* Settled: the archive's state is what it brings; the importer starts it. */
	(*out)->decl.booted = true;
	return 0;
}

static void import_done(void *arg)
{
	struct xfer_job *j = arg;
	struct daemon *d = j->d;
	struct container *c = NULL;
	int r = j->rc;
	if (j->update) {
		c = ctr_find(d, j->name);
		if (c) {
			c->storage.busy = false;
			/*
			 * The receive brought the exporter's container.json (and
			 * a failed one put back the base snapshot's, which is the
			 * exporter's too): this container's record goes back,
			 * into its mounted state directory, never the bare mount
			 * point. A failed receive is first made sure to be back
			 * at its base (its own undo may have met a busy zfs).
			 */
			struct clbsd_err serr;
			int w = 0;
			if (r < 0)
				w = d->storage.ops->rollback(
					&d->storage, j->name, j->from,
					STORAGE_PART_ALL | STORAGE_DISCARD_NEWER, &serr);
			if (w == 0)
				w = d->storage.ops->ctr_mount(&d->storage, j->name, &serr);
			if (w == 0)
				w = ctr_save_config(c, &serr);
			if (w == 0) {
				recv_unmark(j);
			} else {
				if (r == 0)
					recv_mark_received(j);
				log_error("container", j->name,
					  "import (update): %s; the daemon's next start sets it "
					  "right",
					  serr.msg);
			}
		}
		if (r < 0 || !c) {
			log_error("container", j->name, "import (update): %s", j->err.msg);
			j->fn(NULL, &j->err, j->arg);
		} else {
			daemon_event(
				d, "container.updated", c->name,
				json_pack("{s:s,s:s}", "imported_from", j->path, "key", "files"));
			import_times(j);
			j->fn(c, NULL, j->arg);
		}
		transfer_job_free(j);
		return;
	}
	if (j->declared)
		importing_end(d, j->name);
	/*
	 * What a failed receive or a refused record leaves goes (the
	 * receive's own undo may have met a busy zfs): only what it made,
	 * never volumes that were there before (undo_new).
	 */
	bool gone = true;
	if (r < 0 || (r = d->storage.ops->ctr_mount(&d->storage, j->name, &j->err)) < 0 ||
	    (r = j->declared ? import_declared(j, &c, &j->err)
		 : j->docker ? import_docker(j, &c, &j->err)
			     : import_record(j, &c, &j->err)) < 0) {
		struct clbsd_err e2;
		gone = !j->receiving || undo_new(d, j->name, &e2) == 0;
		if (!gone)
			log_error("container", j->name,
				  "import: removing what it received: %s (the daemon's next "
				  "start tries again)",
				  e2.msg);
	}
	/* The record is this daemon's now (or nothing is left): the marker goes. */
	if ((r == 0 && !j->docker) || (r < 0 && gone))
		recv_unmark(j);
	if (r == 0 && j->docker) {
		docker_ctr_prepare(c, import_prepared, j);
		return;
	}
	if (r < 0) {
		declared_failed(j);
		log_error("container", j->name, "import: %s", j->err.msg);
		j->fn(NULL, &j->err, j->arg);
	} else {
		TRACE4(container__create, c->name, "native", time_mono_ns() - j->t0, "import");
		daemon_event(
			d, "container.created", c->name,
			json_pack("{s:s,s:s}", "image", c->image_ref, "imported_from", j->path));
		import_times(j);
		j->fn(c, NULL, j->arg);
	}
	transfer_job_free(j);
}

/*
 * The header of the archive at path, checked: a version 2 header's own
 * checksum, or a version 1 header (which has none). Nothing of the file's
 * content goes into an error message.
 */
static json_t *read_header(const char *path, struct clbsd_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INVALID, errno,
			      "open %s", path);
		return NULL;
	}
	struct stat sb;
	char block[HEADER_SIZE + 1];
	ssize_t n =
		fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? pread(fd, block, HEADER_SIZE, 0) : -1;
	close(fd);
	if (n != HEADER_SIZE) {
		clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				 "%s is not a clbsd export (not a file, or too short)", path);
		return NULL;
	}
	block[HEADER_SIZE] = '\0';
	json_t *h = json_loadb(block, HEADER_SIZE, JSON_DISABLE_EOF_CHECK, NULL);
	json_int_t version = json_integer_value(json_object_get(h, "version"));
	const char *format = json_string_value(json_object_get(h, "format"));
	if (!format || strcmp(format, "clbsd-export") != 0 || (version != 1 && version != 2)) {
		json_decref(h);
		clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				 "%s is not a clbsd export (version 1 or 2)", path);
		return NULL;
	}
	if (version == 2) {
		char hex[33];
		transfer_header_sum(block, hex);
		if (memcmp(block, HEADER_SUM_TAG, HEADER_SUM_OFF) != 0 ||
		    memcmp(block + HEADER_SUM_OFF, hex, 32) != 0 ||
		    block[HEADER_SUM_OFF + 32] != '"') {
			json_decref(h);
			clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					 "%s is damaged or was edited: its header does not "
					 "match the header's checksum",
					 path);
			return NULL;
		}
	}
	return h;
}

/*
 * The checks of an import into a declaration (the archive's own record is
 * not used, so neither is it checked): NAME is declared here, as a
 * container of the archive's kind, on the archive's image. *ct is the
 * declaration.
 */
static int declared_check(struct daemon *d, const json_t *h, const char *path, const char *name,
			  bool docker, const struct ctr_spec **ct, struct clbsd_err *err)
{
	const struct ctr_spec *s = d->decl.conf ? conf_container_find(d->decl.conf, name) : NULL;
	const char *kind = docker ? "docker" : "native";
	if (!s)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"container %s is not declared here: import --declared "
					"imports into a declaration of this host's configuration "
					"(declare it first: conf.d, clbsd declare), or import "
					"without --declared",
					name);
	if ((s->kind == CTR_KIND_DOCKER) != docker)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s holds a %s container; %s is declared here as a %s one",
					path, kind, name, docker ? "native" : "docker");
	const json_t *img = json_object_get(h, "image");
	const char *ref = json_str(img, "ref"), *id = json_str(img, "id");
	if (!ref || !valid_image_ref(ref))
		ref = "?";
	if (!id || strlen(id) > 71 || strspn(id, "0123456789abcdefsha:") != strlen(id))
		id = "?";
	if (!docker) {
		const struct image *here = image_lookup(&d->images, s->image);
		if (!here)
			return clbsd_err_setmsg(
				err, CLBSD_E_NOTFOUND, ENOENT,
				"%s is declared on image %s, which is not here (the archive's "
				"is %s, %s); load or build it first (clbsd image load)",
				name, s->image, ref, id);
		if (strcmp(here->id, id) != 0)
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EINVAL,
				"%s holds a container of image %s (%s); %s is declared here on "
				"image %s (%s): change the declaration's :image, or import "
				"without --declared",
				path, ref, id, name, s->image, here->id);
	} else {
		autofree char *a = image_ref_normalise(ref), *b = image_ref_normalise(s->image);
		if (strcmp(a, b) != 0)
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EINVAL,
				"%s holds a container of image %s (%s); %s is declared here on "
				"image %s: change the declaration's :image, or import without "
				"--declared",
				path, ref, id, name, s->image);
	}
	for (size_t i = 0; i < d->importing.n; i++)
		if (strcmp(d->importing.v[i], name) == 0)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						"an import into %s runs already", name);
	*ct = s;
	return 0;
}

static int import_begin(struct daemon *d, const char *path, const char *name, bool allow_host,
			bool declared, const struct import_decl_opts *o, ctr_done_fn fn, void *arg,
			struct clbsd_err *err)
{
	int64_t asked = time_mono_ns();
	if (!fs_path_is_clean_abs(path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"import path \"%s\": want an absolute path", path);
	json_t *h = read_header(path, err);
	if (!h)
		return -err->code;
	const char *driver = json_string_value(json_object_get(h, "driver"));
	const char *orig = json_string_value(json_object_get(h, "name"));
	const char *image_id =
		json_string_value(json_object_get(json_object_get(h, "image"), "id"));
	const char *image_ref =
		json_string_value(json_object_get(json_object_get(h, "image"), "ref"));
	const char *kind = json_string_value(json_object_get(h, "kind"));
	bool docker = kind && strcmp(kind, "docker") == 0;
	int r = 0;
	if (!orig || !json_is_object(json_object_get(h, "container")))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "%s is not a clbsd export (it holds no container)", path);
	else if (!driver || strcmp(driver, d->storage.ops->name) != 0)
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "%s was exported from %s storage; this daemon uses %s storage "
				     "(streams of one driver cannot be read by the other)",
				     path, driver && valid_name(driver) ? driver : "unknown",
				     d->storage.ops->name);
	else if (docker && !docker_endpoint(d))
		r = docker_no_endpoint(d, err);
	else if (!docker && !declared && (!image_id || !image_by_id(&d->images, image_id)))
		r = clbsd_err_setmsg(
			err, CLBSD_E_NOTFOUND, ENOENT,
			"%s needs image %s (%s), which is not here; import or build it "
			"first",
			path, image_ref && valid_image_ref(image_ref) ? image_ref : "?",
			image_id && strlen(image_id) == 64 ? image_id : "?");
	if (!name || !*name)
		name = orig;
	autofree char *dir =
		name && valid_name(name) ? xasprintf("%s/containers/%s", d->root, name) : NULL;
	const char *from = json_string_value(json_object_get(h, "from"));
	struct container *into = from && name ? ctr_find(d, name) : NULL;
	if (r == 0 && !valid_name(name))
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				     "name \"%s\": want a DNS label (a-z, 0-9, '-'); import --name "
				     "NEW",
				     name && strlen(name) < 64 ? name : "(too long)");
	else if (r == 0 && from && !into)
		r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
				     "%s holds only the changes since a snapshot of %s: import the "
				     "full export first",
				     path, name);
	else if (r == 0 && into && (ctr_is_active(into) || into->run.starting))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
				     "container %s runs; stop it before importing changes into it",
				     name);
	else if (r == 0 && into && (into->storage.busy || into->run.removing))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY, "container %s is busy", name);
	else if (r == 0 && !from && (ctr_find(d, name) || fs_exists(dir)))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
				     "a container named %s exists already (import --name NEW)",
				     name);
	const struct ctr_spec *decl = NULL;
	autofree char *before = NULL;
	bool recorded = false, marked = false;
	if (r == 0 && declared && !from && o && o->declaration) {
		/*
		 * The declaration it comes with is recorded first (the name held
		 * from the reconciler meanwhile), and a provisional import's
		 * marker written before that, so that a daemon killed from here
		 * on puts it all back at its next start.
		 */
		for (size_t i = 0; i < d->importing.n; i++)
			if (strcmp(d->importing.v[i], name) == 0)
				r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						     "an import into %s runs already", name);
		if (r == 0 && ctr_find(d, name))
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					     "a container named %s exists already", name);
		if (r == 0)
			r = decl_live_text(d, &before, err);
		if (r == 0 && o->pending) {
			autofree char *m = pending_marker(d, name);
			autofree char *mdir = xasprintf("%s/transfer", d->root);
			json_t *mj = json_pack("{s:s,s:s?}", "name", name, "live_before", before);
			autofree char *mt = json_dumps(mj, JSON_COMPACT);
			json_decref(mj);
			r = fs_mkdir_p(mdir, 0700, err) < 0
				    ? -err->code
				    : fs_replace(m, mt, strlen(mt), 0600, err);
			marked = r == 0;
		}
		if (r == 0) {
			strv_push(&d->importing, name);
			autofree char *b2 = NULL;
			r = decl_live_declare(d, name, o->declaration, &b2, err);
			importing_end(d, name);
			recorded = r == 0;
		}
	}
	if (r == 0 && declared && !from)
		r = declared_check(d, h, path, name, docker, &decl, err);
	else if (r == 0 && declared && !into->decl.managed)
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "container %s here was not made from its declaration; "
				     "import the changes without --declared",
				     name);
	if (r == 0 && !from && !declared) {
		/*
		 * What the record asks of the host is shown, and refused unless
		 * the operator allows it; then the record must pass a create's
		 * checks (again, in full, once the stream is in: import_record).
		 */
		struct strv host = STRV_INIT;
		json_t *req = docker ? docker_store_request(h, name, &host)
				     : record_request(d, h, name, false, &host);
		if (!req) {
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					     "%s holds a docker container without the request it "
					     "was made from (exported by an older clbsdd)",
					     path);
		} else if (host.n && !allow_host) {
			autofree char *list = join(host.v);
			r = clbsd_err_setmsg(err, CLBSD_E_FORBIDDEN, EPERM,
					     "%s asks for access to the host: %s. Its container "
					     "could read or change the host through it: import it "
					     "only if you trust where it comes from, with clbsd "
					     "import --allow-host-access (API: POST "
					     "/v1/import?allow_host_access=1)",
					     path, list);
		} else if (host.n) {
			autofree char *list = join(host.v);
			log_warn("container", name, "import of %s allowed host access: %s", path,
				 list);
		}
		if (r == 0 && docker) {
			struct ctr_spec *s = NULL;
			r = ctr_spec_from_json(req, &s, err);
			if (r == 0)
				r = ctr_docker_create(d, s, DOCKER_CHECK, NULL, err);
			ctr_spec_free(s);
			if (r < 0)
				clbsd_err_prefix(err, "%s: the container it holds is refused",
						 path);
		}
		json_t *ok = r == 0 && !docker ? ctr_check_create(d, req, err) : NULL;
		if (r == 0 && !docker && !ok)
			r = clbsd_err_prefix(err, "%s: the container it holds is refused", path);
		json_decref(ok);
		json_decref(req);
		strv_release(&host);
	}
	bool receiving = false;
	if (r == 0 && (r = recv_mark(d, name, into, from, err)) == 0)
		receiving = true;
	if (r < 0) {
		struct clbsd_err e2;
		if (recorded && decl_live_restore(d, name, before, &e2) < 0)
			log_error("container", name, "import: putting the live layer back: %s",
				  e2.msg);
		if (marked) {
			autofree char *m = pending_marker(d, name);
			unlink(m);
		}
		json_decref(h);
		return r;
	}
	struct xfer_job *j = xcalloc(1, sizeof(*j));
	j->t0 = time_mono_ns();
	j->t_asked = asked;
	j->t_queued = j->t0;
	j->d = d;
	j->name = xstrdup(name);
	j->path = xstrdup(path);
	j->header = json_dumps(h, JSON_COMPACT);
	if (into)
		j->from = xstrdup(from); /* from is h's */
	json_decref(h);
	j->fn = fn;
	j->arg = arg;
	j->docker = docker;
	j->dk = docker ? docker_client(d) : NULL;
	j->receiving = receiving;
	if (into) {
		j->update = true;
		into->storage.busy = true;
	}
	if (decl) {
		j->declared = true;
		j->decl_image = xstrdup(decl->image);
		j->restore_live = recorded;
		j->live_before = steal_ptr(&before);
		j->pending = marked;
		/* j->name: name may be the header's, freed above. */
		strv_push(&d->importing, j->name);
	}
	work_submit(d, import_run, import_done, j);
	return 0;
}

int ctr_import(struct daemon *d, const char *path, const char *name, bool allow_host,
	       ctr_done_fn fn, void *arg, struct clbsd_err *err)
{
	return import_begin(d, path, name, allow_host, false, NULL, fn, arg, err);
}

int ctr_import_declared(struct daemon *d, const char *path, const char *name, ctr_done_fn fn,
			void *arg, struct clbsd_err *err)
{
	return import_begin(d, path, name, false, true, NULL, fn, arg, err);
}

int ctr_import_declared_opts(struct daemon *d, const char *path, const char *name,
			     const struct import_decl_opts *o, ctr_done_fn fn, void *arg,
			     struct clbsd_err *err)
{
	if (o && o->pending && !o->declaration)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"a provisional import records the declaration it comes "
					"with: give \"declaration\" too");
	return import_begin(d, path, name, false, true, o, fn, arg, err);
}

/* ---- provisional imports: commit, abort ---- */

int ctr_import_commit(struct daemon *d, const char *name, struct clbsd_err *err)
{
	if (!valid_name(name))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "invalid name");
	autofree char *m = pending_marker(d, name);
	if (unlink(m) < 0)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no provisional import of %s waits for its commit", name);
	daemon_event(d, "container.import_committed", name, NULL);
	return 0;
}

struct abort_job {
	struct daemon *d;
	char *name;
	char *before;
	bool had_before;
	ctr_done_fn fn;
	void *arg;
};

static void abort_finish(struct abort_job *a, const struct clbsd_err *err)
{
	struct daemon *d = a->d;
	struct clbsd_err e2;
	clbsd_err_init(&e2);
	int r = -1;
	if (!err) {
		/* Its volumes came with it: they go too. */
		r = d->storage.ops->ctr_remove(&d->storage, a->name, true, &e2);
		if (r == 0)
			r = decl_live_restore(d, a->name, a->before, &e2);
		if (r == 0) {
			autofree char *m = pending_marker(d, a->name);
			unlink(m);
			daemon_event(d, "container.import_aborted", a->name, NULL);
		}
	}
	importing_end(d, a->name);
	const struct clbsd_err *fail = err ? err : r < 0 ? &e2 : NULL;
	if (fail)
		log_error("container", a->name, "undoing its provisional import: %s", fail->msg);
	if (a->fn)
		a->fn(NULL, fail, a->arg);
	free(a->name);
	free(a->before);
	free(a);
}

static void abort_removed(struct container *c, const struct clbsd_err *err, void *arg)
{
	abort_finish(arg, err);
}

int ctr_import_abort(struct daemon *d, const char *name, ctr_done_fn fn, void *arg,
		     struct clbsd_err *err)
{
	if (!valid_name(name))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "invalid name");
	autofree char *m = pending_marker(d, name);
	autofree char *text = NULL;
	if (fs_read_file(m, &text, NULL, err) < 0)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no provisional import of %s waits for its commit", name);
	for (size_t i = 0; i < d->importing.n; i++)
		if (strcmp(d->importing.v[i], name) == 0)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						"the import of %s still runs, or is being undone",
						name);
	json_t *mj = json_loads(text, 0, NULL);
	struct abort_job *a = xcalloc(1, sizeof(*a));
	a->d = d;
	a->name = xstrdup(name);
	a->before = json_str(mj, "live_before") ? xstrdup(json_str(mj, "live_before")) : NULL;
	a->fn = fn;
	a->arg = arg;
	json_decref(mj);
	/* Held from the reconciler: it must not make it again, nor remove it meanwhile. */
	strv_push(&d->importing, name);
	struct container *c = ctr_find(d, name);
	if (c)
		ctr_remove(c, true, abort_removed, a);
	else
		abort_finish(a, NULL);
	return 0;
}

void transfer_abort_pending(struct daemon *d)
{
	struct strv names = STRV_INIT;
	marker_names(d, "import-", &names);
	for (size_t i = 0; i < names.n; i++) {
		struct clbsd_err err;
		log_warn("transfer", names.v[i],
			 "a provisional import was neither committed nor aborted before the "
			 "daemon stopped: undoing it");
		if (ctr_import_abort(d, names.v[i], NULL, NULL, &err) < 0)
			log_error("transfer", names.v[i], "%s", err.msg);
	}
	strv_release(&names);
}
