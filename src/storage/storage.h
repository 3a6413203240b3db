/*
 * Storage driver interface: where images, a container's root file system,
 * its state directory and its named volumes live, and how they are
 * snapshotted, rolled back, cloned and moved between hosts.
 *
 * Two drivers implement it:
 * - dir (src/storage/dir.c): plain directories; the rootfs is an overlay of
 *   the image (or a full copy where overlayfs is unavailable); snapshots and
 *   clones are copies (reflinks where the file system has them); send and
 *   receive use a tar stream (src/storage/tar.c). The slower fallback.
 * - zfs (src/storage/zfs.c): one dataset per image, container and volume;
 *   the rootfs is a clone of the image's @base snapshot, snapshots and
 *   clones are O(1), send and receive wrap `zfs send`/`zfs recv`.
 *
 * Layout (both drivers; <root> is struct storage.root, a directory):
 *   <root>/images/<id>/rootfs            the image tree (the image store's;
 *                                        zfs: dataset <ds>/images/<id>@base,
 *                                        not mounted)
 *   <root>/containers/<name>/            state: container.json, logs/ ...
 *                                        (zfs: dataset <ds>/containers/<name>)
 *   <root>/containers/<name>/rootfs      zfs: dataset .../<name>/rootfs, a
 *                                        clone; dir: the mount point, with
 *                                        upper/ + work/ or fs/ beside it
 *   <root>/volumes/<name>/<vol>/         named volumes; they survive a
 *                                        container's recreation (zfs: dataset
 *                                        <ds>/volumes/<name>/<vol>)
 *   <root>/undo/<name>/                  a container set aside before a
 *                                        recreate, for `clbsd undo` (state,
 *                                        rootfs, snapshots; zfs: dataset
 *                                        <ds>/undo/<name>)
 *
 * Invariants:
 * - Names are DNS labels (valid_name()), snapshot labels match
 *   [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}, image ids [a-z0-9]{1,64}. Every entry
 *   point checks them: they end up in paths and in zfs argv.
 * - The zfs driver only ever modifies or destroys datasets that carry the
 *   user property clbsd:managed=1 set locally (snapshots inherit it); it
 *   refuses others with CLBSD_E_CONFLICT.
 * - A failing call that makes things undoes what it made before returning.
 * - Calls block (they run zfs or copy trees): the daemon runs them on its
 *   worker pool, one at a time per container. The caller ignores SIGPIPE
 *   (send and receive write to pipes).
 */
#ifndef CLBSD_STORAGE_DRIVER_H
#define CLBSD_STORAGE_DRIVER_H

#include "runtime/runtime.h"

#include <clbsd/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct storage;
struct strv;

/* What a driver can do beyond the basics (struct storage.caps). */
#define STORAGE_CAP_PROPS	0x1u /* quota, reservation, compression, recordsize */
#define STORAGE_CAP_CHEAP_CLONE 0x2u /* rootfs, snapshot and clone cost O(1), not a copy */
#define STORAGE_CAP_INCREMENTAL 0x4u /* send can send only what changed since a label */
/*
 * Writes reach the disk in the order they were made, whole (zfs: transaction
 * groups): a file written and renamed into place is never seen torn after a
 * crash, so the rename needs no fsync to be atomic; only the last seconds
 * may be lost.
 */
#define STORAGE_CAP_ORDERED 0x8u
/*
 * Its send streams carry their own checksums, and receive verifies them
 * before it keeps anything (zfs: a damaged stream fails `zfs recv` with
 * "checksum mismatch" and leaves nothing): export adds none of its own.
 */
#define STORAGE_CAP_SELF_CHECKED 0x10u
/* send() can carry the container's older snapshots (its snaps argument). */
#define STORAGE_CAP_SEND_SNAPS 0x20u

/* Parts of a container for rollback() and clone() (the rootfs is always included). */
#define STORAGE_PART_STATE   0x1u /* the container directory: container.json, logs/ */
#define STORAGE_PART_VOLUMES 0x2u /* its named volumes */
#define STORAGE_PART_ALL     0x3u
/* ctr_aside() */
#define STORAGE_ASIDE_KEEP    0
#define STORAGE_ASIDE_RESTORE 1
#define STORAGE_ASIDE_DROP    2
/* rollback(): destroy snapshots newer than the label instead of refusing. */
#define STORAGE_DISCARD_NEWER 0x100u

