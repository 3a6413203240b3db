#include "net/net.h"
#include "nettest.h"
#include "test.h"

#include <errno.h>
#include <sys/socket.h>

/*
 * Three networks: default (v4 + v6), back (v4, internal) and solo.
 *   web:  default + back, alias "www" on default
 *   db:   back only, alias "database"
 *   api:  default only
 *   lone: solo only
 */
static const char *const www[] = {"www"};
static const char *const database[] = {"database"};

TEST(hosts_peers_on_shared_networks)
{
	struct net_network nets[] = {
		{"default", "clbsd0", pfx("10.88.0.0/24"), pfx("fd00:88::/64"), false},
		{"back", "cbr-back", pfx("10.89.0.0/24"), {{0}, 0}, true},
		{"solo", "cbr-solo", pfx("10.90.0.0/24"), {{0}, 0}, false},
	};
	struct net_endpoint web_eps[] = {
		{"default", ip("10.88.0.2"), ip("fd00:88::2"), www, 1},
		{"back", ip("10.89.0.2"), {0, {0}}, NULL, 0},
	};
	struct net_endpoint db_eps[] = {{"back", ip("10.89.0.3"), {0, {0}}, database, 1}};
	struct net_endpoint api_eps[] = {{"default", ip("10.88.0.4"), ip("fd00:88::4"), NULL, 0}};
	struct net_endpoint lone_eps[] = {{"solo", ip("10.90.0.2"), {0, {0}}, NULL, 0}};
	struct net_container ctrs[] = {
		{"web", 0, -1, web_eps, 2, NULL, 0, false},
		{"db", 0, -1, db_eps, 1, NULL, 0, false},
		{"api", 0, -1, api_eps, 1, NULL, 0, false},
		{"lone", 0, -1, lone_eps, 1, NULL, 0, false},
	};
	struct net_state st = {nets, 3, ctrs, 4};
	struct clbsd_err err;
	char *h = NULL;
	CHECK_INT(net_hosts_render(&st, "web", "web.home.lan", &h, &err), 0);
	CHECK_STR(h, "# Written by clbsd for container web; changes are overwritten.\n"
		     "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
		     "ip6-loopback\n10.88.0.2\tweb.home.lan web www\nfd00:88::2\tweb.home.lan web "
		     "www\n10.88.0.4\tapi\nfd00:88::4\tapi\n10.89.0.3\tdb database\n");
	free(h);
	/* db sees web on back (not its default address), and not api or lone. */
	CHECK_INT(net_hosts_render(&st, "db", "db", &h, &err), 0);
	CHECK(strstr(h, "10.89.0.3\tdb database\n") != NULL);
	CHECK(strstr(h, "10.89.0.2\tweb\n") != NULL);
	CHECK(strstr(h, "api") == NULL);
	CHECK(strstr(h, "lone") == NULL);
	CHECK(strstr(h, "www") == NULL); /* web's alias lives on default only */
	free(h);
	/* Alone on its network: only itself. */
	CHECK_INT(net_hosts_render(&st, "lone", "lone", &h, &err), 0);
	CHECK(strstr(h, "10.90.0.2\tlone\n") != NULL);
	CHECK(strstr(h, "web") == NULL);
	free(h);
	CHECK(net_hosts_render(&st, "ghost", "x", &h, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
}

TEST(hosts_first_claim_of_a_name_wins)
{
	static const char *const claims_api[] = {"api", "shared"};
	static const char *const claims_shared[] = {"shared"};
	struct net_network nets[] = {
		{"default", "clbsd0", pfx("10.88.0.0/24"), {{0}, 0}, false},
	};
	struct net_endpoint a[] = {{"default", ip("10.88.0.2"), {0, {0}}, NULL, 0}};
	struct net_endpoint b[] = {{"default", ip("10.88.0.3"), {0, {0}}, claims_api, 2}};
	struct net_endpoint c[] = {{"default", ip("10.88.0.4"), {0, {0}}, claims_shared, 1}};
	struct net_endpoint d[] = {{"default", ip("10.88.0.5"), {0, {0}}, NULL, 0}};
	struct net_container ctrs[] = {
		{"self", 0, -1, a, 1, NULL, 0, false},
		{"bee", 0, -1, b, 1, NULL, 0, false},
		{"cee", 0, -1, c, 1, NULL, 0, false},
		{"api", 0, -1, d, 1, NULL, 0, false},
	};
	struct net_state st = {nets, 1, ctrs, 4};
	struct clbsd_err err;
	char *h = NULL;
	CHECK_INT(net_hosts_render(&st, "self", NULL, &h, &err), 0);
	/* Peers in name order: api takes "api" before bee's alias; bee takes "shared". */
	CHECK(strstr(h, "10.88.0.2\tself\n10.88.0.5\tapi\n10.88.0.3\tbee shared\n") != NULL);
	CHECK(strstr(h, "10.88.0.4\tcee\n") != NULL); /* its alias was taken, its name not */
	free(h);
}

TEST(hosts_none_mode)
{
	struct net_container ctrs[] = {{"iso", 0, -1, NULL, 0, NULL, 0, false}};
	struct net_state st = {NULL, 0, ctrs, 1};
	struct clbsd_err err;
	char *h = NULL;
	CHECK_INT(net_hosts_render(&st, "iso", "iso", &h, &err), 0);
	CHECK(strstr(h, "127.0.1.1\tiso\n") != NULL);
	free(h);
}

TEST(resolv_skips_loopback)
{
	const char *host = "# systemd-resolved stub and friends\n"
			   "nameserver 127.0.0.53\nnameserver 192.168.1.1\nnameserver "
			   "::1\nnameserver fe80::1%eth0\nnameserver 2001:db8::53\nsearch "
			   "home.lan\noptions edns0 trust-ad\n";
	char *r = NULL;
	struct clbsd_err err;
	CHECK_INT(net_resolv_render(host, NULL, 0, false, &r, &err), 0);
	CHECK_STR(r, "# Written by clbsd; changes are overwritten.\n"
		     "nameserver 192.168.1.1\nsearch home.lan\noptions edns0 trust-ad\n");
	free(r);
	CHECK_INT(net_resolv_render(host, NULL, 0, true, &r, &err), 0);
	CHECK(strstr(r, "nameserver 192.168.1.1\nnameserver 2001:db8::53\n") != NULL);
	free(r);
}

TEST(resolv_only_loopback_is_an_error)
{
	char *r = NULL;
	struct clbsd_err err;
	CHECK(net_resolv_render("nameserver 127.0.0.53\noptions edns0\n", NULL, 0, true, &r, &err) <
	      0);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	CHECK(strstr(err.msg, "127.0.0.53") != NULL);
	CHECK(strstr(err.msg, ":dns") != NULL);
	CHECK(net_resolv_render("", NULL, 0, true, &r, &err) < 0);
}

TEST(resolv_explicit_dns)
{
	const char *dns[] = {"10.88.0.53", "1.1.1.1"};
	char *r = NULL;
	struct clbsd_err err;
	CHECK_INT(net_resolv_render("nameserver 192.168.1.1\nsearch a.lan\ndomain b.lan\n", dns, 2,
				    false, &r, &err),
		  0);
	CHECK_STR(r, "# Written by clbsd; changes are overwritten.\n"
		     "nameserver 10.88.0.53\nnameserver 1.1.1.1\ndomain b.lan\n");
	free(r);
	const char *bad[] = {"dns.example"};
	CHECK(net_resolv_render("", bad, 1, false, &r, &err) < 0);
	CHECK(strstr(err.msg, "dns.example") != NULL);
}

TEST_MAIN_BEGIN("net.hosts")
RUN(hosts_peers_on_shared_networks);
RUN(hosts_first_claim_of_a_name_wins);
RUN(hosts_none_mode);
RUN(resolv_skips_loopback);
RUN(resolv_only_loopback_is_an_error);
RUN(resolv_explicit_dns);
TEST_MAIN_END
