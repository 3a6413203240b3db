/* (host :audit (:max-size :files :fsync)): checked, printed, and reading back to itself. */
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

TEST(printed_and_read_back)
{
	autofree char *msg = NULL;
	struct conf *c = build("(host :audit (:max-size \"32K\" :files 4 :fsync nil))", &msg);
	CHECK(c);
	CHECK_INT(c->host.audit_max_size, 32768);
	CHECK_INT(c->host.audit_files, 4);
	CHECK_INT(c->host.audit_fsync, 0);
	autofree char *p = conf_print(c);
	CHECK(strstr(p, "\n  :audit (:max-size 32768 :files 4 :fsync nil)") != NULL);
	struct conf *again = build(p, &msg);
	CHECK(again);
	autofree char *p2 = conf_print(again);
	CHECK_STR(p2, p);
	conf_free(again);
	conf_free(c);
	/* One key given: the others keep their defaults (unset). */
	c = build("(host :audit (:files 9))", &msg);
	CHECK(c);
	CHECK_INT(c->host.audit_max_size, 0);
	CHECK_INT(c->host.audit_fsync, -1);
	conf_free(c);
}

TEST(defaults_unset)
{
	autofree char *msg = NULL;
	struct conf *c = build("(container web :image \"forge\")", &msg);
	CHECK(c);
	CHECK(!c->host.audit_set && c->host.audit_max_size == 0 && c->host.audit_files == 0 &&
	      c->host.audit_fsync == -1);
	autofree char *p = conf_print(c);
	CHECK(strstr(p, ":audit") == NULL);
	conf_free(c);
}

/* Each bad form fails with its position and the key. */
TEST(bad_forms_say_where)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"(host :audit (:max-size \"1K\"))", "c.conf:1:25: host: :audit :max-size"},
		{"(host :audit (:files 0))", ":audit :files"},
		{"(host :audit (:files 100))", ":audit :files"},
		{"(host :audit (:fsync yes))", ":audit :fsync"},
		{"(host :audit \"10M\")", ":audit"},
		{"(host :audit (:size \"10M\"))", ":size"},
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

TEST_MAIN_BEGIN("conf.audit")
RUN(printed_and_read_back);
RUN(defaults_unset);
RUN(bad_forms_say_where);
TEST_MAIN_END
