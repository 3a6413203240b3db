/*
 * The override form: how a live change amends a declared container.
 */
#include "conf/conf.h"
#include "test.h"
#include "util/util.h"


/* Build two sources (main.conf, live.conf); NULL with the diagnostics in *msg. */
static struct conf *build2(const char *main_text, const char *live_text, char **msg)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src[2] = {
		{"main.conf", main_text, strlen(main_text)},
		{"live.conf", live_text, strlen(live_text)},
	};
	struct conf *c = NULL;
	int r = conf_build(src, 2, &c, &d);
	*msg = conf_diags_format(&d);
	conf_diags_release(&d);
	return r == 0 ? c : NULL;
}

static const char decl[] = "(container web :image \"forge\")\n"
			   "(container db :image \"forge\" :state stopped)\n";

TEST(override_applies)
{
	autofree char *msg = NULL;
	struct conf *c = build2(decl, "(override web :state stopped)\n(override db :state running)",
				&msg);
	if (!c)
		FAILF("rejected: %s", msg);
	CHECK_INT(conf_container_find(c, "web")->state, CONF_STATE_STOPPED);
	CHECK_INT(conf_container_find(c, "db")->state, CONF_STATE_RUNNING);
	/* The effective state prints; the override form itself does not. */
	autofree char *p = conf_print(c);
	CHECK(strstr(p, "(container web\n"));
	CHECK(!strstr(p, "override"));
	/* The printed form reads back to itself. */
	autofree char *msg2 = NULL;
	struct conf *c2 = build2(p, "", &msg2);
	CHECK(c2);
	autofree char *p2 = conf_print(c2);
	CHECK_STR(p2, p);
	CHECK_INT(conf_container_find(c2, "web")->state, CONF_STATE_STOPPED);
	conf_free(c2);
	conf_free(c);
}

TEST(override_later_wins)
{
	autofree char *msg = NULL;
	/* In load order: the main file's override, then live.conf's. */
	struct conf *c = build2("(override web :state running)\n(container web :image \"forge\")",
				"(override web :state stopped)\n", &msg);
	if (!c)
		FAILF("rejected: %s", msg);
	CHECK_INT(conf_container_find(c, "web")->state, CONF_STATE_STOPPED);
	/* An override does not touch the spec hash: :state applies live. */
	struct conf *plain = build2(decl, "", &msg);
	CHECK(plain);
	char h1[65], h2[65];
	conf_container_hash(conf_container_find(c, "web"), h1);
	conf_container_hash(conf_container_find(plain, "web"), h2);
	CHECK_STR(h1, h2);
	conf_free(plain);
	conf_free(c);
}

#define CHECK_ERR2(live, want)                                                                     \
	do {                                                                                       \
		autofree char *_m = NULL;                                                          \
		struct conf *_c = build2(decl, live, &_m);                                         \
		if (_c) {                                                                          \
			conf_free(_c);                                                             \
			FAILF("accepted %s", live);                                                \
		}                                                                                  \
		if (!strstr(_m, want))                                                             \
			FAILF("for %s\n got: %s\nwant: %s", live, _m, want);                       \
	} while (0)

TEST(override_errors)
{
	CHECK_ERR2("\n  (override wbe :state stopped)",
		   "live.conf:2:13: override wbe: no container named wbe is declared (did you "
		   "mean web?); an override amends a declared container");
	CHECK_ERR2("(override cache :state stopped)",
		   "live.conf:1:11: override cache: no container named cache is declared; ");
	CHECK_ERR2("(override web :state paused)",
		   "live.conf:1:22: override web: :state: expected running or stopped, got the "
		   "symbol paused");
	CHECK_ERR2("(override web)", "live.conf:1:11: override web: changes nothing; expected a "
				     "key to override, like :state stopped");
	CHECK_ERR2("(override web :image \"x\")", "override web: unknown key :image");
	CHECK_ERR2("(override :state stopped)", "override: missing the name");
	CHECK_ERR2("(overide web :state stopped)",
		   "unknown form (overide ...); did you mean (override ...)?");
	CHECK_ERR2("(frob web)", "expected host, container, image, network or override");
}

TEST(override_of_invalid_container_does_not_cascade)
{
	autofree char *m = NULL;
	struct conf *c = build2("(container web :imgae \"forge\")", "(override web :state stopped)",
				&m);
	CHECK(!c);
	CHECK(strstr(m, "unknown key :imgae"));
	CHECK(!strstr(m, "no container named"));
}

TEST_MAIN_BEGIN("conf.live")
RUN(override_applies);
RUN(override_later_wins);
RUN(override_errors);
RUN(override_of_invalid_container_does_not_cascade);
TEST_MAIN_END
