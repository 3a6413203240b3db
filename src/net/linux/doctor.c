/*
 * The doctor op: checks one container's networking piece by piece and says,
 * for each piece, "ok ..." or "bad ...: what is wrong; fix: what to do".
 * It only reads: netlink, nft's listing, /proc/sys, /proc/net and /proc/PID/fd.
 */
#include "net/linux/net_linux.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct doc {
	struct strv *lines;
	size_t bad;
};

static void ok(struct doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(struct doc *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *s = xvasprintf(fmt, ap);
	va_end(ap);
	strv_push_owned(d->lines, xasprintf("ok %s", s));
}

/* "bad WHAT; fix: FIX" */
static void bad(struct doc *d, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void bad(struct doc *d, const char *fix, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *s = xvasprintf(fmt, ap);
	va_end(ap);
	strv_push_owned(d->lines, xasprintf("bad %s; fix: %s", s, fix));
	d->bad++;
}

/* ---- nft ---- */

/* Every rule of rs whose owner starts with `owner` is in the table; a line per missing one. */
static void check_rules(struct doc *d, const struct net_ruleset *rs, const struct net_nft *have,
			const char *owner, const char *what)
{
	size_t n = 0, missing = 0;
	for (size_t i = 0; i < rs->n_rules; i++) {
		const struct net_rule *r = &rs->rules[i];
		if (strncmp(r->comment, owner, strlen(owner)) != 0)
			continue;
		n++;
		if (net_nft_find(have, r->chain, r->comment))
			continue;
		missing++;
		bad(d, NLX_FIX_REPAIR, "nft rule of %s is missing from chain %s: %s (comment %s)",
		    what, r->chain, r->desc, r->comment);
	}
	if (!missing && n)
		ok(d, "nft rules of %s are in table inet " NET_NFT_TABLE " (%zu)", what, n);
}

/* ---- sockets holding a port on the host ---- */

struct holder {
	char addr[NET_ADDR_STRLEN + 8];
	unsigned long inode;
};

/* Parse one /proc/net/{tcp,udp}{,6} line's local address, state and inode. */
static bool parse_sock(const char *line, bool v6, struct net_addr *a, unsigned *port,
		       unsigned *state, unsigned long *inode)
{
	char local[64], rem[64];
	unsigned st;
	unsigned long ino;
	if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*u %*u %lu", local, rem, &st, &ino) != 4)
		return false;
	char *colon = strchr(local, ':');
	if (!colon)
		return false;
	*colon = '\0';
	*port = (unsigned)strtoul(colon + 1, NULL, 16);
	memset(a, 0, sizeof(*a));
	size_t words = v6 ? 4 : 1;
	if (strlen(local) != words * 8)
		return false;
	for (size_t w = 0; w < words; w++) {
		char hex[9];
		memcpy(hex, local + w * 8, 8);
		hex[8] = '\0';
		/* The kernel prints each 32-bit word in host byte order. */
		uint32_t v = (uint32_t)strtoul(hex, NULL, 16);
		memcpy(a->b + w * 4, &v, 4);
	}
	a->family = v6 ? AF_INET6 : AF_INET;
	*state = st;
	*inode = ino;
	return true;
}

static bool is_any(const struct net_addr *a)
{
	for (size_t i = 0; i < (a->family == AF_INET ? 4u : 16u); i++)
		if (a->b[i])
			return false;
	return true;
}

/* Sockets on the host bound to p's host port (listening, for TCP). */
static void holders(const struct net_port *p, struct holder **out, size_t *n)
{
	static const char *const tcp[] = {"tcp", "tcp6"}, *const udp[] = {"udp", "udp6"};
	const char *const *files = p->proto == IPPROTO_TCP ? tcp : udp;
	*out = NULL;
	*n = 0;
	for (int f = 0; f < 2; f++) {
		autofree char *path = xasprintf("/proc/thread-self/net/%s", files[f]);
		autofclose FILE *fp = fopen(path, "re");
		char line[512];
		if (!fp)
			continue;
		while (fgets(line, sizeof(line), fp)) {
			struct net_addr a;
			unsigned port, state;
			unsigned long inode;
			if (!parse_sock(line, f == 1, &a, &port, &state, &inode) ||
			    port != p->host_port)
				continue;
			/* TCP_LISTEN is 0x0A; a UDP socket bound to the port is 0x07. */
			if ((p->proto == IPPROTO_TCP && state != 0x0A) ||
			    (p->proto == IPPROTO_UDP && state != 0x07))
				continue;
			if (p->host_ip.family && !is_any(&a) && !net_addr_eq(&a, &p->host_ip))
				continue;
			*out = xrealloc(*out, (*n + 1) * sizeof(**out));
			struct holder *h = &(*out)[(*n)++];
			char b[NET_ADDR_STRLEN];
			snprintf(h->addr, sizeof(h->addr), f == 1 ? "[%s]:%u" : "%s:%u",
				 net_addr_fmt(&a, b), port);
			h->inode = inode;
		}
	}
}

/* "pid 123 (nginx)" for the process holding socket inode, or "an unknown process". */
static char *owner_of(unsigned long inode)
{
	char want[64];
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	DIR *proc = opendir("/proc");
	if (!proc)
		return xstrdup("an unknown process");
	struct dirent *de;
	char *found = NULL;
	while (!found && (de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		autofree char *fds = xasprintf("/proc/%ld/fd", pid);
		DIR *fd = opendir(fds);
		if (!fd)
			continue;
		struct dirent *fe;
		while (!found && (fe = readdir(fd))) {
			char link[64], path[320];
			snprintf(path, sizeof(path), "%s/%s", fds, fe->d_name);
			ssize_t k = readlink(path, link, sizeof(link) - 1);
			if (k <= 0)
				continue;
			link[k] = '\0';
			if (strcmp(link, want) != 0)
				continue;
			char comm[64] = "?";
			autofree char *cp = xasprintf("/proc/%ld/comm", pid);
			autofclose FILE *cf = fopen(cp, "re");
			if (cf && fgets(comm, sizeof(comm), cf))
				comm[strcspn(comm, "\n")] = '\0';
			found = xasprintf("pid %ld (%s)", pid, comm);
		}
		closedir(fd);
	}
	closedir(proc);
	return found ? found : xstrdup("an unknown process");
}

static void check_ports(struct doc *d, const struct net_state *st, const struct net_container *c,
			const struct net_nft *have)
{
	struct net_ruleset rs = {0};
	net_rules_container(&rs, st, c);
	for (size_t i = 0; i < c->n_ports; i++) {
		const struct net_port *p = &c->ports[i];
		char pb[96];
		net_port_fmt(p, pb);
		autofree char *prefix = xasprintf("publish %s to ", pb);
		size_t n = 0, missing = 0;
		for (size_t k = 0; k < rs.n_rules; k++) {
			const struct net_rule *r = &rs.rules[k];
			if (strncmp(r->desc, prefix, strlen(prefix)) != 0)
				continue;
			n++;
			if (net_nft_find(have, r->chain, r->comment))
				continue;
			missing++;
			bad(d, NLX_FIX_REPAIR,
			    "published port %s: its nft rule \"%s\" is missing from chain %s "
			    "(comment %s)",
			    pb, r->body, r->chain, r->comment);
		}
		if (n && !missing)
			ok(d, "published port %s: DNAT rule%s in place", pb, n > 1 ? "s" : "");
		struct holder *h;
		size_t nh;
		holders(p, &h, &nh);
		for (size_t k = 0; k < nh; k++) {
			autofree char *who = owner_of(h[k].inode);
			bad(d, "stop that service or publish another host port",
			    "published port %s: %s also holds %s/%s on the host; the DNAT rule "
			    "takes the traffic before it, so that socket gets none",
			    pb, who, h[k].addr, net_proto_name(p->proto));
		}
		if (!nh)
			ok(d, "published port %s: no other socket on the host holds it", pb);
		free(h);
	}
	net_ruleset_release(&rs);
}

/* ---- links ---- */

static void check_bridge(struct doc *d, struct nl_sock *sk, const struct net_network *n, int *br)
{
	autofree char *alias = nlx_alias_network(n->name);
	autolink struct rtnl_link *l = NULL;
	struct clbsd_err e;
	*br = 0;
	if (nlx_link_get(sk, n->bridge, &l, &e) < 0) {
		bad(d, NLX_FIX_REPAIR, "bridge %s of network %s is missing", n->bridge, n->name);
		return;
	}
	if (strcmp(nlx_link_alias(l), alias) != 0) {
		bad(d, "remove that interface or choose another bridge name, then repair",
		    "interface %s is not network %s's bridge (alias \"%s\")", n->bridge, n->name,
		    nlx_link_alias(l));
		return;
	}
	*br = rtnl_link_get_ifindex(l);
	if (!nlx_link_is_up(l))
		bad(d, NLX_FIX_REPAIR, "bridge %s of network %s is down", n->bridge, n->name);
	else
		ok(d, "bridge %s of network %s exists and is up", n->bridge, n->name);
	struct nlx_addr *have = NULL;
	size_t nh = 0;
	if (nlx_addr_list(sk, *br, &have, &nh, &e) < 0) {
		bad(d, "check the host's netlink", "addresses of %s: %s", n->bridge, e.msg);
		return;
	}
	const struct net_prefix *subs[2] = {&n->subnet4, &n->subnet6};
	for (int f = 0; f < 2; f++) {
		if (!subs[f]->addr.family)
			continue;
		struct net_addr gw;
		char b[NET_ADDR_STRLEN];
		net_prefix_gateway(subs[f], &gw);
		bool found = false;
		for (size_t i = 0; i < nh && !found; i++)
			found = net_addr_eq(&have[i].a, &gw) && have[i].len == subs[f]->len;
		if (found)
			ok(d, "gateway %s/%u is on bridge %s", net_addr_fmt(&gw, b), subs[f]->len,
			   n->bridge);
		else
			bad(d, NLX_FIX_REPAIR, "gateway %s/%u is missing from bridge %s",
			    net_addr_fmt(&gw, b), subs[f]->len, n->bridge);
		bool routed;
		if (nlx_has_route(sk, subs[f], *br, &routed, &e) == 0 && !routed)
			bad(d, NLX_FIX_REPAIR, "the host has no route to %s through %s",
			    net_prefix_fmt(subs[f], (char[NET_PREFIX_STRLEN]){0}), n->bridge);
	}
	free(have);
}

static void check_endpoint(struct doc *d, struct nl_sock *sk, struct nl_sock *ns,
			   const struct net_container *c, size_t idx, const struct net_network *n,
			   int br)
{
	const struct net_endpoint *e = &c->eps[idx];
	char host[NET_IFNAMSIZ], peer[NET_IFNAMSIZ];
	net_veth_name(c->name, idx, host);
	nlx_peer_name(idx, peer);
	autofree char *alias = nlx_alias_endpoint(c->name, n->name);
	autolink struct rtnl_link *hl = NULL, *pl = NULL;
	struct clbsd_err er;
	if (nlx_link_get(sk, host, &hl, &er) < 0 || strcmp(nlx_link_alias(hl), alias) != 0) {
		bad(d, NLX_FIX_REPAIR, "veth %s (network %s) is missing on the host", host,
		    n->name);
	} else if (br && rtnl_link_get_master(hl) != br) {
		bad(d, NLX_FIX_REPAIR, "veth %s is not on bridge %s", host, n->bridge);
	} else if (!nlx_link_is_up(hl)) {
		bad(d, NLX_FIX_REPAIR, "veth %s is down", host);
	} else {
		ok(d, "veth %s is on bridge %s and up", host, n->bridge);
	}
	if (!ns)
		return;
	if (nlx_link_get(ns, peer, &pl, &er) < 0) {
		bad(d, NLX_FIX_REPAIR, "%s is missing in the container", peer);
		return;
	}
	if (!nlx_link_is_up(pl))
		bad(d, NLX_FIX_REPAIR, "%s is down in the container", peer);
	struct nlx_addr *have = NULL;
	size_t nh = 0;
	if (nlx_addr_list(ns, rtnl_link_get_ifindex(pl), &have, &nh, &er) < 0) {
		bad(d, "check the container's namespace", "addresses of %s: %s", peer, er.msg);
		return;
	}
	const struct net_addr *ips[2] = {&e->ip4, &e->ip6};
	const struct net_prefix *subs[2] = {&n->subnet4, &n->subnet6};
	for (int f = 0; f < 2; f++) {
		if (!ips[f]->family)
			continue;
		char b[NET_ADDR_STRLEN];
		bool found = false;
		for (size_t i = 0; i < nh && !found; i++)
			found = net_addr_eq(&have[i].a, ips[f]) && have[i].len == subs[f]->len;
		if (found)
			ok(d, "%s has %s/%u in the container", peer, net_addr_fmt(ips[f], b),
			   subs[f]->len);
		else
			bad(d, NLX_FIX_REPAIR, "%s lacks %s/%u in the container", peer,
			    net_addr_fmt(ips[f], b), subs[f]->len);
	}
	free(have);
}

/*
 * An endpoint dockerd made (net_container.external): the interface in the
 * container that holds the address, and its host side (the veth's peer,
 * found by ifindex) on the network's bridge.
 */
static void check_external(struct doc *d, struct nl_sock *sk, struct nl_sock *ns,
			   const struct net_container *c, size_t idx, const struct net_network *n,
			   int br)
{
	const struct net_endpoint *e = &c->eps[idx];
	char b[NET_ADDR_STRLEN];
	if (!ns || !e->ip4.family)
		return;
	struct nl_cache *cache = NULL;
	struct clbsd_err er;
	if (nlx_link_cache(ns, &cache, &er) < 0) {
		bad(d, "check the container's namespace", "links in the container: %s", er.msg);
		return;
	}
	struct rtnl_link *found = NULL;
	for (struct nl_object *o = nl_cache_get_first(cache); o && !found;
	     o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		struct nlx_addr *have = NULL;
		size_t nh = 0;
		if (nlx_addr_list(ns, rtnl_link_get_ifindex(l), &have, &nh, &er) < 0)
			continue;
		for (size_t i = 0; i < nh && !found; i++)
			if (net_addr_eq(&have[i].a, &e->ip4) && have[i].len == n->subnet4.len)
				found = l;
		free(have);
	}
	if (!found) {
		bad(d, "restart the container (dockerd connects it again)",
		    "no interface in the container has %s/%u (network %s, plumbed by dockerd)",
		    net_addr_fmt(&e->ip4, b), n->subnet4.len, n->name);
		nl_cache_free(cache);
		return;
	}
	const char *ifname = rtnl_link_get_name(found);
	if (!nlx_link_is_up(found))
		bad(d, "restart the container", "%s is down in the container", ifname);
	else
		ok(d, "%s has %s/%u in the container (plumbed by dockerd)", ifname,
		   net_addr_fmt(&e->ip4, b), n->subnet4.len);
	int peer = rtnl_link_get_link(found);
	autofree char *name = xstrdup(ifname);
	nl_cache_free(cache);
	struct nl_cache *hc = NULL;
	if (nlx_link_cache(sk, &hc, &er) < 0) {
		bad(d, "check the host", "links: %s", er.msg);
		return;
	}
	struct rtnl_link *hl = peer > 0 ? rtnl_link_get(hc, peer) : NULL;
	if (!hl)
		bad(d, "restart the container", "the host side of %s is missing", name);
	else if (br && rtnl_link_get_master(hl) != br)
		bad(d, "restart the container", "the host side of %s (%s) is not on bridge %s",
		    name, rtnl_link_get_name(hl), n->bridge);
	else if (!nlx_link_is_up(hl))
		bad(d, "restart the container", "the host side of %s (%s) is down", name,
		    rtnl_link_get_name(hl));
	else
		ok(d, "veth %s (dockerd's, for %s) is on bridge %s and up", rtnl_link_get_name(hl),
		   name, n->bridge);
	if (hl)
		rtnl_link_put(hl);
	nl_cache_free(hc);
}

static void check_routes(struct doc *d, struct nl_sock *ns, const struct net_state *st,
			 const struct net_container *c)
{
	const struct net_endpoint *ep = net_primary_endpoint(st, c);
	if (!ep)
		return;
	const struct net_network *n = net_state_network(st, ep->network);
	const struct net_prefix *subs[2] = {&n->subnet4, &n->subnet6};
	const struct net_addr *ips[2] = {&ep->ip4, &ep->ip6};
	for (int f = 0; f < 2; f++) {
		if (!ips[f]->family)
			continue;
		struct net_addr gw;
		char b[NET_ADDR_STRLEN];
		struct clbsd_err e;
		bool has = false;
		net_prefix_gateway(subs[f], &gw);
		if (nlx_has_default(ns, &gw, 0, &has, &e) < 0)
			bad(d, "check the container's namespace", "routes: %s", e.msg);
		else if (has)
			ok(d, "the container's default route goes via %s", net_addr_fmt(&gw, b));
		else
			bad(d, NLX_FIX_REPAIR, "the container has no default route via %s",
			    net_addr_fmt(&gw, b));
	}
}

static void check_sysctls(struct doc *d, const struct net_state *st, const struct net_container *c)
{
	const struct net_endpoint *ep = net_primary_endpoint(st, c);
	if (!ep)
		return;
	const struct net_network *n = net_state_network(st, ep->network);
	struct {
		bool want;
		const char *path;
	} fw[] = {
		{n->subnet4.addr.family != 0, "net/ipv4/ip_forward"},
		{n->subnet6.addr.family != 0, "net/ipv6/conf/all/forwarding"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(fw); i++) {
		char v[16];
		struct clbsd_err e;
		if (!fw[i].want)
			continue;
		autofree char *name = nlx_sysctl_name(fw[i].path);
		if (nlx_sysctl_get(fw[i].path, v, sizeof(v), &e) < 0)
			bad(d, "check the kernel's configuration", "%s", e.msg);
		else if (strcmp(v, "0") == 0)
			bad(d, NLX_FIX_REPAIR, "%s is 0: containers cannot reach beyond the host",
			    name);
		else
			ok(d, "%s is on", name);
	}
	if (n->subnet4.addr.family && c->n_ports) {
		autofree char *rl = xasprintf("net/ipv4/conf/%s/route_localnet", n->bridge);
		char v[16];
		struct clbsd_err e;
		if (nlx_sysctl_get(rl, v, sizeof(v), &e) == 0 && strcmp(v, "1") != 0)
			bad(d, NLX_FIX_REPAIR,
			    "%s is %s: the host's own connections to 127.0.0.1 cannot reach "
			    "published ports",
			    rl, v);
	}
}

int net_linux_doctor(const struct net_state *st, const char *name, struct strv *lines,
		     size_t *n_bad, struct clbsd_err *err)
{
	if (net_state_check(st, err) < 0)
		return -err->code;
	const struct net_container *c = net_state_container(st, name);
	if (!c)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"network doctor: container %s is not in the network state",
					name);
	struct doc d = {lines, 0};
	nlx_lock();
	autonl struct nl_sock *sk = NULL;
	autonl struct nl_sock *ns = NULL;
	autoclose int nsfd = -1;
	struct net_nft have = {0};
	int r = nlx_open(-1, &sk, err);
	if (r == 0)
		r = nftx_list(&have, err);
	if (r < 0) {
		nlx_unlock();
		return clbsd_err_prefix(err, "network doctor");
	}
	struct clbsd_err e;
	if (!net_container_running(c))
		bad(&d, "start the container", "container %s is not running", name);
	else if (nlx_netns_open(c, &nsfd, &e) < 0 || nlx_open(nsfd, &ns, &e) < 0)
		bad(&d, "start the container", "%s", e.msg);
	if (!have.table)
		bad(&d, NLX_FIX_REPAIR, "nft table inet " NET_NFT_TABLE " does not exist");
	struct net_ruleset rs = {0};
	net_rules_base(&rs);
	if (have.table)
		check_rules(&d, &rs, &have, NET_OWNER_BASE, "the host");
	for (size_t i = 0; i < c->n_eps; i++) {
		const struct net_network *n = net_state_network(st, c->eps[i].network);
		int br;
		check_bridge(&d, sk, n, &br);
		if (net_container_running(c) && c->external)
			check_external(&d, sk, ns, c, i, n, br);
		else if (net_container_running(c))
			check_endpoint(&d, sk, ns, c, i, n, br);
		net_rules_network(&rs, n);
		autofree char *owner = net_owner_network(n->name);
		autofree char *what = xasprintf("network %s", n->name);
		if (have.table)
			check_rules(&d, &rs, &have, owner, what);
	}
	if (ns)
		check_routes(&d, ns, st, c);
	check_sysctls(&d, st, c);
	if (net_container_running(c))
		check_ports(&d, st, c, &have);
	net_ruleset_release(&rs);
	net_nft_release(&have);
	nlx_unlock();
	*n_bad = d.bad;
	return 0;
}
