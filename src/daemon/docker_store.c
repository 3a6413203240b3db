/*
 * A docker container's storage on this host, and what its snapshots,
 * clones, exports and imports need of dockerd.
 *
 * dockerd keeps a docker container's root file system; what clbsd keeps of
 * it is its state (container.json, logs/) and its named volumes, the
 * `:volumes (:dataset ...)` bound into it. To the storage driver that is a
 * container of the empty image: <root>/images/empty/rootfs, an empty tree
 * (zfs: the dataset <ds>/images/empty@base). Being one, it has everything a
 * native container's storage has, by the same code: snapshots of its state
 * and volumes under one label, rollback, clones, set-aside for `clbsd undo`,
 * send and receive (so export, import and migrate). "empty" is not an image
 * id of the image store (those are 64 hex digits), which never lists it.
 *
 * Docker containers made before this (their record says storage "docker")
 * have a plain directory and no recorded request: they are refused with a
 * message saying to make them again (their volumes stay).
 *
 * An export carries the image's reference and dockerd's id and repo
 * digests for it; an import makes the image present in its dockerd (there
 * by id, or pulled by reference@digest) before anything else is made.
 * With --with-image the archive also carries the image itself (`docker
 * save` of it, between the header and the stream, with its own checksum
 * in the header), which the import loads first. Both ends hold it in
 * memory whole: fine for the images a homelab runs, not for many GB.
 */
#include "daemon.h"
#include "docker/docker.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EMPTY_IMAGE    "empty"
#define CALL_TIMEOUT_S 60
/* A pull may take long: the image's size over the registry's speed. */
#define PULL_TIMEOUT_S 1800

static char *empty_rootfs(const struct daemon *d)
{
	return xasprintf("%s/images/" EMPTY_IMAGE "/rootfs", d->root);
}

int docker_store_prepare(struct daemon *d, struct clbsd_err *err)
{
	autofree char *rootfs = empty_rootfs(d);
	if (fs_mkdir_p(rootfs, 0755, err) < 0)
		return clbsd_err_prefix(err, "the empty image of docker containers");
	return 0;
}

static char *mode_of(const struct daemon *d, const struct rt_rootfs *r)
{
	return xstrdup(strcmp(r->mode, "overlay") == 0 ? "overlay"
		       : d->storage.pool	       ? "zfs"
						       : "copy");
}

int docker_store_make(struct daemon *d, const char *dir, char **mode, struct clbsd_err *err)
{
	autofree char *rootfs = empty_rootfs(d);
	struct rt_rootfs r = {0};
	if (docker_store_prepare(d, err) < 0 ||
	    d->storage.ops->create(&d->storage, rootfs, dir, &r, err) < 0)
		return -err->code;
	*mode = mode_of(d, &r);
	rt_rootfs_release(&r);
	return 0;
}

char *docker_store_mode(struct daemon *d, const char *dir)
{
	autofree char *rootfs = empty_rootfs(d);
	struct rt_rootfs r = {0};
	struct clbsd_err err;
	if (d->storage.ops->describe(&d->storage, rootfs, dir, &r, &err) < 0)
		return xstrdup(d->storage.pool ? "zfs" : "copy");
	char *m = mode_of(d, &r);
	rt_rootfs_release(&r);
	return m;
}

/* Made before docker containers had storage of their own: a plain directory. */
static bool legacy(const struct container *c)
{
	return !c->storage.mode || !*c->storage.mode || strcmp(c->storage.mode, "docker") == 0 ||
	       !c->docker.spec;
}

int docker_store_check(const struct container *c, struct clbsd_err *err)
{
	if (!c->docker.on || !legacy(c))
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ENOTSUP,
				"container %s is a docker container made by an older clbsdd, "
				"without storage of its own: its snapshots, clones and exports "
				"cannot be made; remove it and create it again (its volumes "
				"are kept and found again by the new one)",
				c->name);
}

bool docker_store_can_aside(const struct container *c)
{
	return !c->docker.on || !legacy(c);
}

int docker_store_remove(struct container *c, struct clbsd_err *err)
{
	struct storage *st = &c->d->storage;
	if (c->undo.aside) {
		if (st->ops->ctr_aside(st, c->name, STORAGE_ASIDE_KEEP, err) < 0)
			return clbsd_err_prefix(err, "container %s", c->name);
		return 0;
	}
	if (!legacy(c) && st->ops->remove(st, c->dir, err) < 0)
		return clbsd_err_prefix(err, "remove container %s", c->name);
	if (fs_rm_rf(c->dir, err) < 0)
		return clbsd_err_prefix(err, "remove container %s", c->name);
	return 0;
}

