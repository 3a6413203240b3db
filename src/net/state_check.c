/*
 * Validation of a whole networking state (net_state_check) and lookups in
 * it. Pure. The Linux driver runs the check before it touches the host, so
 * everything it renders into netlink messages and nft commands comes from
 * here checked.
 */
#include "net/net.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

const struct net_network *net_state_network(const struct net_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_nets; i++)
		if (strcmp(st->nets[i].name, name) == 0)
			return &st->nets[i];
	return NULL;
}

const struct net_container *net_state_container(const struct net_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_ctrs; i++)
		if (strcmp(st->ctrs[i].name, name) == 0)
			return &st->ctrs[i];
	return NULL;
}

const struct net_endpoint *net_primary_endpoint(const struct net_state *st,
						const struct net_container *c)
{
	for (size_t i = 0; i < c->n_eps; i++) {
		const struct net_network *n = net_state_network(st, c->eps[i].network);
		if (n && !n->internal)
			return &c->eps[i];
	}
	return NULL;
}

bool net_container_running(const struct net_container *c)
{
	return c->netns_fd >= 0 || c->pid > 0;
}

static int check_subnet(const struct net_network *n, const struct net_prefix *p, int family,
			struct clbsd_err *err)
{
	char b[NET_PREFIX_STRLEN];
	if (!p->addr.family)
		return 0;
	if (p->addr.family != family)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"network %s: subnet %s is in the wrong slot (IPv%d)",
					n->name, net_prefix_fmt(p, b), family == AF_INET ? 4 : 6);
	unsigned max = family == AF_INET ? 30 : 126;
	if (p->len > max)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"network %s: subnet %s is too small; use a /%u or larger",
					n->name, net_prefix_fmt(p, b), max);
	if (!net_prefix_valid(p))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"network %s: subnet %s has host bits set", n->name,
					net_prefix_fmt(p, b));
	return 0;
}

static int check_network(const struct net_state *st, size_t i, struct clbsd_err *err)
{
	const struct net_network *n = &st->nets[i];
	if (!n->name || !valid_name(n->name))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"network \"%s\": the name must be a DNS label",
					n->name ? n->name : "");
	if (!net_valid_ifname(n->bridge))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"network %s: bridge \"%s\" is not an interface name (1-15 "
					"of A-Z a-z 0-9 _ . -)",
					n->name, n->bridge ? n->bridge : "");
	if (!n->subnet4.addr.family && !n->subnet6.addr.family)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"network %s: no subnet; give it an IPv4 or IPv6 :subnet",
					n->name);
	if (check_subnet(n, &n->subnet4, AF_INET, err) < 0 ||
	    check_subnet(n, &n->subnet6, AF_INET6, err) < 0)
		return -EINVAL;
	for (size_t j = 0; j < i; j++) {
		const struct net_network *o = &st->nets[j];
		char b[NET_PREFIX_STRLEN];
		if (strcmp(o->name, n->name) == 0)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"network %s is declared twice", n->name);
		if (strcmp(o->bridge, n->bridge) == 0)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"networks %s and %s both use bridge %s", o->name,
						n->name, n->bridge);
		if (net_prefix_overlaps(&o->subnet4, &n->subnet4))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"network %s: subnet %s overlaps network %s's",
						n->name, net_prefix_fmt(&n->subnet4, b), o->name);
		if (net_prefix_overlaps(&o->subnet6, &n->subnet6))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"network %s: subnet %s overlaps network %s's",
						n->name, net_prefix_fmt(&n->subnet6, b), o->name);
	}
	return 0;
}

/* An endpoint's address for one family: present iff the subnet is, inside, not reserved. */
static int check_ip(const struct net_container *c, const struct net_network *n,
		    const struct net_prefix *sub, const struct net_addr *ip, struct clbsd_err *err)
{
	char a[NET_ADDR_STRLEN], b[NET_PREFIX_STRLEN];
	if (!sub->addr.family) {
		if (ip->family)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: address %s on network %s, which has "
						"no IPv%d subnet",
						c->name, net_addr_fmt(ip, a), n->name,
						ip->family == AF_INET ? 4 : 6);
		return 0;
	}
	if (!ip->family)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s: no IPv%d address on network %s (assign one "
					"with IPAM)",
					c->name, sub->addr.family == AF_INET ? 4 : 6, n->name);
	if (!net_prefix_contains(sub, ip))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s: address %s is outside network %s's subnet "
					"%s",
					c->name, net_addr_fmt(ip, a), n->name,
					net_prefix_fmt(sub, b));
	if (net_prefix_reserved(sub, ip))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s: address %s is reserved in %s (network, "
					"gateway or broadcast); pick another",
					c->name, net_addr_fmt(ip, a), net_prefix_fmt(sub, b));
	return 0;
}

