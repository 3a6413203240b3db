/*
 * File integrity: an mtree(5) manifest of a root file system (type, mode,
 * owner, size, link target, SHA-256 of regular files) recorded when an
 * image is made and when a container is created, and the comparison of a
 * tree with it later (`clbsd verify`). docs/integrity.md is the user's side.
 *
 * Layers:
 *   mtree_diff.c   pure: manifests as sorted entry sets, the exclusions, the
 *                  comparison (added, removed, changed and what changed) and
 *                  its JSON. Unit-tested (tests/unit/integrity/).
 *   mtree_io.c     libarchive: the walk of a tree into an mtree manifest
 *                  (its mtree writer computes the digests) and the reading
 *                  of a manifest back into an entry set (its mtree reader).
 *
 * Imports: util/ (the libarchive loader, buffers, fs). Nothing here knows
 * containers, storage or the daemon: the daemon (integrity_run.c) hands in
 * a directory fd, an overlay's through sys_layers_view().
 *
 * Invariants:
 * - The tree walked is hostile (a running container writes it): it is walked
 *   by directory fds, never by path; a regular file is opened only when the
 *   fstat of what was opened says it is one (fs_open_reg_at), everything else
 *   is looked at with fstatat(AT_SYMLINK_NOFOLLOW) and readlinkat, never
 *   opened; a directory on another device (a mount point) is recorded but
 *   not entered; depth and path length are bounded (fs_tree_check_depth).
 * - A manifest is data, never a list of things to open: reading one opens
 *   no path it names (libarchive's mtree reader without "checkfs" never
 *   touches the file system), and the comparison is of strings and numbers.
 * - Paths in entry sets are absolute paths inside the tree ("/", "/etc/hosts"),
 *   raw bytes (a name may hold any byte but '/' and NUL); who prints them
 *   escapes them.
 * - Everything here blocks: callers run it off the event loop.
 */
#ifndef CLBSD_INTEGRITY_H
#define CLBSD_INTEGRITY_H

#include <clbsd/error.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The keywords clbsd writes (libarchive's mtree writer options). */
#define MTREE_KEYWORDS "!all,type,mode,uid,gid,size,link,sha256"

/* One entry of a manifest. */
struct mtree_entry {
	char *path; /* absolute inside the tree: "/", "/etc/passwd" */
	char type;  /* 'f' file, 'd' dir, 'l' symlink, 'c' char, 'b' block, 'p' fifo, 's' socket */
	uint32_t mode; /* permission bits (07777) */
	int64_t uid, gid;
	int64_t size;	 /* regular files; 0 otherwise */
	char *link;	 /* symlinks: the target; NULL otherwise */
	char sha256[65]; /* regular files: lowercase hex; "" when not recorded */
};

/* A manifest: entries sorted by path (strcmp), unique. */
struct mtree_set {
	struct mtree_entry *v;
	size_t n;
};
void mtree_set_release(struct mtree_set *s);
/* Sort by path and drop repeated paths (the last one stays). */
void mtree_set_sort(struct mtree_set *s);

/* What differs in a changed entry (bits of struct drift.what). */
#define DRIFT_TYPE   0x01u
#define DRIFT_MODE   0x02u
#define DRIFT_OWNER  0x04u
#define DRIFT_SIZE   0x08u
#define DRIFT_DIGEST 0x10u
#define DRIFT_TARGET 0x20u

enum drift_kind { DRIFT_ADDED, DRIFT_REMOVED, DRIFT_CHANGED };
/* One difference; pointers borrow the sets compared. */
struct drift {
	enum drift_kind kind;
	const struct mtree_entry *was; /* NULL when added */
	const struct mtree_entry *now; /* NULL when removed */
	unsigned what;		       /* CHANGED: DRIFT_* bits */
};

