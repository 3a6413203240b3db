/*
 * IPAM: stable address assignment in one subnet. Pure; the caller persists
 * the pool with ipam_to_json() (fs_write_atomic) after every change.
 *
 * Entries are kept sorted by offset, one per offset, so "is this address
 * taken" is a binary search and a full pool is found in O(n log n). An
 * entry is live (the owner holds the address) or released (the owner let
 * it go, and gets it back if nobody took it meanwhile). New addresses are
 * taken next-fit from a cursor, so released ones are taken by strangers
 * only when nothing else is free.
 */
#include "net/net.h"
#include "util/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int ipam_init(struct ipam *p, const struct net_prefix *subnet, struct clbsd_err *err)
{
	char b[NET_PREFIX_STRLEN];
	unsigned max = subnet->addr.family == AF_INET ? 30 : 126;
	if (!net_prefix_valid(subnet))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "IPAM: %s is not a subnet",
					net_prefix_fmt(subnet, b));
	if (subnet->len > max)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"IPAM: subnet %s is too small; use a /%u or larger",
					net_prefix_fmt(subnet, b), max);
	memset(p, 0, sizeof(*p));
	p->subnet = *subnet;
	p->size = net_prefix_size(subnet);
	p->next = 2;
	return 0;
}

void ipam_release_all(struct ipam *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].owner);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

/* The first usable offset and one past the last. */
static uint64_t first_off(void)
{
	return 2;
}

static uint64_t end_off(const struct ipam *p)
{
	return p->subnet.addr.family == AF_INET ? p->size - 1 : p->size;
}

/* Index of the entry at off, or where it would go (*found false). */
static size_t find_off(const struct ipam *p, uint64_t off, bool *found)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->v[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < p->n && p->v[lo].off == off;
	return lo;
}

static struct ipam_entry *find_owner(const struct ipam *p, const char *owner, bool released)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].released == released && strcmp(p->v[i].owner, owner) == 0)
			return &p->v[i];
	return NULL;
}

static void remove_at(struct ipam *p, size_t i)
{
	free(p->v[i].owner);
	memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof(p->v[0]));
	p->n--;
}

/* Make off the owner's live address. off must be free or a released entry. */
static void take(struct ipam *p, const char *owner, uint64_t off)
{
	/* The owner's other entries go: one address per owner. */
	for (size_t k = 0; k < p->n;)
		if (p->v[k].off != off && strcmp(p->v[k].owner, owner) == 0)
			remove_at(p, k);
		else
			k++;
	bool found;
	size_t i = find_off(p, off, &found);
	if (found) {
		free(p->v[i].owner);
	} else {
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 16;
			p->v = xrealloc(p->v, p->cap * sizeof(p->v[0]));
		}
		memmove(&p->v[i + 1], &p->v[i], (p->n - i) * sizeof(p->v[0]));
		p->n++;
		p->v[i].off = off;
	}
	p->v[i].owner = xstrdup(owner);
	p->v[i].released = false;
}

/* The next free offset from the cursor, wrapping; released ones only when allowed. */
static bool next_free(const struct ipam *p, bool allow_released, uint64_t *out)
{
	uint64_t lo = first_off(), hi = end_off(p);
	uint64_t span = hi - lo;
	uint64_t start = p->next >= lo && p->next < hi ? p->next : lo;
	/* At most n entries can be in the way, so n + 1 probes find a hole if any. */
	uint64_t probes = (uint64_t)p->n + 1 < span ? (uint64_t)p->n + 1 : span;
	uint64_t off = start;
	for (uint64_t k = 0; k < probes; k++) {
		bool found;
		size_t i = find_off(p, off, &found);
		if (!found || (allow_released && p->v[i].released)) {
			*out = off;
			return true;
		}
		off = off + 1 < hi ? off + 1 : lo;
	}
	if (!allow_released)
		return false;
	/* Every probe hit a live entry; look for any released one. */
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].released) {
			*out = p->v[i].off;
			return true;
		}
	return false;
}

int ipam_assign(struct ipam *p, const char *owner, const struct net_addr *want,
		struct net_addr *out, struct clbsd_err *err)
{
	char a[NET_ADDR_STRLEN], s[NET_PREFIX_STRLEN];
	struct ipam_entry *live = find_owner(p, owner, false);
	uint64_t off;
	if (want && want->family) {
		if (!net_prefix_contains(&p->subnet, want) ||
		    net_prefix_offset(&p->subnet, want, &off) < 0)
			return clbsd_err_setmsg(
				err, CLBSD_E_INVALID, EINVAL, "%s: address %s is outside subnet %s",
				owner, net_addr_fmt(want, a), net_prefix_fmt(&p->subnet, s));
		if (net_prefix_reserved(&p->subnet, want))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"%s: address %s is reserved in %s (network, "
						"gateway or broadcast address); pin another",
						owner, net_addr_fmt(want, a),
						net_prefix_fmt(&p->subnet, s));
		bool found;
		size_t i = find_off(p, off, &found);
		if (found && !p->v[i].released && strcmp(p->v[i].owner, owner) != 0)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EADDRINUSE,
						"%s: address %s is already assigned to %s", owner,
						net_addr_fmt(want, a), p->v[i].owner);
		take(p, owner, off);
		*out = *want;
		return 0;
	}
	if (live) {
		net_prefix_at(&p->subnet, live->off, out);
		return 0;
	}
	struct ipam_entry *old = find_owner(p, owner, true);
	if (old) {
		off = old->off;
	} else if (!next_free(p, false, &off) && !next_free(p, true, &off)) {
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ENOSPC,
					"%s: no free address in %s: all %zu usable addresses are "
					"assigned; remove a container or use a larger subnet",
					owner, net_prefix_fmt(&p->subnet, s), ipam_used(p));
	} else {
		p->next = off + 1 < end_off(p) ? off + 1 : first_off();
	}
	take(p, owner, off);
	net_prefix_at(&p->subnet, off, out);
	return 0;
}

