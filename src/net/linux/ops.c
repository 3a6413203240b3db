/*
 * struct net_ops for Linux: bridges, veths, addresses and routes over
 * netlink, rules through libnftables. docs/network.md has the design.
 *
 * Every op takes one process-wide lock: ops are short (a few netlink
 * round trips and at most one nft transaction), and a repair computed from
 * a listing must not interleave with an attach that changes it.
 *
 * Each op checks the state first (net_state_check), so the names and
 * addresses that reach netlink and nft are known to be well-formed, then
 * works idempotently: it looks at what exists and makes what is missing.
 */
#include "net/linux/net_linux.h"
#include "util/hash.h"

#include <errno.h>
#include <net/if.h>
#include <netlink/route/link/veth.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static pthread_mutex_t op_lock = PTHREAD_MUTEX_INITIALIZER;

void nlx_lock(void)
{
	pthread_mutex_lock(&op_lock);
}

void nlx_unlock(void)
{
	pthread_mutex_unlock(&op_lock);
}

static void note(struct net_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(struct net_report *rep, const char *fmt, ...)
{
	if (!rep)
		return;
	va_list ap;
	va_start(ap, fmt);
	strv_push_owned(&rep->changes, xvasprintf(fmt, ap));
	va_end(ap);
}

/* ---- networks ---- */

/* A locally administered MAC: 02:PREFIX:four bytes. */
static void mac_from(uint8_t prefix, const uint8_t four[4], uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = prefix;
	memcpy(mac + 2, four, 4);
}

static void bridge_mac(const char *bridge, uint8_t mac[6])
{
	char h[65];
	uint8_t four[4];
	hash_sha256_hex(bridge, strlen(bridge), h);
	for (int i = 0; i < 4; i++)
		four[i] = (uint8_t)strtoul((char[3]){h[2 * i], h[2 * i + 1], 0}, NULL, 16);
	mac_from(0xcc, four, mac);
}

static void endpoint_mac(const struct net_endpoint *e, uint8_t mac[6])
{
	const uint8_t *four = e->ip4.family ? e->ip4.b : e->ip6.b + 12;
	mac_from(0xcb, four, mac);
}

/* Turn forwarding on for a family when it is off. */
static int forwarding_on(const char *path, struct net_report *rep, struct clbsd_err *err)
{
	char v[16];
	if (nlx_sysctl_get(path, v, sizeof(v), err) < 0)
		return -err->code;
	if (strcmp(v, "0") != 0)
		return 0;
	if (nlx_sysctl_set(path, "1", err) < 0)
		return clbsd_err_prefix(err, "enable forwarding");
	if (rep) {
		autofree char *name = nlx_sysctl_name(path);
		rep->forwarding_enabled = true;
		note(rep, "enabled %s (was 0)", name);
	}
	return 0;
}

/*
 * The bridge of n exists, is clbsd's, is up and has exactly the gateway
 * addresses; *ifindex is its index.
 */
static int bridge_ensure(struct nl_sock *sk, const struct net_network *n, struct net_report *rep,
			 int *ifindex, struct clbsd_err *err)
{
	autofree char *alias = nlx_alias_network(n->name);
	autolink struct rtnl_link *l = NULL;
	int r = nlx_link_get(sk, n->bridge, &l, err);
	if (r == -ENODEV) {
		uint8_t mac[6];
		bridge_mac(n->bridge, mac);
		if (nlx_bridge_add(sk, n->bridge, mac, err) < 0 ||
		    nlx_link_get(sk, n->bridge, &l, err) < 0 ||
		    nlx_link_set_alias(sk, l, alias, err) < 0)
			return clbsd_err_prefix(err, "network %s", n->name);
		note(rep, "created bridge %s for network %s", n->bridge, n->name);
	} else if (r < 0) {
		return clbsd_err_prefix(err, "network %s", n->name);
	} else if (strcmp(nlx_link_alias(l), alias) != 0) {
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"network %s: interface %s exists and is not this network's "
					"bridge (alias \"%s\"); remove it or choose another bridge "
					"name",
					n->name, n->bridge, nlx_link_alias(l));
	}
	if (nlx_link_up(sk, l, err) < 0)
		return clbsd_err_prefix(err, "network %s", n->name);
	int idx = rtnl_link_get_ifindex(l);
	/* Gateway addresses: add what is missing, drop what an older subnet left. */
	struct nlx_addr *have = NULL;
	size_t nh = 0;
	if (nlx_addr_list(sk, idx, &have, &nh, err) < 0)
		return clbsd_err_prefix(err, "network %s", n->name);
	const struct net_prefix *subs[2] = {&n->subnet4, &n->subnet6};
	struct net_addr gw[2];
	for (int f = 0; f < 2; f++) {
		if (!subs[f]->addr.family)
			continue;
		net_prefix_gateway(subs[f], &gw[f]);
		bool found = false;
		for (size_t i = 0; i < nh && !found; i++)
			found = net_addr_eq(&have[i].a, &gw[f]) && have[i].len == subs[f]->len;
		if (found)
			continue;
		char b[NET_ADDR_STRLEN];
		if (nlx_addr_add(sk, idx, &gw[f], subs[f]->len, err) < 0) {
			free(have);
			return clbsd_err_prefix(err, "network %s: bridge %s", n->name, n->bridge);
		}
		note(rep, "added %s/%u to bridge %s", net_addr_fmt(&gw[f], b), subs[f]->len,
		     n->bridge);
	}
	for (size_t i = 0; i < nh; i++) {
		int f = have[i].a.family == AF_INET ? 0 : 1;
		if (subs[f]->addr.family && net_addr_eq(&have[i].a, &gw[f]) &&
		    have[i].len == subs[f]->len)
			continue;
		char b[NET_ADDR_STRLEN];
		if (nlx_addr_del(sk, idx, &have[i].a, have[i].len, err) < 0) {
			free(have);
			return clbsd_err_prefix(err, "network %s: bridge %s", n->name, n->bridge);
		}
		note(rep, "removed stale address %s/%u from bridge %s", net_addr_fmt(&have[i].a, b),
		     have[i].len, n->bridge);
	}
	free(have);
	if (n->subnet4.addr.family) {
		/*
		 * Connections from the host to 127.0.0.1:PORT are DNATed to a
		 * container and leave through the bridge with a loopback
		 * source, which the kernel drops unless route_localnet is on
		 * for the bridge (then they are masqueraded to the gateway).
		 */
		autofree char *rl = xasprintf("net/ipv4/conf/%s/route_localnet", n->bridge);
		char v[16];
		if (nlx_sysctl_get(rl, v, sizeof(v), err) < 0)
			return clbsd_err_prefix(err, "network %s", n->name);
		if (strcmp(v, "1") != 0 && nlx_sysctl_set(rl, "1", err) < 0)
			return clbsd_err_prefix(err, "network %s", n->name);
	}
	if (!n->internal) {
		if (n->subnet4.addr.family && forwarding_on("net/ipv4/ip_forward", rep, err) < 0)
			return clbsd_err_prefix(err, "network %s", n->name);
		if (n->subnet6.addr.family &&
		    forwarding_on("net/ipv6/conf/all/forwarding", rep, err) < 0)
			return clbsd_err_prefix(err, "network %s (IPv6)", n->name);
	}
	*ifindex = idx;
	return 0;
}