/*
 * Whether path (absolute, inside the tree) is left out of a check: it is
 * at or below one of the excluded paths and the deepest of those is deeper
 * than every included path that holds it (absolute, clean; NULL-terminated
 * lists, either may be NULL). "/var/log" excludes "/var/log" and
 * "/var/log/x", not "/var/logs"; with "/var/log/audit" included, that one
 * and what is below it are checked again, the rest of /var/log is not.
 * A path in both lists is checked.
 */
bool integrity_excluded(const char *path, char *const *excludes, char *const *includes);
/*
 * Compare manifest `was` with `now` (both sorted), leaving out excluded
 * paths (integrity_excluded) and added directories on the way to one
 * (the parents the runtime makes for a mount point the image lacks:
 * "/var/lib" added with "/var/lib/app" excluded; a file added in them is
 * reported, as is a change to a directory that was there). Returns how
 * many differences, in path order, in *out (free()); *out is NULL when
 * there are none.
 */
size_t integrity_diff(const struct mtree_set *was, const struct mtree_set *now,
		      char *const *excludes, char *const *includes, struct drift **out);
/* "type,mode,digest": the names of the bits in what (static for 0: ""). */
void integrity_what_str(unsigned what, char *buf, size_t n);
/*
 * The report as JSON: {"clean", "added", "removed", "changed" (counts),
 * "drift": [{"path", "kind": "added"|"removed"|"changed", "what": [...],
 * "was": {...}, "now": {...}}]}, at most `max` drift items listed (the
 * counts stay whole; "truncated" is true when items were left out).
 */
json_t *integrity_report_json(const struct drift *v, size_t n, size_t max);
/* One entry as JSON: {"type", "mode" (octal string), "uid", "gid", "size"?, "sha256"?, "link"?}. */
json_t *mtree_entry_json(const struct mtree_entry *e);

/* ---- mtree_io.c: libarchive ---- */

/*
 * What one walk may cost (docs/integrity.md, "Limits"): the tree is written
 * by the container, so a sparse 8 TB file or millions of empty ones must
 * not keep a worker hashing for hours or the daemon's memory growing. Past
 * any of them the walk fails (CONFLICT, naming the limit), it never leaves
 * files out quietly. A field 0 takes the default.
 */
struct mtree_budget {
	uint64_t max_bytes;  /* the sizes of the regular files hashed, summed */
	size_t max_entries;  /* entries recorded */
	int64_t max_wall_ns; /* time_mono_ns() from the walk's start */
};
#define MTREE_BUDGET_BYTES   (32ull << 30) /* 32 GiB */
#define MTREE_BUDGET_ENTRIES ((size_t)1000000)
#define MTREE_BUDGET_WALL_NS (30ll * 60 * 1000000000ll) /* 30 min */
/* The largest manifest text written or read back (~150 bytes an entry). */
#define MTREE_TEXT_MAX (256u << 20)
/*
 * A regular file is sparse when it is larger than 1 MiB and less than an
 * eighth of it is allocated: its size is what hashing it costs, and the
 * budget's error says it is sparse.
 */
#define MTREE_SPARSE_MIN (1u << 20)

/*
 * Walk the tree at rootfd (a directory fd the caller trusts; what is below
 * it is not) and write its manifest, mtree text as libarchive's writer
 * makes it, into *out (free()) of *len bytes. *files counts the entries.
 * budget NULL: the defaults.
 */
int mtree_record_fd(int rootfd, const struct mtree_budget *budget, char **out, size_t *len,
		    size_t *files, struct clbsd_err *err);
/* The same for the directory at path (opened O_DIRECTORY|O_NOFOLLOW). */
int mtree_record_dir(const char *path, const struct mtree_budget *budget, char **out, size_t *len,
		     size_t *files, struct clbsd_err *err);
/*
 * Read mtree text into a sorted set. Entries must be "." or "./..." paths
 * (the non-classic form libarchive writes); anything else is INVALID,
 * naming the line's entry.
 */
int mtree_parse(const char *text, size_t len, struct mtree_set *out, struct clbsd_err *err);

#endif
