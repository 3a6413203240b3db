/*
 * A set of ingress settings and routes that owns its strings: what the
 * daemon builds from the configuration (daemon/ingress_conf.c) and hands
 * to ingress_render().
 */
#include "ingress/ingress.h"
#include "util/util.h"

#include <stdlib.h>

void ingress_set_release(struct ingress_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		free((void *)(uintptr_t)set->routes[i].domains);
	free(set->routes);
	strv_release(&set->strings);
	strv_release(&set->listen);
	strv_release(&set->tls_listen);
	*set = (struct ingress_set){0};
}

const char *ingress_set_keep(struct ingress_set *set, const char *s)
{
	if (!s)
		return NULL;
	strv_push(&set->strings, s);
	return set->strings.v[set->strings.n - 1];
}
