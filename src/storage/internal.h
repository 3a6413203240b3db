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

#include "driver.h"

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
int dir_send(struct storage *st, const char *name, const char *label, const char *from, int fd,
	     struct clbsd_err *err);
int dir_receive(struct storage *st, const char *name, int fd, struct clbsd_err *err);

#endif
