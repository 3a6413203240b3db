/*
 * From a validated configuration to the ingress model: the host's :ingress
 * settings, and one route per container with a :domain and a :port. Pure:
 * the daemon supplies what only it knows (a container's address and whether
 * it can take traffic) through a callback. It lives in the daemon, which
 * imports both the configuration (core/) and the ingress driver, so that
 * neither of those imports the other.
 */
#include "daemon/ingress_conf.h"
#include "core/config.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ingress_set_from_conf(const struct conf *c, const char *dir,
			  int (*lookup)(void *ctx, const char *name, const char **address,
					enum ingress_state *state),
			  void *ctx, struct ingress_set *out, struct clbsd_err *err)
{
	const struct conf_host *h = &c->host;
	struct ingress_set set = {0};
	struct ingress_settings *s = &set.settings;
	s->dir = ingress_set_keep(&set, dir);
	for (size_t i = 0; h->listen && h->listen[i]; i++)
		strv_push(&set.listen, h->listen[i]);
	for (size_t i = 0; h->tls_listen && h->tls_listen[i]; i++)
		strv_push(&set.tls_listen, h->tls_listen[i]);
	s->listen = (const char *const *)set.listen.v;
	s->n_listen = set.listen.n;
	s->tls_listen = (const char *const *)set.tls_listen.v;
	s->n_tls_listen = set.tls_listen.n;
	s->default_domain = ingress_set_keep(&set, h->default_domain);
	if (h->tls_ca && strcmp(h->tls_ca, "auto") == 0) {
		s->tls_mode = INGRESS_TLS_AUTO;
		autofree char *ca = xasprintf("%s/ca", dir);
		s->ca_dir = ingress_set_keep(&set, ca);
	} else if (h->tls_ca) {
		ingress_set_release(&set);
		return clbsd_err_setmsg(
			err, CLBSD_E_UNAVAIL, ENOTSUP,
			":ingress :tls (:ca \"%s\"): a CA of your own is not "
			"supported yet; use (:ca auto), or put that CA's certificate "
			"and key in %s/ca as ca.pem and ca.key (0600) and use "
			"(:ca auto)",
			h->tls_ca, dir);
	}
	set.routes = xcalloc(c->ncontainers + 1, sizeof(*set.routes));
	for (size_t i = 0; i < c->ncontainers; i++) {
		const struct ctr_spec *ct = c->containers[i];
		if (!ct->domains || !ct->domains[0] || ct->port <= 0)
			continue;
		struct ingress_route *r = &set.routes[set.n];
		const char *address = NULL;
		enum ingress_state state = INGRESS_DOWN;
		if (lookup(ctx, ct->name, &address, &state) < 0) {
			address = NULL;
			state = INGRESS_DOWN;
		}
		if (!address && state == INGRESS_UP)
			state = INGRESS_STARTING; /* up without an address: not routable yet */
		size_t nd = strv_len(ct->domains);
		const char **doms = xcalloc(nd + 1, sizeof(char *));
		for (size_t j = 0; j < nd; j++) {
			char *full;
			if (ingress_domain_normalise(ct->domains[j], h->default_domain, &full,
						     err) < 0) {
				free(doms);
				ingress_set_release(&set);
				return clbsd_err_prefix(err, "container %s: :domain", ct->name);
			}
			doms[j] = ingress_set_keep(&set, full);
			free(full);
		}
		*r = (struct ingress_route){
			.service = ingress_set_keep(&set, ct->name),
			.domains = doms,
			.n_domains = nd,
			.path = ingress_set_keep(&set, ct->path),
			.address = ingress_set_keep(&set, address),
			.port = (uint16_t)ct->port,
			.state = state,
			.websocket = ct->ingress_websocket,
			.max_body = ct->ingress_max_body,
			.tls_cert = ingress_set_keep(&set, ct->tls_cert),
			.tls_key = ingress_set_keep(&set, ct->tls_key),
		};
		set.n++;
	}
	*out = set;
	return 0;
}
