/*
 * IPv4 and IPv6 addresses, prefixes and published-port entries: parsing,
 * formatting and arithmetic. Pure: no I/O. Below both the configuration
 * reader and the network driver, which check the same strings.
 */
#include "util/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static size_t alen(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

int net_addr_parse(const char *s, struct net_addr *out, struct clbsd_err *err)
{
	struct net_addr a;
	memset(&a, 0, sizeof(a));
	if (s && inet_pton(AF_INET, s, a.b) == 1)
		a.family = AF_INET;
	else if (s && inet_pton(AF_INET6, s, a.b) == 1)
		a.family = AF_INET6;
	else
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"\"%s\" is not an IPv4 or IPv6 address", s ? s : "");
	*out = a;
	return 0;
}

const char *net_addr_fmt(const struct net_addr *a, char *buf)
{
	if (!a->family || !inet_ntop(a->family, a->b, buf, NET_ADDR_STRLEN))
		snprintf(buf, NET_ADDR_STRLEN, "-");
	return buf;
}

bool net_addr_eq(const struct net_addr *a, const struct net_addr *b)
{
	return a->family == b->family && memcmp(a->b, b->b, alen(a->family)) == 0;
}

bool net_addr_is_loopback(const struct net_addr *a)
{
	static const uint8_t v6lo[16] = {[15] = 1};
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	if (a->family == AF_INET)
		return a->b[0] == 127;
	if (a->family == AF_INET6)
		return memcmp(a->b, v6lo, 16) == 0 ||
		       (memcmp(a->b, mapped, 12) == 0 && a->b[12] == 127);
	return false;
}

/* Clear the bits after the first len. */
static void mask(struct net_addr *a, unsigned len)
{
	size_t n = alen(a->family);
	for (size_t i = 0; i < n; i++) {
		unsigned bit = (unsigned)i * 8;
		if (bit >= len)
			a->b[i] = 0;
		else if (len - bit < 8)
			a->b[i] &= (uint8_t)(0xff << (8 - (len - bit)));
	}
}

int net_prefix_parse(const char *s, struct net_prefix *out, struct clbsd_err *err)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"\"%s\" is not a subnet; write it as ADDRESS/LENGTH, e.g. "
					"\"10.88.0.0/24\" or \"fd00:88::/64\"",
					s ? s : "");
	autofree char *host = xstrndup(s, (size_t)(slash - s));
	struct net_prefix p;
	memset(&p, 0, sizeof(p));
	if (net_addr_parse(host, &p.addr, err) < 0)
		return clbsd_err_prefix(err, "subnet \"%s\"", s);
	long long len;
	unsigned max = p.addr.family == AF_INET ? 32 : 128;
	if (parse_int(slash + 1, 0, max, &len) < 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"subnet \"%s\": the length must be 0-%u", s, max);
	p.len = (unsigned)len;
	struct net_addr net = p.addr;
	mask(&net, p.len);
	if (!net_addr_eq(&net, &p.addr)) {
		char b[NET_ADDR_STRLEN];
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"subnet \"%s\" has host bits set; did you mean "
					"\"%s/%u\"?",
					s, net_addr_fmt(&net, b), p.len);
	}
	*out = p;
	return 0;
}

const char *net_prefix_fmt(const struct net_prefix *p, char *buf)
{
	char a[NET_ADDR_STRLEN];
	snprintf(buf, NET_PREFIX_STRLEN, "%s/%u", net_addr_fmt(&p->addr, a), p->len);
	return buf;
}

bool net_prefix_valid(const struct net_prefix *p)
{
	if (!alen(p->addr.family) || p->len > alen(p->addr.family) * 8)
		return false;
	struct net_addr m = p->addr;
	mask(&m, p->len);
	return net_addr_eq(&m, &p->addr);
}

bool net_prefix_contains(const struct net_prefix *p, const struct net_addr *a)
{
	if (!p->addr.family || a->family != p->addr.family)
		return false;
	struct net_addr m = *a;
	mask(&m, p->len);
	return net_addr_eq(&m, &p->addr);
}

bool net_prefix_overlaps(const struct net_prefix *a, const struct net_prefix *b)
{
	if (!a->addr.family || a->addr.family != b->addr.family)
		return false;
	return a->len <= b->len ? net_prefix_contains(a, &b->addr)
				: net_prefix_contains(b, &a->addr);
}

void net_prefix_gateway(const struct net_prefix *p, struct net_addr *out)
{
	*out = p->addr;
	size_t n = alen(out->family);
	for (size_t i = n; i-- > 0;)
		if (++out->b[i] != 0)
			break;
}

/* ---- interface names ---- */

/* ---- published ports ---- */

const char *net_proto_name(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "udp" : proto == IPPROTO_TCP ? "tcp" : "?";
}

