/* Addresses, :publish, interface names, :network modes and the state check. */
#include "net/net.h"
#include "nettest.h"
#include "test.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

static const char *port(const char *s)
{
	static char buf[96];
	struct net_port p;
	struct clbsd_err err;
	if (net_port_parse(s, &p, &err) < 0)
		return "";
	return net_port_fmt(&p, buf);
}

TEST(publish_forms)
{
	CHECK_STR(port("8080:80"), "8080:80/tcp");
	CHECK_STR(port("80"), "80:80/tcp");
	CHECK_STR(port("5353:53/udp"), "5353:53/udp");
	CHECK_STR(port("127.0.0.1:5353:53/udp"), "127.0.0.1:5353:53/udp");
	CHECK_STR(port("[::1]:8080:80/tcp"), "[::1]:8080:80/tcp");
	CHECK_STR(port("[fd00::1]:8080:80"), "[fd00::1]:8080:80/tcp");
	const char *bad[] = {"",
			     "0:80",
			     "8080:0",
			     "70000:80",
			     "8080:80/sctp",
			     "::1:8080:80",
			     "host:8080:80",
			     "[::1]8080:80",
			     "[10.0.0.1]:1:2",
			     "a:b",
			     "8080:"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct net_port p;
		struct clbsd_err err;
		if (net_port_parse(bad[i], &p, &err) == 0)
			FAILF("\"%s\" was accepted", bad[i]);
		if (!strstr(err.msg, ":publish"))
			FAILF("\"%s\": the error does not name :publish: %s", bad[i], err.msg);
	}
}

TEST(interface_names)
{
	char n[NET_IFNAMSIZ];
	net_bridge_name("back", n);
	CHECK_STR(n, "cbr-back");
	net_bridge_name("a-very-long-network-name", n);
	CHECK(strncmp(n, "cbr-", 4) == 0 && strlen(n) == 12);
	CHECK(net_valid_ifname(n));
	net_veth_name("web", 0, n);
	CHECK_STR(n, "cb0-web");
	net_veth_name("exactly11ch", 3, n);
	CHECK_STR(n, "cb3-exactly11ch");
	net_veth_name("twelve-chars", 1, n);
	CHECK(strncmp(n, "cb1-", 4) == 0 && strlen(n) == 12);
	char m[NET_IFNAMSIZ];
	net_veth_name("twelve-chars", 2, m);
	CHECK(strcmp(n + 4, m + 4) == 0); /* the same hash for every endpoint */
	CHECK(!net_valid_ifname(""));
	CHECK(!net_valid_ifname("sixteen-chars-xx"));
	CHECK(!net_valid_ifname("a b"));
	CHECK(!net_valid_ifname("a\"b"));
	CHECK(!net_valid_ifname(".."));
}

TEST(modes)
{
	enum net_mode m;
	struct clbsd_err err;
	const char *host[] = {"host"}, *none[] = {"none"}, *two[] = {"bridge", "back"};
	const char *mixed[] = {"host", "back"}, *dup[] = {"back", "back"}, *bad[] = {"Back"};
	CHECK_INT(net_mode_parse(NULL, 0, &m, &err), 0);
	CHECK_INT(m, NET_MODE_NETWORKS);
	CHECK_INT(net_mode_parse(host, 1, &m, &err), 0);
	CHECK_INT(m, NET_MODE_HOST);
	CHECK_INT(net_mode_parse(none, 1, &m, &err), 0);
	CHECK_INT(m, NET_MODE_NONE);
	CHECK_INT(net_mode_parse(two, 2, &m, &err), 0);
	CHECK_INT(m, NET_MODE_NETWORKS);
	CHECK(net_mode_parse(mixed, 2, &m, &err) < 0);
	CHECK(strstr(err.msg, "host cannot be combined") != NULL);
	CHECK(net_mode_parse(dup, 2, &m, &err) < 0);
	CHECK(net_mode_parse(bad, 1, &m, &err) < 0);
}

TEST(offsets)
{
	struct net_prefix p = pfx("10.88.0.0/24");
	struct net_addr a, g;
	uint64_t off;
	char b[NET_ADDR_STRLEN];
	net_prefix_gateway(&p, &g);
	CHECK_STR(net_addr_fmt(&g, b), "10.88.0.1");
	a = ip("10.88.0.255");
	CHECK(net_prefix_reserved(&p, &a));
	a = ip("10.88.0.254");
	CHECK(!net_prefix_reserved(&p, &a));
	CHECK_INT(net_prefix_offset(&p, &a, &off), 0);
	CHECK_INT(off, 254);
	a = ip("10.88.1.0");
	CHECK_INT(net_prefix_offset(&p, &a, &off), -ERANGE);
	p = pfx("fd00::/48");
	a = ip("fd00:0:0:1::");
	CHECK_INT(net_prefix_offset(&p, &a, &off), -ERANGE); /* beyond the first 2^63 */
	net_prefix_at(&p, 0x1ff, &a);
	CHECK_STR(net_addr_fmt(&a, b), "fd00::1ff");
	struct net_prefix q = pfx("10.0.0.0/8"), r = pfx("10.88.0.0/16");
	CHECK(net_prefix_overlaps(&q, &r) && net_prefix_overlaps(&r, &q));
	a = ip("127.0.0.53");
	CHECK(net_addr_is_loopback(&a));
	a = ip("::ffff:127.0.0.1");
	CHECK(net_addr_is_loopback(&a));
}

