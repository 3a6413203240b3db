/*
 * Netlink through libnl-route-3: links, addresses, routes, and sysctls.
 *
 * A container's interfaces are configured through a socket opened inside
 * its network namespace: the thread enters the namespace, creates the
 * socket (which stays bound to that namespace for its life) and returns at
 * once. Nothing else runs in the container's namespace, and no process is
 * forked. Should the return ever fail the thread would be stranded in a
 * container's namespace, so that aborts.
 */
#include "net/linux/net_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/route/addr.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int nlx_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_EXIST:
		return -EEXIST;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return -ENODEV;
	case NLE_PERM:
	case NLE_NOACCESS:
		return -EPERM;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_INTR:
		return -EINTR;
	case NLE_NOADDR:
		return -EADDRNOTAVAIL;
	case NLE_OPNOTSUPP:
	case NLE_AF_NOSUPPORT:
		return -EOPNOTSUPP;
	case NLE_RANGE:
		return -ERANGE;
	case NLE_INVAL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* Record a libnl failure: "what: libnl's text". */
static int nlfail(struct clbsd_err *err, int nle, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int nlfail(struct clbsd_err *err, int nle, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	int e = nlx_errno(nle);
	enum clbsd_err_kind kind = e == -EPERM	  ? CLBSD_E_FORBIDDEN
				   : e == -EEXIST ? CLBSD_E_CONFLICT
						  : CLBSD_E_INTERNAL;
	return clbsd_err_setmsg(err, kind, -e, "%s: %s", what, nl_geterror(nle));
}

void nlx_closep(struct nl_sock **sk)
{
	if (*sk)
		nl_socket_free(*sk);
	*sk = NULL;
}

void nlx_linkp(struct rtnl_link **l)
{
	if (*l)
		rtnl_link_put(*l);
	*l = NULL;
}

static void addrp(struct nl_addr **a)
{
	if (*a)
		nl_addr_put(*a);
}
#define autoaddr __attribute__((cleanup(addrp)))

static void cachep(struct nl_cache **c)
{
	if (*c)
		nl_cache_free(*c);
}
#define autocache __attribute__((cleanup(cachep)))

int nlx_open(int nsfd, struct nl_sock **out, struct clbsd_err *err)
{
	autoclose int self = -1;
	if (nsfd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
					     "open this thread's network namespace");
		if (setns(nsfd, CLONE_NEWNET) < 0)
			return clbsd_err_set(err,
					     errno == EPERM ? CLBSD_E_FORBIDDEN : CLBSD_E_INTERNAL,
					     errno, "enter the container's network namespace");
	}
	struct nl_sock *sk = nl_socket_alloc();
	int r = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (self >= 0 && setns(self, CLONE_NEWNET) < 0)
		abort(); /* never leave a thread in a container's namespace */
	if (r < 0) {
		if (sk)
			nl_socket_free(sk);
		return nlfail(err, r, "netlink socket");
	}
	*out = sk;
	return 0;
}

int nlx_netns_open(const struct net_container *c, int *fd, struct clbsd_err *err)
{
	int f;
	if (c->netns_fd >= 0) {
		f = fcntl(c->netns_fd, F_DUPFD_CLOEXEC, 3);
		if (f < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
					     "container %s: network namespace fd", c->name);
	} else if (c->pid > 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)c->pid);
		f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			return clbsd_err_set(err, CLBSD_E_CONFLICT, errno,
					     "container %s: network namespace of pid %d (is it "
					     "still running?)",
					     c->name, (int)c->pid);
	} else {
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH,
					"container %s is not running: it has no network namespace",
					c->name);
	}
	*fd = f;
	return 0;
}

/* ---- links ---- */

int nlx_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **out,
		 struct clbsd_err *err)
{
	int r = rtnl_link_get_kernel(sk, 0, name, out);
	if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
		return -ENODEV;
	if (r < 0)
		return nlfail(err, r, "look up interface %s", name);
	return 0;
}

int nlx_link_cache(struct nl_sock *sk, struct nl_cache **out, struct clbsd_err *err)
{
	int r = rtnl_link_alloc_cache(sk, AF_UNSPEC, out);
	return r < 0 ? nlfail(err, r, "list interfaces") : 0;
}

/* Apply `change` to l. */
static int change(struct nl_sock *sk, struct rtnl_link *l, struct rtnl_link *chg, const char *what,
		  struct clbsd_err *err)
{
	int r = rtnl_link_change(sk, l, chg, 0);
	return r < 0 ? nlfail(err, r, "%s %s", what, rtnl_link_get_name(l)) : 0;
}