int ipam_lookup(const struct ipam *p, const char *owner, struct net_addr *out)
{
	struct ipam_entry *e = find_owner(p, owner, false);
	if (!e)
		return -ENOENT;
	net_prefix_at(&p->subnet, e->off, out);
	return 0;
}

void ipam_release(struct ipam *p, const char *owner)
{
	struct ipam_entry *e = find_owner(p, owner, false);
	if (!e)
		return;
	/* take() left the owner one entry, so this is the only one. */
	e->released = true;
}

size_t ipam_used(const struct ipam *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += !p->v[i].released;
	return n;
}

uint64_t ipam_capacity(const struct ipam *p)
{
	return end_off(p) - first_off();
}

/* ---- JSON ---- */

char *ipam_to_json(const struct ipam *p)
{
	char b[NET_PREFIX_STRLEN];
	json_t *o = json_object();
	json_t *as = json_object(), *rel = json_object();
	json_object_set_new(o, "subnet", json_string(net_prefix_fmt(&p->subnet, b)));
	struct net_addr a;
	net_prefix_at(&p->subnet, p->next, &a);
	json_object_set_new(o, "next", json_string(net_addr_fmt(&a, b)));
	for (size_t i = 0; i < p->n; i++) {
		net_prefix_at(&p->subnet, p->v[i].off, &a);
		json_object_set_new(p->v[i].released ? rel : as, p->v[i].owner,
				    json_string(net_addr_fmt(&a, b)));
	}
	json_object_set_new(o, "assigned", as);
	json_object_set_new(o, "released", rel);
	char *s = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(o);
	char *r = xstrdup(s);
	free(s);
	return r;
}

static int bad(struct clbsd_err *err, const char *what)
{
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "IPAM state: %s", what);
}

/* Load one map of owner -> address into p. */
static int load_map(struct ipam *p, json_t *map, bool released, struct clbsd_err *err)
{
	const char *owner;
	json_t *v;
	if (map && !json_is_object(map))
		return bad(err, "\"assigned\" and \"released\" must be objects");
	json_object_foreach(map, owner, v)
	{
		struct net_addr a;
		uint64_t off;
		if (!valid_name(owner))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"IPAM state: owner \"%s\" is not a name", owner);
		if (!json_is_string(v) || net_addr_parse(json_string_value(v), &a, err) < 0)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"IPAM state: \"%s\": not an address", owner);
		/* An address that no longer fits (the subnet changed) is dropped. */
		if (net_prefix_offset(&p->subnet, &a, &off) < 0 ||
		    net_prefix_reserved(&p->subnet, &a))
			continue;
		bool found;
		size_t i = find_off(p, off, &found);
		if (found && !p->v[i].released)
			continue; /* a live owner wins over a released one */
		if (found && released)
			continue;
		if (find_owner(p, owner, false))
			continue;
		take(p, owner, off);
		if (released)
			p->v[find_off(p, off, &found)].released = true;
	}
	return 0;
}

int ipam_from_json(const char *text, const struct net_prefix *subnet, struct ipam *out,
		   struct clbsd_err *err)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	if (!o)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "IPAM state: line %d: %s",
					je.line, je.text);
	struct net_prefix stored;
	struct net_addr next;
	struct ipam p;
	int r = -EINVAL;
	const char *sub = json_str(o, "subnet");
	if (!json_is_object(o) || !sub) {
		bad(err, "expected an object with \"subnet\"");
		goto out;
	}
	if (net_prefix_parse(sub, &stored, err) < 0) {
		clbsd_err_prefix(err, "IPAM state");
		goto out;
	}
	if (ipam_init(&p, subnet ? subnet : &stored, err) < 0)
		goto out;
	/* Live entries first, so a released entry never displaces a live one. */
	if (load_map(&p, json_object_get(o, "assigned"), false, err) < 0 ||
	    load_map(&p, json_object_get(o, "released"), true, err) < 0) {
		ipam_release_all(&p);
		goto out;
	}
	const char *nx = json_str(o, "next");
	uint64_t off;
	if (nx && net_addr_parse(nx, &next, err) == 0 &&
	    net_prefix_offset(&p.subnet, &next, &off) == 0 && off >= first_off() &&
	    off < end_off(&p))
		p.next = off;
	*out = p;
	r = 0;
out:
	json_decref(o);
	return r;
}
