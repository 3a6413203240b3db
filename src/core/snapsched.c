#include "core/snapsched.h"

#include <string.h>

static int scheduled(const char *label)
{
	return label && strncmp(label, SNAP_AUTO_PREFIX, strlen(SNAP_AUTO_PREFIX)) == 0;
}

size_t snap_prune_select(const char *const *labels, size_t n, size_t keep, const char **out)
{
	size_t autos = 0;
	for (size_t i = 0; i < n; i++)
		autos += scheduled(labels[i]) ? 1 : 0;
	size_t drop = autos > keep ? autos - keep : 0, k = 0;
	for (size_t i = 0; i < n && k < drop; i++)
		if (scheduled(labels[i]))
			out[k++] = labels[i];
	return k;
}