int docker_store_check_volumes(struct daemon *d, const struct ctr_spec *s, struct clbsd_err *err)
{
	const struct dk_endpoint *ep = docker_endpoint(d);
	if (!ep || ep->scheme == DK_UNIX)
		return 0;
	for (size_t i = 0; i < s->nvolumes; i++)
		if (s->volumes[i].type == CTR_VOL_DATASET)
			return clbsd_err_setmsg(
				err, CLBSD_E_INVALID, EINVAL,
				"volume %s: a clbsd volume lives on this host, and the docker "
				"endpoint %s is another host's dockerd, which cannot bind it; "
				"use a bind of a path on that host, or a unix:// endpoint on "
				"this one (docs/docker.md, \"Storage\")",
				s->volumes[i].source, ep->text);
	return 0;
}

int docker_store_clone(struct container *c, const char *dst, struct container **out,
		       struct clbsd_err *err)
{
	json_t *req = json_deep_copy(c->docker.spec);
	json_object_set_new(req, "name", json_string(dst));
	/* The original keeps its pinned address and published ports (as a native clone). */
	json_object_del(req, "ip");
	json_object_del(req, "publish");
	struct ctr_spec *s;
	int r = ctr_spec_from_json(req, &s, err);
	json_decref(req);
	if (r < 0)
		return clbsd_err_prefix(err, "clone of %s", c->name);
	r = ctr_docker_create(c->d, s, DOCKER_ON, out, err);
	ctr_spec_free(s);
	return r;
}

/* ---- images: what an export records, what an import needs ---- */

/* GET /images/NAME/json; *gone on a 404. */
static int store_inspect(struct dk_client *cl, const char *name, json_t **out, bool *gone,
			 struct clbsd_err *err)
{
	*gone = false;
	if (!valid_image_ref(name) && strncmp(name, "sha256:", 7) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image \"%s\" is not an image reference", name);
	autofree char *path = xasprintf("/images/%s/json", name);
	long st = 0;
	int r = dk_call(cl, "GET", path, NULL, CALL_TIMEOUT_S, out, &st, err);
	if (r < 0 && st == 404) {
		*gone = true;
		return 0;
	}
	return r;
}

int docker_store_image_info(struct dk_client *cl, const char *ref, json_t **out,
			    struct clbsd_err *err)
{
	json_t *ins = NULL;
	bool gone;
	if (store_inspect(cl, ref, &ins, &gone, err) < 0)
		return clbsd_err_prefix(err, "image %s", ref);
	if (gone)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"image %s is not in dockerd any more: an export records "
					"its id and digest; pull or load it again first",
					ref);
	json_t *digests = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(ins, "RepoDigests"), i, v)
	{
		if (json_is_string(v))
			json_array_append(digests, v);
	}
	const char *id = json_str(ins, "Id");
	*out = json_pack("{s:s,s:s,s:o}", "ref", ref, "id", id ? id : "", "digests", digests);
	json_decref(ins);
	return 0;
}

/* "repo:tag" (or "repo", or "repo@digest") into repo and tag (may be NULL). */
static void split_ref(const char *ref, char **repo, char **tag)
{
	const char *at = strchr(ref, '@');
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(ref, ':');
	if (at) {
		*repo = xstrndup(ref, (size_t)(at - ref));
		*tag = NULL;
	} else if (colon && (!slash || colon > slash)) {
		*repo = xstrndup(ref, (size_t)(colon - ref));
		*tag = xstrdup(colon + 1);
	} else {
		*repo = xstrdup(ref);
		*tag = xstrdup("latest");
	}
}

/* POST /images/ID/tag?repo=&tag= : ref names the image id from now on. */
static int store_tag(struct dk_client *cl, const char *id, const char *ref, struct clbsd_err *err)
{
	autofree char *repo = NULL, *tag = NULL;
	split_ref(ref, &repo, &tag);
	if (!tag)
		return 0; /* a digest reference names the image already */
	autofree char *erepo = dk_query_escape(repo);
	autofree char *etag = dk_query_escape(tag);
	autofree char *path = xasprintf("/images/%s/tag?repo=%s&tag=%s", id, erepo, etag);
	return dk_call(cl, "POST", path, NULL, CALL_TIMEOUT_S, NULL, NULL, err);
}

