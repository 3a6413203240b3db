/*
 * Scheduled snapshots, the pure part: which ones to prune. A scheduled
 * snapshot is labelled SNAP_AUTO_PREFIX + the UTC time; only those are ever
 * pruned, snapshots taken by hand are the operator's.
 */
#ifndef CLBSD_CORE_SNAPSCHED_H
#define CLBSD_CORE_SNAPSCHED_H

#include <stddef.h>

#define SNAP_AUTO_PREFIX "auto-"

/*
 * Of `labels` (oldest first), the scheduled ones to destroy so that `keep`
 * of them remain: the oldest, in order, into out (room for n). Returns how
 * many.
 */
size_t snap_prune_select(const char *const *labels, size_t n, size_t keep, const char **out);

#endif
