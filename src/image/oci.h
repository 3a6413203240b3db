/*
 * OCI images: export to an OCI image layout archive, load OCI layouts and
 * `docker save` archives, pull from a registry (docs/images.md).
 *
 * An image leaves clbsd as one gzip layer of its rootfs. The layer tar is
 * deterministic (entries sorted by name, numeric owners, modes and mtimes
 * in whole seconds from the tree, no atime/ctime, gzip without a
 * timestamp), so the same tree gives the same layer, the same config blob
 * (its created time is the image's) and therefore the same manifest: the
 * image's digest is the sha256 of that manifest.
 *
 * Images come in by applying their layers in order onto an empty rootfs in
 * a staging directory, with whiteouts (".wh.NAME" removes NAME below, the
 * ".wh..wh..opq" marker empties its directory of what lower layers put
 * there). Names that are absolute, hold "..", or reach through a symlink
 * are refused, so a layer cannot write or delete outside the rootfs.
 *
 * Everything here blocks and touches no store state: it runs on a worker.
 * Digests are "sha256:" and 64 lowercase hex characters (71 chars + NUL).
 */
#ifndef CLBSD_IMAGE_OCI_H
#define CLBSD_IMAGE_OCI_H

#include "image.h"

#include <clbsd/error.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define OCI_DIGEST_LEN 72

#define OCI_MT_INDEX	   "application/vnd.oci.image.index.v1+json"
#define OCI_MT_MANIFEST	   "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_CONFIG	   "application/vnd.oci.image.config.v1+json"
#define OCI_MT_LAYER_GZIP  "application/vnd.oci.image.layer.v1.tar+gzip"
#define DOCKER_MT_LIST	   "application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_ANNOT_REF	   "org.opencontainers.image.ref.name"

/* ---- ociref.c: pure parts (unit-tested) ---- */

/* "sha256:<64 lowercase hex>"? */
bool oci_digest_valid(const char *d);

/* A registry reference: [host[:port]/]repo[:tag|@digest]. */
struct oci_ref {
	char *host; /* "registry-1.docker.io" for docker.io */
	char *repo; /* "library/alpine", "test/forge" */
	char *tag;  /* NULL when digest is set */
	char *digest;
	char *name; /* the name stored here: repo without "library/", plus ":tag" */
};
/*
 * Parse a reference like docker does: the first component is a host when it
 * holds a '.' or ':' or is "localhost"; otherwise the host is docker.io and a
 * single-component repo gets "library/". The tag defaults to "latest".
 */
int oci_ref_parse(const char *s, struct oci_ref *r, struct clbsd_err *err);
void oci_ref_release(struct oci_ref *r);
/*
 * The name an image called `ref` by its source gets here: its repo and tag
 * without the registry host (and without docker.io's "library/"), so
 * "docker.io/library/busybox:1" is "busybox:1". NULL when ref is no reference.
 */
char *oci_local_name(const char *ref);
/* A host that plain http may be used for: localhost, 127.0.0.0/8, ::1 (port ignored). */
bool oci_host_is_loopback(const char *host);

/* The host's architecture in OCI terms (amd64, arm64, ...). */
const char *oci_host_arch(void);
/*
 * From an OCI index or Docker manifest list, the descriptor (borrowed) for
 * linux/arch; NULL when there is none.
 */
json_t *oci_index_pick(json_t *index, const char *arch);

/* What a layer member name means for the apply (after cleaning). */
enum oci_member {
	OCI_MEMBER_FILE,     /* an ordinary entry at *path */
	OCI_MEMBER_ROOT,     /* "." or "./": the root itself */
	OCI_MEMBER_WHITEOUT, /* remove *path */
	OCI_MEMBER_OPAQUE,   /* empty the directory *path ("" is the root) */
	OCI_MEMBER_SKIP,     /* aufs metadata (".wh..wh.plnk" and the like): ignored */
	OCI_MEMBER_BAD,	     /* absolute, "..", or a whiteout of "." / ".." */
};
/*
 * Classify a tar member name; *path (caller frees) gets the clean relative
 * path without "./" or a trailing '/', for FILE, WHITEOUT and OPAQUE.
 */