/*
 * POST /images/create?fromImage=REPO&tag=DIGEST: the answer is a stream of
 * JSON progress lines, with the status 200 even when the pull fails (the
 * failure is a line with "error").
 */
static int store_pull(struct dk_client *cl, const char *repo, const char *digest,
		      struct clbsd_err *err)
{
	autofree char *erepo = dk_query_escape(repo);
	autofree char *edig = dk_query_escape(digest);
	autofree char *path = xasprintf("/images/create?fromImage=%s&tag=%s", erepo, edig);
	struct dk_resp r = {0};
	if (dk_request(cl, "POST", path, NULL, NULL, 0, PULL_TIMEOUT_S, &r, err) < 0)
		return -err->code;
	int rc = 0;
	if (r.status != 200) {
		rc = dk_err_status(r.status, r.body, r.len, "docker POST /images/create", err);
	} else {
		char *line = r.body, *nl;
		for (; line && *line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			json_t *j = json_loads(line, 0, NULL);
			const char *e = json_str(j, "error");
			if (e) {
				rc = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
						      "docker POST /images/create: %s", e);
				json_decref(j);
				break;
			}
			json_decref(j);
		}
	}
	dk_resp_release(&r);
	return rc;
}

int docker_store_image_ensure(struct dk_client *cl, const json_t *img, char **use,
			      struct clbsd_err *err)
{
	const char *ref = json_str(img, "ref");
	const char *id = json_str(img, "id");
	if (!ref || !valid_image_ref(ref) || !id || strncmp(id, "sha256:", 7) != 0 ||
	    strlen(id) != 71 || strspn(id + 7, "0123456789abcdef") != 64)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"the archive does not name its docker image (a reference "
					"and dockerd's sha256 id)");
	/* The same image under its name, or under another one (tagged then). */
	json_t *ins = NULL;
	bool gone;
	if (store_inspect(cl, ref, &ins, &gone, err) < 0)
		return clbsd_err_prefix(err, "image %s", ref);
	const char *here = gone ? NULL : json_str(ins, "Id");
	bool same = here && strcmp(here, id) == 0;
	json_decref(ins);
	if (same) {
		*use = xstrdup(ref);
		return 0;
	}
	if (store_inspect(cl, id, &ins, &gone, err) < 0)
		return clbsd_err_prefix(err, "image %s", ref);
	json_decref(ins);
	if (gone) {
		/* Pulled by its digest: exactly the exported image, or nothing. */
		autofree char *repo = NULL, *tag = NULL;
		split_ref(ref, &repo, &tag);
		const json_t *ds = json_object_get(img, "digests");
		struct clbsd_err perr;
		clbsd_err_init(&perr);
		bool pulled = false;
		size_t i;
		json_t *v;
		json_array_foreach(ds, i, v)
		{
			const char *dg = json_string_value(v);
			const char *at = dg ? strchr(dg, '@') : NULL;
			if (!at || strncmp(dg, repo, strlen(repo)) != 0 ||
			    dg + strlen(repo) != at || strncmp(at + 1, "sha256:", 7) != 0)
				continue;
			if (store_pull(cl, repo, at + 1, &perr) == 0) {
				pulled = true;
				break;
			}
		}
		if (!pulled)
			return clbsd_err_setmsg(
				err, CLBSD_E_NOTFOUND, ENOENT,
				"image %s (%s) is not in this dockerd%s%s; load it there first "
				"(docker load, or clbsd export --with-image on the other host)",
				ref, id,
				json_array_size(ds) ? " and could not be pulled by its digest: "
						    : " and has no registry digest to pull it by",
				json_array_size(ds) ? perr.msg : "");
	}
	if (!here) {
		/* The name is free here: it names the image again, as on the exporting host. */
		if (store_tag(cl, id, ref, err) < 0)
			return clbsd_err_prefix(err, "image %s", ref);
		*use = xstrdup(ref);
		return 0;
	}
	/* The name is another image's here: created by id, that name is left alone. */
	*use = xstrdup(id);
	return 0;
}

/* ---- an archive's record as a create request ---- */