int nlx_link_up(struct nl_sock *sk, struct rtnl_link *l, struct clbsd_err *err)
{
	if (nlx_link_is_up(l))
		return 0;
	autolink struct rtnl_link *chg = rtnl_link_alloc();
	rtnl_link_set_flags(chg, IFF_UP);
	return change(sk, l, chg, "bring up", err);
}

int nlx_link_set_alias(struct nl_sock *sk, struct rtnl_link *l, const char *alias,
		       struct clbsd_err *err)
{
	autolink struct rtnl_link *chg = rtnl_link_alloc();
	rtnl_link_set_ifalias(chg, alias);
	return change(sk, l, chg, "set the alias of", err);
}

int nlx_link_set_master(struct nl_sock *sk, struct rtnl_link *l, int master, struct clbsd_err *err)
{
	autolink struct rtnl_link *chg = rtnl_link_alloc();
	rtnl_link_set_master(chg, master);
	return change(sk, l, chg, "attach to its bridge", err);
}

int nlx_link_del(struct nl_sock *sk, const char *name, struct clbsd_err *err)
{
	autolink struct rtnl_link *l = rtnl_link_alloc();
	rtnl_link_set_name(l, name);
	int r = rtnl_link_delete(sk, l);
	if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
		return 0;
	return r < 0 ? nlfail(err, r, "delete interface %s", name) : 0;
}

int nlx_bridge_add(struct nl_sock *sk, const char *name, const uint8_t mac[6],
		   struct clbsd_err *err)
{
	autolink struct rtnl_link *l = rtnl_link_bridge_alloc();
	autoaddr struct nl_addr *a = nl_addr_build(AF_LLC, mac, 6);
	rtnl_link_set_name(l, name);
	/*
	 * A fixed address: a bridge otherwise takes the lowest of its ports',
	 * and changes it (breaking every container's ARP entry for the
	 * gateway) as ports come and go.
	 */
	rtnl_link_set_addr(l, a);
	rtnl_link_set_flags(l, IFF_UP);
	int r = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	return r < 0 ? nlfail(err, r, "create bridge %s", name) : 0;
}

int nlx_veth_add(struct nl_sock *sk, const char *host, int master, const char *peer, int nsfd,
		 const uint8_t mac[6], struct clbsd_err *err)
{
	autolink struct rtnl_link *l = rtnl_link_veth_alloc();
	autolink struct rtnl_link *p = rtnl_link_veth_get_peer(l);
	autoaddr struct nl_addr *a = nl_addr_build(AF_LLC, mac, 6);
	rtnl_link_set_name(l, host);
	rtnl_link_set_master(l, master);
	rtnl_link_set_flags(l, IFF_UP);
	rtnl_link_set_name(p, peer);
	rtnl_link_set_ns_fd(p, nsfd);
	/* A MAC made from the address: a restarted container does not leave stale ARP entries. */
	rtnl_link_set_addr(p, a);
	int r = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	return r < 0 ? nlfail(err, r, "create veth %s (%s in the container)", host, peer) : 0;
}

int nlx_port_hairpin(struct nl_sock *sk, int ifindex, struct clbsd_err *err)
{
	/*
	 * RTM_SETLINK of family AF_BRIDGE carries a port's IFLA_PROTINFO;
	 * RTM_NEWLINK (what a generic link change may send) ignores it.
	 */
	struct ifinfomsg ifi = {.ifi_family = AF_BRIDGE, .ifi_index = ifindex};
	struct nl_msg *m = nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
	int r = m ? nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) : -NLE_NOMEM;
	struct nlattr *pi = r == 0 ? nla_nest_start(m, IFLA_PROTINFO | NLA_F_NESTED) : NULL;
	if (r == 0 && (!pi || nla_put_u8(m, IFLA_BRPORT_MODE, 1) < 0))
		r = -NLE_MSGSIZE;
	if (r == 0) {
		nla_nest_end(m, pi);
		r = nl_send_auto(sk, m);
	}
	if (r >= 0)
		r = nl_wait_for_ack(sk);
	if (m)
		nlmsg_free(m);
	return r < 0 ? nlfail(err, r, "hairpin mode on bridge port %d", ifindex) : 0;
}

const char *nlx_link_alias(struct rtnl_link *l)
{
	const char *a = rtnl_link_get_ifalias(l);
	return a ? a : "";
}

