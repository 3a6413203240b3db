/* Capped exponential backoff (backoff.h). */
#include "backoff.h"

int64_t backoff_delay(int64_t base, int64_t max, unsigned attempt)
{
	int64_t d = base < max ? base : max;
	/* Never past max, so never an overflow, whatever attempt is. */
	for (unsigned i = 0; i < attempt && d < max; i++)
		d = d > max / 2 ? max : 2 * d;
	return d;
}
