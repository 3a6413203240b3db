/*
 * Container networking: networks (a bridge with a v4 and/or v6 subnet,
 * outbound NAT unless internal), containers attached to them (one veth per
 * network, addresses from IPAM), published ports (DNAT from the host), and
 * the files a container needs to find its peers (/etc/hosts, resolv.conf).
 * docs/network.md describes the design and the nftables rule layout.
 *
 * Layers:
 *   net.h, addr.c, state_check.c  pure: addresses, prefixes, :publish parsing,
 *                           interface names, validation of a whole state
 *   ipam.c                  pure: stable address assignment, JSON persistence
 *   hosts.c                 pure: /etc/hosts and resolv.conf content
 *   rules.c                 pure: the nftables rules a state wants, the parse
 *                           of an nft JSON listing, and the diff between them
 *   linux/                  struct net_ops: libnl-route-3 for links, addresses
 *                           and routes, libnftables for rules (no subprocess)
 *
 * Invariants:
 * - Descriptions (struct net_network, net_endpoint, net_container,
 *   net_state) borrow their strings and arrays: the caller keeps them alive
 *   for the duration of a call; nothing here keeps a pointer afterwards.
 * - Every op validates the state it is given (net_state_check) before it
 *   touches the host, so names and addresses that reach netlink or an nft
 *   command are known to be well-formed.
 * - Everything the Linux driver makes is marked as clbsd's: bridges and
 *   veths carry an interface alias "clbsd:...", nftables objects live in
 *   `table inet clbsd` and every rule and set element carries a comment
 *   naming its owner ("clbsd/n/NETWORK/..." or "clbsd/c/CONTAINER/...").
 *   Only objects so marked are ever changed or removed.
 * - Modes "host" and "none" need nothing from this layer: a host-mode
 *   container is started without a network namespace, a none-mode one keeps
 *   the loopback-only namespace the runtime makes. net_mode_parse() tells
 *   them apart.
 */
#ifndef CLBSD_NET_H
#define CLBSD_NET_H

#include "util/netaddr.h"
#include "util/util.h"

#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- addresses and prefixes ---- */

#define NET_IFNAMSIZ	  16 /* IFNAMSIZ: 15 characters and a NUL */
#define NET_MAX_ENDPOINTS 8  /* networks one container may join (eth0..eth7) */

/* ---- interface names ---- */

/* An interface name the kernel accepts: 1-15 of [A-Za-z0-9_.-], not "." or "..". */
bool net_valid_ifname(const char *s);
/*
 * The bridge of an extra network: "cbr-NAME" when that fits in 15
 * characters, else "cbr-" and 8 hex digits of a hash of the name.
 */
void net_bridge_name(const char *network, char out[NET_IFNAMSIZ]);
/*
 * The host side of container's veth for its idx-th network (idx <
 * NET_MAX_ENDPOINTS): "cbIDX-NAME" when it fits, else "cbIDX-" and 8 hex
 * digits of a hash of the name. The container side is "ethIDX".
 */
void net_veth_name(const char *container, size_t idx, char out[NET_IFNAMSIZ]);

/* ---- modes and published ports ---- */

enum net_mode {
	NET_MODE_NONE,	   /* loopback only */
	NET_MODE_HOST,	   /* the host's network namespace */
	NET_MODE_NETWORKS, /* attached to one or more networks */
};
/*
 * Classify a container's :network words: "none", "host", "bridge" (the host
 * network, named NET_DEFAULT), or network names. "none" and "host" stand
 * alone. NULL or empty means "bridge".
 */
#define NET_DEFAULT "default"
int net_mode_parse(const char *const *words, size_t n, enum net_mode *out, struct clbsd_err *err);

/* ---- what the host should look like ---- */

struct net_network {
	const char *name;	   /* DNS label; NET_DEFAULT for the host's :network */
	const char *bridge;	   /* interface name (net_valid_ifname) */
	struct net_prefix subnet4; /* addr.family 0 when the network has no IPv4 */
	struct net_prefix subnet6; /* addr.family 0 when the network has no IPv6 */
	bool internal;		   /* no outbound NAT, no forwarding off the bridge */
};

