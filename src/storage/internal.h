/*
 * Prototypes shared between the files of src/storage (not for other
 * directories: they use driver.h).
 */
#ifndef CLBSD_STORAGE_INTERNAL_H
#define CLBSD_STORAGE_INTERNAL_H

#include <clbsd/error.h>
#include <stdbool.h>
#include <stddef.h>

/* A tree to put into a stream: its files appear below `prefix/` (tar.c). */
struct tar_tree {
	const char *prefix; /* a plain name, no '/' */
	const char *dir;    /* absolute; skipped when it does not exist */
};

/*
 * Write a tar (pax) stream to fd: the member "clbsd-send.json" holding meta,
 * then every tree, then the member "clbsd-send.end" that tells a reader the
 * stream is whole. Keeps modes, owners, times, xattrs, symlinks and device
 * nodes (so overlay whiteouts survive); hard links become copies.
 */
int tar_send(int fd, const char *meta, const struct tar_tree *trees, size_t n,
	     struct clbsd_err *err);
/*
 * Read such a stream from fd into the existing empty directory `into`;
 * *meta (caller frees) gets the text of clbsd-send.json. Members must be
 * below one of the prefixes (NULL-terminated); "..", absolute names and
 * writes through symlinks are refused. Fails (INVALID) when the end member
 * is missing: the stream was cut short. On failure `into` may hold a part
 * of the stream: the caller removes it.
 */
int tar_receive(int fd, const char *into, const char *const *prefixes, char **meta,
		struct clbsd_err *err);

/* ---- the dir driver (dir.c, dir_snap.c) ---- */

#include "storage.h"

/* What <ctr_dir>/storage.json says about a container's layer. */
struct dir_meta {
	bool overlay; /* upper/ + work/ over lower, else a copy in fs/ */
	char *lower;  /* the image rootfs; NULL when unknown (made before storage.json) */
	char *image;  /* the image id when known */
	char *spec_hash;
};
int dir_meta_read(const char *ctr_dir, struct dir_meta *m, struct clbsd_err *err);
int dir_meta_write(const char *ctr_dir, bool overlay, const char *lower, const char *image,
		   const char *spec_hash, struct clbsd_err *err);
void dir_meta_release(struct dir_meta *m);
void dir_fill(struct rt_rootfs *out, bool overlay, const char *image_rootfs, const char *ctr_dir);
/* A name in a container directory that belongs to storage, not to its state. */
bool dir_is_storage_entry(const char *name);
/* Refuse tunables: the dir driver has none (UNAVAIL). */
int dir_props_none(const struct storage_props *p, struct clbsd_err *err);

int dir_snapshot(struct storage *st, const char *name, const char *label, struct clbsd_err *err);
int dir_snapshot_list(struct storage *st, const char *name, struct storage_snapshot **out,
		      size_t *n, struct clbsd_err *err);
int dir_snapshot_destroy(struct storage *st, const char *name, const char *label,
			 struct clbsd_err *err);
int dir_rollback(struct storage *st, const char *name, const char *label, unsigned flags,
		 struct clbsd_err *err);
int dir_clone(struct storage *st, const char *src, const char *label, const char *dst,
	      unsigned parts, struct rt_rootfs *out, struct clbsd_err *err);
int dir_send(struct storage *st, const char *name, const char *label, const char *from,
	     char *const *snaps, int fd, struct clbsd_err *err);
int dir_receive(struct storage *st, const char *name, int fd, struct clbsd_err *err);
int dir_ctr_mount(struct storage *st, const char *name, struct clbsd_err *err);
int dir_receive_undo(struct storage *st, const char *name, int64_t since, const char *const *keep,
		     struct clbsd_err *err);

/* ---- the zfs driver (zfs.c, zfs_stream.c) ---- */