json_t *docker_store_request(const json_t *h, const char *name, struct strv *host)
{
	const json_t *rec = json_object_get(h, "container");
	const json_t *spec = json_object_get(json_object_get(rec, "docker"), "spec");
	if (!json_is_object(spec))
		return NULL;
	json_t *req = json_deep_copy(spec);
	json_object_set_new(req, "name", json_string(name));
	json_object_set_new(req, "kind", json_string("docker"));
	/* Absent keys are the defaults; a run-time answer ("managed") is no request key. */
	if (!host)
		return req;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(req, "volumes"), i, v)
	{
		const char *src = json_str(v, "source");
		if (!src || src[0] != '/')
			continue; /* a named volume: this container's own, in the stream */
		const char *dst = json_str(v, "dest");
		strv_push_owned(
			host,
			xasprintf("a bind of the host's %s at %s (%s)", src, dst ? dst : "?",
				  json_bool(v, "readonly", false) ? "read-only" : "read-write"));
	}
	const char *net = json_str(req, "network");
	if (net && strcmp(net, "host") == 0)
		strv_push(host, "the host's network (network host)");
	/* dockerd hands these to the container as asked: each reaches the host. */
	json_array_foreach(json_object_get(req, "devices"), i, v)
	{
		if (json_is_string(v))
			strv_push_owned(host,
					xasprintf("the host's device %s", json_string_value(v)));
	}
	json_array_foreach(json_object_get(req, "cap_add"), i, v)
	{
		if (json_is_string(v))
			strv_push_owned(host, xasprintf("the capability %s", json_string_value(v)));
	}
	return req;
}

/* ---- the image itself in the archive (export --with-image) ---- */

int docker_store_image_save(struct dk_client *cl, const char *ref, int fd, off_t at, int64_t *n,
			    char hex[33], struct clbsd_err *err)
{
	if (!valid_image_ref(ref))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image \"%s\" is not an image reference", ref);
	/* By its name, so that the archive's tar carries the tag too. */
	autofree char *path = xasprintf("/images/%s/get", ref);
	struct dk_resp r = {0};
	if (dk_request(cl, "GET", path, NULL, NULL, 0, PULL_TIMEOUT_S, &r, err) < 0)
		return clbsd_err_prefix(err, "save image %s", ref);
	int rc = 0;
	if (r.status != 200) {
		rc = dk_err_status(r.status, r.body, r.len, "docker GET /images/get", err);
	} else {
		size_t off = 0;
		while (off < r.len && rc == 0) {
			ssize_t w = pwrite(fd, r.body + off, r.len - off, at + (off_t)off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				rc = clbsd_err_set(err, CLBSD_E_INTERNAL, w < 0 ? errno : EIO,
						   "write the image into the archive");
			else
				off += (size_t)w;
		}
		struct xxh3_stream *x = hash_xxh3_begin();
		hash_xxh3_add(x, r.body, r.len);
		hash_xxh3_end(x, hex);
		*n = (int64_t)r.len;
	}
	dk_resp_release(&r);
	return rc;
}

int docker_store_image_load(struct dk_client *cl, int fd, off_t at, int64_t n, const char *want,
			    struct clbsd_err *err)
{
	if (n <= 0 || n > ((int64_t)1 << 34))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"the archive's image is empty or too large");
	autofree char *buf = xmalloc((size_t)n);
	size_t got = 0;
	while (got < (size_t)n) {
		ssize_t k = pread(fd, buf + got, (size_t)n - got, at + (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return clbsd_err_set(err, CLBSD_E_CONFLICT, k < 0 ? errno : EIO,
					     "read the archive's image");
		got += (size_t)k;
	}
	char hex[33];
	struct xxh3_stream *x = hash_xxh3_begin();
	hash_xxh3_add(x, buf, (size_t)n);
	hash_xxh3_end(x, hex);
	if (!want || strcmp(hex, want) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"the image it carries is damaged: its checksum does not "
					"match the header's");
	struct dk_resp r = {0};
	if (dk_request(cl, "POST", "/images/load?quiet=1", "application/x-tar", buf, (size_t)n,
		       PULL_TIMEOUT_S, &r, err) < 0)
		return clbsd_err_prefix(err, "load the image it carries");
	int rc = 0;
	if (r.status != 200)
		rc = dk_err_status(r.status, r.body, r.len, "docker POST /images/load", err);
	else if (r.body && strstr(r.body, "\"error"))
		rc = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				      "docker POST /images/load: %.300s", r.body);
	dk_resp_release(&r);
	return rc;
}