/* A container on one network; its position in net_container.eps is ethN. */
struct net_endpoint {
	const char *network;	    /* a net_network.name */
	struct net_addr ip4;	    /* from IPAM; family 0 iff the network has no subnet4 */
	struct net_addr ip6;	    /* from IPAM; family 0 iff the network has no subnet6 */
	const char *const *aliases; /* extra names on this network, n_aliases of them */
	size_t n_aliases;
};

struct net_container {
	const char *name; /* DNS label */
	/*
	 * The container's network namespace: netns_fd when >= 0, else
	 * /proc/PID/ns/net of pid when > 0. Neither: not running (it keeps
	 * its addresses and names, but has no veth and no published ports).
	 */
	pid_t pid;
	int netns_fd;
	const struct net_endpoint *eps; /* in order: eth0, eth1, ... */
	size_t n_eps;
	const struct net_port *ports; /* published to the first non-internal endpoint */
	size_t n_ports;
	/*
	 * Its interfaces are made by someone else (dockerd, on the same
	 * bridges, with these addresses): the ops bring its networks up and
	 * keep its published ports, but never make, change or remove an
	 * interface of it, and doctor finds its interface by address.
	 */
	bool external;
};

/* The desired state: every network and every attached container. */
struct net_state {
	const struct net_network *nets;
	size_t n_nets;
	const struct net_container *ctrs;
	size_t n_ctrs;
};

/*
 * Validate a whole state: names, bridges and subnets unique and
 * non-overlapping, endpoints on known networks with addresses that match
 * the subnets (inside, not reserved, not taken twice), ports that do not
 * collide, and published ports only on containers with a non-internal
 * network of the right family. The first problem is reported, naming the
 * container or network and what to change.
 */
int net_state_check(const struct net_state *st, struct clbsd_err *err);
const struct net_network *net_state_network(const struct net_state *st, const char *name);
const struct net_container *net_state_container(const struct net_state *st, const char *name);
/* The endpoint published ports go to: the first on a non-internal network, or NULL. */
const struct net_endpoint *net_primary_endpoint(const struct net_state *st,
						const struct net_container *c);
bool net_container_running(const struct net_container *c);

/* ---- IPAM (pure; ipam.c) ---- */

/*
 * One subnet's assignments, keyed by owner (a container name). An owner
 * keeps its address until it is released, and a released address stays
 * reserved for its last owner until every other address is taken: a
 * container gets the same address across restarts, and across a recreate
 * even when the caller released it in between. New addresses are handed out
 * next-fit, so a freed address is reused last.
 *
 * Reserved: the network address, the gateway (network + 1), and for IPv4
 * the broadcast address. IPv6 subnets larger than 2^63 addresses use their
 * first 2^63.
 */
struct ipam_entry {
	char *owner;
	uint64_t off;  /* offset from the network address */
	bool released; /* kept only to give it back to the same owner */
};

struct ipam {
	struct net_prefix subnet;
	uint64_t size;	      /* addresses covered (offsets 0..size-1) */
	uint64_t next;	      /* next-fit cursor */
	struct ipam_entry *v; /* sorted by off; one entry per offset */
	size_t n, cap;
};

/* Start an empty pool for subnet (v4: /30 or larger; v6: /126 or larger). */
int ipam_init(struct ipam *p, const struct net_prefix *subnet, struct clbsd_err *err);
void ipam_release_all(struct ipam *p);
/*
 * The owner's address: its current one, or `want` when given (a pinned
 * :ip; checked against the subnet, the reserved addresses and the other
 * owners), or the one it had before release, or a new one. Fails with
 * CLBSD_E_CONFLICT/ENOSPC when the subnet is full, CLBSD_E_CONFLICT/EADDRINUSE
 * when want is another owner's, CLBSD_E_INVALID when want is outside the
 * subnet or reserved.
 */
int ipam_assign(struct ipam *p, const char *owner, const struct net_addr *want,
		struct net_addr *out, struct clbsd_err *err);