/*
 * Tunables of a container or volume (quota and reservation of a container
 * cover its state and rootfs together). In *_create and volume_ensure, 0 and
 * NULL mean the default; in ctr_set_props they mean "leave as it is", and
 * STORAGE_PROP_RESET (sizes) or "" (strings) go back to the default. The dir
 * driver has none of them and refuses any that is set (CLBSD_E_UNAVAIL).
 */
#define STORAGE_PROP_RESET (-1)
struct storage_props {
	int64_t quota;		 /* bytes */
	int64_t reservation;	 /* bytes */
	int64_t recordsize;	 /* bytes, a power of two (zfs-fuse: at most 128K) */
	const char *compression; /* on, off, lzjb, gzip, gzip-N, zle (+ lz4, zstd on OpenZFS) */
	const char *spec_hash;	 /* recorded with the container (zfs: clbsd:spec-hash) */
};

/* One snapshot of a container (all its parts share the label). */
struct storage_snapshot {
	char *label;
	int64_t created_ns; /* wall clock */
	int64_t used;	    /* bytes held only by this snapshot, all parts summed */
	int64_t txg;	    /* zfs: its createtxg, the order they were taken in; else 0 */
};
void storage_snapshots_free(struct storage_snapshot *s, size_t n);

struct storage_ops {
	const char *name;

	/*
	 * A container's own storage is made and found by its paths, as the
	 * daemon knows them: ctr_dir is <root>/containers/<name> and
	 * image_rootfs the image store's <dir>/<id>/rootfs. The other entry
	 * points below name the container.
	 * create: prepare the rootfs of a new container whose state lives in
	 * ctr_dir from image_rootfs (<root>/images/<id>/rootfs). Fills *out
	 * (caller releases it). A failure leaves nothing behind. The dir driver
	 * wants ctr_dir to exist; the zfs driver wants it absent or empty (it
	 * becomes a dataset's mount point), so the daemon must call it before it
	 * writes anything there.
	 */
	int (*create)(struct storage *st, const char *image_rootfs, const char *ctr_dir,
		      struct rt_rootfs *out, struct clbsd_err *err);
	/* Rebuild *out for an existing container (daemon restart). */
	int (*describe)(struct storage *st, const char *image_rootfs, const char *ctr_dir,
			struct rt_rootfs *out, struct clbsd_err *err);
	/* Remove what create() made under ctr_dir (not volumes). Idempotent. */
	int (*remove)(struct storage *st, const char *ctr_dir, struct clbsd_err *err);
	/* Bytes written by the container (its own layer). */
	int64_t (*usage)(struct storage *st, const char *ctr_dir);

	/*
	 * Make image `id` usable by create from the tree `rootfs`
	 * (zfs: dataset images/<id> filled from it, snapshot @base). Idempotent:
	 * a prepared image is left alone, a half-made one is made again.
	 */
	int (*image_prepare)(struct storage *st, const char *id, const char *rootfs,
			     struct clbsd_err *err);
	/* Drop what image_prepare made. Refused (CONFLICT) while a container uses it. */
	int (*image_remove)(struct storage *st, const char *id, struct clbsd_err *err);

	/* Change the container's tunables (see struct storage_props). */
	int (*ctr_set_props)(struct storage *st, const char *name,
			     const struct storage_props *props, struct clbsd_err *err);
	/*
	 * Remove the container's directory, rootfs and snapshots, and its
	 * volumes when `volumes`. Idempotent. CONFLICT while another container
	 * is a clone of one of its snapshots.
	 */
	int (*ctr_remove)(struct storage *st, const char *name, bool volumes,
			  struct clbsd_err *err);