/* The single network as a state, for the check. */
static int check_network(const struct net_network *n, struct clbsd_err *err)
{
	struct net_state st = {n, 1, NULL, 0};
	return net_state_check(&st, err);
}

/* The owner prefixes an op on these networks (and container) may change. */
struct scope {
	struct strv v;
};

static void scope_add(struct scope *s, char *owned)
{
	strv_push_owned(&s->v, owned);
}

static int up_locked(const struct net_network *n, struct net_report *rep, struct clbsd_err *err)
{
	autonl struct nl_sock *sk = NULL;
	int idx;
	if (nlx_open(-1, &sk, err) < 0 || bridge_ensure(sk, n, rep, &idx, err) < 0)
		return -err->code;
	struct net_ruleset want = {0};
	net_rules_base(&want);
	net_rules_network(&want, n);
	struct scope s = {STRV_INIT};
	scope_add(&s, xstrdup(NET_OWNER_BASE));
	scope_add(&s, net_owner_network(n->name));
	int r = nftx_sync(&want, (const char *const *)s.v.v, rep, err);
	if (r < 0)
		clbsd_err_prefix(err, "network %s", n->name);
	strv_release(&s.v);
	net_ruleset_release(&want);
	return r;
}

static int network_up(const struct net_network *n, struct net_report *rep, struct clbsd_err *err)
{
	if (check_network(n, err) < 0)
		return -err->code;
	nlx_lock();
	int r = up_locked(n, rep, err);
	nlx_unlock();
	return r;
}