/* The owner's current address; -ENOENT when it has none. */
int ipam_lookup(const struct ipam *p, const char *owner, struct net_addr *out);
/* The owner gives up its address (kept for it as described above). Idempotent. */
void ipam_release(struct ipam *p, const char *owner);
/* Addresses in use (not released) and usable in total (capped at UINT64_MAX). */
size_t ipam_used(const struct ipam *p);
uint64_t ipam_capacity(const struct ipam *p);
/*
 * JSON: {"subnet":"10.88.0.0/24","next":"10.88.0.4",
 *        "assigned":{"web":"10.88.0.2"},"released":{"old":"10.88.0.3"}}
 */
char *ipam_to_json(const struct ipam *p);
/*
 * Load what ipam_to_json() wrote. When subnet is not NULL and differs from
 * the stored one (the configuration changed), owners whose address still
 * fits keep it and the others are dropped (they get new ones). Malformed
 * input is refused (CLBSD_E_INVALID) naming the key.
 */
int ipam_from_json(const char *json, const struct net_prefix *subnet, struct ipam *out,
		   struct clbsd_err *err);

/* ---- names (pure; hosts.c) ---- */

/*
 * /etc/hosts for container `self` of st: localhost lines, its own addresses
 * with hostname, name and its aliases, then every other container that
 * shares a network with it (by name), with its address on the first shared
 * network (in self's order) and its aliases there. A name already given to
 * an earlier line is not repeated. Stopped containers are listed too: their
 * addresses are stable.
 */
int net_hosts_render(const struct net_state *st, const char *self, const char *hostname, char **out,
		     struct clbsd_err *err);
/*
 * resolv.conf for a container. With explicit dns servers (n_dns > 0, each
 * an address) those are used; otherwise the nameservers of host_conf (the
 * host's resolv.conf text) minus loopback ones (127.0.0.53 and the like,
 * which a container cannot reach), link-local ones with a zone, and IPv6
 * ones when the container has no IPv6 (want_v6 false). search/domain and
 * options lines are kept. Fails with CLBSD_E_UNAVAIL, saying what to set,
 * when no nameserver is left.
 */
int net_resolv_render(const char *host_conf, const char *const *dns, size_t n_dns, bool want_v6,
		      char **out, struct clbsd_err *err);

/* ---- the nftables model (pure; rules.c), shared by linux/ and the tests ---- */

/*
 * Everything lives in `table inet clbsd` (NET_NFT_TABLE). Each chain, rule
 * and set element has an owner, written as a comment prefix: "clbsd/b/" for
 * the table's base chains and rules, "clbsd/n/NETWORK/" for a network's,
 * "clbsd/c/CONTAINER/" for a container's published ports. A rule's comment
 * is its owner followed by a short hash of its chain and text, so a rule is
 * known by its comment: a missing comment is a missing rule, an unknown
 * one is stale. docs/network.md shows the layout.
 */
#define NET_NFT_TABLE "clbsd"

struct net_chain {
	char *name;
	char *base;   /* "type nat hook prerouting priority dstnat; policy accept;" or NULL */
	char *owner;  /* comment prefix of its owner */
	bool ordered; /* rule order matters: rewritten whole when it differs */
};

struct net_rule {
	char *chain;
	char *body;    /* nft rule text without the comment */
	char *comment; /* owner + hash */
	char *desc;    /* what it does, for reports and doctor */
};

struct net_elem {
	char *set;
	char *value;
	char *comment; /* owner */
};

/* What clbsd wants in its table. */
struct net_ruleset {
	struct net_chain *chains;
	size_t n_chains;
	struct net_rule *rules;
	size_t n_rules;
	struct net_elem *elems;
	size_t n_elems;
};

void net_ruleset_release(struct net_ruleset *rs);
/* The base chains (their rules, the ports chain and the bridges set). */
void net_rules_base(struct net_ruleset *rs);
/* A network's chains, the jumps to them and its bridge in the bridges set. */
void net_rules_network(struct net_ruleset *rs, const struct net_network *n);
/* A running container's published ports (nothing when it is not running). */
void net_rules_container(struct net_ruleset *rs, const struct net_state *st,
			 const struct net_container *c);
/* All of st (checked first); an empty ruleset when st has no network. */
int net_rules_build(const struct net_state *st, struct net_ruleset *out, struct clbsd_err *err);
/* Owner prefixes. */
char *net_owner_network(const char *name);
char *net_owner_container(const char *name);
#define NET_OWNER_BASE "clbsd/b/"

