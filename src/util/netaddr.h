/*
 * Addresses, prefixes and published ports (util/netaddr.c): the pure
 * parsing and arithmetic that both the configuration's checks (src/conf,
 * src/core) and the network driver (src/net) need, so neither imports the
 * other. No I/O.
 */
#ifndef CLBSD_UTIL_NETADDR_H
#define CLBSD_UTIL_NETADDR_H

#include "util/util.h"

#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_ADDR_STRLEN	  46 /* INET6_ADDRSTRLEN */
#define NET_PREFIX_STRLEN 50 /* address, '/', up to 3 digits */

/* An IPv4 or IPv6 address; family 0 means "none". Bytes in network order. */
struct net_addr {
	int family; /* AF_INET, AF_INET6 or 0 */
	uint8_t b[16];
};

/* A subnet: the network address (host bits zero) and the prefix length. */
struct net_prefix {
	struct net_addr addr;
	unsigned len;
};

/* Parse "10.88.0.5" or "fd00::5" (no zone, no brackets). */
int net_addr_parse(const char *s, struct net_addr *out, struct clbsd_err *err);
/* Format into buf (NET_ADDR_STRLEN bytes); "-" for family 0. Returns buf. */
const char *net_addr_fmt(const struct net_addr *a, char *buf);
bool net_addr_eq(const struct net_addr *a, const struct net_addr *b);
/* 127.0.0.0/8 or ::1 (and ::ffff:127.0.0.0/104). */
bool net_addr_is_loopback(const struct net_addr *a);
/*
 * Parse "10.88.0.0/24" or "fd00:88::/64". Host bits must be zero: the error
 * for "10.88.0.5/24" suggests "10.88.0.0/24".
 */
int net_prefix_parse(const char *s, struct net_prefix *out, struct clbsd_err *err);
/* Format into buf (NET_PREFIX_STRLEN bytes). Returns buf. */
const char *net_prefix_fmt(const struct net_prefix *p, char *buf);
/* A known family, a length that fits it, and no host bits set. */
bool net_prefix_valid(const struct net_prefix *p);
bool net_prefix_contains(const struct net_prefix *p, const struct net_addr *a);
bool net_prefix_overlaps(const struct net_prefix *a, const struct net_prefix *b);
/* The gateway of a subnet, the first address after the network address. */
void net_prefix_gateway(const struct net_prefix *p, struct net_addr *out);
/*
 * Offsets of addresses from the network address. A subnet covers
 * net_prefix_size() offsets: 2^(host bits), capped at 2^63 for IPv6.
 * net_prefix_offset() fails (-ERANGE) for an address outside that range.
 */
uint64_t net_prefix_size(const struct net_prefix *p);
int net_prefix_offset(const struct net_prefix *p, const struct net_addr *a, uint64_t *off);
void net_prefix_at(const struct net_prefix *p, uint64_t off, struct net_addr *out);
/* The network address, the gateway, or (IPv4) the broadcast address. */
bool net_prefix_reserved(const struct net_prefix *p, const struct net_addr *a);

/* ---- published ports ---- */

struct net_port {
	struct net_addr host_ip; /* family 0: every address of the host */
	uint16_t host_port;
	uint16_t port; /* in the container */
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
};
/*
 * Parse one :publish entry: "8080:80", "80" (same port), "8080:80/udp",
 * "127.0.0.1:5353:53/udp", "[::1]:8080:80/tcp". Ports 1-65535.
 */
int net_port_parse(const char *s, struct net_port *out, struct clbsd_err *err);
/* "127.0.0.1:5353:53/udp", "8080:80/tcp" into buf (96 bytes). Returns buf. */
const char *net_port_fmt(const struct net_port *p, char *buf);
const char *net_proto_name(uint8_t proto);

#endif