enum oci_member oci_member_classify(const char *name, char **path);

/* ---- oci.c ---- */

/* What an image's single export layer is. */
struct oci_layer {
	char diff_id[OCI_DIGEST_LEN]; /* of the tar */
	char digest[OCI_DIGEST_LEN];  /* of the gzip stream */
	int64_t size;		      /* of the gzip stream */
};

/*
 * Write the deterministic gzip layer of rootfs to fd, or only measure it
 * when fd is -1.
 */
int oci_layer_write(const char *rootfs, int fd, struct oci_layer *out, struct clbsd_err *err);

/* The config blob and the manifest of an image with that layer (new strings). */
char *oci_config_blob(const struct image_config *cfg, int64_t created_ns,
		      const struct oci_layer *l);
char *oci_manifest_blob(const char *config_blob, const struct oci_layer *l);
/*
 * The digest of the config blob: an image's content-addressed id (64 hex,
 * no "sha256:"), as docker computes image ids.
 */
void oci_config_id(const struct image_config *cfg, int64_t created_ns, const struct oci_layer *l,
		   char out[65]);
/* The image digest from the config and layer (sha256 of the manifest). */
void oci_image_digest(const struct image_config *cfg, int64_t created_ns, const struct oci_layer *l,
		      char out[OCI_DIGEST_LEN]);

/*
 * Export rootfs + cfg as an OCI image layout archive at path (written to a
 * temporary file beside it, then renamed). tmpdir is an empty scratch
 * directory for the layer. ref_name goes into index.json. *layer gets the
 * layer written and digest the manifest's digest.
 */
int oci_export(const char *rootfs, const struct image_config *cfg, int64_t created_ns,
	       const char *ref_name, const char *tmpdir, const char *path, struct oci_layer *layer,
	       char digest[OCI_DIGEST_LEN], struct clbsd_err *err);

/* What a load or pull found besides the rootfs. */
struct oci_loaded {
	struct image_config cfg;
	char *name;	    /* the name the source gives, or NULL */
	char *source;	    /* where it came from (pull: host/repo@digest), or NULL */
	int64_t created_ns; /* the config's "created", or 0 */
};
void oci_loaded_release(struct oci_loaded *l);

/*
 * Fill staging/rootfs from an OCI image layout (directory or tar archive)
 * or a `docker save` archive at path. The source's scratch copy goes in
 * staging/src and is removed again.
 */
int oci_stage_load(const char *staging, const char *path, struct oci_loaded *out,
		   struct clbsd_err *err);

/* Apply one layer (a tar, compressed or not) onto rootfs with whiteouts. */
int oci_apply_layer(const char *rootfs, const char *layer, struct clbsd_err *err);

/* The image config (entrypoint, cmd, env, workdir, user) from an OCI/Docker config blob. */
int oci_config_parse(json_t *blob, struct image_config *cfg, struct clbsd_err *err);

/* sha256 of a file's contents as a digest. */
int oci_file_digest(const char *path, char out[OCI_DIGEST_LEN], struct clbsd_err *err);

/* ---- registry.c ---- */

/* Progress of a pull: one line of text, from the worker thread. */
typedef void (*oci_progress_fn)(void *ctx, const char *msg);

struct oci_pull_opts {
	char **insecure;		 /* hosts (host or host:port) allowed over plain http */
	const char *username, *password; /* basic credentials for the token, or NULL */
	oci_progress_fn progress;
	void *ctx;
};

/* GET an http(s) URL into fd (a build's ADD URL); a non-2xx answer is an error. */
int oci_download(const char *url, int fd, struct clbsd_err *err);

/* Pull ref (linux/host arch) into staging/rootfs. */
int oci_stage_pull(const char *staging, const char *ref, const struct oci_pull_opts *o,
		   struct oci_loaded *out, struct clbsd_err *err);

#endif
