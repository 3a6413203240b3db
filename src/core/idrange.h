/*
 * Host id ranges for containers with a user namespace (pure: no I/O).
 *
 * A pool is a span of host ids (from /etc/subuid's "clbsd" or "root" entry,
 * the host config, or 100000000 upwards), cut into slots of IDRANGE_SIZE
 * ids. A container gets one slot; its base is recorded with it, so it keeps
 * the same ids across restarts. Bases once given to a name are remembered
 * ("hints"), so a name that comes back (a declared container recreated on a
 * change, an import) gets its old range when it is free, and a new name
 * takes a slot nobody had before while there is one.
 */
#ifndef CLBSD_CORE_IDRANGE_H
#define CLBSD_CORE_IDRANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDRANGE_SIZE	      65536u
#define IDRANGE_DEFAULT_START 100000000u
/* Up to the last id below 2^32 - 1 (the invalid id). */
#define IDRANGE_DEFAULT_COUNT (4294967295u - IDRANGE_DEFAULT_START)

struct idrange_pool {
	uint32_t start; /* first host id */
	uint32_t count; /* ids in the pool; only whole slots are used */
};

/*
 * The first entry for `user` in /etc/subuid (or subgid) text, lines
 * "NAME:START:COUNT" ('#' comments and malformed lines skipped). false when
 * there is none; an entry for a numeric uid is not matched.
 */
bool idrange_subid_find(const char *text, const char *user, struct idrange_pool *out);
/* Whether pool is usable: at least one slot, above id 0, below 2^32 - 1. */
bool idrange_pool_ok(const struct idrange_pool *p);
/* How many slots the pool has. */
size_t idrange_slots(const struct idrange_pool *p);
/* Whether base is the start of a slot of the pool. */
bool idrange_is_slot(const struct idrange_pool *p, uint32_t base);
/*
 * Choose a slot base: `prefer` (0: none) when it is a free slot of the pool;
 * else the lowest slot neither used nor hinted (given to another name
 * before); else the lowest unused one. used/hinted hold slot bases, in any
 * order. -ENOSPC when every slot is used.
 */
int idrange_pick(const struct idrange_pool *p, const uint32_t *used, size_t n_used,
		 const uint32_t *hinted, size_t n_hinted, uint32_t prefer, uint32_t *out);

#endif
