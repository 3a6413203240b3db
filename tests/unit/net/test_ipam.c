#include "net/net.h"
#include "nettest.h"
#include "test.h"

#include <errno.h>
#include <sys/socket.h>

/* The owner's address as text ("" on failure). */
static const char *assign(struct ipam *p, const char *owner, const char *want)
{
	static char buf[NET_ADDR_STRLEN];
	struct net_addr w, a;
	struct clbsd_err err;
	if (want)
		w = ip(want);
	if (ipam_assign(p, owner, want ? &w : NULL, &a, &err) < 0)
		return "";
	return net_addr_fmt(&a, buf);
}

TEST(prefix_parse_and_format)
{
	struct net_prefix p;
	struct clbsd_err err;
	char b[NET_PREFIX_STRLEN];
	CHECK_INT(net_prefix_parse("10.88.0.0/24", &p, &err), 0);
	CHECK_STR(net_prefix_fmt(&p, b), "10.88.0.0/24");
	CHECK_INT(net_prefix_parse("fd00:88::/64", &p, &err), 0);
	CHECK_STR(net_prefix_fmt(&p, b), "fd00:88::/64");
	CHECK(net_prefix_parse("10.88.0.5/24", &p, &err) < 0);
	CHECK(strstr(err.msg, "did you mean \"10.88.0.0/24\"") != NULL);
	CHECK(net_prefix_parse("10.88.0.0", &p, &err) < 0);
	CHECK(net_prefix_parse("10.88.0.0/33", &p, &err) < 0);
	CHECK(net_prefix_parse("nope/8", &p, &err) < 0);
}

TEST(sequential_v4_and_reserved)
{
	struct ipam p;
	struct clbsd_err err;
	struct net_prefix s = pfx("10.88.0.0/24");
	CHECK_INT(ipam_init(&p, &s, &err), 0);
	/* .0 network, .1 gateway are never handed out. */
	CHECK_STR(assign(&p, "web", NULL), "10.88.0.2");
	CHECK_STR(assign(&p, "db", NULL), "10.88.0.3");
	CHECK_INT(ipam_capacity(&p), 253);
	CHECK_INT(ipam_used(&p), 2);
	ipam_release_all(&p);
}

TEST(stable_across_restart_and_recreate)
{
	struct ipam p;
	struct clbsd_err err;
	struct net_prefix s = pfx("10.88.0.0/24");
	CHECK_INT(ipam_init(&p, &s, &err), 0);
	CHECK_STR(assign(&p, "web", NULL), "10.88.0.2");
	CHECK_STR(assign(&p, "db", NULL), "10.88.0.3");
	/* A restart asks again: same address. */
	CHECK_STR(assign(&p, "web", NULL), "10.88.0.2");
	/* A recreate may release first: the address waits for its owner. */
	ipam_release(&p, "web");
	CHECK_STR(assign(&p, "cache", NULL), "10.88.0.4");
	CHECK_STR(assign(&p, "web", NULL), "10.88.0.2");
	CHECK_INT(ipam_used(&p), 3);
	/* And across a daemon restart (the JSON round trip). */
	ipam_release(&p, "db");
	char *j = ipam_to_json(&p);
	struct ipam q;
	CHECK_INT(ipam_from_json(j, NULL, &q, &err), 0);
	free(j);
	CHECK_STR(assign(&q, "web", NULL), "10.88.0.2");
	CHECK_STR(assign(&q, "cache", NULL), "10.88.0.4");
	CHECK_STR(assign(&q, "new", NULL), "10.88.0.5");
	CHECK_STR(assign(&q, "db", NULL), "10.88.0.3");
	ipam_release_all(&p);
	ipam_release_all(&q);
}

