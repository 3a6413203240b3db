/*
 * Interface names, :network modes and reports. Pure: no I/O. (Addresses,
 * prefixes and :publish entries are util/netaddr.c.)
 */
#include "net/net.h"
#include "util/hash.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

bool net_valid_ifname(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n >= NET_IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' || *c == '-'))
			return false;
	return true;
}

/* prefix + name when it fits, else prefix + 8 hex digits of the name's SHA-256. */
static void short_name(const char *prefix, const char *name, char out[NET_IFNAMSIZ])
{
	size_t np = strlen(prefix), nn = strlen(name);
	char h[65];
	if (np + nn >= NET_IFNAMSIZ) {
		hash_sha256_hex(name, nn, h);
		name = h;
		nn = 8;
	}
	if (np + nn >= NET_IFNAMSIZ) /* a prefix this long is a bug; keep it in bounds */
		np = NET_IFNAMSIZ - 1 - nn;
	memcpy(out, prefix, np);
	memcpy(out + np, name, nn);
	out[np + nn] = '\0';
}

void net_bridge_name(const char *network, char out[NET_IFNAMSIZ])
{
	short_name("cbr-", network, out);
}

void net_veth_name(const char *container, size_t idx, char out[NET_IFNAMSIZ])
{
	char prefix[8];
	snprintf(prefix, sizeof(prefix), "cb%zu-", idx % NET_MAX_ENDPOINTS);
	short_name(prefix, container, out);
}

/* ---- modes ---- */

int net_mode_parse(const char *const *words, size_t n, enum net_mode *out, struct clbsd_err *err)
{
	if (n == 0) {
		*out = NET_MODE_NETWORKS;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		bool alone = strcmp(words[i], "none") == 0 || strcmp(words[i], "host") == 0;
		if (alone && n > 1)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						":network %s cannot be combined with other "
						"networks",
						words[i]);
		if (!alone && strcmp(words[i], "bridge") != 0 && !valid_name(words[i]))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						":network \"%s\" is not a network name (a DNS "
						"label), \"bridge\", \"host\" or \"none\"",
						words[i]);
		for (size_t j = 0; j < i; j++)
			if (strcmp(words[i], words[j]) == 0)
				return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
							":network lists \"%s\" twice", words[i]);
	}
	if (n > NET_MAX_ENDPOINTS)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, E2BIG,
					":network lists %zu networks; at most %d are supported", n,
					NET_MAX_ENDPOINTS);
	*out = strcmp(words[0], "none") == 0   ? NET_MODE_NONE
	       : strcmp(words[0], "host") == 0 ? NET_MODE_HOST
					       : NET_MODE_NETWORKS;
	return 0;
}

/* ---- reports ---- */

void net_report_init(struct net_report *r)
{
	strv_init(&r->changes);
	r->forwarding_enabled = false;
}

void net_report_release(struct net_report *r)
{
	strv_release(&r->changes);
	r->forwarding_enabled = false;
}