/* Names of the links enslaved to ifindex, comma-separated ("" when none). */
static int ports_of(struct nl_sock *sk, int ifindex, char **out, struct clbsd_err *err)
{
	struct nl_cache *c = NULL;
	if (nlx_link_cache(sk, &c, err) < 0)
		return -err->code;
	struct buf b = BUF_INIT;
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		if (rtnl_link_get_master(l) != ifindex)
			continue;
		const char *a = nlx_link_alias(l);
		buf_addf(&b, "%s%s", b.len ? ", " : "", rtnl_link_get_name(l));
		if (strncmp(a, NLX_ALIAS_CTR, strlen(NLX_ALIAS_CTR)) == 0)
			buf_addf(&b, " (%s)", a + strlen(NLX_ALIAS_CTR));
	}
	nl_cache_free(c);
	*out = buf_detach(&b, NULL);
	return 0;
}

/* Delete table inet clbsd when no network is left in it. */
static int drop_empty_table(struct clbsd_err *err)
{
	struct net_nft have;
	if (nftx_list(&have, err) < 0)
		return -err->code;
	bool used = false;
	for (size_t i = 0; i < have.chains.n && !used; i++)
		used = strncmp(have.chains.v[i], "n-", 2) == 0;
	for (size_t i = 0; i < have.n_rules && !used; i++)
		used = strcmp(have.rules[i].chain, "ports") == 0;
	bool table = have.table;
	net_nft_release(&have);
	if (!table || used)
		return 0;
	return nftx_run("delete table inet " NET_NFT_TABLE "\n", err);
}

static int down_locked(const struct net_network *n, struct clbsd_err *err)
{
	autonl struct nl_sock *sk = NULL;
	if (nlx_open(-1, &sk, err) < 0)
		return -err->code;
	autofree char *alias = nlx_alias_network(n->name);
	autolink struct rtnl_link *l = NULL;
	int r = nlx_link_get(sk, n->bridge, &l, err);
	if (r < 0 && r != -ENODEV)
		return clbsd_err_prefix(err, "network %s", n->name);
	bool ours = l && strcmp(nlx_link_alias(l), alias) == 0;
	if (ours) {
		autofree char *ports = NULL;
		if (ports_of(sk, rtnl_link_get_ifindex(l), &ports, err) < 0)
			return clbsd_err_prefix(err, "network %s", n->name);
		if (*ports)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						"network %s: still in use by %s; detach those "
						"containers first",
						n->name, ports);
	}
	struct net_ruleset none = {0};
	autofree char *owner = net_owner_network(n->name);
	const char *scope[] = {owner, NULL};
	if (nftx_sync(&none, scope, NULL, err) < 0 || drop_empty_table(err) < 0)
		return clbsd_err_prefix(err, "network %s", n->name);
	if (ours && nlx_link_del(sk, n->bridge, err) < 0)
		return clbsd_err_prefix(err, "network %s", n->name);
	return 0;
}

static int network_down(const struct net_network *n, struct clbsd_err *err)
{
	if (check_network(n, err) < 0)
		return -err->code;
	nlx_lock();
	int r = down_locked(n, err);
	nlx_unlock();
	return r;
}

/* ---- containers ---- */

/* Delete every link whose alias marks it as a veth of container `name`. */
static int del_veths(struct nl_sock *sk, const char *name, struct net_report *rep,
		     struct clbsd_err *err)
{
	struct nl_cache *c = NULL;
	if (nlx_link_cache(sk, &c, err) < 0)
		return -err->code;
	autofree char *prefix = xasprintf(NLX_ALIAS_CTR "%s:", name);
	struct strv dead = STRV_INIT;
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		if (strncmp(nlx_link_alias(l), prefix, strlen(prefix)) == 0)
			strv_push(&dead, rtnl_link_get_name(l));
	}
	nl_cache_free(c);
	int r = 0;
	for (size_t i = 0; i < dead.n && r == 0; i++) {
		r = nlx_link_del(sk, dead.v[i], err);
		if (r == 0)
			note(rep, "removed veth %s of container %s", dead.v[i], name);
	}
	strv_release(&dead);
	return r;
}

/*
 * The idx-th endpoint's veth pair exists and is configured: ethIDX in the
 * container with its addresses, up; the host side on the bridge, up.
 * *made tells whether a pair was created.
 */