	/*
	 * Make volume `vol` of container `ctr` if it is missing and apply props
	 * (may be NULL); *path (caller frees) is where it is on the host.
	 * Volumes outlive ctr_remove(.., false) and a later create of the
	 * same name finds them again.
	 */
	int (*volume_ensure)(struct storage *st, const char *ctr, const char *vol,
			     const struct storage_props *props, char **path, struct clbsd_err *err);
	/*
	 * Set a stopped container aside (AS_KEEP): its state, rootfs and
	 * snapshots move from containers/<name> to undo/<name>, replacing what
	 * was set aside before; AS_RESTORE moves them back (containers/<name>
	 * must be absent); AS_DROP removes what is set aside. Volumes stay
	 * where they are. Idempotent for AS_DROP; -ENOENT (CLBSD_E_NOTFOUND)
	 * when there is nothing to restore.
	 */
	int (*ctr_aside)(struct storage *st, const char *name, int how, struct clbsd_err *err);
	/* Remove one volume (and its snapshots). Idempotent. */
	int (*volume_remove)(struct storage *st, const char *ctr, const char *vol,
			     struct clbsd_err *err);

	/*
	 * Snapshot the container's state, rootfs and volumes under `label`
	 * (CONFLICT when the label exists). zfs: the container tree is atomic,
	 * its volumes are taken right after.
	 */
	int (*snapshot)(struct storage *st, const char *name, const char *label,
			struct clbsd_err *err);
	/*
	 * Snapshot every container (state, rootfs, volumes) under `label` at
	 * one point in time: one `zfs snapshot -r` of the root dataset, which
	 * zfs takes atomically across datasets (the snapshots it also made of
	 * images and other datasets are destroyed right after). CONFLICT when
	 * any dataset has the label already (then nothing is made). NULL in
	 * drivers that cannot (dir: copies are made one container at a time).
	 */
	int (*snapshot_all)(struct storage *st, const char *label, struct clbsd_err *err);
	/* The container's snapshots, oldest first. *out is freed with storage_snapshots_free. */
	int (*snapshot_list)(struct storage *st, const char *name, struct storage_snapshot **out,
			     size_t *n, struct clbsd_err *err);
	/* Destroy one snapshot in every part. CONFLICT while a clone depends on it. */
	int (*snapshot_destroy)(struct storage *st, const char *name, const char *label,
				struct clbsd_err *err);
	/*
	 * Put the rootfs, and the parts in flags (STORAGE_PART_*), back to
	 * `label`. Refused (CONFLICT) when newer snapshots exist unless flags has
	 * STORAGE_DISCARD_NEWER, which destroys them. Everything is checked
	 * before anything changes. The container must be stopped.
	 */
	int (*rollback)(struct storage *st, const char *name, const char *label, unsigned flags,
			struct clbsd_err *err);
	/*
	 * Make container `dst` from `src` as it was at `label` (NULL: now; a
	 * snapshot "clone-<dst>" is taken and stays as the clone's origin).
	 * The rootfs is always cloned; parts adds its state and volumes.
	 */
	int (*clone)(struct storage *st, const char *src, const char *label, const char *dst,
		     unsigned parts, struct rt_rootfs *out, struct clbsd_err *err);
	/*
	 * Write the container (state, rootfs, volumes) at snapshot `label` to
	 * fd as one stream: everything when from is NULL, else only the changes
	 * since snapshot `from` (drivers with STORAGE_CAP_INCREMENTAL).
	 * snaps (NULL-terminated, may be NULL or empty): older snapshots of the
	 * container that travel too, and that receive() makes again under
	 * their labels (drivers with STORAGE_CAP_SEND_SNAPS; not with from).
	 * Each dataset sends those it has that precede `label`, oldest first:
	 * the first whole, each next as the changes since the one before, and
	 * `label` last as the changes since the newest of them.
	 */
	int (*send)(struct storage *st, const char *name, const char *label, const char *from,
		    char *const *snaps, int fd, struct clbsd_err *err);
	/*
	 * Read a stream written by send() of the same driver from fd and make
	 * container `name` from it (any name: the stream's parts are relative),
	 * with the stream's snapshot. An incremental stream applies to an
	 * existing container that has the base snapshot. A stream that ends
	 * early or is damaged leaves nothing behind (and the container as it was).
	 */
	int (*receive)(struct storage *st, const char *name, int fd, struct clbsd_err *err);
	/*
	 * Remove what a receive into new container `name` made, when it failed
	 * or the process running it died (its caller recorded that it began,
	 * at `since`, seconds since the epoch): its files and state, and its
	 * volumes except those named in `keep`, which were there before it
	 * began (keep NULL: the container's volumes' place is the receive's
	 * too, and all of it goes). A driver that marks what it made only once
	 * a part is in (zfs) counts what it finds there made since `since` as
	 * the receive's; anything older that is not its own stays, refused
	 * (CONFLICT).
	 */
	int (*receive_undo)(struct storage *st, const char *name, int64_t since,
			    const char *const *keep, struct clbsd_err *err);
	/*
	 * Make sure the container's directory and volumes are in place before
	 * its files are written there (zfs: its datasets mounted, with the
	 * retries zfs-fuse needs after a receive; a dataset left unmounted
	 * would take the write into its bare mount point and never mount
	 * again). Nothing to do for the dir driver.
	 */
	int (*ctr_mount)(struct storage *st, const char *name, struct clbsd_err *err);
};