bool nlx_link_is_up(struct rtnl_link *l)
{
	return (rtnl_link_get_flags(l) & IFF_UP) != 0;
}

/* ---- addresses ---- */

static struct nl_addr *to_nl(const struct net_addr *a, unsigned len)
{
	struct nl_addr *n = nl_addr_build(a->family, a->b, a->family == AF_INET ? 4 : 16);
	nl_addr_set_prefixlen(n, (int)len);
	return n;
}

static bool from_nl(struct nl_addr *n, struct net_addr *out)
{
	int fam = n ? nl_addr_get_family(n) : 0;
	unsigned len = n ? nl_addr_get_len(n) : 0;
	if (!((fam == AF_INET && len == 4) || (fam == AF_INET6 && len == 16)))
		return false;
	memset(out, 0, sizeof(*out));
	out->family = fam;
	memcpy(out->b, nl_addr_get_binary_addr(n), len);
	return true;
}

static struct rtnl_addr *addr_obj(int ifindex, const struct net_addr *a, unsigned len)
{
	struct rtnl_addr *o = rtnl_addr_alloc();
	autoaddr struct nl_addr *local = to_nl(a, len);
	rtnl_addr_set_ifindex(o, ifindex);
	rtnl_addr_set_family(o, a->family);
	rtnl_addr_set_local(o, local);
	rtnl_addr_set_prefixlen(o, (int)len);
	if (a->family == AF_INET6) {
		/* The addresses are assigned, not guessed: waiting for DAD only delays traffic. */
		rtnl_addr_set_flags(o, IFA_F_NODAD);
	} else {
		struct net_prefix p = {*a, len};
		struct net_addr bcast;
		net_prefix_at(&p, 0, &bcast);
		/* The broadcast address: every host bit set. */
		for (unsigned bit = len; bit < 32; bit++)
			bcast.b[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
		autoaddr struct nl_addr *b = to_nl(&bcast, 32);
		rtnl_addr_set_broadcast(o, b);
	}
	return o;
}

int nlx_addr_add(struct nl_sock *sk, int ifindex, const struct net_addr *a, unsigned len,
		 struct clbsd_err *err)
{
	struct rtnl_addr *o = addr_obj(ifindex, a, len);
	int r = rtnl_addr_add(sk, o, 0);
	rtnl_addr_put(o);
	char b[NET_ADDR_STRLEN];
	if (r < 0 && r != -NLE_EXIST)
		return nlfail(err, r, "add address %s/%u", net_addr_fmt(a, b), len);
	return 0;
}

int nlx_addr_del(struct nl_sock *sk, int ifindex, const struct net_addr *a, unsigned len,
		 struct clbsd_err *err)
{
	struct rtnl_addr *o = addr_obj(ifindex, a, len);
	int r = rtnl_addr_delete(sk, o, 0);
	rtnl_addr_put(o);
	char b[NET_ADDR_STRLEN];
	if (r < 0 && r != -NLE_NOADDR && r != -NLE_OBJ_NOTFOUND && r != -NLE_NODEV)
		return nlfail(err, r, "remove address %s/%u", net_addr_fmt(a, b), len);
	return 0;
}

int nlx_addr_list(struct nl_sock *sk, int ifindex, struct nlx_addr **out, size_t *n,
		  struct clbsd_err *err)
{
	autocache struct nl_cache *c = NULL;
	int r = rtnl_addr_alloc_cache(sk, &c);
	if (r < 0)
		return nlfail(err, r, "list addresses");
	struct nlx_addr *v = NULL;
	size_t k = 0;
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct net_addr x;
		if (rtnl_addr_get_ifindex(a) != ifindex || !from_nl(rtnl_addr_get_local(a), &x))
			continue;
		if (x.family == AF_INET6 && x.b[0] == 0xfe && (x.b[1] & 0xc0) == 0x80)
			continue; /* link-local: the kernel's own */
		v = xrealloc(v, (k + 1) * sizeof(*v));
		v[k].a = x;
		v[k].len = (unsigned)rtnl_addr_get_prefixlen(a);
		k++;
	}
	*out = v;
	*n = k;
	return 0;
}

/* ---- routes ---- */