/* What the table holds, from `nft -j -a list table inet clbsd`. */
struct net_nft_rule {
	char *chain;
	uint64_t handle;
	char *comment; /* NULL when the rule has none */
};

struct net_nft_elem {
	char *set;
	char *value;
	char *comment; /* NULL when none */
};

struct net_nft {
	bool table; /* the table exists */
	struct strv chains;
	struct strv sets;
	struct net_nft_rule *rules; /* in chain order */
	size_t n_rules;
	struct net_nft_elem *elems;
	size_t n_elems;
};

void net_nft_release(struct net_nft *h);
/* Parse the JSON listing (NULL or "" for "no such table"). */
int net_nft_parse(const char *json, struct net_nft *out, struct clbsd_err *err);
/*
 * Append to script the nft commands (one transaction) that take `have` to
 * `want` for the owners in scope: a NULL-terminated list of owner prefixes,
 * or NULL for everything in the table (then an empty `want` deletes the
 * table). Objects of other owners are left alone. Appends one line per
 * change to changes (may be NULL). An empty script means nothing to do.
 */
void net_rules_diff(const struct net_ruleset *want, const struct net_nft *have,
		    const char *const *scope, struct buf *script, struct strv *changes);
/* The rule of `have` with this comment in this chain, or NULL. */
const struct net_nft_rule *net_nft_find(const struct net_nft *have, const char *chain,
					const char *comment);

/* ---- the driver ---- */

/* What an op changed on the host, for the caller to log. */
struct net_report {
	struct strv changes;	 /* "created bridge clbsd0", "removed stale veth cb0-old", ... */
	bool forwarding_enabled; /* this call turned IPv4 or IPv6 forwarding on */
};
void net_report_init(struct net_report *r);
void net_report_release(struct net_report *r);

struct net_ops {
	const char *name;
	/*
	 * Make the network exist: the bridge (up, gateway addresses,
	 * route_localnet for host-loopback publishing), its nftables chains
	 * and rules, and forwarding on when it is not internal. Idempotent:
	 * fixes what is missing and leaves the rest. rep may be NULL.
	 */
	int (*network_up)(const struct net_network *net, struct net_report *rep,
			  struct clbsd_err *err);
	/*
	 * Remove the network: its rules, chains and bridge (the table too
	 * when it was the last). Refused (CLBSD_E_CONFLICT, naming them) while
	 * containers are attached. Idempotent.
	 */
	int (*network_down)(const struct net_network *net, struct clbsd_err *err);
	/*
	 * Plumb running container `name` of st into its networks: a veth pair
	 * per endpoint (ethN inside, on the bridge outside), its addresses, a
	 * default route via the first non-internal network's gateway, lo up,
	 * and the DNAT rules of its published ports. Its networks are brought
	 * up first when they are not. Idempotent: a second call fixes what is
	 * missing. On failure the container is detached again.
	 */
	int (*attach)(const struct net_state *st, const char *name, struct net_report *rep,
		      struct clbsd_err *err);
	/*
	 * Undo attach: the container's veths (found by their alias, so this
	 * works after the container is gone) and its port rules. Idempotent.
	 */
	int (*detach)(const char *name, struct clbsd_err *err);
	/*
	 * Make the host match st: bring every network up, re-plumb running
	 * containers whose veths, addresses or routes are missing, re-add
	 * missing rules and remove clbsd's bridges, veths, chains, rules and
	 * set elements that st does not want. rep lists what changed.
	 */
	int (*repair)(const struct net_state *st, struct net_report *rep, struct clbsd_err *err);
	/*
	 * Check container `name` of st: bridges, veths, addresses, routes,
	 * nft rules, forwarding, and whether another socket on the host holds
	 * a published port. Appends one line per check to lines: "ok ..." or
	 * "bad ...: what is wrong; fix: what to do". *n_bad counts the latter.
	 * Fails only when the check itself cannot run.
	 */
	int (*doctor)(const struct net_state *st, const char *name, struct strv *lines,
		      size_t *n_bad, struct clbsd_err *err);
};

/* The networking driver for this platform (picked by the build). */
const struct net_ops *net_default_ops(void);

#endif