static int veth_ensure(struct nl_sock *sk, struct nl_sock *ns, int nsfd,
		       const struct net_container *c, size_t idx, const struct net_network *n,
		       int br, struct net_report *rep, bool *made, struct clbsd_err *err)
{
	const struct net_endpoint *e = &c->eps[idx];
	char host[NET_IFNAMSIZ], peer[NET_IFNAMSIZ];
	net_veth_name(c->name, idx, host);
	nlx_peer_name(idx, peer);
	autofree char *alias = nlx_alias_endpoint(c->name, n->name);
	autolink struct rtnl_link *hl = NULL, *pl = NULL;
	int r = nlx_link_get(sk, host, &hl, err);
	if (r < 0 && r != -ENODEV)
		return -err->code;
	r = nlx_link_get(ns, peer, &pl, err);
	if (r < 0 && r != -ENODEV)
		return -err->code;
	bool paired = hl && pl && rtnl_link_get_link(pl) == rtnl_link_get_ifindex(hl) &&
		      strcmp(nlx_link_alias(hl), alias) == 0;
	if (!paired) {
		if (hl) {
			/* Ours from an earlier run (its namespace may be dying), or a clash. */
			const char *a = nlx_link_alias(hl);
			autofree char *mine = xasprintf(NLX_ALIAS_CTR "%s:", c->name);
			if (strncmp(a, mine, strlen(mine)) != 0)
				return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
							"interface %s exists and is not container "
							"%s's (alias \"%s\"); remove it",
							host, c->name, a);
			if (nlx_link_del(sk, host, err) < 0)
				return -err->code;
			note(rep, "removed stale veth %s", host);
			nlx_linkp(&hl);
		}
		if (pl)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
						"container %s already has an interface %s that "
						"clbsd did not make",
						c->name, peer);
		uint8_t mac[6];
		endpoint_mac(e, mac);
		if (nlx_veth_add(sk, host, br, peer, nsfd, mac, err) < 0 ||
		    nlx_link_get(sk, host, &hl, err) < 0)
			return -err->code;
		*made = true;
		/* The kernel ignores an alias at creation; the mark goes on now. */
		if (nlx_link_set_alias(sk, hl, alias, err) < 0 ||
		    nlx_port_hairpin(sk, rtnl_link_get_ifindex(hl), err) < 0)
			return -err->code;
		if (nlx_link_get(ns, peer, &pl, err) < 0)
			return clbsd_err_prefix(err, "the new %s", peer);
		note(rep, "created veth %s (%s of container %s) on network %s", host, peer, c->name,
		     n->name);
	} else {
		if (rtnl_link_get_master(hl) != br && nlx_link_set_master(sk, hl, br, err) < 0)
			return -err->code;
		if (nlx_port_hairpin(sk, rtnl_link_get_ifindex(hl), err) < 0)
			return -err->code;
		if (nlx_link_up(sk, hl, err) < 0)
			return -err->code;
	}
	int pidx = rtnl_link_get_ifindex(pl);
	const struct net_addr *ips[2] = {&e->ip4, &e->ip6};
	const struct net_prefix *subs[2] = {&n->subnet4, &n->subnet6};
	for (int f = 0; f < 2; f++)
		if (ips[f]->family && nlx_addr_add(ns, pidx, ips[f], subs[f]->len, err) < 0)
			return clbsd_err_prefix(err, "%s in the container", peer);
	return nlx_link_up(ns, pl, err);
}

/* lo up and the default routes via the primary endpoint's gateways. */
static int routes_ensure(struct nl_sock *ns, const struct net_state *st,
			 const struct net_container *c, struct clbsd_err *err)
{
	autolink struct rtnl_link *lo = NULL;
	if (nlx_link_get(ns, "lo", &lo, err) < 0 || nlx_link_up(ns, lo, err) < 0)
		return clbsd_err_prefix(err, "lo in the container");
	const struct net_endpoint *ep = net_primary_endpoint(st, c);
	if (!ep)
		return 0; /* internal networks only: no way out */
	const struct net_network *n = net_state_network(st, ep->network);
	size_t idx = (size_t)(ep - c->eps);
	char peer[NET_IFNAMSIZ];
	nlx_peer_name(idx, peer);
	autolink struct rtnl_link *pl = NULL;
	if (nlx_link_get(ns, peer, &pl, err) < 0)
		return clbsd_err_prefix(err, "%s in the container", peer);
	const struct net_prefix *subs[2] = {&n->subnet4, &n->subnet6};
	const struct net_addr *ips[2] = {&ep->ip4, &ep->ip6};
	for (int f = 0; f < 2; f++) {
		if (!ips[f]->family)
			continue;
		struct net_addr gw;
		net_prefix_gateway(subs[f], &gw);
		if (nlx_route_default(ns, &gw, rtnl_link_get_ifindex(pl), err) < 0)
			return clbsd_err_prefix(err, "in the container");
	}
	return 0;
}