struct storage {
	const struct storage_ops *ops;
	char *root;	   /* <root>: the directory holding containers/, volumes/ */
	unsigned caps;	   /* STORAGE_CAP_* */
	bool have_overlay; /* dir driver: overlayfs works here */
	char *pool;	   /* zfs: the pool */
	char *dataset;	   /* zfs: the root dataset, the pool or below it */
	bool fuse;	   /* zfs: the datasets are zfs-fuse mounts (docs/storage.md) */
};

/* Open the dir driver on root (probes overlayfs once). */
int storage_dir_open(const char *root, struct storage *out, struct clbsd_err *err);
/*
 * Open the zfs driver: datasets below `dataset` (in `pool`; made if missing)
 * mounted below the directory `mnt`. Makes <dataset>/{images,containers,volumes}
 * with mountpoints none, <mnt>/containers and <mnt>/volumes. UNAVAIL when zfs
 * does not answer or the pool is missing; CONFLICT when one of those datasets
 * exists without clbsd:managed or a mount point is a non-empty directory.
 */
int storage_zfs_open(const char *pool, const char *dataset, const char *mnt, struct storage *out,
		     struct clbsd_err *err);
void storage_release(struct storage *st);

/*
 * Only root may reach what clbsd keeps under <root>: every directory in it
 * (and each <root>/volumes/<ctr>) becomes 0700 and every file in it loses
 * its bits for others; <root> itself and <root>/ingress stay 0711 (nginx
 * workers run as nobody and need to reach ingress/tmp/). Volumes, root file systems and images hold
 * files a container made as its root (a setuid copy of a shell, say), so a
 * path to them open to other users is a way to root. Idempotent: run at
 * every daemon start, it also tightens an install made by an older version.
 * Symlinks are left alone. Returns how many modes it changed, or -errno.
 */
int storage_secure_root(const char *root, struct clbsd_err *err);

/* <root>/containers/<name> (a new string). */
char *storage_ctr_dir(const struct storage *st, const char *name);
/* Checks shared by the drivers; each sets an INVALID error naming the value. */
int storage_check_name(const char *what, const char *name, struct clbsd_err *err);
int storage_check_label(const char *label, struct clbsd_err *err);
int storage_check_image_id(const char *id, struct clbsd_err *err);

/*
 * Which snapshots an export carries (src/storage/snap_pick.c): spec is
 * "none" (or NULL), "all", or labels separated by commas.
 * storage_snaps_check: only its syntax (INVALID naming the bad label).
 * storage_snaps_none: spec asks for none.
 * storage_snaps_select: the labels of have[0..n) (the container's
 * snapshots, oldest first) that spec asks for, in have's order, without
 * `label` (the export's own, which travels anyway); NOTFOUND for a label of
 * spec that the container lacks. *out is pushed to only on success.
 * storage_snaps_chain: of names[0..n) (one dataset's snapshots in the order
 * they were taken), those in chosen (NULL-terminated) that precede `label`,
 * in that order: the dataset's chain, sent oldest first.
 */
int storage_snaps_check(const char *spec, struct clbsd_err *err);
bool storage_snaps_none(const char *spec);
int storage_snaps_select(const char *spec, const struct storage_snapshot *have, size_t n,
			 const char *label, struct strv *out, struct clbsd_err *err);
void storage_snaps_chain(char *const *names, size_t n, char *const *chosen, const char *label,
			 struct strv *out);

#endif
