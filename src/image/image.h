/*
 * The image store: <root>/images/<id>/rootfs holds an image's file tree and
 * <root>/images/<id>/config.json its metadata (id, created, size and the run
 * config: entrypoint, cmd, env, workdir, user). <root>/images/repositories.json
 * maps "name:tag" to ids. Every file is written atomically.
 *
 * Invariants: an id is 64 lowercase hex characters; a name always carries a
 * tag once stored ("forge" is stored as "forge:latest"); one name points to
 * exactly one image; an image without names is removed.
 *
 * The store is not thread-safe: the daemon's loop thread owns it. Building an
 * image tree (import copy, forge) is separate from registering it, so the
 * slow part can run on a worker thread into a staging directory.
 */
#ifndef CLBSD_IMAGE_H
#define CLBSD_IMAGE_H

#include <clbsd/error.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* An image's default health check (HEALTHCHECK in a Cblockfile). */
struct image_health {
	char **test; /* argv run in the container; empty: checks disabled (NONE) */
	int64_t interval_ns, timeout_ns, start_period_ns; /* 0: the runtime's default */
	int retries;					  /* 0: the runtime's default */
};

struct image_config {
	char **entrypoint; /* NULL-terminated, may be empty */
	char **cmd;
	char **env;
	char *workdir;
	char *user;
	/*
	 * Set by Cblockfile builds (docs/cblockfile.md); NULL when absent, and
	 * then left out of config.json, so older images read and write as
	 * before.
	 */
	char **labels;		     /* "key=value", keys unique (JSON: an object) */
	char **exposed;		     /* "PORT/PROTO", PORT may be a range "8000-8010" */
	char **volumes;		     /* absolute paths */
	struct image_health *health; /* JSON "healthcheck" */
	char *osrelease;	     /* cblocks OSRELEASE, like "14.3-RELEASE" */
	char *auditcfg;		     /* cblocks AUDITCFG, as given ("ex,pc") */
	char *rootpivot;	     /* the directory ROOTPIVOT made the root, for provenance */
};

struct image {
	char id[65];
	int64_t created_ns;
	int64_t size;
	struct image_config config;
	char *dir; /* <root>/images/<id> */
	/*
	 * The OCI side (src/image/oci.h), "" while unknown: the digest of the
	 * manifest an export writes ("sha256:..."), and its one layer.
	 * source: where a pulled image came from (host/repo@digest), or NULL.
	 */
	char digest[72];
	char layer_diff_id[72];
	char layer_digest[72];
	int64_t layer_size;
	char *source;
};

struct image_store {
	char *dir;     /* <root>/images */
	json_t *repos; /* object: "name:tag" -> id */
	struct image **imgs;
	size_t n;
};

int image_store_open(const char *root, struct image_store *st, struct clbsd_err *err);
void image_store_release(struct image_store *st);

/* Normalise "name" to "name:latest" (new string). */
char *image_ref_normalise(const char *ref);

/* Find by name[:tag], full id, or unique id prefix (>= 4 chars). NULL if none. */
struct image *image_lookup(const struct image_store *st, const char *ref);
struct image *image_by_id(const struct image_store *st, const char *id);

/* The names pointing at an image (NULL-terminated, caller frees with strv_free). */
char **image_names(const struct image_store *st, const struct image *img);

/* A fresh staging directory <root>/images/.staging-<rand> with rootfs/ inside. */
int image_staging_new(const struct image_store *st, char **dir, struct clbsd_err *err);

/*
 * Fill a staging directory (blocking; safe on a worker thread as it touches
 * no store state). import: src is a rootfs directory, or a directory holding
 * rootfs/ and optionally config.json with the image config.
 */
int image_stage_import(const char *staging, const char *src, struct image_config *cfg,
		       struct clbsd_err *err);
/* The layer-0 image from busybox-static: applets, passwd, group, hosts, resolv.conf. */
int image_stage_forge(const char *staging, const char *busybox, struct image_config *cfg,
		      struct clbsd_err *err);

/*
 * Move a filled staging directory into the store under a new id and point
 * `name` at it (an older image loses that name and is removed when it has no
 * names left and is not in use per `in_use`). On failure the staging dir is
 * removed.
 */
int image_commit(struct image_store *st, const char *staging, const struct image_config *cfg,
		 const char *name, bool (*in_use)(const char *id, void *ctx), void *ctx,
		 struct image **out, struct clbsd_err *err);
/*
 * image_commit() with the image's creation time given (0: now): a load that
 * keeps the archive's time gives the image the id it had where it was
 * exported, as ids are content addresses of a config that holds that time.
 */
int image_commit_at(struct image_store *st, const char *staging, const struct image_config *cfg,
		    const char *name, bool (*in_use)(const char *id, void *ctx), void *ctx,
		    int64_t created_ns, struct image **out, struct clbsd_err *err);

/*
 * Remove a reference: a name removes that name (and the image when it was
 * the last one); an id removes the image and all its names. Refuses with
 * CLBSD_E_CONFLICT when in use unless force.
 */
int image_remove(struct image_store *st, const char *ref, bool force,
		 bool (*in_use)(const char *id, void *ctx), void *ctx, struct clbsd_err *err);

/*
 * Remove images that have no name left and no user (an image removed with
 * --force while a container used it stays until that container is gone).
 * Returns how many were removed.
 */
int image_gc(struct image_store *st, bool (*in_use)(const char *id, void *ctx), void *ctx);

/*
 * Record an image's OCI digest and layer (and where it came from, when
 * source is not NULL) in its config.json.
 */
/* Record where an image came from ("build:KEY" for a Cblockfile build) in its config.json. */
int image_set_source(struct image *img, const char *source, struct clbsd_err *err);
int image_set_digest(struct image *img, const char *digest, const char *layer_diff_id,
		     const char *layer_digest, int64_t layer_size, const char *source,
		     struct clbsd_err *err);

/*
 * Give a just-committed image the id `id` (its directory is renamed and its
 * names follow). For content-addressed ids, computed once the image's OCI
 * config is known; call it before anything else (a container, a storage
 * driver) refers to the old id. On failure the image keeps its id.
 */
int image_rekey(struct image_store *st, struct image *img, const char *id, struct clbsd_err *err);

/*
 * Point the name `name` at the image `ref` names. An image that loses its
 * last name that way is removed unless in use.
 */
int image_tag(struct image_store *st, const char *ref, const char *name,
	      bool (*in_use)(const char *id, void *ctx), void *ctx, struct clbsd_err *err);

void image_config_release(struct image_config *cfg);
/* A deep copy of the fields of a Cblockfile build (labels ... rootpivot) into dst. */
void image_config_copy_build(struct image_config *dst, const struct image_config *src);
json_t *image_config_to_json(const struct image_config *cfg);
int image_config_from_json(json_t *j, struct image_config *cfg, struct clbsd_err *err);
json_t *image_to_json(const struct image_store *st, const struct image *img);

/*
 * forge --from-host (forge_host.c): stage host binaries (absolute paths,
 * 64-bit ELF) with their dynamic loader and every shared library they link,
 * each at its host path with the host's symlinks, plus a minimal /etc
 * (passwd and group with root, www-data and nobody; hosts). The entrypoint
 * is bins[0]. Dependencies are read from the ELF files (PT_INTERP,
 * DT_NEEDED, DT_RUNPATH), never by running them.
 */
int image_stage_from_host(const char *staging, const char *const *bins, struct image_config *cfg,
			  struct clbsd_err *err);
/* The files bin needs: itself, its loader, its libraries (recursively). */
struct strv;
int image_host_deps(const char *bin, struct strv *files, struct clbsd_err *err);

#endif
