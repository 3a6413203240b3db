/*
 * The configuration's ingress (ingress_conf.c): pure, and in the daemon
 * because it reads both the configuration (core/config.h) and the ingress
 * driver's model (ingress/ingress.h), which import neither each other.
 */
#ifndef CLBSD_DAEMON_INGRESS_CONF_H
#define CLBSD_DAEMON_INGRESS_CONF_H

#include "ingress/ingress.h"

struct conf;
/*
 * The ingress of configuration c with its directory dir (<root>/ingress;
 * with :tls (:ca auto) the CA lives in dir/ca): one route per container
 * that has a :domain and a :port, in the configuration's order, domains
 * normalised with the default domain. lookup tells, for a container name,
 * its address (NULL when it has none) and its state; when it fails, or
 * gives INGRESS_UP without an address, the route is INGRESS_DOWN or
 * INGRESS_STARTING. A :tls (:ca PATH) of the user's own is refused
 * (CLBSD_E_UNAVAIL) with what to do instead. Nothing is checked beyond
 * normalisation: ingress_render() checks.
 */
int ingress_set_from_conf(const struct conf *c, const char *dir,
			  int (*lookup)(void *ctx, const char *name, const char **address,
					enum ingress_state *state),
			  void *ctx, struct ingress_set *out, struct clbsd_err *err);

#endif