/* The links of a running container: bridges first, then one veth per endpoint. */
static int plumb(struct nl_sock *sk, const struct net_state *st, const struct net_container *c,
		 struct net_report *rep, bool *made, struct clbsd_err *err)
{
	autoclose int nsfd = -1;
	autonl struct nl_sock *ns = NULL;
	if (c->external) {
		/* dockerd plumbs it: only the bridges it joins are ours to make. */
		for (size_t i = 0; i < c->n_eps; i++) {
			int br;
			if (bridge_ensure(sk, net_state_network(st, c->eps[i].network), rep, &br,
					  err) < 0)
				return -err->code;
		}
		return 0;
	}
	if (nlx_netns_open(c, &nsfd, err) < 0 || nlx_open(nsfd, &ns, err) < 0)
		return -err->code;
	for (size_t i = 0; i < c->n_eps; i++) {
		const struct net_network *n = net_state_network(st, c->eps[i].network);
		int br;
		if (bridge_ensure(sk, n, rep, &br, err) < 0 ||
		    veth_ensure(sk, ns, nsfd, c, i, n, br, rep, made, err) < 0)
			return -err->code;
	}
	return routes_ensure(ns, st, c, err);
}

static int attach_locked(const struct net_state *st, const struct net_container *c,
			 struct net_report *rep, struct clbsd_err *err)
{
	autonl struct nl_sock *sk = NULL;
	if (nlx_open(-1, &sk, err) < 0)
		return -err->code;
	bool made = false;
	int r = plumb(sk, st, c, rep, &made, err);
	if (r == 0) {
		struct net_ruleset want = {0};
		struct scope s = {STRV_INIT};
		net_rules_base(&want);
		scope_add(&s, xstrdup(NET_OWNER_BASE));
		for (size_t i = 0; i < c->n_eps; i++) {
			net_rules_network(&want, net_state_network(st, c->eps[i].network));
			scope_add(&s, net_owner_network(c->eps[i].network));
		}
		net_rules_container(&want, st, c);
		scope_add(&s, net_owner_container(c->name));
		r = nftx_sync(&want, (const char *const *)s.v.v, rep, err);
		strv_release(&s.v);
		net_ruleset_release(&want);
	}
	if (r < 0 && made) {
		/* Leave nothing half made behind: the next attach starts clean. */
		struct clbsd_err e2;
		struct net_ruleset none = {0};
		autofree char *owner = net_owner_container(c->name);
		const char *scope[] = {owner, NULL};
		del_veths(sk, c->name, NULL, &e2);
		nftx_sync(&none, scope, NULL, &e2);
	}
	return r;
}

static int attach(const struct net_state *st, const char *name, struct net_report *rep,
		  struct clbsd_err *err)
{
	if (net_state_check(st, err) < 0)
		return -err->code;
	const struct net_container *c = net_state_container(st, name);
	if (!c)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"attach %s: not in the network state", name);
	nlx_lock();
	int r = attach_locked(st, c, rep, err);
	nlx_unlock();
	return r < 0 ? clbsd_err_prefix(err, "container %s: network", name) : 0;
}

static int detach(const char *name, struct clbsd_err *err)
{
	if (!valid_name(name))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"detach \"%s\": not a container name", name);
	nlx_lock();
	autonl struct nl_sock *sk = NULL;
	int r = nlx_open(-1, &sk, err);
	if (r == 0)
		r = del_veths(sk, name, NULL, err);
	if (r == 0) {
		struct net_ruleset none = {0};
		autofree char *owner = net_owner_container(name);
		const char *scope[] = {owner, NULL};
		r = nftx_sync(&none, scope, NULL, err);
	}
	nlx_unlock();
	return r < 0 ? clbsd_err_prefix(err, "container %s: detach from the network", name) : 0;
}

/* ---- repair ---- */

