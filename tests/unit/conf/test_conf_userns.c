/* :userns in container and host forms: parsing, errors, printing, the spec hash. */
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

#define CHECK_ERR(text, want)                                                                      \
	do {                                                                                       \
		autofree char *_m = NULL;                                                          \
		struct conf *_c = build(text, &_m);                                                \
		if (_c) {                                                                          \
			conf_free(_c);                                                             \
			FAILF("accepted: %s", text);                                               \
		}                                                                                  \
		if (!strstr(_m, want))                                                             \
			FAILF("for %s\n got: %s\nwant: %s", text, _m, want);                       \
	} while (0)

TEST(container_userns)
{
	autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL;
	struct conf *a = build("(container web :image \"x\" :userns auto)", &m1);
	struct conf *b = build("(container web :image \"x\")", &m2);
	struct conf *h = build("(container web :image \"x\" :userns host)", &m3);
	CHECK(a && b && h);
	const struct ctr_spec *wa = conf_container_find(a, "web");
	const struct ctr_spec *wb = conf_container_find(b, "web");
	const struct ctr_spec *wh = conf_container_find(h, "web");
	CHECK_INT(wa->userns, CTR_USERNS_AUTO);
	CHECK_INT(wb->userns, CTR_USERNS_UNSET);
	CHECK_INT(wh->userns, CTR_USERNS_HOST);
	autofree char *pa = ctr_spec_print(wa);
	autofree char *pb = ctr_spec_print(wb);
	CHECK(strstr(pa, "\n  :userns auto\n"));
	/* Not given: not printed, so the hash of existing containers is unchanged. */
	CHECK(!strstr(pb, ":userns"));
	char ha[65], hb[65], hh[65];
	ctr_spec_hash(wa, ha);
	ctr_spec_hash(wb, hb);
	ctr_spec_hash(wh, hh);
	CHECK(strcmp(ha, hb) != 0);
	CHECK(strcmp(ha, hh) != 0);
	struct ctr_spec_change *ch = NULL;
	size_t n = ctr_spec_diff(wb, wa, &ch);
	CHECK_INT(n, 1);
	CHECK_STR(ch[0].key, ":userns");
	CHECK(ch[0].recreate);
	free(ch);
	conf_free(a);
	conf_free(b);
	conf_free(h);
}

TEST(container_userns_errors)
{
	CHECK_ERR("(container web :image \"x\" :userns maybe)",
		  ":userns: expected auto (a private range of host ids) or host");
	CHECK_ERR("(container web :image \"x\" :userns \"auto\")", ":userns");
}

TEST(host_userns)
{
	autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL;
	struct conf *a = build("(host :userns auto)", &m1);
	CHECK(a);
	CHECK_INT(a->host.userns, CTR_USERNS_AUTO);
	CHECK_INT(a->host.userns_start, 0);
	struct conf *b = build("(host :userns (:default host :start 200000 :count 131072))", &m2);
	CHECK(b);
	CHECK_INT(b->host.userns, CTR_USERNS_HOST);
	CHECK_INT(b->host.userns_start, 200000);
	CHECK_INT(b->host.userns_count, 131072);
	autofree char *p = conf_print(b);
	CHECK(strstr(p, "\n  :userns (:default host :start 200000 :count 131072))\n"));
	/* The printed form reads back the same. */
	struct conf *c = build(p, &m3);
	CHECK(c);
	CHECK_INT(c->host.userns_start, 200000);
	autofree char *p2 = conf_print(c);
	CHECK_STR(p, p2);
	autofree char *pa = conf_print(a);
	CHECK(strstr(pa, ":userns (:default auto))\n"));
	conf_free(a);
	conf_free(b);
	conf_free(c);
}

TEST(host_userns_errors)
{
	CHECK_ERR("(host :userns sometimes)", ":userns: expected auto");
	CHECK_ERR("(host :userns (:start 200000))", ":start and :count go together");
	CHECK_ERR("(host :userns (:start 200000 :count 1000))", ":userns :count");
	CHECK_ERR("(host :userns (:start 0 :count 65536))", ":userns :start");
	CHECK_ERR("(host :userns (:start 4294900000 :count 655360))", "must end below 4294967295");
	CHECK_ERR("(host :userns (:default auto :bogus 1))", "bogus");
}

TEST_MAIN_BEGIN("conf.userns")
RUN(container_userns);
RUN(container_userns_errors);
RUN(host_userns);
RUN(host_userns_errors);
TEST_MAIN_END