static int port_num(const char *s, size_t n, uint16_t *out)
{
	char tmp[8];
	long long v;
	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (parse_int(tmp, 1, 65535, &v) < 0)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int net_port_parse(const char *s, struct net_port *out, struct clbsd_err *err)
{
	static const char usage[] = "write HOST_PORT:PORT[/tcp|/udp], optionally after a host "
				    "address (\"127.0.0.1:8080:80\", \"[::1]:8080:80\")";
	struct net_port p;
	memset(&p, 0, sizeof(p));
	p.proto = IPPROTO_TCP;
	if (!s || !*s)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, ":publish \"\": %s", usage);
	autofree char *t = xstrdup(s);
	char *slash = strrchr(t, '/');
	if (slash) {
		*slash = '\0';
		if (strcmp(slash + 1, "tcp") == 0)
			p.proto = IPPROTO_TCP;
		else if (strcmp(slash + 1, "udp") == 0)
			p.proto = IPPROTO_UDP;
		else
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						":publish \"%s\": unknown protocol \"%s\" (tcp or "
						"udp)",
						s, slash + 1);
	}
	char *ports = t;
	if (t[0] == '[') {
		char *close = strchr(t, ']');
		if (!close || close[1] != ':')
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, ":publish \"%s\": %s",
						s, usage);
		*close = '\0';
		if (net_addr_parse(t + 1, &p.host_ip, err) < 0 || p.host_ip.family != AF_INET6)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						":publish \"%s\": \"%s\" is not an IPv6 address", s,
						t + 1);
		ports = close + 2;
		if (!strchr(ports, ':'))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, ":publish \"%s\": %s",
						s, usage);
	} else {
		char *first = strchr(t, ':');
		char *last = strrchr(t, ':');
		if (first && first != last) {
			/* ADDR:HOST:CTR; an unbracketed IPv6 address is ambiguous. */
			*first = '\0';
			if (net_addr_parse(t, &p.host_ip, err) < 0 || p.host_ip.family != AF_INET)
				return clbsd_err_setmsg(
					err, CLBSD_E_INVALID, EINVAL,
					":publish \"%s\": \"%s\" is not an IPv4 address (put an "
					"IPv6 address in brackets: \"[::1]:8080:80\")",
					s, t);
			ports = first + 1;
		}
	}
	char *colon = strchr(ports, ':');
	int r;
	if (colon) {
		r = port_num(ports, (size_t)(colon - ports), &p.host_port);
		if (r == 0)
			r = port_num(colon + 1, strlen(colon + 1), &p.port);
	} else {
		r = port_num(ports, strlen(ports), &p.port);
		p.host_port = p.port;
	}
	if (r < 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					":publish \"%s\": ports must be 1-65535; %s", s, usage);
	*out = p;
	return 0;
}

const char *net_port_fmt(const struct net_port *p, char *buf)
{
	char a[NET_ADDR_STRLEN];
	if (p->host_ip.family == AF_INET6)
		snprintf(buf, 96, "[%s]:%u:%u/%s", net_addr_fmt(&p->host_ip, a), p->host_port,
			 p->port, net_proto_name(p->proto));
	else if (p->host_ip.family == AF_INET)
		snprintf(buf, 96, "%s:%u:%u/%s", net_addr_fmt(&p->host_ip, a), p->host_port,
			 p->port, net_proto_name(p->proto));
	else
		snprintf(buf, 96, "%u:%u/%s", p->host_port, p->port, net_proto_name(p->proto));
	return buf;
}

/* ---- offsets ---- */

uint64_t net_prefix_size(const struct net_prefix *p)
{
	unsigned bits = (p->addr.family == AF_INET ? 32 : 128) - p->len;
	return bits >= 63 ? (uint64_t)1 << 63 : (uint64_t)1 << bits;
}

int net_prefix_offset(const struct net_prefix *p, const struct net_addr *a, uint64_t *off)
{
	if (!net_prefix_contains(p, a))
		return -ERANGE;
	size_t n = alen(a->family);
	/* Bytes before the last eight must equal the network's (IPv6 beyond 2^64). */
	for (size_t i = 0; i + 8 < n; i++)
		if (a->b[i] != p->addr.b[i])
			return -ERANGE;
	uint64_t v = 0, base = 0;
	for (size_t i = n > 8 ? n - 8 : 0; i < n; i++) {
		v = v << 8 | a->b[i];
		base = base << 8 | p->addr.b[i];
	}
	if (v - base >= net_prefix_size(p))
		return -ERANGE;
	*off = v - base;
	return 0;
}

void net_prefix_at(const struct net_prefix *p, uint64_t off, struct net_addr *out)
{
	*out = p->addr;
	size_t n = alen(out->family);
	unsigned carry = 0;
	for (size_t i = n; i-- > 0;) {
		unsigned v = out->b[i] + (unsigned)(off & 0xff) + carry;
		out->b[i] = (uint8_t)v;
		carry = v >> 8;
		off >>= 8;
		if (!off && !carry)
			break;
	}
}

bool net_prefix_reserved(const struct net_prefix *p, const struct net_addr *a)
{
	uint64_t off;
	if (net_prefix_offset(p, a, &off) < 0)
		return false;
	return off <= 1 || (p->addr.family == AF_INET && off == net_prefix_size(p) - 1);
}