/* Is link l (with a clbsd alias) something st wants? */
static bool wanted_link(const struct net_state *st, struct rtnl_link *l)
{
	const char *a = nlx_link_alias(l), *name = rtnl_link_get_name(l);
	if (strncmp(a, NLX_ALIAS_NET, strlen(NLX_ALIAS_NET)) == 0) {
		const struct net_network *n = net_state_network(st, a + strlen(NLX_ALIAS_NET));
		return n && strcmp(n->bridge, name) == 0;
	}
	/* "clbsd:ctr=NAME:net=NET" */
	const char *rest = a + strlen(NLX_ALIAS_CTR);
	const char *sep = strstr(rest, ":net=");
	if (!sep)
		return false;
	autofree char *ctr = xstrndup(rest, (size_t)(sep - rest));
	const struct net_container *c = net_state_container(st, ctr);
	if (!c || !net_container_running(c))
		return false;
	for (size_t i = 0; i < c->n_eps; i++) {
		char host[NET_IFNAMSIZ];
		net_veth_name(c->name, i, host);
		if (strcmp(c->eps[i].network, sep + 5) == 0 && strcmp(host, name) == 0)
			return true;
	}
	return false;
}

/* Remove clbsd's links that st does not want: veths first, then bridges. */
static int prune_links(struct nl_sock *sk, const struct net_state *st, struct net_report *rep,
		       struct clbsd_err *err)
{
	struct nl_cache *c = NULL;
	if (nlx_link_cache(sk, &c, err) < 0)
		return -err->code;
	struct strv veths = STRV_INIT, bridges = STRV_INIT;
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *a = nlx_link_alias(l);
		bool net = strncmp(a, NLX_ALIAS_NET, strlen(NLX_ALIAS_NET)) == 0;
		bool ctr = strncmp(a, NLX_ALIAS_CTR, strlen(NLX_ALIAS_CTR)) == 0;
		if ((net || ctr) && !wanted_link(st, l))
			strv_push(net ? &bridges : &veths, rtnl_link_get_name(l));
	}
	nl_cache_free(c);
	int r = 0;
	for (size_t i = 0; i < veths.n && r == 0; i++)
		if ((r = nlx_link_del(sk, veths.v[i], err)) == 0)
			note(rep, "removed stale veth %s", veths.v[i]);
	for (size_t i = 0; i < bridges.n && r == 0; i++)
		if ((r = nlx_link_del(sk, bridges.v[i], err)) == 0)
			note(rep, "removed stale bridge %s", bridges.v[i]);
	strv_release(&veths);
	strv_release(&bridges);
	return r;
}

static int repair_locked(const struct net_state *st, struct net_report *rep, struct clbsd_err *err)
{
	autonl struct nl_sock *sk = NULL;
	if (nlx_open(-1, &sk, err) < 0)
		return -err->code;
	/* Keep going past a failure: one broken container must not hold back the rest. */
	int first = 0;
	struct clbsd_err e;
	if (prune_links(sk, st, rep, &e) < 0) {
		first = -e.code;
		*err = e;
	}
	for (size_t i = 0; i < st->n_nets; i++) {
		int idx;
		if (bridge_ensure(sk, &st->nets[i], rep, &idx, &e) < 0) {
			note(rep, "failed: %s", e.msg);
			if (!first) {
				first = -e.code;
				*err = e;
			}
		}
	}
	for (size_t i = 0; i < st->n_ctrs; i++) {
		const struct net_container *c = &st->ctrs[i];
		bool made = false;
		if (!net_container_running(c) || c->n_eps == 0)
			continue;
		if (plumb(sk, st, c, rep, &made, &e) < 0) {
			clbsd_err_prefix(&e, "container %s", c->name);
			note(rep, "failed: %s", e.msg);
			if (!first) {
				first = -e.code;
				*err = e;
			}
		}
	}
	struct net_ruleset want = {0};
	if (net_rules_build(st, &want, &e) < 0 || nftx_sync(&want, NULL, rep, &e) < 0) {
		if (!first) {
			first = -e.code;
			*err = e;
		}
	}
	net_ruleset_release(&want);
	return first;
}

static int repair(const struct net_state *st, struct net_report *rep, struct clbsd_err *err)
{
	if (net_state_check(st, err) < 0)
		return -err->code;
	nlx_lock();
	int r = repair_locked(st, rep, err);
	nlx_unlock();
	return r < 0 ? clbsd_err_prefix(err, "network repair") : 0;
}

static const struct net_ops linux_ops = {
	.name = "linux",
	.network_up = network_up,
	.network_down = network_down,
	.attach = attach,
	.detach = detach,
	.repair = repair,
	.doctor = net_linux_doctor,
};

const struct net_ops *net_default_ops(void)
{
	return &linux_ops;
}
