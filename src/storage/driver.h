/*
 * Storage driver interface: where a container's root file system and volumes
 * live. The dir driver (src/storage/dir.c) uses overlayfs on plain
 * directories, or a full copy where overlay is unavailable; ZFS comes later.
 */
#ifndef CLBSD_STORAGE_DRIVER_H
#define CLBSD_STORAGE_DRIVER_H

#include "../runtime/driver.h"

#include <clbsd/error.h>
#include <stdint.h>

struct storage;

struct storage_ops {
	const char *name;
	/*
	 * Prepare the rootfs of a new container whose state lives in ctr_dir
	 * (exists) from image_rootfs. Fills *out (caller releases its strings).
	 * A failure leaves nothing behind.
	 */
	int (*create)(struct storage *st, const char *image_rootfs, const char *ctr_dir,
		      struct rt_rootfs *out, struct clbsd_err *err);
	/* Rebuild *out for an existing container (daemon restart). */
	int (*describe)(struct storage *st, const char *image_rootfs, const char *ctr_dir,
			struct rt_rootfs *out, struct clbsd_err *err);
	/* Remove what create() made under ctr_dir. Idempotent. */
	int (*remove)(struct storage *st, const char *ctr_dir, struct clbsd_err *err);
	/* Bytes written by the container (its own layer). */
	int64_t (*usage)(struct storage *st, const char *ctr_dir);
};

struct storage {
	const struct storage_ops *ops;
	char *root;        /* <root> */
	bool have_overlay; /* dir driver: overlayfs works here */
};

/* Open the dir driver on root (probes overlayfs once). */
int storage_dir_open(const char *root, struct storage *out, struct clbsd_err *err);
void storage_release(struct storage *st);
void rt_rootfs_release(struct rt_rootfs *r);

#endif