/* A valid state to break one way at a time. */
struct fixture {
	struct net_network nets[2];
	struct net_endpoint web_eps[1], db_eps[2];
	struct net_port web_ports[2];
	struct net_container ctrs[2];
	struct net_state st;
};

static void fixture(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->nets[0] = (struct net_network){"default", "clbsd0", pfx("10.88.0.0/24"),
					  pfx("fd00:88::/64"), false};
	f->nets[1] = (struct net_network){"back", "cbr-back", pfx("10.89.0.0/24"), {{0}, 0}, true};
	f->web_eps[0] =
		(struct net_endpoint){"default", ip("10.88.0.2"), ip("fd00:88::2"), NULL, 0};
	f->db_eps[0] = (struct net_endpoint){"back", ip("10.89.0.3"), {0, {0}}, NULL, 0};
	f->db_eps[1] = (struct net_endpoint){"default", ip("10.88.0.3"), ip("fd00:88::3"), NULL, 0};
	struct clbsd_err err;
	net_port_parse("8080:80", &f->web_ports[0], &err);
	net_port_parse("127.0.0.1:5353:53/udp", &f->web_ports[1], &err);
	f->ctrs[0] = (struct net_container){"web", 100, -1, f->web_eps, 1, f->web_ports, 2, false};
	f->ctrs[1] = (struct net_container){"db", 0, -1, f->db_eps, 2, NULL, 0, false};
	f->st = (struct net_state){f->nets, 2, f->ctrs, 2};
}

TEST(state_check_accepts_and_refuses)
{
	struct fixture f;
	struct clbsd_err err;
	fixture(&f);
	CHECK_INT(net_state_check(&f.st, &err), 0);
	/* db's primary endpoint is default (back is internal). */
	CHECK_STR(net_primary_endpoint(&f.st, &f.ctrs[1])->network, "default");

	fixture(&f);
	f.nets[1].subnet4 = pfx("10.88.0.0/16");
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "overlaps network default") != NULL);

	fixture(&f);
	f.nets[1].bridge = "clbsd0";
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "both use bridge clbsd0") != NULL);

	fixture(&f);
	f.nets[1].bridge = "way-too-long-bridge";
	CHECK(net_state_check(&f.st, &err) < 0);

	fixture(&f);
	f.db_eps[1].ip4 = ip("10.88.0.2");
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "10.88.0.2 on network default is also container web's") != NULL);

	fixture(&f);
	f.web_eps[0].ip4 = ip("10.88.0.1");
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "reserved") != NULL);

	fixture(&f);
	f.web_eps[0].ip4 = ip("10.89.0.9");
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "outside network default's subnet 10.88.0.0/24") != NULL);

	fixture(&f);
	f.web_eps[0].ip6.family = 0;
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "no IPv6 address on network default") != NULL);

	fixture(&f);
	f.web_eps[0].network = "nowhere";
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "unknown network \"nowhere\"") != NULL);

	/* Port collisions: the same host port, or a wildcard against a specific address. */
	fixture(&f);
	f.ctrs[1].ports = &f.web_ports[0];
	f.ctrs[1].n_ports = 1;
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "collides with 8080:80/tcp of container web") != NULL);

	fixture(&f);
	struct net_port p;
	net_port_parse("5353:53/udp", &p, &err);
	f.ctrs[1].ports = &p;
	f.ctrs[1].n_ports = 1;
	CHECK(net_state_check(&f.st, &err) < 0);

	fixture(&f);
	net_port_parse("5353:53/tcp", &p, &err);
	f.ctrs[1].ports = &p;
	f.ctrs[1].n_ports = 1;
	CHECK_INT(net_state_check(&f.st, &err), 0);

	/* Publishing needs a non-internal network. */
	fixture(&f);
	f.ctrs[1].n_eps = 1;
	f.ctrs[1].ports = &p;
	f.ctrs[1].n_ports = 1;
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "needs a network that is not internal") != NULL);

	fixture(&f);
	net_port_parse("[::1]:8080:80", &p, &err);
	f.ctrs[1].ports = &p;
	f.ctrs[1].n_ports = 1;
	CHECK(net_state_check(&f.st, &err) < 0);
	CHECK(strstr(err.msg, "IPv6 loopback") != NULL);
}

TEST_MAIN_BEGIN("net.net")
RUN(publish_forms);
RUN(interface_names);
RUN(modes);
RUN(offsets);
RUN(state_check_accepts_and_refuses);
TEST_MAIN_END