static int check_endpoints(const struct net_state *st, size_t ci, struct clbsd_err *err)
{
	const struct net_container *c = &st->ctrs[ci];
	if (c->n_eps > NET_MAX_ENDPOINTS)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, E2BIG,
					"container %s: on %zu networks; at most %d are supported",
					c->name, c->n_eps, NET_MAX_ENDPOINTS);
	for (size_t i = 0; i < c->n_eps; i++) {
		const struct net_endpoint *e = &c->eps[i];
		const struct net_network *n = e->network ? net_state_network(st, e->network) : NULL;
		if (!n)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
						"container %s: unknown network \"%s\"; declare it "
						"with (network NAME :subnet CIDR)",
						c->name, e->network ? e->network : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->eps[j].network, e->network) == 0)
				return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
							"container %s: network %s listed twice",
							c->name, e->network);
		if (check_ip(c, n, &n->subnet4, &e->ip4, err) < 0 ||
		    check_ip(c, n, &n->subnet6, &e->ip6, err) < 0)
			return -EINVAL;
		for (size_t k = 0; k < e->n_aliases; k++)
			if (!e->aliases[k] || !valid_hostname(e->aliases[k]))
				return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
							"container %s: alias \"%s\" on network %s "
							"is not a host name",
							c->name, e->aliases[k] ? e->aliases[k] : "",
							n->name);
		/* The same address on one network twice. */
		for (size_t cj = 0; cj < ci; cj++) {
			const struct net_container *o = &st->ctrs[cj];
			for (size_t k = 0; k < o->n_eps; k++) {
				const struct net_endpoint *oe = &o->eps[k];
				if (strcmp(oe->network, e->network) != 0)
					continue;
				const struct net_addr *dup =
					e->ip4.family && net_addr_eq(&oe->ip4, &e->ip4)	  ? &e->ip4
					: e->ip6.family && net_addr_eq(&oe->ip6, &e->ip6) ? &e->ip6
											  : NULL;
				char a[NET_ADDR_STRLEN];
				if (dup)
					return clbsd_err_setmsg(
						err, CLBSD_E_CONFLICT, EADDRINUSE,
						"container %s: address %s on network %s is also "
						"container %s's",
						c->name, net_addr_fmt(dup, a), n->name, o->name);
			}
		}
	}
	return 0;
}

/* Two published ports that would catch the same packets. */
static bool ports_clash(const struct net_port *a, const struct net_port *b)
{
	if (a->proto != b->proto || a->host_port != b->host_port)
		return false;
	return !a->host_ip.family || !b->host_ip.family || net_addr_eq(&a->host_ip, &b->host_ip);
}

static int check_ports(const struct net_state *st, size_t ci, struct clbsd_err *err)
{
	const struct net_container *c = &st->ctrs[ci];
	if (c->n_ports == 0)
		return 0;
	const struct net_endpoint *ep = net_primary_endpoint(st, c);
	for (size_t i = 0; i < c->n_ports; i++) {
		const struct net_port *p = &c->ports[i];
		char b[96];
		if ((p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || !p->port ||
		    !p->host_port)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: published port %s is not valid (tcp "
						"or udp, ports 1-65535)",
						c->name, net_port_fmt(p, b));
		if (!ep)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: :publish %s needs a network that is "
						"not internal",
						c->name, net_port_fmt(p, b));
		if (p->host_ip.family == AF_INET6 && net_addr_is_loopback(&p->host_ip))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: :publish %s: IPv6 loopback cannot "
						"be forwarded to a container (the kernel never "
						"routes ::1 off the host); use 127.0.0.1 or a host "
						"address",
						c->name, net_port_fmt(p, b));
		if ((p->host_ip.family == AF_INET && !ep->ip4.family) ||
		    (p->host_ip.family == AF_INET6 && !ep->ip6.family))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: :publish %s: network %s has no "
						"IPv%d subnet",
						c->name, net_port_fmt(p, b), ep->network,
						p->host_ip.family == AF_INET ? 4 : 6);
		for (size_t cj = 0; cj <= ci; cj++) {
			const struct net_container *o = &st->ctrs[cj];
			size_t lim = cj == ci ? i : o->n_ports;
			for (size_t k = 0; k < lim; k++)
				if (ports_clash(&o->ports[k], p))
					return clbsd_err_setmsg(
						err, CLBSD_E_CONFLICT, EADDRINUSE,
						"container %s: :publish %s collides with %s of "
						"container %s; publish another host port",
						c->name, net_port_fmt(p, b),
						net_port_fmt(&o->ports[k], (char[96]){0}), o->name);
		}
	}
	return 0;
}

int net_state_check(const struct net_state *st, struct clbsd_err *err)
{
	for (size_t i = 0; i < st->n_nets; i++)
		if (check_network(st, i, err) < 0)
			return -err->code;
	for (size_t i = 0; i < st->n_ctrs; i++) {
		const struct net_container *c = &st->ctrs[i];
		if (!c->name || !valid_name(c->name))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container \"%s\": the name must be a DNS label",
						c->name ? c->name : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(st->ctrs[j].name, c->name) == 0)
				return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
							"container %s is listed twice", c->name);
		if (check_endpoints(st, i, err) < 0 || check_ports(st, i, err) < 0)
			return -err->code;
	}
	return 0;
}
