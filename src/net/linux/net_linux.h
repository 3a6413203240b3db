/*
 * Private interfaces of the Linux networking driver (src/net/linux/).
 *
 *   nl.c      netlink through libnl-route-3: sockets in the host's or a
 *             container's network namespace, links (bridge, veth), addresses
 *             and routes, interface aliases, sysctls.
 *   nft.c     libnftables: list clbsd's table as JSON, run a script in one
 *             transaction (serialised: a libnftables context is not shared
 *             between threads, and two transactions built from one listing
 *             would fight).
 *   ops.c     struct net_ops: network up/down, attach/detach, repair.
 *   doctor.c  the doctor op.
 *
 * Ownership marks: a bridge clbsd made has the interface alias
 * "clbsd:net=NETWORK", the host side of a container's veth
 * "clbsd:ctr=CONTAINER:net=NETWORK". Links without such an alias are never
 * changed or removed.
 */
#ifndef CLBSD_NET_LINUX_H
#define CLBSD_NET_LINUX_H

#include "net/net.h"

#include <netlink/netlink.h>
#include <netlink/route/link.h>

/* ---- netlink (nl.c) ---- */

/* A negative errno for a libnl error code. */
int nlx_errno(int nle);
/*
 * A NETLINK_ROUTE socket in the calling thread's network namespace (nsfd
 * -1) or in nsfd's: the thread enters the namespace only to create the
 * socket, which stays bound to it, and returns at once.
 */
int nlx_open(int nsfd, struct nl_sock **out, struct clbsd_err *err);
void nlx_closep(struct nl_sock **sk);
#define autonl __attribute__((cleanup(nlx_closep)))
void nlx_linkp(struct rtnl_link **l);
#define autolink __attribute__((cleanup(nlx_linkp)))
/* The container's network namespace as an fd (a dup of netns_fd, or /proc/PID/ns/net). */
int nlx_netns_open(const struct net_container *c, int *fd, struct clbsd_err *err);

/* The link called name; -ENODEV when there is none. */
int nlx_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **out,
		 struct clbsd_err *err);
/* Every link (caller frees with nl_cache_free). */
int nlx_link_cache(struct nl_sock *sk, struct nl_cache **out, struct clbsd_err *err);
int nlx_link_up(struct nl_sock *sk, struct rtnl_link *l, struct clbsd_err *err);
int nlx_link_set_alias(struct nl_sock *sk, struct rtnl_link *l, const char *alias,
		       struct clbsd_err *err);
int nlx_link_set_master(struct nl_sock *sk, struct rtnl_link *l, int master, struct clbsd_err *err);
/* Delete by name; a link that is already gone is not an error. */
int nlx_link_del(struct nl_sock *sk, const char *name, struct clbsd_err *err);
int nlx_bridge_add(struct nl_sock *sk, const char *name, const uint8_t mac[6],
		   struct clbsd_err *err);
/*
 * A veth pair: `host` (up, on bridge `master`) here and `peer` (with mac)
 * in the namespace nsfd.
 */
int nlx_veth_add(struct nl_sock *sk, const char *host, int master, const char *peer, int nsfd,
		 const uint8_t mac[6], struct clbsd_err *err);
/*
 * Put bridge port ifindex in hairpin mode. With br_netfilter loaded (as on
 * Docker hosts), a container's connection to its own published port is
 * DNATed in the bridge path and must leave through the port it came in.
 */
int nlx_port_hairpin(struct nl_sock *sk, int ifindex, struct clbsd_err *err);
const char *nlx_link_alias(struct rtnl_link *l);
bool nlx_link_is_up(struct rtnl_link *l);

/* Add a/len on ifindex (IPv6 without duplicate address detection); present is fine. */
int nlx_addr_add(struct nl_sock *sk, int ifindex, const struct net_addr *a, unsigned len,
		 struct clbsd_err *err);
int nlx_addr_del(struct nl_sock *sk, int ifindex, const struct net_addr *a, unsigned len,
		 struct clbsd_err *err);
/* The global addresses (no IPv6 link-local) on ifindex, family AF_UNSPEC for both. */
struct nlx_addr {
	struct net_addr a;
	unsigned len;
};
int nlx_addr_list(struct nl_sock *sk, int ifindex, struct nlx_addr **out, size_t *n,
		  struct clbsd_err *err);
/* A default route via gw on ifindex (main table); present is fine. */
int nlx_route_default(struct nl_sock *sk, const struct net_addr *gw, int ifindex,
		      struct clbsd_err *err);
/* Is there a default route via gw (any interface when ifindex is 0)? */
int nlx_has_default(struct nl_sock *sk, const struct net_addr *gw, int ifindex, bool *out,
		    struct clbsd_err *err);
/* Is there a route to exactly p through ifindex? */
int nlx_has_route(struct nl_sock *sk, const struct net_prefix *p, int ifindex, bool *out,
		  struct clbsd_err *err);

/* Read or write /proc/sys/PATH in the calling thread's network namespace. */
int nlx_sysctl_get(const char *path, char *buf, size_t len, struct clbsd_err *err);
int nlx_sysctl_set(const char *path, const char *value, struct clbsd_err *err);
/* "net/ipv4/ip_forward" as sysctl(8) names it: "net.ipv4.ip_forward" (caller frees). */
char *nlx_sysctl_name(const char *path);

/* ---- nftables (nft.c) ---- */

/* List table inet clbsd (an empty listing when it does not exist). */
int nftx_list(struct net_nft *out, struct clbsd_err *err);
/* Run a script in one transaction; an empty script does nothing. */
int nftx_run(const char *script, struct clbsd_err *err);
/*
 * List, diff want against the table for scope (see net_rules_diff) and run
 * the result; the changes go to rep (may be NULL). Holds the nft lock
 * throughout, so no other sync interleaves.
 */
int nftx_sync(const struct net_ruleset *want, const char *const *scope, struct net_report *rep,
	      struct clbsd_err *err);

/* ---- shared by ops.c and doctor.c ---- */

#define NLX_ALIAS_NET "clbsd:net="
#define NLX_ALIAS_CTR "clbsd:ctr="
/* "clbsd:net=NET" / "clbsd:ctr=NAME:net=NET" (caller frees). */
char *nlx_alias_network(const char *net);
char *nlx_alias_endpoint(const char *ctr, const char *net);
/* The container side of the idx-th endpoint: "ethIDX". */
void nlx_peer_name(size_t idx, char out[NET_IFNAMSIZ]);
/* The fix hint doctor and errors give for state that repair restores. */
#define NLX_FIX_REPAIR "restart the container, or clbsdd (it repairs every rule and link at start)"
/* The doctor op (doctor.c). */
int net_linux_doctor(const struct net_state *st, const char *name, struct strv *lines,
		     size_t *n_bad, struct clbsd_err *err);
/* Serialises the driver's ops (ops.c). */
void nlx_lock(void);
void nlx_unlock(void);

#endif
