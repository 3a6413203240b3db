/* (host :metrics (:listen ...)): checked, printed, and reading back to itself. */
#include "core/config.h"
#include "test.h"
#include "util/util.h"

static struct conf *build(const char *text, char **msg)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src = {"c.conf", text, strlen(text)};
	struct conf *c = NULL;
	int r = conf_build(&src, 1, &c, &d);
	free(*msg);
	*msg = conf_diags_format(&d);
	conf_diags_release(&d);
	return r == 0 ? c : NULL;
}

TEST(listen_printed_and_read_back)
{
	autofree char *msg = NULL;
	struct conf *c = build("(host :metrics (:listen \"127.0.0.1:9323\"))", &msg);
	CHECK(c);
	CHECK_STR(c->host.metrics_listen, "127.0.0.1:9323");
	autofree char *p = conf_print(c);
	CHECK(strstr(p, "\n  :metrics (:listen \"127.0.0.1:9323\")") != NULL);
	struct conf *again = build(p, &msg);
	CHECK(again);
	autofree char *p2 = conf_print(again);
	CHECK_STR(p2, p);
	conf_free(again);
	conf_free(c);
	c = build("(host :metrics (:listen \"[::1]:9323\"))", &msg);
	CHECK(c);
	CHECK_STR(c->host.metrics_listen, "[::1]:9323");
	conf_free(c);
}

TEST(off_by_default)
{
	autofree char *msg = NULL;
	struct conf *c = build("(container web :image \"forge\")", &msg);
	CHECK(c);
	CHECK(c->host.metrics_listen == NULL);
	autofree char *p = conf_print(c);
	CHECK(strstr(p, ":metrics") == NULL);
	conf_free(c);
}

/* Each bad form fails with its position and the key. */
TEST(bad_forms_say_where)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"(host\n :metrics (:listen \"127.0.0.1:99999\"))",
		 "c.conf:2:20: host: :metrics :listen: invalid listen address"},
		{"(host :metrics (:listen 9323))", "c.conf:1:25: host: :metrics :listen"},
		{"(host :metrics \"127.0.0.1:9323\")", ":metrics"},
		{"(host :metrics ())", ":listen is required"},
		{"(host :metrics (:port 9323))", ":port"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		autofree char *msg = NULL;
		struct conf *c = build(cases[i].text, &msg);
		if (c) {
			conf_free(c);
			FAILF("%s: accepted", cases[i].text);
		}
		if (!strstr(msg, cases[i].want))
			FAILF("%s:\n got: %s\nwant: %s", cases[i].text, msg, cases[i].want);
	}
}

TEST_MAIN_BEGIN("conf.metrics")
RUN(listen_printed_and_read_back);
RUN(off_by_default);
RUN(bad_forms_say_where);
TEST_MAIN_END