int nlx_route_default(struct nl_sock *sk, const struct net_addr *gw, int ifindex,
		      struct clbsd_err *err)
{
	struct rtnl_route *rt = rtnl_route_alloc();
	struct net_addr any = {.family = gw->family};
	autoaddr struct nl_addr *dst = to_nl(&any, 0);
	autoaddr struct nl_addr *via = to_nl(gw, gw->family == AF_INET ? 32 : 128);
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	rtnl_route_set_family(rt, (uint8_t)gw->family);
	rtnl_route_set_dst(rt, dst);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_protocol(rt, RTPROT_STATIC);
	rtnl_route_set_scope(rt, RT_SCOPE_UNIVERSE);
	rtnl_route_nh_set_gateway(nh, via);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_add_nexthop(rt, nh);
	int r = rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_route_put(rt);
	char b[NET_ADDR_STRLEN];
	if (r < 0 && r != -NLE_EXIST)
		return nlfail(err, r, "add the default route via %s", net_addr_fmt(gw, b));
	return 0;
}

/* Call fn for every route of the main table; stops when it returns true. */
static int each_route(struct nl_sock *sk, int family, bool (*fn)(struct rtnl_route *rt, void *ctx),
		      void *ctx, struct clbsd_err *err)
{
	autocache struct nl_cache *c = NULL;
	int r = rtnl_route_alloc_cache(sk, family, 0, &c);
	if (r < 0)
		return nlfail(err, r, "list routes");
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;
		if (rtnl_route_get_table(rt) == RT_TABLE_MAIN && fn(rt, ctx))
			break;
	}
	return 0;
}

struct route_q {
	const struct net_addr *gw;  /* default route via */
	const struct net_prefix *p; /* or route to */
	int ifindex;
	bool found;
};

static bool route_match(struct rtnl_route *rt, void *ctx)
{
	struct route_q *q = ctx;
	struct nl_addr *dst = rtnl_route_get_dst(rt);
	unsigned plen = dst ? (unsigned)nl_addr_get_prefixlen(dst) : 0;
	struct rtnl_nexthop *nh =
		rtnl_route_get_nnexthops(rt) > 0 ? rtnl_route_nexthop_n(rt, 0) : NULL;
	if (!nh || (q->ifindex && rtnl_route_nh_get_ifindex(nh) != q->ifindex))
		return false;
	if (q->gw) {
		struct net_addr via;
		if (plen != 0 || !from_nl(rtnl_route_nh_get_gateway(nh), &via) ||
		    !net_addr_eq(&via, q->gw))
			return false;
	} else {
		struct net_addr d;
		if (plen != q->p->len || !from_nl(dst, &d) || !net_addr_eq(&d, &q->p->addr))
			return false;
	}
	q->found = true;
	return true;
}

int nlx_has_default(struct nl_sock *sk, const struct net_addr *gw, int ifindex, bool *out,
		    struct clbsd_err *err)
{
	struct route_q q = {gw, NULL, ifindex, false};
	int r = each_route(sk, gw->family, route_match, &q, err);
	if (r == 0)
		*out = q.found;
	return r;
}

int nlx_has_route(struct nl_sock *sk, const struct net_prefix *p, int ifindex, bool *out,
		  struct clbsd_err *err)
{
	struct route_q q = {NULL, p, ifindex, false};
	int r = each_route(sk, p->addr.family, route_match, &q, err);
	if (r == 0)
		*out = q.found;
	return r;
}

/* ---- sysctls ---- */

int nlx_sysctl_get(const char *path, char *buf, size_t len, struct clbsd_err *err)
{
	autofree char *full = xasprintf("/proc/sys/%s", path);
	autoclose int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_UNAVAIL : CLBSD_E_INTERNAL,
				     errno, "read %s", full);
	ssize_t n = read(fd, buf, len - 1);
	if (n < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", full);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int nlx_sysctl_set(const char *path, const char *value, struct clbsd_err *err)
{
	autofree char *full = xasprintf("/proc/sys/%s", path);
	return fs_write_str(full, value, err);
}

char *nlx_sysctl_name(const char *path)
{
	char *s = xstrdup(path);
	for (char *c = s; *c; c++)
		if (*c == '/')
			*c = '.';
	return s;
}

/* ---- names ---- */

char *nlx_alias_network(const char *net)
{
	return xasprintf(NLX_ALIAS_NET "%s", net);
}

char *nlx_alias_endpoint(const char *ctr, const char *net)
{
	return xasprintf(NLX_ALIAS_CTR "%s:net=%s", ctr, net);
}

void nlx_peer_name(size_t idx, char out[NET_IFNAMSIZ])
{
	snprintf(out, NET_IFNAMSIZ, "eth%zu", idx % NET_MAX_ENDPOINTS);
}