TEST(exhaustion_of_a_28)
{
	struct ipam p;
	struct clbsd_err err;
	struct net_prefix s = pfx("10.88.0.0/28");
	CHECK_INT(ipam_init(&p, &s, &err), 0);
	/* 16 addresses minus network, gateway and broadcast. */
	CHECK_INT(ipam_capacity(&p), 13);
	char name[16];
	for (int i = 0; i < 13; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		CHECK(assign(&p, name, NULL)[0] != '\0');
	}
	CHECK_STR(assign(&p, "c12", NULL), "10.88.0.14");
	struct net_addr a;
	int r = ipam_assign(&p, "late", NULL, &a, &err);
	CHECK_INT(r, -ENOSPC);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(strstr(err.msg, "no free address in 10.88.0.0/28") != NULL);
	CHECK(strstr(err.msg, "all 13 usable addresses are assigned") != NULL);
	/* A released address is given to a stranger only when nothing else is free. */
	ipam_release(&p, "c3");
	CHECK_STR(assign(&p, "late", NULL), "10.88.0.5");
	CHECK(ipam_assign(&p, "c3", NULL, &a, &err) == -ENOSPC);
	ipam_release_all(&p);
}

TEST(released_reused_last)
{
	struct ipam p;
	struct clbsd_err err;
	struct net_prefix s = pfx("10.88.0.0/29");
	CHECK_INT(ipam_init(&p, &s, &err), 0);
	CHECK_STR(assign(&p, "a", NULL), "10.88.0.2");
	ipam_release(&p, "a");
	CHECK_STR(assign(&p, "b", NULL), "10.88.0.3");
	CHECK_STR(assign(&p, "c", NULL), "10.88.0.4");
	CHECK_STR(assign(&p, "d", NULL), "10.88.0.5");
	CHECK_STR(assign(&p, "e", NULL), "10.88.0.6");
	/* Only a's old address is left. */
	CHECK_STR(assign(&p, "f", NULL), "10.88.0.2");
	ipam_release_all(&p);
}

TEST(pinned_addresses)
{
	struct ipam p;
	struct clbsd_err err;
	struct net_prefix s = pfx("10.88.0.0/24");
	struct net_addr a, w;
	CHECK_INT(ipam_init(&p, &s, &err), 0);
	CHECK_STR(assign(&p, "dns", "10.88.0.53"), "10.88.0.53");
	CHECK_STR(assign(&p, "dns", NULL), "10.88.0.53");
	w = ip("10.88.0.53");
	CHECK_INT(ipam_assign(&p, "other", &w, &a, &err), -EADDRINUSE);
	CHECK(strstr(err.msg, "already assigned to dns") != NULL);
	w = ip("10.89.0.5");
	CHECK_INT(ipam_assign(&p, "x", &w, &a, &err), -EINVAL);
	CHECK(strstr(err.msg, "outside subnet 10.88.0.0/24") != NULL);
	w = ip("10.88.0.1");
	CHECK_INT(ipam_assign(&p, "x", &w, &a, &err), -EINVAL);
	CHECK(strstr(err.msg, "reserved") != NULL);
	w = ip("10.88.0.255");
	CHECK_INT(ipam_assign(&p, "x", &w, &a, &err), -EINVAL);
	/* Re-pinning moves the owner and frees the old address. */
	CHECK_STR(assign(&p, "dns", "10.88.0.54"), "10.88.0.54");
	CHECK_STR(assign(&p, "other", "10.88.0.53"), "10.88.0.53");
	CHECK_INT(ipam_used(&p), 2);
	/* Sequential assignment skips pinned addresses. */
	CHECK_STR(assign(&p, "web", NULL), "10.88.0.2");
	ipam_release_all(&p);
}