#define PROP_MANAGED "clbsd:managed"
#define PROP_HASH    "clbsd:spec-hash"
#define OPT_MANAGED  PROP_MANAGED "=1"
/*
 * On an image dataset: "tree" when it holds the image below rootfs/, so a
 * clone of its @base is a whole container (state beside rootfs/). Images
 * made before it (no value) hold the tree at their top ("flat"); containers
 * cloned from those keep their rootfs in a child dataset <ctr>/rootfs.
 */
#define PROP_LAYOUT "clbsd:layout"
#define OPT_LAYOUT  PROP_LAYOUT "=tree"
/* The properties a container or volume carries across clone and send. */
#define LOCAL_PROPS "quota,reservation,compression,recordsize," PROP_HASH

/*
 * What the first record of a `zfs send` stream (n bytes of it) says it is:
 * 1 a plain stream of one dataset (what the driver's send makes), 2 a
 * compound one (send -R or -p: properties such as mountpoint, and child
 * datasets, which a received archive must not bring), -1 not a stream.
 */
int zfs_stream_hdrtype(const unsigned char *rec, size_t n);
/*
 * Whether that record (n >= 56 bytes of it) begins the changes since a
 * snapshot (1: its drr_fromguid is set), a whole dataset (0), or is no
 * stream or too short (-1). A receive forces (`zfs recv -F`) only a
 * stream it saw is an increment: -F on a whole stream would replace the
 * dataset.
 */
int zfs_stream_incremental(const unsigned char *rec, size_t n);

struct strv;
/* At debug level: argv (a zfs command begun at t0, monotonic ns) and its time. */
void zfs_log_cmd(char *const *argv, int64_t t0, int r);
/* Run zfs with the arguments up to NULL; its stdout in *out when out is not NULL. */
__attribute__((sentinel)) int zfs_run(char **out, struct clbsd_err *err, const char *arg, ...);
/* <ds>/containers/<name> and <ds>/volumes/<name> (new strings). */
char *zfs_ds_ctr(const struct storage *st, const char *name);
char *zfs_ds_vols(const struct storage *st, const char *ctr);
/* Absent, made by clbsd (clbsd:managed=1 set locally; snapshots inherit), or not. */
enum zfs_dstate { ZFS_DS_ABSENT, ZFS_DS_MANAGED, ZFS_DS_FOREIGN };
int zfs_ds_state(const char *ds, enum zfs_dstate *out, struct clbsd_err *err);
/* *yes = the dataset or snapshot is in state want. */
int zfs_has(const char *ds, enum zfs_dstate want, struct clbsd_err *err, bool *yes);
/* CONFLICT unless ds is absent / NOTFOUND or CONFLICT unless it is managed; what names it. */
int zfs_need_absent(const char *what, const char *ds, struct clbsd_err *err);
int zfs_need_managed(const char *what, const char *ds, struct clbsd_err *err);
/* zfs_need_managed() of a state already known (a view's). */
int zfs_need_managed_as(const char *what, const char *ds, enum zfs_dstate s, struct clbsd_err *err);
/* CONFLICT when path is a non-empty directory (a dataset cannot mount there). */
int zfs_need_empty_dir(const char *path, struct clbsd_err *err);
/*
 * What one `zfs get -r` says of some trees (a container's dataset and its
 * volumes, say): whether each dataset and snapshot at and below them is
 * there and clbsd's. A root that does not exist is simply not in it. One
 * command where each question would cost one (~6 ms each on zfs-fuse).
 */
struct zfs_view {
	char *text; /* the output, cut into fields in place */
	char **f;   /* 4 per line: name, property, value, source */
	size_t n;   /* lines */
};
int zfs_view_load(struct zfs_view *v, const char *root1, const char *root2, struct clbsd_err *err);
void zfs_view_release(struct zfs_view *v);
enum zfs_dstate zfs_view_state(const struct zfs_view *v, const char *name);
/*
 * From a view holding the container's and its volumes' trees: its
 * filesystems, then each of its volumes (names in vols_out). *nctr (1 or
 * 2) of them are the container's own: the container dataset (state and
 * rootfs/), or state then <ctr>/rootfs for a container made from a flat
 * image.
 */
