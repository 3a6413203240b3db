/*
 * Capped exponential backoff, the one rule behind every retry delay of the
 * daemon: a container's restarts (100 ms doubling up to 30 s), the
 * reconciler's passes after a failure (1 s up to 30 s) and the shim pool's
 * refills (1 s up to 60 s). Pure; each caller keeps its own attempt counter
 * and decides when to reset it. Units are the caller's.
 */
#ifndef CLBSD_CORE_BACKOFF_H
#define CLBSD_CORE_BACKOFF_H

#include <stdint.h>

/*
 * The delay before retry number attempt (0 for the first retry): base
 * doubled attempt times, never more than max. base and max are positive
 * and base <= max; a large attempt never overflows.
 */
int64_t backoff_delay(int64_t base, int64_t max, unsigned attempt);

#endif