TEST(ipv6)
{
	struct ipam p;
	struct clbsd_err err;
	struct net_prefix s = pfx("fd00:88::/64");
	CHECK_INT(ipam_init(&p, &s, &err), 0);
	CHECK_STR(assign(&p, "web", NULL), "fd00:88::2");
	CHECK_STR(assign(&p, "db", NULL), "fd00:88::3");
	CHECK_STR(assign(&p, "pin", "fd00:88::1:0:0:5"), "fd00:88::1:0:0:5");
	CHECK_STR(assign(&p, "web", NULL), "fd00:88::2");
	CHECK(ipam_capacity(&p) > 1000000);
	char *j = ipam_to_json(&p);
	struct ipam q;
	CHECK_INT(ipam_from_json(j, NULL, &q, &err), 0);
	free(j);
	CHECK_STR(assign(&q, "pin", NULL), "fd00:88::1:0:0:5");
	CHECK_STR(assign(&q, "new", NULL), "fd00:88::4");
	ipam_release_all(&q);
	/* A small v6 subnet fills up too (no broadcast is reserved). */
	s = pfx("fd00:1::/126");
	struct net_addr a;
	CHECK_INT(ipam_init(&q, &s, &err), 0);
	CHECK_STR(assign(&q, "a", NULL), "fd00:1::2");
	CHECK_STR(assign(&q, "b", NULL), "fd00:1::3");
	CHECK_INT(ipam_assign(&q, "c", NULL, &a, &err), -ENOSPC);
	ipam_release_all(&q);
	ipam_release_all(&p);
}

TEST(json_subnet_change_keeps_what_fits)
{
	struct ipam p, q;
	struct clbsd_err err;
	struct net_prefix s = pfx("10.88.0.0/24");
	CHECK_INT(ipam_init(&p, &s, &err), 0);
	CHECK_STR(assign(&p, "low", NULL), "10.88.0.2");
	CHECK_STR(assign(&p, "high", "10.88.0.200"), "10.88.0.200");
	char *j = ipam_to_json(&p);
	struct net_prefix small = pfx("10.88.0.0/25");
	CHECK_INT(ipam_from_json(j, &small, &q, &err), 0);
	free(j);
	struct net_addr a;
	CHECK_INT(ipam_lookup(&q, "low", &a), 0);
	CHECK_INT(ipam_lookup(&q, "high", &a), -ENOENT);
	ipam_release_all(&p);
	ipam_release_all(&q);
}

TEST(json_rejects_garbage)
{
	struct ipam q;
	struct clbsd_err err;
	CHECK(ipam_from_json("{", NULL, &q, &err) < 0);
	CHECK(ipam_from_json("{\"assigned\":{}}", NULL, &q, &err) < 0);
	const char *bad_owner =
		"{\"subnet\":\"10.0.0.0/24\",\"assigned\":{\"Bad Name\":\"10.0.0.2\"}}";
	CHECK(ipam_from_json(bad_owner, NULL, &q, &err) < 0);
	CHECK(strstr(err.msg, "Bad Name") != NULL);
	CHECK(ipam_from_json("{\"subnet\":\"10.0.0.0/24\",\"assigned\":{\"a\":5}}", NULL, &q,
			     &err) < 0);
	/* Two owners claiming one address: the first live one wins. */
	CHECK_INT(ipam_from_json("{\"subnet\":\"10.0.0.0/24\",\"assigned\":{\"a\":\"10.0.0.2\","
				 "\"b\":\"10.0.0.2\"}}",
				 NULL, &q, &err),
		  0);
	CHECK_INT(ipam_used(&q), 1);
	ipam_release_all(&q);
}

TEST(too_small_subnets)
{
	struct ipam p;
	struct clbsd_err err;
	struct net_prefix s = pfx("10.0.0.0/31");
	CHECK(ipam_init(&p, &s, &err) < 0);
	CHECK(strstr(err.msg, "too small") != NULL);
	s = pfx("10.0.0.0/30");
	CHECK_INT(ipam_init(&p, &s, &err), 0);
	CHECK_STR(assign(&p, "only", NULL), "10.0.0.2");
	ipam_release_all(&p);
}

TEST_MAIN_BEGIN("net.ipam")
RUN(prefix_parse_and_format);
RUN(sequential_v4_and_reserved);
RUN(stable_across_restart_and_recreate);
RUN(exhaustion_of_a_28);
RUN(released_reused_last);
RUN(pinned_addresses);
RUN(ipv6);
RUN(json_subnet_change_keeps_what_fits);
RUN(json_rejects_garbage);
RUN(too_small_subnets);
TEST_MAIN_END