void zfs_view_parts(const struct zfs_view *v, const struct storage *st, const char *name,
		    struct strv *ds_out, struct strv *vols_out, size_t *nctr);
/* LOCAL_PROPS set locally on ds, as "k=v". */
int zfs_local_props(const char *ds, struct strv *kv, struct clbsd_err *err);
int zfs_unmount_tree(const char *ds, struct clbsd_err *err);
int zfs_mount_tree(const char *ds, struct clbsd_err *err);
/*
 * The same of two trees with one `zfs list`; ds2 may be NULL or missing.
 * An unmount leaves keep (NULL: none) mounted, but not what is below it.
 */
int zfs_unmount_trees(const char *ds, const char *ds2, const char *keep, struct clbsd_err *err);
int zfs_mount_trees(const char *ds, const char *ds2, struct clbsd_err *err);
/* zfs rollback [-r] snap, with zfs-fuse's "I/O error" and busy retries. */
int zfs_rollback_snap(const char *snap, bool discard_newer, struct clbsd_err *err);
/* Destroy with zfs-fuse's busy retries; CONFLICT when a clone depends on it. */
int zfs_destroy(const char *target, bool recursive, struct clbsd_err *err);
/* Destroy a managed dataset and all below it (every one checked); absent is fine. */
int zfs_destroy_tree(const char *ds, struct clbsd_err *err);
/* Make <ds>/volumes/<ctr> when missing; *made says whether it was. */
int zfs_ensure_vols(const struct storage *st, const char *ctr, bool *made, struct clbsd_err *err);
/* zfs.c's helpers that zfs_snap.c shares. */
/* Next line of *p (modified in place), NULL at the end. */
char *zfs_next_line(char **p);
/* Split a -H line at tabs; returns the number of fields. */
int zfs_fields(char *line, char **f, int max);
/* zfs_need_absent() of a state already known (a view's). */
int zfs_need_absent_as(const char *what, const char *ds, enum zfs_dstate s, struct clbsd_err *err);
/*
 * Before the next try of a zfs-fuse command that failed for a passing
 * reason: sleep, doubling the delay. False once `tries` have failed.
 */
bool zfs_retry_wait(int attempt, int tries, useconds_t *delay);
/* `zfs create` or `zfs clone` (origin) of a managed dataset with settings kv ("k=v"). */
int zfs_make_ds(const char *origin, const char *ds, const struct strv *kv, struct clbsd_err *err);
/* *out for container `name`: its rootfs, bound from <root>/containers/<name>/rootfs. */
void zfs_fill(const struct storage *st, const char *name, struct rt_rootfs *out);
/* The snapshot entry points of struct storage_ops (zfs_snap.c). */
int zfs_snapshot(struct storage *st, const char *name, const char *label, struct clbsd_err *err);
int zfs_snapshot_all(struct storage *st, const char *label, struct clbsd_err *err);
int zfs_snapshot_list(struct storage *st, const char *name, struct storage_snapshot **out,
		      size_t *n, struct clbsd_err *err);
int zfs_snapshot_destroy(struct storage *st, const char *name, const char *label,
			 struct clbsd_err *err);
int zfs_rollback(struct storage *st, const char *name, const char *label, unsigned flags,
		 struct clbsd_err *err);
int zfs_clone(struct storage *st, const char *src, const char *label, const char *dst,
	      unsigned parts, struct rt_rootfs *out, struct clbsd_err *err);
int zfs_send(struct storage *st, const char *name, const char *label, const char *from,
	     char *const *snaps, int fd, struct clbsd_err *err);
int zfs_receive(struct storage *st, const char *name, int fd, struct clbsd_err *err);
int zfs_ctr_mount(struct storage *st, const char *name, struct clbsd_err *err);
int zfs_receive_undo(struct storage *st, const char *name, int64_t since, const char *const *keep,
		     struct clbsd_err *err);

#endif
